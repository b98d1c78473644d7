// kernels_conv_runs.c: the runs the CPU's convolution products gather their operands in
// (conv_cpu.h). A convolution's operand is a shifted, strided copy of image rows with
// zeros where a tap falls in the padding; gathering it a row at a time, with the columns
// inside worked out once per run, leaves plain copies that LLVM vectorises.
#include "conv_cpu.h"

ConvCpu conv_cpu_of(const ConvAttrs *a, Shape x, Shape y) {
  return (ConvCpu){x, y, a->kernel, a->stride, a->pad, a->dilation, y.h * y.w, a->kernel * a->kernel,
                   conv_rows_by_position(a, y)};
}

KExpr *conv_min(Kernel *k, KExpr *a, KExpr *b) { return kir_binary(k, KB_MIN, a, b); }
KExpr *conv_max(Kernel *k, KExpr *a, KExpr *b) { return kir_binary(k, KB_MAX, a, b); }

KExpr *conv_in_range(Kernel *k, KExpr *v, int64_t size) {
  return kir_and(k, kir_binary(k, KB_LE, kir_int(k, 0), v), kir_lt(k, v, kir_int(k, size)));
}

KExpr *conv_input_at(Kernel *k, const ConvCpu *c, KExpr *o, KExpr *kk) {
  return kir_add(k, kir_sub(k, kir_mul(k, o, kir_int(k, c->stride)), kir_int(k, c->pad)), kir_mul(k, kk, kir_int(k, c->dil)));
}

// floor(a / s), for a > -BIAS * s: the division truncates, so it runs on a shifted value.
enum { BIAS = 1 << 20 };
KExpr *conv_floor_div(Kernel *k, KExpr *a, int64_t s) {
  if (s == 1)
    return a;
  return kir_sub(k, kir_div(k, kir_add(k, a, kir_int(k, (int64_t)BIAS * s)), s), kir_int(k, BIAS));
}

// The o in [*lo, *hi) with o*step + offset in [0, width), within [0, count).
static void inside(Kernel *k, KExpr *offset, int64_t step, int64_t width, int64_t count, KExpr **lo, KExpr **hi) {
  KExpr *first = conv_floor_div(k, kir_add(k, kir_sub(k, kir_int(k, 0), offset), kir_int(k, step - 1)), step);   // ceil(-offset / step)
  KExpr *last = conv_floor_div(k, kir_sub(k, kir_int(k, width - 1), offset), step);
  *lo = conv_min(k, conv_max(k, first, kir_int(k, 0)), kir_int(k, count));
  *hi = conv_max(k, conv_min(k, kir_add(k, last, kir_int(k, 1)), kir_int(k, count)), *lo);
}

void conv_valid_outputs(Kernel *k, const ConvCpu *c, KExpr *kk, int64_t size, int64_t out, KExpr **lo, KExpr **hi) {
  KExpr *offset = kir_sub(k, kir_mul(k, kk, kir_int(k, c->dil)), kir_int(k, c->pad));
  inside(k, offset, c->stride, size, out, lo, hi);
}

KStmt *conv_runs(KernelBuilder *kb, KStmt *into, KExpr *n0, KExpr *count, int64_t len, KExpr **g, KExpr **jlo,
                 KExpr **jhi) {
  Kernel *k = kb->k;
  int gv;
  KExpr *first = kir_div(k, n0, len), *last = kir_div(k, kir_sub(k, kir_add(k, n0, count), kir_int(k, 1)), len);
  KStmt *loop = kernel_range(kb, into, "g", first, kir_add(k, last, kir_int(k, 1)), &gv);
  *g = kir_ref(k, gv);
  KExpr *start = kir_sub(k, kir_mul(k, *g, kir_int(k, len)), n0);
  *jlo = kernel_let(kb, loop, "jlo", conv_max(k, start, kir_int(k, 0)));
  *jhi = kernel_let(kb, loop, "jhi", conv_min(k, kir_add(k, start, kir_int(k, len)), count));
  return loop;
}

static KExpr *stepped(Kernel *k, KExpr *at, int64_t step, KExpr *j) {
  return kir_add(k, at, step == 1 ? j : kir_mul(k, j, kir_int(k, step)));
}

