// test_kir_llvm.c: kernels built in the kernel IR, lowered through LLVM into a shared
// object, loaded with dlopen and run in chunks (as the thread pool runs them); results
// are compared with plain C written here. Two block kernels check the CPU meaning of the
// GPU constructs: shuffles, shared memory, a barrier, asynchronous copies, bf16, ldmatrix
// (plain and transposed) and the tensor-core tile; a loop kernel the CPU-only square
// transposes.
//
// usage: test_kir_llvm SCRATCH_DIR
#include "check.h"
#include "kir.h"

#include <dlfcn.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef void KernelFn(void *const *bufs, int64_t begin, int64_t end);

enum { N = 1003, M = 37, K = 29, NC = 41 };

// y[i] = max(2 x[i] - 1, 0)
static Kernel *scale_relu(Arena *a) {
  Kernel *k = kir_kernel(a, "scale_relu", "y = relu(2x - 1)");
  int x = kir_buf(k, "x", KT_F32, N), y = kir_buf(k, "y", KT_F32, N);
  int i = kir_var(k, "i", KT_I64);
  KStmt *loop = kir_for(k, k->body, i, kir_int(k, 0), kir_int(k, N), true);
  KExpr *v = kir_binary(k, KB_SUB, kir_binary(k, KB_MUL, kir_load(k, x, kir_ref(k, i)), kir_float(k, 2)), kir_float(k, 1));
  kir_store(k, loop, y, kir_ref(k, i), kir_binary(k, KB_MAX, v, kir_float(k, 0)));
  return k;
}

// c[M,NC] = a[M,K] b[K,NC], one row per parallel iteration
static Kernel *matmul(Arena *a) {
  Kernel *k = kir_kernel(a, "matmul", "c = a b");
  int A = kir_buf(k, "a", KT_F32, M * K), B = kir_buf(k, "b", KT_F32, K * NC), C = kir_buf(k, "c", KT_F32, M * NC);
  int i = kir_var(k, "i", KT_I64), j = kir_var(k, "j", KT_I64), kk = kir_var(k, "k", KT_I64);
  int acc = kir_var(k, "acc", KT_F32);
  KStmt *rows = kir_for(k, k->body, i, kir_int(k, 0), kir_int(k, M), true);
  KStmt *cols = kir_for(k, rows, j, kir_int(k, 0), kir_int(k, NC), false);
  kir_assign(k, cols, acc, kir_float(k, 0));
  KStmt *red = kir_for(k, cols, kk, kir_int(k, 0), kir_int(k, K), false);
  KExpr *av = kir_load(k, A, kir_add(k, kir_mul(k, kir_ref(k, i), kir_int(k, K)), kir_ref(k, kk)));
  KExpr *bv = kir_load(k, B, kir_add(k, kir_mul(k, kir_ref(k, kk), kir_int(k, NC)), kir_ref(k, j)));
  kir_assign(k, red, acc, kir_binary(k, KB_ADD, kir_ref(k, acc), kir_binary(k, KB_MUL, av, bv)));
  kir_store(k, cols, C, kir_add(k, kir_mul(k, kir_ref(k, i), kir_int(k, NC)), kir_ref(k, j)), kir_ref(k, acc));
  return k;
}

