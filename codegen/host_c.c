// host_c.c: the trainer's C source. It describes the experiment to the runtime (a
// TlcModel: shapes, the arena's layout, every state tensor, the recipe), holds the
// training step and the evaluation pass as straight-line kernel calls on fixed arena
// offsets, and main() runs the epochs. `tlc FILE --emit=c` prints it.
#include "host_c.h"

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

// A kernel's buffers: the node's inputs, its output unless it updates its inputs in place,
// and a tensor's chunk statistics where they are apart from it (kernel_stats_node).
enum { MAX_BUFFERS = MAX_INPUTS + 2 };

// The arena offsets of node i's kernel buffers in step g's plan (bf16: the GPU's with bf16
// activations). Returns how many.
static int buffer_offsets(const Graph *g, bool bf16, int i, const int64_t *offset, int64_t out[MAX_BUFFERS]) {
  const Node *n = g->nodes[i];
  int nbufs = 0;
  for (int j = 0; j < n->nin; j++)
    out[nbufs++] = offset[n->in[j]->id];
  if (!n->writes_inputs)
    out[nbufs++] = offset[i];
  const Node *apart = kernel_stats_node(g, bf16, n);
  if (apart)
    out[nbufs++] = offset[apart->id] + value_stats_offset(g, apart, bf16);
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
    int64_t offsets[MAX_BUFFERS];
    int nbufs = buffer_offsets(g, false, i, offset, offsets);
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

// The same step on the GPU: the bundle's launches of nodes [lo, hi) in order (each says its
// function, grid, block and shared memory), on the same offsets of the device arena.
static void emit_steps_gpu(FILE *out, const char *name, const char *what, const Graph *g, Kernel **kernels,
                           const MemPlan *plan, const int64_t *offset, const KernelTable *gpu, int *launch, int lo,
                           int hi) {
  fputc('\n', out);
  if (what)
    fprintf(out, "// %s\n", what);
  fprintf(out, "static void %s(TlcGpu *G) {\n", name);
  for (int i = 0; i < g->n; i++) {
    const Kernel *k = kernels[i];
    if (!k)
      continue;
    if (i < lo || i >= hi) {
      ++*launch;
      continue;
    }
    int64_t offsets[MAX_BUFFERS];
    int nbufs = buffer_offsets(g, plan->bf16, i, offset, offsets);
    if (k->merged) {   // done by a launch over the whole arena, where the first of its kernels runs
      ++*launch;
      if (k->merged_first)
        fprintf(out, "  tlc_gpu_launch(G, %d, (const int64_t[]){0, 0}, 2);   // %s\n", k->merged_launch,
                function_of(gpu, k->merged_launch));
      continue;
    }
    if (k->pass1) {
      fprintf(out, "  tlc_gpu_launch(G, %d, (const int64_t[]){", k->pass1_launch);
      emit_offsets(out, "", offsets, nbufs);
      const char *function = function_of(gpu, k->pass1_launch);
      bool shared = strcmp(function, k->pass1->name) != 0;
      fprintf(out, "}, %d);   // %s%s%s\n", nbufs, k->pass1->name, shared ? " as " : "", shared ? function : "");
    }
    const char *function = function_of(gpu, *launch);
    fprintf(out, "  tlc_gpu_launch(G, %d, (const int64_t[]){", (*launch)++);
    emit_offsets(out, "", offsets, nbufs);
    bool shared = strcmp(function, k->name) != 0;
    fprintf(out, "}, %d);   // %s%s%s\n", nbufs, k->name, shared ? " as " : "", shared ? function : "");
  }
  fputs("}\n", out);
}

static void emit_step_gpu(FILE *out, const char *name, const Graph *g, Kernel **kernels, const MemPlan *plan,
                          const int64_t *offset, const KernelTable *gpu, int *launch) {
  emit_steps_gpu(out, name, NULL, g, kernels, plan, offset, gpu, launch, 0, g->n);
}

// The GPU's feature cache runs the same two parts of the training step as the CPU's, with
// the training step's launch numbers; the gather that fills the boundary between them is the
// runtime's to launch (TlcModel.feature_gather).
static void emit_cached_steps_gpu(FILE *out, const TrainerSpec *t) {
  int launch = 0, b = t->feature_node;
  emit_steps_gpu(out, "train_features_gpu", "The frozen prefix on the GPU, once per image.", t->train, t->train_gpu,
                 t->gpu_plan, t->gpu_plan->train_offset, t->program->table, &launch, 0, b + 1);
  launch = 0;
  emit_steps_gpu(out, "train_head_gpu", "The training step on the GPU from the gathered features on.", t->train,
                 t->train_gpu, t->gpu_plan, t->gpu_plan->train_offset, t->program->table, &launch, b + 1, t->train->n);
}

// A kernel that multiplies in bf16 is compared within bf16's precision: 8 bits of mantissa
// per operand, errors that partly cancel over a dot product.
#define CHECK_RTOL_F32 1e-4
#define CHECK_RTOL_BF16 2e-2

// A kernel is compared within bf16's tolerance when it multiplies in bf16 or reads or writes
// a buffer the GPU holds in bf16 (its inputs rounded, its output rounded).
static bool checked_as_bf16(const Kernel *gpu) {
  bool bf16 = gpu->bf16;
  for (int b = 0; b < kir_nparams(gpu); b++)
    bf16 |= gpu->bufs[b].type == KT_BF16;
  return bf16;
}

// The elements of buffer b of node n's GPU kernel that both devices compute: a first pass's
// partial sums after the output (reduction_partial_elems) are the GPU's own, not compared.
static int64_t result_elems(const Node *n, const Kernel *gpu, int b) {
  bool output = b == n->nin && !n->writes_inputs;
  return gpu->bufs[b].elems - (output ? node_elems(n) - node_result_elems(n) : 0);
}

// The steps as tables of kernel calls, for `--check-gpu`: each kernel runs on both devices
// from the same inputs and the buffers it writes are compared. A call lists the GPU kernel's
// buffers; the CPU's are the same but for statistics apart from their bf16 tensor on the GPU,
// which the CPU keeps after the tensor.
static void emit_calls(FILE *out, const char *name, const Graph *g, Kernel **cpu_kernels, Kernel **gpu_kernels,
                       const int64_t *offset, const MemPlan *gpu, const int64_t *gpu_offset, const KernelTable *cpu,
                       int *launch) {
  fprintf(out, "\nstatic const TlcKernelCall %s[] = {\n", name);
  for (int i = 0; i < g->n; i++) {
    const Kernel *k = cpu_kernels[i], *gk = gpu_kernels[i];
    if (!k)
      continue;
    int64_t offsets[MAX_BUFFERS], gpu_offsets[MAX_BUFFERS];
    int nbufs = buffer_offsets(g, gpu->bf16, i, gpu_offset, gpu_offsets);
    buffer_offsets(g, false, i, offset, offsets);
    const Node *apart = kernel_stats_node(g, gpu->bf16, g->nodes[i]);
    if (apart)
      offsets[nbufs - 1] = offset[apart->id] + value_stats_offset(g, apart, false);
    // On the GPU: a first pass before the kernel, or the launch over the whole arena that does
    // a run of updates at the first of them (and nothing at the others).
    int gpu_launch = !gk->merged ? *launch : gk->merged_first ? gk->merged_launch : -1;
    fprintf(out, "  {\"%s\", %s, %lld, %d, %d, %d, %g, %d, {", k->name, function_of(cpu, *launch),
            (long long)kir_parallel_extent(k), gk->pass1 ? gk->pass1_launch : -1, gpu_launch, gk->merged,
            checked_as_bf16(gk) ? CHECK_RTOL_BF16 : CHECK_RTOL_F32, nbufs);
    ++*launch;
    emit_offsets(out, "", offsets, nbufs);
    // Compared: what the GPU writes (a kernel with nothing to do on the GPU writes nothing there).
    unsigned written = 0, is_int = 0, bf16 = 0;
    fputs("}, {", out);
    for (int b = 0; b < nbufs; b++) {
      fprintf(out, "%s%lld", b ? ", " : "", (long long)(result_elems(g->nodes[i], gk, b) * (gk->bufs[b].type == KT_I64 ? 8 : 4)));
      written |= (unsigned)gk->bufs[b].written << b;
      is_int |= (unsigned)(gk->bufs[b].type == KT_I64) << b;
      bf16 |= (unsigned)(gk->bufs[b].type == KT_BF16) << b;
    }
    fputs("}, {", out);
    emit_offsets(out, "", gpu_offsets, nbufs);
    fprintf(out, "}, 0x%x, 0x%x, 0x%x},\n", written, is_int, bf16);
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

// One transform as a TlcTransform initialiser.
static void emit_transform(FILE *out, const Transform *t) {
  static const char *const kinds[] = {
      [TF_RESIZE] = "RESIZE", [TF_CENTER_CROP] = "CENTER_CROP", [TF_RANDOM_CROP] = "RANDOM_CROP",
      [TF_RANDOM_RESIZED_CROP] = "RANDOM_RESIZED_CROP", [TF_HFLIP] = "HFLIP", [TF_VFLIP] = "VFLIP",
      [TF_ROTATE] = "ROTATE", [TF_COLOR_JITTER] = "COLOR_JITTER", [TF_NORMALIZE] = "NORMALIZE",
      [TF_GRAYSCALE_TO_RGB] = "GRAYSCALE_TO_RGB"};
  fprintf(out, "  {.kind = TLC_TF_%s", kinds[t->kind]);
  switch (t->kind) {
  case TF_RESIZE:
    if (!t->size) {
      fprintf(out, ", .height = %lld, .width = %lld", (long long)t->height, (long long)t->width);
      break;
    }
    fprintf(out, ", .size = %lld", (long long)t->size);
    break;
  case TF_CENTER_CROP: fprintf(out, ", .size = %lld", (long long)t->size); break;
  case TF_RANDOM_CROP: fprintf(out, ", .size = %lld, .pad = %lld", (long long)t->size, (long long)t->pad); break;
  case TF_RANDOM_RESIZED_CROP:   // the runtime's fields are floats: print what they will hold
    fprintf(out, ", .size = %lld, .scale = {%.9g, %.9g}, .ratio = {%.9g, %.9g}", (long long)t->size, (float)t->scale[0],
            (float)t->scale[1], (float)t->ratio[0], (float)t->ratio[1]);
    break;
  case TF_HFLIP:
  case TF_VFLIP: fprintf(out, ", .p = %.9g", t->p); break;
  case TF_ROTATE: fprintf(out, ", .degrees = %.9g", t->degrees); break;
  case TF_COLOR_JITTER:
    fprintf(out, ", .brightness = %.9g, .contrast = %.9g, .saturation = %.9g, .hue = %.9g", t->jitter[0], t->jitter[1],
            t->jitter[2], t->jitter[3]);
    break;
  case TF_NORMALIZE:
    fprintf(out, ", .mean = {%.9g, %.9g, %.9g, %.9g}, .std = {%.9g, %.9g, %.9g, %.9g}", (float)t->mean[0],
            (float)t->mean[1], (float)t->mean[2], (float)t->mean[3], (float)t->std[0], (float)t->std[1],
            (float)t->std[2], (float)t->std[3]);
    break;
  case TF_GRAYSCALE_TO_RGB: break;
  }
  fputs("},\n", out);
}

// A transform list as a TlcTransform array.
static void emit_transforms(FILE *out, const char *name, const TransformList *list) {
  fprintf(out, "\nstatic const TlcTransform %s[] = {\n", name);
  for (int i = 0; i < list->n; i++)
    emit_transform(out, &list->items[i]);
  if (!list->n)  // C has no empty arrays; the count says there is nothing
    fputs("  {.kind = TLC_TF_NORMALIZE, .std = {1, 1, 1, 1}},\n", out);
  fputs("};\n", out);
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

// The data section: format, default directory, the validation split, class names, the subset.
static void emit_data(FILE *out, const DataSource *d) {
  static const char *const formats[] = {[DATA_IDX] = "idx", [DATA_IMAGE_FOLDER] = "image_folder",
                                        [DATA_CIFAR10] = "cifar10", [DATA_FLOWERS102] = "flowers102"};
  fprintf(out, "    .data_format = \"%s\", .data_dir = ", formats[d->format]);
  emit_c_string(out, d->dir);
  fprintf(out, ", .val_count = %lld, .dev_batch = %d, .val_split = %.9g,\n", (long long)d->val_count, d->dev_batch,
          d->val_split);
  if (d->class_names) {
    fputs("    .data_class_names = (const char *const[]){", out);
    for (int i = 0; i < d->nclass_names; i++) {
      fputs(i ? ", " : "", out);
      emit_c_string(out, d->class_names[i]);
    }
    fprintf(out, "}, .ndata_class_names = %d,\n", d->nclass_names);
  }
  if (d->subset_classes) {
    fputs("    .subset_classes = (const int32_t[]){", out);
    for (int i = 0; i < d->nsubset_classes; i++)
      fprintf(out, "%s%lld", i ? ", " : "", (long long)d->subset_classes[i]);
    fprintf(out, "}, .nsubset_classes = %d,\n", d->nsubset_classes);
  }
  if (d->per_class)
    fprintf(out, "    .per_class = %lld,\n", (long long)d->per_class);
}

static void emit_schedule(FILE *out, const Recipe *r) {
  static const char *const kinds[] = {[SCHED_CONSTANT] = "CONSTANT", [SCHED_STEP] = "STEP",
                                      [SCHED_MULTISTEP] = "MULTISTEP", [SCHED_COSINE] = "COSINE"};
  const Schedule *s = &r->schedule;
  fprintf(out, "    .schedule = {.kind = TLC_SCHED_%s, .lr = %.9g", kinds[s->kind], r->opt.lr);
  if (s->warmup)
    fprintf(out, ", .warmup = %lld", (long long)s->warmup);
  if (s->kind == SCHED_STEP)
    fprintf(out, ", .step_size = %lld, .gamma = %g", (long long)s->step_size, s->gamma);
  if (s->kind == SCHED_MULTISTEP) {
    fputs(", .milestones = {", out);
    for (int i = 0; i < s->nmilestones; i++)
      fprintf(out, "%s%lld", i ? ", " : "", (long long)s->milestones[i]);
    fprintf(out, "}, .nmilestones = %d, .gamma = %g", s->nmilestones, s->gamma);
  }
  if (s->kind == SCHED_COSINE)   // as a fraction of the learning rate, which may be 0
    fprintf(out, ", .eta_min_ratio = %g", r->opt.lr > 0 ? s->eta_min / r->opt.lr : 0);
  fputs("},\n", out);
}

// The experiment's `weights` file (resolved by the recipe), the trainer's default of --weights.
static void emit_weights(FILE *out, const Recipe *r) {
  fputs("    .weights = ", out);
  if (r->weights_path)
    emit_c_string(out, r->weights_path);
  else
    fputs("NULL", out);
  fputs(",\n", out);
}

// `.parameters` and `.trainable_parameters`, counted as tlc --stats counts them, for run.json.
static void emit_parameter_counts(FILE *out, const Graph *model) {
  int64_t all = 0, trainable = 0;
  for (int i = 0; i < model->nparams; i++) {
    const Param *p = model->params[i];
    int64_t n = p->dims ? 1 : 0;   // a scalar counts as nothing, as in --stats
    for (int d = 0; d < p->dims; d++)
      n *= p->dim[d];
    all += p->buffer ? 0 : n;
    trainable += p->buffer || p->frozen ? 0 : n;
  }
  fprintf(out, "    .parameters = %lld, .trainable_parameters = %lld,\n", (long long)all, (long long)trainable);
}

static void emit_model(FILE *out, const TrainerSpec *t) {
  const Graph *tr = t->train, *ev = t->eval;
  const Recipe *r = t->recipe;
  const MemPlan *p = t->plan;
  Shape in = tr->images->shape;
  emit_transforms(out, "train_transform", &r->train_transform);
  emit_transforms(out, "eval_transform", &r->eval_transform);
  fprintf(out, "\nstatic const TlcModel model = {\n");
  fprintf(out, "    .name = \"%s\", .source = \"%s\",\n", tr->model, t->source);
  fprintf(out, "    .batch = %lld, .channels = %lld, .height = %lld, .width = %lld, .classes = %lld,\n", (long long)in.n,
          (long long)in.c, (long long)in.h, (long long)in.w, (long long)tr->logits->shape.c);
  fprintf(out, "    .arena_bytes = %lld, .gpu_arena_bytes = %lld, .gpu_bf16 = %s,\n", (long long)p->total_bytes,
          (long long)t->gpu_plan->total_bytes, t->gpu_plan->bf16 ? "true" : "false");
  fputs("    .params = params, .nparams = sizeof params / sizeof *params,\n", out);
  fprintf(out, "    .images = %lld, .labels = %lld, .seed = %lld, .lr = %lld,\n", (long long)p->train_offset[tr->images->id],
          (long long)p->train_offset[tr->labels->id], (long long)p->train_offset[tr->nodes[0]->id],
          (long long)p->train_offset[tr->nodes[1]->id]);
  fprintf(out, "    .train_loss = %lld, .train_logits = %lld, .eval_loss = %lld, .eval_logits = %lld,\n",
          (long long)p->train_offset[tr->loss->id], (long long)p->train_offset[tr->logits->id],
          (long long)p->eval_offset[ev->loss->id], (long long)p->eval_offset[ev->logits->id]);
  fprintf(out, "    .epochs = %lld, .seed_default = %lld, .test_every = %lld,\n", (long long)r->epochs, (long long)r->seed,
          (long long)r->test_every);
  emit_data(out, &r->data);
  fprintf(out, "    .train_transform = train_transform, .ntrain_transform = %d,\n", r->train_transform.n);
  fprintf(out, "    .eval_transform = eval_transform, .neval_transform = %d,\n", r->eval_transform.n);
  fprintf(out, "    .state_bytes = %lld, .io_offset = %lld, .io_bytes = %lld,\n", (long long)p->state_bytes,
          (long long)p->state_bytes, (long long)p->io_bytes);
  if (t->bundle_path)
    fprintf(out, "    .bundle = tlc_bundle_data, .bundle_size = %zu, .augment = %d,\n", t->bundle_size, t->augment);
  if (t->feature_node >= 0) {
    const Node *f = t->train->nodes[t->feature_node];
    fprintf(out, "    .features = %lld, .feature_floats = %lld,\n", (long long)p->train_offset[f->id],
            (long long)(shape_elems(f->shape) / t->train->batch));
    fputs("    .train_features = train_features, .train_head = train_head,\n", out);
    fprintf(out, "    .train_features_gpu = train_features_gpu, .train_head_gpu = train_head_gpu, .feature_gather = %d,\n",
            t->feature_gather);
  }
  emit_schedule(out, r);
  emit_weights(out, r);
  emit_parameter_counts(out, t->model);
  fputs("};\n", out);
}

void host_c_emit(FILE *out, const TrainerSpec *t) {
  const MemPlan *p = t->plan, *gp = t->gpu_plan;
  fprintf(out, "// The trainer tlc generated from %s: model %s, batch %lld.\n", t->source, t->train->model,
          (long long)t->train->batch);
  fprintf(out, "// Arena %lld bytes: state %lld, step inputs %lld, outputs %lld, training activations %lld, evaluation %lld.\n",
          (long long)p->total_bytes, (long long)p->state_bytes, (long long)p->io_bytes, (long long)p->output_bytes,
          (long long)p->train_bytes, (long long)p->eval_bytes);
  fprintf(out, "// The GPU's arena %lld bytes: activations in %s, training %lld, evaluation %lld.\n",
          (long long)gp->total_bytes, gp->bf16 ? "bf16" : "fp32", (long long)gp->train_bytes, (long long)gp->eval_bytes);
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
    fputs("static void train_features(char *A);\nstatic void train_head(char *A);\n"
          "static void train_features_gpu(TlcGpu *G);\nstatic void train_head_gpu(TlcGpu *G);\n", out);
  emit_model(out, t);
  int launch = 0;
  emit_step(out, "train_step", "One training step: forward, loss, backward, optimizer updates.", t->train, t->train_cpu,
            p->train_offset, t->cpu_table, &launch);
  emit_step(out, "eval_step", "The evaluation pass: running statistics, no dropout.", t->eval, t->eval_cpu,
            p->eval_offset, t->cpu_table, &launch);
  launch = 0;
  emit_step_gpu(out, "train_step_gpu", t->train, t->train_gpu, gp, gp->train_offset, t->program->table, &launch);
  emit_step_gpu(out, "eval_step_gpu", t->eval, t->eval_gpu, gp, gp->eval_offset, t->program->table, &launch);
  launch = 0;
  emit_calls(out, "train_calls", t->train, t->train_cpu, t->train_gpu, p->train_offset, gp, gp->train_offset,
             t->cpu_table, &launch);
  emit_calls(out, "eval_calls", t->eval, t->eval_cpu, t->eval_gpu, p->eval_offset, gp, gp->eval_offset, t->cpu_table,
             &launch);
  if (t->feature_node >= 0) {
    emit_cached_steps(out, t);
    emit_cached_steps_gpu(out, t);
  }
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
        "    for (TlcSplit split; tlc_next_eval(&run, &split);)   // validation, the test every N epochs\n"
        "      while (tlc_eval_batch(&run, split)) {\n"
        "        if (tlc_run_step(&run, &steps, false))\n"
        "          return run.status;\n"
        "        tlc_eval_batch_done(&run);\n"
        "      }\n"
        "    if (tlc_epoch_end(&run, epoch))\n"
        "      return run.status;\n"
        "  }\n"
        "  for (TlcSplit split; tlc_next_eval(&run, &split);)     // the test: last weights, then the best\n"
        "    while (tlc_eval_batch(&run, split)) {\n"
        "      if (tlc_run_step(&run, &steps, false))\n"
        "        return run.status;\n"
        "      tlc_eval_batch_done(&run);\n"
        "    }\n"
        "  return tlc_run_finish(&run);\n"
        "}\n",
        out);
}
