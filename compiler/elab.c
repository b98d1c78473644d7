// elab.c: expands a model into the graph IR. Statements of a body run in order, each
// taking the previous statement's output unless it names its inputs (@label, in).
// Every statement gets a name in its scope: its label, or its position (0, 1, ...)
// like PyTorch's nn.Sequential, so parameter names come out as torchvision's.
#include "tlc.h"

#include <string.h>

typedef struct Elab {
  Arena *arena;
  const Module *module;
  Graph *g;
  const Decl *stack[MAX_NESTING];   // blocks being expanded, for recursion checks
  int depth;
  const Note *notes;
  EvalBudget budget;
} Elab;

typedef struct Scope {
  const char *prefix;   // dotted name of the scope, "" at the model's root
  int next_index;       // position of the next statement
  Node *current;        // the running value
  Env *env;             // variables and @labels
  NameMap names;        // names taken in this scope
} Scope;

static void body(Elab *x, Scope *s, const Body *b);

static Env *env_new(Elab *x, const Env *outer) {
  Env *e = arena_alloc(x->arena, sizeof *e);
  e->outer = outer;
  e->arena = x->arena;
  e->module = x->module;
  e->budget = &x->budget;
  return e;
}

static void graph_add(Elab *x, Node *n) {
  Graph *g = x->g;
  if (g->n >= MAX_NODES)
    error_at(n->span, "the model has more than %d layers", MAX_NODES);
  n->id = g->n;
  ARENA_PUSH(x->arena, g->nodes, g->n, g->cap, n);
  for (int i = 0; i < n->nparams; i++)
    ARENA_PUSH(x->arena, g->params, g->nparams, g->pcap, n->params[i]);
}

static const char *suggest(Elab *x, const char *name) {
  Nearest n = {.name = name};
  for (int i = 1; i < OP_PARAM; i++)
    nearest_offer(&n, op_info[i].name);
  for (int i = 0; i < x->module->ndecls; i++)
    if (x->module->decls[i]->kind != DECL_LET)
      nearest_offer(&n, x->module->decls[i]->name);
  return nearest_hint(x->arena, &n);
}

// Takes the next name of scope s: the label if there is one, else the position.
static const char *child_name(Elab *x, Scope *s, const Stmt *st) {
  const char *local = st->label ? st->label : arena_printf(x->arena, "%d", s->next_index);
  s->next_index++;
  if (namemap_get(&s->names, local) >= 0)
    error_at(st->label ? st->label_span : st->span, "the name '%s' is already used in this %s", local,
             s->prefix[0] ? "scope" : "model");
  namemap_put(x->arena, &s->names, local, 1);
  return s->prefix[0] ? arena_printf(x->arena, "%s.%s", s->prefix, local) : local;
}

typedef struct CallArgs {
  Node *tensors[4];     // positional tensor arguments: the inputs
  int ntensors;
  Field *rest;          // every other argument, evaluated
  int nrest;
} CallArgs;

static CallArgs eval_args(Elab *x, Scope *s, const Expr *call) {
  CallArgs ca = {0};
  ca.rest = arena_alloc(x->arena, sizeof(Field) * (size_t)(call->nargs ? call->nargs : 1));
  for (int i = 0; i < call->nargs; i++) {
    const Arg *arg = &call->args[i];
    Value *v = eval(s->env, arg->value);
    if (v->kind == V_TENSOR && !arg->name) {
      if (ca.ntensors == 4)
        error_at(arg->value->span, "too many tensor inputs");
      ca.tensors[ca.ntensors++] = v->tensor;
      continue;
    }
    if (v->kind == V_TENSOR)
      error_at(arg->name_span, "a tensor input is passed by position, not by name");
    ca.rest[ca.nrest++] = (Field){arg->name, v, arg->name_span};
  }
  return ca;
}

// Makes the statement's output reachable as @label (its local name) in its scope.
static void bind_label(Scope *s, const char *full, Node *out) {
  const char *local = strrchr(full, '.') ? strrchr(full, '.') + 1 : full;
  env_bind(s->env, local, NULL, out);
}

static void layer_op(Elab *x, Scope *s, const Stmt *st, OpKind op, const char *name) {
  CallArgs ca = eval_args(x, s, st->call);
  int arity = op_info[op].arity;
  Node *in[2];
  int nin = 0;
  if (ca.ntensors > arity)
    error_at(st->call->span, "%s takes %d tensor input%s, found %d", op_info[op].name, arity, arity == 1 ? "" : "s",
             ca.ntensors);
  if (ca.ntensors < arity)
    in[nin++] = s->current;
  for (int i = 0; i < ca.ntensors; i++)
    in[nin++] = ca.tensors[i];
  Node *n = op_build(x->arena, op, name, in, nin, ca.rest, ca.nrest, st->span);
  graph_add(x, n);
  s->current = n;
}

