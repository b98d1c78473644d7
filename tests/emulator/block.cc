// block.cc: runs one thread block. Between two barriers its threads run in a random order:
// the scheduler resumes a runnable thread drawn at random until it exits or waits (at a
// barrier or in a warp operation), then draws again, so a kernel that reads what another
// thread has not yet written gets a different (and usually wrong) answer than the CPU. A
// barrier opens when every thread that has not exited is at it. When no thread can run and
// some have not exited, the block is deadlocked: the launch fails with who waits where,
// instead of hanging as a GPU would.
#include "block.h"
#include "profile.h"

#include <dlfcn.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "program.h"

namespace emu {

namespace {

std::uint64_t splitmix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

unsigned below(Worker &w, unsigned n) {
  w.rng = splitmix(w.rng);
  return static_cast<unsigned>(((w.rng >> 32) * n) >> 32);
}

std::string dim_text(TlcEmuDim v, TlcEmuDim dims) {
  if (dims.y == 1 && dims.z == 1)
    return std::to_string(v.x);
  return "(" + std::to_string(v.x) + "," + std::to_string(v.y) + "," + std::to_string(v.z) + ")";
}

Stack *take_stack(Worker &w) {
  if (!w.free_stacks.empty()) {
    Stack *s = w.free_stacks.back();
    w.free_stacks.pop_back();
    return s;
  }
  auto s = std::make_unique<Stack>();
  if (!stack_map(s.get(), settings().stack_bytes))
    return nullptr;
  w.stacks.push_back(std::move(s));
  return w.stacks.back().get();
}

void give_back(Worker &w, Thread &t) {
  if (t.stack)
    w.free_stacks.push_back(t.stack);
  t.stack = nullptr;
}

// Where a fiber starts: the kernel, then leave for good.
void thread_main(void *arg) {
  Thread &t = *static_cast<Thread *>(arg);
  Worker &w = worker();
  w.launch->kernel->entry(w.launch->params);
  t.state = State::kExited;
  fiber_switch(&t.fiber, &w.scheduler);
  __builtin_trap();   // the scheduler never resumes a thread that has exited
}

void yield(Worker &w, Thread &t) { fiber_switch(&t.fiber, &w.scheduler); }

void open_barrier(Worker &w) {
  int count = 0, all = 1, any = 0;
  for (Thread &t : w.threads)
    if (t.state == State::kBarrier) {
      count += t.predicate;
      all &= t.predicate;
      any |= t.predicate;
    }
  for (Thread &t : w.threads)
    if (t.state == State::kBarrier) {
      t.barrier_result = t.barrier_kind == TLC_EMU_BARRIER_COUNT ? count
                         : t.barrier_kind == TLC_EMU_BARRIER_AND ? all
                         : t.barrier_kind == TLC_EMU_BARRIER_OR  ? any
                                                                  : 0;
      t.state = State::kRunnable;
      w.runnable.push_back(t.index);
    }
  w.at_barrier = 0;
}

std::string state_text(const Thread &t) {
  switch (t.state) {
    case State::kBarrier:
      return "waiting at __syncthreads()";
    case State::kWarp:
      return std::string("waiting in ") + t.op.name + " (mask " + hex(t.op.mask) + ")";
    case State::kExited:
      return "exited";
    case State::kNew:
      return "not started";
    case State::kRunnable:
      break;
  }
  return "runnable";
}

// "threads 0-127: waiting at __syncthreads(); threads 128-255: exited", by linear index.
std::string deadlock_text(const Worker &w) {
  const TlcEmuDim &b = w.launch->block;
  std::string text =
      b.y == 1 && b.z == 1 ? "" : "threads by linear index x + y * blockDim.x + z * blockDim.x * blockDim.y: ";
  unsigned n = static_cast<unsigned>(w.threads.size());
  for (unsigned i = 0; i < n;) {
    std::string s = state_text(w.threads[i]);
    unsigned j = i + 1;
    while (j < n && state_text(w.threads[j]) == s)
      j++;
    text += (i == 0 ? "" : "; ") +
            (j - i > 1 ? "threads " + std::to_string(i) + "-" + std::to_string(j - 1) : "thread " + std::to_string(i)) +
            ": " + s;
    i = j;
  }
  return text;
}

void setup_block(Worker &w, const Launch &l, unsigned long long linear) {
  w.launch = &l;
  w.block_idx = {static_cast<unsigned>(linear % l.grid.x), static_cast<unsigned>(linear / l.grid.x % l.grid.y),
                 static_cast<unsigned>(linear / l.grid.x / l.grid.y)};
  w.nthreads = l.block.x * l.block.y * l.block.z;
  w.error.clear();
  w.error_code = 0;
  w.rng = splitmix(splitmix(splitmix(l.seed) ^ l.number) ^ linear);
  // Static shared memory is the program's thread-local block, poisoned like the dynamic one,
  // so that a read of what no thread of this block wrote gives NaN, not the last block's data.
  w.slot = l.program->slot();
  void *tls = nullptr;
  if (dlinfo(l.program->handle, RTLD_DI_TLS_DATA, &tls) == 0 && tls) {
    w.tls_base = static_cast<unsigned char *>(tls);
    w.tls_size = l.program->tls_size;
    std::memset(w.tls_base, 0xff, w.tls_size);
  } else {
    w.tls_base = nullptr;
    w.tls_size = 0;
  }
  if (w.dynamic_capacity < l.shared_bytes || !w.dynamic_shared) {
    std::free(w.dynamic_shared);
    w.dynamic_capacity = l.shared_bytes > 128 ? l.shared_bytes : 128;
    w.dynamic_shared = static_cast<unsigned char *>(std::aligned_alloc(128, (w.dynamic_capacity + 127) / 128 * 128));
  }
  w.dynamic_bytes = l.shared_bytes;
  std::memset(w.dynamic_shared, 0xff, l.shared_bytes);
  w.threads.resize(w.nthreads);
  w.warp_waiting.assign((w.nthreads + 31) / 32, 0);
  w.warp_exited.assign((w.nthreads + 31) / 32, 0);
  for (unsigned i = 0; i < w.nthreads; i++) {
    Thread &t = w.threads[i];
    t.index = i;
    t.lane = i % 32;
    t.warp = i / 32;
    t.self.thread_idx = {i % l.block.x, i / l.block.x % l.block.y, i / l.block.x / l.block.y};
    t.self.block_idx = w.block_idx;
    t.self.block_dim = l.block;
    t.self.grid_dim = l.grid;
    t.self.dynamic_shared = w.dynamic_shared;
    t.state = State::kNew;
    t.stack = nullptr;
    t.barrier_kind = 0;
    t.predicate = 0;
    t.barrier_result = 0;
    t.op = WarpOp{};
    t.op.name = "";
    async_copy_reset(t);
  }
}

void enter(Worker &w, Thread &t) {
  w.current = &t;
  *w.slot = &t.self;
}

// A kernel that reaches no barrier or warp operation: each thread is a plain call.
void run_direct(Worker &w) {
  w.on_fibers = false;
  w.order.resize(w.nthreads);
  for (unsigned i = 0; i < w.nthreads; i++) {
    unsigned j = below(w, i + 1);
    w.order[i] = w.order[j];
    w.order[j] = i;
  }
  const Launch &l = *w.launch;
  for (w.next = 0; w.next < w.nthreads; w.next++) {
    Thread &t = w.threads[w.order[w.next]];
    enter(w, t);
    t.state = State::kRunnable;
    l.kernel->entry(l.params);
    t.state = State::kExited;
    async_copy_reset(t);
  }
}

// What becomes of a thread that has switched back to the scheduler.
void after(Worker &w, Thread &t) {
  switch (t.state) {
    case State::kExited:
      give_back(w, t);
      async_copy_reset(t);
      w.live--;
      w.warp_exited[t.warp] |= 1u << t.lane;
      // A warp operation whose mask names this lane can never complete.
      for (unsigned i = t.warp * 32; w.warp_waiting[t.warp] && i < w.nthreads && i < t.warp * 32 + 32; i++) {
        Thread &o = w.threads[i];
        if (o.state == State::kWarp && (o.op.mask >> t.lane & 1) && w.error.empty()) {
          w.error = where(w, t) + " exited while thread " + std::to_string(o.index) + " waits for it in " + o.op.name +
                    " (mask " + hex(o.op.mask) + "): a warp operation's mask may name only threads that reach it";
          w.error_code = kLaunchFailed;
        }
      }
      break;
    case State::kRunnable:
      w.runnable.push_back(t.index);
      break;
    case State::kBarrier:
    case State::kWarp:
    case State::kNew:
      break;
  }
  if (w.at_barrier && w.at_barrier == w.live)
    open_barrier(w);
}

void run_fibers(Worker &w) {
  w.on_fibers = true;
  w.runnable.clear();
  for (unsigned i = 0; i < w.nthreads; i++)
    w.runnable.push_back(i);
  w.live = w.nthreads;
  w.at_barrier = 0;
  while (!w.runnable.empty() && w.error.empty()) {
    unsigned k = below(w, static_cast<unsigned>(w.runnable.size()));
    Thread &t = w.threads[w.runnable[k]];
    w.runnable[k] = w.runnable.back();
    w.runnable.pop_back();
    if (t.state == State::kNew) {
      t.stack = take_stack(w);
      if (!t.stack) {
        w.error = "cannot map a stack for another thread of kernel " + std::string(w.launch->kernel->name) +
                  " (TLC_EMU_STACK_KB sets their size)";
        w.error_code = kLaunchFailed;
        break;
      }
      fiber_start(&t.fiber, *t.stack, thread_main, &t);
      t.state = State::kRunnable;
    }
    enter(w, t);
    fiber_switch(&w.scheduler, &t.fiber);
    w.current = nullptr;
    after(w, t);
  }
  if (w.error.empty() && w.live > 0) {
    w.error = "kernel " + std::string(w.launch->kernel->name) + ", block " +
              dim_text(w.block_idx, w.launch->grid) + ": deadlock: " + deadlock_text(w) +
              ". Every thread that has not exited must reach a __syncthreads(), and every lane a warp operation's "
              "mask names must reach that operation";
    w.error_code = kLaunchFailed;
  }
}

const char *signal_text(int sig) {
  switch (sig) {
    case SIGSEGV:
      return "invalid memory access (SIGSEGV)";
    case SIGBUS:
      return "misaligned or invalid memory access (SIGBUS)";
    case SIGFPE:
      return "arithmetic fault, such as an integer division by zero (SIGFPE)";
    case SIGILL:
      return "illegal instruction (SIGILL)";
  }
  return "fault";
}

std::string fault_text(Worker &w) {
  char address[32];
  snprintf(address, sizeof address, "%p", w.fault_address);
  std::string text = (w.current ? where(w, *w.current) : "kernel " + std::string(w.launch->kernel->name)) + ": " +
                     signal_text(w.fault_signal) + " at address " + address;
  for (auto &s : w.stacks)
    if (s->in_guard(w.fault_address))
      text += ", just below a thread's stack: the thread overflowed its stack (TLC_EMU_STACK_KB sets its size)";
  return text;
}

}  // namespace

Worker &worker() {
  // Never freed: pool threads live as long as the process, and a thread's blocks may still
  // be referenced by a fault being reported while it exits.
  static thread_local Worker *w = new Worker;
  return *w;
}

std::string hex(unsigned v) {
  char text[16];
  snprintf(text, sizeof text, "0x%08x", v);
  return text;
}

std::string where(const Worker &w, const Thread &t) {
  return "kernel " + std::string(w.launch->kernel->name) + ", block " + dim_text(w.block_idx, w.launch->grid) +
         ", thread " + dim_text(t.self.thread_idx, w.launch->block);
}

unsigned warp_lanes(const Worker &w, const Thread &t) {
  unsigned n = w.nthreads - t.warp * 32;
  return n >= 32 ? 0xffffffffu : (1u << n) - 1;
}

bool in_shared_memory(const Worker &w, const void *p, std::size_t bytes) {
  auto *c = static_cast<const unsigned char *>(p);
  return (w.tls_base && c >= w.tls_base && c + bytes <= w.tls_base + w.tls_size) ||
         (c >= w.dynamic_shared && c + bytes <= w.dynamic_shared + w.dynamic_bytes);
}

// Leaving a thread by siglongjmp (or by abandoning its fiber) skips the destructors of the
// frames in between, the message's temporaries among them: a small leak per failed launch.
void block_fail(Worker &w, int code, const std::string &message) {
  if (w.error.empty()) {
    w.error = message;
    w.error_code = code;
  }
  if (!w.on_fibers)
    siglongjmp(w.escape, 1);
  for (;;)   // the scheduler stops at the error and never resumes this thread
    yield(w, *w.current);
}

void warp_wait(Worker &w, Thread &t) {
  WarpOp &op = t.op;
  unsigned exist = warp_lanes(w, t), lane_bit = 1u << t.lane;
  unsigned &waiting = w.warp_waiting[t.warp];
  if (!(op.mask & lane_bit))
    block_fail(w, kLaunchFailed, where(w, t) + ": " + op.name + " with mask " + hex(op.mask) +
                                     ", which does not name the calling lane " + std::to_string(t.lane));
  if (op.mask & ~exist)
    block_fail(w, kLaunchFailed,
               where(w, t) + ": " + op.name + " with mask " + hex(op.mask) +
                   " names lanes this block does not have (its last warp has lanes " + hex(exist) + ")");
  if (unsigned gone = op.mask & w.warp_exited[t.warp])
    block_fail(w, kLaunchFailed, where(w, t) + ": " + op.name + " with mask " + hex(op.mask) + " waits for lane " +
                                     std::to_string(__builtin_ctz(gone)) + ", which has exited");
  t.state = State::kWarp;
  waiting |= lane_bit;
  // Every lane the mask names waits in a warp operation: it must be this one, and then the
  // group is complete. (Lanes that wait in another operation whose mask names this lane make
  // the same check when they arrive last.)
  if ((waiting & op.mask) != op.mask) {
    if (!w.on_fibers)
      block_fail(w, kLaunchFailed,
                 where(w, t) + " reached " + op.name +
                     ", which waits for other lanes, but the emulator's reading of the kernel's source found no warp "
                     "operation in it and ran it without fibers; run with TLC_EMU_FIBERS=1 and report this");
    yield(w, t);   // until the last lane completes the group
    return;
  }
  Thread *lanes[32] = {};
  for (unsigned l = 0; l < 32; l++) {
    if (!(op.mask >> l & 1))
      continue;
    Thread &o = w.threads[t.warp * 32 + l];
    if (o.op.complete != op.complete || o.op.kind != op.kind || o.op.mask != op.mask)
      block_fail(w, kLaunchFailed, where(w, t) + " reached " + op.name + " (mask " + hex(op.mask) + ") while lane " +
                                       std::to_string(l) + " waits in " + o.op.name + " (mask " + hex(o.op.mask) +
                                       "): the lanes of a warp operation must all reach the same one");
    lanes[l] = &o;
  }
  op.complete(lanes);
  waiting &= ~op.mask;
  for (unsigned l = 0; l < 32; l++)
    if (lanes[l] && lanes[l] != &t) {
      lanes[l]->state = State::kRunnable;
      w.runnable.push_back(lanes[l]->index);
    }
  t.state = State::kRunnable;
  if (w.on_fibers)
    yield(w, t);   // the threads continue in a random order after the operation too
}

int api_syncthreads(int kind, int predicate) {
  Worker &w = worker();
  Thread &t = *w.current;
  if (!w.on_fibers) {
    if (w.nthreads == 1)
      return kind == TLC_EMU_BARRIER_COUNT ? predicate : kind == TLC_EMU_BARRIER_PLAIN ? 0 : predicate;
    block_fail(w, kLaunchFailed, where(w, t) + " reached __syncthreads(), but the emulator's reading of the kernel's "
                                                "source found no barrier in it and ran it without fibers; run with "
                                                "TLC_EMU_FIBERS=1 and report this");
  }
  t.barrier_kind = kind;
  t.predicate = predicate;
  t.state = State::kBarrier;
  w.at_barrier++;
  yield(w, t);
  return t.barrier_result;
}

std::string block_run(Worker &w, const Launch &l, unsigned long long linear) {
  setup_block(w, l, linear);
  if (profiling())
    profile_block_begin(l, linear);
  w.current = nullptr;
  w.fault_signal = 0;
  if (sigsetjmp(w.escape, 1) == 0) {
    w.in_kernel = true;
    if (l.all_fibers || l.kernel->can_sync)
      run_fibers(w);
    else
      run_direct(w);
  }
  w.in_kernel = false;
  if (w.fault_signal) {
    w.error = fault_text(w);
    w.error_code = w.fault_signal == SIGILL ? kIllegalInstruction : w.fault_signal == SIGBUS ? kMisaligned
                                                                                             : kIllegalAddress;
  }
  // Threads abandoned by a failure keep their stacks until here.
  for (Thread &t : w.threads)
    give_back(w, t);
  w.current = nullptr;
  if (profiling())
    profile_block_end(w);
  return w.error;
}

}  // namespace emu
