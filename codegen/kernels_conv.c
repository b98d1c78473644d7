// kernels_conv.c: convolution forward, and its gradients with respect to the input and
// the weights. Direct loops with the shapes folded in; every output element is owned by
// one parallel iteration, so results do not depend on the thread count.
#include "kir.h"

typedef struct ConvGeom {
  Shape x, y;           // input [N,CI,H,W], output [N,CO,OH,OW]
  int64_t groups, cig, cog, k, stride, pad, dil;
} ConvGeom;

static ConvGeom geometry(const Node *conv, Shape x, Shape y) {
  const ConvAttrs *c = &conv->attr.conv;
  return (ConvGeom){x, y, c->groups, x.c / c->groups, y.c / c->groups, c->kernel, c->stride, c->pad, c->dilation};
}

// ih = oh * stride - pad + kh * dilation
static KExpr *input_pos(Kernel *k, const ConvGeom *g, int o, int kk) {
  KExpr *pos = kir_mul(k, kir_ref(k, o), kir_int(k, g->stride));
  pos = kir_binary(k, KB_SUB, pos, kir_int(k, g->pad));
  return kir_add(k, pos, kir_mul(k, kir_ref(k, kk), kir_int(k, g->dil)));
}

static KExpr *in_range(Kernel *k, KExpr *pos, int64_t size) {
  return kir_binary(k, KB_AND, kir_binary(k, KB_LE, kir_int(k, 0), pos), kir_binary(k, KB_LT, pos, kir_int(k, size)));
}

// y[n,co,oh,ow] = b[co] + sum over ci,kh,kw of x[n, g*cig+ci, ih, iw] * w[co, ci, kh, kw]
static Kernel *forward(KernelBuilder *kb) {
  Kernel *k = kb->k;
  const Node *n = kb->node;
  ConvGeom g = geometry(n, n->in[0]->shape, n->shape);
  int nc, oh, ow, ci, kh, kw;
  KStmt *planes = kernel_loop(kb, k->body, "nc", g.y.n * g.y.c, &nc);
  KExpr *img = kir_binary(k, KB_DIV, kir_ref(k, nc), kir_int(k, g.y.c));
  KExpr *co = kir_binary(k, KB_MOD, kir_ref(k, nc), kir_int(k, g.y.c));
  KExpr *c0 = kir_mul(k, kir_binary(k, KB_DIV, co, kir_int(k, g.cog)), kir_int(k, g.cig));
  KStmt *rows = kernel_loop(kb, planes, "oh", g.y.h, &oh);
  KStmt *cols = kernel_loop(kb, rows, "ow", g.y.w, &ow);
  int acc = kir_var(k, "acc", KT_F32);
  kir_assign(k, cols, acc, n->nin == 3 ? kir_load(k, kb->in[2], co) : kir_float(k, 0));
  KStmt *chan = kernel_loop(kb, cols, "ci", g.cig, &ci);
  KStmt *krow = kernel_loop(kb, chan, "kh", g.k, &kh);
  KStmt *kcol = kernel_loop(kb, krow, "kw", g.k, &kw);
  KExpr *ih = input_pos(k, &g, oh, kh), *iw = input_pos(k, &g, ow, kw);
  KStmt *inside = kir_if(k, kcol, kir_binary(k, KB_AND, in_range(k, ih, g.x.h), in_range(k, iw, g.x.w)), NULL);
  KExpr *xv = kir_load(k, kb->in[0], kernel_index4(kb, g.x, img, kir_add(k, c0, kir_ref(k, ci)), ih, iw));
  Shape ws = shape4(g.y.c, g.cig, g.k, g.k);
  KExpr *wv = kir_load(k, kb->in[1], kernel_index4(kb, ws, co, kir_ref(k, ci), kir_ref(k, kh), kir_ref(k, kw)));
  kir_assign(k, inside, acc, kir_binary(k, KB_ADD, kir_ref(k, acc), kir_binary(k, KB_MUL, xv, wv)));
  kir_store(k, cols, kb->out, kernel_index4(kb, g.y, img, co, kir_ref(k, oh), kir_ref(k, ow)), kir_ref(k, acc));
  return k;
}

