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

// The filter the resize above applies along one axis of in_size -> out_size, for the GPU's
// data path (augment.c): out_size entries of transform_taps_stride() int64 each, the first
// source pixel (plus offset), the count, then the fixed-point weights (zero-padded). -1 when
// memory runs out.
int64_t transform_taps_stride(int32_t in_size, int32_t out_size);
int transform_taps(int32_t in_size, int32_t out_size, int32_t offset, int64_t *dst);

// Rotation by degrees of a w x h image as Pillow maps it: output (x, y) reads source
// (floor((q[0] + q[1] x + q[2] y) / 65536), floor((q[3] + q[4] x + q[5] y) / 65536)), zero
// outside. False for an image too large for 16.16 coordinates: Pillow's floating-point map m
// (x' = m[0] x + m[1] y + m[2] from pixel centres) then.
bool transform_rotation(int32_t w, int32_t h, double degrees, int64_t q[6], double m[6]);

// Pillow's 8-bit RGB <-> HSV conversions that hue jitter makes (transform_color.c); the GPU's
// data path tabulates them.
void transform_rgb_to_hsv(const uint8_t *rgb, uint8_t *hsv);
void transform_hsv_to_rgb(const uint8_t *hsv, uint8_t *rgb);

// Resize's output size for an input of width x height.
void transform_resize_shape(const TlcTransform *t, int32_t width, int32_t height, int32_t *out_w, int32_t *out_h);

#endif
