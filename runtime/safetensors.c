// safetensors.c: the safetensors format, read and written.
//
// A file is an 8-byte little-endian header length N, N bytes of a JSON object
// {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//  "__metadata__": {"key": "value", ...}}, then the data area; offsets count from the
// start of the data area.
//
// Contract (tlcrt.h, section "safetensors.c"):
// - tlc_safetensors_open reads the whole file and trusts nothing in it before checking it:
//   the header length against the file, the JSON (parsed by jansson, which also refuses
//   duplicate names and nests at most 2048 deep), every entry's fields, dtype, rank (0 to 4)
//   and shape, the byte span against shape x element size, every span inside the data area,
//   and no two spans overlapping. Every message names the file and the tensor or field.
// - tlc_safetensors_read converts one tensor into the caller's floats (F32, F16, BF16, F64)
//   or int64s (I64), element by element with memcpy, since spans need not be aligned.
// - tlc_safetensors_save writes F32 and I64 tensors in the caller's order, the header padded
//   with spaces to a multiple of 8 bytes (as the format's own writer does, so that the data
//   is aligned), atomically (tlc_write_atomic).
#include "tlcrt.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian, as this host must be");

enum { MAX_DIMS = 4 };
// The format's reference reader refuses headers beyond 100 MB; so does this one.
static const uint64_t MAX_HEADER = 100u * 1000 * 1000;
static const char METADATA[] = "__metadata__";

static const struct {
  const char *name;
  TlcDtype dtype;
  int size;
} DTYPES[] = {
    {"F32", TLC_DTYPE_F32, 4}, {"F16", TLC_DTYPE_F16, 2}, {"BF16", TLC_DTYPE_BF16, 2},
    {"F64", TLC_DTYPE_F64, 8}, {"I64", TLC_DTYPE_I64, 8},
};

int tlc_dtype_size(TlcDtype d) {
  for (size_t i = 0; i < sizeof DTYPES / sizeof *DTYPES; i++)
    if (DTYPES[i].dtype == d)
      return DTYPES[i].size;
  return 0;
}

const char *tlc_dtype_name(TlcDtype d) {
  for (size_t i = 0; i < sizeof DTYPES / sizeof *DTYPES; i++)
    if (DTYPES[i].dtype == d)
      return DTYPES[i].name;
  return "?";
}

//
// Reading the file
//

// The whole file in new memory. Refuses what is not a regular file.
static int read_whole(const char *path, uint8_t **out, int64_t *size_out, TlcError *err) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return tlc_fail(err, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(f);
    return tlc_fail(err, "%s: not a regular file", path);
  }
  size_t size = (size_t)st.st_size;
  uint8_t *bytes = malloc(size ? size : 1);
  if (!bytes) {
    fclose(f);
    return tlc_fail(err, "%s: out of memory reading %zu bytes", path, size);
  }
  size_t got = fread(bytes, 1, size, f);
  int failed = ferror(f);
  fclose(f);
  if (failed) {
    free(bytes);
    return tlc_fail(err, "%s: cannot read", path);
  }
  *out = bytes;
  *size_out = (int64_t)got;  // a file that shrank meanwhile is judged by what was read
  return 0;
}

//
// Checking the header
//

// A JSON integer in [0, max], else a message naming the tensor and the field.
static int get_count(const char *path, const char *name, const char *field, const json_t *v, int64_t max,
                     int64_t *out, TlcError *err) {
  if (!json_is_integer(v))
    return tlc_fail(err, "%s: tensor '%s': %s holds a %s, not an integer", path, name, field,
                    json_is_real(v) ? "fraction" : "non-number");
  json_int_t i = json_integer_value(v);
  if (i < 0 || i > max)
    return tlc_fail(err, "%s: tensor '%s': %s value %lld is outside [0, %lld]", path, name, field, (long long)i,
                    (long long)max);
  *out = (int64_t)i;
  return 0;
}

