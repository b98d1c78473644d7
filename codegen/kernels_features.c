// kernels_features.c: the GPU's feature-cache gather. A trainer that caches the output of a
// frozen prefix (compiler/features.c) keeps it in device memory, one row per training image;
// every step this kernel copies the rows of the batch's images, in the epoch's order, into
// the tensor the rest of the step starts from. One launch a step instead of a copy per row.
// The CPU does the same with memcpy (runtime/trainer_features.c), so the kernel has no CPU
// caller; its CPU meaning is that copy.
#include "lower.h"

Kernel *kernel_feature_gather(Arena *a, const Node *boundary, int64_t batch) {
  int64_t row = node_elems(boundary) / batch;
  const char *layer = boundary->name && boundary->name[0] ? boundary->name : arena_printf(a, "%%%d", boundary->id);
  Kernel *k = kir_kernel(a, "feature_gather",
                         arena_printf(a, "feature cache: the batch's %lld rows of %s '%s' (%lld floats each), "
                                      "gathered from the device's cache in the epoch's order -> %s",
                                      (long long)batch, op_info[boundary->op].name, layer, (long long)row,
                                      shape_str(a, boundary->shape)));
  // The cache's length is the training split's, known when the trainer runs (elems 0).
  int cache = kir_buf(k, "the feature cache, a row per training image", KT_F32, 0);
  int rows = kir_buf(k, "the batch's rows of the cache", KT_I64, batch);
  int out = kir_buf(k, arena_printf(a, "%%%d", boundary->id), KT_F32, batch * row);
  int i = kir_var(k, "i", KT_I64);
  KStmt *each = kir_for(k, k->body, i, kir_int(k, 0), kir_int(k, batch * row), true);
  KExpr *image = kir_load(k, rows, kir_div(k, kir_ref(k, i), row));
  KExpr *at = kir_add(k, kir_mul(k, image, kir_int(k, row)), kir_mod(k, kir_ref(k, i), row));
  kir_store(k, each, out, kir_ref(k, i), kir_load(k, cache, at));
  kir_finish(k);
  return k;
}
