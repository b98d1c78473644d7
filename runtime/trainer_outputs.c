// trainer_outputs.c: what a run writes when it ends: --export (the model's parameters and
// buffers as safetensors) and --logits (the test split's logits as .npy).
//
// Contract (trainer_internal.h): both files are written atomically after the test pass, from
// the state the run ends with (the last epoch's, or the --eval file's). Their directories
// are checked at the start, so that a long run does not fail at its end for a typo; so are
// --predict-grid's and the Cairo library it is drawn with (trainer_predict.c writes it).
#include "trainer_internal.h"
#include "plot_cairo.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int check_dir(const char *flag, const char *path, TlcError *err) {
  const char *slash = strrchr(path, '/');
  char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
  if (!dir)
    return tlc_fail(err, "out of memory");
  int rc = access(dir, W_OK) == 0 ? 0 : tlc_fail(err, "%s %s: cannot write into %s: %s", flag, path, dir, strerror(errno));
  free(dir);
  return rc;
}

int trainer_prepare_outputs(TlcRun *run, TlcError *err) {
  if (run->export_path && check_dir("--export", run->export_path, err) != 0)
    return -1;
  TlcError why;
  if (run->predict_grid && check_dir("--predict-grid", run->predict_grid, err) != 0)
    return -1;
  if (run->predict_grid && !tlc_cairo_load(&why))
    return tlc_fail(err, "--predict-grid %s: %s", run->predict_grid, why.msg);
  if (!run->logits_path && !run->npredict)
    return 0;
  if (run->logits_path && check_dir("--logits", run->logits_path, err) != 0)
    return -1;
  // --predict reads its probabilities from the kept logits too.
  size_t n = (size_t)(run->ntest > 0 ? run->ntest : 1) * (size_t)run->model->classes;
  run->test_logits = calloc(n, sizeof *run->test_logits);
  return run->test_logits ? 0 : tlc_fail(err, "out of memory for the test logits (%zu floats)", n);
}

void trainer_keep_logits(TlcRun *run) {
  if (!run->test_logits || run->eval_split != TLC_SPLIT_TEST)
    return;
  const TlcModel *m = run->model;
  int64_t first = run->eval_cursor - run->eval_real;  // tlc_eval_batch advanced the cursor
  memcpy(run->test_logits + first * m->classes, run->arena + m->eval_logits,
         (size_t)(run->eval_real * m->classes) * sizeof(float));
}

// Parameters and buffers, in the trainer's (torchvision's) order; optimizer state stays out.
static int export_weights(const TlcRun *run, TlcError *err) {
  const TlcModel *m = run->model;
  TlcSafetensorsEntry *entries = calloc(m->nparams ? (size_t)m->nparams : 1, sizeof *entries);
  if (!entries)
    return tlc_fail(err, "out of memory");
  int n = 0;
  for (int i = 0; i < m->nparams; i++) {
    const TlcParamInfo *p = &m->params[i];
    if (p->optim)
      continue;
    entries[n] = (TlcSafetensorsEntry){p->name, p->dims, {0}, p->is_int, run->arena + p->offset};
    memcpy(entries[n].shape, p->shape, sizeof entries[n].shape);
    n++;
  }
  char epochs[32];
  snprintf(epochs, sizeof epochs, "%d", run->epochs_done);
  const char *metadata[] = {"format", "pt", "producer", "tlc", "model", m->name, "epochs", epochs, NULL};
  int rc = tlc_safetensors_save(run->export_path, entries, n, metadata, err);
  free(entries);
  if (rc == 0)
    printf("export: %s: %d tensors (safetensors, F32 and I64)\n", run->export_path, n);
  return rc;
}

int trainer_write_outputs(TlcRun *run, TlcError *err) {
  if (run->export_path && export_weights(run, err) != 0)
    return -1;
  if (!run->logits_path)
    return 0;
  if (tlc_npy_save_f32(run->logits_path, run->test_logits, run->ntest, run->model->classes, err) != 0)
    return -1;
  printf("logits: %s: %lld x %d float32 (.npy)\n", run->logits_path, (long long)run->ntest, run->model->classes);
  return 0;
}
