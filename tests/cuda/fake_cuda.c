// fake_cuda.c: a stand-in for the NVIDIA driver (libcuda.so.1) that checks how a trainer
// uses it, on machines without a GPU (tests/cuda/fake_driver.sh). It runs no kernel. It
// checks what it can: the loaded code is a cubin or PTX, every function a trainer asks for
// is in it, every launch has whole warps a block and, for PTX, exactly the block its
// __launch_bounds__ names and as many arguments as the
// kernel's .entry has, each pointing into the arena, and every copy stays inside the arena.
// Device memory starts filled with the float 1.5, so a trainer that shows the loss the
// device holds (and not a stale host copy) prints 1.5. A broken rule prints "fake libcuda:
// ..." and exits with status 99. FAKE_CUDA picks a behaviour: sm_90 (the default), sm_100
// (a newer GPU: the trainer loads PTX), sm_80 (older than the cubin), nodevice, nogpu, oom,
// oldptx (the driver refuses the PTX), launchfail.
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef unsigned long long CUdeviceptr;

// What it exports: the part of the driver API that runtime/gpu.c loads.
CUresult cuInit(unsigned flags);
CUresult cuDriverGetVersion(int *v);
CUresult cuDeviceGetCount(int *count);
CUresult cuDeviceGet(int *dev, int ordinal);
CUresult cuDeviceGetName(char *name, int len, int dev);
CUresult cuDeviceGetAttribute(int *value, int attribute, int dev);
CUresult cuDevicePrimaryCtxRetain(void **ctx, int dev);
CUresult cuDevicePrimaryCtxRelease(int dev);
CUresult cuCtxSetCurrent(void *ctx);
CUresult cuCtxSynchronize(void);
CUresult cuModuleLoadData(void **module, const void *image);
CUresult cuModuleUnload(void *module);
CUresult cuModuleGetFunction(void **f, void *module, const char *name);
CUresult cuMemAlloc_v2(CUdeviceptr *ptr, size_t bytes);
CUresult cuMemFree_v2(CUdeviceptr ptr);
CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t bytes);
CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t bytes);
CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t bytes);
CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total_bytes);
CUresult cuLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shared, void *stream, void **params, void **extra);
CUresult cuGetErrorString(CUresult error, const char **text);

enum {
  OK = 0, OUT_OF_MEMORY = 2, NO_DEVICE = 100, INVALID_VALUE = 1, NOT_FOUND = 500, UNSUPPORTED_PTX = 222,
  LAUNCH_FAILED = 719, MAX_ENTRIES = 4096,
};

typedef struct Entry {
  char name[128];
  int params;
  int maxntid;          // __launch_bounds__: the block every launch must have
} Entry;

static struct {
  const char *mode;
  char *arena;
  size_t arena_bytes;
  const char *image;   // the loaded cubin or PTX
  Entry *entries;      // PTX only: each .entry and its parameter count
  int nentries;
  long launches, up, down;
} fake;

