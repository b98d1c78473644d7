// kernels_tiles.c: matrix products on tensor cores, the GPU's form of convolutions (groups
// == 1) and linear layers, forward and backward: C[m, n] = sum over k of A(m, k) B(n, k).
//   forward          C the output [rows, channels]; A the image's patches (read straight from
//                    the image: an implicit product) or the linear layer's input rows; B the
//                    weights [N][K].
//   input gradient   C = dx [input positions, input channels]; A(m, (co, tap)) = dy at the
//                    output position that input position m feeds under the tap, 0 where it
//                    feeds none (the stride, the edges); B(ci, (co, tap)) = w[co, ci, tap].
//                    For a linear layer A = dy and B = w transposed.
//   weight gradient  C = dw [CO, CI * taps]; A(co, r) = dy[image, co, position] and B((ci,
//                    tap), r) = the patch element of output row r, k running over the rows
//                    (images and positions) of one chunk: a block's chunk is part of its
//                    index and each chunk's sums are stored apart, for sum_chunks to add in
//                    order (compiler/schedule.c), so no atomics. A linear layer's A = dy
//                    transposed and B = x transposed, one chunk.
//
// A block of 128 threads (four warps, 2 x 2) computes a bm x bn tile of C (64 x 64 unless
// tile_table.def says otherwise: kernels_tile_shape.c); each warp a quarter as tensor-core
// tiles of 16 x 8 (mma.m16n8k16: bf16 operands, float accumulation). For each 32-wide step of
// k the block stages A's and B's pieces in shared memory as bf16 (converted from float weights,
// as they are from bf16 activations; zero outside the matrix, in the convolution's padding and
// where an input position feeds no output); the warps load their fragments with ldmatrix. An
// operand whose four elements along k are consecutive and aligned (a forward pass's weights and
// linear rows, the weight gradient's dy) comes by asynchronous copies (16 bytes of float, 8 of
// bf16) into two stages: the next step's copies are in flight while this step is gathered,
// converted and multiplied. The forward epilogue is the
// CPU kernel's: bias, a folded batchnorm, the residual, the activation, and the statistics of
// each 64-row chunk for the batchnorm after it; the input gradient's adds the gradient it is
// summed with (a fused residual).
#include "lower.h"

enum {
  BK = 32,                      // the block's step along k
  STATS_BM = 64,                // the rows of a statistics chunk (compiler/fusion.c): a block's with statistics
  THREADS = 128,
  PAD = 8,                      // a staged row is BK + PAD elements: 80 bytes, 16-byte aligned for ldmatrix
  LD = BK + PAD,
  MAX_MI = 4, MAX_NI = 8,       // a warp's tile: up to 4 x 8 tensor-core tiles of 16 x 8
  STAGES = 2,                   // the copies in flight: the next step's while this one multiplies
};

typedef enum { FORWARD, INPUT_GRAD, WEIGHT_GRAD } TileProduct;

// The input gradient of a convolution with stride s > 1 as s * s products, one per phase:
// the input positions whose row is fed by the kernel rows kh = rh, rh + s, ... (those with
// (ih + pad) mod s = rh), and so for the columns. Without phases, 1 - 1/s^2 of A(m, (co,
// tap)) is 0 (no output position is fed under the tap) and dy is read at every other
// column; within a phase every tap feeds, and consecutive rows read consecutive dy.
// A phase's row m is the position (img, i, j) at ih = s i + eh, iw = s j + ew (the phase's
// first row and column), fed by output row oh = i + ch - uh under its tap uh, and so for
// the columns; a phase whose rows exist only past the image's edge, or whose taps do not
// (rh >= kernel: a 1x1 convolution at stride 2), stores zeros.
typedef struct Phases {
  int64_t count;                // s * s, or 0: the product is not split
  int64_t per_side;             // taps of a phase along a side at most: ceil(kernel / s)
  int64_t rows, cols;           // a phase's positions along a side at most: ceil(H / s), ceil(W / s)
  KExpr *rh, *rw, *eh, *ew, *ch, *cw;   // the block's phase (named in the kernel)
} Phases;

typedef struct Tiles {
  KernelBuilder *kb;
  TileProduct product;
  bool conv;                    // a convolution, else a linear layer
  int a_buf, b_buf;             // the node's inputs 0 and 1: x or dy, then w or x
  int64_t M, N, K;
  Shape x, y;                   // a convolution's image and output
  int64_t taps;                 // a convolution's kernel * kernel
  Phases ph;                    // a strided convolution's input gradient by phase (phases 0: not)
  KExpr *k_first;               // the weight gradient's first row of the sum (its chunk's)
  KExpr *c_first;               // where the block's chunk of C starts
  bool a_by_row, b_by_row;      // a piece staged row-fastest (consecutive threads, consecutive m or n)
  int as, bs;                   // the staged pieces of A and B (shared, bf16)
  int a_copy, b_copy;           // a copied piece's STAGES stages, as its operand stores it (shared), or -1
  KExpr *m0, *n0;               // the block's first row and column of C
  KExpr *lane, *warp_m, *warp_n;
  int64_t bm, bn;               // the block's tile of C (kernel_tile_shape)
  int mi, ni;                   // a warp's tile of C (a quarter): mi x ni tensor-core tiles of 16 x 8
  int acc[MAX_MI][MAX_NI];      // each lane's 4 floats of each 16 x 8 tile
} Tiles;

static KExpr *num(Kernel *k, int64_t v) { return kir_int(k, v); }

// A variable holding v, so that the printed kernel reads as what it computes.
static KExpr *named(Kernel *k, const char *name, KExpr *v) {
  int var = kir_var(k, name, KT_I64);
  kir_assign(k, k->body, var, v);
  return kir_ref(k, var);
}