// Per row: loss = logsumexp(x) - x[label]; also counts (as 1.0/0.0) whether the label is
// the arg-max, exercising int64 buffers, exp/log, if/else and casts.
static Kernel *xent(Arena *a) {
  Kernel *k = kir_kernel(a, "xent", "cross-entropy per row");
  int x = kir_buf(k, "logits", KT_F32, M * NC), lab = kir_buf(k, "labels", KT_I64, M);
  int loss = kir_buf(k, "loss", KT_F32, M), hit = kir_buf(k, "hit", KT_F32, M);
  int r = kir_var(k, "r", KT_I64), c = kir_var(k, "c", KT_I64), best = kir_var(k, "best", KT_I64);
  int mx = kir_var(k, "mx", KT_F32), sum = kir_var(k, "sum", KT_F32);
  KStmt *rows = kir_for(k, k->body, r, kir_int(k, 0), kir_int(k, M), true);
  KExpr *base = kir_mul(k, kir_ref(k, r), kir_int(k, NC));
  kir_assign(k, rows, mx, kir_load(k, x, base));
  kir_assign(k, rows, best, kir_int(k, 0));
  KStmt *scan = kir_for(k, rows, c, kir_int(k, 1), kir_int(k, NC), false);
  KExpr *xc = kir_load(k, x, kir_add(k, base, kir_ref(k, c)));
  KStmt *orelse;
  KStmt *better = kir_if(k, scan, kir_binary(k, KB_LT, kir_ref(k, mx), xc), &orelse);
  kir_assign(k, better, mx, xc);
  kir_assign(k, better, best, kir_ref(k, c));
  kir_assign(k, orelse, mx, kir_ref(k, mx));
  kir_assign(k, rows, sum, kir_float(k, 0));
  KStmt *acc = kir_for(k, rows, c, kir_int(k, 0), kir_int(k, NC), false);
  KExpr *shifted = kir_binary(k, KB_SUB, kir_load(k, x, kir_add(k, base, kir_ref(k, c))), kir_ref(k, mx));
  kir_assign(k, acc, sum, kir_binary(k, KB_ADD, kir_ref(k, sum), kir_unary(k, KU_EXP, shifted)));
  KExpr *label = kir_load(k, lab, kir_ref(k, r));
  KExpr *xl = kir_load(k, x, kir_add(k, base, label));
  KExpr *lse = kir_binary(k, KB_ADD, kir_ref(k, mx), kir_unary(k, KU_LOG, kir_ref(k, sum)));
  kir_store(k, rows, loss, kir_ref(k, r), kir_binary(k, KB_SUB, lse, xl));
  KExpr *is_best = kir_binary(k, KB_EQ, kir_ref(k, best), label);
  kir_store(k, rows, hit, kir_ref(k, r), kir_cast(k, KT_F32, is_best));
  return k;
}

// Block kernels: G blocks of 64 threads. Each thread reads x[b * 64 + t], then writes what
// shuffles (xor 5, down 3, index 7) bring from its warp, and, through shared memory and a
// barrier, the value of thread 63 - t (in the other warp).
enum { G = 3, T = 64 };

static Kernel *lanes(Arena *a) {
  Kernel *k = kir_block_kernel(a, "lanes", "shuffles, shared memory and a barrier", G, T);
  int x = kir_buf(k, "x", KT_F32, G * T), out[4];
  for (int i = 0; i < 4; i++)
    out[i] = kir_buf(k, "out", KT_F32, G * T);
  int s = kir_shared(k, "s", KT_F32, T);
  int v = kir_var(k, "v", KT_F32), got = kir_var(k, "got", KT_F32);
  KExpr *at = kir_add(k, kir_mul(k, kir_block_index(k), kir_int(k, T)), kir_thread(k));
  kir_assign(k, k->body, v, kir_load(k, x, at));
  const KShuffle how[3] = {KSH_XOR, KSH_DOWN, KSH_IDX};
  const int64_t operand[3] = {5, 3, 7};
  for (int i = 0; i < 3; i++) {
    kir_shuffle(k, k->body, how[i], got, v, operand[i]);
    kir_store(k, k->body, out[i], at, kir_ref(k, got));
  }
  kir_store(k, k->body, s, kir_thread(k), kir_ref(k, v));
  kir_barrier(k, k->body);
  kir_store(k, k->body, out[3], at, kir_load(k, s, kir_sub(k, kir_int(k, T - 1), kir_thread(k))));
  return k;
}

