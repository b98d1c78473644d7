// kernels_gemm.c: what the convolution as a matrix product shares between the targets, and
// the GPU's form without tensor-core tiles. The patch value (kernel_patch_value) is the
// element of the image a patch holds, or 0 in the padding: the GPU's forms gather it as they
// multiply (the CPU's products gather runs of it as they pack, kernels_conv_cpu.c). The
// epilogue (kernel_matmul_finish) adds the bias and a folded batchnorm, for the linear layer
// too. Without tiles, the GPU's convolution is a thread per output row (position) computing
// every channel's dot product, or, with the batchnorm statistics, a thread per (chunk of
// rows, channel). sum_chunks adds up a weight gradient's chunks.
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

KExpr *kernel_patch_value(KernelBuilder *kb, int image, Shape x, Shape y, KExpr *r, KExpr *kk) {
  Kernel *k = kb->k;
  Gemm g = gemm_of(kb->node, x, y);
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

// The rows of the product's left side: the image's patches, each element gathered as it is used.
typedef struct Rows {
  int64_t K;            // a row's length
  int buf;              // the image
} Rows;

static KExpr *row_value(KernelBuilder *kb, const Rows *a, KExpr *r, KExpr *kk) {
  return kernel_patch_value(kb, a->buf, kb->node->in[0]->shape, kb->node->shape, r, kk);
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
  int64_t rows = y.n * y.h * y.w, R = n->fused.stats_rows;
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
  KExpr *tail;
  int stats = kernel_stats_at(kb, kb->out, n, &tail);
  KExpr *row0 = kir_add(k, tail, kir_mul(k, kir_div(k, kir_ref(k, t), y.c), kir_int(k, 2 * y.c)));
  kir_store(k, par, stats, kir_add(k, row0, co), kir_ref(k, mean));
  kir_store(k, par, stats, kir_add(k, kir_add(k, row0, kir_int(k, y.c)), co), kir_ref(k, m2));
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
  Rows image = {.K = g.K, .buf = kb->in[0]};
  return kb->node->fused.stats_rows ? forward_with_stats(kb, &image) : forward(kb, &image);
}
