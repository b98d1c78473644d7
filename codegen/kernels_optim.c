// kernels_optim.c: the optimizer steps, as torch.optim defines them. The learning rate
// is the configured one times the schedule's factor for this step (the lr tensor, set by
// the training loop); Adam's step count is the seed tensor's second element. Each update's
// math is written once, per element, over operands wherever they lie: a node's own buffers
// (its kernel, either device), or the arena itself at the plan's offsets (the GPU's update of
// many parameters in one launch, kernel_optim_group).
#include "lower.h"

#include <math.h>

// Where an update's operands are: element i of operand j (the node's input j) is
// buf[j][base[j] + i]. An int64 operand (the seed) has its own buffer.
typedef struct Operands {
  int buf[MAX_INPUTS];
  int64_t base[MAX_INPUTS];
} Operands;

static KExpr *index_of(Kernel *k, const Operands *o, int j, KExpr *i) {
  return o->base[j] ? kir_add(k, kir_int(k, o->base[j]), i) : i;
}

static KExpr *load(Kernel *k, const Operands *o, int j, KExpr *i) { return kir_load(k, o->buf[j], index_of(k, o, j, i)); }

static void store(Kernel *k, KStmt *into, const Operands *o, int j, KExpr *i, KExpr *v) {
  kir_store(k, into, o->buf[j], index_of(k, o, j, i), v);
}

// sgd_update(p, g, lr[, buf]): g += wd p; buf = mu buf + g; p -= lr (nesterov ? g + mu buf : buf)
static void sgd_element(Kernel *k, KStmt *all, const Node *n, const Operands *ops, KExpr *i) {
  const OptAttrs *o = &n->attr.opt;
  KExpr *p = load(k, ops, 0, i);
  int g = kir_var(k, "g", KT_F32);
  kir_assign(k, all, g, load(k, ops, 1, i));
  if (o->weight_decay)
    kir_assign(k, all, g, kir_binary(k, KB_ADD, kir_ref(k, g), kir_binary(k, KB_MUL, kir_float(k, o->weight_decay), p)));
  KExpr *step = kir_ref(k, g);
  if (n->nin == 4) {
    KExpr *buf = kir_binary(k, KB_ADD, kir_binary(k, KB_MUL, kir_float(k, o->momentum), load(k, ops, 3, i)), kir_ref(k, g));
    store(k, all, ops, 3, i, buf);
    KExpr *now = load(k, ops, 3, i);
    step = o->nesterov ? kir_binary(k, KB_ADD, kir_ref(k, g), kir_binary(k, KB_MUL, kir_float(k, o->momentum), now)) : now;
  }
  KExpr *lr = kir_binary(k, KB_MUL, kir_float(k, o->lr), load(k, ops, 2, kir_int(k, 0)));
  store(k, all, ops, 0, i, kir_binary(k, KB_SUB, p, kir_binary(k, KB_MUL, lr, step)));
}

