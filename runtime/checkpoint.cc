// checkpoint.cc: checkpoints as FlatBuffers (schema and field meanings: checkpoint.fbs).
//
// Contract (declared in tlcrt.h, section "checkpoint.cc"):
// - tlc_checkpoint_save writes through tlc_write_atomic ("path.tmp.<pid>", fsync, rename), so
//   readers see the old file or the new one, never a torn one; on failure (a full disk, say)
//   the temporary file is removed and the old file is untouched.
// - tlc_checkpoint_load runs the FlatBuffers Verifier before reading a field, so a truncated
//   or corrupt file is refused and never read out of bounds; it then checks the identifier,
//   the version, the graph fingerprint and every tensor's name and shape, and only when all
//   of that holds copies anything into the caller's memory. A file that torch.save wrote is
//   named as such, with the converter that turns it into safetensors (tools/convert_weights.py). Vectors of 8-byte elements are
//   read without assuming their alignment (vector_at).
//
// FlatBuffers' builder and verifier are C++ (bundle.cc is the other C++ file). Nothing C++
// crosses the C boundary: both entry points catch every exception (in practice
// std::bad_alloc) and turn it into a TlcError. It needs FlatBuffers' headers only (no
// libflatbuffers), so trainers stay self-contained.
#include "tlcrt.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "checkpoint_generated.h"

