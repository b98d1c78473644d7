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
// 16 R output channels, into a buffer of its own. It runs over the positions in blocks of L
// that keep the block's planes in L2, and within a block over tiles of R x S dot products
// (co, ci; KS_DOT, kir_llvm_dot.c): R*S vectors of sums along the positions, each step
// loading R vectors of dy and S of x. A tile's sums are added up and to the buffer at the end
// of each block: every sum is taken in the same order whatever the thread count.
//
// With few positions (7x7) the vectors' remainders and the adding up cost more than they
// save: conv_dw_dots (compiler/ops.c) says where this form is used.
#include "conv_cpu.h"

typedef struct Dw1x1 {
  ConvCpu g;
  int dy, image;        // buffers
  int64_t chunks, co_block, co_blocks, L;   // co_block: the output channels of a task
  int lanes, R, S;      // the vectors' lanes, the dot products' tile (co x ci)
} Dw1x1;

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The positions of a block: as many as keep the block's planes of dy and x in 256 KiB.
static int64_t positions_per_block(const ConvCpu *c) {
  int64_t planes = (c->y.c < 64 ? c->y.c : 64) + c->x.c;
  int64_t L = (256 * 1024 / 4 / planes) / 64 * 64;
  L = L < 256 ? 256 : L > 4096 ? 4096 : L;
  return L < c->P ? L : c->P;
}

// One rows x cols tile of dot products over positions [q0, q0 + len) of image n, for
// co = co0 + r, ci = ci0 + s, added to c[(co - block's co0)*ldc + ci].
static void tile(KernelBuilder *kb, const Dw1x1 *d, KStmt *into, int c, int64_t ldc, KExpr *i0, KExpr *co0,
                 KExpr *ci0, int rows, int cols, KExpr *n, KExpr *q0, KExpr *len) {
  Kernel *k = kb->k;
  const ConvCpu *g = &d->g;
  KExpr *co = kir_add(k, co0, i0);
  KDot t = {.rows = rows, .cols = cols, .lanes = d->lanes, .c = c, .a = d->dy, .b = d->image, .depth = len,
            .ldc = ldc, .a_row = g->P, .ldb = g->P,
            .c_index = kir_add(k, kir_mul(k, i0, kir_int(k, ldc)), ci0),
            .a_index = kir_add(k, kir_mul(k, kir_add(k, kir_mul(k, n, kir_int(k, g->y.c)), co), kir_int(k, g->P)), q0),
            .b_index = kir_add(k, kir_mul(k, kir_add(k, kir_mul(k, n, kir_int(k, g->x.c)), ci0), kir_int(k, g->P)), q0)};
  kir_dot(k, into, &t);
}

// The tiles of a block of positions: whole R x S tiles, then the channels left over (M % R
// in the last block of output channels, N % S), in smaller tiles.
static void tiles(KernelBuilder *kb, const Dw1x1 *d, KStmt *into, int c, int64_t ldc, KExpr *co0, KExpr *n, KExpr *q0,
                  KExpr *len) {
  Kernel *k = kb->k;
  const ConvCpu *g = &d->g;
  int it, jt, jr;
  int64_t ci_whole = g->x.c / d->S, ci_left = g->x.c % d->S, co_left = g->y.c % d->R;
  KExpr *in_block = conv_min(k, kir_int(k, d->co_block), kir_sub(k, kir_int(k, g->y.c), co0));
  KExpr *co_whole = kernel_let(kb, into, "co_tiles", kir_div(k, in_block, d->R));
  KStmt *co_loop = kernel_range(kb, into, "it", kir_int(k, 0), co_whole, &it);
  KExpr *i0 = kir_mul(k, kir_ref(k, it), kir_int(k, d->R));
  if (ci_whole) {
    KStmt *ci_loop = kernel_loop(kb, co_loop, "jt", ci_whole, &jt);
    tile(kb, d, ci_loop, c, ldc, i0, co0, kir_mul(k, kir_ref(k, jt), kir_int(k, d->S)), d->R, d->S, n, q0, len);
  }
  if (ci_left)
    tile(kb, d, co_loop, c, ldc, i0, co0, kir_int(k, ci_whole * d->S), d->R, (int)ci_left, n, q0, len);
  if (!co_left)
    return;
  KStmt *last = kir_if(k, into, kir_lt(k, kir_mul(k, co_whole, kir_int(k, d->R)), in_block), NULL);
  KExpr *r0 = kir_mul(k, co_whole, kir_int(k, d->R));
  if (ci_whole) {
    KStmt *ci_rest = kernel_loop(kb, last, "jr", ci_whole, &jr);
    tile(kb, d, ci_rest, c, ldc, r0, co0, kir_mul(k, kir_ref(k, jr), kir_int(k, d->S)), (int)co_left, d->S, n, q0, len);
  }
  if (ci_left)
    tile(kb, d, last, c, ldc, r0, co0, kir_int(k, ci_whole * d->S), (int)co_left, (int)ci_left, n, q0, len);
}

