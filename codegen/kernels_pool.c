// kernels_pool.c: max and average pooling (PyTorch's rules: -inf padding for max,
// padding counted in the average) and global average pooling, with their gradients.
// On the CPU, gradients are computed per (n, c) plane in one iteration, so overlapping
// windows accumulate in a fixed order. On the GPU the forward pass runs a thread per output,
// consecutive threads along a row (coalesced, a block per 256 elements); the gradient a block
// per band of a plane's rows, whose inputs gather dy from the windows whose first maximum
// each is, in the order the CPU's scatter adds them (the same sum, bit for bit; no atomics).
#include "lower.h"

#include <math.h>

typedef struct Window {
  KExpr *n, *c;         // the plane
  int oh, ow, kh, kw;   // variables: the output position, the tap
  KExpr *ih, *iw;       // the input position of (oh, ow, kh, kw)
} Window;

// for nc, (zero the dx plane), oh, ow: returns the per-output block.
static KStmt *output_loops(KernelBuilder *kb, Shape x, Shape y, bool zero_plane, Window *w) {
  Kernel *k = kb->k;
  int nc;
  KStmt *planes = kernel_loop(kb, k->body, "nc", x.n * x.c, &nc);
  w->n = kir_binary(k, KB_DIV, kir_ref(k, nc), kir_int(k, x.c));
  w->c = kir_binary(k, KB_MOD, kir_ref(k, nc), kir_int(k, x.c));
  if (zero_plane) {
    int px;
    KStmt *zero = kernel_loop(kb, planes, "p", x.h * x.w, &px);
    KExpr *at = kir_add(k, kir_mul(k, kir_ref(k, nc), kir_int(k, x.h * x.w)), kir_ref(k, px));
    kir_store(k, zero, kb->out, at, kir_float(k, 0));
  }
  KStmt *rows = kernel_loop(kb, planes, "oh", y.h, &w->oh);
  return kernel_loop(kb, rows, "ow", y.w, &w->ow);
}

// for kh, kw: sets the input position and returns the loops' body, with *inside whether
// (ih, iw) lies inside the input.
static KStmt *window_taps(KernelBuilder *kb, KStmt *out, Shape x, Window *w, KExpr **inside) {
  Kernel *k = kb->k;
  const PoolAttrs *p = &kb->node->attr.pool;
  KStmt *krow = kernel_loop(kb, out, "kh", p->kernel, &w->kh);
  KStmt *kcol = kernel_loop(kb, krow, "kw", p->kernel, &w->kw);
  w->ih = kernel_let(kb, kcol, "ih", kir_add(k, kir_sub(k, kir_mul(k, kir_ref(k, w->oh), kir_int(k, p->stride)),
                                                         kir_int(k, p->pad)), kir_ref(k, w->kh)));
  w->iw = kernel_let(kb, kcol, "iw", kir_add(k, kir_sub(k, kir_mul(k, kir_ref(k, w->ow), kir_int(k, p->stride)),
                                                         kir_int(k, p->pad)), kir_ref(k, w->kw)));
  *inside = kir_and(k, kir_and(k, kir_binary(k, KB_LE, kir_int(k, 0), w->ih), kir_lt(k, w->ih, kir_int(k, x.h))),
                    kir_and(k, kir_binary(k, KB_LE, kir_int(k, 0), w->iw), kir_lt(k, w->iw, kir_int(k, x.w))));
  return kcol;
}

// for kh, kw inside out: returns the block that runs when (ih, iw) is inside the input.
static KStmt *window_loops(KernelBuilder *kb, KStmt *out, Shape x, Window *w) {
  KExpr *inside;
  KStmt *kcol = window_taps(kb, out, x, w, &inside);
  return kir_if(kb->k, kcol, inside, NULL);
}

// The GPU's outputs: a parallel loop over every element of y, n, c, oh and ow taken from it.
static KStmt *flat_outputs(KernelBuilder *kb, Shape y, Window *w) {
  Kernel *k = kb->k;
  int o;
  KStmt *each = kernel_loop(kb, k->body, "o", shape_elems(y), &o);
  KExpr *nc = kir_div(k, kir_ref(k, o), y.h * y.w);
  w->n = kir_div(k, nc, y.c);
  w->c = kir_mod(k, nc, y.c);
  w->oh = kir_var(k, "oh", KT_I64);
  w->ow = kir_var(k, "ow", KT_I64);
  kir_assign(k, each, w->oh, kir_mod(k, kir_div(k, kir_ref(k, o), y.w), y.h));
  kir_assign(k, each, w->ow, kir_mod(k, kir_ref(k, o), y.w));
  return each;
}

