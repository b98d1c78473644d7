// kir_cuda.c: kernels as CUDA C for NVRTC. Each kernel becomes one __global__ function
// whose threads are the iterations of its parallel loop. Inside a thread everything runs
// in the kernel IR's order and no thread reads what another writes, so a kernel needs no
// atomics or synchronisation and its results do not depend on the launch: GPU results
// are deterministic, as on the CPU.
#include "kir.h"

// The prelude is codegen/cuda_prelude.cuh, embedded here as text (TLC_CUDA_PRELUDE is its path).
__asm__(".section .rodata\n"
        "cuda_prelude_text:\n"
        ".incbin \"" TLC_CUDA_PRELUDE "\"\n"
        ".byte 0\n"
        ".previous\n");
extern const char cuda_prelude_text[];

void kir_cuda_prelude(FILE *out) {
  fputs(cuda_prelude_text, out);
  fputc('\n', out);
}

int64_t kir_cuda_grid(const Kernel *k) {
  return (kir_parallel_extent(k) + KIR_CUDA_BLOCK - 1) / KIR_CUDA_BLOCK;
}

static void print_arguments(FILE *out, const Kernel *k) {
  for (int i = 0; i < k->nbufs; i++) {
    const KBuf *b = &k->bufs[i];
    // Read-only buffers are const so that loads may go through the read-only cache;
    // __restrict__ states what the CPU lowering's noalias states.
    fprintf(out, "%s    %s%s *__restrict__ b%d", i ? ",\n" : "", b->written ? "" : "const ",
            b->type == KT_F32 ? "float" : "int64_t", i);
  }
}

void kir_cuda_print(FILE *out, const Kernel *k) {
  const KStmt *loop = k->body->body[0];
  if (k->body->nbody != 1)
    fatal("internal error: kernel %s has statements after its parallel loop", k->name);
  kir_print_header(out, k);
  fprintf(out, "extern \"C\" __global__ void __launch_bounds__(%d) %s(\n", KIR_CUDA_BLOCK, k->name);
  print_arguments(out, k);
  fputs(") {\n", out);
  const char *v = k->vars[loop->var].name;
  fprintf(out, "  const int64_t %s = %lld + (int64_t)blockIdx.x * %d + threadIdx.x;   // the parallel loop\n", v,
          (long long)loop->lo->i, KIR_CUDA_BLOCK);
  fprintf(out, "  if (%s >= %lld)\n    return;\n", v, (long long)loop->hi->i);
  kir_print_locals(out, k);
  kir_print_block(out, k, loop, 1);
  fputs("}\n", out);
}
