// failures.cu: kernels that fail on any GPU, for the messages the emulator must give instead
// of crashing or hanging (intrinsics_test.cc, after the planted bugs).
#include "../../codegen/cuda_prelude.cuh"

__device__ int deep(int n) {
  volatile char page[4096];
  page[0] = (char)n;
  return n <= 0 ? page[0] : deep(n - 1) + page[0];
}

// Recursion far deeper than a thread's stack.
extern "C" __global__ void overflow(int *out, int n) {
  __syncthreads();
  out[threadIdx.x] = deep(n);
}

// An integer division by zero in odd threads when n is 2.
extern "C" __global__ void divide(int *out, int n) { out[threadIdx.x] = 100 / (n - 1 - (int)threadIdx.x % 2); }

// A shuffle whose mask names another lane than the caller's.
extern "C" __global__ void foreign_mask(int *out, int n) {
  out[threadIdx.x] = __shfl_sync(1u << ((threadIdx.x + 1) % 32), n, 0);
}

// Not a failure: a kernel, in an extern "C" block, that reaches its barrier only through a macro
// and a function. The emulator must see that and run it on fibers.
__device__ void sync_block() { __syncthreads(); }
#define BLOCK_SYNC() sync_block()
extern "C" {
__global__ void indirect_barrier(int *out, int n) {
  __shared__ int values[64];
  values[threadIdx.x] = (int)threadIdx.x * n;
  BLOCK_SYNC();
  out[blockIdx.x * 64 + threadIdx.x] = values[63 - threadIdx.x];
}
}
