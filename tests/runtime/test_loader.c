// test_loader.c: the threaded loader (loader.c). Its batches must not depend on the number of
// threads or the prefetch depth; a sample's randomness depends on (seed, epoch, index) only,
// not on where the sample falls in the order; a file that does not decode is replaced by the
// next index of the data set, warned about once and counted; a transform failure reaches the
// consumer with the sample named; passes can be abandoned midway and restarted; files not in
// the model's channels are converted and counted once; decoding in flight keeps to its budget.
#include "check.h"
#include "tlcrt.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { N = 50, SIDE = 4, PIX = SIDE * SIDE, BATCH = 5 };

static uint8_t pixels[N * PIX];
static int32_t labels[N];
static const TlcTransform augment[] = {{.kind = TLC_TF_HFLIP, .p = 0.5f}, {.kind = TLC_TF_RANDOM_CROP, .size = SIDE, .pad = 1}};

static TlcDataset memory_set(void) {
  for (int i = 0; i < N; i++) {
    labels[i] = i % 3;
    for (int k = 0; k < PIX; k++)
      pixels[i * PIX + k] = (uint8_t)(i * 5 + k);
  }
  return (TlcDataset){.count = N, .channels = 1, .height = SIDE, .width = SIDE, .pixels = pixels, .labels = labels, .classes = 3};
}

static TlcLoader *make(int threads, int prefetch, uint64_t seed) {
  TlcLoaderConfig cfg = {.threads = threads, .prefetch = prefetch, .batch = BATCH, .channels = 1, .height = SIDE,
                         .width = SIDE, .seed = seed};
  TlcLoader *l = NULL;
  TlcError err;
  CHECK(tlc_loader_create(&l, &cfg, &err) == 0);
  return l;
}

// A whole pass of ds in `order` into out (N floats images) and got_labels.
static int run_pass(TlcLoader *l, const TlcDataset *ds, const int32_t *order, int n, int epoch, float *out,
                    int32_t *got_labels, TlcError *err) {
  tlc_loader_begin(l, ds, order, n, augment, 2, epoch);
  for (int b = 0; b < n / BATCH; b++)
    if (tlc_loader_next(l, out + b * BATCH * PIX, got_labels + b * BATCH, err))
      return -1;
  return 0;
}

static void test_threads_do_not_matter(void) {
  TlcDataset ds = memory_set();
  int32_t order[N];
  TlcRng rng;
  tlc_rng_seed(&rng, 5);
  for (int i = 0; i < N; i++)
    order[i] = i;
  tlc_rng_shuffle(&rng, order, N);
  static float a[N * PIX], b[N * PIX], c[N * PIX], one[PIX];
  int32_t la[N], lb[N], lc[N];
  TlcError err;
  TlcLoader *l1 = make(1, 1, 9), *l4 = make(4, 3, 9), *other = make(2, 2, 10);
  CHECK(run_pass(l1, &ds, order, N, 0, a, la, &err) == 0);
  CHECK(run_pass(l4, &ds, order, N, 0, b, lb, &err) == 0);
  CHECK(memcmp(a, b, sizeof a) == 0 && memcmp(la, lb, sizeof la) == 0);
  bool labels_ok = true, moved = false;
  for (int i = 0; i < N; i++)
    labels_ok &= la[i] == labels[order[i]];
  CHECK(labels_ok);
  // Sample order[7] alone, on the calling thread, is what the pass put at position 7.
  CHECK(tlc_loader_sample(l4, &ds, order[7], augment, 2, 0, one, &err) == 0);
  CHECK(memcmp(one, a + 7 * PIX, sizeof one) == 0);
  // Another epoch, or another seed, draws differently; the same epoch again does not.
  CHECK(run_pass(l1, &ds, order, N, 1, c, lc, &err) == 0);
  for (int i = 0; i < N * PIX; i++)
    moved |= a[i] != c[i];
  CHECK(moved);
  CHECK(run_pass(other, &ds, order, N, 0, c, lc, &err) == 0 && memcmp(a, c, sizeof a) != 0);
  CHECK(run_pass(l4, &ds, order, N, 0, c, lc, &err) == 0 && memcmp(a, c, sizeof a) == 0);
  // Abandoned passes: begin, take one batch or none, begin again; the last pass is whole.
  for (int k = 0; k < 50; k++) {
    tlc_loader_begin(l4, &ds, order, N, augment, 2, 0);
    if (k % 2)
      CHECK(tlc_loader_next(l4, c, lc, &err) == 0);
  }
  tlc_loader_end(l4);
  CHECK(run_pass(l4, &ds, order, N, 0, c, lc, &err) == 0 && memcmp(a, c, sizeof a) == 0);
  TlcLoaderStats st;
  tlc_loader_stats(l4, &st);
  CHECK(st.skipped == 0);
  tlc_loader_destroy(l1);
  tlc_loader_destroy(l4);
  tlc_loader_destroy(other);
}

