// test_transform.c: the image transforms' random choices have torchvision's distributions,
// the same seed gives the same output, values worked out by hand come out, and every bad
// input gets a message naming the transform and the sizes. (Pixel equality with
// torchvision/PIL is tests/transforms/compare_torchvision.py.)
#include "check.h"
#include "tlcrt.h"

#include <math.h>
#include <string.h>

enum { DRAWS = 20000 };

static TlcImage test_image(int32_t w, int32_t h, int32_t c, uint8_t *pixels) {
  for (int32_t i = 0; i < w * h * c; i++)
    pixels[i] = (uint8_t)(i * 37 + i / 7);
  return (TlcImage){w, h, c, pixels};
}

static void test_flip_rate(void) {
  TlcRng rng;
  tlc_rng_seed(&rng, 5);
  TlcTransform t = {.kind = TLC_TF_HFLIP, .p = 0.3f};
  TlcTransformDraw d;
  int flips = 0;
  for (int i = 0; i < DRAWS; i++) {
    CHECK(tlc_transform_draw(&t, 10, 10, &rng, &d, NULL) == 0);
    flips += d.flip;
  }
  CHECK(fabs(flips / (double)DRAWS - 0.3) < 0.015);  // 4.6 sigma
  t.p = 0;
  int never = 0;
  for (int i = 0; i < 1000; i++)
    never += tlc_transform_draw(&t, 10, 10, &rng, &d, NULL) == 0 && d.flip;
  CHECK(never == 0);
}

static void test_resized_crop_ranges(void) {
  TlcRng rng;
  tlc_rng_seed(&rng, 6);
  TlcTransform t = {.kind = TLC_TF_RANDOM_RESIZED_CROP, .size = 32, .scale = {0.08f, 1.0f},
                    .ratio = {3.0f / 4, 4.0f / 3}};
  const int32_t W = 300, H = 200;
  const double area = (double)W * H;
  int inside = 1, area_ok = 1, ratio_ok = 1, small = 0, large = 0, tall = 0, wide = 0;
  for (int i = 0; i < DRAWS; i++) {
    TlcTransformDraw d;
    CHECK(tlc_transform_draw(&t, W, H, &rng, &d, NULL) == 0);
    inside &= d.top >= 0 && d.left >= 0 && d.top + d.height <= H && d.left + d.width <= W && d.width > 0;
    // w and h are rounded: the unrounded area and ratio lie within half a pixel of them.
    double w = d.width, h = d.height;
    area_ok &= (w - 0.5) * (h - 0.5) <= 1.0 * area && (w + 0.5) * (h + 0.5) >= 0.08 * area;
    ratio_ok &= (w + 0.5) / (h - 0.5) >= 0.75 && (w - 0.5) / (h + 0.5) <= 4.0 / 3;
    small += w * h < 0.15 * area;
    large += w * h > 0.7 * area;
    tall += w / h < 0.8;
    wide += w / h > 1.25;
  }
  CHECK(inside);
  CHECK(area_ok);
  CHECK(ratio_ok);
  // Spread over the whole ranges, not stuck at one end (seed 6 gives 2311, 1342, 1631 and
  // 2820 of 20000; large crops are rarer because a ratio <= 4/3 caps them at 0.89 of 300x200).
  CHECK(small > DRAWS / 25 && large > DRAWS / 25 && tall > DRAWS / 25 && wide > DRAWS / 25);
}

static void test_resized_crop_fallback(void) {
  // No area in [1, 1] has a ratio in [2, 3] inside a 100x100 image: torchvision's fallback
  // clamps the ratio to 2 and centres the crop, by hand w = 100, h = round(100 / 2) = 50.
  TlcRng rng;
  tlc_rng_seed(&rng, 7);
  TlcTransform t = {.kind = TLC_TF_RANDOM_RESIZED_CROP, .size = 8, .scale = {1, 1}, .ratio = {2, 3}};
  TlcTransformDraw d;
  CHECK(tlc_transform_draw(&t, 100, 100, &rng, &d, NULL) == 0);
  CHECK(d.width == 100 && d.height == 50 && d.top == 25 && d.left == 0);
  // A 1x1 image: round(1 / 2) is 0 (half to even); the crop keeps one pixel.
  CHECK(tlc_transform_draw(&t, 1, 1, &rng, &d, NULL) == 0);
  CHECK(d.width == 1 && d.height == 1 && d.top == 0 && d.left == 0);
}

