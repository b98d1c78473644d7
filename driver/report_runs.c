// report_runs.c: a trainer's --out directory read for tlc report (report.h): metrics.jsonl
// (one JSON object per epoch), run.json (the run's result, written when it ended) and
// confusion.tsv (its test-set confusion matrix), as runtime/trainer.c and trainer_summary.c
// write them.
//
// Everything is checked, and whatever is wrong is a fatal error naming the file, the line
// (and column) and the field, since a report built over a damaged log would show wrong
// figures without saying so. A directory without run.json is a run that has not finished
// (stopped, or still training): its curves are drawn and the table says so.
#include "report.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool is_file(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

// A number, or NaN for null or a missing key when that is allowed; where says "FILE:LINE".
static double number_field(const json_t *obj, const char *key, bool optional, const char *where) {
  const json_t *v = json_object_get(obj, key);
  if (json_is_number(v))
    return json_number_value(v);
  if (optional && (!v || json_is_null(v)))
    return NAN;
  if (!v)
    fatal("%s: \"%s\" is missing", where, key);
  fatal("%s: \"%s\" is %s; a number was expected", where, key, json_is_string(v) ? "a string" : "not a number");
}

static int64_t integer_field(const json_t *obj, const char *key, bool optional, const char *where) {
  const json_t *v = json_object_get(obj, key);
  if (json_is_integer(v))
    return json_integer_value(v);
  if (optional && (!v || json_is_null(v)))
    return 0;
  if (!v)
    fatal("%s: \"%s\" is missing", where, key);
  fatal("%s: \"%s\" is not a whole number", where, key);
}

static const char *string_field(Arena *a, const json_t *obj, const char *key, const char *where) {
  const json_t *v = json_object_get(obj, key);
  if (!json_is_string(v))
    fatal("%s: \"%s\" is %s; a string was expected", where, key, v ? "not a string" : "missing");
  return arena_strdup(a, json_string_value(v));
}

static ReportEpoch parse_epoch(const json_t *line, const char *where) {
  if (!json_is_object(line))
    fatal("%s: not a JSON object", where);
  int64_t epoch = integer_field(line, "epoch", false, where);
  if (epoch < 1 || epoch > 100000000)
    fatal("%s: \"epoch\" is %lld; epochs count from 1", where, (long long)epoch);
  return (ReportEpoch){
      .epoch = (int)epoch,
      .loss = number_field(line, "loss", false, where),
      .acc = number_field(line, "acc", false, where),
      .val_loss = number_field(line, "val_loss", true, where),
      .val_acc = number_field(line, "val_acc", true, where),
      .test_loss = number_field(line, "test_loss", true, where),
      .test_acc = number_field(line, "test_acc", true, where),
      .images_per_s = number_field(line, "images_per_s", true, where),
      .seconds = number_field(line, "seconds", true, where),
  };
}

// Epoch order; of two lines of one epoch (a run resumed from an earlier checkpoint logs it
// again) the later comes last, and wins.
typedef struct Numbered {
  ReportEpoch e;
  int line;
} Numbered;

static int by_epoch(const void *x, const void *y) {
  const Numbered *a = x, *b = y;
  return a->e.epoch != b->e.epoch ? (a->e.epoch > b->e.epoch) - (a->e.epoch < b->e.epoch) : a->line - b->line;
}

static void keep_last_of_each_epoch(Arena *a, ReportRun *r, Numbered *lines, int n) {
  qsort(lines, (size_t)n, sizeof *lines, by_epoch);
  r->epochs = arena_alloc(a, sizeof *r->epochs * (size_t)(n ? n : 1));
  for (int i = 0; i < n; i++) {
    if (r->nepochs && r->epochs[r->nepochs - 1].epoch == lines[i].e.epoch)
      r->nepochs--;
    r->epochs[r->nepochs++] = lines[i].e;
  }
}

static void read_metrics(Arena *a, ReportRun *r) {
  const char *path = arena_printf(a, "%s/metrics.jsonl", r->dir);
  FILE *f = fopen(path, "r");
  if (!f)
    fatal("%s: %s: %s (is it a trainer's --out directory?)", r->dir, path, strerror(errno));
  Numbered *lines = NULL;
  int n = 0, cap = 0, number = 0;
  char *text = NULL;
  size_t size = 0;
  ssize_t len;
  while ((len = getline(&text, &size, f)) >= 0) {
    number++;
    bool cut = len == 0 || text[len - 1] != '\n';
    if (strspn(text, " \t\r\n") == (size_t)len)
      continue;
    json_error_t e;
    json_t *line = json_loadb(text, (size_t)len, 0, &e);
    if (!line)
      fatal("%s:%d:%d: not valid JSON: %s%s", path, number, e.column, e.text,
            cut ? " (the line is cut short: was the trainer stopped while writing it?)" : "");
    ARENA_PUSH(a, lines, n, cap, ((Numbered){parse_epoch(line, arena_printf(a, "%s:%d", path, number)), number}));
    json_decref(line);
  }
  free(text);
  fclose(f);
  if (n == 0)
    fatal("%s: %s holds no epoch: the run has not finished its first epoch", r->dir, path);
  keep_last_of_each_epoch(a, r, lines, n);
}