// Element kk of output row r's patch, 0 in the padding; r and kk may be out of range only
// where valid is false, where both are taken as 0 and the value is 0.
static KExpr *patch(Tiles *t, KStmt *into, int buf, KExpr *r, KExpr *kk, KExpr *valid) {
  Kernel *k = t->kb->k;
  KExpr *safe_r = kernel_let(t->kb, into, "pr", kir_select(k, valid, r, num(k, 0)));
  KExpr *safe_k = kernel_let(t->kb, into, "pk", kir_select(k, valid, kk, num(k, 0)));
  return kir_select(k, valid, kernel_patch_value(t->kb, buf, t->x, t->y, safe_r, safe_k), kir_float(k, 0));
}

static KExpr *at_least_0(Kernel *k, KExpr *v) { return kir_binary(k, KB_LE, num(k, 0), v); }

// dy[img, co, oh, ow] for input position m = (img, ih, iw) and kk = (co, kh, kw), where
// ih = oh * s - pad + kh * d (and so for the columns), or 0 where no output position is fed.
static KExpr *dy_feeding(Tiles *t, KStmt *into, KExpr *m, KExpr *kk, KExpr *valid) {
  Kernel *k = t->kb->k;
  const ConvAttrs *c = &t->kb->node->attr.conv;
  KExpr *img = kir_div(k, m, t->x.h * t->x.w), *q = kir_mod(k, m, t->x.h * t->x.w);
  KExpr *co = kir_div(k, kk, t->taps), *tap = kir_mod(k, kk, t->taps);
  KExpr *th = kernel_let(t->kb, into, "th", kir_sub(k, kir_add(k, kir_div(k, q, t->x.w), num(k, c->pad)), kir_mul(k, kir_div(k, tap, c->kernel), num(k, c->dilation))));
  KExpr *tw = kernel_let(t->kb, into, "tw", kir_sub(k, kir_add(k, kir_mod(k, q, t->x.w), num(k, c->pad)), kir_mul(k, kir_mod(k, tap, c->kernel), num(k, c->dilation))));
  KExpr *oh = kir_div(k, th, c->stride), *ow = kir_div(k, tw, c->stride);
  KExpr *fed = kir_and(k, kir_and(k, valid, at_least_0(k, th)), at_least_0(k, tw));
  if (c->stride > 1)
    fed = kir_and(k, fed, kir_and(k, kir_binary(k, KB_EQ, kir_mod(k, th, c->stride), num(k, 0)),
                                  kir_binary(k, KB_EQ, kir_mod(k, tw, c->stride), num(k, 0))));
  fed = kir_and(k, fed, kir_and(k, kir_lt(k, oh, num(k, t->y.h)), kir_lt(k, ow, num(k, t->y.w))));
  KExpr *plane = kir_add(k, kir_mul(k, img, num(k, t->y.c)), co);
  return kernel_load_if(k, t->a_buf, fed, kir_add(k, kir_mul(k, kir_add(k, kir_mul(k, plane, num(k, t->y.h)), oh), num(k, t->y.w)), ow));
}

// Where phase row m lies: its image, and its row i and column j within the phase.
static void phase_position(Tiles *t, KStmt *into, KExpr *m, KExpr **img, KExpr **i, KExpr **j) {
  Kernel *k = t->kb->k;
  int64_t per_image = t->ph.rows * t->ph.cols;
  *img = kir_div(k, m, per_image);
  KExpr *q = kernel_let(t->kb, into, "q", kir_mod(k, m, per_image));
  *i = kir_div(k, q, t->ph.cols), *j = kir_mod(k, q, t->ph.cols);
}

static KExpr *phase_row_exists(Tiles *t, KExpr *i, KExpr *j) {
  Kernel *k = t->kb->k;
  int64_t s = t->kb->node->attr.conv.stride;
  return kir_and(k, kir_lt(k, kir_add(k, kir_mul(k, i, num(k, s)), t->ph.eh), num(k, t->x.h)),
                 kir_lt(k, kir_add(k, kir_mul(k, j, num(k, s)), t->ph.ew), num(k, t->x.w)));
}

// kk = (co, uh, uw) of a phase: the channel and the kernel row and column rh + s uh, rw + s uw,
// and whether that tap is in the kernel.
static KExpr *phase_tap(Tiles *t, KStmt *into, KExpr *kk, KExpr **co, KExpr **uh, KExpr **uw, KExpr **kh, KExpr **kw) {
  Kernel *k = t->kb->k;
  const ConvAttrs *c = &t->kb->node->attr.conv;
  int64_t side = t->ph.per_side;
  *co = kir_div(k, kk, side * side);
  KExpr *u = kernel_let(t->kb, into, "u", kir_mod(k, kk, side * side));
  *uh = kir_div(k, u, side), *uw = kir_mod(k, u, side);
  *kh = kir_add(k, t->ph.rh, kir_mul(k, *uh, num(k, c->stride)));
  *kw = kir_add(k, t->ph.rw, kir_mul(k, *uw, num(k, c->stride)));
  return kir_and(k, kir_lt(k, *kh, num(k, c->kernel)), kir_lt(k, *kw, num(k, c->kernel)));
}

// dy[img, co, i + ch - uh, j + cw - uw] for phase row m and kk = (co, uh, uw), 0 where the tap
// is outside the kernel or the output position outside dy.
static KExpr *dy_feeding_phase(Tiles *t, KStmt *into, KExpr *m, KExpr *kk, KExpr *valid) {
  Kernel *k = t->kb->k;
  KExpr *img, *i, *j, *co, *uh, *uw, *kh, *kw;
  phase_position(t, into, m, &img, &i, &j);
  KExpr *in_kernel = phase_tap(t, into, kk, &co, &uh, &uw, &kh, &kw);
  KExpr *oh = kernel_let(t->kb, into, "oh", kir_sub(k, kir_add(k, i, t->ph.ch), uh));
  KExpr *ow = kernel_let(t->kb, into, "ow", kir_sub(k, kir_add(k, j, t->ph.cw), uw));
  KExpr *fed = kir_and(k, kir_and(k, valid, in_kernel), phase_row_exists(t, i, j));
  fed = kir_and(k, fed, kir_and(k, kir_and(k, at_least_0(k, oh), at_least_0(k, ow)),
                                kir_and(k, kir_lt(k, oh, num(k, t->y.h)), kir_lt(k, ow, num(k, t->y.w)))));
  KExpr *plane = kir_add(k, kir_mul(k, img, num(k, t->y.c)), co);
  return kernel_load_if(k, t->a_buf, fed, kir_add(k, kir_mul(k, kir_add(k, kir_mul(k, plane, num(k, t->y.h)), oh), num(k, t->y.w)), ow));
}

