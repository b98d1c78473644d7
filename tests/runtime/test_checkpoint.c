// test_checkpoint.c: checkpoint.cc. A save/load round trip is bit-exact; every refusal
// (foreign file, truncation, another graph, a changed shape, a missing or extra tensor) is
// reported with its specific message and leaves the caller's tensors untouched; a failed save
// leaves the old file and no temporary behind; and the official flatc decodes what we write.
//
// Scratch files go to $TLC_TEST_TMP. The schema is found through $TLC_SOURCE_DIR or by
// walking up from the current directory; flatc through $TLC_FLATC or PATH.
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "tlcrt.h"

enum { MAX_TENSORS = 8 };

static char tmp_dir[2048];

// A model: tensor specs plus data owned by the test.
typedef struct Model {
  int n;
  TlcTensorRef t[MAX_TENSORS];
} Model;

typedef struct Spec {
  const char *name;
  int dims;
  int64_t shape[4];
} Spec;

static int64_t count_of(const TlcTensorRef *t) {
  int64_t c = 1;
  for (int d = 0; d < t->dims; d++) c *= t->shape[d];
  return c;
}

// Fills tensor data from a seed; the first values are the floats most easily mangled on the
// way through a file (signed zero, a subnormal, infinities, a NaN with a payload).
static void fill(Model *m, uint32_t seed) {
  static const uint32_t special[] = {0x80000000u, 0x00000001u, 0x7f800000u, 0xff800000u,
                                     0x7fc01234u};
  uint32_t x = seed * 2654435761u + 1;
  for (int i = 0; i < m->n; i++) {
    for (int64_t k = 0; k < count_of(&m->t[i]); k++) {
      x = x * 1664525u + 1013904223u;
      uint32_t bits = (i == 0 && k < 5) ? special[k] : (x >> 9) | 0x3f800000u;
      memcpy(&m->t[i].data[k], &bits, sizeof bits);
    }
  }
}

static Model make_model(const Spec *specs, int n, uint32_t seed) {
  Model m = {.n = n};
  for (int i = 0; i < n; i++) {
    m.t[i].name = specs[i].name;
    m.t[i].dims = specs[i].dims;
    memcpy(m.t[i].shape, specs[i].shape, sizeof m.t[i].shape);
    m.t[i].data = calloc((size_t)count_of(&m.t[i]), sizeof(float));
  }
  fill(&m, seed);
  return m;
}

static void free_model(Model *m) {
  for (int i = 0; i < m->n; i++) free(m->t[i].data);
}

static bool same_data(const Model *a, const Model *b) {
  for (int i = 0; i < a->n; i++)
    if (memcmp(a->t[i].data, b->t[i].data, (size_t)count_of(&a->t[i]) * sizeof(float)))
      return false;
  return true;
}

// The model most tests use: a conv, a BatchNorm, a head and a scalar.
static const Spec tiny_specs[] = {
    {"conv1.weight", 4, {8, 3, 3, 3}},
    {"bn1.running_mean", 1, {8}},
    {"fc.weight", 2, {10, 8}},
    {"fc.bias", 1, {10}},
    {"lr_scale", 0, {0}},
};
enum { TINY_N = sizeof tiny_specs / sizeof tiny_specs[0] };

static TlcCheckpointInfo tiny_info(const Model *m) {
  TlcCheckpointInfo info = {.graph = "tiny",
                            .graph_hash = tlc_checkpoint_graph_hash(m->t, m->n),
                            .epoch = 7,
                            .step = 123456789012,
                            .rng = {0x0123456789abcdefull, 0xfedcba9876543210ull},
                            .best_metric = 0.8125};
  return info;
}

static void scratch(char *out, size_t size, const char *name) {
  snprintf(out, size, "%s/%s", tmp_dir, name);
}

static bool expect_error(int rc, const TlcError *err, const char *want) {
  bool ok = rc != 0 && strstr(err->msg, want) != NULL;
  if (!ok) fprintf(stderr, "  rc %d, message \"%s\", wanted \"%s\"\n", rc, err->msg, want);
  return ok;
}

