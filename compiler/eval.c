// eval.c: compile-time expressions. Integers are 64-bit and checked for overflow;
// '/' always gives a float (as in Python), '//' floors. Calls are builtin functions,
// or records (sgd(lr = 0.1)) inside an experiment section.
#include "tlc.h"

#include <math.h>
#include <string.h>

Value *value_new(Arena *a, ValueKind kind, Span span) {
  Value *v = arena_alloc(a, sizeof *v);
  v->kind = kind;
  v->span = span;
  return v;
}

const char *value_kind_name(ValueKind k) {
  static const char *const names[] = {"none", "an integer", "a number", "a boolean", "a string",
                                      "a list", "a tensor", "a call"};
  return names[k];
}

// A value as it would be written, cut at a few hundred characters: it goes into messages,
// and a value can be a list of a million elements (or a list of lists sharing one another).
enum { VALUE_TEXT = 400 };

typedef struct Text {
  char buf[VALUE_TEXT + 8];
  int len;
} Text;

static bool put(Text *t, const char *s) {
  int n = (int)strlen(s);
  if (t->len + n > VALUE_TEXT) {
    strcpy(t->buf + (t->len < VALUE_TEXT ? t->len : VALUE_TEXT), "...");
    t->len = VALUE_TEXT + 3;
    return false;
  }
  memcpy(t->buf + t->len, s, (size_t)n + 1);
  t->len += n;
  return true;
}

static bool write_value(Arena *a, Text *t, const Value *v) {
  char num[64];
  switch (v->kind) {
  case V_NONE: return put(t, "none");
  case V_INT: snprintf(num, sizeof num, "%lld", (long long)v->i); return put(t, num);
  case V_FLOAT: snprintf(num, sizeof num, "%g", v->f); return put(t, num);
  case V_BOOL: return put(t, v->i ? "true" : "false");
  case V_STRING: return put(t, "\"") && put(t, v->s) && put(t, "\"");
  case V_TENSOR: return put(t, "tensor ") && put(t, shape_str(a, v->tensor->shape));
  case V_LIST:
    if (!put(t, "["))
      return false;
    for (int i = 0; i < v->n; i++)
      if ((i && !put(t, ", ")) || !write_value(a, t, v->items[i]))
        return false;
    return put(t, "]");
  case V_RECORD:
    if (!put(t, v->s) || !put(t, "("))
      return false;
    for (int i = 0; i < v->nfields; i++) {
      const Field *f = &v->fields[i];
      if ((i && !put(t, ", ")) || (f->name && (!put(t, f->name) || !put(t, " = "))) || !write_value(a, t, f->value))
        return false;
    }
    return put(t, ")");
  }
  return put(t, "?");
}

const char *value_str(Arena *a, const Value *v) {
  Text t = {.len = 0};
  t.buf[0] = 0;
  write_value(a, &t, v);
  return arena_strdup(a, t.buf);
}

int64_t value_int(const Value *v, const char *what) {
  if (v->kind != V_INT)
    error_at(v->span, "%s must be an integer, found %s", what, value_kind_name(v->kind));
  return v->i;
}

double value_number(const Value *v, const char *what) {
  if (v->kind == V_INT)
    return (double)v->i;
  if (v->kind != V_FLOAT)
    error_at(v->span, "%s must be a number, found %s", what, value_kind_name(v->kind));
  return v->f;
}

bool value_bool(const Value *v, const char *what) {
  if (v->kind != V_BOOL)
    error_at(v->span, "%s must be true or false, found %s", what, value_kind_name(v->kind));
  return v->i != 0;
}

void env_bind(Env *env, const char *name, Value *v, Node *node) {
  Binding b = {.name = name, .value = v, .node = node};
  namemap_put(env->arena, &env->index, name, env->nvars);
  ARENA_PUSH(env->arena, env->vars, env->nvars, env->cap, b);
}