void conv_zeros(KernelBuilder *kb, KStmt *into, int dst, KExpr *at, int64_t dst_step, KExpr *lo, KExpr *hi) {
  int j;
  KStmt *loop = kernel_range(kb, into, "j", lo, hi, &j);
  kir_store(kb->k, loop, dst, stepped(kb->k, at, dst_step, kir_ref(kb->k, j)), kir_float(kb->k, 0));
}

void conv_copy(KernelBuilder *kb, KStmt *into, int dst, KExpr *at, int64_t dst_step, int src, KExpr *from,
               int64_t src_step, KExpr *lo, KExpr *hi) {
  Kernel *k = kb->k;
  int j;
  KStmt *loop = kernel_range(kb, into, "j", lo, hi, &j);
  kir_store(k, loop, dst, stepped(k, at, dst_step, kir_ref(k, j)), kir_load(k, src, stepped(k, from, src_step, kir_ref(k, j))));
}

void conv_gather_run(KernelBuilder *kb, KStmt *into, int dst, KExpr *at, int64_t dst_step, const ConvRun *run,
                     KExpr *base, KExpr *jlo, KExpr *jhi) {
  Kernel *k = kb->k;
  KExpr *lo, *hi;   // the run's columns inside, as j = base + o
  inside(k, run->offset, run->src_step, run->width, (int64_t)BIAS, &lo, &hi);
  KExpr *ja = kernel_let(kb, into, "ja", conv_min(k, conv_max(k, kir_add(k, base, lo), jlo), jhi));
  KExpr *jb = kernel_let(kb, into, "jb", conv_max(k, conv_min(k, kir_add(k, base, hi), jhi), ja));
  conv_zeros(kb, into, dst, at, dst_step, jlo, ja);
  // src[row_start + (j - base)*step + offset]
  KExpr *from = kir_add(k, run->row_start, kir_sub(k, run->offset, kir_mul(k, base, kir_int(k, run->src_step))));
  conv_copy(kb, into, dst, at, dst_step, run->src, from, run->src_step, ja, jb);
  conv_zeros(kb, into, dst, at, dst_step, jb, jhi);
}

bool conv_same(const ConvCpu *c) {
  return c->stride == 1 && c->y.h == c->x.h && c->y.w == c->x.w && c->k > 1;
}

// A whole small plane read at a stride from a shift: output position (r, c) of an oh x ow
// plane reads src[plane + shift + r*step*w + c*step], inside src (the caller checked),
// keeping it where (r*step + dh, c*step + dw) falls inside the h x w plane: a row of
// selects, no bounds worked out per run.
static void gather_whole_plane(KernelBuilder *kb, KStmt *into, int dst, KExpr *at, int64_t dst_step, const ConvShift *sh,
                               int64_t step, int64_t oh, int64_t ow, KExpr *base, KExpr *shift) {
  Kernel *k = kb->k;
  int r, c;
  KStmt *rows = kernel_loop(kb, into, "r", oh, &r);
  KStmt *cols = kernel_loop(kb, rows, "c", ow, &c);
  KExpr *ih = kir_mul(k, kir_ref(k, r), kir_int(k, step)), *iw = kir_mul(k, kir_ref(k, c), kir_int(k, step));
  KExpr *inside = kir_and(k, conv_in_range(k, kir_add(k, ih, sh->dh), sh->h), conv_in_range(k, kir_add(k, iw, sh->dw), sh->w));
  KExpr *v = kir_load(k, sh->src, kir_add(k, kir_add(k, sh->plane, shift), kir_add(k, kir_mul(k, ih, kir_int(k, sh->w)), iw)));
  KExpr *pos = kir_add(k, kir_mul(k, kir_ref(k, r), kir_int(k, ow)), kir_ref(k, c));
  kir_store(k, cols, dst, stepped(k, at, dst_step, kir_add(k, base, pos)), kir_select(k, inside, v, kir_float(k, 0)));
}

