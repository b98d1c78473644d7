// kir_llvm.c: kernels to native code through LLVM's C API, in process. Every kernel
// becomes a body function whose buffers are noalias pointers (the memory plan never
// overlaps two buffers of one kernel), wrapped by `K(void *const *bufs, begin, end)`
// for the thread pool; LLVM's O3 pipeline inlines the body, promotes the loop variables
// to registers and vectorises the inner loops. Block kernels are in kir_llvm_blocks.c.
#include "kir_llvm.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/DebugInfo.h>
#include <llvm-c/Support.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

LLVMTypeRef llvm_type(const Lower *l, KType t) {
  switch (t) {
  case KT_F32: return l->f32;
  case KT_I64: return l->i64;
  case KT_U32: return l->i32;
  case KT_BF16: return l->i16;
  case KT_U8: return l->i8;
  default: return l->i1;
  }
}

static LLVMTypeRef ktype(const Lower *l, KType t) { return llvm_type(l, t); }

LLVMValueRef llvm_i64(Lower *l, int64_t v) { return LLVMConstInt(l->i64, (unsigned long long)v, 1); }

LLVMValueRef llvm_call(Lower *l, const char *name, LLVMTypeRef ret, LLVMTypeRef *params, LLVMValueRef *args, unsigned n) {
  LLVMTypeRef fty = LLVMFunctionType(ret, params, n, 0);
  LLVMValueRef fn = LLVMGetNamedFunction(l->mod, name);
  if (!fn)
    fn = LLVMAddFunction(l->mod, name, fty);
  return LLVMBuildCall2(l->b, fty, fn, args, n, "");
}

// Element elem of a variable: of this thread's copy in a block kernel.
LLVMValueRef llvm_var_ptr(Lower *l, int var, int elem) {
  const KVar *v = &l->k->vars[var];
  LLVMValueRef idx = llvm_i64(l, elem);
  if (l->k->kind == KK_BLOCKS && !l->uniform[var])
    idx = LLVMBuildAdd(l->b, LLVMBuildMul(l->b, l->thread, llvm_i64(l, v->count), ""), idx, "");
  return LLVMBuildGEP2(l->b, ktype(l, v->type), l->vars[var], &idx, 1, "");
}

static LLVMValueRef intrinsic(Lower *l, const char *name, LLVMValueRef *args, unsigned n) {
  LLVMTypeRef params[2] = {l->f32, l->f32};
  LLVMTypeRef fty = LLVMFunctionType(l->f32, params, n, 0);
  LLVMValueRef fn = LLVMGetNamedFunction(l->mod, name);
  if (!fn)
    fn = LLVMAddFunction(l->mod, name, fty);
  return LLVMBuildCall2(l->b, fty, fn, args, n, "");
}

#define expr llvm_expr

// bf16 is the top half of a float's bits: widening shifts them back.
static LLVMValueRef bf16_to_float(Lower *l, LLVMValueRef h) {
  LLVMValueRef bits = LLVMBuildShl(l->b, LLVMBuildZExt(l->b, h, l->i32, ""), LLVMConstInt(l->i32, 16, 0), "");
  return LLVMBuildBitCast(l->b, bits, l->f32, "");
}

// Rounds to nearest even, as the CUDA prelude's tlc_f2bf does; a NaN stays a quiet NaN.
static LLVMValueRef float_to_bf16(Lower *l, LLVMValueRef f) {
  LLVMValueRef u = LLVMBuildBitCast(l->b, f, l->i32, "");
  LLVMValueRef c16 = LLVMConstInt(l->i32, 16, 0);
  LLVMValueRef odd = LLVMBuildAnd(l->b, LLVMBuildLShr(l->b, u, c16, ""), LLVMConstInt(l->i32, 1, 0), "");
  LLVMValueRef rounded = LLVMBuildAdd(l->b, LLVMBuildAdd(l->b, u, LLVMConstInt(l->i32, 0x7fff, 0), ""), odd, "");
  LLVMValueRef nan = LLVMBuildICmp(l->b, LLVMIntUGT, LLVMBuildAnd(l->b, u, LLVMConstInt(l->i32, 0x7fffffff, 0), ""),
                                   LLVMConstInt(l->i32, 0x7f800000, 0), "");
  LLVMValueRef quiet = LLVMBuildOr(l->b, u, LLVMConstInt(l->i32, 0x400000, 0), "");
  LLVMValueRef bits = LLVMBuildSelect(l->b, nan, quiet, rounded, "");
  return LLVMBuildTrunc(l->b, LLVMBuildLShr(l->b, bits, c16, ""), l->i16, "");
}

