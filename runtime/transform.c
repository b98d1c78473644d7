// transform.c: image transforms (the loaders' minimal stand-in).
//
// Contract: tlcrt.h, section "transform.c". This version exists so that the loaders and the
// trainer can be integrated and tested end to end before the transforms engineer's version
// lands (it replaces this file and its header section whole). It has resize (plain bilinear,
// no antialiasing: not PIL's numbers), center_crop, random_crop, hflip, vflip,
// grayscale_to_rgb and normalize; the other kinds fail with "not available yet".
#include "tlcrt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const TF_NAMES[] = {
    [TLC_TF_RESIZE] = "resize", [TLC_TF_CENTER_CROP] = "center_crop", [TLC_TF_RANDOM_CROP] = "random_crop",
    [TLC_TF_RANDOM_RESIZED_CROP] = "random_resized_crop", [TLC_TF_HFLIP] = "hflip", [TLC_TF_VFLIP] = "vflip",
    [TLC_TF_ROTATE] = "rotate", [TLC_TF_COLOR_JITTER] = "color_jitter",
    [TLC_TF_GRAYSCALE_TO_RGB] = "grayscale_to_rgb", [TLC_TF_NORMALIZE] = "normalize",
};

void tlc_transform_scratch_free(TlcTransformScratch *s) {
  free(s->a.pixels);
  free(s->b.pixels);
  memset(s, 0, sizeof *s);
}

// Makes img a w x h x c image whose buffer holds at least that many bytes.
static int image_reserve(TlcImage *img, size_t *cap, int w, int h, int c, TlcError *err) {
  size_t need = (size_t)w * (size_t)h * (size_t)c;
  if (need > *cap) {
    uint8_t *p = realloc(img->pixels, need);
    if (!p)
      return tlc_fail(err, "out of memory for a %dx%dx%d image", w, h, c);
    img->pixels = p;
    *cap = need;
  }
  img->width = w, img->height = h, img->channels = c;
  return 0;
}

// Copies the size x size window at (left, top) of src into dst; outside src is zero.
static void crop_into(const TlcImage *src, TlcImage *dst, int left, int top, int size) {
  int c = src->channels;
  for (int y = 0; y < size; y++)
    for (int x = 0; x < size; x++) {
      int sy = top + y, sx = left + x;
      bool inside = sy >= 0 && sy < src->height && sx >= 0 && sx < src->width;
      for (int k = 0; k < c; k++)
        dst->pixels[((size_t)y * size + x) * c + k] = inside ? src->pixels[((size_t)sy * src->width + sx) * c + k] : 0;
    }
}

// Bilinear with pixel centres aligned (half-pixel offsets), edges clamped. The columns'
// sources and weights are the same on every row: computed once.
static int resize_into(const TlcImage *src, TlcImage *dst, TlcError *err) {
  int c = src->channels, w = src->width;
  int *x0 = malloc((size_t)dst->width * 2 * sizeof *x0);
  float *wx = malloc((size_t)dst->width * sizeof *wx);
  if (!x0 || !wx) {
    free(x0), free(wx);
    return tlc_fail(err, "out of memory resizing to %dx%d", dst->width, dst->height);
  }
  int *x1 = x0 + dst->width;
  float sx = (float)src->width / (float)dst->width, sy = (float)src->height / (float)dst->height;
  for (int x = 0; x < dst->width; x++) {
    float fx = fmaxf(((float)x + 0.5f) * sx - 0.5f, 0);
    x0[x] = (int)fx;
    x1[x] = x0[x] + 1 < w ? x0[x] + 1 : x0[x];
    wx[x] = fx - (float)x0[x];
  }
  for (int y = 0; y < dst->height; y++) {
    float fy = fmaxf(((float)y + 0.5f) * sy - 0.5f, 0);
    int y0 = (int)fy, y1 = y0 + 1 < src->height ? y0 + 1 : y0;
    float wy = fy - (float)y0;
    const uint8_t *r0 = src->pixels + (size_t)y0 * w * c, *r1 = src->pixels + (size_t)y1 * w * c;
    uint8_t *out = dst->pixels + (size_t)y * dst->width * c;
    for (int x = 0; x < dst->width; x++)
      for (int k = 0; k < c; k++) {
        float top = r0[x0[x] * c + k] * (1 - wx[x]) + r0[x1[x] * c + k] * wx[x];
        float bot = r1[x0[x] * c + k] * (1 - wx[x]) + r1[x1[x] * c + k] * wx[x];
        float v = top * (1 - wy) + bot * wy + 0.5f;
        out[x * c + k] = (uint8_t)(v > 255 ? 255 : v);
      }
  }
  free(x0), free(wx);
  return 0;
}

static void flip_into(const TlcImage *src, TlcImage *dst, bool horizontal) {
  int c = src->channels, w = src->width, h = src->height;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      int sx = horizontal ? w - 1 - x : x, sy = horizontal ? y : h - 1 - y;
      memcpy(dst->pixels + ((size_t)y * w + x) * c, src->pixels + ((size_t)sy * w + sx) * c, (size_t)c);
    }
}

