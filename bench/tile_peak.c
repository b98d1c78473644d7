// tile_peak.c: the speed of a register tile like the CPU products' (codegen/kir_llvm_tile.c)
// where nothing else gets in its way: A packed in panels, B's block in L1 and L2, C's tile in
// L2, the same loop order and pitches (an MC x KC block of A, KC x NC of B, rows 16 floats
// past NC), for several tile shapes. What the generated kernels reach (build/bench/step_profile)
// over this is what their packing, stores and epilogues cost; this over build/bench/fma_peak
// is what the tile's own loads cost.
//
//   build/bench/tile_peak
#include "clock.h"
#include <immintrin.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

enum { MC = 256, NC = 256, KC = 128, LD = NC + 16, MAX_ROWS = 16, MAX_VECS = 4 };

// C[rows][vecs x lanes] += A (panel: a[p*rows + i]) x B (rows of LD floats), over KC steps,
// with vectors of type V (lanes floats) and the given load, broadcast and multiply-add.
#define TILE(isa, target_isa, V, lanes, load, set1, fmadd, store, rows, vecs)                                          \
  __attribute__((target(target_isa), noinline)) static void tile_##isa##_##rows##x##vecs(float *c, const float *a,  \
                                                                                   const float *b) {         \
    V acc[rows][vecs];                                                                                     \
    for (int i = 0; i < rows; i++)                                                                         \
      for (int v = 0; v < vecs; v++)                                                                       \
        acc[i][v] = load(c + i * LD + v * lanes);                                                          \
    for (int p = 0; p < KC; p++) {                                                                         \
      V bv[vecs];                                                                                          \
      for (int v = 0; v < vecs; v++)                                                                       \
        bv[v] = load(b + p * LD + v * lanes);                                                              \
      for (int i = 0; i < rows; i++) {                                                                     \
        V x = set1(a[p * rows + i]);                                                                       \
        for (int v = 0; v < vecs; v++)                                                                     \
          acc[i][v] = fmadd(x, bv[v], acc[i][v]);                                                          \
      }                                                                                                    \
    }                                                                                                      \
    for (int i = 0; i < rows; i++)                                                                         \
      for (int v = 0; v < vecs; v++)                                                                       \
        store(c + i * LD + v * lanes, acc[i][v]);                                                          \
  }
#define TILE512(rows, vecs) \
  TILE(avx512, "avx512f", __m512, 16, _mm512_loadu_ps, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_storeu_ps, rows, vecs)
#define TILE256(rows, vecs) \
  TILE(avx2, "avx2,fma", __m256, 8, _mm256_loadu_ps, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_storeu_ps, rows, vecs)

TILE512(6, 4)   // tlc's shape with AVX-512
TILE512(8, 2)
TILE512(12, 2)
TILE512(16, 1)
TILE256(6, 2)   // with AVX2
TILE256(4, 3)
TILE256(8, 1)
typedef void (*TileFn)(float *c, const float *a, const float *b);

// GFLOPS of the best of 5 passes, each 100 times over the block: B's column panels outer.
static double time_tile(TileFn fn, int rows, int cols, float *a, float *b, float *c) {
  double best = 0;
  for (int rep = 0; rep < 5; rep++) {
    double start = cpu_now(), flops = 0;
    for (int it = 0; it < 100; it++)
      for (int jr = 0; jr + cols <= NC; jr += cols)
        for (int ir = 0; ir + rows <= MC; ir += rows) {
          fn(c + ir * LD + jr, a + ir * KC, b + jr);
          flops += 2.0 * rows * cols * KC;
        }
    double gflops = flops / (cpu_now() - start) * 1e-9;
    best = gflops > best ? gflops : best;
  }
  return best;
}

typedef struct Shape {
  TileFn fn;
  int rows, vecs;
} Shape;

int main(void) {
  static const Shape avx512[] = {{tile_avx512_6x4, 6, 4}, {tile_avx512_8x2, 8, 2}, {tile_avx512_12x2, 12, 2},
                                 {tile_avx512_16x1, 16, 1}};
  static const Shape avx2[] = {{tile_avx2_6x2, 6, 2}, {tile_avx2_4x3, 4, 3}, {tile_avx2_8x1, 8, 1}};
  bool wide = __builtin_cpu_supports("avx512f");
  if (!wide && !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) {
    printf("tile_peak: this CPU has neither AVX-512 nor AVX2 with FMA\n");
    return 1;
  }
  const Shape *shapes = wide ? avx512 : avx2;
  int nshapes = wide ? 4 : 3, lanes = wide ? 16 : 8;
  float *a = aligned_alloc(64, sizeof(float) * MC * KC), *b = aligned_alloc(64, sizeof(float) * KC * LD);
  float *c = aligned_alloc(64, sizeof(float) * MC * LD);
  if (!a || !b || !c)
    return 1;
  for (int i = 0; i < MC * KC; i++)
    a[i] = 1e-3f * (float)(i % 7);
  for (int i = 0; i < KC * LD; i++)
    b[i] = 1e-3f * (float)(i % 5);
  for (int i = 0; i < MC * LD; i++)
    c[i] = 0;
  for (int i = 0; i < nshapes; i++)
    printf("one core: register tile %2d x %2d: %.1f GFLOPS float32 (%s, best of 5)\n", shapes[i].rows,
           shapes[i].vecs * lanes, time_tile(shapes[i].fn, shapes[i].rows, shapes[i].vecs * lanes, a, b, c),
           wide ? "AVX-512" : "AVX2");
  printf("(checksum %g)\n", (double)c[5]);
  free(a);
  free(b);
  free(c);
  return 0;
}
