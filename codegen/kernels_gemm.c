// kernels_gemm.c: convolution as a matrix product. im2col copies each output position's
// input patch into a row of [N, OH*OW, CI*K*K] (zeros where the patch leaves the image);
// the products then run along those long contiguous rows: the forward pass as dot
// products of patch rows with weight rows, the input gradient as sums of weight rows
// scaled by dy, the weight gradient as sums of patch rows scaled by dy (four output
// channels at a time, so each patch row is read once per four). col2im sums the patch
// gradients back into the image. A convolution that keeps no patch matrix (an implicit
// one) gathers each row's patch from the image as it goes: on the CPU into a buffer of the
// thread's own, then the same dot products.
#include "lower.h"

typedef struct Gemm {
  Shape x, y;           // image [N,CI,H,W] and output [N,CO,OH,OW]
  int64_t k, stride, pad, dil;
  int64_t P, K;         // output positions per image, patch length
} Gemm;

static Gemm gemm_of(const Node *n, Shape x, Shape y) {
  const ConvAttrs *c = &n->attr.conv;
  return (Gemm){x, y, c->kernel, c->stride, c->pad, c->dilation, y.h * y.w, x.c * c->kernel * c->kernel};
}


static KExpr *in_range(Kernel *k, KExpr *v, int64_t size) {
  return kir_binary(k, KB_AND, kir_binary(k, KB_LE, kir_int(k, 0), v), kir_binary(k, KB_LT, v, kir_int(k, size)));
}

KExpr *kernel_patch_value(KernelBuilder *kb, int image, Shape x, KExpr *r, KExpr *kk) {
  Kernel *k = kb->k;
  const Node *n = kb->node;
  Gemm g = gemm_of(n, x, n->op == OP_IM2COL ? n->forward->shape : n->shape);
  int64_t taps = g.k * g.k;
  KExpr *img = kir_div(k, r, g.P), *p = kir_mod(k, r, g.P);
  KExpr *oh = kir_div(k, p, g.y.w), *ow = kir_mod(k, p, g.y.w);
  KExpr *ci = kir_div(k, kk, taps), *tap = kir_mod(k, kk, taps);
  KExpr *kh = kir_div(k, tap, g.k), *kw = kir_mod(k, tap, g.k);
  KExpr *ih = kir_add(k, kir_sub(k, kir_mul(k, oh, kir_int(k, g.stride)), kir_int(k, g.pad)), kir_mul(k, kh, kir_int(k, g.dil)));
  KExpr *iw = kir_add(k, kir_sub(k, kir_mul(k, ow, kir_int(k, g.stride)), kir_int(k, g.pad)), kir_mul(k, kw, kir_int(k, g.dil)));
  KExpr *inside = kir_and(k, in_range(k, ih, x.h), in_range(k, iw, x.w));
  KExpr *at = kir_select(k, inside, kernel_index4(kb, x, img, ci, ih, iw), kir_int(k, 0));   // no load outside
  return kir_select(k, inside, kir_load(k, image, at), kir_float(k, 0));
}

