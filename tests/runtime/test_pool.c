// test_pool.c: tlc_parallel_for covers [0, n) exactly once, in contiguous pieces that depend
// only on n and the thread count, taken by the threads as they come (unequal pieces are
// shared); sums match a serial loop; nested calls and calls without a pool run serially
// instead of deadlocking.
#include "check.h"
#include "tlcrt.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_CALLS = 64 };

typedef struct Range {
  int64_t begin, end;
  pthread_t thread;
} Range;

typedef struct Cover {
  uint8_t *hits;            // hits[i]: how many calls covered i
  _Atomic uint64_t sum;     // sum over covered i of i * i, mod 2^64
  atomic_int calls;
  Range ranges[MAX_CALLS];  // in call order, slot taken atomically
} Cover;

static void cover_range(void *ctx, int64_t begin, int64_t end) {
  Cover *c = ctx;
  uint64_t sum = 0;
  for (int64_t i = begin; i < end; i++) {
    c->hits[i]++;
    sum += (uint64_t)i * (uint64_t)i;
  }
  atomic_fetch_add(&c->sum, sum);
  int slot = atomic_fetch_add(&c->calls, 1);
  if (slot < MAX_CALLS)
    c->ranges[slot] = (Range){begin, end, pthread_self()};
}

static int range_cmp(const void *a, const void *b) {
  const Range *x = a, *y = b;
  return (x->begin > y->begin) - (x->begin < y->begin);
}

// Runs one parallel_for over n and checks coverage and the sum; returns the sorted ranges.
static int cover_run(int64_t n, Range *ranges) {
  Cover *c = calloc(1, sizeof *c);
  c->hits = calloc((size_t)(n > 0 ? n : 1), 1);
  tlc_parallel_for(n, cover_range, c);
  int once = 1;
  uint64_t serial = 0;
  for (int64_t i = 0; i < n; i++) {
    once &= c->hits[i] == 1;
    serial += (uint64_t)i * (uint64_t)i;
  }
  CHECK(once);
  CHECK(atomic_load(&c->sum) == serial);
  int calls = atomic_load(&c->calls);
  CHECK(calls <= MAX_CALLS);
  calls = calls < MAX_CALLS ? calls : MAX_CALLS;
  qsort(c->ranges, (size_t)calls, sizeof *c->ranges, range_cmp);
  memcpy(ranges, c->ranges, (size_t)calls * sizeof *ranges);
  free(c->hits);
  free(c);
  return calls;
}

static int distinct_threads(const Range *r, int calls) {
  int distinct = 0;
  for (int i = 0; i < calls; i++) {
    int seen = 0;
    for (int j = 0; j < i; j++)
      seen |= pthread_equal(r[i].thread, r[j].thread);
    distinct += !seen;
  }
  return distinct;
}

// Pieces are contiguous, in order, non-empty, of one length (the last one shorter), about 8
// per thread; a range shorter than the thread count is one call.
static void check_partition(int64_t n, const Range *r, int calls, int threads) {
  if (n < threads || threads == 1) {
    CHECK(calls == (n > 0));
    CHECK(n == 0 || (r[0].begin == 0 && r[0].end == n));
    return;
  }
  int64_t grain = n / (threads * 8) > 0 ? n / (threads * 8) : 1;
  int ok = 1;
  for (int i = 0; i < calls; i++) {
    ok &= r[i].begin < r[i].end;
    ok &= r[i].begin == (i == 0 ? 0 : r[i - 1].end);
    int64_t size = r[i].end - r[i].begin;
    ok &= i + 1 < calls ? size == grain : size <= grain && r[i].end == n;
  }
  CHECK(ok);
  CHECK(calls == (n + grain - 1) / grain);
}

// Makes pieces cost unequally (the first half ten times the second, about 0.1 s in all) so
// that the threads finish at different times and take pieces as they come.
static void uneven_range(void *ctx, int64_t begin, int64_t end) {
  volatile double x = 0;
  for (int64_t i = begin; i < end; i++)
    for (int r = 0; r < (i < 500 ? 200000 : 20000); r++)
      x = x + (double)r;
  cover_range(ctx, begin, end);
}

static void test_threads(int threads) {
  static const int64_t sizes[] = {0, 1, 2, 3, 7, 1000, 1000003};
  tlc_pool_init(threads);
  for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
    int64_t n = sizes[k];
    Range first[MAX_CALLS], second[MAX_CALLS];
    int calls = cover_run(n, first);
    check_partition(n, first, calls, threads);
    CHECK(cover_run(n, second) == calls);
    int same = 1;
    for (int i = 0; i < calls; i++)
      same &= first[i].begin == second[i].begin && first[i].end == second[i].end;
    CHECK(same);  // the same n and thread count give the same pieces
    CHECK(distinct_threads(first, calls) <= threads);
  }
  if (threads > 1) {   // uneven pieces: still each index once, and the work shared
    Cover *c = calloc(1, sizeof *c);
    c->hits = calloc(1000, 1);
    tlc_parallel_for(1000, uneven_range, c);
    int once = 1;
    for (int i = 0; i < 1000; i++)
      once &= c->hits[i] == 1;
    CHECK(once);
    int calls = atomic_load(&c->calls) < MAX_CALLS ? atomic_load(&c->calls) : MAX_CALLS;
    CHECK(distinct_threads(c->ranges, calls) > 1);
    free(c->hits);
    free(c);
  }
  tlc_pool_shutdown();
}

static void nested_range(void *ctx, int64_t begin, int64_t end) {
  Cover *inner = ctx;
  for (int64_t i = begin; i < end; i++)
    tlc_parallel_for(100, cover_range, &inner[i]);
}

static void test_nested(void) {
  tlc_pool_init(4);
  Cover *inner = calloc(8, sizeof *inner);
  uint8_t *hits = calloc(8 * 100, 1);
  for (int i = 0; i < 8; i++)
    inner[i].hits = hits + 100 * i;
  tlc_parallel_for(8, nested_range, inner);
  int ok = 1;
  for (int i = 0; i < 8 * 100; i++)
    ok &= hits[i] == 1;
  CHECK(ok);
  for (int i = 0; i < 8; i++)
    CHECK(atomic_load(&inner[i].calls) == 1);  // the pool was busy: each ran serially
  free(hits);
  free(inner);
  tlc_pool_shutdown();
}

static void test_without_pool(void) {
  Range r[MAX_CALLS];
  tlc_pool_shutdown();  // shutting down an uninitialised pool is harmless
  CHECK(cover_run(1000, r) == 1);
  CHECK(r[0].begin == 0 && r[0].end == 1000);
  tlc_pool_init(0);  // one per core
  tlc_pool_init(3);  // a second init restarts with the new count: pieces of 1000 / 24
  CHECK(cover_run(1000, r) == 1000 / 41 + 1);
  tlc_pool_shutdown();
}

int main(void) {
  test_threads(1);
  test_threads(2);
  test_threads(4);
  test_nested();
  test_without_pool();
  return check_report();
}
