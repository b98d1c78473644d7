// driver.cc: a stand-in for the NVIDIA driver (libcuda.so.1) that runs kernels on the
// emulated device. It exports what runtime/gpu.c loads (and cuFuncSetAttribute), reports one
// device, "CUDA emulator", of compute capability 9.0 (TLC_EMU_SM sets another), and keeps
// device memory in host memory: each allocation poisoned (NaN bytes) and followed by an
// inaccessible page, so that a kernel reading what nothing wrote sees NaN and one running
// off the end faults (and the launch reports where). cuModuleLoadData ignores the cubin or PTX
// it is given and takes the program's CUDA C instead: the file TLC_EMU_SOURCE names, else the
// kernel bundle of the trainer running this process. Launches on the default stream run to
// completion inside cuLaunchKernel; launches and asynchronous copies on a stream of one's own
// run when something waits for them (streams.cc). A failure's full message is what
// cuGetErrorString returns for its code. Pinned host memory (cuMemHostAlloc) is the only
// source an asynchronous copy takes.
// The device's memory is TLC_EMU_MEMORY_MB (default: the machine's physical memory): an
// allocation beyond it fails as out of memory, and cuMemGetInfo reports what is left.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "launch.h"
#include "profile.h"
#include "program.h"
#include "streams.h"

#include "driver_api.h"   // what it exports

namespace {

enum : int {
  kSuccess = 0, kInvalidValue = 1, kOutOfMemory = 2, kNotInitialized = 3, kNoDevice = 100, kInvalidDevice = 101,
  kInvalidImage = 200, kInvalidContext = 201, kInvalidSource = 300, kInvalidHandle = 400, kNotFound = 500,
  kIllegalAddress = 700, kOutOfResources = 701, kNotSupported = 801, kIllegalInstruction = 715, kMisaligned = 716, kLaunchFailed = 719,
};

struct Allocation {
  void *mapping;
  std::size_t mapping_bytes, bytes;
};

struct Function {
  emu::Program *program;
  const TlcEmuKernel *kernel;
  int max_dynamic_shared;
};

struct Driver {
  std::mutex mutex;
  bool initialised = false;
  int major = 9, minor = 0;
  std::map<CUdeviceptr, Allocation> memory;
  std::map<const char *, std::size_t> pinned;   // cuMemHostAlloc's host memory: start, bytes
  std::size_t memory_total = 0, memory_used = 0;   // the device's bytes; those allocated (256-byte rounded)
  unsigned long long launches = 0;
  CUresult last_code = 0;
  std::string last_message;
  int context = 0;
};

Driver &driver() {
  static Driver *d = new Driver;   // never destroyed: launches may be reported while the process ends
  return *d;
}

CUresult fail(CUresult code, const std::string &message) {
  Driver &d = driver();
  d.last_code = code;
  d.last_message = message;
  return code;
}

// Whether [p, p + bytes) is inside host memory cuMemHostAlloc returned.
bool pinned(const void *p, std::size_t bytes) {
  Driver &d = driver();
  auto *c = static_cast<const char *>(p);
  auto it = d.pinned.upper_bound(c);
  if (it == d.pinned.begin())
    return false;
  --it;
  return static_cast<std::size_t>(c - it->first) <= it->second && bytes <= it->second - static_cast<std::size_t>(c - it->first);
}

std::size_t page() { return static_cast<std::size_t>(sysconf(_SC_PAGESIZE)); }

std::size_t rounded(std::size_t bytes) { return (bytes + 255) / 256 * 256; }

// TLC_EMU_MEMORY_MB, else the machine's physical memory.
std::size_t device_memory() {
  const char *mb = std::getenv("TLC_EMU_MEMORY_MB");
  if (mb && *mb) {
    char *end = nullptr;
    unsigned long long v = std::strtoull(mb, &end, 10);
    if (*mb >= '0' && *mb <= '9' && !*end && v > 0 && v < (1ull << 40))
      return static_cast<std::size_t>(v) << 20;
    std::fprintf(stderr, "tlc emulator: TLC_EMU_MEMORY_MB=%s is not a number of MiB; using the machine's memory\n", mb);
  }
  return static_cast<std::size_t>(sysconf(_SC_PHYS_PAGES)) * page();
}

// The allocation that holds [p, p + bytes), or nullptr.
const Allocation *find(CUdeviceptr p, std::size_t bytes) {
  Driver &d = driver();
  auto it = d.memory.upper_bound(p);
  if (it == d.memory.begin())
    return nullptr;
  --it;
  return p - it->first <= it->second.bytes && bytes <= it->second.bytes - (p - it->first) ? &it->second : nullptr;
}

// Static plus dynamic shared memory a block may use: 48 KiB unless cuFuncSetAttribute raised
// it; the device's most is 227 KiB from sm_90, 163 KiB on sm_80.
int device_shared_limit() {
  Driver &d = driver();
  int cc = 10 * d.major + d.minor;
  return cc >= 90 ? 232448 : cc >= 80 ? 166912 : 49152;
}

const char *code_text(CUresult code) {
  switch (code) {
    case kSuccess: return "no error";
    case kInvalidValue: return "invalid argument";
    case kOutOfMemory: return "out of memory";
    case kNotInitialized: return "initialization error";
    case kNoDevice: return "no CUDA-capable device is detected";
    case kInvalidDevice: return "invalid device ordinal";
    case kInvalidImage: return "device kernel image is invalid";
    case kInvalidContext: return "invalid device context";
    case kInvalidSource: return "device kernel source is invalid";
    case kInvalidHandle: return "invalid resource handle";
    case kNotFound: return "named symbol not found";
    case kIllegalAddress: return "an illegal memory access was encountered";
    case kOutOfResources: return "too many resources requested for launch";
    case kIllegalInstruction: return "an illegal instruction was encountered";
    case kMisaligned: return "misaligned address";
    case kLaunchFailed: return "unspecified launch failure";
  }
  return "unknown error";
}

}  // namespace

