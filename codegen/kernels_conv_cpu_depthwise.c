// kernels_conv_cpu_depthwise.c: the gradients of depthwise convolutions (a group per
// channel, one output channel each: MobileNetV2's and EfficientNet's) on the CPU, with
// respect to the input and to the weights, vectorised along a plane's positions.
//
// A task first copies the planes it reads into scratch with their padding written out as
// zeros and, at stride s, split into s x s phase planes (rows and columns by their remainder
// mod s): tap (kh, kw) of output (oh, ow) then reads element (oh + kh*d/s, ow + kw*d/s) of
// phase (kh*d mod s, kw*d mod s), so every tap is one contiguous, untested read at a fixed
// offset. The sums run over the scratch's flattened rows, q = oh * cols + ow: one long loop
// a plane however narrow its rows, the columns past a row's end computed and dropped (the
// weight gradient zeroes dy there). The input gradient is a correlation of the padded dy,
// one pass per phase of dx with the taps that reach it, the phases interleaved back as dx
// is stored.
//
// The direct loops of kernels_conv.c, which these replace where they are faster, add a tap
// at a time into dx in place (strided stores at stride 2) and sum the weight gradient along
// rows of 14 or 7.
#include "conv_cpu.h"

enum { MAX_TAPS = 7 * 7, MAX_STRIDE = 4 };   // as compiler/ops.c takes them

typedef struct Tap {
  int w;                // the weight's index, kh * k + kw
  int64_t at;           // where the tap's reads start in the scratch
} Tap;

// A plane in scratch: `phases` phase planes of rows x cols, one after the other.
typedef struct Planes {
  int64_t rows, cols, phases;
} Planes;

typedef struct Depthwise {
  KernelBuilder *kb;
  ConvCpu g;
  int w[MAX_TAPS];      // the channel's weights, in variables
} Depthwise;

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t planes_size(Planes p) { return p.rows * p.cols * p.phases; }
static KExpr *num(Kernel *k, int64_t v) { return kir_int(k, v); }

// The weight gradient's input planes: phase (a, b) holds the padded image's rows a, a + s,
// ... and columns b, b + s, ..., as far as the outputs' taps reach.
static Planes input_planes(const ConvCpu *g) {
  int64_t reach = (g->k - 1) * g->dil / g->stride;
  return (Planes){g->y.h + reach, g->y.w + reach, g->stride * g->stride};
}

// The input gradient's dy, padded by `before` rows and columns: dx's phase (a, b) reads it
// at offset ((a + p - kh*d) / s + before, ...) for its taps, from -before up to `after`.
static int64_t dy_before(const ConvCpu *g) {
  int64_t reach = (g->k - 1) * g->dil - g->pad;
  return reach > 0 ? ceil_div(reach, g->stride) : 0;
}
static int64_t dy_after(const ConvCpu *g) { return (g->stride - 1 + g->pad) / g->stride; }

static Planes dy_planes(const ConvCpu *g) {
  int64_t extra = dy_before(g) + dy_after(g);
  return (Planes){ceil_div(g->x.h, g->stride) + extra, ceil_div(g->x.w, g->stride) + extra, 1};
}

// The i in [0, count) with 0 <= i*step + d < size: [*lo, *hi).
static void inside(int64_t d, int64_t step, int64_t size, int64_t count, int64_t *lo, int64_t *hi) {
  *lo = d >= 0 ? 0 : ceil_div(-d, step);
  *hi = size - 1 - d < 0 ? 0 : (size - 1 - d) / step + 1;
  *lo = *lo < count ? *lo : count;
  *hi = *hi < *lo ? *lo : *hi > count ? count : *hi;
}

static void zeros(KernelBuilder *kb, KStmt *into, int scratch, KExpr *at, int64_t lo, int64_t hi) {
  if (lo < hi)
    conv_zeros(kb, into, scratch, at, 1, num(kb->k, lo), num(kb->k, hi));
}

