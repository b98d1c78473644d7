// host_c.h: the trainer's C source (host_c.c): the model description for the runtime, the
// step functions as straight-line kernel calls on arena offsets, and main().
#ifndef TLC_HOST_C_H
#define TLC_HOST_C_H

#include "lower.h"

typedef struct TrainerSpec {
  const char *source;   // the .graph file
  const Graph *model, *train, *eval;
  const MemPlan *plan;       // the CPU's arena
  const MemPlan *gpu_plan;   // the GPU's: bf16 activations where the GPU target has tiles
  const Recipe *recipe;
  // Each node's kernel by node id, for each device: the CPU object file holds the distinct
  // CPU kernels once (cpu_table), the GPU bundle the distinct GPU kernels (program).
  Kernel **train_cpu, **eval_cpu, **train_gpu, **eval_gpu;
  const KernelTable *cpu_table;
  const CudaProgram *program;
  int feature_node;          // feature_boundary() of the training step, or -1
  int feature_gather;        // the GPU's gather into the feature node: its launch in program, or -1
  int augment;               // the GPU's data path: kernel_augment's launch in program, then its bytes
                             // variant's, kernel_jitter_means' and kernel_jitter's; -1 for a model
                             // whose input is no gray or RGB image
  int pass1;                 // the first of the two-pass reductions' first passes (Kernel.pass1)
  const char *bundle_path;   // the compiled bundle to embed (tlc -o), or NULL
  size_t bundle_size;
} TrainerSpec;

void host_c_emit(FILE *out, const TrainerSpec *t);

#endif
