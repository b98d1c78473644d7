// kernels_gemm.c: convolution as a matrix product. im2col copies each output position's
// input patch into a row of [N, OH*OW, CI*K*K] (zeros where the patch leaves the image);
// the products then run along those long contiguous rows: the forward pass as dot
// products of patch rows with weight rows, the input gradient as sums of weight rows
// scaled by dy, the weight gradient as sums of patch rows scaled by dy (four output
// channels at a time, so each patch row is read once per four). col2im sums the patch
// gradients back into the image.
#include "kir.h"

typedef struct Gemm {
  Shape x, y;           // image [N,CI,H,W] and output [N,CO,OH,OW]
  int64_t k, stride, pad, dil;
  int64_t P, K;         // output positions per image, patch length
} Gemm;

static Gemm gemm_of(const Node *n, Shape x, Shape y) {
  const ConvAttrs *c = &n->attr.conv;
  return (Gemm){x, y, c->kernel, c->stride, c->pad, c->dilation, y.h * y.w, x.c * c->kernel * c->kernel};
}

static KExpr *num(Kernel *k, int64_t v) { return kir_int(k, v); }
static KExpr *ref(Kernel *k, int v) { return kir_ref(k, v); }
static KExpr *add(Kernel *k, KExpr *a, KExpr *b) { return kir_add(k, a, b); }
static KExpr *mul(Kernel *k, KExpr *a, KExpr *b) { return kir_mul(k, a, b); }
static KExpr *div_(Kernel *k, KExpr *a, int64_t b) { return kir_binary(k, KB_DIV, a, num(k, b)); }
static KExpr *mod_(Kernel *k, KExpr *a, int64_t b) { return kir_binary(k, KB_MOD, a, num(k, b)); }
static KExpr *fma_(Kernel *k, KExpr *acc, KExpr *a, KExpr *b) { return kir_binary(k, KB_ADD, acc, kir_binary(k, KB_MUL, a, b)); }

static KExpr *in_range(Kernel *k, KExpr *v, int64_t size) {
  return kir_binary(k, KB_AND, kir_binary(k, KB_LE, num(k, 0), v), kir_binary(k, KB_LT, v, num(k, size)));
}

// patches[n, p, (ci*k + kh)*k + kw] = x[n, ci, oh*s - pad + kh*d, ow*s - pad + kw*d], or 0 outside
static Kernel *im2col(KernelBuilder *kb) {
  Kernel *k = kb->k;
  const Node *n = kb->node;   // im2col(x) -> [N, P, K]
  Gemm g = gemm_of(n, n->in[0]->shape, n->forward->shape);
  int64_t OW = g.y.w;
  int r, ci, kh, kw;
  KStmt *rows = kernel_loop(kb, k->body, "r", n->shape.d[0] * g.P, &r);
  KExpr *img = div_(k, ref(k, r), g.P), *p = mod_(k, ref(k, r), g.P);
  KExpr *oh = div_(k, p, OW), *ow = mod_(k, p, OW);
  KStmt *chans = kernel_loop(kb, rows, "ci", g.x.c, &ci);
  KStmt *krow = kernel_loop(kb, chans, "kh", g.k, &kh);
  KStmt *kcol = kernel_loop(kb, krow, "kw", g.k, &kw);
  KExpr *ih = add(k, kir_binary(k, KB_SUB, mul(k, oh, num(k, g.stride)), num(k, g.pad)), mul(k, ref(k, kh), num(k, g.dil)));
  KExpr *iw = add(k, kir_binary(k, KB_SUB, mul(k, ow, num(k, g.stride)), num(k, g.pad)), mul(k, ref(k, kw), num(k, g.dil)));
  KExpr *col = add(k, mul(k, add(k, mul(k, ref(k, ci), num(k, g.k)), ref(k, kh)), num(k, g.k)), ref(k, kw));
  KExpr *dst = add(k, mul(k, ref(k, r), num(k, g.K)), col);
  KStmt *outside;
  KStmt *inside = kir_if(k, kcol, kir_binary(k, KB_AND, in_range(k, ih, g.x.h), in_range(k, iw, g.x.w)), &outside);
  kir_store(k, inside, kb->out, dst, kir_load(k, kb->in[0], kernel_index4(kb, g.x, img, ref(k, ci), ih, iw)));
  kir_store(k, outside, kb->out, dst, kir_float(k, 0));
  return k;
}

