// kernels_conv_cpu_dw.c: a convolution's weight gradient on the CPU (groups == 1), as a packed
// product (kernels_packed.c) that gathers the image's patches as it packs them:
//   dw[co, ci, kh, kw] = sum over n, oh, ow of dy[n, co, oh, ow] x[n, ci, oh*s - pad + kh*d, ow*s - pad + kw*d]
// C[co, (ci, tap)]; the reduction runs over the output rows (n, oh, ow), A is dy, B the
// patches: for each column (ci, tap), a row of the image at a time, as the forward pass
// gathers them, transposed into B's column. With an output [chunks, dw's size] (the schedule's
// split, compiler/schedule.c), chunk c sums the images of its own part.
//
// On small images (rows by position, conv_cpu.h) the rows are ordered by position, then
// image, the columns (tap, ci), and the blocks of a position skip the column tiles whose taps
// all fall outside the image there.
#include "conv_cpu.h"

typedef struct Dw {
  ConvCpu g;
  int dy, image;        // buffers
} Dw;

static const Dw *dw_of(const Product *pr) { return pr->ctx; }

// A[co, r] = dy[n, co, pos], r = (n, pos) or (pos, n)
static KExpr *dy_index(KernelBuilder *kb, const Product *pr, KExpr *co, KExpr *r) {
  Kernel *k = kb->k;
  const ConvCpu *c = &dw_of(pr)->g;
  KExpr *n = c->by_position ? kir_mod(k, r, c->x.n) : kir_div(k, r, c->P);
  KExpr *pos = c->by_position ? kir_div(k, r, c->x.n) : kir_mod(k, r, c->P);
  return kir_add(k, kir_mul(k, kir_add(k, kir_mul(k, n, kir_int(k, c->y.c)), co), kir_int(k, c->P)), pos);
}

// Whether a tap falls inside the image at output position pos, and where.
static KExpr *tap_inside(Kernel *k, const ConvCpu *c, KExpr *pos, KExpr *tap, KExpr **ih, KExpr **iw) {
  *ih = conv_input_at(k, c, kir_div(k, pos, c->y.w), kir_div(k, tap, c->k));
  *iw = conv_input_at(k, c, kir_mod(k, pos, c->y.w), kir_mod(k, tap, c->k));
  return kir_and(k, conv_in_range(k, *ih, c->x.h), conv_in_range(k, *iw, c->x.w));
}

// Rows by position: the block is one position's images [p0 mod N, + kc); column jj, (tap, ci),
// is their values there, or zeros.
static void gather_position(KernelBuilder *kb, const Dw *d, KStmt *into, int bp, int64_t ldb, KExpr *jj, KExpr *ci,
                            KExpr *tap, KExpr *p0, KExpr *kc) {
  Kernel *k = kb->k;
  const ConvCpu *c = &d->g;
  KExpr *ih, *iw, *pos = kir_div(k, p0, c->x.n);
  KStmt *outside;
  KStmt *inside = kir_if(k, into, tap_inside(k, c, pos, tap, &ih, &iw), &outside);
  conv_zeros(kb, outside, bp, jj, ldb, kir_int(k, 0), kc);
  // x[p0 mod N + p, ci, ih, iw]
  KExpr *img = kir_add(k, kir_mul(k, kir_mod(k, p0, c->x.n), kir_int(k, c->x.c)), ci);
  KExpr *from = kir_add(k, kir_mul(k, img, kir_int(k, c->x.h * c->x.w)), kir_add(k, kir_mul(k, ih, kir_int(k, c->x.w)), iw));
  conv_copy(kb, inside, bp, jj, ldb, d->image, from, c->x.c * c->x.h * c->x.w, kir_int(k, 0), kc);
}

// The rows past M in the last register tile's panel of A packed by rows, which the tile
// reads: zeros (their sums are not stored). The panels wholly past M are not run.
static void zero_rows_past_m(KernelBuilder *kb, const Product *pr, KStmt *into, int ap, int64_t lda, KExpr *live,
                             KExpr *kc) {
  Kernel *k = kb->k;
  int z;
  KExpr *panel_end = kir_mul(k, kir_div(k, kir_add(k, live, kir_int(k, pr->rows - 1)), pr->rows), kir_int(k, pr->rows));
  KStmt *past = kernel_range(kb, into, "i", live, panel_end, &z);
  conv_zeros(kb, past, ap, kir_mul(k, kir_ref(k, z), kir_int(k, lda)), 1, kir_int(k, 0), kc);
}

