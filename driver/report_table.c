// report_table.c: the comparison table the write-ups end with, one row per run: experiment,
// model, trainable/total parameters, best validation accuracy, test accuracy (and which
// weights it is of), training time, images/s, device.
//
// Markdown is for reading (percentages, grouped digits, minutes); CSV is for scripts and holds
// the figures as the trainer's result line prints them (fractions with 4 decimals, seconds
// with 1, images/s with none), so that a cell compares equal to the line it came from. A run
// that has not finished (no run.json) shows what its metrics.jsonl holds and says so.
#include "report.h"

#include <math.h>
#include <string.h>

static const char *NONE = "\xE2\x80\x94";   // an em dash: no figure

const char *report_grouped(Arena *a, int64_t v) {
  char raw[32], out[48];
  int len = snprintf(raw, sizeof raw, "%lld", (long long)v), o = 0;
  for (int i = 0; i < len; i++) {
    if (i && (len - i) % 3 == 0 && raw[i - 1] != '-')
      out[o++] = ',';
    out[o++] = raw[i];
  }
  out[o] = '\0';
  return arena_strdup(a, out);
}

static const char *percent(Arena *a, double fraction) {
  return isnan(fraction) ? NONE : arena_printf(a, "%.2f%%", 100 * fraction);
}

// 4.4 s, 12 min 05 s, 1 h 20 min.
static const char *duration(Arena *a, double s) {
  if (isnan(s))
    return NONE;
  if (s < 60)
    return arena_printf(a, "%.1f s", s);
  long t = lround(s);
  if (t < 3600)
    return arena_printf(a, "%ld min %02ld s", t / 60, t % 60);
  return arena_printf(a, "%ld h %02ld min", t / 3600, t / 60 % 60);
}

// Which weights the test figure is of.
static const char *tested(Arena *a, const ReportRun *r) {
  if (!r->finished)
    return arena_printf(a, "not finished (%d epochs logged)", r->nepochs);
  if (!strcmp(r->tested, "best"))
    return arena_printf(a, "best.ckpt (epoch %d)", r->best_epoch);
  if (!strcmp(r->tested, "last"))
    return "last epoch (no validation split)";
  return r->tested;
}

// Markdown cell text: a '|' would end the cell.
static void md_cell(FILE *out, const char *s) {
  fputc(' ', out);
  for (; *s; s++) {
    if (*s == '|')
      fputc('\\', out);
    fputc(*s, out);
  }
  fputs(" |", out);
}

void report_markdown(FILE *out, ReportRun **runs, int n) {
  Arena *a = arena_new();
  fputs("| experiment | model | trainable / total parameters | best validation accuracy | test accuracy | tested "
        "| training time | images/s | device |\n|---|---|---|---|---|---|---|---|---|\n", out);
  for (int i = 0; i < n; i++) {
    const ReportRun *r = runs[i];
    fputs("|", out);
    md_cell(out, r->name);
    md_cell(out, r->finished ? r->model : NONE);
    const char *params = arena_printf(a, "%s / %s", report_grouped(a, r->trainable), report_grouped(a, r->parameters));
    md_cell(out, r->finished ? params : NONE);
    md_cell(out, percent(a, r->finished ? r->best_val_acc : report_metrics_best_val(r)));
    md_cell(out, percent(a, r->test_acc));
    md_cell(out, tested(a, r));
    md_cell(out, duration(a, r->finished ? r->train_time_s : report_metrics_seconds(r)));
    md_cell(out, r->finished ? arena_printf(a, "%.0f", r->images_per_s) : NONE);
    md_cell(out, r->finished ? r->device : NONE);
    fputs("\n", out);
  }
  arena_free(a);
}

// A CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break.
static void csv_field(FILE *out, const char *s, bool last) {
  if (strpbrk(s, ",\"\r\n")) {
    fputc('"', out);
    for (; *s; s++) {
      if (*s == '"')
        fputc('"', out);
      fputc(*s, out);
    }
    fputc('"', out);
  } else {
    fputs(s, out);
  }
  fputc(last ? '\n' : ',', out);
}

static const char *fixed(Arena *a, const char *format, double v) { return isnan(v) ? "" : arena_printf(a, format, v); }

void report_csv(FILE *out, ReportRun **runs, int n) {
  Arena *a = arena_new();
  fputs("experiment,model,trainable_parameters,parameters,best_val_acc,test_acc,tested,best_epoch,epochs,"
        "train_time_s,images_per_s,device,dir\n", out);
  for (int i = 0; i < n; i++) {
    const ReportRun *r = runs[i];
    bool done = r->finished;
    csv_field(out, r->name, false);
    csv_field(out, done ? r->model : "", false);
    csv_field(out, done ? arena_printf(a, "%lld", (long long)r->trainable) : "", false);
    csv_field(out, done ? arena_printf(a, "%lld", (long long)r->parameters) : "", false);
    csv_field(out, fixed(a, "%.4f", done ? r->best_val_acc : report_metrics_best_val(r)), false);
    csv_field(out, fixed(a, "%.4f", r->test_acc), false);
    csv_field(out, done ? r->tested : "not finished", false);
    csv_field(out, done && r->best_epoch ? arena_printf(a, "%d", r->best_epoch) : "", false);
    csv_field(out, arena_printf(a, "%d", r->epochs[r->nepochs - 1].epoch), false);
    csv_field(out, fixed(a, "%.1f", done ? r->train_time_s : report_metrics_seconds(r)), false);
    csv_field(out, fixed(a, "%.0f", r->images_per_s), false);
    csv_field(out, done ? r->device : "", false);
    csv_field(out, r->dir, true);
  }
  arena_free(a);
}