namespace emu {
int driver_fail(int code, const std::string &message) { return fail(code, message); }
}  // namespace emu

extern "C" {

#define TLC_EMU_EXPORT __attribute__((visibility("default")))

TLC_EMU_EXPORT CUresult cuInit(unsigned flags) {
  if (flags)
    return fail(kInvalidValue, "cuInit takes flags 0");
  Driver &d = driver();
  std::lock_guard<std::mutex> lock(d.mutex);
  const char *sm = std::getenv("TLC_EMU_SM");
  if (sm && *sm) {
    const char *digits = std::strncmp(sm, "sm_", 3) == 0 ? sm + 3 : sm;
    int major = 0, minor = 0;
    if (std::sscanf(digits, "%d.%d", &major, &minor) == 2 || (std::sscanf(digits, "%d", &major) == 1 && major >= 10 &&
                                                             ((minor = major % 10), (major /= 10), true))) {
      d.major = major;
      d.minor = minor;
    } else {
      std::fprintf(stderr, "tlc emulator: TLC_EMU_SM=%s is not a compute capability (90, 9.0 or sm_90); using 9.0\n",
                   sm);
    }
  }
  d.memory_total = device_memory();
  d.initialised = true;
  return kSuccess;
}

TLC_EMU_EXPORT CUresult cuDriverGetVersion(int *version) {
  if (!version)
    return kInvalidValue;
  *version = 13000;
  return kSuccess;
}

TLC_EMU_EXPORT CUresult cuDeviceGetCount(int *count) {
  if (!count)
    return kInvalidValue;
  *count = driver().initialised ? 1 : 0;
  return driver().initialised ? kSuccess : kNotInitialized;
}

TLC_EMU_EXPORT CUresult cuDeviceGet(int *device, int ordinal) {
  if (!device)
    return kInvalidValue;
  if (ordinal != 0)
    return kInvalidDevice;
  *device = 0;
  return kSuccess;
}

TLC_EMU_EXPORT CUresult cuDeviceGetName(char *name, int len, int device) {
  if (!name || len <= 0)
    return kInvalidValue;
  if (device != 0)
    return kInvalidDevice;
  std::snprintf(name, static_cast<std::size_t>(len), "CUDA emulator");
  return kSuccess;
}

TLC_EMU_EXPORT CUresult cuDeviceGetAttribute(int *value, int attribute, int device) {
  if (!value)
    return kInvalidValue;
  if (device != 0)
    return kInvalidDevice;
  switch (attribute) {
    case 1: *value = 1024; break;                    // max threads per block
    case 2: *value = 1024; break;                    // max block x
    case 3: *value = 1024; break;                    // max block y
    case 4: *value = 64; break;                      // max block z
    case 5: *value = 2147483647; break;              // max grid x
    case 6: case 7: *value = 65535; break;           // max grid y, z
    case 8: *value = 49152; break;                   // shared memory per block
    case 10: *value = 32; break;                     // warp size
    case 16: *value = 1; break;                      // multiprocessors: one OS thread pool
    case 75: *value = driver().major; break;
    case 76: *value = driver().minor; break;
    case 97: *value = device_shared_limit(); break;  // shared memory per block, opt-in
    default: return fail(kInvalidValue, "the emulator does not report device attribute " + std::to_string(attribute));
  }
  return kSuccess;
}

TLC_EMU_EXPORT CUresult cuDevicePrimaryCtxRetain(void **context, int device) {
  if (!context)
    return kInvalidValue;
  if (device != 0)
    return kInvalidDevice;
  *context = &driver().context;
  return kSuccess;
}

TLC_EMU_EXPORT CUresult cuDevicePrimaryCtxRelease(int device) { return device == 0 ? kSuccess : kInvalidDevice; }

TLC_EMU_EXPORT CUresult cuCtxSetCurrent(void *context) {
  return !context || context == &driver().context ? kSuccess : kInvalidContext;
}

// Launches on the default stream finish inside cuLaunchKernel; streams run what they hold.
TLC_EMU_EXPORT CUresult cuCtxSynchronize(void) { return emu::streams_drain_all(); }

TLC_EMU_EXPORT CUresult cuModuleLoadData(void **module, const void *image) {
  if (!module || !image)
    return fail(kInvalidValue, "cuModuleLoadData without a module or an image");
  std::string text, origin, include_dir, error;
  const char *path = std::getenv("TLC_EMU_SOURCE");
  if (path && *path) {
    std::ifstream f(path, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    if (!f)
      return fail(kInvalidSource, std::string("the emulator cannot read TLC_EMU_SOURCE=") + path);
    text = s.str();
    origin = path;
    const char *slash = std::strrchr(path, '/');
    include_dir = slash ? std::string(path, static_cast<std::size_t>(slash - path)) : ".";
  } else {
    text = emu::bundle_source(&error);
    if (text.empty())
      return fail(kInvalidSource, "the emulator found no program to run: " + error);
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    origin = (n > 0 ? std::string(exe, static_cast<std::size_t>(n)) : std::string("trainer")) + ":.tlc_bundle";
  }
  emu::Program *p = emu::program_load(text, origin, include_dir, &error);
  if (!p)
    return fail(kInvalidSource, "the emulator cannot run " + origin + ": " + error);
  *module = p;
  return kSuccess;
}

TLC_EMU_EXPORT CUresult cuModuleUnload(void *module) {
  if (!module)
    return kInvalidHandle;
  emu::program_unload(static_cast<emu::Program *>(module));
  return kSuccess;
}

TLC_EMU_EXPORT CUresult cuModuleGetFunction(void **function, void *module, const char *name) {
  if (!function || !module || !name)
    return kInvalidValue;
  auto *p = static_cast<emu::Program *>(module);
  const TlcEmuKernel *k = emu::program_kernel(p, name);
  if (!k)
    return fail(kNotFound, std::string("the program has no extern \"C\" __global__ function ") + name);
  *function = new Function{p, k, 49152};   // lives as long as the process: handles are never freed
  return kSuccess;
}

// CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES (8): a kernel may ask for more than 48 KiB.
TLC_EMU_EXPORT CUresult cuFuncSetAttribute(void *function, int attribute, int value) {
  if (!function)
    return kInvalidHandle;
  if (attribute != 8)
    return fail(kInvalidValue, "the emulator sets only CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES");
  if (value < 0 || value > device_shared_limit())
    return fail(kInvalidValue, "dynamic shared memory of " + std::to_string(value) +
                                   " bytes is more than this device's " +
                                   std::to_string(device_shared_limit()));
  static_cast<Function *>(function)->max_dynamic_shared = value;
  return kSuccess;
}

TLC_EMU_EXPORT CUresult cuMemAlloc_v2(CUdeviceptr *ptr, std::size_t bytes) {
  if (!ptr || !bytes)
    return kInvalidValue;
  std::size_t p = page(), size = rounded(bytes), body = (size + p - 1) / p * p;
  Driver &d = driver();
  std::lock_guard<std::mutex> lock(d.mutex);
  if (!d.initialised)
    return fail(kNotInitialized, "cuMemAlloc before cuInit");
  if (size > d.memory_total - d.memory_used)
    return fail(kOutOfMemory, "out of memory (" + std::to_string(bytes) + " bytes; the emulated device has " +
                                  std::to_string(d.memory_total - d.memory_used) + " of its " +
                                  std::to_string(d.memory_total) + " bytes free)");
  void *m = mmap(nullptr, body + p, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED)
    return fail(kOutOfMemory, "out of memory (" + std::to_string(bytes) + " bytes)");
  mprotect(static_cast<char *>(m) + body, p, PROT_NONE);
  // The end of the allocation meets the inaccessible page, as closely as 256-byte alignment allows.
  char *start = static_cast<char *>(m) + body - size;
  std::memset(start, 0xff, size);
  d.memory_used += size;
  d.memory[reinterpret_cast<CUdeviceptr>(start)] = {m, body + p, bytes};
  *ptr = reinterpret_cast<CUdeviceptr>(start);
  return kSuccess;
}

TLC_EMU_EXPORT CUresult cuMemFree_v2(CUdeviceptr ptr) {
  if (CUresult code = emu::streams_drain_all())   // CUDA's cuMemFree waits for the device too
    return code;
  Driver &d = driver();
  std::lock_guard<std::mutex> lock(d.mutex);
  auto it = d.memory.find(ptr);
  if (it == d.memory.end())
    return fail(kInvalidValue, "cuMemFree of memory that cuMemAlloc did not return");
  munmap(it->second.mapping, it->second.mapping_bytes);
  d.memory_used -= rounded(it->second.bytes);
  d.memory.erase(it);
  return kSuccess;
}

TLC_EMU_EXPORT CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, std::size_t bytes) {
  if (CUresult code = emu::stream_legacy_point("cuMemcpyHtoD"))
    return code;
  std::lock_guard<std::mutex> lock(driver().mutex);
  if (!find(dst, bytes) || (!src && bytes))
    return fail(kInvalidValue, "a copy of " + std::to_string(bytes) + " bytes to the device leaves its allocation");
  std::memcpy(reinterpret_cast<void *>(dst), src, bytes);
  return kSuccess;
}

TLC_EMU_EXPORT CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, std::size_t bytes) {
  if (CUresult code = emu::stream_legacy_point("cuMemcpyDtoH"))
    return code;
  std::lock_guard<std::mutex> lock(driver().mutex);
  if (!find(src, bytes) || (!dst && bytes))
    return fail(kInvalidValue, "a copy of " + std::to_string(bytes) + " bytes from the device leaves its allocation");
  std::memcpy(dst, reinterpret_cast<const void *>(src), bytes);
  return kSuccess;
}