// Rows by image: A's rows, dy's channels, packed by rows, an image's run at a time (dy's
// planes: contiguous, vectorised copies). Packed into panels of interleaved rows, a float
// at a time, they made VGG-11-BN's weight gradients by dy 1.3x as slow (its 8x8 256 -> 256
// layer 79-94 ms a step against 54-60, AMD EPYC).
static void pack_dy_by_rows(KernelBuilder *kb, const Product *pr, KStmt *into, int ap, int64_t lda, KExpr *m0,
                            KExpr *p0, KExpr *kc) {
  Kernel *k = kb->k;
  const Dw *d = dw_of(pr);
  const ConvCpu *c = &d->g;
  KExpr *live = kernel_let(kb, into, "live", conv_min(k, kir_int(k, pr->MC), kir_sub(k, kir_int(k, pr->M), m0)));
  KExpr *n, *jlo, *jhi;
  int i;
  KStmt *rows = kernel_range(kb, into, "i", kir_int(k, 0), live, &i);
  KStmt *run = conv_runs(kb, rows, p0, kc, c->P, &n, &jlo, &jhi);
  // dy[n, m0 + i, p0 + j - n*P]
  KExpr *plane = kir_add(k, kir_mul(k, n, kir_int(k, c->y.c)), kir_add(k, m0, kir_ref(k, i)));
  KExpr *from = kir_add(k, kir_mul(k, plane, kir_int(k, c->P)), kir_sub(k, p0, kir_mul(k, n, kir_int(k, c->P))));
  conv_copy(kb, run, ap, kir_mul(k, kir_ref(k, i), kir_int(k, lda)), 1, d->dy, from, 1, jlo, jhi);
  zero_rows_past_m(kb, pr, into, ap, lda, live, kc);
}

// Rows by image: the block's columns a strip of `lanes` at a time, each column's run of
// rows gathered into a row of `strip` (contiguous, vectorised copies), then the strip
// transposed into B's columns a square of lanes x lanes at a time (kir_transpose). Written
// straight down B's columns, a scalar store each, the patches took 19% of VGG-11-BN's weight
// gradients (27 of 139 ms on the Intel Xeon). Past the block's columns and rows the strip
// holds what it held: its columns past `cols` are zeroed after, its rows past kc never read.
static void gather_strips(KernelBuilder *kb, const Product *pr, KStmt *into, int bp, int64_t ldb, KExpr *p0,
                          KExpr *kc, KExpr *n0, KExpr *cols) {
  Kernel *k = kb->k;
  const Dw *d = dw_of(pr);
  const ConvCpu *c = &d->g;
  int64_t lanes = kb->target->lanes, pitch = pr->KC + 16;
  int strip = kir_local(k, "a strip of B's columns, by rows", KT_F32, lanes * pitch);
  int s, jv, q;
  KStmt *strips = kernel_range(kb, into, "s", kir_int(k, 0), kir_div(k, kir_add(k, cols, kir_int(k, lanes - 1)), lanes), &s);
  KExpr *first = kernel_let(kb, strips, "first", kir_mul(k, kir_ref(k, s), kir_int(k, lanes)));
  KStmt *each = kernel_range(kb, strips, "jj", kir_int(k, 0), conv_min(k, kir_int(k, lanes), kir_sub(k, cols, first)), &jv);
  KExpr *j = kir_add(k, kir_add(k, n0, first), kir_ref(k, jv));
  KExpr *ci = kernel_let(kb, each, "ci", kir_div(k, j, c->T)), *tap = kernel_let(kb, each, "tap", kir_mod(k, j, c->T));
  conv_gather_by_image(kb, c, d->image, each, strip, kir_mul(k, kir_ref(k, jv), kir_int(k, pitch)), 1, ci, tap, p0, kc);
  KStmt *squares = kernel_range(kb, strips, "q", kir_int(k, 0), kir_div(k, kir_add(k, kc, kir_int(k, lanes - 1)), lanes), &q);
  KExpr *row = kir_mul(k, kir_ref(k, q), kir_int(k, lanes));
  kir_transpose(k, squares, bp, kir_add(k, kir_mul(k, row, kir_int(k, ldb)), first), ldb, strip, row, pitch, (int)lanes);
}

