// test_safetensors.c: the safetensors reader and writer, and the .npy writer, on files this
// test writes under $TLC_TEST_TMP. A written file reads back exactly, with the layout the
// format prescribes; hand-encoded F16, BF16, F64 and I64 values convert to the known numbers;
// every truncation of a valid file and every kind of broken header fails with a message that
// names the file and what is wrong. Also built with AddressSanitizer and UBSan (ctest runs
// both), so a read out of bounds on a broken file fails the test.
#include "check.h"
#include "tlcrt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[512];

static const char *tmp_path(const char *name) {
  static char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return path;
}

static void write_bytes(const char *path, const void *bytes, size_t len) {
  FILE *f = fopen(path, "wb");
  CHECK(f && fwrite(bytes, 1, len, f) == len);
  if (f)
    fclose(f);
}

static uint8_t *read_bytes(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  static uint8_t buf[1 << 16];
  *len = fread(buf, 1, sizeof buf, f);
  fclose(f);
  return buf;
}

// A file from a header text and data bytes, with the header length it states.
static void write_raw(const char *path, uint64_t stated, const char *header, const void *data, size_t data_len) {
  size_t hlen = strlen(header);
  uint8_t *b = malloc(8 + hlen + data_len + 1);
  for (int i = 0; i < 8; i++)
    b[i] = (uint8_t)(stated >> (8 * i));
  memcpy(b + 8, header, hlen);
  if (data_len)
    memcpy(b + 8 + hlen, data, data_len);
  write_bytes(path, b, 8 + hlen + data_len);
  free(b);
}

// Opening must fail and the message must name the file and contain want.
static void expect_error(const char *name, const char *header, size_t data_len, const char *want) {
  static uint8_t zeros[4096];
  const char *path = tmp_path(name);
  write_raw(path, strlen(header), header, zeros, data_len);
  TlcSafetensors f;
  TlcError err = {{0}};
  int rc = tlc_safetensors_open(path, &f, &err);
  CHECK(rc != 0);
  CHECK(strstr(err.msg, path) != NULL);
  if (!strstr(err.msg, want))
    fprintf(stderr, "%s: expected '%s' in: %s\n", name, want, err.msg);
  CHECK(strstr(err.msg, want) != NULL);
  CHECK(f.tensors == NULL && f.file == NULL);
  if (rc == 0)
    tlc_safetensors_close(&f);
}

static const float W[6] = {1.5f, -2.25f, 0.0f, 3.0e-8f, 1e30f, -7.0f};
static const int64_t STEPS = 123456789012345LL;
static const float B[4] = {0.5f, 0.25f, -0.125f, 8.0f};

