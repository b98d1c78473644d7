// fake_cuda.c: a stand-in for the NVIDIA driver (libcuda.so.1) that checks how a trainer
// uses it, on machines without a GPU (tests/cuda/fake_driver.sh). It runs no kernel. It
// checks what it can: the loaded code is a cubin or PTX, every function a trainer asks for
// is in it, every launch has whole warps a block and, for PTX, exactly the block its
// __launch_bounds__ names and as many arguments as the
// kernel's .entry has, each pointing into a device allocation (the arena, the slots, the data
// path's images), and every copy stays inside one.
// Device memory starts filled with the float 1.5, so a trainer that shows the loss the
// device holds (and not a stale host copy) prints 1.5. A broken rule prints "fake libcuda:
// ..." and exits with status 99. FAKE_CUDA picks a behaviour: sm_90 (the default), sm_100
// (a newer GPU: the trainer loads PTX), sm_80 (older than the cubin), nodevice, nogpu, oom,
// oldptx (the driver refuses the PTX), launchfail, and for CUDA graphs: nopinned (no
// page-locked memory), graphfail (a graph that will not instantiate), streamfail (a kernel
// of a graph fails, found when the stream is waited for).
//
// The steps as CUDA graphs: it checks that streams are non-blocking, that a kernel goes to a
// stream only while that stream is captured, that a graph is launched as instantiated from a
// capture, that asynchronous copies come from pinned memory (cuMemHostAlloc) and stay
// inside allocations, and that a stream reads device memory another stream wrote only
// after waiting (cuStreamWaitEvent) for an event recorded after the write. Built with
// FAKE_CUDA_NO_GRAPHS (fake_old/libcuda.so.1) it lacks the graph entry points, as a driver
// older than CUDA 11.4 does.
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver_api.h"   // what it exports

enum {
  OK = 0, OUT_OF_MEMORY = 2, NO_DEVICE = 100, INVALID_VALUE = 1, NOT_FOUND = 500, UNSUPPORTED_PTX = 222,
  LAUNCH_FAILED = 719, MAX_ENTRIES = 4096, MAX_ALLOCATIONS = 8, MAX_STREAMS = 4, MAX_EVENTS = 16,
};

// A stream: the pieces of work queued on it so far, and how far into each other stream's
// pieces it has waited (through events).
typedef struct Stream {
  long ops;
  long waited[MAX_STREAMS];
  bool capturing;
  long captured;        // kernels recorded in the capture under way
} Stream;

typedef struct Event {
  int stream;           // recorded on this stream after its `ops`-th piece; -1: never recorded
  long ops;
} Event;

// A device allocation, and the last asynchronous copy that wrote it: which stream, which piece.
typedef struct Allocation {
  char *start;
  size_t bytes;
  int writer;           // -1: none
  long write_op;
} Allocation;

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
  Allocation allocations[MAX_ALLOCATIONS];
  int nallocations;
  Stream streams[MAX_STREAMS];
  int nstreams;
  Event events[MAX_EVENTS];
  int nevents;
  char *pinned[4];      // cuMemHostAlloc's blocks and their sizes
  size_t pinned_bytes[4];
  int npinned;
  long graphs, graph_launches;
} fake;

static void broken(const char *what, const char *detail) {
  fprintf(stderr, "fake libcuda: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  exit(99);
}

static bool mode(const char *m) { return fake.mode && !strcmp(fake.mode, m); }

__attribute__((destructor)) static void report(void) {
  if (fake.launches || fake.up)
    fprintf(stderr, "fake libcuda: %ld launches, %ld bytes up, %ld bytes down, %ld graphs launched %ld times\n",
            fake.launches, fake.up, fake.down, fake.graphs, fake.graph_launches);
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

// The first allocation is the arena; the slots of the next batch (and a feature cache) follow.
CUresult cuMemAlloc_v2(CUdeviceptr *ptr, size_t bytes) {
  if (mode("oom") || fake.nallocations == MAX_ALLOCATIONS)
    return OUT_OF_MEMORY;
  float *a = malloc(bytes);
  if (!a)
    return OUT_OF_MEMORY;
  for (size_t i = 0; i < bytes / 4; i++)
    a[i] = 1.5f;
  if (!fake.arena)
    fake.arena = (char *)a, fake.arena_bytes = bytes;
  fake.allocations[fake.nallocations++] = (Allocation){(char *)a, bytes, -1, 0};
  *ptr = (CUdeviceptr)a;
  return OK;
}
CUresult cuMemFree_v2(CUdeviceptr ptr) {
  for (int i = 0; i < fake.nallocations; i++)
    if (fake.allocations[i].start == (char *)ptr) {
      free(fake.allocations[i].start);
      fake.allocations[i] = fake.allocations[--fake.nallocations];
      if ((char *)ptr == fake.arena)
        fake.arena = NULL;
      return OK;
    }
  broken("freeing what was not allocated", NULL);
  return INVALID_VALUE;
}

// The allocation that holds [p, p + bytes); a copy outside every allocation is broken.
static Allocation *allocation(CUdeviceptr p, size_t bytes, const char *what) {
  char *c = (char *)p;
  for (int i = 0; i < fake.nallocations; i++) {
    Allocation *a = &fake.allocations[i];
    if (c >= a->start && c + bytes <= a->start + a->bytes)
      return a;
  }
  broken(what, "outside every device allocation");
  return NULL;
}

CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t bytes) {
  allocation(dst, bytes, "a copy to the GPU");
  memcpy((char *)dst, src, bytes);
  fake.up += (long)bytes;
  return OK;
}
CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t bytes) {
  allocation(src, bytes, "a copy from the GPU");
  memcpy(dst, (char *)src, bytes);
  fake.down += (long)bytes;
  return OK;
}

CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t bytes) {
  allocation(dst, bytes, "a copy on the GPU");
  allocation(src, bytes, "a copy on the GPU");
  memmove((char *)dst, (char *)src, bytes);
  return OK;
}
// An 80 GB GPU that holds the arena.
CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total_bytes) {
  *total_bytes = (size_t)80 << 30;
  *free_bytes = *total_bytes - fake.arena_bytes;   // (the rest is small)
  return OK;
}

static Stream *stream_of(void *stream) {
  if (!stream)
    return NULL;
  Stream *s = stream;
  if (s < fake.streams || s >= fake.streams + fake.nstreams)
    broken("a stream that cuStreamCreate did not make", NULL);
  return s;
}

#ifndef FAKE_CUDA_NO_GRAPHS
static Event *event_of(void *event) {
  Event *e = event;
  if (e < fake.events || e >= fake.events + fake.nevents)
    broken("an event that cuEventCreate did not make", NULL);
  return e;
}


// Non-blocking streams: tlc's copies on the default stream must not wait for a step.
CUresult cuStreamCreate(void **stream, unsigned flags) {
  if (flags != 1)
    broken("a stream that is not CU_STREAM_NON_BLOCKING", NULL);
  if (fake.nstreams == MAX_STREAMS)
    broken("more streams than tlc makes", NULL);
  *stream = &fake.streams[fake.nstreams++];
  return OK;
}
CUresult cuStreamDestroy_v2(void *stream) {
  if (stream_of(stream)->capturing)
    broken("a stream destroyed during its capture", NULL);
  return OK;
}
CUresult cuStreamSynchronize(void *stream) {
  Stream *s = stream_of(stream);
  if (!s || s->capturing)
    broken("waiting for the default stream, or for one being captured", NULL);
  return mode("streamfail") && s->ops ? LAUNCH_FAILED : OK;
}
CUresult cuEventCreate(void **event, unsigned flags) {
  if (flags != 2)
    broken("an event with timing (tlc's only order work: CU_EVENT_DISABLE_TIMING)", NULL);
  if (fake.nevents == MAX_EVENTS)
    broken("more events than tlc makes", NULL);
  fake.events[fake.nevents] = (Event){-1, 0};
  *event = &fake.events[fake.nevents++];
  return OK;
}
CUresult cuEventDestroy_v2(void *event) { event_of(event); return OK; }
CUresult cuEventRecord(void *event, void *stream) {
  Event *e = event_of(event);
  Stream *s = stream_of(stream);
  if (!s || s->capturing)
    broken("an event recorded on the default stream, or in a capture", NULL);
  e->stream = (int)(s - fake.streams), e->ops = s->ops;
  return OK;
}
CUresult cuEventSynchronize(void *event) { event_of(event); return OK; }
CUresult cuStreamWaitEvent(void *stream, void *event, unsigned flags) {
  Stream *s = stream_of(stream);
  Event *e = event_of(event);
  if (!s || s->capturing || flags)
    broken("a wait on the default stream, in a capture, or with flags", NULL);
  if (e->stream >= 0 && s->waited[e->stream] < e->ops)
    s->waited[e->stream] = e->ops;
  s->ops++;
  return OK;
}
CUresult cuStreamBeginCapture_v2(void *stream, int capture_mode) {
  Stream *s = stream_of(stream);
  if (!s || s->capturing || capture_mode < 0 || capture_mode > 2)
    broken("a capture of the default stream, of one already captured, or in no mode", NULL);
  s->capturing = true;
  s->captured = 0;
  return OK;
}
// A graph is the number of kernels it holds.
CUresult cuStreamEndCapture(void *stream, void **graph) {
  Stream *s = stream_of(stream);
  if (!s || !s->capturing)
    broken("the end of a capture that did not begin", NULL);
  s->capturing = false;
  long *g = malloc(sizeof *g);
  *g = s->captured;
  *graph = g;
  return OK;
}
CUresult cuGraphInstantiateWithFlags(void **exec, void *graph, unsigned long long flags) {
  if (!graph || flags)
    broken("a graph instantiated from nothing, or with flags", NULL);
  if (mode("graphfail"))
    return INVALID_VALUE;
  long *copy = malloc(sizeof *copy);
  *copy = *(long *)graph;
  if (!*copy)
    broken("a graph without kernels", NULL);
  *exec = copy;
  return OK;
}
CUresult cuGraphLaunch(void *exec, void *stream) {
  Stream *s = stream_of(stream);
  if (!s || s->capturing || !exec)
    broken("a graph launched on the default stream, in a capture, or not instantiated", NULL);
  fake.launches += *(long *)exec;
  fake.graph_launches++;
  s->ops++;
  return OK;
}
CUresult cuGraphExecDestroy(void *exec) { free(exec); fake.graphs++; return OK; }
CUresult cuGraphDestroy(void *graph) { free(graph); return OK; }