namespace {

namespace fb = flatbuffers;
using tlc::ckpt::Checkpoint;
using tlc::ckpt::Tensor;

// Version 1, or 2 for a checkpoint written inside an epoch (images_done); see checkpoint.fbs.
constexpr uint32_t kVersion = 1, kVersionInEpoch = 2;
constexpr int kMaxDims = 4;
constexpr int kRngWords = 2;
// The Verifier asserts size < FLATBUFFERS_MAX_BUFFER_SIZE (2 GiB - 1), so both sides stop here.
constexpr uint64_t kMaxBytes = FLATBUFFERS_MAX_BUFFER_SIZE - 1;

static_assert(sizeof(TlcCheckpointInfo::rng) == kRngWords * sizeof(uint64_t),
              "TlcCheckpointInfo.rng and the rng words stored in the file differ");

// Element i of a verified vector of 8-byte scalars (shape, rng). The Verifier checks a
// vector's length word for 4-byte alignment only, so a crafted file can put the elements at
// an address that is 4 mod 8, and FlatBuffers' Get() would load an int64 from it (undefined
// behaviour; UBSan aborts). memcpy assumes no alignment. (Table fields are checked for their
// own alignment, relative to the buffer, which read_file allocates aligned.)
template <typename T>
T vector_at(const fb::Vector<T> *v, fb::uoffset_t i) {
  T x;
  memcpy(&x, v->Data() + static_cast<size_t>(i) * sizeof(T), sizeof x);
  return fb::EndianScalar(x);
}

// "[64,3,7,7]", the form every shape error uses.
std::string shape_string(const int64_t *shape, size_t dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims; i++) {
    if (i) s += ',';
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

// prod(shape), or -1 if a dimension is negative or the product leaves int64.
int64_t element_count(const int64_t *shape, size_t dims) {
  int64_t count = 1;
  for (size_t i = 0; i < dims; i++) {
    if (shape[i] < 0) return -1;
    if (shape[i] != 0 && count > INT64_MAX / shape[i]) return -1;
    count *= shape[i];
  }
  return count;
}

// The 64-bit finaliser of splitmix64: spreads every input bit over the whole result.
uint64_t mix64(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t fnv1a(uint64_t h, const void *bytes, size_t n) {
  const unsigned char *p = static_cast<const unsigned char *>(bytes);
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}

// Fingerprint of one tensor: its name (with the terminator, so "ab"+[1] and "a"+... differ),
// its rank and each dimension as 8 little-endian bytes, whatever the host.
// A malformed entry (no name, rank out of range) still hashes; save and load refuse it.
uint64_t tensor_hash(const TlcTensorRef &t) {
  const char *name = t.name ? t.name : "";
  int dims = t.dims < 0 ? 0 : t.dims > kMaxDims ? kMaxDims : t.dims;
  uint64_t h = fnv1a(0xcbf29ce484222325ULL, name, strlen(name) + 1);
  unsigned char le[8];
  for (int d = -1; d < dims; d++) {
    uint64_t v = d < 0 ? static_cast<uint64_t>(dims) : static_cast<uint64_t>(t.shape[d]);
    for (int b = 0; b < 8; b++) le[b] = static_cast<unsigned char>(v >> (8 * b));
    h = fnv1a(h, le, sizeof le);
  }
  return h;
}

// Checks the caller's tensor list: names present and unique, shapes sane, data present.
int check_refs(const char *path, const TlcTensorRef *tensors, int n, TlcError *err) {
  if (n < 0 || (n > 0 && !tensors)) return tlc_fail(err, "%s: no tensor list given", path);
  std::unordered_set<std::string_view> seen;
  seen.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; i++) {
    const TlcTensorRef &t = tensors[i];
    if (!t.name || !*t.name) return tlc_fail(err, "%s: tensor %d has no name", path, i);
    if (!seen.insert(t.name).second)
      return tlc_fail(err, "%s: tensor '%s' is listed twice", path, t.name);
    if (t.dims < 0 || t.dims > kMaxDims)
      return tlc_fail(err, "%s: tensor '%s' has %d dimensions (0 to %d allowed)", path, t.name,
                      t.dims, kMaxDims);
    int64_t count = element_count(t.shape, static_cast<size_t>(t.dims));
    if (count < 0 || static_cast<uint64_t>(count) > kMaxBytes / sizeof(float))
      return tlc_fail(err, "%s: tensor '%s' has an impossible shape %s", path, t.name,
                      shape_string(t.shape, static_cast<size_t>(t.dims)).c_str());
    if (count > 0 && !t.data) return tlc_fail(err, "%s: tensor '%s' has no data", path, t.name);
  }
  return 0;
}

//
// Saving
//

// An upper bound on the buffer size: each string and vector costs its bytes, a length word
// and at most 8 bytes of padding; a table with its vtable and offset stays under 64 bytes.
uint64_t size_bound(const TlcCheckpointInfo *info, const TlcTensorRef *tensors, int n) {
  uint64_t bytes = 256 + (info->graph ? strlen(info->graph) : 0);
  for (int i = 0; i < n; i++) {
    const TlcTensorRef &t = tensors[i];
    uint64_t count = static_cast<uint64_t>(element_count(t.shape, static_cast<size_t>(t.dims)));
    bytes += 64 + (strlen(t.name) + 16) + (8 * static_cast<uint64_t>(t.dims) + 16) +
             (4 * count + 16);
  }
  return bytes;
}

fb::Offset<Tensor> build_tensor(fb::FlatBufferBuilder &fbb, const TlcTensorRef &t) {
  auto name = fbb.CreateString(t.name);
  auto shape = fbb.CreateVector(t.shape, static_cast<size_t>(t.dims));
  size_t count = static_cast<size_t>(element_count(t.shape, static_cast<size_t>(t.dims)));
  auto data = fbb.CreateVector(t.data, count);
  return tlc::ckpt::CreateTensor(fbb, name, shape, data);
}

void build_checkpoint(fb::FlatBufferBuilder &fbb, const TlcCheckpointInfo *info,
                      const TlcTensorRef *tensors, int n) {
  // The builder writes back to front, so what is created first ends the file. The rng vector
  // (16 bytes, no padding) goes first: then the file's last byte belongs to a field the
  // Verifier checks, and cutting even one byte off the end is detected.
  auto rng = fbb.CreateVector(info->rng, kRngWords);
  std::vector<fb::Offset<Tensor>> offsets;
  offsets.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; i++) offsets.push_back(build_tensor(fbb, tensors[i]));
  auto list = fbb.CreateVector(offsets);
  auto graph = fbb.CreateString(info->graph ? info->graph : "");
  uint32_t version = info->images_done ? kVersionInEpoch : kVersion;
  auto root = tlc::ckpt::CreateCheckpoint(fbb, version, graph, info->graph_hash, info->epoch, info->step, rng,
                                          info->best_metric, list, info->images_done, info->loss_sum,
                                          info->correct_sum);
  tlc::ckpt::FinishCheckpointBuffer(fbb, root);
}

int save(const char *path, const TlcCheckpointInfo *info, const TlcTensorRef *tensors, int n,
         TlcError *err) {
  if (!info) return tlc_fail(err, "%s: no checkpoint info given", path);
  if (check_refs(path, tensors, n, err)) return -1;
  uint64_t bound = size_bound(info, tensors, n);
  if (bound > kMaxBytes)
    return tlc_fail(err, "%s: the checkpoint would take about %" PRIu64 " bytes, more than "
                    "FlatBuffers' 2 GiB limit", path, bound);
  fb::FlatBufferBuilder fbb(static_cast<size_t>(bound));
  build_checkpoint(fbb, info, tensors, n);
  TlcBytes whole = {fbb.GetBufferPointer(), fbb.GetSize()};
  return tlc_write_atomic(path, &whole, 1, err);
}

//
// Loading
//

struct FreeDeleter {
  void operator()(uint8_t *p) const { free(p); }
};
using Bytes = std::unique_ptr<uint8_t, FreeDeleter>;

// Reads the whole file into malloc'd memory (aligned for every scalar the Verifier checks).
int read_file(const char *path, Bytes *out, size_t *size_out, TlcError *err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return tlc_fail(err, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int saved = errno;
    close(fd);
    return tlc_fail(err, "%s: cannot stat: %s", path, strerror(saved));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return tlc_fail(err, "%s: not a regular file", path);
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxBytes) {
    close(fd);
    return tlc_fail(err, "%s: not a tlc checkpoint (%" PRIu64 " bytes, beyond the 2 GiB "
                    "FlatBuffers limit)", path, static_cast<uint64_t>(st.st_size));
  }
  size_t size = static_cast<size_t>(st.st_size), got = 0;
  Bytes bytes(static_cast<uint8_t *>(malloc(size ? size : 1)));
  if (!bytes) {
    close(fd);
    return tlc_fail(err, "%s: out of memory reading %zu bytes", path, size);
  }
  while (got < size) {
    ssize_t r = read(fd, bytes.get() + got, size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int saved = errno;
      close(fd);
      return tlc_fail(err, "%s: cannot read: %s", path, strerror(saved));
    }
    if (r == 0) break;  // shrank while we read: verification judges what is there
    got += static_cast<size_t>(r);
  }
  close(fd);
  *out = std::move(bytes);
  *size_out = got;
  return 0;
}

// What torch.save wrote, if it did: "a zip archive" (PyTorch 1.6 on, its first entry
// "NAME/data.pkl"), "a pickle" (before 1.6), or NULL. Users hand .pth files to --weights,
// and the message must send them to the converter rather than say only what the file is not.
const char *pytorch_format(const uint8_t *bytes, size_t size) {
  constexpr size_t kZipName = 30;  // a zip local header's fixed part; the name follows it
  if (size > kZipName && std::memcmp(bytes, "PK\x03\x04", 4) == 0) {
    size_t len = bytes[26] | static_cast<size_t>(bytes[27]) << 8;
    std::string_view name(reinterpret_cast<const char *>(bytes) + kZipName, std::min(len, size - kZipName));
    constexpr std::string_view kData = "/data.pkl";
    bool torch = name.size() >= kData.size() && name.substr(name.size() - kData.size()) == kData;
    return torch ? "a zip archive" : nullptr;
  }
  // Pickle protocols 2 to 5 start with PROTO and the version; torch.save used protocol 2.
  if (size > 2 && bytes[0] == 0x80 && bytes[1] >= 2 && bytes[1] <= 5) return "a pickle";
  return nullptr;
}

// Identifier, structure (every offset and length in bounds), version, rng size.
int verify(const char *path, const uint8_t *bytes, size_t size, TlcError *err) {
  if (const char *format = pytorch_format(bytes, size))
    return tlc_fail(err, "%s: a PyTorch pickle (torch.save's format: %s), which tlc does not read; convert it "
                    "to safetensors with tools/convert_weights.py %s OUT.safetensors (docs/weights.md) and give "
                    "the trainer OUT.safetensors", path, format, path);
  bool has_id = size >= sizeof(fb::uoffset_t) + fb::kFileIdentifierLength;
  if (has_id && !tlc::ckpt::CheckpointBufferHasIdentifier(bytes))
    return tlc_fail(err, "%s: not a tlc checkpoint (bad identifier)", path);
  fb::Verifier verifier(bytes, size, fb::Verifier::Options());
  if (!has_id || !tlc::ckpt::VerifyCheckpointBuffer(verifier))
    return tlc_fail(err, "%s: truncated or corrupt (verification failed, %zu bytes)", path, size);
  const Checkpoint *ck = tlc::ckpt::GetCheckpoint(bytes);
  if (ck->version() != kVersion && ck->version() != kVersionInEpoch)
    return tlc_fail(err, "%s: checkpoint format version %u, this trainer reads versions %u and %u",
                    path, ck->version(), kVersion, kVersionInEpoch);
  if ((ck->version() == kVersionInEpoch) != (ck->images_done() != 0) || ck->images_done() < 0)
    return tlc_fail(err, "%s: corrupt checkpoint (version %u with %lld images done in its epoch)", path,
                    ck->version(), static_cast<long long>(ck->images_done()));
  size_t rng_words = ck->rng() ? ck->rng()->size() : 0;
  if (rng_words != kRngWords)
    return tlc_fail(err, "%s: corrupt checkpoint (rng state of %zu words, %d expected)", path,
                    rng_words, kRngWords);
  // Past here tensor names are C strings: one holding a NUL byte would read as a shorter
  // name, and two of them as one name twice (found by fuzzing, docs/fuzzing.md).
  for (size_t j = 0; ck->tensors() && j < ck->tensors()->size(); j++) {
    const fb::String *name = ck->tensors()->Get(static_cast<fb::uoffset_t>(j))->name();
    if (memchr(name->c_str(), 0, name->size()))
      return tlc_fail(err, "%s: corrupt checkpoint (the name of tensor %zu, '%s', holds a NUL byte)", path, j,
                      name->c_str());
  }
  return 0;
}

size_t tensor_count(const Checkpoint *ck) { return ck->tensors() ? ck->tensors()->size() : 0; }

int64_t file_dims(const Tensor *t) { return t->shape() ? t->shape()->size() : 0; }

bool same_shape(const Tensor *ft, const TlcTensorRef &t) {
  if (file_dims(ft) != t.dims) return false;
  for (int d = 0; d < t.dims; d++)
    if (vector_at(ft->shape(), static_cast<fb::uoffset_t>(d)) != t.shape[d]) return false;
  return true;
}

std::string file_shape_string(const Tensor *ft) {
  std::vector<int64_t> shape;
  for (int64_t d = 0; d < file_dims(ft); d++)
    shape.push_back(vector_at(ft->shape(), static_cast<fb::uoffset_t>(d)));
  return shape_string(shape.data(), shape.size());
}

// Pairs every caller tensor with the file's tensor of the same name (found[i]), reporting
// the first caller tensor that is missing or shaped differently, then the first file
// tensor nobody asked for.
int match_tensors(const char *path, const Checkpoint *ck, const TlcTensorRef *tensors, int n,
                  std::vector<const Tensor *> *found, TlcError *err) {
  size_t count = tensor_count(ck);
  std::unordered_map<std::string_view, size_t> by_name;
  by_name.reserve(count);
  for (size_t j = 0; j < count; j++) {
    const fb::String *name = ck->tensors()->Get(static_cast<fb::uoffset_t>(j))->name();
    if (!by_name.emplace(std::string_view(name->c_str(), name->size()), j).second)
      return tlc_fail(err, "%s: corrupt checkpoint (tensor '%s' appears twice)", path,
                      name->c_str());
  }
  std::vector<bool> used(count, false);
  for (int i = 0; i < n; i++) {
    const TlcTensorRef &t = tensors[i];
    auto it = by_name.find(t.name);
    if (it == by_name.end()) return tlc_fail(err, "%s: tensor '%s' is missing", path, t.name);
    const Tensor *ft = ck->tensors()->Get(static_cast<fb::uoffset_t>(it->second));
    if (!same_shape(ft, t))
      return tlc_fail(err, "%s: tensor '%s' has shape %s in the checkpoint, %s here", path,
                      t.name, file_shape_string(ft).c_str(),
                      shape_string(t.shape, static_cast<size_t>(t.dims)).c_str());
    size_t values = ft->data() ? ft->data()->size() : 0;
    int64_t want = element_count(t.shape, static_cast<size_t>(t.dims));
    if (static_cast<int64_t>(values) != want)
      return tlc_fail(err, "%s: corrupt checkpoint (tensor '%s' holds %zu values, its shape "
                      "needs %" PRId64 ")", path, t.name, values, want);
    used[it->second] = true;
    (*found)[static_cast<size_t>(i)] = ft;
  }
  for (size_t j = 0; j < count; j++)
    if (!used[j])
      return tlc_fail(err, "%s: unexpected tensor '%s'", path,
                      ck->tensors()->Get(static_cast<fb::uoffset_t>(j))->name()->c_str());
  return 0;
}

// A different fingerprint under a different name is another model: say so first. Under the
// same name (a changed class count, say) the tensor comparison names the actual difference,
// which says more; this is the fallback when it finds none.
int check_graph(const char *path, const Checkpoint *ck, const TlcCheckpointInfo *info,
                bool tensors_differ, TlcError *err) {
  if (ck->graph_hash() == info->graph_hash) return 0;
  const char *theirs = ck->graph() ? ck->graph()->c_str() : "";
  const char *mine = info->graph ? info->graph : "";
  if (strcmp(theirs, mine) != 0 || !tensors_differ)
    return tlc_fail(err, "%s: checkpoint of graph '%s', this trainer is '%s' (parameter "
                    "fingerprints %016" PRIx64 " and %016" PRIx64 " differ)", path, theirs,
                    mine, ck->graph_hash(), info->graph_hash);
  return 0;
}

void copy_tensor(const Tensor *ft, const TlcTensorRef &t) {
  const fb::Vector<float> *v = ft->data();
  if (!v || v->size() == 0) return;
#if FLATBUFFERS_LITTLEENDIAN
  memcpy(t.data, v->data(), v->size() * sizeof(float));
#else
  for (fb::uoffset_t k = 0; k < v->size(); k++) t.data[k] = v->Get(k);
#endif
}

void fill_info(const Checkpoint *ck, TlcCheckpointInfo *info) {
  // Owned here so that info->graph outlives the file buffer; see tlcrt.h for its lifetime.
  static thread_local std::string graph;
  graph = ck->graph() ? ck->graph()->str() : "";
  info->graph = graph.c_str();
  info->graph_hash = ck->graph_hash();
  info->epoch = ck->epoch();
  info->step = ck->step();
  for (int k = 0; k < kRngWords; k++)
    info->rng[k] = vector_at(ck->rng(), static_cast<fb::uoffset_t>(k));
  info->best_metric = ck->best_metric();
  info->images_done = ck->images_done();
  info->loss_sum = ck->loss_sum();
  info->correct_sum = ck->correct_sum();
}

int load(const char *path, TlcCheckpointInfo *info, const TlcTensorRef *tensors, int n,
         TlcError *err) {
  if (!info) return tlc_fail(err, "%s: no checkpoint info given", path);
  if (check_refs(path, tensors, n, err)) return -1;
  Bytes bytes;
  size_t size = 0;
  if (read_file(path, &bytes, &size, err) || verify(path, bytes.get(), size, err)) return -1;
  const Checkpoint *ck = tlc::ckpt::GetCheckpoint(bytes.get());
  std::vector<const Tensor *> found(static_cast<size_t>(n));
  TlcError mismatch;
  bool differ = match_tensors(path, ck, tensors, n, &found, &mismatch) != 0;
  if (check_graph(path, ck, info, differ, err)) return -1;
  if (differ) {
    *err = mismatch;
    return -1;
  }
  for (int i = 0; i < n; i++) copy_tensor(found[static_cast<size_t>(i)], tensors[i]);
  fill_info(ck, info);
  return 0;
}

// Copies one verified tensor into list->tensors[list->count] (counted only once whole).
int copy_out(const char *path, const Tensor *ft, TlcTensorList *list, TlcError *err) {
  int64_t dims = file_dims(ft);
  if (dims > kMaxDims)
    return tlc_fail(err, "%s: tensor '%s' has %" PRId64 " dimensions (at most %d)", path, ft->name()->c_str(),
                    dims, kMaxDims);
  TlcTensorRef &t = list->tensors[list->count];
  t.dims = static_cast<int>(dims);
  for (int d = 0; d < t.dims; d++) t.shape[d] = vector_at(ft->shape(), static_cast<fb::uoffset_t>(d));
  size_t values = ft->data() ? ft->data()->size() : 0;
  if (static_cast<int64_t>(values) != element_count(t.shape, static_cast<size_t>(t.dims)))
    return tlc_fail(err, "%s: corrupt checkpoint (tensor '%s' holds %zu values, its shape %s needs another count)",
                    path, ft->name()->c_str(), values, shape_string(t.shape, static_cast<size_t>(t.dims)).c_str());
  t.name = strdup(ft->name()->c_str());
  t.data = static_cast<float *>(malloc(values ? values * sizeof(float) : 1));
  list->count++;  // counted before the check so that tlc_tensor_list_free releases both
  if (!t.name || !t.data) return tlc_fail(err, "%s: out of memory", path);
  copy_tensor(ft, t);
  return 0;
}

int read_tensors(const char *path, TlcTensorList *list, TlcError *err) {
  Bytes bytes;
  size_t size = 0;
  if (read_file(path, &bytes, &size, err) || verify(path, bytes.get(), size, err)) return -1;
  const Checkpoint *ck = tlc::ckpt::GetCheckpoint(bytes.get());
  size_t count = tensor_count(ck);
  std::unordered_set<std::string_view> names;
  list->tensors = static_cast<TlcTensorRef *>(calloc(count ? count : 1, sizeof(TlcTensorRef)));
  if (!list->tensors) return tlc_fail(err, "%s: out of memory", path);
  for (size_t j = 0; j < count; j++) {
    const Tensor *ft = ck->tensors()->Get(static_cast<fb::uoffset_t>(j));
    if (!names.emplace(ft->name()->c_str(), ft->name()->size()).second)
      return tlc_fail(err, "%s: corrupt checkpoint (tensor '%s' appears twice)", path, ft->name()->c_str());
    if (copy_out(path, ft, list, err)) return -1;
  }
  return 0;
}

}  // namespace

