// stats.c: --stats, the sizes and costs a user checks before training.
#include "tlc.h"

#include <string.h>

static int64_t param_count(const Param *p) {
  int64_t n = 1;
  for (int d = 0; d < p->dims; d++)
    n *= p->dim[d];
  return n;
}

// 11689512 -> "11,689,512"
static const char *grouped(char buf[32], int64_t v) {
  char raw[24];
  int len = snprintf(raw, sizeof raw, "%lld", (long long)v);
  int o = 0;
  for (int i = 0; i < len; i++) {
    if (i && (len - i) % 3 == 0 && raw[i - 1] != '-')
      buf[o++] = ',';
    buf[o++] = raw[i];
  }
  buf[o] = 0;
  return buf;
}

void print_stats(FILE *out, const Graph *g, const MemPlan *plan, const MemPlan *gpu) {
  int64_t trainable = 0, frozen = 0, buffers = 0, macs = 0, act_elems = 0, layers = 0;
  for (int i = 0; i < g->nparams; i++) {
    const Param *p = g->params[i];
    int64_t n = p->dims ? param_count(p) : 0;
    if (p->buffer)
      buffers += n;
    else if (p->frozen)
      frozen += n;
    else
      trainable += n;
  }
  for (int i = 0; i < g->n; i++) {
    const Node *n = g->nodes[i];
    macs += node_macs(n);
    act_elems += n->shape.n * n->shape.c * n->shape.h * n->shape.w;
    layers += n->op != OP_INPUT;
  }
  char b1[32], b2[32], b3[32];
  fprintf(out, "model              %s\n", g->model);
  fprintf(out, "input              [%lld,%lld,%lld,%lld]\n", (long long)g->batch, (long long)g->nodes[0]->shape.c,
          (long long)g->nodes[0]->shape.h, (long long)g->nodes[0]->shape.w);
  fprintf(out, "layers             %lld\n", (long long)layers);
  fprintf(out, "parameters         %s (trainable %s, frozen %s)\n", grouped(b1, trainable + frozen),
          grouped(b2, trainable), grouped(b3, frozen));
  fprintf(out, "buffers            %s (batchnorm running statistics)\n", grouped(b1, buffers));
  fprintf(out, "forward MACs       %s per image (%.3f G)\n", grouped(b1, macs), (double)macs / 1e9);
  fprintf(out, "activations        %s bytes fp32 at batch %lld (every layer output, before memory planning)\n",
          grouped(b1, act_elems * 4), (long long)g->batch);
  char b4[32];
  fprintf(out, "trainer arena      %s bytes at batch %lld: state %s, step inputs %s, training activations %s",
          grouped(b1, plan->total_bytes), (long long)g->batch, grouped(b2, plan->state_bytes), grouped(b3, plan->io_bytes),
          grouped(b4, plan->train_bytes));
  fprintf(out, ", evaluation %s\n", grouped(b1, plan->eval_bytes));
  if (gpu->bf16)
    fprintf(out, "GPU arena          %s bytes with bf16 activations (precision \"bf16\"): training activations %s, "
            "evaluation %s\n", grouped(b1, gpu->total_bytes), grouped(b2, gpu->train_bytes), grouped(b3, gpu->eval_bytes));
  else
    fputs("GPU arena          the trainer arena's (precision \"fp32\", or no tensor cores: every value fp32)\n", out);
}

// conv's gradient of kind op (conv2d_dw, conv2d_dx) in the step, if it has one.
static const Node *conv_grad(const Graph *train, const Node *conv, OpKind op) {
  for (int i = 0; i < train->n; i++) {
    const Node *n = train->nodes[i];
    if (n->op == op && n->forward == conv->forward)
      return n;
  }
  return NULL;
}

void print_conv_stats(FILE *out, Arena *a, const Graph *train) {
  fputs("convolutions       how the CPU computes each (compiler/ops.c, conv_algorithm); none stores a patch matrix\n", out);
  for (int i = 0; i < train->n; i++) {
    const Node *n = train->nodes[i];
    if (n->op != OP_CONV2D)
      continue;
    char b1[32];
    fprintf(out, "  %-24s %-45s %s -> %s", n->name, conv_algorithm(n), node_describe(a, n) + strlen("conv2d "),
            shape_str(a, n->shape));
    const Node *dw = conv_grad(train, n, OP_CONV2D_DW), *dx = conv_grad(train, n, OP_CONV2D_DX);
    if (dw && n->attr.conv.groups == 1)
      fprintf(out, "; weight gradient %s", conv_dw_dots(n) ? "as dot products" : conv_dw_by_patch(n) ? "by patch" : "by dy");
    if (dx && n->attr.conv.groups > 1)
      fprintf(out, "; input gradient %s", conv_depthwise_dx_padded(n) ? "on padded planes" : "direct");
    if (dw && n->attr.conv.groups > 1)
      fprintf(out, "; weight gradient %s", conv_depthwise_dw_padded(n) ? "on padded planes" : "direct");
    if (dw && dw->shape.rank == 2)   // split in chunks (compiler/schedule.c)
      fprintf(out, " in %lld chunks, %s bytes", (long long)dw->shape.d[0], grouped(b1, shape_elems(dw->shape) * 4));
    fputc('\n', out);
  }
}
