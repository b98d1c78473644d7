// trainer_predict.c: --predict IMAGE...: the images as the test split, and one line per image.
//
// Contract (trainer_internal.h): the images replace the test split, so they take the same path
// through the loader and the evaluation transforms as test images do, in batches padded with the
// last image. Each file is decoded before anything runs and each goes through the transforms
// once, so a missing, corrupt or too-small image is an error naming it, never a skipped sample
// (the loader skips broken training files; a prediction asked for by name must not be replaced).
// The data set is read only for its class names (not at all when the experiment names IDX's
// classes): when it does not load, or names a different number of classes, classes are called
// "class K" and the run goes on.
#include "trainer_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PREDICT_TOP = 5 };

// The names idx(names = [...]) compiled into the trainer, of the subset's classes; false when
// there are none (or no memory for them).
static bool compiled_class_names(TlcRun *run) {
  const TlcModel *m = run->model;
  int32_t n = m->subset_classes ? m->nsubset_classes : m->ndata_class_names;
  if (!m->data_class_names || n != m->classes)
    return false;
  const char **names = malloc((size_t)n * sizeof *names);
  for (int32_t k = 0; names && k < n; k++)
    names[k] = m->data_class_names[m->subset_classes ? m->subset_classes[k] : k];
  run->data.class_names = names ? tlc_strings_dup(names, n) : NULL;
  run->data.classes = run->data.class_names ? n : 0;
  free(names);
  return run->data.class_names != NULL;
}

// The class names of the experiment's data, moved into run->data, or none (said why).
static void load_class_names(TlcRun *run) {
  const TlcModel *m = run->model;
  if (compiled_class_names(run))
    return;
  TlcDataSpec spec = {.format = m->data_format, .dir = run->data_dir, .val_count = m->val_count,
                      .dev_batch = m->dev_batch, .val_split = m->val_split, .need_train = false,
                      .classes = m->subset_classes, .nclasses = m->nsubset_classes};   // the subset's names, in its order
  TlcData data;
  TlcError why;
  if (tlc_data_load(&spec, &data, &why) != 0) {
    printf("data: classes are numbered: the data set did not load for their names (%s)\n", why.msg);
    return;
  }
  if (data.class_names && data.classes == m->classes) {
    run->data.class_names = data.class_names;
    run->data.classes = data.classes;
    data.class_names = NULL;
    data.classes = 0;
  } else if (data.class_names) {
    printf("data: classes are numbered: %s has %d class names, the model %d classes\n", run->data_dir,
           data.classes, m->classes);
  }
  tlc_data_free(&data);
}

// run->data.test: the images, decoded now (kept as the loader's cache), labelled 0.
static int load_images(TlcRun *run, TlcError *err) {
  TlcDataset *d = &run->data.test;
  int64_t n = run->npredict;
  d->paths = calloc((size_t)n, sizeof *d->paths);
  d->cache = calloc((size_t)n, sizeof *d->cache);
  d->labels = calloc((size_t)n, sizeof *d->labels);
  if (!d->paths || !d->cache || !d->labels)
    return tlc_fail(err, "out of memory for %lld images to predict", (long long)n);
  d->classes = run->model->classes;
  for (int64_t i = 0; i < n; i++) {
    d->paths[i] = strdup(run->predict_paths[i]);
    d->count = i + 1;  // what tlc_dataset_free releases
    if (!d->paths[i])
      return tlc_fail(err, "out of memory");
    if (tlc_image_read_as(d->paths[i], run->model->channels, &d->cache[i], err) != 0)
      return -1;   // the message names the file
  }
  return 0;
}

int trainer_predict_load(TlcRun *run, TlcError *err) {
  const TlcModel *m = run->model;
  load_class_names(run);
  if (load_images(run, err) != 0)
    return -1;
  run->ntrain = run->nval = 0;
  run->ntest = run->npredict;
  printf("data: %lld images to predict; the model takes %dx%dx%d, %d classes", (long long)run->ntest, m->channels,
         m->height, m->width, m->classes);
  for (int32_t c = 0; run->data.class_names && c < m->classes && c < PREDICT_TOP * 2; c++)
    printf("%s %d %s", c ? "," : ":", c, run->data.class_names[c]);
  printf("%s\n", run->data.class_names && m->classes > PREDICT_TOP * 2 ? ", ..." : "");
  return 0;
}

int trainer_predict_check(TlcRun *run, TlcError *err) {
  const TlcModel *m = run->model;
  size_t size = (size_t)m->channels * m->height * m->width;
  float *probe = malloc(size * sizeof *probe);
  if (!probe)
    return tlc_fail(err, "out of memory");
  int rc = 0;
  for (int64_t i = 0; rc == 0 && i < run->ntest; i++)
    rc = tlc_loader_sample(run->loader, &run->data.test, i, m->eval_transform, m->neval_transform, 0, probe, err);
  free(probe);
  return rc;
}

