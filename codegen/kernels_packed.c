// kernels_packed.c: the CPU's matrix products, in the loops of the best CPU libraries (BLIS,
// OpenBLAS). A parallel iteration computes an MC x NC tile of C, its sums in a buffer of its
// own (in L2); the reduction runs in blocks of KC steps, and for each block B's KC x NC block
// is packed into rows of NC floats (plus 16, so that consecutive steps fall in different
// cache sets) and register tiles of rows x cols (kir_tile) run over it: B's column panels
// outer, so that a KC x cols panel stays in L1 while A's rows stream past it. A is read in
// place when its layout allows (a convolution's weights), else packed into panels of `rows`
// interleaved rows. The caller says what A and B are and how C is stored (Product, lower.h):
// convolutions gather B from an image as they pack it and never store a patch matrix. A task
// may compute the same columns of several column sets, one after the other, and store them
// together (an input gradient's column phases, which interleave in dx's rows).
//
// Every element of C is summed in the same order whatever the tiling: its reduction blocks
// in order, each step in order, so results depend neither on the tile sizes nor on the
// thread count.
#include "lower.h"

void packed_tile(const KernelTarget *t, int *rows, int *cols) {
  // AVX-512: 24 accumulators of 16 floats out of 32 registers, 6 broadcasts and 4 loads a
  // step (build/bench/tile_peak: 182 GFLOPS alone on the Intel development machine, where 8 x
  // 32, 16 accumulators, made 167; resnet18's products 5-6% faster, VGG's 8%); AVX2: 12 of 8
  // out of 16.
  *rows = 6;
  *cols = t->lanes >= 16 ? 64 : 16;
}

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// 256 rows where that leaves the threads tasks enough (8: column tiles x splits x row
// blocks), else 128. B's blocks, gathered from an image, are then packed once per 256 rows of
// C instead of per 128: 13% less time on resnet's 256-channel layers; on the 512-channel
// ones, whose few columns alone made 4 to 7 tasks, 10% (VGG-11-BN's 4x4) to 18% (resnet18's
// layer4 forward passes; its stride-2 one 30%) on the Intel Xeon.
int64_t packed_rows_block(const Product *pr) {
  int64_t most = ceil_div(pr->N, pr->NC) * pr->splits * ceil_div(pr->M, 256) >= 8 ? 256 : 128;
  return ceil_div(pr->M < most ? pr->M : most, pr->rows) * pr->rows;
}

// A's block [i0, i0 + MC) x [p0, p0 + kc) into panels of `rows` rows: ap[(panel*KC + p)*rows + i].
static void pack_a(KernelBuilder *kb, const Product *pr, KStmt *into, int ap, int64_t panels, KExpr *m0, KExpr *p0,
                   KExpr *kc) {
  Kernel *k = kb->k;
  int q, p, i;
  KStmt *each = kernel_loop(kb, into, "panel", panels, &q);
  KStmt *steps = kernel_range(kb, each, "p", kir_int(k, 0), kc, &p);
  KStmt *rows = kernel_loop(kb, steps, "i", pr->rows, &i);
  KExpr *m = kir_add(k, m0, kir_add(k, kir_mul(k, kir_ref(k, q), kir_int(k, pr->rows)), kir_ref(k, i)));
  KExpr *inside = kir_lt(k, m, kir_int(k, pr->M));
  KExpr *at = kir_select(k, inside, pr->a_index(kb, pr, m, kir_add(k, p0, kir_ref(k, p))), kir_int(k, 0));
  KExpr *dst = kir_add(k, kir_mul(k, kir_add(k, kir_mul(k, kir_ref(k, q), kir_int(k, pr->KC)), kir_ref(k, p)),
                                  kir_int(k, pr->rows)), kir_ref(k, i));
  kir_store(k, rows, ap, dst, kir_select(k, inside, kir_load(k, pr->a_buf, at), kir_float(k, 0)));
}

// The pitch of A's rows packed by the caller: 16 floats past KC, so that the tile's rows fall
// in different cache sets and stay 64-byte aligned.
static int64_t a_rows_pitch(const Product *pr) { return pr->KC + 16; }

