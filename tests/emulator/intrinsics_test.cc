// intrinsics_test.cc: the kernels of intrinsics.cu on the emulated device, through its
// driver API as a trainer uses it, against plain C++ references (float64). Then every planted
// bug of intrinsics.cu (a PLANT_* macro: a broken variant of a correct kernel) must be caught,
// by a wrong result or by the launch failing with the expected message; one that passes
// unnoticed fails the test, so the test cannot pass by checking nothing. Last, the kernels of
// failures.cu (beside intrinsics.cu) and misuses of the driver must each fail with its message.
//   intrinsics_test LIBCUDA INTRINSICS_CU SCRATCH_DIR
// With a fourth argument, --racy, it prints instead the sums that block_sum without its
// barriers computes (determinism.sh: they must depend on the seed and on nothing else).
#include <dlfcn.h>
#include <sys/stat.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

namespace {

typedef int CUresult;
typedef unsigned long long CUdeviceptr;

struct Driver {
  CUresult (*Init)(unsigned);
  CUresult (*DevicePrimaryCtxRetain)(void **, int);
  CUresult (*CtxSetCurrent)(void *);
  CUresult (*ModuleLoadData)(void **, const void *);
  CUresult (*ModuleUnload)(void *);
  CUresult (*ModuleGetFunction)(void **, void *, const char *);
  CUresult (*MemAlloc)(CUdeviceptr *, std::size_t);
  CUresult (*MemFree)(CUdeviceptr);
  CUresult (*MemcpyHtoD)(CUdeviceptr, const void *, std::size_t);
  CUresult (*MemcpyDtoH)(void *, CUdeviceptr, std::size_t);
  CUresult (*LaunchKernel)(void *, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, void *,
                           void **, void **);
  CUresult (*GetErrorString)(CUresult, const char **);
} cu;

std::string error_text(CUresult r) {
  const char *text = nullptr;
  cu.GetErrorString(r, &text);
  return text ? text : "?";
}

[[noreturn]] void die(const std::string &what) {
  std::fprintf(stderr, "intrinsics_test: %s\n", what.c_str());
  std::exit(1);
}

void check_cu(CUresult r, const char *what) {
  if (r)
    die(std::string(what) + ": " + error_text(r));
}

// What a check of one kernel found.
struct Outcome {
  enum Kind { kPass, kMismatch, kLaunchError } kind;
  std::string detail;
};

std::uint64_t rng_state = 0x2545f4914f6cdd1dull;
double uniform() {   // in [0, 1)
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return static_cast<double>(rng_state >> 11) * 0x1p-53;
}

// Device memory holding a copy of a host vector.
template <class T> struct Buffer {
  CUdeviceptr p = 0;
  std::size_t n;
  explicit Buffer(const std::vector<T> &host) : n(host.size()) {
    check_cu(cu.MemAlloc(&p, n * sizeof(T)), "cuMemAlloc");
    check_cu(cu.MemcpyHtoD(p, host.data(), n * sizeof(T)), "cuMemcpyHtoD");
  }
  explicit Buffer(std::size_t count) : n(count) { check_cu(cu.MemAlloc(&p, n * sizeof(T)), "cuMemAlloc"); }
  ~Buffer() { cu.MemFree(p); }
  std::vector<T> read() const {
    std::vector<T> host(n);
    check_cu(cu.MemcpyDtoH(host.data(), p, n * sizeof(T)), "cuMemcpyDtoH");
    return host;
  }
};

struct Grid {
  int gx, gy, bx, by, shared;
};

// Launches module's kernel `name` with the arguments; "" or the launch's error.
template <class... A> std::string launch(void *module, const char *name, Grid g, A... args) {
  void *f = nullptr;
  CUresult r = cu.ModuleGetFunction(&f, module, name);
  if (r)
    return std::string("kernel ") + name + " not found: " + error_text(r);
  void *params[] = {static_cast<void *>(&args)...};
  r = cu.LaunchKernel(f, static_cast<unsigned>(g.gx), static_cast<unsigned>(g.gy), 1, static_cast<unsigned>(g.bx),
                      static_cast<unsigned>(g.by), 1, static_cast<unsigned>(g.shared), nullptr, params, nullptr);
  return r ? error_text(r) : "";
}

Outcome mismatch(const char *what, std::size_t at, double got, double want) {
  char text[200];
  std::snprintf(text, sizeof text, "%s[%zu] = %.9g, expected %.9g", what, at, got, want);
  return {Outcome::kMismatch, text};
}

// ---- block_sum ------------------------------------------------------------------------------------------
Outcome check_block_sum(void *module) {
  const int n = 1000, blocks = (n + 255) / 256;
  std::vector<float> x(n);
  for (float &v : x)
    v = static_cast<float>(uniform() * 4 - 1.5);
  Buffer<float> dx(x), out(static_cast<std::size_t>(blocks));
  Buffer<int> counts(static_cast<std::size_t>(blocks));
  std::string e = launch(module, "block_sum", {blocks, 1, 256, 1, 0}, dx.p, out.p, counts.p, n);
  if (!e.empty())
    return {Outcome::kLaunchError, e};
  std::vector<float> got = out.read();
  std::vector<int> got_counts = counts.read();
  for (int b = 0; b < blocks; b++) {
    double sum = 0, magnitude = 0;
    int positive = 0;
    for (int i = b * 256; i < n && i < b * 256 + 256; i++) {
      sum += x[i];
      magnitude += std::fabs(x[i]);
      positive += x[i] > 0;
    }
    if (!(std::fabs(got[b] - sum) <= 1e-5 * magnitude))
      return mismatch("block_sum out", static_cast<std::size_t>(b), got[b], sum);
    if (got_counts[b] != positive)
      return mismatch("block_sum __syncthreads_count", static_cast<std::size_t>(b), got_counts[b], positive);
  }
  return {Outcome::kPass, ""};
}

// ---- transpose ---------------------------------------------------------------------------------------------
Outcome check_transpose(void *module) {
  const int rows = 45, cols = 70;
  std::vector<float> in(rows * cols);
  for (float &v : in)
    v = static_cast<float>(uniform());
  Buffer<float> din(in), dout(in.size());
  Grid grid = {(cols + 31) / 32, (rows + 31) / 32, 32, 8, 0};
  std::string e = launch(module, "transpose", grid, din.p, dout.p, rows, cols);
  if (!e.empty())
    return {Outcome::kLaunchError, e};
  std::vector<float> got = dout.read();
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c++)
      if (got[c * rows + r] != in[r * cols + c])
        return mismatch("transpose out", static_cast<std::size_t>(c * rows + r), got[c * rows + r], in[r * cols + c]);
  return {Outcome::kPass, ""};
}

