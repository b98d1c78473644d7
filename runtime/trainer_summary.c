// trainer_summary.c: what a run leaves beside metrics.jsonl for `tlc report` (and for anyone
// comparing runs): OUT/run.json, the result line's figures with what the metrics do not say
// (the model, its parameters, the device, the data's sizes), and OUT/confusion.tsv, the test
// split's confusion matrix of the weights the result line reports.
//
// Contract (trainer_internal.h): both are written atomically when the run ends, run.json only
// by a run that trained (--eval --out DIR writes the matrix of the file it evaluated). A run
// that starts removes the two files of an earlier run in its directory, as it starts
// metrics.jsonl afresh: a directory never pairs one run's summary with another's log. The
// matrix is of the latest complete pass over the test split, which is always the reported
// weights' (trainer_eval.c tests best.ckpt last, when it is another epoch's).
#include "trainer_internal.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *out_file(const TlcRun *run, const char *name) {
  size_t n = strlen(run->out_dir) + strlen(name) + 2;
  char *p = malloc(n);
  if (p)
    snprintf(p, n, "%s/%s", run->out_dir, name);
  return p;
}

static int remove_stale(const TlcRun *run, const char *name, TlcError *err) {
  char *path = out_file(run, name);
  if (!path)
    return tlc_fail(err, "out of memory");
  int rc = unlink(path) == 0 || errno == ENOENT ? 0 : tlc_fail(err, "--out %s: cannot remove the earlier run's %s: %s",
                                                             run->out_dir, path, strerror(errno));
  free(path);
  return rc;
}

int trainer_summary_start(TlcRun *run, TlcError *err) {
  if (run->npredict)
    return 0;   // predictions have no labels to count
  int32_t k = run->model->classes;
  run->confusion = calloc((size_t)k * (size_t)k, sizeof *run->confusion);
  if (!run->confusion)
    return tlc_fail(err, "out of memory for a %dx%d confusion matrix", k, k);
  if (run->eval_checkpoint)
    return 0;
  return remove_stale(run, "run.json", err) != 0 || remove_stale(run, "confusion.tsv", err) != 0 ? -1 : 0;
}

void trainer_count_confusion(TlcRun *run) {
  if (!run->confusion || run->eval_split != TLC_SPLIT_TEST)
    return;
  const TlcModel *m = run->model;
  int64_t k = m->classes;
  if (run->eval_cursor == run->eval_real)   // the pass's first batch: a new matrix
    memset(run->confusion, 0, (size_t)(k * k) * sizeof *run->confusion);
  const float *logits = (const float *)(run->arena + m->eval_logits);
  for (int64_t b = 0; b < run->eval_real; b++)
    run->confusion[run->batch_labels[b] * k + trainer_argmax(logits + b * k, m->classes)]++;
}

// A class name as one TSV field: tabs and line breaks would split it.
static void put_name(FILE *f, const TlcRun *run, int32_t c) {
  if (!run->data.class_names) {
    fprintf(f, "class %d", c);
    return;
  }
  for (const char *s = run->data.class_names[c]; *s; s++)
    fputc(*s == '\t' || *s == '\n' || *s == '\r' ? ' ' : *s, f);
}

// The weights the matrix is of, in the words of the result line.
static void put_tested(FILE *f, const TlcRun *run, const TrainerResult *r) {
  fprintf(f, "# tested=%s", r->tested);
  if (!strcmp(r->tested, "best"))
    fprintf(f, " best_epoch=%d weights=%s", run->best_epoch, run->best_path);
  else if (run->eval_checkpoint)
    fprintf(f, " weights=%s", run->eval_checkpoint);
  else
    fprintf(f, " epoch=%d", run->epochs_done);
  fprintf(f, " test_images=%lld test_acc=%.4f\n", (long long)run->ntest, r->test_acc);
}

static int write_confusion(const TlcRun *run, const TrainerResult *r, TlcError *err) {
  char *text = NULL, *path = out_file(run, "confusion.tsv");
  size_t len = 0;
  FILE *f = path ? open_memstream(&text, &len) : NULL;
  if (!f) {
    free(path);
    return tlc_fail(err, "out of memory");
  }
  int32_t k = run->model->classes;
  fputs("# tlc confusion matrix of the test split: a row per true class, a column per predicted class\n", f);
  put_tested(f, run, r);
  fputs("true\\predicted", f);
  for (int32_t c = 0; c < k; c++)
    fputc('\t', f), put_name(f, run, c);
  for (int32_t t = 0; t < k; t++) {
    fputc('\n', f), put_name(f, run, t);
    for (int32_t c = 0; c < k; c++)
      fprintf(f, "\t%lld", (long long)run->confusion[(int64_t)t * k + c]);
  }
  fputc('\n', f);
  fclose(f);
  int rc = tlc_write_atomic(path, &(TlcBytes){text, len}, 1, err);
  free(text);
  free(path);
  return rc;
}

