// kir.h: the kernel IR. One kernel is a loop nest over flat buffers: for-loops, scalar
// variables, loads, stores, arithmetic. The math of every op, forward and backward, is
// written once in it (by the op lowerings); kir_llvm.c turns it into CPU code through
// LLVM's C API and the CUDA C lowering prints it for NVRTC. Shapes are constants: every
// loop bound and index is folded into the kernel.
//
// A kernel's first statement is its parallel loop (KS_FOR with parallel set) over
// [0, extent); the CPU lowering hands ranges of it to the thread pool, the GPU lowering
// maps it to threads. Everything inside runs sequentially per iteration.
#ifndef TLC_KIR_H
#define TLC_KIR_H

#include "../compiler/tlc.h"

typedef enum { KT_I64, KT_F32, KT_BOOL } KType;

typedef enum {
  KX_CONST, KX_VAR, KX_LOAD, KX_UNARY, KX_BINARY, KX_SELECT, KX_CAST,
} KExprKind;

typedef enum {
  KU_NEG, KU_EXP, KU_LOG, KU_SQRT, KU_ABS, KU_NOT,
  KU_COUNT
} KUnary;

typedef enum {
  KB_ADD, KB_SUB, KB_MUL, KB_DIV, KB_MIN, KB_MAX, KB_MOD, KB_LT, KB_LE, KB_EQ, KB_NE, KB_AND, KB_OR,
  KB_XOR, KB_SHR,       // integers only: bit mixing for the dropout masks (KB_SHR is a logical shift)
  KB_COUNT
} KBinary;

typedef struct KExpr KExpr;
struct KExpr {
  KExprKind kind;
  KType type;
  int op;               // KUnary or KBinary
  double f;             // KX_CONST of KT_F32
  int64_t i;            // KX_CONST of KT_I64 or KT_BOOL
  int var;              // KX_VAR: index into Kernel.vars
  int buf;              // KX_LOAD: index into Kernel.bufs
  KExpr *a, *b, *c;     // operands; KX_LOAD: a is the element index
};

typedef enum { KS_FOR, KS_ASSIGN, KS_STORE, KS_IF, KS_BLOCK } KStmtKind;

typedef struct KStmt KStmt;
struct KStmt {
  KStmtKind kind;
  int var;              // KS_FOR: loop variable; KS_ASSIGN: target
  KExpr *lo, *hi;       // KS_FOR: [lo, hi), step 1
  bool parallel;        // KS_FOR: the kernel's parallel loop
  int buf;              // KS_STORE
  KExpr *index, *value; // KS_STORE: buf[index] = value; KS_ASSIGN: var = value; KS_IF: value is the condition
  KStmt **body;         // KS_FOR, KS_IF (then), KS_BLOCK
  int nbody, capbody;
  KStmt *orelse;        // KS_IF: a KS_BLOCK, or NULL
};

typedef struct KBuf {
  const char *name;     // what it holds, for readers: "layer1.0.conv1.weight", "grad of relu 3"
  KType type;           // KT_F32 or KT_I64 (labels are stored as int64 too)
  int64_t elems;
  bool written;         // the kernel stores into it
} KBuf;

typedef struct KVar {
  const char *name;     // "n", "co", "acc"
  KType type;
} KVar;

typedef struct Kernel {
  const char *name;     // a C identifier: "k12_conv2d_features_0_0"
  const char *comment;  // "features.0.0: conv2d 3x3 p1 1->32, [128,1,28,28] -> [128,32,28,28]"
  KBuf *bufs;
  int nbufs, capbufs;
  KVar *vars;
  int nvars, capvars;
  KStmt *body;          // a KS_BLOCK whose first statement is the parallel loop
  Arena *arena;
} Kernel;

//
// kir.c: building kernels
//
Kernel *kir_kernel(Arena *a, const char *name, const char *comment);
int kir_buf(Kernel *k, const char *name, KType type, int64_t elems);
int kir_var(Kernel *k, const char *name, KType type);

