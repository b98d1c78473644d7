// kernels_depthwise.c: the GPU's depthwise convolutions (one input and one output channel a
// group), forward, input gradient and weight gradient. A product of depth k * k gains nothing
// on tensor cores: these kernels are memory-bound. A block per plane (an image's channel; for
// the weight gradient, per channel); each thread a run of RUN neighbouring outputs of a row,
// and for each kernel row the span of the input row those outputs read loaded once into
// registers, shared by the run's outputs and the row's taps. The sums over a plane (the
// batchnorm statistics) and over a channel (the weight gradient) are block sums in a fixed
// order: no atomics. (The loads are 4 bytes: a span starts at ow * s - pad, rarely aligned.)
#include "lower.h"

enum {
  THREADS = 128,
  RUN = 4,              // outputs of a row a thread computes
  MAX_TAPS = 7 * 7,
};

typedef struct Depthwise {
  KernelBuilder *kb;
  Shape x, y;           // input [N,C,H,W], output [N,C,OH,OW]
  int64_t k, s, p, d;
  int w[MAX_TAPS];      // the channel's weights, in variables
} Depthwise;

static KExpr *num(Kernel *k, int64_t v) { return kir_int(k, v); }

bool kernel_depthwise(const KernelBuilder *kb) {
  const Node *n = kb->node;   // conv2d(x, ...), conv2d_dx(dy, w) shaped like x, or conv2d_dw(dy, x)
  Shape x = n->op == OP_CONV2D ? n->in[0]->shape : n->op == OP_CONV2D_DX ? n->shape : n->in[1]->shape;
  const ConvAttrs *c = &n->attr.conv;
  bool one_chunk = n->op != OP_CONV2D_DW || n->shape.rank != 2;   // compiler/schedule.c splits none
  return kb->target->gpu && c->groups > 1 && c->groups == x.c && c->out == x.c && c->kernel <= 7 && one_chunk;
}

static Depthwise describe(KernelBuilder *kb, Shape x, Shape y) {
  const ConvAttrs *c = &kb->node->attr.conv;
  return (Depthwise){.kb = kb, .x = x, .y = y, .k = c->kernel, .s = c->stride, .p = c->pad, .d = c->dilation};
}

// The weights of channel c, w[c, 0, kh, kw], into variables.
static void load_weights(Depthwise *g, int wbuf, KExpr *c) {
  Kernel *k = g->kb->k;
  for (int i = 0; i < g->k * g->k; i++) {
    g->w[i] = kir_var(k, arena_printf(k->arena, "w%d", i), KT_F32);
    kir_assign(k, k->body, g->w[i], kir_load(k, wbuf, kir_add(k, kir_mul(k, c, num(k, g->k * g->k)), num(k, i))));
  }
}

// A loop over the block's items (a row and a run of it), THREADS at a time; *item is the
// thread's, and the returned block runs only for items < items.
static KStmt *each_item(Depthwise *g, int64_t items, KExpr **item) {
  Kernel *k = g->kb->k;
  int j;
  KStmt *loop = kernel_loop(g->kb, k->body, "j", (items + THREADS - 1) / THREADS, &j);
  *item = kernel_let(g->kb, loop, "item", kir_add(k, kir_mul(k, kir_ref(k, j), num(k, THREADS)), kir_thread(k)));
  return kir_if(k, loop, kir_lt(k, *item, num(k, items)), NULL);
}

// The thread's items as a row of a plane and the first column of a run of RUN (runs a row),
// and the run's RUN sums, each from init: the item's work goes in the returned block.
static KStmt *row_runs(Depthwise *g, int64_t items, int64_t runs, const char *row_name, const char *col_name, KExpr *init,
                       KExpr **row, KExpr **col0, int *acc) {
  Kernel *k = g->kb->k;
  KExpr *item;
  KStmt *body = each_item(g, items, &item);
  *row = kernel_let(g->kb, body, row_name, kir_div(k, item, runs));
  *col0 = kernel_let(g->kb, body, col_name, kir_mul(k, kir_mod(k, item, runs), num(k, RUN)));
  *acc = kir_array(k, "acc", KT_F32, RUN);
  for (int r = 0; r < RUN; r++)
    kir_assign_elem(k, body, *acc, r, init);
  return body;
}

