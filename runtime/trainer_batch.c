// trainer_batch.c: filling the step's input buffers and reading back its outputs.
//
// Contract: a training batch is the next B images of this epoch's order, each run through
// model->train_transform by the loader (loader.c) with its own per-sample randomness; the
// last partial batch is dropped, because the step's shape is static. An evaluation batch is
// the next B images of a split in data-set order through model->eval_transform, the last one
// padded by repeating its last image; only real images are counted. Labels go to the arena as
// int64 and are also kept here, since the step's memory plan may reuse its input buffers once
// they are read. A loader failure (a transform refused an image) ends the pass: the batch
// functions return false and the next call that can report it (tlc_epoch_end,
// tlc_run_finish) does. So does a requested stop (trainer_stop.c).
//
// With CUDA graphs (gpu_graph.c) a batch's inputs go to a slot of pinned memory instead of
// the arena, and while a step runs the pass's next batch is loaded into the other slot and
// sent up (trainer_load_ahead): the same batches in the same order, one step earlier, so
// the run is the same; a batch loaded ahead of a stop or a failure is dropped. A batch the
// GPU builds (trainer_gpu_data.c) sends its choices through the slot instead of its images,
// and one from cached features only its labels. When the GPU builds a pass's batches, the
// loader does not run, unless --check-gpu-data compares the two.
#include "trainer_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int trainer_alloc_batches(TlcRun *run, TlcError *err) {
  const TlcModel *m = run->model;
  int64_t longest = run->nval > run->ntest ? run->nval : run->ntest;
  int64_t padded = (longest + m->batch - 1) / m->batch * m->batch;
  run->order = malloc((size_t)(run->ntrain > 0 ? run->ntrain : 1) * sizeof *run->order);
  run->eval_order = malloc((size_t)(padded > 0 ? padded : 1) * sizeof *run->eval_order);
  run->batch_labels = malloc((size_t)m->batch * sizeof *run->batch_labels);
  run->ahead_labels = malloc((size_t)m->batch * sizeof *run->ahead_labels);
  run->ahead_order = malloc((size_t)m->batch * sizeof *run->ahead_order);
  run->next_order = malloc((size_t)(run->ntrain > 0 ? run->ntrain : 1) * sizeof *run->next_order);
  if (!run->order || !run->eval_order || !run->batch_labels || !run->ahead_labels || !run->ahead_order ||
      !run->next_order)
    return tlc_fail(err, "out of memory for the batch buffers");
  return 0;
}

void trainer_free_batches(TlcRun *run) {
  free(run->order);
  free(run->eval_order);
  free(run->batch_labels);
  free(run->ahead_labels);
  free(run->ahead_order);
  free(run->next_order);
  run->ahead_order = run->next_order = NULL;
  run->order = NULL;
  run->eval_order = NULL;
  run->batch_labels = NULL;
  run->ahead_labels = NULL;
}

int64_t trainer_split_size(const TlcRun *run, TlcSplit split) {
  return split == TLC_SPLIT_TEST ? run->ntest : split == TLC_SPLIT_VAL ? run->nval : run->ntrain;
}

bool trainer_uses_loader(const TlcRun *run, bool training) {
  return !trainer_gpu_data_serves(run, training) || run->check_gpu_data;
}

// Where the step's input at arena offset `offset` goes on the host: the arena, or a slot of
// pinned memory that holds the arena's input region.
static char *input_at(const TlcRun *run, char *slot, int64_t offset) {
  return slot ? slot + (offset - run->model->io_offset) : run->arena + offset;
}

// Labels of the batch the loader just wrote, as the step reads them (int64).
static void put_labels(TlcRun *run, char *slot, const int32_t *labels) {
  const TlcModel *m = run->model;
  for (int64_t b = 0; b < m->batch; b++) {
    int64_t v = labels[b];
    memcpy(input_at(run, slot, m->labels + b * (int64_t)sizeof v), &v, sizeof v);
  }
}

bool trainer_loader_failed(TlcRun *run) {
  run->failed = true;
  tlc_loader_end(run->loader);
  run->train_active = run->eval_active = false;
  return false;
}

