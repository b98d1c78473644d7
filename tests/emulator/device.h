// device.h: what an emulated CUDA program sees. The emulator compiles the CUDA C that tlc
// generates (codegen/cuda_prelude.cuh, then the kernels) as C++17 for the CPU with this file
// force-included and TLC_CUDA_EMULATOR defined, so it defines what NVRTC provides: the
// qualifiers, the built-in indices, vector types, math, and every operation that involves
// other threads (barriers, shuffles, votes, ldmatrix, mma, cp.async), which go to the
// emulator through the table abi.h describes. One program is one translation unit, so the
// few definitions with linkage here exist once.
#ifndef TLC_EMU_DEVICE_H
#define TLC_EMU_DEVICE_H

#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cstddef>
#include <type_traits>
#include <utility>

#include "abi.h"

// ---- qualifiers --------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __inline__ inline
#define __launch_bounds__(...)
#define __grid_constant__
#define __constant__
#define __align__(n) __attribute__((aligned(n)))
// A block's threads all run on one OS thread, one block at a time, so a thread-local
// variable is exactly one block's shared memory.
#define __shared__ static thread_local

// ---- the thread's own indices ------------------------------------------------------------
static const TlcEmuApi *tlc_emu_api;
static thread_local TlcEmuThread *tlc_emu_self;

extern "C" __attribute__((visibility("default"), used)) int tlc_emu_attach(const TlcEmuApi *api) {
  tlc_emu_api = api;
  return TLC_EMU_ABI;
}
extern "C" __attribute__((visibility("default"), used)) TlcEmuThread **tlc_emu_slot(void) { return &tlc_emu_self; }

typedef TlcEmuDim uint3;
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return {x, y, z}; }
};
#define threadIdx (tlc_emu_self->thread_idx)
#define blockIdx (tlc_emu_self->block_idx)
#define blockDim (tlc_emu_self->block_dim)
#define gridDim (tlc_emu_self->grid_dim)
static constexpr int warpSize = 32;

// ---- vector types (CUDA's sizes and alignments) -------------------------------------------
#define TLC_EMU_VECTOR2(T, name, align)                                                           \
  struct __attribute__((aligned(align))) name##2 { T x, y; };                                    \
  static inline name##2 make_##name##2(T x, T y) { return {x, y}; }
#define TLC_EMU_VECTOR3(T, name)                                                                  \
  struct name##3 { T x, y, z; };                                                                 \
  static inline name##3 make_##name##3(T x, T y, T z) { return {x, y, z}; }
#define TLC_EMU_VECTOR4(T, name, align)                                                           \
  struct __attribute__((aligned(align))) name##4 { T x, y, z, w; };                              \
  static inline name##4 make_##name##4(T x, T y, T z, T w) { return {x, y, z, w}; }
TLC_EMU_VECTOR2(float, float, 8) TLC_EMU_VECTOR3(float, float)
#if defined(TLC_EMU_PROFILE) && defined(__clang__)
// Counting accesses (profile.cc): a vector type, so that clang keeps `*(const float4 *)p` one
// 16-byte access, as ld.global.v4.f32 is, instead of splitting the struct into four loads.
// The same for uint2, the 8-byte access of four bf16 values.
typedef float float4 __attribute__((ext_vector_type(4)));
static inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
typedef unsigned uint2 __attribute__((ext_vector_type(2)));
static inline uint2 make_uint2(unsigned x, unsigned y) { return uint2{x, y}; }
#else
TLC_EMU_VECTOR4(float, float, 16)
TLC_EMU_VECTOR2(unsigned, uint, 8)
#endif
TLC_EMU_VECTOR2(int, int, 8) TLC_EMU_VECTOR3(int, int) TLC_EMU_VECTOR4(int, int, 16)
TLC_EMU_VECTOR4(unsigned, uint, 16)
TLC_EMU_VECTOR2(short, short, 4) TLC_EMU_VECTOR4(short, short, 8)
TLC_EMU_VECTOR2(unsigned short, ushort, 4) TLC_EMU_VECTOR4(unsigned short, ushort, 8)
TLC_EMU_VECTOR2(char, char, 2) TLC_EMU_VECTOR4(char, char, 4)
TLC_EMU_VECTOR2(unsigned char, uchar, 2) TLC_EMU_VECTOR4(unsigned char, uchar, 4)
TLC_EMU_VECTOR2(double, double, 16)
TLC_EMU_VECTOR2(long long, longlong, 16)
TLC_EMU_VECTOR2(unsigned long long, ulonglong, 16)
static inline uint3 make_uint3(unsigned x, unsigned y, unsigned z) { return {x, y, z}; }
#undef TLC_EMU_VECTOR2
#undef TLC_EMU_VECTOR3
#undef TLC_EMU_VECTOR4

