// kernels_jitter.c: colour jitter on the GPU's data path, after the geometry
// (kernels_augment.c, which leaves the batch as bytes for it). torchvision applies brightness,
// contrast, saturation and hue in a random order drawn per sample; the host writes each
// sample's order, factors and hue step (runtime/augment_params.h). Contrast blends towards
// the mean gray level of the image as it stands when contrast comes, so one kernel first
// computes each sample's mean (a block a sample, summing its pixels with the adjustments
// that precede contrast), and a second applies all four and normalises.
//
// Each adjustment is what runtime/transform_color.c computes: Pillow's blend in float,
// degenerate + factor * (pixel - degenerate), the product rounded on its own (a fused
// multiply-add would round once and differ), truncated and clamped to 0..255; gray levels in
// integers; hue through tables of Pillow's RGB -> HSV and HSV -> RGB conversions, which the
// host fills with the CPU's own functions (their float and double steps are not the
// kernel IR's to repeat). A 1-channel image is a gray RGB triple: saturation and hue leave it
// as it is, as Pillow does. So the batch is the CPU's bit for bit.
#include "lower.h"
#include "../runtime/augment_params.h"

// The buffers both kernels read, and the pixel triple they work on.
typedef struct Jitter {
  Kernel *k;
  int64_t channels, plane;
  int bytes, params, factors, hsv, rgb;
  int rgb_var[3], gray, t, op, mean, sample, index;   // mean: kernel_jitter's only
} Jitter;

static Jitter jitter_begin(Kernel *k, int64_t batch, int64_t channels, int64_t plane) {
  Jitter j = {.k = k, .channels = channels, .plane = plane};
  j.bytes = kir_buf(k, "the batch's bytes after the geometry", KT_U8, batch * channels * plane);
  j.params = kir_buf(k, "per sample: the jitter's order and hue step among its parameters", KT_I64, batch * AUG_PARAMS);
  j.factors = kir_buf(k, "per sample: brightness, contrast and saturation factors", KT_F32, batch * AUG_FACTORS);
  j.hsv = kir_buf(k, "Pillow's HSV of every RGB triple", KT_U8, 0);
  j.rgb = kir_buf(k, "Pillow's RGB of every HSV triple", KT_U8, 0);
  const char *names[3] = {"r", "g", "b"};
  for (int i = 0; i < 3; i++)
    j.rgb_var[i] = kir_var(k, names[i], KT_I64);
  j.gray = kir_var(k, "gray", KT_I64), j.t = kir_var(k, "t", KT_F32), j.op = kir_var(k, "op", KT_I64);
  j.index = kir_var(k, "lut", KT_I64);
  return j;
}

static KExpr *param(const Jitter *j, int which) {
  Kernel *k = j->k;
  return kir_load(k, j->params, kir_add(k, kir_mul(k, kir_ref(k, j->sample), kir_int(k, AUG_PARAMS)), kir_int(k, which)));
}

// The triple of sample `sample` at pixel p (a gray image's one channel three times).
static void load_pixel(const Jitter *j, KStmt *into, KExpr *p) {
  Kernel *k = j->k;
  KExpr *base = kir_add(k, kir_mul(k, kir_ref(k, j->sample), kir_int(k, j->channels * j->plane)), p);
  for (int c = 0; c < 3; c++) {
    int64_t channel = j->channels == 1 ? 0 : c;
    kir_assign(k, into, j->rgb_var[c], kir_load(k, j->bytes, kir_add(k, base, kir_int(k, channel * j->plane))));
  }
}

// Pillow's convert("L"): (19595 R + 38470 G + 7471 B + 2^15) >> 16.
static KExpr *gray_level(const Jitter *j) {
  Kernel *k = j->k;
  KExpr *sum = kir_add(k, kir_mul(k, kir_ref(k, j->rgb_var[0]), kir_int(k, 19595)),
                       kir_add(k, kir_mul(k, kir_ref(k, j->rgb_var[1]), kir_int(k, 38470)),
                               kir_mul(k, kir_ref(k, j->rgb_var[2]), kir_int(k, 7471))));
  return kir_div(k, kir_add(k, sum, kir_int(k, 1 << 15)), 1 << 16);
}

