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
  for (int i = 0; i < n->nin; i++)
    c.bufs[i] = x->buf[n->in[i]->id];
  if (!n->writes_inputs)
    c.bufs[n->nin] = x->buf[n->id];
  tlc_parallel_for(kir_parallel_extent(x->kernel[n->id]), run_range, &c);
}
