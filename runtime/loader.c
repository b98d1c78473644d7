// loader.c: batches decoded and transformed on the loader's own threads, ahead of the step.
//
// Contract (tlcrt.h, section "loader.c"). How it works: a pass is a list of samples; sample s
// goes to slot (s / batch) % prefetch of a ring of batch buffers, at position s % batch. A
// worker takes the next sample only while its batch is fewer than `prefetch` ahead of the one
// the consumer waits for, so the ring never overwrites a batch not yet taken. Workers finish
// in any order; since each sample's randomness comes from its own TlcRng, seeded from
// (seed, epoch, index), and lands at a fixed place, the batches do not depend on the thread
// count or timing. One mutex guards the pass state; decoding runs outside it.
//
// Broken files: a file that does not decode is marked (per data set) and warned about once;
// the sample is replaced by the next index of the data set that decodes, so a batch is always
// full and the replacement is the same on every run. What a file held (gray, palette, RGBA,
// CMYK: converted to the model's channels by image.c) and whether it is over PIL's warning
// size is counted once per file by the same marks.
//
// Memory: every decode and transform first reserves what it will take (the header's
// decode_bytes, and twice the largest image its transforms make) from a budget shared by
// the threads, in the order they ask; a sample larger than the whole budget runs alone. So
// the bytes in flight stay under max(budget, one sample) whatever the folder holds, instead
// of one maximal image per thread. Scratch images grown past LOADER_SCRATCH_KEEP are freed
// after their sample, so what a thread keeps between samples is small.
#include "tlcrt.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { LOADER_MAX_SETS = 8 };
static const int64_t LOADER_DECODE_BUDGET = (int64_t)1 << 30;
static const size_t LOADER_SCRATCH_KEEP = (size_t)16 << 20;

enum { MARK_BROKEN = 1, MARK_COUNTED = 2 };

typedef struct Marks {
  const TlcDataset *ds;
  uint8_t *flags;       // ds->count MARK_* bits
} Marks;

// Bytes reserved for decoding, granted first come, first served (tickets), so that a large
// sample waiting for room is not overtaken for ever by small ones.
typedef struct Budget {
  pthread_mutex_t mu;
  pthread_cond_t freed;
  int64_t limit, reserved, peak;
  uint64_t next_ticket, serving;
} Budget;

struct TlcLoader {
  TlcLoaderConfig cfg;
  int64_t sample_floats;        // C * H * W
  int nthreads;
  pthread_t *threads;
  TlcTransformScratch *scratch; // one per worker, then one for the caller
  pthread_mutex_t mu;
  pthread_cond_t work, done;
  bool stop;
  // The pass under way; ds == NULL when there is none.
  const TlcDataset *ds;
  const int32_t *idx;
  int64_t n, next, consumed, inflight;
  const TlcTransform *tf;
  int ntf, epoch;
  int64_t *filled;              // per slot: samples written
  float *images;                // prefetch * batch samples
  int32_t *labels;
  bool failed;
  TlcError error;
  Marks marks[LOADER_MAX_SETS];
  TlcLoaderStats stats;
  Budget budget;
};

typedef struct Worker {
  TlcLoader *l;
  int id;
} Worker;