const Binding *env_find(const Env *env, const char *name) {
  for (; env; env = env->outer) {
    int i = namemap_get(&env->index, name);
    if (i >= 0)
      return &env->vars[i];
  }
  return NULL;
}

static Value *int_value(Env *env, int64_t i, Span span) {
  Value *v = value_new(env->arena, V_INT, span);
  v->i = i;
  return v;
}

static Value *float_value(Env *env, double f, Span span) {
  if (!isfinite(f))
    error_at(span, "this computes %g, which is not a finite number", f);
  Value *v = value_new(env->arena, V_FLOAT, span);
  v->f = f;
  return v;
}

static Value *bool_value(Env *env, bool b, Span span) {
  Value *v = value_new(env->arena, V_BOOL, span);
  v->i = b;
  return v;
}

// A top-level 'let' is evaluated where it is declared, whoever uses it, and once: every use
// shares its value (a chain of lets that each use the previous one twice stays linear).
static Value *eval_global(Env *env, Decl *d, Span use) {
  if (d->evaluating)
    error_at(use, "'%s' depends on itself", d->name);
  if (!d->let_value) {
    Env global = {.arena = env->arena, .module = env->module, .budget = env->budget};
    d->evaluating = true;
    d->let_value = eval(&global, d->value);
    d->evaluating = false;
  }
  Value *copy = value_new(env->arena, V_NONE, use);
  *copy = *d->let_value;
  return copy;
}

// The variables in scope and the file's lets nearest a misspelt name.
static const char *name_hint(const Env *env, const char *name) {
  Nearest n = {.name = name};
  for (const Env *e = env; e; e = e->outer)
    for (int i = 0; i < e->nvars; i++)
      nearest_offer(&n, e->vars[i].name);
  for (int i = 0; env->module && i < env->module->ndecls; i++)
    if (env->module->decls[i]->kind == DECL_LET)
      nearest_offer(&n, env->module->decls[i]->name);
  return nearest_hint(env->arena, &n);
}

static Value *eval_name(Env *env, const Expr *e) {
  const Binding *b = env_find(env, e->name);
  if (b) {
    if (!b->value)
      error_at(e->span, "'%s' is a layer label; write '@%s' to use its output", e->name, e->name);
    return b->value;
  }
  if (env->lookup_setting) {
    Value *v = env->lookup_setting(env->setting_ctx, e->name, e->span);
    if (v)
      return v;
  }
  Decl *d = module_find(env->module, e->name);
  if (d && d->kind == DECL_LET)
    return eval_global(env, d, e->span);
  if (d)
    error_at(e->span, "'%s' is a %s, not a value", e->name, d->kind == DECL_MODEL ? "model" : "block");
  if (strcmp(e->name, "in") == 0)
    error_at(e->span, "'in' (the block's input) is only defined inside a block or model");
  error_at(e->span, "unknown name '%s'%s", e->name, name_hint(env, e->name));
}

static Value *eval_ref(Env *env, const Expr *e) {
  const Binding *b = env_find(env, e->name);
  if (!b || !b->node)
    error_at(e->span, "no layer labelled '%s' before this point in the block", e->name);
  Value *v = value_new(env->arena, V_TENSOR, e->span);
  v->tensor = b->node;
  return v;
}

static Value *eval_list(Env *env, const Expr *e) {
  Value *v = value_new(env->arena, V_LIST, e->span);
  v->n = e->nitems;
  v->items = arena_alloc(env->arena, sizeof(Value *) * (size_t)(v->n ? v->n : 1));
  for (int i = 0; i < v->n; i++)
    v->items[i] = eval(env, e->items[i]);
  return v;
}

static Value *eval_comprehension(Env *env, const Expr *e) {
  Value *src = eval(env, e->b);
  if (src->kind != V_LIST)
    error_at(e->b->span, "a comprehension loops over a list, found %s", value_kind_name(src->kind));
  Value *v = value_new(env->arena, V_LIST, e->span);
  v->n = src->n;
  v->items = arena_alloc(env->arena, sizeof(Value *) * (size_t)(v->n ? v->n : 1));
  for (int i = 0; i < src->n; i++) {
    Env inner = *env;
    inner.outer = env;
    inner.vars = NULL;
    inner.nvars = inner.cap = 0;
    inner.index = (NameMap){0};
    env_bind(&inner, e->name, src->items[i], NULL);
    v->items[i] = eval(&inner, e->a);
  }
  return v;
}

