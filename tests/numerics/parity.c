// parity.c: one training-mode forward and backward of a zoo model, compared with the
// PyTorch reference written by make_fixtures.py: the logits, the mean loss, and for every
// parameter the sum and absolute sum of its gradient and four sampled elements. Weights
// and inputs come from the generator both sides implement (see make_fixtures.py).
//
// usage: parity SCRATCH_DIR MODEL.graph FIXTURE.txt
#include "check.h"
#include "exec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// The largest error allowed, relative to the scale of the compared tensor.
static const double tolerance = 1e-4;

static const Node *grad_of(const Graph *g, const char *name) {
  for (int i = 0; i < g->n; i++) {
    const Node *n = g->nodes[i];
    if ((n->op == OP_SGD_UPDATE || n->op == OP_ADAM_UPDATE) && !strcmp(n->in[0]->name, name))
      return n->in[1];
  }
  return NULL;
}

static bool close_to(double got, double want, double scale) { return fabs(got - want) <= tolerance * scale + 1e-12; }

// A gradient that is zero in exact arithmetic (the bias of a batchnorm whose output only
// reaches another batchnorm) is float32 rounding noise on both sides, four orders of
// magnitude below the model's mean gradient: such a tensor must only stay negligible.
static const double noise_level = 1e-4, negligible = 1e-3;
static double mean_abs_grad;   // per element, over every parameter of the fixture

static void check_grad(Exec *x, char *line) {
  char name[256];
  double sum, abs_sum;
  int off;
  if (sscanf(line, "grad %255s %lf %lf%n", name, &sum, &abs_sum, &off) != 3)
    fatal("bad fixture line: %s", line);
  const Node *g = grad_of(x->g, name);
  CHECK(g != NULL);
  if (!g) {
    fprintf(stderr, "  no gradient for %s\n", name);
    return;
  }
  const float *v = x->buf[g->id];
  int64_t count = shape_elems(g->shape);
  double got_sum = 0, got_abs = 0;
  for (int64_t i = 0; i < count; i++)
    got_sum += v[i], got_abs += fabs(v[i]);
  bool noise = abs_sum < noise_level * mean_abs_grad * (double)count;
  bool ok = noise ? got_abs < negligible * mean_abs_grad * (double)count
                  : close_to(got_sum, sum, abs_sum) && close_to(got_abs, abs_sum, abs_sum);
  char *p = line + off;
  for (int s = 0; s < 4 && !noise; s++) {
    long long idx;
    double want;
    int used;
    if (sscanf(p, "%lld %lf%n", &idx, &want, &used) != 2)
      fatal("bad samples for %s", name);
    p += used;
    ok &= close_to(v[idx], want, abs_sum / (double)count * 10 + fabs(want));
  }
  CHECK(ok);
  if (!ok)
    fprintf(stderr, "  %s: gradient sum %.9g (PyTorch %.9g), abs sum %.9g (PyTorch %.9g)\n", name, got_sum, sum, got_abs,
            abs_sum);
}

// The mean absolute gradient per element over all "grad" lines.
static double fixture_mean_abs_grad(const Graph *g, FILE *f) {
  static char line[1 << 16];
  double total = 0, count = 0;
  while (fgets(line, sizeof line, f)) {
    char name[256];
    double sum, abs_sum;
    if (sscanf(line, "grad %255s %lf %lf", name, &sum, &abs_sum) != 3)
      continue;
    const Node *grad = grad_of(g, name);
    total += abs_sum;
    count += grad ? (double)shape_elems(grad->shape) : 0;
  }
  rewind(f);
  return count ? total / count : 0;
}

// The logits of a forward pass, against a fixture line of values.
static void check_logits(const char *what, const Graph *g, const float *logits, char *values) {
  double worst = 0, scale = 0;
  for (int64_t i = 0; i < shape_elems(g->logits->shape); i++) {
    double want = strtod(values, &values);
    worst = fmax(worst, fabs(logits[i] - want));
    scale = fmax(scale, fabs(want));
  }
  CHECK(worst <= tolerance * scale);
  printf("%s: largest error %.3g of %.3g\n", what, worst, scale);
}

static void check_fixture(Exec *x, Exec *eval, FILE *f) {
  static char line[1 << 16];
  const Graph *g = x->g;
  int grads = 0;
  mean_abs_grad = fixture_mean_abs_grad(g, f);
  while (fgets(line, sizeof line, f)) {
    if (!strncmp(line, "loss ", 5)) {
      double want = atof(line + 5), got = exec_forward(x);
      exec_step(x);
      CHECK(close_to(got, want, fabs(want)));
      printf("loss %.9g (PyTorch %.9g)\n", got, want);
    } else if (!strncmp(line, "logits ", 7)) {
      check_logits("logits", g, x->buf[g->logits->id], line + 7);
    } else if (!strncmp(line, "eval_logits ", 12)) {
      exec_forward(eval);
      check_logits("evaluation logits", eval->g, eval->buf[eval->g->logits->id], line + 12);
    } else if (!strncmp(line, "grad ", 5)) {
      check_grad(x, line);
      grads++;
    }
  }
  int trainable = 0;
  for (int i = 0; i < g->n; i++)
    trainable += g->nodes[i]->op == OP_SGD_UPDATE || g->nodes[i]->op == OP_ADAM_UPDATE;
  CHECK(grads == trainable);
  printf("%d parameter gradients compared\n", grads);
}

int main(int argc, char **argv) {
  if (argc != 4)
    return 2;
  Arena *a = arena_new();
  Graph *step = exec_load_step(a, argv[2], true);
  Exec x = exec_build(a, step, argv[1], NULL);
  exec_fill_generated(&x);
  Exec eval = exec_build(a, exec_load_step(a, argv[2], false), arena_printf(a, "%s/eval", argv[1]), NULL);
  exec_fill_generated(&eval);
  FILE *f = fopen(argv[3], "r");
  if (!f)
    fatal("cannot read %s", argv[3]);
  check_fixture(&x, &eval, f);
  fclose(f);
  return check_report();
}