static uint64_t mix(uint64_t z) {
  // splitmix64's finaliser: every input bit reaches every output bit.
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

void tlc_loader_sample_rng(const TlcLoader *l, int epoch, int64_t index, TlcRng *r) {
  uint64_t h = mix(l->cfg.seed + 0x9e3779b97f4a7c15u);
  h = mix(h + (uint64_t)(uint32_t)epoch + 0x632be59bd9b4e019u);
  h = mix(h + (uint64_t)index);
  tlc_rng_seed(r, h);
}

//
// Marks and counts (the mutex is held)
//

static uint8_t *marks_of(TlcLoader *l, const TlcDataset *ds, bool create) {
  for (int i = 0; i < LOADER_MAX_SETS; i++) {
    if (l->marks[i].ds == ds)
      return l->marks[i].flags;
    if (!l->marks[i].ds && create) {
      l->marks[i].flags = calloc((size_t)ds->count, 1);
      l->marks[i].ds = l->marks[i].flags ? ds : NULL;
      return l->marks[i].flags;
    }
  }
  return NULL;
}

static bool is_broken(TlcLoader *l, const TlcDataset *ds, int64_t i) {
  pthread_mutex_lock(&l->mu);
  uint8_t *flags = marks_of(l, ds, false);
  bool b = flags && (flags[i] & MARK_BROKEN);
  pthread_mutex_unlock(&l->mu);
  return b;
}

static void mark_broken(TlcLoader *l, const TlcDataset *ds, int64_t i, const TlcError *why) {
  pthread_mutex_lock(&l->mu);
  uint8_t *flags = marks_of(l, ds, true);
  if (!flags || !(flags[i] & MARK_BROKEN)) {
    fprintf(stderr, "warning: %s; the image is skipped\n", why->msg);
    l->stats.skipped++;
  }
  if (flags)
    flags[i] |= MARK_BROKEN;
  pthread_mutex_unlock(&l->mu);
}

// What a decoded file held, counted the first time it is decoded.
static void count_file(TlcLoader *l, const TlcDataset *ds, int64_t i, const TlcImageHeader *h) {
  TlcImageKind native = l->cfg.channels == 1 ? TLC_IMAGE_GRAY : TLC_IMAGE_RGB;
  pthread_mutex_lock(&l->mu);
  uint8_t *flags = marks_of(l, ds, true);
  if (flags && !(flags[i] & MARK_COUNTED)) {
    flags[i] |= MARK_COUNTED;
    l->stats.converted[h->kind] += h->kind != native;
    l->stats.large += (int64_t)h->width * h->height > TLC_IMAGE_WARN_PIXELS;
  }
  pthread_mutex_unlock(&l->mu);
}

void tlc_loader_stats(TlcLoader *l, TlcLoaderStats *out) {
  pthread_mutex_lock(&l->mu);
  *out = l->stats;
  pthread_mutex_unlock(&l->mu);
  pthread_mutex_lock(&l->budget.mu);
  out->peak_bytes = l->budget.peak;
  pthread_mutex_unlock(&l->budget.mu);
}

//
// The decoding budget
//

static int64_t budget_take(Budget *b, int64_t bytes) {
  pthread_mutex_lock(&b->mu);
  uint64_t ticket = b->next_ticket++;
  while (ticket != b->serving || (b->reserved > 0 && b->reserved + bytes > b->limit))
    pthread_cond_wait(&b->freed, &b->mu);
  b->serving++;
  b->reserved += bytes;
  b->peak = b->reserved > b->peak ? b->reserved : b->peak;
  pthread_cond_broadcast(&b->freed);   // the next ticket may fit too
  pthread_mutex_unlock(&b->mu);
  return bytes;
}

static void budget_give(Budget *b, int64_t bytes) {
  if (bytes == 0)
    return;
  pthread_mutex_lock(&b->mu);
  b->reserved -= bytes;
  pthread_cond_broadcast(&b->freed);
  pthread_mutex_unlock(&b->mu);
}

//
// One sample
//

// File i of ds decoded into the model's channels, with what it and then transforms tf take
// reserved (*held, to be given back when the sample is done). An image of more than `room`
// bytes is not decoded: 1, and no error.
static int decode(TlcLoader *l, const TlcDataset *ds, int64_t i, const TlcTransform *tf, int ntf, int64_t room,
                  TlcImage *img, int64_t *held, TlcError *err) {
  TlcImageReader *r;
  TlcImageHeader h;
  if (tlc_image_open(ds->paths[i], l->cfg.channels, &r, &h, err))
    return -1;
  if ((int64_t)h.width * h.height * h.channels > room) {
    tlc_image_close(r);
    return 1;
  }
  int64_t scratch = 2 * tlc_transform_largest_bytes(tf, ntf, h.width, h.height, h.channels);
  *held = budget_take(&l->budget, h.decode_bytes + scratch);
  int rc = tlc_image_decode_pixels(r, img, err);
  tlc_image_close(r);
  if (rc == 0)
    count_file(l, ds, i, &h);
  return rc;
}

// Image i of ds: in memory and cached images are borrowed (their transforms' scratch
// reserved), files are decoded (*owned).
static int fetch(TlcLoader *l, const TlcDataset *ds, int64_t i, const TlcTransform *tf, int ntf, TlcImage *img,
                 bool *owned, int64_t *held, TlcError *err) {
  *owned = false;
  *held = 0;
  if (ds->pixels) {
    size_t size = (size_t)ds->channels * ds->height * ds->width;
    *img = (TlcImage){ds->width, ds->height, ds->channels, ds->pixels + (size_t)i * size};
  } else if (ds->cache && ds->cache[i].pixels) {
    *img = ds->cache[i];
  } else {
    *owned = true;
    return decode(l, ds, i, tf, ntf, INT64_MAX, img, held, err);
  }
  *held = budget_take(&l->budget, 2 * tlc_transform_largest_bytes(tf, ntf, img->width, img->height, img->channels));
  return 0;
}

static int run_sample(TlcLoader *l, const TlcDataset *ds, int64_t index, const TlcTransform *tf, int ntf, int epoch,
                      TlcTransformScratch *scratch, float *out, int32_t *label, TlcError *err) {
  TlcImage img = {0};
  bool owned = false;
  int64_t j = index, held = 0;
  for (int64_t tries = 0;; tries++, j = (j + 1) % ds->count) {
    if (tries == ds->count)
      return tlc_fail(err, "no image of the data set could be decoded (the first was %s)",
                      ds->paths ? ds->paths[index] : "?");
    if (ds->paths && is_broken(l, ds, j))
      continue;
    TlcError why;
    if (fetch(l, ds, j, tf, ntf, &img, &owned, &held, &why) == 0)
      break;
    budget_give(&l->budget, held);
    mark_broken(l, ds, j, &why);
  }
  TlcRng rng;
  tlc_loader_sample_rng(l, epoch, index, &rng);
  const TlcLoaderConfig *c = &l->cfg;
  int rc = tlc_transform_run(tf, ntf, &img, &rng, scratch, out, c->channels, c->height, c->width, err);
  if (owned)
    tlc_image_free(&img);
  if (scratch->cap_a + scratch->cap_b > LOADER_SCRATCH_KEEP)
    tlc_transform_scratch_free(scratch);
  budget_give(&l->budget, held);
  if (rc) {
    TlcError why = *err;
    if (ds->paths)
      return tlc_fail(err, "%s: %s", ds->paths[j], why.msg);
    return tlc_fail(err, "image %lld of the data set: %s", (long long)j, why.msg);
  }
  *label = ds->labels[j];
  return 0;
}

int tlc_loader_sample(TlcLoader *l, const TlcDataset *ds, int64_t index, const TlcTransform *tf, int ntf, int epoch,
                      float *out, TlcError *err) {
  int32_t label;
  return run_sample(l, ds, index, tf, ntf, epoch, &l->scratch[l->nthreads], out, &label, err);
}

//
// Workers
//

static bool can_take(const TlcLoader *l) {
  return l->ds && !l->failed && l->next < l->n && l->next / l->cfg.batch < l->consumed + l->cfg.prefetch;
}

static void *worker_main(void *arg) {
  Worker *w = arg;
  TlcLoader *l = w->l;
  pthread_mutex_lock(&l->mu);
  for (;;) {
    while (!l->stop && !can_take(l))
      pthread_cond_wait(&l->work, &l->mu);
    if (l->stop)
      break;
    int64_t s = l->next++;
    l->inflight++;
    const TlcDataset *ds = l->ds;
    int64_t index = l->idx[s], slot = (s / l->cfg.batch) % l->cfg.prefetch, at = slot * l->cfg.batch + s % l->cfg.batch;
    pthread_mutex_unlock(&l->mu);
    TlcError err;
    int rc = run_sample(l, ds, index, l->tf, l->ntf, l->epoch, &l->scratch[w->id], l->images + at * l->sample_floats,
                        &l->labels[at], &err);
    pthread_mutex_lock(&l->mu);
    l->inflight--;
    if (rc && !l->failed) {
      l->failed = true;
      l->error = err;
    }
    l->filled[slot]++;
    pthread_cond_broadcast(&l->done);
  }
  pthread_mutex_unlock(&l->mu);
  free(w);
  return NULL;
}

int tlc_loader_create(TlcLoader **out, const TlcLoaderConfig *cfg, TlcError *err) {
  TlcLoader *l = calloc(1, sizeof *l);
  if (!l)
    return tlc_fail(err, "out of memory for the data loader");
  l->cfg = *cfg;
  if (l->cfg.prefetch < 1)
    l->cfg.prefetch = 3;
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  l->nthreads = cfg->threads > 0 ? cfg->threads : cores > 0 ? (int)cores : 1;
  l->sample_floats = (int64_t)cfg->channels * cfg->height * cfg->width;
  int64_t slots = l->cfg.prefetch * cfg->batch;
  l->threads = calloc((size_t)l->nthreads, sizeof *l->threads);
  l->scratch = calloc((size_t)l->nthreads + 1, sizeof *l->scratch);
  l->filled = calloc((size_t)l->cfg.prefetch, sizeof *l->filled);
  l->images = malloc((size_t)(slots * l->sample_floats) * sizeof *l->images);
  l->labels = malloc((size_t)slots * sizeof *l->labels);
  pthread_mutex_init(&l->mu, NULL);
  pthread_cond_init(&l->work, NULL);
  pthread_cond_init(&l->done, NULL);
  pthread_mutex_init(&l->budget.mu, NULL);
  pthread_cond_init(&l->budget.freed, NULL);
  l->budget.limit = cfg->decode_budget > 0 ? cfg->decode_budget : LOADER_DECODE_BUDGET;
  *out = l;
  if (!l->threads || !l->scratch || !l->filled || !l->images || !l->labels) {
    l->nthreads = 0;
    tlc_loader_destroy(l);
    *out = NULL;
    return tlc_fail(err, "out of memory for the data loader's %lld batch buffers", (long long)l->cfg.prefetch);
  }
  for (int i = 0; i < l->nthreads; i++) {
    Worker *w = malloc(sizeof *w);
    if (w)
      *w = (Worker){l, i};
    if (!w || pthread_create(&l->threads[i], NULL, worker_main, w) != 0) {
      free(w);
      l->nthreads = i;
      tlc_loader_destroy(l);
      *out = NULL;
      return tlc_fail(err, "cannot start the data loader's thread %d", i + 1);
    }
  }
  return 0;
}

void tlc_loader_end(TlcLoader *l) {
  pthread_mutex_lock(&l->mu);
  l->ds = NULL;  // no new samples are taken; those under way write into the ring, then stop
  while (l->inflight > 0)
    pthread_cond_wait(&l->done, &l->mu);
  l->next = l->consumed = l->n = 0;
  memset(l->filled, 0, (size_t)l->cfg.prefetch * sizeof *l->filled);
  l->failed = false;
  pthread_mutex_unlock(&l->mu);
}

void tlc_loader_destroy(TlcLoader *l) {
  if (!l)
    return;
  if (l->filled)
    tlc_loader_end(l);
  pthread_mutex_lock(&l->mu);
  l->stop = true;
  pthread_cond_broadcast(&l->work);
  pthread_mutex_unlock(&l->mu);
  for (int i = 0; i < l->nthreads; i++)
    pthread_join(l->threads[i], NULL);
  for (int i = 0; l->scratch && i <= l->nthreads; i++)
    tlc_transform_scratch_free(&l->scratch[i]);
  for (int i = 0; i < LOADER_MAX_SETS; i++)
    free(l->marks[i].flags);
  pthread_mutex_destroy(&l->mu);
  pthread_cond_destroy(&l->work);
  pthread_cond_destroy(&l->done);
  pthread_mutex_destroy(&l->budget.mu);
  pthread_cond_destroy(&l->budget.freed);
  free(l->threads), free(l->scratch), free(l->filled), free(l->images), free(l->labels);
  free(l);
}

void tlc_loader_begin(TlcLoader *l, const TlcDataset *ds, const int32_t *idx, int64_t n, const TlcTransform *tf,
                      int ntf, int epoch) {
  tlc_loader_end(l);
  pthread_mutex_lock(&l->mu);
  l->ds = ds, l->idx = idx, l->n = n, l->tf = tf, l->ntf = ntf, l->epoch = epoch;
  pthread_cond_broadcast(&l->work);
  pthread_mutex_unlock(&l->mu);
}

int tlc_loader_next(TlcLoader *l, float *images, int32_t *labels, TlcError *err) {
  int64_t b = l->cfg.batch;
  pthread_mutex_lock(&l->mu);
  int64_t slot = l->consumed % l->cfg.prefetch;
  while (l->filled[slot] < b && !l->failed && l->ds)
    pthread_cond_wait(&l->done, &l->mu);
  if (l->failed || !l->ds) {
    int rc = tlc_fail(err, "%s", l->failed ? l->error.msg : "no data loader pass is under way");
    pthread_mutex_unlock(&l->mu);
    return rc;
  }
  pthread_mutex_unlock(&l->mu);
  memcpy(images, l->images + slot * b * l->sample_floats, (size_t)(b * l->sample_floats) * sizeof *images);
  memcpy(labels, l->labels + slot * b, (size_t)b * sizeof *labels);
  pthread_mutex_lock(&l->mu);
  l->filled[slot] = 0;
  l->consumed++;
  pthread_cond_broadcast(&l->work);
  pthread_mutex_unlock(&l->mu);
  return 0;
}

//
// The decoded cache
//

typedef struct CacheJob {
  TlcLoader *l;
  TlcDataset *ds;
  atomic_llong next, bytes;
  int64_t budget;
  atomic_bool over, oom;
} CacheJob;

static void *cache_main(void *arg) {
  CacheJob *job = arg;
  TlcDataset *ds = job->ds;
  for (;;) {
    int64_t i = atomic_fetch_add(&job->next, 1);
    if (i >= ds->count || atomic_load(&job->over) || atomic_load(&job->oom))
      return NULL;
    TlcError why;
    int64_t held = 0, room = job->budget - atomic_load(&job->bytes);
    int rc = decode(job->l, ds, i, NULL, 0, room, &ds->cache[i], &held, &why);
    budget_give(&job->l->budget, held);   // a kept image counts against the cache's budget instead
    if (rc < 0 && strstr(why.msg, "out of memory"))
      atomic_store(&job->oom, true);
    else if (rc < 0)
      mark_broken(job->l, ds, i, &why);
    if (rc > 0)   // more than the cache has room for: nothing will be kept
      atomic_store(&job->over, true);
    if (rc)
      continue;
    int64_t size = (int64_t)ds->cache[i].width * ds->cache[i].height * ds->cache[i].channels;
    if (atomic_fetch_add(&job->bytes, size) + size > job->budget)
      atomic_store(&job->over, true);
  }
}

// Removes the samples whose files are marked broken (their cache entries are empty).
static void drop_broken(TlcLoader *l, TlcDataset *ds) {
  uint8_t *flags = marks_of(l, ds, false);
  if (!flags)
    return;
  int64_t kept = 0;
  for (int64_t i = 0; i < ds->count; i++) {
    if (flags[i] & MARK_BROKEN) {
      free(ds->paths[i]);
      continue;
    }
    ds->paths[kept] = ds->paths[i], ds->labels[kept] = ds->labels[i], ds->cache[kept] = ds->cache[i];
    kept++;
  }
  ds->count = kept;
  // The marks describe the old numbering: forget them (every kept file is cached and counted).
  for (int i = 0; i < LOADER_MAX_SETS; i++)
    if (l->marks[i].ds == ds) {
      free(l->marks[i].flags);
      l->marks[i] = (Marks){0};
    }
}

int tlc_loader_cache(TlcLoader *l, TlcDataset *ds, int64_t *budget, TlcError *err) {
  if (!ds->paths || ds->count == 0 || ds->cache || *budget <= 0)
    return 0;
  ds->cache = calloc((size_t)ds->count, sizeof *ds->cache);
  if (!ds->cache)
    return tlc_fail(err, "out of memory for the image cache");
  CacheJob job = {.l = l, .ds = ds, .budget = *budget};
  pthread_t *threads = calloc((size_t)l->nthreads, sizeof *threads);
  int started = 0;
  while (threads && started < l->nthreads && pthread_create(&threads[started], NULL, cache_main, &job) == 0)
    started++;
  if (started == 0)
    cache_main(&job);
  for (int i = 0; i < started; i++)
    pthread_join(threads[i], NULL);
  free(threads);
  if (atomic_load(&job.oom) || atomic_load(&job.over)) {
    for (int64_t i = 0; i < ds->count; i++)
      tlc_image_free(&ds->cache[i]);
    free(ds->cache);
    ds->cache = NULL;
    return atomic_load(&job.oom) ? tlc_fail(err, "out of memory while caching the decoded images") : 0;
  }
  pthread_mutex_lock(&l->mu);
  drop_broken(l, ds);
  pthread_mutex_unlock(&l->mu);
  *budget -= atomic_load(&job.bytes);
  return 0;
}