// Whether run [jlo, jhi) is the whole oh x ow plane at base and its reads from the shift
// stay inside src; then gather_whole_plane copies it, and the statement returned (the
// run's other case) gathers it the long way.
static KStmt *whole_plane(KernelBuilder *kb, KStmt *into, int dst, KExpr *at, int64_t dst_step, const ConvShift *sh,
                          int64_t step, int64_t oh, int64_t ow, KExpr *base, KExpr *shift, KExpr *jlo, KExpr *jhi) {
  Kernel *k = kb->k;
  KExpr *first = kir_add(k, sh->plane, shift), *last = kir_add(k, first, kir_int(k, (oh - 1) * step * sh->w + (ow - 1) * step));
  KExpr *whole = kir_and(k, kir_binary(k, KB_EQ, jlo, base), kir_binary(k, KB_EQ, jhi, kir_add(k, base, kir_int(k, oh * ow))));
  KExpr *fits = kir_and(k, kir_binary(k, KB_LE, kir_int(k, 0), first), kir_lt(k, last, kir_int(k, sh->size)));
  KStmt *other;
  KStmt *fast = kir_if(k, into, kir_and(k, whole, fits), &other);
  gather_whole_plane(kb, fast, dst, at, dst_step, sh, step, oh, ow, base, shift);
  return other;
}

void conv_gather_plane(KernelBuilder *kb, KStmt *into, int dst, KExpr *at, int64_t dst_step, const ConvShift *sh,
                       KExpr *base, KExpr *jlo, KExpr *jhi) {
  Kernel *k = kb->k;
  int64_t H = sh->h, W = sh->w;
  KExpr *shift = kernel_let(kb, into, "shift", kir_add(k, kir_mul(k, sh->dh, kir_int(k, W)), sh->dw));
  if (H * W <= CONV_WHOLE_PLANE)
    into = whole_plane(kb, into, dst, at, dst_step, sh, 1, H, W, base, shift, jlo, jhi);
  // the rows whose source row is inside: pos in [rlo*W, rhi*W), as j = base + pos
  KExpr *rlo = conv_max(k, kir_sub(k, kir_int(k, 0), sh->dh), kir_int(k, 0));
  KExpr *rhi = conv_min(k, kir_sub(k, kir_int(k, H), sh->dh), kir_int(k, H));
  KExpr *ja = kernel_let(kb, into, "ja", conv_min(k, conv_max(k, kir_add(k, base, kir_mul(k, rlo, kir_int(k, W))), jlo), jhi));
  KExpr *jb = kernel_let(kb, into, "jb", conv_max(k, conv_min(k, kir_add(k, base, kir_mul(k, rhi, kir_int(k, W))), jhi), ja));
  conv_zeros(kb, into, dst, at, dst_step, jlo, ja);
  // The copy reads inside the plane only: where a row's first or last columns would read
  // past it, they are columns outside, zeroed below.
  KExpr *ca = kernel_let(kb, into, "ca", conv_max(k, ja, kir_sub(k, base, shift)));
  KExpr *cb = conv_max(k, conv_min(k, jb, kir_add(k, kir_sub(k, base, shift), kir_int(k, H * W))), ca);
  KExpr *from = kir_add(k, sh->plane, kir_sub(k, shift, base));   // src[plane + (j - base) + shift]
  conv_copy(kb, into, dst, at, dst_step, sh->src, from, 1, ca, cb);
  conv_zeros(kb, into, dst, at, dst_step, jb, jhi);
  // The columns whose source column is outside, [0, -dw) or [W - dw, W), in each row of [ja, jb).
  KStmt *some = kir_if(k, into, kir_binary(k, KB_NE, sh->dw, kir_int(k, 0)), NULL);
  KStmt *any = kir_if(k, some, kir_lt(k, ja, jb), NULL);
  KExpr *cl = conv_min(k, conv_max(k, kir_sub(k, kir_int(k, 0), sh->dw), kir_int(k, 0)), kir_int(k, W));
  KExpr *ch = conv_max(k, conv_min(k, kir_sub(k, kir_int(k, W), sh->dw), kir_int(k, W)), kir_int(k, 0));
  KExpr *bad_lo = kernel_let(kb, any, "bad_lo", kir_select(k, kir_lt(k, sh->dw, kir_int(k, 0)), kir_int(k, 0), ch));
  KExpr *bad_hi = kernel_let(kb, any, "bad_hi", kir_select(k, kir_lt(k, sh->dw, kir_int(k, 0)), cl, kir_int(k, W)));
  int r;
  KExpr *r0 = kir_div(k, kir_sub(k, ja, base), W), *r1 = kir_div(k, kir_sub(k, kir_sub(k, jb, kir_int(k, 1)), base), W);
  KStmt *rows = kernel_range(kb, any, "r", r0, kir_add(k, r1, kir_int(k, 1)), &r);
  KExpr *row = kir_add(k, base, kir_mul(k, kir_ref(k, r), kir_int(k, W)));
  KExpr *lo = conv_max(k, kir_add(k, row, bad_lo), ja), *hi = conv_min(k, kir_add(k, row, bad_hi), jb);
  conv_zeros(kb, rows, dst, at, dst_step, lo, hi);
}