static bool file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

// True when dir holds a "*.tmp.*" file, a temporary a save should have removed.
static bool has_temporary(const char *dir) {
  DIR *d = opendir(dir);
  bool found = false;
  for (struct dirent *e; d && (e = readdir(d));)
    if (strstr(e->d_name, ".tmp.")) found = true;
  if (d) closedir(d);
  return found;
}

static void write_bytes(const char *path, const void *bytes, size_t n) {
  FILE *f = fopen(path, "wb");
  if (f) {
    fwrite(bytes, 1, n, f);
    fclose(f);
  }
}

// Returns the whole file (malloc'd), its size in *n.
static unsigned char *read_bytes(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  *n = 0;
  if (!f) return NULL;
  unsigned char *buf = malloc((1 << 20) + 1);  // room for a terminator
  *n = fread(buf, 1, 1 << 20, f);
  fclose(f);
  return buf;
}

static void test_round_trip(void) {
  Model m = make_model(tiny_specs, TINY_N, 1), back = make_model(tiny_specs, TINY_N, 2);
  TlcCheckpointInfo info = tiny_info(&m), got = {.graph = "tiny", .graph_hash = info.graph_hash};
  TlcError err = {{0}};
  char path[4096];
  scratch(path, sizeof path, "round.ckpt");
  CHECK(tlc_checkpoint_save(path, &info, m.t, m.n, &err) == 0);
  CHECK(tlc_checkpoint_load(path, &got, back.t, back.n, &err) == 0);
  if (err.msg[0]) fprintf(stderr, "  %s\n", err.msg);
  CHECK(same_data(&m, &back));
  CHECK(strcmp(got.graph, "tiny") == 0);
  CHECK(got.graph_hash == info.graph_hash && got.epoch == 7 && got.step == 123456789012);
  CHECK(got.rng[0] == info.rng[0] && got.rng[1] == info.rng[1]);
  CHECK(memcmp(&got.best_metric, &info.best_metric, sizeof(double)) == 0);
  CHECK(!has_temporary(tmp_dir));
  free_model(&m);
  free_model(&back);
}

// Tensors are matched by name: a trainer listing them in another order loads the same file,
// and the fingerprint does not depend on the order either.
static void test_any_order(void) {
  Spec reversed[TINY_N];
  for (int i = 0; i < TINY_N; i++) reversed[i] = tiny_specs[TINY_N - 1 - i];
  Model m = make_model(tiny_specs, TINY_N, 3), r = make_model(reversed, TINY_N, 4);
  TlcCheckpointInfo info = tiny_info(&m), got = info;
  TlcError err = {{0}};
  char path[4096];
  scratch(path, sizeof path, "order.ckpt");
  CHECK(tlc_checkpoint_graph_hash(r.t, r.n) == info.graph_hash);
  CHECK(tlc_checkpoint_save(path, &info, m.t, m.n, &err) == 0);
  CHECK(tlc_checkpoint_load(path, &got, r.t, r.n, &err) == 0);
  for (int i = 0; i < TINY_N; i++)
    CHECK(memcmp(r.t[i].data, m.t[TINY_N - 1 - i].data,
                 (size_t)count_of(&r.t[i]) * sizeof(float)) == 0);
  free_model(&m);
  free_model(&r);
}

static void test_overwrite(void) {
  Model a = make_model(tiny_specs, TINY_N, 5), b = make_model(tiny_specs, TINY_N, 6);
  Model back = make_model(tiny_specs, TINY_N, 7);
  TlcCheckpointInfo info = tiny_info(&a), got = info;
  TlcError err = {{0}};
  char path[4096];
  scratch(path, sizeof path, "overwrite.ckpt");
  CHECK(tlc_checkpoint_save(path, &info, a.t, a.n, &err) == 0);
  info.epoch = 8;
  CHECK(tlc_checkpoint_save(path, &info, b.t, b.n, &err) == 0);
  CHECK(tlc_checkpoint_load(path, &got, back.t, back.n, &err) == 0);
  CHECK(same_data(&b, &back) && got.epoch == 8);
  CHECK(!has_temporary(tmp_dir));
  free_model(&a);
  free_model(&b);
  free_model(&back);
}