static void read_summary(Arena *a, ReportRun *r) {
  const char *path = arena_printf(a, "%s/run.json", r->dir);
  if (!is_file(path))
    return;
  json_error_t e;
  json_t *j = json_load_file(path, 0, &e);
  if (!j)
    fatal("%s:%d:%d: not valid JSON: %s", path, e.line, e.column, e.text);
  if (!json_is_object(j))
    fatal("%s: not a JSON object", path);
  r->finished = true;
  r->model = string_field(a, j, "model", path);
  r->device = string_field(a, j, "device", path);
  r->tested = string_field(a, j, "tested", path);
  r->parameters = integer_field(j, "parameters", false, path);
  r->trainable = integer_field(j, "trainable_parameters", false, path);
  r->test_images = integer_field(j, "test_images", false, path);
  r->best_epoch = (int)integer_field(j, "best_epoch", true, path);
  r->test_acc = number_field(j, "test_acc", true, path);
  r->best_val_acc = number_field(j, "best_val_acc", true, path);
  r->train_time_s = number_field(j, "train_time_s", false, path);
  r->images_per_s = number_field(j, "images_per_s", false, path);
  json_decref(j);
}

// The fields of one TSV line (tab-separated, the newline removed), in the arena.
static char **split_tabs(Arena *a, char *line, int *n) {
  line[strcspn(line, "\r\n")] = '\0';
  char **fields = NULL;
  int cap = 0;
  *n = 0;
  for (char *s = line;; s++) {
    char *tab = strchr(s, '\t');
    ARENA_PUSH(a, fields, *n, cap, arena_strndup(a, s, tab ? (size_t)(tab - s) : strlen(s)));
    if (!tab)
      return fields;
    s = tab;
  }
}

static int64_t count_of(const char *field, const char *where) {
  char *end;
  errno = 0;
  long long v = strtoll(field, &end, 10);
  if (!*field || *end || errno || v < 0)
    fatal("%s: '%s' is not a count", where, field);
  return v;
}

// The matrix's rows: one per class, named as its column, then its counts.
static void read_confusion_rows(Arena *a, ReportConfusion *c, FILE *f, const char *path, int number) {
  char *line = NULL;
  size_t size = 0;
  for (int t = 0; t < c->classes; t++) {
    number++;
    if (getline(&line, &size, f) < 0)
      fatal("%s:%d: the file ends after %d of its %d rows", path, number, t, c->classes);
    int n;
    char **fields = split_tabs(a, line, &n);
    const char *where = arena_printf(a, "%s:%d", path, number);
    if (n != c->classes + 1 || strcmp(fields[0], c->names[t]))
      fatal("%s: expected the row of class '%s' with %d counts", where, c->names[t], c->classes);
    for (int p = 0; p < c->classes; p++)
      c->counts[(int64_t)t * c->classes + p] = count_of(fields[p + 1], where);
  }
  free(line);
}

static const ReportConfusion *read_confusion(Arena *a, const ReportRun *r) {
  const char *path = arena_printf(a, "%s/confusion.tsv", r->dir);
  if (!is_file(path))
    return NULL;
  FILE *f = fopen(path, "r");
  if (!f)
    fatal("%s: %s", path, strerror(errno));
  ReportConfusion *c = arena_alloc(a, sizeof *c);
  char *line = NULL;
  size_t size = 0;
  int number = 0;
  ssize_t len;
  while ((len = getline(&line, &size, f)) >= 0 && ++number && line[0] == '#')
    if (!strncmp(line, "# tested=", 9))
      c->tested = arena_strndup(a, line + 2, strcspn(line + 2, "\r\n"));
  int n = 0;
  char **header = len >= 0 ? split_tabs(a, line, &n) : NULL;
  free(line);
  if (n < 2 || n > 100001)
    fatal("%s:%d: expected the header: a first field, then a column per class", path, number);
  c->classes = n - 1;
  c->names = (const char **)header + 1;
  c->counts = arena_alloc(a, sizeof *c->counts * (size_t)c->classes * (size_t)c->classes);
  read_confusion_rows(a, c, f, path, number);
  fclose(f);
  return c;
}

ReportRun *report_read_run(Arena *a, const char *dir) {
  struct stat st;
  if (stat(dir, &st) != 0)
    fatal("%s: %s", dir, strerror(errno));
  if (!S_ISDIR(st.st_mode))
    fatal("%s: not a directory (tlc report takes the --out directories of trainers)", dir);
  ReportRun *r = arena_alloc(a, sizeof *r);
  r->dir = dir;
  r->test_acc = r->best_val_acc = r->train_time_s = r->images_per_s = NAN;
  read_metrics(a, r);
  read_summary(a, r);
  r->confusion = read_confusion(a, r);
  return r;
}

double report_metrics_best_val(const ReportRun *r) {
  double best = NAN;
  for (int i = 0; i < r->nepochs; i++)
    if (isnan(best) || r->epochs[i].val_acc > best)   // NaN (no validation) never wins
      best = r->epochs[i].val_acc;
  return best;
}

double report_metrics_seconds(const ReportRun *r) {
  double sum = 0;
  for (int i = 0; i < r->nepochs; i++)
    sum += isnan(r->epochs[i].seconds) ? 0 : r->epochs[i].seconds;
  return sum;
}
