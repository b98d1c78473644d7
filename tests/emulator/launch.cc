// launch.cc: a launch's blocks spread over OS threads (the calling one and a pool), one block
// per OS thread at a time, taken in index order from a shared counter. Which OS thread runs a
// block changes nothing: a block's thread order comes from (seed, launch, block) alone. A
// fault (SIGSEGV, SIGBUS, SIGFPE, SIGILL) inside a kernel fails the launch with the kernel,
// block and thread named, instead of killing the process.
#include "launch.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include "block.h"

namespace emu {

namespace {

long env_number(const char *name, long fallback, long lo, long hi) {
  const char *v = std::getenv(name);
  if (!v || !*v)
    return fallback;
  char *end = nullptr;
  long n = std::strtol(v, &end, 0);
  if (*end || n < lo || n > hi) {
    std::fprintf(stderr, "tlc emulator: %s=%s is not a number from %ld to %ld; using %ld\n", name, v, lo, hi, fallback);
    return fallback;
  }
  return n;
}

// ---- faults -----------------------------------------------------------------------------------
const int kFaults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL};
struct sigaction previous[sizeof kFaults / sizeof *kFaults];

void on_fault(int sig, siginfo_t *info, void *context) {
  Worker &w = worker();
  if (w.in_kernel) {
    w.fault_signal = sig;
    w.fault_address = info->si_addr;
    w.in_kernel = false;
    siglongjmp(w.escape, 1);
  }
  // Not ours: hand it to whoever handled it before, or to the default action.
  for (std::size_t i = 0; i < sizeof kFaults / sizeof *kFaults; i++)
    if (kFaults[i] == sig) {
      if (previous[i].sa_flags & SA_SIGINFO) {
        previous[i].sa_sigaction(sig, info, context);
        return;
      }
      if (previous[i].sa_handler != SIG_DFL && previous[i].sa_handler != SIG_IGN) {
        previous[i].sa_handler(sig);
        return;
      }
    }
  signal(sig, SIG_DFL);   // returning re-runs the faulting instruction, which now kills the process
}

void install_fault_handlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    for (std::size_t i = 0; i < sizeof kFaults / sizeof *kFaults; i++) {
      struct sigaction sa = {};
      sa.sa_sigaction = on_fault;
      sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
      sigemptyset(&sa.sa_mask);
      sigaction(kFaults[i], &sa, &previous[i]);
    }
  });
}

// A fiber that overflows its stack faults on the guard page, where no signal frame fits: the
// handler runs on an alternate stack, which each OS thread that runs blocks gets once (unless
// the program has set its own).
void ensure_signal_stack() {
  static thread_local bool done = false;
  if (done)
    return;
  done = true;
  stack_t current;
  if (sigaltstack(nullptr, &current) == 0 && !(current.ss_flags & SS_DISABLE))
    return;
  stack_t s = {};
  s.ss_size = 64 * 1024;
  s.ss_sp = std::malloc(s.ss_size);
  if (s.ss_sp)
    sigaltstack(&s, nullptr);
}

// ---- statistics ---------------------------------------------------------------------------------
std::atomic<unsigned long long> stat_launches{0}, stat_fiber_launches{0}, stat_blocks{0}, stat_threads{0},
    stat_nanoseconds{0};

// ---- the pool -------------------------------------------------------------------------------------
struct Pool {
  std::mutex mutex;
  std::condition_variable wake, done;
  const Launch *launch = nullptr;
  unsigned long long generation = 0, nblocks = 0;
  std::atomic<unsigned long long> next{0};
  std::atomic<bool> failed{false};
  int busy = 0;
  std::string error;
  int code = 0;
  std::vector<std::thread> threads;
};

Pool &pool() {
  static Pool *p = new Pool;   // never destroyed: its threads wait until the process ends
  return *p;
}

void work(Pool &p, const Launch &l) {
  Worker &w = worker();
  ensure_signal_stack();
  unsigned long long b;
  while (!p.failed.load(std::memory_order_relaxed) && (b = p.next.fetch_add(1)) < p.nblocks) {
    std::string error = block_run(w, l, b);
    if (!error.empty()) {
      std::lock_guard<std::mutex> lock(p.mutex);
      if (p.error.empty()) {
        p.error = error;
        p.code = w.error_code;
      }
      p.failed = true;
    }
  }
}

