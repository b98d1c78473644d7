// lower.h: the lowering from the training step's graph (compiler/tlc.h) to kernels (kir.h).
// The math of every op, forward and backward, is written once here, in the kernels_*.c
// files; a node's kernel may be laid out differently for the CPU and for the GPU (block
// reductions, 16-byte accesses, tensor-core tiles on the GPU), computing the same thing.
#ifndef TLC_LOWER_H
#define TLC_LOWER_H

#include "../compiler/tlc.h"
#include "kir.h"

// A tensor-core product's block tile of C, bm x bn (kernels_tile_shape.c).
typedef struct TileShape {
  int bm, bn;
} TileShape;
#define TILE_SHAPES "32, 64 or 128 rows by 16, 32, 64 or 128 columns"

// The target a node's kernel is laid out for.
typedef struct KernelTarget {
  bool gpu;             // block reductions and 16-byte accesses where they pay
  bool tiles;           // matrix products on bf16 tensor cores (sm_80 and newer, precision bf16)
  int lanes;            // the CPU's vector width in floats: 16 with AVX-512, else 8
  TileShape tile;       // forced on every tensor-core product (a sweep's TLC_TILE), {0, 0}: the table's
  // Activations stored in bf16 (precision "bf16" with tiles): compiler/storage.c's value_bf16
  // types the buffers of `step` as the GPU's memory plan sizes them. Else every buffer fp32.
  bool bf16_activations;
  const Graph *step;    // the step the kernels are of (kernels_by_node sets it), or NULL
} KernelTarget;

// A kernel's buffers are the node's inputs in order, then its output (ops that update their
// inputs in place, like the optimizer, have no output buffer). Returns NULL for nodes that
// need no kernel (parameters, labels, the input...).
Kernel *kernel_for(Arena *a, const Node *n, const KernelTarget *target);
// The kernel of each node by node id (NULL where none), named prefix + its usual name.
Kernel **kernels_by_node(Arena *a, const Graph *g, const char *prefix, const KernelTarget *target);

// Builders the op files share.
typedef struct KernelBuilder {
  Kernel *k;
  const Node *node;
  const KernelTarget *target;
  int in[MAX_INPUTS], out;       // buffer numbers of the inputs and the output
  int stats;            // the chunk statistics' own buffer (kernel_stats_node), or -1
  int aux;              // a variable an op file's helpers share (bn_stats: the mean)
  // 16-byte accesses (kernels_pointwise.c): input i's four elements are in register array
  // vec[i] - 1 (0: input i is loaded element by element), and vec_elem is the one in use.
  int vec[MAX_INPUTS];
  int vec_elem;
  KExpr *vec_first;     // the first of the thread's four elements (NULL outside those registers)
} KernelBuilder;

