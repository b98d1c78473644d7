// gpu_graph.c: steps without launch gaps. The training step and the evaluation pass are each
// captured once, at their first step, as a CUDA graph and replayed: one cuGraphLaunch for
// the hundreds of kernels of a step. Nothing in a launch changes from step to step (every
// argument is an arena address or another fixed device buffer); what does change (the
// images, labels, {seed, step} and the learning rate) lives in the arena's input region,
// which each step fills by one copy on the device before its graph.
//
// The inputs travel through two slots, each pinned host memory (cuMemHostAlloc) that the
// loader fills and device memory beside the arena that it goes up to on a second stream
// (cuMemcpyHtoDAsync), so the next batch goes up while this one trains. A batch whose
// images the device builds (the data path) or does not need (a step from cached features)
// sends its input region without them, and the data path's choices after it (the extra
// bytes, which the batch's own kernels read from the slot on the compute stream before the
// graph). Two events a slot order the host, the upload stream and the compute stream:
//   up     recorded on the upload stream once the slot's copy is on the device. The compute
//          stream waits for it before reading the slot; the host waits for it before writing
//          the slot's pinned memory again.
//   taken  recorded on the compute stream once it has read the slot (its copy into the
//          arena and the batch's own kernels). The upload stream waits for it before
//          overwriting the slot's device memory.
// Both streams are non-blocking: the runtime's other copies (the state, the loss and logits)
// and kernel-by-kernel launches run on the default stream, at moments when the compute
// stream is idle (tlc_gpu_graph_wait ends every step that uses it).
#include "gpu_internal.h"

#include <stdlib.h>
#include <string.h>

enum { STEP_EVAL = 0, STEP_TRAIN = 1 };

// The slot's memory: `bytes` pinned and on the device, the input region first from the host
// arena's.
static int alloc_slot(TlcGpu *g, GpuSlot *s, int64_t bytes, TlcError *err) {
  const GpuPipeline *p = g->pipeline;
  CUresult r;
  s->bytes = 0;
  if ((r = g->cu.MemHostAlloc((void **)&s->pinned, (size_t)bytes, 0)))
    return tlc_fail(err, "cannot allocate %.1f MiB of pinned host memory: %s", bytes / 1048576.0,
                    gpu_error_text(g, r));
  if ((r = g->cu.MemAlloc(&s->device, (size_t)bytes)))
    return tlc_fail(err, "cannot allocate %.1f MiB on %s for the next batch: %s", bytes / 1048576.0, g->name,
                    gpu_error_text(g, r));
  // What the host arena holds now, so that every byte a slot sends up is defined.
  memset(s->pinned, 0, (size_t)bytes);
  memcpy(s->pinned, p->host_io, (size_t)p->io_bytes);
  s->bytes = bytes;
  return 0;
}

static void free_slot(TlcGpu *g, GpuSlot *s) {
  if (s->pinned)
    g->cu.MemFreeHost(s->pinned);
  if (s->device)
    g->cu.MemFree(s->device);
  s->pinned = NULL, s->device = 0, s->bytes = 0;
}

void gpu_pipeline_close(TlcGpu *g) {
  GpuPipeline *p = g->pipeline;
  if (!p)
    return;
  // Whatever is still queued finishes before its memory goes.
  if (p->upload)
    g->cu.StreamSynchronize(p->upload);
  if (p->compute)
    g->cu.StreamSynchronize(p->compute);
  for (int i = 0; i < 2; i++) {
    if (p->steps[i])
      g->cu.GraphExecDestroy(p->steps[i]);
    GpuSlot *s = &p->slots[i];
    free_slot(g, s);
    if (s->up)
      g->cu.EventDestroy(s->up);
    if (s->taken)
      g->cu.EventDestroy(s->taken);
  }
  if (p->upload)
    g->cu.StreamDestroy(p->upload);
  if (p->compute)
    g->cu.StreamDestroy(p->compute);
  free(p);
  g->pipeline = NULL;
}

static int open_slot(TlcGpu *g, GpuSlot *s, TlcError *err) {
  CUresult r;
  if (alloc_slot(g, s, g->pipeline->io_bytes, err) != 0)
    return -1;
  if ((r = g->cu.EventCreate(&s->up, CU_EVENT_DISABLE_TIMING)) ||
      (r = g->cu.EventCreate(&s->taken, CU_EVENT_DISABLE_TIMING)))
    return tlc_fail(err, "cannot create an event: %s", gpu_error_text(g, r));
  return 0;
}

