// blas_convs.c: the generated convolution and linear kernels of a training step against what
// linking a BLAS would give instead (issue 14, item 1): for each product of the step, its
// generated kernel and the same work done the way a BLAS-backed framework does it, patches
// of a few images at a time (im2col, then sgemm; col2im for the input gradient), with each
// library's cblas_sgemm loaded by dlopen (OpenBLAS, BLIS), so that one run times them all
// on the same inputs. The BLAS results are checked against the generated kernel's where the
// kernel computes the product alone: a comparison of wrong work would mean nothing. "fused"
// in the error column: the kernel does more (an epilogue, a bias, an accumulation), so its
// output is no oracle for the product, and its time includes that work.
//
//   build/bench/blas_convs SCRATCH_DIR FILE.graph [REPS]
// Times are CPU time on one thread (1 OpenBLAS and BLIS thread too).
#include "clock.h"
#include "exec.h"
#include "run_kernel.h"
#include "tlcrt.h"

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };
typedef void Sgemm(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                   const float *b, int ldb, float beta, float *c, int ldc);

typedef struct Blas {
  const char *name;
  Sgemm *sgemm;
} Blas;

// A library's cblas_sgemm, on one thread; NULL sgemm when the library is not installed.
static Blas load_blas(const char *name, const char *soname, const char *set_threads) {
  Blas b = {name, NULL};
  void *lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    fprintf(stderr, "note: %s not found (%s): Debian's libopenblas0-pthread and libblis4 provide them\n", soname,
            dlerror());
    return b;
  }
  void (*threads)(int) = (void (*)(int))dlsym(lib, set_threads);
  if (threads)
    threads(1);
  b.sgemm = (Sgemm *)dlsym(lib, "cblas_sgemm");
  return b;
}

// The geometry of one convolution (a linear layer is a 1x1 one on 1x1 images).
typedef struct Geo {
  int64_t n, ci, h, w, co, oh, ow, k, stride, pad, dil;
} Geo;

static Geo geo_of(const Node *f) {
  const Node *x = f->in[0];
  if (f->op == OP_LINEAR)
    return (Geo){x->shape.n, x->shape.c, 1, 1, f->shape.c, 1, 1, 1, 1, 0, 1};
  const ConvAttrs *c = &f->attr.conv;
  return (Geo){x->shape.n, x->shape.c, x->shape.h, x->shape.w, f->shape.c, f->shape.h, f->shape.w,
               c->kernel, c->stride, c->pad, c->dilation};
}

static bool plain_1x1(const Geo *g) { return g->k == 1 && g->stride == 1 && g->pad == 0; }

// cols[(ci*k + kh)*k + kw, j*P + pos] of images [n0, n0 + imgs): the patch matrix of a chunk.
static void im2col(const Geo *g, const float *x, int64_t n0, int64_t imgs, float *cols) {
  int64_t P = g->oh * g->ow, ld = imgs * P;
  for (int64_t ci = 0; ci < g->ci; ci++)
    for (int64_t kh = 0; kh < g->k; kh++)
      for (int64_t kw = 0; kw < g->k; kw++) {
        float *row = cols + ((ci * g->k + kh) * g->k + kw) * ld;
        for (int64_t j = 0; j < imgs; j++) {
          const float *plane = x + ((n0 + j) * g->ci + ci) * g->h * g->w;
          for (int64_t oh = 0; oh < g->oh; oh++) {
            int64_t ih = oh * g->stride - g->pad + kh * g->dil;
            float *out = row + j * P + oh * g->ow;
            for (int64_t ow = 0; ow < g->ow; ow++) {
              int64_t iw = ow * g->stride - g->pad + kw * g->dil;
              out[ow] = ih >= 0 && ih < g->h && iw >= 0 && iw < g->w ? plane[ih * g->w + iw] : 0;
            }
          }
        }
      }
}

