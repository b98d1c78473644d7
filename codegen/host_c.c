// host_c.c: the trainer's C source. It describes the experiment to the runtime (a
// TlcModel: shapes, the arena's layout, every state tensor, the recipe), holds the
// training step and the evaluation pass as straight-line kernel calls on fixed arena
// offsets, and main() runs the epochs. `tlc FILE --emit=c` prints it.
#include "host_c.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

static void emit_kernel_decls(FILE *out, const KernelTable *cpu) {
  for (int i = 0; i < cpu->nfunctions; i++)
    fprintf(out, "void %s(void *bufs, int64_t begin, int64_t end);\n", cpu->functions[i]->name);
}

// The function a kernel runs: itself, or the first kernel with the same code. Launches are
// numbered over the training step, then the evaluation pass, on both devices alike.
static const char *function_of(const KernelTable *table, int launch) {
  return table->functions[table->function_of[launch]]->name;
}

// The arena offsets of node i's kernel buffers: its inputs, then its output unless it
// updates its inputs in place. Returns how many.
static int buffer_offsets(const Node *n, int i, const int64_t *offset, int64_t out[MAX_INPUTS + 1]) {
  int nbufs = 0;
  for (int j = 0; j < n->nin; j++)
    out[nbufs++] = offset[n->in[j]->id];
  if (!n->writes_inputs)
    out[nbufs++] = offset[i];
  return nbufs;
}

static void emit_offsets(FILE *out, const char *prefix, const int64_t *offsets, int nbufs) {
  for (int b = 0; b < nbufs; b++)
    fprintf(out, "%s%s%lld", b ? ", " : "", prefix, (long long)offsets[b]);
}

// One kernel call per node of [lo, hi), each under the line that says what it computes.
// *launch counts kernels across both steps, as the tables list them.
static void emit_steps(FILE *out, const char *name, const char *what, const Graph *g, Kernel **kernels,
                       const int64_t *offset, const KernelTable *cpu, int *launch, int lo, int hi) {
  fprintf(out, "\n// %s\nstatic void %s(char *A) {\n", what, name);
  for (int i = 0; i < g->n; i++) {
    const Kernel *k = kernels[i];
    if (!k)
      continue;
    if (i < lo || i >= hi) {
      ++*launch;
      continue;
    }
    int64_t offsets[MAX_INPUTS + 1];
    int nbufs = buffer_offsets(g->nodes[i], i, offset, offsets);
    fprintf(out, "  // %s\n  tlc_parallel_for(%lld, %s, (void *[]){", k->comment, (long long)kir_parallel_extent(k),
            function_of(cpu, (*launch)++));
    emit_offsets(out, "A + ", offsets, nbufs);
    fputs("});\n", out);
  }
  fputs("}\n", out);
}

static void emit_step(FILE *out, const char *name, const char *what, const Graph *g, Kernel **kernels,
                      const int64_t *offset, const KernelTable *cpu, int *launch) {
  emit_steps(out, name, what, g, kernels, offset, cpu, launch, 0, g->n);
}

// With a feature cache: the training step cut at the boundary, the frozen prefix (run once
// per training image) and the rest (run every step, from the cached boundary).
static void emit_cached_steps(FILE *out, const TrainerSpec *t) {
  int launch = 0, b = t->feature_node;
  const Node *boundary = t->train->nodes[b];
  emit_steps(out, "train_features", arena_printf(t->train->arena, "The frozen prefix up to %s, once per image.",
             boundary->name && *boundary->name ? boundary->name : "its output"), t->train, t->train_cpu,
             t->plan->train_offset, t->cpu_table, &launch, 0, b + 1);
  launch = 0;
  emit_steps(out, "train_head", "The training step from the cached features on.", t->train, t->train_cpu,
             t->plan->train_offset, t->cpu_table, &launch, b + 1, t->train->n);
}

// The same step on the GPU: the bundle's launches in order (each says its function, grid,
// block and shared memory), on the same offsets of the device arena.
static void emit_step_gpu(FILE *out, const char *name, const Graph *g, Kernel **kernels, const int64_t *offset,
                          const KernelTable *gpu, int *launch) {
  fprintf(out, "\nstatic void %s(TlcGpu *G) {\n", name);
  for (int i = 0; i < g->n; i++) {
    const Kernel *k = kernels[i];
    if (!k)
      continue;
    int64_t offsets[MAX_INPUTS + 1];
    int nbufs = buffer_offsets(g->nodes[i], i, offset, offsets);
    const char *function = function_of(gpu, *launch);
    fprintf(out, "  tlc_gpu_launch(G, %d, (const int64_t[]){", (*launch)++);
    emit_offsets(out, "", offsets, nbufs);
    bool shared = strcmp(function, k->name) != 0;
    fprintf(out, "}, %d);   // %s%s%s\n", nbufs, k->name, shared ? " as " : "", shared ? function : "");
  }
  fputs("}\n", out);
}

