// recipe.c: the experiment section resolved once into a Recipe of typed values. Settings are
// expressions evaluated on demand, so one setting can use another (model =
// resnet18(classes = classes)); a --set override replaces a setting's expression, or one
// argument of it, before anything is evaluated. Every record goes through args_bind, so
// positional and named arguments mean the same everywhere. Every check of the experiment is
// here (recipe_bind has those that need the model): later stages read the Recipe only, so
// --emit, --stats and -o accept and reject the same files.
#include "tlc.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

typedef struct SettingSpec {
  const char *name;
  const char *accepts;  // for messages: what the setting takes
} SettingSpec;

// The known settings, in the order they are resolved (and their errors reported) and printed.
enum {
  S_MODEL, S_CLASSES, S_BATCH, S_EPOCHS, S_TEST_EVERY, S_SEED, S_WEIGHTS, S_FREEZE, S_FROZEN_BN, S_DATA, S_TRAIN_TRANSFORM,
  S_EVAL_TRANSFORM, S_OPTIMIZER, S_SCHEDULE, S_LR_MULT, S_DECAY_BN_BIAS, S_LABEL_SMOOTHING, S_SUBSET, S_PRECISION,
  S_COUNT
};

static const SettingSpec settings[S_COUNT] = {
    [S_MODEL] = {"model", "a model call such as resnet18(classes = 10)"},
    [S_CLASSES] = {"classes", "an integer"},
    [S_BATCH] = {"batch", "an integer"},
    [S_EPOCHS] = {"epochs", "an integer"},
    [S_TEST_EVERY] = {"test_every", "a number of epochs (0: the test split only at the end)"},
    [S_SEED] = {"seed", "an integer"},
    [S_WEIGHTS] = {"weights", "a file name in quotes, or none"},
    [S_FREEZE] = {"freeze", "none, \"all\", before(\"layer\"), through(\"layer\"), all_except([...]) or a list of layers"},
    [S_FROZEN_BN] = {"frozen_bn", "\"running\" or \"batch\""},
    [S_DATA] = {"data", "idx(...), image_folder(...), cifar10(...) or flowers102(...)"},
    [S_TRAIN_TRANSFORM] = {"train_transform", "a list of transforms"},
    [S_EVAL_TRANSFORM] = {"eval_transform", "a list of transforms"},
    [S_OPTIMIZER] = {"optimizer", "sgd(...), adam(...) or adamw(...)"},
    [S_SCHEDULE] = {"schedule", "constant(), step(...), multistep(...) or cosine(...)"},
    [S_LR_MULT] = {"lr_mult", "a list of mult(\"layer\", factor)"},
    [S_DECAY_BN_BIAS] = {"decay_bn_bias", "true or false"},
    [S_LABEL_SMOOTHING] = {"label_smoothing", "a number in [0, 1)"},
    [S_SUBSET] = {"subset", "subset(classes = [...], per_class = N) or none"},
    [S_PRECISION] = {"precision", "\"bf16\" or \"fp32\""},
};

// A record a setting may hold: its constructor, the typed kind it stands for, its arguments.
typedef struct RecordSpec {
  int setting;          // S_TRAIN_TRANSFORM stands for both transform lists
  const char *name;
  int kind;             // its DataFormat, TransformKind, OptimizerKind, ScheduleKind or FreezeKind
  ArgSpec args[MAX_ARGS];
} RecordSpec;

// BIG bounds counts (epochs, images); SIDE is the largest image side the runtime's transforms take.
enum { BIG = 1 << 30, SIDE = 1 << 15 };
static const RecordSpec records[] = {
    {S_DATA, "idx", DATA_IDX,
     {{"dir", ARG_STRING, false, 0, 0}, {"val", ARG_INT, false, 0, 1000000}, {"names", ARG_STRINGS, false, 0, 0}}},
    {S_DATA, "image_folder", DATA_IMAGE_FOLDER,
     {{"dir", ARG_STRING, false, 0, 0}, {"val_split", ARG_FLOAT, false, 0, 0.99}}},
    {S_DATA, "cifar10", DATA_CIFAR10, {{"dir", ARG_STRING, false, 0, 0}, {"dev", ARG_INT_OR_STRING, false, 0, 50000}}},
    {S_DATA, "flowers102", DATA_FLOWERS102, {{"dir", ARG_STRING, false, 0, 0}}},
    {S_TRAIN_TRANSFORM, "resize", TF_RESIZE, {{"size", ARG_SIZE, true, 1, SIDE}}},
    {S_TRAIN_TRANSFORM, "center_crop", TF_CENTER_CROP, {{"size", ARG_INT, true, 1, SIDE}}},
    {S_TRAIN_TRANSFORM, "random_crop", TF_RANDOM_CROP, {{"size", ARG_INT, true, 1, SIDE}, {"pad", ARG_INT, false, 0, 1024}}},
    {S_TRAIN_TRANSFORM, "random_resized_crop", TF_RANDOM_RESIZED_CROP,
     {{"size", ARG_INT, true, 1, SIDE}, {"scale", ARG_NUMBERS, false, 0.0001, 1}, {"ratio", ARG_NUMBERS, false, 0.01, 100}}},
    {S_TRAIN_TRANSFORM, "hflip", TF_HFLIP, {{"p", ARG_FLOAT, false, 0, 1}}},
    {S_TRAIN_TRANSFORM, "vflip", TF_VFLIP, {{"p", ARG_FLOAT, false, 0, 1}}},
    {S_TRAIN_TRANSFORM, "rotate", TF_ROTATE, {{"degrees", ARG_FLOAT, true, 0, 180}}},
    {S_TRAIN_TRANSFORM, "color_jitter", TF_COLOR_JITTER,
     {{"brightness", ARG_FLOAT, false, 0, 10}, {"contrast", ARG_FLOAT, false, 0, 10},
      {"saturation", ARG_FLOAT, false, 0, 10}, {"hue", ARG_FLOAT, false, 0, 0.5}}},
    {S_TRAIN_TRANSFORM, "normalize", TF_NORMALIZE,
     {{"mean", ARG_NUMBERS, false, -1e6, 1e6}, {"std", ARG_NUMBERS, false, 1e-9, 1e6}}},
    {S_TRAIN_TRANSFORM, "grayscale_to_rgb", TF_GRAYSCALE_TO_RGB, {{0}}},
    {S_OPTIMIZER, "sgd", OPT_SGD,
     {{"lr", ARG_FLOAT, true, 0, 0}, {"momentum", ARG_FLOAT, false, 0, 1}, {"nesterov", ARG_BOOL, false, 0, 0},
      {"weight_decay", ARG_FLOAT, false, 0, 0}}},
    {S_OPTIMIZER, "adam", OPT_ADAM,
     {{"lr", ARG_FLOAT, false, 0, 0}, {"betas", ARG_NUMBERS, false, 0, 0.999999}, {"eps", ARG_FLOAT, false, 0, 1},
      {"weight_decay", ARG_FLOAT, false, 0, 0}}},
    {S_OPTIMIZER, "adamw", OPT_ADAMW,
     {{"lr", ARG_FLOAT, false, 0, 0}, {"betas", ARG_NUMBERS, false, 0, 0.999999}, {"eps", ARG_FLOAT, false, 0, 1},
      {"weight_decay", ARG_FLOAT, false, 0, 0}}},
    {S_SCHEDULE, "constant", SCHED_CONSTANT, {{"warmup", ARG_INT, false, 0, BIG}}},
    {S_SCHEDULE, "step", SCHED_STEP,
     {{"step_size", ARG_INT, true, 1, BIG}, {"gamma", ARG_FLOAT, false, 0, 1}, {"warmup", ARG_INT, false, 0, BIG}}},
    {S_SCHEDULE, "multistep", SCHED_MULTISTEP,
     {{"milestones", ARG_NUMBERS, true, 1, BIG}, {"gamma", ARG_FLOAT, false, 0, 1}, {"warmup", ARG_INT, false, 0, BIG}}},
    {S_SCHEDULE, "cosine", SCHED_COSINE, {{"eta_min", ARG_FLOAT, false, 0, 0}, {"warmup", ARG_INT, false, 0, BIG}}},
    {S_FREEZE, "before", FREEZE_BEFORE, {{"layer", ARG_STRING, true, 0, 0}}},
    {S_FREEZE, "through", FREEZE_THROUGH, {{"layer", ARG_STRING, true, 0, 0}}},
    {S_FREEZE, "all_except", FREEZE_ALL_EXCEPT, {{"layers", ARG_STRINGS, true, 0, 0}}},
    {S_SUBSET, "subset", 0, {{"classes", ARG_NUMBERS, false, 0, 1000000}, {"per_class", ARG_INT, false, 1, BIG}}},
    {S_LR_MULT, "mult", 0, {{"layer", ARG_STRING, true, 0, 0}, {"factor", ARG_FLOAT, true, 0, 1e6}}},
};

