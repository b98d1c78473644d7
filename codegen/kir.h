// kir.h: the kernel IR. A kernel is a program over flat buffers: loops, scalar variables,
// loads, stores, arithmetic; shapes are constants, folded into every bound and index. The
// math of every op is written once in it (by the lowering from the graph, lower.h); kir_llvm.c
// turns it into CPU code through LLVM's C API and kir_cuda.c prints it as CUDA C for NVRTC.
// Nothing here knows about the graph: a kernel says what it computes and how its threads
// are laid out, no more.
//
// A kernel is one of two kinds:
// - a loop kernel (KK_LOOP): its first statement is its parallel loop over [0, extent); the
//   CPU hands ranges of it to the thread pool, the GPU runs one thread per iteration, in
//   blocks of KIR_LOOP_BLOCK. Everything inside runs sequentially per iteration, and no
//   iteration reads what another writes.
// - a block kernel (KK_BLOCKS): its body is what each thread of a block runs, as in CUDA,
//   over launch.grid blocks of launch.block threads. It may use what fast GPU kernels are
//   made of: the thread and block index, shared buffers, barriers, warp shuffles, asynchronous
//   copies into shared memory, 16-byte accesses, and the tensor-core tile operation
//   (ldmatrix and mma.m16n8k16 on bf16). Each has a CPU meaning: the CPU runs a block's
//   threads one after another between two synchronising statements (barriers and warp
//   operations), which must therefore be reached by every thread (kir_verify checks it).
#ifndef TLC_KIR_H
#define TLC_KIR_H

#include <stdio.h>

#include "../compiler/base.h"

// KT_U32 is a 32-bit register of two bf16 values (a tensor-core fragment register): only
// ldmatrix writes one and only mma reads one. KT_BF16 is an element type of buffers only: a
// load from a bf16 buffer is a float, a store into one rounds to nearest even. KT_U8 is one
// too, of global buffers (decoded images, bytes between kernels): a load is an int64 in 0..255,
// a store keeps an int64's low byte.
typedef enum { KT_I64, KT_F32, KT_BOOL, KT_U32, KT_BF16, KT_U8 } KType;

typedef enum {
  KX_CONST, KX_VAR, KX_LOAD, KX_UNARY, KX_BINARY, KX_SELECT, KX_CAST,
  KX_THREAD,            // the thread's index in its block (block kernels)
  KX_BLOCK,             // the block's index in the grid (block kernels)
} KExprKind;

typedef enum {
  KU_NEG, KU_EXP, KU_LOG, KU_SQRT, KU_ABS, KU_NOT,
  KU_COUNT
} KUnary;

typedef enum {
  KB_ADD, KB_SUB, KB_MUL, KB_DIV, KB_MIN, KB_MAX, KB_MOD, KB_LT, KB_LE, KB_EQ, KB_NE, KB_AND, KB_OR,
  KB_XOR, KB_SHR,       // integers only: bit mixing for the dropout masks (KB_SHR is a logical shift)
  KB_MUL_RN,            // floats only: a product rounded on its own, never fused into an add (CUDA's
                        // __fmul_rn), where a result must equal the CPU's bit for bit
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
  int elem;             // KX_VAR: the element of a register array (a constant)
  int buf;              // KX_LOAD: index into Kernel.bufs
  KExpr *a, *b, *c;     // operands; KX_LOAD: a is the element index
};

typedef enum {
  KS_FOR, KS_ASSIGN, KS_STORE, KS_IF, KS_BLOCK,
  // Block kernels only. The first three synchronise threads: every thread of the block
  // (KS_BARRIER) or of the warp (KS_SHUFFLE, KS_LDMATRIX, KS_MMA) takes part.
  KS_BARRIER,           // __syncthreads()
  KS_SHUFFLE,           // var = the value of src in lane (lane ^ operand | lane + operand | operand)
  KS_LDMATRIX,          // var (count 2 or 4 u32) = ldmatrix[.trans] from buf[index], this lane's row
  KS_MMA,               // var (d, 4 floats) = mma.m16n8k16.bf16(a, b) + c
  KS_CP_ASYNC,          // buf[index] (shared) <- 4 elements of src_buf[src_index] (16 bytes of float, 8 of
                        // bf16), the first `value` bytes read, the rest zero
  KS_CP_COMMIT,         // closes the group of copies issued since the last commit
  KS_CP_WAIT,           // waits until at most `operand` committed groups are in flight
  KS_LOAD4,             // var[0..3] = buf[index .. index + 3]   (16 bytes, 8 of bf16; index a multiple of 4)
  KS_STORE4,            // buf[index .. index + 3] = var[0..3]   (float registers either way)
  // Loop kernels (the CPU's matrix products, kernels_packed.c): a register tile.
  KS_TILE,              // buf[index + i*operand + j] += sum over p < value of a_buf[a_index + p*a_step + i*a_row] * src_buf[src_index + p*ldb + j]
  // ... and dot products: both operands contiguous along the sum, `a_step` lanes at a time.
  KS_DOT,               // buf[index + i*operand + j] += sum over p < value of a_buf[a_index + i*a_row + p] * src_buf[src_index + j*ldb + p]
  // ... and square blocks of `rows` x `rows` floats (8 or 16) transposed in vector registers.
  KS_TRANSPOSE,         // buf[index + i*operand + j] = src_buf[src_index + j*ldb + i] for i, j < rows
} KStmtKind;