static void test_rotation_angles(void) {
  TlcRng rng;
  tlc_rng_seed(&rng, 8);
  TlcTransform t = {.kind = TLC_TF_ROTATE, .degrees = 30};
  double lo = 1e9, hi = -1e9, sum = 0, sum2 = 0;
  for (int i = 0; i < DRAWS; i++) {
    TlcTransformDraw d;
    CHECK(tlc_transform_draw(&t, 10, 10, &rng, &d, NULL) == 0);
    lo = fmin(lo, d.angle), hi = fmax(hi, d.angle);
    sum += d.angle, sum2 += d.angle * d.angle;
  }
  double mean = sum / DRAWS, sd = sqrt(sum2 / DRAWS - mean * mean);
  CHECK(lo >= -30 && hi <= 30);
  CHECK(lo < -29.5 && hi > 29.5);
  CHECK(fabs(mean) < 0.6);                       // sd of the mean is 0.12
  CHECK(fabs(sd - 30 / sqrt(3.0)) < 0.4);        // uniform on [-30, 30]
}

static void test_jitter_factors(void) {
  TlcRng rng;
  tlc_rng_seed(&rng, 9);
  TlcTransform t = {.kind = TLC_TF_COLOR_JITTER, .brightness = 0.4f, .contrast = 1.5f, .hue = 0.2f};
  float lo[4] = {9, 9, 9, 9}, hi[4] = {-9, -9, -9, -9};
  int first[4] = {0}, perm_ok = 1, enabled_ok = 1;
  for (int i = 0; i < DRAWS; i++) {
    TlcTransformDraw d;
    CHECK(tlc_transform_draw(&t, 10, 10, &rng, &d, NULL) == 0);
    int seen = 0;
    for (int k = 0; k < 4; k++) {
      seen |= 1 << d.order[k];
      lo[k] = fminf(lo[k], d.factor[k]), hi[k] = fmaxf(hi[k], d.factor[k]);
    }
    perm_ok &= seen == 15;
    first[d.order[0]]++;
    enabled_ok &= d.enabled[0] && d.enabled[1] && !d.enabled[2] && d.enabled[3];
  }
  CHECK(perm_ok && enabled_ok);
  CHECK(lo[0] >= 0.6f && hi[0] <= 1.4f && lo[0] < 0.61f && hi[0] > 1.39f);  // [1 - 0.4, 1 + 0.4]
  CHECK(lo[1] >= 0.0f && hi[1] <= 2.5f && lo[1] < 0.01f && hi[1] > 2.49f);  // [max(0, 1 - 1.5), 2.5]
  CHECK(lo[2] == 1.0f && hi[2] == 1.0f);                                    // saturation 0: not drawn
  CHECK(lo[3] >= -0.2f && hi[3] <= 0.2f && lo[3] < -0.19f && hi[3] > 0.19f);
  for (int k = 0; k < 4; k++)
    CHECK(fabs(first[k] / (double)DRAWS - 0.25) < 0.02);  // every order equally likely
}

static void test_random_crop_positions(void) {
  TlcRng rng;
  tlc_rng_seed(&rng, 10);
  TlcTransform t = {.kind = TLC_TF_RANDOM_CROP, .size = 28, .pad = 2};
  int counts[5] = {0}, in_range = 1;
  for (int i = 0; i < DRAWS; i++) {
    TlcTransformDraw d;
    CHECK(tlc_transform_draw(&t, 28, 28, &rng, &d, NULL) == 0);
    in_range &= d.top >= 0 && d.top <= 4 && d.left >= 0 && d.left <= 4;
    if (in_range)
      counts[d.left]++;
  }
  CHECK(in_range);
  for (int k = 0; k < 5; k++)
    CHECK(fabs(counts[k] / (double)DRAWS - 0.2) < 0.015);
}

// A training pipeline with every random transform.
static const TlcTransform augment[] = {
    {.kind = TLC_TF_GRAYSCALE_TO_RGB},
    {.kind = TLC_TF_RANDOM_RESIZED_CROP, .size = 24, .scale = {0.08f, 1}, .ratio = {0.75f, 4.0f / 3}},
    {.kind = TLC_TF_HFLIP, .p = 0.5f},
    {.kind = TLC_TF_ROTATE, .degrees = 20},
    {.kind = TLC_TF_COLOR_JITTER, .brightness = 0.3f, .contrast = 0.3f, .saturation = 0.3f, .hue = 0.1f},
    {.kind = TLC_TF_RANDOM_CROP, .size = 20, .pad = 2},
    {.kind = TLC_TF_VFLIP, .p = 0.5f},
    {.kind = TLC_TF_NORMALIZE, .mean = {0.485f, 0.456f, 0.406f}, .std = {0.229f, 0.224f, 0.225f}},
};
enum { NAUG = sizeof augment / sizeof augment[0], OUT = 3 * 20 * 20 };