// The transpose of im2col: each patch value added back into dx.
static void col2im(const Geo *g, const float *cols, int64_t n0, int64_t imgs, float *dx) {
  int64_t P = g->oh * g->ow, ld = imgs * P;
  memset(dx + n0 * g->ci * g->h * g->w, 0, sizeof(float) * (size_t)(imgs * g->ci * g->h * g->w));
  for (int64_t ci = 0; ci < g->ci; ci++)
    for (int64_t kh = 0; kh < g->k; kh++)
      for (int64_t kw = 0; kw < g->k; kw++) {
        const float *row = cols + ((ci * g->k + kh) * g->k + kw) * ld;
        for (int64_t j = 0; j < imgs; j++) {
          float *plane = dx + ((n0 + j) * g->ci + ci) * g->h * g->w;
          for (int64_t oh = 0; oh < g->oh; oh++) {
            int64_t ih = oh * g->stride - g->pad + kh * g->dil;
            if (ih < 0 || ih >= g->h)
              continue;
            for (int64_t ow = 0; ow < g->ow; ow++) {
              int64_t iw = ow * g->stride - g->pad + kw * g->dil;
              if (iw >= 0 && iw < g->w)
                plane[ih * g->w + iw] += row[j * P + oh * g->ow + ow];
            }
          }
        }
      }
}

// [N, C, P] images [n0, n0 + imgs) to [C, imgs*P] and back: a chunk's GEMM operand.
static void to_rows(const float *t, int64_t c, int64_t P, int64_t n0, int64_t imgs, float *rows) {
  for (int64_t j = 0; j < imgs; j++)
    for (int64_t ch = 0; ch < c; ch++)
      memcpy(rows + ch * imgs * P + j * P, t + ((n0 + j) * c + ch) * P, sizeof(float) * (size_t)P);
}

static void from_rows(const float *rows, int64_t c, int64_t P, int64_t n0, int64_t imgs, float *t) {
  for (int64_t j = 0; j < imgs; j++)
    for (int64_t ch = 0; ch < c; ch++)
      memcpy(t + ((n0 + j) * c + ch) * P, rows + ch * imgs * P + j * P, sizeof(float) * (size_t)P);
}

typedef struct Work {
  const Geo *g;
  const float *x, *w, *dy;   // what the op reads: (x, w) forward, (dy, w) dx, (dy, x) dw
  float *out;
  float *cols, *rows;        // a chunk's patches and its [C, imgs*P] operand
  int64_t chunk;             // images a GEMM
  double gemm_seconds;       // of the total, in sgemm
} Work;

static void timed_sgemm(Work *wk, const Blas *b, int ta, int tb, int m, int n, int k, const float *a, int lda,
                        const float *bm, int ldb, float beta, float *c, int ldc) {
  double t0 = cpu_now();
  b->sgemm(ROW_MAJOR, ta, tb, m, n, k, 1.0f, a, lda, bm, ldb, beta, c, ldc);
  wk->gemm_seconds += cpu_now() - t0;
}

// y = W cols, a chunk of images at a time.
static void blas_forward(Work *wk, const Blas *b) {
  const Geo *g = wk->g;
  int64_t P = g->oh * g->ow, K = g->ci * g->k * g->k;
  for (int64_t n0 = 0; n0 < g->n; n0 += wk->chunk) {
    int64_t imgs = wk->chunk < g->n - n0 ? wk->chunk : g->n - n0;
    const float *cols = wk->cols;
    if (plain_1x1(g) && imgs == 1)
      cols = wk->x + n0 * g->ci * P;
    else if (plain_1x1(g))
      to_rows(wk->x, g->ci, P, n0, imgs, wk->cols);
    else
      im2col(g, wk->x, n0, imgs, wk->cols);
    float *y = imgs == 1 ? wk->out + n0 * g->co * P : wk->rows;
    timed_sgemm(wk, b, NO_TRANS, NO_TRANS, (int)g->co, (int)(imgs * P), (int)K, wk->w, (int)K, cols,
                (int)(imgs * P), 0, y, (int)(imgs * P));
    if (imgs > 1)
      from_rows(wk->rows, g->co, P, n0, imgs, wk->out);
  }
}

// cols = W^T dy, then col2im.
static void blas_dx(Work *wk, const Blas *b) {
  const Geo *g = wk->g;
  int64_t P = g->oh * g->ow, K = g->ci * g->k * g->k;
  for (int64_t n0 = 0; n0 < g->n; n0 += wk->chunk) {
    int64_t imgs = wk->chunk < g->n - n0 ? wk->chunk : g->n - n0;
    const float *dy = wk->dy + n0 * g->co * P;
    if (imgs > 1)
      to_rows(wk->dy, g->co, P, n0, imgs, wk->rows), dy = wk->rows;
    bool direct = plain_1x1(g) && imgs == 1;
    float *cols = direct ? wk->out + n0 * g->ci * P : wk->cols;
    timed_sgemm(wk, b, TRANS, NO_TRANS, (int)K, (int)(imgs * P), (int)g->co, wk->w, (int)K, dy, (int)(imgs * P),
                0, cols, (int)(imgs * P));
    if (plain_1x1(g) && !direct)
      from_rows(wk->cols, g->ci, P, n0, imgs, wk->out);
    else if (!direct)
      col2im(g, wk->cols, n0, imgs, wk->out);
  }
}