typedef enum { KSH_XOR, KSH_DOWN, KSH_IDX } KShuffle;

typedef struct KStmt KStmt;
struct KStmt {
  KStmtKind kind;
  int var;              // KS_FOR: loop variable; KS_ASSIGN, KS_SHUFFLE, KS_LDMATRIX, KS_MMA, KS_LOAD4: target
  int elem;             // KS_ASSIGN: the element of a register array
  KExpr *lo, *hi;       // KS_FOR: [lo, hi), step 1
  bool parallel;        // KS_FOR: the kernel's parallel loop
  int buf;              // KS_STORE, KS_LDMATRIX, KS_CP_ASYNC, KS_LOAD4, KS_STORE4
  KExpr *index, *value; // KS_STORE: buf[index] = value; KS_ASSIGN: var = value; KS_IF: value is the condition;
                        // KS_CP_ASYNC: value is the bytes to read
  KStmt **body;         // KS_FOR, KS_IF (then), KS_BLOCK
  int nbody, capbody;
  KStmt *orelse;        // KS_IF: a KS_BLOCK, or NULL
  int src, a, b, c;     // KS_SHUFFLE: src var; KS_MMA: a, b and c vars; KS_STORE4: src var
  int src_buf;          // KS_CP_ASYNC
  KExpr *src_index;     // KS_CP_ASYNC
  int64_t operand;      // KS_SHUFFLE: lane mask, delta or lane; KS_CP_WAIT: groups; KS_LDMATRIX: tiles (2, 4)
  KShuffle shuffle;     // KS_SHUFFLE
  bool trans;           // KS_LDMATRIX
  int a_buf;            // KS_TILE: the left operand
  KExpr *a_index;       // KS_TILE
  int rows, cols;       // KS_TILE: the tile's shape (cols a multiple of 8)
  int64_t a_step, a_row, ldb;   // KS_TILE: the distance between A's steps and rows, and between B's steps
};

// Global buffers are the kernel's parameters; shared ones belong to a block (block kernels);
// local ones to a thread (loop kernels: scratch an iteration fills and reads, which the CPU
// keeps in cache; the GPU's forms do not use them: on a GPU they would live in slow local
// memory).
typedef enum { KSP_GLOBAL, KSP_SHARED, KSP_LOCAL } KSpace;

typedef struct KBuf {
  const char *name;     // what it holds, for readers: "layer1.0.conv1.weight", "grad of relu 3"
  KType type;           // KT_F32, KT_I64 (labels are stored as int64 too) or, in shared memory, KT_BF16
  int64_t elems;        // 0: a global buffer whose length is known only when the trainer runs
  bool written;         // the kernel stores into it
  KSpace space;         // global buffers come first: they are the kernel's parameters
} KBuf;

typedef struct KVar {
  const char *name;     // "n", "co", "acc"
  KType type;
  int count;            // 1, or the length of a register array (indexed by constants only)
} KVar;

typedef enum { KK_LOOP, KK_BLOCKS } KKind;

// How a kernel is launched on the GPU: grid blocks of `block` threads with `shared` bytes of
// dynamic shared memory. A loop kernel's follows from its extent (kir_finish).
typedef struct KLaunch {
  int64_t grid;
  int block;
  int64_t shared;
} KLaunch;