static int spec_nargs(const RecordSpec *r) {
  int n = 0;
  while (n < MAX_ARGS && r->args[n].name)
    n++;
  return n;
}

static int record_setting(int setting) { return setting == S_EVAL_TRANSFORM ? S_TRAIN_TRANSFORM : setting; }

static const RecordSpec *record_spec(int setting, const char *name) {
  for (size_t i = 0; i < sizeof records / sizeof *records; i++)
    if (records[i].setting == record_setting(setting) && !strcmp(records[i].name, name))
      return &records[i];
  return NULL;
}

// The constructor of a kind, as the recipe is printed.
static const char *record_name(int setting, int kind) {
  for (size_t i = 0; i < sizeof records / sizeof *records; i++)
    if (records[i].setting == setting && records[i].kind == kind)
      return records[i].name;
  return "?";
}

static const char *record_names(Arena *a, int setting) {
  const char *s = "";
  for (size_t i = 0; i < sizeof records / sizeof *records; i++)
    if (records[i].setting == record_setting(setting))
      s = arena_printf(a, "%s%s%s", s, s[0] ? ", " : "", records[i].name);
  return s;
}

// " (did you mean 'sgd'? known: sgd, adam, adamw)"
static const char *record_hint(Arena *a, int setting, const char *name) {
  Nearest n = {.name = name};
  for (size_t i = 0; i < sizeof records / sizeof *records; i++)
    if (records[i].setting == record_setting(setting))
      nearest_offer(&n, records[i].name);
  return nearest_hint_and(a, &n, arena_printf(a, "known: %s", record_names(a, setting)));
}

//
// Settings evaluated on demand, and --set
//
typedef struct Ctx {
  Arena *arena;
  const Module *module;
  Setting *all;         // the section's settings, then those added by --set
  int n, cap;
  Value **cache;        // evaluated values by index into all[]
  bool *busy;           // being evaluated: a setting that reaches itself is a cycle
  EvalBudget budget;
  Env env;
} Ctx;

static int find_setting(const Ctx *c, const char *name) {
  for (int i = 0; i < c->n; i++)
    if (!strcmp(c->all[i].name, name))
      return i;
  return -1;
}

// " (did you mean 'epochs'?)" for a misspelt setting name.
static const char *setting_hint(Arena *a, const char *name) {
  Nearest n = {.name = name};
  for (int i = 0; i < S_COUNT; i++)
    nearest_offer(&n, settings[i].name);
  return nearest_hint(a, &n);
}

static int known_setting(const char *name) {
  for (int i = 0; i < S_COUNT; i++)
    if (!strcmp(settings[i].name, name))
      return i;
  return -1;
}

bool recipe_is_setting(const char *name) {
  return known_setting(name) >= 0;
}

static Value *lookup(void *ctx, const char *name, Span use) {
  Ctx *c = ctx;
  int i = find_setting(c, name);
  if (i < 0)
    return NULL;
  if (c->busy[i])
    error_at(use, "setting '%s' depends on itself", name);
  if (!c->cache[i]) {
    c->busy[i] = true;
    c->cache[i] = eval(&c->env, c->all[i].value);
    c->busy[i] = false;
  }
  return c->cache[i];
}

// A known setting's value, or NULL when the experiment does not set it.
static Value *setting(Ctx *c, int k) {
  int i = find_setting(c, settings[k].name);
  return i < 0 ? NULL : lookup(c, settings[k].name, c->all[i].span);
}

// Where argument `name` of a call of callee stands among its positional arguments: from the
// record's spec, or the model's declaration; -1 when neither says.
static int arg_position(const Ctx *c, int k, const char *callee, const char *name) {
  if (k == S_MODEL) {
    const Decl *d = module_find(c->module, callee);
    for (int i = 0; d && d->kind == DECL_MODEL && i < d->nparams; i++)
      if (!strcmp(d->params[i].name, name))
        return i;
    return -1;
  }
  const RecordSpec *r = k < 0 ? NULL : record_spec(k, callee);
  for (int i = 0; r && i < spec_nargs(r); i++)
    if (!strcmp(r->args[i].name, name))
      return i;
  return -1;
}

