// kernels.c: which kernel a step node gets (the kernel rules of ops.def), and the builders
// every op file shares.
#include "lower.h"

#include <ctype.h>
#include <string.h>

// "features.0.1" -> "features_0_1", so kernel names say which layer they belong to.
static const char *c_name(Arena *a, const char *s) {
  char *out = arena_strdup(a, s);
  for (char *p = out; *p; p++)
    if (!isalnum((unsigned char)*p))
      *p = '_';
  return out;
}

// How the target stores a node's value: as the GPU's memory plan sizes it.
static KType element_type(const KernelTarget *target, const Node *n) {
  if (n->is_int)
    return KT_I64;
  return target->bf16_activations && target->step && value_bf16(target->step, n) ? KT_BF16 : KT_F32;
}

// Its elements: a tensor whose statistics are apart holds the tensor's alone.
static int64_t buffer_elems(const KernelTarget *target, const Node *n) {
  bool apart = target->step && value_stats_apart(target->step, n, target->bf16_activations);
  return apart ? shape_elems(n->shape) : node_elems(n);
}

KernelBuilder kernel_begin(Arena *a, const Node *n, const KernelTarget *target) {
  const char *layer = n->name && n->name[0] ? n->name : "step";
  const char *name = arena_printf(a, "k%d_%s_%s", n->id, op_info[n->op].name, c_name(a, layer));
  const char *ins = "";
  for (int i = 0; i < n->nin; i++)
    ins = arena_printf(a, "%s%s%s", ins, i ? ", " : "", shape_str(a, n->in[i]->shape));
  const char *comment = arena_printf(a, "%s: %s (%s) -> %s", layer, node_describe(a, n), ins, shape_str(a, n->shape));
  KernelBuilder kb = {.k = kir_kernel(a, name, comment), .node = n, .target = target, .out = -1, .stats = -1};
  const Node *apart = kernel_stats_node(target->step, target->bf16_activations, n);
  for (int i = 0; i < n->nin; i++) {
    const Node *in = n->in[i];
    const char *what = in->op == OP_PARAM || in->op == OP_STATE ? in->name : arena_printf(a, "%%%d", in->id);
    kb.in[i] = kir_buf(kb.k, what, element_type(target, in), buffer_elems(target, in));
  }
  if (!n->writes_inputs)
    kb.out = kir_buf(kb.k, arena_printf(a, "%%%d", n->id), element_type(target, n), buffer_elems(target, n));
  if (apart)
    kb.stats = kir_buf(kb.k, arena_printf(a, "chunk statistics of %%%d", apart->id), KT_F32,
                       node_elems(apart) - shape_elems(apart->shape));
  return kb;
}

const Node *kernel_stats_node(const Graph *step, bool bf16, const Node *n) {
  if (!step)
    return NULL;
  if (n->op == OP_BN_STATS && value_stats_apart(step, n->in[0], bf16))
    return n->in[0];
  return !n->writes_inputs && value_stats_apart(step, n, bf16) ? n : NULL;
}

int kernel_stats_at(const KernelBuilder *kb, int buf, const Node *of, KExpr **first) {
  *first = kir_int(kb->k, kb->stats >= 0 ? 0 : shape_elems(of->shape));
  return kb->stats >= 0 ? kb->stats : buf;
}

void kernel_blocks(KernelBuilder *kb, int64_t grid, int block) {
  kb->k->kind = KK_BLOCKS;
  kb->k->launch = (KLaunch){.grid = grid, .block = block};
}

// A butterfly: after the shuffles at distances 16, 8, 4, 2 and 1 every lane holds the same
// sum (a + b and b + a round alike), so no lane has to broadcast it.
static void warp_sum(Kernel *k, KStmt *into, int v, int other) {
  for (int d = KIR_WARP / 2; d >= 1; d /= 2) {
    kir_shuffle(k, into, KSH_XOR, other, v, d);
    kir_assign(k, into, v, kir_binary(k, KB_ADD, kir_ref(k, v), kir_ref(k, other)));
  }
}

void kernel_block_sum(KernelBuilder *kb, KStmt *into, int v, int partials) {
  Kernel *k = kb->k;
  int64_t warps = k->launch.block / KIR_WARP;
  int other = kir_var(k, "other", KT_F32);
  warp_sum(k, into, v, other);
  if (warps == 1)
    return;
  KExpr *lane = kir_mod(k, kir_thread(k), KIR_WARP);
  KStmt *first = kir_if(k, into, kir_binary(k, KB_EQ, lane, kir_int(k, 0)), NULL);
  kir_store(k, first, partials, kir_div(k, kir_thread(k), KIR_WARP), kir_ref(k, v));
  kir_barrier(k, into);
  KExpr *mine = kir_load(k, partials, kir_binary(k, KB_MIN, lane, kir_int(k, warps - 1)));
  kir_assign(k, into, v, kir_select(k, kir_lt(k, lane, kir_int(k, warps)), mine, kir_float(k, 0)));
  warp_sum(k, into, v, other);
  kir_barrier(k, into);
}

KStmt *kernel_loop(KernelBuilder *kb, KStmt *into, const char *name, int64_t extent, int *var) {
  Kernel *k = kb->k;
  *var = kir_var(k, name, KT_I64);
  bool parallel = k->kind == KK_LOOP && into == k->body && k->body->nbody == 0;
  return kir_for(k, into, *var, kir_int(k, 0), kir_int(k, extent), parallel);
}

