// transform.c: a data split's list of image transforms, run on one decoded image.
//
// Contract: tlc_transform_run checks the list, then for each transform draws its random
// choices (tlc_transform_draw, in torchvision's order of draws, from the caller's TlcRng only)
// and applies them (tlc_transform_apply), ping-ponging between the two scratch images; the
// final image must be exactly the model's channels x height x width, and is written as
// floats, CHW, scaled to [0, 1] and normalised as torchvision's ToTensor and Normalize compute
// them in float32. A transform that would not change the image (a flip not drawn, a resize to
// the same size, grayscale_to_rgb of RGB) copies nothing. Nothing here is shared between
// threads: each loader thread brings its own scratch and rng.
//
// The pixel work is in transform_resample.c (resize), transform_geometry.c (crops, flips,
// rotation) and transform_color.c (jitter).
#include "transform_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { TRANSFORM_MAX_SIDE = 1 << 15 };

const char *tlc_transform_name(TlcTransformKind kind) {
  switch (kind) {
  case TLC_TF_RESIZE: return "resize";
  case TLC_TF_CENTER_CROP: return "center_crop";
  case TLC_TF_RANDOM_CROP: return "random_crop";
  case TLC_TF_RANDOM_RESIZED_CROP: return "random_resized_crop";
  case TLC_TF_HFLIP: return "hflip";
  case TLC_TF_VFLIP: return "vflip";
  case TLC_TF_ROTATE: return "rotate";
  case TLC_TF_COLOR_JITTER: return "color_jitter";
  case TLC_TF_GRAYSCALE_TO_RGB: return "grayscale_to_rgb";
  case TLC_TF_NORMALIZE: return "normalize";
  }
  return "unknown transform";
}

static bool is_range(const float r[2]) { return isfinite(r[0]) && isfinite(r[1]) && r[0] > 0 && r[0] <= r[1]; }
static bool is_amount(float x) { return isfinite(x) && x >= 0; }
static bool is_side(int32_t x) { return x >= 1 && x <= TRANSFORM_MAX_SIDE; }

static int check_one(const TlcTransform *t, int i, int n, TlcError *err) {
  const char *name = tlc_transform_name(t->kind);
  switch (t->kind) {
  case TLC_TF_RESIZE:
    if (!t->size && (!is_side(t->height) || !is_side(t->width)))
      return tlc_fail(err, "transform %d (%s): size [%d, %d] is not in 1..%d", i + 1, name, t->height, t->width,
                      TRANSFORM_MAX_SIDE);
    if (!t->size)
      return 0;
    __attribute__((fallthrough));   // a shorter side, checked as the crops' sizes
  case TLC_TF_CENTER_CROP:
  case TLC_TF_RANDOM_CROP:
  case TLC_TF_RANDOM_RESIZED_CROP:
    if (!is_side(t->size))
      return tlc_fail(err, "transform %d (%s): size %d is not in 1..%d", i + 1, name, t->size, TRANSFORM_MAX_SIDE);
    if (t->kind == TLC_TF_RANDOM_CROP && (t->pad < 0 || t->pad > TRANSFORM_MAX_SIDE))
      return tlc_fail(err, "transform %d (%s): padding %d is not in 0..%d", i + 1, name, t->pad, TRANSFORM_MAX_SIDE);
    if (t->kind == TLC_TF_RANDOM_RESIZED_CROP && (!is_range(t->scale) || !is_range(t->ratio)))
      return tlc_fail(err, "transform %d (%s): scale [%g, %g] and ratio [%g, %g] must each be 0 < low <= high",
                      i + 1, name, t->scale[0], t->scale[1], t->ratio[0], t->ratio[1]);
    return 0;
  case TLC_TF_HFLIP:
  case TLC_TF_VFLIP:
    if (!(t->p >= 0 && t->p <= 1))
      return tlc_fail(err, "transform %d (%s): probability %g is not in [0, 1]", i + 1, name, t->p);
    return 0;
  case TLC_TF_ROTATE:
    if (!is_amount(t->degrees))
      return tlc_fail(err, "transform %d (%s): degrees %g must be finite and >= 0", i + 1, name, t->degrees);
    return 0;
  case TLC_TF_COLOR_JITTER:
    if (!is_amount(t->brightness) || !is_amount(t->contrast) || !is_amount(t->saturation) ||
        !(t->hue >= 0 && t->hue <= 0.5f))
      return tlc_fail(err, "transform %d (%s): brightness %g, contrast %g, saturation %g must be >= 0 and hue "
                      "%g in [0, 0.5]", i + 1, name, t->brightness, t->contrast, t->saturation, t->hue);
    return 0;
  case TLC_TF_GRAYSCALE_TO_RGB:
    return 0;
  case TLC_TF_NORMALIZE:
    if (i != n - 1)
      return tlc_fail(err, "transform %d (normalize) must be the last of the %d, since it turns pixels into "
                      "floats", i + 1, n);
    return 0;
  }
  return tlc_fail(err, "transform %d: unknown kind %d", i + 1, (int)t->kind);
}

