// test_subset.c: the experiment's `subset` on a data set, in memory and as files: the
// classes kept and relabelled in the list's order, at most per_class of each, in order,
// with the pixels (or paths) that belong to each label; an index out of range is refused.
#include "check.h"
#include "tlcrt.h"

#include <stdlib.h>
#include <string.h>

enum { N = 12, PIXELS = 2 };

// Sample i has label i % 3 and pixels {i, 100 + i}.
static TlcDataset in_memory(void) {
  TlcDataset d = {.count = N, .channels = 1, .height = 1, .width = PIXELS, .classes = 3};
  d.pixels = malloc(N * PIXELS);
  d.labels = malloc(N * sizeof *d.labels);
  for (int i = 0; i < N; i++) {
    d.labels[i] = i % 3;
    d.pixels[i * PIXELS] = (uint8_t)i, d.pixels[i * PIXELS + 1] = (uint8_t)(100 + i);
  }
  return d;
}

static void test_classes_and_per_class(void) {
  TlcDataset d = in_memory();
  TlcError err;
  const int32_t classes[] = {2, 0};   // class 2 becomes 0, class 0 becomes 1
  CHECK(tlc_dataset_subset(&d, classes, 2, 2, &err) == 0);
  CHECK(d.count == 4 && d.classes == 2);
  // Kept, in order: samples 0 (class 0), 2 (class 2), 3 (class 0), 5 (class 2).
  const int expect_sample[] = {0, 2, 3, 5}, expect_label[] = {1, 0, 1, 0};
  for (int i = 0; i < 4 && i < d.count; i++) {
    CHECK(d.labels[i] == expect_label[i]);
    CHECK(d.pixels[i * PIXELS] == expect_sample[i] && d.pixels[i * PIXELS + 1] == 100 + expect_sample[i]);
  }
  tlc_dataset_free(&d);
}

static void test_per_class_only(void) {
  TlcDataset d = in_memory();
  TlcError err;
  CHECK(tlc_dataset_subset(&d, NULL, 0, 1, &err) == 0);
  CHECK(d.count == 3 && d.classes == 3);
  for (int i = 0; i < 3 && i < d.count; i++)
    CHECK(d.labels[i] == i && d.pixels[i * PIXELS] == i);
  tlc_dataset_free(&d);
}

static void test_files(void) {
  TlcDataset d = {.count = N, .classes = 3};
  d.paths = malloc(N * sizeof *d.paths);
  d.labels = malloc(N * sizeof *d.labels);
  for (int i = 0; i < N; i++) {
    d.labels[i] = i % 3;
    d.paths[i] = malloc(16);
    snprintf(d.paths[i], 16, "img%02d.png", i);
  }
  TlcError err;
  const int32_t classes[] = {1};
  CHECK(tlc_dataset_subset(&d, classes, 1, 0, &err) == 0);
  CHECK(d.count == 4 && d.classes == 1);
  for (int i = 0; i < 4 && i < d.count; i++) {
    char want[16];
    snprintf(want, sizeof want, "img%02d.png", 3 * i + 1);
    CHECK(d.labels[i] == 0 && !strcmp(d.paths[i], want));
  }
  tlc_dataset_free(&d);   // the dropped paths were freed by the subset: ASan/valgrind would see a leak
}

int main(void) {
  test_classes_and_per_class();
  test_per_class_only();
  test_files();
  return check_report();
}