// Binds the arguments of a call to the block's parameters, in the callee's environment.
static void bind_params(Elab *x, const Decl *d, const Field *args, int nargs, Span call_span, Env *callee) {
  const Value **given = arena_alloc(x->arena, sizeof(Value *) * (size_t)(d->nparams ? d->nparams : 1));
  int next = 0;
  for (int i = 0; i < nargs; i++) {
    int slot = -1;
    if (args[i].name) {
      for (int j = 0; j < d->nparams; j++)
        if (!strcmp(d->params[j].name, args[i].name))
          slot = j;
      if (slot < 0) {
        Nearest n = {.name = args[i].name};
        for (int j = 0; j < d->nparams; j++)
          nearest_offer(&n, d->params[j].name);
        error_at(args[i].span, "%s '%s' has no parameter '%s'%s", d->kind == DECL_MODEL ? "model" : "block", d->name,
                 args[i].name, nearest_hint(x->arena, &n));
      }
    } else {
      if (next >= d->nparams)
        error_at(args[i].span, "'%s' takes %d argument%s, found more", d->name, d->nparams,
                 d->nparams == 1 ? "" : "s");
      slot = next++;
    }
    if (given[slot])
      error_at(args[i].span, "parameter '%s' of '%s' is given twice", d->params[slot].name, d->name);
    given[slot] = args[i].value;
  }
  for (int j = 0; j < d->nparams; j++) {
    Value *v = (Value *)given[j];
    if (!v && !d->params[j].default_value)
      error_at(call_span, "'%s' needs the argument '%s'", d->name, d->params[j].name);
    if (!v)
      v = eval(callee, d->params[j].default_value);
    env_bind(callee, d->params[j].name, v, NULL);
  }
}

static Node *expand_block(Elab *x, const Decl *d, const char *name, Node *input, const Field *args, int nargs,
                          Span call_span) {
  for (int i = 0; i < x->depth; i++)
    if (x->stack[i] == d)
      error_at(call_span, "block '%s' uses itself (recursion is not allowed)", d->name);
  if (x->depth == MAX_NESTING)
    error_at(call_span, "blocks are nested more than %d deep", MAX_NESTING);
  x->stack[x->depth++] = d;
  Note note = {.outer = x->notes, .span = call_span, .what = arena_printf(x->arena, "in '%s', used here", d->name)};
  x->notes = &note;
  diag_set_notes(x->notes);
  Env *callee = env_new(x, NULL);
  Value *in = value_new(x->arena, V_TENSOR, call_span);
  in->tensor = input;
  env_bind(callee, "in", in, NULL);
  bind_params(x, d, args, nargs, call_span, callee);
  Scope inner = {.prefix = name, .current = input, .env = callee};
  body(x, &inner, &d->body);
  x->notes = note.outer;
  diag_set_notes(x->notes);
  x->depth--;
  return inner.current;
}

static Node *single_input(const Scope *s, const CallArgs *ca, const Stmt *st, const char *what) {
  if (ca->ntensors > 1)
    error_at(st->call->span, "%s takes one tensor input, found %d", what, ca->ntensors);
  return ca->ntensors ? ca->tensors[0] : s->current;
}

static void layer(Elab *x, Scope *s, const Stmt *st) {
  const char *callee = st->call->name;
  OpKind op = op_lookup(callee);
  const Decl *d = op == OP_COUNT ? module_find(x->module, callee) : NULL;
  if (op == OP_COUNT && (!d || d->kind == DECL_LET))
    error_at(st->call->span, "unknown layer or block '%s'%s", callee, suggest(x, callee));
  const char *name = child_name(x, s, st);
  if (op != OP_COUNT) {
    layer_op(x, s, st, op, name);
  } else {
    CallArgs ca = eval_args(x, s, st->call);
    Node *in = single_input(s, &ca, st, callee);
    s->current = expand_block(x, d, name, in, ca.rest, ca.nrest, st->call->span);
  }
  bind_label(s, name, s->current);
}

static void seq(Elab *x, Scope *s, const Stmt *st) {
  const char *name = child_name(x, s, st);
  CallArgs ca = eval_args(x, s, st->call);
  if (ca.nrest)
    error_at(ca.rest[0].span, "seq takes only a tensor input");
  Scope inner = {.prefix = name, .current = single_input(s, &ca, st, "seq"), .env = env_new(x, s->env)};
  body(x, &inner, &st->body);
  s->current = inner.current;
  bind_label(s, name, s->current);
}