bool trainer_load_slot(TlcRun *run, const TlcDataset *ds, const int32_t *order, bool training, int epoch,
                       int64_t step, int32_t *labels, int *slot_used) {
  const TlcModel *m = run->model;
  int slot = run->fill_slot;
  char *inputs;
  if (trainer_gpu_data_serves(run, training)) {
    inputs = trainer_gpu_data_fill(run, ds, order, training, epoch, slot, labels, &run->fail_err);
  } else if (training && run->use_features) {
    inputs = tlc_gpu_slot_fill(run->gpu, slot, false, 0, &run->fail_err);
    trainer_cached_labels(run, order, labels);
  } else {
    inputs = tlc_gpu_slot_fill(run->gpu, slot, true, 0, &run->fail_err);
    if (inputs && tlc_loader_next(run->loader, (float *)input_at(run, inputs, m->images), labels, &run->fail_err))
      inputs = NULL;
  }
  if (!inputs)
    return trainer_loader_failed(run);
  put_labels(run, inputs, labels);
  int64_t seed[2] = {(int64_t)run->seed, step + 1};
  float lr = epoch == run->epoch ? run->lr_factor : trainer_lr_factor(run, epoch);
  memcpy(input_at(run, inputs, m->seed), seed, sizeof seed);
  memcpy(input_at(run, inputs, m->lr), &lr, sizeof lr);
  *slot_used = slot;
  run->fill_slot ^= 1;
  return true;
}

// The next batch of ds's samples order[0..batch): loaded ahead, into a slot, or kernel by
// kernel (or on the CPU) the loader's, from cached features or built on the GPU
// (trainer_gpu_data.c); false (and run->failed) when the loader or the GPU failed.
static bool next_batch(TlcRun *run, const TlcDataset *ds, const int32_t *order, bool training) {
  run->gpu_batch = false;
  if (trainer_ahead_is(run, ds, order, training)) {   // loaded and sent while the step before ran
    int32_t *labels = run->batch_labels;
    run->batch_labels = run->ahead_labels, run->ahead_labels = labels;
    run->batch_slot = run->ahead_slot;
    run->batch_sent = true;
    run->ahead = false;
    run->batches_slotted++, run->batches_ahead++;
    run->passes_ahead += run->ahead_starts_pass;
    return true;
  }
  run->ahead = false;   // another batch than this one (a pass guessed wrong): dropped
  run->batch_sent = false;
  run->batches_slotted += run->graphs;
  if (run->graphs)
    return trainer_load_slot(run, ds, order, training, run->epoch, run->step, run->batch_labels, &run->batch_slot);
  if (training && run->use_features) {
    if (trainer_cached_batch(run, &run->fail_err) != 0)
      return trainer_loader_failed(run);
    put_labels(run, NULL, run->batch_labels);
    return true;
  }
  if (trainer_uses_loader(run, training)) {
    if (tlc_loader_next(run->loader, (float *)(run->arena + run->model->images), run->batch_labels, &run->fail_err))
      return trainer_loader_failed(run);
    put_labels(run, NULL, run->batch_labels);
  }
  if (!trainer_gpu_data_serves(run, training))
    return true;
  run->gpu_batch = true;
  if (trainer_gpu_data_batch(run, ds, order, training, &run->fail_err) != 0)
    return trainer_loader_failed(run);
  put_labels(run, NULL, run->batch_labels);
  return true;
}

// {seed, step}: the step's own random streams (dropout) derive from both, so they are
// fresh at every step and the same again on a resumed run.
static void put_seed(TlcRun *run, int64_t step) {
  int64_t seed[2] = {(int64_t)run->seed, step + 1};
  memcpy(run->arena + run->model->seed, seed, sizeof seed);
}

void trainer_begin_training_pass(TlcRun *run) {
  const TlcModel *m = run->model;
  bool begun = run->loader_ahead && trainer_ahead_is(run, &run->data.train, run->order + run->cursor, true);
  run->loader_ahead = false;
  if (run->use_features) {   // batches come from the cache, computed at the first epoch
    if (trainer_begin_cached_pass(run, &run->fail_err) != 0)
      run->failed = true;
    return;
  }
  run->train_active = true;
  if (!trainer_uses_loader(run, true) || begun)   // begun: on this order, when its first batch went up ahead
    return;
  // From run->cursor: a resumed run skips the batches done before it stopped.
  int64_t whole = run->ntrain / m->batch * m->batch;
  tlc_loader_begin(run->loader, &run->data.train, run->order + run->cursor, whole - run->cursor, m->train_transform,
                   m->ntrain_transform, run->epoch);
}

bool tlc_train_batch(TlcRun *run) {
  const TlcModel *m = run->model;
  if (run->failed || run->cursor + m->batch > run->ntrain || trainer_stop_requested()) {
    // The epoch's training part ends here; evaluation is not part of its images/s.
    run->epoch_seconds = trainer_now() - run->epoch_start;
    return false;
  }
  put_seed(run, run->step);
  if (!next_batch(run, &run->data.train, run->order + run->cursor, true))
    return false;
  run->cursor += m->batch;
  return true;
}

