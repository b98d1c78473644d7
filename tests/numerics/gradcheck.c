// gradcheck.c: checks the training step's gradients against finite differences. The
// step graph of a small model is lowered to kernels, compiled through LLVM into a shared
// object and run node by node (a test executor: the product runs the generated loop).
// For sampled elements of every trainable parameter, the gradient the backward kernels
// compute must match (L(p + h) - L(p - h)) / 2h of the mean loss the forward kernels
// compute, with the same dropout masks (same seed).
//
// usage: gradcheck SCRATCH_DIR FILE.graph
#include "check.h"
#include "exec.h"

#include <math.h>
#include <string.h>

static uint64_t rng_state = 88172645463325252ull;
static double uniform(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (double)(rng_state >> 11) / 9007199254740992.0;
}

static void fill_inputs(Exec *x) {
  const Graph *g = x->g;
  for (int i = 0; i < g->n; i++) {
    const Node *n = g->nodes[i];
    int64_t elems = shape_elems(n->shape);
    if (n->is_int) {
      int64_t *v = x->buf[i];
      for (int64_t e = 0; e < elems; e++)
        v[e] = n->op == OP_LABELS ? (int64_t)(uniform() * (double)g->logits->shape.c) : 7 + e;
      continue;
    }
    float *v = x->buf[i];
    bool var = n->param && strstr(n->name, "running_var");
    for (int64_t e = 0; e < elems && (n->op == OP_INPUT || n->op == OP_PARAM || n->op == OP_LR); e++)
      v[e] = n->op == OP_LR ? 1.0f : var ? (float)(0.5 + uniform()) : (float)(uniform() * 2 - 1);
  }
}

// (L(p + h) - L(p - h)) / 2h at element e of param.
static double finite_difference(Exec *x, float *p, int64_t e, float h) {
  float saved = p[e];
  p[e] = saved + h;
  double up = exec_forward(x);
  p[e] = saved - h;
  double down = exec_forward(x);
  p[e] = saved;
  return (up - down) / (2.0 * (double)h);
}

// Compares the computed gradient of a few elements of param with finite differences.
// The forward pass runs in float32, so a step h must be large enough for rounding not to
// swamp the difference, and small enough that no relu or max switches inside
// [p - h, p + h]: the gradient must match at one of two steps.
static void check_param(Exec *x, const Node *param, const Node *grad) {
  float *p = x->buf[param->id];
  int64_t elems = shape_elems(param->shape);
  int samples = elems < 4 ? (int)elems : 4;
  for (int s = 0; s < samples; s++) {
    int64_t e = (int64_t)(uniform() * (double)elems);
    exec_forward(x);
    exec_step(x);
    double analytic = ((float *)x->buf[grad->id])[e];
    static const float steps[2] = {1e-2f, 3e-3f};
    double numeric[2];
    bool ok = false;
    for (int k = 0; k < 2; k++) {
      numeric[k] = finite_difference(x, p, e, steps[k]);
      ok |= fabs(numeric[k] - analytic) <= 2e-2 * fmax(fabs(numeric[k]), fabs(analytic)) + 2e-4;
    }
    CHECK(ok);
    if (!ok)
      fprintf(stderr, "  %s[%lld]: backward %.6g, finite differences %.6g (h = 1e-2), %.6g (h = 3e-3)\n", param->name,
              (long long)e, analytic, numeric[0], numeric[1]);
  }
}

int main(int argc, char **argv) {
  if (argc != 3)
    return 2;
  Arena *a = arena_new();
  Graph *step = exec_load_step(a, argv[2], true);
  Exec x = exec_build(a, step, argv[1], NULL);
  fill_inputs(&x);
  int checked = 0;
  for (int i = 0; i < step->n; i++) {
    const Node *u = step->nodes[i];
    if (u->op == OP_SGD_UPDATE || u->op == OP_ADAM_UPDATE) {
      check_param(&x, u->in[0], u->in[1]);
      checked++;
    }
  }
  printf("%s: %d trainable tensors checked\n", argv[2], checked);
  CHECK(checked > 0);
  return check_report();
}