// dx[n, ci, ih, iw] = sum over the taps (kh, kw) whose output (oh, ow) exists of
// dpatches[n, oh*OW + ow, (ci*k + kh)*k + kw]
static Kernel *col2im(KernelBuilder *kb) {
  Kernel *k = kb->k;
  const Node *n = kb->node;   // col2im(dpatches) shaped like x
  Shape x = n->shape;
  const ConvAttrs *c = &n->attr.conv;
  int64_t OH = (x.h + 2 * c->pad - c->dilation * (c->kernel - 1) - 1) / c->stride + 1;
  int64_t OW = (x.w + 2 * c->pad - c->dilation * (c->kernel - 1) - 1) / c->stride + 1;
  int64_t P = OH * OW, K = x.c * c->kernel * c->kernel;
  int nc, ih, iw, kh, kw;
  KStmt *planes = kernel_loop(kb, k->body, "nc", x.n * x.c, &nc);
  KExpr *img = div_(k, ref(k, nc), x.c), *ci = mod_(k, ref(k, nc), x.c);
  KStmt *rows = kernel_loop(kb, planes, "ih", x.h, &ih);
  KStmt *cols = kernel_loop(kb, rows, "iw", x.w, &iw);
  int acc = kir_var(k, "acc", KT_F32);
  kir_assign(k, cols, acc, kir_float(k, 0));
  KStmt *krow = kernel_loop(kb, cols, "kh", c->kernel, &kh);
  KStmt *kcol = kernel_loop(kb, krow, "kw", c->kernel, &kw);
  KExpr *th = kir_binary(k, KB_SUB, add(k, ref(k, ih), num(k, c->pad)), mul(k, ref(k, kh), num(k, c->dilation)));
  KExpr *tw = kir_binary(k, KB_SUB, add(k, ref(k, iw), num(k, c->pad)), mul(k, ref(k, kw), num(k, c->dilation)));
  KExpr *ok = kir_binary(k, KB_AND, kir_binary(k, KB_LE, num(k, 0), th), kir_binary(k, KB_LE, num(k, 0), tw));
  ok = kir_binary(k, KB_AND, ok, kir_binary(k, KB_EQ, mod_(k, th, c->stride), num(k, 0)));
  ok = kir_binary(k, KB_AND, ok, kir_binary(k, KB_EQ, mod_(k, tw, c->stride), num(k, 0)));
  KExpr *oh = div_(k, th, c->stride), *ow = div_(k, tw, c->stride);
  ok = kir_binary(k, KB_AND, ok, kir_binary(k, KB_AND, kir_binary(k, KB_LT, oh, num(k, OH)), kir_binary(k, KB_LT, ow, num(k, OW))));
  KStmt *inside = kir_if(k, kcol, ok, NULL);
  KExpr *row = add(k, mul(k, img, num(k, P)), add(k, mul(k, oh, num(k, OW)), ow));
  KExpr *col = add(k, mul(k, add(k, mul(k, ci, num(k, c->kernel)), ref(k, kh)), num(k, c->kernel)), ref(k, kw));
  kir_assign(k, inside, acc, kir_binary(k, KB_ADD, ref(k, acc), kir_load(k, kb->in[0], add(k, mul(k, row, num(k, K)), col))));
  kir_store(k, cols, kb->out, kernel_index4(kb, x, img, ci, ref(k, ih), ref(k, iw)), ref(k, acc));
  return k;
}

// y[n, co, p] = b[co] + dot(w[co, :], patches[n, p, :])
static Kernel *forward(KernelBuilder *kb) {
  Kernel *k = kb->k;
  const Node *n = kb->node;
  Shape y = n->shape;
  int64_t P = y.h * y.w, K = n->in[0]->shape.d[2];
  int r, co, kk;
  KStmt *rows = kernel_loop(kb, k->body, "r", y.n * P, &r);
  KExpr *img = div_(k, ref(k, r), P), *p = mod_(k, ref(k, r), P);
  KStmt *outs = kernel_loop(kb, rows, "co", y.c, &co);
  int acc = kir_var(k, "acc", KT_F32);
  kir_assign(k, outs, acc, n->nin == 3 ? kir_load(k, kb->in[2], ref(k, co)) : kir_float(k, 0));
  KStmt *dot = kernel_loop(kb, outs, "kk", K, &kk);
  KExpr *wv = kir_load(k, kb->in[1], add(k, mul(k, ref(k, co), num(k, K)), ref(k, kk)));
  KExpr *xv = kir_load(k, kb->in[0], add(k, mul(k, ref(k, r), num(k, K)), ref(k, kk)));
  kir_assign(k, dot, acc, fma_(k, ref(k, acc), wv, xv));
  kir_store(k, outs, kb->out, add(k, mul(k, add(k, mul(k, img, num(k, y.c)), ref(k, co)), num(k, P)), p), ref(k, acc));
  return k;
}