// dW = sum over chunks of dy cols^T.
static void blas_dw(Work *wk, const Blas *b) {
  const Geo *g = wk->g;
  int64_t P = g->oh * g->ow, K = g->ci * g->k * g->k;
  for (int64_t n0 = 0; n0 < g->n; n0 += wk->chunk) {
    int64_t imgs = wk->chunk < g->n - n0 ? wk->chunk : g->n - n0;
    const float *dy = wk->dy + n0 * g->co * P, *cols = wk->x + n0 * g->ci * P;
    if (imgs > 1)
      to_rows(wk->dy, g->co, P, n0, imgs, wk->rows), dy = wk->rows;
    if (!(plain_1x1(g) && imgs == 1)) {
      if (plain_1x1(g))
        to_rows(wk->x, g->ci, P, n0, imgs, wk->cols);
      else
        im2col(g, wk->x, n0, imgs, wk->cols);
      cols = wk->cols;
    }
    timed_sgemm(wk, b, NO_TRANS, TRANS, (int)g->co, (int)K, (int)(imgs * P), dy, (int)(imgs * P), cols,
                (int)(imgs * P), n0 ? 1 : 0, wk->out, (int)K);
  }
}

// Input i of n when it has shape s (autodiff makes dx of (dy, w) and dw of (dy, x); fusion
// appends what else the kernel reads), else NULL.
static const float *input_shaped(const Exec *x, const Node *n, int i, Shape s) {
  return i < n->nin && !memcmp(&n->in[i]->shape, &s, sizeof s) ? x->buf[n->in[i]->id] : NULL;
}

// The model's layer, for attributes and shapes only: its inputs are the model graph's nodes,
// and its weight is no input there.
static const Node *layer_of(const Node *n) { return n->forward ? n->forward : n; }

// Whether the kernel computes the product alone, so its output is the BLAS result's oracle.
static bool product_alone(const Node *n) {
  const Node *f = layer_of(n);
  bool bias = n->op == OP_CONV2D ? f->attr.conv.bias : n->op == OP_LINEAR && f->attr.linear.bias;
  return !n->fused.activation && !n->fused.residual && !n->fused.bn.stats && !n->writes_inputs && !bias;
}

// The largest difference of a from the kernel's output over the latter's largest value. A
// weight gradient summed in chunks of images is its chunks' rows (sum_chunks adds them later).
static float relative_error(const float *a, const Node *n, const float *out, int64_t count) {
  int64_t rows = node_elems(n) / count;
  float d = 0, scale = 0;
  for (int64_t i = 0; i < count; i++) {
    float v = 0;
    for (int64_t r = 0; r < rows; r++)
      v += out[r * count + i];
    d = fmaxf(d, fabsf(a[i] - v));
    scale = fmaxf(scale, fabsf(v));
  }
  return scale > 0 ? d / scale : d;
}

typedef struct Row {
  const char *what;
  double ours, blas[2], gemm[2], flops;
  float error[2];   // largest difference over the largest value; -1: not comparable
} Row;

static bool is_product(const Node *n) {
  const Node *f = layer_of(n);
  if (f->op != OP_CONV2D && f->op != OP_LINEAR)
    return false;
  if (f->op == OP_CONV2D && f->attr.conv.groups != 1)
    return false;   // grouped and depthwise convolutions are no single GEMM
  return n->op == OP_CONV2D || n->op == OP_LINEAR || n->op == OP_CONV2D_DX || n->op == OP_LINEAR_DX ||
         n->op == OP_CONV2D_DW || n->op == OP_LINEAR_DW;
}

