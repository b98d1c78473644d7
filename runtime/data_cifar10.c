// data_cifar10.c: CIFAR-10's binary batches.
//
// Contract (tlcrt.h, section "data_cifar10.c"): the five training batches and the test batch
// must all be there (a missing one would quietly shrink the data). A file whose size is not a
// whole number of 3073-byte records, or a label outside the class list, is an error naming the
// file (and the record). Planes (1024 R, G, B) become interleaved HWC pixels. Class names come
// from batches.meta.txt (one a line of any length, blank lines ignored) when it is there, else
// the names the data set was published with; TlcData.names_from says which.
#include "tlcrt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum {
  CIFAR_SIDE = 32, CIFAR_PLANE = CIFAR_SIDE * CIFAR_SIDE, CIFAR_RECORD = 1 + 3 * CIFAR_PLANE, CIFAR_BATCHES = 5,
  CIFAR_MAX_CLASSES = 256,
};

static const char *const CIFAR_NAMES[] = {"airplane", "automobile", "bird", "cat", "deer",
                                          "dog",      "frog",       "horse", "ship", "truck"};

// Appends the records of one file to d (whose pixels and labels grow).
static int read_batch(const char *path, int32_t classes, TlcDataset *d, TlcError *err) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return tlc_fail(err, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || st.st_size == 0 || st.st_size % CIFAR_RECORD != 0) {
    fclose(f);
    return tlc_fail(err, "%s: %lld bytes is not a whole number of CIFAR-10 records (%d bytes each: a label and "
                    "3x32x32 pixels)", path, (long long)st.st_size, CIFAR_RECORD);
  }
  int64_t n = st.st_size / CIFAR_RECORD, total = d->count + n;
  uint8_t *pixels = realloc(d->pixels, (size_t)total * 3 * CIFAR_PLANE);
  if (pixels)
    d->pixels = pixels;
  int32_t *labels = realloc(d->labels, (size_t)total * sizeof *labels);
  if (labels)
    d->labels = labels;
  if (!pixels || !labels) {
    fclose(f);
    return tlc_fail(err, "%s: out of memory for %lld images", path, (long long)total);
  }
  uint8_t record[CIFAR_RECORD];
  for (int64_t i = 0; i < n; i++) {
    if (fread(record, 1, sizeof record, f) != sizeof record) {
      const char *why = ferror(f) ? strerror(errno) : "the file shrank while being read";
      fclose(f);
      return tlc_fail(err, "%s: cannot read record %lld: %s", path, (long long)i, why);
    }
    if (record[0] >= classes) {
      fclose(f);
      return tlc_fail(err, "%s: record %lld has label %d, but there are %d classes", path, (long long)i, record[0], classes);
    }
    d->labels[d->count] = record[0];
    uint8_t *dst = d->pixels + (size_t)d->count * 3 * CIFAR_PLANE;
    for (int k = 0; k < CIFAR_PLANE; k++)
      for (int c = 0; c < 3; c++)
        dst[3 * k + c] = record[1 + c * CIFAR_PLANE + k];
    d->count++;
  }
  fclose(f);
  return 0;
}

// Class names from DIR/batches.meta.txt, one a line of any length, or the published ones
// when it is absent.
static int read_names(const char *dir, TlcData *out, TlcError *err) {
  char path[4200];
  snprintf(path, sizeof path, "%s/batches.meta.txt", dir);
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(out->names_from, sizeof out->names_from, "CIFAR-10's published list (no %.200s)", path);
    out->classes = 10;
    out->class_names = tlc_strings_dup(CIFAR_NAMES, 10);
    return out->class_names ? 0 : tlc_fail(err, "out of memory");
  }
  char *line = NULL, **names = calloc(CIFAR_MAX_CLASSES, sizeof *names);
  size_t cap = 0;
  int32_t n = 0;
  int rc = names ? 0 : tlc_fail(err, "out of memory");
  while (rc == 0 && getline(&line, &cap, f) >= 0) {
    line[strcspn(line, "\r\n")] = '\0';
    if (!line[0])
      continue;
    if (n == CIFAR_MAX_CLASSES)
      rc = tlc_fail(err, "%s: more than %d class names (a CIFAR label is one byte)", path, CIFAR_MAX_CLASSES);
    else if (!(names[n++] = strdup(line)))
      rc = tlc_fail(err, "out of memory");
  }
  if (rc == 0 && ferror(f))
    rc = tlc_fail(err, "%s: cannot read: %s", path, strerror(errno));
  if (rc == 0 && n == 0)
    rc = tlc_fail(err, "%s: no class names in the file", path);
  free(line);
  fclose(f);
  if (rc) {
    tlc_strings_free(names, n);
    return -1;
  }
  snprintf(out->names_from, sizeof out->names_from, "%.250s", path);
  out->classes = n;
  out->class_names = names;
  return 0;
}

static void set_shape(TlcDataset *d, int32_t classes) {
  d->channels = 3, d->height = CIFAR_SIDE, d->width = CIFAR_SIDE, d->classes = classes;
}

int tlc_cifar10_load(const char *dir, int64_t dev, int32_t dev_batch, bool need_train, TlcData *out, TlcError *err) {
  char path[4200];
  if (read_names(dir, out, err))
    return -1;
  set_shape(&out->test, out->classes);
  snprintf(path, sizeof path, "%s/test_batch.bin", dir);
  if (read_batch(path, out->classes, &out->test, err))
    return -1;
  if (!need_train)
    return 0;
  set_shape(&out->train, out->classes);
  set_shape(&out->val, out->classes);
  for (int b = 1; b <= CIFAR_BATCHES; b++) {
    snprintf(path, sizeof path, "%s/data_batch_%d.bin", dir, b);
    if (read_batch(path, out->classes, b == dev_batch ? &out->val : &out->train, err))
      return -1;
  }
  if (dev_batch) {
    snprintf(out->val_from, sizeof out->val_from, "data_batch_%d.bin (dev)", dev_batch);
    return 0;
  }
  if (dev >= out->train.count)
    return tlc_fail(err, "%s: %lld training images; a dev split of %lld leaves none to train on", dir,
                    (long long)out->train.count, (long long)dev);
  snprintf(out->val_from, sizeof out->val_from, "the last %lld training images (dev)", (long long)dev);
  return tlc_dataset_split_tail(&out->train, dev, &out->val, err);
}
