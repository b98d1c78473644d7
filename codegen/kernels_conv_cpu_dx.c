// kernels_conv_cpu_dx.c: a convolution's input gradient on the CPU (groups == 1), as a packed
// product (kernels_packed.c) that gathers dy as it packs it:
//   dx[n, ci, ih, iw] = sum over taps (kh, kw) and co of w[co, ci, kh, kw] dy[n, co, oh, ow]
// where ih = oh*s - pad + kh*d (and the same along w). C[ci, column] has a column per input
// position; the reduction runs over (tap, co), a tap per group of steps. A is the weights,
// transposed once a step by conv2d_weight_t (compiler/schedule.c), read in place.
//
// With stride s, an input row ih receives from the taps with ih + pad - kh*d a multiple of s
// only. The columns are therefore ordered by phase (iw mod s, ih mod s), then image, then
// position within the phase (ih div s, iw div s): within a phase, a tap either reaches every
// position, as a plain shifted copy of a row of dy, or none, and the tiles of a phase skip
// the taps that do not reach it. A stride-2 convolution's gradient does no multiplication by
// the zeros of a dilated dy. A task computes the same columns of the s column phases (iw mod
// s) one after the other, each tap reaching one of them (Product.sets), so that it holds
// whole rows of dx and stores them in order, the s phases interleaved (store_rows): stored
// phase by phase, every other float a scalar store, the store took 30% of the kernel's time
// (resnet18's layer2.0.conv1). A 1x1 convolution without padding reaches only the first phase:
// its columns are dy's positions (dy's planes copied as they are, at any stride), and the
// store spreads them into every s-th pixel and writes the rest of dx through the epilogue
// alone (store_spread). On small images (rows by position, conv_cpu.h) the columns are
// ordered by phase, position, then image, and the taps that reach no position of a tile are
// skipped.
#include "conv_cpu.h"

typedef struct Dx {
  ConvCpu g;
  int64_t Hq, Wq;       // positions per phase along h and w (ceil(H / s)): some past the image at odd sizes
  int dy;               // buffer
} Dx;

static const Dx *dx_of(const Product *pr) { return pr->ctx; }

// A[ci, (tap, co)] = w[co, ci, tap], which conv2d_weight_t stored as wt[ci, tap, co]
// (compiler/schedule.c): A's rows K apart and its steps side by side.
static KExpr *weight_index(KernelBuilder *kb, const Product *pr, KExpr *ci, KExpr *p) {
  Kernel *k = kb->k;
  return kir_add(k, kir_mul(k, ci, kir_int(k, pr->K)), p);
}

// The input gradient's conv2d_weight_t input.
static int weight_t_input(const KernelBuilder *kb) {
  const Node *n = kb->node;
  for (int i = 0; i < n->nin; i++)
    if (n->in[i]->op == OP_CONV2D_WEIGHT_T)
      return kernel_input(kb, n->in[i]);
  fatal("internal error in kernel %s: the input gradient has no transposed weights", kb->k->name);
}

// Where input coordinate i (of phase r) reads dy along one axis under kernel offset kk:
// output coordinate q + *shift for i = q*s + r, when (r + pad - kk*d) is a multiple of s.
static KExpr *reaches(Kernel *k, const ConvCpu *c, KExpr *r, KExpr *kk, KExpr **shift) {
  KExpr *t = kir_sub(k, kir_add(k, r, kir_int(k, c->pad)), kir_mul(k, kk, kir_int(k, c->dil)));
  *shift = conv_floor_div(k, t, c->stride);
  return kir_binary(k, KB_EQ, kir_mul(k, *shift, kir_int(k, c->stride)), t);
}