static int parse_dtype(const char *path, const char *name, const json_t *v, TlcStTensor *t, TlcError *err) {
  const char *s = json_string_value(v);
  if (!s)
    return tlc_fail(err, "%s: tensor '%s': dtype is not a string", path, name);
  for (size_t i = 0; i < sizeof DTYPES / sizeof *DTYPES; i++) {
    if (strcmp(s, DTYPES[i].name) == 0) {
      t->dtype = DTYPES[i].dtype;
      return 0;
    }
  }
  return tlc_fail(err, "%s: tensor '%s': dtype '%.40s' is not supported (F32, F16, BF16, F64, I64)", path, name, s);
}

// Shape and element count; the count stays below 2^56 so that count * 8 cannot overflow.
static int parse_shape(const char *path, const char *name, const json_t *v, TlcStTensor *t, TlcError *err) {
  if (!json_is_array(v))
    return tlc_fail(err, "%s: tensor '%s': shape is not a list", path, name);
  size_t dims = json_array_size(v);
  if (dims > MAX_DIMS)
    return tlc_fail(err, "%s: tensor '%s' has %zu dimensions; tlc's tensors have at most %d", path, name, dims,
                    MAX_DIMS);
  const int64_t limit = (int64_t)1 << 56;
  t->dims = (int)dims;
  t->count = 1;
  for (size_t d = 0; d < dims; d++) {
    if (get_count(path, name, "shape", json_array_get(v, d), limit, &t->shape[d], err) != 0)
      return -1;
    if (t->shape[d] && t->count > limit / t->shape[d])
      return tlc_fail(err, "%s: tensor '%s': shape has more than 2^56 elements", path, name);
    t->count *= t->shape[d];
  }
  return 0;
}

static int parse_offsets(const char *path, const char *name, const json_t *v, int64_t data_bytes, TlcStTensor *t,
                         TlcError *err) {
  if (!json_is_array(v) || json_array_size(v) != 2)
    return tlc_fail(err, "%s: tensor '%s': data_offsets is not a list of two integers", path, name);
  if (get_count(path, name, "data_offsets", json_array_get(v, 0), INT64_MAX, &t->begin, err) != 0 ||
      get_count(path, name, "data_offsets", json_array_get(v, 1), INT64_MAX, &t->end, err) != 0)
    return -1;
  if (t->end < t->begin)
    return tlc_fail(err, "%s: tensor '%s': data_offsets [%" PRId64 ", %" PRId64 "] end before they begin", path,
                    name, t->begin, t->end);
  if (t->end > data_bytes)
    return tlc_fail(err, "%s: tensor '%s': data_offsets [%" PRId64 ", %" PRId64 "] reach beyond the %" PRId64
                    "-byte data area (truncated file?)", path, name, t->begin, t->end, data_bytes);
  int64_t want = t->count * tlc_dtype_size(t->dtype);
  if (t->end - t->begin != want)
    return tlc_fail(err, "%s: tensor '%s': data_offsets [%" PRId64 ", %" PRId64 "] span %" PRId64
                    " bytes, but %s of %" PRId64 " elements needs %" PRId64, path, name, t->begin, t->end,
                    t->end - t->begin, tlc_dtype_name(t->dtype), t->count, want);
  return 0;
}

// One "name": {"dtype", "shape", "data_offsets"} entry; any other field is refused.
static int parse_entry(const char *path, const char *name, const json_t *v, int64_t data_bytes, TlcStTensor *t,
                       TlcError *err) {
  if (!json_is_object(v))
    return tlc_fail(err, "%s: tensor '%s': its entry is not an object", path, name);
  const char *key;
  const json_t *field;
  json_object_foreach((json_t *)v, key, field) {
    if (strcmp(key, "dtype") && strcmp(key, "shape") && strcmp(key, "data_offsets"))
      return tlc_fail(err, "%s: tensor '%s': unknown field '%.40s'", path, name, key);
  }
  const char *need[] = {"dtype", "shape", "data_offsets"};
  for (int i = 0; i < 3; i++)
    if (!json_object_get(v, need[i]))
      return tlc_fail(err, "%s: tensor '%s': field %s is missing", path, name, need[i]);
  if (parse_dtype(path, name, json_object_get(v, "dtype"), t, err) != 0 ||
      parse_shape(path, name, json_object_get(v, "shape"), t, err) != 0 ||
      parse_offsets(path, name, json_object_get(v, "data_offsets"), data_bytes, t, err) != 0)
    return -1;
  t->name = strdup(name);
  return t->name ? 0 : tlc_fail(err, "%s: out of memory", path);
}

