// kir_llvm_tile.c: the register tile (KS_TILE) as vector code. The rows x cols sums stay in
// vector registers for the whole depth: each step loads the right panel's cols values as
// vectors, broadcasts each of the left panel's rows values and multiplies-adds them
// (llvm.fmuladd: one rounding where the machine has FMA, the same on every run of a binary).
// A 6x64 tile holds 24 AVX-512 accumulators, a 6x16 one 12 AVX2 accumulators.
#include "kir_llvm.h"

static LLVMValueRef at(Lower *l, LLVMValueRef base, LLVMValueRef offset) {
  return LLVMBuildGEP2(l->b, l->f32, base, &offset, 1, "");
}

// (A pointer to a float, as a pointer to a vector: LLVM before 15 types its pointers.)
static LLVMValueRef as_vector(Lower *l, LLVMTypeRef vt, LLVMValueRef p) {
  return LLVMBuildBitCast(l->b, p, LLVMPointerType(vt, 0), "");
}

LLVMValueRef llvm_vector_at(Lower *l, LLVMTypeRef vt, LLVMValueRef base, LLVMValueRef offset) {
  LLVMValueRef v = LLVMBuildLoad2(l->b, vt, as_vector(l, vt, at(l, base, offset)), "");
  LLVMSetAlignment(v, 4);
  return v;
}

void llvm_vector_store(Lower *l, LLVMValueRef v, LLVMValueRef base, LLVMValueRef offset) {
  LLVMSetAlignment(LLVMBuildStore(l->b, v, as_vector(l, LLVMTypeOf(v), at(l, base, offset))), 4);
}

static LLVMValueRef splat(Lower *l, LLVMTypeRef vt, unsigned lanes, LLVMValueRef x) {
  LLVMValueRef one = LLVMBuildInsertElement(l->b, LLVMGetUndef(vt), x, LLVMConstInt(l->i32, 0, 0), "");
  LLVMTypeRef mask = LLVMVectorType(l->i32, lanes);
  return LLVMBuildShuffleVector(l->b, one, LLVMGetUndef(vt), LLVMConstNull(mask), "");
}

LLVMValueRef llvm_fmuladd(Lower *l, unsigned lanes, LLVMTypeRef *type) {
  LLVMTypeRef vt = LLVMVectorType(l->f32, lanes);
  *type = LLVMFunctionType(vt, (LLVMTypeRef[]){vt, vt, vt}, 3, 0);
  const char *name = lanes == 16 ? "llvm.fmuladd.v16f32" : "llvm.fmuladd.v8f32";
  LLVMValueRef f = LLVMGetNamedFunction(l->mod, name);
  return f ? f : LLVMAddFunction(l->mod, name, *type);
}

enum { MAX_ACC = 16 * 8 };

void llvm_tile(Lower *l, const KStmt *s) {
  unsigned lanes = s->cols % 16 == 0 ? 16 : 8;
  int nv = s->cols / (int)lanes, nacc = s->rows * nv;
  LLVMTypeRef vt = LLVMVectorType(l->f32, lanes);
  LLVMValueRef c = llvm_element_ptr(l, s->buf, s->index), a = llvm_element_ptr(l, s->a_buf, s->a_index);
  LLVMValueRef b = llvm_element_ptr(l, s->src_buf, s->src_index), depth = llvm_expr(l, s->value);
  LLVMValueRef init[MAX_ACC], sums[MAX_ACC], next[MAX_ACC];
  for (int i = 0; i < s->rows; i++)
    for (int v = 0; v < nv; v++)
      init[i * nv + v] = llvm_vector_at(l, vt, c, llvm_i64(l, i * s->operand + v * (int64_t)lanes));
  LLVMBasicBlockRef before = LLVMGetInsertBlock(l->b), body = llvm_new_block(l, "tile"), done = llvm_new_block(l, "tiled");
  LLVMBuildCondBr(l->b, LLVMBuildICmp(l->b, LLVMIntSGT, depth, llvm_i64(l, 0), ""), body, done);
  LLVMPositionBuilderAtEnd(l->b, body);
  LLVMValueRef p = LLVMBuildPhi(l->b, l->i64, "p");
  for (int i = 0; i < nacc; i++)
    sums[i] = LLVMBuildPhi(l->b, vt, "");
  LLVMTypeRef fma_type;
  LLVMValueRef fma = llvm_fmuladd(l, lanes, &fma_type);
  LLVMValueRef row_b = LLVMBuildMul(l->b, p, llvm_i64(l, s->ldb), ""), row_a = LLVMBuildMul(l->b, p, llvm_i64(l, s->a_step), "");
  LLVMValueRef bv[8];
  for (int v = 0; v < nv; v++)
    bv[v] = llvm_vector_at(l, vt, b, LLVMBuildAdd(l->b, row_b, llvm_i64(l, v * (int64_t)lanes), ""));
  for (int i = 0; i < s->rows; i++) {
    LLVMValueRef x = LLVMBuildLoad2(l->b, l->f32, at(l, a, LLVMBuildAdd(l->b, row_a, llvm_i64(l, i * s->a_row), "")), "");
    LLVMValueRef ax = splat(l, vt, lanes, x);
    for (int v = 0; v < nv; v++)
      next[i * nv + v] = LLVMBuildCall2(l->b, fma_type, fma, (LLVMValueRef[]){ax, bv[v], sums[i * nv + v]}, 3, "");
  }
  LLVMValueRef p1 = LLVMBuildAdd(l->b, p, llvm_i64(l, 1), "");
  LLVMBasicBlockRef end = LLVMGetInsertBlock(l->b);
  LLVMBuildCondBr(l->b, LLVMBuildICmp(l->b, LLVMIntSLT, p1, depth, ""), body, done);
  LLVMAddIncoming(p, (LLVMValueRef[]){llvm_i64(l, 0), p1}, (LLVMBasicBlockRef[]){before, end}, 2);
  for (int i = 0; i < nacc; i++)
    LLVMAddIncoming(sums[i], (LLVMValueRef[]){init[i], next[i]}, (LLVMBasicBlockRef[]){before, end}, 2);
  LLVMPositionBuilderAtEnd(l->b, done);
  LLVMValueRef out[MAX_ACC];
  for (int i = 0; i < nacc; i++) {
    out[i] = LLVMBuildPhi(l->b, vt, "");
    LLVMAddIncoming(out[i], (LLVMValueRef[]){init[i], next[i]}, (LLVMBasicBlockRef[]){before, end}, 2);
  }
  for (int i = 0; i < s->rows; i++)
    for (int v = 0; v < nv; v++)
      llvm_vector_store(l, out[i * nv + v], c, llvm_i64(l, i * s->operand + v * (int64_t)lanes));
}