// Loads path into a fresh model of the given specs and expects a refusal containing want,
// with the model's data and the info untouched.
static void expect_refused(const char *path, const Spec *specs, int n, const char *graph,
                           const char *want) {
  Model m = make_model(specs, n, 99), before = make_model(specs, n, 99);
  TlcCheckpointInfo info = {.graph = graph, .graph_hash = tlc_checkpoint_graph_hash(m.t, n)};
  TlcCheckpointInfo info_before = info;
  TlcError err = {{0}};
  CHECK(expect_error(tlc_checkpoint_load(path, &info, m.t, n, &err), &err, want));
  CHECK(strncmp(err.msg, path, strlen(path)) == 0);
  CHECK(same_data(&m, &before));
  CHECK(memcmp(&info, &info_before, sizeof info) == 0);
  free_model(&m);
  free_model(&before);
}

static void save_model(const char *path, const Spec *specs, int n, const char *graph) {
  Model m = make_model(specs, n, 11);
  TlcCheckpointInfo info = tiny_info(&m);
  info.graph = graph;
  TlcError err = {{0}};
  CHECK(tlc_checkpoint_save(path, &info, m.t, m.n, &err) == 0);
  free_model(&m);
}

static void test_foreign_files(void) {
  char path[4096], want[4200];
  scratch(path, sizeof path, "notes.txt");
  const char text[] = "these are not the weights you are looking for\n";
  write_bytes(path, text, sizeof text - 1);
  snprintf(want, sizeof want, "%s: not a tlc checkpoint (bad identifier)", path);
  expect_refused(path, tiny_specs, TINY_N, "tiny", want);

  // A real checkpoint with its identifier changed.
  scratch(path, sizeof path, "renamed.ckpt");
  save_model(path, tiny_specs, TINY_N, "tiny");
  size_t n;
  unsigned char *bytes = read_bytes(path, &n);
  memcpy(bytes + 4, "XXXX", 4);
  write_bytes(path, bytes, n);
  free(bytes);
  snprintf(want, sizeof want, "%s: not a tlc checkpoint (bad identifier)", path);
  expect_refused(path, tiny_specs, TINY_N, "tiny", want);

  scratch(path, sizeof path, "no-such.ckpt");
  expect_refused(path, tiny_specs, TINY_N, "tiny", "No such file or directory");
}

// A zip local header whose first entry is named name (the rest of the archive is absent:
// the format is told from the first bytes).
static void write_zip_start(const char *path, const char *name) {
  unsigned char head[30 + 64] = {'P', 'K', 3, 4};
  size_t len = strlen(name);
  head[26] = (unsigned char)len;
  memcpy(head + 30, name, len);
  write_bytes(path, head, sizeof head);
}

// torch.save's two formats are named, and the converter with them (tests/weights/convert.sh
// hands real torch.save files to a trainer); other zips and short files are not taken for them.
static void test_pytorch_files(void) {
  char path[4096], want[2 * 4096 + 256];
  scratch(path, sizeof path, "resnet18.pth");
  write_zip_start(path, "resnet18/data.pkl");
  snprintf(want, sizeof want, "%s: a PyTorch pickle (torch.save's format: a zip archive), which tlc does not "
           "read; convert it to safetensors with tools/convert_weights.py %s OUT.safetensors", path, path);
  expect_refused(path, tiny_specs, TINY_N, "tiny", want);

  scratch(path, sizeof path, "legacy.pth");
  const unsigned char pickle[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8};
  write_bytes(path, pickle, sizeof pickle);
  snprintf(want, sizeof want, "%s: a PyTorch pickle (torch.save's format: a pickle)", path);
  expect_refused(path, tiny_specs, TINY_N, "tiny", want);

  scratch(path, sizeof path, "arrays.npz");
  write_zip_start(path, "x.npy");
  snprintf(want, sizeof want, "%s: not a tlc checkpoint (bad identifier)", path);
  expect_refused(path, tiny_specs, TINY_N, "tiny", want);

  scratch(path, sizeof path, "short.pth");
  write_bytes(path, "PK\x03\x04", 4);
  expect_refused(path, tiny_specs, TINY_N, "tiny", "truncated or corrupt");
}

