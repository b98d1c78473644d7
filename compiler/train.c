// train.c: the training step (and the evaluation pass) as a graph of tensor ops, plain:
// every layer its own node. Model layers are rewritten into the ops kernels implement:
// parameters become tensors, batchnorm becomes statistics + application (+ the
// running-statistics update), a convolution reads its image (no patch matrix), dropout and stochastic depth read the step's seed, the loss is appended, then
// autodiff.c adds the backward pass and this file the optimizer updates. Which nodes share
// a kernel is fusion.c's to decide, and their order schedule.c's.
#include "tlc.h"

#include <stdarg.h>

Node *step_node(StepBuilder *b, OpKind op, Shape shape, const Node *forward, int nin, ...) {
  Graph *g = b->g;
  Node *n = arena_alloc(b->arena, sizeof *n);
  n->op = op;
  n->shape = shape;
  n->forward = forward;
  n->name = forward ? forward->name : "";
  n->span = forward ? forward->span : (Span){0};
  va_list ap;
  va_start(ap, nin);
  for (int i = 0; i < nin; i++) {
    Node *in = va_arg(ap, Node *);
    n->in[n->nin++] = in;
    n->trains |= in && in->trains;
  }
  va_end(ap);
  n->id = g->n;
  ARENA_PUSH(b->arena, g->nodes, g->n, g->cap, n);
  return n;
}

static Shape shape1(int64_t n) { return (Shape){.rank = 1, .d = {n, 1, 1, 1}}; }

static Node *param_node(StepBuilder *b, const Param *p) {
  Node *n = step_node(b, OP_PARAM, shape_of_param(p), p->owner, 0);
  n->name = p->name;
  n->param = p;
  n->is_int = p->is_int;
  n->trains = b->training && !p->buffer && !p->frozen;
  ARENA_PUSH(b->arena, b->g->params, b->g->nparams, b->g->pcap, (Param *)p);
  return n;
}

// Batchnorm: batch statistics when training (unless frozen with running statistics,
// the default: then it is a constant affine map), running statistics in evaluation.
static Node *batchnorm(StepBuilder *b, const Node *m, Node *x, Node **p) {
  bool batch_stats = b->training && (!m->frozen || b->recipe->frozen_bn == FROZEN_BN_BATCH);
  Node *stats;
  if (batch_stats) {
    stats = step_node(b, OP_BN_STATS, shape2(2, x->shape.c), m, 1, x);
    Node *update = step_node(b, OP_BN_UPDATE_RUNNING, shape1(x->shape.c), m, 4, stats, p[2], p[3], p[4]);
    update->writes_inputs = true;
    update->attr.bn = m->attr.bn;
  } else {
    stats = step_node(b, OP_BN_RUNNING_STATS, shape2(2, x->shape.c), m, 2, p[2], p[3]);
  }
  stats->attr.bn = m->attr.bn;
  Node *y = step_node(b, OP_BN_APPLY, x->shape, m, 4, x, stats, p[0], p[1]);
  y->attr.bn = m->attr.bn;
  return y;
}

// A convolution reads its image directly, in training too: no patch matrix is stored from
// the forward pass to the backward one (the CPU's kernels gather patches as they pack
// them, codegen/conv_cpu.h; the GPU's tiles stage them in shared memory).
static Node *conv(StepBuilder *b, const Node *m, Node *x, Node **p) {
  return step_node(b, OP_CONV2D, m->shape, m, p[1] ? 3 : 2, x, p[0], p[1]);
}

// One model layer in the step; returns the node holding its output.
static Node *forward_layer(StepBuilder *b, const Node *m) {
  Node *in[2] = {0};
  for (int i = 0; i < m->nin; i++)
    in[i] = b->of_model[m->in[i]->id];
  Node *p[5] = {0};
  for (int i = 0; i < m->nparams; i++)
    p[i] = param_node(b, m->params[i]);
  Node *n;
  switch (m->op) {
  case OP_INPUT:
    n = step_node(b, OP_INPUT, m->shape, m, 0);
    b->g->images = n;
    return n;
  case OP_BATCHNORM: return batchnorm(b, m, in[0], p);
  case OP_CONV2D: n = conv(b, m, in[0], p); break;
  case OP_LINEAR: n = step_node(b, m->op, m->shape, m, p[1] ? 3 : 2, in[0], p[0], p[1]); break;
  case OP_IDENTITY: return in[0];
  case OP_FLATTEN: return step_node(b, OP_VIEW, m->shape, m, 1, in[0]);   // the same elements, no copy
  case OP_DROPOUT:
  case OP_STOCHASTIC_DEPTH:
    if (!b->training || m->attr.drop.p == 0)
      return in[0];
    n = step_node(b, m->op, m->shape, m, 2, in[0], b->seed);
    n->attr.drop.salt = m->id;
    break;
  default:
    n = step_node(b, m->op, m->shape, m, m->nin, in[0], in[1]);
    break;
  }
  n->attr = m->attr;
  if (m->op == OP_DROPOUT || m->op == OP_STOCHASTIC_DEPTH)
    n->attr.drop.salt = m->id;
  return n;
}