typedef struct Kernel {
  const char *name;     // a C identifier: "k12_conv2d_features_0_0"
  const char *comment;  // "features.0.0: conv2d 3x3 p1 1->32, [128,1,28,28] -> [128,32,28,28]"
  KKind kind;
  KLaunch launch;
  bool bf16;            // multiplies in bf16 (tensor-core tiles): compared within bf16's tolerance
  const char *layout;   // how a block kernel divides its work, for readers (printed under the launch), or NULL
  int64_t flops;        // the floating-point operations of its math (node_flops): a roofline's floor
  KBuf *bufs;
  int nbufs, capbufs;
  KVar *vars;
  int nvars, capvars;
  KStmt *body;          // a KS_BLOCK; a loop kernel's first statement is its parallel loop
  Arena *arena;
  // GPU: a kernel launched just before this one on the same buffers (a reduction's first
  // pass, whose partial sums this one adds up), or NULL; pass1_launch is its launch in the
  // bundle, after both steps' own launches (set with them).
  struct Kernel *pass1;
  int pass1_launch;
  // GPU: this kernel's work is done in the step by another launch, merged_launch (a
  // multi-tensor optimizer update, kernel_optim_group), which runs where the first of the
  // kernels it does would (merged_first). merged false: the kernel is launched itself.
  bool merged, merged_first;
  int merged_launch;
  int64_t min_bytes;    // when nonzero, kir_min_bytes' answer (a kernel over parts of a buffer)
} Kernel;

// Threads per block of a loop kernel on the GPU.
enum { KIR_LOOP_BLOCK = 256, KIR_WARP = 32 };

//
// kir.c: building kernels
//
Kernel *kir_kernel(Arena *a, const char *name, const char *comment);
// A block kernel of grid blocks of `block` threads (a multiple of 32, at most 1024).
Kernel *kir_block_kernel(Arena *a, const char *name, const char *comment, int64_t grid, int block);
int kir_buf(Kernel *k, const char *name, KType type, int64_t elems);
int kir_shared(Kernel *k, const char *name, KType type, int64_t elems);
int kir_local(Kernel *k, const char *name, KType type, int64_t elems);
int kir_var(Kernel *k, const char *name, KType type);
int kir_array(Kernel *k, const char *name, KType type, int count);

KExpr *kir_int(Kernel *k, int64_t v);
KExpr *kir_float(Kernel *k, double v);
KExpr *kir_ref(Kernel *k, int var);
KExpr *kir_elem(Kernel *k, int var, int elem);     // element elem of a register array
KExpr *kir_load(Kernel *k, int buf, KExpr *index);
KExpr *kir_unary(Kernel *k, KUnary op, KExpr *a);
KExpr *kir_binary(Kernel *k, KBinary op, KExpr *a, KExpr *b);
KExpr *kir_select(Kernel *k, KExpr *cond, KExpr *a, KExpr *b);
KExpr *kir_cast(Kernel *k, KType to, KExpr *a);
KExpr *kir_thread(Kernel *k);
KExpr *kir_block_index(Kernel *k);
// Shorthands for index arithmetic, folded when both sides are constants.
KExpr *kir_add(Kernel *k, KExpr *a, KExpr *b);
KExpr *kir_sub(Kernel *k, KExpr *a, KExpr *b);
KExpr *kir_mul(Kernel *k, KExpr *a, KExpr *b);
KExpr *kir_div(Kernel *k, KExpr *a, int64_t b);   // integer division by a constant (a >= 0)
KExpr *kir_mod(Kernel *k, KExpr *a, int64_t b);
KExpr *kir_fma(Kernel *k, KExpr *acc, KExpr *a, KExpr *b);   // acc + a * b
KExpr *kir_lt(Kernel *k, KExpr *a, KExpr *b);
KExpr *kir_and(Kernel *k, KExpr *a, KExpr *b);

