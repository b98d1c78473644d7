// trainer_gpu_data.c: the data path on the GPU. When the run trains on a GPU and every image
// of its splits is decoded in host memory (an in-memory format, or files in the decoded
// cache), the images go up once, uint8 at their own sizes one after another, and each batch
// is built on the device by the data path's kernels (codegen/kernels_augment.c, and
// kernels_jitter.c for colour jitter) instead of on the loader's threads: the host draws each
// sample's choices from the sample's own rng as the CPU transforms would (augment.c) and
// uploads them with the filter taps, a few KB a sample, drawing the next batch's while the
// GPU runs the step. With CUDA graphs that table goes up through gpu_graph.c's slots on the
// upload stream instead, and the kernels that build the batch run on the compute stream
// before the step's graph, reading it there (trainer_gpu_data_fill, _launch). The batch is
// the CPU's bit for bit (--check-gpu-data compares every one), so a run is the same with it
// and without it (--no-gpu-data).
//
// A split's transforms that the kernel cannot run (augment.c says which) keep that split on
// the CPU, and the run says why, once. The images take device memory within a budget: what
// the device has free after the arena and the feature cache, less TRAINER_GPU_RESERVE_MB,
// or --gpu-data-mb.
#include "augment_params.h"
#include "trainer_internal.h"

#include <stdlib.h>
#include <string.h>

// One split's images on the device.
typedef struct DeviceSet {
  const TlcDataset *ds;
  uint64_t pixels;
  int64_t *offsets;     // each image's first byte in pixels
  int64_t bytes;
} DeviceSet;

// Colour jitter's device memory, when a served split's transforms have it: the batch as
// bytes between the kernels, the samples' factors and contrast means, and Pillow's HSV
// tables (1 byte each where no transform has a hue).
typedef struct DeviceJitter {
  uint64_t bytes, factors, means, hsv, rgb;
} DeviceJitter;

// A batch's table on the host: which samples of which split, at which epoch, and their
// parameters, taps and jitter factors. Two of them: the batch being built, and the next one,
// drawn while the GPU runs the step (trainer_gpu_data_prefetch).
typedef struct HostBatch {
  bool ready;                   // filled for (ds, training, epoch, order)
  const TlcDataset *ds;
  bool training;
  int epoch;
  int32_t *order;               // batch samples
  int64_t *params;              // batch x AUG_PARAMS
  float *factors;               // batch x AUG_FACTORS
  int64_t *taps;
  int64_t taps_capacity, used;  // int64 elements allocated, filled
} HostBatch;

// What a batch in one of gpu_graph.c's slots is built from (with CUDA graphs).
typedef struct SlotBatch {
  const DeviceSet *set;
  bool training;
} SlotBatch;

typedef struct TrainerGpuData {
  DeviceSet sets[3];
  int nsets;
  bool train, eval;             // the splits whose batches the GPU builds
  bool jitter, hue;             // a served split's transforms have colour jitter, with a hue
  DeviceJitter j;
  uint64_t params, taps, table_train, table_eval;
  int64_t taps_capacity;        // int64 elements allocated at taps
  HostBatch host[2];            // this batch's table, and the next one's when drawn ahead
  SlotBatch slots[2];           // with CUDA graphs: the batches whose tables the slots hold
  float *check;                 // --check-gpu-data: the device's batch, read back
  int64_t checked;              // batches compared
  int64_t ahead;                // batches whose table was drawn while the step before ran
} TrainerGpuData;

static TlcImage image_of(const TlcDataset *ds, int64_t i) {
  if (ds->pixels) {
    size_t size = (size_t)ds->channels * ds->height * ds->width;
    return (TlcImage){ds->width, ds->height, ds->channels, ds->pixels + (size_t)i * size};
  }
  return ds->cache[i];
}

static bool in_memory(const TlcDataset *ds) {
  if (ds->pixels || ds->count == 0)
    return true;
  if (!ds->cache)
    return false;
  for (int64_t i = 0; i < ds->count; i++)
    if (!ds->cache[i].pixels)
      return false;
  return true;
}

