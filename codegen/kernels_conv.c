// kernels_conv.c: convolution forward, and its gradients with respect to the input and
// the weights. The loops are ordered so that the innermost one walks a row of the output
// (forward), of the input gradient, or of a reduction (weights), with its bounds computed
// from the padding instead of tested per element: a branch-free, contiguous inner loop
// that LLVM vectorises when the stride is 1. Every output element is owned by one
// parallel iteration, so results do not depend on the thread count.
#include "lower.h"

typedef struct ConvGeom {
  Shape x, y;           // input [N,CI,H,W], output [N,CO,OH,OW]
  int64_t groups, cig, cog, k, stride, pad, dil;
} ConvGeom;

enum { MAX_TAPS = 16 };   // the direct loops keep a kernel row's weights in variables

static ConvGeom geometry(const Node *conv, Shape x, Shape y) {
  const ConvAttrs *c = &conv->attr.conv;
  return (ConvGeom){x, y, c->groups, x.c / c->groups, y.c / c->groups, c->kernel, c->stride, c->pad, c->dilation};
}


// floor(a / s) for a >= -bias * s, as a shifted truncating division.
static KExpr *floor_div(Kernel *k, KExpr *a, int64_t s, int64_t bias) {
  return kir_sub(k, kir_div(k, kir_add(k, a, kir_int(k, bias * s)), s), kir_int(k, bias));
}

// The outputs o in [lo, hi) whose input position o*s - p + kk*d lies in [0, size).
static void output_range(Kernel *k, const ConvGeom *g, KExpr *kk, int64_t size, int64_t out, KExpr **lo, KExpr **hi) {
  int64_t bias = g->k * g->dil + g->pad + 1;
  KExpr *shift = kir_sub(k, kir_int(k, g->pad), kir_mul(k, kk, kir_int(k, g->dil)));   // p - kk*d
  KExpr *first = floor_div(k, kir_add(k, shift, kir_int(k, g->stride - 1)), g->stride, bias);   // ceil(shift / s)
  KExpr *last = floor_div(k, kir_add(k, shift, kir_int(k, size - 1)), g->stride, bias);         // floor((size-1+shift)/s)
  *lo = kir_binary(k, KB_MAX, first, kir_int(k, 0));
  *hi = kir_binary(k, KB_MIN, kir_add(k, last, kir_int(k, 1)), kir_int(k, out));
}

// The input position of output o under kernel tap kk.
static KExpr *input_pos(Kernel *k, const ConvGeom *g, KExpr *o, KExpr *kk) {
  return kir_add(k, kir_sub(k, kir_mul(k, o, kir_int(k, g->stride)), kir_int(k, g->pad)), kir_mul(k, kk, kir_int(k, g->dil)));
}

static int loop_var(KernelBuilder *kb, const char *name) { return kir_var(kb->k, name, KT_I64); }

// for v in [lo, hi)
static KStmt *range(KernelBuilder *kb, KStmt *into, const char *name, KExpr *lo, KExpr *hi, int *v) {
  *v = loop_var(kb, name);
  return kir_for(kb->k, into, *v, lo, hi, false);
}

// The taps (kh, kw) over the valid output rows and columns: taps_rows opens the kh, oh
// and kw loops (the caller loads the weight there), taps_cols the innermost ow loop.
typedef struct Taps {
  int kh, kw, oh, ow;
  KStmt *row_body;      // inside the oh and kw loops
  KStmt *inner;         // inside the ow loop
} Taps;

static void taps_rows(KernelBuilder *kb, const ConvGeom *g, KStmt *into, Taps *t) {
  Kernel *k = kb->k;
  KExpr *lo, *hi;
  KStmt *kh_loop = kernel_loop(kb, into, "kh", g->k, &t->kh);
  output_range(k, g, kir_ref(k, t->kh), g->x.h, g->y.h, &lo, &hi);
  KStmt *rows = range(kb, kh_loop, "oh", lo, hi, &t->oh);
  t->row_body = kernel_loop(kb, rows, "kw", g->k, &t->kw);
}

static void taps_cols(KernelBuilder *kb, const ConvGeom *g, Taps *t) {
  KExpr *lo, *hi;
  output_range(kb->k, g, kir_ref(kb->k, t->kw), g->x.w, g->y.w, &lo, &hi);
  t->inner = range(kb, t->row_body, "ow", lo, hi, &t->ow);
}

