// kernels_conv_phases.c: a strided convolution's input split by stride phase (conv2d_phases,
// compiler/schedule.c), the layout its CPU products gather from where the output is the
// input's size divided by the stride (conv_reads_phases). Plane (n, ci, rh*s + rw) of the
// split holds x[n, ci, qh*s + rh, qw*s + rw] at (qh, qw), zeros past the image: a tap
// (kh, kw) then reads phase ((kh*d - pad) mod s, (kw*d - pad) mod s) shifted by whole
// positions, one contiguous copy per plane instead of a copy s floats apart per output row.
#include "conv_cpu.h"

int conv_phases_input(const KernelBuilder *kb, ConvCpu *c, int image) {
  const Node *n = kb->node;
  for (int i = 0; i < n->nin; i++)
    if (n->in[i]->op == OP_CONV2D_PHASES) {
      c->phases = true;
      return kernel_input(kb, n->in[i]);
    }
  return image;
}

// Element (plane, rh, rw, qh, qw) of the split, in the order stored.
static KExpr *phase_value(KernelBuilder *kb, KExpr *plane, KExpr *phase, KExpr *qh, KExpr *qw) {
  Kernel *k = kb->k;
  Shape x = kb->node->in[0]->shape;
  int64_t s = kb->node->attr.conv.stride;
  KExpr *ih = kir_add(k, kir_mul(k, qh, kir_int(k, s)), kir_div(k, phase, s));
  KExpr *iw = kir_add(k, kir_mul(k, qw, kir_int(k, s)), kir_mod(k, phase, s));
  KExpr *inside = kir_and(k, kir_lt(k, ih, kir_int(k, x.h)), kir_lt(k, iw, kir_int(k, x.w)));
  KExpr *at = kir_add(k, kir_mul(k, kir_add(k, kir_mul(k, plane, kir_int(k, x.h)), ih), kir_int(k, x.w)), iw);
  return kernel_load_if(k, kb->in[0], inside, at);
}

// x's row ih of an image plane (from) spread over the s phases (rh, rw), row qh of each
// (phase rw's at to + rw*Hq*Wq): read whole, s floats a column of the split, which LLVM
// vectorises as one interleaved load; the last column of an odd width is the row's
// remainder, zeros past it.
static void spread_row(KernelBuilder *kb, KStmt *into, KExpr *from, KExpr *to) {
  Kernel *k = kb->k;
  Shape x = kb->node->in[0]->shape, p = kb->node->shape;
  int64_t s = kb->node->attr.conv.stride, whole = x.w / s;
  int qw;
  KStmt *cols = kernel_loop(kb, into, "qw", whole, &qw);
  for (int64_t rw = 0; rw < s; rw++) {
    KExpr *at = kir_add(k, kir_add(k, to, kir_int(k, rw * p.h * p.w)), kir_ref(k, qw));
    kir_store(k, cols, kb->out, at, kir_load(k, kb->in[0], kir_add(k, from, kir_add(k, kir_mul(k, kir_ref(k, qw), kir_int(k, s)), kir_int(k, rw)))));
  }
  for (int64_t rw = 0; rw < s && whole < p.w; rw++) {
    KExpr *at = kir_add(k, to, kir_int(k, rw * p.h * p.w + whole));
    KExpr *v = whole * s + rw < x.w ? kir_load(k, kb->in[0], kir_add(k, from, kir_int(k, whole * s + rw))) : kir_float(k, 0);
    kir_store(k, into, kb->out, at, v);
  }
}

// On the CPU a task makes row qh of the s phases (rh, *) of an image plane from x's row
// qh*s + rh, or zeros past the image; on the GPU a thread makes an element.
Kernel *kernel_conv2d_phases(KernelBuilder *kb) {
  Kernel *k = kb->k;
  Shape x = kb->node->in[0]->shape, p = kb->node->shape;
  int64_t s = kb->node->attr.conv.stride, phases = s * s;
  if (kb->target->gpu) {
    int e;
    KStmt *all = kernel_loop(kb, k->body, "e", shape_elems(p), &e);
    KExpr *row = kir_div(k, kir_ref(k, e), p.w), *qw = kir_mod(k, kir_ref(k, e), p.w);
    KExpr *qh = kir_mod(k, row, p.h), *plane = kir_div(k, row, p.h);
    kir_store(k, all, kb->out, kir_ref(k, e), phase_value(kb, kir_div(k, plane, phases), kir_mod(k, plane, phases), qh, qw));
    return k;
  }
  int r, rw, z;
  KStmt *rows = kernel_loop(kb, k->body, "row", x.n * x.c * s * p.h, &r);   // (image plane, rh, qh)
  KExpr *image_plane = kernel_let(kb, rows, "image_plane", kir_div(k, kir_ref(k, r), s * p.h));
  KExpr *rh = kernel_let(kb, rows, "rh", kir_mod(k, kir_div(k, kir_ref(k, r), p.h), s));
  KExpr *qh = kernel_let(kb, rows, "qh", kir_mod(k, kir_ref(k, r), p.h));
  KExpr *ih = kernel_let(kb, rows, "ih", kir_add(k, kir_mul(k, qh, kir_int(k, s)), rh));
  KExpr *first = kir_add(k, kir_mul(k, image_plane, kir_int(k, phases)), kir_mul(k, rh, kir_int(k, s)));   // phase (rh, 0)
  KExpr *to = kernel_let(kb, rows, "to", kir_mul(k, kir_add(k, kir_mul(k, first, kir_int(k, p.h)), qh), kir_int(k, p.w)));
  KStmt *past;
  KStmt *inside = kir_if(k, rows, kir_lt(k, ih, kir_int(k, x.h)), &past);
  spread_row(kb, inside, kernel_let(kb, inside, "from", kir_mul(k, kir_add(k, kir_mul(k, image_plane, kir_int(k, x.h)), ih), kir_int(k, x.w))), to);
  KStmt *planes = kernel_loop(kb, past, "rw", s, &rw);
  KStmt *zeros = kernel_loop(kb, planes, "qw", p.w, &z);
  KExpr *at = kir_add(k, to, kir_add(k, kir_mul(k, kir_ref(k, rw), kir_int(k, p.h * p.w)), kir_ref(k, z)));
  kir_store(k, zeros, kb->out, at, kir_float(k, 0));
  return k;
}