// span[j] = buf[row + (c0 + j) / s] for j < len where that row is valid (row_ok; NULL: it is), c0 + j is a
// multiple of s and (c0 + j) / s lies in [0, width); 0 elsewhere (the padding, or an input
// position no output reaches in the input gradient, s > 1). Returns the register array.
static int load_span(Depthwise *g, KStmt *into, int buf, KExpr *row, KExpr *row_ok, KExpr *c0, int64_t len, int64_t s,
                     int64_t width) {
  Kernel *k = g->kb->k;
  int span = kir_array(k, "span", KT_F32, (int)len);
  row = kernel_let(g->kb, into, "row", row);
  c0 = kernel_let(g->kb, into, "c0", c0);
  if (row_ok)
    row_ok = kernel_let(g->kb, into, "row_ok", row_ok);
  for (int j = 0; j < len; j++) {
    KExpr *at = kir_add(k, c0, num(k, j));
    KExpr *ok = kir_binary(k, KB_LE, num(k, 0), at);
    if (row_ok)
      ok = kir_and(k, row_ok, ok);
    if (s > 1)
      ok = kir_and(k, ok, kir_binary(k, KB_EQ, kir_mod(k, at, s), num(k, 0)));
    KExpr *col = s > 1 ? kir_div(k, at, s) : at;
    ok = kir_and(k, ok, kir_lt(k, col, num(k, width)));
    kir_assign_elem(k, into, span, j, kernel_load_if(k, buf, ok, kir_add(k, row, col)));
  }
  return span;
}

static KExpr *in_rows(Kernel *k, KExpr *r, int64_t rows) {
  return kir_and(k, kir_binary(k, KB_LE, num(k, 0), r), kir_lt(k, r, num(k, rows)));
}

// acc[r] += sum over the row's taps kw of w[kh, kw] * x[.., ow0 + r at tap kw], for the RUN
// outputs from ow0 of output row oh: the input row's span they read, loaded once.
static void forward_row(Depthwise *g, KStmt *into, KExpr *xplane, KExpr *oh, KExpr *ow0, int kh, int acc) {
  Kernel *k = g->kb->k;
  KExpr *ih = kernel_let(g->kb, into, "ih", kir_add(k, kir_sub(k, kir_mul(k, oh, num(k, g->s)), num(k, g->p)), num(k, kh * g->d)));
  KExpr *c0 = kir_sub(k, kir_mul(k, ow0, num(k, g->s)), num(k, g->p));
  KExpr *row = kir_add(k, xplane, kir_mul(k, ih, num(k, g->x.w)));
  int span = load_span(g, into, g->kb->in[0], row, in_rows(k, ih, g->x.h), c0, (RUN - 1) * g->s + (g->k - 1) * g->d + 1, 1,
                       g->x.w);
  for (int r = 0; r < RUN; r++)
    for (int kw = 0; kw < g->k; kw++)
      kir_assign_elem(k, into, acc, r,
                      kir_fma(k, kir_elem(k, acc, r), kir_ref(k, g->w[kh * g->k + kw]), kir_elem(k, span, r * g->s + kw * g->d)));
}

// The plane's mean and sum of squared deviations, after the output at [n][2][C] as the CPU's
// plane_stats stores them (kernels_conv.c): the thread's terms, then a block sum, twice.
static void plane_stats(Depthwise *g, KExpr *plane, int64_t items, int64_t runs, int sum) {
  Kernel *k = g->kb->k;
  int partials = kir_shared(k, "the warps' partial sums", KT_F32, KIR_WARP);
  int64_t P = g->y.h * g->y.w;
  kernel_block_sum(g->kb, k->body, sum, partials);
  KExpr *mean = kernel_let(g->kb, k->body, "mean", kir_binary(k, KB_DIV, kir_ref(k, sum), kir_float(k, (double)P)));
  int m2 = kir_var(k, "m2", KT_F32);
  kir_assign(k, k->body, m2, kir_float(k, 0));
  KExpr *item;
  KStmt *body = each_item(g, items, &item);
  KExpr *first = kir_add(k, kir_mul(k, plane, num(k, P)),
                         kir_add(k, kir_mul(k, kir_div(k, item, runs), num(k, g->y.w)), kir_mul(k, kir_mod(k, item, runs), num(k, RUN))));
  for (int r = 0; r < RUN; r++) {
    KExpr *col = kir_add(k, kir_mul(k, kir_mod(k, item, runs), num(k, RUN)), num(k, r));
    KStmt *inside = kir_if(k, body, kir_lt(k, col, num(k, g->y.w)), NULL);
    KExpr *dev = kir_binary(k, KB_SUB, kir_load(k, g->kb->out, kir_add(k, first, num(k, r))), mean);
    kir_assign(k, inside, m2, kir_fma(k, kir_ref(k, m2), dev, dev));
  }
  kernel_block_sum(g->kb, k->body, m2, partials);
  KStmt *writer = kir_if(k, k->body, kir_binary(k, KB_EQ, kir_thread(k), num(k, 0)), NULL);
  KExpr *img = kir_div(k, plane, g->y.c), *c = kir_mod(k, plane, g->y.c);
  KExpr *tail;
  int stats = kernel_stats_at(g->kb, g->kb->out, g->kb->node, &tail);
  KExpr *row0 = kir_add(k, tail, kir_mul(k, img, num(k, 2 * g->y.c)));
  kir_store(k, writer, stats, kir_add(k, row0, c), mean);
  kir_store(k, writer, stats, kir_add(k, kir_add(k, row0, num(k, g->y.c)), c), kir_ref(k, m2));
}