LLVMValueRef llvm_element_ptr(Lower *l, int buf, const KExpr *index) {
  LLVMValueRef idx = expr(l, index);
  return LLVMBuildGEP2(l->b, ktype(l, l->k->bufs[buf].type), l->bufs[buf], &idx, 1, "");
}

static LLVMValueRef unary(Lower *l, const KExpr *e) {
  static const char *const float_fns[KU_COUNT] = {
      [KU_EXP] = "llvm.exp.f32", [KU_LOG] = "llvm.log.f32", [KU_SQRT] = "llvm.sqrt.f32", [KU_ABS] = "llvm.fabs.f32"};
  LLVMValueRef a = expr(l, e->a);
  if (e->op == KU_NOT)
    return LLVMBuildNot(l->b, a, "");
  if (e->op == KU_NEG)
    return e->type == KT_F32 ? LLVMBuildFNeg(l->b, a, "") : LLVMBuildNeg(l->b, a, "");
  return intrinsic(l, float_fns[e->op], &a, 1);
}

static LLVMValueRef float_binary(Lower *l, KBinary op, LLVMValueRef a, LLVMValueRef b) {
  static const LLVMRealPredicate preds[KB_COUNT] = {
      [KB_LT] = LLVMRealOLT, [KB_LE] = LLVMRealOLE, [KB_EQ] = LLVMRealOEQ, [KB_NE] = LLVMRealUNE};
  LLVMValueRef args[2] = {a, b};
  switch (op) {
  case KB_ADD: return LLVMBuildFAdd(l->b, a, b, "");
  case KB_SUB: return LLVMBuildFSub(l->b, a, b, "");
  case KB_MUL:
  case KB_MUL_RN: return LLVMBuildFMul(l->b, a, b, "");   // no contraction flags: rounded on its own
  case KB_DIV: return LLVMBuildFDiv(l->b, a, b, "");
  case KB_MIN: return intrinsic(l, "llvm.minnum.f32", args, 2);
  case KB_MAX: return intrinsic(l, "llvm.maxnum.f32", args, 2);
  case KB_MOD: return LLVMBuildFRem(l->b, a, b, "");
  default: return LLVMBuildFCmp(l->b, preds[op], a, b, "");
  }
}

static LLVMValueRef int_binary(Lower *l, KBinary op, LLVMValueRef a, LLVMValueRef b) {
  static const LLVMIntPredicate preds[KB_COUNT] = {
      [KB_LT] = LLVMIntSLT, [KB_LE] = LLVMIntSLE, [KB_EQ] = LLVMIntEQ, [KB_NE] = LLVMIntNE};
  switch (op) {
  case KB_ADD: return LLVMBuildAdd(l->b, a, b, "");
  case KB_SUB: return LLVMBuildSub(l->b, a, b, "");
  case KB_MUL: return LLVMBuildMul(l->b, a, b, "");
  case KB_DIV: return LLVMBuildSDiv(l->b, a, b, "");
  case KB_MOD: return LLVMBuildSRem(l->b, a, b, "");
  case KB_MIN: return LLVMBuildSelect(l->b, LLVMBuildICmp(l->b, LLVMIntSLT, a, b, ""), a, b, "");
  case KB_MAX: return LLVMBuildSelect(l->b, LLVMBuildICmp(l->b, LLVMIntSGT, a, b, ""), a, b, "");
  case KB_AND: return LLVMBuildAnd(l->b, a, b, "");
  case KB_OR: return LLVMBuildOr(l->b, a, b, "");
  case KB_XOR: return LLVMBuildXor(l->b, a, b, "");
  case KB_SHR: return LLVMBuildLShr(l->b, a, b, "");
  default: return LLVMBuildICmp(l->b, preds[op], a, b, "");
  }
}

static LLVMValueRef cast(Lower *l, const KExpr *e) {
  LLVMValueRef a = expr(l, e->a);
  KType from = e->a->type, to = e->type;
  if (to == KT_F32)
    return from == KT_I64 ? LLVMBuildSIToFP(l->b, a, l->f32, "") : LLVMBuildUIToFP(l->b, a, l->f32, "");
  if (to == KT_I64)
    return from == KT_F32 ? LLVMBuildFPToSI(l->b, a, l->i64, "") : LLVMBuildZExt(l->b, a, l->i64, "");
  return from == KT_F32 ? LLVMBuildFCmp(l->b, LLVMRealUNE, a, LLVMConstReal(l->f32, 0), "")
                        : LLVMBuildICmp(l->b, LLVMIntNE, a, LLVMConstInt(l->i64, 0, 0), "");
}

