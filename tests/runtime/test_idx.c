// test_idx.c: the IDX loader on files this test writes (raw and gzip), one directory per
// case under $TLC_TEST_TMP: a valid set loads exactly, and every kind of broken file fails
// with a message that names what is wrong, leaving the dataset zeroed. When Fashion-MNIST is
// installed its real splits are loaded too; when it is not, that part is skipped.
#include "check.h"
#include "tlcrt.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

enum { COUNT = 5, ROWS = 3, COLS = 4, IMAGES = 0x803, LABELS = 0x801 };

static const uint8_t GOOD_LABELS[COUNT] = {0, 3, 1, 2, 3};
static const char *FASHION_MNIST = "/usr/share/datasets/fashion-mnist";
static char scratch[1024];

typedef struct Buf {
  uint8_t data[1024];
  size_t len;
} Buf;

static uint8_t pixel(int64_t i) { return (uint8_t)(i * 37 + 11); }

static void buf_be32(Buf *b, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    b->data[b->len++] = (uint8_t)(v >> shift);
}

// An image file: header, then `pixels` bytes of the pixel() pattern.
static Buf image_file(uint32_t magic, uint32_t count, uint32_t rows, uint32_t cols, size_t pixels) {
  Buf b = {.len = 0};
  buf_be32(&b, magic);
  buf_be32(&b, count);
  buf_be32(&b, rows);
  buf_be32(&b, cols);
  for (size_t i = 0; i < pixels; i++)
    b.data[b.len++] = pixel((int64_t)i);
  return b;
}

static Buf label_file(uint32_t magic, uint32_t count, const uint8_t *labels, size_t n) {
  Buf b = {.len = 0};
  buf_be32(&b, magic);
  buf_be32(&b, count);
  memcpy(b.data + b.len, labels, n);
  b.len += n;
  return b;
}

static Buf good_images(void) { return image_file(IMAGES, COUNT, ROWS, COLS, COUNT * ROWS * COLS); }
static Buf good_labels(void) { return label_file(LABELS, COUNT, GOOD_LABELS, COUNT); }

static void mkdir_p(const char *path) {
  char tmp[1024];
  snprintf(tmp, sizeof tmp, "%s", path);
  for (char *p = tmp + 1; *p; p++) {
    if (*p == '/') {
      *p = 0;
      mkdir(tmp, 0755);
      *p = '/';
    }
  }
  mkdir(tmp, 0755);
}

// A fresh directory for one case: files a previous run left there are removed.
static const char *case_dir(const char *name) {
  static char dir[1200];
  static const char *files[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
  snprintf(dir, sizeof dir, "%s/%s", scratch, name);
  mkdir_p(dir);
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    char path[1300];
    snprintf(path, sizeof path, "%s/%s", dir, files[i]);
    unlink(path);
    snprintf(path, sizeof path, "%s/%s.gz", dir, files[i]);
    unlink(path);
  }
  return dir;
}

static void path_of(char *path, size_t size, const char *dir, const char *name, bool gz) {
  snprintf(path, size, "%s/%s%s", dir, name, gz ? ".gz" : "");
}

static void write_file(const char *dir, const char *name, const Buf *b, bool gz) {
  char path[1300];
  path_of(path, sizeof path, dir, name, gz);
  if (gz) {
    gzFile f = gzopen(path, "wb");
    CHECK(f != NULL && gzwrite(f, b->data, (unsigned)b->len) == (int)b->len);
    CHECK(f != NULL && gzclose(f) == Z_OK);
  } else {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL && fwrite(b->data, 1, b->len, f) == b->len);
    CHECK(f != NULL && fclose(f) == 0);
  }
}

static void write_set(const char *dir, const Buf *images, const Buf *labels, bool gz) {
  write_file(dir, "train-images-idx3-ubyte", images, gz);
  write_file(dir, "train-labels-idx1-ubyte", labels, gz);
}

static long file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static bool is_zeroed(const TlcDataset *d) {
  return d->count == 0 && d->pixels == NULL && d->labels == NULL && d->classes == 0 &&
         d->height == 0 && d->width == 0 && d->channels == 0;
}

// Loading dir/split must fail with a message containing each of want[0..n).
static void expect_fail(const char *dir, const char *split, int n, const char *const *want) {
  TlcDataset d;
  TlcError err = {{0}};
  int rc = tlc_idx_load(dir, split, &d, &err);
  CHECK(rc != 0);
  CHECK(is_zeroed(&d));
  for (int i = 0; i < n; i++) {
    bool found = strstr(err.msg, want[i]) != NULL;
    CHECK(found);
    if (!found)
      fprintf(stderr, "  wanted \"%s\" in: %s\n", want[i], err.msg);
  }
  if (rc == 0)
    tlc_dataset_free(&d);
}

static void expect_fail1(const char *dir, const char *want) { expect_fail(dir, "train", 1, &want); }

