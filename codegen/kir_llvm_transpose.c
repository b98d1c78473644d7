// kir_llvm_transpose.c: a square block of n x n floats (n = 8 or 16) transposed in vector
// registers (KS_TRANSPOSE): n rows loaded as vectors, log2(n) rounds of two-input shuffles,
// n vectors stored. Round r exchanges bit r of the row with bit r of the lane: rows j and
// j + 2^r trade the lanes whose bit r differs from their own, so after every round each
// element sits at its row and lane swapped. Scalar code moved a float a cycle at best; the
// shuffles move a vector in a few.
#include "kir_llvm.h"

enum { MAX_N = 16 };

void llvm_transpose(Lower *l, const KStmt *s) {
  unsigned n = (unsigned)s->rows;
  LLVMTypeRef vt = LLVMVectorType(l->f32, n);
  LLVMValueRef dst = llvm_element_ptr(l, s->buf, s->index), src = llvm_element_ptr(l, s->src_buf, s->src_index);
  LLVMValueRef rows[MAX_N];
  for (unsigned j = 0; j < n; j++)
    rows[j] = llvm_vector_at(l, vt, src, llvm_i64(l, (int64_t)j * s->ldb));
  for (unsigned h = 1; h < n; h <<= 1) {
    LLVMValueRef low[MAX_N], high[MAX_N];
    for (unsigned i = 0; i < n; i++) {   // lane i of the lower row, then of the upper
      low[i] = LLVMConstInt(l->i32, i & h ? n + i - h : i, 0);
      high[i] = LLVMConstInt(l->i32, i & h ? n + i : i + h, 0);
    }
    LLVMValueRef low_mask = LLVMConstVector(low, n), high_mask = LLVMConstVector(high, n);
    for (unsigned j = 0; j < n; j++) {
      if (j & h)
        continue;
      LLVMValueRef a = rows[j], b = rows[j + h];
      rows[j] = LLVMBuildShuffleVector(l->b, a, b, low_mask, "");
      rows[j + h] = LLVMBuildShuffleVector(l->b, a, b, high_mask, "");
    }
  }
  for (unsigned i = 0; i < n; i++)
    llvm_vector_store(l, rows[i], dst, llvm_i64(l, (int64_t)i * s->operand));
}
