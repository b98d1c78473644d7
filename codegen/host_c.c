// host_c.c: the trainer's C source. It describes the experiment to the runtime (a
// TlcModel: shapes, the arena's layout, every state tensor, the recipe), holds the
// training step and the evaluation pass as straight-line kernel calls on fixed arena
// offsets, and main() runs the epochs. `tlc FILE --emit=c` prints it.
#include "kir.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

static void emit_kernel_decls(FILE *out, Kernel **kernels, int n) {
  for (int i = 0; i < n; i++)
    if (kernels[i])
      fprintf(out, "void %s(void *bufs, int64_t begin, int64_t end);\n", kernels[i]->name);
}

// One kernel call per node, each under the line that says what it computes.
static void emit_step(FILE *out, const char *name, const char *what, const Graph *g, Kernel **kernels,
                      const int64_t *offset) {
  fprintf(out, "\n// %s\nstatic void %s(char *A) {\n", what, name);
  for (int i = 0; i < g->n; i++) {
    const Kernel *k = kernels[i];
    if (!k)
      continue;
    const Node *n = g->nodes[i];
    fprintf(out, "  // %s\n  tlc_parallel_for(%lld, %s, (void *[]){", k->comment, (long long)kir_parallel_extent(k), k->name);
    for (int j = 0; j < n->nin; j++)
      fprintf(out, "%sA + %lld", j ? ", " : "", (long long)offset[n->in[j]->id]);
    if (!n->writes_inputs)
      fprintf(out, ", A + %lld", (long long)offset[i]);
    fputs("});\n", out);
  }
  fputs("}\n", out);
}

static const char *init_of(const Param *p, int64_t *fan_in) {
  const Node *owner = p->owner;
  *fan_in = 0;
  const char *leaf = strrchr(p->name, '.') ? strrchr(p->name, '.') + 1 : p->name;
  if (owner->op == OP_BATCHNORM)
    return !strcmp(leaf, "weight") || !strcmp(leaf, "running_var") ? "TLC_INIT_ONE" : "TLC_INIT_ZERO";
  *fan_in = owner->op == OP_CONV2D ? owner->in[0]->shape.c / owner->attr.conv.groups * owner->attr.conv.kernel *
                                         owner->attr.conv.kernel
                                   : owner->in[0]->shape.c;
  return "TLC_INIT_UNIFORM_FAN_IN";
}

// The linear layer whose output is the logits, looking through layers that only pass
// them on (dropout, identity, flatten); NULL when the model ends otherwise. Its parameters
// are the classification head that --weights may re-initialise.
static const Node *head_layer(const Graph *model) {
  const Node *n = model->output;
  while (n && (n->op == OP_DROPOUT || n->op == OP_IDENTITY || n->op == OP_FLATTEN) && n->nin == 1)
    n = n->in[0];
  return n && n->op == OP_LINEAR ? n : NULL;
}

// Every tensor a checkpoint saves: parameters, buffers, optimizer state.
static void emit_params(FILE *out, const Graph *train, const Graph *model, const int64_t *offset) {
  const Node *head = head_layer(model);
  fputs("\nstatic const TlcParamInfo params[] = {\n", out);
  for (int i = 0; i < train->n; i++) {
    const Node *n = train->nodes[i];
    if (n->op != OP_PARAM && n->op != OP_STATE)
      continue;
    const Param *p = n->param;
    int64_t fan_in = 0;
    const char *init = n->op == OP_STATE ? "TLC_INIT_ZERO" : init_of(p, &fan_in);
    fprintf(out, "  {\"%s\", %d, {%lld, %lld, %lld, %lld}, %lld, %s, %s, %s, %lld, %s, %s},\n", n->name,
            n->shape.rank, (long long)n->shape.d[0], (long long)n->shape.d[1], (long long)n->shape.d[2],
            (long long)n->shape.d[3], (long long)offset[i], n->is_int ? "true" : "false",
            n->op == OP_PARAM && !p->buffer && !p->frozen ? "true" : "false", init, (long long)fan_in,
            n->op == OP_PARAM && head && p->owner == head ? "true" : "false", n->op == OP_STATE ? "true" : "false");
  }
  fputs("};\n", out);
}

static const Value *field(const Value *record, int position, const char *name) {
  for (int i = 0, pos = 0; i < record->nfields; i++) {
    const Field *f = &record->fields[i];
    if (f->name ? !strcmp(f->name, name) : pos++ == position)
      return f->value;
  }
  return NULL;
}

static double number_or(const Value *v, double dflt) { return v ? value_number(v, "") : dflt; }

