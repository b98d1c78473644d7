// kernels_norm.c: batchnorm as PyTorch computes it. Statistics are [2,C]: the mean, then
// 1/sqrt(var + eps) with the biased variance; the running variance takes the unbiased
// one. Reductions run per channel in a fixed order (deterministic, two passes for a
// stable variance): on the CPU a channel is one iteration of the parallel loop. On the GPU
// the statistics, parameter gradients and bias gradients take two passes: a block per
// (channel, chunk of the channel's elements) sums its chunk, its threads' strided parts
// added up by kernel_block_sum, then a block per channel adds the chunks up in order.
#include "lower.h"

#include <string.h>

typedef struct Plane {
  Shape x;              // the normalised tensor
  int64_t hw, count;    // pixels per plane, elements per channel
} Plane;

static Plane plane_of(Shape x) { return (Plane){x, x.h * x.w, x.n * x.h * x.w}; }

static KExpr *at(Kernel *k, const Plane *p, KExpr *n, KExpr *c, KExpr *px) {
  return kir_add(k, kir_mul(k, kir_add(k, kir_mul(k, n, kir_int(k, p->x.c)), c), kir_int(k, p->hw)), px);
}

static KExpr *mean_of(Kernel *k, int stats, KExpr *c) { return kir_load(k, stats, c); }
static KExpr *invstd_of(Kernel *k, int stats, const Plane *p, KExpr *c) {
  return kir_load(k, stats, kir_add(k, kir_int(k, p->x.c), c));
}

// Sums term(n, px) over one channel c; returns the variable holding the sum.
typedef KExpr *Term(KernelBuilder *kb, const Plane *p, KExpr *c, KExpr *n, KExpr *px);

static int channel_sum(KernelBuilder *kb, KStmt *into, const Plane *p, KExpr *c, Term *term, const char *name) {
  Kernel *k = kb->k;
  int acc = kir_var(k, name, KT_F32), n, px;
  kir_assign(k, into, acc, kir_float(k, 0));
  KStmt *imgs = kernel_loop(kb, into, "n", p->x.n, &n);
  KStmt *pxs = kernel_loop(kb, imgs, "p", p->hw, &px);
  kir_assign(k, pxs, acc, kir_binary(k, KB_ADD, kir_ref(k, acc), term(kb, p, c, kir_ref(k, n), kir_ref(k, px))));
  return acc;
}

static KExpr *term_x(KernelBuilder *kb, const Plane *p, KExpr *c, KExpr *n, KExpr *px) {
  return kir_load(kb->k, kb->in[0], at(kb->k, p, n, c, px));
}

static KExpr *term_sq_dev(KernelBuilder *kb, const Plane *p, KExpr *c, KExpr *n, KExpr *px) {
  Kernel *k = kb->k;
  KExpr *d = kir_binary(k, KB_SUB, term_x(kb, p, c, n, px), kir_ref(k, kb->aux));
  return kir_binary(k, KB_MUL, d, d);
}

// Stores channel c's mean and 1/sqrt(sq / count + eps), given the sum of squared deviations.
static void store_stats(KernelBuilder *kb, KStmt *into, const Plane *p, KExpr *c, int mean, int sq) {
  Kernel *k = kb->k;
  KExpr *var = kir_binary(k, KB_DIV, kir_ref(k, sq), kir_float(k, (double)p->count));
  KExpr *invstd = kir_binary(k, KB_DIV, kir_float(k, 1),
                             kir_unary(k, KU_SQRT, kir_binary(k, KB_ADD, var, kir_float(k, kb->node->attr.bn.eps))));
  kir_store(k, into, kb->out, c, kir_ref(k, mean));
  kir_store(k, into, kb->out, kir_add(k, kir_int(k, p->x.c), c), invstd);
}

static Kernel *stats(KernelBuilder *kb) {
  Kernel *k = kb->k;
  Plane p = plane_of(kb->node->in[0]->shape);
  int c;
  KStmt *chans = kernel_loop(kb, k->body, "c", p.x.c, &c);
  int sum = channel_sum(kb, chans, &p, kir_ref(k, c), term_x, "sum");
  kb->aux = kir_var(k, "mean", KT_F32);
  kir_assign(k, chans, kb->aux, kir_binary(k, KB_DIV, kir_ref(k, sum), kir_float(k, (double)p.count)));
  int sq = channel_sum(kb, chans, &p, kir_ref(k, c), term_sq_dev, "sq");
  store_stats(kb, chans, &p, kir_ref(k, c), kb->aux, sq);
  return k;
}

