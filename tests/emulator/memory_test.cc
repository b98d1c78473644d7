// memory_test.cc: the emulated device's memory through the driver API, as a trainer's
// feature cache uses it: cuMemGetInfo reports the TLC_EMU_MEMORY_MB the test sets (64) and
// what allocations take of it (256-byte rounded), an allocation beyond it fails as out of
// memory, and cuMemcpyDtoD copies between and within allocations, refusing a copy that leaves
// one or overlaps itself, each with its message. Then what a trainer's CUDA graphs use:
// pinned memory, asynchronous copies on streams that run only when something waits for them,
// events between streams, a capture replayed as a graph, and the calls refused on the way.
//   memory_test LIBCUDA      (with TLC_EMU_MEMORY_MB=64)
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

typedef int CUresult;
typedef unsigned long long CUdeviceptr;

struct Driver {
  CUresult (*Init)(unsigned);
  CUresult (*MemAlloc)(CUdeviceptr *, std::size_t);
  CUresult (*MemFree)(CUdeviceptr);
  CUresult (*MemcpyHtoD)(CUdeviceptr, const void *, std::size_t);
  CUresult (*MemcpyDtoH)(void *, CUdeviceptr, std::size_t);
  CUresult (*MemcpyDtoD)(CUdeviceptr, CUdeviceptr, std::size_t);
  CUresult (*MemGetInfo)(std::size_t *, std::size_t *);
  CUresult (*GetErrorString)(CUresult, const char **);
  CUresult (*MemHostAlloc)(void **, std::size_t, unsigned);
  CUresult (*MemFreeHost)(void *);
  CUresult (*MemcpyHtoDAsync)(CUdeviceptr, const void *, std::size_t, void *);
  CUresult (*MemcpyDtoDAsync)(CUdeviceptr, CUdeviceptr, std::size_t, void *);
  CUresult (*StreamCreate)(void **, unsigned);
  CUresult (*StreamSynchronize)(void *);
  CUresult (*StreamWaitEvent)(void *, void *, unsigned);
  CUresult (*StreamBeginCapture)(void *, int);
  CUresult (*StreamEndCapture)(void *, void **);
  CUresult (*EventCreate)(void **, unsigned);
  CUresult (*EventRecord)(void *, void *);
  CUresult (*EventSynchronize)(void *);
  CUresult (*GraphInstantiate)(void **, void *, unsigned long long);
  CUresult (*GraphLaunch)(void *, void *);
  CUresult (*CtxSynchronize)(void);
} cu;

int failures = 0, passes = 0;

void check(bool ok, const std::string &what) {
  if (ok) {
    passes++;
    return;
  }
  failures++;
  std::printf("FAIL: %s\n", what.c_str());
}

std::string error_text(CUresult r) {
  const char *text = nullptr;
  cu.GetErrorString(r, &text);
  return text ? text : "?";
}

// The call failed with `code` and a message that contains `text`.
void check_fails(CUresult r, CUresult code, const char *text, const std::string &what) {
  check(r == code && error_text(r).find(text) != std::string::npos,
        what + ": status " + std::to_string(r) + ", \"" + error_text(r) + "\"");
}

std::size_t free_now() {
  std::size_t free_bytes = 0, total = 0;
  cu.MemGetInfo(&free_bytes, &total);
  return free_bytes;
}

std::vector<unsigned char> read(CUdeviceptr p, std::size_t n) {
  std::vector<unsigned char> host(n);
  cu.MemcpyDtoH(host.data(), p, n);
  return host;
}

void test_copies(CUdeviceptr a, CUdeviceptr b) {
  std::vector<unsigned char> pattern(1000);
  for (std::size_t i = 0; i < pattern.size(); i++)
    pattern[i] = static_cast<unsigned char>(i * 7 + 3);
  cu.MemcpyHtoD(a, pattern.data(), pattern.size());
  check(cu.MemcpyDtoD(b, a, 1000) == 0 && read(b, 1000) == pattern, "cuMemcpyDtoD copies a whole allocation");
  std::vector<unsigned char> want = read(b, 1000);
  std::memcpy(want.data() + 100, pattern.data() + 10, 500);
  check(cu.MemcpyDtoD(b + 100, a + 10, 500) == 0 && read(b, 1000) == want, "cuMemcpyDtoD copies between offsets");
  check(cu.MemcpyDtoD(a + 600, a, 300) == 0 && read(a + 600, 300) == std::vector<unsigned char>(pattern.begin(),
                                                                                               pattern.begin() + 300),
        "cuMemcpyDtoD copies within an allocation");
  check_fails(cu.MemcpyDtoD(b + 600, a, 500), 1, "leaves its destination's allocation", "a copy past the destination");
  check_fails(cu.MemcpyDtoD(b, a + 600, 500), 1, "leaves its source's allocation", "a copy past the source");
  check_fails(cu.MemcpyDtoD(a, a + 100, 500), 1, "overlaps itself", "an overlapping copy");
}

