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
// full and the replacement is the same on every run.
#include "tlcrt.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { LOADER_MAX_SETS = 8 };

typedef struct Broken {
  const TlcDataset *ds;
  uint8_t *flags;       // ds->count, 1 where the file did not decode
} Broken;

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
  Broken broken[LOADER_MAX_SETS];
  int64_t skipped;
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

static void sample_rng(const TlcLoader *l, int epoch, int64_t index, TlcRng *r) {
  uint64_t h = mix(l->cfg.seed + 0x9e3779b97f4a7c15u);
  h = mix(h + (uint64_t)(uint32_t)epoch + 0x632be59bd9b4e019u);
  h = mix(h + (uint64_t)index);
  tlc_rng_seed(r, h);
}

//
// Broken files (the mutex is held)
//

static uint8_t *broken_flags(TlcLoader *l, const TlcDataset *ds, bool create) {
  for (int i = 0; i < LOADER_MAX_SETS; i++) {
    if (l->broken[i].ds == ds)
      return l->broken[i].flags;
    if (!l->broken[i].ds && create) {
      l->broken[i].flags = calloc((size_t)ds->count, 1);
      l->broken[i].ds = l->broken[i].flags ? ds : NULL;
      return l->broken[i].flags;
    }
  }
  return NULL;
}

static bool is_broken(TlcLoader *l, const TlcDataset *ds, int64_t i) {
  pthread_mutex_lock(&l->mu);
  uint8_t *flags = broken_flags(l, ds, false);
  bool b = flags && flags[i];
  pthread_mutex_unlock(&l->mu);
  return b;
}

static void mark_broken(TlcLoader *l, const TlcDataset *ds, int64_t i, const TlcError *why) {
  pthread_mutex_lock(&l->mu);
  uint8_t *flags = broken_flags(l, ds, true);
  if (!flags || !flags[i]) {
    fprintf(stderr, "warning: %s; the image is skipped\n", why->msg);
    l->skipped++;
  }
  if (flags)
    flags[i] = 1;
  pthread_mutex_unlock(&l->mu);
}

int64_t tlc_loader_skipped(const TlcLoader *l) { return l->skipped; }

//
// One sample
//

// Image i of ds: in memory and cached images are borrowed, files are decoded (*owned).
static int fetch(const TlcDataset *ds, int64_t i, TlcImage *img, bool *owned, TlcError *err) {
  *owned = false;
  if (ds->pixels) {
    size_t size = (size_t)ds->channels * ds->height * ds->width;
    *img = (TlcImage){ds->width, ds->height, ds->channels, ds->pixels + (size_t)i * size};
    return 0;
  }
  if (ds->cache && ds->cache[i].pixels) {
    *img = ds->cache[i];
    return 0;
  }
  *owned = true;
  return tlc_image_read(ds->paths[i], img, err);
}

static int run_sample(TlcLoader *l, const TlcDataset *ds, int64_t index, const TlcTransform *tf, int ntf, int epoch,
                      TlcTransformScratch *scratch, float *out, int32_t *label, TlcError *err) {
  TlcImage img = {0};
  bool owned = false;
  int64_t j = index;
  for (int64_t tries = 0;; tries++, j = (j + 1) % ds->count) {
    if (tries == ds->count)
      return tlc_fail(err, "no image of the data set could be decoded (the first was %s)",
                      ds->paths ? ds->paths[index] : "?");
    if (ds->paths && is_broken(l, ds, j))
      continue;
    TlcError why;
    if (fetch(ds, j, &img, &owned, &why) == 0)
      break;
    mark_broken(l, ds, j, &why);
  }
  TlcRng rng;
  sample_rng(l, epoch, index, &rng);
  const TlcLoaderConfig *c = &l->cfg;
  int rc = tlc_transform_run(tf, ntf, &img, &rng, scratch, out, c->channels, c->height, c->width, err);
  if (owned)
    tlc_image_free(&img);
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
    free(l->broken[i].flags);
  pthread_mutex_destroy(&l->mu);
  pthread_cond_destroy(&l->work);
  pthread_cond_destroy(&l->done);
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
    if (tlc_image_read(ds->paths[i], &ds->cache[i], &why) != 0) {
      if (strstr(why.msg, "out of memory"))
        atomic_store(&job->oom, true);
      else
        mark_broken(job->l, ds, i, &why);
      continue;
    }
    int64_t size = (int64_t)ds->cache[i].width * ds->cache[i].height * ds->cache[i].channels;
    if (atomic_fetch_add(&job->bytes, size) + size > job->budget)
      atomic_store(&job->over, true);
  }
}

// Removes the samples whose files are marked broken (their cache entries are empty).
static void drop_broken(TlcLoader *l, TlcDataset *ds) {
  uint8_t *flags = broken_flags(l, ds, false);
  if (!flags)
    return;
  int64_t kept = 0;
  for (int64_t i = 0; i < ds->count; i++) {
    if (flags[i]) {
      free(ds->paths[i]);
      continue;
    }
    ds->paths[kept] = ds->paths[i], ds->labels[kept] = ds->labels[i], ds->cache[kept] = ds->cache[i];
    kept++;
  }
  ds->count = kept;
  // The flags describe the old numbering: forget them.
  for (int i = 0; i < LOADER_MAX_SETS; i++)
    if (l->broken[i].ds == ds) {
      free(l->broken[i].flags);
      l->broken[i] = (Broken){0};
    }
}

int tlc_loader_cache(TlcLoader *l, TlcDataset *ds, int64_t *budget, TlcError *err) {
  if (!ds->paths || ds->count == 0 || ds->cache)
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
