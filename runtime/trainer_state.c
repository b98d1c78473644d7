// trainer_state.c: the trainer's state: the model description's checks, the arena, the
// initial values of every state tensor, and checkpoints of them.
//
// Contract: trainer_check_model refuses a TlcModel whose layout does not fit its arena, so
// every later write into the arena is in bounds. Initialisation walks model->params in order
// and draws from run->rng only for UNIFORM_FAN_IN tensors, so one seed gives one initial
// state. Checkpoints hold every TlcParamInfo tensor by name; int64 tensors (BatchNorm's
// num_batches_tracked) travel as floats, exact up to 2^24, because the checkpoint format
// stores floats only.
#include "trainer_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { ARENA_ALIGN = 64, MAX_DIMS = 4 };

static int64_t param_count(const TlcParamInfo *p) {
  int64_t n = 1;
  for (int d = 0; d < p->dims; d++)
    n *= p->shape[d];
  return n;
}

static int64_t param_bytes(const TlcParamInfo *p) {
  return param_count(p) * (p->is_int ? (int64_t)sizeof(int64_t) : (int64_t)sizeof(float));
}

// Within both arenas: the host reads these at one offset from either device's.
static bool in_arena(const TlcModel *m, int64_t offset, int64_t bytes) {
  int64_t size = m->bundle && m->gpu_arena_bytes < m->arena_bytes ? m->gpu_arena_bytes : m->arena_bytes;
  return offset >= 0 && bytes >= 0 && bytes <= size - offset;
}

// The step's inputs and outputs, named for messages.
static int check_io(const TlcModel *m, TlcError *err) {
  int64_t b = m->batch, image = (int64_t)m->channels * m->height * m->width;
  const struct { const char *name; int64_t offset, bytes; } io[] = {
      {"images", m->images, b * image * 4},         {"labels", m->labels, b * 8},
      {"seed", m->seed, 16},                        {"lr", m->lr, 4},
      {"train_loss", m->train_loss, b * 4},         {"train_logits", m->train_logits, b * m->classes * 4},
      {"eval_loss", m->eval_loss, b * 4},           {"eval_logits", m->eval_logits, b * m->classes * 4},
      {"features", m->features, m->feature_floats > 0 ? b * m->feature_floats * 4 : 0},
  };
  for (size_t i = 0; i < sizeof io / sizeof *io; i++)
    if (!in_arena(m, io[i].offset, io[i].bytes))
      return tlc_fail(err, "%s (%lld bytes at offset %lld) lies outside the %lld-byte arena", io[i].name,
                      (long long)io[i].bytes, (long long)io[i].offset, (long long)m->arena_bytes);
  return 0;
}

static int check_param(const TlcModel *m, const TlcParamInfo *p, TlcError *err) {
  if (!p->name || !*p->name || p->dims < 0 || p->dims > MAX_DIMS)
    return tlc_fail(err, "a state tensor has no name or %d dimensions", p->dims);
  for (int d = 0; d < p->dims; d++)
    if (p->shape[d] < 1)
      return tlc_fail(err, "state tensor '%s' has dimension %d of size %lld", p->name, d,
                      (long long)p->shape[d]);
  if (!in_arena(m, p->offset, param_bytes(p)))
    return tlc_fail(err, "state tensor '%s' lies outside the arena", p->name);
  if (p->init == TLC_INIT_UNIFORM_FAN_IN && (p->is_int || p->fan_in < 1))
    return tlc_fail(err, "state tensor '%s' is uniform-initialised but %s", p->name,
                    p->is_int ? "holds integers" : "has no fan-in");
  return 0;
}

static int check_transforms(const TlcTransform *tf, int n, const char *list, TlcError *err) {
  if (n < 0 || (n > 0 && !tf))
    return tlc_fail(err, "%s: %d transforms", list, n);
  for (int i = 0; i < n; i++) {
    const TlcTransform *t = &tf[i];
    if ((t->kind == TLC_TF_HFLIP || t->kind == TLC_TF_VFLIP) && !(t->p >= 0 && t->p <= 1))
      return tlc_fail(err, "%s: flip probability %g is outside [0, 1]", list, (double)t->p);
    if (t->kind == TLC_TF_NORMALIZE && i != n - 1)
      return tlc_fail(err, "%s: normalize must be the last transform", list);
    for (int c = 0; t->kind == TLC_TF_NORMALIZE && c < 4; c++)
      if (!(t->std[c] > 0))
        return tlc_fail(err, "%s: normalisation std[%d] is %g, it must be positive", list, c, (double)t->std[c]);
  }
  return 0;
}