static Kernel *pool_forward(KernelBuilder *kb, bool max) {
  Kernel *k = kb->k;
  Shape x = kb->node->in[0]->shape, y = kb->node->shape;
  Window w;
  KStmt *out = kb->target->gpu ? flat_outputs(kb, y, &w) : output_loops(kb, x, y, false, &w);
  int acc = kir_var(k, "acc", KT_F32);
  kir_assign(k, out, acc, kir_float(k, max ? -INFINITY : 0));
  KStmt *inside = window_loops(kb, out, x, &w);
  KExpr *v = kir_load(k, kb->in[0], kernel_index4(kb, x, w.n, w.c, w.ih, w.iw));
  kir_assign(k, inside, acc, max ? kir_binary(k, KB_MAX, kir_ref(k, acc), v) : kir_binary(k, KB_ADD, kir_ref(k, acc), v));
  int64_t area = kb->node->attr.pool.kernel * kb->node->attr.pool.kernel;
  KExpr *result = max ? kir_ref(k, acc) : kir_binary(k, KB_DIV, kir_ref(k, acc), kir_float(k, (double)area));
  kir_store(k, out, kb->out, kernel_index4(kb, y, w.n, w.c, kir_ref(k, w.oh), kir_ref(k, w.ow)), result);
  return k;
}

// maxpool_grad(dy, x) on the CPU: dy goes to the first maximum of each window, as in PyTorch.
// A row's first maxima come first, found with selects rather than branches so that the row
// vectorises (whether a tap beats the best so far is a coin toss a branch predictor loses:
// resnet18's maxpool_grad at 224 took 68 ms a step at batch 16, 3% of it, at 8 cycles a tap);
// then dy is added to them in output order, so that overlapping windows sum in one order.
static Kernel *maxpool_grad_scatter(KernelBuilder *kb) {
  Kernel *k = kb->k;
  Shape y = kb->node->in[0]->shape, x = kb->node->shape;
  int nc, px, o;
  Window w;
  KStmt *planes = kernel_loop(kb, k->body, "nc", x.n * x.c, &nc);
  KExpr *plane = kernel_let(kb, planes, "plane", kir_mul(k, kir_ref(k, nc), kir_int(k, x.h * x.w)));
  KStmt *zero = kernel_loop(kb, planes, "p", x.h * x.w, &px);
  kir_store(k, zero, kb->out, kir_add(k, plane, kir_ref(k, px)), kir_float(k, 0));
  int firsts = kir_local(k, "the first maximum of each window of the row (-1: all padding)", KT_I64, y.w);
  KStmt *row = kernel_loop(kb, planes, "oh", y.h, &w.oh);
  KStmt *each = kernel_loop(kb, row, "ow", y.w, &w.ow);
  int best = kir_var(k, "best", KT_F32), arg = kir_var(k, "arg", KT_I64);
  kir_assign(k, each, best, kir_float(k, -INFINITY));
  kir_assign(k, each, arg, kir_int(k, -1));
  KExpr *inside;
  KStmt *kcol = window_taps(kb, each, x, &w, &inside);
  inside = kernel_let(kb, kcol, "inside", inside);
  KExpr *at = kernel_let(kb, kcol, "at", kir_add(k, plane, kir_add(k, kir_mul(k, w.ih, kir_int(k, x.w)), w.iw)));
  KExpr *x_at = kir_load(k, kb->in[1], kir_select(k, inside, at, kir_int(k, 0)));   // no read outside x
  KExpr *v = kernel_let(kb, kcol, "v", kir_select(k, inside, x_at, kir_float(k, -INFINITY)));
  KExpr *better = kir_lt(k, kir_ref(k, best), v);
  kir_assign(k, kcol, arg, kir_select(k, better, at, kir_ref(k, arg)));
  kir_assign(k, kcol, best, kir_select(k, better, v, kir_ref(k, best)));
  kir_store(k, each, firsts, kir_ref(k, w.ow), kir_ref(k, arg));
  KStmt *adds = kernel_loop(kb, row, "ow", y.w, &o);
  KExpr *first = kir_load(k, firsts, kir_ref(k, o));
  KStmt *found = kir_if(k, adds, kir_binary(k, KB_LE, kir_int(k, 0), first), NULL);
  KExpr *dy = kir_load(k, kb->in[0], kir_add(k, kir_mul(k, kir_ref(k, nc), kir_int(k, y.h * y.w)),
                                                 kir_add(k, kir_mul(k, kir_ref(k, w.oh), kir_int(k, y.w)), kir_ref(k, o))));
  kir_store(k, found, kb->out, first, kir_binary(k, KB_ADD, kir_load(k, kb->out, first), dy));
  return k;
}