static Row measure(Exec *x, const Node *n, const Blas *libs, int reps) {
  const Node *f = layer_of(n);
  Geo g = geo_of(f);
  int64_t P = g.oh * g.ow, K = g.ci * g.k * g.k;
  Row r = {.what = x->kernel[n->id]->comment, .flops = 2.0 * (double)(g.n * g.co * P) * (double)K};
  double t0 = cpu_now();
  for (int i = 0; i < reps; i++)
    bench_run_kernel(x, n);
  r.ours = (cpu_now() - t0) / reps;
  Work wk = {.g = &g, .chunk = P >= 512 ? 1 : (512 + P - 1) / P};
  if (wk.chunk > g.n)
    wk.chunk = g.n;
  bool dx = n->op == OP_CONV2D_DX || n->op == OP_LINEAR_DX, dw = n->op == OP_CONV2D_DW || n->op == OP_LINEAR_DW;
  if (dx || dw)
    wk.dy = input_shaped(x, n, 0, f->shape);
  if (dw)
    wk.x = input_shaped(x, n, 1, f->in[0]->shape);
  else if (dx)
    wk.w = x->buf[n->in[1]->id];
  else
    wk.x = input_shaped(x, n, 0, f->in[0]->shape), wk.w = x->buf[n->in[1]->id];
  int64_t out_elems = dw ? g.co * K : dx ? g.n * g.ci * g.h * g.w : g.n * g.co * P;
  wk.out = malloc(sizeof(float) * (size_t)out_elems);
  wk.cols = malloc(sizeof(float) * (size_t)(K * wk.chunk * P));
  int64_t row_c = g.co > g.ci ? g.co : g.ci;
  wk.rows = malloc(sizeof(float) * (size_t)(row_c * wk.chunk * P));
  for (int l = 0; l < 2; l++) {
    r.error[l] = -1;
    if (!libs[l].sgemm || (!dx && !wk.x) || ((dx || dw) && !wk.dy) || (!dw && !wk.w))
      continue;
    wk.gemm_seconds = 0;
    t0 = cpu_now();
    for (int i = 0; i < reps; i++)
      (dw ? blas_dw : dx ? blas_dx : blas_forward)(&wk, &libs[l]);
    r.blas[l] = (cpu_now() - t0) / reps;
    r.gemm[l] = wk.gemm_seconds / reps;
    if (product_alone(n))
      r.error[l] = relative_error(wk.out, n, x->buf[n->id], out_elems);
  }
  free(wk.out), free(wk.cols), free(wk.rows);
  return r;
}

static void print_row(const Row *r, const Blas *libs) {
  printf("| %s | %.2f | %.1f |", r->what, r->ours * 1e3, r->flops / r->ours * 1e-9);
  for (int l = 0; l < 2; l++) {
    if (!libs[l].sgemm || r->blas[l] == 0) {
      printf(" - | - | - |");
      continue;
    }
    printf(" %.2f (%.2f in sgemm) | %.2fx |", r->blas[l] * 1e3, r->gemm[l] * 1e3, r->blas[l] / r->ours);
    if (r->error[l] < 0)
      printf(" fused |");
    else
      printf(" %.1e |", r->error[l]);
  }
  printf("\n");
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: blas_convs SCRATCH_DIR FILE.graph [REPS]\n");
    return 2;
  }
  int reps = argc > 3 ? atoi(argv[3]) : 2;
  Blas libs[2] = {load_blas("OpenBLAS", "libopenblas.so.0", "openblas_set_num_threads"),
                  load_blas("BLIS", "libblis.so.4", "bli_thread_set_num_threads")};
  Arena *a = arena_new();
  const Graph *g = exec_load_step(a, argv[2], true);
  Exec x = exec_build(a, g, argv[1], NULL);
  exec_fill_generated(&x);
  tlc_pool_init(1);
  exec_train_step(&x);   // every buffer holds what a step leaves in it
  double ours = 0, blas[2] = {0, 0}, gemm[2] = {0, 0};
  printf("| kernel | tlc ms | tlc GFLOPS | %s ms | its time / tlc's | error | %s ms | its time / tlc's | error |\n",
         libs[0].name, libs[1].name);
  printf("|---|---|---|---|---|---|---|---|---|\n");
  for (int i = 0; i < g->n; i++) {
    const Node *n = g->nodes[i];
    if (!x.fn[i] || !is_product(n))
      continue;
    Row r = measure(&x, n, libs, reps);
    print_row(&r, libs);
    ours += r.ours;
    for (int l = 0; l < 2; l++)
      blas[l] += r.blas[l], gemm[l] += r.gemm[l];
  }
  printf("\ntotal: tlc %.1f ms", ours * 1e3);
  for (int l = 0; l < 2; l++)
    if (libs[l].sgemm)
      printf("; %s %.1f ms (%.2fx tlc's), of which sgemm %.1f ms (%.2fx)", libs[l].name, blas[l] * 1e3,
             blas[l] / ours, gemm[l] * 1e3, gemm[l] / ours);
  printf("\n");
  return 0;
}