CUresult cuMemHostAlloc(void **host, size_t bytes, unsigned flags) {
  if (flags)
    broken("pinned memory with flags tlc does not use", NULL);
  if (mode("nopinned") || fake.npinned == 4)
    return OUT_OF_MEMORY;
  fake.pinned[fake.npinned] = malloc(bytes);
  fake.pinned_bytes[fake.npinned] = bytes;
  *host = fake.pinned[fake.npinned++];
  return OK;
}
CUresult cuMemFreeHost(void *host) {
  for (int i = 0; i < fake.npinned; i++)
    if (fake.pinned[i] == host) {
      free(host);
      fake.pinned[i] = NULL;
      return OK;
    }
  broken("cuMemFreeHost of memory that cuMemHostAlloc did not return", NULL);
  return INVALID_VALUE;
}
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t bytes, void *stream) {
  Stream *s = stream_of(stream);
  bool pinned = false;
  for (int i = 0; i < fake.npinned; i++)
    pinned |= fake.pinned[i] && (const char *)src >= fake.pinned[i] &&
              (const char *)src + bytes <= fake.pinned[i] + fake.pinned_bytes[i];
  if (!s || s->capturing || !pinned)
    broken("an asynchronous copy up on the default stream, in a capture, or from memory that is not pinned", NULL);
  Allocation *a = allocation(dst, bytes, "an asynchronous copy to the GPU");
  memcpy((char *)dst, src, bytes);
  a->writer = (int)(s - fake.streams), a->write_op = ++s->ops;
  fake.up += (long)bytes;
  return OK;
}
CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t bytes, void *stream) {
  Stream *s = stream_of(stream);
  if (!s || s->capturing)
    broken("an asynchronous copy on the default stream, or in a capture", NULL);
  allocation(dst, bytes, "an asynchronous copy on the GPU");
  Allocation *from = allocation(src, bytes, "an asynchronous copy on the GPU");
  int self = (int)(s - fake.streams);
  if (from->writer >= 0 && from->writer != self && s->waited[from->writer] < from->write_op)
    broken("a copy reads device memory that another stream writes, without waiting for the write", NULL);
  memmove((char *)dst, (char *)src, bytes);
  s->ops++;
  return OK;
}
#endif

CUresult cuLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shared, void *stream, void **params, void **extra) {
  if (!f || !gx || gy != 1 || gz != 1 || bx % 32 || bx > 1024 || by != 1 || bz != 1 || shared || extra || !params)
    broken("a launch with other dimensions than tlc's", NULL);
  Stream *s = stream_of(stream);
  if (s && !s->capturing)
    broken("a kernel launched on a stream outside a capture (tlc's graphs replay them)", NULL);
  if (s)
    s->captured++;
  if (fake.entries) {
    const Entry *e = f;
    if ((int)bx != e->maxntid)
      broken("a launch whose block is not its kernel's __launch_bounds__", e->name);
    for (int i = 0; i < e->params; i++)
      allocation(*(CUdeviceptr *)params[i], 4, e->name);   // the arena, or the data path's images
  }
  fake.launches += !s;
  return mode("launchfail") ? LAUNCH_FAILED : OK;
}

CUresult cuGetErrorString(CUresult error, const char **text) {
  *text = error == OUT_OF_MEMORY ? "out of memory" : error == LAUNCH_FAILED ? "unspecified launch failure"
          : error == UNSUPPORTED_PTX ? "the provided PTX was compiled with an unsupported toolchain"
          : error == NOT_FOUND ? "named symbol not found" : error == INVALID_VALUE ? "invalid argument" : "fake error";
  return OK;
}
