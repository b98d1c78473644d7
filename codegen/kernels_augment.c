// kernels_augment.c: the GPU's data path. When a trainer keeps the decoded images (uint8,
// each at its own size) in device memory (runtime/trainer_gpu_data.c), this kernel builds
// each batch there: the geometric transforms of a recipe (resize or random resized crop,
// crops, flips) and the normalisation, one thread per float of the batch.
//
// The host draws every sample's choices as the CPU transforms would and reduces them to a
// small table: where the image lies, the resampling filter of each output row and column
// (Pillow's fixed-point taps, computed by the host's own code), and the integer map from
// the batch's pixel to the resized image (crops and flips compose into an offset and a sign
// per axis). The kernel then computes what runtime/transform_resample.c computes: the
// horizontal pass of each row the vertical filter reads, rounded to 8 bits, then the
// vertical pass, rounded again. Integer sums do not depend on their order, so the batch is
// the CPU's bit for bit. The kernel has no CPU caller (the CPU runs runtime/transform*.c).
#include "lower.h"

// Per sample, the int64 parameters the host writes (runtime/trainer_gpu_data.c keeps the same
// order): where its pixels start and their row length and channels; where its row and column
// taps start in the taps buffer and each tap entry's length (first, count, weights...); the
// map from the batch's (y, x) to the resized image, row = ay + sy * y, column = ax + sx * x;
// and the resized image's size (outside it: zero, RandomCrop's padding).
enum {
  AUG_PIXELS, AUG_ROW, AUG_CHANNELS, AUG_TAPS_Y, AUG_TAPS_X, AUG_STRIDE_Y, AUG_STRIDE_X,
  AUG_AY, AUG_SY, AUG_AX, AUG_SX, AUG_HEIGHT, AUG_WIDTH, AUG_PARAMS = 16
};
enum { AUG_BITS = 22 };   // Pillow's fixed point: 8 bits of result, 2 of headroom

static KExpr *param(Kernel *k, int params, KExpr *sample, int which) {
  return kir_load(k, params, kir_add(k, kir_mul(k, sample, kir_int(k, AUG_PARAMS)), kir_int(k, which)));
}

// Pillow's clip8 of a fixed-point sum (never negative: bilinear weights are not).
static KExpr *round8(Kernel *k, KExpr *acc) {
  KExpr *v = kir_div(k, acc, (int64_t)1 << AUG_BITS);
  return kir_binary(k, KB_MIN, kir_binary(k, KB_MAX, v, kir_int(k, 0)), kir_int(k, 255));
}

static KExpr *within(Kernel *k, KExpr *v, KExpr *size) {
  return kir_and(k, kir_binary(k, KB_LE, kir_int(k, 0), v), kir_lt(k, v, size));
}