KExpr *kir_int(Kernel *k, int64_t v);
KExpr *kir_float(Kernel *k, double v);
KExpr *kir_ref(Kernel *k, int var);
KExpr *kir_load(Kernel *k, int buf, KExpr *index);
KExpr *kir_unary(Kernel *k, KUnary op, KExpr *a);
KExpr *kir_binary(Kernel *k, KBinary op, KExpr *a, KExpr *b);
KExpr *kir_select(Kernel *k, KExpr *cond, KExpr *a, KExpr *b);
KExpr *kir_cast(Kernel *k, KType to, KExpr *a);
// Shorthands for index arithmetic, folded when both sides are constants.
KExpr *kir_add(Kernel *k, KExpr *a, KExpr *b);
KExpr *kir_sub(Kernel *k, KExpr *a, KExpr *b);
KExpr *kir_mul(Kernel *k, KExpr *a, KExpr *b);
KExpr *kir_div(Kernel *k, KExpr *a, int64_t b);   // integer division by a constant (a >= 0)
KExpr *kir_mod(Kernel *k, KExpr *a, int64_t b);
KExpr *kir_fma(Kernel *k, KExpr *acc, KExpr *a, KExpr *b);   // acc + a * b

// Statements are appended to a block; kir_for and kir_if return the block to fill.
KStmt *kir_block(Kernel *k);
KStmt *kir_for(Kernel *k, KStmt *into, int var, KExpr *lo, KExpr *hi, bool parallel);
void kir_assign(Kernel *k, KStmt *into, int var, KExpr *value);
void kir_store(Kernel *k, KStmt *into, int buf, KExpr *index, KExpr *value);
KStmt *kir_if(Kernel *k, KStmt *into, KExpr *cond, KStmt **orelse);

// Checks that types agree, indexes are integers and buffers are in range; a failure is
// a compiler bug, reported with the kernel's name.
void kir_verify(const Kernel *k);
// The parallel loop's trip count.
int64_t kir_parallel_extent(const Kernel *k);

//
// kir_print.c: C text of a kernel (--emit=kir; the CUDA printer prints its statements too)
//
void kir_print(FILE *out, const Kernel *k);
void kir_print_header(FILE *out, const Kernel *k);   // the comment lines: op, shapes, buffers
void kir_print_locals(FILE *out, const Kernel *k);   // declarations of the non-loop variables
void kir_print_block(FILE *out, const Kernel *k, const KStmt *block, int depth);

//
// kir_cuda.c: kernels as CUDA C, one __global__ function each
//
// A kernel's threads are the iterations of its parallel loop, one each, in blocks of
// KIR_CUDA_BLOCK threads; its buffers are its parameters, b0, b1, ... in order.
enum { KIR_CUDA_BLOCK = 256 };
void kir_cuda_prelude(FILE *out);                    // once, before the kernels
void kir_cuda_print(FILE *out, const Kernel *k);
int64_t kir_cuda_grid(const Kernel *k);              // blocks to launch

//
// nvrtc.c: CUDA C to GPU code through NVRTC (dlopen'd: tlc runs without the toolkit)
//
typedef struct CudaCode {
  char *ptx, *cubin;    // NUL-terminated PTX; the cubin for the architecture compiled for
  size_t ptx_size, cubin_size;
  char *log;            // NVRTC's messages (warnings) or NULL
} CudaCode;

// Compiles source for arch ("sm_90"). Returns 0, or nonzero with *error set (in a).
int nvrtc_compile(Arena *a, const char *source, const char *name, const char *arch, CudaCode *out, const char **error);
const char *nvrtc_version(Arena *a);                 // "13.0", or NULL without NVRTC

//
// cuda_program.c: a trainer's kernels as one CUDA program, compiled with a disk cache
//
typedef struct CudaLaunch {
  const Kernel *kernel;
  int function;         // index into CudaProgram.functions
  int64_t grid;         // blocks of KIR_CUDA_BLOCK threads
} CudaLaunch;

typedef struct CudaProgram {
  char *source;         // CUDA C: the prelude, then every distinct kernel once
  size_t source_size;
  const char *prelude;
  const char **function_source;   // each function's part of source
  Kernel **functions;   // the kernel each function is printed from (and named after)
  int nfunctions;
  CudaLaunch *launches; // one per kernel, in the order given
  int nlaunches;
} CudaProgram;

