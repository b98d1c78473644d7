// test_misaligned.c: checkpoints and kernel bundles whose 8-byte values do not lie on 8-byte
// boundaries. The FlatBuffers Verifier checks a vector's length word for 4-byte alignment
// only, so a checkpoint written by hand (below, byte by byte) can hold its shape and rng
// vectors at addresses that are 4 mod 8, and it verifies; a bundle can be handed over at any
// address. Both must read back exactly, and without a misaligned load: this test also runs
// as test_misaligned_sanitized, under UBSan's alignment check, which aborts on one.
#include "check.h"
#include "tlcrt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char tmp_dir[2048];

// A little-endian byte buffer written at given offsets.
typedef struct Bytes {
  uint8_t b[512];
  size_t n;
} Bytes;

static void put(Bytes *x, size_t at, uint64_t v, int size) {
  for (int i = 0; i < size; i++)
    x->b[at + (size_t)i] = (uint8_t)(v >> (8 * i));
  if (at + (size_t)size > x->n)
    x->n = at + (size_t)size;
}

// An offset field at `at` pointing forward to `target` (FlatBuffers' uoffset_t).
static void put_offset(Bytes *x, size_t at, size_t target) { put(x, at, target - at, 4); }

static size_t align4(size_t at) { return (at + 3) & ~(size_t)3; }

// A vector of 8-byte values whose elements start at an address that is 4 mod 8 (misaligned)
// or 0 mod 8, at or after `at`; returns the end.
static size_t put_vector64(Bytes *x, size_t at, const uint64_t *v, int n, bool misaligned, size_t *where) {
  at = align4(at);
  if (((at + 4) % 8 == 4) != misaligned)
    at += 4;
  *where = at;
  put(x, at, (uint64_t)n, 4);
  for (int i = 0; i < n; i++)
    put(x, at + 4 + 8 * (size_t)i, v[i], 8);
  return at + 4 + 8 * (size_t)n;
}

// A version-1 checkpoint with one tensor "w" of shape [2, 3], its shape and rng vectors placed
// as asked. Tables and vtables follow checkpoint.fbs's field order.
static void craft(Bytes *x, uint64_t graph_hash, const uint64_t rng[2], const float *values, bool misaligned) {
  memset(x, 0, sizeof *x);
  // 0: root offset; 4: identifier; 8: the Checkpoint vtable (8 fields); 32: its table.
  put_offset(x, 0, 32);
  memcpy(x->b + 4, "TLCK", 4);
  static const uint16_t vt[] = {20, 40, 4, 0, 8, 24, 32, 16, 0, 20};  // sizes, then version,
  for (int i = 0; i < 10; i++)                                        // graph, hash, epoch, step,
    put(x, 8 + 2 * (size_t)i, vt[i], 2);                               // rng, best, tensors
  put(x, 32, 32 - 8, 4);                 // the table's offset back to its vtable
  put(x, 36, 1, 4);                      // version
  put(x, 40, graph_hash, 8);
  put(x, 56, 3, 4);                      // epoch
  put(x, 64, 77, 8);                     // step
  size_t rng_at, shape_at, end = put_vector64(x, 72, rng, 2, misaligned, &rng_at);
  put_offset(x, 48, rng_at);
  // The tensor list (one), the Tensor's vtable and table, its name, shape and data.
  size_t list = align4(end), tvt = list + 8, table = tvt + 12;
  put_offset(x, 52, list);
  put(x, list, 1, 4);
  put_offset(x, list + 4, table);
  static const uint16_t tv[] = {10, 16, 4, 8, 12};
  for (int i = 0; i < 5; i++)
    put(x, tvt + 2 * (size_t)i, tv[i], 2);
  put(x, table, table - tvt, 4);
  size_t name = table + 16;
  put_offset(x, table + 4, name);
  put(x, name, 1, 4);
  memcpy(x->b + name + 4, "w", 2);
  const uint64_t shape[2] = {2, 3};
  end = put_vector64(x, name + 6, shape, 2, misaligned, &shape_at);
  put_offset(x, table + 8, shape_at);
  size_t data = align4(end);
  put_offset(x, table + 12, data);
  put(x, data, 6, 4);
  memcpy(x->b + data + 4, values, 6 * sizeof(float));
  x->n = data + 4 + 6 * sizeof(float);
}