// The columns of one row of the plane into each column phase b < phases:
//   dst[b*apart + c] = src[from + c*phases + b] for c in [clo[b], chi[b]), 0 elsewhere in [0, cols)
// The phases' common columns are copied in one loop, whose loads are then one interleaved
// group (at stride 2, two separate loops would each load every other element).
typedef struct Fill {
  int scratch, src;
  int64_t apart, cols, phases;
  int64_t clo[MAX_STRIDE], chi[MAX_STRIDE], common_lo, common_hi;
} Fill;

static void fill_row(KernelBuilder *kb, KStmt *into, const Fill *f, KExpr *dst, KExpr *from) {
  Kernel *k = kb->k;
  for (int64_t b = 0; b < f->phases; b++) {
    KExpr *to = kir_add(k, dst, num(k, b * f->apart)), *src_b = kir_add(k, from, num(k, b));
    int64_t lo = f->clo[b], hi = f->chi[b];
    zeros(kb, into, f->scratch, to, 0, lo);
    if (lo < f->common_lo)
      conv_copy(kb, into, f->scratch, to, 1, f->src, src_b, f->phases, num(k, lo), num(k, f->common_lo < hi ? f->common_lo : hi));
    if (f->common_hi < hi)
      conv_copy(kb, into, f->scratch, to, 1, f->src, src_b, f->phases, num(k, f->common_hi > lo ? f->common_hi : lo), num(k, hi));
    zeros(kb, into, f->scratch, to, hi, f->cols);
  }
  if (f->common_lo >= f->common_hi)
    return;
  int c;
  KStmt *both = kernel_range(kb, into, "c", num(k, f->common_lo), num(k, f->common_hi), &c);
  for (int64_t b = 0; b < f->phases; b++)
    kir_store(k, both, f->scratch, kir_add(k, kir_add(k, dst, num(k, b * f->apart)), kir_ref(k, c)),
              kir_load(k, f->src, kir_add(k, kir_add(k, from, num(k, b)), kir_mul(k, kir_ref(k, c), num(k, f->phases)))));
}

// Where row r of a phase plane starts in the source: plane + (r*phases + dr) * w + dc.
static KExpr *source_row(Kernel *k, KExpr *plane, KExpr *r, int64_t phases, int64_t dr, int64_t w, int64_t dc) {
  return kir_add(k, plane, kir_add(k, kir_mul(k, kir_add(k, kir_mul(k, r, num(k, phases)), num(k, dr)), num(k, w)), num(k, dc)));
}

// The plane of size h x w at src[plane], padded, into phases x phases planes of rows x cols
// (one plane when phases is 1), `apart` elements apart from scratch[0]:
//   plane (a, b)[r, c] = src[plane + (r*phases + a + dr) * w + c*phases + b + dc]
// where that lies in the plane, else 0. What lies inside is known here, so only the border
// is zeroed and the copy has no test. The rows every phase has inside are copied in one
// loop, a row of each phase in turn: the plane is read in order.
static void fill(KernelBuilder *kb, KStmt *into, int scratch, int64_t apart, int64_t rows, int64_t cols, int src, KExpr *plane,
                 int64_t h, int64_t w, int64_t phases, int64_t dr, int64_t dc) {
  Kernel *k = kb->k;
  Fill f = {.scratch = scratch, .src = src, .apart = apart, .cols = cols, .phases = phases, .common_lo = 0, .common_hi = cols};
  int64_t rlo[MAX_STRIDE], rhi[MAX_STRIDE], common_lo = 0, common_hi = rows;
  for (int64_t b = 0; b < phases; b++) {
    inside(dc + b, phases, w, cols, &f.clo[b], &f.chi[b]);
    f.common_lo = f.clo[b] > f.common_lo ? f.clo[b] : f.common_lo;
    f.common_hi = f.chi[b] < f.common_hi ? f.chi[b] : f.common_hi;
  }
  for (int64_t a = 0; a < phases; a++) {
    inside(dr + a, phases, h, rows, &rlo[a], &rhi[a]);
    common_lo = rlo[a] > common_lo ? rlo[a] : common_lo;
    common_hi = rhi[a] < common_hi ? rhi[a] : common_hi;
  }
  common_hi = common_hi < common_lo ? common_lo : common_hi;
  int r;
  for (int64_t a = 0; a < phases; a++) {
    int64_t first = a * phases * apart;   // plane (a, 0)
    for (int64_t b = 0; b < phases; b++) {
      zeros(kb, into, scratch, num(k, first + b * apart), 0, rlo[a] * cols);
      zeros(kb, into, scratch, num(k, first + b * apart), rhi[a] * cols, rows * cols);
    }
    int64_t edges[2][2] = {{rlo[a], common_lo < rhi[a] ? common_lo : rhi[a]}, {common_hi > rlo[a] ? common_hi : rlo[a], rhi[a]}};
    for (int e = 0; e < 2; e++) {
      if (edges[e][0] >= edges[e][1])
        continue;
      KStmt *each = kernel_range(kb, into, "r", num(k, edges[e][0]), num(k, edges[e][1]), &r);
      fill_row(kb, each, &f, kir_add(k, num(k, first), kir_mul(k, kir_ref(k, r), num(k, cols))),
               source_row(k, plane, kir_ref(k, r), phases, a + dr, w, dc));
    }
  }
  if (common_lo >= common_hi)
    return;
  KStmt *each = kernel_range(kb, into, "r", num(k, common_lo), num(k, common_hi), &r);
  KExpr *row = kernel_let(kb, each, "row", kir_mul(k, kir_ref(k, r), num(k, cols)));
  KExpr *from = kernel_let(kb, each, "from", source_row(k, plane, kir_ref(k, r), phases, dr, w, dc));
  for (int64_t a = 0; a < phases; a++)
    fill_row(kb, each, &f, kir_add(k, row, num(k, a * phases * apart)), kir_add(k, from, num(k, a * w)));
}