// Row r's patch into dst[base + (ci*k + kh)*k + kw] = x[n, ci, oh*s - pad + kh*d, ow*s - pad + kw*d],
// or 0 outside the image: loops over the taps, so the row's position is worked out once.
static void gather_row(KernelBuilder *kb, KStmt *into, const Gemm *g, KExpr *r, int dst, KExpr *base) {
  Kernel *k = kb->k;
  int ci, kh, kw;
  KExpr *img = kir_div(k, r, g->P), *p = kir_mod(k, r, g->P);
  KExpr *oh = kir_div(k, p, g->y.w), *ow = kir_mod(k, p, g->y.w);
  KStmt *chans = kernel_loop(kb, into, "ci", g->x.c, &ci);
  KStmt *krow = kernel_loop(kb, chans, "kh", g->k, &kh);
  KStmt *kcol = kernel_loop(kb, krow, "kw", g->k, &kw);
  KExpr *ih = kir_add(k, kir_sub(k, kir_mul(k, oh, kir_int(k, g->stride)), kir_int(k, g->pad)), kir_mul(k, kir_ref(k, kh), kir_int(k, g->dil)));
  KExpr *iw = kir_add(k, kir_sub(k, kir_mul(k, ow, kir_int(k, g->stride)), kir_int(k, g->pad)), kir_mul(k, kir_ref(k, kw), kir_int(k, g->dil)));
  KExpr *col = kir_add(k, kir_mul(k, kir_add(k, kir_mul(k, kir_ref(k, ci), kir_int(k, g->k)), kir_ref(k, kh)), kir_int(k, g->k)), kir_ref(k, kw));
  KExpr *at = kir_add(k, base, col);
  KStmt *outside;
  KStmt *inside = kir_if(k, kcol, kir_and(k, in_range(k, ih, g->x.h), in_range(k, iw, g->x.w)), &outside);
  kir_store(k, inside, dst, at, kir_load(k, kb->in[0], kernel_index4(kb, g->x, img, kir_ref(k, ci), ih, iw)));
  kir_store(k, outside, dst, at, kir_float(k, 0));
}

Kernel *kernel_im2col(KernelBuilder *kb) {
  Kernel *k = kb->k;
  const Node *n = kb->node;   // im2col(x) -> [N, P, K]
  Gemm g = gemm_of(n, n->in[0]->shape, n->forward->shape);
  int r;
  KStmt *rows = kernel_loop(kb, k->body, "r", n->shape.d[0] * g.P, &r);
  gather_row(kb, rows, &g, kir_ref(k, r), kb->out, kir_mul(k, kir_ref(k, r), kir_int(k, g.K)));
  return k;
}

// dx[n, ci, ih, iw] = sum over the taps (kh, kw) whose output (oh, ow) exists of
// dpatches[n, oh*OW + ow, (ci*k + kh)*k + kw]
Kernel *kernel_col2im(KernelBuilder *kb) {
  Kernel *k = kb->k;
  const Node *n = kb->node;   // col2im(dpatches) shaped like x
  Shape x = n->shape;
  const ConvAttrs *c = &n->attr.conv;
  int64_t OH = (x.h + 2 * c->pad - c->dilation * (c->kernel - 1) - 1) / c->stride + 1;
  int64_t OW = (x.w + 2 * c->pad - c->dilation * (c->kernel - 1) - 1) / c->stride + 1;
  int64_t P = OH * OW, K = x.c * c->kernel * c->kernel;
  int nc, ih, iw, kh, kw;
  KStmt *planes = kernel_loop(kb, k->body, "nc", x.n * x.c, &nc);
  KExpr *img = kir_div(k, kir_ref(k, nc), x.c), *ci = kir_mod(k, kir_ref(k, nc), x.c);
  KStmt *rows = kernel_loop(kb, planes, "ih", x.h, &ih);
  KStmt *cols = kernel_loop(kb, rows, "iw", x.w, &iw);
  int acc = kir_var(k, "acc", KT_F32);
  kir_assign(k, cols, acc, kir_float(k, 0));
  KStmt *krow = kernel_loop(kb, cols, "kh", c->kernel, &kh);
  KStmt *kcol = kernel_loop(kb, krow, "kw", c->kernel, &kw);
  KExpr *th = kir_binary(k, KB_SUB, kir_add(k, kir_ref(k, ih), kir_int(k, c->pad)), kir_mul(k, kir_ref(k, kh), kir_int(k, c->dilation)));
  KExpr *tw = kir_binary(k, KB_SUB, kir_add(k, kir_ref(k, iw), kir_int(k, c->pad)), kir_mul(k, kir_ref(k, kw), kir_int(k, c->dilation)));
  KExpr *ok = kir_binary(k, KB_AND, kir_binary(k, KB_LE, kir_int(k, 0), th), kir_binary(k, KB_LE, kir_int(k, 0), tw));
  ok = kir_binary(k, KB_AND, ok, kir_binary(k, KB_EQ, kir_mod(k, th, c->stride), kir_int(k, 0)));
  ok = kir_binary(k, KB_AND, ok, kir_binary(k, KB_EQ, kir_mod(k, tw, c->stride), kir_int(k, 0)));
  KExpr *oh = kir_div(k, th, c->stride), *ow = kir_div(k, tw, c->stride);
  ok = kir_binary(k, KB_AND, ok, kir_binary(k, KB_AND, kir_binary(k, KB_LT, oh, kir_int(k, OH)), kir_binary(k, KB_LT, ow, kir_int(k, OW))));
  KStmt *inside = kir_if(k, kcol, ok, NULL);
  KExpr *row = kir_add(k, kir_mul(k, img, kir_int(k, P)), kir_add(k, kir_mul(k, oh, kir_int(k, OW)), ow));
  KExpr *col = kir_add(k, kir_mul(k, kir_add(k, kir_mul(k, ci, kir_int(k, c->kernel)), kir_ref(k, kh)), kir_int(k, c->kernel)), kir_ref(k, kw));
  kir_assign(k, inside, acc, kir_binary(k, KB_ADD, kir_ref(k, acc), kir_load(k, kb->in[0], kir_add(k, kir_mul(k, row, kir_int(k, K)), col))));
  KExpr *dst = kernel_index4(kb, x, img, ci, kir_ref(k, ih), kir_ref(k, iw));
  kir_store(k, cols, kb->out, dst, kernel_epilogue(kb, kir_ref(k, acc), dst));
  return k;
}

