// pool.c: the CPU thread pool that runs kernels.
//
// Contract: tlc_pool_init(T) starts T-1 worker threads (T = 0: one per online core); the
// thread that calls tlc_parallel_for works too. tlc_parallel_for(n, fn, ctx) cuts [0, n)
// into pieces of `grain` consecutive indexes (about 8 pieces per thread; the cut depends
// only on n and T), which the threads take in order as each finishes its last, and returns
// when every piece is done. Which thread runs a piece varies from run to run; a kernel's
// iterations are independent, so its results do not. Taking pieces as they come keeps both
// threads busy when iterations cost unequally (tiles that skip work, a stride-2 gradient's
// phases), where a fixed half each would leave one waiting. Runs serially on the caller
// (one call, fn(ctx, 0, n)) when n < T, when the pool is not initialised, or when the pool
// is already busy: a nested call from inside fn, or a call from a second thread, cannot
// deadlock. init and shutdown are called by the trainer's main thread, never during a
// parallel_for.
//
// One job is in flight at a time; workers wait on a condition variable for the generation
// counter to move, which tells a new job from a spurious wakeup.
#include "tlcrt.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct PoolJob {
  TlcRangeFn fn;
  void *ctx;
  int64_t n, grain;     // the range and its pieces' length
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
  atomic_llong next;        // the first index of the current job's next piece
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER,
          .work = PTHREAD_COND_INITIALIZER,
          .done = PTHREAD_COND_INITIALIZER};

enum { PIECES_PER_THREAD = 8 };

static int64_t pool_grain(int64_t n, int threads) {
  int64_t grain = n / ((int64_t)threads * PIECES_PER_THREAD);
  return grain > 0 ? grain : 1;
}

// Runs pieces of the job until none is left.
static void pool_run_pieces(const PoolJob *job) {
  for (;;) {
    int64_t begin = atomic_fetch_add(&pool.next, job->grain);
    if (begin >= job->n)
      return;
    job->fn(job->ctx, begin, begin + job->grain < job->n ? begin + job->grain : job->n);
  }
}

static void *pool_worker(void *arg) {
  (void)arg;
  uint64_t seen = 0;  // init starts workers at generation 0, before any job is posted
  pthread_mutex_lock(&pool.mu);
  for (;;) {
    while (pool.generation == seen && !pool.stop)
      pthread_cond_wait(&pool.work, &pool.mu);
    if (pool.stop)
      break;
    seen = pool.generation;
    PoolJob job = pool.job;
    pthread_mutex_unlock(&pool.mu);
    pool_run_pieces(&job);
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
  pool.job = (PoolJob){fn, ctx, n, pool_grain(n, parts)};
  atomic_store(&pool.next, 0);
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
  PoolJob job = {fn, ctx, n, pool_grain(n, parts)};
  pool_run_pieces(&job);
  pthread_mutex_lock(&pool.mu);
  while (pool.pending > 0)
    pthread_cond_wait(&pool.done, &pool.mu);
  pool.busy = false;
  pthread_mutex_unlock(&pool.mu);
}