KStmt *kernel_strided(KernelBuilder *kb, KStmt *into, const char *name, int64_t count, KExpr **item) {
  Kernel *k = kb->k;
  int64_t block = k->launch.block;
  int j;
  KStmt *loop = kernel_loop(kb, into, name, (count + block - 1) / block, &j);
  *item = kir_add(k, kir_mul(k, kir_ref(k, j), kir_int(k, block)), kir_thread(k));
  return kir_if(k, loop, kir_lt(k, *item, kir_int(k, count)), NULL);
}

KStmt *kernel_range(KernelBuilder *kb, KStmt *into, const char *name, KExpr *lo, KExpr *hi, int *var) {
  *var = kir_var(kb->k, name, KT_I64);
  return kir_for(kb->k, into, *var, lo, hi, false);
}

KExpr *kernel_load_if(Kernel *k, int buf, KExpr *ok, KExpr *index) {
  return kir_select(k, ok, kir_load(k, buf, kir_select(k, ok, index, kir_int(k, 0))), kir_float(k, 0));
}

KExpr *kernel_let(KernelBuilder *kb, KStmt *into, const char *name, KExpr *value) {
  int v = kir_var(kb->k, name, value->type);
  kir_assign(kb->k, into, v, value);
  return kir_ref(kb->k, v);
}

KExpr *kernel_index4(KernelBuilder *kb, Shape s, KExpr *n, KExpr *c, KExpr *h, KExpr *w) {
  Kernel *k = kb->k;
  KExpr *i = kir_add(k, kir_mul(k, n, kir_int(k, s.c)), c);
  i = kir_add(k, kir_mul(k, i, kir_int(k, s.h)), h);
  return kir_add(k, kir_mul(k, i, kir_int(k, s.w)), w);
}

// A uniform number in [0, 1) from (seed, step, salt, index): splitmix64's finaliser, so
// every element's draw is independent of the thread that computes it and of the device.
KExpr *kernel_hash_uniform(KernelBuilder *kb, KExpr *seed, KExpr *step, int64_t salt, KExpr *index) {
  Kernel *k = kb->k;
  KExpr *z = kir_binary(k, KB_XOR, kir_mul(k, seed, kir_int(k, (int64_t)0x9E3779B97F4A7C15ull)), step);
  z = kir_add(k, kir_mul(k, z, kir_int(k, 1000003)), kir_int(k, salt));
  z = kir_add(k, kir_mul(k, z, kir_int(k, (int64_t)0xD1B54A32D192ED03ull)), index);
  static const int64_t mul[2] = {(int64_t)0xBF58476D1CE4E5B9ull, (int64_t)0x94D049BB133111EBull};
  static const int shift[3] = {30, 27, 31};
  for (int r = 0; r < 3; r++) {
    z = kir_binary(k, KB_XOR, z, kir_binary(k, KB_SHR, z, kir_int(k, shift[r])));
    if (r < 2)
      z = kir_binary(k, KB_MUL, z, kir_int(k, mul[r]));
  }
  KExpr *top24 = kir_binary(k, KB_SHR, z, kir_int(k, 40));
  return kir_binary(k, KB_MUL, kir_cast(k, KT_F32, top24), kir_float(k, 1.0 / 16777216.0));
}

int kernel_input(const KernelBuilder *kb, const Node *operand) {
  const Node *n = kb->node;
  for (int i = 0; i < n->nin; i++)
    if (n->in[i] == operand)
      return i;
  fatal("internal error: %s '%s' does not read its fused operand %%%d", op_info[n->op].name, n->name, operand->id);
}

int kernel_operand(const KernelBuilder *kb, const Node *operand) { return kb->in[kernel_input(kb, operand)]; }

typedef Kernel *KernelRule(KernelBuilder *kb);

#define kernel_NONE NULL
static KernelRule *const kernel_rules[OP_COUNT] = {
#define OP(kind, name, arity, kernel, grad) [OP_##kind] = kernel_##kernel,
#include "ops.def"
#undef OP
};

Kernel *kernel_for(Arena *a, const Node *n, const KernelTarget *target) {
  if (!kernel_rules[n->op])
    return NULL;
  KernelBuilder kb = kernel_begin(a, n, target);
  Kernel *k = kernel_rules[n->op](&kb);
  k->flops = node_flops(n);
  kir_finish(k);
  if (k->pass1) {   // the first pass does the math; the second adds up its partial sums
    k->pass1->flops = k->flops;
    k->flops = reduction_partial_elems(n);
    kir_finish(k->pass1);
  }
  return k;
}

Kernel **kernels_by_node(Arena *a, const Graph *g, const char *prefix, const KernelTarget *target) {
  Kernel **out = arena_alloc(a, sizeof(Kernel *) * (size_t)(g->n + 1));
  KernelTarget *of_step = arena_alloc(a, sizeof *of_step);   // kernels keep a pointer to it
  *of_step = *target;
  of_step->step = g;
  for (int i = 0; i < g->n; i++) {
    out[i] = kernel_for(a, g->nodes[i], of_step);
    for (Kernel *k = out[i]; k && prefix[0]; k = k->pass1)
      k->name = arena_printf(a, "%s%s", prefix, k->name);
  }
  return out;
}