LLVMValueRef llvm_expr(Lower *l, const KExpr *e) {
  switch (e->kind) {
  case KX_CONST:
    if (e->type == KT_F32)
      return LLVMConstReal(l->f32, e->f);
    return LLVMConstInt(ktype(l, e->type), (unsigned long long)e->i, 1);
  case KX_VAR:
    return LLVMBuildLoad2(l->b, ktype(l, e->type), llvm_var_ptr(l, e->var, e->elem), l->k->vars[e->var].name);
  case KX_THREAD: return l->thread;
  case KX_BLOCK: return l->block;
  case KX_LOAD: {
    KType stored = l->k->bufs[e->buf].type;
    LLVMValueRef v = LLVMBuildLoad2(l->b, ktype(l, stored), llvm_element_ptr(l, e->buf, e->a), "");
    LLVMSetAlignment(v, stored == KT_U8 ? 1 : stored == KT_BF16 ? 2 : stored == KT_F32 ? 4 : 8);
    if (stored == KT_U8)
      return LLVMBuildZExt(l->b, v, l->i64, "");
    return stored == KT_BF16 ? bf16_to_float(l, v) : v;
  }
  case KX_UNARY: return unary(l, e);
  case KX_BINARY: {
    LLVMValueRef a = expr(l, e->a), b = expr(l, e->b);
    return e->a->type == KT_F32 ? float_binary(l, (KBinary)e->op, a, b) : int_binary(l, (KBinary)e->op, a, b);
  }
  case KX_SELECT: {
    LLVMValueRef c = expr(l, e->a), a = expr(l, e->b), b = expr(l, e->c);
    return LLVMBuildSelect(l->b, c, a, b, "");
  }
  case KX_CAST: return cast(l, e);
  }
  return NULL;
}

LLVMBasicBlockRef llvm_new_block(Lower *l, const char *name) { return LLVMAppendBasicBlockInContext(l->ctx, l->fn, name); }
#define new_block llvm_new_block
#define stmt llvm_stmt
#define block llvm_block

void llvm_block(Lower *l, const KStmt *b) {
  for (int i = 0; i < b->nbody; i++)
    stmt(l, b->body[i]);
}

static void loop_hint(Lower *l, LLVMValueRef backedge, const char *what, bool with_value);

LLVMValueRef llvm_entry_alloca(Lower *l, LLVMTypeRef t, int64_t n, const char *name) {
  LLVMBuilderRef at = LLVMCreateBuilderInContext(l->ctx);
  LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(l->fn);
  LLVMValueRef first = LLVMGetFirstInstruction(entry);
  if (first)
    LLVMPositionBuilderBefore(at, first);
  else
    LLVMPositionBuilderAtEnd(at, entry);
  LLVMValueRef p = LLVMBuildArrayAlloca(at, t, llvm_i64(l, n), name);
  LLVMDisposeBuilder(at);
  return p;
}

LLVMValueRef llvm_loop_begin(Lower *l, LlvmLoop *loop, LLVMValueRef n, const char *name) {
  loop->var = llvm_entry_alloca(l, l->i64, 1, name);   // promoted to a register by mem2reg
  LLVMBuildStore(l->b, llvm_i64(l, 0), loop->var);
  loop->cond = new_block(l, "loop");
  LLVMBasicBlockRef body = new_block(l, "body");
  loop->exit = new_block(l, "done");
  LLVMBuildBr(l->b, loop->cond);
  LLVMPositionBuilderAtEnd(l->b, loop->cond);
  LLVMValueRef v = LLVMBuildLoad2(l->b, l->i64, loop->var, name);
  LLVMBuildCondBr(l->b, LLVMBuildICmp(l->b, LLVMIntSLT, v, n, ""), body, loop->exit);
  LLVMPositionBuilderAtEnd(l->b, body);
  return v;
}

// The loops the lowering makes itself (over threads, warps, lanes) are not unrolled: a block
// of 256 threads unrolled would only make the code large and slow to compile.
void llvm_loop_end(Lower *l, LlvmLoop *loop) {
  LLVMValueRef next = LLVMBuildAdd(l->b, LLVMBuildLoad2(l->b, l->i64, loop->var, ""), llvm_i64(l, 1), "");
  LLVMBuildStore(l->b, next, loop->var);
  loop_hint(l, LLVMBuildBr(l->b, loop->cond), "llvm.loop.unroll.disable", false);
  LLVMPositionBuilderAtEnd(l->b, loop->exit);
}