// w[co, ci = n, rh + s uh, rw + s uw] for kk = (co, uh, uw), 0 where the tap is outside the kernel.
static KExpr *weight_phase(Tiles *t, KStmt *into, KExpr *n, KExpr *kk, KExpr *valid) {
  Kernel *k = t->kb->k;
  int64_t kernel = t->kb->node->attr.conv.kernel;
  KExpr *co, *uh, *uw, *kh, *kw;
  KExpr *in_kernel = phase_tap(t, into, kk, &co, &uh, &uw, &kh, &kw);
  KExpr *tap = kir_add(k, kir_mul(k, kh, num(k, kernel)), kw);
  KExpr *at = kir_add(k, kir_mul(k, kir_add(k, kir_mul(k, co, num(k, t->N)), n), num(k, t->taps)), tap);
  return kernel_load_if(k, t->b_buf, kir_and(k, valid, in_kernel), at);
}

// A(m, k) for m < M and k < K where valid (0 elsewhere), as the product says.
static KExpr *a_value(Tiles *t, KStmt *into, KExpr *m, KExpr *kk, KExpr *valid) {
  Kernel *k = t->kb->k;
  switch (t->product) {
  case FORWARD:
    if (t->conv)
      return patch(t, into, t->a_buf, m, kk, valid);
    return kernel_load_if(k, t->a_buf, valid, kir_add(k, kir_mul(k, m, num(k, t->K)), kk));
  case INPUT_GRAD:
    if (t->ph.count)
      return dy_feeding_phase(t, into, m, kk, valid);
    if (t->conv)
      return dy_feeding(t, into, m, kk, valid);
    return kernel_load_if(k, t->a_buf, valid, kir_add(k, kir_mul(k, m, num(k, t->K)), kk));
  case WEIGHT_GRAD:
    if (t->conv) {
      int64_t P = t->y.h * t->y.w;
      KExpr *r = kir_add(k, t->k_first, kk);
      KExpr *plane = kir_add(k, kir_mul(k, kir_div(k, r, P), num(k, t->y.c)), m);
      return kernel_load_if(k, t->a_buf, valid, kir_add(k, kir_mul(k, plane, num(k, P)), kir_mod(k, r, P)));
    }
    return kernel_load_if(k, t->a_buf, valid, kir_add(k, kir_mul(k, kk, num(k, t->M)), m));
  }
  return NULL;
}

// B(n, k) for n < N and k < K where valid (0 elsewhere).
static KExpr *b_value(Tiles *t, KStmt *into, KExpr *n, KExpr *kk, KExpr *valid) {
  Kernel *k = t->kb->k;
  if (t->product == FORWARD)
    return kernel_load_if(k, t->b_buf, valid, kir_add(k, kir_mul(k, n, num(k, t->K)), kk));
  if (!t->conv)   // w[k, n] or x[k, n]
    return kernel_load_if(k, t->b_buf, valid, kir_add(k, kir_mul(k, kk, num(k, t->N)), n));
  if (t->product == WEIGHT_GRAD)
    return patch(t, into, t->b_buf, kir_add(k, t->k_first, kk), n, valid);
  if (t->ph.count)
    return weight_phase(t, into, n, kk, valid);
  KExpr *co = kir_div(k, kk, t->taps), *tap = kir_mod(k, kk, t->taps);   // w[co, ci = n, tap]
  return kernel_load_if(k, t->b_buf, valid, kir_add(k, kir_mul(k, kir_add(k, kir_mul(k, co, num(k, t->N)), n), num(k, t->taps)), tap));
}

// One operand's piece of step k0 (rows of A or of B by BK), a thread's share of it at a time:
// row-fastest when consecutive rows are consecutive in memory (pixels of an image), else
// k-fastest.
static void stage_piece(Tiles *t, KStmt *into, KExpr *k0, bool is_a) {
  Kernel *k = t->kb->k;
  int64_t rows = is_a ? t->bm : t->bn, extent = is_a ? t->M : t->N;
  bool by_row = is_a ? t->a_by_row : t->b_by_row;
  int i;
  KStmt *loop = kernel_loop(t->kb, into, is_a ? "i" : "j", rows * BK / THREADS, &i);
  KExpr *e = kir_add(k, kir_mul(k, kir_ref(k, i), num(k, THREADS)), kir_thread(k));
  KExpr *row = kernel_let(t->kb, loop, "row", by_row ? kir_mod(k, e, rows) : kir_div(k, e, BK));
  KExpr *col = kernel_let(t->kb, loop, "col", by_row ? kir_div(k, e, rows) : kir_mod(k, e, BK));
  KExpr *r = kernel_let(t->kb, loop, is_a ? "m" : "n", kir_add(k, is_a ? t->m0 : t->n0, row));
  KExpr *kk = kernel_let(t->kb, loop, "kk", kir_add(k, k0, col));
  KExpr *valid = kir_and(k, kir_lt(k, r, num(k, extent)), kir_lt(k, kk, num(k, t->K)));
  KExpr *v = is_a ? a_value(t, loop, r, kk, valid) : b_value(t, loop, r, kk, valid);
  kir_store(k, loop, is_a ? t->as : t->bs, kir_add(k, kir_mul(k, row, num(k, LD)), col), v);
}

// The bytes of an operand's element in memory: a bf16 activation's 2, a float's 4.
static int64_t element_bytes(const Tiles *t, bool is_a) {
  return t->kb->k->bufs[is_a ? t->a_buf : t->b_buf].type == KT_BF16 ? 2 : 4;
}