// --set NAME.ARG=VALUE replaces the argument ARG of NAME's call, whether the file gives it by
// name or by position, or adds it.
static void override_arg(Ctx *c, int i, const char *arg, Expr *value, Span name_span) {
  Expr *call = c->all[i].value;
  if (call->kind != EX_CALL)
    error_at(name_span, "setting '%s' is not a call, so it has no argument '%s'", c->all[i].name, arg);
  int pos = arg_position(c, known_setting(c->all[i].name), call->name, arg);
  for (int j = 0, positional = 0; j < call->nargs; j++)
    if (call->args[j].name ? !strcmp(call->args[j].name, arg) : positional++ == pos) {
      call->args[j].value = value;
      return;
    }
  Arg *args = arena_alloc(c->arena, sizeof(Arg) * (size_t)(call->nargs + 1));
  memcpy(args, call->args, sizeof(Arg) * (size_t)call->nargs);
  args[call->nargs] = (Arg){.name = arg, .name_span = name_span, .value = value};
  call->args = args;
  call->nargs++;
}

// --set NAME=VALUE and --set NAME.ARG=VALUE rewrite the section before evaluation.
static void apply_override(Ctx *c, const Override *o) {
  Arena *a = c->arena;
  Source *src = arena_alloc(a, sizeof *src);
  src->path = "--set";
  src->text = arena_printf(a, "%s=%s", o->name, o->text);
  src->len = strlen(src->text);
  size_t name_len = strlen(o->name);
  Span name_span = {src, 0, (uint32_t)(name_len ? name_len : 1)};
  Expr *value = parse_expr_text(a, src, name_len + 1);
  const char *dot = strchr(o->name, '.');
  const char *top = dot ? arena_strndup(a, o->name, (size_t)(dot - o->name)) : o->name;
  int i = find_setting(c, top);
  if (dot) {
    if (i < 0)
      error_at(name_span, "there is no setting '%s' to change an argument of%s", top, setting_hint(c->arena, top));
    override_arg(c, i, dot + 1, value, name_span);
  } else if (i >= 0) {
    c->all[i].value = value;
  } else {
    if (known_setting(top) < 0)
      error_at(name_span, "unknown setting '%s'%s", top, setting_hint(c->arena, top));
    Setting s = {.name = top, .span = name_span, .value = value};
    ARENA_PUSH(a, c->all, c->n, c->cap, s);
  }
}

//
// Records and their arguments
//
// A record's arguments matched to its spec, positional and named alike.
typedef struct Bound {
  const RecordSpec *spec;
  BoundArgs args;
} Bound;

static Bound bind_record(Arena *a, int k, const Value *v) {
  if (v->kind != V_RECORD)
    error_at(v->span, "%s takes %s, found %s", settings[k].name, settings[k].accepts, value_str(a, v));
  Bound b = {.spec = record_spec(k, v->s)};
  if (!b.spec)
    error_at(v->span, "unknown %s '%s'%s", settings[k].name, v->s, record_hint(a, k, v->s));
  args_bind(a, v->s, b.spec->args, spec_nargs(b.spec), v->fields, v->nfields, v->span, &b.args);
  return b;
}

// The argument called name, its type and range checked by args_bind; NULL when not given.
static const Value *arg(const Bound *b, const char *name) {
  for (int i = 0; i < spec_nargs(b->spec); i++)
    if (!strcmp(b->spec->args[i].name, name))
      return b->args.v[i];
  fatal("internal error: %s has no argument '%s'", b->spec->name, name);
}

static int64_t int_arg(const Bound *b, const char *name, int64_t dflt) {
  const Value *v = arg(b, name);
  return v ? v->i : dflt;
}

static double num_arg(const Bound *b, const char *name, double dflt) {
  const Value *v = arg(b, name);
  return v ? value_number(v, name) : dflt;
}

static const char *str_arg(const Bound *b, const char *name, const char *dflt) {
  const Value *v = arg(b, name);
  return v ? v->s : dflt;
}

// A [low, high] argument (scale, ratio, betas) into out, which holds its default.
static void pair_arg(const Bound *b, const char *name, bool ordered, double out[2]) {
  const Value *v = arg(b, name);
  if (!v)
    return;
  if (v->n != 2)
    error_at(v->span, "%s takes two numbers [low, high], found %d", name, v->n);
  out[0] = value_number(v->items[0], name);
  out[1] = value_number(v->items[1], name);
  if (ordered && out[0] > out[1])
    error_at(v->span, "%s's low end %g is above its high end %g", name, out[0], out[1]);
}

//
// Resolution, setting by setting
//
static int64_t int_setting(const Value *v, int k, int64_t lo, int64_t hi, int64_t dflt) {
  if (!v)
    return dflt;
  int64_t x = value_int(v, settings[k].name);
  if (x < lo || x > hi)
    error_at(v->span, "%s must be between %lld and %lld, found %lld", settings[k].name, (long long)lo, (long long)hi,
             (long long)x);
  return x;
}

static const char *const frozen_bn_names[] = {[FROZEN_BN_RUNNING] = "running", [FROZEN_BN_BATCH] = "batch", NULL};
static const char *const precision_names[] = {[PRECISION_BF16] = "bf16", [PRECISION_FP32] = "fp32", NULL};

// A setting that takes one of a few strings (choices, ending with NULL): the index of the one
// given, or dflt.
static int choice_setting(Arena *a, const Value *v, int k, const char *const *choices, int dflt) {
  if (!v)
    return dflt;
  for (int i = 0; choices[i] && v->kind == V_STRING; i++)
    if (!strcmp(v->s, choices[i]))
      return i;
  error_at(v->span, "%s takes %s, found %s", settings[k].name, settings[k].accepts, value_str(a, v));
}

// Without a 'model' setting the main file must declare exactly one model.
static Value *default_model(Ctx *c) {
  const Program *main_file = c->module->files[0];
  const Decl *found = NULL;
  for (int i = 0; i < main_file->n; i++) {
    const Decl *d = main_file->decls[i];
    if (d->kind != DECL_MODEL)
      continue;
    if (found)
      error_at(d->name_span, "this file declares several models; add an experiment section with 'model = %s(...)'",
               d->name);
    found = d;
  }
  if (!found)
    error_at((Span){main_file->src, 0, 1}, "this file declares no model and no experiment naming one");
  Value *v = value_new(c->arena, V_RECORD, found->name_span);
  v->s = found->name;
  return v;
}

