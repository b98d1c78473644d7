// kir_llvm_dot.c: a tile of dot products (KS_DOT) as vector code. Each of the rows x cols
// sums is a vector of `lanes` partial sums along p, in a register for the whole depth: each
// step loads `rows` vectors of A and `cols` of B and multiplies-adds every pair
// (llvm.fmuladd: one rounding where the machine has FMA). The last depth % lanes steps are
// one masked step (the lanes past the depth read nothing and add 0). Each vector is then
// added up in halves (lanes 0..7 + 8..15, then 0..3 + 4..7, ...), a fixed order, and added
// to c. LLVM's own vectorisation of such a loop would split each multiply-add in two.
#include "kir_llvm.h"

static LLVMValueRef pointer_at(Lower *l, LLVMTypeRef vt, LLVMValueRef base, LLVMValueRef offset) {
  LLVMValueRef p = LLVMBuildGEP2(l->b, l->f32, base, &offset, 1, "");
  return LLVMBuildBitCast(l->b, p, LLVMPointerType(vt, 0), "");
}

static LLVMValueRef intrinsic(Lower *l, const char *name, LLVMTypeRef type) {
  LLVMValueRef f = LLVMGetNamedFunction(l->mod, name);
  return f ? f : LLVMAddFunction(l->mod, name, type);
}

// The lanes below `count` of the vector at base + offset, zeros elsewhere.
static LLVMValueRef masked_at(Lower *l, LLVMTypeRef vt, unsigned lanes, LLVMValueRef base, LLVMValueRef offset,
                              LLVMValueRef mask) {
  LLVMTypeRef mt = LLVMVectorType(l->i1, lanes), pt = LLVMPointerType(vt, 0);
  LLVMTypeRef type = LLVMFunctionType(vt, (LLVMTypeRef[]){pt, l->i32, mt, vt}, 4, 0);
  const char *name = lanes == 16 ? "llvm.masked.load.v16f32.p0v16f32" : "llvm.masked.load.v8f32.p0v8f32";
  LLVMValueRef args[] = {pointer_at(l, vt, base, offset), LLVMConstInt(l->i32, 4, 0), mask, LLVMConstNull(vt)};
  return LLVMBuildCall2(l->b, type, intrinsic(l, name, type), args, 4, "");
}

static LLVMValueRef lane_mask(Lower *l, unsigned lanes, LLVMValueRef count) {
  LLVMTypeRef it = LLVMVectorType(l->i64, lanes);
  LLVMValueRef index[16];
  for (unsigned i = 0; i < lanes; i++)
    index[i] = llvm_i64(l, i);
  LLVMValueRef one = LLVMBuildInsertElement(l->b, LLVMGetUndef(it), count, LLVMConstInt(l->i32, 0, 0), "");
  LLVMValueRef splat = LLVMBuildShuffleVector(l->b, one, LLVMGetUndef(it), LLVMConstNull(LLVMVectorType(l->i32, lanes)), "");
  return LLVMBuildICmp(l->b, LLVMIntSLT, LLVMConstVector(index, lanes), splat, "");
}

// The lanes of v added up in halves.
static LLVMValueRef add_up(Lower *l, LLVMValueRef v, unsigned lanes) {
  for (unsigned w = lanes / 2; w >= 1; w /= 2) {
    LLVMValueRef lo[8], hi[8];
    for (unsigned i = 0; i < w; i++) {
      lo[i] = LLVMConstInt(l->i32, i, 0);
      hi[i] = LLVMConstInt(l->i32, w + i, 0);
    }
    LLVMValueRef a = LLVMBuildShuffleVector(l->b, v, LLVMGetUndef(LLVMTypeOf(v)), LLVMConstVector(lo, w), "");
    LLVMValueRef b = LLVMBuildShuffleVector(l->b, v, LLVMGetUndef(LLVMTypeOf(v)), LLVMConstVector(hi, w), "");
    v = LLVMBuildFAdd(l->b, a, b, "");
  }
  return LLVMBuildExtractElement(l->b, v, LLVMConstInt(l->i32, 0, 0), "");
}

enum { MAX_SUMS = 24 };

