// kir_llvm.c: kernels to native code through LLVM's C API, in process. Every kernel
// becomes a body function whose buffers are noalias pointers (the memory plan never
// overlaps two buffers of one kernel), wrapped by `K(void *const *bufs, begin, end)`
// for the thread pool; LLVM's O3 pipeline inlines the body, promotes the loop variables
// to registers and vectorises the inner loops.
#include "kir.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/DebugInfo.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <string.h>

typedef struct Lower {
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LLVMBuilderRef b;
  LLVMTypeRef i64, f32, i1, voidt;
  const Kernel *k;
  LLVMValueRef fn;
  LLVMValueRef *bufs;   // the body's pointer parameters
  LLVMValueRef *vars;   // one alloca per kernel variable
  LLVMValueRef begin, end;
} Lower;

static LLVMTypeRef ktype(const Lower *l, KType t) {
  return t == KT_F32 ? l->f32 : t == KT_I64 ? l->i64 : l->i1;
}

static LLVMValueRef intrinsic(Lower *l, const char *name, LLVMValueRef *args, unsigned n) {
  LLVMTypeRef params[2] = {l->f32, l->f32};
  LLVMTypeRef fty = LLVMFunctionType(l->f32, params, n, 0);
  LLVMValueRef fn = LLVMGetNamedFunction(l->mod, name);
  if (!fn)
    fn = LLVMAddFunction(l->mod, name, fty);
  return LLVMBuildCall2(l->b, fty, fn, args, n, "");
}

static LLVMValueRef expr(Lower *l, const KExpr *e);