static int check_metadata(const char *path, const json_t *v, TlcError *err) {
  if (!json_is_object(v))
    return tlc_fail(err, "%s: %s is not an object", path, METADATA);
  const char *key;
  const json_t *value;
  json_object_foreach((json_t *)v, key, value) {
    if (!json_is_string(value))
      return tlc_fail(err, "%s: %s: '%.40s' is not a string", path, METADATA, key);
  }
  return 0;
}

static int by_begin(const void *a, const void *b) {
  const TlcStTensor *x = a, *y = b;
  return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : x->end < y->end ? -1 : x->end > y->end;
}

// Sorted by begin, a span overlaps another iff it starts before the previous one ends.
// Empty tensors occupy no bytes and overlap nothing.
static int check_overlap(const char *path, TlcStTensor *sorted, int n, TlcError *err) {
  qsort(sorted, (size_t)n, sizeof *sorted, by_begin);
  const TlcStTensor *prev = NULL;
  for (int i = 0; i < n; i++) {
    if (sorted[i].begin == sorted[i].end)
      continue;
    if (prev && sorted[i].begin < prev->end)
      return tlc_fail(err, "%s: tensors '%s' [%" PRId64 ", %" PRId64 "] and '%s' [%" PRId64 ", %" PRId64
                      "] overlap in the data area", path, prev->name, prev->begin, prev->end, sorted[i].name,
                      sorted[i].begin, sorted[i].end);
    prev = &sorted[i];
  }
  return 0;
}

static int parse_header(const char *path, json_t *root, int64_t data_bytes, TlcSafetensors *f, TlcError *err) {
  size_t n = json_object_size(root);
  f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
  if (!f->tensors)
    return tlc_fail(err, "%s: out of memory", path);
  const char *key;
  json_t *value;
  json_object_foreach(root, key, value) {
    if (strcmp(key, METADATA) == 0) {
      if (check_metadata(path, value, err) != 0)
        return -1;
      continue;
    }
    if (parse_entry(path, key, value, data_bytes, &f->tensors[f->count], err) != 0)
      return -1;
    f->count++;
  }
  // Overlap is judged on a sorted copy, so that tensors keep the file's order.
  TlcStTensor *sorted = malloc((f->count ? (size_t)f->count : 1) * sizeof *sorted);
  if (!sorted)
    return tlc_fail(err, "%s: out of memory", path);
  memcpy(sorted, f->tensors, (size_t)f->count * sizeof *sorted);
  int rc = check_overlap(path, sorted, f->count, err);
  free(sorted);
  return rc;
}

// Header length, then the JSON, then every entry.
static int check_file(const char *path, TlcSafetensors *f, TlcError *err) {
  if (f->size < 8)
    return tlc_fail(err, "%s: not a safetensors file (%" PRId64 " bytes, shorter than the 8-byte header length)",
                    path, f->size);
  uint64_t header = 0;
  for (int i = 7; i >= 0; i--)
    header = header << 8 | f->file[i];
  if (header > MAX_HEADER || header > (uint64_t)(f->size - 8))
    return tlc_fail(err, "%s: header length %" PRIu64 " does not fit the %" PRId64 "-byte file (%s)", path, header,
                    f->size, header > MAX_HEADER ? "beyond the format's 100 MB limit" : "truncated file?");
  json_error_t jerr;
  json_t *root = json_loadb((const char *)f->file + 8, (size_t)header, JSON_REJECT_DUPLICATES, &jerr);
  if (!root)
    return tlc_fail(err, "%s: the header is not valid JSON: %s (header byte %d)", path, jerr.text, jerr.position);
  int rc = json_is_object(root) ? 0 : tlc_fail(err, "%s: the header is JSON but not an object", path);
  f->data = f->file + 8 + header;
  f->data_bytes = f->size - 8 - (int64_t)header;
  if (rc == 0)
    rc = parse_header(path, root, f->data_bytes, f, err);
  json_decref(root);
  return rc;
}