static void test_checkpoint(bool misaligned) {
  const float values[6] = {1.5f, -2, 3.25f, 0, 1e-30f, 7};
  const uint64_t rng[2] = {0x0123456789abcdefull, 0xfedcba9876543210ull};
  float got[6] = {0};
  TlcTensorRef ref = {.name = "w", .dims = 2, .shape = {2, 3}, .data = got};
  uint64_t hash = tlc_checkpoint_graph_hash(&ref, 1);
  Bytes x;
  craft(&x, hash, rng, values, misaligned);
  char path[2200];
  snprintf(path, sizeof path, "%s/%s.ckpt", tmp_dir, misaligned ? "misaligned" : "aligned");
  FILE *f = fopen(path, "wb");
  CHECK(f && fwrite(x.b, 1, x.n, f) == x.n && fclose(f) == 0);
  TlcCheckpointInfo info = {.graph = "", .graph_hash = hash};
  TlcError err = {{0}};
  int rc = tlc_checkpoint_load(path, &info, &ref, 1, &err);
  if (rc)
    fprintf(stderr, "  %s\n", err.msg);
  CHECK(rc == 0 && memcmp(got, values, sizeof got) == 0);
  CHECK(info.rng[0] == rng[0] && info.rng[1] == rng[1] && info.epoch == 3 && info.step == 77);
  TlcTensorList list;
  CHECK(tlc_checkpoint_read_tensors(path, &list, &err) == 0);
  CHECK(list.count == 1 && list.tensors[0].dims == 2 && list.tensors[0].shape[0] == 2 && list.tensors[0].shape[1] == 3);
  tlc_tensor_list_free(&list);
  // A shape that differs is reported with the file's shape, read the same way.
  float other[4];
  TlcTensorRef wrong = {.name = "w", .dims = 2, .shape = {2, 2}, .data = other};
  info = (TlcCheckpointInfo){.graph = "", .graph_hash = hash};
  CHECK(tlc_checkpoint_load(path, &info, &wrong, 1, &err) != 0 && strstr(err.msg, "shape [2,3] in the checkpoint"));
}

// A bundle read from an address that is 4 mod 8.
static void test_bundle(void) {
  TlcBundleFunction fn = {"k0", "extern \"C\" __global__ void k0() {}"};
  TlcBundleLaunch launch = {"k0", "a launch", 0, 123456789, 128, 4096};
  TlcBundle b = {.arch = "sm_90", .nvrtc = "13.0", .prelude = "", .functions = &fn, .nfunctions = 1,
                 .launches = &launch, .nlaunches = 1, .ptx = "", .ptx_size = 0};
  uint8_t *data;
  size_t size;
  TlcError err;
  CHECK(tlc_bundle_build(&b, &data, &size, &err) == 0);
  uint64_t *room = malloc(size + 16);
  uint8_t *odd = (uint8_t *)room + 4;
  memcpy(odd, data, size);
  TlcBundle got;
  CHECK(tlc_bundle_read(odd, size, &got, &err) == 0);
  CHECK(got.nlaunches == 1 && got.launches[0].grid == 123456789 && got.launches[0].shared == 4096 &&
        got.launches[0].block == 128 && strcmp(got.functions[0].name, "k0") == 0);
  tlc_bundle_free(&got);
  free(room);
  free(data);
}

int main(void) {
  const char *env = getenv("TLC_TEST_TMP");
  snprintf(tmp_dir, sizeof tmp_dir, "%s", env && *env ? env : "/tmp/tlc-test-misaligned");
  if (mkdir(tmp_dir, 0755) != 0 && errno != EEXIST)
    perror(tmp_dir);
  test_checkpoint(false);
  test_checkpoint(true);
  test_bundle();
  return check_report();
}