static bool is_innermost(const KStmt *s) {
  for (int i = 0; i < s->nbody; i++)
    if (s->body[i]->kind == KS_FOR || s->body[i]->kind == KS_TILE || s->body[i]->kind == KS_DOT ||
        s->body[i]->kind == KS_TRANSPOSE ||
        (s->body[i]->kind == KS_IF && !is_innermost(s->body[i])))
      return false;
  return true;
}

// Attaches loop metadata `what` (with the value `value`, or none) to the loop of backedge.
static void loop_hint_value(Lower *l, LLVMValueRef backedge, const char *what, bool with_value, bool value) {
  LLVMMetadataRef hint[2] = {LLVMMDStringInContext2(l->ctx, what, strlen(what)),
                             LLVMValueAsMetadata(LLVMConstInt(l->i1, value, 0))};
  LLVMMetadataRef self = LLVMTemporaryMDNode(l->ctx, NULL, 0);
  LLVMMetadataRef ops[2] = {self, LLVMMDNodeInContext2(l->ctx, hint, with_value ? 2 : 1)};
  LLVMMetadataRef id = LLVMMDNodeInContext2(l->ctx, ops, 2);
  LLVMMetadataReplaceAllUsesWith(self, id);   // a loop id names itself
  LLVMSetMetadata(backedge, LLVMGetMDKindIDInContext(l->ctx, "llvm.loop", 9), LLVMMetadataAsValue(l->ctx, id));
}

static void loop_hint(Lower *l, LLVMValueRef backedge, const char *what, bool with_value) {
  loop_hint_value(l, backedge, what, with_value, true);
}


enum { NOT_LINEAR = -(1 << 30) };

// The variables a loop body sets, and to what (the last assignment of each before a use).
typedef struct Lets {
  const KStmt *const *body;
  int n;
} Lets;

// How far index e moves per step of variable v: the coefficient of v where e is v times a
// constant plus terms without v, else NOT_LINEAR. A variable the body sets stands for its value.
static int64_t step_of(const KExpr *e, int v, const Lets *lets) {
  switch (e->kind) {
  case KX_CONST: return 0;
  case KX_VAR:
    if (e->var == v)
      return 1;
    for (int i = lets->n - 1; i >= 0; i--)
      if (lets->body[i]->kind == KS_ASSIGN && lets->body[i]->var == e->var)
        return step_of(lets->body[i]->value, v, &(Lets){lets->body, i});
    return 0;
  case KX_BINARY: {
    int64_t a = step_of(e->a, v, lets), b = step_of(e->b, v, lets);
    if (a == NOT_LINEAR || b == NOT_LINEAR)
      return NOT_LINEAR;
    if (e->op == KB_ADD || e->op == KB_SUB)
      return e->op == KB_ADD ? a + b : a - b;
    if (e->op == KB_MUL && e->a->kind == KX_CONST)
      return e->a->i * b;
    if (e->op == KB_MUL && e->b->kind == KX_CONST)
      return a * e->b->i;
    return a || b ? NOT_LINEAR : 0;
  }
  case KX_SELECT:
  case KX_UNARY:
  case KX_CAST:
  case KX_LOAD: {
    int64_t a = e->a ? step_of(e->a, v, lets) : 0, b = e->b ? step_of(e->b, v, lets) : 0;
    int64_t c = e->c ? step_of(e->c, v, lets) : 0;
    return a || b || c ? NOT_LINEAR : 0;
  }
  default: return 0;
  }
}

// e as a variable plus a constant (*off), else -1: a member of an interleaved group of stores.
static int interleave_var(const KExpr *e, int64_t *off) {
  *off = 0;
  if (e->kind == KX_BINARY && e->op == KB_ADD && e->b->kind == KX_CONST) {
    *off = e->b->i;
    e = e->a;
  }
  return e->kind == KX_VAR ? e->var : -1;
}

// Whether the loop's stores with step `step` into buf at var + offset cover the offsets 0 to
// step - 1: together they write a contiguous range, which LLVM vectorises as interleaved
// stores (whole vectors after shuffles), not as a scatter.
static bool interleave_group(const KStmt *s, int buf, int var, int64_t step) {
  uint64_t seen = 0;
  for (int i = 0; i < s->nbody; i++) {
    const KStmt *t = s->body[i];
    int64_t off;
    if (t->kind == KS_STORE && t->buf == buf && interleave_var(t->index, &off) == var && off >= 0 && off < step &&
        step_of(t->index, s->var, &(Lets){(const KStmt *const *)s->body, i}) == step)
      seen |= 1ull << off;
  }
  return step < 64 && seen == (1ull << step) - 1;
}