static KExpr *plane(Kernel *k, Shape s, KExpr *n, KExpr *c) {
  return kir_mul(k, kir_add(k, kir_mul(k, n, kir_int(k, s.c)), c), kir_int(k, s.h * s.w));
}

static KExpr *at(Kernel *k, KExpr *base, int64_t width, KExpr *row, KExpr *col) {
  return kir_add(k, base, kir_add(k, kir_mul(k, row, kir_int(k, width)), col));
}

// With fused.stats_rows, the plane's mean and sum of squared deviations, from the values just
// stored, go after the output at [n][2][C] (a chunk of rows is one image's plane), for
// bn_stats to merge (kernels_norm.c). (Convolutions with groups == 1 are matrix products,
// kernels_gemm.c; these are the grouped and depthwise ones.)
static void plane_stats(KernelBuilder *kb, KStmt *into, KExpr *ybase, KExpr *img, KExpr *co) {
  Kernel *k = kb->k;
  Shape y = kb->node->shape;
  int64_t hw = y.h * y.w;
  int p, p2;
  int sum = kir_var(k, "sum", KT_F32), mean = kir_var(k, "mean", KT_F32), m2 = kir_var(k, "m2", KT_F32);
  kir_assign(k, into, sum, kir_float(k, 0));
  KStmt *pass1 = kernel_loop(kb, into, "p", hw, &p);
  kir_assign(k, pass1, sum, kir_binary(k, KB_ADD, kir_ref(k, sum), kir_load(k, kb->out, kir_add(k, ybase, kir_ref(k, p)))));
  kir_assign(k, into, mean, kir_binary(k, KB_DIV, kir_ref(k, sum), kir_float(k, (double)hw)));
  kir_assign(k, into, m2, kir_float(k, 0));
  KStmt *pass2 = kernel_loop(kb, into, "p", hw, &p2);
  KExpr *d = kir_binary(k, KB_SUB, kir_load(k, kb->out, kir_add(k, ybase, kir_ref(k, p2))), kir_ref(k, mean));
  kir_assign(k, pass2, m2, kir_fma(k, kir_ref(k, m2), d, d));
  KExpr *tail;
  int stats = kernel_stats_at(kb, kb->out, kb->node, &tail);
  KExpr *row0 = kir_add(k, tail, kir_mul(k, img, kir_int(k, 2 * y.c)));
  kir_store(k, into, stats, kir_add(k, row0, co), kir_ref(k, mean));
  kir_store(k, into, stats, kir_add(k, kir_add(k, row0, kir_int(k, y.c)), co), kir_ref(k, m2));
}

// The row's k weights w[co, ci, kh, 0..k-1], in variables.
static void row_weights(KernelBuilder *kb, const ConvGeom *g, KStmt *into, KExpr *co, KExpr *ci, KExpr *kh, int *w) {
  Kernel *k = kb->k;
  Shape ws = shape4(g->y.c, g->cig, g->k, g->k);
  for (int kw = 0; kw < g->k; kw++) {
    w[kw] = kir_var(k, arena_printf(k->arena, "w%d", kw), KT_F32);
    kir_assign(k, into, w[kw], kir_load(k, kb->in[1], kernel_index4(kb, ws, co, ci, kh, kir_int(k, kw))));
  }
}

// x[xrow + ow*s - pad + kw*d] of buffer x, or 0 where that column is outside the row (an edge column:
// the index is clamped so that nothing outside is loaded).
static KExpr *tap_value(KernelBuilder *kb, const ConvGeom *g, int x, KExpr *xrow, KExpr *ow, int kw, bool edge) {
  Kernel *k = kb->k;
  KExpr *iw = input_pos(k, g, ow, kir_int(k, kw));
  if (!edge)
    return kir_load(k, x, kir_add(k, xrow, iw));
  KExpr *inside = kir_and(k, kir_binary(k, KB_LE, kir_int(k, 0), iw), kir_lt(k, iw, kir_int(k, g->x.w)));
  KExpr *at = kir_add(k, xrow, kir_binary(k, KB_MIN, kir_binary(k, KB_MAX, iw, kir_int(k, 0)), kir_int(k, g->x.w - 1)));
  return kir_select(k, inside, kir_load(k, x, at), kir_float(k, 0));
}