// dpatches[n, p, :] = sum over co of dy[n, co, p] * w[co, :]
static Kernel *grad_patches(KernelBuilder *kb) {
  Kernel *k = kb->k;
  const Node *n = kb->node;   // conv2d_gemm_dx(dy, w) -> [N, P, K]
  Shape dy = n->in[0]->shape;
  int64_t P = dy.h * dy.w, K = n->shape.d[2];
  int r, kk, co, kk2;
  KStmt *rows = kernel_loop(kb, k->body, "r", dy.n * P, &r);
  KExpr *img = div_(k, ref(k, r), P), *p = mod_(k, ref(k, r), P);
  KStmt *zero = kernel_loop(kb, rows, "kk", K, &kk);
  kir_store(k, zero, kb->out, add(k, mul(k, ref(k, r), num(k, K)), ref(k, kk)), kir_float(k, 0));
  KStmt *outs = kernel_loop(kb, rows, "co", dy.c, &co);
  int s = kir_var(k, "s", KT_F32);
  kir_assign(k, outs, s, kir_load(k, kb->in[0], add(k, mul(k, add(k, mul(k, img, num(k, dy.c)), ref(k, co)), num(k, P)), p)));
  KStmt *axpy = kernel_loop(kb, outs, "kk", K, &kk2);
  KExpr *dst = add(k, mul(k, ref(k, r), num(k, K)), ref(k, kk2));
  KExpr *wv = kir_load(k, kb->in[1], add(k, mul(k, ref(k, co), num(k, K)), ref(k, kk2)));
  kir_store(k, axpy, kb->out, dst, fma_(k, kir_load(k, kb->out, dst), ref(k, s), wv));
  return k;
}

// dw[co, :] = sum over n, p of dy[n, co, p] * patches[n, p, :], R output channels at a time
static Kernel *grad_weight(KernelBuilder *kb) {
  Kernel *k = kb->k;
  const Node *n = kb->node;   // conv2d_gemm_dw(dy, patches) -> w
  Shape dy = n->in[0]->shape;
  int64_t P = dy.h * dy.w, K = n->in[1]->shape.d[2];
  enum { R = 4 };
  int64_t rows = dy.c % R == 0 ? R : 1;
  int blk, kk, img, p, kk2;
  KStmt *blocks = kernel_loop(kb, k->body, "b", dy.c / rows, &blk);
  KExpr *co0 = mul(k, ref(k, blk), num(k, rows));
  KStmt *zero = kernel_loop(kb, blocks, "kk", rows * K, &kk);
  kir_store(k, zero, kb->out, add(k, mul(k, co0, num(k, K)), ref(k, kk)), kir_float(k, 0));
  KStmt *imgs = kernel_loop(kb, blocks, "n", dy.n, &img);
  KStmt *pos = kernel_loop(kb, imgs, "p", P, &p);
  int s[R];
  for (int i = 0; i < rows; i++) {
    s[i] = kir_var(k, arena_printf(k->arena, "s%d", i), KT_F32);
    KExpr *co = add(k, co0, num(k, i));
    kir_assign(k, pos, s[i], kir_load(k, kb->in[0], add(k, mul(k, add(k, mul(k, ref(k, img), num(k, dy.c)), co), num(k, P)), ref(k, p))));
  }
  KStmt *axpy = kernel_loop(kb, pos, "kk", K, &kk2);
  int xv = kir_var(k, "x", KT_F32);
  kir_assign(k, axpy, xv, kir_load(k, kb->in[1], add(k, mul(k, add(k, mul(k, ref(k, img), num(k, P)), ref(k, p)), num(k, K)), ref(k, kk2))));
  for (int i = 0; i < rows; i++) {
    KExpr *dst = add(k, mul(k, add(k, co0, num(k, i)), num(k, K)), ref(k, kk2));
    kir_store(k, axpy, kb->out, dst, fma_(k, kir_load(k, kb->out, dst), ref(k, s[i]), ref(k, xv)));
  }
  return k;
}

Kernel *kernel_gemm(KernelBuilder *kb) {
  switch (kb->node->op) {
  case OP_IM2COL: return im2col(kb);
  case OP_COL2IM: return col2im(kb);
  case OP_CONV_GEMM: return forward(kb);
  case OP_CONV_GEMM_DX: return grad_patches(kb);
  default: return grad_weight(kb);
  }
}
