// trainer_device.c: where the steps run. The host arena is the run's state as the rest of
// the runtime sees it (initialisation, checkpoints, batches); on a GPU the device arena is
// the working copy, and these functions move the regions that must cross: the state once
// after loading and back before each save, the step's inputs and outputs every step. A step
// replays a CUDA graph with its inputs uploaded while the step before ran (gpu_graph.c), or
// with --no-cuda-graph (or --check-gpu, --check-gpu-data, --profile) launches kernel by
// kernel after a copy of its inputs.
#include "trainer_internal.h"

#include <string.h>

static int64_t image_bytes(const TlcModel *m) { return m->batch * m->channels * m->height * m->width * 4; }

// Steps as CUDA graphs, unless the run compares or times kernel by kernel or asked not to.
// A driver or a machine that cannot has the steps launched kernel by kernel, and says why.
static void open_graphs(TlcRun *run) {
  const TlcModel *m = run->model;
  if (run->no_cuda_graph || run->check_gpu || run->check_gpu_data || run->profiling)
    return;
  TlcError why = {{0}};
  if (tlc_gpu_pipeline_open(run->gpu, m->io_offset, m->io_bytes, m->images, image_bytes(m), run->arena + m->io_offset,
                            &why) != 0) {
    printf("cuda graphs: off, steps launch kernel by kernel (%s)\n", why.msg);
    return;
  }
  run->graphs = true;
}

// What the graphs hold and what goes up, once the data path and the feature cache are chosen.
void trainer_report_graphs(const TlcRun *run) {
  const TlcModel *m = run->model;
  if (!run->graphs)
    return;
  bool built_train = trainer_gpu_data_serves(run, true), built_eval = trainer_gpu_data_serves(run, false);
  printf("cuda graphs: on, each step replays one: the training step%s%s and the evaluation pass%s; the next batch goes "
         "up while a step runs, through two slots of %.2f MiB (pinned and on the device; --no-cuda-graph: kernel by "
         "kernel)\n", run->use_features ? " from cached features (the gather through a fixed buffer of the batch's rows, "
         "then the head)" : "", built_train ? " on batches built on the GPU (their choices go up)" : "",
         built_eval ? " on batches built on the GPU" : "", m->io_bytes / 1048576.0);
}

int trainer_open_device(TlcRun *run, TlcError *err) {
  const TlcModel *m = run->model;
  bool asked = strcmp(run->device, "cuda") == 0;
  if (strcmp(run->device, "cpu") == 0 || (!asked && !m->bundle))
    return 0;
  TlcError why = {{0}};
  if (tlc_gpu_open(&run->gpu, m->bundle, m->bundle_size, m->gpu_arena_bytes, &why) != 0) {
    if (asked)
      return tlc_fail(err, "--device cuda: %s; --device cpu trains on the CPU", why.msg);
    // The default is the GPU when there is one; without one, say why it was not used.
    printf("device: cpu (%s)\n", why.msg);
    return 0;
  }
  printf("device: %s\n", tlc_gpu_name(run->gpu));
  printf("memory: arena %.1f MiB on the device, activations in %s (%.1f MiB on the CPU, fp32)\n",
         m->gpu_arena_bytes / 1048576.0, m->gpu_bf16 ? "bf16" : "fp32", m->arena_bytes / 1048576.0);
  if (trainer_state_to_device(run, err) != 0)
    return -1;
  open_graphs(run);
  return 0;
}

double trainer_gpu_budget(TlcRun *run, int64_t flag_mb, const char *flag, char *how, size_t len) {
  if (flag_mb >= 0) {
    snprintf(how, len, "%s %lld", flag, (long long)flag_mb);
    return (double)flag_mb;
  }
  int64_t free_bytes = 0, total_bytes = 0;
  TlcError why = {{0}};
  if (tlc_gpu_memory(run->gpu, &free_bytes, &total_bytes, &why) != 0) {
    snprintf(how, len, "%s", why.msg);
    return -1;
  }
  double free_mb = (double)free_bytes / (1 << 20);
  snprintf(how, len, "the device's free %.0f MB less %d MB kept free; %s sets another", free_mb,
           TRAINER_GPU_RESERVE_MB, flag);
  return free_mb - TRAINER_GPU_RESERVE_MB;
}

// The copy from pageable memory may return before it lands, and the graphs' compute stream
// does not wait for the default stream: the state is waited for (once a run, or a best.ckpt).
int trainer_state_to_device(TlcRun *run, TlcError *err) {
  if (!run->gpu)
    return 0;
  return tlc_gpu_upload(run->gpu, run->arena, 0, run->model->state_bytes, err) != 0 ? -1 : tlc_gpu_sync(run->gpu, err);
}

int trainer_state_to_host(TlcRun *run, TlcError *err) {
  return run->gpu ? tlc_gpu_download(run->gpu, run->arena, 0, run->model->state_bytes, err) : 0;
}

