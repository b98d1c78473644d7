// kernels_pointwise.c: one output element per input element: activations and their
// gradients, add, multiply (with the squeeze-excitation gate broadcast), dropout and
// stochastic depth (masks from the step's seed). Flatten is a view (no kernel). On the
// GPU each thread moves 16 bytes of every operand at once: four elements.
#include "lower.h"

#include <string.h>

static KExpr *load_at(KernelBuilder *kb, int input, KExpr *i) { return kir_load(kb->k, kb->in[input], i); }

KExpr *kernel_elem(KernelBuilder *kb, int input, KExpr *i) {
  int reg = kb->vec[input] - 1;
  return reg >= 0 ? kir_elem(kb->k, reg, kb->vec_elem) : load_at(kb, input, i);
}

static KExpr *sigmoid(Kernel *k, KExpr *x) {
  return kir_binary(k, KB_DIV, kir_float(k, 1), kir_binary(k, KB_ADD, kir_float(k, 1), kir_unary(k, KU_EXP, kir_unary(k, KU_NEG, x))));
}

static KExpr *where(Kernel *k, KExpr *cond, KExpr *v) { return kir_select(k, cond, v, kir_float(k, 0)); }

// The index of a [N,C,1,1] gate for element i of a [N,C,H,W] tensor.
static KExpr *gate_index(Kernel *k, Shape full, KExpr *i) { return kir_binary(k, KB_DIV, i, kir_int(k, full.h * full.w)); }

// Element i of input `which`, broadcasting a per-channel gate.
static KExpr *operand(KernelBuilder *kb, int which, KExpr *i) {
  const Node *n = kb->node;
  bool gate = shape_elems(n->in[which]->shape) < shape_elems(n->shape);
  return gate ? load_at(kb, which, gate_index(kb->k, n->shape, i)) : kernel_elem(kb, which, i);
}

// keep / (1 - p) for dropout (per element) and stochastic depth (per sample), else 0.
static KExpr *mask(KernelBuilder *kb, int seed_input, KExpr *i) {
  Kernel *k = kb->k;
  const Node *n = kb->node;
  double p = n->attr.drop.p;
  bool per_sample = n->op == OP_STOCHASTIC_DEPTH || n->op == OP_STOCHASTIC_DEPTH_GRAD;
  KExpr *unit = per_sample ? kir_binary(k, KB_DIV, i, kir_int(k, shape_elems(n->shape) / n->shape.n)) : i;
  KExpr *u = kernel_hash_uniform(kb, load_at(kb, seed_input, kir_int(k, 0)), load_at(kb, seed_input, kir_int(k, 1)),
                                 n->attr.drop.salt, unit);
  return kir_select(k, kir_binary(k, KB_LE, kir_float(k, p), u), kir_float(k, 1.0 / (1.0 - p)), kir_float(k, 0));
}

KExpr *kernel_activation(Kernel *k, OpKind op, KExpr *x) {
  switch (op) {
  case OP_RELU: return kir_binary(k, KB_MAX, x, kir_float(k, 0));
  case OP_RELU6: return kir_binary(k, KB_MIN, kir_binary(k, KB_MAX, x, kir_float(k, 0)), kir_float(k, 6));
  case OP_SIGMOID: return sigmoid(k, x);
  case OP_SILU: return kir_binary(k, KB_MUL, x, sigmoid(k, x));
  default: return x;
  }
}

KExpr *kernel_activation_grad(Kernel *k, OpKind op, KExpr *dy, KExpr *y) {
  switch (op) {
  case OP_RELU: return where(k, kir_binary(k, KB_LT, kir_float(k, 0), y), dy);
  case OP_RELU6: return where(k, kir_binary(k, KB_AND, kir_binary(k, KB_LT, kir_float(k, 0), y), kir_binary(k, KB_LT, y, kir_float(k, 6))), dy);
  case OP_SIGMOID: return kir_binary(k, KB_MUL, dy, kir_binary(k, KB_MUL, y, kir_binary(k, KB_SUB, kir_float(k, 1), y)));
  default: return dy;
  }
}

KExpr *kernel_epilogue(KernelBuilder *kb, KExpr *v, KExpr *index) {
  const Fused *f = &kb->node->fused;
  if (f->residual)
    v = kir_binary(kb->k, KB_ADD, v, kernel_elem(kb, kernel_input(kb, f->residual), index));
  return kernel_activation(kb->k, f->activation, v);
}

static KExpr *value_at(KernelBuilder *kb, KExpr *i) {
  Kernel *k = kb->k;
  KExpr *x = kernel_elem(kb, 0, i);
  switch (kb->node->op) {
  case OP_RELU:
  case OP_RELU6:
  case OP_SIGMOID:
  case OP_SILU: return kernel_activation(k, kb->node->op, x);
  case OP_RELU_GRAD: return kernel_activation_grad(k, OP_RELU, x, kernel_elem(kb, 1, i));
  case OP_RELU6_GRAD: return kernel_activation_grad(k, OP_RELU6, x, kernel_elem(kb, 1, i));
  case OP_SIGMOID_GRAD: return kernel_activation_grad(k, OP_SIGMOID, x, kernel_elem(kb, 1, i));
  case OP_SILU_GRAD: {   // d/dx x s(x) = s (1 + x (1 - s))
    KExpr *in = kernel_elem(kb, 1, i), *s = sigmoid(k, in);
    KExpr *d = kir_binary(k, KB_MUL, s, kir_binary(k, KB_ADD, kir_float(k, 1),
                                                    kir_binary(k, KB_MUL, in, kir_binary(k, KB_SUB, kir_float(k, 1), s))));
    return kir_binary(k, KB_MUL, x, d);
  }
  case OP_ADD: return kernel_epilogue(kb, kir_binary(k, KB_ADD, x, kernel_elem(kb, 1, i)), i);
  case OP_MULTIPLY: return kir_binary(k, KB_MUL, operand(kb, 0, i), operand(kb, 1, i));
  case OP_DROPOUT:
  case OP_DROPOUT_GRAD:
  case OP_STOCHASTIC_DEPTH:
  case OP_STOCHASTIC_DEPTH_GRAD: return kir_binary(k, KB_MUL, x, mask(kb, 1, i));
  default: fatal("internal error: %s has no elementwise form (ops.def)", op_info[kb->node->op].name);
  }
}

