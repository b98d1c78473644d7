// ops.c: the table of layers. For each op: its name and inputs (ops.def), its arguments
// (with defaults and ranges), its output shape, its parameters (named as PyTorch names them)
// and its cost; and how a node describes itself, fused work included.
#include "tlc.h"

#include <string.h>

const OpInfo op_info[OP_COUNT] = {
#define OP(kind, name, arity, kernel, grad) [OP_##kind] = {name, arity},
#include "ops.def"
#undef OP
};

OpKind op_lookup(const char *name) {
  for (int i = 1; i < OP_PARAM; i++)   // 'input' and the training ops are made by the compiler
    if (strcmp(op_info[i].name, name) == 0)
      return (OpKind)i;
  return OP_COUNT;
}

static const ArgSpec conv_spec[] = {
    {"out", ARG_INT, true, 1, MAX_DIM},   {"kernel", ARG_INT, true, 1, 1024}, {"stride", ARG_INT, false, 1, 1024},
    {"pad", ARG_INT, false, 0, 1024},     {"groups", ARG_INT, false, 1, MAX_DIM},
    {"dilation", ARG_INT, false, 1, 1024}, {"bias", ARG_BOOL, false, 0, 0},
};
static const ArgSpec bn_spec[] = {{"eps", ARG_FLOAT, false, 1e-12, 1}, {"momentum", ARG_FLOAT, false, 0, 1}};
static const ArgSpec pool_spec[] = {
    {"kernel", ARG_INT, true, 1, 1024}, {"stride", ARG_INT, false, 1, 1024}, {"pad", ARG_INT, false, 0, 512}};
static const ArgSpec linear_spec[] = {{"out", ARG_INT, true, 1, MAX_DIM}, {"bias", ARG_BOOL, false, 0, 0}};
static const ArgSpec dropout_spec[] = {{"p", ARG_FLOAT, false, 0, 0.999999}};
static const ArgSpec sd_spec[] = {{"p", ARG_FLOAT, true, 0, 0.999999}};

#define SPEC(s) s, (int)(sizeof s / sizeof *s)

const char *shape_str(Arena *a, Shape s) {
  const char *out = "[";
  for (int i = 0; i < s.rank; i++)
    out = arena_printf(a, "%s%s%lld", out, i ? "," : "", (long long)s.d[i]);
  return arena_printf(a, "%s]", out);
}

Shape shape4(int64_t n, int64_t c, int64_t h, int64_t w) { return (Shape){.rank = 4, .d = {n, c, h, w}}; }
Shape shape2(int64_t n, int64_t f) { return (Shape){.rank = 2, .d = {n, f, 1, 1}}; }

int64_t shape_elems(Shape s) { return s.n * s.c * s.h * s.w; }

int64_t conv_stats_chunks(const Node *n) {
  int64_t rows = n->shape.n * n->shape.h * n->shape.w;
  int64_t chunk = n->fused.stats_rows;
  return chunk ? (rows + chunk - 1) / chunk : 0;
}

bool conv_rows_by_position(const ConvAttrs *c, Shape y) {
  return c->groups == 1 && c->kernel > 1 && y.h * y.w <= 4;
}

bool conv_by_position(const Node *n) { return conv_rows_by_position(&n->attr.conv, n->shape); }

// On mobilenet_v2's 7x7 images (49 positions) the dot products took 1.6x the packed
// product's time: three vector steps and a masked one an image, then the adding up.
bool conv_dw_dots(const Node *n) {
  const ConvAttrs *c = &n->attr.conv;
  return c->groups == 1 && c->kernel == 1 && c->stride == 1 && c->pad == 0 && n->shape.h * n->shape.w >= 196;
}

// By patch where the patches are at least as many as the output channels, and where they
// are too few to fill one register tile's 64 columns (AVX-512) as dy's columns: a stem's 27
// (3 channels, 3x3), whose weight gradient by patch took 35-37 ms a step against 46-52 on
// MobileNetV2 at 224 (AMD EPYC, one thread, three alternating runs). ResNet-18's 1x1 stride-2
// 64 -> 128 at 224 took 15 ms by patch against 12-15 by dy, so it keeps dy.
enum { CONV_DW_NARROW_PATCHES = 64 };

bool conv_dw_by_patch(const Node *n) {
  const ConvAttrs *c = &n->attr.conv;
  int64_t co = n->shape.c, patch_rows = n->in[0]->shape.c * c->kernel * c->kernel;
  return c->groups == 1 && !conv_by_position(n) && !conv_dw_dots(n) && co <= 128 &&
         (patch_rows >= co || patch_rows < CONV_DW_NARROW_PATCHES);
}