// Transforms the runtime applies to IDX images: normalize, hflip, random_crop.
static void emit_transforms(FILE *out, const Experiment *x, int channels, float mean[4], float std[4]) {
  const char *lists[2] = {"train_transform", "eval_transform"};
  for (int c = 0; c < 4; c++)
    mean[c] = 0, std[c] = 1;
  fputs("\nstatic const TlcAugment augment[] = {\n", out);
  int naug = 0;
  for (int l = 0; l < 2; l++) {
    const Value *list = experiment_setting(x, lists[l]);
    for (int i = 0; list && i < list->n; i++) {
      const Value *t = list->items[i];
      if (!strcmp(t->s, "normalize")) {
        const Value *m = field(t, 0, "mean"), *s = field(t, 1, "std");
        for (int c = 0; c < channels && c < 4; c++) {
          mean[c] = m ? (float)value_number(m->items[c < m->n ? c : m->n - 1], "") : 0;
          std[c] = s ? (float)value_number(s->items[c < s->n ? c : s->n - 1], "") : 1;
        }
      } else if (l == 0 && !strcmp(t->s, "hflip")) {
        fprintf(out, "  {TLC_AUG_HFLIP, %.9g, 0, 0},\n", number_or(field(t, 0, "p"), 0.5));
        naug++;
      } else if (l == 0 && !strcmp(t->s, "random_crop")) {
        fprintf(out, "  {TLC_AUG_RANDOM_CROP, 0, %lld, %lld},\n", (long long)value_int(field(t, 0, "size"), "size"),
                (long long)(field(t, 1, "pad") ? value_int(field(t, 1, "pad"), "pad") : 0));
        naug++;
      } else {
        error_at(t->span, "'%s' is not available for IDX data yet (this version has normalize, hflip and "
                 "random_crop)", t->s);
      }
    }
  }
  if (!naug)
    fputs("  {TLC_AUG_NONE, 0, 0, 0},\n", out);
  fputs("};\n", out);
}

static void emit_schedule(FILE *out, const Experiment *x) {
  const Value *s = experiment_setting(x, "schedule");
  const char *kind = !s ? "constant" : s->s;
  fprintf(out, "    .schedule = {.kind = TLC_SCHED_%s", !strcmp(kind, "step") ? "STEP" : !strcmp(kind, "multistep") ? "MULTISTEP"
                                                        : !strcmp(kind, "cosine") ? "COSINE" : "CONSTANT");
  if (!s) {
    fputs("},\n", out);
    return;
  }
  const Value *warmup = field(s, -1, "warmup");
  if (warmup)
    fprintf(out, ", .warmup = %lld", (long long)warmup->i);
  if (!strcmp(kind, "step"))
    fprintf(out, ", .step_size = %lld, .gamma = %g", (long long)field(s, 0, "step_size")->i, number_or(field(s, 1, "gamma"), 0.1));
  if (!strcmp(kind, "multistep")) {
    const Value *m = field(s, 0, "milestones");
    fputs(", .milestones = {", out);
    for (int i = 0; i < m->n && i < 16; i++)
      fprintf(out, "%s%lld", i ? ", " : "", (long long)value_number(m->items[i], ""));
    fprintf(out, "}, .nmilestones = %d, .gamma = %g", m->n < 16 ? m->n : 16, number_or(field(s, 1, "gamma"), 0.1));
  }
  if (!strcmp(kind, "cosine"))
    fprintf(out, ", .eta_min_ratio = %g", number_or(field(s, 0, "eta_min"), 0) / x->opt.lr);
  fputs("},\n", out);
}

// s as a C string literal.
static void emit_c_string(FILE *out, const char *s) {
  fputc('"', out);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(out, "\\%c", c);
    else if (c < 32 || c >= 127)
      fprintf(out, "\\%03o", c);
    else
      fputc(c, out);
  }
  fputc('"', out);
}

// The experiment's `weights` file, as the trainer's default of --weights. A relative name is
// resolved now, against the directory of the file that names it (the current directory for
// --set), so that the trainer finds it from wherever it runs.
static void emit_weights(FILE *out, const Experiment *x) {
  const Value *w = experiment_setting(x, "weights");
  if (!w || w->kind != V_STRING) {
    fputs("    .weights = NULL,\n", out);
    return;
  }
  const char *from = w->span.src && strcmp(w->span.src->path, "--set") ? w->span.src->path : "";
  const char *slash = strrchr(from, '/');
  char dir[PATH_MAX], resolved[PATH_MAX], path[2 * PATH_MAX];
  if (slash)
    snprintf(dir, sizeof dir, "%.*s", slash == from ? 1 : (int)(slash - from), from);
  else
    snprintf(dir, sizeof dir, ".");
  bool relative = w->s[0] != '/' && realpath(dir, resolved);
  if (relative)
    snprintf(path, sizeof path, "%s/%s", resolved, w->s);
  fputs("    .weights = ", out);
  emit_c_string(out, relative ? path : w->s);
  fputs(",\n", out);
}

