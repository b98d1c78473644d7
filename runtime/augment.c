// augment.c: a split's transforms, for one sample, reduced to what the GPU's augment kernel
// (codegen/kernels_augment.c) takes: the region of the decoded image a resize reads, the
// resize's output size and filter taps, and the integer map from the batch's pixels to the
// resized image that the crops and flips after it compose into.
//
// Contract: tlc_augment_plan draws exactly what tlc_transform_run draws for the same image and
// rng (tlc_transform_draw, same order, same sizes), so a sample's choices are the same on both
// paths, and fails where it fails. The kernel then computes the CPU's pixels: crops before the
// resize narrow the region it reads (the CPU crops, then resizes the crop); the resize is
// Pillow's two passes with the CPU's own taps (transform_taps); a crop after it is an offset
// (its padding: positions outside the image read zero), a flip a reflection, and both are
// exact on integers. A chain with no resize is a resize to the same size, whose taps copy each
// pixel. Colour jitter, after all of them, draws its order and factors here and runs in
// kernels of its own (codegen/kernels_jitter.c). A rotation (Pillow's nearest-neighbour map in
// 16.16 fixed point, with the CPU's own coefficients from transform_rotation) sits between two
// such maps. What the kernel cannot do (a second resize, rotation or jitter, a flip, padded
// crop or rotation before the resize, a geometric transform or grayscale_to_rgb after the
// jitter) is refused by tlc_augment_unsupported, once, and the split keeps the CPU path.
#include "transform_internal.h"

#include <stdio.h>
#include <stdlib.h>

static bool is_resize(TlcTransformKind kind) { return kind == TLC_TF_RESIZE || kind == TLC_TF_RANDOM_RESIZED_CROP; }

// The one resize of tf (or -1); *twice when there are more.
static int find_resize(const TlcTransform *tf, int n, bool *twice) {
  int at = -1;
  *twice = false;
  for (int i = 0; i < n; i++)
    if (is_resize(tf[i].kind)) {
      *twice |= at >= 0;
      at = at < 0 ? i : at;
    }
  return at;
}

const char *tlc_augment_unsupported(const TlcTransform *tf, int n, char *why, size_t len) {
  bool twice;
  int resize = find_resize(tf, n, &twice), rotations = 0, jitter = -1;
  if (twice) {
    snprintf(why, len, "more than one resize");
    return why;
  }
  for (int i = 0; i < n; i++) {
    const char *name = tlc_transform_name(tf[i].kind);
    bool before = i < resize;
    rotations += tf[i].kind == TLC_TF_ROTATE;
    if (rotations > 1)
      snprintf(why, len, "more than one rotate");
    else if (jitter >= 0 && tf[i].kind != TLC_TF_NORMALIZE)
      snprintf(why, len, "%s after color_jitter", name);
    else if (before && (tf[i].kind == TLC_TF_HFLIP || tf[i].kind == TLC_TF_VFLIP || tf[i].kind == TLC_TF_ROTATE))
      snprintf(why, len, "%s before %s", name, tlc_transform_name(tf[resize].kind));
    else if (before && tf[i].kind == TLC_TF_RANDOM_CROP && tf[i].pad > 0)
      snprintf(why, len, "a padded random_crop before %s", tlc_transform_name(tf[resize].kind));
    else if (before && tf[i].kind == TLC_TF_COLOR_JITTER)
      snprintf(why, len, "color_jitter before %s", tlc_transform_name(tf[resize].kind));
    else {
      jitter = tf[i].kind == TLC_TF_COLOR_JITTER ? i : jitter;
      continue;
    }
    return why;
  }
  return NULL;
}

static const TlcAugmentMap IDENTITY = {0, 1, 0, 1};

// The rotation drawn for the current w x h; the crops and flips after it start a new map.
static int rotate(const TlcTransformDraw *d, int32_t w, int32_t h, TlcAugmentPlan *p, bool *rotated, TlcError *err) {
  double m[6];
  if (!transform_rotation(w, h, d->angle, p->rotate, m))
    return tlc_fail(err, "rotate: a %dx%d image is too large for the GPU's data path (16.16 fixed point); "
                    "--no-gpu-data rotates it on the CPU", w, h);
  p->rotated_width = w, p->rotated_height = h;
  *rotated = true;
  return 0;
}

