// exec.h: a test executor for step graphs. It lowers every node to its kernel, compiles
// them through LLVM into a shared object and runs them node by node on one buffer per
// node. The product runs the generated loop on a planned arena instead; this executor
// lets the numeric tests set and read any tensor.
#ifndef TLC_TEST_EXEC_H
#define TLC_TEST_EXEC_H

#include "lower.h"

typedef void KernelFn(void *const *bufs, int64_t begin, int64_t end);

typedef struct Exec {
  const Graph *g;
  void **buf;           // per node id: its tensor
  KernelFn **fn;        // per node id: its kernel, or NULL
  KernelFn **pass1;     // per node id: the first pass run before it (Kernel.pass1), or NULL
  Kernel **kernel;
  // The target keeps activations in bf16 (KernelTarget.bf16_activations): those tensors hold
  // 2-byte values (value_bf16), a convolution's chunk statistics after them at
  // value_stats_offset; each buffer still has node_bytes.
  bool bf16;
} Exec;

// Builds the kernels of g, laid out for target, in dir (made if missing) and allocates every
// node's tensor (zeroed). target NULL takes the environment's TLC_TEST_KERNELS: "gpu" (the
// GPU's layout in float32) or "gpu-tiles" (with bf16 tensor-core tiles), run through their
// CPU lowering; else the CPU's kernels.
Exec exec_build(Arena *a, const Graph *g, const char *dir, const KernelTarget *target);
// Runs node n (nothing for nodes without a kernel and for in-place updates).
void exec_node(Exec *x, const Node *n);
// Node n's kernel arguments (MAX_INPUTS + 2): its inputs' tensors, then its own unless it
// updates its inputs in place, then the chunk statistics apart from a bf16 tensor, if any.
void exec_args(const Exec *x, const Node *n, void **bufs);
// Runs node n's kernel, in-place updates included.
void exec_run(Exec *x, const Node *n);
// Runs the forward pass and returns the mean loss.
double exec_forward(Exec *x);
// Runs the forward and backward passes, without the optimizer and running-statistics updates.
void exec_step(Exec *x);
// Fills parameters, buffers, images and labels from the generator make_fixtures.py
// implements for PyTorch (u(name, i) = splitmix64(fnv1a64(name) ^ i) scaled to [-1, 1)).
void exec_fill_generated(Exec *x);
// Runs a whole training step, optimizer updates included.
void exec_train_step(Exec *x);
// Loads the model, applies the experiment and builds its training step (or, when
// training is false, its evaluation pass).
Graph *exec_load_step(Arena *a, const char *path, bool training);

#endif