// The statistics from the per-chunk means and squared deviations that the convolution
// before stored after its output (kernels_gemm.c), merged in chunk order (Chan et al.'s
// pairwise update: exact in exact arithmetic, and stable).
static Kernel *merged_stats(KernelBuilder *kb) {
  Kernel *k = kb->k;
  const Node *conv = kb->node->in[0];
  Plane p = plane_of(conv->shape);
  int64_t C = p.x.c, R = conv->fused.stats_rows, chunks = conv_stats_chunks(conv), rows = p.count;
  int c, j;
  KStmt *chans = kernel_loop(kb, k->body, "c", C, &c);
  int count = kir_var(k, "count", KT_F32), mean = kir_var(k, "mean", KT_F32), sq = kir_var(k, "sq", KT_F32);
  int nb = kir_var(k, "nb", KT_F32), delta = kir_var(k, "delta", KT_F32), total = kir_var(k, "total", KT_F32);
  kir_assign(k, chans, count, kir_float(k, 0));
  kir_assign(k, chans, mean, kir_float(k, 0));
  kir_assign(k, chans, sq, kir_float(k, 0));
  KStmt *each = kernel_loop(kb, chans, "j", chunks, &j);
  KExpr *tail;
  int stats = kernel_stats_at(kb, kb->in[0], conv, &tail);
  KExpr *at = kir_add(k, tail, kir_add(k, kir_mul(k, kir_ref(k, j), kir_int(k, 2 * C)), kir_ref(k, c)));
  KExpr *left = kir_sub(k, kir_int(k, rows), kir_mul(k, kir_ref(k, j), kir_int(k, R)));
  kir_assign(k, each, nb, kir_cast(k, KT_F32, kir_binary(k, KB_MIN, kir_int(k, R), left)));
  kir_assign(k, each, total, kir_binary(k, KB_ADD, kir_ref(k, count), kir_ref(k, nb)));
  kir_assign(k, each, delta, kir_binary(k, KB_SUB, kir_load(k, stats, at), kir_ref(k, mean)));
  KExpr *weight = kir_binary(k, KB_DIV, kir_ref(k, nb), kir_ref(k, total));   // nb / (na + nb)
  KExpr *cross = kir_binary(k, KB_MUL, kir_binary(k, KB_MUL, kir_ref(k, delta), kir_ref(k, delta)),
                            kir_binary(k, KB_MUL, kir_ref(k, count), weight));   // delta^2 na nb / (na + nb)
  KExpr *chunk_sq = kir_load(k, stats, kir_add(k, at, kir_int(k, C)));
  kir_assign(k, each, sq, kir_binary(k, KB_ADD, kir_ref(k, sq), kir_binary(k, KB_ADD, chunk_sq, cross)));
  kir_assign(k, each, mean, kir_fma(k, kir_ref(k, mean), kir_ref(k, delta), weight));
  kir_assign(k, each, count, kir_ref(k, total));
  store_stats(kb, chans, &p, kir_ref(k, c), mean, sq);
  return k;
}

Kernel *kernel_bn_running_stats(KernelBuilder *kb) {
  Kernel *k = kb->k;
  int64_t C = kb->node->shape.d[1];
  int c;
  KStmt *chans = kernel_loop(kb, k->body, "c", C, &c);
  kir_store(k, chans, kb->out, kir_ref(k, c), kir_load(k, kb->in[0], kir_ref(k, c)));
  KExpr *var = kir_binary(k, KB_ADD, kir_load(k, kb->in[1], kir_ref(k, c)), kir_float(k, kb->node->attr.bn.eps));
  kir_store(k, chans, kb->out, kir_add(k, kir_int(k, C), kir_ref(k, c)),
            kir_binary(k, KB_DIV, kir_float(k, 1), kir_unary(k, KU_SQRT, var)));
  return k;
}

// running = (1 - m) running + m batch, with the unbiased batch variance; counts the batch.
Kernel *kernel_bn_update_running(KernelBuilder *kb) {
  Kernel *k = kb->k;
  const Node *n = kb->node;   // (stats, running_mean, running_var, num_batches_tracked)
  Plane p = plane_of(n->in[0]->in[0]->shape);
  double m = n->attr.bn.momentum, eps = n->attr.bn.eps;
  int c;
  KStmt *chans = kernel_loop(kb, k->body, "c", p.x.c, &c);
  KExpr *invstd = invstd_of(k, kb->in[0], &p, kir_ref(k, c));
  KExpr *var = kir_binary(k, KB_SUB, kir_binary(k, KB_DIV, kir_float(k, 1), kir_binary(k, KB_MUL, invstd, invstd)),
                          kir_float(k, eps));
  KExpr *unbiased = kir_binary(k, KB_MUL, var, kir_float(k, (double)p.count / (double)(p.count > 1 ? p.count - 1 : 1)));
  KExpr *rm = kir_load(k, kb->in[1], kir_ref(k, c)), *rv = kir_load(k, kb->in[2], kir_ref(k, c));
  KExpr *keep = kir_float(k, 1 - m), *take = kir_float(k, m);
  kir_store(k, chans, kb->in[1], kir_ref(k, c), kir_binary(k, KB_ADD, kir_binary(k, KB_MUL, keep, rm),
                                                            kir_binary(k, KB_MUL, take, mean_of(k, kb->in[0], kir_ref(k, c)))));
  kir_store(k, chans, kb->in[2], kir_ref(k, c),
            kir_binary(k, KB_ADD, kir_binary(k, KB_MUL, keep, rv), kir_binary(k, KB_MUL, take, unbiased)));
  KStmt *first = kir_if(k, chans, kir_binary(k, KB_EQ, kir_ref(k, c), kir_int(k, 0)), NULL);
  kir_store(k, first, kb->in[3], kir_int(k, 0), kir_add(k, kir_load(k, kb->in[3], kir_int(k, 0)), kir_int(k, 1)));
  return k;
}

