// image.c: JPEG and PNG files to and from 8-bit images.
//
// Contract (tlcrt.h, section "image.c"): decoding never exits, crashes or reads out of bounds,
// whatever the bytes. libjpeg's default error handler calls exit(), so a handler of our own
// longjmps back to the decoder's caller with libjpeg's message. A truncated JPEG is only a
// warning to libjpeg (it pads the image with gray); here it is an error, as it is to PIL, so
// that a half-gray image never reaches training. PNG goes through libpng's simplified API,
// which reports errors in the png_image instead of longjmp and does the conversions (palette,
// 16 bits, alpha, gray+alpha) for us.
#include "tlcrt.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

// PIL's limit on decompression bombs: a header claiming more pixels is refused before any
// memory is taken for it.
static const int64_t IMAGE_MAX_PIXELS = 178956970;
static const int64_t IMAGE_MAX_FILE = (int64_t)1 << 31;

void tlc_image_free(TlcImage *img) {
  free(img->pixels);
  memset(img, 0, sizeof *img);
}

static int image_alloc(TlcImage *img, int64_t w, int64_t h, int c, const char *name, TlcError *err) {
  if (w < 1 || h < 1 || w * h > IMAGE_MAX_PIXELS)
    return tlc_fail(err, "%s: the image claims %lldx%lld pixels (at most %lld are accepted)", name, (long long)w,
                    (long long)h, (long long)IMAGE_MAX_PIXELS);
  img->pixels = malloc((size_t)(w * h * c));
  if (!img->pixels)
    return tlc_fail(err, "%s: out of memory for a %lldx%lld image", name, (long long)w, (long long)h);
  img->width = (int32_t)w, img->height = (int32_t)h, img->channels = c;
  return 0;
}

//
// JPEG
//

typedef struct JpegErr {
  struct jpeg_error_mgr mgr;   // first: libjpeg hands us this pointer
  jmp_buf back;
  char msg[JMSG_LENGTH_MAX];
} JpegErr;

static void jpeg_fail_exit(j_common_ptr cinfo) {
  JpegErr *e = (JpegErr *)cinfo->err;
  cinfo->err->format_message(cinfo, e->msg);
  longjmp(e->back, 1);
}

// Warnings (level -1) are ignored except a premature end of data, which means the file is cut.
static void jpeg_message(j_common_ptr cinfo, int level) {
  JpegErr *e = (JpegErr *)cinfo->err;
  if (level == -1 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
    snprintf(e->msg, sizeof e->msg, "the file is truncated (premature end of JPEG data)");
    longjmp(e->back, 1);
  }
}

static int decode_jpeg(const uint8_t *bytes, size_t size, const char *name, TlcImage *out, TlcError *err) {
  struct jpeg_decompress_struct cinfo;
  JpegErr jerr;
  // Volatile: it is written after setjmp and read after the longjmp.
  TlcImage *volatile img = out;
  cinfo.err = jpeg_std_error(&jerr.mgr);
  jerr.mgr.error_exit = jpeg_fail_exit;
  jerr.mgr.emit_message = jpeg_message;
  jerr.msg[0] = '\0';
  if (setjmp(jerr.back)) {
    jpeg_destroy_decompress(&cinfo);
    tlc_image_free(img);
    return tlc_fail(err, "%s: not a readable JPEG: %s", name, jerr.msg);
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, bytes, (unsigned long)size);
  jpeg_read_header(&cinfo, TRUE);
  bool gray = cinfo.num_components == 1;
  if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
    jpeg_destroy_decompress(&cinfo);
    return tlc_fail(err, "%s: CMYK JPEG images are not supported; convert it to RGB", name);
  }
  cinfo.out_color_space = gray ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&cinfo);
  if (image_alloc(img, cinfo.output_width, cinfo.output_height, gray ? 1 : 3, name, err)) {
    jpeg_destroy_decompress(&cinfo);
    return -1;
  }
  size_t stride = (size_t)img->width * img->channels;
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = img->pixels + cinfo.output_scanline * stride;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return 0;
}

//
// PNG
//