void test_memory() {
  std::size_t free_bytes = 0, total = 0;
  check(cu.MemGetInfo(&free_bytes, &total) == 0 && total == std::size_t(64) << 20 && free_bytes == total,
        "cuMemGetInfo: 64 MiB, all free (" + std::to_string(free_bytes) + " of " + std::to_string(total) + ")");
  CUdeviceptr a = 0, b = 0, big = 0;
  check(cu.MemAlloc(&a, 1000) == 0 && free_now() == total - 1024, "an allocation of 1000 bytes takes 1024");
  check(cu.MemAlloc(&b, 1000) == 0 && free_now() == total - 2048, "and another");
  test_copies(a, b);
  check_fails(cu.MemAlloc(&big, total - 2047), 2, "the emulated device has 67106816 of its 67108864 bytes free",
              "an allocation over the free memory");
  check(cu.MemAlloc(&big, total - 2048) == 0 && free_now() == 0, "an allocation of all the rest");
  cu.MemFree(big);
  cu.MemFree(a);
  cu.MemFree(b);
  check(free_now() == total, "freed, all of it is free again");
}

// A copy on a stream waits for a wait; an event orders two streams; cuCtxSynchronize runs all.
void test_streams(CUdeviceptr a, CUdeviceptr b, unsigned char *pinned) {
  const std::vector<unsigned char> poison(64, 0xff);
  void *up = nullptr, *compute = nullptr, *blocking = nullptr, *event = nullptr;
  check(cu.StreamCreate(&up, 1) == 0 && cu.StreamCreate(&compute, 1) == 0 && cu.StreamCreate(&blocking, 0) == 0 &&
            cu.EventCreate(&event, 2) == 0, "streams and an event");
  std::memset(pinned, 7, 64);
  check(cu.MemcpyHtoDAsync(a, pinned, 64, up) == 0 && read(a, 64) == poison,
        "an asynchronous copy has not run before anything waits for it");
  std::memset(pinned, 9, 64);   // what the copy takes is what pinned memory holds when it runs
  check(cu.StreamSynchronize(up) == 0 && read(a, 64) == std::vector<unsigned char>(64, 9),
        "cuStreamSynchronize runs it, from pinned memory as it is then");
  std::memset(pinned, 11, 64);
  cu.MemcpyHtoDAsync(a, pinned, 64, up);
  cu.EventRecord(event, up);
  check(cu.StreamWaitEvent(compute, event, 0) == 0 && cu.MemcpyDtoDAsync(b, a, 64, compute) == 0 &&
            cu.StreamSynchronize(compute) == 0 && read(b, 64) == std::vector<unsigned char>(64, 11),
        "a stream that waits for an event sees what came before it on the other stream");
  std::memset(pinned, 12, 64);
  cu.MemcpyHtoDAsync(a, pinned, 64, up);
  cu.EventRecord(event, up);
  check(cu.MemcpyDtoDAsync(b, a, 64, compute) == 0 && cu.EventSynchronize(event) == 0 &&
            read(a, 64) == std::vector<unsigned char>(64, 12) && read(b, 64) == std::vector<unsigned char>(64, 11),
        "cuEventSynchronize runs the recording stream only");
  cu.StreamSynchronize(compute);
  std::memset(pinned, 13, 64);
  cu.MemcpyHtoDAsync(b, pinned, 64, blocking);
  check(read(b, 64) == std::vector<unsigned char>(64, 13), "the default stream runs what a blocking stream holds first");
  std::vector<unsigned char> pageable(64);
  check_fails(cu.MemcpyHtoDAsync(a, pageable.data(), 64, up), 1, "host memory that cuMemHostAlloc did not return",
              "an asynchronous copy from pageable memory");
  check_fails(cu.MemcpyHtoDAsync(a, pinned, 64, pinned), 400, "a stream that cuStreamCreate did not make",
              "a copy on a stream that is none");
  cu.MemcpyHtoDAsync(a, pinned, 64, up);
  check(cu.CtxSynchronize() == 0 && read(a, 64) == std::vector<unsigned char>(64, 13), "cuCtxSynchronize runs all");
}

