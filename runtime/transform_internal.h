// transform_internal.h: what the transform_*.c files share and nothing else calls. The public
// API is the "transform.c" section of tlcrt.h.
#ifndef TLC_TRANSFORM_INTERNAL_H
#define TLC_TRANSFORM_INTERNAL_H

#include "tlcrt.h"

// dst (width and height given, pixels allocated) = the box of src at (top, left); what lies
// outside src is zero (RandomCrop's padding, without a padded copy).
void transform_crop(const TlcImage *src, int32_t top, int32_t left, TlcImage *dst);
void transform_hflip(const TlcImage *src, TlcImage *dst);
void transform_vflip(const TlcImage *src, TlcImage *dst);

// tlc_image_resize of an image whose rows lie `stride` bytes apart (a crop of a larger one).
int transform_resize_view(const TlcImage *src, size_t stride, TlcImage *dst, TlcError *err);

#endif
