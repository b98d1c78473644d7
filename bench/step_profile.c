// step_profile.c: where a training step's time goes, kernel by kernel, on the CPU. Builds the
// step of a .graph with the numeric tests' executor (tests/numerics/exec.c: every kernel
// through LLVM for this machine), fills it with the tests' generated weights and images, runs
// it twice, then times each kernel REPS times on the thread pool and prints the kernels by
// their best CPU time with the GFLOPS of the matrix products (2 x multiply-adds / CPU time) and,
// on more than one thread, the wall time and how much of the threads it kept busy (CPU time
// over wall time: 2.0 on 2 threads is perfect scaling, up to the pool's spinning).
//
//   build/bench/step_profile SCRATCH_DIR FILE.graph [THREADS] [REPS] [ONLY]
// (ONLY: time only the kernels whose description contains it)
#include "clock.h"
#include "exec.h"
#include "run_kernel.h"
#include "tlcrt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct Timing {
  const Node *n;
  const char *what;
  double seconds, wall, flops;
} Timing;

// Multiply-adds of a convolution (forward, dx or dw alike) or linear layer node, times 2.
static double flops(const Node *n) {
  const Node *f = n->forward;
  switch (n->op) {
  case OP_CONV2D:
  case OP_CONV2D_DX:
  case OP_CONV2D_DW: {
    const ConvAttrs *c = &f->attr.conv;
    return 2.0 * (double)shape_elems(f->shape) * (double)(f->in[0]->shape.c / c->groups * c->kernel * c->kernel);
  }
  case OP_LINEAR:
  case OP_LINEAR_DX:
  case OP_LINEAR_DW: return 2.0 * (double)shape_elems(f->shape) * (double)f->in[0]->shape.c;
  default: return 0;
  }
}

static int by_time(const void *a, const void *b) {
  double d = ((const Timing *)b)->seconds - ((const Timing *)a)->seconds;
  return (d > 0) - (d < 0);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: step_profile SCRATCH_DIR FILE.graph [THREADS] [REPS]\n");
    return 2;
  }
  int threads = argc > 3 ? atoi(argv[3]) : 1, reps = argc > 4 ? atoi(argv[4]) : 3;
  const char *only = argc > 5 ? argv[5] : "";
  Arena *a = arena_new();
  const Graph *g = exec_load_step(a, argv[2], true);
  Exec x = exec_build(a, g, argv[1], NULL);
  exec_fill_generated(&x);
  tlc_pool_init(threads);
  Timing *t = calloc((size_t)g->n, sizeof *t);
  int nt = 0;
  double total = 0, total_wall = 0, total_flops = 0;
  for (int warm = 0; warm < 2; warm++)
    for (int i = 0; i < g->n; i++)
      if (x.fn[i])
        bench_run_kernel(&x, g->nodes[i]);
  for (int i = 0; i < g->n; i++) {
    const Node *n = g->nodes[i];
    if (!x.fn[i] || !strstr(x.kernel[i]->comment, only))
      continue;
    t[nt] = (Timing){n, x.kernel[i]->comment, 1e30, 1e30, flops(n)};
    for (int r = 0; r < reps; r++) {   // the best of REPS: other work on the machine only adds time
      double start = cpu_now(), wall_start = wall_now();
      bench_run_kernel(&x, n);
      double seconds = cpu_now() - start, wall = wall_now() - wall_start;
      t[nt].seconds = seconds < t[nt].seconds ? seconds : t[nt].seconds;
      t[nt].wall = wall < t[nt].wall ? wall : t[nt].wall;
    }
    total += t[nt].seconds;
    total_wall += t[nt].wall;
    total_flops += t[nt].flops;
    nt++;
  }
  qsort(t, (size_t)nt, sizeof *t, by_time);
  printf("step: %.1f ms, %d kernels, %.1f GFLOP in matrix products at %.1f GFLOPS over the whole step, %d threads\n",
         total * 1e3, nt, total_flops * 1e-9, total_flops / total * 1e-9, threads);
  if (threads > 1)
    printf("wall: %.1f ms, the threads %.2f busy\n", total_wall * 1e3, total / total_wall);
  for (int i = 0; i < nt; i++) {
    printf("%8.2f ms %5.1f%%", t[i].seconds * 1e3, 100 * t[i].seconds / total);
    if (threads > 1)
      printf(" %8.2f ms wall %4.2f busy", t[i].wall * 1e3, t[i].seconds / t[i].wall);
    if (t[i].flops > 0)
      printf(" %6.1f GFLOPS", t[i].flops / t[i].seconds * 1e-9);
    else
      printf("              ");
    printf("  %s\n", t[i].what);
  }
  return 0;
}
