// gpu_check.c: --check-gpu. Every kernel of a step runs on the CPU and on the GPU from the
// same inputs, and each buffer it writes is compared. The CPU's result then goes to the
// GPU before the next kernel, so a wrong kernel shows where it is instead of spreading
// through the rest of the step.
#include "trainer_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// A float buffer passes when its largest difference is at most a fraction of its largest
// magnitude: 1e-4 where both devices compute in float32 (what differs is fused multiply-adds,
// the order of a block's partial sums and the last bits of exp, log and sqrt), more where
// the GPU multiplies in bf16 (the kernel's call says).
typedef struct Difference {
  double max_diff, max_ref;
  bool nan_mismatch;
} Difference;

static Difference compare_floats(const float *gpu, const float *cpu, int64_t n) {
  Difference d = {0};
  for (int64_t i = 0; i < n; i++) {
    if (isnan(cpu[i]) || isnan(gpu[i])) {
      d.nan_mismatch |= isnan(cpu[i]) != isnan(gpu[i]);
      continue;
    }
    if (isinf(cpu[i]) || isinf(gpu[i])) {
      d.nan_mismatch |= cpu[i] != gpu[i];
      continue;
    }
    double diff = fabs((double)gpu[i] - cpu[i]), ref = fabs((double)cpu[i]);
    d.max_diff = diff > d.max_diff ? diff : d.max_diff;
    d.max_ref = ref > d.max_ref ? ref : d.max_ref;
  }
  return d;
}

static void run_cpu(char *arena, const TlcKernelCall *c) {
  void *bufs[8];
  for (int b = 0; b < c->nbufs; b++)
    bufs[b] = arena + c->offset[b];
  tlc_parallel_for(c->extent, c->cpu, bufs);
}

void trainer_launch_call(TlcGpu *gpu, const TlcKernelCall *c) {
  static const int64_t whole_arena[2] = {0, 0};
  if (c->pass1 >= 0)
    tlc_gpu_launch(gpu, c->pass1, c->offset, c->nbufs);
  if (c->launch >= 0)
    tlc_gpu_launch(gpu, c->launch, c->on_arena ? whole_arena : c->offset, c->on_arena ? 2 : c->nbufs);
}

// Runs one kernel on both devices and compares what it wrote; *worst is the largest
// relative difference seen. Returns -1 on a GPU error, 1 on a mismatch, 0 when it agrees.
static int check_kernel(TlcRun *run, const TlcKernelCall *c, void *scratch, bool verbose, double *worst,
                        TlcError *err) {
  trainer_launch_call(run->gpu, c);
  if (tlc_gpu_sync(run->gpu, err) != 0)
    return -1;
  run_cpu(run->arena, c);
  int verdict = 0;
  for (int b = 0; b < c->nbufs; b++) {
    if (!(c->written >> b & 1))
      continue;
    // Into scratch: the host arena keeps the CPU's result.
    if (tlc_gpu_download(run->gpu, scratch, c->offset[b], c->bytes[b], err) != 0)
      return -1;
    const char *host = run->arena + c->offset[b];
    double rel;
    bool bad;
    if (c->is_int >> b & 1) {
      bad = memcmp(scratch, host, (size_t)c->bytes[b]) != 0;
      rel = bad ? 1 : 0;
    } else {
      Difference d = compare_floats(scratch, (const float *)host, c->bytes[b] / 4);
      rel = d.max_ref > 0 ? d.max_diff / d.max_ref : d.max_diff > 0 ? 1 : 0;
      bad = d.nan_mismatch || rel > c->tolerance;
    }
    *worst = rel > *worst ? rel : *worst;
    if (verbose || bad) {
      printf("  %-48s buffer %d  %s  %.2e", c->name, b, c->is_int >> b & 1 ? "int64" : "float", rel);
      if (c->tolerance > 1e-4)
        printf(" (bf16 tiles: within %.0e)", c->tolerance);
      puts(bad ? "  MISMATCH" : "");
    }
    verdict |= bad;
    if (tlc_gpu_upload(run->gpu, host, c->offset[b], c->bytes[b], err) != 0)
      return -1;
  }
  return verdict;
}

int trainer_check_step(TlcRun *run, const TlcKernelCall *calls, int n, const char *what, bool verbose,
                       TlcError *err) {
  int64_t largest = 0;
  for (int i = 0; i < n; i++)
    for (int b = 0; b < calls[i].nbufs; b++)
      largest = calls[i].bytes[b] > largest ? calls[i].bytes[b] : largest;
  void *scratch = malloc((size_t)largest + 16);
  if (!scratch)
    return tlc_fail(err, "out of memory");
  // Both arenas start equal: the batch, and whatever the last step left.
  int status = tlc_gpu_upload(run->gpu, run->arena, 0, run->model->arena_bytes, err);
  int mismatches = 0;
  double worst = 0;
  if (verbose)
    printf("check-gpu: %s, kernel by kernel (largest difference relative to the buffer's largest value; "
           "tolerance 1e-04, or as a bf16 kernel's call says)\n", what);
  for (int i = 0; i < n && status == 0; i++) {
    int r = check_kernel(run, &calls[i], scratch, verbose, &worst, err);
    if (r < 0)
      status = -1;
    mismatches += r > 0;
  }
  free(scratch);
  if (status != 0)
    return -1;
  printf("check-gpu: %s: %d kernels, %d mismatched, largest relative difference %.2e\n", what, n, mismatches, worst);
  if (mismatches)
    return tlc_fail(err, "--check-gpu: %d kernels of the %s differ between the GPU and the CPU", mismatches, what);
  return 0;
}
