// pool.c: the CPU thread pool that runs kernels.
//
// Contract: tlc_pool_init(T) starts T-1 worker threads (T = 0: one per online core); the
// thread that calls tlc_parallel_for runs one chunk itself. tlc_parallel_for(n, fn, ctx)
// cuts [0, n) into T contiguous chunks, chunk i on worker i, and returns when every chunk
// is done. The cut depends only on n and T, so a kernel that writes per-chunk partial
// results sees the same ranges on every run. Runs serially on the caller (one call,
// fn(ctx, 0, n)) when n < T, when the pool is not initialised, or when the pool is already
// busy: a nested call from inside fn, or a call from a second thread, cannot deadlock.
// init and shutdown are called by the trainer's main thread, never during a parallel_for.
//
// One job is in flight at a time; workers wait on a condition variable for the generation
// counter to move, which tells a new job from a spurious wakeup.
#include "tlcrt.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct PoolJob {
  TlcRangeFn fn;
  void *ctx;
  int64_t n;
} PoolJob;

static struct {
  pthread_mutex_t mu;
  pthread_cond_t work;      // signalled when generation moves or stop is set
  pthread_cond_t done;      // signalled when pending reaches 0
  pthread_t *workers;       // threads - 1 of them
  int threads;              // chunks per job, the caller included; 0: not initialised
  bool busy;                // a job is in flight
  bool stop;                // workers exit at their next wakeup
  uint64_t generation;      // jobs posted since init
  int pending;              // workers still running the current job
  PoolJob job;
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER,
          .work = PTHREAD_COND_INITIALIZER,
          .done = PTHREAD_COND_INITIALIZER};

// Chunk i of [0, n) in `parts` parts: the first n % parts chunks are one longer.
static void pool_chunk(int64_t n, int parts, int i, int64_t *begin, int64_t *end) {
  int64_t base = n / parts, extra = n % parts;
  *begin = i * base + (i < extra ? i : extra);
  *end = *begin + base + (i < extra ? 1 : 0);
}

static void pool_run_chunk(const PoolJob *job, int parts, int i) {
  int64_t begin, end;
  pool_chunk(job->n, parts, i, &begin, &end);
  if (begin < end)
    job->fn(job->ctx, begin, end);
}

static void *pool_worker(void *arg) {
  int index = (int)(intptr_t)arg;
  uint64_t seen = 0;  // init starts workers at generation 0, before any job is posted
  pthread_mutex_lock(&pool.mu);
  for (;;) {
    while (pool.generation == seen && !pool.stop)
      pthread_cond_wait(&pool.work, &pool.mu);
    if (pool.stop)
      break;
    seen = pool.generation;
    PoolJob job = pool.job;
    int parts = pool.threads;
    pthread_mutex_unlock(&pool.mu);
    pool_run_chunk(&job, parts, index);
    pthread_mutex_lock(&pool.mu);
    if (--pool.pending == 0)
      pthread_cond_signal(&pool.done);
  }
  pthread_mutex_unlock(&pool.mu);
  return NULL;
}

static int pool_default_threads(void) {
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  return cores > 0 ? (int)cores : 1;
}

void tlc_pool_init(int threads) {
  tlc_pool_shutdown();  // a second init restarts the pool with the new count
  if (threads <= 0)
    threads = pool_default_threads();
  pool.workers = calloc((size_t)threads, sizeof *pool.workers);
  if (!pool.workers)
    return;  // stays uninitialised: every parallel_for runs serially, still correct
  pool.generation = 0;
  pool.stop = false;
  pool.busy = false;
  int started = 1;
  // A thread that cannot be created shrinks the pool rather than failing the trainer.
  while (started < threads &&
         pthread_create(&pool.workers[started - 1], NULL, pool_worker, (void *)(intptr_t)started) == 0)
    started++;
  pthread_mutex_lock(&pool.mu);
  pool.threads = started;
  pthread_mutex_unlock(&pool.mu);
}

void tlc_pool_shutdown(void) {
  pthread_mutex_lock(&pool.mu);
  int workers = pool.threads > 0 ? pool.threads - 1 : 0;
  pool.stop = true;
  pthread_cond_broadcast(&pool.work);
  pthread_mutex_unlock(&pool.mu);
  for (int i = 0; i < workers; i++)
    pthread_join(pool.workers[i], NULL);
  free(pool.workers);
  pool.workers = NULL;
  pool.threads = 0;
}

// Posts the job to the workers if the pool can take it; returns the chunk count, or 0 when
// the caller must run the whole range itself.
static int pool_post(int64_t n, TlcRangeFn fn, void *ctx) {
  pthread_mutex_lock(&pool.mu);
  int parts = pool.threads;
  if (parts <= 1 || pool.busy || n < parts) {
    pthread_mutex_unlock(&pool.mu);
    return 0;
  }
  pool.busy = true;
  pool.job = (PoolJob){fn, ctx, n};
  pool.pending = parts - 1;
  pool.generation++;
  pthread_cond_broadcast(&pool.work);
  pthread_mutex_unlock(&pool.mu);
  return parts;
}

void tlc_parallel_for(int64_t n, TlcRangeFn fn, void *ctx) {
  if (n <= 0)
    return;  // an empty range calls nothing
  int parts = pool_post(n, fn, ctx);
  if (parts == 0) {
    fn(ctx, 0, n);
    return;
  }
  PoolJob job = {fn, ctx, n};
  pool_run_chunk(&job, parts, 0);
  pthread_mutex_lock(&pool.mu);
  while (pool.pending > 0)
    pthread_cond_wait(&pool.done, &pool.mu);
  pool.busy = false;
  pthread_mutex_unlock(&pool.mu);
}
