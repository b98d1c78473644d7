// fusion.c: the fusion pass. It walks the plain step (train.c, autodiff.c) in order and
// merges nodes into the kernel of another, which then does their work as it stores its
// output; a merged node leaves the step and its readers read the node that absorbed it. The
// merged work and the operands it reads are named in the absorbing node's Fused (the
// operands are appended to its in[] too: the kernel reads them from buffers like any
// other). One pass over memory instead of two or three, and the intermediate tensors are
// never stored. What fuses (docs/fusion.md):
//
//   forward                                        backward
//   relu, relu6, sigmoid  -> the op before it      their gradient -> the batchnorm gradients
//   bn_apply, running stats -> the convolution     add of two gradients -> the kernel of the second
//   add(a, b)             -> the batchnorm of a
//   bn_stats' sums        -> the convolution before it
//
// A node absorbs another only when nothing else reads the tensor that then stops existing.
// The walk follows the plain step's order: each node is decided after what it reads, and
// the backward pass, whose fusions follow the forward pass's, after the forward pass.
#include "tlc.h"

// The pass's state, by the node ids of the plain step.
typedef struct Fuser {
  int *readers;         // how many inputs of other nodes read it
  Node **into;          // the node whose kernel now computes it; NULL: itself
  Node **through;       // an activation gradient that its readers take in: the batchnorm
                        // whose fused activation it differentiates
} Fuser;

static Node *resolve(const Fuser *f, Node *n) {
  while (n && f->into[n->id])
    n = f->into[n->id];
  return n;
}

// Adds x to n's buffers, after the op's own inputs; returns x.
static Node *add_operand(Node *n, Node *x) {
  if (n->nin == MAX_INPUTS)
    fatal("internal error: fusing into %s '%s' needs more than %d inputs", op_info[n->op].name, n->name, MAX_INPUTS);
  n->in[n->nin++] = x;
  return x;
}

// x as an operand of n: the input that already is x, or a new one.
static Node *operand_once(Node *n, Node *x) {
  for (int i = 0; i < n->nin; i++)
    if (n->in[i] == x)
      return x;
  return add_operand(n, x);
}

// Whether one input of one node, and nothing else, reads n (a node of the plain step).
static bool read_once(const Fuser *f, const Node *n) { return f->readers[n->id] == 1; }

// A convolution as a matrix product (groups == 1). Only these take a folded batchnorm, a
// residual and an activation in their epilogue, and store their statistics in chunks of rows.
static bool matmul_conv(const Node *x) { return x->op == OP_CONV2D && x->attr.conv.groups == 1; }

// An activation whose gradient needs only its own output fuses into the node before it
// when nothing else reads that node's output: the pre-activation tensor is never stored.
static Node *fuse_activation(Fuser *f, Node *act, Node *plain_x) {
  Node *host = act->in[0];
  bool kind = host->op == OP_BN_APPLY || matmul_conv(host) || host->op == OP_LINEAR || host->op == OP_ADD;
  if (!kind || host->fused.activation || !read_once(f, plain_x))
    return NULL;
  host->fused.activation = act->op;
  return host;
}

// A batchnorm on running statistics is a per-channel affine map: it folds into the
// convolution before it when no gradient flows through them (evaluation, or a frozen
// prefix) and nothing else reads the convolution's output.
static Node *fold_batchnorm(Fuser *f, Node *bn, Node *plain_x) {
  Node *x = bn->in[0], *stats = bn->in[1];
  if (stats->op != OP_BN_RUNNING_STATS || !matmul_conv(x) || x->trains || x->fused.activation || x->fused.bn.stats ||
      !read_once(f, plain_x))
    return NULL;
  x->fused.bn.stats = add_operand(x, stats);
  x->fused.bn.gamma = add_operand(x, bn->in[2]);
  x->fused.bn.beta = add_operand(x, bn->in[3]);
  return x;
}

// add(a, b) where a is a batchnorm (or a convolution with its batchnorm folded in) that
// nothing else reads: the batchnorm's kernel adds b as it stores, before its activation.
// The residual block's sum then costs no pass of its own, and its ReLU fuses after it.
static Node *fuse_residual(Fuser *f, Node *add, Node **plain) {
  for (int side = 0; side < 2; side++) {
    Node *host = add->in[side], *other = add->in[1 - side];
    bool kind = host->op == OP_BN_APPLY || (matmul_conv(host) && host->fused.bn.stats);
    if (!kind || host->fused.activation || host->fused.residual || host->nin == MAX_INPUTS || !read_once(f, plain[side]) ||
        shape_elems(host->shape) != shape_elems(other->shape) || host->shape.c != other->shape.c)
      continue;
    host->fused.residual = add_operand(host, other);
    return host;
  }
  return NULL;
}

// add(old, g) of two gradients of one tensor, where g's kernel stores each element once:
// it adds old as it stores, and the sum takes no pass of its own.
static Node *fuse_gradient_sum(Fuser *f, Node *add, Node **plain) {
  Node *old = add->in[0], *g = add->in[1];
  bool kind = g->op == OP_BN_DX || g->op == OP_BN_DX_RUNNING || g->op == OP_CONV2D_DX;
  if (!kind || g->fused.residual || g->nin == MAX_INPUTS || !read_once(f, plain[1]))
    return NULL;
  g->fused.residual = add_operand(g, old);
  return g;
}