// One warp: D[16][8] = A[16][16] B[16][8] on the tensor-core tile. A comes into shared memory by
// asynchronous copies (float), is converted to bf16 and loaded with ldmatrix.x4; B, stored
// k-major as bf16, is loaded transposed (ldmatrix.x2.trans gives the mma's column-major
// fragment); D is stored from the accumulator's layout.
static Kernel *tile(Arena *a) {
  Kernel *k = kir_block_kernel(a, "tile", "D = A B on mma.m16n8k16", 1, 32);
  int A = kir_buf(k, "a", KT_F32, 256), B = kir_buf(k, "b", KT_F32, 128), D = kir_buf(k, "d", KT_F32, 128);
  int a32 = kir_shared(k, "a as copied", KT_F32, 256), a16 = kir_shared(k, "a", KT_BF16, 256);
  int b16 = kir_shared(k, "b", KT_BF16, 128);
  int fa = kir_array(k, "fa", KT_U32, 4), fb = kir_array(k, "fb", KT_U32, 2), acc = kir_array(k, "acc", KT_F32, 4);
  KExpr *lane = kir_thread(k);
  for (int c = 0; c < 2; c++) {   // 64 copies of 16 bytes, two a lane
    KExpr *at = kir_mul(k, kir_add(k, lane, kir_int(k, 32 * c)), kir_int(k, 4));
    kir_cp_async(k, k->body, a32, at, A, at, kir_int(k, 16));
  }
  kir_cp_commit(k, k->body);
  kir_cp_wait(k, k->body, 0);
  kir_barrier(k, k->body);
  int i;
  KStmt *convert = kir_for(k, k->body, i = kir_var(k, "i", KT_I64), kir_int(k, 0), kir_int(k, 8), false);
  KExpr *e = kir_add(k, kir_mul(k, kir_ref(k, i), kir_int(k, 32)), lane);
  kir_store(k, convert, a16, e, kir_load(k, a32, e));
  KStmt *inside = kir_if(k, convert, kir_lt(k, e, kir_int(k, 128)), NULL);
  kir_store(k, inside, b16, e, kir_load(k, B, e));
  kir_barrier(k, k->body);
  KExpr *r8 = kir_mod(k, lane, 8), *tile8 = kir_div(k, lane, 8);
  KExpr *arow = kir_add(k, r8, kir_mul(k, kir_mod(k, tile8, 2), kir_int(k, 8)));
  kir_ldmatrix(k, k->body, fa, 4, false, a16, kir_add(k, kir_mul(k, arow, kir_int(k, 16)), kir_mul(k, kir_div(k, tile8, 2), kir_int(k, 8))));
  kir_ldmatrix(k, k->body, fb, 2, true, b16, kir_mul(k, kir_mod(k, lane, 16), kir_int(k, 8)));
  for (int j = 0; j < 4; j++)
    kir_assign_elem(k, k->body, acc, j, kir_float(k, 0));
  kir_mma(k, k->body, acc, fa, fb, acc);
  for (int j = 0; j < 4; j++) {   // row lane / 4 (+ 8), column 2 (lane % 4) (+ 1)
    KExpr *row = kir_add(k, kir_div(k, lane, 4), kir_int(k, 8 * (j / 2)));
    KExpr *col = kir_add(k, kir_mul(k, kir_mod(k, lane, 4), kir_int(k, 2)), kir_int(k, j % 2));
    kir_store(k, k->body, D, kir_add(k, kir_mul(k, row, kir_int(k, 8)), col), kir_elem(k, acc, j));
  }
  return k;
}

