// fma_peak.c: the most float32 multiply-adds one core of this machine does per second, so that
// a kernel's GFLOPS, and a speed target, can be read as a fraction of what the core can do.
// Twelve independent chains of fused multiply-adds (enough to cover the FMA units' latency),
// 8 wide (AVX2) and, where the machine has AVX-512, 16 wide: the register tile uses 16 lanes
// there, and whether that doubles the rate depends on how many of the core's FMA units take
// 512-bit operations. Timed in CPU time, so other work on a shared machine counts less.
//
//   build/bench/fma_peak
#include "clock.h"
#include <immintrin.h>
#include <stdio.h>

#define FMA12(fmadd, b, c)                                                                                       \
  a0 = fmadd(a0, b, c), a1 = fmadd(a1, b, c), a2 = fmadd(a2, b, c), a3 = fmadd(a3, b, c), a4 = fmadd(a4, b, c),  \
  a5 = fmadd(a5, b, c), a6 = fmadd(a6, b, c), a7 = fmadd(a7, b, c), a8 = fmadd(a8, b, c), a9 = fmadd(a9, b, c),  \
  a10 = fmadd(a10, b, c), a11 = fmadd(a11, b, c)

// rounds x 12 x LANES multiply-adds; the result is printed so that none is optimised away.
// Distinct starts, or the compiler sees twelve copies of one chain and keeps one.
#define FMA_CHAINS(name, isa, vec, set1, fmadd, add, store, lanes)                                             \
  __attribute__((target(isa))) static float name(long rounds) {                                               \
    vec b = set1(0.999999f), c = set1(1e-6f);                                                                    \
    vec a0 = set1(0), a1 = set1(1), a2 = set1(2), a3 = set1(3), a4 = set1(4), a5 = set1(5), a6 = set1(6),        \
        a7 = set1(7), a8 = set1(8), a9 = set1(9), a10 = set1(10), a11 = set1(11);                                \
    for (long r = 0; r < rounds; r++)                                                                            \
      FMA12(fmadd, b, c);                                                                                        \
    vec s = add(add(add(a0, a1), add(a2, a3)), add(add(a4, a5), add(a6, a7)));                                   \
    s = add(s, add(add(a8, a9), add(a10, a11)));                                                                 \
    float out[lanes];                                                                                            \
    store(out, s);                                                                                               \
    return out[0];                                                                                               \
  }

FMA_CHAINS(fma_chains_8, "avx2,fma", __m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, _mm256_storeu_ps, 8)
FMA_CHAINS(fma_chains_16, "avx512f", __m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_storeu_ps, 16)

// The best of 5 timings of `chains`, in GFLOPS.
static double peak(float (*chains)(long), int lanes) {
  long rounds = 100000000;
  double best = 0;
  float sink = 0;
  for (int r = 0; r < 5; r++) {
    double t = cpu_now();
    sink += chains(rounds);
    double gflops = 2.0 * 12 * lanes * (double)rounds / (cpu_now() - t) * 1e-9;
    best = gflops > best ? gflops : best;
  }
  if (sink == 12345.0f)  // never: keeps the sums alive
    printf("%g\n", sink);
  return best;
}

int main(void) {
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    printf("fma_peak: this CPU has no AVX2 and FMA\n");
    return 1;
  }
  printf("one core: %.1f GFLOPS float32, 8 lanes (AVX2; best of 5)\n", peak(fma_chains_8, 8));
  if (__builtin_cpu_supports("avx512f"))
    printf("one core: %.1f GFLOPS float32, 16 lanes (AVX-512; best of 5)\n", peak(fma_chains_16, 16));
  return 0;
}
