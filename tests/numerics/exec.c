// exec.c: the numeric tests' executor (see exec.h).
#include "exec.h"

#include <dlfcn.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void exec_args(const Exec *x, const Node *n, void **bufs) {
  int nbufs = 0;
  for (int i = 0; i < n->nin; i++)
    bufs[nbufs++] = x->buf[n->in[i]->id];
  if (!n->writes_inputs)
    bufs[nbufs++] = x->buf[n->id];
  const Node *apart = kernel_stats_node(x->g, x->bf16, n);   // fp32 statistics after a bf16 tensor
  if (apart)
    bufs[nbufs] = (char *)x->buf[apart->id] + value_stats_offset(x->g, apart, x->bf16);
}

void exec_run(Exec *x, const Node *n) {
  void *bufs[MAX_INPUTS + 2];
  exec_args(x, n, bufs);
  const Kernel *first = x->kernel[n->id]->pass1;
  if (first) {
    x->pass1[n->id](bufs, 0, kir_parallel_extent(first) / 2);
    x->pass1[n->id](bufs, kir_parallel_extent(first) / 2, kir_parallel_extent(first));
  }
  int64_t extent = kir_parallel_extent(x->kernel[n->id]);
  x->fn[n->id](bufs, 0, extent / 2);   // two chunks, as two threads would run it
  x->fn[n->id](bufs, extent / 2, extent);
}

void exec_node(Exec *x, const Node *n) {
  if (x->fn[n->id] && !n->writes_inputs)
    exec_run(x, n);
}

void exec_train_step(Exec *x) {
  for (int i = 0; i < x->g->n; i++)
    if (x->fn[i])
      exec_run(x, x->g->nodes[i]);
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

static const KernelTarget *target_from_environment(void) {
  static KernelTarget cpu = {0};
  static const KernelTarget gpu = {.gpu = true}, tiles = {.gpu = true, .tiles = true};
  cpu.lanes = kir_llvm_lanes("native");
  const char *env = getenv("TLC_TEST_KERNELS");
  if (!env || !*env || !strcmp(env, "cpu"))
    return &cpu;
  if (!strcmp(env, "gpu"))
    return &gpu;
  if (!strcmp(env, "gpu-tiles"))
    return &tiles;
  fatal("TLC_TEST_KERNELS takes cpu, gpu or gpu-tiles, found '%s'", env);
}

Exec exec_build(Arena *a, const Graph *g, const char *dir, const KernelTarget *target) {
  mkdir(dir, 0755);
  const KernelTarget *chosen = target ? target : target_from_environment();
  Exec x = {.g = g, .bf16 = chosen->bf16_activations};
  x.buf = arena_alloc(a, sizeof(void *) * (size_t)g->n);
  x.fn = arena_alloc(a, sizeof(KernelFn *) * (size_t)g->n);
  x.kernel = kernels_by_node(a, g, "", chosen);
  x.pass1 = arena_alloc(a, sizeof(KernelFn *) * (size_t)g->n);
  Kernel **all = arena_alloc(a, sizeof(Kernel *) * (size_t)(2 * g->n));
  int nk = 0;
  for (int i = 0; i < g->n; i++) {
    const Node *n = g->nodes[i];
    x.buf[i] = n->op == OP_VIEW ? (char *)x.buf[n->in[0]->id] + n->attr.view_offset * value_elem_bytes(g, n, x.bf16)
                                : arena_alloc(a, (size_t)node_bytes(n));
    for (Kernel *k = x.kernel[i]; k; k = k->pass1)
      all[nk++] = k;
  }
  const char *obj = arena_printf(a, "%s/step.o", dir), *so = arena_printf(a, "%s/step.so", dir);
  const char *error;
  if (kir_llvm_emit(all, nk, "native", obj, NULL, a, &error))
    fatal("%s", error);
  // Block kernels call the runtime's warp operations: the object gets its own copy.
  if (system(arena_printf(a, "cc -O2 -shared -fPIC -I'%s' -o '%s' '%s' '%s/kir_cpu.c'", TLC_RUNTIME_DIR, so, obj,
                          TLC_RUNTIME_DIR)) != 0)
    fatal("linking %s failed", so);
  void *lib = dlopen(so, RTLD_NOW);
  if (!lib)
    fatal("%s", dlerror());
  for (int i = 0; i < g->n; i++)
    if (x.kernel[i]) {
      x.fn[i] = (KernelFn *)dlsym(lib, x.kernel[i]->name);
      x.pass1[i] = x.kernel[i]->pass1 ? (KernelFn *)dlsym(lib, x.kernel[i]->pass1->name) : NULL;
    }
  return x;
}

Graph *exec_load_step(Arena *a, const char *path, bool training) {
  const char *include[] = {TLC_GRAPHS_DIR};
  Module *m = load_module(a, path, include, 1);
  Recipe *r = recipe_load(a, m, NULL, 0);
  Graph *model = elaborate(a, m, r->model, r->batch);
  recipe_bind(a, r, model);
  return train_build(a, model, r, training);
}

// The deterministic weights and inputs tests/numerics/make_fixtures.py gives PyTorch.
static uint64_t fnv1a64(const char *s) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 0x100000001B3ull;
  return h;
}

static uint64_t splitmix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static float u(uint64_t base, int64_t i) { return (float)((double)(splitmix64(base ^ (uint64_t)i) >> 40) / (double)(1 << 23) - 1.0); }

static void fill_param(const Node *n, float *v) {
  const Param *p = n->param;
  uint64_t base = fnv1a64(p->name);
  int64_t count = shape_elems(n->shape);
  const char *leaf = strrchr(p->name, '.') + 1;
  bool bn = p->owner->op == OP_BATCHNORM;
  const Node *o = p->owner;
  double fan_in = o->op == OP_CONV2D ? (double)(o->in[0]->shape.c / o->attr.conv.groups * o->attr.conv.kernel * o->attr.conv.kernel)
                                     : (double)o->in[0]->shape.c;
  for (int64_t i = 0; i < count && !n->is_int; i++) {
    float x = u(base, i);
    if (!bn)
      v[i] = (float)(x / sqrt(fan_in));
    else if (!strcmp(leaf, "weight"))
      v[i] = 1 + 0.1f * x;
    else if (!strcmp(leaf, "running_var"))
      v[i] = 1 + 0.5f * fabsf(x);
    else
      v[i] = 0.1f * x;
  }
}

void exec_fill_generated(Exec *x) {
  const Graph *g = x->g;
  for (int i = 0; i < g->n; i++) {
    const Node *n = g->nodes[i];
    if (n->op == OP_PARAM)
      fill_param(n, x->buf[i]);
  }
  float *images = x->buf[g->images->id];
  uint64_t base = fnv1a64("input");
  for (int64_t i = 0; i < shape_elems(g->images->shape); i++)
    images[i] = u(base, i);
  int64_t *labels = x->buf[g->labels->id];
  for (int64_t n = 0; n < g->labels->shape.n; n++)
    labels[n] = (3 * n + 1) % g->logits->shape.c;
  int64_t *seed = x->buf[g->nodes[0]->id];
  seed[0] = 0, seed[1] = 1;
}