// A model with a 'classes' parameter gets the experiment's classes unless its call sets it,
// by name or by position (recipe_bind then checks that the two agree).
static void pass_classes(Ctx *c, Value *m, Value *classes) {
  const Decl *d = module_find(c->module, m->s);
  if (!classes || !d || d->kind != DECL_MODEL)
    return;
  int slot = -1, positional = 0;
  for (int i = 0; i < d->nparams; i++)
    if (!strcmp(d->params[i].name, "classes"))
      slot = i;
  for (int i = 0; i < m->nfields; i++) {
    if (m->fields[i].name && !strcmp(m->fields[i].name, "classes"))
      return;
    positional += !m->fields[i].name;
  }
  if (slot < positional)
    return;
  Field *f = arena_alloc(c->arena, sizeof(Field) * (size_t)(m->nfields + 1));
  memcpy(f, m->fields, sizeof(Field) * (size_t)m->nfields);
  f[m->nfields] = (Field){"classes", classes, classes->span};
  m->fields = f;
  m->nfields++;
}

static Value *resolve_model(Ctx *c) {
  Value *v = setting(c, S_MODEL);
  if (v && v->kind != V_RECORD)
    error_at(v->span, "model takes %s, found %s", settings[S_MODEL].accepts, value_str(c->arena, v));
  return v;
}

// A relative file name is resolved against the directory of the file that says it (the
// current directory for --set), so that the trainer finds it from wherever it runs.
static const char *resolve_path(Arena *a, const Value *w) {
  if (w->s[0] == '/')
    return w->s;
  const char *from = w->span.src && strcmp(w->span.src->path, "--set") ? w->span.src->path : "";
  const char *slash = strrchr(from, '/');
  const char *dir = slash ? arena_strndup(a, from, slash == from ? 1 : (size_t)(slash - from)) : ".";
  char resolved[PATH_MAX];
  return realpath(dir, resolved) ? arena_printf(a, "%s/%s", resolved, w->s) : w->s;
}

static void resolve_weights(Arena *a, const Value *v, Recipe *r) {
  if (!v || v->kind == V_NONE)
    return;
  if (v->kind != V_STRING)
    error_at(v->span, "weights takes %s, found %s", settings[S_WEIGHTS].accepts, value_str(a, v));
  r->weights = v->s;
  r->weights_path = resolve_path(a, v);
}

// Layer names: one string, or a list of them.
static LayerName *layer_names(Arena *a, const Value *v, int *n) {
  int count = v->kind == V_LIST ? v->n : 1;
  LayerName *names = arena_alloc(a, sizeof *names * (size_t)(count ? count : 1));
  for (int i = 0; i < count; i++) {
    const Value *s = v->kind == V_LIST ? v->items[i] : v;
    if (s->kind != V_STRING)
      error_at(s->span, "freeze lists layer names in quotes, found %s", value_str(a, s));
    names[i] = (LayerName){s->s, s->span};
  }
  *n = count;
  return names;
}

static Freeze resolve_freeze(Arena *a, const Value *v) {
  Freeze f = {.kind = FREEZE_NONE};
  if (!v || v->kind == V_NONE)
    return f;
  if (v->kind == V_STRING && !strcmp(v->s, "all")) {
    f.kind = FREEZE_ALL;
    return f;
  }
  const Value *names = v;
  f.kind = FREEZE_LIST;
  if (v->kind != V_LIST) {
    Bound b = bind_record(a, S_FREEZE, v);
    f.kind = (FreezeKind)b.spec->kind;
    names = arg(&b, f.kind == FREEZE_ALL_EXCEPT ? "layers" : "layer");
  }
  f.layers = layer_names(a, names, &f.nlayers);
  return f;
}

// cifar10's dev: the last N training images, or one training batch by name, as write-ups hold
// out data_batch_5.
static void cifar_dev_arg(const Bound *b, DataSource *d) {
  const Value *v = arg(b, "dev");
  if (!v || v->kind != V_STRING) {
    d->val_count = v ? v->i : 0;
    return;
  }
  int n = 0, end = 0;
  sscanf(v->s, "data_batch_%d%n", &n, &end);
  bool named = end > 0 && (!v->s[end] || !strcmp(v->s + end, ".bin"));
  if (!named || n < 1 || n > 5)
    error_at(v->span, "cifar10's dev takes a number of images or a training batch, \"data_batch_1\" .. "
             "\"data_batch_5\", found \"%s\"", v->s);
  d->dev_batch = n;
}

// idx's names: IDX files number their classes, the experiment may name them (for the
// trainer's messages, tlc report and --predict-grid). Each a distinct, non-empty name.
static void class_names(Arena *a, const Value *names, DataSource *d) {
  if (!names)
    return;
  if (!names->n)
    error_at(names->span, "idx's names is empty (leave it out and the classes are numbered)");
  d->class_names = arena_alloc(a, sizeof *d->class_names * (size_t)names->n);
  d->class_names_span = names->span;
  for (int i = 0; i < names->n; i++) {
    const Value *s = names->items[i];
    if (!s->s[0])
      error_at(s->span, "idx's names: class %d's name is empty", i);
    for (const char *ch = s->s; *ch; ch++)
      if ((unsigned char)*ch < 32)
        error_at(s->span, "idx's names: class %d's name holds a tab or line break (a name is one line)", i);
    for (int j = 0; j < i; j++)
      if (!strcmp(d->class_names[j], s->s))
        error_at(s->span, "idx's names: '%s' names classes %d and %d", s->s, j, i);
    d->class_names[d->nclass_names++] = s->s;
  }
}

static DataSource resolve_data(Arena *a, const Value *v) {
  DataSource d = {.format = DATA_IDX, .dir = "/usr/share/datasets/fashion-mnist", .val_count = 5000};
  if (!v)
    return d;
  Bound b = bind_record(a, S_DATA, v);
  d.format = (DataFormat)b.spec->kind;
  d.dir = str_arg(&b, "dir", d.format == DATA_IDX ? d.dir : "data");
  if (d.format == DATA_CIFAR10)
    cifar_dev_arg(&b, &d);
  else if (d.format == DATA_IDX)
    d.val_count = int_arg(&b, "val", 5000);
  d.val_split = d.format == DATA_IMAGE_FOLDER ? num_arg(&b, "val_split", 0) : 0;
  if (d.format == DATA_IDX)
    class_names(a, arg(&b, "names"), &d);
  return d;
}