// Both ranges inside allocations; CUDA leaves overlapping copies undefined, so they are refused.
TLC_EMU_EXPORT CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, std::size_t bytes) {
  if (CUresult code = emu::stream_legacy_point("cuMemcpyDtoD"))
    return code;
  std::lock_guard<std::mutex> lock(driver().mutex);
  if (!find(dst, bytes) || !find(src, bytes))
    return fail(kInvalidValue, "a copy of " + std::to_string(bytes) + " bytes on the device leaves its " +
                                   (find(src, bytes) ? "destination's" : "source's") + " allocation");
  if (dst < src + bytes && src < dst + bytes)
    return fail(kInvalidValue, "a copy of " + std::to_string(bytes) + " bytes on the device overlaps itself");
  std::memcpy(reinterpret_cast<void *>(dst), reinterpret_cast<const void *>(src), bytes);
  return kSuccess;
}

// Page-locked host memory: poisoned like device memory, and the only host memory an
// asynchronous copy takes (from pageable memory CUDA copies synchronously, which would hide
// the overlap a trainer means to have).
TLC_EMU_EXPORT CUresult cuMemHostAlloc(void **host, std::size_t bytes, unsigned flags) {
  if (!host || !bytes)
    return kInvalidValue;
  if (flags & ~15u)
    return fail(kInvalidValue, "cuMemHostAlloc: unknown flags " + std::to_string(flags));
  Driver &d = driver();
  std::lock_guard<std::mutex> lock(d.mutex);
  if (!d.initialised)
    return fail(kNotInitialized, "cuMemHostAlloc before cuInit");
  void *p = std::aligned_alloc(page(), (bytes + page() - 1) / page() * page());
  if (!p)
    return fail(kOutOfMemory, "out of host memory (" + std::to_string(bytes) + " bytes pinned)");
  std::memset(p, 0xff, bytes);
  d.pinned[static_cast<const char *>(p)] = bytes;
  *host = p;
  return kSuccess;
}

