// test_image.c: image.c and its codecs on hostile files, written here byte by byte (PNG) or
// through libjpeg (JPEG) and then damaged. A JPEG whose header claims 13000x13000 pixels
// over a few hundred bytes of data, a JPEG with damaged entropy data, PNGs with a CRC error
// in an ancillary chunk, too much image data or no end: each is an error naming the file and
// what is wrong, never a half-gray image; a header over PIL's limit is refused before any
// memory is taken; the header states what decoding will take. (tests/data/check_data.py
// compares the conversions with PIL's.)
#include "check.h"
#include "tlcrt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h>
#include <zlib.h>

static char tmp_dir[2048];

typedef struct Buf {
  uint8_t *b;
  size_t n;
} Buf;

static void path_of(char *out, size_t size, const char *name) { snprintf(out, size, "%s/%s", tmp_dir, name); }

static void write_file(const char *name, const Buf *x) {
  char path[2200];
  path_of(path, sizeof path, name);
  FILE *f = fopen(path, "wb");
  CHECK(f && fwrite(x->b, 1, x->n, f) == x->n && fclose(f) == 0);
}

// Reads tmp_dir/name as a model taking `channels` would; returns 0 or -1 with err.
static int read_as(const char *name, int channels, TlcImage *img, TlcError *err) {
  char path[2200];
  path_of(path, sizeof path, name);
  return tlc_image_read_as(path, channels, img, err);
}

static bool refused(const char *name, const char *want) {
  TlcImage img;
  TlcError err = {{0}};
  bool ok = read_as(name, 3, &img, &err) != 0 && strstr(err.msg, name) && strstr(err.msg, want);
  if (!ok)
    fprintf(stderr, "  %s: got \"%s\", wanted \"%s\"\n", name, err.msg, want);
  return ok;
}

//
// JPEG
//

// A w x h RGB JPEG of noise (so that its entropy data is long), through libjpeg.
static Buf make_jpeg(int w, int h, bool progressive) {
  struct jpeg_compress_struct c;
  struct jpeg_error_mgr e;
  c.err = jpeg_std_error(&e);
  jpeg_create_compress(&c);
  unsigned char *out = NULL;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &out, &size);
  c.image_width = (JDIMENSION)w, c.image_height = (JDIMENSION)h, c.input_components = 3, c.in_color_space = JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, 50, TRUE);
  if (progressive)
    jpeg_simple_progression(&c);
  jpeg_start_compress(&c, TRUE);
  uint8_t *row = malloc((size_t)w * 3);
  uint32_t x = 12345;
  while (c.next_scanline < c.image_height) {
    for (int i = 0; i < w * 3; i++)
      row[i] = (uint8_t)((x = x * 1103515245u + 12345u) >> 24);
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  free(row);
  return (Buf){out, size};
}

// The offset of the first marker `code` (0xFFcode) after the start of image.
static size_t find_marker(const Buf *x, uint8_t code) {
  for (size_t i = 2; i + 1 < x->n; i++)
    if (x->b[i] == 0xff && x->b[i + 1] == code)
      return i;
  return 0;
}

static void test_jpeg_bomb(void) {
  // The file: a small JPEG whose frame header is changed to claim 13000x13000.
  Buf x = make_jpeg(16, 16, false);
  size_t sof = find_marker(&x, 0xc0);
  CHECK(sof > 0 && x.n < 1024);
  x.b[sof + 5] = 13000 >> 8, x.b[sof + 6] = 13000 & 255, x.b[sof + 7] = 13000 >> 8, x.b[sof + 8] = 13000 & 255;
  write_file("bomb.jpg", &x);
  char path[2200];
  path_of(path, sizeof path, "bomb.jpg");
  TlcImageReader *r;
  TlcImageHeader h;
  TlcError err;
  CHECK(tlc_image_open(path, 3, &r, &h, &err) == 0);
  CHECK(h.width == 13000 && h.height == 13000 && h.kind == TLC_IMAGE_RGB && h.channels == 3);
  CHECK(h.decode_bytes >= (int64_t)13000 * 13000 * 3);   // what a caller must be ready to give
  TlcImage img;
  CHECK(tlc_image_decode_pixels(r, &img, &err) != 0 && strstr(err.msg, "corrupt data (libjpeg: Corrupt JPEG data"));
  tlc_image_close(r);
  free(x.b);
}