static LLVMValueRef element_ptr(Lower *l, int buf, const KExpr *index) {
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
  case KB_MUL: return LLVMBuildFMul(l->b, a, b, "");
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

static LLVMValueRef expr(Lower *l, const KExpr *e) {
  switch (e->kind) {
  case KX_CONST:
    if (e->type == KT_F32)
      return LLVMConstReal(l->f32, e->f);
    return LLVMConstInt(ktype(l, e->type), (unsigned long long)e->i, 1);
  case KX_VAR: return LLVMBuildLoad2(l->b, ktype(l, e->type), l->vars[e->var], l->k->vars[e->var].name);
  case KX_LOAD: {
    LLVMValueRef v = LLVMBuildLoad2(l->b, ktype(l, e->type), element_ptr(l, e->buf, e->a), "");
    LLVMSetAlignment(v, e->type == KT_F32 ? 4 : 8);
    return v;
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

static LLVMBasicBlockRef new_block(Lower *l, const char *name) { return LLVMAppendBasicBlockInContext(l->ctx, l->fn, name); }

static void stmt(Lower *l, const KStmt *s);

static void block(Lower *l, const KStmt *b) {
  for (int i = 0; i < b->nbody; i++)
    stmt(l, b->body[i]);
}

static bool is_innermost(const KStmt *s) {
  for (int i = 0; i < s->nbody; i++)
    if (s->body[i]->kind == KS_FOR || (s->body[i]->kind == KS_IF && !is_innermost(s->body[i])))
      return false;
  return true;
}

// Marks a loop with llvm.loop.vectorize.enable. Forcing vectorisation also lets LLVM
// reorder float sums (dot products, channel sums), which it may not do by itself; the
// order is still fixed for a given binary, so results stay deterministic.
static void hint_vectorize(Lower *l, LLVMValueRef backedge) {
  LLVMMetadataRef enable[2] = {LLVMMDStringInContext2(l->ctx, "llvm.loop.vectorize.enable", 26),
                               LLVMValueAsMetadata(LLVMConstInt(l->i1, 1, 0))};
  LLVMMetadataRef self = LLVMTemporaryMDNode(l->ctx, NULL, 0);
  LLVMMetadataRef ops[2] = {self, LLVMMDNodeInContext2(l->ctx, enable, 2)};
  LLVMMetadataRef id = LLVMMDNodeInContext2(l->ctx, ops, 2);
  LLVMMetadataReplaceAllUsesWith(self, id);   // a loop id names itself
  LLVMSetMetadata(backedge, LLVMGetMDKindIDInContext(l->ctx, "llvm.loop", 9), LLVMMetadataAsValue(l->ctx, id));
}

// for (v = lo; v < hi; v++): the parallel loop runs [begin, end) instead.
static void loop(Lower *l, const KStmt *s) {
  LLVMValueRef var = l->vars[s->var];
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
  LLVMValueRef next = LLVMBuildAdd(l->b, LLVMBuildLoad2(l->b, l->i64, var, ""), LLVMConstInt(l->i64, 1, 0), "");
  LLVMBuildStore(l->b, next, var);
  LLVMValueRef backedge = LLVMBuildBr(l->b, cond);
  if (!s->parallel && is_innermost(s))
    hint_vectorize(l, backedge);
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

static void stmt(Lower *l, const KStmt *s) {
  switch (s->kind) {
  case KS_FOR: loop(l, s); break;
  case KS_ASSIGN: LLVMBuildStore(l->b, expr(l, s->value), l->vars[s->var]); break;
  case KS_STORE: {
    LLVMValueRef st = LLVMBuildStore(l->b, expr(l, s->value), element_ptr(l, s->buf, s->index));
    LLVMSetAlignment(st, l->k->bufs[s->buf].type == KT_F32 ? 4 : 8);
    break;
  }
  case KS_IF: branch(l, s); break;
  case KS_BLOCK: block(l, s); break;
  }
}

static LLVMValueRef lower_body(Lower *l, Arena *a) {
  const Kernel *k = l->k;
  int np = k->nbufs + 2;
  LLVMTypeRef *params = arena_alloc(a, sizeof(LLVMTypeRef) * (size_t)np);
  for (int i = 0; i < k->nbufs; i++)
    params[i] = LLVMPointerType(ktype(l, k->bufs[i].type), 0);
  params[k->nbufs] = params[k->nbufs + 1] = l->i64;
  LLVMTypeRef fty = LLVMFunctionType(l->voidt, params, (unsigned)np, 0);
  l->fn = LLVMAddFunction(l->mod, arena_printf(a, "%s_body", k->name), fty);
  LLVMSetLinkage(l->fn, LLVMInternalLinkage);
  unsigned noalias = LLVMGetEnumAttributeKindForName("noalias", 7);
  l->bufs = arena_alloc(a, sizeof(LLVMValueRef) * (size_t)(k->nbufs + 1));
  for (int i = 0; i < k->nbufs; i++) {
    l->bufs[i] = LLVMGetParam(l->fn, (unsigned)i);
    LLVMSetValueName2(l->bufs[i], arena_printf(a, "b%d", i), strlen(arena_printf(a, "b%d", i)));
    LLVMAddAttributeAtIndex(l->fn, (unsigned)i + 1, LLVMCreateEnumAttribute(l->ctx, noalias, 0));
  }
  l->begin = LLVMGetParam(l->fn, (unsigned)k->nbufs);
  l->end = LLVMGetParam(l->fn, (unsigned)k->nbufs + 1);
  LLVMPositionBuilderAtEnd(l->b, new_block(l, "entry"));
  l->vars = arena_alloc(a, sizeof(LLVMValueRef) * (size_t)(k->nvars + 1));
  for (int i = 0; i < k->nvars; i++)
    l->vars[i] = LLVMBuildAlloca(l->b, ktype(l, k->vars[i].type), k->vars[i].name);
  block(l, k->body);
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
  LLVMValueRef *args = arena_alloc(a, sizeof(LLVMValueRef) * (size_t)(k->nbufs + 2));
  for (int i = 0; i < k->nbufs; i++) {
    LLVMValueRef idx = LLVMConstInt(l->i64, (unsigned long long)i, 0);
    LLVMValueRef slot = LLVMBuildGEP2(l->b, ptr, LLVMGetParam(fn, 0), &idx, 1, "");
    LLVMValueRef raw = LLVMBuildLoad2(l->b, ptr, slot, "");
    args[i] = LLVMBuildBitCast(l->b, raw, LLVMPointerType(ktype(l, k->bufs[i].type), 0), "");
  }
  args[k->nbufs] = LLVMGetParam(fn, 1);
  args[k->nbufs + 1] = LLVMGetParam(fn, 2);
  LLVMBuildCall2(l->b, LLVMGlobalGetValueType(body), body, args, (unsigned)k->nbufs + 2, "");
  LLVMBuildRetVoid(l->b);
}

static LLVMTargetMachineRef target_machine(const char *cpu, Arena *a, const char **error) {
  LLVMInitializeNativeTarget();
  LLVMInitializeNativeAsmPrinter();
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

int kir_llvm_emit(Kernel **kernels, int n, const char *cpu, const char *object_path, const char *ir_path,
                  Arena *a, const char **error) {
  LLVMTargetMachineRef tm = target_machine(cpu, a, error);
  if (!tm)
    return 1;
  Lower l = {.ctx = LLVMContextCreate()};
  LLVMContextSetDiagnosticHandler(l.ctx, quiet_warnings, NULL);
  l.mod = LLVMModuleCreateWithNameInContext("tlc_kernels", l.ctx);
  l.b = LLVMCreateBuilderInContext(l.ctx);
  l.i64 = LLVMInt64TypeInContext(l.ctx);
  l.f32 = LLVMFloatTypeInContext(l.ctx);
  l.i1 = LLVMInt1TypeInContext(l.ctx);
  l.voidt = LLVMVoidTypeInContext(l.ctx);
  char *triple = LLVMGetTargetMachineTriple(tm);
  LLVMSetTarget(l.mod, triple);
  LLVMDisposeMessage(triple);
  LLVMTargetDataRef layout = LLVMCreateTargetDataLayout(tm);
  LLVMSetModuleDataLayout(l.mod, layout);
  for (int i = 0; i < n; i++) {
    kir_verify(kernels[i]);
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
