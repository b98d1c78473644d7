// trainer_predict.c: --predict IMAGE...: the images as the test split, and one line per image.
//
// Contract (trainer_internal.h): the images replace the test split, so they take the same path
// through the loader and the evaluation transforms as test images do, in batches padded with the
// last image. Each file is decoded before anything runs and each goes through the transforms
// once, so a missing, corrupt or too-small image is an error naming it, never a skipped sample
// (the loader skips broken training files; a prediction asked for by name must not be replaced).
// The data set is read only for its class names: when it does not load, or names a different
// number of classes, classes are called "class K" and the run goes on.
#include "trainer_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { PREDICT_TOP = 5 };

// The class names of the experiment's data, moved into run->data, or none (said why).
static void load_class_names(TlcRun *run) {
  const TlcModel *m = run->model;
  TlcDataSpec spec = {.format = m->data_format, .dir = run->data_dir, .val_count = m->val_count,
                      .dev_batch = m->dev_batch, .val_split = m->val_split, .need_train = false};
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

int trainer_print_predictions(const TlcRun *run, TlcError *err) {
  const TlcModel *m = run->model;
  double *p = malloc((size_t)m->classes * sizeof *p);
  if (!p)
    return tlc_fail(err, "out of memory");
  int k = m->classes < PREDICT_TOP ? m->classes : PREDICT_TOP;
  for (int64_t i = 0; i < run->ntest; i++) {
    int32_t best[PREDICT_TOP];
    softmax(run->test_logits + i * m->classes, m->classes, p);
    top_classes(p, m->classes, best, k);
    printf("predict: %s ->", run->data.test.paths[i]);
    for (int j = 0; j < k; j++) {
      const char *name = run->data.class_names ? run->data.class_names[best[j]] : NULL;
      if (name)
        printf("%s %s (%d) %.6f", j ? "," : "", name, best[j], p[best[j]]);
      else
        printf("%s class %d (%d) %.6f", j ? "," : "", best[j], best[j], p[best[j]]);
    }
    printf("\n");
  }
  free(p);
  return 0;
}