// The first output row (or column) whose window may hold input row `in`, of the `reach` that may.
static KExpr *first_window(Kernel *k, const PoolAttrs *p, KExpr *in, int64_t reach) {
  return kir_sub(k, kir_div(k, kir_add(k, in, kir_int(k, p->pad)), p->stride), kir_int(k, reach - 1));
}

// Whether output position o (a row or column of `outputs`) exists and its window reaches input `in`.
static KExpr *window_holds(Kernel *k, const PoolAttrs *p, KExpr *o, int64_t outputs, KExpr *in) {
  KExpr *exists = kir_and(k, kir_binary(k, KB_LE, kir_int(k, 0), o), kir_lt(k, o, kir_int(k, outputs)));
  KExpr *end = kir_add(k, kir_sub(k, kir_mul(k, o, kir_int(k, p->stride)), kir_int(k, p->pad)), kir_int(k, p->kernel));
  return kir_and(k, exists, kir_lt(k, in, end));
}

//
// The GPU's maxpool_grad: a block per (plane, band of input rows), in three steps between
// barriers. The x rows the band's windows read are staged in shared memory, a coalesced load
// each (the padding as -inf, which no comparison picks, as the CPU skips it); a thread per
// window finds its first maximum there in the CPU's order and keeps its tap with its dy; then
// a thread per input of the band adds the dy of the windows whose tap it is, in the output's
// row-major order. Each input sums the terms the CPU's scatter adds, in the same order: the
// two agree bit for bit, with no atomics and no argmax buffer. x is read once (the rows two
// bands' windows share, twice), dy about once, dx written once.
//
enum { BAND_INPUTS = 2048, BAND_SHARED_BYTES = 48 * 1024 };

typedef struct Band {
  const PoolAttrs *p;
  Shape x, y;
  int64_t rows;         // input rows a band (the last band of a plane may have fewer)
  int64_t bands;        // bands a plane
  int64_t windows;      // rows of windows a band meets, at most
  int64_t staged;       // x rows those windows read
} Band;

// The first and last window rows that meet input rows [r0, r1).
static int64_t first_meeting(const PoolAttrs *p, int64_t r0) {
  int64_t from = r0 + p->pad - p->kernel + 1;
  return from > 0 ? (from + p->stride - 1) / p->stride : 0;
}

static int64_t last_meeting(const PoolAttrs *p, Shape y, int64_t r1) {
  int64_t last = (r1 - 1 + p->pad) / p->stride;
  return last < y.h - 1 ? last : y.h - 1;
}

static int64_t band_shared_bytes(const Band *b) { return b->staged * b->x.w * 4 + b->windows * b->y.w * (8 + 4); }

// Bands of `rows` input rows: how many, and the most window rows one meets.
static Band band_of(const PoolAttrs *p, Shape x, Shape y, int64_t rows) {
  Band b = {.p = p, .x = x, .y = y, .rows = rows, .bands = (x.h + rows - 1) / rows};
  for (int64_t r0 = 0; r0 < x.h; r0 += rows) {
    int64_t r1 = r0 + rows < x.h ? r0 + rows : x.h, meets = last_meeting(p, y, r1) - first_meeting(p, r0) + 1;
    b.windows = meets > b.windows ? meets : b.windows;
  }
  b.staged = (b.windows - 1) * p->stride + p->kernel;
  return b;
}

