// autodiff.c: reverse-mode differentiation of the step's forward nodes, one rule per op
// (ggml's shape: a switch that adds gradient nodes to the same graph). A node gets a
// gradient only when a trainable parameter lies at or below it, so nothing is computed
// for a frozen prefix: no weight gradients, no input gradients.
#include "tlc.h"

Node *step_grad(const StepBuilder *b, const Node *n) { return n->id < b->ngrads ? b->grads[n->id] : NULL; }

static bool needs(const StepBuilder *b, const Node *n) { return n && n->id < b->ngrads && n->trains; }

// A gradient kernel that stores each element once, just made for accumulate(), can add the
// gradient already there as it stores it (a fused residual): the sum takes no pass of its own.
static bool sums_as_it_stores(const Node *g) {
  bool kind = g->op == OP_COL2IM || g->op == OP_BN_DX || g->op == OP_BN_DX_RUNNING || g->op == OP_CONV2D_DX;
  return kind && !g->residual && g->nin < MAX_INPUTS;
}

// Adds g to the gradient of n; a tensor used twice gets the sum of both gradients.
static void accumulate(StepBuilder *b, Node *n, Node *g) {
  if (!needs(b, n))
    return;
  Node *old = b->grads[n->id];
  if (old && sums_as_it_stores(g)) {
    g->residual = g->nin;
    g->in[g->nin++] = old;
    b->grads[n->id] = g;
    return;
  }
  b->grads[n->id] = old ? step_node(b, OP_ADD, n->shape, n->forward, 2, old, g) : g;
}

static Node *grad_op(StepBuilder *b, OpKind op, const Node *like, const Node *fwd, int nin, Node *x0, Node *x1) {
  Node *n = step_node(b, op, like->shape, fwd->forward, nin, x0, x1);
  n->attr = fwd->attr;
  return n;
}

// Elements [offset, offset + size of like) of n, in place.
static Node *view(StepBuilder *b, Node *n, int64_t offset, const Node *like) {
  Node *v = step_node(b, OP_VIEW, like->shape, n->forward, 1, n);
  v->attr.view_offset = offset;
  return v;
}

// A batchnorm gradient kernel that reads dy takes it through y's fused activation itself
// (when y's gradient is not also a residual's): the masked gradient is never stored.
static Node *through_activation(Node *grad, Node *y) {
  if (y->epilogue && !y->residual) {
    grad->dy_activation = y->epilogue;
    grad->dy_output = grad->nin;
    grad->in[grad->nin++] = y;
  }
  return grad;
}

// dgamma and dbeta come from one pass over dy and x, as the two rows of one tensor; dx
// needs them too when the batch statistics depend on x. A frozen batchnorm on running
// statistics needs neither.
static void batchnorm_grad(StepBuilder *b, Node *y, Node *g) {
  Node *x = y->in[0], *stats = y->in[1], *gamma = y->in[2], *beta = y->in[3];
  bool batch_stats = stats->op == OP_BN_STATS;
  Node *dparams = NULL;
  if (needs(b, gamma) || needs(b, beta) || (batch_stats && needs(b, x))) {
    dparams = step_node(b, OP_BN_DPARAMS, shape2(2, gamma->shape.n), y->forward, 3, g, x, stats);
    dparams->attr = y->attr;
    through_activation(dparams, y);
    accumulate(b, gamma, view(b, dparams, 0, gamma));
    accumulate(b, beta, view(b, dparams, gamma->shape.n, beta));
  }
  if (!needs(b, x))
    return;
  Node *dx = batch_stats ? step_node(b, OP_BN_DX, x->shape, y->forward, 5, g, x, stats, gamma, dparams)
                         : step_node(b, OP_BN_DX_RUNNING, x->shape, y->forward, 3, g, stats, gamma);
  dx->attr = y->attr;
  accumulate(b, x, through_activation(dx, y));
}

// multiply(a, b): equal shapes, or one side a per-channel gate [N,C,1,1].
static void multiply_grad(StepBuilder *b, Node *y, Node *g) {
  Node *l = y->in[0], *r = y->in[1];
  for (int side = 0; side < 2; side++) {
    Node *self = side ? r : l, *other = side ? l : r;
    if (!needs(b, self))
      continue;
    bool gate = self->shape.h * self->shape.w < other->shape.h * other->shape.w;
    Node *d = gate ? step_node(b, OP_GATE_GRAD, self->shape, y->forward, 2, g, other)
                   : step_node(b, OP_MULTIPLY, self->shape, y->forward, 2, g, other);
    accumulate(b, self, d);
  }
}

// The gradient through a fused activation, from the node's (activated) output.
static Node *through_epilogue(StepBuilder *b, Node *y, Node *g) {
  static const OpKind grad_of[OP_COUNT] = {[OP_RELU] = OP_RELU_GRAD, [OP_RELU6] = OP_RELU6_GRAD,
                                           [OP_SIGMOID] = OP_SIGMOID_GRAD};
  Node *d = step_node(b, grad_of[y->epilogue], y->shape, y->forward, 2, g, y);
  d->name = y->name;
  return d;
}