static Value *arith(Env *env, const Expr *e, Value *l, Value *r) {
  const char *op = e->name;
  if (l->kind == V_INT && r->kind == V_INT && strcmp(op, "/") != 0) {
    int64_t a = l->i, b = r->i, out = 0;
    bool overflow = false;
    if (!strcmp(op, "+"))
      overflow = __builtin_add_overflow(a, b, &out);
    else if (!strcmp(op, "-"))
      overflow = __builtin_sub_overflow(a, b, &out);
    else if (!strcmp(op, "*"))
      overflow = __builtin_mul_overflow(a, b, &out);
    else {
      if (b == 0)
        error_at(e->b->span, "division by zero");
      if (a == INT64_MIN && b == -1)
        overflow = true;
      else if (!strcmp(op, "%"))
        out = ((a % b) + b) % b;
      else
        out = a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
    }
    if (overflow)
      error_at(e->span, "integer overflow in '%s'", op);
    return int_value(env, out, e->span);
  }
  double a = value_number(l, "an operand of arithmetic"), b = value_number(r, "an operand of arithmetic");
  if (!strcmp(op, "+"))
    return float_value(env, a + b, e->span);
  if (!strcmp(op, "-"))
    return float_value(env, a - b, e->span);
  if (!strcmp(op, "*"))
    return float_value(env, a * b, e->span);
  if (b == 0)
    error_at(e->b->span, "division by zero");
  if (!strcmp(op, "/"))
    return float_value(env, a / b, e->span);
  if (!strcmp(op, "//"))
    return float_value(env, floor(a / b), e->span);
  return float_value(env, a - b * floor(a / b), e->span);
}

static bool values_equal(Env *env, const Value *l, const Value *r, Span span) {
  eval_spend(env, 1, span);   // lists may share elements: comparing them can take long
  if ((l->kind == V_INT || l->kind == V_FLOAT) && (r->kind == V_INT || r->kind == V_FLOAT))
    return value_number(l, "") == value_number(r, "");
  if (l->kind != r->kind)
    return false;
  switch (l->kind) {
  case V_NONE: return true;
  case V_BOOL: return l->i == r->i;
  case V_STRING: return strcmp(l->s, r->s) == 0;
  case V_LIST:
    if (l->n != r->n)
      return false;
    for (int i = 0; i < l->n; i++)
      if (!values_equal(env, l->items[i], r->items[i], span))
        return false;
    return true;
  default: return l == r;
  }
}

static Value *eval_binary(Env *env, const Expr *e) {
  const char *op = e->name;
  Value *l = eval(env, e->a);
  if (!strcmp(op, "&&") || !strcmp(op, "||")) {
    bool lv = value_bool(l, arena_printf(env->arena, "the left side of '%s'", op));
    if (lv == (op[0] == '|'))
      return bool_value(env, lv, e->span);
    return bool_value(env, value_bool(eval(env, e->b), arena_printf(env->arena, "the right side of '%s'", op)), e->span);
  }
  Value *r = eval(env, e->b);
  if (!strcmp(op, "=="))
    return bool_value(env, values_equal(env, l, r, e->span), e->span);
  if (!strcmp(op, "!="))
    return bool_value(env, !values_equal(env, l, r, e->span), e->span);
  if (op[0] == '<' || op[0] == '>') {
    double a = value_number(l, "a compared value"), b = value_number(r, "a compared value");
    bool res = !strcmp(op, "<") ? a < b : !strcmp(op, "<=") ? a <= b : !strcmp(op, ">") ? a > b : a >= b;
    return bool_value(env, res, e->span);
  }
  if (!strcmp(op, "+") && l->kind == V_LIST && r->kind == V_LIST) {
    if ((int64_t)l->n + r->n > MAX_LIST)
      error_at(e->span, "list is too long");
    eval_spend(env, (int64_t)l->n + r->n, e->span);
    Value *v = value_new(env->arena, V_LIST, e->span);
    v->n = l->n + r->n;
    v->items = arena_alloc(env->arena, sizeof(Value *) * (size_t)(v->n ? v->n : 1));
    memcpy(v->items, l->items, sizeof(Value *) * (size_t)l->n);
    memcpy(v->items + l->n, r->items, sizeof(Value *) * (size_t)r->n);
    return v;
  }
  return arith(env, e, l, r);
}

