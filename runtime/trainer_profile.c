// trainer_profile.c: --profile. Every step runs kernel by kernel from the step's call table,
// each timed on the device the run uses (on a GPU, each launch is waited for, so a kernel's
// time includes its launch: a few microseconds); at the end, the kernels that took the most
// time, and OUT/profile.tsv with every kernel. It finds what is worth speeding up, on any
// device, from the trainer users run.
#include "trainer_internal.h"

#include <stdlib.h>
#include <string.h>

struct TlcProfile {
  const TlcSteps *calls;   // the call tables the times are of
  double *seconds[2];      // per call: training step, evaluation pass
  int64_t steps[2];
};

static int ensure(TlcRun *run, const TlcSteps *steps, TlcError *err) {
  if (run->profile)
    return 0;
  run->profile = calloc(1, sizeof *run->profile);
  if (run->profile) {
    run->profile->calls = steps;
    run->profile->seconds[0] = calloc((size_t)steps->ntrain_calls + 1, sizeof(double));
    run->profile->seconds[1] = calloc((size_t)steps->neval_calls + 1, sizeof(double));
  }
  if (!run->profile || !run->profile->seconds[0] || !run->profile->seconds[1])
    return tlc_fail(err, "out of memory");
  return 0;
}

static int run_call(TlcRun *run, const TlcKernelCall *c, TlcError *err) {
  if (!run->gpu) {
    void *bufs[TLC_MAX_BUFFERS];
    for (int b = 0; b < c->nbufs; b++)
      bufs[b] = run->arena + c->offset[b];
    tlc_parallel_for(c->extent, c->cpu, bufs);
    return 0;
  }
  trainer_launch_call(run->gpu, c);   // a two-pass reduction timed as one, a run of updates at its first
  return tlc_gpu_sync(run->gpu, err);
}

int trainer_profile_step(TlcRun *run, const TlcSteps *steps, bool training, TlcError *err) {
  if (ensure(run, steps, err))
    return -1;
  const TlcKernelCall *calls = training ? steps->train_calls : steps->eval_calls;
  int n = training ? steps->ntrain_calls : steps->neval_calls;
  double *seconds = run->profile->seconds[!training];
  for (int i = 0; i < n; i++) {
    double start = trainer_now();
    if (run_call(run, &calls[i], err))
      return -1;
    seconds[i] += trainer_now() - start;
  }
  run->profile->steps[!training]++;
  return 0;
}

typedef struct Row {
  const TlcKernelCall *call;
  double seconds;
  int pass;
} Row;

static int slowest_first(const void *a, const void *b) {
  const Row *x = a, *y = b;
  return (x->seconds < y->seconds) - (x->seconds > y->seconds);
}

void trainer_profile_report(TlcRun *run) {
  TlcProfile *p = run->profile;
  if (!p)
    return;
  const TlcSteps *steps = p->calls;
  int n[2] = {steps->ntrain_calls, steps->neval_calls};
  Row *rows = calloc((size_t)(n[0] + n[1]) + 1, sizeof *rows);
  if (!rows)
    return;
  int nrows = 0;
  double total[2] = {0, 0};
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < n[pass]; i++) {
      const TlcKernelCall *c = pass ? &steps->eval_calls[i] : &steps->train_calls[i];
      rows[nrows++] = (Row){c, p->seconds[pass][i], pass};
      total[pass] += p->seconds[pass][i];
    }
  qsort(rows, (size_t)nrows, sizeof *rows, slowest_first);
  const char *device = run->gpu ? tlc_gpu_name(run->gpu) : "cpu";
  printf("profile: %s; %lld training steps, %.1f ms each; %lld evaluation batches, %.1f ms each\n", device,
         (long long)p->steps[0], p->steps[0] ? 1e3 * total[0] / (double)p->steps[0] : 0.0, (long long)p->steps[1],
         p->steps[1] ? 1e3 * total[1] / (double)p->steps[1] : 0.0);
  for (int i = 0; i < nrows && i < 15; i++) {
    int pass = rows[i].pass;
    double share = total[pass] > 0 ? 100 * rows[i].seconds / total[pass] : 0;
    printf("profile: %5.1f%% of the %s  %8.3f ms  %s\n", share, pass ? "evaluation" : "training step",
           p->steps[pass] ? 1e3 * rows[i].seconds / (double)p->steps[pass] : 0.0, rows[i].call->name);
  }
  char path[4096];
  FILE *f = (size_t)snprintf(path, sizeof path, "%s/profile.tsv", run->out_dir) < sizeof path ? fopen(path, "w") : NULL;
  if (f) {
    fprintf(f, "pass\tkernel\tms_per_step\tshare\n");
    for (int i = 0; i < nrows; i++) {
      int pass = rows[i].pass;
      fprintf(f, "%s\t%s\t%.4f\t%.4f\n", pass ? "eval" : "train", rows[i].call->name,
              p->steps[pass] ? 1e3 * rows[i].seconds / (double)p->steps[pass] : 0.0,
              total[pass] > 0 ? rows[i].seconds / total[pass] : 0.0);
    }
    fclose(f);
    printf("profile: every kernel in %s\n", path);
  }
  free(rows);
}

void trainer_profile_free(TlcRun *run) {
  if (!run->profile)
    return;
  free(run->profile->seconds[0]);
  free(run->profile->seconds[1]);
  free(run->profile);
  run->profile = NULL;
}
