// kir_cost.c: the least device memory a kernel must move, for a roofline's floor
// (tlc --stats=kernels, bench/roofline.py): each global buffer it reads or writes moved once,
// twice when it reads and writes it (an optimizer's update in place). What the kernel's layout
// adds beyond that (a tile read again by other blocks, an uncoalesced access) is what the
// emulator's TLC_EMU_PROFILE measures against it.
#include "kir.h"

#include <stdlib.h>

static int elem_bytes(KType t) {
  switch (t) {
  case KT_I64: return 8;
  case KT_BF16: return 2;
  case KT_BOOL:
  case KT_U8: return 1;
  case KT_F32:
  case KT_U32: break;
  }
  return 4;
}

static void mark_expr(const KExpr *e, bool *read) {
  if (!e)
    return;
  if (e->kind == KX_LOAD)
    read[e->buf] = true;
  mark_expr(e->a, read);
  mark_expr(e->b, read);
  mark_expr(e->c, read);
}

static void mark_stmt(const KStmt *s, bool *read) {
  if (!s)
    return;
  switch (s->kind) {
  case KS_LOAD4: read[s->buf] = true; break;
  case KS_CP_ASYNC:
  case KS_TRANSPOSE: read[s->src_buf] = true; break;
  case KS_TILE:   // c += a * b: all three are read
  case KS_DOT:
    read[s->buf] = read[s->a_buf] = read[s->src_buf] = true;
    break;
  default: break;
  }
  const KExpr *exprs[] = {s->lo, s->hi, s->index, s->value, s->src_index, s->a_index};
  for (size_t i = 0; i < sizeof exprs / sizeof *exprs; i++)
    mark_expr(exprs[i], read);
  for (int i = 0; i < s->nbody; i++)
    mark_stmt(s->body[i], read);
  mark_stmt(s->orelse, read);
}

int64_t kir_min_bytes(const Kernel *k) {
  if (k->min_bytes)
    return k->min_bytes;
  bool *read = calloc((size_t)k->nbufs + 1, sizeof *read);
  if (!read)
    return -1;
  mark_stmt(k->body, read);
  int64_t bytes = 0;
  for (int i = 0; i < k->nbufs; i++) {
    const KBuf *b = &k->bufs[i];
    if (b->space == KSP_GLOBAL)
      bytes += b->elems * elem_bytes(b->type) * ((read[i] ? 1 : 0) + (b->written ? 1 : 0));
  }
  free(read);
  return bytes;
}