static int decode_png(const uint8_t *bytes, size_t size, const char *name, TlcImage *out, TlcError *err) {
  png_image png;
  memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&png, bytes, size))
    return tlc_fail(err, "%s: not a readable PNG: %s", name, png.message);
  // Colour (palette or truecolor) becomes RGB, anything else gray; alpha is composited on black
  // (libpng's default when no background is given), 16-bit samples are scaled to 8.
  bool color = (png.format & PNG_FORMAT_FLAG_COLOR) != 0;
  png.format = color ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  // Without this flag the simplified API takes 16-bit samples for linear light and applies
  // the sRGB curve when reducing them to 8 bits; image files hold sRGB-encoded values, so
  // the reduction must be a plain rescale (v * 255 / 65535), as other readers do.
  png.flags |= PNG_IMAGE_FLAG_16BIT_sRGB;
  if (image_alloc(out, png.width, png.height, color ? 3 : 1, name, err)) {
    png_image_free(&png);
    return -1;
  }
  if (!png_image_finish_read(&png, NULL, out->pixels, 0, NULL)) {
    tlc_image_free(out);
    return tlc_fail(err, "%s: not a readable PNG: %s", name, png.message);
  }
  return 0;
}

int tlc_image_decode(const uint8_t *bytes, size_t size, const char *name, TlcImage *out, TlcError *err) {
  memset(out, 0, sizeof *out);
  static const uint8_t jpeg_magic[3] = {0xff, 0xd8, 0xff}, png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (size >= sizeof jpeg_magic && !memcmp(bytes, jpeg_magic, sizeof jpeg_magic))
    return decode_jpeg(bytes, size, name, out, err);
  if (size >= sizeof png_magic && !memcmp(bytes, png_magic, sizeof png_magic))
    return decode_png(bytes, size, name, out, err);
  return tlc_fail(err, "%s: neither a JPEG nor a PNG file (%s)", name, size ? "unknown first bytes" : "empty");
}

// The whole file in new memory.
static int read_file(const char *path, uint8_t **bytes, size_t *size, TlcError *err) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return tlc_fail(err, "%s: cannot open: %s", path, strerror(errno));
  size_t cap = 1 << 16, n = 0;
  uint8_t *buf = malloc(cap);
  for (;;) {
    if (!buf)
      break;
    n += fread(buf + n, 1, cap - n, f);
    if (n < cap || (int64_t)cap >= IMAGE_MAX_FILE)
      break;
    uint8_t *grown = realloc(buf, cap * 2);
    if (!grown) {
      free(buf);
      buf = NULL;
      break;
    }
    buf = grown, cap *= 2;
  }
  int failed = ferror(f), saved = errno;
  fclose(f);
  if (!buf)
    return tlc_fail(err, "%s: out of memory reading the file", path);
  if (failed) {
    free(buf);
    return tlc_fail(err, "%s: cannot read: %s", path, strerror(saved));
  }
  *bytes = buf, *size = n;
  return 0;
}

int tlc_image_read(const char *path, TlcImage *out, TlcError *err) {
  memset(out, 0, sizeof *out);
  uint8_t *bytes = NULL;
  size_t size = 0;
  if (read_file(path, &bytes, &size, err))
    return -1;
  int rc = tlc_image_decode(bytes, size, path, out, err);
  free(bytes);
  return rc;
}

int tlc_image_write_png(const char *path, const TlcImage *img, TlcError *err) {
  char tmp[4200];
  if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp)
    return tlc_fail(err, "%s: path too long", path);
  FILE *f = fopen(tmp, "wb");
  if (!f)
    return tlc_fail(err, "%s: cannot write: %s", tmp, strerror(errno));
  png_image png;
  memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  png.width = (png_uint_32)img->width;
  png.height = (png_uint_32)img->height;
  png.format = img->channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  bool ok = png_image_write_to_stdio(&png, f, 0, img->pixels, 0, NULL) != 0;
  ok = fflush(f) == 0 && ok && fsync(fileno(f)) == 0;
  ok = fclose(f) == 0 && ok;
  if (!ok || rename(tmp, path) != 0) {
    int saved = errno;
    remove(tmp);
    return tlc_fail(err, "%s: cannot write: %s", path, png.message[0] ? png.message : strerror(saved));
  }
  return 0;
}