// adam_update(p, g, lr, m, v, seed): Adam, or AdamW when the decay is decoupled.
static void adam_element(Kernel *k, KStmt *all, const Node *n, const Operands *ops, KExpr *i) {
  const OptAttrs *o = &n->attr.opt;
  int p = kir_var(k, "p", KT_F32), g = kir_var(k, "g", KT_F32);
  kir_assign(k, all, p, load(k, ops, 0, i));
  kir_assign(k, all, g, load(k, ops, 1, i));
  KExpr *lr = kir_binary(k, KB_MUL, kir_float(k, o->lr), load(k, ops, 2, kir_int(k, 0)));
  if (o->weight_decay && o->decoupled)
    kir_assign(k, all, p, kir_binary(k, KB_MUL, kir_ref(k, p),
                                     kir_binary(k, KB_SUB, kir_float(k, 1), kir_binary(k, KB_MUL, lr, kir_float(k, o->weight_decay)))));
  else if (o->weight_decay)
    kir_assign(k, all, g, kir_binary(k, KB_ADD, kir_ref(k, g), kir_binary(k, KB_MUL, kir_float(k, o->weight_decay), kir_ref(k, p))));
  KExpr *m = kir_binary(k, KB_ADD, kir_binary(k, KB_MUL, kir_float(k, o->beta1), load(k, ops, 3, i)),
                        kir_binary(k, KB_MUL, kir_float(k, 1 - o->beta1), kir_ref(k, g)));
  KExpr *v = kir_binary(k, KB_ADD, kir_binary(k, KB_MUL, kir_float(k, o->beta2), load(k, ops, 4, i)),
                        kir_binary(k, KB_MUL, kir_float(k, 1 - o->beta2), kir_binary(k, KB_MUL, kir_ref(k, g), kir_ref(k, g))));
  store(k, all, ops, 3, i, m);
  store(k, all, ops, 4, i, v);
  // Bias corrections 1 - beta^t, with t the step count (1 on the first step).
  KExpr *t = kir_cast(k, KT_F32, load(k, ops, 5, kir_int(k, 1)));
  KExpr *c1 = kir_binary(k, KB_SUB, kir_float(k, 1), kir_unary(k, KU_EXP, kir_binary(k, KB_MUL, t, kir_float(k, log(o->beta1)))));
  KExpr *c2 = kir_binary(k, KB_SUB, kir_float(k, 1), kir_unary(k, KU_EXP, kir_binary(k, KB_MUL, t, kir_float(k, log(o->beta2)))));
  KExpr *mhat = kir_binary(k, KB_DIV, load(k, ops, 3, i), c1);
  KExpr *vhat = kir_binary(k, KB_DIV, load(k, ops, 4, i), c2);
  KExpr *denom = kir_binary(k, KB_ADD, kir_unary(k, KU_SQRT, vhat), kir_float(k, o->eps));
  store(k, all, ops, 0, i, kir_binary(k, KB_SUB, kir_ref(k, p), kir_binary(k, KB_MUL, lr, kir_binary(k, KB_DIV, mhat, denom))));
}

static void update_element(Kernel *k, KStmt *all, const Node *n, const Operands *ops, KExpr *i) {
  (n->op == OP_ADAM_UPDATE ? adam_element : sgd_element)(k, all, n, ops, i);
}

// A node's own kernel: a loop over the parameter's elements, on its buffers.
static Kernel *own_update(KernelBuilder *kb) {
  const Node *n = kb->node;
  Operands ops = {{0}};
  for (int j = 0; j < n->nin; j++)
    ops.buf[j] = kb->in[j];
  int i;
  KStmt *all = kernel_loop(kb, kb->k->body, "i", shape_elems(n->shape), &i);
  update_element(kb->k, all, n, &ops, kir_ref(kb->k, i));
  return kb->k;
}

// Whether the update of n writes its input j: the parameter, and the state it keeps (SGD's
// momentum buffer, Adam's two moments), as sgd_element and adam_element store them.
static bool update_writes(const Node *n, int j) {
  if (n->op == OP_ADAM_UPDATE)
    return j == 0 || j == 3 || j == 4;
  return j == 0 || j == 3;
}

// The bytes the node's update moves at least, without building its kernel: every operand
// is read, those it updates written too (a bias gradient's partial sums after it are not
// read).
static int64_t update_min_bytes(const Node *n) {
  int64_t bytes = 0;
  for (int j = 0; j < n->nin; j++)
    bytes += node_result_elems(n->in[j]) * (n->in[j]->is_int ? 8 : 4) * (update_writes(n, j) ? 2 : 1);
  return bytes;
}

Kernel *kernel_sgd_update(KernelBuilder *kb) { return own_update(kb); }
Kernel *kernel_adam_update(KernelBuilder *kb) { return own_update(kb); }

bool kernel_is_update(const Node *n) { return n->op == OP_SGD_UPDATE || n->op == OP_ADAM_UPDATE; }