KExpr *kernel_matmul_finish(KernelBuilder *kb, KExpr *v, KExpr *co) {
  Kernel *k = kb->k;
  const Node *n = kb->node;
  if (n->op == OP_LINEAR ? n->attr.linear.bias : n->attr.conv.bias)
    v = kir_binary(k, KB_ADD, v, kir_load(k, kb->in[2], co));
  if (n->fused.bn.stats) {   // (v - mean) * invstd * gamma + beta, from running statistics
    int st = kernel_operand(kb, n->fused.bn.stats), gamma = kernel_operand(kb, n->fused.bn.gamma);
    int beta = kernel_operand(kb, n->fused.bn.beta);
    KExpr *scale = kir_binary(k, KB_MUL, kir_load(k, st, kir_add(k, kir_int(k, n->shape.c), co)), kir_load(k, gamma, co));
    v = kir_fma(k, kir_load(k, beta, co), kir_binary(k, KB_SUB, v, kir_load(k, st, co)), scale);
  }
  return v;
}

// Where the rows of the product's left side come from: the patch matrix (or a thread's copy
// of one row: stride 0), or the image itself, each element gathered as it is used.
typedef struct Rows {
  int64_t K;            // a row's length
  int buf;
  int64_t stride;       // elements from one row to the next
  bool gather;          // buf is the image
} Rows;

static KExpr *row_value(KernelBuilder *kb, const Rows *a, KExpr *r, KExpr *kk) {
  Kernel *k = kb->k;
  if (a->gather)
    return kernel_patch_value(kb, a->buf, kb->node->in[0]->shape, r, kk);
  return kir_load(k, a->buf, kir_add(k, kir_mul(k, r, kir_int(k, a->stride)), kk));
}

// The output at (row r, channel co) before its epilogue: dot(w[co, :], row r), finished. The
// dot product's loop goes into `into`.
static KExpr *output_value(KernelBuilder *kb, const Rows *a, KStmt *into, KExpr *r, KExpr *co) {
  Kernel *k = kb->k;
  int acc = kir_var(k, "acc", KT_F32), kk;
  kir_assign(k, into, acc, kir_float(k, 0));
  KStmt *dot = kernel_loop(kb, into, "kk", a->K, &kk);
  KExpr *wv = kir_load(k, kb->in[1], kir_add(k, kir_mul(k, co, kir_int(k, a->K)), kir_ref(k, kk)));
  kir_assign(k, dot, acc, kir_fma(k, kir_ref(k, acc), wv, row_value(kb, a, r, kir_ref(k, kk))));
  return kernel_matmul_finish(kb, kir_ref(k, acc), co);
}

