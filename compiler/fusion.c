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
#include "tlc.h"

typedef struct Fuser {
  int *readers;         // plain node id -> how many inputs of other nodes read it
  Node **into;          // plain node id -> the node whose kernel now computes it; NULL: itself
  Node **through;       // plain node id of an activation gradient that its readers take in: the
                        // batchnorm whose fused activation it differentiates
} Fuser;

static Node *resolve(const Fuser *f, Node *n) {
  while (n && f->into[n->id])
    n = f->into[n->id];
  return n;
}

// Adds operand to n's buffers (fusion.c's operands come after the op's own inputs).
static Node *operand(Node *n, Node *operand) {
  if (n->nin == MAX_INPUTS)
    fatal("internal error: fusing into %s '%s' needs more than %d inputs", op_info[n->op].name, n->name, MAX_INPUTS);
  n->in[n->nin++] = operand;
  return operand;
}

// Whether nothing but one input of one node reads n's output (the plain step's n).
static bool read_once(const Fuser *f, const Node *n) { return f->readers[n->id] == 1; }

// A convolution as a matrix product: from its patch matrix, or from the image directly (an
// implicit one). Only these take a folded batchnorm, a residual and an activation in their
// epilogue, and store their statistics in chunks of rows.
static bool matmul_conv(const Node *x) {
  return x->op == OP_CONV_GEMM || (x->op == OP_CONV2D && x->attr.conv.groups == 1);
}

// An activation whose gradient needs only its own output fuses into the node before it
// when nothing else reads that node's output: the pre-activation tensor is never stored.
static Node *fuse_activation(Fuser *f, Node *act, Node *raw_x) {
  Node *host = act->in[0];
  bool kind = host->op == OP_BN_APPLY || matmul_conv(host) || host->op == OP_LINEAR || host->op == OP_ADD;
  if (!kind || host->fused.activation || !read_once(f, raw_x))
    return NULL;
  host->fused.activation = act->op;
  return host;
}

// A batchnorm on running statistics is a per-channel affine map: it folds into the
// convolution before it when no gradient flows through them (evaluation, or a frozen
// prefix) and nothing else reads the convolution's output.
static Node *fold_batchnorm(Fuser *f, Node *bn, Node *raw_x) {
  Node *x = bn->in[0], *stats = bn->in[1];
  if (stats->op != OP_BN_RUNNING_STATS || !matmul_conv(x) || x->trains || x->fused.activation || x->fused.bn.stats ||
      !read_once(f, raw_x))
    return NULL;
  x->fused.bn.stats = operand(x, stats);
  x->fused.bn.gamma = operand(x, bn->in[2]);
  x->fused.bn.beta = operand(x, bn->in[3]);
  return x;
}

// add(a, b) where a is a batchnorm (or a convolution with its batchnorm folded in) that
// nothing else reads: the batchnorm's kernel adds b as it stores, before its activation.
// The residual block's sum then costs no pass of its own, and its ReLU fuses after it.
static Node *fuse_residual(Fuser *f, Node *add, Node **raw) {
  for (int side = 0; side < 2; side++) {
    Node *host = add->in[side], *other = add->in[1 - side];
    bool kind = host->op == OP_BN_APPLY || (matmul_conv(host) && host->fused.bn.stats);
    if (!kind || host->fused.activation || host->fused.residual || host->nin == MAX_INPUTS || !read_once(f, raw[side]) ||
        shape_elems(host->shape) != shape_elems(other->shape) || host->shape.c != other->shape.c)
      continue;
    host->fused.residual = operand(host, other);
    return host;
  }
  return NULL;
}

// add(old, g) of two gradients of one tensor, where g's kernel stores each element once:
// it adds old as it stores, and the sum takes no pass of its own.
static Node *fuse_gradient_sum(Fuser *f, Node *add, Node **raw) {
  Node *old = add->in[0], *g = add->in[1];
  bool kind = g->op == OP_COL2IM || g->op == OP_BN_DX || g->op == OP_BN_DX_RUNNING || g->op == OP_CONV2D_DX;
  if (!kind || g->fused.residual || g->nin == MAX_INPUTS || !read_once(f, raw[1]))
    return NULL;
  g->fused.residual = operand(g, old);
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
  if ((x->op != OP_CONV_GEMM && x->op != OP_CONV2D) || x->fused.activation)
    return;
  int64_t rows = x->shape.n * x->shape.h * x->shape.w;
  bool planes = x->op == OP_CONV2D && x->attr.conv.groups > 1;
  x->fused.stats_rows = planes ? x->shape.h * x->shape.w : rows < STATS_CHUNK_ROWS ? rows : STATS_CHUNK_ROWS;
}

// The gradient of an activation fused into host (read from host's output, the activated
// value). A batchnorm's gradient kernels take it in as they load dy, unless the host also
// took a residual, whose gradient needs the masked tensor: then it stays, under the
// host's name. Returns whether it leaves the step.
static bool fuse_activation_grad(Fuser *f, Node *d, Node *raw_y) {
  Node *host = d->in[1];
  if (!f->into[raw_y->id])
    return false;   // its activation is a node of its own
  if (host->op == OP_BN_APPLY && !host->fused.residual) {
    f->through[d->id] = host;
    return true;
  }
  d->forward = host->forward;
  d->name = host->name;
  return false;
}

// A batchnorm gradient whose dy is an activation gradient taken in: dy is the gradient
// below it, and the activation's output one more operand.
static void take_activation_grad(Fuser *f, Node *n, Node *raw_dy) {
  Node *host = f->through[raw_dy->id];
  if (!host)
    return;
  n->in[0] = resolve(f, raw_dy->in[0]);
  n->fused.dy_activation = host->fused.activation;
  n->fused.dy_output = operand(n, host);
}

// What absorbs n, or NULL when n stays. raw[] are n's inputs in the plain step.
static Node *fuse_node(Fuser *f, Node *n, Node **raw) {
  switch (n->op) {
  case OP_RELU:
  case OP_RELU6:
  case OP_SIGMOID: return fuse_activation(f, n, raw[0]);
  case OP_BN_APPLY: return fold_batchnorm(f, n, raw[0]);
  case OP_ADD: {
    Node *host = fuse_residual(f, n, raw);
    return host ? host : fuse_gradient_sum(f, n, raw);
  }
  case OP_BN_STATS: chunk_statistics(n); return NULL;
  case OP_RELU_GRAD:
  case OP_RELU6_GRAD:
  case OP_SIGMOID_GRAD: return fuse_activation_grad(f, n, raw[1]) ? n : NULL;
  case OP_BN_DPARAMS:
  case OP_BN_DX:
  case OP_BN_DX_RUNNING: take_activation_grad(f, n, raw[0]); return NULL;
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
    Node *n = g->nodes[i], *raw[MAX_INPUTS];
    for (int j = 0; j < n->nin; j++) {
      raw[j] = n->in[j];
      n->in[j] = resolve(&f, n->in[j]);
    }
    Node *host = fuse_node(&f, n, raw);
    if (host == n)
      continue;   // taken in by its readers
    if (host)
      f.into[i] = host;
    else
      g->nodes[kept++] = n;
  }
  g->logits = resolve(&f, g->logits);
  g->output = resolve(&f, g->output);
  g->n = kept;
  for (int i = 0; i < g->n; i++)
    g->nodes[i]->id = i;
}