int tlc_gpu_pipeline_open(TlcGpu *g, int64_t io_offset, int64_t io_bytes, int64_t images, int64_t images_bytes,
                          const char *host_io, TlcError *err) {
  if (g->graphs_missing)
    return tlc_fail(err, "the NVIDIA driver lacks %s (CUDA 11.4 and newer have it)", g->graphs_missing);
  if (io_offset < 0 || io_bytes <= 0 || io_offset + io_bytes > g->arena_bytes || images < io_offset ||
      images_bytes < 0 || images + images_bytes > io_offset + io_bytes)
    return tlc_fail(err, "internal error: an input region of %lld bytes at %lld (images: %lld at %lld) leaves the "
                    "%lld-byte arena", (long long)io_bytes, (long long)io_offset, (long long)images_bytes,
                    (long long)images, (long long)g->arena_bytes);
  GpuPipeline *p = calloc(1, sizeof *p);
  if (!p)
    return tlc_fail(err, "out of memory");
  g->pipeline = p;
  p->io_offset = io_offset, p->io_bytes = io_bytes, p->host_io = host_io;
  p->images = images, p->images_bytes = images_bytes;
  p->extra_at = (io_bytes + 255) / 256 * 256;
  CUresult r;
  if ((r = g->cu.StreamCreate(&p->compute, CU_STREAM_NON_BLOCKING)) ||
      (r = g->cu.StreamCreate(&p->upload, CU_STREAM_NON_BLOCKING))) {
    tlc_fail(err, "cannot create a stream: %s", gpu_error_text(g, r));
    goto fail;
  }
  for (int i = 0; i < 2; i++)
    if (open_slot(g, &p->slots[i], err) != 0)
      goto fail;
  return 0;
fail:
  gpu_pipeline_close(g);
  return -1;
}

// The pieces of the input region a batch sends, as offsets into it: all of it, or the parts
// before and after the images.
static int pieces(const GpuPipeline *p, bool images, int64_t at[2], int64_t len[2]) {
  if (images || p->images_bytes == 0) {
    at[0] = 0, len[0] = p->io_bytes;
    return 1;
  }
  int n = 0;
  int64_t skip = p->images - p->io_offset, skip_end = skip + p->images_bytes;
  if (skip > 0)
    at[n] = 0, len[n++] = skip;
  if (skip_end < p->io_bytes)
    at[n] = skip_end, len[n++] = p->io_bytes - skip_end;
  return n;
}

char *tlc_gpu_slot_fill(TlcGpu *g, int slot, bool images, int64_t extra, TlcError *err) {
  GpuPipeline *p = g->pipeline;
  GpuSlot *s = &p->slots[slot];
  CUresult r = g->cu.EventSynchronize(s->up);
  if (r) {
    tlc_fail(err, "waiting for a copy to the GPU failed: %s", gpu_error_text(g, r));
    return NULL;
  }
  if (p->extra_at + extra > s->bytes) {
    // Larger choices than the slot has held: it grows, once the compute stream is done with it.
    if ((r = g->cu.EventSynchronize(s->taken))) {
      tlc_fail(err, "waiting for the GPU to read a batch failed: %s", gpu_error_text(g, r));
      return NULL;
    }
    free_slot(g, s);
    if (alloc_slot(g, s, p->extra_at + extra * 2, err) != 0)
      return NULL;
  }
  s->images = images, s->extra = extra;
  return s->pinned;
}

void tlc_gpu_slot_extra(TlcGpu *g, int slot, char **host, uint64_t *device) {
  const GpuPipeline *p = g->pipeline;
  *host = p->slots[slot].pinned + p->extra_at;
  *device = p->slots[slot].device + (CUdeviceptr)p->extra_at;
}

