// kir_llvm.h: what kir_llvm.c (expressions, statements, the module) and kir_llvm_blocks.c
// (block kernels: their threads one after another between synchronising statements) share.
#ifndef TLC_KIR_LLVM_H
#define TLC_KIR_LLVM_H

#include "kir.h"

#include <llvm-c/Core.h>

typedef struct Lower {
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LLVMBuilderRef b;
  LLVMTypeRef i64, i32, i16, i8, f32, i1, voidt;
  const Kernel *k;
  LLVMValueRef fn;
  LLVMValueRef *bufs;   // the body's pointer parameters, then the shared buffers' allocas
  LLVMValueRef *vars;   // one alloca per kernel variable (of count elements, or threads x count)
  LLVMValueRef begin, end;
  // Block kernels: a variable holds one value per thread, but for the variables of loops
  // that synchronise (uniform), which hold one.
  bool *uniform;
  LLVMValueRef thread;  // the thread whose statements are being lowered
  LLVMValueRef block;   // the block being run
  LLVMValueRef lanes_f32, lanes_i64;   // a shuffle's 32 results, before they are stored
  LLVMValueRef rows;                   // ldmatrix: each lane's row, as an element index
} Lower;

LLVMTypeRef llvm_type(const Lower *l, KType t);   // the storage type
LLVMValueRef llvm_expr(Lower *l, const KExpr *e);
void llvm_stmt(Lower *l, const KStmt *s);
void llvm_block(Lower *l, const KStmt *block);
LLVMValueRef llvm_var_ptr(Lower *l, int var, int elem);
LLVMBasicBlockRef llvm_new_block(Lower *l, const char *name);
// A counted loop for (v = 0; v < n; v++) built by the lowering itself: begin returns v's value
// inside the body; end closes the loop.
typedef struct LlvmLoop {
  LLVMValueRef var;
  LLVMBasicBlockRef cond, exit;
} LlvmLoop;
LLVMValueRef llvm_loop_begin(Lower *l, LlvmLoop *loop, LLVMValueRef n, const char *name);
void llvm_loop_end(Lower *l, LlvmLoop *loop);
LLVMValueRef llvm_call(Lower *l, const char *name, LLVMTypeRef ret, LLVMTypeRef *params, LLVMValueRef *args, unsigned n);
LLVMValueRef llvm_i64(Lower *l, int64_t v);
// An array of n elements in the function's entry block, so that a loop does not grow the stack.
LLVMValueRef llvm_entry_alloca(Lower *l, LLVMTypeRef t, int64_t n, const char *name);

LLVMValueRef llvm_element_ptr(Lower *l, int buf, const KExpr *index);

// One LLVM module of kernels (verified already: kir_verify uses their arenas, which are not
// for threads) to object_path and/or its optimised IR to ir_path. Safe to run on several
// threads at once, each with its own arena.
int llvm_emit_module(Kernel *const *kernels, int n, const char *cpu, const char *object_path, const char *ir_path,
                     Arena *a, const char **error);

// kir_llvm_tile.c: a register tile (KS_TILE) as vector multiply-adds.
void llvm_tile(Lower *l, const KStmt *s);
// What both tiles and the transpose use: a vector of vt at base + offset (floats, unaligned),
// a vector stored there, and llvm.fmuladd on vectors of `lanes` floats (its type in *type).
LLVMValueRef llvm_vector_at(Lower *l, LLVMTypeRef vt, LLVMValueRef base, LLVMValueRef offset);
void llvm_vector_store(Lower *l, LLVMValueRef v, LLVMValueRef base, LLVMValueRef offset);
LLVMValueRef llvm_fmuladd(Lower *l, unsigned lanes, LLVMTypeRef *type);
// kir_llvm_dot.c: a tile of dot products (KS_DOT) as vector multiply-adds along the sums.
void llvm_dot(Lower *l, const KStmt *s);
// kir_llvm_transpose.c: a square block transposed (KS_TRANSPOSE) by vector shuffles.
void llvm_transpose(Lower *l, const KStmt *s);

// kir_llvm_blocks.c: a block kernel's body, its blocks [begin, end) one after another.
void llvm_lower_blocks(Lower *l, Arena *a);

#endif