// Whether innermost loop s stores other than contiguously along its variable: vectorised,
// such a store is a scatter, slower on x86 than plain stores (a column of a packed block),
// unless the loop's stores fill every gap (an interleaved group).
static bool strided_store(const KStmt *s) {
  for (int i = 0; i < s->nbody; i++) {
    const KStmt *t = s->body[i];
    if (t->kind != KS_STORE)
      continue;
    int64_t step = step_of(t->index, s->var, &(Lets){(const KStmt *const *)s->body, i}), off;
    if (step == 0 || step == 1 || step == -1)
      continue;
    int var = interleave_var(t->index, &off);
    if (step < 0 || var < 0 || !interleave_group(s, t->buf, var, step))
      return true;
  }
  return false;
}

// for (v = lo; v < hi; v++): the parallel loop runs [begin, end) instead. An innermost loop
// is marked llvm.loop.vectorize.enable, unless it stores strided. Forcing vectorisation
// also lets LLVM reorder float sums (dot products, channel sums), which it may not do by
// itself; the order is still fixed for a given binary, so results stay deterministic.
static void loop(Lower *l, const KStmt *s) {
  LLVMValueRef var = llvm_var_ptr(l, s->var, 0);
  LLVMValueRef lo = s->parallel ? l->begin : expr(l, s->lo);
  LLVMBuildStore(l->b, lo, var);
  LLVMBasicBlockRef cond = new_block(l, "loop"), body = new_block(l, "body"), exit = new_block(l, "done");
  LLVMBuildBr(l->b, cond);
  LLVMPositionBuilderAtEnd(l->b, cond);
  LLVMValueRef v = LLVMBuildLoad2(l->b, l->i64, var, "");
  LLVMValueRef hi = s->parallel ? l->end : expr(l, s->hi);
  LLVMBuildCondBr(l->b, LLVMBuildICmp(l->b, LLVMIntSLT, v, hi, ""), body, exit);
  LLVMPositionBuilderAtEnd(l->b, body);
  block(l, s);
  var = llvm_var_ptr(l, s->var, 0);   // (re-derived: the body may have moved the builder)
  LLVMValueRef next = LLVMBuildAdd(l->b, LLVMBuildLoad2(l->b, l->i64, var, ""), LLVMConstInt(l->i64, 1, 0), "");
  LLVMBuildStore(l->b, next, var);
  LLVMValueRef backedge = LLVMBuildBr(l->b, cond);
  if (!s->parallel && is_innermost(s))
    loop_hint_value(l, backedge, "llvm.loop.vectorize.enable", true, !strided_store(s));
  LLVMPositionBuilderAtEnd(l->b, exit);
}

static void branch(Lower *l, const KStmt *s) {
  LLVMBasicBlockRef then = new_block(l, "then"), other = new_block(l, "else"), merge = new_block(l, "endif");
  LLVMBuildCondBr(l->b, expr(l, s->value), then, other);
  LLVMPositionBuilderAtEnd(l->b, then);
  block(l, s);
  LLVMBuildBr(l->b, merge);
  LLVMPositionBuilderAtEnd(l->b, other);
  if (s->orelse)
    block(l, s->orelse);
  LLVMBuildBr(l->b, merge);
  LLVMPositionBuilderAtEnd(l->b, merge);
}

// cp.async on the CPU: the copy happens at once, which is one of the orders the GPU allows.
// It moves four elements: 16 bytes of float, 8 of bf16.
static void copy_async(Lower *l, const KStmt *s) {
  LLVMTypeRef ptr = LLVMPointerType(l->i8, 0);
  LLVMTypeRef params[4] = {ptr, ptr, l->i64, l->i64};
  LLVMValueRef args[4] = {LLVMBuildBitCast(l->b, llvm_element_ptr(l, s->buf, s->index), ptr, ""),
                          LLVMBuildBitCast(l->b, llvm_element_ptr(l, s->src_buf, s->src_index), ptr, ""),
                          llvm_i64(l, l->k->bufs[s->buf].type == KT_BF16 ? 8 : 16), expr(l, s->value)};
  llvm_call(l, "tlc_kir_cp_async", l->voidt, params, args, 4);
}

