// stats_kernels.c: tlc FILE --stats=kernels, every GPU launch of a trainer with the least it
// must move and compute: the floor of a roofline estimate of its time (bench/roofline.py puts
// the emulator's counts of what each kernel does move beside it). Tab-separated, one launch a
// line in the bundle's order (the training step's, then the evaluation pass's).
#include "driver.h"

#include "host_c.h"

// The comment's first line: "layer1.0.conv1: conv2d 3x3 ... -> [8,64,8,8]".
static void put_first_line(FILE *out, const char *comment) {
  for (const char *p = comment ? comment : ""; *p && *p != '\n'; p++)
    fputc(*p == '\t' ? ' ' : *p, out);
}

static void put_launch(FILE *out, const KernelTable *table, int i, const char *step) {
  const Kernel *k = table->kernels[i];
  fprintf(out, "%d\t%s\t%s\t%s\t%lld\t%d\t%d\t%lld\t%lld\t", i, step, k->name,
          table->functions[table->function_of[i]]->name, (long long)k->launch.grid, k->launch.block, k->bf16,
          (long long)kir_min_bytes(k), (long long)k->flops);
  put_first_line(out, k->comment);
  fputc('\n', out);
}

void print_kernel_stats(FILE *out, const TrainerSpec *t) {
  const KernelTable *table = t->program->table;
  int ntrain = 0;
  for (int i = 0; i < t->train->n; i++)
    ntrain += t->train_gpu[i] != NULL;
  fputs("launch\tstep\tkernel\tfunction\tblocks\tthreads\ttensor_cores\tmin_bytes\tflops\twhat\n", out);
  // In the order they run: a two-pass reduction's first pass (numbered after the steps) just
  // before its second; a run of updates' one launch where its first would run.
  for (int i = 0; i < t->pass1; i++) {
    const Kernel *k = table->kernels[i];
    const char *step = i < ntrain ? "train" : i == t->feature_gather ? "gather" : "eval";
    if (k->pass1)
      put_launch(out, table, k->pass1_launch, step);
    if (!k->merged)
      put_launch(out, table, i, step);
    else if (k->merged_first)
      put_launch(out, table, k->merged_launch, step);
  }
}