// The set holding ds's images: its own, or the one it shares them with (test viewing val).
static DeviceSet *set_of(TrainerGpuData *g, const TlcDataset *ds) {
  for (int i = 0; i < g->nsets; i++)
    if (g->sets[i].ds == ds || (g->sets[i].ds->count == ds->count &&
                                ((ds->pixels && g->sets[i].ds->pixels == ds->pixels) ||
                                 (ds->cache && g->sets[i].ds->cache == ds->cache))))
      return &g->sets[i];
  return NULL;
}

static int64_t set_bytes(const TlcDataset *ds) {
  int64_t bytes = 0;
  for (int64_t i = 0; i < ds->count; i++) {
    TlcImage img = image_of(ds, i);
    bytes += (int64_t)img.width * img.height * img.channels;
  }
  return bytes;
}

enum { HSV_TABLE_BYTES = 3 << 24 };

// The bytes colour jitter takes on the device: the batch as bytes, and the HSV tables.
static int64_t jitter_bytes(const TlcRun *run, const TrainerGpuData *g) {
  const TlcModel *m = run->model;
  if (!g->jitter)
    return 0;
  return m->batch * m->channels * m->height * m->width + (g->hue ? 2 * (int64_t)HSV_TABLE_BYTES : 0);
}

// The splits the GPU would serve, each once; the bytes they take.
static int64_t plan_sets(TlcRun *run, TrainerGpuData *g) {
  const TlcDataset *splits[3] = {&run->data.train, &run->data.val, &run->data.test};
  int64_t bytes = 0;
  for (int s = 0; s < 3; s++) {
    if ((s == 0 ? !g->train : !g->eval) || splits[s]->count == 0 || set_of(g, splits[s]))
      continue;
    DeviceSet *d = &g->sets[g->nsets++];
    d->ds = splits[s];
    d->bytes = set_bytes(splits[s]);
    bytes += d->bytes;
  }
  return bytes;
}

static int upload_set(TlcRun *run, DeviceSet *d, TlcError *err) {
  const TlcDataset *ds = d->ds;
  if (!(d->offsets = malloc((size_t)ds->count * sizeof *d->offsets)))
    return tlc_fail(err, "out of memory for the GPU's image table");
  if (tlc_gpu_alloc(run->gpu, d->bytes, &d->pixels, err) != 0)
    return -1;
  int64_t at = 0;
  for (int64_t i = 0; i < ds->count; i++) {
    TlcImage img = image_of(ds, i);
    int64_t bytes = (int64_t)img.width * img.height * img.channels;
    d->offsets[i] = at;
    if (ds->pixels == NULL && tlc_gpu_put(run->gpu, d->pixels + (uint64_t)at, img.pixels, bytes, err) != 0)
      return -1;
    at += bytes;
  }
  // An in-memory split is one array already: one copy.
  return ds->pixels ? tlc_gpu_put(run->gpu, d->pixels, ds->pixels, d->bytes, err) : 0;
}

static int upload_table(TlcRun *run, const TlcTransform *tf, int n, uint64_t *table, TlcError *err) {
  const TlcModel *m = run->model;
  float values[3][256];
  if (tlc_transform_table(tf, n, m->channels, values, err) != 0 ||
      tlc_gpu_alloc(run->gpu, m->channels * 256 * (int64_t)sizeof(float), table, err) != 0)
    return -1;
  return tlc_gpu_put(run->gpu, *table, values, m->channels * 256 * (int64_t)sizeof(float), err);
}

// Why the run builds no batch on the GPU, or NULL.
static const char *ruled_out(const TlcRun *run) {
  if (run->no_gpu_data)
    return "--no-gpu-data";
  if (run->check_gpu)
    return "--check-gpu compares the steps from the host's batches";
  if (run->npredict)
    return "--predict";
  if (run->model->augment < 0)
    return "the model's input is not a gray or RGB image";
  const TlcDataset *splits[3] = {&run->data.train, &run->data.val, &run->data.test};
  for (int s = 0; s < 3; s++)
    if (!in_memory(splits[s]))
      return "the decoded images are not all in memory (--cache-mb)";
  return NULL;
}