// The input plane at src[plane] into its phase planes (input_planes).
static void fill_input(Depthwise *d, KStmt *into, int scratch, int src, KExpr *plane) {
  const ConvCpu *g = &d->g;
  Planes p = input_planes(g);
  fill(d->kb, into, scratch, p.rows * p.cols, p.rows, p.cols, src, plane, g->x.h, g->x.w, g->stride, -g->pad, -g->pad);
}

// The taps of an output over the input planes, in the order (kh, kw).
static int input_taps(const ConvCpu *g, Tap *taps) {
  Planes p = input_planes(g);
  int n = 0;
  for (int64_t kh = 0; kh < g->k; kh++)
    for (int64_t kw = 0; kw < g->k; kw++) {
      int64_t rh = kh * g->dil, rw = kw * g->dil;
      int64_t phase = (rh % g->stride) * g->stride + rw % g->stride;
      taps[n++] = (Tap){(int)(kh * g->k + kw), phase * p.rows * p.cols + rh / g->stride * p.cols + rw / g->stride};
    }
  return n;
}

// The channel's k*k weights w[c, 0, kh, kw], into variables.
static void load_weights(Depthwise *d, KStmt *into, KExpr *c) {
  Kernel *k = d->kb->k;
  int64_t taps = d->g.k * d->g.k;
  for (int i = 0; i < taps; i++) {
    d->w[i] = kir_var(k, arena_printf(k->arena, "w%d", i), KT_F32);
    kir_assign(k, into, d->w[i], kir_load(k, d->kb->in[1], kir_add(k, kir_mul(k, c, num(k, taps)), num(k, i))));
  }
}

// out[at + q] = sum over the taps of w * in[tap.at + q] for q < count: one loop over a plane's
// flattened rows.
static void correlate(Depthwise *d, KStmt *into, int out, int64_t at, int in, const Tap *taps, int ntaps, int64_t count) {
  Kernel *k = d->kb->k;
  int q;
  KStmt *each = kernel_loop(d->kb, into, "q", count, &q);
  KExpr *sum = kir_float(k, 0);
  for (int t = 0; t < ntaps; t++)
    sum = kir_fma(k, sum, kir_ref(k, d->w[taps[t].w]), kir_load(k, in, kir_add(k, kir_ref(k, q), num(k, taps[t].at))));
  kir_store(k, each, out, kir_add(k, kir_ref(k, q), num(k, at)), sum);
}

