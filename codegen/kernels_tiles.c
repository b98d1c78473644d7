// kernels_tiles.c: matrix products on tensor cores, the GPU's form of the convolution and
// linear forward passes: C[m, n] = sum over k of A(m, k) B(n, k), with A the patches of the
// image (read straight from the image: an implicit matrix product), or the rows of a linear
// layer's input, B the weights [N][K], C the output.
//
// A block of 128 threads (four warps, 2 x 2) computes a 64 x 64 tile of C; each warp a 32 x 32
// quarter as 2 x 4 tensor-core tiles of 16 x 8 (mma.m16n8k16: bf16 operands, float
// accumulation). For each 32-wide step of k the block stages A's and B's 64 x 32 pieces in
// shared memory as bf16 (converted from float, zero outside the matrix and in the
// convolution's padding); the warps load their fragments with ldmatrix. B's rows are
// contiguous weights: when they are 16-byte aligned, asynchronous copies bring B's piece
// while the threads gather A's, and it is converted after. The epilogue is the CPU kernel's:
// bias, a folded batchnorm, the residual, the activation, and the statistics of each 64-row
// chunk for the batchnorm after it.
#include "lower.h"

enum {
  BM = 64, BN = 64, BK = 32,    // the block's tile of C and its step along k
  THREADS = 128,
  PAD = 8,                      // a staged row is BK + PAD elements: 80 bytes, 16-byte aligned for ldmatrix
  LD = BK + PAD,
  MI = 2, NI = 4,               // a warp's 32 x 32: MI x NI tiles of 16 x 8
};

typedef enum { A_ROWS, A_IMAGE } ASource;

typedef struct Tiles {
  KernelBuilder *kb;
  ASource source;
  int a_buf, b_buf;
  int64_t M, N, K;
  Shape x, y;                   // A_IMAGE: the image and the convolution's output
  int as, bs;                   // the staged pieces of A and B (shared, bf16)
  int b_async;                  // B's piece as copied, in float (shared), or -1
  KExpr *m0, *n0;               // the block's first row and column of C
  KExpr *lane, *warp_m, *warp_n;
  int acc[MI][NI];              // each lane's 4 floats of each 16 x 8 tile
} Tiles;

static KExpr *num(Kernel *k, int64_t v) { return kir_int(k, v); }

// A variable holding v, so that the printed kernel reads as what it computes.
static KExpr *named(Kernel *k, const char *name, KExpr *v) {
  int var = kir_var(k, name, KT_I64);
  kir_assign(k, k->body, var, v);
  return kir_ref(k, var);
}

// A(m, k) for m < M and k < K, and whether it may be loaded.
static KExpr *a_value(Tiles *t, KExpr *m, KExpr *kk, KExpr **valid) {
  Kernel *k = t->kb->k;
  if (t->source == A_ROWS)
    return kir_load(k, t->a_buf, kir_add(k, kir_mul(k, m, num(k, t->K)), kk));
  // The patch element is 0 in the padding, without a load there; m and k may only be
  // out of range when valid is false, where the guard takes 0 instead.
  KExpr *clamped_m = kir_select(k, *valid, m, num(k, 0)), *clamped_k = kir_select(k, *valid, kk, num(k, 0));
  KExpr *v = kernel_patch_value(t->kb, t->a_buf, t->x, clamped_m, clamped_k);
  return kir_select(k, *valid, v, kir_float(k, 0));
}

// A guarded load: the index is clamped to 0 where it is not valid, so no lowering reads
// outside the buffer, and the value is 0 there.
static KExpr *guarded(Kernel *k, KExpr *valid, KExpr *load) {
  KExpr *safe = kir_load(k, load->buf, kir_select(k, valid, load->a, num(k, 0)));
  return kir_select(k, valid, safe, kir_float(k, 0));
}