KernelBuilder kernel_begin(Arena *a, const Node *n, const KernelTarget *target);
// The node whose chunk statistics n's kernel writes (a convolution's own) or reads (bn_stats'
// input) in a float buffer of their own, after its buffers, because the GPU holds the
// tensor in bf16 (compiler/storage.c: value_stats_apart); NULL when none. The host passes
// that buffer (codegen/host_c.c) at value_stats_offset of the tensor.
const Node *kernel_stats_node(const Graph *step, bool bf16, const Node *n);
// Where the chunk statistics of `of` (the node's output, or its input 0 for bn_stats) are:
// the buffer and the element they start at (after the tensor in its buffer, or at 0 of
// their own).
int kernel_stats_at(const KernelBuilder *kb, int buf, const Node *of, KExpr **first);
// Makes kb's kernel a block kernel of grid blocks of `block` threads (before anything is
// added to its body).
void kernel_blocks(KernelBuilder *kb, int64_t grid, int block);
// Sums the variable v over the threads of the block, in a fixed order (a butterfly of
// shuffles in each warp, then the warps' sums, through the shared buffer of 32 floats
// `partials`); every thread ends with the total in v. A barrier at the end lets the caller
// reuse `partials`. Every thread of the block must reach it.
void kernel_block_sum(KernelBuilder *kb, KStmt *into, int v, int partials);
// A block kernel's threads sharing `count` items: thread t takes items t, t + block, ...
// (consecutive threads, consecutive items: coalesced); returns the statement to fill for
// each, the item in *item. The loop is named name.
KStmt *kernel_strided(KernelBuilder *kb, KStmt *into, const char *name, int64_t count, KExpr **item);
// for (v = 0; v < extent; v++) inside `into`, with a fresh variable named name.
KStmt *kernel_loop(KernelBuilder *kb, KStmt *into, const char *name, int64_t extent, int *var);
KExpr *kernel_index4(KernelBuilder *kb, Shape s, KExpr *n, KExpr *c, KExpr *h, KExpr *w);
// The input number of a fused operand (Node.fused) in the node's in[], and its buffer.
int kernel_input(const KernelBuilder *kb, const Node *operand);
int kernel_operand(const KernelBuilder *kb, const Node *operand);
// v, to be stored at index of the output, with the node's fused residual added and its fused
// activation applied (v itself when there is neither).
KExpr *kernel_epilogue(KernelBuilder *kb, KExpr *v, KExpr *index);
// The activations themselves, shared by pointwise kernels and epilogues, and the gradient
// through those that fuse as epilogues (relu, relu6, sigmoid), from their output y.
KExpr *kernel_activation(Kernel *k, OpKind op, KExpr *x);
KExpr *kernel_activation_grad(Kernel *k, OpKind op, KExpr *dy, KExpr *y);
// Element i of input `input` (a tensor of the output's size), read element for element: from
// the thread's four-element register when kernel_vec4 moves 16 bytes at a time (i is then the
// element in use).
KExpr *kernel_elem(KernelBuilder *kb, int input, KExpr *i);
// Kernels with one output element per thread (kernels_pointwise.c): value gives the output's
// element i, reading the output-sized inputs through kernel_elem. kernel_flat is a loop kernel
// over the elements (a thread each on the GPU: consecutive threads, consecutive elements);
// kernel_vec4, the GPU's, has each thread move 4 elements of every output-sized input and of the
// output as one 16-byte access (needs kernel_vec4_fits: every operand on a 16-byte boundary;
// a value that reads a per-channel table must also keep 4 elements in one plane).
typedef KExpr *KernelValue(KernelBuilder *kb, KExpr *i);
Kernel *kernel_flat(KernelBuilder *kb, KernelValue *value);
Kernel *kernel_vec4(KernelBuilder *kb, KernelValue *value);
bool kernel_vec4_fits(const Node *n);
KExpr *kernel_hash_uniform(KernelBuilder *kb, KExpr *seed_load_0, KExpr *seed_load_1, int64_t salt, KExpr *index);

// A matrix product's output before its epilogue: the bias of column n added and, for a
// convolution with a batchnorm folded in, that batchnorm applied (kernels_gemm.c).
KExpr *kernel_matmul_finish(KernelBuilder *kb, KExpr *acc, KExpr *n);
// The GPU's tensor-core form of a convolution or linear layer (kernels_tiles.c): the forward
// pass, the input gradient and the weight gradient, when the target allows it and
// kernel_tiled says the node's epilogue fits it.
bool kernel_tiled(const KernelBuilder *kb);
Kernel *kernel_tiled_matmul(KernelBuilder *kb);
// Whether s is a tile shape kernel_tiled_matmul has (TILE_SHAPES), and the shape for the
// product of op ("conv2d_dx") of M x N x K: the target's forced one, else codegen/tile_table.def's
// row for it, else 64 x 64. kernel_tiled_matmul still falls back to 64 x 64 where the product
// cannot take it (statistics chunks, shared memory).
bool kernel_tile_valid(TileShape s);
TileShape kernel_tile_shape(const KernelTarget *t, const char *op, int64_t M, int64_t N, int64_t K);
// The GPU's depthwise convolutions (kernels_depthwise.c): whether the node (conv2d, conv2d_dx
// or conv2d_dw) is one they take, and its kernel.
bool kernel_depthwise(const KernelBuilder *kb);
Kernel *kernel_depthwise_forward(KernelBuilder *kb);
Kernel *kernel_depthwise_dx(KernelBuilder *kb);
Kernel *kernel_depthwise_dw(KernelBuilder *kb);
// The CPU's gradients of depthwise convolutions on planes copied padded into scratch,
// vectorised along their positions (kernels_conv_cpu_depthwise.c): whether the node
// (conv2d_dx or conv2d_dw) is one they take, and its kernel.
bool kernel_cpu_depthwise(const KernelBuilder *kb);
Kernel *kernel_cpu_depthwise_dx(KernelBuilder *kb);
Kernel *kernel_cpu_depthwise_dw(KernelBuilder *kb);
// Element kk of output row r's patch for the node's convolution: image[...] under the tap kk
// names, or 0 in the padding (no load outside the image is made). x is the image's shape, y
// the convolution's output's (a gradient node's own shape is not).
KExpr *kernel_patch_value(KernelBuilder *kb, int image, Shape x, Shape y, KExpr *r, KExpr *kk);
// A convolution as a matrix product straight from its image (groups == 1), for either
// target (kernels_gemm.c).
Kernel *kernel_conv_implicit(KernelBuilder *kb);
// The same on the CPU, as a packed product that gathers its patches (kernels_conv_cpu.c), and
// its input and weight gradients (kernels_conv_cpu_dx.c, kernels_conv_cpu_dw.c; a 1x1
// convolution's without stride or padding as dot products along the positions,
// kernels_conv_cpu_dw1x1.c).
Kernel *kernel_conv_cpu(KernelBuilder *kb);
Kernel *kernel_conv_cpu_dx(KernelBuilder *kb);
Kernel *kernel_conv_cpu_dw(KernelBuilder *kb);
Kernel *kernel_conv_cpu_dw1x1(KernelBuilder *kb);