// A convolution's weight gradient sums over every output position; its kernel runs about
// one thread per four output channels. Chunks of rows summed apart, then added up
// (sum_chunks), give about 2,048 threads where a GPU would otherwise have a few dozen,
// within 32 MiB of partial sums and at least 64 rows a chunk.
static Node *weight_grad(StepBuilder *b, Node *y, Node *g, Node *patches) {
  Node *w = y->in[1];
  int64_t rows = g->shape.n * g->shape.h * g->shape.w, size = shape_elems(w->shape);
  int64_t blocks = w->shape.n / 4 > 0 ? w->shape.n / 4 : 1, chunks = (2048 + blocks - 1) / blocks;
  int64_t most = (32 << 20) / (size * 4);
  chunks = chunks < most ? chunks : most;
  chunks = chunks < rows / 64 ? chunks : rows / 64;
  if (chunks < 2)
    return grad_op(b, OP_CONV_GEMM_DW, w, y, 2, g, patches);
  Node *partial = step_node(b, OP_CONV_GEMM_DW, shape2(chunks, size), y->forward, 2, g, patches);
  partial->attr = y->attr;
  return step_node(b, OP_SUM_CHUNKS, w->shape, y->forward, 1, partial);
}

static void node_grad(StepBuilder *b, Node *y, Node *g) {
  Node *x = y->in[0];
  if (y->epilogue && !(y->op == OP_BN_APPLY && !y->residual))   // else batchnorm_grad takes it through
    g = through_epilogue(b, y, g);
  if (y->residual)   // a fused add: the residual gets the sum's gradient unchanged
    accumulate(b, y->in[y->residual], g);
  switch (y->op) {
  case OP_CONV2D:
  case OP_LINEAR: {
    bool conv = y->op == OP_CONV2D;
    if (needs(b, x))
      accumulate(b, x, grad_op(b, conv ? OP_CONV2D_DX : OP_LINEAR_DX, x, y, 2, g, y->in[1]));
    if (needs(b, y->in[1]))
      accumulate(b, y->in[1], grad_op(b, conv ? OP_CONV2D_DW : OP_LINEAR_DW, y->in[1], y, 2, g, x));
    if (y->nin == 3 && needs(b, y->in[2]))
      accumulate(b, y->in[2], grad_op(b, OP_BIAS_GRAD, y->in[2], y, 1, g, NULL));
    break;
  }
  case OP_CONV_GEMM:   // trains only without a batchnorm folded in (which would need its gradient)
    if (needs(b, x))
      accumulate(b, x, grad_op(b, OP_CONV_GEMM_DX, x, y, 2, g, y->in[1]));
    if (needs(b, y->in[1]))
      accumulate(b, y->in[1], weight_grad(b, y, g, x));
    if (y->attr.conv.bias && needs(b, y->in[2]))
      accumulate(b, y->in[2], grad_op(b, OP_BIAS_GRAD, y->in[2], y, 1, g, NULL));
    break;
  case OP_IM2COL: accumulate(b, x, grad_op(b, OP_COL2IM, x, y, 1, g, NULL)); break;
  case OP_BN_APPLY: batchnorm_grad(b, y, g); break;
  case OP_RELU: accumulate(b, x, grad_op(b, OP_RELU_GRAD, x, y, 2, g, y)); break;
  case OP_RELU6: accumulate(b, x, grad_op(b, OP_RELU6_GRAD, x, y, 2, g, y)); break;
  case OP_SIGMOID: accumulate(b, x, grad_op(b, OP_SIGMOID_GRAD, x, y, 2, g, y)); break;
  case OP_SILU: accumulate(b, x, grad_op(b, OP_SILU_GRAD, x, y, 2, g, x)); break;
  case OP_MAXPOOL: accumulate(b, x, grad_op(b, OP_MAXPOOL_GRAD, x, y, 2, g, x)); break;
  case OP_AVGPOOL: accumulate(b, x, grad_op(b, OP_AVGPOOL_GRAD, x, y, 1, g, NULL)); break;
  case OP_GLOBAL_AVG_POOL: accumulate(b, x, grad_op(b, OP_GLOBAL_AVG_POOL_GRAD, x, y, 1, g, NULL)); break;
  case OP_VIEW:   // of the whole tensor (flatten): the gradient is the same elements
    accumulate(b, x, view(b, g, 0, x));
    break;
  case OP_DROPOUT: accumulate(b, x, grad_op(b, OP_DROPOUT_GRAD, x, y, 2, g, y->in[1])); break;
  case OP_STOCHASTIC_DEPTH: accumulate(b, x, grad_op(b, OP_STOCHASTIC_DEPTH_GRAD, x, y, 2, g, y->in[1])); break;
  case OP_ADD:
    accumulate(b, x, g);
    accumulate(b, y->in[1], g);
    break;
  case OP_MULTIPLY: multiply_grad(b, y, g); break;
  default: break;   // parameters, statistics, the input: nothing below them
  }
}

void autodiff(StepBuilder *b, Node *logits, Node *dlogits) {
  int nforward = b->g->n - 1;   // everything before dlogits
  b->ngrads = nforward;
  b->grads = arena_alloc(b->arena, sizeof(Node *) * (size_t)(nforward + 1));
  if (!needs(b, logits))
    return;   // everything is frozen: the step only evaluates
  b->grads[logits->id] = dlogits;
  for (int i = nforward - 1; i >= 0; i--) {
    Node *y = b->g->nodes[i];
    if (b->grads[i] && y->trains)
      node_grad(b, y, b->grads[i]);
  }
}