// gate_grad(dy, x) -> [N,C,1,1]: the sum over each plane of dy * x.
Kernel *kernel_gate_grad(KernelBuilder *kb) {
  Kernel *k = kb->k;
  Shape full = kb->node->in[0]->shape;
  int64_t hw = full.h * full.w;
  int nc, px;
  KStmt *planes = kernel_loop(kb, k->body, "nc", full.n * full.c, &nc);
  int acc = kir_var(k, "acc", KT_F32);
  kir_assign(k, planes, acc, kir_float(k, 0));
  KStmt *pxs = kernel_loop(kb, planes, "p", hw, &px);
  KExpr *at = kir_add(k, kir_mul(k, kir_ref(k, nc), kir_int(k, hw)), kir_ref(k, px));
  kir_assign(k, pxs, acc, kir_binary(k, KB_ADD, kir_ref(k, acc), kir_binary(k, KB_MUL, load_at(kb, 0, at), load_at(kb, 1, at))));
  kir_store(k, planes, kb->out, kir_ref(k, nc), kir_ref(k, acc));
  return k;
}

// An input read element for element (not a broadcast gate, not the seed).
static bool elementwise_input(const Node *n, int i) {
  return !n->in[i]->is_int && shape_elems(n->in[i]->shape) == shape_elems(n->shape);
}

// Whether input i starts on a 16-byte boundary: arena offsets are 64-byte aligned, a view
// starts where its offset puts it.
static bool aligned16(const Node *in) {
  int64_t offset = 0;
  for (; in->op == OP_VIEW; in = in->in[0])
    offset += in->attr.view_offset;
  return offset % 4 == 0;
}

bool kernel_vec4_fits(const Node *n) {
  bool aligned = aligned16(n);
  for (int i = 0; i < n->nin; i++)
    aligned &= aligned16(n->in[i]);
  return aligned && !n->is_int;
}

// Thread p moves elements [4p, 4p + 4) of every elementwise operand and of the output as one
// 16-byte access each (consecutive threads, consecutive 16 bytes: the warp's accesses
// coalesce); the last piece of a size not a multiple of 4 goes element by element.
Kernel *kernel_vec4(KernelBuilder *kb, KernelValue *value) {
  Kernel *k = kb->k;
  const Node *n = kb->node;
  int64_t E = shape_elems(n->shape), pieces = (E + 3) / 4;
  kernel_blocks(kb, (pieces + KIR_LOOP_BLOCK - 1) / KIR_LOOP_BLOCK, KIR_LOOP_BLOCK);
  int piece = kir_var(k, "piece", KT_I64);
  kir_assign(k, k->body, piece, kir_add(k, kir_mul(k, kir_block_index(k), kir_int(k, KIR_LOOP_BLOCK)), kir_thread(k)));
  KExpr *first = kir_mul(k, kir_ref(k, piece), kir_int(k, 4));
  KStmt *rest = NULL;
  KStmt *whole = kir_if(k, k->body, kir_binary(k, KB_LE, kir_add(k, first, kir_int(k, 4)), kir_int(k, E)),
                        E % 4 ? &rest : NULL);
  for (int i = 0; i < n->nin; i++)
    if (elementwise_input(n, i)) {
      kb->vec[i] = 1 + kir_array(k, "x", KT_F32, 4);
      kir_load4(k, whole, kb->vec[i] - 1, kb->in[i], first);
    }
  int y = kir_array(k, "y", KT_F32, 4);
  kb->vec_first = first;
  for (kb->vec_elem = 0; kb->vec_elem < 4; kb->vec_elem++)
    kir_assign_elem(k, whole, y, kb->vec_elem, value(kb, kir_add(k, first, kir_int(k, kb->vec_elem))));
  kir_store4(k, whole, kb->out, first, y);
  memset(kb->vec, 0, sizeof kb->vec);
  kb->vec_first = NULL;
  for (int e = 0; rest && e < 4; e++) {
    KExpr *i = kir_add(k, first, kir_int(k, e));
    kir_store(k, kir_if(k, rest, kir_lt(k, i, kir_int(k, E)), NULL), kb->out, i, value(kb, i));
  }
  return k;
}

Kernel *kernel_flat(KernelBuilder *kb, KernelValue *value) {
  Kernel *k = kb->k;
  int i;
  KStmt *all = kernel_loop(kb, k->body, "i", shape_elems(kb->node->shape), &i);
  kir_store(k, all, kb->out, kir_ref(k, i), value(kb, kir_ref(k, i)));
  return k;
}

Kernel *kernel_pointwise(KernelBuilder *kb) {
  if (kb->target->gpu && kernel_vec4_fits(kb->node))
    return kernel_vec4(kb, value_at);
  return kernel_flat(kb, value_at);
}