// A convolution before a batchnorm on batch statistics stores the statistics of each chunk
// of its output rows as it writes them, and bn_stats only merges the chunks: the output is
// not read twice more. A chunk is 64 rows, the rows of one tile of the GPU's tiled matrix
// product, so that a tile's block computes its chunk's statistics. A grouped (depthwise)
// convolution's thread owns one image's plane of one channel: its chunk is that plane.
enum { STATS_CHUNK_ROWS = 64 };

static void chunk_statistics(Node *stats) {
  Node *x = stats->in[0];
  if (x->op != OP_CONV2D || x->fused.activation)
    return;
  if (conv_by_position(x))
    return;   // the CPU's rows do not come in chunks of one image's rows: bn_stats reads the output
  int64_t rows = x->shape.n * x->shape.h * x->shape.w;
  bool planes = x->attr.conv.groups > 1;
  x->fused.stats_rows = planes ? x->shape.h * x->shape.w : rows < STATS_CHUNK_ROWS ? rows : STATS_CHUNK_ROWS;
}

// The gradient d of an activation y fused into host (d reads host's output, the activated
// value). A batchnorm's gradient kernels take d in as they load dy, and d leaves the step,
// unless the host also took a residual, whose gradient needs the masked tensor: then d
// stays, under the host's name.
static void fuse_activation_grad(Fuser *f, Node *d, Node *plain_y) {
  Node *host = d->in[1];
  if (!f->into[plain_y->id])
    return;   // the activation is a node of its own
  if (host->op == OP_BN_APPLY && !host->fused.residual) {
    f->through[d->id] = host;
    return;
  }
  d->forward = host->forward;
  d->name = host->name;
}

// A batchnorm gradient (bn_apply's rule makes them the only readers of its dy) whose dy is
// an activation gradient taken in: dy is the gradient below that. A relu's or relu6's
// gradient depends only on where the batchnorm's output lay before it, which the kernels that
// read x recompute from x and the batchnorm's gamma and beta (two more operands of C floats)
// rather than read the activated tensor, a whole pass over memory less; a sigmoid's needs
// its output, one more operand, and so does bn_dx_running, which does not read x.
static void take_activation_grad(Fuser *f, Node *n, Node *plain_dy) {
  Node *host = f->through[plain_dy->id];
  if (!host)
    return;
  n->in[0] = resolve(f, plain_dy->in[0]);
  n->fused.dy_activation = host->fused.activation;
  if (n->op == OP_BN_DX_RUNNING || host->fused.activation == OP_SIGMOID) {
    n->fused.dy_output = add_operand(n, host);
    return;
  }
  n->fused.dy_gamma = operand_once(n, host->in[2]);   // bn_apply (x, stats, gamma, beta)
  n->fused.dy_beta = operand_once(n, host->in[3]);
}

// The node that absorbs n, or NULL. plain[] are n's inputs as the plain step has them.
static Node *fuse_node(Fuser *f, Node *n, Node **plain) {
  switch (n->op) {
  case OP_RELU:
  case OP_RELU6:
  case OP_SIGMOID: return fuse_activation(f, n, plain[0]);
  case OP_BN_APPLY: return fold_batchnorm(f, n, plain[0]);
  case OP_ADD: {
    Node *host = fuse_residual(f, n, plain);
    return host ? host : fuse_gradient_sum(f, n, plain);
  }
  case OP_BN_STATS: chunk_statistics(n); return NULL;
  case OP_RELU_GRAD:
  case OP_RELU6_GRAD:
  case OP_SIGMOID_GRAD: fuse_activation_grad(f, n, plain[1]); return NULL;
  case OP_BN_DPARAMS:
  case OP_BN_DX:
  case OP_BN_DX_RUNNING: take_activation_grad(f, n, plain[0]); return NULL;
  default: return NULL;
  }
}

void fuse_step(Arena *a, Graph *g) {
  Fuser f = {0};
  f.readers = arena_alloc(a, sizeof(int) * (size_t)g->n);
  f.into = arena_alloc(a, sizeof(Node *) * (size_t)g->n);
  f.through = arena_alloc(a, sizeof(Node *) * (size_t)g->n);
  for (int i = 0; i < g->n; i++)
    for (int j = 0; j < g->nodes[i]->nin; j++)
      f.readers[g->nodes[i]->in[j]->id]++;
  int kept = 0;
  for (int i = 0; i < g->n; i++) {
    Node *n = g->nodes[i], *plain[MAX_INPUTS];
    for (int j = 0; j < n->nin; j++) {
      plain[j] = n->in[j];
      n->in[j] = resolve(&f, n->in[j]);
    }
    Node *host = fuse_node(&f, n, plain);
    if (host)
      f.into[i] = host;
    else if (!f.through[i])   // an activation gradient taken in by its readers leaves too
      g->nodes[kept++] = n;
  }
  g->logits = resolve(&f, g->logits);
  g->output = resolve(&f, g->output);
  g->n = kept;
  for (int i = 0; i < g->n; i++)
    g->nodes[i]->id = i;
}
