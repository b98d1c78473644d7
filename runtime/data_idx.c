// data_idx.c: IDX data sets (MNIST, Fashion-MNIST), gzip-compressed or not.
//
// Contract: tlc_idx_load reads DIR/{train,t10k}-images-idx3-ubyte[.gz] and the matching
// labels-idx1-ubyte[.gz], preferring the .gz when both exist (zlib's gzread also reads
// uncompressed files). Every byte of both files is accounted for: a wrong magic, a dimension
// out of range, a short or corrupt stream, a count mismatch, a label above 254 or bytes past
// what the header describes is an error whose message names the file and what is wrong.
// On error nothing is allocated and *out is all zeros; on success the caller owns *out and
// releases it with tlc_dataset_free.
//
// A header is only a claim: memory grows with the data actually read, so a corrupt file
// that claims 10 million 4096x4096 images fails as truncated instead of allocating 160 TB.
#include "tlcrt.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

enum {
  IDX_MAGIC_IMAGES = 0x00000803,  // unsigned bytes, 3 dimensions (count, rows, cols)
  IDX_MAGIC_LABELS = 0x00000801,  // unsigned bytes, 1 dimension (count)
  IDX_MAX_SIDE = 4096,
  IDX_MAX_COUNT = 10000000,
  IDX_MAX_LABEL = 254,
  IDX_PATH_MAX = 4096,
};

static const int64_t IDX_FIRST_CHUNK = 16 << 20;  // the buffer starts here and doubles
static const unsigned IDX_READ_MAX = 1u << 30;    // gzread takes an unsigned, returns an int

typedef struct IdxFile {
  gzFile gz;
  char path[IDX_PATH_MAX];  // the file actually opened, for messages
} IdxFile;

static bool idx_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