// The step's inputs go up: all of them, or all but the images for a step that starts from
// cached features (they are already on the device, and the images are most of the bytes).
static int upload_inputs(TlcRun *run, bool images, TlcError *err) {
  const TlcModel *m = run->model;
  int64_t lo = m->io_offset, hi = m->io_offset + m->io_bytes;
  int64_t skip = m->images, skip_end = m->images + image_bytes(m);
  if (images || skip < lo || skip_end > hi)
    return tlc_gpu_upload(run->gpu, run->arena + lo, lo, hi - lo, err);
  if (skip > lo && tlc_gpu_upload(run->gpu, run->arena + lo, lo, skip - lo, err) != 0)
    return -1;
  return hi > skip_end ? tlc_gpu_upload(run->gpu, run->arena + skip_end, skip_end, hi - skip_end, err) : 0;
}

// The step's inputs go up, and what the host reads of its results (the loss and logits of
// each sample) comes back; everything else stays on the device. Profiled, the step runs
// kernel by kernel, each timed. From cached features, only the head runs, after the
// gather trainer_cached_batch queued.
static int gpu_step(TlcRun *run, const TlcSteps *steps, bool training, TlcError *err) {
  const TlcModel *m = run->model;
  int64_t loss = training ? m->train_loss : m->eval_loss, logits = training ? m->train_logits : m->eval_logits;
  bool cached = training && run->use_features;
  // Built on the device (trainer_gpu_data.c), the images are there already.
  if (upload_inputs(run, !cached && !run->gpu_batch, err) != 0)
    return -1;
  if (run->profiling && trainer_profile_step(run, steps, training, err) != 0)
    return -1;
  if (cached)
    m->train_head_gpu(run->gpu);
  else if (!run->profiling)
    (training ? steps->train_gpu : steps->eval_gpu)(run->gpu);
  if (run->gpu_batch)   // the next batch's random choices, drawn while the step runs
    trainer_gpu_data_prefetch(run, training);
  if (tlc_gpu_sync(run->gpu, err) != 0 || tlc_gpu_download(run->gpu, run->arena + loss, loss, m->batch * 4, err) != 0)
    return -1;
  return tlc_gpu_download(run->gpu, run->arena + logits, logits, m->batch * m->classes * 4, err);
}

// The step's graph replayed on the batch's slot, which goes up first unless it went up while
// the step before ran; while this one runs, the pass's next batch is loaded and goes up.
// Before the graph, on the same stream: a batch built on the GPU is built from the choices
// in its slot, and a cached batch's rows are copied to where the captured gather reads them.
static int graph_step(TlcRun *run, const TlcSteps *steps, bool training, TlcError *err) {
  const TlcModel *m = run->model;
  int64_t loss = training ? m->train_loss : m->eval_loss, logits = training ? m->train_logits : m->eval_logits;
  bool cached = training && run->use_features;
  if ((!run->batch_sent && tlc_gpu_slot_send(run->gpu, run->batch_slot, err) != 0) ||
      tlc_gpu_step_begin(run->gpu, run->batch_slot, err) != 0 ||
      (cached && tlc_gpu_cache_select(run->gpu, run->cursor - m->batch, err) != 0))
    return -1;
  if (trainer_gpu_data_serves(run, training))
    trainer_gpu_data_launch(run, run->batch_slot);
  void (*step)(TlcGpu *) = cached ? m->train_head_gpu : training ? steps->train_gpu : steps->eval_gpu;
  if (tlc_gpu_graph_step(run->gpu, training, run->batch_slot, cached ? tlc_gpu_cache_gather : NULL, step, err) != 0)
    return -1;
  trainer_load_ahead(run, training);
  if (tlc_gpu_graph_wait(run->gpu, err) != 0 ||
      tlc_gpu_download(run->gpu, run->arena + loss, loss, m->batch * 4, err) != 0)
    return -1;
  return tlc_gpu_download(run->gpu, run->arena + logits, logits, m->batch * m->classes * 4, err);
}

// --check-gpu: the step kernel by kernel on both devices; the first training step and the
// first evaluation pass list every kernel.
static int check_step(TlcRun *run, const TlcSteps *steps, bool training, TlcError *err) {
  bool *reported = training ? &run->checked_train : &run->checked_eval;
  int status = trainer_check_step(run, training ? steps->train_calls : steps->eval_calls,
                                  training ? steps->ntrain_calls : steps->neval_calls,
                                  training ? "training step" : "evaluation pass", !*reported, err);
  *reported = true;
  return status;
}

int tlc_run_step(TlcRun *run, const TlcSteps *steps, bool training) {
  TlcError err = {{0}};
  int status;
  if (run->gpu) {
    status = run->check_gpu                       ? check_step(run, steps, training, &err)
             : run->graphs                        ? graph_step(run, steps, training, &err)
                                                  : gpu_step(run, steps, training, &err);
  } else if (run->profiling) {
    status = trainer_profile_step(run, steps, training, &err);
  } else {
    if (training && run->use_features)
      run->model->train_head(run->arena);
    else
      (training ? steps->train_cpu : steps->eval_cpu)(run->arena);
    return 0;
  }
  if (status == 0)
    return 0;
  fprintf(stderr, "error: %s\n", err.msg);
  run->status = TRAINER_FAILED;
  trainer_release(run);
  return 1;
}
