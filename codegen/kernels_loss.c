// kernels_loss.c: softmax cross-entropy with label smoothing (PyTorch's definition), per
// sample, and its gradient for the mean over the batch.
#include "lower.h"

#include <math.h>

typedef struct Row {
  int r, mx, sum;       // the row, its maximum, sum of exp(x - max)
  KExpr *base;          // index of the row's first logit
  int64_t classes;
} Row;

// For each row: the maximum and the sum of exp(x - max).
static KStmt *row_softmax(KernelBuilder *kb, Row *row) {
  Kernel *k = kb->k;
  Shape s = kb->node->in[0]->shape;
  row->classes = s.c;
  KStmt *rows = kernel_loop(kb, k->body, "r", s.n, &row->r);
  row->base = kir_mul(k, kir_ref(k, row->r), kir_int(k, s.c));
  row->mx = kir_var(k, "mx", KT_F32);
  row->sum = kir_var(k, "sum", KT_F32);
  kir_assign(k, rows, row->mx, kir_float(k, -INFINITY));
  int c;
  KStmt *scan = kernel_loop(kb, rows, "c", s.c, &c);
  KExpr *x = kir_load(k, kb->in[0], kir_add(k, row->base, kir_ref(k, c)));
  kir_assign(k, scan, row->mx, kir_binary(k, KB_MAX, kir_ref(k, row->mx), x));
  kir_assign(k, rows, row->sum, kir_float(k, 0));
  int c2;
  KStmt *acc = kernel_loop(kb, rows, "c", s.c, &c2);
  KExpr *shifted = kir_binary(k, KB_SUB, kir_load(k, kb->in[0], kir_add(k, row->base, kir_ref(k, c2))), kir_ref(k, row->mx));
  kir_assign(k, acc, row->sum, kir_binary(k, KB_ADD, kir_ref(k, row->sum), kir_unary(k, KU_EXP, shifted)));
  return rows;
}

// loss = logsumexp(x) - (1 - ls) x[label] - ls mean(x)
Kernel *kernel_xent(KernelBuilder *kb) {
  Kernel *k = kb->k;
  double ls = kb->node->attr.loss.label_smoothing;
  Row row;
  KStmt *rows = row_softmax(kb, &row);
  int total = kir_var(k, "total", KT_F32), c;
  kir_assign(k, rows, total, kir_float(k, 0));
  KStmt *all = kernel_loop(kb, rows, "c", row.classes, &c);
  kir_assign(k, all, total, kir_binary(k, KB_ADD, kir_ref(k, total), kir_load(k, kb->in[0], kir_add(k, row.base, kir_ref(k, c)))));
  KExpr *label = kir_load(k, kb->in[1], kir_ref(k, row.r));
  KExpr *xl = kir_load(k, kb->in[0], kir_add(k, row.base, label));
  KExpr *lse = kir_binary(k, KB_ADD, kir_ref(k, row.mx), kir_unary(k, KU_LOG, kir_ref(k, row.sum)));
  KExpr *l = kir_binary(k, KB_SUB, lse, kir_binary(k, KB_MUL, kir_float(k, 1 - ls), xl));
  l = kir_binary(k, KB_SUB, l, kir_binary(k, KB_MUL, kir_float(k, ls / (double)row.classes), kir_ref(k, total)));
  kir_store(k, rows, kb->out, kir_ref(k, row.r), l);
  return k;
}

// d mean(loss) / dx = (softmax(x) - (1 - ls) onehot - ls / C) / N
Kernel *kernel_xent_grad(KernelBuilder *kb) {
  Kernel *k = kb->k;
  double ls = kb->node->attr.loss.label_smoothing;
  int64_t n = kb->node->shape.n;
  Row row;
  KStmt *rows = row_softmax(kb, &row);
  int c;
  KStmt *all = kernel_loop(kb, rows, "c", row.classes, &c);
  KExpr *at = kir_add(k, row.base, kir_ref(k, c));
  KExpr *p = kir_binary(k, KB_DIV, kir_unary(k, KU_EXP, kir_binary(k, KB_SUB, kir_load(k, kb->in[0], at), kir_ref(k, row.mx))),
                        kir_ref(k, row.sum));
  KExpr *is_label = kir_binary(k, KB_EQ, kir_ref(k, c), kir_load(k, kb->in[1], kir_ref(k, row.r)));
  KExpr *target = kir_select(k, is_label, kir_float(k, 1 - ls + ls / (double)row.classes), kir_float(k, ls / (double)row.classes));
  kir_store(k, all, kb->out, at, kir_binary(k, KB_DIV, kir_binary(k, KB_SUB, p, target), kir_float(k, (double)n)));
  return k;
}
