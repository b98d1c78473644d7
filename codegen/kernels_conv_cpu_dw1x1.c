// kernels_conv_cpu_dw1x1.c: the weight gradient of a 1x1 convolution without stride or
// padding (groups == 1) on the CPU, as dot products along the positions:
//   dw[co, ci] = sum over n, pos of dy[n, co, pos] x[n, ci, pos]
// Both operands hold their positions contiguously, so the reduction runs along them in
// vector registers and neither is packed or transposed. The packed product
// (kernels_conv_cpu_dw.c) would pack A = dy and write B = x down its columns, a scalar store
// a value, and with 16 to 32 channels on one side (MobileNetV2's 16->96, 24->144) its
// register tile is half empty; BLIS was 2.4x faster there.
//
// A task sums one chunk of images (the schedule's split, as the packed form) for a block of
// up to 64 output channels, into a buffer of its own. It runs over the positions in blocks
// of L that keep the block's planes in L2, and within a block over register tiles of R x S
// sums (co, ci): the innermost loop, along the positions, holds the R*S sums as vectors
// (LLVM vectorises it, llvm.loop.vectorize.enable), each step loading R values of dy and S
// of x. A tile's sums are added to the buffer at the end of each block: every sum is taken
// in the same order whatever the thread count.
#include "conv_cpu.h"

enum { R = 4, S = 4, CO_BLOCK = 64 };

typedef struct Dw1x1 {
  ConvCpu g;
  int dy, image;        // buffers
  int64_t chunks, co_blocks, L;
} Dw1x1;

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The positions of a block: as many as keep the block's planes of dy and x in 256 KiB.
static int64_t positions_per_block(const ConvCpu *c) {
  int64_t planes = (c->y.c < CO_BLOCK ? c->y.c : CO_BLOCK) + c->x.c;
  int64_t L = (256 * 1024 / 4 / planes) / 64 * 64;
  L = L < 256 ? 256 : L > 4096 ? 4096 : L;
  return L < c->P ? L : c->P;
}

// One tile's dot products over positions [q0, q0 + len) of image n: sums[r][s] for
// co = co0 + r, ci = ci0 + s (clamped to the last channel; those sums are not stored).
static void tile(KernelBuilder *kb, const Dw1x1 *d, KStmt *into, int c, int64_t ldc, KExpr *row0, KExpr *co0,
                 KExpr *ci0, KExpr *n, KExpr *q0, KExpr *len) {
  Kernel *k = kb->k;
  const ConvCpu *g = &d->g;
  int sum[R][S], q;
  KExpr *dy_at[R], *x_at[S];
  for (int r = 0; r < R; r++) {
    KExpr *co = conv_min(k, kir_add(k, co0, kir_int(k, r)), kir_int(k, g->y.c - 1));
    dy_at[r] = kernel_let(kb, into, "dy_at", kir_add(k, kir_mul(k, kir_add(k, kir_mul(k, n, kir_int(k, g->y.c)), co), kir_int(k, g->P)), q0));
  }
  for (int s = 0; s < S; s++) {
    KExpr *ci = conv_min(k, kir_add(k, ci0, kir_int(k, s)), kir_int(k, g->x.c - 1));
    x_at[s] = kernel_let(kb, into, "x_at", kir_add(k, kir_mul(k, kir_add(k, kir_mul(k, n, kir_int(k, g->x.c)), ci), kir_int(k, g->P)), q0));
  }
  for (int r = 0; r < R; r++)
    for (int s = 0; s < S; s++) {
      sum[r][s] = kir_var(k, "sum", KT_F32);
      kir_assign(k, into, sum[r][s], kir_float(k, 0));
    }
  KStmt *along = kernel_range(kb, into, "q", kir_int(k, 0), len, &q);
  KExpr *dyv[R], *xv[S];
  for (int r = 0; r < R; r++)
    dyv[r] = kernel_let(kb, along, "dy", kir_load(k, d->dy, kir_add(k, dy_at[r], kir_ref(k, q))));
  for (int s = 0; s < S; s++)
    xv[s] = kernel_let(kb, along, "x", kir_load(k, d->image, kir_add(k, x_at[s], kir_ref(k, q))));
  for (int r = 0; r < R; r++)
    for (int s = 0; s < S; s++)
      kir_assign(k, along, sum[r][s], kir_fma(k, kir_ref(k, sum[r][s]), dyv[r], xv[s]));
  for (int r = 0; r < R; r++)
    for (int s = 0; s < S; s++) {
      KExpr *at = kir_add(k, kir_add(k, row0, kir_int(k, r * ldc + s)), ci0);
      kir_store(k, into, c, at, kir_binary(k, KB_ADD, kir_load(k, c, at), kir_ref(k, sum[r][s])));
    }
}