static void test_transform_failure(void) {
  TlcDataset ds = memory_set();
  int32_t order[N];
  for (int i = 0; i < N; i++)
    order[i] = i;
  TlcLoader *l = make(2, 2, 1);
  const TlcTransform too_big = {.kind = TLC_TF_CENTER_CROP, .size = 10};
  static float out[BATCH * PIX];
  int32_t got[BATCH];
  TlcError err;
  tlc_loader_begin(l, &ds, order, N, &too_big, 1, 0);
  CHECK(tlc_loader_next(l, out, got, &err) != 0);
  CHECK(strstr(err.msg, "of the data set: center_crop: the image is 4x4, smaller than the 10x10 crop") != NULL);
  tlc_loader_destroy(l);
}

// Four PNG files, the second one garbage: it is replaced by the third, once warned, counted once.
static void test_broken_file(const char *tmp) {
  char dir[1024], *paths[4];
  snprintf(dir, sizeof dir, "%s/files", tmp);
  mkdir(tmp, 0755);
  mkdir(dir, 0755);
  TlcError err;
  for (int i = 0; i < 4; i++) {
    paths[i] = malloc(1100);
    snprintf(paths[i], 1100, "%s/%d.png", dir, i);
    TlcImage img = {SIDE, SIDE, 1, pixels + i * PIX};
    memset(pixels + i * PIX, 40 * (i + 1), PIX);
    CHECK(tlc_image_write_png(paths[i], &img, &err) == 0);
  }
  FILE *f = fopen(paths[1], "wb");
  fputs("garbage", f);
  fclose(f);
  int32_t file_labels[4] = {0, 1, 2, 0}, order[BATCH] = {0, 1, 2, 3, 1};
  TlcDataset ds = {.count = 4, .paths = paths, .labels = file_labels, .classes = 3};
  TlcLoader *l = make(2, 1, 1);
  const TlcTransform none = {.kind = TLC_TF_HFLIP, .p = 0};
  static float out[BATCH * PIX];
  int32_t got[BATCH];
  tlc_loader_begin(l, &ds, order, BATCH, &none, 1, 0);
  CHECK(tlc_loader_next(l, out, got, &err) == 0);
  CHECK(got[0] == 0 && got[1] == 2 && got[2] == 2 && got[3] == 0 && got[4] == 2);
  CHECK(out[1 * PIX] == 120 / 255.0f && out[0] == 40 / 255.0f && out[3 * PIX] == 160 / 255.0f);
  TlcLoaderStats st;
  tlc_loader_stats(l, &st);
  CHECK(st.skipped == 1);
  // The cache drops it before any pass.
  int64_t budget = 1 << 20;
  CHECK(tlc_loader_cache(l, &ds, &budget, &err) == 0);
  CHECK(ds.count == 3 && ds.cache && strstr(ds.paths[1], "2.png") && budget == (1 << 20) - 3 * PIX);
  for (int i = 0; i < 3; i++)
    tlc_image_free(&ds.cache[i]);
  free(ds.cache);
  for (int i = 0; i < 3; i++)
    free(paths[i]);
  tlc_loader_destroy(l);
}

// Files of n x n pixels: gray ones (odd i) become RGB for a 3-channel loader, each counted once.
static char **gray_and_rgb_files(const char *tmp, const char *name, int count, int n) {
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/%s", tmp, name);
  mkdir(tmp, 0755);
  mkdir(dir, 0755);
  char **paths = calloc((size_t)count, sizeof *paths);
  uint8_t *px = malloc((size_t)n * n * 3);
  for (int i = 0; i < count; i++) {
    paths[i] = malloc(1100);
    snprintf(paths[i], 1100, "%s/%d.png", dir, i);
    for (int k = 0; k < n * n * 3; k++)
      px[k] = (uint8_t)(k * 7 + i);
    TlcImage img = {n, n, i % 2 ? 1 : 3, px};
    TlcError err;
    CHECK(tlc_image_write_png(paths[i], &img, &err) == 0);
  }
  free(px);
  return paths;
}