//
// The GPU's update of many parameters in one launch. Its two buffers are the whole arena,
// as floats and as int64 (the seed); every operand is at its constant offset in the plan.
// Parameter t takes blocks [first_t, first_t + blocks_t), each thread GROUP_PER_THREAD of its
// elements, consecutive threads on consecutive elements; a block finds its parameter by a
// binary search over the first blocks, in constants.
//
enum { GROUP_BLOCK = 256, GROUP_PER_THREAD = 4, GROUP_BLOCK_ELEMS = GROUP_BLOCK * GROUP_PER_THREAD };

typedef struct Group {
  Node *const *nodes;
  int n;
  const int64_t *offset;   // arena bytes by node id
  int64_t *first;          // the first block of each parameter, then the total
  int floats, ints;        // the buffers
} Group;

// Parameter t's update in its blocks, block the block's index among them.
static void group_member(Kernel *k, KStmt *into, const Group *gr, int t, KExpr *block) {
  const Node *n = gr->nodes[t];
  Operands ops;
  for (int j = 0; j < n->nin; j++) {
    bool is_int = n->in[j]->is_int;
    ops.buf[j] = is_int ? gr->ints : gr->floats;
    ops.base[j] = gr->offset[n->in[j]->id] / (is_int ? 8 : 4);
  }
  int r = kir_var(k, "r", KT_I64);
  KStmt *each = kir_for(k, into, r, kir_int(k, 0), kir_int(k, GROUP_PER_THREAD), false);
  KExpr *i = kir_add(k, kir_mul(k, block, kir_int(k, GROUP_BLOCK_ELEMS)),
                     kir_add(k, kir_mul(k, kir_ref(k, r), kir_int(k, GROUP_BLOCK)), kir_thread(k)));
  update_element(k, kir_if(k, each, kir_lt(k, i, kir_int(k, shape_elems(n->shape))), NULL), n, &ops, i);
}

// Parameters [lo, hi): a binary search on the block index, then the member's update.
static void group_search(Kernel *k, KStmt *into, const Group *gr, int lo, int hi) {
  if (hi - lo == 1) {
    group_member(k, into, gr, lo, kir_sub(k, kir_block_index(k), kir_int(k, gr->first[lo])));
    return;
  }
  int mid = (lo + hi) / 2;
  KStmt *upper;
  KStmt *lower = kir_if(k, into, kir_lt(k, kir_block_index(k), kir_int(k, gr->first[mid])), &upper);
  group_search(k, lower, gr, lo, mid);
  group_search(k, upper, gr, mid, hi);
}

Kernel *kernel_optim_group(Arena *a, Node *const *nodes, int n, const int64_t *offset, const char *name) {
  Group gr = {.nodes = nodes, .n = n, .offset = offset, .first = arena_alloc(a, sizeof(int64_t) * (size_t)(n + 1))};
  int64_t bytes = 0, flops = 0;
  for (int t = 0; t < n; t++) {
    gr.first[t + 1] = gr.first[t] + (shape_elems(nodes[t]->shape) + GROUP_BLOCK_ELEMS - 1) / GROUP_BLOCK_ELEMS;
    flops += node_flops(nodes[t]);
  }
  const char *comment = arena_printf(a, "optimizer: %s of %d parameters in one launch, %s to %s", op_info[nodes[0]->op].name,
                                     n, nodes[0]->name, nodes[n - 1]->name);
  Kernel *k = kir_block_kernel(a, name, comment, gr.first[n], GROUP_BLOCK);
  k->layout = arena_printf(a, "blocks of %d elements of one parameter each, found by a binary search on the block "
                           "index; operands at their arena offsets", GROUP_BLOCK_ELEMS);
  gr.floats = kir_buf(k, "the arena (floats)", KT_F32, 0);
  gr.ints = kir_buf(k, "the arena (int64)", KT_I64, 0);
  group_search(k, k->body, &gr, 0, n);
  for (int t = 0; t < n; t++)
    bytes += update_min_bytes(nodes[t]);
  k->flops = flops;
  k->min_bytes = bytes;
  kir_finish(k);
  return k;
}
