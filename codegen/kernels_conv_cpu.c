// kernels_conv_cpu.c: convolutions (groups == 1) on the CPU as packed matrix products
// (kernels_packed.c) that gather their operands from the images as they pack them: no patch
// matrix is ever stored, in training either.
//
// The forward pass is C[co, r] = sum over kk of w[co, kk] patch(r, kk): the weights are A,
// read in place; the rows r (output positions) are B's columns, so the register tile's
// vectors run along an output row, which NCHW stores contiguously. Rows are ordered
// (image, position), and B is gathered one image row at a time: a copy with zeros at the
// borders, or a plain copy of the activation for a 1x1 convolution. On small images (a few
// positions, where most taps of a 3x3 kernel fall in the padding) rows are ordered
// (position, image) instead and the reduction (tap, channel), so that every row of a tile
// shares its position and the taps that fall outside it are skipped, not multiplied by zero
// (conv_algorithm, compiler/ops.c, makes the choice and --stats prints it).
#include "lower.h"

typedef struct Conv {
  Shape x, y;           // the image [N,CI,H,W] and the output [N,CO,OH,OW]
  int64_t k, stride, pad, dil;
  int64_t P, T;         // output positions per image, taps
  bool by_position;     // rows (position, image), reduction (tap, channel)
  int image;            // buffers
} Conv;

static const Conv *conv_of(const Product *pr) { return pr->ctx; }

// (channel, tap) of reduction step kk.
static void step_of(Kernel *k, const Conv *c, KExpr *kk, KExpr **ci, KExpr **tap) {
  *ci = c->by_position ? kir_mod(k, kk, c->x.c) : kir_div(k, kk, c->T);
  *tap = c->by_position ? kir_div(k, kk, c->x.c) : kir_mod(k, kk, c->T);
}

static KExpr *weight_index(KernelBuilder *kb, const Product *pr, KExpr *co, KExpr *kk) {
  Kernel *k = kb->k;
  const Conv *c = conv_of(pr);
  KExpr *ci, *tap;
  step_of(k, c, kk, &ci, &tap);
  return kir_add(k, kir_mul(k, co, kir_int(k, pr->K)), kir_add(k, kir_mul(k, ci, kir_int(k, c->T)), tap));
}

static KExpr *in_range(Kernel *k, KExpr *v, int64_t size) {
  return kir_and(k, kir_binary(k, KB_LE, kir_int(k, 0), v), kir_lt(k, v, kir_int(k, size)));
}

static KExpr *imin(Kernel *k, KExpr *a, KExpr *b) { return kir_binary(k, KB_MIN, a, b); }
static KExpr *imax(Kernel *k, KExpr *a, KExpr *b) { return kir_binary(k, KB_MAX, a, b); }

// The input coordinate of output coordinate o under kernel offset kk.
static KExpr *input_at(Kernel *k, const Conv *c, KExpr *o, KExpr *kk) {
  return kir_add(k, kir_sub(k, kir_mul(k, o, kir_int(k, c->stride)), kir_int(k, c->pad)), kir_mul(k, kk, kir_int(k, c->dil)));
}

// dst[at + j] = 0 for j in [lo, hi)
static void zeros(KernelBuilder *kb, KStmt *into, int dst, KExpr *at, KExpr *lo, KExpr *hi) {
  int j;
  KStmt *loop = kernel_range(kb, into, "j", lo, hi, &j);
  kir_store(kb->k, loop, dst, kir_add(kb->k, at, kir_ref(kb->k, j)), kir_float(kb->k, 0));
}

// dst[at + j] = src[from + j*step] for j in [lo, hi)
static void copy(KernelBuilder *kb, KStmt *into, int dst, KExpr *at, int src, KExpr *from, int64_t step, KExpr *lo,
                 KExpr *hi) {
  Kernel *k = kb->k;
  int j;
  KStmt *loop = kernel_range(kb, into, "j", lo, hi, &j);
  KExpr *s = kir_add(k, from, kir_mul(k, kir_ref(k, j), kir_int(k, step)));
  kir_store(k, loop, dst, kir_add(k, at, kir_ref(k, j)), kir_load(k, src, s));
}