// Where (row r, channel co) is stored in y [N, CO, OH, OW].
static KExpr *output_at(Kernel *k, Shape y, KExpr *r, KExpr *co) {
  int64_t P = y.h * y.w;
  KExpr *img = kir_div(k, r, P), *p = kir_mod(k, r, P);
  return kir_add(k, kir_mul(k, kir_add(k, kir_mul(k, img, kir_int(k, y.c)), co), kir_int(k, P)), p);
}

// y[n, co, p] = b[co] + dot(w[co, :], row (n, p)), a thread per row (output position)
static Kernel *forward(KernelBuilder *kb, const Rows *a) {
  Kernel *k = kb->k;
  Shape y = kb->node->shape;
  int r, co;
  KStmt *rows = kernel_loop(kb, k->body, "r", y.n * y.h * y.w, &r);
  KStmt *outs = kernel_loop(kb, rows, "co", y.c, &co);
  KExpr *at = output_at(k, y, kir_ref(k, r), kir_ref(k, co));
  kir_store(k, outs, kb->out, at, kernel_epilogue(kb, output_value(kb, a, outs, kir_ref(k, r), kir_ref(k, co)), at));
  return k;
}

// A loop over the rows [first, first + R) of a chunk, inside `into`, that stops at the last
// row; *row is the row.
static KStmt *chunk_rows(KernelBuilder *kb, KStmt *into, KExpr *first, int64_t R, int64_t rows, KExpr **row) {
  Kernel *k = kb->k;
  int j;
  KStmt *loop = kernel_loop(kb, into, "j", R, &j);
  *row = kir_add(k, first, kir_ref(k, j));
  return rows % R ? kir_if(k, loop, kir_binary(k, KB_LT, *row, kir_int(k, rows)), NULL) : loop;
}

// The forward pass that also writes the batchnorm statistics of its output: a thread per
// (chunk of rows, channel) computes the chunk's outputs of its channel, then their mean and
// sum of squared deviations (from the values it just stored, so the variance is exact to
// float32 whatever the mean), stored after the output for bn_stats to merge.
static Kernel *forward_with_stats(KernelBuilder *kb, const Rows *a) {
  Kernel *k = kb->k;
  const Node *n = kb->node;
  Shape y = n->shape;
  int64_t rows = y.n * y.h * y.w, R = n->fused.stats_rows, tail = shape_elems(y);
  int t;
  KStmt *par = kernel_loop(kb, k->body, "t", conv_stats_chunks(n) * y.c, &t);
  KExpr *co = kir_mod(k, kir_ref(k, t), y.c), *first = kir_mul(k, kir_div(k, kir_ref(k, t), y.c), kir_int(k, R));
  int sum = kir_var(k, "sum", KT_F32), mean = kir_var(k, "mean", KT_F32), m2 = kir_var(k, "m2", KT_F32);
  kir_assign(k, par, sum, kir_float(k, 0));
  KExpr *r;
  KStmt *pass1 = chunk_rows(kb, par, first, R, rows, &r);
  int v = kir_var(k, "v", KT_F32);
  KExpr *at = output_at(k, y, r, co);
  kir_assign(k, pass1, v, kernel_epilogue(kb, output_value(kb, a, pass1, r, co), at));
  kir_store(k, pass1, kb->out, at, kir_ref(k, v));
  kir_assign(k, pass1, sum, kir_binary(k, KB_ADD, kir_ref(k, sum), kir_ref(k, v)));
  KExpr *count = kir_cast(k, KT_F32, kir_binary(k, KB_MIN, kir_int(k, R), kir_sub(k, kir_int(k, rows), first)));
  kir_assign(k, par, mean, kir_binary(k, KB_DIV, kir_ref(k, sum), count));
  kir_assign(k, par, m2, kir_float(k, 0));
  KExpr *r2;
  KStmt *pass2 = chunk_rows(kb, par, first, R, rows, &r2);
  KExpr *d = kir_binary(k, KB_SUB, kir_load(k, kb->out, output_at(k, y, r2, co)), kir_ref(k, mean));
  kir_assign(k, pass2, m2, kir_fma(k, kir_ref(k, m2), d, d));
  KExpr *row0 = kir_add(k, kir_int(k, tail), kir_mul(k, kir_div(k, kir_ref(k, t), y.c), kir_int(k, 2 * y.c)));
  kir_store(k, par, kb->out, kir_add(k, row0, co), kir_ref(k, mean));
  kir_store(k, par, kb->out, kir_add(k, kir_add(k, row0, kir_int(k, y.c)), co), kir_ref(k, m2));
  return k;
}