// Opens DIR/NAME.gz, or DIR/NAME when there is no .gz.
static int idx_open(IdxFile *f, const char *dir, const char *name, TlcError *err) {
  char gz_path[IDX_PATH_MAX], raw_path[IDX_PATH_MAX];
  int a = snprintf(gz_path, sizeof gz_path, "%s/%s.gz", dir, name);
  int b = snprintf(raw_path, sizeof raw_path, "%s/%s", dir, name);
  if (a < 0 || b < 0 || a >= (int)sizeof gz_path)
    return tlc_fail(err, "data directory path too long: %.200s...", dir);
  const char *path = idx_exists(gz_path) ? gz_path : idx_exists(raw_path) ? raw_path : NULL;
  if (!path)
    return tlc_fail(err, "missing data file: tried %s and %s", gz_path, raw_path);
  memcpy(f->path, path, strlen(path) + 1);
  errno = 0;
  f->gz = gzopen(path, "rb");
  if (!f->gz)
    return tlc_fail(err, "%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
  gzbuffer(f->gz, 1 << 17);
  return 0;
}

static void idx_close(IdxFile *f) {
  if (f->gz)
    gzclose(f->gz);
  f->gz = NULL;
}

// zlib's message for the file's error state, without the "PATH: " zlib puts in front.
static const char *idx_zlib_message(const IdxFile *f, int *code) {
  const char *msg = gzerror(f->gz, code);
  size_t n = strlen(f->path);
  if (strncmp(msg, f->path, n) == 0 && strncmp(msg + n, ": ", 2) == 0)
    msg += n + 2;
  return msg;
}

// Reads up to len bytes; stops early only at end of data or on a stream error.
static int64_t idx_read_upto(IdxFile *f, uint8_t *buf, int64_t len) {
  int64_t got = 0;
  while (got < len) {
    int64_t left = len - got;
    int n = gzread(f->gz, buf + got, left < IDX_READ_MAX ? (unsigned)left : IDX_READ_MAX);
    if (n <= 0)
      break;
    got += n;
  }
  return got;
}

// After a read of `got` of `want` bytes of `what`: fails on a stream error or a short read.
static int idx_check_read(const IdxFile *f, const char *what, int64_t got, int64_t want,
                          TlcError *err) {
  // zlib decompresses ahead of the reader, so its error state may already describe damage
  // past these bytes; that damage is reported by the read that reaches it (or idx_check_end).
  if (got == want)
    return 0;
  int code;
  const char *msg = idx_zlib_message(f, &code);
  if (code == Z_BUF_ERROR)  // zlib's "unexpected end of file" inside a gzip member
    return tlc_fail(err, "%s: truncated gzip stream (%s) after %lld of the %lld bytes of %s", f->path,
                    msg, (long long)got, (long long)want, what);
  if (code == Z_DATA_ERROR)
    return tlc_fail(err, "%s: corrupt gzip data: %s", f->path, msg);  // whole buffers are lost
  if (code != Z_OK)
    return tlc_fail(err, "%s: cannot read %s: %s", f->path, what, msg);
  return tlc_fail(err, "%s: truncated %s: expected %lld bytes, found %lld", f->path, what,
                  (long long)want, (long long)got);
}

static int idx_read_exact(IdxFile *f, void *buf, int64_t len, const char *what, TlcError *err) {
  return idx_check_read(f, what, idx_read_upto(f, buf, len), len, err);
}

// Reads the `len` bytes the header promised into a new buffer, growing it as data arrives.
static int idx_read_body(IdxFile *f, int64_t len, const char *what, uint8_t **out, TlcError *err) {
  int64_t cap = len < IDX_FIRST_CHUNK ? len : IDX_FIRST_CHUNK, got = 0;
  uint8_t *buf = malloc((size_t)cap);
  while (buf) {
    got += idx_read_upto(f, buf + got, cap - got);
    if (got < cap || cap == len)
      break;
    cap = cap > len / 2 ? len : cap * 2;
    uint8_t *grown = realloc(buf, (size_t)cap);
    if (!grown)
      free(buf);
    buf = grown;
  }
  if (!buf)
    return tlc_fail(err, "%s: out of memory reading %lld bytes of %s", f->path, (long long)len, what);
  if (idx_check_read(f, what, got, len, err) != 0) {
    free(buf);
    return -1;
  }
  *out = buf;
  return 0;
}

// The file must end where the header says: a stray byte means the header is wrong.
static int idx_check_end(IdxFile *f, int64_t body, TlcError *err) {
  uint8_t extra;
  int n = gzread(f->gz, &extra, 1);
  if (n > 0)
    return tlc_fail(err, "%s: trailing data after the %lld bytes of data the header describes",
                    f->path, (long long)body);
  // Reading past the end is also what makes zlib check the gzip trailer (CRC and length).
  int code;
  const char *msg = idx_zlib_message(f, &code);
  if (code == Z_BUF_ERROR)
    return tlc_fail(err, "%s: truncated gzip stream (%s): all the data arrived but the end of "
                    "the stream (its trailer) is missing", f->path, msg);
  if (code != Z_OK)
    return tlc_fail(err, "%s: corrupt gzip data: %s", f->path, msg);
  return 0;
}

static uint32_t idx_be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int idx_check_magic(const IdxFile *f, uint32_t magic, uint32_t want, TlcError *err) {
  if (magic == want)
    return 0;
  const char *kind = want == IDX_MAGIC_IMAGES ? "an image file (3-dimensional unsigned bytes)"
                                              : "a label file (1-dimensional unsigned bytes)";
  return tlc_fail(err, "%s: wrong magic 0x%08x, expected 0x%08x for %s", f->path, (unsigned)magic,
                  (unsigned)want, kind);
}

static bool idx_count_ok(uint32_t count) { return count >= 1 && count <= IDX_MAX_COUNT; }

// Image header: magic, count, rows, cols, each a big-endian uint32.
static int idx_read_image_header(IdxFile *f, TlcDataset *d, TlcError *err) {
  uint8_t h[16];
  if (idx_read_exact(f, h, sizeof h, "header", err) != 0)
    return -1;
  if (idx_check_magic(f, idx_be32(h), IDX_MAGIC_IMAGES, err) != 0)
    return -1;
  uint32_t count = idx_be32(h + 4), rows = idx_be32(h + 8), cols = idx_be32(h + 12);
  if (!idx_count_ok(count) || rows < 1 || rows > IDX_MAX_SIDE || cols < 1 || cols > IDX_MAX_SIDE)
    return tlc_fail(err,
                    "%s: bad dimensions: %u images of %ux%u (images must be 1..%d, rows and "
                    "columns 1..%d)",
                    f->path, count, rows, cols, IDX_MAX_COUNT, IDX_MAX_SIDE);
  d->count = count;
  d->channels = 1;
  d->height = (int32_t)rows;
  d->width = (int32_t)cols;
  return 0;
}

// Label header: magic, count.
static int idx_read_label_header(IdxFile *f, int64_t *count, TlcError *err) {
  uint8_t h[8];
  if (idx_read_exact(f, h, sizeof h, "header", err) != 0)
    return -1;
  if (idx_check_magic(f, idx_be32(h), IDX_MAGIC_LABELS, err) != 0)
    return -1;
  uint32_t n = idx_be32(h + 4);
  if (!idx_count_ok(n))
    return tlc_fail(err, "%s: bad label count %u (must be 1..%d)", f->path, n, IDX_MAX_COUNT);
  *count = n;
  return 0;
}

// Widens the label bytes into d->labels and sets d->classes.
static int idx_set_labels(const IdxFile *f, TlcDataset *d, const uint8_t *bytes, TlcError *err) {
  d->labels = malloc((size_t)d->count * sizeof *d->labels);
  if (!d->labels)
    return tlc_fail(err, "%s: out of memory for %lld labels", f->path, (long long)d->count);
  int max = 0;
  for (int64_t i = 0; i < d->count; i++) {
    if (bytes[i] > IDX_MAX_LABEL)
      return tlc_fail(err, "%s: label %d of image %lld is out of range (labels must be 0..%d)",
                      f->path, bytes[i], (long long)i, IDX_MAX_LABEL);
    d->labels[i] = bytes[i];
    max = bytes[i] > max ? bytes[i] : max;
  }
  d->classes = max + 1;
  return 0;
}

// Both headers, then both bodies: a count mismatch is reported before any data is read.
static int idx_load_files(IdxFile *img, IdxFile *lab, TlcDataset *d, TlcError *err) {
  int64_t label_count = 0;
  if (idx_read_image_header(img, d, err) != 0 || idx_read_label_header(lab, &label_count, err) != 0)
    return -1;
  if (label_count != d->count)
    return tlc_fail(err, "%s has %lld images but %s has %lld labels", img->path,
                    (long long)d->count, lab->path, (long long)label_count);
  int64_t pixel_bytes = d->count * d->height * d->width;
  if (idx_read_body(img, pixel_bytes, "pixel data", &d->pixels, err) != 0 ||
      idx_check_end(img, pixel_bytes, err) != 0)
    return -1;
  uint8_t *bytes = NULL;
  if (idx_read_body(lab, d->count, "label data", &bytes, err) != 0)
    return -1;
  int rc = idx_check_end(lab, d->count, err);
  if (rc == 0)
    rc = idx_set_labels(lab, d, bytes, err);
  free(bytes);
  return rc;
}

static const char *idx_prefix(const char *split) {
  if (split && strcmp(split, "train") == 0)
    return "train";
  if (split && strcmp(split, "test") == 0)
    return "t10k";
  return NULL;
}

int tlc_idx_load(const char *dir, const char *split, TlcDataset *out, TlcError *err) {
  memset(out, 0, sizeof *out);
  const char *prefix = idx_prefix(split);
  if (!prefix)
    return tlc_fail(err, "unknown IDX split '%s' (expected 'train' or 'test')", split ? split : "(null)");
  if (!dir || !*dir)
    return tlc_fail(err, "no data directory given");
  char images[64], labels[64];
  snprintf(images, sizeof images, "%s-images-idx3-ubyte", prefix);
  snprintf(labels, sizeof labels, "%s-labels-idx1-ubyte", prefix);
  IdxFile img = {0}, lab = {0};
  TlcDataset d = {0};
  int rc = idx_open(&img, dir, images, err);
  if (rc == 0)
    rc = idx_open(&lab, dir, labels, err);
  if (rc == 0)
    rc = idx_load_files(&img, &lab, &d, err);
  idx_close(&img);
  idx_close(&lab);
  if (rc != 0) {
    tlc_dataset_free(&d);
    return -1;
  }
  *out = d;
  return 0;
}