CudaProgram *cuda_program(Arena *a, Kernel **kernels, int n);
// *cached tells whether the code came from the cache. Returns 0, or nonzero with *error.
int cuda_program_compile(Arena *a, const CudaProgram *p, const char *arch, CudaCode *out, bool *cached,
                         const char **error);

//
// kir_llvm.c: kernels to a native object file through LLVM's C API
//
// Each kernel K becomes `void K(void *const *bufs, int64_t begin, int64_t end)`, running
// iterations [begin, end) of its parallel loop. cpu is an LLVM CPU name or "native".
// Returns 0, or nonzero with a message in *error (allocated in a).
int kir_llvm_emit(Kernel **kernels, int n, const char *cpu, const char *object_path, const char *ir_path,
                  Arena *a, const char **error);

//
// kernels_*.c: the math of every op of the training step, forward and backward
//
// A kernel's buffers are the node's inputs in order, then its output (ops that update
// their inputs in place, like the optimizer, have no output buffer). Returns NULL for
// nodes that need no kernel (parameters, labels, the input...).
Kernel *kernel_for(Arena *a, const Node *n);
// The kernel of each node by node id (NULL where none), named prefix + its usual name.
Kernel **kernels_by_node(Arena *a, const Graph *g, const char *prefix);

//
// host_c.c: the trainer's C source: the model description, the step functions, main()
//
typedef struct TrainerSpec {
  const char *source;   // the .graph file
  const Graph *model, *train, *eval;
  const MemPlan *plan;
  const Recipe *recipe;
  Kernel **train_kernels, **eval_kernels;   // by node id
  // The distinct kernels: the CPU object file and the GPU bundle hold each once, and steps
  // call the one their kernel is identical to.
  const CudaProgram *program;
  int feature_node;          // feature_boundary() of the training step, or -1
  const char *bundle_path;   // the compiled bundle to embed (tlc -o), or NULL
  size_t bundle_size;
} TrainerSpec;

void host_c_emit(FILE *out, const TrainerSpec *t);

// Builders the op files share.
typedef struct KernelBuilder {
  Kernel *k;
  const Node *node;
  int in[MAX_INPUTS], out;       // buffer numbers of the inputs and the output
  int aux;              // a variable an op file's helpers share (bn_stats: the mean)
} KernelBuilder;

KernelBuilder kernel_begin(Arena *a, const Node *n);
// for (v = 0; v < extent; v++) inside `into`, with a fresh variable named name.
KStmt *kernel_loop(KernelBuilder *kb, KStmt *into, const char *name, int64_t extent, int *var);
KExpr *kernel_index4(KernelBuilder *kb, Shape s, KExpr *n, KExpr *c, KExpr *h, KExpr *w);
// v, to be stored at index of the output, with the node's fused residual added and its fused
// activation applied (v itself when there is neither).
KExpr *kernel_epilogue(KernelBuilder *kb, KExpr *v, KExpr *index);
// The activations themselves, shared by pointwise kernels and epilogues, and the gradient
// through those that fuse as epilogues (relu, relu6, sigmoid), from their output y.
KExpr *kernel_activation(Kernel *k, OpKind op, KExpr *x);
KExpr *kernel_activation_grad(Kernel *k, OpKind op, KExpr *dy, KExpr *y);
KExpr *kernel_hash_uniform(KernelBuilder *kb, KExpr *seed_load_0, KExpr *seed_load_1, int64_t salt, KExpr *index);

Kernel *kernel_conv(KernelBuilder *kb);
Kernel *kernel_gemm(KernelBuilder *kb);
Kernel *kernel_linear(KernelBuilder *kb);
Kernel *kernel_norm(KernelBuilder *kb);
Kernel *kernel_pointwise(KernelBuilder *kb);
Kernel *kernel_pool(KernelBuilder *kb);
Kernel *kernel_loss(KernelBuilder *kb);
Kernel *kernel_optim(KernelBuilder *kb);

#endif