// xhat = (x - mean) * invstd at element i of channel c, x being input x_input.
static KExpr *xhat(KernelBuilder *kb, const Plane *p, int x_input, int stats_buf, KExpr *c, KExpr *i) {
  Kernel *k = kb->k;
  KExpr *x = kernel_elem(kb, x_input, i);
  return kir_binary(k, KB_MUL, kir_binary(k, KB_SUB, x, mean_of(k, stats_buf, c)), invstd_of(k, stats_buf, p, c));
}

// y = xhat * gamma + beta at element i of channel c, from buffers x_input, stats_buf,
// gamma_buf and beta_buf: the same operations in the same order wherever it is computed, so
// that the gradient kernels' recomputed y is the forward pass's (bit for bit on the CPU,
// where LLVM contracts no multiply and add into one).
static KExpr *affine(KernelBuilder *kb, const Plane *p, int x_input, int stats_buf, int gamma_buf, int beta_buf,
                     KExpr *c, KExpr *i) {
  Kernel *k = kb->k;
  KExpr *scaled = kir_binary(k, KB_MUL, xhat(kb, p, x_input, stats_buf, c, i), kir_load(k, gamma_buf, c));
  return kir_binary(k, KB_ADD, scaled, kir_load(k, beta_buf, c));
}

// dy at element i of channel c, through the fused activation's gradient when the node has
// one: from the activation's output, or from its input recomputed (fusion.c's
// take_activation_grad), x being input 1 and the statistics input 2.
static KExpr *dy_at(KernelBuilder *kb, const Plane *p, KExpr *c, KExpr *i) {
  const Fused *f = &kb->node->fused;
  KExpr *dy = kernel_elem(kb, 0, i);
  if (!f->dy_activation)
    return dy;
  KExpr *y = f->dy_output ? kernel_elem(kb, kernel_input(kb, f->dy_output), i)
                          : affine(kb, p, 1, kb->in[2], kernel_operand(kb, f->dy_gamma), kernel_operand(kb, f->dy_beta), c, i);
  return kernel_activation_grad(kb->k, f->dy_activation, dy, y);
}

// out[i] = f(element i of channel c), through the node's epilogue.
typedef KExpr *Elementwise(KernelBuilder *kb, const Plane *p, KExpr *c, KExpr *i);

// y = xhat * gamma + beta   (x, stats, gamma, beta)
static KExpr *apply_at(KernelBuilder *kb, const Plane *p, KExpr *c, KExpr *i) {
  return affine(kb, p, 0, kb->in[1], kb->in[2], kb->in[3], c, i);
}

// dx = gamma invstd / M (M dy - dbeta - xhat dgamma)   (dy, x, stats, gamma, [dgamma; dbeta])
static KExpr *dx_at(KernelBuilder *kb, const Plane *p, KExpr *c, KExpr *i) {
  Kernel *k = kb->k;
  KExpr *dy = dy_at(kb, p, c, i);
  KExpr *dgamma = kir_load(k, kb->in[4], c), *dbeta = kir_load(k, kb->in[4], kir_add(k, kir_int(k, p->x.c), c));
  KExpr *inner = kir_binary(k, KB_SUB, kir_binary(k, KB_MUL, kir_float(k, (double)p->count), dy), dbeta);
  inner = kir_binary(k, KB_SUB, inner, kir_binary(k, KB_MUL, xhat(kb, p, 1, kb->in[2], c, i), dgamma));
  KExpr *scale = kir_binary(k, KB_MUL, kir_load(k, kb->in[3], c), invstd_of(k, kb->in[2], p, c));
  return kir_binary(k, KB_MUL, kir_binary(k, KB_DIV, scale, kir_float(k, (double)p->count)), inner);
}

// dx = dy gamma invstd, statistics constant   (dy, stats, gamma)
static KExpr *dx_running_at(KernelBuilder *kb, const Plane *p, KExpr *c, KExpr *i) {
  Kernel *k = kb->k;
  KExpr *dy = dy_at(kb, p, c, i);
  return kir_binary(k, KB_MUL, dy, kir_binary(k, KB_MUL, kir_load(k, kb->in[2], c), invstd_of(k, kb->in[1], p, c)));
}

