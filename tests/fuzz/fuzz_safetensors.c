// fuzz_safetensors.c: safetensors files (safetensors.c) as --weights reads them.
//
// A file tlc_safetensors_open accepts must describe itself truthfully: every tensor of rank 0..4
// with as many elements as its shape says, its byte span inside the data area and of the size
// its dtype needs, names unique. Each tensor then converts to floats, or to int64s when it is
// I64, and the other kind is refused naming the tensor. Every refusal names the file.
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

static void read_tensor(const TlcSafetensors *f, const TlcStTensor *t) {
  bool as_int = t->dtype == TLC_DTYPE_I64;
  void *dst = malloc((size_t)t->count * 8 + 1);   // count <= the file's size: its span holds it
  fuzz_require(dst != NULL, "out of memory for tensor '%s'", t->name);
  TlcError err = {{0}};
  fuzz_require(tlc_safetensors_read(f, t, dst, as_int, &err) == 0, "tensor '%s' does not convert: %s", t->name,
               err.msg);
  fuzz_touch(dst, (size_t)t->count * (as_int ? 8 : 4));
  fuzz_require(tlc_safetensors_read(f, t, dst, !as_int, &err) != 0, "tensor '%s' converts to both kinds", t->name);
  fuzz_refused(&err, t->name);
  free(dst);
}

void fuzz_one(const char *path, const uint8_t *bytes, size_t size) {
  (void)bytes, (void)size;
  tlc_safetensors_sniff(path);
  TlcSafetensors f;
  TlcError err = {{0}};
  if (tlc_safetensors_open(path, &f, &err) != 0) {
    fuzz_refused(&err, path);
    return;
  }
  fuzz_require(f.data_bytes >= 0 && f.data + f.data_bytes == f.file + f.size, "the data area is not the file's end");
  for (int i = 0; i < f.count; i++) {
    const TlcStTensor *t = &f.tensors[i];
    fuzz_require(t->dims >= 0 && t->dims <= 4, "tensor '%s' has rank %d", t->name, t->dims);
    int64_t count = 1;
    for (int d = 0; d < t->dims; d++)
      count *= t->shape[d];
    fuzz_require(count == t->count, "tensor '%s' counts %lld elements, its shape %lld", t->name,
                 (long long)t->count, (long long)count);
    fuzz_require(t->begin >= 0 && t->begin <= t->end && t->end <= f.data_bytes &&
                     t->end - t->begin == t->count * tlc_dtype_size(t->dtype),
                 "tensor '%s' spans [%lld, %lld) of a %lld-byte data area", t->name, (long long)t->begin,
                 (long long)t->end, (long long)f.data_bytes);
    fuzz_require(tlc_safetensors_find(&f, t->name) == t, "tensor '%s' is not found as itself", t->name);
    read_tensor(&f, t);
  }
  tlc_safetensors_close(&f);
}