// Which splits the transforms allow; says why a split stays on the CPU.
static void choose_splits(TlcRun *run, TrainerGpuData *g) {
  const TlcModel *m = run->model;
  char why[160];
  g->train = !run->use_features && run->ntrain > 0;
  if (g->train && tlc_augment_unsupported(m->train_transform, m->ntrain_transform, why, sizeof why)) {
    printf("data: training batches built on the CPU: %s\n", why);
    g->train = false;
  }
  g->eval = true;
  if (tlc_augment_unsupported(m->eval_transform, m->neval_transform, why, sizeof why)) {
    printf("data: evaluation batches built on the CPU: %s\n", why);
    g->eval = false;
  }
  bool hue_train, hue_eval;
  bool jitter_train = g->train && tlc_augment_jitters(m->train_transform, m->ntrain_transform, &hue_train);
  bool jitter_eval = g->eval && tlc_augment_jitters(m->eval_transform, m->neval_transform, &hue_eval);
  g->jitter = jitter_train || jitter_eval;
  g->hue = (jitter_train && hue_train) || (jitter_eval && hue_eval);
}

// Pillow's HSV tables, filled on the host by the CPU's conversions.
static int upload_hsv(TlcRun *run, DeviceJitter *j, TlcError *err) {
  uint8_t *hsv = malloc(HSV_TABLE_BYTES), *rgb = malloc(HSV_TABLE_BYTES);
  int status = hsv && rgb ? 0 : tlc_fail(err, "out of memory for the HSV tables");
  if (status == 0) {
    tlc_augment_hsv_tables(hsv, rgb);
    status = tlc_gpu_alloc(run->gpu, HSV_TABLE_BYTES, &j->hsv, err) != 0 ||
             tlc_gpu_alloc(run->gpu, HSV_TABLE_BYTES, &j->rgb, err) != 0 ||
             tlc_gpu_put(run->gpu, j->hsv, hsv, HSV_TABLE_BYTES, err) != 0 ||
             tlc_gpu_put(run->gpu, j->rgb, rgb, HSV_TABLE_BYTES, err) != 0 ? -1 : 0;
  }
  free(hsv);
  free(rgb);
  return status;
}

static int upload_jitter(TlcRun *run, TrainerGpuData *g, TlcError *err) {
  const TlcModel *m = run->model;
  DeviceJitter *j = &g->j;
  if (tlc_gpu_alloc(run->gpu, m->batch * m->channels * m->height * m->width, &j->bytes, err) != 0 ||
      tlc_gpu_alloc(run->gpu, m->batch * AUG_FACTORS * (int64_t)sizeof(float), &j->factors, err) != 0 ||
      tlc_gpu_alloc(run->gpu, m->batch * (int64_t)sizeof(int64_t), &j->means, err) != 0)
    return -1;
  if (g->hue)
    return upload_hsv(run, j, err);
  return tlc_gpu_alloc(run->gpu, 1, &j->hsv, err) != 0 || tlc_gpu_alloc(run->gpu, 1, &j->rgb, err) != 0 ? -1 : 0;
}

// The images, tables and parameters go up; -1 (err set) when the device cannot hold them.
static int upload(TlcRun *run, TrainerGpuData *g, TlcError *err) {
  const TlcModel *m = run->model;
  if (g->jitter && upload_jitter(run, g, err) != 0)
    return -1;
  for (int i = 0; i < g->nsets; i++)
    if (upload_set(run, &g->sets[i], err) != 0)
      return -1;
  if (upload_table(run, m->train_transform, m->ntrain_transform, &g->table_train, err) != 0 ||
      upload_table(run, m->eval_transform, m->neval_transform, &g->table_eval, err) != 0 ||
      tlc_gpu_alloc(run->gpu, m->batch * AUG_PARAMS * (int64_t)sizeof(int64_t), &g->params, err) != 0)
    return -1;
  for (int i = 0; i < 2; i++) {
    HostBatch *h = &g->host[i];
    h->order = malloc((size_t)m->batch * sizeof *h->order);
    h->params = malloc((size_t)m->batch * AUG_PARAMS * sizeof *h->params);
    h->factors = malloc((size_t)m->batch * AUG_FACTORS * sizeof *h->factors);
    if (!h->order || !h->params || !h->factors)
      return tlc_fail(err, "out of memory");
  }
  return 0;
}