// Each thread stages BM * BK / THREADS elements of A's piece, row-fastest: consecutive threads
// read consecutive output positions (consecutive pixels of the image).
static void stage_a(Tiles *t, KStmt *into, KExpr *k0) {
  Kernel *k = t->kb->k;
  int i;
  KStmt *loop = kernel_loop(t->kb, into, "i", BM * BK / THREADS, &i);
  KExpr *e = kir_add(k, kir_mul(k, kir_ref(k, i), num(k, THREADS)), kir_thread(k));
  KExpr *row = kir_mod(k, e, BM), *col = kir_div(k, e, BM);
  KExpr *m = kir_add(k, t->m0, row), *kk = kir_add(k, k0, col);
  KExpr *valid = kir_and(k, kir_lt(k, m, num(k, t->M)), kir_lt(k, kk, num(k, t->K)));
  KExpr *a = a_value(t, m, kk, &valid);
  kir_store(k, loop, t->as, kir_add(k, kir_mul(k, row, num(k, LD)), col), t->source == A_ROWS ? guarded(k, valid, a) : a);
}

// B's piece element by element, k-fastest (consecutive weights).
static void stage_b(Tiles *t, KStmt *into, KExpr *k0) {
  Kernel *k = t->kb->k;
  int j;
  KStmt *loop = kernel_loop(t->kb, into, "j", BN * BK / THREADS, &j);
  KExpr *e = kir_add(k, kir_mul(k, kir_ref(k, j), num(k, THREADS)), kir_thread(k));
  KExpr *row = kir_div(k, e, BK), *col = kir_mod(k, e, BK);
  KExpr *n = kir_add(k, t->n0, row), *kk = kir_add(k, k0, col);
  KExpr *valid = kir_and(k, kir_lt(k, n, num(k, t->N)), kir_lt(k, kk, num(k, t->K)));
  KExpr *b = kir_load(k, t->b_buf, kir_add(k, kir_mul(k, n, num(k, t->K)), kk));
  kir_store(k, loop, t->bs, kir_add(k, kir_mul(k, row, num(k, LD)), col), guarded(k, valid, b));
}

// B's piece as 16-byte asynchronous copies of four weights, the row's end and the rows past N
// zero-filled (a copy of 0 bytes reads nothing).
static void copy_b(Tiles *t, KStmt *into, KExpr *k0) {
  Kernel *k = t->kb->k;
  int j;
  KStmt *loop = kernel_loop(t->kb, into, "j", BN * BK / 4 / THREADS, &j);
  KExpr *e = kir_add(k, kir_mul(k, kir_ref(k, j), num(k, THREADS)), kir_thread(k));
  KExpr *row = kir_div(k, e, BK / 4), *col = kir_mul(k, kir_mod(k, e, BK / 4), num(k, 4));
  KExpr *n = kir_add(k, t->n0, row), *kk = kir_add(k, k0, col);
  KExpr *left = kir_mul(k, kir_sub(k, num(k, t->K), kk), num(k, 4));
  KExpr *bytes = kir_binary(k, KB_MAX, kir_binary(k, KB_MIN, left, num(k, 16)), num(k, 0));
  bytes = kir_select(k, kir_lt(k, n, num(k, t->N)), bytes, num(k, 0));
  KExpr *from = kir_select(k, kir_lt(k, num(k, 0), bytes), kir_add(k, kir_mul(k, n, num(k, t->K)), kk), num(k, 0));
  kir_cp_async(k, loop, t->b_async, kir_add(k, kir_mul(k, row, num(k, BK)), col), t->b_buf, from, bytes);
}

// The copied piece of B, converted to bf16 where ldmatrix reads it.
static void convert_b(Tiles *t, KStmt *into) {
  Kernel *k = t->kb->k;
  int j;
  KStmt *loop = kernel_loop(t->kb, into, "j", BN * BK / THREADS, &j);
  KExpr *e = kir_add(k, kir_mul(k, kir_ref(k, j), num(k, THREADS)), kir_thread(k));
  KExpr *row = kir_div(k, e, BK), *col = kir_mod(k, e, BK);
  kir_store(k, loop, t->bs, kir_add(k, kir_mul(k, row, num(k, LD)), col), kir_load(k, t->b_async, e));
}