// y[n,c,oh,ow] = b[c] + sum over taps of w[c,0,kh,kw] x[n,c,oh*s-p+kh*d, ow*s-p+kw*d]; with
// fused.stats_rows, the plane's statistics after the output.
Kernel *kernel_depthwise_forward(KernelBuilder *kb) {
  Kernel *k = kb->k;
  const Node *n = kb->node;
  Depthwise g = describe(kb, n->in[0]->shape, n->shape);
  int64_t runs = (g.y.w + RUN - 1) / RUN, items = g.y.h * runs;
  kernel_blocks(kb, g.y.n * g.y.c, THREADS);
  KExpr *plane = kernel_let(kb, k->body, "plane", kir_block_index(k));
  KExpr *c = kernel_let(kb, k->body, "c", kir_mod(k, plane, g.y.c));
  load_weights(&g, kb->in[1], c);
  KExpr *bias = n->attr.conv.bias ? kir_load(k, kb->in[2], c) : kir_float(k, 0);
  int sum = -1;   // the plane's sum, for its statistics
  if (n->fused.stats_rows) {
    sum = kir_var(k, "sum", KT_F32);
    kir_assign(k, k->body, sum, kir_float(k, 0));
  }
  KExpr *oh, *ow0;
  int acc;
  KStmt *body = row_runs(&g, items, runs, "oh", "ow0", bias, &oh, &ow0, &acc);
  KExpr *xplane = kir_mul(k, plane, num(k, g.x.h * g.x.w));
  for (int kh = 0; kh < g.k; kh++)
    forward_row(&g, body, xplane, oh, ow0, kh, acc);
  KExpr *first = kir_add(k, kir_mul(k, plane, num(k, g.y.h * g.y.w)), kir_add(k, kir_mul(k, oh, num(k, g.y.w)), ow0));
  for (int r = 0; r < RUN; r++) {
    KStmt *inside = kir_if(k, body, kir_lt(k, kir_add(k, ow0, num(k, r)), num(k, g.y.w)), NULL);
    kir_store(k, inside, kb->out, kir_add(k, first, num(k, r)), kir_elem(k, acc, r));
    if (sum >= 0)
      kir_assign(k, inside, sum, kir_binary(k, KB_ADD, kir_ref(k, sum), kir_elem(k, acc, r)));
  }
  if (sum >= 0)
    plane_stats(&g, plane, items, runs, sum);
  return k;
}

// dx[n,c,ih,iw] = sum over taps of w[c,0,kh,kw] dy[n,c,oh,ow] where ih = oh*s - p + kh*d (and so
// for the columns), plus the gradient it is summed with (a fused residual). For RUN inputs
// from iw0 and kernel row kh, the dy row's span from iw0 + p - (k-1)*d, each element at a
// multiple of s (an output position) or 0.
Kernel *kernel_depthwise_dx(KernelBuilder *kb) {
  Kernel *k = kb->k;
  const Node *n = kb->node;   // conv2d_dx(dy, w)
  Depthwise g = describe(kb, n->shape, n->in[0]->shape);
  int64_t runs = (g.x.w + RUN - 1) / RUN, items = g.x.h * runs, reach = (g.k - 1) * g.d;
  kernel_blocks(kb, g.x.n * g.x.c, THREADS);
  KExpr *plane = kernel_let(kb, k->body, "plane", kir_block_index(k));
  load_weights(&g, kb->in[1], kir_mod(k, plane, g.x.c));
  KExpr *ih, *iw0;
  int acc;
  KStmt *body = row_runs(&g, items, runs, "ih", "iw0", kir_float(k, 0), &ih, &iw0, &acc);
  KExpr *dyplane = kir_mul(k, plane, num(k, g.y.h * g.y.w));
  for (int kh = 0; kh < g.k; kh++) {
    KExpr *th = kernel_let(kb, body, "th", kir_add(k, ih, num(k, g.p - kh * g.d)));
    KExpr *row_ok = kir_and(k, kir_binary(k, KB_LE, num(k, 0), th), kir_lt(k, kir_div(k, th, g.s), num(k, g.y.h)));
    if (g.s > 1)
      row_ok = kir_and(k, row_ok, kir_binary(k, KB_EQ, kir_mod(k, th, g.s), num(k, 0)));
    KExpr *row = kir_add(k, dyplane, kir_mul(k, kir_div(k, th, g.s), num(k, g.y.w)));
    KExpr *c0 = kir_add(k, iw0, num(k, g.p - reach));
    int span = load_span(&g, body, kb->in[0], row, row_ok, c0, RUN + reach, g.s, g.y.w);
    for (int r = 0; r < RUN; r++)
      for (int kw = 0; kw < g.k; kw++)
        kir_assign_elem(k, body, acc, r,
                        kir_fma(k, kir_elem(k, acc, r), kir_ref(k, g.w[kh * g.k + kw]), kir_elem(k, span, r + reach - kw * g.d)));
  }
  KExpr *first = kir_add(k, kir_mul(k, plane, num(k, g.x.h * g.x.w)), kir_add(k, kir_mul(k, ih, num(k, g.x.w)), iw0));
  for (int r = 0; r < RUN; r++) {
    KStmt *inside = kir_if(k, body, kir_lt(k, kir_add(k, iw0, num(k, r)), num(k, g.x.w)), NULL);
    KExpr *at = kir_add(k, first, num(k, r));
    kir_store(k, inside, kb->out, at, kernel_epilogue(kb, kir_elem(k, acc, r), at));
  }
  return k;
}

