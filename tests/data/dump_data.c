// dump_data.c: FORMAT DIR [PARAM [CHANNELS]]: loads a data set through libtlcrt's loaders and
// prints what they read, for tests/data/check_data.py to compare with what make_data.py wrote.
// Image files are decoded with CHANNELS channels (1 or 3, as a model taking them would read
// them; 0 or absent: as stored).
//
// Output, one line each: "classes N NAME|NAME|...", "val_from TEXT", "names_from TEXT",
// "nested N", "other N EXTS", then per split "split NAME COUNT" and per sample
// "SPLIT INDEX LABEL W H C HEX PATH" (the decoded HWC bytes) or "SPLIT INDEX LABEL error
// MESSAGE". A load failure prints "error: MESSAGE" and exits 1.
#include "tlcrt.h"

#include <stdlib.h>
#include <string.h>

static int channels;

static void dump_split(const char *name, const TlcDataset *d) {
  printf("split %s %lld\n", name, (long long)d->count);
  size_t size = (size_t)d->channels * d->height * d->width;
  for (int64_t i = 0; i < d->count; i++) {
    TlcImage img = {d->width, d->height, d->channels, d->pixels ? d->pixels + i * size : NULL};
    TlcError err;
    if (d->paths && tlc_image_read_as(d->paths[i], channels, &img, &err) != 0) {
      printf("%s %lld %d error %s\n", name, (long long)i, d->labels[i], err.msg);
      continue;
    }
    printf("%s %lld %d %d %d %d ", name, (long long)i, d->labels[i], img.width, img.height, img.channels);
    size_t n = (size_t)img.width * img.height * img.channels;
    for (size_t k = 0; k < n; k++)
      printf("%02x", img.pixels[k]);
    printf(" %s\n", d->paths ? d->paths[i] : "-");
    if (d->paths)
      tlc_image_free(&img);
  }
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: dump_data FORMAT DIR [PARAM]\n");
    return 2;
  }
  TlcDataSpec spec = {.format = argv[1], .dir = argv[2], .need_train = true};
  if (argc > 3) {
    spec.val_count = atoll(argv[3]);
    spec.val_split = atof(argv[3]);
  }
  channels = argc > 4 ? atoi(argv[4]) : 0;
  TlcData data;
  TlcError err;
  if (tlc_data_load(&spec, &data, &err) != 0) {
    printf("error: %s\n", err.msg);
    return 1;
  }
  printf("classes %d ", data.classes);
  for (int32_t c = 0; data.class_names && c < data.classes; c++)
    printf("%s%s", c ? "|" : "", data.class_names[c]);
  printf("\nval_from %s\nnames_from %s\n", data.val_from, data.names_from);
  printf("nested %lld\nother %lld %s\n", (long long)data.nested, (long long)data.other_formats, data.other_exts);
  dump_split("train", &data.train);
  dump_split("val", &data.val);
  dump_split("test", &data.test);
  tlc_data_free(&data);
  return 0;
}
