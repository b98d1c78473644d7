// kernels_linear.c: the fully connected layer and its gradients (the bias gradient is a
// per-channel sum: kernels_norm.c). The innermost loops run along contiguous rows, which LLVM
// vectorises.
#include "lower.h"

static KExpr *at2(Kernel *k, int64_t cols, KExpr *r, KExpr *c) { return kir_add(k, kir_mul(k, r, kir_int(k, cols)), c); }

// y[n,o] = b[o] + sum_i x[n,i] w[o,i]
static Kernel *forward(KernelBuilder *kb) {
  Kernel *k = kb->k;
  const Node *n = kb->node;
  int64_t in = n->in[0]->shape.c, out = n->shape.c;
  int r, o, i;
  KStmt *rows = kernel_loop(kb, k->body, "n", n->shape.n, &r);
  KStmt *outs = kernel_loop(kb, rows, "o", out, &o);
  int acc = kir_var(k, "acc", KT_F32);
  kir_assign(k, outs, acc, n->attr.linear.bias ? kir_load(k, kb->in[2], kir_ref(k, o)) : kir_float(k, 0));
  KStmt *dot = kernel_loop(kb, outs, "i", in, &i);
  KExpr *xv = kir_load(k, kb->in[0], at2(k, in, kir_ref(k, r), kir_ref(k, i)));
  KExpr *wv = kir_load(k, kb->in[1], at2(k, in, kir_ref(k, o), kir_ref(k, i)));
  kir_assign(k, dot, acc, kir_binary(k, KB_ADD, kir_ref(k, acc), kir_binary(k, KB_MUL, xv, wv)));
  KExpr *at = at2(k, out, kir_ref(k, r), kir_ref(k, o));
  kir_store(k, outs, kb->out, at, kernel_epilogue(kb, kir_ref(k, acc), at));
  return k;
}

// Row r of out (cols wide) = sum over j of a[r,j] * b[j, :], accumulated in place: the
// shape of dx = dy w (per sample) and dw = dy^T x (per output).
static Kernel *rows_times_matrix(KernelBuilder *kb, int64_t rows_n, int64_t inner, int64_t cols, bool transpose_a,
                                 int a_buf, int b_buf) {
  Kernel *k = kb->k;
  int r, j, c;
  KStmt *rows = kernel_loop(kb, k->body, "r", rows_n, &r);
  KStmt *zero = kernel_loop(kb, rows, "c", cols, &c);
  kir_store(k, zero, kb->out, at2(k, cols, kir_ref(k, r), kir_ref(k, c)), kir_float(k, 0));
  KStmt *terms = kernel_loop(kb, rows, "j", inner, &j);
  int av = kir_var(k, "a", KT_F32);
  KExpr *a_at = transpose_a ? at2(k, rows_n, kir_ref(k, j), kir_ref(k, r)) : at2(k, inner, kir_ref(k, r), kir_ref(k, j));
  kir_assign(k, terms, av, kir_load(k, a_buf, a_at));
  int c2;
  KStmt *axpy = kernel_loop(kb, terms, "c", cols, &c2);
  KExpr *dst = at2(k, cols, kir_ref(k, r), kir_ref(k, c2));
  KExpr *bv = kir_load(k, b_buf, at2(k, cols, kir_ref(k, j), kir_ref(k, c2)));
  kir_store(k, axpy, kb->out, dst, kir_binary(k, KB_ADD, kir_load(k, kb->out, dst), kir_binary(k, KB_MUL, kir_ref(k, av), bv)));
  return k;
}

Kernel *kernel_linear(KernelBuilder *kb) { return kernel_tiled(kb) ? kernel_tiled_matmul(kb) : forward(kb); }

// dx[n,:] = sum_o dy[n,o] w[o,:] (on tensor-core tiles where the target has them, kernels_tiles.c)
Kernel *kernel_linear_dx(KernelBuilder *kb) {
  const Node *n = kb->node;
  if (kernel_tiled(kb))
    return kernel_tiled_matmul(kb);
  return rows_times_matrix(kb, n->shape.n, n->in[0]->shape.c, n->shape.c, false, kb->in[0], kb->in[1]);
}

// dw[o,:] = sum_n dy[n,o] x[n,:]
Kernel *kernel_linear_dw(KernelBuilder *kb) {
  const Node *n = kb->node;
  if (kernel_tiled(kb))
    return kernel_tiled_matmul(kb);
  return rows_times_matrix(kb, n->shape.d[0], n->in[0]->shape.n, n->shape.d[1], true, kb->in[0], kb->in[1]);
}
