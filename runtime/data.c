// data.c: data sets, the one shape every loader fills, and the choice of format.
//
// Contract (tlcrt.h, section "data.c"): tlc_data_load reads the format the model names into
// train, val and test splits; a failure leaves nothing allocated. IDX's val split is the end of
// its training file, as before the other formats existed.
#include "tlcrt.h"

#include <stdlib.h>
#include <string.h>

void tlc_strings_free(char **names, int32_t n) {
  for (int32_t i = 0; names && i < n; i++)
    free(names[i]);
  free(names);
}

char **tlc_strings_dup(const char *const *names, int32_t n) {
  char **copy = calloc((size_t)(n > 0 ? n : 1), sizeof *copy);
  for (int32_t i = 0; copy && i < n; i++) {
    copy[i] = strdup(names[i]);
    if (!copy[i]) {
      tlc_strings_free(copy, i);
      return NULL;
    }
  }
  return copy;
}

void tlc_dataset_free(TlcDataset *d) {
  if (d->view) {
    memset(d, 0, sizeof *d);
    return;
  }
  free(d->pixels);
  tlc_strings_free(d->paths, (int32_t)d->count);
  for (int64_t i = 0; d->cache && i < d->count; i++)
    tlc_image_free(&d->cache[i]);
  free(d->cache);
  free(d->labels);
  memset(d, 0, sizeof *d);
}

void tlc_data_free(TlcData *d) {
  tlc_dataset_free(&d->train);
  tlc_dataset_free(&d->val);
  tlc_dataset_free(&d->test);
  tlc_strings_free(d->class_names, d->classes);
  memset(d, 0, sizeof *d);
}

int tlc_dataset_split_tail(TlcDataset *from, int64_t n, TlcDataset *to, TlcError *err) {
  if (n < 0 || n > from->count)
    return tlc_fail(err, "cannot hold out %lld of %lld samples", (long long)n, (long long)from->count);
  int64_t keep = from->count - n;
  size_t image = (size_t)from->channels * from->height * from->width;
  memset(to, 0, sizeof *to);
  to->count = n;
  to->channels = from->channels, to->height = from->height, to->width = from->width;
  to->classes = from->classes;
  to->labels = malloc((size_t)(n > 0 ? n : 1) * sizeof *to->labels);
  if (from->pixels)
    to->pixels = malloc(image * (size_t)(n > 0 ? n : 1));
  if (from->paths)
    to->paths = calloc((size_t)(n > 0 ? n : 1), sizeof *to->paths);
  if (!to->labels || (from->pixels && !to->pixels) || (from->paths && !to->paths)) {
    free(to->labels), free(to->pixels), free(to->paths);
    memset(to, 0, sizeof *to);
    return tlc_fail(err, "out of memory splitting the data set");
  }
  memcpy(to->labels, from->labels + keep, (size_t)n * sizeof *to->labels);
  if (from->pixels)
    memcpy(to->pixels, from->pixels + (size_t)keep * image, (size_t)n * image);
  if (from->paths)  // the strings move; from's count shrinks, so nobody frees them twice
    memcpy(to->paths, from->paths + keep, (size_t)n * sizeof *to->paths);
  from->count = keep;
  return 0;
}

static int load_idx(const TlcDataSpec *spec, TlcData *out, TlcError *err) {
  if (tlc_idx_load(spec->dir, "test", &out->test, err))
    return -1;
  out->classes = out->test.classes;
  if (!spec->need_train)
    return 0;
  if (tlc_idx_load(spec->dir, "train", &out->train, err))
    return -1;
  if (spec->val_count >= out->train.count)
    return tlc_fail(err, "%s: the training file has %lld images; holding out %lld for validation leaves none to "
                    "train on", spec->dir, (long long)out->train.count, (long long)spec->val_count);
  if (out->train.classes > out->classes)
    out->classes = out->train.classes;
  snprintf(out->val_from, sizeof out->val_from, "the last %lld training images", (long long)spec->val_count);
  return tlc_dataset_split_tail(&out->train, spec->val_count, &out->val, err);
}

