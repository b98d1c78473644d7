// fuzz_flowers102.c: Flowers102's .mat files (data_flowers102.c, through matio). The input is
// two files (fuzz.h, fuzz_split): imagelabels.mat, then setid.mat; no image is decoded (the
// loader lists the files, image.c reads them and fuzz_image covers it).
//
// An accepted data set has 102 named classes and three splits of image paths, each with a
// label below 102. A refusal names the directory.
#include "fuzz.h"

#include <string.h>

void fuzz_one(const char *path, const uint8_t *bytes, size_t size) {
  (void)path;
  FuzzParts p = fuzz_split(bytes, size);
  fuzz_put("imagelabels.mat", p.first, p.first_size);
  fuzz_put("setid.mat", p.second, p.second_size);
  TlcDataSpec spec = {.format = "flowers102", .dir = fuzz_scratch(), .need_train = true};
  TlcData d;
  TlcError err = {{0}};
  if (tlc_data_load(&spec, &d, &err) != 0) {
    fuzz_refused(&err, fuzz_scratch());
    return;
  }
  fuzz_require(d.classes == 102, "%d classes", d.classes);
  for (int c = 0; c < d.classes; c++)
    fuzz_require(d.class_names[c] != NULL, "class %d has no name", c);
  const TlcDataset *splits[] = {&d.train, &d.val, &d.test};
  for (int s = 0; s < 3; s++) {
    const TlcDataset *x = splits[s];
    fuzz_require(x->count >= 1 && x->paths && !x->pixels, "split %d: %lld images, paths %p", s, (long long)x->count,
                 (void *)x->paths);
    for (int64_t i = 0; i < x->count; i++) {
      fuzz_require(x->labels[i] >= 0 && x->labels[i] < 102, "label %d", x->labels[i]);
      fuzz_require(x->paths[i] && strstr(x->paths[i], "/jpg/image_"), "image %lld is '%s'", (long long)i,
                   x->paths[i] ? x->paths[i] : "(null)");
    }
  }
  tlc_data_free(&d);
}