// 4-element accesses (16 bytes of float, 8 of bf16): four elements, which LLVM may merge
// again; a bf16 element is converted as a single load or store converts it.
static void access4(Lower *l, const KStmt *s) {
  bool bf16 = l->k->bufs[s->buf].type == KT_BF16;
  LLVMTypeRef stored = bf16 ? l->i16 : l->f32;
  for (int e = 0; e < 4; e++) {
    LLVMValueRef idx = LLVMBuildAdd(l->b, expr(l, s->index), llvm_i64(l, e), "");
    LLVMValueRef at = LLVMBuildGEP2(l->b, stored, l->bufs[s->buf], &idx, 1, "");
    if (s->kind == KS_LOAD4) {
      LLVMValueRef v = LLVMBuildLoad2(l->b, stored, at, "");
      LLVMBuildStore(l->b, bf16 ? bf16_to_float(l, v) : v, llvm_var_ptr(l, s->var, e));
    } else {
      LLVMValueRef v = LLVMBuildLoad2(l->b, l->f32, llvm_var_ptr(l, s->src, e), "");
      LLVMBuildStore(l->b, bf16 ? float_to_bf16(l, v) : v, at);
    }
  }
}

void llvm_stmt(Lower *l, const KStmt *s) {
  switch (s->kind) {
  case KS_FOR: loop(l, s); break;
  case KS_ASSIGN: LLVMBuildStore(l->b, expr(l, s->value), llvm_var_ptr(l, s->var, s->elem)); break;
  case KS_STORE: {
    KType stored = l->k->bufs[s->buf].type;
    LLVMValueRef v = expr(l, s->value);
    if (stored == KT_U8)
      v = LLVMBuildTrunc(l->b, v, l->i8, "");
    else if (stored == KT_BF16)
      v = float_to_bf16(l, v);
    LLVMValueRef st = LLVMBuildStore(l->b, v, llvm_element_ptr(l, s->buf, s->index));
    LLVMSetAlignment(st, stored == KT_U8 ? 1 : stored == KT_BF16 ? 2 : stored == KT_F32 ? 4 : 8);
    break;
  }
  case KS_IF: branch(l, s); break;
  case KS_BLOCK: block(l, s); break;
  case KS_CP_ASYNC: copy_async(l, s); break;
  case KS_TILE: llvm_tile(l, s); break;
  case KS_DOT: llvm_dot(l, s); break;
  case KS_TRANSPOSE: llvm_transpose(l, s); break;
  case KS_LOAD4:
  case KS_STORE4: access4(l, s); break;
  case KS_CP_COMMIT:
  case KS_CP_WAIT: break;   // the copies are done already
  default: fatal("internal error in kernel %s: a synchronising statement outside kir_llvm_blocks.c", l->k->name);
  }
}

static LLVMValueRef lower_body(Lower *l, Arena *a) {
  const Kernel *k = l->k;
  int nparams = kir_nparams(k), np = nparams + 2;
  LLVMTypeRef *params = arena_alloc(a, sizeof(LLVMTypeRef) * (size_t)np);
  for (int i = 0; i < nparams; i++)
    params[i] = LLVMPointerType(ktype(l, k->bufs[i].type), 0);
  params[nparams] = params[nparams + 1] = l->i64;
  LLVMTypeRef fty = LLVMFunctionType(l->voidt, params, (unsigned)np, 0);
  l->fn = LLVMAddFunction(l->mod, arena_printf(a, "%s_body", k->name), fty);
  LLVMSetLinkage(l->fn, LLVMInternalLinkage);
  unsigned noalias = LLVMGetEnumAttributeKindForName("noalias", 7);
  l->bufs = arena_alloc(a, sizeof(LLVMValueRef) * (size_t)(k->nbufs + 1));
  for (int i = 0; i < nparams; i++) {
    l->bufs[i] = LLVMGetParam(l->fn, (unsigned)i);
    LLVMSetValueName2(l->bufs[i], arena_printf(a, "b%d", i), strlen(arena_printf(a, "b%d", i)));
    LLVMAddAttributeAtIndex(l->fn, (unsigned)i + 1, LLVMCreateEnumAttribute(l->ctx, noalias, 0));
  }
  l->begin = LLVMGetParam(l->fn, (unsigned)nparams);
  l->end = LLVMGetParam(l->fn, (unsigned)nparams + 1);
  LLVMPositionBuilderAtEnd(l->b, new_block(l, "entry"));
  l->vars = arena_alloc(a, sizeof(LLVMValueRef) * (size_t)(k->nvars + 1));
  for (int i = nparams; i < k->nbufs; i++) {   // shared buffers (a block's) and local ones (an iteration's)
    l->bufs[i] = llvm_entry_alloca(l, ktype(l, k->bufs[i].type), k->bufs[i].elems, k->bufs[i].name);
    LLVMSetAlignment(l->bufs[i], 64);
  }
  if (k->kind == KK_BLOCKS) {
    llvm_lower_blocks(l, a);
  } else {
    for (int i = 0; i < k->nvars; i++)
      l->vars[i] = llvm_entry_alloca(l, ktype(l, k->vars[i].type), k->vars[i].count, k->vars[i].name);
    block(l, k->body);
  }
  LLVMBuildRetVoid(l->b);
  return l->fn;
}