static void start(TlcRun *run, TrainerGpuData *g) {
  char how[sizeof(TlcError) + 64];
  double budget = trainer_gpu_budget(run, run->gpu_data_mb, "--gpu-data-mb", how, sizeof how);
  int64_t bytes = plan_sets(run, g), extra = jitter_bytes(run, g);
  double mb = (double)bytes / (1 << 20), extra_mb = (double)extra / (1 << 20);
  char jitter[96] = "";
  if (extra)
    snprintf(jitter, sizeof jitter, " and %.1f MB for colour jitter", extra_mb);
  if (mb + extra_mb > budget) {
    printf("data: batches built on the CPU: %.1f MB of decoded images%s is over the device's budget of %.0f MB (%s)\n",
           mb, jitter, budget > 0 ? budget : 0, how);
    trainer_free_gpu_data(run);
    return;
  }
  TlcError why = {{0}};
  if (upload(run, g, &why) != 0) {
    printf("data: batches built on the CPU: the device could not hold the decoded images (%s)\n", why.msg);
    trainer_free_gpu_data(run);
    return;
  }
  // The copies from pageable memory may still be under way; the compute stream, which does
  // not wait for the default one, reads the images.
  if (tlc_gpu_sync(run->gpu, &why) != 0) {
    printf("data: batches built on the CPU: %s\n", why.msg);
    trainer_free_gpu_data(run);
    return;
  }
  int64_t images = 0;
  for (int i = 0; i < g->nsets; i++)
    images += g->sets[i].ds->count;
  printf("data: on the GPU: %.1f MB (%lld bytes) of decoded images (%lld images)%s; budget %.0f MB: %s; the %s "
         "batches are built there\n", mb, (long long)bytes, (long long)images, jitter, budget, how,
         g->train && g->eval ? "training and evaluation" : g->train ? "training" : "evaluation");
}

int trainer_start_gpu_data(TlcRun *run, TlcError *err) {
  if (!run->gpu)
    return 0;
  const char *why = ruled_out(run);
  if (why) {
    printf("data: batches built on the CPU: %s\n", why);
    return 0;
  }
  TrainerGpuData *g = calloc(1, sizeof *g);
  if (!g)
    return tlc_fail(err, "out of memory");
  run->gpu_data = g;
  choose_splits(run, g);
  if (g->train || g->eval)
    start(run, g);
  else
    trainer_free_gpu_data(run);
  return 0;
}

bool trainer_gpu_data_serves(const TlcRun *run, bool training) {
  const TrainerGpuData *g = run->gpu_data;
  return g && (training ? g->train : g->eval);
}

static int grow_taps(HostBatch *h, int64_t need, TlcError *err) {
  if (need <= h->taps_capacity)
    return 0;
  int64_t cap = need * 2;
  int64_t *grown = realloc(h->taps, (size_t)cap * sizeof *grown);
  if (!grown)
    return tlc_fail(err, "out of memory for the batch's filter taps");
  h->taps = grown;
  h->taps_capacity = cap;
  return 0;
}

// The device's taps buffer holds `need` int64 (grown, after the kernels that read it).
static int grow_device_taps(TlcRun *run, TrainerGpuData *g, int64_t need, TlcError *err) {
  if (need <= g->taps_capacity)
    return 0;
  if (g->taps && tlc_gpu_sync(run->gpu, err) != 0)
    return -1;
  tlc_gpu_free(run->gpu, g->taps);
  g->taps = 0;
  g->taps_capacity = need * 2;
  return tlc_gpu_alloc(run->gpu, g->taps_capacity * (int64_t)sizeof(int64_t), &g->taps, err);
}

