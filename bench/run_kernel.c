// run_kernel.c: see run_kernel.h.
#include "run_kernel.h"
#include "tlcrt.h"

typedef struct Call {
  KernelFn *fn;
  void *bufs[MAX_INPUTS + 1];
} Call;

static void run_range(void *ctx, int64_t begin, int64_t end) {
  Call *c = ctx;
  c->fn(c->bufs, begin, end);
}

void bench_run_kernel(Exec *x, const Node *n) {
  Call c = {.fn = x->fn[n->id]};
  exec_args(x, n, c.bufs);
  tlc_parallel_for(kir_parallel_extent(x->kernel[n->id]), run_range, &c);
}
