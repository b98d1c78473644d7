// report.c: `tlc report RUN_DIR... [-o DIR] [--confusion RUN_DIR] [--force]`, what the
// write-ups show at their end, from the --out directories of any trainers: the comparison
// table (DIR/report.md and DIR/report.csv), the training curves (DIR/curves.png) and one run's
// test-set confusion matrix (DIR/confusion.png), with report.md showing both pictures.
//
// Every run is read and checked before anything is written (report_runs.c stops at the first
// damaged file, naming it); each output is written whole or not at all (tlc_write_atomic), and
// files of an earlier report are replaced only with --force.
#include "report.h"
#include "driver.h"
#include "plot_cairo.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
    "usage: tlc report RUN_DIR... [-o DIR] [--confusion RUN_DIR] [--force]\n"
    "  RUN_DIR          a trainer's --out directory (metrics.jsonl; run.json and confusion.tsv\n"
    "                   once the run has finished)\n"
    "  -o DIR           where the report goes (default: report): report.md and report.csv (the\n"
    "                   comparison table), curves.png (loss and accuracy per epoch),\n"
    "                   confusion.png (one run's test-set confusion matrix)\n"
    "  --confusion RUN_DIR  the run whose confusion matrix is drawn (default: the highest test\n"
    "                   accuracy among the runs that have one)\n"
    "  --force          replace the files of an earlier report in DIR\n";

typedef struct ReportOptions {
  const char **dirs;
  int ndirs;
  const char *out, *confusion;
  bool force;
} ReportOptions;

static ReportOptions parse_report_options(Arena *a, int argc, char **argv) {
  ReportOptions o = {.out = "report"};
  int cap = 0;
  for (int i = 0; i < argc; i++) {
    const char *arg = argv[i];
    if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
      fputs(usage, stdout);
      exit(0);
    } else if (!strcmp(arg, "-o") || !strcmp(arg, "--confusion")) {
      if (i + 1 >= argc || !argv[i + 1][0])
        fatal("report: %s needs a directory", arg);
      *(arg[1] == 'o' ? &o.out : &o.confusion) = argv[++i];
    } else if (!strcmp(arg, "--force")) {
      o.force = true;
    } else if (arg[0] == '-' && arg[1]) {
      fatal("report: unknown option '%s' (try tlc report --help)", arg);
    } else {
      ARENA_PUSH(a, o.dirs, o.ndirs, cap, arg);
    }
  }
  if (!o.ndirs)
    fatal("report: no run directory given\n%s", usage);
  return o;
}

// The directory's own name: "runs/a/" -> "a"; "." -> the current directory's name.
static const char *dir_name(Arena *a, const char *dir) {
  char *full = realpath(dir, NULL);
  const char *path = full ? full : dir;
  const char *slash = strrchr(path, '/');
  const char *name = arena_strdup(a, slash && slash[1] ? slash + 1 : path);
  free(full);
  return name;
}

// Each run is named by its directory's name; runs that share one go by the path given.
static void name_runs(Arena *a, ReportRun **runs, int n) {
  for (int i = 0; i < n; i++)
    runs[i]->name = dir_name(a, runs[i]->dir);
  for (int i = 0; i < n; i++) {
    bool shared = false;
    for (int j = 0; j < n; j++)
      shared |= j != i && !strcmp(dir_name(a, runs[i]->dir), dir_name(a, runs[j]->dir));
    if (shared)
      runs[i]->name = runs[i]->dir;
  }
}