// Sample b's parameters and taps (from h->used on); the plan checked against the model.
static int plan_sample(const TlcRun *run, const DeviceSet *d, int64_t j, int64_t b, const TlcTransform *tf, int ntf,
                       int epoch, HostBatch *h, TlcError *err) {
  const TlcModel *m = run->model;
  TlcImage img = image_of(d->ds, j);
  TlcRng rng;
  TlcAugmentPlan p;
  tlc_loader_sample_rng(run->loader, epoch, j, &rng);
  if (tlc_augment_plan(tf, ntf, &img, &rng, &p, err) != 0)
    return -1;
  if (p.channels != m->channels || p.final_height != m->height || p.final_width != m->width)
    return tlc_fail(err, "transforms: a %dx%d image with %d channel%s becomes %dx%dx%d (CxHxW) after its transforms, "
                    "but the model takes %dx%dx%d", img.width, img.height, img.channels, img.channels == 1 ? "" : "s",
                    p.channels, p.final_height, p.final_width, m->channels, m->height, m->width);
  int64_t size = tlc_augment_taps_size(&p), sy, sx, used = h->used;
  if (grow_taps(h, used + size, err) != 0 || tlc_augment_taps(&p, h->taps + used, &sy, &sx, err) != 0)
    return -1;
  int64_t *q = h->params + b * AUG_PARAMS;
  memset(q, 0, AUG_PARAMS * sizeof *q);
  q[AUG_PIXELS] = d->offsets[j], q[AUG_ROW] = img.width, q[AUG_CHANNELS] = img.channels;
  q[AUG_TAPS_Y] = used, q[AUG_TAPS_X] = used + (int64_t)p.out_height * sy;
  q[AUG_STRIDE_Y] = sy, q[AUG_STRIDE_X] = sx;
  q[AUG_AFTER_AY] = p.after.ay, q[AUG_AFTER_SY] = p.after.sy, q[AUG_AFTER_AX] = p.after.ax, q[AUG_AFTER_SX] = p.after.sx;
  q[AUG_ROTATED_HEIGHT] = p.rotated_height, q[AUG_ROTATED_WIDTH] = p.rotated_width;
  memcpy(q + AUG_ROTATE, p.rotate, sizeof p.rotate);
  q[AUG_BEFORE_AY] = p.before.ay, q[AUG_BEFORE_SY] = p.before.sy;
  q[AUG_BEFORE_AX] = p.before.ax, q[AUG_BEFORE_SX] = p.before.sx;
  q[AUG_HEIGHT] = p.out_height, q[AUG_WIDTH] = p.out_width;
  for (int i = 0; i < 4; i++)
    q[AUG_JITTER + i] = p.jitter[i];
  q[AUG_HUE_STEP] = p.hue_step;
  memcpy(h->factors + b * AUG_FACTORS, p.factor, sizeof p.factor);
  h->used = used + size;
  return 0;
}

// The table of ds's samples order[0..batch) at epoch into h.
static int draw_batch(const TlcRun *run, const TlcDataset *ds, const int32_t *order, bool training, int epoch,
                      HostBatch *h, TlcError *err) {
  const TlcModel *m = run->model;
  const TlcTransform *tf = training ? m->train_transform : m->eval_transform;
  int ntf = training ? m->ntrain_transform : m->neval_transform;
  const DeviceSet *d = set_of(run->gpu_data, ds);
  if (!d)
    return tlc_fail(err, "internal error: a split without images on the GPU");
  h->ready = false;
  h->used = 0;
  for (int64_t b = 0; b < m->batch; b++)
    if (plan_sample(run, d, order[b], b, tf, ntf, epoch, h, err) != 0) {
      // Named as the loader names it (a transform that refuses the image).
      TlcError why = *err;
      if (ds->paths)
        return tlc_fail(err, "%s: %s", ds->paths[order[b]], why.msg);
      return tlc_fail(err, "image %d of the data set: %s", order[b], why.msg);
    }
  memcpy(h->order, order, (size_t)m->batch * sizeof *order);
  h->ds = ds, h->training = training, h->epoch = epoch, h->ready = true;
  return 0;
}

static bool drawn_for(const TlcRun *run, const HostBatch *h, const TlcDataset *ds, const int32_t *order, bool training,
                      int epoch) {
  return h->ready && h->ds == ds && h->training == training && h->epoch == epoch &&
         memcmp(h->order, order, (size_t)run->model->batch * sizeof *order) == 0;
}

