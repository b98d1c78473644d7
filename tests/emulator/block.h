// block.h: one thread block as the emulator runs it, and what the operations that involve
// other threads (warp.cc, tensor_core.cc, async_copy.cc) need from the scheduler (block.cc).
// A block runs on one OS thread from start to end. Each of its CUDA threads runs on a fiber
// when the kernel can reach a barrier or warp operation, else as a plain call; either way in an
// order drawn from (seed, launch number, block index).
#ifndef TLC_EMU_BLOCK_H
#define TLC_EMU_BLOCK_H

#include <csetjmp>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "abi.h"
#include "fibers.h"
#include "launch.h"

namespace emu {

struct Thread;

// A warp operation a thread waits in until every lane its mask names has arrived; then
// complete() computes every lane's result at once, as the hardware does.
struct WarpOp {
  const char *name;                        // "__shfl_sync": lanes must agree on it and on mask
  unsigned mask;
  void (*complete)(Thread *const lanes[32]);   // lanes[l]: lane l when the mask names it
  int kind, size, arg, width, predicate;   // shuffles and votes
  unsigned long long value, result;
  const void *row;                         // ldmatrix: the row address this lane gives
  int count, trans;
  unsigned regs[4];                        // ldmatrix result; mma a
  unsigned b[2];
  float c[4], d[4];
};

struct AsyncCopy {
  unsigned char *shared;
  const unsigned char *global;
  int size, src_bytes;   // the copy's bytes (8 or 16) and those read from global
};

enum class State : std::uint8_t { kNew, kRunnable, kBarrier, kWarp, kExited };

struct Thread {
  TlcEmuThread self;   // what the program reads through threadIdx and the rest
  unsigned index;      // linear index in the block
  unsigned lane, warp;
  State state;
  Fiber fiber;
  Stack *stack;
  int barrier_kind, predicate, barrier_result;
  WarpOp op;
  std::vector<AsyncCopy> open_copies;                // issued, not yet committed
  std::deque<std::vector<AsyncCopy>> copy_groups;    // committed, oldest first
};

// Why a launch failed, with the CUDA error a real driver would report.
enum LaunchError { kLaunchFailed = 719, kIllegalAddress = 700, kMisaligned = 716, kIllegalInstruction = 715 };

// Everything one OS thread needs to run blocks: reused from block to block.
struct Worker {
  const Launch *launch = nullptr;
  TlcEmuDim block_idx{};
  unsigned nthreads = 0;
  std::vector<Thread> threads;
  std::vector<unsigned> runnable;
  std::vector<unsigned> order;   // direct mode: the permutation
  unsigned next = 0;             // direct mode: position in order
  unsigned live = 0, at_barrier = 0;
  std::vector<unsigned> warp_waiting, warp_exited;   // per warp, a bit per lane
  Thread *current = nullptr;
  bool on_fibers = false;
  std::uint64_t rng = 0;
  std::string error;
  int error_code = 0;
  Fiber scheduler;
  sigjmp_buf escape;             // out of a failed thread in direct mode, and out of a fault
  volatile bool in_kernel = false;
  volatile int fault_signal = 0;
  void *volatile fault_address = nullptr;
  std::vector<std::unique_ptr<Stack>> stacks;
  std::vector<Stack *> free_stacks;
  unsigned char *dynamic_shared = nullptr;
  std::size_t dynamic_capacity = 0, dynamic_bytes = 0;
  unsigned char *tls_base = nullptr;   // the program's thread-local block: its static shared memory
  std::size_t tls_size = 0;
  TlcEmuThread **slot = nullptr;
};

Worker &worker();   // this OS thread's
// Runs block `linear` of the launch; "" or what went wrong (and w.error_code).
std::string block_run(Worker &w, const Launch &l, unsigned long long linear);

// For the operations: fail the launch from inside a thread (never returns to the caller).
[[noreturn]] void block_fail(Worker &w, int code, const std::string &message);
// Waits in t.op (filled in) for the lanes t.op.mask names, completing the group when t is the
// last to arrive. Returns when t's result is in t.op.
void warp_wait(Worker &w, Thread &t);
// The mask of the lanes that exist in t's warp (all 32 but in a block's last, partial warp).
unsigned warp_lanes(const Worker &w, const Thread &t);
bool in_shared_memory(const Worker &w, const void *p, std::size_t bytes);
// "kernel k1_x, block 3, thread 37": where a message about t points.
std::string where(const Worker &w, const Thread &t);
std::string hex(unsigned v);

// The operations, in abi.h's table.
int api_syncthreads(int kind, int predicate);
void api_syncwarp(unsigned mask);
unsigned long long api_shuffle(int kind, unsigned mask, unsigned long long value, int size, int lane_or_delta,
                               int width);
unsigned api_vote(int kind, unsigned mask, int predicate);
void api_ldmatrix(unsigned *r, int count, int trans, const void *row);
void api_mma_16816_bf16(float d[4], const unsigned a[4], const unsigned b[2], const float c[4]);
void api_cp_async16(void *shared, const void *global, int src_bytes);
void api_cp_async8(void *shared, const void *global, int src_bytes);
void api_cp_async_commit(void);
void api_cp_async_wait(int pending);
// A thread that ends drops the copies it never waited for: nothing may read their destination.
void async_copy_reset(Thread &t);

}  // namespace emu

#endif