static bool same_dir(const char *x, const char *y) {
  struct stat a, b;
  return stat(x, &a) == 0 && stat(y, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

// The run whose matrix is drawn: the one asked for, else the best test accuracy among those
// that have one; NULL when none has.
static const ReportRun *confusion_run(ReportRun **runs, int n, const char *asked) {
  const ReportRun *pick = NULL;
  for (int i = 0; i < n; i++) {
    const ReportRun *r = runs[i];
    if (asked && same_dir(asked, r->dir)) {
      if (!r->confusion)
        fatal("report: --confusion %s: the run has no confusion.tsv (its trainer writes one when it ends; "
              "./train --eval CKPT --out %s writes one for a checkpoint)", asked, asked);
      return r;
    }
    if (!asked && r->confusion && (!pick || r->test_acc > pick->test_acc || (isnan(pick->test_acc) && !isnan(r->test_acc))))
      pick = r;
  }
  if (asked)
    fatal("report: --confusion %s is not one of the run directories given", asked);
  return pick;
}

// DIR created if need be; the files about to be written must not exist, unless --force.
static void prepare_out(Arena *a, const ReportOptions *o, const char *const *files, int n) {
  if (mkdir(o->out, 0777) != 0 && errno != EEXIST)
    fatal("report: cannot create -o %s: %s", o->out, strerror(errno));
  struct stat st;
  if (stat(o->out, &st) != 0 || !S_ISDIR(st.st_mode))
    fatal("report: -o %s is not a directory", o->out);
  if (access(o->out, W_OK) != 0)
    fatal("report: cannot write into -o %s: %s", o->out, strerror(errno));
  for (int i = 0; i < n && !o->force; i++) {
    const char *path = arena_printf(a, "%s/%s", o->out, files[i]);
    if (access(path, F_OK) == 0)
      fatal("report: %s exists; --force replaces the files of an earlier report (or choose another -o DIR)", path);
  }
}

static void write_text(const char *path, const char *text, size_t len) {
  TlcError err;
  if (tlc_write_atomic(path, &(TlcBytes){text, len}, 1, &err) != 0)
    fatal("report: %s", err.msg);
}

// report.md: the table, then the pictures.
static void write_markdown(Arena *a, const char *out, ReportRun **runs, int n, const ReportRun *confusion) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  fprintf(f, "# Report: %d run%s\n\n", n, n == 1 ? "" : "s");
  report_markdown(f, runs, n);
  fputs("\nTraining curves (training solid, validation dashed):\n\n![training curves](curves.png)\n", f);
  if (confusion)
    fprintf(f, "\nThe test set's confusion matrix of %s:\n\n![confusion matrix](confusion.png)\n", confusion->name);
  fclose(f);
  write_text(arena_printf(a, "%s/report.md", out), text, len);
  free(text);
}

static void write_csv(Arena *a, const char *out, ReportRun **runs, int n) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  report_csv(f, runs, n);
  fclose(f);
  write_text(arena_printf(a, "%s/report.csv", out), text, len);
  free(text);
}

static void write_pictures(Arena *a, const char *out, ReportRun **runs, int n, const ReportRun *confusion) {
  TlcError err;
  int width, height;
  const char *path = arena_printf(a, "%s/curves.png", out);
  if (report_curves(path, runs, n, &width, &height, &err) != 0)
    fatal("report: %s", err.msg);
  printf("report: %s: the training curves, %dx%d pixels\n", path, width, height);
  if (!confusion) {
    printf("report: no confusion matrix: none of the runs has a confusion.tsv\n");
    return;
  }
  path = arena_printf(a, "%s/confusion.png", out);
  if (report_confusion(path, confusion, &width, &height, &err) != 0)
    fatal("report: %s", err.msg);
  printf("report: %s: the confusion matrix of %s, %d classes, %dx%d pixels\n", path, confusion->name,
         confusion->confusion->classes, width, height);
}

int report_main(int argc, char **argv) {
  Arena *a = arena_new();
  ReportOptions o = parse_report_options(a, argc, argv);
  ReportRun **runs = arena_alloc(a, sizeof *runs * (size_t)o.ndirs);
  for (int i = 0; i < o.ndirs; i++)
    runs[i] = report_read_run(a, o.dirs[i]);
  name_runs(a, runs, o.ndirs);
  for (int i = 0; i < o.ndirs; i++)
    if (!runs[i]->finished)
      fprintf(stderr, "tlc: warning: report: %s has no run.json: the run has not finished (stopped, or still "
              "training); its row shows what metrics.jsonl holds\n", runs[i]->dir);
  const ReportRun *confusion = confusion_run(runs, o.ndirs, o.confusion);
  const char *files[] = {"report.md", "report.csv", "curves.png", "confusion.png"};
  prepare_out(a, &o, files, confusion ? 4 : 3);
  TlcError err;
  if (!tlc_cairo_load(&err))
    fatal("report: %s", err.msg);
  report_markdown(stdout, runs, o.ndirs);
  write_pictures(a, o.out, runs, o.ndirs, confusion);
  write_csv(a, o.out, runs, o.ndirs);
  write_markdown(a, o.out, runs, o.ndirs, confusion);
  printf("report: %s/report.md, %s/report.csv: the table of %d runs\n", o.out, o.out, o.ndirs);
  arena_free(a);
  return 0;
}