static int check_recipe(const TlcModel *m, TlcError *err) {
  if (!m->data_format)
    return tlc_fail(err, "no data format");
  return check_transforms(m->train_transform, m->ntrain_transform, "train_transform", err) ||
                 check_transforms(m->eval_transform, m->neval_transform, "eval_transform", err)
             ? -1
             : 0;
}

int trainer_check_model(const TlcModel *m, TlcError *err) {
  TlcError why;
  int rc = 0;
  if (m->batch < 1 || m->channels < 1 || m->channels > 4 || m->height < 1 || m->width < 1 ||
      m->classes < 1 || m->arena_bytes < 1 || m->nparams < 0)
    rc = tlc_fail(&why, "bad sizes: batch %lld, images %dx%dx%d, %d classes, arena %lld bytes",
                  (long long)m->batch, m->channels, m->height, m->width, m->classes,
                  (long long)m->arena_bytes);
  if (rc == 0)
    rc = check_io(m, &why);
  for (int i = 0; rc == 0 && i < m->nparams; i++)
    rc = check_param(m, &m->params[i], &why);
  if (rc == 0)
    rc = check_recipe(m, &why);
  if (rc != 0)
    return tlc_fail(err, "the trainer's description of model '%s' is inconsistent (a bug in tlc): %s",
                    m->name ? m->name : "?", why.msg);
  return 0;
}