int tlc_transform_check(const TlcTransform *tf, int n, TlcError *err) {
  if (n < 0 || (n > 0 && tf == NULL))
    return tlc_fail(err, "transforms: a list of %d transforms without entries", n);
  for (int i = 0; i < n; i++)
    if (check_one(&tf[i], i, n, err))
      return -1;
  return 0;
}

// Python's round(): half to even (nearbyint in the default rounding mode).
static int32_t round_even(double v) { return (int32_t)nearbyint(v); }

// torchvision's RandomResizedCrop.get_params: ten tries at an area fraction uniform in scale
// and a log-uniform aspect ratio, then the whole image with the ratio clamped, centred.
static void draw_resized_crop(const TlcTransform *t, int32_t width, int32_t height, TlcRng *rng,
                              TlcTransformDraw *d) {
  double area = (double)width * height;
  double log_lo = log(t->ratio[0]), log_hi = log(t->ratio[1]);
  for (int attempt = 0; attempt < 10; attempt++) {
    double target = area * (t->scale[0] + tlc_rng_uniform(rng) * ((double)t->scale[1] - t->scale[0]));
    double aspect = exp(log_lo + tlc_rng_uniform(rng) * (log_hi - log_lo));
    int32_t w = round_even(sqrt(target * aspect)), h = round_even(sqrt(target / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      d->top = (int32_t)tlc_rng_below(rng, (uint64_t)(height - h + 1));
      d->left = (int32_t)tlc_rng_below(rng, (uint64_t)(width - w + 1));
      d->height = h, d->width = w;
      return;
    }
  }
  double in_ratio = (double)width / height;
  int32_t w = width, h = height;
  if (in_ratio < t->ratio[0])
    h = round_even(w / (double)t->ratio[0]);
  else if (in_ratio > t->ratio[1])
    w = round_even(h * (double)t->ratio[1]);
  // A 1-pixel side with an extreme ratio rounds to 0, which torchvision would pass on as an
  // empty crop; one pixel keeps the image valid.
  h = h < 1 ? 1 : h, w = w < 1 ? 1 : w;
  d->top = (height - h) / 2, d->left = (width - w) / 2;
  d->height = h, d->width = w;
}

// torchvision's ColorJitter.get_params: a permutation, then a factor for each nonzero amount.
static void draw_jitter(const TlcTransform *t, TlcRng *rng, TlcTransformDraw *d) {
  for (int i = 0; i < 4; i++)
    d->order[i] = i;
  tlc_rng_shuffle(rng, d->order, 4);
  const float amount[3] = {t->brightness, t->contrast, t->saturation};
  for (int i = 0; i < 3; i++) {
    d->enabled[i] = amount[i] > 0;
    float lo = 1 - amount[i] > 0 ? 1 - amount[i] : 0, hi = 1 + amount[i];
    d->factor[i] = d->enabled[i] ? lo + tlc_rng_uniform(rng) * (hi - lo) : 1;
  }
  d->enabled[3] = t->hue > 0;
  d->factor[3] = d->enabled[3] ? -t->hue + tlc_rng_uniform(rng) * (2 * t->hue) : 0;
}

// CenterCrop's offset: int(round((side - crop) / 2.0)), half to even.
static int32_t centre_offset(int32_t side, int32_t crop) { return round_even((side - crop) / 2.0); }

int tlc_transform_draw(const TlcTransform *t, int32_t width, int32_t height, TlcRng *rng,
                       TlcTransformDraw *d, TlcError *err) {
  memset(d, 0, sizeof *d);
  d->width = width, d->height = height;
  const char *name = tlc_transform_name(t->kind);
  switch (t->kind) {
  case TLC_TF_CENTER_CROP:
    if (width < t->size || height < t->size)
      return tlc_fail(err, "%s: the image is %dx%d, smaller than the %dx%d crop", name, width, height,
                      t->size, t->size);
    d->top = centre_offset(height, t->size), d->left = centre_offset(width, t->size);
    d->width = d->height = t->size;
    return 0;
  case TLC_TF_RANDOM_CROP: {
    int64_t pw = (int64_t)width + 2 * t->pad, ph = (int64_t)height + 2 * t->pad;
    if (pw < t->size || ph < t->size)
      return tlc_fail(err, "%s: the image is %dx%d (%" PRId64 "x%" PRId64 " with padding %d), smaller than the "
                      "%dx%d crop", name, width, height, pw, ph, t->pad, t->size, t->size);
    // torchvision draws nothing when the crop is the whole (padded) image.
    if (pw != t->size || ph != t->size) {
      d->top = (int32_t)tlc_rng_below(rng, (uint64_t)(ph - t->size + 1));
      d->left = (int32_t)tlc_rng_below(rng, (uint64_t)(pw - t->size + 1));
    }
    d->width = d->height = t->size;
    return 0;
  }
  case TLC_TF_RANDOM_RESIZED_CROP:
    draw_resized_crop(t, width, height, rng, d);
    return 0;
  case TLC_TF_HFLIP:
  case TLC_TF_VFLIP:
    d->flip = tlc_rng_uniform(rng) < t->p;
    return 0;
  case TLC_TF_ROTATE:
    d->angle = -(double)t->degrees + tlc_rng_uniform(rng) * (2.0 * t->degrees);
    return 0;
  case TLC_TF_COLOR_JITTER:
    draw_jitter(t, rng, d);
    return 0;
  case TLC_TF_RESIZE:
  case TLC_TF_GRAYSCALE_TO_RGB:
  case TLC_TF_NORMALIZE:
    return 0;
  }
  return tlc_fail(err, "unknown transform kind %d", (int)t->kind);
}

// Resize's output: height x width when given, else the shorter side becomes size and the other
// int(size * long / short); a side beyond int32 (an extreme aspect ratio) saturates, and
// image_reserve refuses it.
void transform_resize_shape(const TlcTransform *t, int32_t width, int32_t height, int32_t *out_w, int32_t *out_h) {
  if (!t->size) {
    *out_w = t->width, *out_h = t->height;
    return;
  }
  int32_t size = t->size;
  double longer = (double)size * (width <= height ? height : width) / (width <= height ? width : height);
  int32_t other = longer >= INT32_MAX ? INT32_MAX : (int32_t)longer;
  *out_w = width <= height ? size : other;
  *out_h = width <= height ? other : size;
}

int64_t tlc_transform_largest_bytes(const TlcTransform *tf, int n, int32_t width, int32_t height, int32_t channels) {
  int64_t largest = 0;
  for (int i = 0; i < n && tf[i].kind != TLC_TF_NORMALIZE; i++) {
    const TlcTransform *t = &tf[i];
    if (t->kind == TLC_TF_RESIZE)
      transform_resize_shape(t, width, height, &width, &height);
    else if (t->kind == TLC_TF_CENTER_CROP || t->kind == TLC_TF_RANDOM_CROP || t->kind == TLC_TF_RANDOM_RESIZED_CROP)
      width = height = t->size;
    else if (t->kind == TLC_TF_GRAYSCALE_TO_RGB)
      channels = 3;
    if (width > TRANSFORM_MAX_SIDE || height > TRANSFORM_MAX_SIDE)
      break;   // refused before anything is allocated for it
    int64_t bytes = (int64_t)width * height * channels;
    largest = bytes > largest ? bytes : largest;
  }
  return largest;
}

// Gives img room for width x height x channels bytes; its size fields are set.
static int image_reserve(TlcImage *img, size_t *cap, int32_t width, int32_t height, int32_t channels,
                         TlcError *err) {
  if (width < 1 || height < 1 || width > TRANSFORM_MAX_SIDE || height > TRANSFORM_MAX_SIDE)
    return tlc_fail(err, "transforms: an intermediate image of %dx%d is out of range (1..%d a side)", width,
                    height, TRANSFORM_MAX_SIDE);
  size_t bytes = (size_t)width * height * channels;
  if (bytes > *cap || img->pixels == NULL) {
    uint8_t *grown = realloc(img->pixels, bytes);
    if (grown == NULL)
      return tlc_fail(err, "transforms: out of memory for a %dx%dx%d image", width, height, channels);
    img->pixels = grown;
    *cap = bytes;
  }
  img->width = width, img->height = height, img->channels = channels;
  return 0;
}

static void jitter(const TlcTransformDraw *d, TlcImage *img) {
  for (int i = 0; i < 4; i++) {
    int which = d->order[i];
    if (which < 0 || which > 3 || !d->enabled[which])
      continue;
    float f = d->factor[which];
    if (which == 0)
      tlc_image_brightness(img, f);
    else if (which == 1)
      tlc_image_contrast(img, f);
    else if (which == 2)
      tlc_image_saturation(img, f);
    else
      tlc_image_hue(img, f);
  }
}

static void gray_to_rgb(const TlcImage *src, TlcImage *dst) {
  size_t npix = (size_t)src->width * src->height;
  for (size_t i = 0; i < npix; i++)
    dst->pixels[3 * i] = dst->pixels[3 * i + 1] = dst->pixels[3 * i + 2] = src->pixels[i];
}

// The crop box d describes, checked against src (padding allowed only for RANDOM_CROP).
static int check_box(const TlcTransform *t, const TlcTransformDraw *d, const TlcImage *src, TlcError *err) {
  int32_t pad = t->kind == TLC_TF_RANDOM_CROP ? t->pad : 0;
  if (d->width < 1 || d->height < 1 || d->top < 0 || d->left < 0 ||
      (int64_t)d->top + d->height > (int64_t)src->height + 2 * pad ||
      (int64_t)d->left + d->width > (int64_t)src->width + 2 * pad)
    return tlc_fail(err, "%s: the box %dx%d at (%d, %d) does not fit the %dx%d image (padding %d)",
                    tlc_transform_name(t->kind), d->width, d->height, d->left, d->top, src->width, src->height,
                    pad);
  return 0;
}

int tlc_transform_apply(const TlcTransform *t, const TlcTransformDraw *d, const TlcImage *src, TlcImage *dst,
                        size_t *dst_cap, TlcError *err) {
  int32_t w = src->width, h = src->height, c = src->channels;
  switch (t->kind) {
  case TLC_TF_RESIZE: {
    int32_t ow, oh;
    transform_resize_shape(t, w, h, &ow, &oh);
    if (image_reserve(dst, dst_cap, ow, oh, c, err))
      return -1;
    return tlc_image_resize(src, dst, err);
  }
  case TLC_TF_CENTER_CROP:
  case TLC_TF_RANDOM_CROP: {
    if (check_box(t, d, src, err) || image_reserve(dst, dst_cap, d->width, d->height, c, err))
      return -1;
    int32_t pad = t->kind == TLC_TF_RANDOM_CROP ? t->pad : 0;
    transform_crop(src, d->top - pad, d->left - pad, dst);
    return 0;
  }
  case TLC_TF_RANDOM_RESIZED_CROP: {
    if (check_box(t, d, src, err) || image_reserve(dst, dst_cap, t->size, t->size, c, err))
      return -1;
    TlcImage box = {d->width, d->height, c, src->pixels + ((size_t)d->top * w + d->left) * c};
    return transform_resize_view(&box, (size_t)w * c, dst, err);
  }
  case TLC_TF_HFLIP:
  case TLC_TF_VFLIP:
  case TLC_TF_ROTATE:
  case TLC_TF_COLOR_JITTER:
    if (image_reserve(dst, dst_cap, w, h, c, err))
      return -1;
    if (t->kind == TLC_TF_ROTATE) {
      tlc_image_rotate(src, d->angle, dst);
    } else if (d->flip && t->kind == TLC_TF_HFLIP) {
      transform_hflip(src, dst);
    } else if (d->flip && t->kind == TLC_TF_VFLIP) {
      transform_vflip(src, dst);
    } else {
      memcpy(dst->pixels, src->pixels, (size_t)w * h * c);
      if (t->kind == TLC_TF_COLOR_JITTER)
        jitter(d, dst);
    }
    return 0;
  case TLC_TF_GRAYSCALE_TO_RGB:
    if (image_reserve(dst, dst_cap, w, h, 3, err))
      return -1;
    if (c == 1)
      gray_to_rgb(src, dst);
    else
      memcpy(dst->pixels, src->pixels, (size_t)w * h * c);
    return 0;
  case TLC_TF_NORMALIZE:
    return tlc_fail(err, "normalize is not an image operation: it is applied when tlc_transform_run writes floats");
  }
  return tlc_fail(err, "unknown transform kind %d", (int)t->kind);
}

// True when t with choices d would return the image unchanged, so no copy is needed.
static bool leaves_unchanged(const TlcTransform *t, const TlcTransformDraw *d, const TlcImage *img) {
  switch (t->kind) {
  case TLC_TF_HFLIP:
  case TLC_TF_VFLIP:
    return !d->flip;
  case TLC_TF_GRAYSCALE_TO_RGB:
    return img->channels == 3;
  case TLC_TF_RESIZE: {
    int32_t ow, oh;
    transform_resize_shape(t, img->width, img->height, &ow, &oh);
    return ow == img->width && oh == img->height;
  }
  case TLC_TF_COLOR_JITTER:
    return !d->enabled[0] && !d->enabled[1] && !d->enabled[2] && !d->enabled[3];
  default:
    return false;
  }
}

static int check_image(const TlcImage *img, TlcError *err) {
  if (img == NULL || img->pixels == NULL || img->width < 1 || img->height < 1 ||
      img->width > TRANSFORM_MAX_SIDE || img->height > TRANSFORM_MAX_SIDE ||
      (img->channels != 1 && img->channels != 3))
    return tlc_fail(err, "transforms: the input image (%dx%d, %d channels) is not a 1- or 3-channel image of "
                    "1..%d pixels a side", img ? img->width : 0, img ? img->height : 0,
                    img ? img->channels : 0, TRANSFORM_MAX_SIDE);
  return 0;
}

int tlc_transform_table(const TlcTransform *tf, int n, int32_t channels, float table[][256], TlcError *err) {
  const TlcTransform *norm = n > 0 && tf[n - 1].kind == TLC_TF_NORMALIZE ? &tf[n - 1] : NULL;
  for (int32_t k = 0; k < channels; k++) {
    if (norm != NULL && !(norm->std[k] > 0 && isfinite(norm->std[k]) && isfinite(norm->mean[k])))
      return tlc_fail(err, "normalize: channel %d has mean %g and std %g; std must be finite and > 0", k,
                      norm->mean[k], norm->std[k]);
    for (int v = 0; v < 256; v++) {
      float x = (float)v / 255.0f;
      table[k][v] = norm != NULL ? (x - norm->mean[k]) / norm->std[k] : x;
    }
  }
  return 0;
}

// Writes img as CHW floats through tf's table.
static int write_floats(const TlcImage *img, const TlcTransform *tf, int n, float *out, TlcError *err) {
  float table[3][256];
  int32_t c = img->channels;
  if (tlc_transform_table(tf, n, c, table, err))
    return -1;
  size_t plane = (size_t)img->width * img->height;
  for (int32_t k = 0; k < c; k++)
    for (size_t i = 0; i < plane; i++)
      out[(size_t)k * plane + i] = table[k][img->pixels[i * c + k]];
  return 0;
}

int tlc_transform_run(const TlcTransform *tf, int n, const TlcImage *src, TlcRng *rng,
                      TlcTransformScratch *scratch, float *out, int channels, int height, int width,
                      TlcError *err) {
  if (tlc_transform_check(tf, n, err) || check_image(src, err))
    return -1;
  const TlcTransform *norm = n > 0 && tf[n - 1].kind == TLC_TF_NORMALIZE ? &tf[n - 1] : NULL;
  int nimage = norm != NULL ? n - 1 : n;
  const TlcImage *cur = src;
  for (int i = 0; i < nimage; i++) {
    TlcTransformDraw d;
    if (tlc_transform_draw(&tf[i], cur->width, cur->height, rng, &d, err))
      return -1;
    if (leaves_unchanged(&tf[i], &d, cur))
      continue;
    bool into_a = cur != &scratch->a;
    TlcImage *next = into_a ? &scratch->a : &scratch->b;
    if (tlc_transform_apply(&tf[i], &d, cur, next, into_a ? &scratch->cap_a : &scratch->cap_b, err))
      return -1;
    cur = next;
  }
  if (cur->channels != channels || cur->height != height || cur->width != width)
    return tlc_fail(err, "transforms: a %dx%d image with %d channel%s becomes %dx%dx%d (CxHxW) after its "
                    "transforms, but the model takes %dx%dx%d", src->width, src->height, src->channels,
                    src->channels == 1 ? "" : "s", cur->channels, cur->height, cur->width, channels, height,
                    width);
  return write_floats(cur, tf, n, out, err);
}

void tlc_transform_scratch_free(TlcTransformScratch *s) {
  free(s->a.pixels);
  free(s->b.pixels);
  *s = (TlcTransformScratch){0};
}