// Every channel = Image.blend(degenerate, channel, factor) for one byte.
static void blend(const Jitter *j, KStmt *into, KExpr *degenerate, KExpr *factor) {
  Kernel *k = j->k;
  for (int c = 0; c < 3; c++) {
    KExpr *diff = kir_cast(k, KT_F32, kir_sub(k, kir_ref(k, j->rgb_var[c]), degenerate));
    kir_assign(k, into, j->t, kir_binary(k, KB_ADD, kir_cast(k, KT_F32, degenerate), kir_binary(k, KB_MUL_RN, factor, diff)));
    KExpr *t = kir_ref(k, j->t);
    KExpr *clamped = kir_select(k, kir_binary(k, KB_LE, t, kir_float(k, 0)), kir_int(k, 0),
                                kir_select(k, kir_binary(k, KB_LE, kir_float(k, 255), t), kir_int(k, 255),
                                           kir_cast(k, KT_I64, t)));
    kir_assign(k, into, j->rgb_var[c], clamped);
  }
}

static KExpr *factor(const Jitter *j, int which) {
  Kernel *k = j->k;
  return kir_load(k, j->factors, kir_add(k, kir_mul(k, kir_ref(k, j->sample), kir_int(k, AUG_FACTORS)), kir_int(k, which)));
}

// The triple through a table of 2^24 triples indexed by the triple.
static void look_up(const Jitter *j, KStmt *into, int table) {
  Kernel *k = j->k;
  KExpr *at = kir_add(k, kir_mul(k, kir_add(k, kir_mul(k, kir_ref(k, j->rgb_var[0]), kir_int(k, 256)),
                                              kir_ref(k, j->rgb_var[1])), kir_int(k, 256)), kir_ref(k, j->rgb_var[2]));
  kir_assign(k, into, j->index, kir_mul(k, at, kir_int(k, 3)));
  for (int c = 0; c < 3; c++)
    kir_assign(k, into, j->rgb_var[c], kir_load(k, table, kir_add(k, kir_ref(k, j->index), kir_int(k, c))));
}

// Hue: to HSV, H + step modulo 256, back to RGB (an RGB triple or a gray one alike).
static void hue(const Jitter *j, KStmt *into) {
  Kernel *k = j->k;
  look_up(j, into, j->hsv);
  kir_assign(k, into, j->rgb_var[0], kir_mod(k, kir_add(k, kir_ref(k, j->rgb_var[0]), param(j, AUG_HUE_STEP)), 256));
  look_up(j, into, j->rgb);
}

// The adjustments in the sample's order; with stop_at_contrast, those before contrast only
// (the mean's pixels), else contrast towards `mean`.
static void adjust(const Jitter *j, KStmt *into, bool stop_at_contrast) {
  Kernel *k = j->k;
  int done = stop_at_contrast ? kir_var(k, "before_contrast", KT_BOOL) : -1;
  if (stop_at_contrast)
    kir_assign(k, into, done, kir_binary(k, KB_EQ, kir_int(k, 0), kir_int(k, 1)));
  for (int slot = 0; slot < 4; slot++) {
    kir_assign(k, into, j->op, param(j, AUG_JITTER + slot));
    KExpr *op = kir_ref(k, j->op);
    if (stop_at_contrast) {
      KExpr *at_contrast = kir_binary(k, KB_EQ, op, kir_int(k, AUG_CONTRAST));
      kir_assign(k, into, done, kir_binary(k, KB_OR, kir_ref(k, done), at_contrast));
    }
    KStmt *live = stop_at_contrast ? kir_if(k, into, kir_unary(k, KU_NOT, kir_ref(k, done)), NULL) : into;
    blend(j, kir_if(k, live, kir_binary(k, KB_EQ, op, kir_int(k, AUG_BRIGHTNESS)), NULL), kir_int(k, 0),
          factor(j, AUG_BRIGHTNESS));
    if (!stop_at_contrast)
      blend(j, kir_if(k, live, kir_binary(k, KB_EQ, op, kir_int(k, AUG_CONTRAST)), NULL), kir_ref(k, j->mean),
            factor(j, AUG_CONTRAST));
    KStmt *saturation = kir_if(k, live, kir_binary(k, KB_EQ, op, kir_int(k, AUG_SATURATION)), NULL);
    kir_assign(k, saturation, j->gray, gray_level(j));
    blend(j, saturation, kir_ref(k, j->gray), factor(j, AUG_SATURATION));
    hue(j, kir_if(k, live, kir_binary(k, KB_EQ, op, kir_int(k, AUG_HUE)), NULL));
  }
}

static const char *shape(Arena *a, int64_t batch, int64_t channels, int64_t height, int64_t width) {
  return arena_printf(a, "[%lld,%lld,%lld,%lld]", (long long)batch, (long long)channels, (long long)height, (long long)width);
}

enum { MEANS_BLOCK = 256 };

