// fuzz_image.c: JPEG and PNG decoding (image.c, image_jpeg.c, image_png.c) as the loader and
// --predict use it: from memory as stored (channels 0), and from the file as a model taking
// 1 and 3 channels reads it, header first.
//
// A header that opens must be the size it claims, within PIL's limit, its decode_bytes at least
// the pixels; decoded pixels must fill exactly that size. The three reads must agree on whether
// the file decodes, and the gray image must be PIL's convert("L") of the RGB one (for a gray
// file, RGB is the gray replicated, which converts back to itself). Every refusal names the file.
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

// Opens and decodes path as `channels`; returns whether it decoded (into *img).
static bool read_as(const char *path, int channels, TlcImage *img) {
  TlcImageReader *r;
  TlcImageHeader h;
  TlcError err = {{0}};
  if (tlc_image_open(path, channels, &r, &h, &err) != 0) {
    fuzz_refused(&err, path);
    fuzz_require(r == NULL, "a refused open returned a reader");
    return false;
  }
  int64_t pixels = (int64_t)h.width * h.height;
  fuzz_require(h.width >= 1 && h.height >= 1 && pixels <= TLC_IMAGE_MAX_PIXELS, "a %dx%d header opened", h.width,
               h.height);
  fuzz_require(h.channels == channels && (unsigned)h.kind < TLC_IMAGE_KINDS, "the header says %d channels, kind %d",
               h.channels, (int)h.kind);
  fuzz_require(h.decode_bytes >= pixels * channels, "decode_bytes %lld is less than the pixels",
               (long long)h.decode_bytes);
  bool ok = tlc_image_decode_pixels(r, img, &err) == 0;
  if (ok) {
    fuzz_require(img->width == h.width && img->height == h.height && img->channels == channels,
                 "decoded %dx%dx%d after a header of %dx%dx%d", img->width, img->height, img->channels, h.width,
                 h.height, channels);
    fuzz_touch(img->pixels, (size_t)pixels * (size_t)channels);
  } else {
    fuzz_refused(&err, path);
  }
  tlc_image_close(r);
  return ok;
}

void fuzz_one(const char *path, const uint8_t *bytes, size_t size) {
  TlcImage stored, gray, rgb;
  TlcError err = {{0}};
  bool from_memory = tlc_image_decode(bytes, size, path, &stored, &err) == 0;
  if (from_memory) {
    fuzz_require(stored.channels == 1 || stored.channels == 3, "decoded with %d channels", stored.channels);
    fuzz_touch(stored.pixels, (size_t)stored.width * stored.height * stored.channels);
  } else {
    fuzz_refused(&err, path);
  }
  bool as_gray = read_as(path, 1, &gray), as_rgb = read_as(path, 3, &rgb);
  fuzz_require(as_gray == from_memory && as_rgb == from_memory,
               "decodes from memory: %d, as gray: %d, as RGB: %d", from_memory, as_gray, as_rgb);
  if (as_gray && as_rgb) {
    size_t n = (size_t)gray.width * gray.height;
    for (size_t i = 0; i < n; i++) {
      const uint8_t *p = rgb.pixels + 3 * i;
      uint8_t l = (uint8_t)((p[0] * 19595u + p[1] * 38470u + p[2] * 7471u + 0x8000u) >> 16);
      fuzz_require(gray.pixels[i] == l, "gray pixel %zu is %d, convert(\"L\") of the RGB one %d", i, gray.pixels[i], l);
    }
  }
  if (from_memory)
    tlc_image_free(&stored);
  if (as_gray)
    tlc_image_free(&gray);
  if (as_rgb)
    tlc_image_free(&rgb);
}