void llvm_dot(Lower *l, const KStmt *s) {
  unsigned lanes = (unsigned)s->a_step;
  int rows = s->rows, cols = s->cols, n = rows * cols;
  LLVMTypeRef vt = LLVMVectorType(l->f32, lanes);
  LLVMValueRef c = llvm_element_ptr(l, s->buf, s->index), a = llvm_element_ptr(l, s->a_buf, s->a_index);
  LLVMValueRef b = llvm_element_ptr(l, s->src_buf, s->src_index), depth = llvm_expr(l, s->value);
  LLVMValueRef steps = LLVMBuildSDiv(l->b, depth, llvm_i64(l, lanes), "");
  LLVMTypeRef fma_type;
  LLVMValueRef fma = llvm_fmuladd(l, lanes, &fma_type);
  LLVMValueRef sums[MAX_SUMS], next[MAX_SUMS], out[MAX_SUMS], av[MAX_SUMS], bv[MAX_SUMS];
  LLVMBasicBlockRef before = LLVMGetInsertBlock(l->b), body = llvm_new_block(l, "dots"), tail = llvm_new_block(l, "dots_tail");
  LLVMBuildCondBr(l->b, LLVMBuildICmp(l->b, LLVMIntSGT, steps, llvm_i64(l, 0), ""), body, tail);
  LLVMPositionBuilderAtEnd(l->b, body);
  LLVMValueRef p = LLVMBuildPhi(l->b, l->i64, "p");
  for (int i = 0; i < n; i++)
    sums[i] = LLVMBuildPhi(l->b, vt, "");
  LLVMValueRef offset = LLVMBuildMul(l->b, p, llvm_i64(l, lanes), "");
  for (int i = 0; i < rows; i++)
    av[i] = llvm_vector_at(l, vt, a, LLVMBuildAdd(l->b, offset, llvm_i64(l, i * s->a_row), ""));
  for (int j = 0; j < cols; j++)
    bv[j] = llvm_vector_at(l, vt, b, LLVMBuildAdd(l->b, offset, llvm_i64(l, j * s->ldb), ""));
  for (int i = 0; i < rows; i++)
    for (int j = 0; j < cols; j++)
      next[i * cols + j] = LLVMBuildCall2(l->b, fma_type, fma, (LLVMValueRef[]){av[i], bv[j], sums[i * cols + j]}, 3, "");
  LLVMValueRef p1 = LLVMBuildAdd(l->b, p, llvm_i64(l, 1), "");
  LLVMBasicBlockRef end = LLVMGetInsertBlock(l->b);
  LLVMBuildCondBr(l->b, LLVMBuildICmp(l->b, LLVMIntSLT, p1, steps, ""), body, tail);
  LLVMAddIncoming(p, (LLVMValueRef[]){llvm_i64(l, 0), p1}, (LLVMBasicBlockRef[]){before, end}, 2);
  for (int i = 0; i < n; i++)
    LLVMAddIncoming(sums[i], (LLVMValueRef[]){LLVMConstNull(vt), next[i]}, (LLVMBasicBlockRef[]){before, end}, 2);
  LLVMPositionBuilderAtEnd(l->b, tail);
  for (int i = 0; i < n; i++) {
    out[i] = LLVMBuildPhi(l->b, vt, "");
    LLVMAddIncoming(out[i], (LLVMValueRef[]){LLVMConstNull(vt), next[i]}, (LLVMBasicBlockRef[]){before, end}, 2);
  }
  LLVMValueRef done = LLVMBuildMul(l->b, steps, llvm_i64(l, lanes), "");
  LLVMValueRef mask = lane_mask(l, lanes, LLVMBuildSub(l->b, depth, done, ""));
  for (int i = 0; i < rows; i++)
    av[i] = masked_at(l, vt, lanes, a, LLVMBuildAdd(l->b, done, llvm_i64(l, i * s->a_row), ""), mask);
  for (int j = 0; j < cols; j++)
    bv[j] = masked_at(l, vt, lanes, b, LLVMBuildAdd(l->b, done, llvm_i64(l, j * s->ldb), ""), mask);
  for (int i = 0; i < rows; i++)
    for (int j = 0; j < cols; j++) {
      LLVMValueRef v = LLVMBuildCall2(l->b, fma_type, fma, (LLVMValueRef[]){av[i], bv[j], out[i * cols + j]}, 3, "");
      LLVMValueRef to = LLVMBuildGEP2(l->b, l->f32, c, (LLVMValueRef[]){llvm_i64(l, i * s->operand + j)}, 1, "");
      LLVMValueRef sum = LLVMBuildFAdd(l->b, LLVMBuildLoad2(l->b, l->f32, to, ""), add_up(l, v, lanes), "");
      LLVMBuildStore(l->b, sum, to);
    }
}