TLC_EMU_EXPORT CUresult cuMemFreeHost(void *host) {
  if (CUresult code = emu::streams_drain_all())
    return code;
  Driver &d = driver();
  std::lock_guard<std::mutex> lock(d.mutex);
  if (!d.pinned.erase(static_cast<const char *>(host)))
    return fail(kInvalidValue, "cuMemFreeHost of memory that cuMemHostAlloc did not return");
  std::free(host);
  return kSuccess;
}

// Checked when queued; the bytes move when the stream runs the copy, whatever the host has
// written to the pinned memory by then.
TLC_EMU_EXPORT CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, std::size_t bytes, void *stream) {
  {
    std::lock_guard<std::mutex> lock(driver().mutex);
    if (!find(dst, bytes))
      return fail(kInvalidValue, "an asynchronous copy of " + std::to_string(bytes) +
                                     " bytes to the device leaves its allocation");
    if (!pinned(src, bytes))
      return fail(kInvalidValue, "an asynchronous copy of " + std::to_string(bytes) + " bytes to the device from "
                                     "host memory that cuMemHostAlloc did not return (CUDA would copy it "
                                     "synchronously)");
  }
  return emu::stream_submit(stream, "cuMemcpyHtoDAsync", [dst, src, bytes](std::string *) {
    std::memcpy(reinterpret_cast<void *>(dst), src, bytes);
    return 0;
  });
}