// y[yrow + ow] += sum over kernel rows r < nrows and kw of w[r k + kw] x[xrows[r] + ow*s - pad + kw*d]
// for ow in [lo, hi), added in that order
static void row_taps(KernelBuilder *kb, const ConvGeom *g, KStmt *into, KExpr *yrow, KExpr *const *xrows, int nrows,
                     const int *w, KExpr *lo, KExpr *hi, bool edge) {
  Kernel *k = kb->k;
  int ow;
  KStmt *cols = range(kb, into, "ow", lo, hi, &ow);
  KExpr *dst = kir_add(k, yrow, kir_ref(k, ow)), *sum = kir_load(k, kb->out, dst);
  for (int r = 0; r < nrows; r++)
    for (int kw = 0; kw < g->k; kw++)
      sum = kir_fma(k, sum, kir_ref(k, w[r * g->k + kw]), tap_value(kb, g, kb->in[0], xrows[r], kir_ref(k, ow), kw, edge));
  kir_store(k, cols, kb->out, dst, sum);
}

// Output row oh's taps of input rows xrows (nrows kernel rows): the columns where a tap leaves
// the image apart.
static void output_row(KernelBuilder *kb, const ConvGeom *g, KStmt *into, KExpr *ybase, KExpr *oh, KExpr *const *xrows,
                       int nrows, const int *w) {
  Kernel *k = kb->k;
  KExpr *yrow = kernel_let(kb, into, "yrow", at(k, ybase, g->y.w, oh, kir_int(k, 0)));
  KExpr *first, *last, *unused;
  // the columns every tap of the row reaches: from kw = 0's first to kw = k - 1's last
  output_range(k, g, kir_int(k, 0), g->x.w, g->y.w, &first, &unused);
  output_range(k, g, kir_int(k, g->k - 1), g->x.w, g->y.w, &unused, &last);
  first = kernel_let(kb, into, "first", kir_binary(k, KB_MIN, first, kir_int(k, g->y.w)));
  last = kernel_let(kb, into, "last", kir_binary(k, KB_MAX, last, first));
  row_taps(kb, g, into, yrow, xrows, nrows, w, kir_int(k, 0), first, true);
  row_taps(kb, g, into, yrow, xrows, nrows, w, first, last, false);
  row_taps(kb, g, into, yrow, xrows, nrows, w, last, kir_int(k, g->y.w), true);
}

// The output rows in [lo, hi) that kernel row kh reaches, each with that kernel row's taps.
static void edge_rows(KernelBuilder *kb, const ConvGeom *g, KStmt *into, KExpr *xplane, KExpr *ybase, KExpr *kh,
                      KExpr *lo, KExpr *hi, const int *w) {
  Kernel *k = kb->k;
  int oh;
  KStmt *rows = range(kb, into, "oh", lo, hi, &oh);
  KExpr *xrow = kernel_let(kb, rows, "xrow", at(k, xplane, g->x.w, input_pos(k, g, kir_ref(k, oh), kh), kir_int(k, 0)));
  output_row(kb, g, rows, ybase, kir_ref(k, oh), &xrow, 1, w);
}

// In bf16 the direct kernels above would round their output at every tap they add into it
// (2-3% off over a group's channels); these forms sum one output element's taps in a float
// register instead and round once, in the order the fp32 forms add them (channel, kh, kw).
static bool output_bf16(const KernelBuilder *kb) { return kb->k->bufs[kb->out].type == KT_BF16; }

// 0 <= v < size
static KExpr *within(Kernel *k, KExpr *v, int64_t size) {
  return kir_and(k, kir_binary(k, KB_LE, kir_int(k, 0), v), kir_lt(k, v, kir_int(k, size)));
}

static KExpr *clamp(Kernel *k, KExpr *v, int64_t size) {
  return kir_binary(k, KB_MIN, kir_binary(k, KB_MAX, v, kir_int(k, 0)), kir_int(k, size - 1));
}