bool conv_reads_phases(const Node *n) {
  const ConvAttrs *c = &n->attr.conv;
  Shape x = n->in[0]->shape, y = n->shape;
  int64_t s = c->stride;
  return c->groups == 1 && s > 1 && c->kernel > 1 && !conv_by_position(n) && y.h == (x.h + s - 1) / s &&
         y.w == (x.w + s - 1) / s;
}

// Measured against the direct loops on MobileNetV2 at 224 (batch 32, AMD EPYC, one thread,
// docs/cpu.md): the input gradient took 0.13-0.3x their time at 14 x 14 and 28 x 28, 0.6-0.9x
// at 56 and 112; the weight gradient 0.3-0.7x from 14 x 14 up, but 3.4x at stride 2 from
// 28 x 28 (phase rows of 15, too short for vectors); on 7 x 7 planes both 1.1-2x.
enum { DEPTHWISE_MIN_POSITIONS = 14 * 14, DEPTHWISE_MIN_STRIDED_WIDTH = 56, DEPTHWISE_MAX_PLANE = 1 << 18 };

// A group per channel, one output channel each.
static bool is_depthwise(const Node *n) {
  const ConvAttrs *c = &n->attr.conv;
  return c->groups > 1 && c->groups == n->in[0]->shape.c && c->groups == c->out;
}

static bool depthwise(const Node *n) {
  const ConvAttrs *c = &n->attr.conv;
  Shape x = n->in[0]->shape;
  return is_depthwise(n) && c->stride <= 4 && c->kernel <= 7 && x.h * x.w <= DEPTHWISE_MAX_PLANE;
}

bool conv_depthwise_dx_padded(const Node *n) {
  Shape x = n->in[0]->shape;
  int64_t s = n->attr.conv.stride;
  return depthwise(n) && ((x.h + s - 1) / s) * ((x.w + s - 1) / s) >= DEPTHWISE_MIN_POSITIONS;
}

bool conv_depthwise_dw_padded(const Node *n) {
  return depthwise(n) && n->shape.h * n->shape.w >= DEPTHWISE_MIN_POSITIONS &&
         (n->attr.conv.stride == 1 || n->in[0]->shape.w >= DEPTHWISE_MIN_STRIDED_WIDTH);
}

const char *conv_algorithm(const Node *n) {
  const ConvAttrs *c = &n->attr.conv;
  if (c->groups > 1)
    return is_depthwise(n) ? "depthwise, direct" : "grouped, direct";
  if (c->kernel == 1 && c->stride == 1 && c->pad == 0)
    return "1x1: product on the activation";
  if (conv_by_position(n))
    return "product, rows by position";
  return conv_reads_phases(n) ? "product, rows by image, input by stride phase" : "product, rows by image";
}

// The statistics tail is [chunks][2][C]: each chunk's mean and sum of squared deviations.
int64_t node_elems(const Node *n) {
  return shape_elems(n->shape) + conv_stats_chunks(n) * 2 * n->shape.c + reduction_partial_elems(n);
}

int64_t node_result_elems(const Node *n) { return node_elems(n) - reduction_partial_elems(n); }

int64_t reduction_chunks(const Node *n) {
  bool merged = n->op == OP_BN_STATS && n->in[0]->fused.stats_rows;
  if ((n->op != OP_BN_STATS && n->op != OP_BN_DPARAMS && n->op != OP_BIAS_GRAD) || merged)
    return 0;
  Shape x = n->in[0]->shape;
  return (x.n * x.h * x.w + REDUCTION_CHUNK - 1) / REDUCTION_CHUNK;
}

int reduction_results(const Node *n) { return n->op == OP_BIAS_GRAD ? 1 : 2; }

// The channels are the reduced tensor's: a bias gradient's own shape is the bias's, [C].
int64_t reduction_partial_elems(const Node *n) {
  int64_t chunks = reduction_chunks(n);
  return chunks ? chunks * reduction_results(n) * n->in[0]->shape.c : 0;
}

Shape shape_of_param(const Param *p) {
  Shape s = {.rank = p->dims, .d = {1, 1, 1, 1}};
  for (int i = 0; i < p->dims; i++)
    s.d[i] = p->dim[i];
  return s;
}

