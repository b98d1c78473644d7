// kernels_conv_cpu.c: convolutions (groups == 1) on the CPU as packed matrix products
// (kernels_packed.c) that gather their operands from the images as they pack them: no patch
// matrix is ever stored, in training either.
//
// The forward pass is C[co, r] = sum over kk of w[co, kk] patch(r, kk): the weights are A,
// read in place; the rows r (output positions) are B's columns, so the register tile's
// vectors run along an output row, which NCHW stores contiguously. Rows are ordered
// (image, position), and B is gathered one image row at a time: a copy with zeros at the
// borders, a whole shifted plane where the convolution keeps the image's size, or a plain
// copy of the activation for a 1x1 convolution. On 2x2 and 1x1 images (where most taps of a
// 3x3 kernel fall in the padding) rows are ordered (position, image) instead and the
// reduction (tap, channel), so that every row of a tile shares its position and the taps
// that fall outside it are skipped, not multiplied by zero (conv_algorithm, compiler/ops.c,
// makes the choice and --stats prints it).
#include "conv_cpu.h"

typedef struct Conv {
  ConvCpu g;
  int image;            // the image's buffer
} Conv;

static const Conv *conv_of(const Product *pr) { return pr->ctx; }

// (channel, tap) of reduction step kk: ordered (channel, tap) for rows by image, as the
// weights are stored, and (tap, channel) for rows by position, a tap per group of steps.
static void step_of(Kernel *k, const ConvCpu *c, KExpr *kk, KExpr **ci, KExpr **tap) {
  *ci = c->by_position ? kir_mod(k, kk, c->x.c) : kir_div(k, kk, c->T);
  *tap = c->by_position ? kir_div(k, kk, c->x.c) : kir_mod(k, kk, c->T);
}

static KExpr *weight_index(KernelBuilder *kb, const Product *pr, KExpr *co, KExpr *kk) {
  Kernel *k = kb->k;
  const ConvCpu *c = &conv_of(pr)->g;
  KExpr *ci, *tap;
  step_of(k, c, kk, &ci, &tap);
  return kir_add(k, kir_mul(k, co, kir_int(k, pr->K)), kir_add(k, kir_mul(k, ci, kir_int(k, c->T)), tap));
}

// B's step (ci, tap) for rows (image, position).
static void gather_by_image(KernelBuilder *kb, const Conv *cv, KStmt *into, int bp, KExpr *dst, KExpr *ci, KExpr *tap,
                            KExpr *n0, KExpr *cols) {
  conv_gather_by_image(kb, &cv->g, cv->image, into, bp, dst, 1, ci, tap, n0, cols);
}

// The input position of output position pos under a tap, and whether it is inside.
static KExpr *tap_inside(Kernel *k, const ConvCpu *c, KExpr *pos, KExpr *tap, KExpr **ih, KExpr **iw) {
  *ih = conv_input_at(k, c, kir_div(k, pos, c->y.w), kir_div(k, tap, c->k));
  *iw = conv_input_at(k, c, kir_mod(k, pos, c->y.w), kir_mod(k, tap, c->k));
  return kir_and(k, conv_in_range(k, *ih, c->x.h), conv_in_range(k, *iw, c->x.w));
}

// B's step (tap, ci) for rows (position, image): the images' values at one position, or zeros.
static void gather_by_position(KernelBuilder *kb, const Conv *cv, KStmt *into, int bp, KExpr *dst, KExpr *ci,
                               KExpr *tap, KExpr *n0, KExpr *cols) {
  Kernel *k = kb->k;
  const ConvCpu *c = &cv->g;
  KExpr *pos, *jlo, *jhi, *ih, *iw;
  KStmt *run = conv_runs(kb, into, n0, cols, c->x.n, &pos, &jlo, &jhi);
  KStmt *outside;
  KStmt *inside = kir_if(k, run, tap_inside(k, c, pos, tap, &ih, &iw), &outside);
  conv_zeros(kb, outside, bp, dst, 1, jlo, jhi);
  // x[n0 + j - pos*N, ci, ih, iw]
  KExpr *img0 = kir_sub(k, n0, kir_mul(k, pos, kir_int(k, c->x.n)));
  KExpr *from = kir_add(k, kir_mul(k, kir_add(k, kir_mul(k, img0, kir_int(k, c->x.c)), ci), kir_int(k, c->x.h * c->x.w)),
                        kir_add(k, kir_mul(k, ih, kir_int(k, c->x.w)), iw));
  conv_copy(kb, inside, bp, dst, 1, cv->image, from, c->x.c * c->x.h * c->x.w, jlo, jhi);
}