static void pack_patches(KernelBuilder *kb, const Product *pr, KStmt *into, int bp, int64_t ldb, KExpr *p0, KExpr *kc,
                         KExpr *n0, KExpr *cols) {
  Kernel *k = kb->k;
  const Dw *d = dw_of(pr);
  const ConvCpu *c = &d->g;
  int jv, p;
  if (c->by_position) {
    KStmt *each = kernel_range(kb, into, "jj", kir_int(k, 0), cols, &jv);
    KExpr *j = kir_add(k, n0, kir_ref(k, jv));
    KExpr *ci = kernel_let(kb, each, "ci", kir_mod(k, j, c->x.c)), *tap = kernel_let(kb, each, "tap", kir_div(k, j, c->x.c));
    gather_position(kb, d, each, bp, ldb, kir_ref(k, jv), ci, tap, p0, kc);
  } else {
    gather_strips(kb, pr, into, bp, ldb, p0, kc, n0, cols);
  }
  KStmt *rows = kernel_range(kb, into, "p", kir_int(k, 0), kc, &p);
  conv_zeros(kb, rows, bp, kir_mul(k, kir_ref(k, p), kir_int(k, ldb)), 1, cols, kir_int(k, pr->NC));
}

// Rows by position: whether any tap of the column tile falls inside the image at the block's position.
static KExpr *taps_used(KernelBuilder *kb, const Product *pr, KStmt *into, KExpr *p0, KExpr *kc, KExpr *n0,
                        KExpr *cols) {
  (void)kc;
  Kernel *k = kb->k;
  const ConvCpu *c = &dw_of(pr)->g;
  int used = kir_var(k, "used", KT_I64), t;
  kir_assign(k, into, used, kir_int(k, 0));
  KExpr *last = kir_add(k, n0, cols);
  KExpr *first_tap = kir_div(k, n0, c->x.c), *end_tap = kir_div(k, kir_add(k, last, kir_int(k, c->x.c - 1)), c->x.c);
  KStmt *taps = kernel_range(kb, into, "t", first_tap, end_tap, &t);
  KExpr *ih, *iw, *inside = tap_inside(k, c, kir_div(k, p0, c->x.n), kir_ref(k, t), &ih, &iw);
  kir_assign(k, taps, used, conv_max(k, kir_ref(k, used), kir_cast(k, KT_I64, inside)));
  return kir_lt(k, kir_int(k, 0), kir_ref(k, used));
}

// dw[split][co, ci, tap] = C[co, column]
static void store_dw(KernelBuilder *kb, const Product *pr, KStmt *into, int c, int64_t ldc, KExpr *m0, KExpr *n0,
                     KExpr *cols, KExpr *split) {
  Kernel *k = kb->k;
  const ConvCpu *g = &dw_of(pr)->g;
  int i, j;
  KStmt *chans = kernel_range(kb, into, "i", kir_int(k, 0), conv_min(k, kir_int(k, pr->MC), kir_sub(k, kir_int(k, pr->M), m0)), &i);
  KExpr *row = kir_mul(k, kir_add(k, kir_mul(k, split, kir_int(k, pr->M)), kir_add(k, m0, kir_ref(k, i))), kir_int(k, pr->N));
  row = kernel_let(kb, chans, "row", row);
  KStmt *each = kernel_range(kb, chans, "j", kir_int(k, 0), cols, &j);
  KExpr *col = kir_add(k, n0, kir_ref(k, j));
  if (g->by_position)   // (tap, ci) -> ci*T + tap
    col = kir_add(k, kir_mul(k, kir_mod(k, col, g->x.c), kir_int(k, g->T)), kir_div(k, col, g->x.c));
  kir_store(k, each, kb->out, kir_add(k, row, col), kir_load(k, c, kir_add(k, kir_mul(k, kir_ref(k, i), kir_int(k, ldc)), kir_ref(k, j))));
}