static void gray_to_rgb_into(const TlcImage *src, TlcImage *dst) {
  size_t n = (size_t)src->width * src->height;
  for (size_t i = 0; i < n; i++)
    dst->pixels[3 * i] = dst->pixels[3 * i + 1] = dst->pixels[3 * i + 2] = src->pixels[i];
}

// One geometric or colour step from cur into next (the scratch image that cur is not).
// Returns 0, 1 when the step left cur as it is, or -1 with err.
static int step(const TlcTransform *t, const TlcImage *cur, TlcImage *next, size_t *cap, TlcRng *rng, TlcError *err) {
  int w = cur->width, h = cur->height, c = cur->channels;
  const char *name = TF_NAMES[t->kind];
  switch (t->kind) {
  case TLC_TF_RESIZE: {
    bool wide = w >= h;
    int64_t long_side = ((int64_t)t->size * (wide ? w : h)) / (wide ? h : w);
    int nw = wide ? (int)long_side : t->size, nh = wide ? t->size : (int)long_side;
    if (image_reserve(next, cap, nw, nh, c, err) || resize_into(cur, next, err))
      return -1;
    return 0;
  }
  case TLC_TF_CENTER_CROP:
    if (w < t->size || h < t->size)
      return tlc_fail(err, "%s %d needs an image of at least %dx%d, this one is %dx%d", name, t->size, t->size,
                      t->size, w, h);
    if (image_reserve(next, cap, t->size, t->size, c, err))
      return -1;
    // torchvision rounds the offsets: round((h - size) / 2).
    crop_into(cur, next, (int)lround((w - t->size) / 2.0), (int)lround((h - t->size) / 2.0), t->size);
    return 0;
  case TLC_TF_RANDOM_CROP: {
    int pw = w + 2 * t->pad, ph = h + 2 * t->pad;
    if (pw < t->size || ph < t->size)
      return tlc_fail(err, "%s %d (pad %d) needs an image of at least %dx%d, this one is %dx%d", name, t->size, t->pad,
                      t->size - 2 * t->pad, t->size - 2 * t->pad, w, h);
    if (image_reserve(next, cap, t->size, t->size, c, err))
      return -1;
    // The top offset is drawn before the left one, as torchvision's RandomCrop does.
    int top = (int)tlc_rng_below(rng, (uint64_t)(ph - t->size + 1)) - t->pad;
    int left = (int)tlc_rng_below(rng, (uint64_t)(pw - t->size + 1)) - t->pad;
    crop_into(cur, next, left, top, t->size);
    return 0;
  }
  case TLC_TF_HFLIP:
  case TLC_TF_VFLIP:
    if (!(tlc_rng_uniform(rng) < t->p))
      return 1;
    if (image_reserve(next, cap, w, h, c, err))
      return -1;
    flip_into(cur, next, t->kind == TLC_TF_HFLIP);
    return 0;
  case TLC_TF_GRAYSCALE_TO_RGB:
    if (c != 1)
      return 1;
    if (image_reserve(next, cap, w, h, 3, err))
      return -1;
    gray_to_rgb_into(cur, next);
    return 0;
  case TLC_TF_NORMALIZE:
    return 1;  // applied while writing the floats
  default:
    return tlc_fail(err, "%s is not available yet in this runtime", (unsigned)t->kind < TLC_TF_NORMALIZE ? name : "?");
  }
}

int tlc_transform_run(const TlcTransform *tf, int n, const TlcImage *src, TlcRng *rng, TlcTransformScratch *scratch,
                      float *out, int channels, int height, int width, TlcError *err) {
  const TlcImage *cur = src;
  const TlcTransform *norm = NULL;
  for (int i = 0; i < n; i++) {
    if ((unsigned)tf[i].kind > TLC_TF_NORMALIZE)
      return tlc_fail(err, "unknown transform kind %d", (int)tf[i].kind);
    if (tf[i].kind == TLC_TF_NORMALIZE && i != n - 1)
      return tlc_fail(err, "normalize must be the last transform");
    norm = tf[i].kind == TLC_TF_NORMALIZE ? &tf[i] : NULL;
    bool into_a = cur != &scratch->a;
    int rc = step(&tf[i], cur, into_a ? &scratch->a : &scratch->b, into_a ? &scratch->cap_a : &scratch->cap_b, rng, err);
    if (rc < 0)
      return -1;
    if (rc == 0)
      cur = into_a ? &scratch->a : &scratch->b;
  }
  if (cur->channels != channels || cur->height != height || cur->width != width)
    return tlc_fail(err, "after the transforms the image is %dx%dx%d (CxHxW), but the model takes %dx%dx%d",
                    cur->channels, cur->height, cur->width, channels, height, width);
  size_t plane = (size_t)height * width;
  for (int c = 0; c < channels; c++) {
    // A table of the 256 possible values: the same float operations as per pixel, done once.
    float mean = norm ? norm->mean[c < 4 ? c : 3] : 0, std = norm ? norm->std[c < 4 ? c : 3] : 1, table[256];
    for (int v = 0; v < 256; v++)
      table[v] = ((float)v / 255.0f - mean) / std;
    const uint8_t *p = cur->pixels + c;
    float *o = out + c * plane;
    for (size_t k = 0; k < plane; k++)
      o[k] = table[p[k * channels]];
  }
  return 0;
}