static void expect_good(const char *dir, const char *split) {
  TlcDataset d;
  TlcError err = {{0}};
  int rc = tlc_idx_load(dir, split, &d, &err);
  CHECK(rc == 0);
  if (rc != 0) {
    fprintf(stderr, "  %s\n", err.msg);
    return;
  }
  CHECK(d.count == COUNT && d.channels == 1 && d.height == ROWS && d.width == COLS);
  CHECK(d.classes == 4);
  int ok = 1;
  for (int64_t i = 0; i < COUNT * ROWS * COLS; i++)
    ok &= d.pixels[i] == pixel(i);
  CHECK(ok);
  for (int i = 0; i < COUNT; i++)
    CHECK(d.labels[i] == GOOD_LABELS[i]);
  tlc_dataset_free(&d);
  CHECK(is_zeroed(&d));
}

static void test_valid(void) {
  Buf img = good_images(), lab = good_labels();
  const char *dir = case_dir("valid-raw");
  write_set(dir, &img, &lab, false);
  expect_good(dir, "train");
  dir = case_dir("valid-gz");
  write_set(dir, &img, &lab, true);
  expect_good(dir, "train");
  // Both forms present: the .gz wins (the raw pair here would not even load).
  dir = case_dir("prefer-gz");
  write_set(dir, &img, &lab, true);
  Buf other = image_file(IMAGES, 2, ROWS, COLS, 2 * ROWS * COLS);
  write_set(dir, &other, &lab, false);
  expect_good(dir, "train");
  dir = case_dir("test-split");
  write_file(dir, "t10k-images-idx3-ubyte", &img, false);
  write_file(dir, "t10k-labels-idx1-ubyte", &lab, true);
  expect_good(dir, "test");
}

static void test_missing(void) {
  const char *dir = case_dir("missing");
  char gz[1300], raw[1300];
  path_of(gz, sizeof gz, dir, "train-images-idx3-ubyte", true);
  path_of(raw, sizeof raw, dir, "train-images-idx3-ubyte", false);
  const char *want[] = {"missing data file", gz, raw};
  expect_fail(dir, "train", 3, want);
  Buf img = good_images();  // images present, labels absent: the message names the labels
  write_file(dir, "train-images-idx3-ubyte", &img, true);
  path_of(raw, sizeof raw, dir, "train-labels-idx1-ubyte", false);
  const char *want_labels[] = {"missing data file", raw};
  expect_fail(dir, "train", 2, want_labels);
  const char *want_split[] = {"unknown IDX split 'valid'"};
  expect_fail(dir, "valid", 1, want_split);
}

static void test_magic(void) {
  Buf img = good_images(), lab = good_labels();
  Buf swapped = image_file(LABELS, COUNT, ROWS, COLS, COUNT * ROWS * COLS);
  const char *dir = case_dir("magic-images");
  write_set(dir, &swapped, &lab, false);
  const char *want[] = {"train-images-idx3-ubyte:", "wrong magic 0x00000801, expected 0x00000803"};
  expect_fail(dir, "train", 2, want);
  Buf bad_labels = label_file(IMAGES, COUNT, GOOD_LABELS, COUNT);
  dir = case_dir("magic-labels");
  write_set(dir, &img, &bad_labels, true);
  const char *want_labels[] = {"train-labels-idx1-ubyte.gz:", "wrong magic 0x00000803"};
  expect_fail(dir, "train", 2, want_labels);
}

static void test_truncated(void) {
  Buf lab = good_labels();
  Buf short_img = good_images();
  short_img.len -= 10;
  const char *dir = case_dir("truncated-raw");
  write_set(dir, &short_img, &lab, false);
  expect_fail1(dir, "truncated pixel data: expected 60 bytes, found 50");
  Buf header = good_images();
  header.len = 7;
  dir = case_dir("truncated-header");
  write_set(dir, &header, &lab, false);
  expect_fail1(dir, "truncated header: expected 16 bytes, found 7");
  Buf short_lab = good_labels();
  short_lab.len -= 2;
  dir = case_dir("truncated-labels");
  Buf img = good_images();
  write_set(dir, &img, &short_lab, true);
  expect_fail1(dir, "truncated label data: expected 5 bytes, found 3");
}

// Cuts a written gzip file to `keep` bytes (negative: that many fewer than now).
static void gz_cut(const char *dir, const char *name, long keep) {
  char path[1300];
  path_of(path, sizeof path, dir, name, true);
  long size = file_size(path);
  CHECK(size > 0 && truncate(path, keep >= 0 ? keep : size + keep) == 0);
}

static void gz_flip_byte(const char *dir, const char *name, long from_end) {
  char path[1300];
  path_of(path, sizeof path, dir, name, true);
  FILE *f = fopen(path, "r+b");
  CHECK(f != NULL);
  if (!f)
    return;
  fseek(f, -from_end, SEEK_END);
  int c = fgetc(f);
  fseek(f, -from_end, SEEK_END);
  fputc(c ^ 0xff, f);
  fclose(f);
}