// The classes of a subset are distinct whole numbers (class indices of the data set).
static void resolve_subset(Arena *a, const Value *v, DataSource *d) {
  if (!v || v->kind == V_NONE)
    return;
  Bound b = bind_record(a, S_SUBSET, v);
  d->per_class = int_arg(&b, "per_class", 0);
  const Value *classes = arg(&b, "classes");
  if (!classes)
    return;
  d->subset_classes = arena_alloc(a, sizeof(int64_t) * (size_t)(classes->n ? classes->n : 1));
  for (int i = 0; i < classes->n; i++) {
    const Value *c = classes->items[i];
    if (c->kind != V_INT)
      error_at(c->span, "subset's classes are class indices (whole numbers), found %s", value_str(a, c));
    for (int j = 0; j < i; j++)
      if (d->subset_classes[j] == c->i)
        error_at(c->span, "class %lld is listed twice in subset's classes", (long long)c->i);
    if (d->class_names && c->i >= d->nclass_names)
      error_at(c->span, "subset's class %lld is not one of the %d classes idx's names lists (0 to %d)",
               (long long)c->i, d->nclass_names, d->nclass_names - 1);
    d->subset_classes[d->nsubset_classes++] = c->i;
  }
  if (!classes->n)
    error_at(classes->span, "subset's classes is empty");
}

// normalize's mean or std into out (which holds ImageNet's): one number for every channel,
// or one per channel. Returns how many were given.
static int channel_arg(const Bound *b, const char *name, double out[MAX_CHANNELS]) {
  const Value *v = arg(b, name);
  if (!v)
    return 0;
  if (v->n < 1 || v->n > MAX_CHANNELS)
    error_at(v->span, "normalize's %s takes one number for every channel, or one per channel (at most %d), found %d",
             name, MAX_CHANNELS, v->n);
  for (int c = 0; c < MAX_CHANNELS; c++)
    out[c] = value_number(v->items[c < v->n ? c : v->n - 1], name);
  return v->n;
}

// Whether a transform draws at random, so that an image differs from epoch to epoch.
static bool draws(TransformKind k) {
  return k == TF_RANDOM_CROP || k == TF_RANDOM_RESIZED_CROP || k == TF_HFLIP || k == TF_VFLIP || k == TF_ROTATE ||
         k == TF_COLOR_JITTER;
}

// resize(size): the shorter side; resize([height, width]): both, as torchvision's Resize.
static void resize_arg(const Bound *b, Transform *t) {
  const Value *v = arg(b, "size");
  if (v->kind == V_LIST)
    t->height = v->items[0]->i, t->width = v->items[1]->i;
  else
    t->size = v->i;
}

// One transform with torchvision's defaults.
static Transform resolve_transform(Arena *a, int k, const Value *v) {
  Bound b = bind_record(a, k, v);
  Transform t = {.kind = (TransformKind)b.spec->kind, .span = v->span, .p = 0.5, .scale = {0.08, 1},
                 .ratio = {3.0 / 4.0, 4.0 / 3.0}, .mean = {0.485, 0.456, 0.406, 0.406},
                 .std = {0.229, 0.224, 0.225, 0.225}};
  t.random = draws(t.kind);
  switch (t.kind) {
  case TF_RESIZE: resize_arg(&b, &t); break;
  case TF_CENTER_CROP: t.size = int_arg(&b, "size", 0); break;
  case TF_RANDOM_CROP:
    t.size = int_arg(&b, "size", 0);
    t.pad = int_arg(&b, "pad", 0);
    break;
  case TF_RANDOM_RESIZED_CROP:
    t.size = int_arg(&b, "size", 0);
    pair_arg(&b, "scale", true, t.scale);
    pair_arg(&b, "ratio", true, t.ratio);
    break;
  case TF_HFLIP:
  case TF_VFLIP: t.p = num_arg(&b, "p", 0.5); break;
  case TF_ROTATE: t.degrees = num_arg(&b, "degrees", 0); break;
  case TF_COLOR_JITTER:
    t.jitter[0] = num_arg(&b, "brightness", 0);
    t.jitter[1] = num_arg(&b, "contrast", 0);
    t.jitter[2] = num_arg(&b, "saturation", 0);
    t.jitter[3] = num_arg(&b, "hue", 0);
    break;
  case TF_NORMALIZE:
    t.nmean = channel_arg(&b, "mean", t.mean);
    t.nstd = channel_arg(&b, "std", t.std);
    break;
  case TF_GRAYSCALE_TO_RGB: break;
  }
  return t;
}

// The runtime turns pixels into floats at normalize: nothing may come after it.
static TransformList resolve_transforms(Arena *a, const Value *v, int k) {
  TransformList l = {0};
  if (!v)
    return l;
  if (v->kind != V_LIST)
    error_at(v->span, "%s takes %s, found %s", settings[k].name, settings[k].accepts, value_str(a, v));
  l.items = arena_alloc(a, sizeof *l.items * (size_t)(v->n ? v->n : 1));
  for (int i = 0; i < v->n; i++) {
    l.items[l.n++] = resolve_transform(a, k, v->items[i]);
    if (l.items[i].kind == TF_NORMALIZE && i != v->n - 1)
      error_at(v->items[i]->span, "normalize must be the last transform of %s (it turns the pixels into floats)",
               settings[k].name);
  }
  return l;
}

// The optimizer with PyTorch's defaults; without the setting, SGD with momentum 0.9.
static void resolve_optimizer(Arena *a, const Value *v, Recipe *r) {
  r->optimizer = OPT_SGD;
  r->opt = (OptAttrs){.lr = 0.01, .momentum = 0.9};
  if (!v)
    return;
  Bound b = bind_record(a, S_OPTIMIZER, v);
  r->optimizer = (OptimizerKind)b.spec->kind;
  if (r->optimizer == OPT_SGD) {
    r->opt.lr = num_arg(&b, "lr", 0.01);
    r->opt.momentum = num_arg(&b, "momentum", 0);
    const Value *nesterov = arg(&b, "nesterov");
    r->opt.nesterov = nesterov && nesterov->i;
    r->opt.weight_decay = num_arg(&b, "weight_decay", 0);
    return;
  }
  double betas[2] = {0.9, 0.999};
  pair_arg(&b, "betas", false, betas);
  r->opt = (OptAttrs){.lr = num_arg(&b, "lr", 1e-3), .beta1 = betas[0], .beta2 = betas[1],
                      .eps = num_arg(&b, "eps", 1e-8), .decoupled = r->optimizer == OPT_ADAMW};
  r->opt.weight_decay = num_arg(&b, "weight_decay", r->opt.decoupled ? 0.01 : 0);
}

