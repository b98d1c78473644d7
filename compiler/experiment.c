// experiment.c: the experiment section. Settings are expressions evaluated on demand,
// so one setting can use another (model = resnet18(classes = classes)) and a --set
// override replaces a setting's expression before anything is evaluated.
#include "tlc.h"

#include <string.h>

typedef struct SettingSpec {
  const char *name;
  const char *accepts;  // for messages: what the setting takes
} SettingSpec;

// The known settings; Experiment.settings[] is indexed in this order.
enum {
  S_MODEL, S_CLASSES, S_BATCH, S_EPOCHS, S_SEED, S_WEIGHTS, S_FREEZE, S_FROZEN_BN, S_DATA, S_TRAIN_TRANSFORM,
  S_EVAL_TRANSFORM, S_OPTIMIZER, S_SCHEDULE, S_LR_MULT, S_DECAY_BN_BIAS, S_LABEL_SMOOTHING, S_SUBSET, S_COUNT
};

static const SettingSpec settings[S_COUNT] = {
    [S_MODEL] = {"model", "a model call such as resnet18(classes = 10)"},
    [S_CLASSES] = {"classes", "an integer"},
    [S_BATCH] = {"batch", "an integer"},
    [S_EPOCHS] = {"epochs", "an integer"},
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
    [S_SUBSET] = {"subset", "subset(classes = [...], per_class = N)"},
};
_Static_assert(S_COUNT <= 32, "Experiment.settings has room for every setting");

// A record a setting may hold: its constructor name and arguments.
typedef struct RecordSpec {
  int setting;
  const char *name;
  ArgSpec args[MAX_ARGS];
} RecordSpec;

enum { BIG = 1 << 30 };
static const RecordSpec records[] = {
    {S_DATA, "idx", {{"dir", ARG_STRING, false, 0, 0}, {"val", ARG_INT, false, 0, 1000000}}},
    {S_DATA, "image_folder", {{"dir", ARG_STRING, false, 0, 0}, {"val_split", ARG_FLOAT, false, 0, 0.99}}},
    {S_DATA, "cifar10", {{"dir", ARG_STRING, false, 0, 0}, {"dev", ARG_INT, false, 0, 50000}}},
    {S_DATA, "flowers102", {{"dir", ARG_STRING, false, 0, 0}}},
    {S_TRAIN_TRANSFORM, "resize", {{"size", ARG_INT, true, 1, 65536}}},
    {S_TRAIN_TRANSFORM, "center_crop", {{"size", ARG_INT, true, 1, 65536}}},
    {S_TRAIN_TRANSFORM, "random_crop", {{"size", ARG_INT, true, 1, 65536}, {"pad", ARG_INT, false, 0, 1024}}},
    {S_TRAIN_TRANSFORM, "random_resized_crop",
     {{"size", ARG_INT, true, 1, 65536}, {"scale", ARG_NUMBERS, false, 0.0001, 1}, {"ratio", ARG_NUMBERS, false, 0.01, 100}}},
    {S_TRAIN_TRANSFORM, "hflip", {{"p", ARG_FLOAT, false, 0, 1}}},
    {S_TRAIN_TRANSFORM, "vflip", {{"p", ARG_FLOAT, false, 0, 1}}},
    {S_TRAIN_TRANSFORM, "rotate", {{"degrees", ARG_FLOAT, true, 0, 180}}},
    {S_TRAIN_TRANSFORM, "color_jitter",
     {{"brightness", ARG_FLOAT, false, 0, 10}, {"contrast", ARG_FLOAT, false, 0, 10},
      {"saturation", ARG_FLOAT, false, 0, 10}, {"hue", ARG_FLOAT, false, 0, 0.5}}},
    {S_TRAIN_TRANSFORM, "normalize", {{"mean", ARG_NUMBERS, false, -1e6, 1e6}, {"std", ARG_NUMBERS, false, 1e-9, 1e6}}},
    {S_TRAIN_TRANSFORM, "grayscale_to_rgb", {{0}}},
    {S_OPTIMIZER, "sgd",
     {{"lr", ARG_FLOAT, true, 0, 0}, {"momentum", ARG_FLOAT, false, 0, 1}, {"nesterov", ARG_BOOL, false, 0, 0},
      {"weight_decay", ARG_FLOAT, false, 0, 0}}},
    {S_OPTIMIZER, "adam",
     {{"lr", ARG_FLOAT, false, 0, 0}, {"betas", ARG_NUMBERS, false, 0, 0.999999}, {"eps", ARG_FLOAT, false, 0, 1},
      {"weight_decay", ARG_FLOAT, false, 0, 0}}},
    {S_OPTIMIZER, "adamw",
     {{"lr", ARG_FLOAT, false, 0, 0}, {"betas", ARG_NUMBERS, false, 0, 0.999999}, {"eps", ARG_FLOAT, false, 0, 1},
      {"weight_decay", ARG_FLOAT, false, 0, 0}}},
    {S_SCHEDULE, "constant", {{"warmup", ARG_INT, false, 0, BIG}}},
    {S_SCHEDULE, "step",
     {{"step_size", ARG_INT, true, 1, BIG}, {"gamma", ARG_FLOAT, false, 0, 1}, {"warmup", ARG_INT, false, 0, BIG}}},
    {S_SCHEDULE, "multistep",
     {{"milestones", ARG_NUMBERS, true, 1, BIG}, {"gamma", ARG_FLOAT, false, 0, 1}, {"warmup", ARG_INT, false, 0, BIG}}},
    {S_SCHEDULE, "cosine", {{"eta_min", ARG_FLOAT, false, 0, 0}, {"warmup", ARG_INT, false, 0, BIG}}},
    {S_FREEZE, "before", {{"layer", ARG_STRING, true, 0, 0}}},
    {S_FREEZE, "through", {{"layer", ARG_STRING, true, 0, 0}}},
    {S_SUBSET, "subset", {{"classes", ARG_NUMBERS, false, 0, 1000000}, {"per_class", ARG_INT, false, 1, BIG}}},
    {S_LR_MULT, "mult", {{"layer", ARG_STRING, true, 0, 0}, {"factor", ARG_FLOAT, true, 0, 1e6}}},
};