// The segments of a tile's columns [0, cols) (global rows [n0, n0 + cols)) that share what
// `len` consecutive rows share: g runs over them, [*jlo, *jhi) is g's part of the tile.
static KStmt *segments(KernelBuilder *kb, KStmt *into, KExpr *n0, KExpr *cols, int64_t len, KExpr **g, KExpr **jlo,
                       KExpr **jhi) {
  Kernel *k = kb->k;
  int gv;
  KExpr *first = kir_div(k, n0, len), *last = kir_div(k, kir_sub(k, kir_add(k, n0, cols), kir_int(k, 1)), len);
  KStmt *loop = kernel_range(kb, into, "g", first, kir_add(k, last, kir_int(k, 1)), &gv);
  *g = kir_ref(k, gv);
  KExpr *start = kir_sub(k, kir_mul(k, *g, kir_int(k, len)), n0);
  *jlo = kernel_let(kb, loop, "jlo", imax(k, start, kir_int(k, 0)));
  *jhi = kernel_let(kb, loop, "jhi", imin(k, kir_add(k, start, kir_int(k, len)), cols));
  return loop;
}

// The outputs o in [lo, hi) of a row whose input o*s - pad + kk*d lies in [0, size).
static void valid_outputs(Kernel *k, const Conv *c, KExpr *kk, int64_t size, int64_t out, KExpr **lo, KExpr **hi) {
  // o >= ceil((pad - kk*d) / s) and o <= floor((size - 1 + pad - kk*d) / s), as shifted divisions
  int64_t bias = (c->k * c->dil + c->pad + c->stride) * c->stride;
  KExpr *shift = kir_sub(k, kir_int(k, c->pad), kir_mul(k, kk, kir_int(k, c->dil)));
  KExpr *first = kir_sub(k, kir_div(k, kir_add(k, shift, kir_int(k, c->stride - 1 + bias)), c->stride), kir_int(k, bias / c->stride));
  KExpr *last = kir_sub(k, kir_div(k, kir_add(k, shift, kir_int(k, size - 1 + bias)), c->stride), kir_int(k, bias / c->stride));
  *lo = imin(k, imax(k, first, kir_int(k, 0)), kir_int(k, out));
  *hi = imax(k, imin(k, kir_add(k, last, kir_int(k, 1)), kir_int(k, out)), *lo);
}

// B's step kk for rows (image, position): one image row at a time, zeros where the tap
// falls outside the image; a 1x1 convolution without stride or padding copies whole images.
static void gather_by_image(KernelBuilder *kb, const Conv *c, KStmt *into, int bp, KExpr *dst, KExpr *ci, KExpr *tap,
                            KExpr *n0, KExpr *cols) {
  Kernel *k = kb->k;
  KExpr *g, *jlo, *jhi;
  if (c->k == 1 && c->stride == 1 && c->pad == 0) {
    KStmt *img = segments(kb, into, n0, cols, c->P, &g, &jlo, &jhi);
    KExpr *from = kir_add(k, kir_mul(k, kir_add(k, kir_mul(k, g, kir_int(k, c->x.c)), ci), kir_int(k, c->P)),
                          kir_sub(k, n0, kir_mul(k, g, kir_int(k, c->P))));
    copy(kb, img, bp, dst, c->image, from, 1, jlo, jhi);
    return;
  }
  KStmt *row = segments(kb, into, n0, cols, c->y.w, &g, &jlo, &jhi);
  KExpr *img = kir_div(k, g, c->y.h), *oh = kir_mod(k, g, c->y.h);
  KExpr *kh = kir_div(k, tap, c->k), *kw = kir_mod(k, tap, c->k);
  KExpr *ih = kernel_let(kb, row, "ih", input_at(k, c, oh, kh));
  KStmt *outside;
  KStmt *inside = kir_if(k, row, in_range(k, ih, c->x.h), &outside);
  zeros(kb, outside, bp, dst, jlo, jhi);
  KExpr *lo, *hi;   // the row's columns whose tap lies inside: j = g*OW + ow - n0
  valid_outputs(k, c, kw, c->x.w, c->y.w, &lo, &hi);
  KExpr *base = kir_sub(k, kir_mul(k, g, kir_int(k, c->y.w)), n0);
  KExpr *ja = kernel_let(kb, inside, "ja", imin(k, imax(k, kir_add(k, base, lo), jlo), jhi));
  KExpr *jb = kernel_let(kb, inside, "jb", imax(k, imin(k, kir_add(k, base, hi), jhi), ja));
  zeros(kb, inside, bp, dst, jlo, ja);
  // x[img, ci, ih, (j - base)*s - pad + kw*d]
  KExpr *plane = kir_mul(k, kir_add(k, kir_mul(k, img, kir_int(k, c->x.c)), ci), kir_int(k, c->x.h * c->x.w));
  KExpr *col0 = kir_sub(k, kir_mul(k, kir_sub(k, kir_int(k, 0), base), kir_int(k, c->stride)),
                        kir_sub(k, kir_int(k, c->pad), kir_mul(k, kw, kir_int(k, c->dil))));
  KExpr *from = kir_add(k, kir_add(k, plane, kir_mul(k, ih, kir_int(k, c->x.w))), col0);
  copy(kb, inside, bp, dst, c->image, from, c->stride, ja, jb);
  zeros(kb, inside, bp, dst, jb, jhi);
}