// dy[n, co, oh, :] for co = co0 + p, p < kc, into rows p of the block at column run
// [jlo, jhi) of output row oh, whose column j reads ow = j - base + shift.
static void gather_rows(KernelBuilder *kb, const Dx *d, KStmt *into, int bp, int64_t ldb, KExpr *n, KExpr *oh,
                        KExpr *co0, KExpr *kc, KExpr *shift, KExpr *base, KExpr *jlo, KExpr *jhi) {
  Kernel *k = kb->k;
  const ConvCpu *c = &d->g;
  int p;
  KStmt *rows = kernel_range(kb, into, "p", kir_int(k, 0), kc, &p);
  KExpr *co = kir_add(k, co0, kir_ref(k, p));
  KExpr *plane = kir_mul(k, kir_add(k, kir_mul(k, n, kir_int(k, c->y.c)), co), kir_int(k, c->P));
  ConvRun run = {.src = d->dy, .row_start = kir_add(k, plane, kir_mul(k, oh, kir_int(k, c->y.w))), .offset = shift,
                 .src_step = 1, .width = c->y.w};
  conv_gather_run(kb, rows, bp, kir_mul(k, kir_ref(k, p), kir_int(k, ldb)), 1, &run, base, jlo, jhi);
}

static void zero_rows(KernelBuilder *kb, KStmt *into, int bp, int64_t ldb, KExpr *kc, KExpr *lo, KExpr *hi) {
  Kernel *k = kb->k;
  int p;
  KStmt *rows = kernel_range(kb, into, "p", kir_int(k, 0), kc, &p);
  conv_zeros(kb, rows, bp, kir_mul(k, kir_ref(k, p), kir_int(k, ldb)), 1, lo, hi);
}

// A 1x1 convolution without stride or padding: dy's planes as they are.
static void gather_planes(KernelBuilder *kb, const Dx *d, KStmt *into, int bp, int64_t ldb, KExpr *co0, KExpr *kc,
                          KExpr *n0, KExpr *cols) {
  Kernel *k = kb->k;
  const ConvCpu *c = &d->g;
  KExpr *n, *jlo, *jhi;
  KStmt *img = conv_runs(kb, into, n0, cols, c->P, &n, &jlo, &jhi);
  int p;
  KStmt *rows = kernel_range(kb, img, "p", kir_int(k, 0), kc, &p);
  // dy[n, co0 + p, n0 + j - n*P]
  KExpr *plane = kir_mul(k, kir_add(k, kir_mul(k, n, kir_int(k, c->y.c)), kir_add(k, co0, kir_ref(k, p))), kir_int(k, c->P));
  KExpr *from = kir_add(k, plane, kir_sub(k, n0, kir_mul(k, n, kir_int(k, c->P))));
  conv_copy(kb, rows, bp, kir_mul(k, kir_ref(k, p), kir_int(k, ldb)), 1, d->dy, from, 1, jlo, jhi);
}

// Rows p < kc of the block, dy's planes (n, co0 + p) shifted by (dh, dw) for the columns
// [jlo, jhi) of a run whose position 0 is column base.
static void shifted_planes(KernelBuilder *kb, const Dx *d, KStmt *into, int bp, int64_t ldb, KExpr *n, KExpr *co0,
                           KExpr *kc, KExpr *dh, KExpr *dw, KExpr *base, KExpr *jlo, KExpr *jhi) {
  Kernel *k = kb->k;
  const ConvCpu *c = &d->g;
  int p;
  KStmt *rows = kernel_range(kb, into, "p", kir_int(k, 0), kc, &p);
  KExpr *plane = kir_mul(k, kir_add(k, kir_mul(k, n, kir_int(k, c->y.c)), kir_add(k, co0, kir_ref(k, p))), kir_int(k, c->P));
  ConvShift sh = {.src = d->dy, .plane = plane, .dh = dh, .dw = dw, .h = c->y.h, .w = c->y.w, .size = shape_elems(c->y)};
  conv_gather_plane(kb, rows, bp, kir_mul(k, kir_ref(k, p), kir_int(k, ldb)), 1, &sh, base, jlo, jhi);
}