// --check-gpu-data: the device's batch against the one the loader wrote into the host arena.
static int check_batch(TlcRun *run, TrainerGpuData *g, TlcError *err) {
  const TlcModel *m = run->model;
  int64_t plane = m->height * m->width, sample = m->channels * plane, n = m->batch * sample;
  if (!g->check && !(g->check = malloc((size_t)n * sizeof *g->check)))
    return tlc_fail(err, "out of memory");
  if (tlc_gpu_download(run->gpu, g->check, m->images, n * (int64_t)sizeof(float), err) != 0)
    return -1;
  const float *cpu = (const float *)(run->arena + m->images);
  for (int64_t i = 0; i < n; i++)
    if (memcmp(&cpu[i], &g->check[i], sizeof(float)) != 0)
      return tlc_fail(err, "--check-gpu-data: batch %lld differs at sample %lld, channel %lld, row %lld, column %lld: "
                      "GPU %.9g, CPU %.9g", (long long)g->checked + 1, (long long)(i / sample),
                      (long long)(i % sample / plane), (long long)(i % plane / m->width), (long long)(i % m->width),
                      g->check[i], cpu[i]);
  // A line a batch would drown the epoch lines: the first, then every tenth.
  if (g->checked++ % 10 == 0)
    printf("check-gpu-data: %lld batch%s built on the GPU, each the CPU's bit for bit (%lld floats a batch; %lld "
           "drawn while the step before ran)\n", (long long)g->checked, g->checked == 1 ? "" : "es", (long long)n,
           (long long)g->ahead);
  return 0;
}

// Where a batch's table is on the device: the fixed buffers, or a slot's extra bytes.
typedef struct DeviceTable {
  uint64_t params, factors, taps;
} DeviceTable;

// The kernels that build the batch of d's samples into the arena's images from its table:
// `augment`, or with colour jitter the geometry into bytes, each sample's contrast mean, then
// the jitter and normalisation (the launches after m->augment, in that order).
static void launch_build(TlcRun *run, TrainerGpuData *g, const DeviceSet *d, bool training, DeviceTable t) {
  const TlcModel *m = run->model;
  const TlcTransform *tf = training ? m->train_transform : m->eval_transform;
  int ntf = training ? m->ntrain_transform : m->neval_transform;
  uint64_t table = training ? g->table_train : g->table_eval, images = tlc_gpu_arena_at(run->gpu, m->images);
  bool hue;
  if (!tlc_augment_jitters(tf, ntf, &hue)) {
    uint64_t pointers[5] = {d->pixels, t.params, t.taps, table, images};
    tlc_gpu_launch_on(run->gpu, m->augment, pointers, 5);
    return;
  }
  DeviceJitter *j = &g->j;
  uint64_t geometry[4] = {d->pixels, t.params, t.taps, j->bytes};
  uint64_t jitter[8] = {j->bytes, t.params, t.factors, j->hsv, j->rgb, j->means, table, images};
  tlc_gpu_launch_on(run->gpu, m->augment + 1, geometry, 4);
  tlc_gpu_launch_on(run->gpu, m->augment + 2, jitter, 6);
  tlc_gpu_launch_on(run->gpu, m->augment + 3, jitter, 8);
}

// The table in h for ds's samples order[0..batch): drawn ahead while the previous step ran,
// else drawn now; the labels into labels.
static const HostBatch *table_for(TlcRun *run, TrainerGpuData *g, const TlcDataset *ds, const int32_t *order,
                                  bool training, int epoch, int32_t *labels, TlcError *err) {
  if (drawn_for(run, &g->host[1], ds, order, training, epoch)) {
    HostBatch ahead = g->host[1];
    g->host[1] = g->host[0], g->host[0] = ahead;
    g->ahead++;
  } else if (draw_batch(run, ds, order, training, epoch, &g->host[0], err) != 0) {
    return NULL;
  }
  g->host[1].ready = false;
  for (int64_t b = 0; b < run->model->batch; b++)
    labels[b] = ds->labels[order[b]];
  return &g->host[0];
}

int trainer_gpu_data_batch(TlcRun *run, const TlcDataset *ds, const int32_t *order, bool training, TlcError *err) {
  const TlcModel *m = run->model;
  TrainerGpuData *g = run->gpu_data;
  const HostBatch *h = table_for(run, g, ds, order, training, run->epoch, run->batch_labels, err);
  if (!h || grow_device_taps(run, g, h->used, err) != 0 ||
      tlc_gpu_put(run->gpu, g->params, h->params, m->batch * AUG_PARAMS * (int64_t)sizeof(int64_t), err) != 0 ||
      tlc_gpu_put(run->gpu, g->taps, h->taps, h->used * (int64_t)sizeof(int64_t), err) != 0 ||
      (g->jitter &&
       tlc_gpu_put(run->gpu, g->j.factors, h->factors, m->batch * AUG_FACTORS * (int64_t)sizeof(float), err) != 0))
    return -1;
  launch_build(run, g, set_of(g, ds), training, (DeviceTable){g->params, g->j.factors, g->taps});
  return run->check_gpu_data ? check_batch(run, g, err) : 0;
}