// The CPU's form: one parallel iteration per (n, c) plane, a loop over its pixels.
static Kernel *per_plane(KernelBuilder *kb, Elementwise *f) {
  Kernel *k = kb->k;
  Plane p = plane_of(kb->node->shape);
  int nc, px;
  KStmt *planes = kernel_loop(kb, k->body, "nc", p.x.n * p.x.c, &nc);
  KExpr *n = kir_binary(k, KB_DIV, kir_ref(k, nc), kir_int(k, p.x.c));
  KExpr *c = kir_binary(k, KB_MOD, kir_ref(k, nc), kir_int(k, p.x.c));
  KStmt *pxs = kernel_loop(kb, planes, "p", p.hw, &px);
  KExpr *dst = at(k, &p, n, c, kir_ref(k, px));
  kir_store(k, pxs, kb->out, dst, kernel_epilogue(kb, f(kb, &p, c, dst), dst));
  return k;
}

// The GPU's form: a thread per element (kernel_flat), or per 4 elements moved 16 bytes at a
// time (kernel_vec4) when a plane holds whole groups of 4, so that the 4 share a channel.
// Consecutive threads take consecutive elements: every warp-wide access is coalesced, and
// the grid has a block per 256 (or 1024) elements, whatever the channel count.
static KExpr *flat_value(KernelBuilder *kb, KExpr *i, Elementwise *f) {
  Plane p = plane_of(kb->node->shape);
  KExpr *c = kir_mod(kb->k, kir_div(kb->k, kb->vec_first ? kb->vec_first : i, p.hw), p.x.c);   // the 4's, one channel
  return kernel_epilogue(kb, f(kb, &p, c, i), i);
}

static KExpr *apply_value(KernelBuilder *kb, KExpr *i) { return flat_value(kb, i, apply_at); }
static KExpr *dx_value(KernelBuilder *kb, KExpr *i) { return flat_value(kb, i, dx_at); }
static KExpr *dx_running_value(KernelBuilder *kb, KExpr *i) { return flat_value(kb, i, dx_running_at); }

static Kernel *per_element(KernelBuilder *kb, Elementwise *f, KernelValue *gpu_value) {
  if (!kb->target->gpu)
    return per_plane(kb, f);
  Shape s = kb->node->shape;
  if (s.h * s.w % 4 == 0 && kernel_vec4_fits(kb->node))
    return kernel_vec4(kb, gpu_value);
  return kernel_flat(kb, gpu_value);
}

// [dgamma; dbeta] = [sum dy xhat; sum dy] per channel, both from one pass   (dy, x, stats).
// A task takes a block of channels whose planes hold at least RUN_ELEMS elements together,
// and reads them image by image, in memory order: channel by channel, a 14x14 plane is a
// run of 784 bytes every C planes, too short for the hardware's prefetch, and such a kernel
// took two to four times as long as bn_dx on 14x14 and 7x7 planes, though bn_dx reads more.
// Each plane's sums are added into its channel's, in the order of the images.
enum { RUN_ELEMS = 4096, MIN_TASKS = 16 };

static int64_t channels_a_task(const Plane *p) {
  int64_t run = (RUN_ELEMS + p->hw - 1) / p->hw, spread = (p->x.c + MIN_TASKS - 1) / MIN_TASKS;
  return run < spread ? run : spread;
}

// Channel cb B + j of block cb, in *c; returns where its statements go (past the last
// channel in a last block cut short, nowhere).
static KStmt *block_channel(Kernel *k, KStmt *into, const Plane *p, int cb, int64_t B, int j, KExpr **c) {
  *c = kir_add(k, kir_mul(k, kir_ref(k, cb), kir_int(k, B)), kir_ref(k, j));
  return p->x.c % B ? kir_if(k, into, kir_lt(k, *c, kir_int(k, p->x.c)), NULL) : into;
}

static Kernel *param_grads(KernelBuilder *kb) {
  Kernel *k = kb->k;
  Plane p = plane_of(kb->node->in[0]->shape);
  int64_t B = channels_a_task(&p);
  int cb, j, n, px;
  KStmt *blocks = kernel_loop(kb, k->body, "cb", (p.x.c + B - 1) / B, &cb);
  int sums = kir_local(k, "the block's sums of dy xhat, then of dy", KT_F32, 2 * B);
  KStmt *zero = kernel_loop(kb, blocks, "j", B, &j);
  kir_store(k, zero, sums, kir_ref(k, j), kir_float(k, 0));
  kir_store(k, zero, sums, kir_add(k, kir_ref(k, j), kir_int(k, B)), kir_float(k, 0));
  KStmt *imgs = kernel_loop(kb, blocks, "n", p.x.n, &n);
  KExpr *c;
  KStmt *each = kernel_loop(kb, imgs, "j", B, &j);
  KStmt *chans = block_channel(k, each, &p, cb, B, j, &c);
  int dgamma = kir_var(k, "dgamma", KT_F32), dbeta = kir_var(k, "dbeta", KT_F32), dy = kir_var(k, "dy", KT_F32);
  kir_assign(k, chans, dgamma, kir_float(k, 0));
  kir_assign(k, chans, dbeta, kir_float(k, 0));
  KStmt *pxs = kernel_loop(kb, chans, "p", p.hw, &px);
  KExpr *i = at(k, &p, kir_ref(k, n), c, kir_ref(k, px));
  kir_assign(k, pxs, dy, dy_at(kb, &p, c, i));
  kir_assign(k, pxs, dgamma, kir_fma(k, kir_ref(k, dgamma), kir_ref(k, dy), xhat(kb, &p, 1, kb->in[2], c, i)));
  kir_assign(k, pxs, dbeta, kir_binary(k, KB_ADD, kir_ref(k, dbeta), kir_ref(k, dy)));
  KExpr *g_at = kir_ref(k, j), *b_at = kir_add(k, kir_ref(k, j), kir_int(k, B));
  kir_store(k, chans, sums, g_at, kir_binary(k, KB_ADD, kir_load(k, sums, g_at), kir_ref(k, dgamma)));
  kir_store(k, chans, sums, b_at, kir_binary(k, KB_ADD, kir_load(k, sums, b_at), kir_ref(k, dbeta)));
  each = kernel_loop(kb, blocks, "j", B, &j);
  KStmt *out = block_channel(k, each, &p, cb, B, j, &c);
  kir_store(k, out, kb->out, c, kir_load(k, sums, kir_ref(k, j)));
  kir_store(k, out, kb->out, kir_add(k, kir_int(k, p.x.c), c), kir_load(k, sums, kir_add(k, kir_ref(k, j), kir_int(k, B))));
  return k;
}