void pool_thread(Pool &p) {
  unsigned long long seen = 0;
  for (;;) {
    const Launch *l;
    {
      std::unique_lock<std::mutex> lock(p.mutex);
      p.wake.wait(lock, [&] { return p.generation != seen; });
      seen = p.generation;
      l = p.launch;
    }
    work(p, *l);
    std::lock_guard<std::mutex> lock(p.mutex);
    if (--p.busy == 0)
      p.done.notify_all();
  }
}

}  // namespace

const Settings &settings() {
  static const Settings s = [] {
    Settings r;
    r.seed = static_cast<unsigned long long>(env_number("TLC_EMU_SEED", 1, 0, 0x7fffffffffffffffl));
    r.all_fibers = env_number("TLC_EMU_FIBERS", 0, 0, 1) == 1;
    unsigned cores = std::thread::hardware_concurrency();
    r.threads = static_cast<int>(env_number("TLC_EMU_THREADS", cores ? cores : 1, 1, 256));
    r.stack_bytes = static_cast<std::size_t>(env_number("TLC_EMU_STACK_KB", 128, 16, 1 << 20)) * 1024;
    r.stats = env_number("TLC_EMU_STATS", 0, 0, 1) == 1;
    const char *sw = std::getenv("TLC_EMU_SWITCH");
    r.ucontext = sw && std::string(sw) == "ucontext";
    if (sw && *sw && !r.ucontext && std::string(sw) != "fast")
      std::fprintf(stderr, "tlc emulator: TLC_EMU_SWITCH=%s is neither fast nor ucontext; using fast\n", sw);
    fiber_use_ucontext(r.ucontext);
    return r;
  }();
  return s;
}

std::string launch_run(const Launch &l, int *code) {
  settings();   // chooses the fiber switch before any fiber starts
  install_fault_handlers();
  auto start = std::chrono::steady_clock::now();
  Pool &p = pool();
  unsigned long long nblocks = 1ull * l.grid.x * l.grid.y * l.grid.z;
  std::string error;
  *code = 0;
  // Helpers beside the calling thread, no more than there are blocks for.
  int helpers = static_cast<int>(std::min<unsigned long long>(nblocks, static_cast<unsigned>(settings().threads))) - 1;
  if (helpers <= 0) {
    Worker &w = worker();
    ensure_signal_stack();
    for (unsigned long long b = 0; b < nblocks && error.empty(); b++)
      error = block_run(w, l, b);
    *code = w.error_code;
  } else {
    {
      std::lock_guard<std::mutex> lock(p.mutex);
      while (static_cast<int>(p.threads.size()) < helpers)
        p.threads.emplace_back(pool_thread, std::ref(p));
      p.launch = &l;
      p.nblocks = nblocks;
      p.next = 0;
      p.failed = false;
      p.error.clear();
      p.code = 0;
      // Every pool thread wakes for a launch; those beyond the blocks find none and return.
      p.busy = static_cast<int>(p.threads.size());
      p.generation++;
    }
    p.wake.notify_all();
    work(p, l);
    std::unique_lock<std::mutex> lock(p.mutex);
    p.done.wait(lock, [&] { return p.busy == 0; });
    error = p.error;
    *code = p.code;
  }
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count();
  stat_launches++;
  stat_fiber_launches += l.all_fibers || l.kernel->can_sync;
  stat_blocks += nblocks;
  stat_threads += nblocks * l.block.x * l.block.y * l.block.z;
  stat_nanoseconds += static_cast<unsigned long long>(ns);
  return error;
}

void stats_print(void) {
  if (!settings().stats || !stat_launches)
    return;
  double s = static_cast<double>(stat_nanoseconds) * 1e-9;
  std::fprintf(stderr,
               "tlc emulator: %llu launches (%llu on fibers), %llu blocks, %llu threads in %.2f s of kernels "
               "(%.1f M threads/s, %d OS threads)\n",
               stat_launches.load(), stat_fiber_launches.load(), stat_blocks.load(), stat_threads.load(), s,
               s > 0 ? static_cast<double>(stat_threads) / s * 1e-6 : 0.0, settings().threads);
}

}  // namespace emu
