// fma_peak.c: the most float32 multiply-adds one core of this machine does per second, so that
// a kernel's GFLOPS, and a speed target, can be read as a fraction of what the core can do.
// Twelve independent chains of 8-wide fused multiply-adds (enough to cover the FMA units'
// latency), timed in CPU time, so other work on a shared machine counts less.
//
//   build/bench/fma_peak
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static double cpu_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

#define FMA12(b, c)                                                                                              \
  a0 = _mm256_fmadd_ps(a0, b, c), a1 = _mm256_fmadd_ps(a1, b, c), a2 = _mm256_fmadd_ps(a2, b, c),             \
  a3 = _mm256_fmadd_ps(a3, b, c), a4 = _mm256_fmadd_ps(a4, b, c), a5 = _mm256_fmadd_ps(a5, b, c),              \
  a6 = _mm256_fmadd_ps(a6, b, c), a7 = _mm256_fmadd_ps(a7, b, c), a8 = _mm256_fmadd_ps(a8, b, c),              \
  a9 = _mm256_fmadd_ps(a9, b, c), a10 = _mm256_fmadd_ps(a10, b, c), a11 = _mm256_fmadd_ps(a11, b, c)

// rounds x 12 x 8 multiply-adds; the result is printed so that none is optimised away.
__attribute__((target("avx2,fma"))) static float fma_chains(long rounds) {
  __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-6f);
  // distinct starts, or the compiler sees twelve copies of one chain and keeps one
#define START(i) _mm256_set1_ps((float)(i))
  __m256 a0 = START(0), a1 = START(1), a2 = START(2), a3 = START(3), a4 = START(4), a5 = START(5), a6 = START(6),
         a7 = START(7), a8 = START(8), a9 = START(9), a10 = START(10), a11 = START(11);
  for (long r = 0; r < rounds; r++)
    FMA12(b, c);
  __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                           _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
  s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
  float lanes[8];
  _mm256_storeu_ps(lanes, s);
  return lanes[0];
}

int main(void) {
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    printf("fma_peak: this CPU has no AVX2 and FMA\n");
    return 1;
  }
  long rounds = 100000000;
  double best = 0;
  float sink = 0;
  for (int r = 0; r < 5; r++) {
    double t = cpu_now();
    sink += fma_chains(rounds);
    double gflops = 2.0 * 12 * 8 * (double)rounds / (cpu_now() - t) * 1e-9;
    best = gflops > best ? gflops : best;
  }
  printf("one core: %.1f GFLOPS float32 (best of 5; %g)\n", best, sink);
  return 0;
}