static Kernel *channel_reduction(KernelBuilder *kb, Term *term) {
  Kernel *k = kb->k;
  Plane p = plane_of(kb->node->in[0]->shape);
  int c;
  KStmt *chans = kernel_loop(kb, k->body, "c", p.x.c, &c);
  int acc = channel_sum(kb, chans, &p, kir_ref(k, c), term, "acc");
  kir_store(k, chans, kb->out, kir_ref(k, c), kir_ref(k, acc));
  return k;
}

//
// The GPU's forms: block kernels, a block per channel or per (channel, chunk).
//
enum { REDUCE_BLOCK = 256 };

// A block kernel over the C channels; returns the shared buffer kernel_block_sum needs.
static int channel_blocks(KernelBuilder *kb, int64_t C) {
  kernel_blocks(kb, C, REDUCE_BLOCK);
  return kir_shared(kb->k, "the warps' partial sums", KT_F32, KIR_WARP);
}

static KStmt *first_thread(Kernel *k) { return kir_if(k, k->body, kir_binary(k, KB_EQ, kir_thread(k), kir_int(k, 0)), NULL); }

// The chunks' statistics merged by sums: the mean is sum(n_j mean_j) / N, and the squared
// deviations sum(m2_j + n_j (mean_j - mean)^2), both exact in exact arithmetic (Chan et
// al.), the second from deviations of the chunk means that are small. Chunk j's mean and
// squared deviations of channel c are buf[base + j 2C + c] and buf[base + j 2C + C + c]; its
// elements R, but for the last.
static Kernel *merge_chunk_stats(KernelBuilder *kb, int buf, int64_t base, const Plane *p, int64_t R) {
  Kernel *k = kb->k;
  int64_t C = p->x.c, rows = p->count, chunks = (rows + R - 1) / R;
  int partials = channel_blocks(kb, C);
  KExpr *c = kir_block_index(k);
  int acc[2];
  for (int pass = 0; pass < 2; pass++) {
    acc[pass] = kir_var(k, pass ? "sq" : "weighted", KT_F32);
    kir_assign(k, k->body, acc[pass], kir_float(k, 0));
    KExpr *j;
    KStmt *each = kernel_strided(kb, k->body, "j", chunks, &j);
    KExpr *at = kir_add(k, kir_int(k, base), kir_add(k, kir_mul(k, j, kir_int(k, 2 * C)), c));
    KExpr *nb = kir_cast(k, KT_F32, kir_binary(k, KB_MIN, kir_int(k, R), kir_sub(k, kir_int(k, rows), kir_mul(k, j, kir_int(k, R)))));
    KExpr *chunk_mean = kir_load(k, buf, at), *term;
    if (pass == 0) {
      term = kir_binary(k, KB_MUL, nb, chunk_mean);
    } else {
      KExpr *d = kir_binary(k, KB_SUB, chunk_mean, kir_ref(k, kb->aux));
      term = kir_binary(k, KB_ADD, kir_load(k, buf, kir_add(k, at, kir_int(k, C))), kir_binary(k, KB_MUL, nb, kir_binary(k, KB_MUL, d, d)));
    }
    kir_assign(k, each, acc[pass], kir_binary(k, KB_ADD, kir_ref(k, acc[pass]), term));
    kernel_block_sum(kb, k->body, acc[pass], partials);
    if (pass == 0) {
      kb->aux = kir_var(k, "mean", KT_F32);
      kir_assign(k, k->body, kb->aux, kir_binary(k, KB_DIV, kir_ref(k, acc[0]), kir_float(k, (double)rows)));
    }
  }
  store_stats(kb, first_thread(k), p, c, kb->aux, acc[1]);
  return k;
}