// Milestones are epochs, and the runtime's schedule holds MAX_MILESTONES of them.
static void resolve_milestones(const Bound *b, Schedule *s) {
  const Value *m = arg(b, "milestones");
  if (m->n > MAX_MILESTONES)
    error_at(m->span, "multistep takes at most %d milestones, found %d", MAX_MILESTONES, m->n);
  for (int i = 0; i < m->n; i++)
    s->milestones[s->nmilestones++] = value_int(m->items[i], "a milestone (an epoch)");
}

static Schedule resolve_schedule(Arena *a, const Value *v) {
  Schedule s = {.kind = SCHED_CONSTANT, .gamma = 0.1};
  if (!v)
    return s;
  Bound b = bind_record(a, S_SCHEDULE, v);
  s.kind = (ScheduleKind)b.spec->kind;
  s.warmup = int_arg(&b, "warmup", 0);
  switch (s.kind) {
  case SCHED_STEP:
    s.step_size = int_arg(&b, "step_size", 1);
    s.gamma = num_arg(&b, "gamma", 0.1);
    break;
  case SCHED_MULTISTEP:
    resolve_milestones(&b, &s);
    s.gamma = num_arg(&b, "gamma", 0.1);
    break;
  case SCHED_COSINE: s.eta_min = num_arg(&b, "eta_min", 0); break;
  case SCHED_CONSTANT: break;
  }
  return s;
}

static void resolve_lr_mult(Arena *a, const Value *v, Recipe *r) {
  if (!v)
    return;
  if (v->kind != V_LIST)
    error_at(v->span, "lr_mult takes %s, found %s", settings[S_LR_MULT].accepts, value_str(a, v));
  r->lr_mult = arena_alloc(a, sizeof *r->lr_mult * (size_t)(v->n ? v->n : 1));
  for (int i = 0; i < v->n; i++) {
    Bound b = bind_record(a, S_LR_MULT, v->items[i]);
    const Value *layer = arg(&b, "layer");
    r->lr_mult[r->nlr_mult++] = (LrGroup){{layer->s, layer->span}, num_arg(&b, "factor", 1)};
  }
}

static double label_smoothing(const Value *v) {
  double ls = v ? value_number(v, "label_smoothing") : 0;
  if (ls < 0 || ls >= 1)
    error_at(v->span, "label_smoothing must be in [0, 1), found %g", ls);
  return ls;
}

static void resolve(Ctx *c, Recipe *r) {
  Arena *a = c->arena;
  r->model = resolve_model(c);
  Value *classes = setting(c, S_CLASSES);
  r->classes = int_setting(classes, S_CLASSES, 1, 1000000, 0);
  r->classes_span = classes ? classes->span : (Span){0};
  r->batch = int_setting(setting(c, S_BATCH), S_BATCH, 1, 65536, c->module->experiment ? 64 : 1);
  r->epochs = int_setting(setting(c, S_EPOCHS), S_EPOCHS, 1, 1000000, 10);
  r->test_every = int_setting(setting(c, S_TEST_EVERY), S_TEST_EVERY, 0, 1000000, 0);
  r->seed = int_setting(setting(c, S_SEED), S_SEED, 0, INT64_MAX, 0);
  resolve_weights(a, setting(c, S_WEIGHTS), r);
  r->freeze = resolve_freeze(a, setting(c, S_FREEZE));
  r->frozen_bn = (FrozenBn)choice_setting(a, setting(c, S_FROZEN_BN), S_FROZEN_BN, frozen_bn_names, FROZEN_BN_RUNNING);
  r->data = resolve_data(a, setting(c, S_DATA));
  r->train_transform = resolve_transforms(a, setting(c, S_TRAIN_TRANSFORM), S_TRAIN_TRANSFORM);
  r->eval_transform = resolve_transforms(a, setting(c, S_EVAL_TRANSFORM), S_EVAL_TRANSFORM);
  resolve_optimizer(a, setting(c, S_OPTIMIZER), r);
  r->schedule = resolve_schedule(a, setting(c, S_SCHEDULE));
  resolve_lr_mult(a, setting(c, S_LR_MULT), r);
  Value *decay = setting(c, S_DECAY_BN_BIAS);
  r->decay_bn_bias = !decay || value_bool(decay, "decay_bn_bias");
  r->label_smoothing = label_smoothing(setting(c, S_LABEL_SMOOTHING));
  resolve_subset(a, setting(c, S_SUBSET), &r->data);
  r->precision = (Precision)choice_setting(a, setting(c, S_PRECISION), S_PRECISION, precision_names, PRECISION_BF16);
}

Recipe *recipe_load(Arena *a, const Module *m, const Override *ov, int nov) {
  Ctx c = {.arena = a, .module = m};
  const Decl *d = m->experiment;
  for (int i = 0; d && i < d->nsettings; i++) {
    if (!d->settings[i].is_let && known_setting(d->settings[i].name) < 0) {
      const char *hint = setting_hint(a, d->settings[i].name);
      error_at(d->settings[i].span, "unknown setting '%s'%s", d->settings[i].name,
               hint[0] ? hint : arena_printf(a, " (write 'let %s = ...' for a variable of your own)", d->settings[i].name));
    }
    ARENA_PUSH(a, c.all, c.n, c.cap, d->settings[i]);
  }
  for (int i = 0; i < nov; i++)
    apply_override(&c, &ov[i]);
  c.cache = arena_alloc(a, sizeof(Value *) * (size_t)(c.n + 1));
  c.busy = arena_alloc(a, sizeof(bool) * (size_t)(c.n + 1));
  c.env = (Env){.arena = a, .module = m, .records = true, .lookup_setting = lookup, .setting_ctx = &c,
                .budget = &c.budget};
  Recipe *r = arena_alloc(a, sizeof *r);
  resolve(&c, r);
  for (int i = 0; i < c.n; i++)   // user variables are checked by evaluating them once
    lookup(&c, c.all[i].name, c.all[i].span);
  if (!r->model)
    r->model = default_model(&c);
  pass_classes(&c, r->model, setting(&c, S_CLASSES));
  return r;
}

