// kir_llvm_blocks.c: block kernels on the CPU. A block's threads run one after another
// between two synchronising statements: the statements between them become a loop over the
// threads, a barrier is the end of one such loop, and a warp operation runs once per warp
// over the values its lanes hold. So a variable holds one value per thread (an array), but
// for the variables of loops that synchronise, which every thread holds alike. Shared
// buffers are the function's own arrays, reused by each block it runs. The warp operations'
// meaning is the runtime's (runtime/kir_cpu.c), written from the PTX ISA.
#include "kir_llvm.h"

static void mark_uniform(Lower *l, const KStmt *s) {
  if (!kir_synchronises(s))
    return;
  if (s->kind == KS_FOR)
    l->uniform[s->var] = true;
  for (int i = 0; i < s->nbody; i++)
    mark_uniform(l, s->body[i]);
  if (s->orelse)
    mark_uniform(l, s->orelse);
}

static void storage(Lower *l, Arena *a) {
  const Kernel *k = l->k;
  l->uniform = arena_alloc(a, (size_t)k->nvars + 1);
  mark_uniform(l, k->body);
  for (int i = 0; i < k->nvars; i++) {
    int64_t n = l->uniform[i] ? k->vars[i].count : (int64_t)k->launch.block * k->vars[i].count;
    l->vars[i] = llvm_entry_alloca(l, llvm_type(l, k->vars[i].type), n, k->vars[i].name);
  }
  l->lanes_f32 = llvm_entry_alloca(l, l->f32, KIR_WARP, "lanes_f32");
  l->lanes_i64 = llvm_entry_alloca(l, l->i64, KIR_WARP, "lanes_i64");
  l->rows = llvm_entry_alloca(l, l->i64, KIR_WARP, "rows");
}

static void spmd(Lower *l, const KStmt *block);

// body[from, to): every thread of the block in turn.
static void threads(Lower *l, const KStmt *block, int from, int to) {
  if (from == to)
    return;
  LlvmLoop loop;
  l->thread = llvm_loop_begin(l, &loop, llvm_i64(l, l->k->launch.block), "thread");
  for (int i = from; i < to; i++)
    llvm_stmt(l, block->body[i]);
  llvm_loop_end(l, &loop);
}

// A loop that synchronises: one variable for the block, its body run as a block program.
static void uniform_loop(Lower *l, const KStmt *s) {
  LLVMValueRef var = l->vars[s->var];
  LLVMBuildStore(l->b, llvm_expr(l, s->lo), var);
  LLVMBasicBlockRef cond = llvm_new_block(l, "uloop"), body = llvm_new_block(l, "ubody"), exit = llvm_new_block(l, "udone");
  LLVMBuildBr(l->b, cond);
  LLVMPositionBuilderAtEnd(l->b, cond);
  LLVMValueRef v = LLVMBuildLoad2(l->b, l->i64, var, "");
  LLVMBuildCondBr(l->b, LLVMBuildICmp(l->b, LLVMIntSLT, v, llvm_expr(l, s->hi), ""), body, exit);
  LLVMPositionBuilderAtEnd(l->b, body);
  spmd(l, s);
  LLVMValueRef next = LLVMBuildAdd(l->b, LLVMBuildLoad2(l->b, l->i64, var, ""), llvm_i64(l, 1), "");
  LLVMBuildStore(l->b, next, var);
  LLVMBuildBr(l->b, cond);
  LLVMPositionBuilderAtEnd(l->b, exit);
}

static void uniform_branch(Lower *l, const KStmt *s) {
  LLVMBasicBlockRef then = llvm_new_block(l, "uthen"), other = llvm_new_block(l, "uelse"), merge = llvm_new_block(l, "uendif");
  LLVMBuildCondBr(l->b, llvm_expr(l, s->value), then, other);
  LLVMPositionBuilderAtEnd(l->b, then);
  spmd(l, s);
  LLVMBuildBr(l->b, merge);
  LLVMPositionBuilderAtEnd(l->b, other);
  if (s->orelse)
    spmd(l, s->orelse);
  LLVMBuildBr(l->b, merge);
  LLVMPositionBuilderAtEnd(l->b, merge);
}

// Lane `lane` of warp w is thread w * 32 + lane.
static LLVMValueRef lane_thread(Lower *l, LLVMValueRef w, LLVMValueRef lane) {
  return LLVMBuildAdd(l->b, LLVMBuildMul(l->b, w, llvm_i64(l, KIR_WARP), ""), lane, "");
}

static LLVMValueRef source_lane(Lower *l, const KStmt *s, LLVMValueRef lane) {
  LLVMValueRef op = llvm_i64(l, s->operand);
  switch (s->shuffle) {
  case KSH_XOR: return LLVMBuildXor(l->b, lane, op, "");
  case KSH_DOWN: {   // a lane past the warp's end keeps its own value, as on the GPU
    LLVMValueRef down = LLVMBuildAdd(l->b, lane, op, "");
    LLVMValueRef inside = LLVMBuildICmp(l->b, LLVMIntSLT, down, llvm_i64(l, KIR_WARP), "");
    return LLVMBuildSelect(l->b, inside, down, lane, "");
  }
  default: return op;
  }
}