// "NVIDIA H100 80GB HBM3 (sm_90)", or "cpu: <the CPU's model name> (N threads)".
static void device_name(const TlcRun *run, char *out, size_t size) {
  if (run->gpu) {
    snprintf(out, size, "%s", tlc_gpu_name(run->gpu));
    return;
  }
  long threads = run->threads > 0 ? run->threads : sysconf(_SC_NPROCESSORS_ONLN);
  char line[512], model[256] = "";
  FILE *f = fopen("/proc/cpuinfo", "r");
  while (f && !model[0] && fgets(line, sizeof line, f)) {
    char *colon = strchr(line, ':');
    if (!strncmp(line, "model name", 10) && colon) {
      snprintf(model, sizeof model, "%s", colon + 2);
      model[strcspn(model, "\n")] = '\0';
    }
  }
  if (f)
    fclose(f);
  snprintf(out, size, "cpu%s%s (%ld threads)", model[0] ? ": " : "", model, threads);
}

static json_t *number_or_null(double v) { return v == v ? json_real(v) : json_null(); }

static json_t *summary_json(const TlcRun *run, const TrainerResult *r) {
  const TlcModel *m = run->model;
  char device[512];
  device_name(run, device, sizeof device);
  json_t *j = json_object();
  json_object_set_new(j, "model", json_string(m->name));
  json_object_set_new(j, "source", json_string(m->source ? m->source : ""));
  json_object_set_new(j, "parameters", json_integer(m->parameters));
  json_object_set_new(j, "trainable_parameters", json_integer(m->trainable_parameters));
  json_object_set_new(j, "device", json_string(device));
  json_object_set_new(j, "data", json_string(run->data_dir ? run->data_dir : ""));
  json_object_set_new(j, "train_images", json_integer(run->ntrain));
  json_object_set_new(j, "val_images", json_integer(run->nval));
  json_object_set_new(j, "test_images", json_integer(run->ntest));
  json_object_set_new(j, "classes", json_integer(m->classes));
  json_object_set_new(j, "batch", json_integer(m->batch));
  json_object_set_new(j, "seed", json_integer((json_int_t)run->seed));
  json_object_set_new(j, "epochs", json_integer(run->epochs_done));
  json_object_set_new(j, "tested", json_string(r->tested));
  json_object_set_new(j, "best_epoch", run->best_epoch > 0 && !strcmp(r->tested, "best") ? json_integer(run->best_epoch)
                                                                                          : json_null());
  json_object_set_new(j, "test_acc", number_or_null(r->test_acc));
  json_object_set_new(j, "test_loss", number_or_null(r->test_loss));
  json_object_set_new(j, "last_test_acc", number_or_null(run->last_test_acc));
  json_object_set_new(j, "best_val_acc", run->best_val >= 0 ? json_real(run->best_val) : json_null());
  json_object_set_new(j, "train_time_s", json_real(run->train_seconds));
  json_object_set_new(j, "images_per_s", json_real(r->images_per_s));
  json_object_set_new(j, "skipped_images", json_integer(r->skipped));
  return j;
}

static int write_run_json(const TlcRun *run, const TrainerResult *r, TlcError *err) {
  json_t *j = summary_json(run, r);
  char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9)) : NULL;
  json_decref(j);
  char *path = out_file(run, "run.json");
  int rc = text && path ? 0 : tlc_fail(err, "out of memory");
  if (rc == 0) {
    size_t len = strlen(text);
    text[len] = '\n';   // json_dumps's NUL becomes the file's last newline
    rc = tlc_write_atomic(path, &(TlcBytes){text, len + 1}, 1, err);
  }
  free(text);
  free(path);
  return rc;
}

int trainer_write_summary(const TlcRun *run, const TrainerResult *r, TlcError *err) {
  if (!run->out_dir || !run->confusion)
    return 0;   // --eval without --out, or --predict: nothing to leave
  if (!run->eval_checkpoint && write_run_json(run, r, err) != 0)
    return -1;
  return run->ntest > 0 ? write_confusion(run, r, err) : 0;
}
