// trainer_data.c: the run's data: loading the splits, checking them against the model,
// the dataset report, and the loader (threads, decoded cache, OUT/samples.png).
//
// Contract: everything here runs in tlc_run_start, so bad data fails before the first step.
// The report is one line per split fact: sizes, classes with their names and where they came
// from, where val came from (or that there is none, and what that changes), images found in
// sub-folders and files of formats tlc does not decode; later, counts of the files converted
// to the model's channels, never one line per file. The first sample of the test split goes
// through the evaluation transforms before training, so a data set whose images cannot become
// the model's input shape is refused with the transform's own message (naming the file)
// instead of in the middle of an epoch.
#include "trainer_internal.h"

#include <stdlib.h>
#include <string.h>

enum { SAMPLES_IN_GRID = 16, REPORT_NAMES_MAX = 12 };

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// Every label must name one of the model's classes.
static int check_labels(const TlcRun *run, const TlcDataset *d, const char *what, TlcError *err) {
  const TlcModel *m = run->model;
  for (int64_t i = 0; i < d->count; i++)
    if (d->labels[i] >= m->classes)
      return tlc_fail(err, "%s: %s image %lld%s%s has label %d, but model '%s' has %d classes (labels 0 to %d)",
                      run->data_dir, what, (long long)i, d->paths ? " " : "", d->paths ? d->paths[i] : "",
                      d->labels[i], m->name, m->classes, m->classes - 1);
  return 0;
}

// A data set with more classes than the model cannot be trained on, even if some are empty.
static int check_classes(const TlcRun *run, TlcError *err) {
  const TlcModel *m = run->model;
  const TlcData *d = &run->data;
  if (d->class_names && d->classes != m->classes)
    return tlc_fail(err, "%s has %d classes (%s, ...), but model '%s' has %d outputs; compile it with "
                    "--set classes=%d (or a matching model)", run->data_dir, d->classes, d->class_names[0], m->name,
                    m->classes, d->classes);
  return 0;
}

// Keeps the first n samples of d: the ones --limit uses, so that no other file is decoded.
static void keep_first(TlcDataset *d, int64_t n) {
  if (n >= d->count)
    return;
  for (int64_t i = n; d->paths && i < d->count; i++)
    free(d->paths[i]);
  d->count = n;
}

// Sizes of the three splits after --limit, which keep only what they use. Returns a status.
static int size_splits(TlcRun *run, TlcError *err) {
  const TlcModel *m = run->model;
  int64_t limit = run->limit > 0 ? run->limit : INT64_MAX;
  run->ntest = min64(run->data.test.count, limit);
  keep_first(&run->data.test, run->ntest);
  if (run->eval_checkpoint)
    return TRAINER_OK;
  run->ntrain = min64(run->data.train.count, limit);
  run->nval = min64(run->data.val.count, limit);
  keep_first(&run->data.train, run->ntrain);
  keep_first(&run->data.val, run->nval);
  if (run->ntrain < m->batch) {
    tlc_fail(err, "%s: %lld training images, fewer than one batch of %lld (the batch size is fixed when "
             "the trainer is compiled)%s", run->data_dir, (long long)run->ntrain, (long long)m->batch,
             run->limit ? "; raise --limit" : "");
    return run->limit ? TRAINER_USAGE : TRAINER_FAILED;
  }
  return TRAINER_OK;
}

// Why a format's validation split can be empty, in the terms of its .graph setting.
static const char *no_val_reason(const char *format) {
  if (!strcmp(format, "cifar10"))
    return "cifar10's dev is 0";
  if (!strcmp(format, "idx"))
    return "idx's val is 0";
  if (!strcmp(format, "image_folder"))
    return "there is no val/ folder and val_split is 0";
  return "the data set has no validation images";
}

static void print_validation(const TlcRun *run) {
  const TlcData *d = &run->data;
  if (run->nval > 0 && d->val_from[0])
    printf("data: val is %s\n", d->val_from);
  else if (run->nval == 0)
    printf("data: no validation split (%s): each epoch is tested on the test split instead (no held-out "
           "score), best.ckpt is not written (last.ckpt is), and the result line says best_val_acc=none\n",
           no_val_reason(run->model->data_format));
}

static void print_files(const TlcData *d) {
  if (d->nested)
    printf("data: %lld images are in sub-folders of class folders; they belong to their class, as in torchvision's "
           "ImageFolder\n", (long long)d->nested);
  if (d->other_formats)
    printf("data: %lld files (%s) are not used: tlc decodes JPEG and PNG only (torchvision's ImageFolder would read "
           "them)\n", (long long)d->other_formats, d->other_exts);
}