// Statements are appended to a block; kir_for and kir_if return the block to fill.
KStmt *kir_block(Kernel *k);
KStmt *kir_for(Kernel *k, KStmt *into, int var, KExpr *lo, KExpr *hi, bool parallel);
void kir_assign(Kernel *k, KStmt *into, int var, KExpr *value);
void kir_assign_elem(Kernel *k, KStmt *into, int var, int elem, KExpr *value);
void kir_store(Kernel *k, KStmt *into, int buf, KExpr *index, KExpr *value);
KStmt *kir_if(Kernel *k, KStmt *into, KExpr *cond, KStmt **orelse);
void kir_barrier(Kernel *k, KStmt *into);
void kir_shuffle(Kernel *k, KStmt *into, KShuffle how, int var, int src, int64_t operand);
void kir_ldmatrix(Kernel *k, KStmt *into, int var, int tiles, bool trans, int buf, KExpr *row);
void kir_mma(Kernel *k, KStmt *into, int d, int a, int b, int c);
void kir_cp_async(Kernel *k, KStmt *into, int buf, KExpr *index, int src_buf, KExpr *src_index, KExpr *bytes);
void kir_cp_commit(Kernel *k, KStmt *into);
void kir_cp_wait(Kernel *k, KStmt *into, int64_t groups);
void kir_load4(Kernel *k, KStmt *into, int var, int buf, KExpr *index);
void kir_store4(Kernel *k, KStmt *into, int buf, KExpr *index, int var);
// A matrix product's register tile, in a loop kernel: for i < rows, j < cols,
//   c[c_index + i*ldc + j] += sum over p < depth of a[a_index + p*a_step + i*a_row] * b[b_index + p*ldb + j]
// (the CPU keeps the rows x cols sums in vector registers for the whole depth).
typedef struct KTile {
  int rows, cols;
  int c, a, b;          // buffers
  KExpr *c_index, *a_index, *b_index, *depth;
  int64_t ldc, a_step, a_row, ldb;
} KTile;
void kir_tile(Kernel *k, KStmt *into, const KTile *t);
// Register tiles of dot products, in a loop kernel: for i < rows, j < cols,
//   c[c_index + i*ldc + j] += sum over p < depth of a[a_index + i*a_row + p] * b[b_index + j*ldb + p]
// (the CPU keeps the rows x cols sums in vectors of `lanes` along p, added up in a fixed
// order at the end). The tile's rows*cols vectors are also its registers: at most 24.
typedef struct KDot {
  int rows, cols, lanes;
  int c, a, b;          // buffers
  KExpr *c_index, *a_index, *b_index, *depth;
  int64_t ldc, a_row, ldb;
} KDot;
void kir_dot(Kernel *k, KStmt *into, const KDot *t);
// A square block transposed, in a loop kernel: for i, j < n (8 or 16),
//   dst[dst_index + i*dst_pitch + j] = src[src_index + j*src_pitch + i]
// (the CPU loads n vectors of n floats, shuffles them and stores n).
void kir_transpose(Kernel *k, KStmt *into, int dst, KExpr *dst_index, int64_t dst_pitch, int src, KExpr *src_index,
                   int64_t src_pitch, int n);

// Checks that types agree, indexes are integers, buffers and variables exist, and that the
// GPU constructs are used as the CPU can run them; sets a loop kernel's launch. A failure is
// a compiler bug, reported with the kernel's name.
void kir_finish(Kernel *k);
void kir_verify(const Kernel *k);
// A loop kernel's parallel trip count; a block kernel's grid (its blocks run in parallel on
// the CPU too).
int64_t kir_parallel_extent(const Kernel *k);
int kir_nparams(const Kernel *k);     // the global buffers
// The bytes of device memory a kernel must move at least (kir_cost.c): each global buffer it
// reads or writes once, twice when it does both; its 16-byte-per-thread or tile layout aside.
int64_t kir_min_bytes(const Kernel *k);
// Whether s (a statement of a block kernel) synchronises threads or holds one that does.
bool kir_synchronises(const KStmt *s);

//
// kir_hash.c: identical kernels, found by the structure of their IR
//
// Two kernels are identical when everything but their names, comments, buffer names and
// global buffer sizes is equal: they can share one compiled function.
uint64_t kir_hash(const Kernel *k);
bool kir_same(const Kernel *a, const Kernel *b);

// The distinct kernels of a list: functions[f] is the first kernel of each kind, and
// function_of[i] the function kernels[i] runs.
typedef struct KernelTable {
  Kernel **kernels;
  int nkernels;
  Kernel **functions;
  int nfunctions;
  int *function_of;
} KernelTable;

KernelTable *kir_table(Arena *a, Kernel **kernels, int n);

//
// kir_print.c: C text of a kernel (--emit=kir; the CUDA printer prints its statements too)
//
void kir_print(FILE *out, const Kernel *k);
void kir_print_header(FILE *out, const Kernel *k);   // the comment lines: op, shapes, buffers
void kir_print_locals(FILE *out, const Kernel *k);   // declarations of the non-loop variables
void kir_print_block(FILE *out, const Kernel *k, const KStmt *block, int depth);
const char *kir_type_name(KType t);                  // as C and CUDA C spell its storage

//
// kir_cuda.c: kernels as CUDA C, one __global__ function each
//
// A loop kernel's threads are the iterations of its parallel loop, one each; a block
// kernel's are its own. Buffers are the parameters b0, b1, ... in order.
void kir_cuda_prelude(FILE *out);                    // once, before the kernels
void kir_cuda_print(FILE *out, const Kernel *k);

