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
// counter to move, which tells a new job from a spurious wakeup. Before they sleep, the workers
// and the caller waiting for them spin for up to SPIN_NS: a training step is hundreds of
// kernels back to back, many of them a few microseconds long, and waking a sleeping thread
// took about 75 microseconds a kernel on this project's 2-core machine (resnet18 at 32x32:
// the 20 batchnorm running-statistics updates took 0.04 ms a step on 1 thread, 1.55 ms on 2).
// The spin is bounded so that an idle pool, or one on a machine shared with other work, sleeps.
#include "tlcrt.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
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
  atomic_ullong posted;     // generation, for the workers' spin to read without the lock
  atomic_int pending;       // workers still running the current job
  PoolJob job;
  atomic_llong next;        // the first index of the current job's next piece
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER,
          .work = PTHREAD_COND_INITIALIZER,
          .done = PTHREAD_COND_INITIALIZER};

enum { PIECES_PER_THREAD = 8 };
enum { SPIN_NS = 200000 };

static int64_t monotonic_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Spins until done(arg) holds or SPIN_NS pass: a few pauses, then yielding the core, so that
// on a machine shared with other work the spin gives the core away rather than holding it
// (spinning alone, 2 threads ran 10% slower than 1 while a build used both cores).
static void spin_until(bool (*done)(uint64_t), uint64_t arg) {
  int64_t until = monotonic_ns() + SPIN_NS;
  for (int i = 1; !done(arg); i++) {
    if (i < 64) {
      cpu_relax();
      continue;
    }
    sched_yield();
    if (monotonic_ns() > until)
      return;
  }
}

static bool posted_after(uint64_t seen) { return atomic_load_explicit(&pool.posted, memory_order_acquire) != seen; }

static bool workers_finished(uint64_t unused) {
  (void)unused;
  return atomic_load_explicit(&pool.pending, memory_order_acquire) == 0;
}

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
  for (;;) {
    spin_until(posted_after, seen);
    pthread_mutex_lock(&pool.mu);
    while (pool.generation == seen && !pool.stop)
      pthread_cond_wait(&pool.work, &pool.mu);
    if (pool.stop)
      break;
    seen = pool.generation;
    PoolJob job = pool.job;
    pthread_mutex_unlock(&pool.mu);
    pool_run_pieces(&job);
    // The caller checks pending under the lock before it sleeps, so the signal, sent under
    // it, cannot fall between its check and its wait.
    if (atomic_fetch_sub(&pool.pending, 1) == 1) {
      pthread_mutex_lock(&pool.mu);
      pthread_cond_signal(&pool.done);
      pthread_mutex_unlock(&pool.mu);
    }
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
  atomic_store(&pool.posted, 0);
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
  atomic_store(&pool.pending, parts - 1);
  pool.generation++;
  atomic_store_explicit(&pool.posted, pool.generation, memory_order_release);
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
  spin_until(workers_finished, 0);
  pthread_mutex_lock(&pool.mu);
  while (atomic_load(&pool.pending) > 0)
    pthread_cond_wait(&pool.done, &pool.mu);
  pool.busy = false;
  pthread_mutex_unlock(&pool.mu);
}
