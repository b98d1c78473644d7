// optim.c: three training steps of a small model, optimizer updates included, compared
// with torch.optim on the same weights and batch (fixtures/optim_*.txt from
// make_fixtures.py): every parameter within 1e-5 of the largest.
//
// usage: optim SCRATCH_DIR MODEL.graph FIXTURE.txt
#include "check.h"
#include "exec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const Node *param_named(const Graph *g, const char *name) {
  for (int i = 0; i < g->n; i++)
    if (g->nodes[i]->op == OP_PARAM && !strcmp(g->nodes[i]->name, name))
      return g->nodes[i];
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 4)
    return 2;
  Arena *a = arena_new();
  Exec x = exec_build(a, exec_load_step(a, argv[2], true), argv[1], NULL);
  exec_fill_generated(&x);
  *(float *)x.buf[x.g->nodes[1]->id] = 1;   // the schedule's factor
  for (int step = 1; step <= 3; step++) {
    ((int64_t *)x.buf[x.g->nodes[0]->id])[1] = step;   // Adam's step count
    exec_train_step(&x);
  }
  FILE *f = fopen(argv[3], "r");
  if (!f)
    fatal("cannot read %s", argv[3]);
  static char line[1 << 16];
  int params = 0;
  while (fgets(line, sizeof line, f)) {
    char name[256];
    int used;
    if (sscanf(line, "param %255s%n", name, &used) != 1)
      continue;
    const Node *p = param_named(x.g, name);
    CHECK(p != NULL);
    if (!p)
      continue;
    const float *v = x.buf[p->id];
    char *s = line + used;
    double worst = 0, scale = 0;
    for (int64_t i = 0; i < shape_elems(p->shape); i++) {
      double want = strtod(s, &s);
      worst = fmax(worst, fabs(v[i] - want));
      scale = fmax(scale, fabs(want));
    }
    CHECK(worst <= 1e-5 * scale);
    printf("%s: largest difference %.3g of %.3g\n", name, worst, scale);
    params++;
  }
  fclose(f);
  CHECK(params == 2);
  return check_report();
}