// Square blocks transposed in registers (KS_TRANSPOSE): parallel iteration b moves block b
// of a 16 x 40 matrix (rows 40 apart) into a 40-row one (rows 21 apart), 16 x 16 for b < 2
// and 8 x 8 at column 32.
enum { TR_ROWS = 16, TR_COLS = 40, TR_PITCH = 21 };
static Kernel *transpose(Arena *a) {
  Kernel *k = kir_kernel(a, "transpose", "y = x transposed, by blocks");
  int x = kir_buf(k, "x", KT_F32, TR_ROWS * TR_COLS), y = kir_buf(k, "y", KT_F32, TR_COLS * TR_PITCH);
  int b = kir_var(k, "b", KT_I64);
  KStmt *blocks = kir_for(k, k->body, b, kir_int(k, 0), kir_int(k, 3), true);
  KExpr *col = kir_mul(k, kir_ref(k, b), kir_int(k, 16));
  KStmt *wide, *narrow = NULL;
  wide = kir_if(k, blocks, kir_lt(k, kir_ref(k, b), kir_int(k, 2)), &narrow);
  kir_transpose(k, wide, y, kir_mul(k, col, kir_int(k, TR_PITCH)), TR_PITCH, x, col, TR_COLS, 16);
  for (int r = 0; r < 2; r++)   // column 32's two blocks of 8 rows
    kir_transpose(k, narrow, y, kir_add(k, kir_mul(k, col, kir_int(k, TR_PITCH)), kir_int(k, 8 * r)), TR_PITCH, x,
                  kir_add(k, col, kir_int(k, 8 * r * TR_COLS)), TR_COLS, 8);
  return k;
}

static void run_chunks(KernelFn *fn, void *const *bufs, int64_t extent) {
  int64_t cuts[] = {0, extent / 3, extent / 3 + 1, extent};
  for (int c = 0; c < 3; c++)
    fn(bufs, cuts[c], cuts[c + 1]);
}

static float *random_floats(int n, unsigned seed) {
  float *v = malloc(sizeof(float) * (size_t)n);
  srand(seed);
  for (int i = 0; i < n; i++)
    v[i] = (float)rand() / (float)RAND_MAX * 4.0f - 2.0f;
  return v;
}

static void check_scale_relu(void *so) {
  float *x = random_floats(N, 1), y[N];
  void *bufs[] = {x, y};
  run_chunks((KernelFn *)dlsym(so, "scale_relu"), bufs, N);
  int bad = 0;
  for (int i = 0; i < N; i++)
    bad += y[i] != fmaxf(x[i] * 2.0f - 1.0f, 0.0f);
  CHECK(bad == 0);
  free(x);
}

static void check_matmul(void *so) {
  float *a = random_floats(M * K, 2), *b = random_floats(K * NC, 3), c[M * NC];
  void *bufs[] = {a, b, c};
  run_chunks((KernelFn *)dlsym(so, "matmul"), bufs, M);
  double worst = 0;
  for (int i = 0; i < M; i++)
    for (int j = 0; j < NC; j++) {
      float want = 0;
      for (int k = 0; k < K; k++)
        want += a[i * K + k] * b[k * NC + j];
      worst = fmax(worst, fabs((double)(c[i * NC + j] - want)));
    }
  CHECK(worst < 1e-4);
  free(a);
  free(b);
}

static void check_xent(void *so) {
  float *x = random_floats(M * NC, 4), loss[M], hit[M];
  int64_t labels[M];
  for (int r = 0; r < M; r++)
    labels[r] = (r * 7) % NC;
  void *bufs[] = {x, labels, loss, hit};
  run_chunks((KernelFn *)dlsym(so, "xent"), bufs, M);
  int bad = 0;
  for (int r = 0; r < M; r++) {
    const float *row = x + r * NC;
    int best = 0;
    for (int c = 1; c < NC; c++)
      best = row[c] > row[best] ? c : best;
    double sum = 0;
    for (int c = 0; c < NC; c++)
      sum += exp((double)row[c] - row[best]);
    double want = row[best] + log(sum) - row[labels[r]];
    bad += fabs(want - loss[r]) > 1e-5 || hit[r] != (float)(best == labels[r]);
  }
  CHECK(bad == 0);
  free(x);
}

static void check_lanes(void *so) {
  float *x = random_floats(G * T, 5), out[4][G * T];
  void *bufs[] = {x, out[0], out[1], out[2], out[3]};
  run_chunks((KernelFn *)dlsym(so, "lanes"), bufs, G);
  int bad = 0;
  for (int i = 0; i < G * T; i++) {
    int warp = i / 32 * 32, lane = i % 32, t = i % T;
    bad += out[0][i] != x[warp + (lane ^ 5)];
    bad += out[1][i] != x[warp + (lane + 3 < 32 ? lane + 3 : lane)];
    bad += out[2][i] != x[warp + 7];
    bad += out[3][i] != x[i - t + T - 1 - t];
  }
  CHECK(bad == 0);
  free(x);
}