// Whether an operand's piece comes by asynchronous copies of four elements (16 bytes of
// float, 8 of bf16), the four elements at (row, k .. k + 3) being consecutive and aligned in memory: a forward pass's weights
// and linear input rows (K a multiple of 4), a convolution's dy by channel in its weight
// gradient (positions a multiple of 4).
static bool copied(const Tiles *t, bool is_a) {
  switch (t->product) {
  case FORWARD: return t->K % 4 == 0 && (!is_a || !t->conv);
  case WEIGHT_GRAD: return is_a && t->conv && t->y.h * t->y.w % 4 == 0;
  case INPUT_GRAD: return false;
  }
  return false;
}

// Where the copied element (row, kk) of an operand is: in a row of K (a forward pass), or
// in dy's plane of channel `row` (a weight gradient).
static KExpr *copied_index(Tiles *t, KExpr *row, KExpr *kk) {
  Kernel *k = t->kb->k;
  if (t->product == FORWARD)
    return kir_add(k, kir_mul(k, row, num(k, t->K)), kk);
  int64_t P = t->y.h * t->y.w;
  KExpr *r = kir_add(k, t->k_first, kk);
  KExpr *plane = kir_add(k, kir_mul(k, kir_div(k, r, P), num(k, t->y.c)), row);
  return kir_add(k, kir_mul(k, plane, num(k, P)), kir_mod(k, r, P));
}

// The operand's piece of step k0 into stage `stage` of its copy buffer, 16 bytes (four
// elements along k) a copy, k-fastest; the rows past the matrix and the row's end past K are
// zero-filled (a copy of 0 bytes reads nothing).
static void copy_piece(Tiles *t, KStmt *into, KExpr *k0, KExpr *stage, bool is_a) {
  Kernel *k = t->kb->k;
  int64_t rows = is_a ? t->bm : t->bn, extent = is_a ? t->M : t->N;
  int j;
  KStmt *loop = kernel_loop(t->kb, into, is_a ? "i" : "j", rows * BK / 4 / THREADS, &j);
  KExpr *e = kir_add(k, kir_mul(k, kir_ref(k, j), num(k, THREADS)), kir_thread(k));
  KExpr *row = kernel_let(t->kb, loop, "row", kir_div(k, e, BK / 4));
  KExpr *col = kernel_let(t->kb, loop, "col", kir_mul(k, kir_mod(k, e, BK / 4), num(k, 4)));
  KExpr *r = kir_add(k, is_a ? t->m0 : t->n0, row), *kk = kernel_let(t->kb, loop, "kk", kir_add(k, k0, col));
  int64_t size = element_bytes(t, is_a);
  KExpr *left = kir_mul(k, kir_sub(k, num(k, t->K), kk), num(k, size));
  KExpr *bytes = kir_binary(k, KB_MAX, kir_binary(k, KB_MIN, left, num(k, 4 * size)), num(k, 0));
  bytes = kernel_let(t->kb, loop, "bytes", kir_select(k, kir_lt(k, r, num(k, extent)), bytes, num(k, 0)));
  KExpr *from = kir_select(k, kir_lt(k, num(k, 0), bytes), copied_index(t, r, kk), num(k, 0));
  KExpr *to = kir_add(k, kir_mul(k, stage, num(k, rows * BK)), kir_add(k, kir_mul(k, row, num(k, BK)), col));
  kir_cp_async(k, loop, is_a ? t->a_copy : t->b_copy, to, is_a ? t->a_buf : t->b_buf, from, bytes);
}

// Stage `stage` of the operand's copied piece where ldmatrix reads it, in rows padded for it:
// converted to bf16 from a float piece, moved as it is from a bf16 one.
static void convert_piece(Tiles *t, KStmt *into, KExpr *stage, bool is_a) {
  Kernel *k = t->kb->k;
  int64_t rows = is_a ? t->bm : t->bn;
  int j;
  KStmt *loop = kernel_loop(t->kb, into, is_a ? "i" : "j", rows * BK / THREADS, &j);
  KExpr *e = kir_add(k, kir_mul(k, kir_ref(k, j), num(k, THREADS)), kir_thread(k));
  KExpr *row = kir_div(k, e, BK), *col = kir_mod(k, e, BK);
  KExpr *from = kir_add(k, kir_mul(k, stage, num(k, rows * BK)), e);
  kir_store(k, loop, is_a ? t->as : t->bs, kir_add(k, kir_mul(k, row, num(k, LD)), col), kir_load(k, is_a ? t->a_copy : t->b_copy, from));
}

// The copies of step k0 into stage `stage`, for the operands that are copied.
static void issue_copies(Tiles *t, KStmt *into, KExpr *k0, KExpr *stage) {
  if (t->a_copy >= 0)
    copy_piece(t, into, k0, stage, true);
  if (t->b_copy >= 0)
    copy_piece(t, into, k0, stage, false);
}

// One 16-deep step of the warp's tiles from the staged pieces. ldmatrix.x4 on A gives the four
// 8 x 8 tiles of a 16 x 16 fragment (rows 0-7 and 8-15, columns 0-7 and 8-15: lane l names row
// l % 8 of tile l / 8); ldmatrix.x2 on B, stored [n][k], gives the two k-halves of a 16 x 8
// fragment: B's column-major fragment is B^T's row-major one.
static void multiply_step(Tiles *t, KStmt *into, int64_t ks, int a[MAX_MI], int b[MAX_NI]) {
  Kernel *k = t->kb->k;
  KExpr *r8 = kir_mod(k, t->lane, 8), *tile = kir_div(k, t->lane, 8);
  for (int mi = 0; mi < t->mi; mi++) {
    KExpr *row = kir_add(k, kir_add(k, kir_mul(k, t->warp_m, num(k, t->mi * 16)), num(k, mi * 16)),
                         kir_add(k, r8, kir_mul(k, kir_mod(k, tile, 2), num(k, 8))));
    KExpr *col = kir_add(k, num(k, ks), kir_mul(k, kir_div(k, tile, 2), num(k, 8)));
    kir_ldmatrix(k, into, a[mi], 4, false, t->as, kir_add(k, kir_mul(k, row, num(k, LD)), col));
  }
  for (int ni = 0; ni < t->ni; ni++) {
    KExpr *row = kir_add(k, kir_add(k, kir_mul(k, t->warp_n, num(k, t->ni * 8)), num(k, ni * 8)), r8);
    KExpr *col = kir_add(k, num(k, ks), kir_mul(k, kir_mod(k, tile, 2), num(k, 8)));
    kir_ldmatrix(k, into, b[ni], 2, false, t->bs, kir_add(k, kir_mul(k, row, num(k, LD)), col));
  }
  for (int mi = 0; mi < t->mi; mi++)
    for (int ni = 0; ni < t->ni; ni++)
      kir_mma(k, into, t->acc[mi][ni], a[mi], b[ni], t->acc[mi][ni]);
}

