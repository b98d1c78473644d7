// forms.c: every kernel of a training step and of an evaluation pass in the GPU's form (block
// reductions, 16-byte accesses, bf16 tensor-core tiles), run through its CPU lowering, against
// the CPU's form of the same kernel from the same inputs; every buffer it writes must agree
// as `--check-gpu` requires of a GPU (1e-4 of the buffer's largest value, 2e-2 for bf16
// tiles). So the GPU's kernels are checked without a GPU, and so is the CPU meaning of
// each GPU construct.
//
// With bf16, the GPU's kernels keep activations in bf16 as under precision "bf16"
// (compiler/storage.c): an input the GPU holds in bf16 is rounded to it on both sides, as
// `--check-gpu` does, so that both kernels read the same values, and a kernel with a bf16
// buffer is compared within bf16's tolerance.
//
// usage: forms SCRATCH_DIR MODEL.graph [bf16]
#include "check.h"
#include "exec.h"

#include <math.h>
#include <string.h>
#include <sys/stat.h>

static const double float_tolerance = 1e-4, bf16_tolerance = 2e-2;

typedef struct Tally {
  int kernels, tiled, blocks;
  int bf16_buffers;     // kernels with a buffer in bf16
  double worst_float, worst_bf16;
} Tally;

// The node's buffer that kernel buffer b is.
static const Node *buffer_node(const Node *n, int b) { return b < n->nin ? n->in[b] : n; }

// Round to nearest even on the top 16 bits, as the GPU's tlc_f2bf stores (a NaN stays a NaN).
static uint16_t bf16_of(float f) {
  uint32_t bits;
  memcpy(&bits, &f, 4);
  if (isnan(f))
    return (uint16_t)(bits >> 16 | 0x40);
  uint32_t rounding = 0x7fff + (bits >> 16 & 1);
  return (uint16_t)((bits + rounding) >> 16);
}