static void emit_model(FILE *out, const TrainerSpec *t) {
  const Graph *tr = t->train, *ev = t->eval;
  const Experiment *x = t->x;
  const MemPlan *p = t->plan;
  Shape in = tr->images->shape;
  float mean[4], std[4];
  emit_transforms(out, x, (int)in.c, mean, std);
  const Value *data = experiment_setting(x, "data");
  if (data && strcmp(data->s, "idx"))
    error_at(data->span, "%s data is not available yet (this version reads IDX files)", data->s);
  const Value *dir = data ? field(data, 0, "dir") : NULL;
  const Value *seed = experiment_setting(x, "seed");
  fprintf(out, "\nstatic const TlcModel model = {\n");
  fprintf(out, "    .name = \"%s\", .source = \"%s\",\n", tr->model, t->source);
  fprintf(out, "    .batch = %lld, .channels = %lld, .height = %lld, .width = %lld, .classes = %lld,\n", (long long)in.n,
          (long long)in.c, (long long)in.h, (long long)in.w, (long long)tr->logits->shape.c);
  fprintf(out, "    .arena_bytes = %lld, .params = params, .nparams = sizeof params / sizeof *params,\n",
          (long long)p->total_bytes);
  fprintf(out, "    .images = %lld, .labels = %lld, .seed = %lld, .lr = %lld,\n", (long long)p->train_offset[tr->images->id],
          (long long)p->train_offset[tr->labels->id], (long long)p->train_offset[tr->nodes[0]->id],
          (long long)p->train_offset[tr->nodes[1]->id]);
  fprintf(out, "    .train_loss = %lld, .train_logits = %lld, .eval_loss = %lld, .eval_logits = %lld,\n",
          (long long)p->train_offset[tr->loss->id], (long long)p->train_offset[tr->logits->id],
          (long long)p->eval_offset[ev->loss->id], (long long)p->eval_offset[ev->logits->id]);
  fprintf(out, "    .epochs = %lld, .seed_default = %lld,\n", (long long)x->epochs, (long long)(seed ? seed->i : 0));
  fprintf(out, "    .data_format = \"idx\", .data_dir = \"%s\", .val_count = %lld,\n",
          dir ? dir->s : "/usr/share/datasets/fashion-mnist", (long long)(data && field(data, 1, "val") ? field(data, 1, "val")->i : 5000));
  fprintf(out, "    .mean = {%.9g, %.9g, %.9g, %.9g}, .std = {%.9g, %.9g, %.9g, %.9g},\n", mean[0], mean[1], mean[2], mean[3], std[0],
          std[1], std[2], std[3]);
  fputs("    .augment = augment, .naugment = sizeof augment / sizeof *augment,\n", out);
  emit_schedule(out, x);
  emit_weights(out, x);
  fputs("};\n", out);
}

void host_c_emit(FILE *out, const TrainerSpec *t) {
  const MemPlan *p = t->plan;
  fprintf(out, "// The trainer tlc generated from %s: model %s, batch %lld.\n", t->source, t->train->model,
          (long long)t->train->batch);
  fprintf(out, "// Arena %lld bytes: state %lld, step inputs %lld, training activations %lld, evaluation %lld.\n",
          (long long)p->total_bytes, (long long)p->state_bytes, (long long)p->io_bytes, (long long)p->train_bytes,
          (long long)p->eval_bytes);
  fputs("// The kernels are in the object file tlc compiled beside it (tlc --emit=kir shows them).\n", out);
  fputs("#include \"tlcrt.h\"\n\n", out);
  emit_kernel_decls(out, t->train_kernels, t->train->n);
  emit_kernel_decls(out, t->eval_kernels, t->eval->n);
  emit_params(out, t->train, t->model, p->train_offset);
  emit_model(out, t);
  emit_step(out, "train_step", "One training step: forward, loss, backward, optimizer updates.", t->train, t->train_kernels,
            p->train_offset);
  emit_step(out, "eval_step", "The evaluation pass: running statistics, no dropout.", t->eval, t->eval_kernels,
            p->eval_offset);
  fputs("\nint main(int argc, char **argv) {\n"
        "  TlcRun run;\n"
        "  if (tlc_run_start(&run, &model, argc, argv))\n"
        "    return run.status;\n"
        "  for (int epoch = run.first_epoch; epoch < run.epochs; epoch++) {\n"
        "    tlc_epoch_begin(&run, epoch);\n"
        "    while (tlc_train_batch(&run)) {\n"
        "      train_step(run.arena);\n"
        "      if (tlc_train_batch_done(&run))\n"
        "        return run.status;\n"
        "    }\n"
        "    while (tlc_eval_batch(&run, TLC_SPLIT_VAL)) {\n"
        "      eval_step(run.arena);\n"
        "      tlc_eval_batch_done(&run);\n"
        "    }\n"
        "    if (tlc_epoch_end(&run, epoch))\n"
        "      return run.status;\n"
        "  }\n"
        "  while (tlc_eval_batch(&run, TLC_SPLIT_TEST)) {\n"
        "    eval_step(run.arena);\n"
        "    tlc_eval_batch_done(&run);\n"
        "  }\n"
        "  return tlc_run_finish(&run);\n"
        "}\n",
        out);
}
