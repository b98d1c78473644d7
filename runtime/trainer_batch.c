// trainer_batch.c: filling the step's input buffers and reading back its outputs.
//
// Contract: a training batch is the next B images of this epoch's order, each augmented
// (model->augment, in order, on the uint8 image, drawing from run->rng image by image) and
// normalised to float NCHW; the last partial batch is dropped, because the step's shape is
// static. An evaluation batch is the next B images of a split in file order, not augmented,
// the last one padded by repeating its last image; only real images are counted. Labels go
// to the arena as int64 and are also kept here, since the step's memory plan may reuse its
// input buffers once they are read.
#include "trainer_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int64_t image_bytes(const TlcModel *m) { return (int64_t)m->channels * m->height * m->width; }

int trainer_alloc_batches(TlcRun *run, TlcError *err) {
  const TlcModel *m = run->model;
  run->order = malloc((size_t)(run->ntrain > 0 ? run->ntrain : 1) * sizeof *run->order);
  run->batch_labels = malloc((size_t)m->batch * sizeof *run->batch_labels);
  run->scratch = malloc(2 * (size_t)image_bytes(m));
  if (!run->order || !run->batch_labels || !run->scratch)
    return tlc_fail(err, "out of memory for the batch buffers");
  // A table instead of the arithmetic per pixel: the same float operations, done once.
  for (int c = 0; c < m->channels; c++)
    for (int v = 0; v < 256; v++)
      run->norm[c][v] = ((float)v / 255.0f - m->mean[c]) / m->std[c];
  return 0;
}

void trainer_free_batches(TlcRun *run) {
  free(run->order);
  free(run->batch_labels);
  free(run->scratch);
  run->order = NULL;
  run->batch_labels = NULL;
  run->scratch = NULL;
}

// Writes one image, normalised, into batch slot `slot` of the arena's images (B,C,H,W).
static void put_image(TlcRun *run, int64_t slot, const uint8_t *pixels) {
  const TlcModel *m = run->model;
  int64_t plane = (int64_t)m->height * m->width;
  float *dst = (float *)(run->arena + m->images) + slot * image_bytes(m);
  for (int c = 0; c < m->channels; c++) {
    const float *table = run->norm[c];
    for (int64_t k = 0; k < plane; k++)
      dst[c * plane + k] = table[pixels[c * plane + k]];
  }
}

static void put_label(TlcRun *run, int64_t slot, int32_t label) {
  int64_t v = label;
  memcpy(run->arena + run->model->labels + slot * (int64_t)sizeof v, &v, sizeof v);
  run->batch_labels[slot] = label;
}

static void hflip(const TlcModel *m, uint8_t *img) {
  for (int64_t row = 0; row < (int64_t)m->channels * m->height; row++) {
    uint8_t *r = img + row * m->width;
    for (int x = 0, y = m->width - 1; x < y; x++, y--) {
      uint8_t t = r[x];
      r[x] = r[y];
      r[y] = t;
    }
  }
}

// Pads src with zeros by a->pad on each side and copies a random size x size window to dst.
// The top offset is drawn before the left one, as torchvision's RandomCrop does.
static void random_crop(TlcRun *run, const TlcAugment *a, const uint8_t *src, uint8_t *dst) {
  const TlcModel *m = run->model;
  int64_t h = m->height, w = m->width;
  int64_t top = (int64_t)tlc_rng_below(&run->rng, (uint64_t)(h + 2 * a->pad - a->size + 1)) - a->pad;
  int64_t left = (int64_t)tlc_rng_below(&run->rng, (uint64_t)(w + 2 * a->pad - a->size + 1)) - a->pad;
  for (int64_t c = 0; c < m->channels; c++)
    for (int64_t y = 0; y < a->size; y++)
      for (int64_t x = 0; x < a->size; x++) {
        int64_t sy = top + y, sx = left + x;
        bool inside = sy >= 0 && sy < h && sx >= 0 && sx < w;
        dst[(c * a->size + y) * a->size + x] = inside ? src[(c * h + sy) * w + sx] : 0;
      }
}

// Applies model->augment in order to a copy of src; returns the result (in run->scratch).
static const uint8_t *augment(TlcRun *run, const uint8_t *src) {
  const TlcModel *m = run->model;
  uint8_t *cur = run->scratch, *spare = run->scratch + image_bytes(m);
  memcpy(cur, src, (size_t)image_bytes(m));
  for (int i = 0; i < m->naugment; i++) {
    const TlcAugment *a = &m->augment[i];
    if (a->kind == TLC_AUG_HFLIP && tlc_rng_uniform(&run->rng) < a->p)
      hflip(m, cur);
    if (a->kind == TLC_AUG_RANDOM_CROP) {
      random_crop(run, a, cur, spare);
      uint8_t *t = cur;
      cur = spare;
      spare = t;
    }
  }
  return cur;
}

bool tlc_train_batch(TlcRun *run) {
  const TlcModel *m = run->model;
  if (run->cursor + m->batch > run->ntrain) {
    // The epoch's training part ends here; evaluation is not part of its images/s.
    run->epoch_seconds = trainer_now() - run->epoch_start;
    return false;
  }
  for (int64_t b = 0; b < m->batch; b++) {
    int32_t i = run->order[run->cursor + b];
    put_image(run, b, augment(run, run->train.pixels + i * image_bytes(m)));
    put_label(run, b, run->train.labels[i]);
  }
  // {seed, step}: the step's own random streams (dropout) derive from both, so they are
  // fresh at every step and the same again on a resumed run.
  int64_t seed[2] = {(int64_t)run->seed, run->step + 1};
  memcpy(run->arena + m->seed, seed, sizeof seed);
  run->cursor += m->batch;
  return true;
}

static int32_t argmax(const float *x, int32_t n) {
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
    *correct += argmax(logits + b * m->classes, m->classes) == run->batch_labels[b];
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

static int64_t split_size(const TlcRun *run, TlcSplit split) {
  return split == TLC_SPLIT_TEST ? run->ntest : split == TLC_SPLIT_VAL ? run->nval : run->ntrain;
}

bool tlc_eval_batch(TlcRun *run, TlcSplit split) {
  const TlcModel *m = run->model;
  if (!run->eval_active || run->eval_split != split) {  // a new pass: restart the sums
    run->eval_active = true;
    run->eval_split = split;
    run->eval_cursor = 0;
    run->eval_loss = run->eval_correct = run->eval_seen = 0;
  }
  int64_t left = split_size(run, split) - run->eval_cursor;
  if (left <= 0) {
    run->eval_active = false;
    return false;
  }
  const TlcDataset *d = split == TLC_SPLIT_TEST ? &run->test : &run->train;
  int64_t first = (split == TLC_SPLIT_VAL ? run->val_first : 0) + run->eval_cursor;
  int64_t real = left < m->batch ? left : m->batch;
  for (int64_t b = 0; b < m->batch; b++) {
    int64_t i = first + (b < real ? b : real - 1);
    put_image(run, b, d->pixels + i * image_bytes(m));
    put_label(run, b, d->labels[i]);
  }
  run->eval_real = real;
  run->eval_cursor += real;
  return true;
}

void tlc_eval_batch_done(TlcRun *run) {
  add_batch(run, run->model->eval_loss, run->model->eval_logits, run->eval_real, &run->eval_loss,
            &run->eval_correct);
  run->eval_seen += (double)run->eval_real;
  trainer_keep_logits(run);
}
