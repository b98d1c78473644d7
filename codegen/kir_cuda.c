// kir_cuda.c: kernels as CUDA C for NVRTC. Each kernel becomes one __global__ function. A
// loop kernel's threads are the iterations of its parallel loop, and no thread reads what
// another writes; a block kernel's threads share memory through barriers and warp
// operations in a fixed order. No kernel uses atomics, so results do not depend on how the
// threads are scheduled: GPU results are deterministic, as on the CPU.
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

static void print_arguments(FILE *out, const Kernel *k) {
  for (int i = 0; i < kir_nparams(k); i++) {
    const KBuf *b = &k->bufs[i];
    // Read-only buffers are const so that loads may go through the read-only cache;
    // __restrict__ states what the CPU lowering's noalias states.
    fprintf(out, "%s    %s%s *__restrict__ b%d", i ? ",\n" : "", b->written ? "" : "const ", kir_type_name(b->type), i);
  }
}

void kir_cuda_print(FILE *out, const Kernel *k) {
  kir_print_header(out, k);
  fprintf(out, "extern \"C\" __global__ void __launch_bounds__(%d) %s(\n", k->launch.block, k->name);
  print_arguments(out, k);
  fputs(") {\n", out);
  if (k->kind == KK_BLOCKS) {
    kir_print_locals(out, k);
    kir_print_block(out, k, k->body, 1);
    fputs("}\n", out);
    return;
  }
  const KStmt *loop = k->body->body[0];
  const char *v = k->vars[loop->var].name;
  fprintf(out, "  const int64_t %s = %lld + (int64_t)blockIdx.x * %d + threadIdx.x;   // the parallel loop\n", v,
          (long long)loop->lo->i, k->launch.block);
  fprintf(out, "  if (%s >= %lld)\n    return;\n", v, (long long)loop->hi->i);
  kir_print_locals(out, k);
  kir_print_block(out, k, loop, 1);
  fputs("}\n", out);
}