static double bf16(float f) {   // round to nearest even, as the lowering does
  uint32_t u;
  memcpy(&u, &f, 4);
  u = (u + 0x7fff + ((u >> 16) & 1)) & 0xffff0000u;
  memcpy(&f, &u, 4);
  return f;
}

static void check_tile(void *so) {
  float *a = random_floats(256, 6), *b = random_floats(128, 7), d[128];
  void *bufs[] = {a, b, d};
  run_chunks((KernelFn *)dlsym(so, "tile"), bufs, 1);
  double worst = 0;
  for (int r = 0; r < 16; r++)
    for (int c = 0; c < 8; c++) {
      double want = 0;
      for (int kk = 0; kk < 16; kk++)
        want += bf16(a[r * 16 + kk]) * bf16(b[kk * 8 + c]);
      worst = fmax(worst, fabs(want - d[r * 8 + c]));
    }
  CHECK(worst < 1e-4);
  if (worst >= 1e-4)
    fprintf(stderr, "  tile: largest error %g\n", worst);
  free(a);
  free(b);
}

static void check_transpose(void *so) {
  float *x = random_floats(TR_ROWS * TR_COLS, 8), y[TR_COLS * TR_PITCH];
  for (int i = 0; i < TR_COLS * TR_PITCH; i++)
    y[i] = -1;
  void *bufs[] = {x, y};
  run_chunks((KernelFn *)dlsym(so, "transpose"), bufs, 3);
  int bad = 0;
  for (int c = 0; c < TR_COLS; c++)
    for (int r = 0; r < TR_PITCH; r++)
      bad += y[c * TR_PITCH + r] != (r < TR_ROWS ? x[r * TR_COLS + c] : -1);
  CHECK(bad == 0);
  free(x);
}

int main(int argc, char **argv) {
  if (argc != 2)
    return 2;
  const char *dir = argv[1];
  mkdir(dir, 0755);
  Arena *a = arena_new();
  Kernel *kernels[] = {scale_relu(a), matmul(a), xent(a), lanes(a), tile(a), transpose(a)};
  char obj[4096], so_path[4096], ir[4096], cmd[16384];
  snprintf(obj, sizeof obj, "%s/kernels.o", dir);
  snprintf(so_path, sizeof so_path, "%s/kernels.so", dir);
  snprintf(ir, sizeof ir, "%s/kernels.ll", dir);
  const char *error = NULL;
  int rc = kir_llvm_emit(kernels, 6, "native", obj, ir, a, &error);
  if (rc)
    fprintf(stderr, "%s\n", error);
  CHECK(rc == 0);
  // Block kernels call the runtime's warp operations: the object gets its own copy.
  snprintf(cmd, sizeof cmd, "cc -O2 -shared -fPIC -I'%s' -o '%s' '%s' '%s/kir_cpu.c'", TLC_RUNTIME_DIR, so_path, obj,
           TLC_RUNTIME_DIR);
  CHECK(system(cmd) == 0);
  void *so = dlopen(so_path, RTLD_NOW);
  CHECK(so != NULL);
  if (so) {
    check_scale_relu(so);
    check_matmul(so);
    check_xent(so);
    check_lanes(so);
    check_tile(so);
    check_transpose(so);
  }
  // The optimised IR vectorised the elementwise kernel.
  snprintf(cmd, sizeof cmd, "grep -q '<[0-9]* x float>' '%s'", ir);
  CHECK(system(cmd) == 0);
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  kir_print(f, kernels[1]);
  fclose(f);
  CHECK(strstr(text, "kernel matmul {") && strstr(text, "acc = (acc + (b0[((i * 29) + k)] * b1[((k * 41) + j)]));"));
  free(text);
  arena_free(a);
  return check_report();
}
