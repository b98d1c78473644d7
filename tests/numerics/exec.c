// exec.c: the numeric tests' executor (see exec.h).
#include "exec.h"

#include <dlfcn.h>
#include <stdlib.h>

void exec_node(Exec *x, const Node *n) {
  if (!x->fn[n->id] || n->writes_inputs)
    return;
  void *bufs[8];
  for (int i = 0; i < n->nin; i++)
    bufs[i] = x->buf[n->in[i]->id];
  bufs[n->nin] = x->buf[n->id];
  int64_t extent = kir_parallel_extent(x->kernel[n->id]);
  x->fn[n->id](bufs, 0, extent / 2);   // two chunks, as two threads would run it
  x->fn[n->id](bufs, extent / 2, extent);
}

double exec_forward(Exec *x) {
  for (int i = 0; i < x->g->n && x->g->nodes[i]->op != OP_XENT_GRAD; i++)   // the backward pass starts there
    exec_node(x, x->g->nodes[i]);
  const float *loss = x->buf[x->g->loss->id];
  double sum = 0;
  for (int64_t i = 0; i < x->g->loss->shape.n; i++)
    sum += loss[i];
  return sum / (double)x->g->loss->shape.n;
}

void exec_step(Exec *x) {
  for (int i = 0; i < x->g->n; i++)
    exec_node(x, x->g->nodes[i]);
}

Exec exec_build(Arena *a, const Graph *g, const char *dir) {
  Exec x = {.g = g};
  x.buf = arena_alloc(a, sizeof(void *) * (size_t)g->n);
  x.fn = arena_alloc(a, sizeof(KernelFn *) * (size_t)g->n);
  x.kernel = kernels_by_node(a, g, "");
  Kernel **all = arena_alloc(a, sizeof(Kernel *) * (size_t)g->n);
  int nk = 0;
  for (int i = 0; i < g->n; i++) {
    x.buf[i] = arena_alloc(a, (size_t)node_bytes(g->nodes[i]));
    if (x.kernel[i])
      all[nk++] = x.kernel[i];
  }
  const char *obj = arena_printf(a, "%s/step.o", dir), *so = arena_printf(a, "%s/step.so", dir);
  const char *error;
  if (kir_llvm_emit(all, nk, "native", obj, NULL, a, &error))
    fatal("%s", error);
  if (system(arena_printf(a, "cc -shared -o '%s' '%s'", so, obj)) != 0)
    fatal("linking %s failed", so);
  void *lib = dlopen(so, RTLD_NOW);
  if (!lib)
    fatal("%s", dlerror());
  for (int i = 0; i < g->n; i++)
    if (x.kernel[i])
      x.fn[i] = (KernelFn *)dlsym(lib, x.kernel[i]->name);
  return x;
}

Graph *exec_load_step(Arena *a, const char *path, bool training) {
  const char *include[] = {TLC_GRAPHS_DIR};
  Module *m = load_module(a, path, include, 1);
  Experiment *ex = experiment_load(a, m, NULL, 0);
  Graph *model = elaborate(a, m, ex->model, ex->batch);
  experiment_apply_freeze(ex, model);
  return train_build(a, model, ex, training);
}