//
// The checks that need the model, and freezing
//
// A layer is named by its path or any scope above it ("features" or "features.3.conv").
static void check_layer(Arena *a, const Graph *g, const char *setting_name, const LayerName *l) {
  if (graph_find_layer(g, l->path, false))
    return;
  Nearest n = {.name = l->path};
  for (int i = 0; i < g->n; i++) {
    const char *name = g->nodes[i]->name;
    for (const char *dot = strchr(name, '.'); dot; dot = strchr(dot + 1, '.'))
      nearest_offer(&n, arena_strndup(a, name, (size_t)(dot - name)));
    nearest_offer(&n, name);
  }
  error_at(l->span, "%s names '%s', but model '%s' has no layer of that name%s", setting_name, l->path, g->model,
           nearest_hint(a, &n));
}

// normalize's numbers: one for every channel, or one per channel of the model's input.
static void check_channels(const Transform *t, const char *what, int n, int64_t channels) {
  if (n > 1 && n != channels)
    error_at(t->span, "normalize's %s has %d numbers, but the model's input has %lld channel%s (give one number for "
             "all, or one per channel)", what, n, (long long)channels, channels == 1 ? "" : "s");
}

static void check_normalize(const TransformList *l, int64_t channels) {
  for (int i = 0; i < l->n; i++) {
    check_channels(&l->items[i], "mean", l->items[i].nmean, channels);
    check_channels(&l->items[i], "std", l->items[i].nstd, channels);
  }
}

static void freeze_node(Node *n) {
  n->frozen = true;
  for (int i = 0; i < n->nparams; i++)
    n->params[i]->frozen = true;
}

static bool listed(const Freeze *f, const char *name) {
  for (int j = 0; j < f->nlayers; j++)
    if (layer_in(name, f->layers[j].path))
      return true;
  return false;
}

static void apply_freeze(const Freeze *f, Graph *g) {
  int end = g->n;   // before and through: the layers in forward order up to the one named
  if (f->kind == FREEZE_BEFORE || f->kind == FREEZE_THROUGH) {
    bool through = f->kind == FREEZE_THROUGH;
    end = graph_find_layer(g, f->layers[0].path, through)->id + through;
  }
  for (int i = 1; i < g->n && f->kind != FREEZE_NONE; i++) {
    bool frozen = f->kind == FREEZE_LIST        ? listed(f, g->nodes[i]->name)
                  : f->kind == FREEZE_ALL_EXCEPT ? !listed(f, g->nodes[i]->name)
                                                 : i < end;
    if (frozen)
      freeze_node(g->nodes[i]);
  }
}

void recipe_bind(Arena *a, Recipe *r, Graph *g) {
  for (int i = 0; i < r->freeze.nlayers; i++)
    check_layer(a, g, "freeze", &r->freeze.layers[i]);
  for (int i = 0; i < r->nlr_mult; i++)
    check_layer(a, g, "lr_mult", &r->lr_mult[i].layer);
  const Shape out = g->output->shape;
  if (out.rank == 2 && r->classes && r->classes != out.c)
    error_at(r->classes_span, "classes is %lld, but model '%s' has %lld outputs",
             (long long)r->classes, g->model, (long long)out.c);
  if (out.rank == 2)
    r->classes = out.c;
  const DataSource *d = &r->data;
  if (d->class_names && !d->subset_classes && out.rank == 2 && d->nclass_names != out.c)
    error_at(d->class_names_span, "idx's names lists %d classes, but model '%s' has %lld outputs", d->nclass_names,
             g->model, (long long)out.c);
  check_normalize(&r->train_transform, g->nodes[0]->shape.c);
  check_normalize(&r->eval_transform, g->nodes[0]->shape.c);
  apply_freeze(&r->freeze, g);
}

//
// The recipe as --emit=ir shows it: in the language, in the forms the docs use, with the
// digits a float holds (what --emit=ir prints compiles to the same trainer)
//
static const char *numbers_str(Arena *a, const double *x, int n) {
  const char *s = "[";
  for (int i = 0; i < n; i++)
    s = arena_printf(a, "%s%s%.9g", s, i ? ", " : "", x[i]);
  return arena_printf(a, "%s]", s);
}

static const char *names_str(Arena *a, const LayerName *names, int n) {
  const char *s = "[";
  for (int i = 0; i < n; i++)
    s = arena_printf(a, "%s%s\"%s\"", s, i ? ", " : "", names[i].path);
  return arena_printf(a, "%s]", s);
}

static const char *freeze_str(Arena *a, const Freeze *f) {
  switch (f->kind) {
  case FREEZE_NONE: return "none";
  case FREEZE_ALL: return "\"all\"";
  case FREEZE_LIST: return names_str(a, f->layers, f->nlayers);
  case FREEZE_ALL_EXCEPT: return arena_printf(a, "all_except(%s)", names_str(a, f->layers, f->nlayers));
  default: return arena_printf(a, "%s(\"%s\")", record_name(S_FREEZE, f->kind), f->layers[0].path);
  }
}

// A string as the language writes it: quotes and backslashes escaped.
static const char *quoted(Arena *a, const char *text) {
  char *out = arena_alloc(a, 2 * strlen(text) + 3), *o = out;
  *o++ = '"';
  for (const char *s = text; *s; s++) {
    if (*s == '"' || *s == '\\')
      *o++ = '\\';
    *o++ = *s;
  }
  *o++ = '"', *o = '\0';
  return out;
}

static const char *strings_str(Arena *a, const char *const *names, int n) {
  const char *s = "[";
  for (int i = 0; i < n; i++)
    s = arena_printf(a, "%s%s%s", s, i ? ", " : "", quoted(a, names[i]));
  return arena_printf(a, "%s]", s);
}

static const char *data_str(Arena *a, const DataSource *d) {
  const char *s = arena_printf(a, "%s(\"%s\"", record_name(S_DATA, d->format), d->dir);
  switch (d->format) {
  case DATA_IDX:
    s = arena_printf(a, "%s, val = %lld", s, (long long)d->val_count);
    return d->class_names ? arena_printf(a, "%s, names = %s)", s, strings_str(a, d->class_names, d->nclass_names))
                          : arena_printf(a, "%s)", s);
  case DATA_CIFAR10:
    if (d->dev_batch)
      return arena_printf(a, "%s, dev = \"data_batch_%d\")", s, d->dev_batch);
    return arena_printf(a, "%s, dev = %lld)", s, (long long)d->val_count);
  case DATA_IMAGE_FOLDER: return arena_printf(a, "%s, val_split = %.9g)", s, d->val_split);
  case DATA_FLOWERS102: break;
  }
  return arena_printf(a, "%s)", s);
}