// Without copies: each step's pieces gathered into shared memory, then multiplied.
static void gathered_loop(Tiles *t, KStmt *steps, KExpr *k0, int a[MAX_MI], int b[MAX_NI]) {
  Kernel *k = t->kb->k;
  stage_piece(t, steps, k0, true);
  stage_piece(t, steps, k0, false);
  kir_barrier(k, steps);
  for (int64_t ks = 0; ks < BK; ks += 16)
    multiply_step(t, steps, ks, a, b);
  kir_barrier(k, steps);   // before the next step overwrites the pieces
}

// With copies, in STAGES stages: step kt + 1's copies are issued before step kt is gathered
// and multiplied, so they are in flight while it is; its own copies (issued a step before,
// or before the loop for step 0) are waited for, then converted.
static void pipelined_loop(Tiles *t, KStmt *steps, KExpr *kt, int64_t nsteps, int a[MAX_MI], int b[MAX_NI]) {
  Kernel *k = t->kb->k;
  KExpr *next = kir_add(k, kt, num(k, 1));
  KStmt *more = kir_if(k, steps, kir_lt(k, next, num(k, nsteps)), NULL);
  issue_copies(t, more, kir_mul(k, next, num(k, BK)), kir_mod(k, next, STAGES));
  kir_cp_commit(k, steps);   // an empty group on the last step, so that the wait below counts alike
  KExpr *k0 = kir_mul(k, kt, num(k, BK)), *stage = kir_mod(k, kt, STAGES);
  if (t->a_copy < 0)
    stage_piece(t, steps, k0, true);
  if (t->b_copy < 0)
    stage_piece(t, steps, k0, false);
  kir_cp_wait(k, steps, STAGES - 1);   // all but the newest group: step kt's copies
  kir_barrier(k, steps);                // every thread's copies have landed
  if (t->a_copy >= 0)
    convert_piece(t, steps, stage, true);
  if (t->b_copy >= 0)
    convert_piece(t, steps, stage, false);
  kir_barrier(k, steps);
  for (int64_t ks = 0; ks < BK; ks += 16)
    multiply_step(t, steps, ks, a, b);
  kir_barrier(k, steps);   // before the next step overwrites the bf16 pieces
}

static void main_loop(Tiles *t, KStmt *into) {
  Kernel *k = t->kb->k;
  int a[MAX_MI], b[MAX_NI], kt;
  for (int mi = 0; mi < t->mi; mi++)
    a[mi] = kir_array(k, "frag_a", KT_U32, 4);
  for (int ni = 0; ni < t->ni; ni++)
    b[ni] = kir_array(k, "frag_b", KT_U32, 2);
  int64_t nsteps = (t->K + BK - 1) / BK;
  bool copies = t->a_copy >= 0 || t->b_copy >= 0;
  if (copies) {
    issue_copies(t, into, num(k, 0), num(k, 0));
    kir_cp_commit(k, into);
  }
  KStmt *steps = kernel_loop(t->kb, into, "kt", nsteps, &kt);
  if (copies)
    pipelined_loop(t, steps, kir_ref(k, kt), nsteps, a, b);
  else
    gathered_loop(t, steps, kir_mul(k, kir_ref(k, kt), num(k, BK)), a, b);
}

// Where element e of tile (mi, ni) of this lane lies in C: rows g and g + 8, columns 2 (l % 4)
// and + 1, with g = l / 4 (the C fragment of mma.m16n8k16).
static KExpr *row_of(Tiles *t, int mi, int e) {
  Kernel *k = t->kb->k;
  KExpr *in_warp = kir_add(k, num(k, mi * 16 + 8 * (e / 2)), kir_div(k, t->lane, 4));
  return kir_add(k, kir_add(k, t->m0, kir_mul(k, t->warp_m, num(k, t->mi * 16))), in_warp);
}

static KExpr *col_of(Tiles *t, int ni, int e) {
  Kernel *k = t->kb->k;
  KExpr *in_warp = kir_add(k, num(k, ni * 8 + e % 2), kir_mul(k, kir_mod(k, t->lane, 4), num(k, 2)));
  return kir_add(k, kir_add(k, t->n0, kir_mul(k, t->warp_n, num(k, t->ni * 8))), in_warp);
}

// Where C[m, n] is stored: a convolution's [N, C, H, W] output or input gradient, a weight
// gradient's chunk of [M][N], a linear layer's [M][N].
static KExpr *store_index(Tiles *t, KExpr *m, KExpr *n) {
  Kernel *k = t->kb->k;
  KExpr *flat = kir_add(k, kir_mul(k, m, num(k, t->N)), n);
  if (t->product == WEIGHT_GRAD)
    return kir_add(k, t->c_first, flat);
  if (!t->conv)
    return flat;
  if (t->ph.count) {   // dx[img, n, s i + eh, s j + ew]
    int64_t s = t->kb->node->attr.conv.stride, per_image = t->ph.rows * t->ph.cols;
    KExpr *q = kir_mod(k, m, per_image);
    KExpr *ih = kir_add(k, kir_mul(k, kir_div(k, q, t->ph.cols), num(k, s)), t->ph.eh);
    KExpr *iw = kir_add(k, kir_mul(k, kir_mod(k, q, t->ph.cols), num(k, s)), t->ph.ew);
    return kernel_index4(t->kb, t->x, kir_div(k, m, per_image), n, ih, iw);
  }
  Shape c = t->product == FORWARD ? t->y : t->x;
  int64_t P = c.h * c.w;
  return kir_add(k, kir_mul(k, kir_add(k, kir_mul(k, kir_div(k, m, P), num(k, t->N)), n), num(k, P)), kir_mod(k, m, P));
}

