// image_png.c: PNG files through libpng (image_internal.h has the codec contract), and
// writing 8-bit PNG files.
//
// libpng's own API rather than its simplified one, because the simplified one composites
// alpha (onto whatever the buffer held), applies gamma and keeps only its first warning.
// Here the samples are PIL's: palettes expanded with transparency ignored, alpha dropped,
// 1, 2 and 4-bit gray scaled to 0..255, 16-bit samples cut to their high byte (PIL's
// "RGB;16B" and friends; PIL reads 16-bit gray as 32-bit integers that convert("RGB")
// clips at 255, which we do not copy), no gamma.
//
// libpng's errors longjmp back with its message. Its warnings are errors too, except those
// about an ancillary chunk's content ("iCCP: known incorrect sRGB profile" and the like,
// metadata we do not use): a CRC error in any chunk, or a warning about a critical chunk
// (IHDR, PLTE, IDAT, IEND: too much or too little image data, extra compressed data), means
// the file is damaged.
#include "image_internal.h"

#include <ctype.h>
#include <errno.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <png.h>

typedef struct Png {
  png_structp png;
  png_infop info;
  int passes;              // 7 for an interlaced file, else 1
  char msg[256];
} Png;

static void on_error(png_structp png, png_const_charp msg) {
  Png *s = png_get_error_ptr(png);
  // libpng's stdio reader says "Read Error" for a short read: the file ends early.
  bool cut = strcmp(msg, "Read Error") == 0;
  snprintf(s->msg, sizeof s->msg, "%s", cut ? "the file is truncated (it ends before the PNG's end)" : msg);
  png_longjmp(png, 1);
}

// "tEXt: ..." and the like: libpng prefixes a chunk's warnings with its 4-letter name; a
// lower-case first letter marks an ancillary chunk.
static bool about_the_data(const char *msg) {
  if (strstr(msg, "CRC"))
    return true;
  bool named = strlen(msg) > 5 && msg[4] == ':' && msg[5] == ' ';
  for (int i = 0; named && i < 4; i++)
    named = isalpha((unsigned char)msg[i]);
  return !(named && islower((unsigned char)msg[0]));
}

static void on_warning(png_structp png, png_const_charp msg) {
  if (about_the_data(msg))
    on_error(png, msg);
}

static TlcImageKind kind_of(int color_type) {
  switch (color_type) {
  case PNG_COLOR_TYPE_GRAY: return TLC_IMAGE_GRAY;
  case PNG_COLOR_TYPE_GRAY_ALPHA: return TLC_IMAGE_GRAY_ALPHA;
  case PNG_COLOR_TYPE_PALETTE: return TLC_IMAGE_PALETTE;
  case PNG_COLOR_TYPE_RGB_ALPHA: return TLC_IMAGE_RGBA;
  default: return TLC_IMAGE_RGB;
  }
}

// The ancillary chunks libpng knows, all metadata that PIL's conversions ignore (text,
// colour profiles and gamma, which we do not apply; tRNS, whose transparency is dropped).
static const png_byte METADATA_CHUNKS[] = "bKGD\0cHRM\0eXIf\0gAMA\0hIST\0iCCP\0iTXt\0oFFs\0pCAL\0pHYs\0"
                                          "sBIT\0sCAL\0sPLT\0sRGB\0tEXt\0tIME\0tRNS\0zTXt";

// libpng skips every ancillary chunk, checking its CRC, instead of reading it into memory.
// It would take the length a chunk claims: a 147-byte file whose tEXt chunk claims 2 GiB
// made it allocate and fill 2 GiB (found by fuzzing, docs/fuzzing.md), after no more than a
// warning that the chunk is too large.
static void skip_metadata(png_structp png) {
  png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, 0);
  png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, METADATA_CHUNKS, (int)(sizeof METADATA_CHUNKS / 5));
}

// The transformations to PIL's 8-bit gray or RGB samples.
static void set_transforms(Png *s, int color_type, int depth) {
  if (depth == 16)
    png_set_strip_16(s->png);
  if (color_type == PNG_COLOR_TYPE_PALETTE)
    png_set_palette_to_rgb(s->png);
  if (color_type == PNG_COLOR_TYPE_GRAY && depth < 8)
    png_set_expand_gray_1_2_4_to_8(s->png);
  png_set_strip_alpha(s->png);
  s->passes = png_set_interlace_handling(s->png);
  png_read_update_info(s->png, s->info);
}

int image_png_open(TlcImageReader *r, TlcError *err) {
  Png *s = calloc(1, sizeof *s);
  if (!s)
    return tlc_fail(err, "%s: out of memory", r->name);
  r->codec = s;
  s->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, s, on_error, on_warning);
  s->info = s->png ? png_create_info_struct(s->png) : NULL;
  if (!s->info)
    return tlc_fail(err, "%s: out of memory", r->name);
  if (setjmp(png_jmpbuf(s->png)))
    return tlc_fail(err, "%s: not a readable PNG: %s", r->name, s->msg);
  skip_metadata(s->png);
  png_init_io(s->png, r->file);
  png_read_info(s->png, s->info);
  png_uint_32 width, height;
  int depth, color_type;
  png_get_IHDR(s->png, s->info, &width, &height, &depth, &color_type, NULL, NULL, NULL);
  set_transforms(s, color_type, depth);
  r->header.kind = kind_of(color_type);
  r->header.width = (int32_t)(width > INT32_MAX ? INT32_MAX : width);
  r->header.height = (int32_t)(height > INT32_MAX ? INT32_MAX : height);
  r->stored = png_get_channels(s->png, s->info);
  if ((r->stored != 1 && r->stored != 3) || png_get_rowbytes(s->png, s->info) != (size_t)width * r->stored)
    return tlc_fail(err, "%s: not a readable PNG: colour type %d at %d bits did not become 8-bit gray or RGB",
                    r->name, color_type, depth);
  // libpng's own: the previous and current row at the file's depth, and zlib's window.
  r->codec_bytes = 2 * ((int64_t)width * 8 + 1) + (1 << 16);
  return 0;
}

int image_png_decode(TlcImageReader *r, uint8_t *pixels, TlcError *err) {
  Png *s = r->codec;
  if (setjmp(png_jmpbuf(s->png)))
    return tlc_fail(err, "%s: not a readable PNG: %s", r->name, s->msg);
  size_t stride = (size_t)r->header.width * (size_t)r->stored;
  for (int pass = 0; pass < s->passes; pass++)
    for (int32_t y = 0; y < r->header.height; y++)
      png_read_row(s->png, pixels + (size_t)y * stride, NULL);
  png_read_end(s->png, NULL);   // the chunks after the image data, each CRC checked
  return 0;
}

void image_png_close(TlcImageReader *r) {
  Png *s = r->codec;
  png_destroy_read_struct(&s->png, &s->info, NULL);
  free(s);
  r->codec = NULL;
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
