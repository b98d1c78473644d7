// trainer_features.c: training from cached features. When the compiler found a frozen,
// deterministic prefix (TlcModel.features), the prefix runs once per training image at
// the first epoch and its output is kept; every step then starts from the cache and runs
// only the rest. Same kernels, same inputs: the run is bit-identical to one without the
// cache (--no-feature-cache), only faster.
#include "trainer_internal.h"

#include <stdlib.h>
#include <string.h>

bool trainer_wants_features(const TlcRun *run) {
  const TlcModel *m = run->model;
  if (m->feature_floats <= 0 || !m->train_features || run->gpu || run->no_feature_cache || run->eval_checkpoint ||
      run->profiling)   // profiled steps run every kernel of the step
    return false;
  // The cache shares --cache-mb's budget with decoded images.
  double mb = (double)run->ntrain * (double)m->feature_floats * sizeof(float) / (1 << 20);
  if (mb > (double)run->cache_mb) {
    printf("features: not cached: %.0f MB for %lld training images is over --cache-mb %lld\n", mb,
           (long long)run->ntrain, (long long)run->cache_mb);
    return false;
  }
  return true;
}

// Every training image through the prefix, in data-set order, in whole batches (the last
// one padded with its last image, whose features are not kept twice).
int trainer_compute_features(TlcRun *run, TlcError *err) {
  const TlcModel *m = run->model;
  int64_t n = run->ntrain, padded = (n + m->batch - 1) / m->batch * m->batch;
  size_t row = (size_t)m->feature_floats * sizeof(float);
  run->features = malloc((size_t)(n > 0 ? n : 1) * row);
  int32_t *order = malloc((size_t)(padded > 0 ? padded : 1) * sizeof *order);
  if (!run->features || !order) {
    free(order);
    return tlc_fail(err, "out of memory for the feature cache (%lld images of %lld floats)", (long long)n,
                    (long long)m->feature_floats);
  }
  for (int64_t i = 0; i < padded; i++)
    order[i] = (int32_t)(i < n ? i : n - 1);
  tlc_loader_begin(run->loader, &run->data.train, order, padded, m->train_transform, m->ntrain_transform, 0);
  int status = 0;
  for (int64_t first = 0; first < n && status == 0 && !trainer_stop_requested(); first += m->batch) {
    status = tlc_loader_next(run->loader, (float *)(run->arena + m->images), run->batch_labels, err);
    if (status)
      break;
    m->train_features(run->arena);
    int64_t real = n - first < m->batch ? n - first : m->batch;
    memcpy((char *)run->features + (size_t)first * row, run->arena + m->features, (size_t)real * row);
  }
  tlc_loader_end(run->loader);
  free(order);
  if (trainer_stop_requested()) {   // cut short: no step uses it, and the next run computes it again
    free(run->features);
    run->features = NULL;
  }
  return status;
}

// The batch at run->cursor of this epoch's order, from the cache: features and labels.
void trainer_cached_batch(TlcRun *run) {
  const TlcModel *m = run->model;
  size_t row = (size_t)m->feature_floats * sizeof(float);
  for (int64_t b = 0; b < m->batch; b++) {
    int32_t i = run->order[run->cursor + b];
    memcpy(run->arena + m->features + (size_t)b * row, (const char *)run->features + (size_t)i * row, row);
    run->batch_labels[b] = run->data.train.labels[i];
  }
}