static void test_round_trip(void) {
  TlcSafetensorsEntry in[] = {
      {"layer.weight", 2, {2, 3}, false, W},
      {"layer.num_batches_tracked", 0, {0}, true, &STEPS},
      {"fc.bias", 1, {4}, false, B},
  };
  const char *meta[] = {"format", "pt", "model", "test", NULL};
  const char *path = tmp_path("good.safetensors");
  TlcError err = {{0}};
  CHECK(tlc_safetensors_save(path, in, 3, meta, &err) == 0);
  size_t len = 0;
  const uint8_t *b = read_bytes(path, &len);
  CHECK(b != NULL && len > 8);
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--)
    n = n << 8 | b[i];
  // The header is padded to 8 bytes; the data is exactly the three tensors, in order.
  CHECK(n % 8 == 0 && b[8] == '{');
  CHECK(len == 8 + n + sizeof W + sizeof STEPS + sizeof B);
  CHECK(memcmp(b + 8 + n, W, sizeof W) == 0);
  CHECK(memcmp(b + 8 + n + sizeof W, &STEPS, sizeof STEPS) == 0);
  CHECK(strstr((const char *)b + 8, "\"__metadata__\":{\"format\":\"pt\",\"model\":\"test\"}") != NULL);
  CHECK(tlc_safetensors_sniff(path));

  TlcSafetensors f;
  CHECK(tlc_safetensors_open(path, &f, &err) == 0);
  CHECK(f.count == 3);
  if (f.count != 3)
    return;
  CHECK(strcmp(f.tensors[0].name, "layer.weight") == 0 && f.tensors[0].dtype == TLC_DTYPE_F32);
  CHECK(f.tensors[0].dims == 2 && f.tensors[0].shape[0] == 2 && f.tensors[0].shape[1] == 3);
  CHECK(f.tensors[1].dims == 0 && f.tensors[1].dtype == TLC_DTYPE_I64 && f.tensors[1].count == 1);
  CHECK(f.tensors[2].begin == (int64_t)(sizeof W + sizeof STEPS) && f.tensors[2].end == f.data_bytes);
  float w[6], bias[4];
  int64_t steps = 0;
  CHECK(tlc_safetensors_read(&f, tlc_safetensors_find(&f, "layer.weight"), w, false, &err) == 0);
  CHECK(memcmp(w, W, sizeof W) == 0);
  CHECK(tlc_safetensors_read(&f, &f.tensors[1], &steps, true, &err) == 0 && steps == STEPS);
  CHECK(tlc_safetensors_read(&f, &f.tensors[2], bias, false, &err) == 0 && memcmp(bias, B, sizeof B) == 0);
  // The wrong kind of element is refused by name.
  CHECK(tlc_safetensors_read(&f, &f.tensors[1], w, false, &err) != 0 && strstr(err.msg, "layer.num_batches_tracked"));
  CHECK(tlc_safetensors_read(&f, &f.tensors[0], &steps, true, &err) != 0 && strstr(err.msg, "layer.weight"));
  CHECK(tlc_safetensors_find(&f, "nope") == NULL);
  tlc_safetensors_close(&f);
}

// Values encoded by hand: F16 1, -2, 0.5, 2^-24 (the smallest subnormal), infinity, 65504;
// BF16 1, -3; F64 0.1; I64 -5.
static void test_conversions(void) {
  const uint8_t data[] = {0x00, 0x3c, 0x00, 0xc0, 0x00, 0x38, 0x01, 0x00, 0x00, 0x7c, 0xff, 0x7b,   // F16 x6
                          0x80, 0x3f, 0x40, 0xc0,                                                   // BF16 x2
                          0x9a, 0x99, 0x99, 0x99, 0x99, 0x99, 0xb9, 0x3f,                           // F64 0.1
                          0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};                          // I64 -5
  const char *header = "{\"h\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,12]},"
                       "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[12,16]},"
                       "\"d\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[16,24]},"
                       "\"i\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[24,32]}}";
  const char *path = tmp_path("dtypes.safetensors");
  write_raw(path, strlen(header), header, data, sizeof data);
  TlcSafetensors f;
  TlcError err = {{0}};
  CHECK(tlc_safetensors_open(path, &f, &err) == 0);
  if (f.count != 4)
    return;
  float h[6], bf[2], d;
  int64_t i;
  CHECK(tlc_safetensors_read(&f, tlc_safetensors_find(&f, "h"), h, false, &err) == 0);
  CHECK(h[0] == 1.0f && h[1] == -2.0f && h[2] == 0.5f && h[3] == ldexpf(1, -24) && isinf(h[4]) && h[5] == 65504.0f);
  CHECK(tlc_safetensors_read(&f, tlc_safetensors_find(&f, "b"), bf, false, &err) == 0);
  CHECK(bf[0] == 1.0f && bf[1] == -3.0f);
  CHECK(tlc_safetensors_read(&f, tlc_safetensors_find(&f, "d"), &d, false, &err) == 0 && d == (float)0.1);
  CHECK(tlc_safetensors_read(&f, tlc_safetensors_find(&f, "i"), &i, true, &err) == 0 && i == -5);
  tlc_safetensors_close(&f);
}

// Every proper prefix of a valid file fails cleanly.
static void test_truncations(void) {
  size_t len = 0;
  const uint8_t *b = read_bytes(tmp_path("good.safetensors"), &len);
  CHECK(b != NULL);
  uint8_t *copy = malloc(len);
  memcpy(copy, b, len);
  const char *path = tmp_path("truncated.safetensors");
  int failed = 0;
  for (size_t cut = 0; cut < len; cut++) {
    write_bytes(path, copy, cut);
    TlcSafetensors f;
    TlcError err = {{0}};
    if (tlc_safetensors_open(path, &f, &err) == 0)
      tlc_safetensors_close(&f);
    else if (strstr(err.msg, path))
      failed++;
  }
  CHECK(failed == (int)len);
  free(copy);
}

