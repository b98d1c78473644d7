// bn_stats.c: batchnorm's batch statistics against a two-pass computation in double
// precision here. A convolution before a batchnorm writes the statistics of chunks of its
// output rows and bn_stats merges them (kernels_gemm.c, kernels_norm.c); the graph should
// include chunks that do not divide the rows, which this test asserts.
//
// usage: bn_stats SCRATCH_DIR FILE.graph
#include "check.h"
#include "exec.h"

#include <math.h>

static const double tolerance = 1e-5;   // relative: float32 sums of a few hundred terms

// Checks the [2,C] statistics n computed from its input: the mean, then 1/sqrt(var + eps).
static void check_stats(Exec *x, const Node *n) {
  const Node *in = n->in[0];
  const float *v = x->buf[in->id], *got = x->buf[n->id];
  Shape s = in->shape;
  int64_t hw = s.h * s.w, count = s.n * hw;
  for (int64_t c = 0; c < s.c; c++) {
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < s.n; i++)
      for (int64_t p = 0; p < hw; p++)
        sum += v[(i * s.c + c) * hw + p];
    double mean = sum / (double)count;
    for (int64_t i = 0; i < s.n; i++)
      for (int64_t p = 0; p < hw; p++)
        sq += (v[(i * s.c + c) * hw + p] - mean) * (v[(i * s.c + c) * hw + p] - mean);
    double invstd = 1 / sqrt(sq / (double)count + n->attr.bn.eps);
    bool ok = fabs(got[c] - mean) <= tolerance * fmax(1, fabs(mean)) &&
              fabs(got[s.c + c] - invstd) <= tolerance * invstd;
    CHECK(ok);
    if (!ok)
      fprintf(stderr, "  %s channel %lld: mean %.7g invstd %.7g, expected %.7g %.7g\n", n->name, (long long)c, got[c],
              got[s.c + c], mean, invstd);
  }
}

int main(int argc, char **argv) {
  if (argc != 3)
    return 2;
  Arena *a = arena_new();
  Exec x = exec_build(a, exec_load_step(a, argv[2], true), argv[1], NULL);
  const Graph *step = x.g;
  exec_fill_generated(&x);
  exec_forward(&x);
  int merged = 0, ragged = 0;
  for (int i = 0; i < step->n; i++) {
    const Node *n = step->nodes[i];
    if (n->op != OP_BN_STATS)
      continue;
    check_stats(&x, n);
    const Node *conv = n->in[0];
    int64_t chunk = conv->fused.stats_rows;
    merged += chunk > 0;
    ragged += chunk > 0 && conv->shape.n * conv->shape.h * conv->shape.w % chunk != 0;
  }
  printf("%s: %d batchnorms merge their convolution's chunks, %d with a last chunk that is short\n", argv[2], merged,
         ragged);
  CHECK(merged > 0 && ragged > 0);
  return check_report();
}