// About BAND_INPUTS inputs a band, fewer rows while the shared memory exceeds its bound;
// rows 0 when even one row's does.
static Band band_layout(const PoolAttrs *p, Shape x, Shape y) {
  int64_t rows = BAND_INPUTS / x.w < x.h ? BAND_INPUTS / x.w : x.h;
  Band b = band_of(p, x, y, rows > 0 ? rows : 1);
  while (band_shared_bytes(&b) > BAND_SHARED_BYTES && b.rows > 1)
    b = band_of(p, x, y, b.rows / 2);
  if (band_shared_bytes(&b) > BAND_SHARED_BYTES)
    b.rows = 0;
  return b;
}

// The block's plane and band, and its first window row and the first x row it stages.
typedef struct BandAt {
  KExpr *x_plane, *y_plane;   // the plane's first element in x (and dx) and in dy
  KExpr *r0;            // the band's first input row
  KExpr *first, *last;  // the window rows it meets
  KExpr *row0;          // the x row staged first (first * stride - pad: negative in the padding)
} BandAt;

static BandAt band_at(KernelBuilder *kb, const Band *b) {
  Kernel *k = kb->k;
  const PoolAttrs *p = b->p;
  KExpr *nc = kernel_let(kb, k->body, "nc", kir_div(k, kir_block_index(k), b->bands));
  BandAt at = {.x_plane = kir_mul(k, nc, kir_int(k, b->x.h * b->x.w)), .y_plane = kir_mul(k, nc, kir_int(k, b->y.h * b->y.w))};
  at.r0 = kernel_let(kb, k->body, "r0", kir_mul(k, kir_mod(k, kir_block_index(k), b->bands), kir_int(k, b->rows)));
  KExpr *from = kir_binary(k, KB_MAX, kir_add(k, at.r0, kir_int(k, p->pad - p->kernel + 1)), kir_int(k, 0));
  at.first = kernel_let(kb, k->body, "first", kir_div(k, kir_add(k, from, kir_int(k, p->stride - 1)), p->stride));
  KExpr *r1 = kir_binary(k, KB_MIN, kir_add(k, at.r0, kir_int(k, b->rows)), kir_int(k, b->x.h));
  KExpr *last = kir_div(k, kir_add(k, r1, kir_int(k, p->pad - 1)), p->stride);
  at.last = kernel_let(kb, k->body, "last", kir_binary(k, KB_MIN, last, kir_int(k, b->y.h - 1)));
  at.row0 = kernel_let(kb, k->body, "row0", kir_sub(k, kir_mul(k, at.first, kir_int(k, p->stride)), kir_int(k, p->pad)));
  return at;
}

// Step 1: the x rows [row0, row0 + staged) into shared memory, -inf outside the image.
static int stage_rows(KernelBuilder *kb, const Band *b, const BandAt *at) {
  Kernel *k = kb->k;
  int64_t W = b->x.w;
  int staged = kir_shared(k, "the x rows the band's windows read", KT_F32, b->staged * W);
  KExpr *e;
  KStmt *each = kernel_strided(kb, k->body, "e", b->staged * W, &e);
  KExpr *row = kernel_let(kb, each, "row", kir_add(k, at->row0, kir_div(k, e, W)));
  KExpr *inside = kir_and(k, kir_binary(k, KB_LE, kir_int(k, 0), row), kir_lt(k, row, kir_int(k, b->x.h)));
  KExpr *from = kir_select(k, inside, kir_add(k, at->x_plane, kir_add(k, kir_mul(k, row, kir_int(k, W)), kir_mod(k, e, W))), kir_int(k, 0));
  kir_store(k, each, staged, e, kir_select(k, inside, kir_load(k, kb->in[1], from), kir_float(k, -INFINITY)));
  kir_barrier(k, k->body);
  return staged;
}

