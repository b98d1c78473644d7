// bundle.cc: the kernel bundle (schema and field meanings: bundle.fbs) built by tlc and read
// by trainers and `tlc inspect`. Reading runs the FlatBuffers Verifier first and checks
// that every launch names a function, so a damaged trainer file is refused, never read out
// of bounds. The Verifier checks alignment relative to the buffer's start only, and a launch's
// grid and shared memory are 8-byte fields: a buffer that is not 8-byte aligned is read from
// an aligned copy (TlcBundle.owned), so no alignment is assumed of the caller. Like
// checkpoint.cc, nothing C++ crosses the C boundary.
#include "tlcrt.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "bundle_generated.h"

namespace {

namespace fb = flatbuffers;
constexpr uint32_t kVersion = 2;

void build(fb::FlatBufferBuilder &fbb, const TlcBundle *b) {
  std::vector<fb::Offset<tlc::bundle::Function>> functions;
  for (int i = 0; i < b->nfunctions; i++)
    functions.push_back(tlc::bundle::CreateFunctionDirect(fbb, b->functions[i].name, b->functions[i].source));
  std::vector<fb::Offset<tlc::bundle::Launch>> launches;
  for (int i = 0; i < b->nlaunches; i++) {
    const TlcBundleLaunch &l = b->launches[i];
    launches.push_back(tlc::bundle::CreateLaunchDirect(fbb, l.kernel, l.comment, l.function, l.grid, l.block, l.shared));
  }
  auto cubin = fbb.CreateVector(b->cubin, b->cubin_size);
  auto ptx = fbb.CreateString(b->ptx, b->ptx_size);
  auto root = tlc::bundle::CreateBundle(fbb, kVersion, fbb.CreateString(b->arch), fbb.CreateString(b->nvrtc),
                                        b->block, fbb.CreateString(b->prelude), fbb.CreateVector(functions),
                                        fbb.CreateVector(launches), ptx, cubin);
  tlc::bundle::FinishBundleBuffer(fbb, root);
}

const char *str(const fb::String *s) { return s ? s->c_str() : ""; }

int read(const void *data, size_t size, TlcBundle &r, TlcError *err) {
  fb::Verifier verifier(static_cast<const uint8_t *>(data), size);
  if (!tlc::bundle::VerifyBundleBuffer(verifier))
    return tlc_fail(err, "the kernel bundle is damaged (it does not verify as bundle.fbs)");
  const tlc::bundle::Bundle *b = tlc::bundle::GetBundle(data);
  if (b->version() < 1 || b->version() > kVersion)
    return tlc_fail(err, "the kernel bundle has version %u; this runtime reads versions 1 to %u", b->version(), kVersion);
  r.arch = str(b->arch());
  r.nvrtc = str(b->nvrtc());
  r.prelude = str(b->prelude());
  r.block = b->block();
  r.ptx = str(b->ptx());
  r.ptx_size = b->ptx() ? b->ptx()->size() : 0;
  r.cubin = b->cubin() ? b->cubin()->data() : nullptr;
  r.cubin_size = b->cubin() ? b->cubin()->size() : 0;
  r.nfunctions = b->functions() ? static_cast<int>(b->functions()->size()) : 0;
  r.nlaunches = b->launches() ? static_cast<int>(b->launches()->size()) : 0;
  r.functions = static_cast<TlcBundleFunction *>(calloc(static_cast<size_t>(r.nfunctions) + 1, sizeof *r.functions));
  r.launches = static_cast<TlcBundleLaunch *>(calloc(static_cast<size_t>(r.nlaunches) + 1, sizeof *r.launches));
  if (!r.functions || !r.launches)
    return tlc_fail(err, "out of memory reading the kernel bundle");
  for (int i = 0; i < r.nfunctions; i++) {
    const tlc::bundle::Function *f = b->functions()->Get(static_cast<fb::uoffset_t>(i));
    r.functions[i] = {str(f->name()), str(f->source())};
  }
  for (int i = 0; i < r.nlaunches; i++) {
    const tlc::bundle::Launch *l = b->launches()->Get(static_cast<fb::uoffset_t>(i));
    int32_t block = b->version() == 1 ? b->block() : l->block();
    r.launches[i] = {str(l->kernel()), str(l->comment()), l->function(), l->grid(), block, l->shared()};
    if (l->function() >= static_cast<uint32_t>(r.nfunctions) || l->grid() <= 0 || l->grid() > INT32_MAX)
      return tlc_fail(err, "the kernel bundle is damaged: launch %d (%s) names function %u of %d", i,
                      str(l->kernel()), l->function(), r.nfunctions);
    if (block <= 0 || block > 1024 || l->shared() < 0 || l->shared() > (1 << 30))
      return tlc_fail(err, "the kernel bundle is damaged: launch %d (%s) has %d threads a block and %lld bytes of "
                      "shared memory", i, str(l->kernel()), block, static_cast<long long>(l->shared()));
  }
  return 0;
}

// An 8-byte aligned copy of data when it is not aligned (kept in r.owned).
const void *aligned(const void *data, size_t size, TlcBundle &r) {
  if (reinterpret_cast<uintptr_t>(data) % 8 == 0) return data;
  r.owned = static_cast<uint8_t *>(malloc(size ? size : 1));
  if (r.owned) memcpy(r.owned, data, size);
  return r.owned;
}

}  // namespace

int tlc_bundle_build(const TlcBundle *b, uint8_t **data, size_t *size, TlcError *err) {
  try {
    fb::FlatBufferBuilder fbb(1024 + b->ptx_size + b->cubin_size);
    build(fbb, b);
    *size = fbb.GetSize();
    *data = static_cast<uint8_t *>(malloc(*size));
    if (!*data) return tlc_fail(err, "out of memory building the kernel bundle");
    memcpy(*data, fbb.GetBufferPointer(), *size);
    return 0;
  } catch (const std::bad_alloc &) {
    return tlc_fail(err, "out of memory building the kernel bundle");
  }
}

int tlc_bundle_read(const void *data, size_t size, TlcBundle *out, TlcError *err) {
  TlcBundle r = {};
  int rc;
  try {
    const void *at = aligned(data, size, r);
    rc = at ? read(at, size, r, err) : tlc_fail(err, "out of memory reading the kernel bundle");
  } catch (const std::bad_alloc &) {
    rc = tlc_fail(err, "out of memory reading the kernel bundle");
  }
  if (rc)
    tlc_bundle_free(&r);
  else
    *out = r;
  return rc;
}

void tlc_bundle_free(TlcBundle *b) {
  free(b->functions);
  free(b->launches);
  free(b->owned);
  b->functions = nullptr;
  b->launches = nullptr;
  b->owned = nullptr;
}