// ---- reinterpretation and conversions ----------------------------------------------------
template <class To, class From> static inline To tlc_emu_bits(From v) {
  static_assert(sizeof(To) == sizeof(From), "same size");
  To r;
  memcpy(&r, &v, sizeof r);
  return r;
}
static inline float __int_as_float(int v) { return tlc_emu_bits<float>(v); }
static inline int __float_as_int(float v) { return tlc_emu_bits<int>(v); }
static inline float __uint_as_float(unsigned v) { return tlc_emu_bits<float>(v); }
static inline unsigned __float_as_uint(float v) { return tlc_emu_bits<unsigned>(v); }
static inline double __longlong_as_double(long long v) { return tlc_emu_bits<double>(v); }
static inline long long __double_as_longlong(double v) { return tlc_emu_bits<long long>(v); }
static inline int __float2int_rn(float x) { return (int)nearbyintf(x); }
static inline int __float2int_rz(float x) { return (int)x; }
static inline int __float2int_rd(float x) { return (int)floorf(x); }
static inline int __float2int_ru(float x) { return (int)ceilf(x); }
static inline unsigned __float2uint_rn(float x) { return (unsigned)nearbyintf(x); }
static inline float __int2float_rn(int x) { return (float)x; }
static inline float __uint2float_rn(unsigned x) { return (float)x; }

// ---- math: the C library's, plus CUDA's own names --------------------------------------------
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline double rsqrt(double x) { return 1.0 / sqrt(x); }
// glibc declares __expf and its kin itself (as aliases of expf and so on), so these are names.
#define __expf expf
#define __logf logf
#define __log2f log2f
#define __log10f log10f
#define __powf powf
#define __sinf sinf
#define __cosf cosf
#define __tanf tanf
static inline float __fdividef(float x, float y) { return x / y; }
static inline float __saturatef(float x) { return x > 0.0f ? (x < 1.0f ? x : 1.0f) : 0.0f; }   // NaN gives 0
static inline float __fadd_rn(float x, float y) { return x + y; }
static inline float __fsub_rn(float x, float y) { return x - y; }
static inline float __fmul_rn(float x, float y) { return x * y; }
static inline float __fdiv_rn(float x, float y) { return x / y; }
static inline float __frcp_rn(float x) { return 1.0f / x; }
static inline float __fsqrt_rn(float x) { return sqrtf(x); }
static inline float __fmaf_rn(float x, float y, float z) { return fmaf(x, y, z); }
#define TLC_EMU_MINMAX(T)                                                                          \
  static inline T min(T a, T b) { return a < b ? a : b; }                                        \
  static inline T max(T a, T b) { return a > b ? a : b; }
TLC_EMU_MINMAX(int) TLC_EMU_MINMAX(unsigned) TLC_EMU_MINMAX(long long) TLC_EMU_MINMAX(unsigned long long)
#undef TLC_EMU_MINMAX
static inline float min(float a, float b) { return fminf(a, b); }
static inline float max(float a, float b) { return fmaxf(a, b); }
static inline double min(double a, double b) { return fmin(a, b); }
static inline double max(double a, double b) { return fmax(a, b); }

// ---- integer intrinsics ------------------------------------------------------------------
static inline int __popc(unsigned x) { return __builtin_popcount(x); }
static inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
static inline int __clz(int x) { return x ? __builtin_clz((unsigned)x) : 32; }
static inline int __clzll(long long x) { return x ? __builtin_clzll((unsigned long long)x) : 64; }
static inline int __ffs(int x) { return __builtin_ffs(x); }
static inline int __ffsll(long long x) { return __builtin_ffsll(x); }
static inline unsigned __brev(unsigned x) {
  x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
  x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
  x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
  return __builtin_bswap32(x);
}
static inline unsigned __byte_perm(unsigned x, unsigned y, unsigned s) {
  unsigned long long v = ((unsigned long long)y << 32) | x;
  unsigned r = 0;
  for (int i = 0; i < 4; i++)
    r |= (unsigned)((v >> (8 * ((s >> (4 * i)) & 7))) & 0xff) << (8 * i);
  return r;
}
static inline int __mulhi(int x, int y) { return (int)(((long long)x * y) >> 32); }
static inline unsigned __umulhi(unsigned x, unsigned y) { return (unsigned)(((unsigned long long)x * y) >> 32); }
static inline int __mul24(int x, int y) { return (int)(((long long)(x << 8 >> 8) * (y << 8 >> 8))); }
static inline unsigned __umul24(unsigned x, unsigned y) { return (x & 0xffffffu) * (y & 0xffffffu); }
template <class T> static inline T __ldg(const T *p) { return *p; }