static TlcLoader *make_rgb(int threads, int64_t side, int64_t budget) {
  TlcLoaderConfig cfg = {.threads = threads, .prefetch = 2, .batch = BATCH, .channels = 3, .height = (int32_t)side,
                         .width = (int32_t)side, .seed = 1, .decode_budget = budget};
  TlcLoader *l = NULL;
  TlcError err;
  CHECK(tlc_loader_create(&l, &cfg, &err) == 0);
  return l;
}

static void test_conversions_counted(const char *tmp) {
  char **paths = gray_and_rgb_files(tmp, "mixed", 4, SIDE);
  int32_t file_labels[4] = {0, 1, 0, 1}, order[2 * BATCH] = {0, 1, 2, 3, 0, 1, 2, 3, 1, 3};
  TlcDataset ds = {.count = 4, .paths = paths, .labels = file_labels, .classes = 2};
  TlcLoader *l = make_rgb(2, SIDE, 0);
  const TlcTransform none = {.kind = TLC_TF_HFLIP, .p = 0};
  static float out[BATCH * 3 * PIX];
  int32_t got[BATCH];
  TlcError err;
  tlc_loader_begin(l, &ds, order, 2 * BATCH, &none, 1, 0);
  CHECK(tlc_loader_next(l, out, got, &err) == 0 && tlc_loader_next(l, out, got, &err) == 0);
  // Sample 4 of the second batch is file 3, gray: its three planes are equal.
  CHECK(out[3 * PIX * 4] == out[3 * PIX * 4 + PIX] && out[3 * PIX * 4] == out[3 * PIX * 4 + 2 * PIX]);
  TlcLoaderStats st;
  tlc_loader_stats(l, &st);
  CHECK(st.converted[TLC_IMAGE_GRAY] == 2 && st.converted[TLC_IMAGE_RGB] == 0 && st.skipped == 0 && st.large == 0);
  tlc_loader_destroy(l);
  tlc_strings_free(paths, 4);
}

// Decoding in flight stays within the budget; a sample larger than the whole budget runs
// alone. Each file here is 200x200 RGB (120,000 bytes) and its transform makes a 100x100 crop.
static void test_decode_budget(const char *tmp) {
  enum { FILES = 10, SIDE_BIG = 200, CROP = 100 };
  char **paths = gray_and_rgb_files(tmp, "big", FILES, SIDE_BIG);
  int32_t file_labels[FILES] = {0}, order[FILES];
  for (int i = 0; i < FILES; i++)
    order[i] = i;
  TlcDataset ds = {.count = FILES, .paths = paths, .labels = file_labels, .classes = 1};
  const TlcTransform crop = {.kind = TLC_TF_CENTER_CROP, .size = CROP};
  int64_t sample = (int64_t)SIDE_BIG * SIDE_BIG * 3 + 2 * CROP * CROP * 3;   // pixels, two scratch crops
  static float out[BATCH * 3 * CROP * CROP];
  int32_t got[BATCH];
  struct {
    int64_t budget, most;
  } cases[] = {{3 * sample + sample / 2, 3 * sample + sample / 2}, {sample / 2, sample + sample / 2}};
  for (int c = 0; c < 2; c++) {
    TlcLoader *l = make_rgb(4, CROP, cases[c].budget);
    TlcError err;
    tlc_loader_begin(l, &ds, order, FILES, &crop, 1, 0);
    CHECK(tlc_loader_next(l, out, got, &err) == 0 && tlc_loader_next(l, out, got, &err) == 0);
    TlcLoaderStats st;
    tlc_loader_stats(l, &st);
    CHECK(st.peak_bytes >= sample && st.peak_bytes <= cases[c].most);
    if (st.peak_bytes > cases[c].most)
      fprintf(stderr, "  budget %lld: %lld bytes at once, at most %lld expected\n", (long long)cases[c].budget,
              (long long)st.peak_bytes, (long long)cases[c].most);
    tlc_loader_destroy(l);
  }
  tlc_strings_free(paths, FILES);
}

int main(void) {
  const char *tmp = getenv("TLC_TEST_TMP");
  tmp = tmp ? tmp : "/tmp/tlc-test-loader";
  test_threads_do_not_matter();
  test_transform_failure();
  test_broken_file(tmp);
  test_conversions_counted(tmp);
  test_decode_budget(tmp);
  return check_report();
}