extern "C" void tlc_tensor_list_free(TlcTensorList *list) {
  for (int i = 0; list->tensors && i < list->count; i++) {
    free(const_cast<char *>(list->tensors[i].name));
    free(list->tensors[i].data);
  }
  free(list->tensors);
  list->tensors = nullptr;
  list->count = 0;
}

extern "C" int tlc_checkpoint_read_tensors(const char *path, TlcTensorList *out, TlcError *err) {
  *out = TlcTensorList{};
  int rc;
  try {
    rc = read_tensors(path, out, err);
  } catch (const std::bad_alloc &) {
    rc = tlc_fail(err, "%s: out of memory reading the checkpoint", path);
  } catch (...) {
    rc = tlc_fail(err, "%s: internal error reading the checkpoint", path);
  }
  if (rc) tlc_tensor_list_free(out);
  return rc;
}

extern "C" uint64_t tlc_checkpoint_graph_hash(const TlcTensorRef *tensors, int n) {
  // A sum of per-tensor hashes, because tensors are matched by name: the order in which a
  // trainer lists them must not change its fingerprint.
  uint64_t sum = static_cast<uint64_t>(n);
  for (int i = 0; i < n; i++) sum += mix64(tensor_hash(tensors[i]));
  return mix64(sum);
}

extern "C" int tlc_checkpoint_save(const char *path, const TlcCheckpointInfo *info,
                                   const TlcTensorRef *tensors, int n, TlcError *err) {
  try {
    return save(path, info, tensors, n, err);
  } catch (const std::bad_alloc &) {
    return tlc_fail(err, "%s: out of memory building the checkpoint", path);
  } catch (...) {
    return tlc_fail(err, "%s: internal error building the checkpoint", path);
  }
}

extern "C" int tlc_checkpoint_load(const char *path, TlcCheckpointInfo *info_out,
                                   const TlcTensorRef *tensors, int n, TlcError *err) {
  try {
    return load(path, info_out, tensors, n, err);
  } catch (const std::bad_alloc &) {
    return tlc_fail(err, "%s: out of memory reading the checkpoint", path);
  } catch (...) {
    return tlc_fail(err, "%s: internal error reading the checkpoint", path);
  }
}