// Stride 1, the image's size kept: dx at (ih, iw) reads dy at (ih + pad - kh*d, iw + pad - kw*d),
// a run per image, its planes shifted.
static void gather_shifted(KernelBuilder *kb, const Dx *d, KStmt *into, int bp, int64_t ldb, KExpr *kh, KExpr *kw,
                           KExpr *co0, KExpr *kc, KExpr *n0, KExpr *cols) {
  Kernel *k = kb->k;
  const ConvCpu *c = &d->g;
  KExpr *n, *jlo, *jhi;
  KStmt *img = conv_runs(kb, into, n0, cols, c->P, &n, &jlo, &jhi);
  KExpr *dh = kernel_let(kb, img, "dh", kir_sub(k, kir_int(k, c->pad), kir_mul(k, kh, kir_int(k, c->dil))));
  KExpr *dw = kernel_let(kb, img, "dw", kir_sub(k, kir_int(k, c->pad), kir_mul(k, kw, kir_int(k, c->dil))));
  KExpr *base = kernel_let(kb, img, "base", kir_sub(k, kir_mul(k, n, kir_int(k, c->P)), n0));
  shifted_planes(kb, d, img, bp, ldb, n, co0, kc, dh, dw, base, jlo, jhi);
}

// The row and column phase of phase index p (ordered (iw mod s, ih mod s)).
static void phase_of(Kernel *k, const ConvCpu *c, KExpr *p, KExpr **rh, KExpr **rw) {
  *rh = kir_mod(k, p, c->stride);
  *rw = kir_div(k, p, c->stride);
}

// Columns by phase: runs of one row of a phase, (phase, n, qh), each a shifted row of dy or zeros.
static void gather_by_phase(KernelBuilder *kb, const Dx *d, KStmt *into, int bp, int64_t ldb, KExpr *kh, KExpr *kw,
                            KExpr *co0, KExpr *kc, KExpr *n0, KExpr *cols) {
  Kernel *k = kb->k;
  const ConvCpu *c = &d->g;
  KExpr *g, *jlo, *jhi, *sh, *sw;
  KStmt *row = conv_runs(kb, into, n0, cols, d->Wq, &g, &jlo, &jhi);
  KExpr *qh = kir_mod(k, g, d->Hq), *n = kir_mod(k, kir_div(k, g, d->Hq), c->x.n), *rh, *rw;
  phase_of(k, c, kir_div(k, g, d->Hq * c->x.n), &rh, &rw);
  KExpr *ok = kir_and(k, reaches(k, c, rh, kh, &sh), reaches(k, c, rw, kw, &sw));
  KExpr *oh = kernel_let(kb, row, "oh", kir_add(k, qh, sh));
  ok = kir_and(k, ok, conv_in_range(k, oh, c->y.h));
  KStmt *outside;
  KStmt *inside = kir_if(k, row, ok, &outside);
  zero_rows(kb, outside, bp, ldb, kc, jlo, jhi);
  KExpr *base = kir_sub(k, kir_mul(k, g, kir_int(k, d->Wq)), n0);
  gather_rows(kb, d, inside, bp, ldb, n, oh, co0, kc, kernel_let(kb, inside, "shift", sw), base, jlo, jhi);
}

// Columns by phase where a phase's plane is dy's (the image s times dy's size, as a 3 x 3
// stride-2 layer with padding 1 on even sizes) and small: a run per (phase, image), each
// its dy planes shifted whole (conv_gather_plane) or zeros, no bounds worked out per row of
// 2 to 8 columns.
static bool phase_planes(const Dx *d) {
  const ConvCpu *c = &d->g;
  return d->Hq == c->y.h && d->Wq == c->y.w && c->P <= CONV_WHOLE_PLANE;
}

static void gather_phase_planes(KernelBuilder *kb, const Dx *d, KStmt *into, int bp, int64_t ldb, KExpr *kh,
                                KExpr *kw, KExpr *co0, KExpr *kc, KExpr *n0, KExpr *cols) {
  Kernel *k = kb->k;
  const ConvCpu *c = &d->g;
  KExpr *g, *jlo, *jhi, *sh, *sw, *rh, *rw;
  KStmt *img = conv_runs(kb, into, n0, cols, c->P, &g, &jlo, &jhi);   // g = (phase, n)
  phase_of(k, c, kir_div(k, g, c->x.n), &rh, &rw);
  KStmt *outside;
  KStmt *inside = kir_if(k, img, kir_and(k, reaches(k, c, rh, kh, &sh), reaches(k, c, rw, kw, &sw)), &outside);
  zero_rows(kb, outside, bp, ldb, kc, jlo, jhi);
  KExpr *dh = kernel_let(kb, inside, "dh", sh), *dw = kernel_let(kb, inside, "dw", sw);
  KExpr *base = kernel_let(kb, inside, "base", kir_sub(k, kir_mul(k, g, kir_int(k, c->P)), n0));
  shifted_planes(kb, d, inside, bp, ldb, kir_mod(k, g, c->x.n), co0, kc, dh, dw, base, jlo, jhi);
}