// The convolution before stored its chunks' statistics after its output (kernels_gemm.c), or
// in their own buffer where its output is bf16 (kernel_stats_at).
static Kernel *merged_stats_blocks(KernelBuilder *kb) {
  const Node *conv = kb->node->in[0];
  Plane p = plane_of(conv->shape);
  KExpr *first;
  int stats = kernel_stats_at(kb, kb->in[0], conv, &first);
  return merge_chunk_stats(kb, stats, first->i, &p, conv->fused.stats_rows);
}

//
// The GPU's two-pass reductions (bn_stats not merged from a convolution's chunks, bn_dparams
// and bias_grad): pass 1 runs a block per (channel, chunk of REDUCTION_CHUNK of the channel's
// elements), C x chunks blocks that fill the GPU at any batch, and stores each chunk's partial
// results (two for batchnorm's [2,C], one for a bias's [C]) after the output
// (reduction_partial_elems); pass 2, the node's own kernel, runs a block per channel that adds
// the chunks up in their order. No atomics: the sums are the same on every run.
//
enum { CHUNK_THREADS = REDUCE_BLOCK, CHUNK_ELEMS = REDUCTION_CHUNK };

typedef struct Chunk {
  Plane p;
  int width;            // elements a thread loads at once: 4 (16 bytes) where planes hold whole 4s, else 1
  int rounds;           // loads a thread makes: CHUNK_ELEMS / (CHUNK_THREADS width)
  KExpr *c, *j;         // the block's channel and chunk
} Chunk;

// Pass 1's launch: block b takes channel b / chunks, chunk b % chunks.
static Chunk chunk_blocks(KernelBuilder *kb) {
  Chunk ch = {.p = plane_of(kb->node->in[0]->shape)};
  int64_t chunks = reduction_chunks(kb->node);
  ch.width = ch.p.hw % 4 == 0 && kernel_vec4_fits(kb->node) ? 4 : 1;
  ch.rounds = CHUNK_ELEMS / (CHUNK_THREADS * ch.width);
  kernel_blocks(kb, ch.p.x.c * chunks, CHUNK_THREADS);
  kb->k->layout = arena_printf(kb->k->arena, "a block per (channel, chunk of %d elements), %d bytes a load; "
                               "partial sums after the output", CHUNK_ELEMS, 4 * ch.width);
  ch.c = kir_div(kb->k, kir_block_index(kb->k), chunks);
  ch.j = kir_mod(kb->k, kir_block_index(kb->k), chunks);
  return ch;
}

// The first of the channel's elements that round r of the thread loads: consecutive threads
// take consecutive elements (or 16 bytes), so a warp's load is coalesced.
static KExpr *round_first(Kernel *k, const Chunk *ch, int r) {
  KExpr *item = kir_add(k, kir_int(k, (int64_t)r * CHUNK_THREADS), kir_thread(k));
  return kir_add(k, kir_mul(k, ch->j, kir_int(k, CHUNK_ELEMS)), kir_mul(k, item, kir_int(k, ch->width)));
}

// The block that runs when round r's elements exist (a plane holds whole 4s, so all 4 do).
static KStmt *round_exists(Kernel *k, const Chunk *ch, int r) {
  return kir_if(k, k->body, kir_lt(k, round_first(k, ch, r), kir_int(k, ch->p.count)), NULL);
}

// Element `first` of the channel, as an index into the [N,C,H,W] tensor.
static KExpr *chunk_index(Kernel *k, const Chunk *ch, KExpr *first) {
  return at(k, &ch->p, kir_div(k, first, ch->p.hw), ch->c, kir_mod(k, first, ch->p.hw));
}

// Loads round r's elements of input `input` into a fresh register array and returns it.
static int load_round(KernelBuilder *kb, KStmt *exists, const Chunk *ch, int input, int r) {
  Kernel *k = kb->k;
  int regs = kir_array(k, "x", KT_F32, ch->width);
  KExpr *i = chunk_index(k, ch, round_first(k, ch, r));
  if (ch->width == 4)
    kir_load4(k, exists, regs, kb->in[input], i);
  else
    kir_assign_elem(k, exists, regs, 0, kir_load(k, kb->in[input], i));
  return regs;
}

// The elements chunk j holds: REDUCTION_CHUNK, but for the last.
static KExpr *chunk_count(Kernel *k, const Chunk *ch) {
  KExpr *left = kir_sub(k, kir_int(k, ch->p.count), kir_mul(k, ch->j, kir_int(k, CHUNK_ELEMS)));
  return kir_cast(k, KT_F32, kir_binary(k, KB_MIN, kir_int(k, CHUNK_ELEMS), left));
}

// Where chunk j's result r of channel c is kept, R results a chunk: after the output's R C
// elements, at R C + j R C + r C + c.
static KExpr *partial_at(Kernel *k, const Node *n, KExpr *j, int r, KExpr *c) {
  int64_t C = n->in[0]->shape.c, R = reduction_results(n);
  return kir_add(k, kir_int(k, R * C + r * C), kir_add(k, kir_mul(k, j, kir_int(k, R * C)), c));
}