// Softmax of logits[0..n) into p, in double: subtracting the maximum keeps exp finite.
static void softmax(const float *logits, int32_t n, double *p) {
  double top = logits[0], sum = 0;
  for (int32_t c = 1; c < n; c++)
    top = logits[c] > top ? logits[c] : top;
  for (int32_t c = 0; c < n; c++)
    sum += p[c] = exp((double)logits[c] - top);
  for (int32_t c = 0; c < n; c++)
    p[c] /= sum;
}

// The k most probable classes, most probable first; equal ones keep the lower class first.
static void top_classes(const double *p, int32_t n, int32_t *best, int k) {
  for (int j = 0; j < k; j++) {
    int32_t pick = -1;
    for (int32_t c = 0; c < n; c++) {
      bool taken = false;
      for (int i = 0; i < j; i++)
        taken = taken || best[i] == c;
      if (!taken && (pick < 0 || p[c] > p[pick]))
        pick = c;
    }
    best[j] = pick;
  }
}

// Class c's name: the data set's, or "class K" (in buf).
static const char *class_name(const TlcRun *run, int32_t c, char buf[32]) {
  if (run->data.class_names)
    return run->data.class_names[c];
  snprintf(buf, 32, "class %d", c);
  return buf;
}

// The true class of an image, when the folder it is in is named after one (a test folder of
// an ImageFolder tree; a folder named by class number when the classes have no names); -1
// when not known.
static int32_t true_class(const TlcRun *run, const char *path) {
  const char *end = strrchr(path, '/'), *start = end;
  if (!end)
    return -1;
  while (start > path && start[-1] != '/')
    start--;
  char buf[32];
  for (int32_t c = 0; c < run->model->classes; c++) {
    const char *name = buf;
    if (run->data.class_names)
      name = run->data.class_names[c];
    else
      snprintf(buf, sizeof buf, "%d", c);
    if (strlen(name) == (size_t)(end - start) && !strncmp(name, start, (size_t)(end - start)))
      return c;
  }
  return -1;
}

// --predict-grid: tile i shows image i, its top class and, when known, its true class.
static int write_grid(const TlcRun *run, const int32_t *top, const double *top_p, TlcError *err) {
  int64_t n = run->ntest;
  TlcGridTile *tiles = calloc((size_t)n, sizeof *tiles);
  char (*names)[2][32] = calloc((size_t)n, sizeof *names);
  int rc = tiles && names ? 0 : tlc_fail(err, "out of memory");
  for (int64_t i = 0; rc == 0 && i < n; i++) {
    int32_t truth = true_class(run, run->data.test.paths[i]);
    tiles[i] = (TlcGridTile){.image = &run->data.test.cache[i], .file = run->data.test.paths[i],
                             .predicted = class_name(run, top[i], names[i][0]), .probability = top_p[i],
                             .truth = truth >= 0 ? class_name(run, truth, names[i][1]) : NULL};
  }
  if (rc == 0 && (rc = tlc_predict_grid_write(run->predict_grid, tiles, (int)n, err)) == 0) {
    int width, height;
    tlc_predict_grid_size((int)n, &width, &height);
    printf("predict: %s: %lld images with their predicted classes, %dx%d pixels\n", run->predict_grid,
           (long long)n, width, height);
  }
  free(tiles);
  free(names);
  return rc;
}

int trainer_print_predictions(const TlcRun *run, TlcError *err) {
  const TlcModel *m = run->model;
  double *p = malloc((size_t)m->classes * sizeof *p), *top_p = malloc((size_t)run->ntest * sizeof *top_p);
  int32_t *top = malloc((size_t)run->ntest * sizeof *top);
  if (!p || !top || !top_p) {
    free(p), free(top), free(top_p);
    return tlc_fail(err, "out of memory");
  }
  int k = m->classes < PREDICT_TOP ? m->classes : PREDICT_TOP;
  for (int64_t i = 0; i < run->ntest; i++) {
    int32_t best[PREDICT_TOP] = {0};
    char buf[32];
    softmax(run->test_logits + i * m->classes, m->classes, p);
    top_classes(p, m->classes, best, k);
    top[i] = best[0], top_p[i] = p[best[0]];
    printf("predict: %s ->", run->data.test.paths[i]);
    for (int j = 0; j < k; j++)
      printf("%s %s (%d) %.6f", j ? "," : "", class_name(run, best[j], buf), best[j], p[best[j]]);
    printf("\n");
  }
  int rc = run->predict_grid ? write_grid(run, top, top_p, err) : 0;
  free(p), free(top), free(top_p);
  return rc;
}