int tlc_safetensors_open(const char *path, TlcSafetensors *f, TlcError *err) {
  memset(f, 0, sizeof *f);
  f->path = path;
  if (read_whole(path, &f->file, &f->size, err) != 0)
    return -1;
  if (check_file(path, f, err) != 0) {
    tlc_safetensors_close(f);
    return -1;
  }
  return 0;
}

bool tlc_safetensors_sniff(const char *path) {
  FILE *fp = fopen(path, "rb");
  if (!fp)
    return false;
  uint8_t head[9];
  size_t got = fread(head, 1, sizeof head, fp);
  fclose(fp);
  // A header length whose top bytes are zero, then the JSON object's brace. A FlatBuffers
  // checkpoint starts with a 4-byte root offset and its "TLCK" identifier instead.
  return got == sizeof head && head[8] == '{' && head[5] == 0 && head[6] == 0 && head[7] == 0;
}

const TlcStTensor *tlc_safetensors_find(const TlcSafetensors *f, const char *name) {
  for (int i = 0; i < f->count; i++)
    if (strcmp(f->tensors[i].name, name) == 0)
      return &f->tensors[i];
  return NULL;
}

void tlc_safetensors_close(TlcSafetensors *f) {
  for (int i = 0; f->tensors && i < f->count; i++)
    free(f->tensors[i].name);
  free(f->tensors);
  free(f->file);
  memset(f, 0, sizeof *f);
}

//
// Converting data
//

static float half_to_float(uint16_t h) {
  int sign = h >> 15, exponent = h >> 10 & 0x1f, mantissa = h & 0x3ff;
  float v;
  if (exponent == 0)
    v = ldexpf((float)mantissa, -24);  // zero and subnormals
  else if (exponent == 31)
    v = mantissa ? NAN : INFINITY;
  else
    v = ldexpf((float)(mantissa | 0x400), exponent - 25);
  return sign ? -v : v;
}

static float element(const uint8_t *p, TlcDtype dtype) {
  switch (dtype) {
  case TLC_DTYPE_F16: {
    uint16_t h;
    memcpy(&h, p, 2);
    return half_to_float(h);
  }
  case TLC_DTYPE_BF16: {
    uint32_t bits = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 24;
    float v;
    memcpy(&v, &bits, 4);
    return v;
  }
  case TLC_DTYPE_F64: {
    double d;
    memcpy(&d, p, 8);
    return (float)d;
  }
  default: {
    float v;
    memcpy(&v, p, 4);
    return v;
  }
  }
}

int tlc_safetensors_read(const TlcSafetensors *f, const TlcStTensor *t, void *dst, bool as_int, TlcError *err) {
  const char *path = f->path;
  const uint8_t *src = f->data + t->begin;
  if (as_int != (t->dtype == TLC_DTYPE_I64))
    return tlc_fail(err, "%s: tensor '%s' holds %s, but this model's tensor holds %s", path, t->name,
                    tlc_dtype_name(t->dtype), as_int ? "integers (I64)" : "floats (F32, F16, BF16 or F64)");
  if (as_int || t->dtype == TLC_DTYPE_F32) {
    memcpy(dst, src, (size_t)(t->end - t->begin));
    return 0;
  }
  int size = tlc_dtype_size(t->dtype);
  float *out = dst;
  for (int64_t i = 0; i < t->count; i++)
    out[i] = element(src + i * size, t->dtype);
  return 0;
}

//
// Writing
//