// ---- warp_ops ----------------------------------------------------------------------------------------------
Outcome check_warp_ops(void *module) {
  const int n = 256, warps = n / 32;
  std::vector<float> x(n);
  for (float &v : x)
    v = static_cast<float>(uniform() * 5 - 2);
  x[40] = 3.0f;    // warp 1 has a value above 2.5 ...
  for (int i = 64; i < 96; i++)
    x[i] = static_cast<float>(uniform());   // ... warp 2 only positive ones
  Buffer<float> dx(x), butterfly(n), down(warps), scans(n), broadcast(n), reversed(n);
  Buffer<unsigned> ballots(warps);
  Buffer<int> votes(2 * warps);
  std::string e = launch(module, "warp_ops", {n / 64, 1, 64, 1, 0}, dx.p, butterfly.p, down.p, scans.p, broadcast.p,
                         reversed.p, ballots.p, votes.p);
  if (!e.empty())
    return {Outcome::kLaunchError, e};
  std::vector<float> got_butterfly = butterfly.read(), got_down = down.read(), got_scans = scans.read(),
                     got_broadcast = broadcast.read(), got_reversed = reversed.read();
  std::vector<unsigned> got_ballots = ballots.read();
  std::vector<int> got_votes = votes.read();
  for (int w = 0; w < warps; w++) {
    double sum = 0, magnitude = 0;
    unsigned ballot = 0;
    int all = 1, any = 0;
    for (int l = 0; l < 32; l++) {
      float v = x[w * 32 + l];
      sum += v;
      magnitude += std::fabs(v);
      ballot |= static_cast<unsigned>(v > 0) << l;
      all &= v > -2.0f;
      any |= v > 2.5f;
    }
    double tolerance = 1e-5 * magnitude;
    if (!(std::fabs(got_down[w] - sum) <= tolerance))
      return mismatch("warp_ops __shfl_down_sync sum", static_cast<std::size_t>(w), got_down[w], sum);
    if (got_ballots[w] != ballot)
      return mismatch("warp_ops __ballot_sync", static_cast<std::size_t>(w), got_ballots[w], ballot);
    if (got_votes[2 * w] != all || got_votes[2 * w + 1] != any)
      return mismatch("warp_ops __all_sync/__any_sync (2 all + any)", static_cast<std::size_t>(w),
                      got_votes[2 * w] * 2 + got_votes[2 * w + 1], all * 2 + any);
    for (int l = 0; l < 32; l++) {
      std::size_t i = static_cast<std::size_t>(w * 32 + l);
      if (!(std::fabs(got_butterfly[i] - sum) <= tolerance))
        return mismatch("warp_ops __shfl_xor_sync sum", i, got_butterfly[i], sum);
      double scan = 0;
      for (int j = l - l % 16; j <= l; j++)
        scan += x[w * 32 + j];
      if (!(std::fabs(got_scans[i] - scan) <= tolerance))
        return mismatch("warp_ops __shfl_up_sync scan (width 16)", i, got_scans[i], scan);
      float bc = x[w * 32 + 5] + x[w * 32 + (l & ~7) + ((l + 3) & 7)];
      if (got_broadcast[i] != bc)
        return mismatch("warp_ops __shfl_sync broadcast (width 32 and 8)", i, got_broadcast[i], bc);
      if (got_reversed[i] != x[w * 32 + 31 - l])
        return mismatch("warp_ops shared exchange after __syncwarp", i, got_reversed[i], x[w * 32 + 31 - l]);
    }
  }
  return {Outcome::kPass, ""};
}