// One register tile of `rows` rows at row i0 of the task (an expression) and column panel jr.
static void tile_at(KernelBuilder *kb, const Product *pr, KStmt *into, int rows, int c, KExpr *c0, int64_t ldc, int ap,
                    int bp, int64_t ldb, KExpr *m0, KExpr *ir, KExpr *jr, KExpr *p0, KExpr *kc) {
  Kernel *k = kb->k;
  KExpr *i0 = kir_mul(k, ir, kir_int(k, pr->rows));
  KExpr *at = kir_add(k, kir_mul(k, i0, kir_int(k, ldc)), kir_mul(k, jr, kir_int(k, pr->cols)));
  KTile t = {.rows = rows, .cols = pr->cols, .c = c, .b = bp, .ldc = ldc, .ldb = ldb, .depth = kc,
             .c_index = c0 ? kir_add(k, c0, at) : at,
             .b_index = kir_mul(k, jr, kir_int(k, pr->cols))};
  if (pr->a_direct) {
    t.a = pr->a_buf;
    t.a_index = pr->a_index(kb, pr, kir_add(k, m0, i0), p0);
    t.a_step = pr->a_step;
    t.a_row = pr->a_row;
  } else if (pr->pack_a_rows) {
    t.a = ap;
    t.a_index = kir_mul(k, i0, kir_int(k, a_rows_pitch(pr)));
    t.a_step = 1;
    t.a_row = a_rows_pitch(pr);
  } else {
    t.a = ap;
    t.a_index = kir_mul(k, ir, kir_int(k, pr->KC * pr->rows));
    t.a_step = pr->rows;
    t.a_row = 1;
  }
  kir_tile(k, into, &t);
}

// The register tiles of one block, into the part of C at c0 (NULL: 0): B's column panels outer, A's row
// panels inner, only those that hold the tile's columns (`cols`, from n0) and rows below M,
// and where the product says which columns a block reaches (pr->live), only the column
// panels it reaches (a 2x2 image's columns by position: each reaches 4 of a 3x3 kernel's 9
// taps). A read in place has no rows past M to read, so its last panel, where M is no
// multiple of `rows`, is a tile of the rows left (a packed A has zeros there instead).
static void tiles(KernelBuilder *kb, const Product *pr, KStmt *into, int c, KExpr *c0, int64_t ldc, int ap, int bp,
                  int64_t ldb, KExpr *m0, KExpr *n0, KExpr *width, KExpr *p0, KExpr *kc) {
  Kernel *k = kb->k;
  int64_t left = pr->a_direct ? pr->M % pr->rows : 0;
  KExpr *ncols = kir_div(k, kir_add(k, width, kir_int(k, pr->cols - 1)), pr->cols);
  KExpr *rows_below_m = left ? kir_div(k, kir_sub(k, kir_int(k, pr->M), m0), pr->rows)
                             : kir_div(k, kir_add(k, kir_sub(k, kir_int(k, pr->M), m0), kir_int(k, pr->rows - 1)), pr->rows);
  KExpr *nrows = kernel_let(kb, into, "nrows", kir_binary(k, KB_MIN, kir_int(k, ceil_div(pr->MC, pr->rows)), rows_below_m));
  int jr, ir;
  KStmt *cols = kernel_range(kb, into, "jr", kir_int(k, 0), ncols, &jr);
  if (pr->live) {
    KExpr *first = kir_mul(k, kir_ref(k, jr), kir_int(k, pr->cols));
    KExpr *panel = kir_binary(k, KB_MIN, kir_int(k, pr->cols), kir_sub(k, width, first));
    cols = kir_if(k, cols, pr->live(kb, pr, cols, p0, kc, kir_add(k, n0, first), panel), NULL);
  }
  KStmt *rows = kernel_range(kb, cols, "ir", kir_int(k, 0), nrows, &ir);
  tile_at(kb, pr, rows, pr->rows, c, c0, ldc, ap, bp, ldb, m0, kir_ref(k, ir), kir_ref(k, jr), p0, kc);
  if (left) {   // the task that holds row M - left
    KStmt *last = kir_if(k, cols, kir_lt(k, kir_sub(k, kir_int(k, pr->M), m0), kir_int(k, pr->MC)), NULL);
    tile_at(kb, pr, last, (int)left, c, c0, ldc, ap, bp, ldb, m0, nrows, kir_ref(k, jr), p0, kc);
  }
}