static void broken(const char *what, const char *detail) {
  fprintf(stderr, "fake libcuda: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  exit(99);
}

static bool mode(const char *m) { return fake.mode && !strcmp(fake.mode, m); }

__attribute__((destructor)) static void report(void) {
  if (fake.launches || fake.up)
    fprintf(stderr, "fake libcuda: %ld launches, %ld bytes up, %ld bytes down\n", fake.launches, fake.up, fake.down);
}

CUresult cuInit(unsigned flags) {
  fake.mode = getenv("FAKE_CUDA");
  return flags ? INVALID_VALUE : mode("nodevice") ? NO_DEVICE : OK;
}
CUresult cuDriverGetVersion(int *v) { *v = 12080; return OK; }
CUresult cuDeviceGetCount(int *count) { *count = mode("nogpu") ? 0 : 1; return OK; }
CUresult cuDeviceGet(int *dev, int ordinal) { *dev = ordinal; return ordinal ? INVALID_VALUE : OK; }
CUresult cuDeviceGetName(char *name, int len, int dev) {
  (void)dev;
  snprintf(name, (size_t)len, "Fake GPU");
  return OK;
}
CUresult cuDeviceGetAttribute(int *value, int attribute, int dev) {
  (void)dev;
  int major = mode("sm_100") ? 10 : mode("sm_80") ? 8 : 9;
  if (attribute == 75)
    *value = major;
  else if (attribute == 76)
    *value = 0;
  else
    return INVALID_VALUE;
  return OK;
}
CUresult cuDevicePrimaryCtxRetain(void **ctx, int dev) { (void)dev; *ctx = &fake; return OK; }
CUresult cuDevicePrimaryCtxRelease(int dev) { (void)dev; return OK; }
CUresult cuCtxSetCurrent(void *ctx) { return ctx == &fake ? OK : INVALID_VALUE; }
CUresult cuCtxSynchronize(void) { return OK; }

// ".visible .entry NAME(" followed by ".param .u64 NAME_param_0," lines up to ")".
static void read_ptx(const char *ptx) {
  fake.entries = calloc(MAX_ENTRIES, sizeof *fake.entries);
  for (const char *p = strstr(ptx, ".entry "); p; p = strstr(p + 1, ".entry ")) {
    if (fake.nentries == MAX_ENTRIES)
      broken("too many kernels", NULL);
    Entry *e = &fake.entries[fake.nentries++];
    const char *name = p + 7, *open = strchr(name, '(');
    if (!open || open - name >= (long)sizeof e->name)
      broken("an .entry without a parameter list", NULL);
    memcpy(e->name, name, (size_t)(open - name));
    const char *close = strchr(open, ')');
    for (const char *q = strstr(open, ".param"); q && q < close; q = strstr(q + 1, ".param"))
      e->params++;
    const char *body = strchr(close, '{'), *bounds = strstr(close, ".maxntid");
    if (!body || !bounds || bounds > body)
      broken("an .entry without its launch bounds", e->name);
    e->maxntid = atoi(bounds + 8);
  }
  if (!fake.nentries)
    broken("PTX without kernels", NULL);
}

CUresult cuModuleLoadData(void **module, const void *image) {
  const char *text = image;
  bool ptx = mode("sm_100");
  if (mode("oldptx"))
    return UNSUPPORTED_PTX;
  if (ptx ? !strstr(text, ".target sm_") : memcmp(text, "\x7f" "ELF", 4) != 0)
    broken(ptx ? "a newer GPU was given something other than PTX" : "the GPU's own architecture was given no cubin",
           NULL);
  if (ptx)
    read_ptx(text);
  fake.image = text;
  *module = &fake;
  return OK;
}
CUresult cuModuleUnload(void *module) { return module == &fake ? OK : INVALID_VALUE; }

static const Entry *entry(const char *name) {
  for (int i = 0; i < fake.nentries; i++)
    if (!strcmp(fake.entries[i].name, name))
      return &fake.entries[i];
  return NULL;
}

// A function handle is the entry (PTX) or a copy of the name (cubin, whose symbol table
// must hold it).
CUresult cuModuleGetFunction(void **f, void *module, const char *name) {
  if (module != &fake)
    return INVALID_VALUE;
  if (fake.entries) {
    const Entry *e = entry(name);
    *f = (void *)e;
    return e ? OK : NOT_FOUND;
  }
  size_t len = strlen(name) + 1;
  static const size_t cubin_scan = 64 << 20;
  for (size_t i = 0; i < cubin_scan; i++)   // the cubin's string table
    if (!memcmp(fake.image + i, name, len)) {
      *f = strdup(name);
      return OK;
    }
  return NOT_FOUND;
}

CUresult cuMemAlloc_v2(CUdeviceptr *ptr, size_t bytes) {
  if (mode("oom") || fake.arena)
    return OUT_OF_MEMORY;
  float *a = malloc(bytes);
  if (!a)
    return OUT_OF_MEMORY;
  for (size_t i = 0; i < bytes / 4; i++)
    a[i] = 1.5f;
  fake.arena = (char *)a;
  fake.arena_bytes = bytes;
  *ptr = (CUdeviceptr)a;
  return OK;
}
CUresult cuMemFree_v2(CUdeviceptr ptr) {
  if ((char *)ptr != fake.arena)
    broken("freeing what was not allocated", NULL);
  free(fake.arena);
  fake.arena = NULL;
  return OK;
}

static void in_arena(CUdeviceptr p, size_t bytes, const char *what) {
  char *c = (char *)p;
  if (!fake.arena || c < fake.arena || c + bytes > fake.arena + fake.arena_bytes)
    broken(what, "outside the arena");
}

CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t bytes) {
  in_arena(dst, bytes, "a copy to the GPU");
  memcpy((char *)dst, src, bytes);
  fake.up += (long)bytes;
  return OK;
}
CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t bytes) {
  in_arena(src, bytes, "a copy from the GPU");
  memcpy(dst, (char *)src, bytes);
  fake.down += (long)bytes;
  return OK;
}

CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t bytes) {
  in_arena(dst, bytes, "a copy on the GPU");
  in_arena(src, bytes, "a copy on the GPU");
  memmove((char *)dst, (char *)src, bytes);
  return OK;
}
// An 80 GB GPU that holds the arena.
CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total_bytes) {
  *total_bytes = (size_t)80 << 30;
  *free_bytes = *total_bytes - fake.arena_bytes;
  return OK;
}

CUresult cuLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shared, void *stream, void **params, void **extra) {
  if (!f || !gx || gy != 1 || gz != 1 || bx % 32 || bx > 1024 || by != 1 || bz != 1 || shared || stream || extra ||
      !params)
    broken("a launch with other dimensions than tlc's", NULL);
  if (fake.entries) {
    const Entry *e = f;
    if ((int)bx != e->maxntid)
      broken("a launch whose block is not its kernel's __launch_bounds__", e->name);
    for (int i = 0; i < e->params; i++)
      in_arena(*(CUdeviceptr *)params[i], 4, e->name);
  }
  fake.launches++;
  return mode("launchfail") ? LAUNCH_FAILED : OK;
}

CUresult cuGetErrorString(CUresult error, const char **text) {
  *text = error == OUT_OF_MEMORY ? "out of memory" : error == LAUNCH_FAILED ? "unspecified launch failure"
          : error == UNSUPPORTED_PTX ? "the provided PTX was compiled with an unsupported toolchain"
          : error == NOT_FOUND ? "named symbol not found" : "fake error";
  return OK;
}