static void run_seeded(uint64_t seed, const TlcImage *src, float *out) {
  TlcRng rng;
  tlc_rng_seed(&rng, seed);
  TlcTransformScratch scratch = {0};
  TlcError err;
  for (int i = 0; i < 3; i++)  // three images in a row: the scratch is reused
    CHECK(tlc_transform_run(augment, NAUG, src, &rng, &scratch, out + i * OUT, 3, 20, 20, &err) == 0);
  tlc_transform_scratch_free(&scratch);
  CHECK(scratch.a.pixels == NULL && scratch.cap_b == 0);
}

static void test_reproducible(void) {
  static uint8_t pixels[64 * 48 * 3], copy[sizeof pixels];
  static float a[3 * OUT], b[3 * OUT], c[3 * OUT];
  for (int channels = 1; channels <= 3; channels += 2) {
    TlcImage src = test_image(64, 48, channels, pixels);
    memcpy(copy, pixels, sizeof pixels);
    run_seeded(42, &src, a);
    run_seeded(42, &src, b);
    run_seeded(43, &src, c);
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(memcmp(a, c, sizeof a) != 0);
    CHECK(memcmp(a, a + OUT, OUT * sizeof *a) != 0);  // successive images draw differently
    CHECK(memcmp(copy, pixels, sizeof pixels) == 0);  // src is not modified
  }
}

static void test_hand_values(void) {
  TlcError err;
  TlcRng rng;
  tlc_rng_seed(&rng, 1);
  TlcTransformScratch scratch = {0};
  // Resize [0, 255] to one pixel: both taps weigh 1/2 (2^21 in 22-bit fixed point);
  // (2^21 + 255 * 2^21) >> 22 = 128, Pillow's rounding of 127.5.
  uint8_t two[2] = {0, 255}, one = 0;
  TlcImage src = {2, 1, 1, two}, dst = {1, 1, 1, &one};
  CHECK(tlc_image_resize(&src, &dst, &err) == 0 && one == 128);
  // CenterCrop's offsets round half to even as Python's round: (5 - 2) / 2 = 1.5 -> 2,
  // (7 - 2) / 2 = 2.5 -> 2.
  TlcTransform crop = {.kind = TLC_TF_CENTER_CROP, .size = 2};
  TlcTransformDraw d;
  CHECK(tlc_transform_draw(&crop, 5, 7, &rng, &d, &err) == 0 && d.left == 2 && d.top == 2);
  // Normalize: (255 / 255 - 0.5) / 0.25 = 2 and (51 / 255 - 0.5) / 0.25 = -1.2; without it 51 / 255.
  uint8_t px[2] = {255, 51};
  TlcImage img = {2, 1, 1, px};
  TlcTransform norm = {.kind = TLC_TF_NORMALIZE, .mean = {0.5f}, .std = {0.25f}};
  float out[6];
  CHECK(tlc_transform_run(&norm, 1, &img, &rng, &scratch, out, 1, 1, 2, &err) == 0);
  CHECK(out[0] == 2.0f && fabsf(out[1] + 1.2f) < 1e-6f);
  CHECK(tlc_transform_run(NULL, 0, &img, &rng, &scratch, out, 1, 1, 2, &err) == 0);
  CHECK(out[0] == 1.0f && out[1] == 51.0f / 255.0f);
  // grayscale_to_rgb: three equal planes, CHW.
  TlcTransform gray = {.kind = TLC_TF_GRAYSCALE_TO_RGB};
  CHECK(tlc_transform_run(&gray, 1, &img, &rng, &scratch, out, 3, 1, 2, &err) == 0);
  CHECK(out[0] == 1.0f && out[2] == 1.0f && out[4] == 1.0f && out[5] == out[1]);
  // Brightness 0.5 of 255: 127.5 truncated, as Image.blend; contrast 0 gives the rounded mean
  // of the gray levels, (255 + 51) / 2 = 153.
  uint8_t b[2] = {255, 51};
  TlcImage bi = {2, 1, 1, b};
  tlc_image_brightness(&bi, 0.5f);
  CHECK(b[0] == 127 && b[1] == 25);
  memcpy(b, px, 2);
  tlc_image_contrast(&bi, 0.0f);
  CHECK(b[0] == 153 && b[1] == 153);
  tlc_transform_scratch_free(&scratch);
}

