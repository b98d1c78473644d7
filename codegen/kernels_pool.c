// kernels_pool.c: max and average pooling (PyTorch's rules: -inf padding for max,
// padding counted in the average) and global average pooling, with their gradients.
// Gradients are computed per (n, c) plane in one iteration, so overlapping windows
// accumulate in a fixed order.
#include "lower.h"

#include <math.h>

typedef struct Window {
  KExpr *n, *c;         // the plane
  int oh, ow, kh, kw;   // loop variables
  KExpr *ih, *iw;       // the input position of (oh, ow, kh, kw)
} Window;

// for nc, (zero the dx plane), oh, ow: returns the per-output block.
static KStmt *output_loops(KernelBuilder *kb, Shape x, Shape y, bool zero_plane, Window *w) {
  Kernel *k = kb->k;
  int nc;
  KStmt *planes = kernel_loop(kb, k->body, "nc", x.n * x.c, &nc);
  w->n = kir_binary(k, KB_DIV, kir_ref(k, nc), kir_int(k, x.c));
  w->c = kir_binary(k, KB_MOD, kir_ref(k, nc), kir_int(k, x.c));
  if (zero_plane) {
    int px;
    KStmt *zero = kernel_loop(kb, planes, "p", x.h * x.w, &px);
    KExpr *at = kir_add(k, kir_mul(k, kir_ref(k, nc), kir_int(k, x.h * x.w)), kir_ref(k, px));
    kir_store(k, zero, kb->out, at, kir_float(k, 0));
  }
  KStmt *rows = kernel_loop(kb, planes, "oh", y.h, &w->oh);
  return kernel_loop(kb, rows, "ow", y.w, &w->ow);
}

// for kh, kw inside out: returns the block that runs when (ih, iw) is inside the input.
static KStmt *window_loops(KernelBuilder *kb, KStmt *out, Shape x, Window *w) {
  Kernel *k = kb->k;
  const PoolAttrs *p = &kb->node->attr.pool;
  KStmt *krow = kernel_loop(kb, out, "kh", p->kernel, &w->kh);
  KStmt *kcol = kernel_loop(kb, krow, "kw", p->kernel, &w->kw);
  w->ih = kir_add(k, kir_binary(k, KB_SUB, kir_mul(k, kir_ref(k, w->oh), kir_int(k, p->stride)), kir_int(k, p->pad)),
                  kir_ref(k, w->kh));
  w->iw = kir_add(k, kir_binary(k, KB_SUB, kir_mul(k, kir_ref(k, w->ow), kir_int(k, p->stride)), kir_int(k, p->pad)),
                  kir_ref(k, w->kw));
  KExpr *in_h = kir_binary(k, KB_AND, kir_binary(k, KB_LE, kir_int(k, 0), w->ih), kir_binary(k, KB_LT, w->ih, kir_int(k, x.h)));
  KExpr *in_w = kir_binary(k, KB_AND, kir_binary(k, KB_LE, kir_int(k, 0), w->iw), kir_binary(k, KB_LT, w->iw, kir_int(k, x.w)));
  return kir_if(k, kcol, kir_binary(k, KB_AND, in_h, in_w), NULL);
}

static Kernel *pool_forward(KernelBuilder *kb, bool max) {
  Kernel *k = kb->k;
  Shape x = kb->node->in[0]->shape, y = kb->node->shape;
  Window w;
  KStmt *out = output_loops(kb, x, y, false, &w);
  int acc = kir_var(k, "acc", KT_F32);
  kir_assign(k, out, acc, kir_float(k, max ? -INFINITY : 0));
  KStmt *inside = window_loops(kb, out, x, &w);
  KExpr *v = kir_load(k, kb->in[0], kernel_index4(kb, x, w.n, w.c, w.ih, w.iw));
  kir_assign(k, inside, acc, max ? kir_binary(k, KB_MAX, kir_ref(k, acc), v) : kir_binary(k, KB_ADD, kir_ref(k, acc), v));
  int64_t area = kb->node->attr.pool.kernel * kb->node->attr.pool.kernel;
  KExpr *result = max ? kir_ref(k, acc) : kir_binary(k, KB_DIV, kir_ref(k, acc), kir_float(k, (double)area));
  kir_store(k, out, kb->out, kernel_index4(kb, y, w.n, w.c, kir_ref(k, w.oh), kir_ref(k, w.ow)), result);
  return k;
}