// The image's plane of channel ci.
static KExpr *plane_of(Kernel *k, const ConvCpu *c, KExpr *img, KExpr *ci) {
  return kir_mul(k, kir_add(k, kir_mul(k, img, kir_int(k, c->x.c)), ci), kir_int(k, c->x.h * c->x.w));
}

// A tap's offset from an output position's first input row and column: (kh*d - pad, kw*d - pad).
static KExpr *tap_row_offset(Kernel *k, const ConvCpu *c, KExpr *tap) {
  return kir_sub(k, kir_mul(k, kir_div(k, tap, c->k), kir_int(k, c->dil)), kir_int(k, c->pad));
}

static KExpr *tap_column_offset(Kernel *k, const ConvCpu *c, KExpr *tap) {
  return kir_sub(k, kir_mul(k, kir_mod(k, tap, c->k), kir_int(k, c->dil)), kir_int(k, c->pad));
}

// Where a tap reads the image: its plane of channel ci, shifted by the tap's offsets.
static ConvShift tap_shift(Kernel *k, const ConvCpu *c, int image, KExpr *img, KExpr *ci, KExpr *tap) {
  return (ConvShift){.src = image, .h = c->x.h, .w = c->x.w, .size = shape_elems(c->x), .plane = plane_of(k, c, img, ci),
                     .dh = tap_row_offset(k, c, tap), .dw = tap_column_offset(k, c, tap)};
}

// Where tap (kh, kw) reads the image split by stride phase: its phase's plane of channel ci
// (Hq x Wq, the output's size), shifted by whole positions. With a = kh*d - pad, input row
// oh*s + a is row oh + floor(a / s) of phase a mod s.
static ConvShift phase_shift(Kernel *k, const ConvCpu *c, int image, KExpr *img, KExpr *ci, KExpr *tap) {
  int64_t s = c->stride;
  KExpr *ah = tap_row_offset(k, c, tap), *aw = tap_column_offset(k, c, tap);
  KExpr *dh = conv_floor_div(k, ah, s), *dw = conv_floor_div(k, aw, s);
  KExpr *rh = kir_sub(k, ah, kir_mul(k, dh, kir_int(k, s))), *rw = kir_sub(k, aw, kir_mul(k, dw, kir_int(k, s)));
  KExpr *phase = kir_add(k, kir_mul(k, rh, kir_int(k, s)), rw);
  KExpr *plane = kir_add(k, kir_mul(k, kir_add(k, kir_mul(k, img, kir_int(k, c->x.c)), ci), kir_int(k, s * s)), phase);
  return (ConvShift){.src = image, .h = c->y.h, .w = c->y.w, .size = shape_elems(c->x) / (c->x.h * c->x.w) * s * s * c->P,
                     .plane = kir_mul(k, plane, kir_int(k, c->P)), .dh = dh, .dw = dw};
}