// Columns by position: position q of the order (phase, ih div s, iw div s) is input position
// (ih, iw), inside the image or past it (odd sizes).
static KExpr *position_of(Kernel *k, const Dx *d, KExpr *q, KExpr **ih, KExpr **iw) {
  const ConvCpu *c = &d->g;
  KExpr *phase = kir_div(k, q, d->Hq * d->Wq), *within = kir_mod(k, q, d->Hq * d->Wq);
  *ih = kir_add(k, kir_mul(k, kir_div(k, within, d->Wq), kir_int(k, c->stride)), kir_div(k, phase, c->stride));
  *iw = kir_add(k, kir_mul(k, kir_mod(k, within, d->Wq), kir_int(k, c->stride)), kir_mod(k, phase, c->stride));
  return kir_and(k, kir_lt(k, *ih, kir_int(k, c->x.h)), kir_lt(k, *iw, kir_int(k, c->x.w)));
}

// The output position input position q reads under a tap, and whether the tap reaches it.
static KExpr *tap_reaches(Kernel *k, const Dx *d, KExpr *q, KExpr *kh, KExpr *kw, KExpr **oh, KExpr **ow) {
  const ConvCpu *c = &d->g;
  KExpr *ih, *iw, *real = position_of(k, d, q, &ih, &iw);
  KExpr *ok = kir_and(k, real, kir_and(k, reaches(k, c, ih, kh, oh), reaches(k, c, iw, kw, ow)));
  return kir_and(k, ok, kir_and(k, conv_in_range(k, *oh, c->y.h), conv_in_range(k, *ow, c->y.w)));
}

// Columns by position: runs of one input position across the images.
static void gather_by_position(KernelBuilder *kb, const Dx *d, KStmt *into, int bp, int64_t ldb, KExpr *kh,
                               KExpr *kw, KExpr *co0, KExpr *kc, KExpr *n0, KExpr *cols) {
  Kernel *k = kb->k;
  const ConvCpu *c = &d->g;
  KExpr *pos, *jlo, *jhi, *oh, *ow;
  KStmt *run = conv_runs(kb, into, n0, cols, c->x.n, &pos, &jlo, &jhi);
  KStmt *outside;
  KStmt *inside = kir_if(k, run, tap_reaches(k, d, pos, kh, kw, &oh, &ow), &outside);
  zero_rows(kb, outside, bp, ldb, kc, jlo, jhi);
  int p;
  KStmt *rows = kernel_range(kb, inside, "p", kir_int(k, 0), kc, &p);
  // dy[n0 + j - pos*N, co0 + p, oh, ow]
  KExpr *img0 = kir_sub(k, n0, kir_mul(k, pos, kir_int(k, c->x.n)));
  KExpr *plane = kir_add(k, kir_mul(k, img0, kir_int(k, c->y.c)), kir_add(k, co0, kir_ref(k, p)));
  KExpr *from = kir_add(k, kir_mul(k, plane, kir_int(k, c->P)), kir_add(k, kir_mul(k, oh, kir_int(k, c->y.w)), ow));
  conv_copy(kb, rows, bp, kir_mul(k, kir_ref(k, p), kir_int(k, ldb)), 1, d->dy, from, c->y.c * c->P, jlo, jhi);
}