// Both pieces of step k0 in shared memory, ready for ldmatrix.
static void stage(Tiles *t, KStmt *into, KExpr *k0) {
  Kernel *k = t->kb->k;
  if (t->b_async < 0) {
    stage_a(t, into, k0);
    stage_b(t, into, k0);
    kir_barrier(k, into);
    return;
  }
  copy_b(t, into, k0);
  kir_cp_commit(k, into);
  stage_a(t, into, k0);   // while the copies are in flight
  kir_cp_wait(k, into, 0);
  kir_barrier(k, into);   // every thread's copies have landed
  convert_b(t, into);
  kir_barrier(k, into);
}

// One 16-deep step of the warp's tiles from the staged pieces. ldmatrix.x4 on A gives the four
// 8 x 8 tiles of a 16 x 16 fragment (rows 0-7 and 8-15, columns 0-7 and 8-15: lane l names row
// l % 8 of tile l / 8); ldmatrix.x2 on B, stored [n][k], gives the two k-halves of a 16 x 8
// fragment: B's column-major fragment is B^T's row-major one.
static void multiply_step(Tiles *t, KStmt *into, int64_t ks, int a[MI], int b[NI]) {
  Kernel *k = t->kb->k;
  KExpr *r8 = kir_mod(k, t->lane, 8), *tile = kir_div(k, t->lane, 8);
  for (int mi = 0; mi < MI; mi++) {
    KExpr *row = kir_add(k, kir_add(k, kir_mul(k, t->warp_m, num(k, 32)), num(k, mi * 16)),
                         kir_add(k, r8, kir_mul(k, kir_mod(k, tile, 2), num(k, 8))));
    KExpr *col = kir_add(k, num(k, ks), kir_mul(k, kir_div(k, tile, 2), num(k, 8)));
    kir_ldmatrix(k, into, a[mi], 4, false, t->as, kir_add(k, kir_mul(k, row, num(k, LD)), col));
  }
  for (int ni = 0; ni < NI; ni++) {
    KExpr *row = kir_add(k, kir_add(k, kir_mul(k, t->warp_n, num(k, 32)), num(k, ni * 8)), r8);
    KExpr *col = kir_add(k, num(k, ks), kir_mul(k, kir_mod(k, tile, 2), num(k, 8)));
    kir_ldmatrix(k, into, b[ni], 2, false, t->bs, kir_add(k, kir_mul(k, row, num(k, LD)), col));
  }
  for (int mi = 0; mi < MI; mi++)
    for (int ni = 0; ni < NI; ni++)
      kir_mma(k, into, t->acc[mi][ni], a[mi], b[ni], t->acc[mi][ni]);
}

static void main_loop(Tiles *t) {
  Kernel *k = t->kb->k;
  int a[MI], b[NI], kt;
  for (int mi = 0; mi < MI; mi++)
    a[mi] = kir_array(k, "frag_a", KT_U32, 4);
  for (int ni = 0; ni < NI; ni++)
    b[ni] = kir_array(k, "frag_b", KT_U32, 2);
  KStmt *steps = kernel_loop(t->kb, k->body, "kt", (t->K + BK - 1) / BK, &kt);
  stage(t, steps, kir_mul(k, kir_ref(k, kt), num(k, BK)));
  for (int64_t ks = 0; ks < BK; ks += 16)
    multiply_step(t, steps, ks, a, b);
  kir_barrier(k, steps);   // before the next step overwrites the pieces
}

// Where element e of tile (mi, ni) of this lane lies in C: rows g and g + 8, columns 2 (l % 4)
// and + 1, with g = l / 4 (the C fragment of mma.m16n8k16).
static KExpr *row_of(Tiles *t, int mi, int e) {
  Kernel *k = t->kb->k;
  KExpr *in_warp = kir_add(k, num(k, mi * 16 + 8 * (e / 2)), kir_div(k, t->lane, 4));
  return kir_add(k, kir_add(k, t->m0, kir_mul(k, t->warp_m, num(k, 32))), in_warp);
}

static KExpr *col_of(Tiles *t, int ni, int e) {
  Kernel *k = t->kb->k;
  KExpr *in_warp = kir_add(k, num(k, ni * 8 + e % 2), kir_mul(k, kir_mod(k, t->lane, 4), num(k, 2)));
  return kir_add(k, kir_add(k, t->n0, kir_mul(k, t->warp_n, num(k, 32))), in_warp);
}