// The mean softmax cross-entropy of the logits against the labels.
static void loss(StepBuilder *b) {
  Graph *g = b->g;
  Node *logits = b->of_model[g->logits->id];
  if (logits->shape.rank != 2)
    error_at(g->logits->span, "the model's output must be flat logits [N,classes], found %s (end it with flatten "
             "and linear)", shape_str(b->arena, logits->shape));
  g->logits = logits;
  g->labels = step_node(b, OP_LABELS, shape1(logits->shape.n), NULL, 0);
  g->labels->is_int = true;
  g->labels->name = "labels";
  g->loss = step_node(b, OP_XENT, shape1(logits->shape.n), NULL, 2, logits, g->labels);
  g->loss->attr.loss.label_smoothing = b->recipe->label_smoothing;
  g->loss->name = "loss";
}

// The learning-rate factor of a parameter: that of the last group naming its layer.
static double lr_factor(const StepBuilder *b, const Param *p) {
  double f = 1;
  for (int i = 0; i < b->recipe->nlr_mult; i++)
    if (layer_in(p->owner->name, b->recipe->lr_mult[i].layer.path))
      f = b->recipe->lr_mult[i].factor;
  return f;
}

static Node *state(StepBuilder *b, const Node *param, const char *what) {
  Node *n = step_node(b, OP_STATE, param->shape, param->forward, 0);
  n->name = arena_printf(b->arena, "%s.%s", param->name, what);
  n->param = param->param;
  return n;
}

// One optimizer update per trainable parameter, after the whole backward pass.
static void updates(StepBuilder *b, Node **params, int nparams) {
  for (int i = 0; i < nparams; i++) {
    Node *p = params[i], *grad = step_grad(b, p);
    if (!grad)
      continue;
    OptAttrs opt = b->recipe->opt;
    opt.lr *= lr_factor(b, p->param);
    if (!b->recipe->decay_bn_bias && p->param->dims == 1)
      opt.weight_decay = 0;
    Node *u;
    if (b->recipe->optimizer != OPT_SGD)
      u = step_node(b, OP_ADAM_UPDATE, p->shape, p->forward, 6, p, grad, b->lr, state(b, p, "exp_avg"),
                    state(b, p, "exp_avg_sq"), b->seed);
    else if (opt.momentum > 0)
      u = step_node(b, OP_SGD_UPDATE, p->shape, p->forward, 4, p, grad, b->lr, state(b, p, "momentum_buffer"));
    else
      u = step_node(b, OP_SGD_UPDATE, p->shape, p->forward, 3, p, grad, b->lr);
    u->attr.opt = opt;
    u->writes_inputs = true;
    u->name = p->name;
  }
}

Graph *step_build(Arena *a, const Graph *model, const Recipe *r, bool training) {
  StepBuilder b = {.arena = a, .recipe = r, .training = training};
  b.g = arena_alloc(a, sizeof *b.g);
  b.g->model = model->model;
  b.g->batch = model->batch;
  b.g->arena = a;
  b.g->logits = model->output;
  b.of_model = arena_alloc(a, sizeof(Node *) * (size_t)model->n);
  b.seed = step_node(&b, OP_SEED, shape1(2), NULL, 0);
  b.seed->is_int = true;
  b.seed->name = "seed";
  b.lr = training ? step_node(&b, OP_LR, shape1(1), NULL, 0) : NULL;
  if (b.lr)
    b.lr->name = "lr";
  for (int i = 0; i < model->n; i++)
    b.of_model[i] = forward_layer(&b, model->nodes[i]);
  loss(&b);
  b.g->output = b.g->loss;
  if (!training)
    return b.g;
  Node **params = arena_alloc(a, sizeof(Node *) * (size_t)(b.g->n + 1));
  int nparams = 0;
  for (int i = 0; i < b.g->n; i++)
    if (b.g->nodes[i]->op == OP_PARAM)
      params[nparams++] = b.g->nodes[i];
  Node *dlogits = step_node(&b, OP_XENT_GRAD, b.g->logits->shape, NULL, 2, b.g->logits, b.g->labels);
  dlogits->attr.loss = b.g->loss->attr.loss;
  dlogits->name = "loss";
  autodiff(&b, b.g->logits, dlogits);
  updates(&b, params, nparams);
  return b.g;
}

Graph *train_build(Arena *a, const Graph *model, const Recipe *r, bool training) {
  Graph *g = step_build(a, model, r, training);
  fuse_step(a, g);
  schedule_step(a, g);
  int boundary = training ? feature_boundary(a, g, r) : -1;
  g->features = boundary >= 0 ? g->nodes[boundary] : NULL;
  return g;
}