static void repeat(Elab *x, Scope *s, const Stmt *st) {
  int64_t count = value_int(eval(s->env, st->value), "a repeat count");
  if (count < 0 || count > MAX_NODES)
    error_at(st->value->span, "a repeat count must be between 0 and %d, found %lld", MAX_NODES, (long long)count);
  for (int64_t i = 0; i < count; i++) {
    eval_spend(s->env, 1, st->span);   // nested repeats multiply: an empty body still costs
    if (st->var) {
      Value *iv = value_new(x->arena, V_INT, st->value->span);
      iv->i = i;
      env_bind(s->env, st->var, iv, NULL);
    }
    body(x, s, &st->body);
  }
}

static void body(Elab *x, Scope *s, const Body *b) {
  for (int i = 0; i < b->n; i++) {
    const Stmt *st = b->stmts[i];
    switch (st->kind) {
    case ST_LET: env_bind(s->env, st->var, eval(s->env, st->value), NULL); break;
    case ST_IF:
      if (value_bool(eval(s->env, st->value), "an 'if' condition"))
        body(x, s, &st->body);
      else if (st->has_else)
        body(x, s, &st->else_body);
      break;
    case ST_REPEAT: repeat(x, s, st); break;
    case ST_SEQ: seq(x, s, st); break;
    case ST_LAYER: layer(x, s, st); break;
    }
  }
}

// model m(...) = b(...): b's layers sit at the model's root, named without a prefix.
static Node *expand_alias(Elab *x, Scope *root, const Expr *call) {
  const Decl *target = module_find(x->module, call->name);
  if (!target || target->kind != DECL_BLOCK)
    error_at(call->span, "'%s' is not a block%s", call->name, target ? "" : suggest(x, call->name));
  CallArgs ca = eval_args(x, root, call);
  if (ca.ntensors)
    error_at(call->span, "a model's block takes the model input; pass no tensor");
  return expand_block(x, target, "", root->current, ca.rest, ca.nrest, call->span);
}

// The model's 'input' parameter: [C, H, W].
static Node *input_node(Elab *x, const Env *env, const Decl *d, int64_t batch) {
  const Binding *b = env_find(env, "input");
  if (!b)
    error_at(d->name_span, "model '%s' needs a parameter 'input' (its [C, H, W] input shape)", d->name);
  const Value *v = b->value;
  if (v->kind != V_LIST || v->n != 3)
    error_at(v->span, "input must be a list [C, H, W], found %s", value_str(x->arena, v));
  int64_t dims[3];
  for (int i = 0; i < 3; i++) {
    dims[i] = value_int(v->items[i], "an input dimension");
    if (dims[i] < 1 || dims[i] > 65536)
      error_at(v->items[i]->span, "an input dimension must be between 1 and 65536, found %lld", (long long)dims[i]);
  }
  Node *n = arena_alloc(x->arena, sizeof *n);
  n->op = OP_INPUT;
  n->name = "input";
  n->span = v->span;
  n->shape = shape4(batch, dims[0], dims[1], dims[2]);
  return n;
}

Graph *elaborate(Arena *a, const Module *m, const Value *model_call, int64_t batch) {
  Elab x = {.arena = a, .module = m};
  x.g = arena_alloc(a, sizeof *x.g);
  x.g->arena = a;
  x.g->batch = batch;
  const Decl *d = module_find(m, model_call->s);
  if (!d || d->kind != DECL_MODEL)
    error_at(model_call->span, "'%s' is not a model%s", model_call->s,
             d ? " (declare it with 'model', not 'block')" : suggest(&x, model_call->s));
  x.g->model = d->name;
  Env *env = env_new(&x, NULL);
  bind_params(&x, d, model_call->fields, model_call->nfields, model_call->span, env);
  Node *input = input_node(&x, env, d, batch);
  graph_add(&x, input);
  Value *in = value_new(a, V_TENSOR, input->span);
  in->tensor = input;
  env_bind(env, "in", in, NULL);
  x.stack[x.depth++] = d;
  Scope root = {.prefix = "", .current = input, .env = env};
  if (d->value)
    root.current = expand_alias(&x, &root, d->value);
  else
    body(&x, &root, &d->body);
  x.g->output = root.current;
  diag_set_notes(NULL);
  return x.g;
}

bool layer_in(const char *name, const char *path) {
  size_t len = strlen(path);
  return !strncmp(name, path, len) && (name[len] == 0 || name[len] == '.');
}

const Node *graph_find_layer(const Graph *g, const char *path, bool last) {
  const Node *found = NULL;
  for (int i = 0; i < g->n; i++) {
    if (layer_in(g->nodes[i]->name, path)) {
      found = g->nodes[i];
      if (!last)
        return found;
    }
  }
  return found;
}
