// image.c: JPEG and PNG files to 8-bit gray or RGB images, as torchvision's loader sees them.
//
// Contract (tlcrt.h, section "image.c"): decoding never exits, crashes or reads out of bounds,
// whatever the bytes. A file is read in two steps, so that a caller can bound its memory: the
// header (size, what the file holds, the bytes decoding will take), then the pixels. A header
// claiming more than PIL's limit is refused before any memory is taken for it. The codecs
// (image_jpeg.c, image_png.c) write the file's own layout, gray or RGB, with PIL's
// convert("RGB") already applied to palettes, alpha and CMYK; here the image becomes the
// channels asked for: gray replicated to RGB, or RGB to PIL's convert("L").
#include "image_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *tlc_image_kind_name(TlcImageKind kind) {
  static const char *const names[TLC_IMAGE_KINDS] = {"grayscale", "gray+alpha", "palette", "RGB", "RGBA", "CMYK"};
  return (unsigned)kind < TLC_IMAGE_KINDS ? names[kind] : "unknown";
}

void tlc_image_free(TlcImage *img) {
  free(img->pixels);
  memset(img, 0, sizeof *img);
}

void tlc_image_close(TlcImageReader *r) {
  if (!r)
    return;
  if (r->codec)
    r->png ? image_png_close(r) : image_jpeg_close(r);
  if (r->file)
    fclose(r->file);
  free(r);
}

// Channels after conversion: as asked, or gray for gray files and RGB for the rest.
static int out_channels(const TlcImageReader *r, int want) {
  return want ? want : r->stored;
}

static int check_size(TlcImageReader *r, int want, TlcError *err) {
  TlcImageHeader *h = &r->header;
  int64_t w = h->width, ht = h->height;
  if (w < 1 || ht < 1 || w * ht > TLC_IMAGE_MAX_PIXELS)
    return tlc_fail(err, "%s: the image claims %lldx%lld pixels (at most %lld are accepted, PIL's decompression-bomb "
                    "limit)", r->name, (long long)w, (long long)ht, (long long)TLC_IMAGE_MAX_PIXELS);
  h->channels = out_channels(r, want);
  int widest = r->stored > h->channels ? r->stored : h->channels;
  h->decode_bytes = w * ht * widest + r->codec_bytes;
  return 0;
}

static int open_stream(FILE *f, const char *name, int channels, TlcImageReader **out, TlcImageHeader *header,
                       TlcError *err) {
  *out = NULL;
  if (channels != 0 && channels != 1 && channels != 3) {
    fclose(f);
    return tlc_fail(err, "%s: %d channels asked for; images are read as 1 (gray) or 3 (RGB)", name, channels);
  }
  TlcImageReader *r = calloc(1, sizeof *r);
  if (!r) {
    fclose(f);
    return tlc_fail(err, "%s: out of memory", name);
  }
  r->file = f, r->name = name;
  static const uint8_t jpeg_magic[3] = {0xff, 0xd8, 0xff}, png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  uint8_t magic[8];
  size_t got = fread(magic, 1, sizeof magic, f);
  rewind(f);
  int rc;
  if (got >= sizeof jpeg_magic && !memcmp(magic, jpeg_magic, sizeof jpeg_magic))
    rc = image_jpeg_open(r, err);
  else if (got >= sizeof png_magic && !memcmp(magic, png_magic, sizeof png_magic))
    r->png = true, rc = image_png_open(r, err);
  else
    rc = tlc_fail(err, "%s: neither a JPEG nor a PNG file (%s)", name, got ? "unknown first bytes" : "empty");
  if (rc == 0)
    rc = check_size(r, channels, err);
  if (rc) {
    tlc_image_close(r);
    return -1;
  }
  *header = r->header;
  *out = r;
  return 0;
}

int tlc_image_open(const char *path, int channels, TlcImageReader **out, TlcImageHeader *header, TlcError *err) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f)
    return tlc_fail(err, "%s: cannot open: %s", path, strerror(errno));
  return open_stream(f, path, channels, out, header, err);
}

// Gray to RGB in place: the buffer holds n gray bytes and has room for 3n; walking from the
// end, no byte is overwritten before it is read.
static void gray_to_rgb(uint8_t *p, size_t n) {
  for (size_t i = n; i-- > 0;)
    p[3 * i] = p[3 * i + 1] = p[3 * i + 2] = p[i];
}

// PIL's convert("L") of RGB, in place (each output byte lies at or before its input).
static void rgb_to_gray(uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)((p[3 * i] * 19595u + p[3 * i + 1] * 38470u + p[3 * i + 2] * 7471u + 0x8000u) >> 16);
}

int tlc_image_decode_pixels(TlcImageReader *r, TlcImage *out, TlcError *err) {
  memset(out, 0, sizeof *out);
  const TlcImageHeader *h = &r->header;
  size_t n = (size_t)h->width * (size_t)h->height;
  uint8_t *pixels = malloc(n * (size_t)(r->stored > h->channels ? r->stored : h->channels));
  if (!pixels)
    return tlc_fail(err, "%s: out of memory for a %dx%d image", r->name, h->width, h->height);
  if (r->png ? image_png_decode(r, pixels, err) : image_jpeg_decode(r, pixels, err)) {
    free(pixels);
    return -1;
  }
  if (r->stored == 1 && h->channels == 3)
    gray_to_rgb(pixels, n);
  if (r->stored == 3 && h->channels == 1) {
    rgb_to_gray(pixels, n);
    uint8_t *shrunk = realloc(pixels, n);
    pixels = shrunk ? shrunk : pixels;
  }
  *out = (TlcImage){h->width, h->height, h->channels, pixels};
  return 0;
}

static int read_all(TlcImageReader *r, TlcImage *out, TlcError *err) {
  int rc = tlc_image_decode_pixels(r, out, err);
  tlc_image_close(r);
  return rc;
}

int tlc_image_read_as(const char *path, int channels, TlcImage *out, TlcError *err) {
  memset(out, 0, sizeof *out);
  TlcImageReader *r;
  TlcImageHeader h;
  return tlc_image_open(path, channels, &r, &h, err) ? -1 : read_all(r, out, err);
}

int tlc_image_read(const char *path, TlcImage *out, TlcError *err) {
  return tlc_image_read_as(path, 0, out, err);
}

int tlc_image_decode(const uint8_t *bytes, size_t size, const char *name, TlcImage *out, TlcError *err) {
  memset(out, 0, sizeof *out);
  if (size == 0)
    return tlc_fail(err, "%s: neither a JPEG nor a PNG file (empty)", name);
  FILE *f = fmemopen((void *)bytes, size, "rb");
  if (!f)
    return tlc_fail(err, "%s: cannot read from memory: %s", name, strerror(errno));
  TlcImageReader *r;
  TlcImageHeader h;
  return open_stream(f, name, 0, &r, &h, err) ? -1 : read_all(r, out, err);
}