static int64_t list_index(Env *env, const Value *list, const Expr *idx_expr, bool slice_bound) {
  const Value *idx = eval(env, idx_expr);
  int64_t i = value_int(idx, "an index");
  int64_t n = list->n;
  if (i < 0)
    i += n;
  if (i < 0 || i > n || (!slice_bound && i == n))
    error_at(idx_expr->span, "index %lld is out of range for a list of %lld elements", (long long)idx->i,
             (long long)n);
  return i;
}

static Value *eval_index(Env *env, const Expr *e) {
  Value *list = eval(env, e->a);
  if (list->kind != V_LIST)
    error_at(e->a->span, "only a list can be indexed, found %s", value_kind_name(list->kind));
  if (e->kind == EX_INDEX)
    return list->items[list_index(env, list, e->b, false)];
  int64_t lo = e->b ? list_index(env, list, e->b, true) : 0;
  int64_t hi = e->c ? list_index(env, list, e->c, true) : list->n;
  Value *v = value_new(env->arena, V_LIST, e->span);
  v->n = hi > lo ? (int)(hi - lo) : 0;
  v->items = list->items + lo;
  return v;
}

static Value *eval_field(Env *env, const Expr *e) {
  Value *v = eval(env, e->a);
  if (v->kind == V_TENSOR) {
    Shape s = v->tensor->shape;
    if (!strcmp(e->name, "c"))
      return int_value(env, s.c, e->span);
    if (!strcmp(e->name, "h"))
      return int_value(env, s.h, e->span);
    if (!strcmp(e->name, "w"))
      return int_value(env, s.w, e->span);
    if (!strcmp(e->name, "n"))
      return int_value(env, s.n, e->span);
    error_at(e->span, "a tensor has the fields n, c, h and w, not '%s'", e->name);
  }
  if (v->kind == V_RECORD)
    for (int i = 0; i < v->nfields; i++)
      if (v->fields[i].name && !strcmp(v->fields[i].name, e->name))
        return v->fields[i].value;
  error_at(e->span, "%s has no field '%s'", value_kind_name(v->kind), e->name);
}

typedef Value *Builtin(Env *env, const Expr *e, Value **a);

// ceil, floor and int give integers; a result past the 64-bit range is an error.
static Value *to_int(Env *env, const Expr *e, double x) {
  if (fabs(x) > 9e18)
    error_at(e->span, "%s() result is too large", e->name);
  return int_value(env, (int64_t)x, e->span);
}

static Value *b_ceil(Env *env, const Expr *e, Value **a) { return to_int(env, e, ceil(value_number(a[0], "the argument"))); }
static Value *b_floor(Env *env, const Expr *e, Value **a) { return to_int(env, e, floor(value_number(a[0], "the argument"))); }
static Value *b_int(Env *env, const Expr *e, Value **a) { return to_int(env, e, trunc(value_number(a[0], "the argument"))); }

static Value *b_float(Env *env, const Expr *e, Value **a) {
  return float_value(env, value_number(a[0], "the argument of float"), e->span);
}