// The reduction blocks of one task for the columns [n0, n0 + cols) of one set (n0: r*N + the
// task's for set r), into the part of C at c0.
static void blocks(KernelBuilder *kb, const Product *pr, KStmt *into, int c, KExpr *c0, int ap, int bp, KExpr *split,
                   KExpr *m0, KExpr *n0, KExpr *cols) {
  Kernel *k = kb->k;
  int64_t KG = pr->KG ? pr->KG : pr->K, per_split = pr->K / KG / pr->splits, group_blocks = ceil_div(KG, pr->KC);
  int64_t ldc = pr->NC + 16, ldb = pr->NC + 16;
  int b;
  // Block b of the split: group split*per_split + b / group_blocks, its (b % group_blocks)-th KC steps.
  KStmt *each = kernel_loop(kb, into, "blk", per_split * group_blocks, &b);
  KExpr *g = kir_add(k, kir_mul(k, split, kir_int(k, per_split)), kir_div(k, kir_ref(k, b), group_blocks));
  KExpr *within = kir_mul(k, kir_mod(k, kir_ref(k, b), group_blocks), kir_int(k, pr->KC));
  KExpr *p0 = kernel_let(kb, each, "p0", kir_add(k, kir_mul(k, g, kir_int(k, KG)), within));
  KExpr *kc = kernel_let(kb, each, "kc", kir_binary(k, KB_MIN, kir_int(k, pr->KC), kir_sub(k, kir_int(k, KG), within)));
  KStmt *block = each;
  if (pr->live)
    block = kir_if(k, block, pr->live(kb, pr, block, p0, kc, n0, cols), NULL);
  pr->pack_b(kb, pr, block, bp, ldb, p0, kc, n0, cols);
  if (pr->pack_a_rows)
    pr->pack_a_rows(kb, pr, block, ap, a_rows_pitch(pr), m0, p0, kc);
  else if (!pr->a_direct)
    pack_a(kb, pr, block, ap, ceil_div(pr->MC, pr->rows), m0, p0, kc);
  tiles(kb, pr, block, c, c0, ldc, ap, bp, ldb, m0, n0, cols, p0, kc);
}

Kernel *packed_product(KernelBuilder *kb, const Product *pr) {
  Kernel *k = kb->k;
  int64_t KG = pr->KG ? pr->KG : pr->K, groups = pr->K / KG, per_split = groups / pr->splits;
  int64_t sets = pr->sets > 1 ? pr->sets : 1;
  int64_t mtiles = ceil_div(pr->M, pr->MC), ntiles = ceil_div(pr->N, pr->NC), panels = ceil_div(pr->MC, pr->rows);
  int64_t ldc = pr->NC + 16, ldb = pr->NC + 16;
  if (groups * KG != pr->K || per_split * pr->splits != groups)
    fatal("internal error in kernel %s: a product's groups do not divide its reduction", k->name);
  if (panels * pr->rows != pr->MC)
    fatal("internal error in kernel %s: a product's row block is no whole number of register tiles", k->name);
  int c = kir_local(k, "this tile of C", KT_F32, sets * pr->MC * ldc);
  int ap = pr->a_direct      ? -1
           : pr->pack_a_rows ? kir_local(k, "A's block, by rows", KT_F32, pr->MC * a_rows_pitch(pr))
                             : kir_local(k, "A's block, in panels", KT_F32, pr->MC * pr->KC);
  int bp = kir_local(k, "B's block", KT_F32, pr->KC * ldb);
  int t, e;
  KStmt *tasks = kernel_loop(kb, k->body, "t", pr->splits * ntiles * mtiles, &t);
  KExpr *split = kernel_let(kb, tasks, "split", kir_div(k, kir_ref(k, t), ntiles * mtiles));
  KExpr *tile = kir_mod(k, kir_ref(k, t), ntiles * mtiles);
  KExpr *n0 = kernel_let(kb, tasks, "n0", kir_mul(k, kir_div(k, tile, mtiles), kir_int(k, pr->NC)));
  KExpr *m0 = kernel_let(kb, tasks, "m0", kir_mul(k, kir_mod(k, tile, mtiles), kir_int(k, pr->MC)));
  KExpr *cols = kernel_let(kb, tasks, "cols", kir_binary(k, KB_MIN, kir_int(k, pr->NC), kir_sub(k, kir_int(k, pr->N), n0)));
  KStmt *zero = kernel_loop(kb, tasks, "e", sets * pr->MC * ldc, &e);
  kir_store(k, zero, c, kir_ref(k, e), kir_float(k, 0));
  if (sets == 1) {
    blocks(kb, pr, tasks, c, NULL, ap, bp, split, m0, n0, cols);
  } else {
    int r;
    KStmt *each = kernel_loop(kb, tasks, "set", sets, &r);
    KExpr *set_n0 = kernel_let(kb, each, "set_n0", kir_add(k, kir_mul(k, kir_ref(k, r), kir_int(k, pr->N)), n0));
    KExpr *c0 = kir_mul(k, kir_ref(k, r), kir_int(k, pr->MC * ldc));
    blocks(kb, pr, each, c, c0, ap, bp, split, m0, set_n0, cols);
  }
  pr->store(kb, pr, tasks, c, ldc, m0, n0, cols, split);
  return k;
}
