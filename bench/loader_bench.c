// loader_bench.c: DIR THREADS EPOCHS: images/s of libtlcrt's loader decoding and transforming
// the JPEG files of an ImageFolder tree (DIR/train/<class>/*.jpg) with ImageNet's training
// pipeline at 224x224, in batches of 32, without the decoded cache (every epoch decodes every
// file, as torchvision's DataLoader does). The first epoch warms the page cache and is not
// timed. Prints "result: images_per_s=... threads=... images=...".
#include "tlcrt.h"

#include <stdlib.h>
#include <time.h>

enum { BATCH = 32, SIDE = 224 };

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: loader_bench DIR THREADS EPOCHS\n");
    return 2;
  }
  int threads = atoi(argv[2]), epochs = atoi(argv[3]);
  TlcData data;
  TlcError err;
  TlcDataSpec spec = {.format = "image_folder", .dir = argv[1], .need_train = true};
  const TlcTransform tf[] = {
      {.kind = TLC_TF_RESIZE, .size = 256},
      {.kind = TLC_TF_CENTER_CROP, .size = SIDE},
      {.kind = TLC_TF_HFLIP, .p = 0.5f},
      {.kind = TLC_TF_NORMALIZE, .mean = {0.485f, 0.456f, 0.406f}, .std = {0.229f, 0.224f, 0.225f}},
  };
  TlcLoaderConfig cfg = {.threads = threads, .batch = BATCH, .channels = 3, .height = SIDE, .width = SIDE, .seed = 1};
  TlcLoader *loader;
  if (tlc_data_load(&spec, &data, &err) || tlc_loader_create(&loader, &cfg, &err)) {
    fprintf(stderr, "error: %s\n", err.msg);
    return 1;
  }
  int64_t n = data.train.count / BATCH * BATCH;
  int32_t *order = malloc((size_t)n * sizeof *order);
  float *images = malloc((size_t)BATCH * 3 * SIDE * SIDE * sizeof *images);
  int32_t labels[BATCH];
  TlcRng rng;
  tlc_rng_seed(&rng, 1);
  double start = 0;
  for (int epoch = 0; epoch <= epochs; epoch++) {
    if (epoch == 1)
      start = now();
    for (int64_t i = 0; i < n; i++)
      order[i] = (int32_t)i;
    tlc_rng_shuffle(&rng, order, n);
    tlc_loader_begin(loader, &data.train, order, n, tf, 4, epoch);
    for (int64_t b = 0; b < n / BATCH; b++)
      if (tlc_loader_next(loader, images, labels, &err)) {
        fprintf(stderr, "error: %s\n", err.msg);
        return 1;
      }
  }
  double seconds = now() - start;
  printf("result: images_per_s=%.1f threads=%d images=%lld\n", (double)(n * epochs) / seconds, threads,
         (long long)(n * epochs));
  tlc_loader_destroy(loader);
  tlc_data_free(&data);
  free(order);
  free(images);
  return 0;
}