// C's value before it is stored: the forward pass's bias, folded batchnorm, residual and
// activation; the input gradient's fused sum with another gradient.
static KExpr *finished(Tiles *t, KExpr *acc, KExpr *n, KExpr *at) {
  switch (t->product) {
  case FORWARD: return kernel_epilogue(t->kb, kernel_matmul_finish(t->kb, acc, n), at);
  case INPUT_GRAD: return kernel_epilogue(t->kb, acc, at);
  case WEIGHT_GRAD: return acc;
  }
  return acc;
}

// The stored values, kept in the accumulators for the statistics.
static void epilogue(Tiles *t) {
  Kernel *k = t->kb->k;
  for (int mi = 0; mi < t->mi; mi++)
    for (int ni = 0; ni < t->ni; ni++)
      for (int e = 0; e < 4; e++) {
        KExpr *m = row_of(t, mi, e), *n = col_of(t, ni, e);
        KExpr *in_c = kir_and(k, kir_lt(k, m, num(k, t->M)), kir_lt(k, n, num(k, t->N)));
        if (t->ph.count) {   // and a position of the image, not past its edge
          KExpr *q = kir_mod(k, m, t->ph.rows * t->ph.cols);
          in_c = kir_and(k, in_c, phase_row_exists(t, kir_div(k, q, t->ph.cols), kir_mod(k, q, t->ph.cols)));
        }
        KStmt *inside = kir_if(k, k->body, in_c, NULL);
        KExpr *at = store_index(t, m, n);
        KExpr *acc = kir_elem(k, t->acc[mi][ni], e);
        KExpr *v = finished(t, acc, n, at);
        if (v != acc)
          kir_assign_elem(k, inside, t->acc[mi][ni], e, v);
        kir_store(k, inside, t->kb->out, at, kir_elem(k, t->acc[mi][ni], e));
      }
}

// Sums over the block's 64 rows, per column: each lane adds its rows of a column (tiles mi,
// rows g and g + 8), the lanes that share the column (l % 4) add theirs with shuffles, and
// the two warps that share it through shared memory, warp_m 0 first. term(mi, ni, e) is the
// lane's term for its element e of tile (mi, ni), 0 outside C; sums[ni][h] is the column
// 2 (l % 4) + h of tile ni.
typedef KExpr *ColumnTerm(Tiles *t, int mi, int ni, int e, KExpr *mean);

static void column_sums(Tiles *t, ColumnTerm *term, int means[MAX_NI], int sums[MAX_NI], int partial) {
  Kernel *k = t->kb->k;
  int other = kir_var(k, "other", KT_F32);
  for (int ni = 0; ni < t->ni; ni++) {
    for (int h = 0; h < 2; h++) {
      KExpr *s = NULL;
      for (int mi = 0; mi < t->mi; mi++)
        for (int e = h; e < 4; e += 2) {
          KExpr *v = term(t, mi, ni, e, means ? kir_elem(k, means[ni], h) : NULL);
          s = s ? kir_binary(k, KB_ADD, s, v) : v;
        }
      kir_assign_elem(k, k->body, sums[ni], h, s);
    }
  }
  for (int ni = 0; ni < t->ni; ni++)
    for (int h = 0; h < 2; h++) {
      int v = kir_var(k, "column", KT_F32);
      kir_assign(k, k->body, v, kir_elem(k, sums[ni], h));
      for (int d = 4; d < KIR_WARP; d *= 2) {   // the lanes of one column: l % 4 fixed
        kir_shuffle(k, k->body, KSH_XOR, other, v, d);
        kir_assign(k, k->body, v, kir_binary(k, KB_ADD, kir_ref(k, v), kir_ref(k, other)));
      }
      KExpr *column = kir_sub(k, col_of(t, ni, h), t->n0);   // within the block's 64
      KStmt *first = kir_if(k, k->body, kir_lt(k, t->lane, num(k, 4)), NULL);
      kir_store(k, first, partial, kir_add(k, kir_mul(k, t->warp_m, num(k, t->bn)), column), kir_ref(k, v));
    }
  kir_barrier(k, k->body);
  for (int ni = 0; ni < t->ni; ni++)
    for (int h = 0; h < 2; h++) {
      KExpr *column = kir_sub(k, col_of(t, ni, h), t->n0);
      KExpr *total = kir_binary(k, KB_ADD, kir_load(k, partial, column), kir_load(k, partial, kir_add(k, column, num(k, t->bn))));
      kir_assign_elem(k, k->body, sums[ni], h, total);
    }
  kir_barrier(k, k->body);   // before the partials are written again
}

static KExpr *inside_c(Tiles *t, int mi, int ni, int e) {
  Kernel *k = t->kb->k;
  return kir_and(k, kir_lt(k, row_of(t, mi, e), num(k, t->M)), kir_lt(k, col_of(t, ni, e), num(k, t->N)));
}

static KExpr *value_term(Tiles *t, int mi, int ni, int e, KExpr *mean) {
  (void)mean;
  return kir_select(t->kb->k, inside_c(t, mi, ni, e), kir_elem(t->kb->k, t->acc[mi][ni], e), kir_float(t->kb->k, 0));
}

static KExpr *square_term(Tiles *t, int mi, int ni, int e, KExpr *mean) {
  Kernel *k = t->kb->k;
  KExpr *d = kir_binary(k, KB_SUB, kir_elem(k, t->acc[mi][ni], e), mean);
  return kir_select(k, inside_c(t, mi, ni, e), kir_binary(k, KB_MUL, d, d), kir_float(k, 0));
}

