// kir_cpu.c: the CPU meaning of the kernel IR's warp operations, which block kernels lowered
// for the CPU call (codegen/kir_llvm_blocks.c) once per warp, on the 32 lanes' registers in
// lane order. The layouts are the PTX ISA's (section "Warp-level matrix instructions": the
// ldmatrix fragment, and the mma.m16n8k16 fragments of A, B and C/D for .bf16), so a kernel
// computes the same on the CPU as on the GPU. Lane l's groupID is l / 4 and its
// threadID_in_group l % 4.
#include "tlcrt.h"

#include <string.h>

enum { LANES = 32 };

// cp.async with a source size: the first src_bytes of 16 are copied, the rest are zero.
void tlc_kir_cp_async(void *dst, const void *src, int64_t size, int64_t src_bytes) {
  size_t n = src_bytes < 0 ? 0 : src_bytes > size ? (size_t)size : (size_t)src_bytes;
  memcpy(dst, src, n);
  memset((char *)dst + n, 0, (size_t)size - n);
}

// ldmatrix.m8n8.b16 of `tiles` 8x8 tiles: lanes 8i .. 8i + 7 give the rows of tile i (rows[l]
// is the element where lane l's row starts); lane l gets in register i the elements at row
// l / 4, columns 2 (l % 4) and 2 (l % 4) + 1 of tile i (of its transpose with .trans), the
// lower column in the lower half.
void tlc_kir_ldmatrix(uint32_t *dst, const uint16_t *shared, const int64_t *rows, int64_t tiles, int64_t trans) {
  for (int lane = 0; lane < LANES; lane++) {
    int group = lane / 4, pair = 2 * (lane % 4);
    for (int i = 0; i < tiles; i++) {
      const int64_t *tile = rows + 8 * i;
      uint32_t lo = trans ? shared[tile[pair] + group] : shared[tile[group] + pair];
      uint32_t hi = trans ? shared[tile[pair + 1] + group] : shared[tile[group] + pair + 1];
      dst[lane * tiles + i] = lo | hi << 16;
    }
  }
}

static float bf16(uint32_t reg, int half) {
  uint32_t bits = (half ? reg >> 16 : reg & 0xffff) << 16;
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

// mma.m16n8k16.row.col.f32.bf16.bf16.f32: d = a b + c. Per lane: a[0..3] hold A at rows
// (g, g + 8, g, g + 8) and columns (2t, 2t, 2t + 8, 2t + 8) (+ 0 and + 1 in each register's
// halves); b[0..1] hold B at rows 2t and 2t + 8 (+ 0, + 1), column g; c and d hold rows
// (g, g, g + 8, g + 8), columns (2t, 2t + 1, 2t, 2t + 1). d may be c.
void tlc_kir_mma_16816_bf16(float *d, const uint32_t *a, const uint32_t *b, const float *c) {
  float A[16][16], B[16][8], D[LANES][4];
  for (int lane = 0; lane < LANES; lane++) {
    int g = lane / 4, t = lane % 4;
    for (int r = 0; r < 4; r++)
      for (int h = 0; h < 2; h++)
        A[g + 8 * (r % 2)][2 * t + 8 * (r / 2) + h] = bf16(a[lane * 4 + r], h);
    for (int r = 0; r < 2; r++)
      for (int h = 0; h < 2; h++)
        B[2 * t + 8 * r + h][g] = bf16(b[lane * 2 + r], h);
  }
  for (int lane = 0; lane < LANES; lane++) {
    int g = lane / 4, t = lane % 4;
    for (int e = 0; e < 4; e++) {
      int row = g + 8 * (e / 2), col = 2 * t + e % 2;
      float sum = c[lane * 4 + e];
      for (int k = 0; k < 16; k++)
        sum += A[row][k] * B[k][col];
      D[lane][e] = sum;
    }
  }
  memcpy(d, D, sizeof D);
}
