// transform_resample.c: resizing as Pillow's Image.resize(size, BILINEAR) does it, so that a
// trainer sees the pixels torchvision's Resize and RandomResizedCrop give a PyTorch run.
//
// Contract: tlc_image_resize writes dst (its width and height given) from src with Pillow's
// separable triangle filter: horizontal pass first, then vertical, each rounded to 8 bits.
// When shrinking, the filter's support grows with the scale factor (antialiasing), so every
// source pixel contributes. Weights are computed in double and used as 22-bit fixed point with
// Pillow's rounding, which makes the result equal to Pillow's bit for bit in our tests.
#include "transform_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { RESAMPLE_PRECISION_BITS = 32 - 8 - 2 };  // 8 bits of result, 2 of headroom, as Pillow

// The weights of one output position: source pixels [first, first + count).
typedef struct ResampleTaps {
  int32_t first, count;
  int32_t *weights;     // count fixed-point weights summing to about 1 << PRECISION_BITS
} ResampleTaps;

typedef struct ResampleAxis {
  ResampleTaps *taps;   // one per output position
  int32_t *storage;
} ResampleAxis;

static double triangle(double x) {
  x = fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

// Pillow's coefficients for in_size -> out_size over the whole input. Returns 0, or -1 when
// memory runs out.
static int resample_axis_init(ResampleAxis *axis, int32_t in_size, int32_t out_size) {
  double scale = (double)in_size / out_size;
  double filter_scale = scale < 1.0 ? 1.0 : scale;
  double support = filter_scale;  // the triangle's support is 1
  int32_t max_taps = (int32_t)ceil(support) * 2 + 1;
  axis->taps = malloc(sizeof *axis->taps * (size_t)out_size);
  axis->storage = malloc(sizeof *axis->storage * (size_t)out_size * (size_t)max_taps);
  double *w = malloc(sizeof *w * (size_t)max_taps);
  if (axis->taps == NULL || axis->storage == NULL || w == NULL) {
    free(axis->taps);
    free(axis->storage);
    free(w);
    return -1;
  }
  for (int32_t o = 0; o < out_size; o++) {
    double center = (o + 0.5) * scale;
    // Pillow rounds the window's ends by truncating x + 0.5; kept so edges match.
    int32_t lo = (int32_t)(center - support + 0.5);
    int32_t hi = (int32_t)(center + support + 0.5);
    if (lo < 0)
      lo = 0;
    if (hi > in_size)
      hi = in_size;
    double sum = 0.0;
    for (int32_t i = lo; i < hi; i++) {
      w[i - lo] = triangle((i - center + 0.5) / filter_scale);
      sum += w[i - lo];
    }
    ResampleTaps *t = &axis->taps[o];
    t->first = lo;
    t->count = hi - lo;
    t->weights = axis->storage + (size_t)o * (size_t)max_taps;
    for (int32_t i = 0; i < t->count; i++) {
      double normalised = sum != 0.0 ? w[i] / sum : w[i];
      // Round half away from zero, as Pillow's normalize_coeffs_8bpc.
      double fixed = normalised * (1 << RESAMPLE_PRECISION_BITS);
      t->weights[i] = (int32_t)(normalised < 0 ? fixed - 0.5 : fixed + 0.5);
    }
  }
  free(w);
  return 0;
}

static void resample_axis_free(ResampleAxis *axis) {
  free(axis->taps);
  free(axis->storage);
}

static uint8_t clip8(int32_t acc) {
  int32_t v = acc >> RESAMPLE_PRECISION_BITS;  // arithmetic shift: floor, as Pillow
  return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

// One pass along x: rows [row0, row0 + dst->height) of src (rows `stride` bytes apart) into dst.
static void resample_rows(const TlcImage *src, size_t stride, int32_t row0, const ResampleAxis *ax,
                          TlcImage *dst) {
  int32_t c = src->channels;
  for (int32_t y = 0; y < dst->height; y++) {
    const uint8_t *in = src->pixels + (size_t)(row0 + y) * stride;
    uint8_t *out = dst->pixels + (size_t)y * dst->width * c;
    for (int32_t x = 0; x < dst->width; x++) {
      const ResampleTaps *t = &ax->taps[x];
      for (int32_t k = 0; k < c; k++) {
        int32_t acc = 1 << (RESAMPLE_PRECISION_BITS - 1);
        const uint8_t *p = in + (size_t)t->first * c + k;
        for (int32_t i = 0; i < t->count; i++)
          acc += p[(size_t)i * c] * t->weights[i];
        out[(size_t)x * c + k] = clip8(acc);
      }
    }
  }
}

// One pass along y: rows of src (offset by row0, the first row the horizontal pass kept).
static void resample_columns(const TlcImage *src, int32_t row0, const ResampleAxis *ay, TlcImage *dst) {
  size_t stride = (size_t)src->width * src->channels;
  for (int32_t y = 0; y < dst->height; y++) {
    const ResampleTaps *t = &ay->taps[y];
    const uint8_t *in = src->pixels + (size_t)(t->first - row0) * stride;
    uint8_t *out = dst->pixels + (size_t)y * stride;
    for (size_t x = 0; x < stride; x++) {
      int32_t acc = 1 << (RESAMPLE_PRECISION_BITS - 1);
      for (int32_t i = 0; i < t->count; i++)
        acc += in[(size_t)i * stride + x] * t->weights[i];
      out[x] = clip8(acc);
    }
  }
}

int transform_resize_view(const TlcImage *src, size_t stride, TlcImage *dst, TlcError *err) {
  size_t row = (size_t)src->width * src->channels;
  dst->channels = src->channels;
  if (src->width == dst->width && src->height == dst->height) {
    for (int32_t y = 0; y < src->height; y++)
      memcpy(dst->pixels + (size_t)y * row, src->pixels + (size_t)y * stride, row);
    return 0;
  }
  ResampleAxis ax, ay;
  if (resample_axis_init(&ax, src->width, dst->width))
    return tlc_fail(err, "resize: out of memory for the filter of %dx%d -> %dx%d", src->width,
                    src->height, dst->width, dst->height);
  if (resample_axis_init(&ay, src->height, dst->height)) {
    resample_axis_free(&ax);
    return tlc_fail(err, "resize: out of memory for the filter of %dx%d -> %dx%d", src->width,
                    src->height, dst->width, dst->height);
  }
  // The horizontal pass covers only the rows the vertical pass reads, as Pillow's does.
  int32_t row0 = ay.taps[0].first;
  int32_t row_end = ay.taps[dst->height - 1].first + ay.taps[dst->height - 1].count;
  TlcImage mid = {dst->width, row_end - row0, src->channels, NULL};
  mid.pixels = malloc((size_t)mid.width * mid.height * mid.channels);
  bool have_mid = mid.pixels != NULL;
  if (have_mid) {
    resample_rows(src, stride, row0, &ax, &mid);
    resample_columns(&mid, row0, &ay, dst);
    free(mid.pixels);
  }
  resample_axis_free(&ax);
  resample_axis_free(&ay);
  if (!have_mid)
    return tlc_fail(err, "resize: out of memory for a %dx%d intermediate image", mid.width, mid.height);
  return 0;
}

int64_t transform_taps_stride(int32_t in_size, int32_t out_size) {
  double scale = (double)in_size / out_size;
  return 2 + (int64_t)ceil(scale < 1.0 ? 1.0 : scale) * 2 + 1;   // as resample_axis_init's max_taps
}

int transform_taps(int32_t in_size, int32_t out_size, int32_t offset, int64_t *dst) {
  ResampleAxis axis;
  if (resample_axis_init(&axis, in_size, out_size))
    return -1;
  int64_t stride = transform_taps_stride(in_size, out_size);
  for (int32_t o = 0; o < out_size; o++) {
    const ResampleTaps *t = &axis.taps[o];
    int64_t *entry = dst + (size_t)o * (size_t)stride;
    entry[0] = (int64_t)t->first + offset;
    entry[1] = t->count;
    for (int64_t i = 0; i < stride - 2; i++)
      entry[2 + i] = i < t->count ? t->weights[i] : 0;
  }
  resample_axis_free(&axis);
  return 0;
}

int tlc_image_resize(const TlcImage *src, TlcImage *dst, TlcError *err) {
  return transform_resize_view(src, (size_t)src->width * src->channels, dst, err);
}