// Patches as A: C[(ci, tap), co], the reduction over (n, pos) as above. A's rows are runs of
// the image, packed row by row as contiguous, vectorised copies (pack_a_rows); B is dy,
// [(n, pos), co], read down dy's channels. Written down B's columns, the patches cost a
// scalar store each, amortised over the output channels alone (64 on resnet18's first
// layers); dy, the smaller operand here, takes the scalar copies instead.
static void pack_patch_rows(KernelBuilder *kb, const Product *pr, KStmt *into, int ap, int64_t lda, KExpr *m0,
                            KExpr *p0, KExpr *kc) {
  Kernel *k = kb->k;
  const Dw *d = dw_of(pr);
  const ConvCpu *c = &d->g;
  KExpr *live = kernel_let(kb, into, "live", conv_min(k, kir_int(k, pr->MC), kir_sub(k, kir_int(k, pr->M), m0)));
  int i;
  KStmt *rows = kernel_range(kb, into, "i", kir_int(k, 0), live, &i);
  KExpr *m = kir_add(k, m0, kir_ref(k, i));
  KExpr *ci = kernel_let(kb, rows, "ci", kir_div(k, m, c->T)), *tap = kernel_let(kb, rows, "tap", kir_mod(k, m, c->T));
  conv_gather_by_image(kb, c, d->image, rows, ap, kir_mul(k, kir_ref(k, i), kir_int(k, lda)), 1, ci, tap, p0, kc);
  zero_rows_past_m(kb, pr, into, ap, lda, live, kc);
}

// B's block transposed from dy a square of lanes x lanes (positions x channels) at a time,
// where every square lies in one image and its channels are all there: the positions of an
// image and the channels multiples of lanes (resnet18's 56x56 and 28x28 layers, VGG-11-BN's
// 32x32 and 16x16 ones). A block's first row and its length then are too.
static bool dy_in_squares(const Product *pr, int64_t lanes) {
  const ConvCpu *c = &dw_of(pr)->g;
  return c->P % lanes == 0 && pr->N % lanes == 0 && pr->NC % lanes == 0 && pr->KC % lanes == 0;
}

static void transpose_dy(KernelBuilder *kb, const Product *pr, KStmt *into, int bp, int64_t ldb, KExpr *p0, KExpr *kc,
                         KExpr *n0, KExpr *cols, int64_t lanes) {
  Kernel *k = kb->k;
  const Dw *d = dw_of(pr);
  const ConvCpu *c = &d->g;
  int q, s;
  KStmt *rows = kernel_range(kb, into, "q", kir_int(k, 0), kir_div(k, kc, lanes), &q);
  KExpr *r = kernel_let(kb, rows, "r", kir_add(k, p0, kir_mul(k, kir_ref(k, q), kir_int(k, lanes))));
  KExpr *n = kir_div(k, r, c->P), *pos = kir_mod(k, r, c->P);
  KStmt *chans = kernel_range(kb, rows, "s", kir_int(k, 0), kir_div(k, cols, lanes), &s);
  KExpr *co = kir_add(k, n0, kir_mul(k, kir_ref(k, s), kir_int(k, lanes)));
  KExpr *from = kir_add(k, kir_mul(k, kir_add(k, kir_mul(k, n, kir_int(k, c->y.c)), co), kir_int(k, c->P)), pos);
  KExpr *to = kir_add(k, kir_mul(k, kir_mul(k, kir_ref(k, q), kir_int(k, lanes)), kir_int(k, ldb)),
                      kir_mul(k, kir_ref(k, s), kir_int(k, lanes)));
  kir_transpose(k, chans, bp, to, ldb, d->dy, from, c->P, (int)lanes);
}

// B[(n, pos), co] = dy[n, co, pos] (dy_index) for the block's rows and columns [n0, n0 + cols).
static void pack_dy_rows(KernelBuilder *kb, const Product *pr, KStmt *into, int bp, int64_t ldb, KExpr *p0, KExpr *kc,
                         KExpr *n0, KExpr *cols) {
  Kernel *k = kb->k;
  const Dw *d = dw_of(pr);
  int p, j;
  if (dy_in_squares(pr, kb->target->lanes)) {
    transpose_dy(kb, pr, into, bp, ldb, p0, kc, n0, cols, kb->target->lanes);
    KStmt *rows = kernel_range(kb, into, "p", kir_int(k, 0), kc, &p);
    conv_zeros(kb, rows, bp, kir_mul(k, kir_ref(k, p), kir_int(k, ldb)), 1, cols, kir_int(k, pr->NC));
    return;
  }
  KStmt *rows = kernel_range(kb, into, "p", kir_int(k, 0), kc, &p);
  KExpr *r = kernel_let(kb, rows, "r", kir_add(k, p0, kir_ref(k, p)));
  KExpr *at = kernel_let(kb, rows, "at", kir_mul(k, kir_ref(k, p), kir_int(k, ldb)));
  KStmt *each = kernel_range(kb, rows, "j", kir_int(k, 0), cols, &j);
  KExpr *from = dy_index(kb, pr, kir_add(k, n0, kir_ref(k, j)), r);
  kir_store(k, each, bp, kir_add(k, at, kir_ref(k, j)), kir_load(k, d->dy, from));
  conv_zeros(kb, rows, bp, at, 1, cols, kir_int(k, pr->NC));
}

