// driver_api.h: the part of the CUDA driver API that runtime/gpu.c loads with dlopen, as the
// stand-in drivers export it: the fake (fake_cuda.c) and the emulator (tests/emulator). The
// names are libcuda's; handles are untyped pointers, as both stand-ins keep them.
#ifndef TLC_TESTS_DRIVER_API_H
#define TLC_TESTS_DRIVER_API_H

#include <stddef.h>

typedef int CUresult;
typedef unsigned long long CUdeviceptr;

#ifdef __cplusplus
extern "C" {
#endif

// The device, modules, memory and launches on the default stream.
CUresult cuInit(unsigned flags);
CUresult cuDriverGetVersion(int *version);
CUresult cuDeviceGetCount(int *count);
CUresult cuDeviceGet(int *device, int ordinal);
CUresult cuDeviceGetName(char *name, int len, int device);
CUresult cuDeviceGetAttribute(int *value, int attribute, int device);
CUresult cuDevicePrimaryCtxRetain(void **context, int device);
CUresult cuDevicePrimaryCtxRelease(int device);
CUresult cuCtxSetCurrent(void *context);
CUresult cuCtxSynchronize(void);
CUresult cuModuleLoadData(void **module, const void *image);
CUresult cuModuleUnload(void *module);
CUresult cuModuleGetFunction(void **function, void *module, const char *name);
CUresult cuFuncSetAttribute(void *function, int attribute, int value);
CUresult cuMemAlloc_v2(CUdeviceptr *ptr, size_t bytes);
CUresult cuMemFree_v2(CUdeviceptr ptr);
CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t bytes);
CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t bytes);
CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t bytes);
CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total_bytes);
CUresult cuLaunchKernel(void *function, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shared, void *stream, void **params, void **extra);
CUresult cuGetErrorString(CUresult error, const char **text);
CUresult cuGetErrorName(CUresult error, const char **text);

// What the steps as CUDA graphs use (runtime/gpu_graph.c): streams, events, capture and
// graphs, pinned host memory and asynchronous copies.
CUresult cuStreamCreate(void **stream, unsigned flags);
CUresult cuStreamDestroy_v2(void *stream);
CUresult cuStreamSynchronize(void *stream);
CUresult cuStreamWaitEvent(void *stream, void *event, unsigned flags);
CUresult cuStreamBeginCapture_v2(void *stream, int mode);
CUresult cuStreamEndCapture(void *stream, void **graph);
CUresult cuEventCreate(void **event, unsigned flags);
CUresult cuEventDestroy_v2(void *event);
CUresult cuEventRecord(void *event, void *stream);
CUresult cuEventSynchronize(void *event);
CUresult cuGraphInstantiateWithFlags(void **exec, void *graph, unsigned long long flags);
CUresult cuGraphLaunch(void *exec, void *stream);
CUresult cuGraphExecDestroy(void *exec);
CUresult cuGraphDestroy(void *graph);
CUresult cuMemHostAlloc(void **host, size_t bytes, unsigned flags);
CUresult cuMemFreeHost(void *host);
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t bytes, void *stream);
CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t bytes, void *stream);

#ifdef __cplusplus
}
#endif
#endif