static void test_gzip_damage(void) {
  Buf img = good_images(), lab = good_labels();
  const char *dir = case_dir("truncated-gz");
  write_set(dir, &img, &lab, true);
  gz_cut(dir, "train-images-idx3-ubyte", 30);  // inside the deflate data
  expect_fail1(dir, "truncated gzip stream");
  dir = case_dir("truncated-gz-trailer");
  write_set(dir, &img, &lab, true);
  gz_cut(dir, "train-images-idx3-ubyte", -4);  // all the data, half the trailer
  const char *want[] = {"truncated gzip stream", "trailer) is missing"};
  expect_fail(dir, "train", 2, want);
  dir = case_dir("corrupt-gz-crc");
  write_set(dir, &img, &lab, true);
  gz_flip_byte(dir, "train-images-idx3-ubyte", 8);  // first byte of the CRC-32
  expect_fail1(dir, "corrupt gzip data");
}

static void test_mismatch_and_trailing(void) {
  Buf img = good_images(), lab = good_labels();
  Buf four = label_file(LABELS, 4, GOOD_LABELS, 4);
  const char *dir = case_dir("count-mismatch");
  write_set(dir, &img, &four, false);
  const char *want[] = {"has 5 images but", "has 4 labels"};
  expect_fail(dir, "train", 2, want);
  Buf long_img = image_file(IMAGES, COUNT, ROWS, COLS, COUNT * ROWS * COLS + 1);
  dir = case_dir("trailing-images");
  write_set(dir, &long_img, &lab, true);
  expect_fail1(dir, "trailing data after the 60 bytes");
  Buf long_lab = label_file(LABELS, COUNT, (const uint8_t *)"\0\1\2\3\4\5", 6);
  dir = case_dir("trailing-labels");
  write_set(dir, &img, &long_lab, false);
  const char *want_labels[] = {"train-labels-idx1-ubyte:", "trailing data after the 5 bytes"};
  expect_fail(dir, "train", 2, want_labels);
}

static void test_dimensions(void) {
  Buf lab = good_labels();
  static const uint32_t bad[][3] = {{COUNT, 0, COLS}, {COUNT, ROWS, 0}, {COUNT, 4097, COLS},
                                    {0, ROWS, COLS},  {10000001, ROWS, COLS}};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    Buf img = image_file(IMAGES, bad[i][0], bad[i][1], bad[i][2], 0);
    const char *dir = case_dir("bad-dimensions");
    write_set(dir, &img, &lab, false);
    expect_fail1(dir, "bad dimensions");
  }
  // The largest header allowed, with no data: fails as truncated, without a huge allocation.
  Buf huge = image_file(IMAGES, 10000000, 4096, 4096, 100);
  uint8_t labels[COUNT] = {0};
  Buf huge_lab = label_file(LABELS, 10000000, labels, COUNT);
  const char *dir = case_dir("huge-header");
  write_set(dir, &huge, &huge_lab, false);
  expect_fail1(dir, "truncated pixel data: expected 167772160000000 bytes, found 100");
}

static void test_bad_label(void) {
  Buf img = good_images();
  Buf lab = label_file(LABELS, COUNT, (const uint8_t *)"\0\1\xff\2\3", COUNT);
  const char *dir = case_dir("label-255");
  write_set(dir, &img, &lab, true);
  expect_fail1(dir, "label 255 of image 2 is out of range");
}

static void check_real_split(const char *split, int64_t count) {
  TlcDataset d;
  TlcError err = {{0}};
  int rc = tlc_idx_load(FASHION_MNIST, split, &d, &err);
  CHECK(rc == 0);
  if (rc != 0) {
    fprintf(stderr, "  %s\n", err.msg);
    return;
  }
  CHECK(d.count == count && d.channels == 1 && d.height == 28 && d.width == 28);
  CHECK(d.classes == 10);
  tlc_dataset_free(&d);
}

static void test_fashion_mnist(void) {
  struct stat st;
  if (stat(FASHION_MNIST, &st) != 0 || !S_ISDIR(st.st_mode)) {
    printf("skipped: %s is not installed\n", FASHION_MNIST);
    return;
  }
  check_real_split("train", 60000);
  check_real_split("test", 10000);
}

int main(void) {
  const char *tmp = getenv("TLC_TEST_TMP");
  snprintf(scratch, sizeof scratch, "%s", tmp && *tmp ? tmp : "/tmp/tlc-test-idx");
  mkdir_p(scratch);
  test_valid();
  test_missing();
  test_magic();
  test_truncated();
  test_gzip_damage();
  test_mismatch_and_trailing();
  test_dimensions();
  test_bad_label();
  test_fashion_mnist();
  return check_report();
}