// The chunk's mean and squared deviations of each column, after the output, as the CPU's
// forward_with_stats stores them (kernels_gemm.c): chunk = the block's row tile.
static void chunk_stats(Tiles *t, KExpr *mt) {
  Kernel *k = t->kb->k;
  int partial = kir_shared(k, "the two row halves' column sums", KT_F32, 2 * t->bn);
  int means[MAX_NI], sq[MAX_NI];
  for (int ni = 0; ni < t->ni; ni++) {
    means[ni] = kir_array(k, "mean", KT_F32, 2);
    sq[ni] = kir_array(k, "sq", KT_F32, 2);
  }
  column_sums(t, value_term, NULL, means, partial);
  KExpr *rows = kir_cast(k, KT_F32, kir_binary(k, KB_MIN, num(k, t->bm), kir_sub(k, num(k, t->M), t->m0)));
  for (int ni = 0; ni < t->ni; ni++)
    for (int h = 0; h < 2; h++)
      kir_assign_elem(k, k->body, means[ni], h, kir_binary(k, KB_DIV, kir_elem(k, means[ni], h), rows));
  column_sums(t, square_term, means, sq, partial);
  KExpr *tail;
  int stats = kernel_stats_at(t->kb, t->kb->out, t->kb->node, &tail);
  KExpr *row0 = kir_add(k, tail, kir_mul(k, mt, num(k, 2 * t->N)));
  KStmt *writer = kir_if(k, k->body, kir_and(k, kir_binary(k, KB_EQ, t->warp_m, num(k, 0)), kir_lt(k, t->lane, num(k, 4))), NULL);
  for (int ni = 0; ni < t->ni; ni++)
    for (int h = 0; h < 2; h++) {
      KExpr *n = col_of(t, ni, h);
      KStmt *in = kir_if(k, writer, kir_lt(k, n, num(k, t->N)), NULL);
      kir_store(k, in, stats, kir_add(k, row0, n), kir_elem(k, means[ni], h));
      kir_store(k, in, stats, kir_add(k, kir_add(k, row0, num(k, t->N)), n), kir_elem(k, sq[ni], h));
    }
}

// The block's phase (rh, rw) and what follows from it: its first input row eh = (rh - pad)
// mod s, and ch = (eh + pad - rh) / s, exact, and so for the columns.
static void name_phase(Tiles *t, KExpr *phase) {
  Kernel *k = t->kb->k;
  const ConvAttrs *c = &t->kb->node->attr.conv;
  int64_t s = c->stride, back = s - c->pad % s;
  t->ph.rh = named(k, "rh", kir_div(k, phase, s));
  t->ph.rw = named(k, "rw", kir_mod(k, phase, s));
  t->ph.eh = named(k, "eh", kir_mod(k, kir_add(k, t->ph.rh, num(k, back)), s));
  t->ph.ew = named(k, "ew", kir_mod(k, kir_add(k, t->ph.rw, num(k, back)), s));
  t->ph.ch = named(k, "ch", kir_div(k, kir_sub(k, kir_add(k, t->ph.eh, num(k, c->pad)), t->ph.rh), s));
  t->ph.cw = named(k, "cw", kir_div(k, kir_sub(k, kir_add(k, t->ph.ew, num(k, c->pad)), t->ph.rw), s));
}

// Where the main loop goes: a phase without taps (a kernel narrower than the stride) skips it.
// The condition is on the block index itself, which the verifier knows every thread shares.
static KStmt *phase_with_taps(Tiles *t, KExpr *phase) {
  Kernel *k = t->kb->k;
  int64_t kernel = t->kb->node->attr.conv.kernel, s = t->kb->node->attr.conv.stride;
  if (kernel >= s)
    return k->body;
  KExpr *taps = kir_and(k, kir_lt(k, kir_div(k, phase, s), num(k, kernel)), kir_lt(k, kir_mod(k, phase, s), num(k, kernel)));
  return kir_if(k, k->body, taps, NULL);
}

// Whether the node's product runs on tiles here: a convolution's statistics come in chunks of
// one row tile (train.c), or all its rows when there are fewer: a chunk is the rows of one block.
bool kernel_tiled(const KernelBuilder *kb) {
  const Node *n = kb->node;
  if (!kb->target->tiles)
    return false;
  int64_t rows = n->shape.n * n->shape.h * n->shape.w;
  int64_t chunk = n->fused.stats_rows;
  if (chunk && chunk != (rows < STATS_BM ? rows : STATS_BM))
    fatal("internal error: %s has statistics chunks of %lld rows, not a tile's", n->name, (long long)chunk);
  return true;
}

// The product a node is, its sizes and operands; *chunks is the weight gradient's number of
// chunks (1 otherwise).
static Tiles describe(KernelBuilder *kb, int64_t *chunks) {
  const Node *n = kb->node;
  Tiles t = {.kb = kb, .a_buf = kb->in[0], .b_buf = kb->in[1], .conv = n->op != OP_LINEAR && n->op != OP_LINEAR_DX && n->op != OP_LINEAR_DW};
  *chunks = 1;
  switch (n->op) {
  case OP_CONV2D:
  case OP_LINEAR: t.product = FORWARD, t.x = n->in[0]->shape, t.y = n->shape; break;
  case OP_CONV2D_DX:
  case OP_LINEAR_DX: t.product = INPUT_GRAD, t.x = n->shape, t.y = n->in[0]->shape; break;
  default: t.product = WEIGHT_GRAD, t.x = n->in[1]->shape, t.y = n->in[0]->shape; break;
  }
  if (!t.conv) {   // x [batch, in], y [batch, out]
    int64_t rows = t.y.n, in = t.x.c, out = t.y.c;
    t.M = t.product == WEIGHT_GRAD ? out : rows;
    t.N = t.product == FORWARD ? out : in;
    t.K = t.product == FORWARD ? in : t.product == INPUT_GRAD ? out : rows;
    t.a_by_row = t.product == WEIGHT_GRAD, t.b_by_row = t.product != FORWARD;
    return t;
  }
  t.taps = n->attr.conv.kernel * n->attr.conv.kernel;
  t.a_by_row = t.product != WEIGHT_GRAD;
  switch (t.product) {
  case FORWARD: t.M = t.y.n * t.y.h * t.y.w, t.N = t.y.c, t.K = t.x.c * t.taps; break;
  case INPUT_GRAD:
    t.M = t.x.n * t.x.h * t.x.w, t.N = t.x.c, t.K = t.y.c * t.taps;
    if (n->attr.conv.stride > 1 && n->attr.conv.dilation == 1) {
      int64_t s = n->attr.conv.stride;
      t.ph = (Phases){.count = s * s, .per_side = (n->attr.conv.kernel + s - 1) / s,
                      .rows = (t.x.h + s - 1) / s, .cols = (t.x.w + s - 1) / s};
      t.M = t.x.n * t.ph.rows * t.ph.cols, t.K = t.y.c * t.ph.per_side * t.ph.per_side;
    }
    break;
  case WEIGHT_GRAD:
    *chunks = n->shape.rank == 2 ? n->shape.d[0] : 1;
    t.M = t.y.c, t.N = t.x.c * t.taps, t.K = t.y.n / *chunks * t.y.h * t.y.w;
    break;
  }
  return t;
}