// dw[c,0,kh,kw] = sum over n, oh, ow of dy[n,c,oh,ow] x[n,c,oh*s-p+kh*d, ow*s-p+kw*d]: a block
// per channel, each thread its items' k * k sums (the run's dy in registers, each input row's
// span loaded once), then a block sum per tap.
Kernel *kernel_depthwise_dw(KernelBuilder *kb) {
  Kernel *k = kb->k;
  const Node *n = kb->node;   // conv2d_dw(dy, x)
  Depthwise g = describe(kb, n->in[1]->shape, n->in[0]->shape);
  int64_t runs = (g.y.w + RUN - 1) / RUN, items = g.y.n * g.y.h * runs, taps = g.k * g.k;
  kernel_blocks(kb, g.y.c, THREADS);
  KExpr *c = kernel_let(kb, k->body, "c", kir_block_index(k));
  int sums[MAX_TAPS];
  for (int i = 0; i < taps; i++) {
    sums[i] = kir_var(k, arena_printf(k->arena, "sum%d", i), KT_F32);
    kir_assign(k, k->body, sums[i], kir_float(k, 0));
  }
  KExpr *item;
  KStmt *body = each_item(&g, items, &item);
  KExpr *img = kernel_let(kb, body, "img", kir_div(k, item, g.y.h * runs));
  KExpr *oh = kernel_let(kb, body, "oh", kir_mod(k, kir_div(k, item, runs), g.y.h));
  KExpr *ow0 = kernel_let(kb, body, "ow0", kir_mul(k, kir_mod(k, item, runs), num(k, RUN)));
  KExpr *plane = kir_add(k, kir_mul(k, img, num(k, g.y.c)), c);
  KExpr *dyrow = kir_add(k, kir_mul(k, plane, num(k, g.y.h * g.y.w)), kir_mul(k, oh, num(k, g.y.w)));
  int dy = load_span(&g, body, kb->in[0], dyrow, NULL, ow0, RUN, 1, g.y.w);
  KExpr *xplane = kir_mul(k, plane, num(k, g.x.h * g.x.w));
  for (int kh = 0; kh < g.k; kh++) {
    KExpr *ih = kernel_let(kb, body, "ih", kir_add(k, kir_sub(k, kir_mul(k, oh, num(k, g.s)), num(k, g.p)), num(k, kh * g.d)));
    KExpr *c0 = kir_sub(k, kir_mul(k, ow0, num(k, g.s)), num(k, g.p));
    int span = load_span(&g, body, kb->in[1], kir_add(k, xplane, kir_mul(k, ih, num(k, g.x.w))), in_rows(k, ih, g.x.h), c0,
                         (RUN - 1) * g.s + (g.k - 1) * g.d + 1, 1, g.x.w);
    for (int kw = 0; kw < g.k; kw++) {
      int s = sums[kh * g.k + kw];
      for (int r = 0; r < RUN; r++)
        kir_assign(k, body, s, kir_fma(k, kir_ref(k, s), kir_elem(k, dy, r), kir_elem(k, span, r * g.s + kw * g.d)));
    }
  }
  int partials = kir_shared(k, "the warps' partial sums", KT_F32, KIR_WARP);
  for (int i = 0; i < taps; i++)
    kernel_block_sum(kb, k->body, sums[i], partials);
  KStmt *writer = kir_if(k, k->body, kir_binary(k, KB_EQ, kir_thread(k), num(k, 0)), NULL);
  for (int i = 0; i < taps; i++)
    kir_store(k, writer, kb->out, kir_add(k, kir_mul(k, c, num(k, taps)), num(k, i)), kir_ref(k, sums[i]));
  return k;
}