// The CPU's matrix products (kernels_packed.c), laid out as the best CPU libraries lay them
// out: C[M,N] = sum over p < K of A[i,p] B[p,j] in tiles of MC x NC, one parallel iteration
// each with its sums in a buffer of its own; the reduction in blocks of KC; per block, B's
// block packed into rows of NC floats (pack_b: the caller gathers it, from an image say) and
// register tiles of rows x cols over it. What A, B and C are is the caller's.
typedef struct Product Product;
struct Product {
  int64_t M, N, K;
  // The reduction runs in groups of KG steps (0: one group), no block straddling two, so
  // that what a block gathers can depend on its group (a convolution's tap, say); the
  // groups fall into `splits` parts, each summed into its own C (partial sums).
  int64_t KG, splits;
  int64_t MC, NC, KC;   // MC in whole register tiles (packed_rows_block)
  int rows, cols;       // the register tile (packed_tile)
  int a_buf;            // A[i, p] is a_buf[a_index(i, p)]
  KExpr *(*a_index)(KernelBuilder *kb, const Product *pr, KExpr *i, KExpr *p);
  // The tile reads A in place (at a_index(i0, p0) + p*a_step + i*a_row for a block) instead
  // of from a packed copy: those strides hold within every block.
  bool a_direct;
  int64_t a_step, a_row;
  // Or A is packed by the caller, row by row: A[m0 + i, p0 + p] for i < MC, p < kc into
  // ap[i*lda + p] (zeros in rows past M), which the tile then reads in place. For an A whose
  // rows are contiguous runs of a tensor (a weight gradient's patches), where pack_a's
  // interleaved panels would be written a scalar at a time.
  void (*pack_a_rows)(KernelBuilder *kb, const Product *pr, KStmt *into, int ap, int64_t lda, KExpr *m0, KExpr *p0,
                      KExpr *kc);
  // A task computes its columns [n0, n0 + NC) of each of `sets` column sets in turn (0 or
  // 1: one set), set r's columns at r*N + n0 in C (whose columns are sets*N), each into its
  // own part of c, and stores them together: a convolution's input gradient at stride s
  // gets the s column phases of whole rows of dx that way. `cols` is min(NC, N - n0), the
  // columns of the tile in each set; n0 below is set r's (r*N + n0), except for the store.
  int64_t sets;
  // Packs B[p0 + p, n0 + j] for p < kc, j < cols into bp[p*ldb + j], zeros from cols to NC.
  void (*pack_b)(KernelBuilder *kb, const Product *pr, KStmt *into, int bp, int64_t ldb, KExpr *p0, KExpr *kc, KExpr *n0,
                 KExpr *cols);
  // Whether the block [p0, p0 + kc) adds anything to columns [n0, n0 + cols) (NULL: every block does).
  KExpr *(*live)(KernelBuilder *kb, const Product *pr, KStmt *into, KExpr *p0, KExpr *kc, KExpr *n0, KExpr *cols);
  // Stores C[m0 + i, r*N + n0 + j] = c[(r*MC + i)*ldc + j] for i < min(MC, M - m0), j < cols
  // and every set r, of reduction part `split`.
  void (*store)(KernelBuilder *kb, const Product *pr, KStmt *into, int c, int64_t ldc, KExpr *m0, KExpr *n0,
                KExpr *cols, KExpr *split);
  const void *ctx;      // the caller's
};

