// clock.h: the bench programs' clocks. CPU time, not the wall clock, for what a kernel costs:
// on a machine shared with other work, the time the process actually ran (on 1 thread; on
// more, the sum over threads).
#ifndef TLC_BENCH_CLOCK_H
#define TLC_BENCH_CLOCK_H

#include <time.h>

static inline double clock_seconds(clockid_t clock) {
  struct timespec t;
  clock_gettime(clock, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static inline double cpu_now(void) { return clock_seconds(CLOCK_PROCESS_CPUTIME_ID); }
static inline double wall_now(void) { return clock_seconds(CLOCK_MONOTONIC); }

#endif