// A capture records instead of running; its graph replays it on what memory holds then. The
// default stream's synchronous calls are refused during a capture, which they make void.
void test_graphs(CUdeviceptr a, CUdeviceptr b, unsigned char *pinned) {
  void *s = nullptr, *graph = nullptr, *exec = nullptr;
  cu.StreamCreate(&s, 1);
  std::memset(pinned, 21, 64);
  check(cu.StreamBeginCapture(s, 1) == 0 && cu.MemcpyHtoDAsync(a, pinned, 64, s) == 0 &&
            cu.MemcpyDtoDAsync(b, a, 64, s) == 0 && cu.StreamEndCapture(s, &graph) == 0 && graph &&
            cu.GraphInstantiate(&exec, graph, 0) == 0,
        "a capture of two copies, instantiated");
  check(read(b, 64) != std::vector<unsigned char>(64, 21), "a capture runs nothing");
  for (int pass = 0; pass < 2; pass++) {
    std::memset(pinned, 30 + pass, 64);
    check(cu.GraphLaunch(exec, s) == 0 && cu.StreamSynchronize(s) == 0 &&
              read(b, 64) == std::vector<unsigned char>(64, static_cast<unsigned char>(30 + pass)),
          "a graph replays its copies, pass " + std::to_string(pass));
  }
  std::vector<unsigned char> host(64);
  cu.StreamBeginCapture(s, 1);
  check_fails(cu.MemcpyHtoD(a, host.data(), 64), 900, "while a stream is being captured",
              "a synchronous copy during a capture");
  check_fails(cu.StreamEndCapture(s, &graph), 901, "the capture was void", "the capture it voided");
  check_fails(cu.StreamEndCapture(s, &graph), 401, "not being captured", "the end of no capture");
}

}  // namespace

int main(int argc, char **argv) {
  // It allocates all of the device's memory: the machine's, without the variable.
  const char *mb = std::getenv("TLC_EMU_MEMORY_MB");
  if (argc != 2 || !mb || std::strcmp(mb, "64") != 0) {
    std::fprintf(stderr, "usage: TLC_EMU_MEMORY_MB=64 memory_test LIBCUDA\n");
    return 2;
  }
  void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    std::fprintf(stderr, "memory_test: %s\n", dlerror());
    return 1;
  }
  struct {
    void **slot;
    const char *name;
  } symbols[] = {
      {(void **)&cu.Init, "cuInit"}, {(void **)&cu.MemAlloc, "cuMemAlloc_v2"}, {(void **)&cu.MemFree, "cuMemFree_v2"},
      {(void **)&cu.MemcpyHtoD, "cuMemcpyHtoD_v2"}, {(void **)&cu.MemcpyDtoH, "cuMemcpyDtoH_v2"},
      {(void **)&cu.MemcpyDtoD, "cuMemcpyDtoD_v2"}, {(void **)&cu.MemGetInfo, "cuMemGetInfo_v2"},
      {(void **)&cu.GetErrorString, "cuGetErrorString"}, {(void **)&cu.MemHostAlloc, "cuMemHostAlloc"},
      {(void **)&cu.MemFreeHost, "cuMemFreeHost"}, {(void **)&cu.MemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2"},
      {(void **)&cu.MemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2"}, {(void **)&cu.StreamCreate, "cuStreamCreate"},
      {(void **)&cu.StreamSynchronize, "cuStreamSynchronize"}, {(void **)&cu.StreamWaitEvent, "cuStreamWaitEvent"},
      {(void **)&cu.StreamBeginCapture, "cuStreamBeginCapture_v2"},
      {(void **)&cu.StreamEndCapture, "cuStreamEndCapture"}, {(void **)&cu.EventCreate, "cuEventCreate"},
      {(void **)&cu.EventRecord, "cuEventRecord"}, {(void **)&cu.EventSynchronize, "cuEventSynchronize"},
      {(void **)&cu.GraphInstantiate, "cuGraphInstantiateWithFlags"}, {(void **)&cu.GraphLaunch, "cuGraphLaunch"},
      {(void **)&cu.CtxSynchronize, "cuCtxSynchronize"},
  };
  for (auto &s : symbols)
    if (!(*s.slot = dlsym(lib, s.name))) {
      std::fprintf(stderr, "memory_test: the emulator lacks %s\n", s.name);
      return 1;
    }
  CUdeviceptr early = 0;
  check_fails(cu.MemAlloc(&early, 16), 3, "before cuInit", "an allocation before cuInit");
  if (cu.Init(0) != 0) {
    std::fprintf(stderr, "memory_test: cuInit failed\n");
    return 1;
  }
  test_memory();
  CUdeviceptr a = 0, b = 0;
  void *pinned = nullptr;
  if (cu.MemAlloc(&a, 64) || cu.MemAlloc(&b, 64) || cu.MemHostAlloc(&pinned, 64, 0)) {
    std::fprintf(stderr, "memory_test: cannot allocate for the streams' tests\n");
    return 1;
  }
  test_streams(a, b, static_cast<unsigned char *>(pinned));
  test_graphs(a, b, static_cast<unsigned char *>(pinned));
  check(cu.MemFreeHost(pinned) == 0, "cuMemFreeHost");
  check_fails(cu.MemFreeHost(pinned), 1, "cuMemHostAlloc did not return", "freeing pinned memory twice");
  std::printf("emulator.memory: %d passed, %d failed\n", passes, failures);
  return failures ? 1 : 0;
}