static void pack_dy(KernelBuilder *kb, const Product *pr, KStmt *into, int bp, int64_t ldb, KExpr *p0, KExpr *kc,
                    KExpr *n0, KExpr *cols) {
  Kernel *k = kb->k;
  const Dx *d = dx_of(pr);
  const ConvCpu *c = &d->g;
  KExpr *tap = kernel_let(kb, into, "tap", kir_div(k, p0, c->y.c)), *co0 = kir_mod(k, p0, c->y.c);
  KExpr *kh = kir_div(k, tap, c->k), *kw = kir_mod(k, tap, c->k);
  if (c->k == 1 && c->pad == 0)
    gather_planes(kb, d, into, bp, ldb, co0, kc, n0, cols);
  else if (conv_same(c) && !c->by_position)
    gather_shifted(kb, d, into, bp, ldb, kh, kw, co0, kc, n0, cols);
  else if (c->by_position)
    gather_by_position(kb, d, into, bp, ldb, kh, kw, co0, kc, n0, cols);
  else
    (phase_planes(d) ? gather_phase_planes : gather_by_phase)(kb, d, into, bp, ldb, kh, kw, co0, kc, n0, cols);
  zero_rows(kb, into, bp, ldb, kc, cols, kir_int(k, pr->NC));
}

// Whether the block's tap reaches any column of the tile: a run per phase (or position).
static KExpr *tap_used(KernelBuilder *kb, const Product *pr, KStmt *into, KExpr *p0, KExpr *kc, KExpr *n0,
                       KExpr *cols) {
  (void)kc;
  Kernel *k = kb->k;
  const Dx *d = dx_of(pr);
  const ConvCpu *c = &d->g;
  int used = kir_var(k, "used", KT_I64);
  kir_assign(k, into, used, kir_int(k, 0));
  KExpr *tap = kir_div(k, p0, c->y.c), *kh = kir_div(k, tap, c->k), *kw = kir_mod(k, tap, c->k);
  KExpr *g, *jlo, *jhi, *a, *b, *ok;
  KStmt *run = conv_runs(kb, into, n0, cols, c->by_position ? c->x.n : c->x.n * d->Hq * d->Wq, &g, &jlo, &jhi);
  if (c->by_position) {
    ok = tap_reaches(k, d, g, kh, kw, &a, &b);
  } else {
    KExpr *rh, *rw;
    phase_of(k, c, g, &rh, &rw);
    ok = kir_and(k, reaches(k, c, rh, kh, &a), reaches(k, c, rw, kw, &b));
  }
  kir_assign(k, run, used, conv_max(k, kir_ref(k, used), kir_cast(k, KT_I64, ok)));
  return kir_lt(k, kir_int(k, 0), kir_ref(k, used));
}

// Columns by position: dx[n, ci, ih, iw] = the epilogue (a gradient added to it) of
// C[ci, column]; the positions past the image (odd sizes) are not stored.
static void store_by_position(KernelBuilder *kb, const Product *pr, KStmt *into, int c, int64_t ldc, KExpr *m0,
                              KExpr *n0, KExpr *cols, KExpr *split) {
  (void)split;
  Kernel *k = kb->k;
  const Dx *d = dx_of(pr);
  Shape x = d->g.x;
  int i, j;
  KStmt *chans = kernel_range(kb, into, "i", kir_int(k, 0), conv_min(k, kir_int(k, pr->MC), kir_sub(k, kir_int(k, pr->M), m0)), &i);
  KExpr *ci = kernel_let(kb, chans, "ci", kir_add(k, m0, kir_ref(k, i)));
  KExpr *q, *jlo, *jhi, *ih, *iw;
  KStmt *run = conv_runs(kb, chans, n0, cols, x.n, &q, &jlo, &jhi);
  KStmt *real = kir_if(k, run, position_of(k, d, q, &ih, &iw), NULL);
  KExpr *pos = kernel_let(kb, real, "pos", kir_add(k, kir_mul(k, ih, kir_int(k, x.w)), iw));
  KStmt *each = kernel_range(kb, real, "j", jlo, jhi, &j);
  KExpr *n = kir_sub(k, kir_add(k, n0, kir_ref(k, j)), kir_mul(k, q, kir_int(k, x.n)));
  KExpr *at = kir_add(k, kir_mul(k, kir_add(k, kir_mul(k, n, kir_int(k, x.c)), ci), kir_int(k, x.h * x.w)), pos);
  at = kernel_let(kb, each, "at", at);
  KExpr *v = kir_load(k, c, kir_add(k, kir_mul(k, kir_ref(k, i), kir_int(k, ldc)), kir_ref(k, j)));
  kir_store(k, each, kb->out, at, kernel_epilogue(kb, v, at));
}