static void test_jpeg_damage(void) {
  Buf x = make_jpeg(64, 48, false);
  write_file("good.jpg", &x);
  TlcImage img;
  TlcError err;
  CHECK(read_as("good.jpg", 3, &img, &err) == 0 && img.width == 64 && img.height == 48 && img.channels == 3);
  tlc_image_free(&img);
  CHECK(read_as("good.jpg", 1, &img, &err) == 0 && img.channels == 1);
  tlc_image_free(&img);
  // Bytes flipped in the middle of the entropy-coded data.
  size_t sos = find_marker(&x, 0xda), mid = sos + (x.n - sos) / 2;
  for (size_t i = mid; i < mid + 8; i++)
    x.b[i] ^= 0x55;
  write_file("damaged.jpg", &x);
  CHECK(refused("damaged.jpg", "not a readable JPEG: corrupt data (libjpeg: Corrupt JPEG data"));
  free(x.b);
  // Cut short: libjpeg pads it with gray; here it is an error.
  x = make_jpeg(64, 48, true);
  x.n = x.n * 2 / 3;
  write_file("cut.jpg", &x);
  CHECK(refused("cut.jpg", "not a readable JPEG: the file is truncated (premature end of JPEG data)"));
  free(x.b);
}

// A progressive JPEG keeps every coefficient while it decodes: the header says so.
static void test_decode_bytes(void) {
  Buf seq = make_jpeg(400, 300, false), prog = make_jpeg(400, 300, true);
  write_file("seq.jpg", &seq);
  write_file("prog.jpg", &prog);
  char a[2200], b[2200];
  path_of(a, sizeof a, "seq.jpg");
  path_of(b, sizeof b, "prog.jpg");
  TlcImageReader *r;
  TlcImageHeader hs, hp;
  TlcError err;
  CHECK(tlc_image_open(a, 3, &r, &hs, &err) == 0);
  tlc_image_close(r);
  CHECK(tlc_image_open(b, 3, &r, &hp, &err) == 0);
  tlc_image_close(r);
  int64_t pixels = 400 * 300 * 3;
  CHECK(hs.decode_bytes >= pixels && hs.decode_bytes < 2 * pixels);
  CHECK(hp.decode_bytes >= hs.decode_bytes + 400 * 300);   // at least 2 bytes per luma coefficient
  free(seq.b);
  free(prog.b);
}

//
// PNG
//

static void append(Buf *x, const void *bytes, size_t n) {
  x->b = realloc(x->b, x->n + n);
  memcpy(x->b + x->n, bytes, n);
  x->n += n;
}

static void put32(Buf *x, uint32_t v) {
  uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
  append(x, b, 4);
}

// One chunk; bad_crc spoils its CRC.
static void chunk(Buf *x, const char *type, const void *data, size_t n, bool bad_crc) {
  put32(x, (uint32_t)n);
  append(x, type, 4);
  append(x, data, n);
  uLong crc = crc32(crc32(0, (const Bytef *)type, 4), (const Bytef *)data, (uInt)n);
  put32(x, (uint32_t)crc ^ (bad_crc ? 1u : 0u));
}

typedef struct PngSpec {
  uint32_t width, height, rows;   // rows of image data written (height: the right amount)
  const char *text_crc;           // a tEXt chunk, its CRC spoiled when "bad"
  bool no_end;                    // no IEND
} PngSpec;