static const char *subset_str(Arena *a, const DataSource *d) {
  if (!d->subset_classes && !d->per_class)
    return "none";
  const char *s = "subset(";
  if (d->subset_classes) {
    s = arena_printf(a, "%sclasses = [", s);
    for (int i = 0; i < d->nsubset_classes; i++)
      s = arena_printf(a, "%s%s%lld", s, i ? ", " : "", (long long)d->subset_classes[i]);
    s = arena_printf(a, "%s]%s", s, d->per_class ? ", " : "");
  }
  return d->per_class ? arena_printf(a, "%sper_class = %lld)", s, (long long)d->per_class) : arena_printf(a, "%s)", s);
}

static const char *transform_str(Arena *a, const Transform *t) {
  const char *name = record_name(S_TRAIN_TRANSFORM, t->kind);
  switch (t->kind) {
  case TF_RESIZE:
    if (!t->size)
      return arena_printf(a, "%s([%lld, %lld])", name, (long long)t->height, (long long)t->width);
    return arena_printf(a, "%s(%lld)", name, (long long)t->size);
  case TF_CENTER_CROP: return arena_printf(a, "%s(%lld)", name, (long long)t->size);
  case TF_RANDOM_CROP: return arena_printf(a, "%s(%lld, pad = %lld)", name, (long long)t->size, (long long)t->pad);
  case TF_RANDOM_RESIZED_CROP:
    return arena_printf(a, "%s(%lld, scale = %s, ratio = %s)", name, (long long)t->size, numbers_str(a, t->scale, 2),
                        numbers_str(a, t->ratio, 2));
  case TF_HFLIP:
  case TF_VFLIP: return arena_printf(a, "%s(p = %.9g)", name, t->p);
  case TF_ROTATE: return arena_printf(a, "%s(%.9g)", name, t->degrees);
  case TF_COLOR_JITTER:
    return arena_printf(a, "%s(brightness = %.9g, contrast = %.9g, saturation = %.9g, hue = %.9g)", name, t->jitter[0],
                        t->jitter[1], t->jitter[2], t->jitter[3]);
  case TF_NORMALIZE:
    return arena_printf(a, "%s(mean = %s, std = %s)", name, numbers_str(a, t->mean, t->nmean ? t->nmean : 3),
                        numbers_str(a, t->std, t->nstd ? t->nstd : 3));
  case TF_GRAYSCALE_TO_RGB: break;
  }
  return arena_printf(a, "%s()", name);
}

static const char *transforms_str(Arena *a, const TransformList *l) {
  const char *s = "[";
  for (int i = 0; i < l->n; i++)
    s = arena_printf(a, "%s%s%s", s, i ? ", " : "", transform_str(a, &l->items[i]));
  return arena_printf(a, "%s]", s);
}

static const char *optimizer_str(Arena *a, const Recipe *r) {
  const OptAttrs *o = &r->opt;
  const char *name = record_name(S_OPTIMIZER, r->optimizer);
  if (r->optimizer == OPT_SGD)
    return arena_printf(a, "%s(lr = %.9g, momentum = %.9g, nesterov = %s, weight_decay = %.9g)", name, o->lr, o->momentum,
                        o->nesterov ? "true" : "false", o->weight_decay);
  return arena_printf(a, "%s(lr = %.9g, betas = [%.9g, %.9g], eps = %.9g, weight_decay = %.9g)", name, o->lr, o->beta1, o->beta2,
                      o->eps, o->weight_decay);
}

static const char *schedule_str(Arena *a, const Schedule *s) {
  const char *args = "";
  switch (s->kind) {
  case SCHED_STEP: args = arena_printf(a, "step_size = %lld, gamma = %.9g, ", (long long)s->step_size, s->gamma); break;
  case SCHED_MULTISTEP: {
    double m[MAX_MILESTONES];
    for (int i = 0; i < s->nmilestones; i++)
      m[i] = (double)s->milestones[i];
    args = arena_printf(a, "milestones = %s, gamma = %.9g, ", numbers_str(a, m, s->nmilestones), s->gamma);
    break;
  }
  case SCHED_COSINE: args = arena_printf(a, "eta_min = %.9g, ", s->eta_min); break;
  case SCHED_CONSTANT: break;
  }
  return arena_printf(a, "%s(%swarmup = %lld)", record_name(S_SCHEDULE, s->kind), args, (long long)s->warmup);
}

static const char *lr_mult_str(Arena *a, const Recipe *r) {
  const char *s = "[";
  for (int i = 0; i < r->nlr_mult; i++)
    s = arena_printf(a, "%s%smult(\"%s\", %.9g)", s, i ? ", " : "", r->lr_mult[i].layer.path, r->lr_mult[i].factor);
  return arena_printf(a, "%s]", s);
}

void recipe_print(FILE *out, Arena *a, const Recipe *r) {
  const char *v[S_COUNT] = {
      [S_MODEL] = value_str(a, r->model),
      [S_CLASSES] = r->classes ? arena_printf(a, "%lld", (long long)r->classes) : NULL,
      [S_BATCH] = arena_printf(a, "%lld", (long long)r->batch),
      [S_EPOCHS] = arena_printf(a, "%lld", (long long)r->epochs),
      [S_TEST_EVERY] = arena_printf(a, "%lld", (long long)r->test_every),
      [S_SEED] = arena_printf(a, "%lld", (long long)r->seed),
      [S_WEIGHTS] = r->weights ? arena_printf(a, "\"%s\"", r->weights) : "none",
      [S_FREEZE] = freeze_str(a, &r->freeze),
      [S_FROZEN_BN] = arena_printf(a, "\"%s\"", frozen_bn_names[r->frozen_bn]),
      [S_DATA] = data_str(a, &r->data),
      [S_TRAIN_TRANSFORM] = transforms_str(a, &r->train_transform),
      [S_EVAL_TRANSFORM] = transforms_str(a, &r->eval_transform),
      [S_OPTIMIZER] = optimizer_str(a, r),
      [S_SCHEDULE] = schedule_str(a, &r->schedule),
      [S_LR_MULT] = lr_mult_str(a, r),
      [S_DECAY_BN_BIAS] = r->decay_bn_bias ? "true" : "false",
      [S_LABEL_SMOOTHING] = arena_printf(a, "%.9g", r->label_smoothing),
      [S_SUBSET] = subset_str(a, &r->data),
      [S_PRECISION] = arena_printf(a, "\"%s\"", precision_names[r->precision]),
  };
  for (int k = 0; k < S_COUNT; k++)
    if (v[k])
      fprintf(out, "# %s = %s\n", settings[k].name, v[k]);
}