// A table in a slot's extra bytes: the parameters, the jitter factors, then the taps.
static int64_t slot_factors_at(const TlcModel *m) { return m->batch * AUG_PARAMS * (int64_t)sizeof(int64_t); }
static int64_t slot_taps_at(const TlcModel *m) {
  return slot_factors_at(m) + m->batch * AUG_FACTORS * (int64_t)sizeof(float);
}

char *trainer_gpu_data_fill(TlcRun *run, const TlcDataset *ds, const int32_t *order, bool training, int epoch,
                            int slot, int32_t *labels, TlcError *err) {
  const TlcModel *m = run->model;
  TrainerGpuData *g = run->gpu_data;
  const HostBatch *h = table_for(run, g, ds, order, training, epoch, labels, err);
  int64_t taps_bytes = h ? h->used * (int64_t)sizeof(int64_t) : 0;
  char *inputs = h ? tlc_gpu_slot_fill(run->gpu, slot, false, slot_taps_at(m) + taps_bytes, err) : NULL;
  if (!inputs)
    return NULL;
  char *host;
  uint64_t device;
  tlc_gpu_slot_extra(run->gpu, slot, &host, &device);
  memcpy(host, h->params, (size_t)slot_factors_at(m));
  memcpy(host + slot_factors_at(m), h->factors, (size_t)(slot_taps_at(m) - slot_factors_at(m)));
  memcpy(host + slot_taps_at(m), h->taps, (size_t)taps_bytes);
  g->slots[slot] = (SlotBatch){set_of(g, ds), training};
  return inputs;
}

void trainer_gpu_data_launch(TlcRun *run, int slot) {
  const TlcModel *m = run->model;
  TrainerGpuData *g = run->gpu_data;
  char *host;
  uint64_t device;
  tlc_gpu_slot_extra(run->gpu, slot, &host, &device);
  DeviceTable t = {device, device + (uint64_t)slot_factors_at(m), device + (uint64_t)slot_taps_at(m)};
  launch_build(run, g, g->slots[slot].set, g->slots[slot].training, t);
}

void trainer_gpu_data_prefetch(TlcRun *run, bool training) {
  TrainerGpuData *g = run->gpu_data;
  const TlcModel *m = run->model;
  if (!trainer_gpu_data_serves(run, training))
    return;
  // The next batch of the pass under way (the cursors are past the batch just built).
  const TlcDataset *ds;
  const int32_t *order;
  if (training) {
    if (run->cursor + m->batch > run->ntrain)
      return;
    ds = &run->data.train, order = run->order + run->cursor;
  } else {
    int64_t n = run->eval_split == TLC_SPLIT_TEST ? run->ntest : run->nval;
    if (!run->eval_active || run->eval_cursor >= n)
      return;
    ds = run->eval_split == TLC_SPLIT_TEST ? &run->data.test : &run->data.val;
    order = run->eval_order + run->eval_cursor;
  }
  // A failure is left for the batch's own call to report.
  TlcError ignored;
  if (draw_batch(run, ds, order, training, run->epoch, &g->host[1], &ignored) != 0)
    g->host[1].ready = false;
}

void trainer_free_gpu_data(TlcRun *run) {
  TrainerGpuData *g = run->gpu_data;
  if (!g)
    return;
  for (int i = 0; i < g->nsets; i++) {
    tlc_gpu_free(run->gpu, g->sets[i].pixels);
    free(g->sets[i].offsets);
  }
  tlc_gpu_free(run->gpu, g->params);
  tlc_gpu_free(run->gpu, g->taps);
  tlc_gpu_free(run->gpu, g->table_train);
  tlc_gpu_free(run->gpu, g->table_eval);
  uint64_t jitter[5] = {g->j.bytes, g->j.factors, g->j.means, g->j.hsv, g->j.rgb};
  for (int i = 0; i < 5; i++)
    tlc_gpu_free(run->gpu, jitter[i]);
  for (int i = 0; i < 2; i++) {
    free(g->host[i].order);
    free(g->host[i].params);
    free(g->host[i].factors);
    free(g->host[i].taps);
  }
  free(g->check);
  free(g);
  run->gpu_data = NULL;
}