static void pack_patches(KernelBuilder *kb, const Product *pr, KStmt *into, int bp, int64_t ldb, KExpr *p0, KExpr *kc,
                         KExpr *n0, KExpr *cols) {
  Kernel *k = kb->k;
  const Conv *cv = conv_of(pr);
  int p;
  KStmt *steps = kernel_range(kb, into, "p", kir_int(k, 0), kc, &p);
  KExpr *dst = kir_mul(k, kir_ref(k, p), kir_int(k, ldb)), *ci, *tap;
  step_of(k, &cv->g, kir_add(k, p0, kir_ref(k, p)), &ci, &tap);
  ci = kernel_let(kb, steps, "ci", ci);
  tap = kernel_let(kb, steps, "tap", tap);
  (cv->g.by_position ? gather_by_position : gather_by_image)(kb, cv, steps, bp, dst, ci, tap, n0, cols);
  conv_zeros(kb, steps, bp, dst, 1, cols, kir_int(k, pr->NC));
}

// Whether block [p0, p0 + kc), one tap's channels, reaches inside the image at any
// position of the tile (rows by position).
static KExpr *tap_used(KernelBuilder *kb, const Product *pr, KStmt *into, KExpr *p0, KExpr *kc, KExpr *n0,
                       KExpr *cols) {
  (void)kc;
  Kernel *k = kb->k;
  const ConvCpu *c = &conv_of(pr)->g;
  int used = kir_var(k, "used", KT_I64);
  kir_assign(k, into, used, kir_int(k, 0));
  KExpr *pos, *jlo, *jhi, *ih, *iw;
  KStmt *run = conv_runs(kb, into, n0, cols, c->x.n, &pos, &jlo, &jhi);
  KExpr *inside = tap_inside(k, c, pos, kir_div(k, p0, c->x.c), &ih, &iw);
  kir_assign(k, run, used, conv_max(k, kir_ref(k, used), kir_cast(k, KT_I64, inside)));
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
  KExpr *lo = kir_mul(k, kir_ref(k, q), kir_int(k, R)), *hi = conv_min(k, kir_add(k, lo, kir_int(k, R)), cols);
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
                          KExpr *cols, KExpr *split) {
  (void)split;
  Kernel *k = kb->k;
  const ConvCpu *cv = &conv_of(pr)->g;
  Shape y = cv->y;
  int i, j;
  KStmt *chans = kernel_range(kb, into, "i", kir_int(k, 0), conv_min(k, kir_int(k, pr->MC), kir_sub(k, kir_int(k, pr->M), m0)), &i);
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
    KStmt *seg = conv_runs(kb, chans, n0, cols, cv->P, &img, &jlo, &jhi);
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

Kernel *kernel_conv_cpu(KernelBuilder *kb) {
  const Node *n = kb->node;
  Conv cv = {conv_cpu_of(&n->attr.conv, n->in[0]->shape, n->shape), kb->in[0]};
  cv.image = conv_phases_input(kb, &cv.g, cv.image);
  const ConvCpu *c = &cv.g;
  Product pr = {.M = c->y.c, .N = c->y.n * c->P, .K = c->x.c * c->T, .splits = 1, .NC = 256, .a_buf = kb->in[1],
                .a_index = weight_index, .pack_b = pack_patches, .store = store_outputs, .ctx = &cv};
  packed_tile(kb->target, &pr.rows, &pr.cols);
  pr.MC = packed_rows_block(&pr);
  pr.KC = pr.K < 128 ? pr.K : 128;
  // Rows by image read the weights in place, whatever the rows left over (VGG-11-BN's 4x4
  // layers, 512 channels: 8-25% less time than packing them on the AMD EPYC); rows by
  // position, whose steps are T apart in the weights, pack them (in place took 1.4x as long).
  pr.a_direct = !c->by_position;
  pr.a_step = c->by_position ? c->T : 1;
  pr.a_row = pr.K;
  if (c->by_position) {   // a tap per group of steps, and the taps outside skipped
    pr.KG = c->x.c;
    pr.live = tap_used;
  }
  return packed_product(kb, &pr);
}