static void test_other_graph(void) {
  static const Spec other[] = {{"features.0.weight", 4, {16, 3, 3, 3}}, {"fc.bias", 1, {10}}};
  char path[4096];
  scratch(path, sizeof path, "graph.ckpt");
  save_model(path, tiny_specs, TINY_N, "tiny");
  expect_refused(path, other, 2, "mobilenet_v2", "checkpoint of graph 'tiny', this trainer is "
                                                 "'mobilenet_v2'");
}

// The first mismatch in the caller's order is the one reported (fc.weight differs too).
static void test_shape_mismatch(void) {
  static const Spec saved[] = {{"conv1.weight", 4, {64, 3, 7, 7}},
                               {"layer1.0.conv1.weight", 4, {64, 64, 3, 3}},
                               {"fc.weight", 2, {10, 512}},
                               {"fc.bias", 1, {10}}};
  static const Spec here[] = {{"conv1.weight", 4, {64, 3, 7, 7}},
                              {"layer1.0.conv1.weight", 4, {64, 32, 3, 3}},
                              {"fc.weight", 2, {5, 512}},
                              {"fc.bias", 1, {10}}};
  char path[4096], want[4300];
  scratch(path, sizeof path, "shape.ckpt");
  save_model(path, saved, 4, "resnet18");
  snprintf(want, sizeof want, "%s: tensor 'layer1.0.conv1.weight' has shape [64,64,3,3] in the "
           "checkpoint, [64,32,3,3] here", path);
  expect_refused(path, here, 4, "resnet18", want);
  static const Spec rank[] = {{"conv1.weight", 4, {64, 3, 7, 7}},
                              {"layer1.0.conv1.weight", 2, {64, 576}},
                              {"fc.weight", 2, {10, 512}},
                              {"fc.bias", 1, {10}}};
  expect_refused(path, rank, 4, "resnet18", "[64,64,3,3] in the checkpoint, [64,576] here");
}

static void test_missing_and_unexpected(void) {
  char path[4096], want[4300];
  scratch(path, sizeof path, "missing.ckpt");
  save_model(path, tiny_specs, TINY_N - 2, "tiny");  // without fc.bias and lr_scale
  snprintf(want, sizeof want, "%s: tensor 'fc.bias' is missing", path);
  expect_refused(path, tiny_specs, TINY_N, "tiny", want);

  Spec extra[TINY_N + 1];
  memcpy(extra, tiny_specs, sizeof tiny_specs);
  extra[TINY_N] = (Spec){"foo", 1, {3}};
  scratch(path, sizeof path, "extra.ckpt");
  save_model(path, extra, TINY_N + 1, "tiny");
  snprintf(want, sizeof want, "%s: unexpected tensor 'foo'", path);
  expect_refused(path, tiny_specs, TINY_N, "tiny", want);
}