// dw[split][co0 + i, ci] = C[i, ci] for the block's channels.
static void store(KernelBuilder *kb, const Dw1x1 *d, KStmt *into, int c, int64_t ldc, KExpr *split, KExpr *co0) {
  Kernel *k = kb->k;
  const ConvCpu *g = &d->g;
  int i, j;
  KStmt *rows = kernel_range(kb, into, "i", kir_int(k, 0), conv_min(k, kir_int(k, d->co_block), kir_sub(k, kir_int(k, g->y.c), co0)), &i);
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
  // AVX-512: 16 sums of 16 lanes and 8 operands in 32 registers; AVX2: 9 of 8 and 6 in 16.
  d.lanes = kb->target->lanes >= 16 ? 16 : 8;
  d.R = d.S = d.lanes >= 16 ? 4 : 3;
  d.co_block = 16 * d.R;
  d.co_blocks = ceil_div(g->y.c, d.co_block);
  d.L = positions_per_block(g);
  int64_t ldc = g->x.c;
  int c = kir_local(k, "this block's sums", KT_F32, (g->y.c < d.co_block ? g->y.c : d.co_block) * ldc);
  int t, e, img, blk;
  KStmt *tasks = kernel_loop(kb, k->body, "t", d.chunks * d.co_blocks, &t);
  KExpr *split = kernel_let(kb, tasks, "split", kir_div(k, kir_ref(k, t), d.co_blocks));
  KExpr *co0 = kernel_let(kb, tasks, "co0", kir_mul(k, kir_mod(k, kir_ref(k, t), d.co_blocks), kir_int(k, d.co_block)));
  KStmt *zero = kernel_loop(kb, tasks, "e", (g->y.c < d.co_block ? g->y.c : d.co_block) * ldc, &e);
  kir_store(k, zero, c, kir_ref(k, e), kir_float(k, 0));
  int64_t per_chunk = g->x.n / d.chunks;
  KStmt *images = kernel_range(kb, tasks, "img", kir_mul(k, split, kir_int(k, per_chunk)),
                               kir_mul(k, kir_add(k, split, kir_int(k, 1)), kir_int(k, per_chunk)), &img);
  KStmt *blocks = kernel_loop(kb, images, "blk", ceil_div(g->P, d.L), &blk);
  KExpr *q0 = kernel_let(kb, blocks, "q0", kir_mul(k, kir_ref(k, blk), kir_int(k, d.L)));
  KExpr *len = kernel_let(kb, blocks, "len", conv_min(k, kir_int(k, d.L), kir_sub(k, kir_int(k, g->P), q0)));
  tiles(kb, &d, blocks, c, ldc, co0, kir_ref(k, img), q0, len);
  store(kb, &d, tasks, c, ldc, split, co0);
  return k;
}