// dx[at + rw] = the epilogue of column j of column phase rw's C, row i, for rw < count.
static void store_phases(KernelBuilder *kb, const Product *pr, KStmt *into, int c, int64_t ldc, KExpr *i, KExpr *j,
                         KExpr *at, int64_t count) {
  Kernel *k = kb->k;
  for (int64_t rw = 0; rw < count; rw++) {
    KExpr *row = kir_add(k, kir_int(k, rw * pr->MC), i);
    KExpr *v = kir_load(k, c, kir_add(k, kir_mul(k, row, kir_int(k, ldc)), j));
    KExpr *to = rw ? kir_add(k, at, kir_int(k, rw)) : at;
    kir_store(k, into, kb->out, to, kernel_epilogue(kb, v, to));
  }
}

// Columns by phase, the s column phases of a task's columns side by side (sets): column j
// of the run (rh, n, qh) is, in column phase rw's part of c, dx[n, ci, qh*s + rh, qw*s + rw]
// for qw = j - base. Each row of dx is stored whole and in order, s values a step (LLVM
// interleaves them into whole vectors); the rows and columns past the image (odd sizes)
// are not stored.
static void store_rows(KernelBuilder *kb, const Product *pr, KStmt *into, int c, int64_t ldc, KExpr *m0, KExpr *n0,
                       KExpr *cols, KExpr *split) {
  (void)split;
  Kernel *k = kb->k;
  const Dx *d = dx_of(pr);
  Shape x = d->g.x;
  int64_t s = d->g.stride, whole = x.w / s;   // the qw whose s columns are all inside
  int i, j;
  KStmt *chans = kernel_range(kb, into, "i", kir_int(k, 0), conv_min(k, kir_int(k, pr->MC), kir_sub(k, kir_int(k, pr->M), m0)), &i);
  KExpr *ci = kernel_let(kb, chans, "ci", kir_add(k, m0, kir_ref(k, i)));
  KExpr *r, *jlo, *jhi;
  KStmt *row = conv_runs(kb, chans, n0, cols, d->Wq, &r, &jlo, &jhi);   // r = (rh, n, qh)
  KExpr *qh = kir_mod(k, r, d->Hq), *n = kir_mod(k, kir_div(k, r, d->Hq), x.n), *rh = kir_div(k, r, d->Hq * x.n);
  KExpr *ih = kernel_let(kb, row, "ih", kir_add(k, kir_mul(k, qh, kir_int(k, s)), rh));
  KStmt *real = kir_if(k, row, kir_lt(k, ih, kir_int(k, x.h)), NULL);
  KExpr *base = kernel_let(kb, real, "base", kir_sub(k, kir_mul(k, r, kir_int(k, d->Wq)), n0));
  KExpr *plane = kir_add(k, kir_mul(k, n, kir_int(k, x.c)), ci);
  KExpr *line = kernel_let(kb, real, "line", kir_mul(k, kir_add(k, kir_mul(k, plane, kir_int(k, x.h)), ih), kir_int(k, x.w)));
  KExpr *last = kernel_let(kb, real, "last", kir_add(k, base, kir_int(k, whole)));
  KStmt *each = kernel_range(kb, real, "j", jlo, conv_min(k, jhi, last), &j);
  KExpr *at = kernel_let(kb, each, "at", kir_add(k, line, kir_mul(k, kir_sub(k, kir_ref(k, j), base), kir_int(k, s))));
  store_phases(kb, pr, each, c, ldc, kir_ref(k, i), kir_ref(k, j), at, s);
  if (x.w % s == 0)
    return;
  // the last qw of an odd row: its first W mod s columns
  KExpr *in_run = kir_and(k, kir_binary(k, KB_LE, jlo, last), kir_lt(k, last, jhi));
  KStmt *tail = kir_if(k, real, in_run, NULL);
  KExpr *tail_at = kir_add(k, line, kir_int(k, whole * s));
  store_phases(kb, pr, tail, c, ldc, kir_ref(k, i), last, tail_at, x.w % s);
}

