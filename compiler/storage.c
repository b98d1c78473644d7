// storage.c: which values the GPU keeps in bf16 under precision "bf16", as PyTorch's
// autocast does: the activations and the gradients flowing back through them. The arena
// planner (plan.c) sizes them from this and the lowering (codegen/kernels.c) types their
// buffers from it, so the two always agree.
#include "tlc.h"

// The tensor whose memory a value is (a view lies inside its source).
static const Node *storage_root(const Node *n) {
  while (n->op == OP_VIEW)
    n = n->in[0];
  return n;
}

// What the host reads as numbers (the loss, the logits it scores, the features it caches):
// fp32, at the same place on both devices (plan.c pins them).
bool value_read_by_host(const Graph *g, const Node *n) {
  const Node *root = storage_root(n);
  return (g->loss && root == storage_root(g->loss)) || (g->logits && root == storage_root(g->logits)) ||
         (g->features && root == storage_root(g->features));
}

// Ops whose output is an activation or an activation's gradient. Parameter gradients
// (conv2d_dw, linear_dw, bias_grad, bn_dparams, sum_chunks of them), batchnorm statistics,
// the loss and optimizer updates are not listed: they stay fp32.
static bool activation_op(OpKind op) {
  switch (op) {
  case OP_CONV2D: case OP_RELU: case OP_RELU6: case OP_SILU: case OP_SIGMOID: case OP_MAXPOOL: case OP_AVGPOOL:
  case OP_GLOBAL_AVG_POOL: case OP_LINEAR: case OP_DROPOUT: case OP_STOCHASTIC_DEPTH: case OP_BN_APPLY:
  case OP_XENT_GRAD: case OP_CONV2D_DX: case OP_BN_DX: case OP_BN_DX_RUNNING: case OP_RELU_GRAD: case OP_RELU6_GRAD:
  case OP_SILU_GRAD: case OP_SIGMOID_GRAD: case OP_MAXPOOL_GRAD: case OP_AVGPOOL_GRAD: case OP_GLOBAL_AVG_POOL_GRAD:
  case OP_LINEAR_DX: case OP_DROPOUT_GRAD: case OP_STOCHASTIC_DEPTH_GRAD: case OP_GATE_GRAD:
    return true;
  default: return false;
  }
}

bool value_bf16(const Graph *g, const Node *n) {
  const Node *root = storage_root(n);
  if (root->is_int || root->writes_inputs || value_read_by_host(g, root))
    return false;
  // An add or a multiply sums activations or parameter gradients: bf16 when it reads an
  // activation in bf16 (a residual add, a gradient summed from two branches).
  if (root->op == OP_ADD || root->op == OP_MULTIPLY) {
    for (int i = 0; i < root->nin; i++)
      if (value_bf16(g, root->in[i]))
        return true;
    return false;
  }
  return activation_op(root->op);
}

int value_elem_bytes(const Graph *g, const Node *n, bool bf16) { return n->is_int ? 8 : bf16 && value_bf16(g, n) ? 2 : 4; }

// A convolution's batchnorm chunk statistics (ops.c: node_elems) stay fp32 after its bf16
// output, from the next 16-byte boundary: a buffer of their own in its kernels.
bool value_stats_apart(const Graph *g, const Node *n, bool bf16) {
  return bf16 && n->op != OP_VIEW && conv_stats_chunks(n) > 0 && value_bf16(g, n);
}

int64_t value_stats_offset(const Graph *g, const Node *n, bool bf16) {
  int64_t elems = shape_elems(n->shape);
  return value_stats_apart(g, n, bf16) ? (elems * 2 + 15) / 16 * 16 : elems * 4;
}

int64_t value_bytes(const Graph *g, const Node *n, bool bf16) {
  if (value_stats_apart(g, n, bf16))
    return value_stats_offset(g, n, bf16) + (node_elems(n) - shape_elems(n->shape)) * 4;
  return node_elems(n) * value_elem_bytes(g, n, bf16);
}