// void K(void *const *bufs, int64_t begin, int64_t end) { K_body(bufs[0], ..., begin, end); }
static void lower_wrapper(Lower *l, LLVMValueRef body, Arena *a) {
  const Kernel *k = l->k;
  LLVMTypeRef ptr = LLVMPointerType(LLVMInt8TypeInContext(l->ctx), 0);
  LLVMTypeRef params[3] = {LLVMPointerType(ptr, 0), l->i64, l->i64};
  LLVMValueRef fn = LLVMAddFunction(l->mod, k->name, LLVMFunctionType(l->voidt, params, 3, 0));
  LLVMPositionBuilderAtEnd(l->b, LLVMAppendBasicBlockInContext(l->ctx, fn, "entry"));
  int nparams = kir_nparams(k);
  LLVMValueRef *args = arena_alloc(a, sizeof(LLVMValueRef) * (size_t)(nparams + 2));
  for (int i = 0; i < nparams; i++) {
    LLVMValueRef idx = LLVMConstInt(l->i64, (unsigned long long)i, 0);
    LLVMValueRef slot = LLVMBuildGEP2(l->b, ptr, LLVMGetParam(fn, 0), &idx, 1, "");
    LLVMValueRef raw = LLVMBuildLoad2(l->b, ptr, slot, "");
    args[i] = LLVMBuildBitCast(l->b, raw, LLVMPointerType(ktype(l, k->bufs[i].type), 0), "");
  }
  args[nparams] = LLVMGetParam(fn, 1);
  args[nparams + 1] = LLVMGetParam(fn, 2);
  LLVMBuildCall2(l->b, LLVMGlobalGetValueType(body), body, args, (unsigned)nparams + 2, "");
  LLVMBuildRetVoid(l->b);
}

// GVN's load PRE across a loop's backedge turns loads that overlap the next iteration's
// (a depthwise convolution's taps at q, q + 1, q + 2) into values carried from one
// iteration to the next, which the loop vectorizer then rejects ("value that could not be
// identified as reduction is used outside the loop"): such loops stayed scalar.
static void init_native(void) {
  LLVMInitializeNativeTarget();
  LLVMInitializeNativeAsmPrinter();
  const char *options[] = {"tlc", "-enable-load-in-loop-pre=false"};
  LLVMParseCommandLineOptions(2, options, NULL);
}

// Each thread that compiles a shard makes its own target machine; LLVM's target registry
// is filled once, by whichever comes first.
static LLVMTargetMachineRef target_machine(const char *cpu, Arena *a, const char **error) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, init_native);
  char *triple = LLVMGetDefaultTargetTriple();
  LLVMTargetRef target;
  char *msg = NULL;
  if (LLVMGetTargetFromTriple(triple, &target, &msg)) {
    *error = arena_printf(a, "LLVM has no target for %s: %s", triple, msg);
    LLVMDisposeMessage(msg);
    LLVMDisposeMessage(triple);
    return NULL;
  }
  bool native = !strcmp(cpu, "native");
  char *host_cpu = native ? LLVMGetHostCPUName() : NULL;
  char *features = native ? LLVMGetHostCPUFeatures() : NULL;
  LLVMTargetMachineRef tm = LLVMCreateTargetMachine(target, triple, native ? host_cpu : cpu, native ? features : "",
                                                    LLVMCodeGenLevelAggressive, LLVMRelocPIC, LLVMCodeModelDefault);
  LLVMDisposeMessage(triple);
  if (native) {
    LLVMDisposeMessage(host_cpu);
    LLVMDisposeMessage(features);
  }
  return tm;
}

// A loop marked for vectorisation that LLVM leaves scalar still runs correctly, and the
// user can do nothing about it: LLVM's warnings about that are not shown. Errors still are.
static void quiet_warnings(LLVMDiagnosticInfoRef info, void *unused) {
  (void)unused;
  if (LLVMGetDiagInfoSeverity(info) != LLVMDSError)
    return;
  char *text = LLVMGetDiagInfoDescription(info);
  fprintf(stderr, "tlc: LLVM: %s\n", text);
  LLVMDisposeMessage(text);
}