static int entry_json(const char *path, const TlcSafetensorsEntry *e, int64_t begin, json_t *root, TlcError *err) {
  if (!e->name || !*e->name || strcmp(e->name, METADATA) == 0 || e->dims < 0 || e->dims > MAX_DIMS)
    return tlc_fail(err, "%s: cannot write a tensor named '%s' with %d dimensions", path, e->name ? e->name : "",
                    e->dims);
  if (json_object_get(root, e->name))
    return tlc_fail(err, "%s: tensor '%s' is listed twice", path, e->name);
  json_t *shape = json_array();
  for (int d = 0; d < e->dims; d++)
    json_array_append_new(shape, json_integer(e->shape[d]));
  json_t *entry = json_pack("{s:s, s:o, s:[I, I]}", "dtype", e->is_int ? "I64" : "F32", "shape", shape,
                            "data_offsets", (json_int_t)begin, (json_int_t)(begin + tlc_safetensors_entry_bytes(e)));
  if (!entry || json_object_set_new(root, e->name, entry) != 0)
    return tlc_fail(err, "%s: out of memory", path);
  return 0;
}

int64_t tlc_safetensors_entry_bytes(const TlcSafetensorsEntry *e) {
  int64_t n = e->is_int ? 8 : 4;
  for (int d = 0; d < e->dims && d < MAX_DIMS; d++)
    n *= e->shape[d];
  return n;
}

// The JSON header, padded with spaces to a multiple of 8 bytes, in new memory.
static char *header_json(const char *path, const TlcSafetensorsEntry *tensors, int n, const char *const *metadata,
                         size_t *len, TlcError *err) {
  json_t *root = json_object(), *meta = json_object();
  int rc = root && meta ? 0 : tlc_fail(err, "%s: out of memory", path);
  for (int i = 0; rc == 0 && metadata && metadata[i] && metadata[i + 1]; i += 2)
    rc = json_object_set_new(meta, metadata[i], json_string(metadata[i + 1]));
  if (rc == 0 && json_object_size(meta))
    rc = json_object_set(root, METADATA, meta);
  int64_t offset = 0;
  for (int i = 0; rc == 0 && i < n; i++) {
    rc = entry_json(path, &tensors[i], offset, root, err);
    offset += tlc_safetensors_entry_bytes(&tensors[i]);
  }
  char *text = rc == 0 ? json_dumps(root, JSON_COMPACT) : NULL;
  json_decref(meta);
  json_decref(root);
  if (rc != 0 || !text) {
    if (rc == 0)
      tlc_fail(err, "%s: out of memory", path);
    return NULL;
  }
  size_t used = strlen(text), padded = (used + 7) / 8 * 8;
  char *out = realloc(text, padded + 1);
  if (!out) {
    free(text);
    tlc_fail(err, "%s: out of memory", path);
    return NULL;
  }
  memset(out + used, ' ', padded - used);
  out[padded] = '\0';
  *len = padded;
  return out;
}

int tlc_safetensors_save(const char *path, const TlcSafetensorsEntry *tensors, int n, const char *const *metadata,
                         TlcError *err) {
  size_t header_len = 0;
  char *header = header_json(path, tensors, n, metadata, &header_len, err);
  TlcBytes *parts = header ? malloc((size_t)(n + 2) * sizeof *parts) : NULL;
  if (!parts) {
    if (header)
      tlc_fail(err, "%s: out of memory", path);
    free(header);
    return -1;
  }
  uint8_t length[8];
  for (int i = 0; i < 8; i++)
    length[i] = (uint8_t)((uint64_t)header_len >> (8 * i));
  parts[0] = (TlcBytes){length, 8};
  parts[1] = (TlcBytes){header, header_len};
  for (int i = 0; i < n; i++)
    parts[i + 2] = (TlcBytes){tensors[i].data, (size_t)tlc_safetensors_entry_bytes(&tensors[i])};
  int rc = tlc_write_atomic(path, parts, n + 2, err);
  free(parts);
  free(header);
  return rc;
}
