// abi.h: the contract between an emulated CUDA program (compiled as a shared object with
// device.h force-included) and the emulator that loads and runs it (libcuda.so.1 here).
// The program calls the emulator only through the table of functions it is given when it is
// loaded, so it links against nothing and one cached object serves every process. Both sides
// include this file; a change that an old object cannot follow bumps TLC_EMU_ABI, which is
// part of the cache key.
#ifndef TLC_EMU_ABI_H
#define TLC_EMU_ABI_H

#define TLC_EMU_ABI 3

struct TlcEmuDim {
  unsigned x, y, z;
};

// What one CUDA thread reads of itself: the program keeps a thread-local pointer to it, and the
// emulator points it at the running thread before every switch into that thread.
struct TlcEmuThread {
  TlcEmuDim thread_idx, block_idx, block_dim, grid_dim;
  unsigned char *dynamic_shared;   // the launch's dynamic shared memory, this block's copy
};

// Warp operations that exchange a value; the value travels as 64 bits whatever its size.
enum TlcEmuShuffle { TLC_EMU_SHFL_IDX, TLC_EMU_SHFL_UP, TLC_EMU_SHFL_DOWN, TLC_EMU_SHFL_XOR };
enum TlcEmuVote { TLC_EMU_VOTE_BALLOT, TLC_EMU_VOTE_ALL, TLC_EMU_VOTE_ANY };
enum TlcEmuBarrier { TLC_EMU_BARRIER_PLAIN, TLC_EMU_BARRIER_COUNT, TLC_EMU_BARRIER_AND, TLC_EMU_BARRIER_OR };

// The emulator's side: every operation that involves other threads, or that PTX does
// asynchronously. Each may switch to another thread of the block before it returns.
struct TlcEmuApi {
  int abi;
  int (*syncthreads)(int kind, int predicate);   // enum TlcEmuBarrier; the count, and or or
  void (*syncwarp)(unsigned mask);
  unsigned long long (*shuffle)(int kind, unsigned mask, unsigned long long value, int size, int lane_or_delta,
                                int width);
  unsigned (*vote)(int kind, unsigned mask, int predicate);
  // ldmatrix.sync.aligned.m8n8.{x1,x2,x4}[.trans].shared.b16: count matrices, r[count]
  void (*ldmatrix)(unsigned *r, int count, int trans, const void *row);
  // mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
  void (*mma_16816_bf16)(float d[4], const unsigned a[4], const unsigned b[2], const float c[4]);
  // cp.async.cg (16 bytes) and cp.async.ca (8 bytes): the first src_bytes read, the rest zeros
  void (*cp_async16)(void *shared, const void *global, int src_bytes);
  void (*cp_async8)(void *shared, const void *global, int src_bytes);
  void (*cp_async_commit)(void);
  void (*cp_async_wait)(int pending);
  // TLC_EMU_PROFILE only: one access of the running thread, from the compiler's instrumentation
  // of every load and store (device.h); site tells one instruction of the program from another.
  void (*access)(const void *address, unsigned size, int write, const void *site);
};

// One __global__ function of the program, as the kernel table the emulator appends lists it.
struct TlcEmuKernel {
  const char *name;
  void (*entry)(void **params);   // calls the kernel with *(T *)params[i] for its i-th parameter T
  int nparams;
  int can_sync;                   // its source reaches a barrier or warp operation: run it on fibers
  unsigned long static_shared;    // the bytes of its static __shared__ declarations, as its text says
  unsigned pointer_params;        // bit i: parameter i is a pointer (checked against device memory)
};

// What the program exports (extern "C"), found with dlsym.
#define TLC_EMU_ATTACH "tlc_emu_attach"    // int (const TlcEmuApi *): returns TLC_EMU_ABI
#define TLC_EMU_SLOT "tlc_emu_slot"        // TlcEmuThread **(void): this OS thread's pointer
#define TLC_EMU_KERNELS "tlc_emu_kernels"  // const TlcEmuKernel[], ended by a null name

#endif