// Where C[m, n] is stored: the convolution's [N, CO, OH, OW], or the linear layer's [M, N].
static KExpr *store_index(Tiles *t, KExpr *m, KExpr *n) {
  Kernel *k = t->kb->k;
  if (t->kb->node->op == OP_LINEAR)
    return kir_add(k, kir_mul(k, m, num(k, t->N)), n);
  int64_t P = t->y.h * t->y.w;
  return kir_add(k, kir_mul(k, kir_add(k, kir_mul(k, kir_div(k, m, P), num(k, t->N)), n), num(k, P)), kir_mod(k, m, P));
}

// The stored values, kept in the accumulators for the statistics.
static void epilogue(Tiles *t) {
  Kernel *k = t->kb->k;
  for (int mi = 0; mi < MI; mi++)
    for (int ni = 0; ni < NI; ni++)
      for (int e = 0; e < 4; e++) {
        KExpr *m = row_of(t, mi, e), *n = col_of(t, ni, e);
        KStmt *inside = kir_if(k, k->body, kir_and(k, kir_lt(k, m, num(k, t->M)), kir_lt(k, n, num(k, t->N))), NULL);
        KExpr *at = store_index(t, m, n);
        KExpr *acc = kir_elem(k, t->acc[mi][ni], e);
        KExpr *v = kernel_epilogue(t->kb, kernel_matmul_finish(t->kb, acc, n), at);
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

static void column_sums(Tiles *t, ColumnTerm *term, int means[NI], int sums[NI], int partial) {
  Kernel *k = t->kb->k;
  int other = kir_var(k, "other", KT_F32);
  for (int ni = 0; ni < NI; ni++) {
    for (int h = 0; h < 2; h++) {
      KExpr *s = NULL;
      for (int mi = 0; mi < MI; mi++)
        for (int e = h; e < 4; e += 2) {
          KExpr *v = term(t, mi, ni, e, means ? kir_elem(k, means[ni], h) : NULL);
          s = s ? kir_binary(k, KB_ADD, s, v) : v;
        }
      kir_assign_elem(k, k->body, sums[ni], h, s);
    }
  }
  for (int ni = 0; ni < NI; ni++)
    for (int h = 0; h < 2; h++) {
      int v = kir_var(k, "column", KT_F32);
      kir_assign(k, k->body, v, kir_elem(k, sums[ni], h));
      for (int d = 4; d < KIR_WARP; d *= 2) {   // the lanes of one column: l % 4 fixed
        kir_shuffle(k, k->body, KSH_XOR, other, v, d);
        kir_assign(k, k->body, v, kir_binary(k, KB_ADD, kir_ref(k, v), kir_ref(k, other)));
      }
      KExpr *column = kir_sub(k, col_of(t, ni, h), t->n0);   // within the block's 64
      KStmt *first = kir_if(k, k->body, kir_lt(k, t->lane, num(k, 4)), NULL);
      kir_store(k, first, partial, kir_add(k, kir_mul(k, t->warp_m, num(k, BN)), column), kir_ref(k, v));
    }
  kir_barrier(k, k->body);
  for (int ni = 0; ni < NI; ni++)
    for (int h = 0; h < 2; h++) {
      KExpr *column = kir_sub(k, col_of(t, ni, h), t->n0);
      KExpr *total = kir_binary(k, KB_ADD, kir_load(k, partial, column), kir_load(k, partial, kir_add(k, column, num(k, BN))));
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
  int partial = kir_shared(k, "the two row halves' column sums", KT_F32, 2 * BN);
  int means[NI], sq[NI];
  for (int ni = 0; ni < NI; ni++) {
    means[ni] = kir_array(k, "mean", KT_F32, 2);
    sq[ni] = kir_array(k, "sq", KT_F32, 2);
  }
  column_sums(t, value_term, NULL, means, partial);
  KExpr *rows = kir_cast(k, KT_F32, kir_binary(k, KB_MIN, num(k, BM), kir_sub(k, num(k, t->M), t->m0)));
  for (int ni = 0; ni < NI; ni++)
    for (int h = 0; h < 2; h++)
      kir_assign_elem(k, k->body, means[ni], h, kir_binary(k, KB_DIV, kir_elem(k, means[ni], h), rows));
  column_sums(t, square_term, means, sq, partial);
  KExpr *row0 = kir_add(k, num(k, shape_elems(t->y)), kir_mul(k, mt, num(k, 2 * t->N)));
  KStmt *writer = kir_if(k, k->body, kir_and(k, kir_binary(k, KB_EQ, t->warp_m, num(k, 0)), kir_lt(k, t->lane, num(k, 4))), NULL);
  for (int ni = 0; ni < NI; ni++)
    for (int h = 0; h < 2; h++) {
      KExpr *n = col_of(t, ni, h);
      KStmt *in = kir_if(k, writer, kir_lt(k, n, num(k, t->N)), NULL);
      kir_store(k, in, t->kb->out, kir_add(k, row0, n), kir_elem(k, means[ni], h));
      kir_store(k, in, t->kb->out, kir_add(k, kir_add(k, row0, num(k, t->N)), n), kir_elem(k, sq[ni], h));
    }
}

// Whether the node's product runs on tiles here: a convolution's statistics come in chunks of
// one row tile (train.c), or all its rows when there are fewer: a chunk is the rows of one block.
bool kernel_tiled(const KernelBuilder *kb) {
  const Node *n = kb->node;
  if (!kb->target->tiles)
    return false;
  int64_t rows = n->shape.n * n->shape.h * n->shape.w;
  int64_t chunk = n->fused.stats_rows;
  if (chunk && chunk != (rows < BM ? rows : BM))
    fatal("internal error: %s has statistics chunks of %lld rows, not a tile's", n->name, (long long)chunk);
  return true;
}

Kernel *kernel_tiled_matmul(KernelBuilder *kb) {
  Kernel *k = kb->k;
  const Node *n = kb->node;
  Tiles t = {.kb = kb, .b_buf = kb->in[1], .N = n->shape.c, .y = n->shape};
  if (n->op == OP_LINEAR) {
    t.source = A_ROWS, t.a_buf = kb->in[0], t.M = n->shape.n, t.K = n->in[0]->shape.c;
  } else {
    int64_t kernel = n->attr.conv.kernel;
    t.M = n->shape.n * n->shape.h * n->shape.w;
    t.K = n->in[1]->shape.d[1] * kernel * kernel;
    t.source = A_IMAGE;
    t.a_buf = kb->in[0];
    t.x = n->in[0]->shape;
  }
  int64_t mtiles = (t.M + BM - 1) / BM, ntiles = (t.N + BN - 1) / BN;
  kernel_blocks(kb, mtiles * ntiles, THREADS);
  k->bf16 = true;
  t.as = kir_shared(k, "A's piece (bf16)", KT_BF16, BM * LD);
  t.bs = kir_shared(k, "B's piece (bf16)", KT_BF16, BN * LD);
  t.b_async = t.K % 4 ? -1 : kir_shared(k, "B's piece as copied", KT_F32, BN * BK);
  KExpr *mt = kir_div(k, kir_block_index(k), ntiles);
  t.m0 = named(k, "m0", kir_mul(k, mt, num(k, BM)));
  t.n0 = named(k, "n0", kir_mul(k, kir_mod(k, kir_block_index(k), ntiles), num(k, BN)));
  t.lane = named(k, "lane", kir_mod(k, kir_thread(k), KIR_WARP));
  KExpr *warp = kir_div(k, kir_thread(k), KIR_WARP);
  t.warp_m = named(k, "warp_m", kir_mod(k, warp, 2));
  t.warp_n = named(k, "warp_n", kir_div(k, warp, 2));
  for (int mi = 0; mi < MI; mi++)
    for (int ni = 0; ni < NI; ni++) {
      t.acc[mi][ni] = kir_array(k, "acc", KT_F32, 4);
      for (int e = 0; e < 4; e++)
        kir_assign_elem(k, k->body, t.acc[mi][ni], e, kir_float(k, 0));
    }
  main_loop(&t);
  epilogue(&t);
  if (n->fused.stats_rows)
    chunk_stats(&t, mt);
  return k;
}