// y[n,co,oh,ow] = b[co] + sum over ci of its group, kh, kw of w[co,ci,kh,kw] x[n,ci,ih,iw]
static void forward_sums(KernelBuilder *kb, const ConvGeom *g, KStmt *planes, KExpr *img, KExpr *co, KExpr *ybase) {
  Kernel *k = kb->k;
  const Node *n = kb->node;
  int p, ci, kh, kw, acc = kir_var(k, "acc", KT_F32);
  KStmt *outs = kernel_loop(kb, planes, "p", g->y.h * g->y.w, &p);
  KExpr *oh = kir_div(k, kir_ref(k, p), g->y.w), *ow = kir_mod(k, kir_ref(k, p), g->y.w);
  kir_assign(k, outs, acc, n->attr.conv.bias ? kir_load(k, kb->in[2], co) : kir_float(k, 0));
  KStmt *chans = kernel_loop(kb, outs, "ci", g->cig, &ci);
  KExpr *cin = kir_add(k, kir_mul(k, kir_div(k, co, g->cog), kir_int(k, g->cig)), kir_ref(k, ci));
  KStmt *krows = kernel_loop(kb, chans, "kh", g->k, &kh);
  KStmt *taps = kernel_loop(kb, krows, "kw", g->k, &kw);
  KExpr *ih = input_pos(k, g, oh, kir_ref(k, kh)), *iw = input_pos(k, g, ow, kir_ref(k, kw));
  KExpr *inside = kir_and(k, within(k, ih, g->x.h), within(k, iw, g->x.w));
  KExpr *xv = kir_load(k, kb->in[0], at(k, plane(k, g->x, img, cin), g->x.w, clamp(k, ih, g->x.h), clamp(k, iw, g->x.w)));
  Shape ws = shape4(g->y.c, g->cig, g->k, g->k);
  KExpr *wv = kir_load(k, kb->in[1], kernel_index4(kb, ws, co, kir_ref(k, ci), kir_ref(k, kh), kir_ref(k, kw)));
  kir_assign(k, taps, acc, kir_fma(k, kir_ref(k, acc), wv, kir_select(k, inside, xv, kir_float(k, 0))));
  kir_store(k, outs, kb->out, kir_add(k, ybase, kir_ref(k, p)), kir_ref(k, acc));
}

// Whether the output rows that every kernel row reaches take all k x k taps in one pass each
// (the rows above and below keep a pass per kernel row): a pass per kernel row over every row
// stores y k times and leaves k times as many columns past the last whole vector to scalar
// code. On rows of fewer than FULL_ROWS_MIN_WIDTH inputs LLVM vectorised the k x k taps with
// gathers, and MobileNetV2's 14x14 and 7x7 layers took 1.3 to 3 times as long (AMD EPYC).
enum { FULL_ROWS_MIN_WIDTH = 28 };

static bool full_rows(const ConvGeom *g) { return g->x.w >= FULL_ROWS_MIN_WIDTH; }

