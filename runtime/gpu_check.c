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
// the GPU multiplies in bf16 or reads or writes a buffer it holds in bf16 (the kernel's call
// says; codegen/host_c.c decides).
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
  void *bufs[TLC_MAX_BUFFERS];
  for (int b = 0; b < c->nbufs; b++)
    bufs[b] = arena + c->offset[b];
  tlc_parallel_for(c->extent, c->cpu, bufs);
}

void trainer_launch_call(TlcGpu *gpu, const TlcKernelCall *c) {
  static const int64_t whole_arena[2] = {0, 0};
  if (c->pass1 >= 0)
    tlc_gpu_launch(gpu, c->pass1, c->gpu_offset, c->nbufs);
  if (c->launch >= 0)
    tlc_gpu_launch(gpu, c->launch, c->on_arena ? whole_arena : c->gpu_offset, c->on_arena ? 2 : c->nbufs);
}

// bf16 as the GPU stores it (the prelude's tlc_f2bf, tlc_bf2f): the top 16 bits of the float,
// rounded to nearest even; a NaN stays a quiet NaN.
static uint16_t to_bf16(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    return (uint16_t)((u >> 16) | 0x40u);
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static float from_bf16(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float x;
  memcpy(&x, &u, 4);
  return x;
}

// Buffer b of the call as the GPU holds it: its bytes there and in which form.
static bool is_bf16(const TlcKernelCall *c, int b) { return c->bf16 >> b & 1; }
static int64_t gpu_bytes(const TlcKernelCall *c, int b) { return is_bf16(c, b) ? c->bytes[b] / 2 : c->bytes[b]; }

// The CPU's buffers (the kernel's inputs, and its outputs as the CPU left them) go to the
// GPU's arena, so that both devices start from the same values and a wrong kernel shows
// where it is instead of spreading through the step. A buffer the GPU holds in bf16 is
// rounded to bf16 on the CPU too: the CPU kernel then reads what the GPU kernel reads (a max
// pooling's ties, say, fall alike), and what differs is the kernel's own arithmetic.
static int upload_buffers(TlcRun *run, const TlcKernelCall *c, uint16_t *half, TlcError *err) {
  for (int b = 0; b < c->nbufs; b++) {
    const char *host = run->arena + c->offset[b];
    if (is_bf16(c, b)) {
      float *f = (float *)(run->arena + c->offset[b]);
      for (int64_t i = 0; i < c->bytes[b] / 4; i++) {
        half[i] = to_bf16(f[i]);
        f[i] = from_bf16(half[i]);
      }
      host = (const char *)half;
    }
    if (tlc_gpu_upload(run->gpu, host, c->gpu_offset[b], gpu_bytes(c, b), err) != 0)
      return -1;
  }
  return 0;
}

// The uploads before call i of calls[0..n). A run of updates is one launch over the whole
// arena at its first call (on_arena): the buffers of every call of the run (the calls after it
// with no launch of their own) go up before it, and those calls upload nothing, which would
// undo what the launch wrote.
static int upload_call(TlcRun *run, const TlcKernelCall *calls, int i, int n, uint16_t *half, TlcError *err) {
  if (calls[i].launch < 0 && calls[i].pass1 < 0)
    return 0;
  int end = i + 1;
  while (calls[i].on_arena && end < n && calls[end].launch < 0)
    end++;
  for (int j = i; j < end; j++)
    if (upload_buffers(run, &calls[j], half, err) != 0)
      return -1;
  return 0;
}

// What the GPU wrote into buffer b, as floats in out (from scratch, where it came down).
static int download_buffer(TlcRun *run, const TlcKernelCall *c, int b, void *scratch, float *out, TlcError *err) {
  if (tlc_gpu_download(run->gpu, is_bf16(c, b) ? scratch : (void *)out, c->gpu_offset[b], gpu_bytes(c, b), err) != 0)
    return -1;
  if (is_bf16(c, b))
    for (int64_t i = 0; i < c->bytes[b] / 4; i++)
      out[i] = from_bf16(((const uint16_t *)scratch)[i]);
  return 0;
}

// Runs call i of calls[0..n) on both devices and compares what it wrote; *worst is the largest
// relative difference seen. Returns -1 on a GPU error, 1 on a mismatch, 0 when it agrees.
static int check_kernel(TlcRun *run, const TlcKernelCall *calls, int i, int n, void *scratch, float *gpu, bool verbose,
                        double *worst, TlcError *err) {
  const TlcKernelCall *c = &calls[i];
  if (upload_call(run, calls, i, n, scratch, err) != 0)
    return -1;
  trainer_launch_call(run->gpu, c);
  if (tlc_gpu_sync(run->gpu, err) != 0)
    return -1;
  run_cpu(run->arena, c);
  int verdict = 0;
  for (int b = 0; b < c->nbufs; b++) {
    if (!(c->written >> b & 1))
      continue;
    // Into gpu: the host arena keeps the CPU's result.
    if (download_buffer(run, c, b, scratch, gpu, err) != 0)
      return -1;
    const char *host = run->arena + c->offset[b];
    double rel;
    bool bad;
    if (c->is_int >> b & 1) {
      bad = memcmp(gpu, host, (size_t)c->bytes[b]) != 0;
      rel = bad ? 1 : 0;
    } else {
      Difference d = compare_floats(gpu, (const float *)host, c->bytes[b] / 4);
      rel = d.max_ref > 0 ? d.max_diff / d.max_ref : d.max_diff > 0 ? 1 : 0;
      bad = d.nan_mismatch || rel > c->tolerance;
    }
    *worst = rel > *worst ? rel : *worst;
    if (verbose || bad) {
      printf("  %-48s buffer %d  %s  %.2e", c->name, b, c->is_int >> b & 1 ? "int64" : is_bf16(c, b) ? "bf16" : "float",
             rel);
      if (c->tolerance > 1e-4)
        printf(" (bf16: within %.0e)", c->tolerance);
      puts(bad ? "  MISMATCH" : "");
    }
    verdict |= bad;
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
  float *gpu = malloc((size_t)largest + 16);
  if (!scratch || !gpu) {
    free(scratch);
    free(gpu);
    return tlc_fail(err, "out of memory");
  }
  int status = 0, mismatches = 0;
  double worst = 0;
  if (verbose)
    printf("check-gpu: %s, kernel by kernel (largest difference relative to the buffer's largest value; "
           "tolerance 1e-04, or as a bf16 kernel's call says)\n", what);
  for (int i = 0; i < n && status == 0; i++) {
    int r = check_kernel(run, calls, i, n, scratch, gpu, verbose, &worst, err);
    if (r < 0)
      status = -1;
    mismatches += r > 0;
  }
  free(scratch);
  free(gpu);
  if (status != 0)
    return -1;
  printf("check-gpu: %s: %d kernels, %d mismatched, largest relative difference %.2e\n", what, n, mismatches, worst);
  if (mismatches)
    return tlc_fail(err, "--check-gpu: %d kernels of the %s differ between the GPU and the CPU", mismatches, what);
  return 0;
}