//
// cache.c: compiled code kept on disk under what it was compiled from
//
typedef struct CacheBlob {
  const char *data;     // NUL-terminated after size, when read back
  size_t size;
} CacheBlob;

// The nparts parts of the entry for source compiled under key (the compiler, its version and
// the target), if the cache holds it; kind names the entry's file ("cuda", "cpu").
bool cache_lookup(Arena *a, const char *kind, const char *key, const char *source, size_t source_size,
                  CacheBlob *parts, int nparts);
void cache_store(Arena *a, const char *kind, const char *key, const char *source, size_t source_size,
                 const CacheBlob *parts, int nparts);

//
// nvrtc.c: CUDA C to GPU code through NVRTC (dlopen'd: tlc runs without the toolkit)
//
typedef struct CudaCode {
  char *ptx, *cubin;    // NUL-terminated PTX; the cubin for the architecture compiled for
  size_t ptx_size, cubin_size;
  char *log;            // NVRTC's messages (warnings) or NULL
} CudaCode;

// NVRTC's threads for one program. The code depends on it (some kernels' PTX comes in another
// order), so it is fixed, never the machine's core count: the same kernels give the same
// trainer anywhere. 4 parts bring resnet18's compile from 13.4 s on one thread to about 8 s
// on 5 idle cores; 1 compiles in one part.
enum { NVRTC_SPLIT = 4 };
// Compiles source for arch ("sm_90"). Returns 0, or nonzero with *error set (in a).
int nvrtc_compile(Arena *a, const char *source, const char *name, const char *arch, CudaCode *out, const char **error);
const char *nvrtc_version(Arena *a);                 // "13.0", or NULL without NVRTC

//
// cuda_program.c: a trainer's GPU kernels as one CUDA program, compiled with a disk cache
//
typedef struct CudaProgram {
  char *source;         // CUDA C: the prelude, then every distinct kernel once
  size_t source_size;
  const char *prelude;
  const char **function_source;   // each function's part of source
  const KernelTable *table;       // the launches (in the order given) and their functions
} CudaProgram;

CudaProgram *cuda_program(Arena *a, Kernel **kernels, int n);
// *cached tells whether the code came from the cache. Returns 0, or nonzero with *error.
int cuda_program_compile(Arena *a, const CudaProgram *p, const char *arch, CudaCode *out, bool *cached,
                         const char **error);
// The same compile on a thread of its own, so that the CPU kernels compile at the same time:
// start returns at once; finish waits for it and gives what cuda_program_compile gives.
typedef struct CudaCompile CudaCompile;
CudaCompile *cuda_program_compile_start(const CudaProgram *p, const char *arch);
int cuda_program_compile_finish(CudaCompile *c, Arena *a, CudaCode *out, bool *cached, const char **error);

//
// kir_llvm.c: kernels to a native object file through LLVM's C API
//
// Each kernel K becomes `void K(void *const *bufs, int64_t begin, int64_t end)`, running
// iterations [begin, end) of its parallel loop (blocks [begin, end) of a block kernel). cpu
// is an LLVM CPU name or "native". Block kernels call the runtime's CPU meaning of the warp
// operations (tlc_kir_ldmatrix, tlc_kir_mma_16816_bf16 in libtlcrt). Returns 0, or nonzero
// with a message in *error (allocated in a).
// The CPU's vector width in floats: 16 where it has AVX-512, else 8 (the tile's shape follows).
int kir_llvm_lanes(const char *cpu);
int kir_llvm_emit(Kernel **kernels, int n, const char *cpu, const char *object_path, const char *ir_path,
                  Arena *a, const char **error);

//
// kir_llvm_shards.c: the same kernels as several object files, compiled on threads
//
// The kernels are split into shards by their estimated cost, each its own LLVM module and
// object file (dir/kernels-NN.o), taken from the cache (cache.c) when it was compiled for
// this CPU before, else compiled on one of up to jobs threads. The split depends on the
// kernels alone: the objects are the same byte for byte whatever jobs is.
typedef struct KirObjects {
  const char **paths;   // the object files, in shard order
  int n;
  int compiled;         // how many were compiled (the others came from the cache)
} KirObjects;

int kir_llvm_objects(Kernel **kernels, int n, const char *cpu, int jobs, const char *dir, KirObjects *out, Arena *a,
                     const char **error);
// The CPU time the calling thread has used, in seconds: what the environment variable
// TLC_COMPILE_TIMES has tlc print for each shard and for NVRTC.
double thread_seconds(void);

#endif
