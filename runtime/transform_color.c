// transform_color.c: colour jitter's four adjustments, as torchvision 0.14 applies them to a
// PIL image.
//
// Contract: brightness, contrast and saturation are Pillow's ImageEnhance blends,
// out = degenerate + factor * (pixel - degenerate) in float, truncated and clamped to 0..255
// (Image.blend), with degenerate black (brightness), the rounded mean of the grayscale image
// (contrast) or the pixel's own gray level (saturation). Gray levels are Pillow's
// convert("L"): (19595 R + 38470 G + 7471 B + 2^15) >> 16. Hue converts to Pillow's 8-bit HSV,
// adds int(shift * 255) modulo 256 to H (torchvision's uint8 addition) and converts back. The
// float and double steps of Pillow's conversions are kept as Pillow writes them, so results
// are equal to its. Gray images: saturation and hue leave them as they are, as Pillow does.
#include "transform_internal.h"

#include <math.h>

static uint8_t gray_level(const uint8_t *rgb) {
  return (uint8_t)((rgb[0] * 19595u + rgb[1] * 38470u + rgb[2] * 7471u + 0x8000u) >> 16);
}

// Image.blend(degenerate, image, factor) for one byte.
static uint8_t blend(uint8_t degenerate, uint8_t value, float factor) {
  float t = (float)degenerate + factor * (float)((int)value - (int)degenerate);
  if (t <= 0.0f)
    return 0;
  if (t >= 255.0f)
    return 255;
  return (uint8_t)t;
}

static size_t image_bytes(const TlcImage *img) {
  return (size_t)img->width * img->height * img->channels;
}

void tlc_image_brightness(TlcImage *img, float factor) {
  size_t n = image_bytes(img);
  for (size_t i = 0; i < n; i++)
    img->pixels[i] = blend(0, img->pixels[i], factor);
}

void tlc_image_contrast(TlcImage *img, float factor) {
  size_t npix = (size_t)img->width * img->height, c = (size_t)img->channels;
  uint64_t sum = 0;
  for (size_t i = 0; i < npix; i++)
    sum += c == 3 ? gray_level(img->pixels + i * 3) : img->pixels[i];
  // ImageStat's mean is a Python float; ImageEnhance.Contrast rounds it with int(mean + 0.5).
  uint8_t mean = npix == 0 ? 0 : (uint8_t)((double)sum / (double)npix + 0.5);
  size_t n = image_bytes(img);
  for (size_t i = 0; i < n; i++)
    img->pixels[i] = blend(mean, img->pixels[i], factor);
}

void tlc_image_saturation(TlcImage *img, float factor) {
  if (img->channels != 3)
    return;
  size_t npix = (size_t)img->width * img->height;
  for (size_t i = 0; i < npix; i++) {
    uint8_t *p = img->pixels + i * 3;
    uint8_t gray = gray_level(p);
    for (int k = 0; k < 3; k++)
      p[k] = blend(gray, p[k], factor);
  }
}

static int clip8(int v) { return v <= 0 ? 0 : v < 256 ? v : 255; }

// Pillow's rgb2hsv_row (Convert.c): float steps, double constants, truncation to 8 bits.
void transform_rgb_to_hsv(const uint8_t *rgb, uint8_t *hsv) {
  uint8_t r = rgb[0], g = rgb[1], b = rgb[2];
  uint8_t maxc = r > g ? (r > b ? r : b) : (g > b ? g : b);
  uint8_t minc = r < g ? (r < b ? r : b) : (g < b ? g : b);
  hsv[2] = maxc;
  if (minc == maxc) {
    hsv[0] = hsv[1] = 0;
    return;
  }
  float cr = (float)(maxc - minc);
  float s = cr / (float)maxc;
  float rc = (float)(maxc - r) / cr, gc = (float)(maxc - g) / cr, bc = (float)(maxc - b) / cr;
  float h;
  if (r == maxc)
    h = bc - gc;
  else if (g == maxc)
    h = (float)(2.0 + rc - bc);
  else
    h = (float)(4.0 + gc - rc);
  h = (float)fmod(h / 6.0 + 1.0, 1.0);
  hsv[0] = (uint8_t)clip8((int)(h * 255.0));
  hsv[1] = (uint8_t)clip8((int)(s * 255.0));
}

// Pillow's hsv2rgb (Convert.c), following Python's colorsys with 8-bit rounding.
void transform_hsv_to_rgb(const uint8_t *hsv, uint8_t *rgb) {
  uint8_t h = hsv[0], s = hsv[1], v = hsv[2];
  if (s == 0) {
    rgb[0] = rgb[1] = rgb[2] = v;
    return;
  }
  int i = (int)floor((float)h * 6.0 / 255.0);
  float f = (float)((float)h * 6.0 / 255.0 - (float)i);
  float fs = (float)((float)s / 255.0);
  uint8_t p = (uint8_t)clip8((int)round((float)v * (1.0 - fs)));
  uint8_t q = (uint8_t)clip8((int)round((float)v * (1.0 - fs * f)));
  uint8_t t = (uint8_t)clip8((int)round((float)v * (1.0 - fs * (1.0 - f))));
  switch (i % 6) {
  case 0: rgb[0] = v, rgb[1] = t, rgb[2] = p; break;
  case 1: rgb[0] = q, rgb[1] = v, rgb[2] = p; break;
  case 2: rgb[0] = p, rgb[1] = v, rgb[2] = t; break;
  case 3: rgb[0] = p, rgb[1] = q, rgb[2] = v; break;
  case 4: rgb[0] = t, rgb[1] = p, rgb[2] = v; break;
  default: rgb[0] = v, rgb[1] = p, rgb[2] = q; break;
  }
}

void tlc_image_hue(TlcImage *img, float shift) {
  if (img->channels != 3)
    return;
  // numpy's uint8(hue * 255): truncation toward zero, then modulo 256.
  uint8_t step = (uint8_t)(int)((double)shift * 255.0);
  size_t npix = (size_t)img->width * img->height;
  for (size_t i = 0; i < npix; i++) {
    uint8_t hsv[3];
    transform_rgb_to_hsv(img->pixels + i * 3, hsv);
    hsv[0] = (uint8_t)(hsv[0] + step);
    transform_hsv_to_rgb(hsv, img->pixels + i * 3);
  }
}