// Step 2: window (first + a, ow)'s first maximum, as the tap kh * kernel + kw (-1 for none),
// into taps, and its dy into dys, at a * OW + ow.
static void window_maxima(KernelBuilder *kb, const Band *b, const BandAt *at, int staged, int taps, int dys) {
  Kernel *k = kb->k;
  const PoolAttrs *p = b->p;
  int64_t OW = b->y.w;
  KExpr *w;
  KStmt *each = kernel_strided(kb, k->body, "w", b->windows * OW, &w);
  KExpr *a = kir_div(k, w, OW), *ow = kir_mod(k, w, OW);
  KStmt *live = kir_if(k, each, kir_binary(k, KB_LE, kir_add(k, at->first, a), at->last), NULL);
  int best = kir_var(k, "best", KT_F32), arg = kir_var(k, "arg", KT_I64), kh, kw;
  kir_assign(k, live, best, kir_float(k, -INFINITY));
  kir_assign(k, live, arg, kir_int(k, -1));
  KStmt *krow = kernel_loop(kb, live, "kh", p->kernel, &kh);
  KStmt *kcol = kernel_loop(kb, krow, "kw", p->kernel, &kw);
  KExpr *col = kir_add(k, kir_sub(k, kir_mul(k, ow, kir_int(k, p->stride)), kir_int(k, p->pad)), kir_ref(k, kw));
  KExpr *in_w = kir_and(k, kir_binary(k, KB_LE, kir_int(k, 0), col), kir_lt(k, col, kir_int(k, b->x.w)));
  KExpr *row = kir_add(k, kir_mul(k, a, kir_int(k, p->stride)), kir_ref(k, kh));
  KStmt *inside = kir_if(k, kcol, in_w, NULL);
  KExpr *v = kernel_let(kb, inside, "v", kir_load(k, staged, kir_add(k, kir_mul(k, row, kir_int(k, b->x.w)), col)));
  KStmt *better = kir_if(k, inside, kir_lt(k, kir_ref(k, best), v), NULL);
  kir_assign(k, better, best, v);
  kir_assign(k, better, arg, kir_add(k, kir_mul(k, kir_ref(k, kh), kir_int(k, p->kernel)), kir_ref(k, kw)));
  kir_store(k, live, taps, w, kir_ref(k, arg));
  KExpr *oh = kir_add(k, at->first, a);
  kir_store(k, live, dys, w, kir_load(k, kb->in[0], kir_add(k, at->y_plane, kir_add(k, kir_mul(k, oh, kir_int(k, OW)), ow))));
  kir_barrier(k, k->body);
}

// Step 3: each input of the band sums the dy of the windows whose first maximum it is.
static void gather_inputs(KernelBuilder *kb, const Band *b, const BandAt *at, int taps, int dys) {
  Kernel *k = kb->k;
  const PoolAttrs *p = b->p;
  int64_t reach = (p->kernel + p->stride - 1) / p->stride, W = b->x.w;   // windows along a row that hold an input
  KExpr *i;
  KStmt *each = kernel_strided(kb, k->body, "i", b->rows * W, &i);
  KExpr *row = kernel_let(kb, each, "ih", kir_add(k, at->r0, kir_div(k, i, W)));
  KExpr *col = kernel_let(kb, each, "iw", kir_mod(k, i, W));
  KStmt *mine = b->x.h % b->rows ? kir_if(k, each, kir_lt(k, row, kir_int(k, b->x.h)), NULL) : each;
  int acc = kir_var(k, "acc", KT_F32), a, c;
  kir_assign(k, mine, acc, kir_float(k, 0));
  KStmt *wrows = kernel_loop(kb, mine, "a", reach, &a);
  KExpr *oh = kernel_let(kb, wrows, "oh", kir_add(k, first_window(k, p, row, reach), kir_ref(k, a)));
  KStmt *wcols = kernel_loop(kb, wrows, "c", reach, &c);
  KExpr *ow = kernel_let(kb, wcols, "ow", kir_add(k, first_window(k, p, col, reach), kir_ref(k, c)));
  KStmt *holds = kir_if(k, wcols, kir_and(k, window_holds(k, p, oh, b->y.h, row), window_holds(k, p, ow, b->y.w, col)), NULL);
  KExpr *slot = kir_add(k, kir_mul(k, kir_sub(k, oh, at->first), kir_int(k, b->y.w)), ow);
  KExpr *tap_h = kir_sub(k, row, kir_sub(k, kir_mul(k, oh, kir_int(k, p->stride)), kir_int(k, p->pad)));
  KExpr *tap_w = kir_sub(k, col, kir_sub(k, kir_mul(k, ow, kir_int(k, p->stride)), kir_int(k, p->pad)));
  KExpr *tap = kir_add(k, kir_mul(k, tap_h, kir_int(k, p->kernel)), tap_w);
  KStmt *chose = kir_if(k, holds, kir_binary(k, KB_EQ, kir_load(k, taps, slot), tap), NULL);
  kir_assign(k, chose, acc, kir_binary(k, KB_ADD, kir_ref(k, acc), kir_load(k, dys, slot)));
  kir_store(k, mine, kb->out, kir_add(k, at->x_plane, kir_add(k, kir_mul(k, row, kir_int(k, W)), col)), kir_ref(k, acc));
}

