// run_kernel.h: a step node's kernel run on the thread pool, as a trainer runs it (the
// numeric tests' exec_run runs it in two fixed halves instead). For the bench programs that
// time kernels one by one (step_profile.c, blas_convs.c).
#ifndef TLC_BENCH_RUN_KERNEL_H
#define TLC_BENCH_RUN_KERNEL_H

#include "exec.h"

void bench_run_kernel(Exec *x, const Node *n);

#endif
