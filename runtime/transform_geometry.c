// transform_geometry.c: the transforms that move pixels without changing them: crops (with
// zero padding), flips and rotation.
//
// Contract: tlc_image_rotate is Pillow's Image.rotate(angle, NEAREST, expand=False,
// fillcolor=0), which torchvision's RandomRotation calls on a PIL image: the exact transposes
// Pillow takes for 0, 180 and (square images) 90 and 270 degrees, else its affine map from
// each output pixel centre back to the source in 16.16 fixed point, source pixels chosen by
// flooring, zero outside. The internal crop and flip helpers are declared in
// transform_internal.h.
#include "transform_internal.h"

#include <math.h>
#include <string.h>

void transform_crop(const TlcImage *src, int32_t top, int32_t left, TlcImage *dst) {
  // Rows or columns outside src are zero: RandomCrop's padding, without a padded copy.
  int32_t c = src->channels;
  dst->channels = c;
  for (int32_t y = 0; y < dst->height; y++) {
    uint8_t *out = dst->pixels + (size_t)y * dst->width * c;
    int32_t sy = top + y;
    memset(out, 0, (size_t)dst->width * c);
    if (sy < 0 || sy >= src->height)
      continue;
    int32_t x0 = left < 0 ? -left : 0;
    int32_t x1 = src->width - left < dst->width ? src->width - left : dst->width;
    if (x1 > x0)
      memcpy(out + (size_t)x0 * c, src->pixels + ((size_t)sy * src->width + left + x0) * c,
             (size_t)(x1 - x0) * c);
  }
}

void transform_hflip(const TlcImage *src, TlcImage *dst) {
  int32_t c = src->channels, w = src->width;
  *dst = (TlcImage){w, src->height, c, dst->pixels};
  for (int32_t y = 0; y < src->height; y++) {
    const uint8_t *in = src->pixels + (size_t)y * w * c;
    uint8_t *out = dst->pixels + (size_t)y * w * c;
    for (int32_t x = 0; x < w; x++)
      memcpy(out + (size_t)x * c, in + (size_t)(w - 1 - x) * c, (size_t)c);
  }
}

void transform_vflip(const TlcImage *src, TlcImage *dst) {
  size_t row = (size_t)src->width * src->channels;
  *dst = (TlcImage){src->width, src->height, src->channels, dst->pixels};
  for (int32_t y = 0; y < src->height; y++)
    memcpy(dst->pixels + (size_t)y * row, src->pixels + (size_t)(src->height - 1 - y) * row, row);
}

// Python's round(v, 15), which Image.rotate applies to the matrix, closely enough that the
// fixed-point coefficients below come out the same.
static double round15(double v) { return nearbyint(v * 1e15) / 1e15; }

// Pillow's FLOOR(v * 65536 + 0.5) for its 16.16 coefficients.
static int32_t fixed16(double v) { return (int32_t)floor(v * 65536.0 + 0.5); }

static bool fits_fixed(const double m[6], int32_t x, int32_t y) {
  return fabs(x * m[0] + y * m[1] + m[2]) < 32768.0 && fabs(x * m[3] + y * m[4] + m[5]) < 32768.0;
}

static void put_or_zero(const TlcImage *src, int32_t sx, int32_t sy, uint8_t *out) {
  int32_t ch = src->channels;
  if (sx >= 0 && sx < src->width && sy >= 0 && sy < src->height)
    memcpy(out, src->pixels + ((size_t)sy * src->width + sx) * ch, (size_t)ch);
  else
    memset(out, 0, (size_t)ch);
}

// Pillow's floating-point path, for images too large for 16.16 coordinates: m maps output
// (x, y) to source coordinates, sampled at pixel centres.
static void rotate_float(const TlcImage *src, TlcImage *dst, const double m[6]) {
  int32_t w = dst->width, h = dst->height, ch = src->channels;
  double row_x = m[2] + m[1] * 0.5 + m[0] * 0.5, row_y = m[5] + m[4] * 0.5 + m[3] * 0.5;
  for (int32_t y = 0; y < h; y++, row_x += m[1], row_y += m[4]) {
    double xx = row_x, yy = row_y;
    for (int32_t x = 0; x < w; x++, xx += m[0], yy += m[3])
      put_or_zero(src, xx < 0 ? -1 : (int32_t)xx, yy < 0 ? -1 : (int32_t)yy,
                  dst->pixels + ((size_t)y * w + x) * ch);
  }
}

// Pillow's transposes, sx = a + b x + c y and sy = d + e x + f y, as 16.16 coefficients.
static void exact(int64_t q[6], int32_t a, int32_t b, int32_t c, int32_t d, int32_t e, int32_t f) {
  const int64_t one = 65536;
  q[0] = a * one, q[1] = b * one, q[2] = c * one, q[3] = d * one, q[4] = e * one, q[5] = f * one;
}

bool transform_rotation(int32_t w, int32_t h, double degrees, int64_t q[6], double m[6]) {
  double angle = fmod(degrees, 360.0);  // Python's angle % 360.0: in [0, 360)
  if (angle < 0)
    angle += 360.0;
  if (angle == 360.0)
    angle = 0.0;
  if (angle == 0.0 || angle == 180.0 || (w == h && (angle == 90.0 || angle == 270.0))) {
    if (angle == 0.0)
      exact(q, 0, 1, 0, 0, 0, 1);
    else if (angle == 180.0)
      exact(q, w - 1, -1, 0, h - 1, 0, -1);
    else if (angle == 90.0)
      exact(q, w - 1, 0, -1, 0, 1, 0);
    else
      exact(q, 0, 0, 1, h - 1, -1, 0);
    return true;
  }
  double r = -angle * (3.141592653589793 / 180.0);
  double cx = w / 2.0, cy = h / 2.0;
  m[0] = round15(cos(r)), m[1] = round15(sin(r)), m[3] = round15(-sin(r)), m[4] = round15(cos(r));
  m[2] = m[0] * -cx + m[1] * -cy + cx;
  m[5] = m[3] * -cx + m[4] * -cy + cy;
  if (!(fits_fixed(m, 0, 0) && fits_fixed(m, w, h) && fits_fixed(m, 0, h) && fits_fixed(m, w, 0)))
    return false;
  // Pillow steps xx by a0 along a row and row_x by a1 down the rows, in int32 that the check
  // above keeps from overflowing: the same as row_x + a0 x + a1 y.
  q[0] = fixed16(m[2] + m[0] * 0.5 + m[1] * 0.5), q[1] = fixed16(m[0]), q[2] = fixed16(m[1]);
  q[3] = fixed16(m[5] + m[3] * 0.5 + m[4] * 0.5), q[4] = fixed16(m[3]), q[5] = fixed16(m[4]);
  return true;
}

// floor(v / 65536), Pillow's arithmetic shift of a 16.16 coordinate.
static int32_t floor16(int64_t v) { return (int32_t)((v - (v < 0 ? 65535 : 0)) / 65536); }

void tlc_image_rotate(const TlcImage *src, double degrees, TlcImage *dst) {
  int32_t w = src->width, h = src->height, ch = src->channels;
  *dst = (TlcImage){w, h, ch, dst->pixels};
  int64_t q[6];
  double m[6];
  if (!transform_rotation(w, h, degrees, q, m)) {
    rotate_float(src, dst, m);
    return;
  }
  for (int32_t y = 0; y < h; y++)
    for (int32_t x = 0; x < w; x++)
      put_or_zero(src, floor16(q[0] + q[1] * x + q[2] * y), floor16(q[3] + q[4] * x + q[5] * y),
                  dst->pixels + ((size_t)y * w + x) * ch);
}