// y[n,co] = b[co]; then for each ci of its group, kernel row kh and output row oh:
//   y[n,co,oh,:] += sum over kw of w[co,ci,kh,kw] * x[n,ci,ih,:*s - pad + kw*d]
// one pass over the output row for the kernel row's taps (its loads, at stride 2, are one
// interleaved group), or, where full_rows says so, for all kernel rows' taps in the same
// order, the columns where a tap leaves the image apart.
static Kernel *forward(KernelBuilder *kb) {
  Kernel *k = kb->k;
  const Node *n = kb->node;
  ConvGeom g = geometry(n, n->in[0]->shape, n->shape);
  int nc, p, ci, kh, w[MAX_TAPS];
  if (g.k > MAX_TAPS)
    fatal("internal error: a %lldx%lld grouped convolution", (long long)g.k, (long long)g.k);
  KStmt *planes = kernel_loop(kb, k->body, "nc", g.y.n * g.y.c, &nc);
  KExpr *img = kir_div(k, kir_ref(k, nc), g.y.c), *co = kir_mod(k, kir_ref(k, nc), g.y.c);
  KExpr *ybase = kir_mul(k, kir_ref(k, nc), kir_int(k, g.y.h * g.y.w));
  if (output_bf16(kb)) {
    forward_sums(kb, &g, planes, img, co, ybase);
    if (n->fused.stats_rows)
      plane_stats(kb, planes, ybase, img, co);
    return k;
  }
  KStmt *init = kernel_loop(kb, planes, "p", g.y.h * g.y.w, &p);
  kir_store(k, init, kb->out, kir_add(k, ybase, kir_ref(k, p)), n->attr.conv.bias ? kir_load(k, kb->in[2], co) : kir_float(k, 0));
  KStmt *chans = kernel_loop(kb, planes, "ci", g.cig, &ci);
  KExpr *cin = kir_add(k, kir_mul(k, kir_div(k, co, g.cog), kir_int(k, g.cig)), kir_ref(k, ci));
  KExpr *xplane = plane(k, g.x, img, cin);
  KExpr *inner_lo = kir_int(k, g.y.h), *inner_hi = kir_int(k, g.y.h);   // no full rows
  if (full_rows(&g)) {
    KExpr *unused;
    output_range(k, &g, kir_int(k, 0), g.x.h, g.y.h, &inner_lo, &unused);
    output_range(k, &g, kir_int(k, g.k - 1), g.x.h, g.y.h, &unused, &inner_hi);
    inner_lo = kernel_let(kb, chans, "inner_lo", inner_lo);
    inner_hi = kernel_let(kb, chans, "inner_hi", kir_binary(k, KB_MAX, inner_hi, inner_lo));
  }
  KStmt *krows = kernel_loop(kb, chans, "kh", g.k, &kh);
  row_weights(kb, &g, krows, co, kir_ref(k, ci), kir_ref(k, kh), w);
  KExpr *lo, *hi;
  output_range(k, &g, kir_ref(k, kh), g.x.h, g.y.h, &lo, &hi);
  edge_rows(kb, &g, krows, xplane, ybase, kir_ref(k, kh), lo, kir_binary(k, KB_MIN, hi, inner_lo), w);
  if (full_rows(&g)) {
    edge_rows(kb, &g, krows, xplane, ybase, kir_ref(k, kh), kir_binary(k, KB_MAX, lo, inner_hi), hi, w);
    int all[MAX_TAPS * MAX_TAPS], oh;
    for (int r = 0; r < g.k; r++)
      row_weights(kb, &g, chans, co, kir_ref(k, ci), kir_int(k, r), all + r * g.k);
    KStmt *rows = range(kb, chans, "oh", inner_lo, inner_hi, &oh);
    KExpr *xrows[MAX_TAPS];
    for (int r = 0; r < g.k; r++)
      xrows[r] = kernel_let(kb, rows, "xrow", at(k, xplane, g.x.w, input_pos(k, &g, kir_ref(k, oh), kir_int(k, r)), kir_int(k, 0)));
    output_row(kb, &g, rows, ybase, kir_ref(k, oh), xrows, (int)g.k, all);
  }
  if (n->fused.stats_rows)
    plane_stats(kb, planes, ybase, img, co);
  return k;
}

// The output position o that tap kk reaches from input position i (o*s - p + kk*d = i), in *o,
// and whether there is one within [0, out).
static KExpr *output_pos(Kernel *k, const ConvGeom *g, KExpr *i, KExpr *kk, int64_t out, KExpr **o) {
  KExpr *t = kir_sub(k, kir_add(k, i, kir_int(k, g->pad)), kir_mul(k, kk, kir_int(k, g->dil)));
  KExpr *t0 = kir_binary(k, KB_MAX, t, kir_int(k, 0));
  *o = kir_binary(k, KB_MIN, kir_div(k, t0, g->stride), kir_int(k, out - 1));
  KExpr *ok = kir_and(k, kir_binary(k, KB_LE, kir_int(k, 0), t), kir_lt(k, kir_div(k, t0, g->stride), kir_int(k, out)));
  if (g->stride > 1)
    ok = kir_and(k, ok, kir_binary(k, KB_EQ, kir_mod(k, t0, g->stride), kir_int(k, 0)));
  return ok;
}

