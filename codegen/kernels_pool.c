// kernels_pool.c: max and average pooling (PyTorch's rules: -inf padding for max,
// padding counted in the average) and global average pooling, with their gradients.
// On the CPU, gradients are computed per (n, c) plane in one iteration, so overlapping
// windows accumulate in a fixed order. On the GPU max pooling runs a thread per element,
// consecutive threads along a row (coalesced, a block per 256 elements): the forward pass a
// thread per output, the gradient a thread per 4 inputs of a column that gathers dy from the
// windows whose first maximum each is, in the order the CPU's scatter adds them (the same
// sum, bit for bit; no atomics).
#include "lower.h"

#include <math.h>

typedef struct Window {
  KExpr *n, *c;         // the plane
  int oh, ow, kh, kw;   // variables: the output position, the tap
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

// The GPU's outputs: a parallel loop over every element of y, n, c, oh and ow taken from it.
static KStmt *flat_outputs(KernelBuilder *kb, Shape y, Window *w) {
  Kernel *k = kb->k;
  int o;
  KStmt *each = kernel_loop(kb, k->body, "o", shape_elems(y), &o);
  KExpr *nc = kir_div(k, kir_ref(k, o), y.h * y.w);
  w->n = kir_div(k, nc, y.c);
  w->c = kir_mod(k, nc, y.c);
  w->oh = kir_var(k, "oh", KT_I64);
  w->ow = kir_var(k, "ow", KT_I64);
  kir_assign(k, each, w->oh, kir_mod(k, kir_div(k, kir_ref(k, o), y.w), y.h));
  kir_assign(k, each, w->ow, kir_mod(k, kir_ref(k, o), y.w));
  return each;
}

static Kernel *pool_forward(KernelBuilder *kb, bool max) {
  Kernel *k = kb->k;
  Shape x = kb->node->in[0]->shape, y = kb->node->shape;
  Window w;
  KStmt *out = kb->target->gpu ? flat_outputs(kb, y, &w) : output_loops(kb, x, y, false, &w);
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

// The flat index in x of the first maximum of window w (a variable; -1 for a window wholly
// in the padding), as PyTorch picks it.
static int first_max(KernelBuilder *kb, KStmt *into, Shape x, int x_buf, Window *w) {
  Kernel *k = kb->k;
  int best = kir_var(k, "best", KT_F32), arg = kir_var(k, "arg", KT_I64);
  kir_assign(k, into, best, kir_float(k, -INFINITY));
  kir_assign(k, into, arg, kir_int(k, -1));
  KStmt *inside = window_loops(kb, into, x, w);
  KExpr *at = kernel_index4(kb, x, w->n, w->c, w->ih, w->iw);
  KStmt *better = kir_if(k, inside, kir_binary(k, KB_LT, kir_ref(k, best), kir_load(k, x_buf, at)), NULL);
  kir_assign(k, better, best, kir_load(k, x_buf, at));
  kir_assign(k, better, arg, at);
  return arg;
}

// maxpool_grad(dy, x): dy goes to the first maximum of each window, as in PyTorch.
static Kernel *maxpool_grad_scatter(KernelBuilder *kb) {
  Kernel *k = kb->k;
  Shape y = kb->node->in[0]->shape, x = kb->node->shape;
  Window w;
  KStmt *out = output_loops(kb, x, y, true, &w);
  int arg = first_max(kb, out, x, kb->in[1], &w);
  KExpr *dy = kir_load(k, kb->in[0], kernel_index4(kb, y, w.n, w.c, kir_ref(k, w.oh), kir_ref(k, w.ow)));
  KStmt *found = kir_if(k, out, kir_binary(k, KB_LE, kir_int(k, 0), kir_ref(k, arg)), NULL);
  kir_store(k, found, kb->out, kir_ref(k, arg), kir_binary(k, KB_ADD, kir_load(k, kb->out, kir_ref(k, arg)), dy));
  return k;
}

// The first output row (or column) whose window may hold input row `in`, of the `reach` that may.
static KExpr *first_window(Kernel *k, const PoolAttrs *p, KExpr *in, int64_t reach) {
  return kir_sub(k, kir_div(k, kir_add(k, in, kir_int(k, p->pad)), p->stride), kir_int(k, reach - 1));
}

// Whether output position o (a row or column of `outputs`) exists and its window reaches input `in`.
static KExpr *window_holds(Kernel *k, const PoolAttrs *p, KExpr *o, int64_t outputs, KExpr *in) {
  KExpr *exists = kir_and(k, kir_binary(k, KB_LE, kir_int(k, 0), o), kir_lt(k, o, kir_int(k, outputs)));
  KExpr *end = kir_add(k, kir_sub(k, kir_mul(k, o, kir_int(k, p->stride)), kir_int(k, p->pad)), kir_int(k, p->kernel));
  return kir_and(k, exists, kir_lt(k, in, end));
}

// Whether output row o (of `outputs`) exists and its window shares a row with input rows [lo, hi).
static KExpr *window_meets(Kernel *k, const PoolAttrs *p, KExpr *o, int64_t outputs, KExpr *lo, KExpr *hi) {
  KExpr *start = kir_sub(k, kir_mul(k, o, kir_int(k, p->stride)), kir_int(k, p->pad));
  return kir_and(k, window_holds(k, p, o, outputs, lo), kir_lt(k, start, hi));
}

// The GPU's maxpool_grad: a thread per GATHER_ROWS inputs of a column (consecutive threads
// along a row, so every access of a warp is as coalesced as one thread per input). It visits
// the windows that meet its inputs once each, in row-major order of the outputs, finds each
// window's first maximum again from x, and adds dy to the input that is it: each input sums
// the same terms in the order the CPU's scatter adds them. A window that 3x3 stride-2 pooling
// shares between rows is searched once, not once per row.
enum { GATHER_ROWS = 4 };

static Kernel *maxpool_grad_gather(KernelBuilder *kb) {
  Kernel *k = kb->k;
  const PoolAttrs *p = &kb->node->attr.pool;
  Shape y = kb->node->in[0]->shape, x = kb->node->shape;
  int64_t reach = (p->kernel + p->stride - 1) / p->stride;   // windows along a row that hold an input
  int64_t groups = (x.h + GATHER_ROWS - 1) / GATHER_ROWS;
  int64_t rows = (GATHER_ROWS - 1 + p->stride - 1) / p->stride + reach;   // window rows that may meet the group's
  int t, a, b;
  KStmt *each = kernel_loop(kb, k->body, "t", x.n * x.c * groups * x.w, &t);
  KExpr *nc = kir_div(k, kir_ref(k, t), groups * x.w);
  KExpr *ih = kernel_let(kb, each, "ih", kir_mul(k, kir_mod(k, kir_div(k, kir_ref(k, t), x.w), groups), kir_int(k, GATHER_ROWS)));
  KExpr *iw = kernel_let(kb, each, "iw", kir_mod(k, kir_ref(k, t), x.w));
  KExpr *first = kernel_let(kb, each, "first", kir_add(k, kir_mul(k, kir_add(k, kir_mul(k, nc, kir_int(k, x.h)), ih), kir_int(k, x.w)), iw));
  int acc = kir_array(k, "acc", KT_F32, GATHER_ROWS);
  for (int g = 0; g < GATHER_ROWS; g++)
    kir_assign_elem(k, each, acc, g, kir_float(k, 0));
  Window w = {.n = kir_div(k, nc, x.c), .c = kir_mod(k, nc, x.c), .oh = kir_var(k, "oh", KT_I64), .ow = kir_var(k, "ow", KT_I64)};
  KStmt *wrows = kernel_loop(kb, each, "a", rows, &a);
  kir_assign(k, wrows, w.oh, kir_add(k, first_window(k, p, ih, reach), kir_ref(k, a)));
  KStmt *wcols = kernel_loop(kb, wrows, "b", reach, &b);
  kir_assign(k, wcols, w.ow, kir_add(k, first_window(k, p, iw, reach), kir_ref(k, b)));
  KExpr *meets = window_meets(k, p, kir_ref(k, w.oh), y.h, ih, kir_add(k, ih, kir_int(k, GATHER_ROWS)));
  KStmt *holds = kir_if(k, wcols, kir_and(k, meets, window_holds(k, p, kir_ref(k, w.ow), y.w, iw)), NULL);
  int arg = first_max(kb, holds, x, kb->in[1], &w);
  KExpr *dy = kernel_let(kb, holds, "dy", kir_load(k, kb->in[0], kernel_index4(kb, y, w.n, w.c, kir_ref(k, w.oh), kir_ref(k, w.ow))));
  for (int g = 0; g < GATHER_ROWS; g++) {
    KExpr *mine = kir_binary(k, KB_EQ, kir_ref(k, arg), kir_add(k, first, kir_int(k, (int64_t)g * x.w)));
    kir_assign_elem(k, kir_if(k, holds, mine, NULL), acc, g, kir_binary(k, KB_ADD, kir_elem(k, acc, g), dy));
  }
  for (int g = 0; g < GATHER_ROWS; g++) {
    KExpr *inside = kir_lt(k, kir_add(k, ih, kir_int(k, g)), kir_int(k, x.h));
    KStmt *store = x.h % GATHER_ROWS ? kir_if(k, each, inside, NULL) : each;
    kir_store(k, store, kb->out, kir_add(k, first, kir_int(k, (int64_t)g * x.w)), kir_elem(k, acc, g));
  }
  return k;
}

Kernel *kernel_maxpool_grad(KernelBuilder *kb) {
  return kb->target->gpu ? maxpool_grad_gather(kb) : maxpool_grad_scatter(kb);
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
