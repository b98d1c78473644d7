// trainer_weights.c: --weights, pretrained or earlier weights into a fresh state.
//
// Contract (trainer_internal.h):
// - The file is a safetensors file or a tlc checkpoint, told apart by its first bytes.
// - Every parameter and buffer of the model must be in the file with its shape, and every
//   tensor of the file must be one of them; a checkpoint's optimizer state ("<tensor>.<what>"
//   beside "<tensor>") is skipped, since the optimizer starts afresh. The one exception is
//   the classification head (TlcParamInfo.head): when its first dimension (the classes)
//   differs and the rest agrees, it keeps its fresh initialisation and one line says so.
//   Anything else that differs is an error naming the tensor and both shapes.
// - Every check runs before anything is copied, so a refused file leaves the state as it was.
#include "trainer_internal.h"

#include <stdlib.h>
#include <string.h>

// One tensor of the file, whichever format holds it.
typedef struct FileTensor {
  const char *name;
  int dims;
  const int64_t *shape;
  const TlcStTensor *st;    // safetensors: read through tlc_safetensors_read
  const float *values;      // checkpoint: floats
  bool used, skipped;
} FileTensor;

typedef struct WeightFile {
  const char *path;
  bool safetensors;
  TlcSafetensors st;
  TlcTensorList ck;
  FileTensor *tensors;
  int count;
} WeightFile;

static void close_file(WeightFile *w) {
  if (w->safetensors)
    tlc_safetensors_close(&w->st);
  else
    tlc_tensor_list_free(&w->ck);
  free(w->tensors);
  w->tensors = NULL;
}

static int find_tensor(const WeightFile *w, const char *name) {
  for (int i = 0; i < w->count; i++)
    if (strcmp(w->tensors[i].name, name) == 0)
      return i;
  return -1;
}

// A checkpoint's optimizer state is named after its tensor: "fc.weight.momentum_buffer".
static bool is_optimizer_state(const WeightFile *w, const char *name) {
  for (int i = 0; i < w->count; i++) {
    size_t len = strlen(w->tensors[i].name);
    if (strncmp(name, w->tensors[i].name, len) == 0 && name[len] == '.')
      return true;
  }
  return false;
}

static int open_file(const char *path, WeightFile *w, TlcError *err) {
  memset(w, 0, sizeof *w);
  w->path = path;
  w->safetensors = tlc_safetensors_sniff(path);
  if (w->safetensors ? tlc_safetensors_open(path, &w->st, err) : tlc_checkpoint_read_tensors(path, &w->ck, err))
    return -1;
  int n = w->safetensors ? w->st.count : w->ck.count;
  w->tensors = calloc(n ? (size_t)n : 1, sizeof *w->tensors);
  if (!w->tensors) {
    close_file(w);
    return tlc_fail(err, "%s: out of memory", path);
  }
  for (int i = 0; i < n; i++) {
    FileTensor *t = &w->tensors[i];
    if (w->safetensors)
      *t = (FileTensor){w->st.tensors[i].name, w->st.tensors[i].dims, w->st.tensors[i].shape, &w->st.tensors[i], NULL};
    else
      *t = (FileTensor){w->ck.tensors[i].name, w->ck.tensors[i].dims, w->ck.tensors[i].shape, NULL, w->ck.tensors[i].data};
  }
  w->count = n;
  for (int i = 0; !w->safetensors && i < n; i++)
    w->tensors[i].skipped = is_optimizer_state(w, w->tensors[i].name);
  return 0;
}

// "[1000, 512]" into buf.
static const char *shape_str(char *buf, size_t size, int dims, const int64_t *shape) {
  size_t at = (size_t)snprintf(buf, size, "[");
  for (int d = 0; d < dims && at < size; d++)
    at += (size_t)snprintf(buf + at, size - at, "%s%lld", d ? ", " : "", (long long)shape[d]);
  if (at < size)
    snprintf(buf + at, size - at, "]");
  return buf;
}

static bool same_shape(int dims, const int64_t *a, const int64_t *b, int from) {
  for (int d = from; d < dims; d++)
    if (a[d] != b[d])
      return false;
  return true;
}