// Where compiler/ops.c says these are faster than the direct loops (conv_depthwise_dx_padded,
// conv_depthwise_dw_padded).
bool kernel_cpu_depthwise(const KernelBuilder *kb) {
  const Node *n = kb->node;   // conv2d_dx(dy, w) or conv2d_dw(dy, x) of n->forward
  if (kb->target->gpu || (n->op != OP_CONV2D_DX && n->op != OP_CONV2D_DW))
    return false;
  if (n->op == OP_CONV2D_DX)
    return conv_depthwise_dx_padded(n->forward);
  return n->shape.rank == 4 && conv_depthwise_dw_padded(n->forward);   // compiler/schedule.c splits none
}

// The taps that reach dx's phase (a, b) (rows a mod s, columns b mod s) from dy padded as
// dy_planes: tap (kh, kw) where a + p - kh*d and b + p - kw*d are multiples of s.
static int dx_taps(const ConvCpu *g, int64_t a, int64_t b, Tap *taps) {
  Planes p = dy_planes(g);
  int64_t before = dy_before(g);
  int n = 0;
  for (int64_t kh = 0; kh < g->k; kh++)
    for (int64_t kw = 0; kw < g->k; kw++) {
      int64_t th = a + g->pad - kh * g->dil, tw = b + g->pad - kw * g->dil;
      if (th % g->stride || tw % g->stride)
        continue;
      taps[n++] = (Tap){(int)(kh * g->k + kw), (th / g->stride + before) * p.cols + tw / g->stride + before};
    }
  return n;
}

// dx[n,c,ih,iw] = sum over (kh, kw) of w[c,0,kh,kw] dy[n,c,oh,ow] where ih = oh*s - p + kh*d
// (and so for the columns), plus the fused residual: a task a plane; each phase of dx a
// correlation of the padded dy with its taps, into scratch; the phases then interleaved
// into dx's rows.
Kernel *kernel_cpu_depthwise_dx(KernelBuilder *kb) {
  Kernel *k = kb->k;
  const Node *n = kb->node;   // conv2d_dx(dy, w)
  Depthwise d = {.kb = kb, .g = conv_cpu_of(&n->attr.conv, n->shape, n->in[0]->shape)};
  const ConvCpu *g = &d.g;
  int64_t s = g->stride, before = dy_before(g);
  Planes p = dy_planes(g);
  int64_t phase_size = p.rows * p.cols;
  int dys = kir_local(k, "dy's plane, padded", KT_F32, phase_size);
  int dxs = kir_local(k, "dx's plane, by stride phases", KT_F32, phase_size * s * s);
  int nc, i2, j;
  KStmt *task = kernel_loop(kb, k->body, "nc", g->x.n * g->x.c, &nc);
  fill(kb, task, dys, 0, p.rows, p.cols, kb->in[0], kir_mul(k, kir_ref(k, nc), num(k, g->y.h * g->y.w)), g->y.h, g->y.w, 1,
       -before, -before);
  load_weights(&d, task, kir_mod(k, kir_ref(k, nc), g->x.c));
  for (int64_t a = 0; a < s; a++)
    for (int64_t b = 0; b < s; b++) {
      Tap taps[MAX_TAPS];
      int ntaps = dx_taps(g, a, b, taps);
      int64_t rows = ceil_div(g->x.h - a, s), cols = ceil_div(g->x.w - b, s);
      if (rows > 0 && cols > 0)
        correlate(&d, task, dxs, (a * s + b) * phase_size, dys, taps, ntaps, (rows - 1) * p.cols + cols);
    }
  KExpr *xbase = kernel_let(kb, task, "xbase", kir_mul(k, kir_ref(k, nc), num(k, g->x.h * g->x.w)));
  KStmt *row_sets = kernel_loop(kb, task, "i2", ceil_div(g->x.h, s), &i2);
  for (int64_t a = 0; a < s; a++) {
    KExpr *ih = kir_add(k, kir_mul(k, kir_ref(k, i2), num(k, s)), num(k, a));
    KStmt *row = a ? kir_if(k, row_sets, kir_lt(k, ih, num(k, g->x.h)), NULL) : row_sets;
    KExpr *xrow = kernel_let(kb, row, "xrow", kir_add(k, xbase, kir_mul(k, ih, num(k, g->x.w))));
    KExpr *srow = kernel_let(kb, row, "srow", kir_mul(k, kir_ref(k, i2), num(k, p.cols)));
    // the columns of whole phase sets in one loop (its stores one interleaved group), the rest after
    for (int tail = 0; tail < 2; tail++) {
      int64_t whole = g->x.w / s, count = tail ? g->x.w % s : s;
      if (tail && !count)
        break;
      KStmt *cols = tail ? row : kernel_loop(kb, row, "j", whole, &j);
      KExpr *jv = tail ? num(k, whole) : kir_ref(k, j);
      for (int64_t b = 0; b < count; b++) {
        KExpr *at = kir_add(k, xrow, kir_add(k, kir_mul(k, jv, num(k, s)), num(k, b)));
        KExpr *v = kir_load(k, dxs, kir_add(k, num(k, (a * s + b) * phase_size), kir_add(k, srow, jv)));
        kir_store(k, cols, kb->out, at, kernel_epilogue(kb, v, at));
      }
    }
  }
  return k;
}