// The input position of output position pos under a tap, and whether it is inside.
static KExpr *tap_inside(KernelBuilder *kb, const Conv *c, KExpr *pos, KExpr *tap, KExpr **ih, KExpr **iw) {
  Kernel *k = kb->k;
  *ih = input_at(k, c, kir_div(k, pos, c->y.w), kir_div(k, tap, c->k));
  *iw = input_at(k, c, kir_mod(k, pos, c->y.w), kir_mod(k, tap, c->k));
  return kir_and(k, in_range(k, *ih, c->x.h), in_range(k, *iw, c->x.w));
}

// B's step kk for rows (position, image): the images' values at one position, or zeros.
static void gather_by_position(KernelBuilder *kb, const Conv *c, KStmt *into, int bp, KExpr *dst, KExpr *ci, KExpr *tap,
                               KExpr *n0, KExpr *cols) {
  Kernel *k = kb->k;
  KExpr *pos, *jlo, *jhi, *ih, *iw;
  KStmt *seg = segments(kb, into, n0, cols, c->x.n, &pos, &jlo, &jhi);
  KStmt *outside;
  KStmt *inside = kir_if(k, seg, tap_inside(kb, c, pos, tap, &ih, &iw), &outside);
  zeros(kb, outside, bp, dst, jlo, jhi);
  // x[j - base, ci, ih, iw] with base = pos*N - n0
  KExpr *img0 = kir_sub(k, n0, kir_mul(k, pos, kir_int(k, c->x.n)));
  KExpr *from = kir_add(k, kir_mul(k, kir_add(k, kir_mul(k, img0, kir_int(k, c->x.c)), ci), kir_int(k, c->x.h * c->x.w)),
                        kir_add(k, kir_mul(k, ih, kir_int(k, c->x.w)), iw));
  copy(kb, inside, bp, dst, c->image, from, c->x.c * c->x.h * c->x.w, jlo, jhi);
}

static void pack_patches(KernelBuilder *kb, const Product *pr, KStmt *into, int bp, int64_t ldb, KExpr *p0, KExpr *kc,
                         KExpr *n0) {
  Kernel *k = kb->k;
  const Conv *c = conv_of(pr);
  KExpr *cols = kernel_let(kb, into, "cols", imin(k, kir_int(k, pr->NC), kir_sub(k, kir_int(k, pr->N), n0)));
  int p;
  KStmt *steps = kernel_range(kb, into, "p", kir_int(k, 0), kc, &p);
  KExpr *dst = kir_mul(k, kir_ref(k, p), kir_int(k, ldb)), *ci, *tap;
  step_of(k, c, kir_add(k, p0, kir_ref(k, p)), &ci, &tap);
  ci = kernel_let(kb, steps, "ci", ci);
  tap = kernel_let(kb, steps, "tap", tap);
  (c->by_position ? gather_by_position : gather_by_image)(kb, c, steps, bp, dst, ci, tap, n0, cols);
  zeros(kb, steps, bp, dst, cols, kir_int(k, pr->NC));
}