// The experiment's names for IDX's numbered classes: one for every label the files hold.
static int name_idx_classes(const TlcDataSpec *spec, TlcData *out, TlcError *err) {
  if (!spec->class_names)
    return 0;
  if (out->classes > spec->nclass_names)
    return tlc_fail(err, "%s: the files hold labels 0 to %d, but the experiment's idx(names = [...]) names %d "
                    "classes", spec->dir, out->classes - 1, spec->nclass_names);
  out->classes = out->train.classes = out->val.classes = out->test.classes = spec->nclass_names;
  out->class_names = tlc_strings_dup(spec->class_names, spec->nclass_names);
  snprintf(out->names_from, sizeof out->names_from, "the experiment (idx(names = [...]))");
  return out->class_names ? 0 : tlc_fail(err, "out of memory");
}

int tlc_dataset_subset(TlcDataset *d, const int32_t *classes, int32_t n, int64_t per_class, TlcError *err) {
  int32_t limit = classes ? n : d->classes;
  int64_t *seen = calloc((size_t)limit + 1, sizeof *seen);
  if (!seen)
    return tlc_fail(err, "out of memory selecting a subset of the data");
  size_t image = (size_t)d->channels * d->height * d->width;
  int64_t kept = 0;
  for (int64_t i = 0; i < d->count; i++) {
    int32_t label = d->labels[i];
    if (classes) {
      label = -1;
      for (int32_t k = 0; k < n; k++)
        label = classes[k] == d->labels[i] ? k : label;
    }
    bool keep = label >= 0 && label < limit && (per_class == 0 || seen[label] < per_class);
    if (!keep) {
      if (d->paths)
        free(d->paths[i]);
      continue;
    }
    seen[label]++;
    d->labels[kept] = label;
    if (d->pixels)
      memmove(d->pixels + (size_t)kept * image, d->pixels + (size_t)i * image, image);
    if (d->paths)
      d->paths[kept] = d->paths[i];
    kept++;
  }
  free(seen);
  d->count = kept;
  if (classes)
    d->classes = n;
  return 0;
}

// The subset the spec asks for, on every split; class names follow their classes.
static int apply_subset(const TlcDataSpec *spec, TlcData *data, TlcError *err) {
  if (!spec->classes && !spec->per_class)
    return 0;
  for (int32_t k = 0; spec->classes && k < spec->nclasses; k++)
    if (spec->classes[k] < 0 || spec->classes[k] >= data->classes)
      return tlc_fail(err, "%s: the experiment's subset names class %d, but the data set has classes 0 to %d",
                      spec->dir, spec->classes[k], data->classes - 1);
  TlcDataset *splits[] = {&data->train, &data->val, &data->test};
  for (int s = 0; s < 3; s++)
    if (tlc_dataset_subset(splits[s], spec->classes, spec->nclasses, s == 0 ? spec->per_class : 0, err))
      return -1;
  if (!spec->classes)
    return 0;
  if (data->class_names) {
    char **names = calloc((size_t)spec->nclasses, sizeof *names);
    if (!names)
      return tlc_fail(err, "out of memory selecting a subset of the data");
    for (int32_t k = 0; k < spec->nclasses; k++) {
      names[k] = data->class_names[spec->classes[k]];
      data->class_names[spec->classes[k]] = NULL;
    }
    tlc_strings_free(data->class_names, data->classes);
    data->class_names = names;
  }
  data->classes = spec->nclasses;
  return 0;
}

int tlc_data_load(const TlcDataSpec *spec, TlcData *out, TlcError *err) {
  memset(out, 0, sizeof *out);
  const char *format = spec->format ? spec->format : "";
  int rc;
  if (!strcmp(format, "idx"))
    rc = load_idx(spec, out, err) || name_idx_classes(spec, out, err);
  else if (!strcmp(format, "cifar10"))
    rc = tlc_cifar10_load(spec->dir, spec->val_count, spec->dev_batch, spec->need_train, out, err);
  else if (!strcmp(format, "image_folder"))
    rc = tlc_image_folder_load(spec->dir, spec->val_split, spec->need_train, out, err);
  else if (!strcmp(format, "flowers102"))
    rc = tlc_flowers102_load(spec->dir, spec->need_train, out, err);
  else
    rc = tlc_fail(err, "data format '%s' is not known to this runtime (it reads idx, image_folder, cifar10 and "
                  "flowers102)", format);
  if (!rc)
    rc = apply_subset(spec, out, err);
  if (rc)
    tlc_data_free(out);
  return rc;
}
