// print.c: --emit=ir (the elaborated graph) and --emit=params (the state_dict keys).
#include "tlc.h"

void print_ir(FILE *out, Arena *a, const Graph *g) {
  fprintf(out, "# model %s, batch %lld, %d nodes, output %s\n", g->model, (long long)g->batch, g->n,
          shape_str(a, g->output->shape));
  for (int i = 0; i < g->n; i++) {
    const Node *n = g->nodes[i];
    const char *args = "";
    for (int j = 0; j < n->nin; j++)
      args = arena_printf(a, "%s%s%%%d", args, j ? ", " : "", n->in[j]->id);
    const char *op = n->nin ? arena_printf(a, "%s (%s)", node_describe(a, n), args) : node_describe(a, n);
    fprintf(out, "%%%-5d %-30s %-48s %s%s%s\n", n->id, n->name, op, shape_str(a, n->shape), n->is_int ? " int64" : "",
            n->frozen ? " frozen" : "");
  }
}

void print_params(FILE *out, const Graph *g) {
  for (int i = 0; i < g->nparams; i++) {
    const Param *p = g->params[i];
    fputs(p->name, out);
    if (p->dims == 0)
      fputs(" scalar", out);
    for (int d = 0; d < p->dims; d++)
      fprintf(out, "%c%lld", d ? 'x' : ' ', (long long)p->dim[d]);
    fputc('\n', out);
  }
}