// maxpool_grad(dy, x): dy goes to the first maximum of each window, as in PyTorch.
Kernel *kernel_maxpool_grad(KernelBuilder *kb) {
  Kernel *k = kb->k;
  Shape y = kb->node->in[0]->shape, x = kb->node->shape;
  Window w;
  KStmt *out = output_loops(kb, x, y, true, &w);
  int best = kir_var(k, "best", KT_F32), arg = kir_var(k, "arg", KT_I64);
  kir_assign(k, out, best, kir_float(k, -INFINITY));
  kir_assign(k, out, arg, kir_int(k, -1));
  KStmt *inside = window_loops(kb, out, x, &w);
  KExpr *at = kernel_index4(kb, x, w.n, w.c, w.ih, w.iw);
  KStmt *better = kir_if(k, inside, kir_binary(k, KB_LT, kir_ref(k, best), kir_load(k, kb->in[1], at)), NULL);
  kir_assign(k, better, best, kir_load(k, kb->in[1], at));
  kir_assign(k, better, arg, at);
  KExpr *dy = kir_load(k, kb->in[0], kernel_index4(kb, y, w.n, w.c, kir_ref(k, w.oh), kir_ref(k, w.ow)));
  KStmt *found = kir_if(k, out, kir_binary(k, KB_LE, kir_int(k, 0), kir_ref(k, arg)), NULL);
  kir_store(k, found, kb->out, kir_ref(k, arg), kir_binary(k, KB_ADD, kir_load(k, kb->out, kir_ref(k, arg)), dy));
  return k;
}

// avgpool_grad(dy): each window spreads dy / area over its inputs.
Kernel *kernel_avgpool_grad(KernelBuilder *kb) {
  Kernel *k = kb->k;
  Shape y = kb->node->in[0]->shape, x = kb->node->shape;
  Window w;
  KStmt *out = output_loops(kb, x, y, true, &w);
  KStmt *inside = window_loops(kb, out, x, &w);
  int64_t area = kb->node->attr.pool.kernel * kb->node->attr.pool.kernel;
  KExpr *share = kir_binary(k, KB_DIV, kir_load(k, kb->in[0], kernel_index4(kb, y, w.n, w.c, kir_ref(k, w.oh), kir_ref(k, w.ow))),
                            kir_float(k, (double)area));
  KExpr *at = kernel_index4(kb, x, w.n, w.c, w.ih, w.iw);
  kir_store(k, inside, kb->out, at, kir_binary(k, KB_ADD, kir_load(k, kb->out, at), share));
  return k;
}

static Kernel *global_pool(KernelBuilder *kb, bool grad) {
  Kernel *k = kb->k;
  Shape x = grad ? kb->node->shape : kb->node->in[0]->shape;
  int64_t hw = x.h * x.w;
  int nc, px;
  KStmt *planes = kernel_loop(kb, k->body, "nc", x.n * x.c, &nc);
  KExpr *at = kir_add(k, kir_mul(k, kir_ref(k, nc), kir_int(k, hw)), kir_ref(k, px = kir_var(k, "p", KT_I64)));
  if (grad) {
    KStmt *pxs = kir_for(k, planes, px, kir_int(k, 0), kir_int(k, hw), false);
    KExpr *share = kir_binary(k, KB_DIV, kir_load(k, kb->in[0], kir_ref(k, nc)), kir_float(k, (double)hw));
    kir_store(k, pxs, kb->out, at, share);
    return k;
  }
  int acc = kir_var(k, "acc", KT_F32);
  kir_assign(k, planes, acc, kir_float(k, 0));
  KStmt *pxs = kir_for(k, planes, px, kir_int(k, 0), kir_int(k, hw), false);
  kir_assign(k, pxs, acc, kir_binary(k, KB_ADD, kir_ref(k, acc), kir_load(k, kb->in[0], at)));
  kir_store(k, planes, kb->out, kir_ref(k, nc), kir_binary(k, KB_DIV, kir_ref(k, acc), kir_float(k, (double)hw)));
  return k;
}

Kernel *kernel_maxpool(KernelBuilder *kb) { return pool_forward(kb, true); }
Kernel *kernel_avgpool(KernelBuilder *kb) { return pool_forward(kb, false); }
Kernel *kernel_global_avg_pool(KernelBuilder *kb) { return global_pool(kb, false); }
Kernel *kernel_global_avg_pool_grad(KernelBuilder *kb) { return global_pool(kb, true); }
