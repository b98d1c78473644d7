// kernels_augment.c: the GPU's data path. When a trainer keeps the decoded images (uint8, each
// at its own size) in device memory (runtime/trainer_gpu_data.c), this kernel builds each
// batch there: the geometric transforms of a recipe (resize or random resized crop, crops,
// flips, rotation) and the normalisation, one thread per float of the batch.
//
// The host draws every sample's choices as the CPU transforms would and reduces them to a
// small table (runtime/augment_params.h): where the image lies, the resampling filter of each
// output row and column (Pillow's fixed-point taps, computed by the host's own code), and the
// integer maps from the batch's pixel to the resized image (crops and flips compose into an
// offset and a sign per axis, on either side of a rotation, which is Pillow's 16.16
// nearest-neighbour map with the host's coefficients). The kernel then computes what
// runtime/transform_resample.c computes: the horizontal pass of each row the vertical filter
// reads, rounded to 8 bits, then the vertical pass, rounded again. Integer sums do not depend
// on their order, so the batch is the CPU's bit for bit. The kernel has no CPU caller (the CPU
// runs runtime/transform*.c).
#include "lower.h"
#include "../runtime/augment_params.h"

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

// floor(v / 65536) of a 16.16 coordinate (|v| < 2^31), as Pillow's arithmetic shift: the
// division of a shifted, non-negative value.
static KExpr *floor16(Kernel *k, KExpr *v) {
  const int64_t lift = (int64_t)1 << 40;
  return kir_sub(k, kir_div(k, kir_add(k, v, kir_int(k, lift)), 65536), kir_int(k, lift / 65536));
}

// a + s * v: one axis of a map of crops and flips.
static KExpr *axis(Kernel *k, int params, KExpr *n, int a, int s, KExpr *v) {
  return kir_add(k, param(k, params, n, a), kir_mul(k, param(k, params, n, s), v));
}

// The rotation's source pixel along one axis, from the rotated pixel (y2, x2).
static KExpr *rotated(Kernel *k, int params, KExpr *n, int first, KExpr *y2, KExpr *x2) {
  KExpr *v = kir_add(k, kir_add(k, param(k, params, n, first), kir_mul(k, param(k, params, n, first + 1), x2)),
                     kir_mul(k, param(k, params, n, first + 2), y2));
  return floor16(k, v);
}

// The kernel's variables: the batch's float i (sample n, channel c), its pixel in the rotated
// image (y2, x2), in the rotation's input (ys, xs) and in the resized image (ry, rx); the
// byte v; the resampling's tap entries, first source byte, sums, tap indexes and byte step.
typedef struct AugmentVars { int i, n, c, y2, x2, ys, xs, ry, rx, v, ey, ex, base, acc, hacc, ty, tx, step; } AugmentVars;

// Pillow's two resampling passes for resized pixel (ry, rx): the horizontal pass of each row
// the vertical filter reads, rounded to 8 bits, then the vertical one; v is the result.
static void resample(Kernel *k, KStmt *into, int pixels, int params, int taps, const AugmentVars *x) {
  KExpr *n = kir_ref(k, x->n);
  kir_assign(k, into, x->ey, kir_add(k, param(k, params, n, AUG_TAPS_Y),
                                     kir_mul(k, kir_ref(k, x->ry), param(k, params, n, AUG_STRIDE_Y))));
  kir_assign(k, into, x->ex, kir_add(k, param(k, params, n, AUG_TAPS_X),
                                     kir_mul(k, kir_ref(k, x->rx), param(k, params, n, AUG_STRIDE_X))));
  // A gray image (grayscale_to_rgb) gives every channel its one channel.
  KExpr *chans = param(k, params, n, AUG_CHANNELS);
  KExpr *channel = kir_select(k, kir_binary(k, KB_EQ, chans, kir_int(k, 1)), kir_int(k, 0), kir_ref(k, x->c));
  kir_assign(k, into, x->step, chans);
  kir_assign(k, into, x->acc, kir_int(k, (int64_t)1 << (AUG_BITS - 1)));
  KExpr *count_y = kir_load(k, taps, kir_add(k, kir_ref(k, x->ey), kir_int(k, 1)));
  KStmt *rows = kir_for(k, into, x->ty, kir_int(k, 0), count_y, false);
  KExpr *row = kir_add(k, kir_load(k, taps, kir_ref(k, x->ey)), kir_ref(k, x->ty));
  KExpr *first = kir_add(k, kir_mul(k, row, param(k, params, n, AUG_ROW)), kir_load(k, taps, kir_ref(k, x->ex)));
  kir_assign(k, rows, x->base, kir_add(k, kir_add(k, param(k, params, n, AUG_PIXELS), kir_mul(k, first, kir_ref(k, x->step))),
                                       channel));
  kir_assign(k, rows, x->hacc, kir_int(k, (int64_t)1 << (AUG_BITS - 1)));
  KExpr *count_x = kir_load(k, taps, kir_add(k, kir_ref(k, x->ex), kir_int(k, 1)));
  KStmt *cols = kir_for(k, rows, x->tx, kir_int(k, 0), count_x, false);
  KExpr *pixel = kir_load(k, pixels, kir_add(k, kir_ref(k, x->base), kir_mul(k, kir_ref(k, x->tx), kir_ref(k, x->step))));
  KExpr *wx = kir_load(k, taps, kir_add(k, kir_add(k, kir_ref(k, x->ex), kir_int(k, 2)), kir_ref(k, x->tx)));
  kir_assign(k, cols, x->hacc, kir_add(k, kir_ref(k, x->hacc), kir_mul(k, pixel, wx)));
  KExpr *wy = kir_load(k, taps, kir_add(k, kir_add(k, kir_ref(k, x->ey), kir_int(k, 2)), kir_ref(k, x->ty)));
  kir_assign(k, rows, x->acc, kir_add(k, kir_ref(k, x->acc), kir_mul(k, round8(k, kir_ref(k, x->hacc)), wy)));
  kir_assign(k, into, x->v, round8(k, kir_ref(k, x->acc)));
}

