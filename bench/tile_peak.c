// tile_peak.c: the speed of a register tile like the CPU products' (codegen/kir_llvm_tile.c)
// where nothing else gets in its way: A packed in panels, B's block in L1 and L2, C's tile in
// L2, the same loop order and pitches (an MC x KC block of A, KC x NC of B, rows 16 floats
// past NC), for several tile shapes. What the generated kernels reach (build/bench/step_profile)
// over this is what their packing, stores and epilogues cost; this over build/bench/fma_peak
// is what the tile's own loads cost.
//
//   build/bench/tile_peak
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { MC = 256, NC = 256, KC = 128, LD = NC + 16, MAX_ROWS = 16, MAX_VECS = 4 };

static double cpu_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

// C[rows][vecs x 16] += A (panel: a[p*rows + i]) x B (rows of LD floats), over depth steps.
#define TILE(rows, vecs)                                                                                  \
  __attribute__((target("avx512f"), noinline)) static void tile_##rows##x##vecs(float *c, const float *a, \
                                                                                const float *b) {         \
    __m512 acc[rows][vecs];                                                                               \
    for (int i = 0; i < rows; i++)                                                                        \
      for (int v = 0; v < vecs; v++)                                                                      \
        acc[i][v] = _mm512_loadu_ps(c + i * LD + v * 16);                                                 \
    for (int p = 0; p < KC; p++) {                                                                        \
      __m512 bv[vecs];                                                                                    \
      for (int v = 0; v < vecs; v++)                                                                      \
        bv[v] = _mm512_loadu_ps(b + p * LD + v * 16);                                                     \
      for (int i = 0; i < rows; i++) {                                                                    \
        __m512 x = _mm512_set1_ps(a[p * rows + i]);                                                       \
        for (int v = 0; v < vecs; v++)                                                                    \
          acc[i][v] = _mm512_fmadd_ps(x, bv[v], acc[i][v]);                                               \
      }                                                                                                   \
    }                                                                                                     \
    for (int i = 0; i < rows; i++)                                                                        \
      for (int v = 0; v < vecs; v++)                                                                      \
        _mm512_storeu_ps(c + i * LD + v * 16, acc[i][v]);                                                 \
  }

TILE(8, 2)   // tlc's shape with AVX-512
TILE(12, 2)
TILE(6, 4)
TILE(16, 1)

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

int main(void) {
  if (!__builtin_cpu_supports("avx512f")) {
    printf("tile_peak: this CPU has no AVX-512\n");
    return 1;
  }
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
  struct { TileFn fn; int rows, vecs; } shapes[] = {{tile_8x2, 8, 2}, {tile_12x2, 12, 2}, {tile_6x4, 6, 4}, {tile_16x1, 16, 1}};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
    printf("one core: register tile %2d x %2d: %.1f GFLOPS float32 (best of 5)\n", shapes[s].rows,
           shapes[s].vecs * 16, time_tile(shapes[s].fn, shapes[s].rows, shapes[s].vecs * 16, a, b, c));
  printf("(checksum %g)\n", (double)c[5]);
  free(a);
  free(b);
  free(c);
  return 0;
}