// dw[split][co0 + i, ci] = C[i, ci] for the block's channels.
static void store(KernelBuilder *kb, const Dw1x1 *d, KStmt *into, int c, int64_t ldc, KExpr *split, KExpr *co0) {
  Kernel *k = kb->k;
  const ConvCpu *g = &d->g;
  int i, j;
  KStmt *rows = kernel_range(kb, into, "i", kir_int(k, 0), conv_min(k, kir_int(k, CO_BLOCK), kir_sub(k, kir_int(k, g->y.c), co0)), &i);
  KExpr *row = kernel_let(kb, rows, "row", kir_mul(k, kir_add(k, kir_mul(k, split, kir_int(k, g->y.c)), kir_add(k, co0, kir_ref(k, i))), kir_int(k, g->x.c)));
  KStmt *each = kernel_range(kb, rows, "j", kir_int(k, 0), kir_int(k, g->x.c), &j);
  kir_store(k, each, kb->out, kir_add(k, row, kir_ref(k, j)), kir_load(k, c, kir_add(k, kir_mul(k, kir_ref(k, i), kir_int(k, ldc)), kir_ref(k, j))));
}

Kernel *kernel_conv_cpu_dw1x1(KernelBuilder *kb) {
  Kernel *k = kb->k;
  const Node *node = kb->node;   // conv2d_dw(dy, x), shaped like w or [chunks, w's size]
  Dw1x1 d = {.g = conv_cpu_of(&node->attr.conv, node->in[1]->shape, node->in[0]->shape), .dy = kb->in[0],
             .image = kb->in[1], .chunks = node->shape.rank == 2 ? node->shape.d[0] : 1};
  const ConvCpu *g = &d.g;
  if (g->x.n % d.chunks)
    fatal("internal error in kernel %s: %lld chunks do not divide the batch", k->name, (long long)d.chunks);
  d.co_blocks = ceil_div(g->y.c, CO_BLOCK);
  d.L = positions_per_block(g);
  int64_t rows = ceil_div(g->y.c < CO_BLOCK ? g->y.c : CO_BLOCK, R) * R, ldc = ceil_div(g->x.c, S) * S;
  int c = kir_local(k, "this block's sums", KT_F32, rows * ldc);
  int t, e, img, blk, it, jt;
  KStmt *tasks = kernel_loop(kb, k->body, "t", d.chunks * d.co_blocks, &t);
  KExpr *split = kernel_let(kb, tasks, "split", kir_div(k, kir_ref(k, t), d.co_blocks));
  KExpr *co0 = kernel_let(kb, tasks, "co0", kir_mul(k, kir_mod(k, kir_ref(k, t), d.co_blocks), kir_int(k, CO_BLOCK)));
  KStmt *zero = kernel_loop(kb, tasks, "e", rows * ldc, &e);
  kir_store(k, zero, c, kir_ref(k, e), kir_float(k, 0));
  int64_t per_chunk = g->x.n / d.chunks;
  KStmt *images = kernel_range(kb, tasks, "img", kir_mul(k, split, kir_int(k, per_chunk)),
                               kir_mul(k, kir_add(k, split, kir_int(k, 1)), kir_int(k, per_chunk)), &img);
  KStmt *blocks = kernel_loop(kb, images, "blk", ceil_div(g->P, d.L), &blk);
  KExpr *q0 = kernel_let(kb, blocks, "q0", kir_mul(k, kir_ref(k, blk), kir_int(k, d.L)));
  KExpr *len = kernel_let(kb, blocks, "len", conv_min(k, kir_int(k, d.L), kir_sub(k, kir_int(k, g->P), q0)));
  KExpr *co_tiles = kir_div(k, kir_add(k, conv_min(k, kir_int(k, CO_BLOCK), kir_sub(k, kir_int(k, g->y.c), co0)), kir_int(k, R - 1)), R);
  KStmt *co_loop = kernel_range(kb, blocks, "it", kir_int(k, 0), co_tiles, &it);
  KStmt *ci_loop = kernel_loop(kb, co_loop, "jt", ceil_div(g->x.c, S), &jt);
  KExpr *i0 = kir_mul(k, kir_ref(k, it), kir_int(k, R));
  tile(kb, &d, ci_loop, c, ldc, kir_mul(k, i0, kir_int(k, ldc)), kir_add(k, co0, i0),
       kir_mul(k, kir_ref(k, jt), kir_int(k, S)), kir_ref(k, img), q0, len);
  store(kb, &d, tasks, c, ldc, split, co0);
  return k;
}
