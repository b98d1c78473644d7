// fuzz_checkpoint.c: checkpoints (checkpoint.cc) as --weights and --resume read them.
//
// tlc_checkpoint_read_tensors reads any checkpoint; what it returns must hold together (names,
// ranks 0..4, as many values as each shape needs). Its tensors then serve as the trainer's own
// for tlc_checkpoint_load, which must give back the same values when it accepts the file, and
// once more with one shape changed, which it must refuse naming both shapes. Every refusal
// names the file.
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

static int64_t elements(const TlcTensorRef *t) {
  int64_t n = 1;
  for (int d = 0; d < t->dims; d++)
    n *= t->shape[d];
  return n;
}

static void load_back(const char *path, const TlcTensorList *list) {
  int n = list->count;
  TlcTensorRef *refs = calloc((size_t)n + 1, sizeof *refs);
  for (int i = 0; i < n; i++) {
    refs[i] = list->tensors[i];
    refs[i].data = calloc((size_t)elements(&refs[i]) + 1, sizeof(float));
  }
  TlcCheckpointInfo info = {.graph = "", .graph_hash = tlc_checkpoint_graph_hash(refs, n)};
  TlcError err = {{0}};
  char *graph = NULL;
  if (tlc_checkpoint_load(path, &info, refs, n, &err) != 0) {
    fuzz_refused(&err, path);
  } else {
    fuzz_require(info.graph != NULL && info.images_done >= 0, "a load gave no graph name or a negative position");
    graph = strdup(info.graph);
    for (int i = 0; i < n; i++)
      fuzz_require(!memcmp(refs[i].data, list->tensors[i].data, (size_t)elements(&refs[i]) * sizeof(float)),
                   "tensor '%s' loads other values than it reads", refs[i].name);
  }
  // The same trainer with one shape changed: refused naming both shapes (when the file's graph
  // is this trainer's, else naming both graphs), with nothing written into the tensors.
  if (n > 0 && refs[0].name[0]) {
    refs[0].dims = refs[0].dims < 4 ? refs[0].dims + 1 : 3;
    refs[0].shape[refs[0].dims - 1] = 1;
    float *before = refs[0].data;
    refs[0].data = calloc((size_t)elements(&refs[0]) + 1, sizeof(float));
    info = (TlcCheckpointInfo){.graph = graph ? graph : "", .graph_hash = info.graph_hash};
    fuzz_require(tlc_checkpoint_load(path, &info, refs, n, &err) != 0, "a load took a tensor of another shape");
    fuzz_refused(&err, path);
    fuzz_require(!graph || strstr(err.msg, "has shape"), "a shape that differs is reported as: %s", err.msg);
    free(refs[0].data);
    refs[0].data = before;
  }
  free(graph);
  for (int i = 0; i < n; i++)
    free(refs[i].data);
  free(refs);
}

void fuzz_one(const char *path, const uint8_t *bytes, size_t size) {
  (void)bytes, (void)size;
  TlcTensorList list;
  TlcError err = {{0}};
  if (tlc_checkpoint_read_tensors(path, &list, &err) != 0) {
    fuzz_refused(&err, path);
    fuzz_require(list.tensors == NULL && list.count == 0, "a refused read left tensors behind");
    return;
  }
  for (int i = 0; i < list.count; i++) {
    const TlcTensorRef *t = &list.tensors[i];
    fuzz_require(t->name && t->dims >= 0 && t->dims <= 4, "tensor %d has no name or rank %d", i, t->dims);
    for (int d = 0; d < t->dims; d++)
      fuzz_require(t->shape[d] >= 0, "tensor '%s' has a negative dimension", t->name);
    fuzz_touch(t->name, strlen(t->name));
    fuzz_touch(t->data, (size_t)elements(t) * sizeof(float));
    for (int k = 0; k < i; k++)
      fuzz_require(strcmp(list.tensors[k].name, t->name) != 0, "tensor '%s' is read twice", t->name);
  }
  load_back(path, &list);
  tlc_tensor_list_free(&list);
}