// dx[n,ci,ih,iw] = sum over co of its group, kh, kw of w[co,ci,kh,kw] dy[n,co,oh,ow], from the
// fused residual
static void dx_sums(KernelBuilder *kb, const ConvGeom *g, KStmt *planes, KExpr *img, KExpr *ci, KExpr *xbase) {
  Kernel *k = kb->k;
  int p, j, kh, kw, acc = kir_var(k, "acc", KT_F32);
  KStmt *ins = kernel_loop(kb, planes, "p", g->x.h * g->x.w, &p);
  KExpr *ih = kir_div(k, kir_ref(k, p), g->x.w), *iw = kir_mod(k, kir_ref(k, p), g->x.w);
  KExpr *start = kir_add(k, xbase, kir_ref(k, p));
  kir_assign(k, ins, acc, kernel_epilogue(kb, kir_float(k, 0), start));
  KStmt *outs = kernel_loop(kb, ins, "j", g->cog, &j);
  KExpr *co = kir_add(k, kir_mul(k, kir_div(k, ci, g->cig), kir_int(k, g->cog)), kir_ref(k, j));
  KStmt *krows = kernel_loop(kb, outs, "kh", g->k, &kh);
  KStmt *taps = kernel_loop(kb, krows, "kw", g->k, &kw);
  KExpr *oh, *ow;
  KExpr *inside = kir_and(k, output_pos(k, g, ih, kir_ref(k, kh), g->y.h, &oh), output_pos(k, g, iw, kir_ref(k, kw), g->y.w, &ow));
  KExpr *dy = kir_load(k, kb->in[0], at(k, plane(k, g->y, img, co), g->y.w, oh, ow));
  Shape ws = shape4(g->y.c, g->cig, g->k, g->k);
  KExpr *wv = kir_load(k, kb->in[1], kernel_index4(kb, ws, co, kir_mod(k, ci, g->cig), kir_ref(k, kh), kir_ref(k, kw)));
  KExpr *term = kir_binary(k, KB_MUL, kir_select(k, inside, dy, kir_float(k, 0)), wv);
  kir_assign(k, taps, acc, kir_binary(k, KB_ADD, kir_ref(k, acc), term));
  kir_store(k, ins, kb->out, start, kir_ref(k, acc));
}

// dx[n,ci] = 0; then for each co of its group and tap: dx[n,ci,ih,:] += w[co,ci,kh,kw] * dy[n,co,oh,:]
// (a convolution with groups == 1 is a product: packed on the CPU, kernels_conv_cpu_dx.c, on
// tensor-core tiles on the GPU, kernels_tiles.c)
Kernel *kernel_conv2d_dx(KernelBuilder *kb) {
  Kernel *k = kb->k;
  const Node *n = kb->node;   // conv2d_dx(dy, w), shaped like x
  if (n->attr.conv.groups == 1 && kernel_tiled(kb))
    return kernel_tiled_matmul(kb);
  if (kernel_depthwise(kb))
    return kernel_depthwise_dx(kb);
  if (kernel_cpu_depthwise(kb))
    return kernel_cpu_depthwise_dx(kb);
  if (!kb->target->gpu && n->attr.conv.groups == 1)
    return kernel_conv_cpu_dx(kb);
  ConvGeom g = geometry(n, n->shape, n->in[0]->shape);
  int nc, p, j;
  KStmt *planes = kernel_loop(kb, k->body, "nc", g.x.n * g.x.c, &nc);
  KExpr *img = kir_div(k, kir_ref(k, nc), g.x.c), *ci = kir_mod(k, kir_ref(k, nc), g.x.c);
  KExpr *xbase = kir_mul(k, kir_ref(k, nc), kir_int(k, g.x.h * g.x.w));
  if (output_bf16(kb)) {
    dx_sums(kb, &g, planes, img, ci, xbase);
    return k;
  }
  KStmt *init = kernel_loop(kb, planes, "p", g.x.h * g.x.w, &p);
  KExpr *start = kir_add(k, xbase, kir_ref(k, p));   // the sums start from the fused residual, if any
  kir_store(k, init, kb->out, start, kernel_epilogue(kb, kir_float(k, 0), start));
  KStmt *outs = kernel_loop(kb, planes, "j", g.cog, &j);
  KExpr *co = kir_add(k, kir_mul(k, kir_div(k, ci, g.cig), kir_int(k, g.cog)), kir_ref(k, j));
  Taps t;
  taps_rows(kb, &g, outs, &t);
  int wv = kir_var(k, "wv", KT_F32);
  Shape ws = shape4(g.y.c, g.cig, g.k, g.k);
  kir_assign(k, t.row_body, wv,
             kir_load(k, kb->in[1], kernel_index4(kb, ws, co, kir_mod(k, ci, g.cig), kir_ref(k, t.kh), kir_ref(k, t.kw))));
  taps_cols(kb, &g, &t);
  KExpr *ih = input_pos(k, &g, kir_ref(k, t.oh), kir_ref(k, t.kh)), *iw = input_pos(k, &g, kir_ref(k, t.ow), kir_ref(k, t.kw));
  KExpr *dy = kir_load(k, kb->in[0], at(k, plane(k, g.y, img, co), g.y.w, kir_ref(k, t.oh), kir_ref(k, t.ow)));
  KExpr *dst = at(k, xbase, g.x.w, ih, iw);
  kir_store(k, t.inner, kb->out, dst, kir_binary(k, KB_ADD, kir_load(k, kb->out, dst), kir_binary(k, KB_MUL, dy, kir_ref(k, wv))));
  return k;
}

