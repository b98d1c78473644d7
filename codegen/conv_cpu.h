// conv_cpu.h: what the CPU's three convolution products share (groups == 1): the forward
// pass (kernels_conv_cpu.c), the input gradient (kernels_conv_cpu_dx.c) and the weight
// gradient (kernels_conv_cpu_dw.c) are packed products (kernels_packed.c) that gather their
// operands from the tensors as they pack them, a contiguous run at a time
// (kernels_conv_runs.c), and never store a patch matrix.
#ifndef TLC_CONV_CPU_H
#define TLC_CONV_CPU_H

#include "lower.h"

typedef struct ConvCpu {
  Shape x, y;           // the image [N,CI,H,W] and the output [N,CO,OH,OW]
  int64_t k, stride, pad, dil;
  int64_t P, T;         // output positions per image, taps
  bool by_position;     // rows (position, image) instead of (image, position): conv_by_position
  bool phases;          // the image is read split by stride phase (conv2d_phases)
} ConvCpu;

// The geometry of a convolution with attributes a from x to y.
ConvCpu conv_cpu_of(const ConvAttrs *a, Shape x, Shape y);
// The buffer a product gathers the image from: the node's input by stride phase, where the
// schedule gave it one (kernels_conv_phases.c; c->phases is then set), else image.
int conv_phases_input(const KernelBuilder *kb, ConvCpu *c, int image);
// floor(a / s), for a > -2^20 s.
KExpr *conv_floor_div(Kernel *k, KExpr *a, int64_t s);

KExpr *conv_min(Kernel *k, KExpr *a, KExpr *b);
KExpr *conv_max(Kernel *k, KExpr *a, KExpr *b);
KExpr *conv_in_range(Kernel *k, KExpr *v, int64_t size);
// The input coordinate of output coordinate o under kernel offset kk: o*s - pad + kk*d.
KExpr *conv_input_at(Kernel *k, const ConvCpu *c, KExpr *o, KExpr *kk);
// The outputs o in [*lo, *hi) of a row (within [0, out)) whose input o*s - pad + kk*d lies
// in [0, size).
void conv_valid_outputs(Kernel *k, const ConvCpu *c, KExpr *kk, int64_t size, int64_t out, KExpr **lo, KExpr **hi);

// The runs of `len` consecutive indexes that [n0, n0 + count) crosses: g runs over them and
// [*jlo, *jhi) is run g's part, counted from n0. Returns the loop's body.
KStmt *conv_runs(KernelBuilder *kb, KStmt *into, KExpr *n0, KExpr *count, int64_t len, KExpr **g, KExpr **jlo,
                 KExpr **jhi);
// dst[at + j*dst_step] = 0 for j in [lo, hi)
void conv_zeros(KernelBuilder *kb, KStmt *into, int dst, KExpr *at, int64_t dst_step, KExpr *lo, KExpr *hi);
// dst[at + j*dst_step] = src[from + j*src_step] for j in [lo, hi)
void conv_copy(KernelBuilder *kb, KStmt *into, int dst, KExpr *at, int64_t dst_step, int src, KExpr *from,
               int64_t src_step, KExpr *lo, KExpr *hi);
// One run of a row gathered for one tap: for j in [jlo, jhi), column o = j - base of the
// run reads source column o*src_step + offset of the row that starts at src[row_start],
// or 0 where that column falls outside [0, width):
//   dst[at + j*dst_step] = src[row_start + o*src_step + offset]
// The columns inside are worked out once, so the copy itself has no test.
typedef struct ConvRun {
  int src;
  KExpr *row_start, *offset;
  int64_t src_step, width;
} ConvRun;
void conv_gather_run(KernelBuilder *kb, KStmt *into, int dst, KExpr *at, int64_t dst_step, const ConvRun *run,
                     KExpr *base, KExpr *jlo, KExpr *jhi);

// Whether a convolution keeps its image's size (stride 1, padding (k - 1) d / 2): a tap's
// values over a whole image are then the image's plane shifted by one offset, with zeros
// where the shift crosses a border, and a plane is gathered as one copy.
bool conv_same(const ConvCpu *c);
// The plane of size h x w at src[plane] read at (row + dh, column + dw) for each position:
//   dst[at + j*dst_step] = src[plane + pos + dh*w + dw], pos = j - base, for j in [jlo, jhi),
// or 0 where (row + dh, column + dw) leaves the plane.
typedef struct ConvShift {
  int src;
  KExpr *plane, *dh, *dw;
  int64_t h, w;
  int64_t size;         // src's elements: a small plane's shifted reads may stay inside it
} ConvShift;
// Planes of at most this many positions (8x8) are gathered whole where they can be: the
// bounds of a run and its columns outside cost more than its copy on 4x4 and 8x8 images.
enum { CONV_WHOLE_PLANE = 64 };
void conv_gather_plane(KernelBuilder *kb, KStmt *into, int dst, KExpr *at, int64_t dst_step, const ConvShift *sh,
                       KExpr *base, KExpr *jlo, KExpr *jhi);

// Step (ci, tap)'s values for rows (image, position) [r0, r0 + count), into
// dst[at + j*dst_step]: what the forward pass and the weight gradient gather from the image.
void conv_gather_by_image(KernelBuilder *kb, const ConvCpu *c, int image, KStmt *into, int dst, KExpr *at,
                          int64_t dst_step, KExpr *ci, KExpr *tap, KExpr *r0, KExpr *count);

#endif