// Thread 0 stores the chunk's results, the variables sums[0..R).
static void store_partials(KernelBuilder *kb, const Chunk *ch, const int *sums) {
  Kernel *k = kb->k;
  KStmt *one = first_thread(k);
  for (int r = 0; r < reduction_results(kb->node); r++)
    kir_store(k, one, kb->out, partial_at(k, kb->node, ch->j, r, ch->c), kir_ref(k, sums[r]));
}

// Pass 1 of bn_stats: the chunk's mean and its squared deviations from it, its elements kept
// in registers between the two (x is read once).
static Kernel *stats_partials(KernelBuilder *kb) {
  Kernel *k = kb->k;
  Chunk ch = chunk_blocks(kb);
  int partials = kir_shared(k, "the warps' partial sums", KT_F32, KIR_WARP);
  int sum = kir_var(k, "sum", KT_F32), sq = kir_var(k, "sq", KT_F32), mean = kir_var(k, "mean", KT_F32);
  int regs[CHUNK_ELEMS / CHUNK_THREADS];
  kir_assign(k, k->body, sum, kir_float(k, 0));
  for (int r = 0; r < ch.rounds; r++) {
    KStmt *exists = round_exists(k, &ch, r);
    regs[r] = load_round(kb, exists, &ch, 0, r);   // read again below only where it exists
    for (int e = 0; e < ch.width; e++)
      kir_assign(k, exists, sum, kir_binary(k, KB_ADD, kir_ref(k, sum), kir_elem(k, regs[r], e)));
  }
  kernel_block_sum(kb, k->body, sum, partials);
  kir_assign(k, k->body, mean, kir_binary(k, KB_DIV, kir_ref(k, sum), chunk_count(k, &ch)));
  kir_assign(k, k->body, sq, kir_float(k, 0));
  for (int r = 0; r < ch.rounds; r++) {
    KStmt *exists = round_exists(k, &ch, r);
    for (int e = 0; e < ch.width; e++) {
      KExpr *d = kir_binary(k, KB_SUB, kir_elem(k, regs[r], e), kir_ref(k, mean));
      kir_assign(k, exists, sq, kir_binary(k, KB_ADD, kir_ref(k, sq), kir_binary(k, KB_MUL, d, d)));
    }
  }
  kernel_block_sum(kb, k->body, sq, partials);
  store_partials(kb, &ch, (int[]){mean, sq});
  return k;
}

// Pass 2 of bn_stats: the chunks merged as a convolution's are.
static Kernel *stats_from_partials(KernelBuilder *kb) {
  Plane p = plane_of(kb->node->in[0]->shape);
  return merge_chunk_stats(kb, kb->out, 2 * p.x.c, &p, CHUNK_ELEMS);
}

// Whether input i is read element for element (dy, x, a fused activation's output).
static bool full_size(const Node *n, int i) { return shape_elems(n->in[i]->shape) == shape_elems(n->in[0]->shape); }

// Pass 1 of bn_dparams: the chunk's sums of dy xhat and of dy, dy through the fused
// activation's gradient; every full-size operand read 16 bytes at a time where it can be.
static Kernel *dparams_partials(KernelBuilder *kb) {
  Kernel *k = kb->k;
  const Node *n = kb->node;
  Chunk ch = chunk_blocks(kb);
  int partials = kir_shared(k, "the warps' partial sums", KT_F32, KIR_WARP);
  int dgamma = kir_var(k, "dgamma", KT_F32), dbeta = kir_var(k, "dbeta", KT_F32), dy = kir_var(k, "dy", KT_F32);
  kir_assign(k, k->body, dgamma, kir_float(k, 0));
  kir_assign(k, k->body, dbeta, kir_float(k, 0));
  for (int r = 0; r < ch.rounds; r++) {
    KStmt *exists = round_exists(k, &ch, r);
    for (int i = 0; i < n->nin; i++)
      kb->vec[i] = full_size(n, i) ? 1 + load_round(kb, exists, &ch, i, r) : 0;
    KExpr *first = round_first(k, &ch, r);
    for (kb->vec_elem = 0; kb->vec_elem < ch.width; kb->vec_elem++) {
      KExpr *i = chunk_index(k, &ch, kir_add(k, first, kir_int(k, kb->vec_elem)));   // for operands not in registers
      kir_assign(k, exists, dy, dy_at(kb, &ch.p, ch.c, i));
      KExpr *dy_xhat = kir_binary(k, KB_MUL, kir_ref(k, dy), xhat(kb, &ch.p, 1, kb->in[2], ch.c, i));
      kir_assign(k, exists, dgamma, kir_binary(k, KB_ADD, kir_ref(k, dgamma), dy_xhat));
      kir_assign(k, exists, dbeta, kir_binary(k, KB_ADD, kir_ref(k, dbeta), kir_ref(k, dy)));
    }
  }
  memset(kb->vec, 0, sizeof kb->vec);
  kb->vec_elem = 0;
  kernel_block_sum(kb, k->body, dgamma, partials);
  kernel_block_sum(kb, k->body, dbeta, partials);
  store_partials(kb, &ch, (int[]){dgamma, dbeta});
  return k;
}