// Every proper prefix of a checkpoint (there are hundreds, well over 20 lengths) is refused
// as truncated; a file with one byte changed anywhere is loaded or refused, never crashes.
static void test_truncated(void) {
  char path[4096], cut[4096], want[4300];
  scratch(path, sizeof path, "whole.ckpt");
  scratch(cut, sizeof cut, "cut.ckpt");
  save_model(path, tiny_specs, TINY_N, "tiny");
  size_t n;
  unsigned char *bytes = read_bytes(path, &n);
  CHECK(n > 20);
  int refused = 0;
  for (size_t len = 0; len < n; len++) {
    write_bytes(cut, bytes, len);
    snprintf(want, sizeof want, "%s: truncated or corrupt (verification failed, %zu bytes)",
             cut, len);
    Model m = make_model(tiny_specs, TINY_N, 99), before = make_model(tiny_specs, TINY_N, 99);
    TlcCheckpointInfo info = tiny_info(&m);
    TlcError err = {{0}};
    int rc = tlc_checkpoint_load(cut, &info, m.t, m.n, &err);
    bool ok = expect_error(rc, &err, want) && same_data(&m, &before);
    refused += ok;
    if (!ok) fprintf(stderr, "  a file cut to %zu of %zu bytes was not refused cleanly\n", len, n);
    free_model(&m);
    free_model(&before);
  }
  CHECK(refused == (int)n);
  for (size_t k = 0; k < n; k++) {
    bytes[k] ^= 0xff;
    write_bytes(cut, bytes, n);
    bytes[k] ^= 0xff;
    Model m = make_model(tiny_specs, TINY_N, 99);
    TlcCheckpointInfo info = tiny_info(&m);
    TlcError err = {{0}};
    (void)tlc_checkpoint_load(cut, &info, m.t, m.n, &err);
    free_model(&m);
  }
  CHECK(true);  // reaching here means no byte flip crashed the loader
  free(bytes);
}

// A save that fails must leave the old file and no temporary.
static void test_failed_save(void) {
  char dir[4096], path[4200], sub[4200];
  snprintf(dir, sizeof dir, "%s/readonly", tmp_dir);
  mkdir(dir, 0755);
  snprintf(path, sizeof path, "%s/last.ckpt", dir);
  Model old = make_model(tiny_specs, TINY_N, 21), fresh = make_model(tiny_specs, TINY_N, 22);
  Model back = make_model(tiny_specs, TINY_N, 23);
  TlcCheckpointInfo info = tiny_info(&old);
  TlcError err = {{0}};
  CHECK(tlc_checkpoint_save(path, &info, old.t, old.n, &err) == 0);
  chmod(dir, 0555);
  if (access(dir, W_OK) == 0) {
    printf("skipped: the read-only directory case (running as root, it stays writable)\n");
  } else {
    CHECK(expect_error(tlc_checkpoint_save(path, &info, fresh.t, fresh.n, &err), &err,
                       "Permission denied"));
    CHECK(strncmp(err.msg, path, strlen(path)) == 0);
    CHECK(tlc_checkpoint_load(path, &info, back.t, back.n, &err) == 0 && same_data(&old, &back));
    CHECK(!has_temporary(dir));
  }
  chmod(dir, 0755);

  // Works as root too: the rename over a non-empty directory fails after the write.
  snprintf(sub, sizeof sub, "%s/taken.ckpt", dir);
  mkdir(sub, 0755);
  snprintf(path, sizeof path, "%s/taken.ckpt/keep", dir);
  write_bytes(path, "x", 1);
  CHECK(expect_error(tlc_checkpoint_save(sub, &info, fresh.t, fresh.n, &err), &err, "rename"));
  CHECK(strncmp(err.msg, sub, strlen(sub)) == 0);
  CHECK(file_exists(path) && !has_temporary(dir));

  snprintf(path, sizeof path, "%s/no/such/dir/last.ckpt", tmp_dir);
  CHECK(expect_error(tlc_checkpoint_save(path, &info, fresh.t, fresh.n, &err), &err,
                     "No such file or directory"));
  free_model(&old);
  free_model(&fresh);
  free_model(&back);
}