static int spec_nargs(const RecordSpec *r) {
  int n = 0;
  while (n < MAX_ARGS && r->args[n].name)
    n++;
  return n;
}

typedef struct Ctx {
  Arena *arena;
  const Module *module;
  Setting *all;         // the section's settings, then those added by --set
  int n, cap;
  Value **cache;        // evaluated values by index into all[]
  bool *busy;           // being evaluated: a setting that reaches itself is a cycle
  int eval_depth;
  Env env;
} Ctx;

static int find_setting(const Ctx *c, const char *name) {
  for (int i = 0; i < c->n; i++)
    if (!strcmp(c->all[i].name, name))
      return i;
  return -1;
}

static int known_setting(const char *name) {
  for (int i = 0; i < S_COUNT; i++)
    if (!strcmp(settings[i].name, name))
      return i;
  return -1;
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

static const RecordSpec *record_spec(int setting, const char *name) {
  int kind = setting == S_EVAL_TRANSFORM ? S_TRAIN_TRANSFORM : setting;
  for (size_t i = 0; i < sizeof records / sizeof *records; i++)
    if (records[i].setting == kind && !strcmp(records[i].name, name))
      return &records[i];
  return NULL;
}

static const char *record_names(Arena *a, int setting) {
  int kind = setting == S_EVAL_TRANSFORM ? S_TRAIN_TRANSFORM : setting;
  const char *s = "";
  for (size_t i = 0; i < sizeof records / sizeof *records; i++)
    if (records[i].setting == kind)
      s = arena_printf(a, "%s%s%s", s, s[0] ? ", " : "", records[i].name);
  return s;
}

static void check_record(Arena *a, int setting, const Value *v) {
  if (v->kind != V_RECORD)
    error_at(v->span, "%s takes %s, found %s", settings[setting].name, settings[setting].accepts, value_str(a, v));
  const RecordSpec *r = record_spec(setting, v->s);
  if (!r)
    error_at(v->span, "unknown %s '%s' (known: %s)", settings[setting].name, v->s, record_names(a, setting));
  BoundArgs b;
  args_bind(a, v->s, r->args, spec_nargs(r), v->fields, v->nfields, v->span, &b);
  for (int i = 0; i < MAX_ARGS && r->args[i].name; i++)
    if (r->args[i].type == ARG_NUMBERS && b.v[i] && (!strcmp(r->args[i].name, "scale") || !strcmp(r->args[i].name, "ratio") ||
                                                     !strcmp(r->args[i].name, "betas")) && b.v[i]->n != 2)
      error_at(b.v[i]->span, "%s takes two numbers [low, high]", r->args[i].name);
}

static void check_list_of_records(Arena *a, int setting, const Value *v) {
  if (v->kind != V_LIST)
    error_at(v->span, "%s takes %s, found %s", settings[setting].name, settings[setting].accepts, value_str(a, v));
  for (int i = 0; i < v->n; i++)
    check_record(a, setting, v->items[i]);
}

static int64_t check_int(const Value *v, const char *name, int64_t lo, int64_t hi) {
  int64_t x = value_int(v, name);
  if (x < lo || x > hi)
    error_at(v->span, "%s must be between %lld and %lld, found %lld", name, (long long)lo, (long long)hi, (long long)x);
  return x;
}

static void check_freeze(Arena *a, const Value *v) {
  if (v->kind == V_NONE || (v->kind == V_STRING && !strcmp(v->s, "all")))
    return;
  if (v->kind == V_LIST) {
    for (int i = 0; i < v->n; i++)
      if (v->items[i]->kind != V_STRING)
        error_at(v->items[i]->span, "freeze lists layer names in quotes, found %s", value_str(a, v->items[i]));
    return;
  }
  if (v->kind == V_RECORD && !strcmp(v->s, "all_except")) {
    if (v->nfields != 1 || v->fields[0].name)
      error_at(v->span, "all_except takes one list of layer names");
    check_freeze(a, v->fields[0].value);
    if (v->fields[0].value->kind != V_LIST)
      error_at(v->fields[0].value->span, "all_except takes a list of layer names");
    return;
  }
  check_record(a, S_FREEZE, v);
}

// The classes of a subset are distinct whole numbers (class indices of the data set).
static void check_subset(Arena *a, const Value *v) {
  check_record(a, S_SUBSET, v);
  const Value *classes = NULL;
  for (int i = 0; i < v->nfields; i++)
    if (!v->fields[i].name || !strcmp(v->fields[i].name, "classes"))
      classes = classes ? classes : v->fields[i].value;
  for (int i = 0; classes && i < classes->n; i++) {
    const Value *c = classes->items[i];
    if (c->kind != V_INT)
      error_at(c->span, "subset's classes are class indices (whole numbers), found %s", value_str(a, c));
    for (int j = 0; j < i; j++)
      if (classes->items[j]->i == c->i)
        error_at(c->span, "class %lld is listed twice in subset's classes", (long long)c->i);
  }
  if (classes && classes->n == 0)
    error_at(classes->span, "subset's classes is empty");
}

static void check_setting(Ctx *c, Experiment *x, int k, Value *v) {
  Arena *a = c->arena;
  const char *name = settings[k].name;
  switch (k) {
  case S_MODEL:
    if (v->kind != V_RECORD)
      error_at(v->span, "model takes %s, found %s", settings[k].accepts, value_str(a, v));
    break;
  case S_CLASSES: x->classes = check_int(v, name, 1, 1000000); break;
  case S_BATCH: x->batch = check_int(v, name, 1, 65536); break;
  case S_EPOCHS: x->epochs = check_int(v, name, 1, 1000000); break;
  case S_SEED: check_int(v, name, 0, INT64_MAX); break;
  case S_WEIGHTS:
    if (v->kind != V_NONE && v->kind != V_STRING)
      error_at(v->span, "weights takes %s, found %s", settings[k].accepts, value_str(a, v));
    break;
  case S_FREEZE: check_freeze(a, v); break;
  case S_FROZEN_BN:
    if (v->kind != V_STRING || (strcmp(v->s, "running") && strcmp(v->s, "batch")))
      error_at(v->span, "frozen_bn takes %s, found %s", settings[k].accepts, value_str(a, v));
    break;
  case S_TRAIN_TRANSFORM:
  case S_EVAL_TRANSFORM:
  case S_LR_MULT: check_list_of_records(a, k, v); break;
  case S_DECAY_BN_BIAS: value_bool(v, name); break;
  case S_LABEL_SMOOTHING: {
    double ls = value_number(v, name);
    if (ls < 0 || ls >= 1)
      error_at(v->span, "label_smoothing must be in [0, 1), found %g", ls);
    break;
  }
  case S_SUBSET: check_subset(a, v); break;
  default: check_record(a, k, v); break;
  }
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
  if (!dot) {
    if (i >= 0) {
      c->all[i].value = value;
      return;
    }
    if (known_setting(top) < 0)
      error_at(name_span, "unknown setting '%s'", top);
    Setting s = {.name = top, .span = name_span, .value = value};
    ARENA_PUSH(a, c->all, c->n, c->cap, s);
    return;
  }
  if (i < 0)
    error_at(name_span, "there is no setting '%s' to change an argument of", top);
  Expr *call = c->all[i].value;
  if (call->kind != EX_CALL)
    error_at(name_span, "setting '%s' is not a call, so it has no argument '%s'", top, dot + 1);
  for (int j = 0; j < call->nargs; j++)
    if (call->args[j].name && !strcmp(call->args[j].name, dot + 1)) {
      call->args[j].value = value;
      return;
    }
  Arg *args = arena_alloc(a, sizeof(Arg) * (size_t)(call->nargs + 1));
  memcpy(args, call->args, sizeof(Arg) * (size_t)call->nargs);
  args[call->nargs] = (Arg){.name = dot + 1, .name_span = name_span, .value = value};
  call->args = args;
  call->nargs++;
}

// The optimizer's settings with PyTorch's defaults filled in.
static void resolve_optimizer(Arena *a, Experiment *x) {
  const Value *v = x->settings[S_OPTIMIZER];
  x->opt = (OptAttrs){.lr = 0.01, .momentum = 0.9, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
  if (!v)
    return;
  const RecordSpec *r = record_spec(S_OPTIMIZER, v->s);
  BoundArgs b;
  args_bind(a, v->s, r->args, spec_nargs(r), v->fields, v->nfields, v->span, &b);
  x->adam = strcmp(v->s, "sgd") != 0;
  x->opt.decoupled = !strcmp(v->s, "adamw");
  if (x->adam) {
    x->opt.lr = arg_float(&b, 0, 1e-3);
    x->opt.beta1 = b.v[1] ? value_number(b.v[1]->items[0], "") : 0.9;
    x->opt.beta2 = b.v[1] ? value_number(b.v[1]->items[1], "") : 0.999;
    x->opt.eps = arg_float(&b, 2, 1e-8);
    x->opt.weight_decay = arg_float(&b, 3, x->opt.decoupled ? 0.01 : 0);
  } else {
    x->opt.lr = arg_float(&b, 0, 0.01);
    x->opt.momentum = arg_float(&b, 1, 0);
    x->opt.nesterov = arg_bool(&b, 2, false);
    x->opt.weight_decay = arg_float(&b, 3, 0);
  }
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

// A model with a 'classes' parameter gets the experiment's classes unless the call says otherwise.
static void pass_classes(Ctx *c, Experiment *x) {
  Value *m = x->model;
  const Decl *d = module_find(c->module, m->s);
  if (!x->settings[S_CLASSES] || !d || d->kind != DECL_MODEL)
    return;
  bool takes = false;
  for (int i = 0; i < d->nparams; i++)
    takes |= !strcmp(d->params[i].name, "classes");
  for (int i = 0; i < m->nfields; i++)
    if (m->fields[i].name && !strcmp(m->fields[i].name, "classes"))
      return;
  if (!takes)
    return;
  Field *f = arena_alloc(c->arena, sizeof(Field) * (size_t)(m->nfields + 1));
  memcpy(f, m->fields, sizeof(Field) * (size_t)m->nfields);
  f[m->nfields] = (Field){"classes", x->settings[S_CLASSES], x->settings[S_CLASSES]->span};
  m->fields = f;
  m->nfields++;
}

Experiment *experiment_load(Arena *a, const Module *m, const Override *ov, int nov) {
  Ctx c = {.arena = a, .module = m};
  const Decl *d = m->experiment;
  if (d)
    for (int i = 0; i < d->nsettings; i++) {
      if (!d->settings[i].is_let && known_setting(d->settings[i].name) < 0)
        error_at(d->settings[i].span, "unknown setting '%s' (write 'let %s = ...' for a variable of your own)",
                 d->settings[i].name, d->settings[i].name);
      ARENA_PUSH(a, c.all, c.n, c.cap, d->settings[i]);
    }
  for (int i = 0; i < nov; i++)
    apply_override(&c, &ov[i]);
  c.cache = arena_alloc(a, sizeof(Value *) * (size_t)(c.n + 1));
  c.busy = arena_alloc(a, sizeof(bool) * (size_t)(c.n + 1));
  c.env = (Env){.arena = a, .module = m, .records = true, .lookup_setting = lookup, .setting_ctx = &c,
                .depth = &c.eval_depth};
  Experiment *x = arena_alloc(a, sizeof *x);
  x->batch = d ? 64 : 1;
  x->epochs = 10;
  for (int k = 0; k < S_COUNT; k++) {
    x->names[k] = settings[k].name;
    int i = find_setting(&c, settings[k].name);
    if (i < 0)
      continue;
    Value *v = lookup(&c, settings[k].name, c.all[i].span);
    check_setting(&c, x, k, v);
    x->settings[k] = v;
  }
  for (int i = 0; i < c.n; i++)   // user variables are checked by evaluating them once
    lookup(&c, c.all[i].name, c.all[i].span);
  x->nsettings = S_COUNT;
  x->model = x->settings[S_MODEL] ? x->settings[S_MODEL] : default_model(&c);
  resolve_optimizer(a, x);
  x->label_smoothing = x->settings[S_LABEL_SMOOTHING] ? value_number(x->settings[S_LABEL_SMOOTHING], "") : 0;
  x->frozen_bn_batch = x->settings[S_FROZEN_BN] && !strcmp(x->settings[S_FROZEN_BN]->s, "batch");
  x->decay_bn_bias = !x->settings[S_DECAY_BN_BIAS] || x->settings[S_DECAY_BN_BIAS]->i;
  x->lr_mult = x->settings[S_LR_MULT];
  pass_classes(&c, x);
  return x;
}

static void freeze_node(Node *n) {
  n->frozen = true;
  for (int i = 0; i < n->nparams; i++)
    n->params[i]->frozen = true;
}

static const Node *find_or_fail(const Graph *g, const Value *name, bool last) {
  const Node *n = graph_find_layer(g, name->s, last);
  if (!n)
    error_at(name->span, "freeze names '%s', but model '%s' has no layer of that name", name->s, g->model);
  return n;
}

void experiment_apply_freeze(const Experiment *x, Graph *g) {
  const Value *v = x->settings[S_FREEZE];
  if (!v || v->kind == V_NONE)
    return;
  if (v->kind == V_STRING) {   // "all"
    for (int i = 1; i < g->n; i++)
      freeze_node(g->nodes[i]);
    return;
  }
  if (v->kind == V_RECORD && strcmp(v->s, "all_except") != 0) {
    bool through = !strcmp(v->s, "through");
    int end = find_or_fail(g, v->fields[0].value, through)->id + through;
    for (int i = 1; i < end; i++)
      freeze_node(g->nodes[i]);
    return;
  }
  bool except = v->kind == V_RECORD;
  const Value *list = except ? v->fields[0].value : v;
  for (int j = 0; j < list->n; j++)
    find_or_fail(g, list->items[j], false);
  for (int i = 1; i < g->n; i++) {
    bool listed = false;
    for (int j = 0; j < list->n; j++) {
      size_t len = strlen(list->items[j]->s);
      const char *name = g->nodes[i]->name;
      listed |= !strncmp(name, list->items[j]->s, len) && (name[len] == 0 || name[len] == '.');
    }
    if (listed != except)
      freeze_node(g->nodes[i]);
  }
}

void experiment_print(FILE *out, Arena *a, const Experiment *x) {
  for (int k = 0; k < x->nsettings; k++)
    if (x->settings[k])
      fprintf(out, "# %s = %s\n", x->names[k], value_str(a, x->settings[k]));
}

const Value *experiment_setting(const Experiment *x, const char *name) {
  for (int k = 0; k < x->nsettings; k++)
    if (!strcmp(x->names[k], name))
      return x->settings[k];
  return NULL;
}