// All lanes read their source first, then all store: a lane may be another's source.
static void shuffle(Lower *l, const KStmt *s, LLVMValueRef w) {
  LLVMTypeRef t = llvm_type(l, l->k->vars[s->var].type);
  LLVMValueRef values = t == l->f32 ? l->lanes_f32 : l->lanes_i64;
  LlvmLoop read, write;
  LLVMValueRef lane = llvm_loop_begin(l, &read, llvm_i64(l, KIR_WARP), "lane");
  l->thread = lane_thread(l, w, source_lane(l, s, lane));
  LLVMValueRef v = LLVMBuildLoad2(l->b, t, llvm_var_ptr(l, s->src, 0), "");
  LLVMBuildStore(l->b, v, LLVMBuildGEP2(l->b, t, values, &lane, 1, ""));
  llvm_loop_end(l, &read);
  lane = llvm_loop_begin(l, &write, llvm_i64(l, KIR_WARP), "lane");
  l->thread = lane_thread(l, w, lane);
  v = LLVMBuildLoad2(l->b, t, LLVMBuildGEP2(l->b, t, values, &lane, 1, ""), "");
  LLVMBuildStore(l->b, v, llvm_var_ptr(l, s->var, 0));
  llvm_loop_end(l, &write);
}

// The warp's registers of a variable: lanes are consecutive threads, so they are consecutive.
static LLVMValueRef warp_slice(Lower *l, int var, LLVMValueRef w) {
  const KVar *v = &l->k->vars[var];
  LLVMValueRef at = LLVMBuildMul(l->b, w, llvm_i64(l, (int64_t)KIR_WARP * v->count), "");
  return LLVMBuildGEP2(l->b, llvm_type(l, v->type), l->vars[var], &at, 1, "");
}

static void ldmatrix(Lower *l, const KStmt *s, LLVMValueRef w) {
  LlvmLoop rows;
  LLVMValueRef lane = llvm_loop_begin(l, &rows, llvm_i64(l, KIR_WARP), "lane");
  l->thread = lane_thread(l, w, lane);
  LLVMBuildStore(l->b, llvm_expr(l, s->index), LLVMBuildGEP2(l->b, l->i64, l->rows, &lane, 1, ""));
  llvm_loop_end(l, &rows);
  LLVMTypeRef params[5] = {LLVMPointerType(l->i32, 0), LLVMPointerType(l->i16, 0), LLVMPointerType(l->i64, 0), l->i64,
                           l->i64};
  LLVMValueRef args[5] = {warp_slice(l, s->var, w), l->bufs[s->buf], l->rows, llvm_i64(l, s->operand),
                          llvm_i64(l, s->trans)};
  llvm_call(l, "tlc_kir_ldmatrix", l->voidt, params, args, 5);
}

static void mma(Lower *l, const KStmt *s, LLVMValueRef w) {
  LLVMTypeRef f = LLVMPointerType(l->f32, 0), u = LLVMPointerType(l->i32, 0);
  LLVMTypeRef params[4] = {f, u, u, f};
  LLVMValueRef args[4] = {warp_slice(l, s->var, w), warp_slice(l, s->a, w), warp_slice(l, s->b, w), warp_slice(l, s->c, w)};
  llvm_call(l, "tlc_kir_mma_16816_bf16", l->voidt, params, args, 4);
}

static void per_warp(Lower *l, const KStmt *s) {
  LlvmLoop warps;
  LLVMValueRef w = llvm_loop_begin(l, &warps, llvm_i64(l, l->k->launch.block / KIR_WARP), "warp");
  if (s->kind == KS_SHUFFLE)
    shuffle(l, s, w);
  else if (s->kind == KS_LDMATRIX)
    ldmatrix(l, s, w);
  else
    mma(l, s, w);
  llvm_loop_end(l, &warps);
}

static void synchronising(Lower *l, const KStmt *s) {
  switch (s->kind) {
  case KS_FOR: uniform_loop(l, s); break;
  case KS_IF: uniform_branch(l, s); break;
  case KS_BLOCK: spmd(l, s); break;
  case KS_BARRIER: break;   // the loop over the threads before it has ended
  default: per_warp(l, s); break;
  }
}

static void spmd(Lower *l, const KStmt *block) {
  int from = 0;
  for (int i = 0; i < block->nbody; i++) {
    if (!kir_synchronises(block->body[i]))
      continue;
    threads(l, block, from, i);
    synchronising(l, block->body[i]);
    from = i + 1;
  }
  threads(l, block, from, block->nbody);
}

void llvm_lower_blocks(Lower *l, Arena *a) {
  storage(l, a);
  LlvmLoop blocks;
  LLVMValueRef i = llvm_loop_begin(l, &blocks, LLVMBuildSub(l->b, l->end, l->begin, ""), "i");
  l->block = LLVMBuildAdd(l->b, l->begin, i, "block");
  spmd(l, l->k->body);
  llvm_loop_end(l, &blocks);
}