// A kernel that multiplies in bf16 is compared within bf16's precision: 8 bits of mantissa
// per operand, errors that partly cancel over a dot product.
#define CHECK_RTOL_F32 1e-4
#define CHECK_RTOL_BF16 2e-2

// The steps as tables of kernel calls, for `--check-gpu`: each kernel runs on both devices
// from the same inputs and the buffers it writes are compared.
static void emit_calls(FILE *out, const char *name, const Graph *g, Kernel **cpu_kernels, Kernel **gpu_kernels,
                       const int64_t *offset, const KernelTable *cpu, int *launch) {
  fprintf(out, "\nstatic const TlcKernelCall %s[] = {\n", name);
  for (int i = 0; i < g->n; i++) {
    const Kernel *k = cpu_kernels[i];
    if (!k)
      continue;
    int64_t offsets[MAX_INPUTS + 1];
    int nbufs = buffer_offsets(g->nodes[i], i, offset, offsets);
    fprintf(out, "  {\"%s\", %s, %lld, %d, %g, %d, {", k->name, function_of(cpu, *launch), (long long)kir_parallel_extent(k),
            *launch, gpu_kernels[i]->bf16 ? CHECK_RTOL_BF16 : CHECK_RTOL_F32, nbufs);
    ++*launch;
    emit_offsets(out, "", offsets, nbufs);
    unsigned written = 0, is_int = 0;
    fputs("}, {", out);
    for (int b = 0; b < nbufs; b++) {
      fprintf(out, "%s%lld", b ? ", " : "", (long long)(k->bufs[b].elems * (k->bufs[b].type == KT_I64 ? 8 : 4)));
      written |= (unsigned)k->bufs[b].written << b;
      is_int |= (unsigned)(k->bufs[b].type == KT_I64) << b;
    }
    fprintf(out, "}, 0x%x, 0x%x},\n", written, is_int);
  }
  fputs("};\n", out);
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

// n floats of a number list (one number is used for every channel, a short list repeats its
// last), or dflt when the argument is absent.
static void numbers_or(const Value *list, float *out, int n, const float *dflt) {
  for (int i = 0; i < n; i++)
    out[i] = !list ? dflt[i] : (float)value_number(list->items[i < list->n ? i : list->n - 1], "");
}

// One transform record as a TlcTransform initialiser; defaults are torchvision's.
static void emit_transform(FILE *out, const Value *t) {
  static const float imagenet_mean[4] = {0.485f, 0.456f, 0.406f, 0.406f}, imagenet_std[4] = {0.229f, 0.224f, 0.225f, 0.225f};
  static const float rrc_scale[2] = {0.08f, 1.0f}, rrc_ratio[2] = {3.0f / 4.0f, 4.0f / 3.0f};
  const char *k = t->s;
  if (!strcmp(k, "resize") || !strcmp(k, "center_crop")) {
    fprintf(out, "  {.kind = TLC_TF_%s, .size = %lld},\n", !strcmp(k, "resize") ? "RESIZE" : "CENTER_CROP",
            (long long)value_int(field(t, 0, "size"), "size"));
  } else if (!strcmp(k, "random_crop")) {
    const Value *pad = field(t, 1, "pad");
    fprintf(out, "  {.kind = TLC_TF_RANDOM_CROP, .size = %lld, .pad = %lld},\n", (long long)value_int(field(t, 0, "size"), "size"),
            (long long)(pad ? value_int(pad, "pad") : 0));
  } else if (!strcmp(k, "random_resized_crop")) {
    float scale[2], ratio[2];
    numbers_or(field(t, 1, "scale"), scale, 2, rrc_scale);
    numbers_or(field(t, 2, "ratio"), ratio, 2, rrc_ratio);
    fprintf(out, "  {.kind = TLC_TF_RANDOM_RESIZED_CROP, .size = %lld, .scale = {%.9g, %.9g}, .ratio = {%.9g, %.9g}},\n",
            (long long)value_int(field(t, 0, "size"), "size"), scale[0], scale[1], ratio[0], ratio[1]);
  } else if (!strcmp(k, "hflip") || !strcmp(k, "vflip")) {
    fprintf(out, "  {.kind = TLC_TF_%s, .p = %.9g},\n", !strcmp(k, "hflip") ? "HFLIP" : "VFLIP", number_or(field(t, 0, "p"), 0.5));
  } else if (!strcmp(k, "rotate")) {
    fprintf(out, "  {.kind = TLC_TF_ROTATE, .degrees = %.9g},\n", number_or(field(t, 0, "degrees"), 0));
  } else if (!strcmp(k, "color_jitter")) {
    fprintf(out, "  {.kind = TLC_TF_COLOR_JITTER, .brightness = %.9g, .contrast = %.9g, .saturation = %.9g, .hue = %.9g},\n",
            number_or(field(t, 0, "brightness"), 0), number_or(field(t, 1, "contrast"), 0),
            number_or(field(t, 2, "saturation"), 0), number_or(field(t, 3, "hue"), 0));
  } else if (!strcmp(k, "grayscale_to_rgb")) {
    fputs("  {.kind = TLC_TF_GRAYSCALE_TO_RGB},\n", out);
  } else {  // normalize
    float mean[4], std[4];
    numbers_or(field(t, 0, "mean"), mean, 4, imagenet_mean);
    numbers_or(field(t, 1, "std"), std, 4, imagenet_std);
    fprintf(out, "  {.kind = TLC_TF_NORMALIZE, .mean = {%.9g, %.9g, %.9g, %.9g}, .std = {%.9g, %.9g, %.9g, %.9g}},\n", mean[0],
            mean[1], mean[2], mean[3], std[0], std[1], std[2], std[3]);
  }
}

// The two transform lists as TlcTransform arrays; returns how many each holds.
static void emit_transforms(FILE *out, const Experiment *x, int count[2]) {
  const char *lists[2] = {"train_transform", "eval_transform"};
  for (int l = 0; l < 2; l++) {
    const Value *list = experiment_setting(x, lists[l]);
    count[l] = list ? list->n : 0;
    fprintf(out, "\nstatic const TlcTransform %s[] = {\n", lists[l]);
    for (int i = 0; i < count[l]; i++) {
      const Value *t = list->items[i];
      if (!strcmp(t->s, "normalize") && i != count[l] - 1)
        error_at(t->span, "normalize must be the last transform of %s", lists[l]);
      emit_transform(out, t);
    }
    if (!count[l])  // C has no empty arrays; the count says there is nothing
      fputs("  {.kind = TLC_TF_NORMALIZE, .std = {1, 1, 1, 1}},\n", out);
    fputs("};\n", out);
  }
}

// A C string literal of s (paths may hold quotes or backslashes).
static void emit_string(FILE *out, const char *s) {
  fputc('"', out);
  for (; *s; s++) {
    if (*s == '"' || *s == '\\')
      fputc('\\', out);
    fputc(*s, out);
  }
  fputc('"', out);
}

// The data section: format, default directory and the validation split's size.
static void emit_data(FILE *out, const Experiment *x) {
  const Value *data = experiment_setting(x, "data");
  const char *format = data ? data->s : "idx";
  const Value *dir = data ? field(data, 0, "dir") : NULL;
  const Value *second = data ? field(data, 1, !strcmp(format, "idx") ? "val" : !strcmp(format, "cifar10") ? "dev" : "val_split") : NULL;
  int64_t val_count = !strcmp(format, "idx") ? (second ? second->i : 5000) : !strcmp(format, "cifar10") && second ? second->i : 0;
  double val_split = !strcmp(format, "image_folder") && second ? value_number(second, "val_split") : 0;
  fprintf(out, "    .data_format = \"%s\", .data_dir = ", format);
  emit_string(out, dir ? dir->s : !strcmp(format, "idx") ? "/usr/share/datasets/fashion-mnist" : "data");
  fprintf(out, ", .val_count = %lld, .val_split = %.9g,\n", (long long)val_count, val_split);
  const Value *subset = experiment_setting(x, "subset");
  if (!subset)
    return;
  const Value *classes = field(subset, 0, "classes"), *per_class = field(subset, 1, "per_class");
  if (classes) {
    fputs("    .subset_classes = (const int32_t[]){", out);
    for (int i = 0; i < classes->n; i++)
      fprintf(out, "%s%lld", i ? ", " : "", (long long)classes->items[i]->i);
    fprintf(out, "}, .nsubset_classes = %d,\n", classes->n);
  }
  if (per_class)
    fprintf(out, "    .per_class = %lld,\n", (long long)per_class->i);
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
  int ntransforms[2];
  emit_transforms(out, x, ntransforms);
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
  emit_data(out, x);
  fprintf(out, "    .train_transform = train_transform, .ntrain_transform = %d,\n", ntransforms[0]);
  fprintf(out, "    .eval_transform = eval_transform, .neval_transform = %d,\n", ntransforms[1]);
  fprintf(out, "    .state_bytes = %lld, .io_offset = %lld, .io_bytes = %lld,\n", (long long)p->state_bytes,
          (long long)p->state_bytes, (long long)p->io_bytes);
  if (t->bundle_path)
    fprintf(out, "    .bundle = tlc_bundle_data, .bundle_size = %zu,\n", t->bundle_size);
  if (t->feature_node >= 0) {
    const Node *f = t->train->nodes[t->feature_node];
    fprintf(out, "    .features = %lld, .feature_floats = %lld,\n", (long long)p->train_offset[f->id],
            (long long)(shape_elems(f->shape) / t->train->batch));
    fputs("    .train_features = train_features, .train_head = train_head,\n", out);
  }
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
  if (t->bundle_path)   // tlc inspect finds it by its section
    fprintf(out, "// The GPU kernels: a FlatBuffer (runtime/bundle.fbs); `tlc inspect` lists them.\n"
            "__asm__(\".section .tlc_bundle,\\\"a\\\",@progbits\\n.balign 16\\ntlc_bundle_data:\\n\"\n"
            "        \".incbin \\\"%s\\\"\\n.previous\\n\");\n"
            "extern const unsigned char tlc_bundle_data[];\n\n", t->bundle_path);
  emit_kernel_decls(out, t->cpu_table);
  emit_params(out, t->train, t->model, p->train_offset);
  if (t->feature_node >= 0)
    fputs("static void train_features(char *A);\nstatic void train_head(char *A);\n", out);
  emit_model(out, t);
  int launch = 0;
  emit_step(out, "train_step", "One training step: forward, loss, backward, optimizer updates.", t->train, t->train_cpu,
            p->train_offset, t->cpu_table, &launch);
  emit_step(out, "eval_step", "The evaluation pass: running statistics, no dropout.", t->eval, t->eval_cpu,
            p->eval_offset, t->cpu_table, &launch);
  launch = 0;
  emit_step_gpu(out, "train_step_gpu", t->train, t->train_gpu, p->train_offset, t->program->table, &launch);
  emit_step_gpu(out, "eval_step_gpu", t->eval, t->eval_gpu, p->eval_offset, t->program->table, &launch);
  launch = 0;
  emit_calls(out, "train_calls", t->train, t->train_cpu, t->train_gpu, p->train_offset, t->cpu_table, &launch);
  emit_calls(out, "eval_calls", t->eval, t->eval_cpu, t->eval_gpu, p->eval_offset, t->cpu_table, &launch);
  if (t->feature_node >= 0)
    emit_cached_steps(out, t);
  fputs("\nstatic const TlcSteps steps = {train_step, eval_step, train_step_gpu, eval_step_gpu,\n"
        "    train_calls, sizeof train_calls / sizeof *train_calls, eval_calls, sizeof eval_calls / sizeof *eval_calls};\n",
        out);
  fputs("\nint main(int argc, char **argv) {\n"
        "  TlcRun run;\n"
        "  if (tlc_run_start(&run, &model, argc, argv))\n"
        "    return run.status;\n"
        "  for (int epoch = run.first_epoch; epoch < run.epochs; epoch++) {\n"
        "    tlc_epoch_begin(&run, epoch);\n"
        "    while (tlc_train_batch(&run))\n"
        "      if (tlc_run_step(&run, &steps, true) || tlc_train_batch_done(&run))\n"
        "        return run.status;\n"
        "    while (tlc_eval_batch(&run, TLC_SPLIT_VAL)) {\n"
        "      if (tlc_run_step(&run, &steps, false))\n"
        "        return run.status;\n"
        "      tlc_eval_batch_done(&run);\n"
        "    }\n"
        "    if (tlc_epoch_end(&run, epoch))\n"
        "      return run.status;\n"
        "  }\n"
        "  while (tlc_eval_batch(&run, TLC_SPLIT_TEST)) {\n"
        "    if (tlc_run_step(&run, &steps, false))\n"
        "      return run.status;\n"
        "    tlc_eval_batch_done(&run);\n"
        "  }\n"
        "  return tlc_run_finish(&run);\n"
        "}\n",
        out);
}
