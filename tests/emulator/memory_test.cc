// memory_test.cc: the emulated device's memory through the driver API, as a trainer's
// feature cache uses it: cuMemGetInfo reports the TLC_EMU_MEMORY_MB the test sets (64) and
// what allocations take of it (256-byte rounded), an allocation beyond it fails as out of
// memory, and cuMemcpyDtoD copies between and within allocations, refusing a copy that leaves
// one or overlaps itself, each with its message.
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
      {(void **)&cu.GetErrorString, "cuGetErrorString"},
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
  std::printf("emulator.memory: %d passed, %d failed\n", passes, failures);
  return failures ? 1 : 0;
}
