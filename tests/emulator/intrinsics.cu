// intrinsics.cu: hand-written CUDA kernels that use what tlc's tiled kernels are made of
// (barriers and shared memory, warp shuffles and votes, cp.async, ldmatrix, mma.sync), with the
// prelude included as tlc's programs have it. intrinsics_test.cc runs them on the emulator
// against plain C++ references; nvcc.sh compiles them for sm_80 and sm_90, so what the
// emulator runs is code the real compiler accepts.
//
// Each PLANT_* macro turns a kernel into a realistic broken variant of itself; the test
// fails unless the emulator catches every one:
//   PLANT_MISSING_BARRIER     block_sum: no barrier between the steps of its tree reduction
//   PLANT_SWAP_A              mma_nn, mma_tn: two registers of the A fragment swapped
//   PLANT_WRONG_LDMATRIX      mma_nn: B loaded with ldmatrix without .trans
//   PLANT_MISSING_WAIT        mma_nn, mma_tn: cp.async.wait_group waits for one group too few
//   PLANT_TILE_EDGE           mma_nn, mma_tn: one element too many copied at the tile's edge
//   PLANT_DEADLOCK            warp_ops: lane 0 waits at a barrier its warp's shuffle never reaches
//   PLANT_SHUFFLE_AFTER_EXIT  warp_ops: a full-warp shuffle after half the lanes returned
//   PLANT_MIXED_SHUFFLES      warp_ops: half the warp in one shuffle, half in another
//   PLANT_WRITE_PAST_END      block_sum: a store past the end of its output
//   PLANT_COMPILE_ERROR       a syntax error (the emulator must report the compiler's message)
#include "../../codegen/cuda_prelude.cuh"

#ifdef PLANT_COMPILE_ERROR
this is not C++;
#endif

// ---- a block reduction through shared memory ---------------------------------------------------
// out[b] = sum of x over block b's 256 elements; counts[b] = how many of them are positive.
extern "C" __global__ void __launch_bounds__(256)
    block_sum(const float *__restrict__ x, float *__restrict__ out, int *__restrict__ counts, int n) {
  __shared__ float partial[256];
  int t = threadIdx.x, i = blockIdx.x * 256 + t;
  float v = i < n ? x[i] : 0.0f;
  partial[t] = v;
  int positive = __syncthreads_count(v > 0.0f);
  for (int stride = 128; stride > 0; stride /= 2) {
    if (t < stride)
      partial[t] += partial[t + stride];
#ifndef PLANT_MISSING_BARRIER
    __syncthreads();
#endif
  }
  if (t == 0) {
    out[blockIdx.x] = partial[0];
    counts[blockIdx.x] = positive;
#ifdef PLANT_WRITE_PAST_END
    out[64 + blockIdx.x] = partial[0];
#endif
  }
}

// ---- a 2-D block: transpose through a shared tile ----------------------------------------------
// out (cols x rows) = in (rows x cols) transposed; blocks of 32x8 threads move 32x32 tiles.
extern "C" __global__ void transpose(const float *__restrict__ in, float *__restrict__ out, int rows, int cols) {
  __shared__ float tile[32][33];
  int c = blockIdx.x * 32 + threadIdx.x;
  for (int j = threadIdx.y; j < 32; j += 8) {
    int r = blockIdx.y * 32 + j;
    if (r < rows && c < cols)
      tile[j][threadIdx.x] = in[r * cols + c];
  }
  __syncthreads();
  int r = blockIdx.y * 32 + threadIdx.x;
  for (int j = threadIdx.y; j < 32; j += 8) {
    int oc = blockIdx.x * 32 + j;
    if (oc < cols && r < rows)
      out[oc * rows + r] = tile[threadIdx.x][j];
  }
}