// Step (ci, tap)'s rows [r0, r0 + count) one output row at a time, zeros where the tap
// falls outside the image.
static void gather_rows(KernelBuilder *kb, const ConvCpu *c, int image, KStmt *into, int dst, KExpr *at,
                        int64_t dst_step, KExpr *ci, KExpr *tap, KExpr *r0, KExpr *count) {
  Kernel *k = kb->k;
  KExpr *g, *jlo, *jhi;
  KStmt *row = conv_runs(kb, into, r0, count, c->y.w, &g, &jlo, &jhi);
  KExpr *img = kir_div(k, g, c->y.h), *oh = kir_mod(k, g, c->y.h);
  KExpr *ih = kernel_let(kb, row, "ih", conv_input_at(k, c, oh, kir_div(k, tap, c->k)));
  KStmt *outside;
  KStmt *inside = kir_if(k, row, conv_in_range(k, ih, c->x.h), &outside);
  conv_zeros(kb, outside, dst, at, dst_step, jlo, jhi);
  ConvRun run = {.src = image, .row_start = kir_add(k, plane_of(k, c, img, ci), kir_mul(k, ih, kir_int(k, c->x.w))),
                 .offset = tap_column_offset(k, c, tap), .src_step = c->stride, .width = c->x.w};
  conv_gather_run(kb, inside, dst, at, dst_step, &run, kir_sub(k, kir_mul(k, g, kir_int(k, c->y.w)), r0), jlo, jhi);
}

// The values of step (ci, tap) for rows (image, position) [r0, r0 + count) of the image at
// buffer `image`, into dst[at + j*dst_step]: one output row at a time, zeros where the tap
// falls outside the image; a 1x1 convolution without stride or padding copies planes, one
// that keeps the image's size shifts them, so does one that reads the image split by stride
// phase (conv_phases_input), and another strided one with small outputs (at most
// CONV_WHOLE_PLANE positions, where rows of 2 to 8 cost more in bounds than in copies) reads
// each image's output plane whole.
void conv_gather_by_image(KernelBuilder *kb, const ConvCpu *c, int image, KStmt *into, int dst, KExpr *at,
                          int64_t dst_step, KExpr *ci, KExpr *tap, KExpr *r0, KExpr *count) {
  Kernel *k = kb->k;
  KExpr *g, *jlo, *jhi;
  if (c->k == 1 && c->stride == 1 && c->pad == 0) {
    KStmt *img = conv_runs(kb, into, r0, count, c->P, &g, &jlo, &jhi);
    // x[g, ci, r0 + j - g*P]
    KExpr *from = kir_add(k, kir_mul(k, kir_add(k, kir_mul(k, g, kir_int(k, c->x.c)), ci), kir_int(k, c->P)),
                          kir_sub(k, r0, kir_mul(k, g, kir_int(k, c->P))));
    conv_copy(kb, img, dst, at, dst_step, image, from, 1, jlo, jhi);
    return;
  }
  if (conv_same(c) || c->phases) {   // a run per image: its plane (or its tap's phase's), shifted
    KStmt *img = conv_runs(kb, into, r0, count, c->P, &g, &jlo, &jhi);
    ConvShift sh = (c->phases ? phase_shift : tap_shift)(k, c, image, g, ci, tap);
    conv_gather_plane(kb, img, dst, at, dst_step, &sh, kir_sub(k, kir_mul(k, g, kir_int(k, c->P)), r0), jlo, jhi);
    return;
  }
  if (c->stride == 1 || c->P > CONV_WHOLE_PLANE) {
    gather_rows(kb, c, image, into, dst, at, dst_step, ci, tap, r0, count);
    return;
  }
  KStmt *img = conv_runs(kb, into, r0, count, c->P, &g, &jlo, &jhi);
  ConvShift sh = tap_shift(k, c, image, g, ci, tap);
  KExpr *shift = kernel_let(kb, img, "shift", kir_add(k, kir_mul(k, sh.dh, kir_int(k, c->x.w)), sh.dw));
  KExpr *base = kernel_let(kb, img, "base", kir_sub(k, kir_mul(k, g, kir_int(k, c->P)), r0));
  KStmt *part = whole_plane(kb, img, dst, at, dst_step, &sh, c->stride, c->y.h, c->y.w, base, shift, jlo, jhi);
  gather_rows(kb, c, image, part, dst, stepped(k, at, dst_step, jlo), dst_step, ci, tap, kir_add(k, r0, jlo), kir_sub(k, jhi, jlo));
}
