// cuda_prelude.cuh: what every CUDA program tlc generates starts with (tlc embeds this
// file and prints it first). NVRTC compiles without the C library's headers, so the few
// names the kernels use are defined here. The CUDA emulator (tests/emulator) compiles the
// same text as C++ for the CPU, with TLC_CUDA_EMULATOR defined and its own definitions of
// the GPU operations that are inline PTX below; everything outside those #ifndef blocks is
// shared by both.
#ifdef __CUDACC_RTC__
typedef long long int64_t;
typedef unsigned long long uint64_t;
#else
#include <stdint.h>
#endif
__device__ __forceinline__ int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
__device__ __forceinline__ int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif

// bf16 values are stored as their 16 bits. Two of them pack into one 32-bit register, the
// lower index (column) in the low half, as the tensor-core fragments hold them.
__device__ __forceinline__ unsigned short tlc_f2bf(float x) {
  unsigned u = __float_as_uint(x);
  if ((u & 0x7fffffffu) > 0x7f800000u)   // NaN stays a (quiet) NaN
    return (unsigned short)((u >> 16) | 0x40u);
  return (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);   // round to nearest even
}
__device__ __forceinline__ float tlc_bf2f(unsigned short h) { return __uint_as_float((unsigned)h << 16); }
__device__ __forceinline__ unsigned tlc_pack_bf16x2(float lo, float hi) {
  return (unsigned)tlc_f2bf(lo) | ((unsigned)tlc_f2bf(hi) << 16);
}

#ifndef TLC_CUDA_EMULATOR
// The operations tensor-core tiles are made of (sm_80 and newer), as the PTX ISA names them.
__device__ __forceinline__ unsigned tlc_shared_address(const void *p) {
  return (unsigned)__cvta_generic_to_shared(p);
}

// cp.async.cg.shared.global: 16 bytes from global to shared memory, asynchronously; only the
// first src_bytes (0 to 16) are read, the rest of the 16 are zero-filled (tile edges).
__device__ __forceinline__ void tlc_cp_async16(void *shared, const void *global, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(tlc_shared_address(shared)), "l"(global),
               "r"(src_bytes)
               : "memory");
}
// cp.async.ca.shared.global: the same of 8 bytes (.cg takes only 16): four bf16 values.
__device__ __forceinline__ void tlc_cp_async8(void *shared, const void *global, int src_bytes) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;\n" ::"r"(tlc_shared_address(shared)), "l"(global),
               "r"(src_bytes)
               : "memory");
}
// Closes the group of copies issued since the last commit.
__device__ __forceinline__ void tlc_cp_async_commit(void) { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
// Waits until at most n (a constant) of this thread's committed groups are still in flight.
#define TLC_CP_ASYNC_WAIT(n) asm volatile("cp.async.wait_group %0;\n" ::"n"(n) : "memory")

// ldmatrix.sync.aligned.m8n8.{x2,x4}[.trans].shared.b16: a warp loads two or four 8x8 tiles
// of 16-bit elements; lane l gives the address of row l % 8 of tile l / 8, and receives in
// r[i] its two elements of tile i (row l / 4, columns 2 (l % 4) and 2 (l % 4) + 1; of the
// transposed tile with .trans).
__device__ __forceinline__ void tlc_ldmatrix_x4(unsigned r[4], const void *row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(tlc_shared_address(row)));
}
__device__ __forceinline__ void tlc_ldmatrix_x2(unsigned r[2], const void *row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(tlc_shared_address(row)));
}
__device__ __forceinline__ void tlc_ldmatrix_x4_trans(unsigned r[4], const void *row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(tlc_shared_address(row)));
}
__device__ __forceinline__ void tlc_ldmatrix_x2_trans(unsigned r[2], const void *row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(tlc_shared_address(row)));
}

// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32: d = a b + c for the warp's 16x16 bf16
// tile a (row-major), 16x8 bf16 tile b (column-major) and 16x8 float tiles c and d, each
// spread over the lanes as the PTX ISA's fragment layouts say.
__device__ __forceinline__ void tlc_mma_16816_bf16(float d[4], const unsigned a[4], const unsigned b[2],
                                                   const float c[4]) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
               "{%8, %9}, {%10, %11, %12, %13};\n"
               : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]),
                 "f"(c[2]), "f"(c[3]));
}
#endif

// A kernel's dynamic shared memory (its size is the launch's), as bytes.
#ifndef TLC_CUDA_EMULATOR
#define TLC_DYNAMIC_SHARED(name) extern __shared__ __align__(16) unsigned char name[]
#endif