static Value *minmax(Env *env, const Expr *e, Value **a, bool want_max) {
  double x = value_number(a[0], "an argument"), y = value_number(a[1], "an argument");
  Value *pick = (want_max ? x >= y : x <= y) ? a[0] : a[1];
  Value *v = value_new(env->arena, pick->kind, e->span);
  *v = *pick;
  v->span = e->span;
  return v;
}

static Value *b_max(Env *env, const Expr *e, Value **a) { return minmax(env, e, a, true); }
static Value *b_min(Env *env, const Expr *e, Value **a) { return minmax(env, e, a, false); }

static Value *b_len(Env *env, const Expr *e, Value **a) {
  if (a[0]->kind != V_LIST)
    error_at(a[0]->span, "len() takes a list, found %s", value_kind_name(a[0]->kind));
  return int_value(env, a[0]->n, e->span);
}

static Value *b_sum(Env *env, const Expr *e, Value **a) {
  if (a[0]->kind != V_LIST)
    error_at(a[0]->span, "sum() takes a list, found %s", value_kind_name(a[0]->kind));
  Value *acc = int_value(env, 0, e->span);
  eval_spend(env, a[0]->n, e->span);
  Expr plus = {.kind = EX_BINARY, .span = e->span, .name = "+", .a = (Expr *)e, .b = (Expr *)e};
  for (int i = 0; i < a[0]->n; i++)
    acc = arith(env, &plus, acc, a[0]->items[i]);
  return acc;
}

// torchvision's _make_divisible: round to the nearest multiple of divisor, at least
// divisor, and never more than 10% below v.
static Value *b_make_divisible(Env *env, const Expr *e, Value **a) {
  double v = value_number(a[0], "make_divisible's value");
  int64_t d = value_int(a[1], "make_divisible's divisor");
  if (d <= 0)
    error_at(a[1]->span, "the divisor must be positive");
  if (v < 0 || v > 1e15)
    error_at(a[0]->span, "make_divisible's value must be between 0 and 1e15, found %g", v);
  int64_t r = (int64_t)(v + (double)d / 2) / d * d;
  if (r < d)
    r = d;
  if ((double)r < 0.9 * v)
    r += d;
  return int_value(env, r, e->span);
}

static const struct {
  const char *name;
  int nargs;
  Builtin *fn;
} builtins[] = {
    {"ceil", 1, b_ceil}, {"floor", 1, b_floor}, {"int", 1, b_int}, {"float", 1, b_float},
    {"max", 2, b_max},   {"min", 2, b_min},     {"len", 1, b_len}, {"sum", 1, b_sum},
    {"make_divisible", 2, b_make_divisible},
};

static Value *eval_record(Env *env, const Expr *e) {
  Value *v = value_new(env->arena, V_RECORD, e->span);
  v->s = e->name;
  v->nfields = e->nargs;
  v->fields = arena_alloc(env->arena, sizeof(Field) * (size_t)(e->nargs ? e->nargs : 1));
  for (int i = 0; i < e->nargs; i++) {
    for (int j = 0; j < i; j++)
      if (e->args[i].name && e->args[j].name && !strcmp(e->args[i].name, e->args[j].name))
        error_at(e->args[i].name_span, "argument '%s' is given twice", e->args[i].name);
    v->fields[i] = (Field){e->args[i].name, eval(env, e->args[i].value), e->args[i].name_span};
  }
  return v;
}