// ---- warp shuffles and votes ------------------------------------------------------------------------
// Per lane i of warp w (blocks of 64 threads): the warp's sum by butterfly (every lane), the
// inclusive scan of its 16-lane half, a broadcast of lane 5 plus lane (lane + 3) % 8 of its
// 8-lane segment, and its neighbour's value through shared memory and __syncwarp; per warp:
// the sum by shifting down (lane 0), the ballot of x > 0, all(x > -2) and any(x > 2.5).
extern "C" __global__ void __launch_bounds__(64)
    warp_ops(const float *__restrict__ x, float *__restrict__ butterfly, float *__restrict__ down,
             float *__restrict__ scans, float *__restrict__ broadcast, float *__restrict__ reversed,
             unsigned *__restrict__ ballots, int *__restrict__ votes) {
  __shared__ float exchange[64];
  int i = blockIdx.x * blockDim.x + threadIdx.x, lane = threadIdx.x % 32, w = i / 32;
  float v = x[i];
#ifdef PLANT_SHUFFLE_AFTER_EXIT
  if (lane >= 16)
    return;
#endif
#ifdef PLANT_DEADLOCK
  if (lane == 0)
    __syncthreads();
#endif
  float b = v;
#ifdef PLANT_MIXED_SHUFFLES
  b = lane < 16 ? __shfl_xor_sync(0xffffffffu, b, 1) : __shfl_down_sync(0xffffffffu, b, 1);
#endif
  for (int m = 16; m > 0; m /= 2)
    b += __shfl_xor_sync(0xffffffffu, b, m);
  float d = v;
  for (int o = 16; o > 0; o /= 2)
    d += __shfl_down_sync(0xffffffffu, d, o);
  float s = v;
  for (int o = 1; o < 16; o *= 2) {
    float u = __shfl_up_sync(0xffffffffu, s, o, 16);
    if (lane % 16 >= o)
      s += u;
  }
  exchange[threadIdx.x] = v;
  __syncwarp();
  reversed[i] = exchange[threadIdx.x - lane + (31 - lane)];
  butterfly[i] = b;
  scans[i] = s;
  broadcast[i] = __shfl_sync(0xffffffffu, v, 5) + __shfl_sync(0xffffffffu, v, lane + 3, 8);
  unsigned ballot = __ballot_sync(0xffffffffu, v > 0.0f);
  int all = __all_sync(0xffffffffu, v > -2.0f), any = __any_sync(0xffffffffu, v > 2.5f);
  if (lane == 0) {
    down[w] = d;
    ballots[w] = ballot;
    votes[2 * w] = all;
    votes[2 * w + 1] = any;
  }
}

// ---- bf16 matrix products on tensor cores ----------------------------------------------------------
// C (M x N, float) = A (M x K) B (K x N) in bf16. A block of 4 warps computes a 32x32 tile of C,
// each warp 16x16 of it as two m16n8k16 products per 16 of K; K moves in tiles of 32 through
// shared memory, the next tile copied by cp.async while the current one is used. Rows in
// global memory are padded to a multiple of 8 elements (16 bytes) for cp.async; a copy at a
// tile's edge reads only the valid elements and zero-fills the rest.
#define TILE 32
#define PADDED 40   // a shared row: 32 elements and 16 bytes of padding, rows stay 16-byte aligned

__device__ __forceinline__ int valid_of(int limit, int at) {
#ifdef PLANT_TILE_EDGE
  int v = limit - at + 1;
#else
  int v = limit - at;
#endif
  return v < 0 ? 0 : v > 8 ? 8 : v;
}

__device__ __forceinline__ void mma_16x16(float acc[2][4], unsigned a[4], unsigned b[2][2]) {
#ifdef PLANT_SWAP_A
  unsigned swapped = a[1];
  a[1] = a[2];
  a[2] = swapped;
#endif
  tlc_mma_16816_bf16(acc[0], a, b[0], acc[0]);
  tlc_mma_16816_bf16(acc[1], a, b[1], acc[1]);
}

__device__ __forceinline__ void store_tile(float *__restrict__ c, const float acc[2][4], int M, int N, int row0,
                                           int col0) {
  int lane = threadIdx.x % 32;
  for (int nt = 0; nt < 2; nt++)
    for (int i = 0; i < 4; i++) {
      int r = row0 + lane / 4 + (i >= 2 ? 8 : 0), col = col0 + nt * 8 + 2 * (lane % 4) + (i & 1);
      if (r < M && col < N)
        c[r * N + col] = acc[nt][i];
    }
}

#ifdef PLANT_MISSING_WAIT
#define WAIT_NEXT 2
#define WAIT_LAST 1
#else
#define WAIT_NEXT 1
#define WAIT_LAST 0
#endif

