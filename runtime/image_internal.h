// image_internal.h: what image.c shares with its two codecs (image_jpeg.c, image_png.c) and
// nothing else includes.
//
// A codec reads a file's header (open), then its pixels (decode) in the layout it stores them
// (`stored` channels: 1 gray or 3 RGB; alpha dropped, palettes and CMYK turned into RGB as
// PIL's convert("RGB") does), and frees what it holds (close). Its errors name the file; a
// warning about corrupt data is an error. image.c checks the size, converts to the channels
// asked for and owns the memory.
#ifndef TLC_IMAGE_INTERNAL_H
#define TLC_IMAGE_INTERNAL_H

#include "tlcrt.h"

struct TlcImageReader {
  FILE *file;
  const char *name;        // the caller's string, for messages
  TlcImageHeader header;   // width, height and kind from the codec; the rest from image.c
  int stored;              // channels the codec writes: 1 or 3
  int64_t codec_bytes;     // what the codec allocates while decoding, beside the pixels
  bool png;
  void *codec;             // the codec's state between open and decode
};

int image_jpeg_open(TlcImageReader *r, TlcError *err);
int image_jpeg_decode(TlcImageReader *r, uint8_t *pixels, TlcError *err);   // width * height * stored bytes
void image_jpeg_close(TlcImageReader *r);

int image_png_open(TlcImageReader *r, TlcError *err);
int image_png_decode(TlcImageReader *r, uint8_t *pixels, TlcError *err);
void image_png_close(TlcImageReader *r);

#endif
