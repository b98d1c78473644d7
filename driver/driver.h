// driver.h: the tlc command (main.c), which sits on top of the compiler (compiler/) and the
// code generators (codegen/), its `inspect` subcommand (inspect.c), which reads the kernel
// bundle of a built trainer through the runtime's reader, and `report` (report.h), which reads
// the directories trainers write.
#ifndef TLC_DRIVER_H
#define TLC_DRIVER_H

#include <stdio.h>

// `tlc inspect TRAINER [KERNEL] [--ptx]`, given the arguments after "inspect".
int inspect_main(int argc, char **argv);
// `tlc report RUN_DIR... [-o DIR]` (report.c), given the arguments after "report".
int report_main(int argc, char **argv);

struct TrainerSpec;
// `tlc FILE --stats=kernels` (stats_kernels.c): each GPU launch, its minimum bytes and FLOPs.
void print_kernel_stats(FILE *out, const struct TrainerSpec *t);

#endif