static Param *add_param(Arena *a, Node *n, const char *suffix, int dims, int64_t d0, int64_t d1, int64_t d2,
                        int64_t d3, bool buffer) {
  Param *p = arena_alloc(a, sizeof *p);
  p->name = n->name[0] ? arena_printf(a, "%s.%s", n->name, suffix) : arena_strdup(a, suffix);
  p->dims = dims;
  int64_t d[4] = {d0, d1, d2, d3};
  memcpy(p->dim, d, sizeof d);
  p->buffer = buffer;
  p->owner = n;
  p->is_int = dims == 0;   // num_batches_tracked, an int64 in PyTorch
  n->params = n->params ? n->params : arena_alloc(a, sizeof(Param *) * 5);
  n->params[n->nparams++] = p;
  return p;
}

static void need_rank4(const Node *n, const Node *in, Arena *a) {
  if (in->shape.rank != 4)
    error_at(n->span, "%s needs an image-shaped input [N,C,H,W], found %s", op_info[n->op].name,
             shape_str(a, in->shape));
}

// PyTorch's output size of a window of kernel k (dilated) sliding with stride s over pad-ed n.
static int64_t window_out(const Node *n, const char *axis, int64_t size, int64_t k, int64_t s, int64_t p,
                          int64_t d) {
  int64_t span = d * (k - 1) + 1;
  if (size + 2 * p < span)
    error_at(n->span, "%s window %lld (dilation %lld) does not fit the input %s %lld plus padding %lld on each side",
             op_info[n->op].name, (long long)k, (long long)d, axis, (long long)size, (long long)p);
  return (size + 2 * p - span) / s + 1;
}

static void build_conv(Arena *a, Node *n, const BoundArgs *b) {
  const Node *in = n->in[0];
  need_rank4(n, in, a);
  ConvAttrs *c = &n->attr.conv;
  *c = (ConvAttrs){.out = arg_int(b, 0, 0), .kernel = arg_int(b, 1, 0), .stride = arg_int(b, 2, 1),
                   .pad = arg_int(b, 3, 0), .groups = arg_int(b, 4, 1), .dilation = arg_int(b, 5, 1),
                   .bias = arg_bool(b, 6, true)};
  if (in->shape.c % c->groups != 0 || c->out % c->groups != 0)
    error_at(b->v[4] ? b->v[4]->span : n->span,
             "conv2d groups=%lld must divide both the input channels (%lld) and the output channels (%lld)",
             (long long)c->groups, (long long)in->shape.c, (long long)c->out);
  int64_t oh = window_out(n, "height", in->shape.h, c->kernel, c->stride, c->pad, c->dilation);
  int64_t ow = window_out(n, "width", in->shape.w, c->kernel, c->stride, c->pad, c->dilation);
  n->shape = shape4(in->shape.n, c->out, oh, ow);
  add_param(a, n, "weight", 4, c->out, in->shape.c / c->groups, c->kernel, c->kernel, false);
  if (c->bias)
    add_param(a, n, "bias", 1, c->out, 0, 0, 0, false);
}

static void build_pool(Arena *a, Node *n, const BoundArgs *b) {
  const Node *in = n->in[0];
  need_rank4(n, in, a);
  PoolAttrs *p = &n->attr.pool;
  p->kernel = arg_int(b, 0, 0);
  p->stride = arg_int(b, 1, p->kernel);
  p->pad = arg_int(b, 2, 0);
  if (2 * p->pad > p->kernel)
    error_at(b->v[2]->span, "padding %lld is more than half the kernel %lld (PyTorch rejects it too)",
             (long long)p->pad, (long long)p->kernel);
  int64_t oh = window_out(n, "height", in->shape.h, p->kernel, p->stride, p->pad, 1);
  int64_t ow = window_out(n, "width", in->shape.w, p->kernel, p->stride, p->pad, 1);
  n->shape = shape4(in->shape.n, in->shape.c, oh, ow);
}

static void build_batchnorm(Arena *a, Node *n, const BoundArgs *b) {
  n->attr.bn = (BatchNormAttrs){arg_float(b, 0, 1e-5), arg_float(b, 1, 0.1)};
  n->shape = n->in[0]->shape;
  int64_t c = n->shape.c;
  add_param(a, n, "weight", 1, c, 0, 0, 0, false);
  add_param(a, n, "bias", 1, c, 0, 0, 0, false);
  add_param(a, n, "running_mean", 1, c, 0, 0, 0, true);
  add_param(a, n, "running_var", 1, c, 0, 0, 0, true);
  add_param(a, n, "num_batches_tracked", 0, 0, 0, 0, 0, true);
}