// A 1x1 convolution of stride s > 1 without padding: C's columns are dy's positions, column
// (n, oh, ow) the input position (oh*s, ow*s); the other positions of its s x s block receive
// nothing. A run of an output row writes its blocks' input rows whole and in order (zeros
// through the epilogue), then C's values into every s-th column of the first: each cache line
// of dx is written by one task at one time, and no product is computed for the zeros.
static void store_spread(KernelBuilder *kb, const Product *pr, KStmt *into, int c, int64_t ldc, KExpr *m0, KExpr *n0,
                         KExpr *cols, KExpr *split) {
  (void)split;
  Kernel *k = kb->k;
  const ConvCpu *g = &dx_of(pr)->g;
  Shape x = g->x;
  int64_t s = g->stride;
  int i, a, iw, j;
  KStmt *chans = kernel_range(kb, into, "i", kir_int(k, 0), conv_min(k, kir_int(k, pr->MC), kir_sub(k, kir_int(k, pr->M), m0)), &i);
  KExpr *ci = kernel_let(kb, chans, "ci", kir_add(k, m0, kir_ref(k, i)));
  KExpr *r, *jlo, *jhi;
  KStmt *row = conv_runs(kb, chans, n0, cols, g->y.w, &r, &jlo, &jhi);   // r = (n, oh)
  KExpr *n = kir_div(k, r, g->y.h), *oh = kir_mod(k, r, g->y.h);
  KExpr *base = kernel_let(kb, row, "base", kir_sub(k, kir_mul(k, r, kir_int(k, g->y.w)), n0));   // column j is ow = j - base
  KExpr *ih0 = kernel_let(kb, row, "ih0", kir_mul(k, oh, kir_int(k, s)));
  KExpr *plane = kernel_let(kb, row, "plane", kir_mul(k, kir_add(k, kir_mul(k, n, kir_int(k, x.c)), ci), kir_int(k, x.h)));
  KExpr *w0 = kir_mul(k, kir_sub(k, jlo, base), kir_int(k, s));
  KExpr *w1 = conv_min(k, kir_mul(k, kir_sub(k, jhi, base), kir_int(k, s)), kir_int(k, x.w));
  KStmt *rows = kernel_range(kb, row, "a", kir_int(k, 0), conv_min(k, kir_int(k, s), kir_sub(k, kir_int(k, x.h), ih0)), &a);
  KExpr *line = kernel_let(kb, rows, "line", kir_mul(k, kir_add(k, plane, kir_add(k, ih0, kir_ref(k, a))), kir_int(k, x.w)));
  KStmt *zeros = kernel_range(kb, rows, "iw", w0, w1, &iw);
  KExpr *zat = kir_add(k, line, kir_ref(k, iw));
  kir_store(k, zeros, kb->out, zat, kernel_epilogue(kb, kir_float(k, 0), zat));
  KStmt *each = kernel_range(kb, row, "j", jlo, jhi, &j);
  KExpr *at = kernel_let(kb, each, "at", kir_add(k, kir_mul(k, kir_add(k, plane, ih0), kir_int(k, x.w)),
                                                 kir_mul(k, kir_sub(k, kir_ref(k, j), base), kir_int(k, s))));
  KExpr *v = kir_load(k, c, kir_add(k, kir_mul(k, kir_ref(k, i), kir_int(k, ldc)), kir_ref(k, j)));
  kir_store(k, each, kb->out, at, kernel_epilogue(kb, v, at));
}