static void print_report(const TlcRun *run) {
  const TlcModel *m = run->model;
  const TlcData *d = &run->data;
  printf("data: %s (%s): ", run->data_dir, m->data_format);
  if (!run->eval_checkpoint)
    printf("train %lld, val %lld, ", (long long)run->ntrain, (long long)run->nval);
  printf("test %lld images, %d classes; the model takes %dx%dx%d\n", (long long)run->ntest, m->classes, m->channels,
         m->height, m->width);
  if (!run->eval_checkpoint)
    print_validation(run);
  if (d->class_names) {
    printf("data: classes:");
    for (int32_t c = 0; c < d->classes && c < REPORT_NAMES_MAX; c++)
      printf(" %d %s%s", c, d->class_names[c], c + 1 < d->classes ? "," : "");
    printf("%s\n", d->classes > REPORT_NAMES_MAX ? " ..." : "");
    if (d->names_from[0])
      printf("data: class names from %s\n", d->names_from);
  }
  print_files(d);
}

// Whether every file of the splits in use was decoded into the cache (so all are counted).
static bool all_cached(const TlcRun *run) {
  const TlcDataset *splits[3] = {&run->data.train, &run->data.val, &run->data.test};
  for (int s = run->eval_checkpoint ? 2 : 0; s < 3; s++)
    if (splits[s]->paths && splits[s]->count && !splits[s]->cache)
      return false;
  return true;
}

void trainer_report_files(const TlcRun *run, bool at_start) {
  if (!run->loader || at_start != all_cached(run))
    return;
  TlcLoaderStats st;
  tlc_loader_stats(run->loader, &st);
  int64_t total = 0;
  for (int k = 0; k < TLC_IMAGE_KINDS; k++)
    total += st.converted[k];
  if (total) {
    printf("data: %lld image files converted to %s as torchvision's loader does:", (long long)total,
           run->model->channels == 1 ? "grayscale (RGB, then PIL's convert(\"L\"))" : "RGB (PIL's convert(\"RGB\"))");
    const char *sep = " ";
    for (int k = 0; k < TLC_IMAGE_KINDS; k++)
      if (st.converted[k]) {
        printf("%s%lld %s", sep, (long long)st.converted[k], tlc_image_kind_name((TlcImageKind)k));
        sep = ", ";
      }
    printf("\n");
  }
  if (st.large)
    printf("data: %lld image files have more than %lld pixels (PIL warns of a decompression bomb there; they are "
           "read, up to %lld)\n", (long long)st.large, (long long)TLC_IMAGE_WARN_PIXELS,
           (long long)TLC_IMAGE_MAX_PIXELS);
}

int trainer_load_data(TlcRun *run, TlcError *err) {
  const TlcModel *m = run->model;
  if (run->npredict)
    return trainer_predict_load(run, err) == 0 ? TRAINER_OK : TRAINER_FAILED;
  TlcDataSpec spec = {.format = m->data_format, .dir = run->data_dir, .val_count = m->val_count,
                      .dev_batch = m->dev_batch, .class_names = m->data_class_names,
                      .nclass_names = m->ndata_class_names, .classes = m->subset_classes,
                      .nclasses = m->nsubset_classes, .per_class = m->per_class, .val_split = m->val_split,
                      .need_train = !run->eval_checkpoint};
  if (tlc_data_load(&spec, &run->data, err) != 0 || check_classes(run, err) != 0 ||
      check_labels(run, &run->data.train, "training", err) != 0 ||
      check_labels(run, &run->data.val, "validation", err) != 0 ||
      check_labels(run, &run->data.test, "test", err) != 0)
    return TRAINER_FAILED;
  if (run->data.test.count == 0) {
    tlc_fail(err, "%s: the test split has no images", run->data_dir);
    return TRAINER_FAILED;
  }
  int status = size_splits(run, err);
  if (status == TRAINER_OK)
    print_report(run);
  return status;
}

// The undoing of a final normalize, for drawing samples.
static void normalisation(const TlcModel *m, float mean[4], float std[4]) {
  for (int c = 0; c < 4; c++)
    mean[c] = 0, std[c] = 1;
  int n = m->ntrain_transform;
  if (n > 0 && m->train_transform[n - 1].kind == TLC_TF_NORMALIZE)
    for (int c = 0; c < 4; c++)
      mean[c] = m->train_transform[n - 1].mean[c], std[c] = m->train_transform[n - 1].std[c];
}

