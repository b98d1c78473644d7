// fuzz_cifar10.c: CIFAR-10's binary batches and batches.meta.txt (data_cifar10.c), loaded as a
// trainer loads them (tlc_data_load, one dev image). The input is two files (fuzz.h,
// fuzz_split): batches.meta.txt (none when its length is 0), then test_batch.bin, which the
// five training batches also are.
//
// An accepted data set has one class per line of the meta file that is not blank, named by
// the line up to its end (a long line is one name, not several), or the published ten; every
// record is an image of a label below the class count; the splits add up. A refusal names the
// directory.
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { RECORD = 3073 };

// The names the meta file holds: each line up to its first CR, LF or NUL, blank ones skipped.
static int expected_names(const uint8_t *meta, size_t size, const char **names, size_t *lens, int max) {
  int n = 0;
  for (size_t at = 0; at < size;) {
    const uint8_t *end = memchr(meta + at, '\n', size - at);
    size_t line = end ? (size_t)(end - (meta + at)) + 1 : size - at, len = 0;
    while (len < line && meta[at + len] != '\r' && meta[at + len] != '\n' && meta[at + len] != 0)
      len++;
    if (len > 0 && n < max)
      names[n] = (const char *)meta + at, lens[n] = len;
    n += len > 0;
    at += line;
  }
  return n;
}

static void link_batches(void) {
  static bool done;
  for (int b = 1; !done && b <= 5; b++) {
    char path[4200];
    snprintf(path, sizeof path, "%s/data_batch_%d.bin", fuzz_scratch(), b);
    if (symlink("test_batch.bin", path) != 0) {
      perror(path);
      exit(2);
    }
  }
  done = true;
}

void fuzz_one(const char *path, const uint8_t *bytes, size_t size) {
  (void)path;
  FuzzParts p = fuzz_split(bytes, size);
  fuzz_put("batches.meta.txt", p.first_size ? p.first : NULL, p.first_size);
  fuzz_put("test_batch.bin", p.second, p.second_size);
  link_batches();
  TlcDataSpec spec = {.format = "cifar10", .dir = fuzz_scratch(), .val_count = 1, .need_train = true};
  TlcData d;
  TlcError err = {{0}};
  if (tlc_data_load(&spec, &d, &err) != 0) {
    fuzz_refused(&err, fuzz_scratch());
    return;
  }
  const char *names[256];
  size_t lens[256];
  int lines = p.first_size ? expected_names(p.first, p.first_size, names, lens, 256) : 10;
  fuzz_require(d.classes == lines, "%d classes from %d lines", d.classes, lines);
  for (int c = 0; c < d.classes; c++)
    fuzz_require(d.class_names[c] && (!p.first_size || (strlen(d.class_names[c]) == lens[c] &&
                                                        !memcmp(d.class_names[c], names[c], lens[c]))),
                 "class %d is named '%s'", c, d.class_names[c] ? d.class_names[c] : "(null)");
  int64_t records = (int64_t)(p.second_size / RECORD);
  fuzz_require(d.test.count == records && d.train.count + d.val.count == 5 * records && d.val.count == 1,
               "%lld records gave %lld test, %lld train and %lld val images", (long long)records,
               (long long)d.test.count, (long long)d.train.count, (long long)d.val.count);
  const TlcDataset *splits[] = {&d.train, &d.val, &d.test};
  for (int s = 0; s < 3; s++) {
    const TlcDataset *x = splits[s];
    fuzz_require(x->channels == 3 && x->height == 32 && x->width == 32, "images of %dx%dx%d", x->channels,
                 x->height, x->width);
    fuzz_touch(x->pixels, (size_t)x->count * 3 * 32 * 32);
    for (int64_t i = 0; i < x->count; i++)
      fuzz_require(x->labels[i] >= 0 && x->labels[i] < d.classes, "label %d of %d classes", x->labels[i], d.classes);
  }
  tlc_data_free(&d);
}
