// gpu.c: the GPU side of a trainer through the CUDA driver API, loaded with dlopen so that
// a trainer links against nothing of CUDA and still starts (on the CPU, or with a clear
// message) on a machine without a driver. The device holds one arena with the host
// arena's layout, so offsets mean the same on both sides; the runtime copies the state
// and the step's inputs and outputs across at fixed offsets. Kernels launch here on the
// default stream, or on gpu_graph.c's compute stream while it captures a step as a graph.
#include "gpu_internal.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

const char *gpu_error_text(const TlcGpu *g, CUresult r) {
  const char *text = NULL;
  if (g->cu.GetErrorString && g->cu.GetErrorString(r, &text) == 0 && text)
    return text;
  return "unknown CUDA error";
}

// What steps as CUDA graphs need (CUDA 11.4 and newer). A driver without one of them still
// runs the trainer, kernel by kernel; g->graphs_missing says which it lacks.
static void load_graph_driver(TlcGpu *g) {
  struct { void **slot; const char *name; } symbols[] = {
      {(void **)&g->cu.StreamCreate, "cuStreamCreate"}, {(void **)&g->cu.StreamDestroy, "cuStreamDestroy_v2"},
      {(void **)&g->cu.StreamSynchronize, "cuStreamSynchronize"},
      {(void **)&g->cu.StreamWaitEvent, "cuStreamWaitEvent"},
      {(void **)&g->cu.StreamBeginCapture, "cuStreamBeginCapture_v2"},
      {(void **)&g->cu.StreamEndCapture, "cuStreamEndCapture"}, {(void **)&g->cu.EventCreate, "cuEventCreate"},
      {(void **)&g->cu.EventDestroy, "cuEventDestroy_v2"}, {(void **)&g->cu.EventRecord, "cuEventRecord"},
      {(void **)&g->cu.EventSynchronize, "cuEventSynchronize"},
      {(void **)&g->cu.GraphInstantiate, "cuGraphInstantiateWithFlags"},
      {(void **)&g->cu.GraphLaunch, "cuGraphLaunch"}, {(void **)&g->cu.GraphExecDestroy, "cuGraphExecDestroy"},
      {(void **)&g->cu.GraphDestroy, "cuGraphDestroy"}, {(void **)&g->cu.MemHostAlloc, "cuMemHostAlloc"},
      {(void **)&g->cu.MemFreeHost, "cuMemFreeHost"}, {(void **)&g->cu.MemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2"},
      {(void **)&g->cu.MemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2"},
  };
  for (size_t i = 0; i < sizeof symbols / sizeof *symbols; i++)
    if (!(*symbols[i].slot = dlsym(g->lib, symbols[i].name)) && !g->graphs_missing)
      g->graphs_missing = symbols[i].name;
}

static int load_driver(TlcGpu *g, TlcError *err) {
  g->lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!g->lib)
    return tlc_fail(err, "no NVIDIA driver on this machine (libcuda.so.1 not found)");
  struct { void **slot; const char *name; } symbols[] = {
      {(void **)&g->cu.Init, "cuInit"}, {(void **)&g->cu.DriverGetVersion, "cuDriverGetVersion"},
      {(void **)&g->cu.DeviceGetCount, "cuDeviceGetCount"}, {(void **)&g->cu.DeviceGet, "cuDeviceGet"},
      {(void **)&g->cu.DeviceGetName, "cuDeviceGetName"}, {(void **)&g->cu.DeviceGetAttribute, "cuDeviceGetAttribute"},
      {(void **)&g->cu.DevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain"},
      {(void **)&g->cu.DevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease"},
      {(void **)&g->cu.CtxSetCurrent, "cuCtxSetCurrent"}, {(void **)&g->cu.CtxSynchronize, "cuCtxSynchronize"},
      {(void **)&g->cu.ModuleLoadData, "cuModuleLoadData"}, {(void **)&g->cu.ModuleUnload, "cuModuleUnload"},
      {(void **)&g->cu.ModuleGetFunction, "cuModuleGetFunction"}, {(void **)&g->cu.MemAlloc, "cuMemAlloc_v2"},
      {(void **)&g->cu.MemFree, "cuMemFree_v2"}, {(void **)&g->cu.MemcpyHtoD, "cuMemcpyHtoD_v2"},
      {(void **)&g->cu.MemcpyDtoH, "cuMemcpyDtoH_v2"}, {(void **)&g->cu.MemcpyDtoD, "cuMemcpyDtoD_v2"},
      {(void **)&g->cu.MemGetInfo, "cuMemGetInfo_v2"}, {(void **)&g->cu.LaunchKernel, "cuLaunchKernel"},
      {(void **)&g->cu.GetErrorString, "cuGetErrorString"},
  };
  for (size_t i = 0; i < sizeof symbols / sizeof *symbols; i++)
    if (!(*symbols[i].slot = dlsym(g->lib, symbols[i].name)))
      return tlc_fail(err, "the NVIDIA driver lacks %s; it is too old for this trainer", symbols[i].name);
  load_graph_driver(g);
  return 0;
}

static int open_device(TlcGpu *g, int *sm, TlcError *err) {
  CUresult r = g->cu.Init(0);
  int count = 0;
  if (r == CUDA_ERROR_NO_DEVICE || (!r && (r = g->cu.DeviceGetCount(&count)) == 0 && count == 0))
    return tlc_fail(err, "the NVIDIA driver is installed but sees no GPU");
  if (r)
    return tlc_fail(err, "the NVIDIA driver failed to start: %s", gpu_error_text(g, r));
  int major = 0, minor = 0;
  if ((r = g->cu.DeviceGet(&g->device, 0)) || (r = g->cu.DeviceGetName(g->name, 100, g->device)) ||
      (r = g->cu.DeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, g->device)) ||
      (r = g->cu.DeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, g->device)) ||
      (r = g->cu.DevicePrimaryCtxRetain(&g->context, g->device)) || (r = g->cu.CtxSetCurrent(g->context)))
    return tlc_fail(err, "cannot open GPU 0: %s", gpu_error_text(g, r));
  *sm = 10 * major + minor;
  size_t len = strlen(g->name);
  snprintf(g->name + len, sizeof g->name - len, " (sm_%d)", *sm);
  return 0;
}

// The cubin when the GPU is its architecture; else the PTX, which the driver compiles for
// newer GPUs. An older GPU cannot run either: the trainer must be rebuilt for it.
static int load_kernels(TlcGpu *g, int sm, TlcError *err) {
  int built = atoi(g->bundle.arch + 3);
  if (sm < built)
    return tlc_fail(err, "this trainer's kernels are for %s and newer, and this GPU (%s) is older; "
                    "rebuild it with tlc --arch=sm_%d", g->bundle.arch, g->name, sm);
  bool cubin = sm == built;
  CUresult r = g->cu.ModuleLoadData(&g->module, cubin ? (const void *)g->bundle.cubin : (const void *)g->bundle.ptx);
  if (r == CUDA_ERROR_UNSUPPORTED_PTX_VERSION || r == CUDA_ERROR_NO_BINARY_FOR_GPU)
    return tlc_fail(err, "the NVIDIA driver is too old for this trainer's kernels (compiled by NVRTC %s "
                    "for %s): %s; update the driver", g->bundle.nvrtc, g->bundle.arch, gpu_error_text(g, r));
  if (r)
    return tlc_fail(err, "cannot load the kernels (%s) on %s: %s", cubin ? "cubin" : "PTX", g->name,
                    gpu_error_text(g, r));
  g->functions = calloc((size_t)g->bundle.nfunctions + 1, sizeof *g->functions);
  if (!g->functions)
    return tlc_fail(err, "out of memory");
  for (int i = 0; i < g->bundle.nfunctions; i++)
    if ((r = g->cu.ModuleGetFunction(&g->functions[i], g->module, g->bundle.functions[i].name)))
      return tlc_fail(err, "kernel %s is missing from the loaded code: %s", g->bundle.functions[i].name,
                      gpu_error_text(g, r));
  return 0;
}

int tlc_gpu_open(TlcGpu **out, const void *bundle, size_t bundle_size, int64_t arena_bytes, TlcError *err) {
  *out = NULL;
  if (!bundle)
    return tlc_fail(err, "this trainer has no GPU kernels (NVRTC was not available when tlc built it; "
                    "rebuild it where the CUDA toolkit is installed)");
  TlcGpu *g = calloc(1, sizeof *g);
  if (!g)
    return tlc_fail(err, "out of memory");
  int sm = 0;
  CUresult r = 0;
  if (tlc_bundle_read(bundle, bundle_size, &g->bundle, err) || load_driver(g, err) || open_device(g, &sm, err) ||
      load_kernels(g, sm, err))
    goto fail;
  if ((r = g->cu.MemAlloc(&g->arena, (size_t)arena_bytes))) {
    tlc_fail(err, "cannot allocate the trainer's %.1f MiB arena on %s: %s%s", arena_bytes / 1048576.0,
             g->name, gpu_error_text(g, r), r == CUDA_ERROR_OUT_OF_MEMORY ? " (compile with a smaller batch: --set batch=N)" : "");
    goto fail;
  }
  g->arena_bytes = arena_bytes;
  *out = g;
  return 0;
fail:
  tlc_gpu_close(g);
  return -1;
}

const char *tlc_gpu_name(const TlcGpu *g) { return g->name; }

// Launch `launch` of the bundle on buffers at these device addresses.
static void launch_on(TlcGpu *g, int launch, CUdeviceptr *pointers, int n) {
  if (g->launch_error)
    return;
  const TlcBundleLaunch *l = &g->bundle.launches[launch];
  void *params[16];
  for (int i = 0; i < n && i < 16; i++)
    params[i] = &pointers[i];
  // While a graph is captured, and for a batch's own kernels before its graph, launches go to
  // the compute stream; otherwise to the default stream, each in order after the copies
  // before it.
  CUstream stream = g->pipeline && g->pipeline->on_compute ? g->pipeline->compute : NULL;
  CUresult r = g->cu.LaunchKernel(g->functions[l->function], (unsigned)l->grid, 1, 1, (unsigned)l->block, 1, 1,
                                  (unsigned)l->shared, stream, params, NULL);
  if (r) {
    g->launch_error = r;
    g->launch_error_function = (int)l->function;
  }
}

void tlc_gpu_launch(TlcGpu *g, int launch, const int64_t *offsets, int n) {
  CUdeviceptr pointers[16];
  for (int i = 0; i < n && i < 16; i++)
    pointers[i] = g->arena + (CUdeviceptr)offsets[i];
  launch_on(g, launch, pointers, n);
}

int tlc_gpu_sync(TlcGpu *g, TlcError *err) {
  CUresult r = g->launch_error ? g->launch_error : g->cu.CtxSynchronize();
  if (!r)
    return 0;
  if (g->launch_error)
    return tlc_fail(err, "GPU kernel %s failed to launch: %s", g->bundle.functions[g->launch_error_function].name,
                    gpu_error_text(g, r));
  return tlc_fail(err, "a GPU kernel failed: %s (run with CUDA_LAUNCH_BLOCKING=1 to name it)", gpu_error_text(g, r));
}

static int check_range(const TlcGpu *g, int64_t offset, int64_t bytes, TlcError *err) {
  if (offset < 0 || bytes < 0 || offset + bytes > g->arena_bytes)
    return tlc_fail(err, "internal error: a copy of %lld bytes at %lld leaves the %lld-byte GPU arena",
                    (long long)bytes, (long long)offset, (long long)g->arena_bytes);
  return 0;
}

int tlc_gpu_upload(TlcGpu *g, const void *src, int64_t offset, int64_t bytes, TlcError *err) {
  return check_range(g, offset, bytes, err) ? -1 : tlc_gpu_put(g, g->arena + (CUdeviceptr)offset, src, bytes, err);
}

int tlc_gpu_download(TlcGpu *g, void *dst, int64_t offset, int64_t bytes, TlcError *err) {
  return check_range(g, offset, bytes, err) ? -1 : tlc_gpu_get(g, dst, g->arena + (CUdeviceptr)offset, bytes, err);
}

int tlc_gpu_memory(TlcGpu *g, int64_t *free_bytes, int64_t *total_bytes, TlcError *err) {
  size_t f = 0, t = 0;
  CUresult r = g->cu.MemGetInfo(&f, &t);
  if (r)
    return tlc_fail(err, "cannot ask %s for its free memory: %s", g->name, gpu_error_text(g, r));
  *free_bytes = (int64_t)f, *total_bytes = (int64_t)t;
  return 0;
}

static void cache_free(TlcGpu *g) {
  if (g->cache)
    g->cu.MemFree(g->cache);
  if (g->cache_order)
    g->cu.MemFree(g->cache_order);
  if (g->cache_batch)
    g->cu.MemFree(g->cache_batch);
  free(g->order_staging);
  g->cache = g->cache_order = g->cache_batch = 0;
  g->order_staging = NULL;
  g->cache_rows = g->cache_row_floats = 0;
}

int tlc_gpu_cache_alloc(TlcGpu *g, int64_t rows, int64_t row_floats, int64_t batch, int gather, int64_t features,
                        TlcError *err) {
  cache_free(g);
  int64_t n = rows > 0 ? rows : 1;
  CUresult r = g->cu.MemAlloc(&g->cache, (size_t)(n * row_floats) * sizeof(float));
  if (!r)
    r = g->cu.MemAlloc(&g->cache_order, (size_t)n * sizeof(int64_t));
  if (!r)
    r = g->cu.MemAlloc(&g->cache_batch, (size_t)batch * sizeof(int64_t));
  g->order_staging = r ? NULL : malloc((size_t)n * sizeof(int64_t));
  if (r || !g->order_staging) {
    cache_free(g);
    return r ? tlc_fail(err, "cannot allocate %.1f MiB on %s: %s", (double)n * row_floats * sizeof(float) / 1048576.0,
                        g->name, gpu_error_text(g, r))
             : tlc_fail(err, "out of memory");
  }
  g->cache_rows = rows, g->cache_row_floats = row_floats, g->batch = batch;
  g->gather_launch = gather, g->gather_to = features;
  return 0;
}

int tlc_gpu_cache_store(TlcGpu *g, int64_t first, int64_t offset, int64_t n, TlcError *err) {
  int64_t row = g->cache_row_floats * (int64_t)sizeof(float);
  if (first < 0 || n < 0 || first + n > g->cache_rows)
    return tlc_fail(err, "internal error: rows %lld to %lld are outside the %lld-row feature cache", (long long)first,
                    (long long)(first + n), (long long)g->cache_rows);
  if (check_range(g, offset, n * row, err))
    return -1;
  CUresult r = g->cu.MemcpyDtoD(g->cache + (CUdeviceptr)(first * row), g->arena + (CUdeviceptr)offset, (size_t)(n * row));
  return r ? tlc_fail(err, "copying features into the GPU's cache failed: %s", gpu_error_text(g, r)) : 0;
}

int tlc_gpu_cache_order(TlcGpu *g, const int32_t *order, int64_t n, TlcError *err) {
  if (n > g->cache_rows)
    return tlc_fail(err, "internal error: an order of %lld rows for a %lld-row feature cache", (long long)n,
                    (long long)g->cache_rows);
  for (int64_t i = 0; i < n; i++)
    g->order_staging[i] = order[i];
  CUresult r = g->cu.MemcpyHtoD(g->cache_order, g->order_staging, (size_t)n * sizeof(int64_t));
  return r ? tlc_fail(err, "copying the epoch's order to the GPU failed: %s", gpu_error_text(g, r)) : 0;
}

int tlc_gpu_cache_select(TlcGpu *g, int64_t first, TlcError *err) {
  if (first < 0 || first + g->batch > g->cache_rows)
    return tlc_fail(err, "internal error: a batch at row %lld of a %lld-row order", (long long)first,
                    (long long)g->cache_rows);
  CUdeviceptr from = g->cache_order + (CUdeviceptr)first * sizeof(int64_t);
  size_t bytes = (size_t)g->batch * sizeof(int64_t);
  // Before a graph, in order on the compute stream; kernel by kernel, before the gather.
  CUresult r = g->pipeline && g->pipeline->on_compute
                   ? g->cu.MemcpyDtoDAsync(g->cache_batch, from, bytes, g->pipeline->compute)
                   : g->cu.MemcpyDtoD(g->cache_batch, from, bytes);
  return r ? tlc_fail(err, "copying the batch's rows of the feature cache failed: %s", gpu_error_text(g, r)) : 0;
}

void tlc_gpu_cache_gather(TlcGpu *g) {
  CUdeviceptr pointers[3] = {g->cache, g->cache_batch, g->arena + (CUdeviceptr)g->gather_to};
  launch_on(g, g->gather_launch, pointers, 3);
}

int tlc_gpu_alloc(TlcGpu *g, int64_t bytes, uint64_t *ptr, TlcError *err) {
  CUdeviceptr p = 0;
  CUresult r = g->cu.MemAlloc(&p, (size_t)(bytes > 0 ? bytes : 1));
  if (r)
    return tlc_fail(err, "allocating %.1f MB on %s failed: %s", (double)bytes / (1 << 20), g->name, gpu_error_text(g, r));
  *ptr = p;
  return 0;
}

void tlc_gpu_free(TlcGpu *g, uint64_t ptr) {
  if (ptr)
    g->cu.MemFree(ptr);
}

int tlc_gpu_put(TlcGpu *g, uint64_t dst, const void *src, int64_t bytes, TlcError *err) {
  CUresult r = bytes > 0 ? g->cu.MemcpyHtoD(dst, src, (size_t)bytes) : 0;
  return r ? tlc_fail(err, "copying %lld bytes to the GPU failed: %s", (long long)bytes, gpu_error_text(g, r)) : 0;
}

int tlc_gpu_get(TlcGpu *g, void *dst, uint64_t src, int64_t bytes, TlcError *err) {
  CUresult r = bytes > 0 ? g->cu.MemcpyDtoH(dst, src, (size_t)bytes) : 0;
  return r ? tlc_fail(err, "copying %lld bytes from the GPU failed: %s", (long long)bytes, gpu_error_text(g, r)) : 0;
}

uint64_t tlc_gpu_arena_at(const TlcGpu *g, int64_t offset) { return g->arena + (CUdeviceptr)offset; }

void tlc_gpu_launch_on(TlcGpu *g, int launch, const uint64_t *pointers, int n) {
  CUdeviceptr p[16];
  for (int i = 0; i < n && i < 16; i++)
    p[i] = pointers[i];
  launch_on(g, launch, p, n);
}

void tlc_gpu_close(TlcGpu *g) {
  if (!g)
    return;
  cache_free(g);
  gpu_pipeline_close(g);
  if (g->arena)
    g->cu.MemFree(g->arena);
  if (g->module)
    g->cu.ModuleUnload(g->module);
  if (g->context)
    g->cu.DevicePrimaryCtxRelease(g->device);
  tlc_bundle_free(&g->bundle);
  free(g->functions);
  if (g->lib)
    dlclose(g->lib);
  free(g);
}