static Value *eval_call(Env *env, const Expr *e) {
  for (size_t i = 0; i < sizeof builtins / sizeof *builtins; i++) {
    if (strcmp(builtins[i].name, e->name) != 0)
      continue;
    if (e->nargs != builtins[i].nargs)
      error_at(e->span, "%s() takes %d argument%s, found %d", e->name, builtins[i].nargs,
               builtins[i].nargs == 1 ? "" : "s", e->nargs);
    Value *a[2];
    for (int j = 0; j < e->nargs; j++) {
      if (e->args[j].name)
        error_at(e->args[j].name_span, "%s() takes no named arguments", e->name);
      a[j] = eval(env, e->args[j].value);
    }
    return builtins[i].fn(env, e, a);
  }
  if (env->records)
    return eval_record(env, e);
  const Decl *d = module_find(env->module, e->name);
  if (d && (d->kind == DECL_BLOCK || d->kind == DECL_MODEL))
    error_at(e->span, "'%s' is a %s: use it as a statement of a block, not inside an expression", e->name,
             d->kind == DECL_BLOCK ? "block" : "model");
  if (op_lookup(e->name) != OP_COUNT)
    error_at(e->span, "'%s' is a layer: use it as a statement of a block, not inside an expression", e->name);
  Nearest n = {.name = e->name};
  for (size_t i = 0; i < sizeof builtins / sizeof *builtins; i++)
    nearest_offer(&n, builtins[i].name);
  error_at(e->span, "unknown function '%s'%s", e->name, nearest_hint(env->arena, &n));
}

static Value *eval_inner(Env *env, const Expr *e) {
  switch (e->kind) {
  case EX_INT: return int_value(env, e->ival, e->span);
  case EX_FLOAT: return float_value(env, e->fval, e->span);
  case EX_BOOL: return bool_value(env, e->ival != 0, e->span);
  case EX_NONE: return value_new(env->arena, V_NONE, e->span);
  case EX_STRING: {
    Value *v = value_new(env->arena, V_STRING, e->span);
    v->s = e->name;
    return v;
  }
  case EX_NAME: return eval_name(env, e);
  case EX_REF: return eval_ref(env, e);
  case EX_LIST: return eval_list(env, e);
  case EX_COMPREHENSION: return eval_comprehension(env, e);
  case EX_UNARY: {
    Value *a = eval(env, e->a);
    if (e->name[0] == '!')
      return bool_value(env, !value_bool(a, "the operand of '!'"), e->span);
    if (a->kind == V_INT) {
      if (a->i == INT64_MIN)
        error_at(e->span, "integer overflow in '-'");
      return int_value(env, -a->i, e->span);
    }
    return float_value(env, -value_number(a, "the operand of '-'"), e->span);
  }
  case EX_BINARY: return eval_binary(env, e);
  case EX_TERNARY: return value_bool(eval(env, e->a), "the condition of '?'") ? eval(env, e->b) : eval(env, e->c);
  case EX_INDEX:
  case EX_SLICE: return eval_index(env, e);
  case EX_FIELD: return eval_field(env, e);
  case EX_CALL: return eval_call(env, e);
  }
  error_at(e->span, "cannot evaluate this expression");
}

void eval_spend(Env *env, int64_t n, Span span) {
  env->budget->steps += n;
  if (env->budget->steps > MAX_EVAL_STEPS)
    error_at(span, "this file takes too much work to evaluate: more than %d steps (expressions, list elements, "
             "repeat iterations) by here", MAX_EVAL_STEPS);
}

Value *eval(Env *env, const Expr *e) {
  if (++env->budget->depth > 4 * MAX_NESTING)
    error_at(e->span, "expression is nested too deeply, or a constant depends on itself");
  eval_spend(env, 1, e->span);
  Value *v = eval_inner(env, e);
  --env->budget->depth;
  return v;
}

static void check_number(const char *what, const char *name, const ArgSpec *spec, const Value *v) {
  double x = spec->type == ARG_INT ? (double)value_int(v, name) : value_number(v, name);
  bool bounded = spec->max > spec->min;
  if (x >= spec->min && (!bounded || x <= spec->max))
    return;
  const char *fmt = spec->type == ARG_INT ? "%.0f" : "%g";
  char lo[32], hi[32], found[32];
  snprintf(lo, sizeof lo, fmt, spec->min);
  snprintf(hi, sizeof hi, fmt, spec->max);
  snprintf(found, sizeof found, fmt, x);
  if (bounded)
    error_at(v->span, "argument '%s' of %s must be between %s and %s, found %s", name, what, lo, hi, found);
  error_at(v->span, "argument '%s' of %s must be at least %s, found %s", name, what, lo, found);
}