// ---- mma_nn, mma_tn ----------------------------------------------------------------------------------------
unsigned short to_bf16(float f) {   // round to nearest even, as the prelude's tlc_f2bf
  unsigned u;
  std::memcpy(&u, &f, sizeof u);
  return static_cast<unsigned short>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
double from_bf16(unsigned short h) {
  unsigned u = static_cast<unsigned>(h) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// C = A B with A (M x K) and B (K x N) from floats in [-1, 1); both kernels store them in
// padded rows whose padding is NaN, so that a read past a valid element shows.
Outcome check_mma(void *module, bool transposed) {
  const int M = 50, N = 40, K = 70;
  std::vector<float> a(M * K), b(K * N);
  for (float &v : a)
    v = static_cast<float>(uniform() * 2 - 1);
  for (float &v : b)
    v = static_cast<float>(uniform() * 2 - 1);
  const unsigned short nan = 0xffff;
  int lda, ldb;
  std::vector<unsigned short> ha, hb;
  if (!transposed) {   // A: M x 72, B: K x 40
    lda = 72;
    ldb = N;
    ha.assign(static_cast<std::size_t>(M * lda), nan);
    hb.assign(static_cast<std::size_t>(K * ldb), nan);
    for (int m = 0; m < M; m++)
      for (int k = 0; k < K; k++)
        ha[m * lda + k] = to_bf16(a[m * K + k]);
    for (int k = 0; k < K; k++)
      for (int n = 0; n < N; n++)
        hb[k * ldb + n] = to_bf16(b[k * N + n]);
  } else {   // At: K x 56, Bt: N x 72
    lda = 56;
    ldb = 72;
    ha.assign(static_cast<std::size_t>(K * lda), nan);
    hb.assign(static_cast<std::size_t>(N * ldb), nan);
    for (int m = 0; m < M; m++)
      for (int k = 0; k < K; k++)
        ha[k * lda + m] = to_bf16(a[m * K + k]);
    for (int k = 0; k < K; k++)
      for (int n = 0; n < N; n++)
        hb[n * ldb + k] = to_bf16(b[k * N + n]);
  }
  Buffer<unsigned short> da(ha), db(hb);
  Buffer<float> dc(static_cast<std::size_t>(M * N));
  const char *name = transposed ? "mma_tn" : "mma_nn";
  std::string e = launch(module, name, {(N + 31) / 32, (M + 31) / 32, 128, 1, 0}, da.p, db.p, dc.p, M, N, K, lda, ldb);
  if (!e.empty())
    return {Outcome::kLaunchError, e};
  std::vector<float> c = dc.read();
  for (int m = 0; m < M; m++)
    for (int n = 0; n < N; n++) {
      // Against the float64 product of the inputs before rounding to bf16: each product is
      // off by at most about 2^-8 of itself. Against the product of the rounded inputs,
      // only the float accumulation differs.
      double exact = 0, rounded = 0, magnitude = 0;
      for (int k = 0; k < K; k++) {
        exact += static_cast<double>(a[m * K + k]) * b[k * N + n];
        rounded += from_bf16(to_bf16(a[m * K + k])) * from_bf16(to_bf16(b[k * N + n]));
        magnitude += std::fabs(static_cast<double>(a[m * K + k]) * b[k * N + n]);
      }
      std::size_t i = static_cast<std::size_t>(m * N + n);
      std::string what = std::string(name) + " C";
      if (!(std::fabs(c[i] - exact) <= 0x1p-7 * magnitude))
        return mismatch((what + " (bf16 tolerance against the float64 product)").c_str(), i, c[i], exact);
      if (!(std::fabs(c[i] - rounded) <= 1e-5 * magnitude))
        return mismatch((what + " (float accumulation of the bf16 inputs)").c_str(), i, c[i], rounded);
    }
  return {Outcome::kPass, ""};
}

struct Check {
  const char *name;
  std::function<Outcome(void *)> run;
};

const std::vector<Check> &checks() {
  static const std::vector<Check> all = {
      {"block reduction through shared memory (barriers, __syncthreads_count)", check_block_sum},
      {"2-D blocks: transpose through a shared tile", check_transpose},
      {"warp shuffles (idx, up, down, xor, widths 8 and 16), votes, __syncwarp", check_warp_ops},
      {"bf16 mma_nn: cp.async, ldmatrix.x4, ldmatrix.x2.trans, mma.m16n8k16",
       [](void *m) { return check_mma(m, false); }},
      {"bf16 mma_tn: cp.async, ldmatrix.x4.trans, ldmatrix.x2, mma.m16n8k16",
       [](void *m) { return check_mma(m, true); }},
  };
  return all;
}

// A planted bug and how the emulator must catch it.
struct Plant {
  const char *macro;
  const char *what;
  const char *check;       // the kernel the bug is in (a prefix of a check's name); nullptr: the compile
  Outcome::Kind caught_by;
  const char *message;     // for a failed launch or load: texts its message must contain, '|' between them
};

const Plant kPlants[] = {
    {"PLANT_MISSING_BARRIER", "no barrier between the steps of a tree reduction", "block reduction",
     Outcome::kMismatch, nullptr},
    {"PLANT_SWAP_A", "two registers of the mma A fragment swapped", "bf16 mma_nn", Outcome::kMismatch, nullptr},
    {"PLANT_WRONG_LDMATRIX", "B loaded by ldmatrix without .trans", "bf16 mma_nn", Outcome::kMismatch, nullptr},
    {"PLANT_MISSING_WAIT", "cp.async.wait_group waits for one group too few", "bf16 mma_nn", Outcome::kMismatch,
     nullptr},
    {"PLANT_TILE_EDGE", "one element too many copied at a tile's edge", "bf16 mma_tn", Outcome::kMismatch, nullptr},
    {"PLANT_DEADLOCK", "a lane waits at a barrier its warp's shuffle never reaches", "warp shuffles",
     Outcome::kLaunchError, "deadlock: thread 0: waiting at __syncthreads(); threads 1-31: waiting in __shfl_xor_sync"},
    {"PLANT_SHUFFLE_AFTER_EXIT", "a full-warp shuffle after half the lanes returned", "warp shuffles",
     Outcome::kLaunchError, "exited"},
    {"PLANT_MIXED_SHUFFLES", "half a warp in one shuffle, half in another", "warp shuffles", Outcome::kLaunchError,
     "the lanes of a warp operation must all reach the same one"},
    {"PLANT_WRITE_PAST_END", "a store past the end of an output", "block reduction", Outcome::kLaunchError,
     "kernel block_sum, block |, thread 0: invalid memory access (SIGSEGV)"},
    {"PLANT_COMPILE_ERROR", "a syntax error in the program", nullptr, Outcome::kLaunchError,
     "the C++ compiler could not compile the program"},
};

// Loads the program: intrinsics.cu itself, or a file that defines `macro` and includes it.
void *load(const std::string &cu_file, const std::string &scratch, const char *macro, std::string *error) {
  std::string path = cu_file;
  if (macro) {
    path = scratch + "/" + macro + ".cu";
    std::ofstream(path) << "#define " << macro << " 1\n#include \"" << cu_file << "\"\n";
  }
  setenv("TLC_EMU_SOURCE", path.c_str(), 1);
  void *module = nullptr;
  static const char image[] = "the emulator reads TLC_EMU_SOURCE instead";
  CUresult r = cu.ModuleLoadData(&module, image);
  if (r) {
    *error = error_text(r);
    return nullptr;
  }
  return module;
}

}  // namespace

// The sums of 16 blocks of block_sum with PLANT_MISSING_BARRIER, exactly, one a line.
static int print_racy_sums(const std::string &cu_file, const std::string &scratch) {
  std::string error;
  void *module = load(cu_file, scratch, "PLANT_MISSING_BARRIER", &error);
  if (!module)
    die(error);
  const int n = 16 * 256;
  std::vector<float> x(n);
  for (float &v : x)
    v = static_cast<float>(uniform());
  Buffer<float> dx(x), out(16);
  Buffer<int> counts(16);
  std::string e = launch(module, "block_sum", {16, 1, 256, 1, 0}, dx.p, out.p, counts.p, n);
  if (!e.empty())
    die(e);
  for (float v : out.read())
    std::printf("%a\n", static_cast<double>(v));
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 4 && !(argc == 5 && std::strcmp(argv[4], "--racy") == 0))
    die("usage: intrinsics_test LIBCUDA INTRINSICS_CU SCRATCH_DIR [--racy]");
  void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib)
    die(std::string("cannot load the emulator: ") + dlerror());
  struct { void **slot; const char *name; } symbols[] = {
      {(void **)&cu.Init, "cuInit"}, {(void **)&cu.DevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain"},
      {(void **)&cu.CtxSetCurrent, "cuCtxSetCurrent"}, {(void **)&cu.ModuleLoadData, "cuModuleLoadData"},
      {(void **)&cu.ModuleUnload, "cuModuleUnload"}, {(void **)&cu.ModuleGetFunction, "cuModuleGetFunction"},
      {(void **)&cu.MemAlloc, "cuMemAlloc_v2"}, {(void **)&cu.MemFree, "cuMemFree_v2"},
      {(void **)&cu.MemcpyHtoD, "cuMemcpyHtoD_v2"}, {(void **)&cu.MemcpyDtoH, "cuMemcpyDtoH_v2"},
      {(void **)&cu.LaunchKernel, "cuLaunchKernel"}, {(void **)&cu.GetErrorString, "cuGetErrorString"},
  };
  for (auto &s : symbols)
    if (!(*s.slot = dlsym(lib, s.name)))
      die(std::string("the emulator lacks ") + s.name);
  void *context = nullptr;
  check_cu(cu.Init(0), "cuInit");
  check_cu(cu.DevicePrimaryCtxRetain(&context, 0), "cuDevicePrimaryCtxRetain");
  check_cu(cu.CtxSetCurrent(context), "cuCtxSetCurrent");
  char *absolute = realpath(argv[2], nullptr);   // the planted variants include it from elsewhere
  if (!absolute)
    die(std::string("cannot find ") + argv[2]);
  std::string cu_file = absolute, scratch = argv[3];
  std::free(absolute);
  mkdir(scratch.c_str(), 0777);
  if (argc == 5)
    return print_racy_sums(cu_file, scratch);
  int failed = 0;

  // The correct kernels pass.
  std::string error;
  void *module = load(cu_file, scratch, nullptr, &error);
  if (!module)
    die("the correct kernels do not load: " + error);
  for (const Check &c : checks()) {
    Outcome o = c.run(module);
    std::printf("%s: %s%s%s\n", o.kind == Outcome::kPass ? "ok" : "FAIL", c.name, o.detail.empty() ? "" : ": ",
                o.detail.c_str());
    failed += o.kind != Outcome::kPass;
  }
  cu.ModuleUnload(module);

  // Every planted bug is caught.
  for (const Plant &p : kPlants) {
    Outcome o = {Outcome::kPass, ""};
    void *m = load(cu_file, scratch, p.macro, &error);
    if (!m) {
      o = {Outcome::kLaunchError, error};
    } else {
      for (const Check &c : checks())
        if (p.check && std::strncmp(c.name, p.check, std::strlen(p.check)) == 0)
          o = c.run(m);
      cu.ModuleUnload(m);
    }
    bool caught = o.kind == p.caught_by;
    for (std::string rest = p.message ? p.message : ""; !rest.empty();) {
      std::size_t bar = rest.find('|');
      caught &= o.detail.find(rest.substr(0, bar)) != std::string::npos;
      rest = bar == std::string::npos ? "" : rest.substr(bar + 1);
    }
    std::string first_line = o.detail.substr(0, o.detail.find('\n'));
    std::printf("%s: planted %s (%s) %s%s%s\n", caught ? "ok" : "FAIL", p.macro, p.what,
                caught ? "is caught: " : "is not caught as expected: ",
                o.kind == Outcome::kPass ? "the kernel passed" : "", first_line.c_str());
    failed += !caught;
  }
  // Failures of the kernels themselves, and of their launches, each with its message.
  std::string failures_cu = cu_file.substr(0, cu_file.rfind('/')) + "/failures.cu";
  setenv("TLC_EMU_SOURCE", failures_cu.c_str(), 1);
  void *fm = nullptr;
  check_cu(cu.ModuleLoadData(&fm, "failures.cu"), "cuModuleLoadData(failures.cu)");
  Buffer<int> out(256);
  struct Failure {
    const char *kernel;
    int n;
    CUdeviceptr pointer;
    CUresult code;
    const char *message;
  } failures[] = {
      {"overflow", 1000, out.p, 700, "overflowed its stack (TLC_EMU_STACK_KB sets its size)"},
      {"divide", 2, out.p, 700, "integer division by zero (SIGFPE)"},
      {"foreign_mask", 1, out.p, 719, "__shfl_sync with mask 0x"},
      {"divide", 3, 4096, 1, "kernel divide: argument 0 (0x1000) is a pointer into no device allocation"},
      {"no_such_kernel", 0, out.p, 500, "the program has no extern \"C\" __global__ function no_such_kernel"},
      {"indirect_barrier", 3, out.p, 0, ""},
  };
  for (const Failure &f : failures) {
    void *function = nullptr;
    CUresult r = cu.ModuleGetFunction(&function, fm, f.kernel);
    CUdeviceptr pointer = f.pointer;
    int n = f.n;
    void *params[] = {&pointer, &n};
    if (!r)
      r = cu.LaunchKernel(function, 2, 1, 1, 64, 1, 1, 0, nullptr, params, nullptr);
    std::string text = r ? error_text(r) : "";
    bool ok = r == f.code && text.find(f.message) != std::string::npos;
    if (f.code == 0 && r == 0) {   // it reached its barrier on fibers: the values crossed threads
      std::vector<int> got = out.read();
      for (int i = 0; i < 128; i++)
        ok &= got[static_cast<std::size_t>(i)] == (63 - i % 64) * f.n;
      std::printf("%s: %s, whose barrier is behind a macro and a function, runs on fibers\n", ok ? "ok" : "FAIL",
                  f.kernel);
    } else {
      std::printf("%s: %s (n = %d) fails with %d: %s\n", ok ? "ok" : "FAIL", f.kernel, f.n, r, text.c_str());
    }
    failed += !ok;
  }
  void *function = nullptr;
  check_cu(cu.ModuleGetFunction(&function, fm, "divide"), "cuModuleGetFunction(divide)");
  CUresult r = cu.LaunchKernel(function, 1, 1, 1, 2048, 1, 1, 0, nullptr, nullptr, nullptr);
  bool ok = r == 1 && error_text(r).find("at most 1024 threads a block") != std::string::npos;
  std::printf("%s: a block of 2048 threads is refused: %s\n", ok ? "ok" : "FAIL", error_text(r).c_str());
  failed += !ok;
  cu.ModuleUnload(fm);

  std::printf("emulator.intrinsics: %d failed\n", failed);
  return failed ? 1 : 0;
}