static void test_bad_arguments(void) {
  static const Spec specs[] = {{"w", 1, {2}}, {"w", 1, {2}}, {"v", 4, {1, 1, 1, 1}}};
  Model m = make_model(specs, 3, 1);
  TlcCheckpointInfo info = {.graph = "bad"};
  TlcError err = {{0}};
  char path[4096];
  scratch(path, sizeof path, "bad.ckpt");
  CHECK(expect_error(tlc_checkpoint_save(path, &info, m.t, 2, &err), &err, "'w' is listed twice"));
  m.t[2].dims = 5;
  CHECK(expect_error(tlc_checkpoint_save(path, &info, m.t + 2, 1, &err), &err, "5 dimensions"));
  m.t[2].dims = 4;
  m.t[2].shape[1] = -1;
  CHECK(expect_error(tlc_checkpoint_save(path, &info, m.t + 2, 1, &err), &err,
                     "impossible shape [1,-1,1,1]"));
  CHECK(!file_exists(path) && !has_temporary(tmp_dir));
  free_model(&m);
}

// $TLC_SOURCE_DIR/runtime/checkpoint.fbs, or the first one found walking up from here.
static bool find_schema(char *out, size_t size) {
  const char *src = getenv("TLC_SOURCE_DIR");
  if (src && *src) {
    snprintf(out, size, "%s/runtime/checkpoint.fbs", src);
    return file_exists(out);
  }
  char dir[4096];
  if (!getcwd(dir, sizeof dir)) return false;
  for (;;) {
    snprintf(out, size, "%s/runtime/checkpoint.fbs", dir);
    if (file_exists(out)) return true;
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return false;
    *slash = '\0';
  }
}

static void test_flatc_reads_it(void) {
  char schema[4200], path[4096], out_dir[4096], json[4200], cmd[16384];
  if (!find_schema(schema, sizeof schema)) {
    fprintf(stderr, "  runtime/checkpoint.fbs not found: set TLC_SOURCE_DIR\n");
    CHECK(false);
    return;
  }
  const char *flatc = getenv("TLC_FLATC") ? getenv("TLC_FLATC") : "flatc";
  scratch(path, sizeof path, "flatc.ckpt");
  scratch(out_dir, sizeof out_dir, "flatc-json");
  save_model(path, tiny_specs, TINY_N, "tiny");
  snprintf(json, sizeof json, "%s/flatc.json", out_dir);
  remove(json);
  snprintf(cmd, sizeof cmd, "'%s' --json --strict-json --raw-binary -o '%s' '%s' -- '%s'", flatc,
           out_dir, schema, path);
  int rc = system(cmd);
  if (rc != 0) fprintf(stderr, "  flatc failed (status %d): %s\n", rc, cmd);
  CHECK(rc == 0);
  size_t n;
  char *text = (char *)read_bytes(json, &n);
  CHECK(text != NULL);
  if (!text) return;
  text[n] = '\0';
  CHECK(strstr(text, "\"epoch\": 7") != NULL);
  CHECK(strstr(text, "\"graph\": \"tiny\"") != NULL);
  for (int i = 0; i < TINY_N; i++) {
    char name[256];
    snprintf(name, sizeof name, "\"name\": \"%s\"", tiny_specs[i].name);
    CHECK(strstr(text, name) != NULL);
  }
  free(text);
}

static void make_tmp_dir(void) {
  const char *env = getenv("TLC_TEST_TMP");
  snprintf(tmp_dir, sizeof tmp_dir, "%s", env && *env ? env : "tmp-test_checkpoint");
  for (char *p = tmp_dir + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    mkdir(tmp_dir, 0755);
    *p = '/';
  }
  if (mkdir(tmp_dir, 0755) != 0 && errno != EEXIST) perror(tmp_dir);
}

int main(void) {
  make_tmp_dir();
  test_round_trip();
  test_any_order();
  test_overwrite();
  test_foreign_files();
  test_pytorch_files();
  test_other_graph();
  test_shape_mismatch();
  test_missing_and_unexpected();
  test_truncated();
  test_failed_save();
  test_bad_arguments();
  test_flatc_reads_it();
  return check_report();
}