Kernel *kernel_augment(Arena *a, int64_t batch, int64_t channels, int64_t height, int64_t width) {
  int64_t plane = height * width, sample_floats = channels * plane;
  Kernel *k = kir_kernel(a, "augment",
                         arena_printf(a, "data path: the batch built on the device from the decoded images, resized, "
                                      "cropped, flipped and normalised as the CPU transforms do -> [%lld,%lld,%lld,%lld]",
                                      (long long)batch, (long long)channels, (long long)height, (long long)width));
  int pixels = kir_buf(k, "decoded images (HWC, one after another)", KT_U8, 0);
  int params = kir_buf(k, "per sample: image offset, row, channels, taps y, taps x, their strides, ay, sy, "
                                 "ax, sx, resized height, width (16 int64)", KT_I64, batch * AUG_PARAMS);
  int taps = kir_buf(k, "the samples' filter taps: first, count, weights (fixed point, 22 bits)", KT_I64, 0);
  int table = kir_buf(k, "each channel's 256 normalised values", KT_F32, channels * 256);
  int out = kir_buf(k, "the batch's images", KT_F32, batch * sample_floats);
  int i = kir_var(k, "i", KT_I64), n = kir_var(k, "n", KT_I64), c = kir_var(k, "c", KT_I64);
  int ry = kir_var(k, "ry", KT_I64), rx = kir_var(k, "rx", KT_I64), v = kir_var(k, "v", KT_I64);
  int ey = kir_var(k, "ey", KT_I64), ex = kir_var(k, "ex", KT_I64), base = kir_var(k, "base", KT_I64);
  int acc = kir_var(k, "acc", KT_I64), hacc = kir_var(k, "hacc", KT_I64);
  int ty = kir_var(k, "ty", KT_I64), tx = kir_var(k, "tx", KT_I64), step = kir_var(k, "step", KT_I64);
  KStmt *each = kir_for(k, k->body, i, kir_int(k, 0), kir_int(k, batch * sample_floats), true);
  KExpr *y = kir_mod(k, kir_div(k, kir_ref(k, i), width), height), *x = kir_mod(k, kir_ref(k, i), width);
  kir_assign(k, each, n, kir_div(k, kir_ref(k, i), sample_floats));
  kir_assign(k, each, c, kir_mod(k, kir_div(k, kir_ref(k, i), plane), channels));
  KExpr *s = kir_ref(k, n);
  kir_assign(k, each, ry, kir_add(k, param(k, params, s, AUG_AY), kir_mul(k, param(k, params, s, AUG_SY), y)));
  kir_assign(k, each, rx, kir_add(k, param(k, params, s, AUG_AX), kir_mul(k, param(k, params, s, AUG_SX), x)));
  kir_assign(k, each, v, kir_int(k, 0));
  KStmt *inside = kir_if(k, each, kir_and(k, within(k, kir_ref(k, ry), param(k, params, s, AUG_HEIGHT)),
                                          within(k, kir_ref(k, rx), param(k, params, s, AUG_WIDTH))), NULL);
  kir_assign(k, inside, ey, kir_add(k, param(k, params, s, AUG_TAPS_Y),
                                    kir_mul(k, kir_ref(k, ry), param(k, params, s, AUG_STRIDE_Y))));
  kir_assign(k, inside, ex, kir_add(k, param(k, params, s, AUG_TAPS_X),
                                    kir_mul(k, kir_ref(k, rx), param(k, params, s, AUG_STRIDE_X))));
  // A gray image (grayscale_to_rgb) gives every channel its one channel.
  KExpr *chans = param(k, params, s, AUG_CHANNELS);
  KExpr *channel = kir_select(k, kir_binary(k, KB_EQ, chans, kir_int(k, 1)), kir_int(k, 0), kir_ref(k, c));
  kir_assign(k, inside, step, chans);
  kir_assign(k, inside, acc, kir_int(k, (int64_t)1 << (AUG_BITS - 1)));
  KStmt *rows = kir_for(k, inside, ty, kir_int(k, 0), kir_load(k, taps, kir_add(k, kir_ref(k, ey), kir_int(k, 1))), false);
  KExpr *row = kir_add(k, kir_load(k, taps, kir_ref(k, ey)), kir_ref(k, ty));
  KExpr *first = kir_add(k, kir_mul(k, row, param(k, params, s, AUG_ROW)), kir_load(k, taps, kir_ref(k, ex)));
  kir_assign(k, rows, base, kir_add(k, kir_add(k, param(k, params, s, AUG_PIXELS), kir_mul(k, first, kir_ref(k, step))),
                                    channel));
  kir_assign(k, rows, hacc, kir_int(k, (int64_t)1 << (AUG_BITS - 1)));
  KStmt *cols = kir_for(k, rows, tx, kir_int(k, 0), kir_load(k, taps, kir_add(k, kir_ref(k, ex), kir_int(k, 1))), false);
  KExpr *pixel = kir_load(k, pixels, kir_add(k, kir_ref(k, base), kir_mul(k, kir_ref(k, tx), kir_ref(k, step))));
  KExpr *wx = kir_load(k, taps, kir_add(k, kir_add(k, kir_ref(k, ex), kir_int(k, 2)), kir_ref(k, tx)));
  kir_assign(k, cols, hacc, kir_add(k, kir_ref(k, hacc), kir_mul(k, pixel, wx)));
  KExpr *wy = kir_load(k, taps, kir_add(k, kir_add(k, kir_ref(k, ey), kir_int(k, 2)), kir_ref(k, ty)));
  kir_assign(k, rows, acc, kir_add(k, kir_ref(k, acc), kir_mul(k, round8(k, kir_ref(k, hacc)), wy)));
  kir_assign(k, inside, v, round8(k, kir_ref(k, acc)));
  KExpr *value = kir_load(k, table, kir_add(k, kir_mul(k, kir_ref(k, c), kir_int(k, 256)), kir_ref(k, v)));
  kir_store(k, each, out, kir_ref(k, i), value);
  kir_finish(k);
  return k;
}
