// fuzz_idx.c: IDX data sets (data_idx.c). The input is two files (fuzz.h, fuzz_split): the image
// file and the label file of the test split, each written gzip-named when it starts as gzip
// does, else raw, as Fashion-MNIST's own files come either way.
//
// An accepted data set holds what its header says: count images of rows x cols gray bytes and
// as many labels, each below the class count. A refusal names the directory.
#include "fuzz.h"

#include <string.h>

static void put_idx(const char *name, const uint8_t *bytes, size_t size) {
  char gz[128];
  snprintf(gz, sizeof gz, "%s.gz", name);
  bool gzip = size >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
  fuzz_put(gzip ? name : gz, NULL, 0);   // the reader prefers .gz: no stale one may stay
  fuzz_put(gzip ? gz : name, bytes, size);
}

void fuzz_one(const char *path, const uint8_t *bytes, size_t size) {
  (void)path;
  FuzzParts p = fuzz_split(bytes, size);
  put_idx("t10k-images-idx3-ubyte", p.first, p.first_size);
  put_idx("t10k-labels-idx1-ubyte", p.second, p.second_size);
  TlcDataset d;
  TlcError err = {{0}};
  if (tlc_idx_load(fuzz_scratch(), "test", &d, &err) != 0) {
    fuzz_refused(&err, fuzz_scratch());
    return;
  }
  fuzz_require(d.count >= 1 && d.channels == 1 && d.height >= 1 && d.width >= 1 && d.pixels && d.labels && !d.paths,
               "accepted %lld images of %dx%dx%d", (long long)d.count, d.channels, d.height, d.width);
  fuzz_touch(d.pixels, (size_t)d.count * d.height * d.width);
  for (int64_t i = 0; i < d.count; i++)
    fuzz_require(d.labels[i] >= 0 && d.labels[i] < d.classes, "label %d of %d classes", d.labels[i], d.classes);
  tlc_dataset_free(&d);
}