Kernel *kernel_conv_cpu_dx(KernelBuilder *kb) {
  const Node *n = kb->node;   // conv2d_dx(dy, w), shaped like x
  Dx d = {.g = conv_cpu_of(&n->attr.conv, n->shape, n->in[0]->shape), .dy = kb->in[0]};
  const ConvCpu *c = &d.g;
  d.Hq = (c->x.h + c->stride - 1) / c->stride;
  d.Wq = (c->x.w + c->stride - 1) / c->stride;
  bool pointwise = c->k == 1 && c->pad == 0;   // columns: dy's positions
  bool by_phase = !pointwise && !c->by_position;
  int64_t columns = pointwise ? c->y.n * c->P : c->stride * c->stride * c->x.n * d.Hq * d.Wq;   // by phase, some past the image
  int64_t sets = by_phase ? c->stride : 1;   // the column phases, side by side in a task
  Product pr = {.M = c->x.c, .N = columns / sets, .K = c->T * c->y.c, .KG = c->y.c, .splits = 1, .sets = sets,
                .NC = 256, .a_buf = weight_t_input(kb), .a_index = weight_index, .pack_b = pack_dy, .ctx = &d};
  pr.store = pointwise && c->stride > 1 ? store_spread : c->by_position ? store_by_position : store_rows;
  packed_tile(kb->target, &pr.rows, &pr.cols);
  pr.MC = packed_rows_block(&pr);
  pr.KC = c->y.c < 128 ? c->y.c : 128;
  // wt read in place, a step of a register tile one line of it, whatever the rows left over
  // or the column phases (packing it per task for a stride-2 gradient's two phases took 3%
  // longer on resnet18's layer2-4.0.conv1).
  pr.a_direct = true;
  pr.a_step = 1;
  pr.a_row = pr.K;
  if (!pointwise && (c->by_position || c->stride > 1))
    pr.live = tap_used;
  return packed_product(kb, &pr);
}

// wt[r, co] = w[co, r] for r = (ci, kh, kw): the input gradient's weights as its CPU product
// reads them. On the CPU a task makes `lanes` rows of wt: squares of lanes x lanes
// transposed in registers where both sides are multiples of lanes (resnet18's 512 x 4608:
// 1.5-1.9 ms against 2.0-2.6 a float at a time on the Intel Xeon, now as fast as memory),
// else reading w `lanes` floats at a time; on the GPU a thread makes an element.
Kernel *kernel_conv2d_weight_t(KernelBuilder *kb) {
  Kernel *k = kb->k;
  Shape w = kb->node->in[0]->shape;
  int64_t CO = w.n, R = w.c * w.h * w.w, ROWS = kb->target->lanes;
  int e, rb, co, j;
  if (kb->target->gpu) {
    KStmt *all = kernel_loop(kb, k->body, "e", R * CO, &e);
    KExpr *r = kir_div(k, kir_ref(k, e), CO);
    kir_store(k, all, kb->out, kir_ref(k, e), kir_load(k, kb->in[0], kir_add(k, kir_mul(k, kir_mod(k, kir_ref(k, e), CO), kir_int(k, R)), r)));
    return k;
  }
  if (R % ROWS == 0 && CO % ROWS == 0) {
    KStmt *blocks = kernel_loop(kb, k->body, "rb", R / ROWS, &rb);
    KStmt *cols = kernel_loop(kb, blocks, "cb", CO / ROWS, &co);
    KExpr *r0 = kir_mul(k, kir_ref(k, rb), kir_int(k, ROWS)), *co0 = kir_mul(k, kir_ref(k, co), kir_int(k, ROWS));
    kir_transpose(k, cols, kb->out, kir_add(k, kir_mul(k, r0, kir_int(k, CO)), co0), CO, kb->in[0],
                  kir_add(k, kir_mul(k, co0, kir_int(k, R)), r0), R, (int)ROWS);
    return k;
  }
  KStmt *blocks = kernel_loop(kb, k->body, "rb", (R + ROWS - 1) / ROWS, &rb);
  KExpr *r0 = kernel_let(kb, blocks, "r0", kir_mul(k, kir_ref(k, rb), kir_int(k, ROWS)));
  KStmt *cols = kernel_loop(kb, blocks, "co", CO, &co);
  KStmt *rows = kernel_range(kb, cols, "j", kir_int(k, 0), conv_min(k, kir_int(k, ROWS), kir_sub(k, kir_int(k, R), r0)), &j);
  KExpr *r = kir_add(k, r0, kir_ref(k, j));
  KExpr *from = kir_add(k, kir_mul(k, kir_ref(k, co), kir_int(k, R)), r);
  kir_store(k, rows, kb->out, kir_add(k, kir_mul(k, r, kir_int(k, CO)), kir_ref(k, co)), kir_load(k, kb->in[0], from));
  return k;
}