// OUT/samples.png: training samples spread over the data set, augmented as in epoch 1.
static int write_samples(TlcRun *run, TlcError *err) {
  const TlcModel *m = run->model;
  int n = (int)min64(SAMPLES_IN_GRID, run->ntrain);
  int64_t size = (int64_t)m->channels * m->height * m->width;
  float *images = malloc((size_t)(n * size) * sizeof *images);
  int32_t labels[SAMPLES_IN_GRID];
  if (!images)
    return tlc_fail(err, "out of memory for the sample grid");
  int rc = 0;
  for (int k = 0; rc == 0 && k < n; k++) {
    int64_t i = (int64_t)k * run->ntrain / n;
    rc = tlc_loader_sample(run->loader, &run->data.train, i, m->train_transform, m->ntrain_transform, 0,
                           images + k * size, err);
    labels[k] = run->data.train.labels[i];
  }
  float mean[4], std[4];
  normalisation(m, mean, std);
  char *path = malloc(strlen(run->out_dir) + 16);
  if (rc == 0 && path) {
    sprintf(path, "%s/samples.png", run->out_dir);
    rc = tlc_samples_write(path, images, labels, n, m->channels, m->height, m->width, mean, std,
                           run->data.class_names, err);
    if (rc == 0)
      printf("data: %d augmented training samples drawn in %s\n", n, path);
  }
  free(path);
  free(images);
  return rc;
}

// When test lists val's files and val is cached, test becomes a view of val: its files are
// decoded once, and the files that do not decode are dropped from both alike.
static void test_views_val(TlcData *d) {
  if (!d->test_is_val || !d->val.cache || d->test.view)
    return;
  tlc_dataset_free(&d->test);
  d->test = d->val;
  d->test.view = true;
}

// The decoded cache, split by split, while the budget lasts (test from val's, when it is
// val's files).
static int fill_cache(TlcRun *run, TlcError *err) {
  int64_t budget = run->cache_mb * 1024 * 1024, before = budget;
  TlcDataset *splits[3] = {&run->data.train, &run->data.val, &run->data.test};
  bool shared = run->data.test_is_val && !run->eval_checkpoint && run->nval == run->ntest;
  int64_t decoded = 0;
  for (int s = run->eval_checkpoint ? 2 : 0; s < 3; s++) {
    if (s == 2 && shared && run->data.val.cache) {
      test_views_val(&run->data);
      break;
    }
    if (tlc_loader_cache(run->loader, splits[s], &budget, err) != 0)
      return -1;
    decoded += splits[s]->cache ? splits[s]->count : 0;
  }
  bool files = run->data.train.paths || run->data.test.paths;
  if (files && budget < before)
    printf("data: %.1f MB of decoded images cached in memory (%lld images%s; --cache-mb %lld)\n",
           (double)(before - budget) / (1024 * 1024), (long long)decoded, run->data.test.view ? ", test is val's" : "",
           (long long)run->cache_mb);
  else if (files && run->cache_mb > 0)
    printf("data: the decoded images do not fit --cache-mb %lld: decoding them every epoch\n", (long long)run->cache_mb);
  else if (files)
    printf("data: --cache-mb 0: decoding the image files every epoch\n");
  trainer_report_files(run, true);
  // Caching drops the files that do not decode: the splits may have shrunk.
  run->ntrain = min64(run->ntrain, run->data.train.count);
  run->nval = min64(run->nval, run->data.val.count);
  run->ntest = min64(run->ntest, run->data.test.count);
  return 0;
}

int trainer_start_loader(TlcRun *run, TlcError *err) {
  const TlcModel *m = run->model;
  TlcLoaderConfig cfg = {.threads = run->loader_threads ? run->loader_threads : run->threads, .batch = m->batch,
                         .channels = m->channels, .height = m->height, .width = m->width, .seed = run->seed};
  if (tlc_loader_create(&run->loader, &cfg, err) != 0)
    return -1;
  if (run->npredict)  // the images are decoded already; each is checked, not only the first
    return trainer_predict_check(run, err);
  if (fill_cache(run, err) != 0)
    return -1;
  if (!run->eval_checkpoint && run->ntrain < m->batch)
    return tlc_fail(err, "%s: %lld training images decode, fewer than one batch of %lld", run->data_dir,
                    (long long)run->ntrain, (long long)m->batch);
  if (run->ntest < 1)
    return tlc_fail(err, "%s: no test image could be decoded", run->data_dir);
  size_t size = (size_t)m->channels * m->height * m->width;
  float *probe = malloc(size * sizeof *probe);
  if (!probe)
    return tlc_fail(err, "out of memory");
  int rc = tlc_loader_sample(run->loader, &run->data.test, 0, m->eval_transform, m->neval_transform, 0, probe, err);
  free(probe);
  if (rc && !run->data.test.paths) {  // a file's message names the file; an image in memory needs the place
    TlcError why = *err;
    tlc_fail(err, "%s: %s", run->data_dir, why.msg);
  }
  if (rc == 0 && !run->eval_checkpoint)
    rc = write_samples(run, err);
  return rc;
}

void trainer_free_data(TlcRun *run) {
  tlc_loader_destroy(run->loader);
  run->loader = NULL;
  tlc_data_free(&run->data);
}
