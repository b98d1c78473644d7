// trainer_features.c: training from cached features. When the compiler found a frozen,
// deterministic prefix (TlcModel.features), the prefix runs once per training image at
// the first epoch and its output is kept; every step then starts from the cache and runs
// only the rest. Same kernels, same inputs: the run is bit-identical to one without the
// cache (--no-feature-cache), only faster.
//
// On the CPU the cache is host memory within --cache-mb, and a step's rows are copied into
// the arena. On a GPU it is device memory (gpu.c's tlc_gpu_cache_*) within the device's
// budget: the prefix runs there, its rows are copied device to device into the cache, and a
// step's rows are gathered by one kernel launch (codegen/kernels_features.c) through the
// epoch's order, which goes up once an epoch: the batch's part of it is copied on the device
// to a fixed place the gather reads, so that a CUDA graph can hold the gather and the head
// (trainer_device.c). Nothing of the cache crosses to the host.
#include "trainer_internal.h"

#include <stdlib.h>
#include <string.h>

static double cache_mb(const TlcRun *run) {
  return (double)run->ntrain * (double)run->model->feature_floats * sizeof(float) / (1 << 20);
}

// On a GPU: the cache fits the device's budget and is allocated there, or the run says why
// every step runs the prefix.
static bool start_on_device(TlcRun *run) {
  const TlcModel *m = run->model;
  if (!m->train_features_gpu || !m->train_head_gpu)
    return false;
  if (run->check_gpu) {
    printf("features: not cached: --check-gpu compares every kernel of the whole training step\n");
    return false;
  }
  char how[sizeof(TlcError) + 64];
  double budget = trainer_gpu_budget(run, run->gpu_cache_mb, "--gpu-cache-mb", how, sizeof how), mb = cache_mb(run);
  if (mb > budget) {
    printf("features: not cached: %.1f MB for %lld training images is over the device's budget of %.0f MB (%s); "
           "every step runs the frozen prefix\n", mb, (long long)run->ntrain, budget > 0 ? budget : 0, how);
    return false;
  }
  TlcError why = {{0}};
  if (tlc_gpu_cache_alloc(run->gpu, run->ntrain, m->feature_floats, m->batch, m->feature_gather, m->features,
                          &why) != 0) {
    printf("features: not cached: the device could not hold them (%s); every step runs the frozen prefix\n", why.msg);
    return false;
  }
  printf("features: cached on the device, %.1f MB for %lld training images (budget %.0f MB: %s): the frozen prefix "
         "runs once per training image; steps start from its output (%lld floats per image)\n", mb,
         (long long)run->ntrain, budget, how, (long long)m->feature_floats);
  return true;
}

void trainer_start_features(TlcRun *run) {
  const TlcModel *m = run->model;
  run->use_features = false;
  if (m->feature_floats <= 0 || !m->train_features || run->no_feature_cache || run->eval_checkpoint ||
      run->profiling)   // profiled steps run every kernel of the step
    return;
  if (run->gpu) {
    run->use_features = start_on_device(run);
    return;
  }
  // The cache shares --cache-mb's budget with decoded images.
  double mb = cache_mb(run);
  if (mb > (double)run->cache_mb) {
    printf("features: not cached: %.0f MB for %lld training images is over --cache-mb %lld\n", mb,
           (long long)run->ntrain, (long long)run->cache_mb);
    return;
  }
  run->use_features = true;
  printf("features: the frozen prefix runs once per training image; steps start from its output (%lld floats "
         "per image)\n", (long long)m->feature_floats);
}

// One batch through the prefix, its first `real` rows kept from row `first` on.
static int compute_batch(TlcRun *run, int64_t first, int64_t real, TlcError *err) {
  const TlcModel *m = run->model;
  size_t row = (size_t)m->feature_floats * sizeof(float);
  if (!run->gpu) {
    m->train_features(run->arena);
    memcpy((char *)run->features + (size_t)first * row, run->arena + m->features, (size_t)real * row);
    return 0;
  }
  int64_t image_bytes = m->batch * m->channels * m->height * m->width * (int64_t)sizeof(float);
  if (tlc_gpu_upload(run->gpu, run->arena + m->images, m->images, image_bytes, err) != 0)
    return -1;
  m->train_features_gpu(run->gpu);
  return tlc_gpu_cache_store(run->gpu, first, m->features, real, err);
}

// Every training image through the prefix, in data-set order, in whole batches (the last
// one padded with its last image, whose features are not kept twice).
static int compute_features(TlcRun *run, TlcError *err) {
  const TlcModel *m = run->model;
  int64_t n = run->ntrain, padded = (n + m->batch - 1) / m->batch * m->batch;
  size_t row = (size_t)m->feature_floats * sizeof(float);
  if (!run->gpu && !run->features && !(run->features = malloc((size_t)(n > 0 ? n : 1) * row)))
    return tlc_fail(err, "out of memory for the feature cache (%lld images of %lld floats)", (long long)n,
                    (long long)m->feature_floats);
  int32_t *order = malloc((size_t)(padded > 0 ? padded : 1) * sizeof *order);
  if (!order)
    return tlc_fail(err, "out of memory");
  for (int64_t i = 0; i < padded; i++)
    order[i] = (int32_t)(i < n ? i : n - 1);
  tlc_loader_begin(run->loader, &run->data.train, order, padded, m->train_transform, m->ntrain_transform, 0);
  int status = 0;
  for (int64_t first = 0; first < n && status == 0 && !trainer_stop_requested(); first += m->batch) {
    status = tlc_loader_next(run->loader, (float *)(run->arena + m->images), run->batch_labels, err);
    if (status == 0)
      status = compute_batch(run, first, n - first < m->batch ? n - first : m->batch, err);
  }
  tlc_loader_end(run->loader);
  free(order);
  if (status == 0 && run->gpu)
    status = tlc_gpu_sync(run->gpu, err);
  // Cut short, no step uses it, and the next run computes it again.
  run->features_ready = status == 0 && !trainer_stop_requested();
  return status;
}

int trainer_begin_cached_pass(TlcRun *run, TlcError *err) {
  if (!run->features_ready && compute_features(run, err) != 0)
    return -1;
  // The compute stream of the CUDA graphs does not wait for the default stream's copy.
  return run->gpu && (tlc_gpu_cache_order(run->gpu, run->order, run->ntrain, err) != 0 || tlc_gpu_sync(run->gpu, err) != 0)
             ? -1 : 0;
}

void trainer_cached_labels(const TlcRun *run, const int32_t *order, int32_t *labels) {
  for (int64_t b = 0; b < run->model->batch; b++)
    labels[b] = run->data.train.labels[order[b]];
}

// The batch at run->cursor of this epoch's order, from the cache: features and labels. On a
// GPU, launched kernel by kernel, the gather is queued before the step that reads it.
int trainer_cached_batch(TlcRun *run, TlcError *err) {
  const TlcModel *m = run->model;
  size_t row = (size_t)m->feature_floats * sizeof(float);
  trainer_cached_labels(run, run->order + run->cursor, run->batch_labels);
  if (!run->gpu) {
    for (int64_t b = 0; b < m->batch; b++) {
      int32_t i = run->order[run->cursor + b];
      memcpy(run->arena + m->features + (size_t)b * row, (const char *)run->features + (size_t)i * row, row);
    }
    return 0;
  }
  if (tlc_gpu_cache_select(run->gpu, run->cursor, err) != 0)
    return -1;
  tlc_gpu_cache_gather(run->gpu);
  return 0;
}