// dpatches[n, p, :] = sum over co of dy[n, co, p] * w[co, :]
Kernel *kernel_conv2d_gemm_dx(KernelBuilder *kb) {
  Kernel *k = kb->k;
  const Node *n = kb->node;   // conv2d_gemm_dx(dy, w) -> [N, P, K]
  Shape dy = n->in[0]->shape;
  int64_t P = dy.h * dy.w, K = n->shape.d[2];
  int r, kk, co, kk2;
  KStmt *rows = kernel_loop(kb, k->body, "r", dy.n * P, &r);
  KExpr *img = kir_div(k, kir_ref(k, r), P), *p = kir_mod(k, kir_ref(k, r), P);
  KStmt *zero = kernel_loop(kb, rows, "kk", K, &kk);
  kir_store(k, zero, kb->out, kir_add(k, kir_mul(k, kir_ref(k, r), kir_int(k, K)), kir_ref(k, kk)), kir_float(k, 0));
  KStmt *outs = kernel_loop(kb, rows, "co", dy.c, &co);
  int s = kir_var(k, "s", KT_F32);
  kir_assign(k, outs, s, kir_load(k, kb->in[0], kir_add(k, kir_mul(k, kir_add(k, kir_mul(k, img, kir_int(k, dy.c)), kir_ref(k, co)), kir_int(k, P)), p)));
  KStmt *axpy = kernel_loop(kb, outs, "kk", K, &kk2);
  KExpr *dst = kir_add(k, kir_mul(k, kir_ref(k, r), kir_int(k, K)), kir_ref(k, kk2));
  KExpr *wv = kir_load(k, kb->in[1], kir_add(k, kir_mul(k, kir_ref(k, co), kir_int(k, K)), kir_ref(k, kk2)));
  kir_store(k, axpy, kb->out, dst, kir_fma(k, kir_load(k, kb->out, dst), kir_ref(k, s), wv));
  return k;
}