TLC_EMU_EXPORT CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, std::size_t bytes, void *stream) {
  {
    std::lock_guard<std::mutex> lock(driver().mutex);
    if (!find(dst, bytes) || !find(src, bytes))
      return fail(kInvalidValue, "an asynchronous copy of " + std::to_string(bytes) + " bytes on the device leaves its " +
                                     (find(src, bytes) ? "destination's" : "source's") + " allocation");
    if (dst < src + bytes && src < dst + bytes)
      return fail(kInvalidValue, "an asynchronous copy of " + std::to_string(bytes) + " bytes on the device overlaps "
                                     "itself");
  }
  return emu::stream_submit(stream, "cuMemcpyDtoDAsync", [dst, src, bytes](std::string *) {
    std::memcpy(reinterpret_cast<void *>(dst), reinterpret_cast<const void *>(src), bytes);
    return 0;
  });
}

TLC_EMU_EXPORT CUresult cuMemGetInfo_v2(std::size_t *free_bytes, std::size_t *total_bytes) {
  Driver &d = driver();
  std::lock_guard<std::mutex> lock(d.mutex);
  if (!d.initialised)
    return fail(kNotInitialized, "cuMemGetInfo before cuInit");
  if (!free_bytes || !total_bytes)
    return kInvalidValue;
  *free_bytes = d.memory_total - d.memory_used;
  *total_bytes = d.memory_total;
  return kSuccess;
}

// Every device allocation, for the profile's counters to tell device accesses from others.
static std::vector<std::pair<std::uintptr_t, std::uintptr_t>> device_ranges() {
  std::vector<std::pair<std::uintptr_t, std::uintptr_t>> ranges;
  std::lock_guard<std::mutex> lock(driver().mutex);
  for (const auto &m : driver().memory)
    ranges.push_back({static_cast<std::uintptr_t>(m.first), static_cast<std::uintptr_t>(m.first) + m.second.bytes});
  return ranges;
}