// The slot's pieces of the input region, once `after` is recorded: up from its pinned memory
// on the upload stream, or (up false) from its device memory into the arena on the compute
// stream.
static CUresult copy_pieces(TlcGpu *g, GpuSlot *s, bool up, CUevent after) {
  GpuPipeline *p = g->pipeline;
  CUstream stream = up ? p->upload : p->compute;
  int64_t at[2], len[2];
  int n = pieces(p, s->images, at, len);
  CUresult r = g->cu.StreamWaitEvent(stream, after, 0);
  for (int i = 0; i < n && !r; i++)
    r = up ? g->cu.MemcpyHtoDAsync(s->device + (CUdeviceptr)at[i], s->pinned + at[i], (size_t)len[i], stream)
           : g->cu.MemcpyDtoDAsync(g->arena + (CUdeviceptr)(p->io_offset + at[i]), s->device + (CUdeviceptr)at[i],
                                   (size_t)len[i], stream);
  return r;
}

int tlc_gpu_slot_send(TlcGpu *g, int slot, TlcError *err) {
  GpuPipeline *p = g->pipeline;
  GpuSlot *s = &p->slots[slot];
  CUresult r = copy_pieces(g, s, true, s->taken);
  if (!r && s->extra > 0)
    r = g->cu.MemcpyHtoDAsync(s->device + (CUdeviceptr)p->extra_at, s->pinned + p->extra_at, (size_t)s->extra,
                              p->upload);
  if (!r)
    r = g->cu.EventRecord(s->up, p->upload);
  return r ? tlc_fail(err, "copying the next batch to the GPU failed: %s", gpu_error_text(g, r)) : 0;
}

int tlc_gpu_step_begin(TlcGpu *g, int slot, TlcError *err) {
  GpuSlot *s = &g->pipeline->slots[slot];
  CUresult r = copy_pieces(g, s, false, s->up);
  if (r)
    return tlc_fail(err, "copying the batch into the GPU's arena failed: %s", gpu_error_text(g, r));
  g->pipeline->on_compute = true;
  return 0;
}

// The step's launches, recorded once on the compute stream into a graph: `first`'s (if any),
// then `step`'s.
static int capture(TlcGpu *g, int kind, void (*first)(TlcGpu *gpu), void (*step)(TlcGpu *gpu), TlcError *err) {
  GpuPipeline *p = g->pipeline;
  CUgraph graph = NULL;
  CUresult r = g->cu.StreamBeginCapture(p->compute, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
  if (r)
    return tlc_fail(err, "cannot capture the %s as a CUDA graph: %s", kind == STEP_TRAIN ? "training step" :
                    "evaluation pass", gpu_error_text(g, r));
  if (first)
    first(g);
  step(g);
  r = g->cu.StreamEndCapture(p->compute, &graph);
  if (g->launch_error)   // named by kernel; the capture is void either way
    r = 0;
  if (!r && !g->launch_error)
    r = g->cu.GraphInstantiate(&p->steps[kind], graph, 0);
  if (graph)
    g->cu.GraphDestroy(graph);
  if (g->launch_error)
    return tlc_gpu_sync(g, err);
  return r ? tlc_fail(err, "cannot make the %s a CUDA graph: %s (--no-cuda-graph launches it kernel by kernel)",
                      kind == STEP_TRAIN ? "training step" : "evaluation pass", gpu_error_text(g, r))
           : 0;
}

int tlc_gpu_graph_step(TlcGpu *g, bool training, int slot, void (*first)(TlcGpu *gpu), void (*step)(TlcGpu *gpu),
                       TlcError *err) {
  GpuPipeline *p = g->pipeline;
  int kind = training ? STEP_TRAIN : STEP_EVAL;
  CUresult r = g->cu.EventRecord(p->slots[slot].taken, p->compute);
  if (r) {
    p->on_compute = false;
    return tlc_fail(err, "recording that the GPU read a batch failed: %s", gpu_error_text(g, r));
  }
  int status = p->steps[kind] ? 0 : capture(g, kind, first, step, err);
  p->on_compute = false;
  if (status != 0)
    return -1;
  if ((r = g->cu.GraphLaunch(p->steps[kind], p->compute)))
    return tlc_fail(err, "launching the %s's CUDA graph failed: %s", training ? "training step" : "evaluation pass",
                    gpu_error_text(g, r));
  return 0;
}

int tlc_gpu_graph_wait(TlcGpu *g, TlcError *err) {
  CUresult r = g->cu.StreamSynchronize(g->pipeline->compute);
  return r ? tlc_fail(err, "a GPU kernel failed: %s (--no-cuda-graph launches kernel by kernel, and names it)",
                      gpu_error_text(g, r))
           : 0;
}
