// gpu_graph.c: steps without launch gaps. The training step and the evaluation pass are each
// captured once, at their first step, as a CUDA graph and replayed: one cuGraphLaunch for
// the hundreds of kernels of a step. Nothing in a launch changes from step to step (every
// argument is an arena address); what does change (the images, labels, {seed, step} and the
// learning rate) lives in the arena's input region, which each step fills by one copy on the
// device before its graph.
//
// The inputs travel through two slots, each pinned host memory (cuMemHostAlloc) that the
// loader fills and device memory beside the arena that it goes up to on a second stream
// (cuMemcpyHtoDAsync), so the next batch goes up while this one trains. Two events a slot
// order the host, the upload stream and the compute stream:
//   up     recorded on the upload stream once the slot's copy is on the device. The compute
//          stream waits for it before copying the slot into the arena; the host waits for it
//          before writing the slot's pinned memory again.
//   taken  recorded on the compute stream once the slot is copied into the arena. The upload
//          stream waits for it before overwriting the slot's device memory.
// Both streams are non-blocking: the runtime's other copies (the state, the loss and logits)
// and kernel-by-kernel launches run on the default stream, at moments when the compute
// stream is idle (tlc_gpu_graph_wait ends every step that uses it).
#include "gpu_internal.h"

#include <stdlib.h>
#include <string.h>

enum { STEP_EVAL = 0, STEP_TRAIN = 1 };

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
    if (s->pinned)
      g->cu.MemFreeHost(s->pinned);
    if (s->device)
      g->cu.MemFree(s->device);
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

static int open_slot(TlcGpu *g, GpuSlot *s, const char *host_io, int64_t bytes, TlcError *err) {
  CUresult r;
  if ((r = g->cu.MemHostAlloc((void **)&s->pinned, (size_t)bytes, 0)))
    return tlc_fail(err, "cannot allocate %.1f MiB of pinned host memory: %s", bytes / 1048576.0,
                    gpu_error_text(g, r));
  if ((r = g->cu.MemAlloc(&s->device, (size_t)bytes)))
    return tlc_fail(err, "cannot allocate %.1f MiB on %s for the next batch: %s", bytes / 1048576.0, g->name,
                    gpu_error_text(g, r));
  if ((r = g->cu.EventCreate(&s->up, CU_EVENT_DISABLE_TIMING)) ||
      (r = g->cu.EventCreate(&s->taken, CU_EVENT_DISABLE_TIMING)))
    return tlc_fail(err, "cannot create an event: %s", gpu_error_text(g, r));
  // What the host arena holds now, so that every byte a slot sends up is defined.
  memcpy(s->pinned, host_io, (size_t)bytes);
  return 0;
}

int tlc_gpu_pipeline_open(TlcGpu *g, int64_t io_offset, int64_t io_bytes, const char *host_io, TlcError *err) {
  if (g->graphs_missing)
    return tlc_fail(err, "the NVIDIA driver lacks %s (CUDA 11.4 and newer have it)", g->graphs_missing);
  if (io_offset < 0 || io_bytes <= 0 || io_offset + io_bytes > g->arena_bytes)
    return tlc_fail(err, "internal error: an input region of %lld bytes at %lld leaves the %lld-byte arena",
                    (long long)io_bytes, (long long)io_offset, (long long)g->arena_bytes);
  GpuPipeline *p = calloc(1, sizeof *p);
  if (!p)
    return tlc_fail(err, "out of memory");
  g->pipeline = p;
  p->io_offset = io_offset, p->io_bytes = io_bytes;
  CUresult r;
  if ((r = g->cu.StreamCreate(&p->compute, CU_STREAM_NON_BLOCKING)) ||
      (r = g->cu.StreamCreate(&p->upload, CU_STREAM_NON_BLOCKING))) {
    tlc_fail(err, "cannot create a stream: %s", gpu_error_text(g, r));
    goto fail;
  }
  for (int i = 0; i < 2; i++)
    if (open_slot(g, &p->slots[i], host_io, io_bytes, err) != 0)
      goto fail;
  return 0;
fail:
  gpu_pipeline_close(g);
  return -1;
}

// The slot's pinned memory, once the copy up from it that is under way (if any) is done:
// the host may then write the next batch's inputs there.
char *tlc_gpu_slot_inputs(TlcGpu *g, int slot, TlcError *err) {
  GpuSlot *s = &g->pipeline->slots[slot];
  CUresult r = g->cu.EventSynchronize(s->up);
  if (r) {
    tlc_fail(err, "waiting for a copy to the GPU failed: %s", gpu_error_text(g, r));
    return NULL;
  }
  return s->pinned;
}

int tlc_gpu_slot_send(TlcGpu *g, int slot, TlcError *err) {
  GpuPipeline *p = g->pipeline;
  GpuSlot *s = &p->slots[slot];
  CUresult r;
  if ((r = g->cu.StreamWaitEvent(p->upload, s->taken, 0)) ||
      (r = g->cu.MemcpyHtoDAsync(s->device, s->pinned, (size_t)p->io_bytes, p->upload)) ||
      (r = g->cu.EventRecord(s->up, p->upload)))
    return tlc_fail(err, "copying the next batch to the GPU failed: %s", gpu_error_text(g, r));
  return 0;
}

// The step's launches, recorded once on the compute stream into a graph.
static int capture(TlcGpu *g, int kind, void (*step)(TlcGpu *gpu), TlcError *err) {
  GpuPipeline *p = g->pipeline;
  CUgraph graph = NULL;
  CUresult r = g->cu.StreamBeginCapture(p->compute, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
  if (r)
    return tlc_fail(err, "cannot capture the %s as a CUDA graph: %s", kind == STEP_TRAIN ? "training step" :
                    "evaluation pass", gpu_error_text(g, r));
  p->capturing = true;
  step(g);
  p->capturing = false;
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

int tlc_gpu_graph_step(TlcGpu *g, bool training, int slot, void (*step)(TlcGpu *gpu), TlcError *err) {
  GpuPipeline *p = g->pipeline;
  GpuSlot *s = &p->slots[slot];
  int kind = training ? STEP_TRAIN : STEP_EVAL;
  CUresult r;
  if ((r = g->cu.StreamWaitEvent(p->compute, s->up, 0)) ||
      (r = g->cu.MemcpyDtoDAsync(g->arena + (CUdeviceptr)p->io_offset, s->device, (size_t)p->io_bytes, p->compute)) ||
      (r = g->cu.EventRecord(s->taken, p->compute)))
    return tlc_fail(err, "copying the batch into the GPU's arena failed: %s", gpu_error_text(g, r));
  if (!p->steps[kind] && capture(g, kind, step, err) != 0)
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