// What loading will do with one model tensor: copy it from file tensor *match, or keep its
// initialisation (*head_differs, the head's class count differs).
static int check_one(const TlcParamInfo *p, WeightFile *w, int *match, bool *head_differs, TlcError *err) {
  char mine[96], theirs[96];
  int j = find_tensor(w, p->name);
  if (j < 0 || w->tensors[j].skipped)
    return tlc_fail(err, "%s: tensor '%s' %s of this model is not in the file", w->path, p->name,
                    shape_str(mine, sizeof mine, p->dims, p->shape));
  FileTensor *t = &w->tensors[j];
  t->used = true;
  *match = j;
  if (t->dims == p->dims && same_shape(p->dims, t->shape, p->shape, 0)) {
    if (t->st && (t->st->dtype == TLC_DTYPE_I64) != p->is_int)
      return tlc_fail(err, "%s: tensor '%s' holds %s, but this model's holds %s", w->path, p->name,
                      tlc_dtype_name(t->st->dtype), p->is_int ? "integers (I64)" : "floats");
    return 0;
  }
  *head_differs = p->head && p->dims >= 1 && t->dims == p->dims && same_shape(p->dims, t->shape, p->shape, 1);
  if (*head_differs)
    return 0;
  return tlc_fail(err, "%s: tensor '%s' has shape %s in the file, %s in this model", w->path, p->name,
                  shape_str(theirs, sizeof theirs, t->dims, t->shape), shape_str(mine, sizeof mine, p->dims, p->shape));
}

static int check_extra(const WeightFile *w, const TlcModel *m, TlcError *err) {
  char theirs[96];
  for (int j = 0; j < w->count; j++) {
    const FileTensor *t = &w->tensors[j];
    if (!t->used && !t->skipped)
      return tlc_fail(err, "%s: tensor '%s' %s of the file is not in model '%s'", w->path, t->name,
                      shape_str(theirs, sizeof theirs, t->dims, t->shape), m->name);
  }
  return 0;
}

static int copy_one(const TlcRun *run, const TlcParamInfo *p, const FileTensor *t, const WeightFile *w, TlcError *err) {
  char *dst = run->arena + p->offset;
  if (t->st)
    return tlc_safetensors_read(&w->st, t->st, dst, p->is_int, err);
  int64_t n = 1;
  for (int d = 0; d < p->dims; d++)
    n *= p->shape[d];
  if (!p->is_int) {
    memcpy(dst, t->values, (size_t)n * sizeof(float));
    return 0;
  }
  for (int64_t k = 0; k < n; k++) {  // checkpoints hold counters as floats (see trainer_state.c)
    int64_t v = (int64_t)t->values[k];
    memcpy(dst + k * (int64_t)sizeof v, &v, sizeof v);
  }
  return 0;
}

// One line for the re-initialised head: names, the file's shapes and this model's.
static void print_head(const TlcModel *m, const WeightFile *w, const int *match, const bool *differs) {
  char mine[96], theirs[96];
  printf("weights: %s: the classification head is re-initialised, its class count differs:", w->path);
  const char *sep = " ";
  for (int i = 0; i < m->nparams; i++) {
    const TlcParamInfo *p = &m->params[i];
    if (p->head && !p->optim) {
      const FileTensor *t = &w->tensors[match[i]];
      printf("%s%s %s in the file, %s here%s", sep, p->name, shape_str(theirs, sizeof theirs, t->dims, t->shape),
             shape_str(mine, sizeof mine, p->dims, p->shape), differs[i] ? "" : " (re-initialised with it)");
      sep = "; ";
    }
  }
  printf("\n");
}

static int load_checked(TlcRun *run, WeightFile *w, int *match, bool *differs, TlcError *err) {
  const TlcModel *m = run->model;
  bool head_differs = false;
  int loaded = 0;
  for (int i = 0; i < m->nparams; i++) {
    if (m->params[i].optim)
      continue;
    if (check_one(&m->params[i], w, &match[i], &differs[i], err) != 0)
      return -1;
    head_differs |= differs[i];
  }
  if (check_extra(w, m, err) != 0)
    return -1;
  for (int i = 0; i < m->nparams; i++) {
    const TlcParamInfo *p = &m->params[i];
    if (p->optim || (head_differs && p->head))  // a head is taken whole or not at all
      continue;
    if (copy_one(run, p, &w->tensors[match[i]], w, err) != 0)
      return -1;
    loaded++;
  }
  if (head_differs)
    print_head(m, w, match, differs);
  printf("weights: %s: %d tensors loaded (%s)\n", w->path, loaded, w->safetensors ? "safetensors" : "tlc checkpoint");
  return 0;
}

int trainer_load_weights(TlcRun *run, const char *path, TlcError *err) {
  WeightFile w;
  if (open_file(path, &w, err) != 0)
    return -1;
  int n = run->model->nparams;
  int *match = calloc(n ? (size_t)n : 1, sizeof *match);
  bool *differs = calloc(n ? (size_t)n : 1, sizeof *differs);
  int rc = match && differs ? load_checked(run, &w, match, differs, err) : tlc_fail(err, "%s: out of memory", path);
  free(match);
  free(differs);
  close_file(&w);
  return rc;
}