// The static shared memory a block of shape s takes: the bf16 pieces and the copies' stages.
static int64_t shared_bytes(const Tiles *t, TileShape s) {
  int64_t pieces = (s.bm + s.bn) * LD * 2;
  int64_t copies = (copied(t, true) ? s.bm * element_bytes(t, true) : 0) + (copied(t, false) ? s.bn * element_bytes(t, false) : 0);
  return pieces + STAGES * copies * BK + (t->kb->node->fused.stats_rows ? 2 * s.bn * 4 : 0);
}

// The block tile from the table (kernel_tile_shape), or 64 x 64 where the product cannot take
// it: statistics come in chunks of 64 rows, and a block has 48 KiB of static shared memory.
static void choose_tile(Tiles *t) {
  const Node *n = t->kb->node;
  TileShape s = kernel_tile_shape(t->kb->target, op_info[n->op].name, t->M, t->N, t->K);
  if ((n->fused.stats_rows && s.bm != STATS_BM) || shared_bytes(t, s) > 48 * 1024)
    s = (TileShape){64, 64};
  t->bm = s.bm, t->bn = s.bn;
  t->mi = s.bm / 32, t->ni = s.bn / 16;   // a warp's quarter: (bm / 2) x (bn / 2)
}

Kernel *kernel_tiled_matmul(KernelBuilder *kb) {
  Kernel *k = kb->k;
  const Node *n = kb->node;
  int64_t chunks;
  Tiles t = describe(kb, &chunks);
  choose_tile(&t);
  int64_t mtiles = (t.M + t.bm - 1) / t.bm, ntiles = (t.N + t.bn - 1) / t.bn;
  int64_t parts = t.ph.count ? t.ph.count : chunks;   // a block's chunk or phase: its index / tiles
  kernel_blocks(kb, parts * mtiles * ntiles, THREADS);
  k->bf16 = true;
  t.as = kir_shared(k, "A's piece (bf16)", KT_BF16, t.bm * LD);
  t.bs = kir_shared(k, "B's piece (bf16)", KT_BF16, t.bn * LD);
  t.a_copy = copied(&t, true) ? kir_shared(k, "A's piece as copied, 2 stages", k->bufs[t.a_buf].type, STAGES * t.bm * BK) : -1;
  t.b_copy = copied(&t, false) ? kir_shared(k, "B's piece as copied, 2 stages", k->bufs[t.b_buf].type, STAGES * t.bn * BK) : -1;
  // what bench/tile_sweep.sh reads to time each product's tiles
  k->layout = arena_printf(k->arena, "tiles of %lld x %lld of the product %s M %lld N %lld K %lld%s%s%s", (long long)t.bm,
                           (long long)t.bn, op_info[n->op].name, (long long)t.M, (long long)t.N, (long long)t.K,
                           chunks > 1 ? arena_printf(k->arena, ", K per chunk of %lld", (long long)chunks) : "",
                           t.ph.count ? arena_printf(k->arena, ", M and K per phase of %lld", (long long)t.ph.count) : "",
                           t.a_copy >= 0 || t.b_copy >= 0 ? ", copies in 2 stages" : "");
  KExpr *tile = parts > 1 ? named(k, "tile", kir_mod(k, kir_block_index(k), mtiles * ntiles)) : kir_block_index(k);
  KExpr *phase = t.ph.count ? kir_div(k, kir_block_index(k), mtiles * ntiles) : NULL;
  if (phase)
    name_phase(&t, named(k, "phase", phase));
  if (t.product == WEIGHT_GRAD) {
    KExpr *chunk = named(k, "chunk", kir_div(k, kir_block_index(k), mtiles * ntiles));
    if (t.conv)   // a linear layer's has one chunk, from row 0
      t.k_first = named(k, "k_first", kir_mul(k, chunk, num(k, t.K)));
    t.c_first = named(k, "c_first", kir_mul(k, chunk, num(k, t.M * t.N)));
  }
  KExpr *mt = kir_div(k, tile, ntiles);
  t.m0 = named(k, "m0", kir_mul(k, mt, num(k, t.bm)));
  t.n0 = named(k, "n0", kir_mul(k, kir_mod(k, tile, ntiles), num(k, t.bn)));
  t.lane = named(k, "lane", kir_mod(k, kir_thread(k), KIR_WARP));
  KExpr *warp = kir_div(k, kir_thread(k), KIR_WARP);
  t.warp_m = named(k, "warp_m", kir_mod(k, warp, 2));
  t.warp_n = named(k, "warp_n", kir_div(k, warp, 2));
  for (int mi = 0; mi < t.mi; mi++)
    for (int ni = 0; ni < t.ni; ni++) {
      t.acc[mi][ni] = kir_array(k, "acc", KT_F32, 4);
      for (int e = 0; e < 4; e++)
        kir_assign_elem(k, k->body, t.acc[mi][ni], e, kir_float(k, 0));
    }
  main_loop(&t, phase ? phase_with_taps(&t, phase) : k->body);
  epilogue(&t);
  if (n->fused.stats_rows)
    chunk_stats(&t, mt);
  return k;
}
