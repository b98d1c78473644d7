// profile.cc: TLC_EMU_PROFILE=FILE. For each launch, the 32-byte sectors of device memory its
// warps read and write, counted as the hardware's memory system counts them: for one
// warp-wide access (the same instruction, the n-th time each lane reaches it) the distinct
// sectors its lanes touch, so 32 lanes reading 32 consecutive floats cost 4 sectors and 32
// lanes reading with a stride of 32 floats cost 32. Plus its mma.m16n8k16 instructions. The
// program is compiled with a call before every load and store (device.h); each thread's
// accesses to device memory are logged in order and folded per warp when the block ends.
// Caches are not modelled: a sector read twice by two warps counts twice (an upper bound on
// what DRAM moves; L2 catches much of it on the GPU).
#include "profile.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include <unistd.h>

#include "block.h"

namespace emu {

namespace {

struct Access {
  const void *site;
  std::uintptr_t address;
  unsigned size;
  int write;
};

// One sector one warp-wide access touches.
struct Touch {
  const void *site;
  unsigned occurrence;
  int write;
  std::uintptr_t sector;
  bool operator<(const Touch &o) const {
    if (site != o.site)
      return site < o.site;
    if (occurrence != o.occurrence)
      return occurrence < o.occurrence;
    if (write != o.write)
      return write < o.write;
    return sector < o.sector;
  }
  bool same_access(const Touch &o) const { return site == o.site && occurrence == o.occurrence && write == o.write; }
};

const char *path() {
  static const char *p = [] {
    const char *v = std::getenv("TLC_EMU_PROFILE");
    return v && *v ? v : nullptr;
  }();
  return p;
}

std::vector<std::pair<std::uintptr_t, std::uintptr_t>> device_ranges;   // sorted, fixed during a launch
std::uintptr_t device_low, device_high;

// The launch's totals, from every OS thread.
std::atomic<unsigned long long> sectors[2], requests[2], bytes[2], mma_lanes;

thread_local std::vector<std::vector<Access>> logs;   // per thread of the block running here
thread_local unsigned long long block_mma_lanes;
thread_local bool logging;                            // this block is one of the launch's sample
thread_local unsigned logged_threads;                 // of its threads, the first these
thread_local unsigned long long block_accesses[2];    // this block's accesses: all of them, and those logged
// The launch's accesses to device memory, all and logged: a sample's counts are scaled by
// their ratio (a warp that does more, as the one that finishes a block's reduction, or a block
// past the end of a loop kernel's range that does nothing, weighs what it does).
std::atomic<unsigned long long> all_accesses, logged_accesses;

// TLC_EMU_PROFILE_BLOCKS: the most blocks of a launch whose accesses are logged (0: all).
unsigned long long sample_limit() {
  static const unsigned long long n = [] {
    const char *v = std::getenv("TLC_EMU_PROFILE_BLOCKS");
    if (!v || !*v)
      return 0ull;
    char *end = nullptr;
    unsigned long long limit = std::strtoull(v, &end, 10);
    if (*end || *v < '0' || *v > '9') {
      std::fprintf(stderr, "tlc emulator: TLC_EMU_PROFILE_BLOCKS=%s is not a number of blocks; logging every block\n", v);
      return 0ull;
    }
    return limit;
  }();
  return n;
}

unsigned long long launch_blocks(const Launch &l) { return 1ull * l.grid.x * l.grid.y * l.grid.z; }

bool on_device(std::uintptr_t a) {
  if (a < device_low || a >= device_high)
    return false;
  auto it = std::upper_bound(device_ranges.begin(), device_ranges.end(), std::make_pair(a, UINTPTR_MAX));
  return it != device_ranges.begin() && a < (it - 1)->second;
}

// Lane by lane, the n-th access of each site; then the distinct sectors of each warp-wide access.
void fold_warp(const std::vector<Access> *lanes, unsigned nlanes, std::vector<Touch> &touches) {
  touches.clear();
  unsigned long long accessed[2] = {0, 0};
  std::vector<std::pair<const void *, unsigned>> seen;   // per site, this lane's accesses so far
  for (unsigned l = 0; l < nlanes; l++) {
    seen.clear();
    for (const Access &a : lanes[l]) {
      unsigned occurrence = 0;
      auto it = std::find_if(seen.begin(), seen.end(), [&](const auto &s) { return s.first == a.site; });
      if (it == seen.end())
        seen.push_back({a.site, 1});
      else
        occurrence = it->second++;
      for (std::uintptr_t s = a.address / 32; s <= (a.address + a.size - 1) / 32; s++)
        touches.push_back({a.site, occurrence, a.write, s});
      accessed[a.write] += a.size;
    }
  }
  std::sort(touches.begin(), touches.end());
  unsigned long long count[2] = {0, 0}, access_count[2] = {0, 0};
  for (std::size_t i = 0; i < touches.size(); i++) {
    if (i && touches[i].same_access(touches[i - 1]) && touches[i].sector == touches[i - 1].sector)
      continue;
    count[touches[i].write]++;
    if (!i || !touches[i].same_access(touches[i - 1]))
      access_count[touches[i].write]++;
  }
  for (int w = 0; w < 2; w++) {
    sectors[w] += count[w];
    requests[w] += access_count[w];
    bytes[w] += accessed[w];
  }
}

}  // namespace

bool profiling() { return path() != nullptr; }

std::string profile_compiler(const std::string &fallback) {
  const char *path_list = std::getenv("PATH");
  std::string dirs = path_list ? path_list : "/usr/bin";
  for (std::size_t start = 0; start <= dirs.size();) {
    std::size_t end = dirs.find(':', start);
    if (end == std::string::npos)
      end = dirs.size();
    std::string candidate = dirs.substr(start, end - start) + "/clang++";
    if (end > start && access(candidate.c_str(), X_OK) == 0)
      return candidate;
    start = end + 1;
  }
  std::fprintf(stderr, "tlc emulator: TLC_EMU_PROFILE: no clang++ on PATH; with %s a store to an address the thread "
                       "has just read goes uncounted\n", fallback.c_str());
  return fallback;
}

std::vector<std::string> profile_flags(const std::string &cxx) {
  std::vector<std::string> flags = {"-DTLC_EMU_PROFILE", "-fsanitize=kernel-address"};
  bool clang = cxx.find("clang") != std::string::npos;
  // Outline calls for every access, none for the stack or globals: only the program's loads and stores.
  for (const char *p : {"asan-instrumentation-with-call-threshold=0", "asan-stack=0", "asan-globals=0"}) {
    flags.push_back(clang ? "-mllvm" : "--param");
    flags.push_back(clang ? std::string("-") + p : std::string(p));
  }
  // One access of the program, one access counted: a 16-byte vector access stays one (GCC's
  // scalar replacement would split it in four, each touching all of the warp's sectors; with
  // clang, device.h makes float4 a vector type), and a thread's scalar accesses are not merged
  // into vector ones, which the GPU's code has not. A loop that zeroes or copies stays a loop:
  // as a call to memset or memcpy, which is not instrumented, its stores would not count.
  if (clang) {
    flags.insert(flags.end(), {"-fno-vectorize", "-fno-slp-vectorize"});
  } else {
    flags.insert(flags.end(), {"-fno-tree-sra", "-fno-tree-vectorize", "-fno-tree-slp-vectorize"});
  }
  flags.insert(flags.end(), {"-fno-builtin-memset", "-fno-builtin-memcpy", "-fno-builtin-memmove"});
  return flags;
}

void profile_begin(std::vector<std::pair<std::uintptr_t, std::uintptr_t>> allocations) {
  std::sort(allocations.begin(), allocations.end());
  device_ranges = std::move(allocations);
  device_low = device_ranges.empty() ? 0 : device_ranges.front().first;
  device_high = device_ranges.empty() ? 0 : device_ranges.back().second;
  for (int w = 0; w < 2; w++)
    sectors[w] = requests[w] = bytes[w] = 0;
  mma_lanes = 0;
  all_accesses = logged_accesses = 0;
}

void profile_block_begin(const Launch &l, unsigned long long linear) {
  unsigned long long blocks = launch_blocks(l), limit = sample_limit();
  unsigned long long stride = limit && blocks > limit ? (blocks + limit - 1) / limit : 1;
  unsigned threads = l.block.x * l.block.y * l.block.z;
  logging = linear % stride == 0;
  // Sampling: a block's first warp stands for its others (they do the same at other offsets),
  // which bounds the log to 32 threads' accesses whatever the block.
  logged_threads = limit && threads > 32 ? 32 : threads;
}

void profile_access(const void *address, unsigned size, int write, const void *site) {
  std::uintptr_t a = reinterpret_cast<std::uintptr_t>(address);
  if (!size || !on_device(a))
    return;
  Worker &w = worker();
  if (!w.current)
    return;
  block_accesses[0]++;
  if (!logging || w.current->index >= logged_threads)
    return;
  block_accesses[1]++;
  if (logs.size() < w.nthreads)
    logs.resize(w.nthreads);
  logs[w.current->index].push_back({site, a, size, write});
}

void api_access(const void *address, unsigned size, int write, const void *site) {
  profile_access(address, size, write, site);
}

void profile_mma_lane() { block_mma_lanes++; }

void profile_block_end(Worker &w) {
  std::vector<Touch> touches;
  for (unsigned first = 0; first < w.nthreads && first < logs.size(); first += 32) {
    unsigned n = std::min<unsigned>(32, static_cast<unsigned>(logs.size()) - first);
    fold_warp(&logs[first], n, touches);
  }
  for (auto &log : logs)
    log.clear();
  mma_lanes += block_mma_lanes;
  block_mma_lanes = 0;
  all_accesses += block_accesses[0];
  logged_accesses += block_accesses[1];
  block_accesses[0] = block_accesses[1] = 0;
}

void profile_end(const Launch &l) {
  static std::mutex mutex;
  static FILE *out = nullptr;
  std::lock_guard<std::mutex> lock(mutex);
  if (!out) {
    out = std::fopen(path(), "w");
    if (!out) {
      std::fprintf(stderr, "tlc emulator: cannot write TLC_EMU_PROFILE=%s\n", path());
      return;
    }
    std::fputs("launch\tkernel\tblocks\tthreads\tsectors_read\tsectors_written\trequests_read\trequests_written"
               "\tbytes_read\tbytes_written\tmma\tlogged_accesses\n",
               out);
  }
  // A sample's counts, scaled to all of the launch's accesses.
  unsigned long long blocks = launch_blocks(l), sampled = logged_accesses.load();
  double scale = sampled ? static_cast<double>(all_accesses.load()) / static_cast<double>(sampled) : 0;
  auto whole = [&](const std::atomic<unsigned long long> &v) {
    return static_cast<unsigned long long>(static_cast<double>(v.load()) * scale + 0.5);
  };
  std::fprintf(out, "%llu\t%s\t%llu\t%u\t%llu\t%llu\t%llu\t%llu\t%llu\t%llu\t%llu\t%llu\n", l.number, l.kernel->name,
               blocks, l.block.x * l.block.y * l.block.z, whole(sectors[0]), whole(sectors[1]), whole(requests[0]),
               whole(requests[1]), whole(bytes[0]), whole(bytes[1]), mma_lanes.load() / 32, sampled);
  std::fflush(out);
}

}  // namespace emu