static void test_broken_headers(void) {
  const char *t = "\"dtype\":\"F32\",\"shape\":[2]";
  char h[512];
  expect_error("not_json", "hello, world", 0, "not valid JSON");
  expect_error("array", "[1, 2, 3]", 0, "JSON but not an object");
  expect_error("empty_header", "", 0, "not valid JSON");
  expect_error("scalar_entry", "{\"a\": 3}", 0, "tensor 'a': its entry is not an object");
  snprintf(h, sizeof h, "{\"a\":{\"dtype\":\"Q8\",\"shape\":[2],\"data_offsets\":[0,8]}}");
  expect_error("unknown_dtype", h, 8, "dtype 'Q8' is not supported");
  snprintf(h, sizeof h, "{\"a\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,8]}}");
  expect_error("dtype_number", h, 8, "dtype is not a string");
  snprintf(h, sizeof h, "{\"a\":{%s,\"data_offsets\":[-4,4]}}", t);
  expect_error("negative_offset", h, 8, "tensor 'a': data_offsets value -4");
  snprintf(h, sizeof h, "{\"a\":{%s,\"data_offsets\":[8,0]}}", t);
  expect_error("reversed_offsets", h, 8, "end before they begin");
  snprintf(h, sizeof h, "{\"a\":{%s,\"data_offsets\":[992,1000]}}", t);
  expect_error("offset_out_of_range", h, 8, "beyond the 8-byte data area");
  snprintf(h, sizeof h, "{\"a\":{%s,\"data_offsets\":[0,8]},\"b\":{%s,\"data_offsets\":[4,12]}}", t, t);
  expect_error("overlap", h, 12, "tensors 'a' [0, 8] and 'b' [4, 12] overlap");
  snprintf(h, sizeof h, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}");
  expect_error("shape_bytes", h, 8, "span 8 bytes, but F32 of 3 elements needs 12");
  snprintf(h, sizeof h, "{\"a\":{%s,\"data_offsets\":[0,8]},\"a\":{%s,\"data_offsets\":[0,8]}}", t, t);
  expect_error("duplicate", h, 8, "duplicate object key");
  snprintf(h, sizeof h, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,2],\"data_offsets\":[0,8]}}");
  expect_error("rank5", h, 8, "tensor 'a' has 5 dimensions");
  snprintf(h, sizeof h, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}");
  expect_error("shape_fraction", h, 8, "shape holds a fraction");
  snprintf(h, sizeof h, "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}");
  expect_error("shape_negative", h, 8, "shape value -2");
  snprintf(h, sizeof h, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776],\"data_offsets\":[0,8]}}");
  expect_error("shape_huge", h, 8, "more than 2^56 elements");
  snprintf(h, sizeof h, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}");
  expect_error("missing_offsets", h, 8, "field data_offsets is missing");
  snprintf(h, sizeof h, "{\"a\":{%s,\"data_offsets\":[0,8],\"extra\":1}}", t);
  expect_error("unknown_field", h, 8, "unknown field 'extra'");
  snprintf(h, sizeof h, "{\"a\":{%s,\"data_offsets\":[0]}}", t);
  expect_error("one_offset", h, 8, "not a list of two integers");
  expect_error("metadata_list", "{\"__metadata__\":[1]}", 0, "__metadata__ is not an object");
  expect_error("metadata_number", "{\"__metadata__\":{\"k\":1}}", 0, "'k' is not a string");
  expect_error("nul_in_name", "{\"a\\u0000b\":{}}", 0, "not valid JSON");
  // Deep nesting: jansson stops at its depth limit, long before the stack does.
  enum { DEPTH = 100000 };
  char *deep = malloc(2 * DEPTH + 16);
  strcpy(deep, "{\"a\":");
  memset(deep + 5, '[', DEPTH);
  memset(deep + 5 + DEPTH, ']', DEPTH);
  strcpy(deep + 5 + 2 * DEPTH, "}");
  expect_error("deep", deep, 0, "not valid JSON");
  free(deep);
}

