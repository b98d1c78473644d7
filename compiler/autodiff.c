// autodiff.c: reverse-mode differentiation of the step's forward nodes, one rule per op
// (ggml's shape: rules that add gradient nodes to the same graph), named by the op table
// (ops.def). A node gets a gradient only when a trainable parameter lies at or below it, so
// nothing is computed for a frozen prefix: no weight gradients, no input gradients. The rules
// write plain ops; which of them share a kernel is fusion.c's business.
#include "tlc.h"

Node *step_grad(const StepBuilder *b, const Node *n) { return n->id < b->ngrads ? b->grads[n->id] : NULL; }

static bool needs(const StepBuilder *b, const Node *n) { return n && n->id < b->ngrads && n->trains; }

// Adds g to the gradient of n; a tensor used twice gets the sum of both gradients.
static void accumulate(StepBuilder *b, Node *n, Node *g) {
  if (!needs(b, n))
    return;
  Node *old = b->grads[n->id];
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

// The gradient of y's input x as the one op `op` of dy (and of other: what it needs besides).
static void unary(StepBuilder *b, OpKind op, Node *y, Node *g, Node *other) {
  accumulate(b, y->in[0], grad_op(b, op, y->in[0], y, other ? 2 : 1, g, other));
}

// A convolution or linear layer, y = x * w (+ bias): dx and dw by the op's own products,
// the bias gradient a sum over all but the channels.
static void product_grad(StepBuilder *b, Node *y, Node *g, OpKind dx, OpKind dw) {
  Node *x = y->in[0];
  if (needs(b, x))
    accumulate(b, x, grad_op(b, dx, x, y, 2, g, y->in[1]));
  if (needs(b, y->in[1]))
    accumulate(b, y->in[1], grad_op(b, dw, y->in[1], y, 2, g, x));
  if (y->nin == 3 && needs(b, y->in[2]))
    accumulate(b, y->in[2], grad_op(b, OP_BIAS_GRAD, y->in[2], y, 1, g, NULL));
}

static void grad_conv2d(StepBuilder *b, Node *y, Node *g) { product_grad(b, y, g, OP_CONV2D_DX, OP_CONV2D_DW); }
static void grad_linear(StepBuilder *b, Node *y, Node *g) { product_grad(b, y, g, OP_LINEAR_DX, OP_LINEAR_DW); }

// dgamma and dbeta come from one pass over dy and x, as the two rows of one tensor; dx
// needs them too when the batch statistics depend on x. A frozen batchnorm on running
// statistics needs neither.
static void grad_bn_apply(StepBuilder *b, Node *y, Node *g) {
  Node *x = y->in[0], *stats = y->in[1], *gamma = y->in[2], *beta = y->in[3];
  bool batch_stats = stats->op == OP_BN_STATS;
  Node *dparams = NULL;
  if (needs(b, gamma) || needs(b, beta) || (batch_stats && needs(b, x))) {
    dparams = step_node(b, OP_BN_DPARAMS, shape2(2, gamma->shape.n), y->forward, 3, g, x, stats);
    dparams->attr = y->attr;
    accumulate(b, gamma, view(b, dparams, 0, gamma));
    accumulate(b, beta, view(b, dparams, gamma->shape.n, beta));
  }
  if (!needs(b, x))
    return;
  Node *dx = batch_stats ? step_node(b, OP_BN_DX, x->shape, y->forward, 5, g, x, stats, gamma, dparams)
                         : step_node(b, OP_BN_DX_RUNNING, x->shape, y->forward, 3, g, stats, gamma);
  dx->attr = y->attr;
  accumulate(b, x, dx);
}

// Activations: relu, relu6 and sigmoid from their output, silu from its input.
static void grad_relu(StepBuilder *b, Node *y, Node *g) { unary(b, OP_RELU_GRAD, y, g, y); }
static void grad_relu6(StepBuilder *b, Node *y, Node *g) { unary(b, OP_RELU6_GRAD, y, g, y); }
static void grad_sigmoid(StepBuilder *b, Node *y, Node *g) { unary(b, OP_SIGMOID_GRAD, y, g, y); }
static void grad_silu(StepBuilder *b, Node *y, Node *g) { unary(b, OP_SILU_GRAD, y, g, y->in[0]); }

static void grad_maxpool(StepBuilder *b, Node *y, Node *g) { unary(b, OP_MAXPOOL_GRAD, y, g, y->in[0]); }
static void grad_avgpool(StepBuilder *b, Node *y, Node *g) { unary(b, OP_AVGPOOL_GRAD, y, g, NULL); }
static void grad_global_avg_pool(StepBuilder *b, Node *y, Node *g) { unary(b, OP_GLOBAL_AVG_POOL_GRAD, y, g, NULL); }

// Dropout and stochastic depth draw the same mask again from the seed.
static void grad_dropout(StepBuilder *b, Node *y, Node *g) { unary(b, OP_DROPOUT_GRAD, y, g, y->in[1]); }
static void grad_stochastic_depth(StepBuilder *b, Node *y, Node *g) {
  unary(b, OP_STOCHASTIC_DEPTH_GRAD, y, g, y->in[1]);
}

// A view of the whole tensor (flatten): the gradient is the same elements.
static void grad_view(StepBuilder *b, Node *y, Node *g) { accumulate(b, y->in[0], view(b, g, 0, y->in[0])); }

static void grad_add(StepBuilder *b, Node *y, Node *g) {
  accumulate(b, y->in[0], g);
  accumulate(b, y->in[1], g);
}

// multiply(a, b): equal shapes, or one side a per-channel gate [N,C,1,1].
static void grad_multiply(StepBuilder *b, Node *y, Node *g) {
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

typedef void GradRule(StepBuilder *b, Node *y, Node *g);

#define grad_NONE NULL
static GradRule *const grad_rules[OP_COUNT] = {
#define OP(kind, name, arity, kernel, grad) [OP_##kind] = grad_##grad,
#include "ops.def"
#undef OP
};

void autodiff(StepBuilder *b, Node *logits, Node *dlogits) {
  int nforward = b->g->n - 1;   // everything before dlogits
  b->ngrads = nforward;
  b->grads = arena_alloc(b->arena, sizeof(Node *) * (size_t)(nforward + 1));
  if (!needs(b, logits))
    return;   // everything is frozen: the step only evaluates
  b->grads[logits->id] = dlogits;
  for (int i = nforward - 1; i >= 0; i--) {
    Node *y = b->g->nodes[i];
    if (b->grads[i] && y->trains && grad_rules[y->op])
      grad_rules[y->op](b, y, b->grads[i]);
  }
}