static void check_arg(Arena *a, const char *what, const ArgSpec *spec, const Value *v) {
  const char *name = spec->name;
  switch (spec->type) {
  case ARG_BOOL: value_bool(v, name); break;
  case ARG_STRING:
    if (v->kind != V_STRING)
      error_at(v->span, "%s of %s must be a string, found %s", name, what, value_kind_name(v->kind));
    break;
  case ARG_STRINGS:
    if (v->kind != V_LIST)
      error_at(v->span, "%s of %s must be a list of strings, found %s", name, what, value_str(a, v));
    for (int i = 0; i < v->n; i++)
      if (v->items[i]->kind != V_STRING)
        error_at(v->items[i]->span, "%s of %s lists names in quotes, found %s", name, what, value_str(a, v->items[i]));
    break;
  case ARG_NUMBERS:
    if (v->kind != V_LIST)
      error_at(v->span, "%s of %s must be a list of numbers, found %s", name, what, value_str(a, v));
    for (int i = 0; i < v->n; i++)
      check_number(what, name, &(ArgSpec){name, ARG_FLOAT, false, spec->min, spec->max}, v->items[i]);
    break;
  case ARG_INT_OR_STRING:
    if (v->kind != V_STRING)
      check_number(what, name, &(ArgSpec){name, ARG_INT, false, spec->min, spec->max}, v);
    break;
  case ARG_SIZE:
    if (v->kind != V_LIST) {
      check_number(what, name, &(ArgSpec){name, ARG_INT, false, spec->min, spec->max}, v);
      break;
    }
    if (v->n != 2)
      error_at(v->span, "%s of %s takes one integer or two, [height, width], found %d numbers", name, what, v->n);
    for (int i = 0; i < v->n; i++)
      check_number(what, name, &(ArgSpec){name, ARG_INT, false, spec->min, spec->max}, v->items[i]);
    break;
  default: check_number(what, name, spec, v); break;
  }
}

void args_bind(Arena *a, const char *what, const ArgSpec *spec, int nspec, const Field *args, int nargs, Span span,
               BoundArgs *out) {
  memset(out, 0, sizeof *out);
  int next = 0;
  for (int i = 0; i < nargs; i++) {
    int slot = -1;
    if (args[i].name) {
      for (int j = 0; j < nspec; j++)
        if (!strcmp(spec[j].name, args[i].name))
          slot = j;
      if (slot < 0) {
        const char *known = "";
        Nearest n = {.name = args[i].name};
        for (int j = 0; j < nspec; j++) {
          known = arena_printf(a, "%s%s%s", known, j ? ", " : "", spec[j].name);
          nearest_offer(&n, spec[j].name);
        }
        error_at(args[i].span, "%s has no argument '%s'%s", what, args[i].name,
                 nearest_hint_and(a, &n, arena_printf(a, "it takes: %s", nspec ? known : "no arguments")));
      }
    } else {
      if (next >= nspec)
        error_at(args[i].span, "%s takes %d argument%s, found more", what, nspec, nspec == 1 ? "" : "s");
      slot = next++;
    }
    if (out->v[slot])
      error_at(args[i].span, "argument '%s' of %s is given twice", spec[slot].name, what);
    out->v[slot] = args[i].value;
  }
  for (int j = 0; j < nspec; j++) {
    if (out->v[j])
      check_arg(a, what, &spec[j], out->v[j]);
    else if (spec[j].required)
      error_at(span, "%s needs the argument '%s'", what, spec[j].name);
  }
}

int64_t arg_int(const BoundArgs *b, int i, int64_t dflt) { return b->v[i] ? b->v[i]->i : dflt; }
bool arg_bool(const BoundArgs *b, int i, bool dflt) { return b->v[i] ? b->v[i]->i != 0 : dflt; }
double arg_float(const BoundArgs *b, int i, double dflt) {
  return b->v[i] ? (b->v[i]->kind == V_INT ? (double)b->v[i]->i : b->v[i]->f) : dflt;
}