void packed_tile(const KernelTarget *t, int *rows, int *cols);
// The rows of C a task computes (MC): all of M up to a bound, in whole register tiles.
int64_t packed_rows_block(const Product *pr);
Kernel *packed_product(KernelBuilder *kb, const Product *pr);
// for (v = lo; v < hi; v++) inside `into`, with a fresh variable named name.
KStmt *kernel_range(KernelBuilder *kb, KStmt *into, const char *name, KExpr *lo, KExpr *hi, int *var);
// buf[index] where ok, else 0; the index is 0 where not ok, so no lowering reads outside buf.
KExpr *kernel_load_if(Kernel *k, int buf, KExpr *ok, KExpr *index);
// A fresh variable named name, set to value in `into`; returns a reference to it.
KExpr *kernel_let(KernelBuilder *kb, KStmt *into, const char *name, KExpr *value);

// The kernel rules ops.def names, kernel_RULE, one per op (a kernel_for that dispatches on the
// op would let a new op fall through to another's kernel).
Kernel *kernel_conv2d(KernelBuilder *kb);        // kernels_conv.c
Kernel *kernel_conv2d_dx(KernelBuilder *kb);
Kernel *kernel_conv2d_dw(KernelBuilder *kb);
Kernel *kernel_sum_chunks(KernelBuilder *kb);
Kernel *kernel_conv2d_weight_t(KernelBuilder *kb);   // kernels_conv_cpu_dx.c
Kernel *kernel_conv2d_phases(KernelBuilder *kb);     // kernels_conv_phases.c
Kernel *kernel_linear(KernelBuilder *kb);        // kernels_linear.c
Kernel *kernel_linear_dx(KernelBuilder *kb);
Kernel *kernel_linear_dw(KernelBuilder *kb);
Kernel *kernel_bn_stats(KernelBuilder *kb);      // kernels_norm.c
Kernel *kernel_bn_running_stats(KernelBuilder *kb);
Kernel *kernel_bn_apply(KernelBuilder *kb);
Kernel *kernel_bn_update_running(KernelBuilder *kb);
Kernel *kernel_bn_dparams(KernelBuilder *kb);
Kernel *kernel_bn_dx(KernelBuilder *kb);
Kernel *kernel_bn_dx_running(KernelBuilder *kb);
Kernel *kernel_bias_grad(KernelBuilder *kb);
Kernel *kernel_pointwise(KernelBuilder *kb);     // kernels_pointwise.c: the elementwise ops
Kernel *kernel_gate_grad(KernelBuilder *kb);
Kernel *kernel_maxpool(KernelBuilder *kb);       // kernels_pool.c
Kernel *kernel_avgpool(KernelBuilder *kb);
Kernel *kernel_global_avg_pool(KernelBuilder *kb);
Kernel *kernel_maxpool_grad(KernelBuilder *kb);
Kernel *kernel_avgpool_grad(KernelBuilder *kb);
Kernel *kernel_global_avg_pool_grad(KernelBuilder *kb);
Kernel *kernel_xent(KernelBuilder *kb);          // kernels_loss.c
Kernel *kernel_xent_grad(KernelBuilder *kb);
Kernel *kernel_sgd_update(KernelBuilder *kb);    // kernels_optim.c
Kernel *kernel_adam_update(KernelBuilder *kb);
// Whether n is an optimizer's update, and the GPU's update of the n parameters of nodes in one
// launch, on the whole arena (its two buffers, at offset 0: as floats and as int64), every
// operand at its offset in the plan (arena bytes by node id); each element's math is the
// node's own kernel's.
bool kernel_is_update(const Node *n);
Kernel *kernel_optim_group(Arena *a, Node *const *nodes, int n, const int64_t *offset, const char *name);

// The GPU's feature-cache gather (kernels_features.c): buffers the device's cache (a row per
// training image), the batch's rows of it (int64), and the boundary tensor it fills.
Kernel *kernel_feature_gather(Arena *a, const Node *boundary, int64_t batch);
// The GPU's data path (kernels_augment.c): a batch of batch x channels x height x width floats
// built on the device from decoded uint8 images, a sample parameter table, filter taps and a
// normalisation table, as the CPU transforms build it; or (bytes) the same as bytes, which
// colour jitter (kernels_jitter.c) takes: the contrast means of the samples, then the
// adjusted and normalised batch.
Kernel *kernel_augment(Arena *a, int64_t batch, int64_t channels, int64_t height, int64_t width, bool bytes);
Kernel *kernel_jitter_means(Arena *a, int64_t batch, int64_t channels, int64_t height, int64_t width);
Kernel *kernel_jitter(Arena *a, int64_t batch, int64_t channels, int64_t height, int64_t width);

#endif