static Kernel *maxpool_grad_bands(KernelBuilder *kb, const Band *b) {
  Kernel *k = kb->k;
  kernel_blocks(kb, b->x.n * b->x.c * b->bands, KIR_LOOP_BLOCK);
  k->layout = arena_printf(k->arena, "a block per (plane, band of %lld input rows): the x rows its windows read staged in "
                           "shared memory, then a thread per window, then a thread per input", (long long)b->rows);
  BandAt at = band_at(kb, b);
  int staged = stage_rows(kb, b, &at);
  int taps = kir_shared(k, "each window's first maximum: its tap, or -1", KT_I64, b->windows * b->y.w);
  int dys = kir_shared(k, "each window's dy", KT_F32, b->windows * b->y.w);
  window_maxima(kb, b, &at, staged, taps, dys);
  gather_inputs(kb, b, &at, taps, dys);
  return k;
}

// On the GPU in bands (a plane whose one row of windows overflows shared memory keeps the
// CPU's form).
Kernel *kernel_maxpool_grad(KernelBuilder *kb) {
  Band b = band_layout(&kb->node->attr.pool, kb->node->shape, kb->node->in[0]->shape);
  return kb->target->gpu && b.rows ? maxpool_grad_bands(kb, &b) : maxpool_grad_scatter(kb);
}

// avgpool_grad(dy): each window spreads dy / area over its inputs.
Kernel *kernel_avgpool_grad(KernelBuilder *kb) {
  Kernel *k = kb->k;
  Shape y = kb->node->in[0]->shape, x = kb->node->shape;
  Window w;
  KStmt *out = output_loops(kb, x, y, true, &w);
  KStmt *inside = window_loops(kb, out, x, &w);
  int64_t area = kb->node->attr.pool.kernel * kb->node->attr.pool.kernel;
  KExpr *share = kir_binary(k, KB_DIV, kir_load(k, kb->in[0], kernel_index4(kb, y, w.n, w.c, kir_ref(k, w.oh), kir_ref(k, w.ow))),
                            kir_float(k, (double)area));
  KExpr *at = kernel_index4(kb, x, w.n, w.c, w.ih, w.iw);
  kir_store(k, inside, kb->out, at, kir_binary(k, KB_ADD, kir_load(k, kb->out, at), share));
  return k;
}

static Kernel *global_pool(KernelBuilder *kb, bool grad) {
  Kernel *k = kb->k;
  Shape x = grad ? kb->node->shape : kb->node->in[0]->shape;
  int64_t hw = x.h * x.w;
  int nc, px;
  KStmt *planes = kernel_loop(kb, k->body, "nc", x.n * x.c, &nc);
  KExpr *at = kir_add(k, kir_mul(k, kir_ref(k, nc), kir_int(k, hw)), kir_ref(k, px = kir_var(k, "p", KT_I64)));
  if (grad) {
    KStmt *pxs = kir_for(k, planes, px, kir_int(k, 0), kir_int(k, hw), false);
    KExpr *share = kir_binary(k, KB_DIV, kir_load(k, kb->in[0], kir_ref(k, nc)), kir_float(k, (double)hw));
    kir_store(k, pxs, kb->out, at, share);
    return k;
  }
  int acc = kir_var(k, "acc", KT_F32);
  kir_assign(k, planes, acc, kir_float(k, 0));
  KStmt *pxs = kir_for(k, planes, px, kir_int(k, 0), kir_int(k, hw), false);
  kir_assign(k, pxs, acc, kir_binary(k, KB_ADD, kir_ref(k, acc), kir_load(k, kb->in[0], at)));
  kir_store(k, planes, kb->out, kir_ref(k, nc), kir_binary(k, KB_DIV, kir_ref(k, acc), kir_float(k, (double)hw)));
  return k;
}

Kernel *kernel_maxpool(KernelBuilder *kb) { return pool_forward(kb, true); }
Kernel *kernel_avgpool(KernelBuilder *kb) { return pool_forward(kb, false); }
Kernel *kernel_global_avg_pool(KernelBuilder *kb) { return global_pool(kb, false); }
Kernel *kernel_global_avg_pool_grad(KernelBuilder *kb) { return global_pool(kb, true); }