// acc[kw] += dy[dyrow + ow] x[xrow + ow*s - pad + kw*d] for kw < k, ow in [lo, hi): one pass
// over the row for its k sums.
static void row_sums(KernelBuilder *kb, const ConvGeom *g, KStmt *into, KExpr *dyrow, KExpr *xrow, const int *acc,
                     KExpr *lo, KExpr *hi, bool edge) {
  Kernel *k = kb->k;
  int ow;
  KStmt *cols = range(kb, into, "ow", lo, hi, &ow);
  int dy = kir_var(k, "dy", KT_F32);
  kir_assign(k, cols, dy, kir_load(k, kb->in[0], kir_add(k, dyrow, kir_ref(k, ow))));
  for (int kw = 0; kw < g->k; kw++) {
    KExpr *xv = tap_value(kb, g, kb->in[1], xrow, kir_ref(k, ow), kw, edge);
    kir_assign(k, cols, acc[kw], kir_fma(k, kir_ref(k, acc[kw]), kir_ref(k, dy), xv));
  }
}

// The CPU's weight gradient of a grouped or depthwise convolution: a task per weight row set
// (co, ci), its k*k sums over every image's rows, each kernel row's k taps in one pass over
// an output row (a task per weight would read the planes k*k times).
static Kernel *grouped_weight_grad(KernelBuilder *kb, const ConvGeom *g) {
  Kernel *k = kb->k;
  int t, img, oh, acc[16 * 16];
  KStmt *rows = kernel_loop(kb, k->body, "t", g->y.c * g->cig, &t);
  KExpr *co = kir_div(k, kir_ref(k, t), g->cig), *cil = kir_mod(k, kir_ref(k, t), g->cig);
  KExpr *cin = kir_add(k, kir_mul(k, kir_div(k, co, g->cog), kir_int(k, g->cig)), cil);
  for (int i = 0; i < g->k * g->k; i++) {
    acc[i] = kir_var(k, arena_printf(k->arena, "acc%d", i), KT_F32);
    kir_assign(k, rows, acc[i], kir_float(k, 0));
  }
  KStmt *imgs = kernel_loop(kb, rows, "n", g->y.n, &img);
  for (int kh = 0; kh < g->k; kh++) {
    KExpr *lo, *hi, *first, *last, *unused;
    output_range(k, g, kir_int(k, kh), g->x.h, g->y.h, &lo, &hi);
    KStmt *out_rows = range(kb, imgs, "oh", lo, hi, &oh);
    KExpr *ih = input_pos(k, g, kir_ref(k, oh), kir_int(k, kh));
    KExpr *xrow = kernel_let(kb, out_rows, "xrow", at(k, plane(k, g->x, kir_ref(k, img), cin), g->x.w, ih, kir_int(k, 0)));
    KExpr *dyrow = kernel_let(kb, out_rows, "dyrow", at(k, plane(k, g->y, kir_ref(k, img), co), g->y.w, kir_ref(k, oh), kir_int(k, 0)));
    output_range(k, g, kir_int(k, 0), g->x.w, g->y.w, &first, &unused);
    output_range(k, g, kir_int(k, g->k - 1), g->x.w, g->y.w, &unused, &last);
    first = kernel_let(kb, out_rows, "first", kir_binary(k, KB_MIN, first, kir_int(k, g->y.w)));
    last = kernel_let(kb, out_rows, "last", kir_binary(k, KB_MAX, last, first));
    row_sums(kb, g, out_rows, dyrow, xrow, acc + kh * g->k, kir_int(k, 0), first, true);
    row_sums(kb, g, out_rows, dyrow, xrow, acc + kh * g->k, first, last, false);
    row_sums(kb, g, out_rows, dyrow, xrow, acc + kh * g->k, last, kir_int(k, g->y.w), true);
  }
  KExpr *row0 = kir_mul(k, kir_ref(k, t), kir_int(k, g->k * g->k));   // dw[co, cil, :, :]
  for (int i = 0; i < g->k * g->k; i++)
    kir_store(k, rows, kb->out, kir_add(k, row0, kir_int(k, i)), kir_ref(k, acc[i]));
  return k;
}