// dw[c,0,kh,kw] = sum over n, oh, ow of dy[n,c,oh,ow] x[n,c,oh*s-p+kh*d, ow*s-p+kw*d]: a task a
// channel, its k*k sums over the images' planes, each plane's in one loop over the flattened
// rows of dy (zero past a row's end) against the input planes.
Kernel *kernel_cpu_depthwise_dw(KernelBuilder *kb) {
  Kernel *k = kb->k;
  const Node *n = kb->node;   // conv2d_dw(dy, x), shaped like w
  Depthwise d = {.kb = kb, .g = conv_cpu_of(&n->attr.conv, n->in[1]->shape, n->in[0]->shape)};
  const ConvCpu *g = &d.g;
  Planes in = input_planes(g);
  int xs = kir_local(k, "the input plane, padded, by stride phases", KT_F32, planes_size(in));
  int dys = kir_local(k, "dy's plane, by the input planes' rows", KT_F32, g->y.h * in.cols);
  Tap taps[MAX_TAPS];
  int ntaps = input_taps(g, taps), sums[MAX_TAPS], c, img, q;
  KStmt *task = kernel_loop(kb, k->body, "c", g->y.c, &c);
  for (int t = 0; t < ntaps; t++) {
    sums[t] = kir_var(k, arena_printf(k->arena, "sum%d", t), KT_F32);
    kir_assign(k, task, sums[t], kir_float(k, 0));
  }
  KStmt *images = kernel_loop(kb, task, "n", g->y.n, &img);
  KExpr *plane = kernel_let(kb, images, "plane", kir_add(k, kir_mul(k, kir_ref(k, img), num(k, g->y.c)), kir_ref(k, c)));
  fill_input(&d, images, xs, kb->in[1], kir_mul(k, plane, num(k, g->x.h * g->x.w)));
  fill(kb, images, dys, 0, g->y.h, in.cols, kb->in[0], kir_mul(k, plane, num(k, g->y.h * g->y.w)), g->y.h, g->y.w, 1, 0, 0);
  KStmt *each = kernel_loop(kb, images, "q", (g->y.h - 1) * in.cols + g->y.w, &q);
  KExpr *dy = kernel_let(kb, each, "dy", kir_load(k, dys, kir_ref(k, q)));
  for (int t = 0; t < ntaps; t++)
    kir_assign(k, each, sums[t], kir_fma(k, kir_ref(k, sums[t]), dy, kir_load(k, xs, kir_add(k, kir_ref(k, q), num(k, taps[t].at)))));
  for (int t = 0; t < ntaps; t++)
    kir_store(k, task, kb->out, kir_add(k, kir_mul(k, kir_ref(k, c), num(k, g->k * g->k)), num(k, taps[t].w)), kir_ref(k, sums[t]));
  return k;
}