// dx[n,ci,ih,iw] = sum over the co of its group, kh, kw with ih = oh*s - p + kh*d of
// dy[n,co,oh,ow] * w[co, ci - g*cig, kh, kw]
static Kernel *grad_input(KernelBuilder *kb) {
  Kernel *k = kb->k;
  const Node *n = kb->node;   // conv2d_dx(dy, w), shaped like x
  ConvGeom g = geometry(n, n->shape, n->in[0]->shape);
  int nc, ih, iw, co, kh, kw;
  KStmt *planes = kernel_loop(kb, k->body, "nc", g.x.n * g.x.c, &nc);
  KExpr *img = kir_binary(k, KB_DIV, kir_ref(k, nc), kir_int(k, g.x.c));
  KExpr *ci = kir_binary(k, KB_MOD, kir_ref(k, nc), kir_int(k, g.x.c));
  KExpr *grp = kir_binary(k, KB_DIV, ci, kir_int(k, g.cig));
  KStmt *rows = kernel_loop(kb, planes, "ih", g.x.h, &ih);
  KStmt *cols = kernel_loop(kb, rows, "iw", g.x.w, &iw);
  int acc = kir_var(k, "acc", KT_F32);
  kir_assign(k, cols, acc, kir_float(k, 0));
  KStmt *outs = kernel_loop(kb, cols, "j", g.cog, &co);
  KStmt *krow = kernel_loop(kb, outs, "kh", g.k, &kh);
  KStmt *kcol = kernel_loop(kb, krow, "kw", g.k, &kw);
  // oh * s = ih + p - kh * d must be a multiple of s inside the output.
  KExpr *th = kir_binary(k, KB_SUB, kir_add(k, kir_ref(k, ih), kir_int(k, g.pad)), kir_mul(k, kir_ref(k, kh), kir_int(k, g.dil)));
  KExpr *tw = kir_binary(k, KB_SUB, kir_add(k, kir_ref(k, iw), kir_int(k, g.pad)), kir_mul(k, kir_ref(k, kw), kir_int(k, g.dil)));
  KExpr *ok = kir_binary(k, KB_AND, kir_binary(k, KB_LE, kir_int(k, 0), th), kir_binary(k, KB_LE, kir_int(k, 0), tw));
  ok = kir_binary(k, KB_AND, ok, kir_binary(k, KB_EQ, kir_binary(k, KB_MOD, th, kir_int(k, g.stride)), kir_int(k, 0)));
  ok = kir_binary(k, KB_AND, ok, kir_binary(k, KB_EQ, kir_binary(k, KB_MOD, tw, kir_int(k, g.stride)), kir_int(k, 0)));
  KExpr *oh = kir_binary(k, KB_DIV, th, kir_int(k, g.stride)), *ow = kir_binary(k, KB_DIV, tw, kir_int(k, g.stride));
  ok = kir_binary(k, KB_AND, ok, kir_binary(k, KB_AND, kir_binary(k, KB_LT, oh, kir_int(k, g.y.h)),
                                            kir_binary(k, KB_LT, ow, kir_int(k, g.y.w))));
  KStmt *inside = kir_if(k, kcol, ok, NULL);
  KExpr *cout = kir_add(k, kir_mul(k, grp, kir_int(k, g.cog)), kir_ref(k, co));
  KExpr *dy = kir_load(k, kb->in[0], kernel_index4(kb, g.y, img, cout, oh, ow));
  Shape ws = shape4(g.y.c, g.cig, g.k, g.k);
  KExpr *cil = kir_binary(k, KB_MOD, ci, kir_int(k, g.cig));
  KExpr *wv = kir_load(k, kb->in[1], kernel_index4(kb, ws, cout, cil, kir_ref(k, kh), kir_ref(k, kw)));
  kir_assign(k, inside, acc, kir_binary(k, KB_ADD, kir_ref(k, acc), kir_binary(k, KB_MUL, dy, wv)));
  kir_store(k, cols, kb->out, kernel_index4(kb, g.x, img, ci, kir_ref(k, ih), kir_ref(k, iw)), kir_ref(k, acc));
  return k;
}

// dw[co,ci,kh,kw] = sum over n,oh,ow of dy[n,co,oh,ow] * x[n, g*cig+ci, ih, iw]
static Kernel *grad_weight(KernelBuilder *kb) {
  Kernel *k = kb->k;
  const Node *n = kb->node;   // conv2d_dw(dy, x), shaped like w
  ConvGeom g = geometry(n, n->in[1]->shape, n->in[0]->shape);
  int e, img, oh, ow;
  KStmt *weights = kernel_loop(kb, k->body, "e", shape_elems(n->shape), &e);
  KExpr *kw = kir_binary(k, KB_MOD, kir_ref(k, e), kir_int(k, g.k));
  KExpr *kh = kir_binary(k, KB_MOD, kir_binary(k, KB_DIV, kir_ref(k, e), kir_int(k, g.k)), kir_int(k, g.k));
  KExpr *ci = kir_binary(k, KB_MOD, kir_binary(k, KB_DIV, kir_ref(k, e), kir_int(k, g.k * g.k)), kir_int(k, g.cig));
  KExpr *co = kir_binary(k, KB_DIV, kir_ref(k, e), kir_int(k, g.k * g.k * g.cig));
  KExpr *c0 = kir_mul(k, kir_binary(k, KB_DIV, co, kir_int(k, g.cog)), kir_int(k, g.cig));
  int acc = kir_var(k, "acc", KT_F32);
  kir_assign(k, weights, acc, kir_float(k, 0));
  KStmt *imgs = kernel_loop(kb, weights, "n", g.y.n, &img);
  KStmt *rows = kernel_loop(kb, imgs, "oh", g.y.h, &oh);
  KStmt *cols = kernel_loop(kb, rows, "ow", g.y.w, &ow);
  KExpr *ih = kir_add(k, kir_binary(k, KB_SUB, kir_mul(k, kir_ref(k, oh), kir_int(k, g.stride)), kir_int(k, g.pad)),
                      kir_mul(k, kh, kir_int(k, g.dil)));
  KExpr *iw = kir_add(k, kir_binary(k, KB_SUB, kir_mul(k, kir_ref(k, ow), kir_int(k, g.stride)), kir_int(k, g.pad)),
                      kir_mul(k, kw, kir_int(k, g.dil)));
  KStmt *inside = kir_if(k, cols, kir_binary(k, KB_AND, in_range(k, ih, g.x.h), in_range(k, iw, g.x.w)), NULL);
  KExpr *dy = kir_load(k, kb->in[0], kernel_index4(kb, g.y, kir_ref(k, img), co, kir_ref(k, oh), kir_ref(k, ow)));
  KExpr *xv = kir_load(k, kb->in[1], kernel_index4(kb, g.x, kir_ref(k, img), kir_add(k, c0, ci), ih, iw));
  kir_assign(k, inside, acc, kir_binary(k, KB_ADD, kir_ref(k, acc), kir_binary(k, KB_MUL, dy, xv)));
  kir_store(k, weights, kb->out, kir_ref(k, e), kir_ref(k, acc));
  return k;
}

Kernel *kernel_conv(KernelBuilder *kb) {
  switch (kb->node->op) {
  case OP_CONV2D: return forward(kb);
  case OP_CONV2D_DX: return grad_input(kb);
  default: return grad_weight(kb);
  }
}