// Whether block [p0, p0 + kc), one tap's channels, reaches inside the image at any
// position of the tile (rows by position).
static KExpr *tap_used(KernelBuilder *kb, const Product *pr, KStmt *into, KExpr *p0, KExpr *kc, KExpr *n0) {
  (void)kc;
  Kernel *k = kb->k;
  const Conv *c = conv_of(pr);
  int used = kir_var(k, "used", KT_I64);
  kir_assign(k, into, used, kir_int(k, 0));
  KExpr *cols = imin(k, kir_int(k, pr->NC), kir_sub(k, kir_int(k, pr->N), n0));
  KExpr *pos, *jlo, *jhi, *ih, *iw;
  KStmt *seg = segments(kb, into, n0, cols, c->x.n, &pos, &jlo, &jhi);
  KExpr *inside = tap_inside(kb, c, pos, kir_div(k, p0, c->x.c), &ih, &iw);
  kir_assign(k, seg, used, imax(k, kir_ref(k, used), kir_cast(k, KT_I64, inside)));
  return kir_lt(k, kir_int(k, 0), kir_ref(k, used));
}

// The statistics of the tile's rows for channel co, chunk by chunk (of R rows, which the
// tile's NC is a multiple of), from the values stored (kept in c at row i): each chunk's
// mean and sum of squared deviations go after the output, at [chunk][2][C].
static void chunk_stats(KernelBuilder *kb, KStmt *into, int c, KExpr *row, KExpr *co, KExpr *n0,
                        KExpr *cols) {
  Kernel *k = kb->k;
  Shape y = kb->node->shape;
  int64_t R = kb->node->fused.stats_rows;
  int q, j, j2;
  KStmt *chunks = kernel_range(kb, into, "q", kir_int(k, 0), kir_div(k, kir_add(k, cols, kir_int(k, R - 1)), R), &q);
  KExpr *lo = kir_mul(k, kir_ref(k, q), kir_int(k, R)), *hi = imin(k, kir_add(k, lo, kir_int(k, R)), cols);
  int sum = kir_var(k, "sum", KT_F32), m2 = kir_var(k, "m2", KT_F32);
  kir_assign(k, chunks, sum, kir_float(k, 0));
  KStmt *pass1 = kernel_range(kb, chunks, "j", lo, hi, &j);
  kir_assign(k, pass1, sum, kir_binary(k, KB_ADD, kir_ref(k, sum), kir_load(k, c, kir_add(k, row, kir_ref(k, j)))));
  KExpr *count = kir_cast(k, KT_F32, kir_sub(k, hi, lo));
  KExpr *mean = kernel_let(kb, chunks, "mean", kir_binary(k, KB_DIV, kir_ref(k, sum), count));
  kir_assign(k, chunks, m2, kir_float(k, 0));
  KStmt *pass2 = kernel_range(kb, chunks, "j", lo, hi, &j2);
  KExpr *d = kir_binary(k, KB_SUB, kir_load(k, c, kir_add(k, row, kir_ref(k, j2))), mean);
  kir_assign(k, pass2, m2, kir_fma(k, kir_ref(k, m2), d, d));
  KExpr *chunk = kir_add(k, kir_div(k, n0, R), kir_ref(k, q));
  KExpr *row0 = kir_add(k, kir_int(k, shape_elems(y)), kir_mul(k, chunk, kir_int(k, 2 * y.c)));
  kir_store(k, chunks, kb->out, kir_add(k, row0, co), mean);
  kir_store(k, chunks, kb->out, kir_add(k, kir_add(k, row0, kir_int(k, y.c)), co), kir_ref(k, m2));
}