// A block a sample: each thread sums the gray levels of its share of the pixels (pixels
// thread, thread + 256, ...: consecutive threads read consecutive bytes), the block adds the
// 256 sums through shared memory, and thread 0 rounds the mean. Integer sums: exact in any order.
Kernel *kernel_jitter_means(Arena *a, int64_t batch, int64_t channels, int64_t height, int64_t width) {
  Kernel *k = kir_block_kernel(a, "jitter_means",
                               arena_printf(a, "data path: colour jitter's contrast means, each sample's rounded mean "
                                            "gray level after the adjustments before contrast, a block a sample %s -> "
                                            "[%lld]", shape(a, batch, channels, height, width), (long long)batch),
                               batch, MEANS_BLOCK);
  Jitter j = jitter_begin(k, batch, channels, height * width);
  int means = kir_buf(k, "each sample's contrast mean", KT_I64, batch);
  int partial = kir_shared(k, "the threads' sums", KT_I64, MEANS_BLOCK);
  j.sample = kir_var(k, "n", KT_I64);
  int step = kir_var(k, "step", KT_I64), p = kir_var(k, "p", KT_I64), sum = kir_var(k, "sum", KT_I64);
  int t = kir_var(k, "t_sum", KT_I64);
  kir_assign(k, k->body, j.sample, kir_block_index(k));
  kir_assign(k, k->body, sum, kir_int(k, 0));
  KStmt *steps = kir_for(k, k->body, step, kir_int(k, 0), kir_int(k, (j.plane + MEANS_BLOCK - 1) / MEANS_BLOCK), false);
  kir_assign(k, steps, p, kir_add(k, kir_mul(k, kir_ref(k, step), kir_int(k, MEANS_BLOCK)), kir_thread(k)));
  KStmt *pixel = kir_if(k, steps, kir_lt(k, kir_ref(k, p), kir_int(k, j.plane)), NULL);
  load_pixel(&j, pixel, kir_ref(k, p));
  adjust(&j, pixel, true);
  kir_assign(k, pixel, sum, kir_add(k, kir_ref(k, sum), gray_level(&j)));
  kir_store(k, k->body, partial, kir_thread(k), kir_ref(k, sum));
  kir_barrier(k, k->body);
  KStmt *first = kir_if(k, k->body, kir_binary(k, KB_EQ, kir_thread(k), kir_int(k, 0)), NULL);
  kir_assign(k, first, sum, kir_int(k, 0));
  KStmt *add = kir_for(k, first, t, kir_int(k, 0), kir_int(k, MEANS_BLOCK), false);
  kir_assign(k, add, sum, kir_add(k, kir_ref(k, sum), kir_load(k, partial, kir_ref(k, t))));
  // int(sum / pixels + 0.5), exactly: floor((2 sum + pixels) / (2 pixels)).
  KExpr *mean = kir_div(k, kir_add(k, kir_mul(k, kir_ref(k, sum), kir_int(k, 2)), kir_int(k, j.plane)), 2 * j.plane);
  kir_store(k, first, means, kir_ref(k, j.sample), mean);
  kir_finish(k);
  return k;
}

Kernel *kernel_jitter(Arena *a, int64_t batch, int64_t channels, int64_t height, int64_t width) {
  int64_t plane = height * width;
  Kernel *k = kir_kernel(a, "jitter",
                         arena_printf(a, "data path: colour jitter (brightness, contrast, saturation, hue in each "
                                      "sample's order) and normalisation, one thread a pixel -> %s",
                                      shape(a, batch, channels, height, width)));
  Jitter j = jitter_begin(k, batch, channels, plane);
  int means = kir_buf(k, "each sample's contrast mean", KT_I64, batch);
  int table = kir_buf(k, "each channel's 256 normalised values", KT_F32, channels * 256);
  int out = kir_buf(k, "the batch's images", KT_F32, batch * channels * plane);
  int i = kir_var(k, "i", KT_I64);
  j.sample = kir_var(k, "n", KT_I64), j.mean = kir_var(k, "mean", KT_I64);
  KStmt *each = kir_for(k, k->body, i, kir_int(k, 0), kir_int(k, batch * plane), true);
  kir_assign(k, each, j.sample, kir_div(k, kir_ref(k, i), plane));
  kir_assign(k, each, j.mean, kir_load(k, means, kir_ref(k, j.sample)));
  load_pixel(&j, each, kir_mod(k, kir_ref(k, i), plane));
  adjust(&j, each, false);
  for (int64_t c = 0; c < channels; c++) {
    KExpr *at = kir_add(k, kir_mul(k, kir_ref(k, j.sample), kir_int(k, channels * plane)),
                        kir_add(k, kir_int(k, c * plane), kir_mod(k, kir_ref(k, i), plane)));
    KExpr *value = kir_load(k, table, kir_add(k, kir_int(k, c * 256), kir_ref(k, j.rgb_var[c])));
    kir_store(k, each, out, at, value);
  }
  kir_finish(k);
  return k;
}