// dw[co,ci,kh,kw] = sum over n and the valid (oh, ow) of dy[n,co,oh,ow] * x[n,ci,ih,iw]; with an
// output [chunks, dw's size] (compiler/schedule.c), chunk c sums the images of its own part.
// (A convolution with groups == 1 is a product: packed on the CPU, kernels_conv_cpu_dw.c, on
// tensor-core tiles on the GPU, kernels_tiles.c.)
Kernel *kernel_conv2d_dw(KernelBuilder *kb) {
  Kernel *k = kb->k;
  const Node *n = kb->node;   // conv2d_dw(dy, x), shaped like w
  if (n->attr.conv.groups == 1 && kernel_tiled(kb))
    return kernel_tiled_matmul(kb);
  if (kernel_depthwise(kb))
    return kernel_depthwise_dw(kb);
  if (kernel_cpu_depthwise(kb))
    return kernel_cpu_depthwise_dw(kb);
  if (!kb->target->gpu && n->attr.conv.groups == 1)
    return kernel_conv_cpu_dw(kb);
  ConvGeom g = geometry(n, n->in[1]->shape, n->in[0]->shape);
  int64_t chunks = n->shape.rank == 2 ? n->shape.d[0] : 1, size = shape_elems(n->shape) / chunks, per = g.y.n / chunks;
  if (!kb->target->gpu && chunks == 1 && g.k <= 16)
    return grouped_weight_grad(kb, &g);
  int t, img, oh, ow;
  KStmt *weights = kernel_loop(kb, k->body, "t", chunks * size, &t);
  KExpr *chunk = kir_div(k, kir_ref(k, t), size), *e = kir_mod(k, kir_ref(k, t), size);
  KExpr *kw = kir_mod(k, e, g.k), *kh = kir_mod(k, kir_div(k, e, g.k), g.k);
  KExpr *cil = kir_mod(k, kir_div(k, e, g.k * g.k), g.cig), *co = kir_div(k, e, g.k * g.k * g.cig);
  KExpr *cin = kir_add(k, kir_mul(k, kir_div(k, co, g.cog), kir_int(k, g.cig)), cil);
  int acc = kir_var(k, "acc", KT_F32);
  kir_assign(k, weights, acc, kir_float(k, 0));
  KExpr *first = kir_mul(k, chunk, kir_int(k, per));
  KStmt *imgs = range(kb, weights, "n", first, kir_add(k, first, kir_int(k, per)), &img);
  KExpr *lo, *hi;
  output_range(k, &g, kh, g.x.h, g.y.h, &lo, &hi);
  KStmt *rows = range(kb, imgs, "oh", lo, hi, &oh);
  output_range(k, &g, kw, g.x.w, g.y.w, &lo, &hi);
  KStmt *cols = range(kb, rows, "ow", lo, hi, &ow);
  KExpr *ih = input_pos(k, &g, kir_ref(k, oh), kh), *iw = input_pos(k, &g, kir_ref(k, ow), kw);
  KExpr *dy = kir_load(k, kb->in[0], at(k, plane(k, g.y, kir_ref(k, img), co), g.y.w, kir_ref(k, oh), kir_ref(k, ow)));
  KExpr *xv = kir_load(k, kb->in[1], at(k, plane(k, g.x, kir_ref(k, img), cin), g.x.w, ih, iw));
  kir_assign(k, cols, acc, kir_binary(k, KB_ADD, kir_ref(k, acc), kir_binary(k, KB_MUL, dy, xv)));
  kir_store(k, weights, kb->out, kir_ref(k, t), kir_ref(k, acc));
  return k;
}

// (The GPU's depthwise convolutions have kernels of their own: kernels_depthwise.c.)
Kernel *kernel_conv2d(KernelBuilder *kb) {
  if (kb->node->attr.conv.groups == 1)
    return kernel_conv_implicit(kb);
  return kernel_depthwise(kb) ? kernel_depthwise_forward(kb) : forward(kb);
}