Kernel *kernel_augment(Arena *a, int64_t batch, int64_t channels, int64_t height, int64_t width, bool bytes) {
  int64_t plane = height * width, sample_floats = channels * plane;
  Kernel *k = kir_kernel(a, bytes ? "augment_bytes" : "augment",
                         arena_printf(a, "data path: the batch built on the device from the decoded images, resized, "
                                      "cropped, flipped, rotated and %s as the CPU transforms do -> [%lld,%lld,%lld,%lld]",
                                      bytes ? "kept as bytes for colour jitter" : "normalised", (long long)batch,
                                      (long long)channels, (long long)height, (long long)width));
  int pixels = kir_buf(k, "decoded images (HWC, one after another)", KT_U8, 0);
  int params = kir_buf(k, "per sample: image, taps, crops and flips after the rotation, the rotation, crops and flips "
                       "before it, resized size (runtime/augment_params.h)", KT_I64, batch * AUG_PARAMS);
  int taps = kir_buf(k, "the samples' filter taps: first, count, weights (fixed point, 22 bits)", KT_I64, 0);
  int table = bytes ? -1 : kir_buf(k, "each channel's 256 normalised values", KT_F32, channels * 256);
  int out = kir_buf(k, bytes ? "the batch's bytes" : "the batch's images", bytes ? KT_U8 : KT_F32, batch * sample_floats);
  AugmentVars x = {
      .i = kir_var(k, "i", KT_I64), .n = kir_var(k, "n", KT_I64), .c = kir_var(k, "c", KT_I64),
      .y2 = kir_var(k, "y2", KT_I64), .x2 = kir_var(k, "x2", KT_I64), .ys = kir_var(k, "ys", KT_I64),
      .xs = kir_var(k, "xs", KT_I64), .ry = kir_var(k, "ry", KT_I64), .rx = kir_var(k, "rx", KT_I64),
      .v = kir_var(k, "v", KT_I64), .ey = kir_var(k, "ey", KT_I64), .ex = kir_var(k, "ex", KT_I64),
      .base = kir_var(k, "base", KT_I64), .acc = kir_var(k, "acc", KT_I64), .hacc = kir_var(k, "hacc", KT_I64),
      .ty = kir_var(k, "ty", KT_I64), .tx = kir_var(k, "tx", KT_I64), .step = kir_var(k, "step", KT_I64)};
  KStmt *each = kir_for(k, k->body, x.i, kir_int(k, 0), kir_int(k, batch * sample_floats), true);
  KExpr *y = kir_mod(k, kir_div(k, kir_ref(k, x.i), width), height), *xx = kir_mod(k, kir_ref(k, x.i), width);
  kir_assign(k, each, x.n, kir_div(k, kir_ref(k, x.i), sample_floats));
  kir_assign(k, each, x.c, kir_mod(k, kir_div(k, kir_ref(k, x.i), plane), channels));
  KExpr *n = kir_ref(k, x.n);
  // Batch pixel -> rotated image -> the rotation's input -> resized image; zero outside any.
  kir_assign(k, each, x.y2, axis(k, params, n, AUG_AFTER_AY, AUG_AFTER_SY, y));
  kir_assign(k, each, x.x2, axis(k, params, n, AUG_AFTER_AX, AUG_AFTER_SX, xx));
  kir_assign(k, each, x.xs, rotated(k, params, n, AUG_ROTATE, kir_ref(k, x.y2), kir_ref(k, x.x2)));
  kir_assign(k, each, x.ys, rotated(k, params, n, AUG_ROTATE + 3, kir_ref(k, x.y2), kir_ref(k, x.x2)));
  kir_assign(k, each, x.ry, axis(k, params, n, AUG_BEFORE_AY, AUG_BEFORE_SY, kir_ref(k, x.ys)));
  kir_assign(k, each, x.rx, axis(k, params, n, AUG_BEFORE_AX, AUG_BEFORE_SX, kir_ref(k, x.xs)));
  kir_assign(k, each, x.v, kir_int(k, 0));
  KExpr *rotated_h = param(k, params, n, AUG_ROTATED_HEIGHT), *rotated_w = param(k, params, n, AUG_ROTATED_WIDTH);
  KExpr *inside = kir_and(k, kir_and(k, within(k, kir_ref(k, x.y2), rotated_h), within(k, kir_ref(k, x.x2), rotated_w)),
                          kir_and(k, within(k, kir_ref(k, x.ys), rotated_h), within(k, kir_ref(k, x.xs), rotated_w)));
  inside = kir_and(k, inside, kir_and(k, within(k, kir_ref(k, x.ry), param(k, params, n, AUG_HEIGHT)),
                                      within(k, kir_ref(k, x.rx), param(k, params, n, AUG_WIDTH))));
  resample(k, kir_if(k, each, inside, NULL), pixels, params, taps, &x);
  KExpr *value = bytes ? kir_ref(k, x.v)
                       : kir_load(k, table, kir_add(k, kir_mul(k, kir_ref(k, x.c), kir_int(k, 256)), kir_ref(k, x.v)));
  kir_store(k, each, out, kir_ref(k, x.i), value);
  kir_finish(k);
  return k;
}