static int has(const char *msg, const char *part) { return strstr(msg, part) != NULL; }

static void test_errors(void) {
  static uint8_t pixels[100 * 50 * 3];
  TlcImage src = test_image(100, 50, 3, pixels);
  TlcRng rng;
  tlc_rng_seed(&rng, 1);
  TlcTransformScratch scratch = {0};
  static float out[3 * 224 * 224];
  TlcError err;

  TlcTransform crop = {.kind = TLC_TF_CENTER_CROP, .size = 64};
  CHECK(tlc_transform_run(&crop, 1, &src, &rng, &scratch, out, 3, 64, 64, &err) != 0);
  CHECK(has(err.msg, "center_crop") && has(err.msg, "100x50") && has(err.msg, "64x64"));

  TlcTransform rcrop = {.kind = TLC_TF_RANDOM_CROP, .size = 60, .pad = 4};
  CHECK(tlc_transform_run(&rcrop, 1, &src, &rng, &scratch, out, 3, 60, 60, &err) != 0);
  CHECK(has(err.msg, "random_crop") && has(err.msg, "100x50") && has(err.msg, "108x58") &&
        has(err.msg, "60x60"));

  TlcTransform resize = {.kind = TLC_TF_RESIZE, .size = 32};  // 100x50 -> 64x32
  CHECK(tlc_transform_run(&resize, 1, &src, &rng, &scratch, out, 3, 32, 32, &err) != 0);
  CHECK(has(err.msg, "3x32x64") && has(err.msg, "3x32x32") && has(err.msg, "100x50"));
  CHECK(tlc_transform_run(&resize, 1, &src, &rng, &scratch, out, 1, 32, 64, &err) != 0);
  CHECK(has(err.msg, "3x32x64") && has(err.msg, "1x32x64"));
  CHECK(tlc_transform_run(&resize, 1, &src, &rng, &scratch, out, 3, 32, 64, &err) == 0);

  TlcTransform late[2] = {{.kind = TLC_TF_NORMALIZE, .mean = {0.5f}, .std = {0.5f}}, {.kind = TLC_TF_HFLIP}};
  CHECK(tlc_transform_run(late, 2, &src, &rng, &scratch, out, 3, 50, 100, &err) != 0);
  CHECK(has(err.msg, "normalize") && has(err.msg, "last"));
  CHECK(tlc_transform_check(late, 2, &err) != 0 && has(err.msg, "normalize"));

  TlcTransform zero_std = {.kind = TLC_TF_NORMALIZE, .mean = {0.5f, 0.5f, 0.5f}, .std = {0.5f, 0.5f}};
  CHECK(tlc_transform_run(&zero_std, 1, &src, &rng, &scratch, out, 3, 50, 100, &err) != 0);
  CHECK(has(err.msg, "channel 2") && has(err.msg, "std"));

  const TlcTransform bad[] = {
      {.kind = TLC_TF_HFLIP, .p = 1.5f},
      {.kind = TLC_TF_RANDOM_RESIZED_CROP, .size = 8, .scale = {0.5f, 0.1f}, .ratio = {1, 1}},
      {.kind = TLC_TF_COLOR_JITTER, .hue = 0.6f},
      {.kind = TLC_TF_ROTATE, .degrees = -3},
      {.kind = TLC_TF_RESIZE, .size = 0},
      {.kind = (TlcTransformKind)99},
  };
  const char *names[] = {"hflip", "random_resized_crop", "color_jitter", "rotate", "resize", "unknown"};
  for (int i = 0; i < (int)(sizeof bad / sizeof bad[0]); i++) {
    CHECK(tlc_transform_run(&bad[i], 1, &src, &rng, &scratch, out, 3, 8, 8, &err) != 0);
    CHECK(has(err.msg, names[i]));
  }

  TlcImage odd = {4, 4, 2, pixels};
  CHECK(tlc_transform_run(NULL, 0, &odd, &rng, &scratch, out, 2, 4, 4, &err) != 0);
  CHECK(has(err.msg, "2 channels"));
  tlc_transform_scratch_free(&scratch);
}

int main(void) {
  test_flip_rate();
  test_resized_crop_ranges();
  test_resized_crop_fallback();
  test_rotation_angles();
  test_jitter_factors();
  test_random_crop_positions();
  test_reproducible();
  test_hand_values();
  test_errors();
  return check_report();
}