// dw[split][co, ci, tap] = C[(ci, tap), co]: along (ci, tap), dw's rows are written in order.
static void store_dw_by_patch(KernelBuilder *kb, const Product *pr, KStmt *into, int c, int64_t ldc, KExpr *m0,
                              KExpr *n0, KExpr *cols, KExpr *split) {
  Kernel *k = kb->k;
  int i, j;
  KStmt *chans = kernel_range(kb, into, "j", kir_int(k, 0), cols, &j);
  KExpr *co = kir_add(k, kir_mul(k, split, kir_int(k, pr->N)), kir_add(k, n0, kir_ref(k, j)));
  KExpr *row = kernel_let(kb, chans, "row", kir_add(k, kir_mul(k, co, kir_int(k, pr->M)), m0));
  KStmt *each = kernel_range(kb, chans, "i", kir_int(k, 0), conv_min(k, kir_int(k, pr->MC), kir_sub(k, kir_int(k, pr->M), m0)), &i);
  kir_store(k, each, kb->out, kir_add(k, row, kir_ref(k, i)),
            kir_load(k, c, kir_add(k, kir_mul(k, kir_ref(k, i), kir_int(k, ldc)), kir_ref(k, j))));
}

Kernel *kernel_conv_cpu_dw(KernelBuilder *kb) {
  const Node *n = kb->node;   // conv2d_dw(dy, x), shaped like w or [chunks, w's size]
  if (conv_dw_dots(n->forward))
    return kernel_conv_cpu_dw1x1(kb);
  Dw d = {.g = conv_cpu_of(&n->attr.conv, n->in[1]->shape, n->in[0]->shape), .dy = kb->in[0], .image = kb->in[1]};
  d.image = conv_phases_input(kb, &d.g, d.image);
  const ConvCpu *c = &d.g;
  int64_t chunks = n->shape.rank == 2 ? n->shape.d[0] : 1;
  Product pr = {.M = c->y.c, .N = c->x.c * c->T, .K = c->x.n * c->P, .splits = chunks, .NC = 256, .a_buf = kb->in[0],
                .a_index = dy_index, .pack_b = pack_patches, .store = store_dw, .ctx = &d};
  if (!c->by_position)
    pr.pack_a_rows = pack_dy_by_rows;
  packed_tile(kb->target, &pr.rows, &pr.cols);
  // Patches as A (compiler/ops.c, conv_dw_by_patch): the patches are then copied once per
  // task's output channels, dy once per task's rows. With 256 output channels dy as A costs
  // as little (vgg_3x3's 256 -> 256 layer: 46.5 ms against 50.5 with patches as A); with 64,
  // much less (c32: 54.8 against 77.0). A task computes up to CONV_DW_PATCH_ROWS rows, in as
  // few tasks as that allows: vgg_3x3's and resnet18's weight gradients 7-8% faster than with
  // 256 rows a task, which copied dy's blocks three times over.
  if (conv_dw_by_patch(n->forward)) {
    pr = (Product){.M = c->x.c * c->T, .N = c->y.c, .K = c->x.n * c->P, .splits = chunks, .rows = pr.rows,
                   .cols = pr.cols, .pack_a_rows = pack_patch_rows, .pack_b = pack_dy_rows,
                   .store = store_dw_by_patch, .ctx = &d};
    pr.NC = (c->y.c + pr.cols - 1) / pr.cols * pr.cols;
    pr.NC = pr.NC < 256 ? pr.NC : 256;
    int64_t tiles = (pr.M + CONV_DW_PATCH_ROWS - 1) / CONV_DW_PATCH_ROWS, per_tile = (pr.M + tiles - 1) / tiles;
    pr.MC = (per_tile + pr.rows - 1) / pr.rows * pr.rows;
  } else {
    pr.MC = packed_rows_block(&pr);
  }
  pr.KC = 128;
  if (c->by_position && chunks > 1)
    fatal("internal error in kernel %s: chunks of a weight gradient with rows by position", kb->k->name);
  pr.KG = c->by_position ? c->x.n : pr.K / chunks;   // a position per group, or a chunk's images
  if (c->by_position)
    pr.live = taps_used;
  return packed_product(kb, &pr);
}