int trainer_alloc_state(TlcRun *run, TlcError *err) {
  const TlcModel *m = run->model;
  size_t size = ((size_t)m->arena_bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
  run->arena = aligned_alloc(ARENA_ALIGN, size);
  run->tensors = calloc((size_t)(m->nparams > 0 ? m->nparams : 1), sizeof *run->tensors);
  if (!run->arena || !run->tensors)
    return tlc_fail(err, "out of memory for the model's arena (%lld bytes)", (long long)m->arena_bytes);
  memset(run->arena, 0, size);
  for (int i = 0; i < m->nparams; i++) {
    const TlcParamInfo *p = &m->params[i];
    TlcTensorRef *t = &run->tensors[i];
    t->name = p->name;
    t->dims = p->dims;
    memcpy(t->shape, p->shape, sizeof t->shape);
    // Floats are saved from and loaded into the arena directly; int64 tensors need a copy.
    t->data = p->is_int ? calloc((size_t)param_count(p), sizeof(float)) : (float *)(run->arena + p->offset);
    if (!t->data)
      return tlc_fail(err, "out of memory for state tensor '%s'", p->name);
  }
  run->graph_hash = tlc_checkpoint_graph_hash(run->tensors, m->nparams);
  return 0;
}

void trainer_init_params(TlcRun *run) {
  const TlcModel *m = run->model;
  for (int i = 0; i < m->nparams; i++) {
    const TlcParamInfo *p = &m->params[i];
    int64_t n = param_count(p);
    if (p->is_int) {
      int64_t v = p->init == TLC_INIT_ONE;
      for (int64_t k = 0; k < n; k++)
        memcpy(run->arena + p->offset + k * (int64_t)sizeof v, &v, sizeof v);
      continue;
    }
    float *x = (float *)(run->arena + p->offset);
    double bound = p->init == TLC_INIT_UNIFORM_FAN_IN ? 1.0 / sqrt((double)p->fan_in) : 0;
    for (int64_t k = 0; k < n; k++) {
      if (p->init == TLC_INIT_UNIFORM_FAN_IN)  // U(-bound, bound), PyTorch's default for conv and linear
        x[k] = (float)((2.0 * tlc_rng_uniform(&run->rng) - 1.0) * bound);
      else
        x[k] = p->init == TLC_INIT_ONE ? 1.0f : 0.0f;
    }
  }
}

// int64 tensors <-> their float copies in run->tensors.
static void ints_to_floats(TlcRun *run) {
  for (int i = 0; i < run->model->nparams; i++) {
    const TlcParamInfo *p = &run->model->params[i];
    for (int64_t k = 0; p->is_int && k < param_count(p); k++) {
      int64_t v;
      memcpy(&v, run->arena + p->offset + k * (int64_t)sizeof v, sizeof v);
      run->tensors[i].data[k] = (float)v;
    }
  }
}

static void floats_to_ints(TlcRun *run) {
  for (int i = 0; i < run->model->nparams; i++) {
    const TlcParamInfo *p = &run->model->params[i];
    for (int64_t k = 0; p->is_int && k < param_count(p); k++) {
      int64_t v = (int64_t)run->tensors[i].data[k];
      memcpy(run->arena + p->offset + k * (int64_t)sizeof v, &v, sizeof v);
    }
  }
}

int trainer_load_checkpoint(TlcRun *run, const char *path, TlcError *err) {
  TlcCheckpointInfo info = {.graph = run->model->name, .graph_hash = run->graph_hash};
  if (tlc_checkpoint_load(path, &info, run->tensors, run->model->nparams, err) != 0)
    return -1;
  if (info.epoch < 0 || info.step < 0)
    return tlc_fail(err, "%s: corrupt checkpoint (epoch %d, step %lld)", path, (int)info.epoch,
                    (long long)info.step);
  floats_to_ints(run);
  run->epochs_done = info.epoch;
  run->step = info.step;
  run->rng.s[0] = info.rng[0];
  run->rng.s[1] = info.rng[1];
  run->best_val = info.best_metric;
  run->resume_images = info.images_done;
  run->resume_loss = info.loss_sum, run->resume_correct = info.correct_sum;
  return 0;
}

int trainer_load_best(TlcRun *run, int *epoch, TlcError *err) {
  TlcCheckpointInfo info = {.graph = run->model->name, .graph_hash = run->graph_hash};
  if (tlc_checkpoint_load(run->best_path, &info, run->tensors, run->model->nparams, err) != 0)
    return -1;
  floats_to_ints(run);
  *epoch = info.epoch;
  return trainer_state_to_device(run, err);
}

// What a failed save left: the previous file is untouched (tlc_checkpoint_save's promise),
// and the user needs to know that it is there and what it holds.
static int save_failed(const TlcRun *run, const char *path, bool existed, TlcError *err) {
  TlcError why = *err;
  if (!existed)
    return tlc_fail(err, "%s; no checkpoint was written there", why.msg);
  if (run->last_good && strcmp(run->last_good, path) == 0)
    return tlc_fail(err, "%s; the previous %s is intact: --resume %s continues from it", why.msg, path, path);
  return tlc_fail(err, "%s; the previous %s is intact", why.msg, path);
}

int trainer_save_checkpoint(TlcRun *run, const char *path, bool in_epoch, TlcError *err) {
  if (trainer_state_to_host(run, err) != 0)
    return -1;
  ints_to_floats(run);
  // Inside an epoch: the images done so far, and the generator as the epoch started.
  const TlcRng *rng = in_epoch ? &run->epoch_rng : &run->rng;
  TlcCheckpointInfo info = {.graph = run->model->name, .graph_hash = run->graph_hash,
                            .epoch = run->epochs_done, .step = run->step,
                            .rng = {rng->s[0], rng->s[1]}, .best_metric = run->best_val,
                            .images_done = in_epoch ? run->cursor : 0,
                            .loss_sum = in_epoch ? run->epoch_loss : 0,
                            .correct_sum = in_epoch ? run->epoch_correct : 0};
  bool existed = access(path, F_OK) == 0;
  if (tlc_checkpoint_save(path, &info, run->tensors, run->model->nparams, err) != 0)
    return save_failed(run, path, existed, err);
  return 0;
}

void trainer_free_state(TlcRun *run) {
  for (int i = 0; run->tensors && i < run->model->nparams; i++)
    if (run->model->params[i].is_int)
      free(run->tensors[i].data);
  free(run->tensors);
  free(run->arena);
  run->tensors = NULL;
  run->arena = NULL;
}