// A crop, flip or rotation after the resize, drawn for the current w x h and composed into
// the map (`before` until the rotation, then `after`).
static int compose(const TlcTransform *t, TlcRng *rng, int32_t *w, int32_t *h, TlcAugmentPlan *p, bool *rotated,
                   TlcError *err) {
  TlcTransformDraw d;
  if (tlc_transform_draw(t, *w, *h, rng, &d, err))
    return -1;
  TlcAugmentMap *map = *rotated ? &p->after : &p->before;
  switch (t->kind) {
  case TLC_TF_CENTER_CROP:
  case TLC_TF_RANDOM_CROP: {
    int32_t pad = t->kind == TLC_TF_RANDOM_CROP ? t->pad : 0;
    map->ax += map->sx * (d.left - pad), map->ay += map->sy * (d.top - pad);
    *w = d.width, *h = d.height;
    return 0;
  }
  case TLC_TF_HFLIP:
    if (d.flip)
      map->ax += map->sx * (*w - 1), map->sx = -map->sx;
    return 0;
  case TLC_TF_VFLIP:
    if (d.flip)
      map->ay += map->sy * (*h - 1), map->sy = -map->sy;
    return 0;
  case TLC_TF_ROTATE:
    return rotate(&d, *w, *h, p, rotated, err);
  case TLC_TF_COLOR_JITTER:
    for (int i = 0; i < 4; i++)
      p->jitter[i] = d.enabled[d.order[i]] ? d.order[i] : -1;
    for (int i = 0; i < 3; i++)
      p->factor[i] = d.factor[i];
    // numpy's uint8(hue * 255) as tlc_image_hue takes it: truncation, then modulo 256.
    p->hue_step = (uint8_t)(int)((double)d.factor[3] * 255.0);
    return 0;
  case TLC_TF_GRAYSCALE_TO_RGB:
    p->channels = 3;
    return 0;
  default:
    return tlc_fail(err, "internal error: %s after the resize on the GPU's data path", tlc_transform_name(t->kind));
  }
}

int tlc_augment_plan(const TlcTransform *tf, int n, const TlcImage *img, TlcRng *rng, TlcAugmentPlan *p,
                     TlcError *err) {
  bool twice;
  int resize = find_resize(tf, n, &twice);
  int nimage = n > 0 && tf[n - 1].kind == TLC_TF_NORMALIZE ? n - 1 : n;
  *p = (TlcAugmentPlan){.width = img->width, .height = img->height, .channels = img->channels, .before = IDENTITY,
                        .after = IDENTITY, .rotate = {0, 65536, 0, 0, 0, 65536}, .jitter = {-1, -1, -1, -1}};
  p->out_width = img->width, p->out_height = img->height;
  for (int i = 0; i < resize; i++) {   // crops and channel changes: the region the resize reads
    TlcTransformDraw d;
    if (tlc_transform_draw(&tf[i], p->width, p->height, rng, &d, err))
      return -1;
    if (tf[i].kind == TLC_TF_GRAYSCALE_TO_RGB)
      p->channels = 3;
    if (tf[i].kind != TLC_TF_CENTER_CROP && tf[i].kind != TLC_TF_RANDOM_CROP)
      continue;
    p->top += d.top, p->left += d.left, p->width = d.width, p->height = d.height;
  }
  if (resize >= 0) {
    const TlcTransform *t = &tf[resize];
    TlcTransformDraw d;
    if (tlc_transform_draw(t, p->width, p->height, rng, &d, err))
      return -1;
    if (t->kind == TLC_TF_RANDOM_RESIZED_CROP) {
      p->top += d.top, p->left += d.left, p->width = d.width, p->height = d.height;
      p->out_width = p->out_height = t->size;
    } else {
      transform_resize_shape(t, p->width, p->height, &p->out_width, &p->out_height);
    }
  } else {
    p->out_width = p->width, p->out_height = p->height;
  }
  int32_t w = p->out_width, h = p->out_height;
  bool rotated = false;
  for (int i = resize + 1; i < nimage; i++)
    if (compose(&tf[i], rng, &w, &h, p, &rotated, err))
      return -1;
  p->final_width = w, p->final_height = h;
  if (!rotated)   // the identity rotation of the final image
    p->rotated_width = w, p->rotated_height = h;
  return 0;
}

bool tlc_augment_jitters(const TlcTransform *tf, int n, bool *hue) {
  *hue = false;
  bool any = false;
  for (int i = 0; i < n; i++)
    if (tf[i].kind == TLC_TF_COLOR_JITTER)
      any = true, *hue |= tf[i].hue > 0;
  return any;
}

void tlc_augment_hsv_tables(uint8_t *hsv, uint8_t *rgb) {
  for (uint32_t i = 0; i < (1u << 24); i++) {
    uint8_t triple[3] = {(uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
    transform_rgb_to_hsv(triple, hsv + 3 * (size_t)i);
    transform_hsv_to_rgb(triple, rgb + 3 * (size_t)i);
  }
}

int64_t tlc_augment_taps_size(const TlcAugmentPlan *p) {
  return p->out_height * transform_taps_stride(p->height, p->out_height) +
         p->out_width * transform_taps_stride(p->width, p->out_width);
}

int tlc_augment_taps(const TlcAugmentPlan *p, int64_t *taps, int64_t *stride_y, int64_t *stride_x, TlcError *err) {
  *stride_y = transform_taps_stride(p->height, p->out_height);
  *stride_x = transform_taps_stride(p->width, p->out_width);
  if (transform_taps(p->height, p->out_height, p->top, taps) ||
      transform_taps(p->width, p->out_width, p->left, taps + p->out_height * *stride_y))
    return tlc_fail(err, "out of memory for the filter of a %dx%d -> %dx%d resize", p->width, p->height,
                    p->out_width, p->out_height);
  return 0;
}