static void expect_length_error(const char *name, uint64_t stated, size_t header_len, const char *want) {
  char header[64] = "{}";
  const char *path = tmp_path(name);
  write_raw(path, stated, header_len ? header : "", NULL, 0);
  TlcSafetensors f;
  TlcError err = {{0}};
  CHECK(tlc_safetensors_open(path, &f, &err) != 0);
  CHECK(strstr(err.msg, path) && strstr(err.msg, want));
}

static void test_header_lengths(void) {
  expect_length_error("length_huge", UINT64_MAX, 2, "header length 18446744073709551615");
  expect_length_error("length_beyond_file", 1000, 2, "truncated file?");
  expect_length_error("length_over_limit", 200000000, 2, "100 MB limit");
  write_bytes(tmp_path("short"), "abc", 3);
  TlcSafetensors f;
  TlcError err = {{0}};
  CHECK(tlc_safetensors_open(tmp_path("short"), &f, &err) != 0 && strstr(err.msg, "shorter than the 8-byte"));
  CHECK(tlc_safetensors_open(tmp_path("missing.safetensors"), &f, &err) != 0 && strstr(err.msg, "cannot open"));
  CHECK(tlc_safetensors_open(dir, &f, &err) != 0 && strstr(err.msg, "not a regular file"));
  CHECK(!tlc_safetensors_sniff(tmp_path("short")) && !tlc_safetensors_sniff(tmp_path("missing")));
}

// A refused save leaves the old file and no temporary behind.
static void test_save_errors(void) {
  const char *path = tmp_path("good.safetensors");
  size_t len = 0;
  uint8_t before[1024];
  const uint8_t *b = read_bytes(path, &len);
  memcpy(before, b, len);
  TlcSafetensorsEntry twice[] = {{"x", 1, {4}, false, B}, {"x", 1, {4}, false, B}};
  TlcError err = {{0}};
  CHECK(tlc_safetensors_save(path, twice, 2, NULL, &err) != 0 && strstr(err.msg, "tensor 'x' is listed twice"));
  size_t after_len = 0;
  b = read_bytes(path, &after_len);
  CHECK(after_len == len && memcmp(b, before, len) == 0);
  CHECK(tlc_safetensors_save(tmp_path("no/such/dir/w.safetensors"), twice, 1, NULL, &err) != 0 &&
        strstr(err.msg, "cannot create"));
  char tmp[1100];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  CHECK(access(tmp, F_OK) != 0);
}

// The .npy layout numpy.lib.format documents: magic, version 1.0, header to 64 bytes.
static void test_npy(void) {
  const float v[6] = {1, 2, 3, 4, 5, 6};
  const char *path = tmp_path("a.npy");
  TlcError err = {{0}};
  CHECK(tlc_npy_save_f32(path, v, 2, 3, &err) == 0);
  size_t len = 0;
  const uint8_t *b = read_bytes(path, &len);
  // 10 + 61 characters of dict + the newline, padded to 128.
  CHECK(b && len == 128 + sizeof v);
  CHECK(memcmp(b, "\x93NUMPY\x01\x00", 8) == 0 && b[8] + 256 * b[9] == 118 && b[127] == '\n');
  const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  CHECK(memcmp(b + 10, dict, strlen(dict)) == 0 && b[10 + strlen(dict)] == ' ');
  CHECK(memcmp(b + 128, v, sizeof v) == 0);
}

int main(void) {
  const char *base = getenv("TLC_TEST_TMP");
  snprintf(dir, sizeof dir, "%s%s", base ? base : "/tmp/tlc-test-safetensors", SANITIZED_SUFFIX);
  mkdir(base ? base : "/tmp/tlc-test-safetensors", 0777);
  mkdir(dir, 0777);
  test_round_trip();
  test_conversions();
  test_truncations();
  test_broken_headers();
  test_header_lengths();
  test_save_errors();
  test_npy();
  return check_report();
}