// ---- atomics: blocks run on several OS threads at once ---------------------------------------
template <class T> static inline T atomicAdd(T *p, T v) {
  if constexpr (std::is_integral<T>::value) {
    return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
  } else {
    T old = __atomic_load_n(p, __ATOMIC_RELAXED);
    while (!__atomic_compare_exchange_n(p, &old, old + v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
    return old;
  }
}
template <class T> static inline T atomicSub(T *p, T v) { return __atomic_fetch_sub(p, v, __ATOMIC_RELAXED); }
template <class T> static inline T atomicExch(T *p, T v) { return __atomic_exchange_n(p, v, __ATOMIC_RELAXED); }
template <class T> static inline T atomicMin(T *p, T v) {
  T old = __atomic_load_n(p, __ATOMIC_RELAXED);
  while (v < old && !__atomic_compare_exchange_n(p, &old, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
  return old;
}
template <class T> static inline T atomicMax(T *p, T v) {
  T old = __atomic_load_n(p, __ATOMIC_RELAXED);
  while (v > old && !__atomic_compare_exchange_n(p, &old, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
  return old;
}
template <class T> static inline T atomicCAS(T *p, T compare, T v) {
  __atomic_compare_exchange_n(p, &compare, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
  return compare;
}
template <class T> static inline T atomicAnd(T *p, T v) { return __atomic_fetch_and(p, v, __ATOMIC_RELAXED); }
template <class T> static inline T atomicOr(T *p, T v) { return __atomic_fetch_or(p, v, __ATOMIC_RELAXED); }
template <class T> static inline T atomicXor(T *p, T v) { return __atomic_fetch_xor(p, v, __ATOMIC_RELAXED); }
static inline void __threadfence(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
static inline void __threadfence_block(void) { __atomic_signal_fence(__ATOMIC_SEQ_CST); }

// ---- barriers and warp operations: the emulator schedules the block's threads ------------------
static inline void __syncthreads(void) { tlc_emu_api->syncthreads(TLC_EMU_BARRIER_PLAIN, 1); }
static inline int __syncthreads_count(int p) { return tlc_emu_api->syncthreads(TLC_EMU_BARRIER_COUNT, p != 0); }
static inline int __syncthreads_and(int p) { return tlc_emu_api->syncthreads(TLC_EMU_BARRIER_AND, p != 0); }
static inline int __syncthreads_or(int p) { return tlc_emu_api->syncthreads(TLC_EMU_BARRIER_OR, p != 0); }
static inline void __syncwarp(unsigned mask = 0xffffffffu) { tlc_emu_api->syncwarp(mask); }

template <class T> static inline T tlc_emu_shuffle(int kind, unsigned mask, T var, int lane_or_delta, int width) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "a shuffle moves at most 64 bits");
  unsigned long long bits = 0;
  memcpy(&bits, &var, sizeof var);
  bits = tlc_emu_api->shuffle(kind, mask, bits, (int)sizeof var, lane_or_delta, width);
  memcpy(&var, &bits, sizeof var);
  return var;
}
template <class T> static inline T __shfl_sync(unsigned mask, T var, int src_lane, int width = warpSize) {
  return tlc_emu_shuffle(TLC_EMU_SHFL_IDX, mask, var, src_lane, width);
}
template <class T> static inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {
  return tlc_emu_shuffle(TLC_EMU_SHFL_UP, mask, var, (int)delta, width);
}
template <class T> static inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {
  return tlc_emu_shuffle(TLC_EMU_SHFL_DOWN, mask, var, (int)delta, width);
}
template <class T> static inline T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = warpSize) {
  return tlc_emu_shuffle(TLC_EMU_SHFL_XOR, mask, var, lane_mask, width);
}
static inline unsigned __ballot_sync(unsigned mask, int p) {
  return tlc_emu_api->vote(TLC_EMU_VOTE_BALLOT, mask, p != 0);
}
static inline int __all_sync(unsigned mask, int p) { return (int)tlc_emu_api->vote(TLC_EMU_VOTE_ALL, mask, p != 0); }
static inline int __any_sync(unsigned mask, int p) { return (int)tlc_emu_api->vote(TLC_EMU_VOTE_ANY, mask, p != 0); }

// ---- TLC_EMU_PROFILE: every load and store reported ------------------------------------------
// With TLC_EMU_PROFILE set the emulator compiles the program with the compiler's outline
// address-sanitizer instrumentation (-fsanitize=kernel-address, a call before every access and
// no runtime library), and these are the calls: each hands the access to the emulator, which
// keeps those to device memory (tests/emulator/profile.cc). The call site tells instructions
// apart, so that the lanes of a warp doing the same access count together, as on the hardware.
#ifdef TLC_EMU_PROFILE
#define TLC_EMU_ACCESS(suffix, size, write)                                                        \
  extern "C" __attribute__((no_sanitize_address, visibility("default"), used)) void                \
      __asan_##suffix##_noabort(void *p) {                                                        \
    tlc_emu_api->access(p, size, write, __builtin_return_address(0));                             \
  }
TLC_EMU_ACCESS(load1, 1, 0) TLC_EMU_ACCESS(load2, 2, 0) TLC_EMU_ACCESS(load4, 4, 0)
TLC_EMU_ACCESS(load8, 8, 0) TLC_EMU_ACCESS(load16, 16, 0)
TLC_EMU_ACCESS(store1, 1, 1) TLC_EMU_ACCESS(store2, 2, 1) TLC_EMU_ACCESS(store4, 4, 1)
TLC_EMU_ACCESS(store8, 8, 1) TLC_EMU_ACCESS(store16, 16, 1)
extern "C" __attribute__((no_sanitize_address, visibility("default"), used)) void __asan_loadN_noabort(void *p,
                                                                                                      size_t n) {
  tlc_emu_api->access(p, (unsigned)n, 0, __builtin_return_address(0));
}
extern "C" __attribute__((no_sanitize_address, visibility("default"), used)) void __asan_storeN_noabort(void *p,
                                                                                                       size_t n) {
  tlc_emu_api->access(p, (unsigned)n, 1, __builtin_return_address(0));
}
#endif

// ---- the prelude's tensor-core operations, inline PTX for NVRTC --------------------------------
static inline void tlc_cp_async16(void *shared, const void *global, int src_bytes) {
  tlc_emu_api->cp_async16(shared, global, src_bytes);
}
static inline void tlc_cp_async8(void *shared, const void *global, int src_bytes) {
  tlc_emu_api->cp_async8(shared, global, src_bytes);
}
static inline void tlc_cp_async_commit(void) { tlc_emu_api->cp_async_commit(); }
// The operand of cp.async.wait_group is an immediate: a non-constant n fails to compile, as with nvcc.
template <int n> static inline void tlc_emu_cp_async_wait(void) {
  static_assert(n >= 0, "cp.async.wait_group takes a non-negative constant");
  tlc_emu_api->cp_async_wait(n);
}
#define TLC_CP_ASYNC_WAIT(n) tlc_emu_cp_async_wait<(n)>()
static inline void tlc_ldmatrix_x4(unsigned r[4], const void *row) { tlc_emu_api->ldmatrix(r, 4, 0, row); }
static inline void tlc_ldmatrix_x2(unsigned r[2], const void *row) { tlc_emu_api->ldmatrix(r, 2, 0, row); }
static inline void tlc_ldmatrix_x4_trans(unsigned r[4], const void *row) { tlc_emu_api->ldmatrix(r, 4, 1, row); }
static inline void tlc_ldmatrix_x2_trans(unsigned r[2], const void *row) { tlc_emu_api->ldmatrix(r, 2, 1, row); }
static inline void tlc_mma_16816_bf16(float d[4], const unsigned a[4], const unsigned b[2], const float c[4]) {
  tlc_emu_api->mma_16816_bf16(d, a, b, c);
}
// Inside a kernel: the launch's dynamic shared memory, 128-byte aligned, poisoned (NaN bytes)
// at the start of every block.
#define TLC_DYNAMIC_SHARED(name) unsigned char *const name = tlc_emu_self->dynamic_shared

// ---- the kernel table the emulator appends to the program --------------------------------------
// TLC_EMU_KERNEL(f, can_sync, static_shared) lists f with an entry point that unpacks cuLaunchKernel's
// parameter array by f's own parameter types, so calls pass what the kernel declares.
namespace tlc_emu {
template <class F, F f> struct Entry;
template <class... A, void (*f)(A...)> struct Entry<void (*)(A...), f> {
  template <std::size_t... I> static void call(void **params, std::index_sequence<I...>) {
    (void)params;
    f(*static_cast<std::remove_cv_t<A> *>(params[I])...);
  }
  static void run(void **params) { call(params, std::index_sequence_for<A...>{}); }
  static constexpr int arity = sizeof...(A);
};
template <class... A> constexpr unsigned pointer_mask(void (*)(A...)) {
  unsigned mask = 0, bit = 1;
  ((mask |= std::is_pointer<A>::value ? bit : 0u, bit <<= 1), ...);
  return mask;
}
}  // namespace tlc_emu
#define TLC_EMU_KERNEL(f, can_sync, static_shared)                                                 \
  {#f, tlc_emu::Entry<decltype(&f), &f>::run, tlc_emu::Entry<decltype(&f), &f>::arity, can_sync,   \
   static_shared, tlc_emu::pointer_mask(&f)}

#endif
