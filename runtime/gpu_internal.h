// gpu_internal.h: what gpu.c (the device, memory, launches) and gpu_graph.c (the step as a
// CUDA graph, its inputs uploaded ahead) share: the driver's entry points and the GPU's state.
#ifndef TLC_GPU_INTERNAL_H
#define TLC_GPU_INTERNAL_H

#include "tlcrt.h"

typedef int CUresult;
typedef int CUdevice;
typedef struct CUctx *CUcontext;
typedef struct CUmod *CUmodule;
typedef struct CUfunc *CUfunction;
typedef struct CUstream_st *CUstream;
typedef struct CUevent_st *CUevent;
typedef struct CUgraph_st *CUgraph;
typedef struct CUgraphExec_st *CUgraphExec;
typedef unsigned long long CUdeviceptr;

enum {
  CUDA_ERROR_OUT_OF_MEMORY = 2, CUDA_ERROR_NO_DEVICE = 100, CUDA_ERROR_NO_BINARY_FOR_GPU = 209,
  CUDA_ERROR_UNSUPPORTED_PTX_VERSION = 222,
  CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
  CU_STREAM_NON_BLOCKING = 1, CU_EVENT_DISABLE_TIMING = 2, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1,
};

// The driver entry points a trainer uses, with the names libcuda exports.
typedef struct Driver {
  CUresult (*Init)(unsigned flags);
  CUresult (*DriverGetVersion)(int *version);
  CUresult (*DeviceGetCount)(int *count);
  CUresult (*DeviceGet)(CUdevice *dev, int ordinal);
  CUresult (*DeviceGetName)(char *name, int len, CUdevice dev);
  CUresult (*DeviceGetAttribute)(int *value, int attribute, CUdevice dev);
  CUresult (*DevicePrimaryCtxRetain)(CUcontext *ctx, CUdevice dev);
  CUresult (*DevicePrimaryCtxRelease)(CUdevice dev);
  CUresult (*CtxSetCurrent)(CUcontext ctx);
  CUresult (*CtxSynchronize)(void);
  CUresult (*ModuleLoadData)(CUmodule *module, const void *image);
  CUresult (*ModuleUnload)(CUmodule module);
  CUresult (*ModuleGetFunction)(CUfunction *f, CUmodule module, const char *name);
  CUresult (*MemAlloc)(CUdeviceptr *ptr, size_t bytes);
  CUresult (*MemFree)(CUdeviceptr ptr);
  CUresult (*MemcpyHtoD)(CUdeviceptr dst, const void *src, size_t bytes);
  CUresult (*MemcpyDtoH)(void *dst, CUdeviceptr src, size_t bytes);
  CUresult (*MemcpyDtoD)(CUdeviceptr dst, CUdeviceptr src, size_t bytes);
  CUresult (*MemGetInfo)(size_t *free_bytes, size_t *total_bytes);
  CUresult (*LaunchKernel)(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                           unsigned shared, CUstream stream, void **params, void **extra);
  CUresult (*GetErrorString)(CUresult error, const char **text);
  // Graphs, streams, events, pinned memory and asynchronous copies (gpu_graph.c): a driver
  // without them (older than CUDA 11.4) runs the steps kernel by kernel.
  CUresult (*StreamCreate)(CUstream *stream, unsigned flags);
  CUresult (*StreamDestroy)(CUstream stream);
  CUresult (*StreamSynchronize)(CUstream stream);
  CUresult (*StreamWaitEvent)(CUstream stream, CUevent event, unsigned flags);
  CUresult (*StreamBeginCapture)(CUstream stream, int mode);
  CUresult (*StreamEndCapture)(CUstream stream, CUgraph *graph);
  CUresult (*EventCreate)(CUevent *event, unsigned flags);
  CUresult (*EventDestroy)(CUevent event);
  CUresult (*EventRecord)(CUevent event, CUstream stream);
  CUresult (*EventSynchronize)(CUevent event);
  CUresult (*GraphInstantiate)(CUgraphExec *exec, CUgraph graph, unsigned long long flags);
  CUresult (*GraphLaunch)(CUgraphExec exec, CUstream stream);
  CUresult (*GraphExecDestroy)(CUgraphExec exec);
  CUresult (*GraphDestroy)(CUgraph graph);
  CUresult (*MemHostAlloc)(void **host, size_t bytes, unsigned flags);
  CUresult (*MemFreeHost)(void *host);
  CUresult (*MemcpyHtoDAsync)(CUdeviceptr dst, const void *src, size_t bytes, CUstream stream);
  CUresult (*MemcpyDtoDAsync)(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream stream);
} Driver;

// One of the two slots the steps' inputs travel through (gpu_graph.c).
// A slot holds the input region and, from GpuPipeline.extra_at on, what the batch's own
// kernels before the graph read (the data path's choices).
typedef struct GpuSlot {
  char *pinned;          // the input region's bytes on the host, in page-locked memory
  CUdeviceptr device;    // the same on the device, beside the arena
  int64_t bytes;         // of each
  bool images;           // the batch in it sends its images (else they are built on the device)
  int64_t extra;         // bytes from extra_at on that the batch in it sends
  CUevent up, taken;     // the copy up has arrived; the slot was read by the compute stream
} GpuSlot;

// The step's graphs and what feeds them, once tlc_gpu_pipeline_open made them.
typedef struct GpuPipeline {
  CUstream compute, upload;
  GpuSlot slots[2];
  int64_t io_offset, io_bytes;
  int64_t images, images_bytes;   // the images' place in the input region (arena offset)
  int64_t extra_at;      // where a slot's extra bytes start
  const char *host_io;   // the host arena's input region, what a new slot starts from
  CUgraphExec steps[2];  // the training step and the evaluation pass, once captured
  bool on_compute;       // launches go to the compute stream (captured, or the batch's own)
} GpuPipeline;

struct TlcGpu {
  Driver cu;
  void *lib;
  const char *graphs_missing;   // the first graph entry point the driver lacks, or NULL
  CUdevice device;
  CUcontext context;
  CUmodule module;
  CUfunction *functions;
  TlcBundle bundle;
  CUdeviceptr arena;
  int64_t arena_bytes;
  // The feature cache, when the run keeps one on the device: rows of row_floats floats, an
  // epoch's order of rows (int64, as the gather kernel reads them; staged on the host), and
  // the batch's rows, copied from the order before each gather: a fixed place that a
  // captured gather reads.
  CUdeviceptr cache, cache_order, cache_batch;
  int64_t cache_rows, cache_row_floats, batch;
  int gather_launch;
  int64_t gather_to;            // the arena offset the gather writes (the features)
  int64_t *order_staging;
  GpuPipeline *pipeline;        // NULL: steps launch kernel by kernel (--no-cuda-graph)
  char name[160];
  CUresult launch_error;       // the first failed launch, reported by tlc_gpu_sync
  int launch_error_function;
};

const char *gpu_error_text(const TlcGpu *g, CUresult r);
void gpu_pipeline_close(TlcGpu *g);

#endif