int llvm_emit_module(Kernel *const *kernels, int n, const char *cpu, const char *object_path, const char *ir_path,
                     Arena *a, const char **error) {
  LLVMTargetMachineRef tm = target_machine(cpu, a, error);
  if (!tm)
    return 1;
  Lower l = {.ctx = LLVMContextCreate()};
  LLVMContextSetDiagnosticHandler(l.ctx, quiet_warnings, NULL);
  l.mod = LLVMModuleCreateWithNameInContext("tlc_kernels", l.ctx);
  l.b = LLVMCreateBuilderInContext(l.ctx);
  l.i64 = LLVMInt64TypeInContext(l.ctx);
  l.i32 = LLVMInt32TypeInContext(l.ctx);
  l.i16 = LLVMInt16TypeInContext(l.ctx);
  l.i8 = LLVMInt8TypeInContext(l.ctx);
  l.f32 = LLVMFloatTypeInContext(l.ctx);
  l.i1 = LLVMInt1TypeInContext(l.ctx);
  l.voidt = LLVMVoidTypeInContext(l.ctx);
  char *triple = LLVMGetTargetMachineTriple(tm);
  LLVMSetTarget(l.mod, triple);
  LLVMDisposeMessage(triple);
  LLVMTargetDataRef layout = LLVMCreateTargetDataLayout(tm);
  LLVMSetModuleDataLayout(l.mod, layout);
  for (int i = 0; i < n; i++) {
    l.k = kernels[i];
    lower_wrapper(&l, lower_body(&l, a), a);
  }
  char *msg = NULL;
  int status = 0;
  if (LLVMVerifyModule(l.mod, LLVMReturnStatusAction, &msg)) {
    *error = arena_printf(a, "internal error: LLVM rejected the generated kernels: %s", msg);
    status = 1;
  }
  LLVMDisposeMessage(msg);
  msg = NULL;
  LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
  LLVMPassBuilderOptionsSetLoopVectorization(opts, 1);
  LLVMPassBuilderOptionsSetSLPVectorization(opts, 1);
  LLVMErrorRef perr = status ? NULL : LLVMRunPasses(l.mod, "default<O3>", tm, opts);
  if (perr) {
    char *pmsg = LLVMGetErrorMessage(perr);
    *error = arena_printf(a, "internal error: LLVM passes failed: %s", pmsg);
    LLVMDisposeErrorMessage(pmsg);
    status = 1;
  }
  LLVMDisposePassBuilderOptions(opts);
  if (!status && ir_path && LLVMPrintModuleToFile(l.mod, ir_path, &msg)) {
    *error = arena_printf(a, "cannot write '%s': %s", ir_path, msg);
    status = 1;
  }
  LLVMDisposeMessage(msg);
  msg = NULL;
  if (!status && object_path && LLVMTargetMachineEmitToFile(tm, l.mod, (char *)object_path, LLVMObjectFile, &msg)) {
    *error = arena_printf(a, "cannot write '%s': %s", object_path, msg);
    status = 1;
  }
  LLVMDisposeMessage(msg);
  LLVMDisposeTargetData(layout);
  LLVMDisposeBuilder(l.b);
  LLVMDisposeModule(l.mod);
  LLVMContextDispose(l.ctx);
  LLVMDisposeTargetMachine(tm);
  return status;
}

int kir_llvm_emit(Kernel **kernels, int n, const char *cpu, const char *object_path, const char *ir_path,
                  Arena *a, const char **error) {
  for (int i = 0; i < n; i++)
    kir_verify(kernels[i]);
  return llvm_emit_module(kernels, n, cpu, object_path, ir_path, a, error);
}

int kir_llvm_lanes(const char *cpu) {
  static const char *const avx512[] = {"x86-64-v4", "skylake-avx512", "cascadelake", "cooperlake", "cannonlake",
                                       "icelake-client", "icelake-server", "tigerlake", "rocketlake", "sapphirerapids",
                                       "emeraldrapids", "graniterapids", "znver4", "znver5", "knl", "knm"};
  if (!strcmp(cpu, "native")) {
    char *features = LLVMGetHostCPUFeatures();
    bool has = strstr(features, "+avx512f") != NULL;
    LLVMDisposeMessage(features);
    return has ? 16 : 8;
  }
  for (size_t i = 0; i < sizeof avx512 / sizeof *avx512; i++)
    if (!strcmp(cpu, avx512[i]))
      return 16;
  return 8;
}