int32_t trainer_argmax(const float *x, int32_t n) {
  int32_t best = 0;
  for (int32_t i = 1; i < n; i++)
    if (x[i] > x[best])  // strictly greater: the first maximum wins
      best = i;
  return best;
}

// Adds the first n samples' losses and correct predictions to the sums.
static void add_batch(const TlcRun *run, int64_t loss_at, int64_t logits_at, int64_t n, double *loss_sum,
                      double *correct) {
  const TlcModel *m = run->model;
  const float *loss = (const float *)(run->arena + loss_at);
  const float *logits = (const float *)(run->arena + logits_at);
  for (int64_t b = 0; b < n; b++) {
    *loss_sum += loss[b];
    *correct += trainer_argmax(logits + b * m->classes, m->classes) == run->batch_labels[b];
  }
}

static int stop_on_bad_loss(TlcRun *run, float loss) {
  fflush(stdout);  // the epoch lines so far come before the error in a combined log
  fprintf(stderr, "error: the loss became %s at epoch %d, step %lld; training stopped, ",
          isnan(loss) ? "NaN" : "infinite", run->epoch + 1, (long long)run->step + 1);
  if (run->last_good)
    fprintf(stderr, "the last good checkpoint is %s\n", run->last_good);
  else
    fprintf(stderr, "no checkpoint was written yet\n");
  run->status = TRAINER_FAILED;
  trainer_release(run);
  return 1;
}

int tlc_train_batch_done(TlcRun *run) {
  const TlcModel *m = run->model;
  const float *loss = (const float *)(run->arena + m->train_loss);
  for (int64_t b = 0; b < m->batch; b++)
    if (!isfinite(loss[b]))
      return stop_on_bad_loss(run, loss[b]);
  add_batch(run, m->train_loss, m->train_logits, m->batch, &run->epoch_loss, &run->epoch_correct);
  run->epoch_seen += (double)m->batch;
  run->images_trained += (double)m->batch;
  run->step++;
  return 0;
}

int64_t trainer_eval_order(TlcRun *run, TlcSplit split) {
  const TlcModel *m = run->model;
  int64_t n = trainer_split_size(run, split), padded = (n + m->batch - 1) / m->batch * m->batch;
  for (int64_t i = 0; i < padded; i++)
    run->eval_order[i] = (int32_t)(i < n ? i : n - 1);
  return padded;
}

// Starts the loader on split, in data-set order, padded to whole batches with its last image,
// unless it was begun on it when the pass's first batch went up ahead.
static void begin_eval_pass(TlcRun *run, TlcSplit split) {
  const TlcModel *m = run->model;
  const TlcDataset *d = split == TLC_SPLIT_TEST ? &run->data.test : &run->data.val;
  bool begun = run->loader_ahead && run->ahead && run->ahead_ds == d && !run->ahead_training &&
               run->ahead_epoch == run->epoch && run->ahead_starts_pass;
  run->loader_ahead = false;
  run->train_active = false;
  if (begun)
    return;
  int64_t padded = trainer_eval_order(run, split);
  if (trainer_uses_loader(run, false))
    tlc_loader_begin(run->loader, d, run->eval_order, padded, m->eval_transform, m->neval_transform, run->epoch);
}

bool tlc_eval_batch(TlcRun *run, TlcSplit split) {
  const TlcModel *m = run->model;
  if (run->failed || trainer_stop_requested())
    return false;
  if (!run->eval_active || run->eval_split != split) {  // a new pass: restart the sums
    run->eval_active = true;
    run->eval_split = split;
    run->eval_cursor = 0;
    run->eval_loss = run->eval_correct = run->eval_seen = 0;
    if (trainer_split_size(run, split) > 0)
      begin_eval_pass(run, split);
  }
  int64_t left = trainer_split_size(run, split) - run->eval_cursor;
  if (left <= 0) {
    run->eval_active = false;
    return false;
  }
  const TlcDataset *d = split == TLC_SPLIT_TEST ? &run->data.test : &run->data.val;
  if (!next_batch(run, d, run->eval_order + run->eval_cursor, false))
    return false;
  int64_t real = left < m->batch ? left : m->batch;
  run->eval_real = real;
  run->eval_cursor += real;
  return true;
}

void tlc_eval_batch_done(TlcRun *run) {
  add_batch(run, run->model->eval_loss, run->model->eval_logits, run->eval_real, &run->eval_loss,
            &run->eval_correct);
  run->eval_seen += (double)run->eval_real;
  trainer_keep_logits(run);
  trainer_count_confusion(run);
}
