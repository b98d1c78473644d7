// report.h: `tlc report RUN_DIR... [-o DIR]`, what its files share. The subcommand is cut by job:
//   report.c            the command line, and writing every output
//   report_runs.c       a run directory read: metrics.jsonl, run.json, confusion.tsv
//   report_table.c      the comparison table as Markdown and CSV
//   report_curves.c     curves.png: loss and accuracy per epoch, one colour per run
//   report_confusion.c  confusion.png: one run's test-set confusion matrix
// The pictures are drawn with Cairo (runtime/plot_cairo.h says why).
#ifndef TLC_REPORT_H
#define TLC_REPORT_H

#include "tlc.h"
#include "tlcrt.h"

#include <stdio.h>

// One line of metrics.jsonl; NaN where the line has null or lacks the figure.
typedef struct ReportEpoch {
  int epoch;
  double loss, acc, val_loss, val_acc, test_loss, test_acc, images_per_s, seconds;   // accuracies as fractions
} ReportEpoch;

// confusion.tsv: counts[true * classes + predicted].
typedef struct ReportConfusion {
  int classes;
  const char **names;
  int64_t *counts;
  const char *tested;   // its "# tested=..." line, without the "# "
} ReportConfusion;

typedef struct ReportRun {
  const char *dir;      // as given
  const char *name;     // the experiment: the directory's name, or its path where two share a name
  ReportEpoch *epochs;  // in epoch order, one per epoch (a later line of the same epoch wins)
  int nepochs;
  bool finished;        // run.json is there: the fields below are the result line's
  const char *model, *device, *tested;   // tested: "best", "last" or "checkpoint"
  int64_t parameters, trainable, test_images;
  int best_epoch;       // 0: none
  double test_acc, best_val_acc, train_time_s, images_per_s;   // NaN: none (best_val_acc: no validation split)
  const ReportConfusion *confusion;   // NULL: the directory has no confusion.tsv
} ReportRun;

// report_runs.c: the run in dir, or a fatal error naming the file, line and field at fault.
ReportRun *report_read_run(Arena *a, const char *dir);
// The best validation accuracy the metrics show (for a run without run.json), NaN without one.
double report_metrics_best_val(const ReportRun *r);
double report_metrics_seconds(const ReportRun *r);

// report_table.c
void report_markdown(FILE *out, ReportRun **runs, int n);
const char *report_grouped(Arena *a, int64_t v);   // 11689512 -> "11,689,512"
void report_csv(FILE *out, ReportRun **runs, int n);

// report_curves.c: curves.png (returns 0, or -1 with err set); its size in *width, *height.
int report_curves(const char *path, ReportRun **runs, int n, int *width, int *height, TlcError *err);
// The size of curves.png for n runs (deterministic: the tests check it).
void report_curves_size(int n, int *width, int *height);

// report_confusion.c: confusion.png of run r; its size (which depends on the class names'
// widths) in *width, *height.
int report_confusion(const char *path, const ReportRun *r, int *width, int *height, TlcError *err);

#endif