// A row-major (M x lda), B row-major (K x ldb): A fragments by ldmatrix.x4, B by ldmatrix.x2.trans.
extern "C" __global__ void __launch_bounds__(128)
    mma_nn(const unsigned short *__restrict__ a, const unsigned short *__restrict__ b, float *__restrict__ c, int M,
           int N, int K, int lda, int ldb) {
  __shared__ __align__(16) unsigned short as[2][TILE][PADDED];
  __shared__ __align__(16) unsigned short bs[2][TILE][PADDED];
  int t = threadIdx.x, lane = t % 32, warp = t / 32, wm = warp / 2, wn = warp % 2;
  int m0 = blockIdx.y * TILE, n0 = blockIdx.x * TILE, row = t / 4, chunk = (t % 4) * 8;
  float acc[2][4] = {};
  int tiles = (K + TILE - 1) / TILE;
  for (int kt = 0; kt <= tiles; kt++) {
    if (kt < tiles) {   // issue tile kt
      int buf = kt % 2, k = kt * TILE + chunk, gm = m0 + row;
      int va = gm < M ? valid_of(K, k) : 0;
      tlc_cp_async16(&as[buf][row][chunk], va ? a + (long)gm * lda + k : a, 2 * va);
      int gk = kt * TILE + row, n = n0 + chunk;
      int vb = gk < K ? valid_of(N, n) : 0;
      tlc_cp_async16(&bs[buf][row][chunk], vb ? b + (long)gk * ldb + n : b, 2 * vb);
      tlc_cp_async_commit();
    }
    if (kt == 0)
      continue;
    int buf = (kt - 1) % 2;   // compute tile kt - 1
    if (kt < tiles)
      TLC_CP_ASYNC_WAIT(WAIT_NEXT);
    else
      TLC_CP_ASYNC_WAIT(WAIT_LAST);
    __syncthreads();
    for (int kk = 0; kk < TILE; kk += 16) {
      unsigned fa[4], fb[2][2];
      tlc_ldmatrix_x4(fa, &as[buf][wm * 16 + lane % 16][kk + (lane / 16) * 8]);
      for (int nt = 0; nt < 2; nt++)
#ifdef PLANT_WRONG_LDMATRIX
        tlc_ldmatrix_x2(fb[nt], &bs[buf][kk + lane % 16][wn * 16 + nt * 8]);
#else
        tlc_ldmatrix_x2_trans(fb[nt], &bs[buf][kk + lane % 16][wn * 16 + nt * 8]);
#endif
      mma_16x16(acc, fa, fb);
    }
    __syncthreads();
  }
  store_tile(c, acc, M, N, m0 + wm * 16, n0 + wn * 16);
}

// A given transposed (at: K x ldat, at[k][m] = A[m][k]), B transposed (bt: N x ldbt,
// bt[n][k] = B[k][n]): A fragments by ldmatrix.x4.trans, B by ldmatrix.x2.
extern "C" __global__ void __launch_bounds__(128)
    mma_tn(const unsigned short *__restrict__ at, const unsigned short *__restrict__ bt, float *__restrict__ c, int M,
           int N, int K, int ldat, int ldbt) {
  __shared__ __align__(16) unsigned short as[2][TILE][PADDED];   // [k][m]
  __shared__ __align__(16) unsigned short bs[2][TILE][PADDED];   // [n][k]
  int t = threadIdx.x, lane = t % 32, warp = t / 32, wm = warp / 2, wn = warp % 2;
  int m0 = blockIdx.y * TILE, n0 = blockIdx.x * TILE, row = t / 4, chunk = (t % 4) * 8;
  float acc[2][4] = {};
  int tiles = (K + TILE - 1) / TILE;
  for (int kt = 0; kt <= tiles; kt++) {
    if (kt < tiles) {
      int buf = kt % 2, gk = kt * TILE + row, m = m0 + chunk;
      int va = gk < K ? valid_of(M, m) : 0;
      tlc_cp_async16(&as[buf][row][chunk], va ? at + (long)gk * ldat + m : at, 2 * va);
      int gn = n0 + row, k = kt * TILE + chunk;
      int vb = gn < N ? valid_of(K, k) : 0;
      tlc_cp_async16(&bs[buf][row][chunk], vb ? bt + (long)gn * ldbt + k : bt, 2 * vb);
      tlc_cp_async_commit();
    }
    if (kt == 0)
      continue;
    int buf = (kt - 1) % 2;
    if (kt < tiles)
      TLC_CP_ASYNC_WAIT(WAIT_NEXT);
    else
      TLC_CP_ASYNC_WAIT(WAIT_LAST);
    __syncthreads();
    for (int kk = 0; kk < TILE; kk += 16) {
      unsigned fa[4], fb[2][2];
      tlc_ldmatrix_x4_trans(fa, &as[buf][kk + (lane / 16) * 8 + lane % 8][wm * 16 + ((lane / 8) % 2) * 8]);
      for (int nt = 0; nt < 2; nt++)
        tlc_ldmatrix_x2(fb[nt], &bs[buf][wn * 16 + nt * 8 + lane % 8][kk + ((lane / 8) % 2) * 8]);
      mma_16x16(acc, fa, fb);
    }
    __syncthreads();
  }
  store_tile(c, acc, M, N, m0 + wm * 16, n0 + wn * 16);
}