static void build_linear(Arena *a, Node *n, const BoundArgs *b) {
  const Node *in = n->in[0];
  if (in->shape.rank != 2)
    error_at(n->span, "linear needs a flat input [N,F], found %s (add 'flatten' before it)", shape_str(a, in->shape));
  n->attr.linear = (LinearAttrs){arg_int(b, 0, 0), arg_bool(b, 1, true)};
  n->shape = shape2(in->shape.n, n->attr.linear.out);
  add_param(a, n, "weight", 2, n->attr.linear.out, in->shape.c, 0, 0, false);
  if (n->attr.linear.bias)
    add_param(a, n, "bias", 1, n->attr.linear.out, 0, 0, 0, false);
}

static void build_binary(Arena *a, Node *n) {
  Shape x = n->in[0]->shape, y = n->in[1]->shape;
  bool same = x.rank == y.rank && x.n == y.n && x.c == y.c && x.h == y.h && x.w == y.w;
  if (n->op == OP_ADD && !same)
    error_at(n->span, "add needs two tensors of the same shape, found %s and %s", shape_str(a, x), shape_str(a, y));
  if (!same) {
    // multiply broadcasts a per-channel [N,C,1,1] gate over [N,C,H,W] (squeeze-excitation).
    bool gate_y = y.rank == 4 && y.h == 1 && y.w == 1 && x.rank == 4 && x.n == y.n && x.c == y.c;
    bool gate_x = x.rank == 4 && x.h == 1 && x.w == 1 && y.rank == 4 && x.n == y.n && x.c == y.c;
    if (!gate_x && !gate_y)
      error_at(n->span, "multiply needs equal shapes or a per-channel [N,C,1,1] gate, found %s and %s",
               shape_str(a, x), shape_str(a, y));
    if (gate_x)
      x = y;
  }
  n->shape = x;
}

Node *op_build(Arena *a, OpKind op, const char *name, Node **in, int nin, const Field *args, int nargs,
               Span span) {
  Node *n = arena_alloc(a, sizeof *n);
  n->op = op;
  n->span = span;
  n->name = name;
  n->nin = nin;
  for (int i = 0; i < nin; i++)
    n->in[i] = in[i];
  BoundArgs b;
  const Shape x = n->in[0]->shape;
  switch (n->op) {
  case OP_CONV2D: args_bind(a, op_info[n->op].name, SPEC(conv_spec), args, nargs, n->span, &b); build_conv(a, n, &b); break;
  case OP_BATCHNORM: args_bind(a, op_info[n->op].name, SPEC(bn_spec), args, nargs, n->span, &b); build_batchnorm(a, n, &b); break;
  case OP_MAXPOOL:
  case OP_AVGPOOL: args_bind(a, op_info[n->op].name, SPEC(pool_spec), args, nargs, n->span, &b); build_pool(a, n, &b); break;
  case OP_LINEAR: args_bind(a, op_info[n->op].name, SPEC(linear_spec), args, nargs, n->span, &b); build_linear(a, n, &b); break;
  case OP_DROPOUT:
    args_bind(a, op_info[n->op].name, SPEC(dropout_spec), args, nargs, n->span, &b);
    n->attr.drop.p = arg_float(&b, 0, 0.5);
    n->shape = x;
    break;
  case OP_STOCHASTIC_DEPTH:
    args_bind(a, op_info[n->op].name, SPEC(sd_spec), args, nargs, n->span, &b);
    n->attr.drop.p = arg_float(&b, 0, 0);
    n->shape = x;
    break;
  case OP_GLOBAL_AVG_POOL:
    args_bind(a, op_info[n->op].name, NULL, 0, args, nargs, n->span, &b);
    need_rank4(n, n->in[0], a);
    n->shape = shape4(x.n, x.c, 1, 1);
    break;
  case OP_FLATTEN:
    args_bind(a, op_info[n->op].name, NULL, 0, args, nargs, n->span, &b);
    if (x.c > INT64_MAX / x.h / x.w || x.c * x.h * x.w > MAX_DIM)
      error_at(n->span, "flatten of %s gives more than %d features", shape_str(a, x), MAX_DIM);
    n->shape = shape2(x.n, x.c * x.h * x.w);
    break;
  case OP_ADD:
  case OP_MULTIPLY:
    args_bind(a, op_info[n->op].name, NULL, 0, args, nargs, n->span, &b);
    build_binary(a, n);
    break;
  default:
    args_bind(a, op_info[n->op].name, NULL, 0, args, nargs, n->span, &b);
    n->shape = x;
    break;
  }
  return n;
}