static Buf make_png(PngSpec s) {
  Buf x = {0};
  static const uint8_t magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  append(&x, magic, 8);
  uint8_t ihdr[13] = {0};
  for (int i = 0; i < 4; i++)
    ihdr[i] = (uint8_t)(s.width >> (24 - 8 * i)), ihdr[4 + i] = (uint8_t)(s.height >> (24 - 8 * i));
  ihdr[8] = 8, ihdr[9] = 2;   // 8-bit RGB
  chunk(&x, "IHDR", ihdr, 13, false);
  if (s.text_crc)
    chunk(&x, "tEXt", "Comment\0hello", 13, strcmp(s.text_crc, "bad") == 0);
  size_t row = 1 + 3 * (size_t)s.width, raw_n = row * s.rows;
  uint8_t *raw = calloc(raw_n ? raw_n : 1, 1);
  for (size_t i = 0; i < raw_n; i++)
    raw[i] = i % row ? (uint8_t)(i * 7) : 0;   // filter byte 0 at each row's start
  uLongf z_n = compressBound((uLong)raw_n);
  uint8_t *z = malloc(z_n);
  compress(z, &z_n, raw, (uLong)raw_n);
  chunk(&x, "IDAT", z, z_n, false);
  if (!s.no_end)
    chunk(&x, "IEND", "", 0, false);
  free(raw);
  free(z);
  return x;
}

static void test_png_damage(void) {
  struct {
    const char *name, *want;
    PngSpec spec;
  } cases[] = {
      {"text_crc.png", "not a readable PNG: tEXt: CRC error", {30, 20, 20, "bad", false}},
      {"too_much.png", "not a readable PNG: IDAT: Too much image data", {30, 20, 21, NULL, false}},
      {"no_end.png", "not a readable PNG: the file is truncated", {30, 20, 20, NULL, true}},
      {"huge.png", "the image claims 20000x20000 pixels (at most 178956970 are accepted", {20000, 20000, 1, NULL, false}},
  };
  PngSpec good = {30, 20, 20, "good", false};
  Buf x = make_png(good);
  write_file("good.png", &x);
  free(x.b);
  TlcImage img;
  TlcError err;
  CHECK(read_as("good.png", 3, &img, &err) == 0 && img.width == 30 && img.height == 20);
  tlc_image_free(&img);
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    x = make_png(cases[i].spec);
    write_file(cases[i].name, &x);
    free(x.b);
    CHECK(refused(cases[i].name, cases[i].want));
  }
}

// A gray PNG asked for as RGB takes three bytes a pixel, and says it held gray.
static void test_header(void) {
  char path[2200];
  path_of(path, sizeof path, "gray.png");
  uint8_t pixels[6 * 4];
  for (int i = 0; i < 24; i++)
    pixels[i] = (uint8_t)(i * 10);
  TlcImage gray = {6, 4, 1, pixels}, img;
  TlcError err;
  CHECK(tlc_image_write_png(path, &gray, &err) == 0);
  TlcImageReader *r;
  TlcImageHeader h;
  CHECK(tlc_image_open(path, 3, &r, &h, &err) == 0);
  CHECK(h.kind == TLC_IMAGE_GRAY && h.channels == 3 && h.decode_bytes >= 6 * 4 * 3);
  CHECK(tlc_image_decode_pixels(r, &img, &err) == 0 && img.channels == 3);
  CHECK(img.pixels[3 * 5] == 50 && img.pixels[3 * 5 + 1] == 50 && img.pixels[3 * 5 + 2] == 50);
  tlc_image_free(&img);
  tlc_image_close(r);
  CHECK(tlc_image_open(path, 2, &r, &h, &err) != 0 && strstr(err.msg, "2 channels asked for"));
  CHECK(strcmp(tlc_image_kind_name(TLC_IMAGE_CMYK), "CMYK") == 0);
}

int main(void) {
  const char *env = getenv("TLC_TEST_TMP");
  snprintf(tmp_dir, sizeof tmp_dir, "%s", env && *env ? env : "/tmp/tlc-test-image");
  if (mkdir(tmp_dir, 0755) != 0 && errno != EEXIST)
    perror(tmp_dir);
  test_jpeg_bomb();
  test_jpeg_damage();
  test_decode_bytes();
  test_png_damage();
  test_header();
  return check_report();
}