// y[img, co, pos] = the epilogue of C[co, r] (bias, folded batchnorm, residual, activation),
// image by image (rows by image: contiguous) or one by one (rows by position).
static void store_outputs(KernelBuilder *kb, const Product *pr, KStmt *into, int c, int64_t ldc, KExpr *m0, KExpr *n0,
                          KExpr *split) {
  (void)split;
  Kernel *k = kb->k;
  const Conv *cv = conv_of(pr);
  Shape y = cv->y;
  KExpr *cols = kernel_let(kb, into, "cols", imin(k, kir_int(k, pr->NC), kir_sub(k, kir_int(k, pr->N), n0)));
  int i, j;
  KStmt *chans = kernel_range(kb, into, "i", kir_int(k, 0), imin(k, kir_int(k, pr->MC), kir_sub(k, kir_int(k, pr->M), m0)), &i);
  KExpr *co = kernel_let(kb, chans, "co", kir_add(k, m0, kir_ref(k, i)));
  KExpr *row = kir_mul(k, kir_ref(k, i), kir_int(k, ldc));
  KStmt *each;
  KExpr *at;
  if (cv->by_position) {
    each = kernel_range(kb, chans, "j", kir_int(k, 0), cols, &j);
    KExpr *r = kir_add(k, n0, kir_ref(k, j));
    KExpr *img = kir_mod(k, r, y.n), *pos = kir_div(k, r, y.n);
    at = kir_add(k, kir_mul(k, kir_add(k, kir_mul(k, img, kir_int(k, y.c)), co), kir_int(k, cv->P)), pos);
  } else {
    KExpr *img, *jlo, *jhi;
    KStmt *seg = segments(kb, chans, n0, cols, cv->P, &img, &jlo, &jhi);
    each = kernel_range(kb, seg, "j", jlo, jhi, &j);
    // y[img, co, n0 + j - img*P]
    KExpr *base = kir_sub(k, kir_mul(k, kir_add(k, kir_mul(k, img, kir_int(k, y.c)), co), kir_int(k, cv->P)),
                          kir_sub(k, kir_mul(k, img, kir_int(k, cv->P)), n0));
    at = kir_add(k, base, kir_ref(k, j));
  }
  at = kernel_let(kb, each, "at", at);
  KExpr *from = kir_add(k, row, kir_ref(k, j));
  KExpr *v = kernel_epilogue(kb, kernel_matmul_finish(kb, kir_load(k, c, from), co), at);
  if (!kb->node->fused.stats_rows) {
    kir_store(k, each, kb->out, at, v);
    return;
  }
  v = kernel_let(kb, each, "v", v);
  kir_store(k, each, kb->out, at, v);
  kir_store(k, each, c, from, v);
  chunk_stats(kb, chans, c, row, co, n0, cols);
}

// Rows by position when an image has so few positions that most taps fall in the padding,
// and the channels can be cut into blocks of whole taps.
static bool rows_by_position(const Node *n) { return conv_by_position(n) && n->in[0]->shape.c % 8 == 0; }

static int64_t block_of(int64_t channels) {
  int64_t b = 128;
  while (channels % b)
    b /= 2;
  return b;
}

Kernel *kernel_conv_cpu(KernelBuilder *kb) {
  const Node *n = kb->node;
  const ConvAttrs *a = &n->attr.conv;
  Shape x = n->in[0]->shape, y = n->shape;
  Conv c = {x, y, a->kernel, a->stride, a->pad, a->dilation, y.h * y.w, a->kernel * a->kernel, rows_by_position(n),
            kb->in[0]};
  Product pr = {.M = y.c, .N = y.n * c.P, .K = x.c * c.T, .splits = 1, .NC = 256, .a_buf = kb->in[1],
                .a_index = weight_index, .pack_b = pack_patches, .store = store_outputs, .ctx = &c};
  packed_tile(kb->target, &pr.rows, &pr.cols);
  pr.MC = ((y.c < 128 ? y.c : 128) + pr.rows - 1) / pr.rows * pr.rows;
  pr.KC = c.by_position ? block_of(x.c) : pr.K < 128 ? pr.K : 128;
  pr.a_direct = y.c % pr.rows == 0;
  pr.a_step = c.by_position ? c.T : 1;
  pr.a_row = pr.K;
  if (c.by_position)
    pr.live = tap_used;
  return packed_product(kb, &pr);
}