// Pass 1 of bias_grad: the chunk's sum of dy, 16 bytes a load where it can be.
static Kernel *bias_partials(KernelBuilder *kb) {
  Kernel *k = kb->k;
  Chunk ch = chunk_blocks(kb);
  int partials = kir_shared(k, "the warps' partial sums", KT_F32, KIR_WARP);
  int dbias = kir_var(k, "dbias", KT_F32);
  kir_assign(k, k->body, dbias, kir_float(k, 0));
  for (int r = 0; r < ch.rounds; r++) {
    KStmt *exists = round_exists(k, &ch, r);
    int regs = load_round(kb, exists, &ch, 0, r);
    for (int e = 0; e < ch.width; e++)
      kir_assign(k, exists, dbias, kir_binary(k, KB_ADD, kir_ref(k, dbias), kir_elem(k, regs, e)));
  }
  kernel_block_sum(kb, k->body, dbias, partials);
  store_partials(kb, &ch, &dbias);
  return k;
}

// Pass 2 of bn_dparams and bias_grad: each of channel c's results, the chunks' sums added up
// in chunk order (the variables named names[r]).
static Kernel *sums_from_partials(KernelBuilder *kb, const char *const *names) {
  Kernel *k = kb->k;
  const Node *n = kb->node;
  int64_t C = n->in[0]->shape.c;
  int R = reduction_results(n), partials = channel_blocks(kb, C), acc[2];
  KExpr *c = kir_block_index(k), *j;
  for (int r = 0; r < R; r++) {
    acc[r] = kir_var(k, names[r], KT_F32);
    kir_assign(k, k->body, acc[r], kir_float(k, 0));
  }
  KStmt *each = kernel_strided(kb, k->body, "j", reduction_chunks(n), &j);
  for (int r = 0; r < R; r++)
    kir_assign(k, each, acc[r], kir_binary(k, KB_ADD, kir_ref(k, acc[r]), kir_load(k, kb->out, partial_at(k, n, j, r, c))));
  for (int r = 0; r < R; r++)
    kernel_block_sum(kb, k->body, acc[r], partials);
  KStmt *one = first_thread(k);
  for (int r = 0; r < R; r++)
    kir_store(k, one, kb->out, kir_add(k, kir_int(k, r * C), c), kir_ref(k, acc[r]));
  return k;
}

static Kernel *dparams_from_partials(KernelBuilder *kb) { return sums_from_partials(kb, (const char *[]){"dgamma", "dbeta"}); }
static Kernel *bias_from_partials(KernelBuilder *kb) { return sums_from_partials(kb, (const char *[]){"dbias"}); }

// The node's kernel is pass 2; pass 1, its own kernel on the same buffers, is launched just
// before it (Kernel.pass1).
static Kernel *two_passes(KernelBuilder *kb, Kernel *(*pass1)(KernelBuilder *), Kernel *(*pass2)(KernelBuilder *)) {
  Arena *a = kb->k->arena;
  KernelBuilder first = kernel_begin(a, kb->node, kb->target);
  first.k->name = arena_printf(a, "%s_partials", first.k->name);
  first.k->comment = arena_printf(a, "%s; pass 1 of 2: partial sums per chunk, stored after the output", first.k->comment);
  Kernel *k = pass2(kb);
  k->layout = "a block per channel, adding up pass 1's partial sums in chunk order";
  k->pass1 = pass1(&first);
  return k;
}

//
// The ops: the reductions in their GPU form on the GPU.
//
Kernel *kernel_bn_stats(KernelBuilder *kb) {
  bool merged = kb->node->in[0]->fused.stats_rows;   // the convolution's chunks
  if (kb->target->gpu)
    return merged ? merged_stats_blocks(kb) : two_passes(kb, stats_partials, stats_from_partials);
  return merged ? merged_stats(kb) : stats(kb);
}

Kernel *kernel_bn_dparams(KernelBuilder *kb) {
  return kb->target->gpu ? two_passes(kb, dparams_partials, dparams_from_partials) : param_grads(kb);
}

// The sum of dy per channel.
Kernel *kernel_bias_grad(KernelBuilder *kb) {
  return kb->target->gpu ? two_passes(kb, bias_partials, bias_from_partials) : channel_reduction(kb, term_x);
}

Kernel *kernel_bn_apply(KernelBuilder *kb) { return per_element(kb, apply_at, apply_value); }
Kernel *kernel_bn_dx(KernelBuilder *kb) { return per_element(kb, dx_at, dx_value); }
Kernel *kernel_bn_dx_running(KernelBuilder *kb) { return per_element(kb, dx_running_at, dx_running_value); }