// dw[co, :] = sum over rows r = (n, p) of dy[n, co, p] * patches[r, :], R output channels at a
// time. With an output [chunks, CO*K], each chunk of rows sums into its own row (for
// sum_chunks to add up): the parallel loop runs over (chunk, channel block), not only over
// the few channel blocks, which would leave a GPU with a few dozen threads.
Kernel *kernel_conv2d_gemm_dw(KernelBuilder *kb) {
  Kernel *k = kb->k;
  const Node *n = kb->node;   // conv2d_gemm_dw(dy, patches) -> w, or [chunks, CO*K]
  Shape dy = n->in[0]->shape;
  int64_t P = dy.h * dy.w, K = n->in[1]->shape.d[2], rows_total = dy.n * P;
  int64_t chunks = n->shape.rank == 2 ? n->shape.d[0] : 1, per_chunk = (rows_total + chunks - 1) / chunks;
  enum { R = 4 };
  int64_t rows = dy.c % R == 0 ? R : 1, nblocks = dy.c / rows;
  int t, kk, kk2;
  KStmt *blocks = kernel_loop(kb, k->body, "t", chunks * nblocks, &t);
  KExpr *chunk = kir_div(k, kir_ref(k, t), nblocks);
  KExpr *co0 = kir_mul(k, kir_mod(k, kir_ref(k, t), nblocks), kir_int(k, rows));
  KExpr *out0 = kir_add(k, kir_mul(k, chunk, kir_int(k, dy.c * K)), kir_mul(k, co0, kir_int(k, K)));   // dw[co0, 0]
  KStmt *zero = kernel_loop(kb, blocks, "kk", rows * K, &kk);
  kir_store(k, zero, kb->out, kir_add(k, out0, kir_ref(k, kk)), kir_float(k, 0));
  KExpr *r;
  KStmt *pos = chunk_rows(kb, blocks, kir_mul(k, chunk, kir_int(k, per_chunk)), per_chunk, rows_total, &r);
  KExpr *img = kir_div(k, r, P), *p = kir_mod(k, r, P);
  int s[R];
  for (int i = 0; i < rows; i++) {
    s[i] = kir_var(k, arena_printf(k->arena, "s%d", i), KT_F32);
    KExpr *co = kir_add(k, co0, kir_int(k, i));
    kir_assign(k, pos, s[i], kir_load(k, kb->in[0], kir_add(k, kir_mul(k, kir_add(k, kir_mul(k, img, kir_int(k, dy.c)), co), kir_int(k, P)), p)));
  }
  KStmt *axpy = kernel_loop(kb, pos, "kk", K, &kk2);
  int xv = kir_var(k, "x", KT_F32);
  kir_assign(k, axpy, xv, kir_load(k, kb->in[1], kir_add(k, kir_mul(k, r, kir_int(k, K)), kir_ref(k, kk2))));
  for (int i = 0; i < rows; i++) {
    KExpr *dst = kir_add(k, kir_add(k, out0, kir_int(k, i * K)), kir_ref(k, kk2));
    kir_store(k, axpy, kb->out, dst, kir_fma(k, kir_load(k, kb->out, dst), kir_ref(k, s[i]), kir_ref(k, xv)));
  }
  return k;
}

// out[e] = sum over j of partial[j, e], in order: the weight gradient from its chunks.
Kernel *kernel_sum_chunks(KernelBuilder *kb) {
  Kernel *k = kb->k;
  const Node *n = kb->node;
  int64_t chunks = n->in[0]->shape.d[0], E = shape_elems(n->shape);
  int e, j;
  KStmt *all = kernel_loop(kb, k->body, "e", E, &e);
  int acc = kir_var(k, "acc", KT_F32);
  kir_assign(k, all, acc, kir_float(k, 0));
  KStmt *each = kernel_loop(kb, all, "j", chunks, &j);
  KExpr *at = kir_add(k, kir_mul(k, kir_ref(k, j), kir_int(k, E)), kir_ref(k, e));
  kir_assign(k, each, acc, kir_binary(k, KB_ADD, kir_ref(k, acc), kir_load(k, kb->in[0], at)));
  kir_store(k, all, kb->out, kir_ref(k, e), kir_ref(k, acc));
  return k;
}

// The GPU's form is tiled on tensor cores (kernels_tiles.c); without tiles it gathers each
// element as it multiplies (a thread's buffer would be slow local memory on a GPU).
Kernel *kernel_conv_implicit(KernelBuilder *kb) {
  if (kernel_tiled(kb))
    return kernel_tiled_matmul(kb);
  if (!kb->target->gpu)
    return kernel_conv_cpu(kb);
  Gemm g = gemm_of(kb->node, kb->node->in[0]->shape, kb->node->shape);
  Rows image = {.K = g.K, .buf = kb->in[0], .gather = true};
  return kb->node->fused.stats_rows ? forward_with_stats(kb, &image) : forward(kb, &image);
}

Kernel *kernel_conv2d_gemm(KernelBuilder *kb) {
  const Node *n = kb->node;
  if (kernel_tiled(kb))
    return kernel_tiled_matmul(kb);
  Rows patches = {.K = n->in[0]->shape.d[2], .buf = kb->in[0], .stride = n->in[0]->shape.d[2]};
  return n->fused.stats_rows ? forward_with_stats(kb, &patches) : forward(kb, &patches);
}