int64_t node_macs(const Node *n) {
  const Shape s = n->shape;
  switch (n->op) {
  case OP_CONV2D: {
    const ConvAttrs *c = &n->attr.conv;
    return s.c * s.h * s.w * (n->in[0]->shape.c / c->groups) * c->kernel * c->kernel;
  }
  case OP_LINEAR: return n->in[0]->shape.c * s.c;
  default: return 0;
  }
}

// A product's gradients (conv2d_dx, conv2d_dw, linear_dx, linear_dw) do as many
// multiply-accumulates as its forward pass; every other op is counted as one operation per
// element of the largest tensor it reads or writes: its arithmetic is small beside the bytes
// it moves, and only the order of magnitude matters there.
int64_t node_flops(const Node *n) {
  switch (n->op) {
  case OP_CONV2D:
  case OP_LINEAR: return 2 * node_macs(n) * n->shape.n;
  case OP_CONV2D_DX:
  case OP_CONV2D_DW:
  case OP_LINEAR_DX:
  case OP_LINEAR_DW: return n->forward ? 2 * node_macs(n->forward) * n->forward->shape.n : 0;
  default: break;
  }
  // A two-pass reduction's partial sums after a tensor are no elements of it.
  int64_t most = node_result_elems(n);
  for (int i = 0; i < n->nin; i++)
    if (node_result_elems(n->in[i]) > most)
      most = node_result_elems(n->in[i]);
  return most;
}

static const char *describe_op(Arena *a, const Node *n);

const char *node_describe(Arena *a, const Node *n) {
  const char *s = describe_op(a, n);
  const Fused *f = &n->fused;
  if (f->bn.stats)
    s = arena_printf(a, "%s + batchnorm", s);
  if (f->stats_rows)
    s = arena_printf(a, "%s + batchnorm statistics", s);
  if (f->residual)
    s = arena_printf(a, "%s + add", s);
  if (f->dy_activation)
    s = arena_printf(a, "%s through %s", s, op_info[f->dy_activation].name);
  return f->activation ? arena_printf(a, "%s + %s", s, op_info[f->activation].name) : s;
}

static const char *describe_op(Arena *a, const Node *n) {
  switch (n->op) {
  case OP_CONV2D: {
    const ConvAttrs *c = &n->attr.conv;
    const char *s = arena_printf(a, "conv2d %lldx%lld", (long long)c->kernel, (long long)c->kernel);
    if (c->stride != 1)
      s = arena_printf(a, "%s s%lld", s, (long long)c->stride);
    if (c->pad)
      s = arena_printf(a, "%s p%lld", s, (long long)c->pad);
    if (c->dilation != 1)
      s = arena_printf(a, "%s d%lld", s, (long long)c->dilation);
    if (c->groups != 1)
      s = c->groups == n->in[0]->shape.c && c->groups == c->out ? arena_printf(a, "%s depthwise", s)
                                                                 : arena_printf(a, "%s g%lld", s, (long long)c->groups);
    s = arena_printf(a, "%s %lld->%lld", s, (long long)n->in[0]->shape.c, (long long)c->out);
    return c->bias ? s : arena_printf(a, "%s nobias", s);
  }
  case OP_MAXPOOL:
  case OP_AVGPOOL:
    return arena_printf(a, "%s %lldx%lld s%lld p%lld", op_info[n->op].name, (long long)n->attr.pool.kernel,
                        (long long)n->attr.pool.kernel, (long long)n->attr.pool.stride, (long long)n->attr.pool.pad);
  case OP_VIEW: return n->attr.view_offset ? arena_printf(a, "view from %lld", (long long)n->attr.view_offset) : "view";
  case OP_BATCHNORM: return arena_printf(a, "batchnorm eps=%g momentum=%g", n->attr.bn.eps, n->attr.bn.momentum);
  case OP_LINEAR:
    return arena_printf(a, "linear %lld->%lld%s", (long long)n->in[0]->shape.c, (long long)n->attr.linear.out,
                        n->attr.linear.bias ? "" : " nobias");
  case OP_DROPOUT:
  case OP_STOCHASTIC_DEPTH: return arena_printf(a, "%s p=%g", op_info[n->op].name, n->attr.drop.p);
  default: return op_info[n->op].name;
  }
}