TLC_EMU_EXPORT CUresult cuLaunchKernel(void *function, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                                       unsigned bz, unsigned shared, void *stream, void **params, void **extra) {
  Driver &d = driver();
  if (!function)
    return fail(kInvalidHandle, "cuLaunchKernel without a function");
  auto *f = static_cast<Function *>(function);
  const TlcEmuKernel *k = f->kernel;
  std::string name = k->name;
  if (!gx || !gy || !gz || !bx || !by || !bz || gy > 65535 || gz > 65535 || gx > 2147483647u || bx > 1024 ||
      by > 1024 || bz > 64 || 1ull * bx * by * bz > 1024)
    return fail(kInvalidValue, "kernel " + name + ": launch of grid (" + std::to_string(gx) + "," + std::to_string(gy) +
                                   "," + std::to_string(gz) + ") and block (" + std::to_string(bx) + "," +
                                   std::to_string(by) + "," + std::to_string(bz) +
                                   ") is outside CUDA's limits (at most 1024 threads a block)");
  if (extra)
    return fail(kInvalidValue, "kernel " + name + ": the emulator takes parameters through kernelParams only");
  if (k->nparams && !params)
    return fail(kInvalidValue, "kernel " + name + " takes " + std::to_string(k->nparams) + " parameters; none given");
  std::size_t static_shared = k->static_shared;
  if (shared + static_shared > static_cast<std::size_t>(f->max_dynamic_shared > 49152 ? f->max_dynamic_shared : 49152))
    return fail(kOutOfResources, "kernel " + name + ": " + std::to_string(shared) + " bytes of dynamic and " +
                                     std::to_string(static_shared) + " of static shared memory are more than the " +
                                     std::to_string(f->max_dynamic_shared) + " a block may use (cuFuncSetAttribute "
                                                                              "raises the limit)");
  {
    std::lock_guard<std::mutex> lock(d.mutex);
    for (int i = 0; i < k->nparams && i < 32; i++) {
      if (!(k->pointer_params >> i & 1))
        continue;
      CUdeviceptr p;
      std::memcpy(&p, params[i], sizeof p);
      if (p && !find(p, 0)) {
        char text[32];
        std::snprintf(text, sizeof text, "0x%llx", p);
        return fail(kInvalidValue, "kernel " + name + ": argument " + std::to_string(i) + " (" + text +
                                       ") is a pointer into no device allocation");
      }
    }
  }
  // A launch that runs later keeps its arguments' values, as CUDA does; the emulator knows
  // the size of a pointer argument only.
  unsigned all_pointers = k->nparams >= 32 ? ~0u : (1u << k->nparams) - 1;
  if (stream && (k->pointer_params & all_pointers) != all_pointers)
    return fail(kNotSupported, "kernel " + name + ": the emulator queues on a stream only launches whose "
                                   "arguments are all pointers");
  std::vector<CUdeviceptr> values(static_cast<std::size_t>(stream ? k->nparams : 0));
  for (std::size_t i = 0; i < values.size(); i++)
    std::memcpy(&values[i], params[i], sizeof values[i]);
  TlcEmuDim grid = {gx, gy, gz}, block = {bx, by, bz};
  return emu::stream_submit(stream, "kernel " + name, [f, grid, block, shared, values, params](std::string *error) {
    unsigned long long number;
    {
      std::lock_guard<std::mutex> lock(driver().mutex);
      number = driver().launches++;
    }
    std::vector<CUdeviceptr> copy = values;
    std::vector<void *> pointers(copy.size());
    for (std::size_t i = 0; i < copy.size(); i++)
      pointers[i] = &copy[i];
    emu::Launch l = {f->program, f->kernel, grid, block, shared, copy.empty() ? params : pointers.data(), number,
                     emu::settings().seed, emu::settings().all_fibers};
    if (emu::profiling())
      emu::profile_begin(device_ranges());
    int code = 0;
    *error = emu::launch_run(l, &code);
    if (emu::profiling())
      emu::profile_end(l);
    return error->empty() ? 0 : code ? code : kLaunchFailed;
  });
}

TLC_EMU_EXPORT CUresult cuGetErrorString(CUresult error, const char **text) {
  if (!text)
    return kInvalidValue;
  Driver &d = driver();
  *text = error == d.last_code && !d.last_message.empty() ? d.last_message.c_str() : code_text(error);
  return kSuccess;
}

TLC_EMU_EXPORT CUresult cuGetErrorName(CUresult error, const char **text) {
  if (!text)
    return kInvalidValue;
  *text = code_text(error);
  return kSuccess;
}

}  // extern "C"

__attribute__((destructor)) static void report_statistics(void) { emu::stats_print(); }
