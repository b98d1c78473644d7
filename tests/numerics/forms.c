// forms.c: every kernel of a training step and of an evaluation pass in the GPU's form (block
// reductions, 16-byte accesses, bf16 tensor-core tiles), run through its CPU lowering, against
// the CPU's form of the same kernel from the same inputs; every buffer it writes must agree
// as `--check-gpu` requires of a GPU (1e-4 of the buffer's largest value, 2e-2 for bf16
// tiles). So the GPU's kernels are checked without a GPU, and so is the CPU meaning of
// each GPU construct.
//
// usage: forms SCRATCH_DIR MODEL.graph
#include "check.h"
#include "exec.h"

#include <math.h>
#include <string.h>
#include <sys/stat.h>

static const double float_tolerance = 1e-4, bf16_tolerance = 2e-2;

typedef struct Tally {
  int kernels, tiled, blocks;
  double worst_float, worst_bf16;
} Tally;

// The node's buffer that kernel buffer b is.
static const Node *buffer_node(const Node *n, int b) { return b < n->nin ? n->in[b] : n; }

static double relative_difference(const float *got, const float *want, int64_t count) {
  double diff = 0, scale = 0;
  for (int64_t i = 0; i < count; i++) {
    if (isnan(got[i]) != isnan(want[i]))
      return INFINITY;
    diff = fmax(diff, fabs((double)got[i] - want[i]));
    scale = fmax(scale, fabs((double)want[i]));
  }
  return scale > 0 ? diff / scale : diff;
}

static void compare(Exec *cpu, Exec *gpu, const Node *n, Tally *t) {
  const Kernel *k = gpu->kernel[n->id];
  double tolerance = k->bf16 ? bf16_tolerance : float_tolerance;
  for (int b = 0; b < kir_nparams(k); b++) {
    if (!k->bufs[b].written)
      continue;
    const Node *buf = buffer_node(n, b);
    bool same;
    double rel = 0;
    if (buf->is_int) {
      same = !memcmp(gpu->buf[buf->id], cpu->buf[buf->id], (size_t)node_bytes(buf));
    } else {
      rel = relative_difference(gpu->buf[buf->id], cpu->buf[buf->id], node_result_elems(buf));
      same = rel <= tolerance;
    }
    double *worst = k->bf16 ? &t->worst_bf16 : &t->worst_float;
    *worst = fmax(*worst, rel);
    CHECK(same);
    if (!same)
      fprintf(stderr, "  %s: buffer %d differs by %.3g of its largest value (tolerance %.0e)\n", k->name, b, rel,
              tolerance);
  }
}

static void check_pass(Arena *a, const char *dir, const char *path, bool training, Tally *t) {
  KernelTarget cpu_target = {.lanes = kir_llvm_lanes("native")};
  static const KernelTarget gpu_target = {.gpu = true, .tiles = true};
  const Graph *g = exec_load_step(a, path, training);
  const char *what = training ? "train" : "eval";
  mkdir(dir, 0755);
  Exec cpu = exec_build(a, g, arena_printf(a, "%s/%s-cpu", dir, what), &cpu_target);
  Exec gpu = exec_build(a, g, arena_printf(a, "%s/%s-gpu", dir, what), &gpu_target);
  exec_fill_generated(&cpu);
  for (int i = 0; i < g->n; i++) {
    const Node *n = g->nodes[i];
    if (!cpu.fn[i])
      continue;
    for (int j = 0; j < n->nin; j++)   // the same inputs on both sides
      memcpy(gpu.buf[n->in[j]->id], cpu.buf[n->in[j]->id], (size_t)node_bytes(n->in[j]));
    exec_run(&cpu, n);
    exec_run(&gpu, n);
    compare(&cpu, &gpu, n, t);
    t->kernels++;
    t->tiled += gpu.kernel[i]->bf16;
    t->blocks += gpu.kernel[i]->kind == KK_BLOCKS;
  }
}

int main(int argc, char **argv) {
  if (argc != 3)
    return 2;
  Arena *a = arena_new();
  Tally t = {0};
  check_pass(a, argv[1], argv[2], true, &t);
  check_pass(a, argv[1], argv[2], false, &t);
  printf("%s: %d kernels, %d in a GPU block form, %d of them on bf16 tiles; largest difference %.2e (float), %.2e (bf16)\n",
         argv[2], t.kernels, t.blocks, t.tiled, t.worst_float, t.worst_bf16);
  CHECK(t.tiled > 0 && t.blocks > t.tiled);
  return check_report();
}