static float float_of(uint16_t h) {
  uint32_t bits = (uint32_t)h << 16;
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

// Whether the GPU exec holds node v's tensor in bf16.
static bool held_bf16(const Exec *gpu, const Node *v) { return gpu->bf16 && !v->is_int && value_bf16(gpu->g, v); }

// Node v's value from the CPU's buffer into the GPU's: a bf16 tensor rounded on both sides,
// the chunk statistics after it (fp32) at value_stats_offset.
static void copy_to_gpu(Exec *cpu, Exec *gpu, const Node *v) {
  if (!held_bf16(gpu, v)) {
    memcpy(gpu->buf[v->id], cpu->buf[v->id], (size_t)node_bytes(v));
    return;
  }
  float *f = cpu->buf[v->id];
  uint16_t *h = gpu->buf[v->id];
  int64_t elems = shape_elems(v->shape);
  for (int64_t i = 0; i < elems; i++)
    f[i] = float_of(h[i] = bf16_of(f[i]));
  int64_t tail = node_elems(v) - elems;
  if (tail)
    memcpy((char *)gpu->buf[v->id] + value_stats_offset(gpu->g, v, true), f + elems, (size_t)tail * 4);
}

// Node v's result as the GPU exec left it, as floats (its partial sums left out).
static const float *gpu_result(Exec *gpu, const Node *v, float *scratch) {
  if (!held_bf16(gpu, v))
    return gpu->buf[v->id];
  const uint16_t *h = gpu->buf[v->id];
  int64_t elems = shape_elems(v->shape);
  for (int64_t i = 0; i < elems; i++)
    scratch[i] = float_of(h[i]);
  int64_t tail = node_result_elems(v) - elems;
  if (tail)
    memcpy(scratch + elems, (char *)gpu->buf[v->id] + value_stats_offset(gpu->g, v, true), (size_t)tail * 4);
  return scratch;
}

// A kernel is compared within bf16's tolerance when it multiplies in bf16 or has a bf16 buffer.
static bool checked_as_bf16(const Kernel *k) {
  bool bf16 = k->bf16;
  for (int b = 0; b < kir_nparams(k); b++)
    bf16 |= k->bufs[b].type == KT_BF16;
  return bf16;
}

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

static void compare(Exec *cpu, Exec *gpu, const Node *n, float *scratch, Tally *t) {
  const Kernel *k = gpu->kernel[n->id];
  bool bf16 = checked_as_bf16(k);
  double tolerance = bf16 ? bf16_tolerance : float_tolerance;
  for (int b = 0; b <= n->nin && b < kir_nparams(k); b++) {   // not the statistics apart: their tensor's
    if (!k->bufs[b].written)
      continue;
    const Node *buf = buffer_node(n, b);
    bool same;
    double rel = 0;
    if (buf->is_int) {
      same = !memcmp(gpu->buf[buf->id], cpu->buf[buf->id], (size_t)node_bytes(buf));
    } else {
      rel = relative_difference(gpu_result(gpu, buf, scratch), cpu->buf[buf->id], node_result_elems(buf));
      same = rel <= tolerance;
    }
    double *worst = bf16 ? &t->worst_bf16 : &t->worst_float;
    *worst = fmax(*worst, rel);
    CHECK(same);
    if (!same)
      fprintf(stderr, "  %s: buffer %d differs by %.3g of its largest value (tolerance %.0e)\n", k->name, b, rel,
              tolerance);
  }
}

static void check_pass(Arena *a, const char *dir, const char *path, bool training, bool bf16, Tally *t) {
  KernelTarget cpu_target = {.lanes = kir_llvm_lanes("native")};
  KernelTarget gpu_target = {.gpu = true, .tiles = true, .bf16_activations = bf16};
  const Graph *g = exec_load_step(a, path, training);
  const char *what = training ? "train" : "eval";
  mkdir(dir, 0755);
  Exec cpu = exec_build(a, g, arena_printf(a, "%s/%s-cpu", dir, what), &cpu_target);
  Exec gpu = exec_build(a, g, arena_printf(a, "%s/%s-gpu", dir, what), &gpu_target);
  exec_fill_generated(&cpu);
  int64_t largest = 0;
  for (int i = 0; i < g->n; i++)
    largest = node_elems(g->nodes[i]) > largest ? node_elems(g->nodes[i]) : largest;
  float *scratch = arena_alloc(a, (size_t)largest * sizeof(float));
  for (int i = 0; i < g->n; i++) {
    const Node *n = g->nodes[i];
    if (!cpu.fn[i])
      continue;
    for (int j = 0; j < n->nin; j++)   // the same inputs on both sides
      copy_to_gpu(&cpu, &gpu, n->in[j]);
    exec_run(&cpu, n);
    exec_run(&gpu, n);
    compare(&cpu, &gpu, n, scratch, t);
    t->kernels++;
    t->tiled += gpu.kernel[i]->bf16;
    t->blocks += gpu.kernel[i]->kind == KK_BLOCKS;
    t->bf16_buffers += checked_as_bf16(gpu.kernel[i]) && !gpu.kernel[i]->bf16;
  }
}

int main(int argc, char **argv) {
  bool bf16 = argc == 4 && !strcmp(argv[3], "bf16");
  if (argc != 3 && !bf16)
    return 2;
  Arena *a = arena_new();
  Tally t = {0};
  check_pass(a, argv[1], argv[2], true, bf16, &t);
  check_pass(a, argv[1], argv[2], false, bf16, &t);
  printf("%s%s: %d kernels, %d in a GPU block form, %d of them on bf16 tiles, %d others with bf16 buffers; largest "
         "difference %.2e (float), %.2e (bf16)\n", argv[2], bf16 ? " (bf16 activations)" : "", t.kernels, t.blocks,
         t.tiled, t.bf16_buffers, t.worst_float, t.worst_bf16);
  CHECK(t.tiled > 0 && t.blocks > t.tiled);
  CHECK(bf16 ? t.bf16_buffers > t.kernels / 4 : t.bf16_buffers == 0);
  return check_report();
}
