// kir.c: building and checking kernels. Builders fold constant integer arithmetic, so
// index expressions of fixed shapes come out as plain numbers in the generated code.
#include "kir.h"

#include <string.h>

Kernel *kir_kernel(Arena *a, const char *name, const char *comment) {
  Kernel *k = arena_alloc(a, sizeof *k);
  k->arena = a;
  k->name = name;
  k->comment = comment;
  k->body = kir_block(k);
  return k;
}

int kir_buf(Kernel *k, const char *name, KType type, int64_t elems) {
  KBuf b = {.name = name, .type = type, .elems = elems};
  ARENA_PUSH(k->arena, k->bufs, k->nbufs, k->capbufs, b);
  return k->nbufs - 1;
}

int kir_var(Kernel *k, const char *name, KType type) {
  KVar v = {.name = name, .type = type};
  ARENA_PUSH(k->arena, k->vars, k->nvars, k->capvars, v);
  return k->nvars - 1;
}

static KExpr *expr_new(Kernel *k, KExprKind kind, KType type) {
  KExpr *e = arena_alloc(k->arena, sizeof *e);
  e->kind = kind;
  e->type = type;
  return e;
}

KExpr *kir_int(Kernel *k, int64_t v) {
  KExpr *e = expr_new(k, KX_CONST, KT_I64);
  e->i = v;
  return e;
}

KExpr *kir_float(Kernel *k, double v) {
  KExpr *e = expr_new(k, KX_CONST, KT_F32);
  e->f = v;
  return e;
}

KExpr *kir_ref(Kernel *k, int var) {
  KExpr *e = expr_new(k, KX_VAR, k->vars[var].type);
  e->var = var;
  return e;
}

KExpr *kir_load(Kernel *k, int buf, KExpr *index) {
  KExpr *e = expr_new(k, KX_LOAD, k->bufs[buf].type);
  e->buf = buf;
  e->a = index;
  return e;
}

KExpr *kir_unary(Kernel *k, KUnary op, KExpr *a) {
  KExpr *e = expr_new(k, KX_UNARY, op == KU_NOT ? KT_BOOL : a->type);
  e->op = op;
  e->a = a;
  return e;
}

static bool is_comparison(KBinary op) { return op >= KB_LT && op <= KB_NE; }

static bool is_int_const(const KExpr *e) { return e->kind == KX_CONST && e->type == KT_I64; }

KExpr *kir_binary(Kernel *k, KBinary op, KExpr *a, KExpr *b) {
  if (is_int_const(a) && is_int_const(b)) {
    switch (op) {
    case KB_ADD: return kir_int(k, a->i + b->i);
    case KB_SUB: return kir_int(k, a->i - b->i);
    case KB_MUL: return kir_int(k, a->i * b->i);
    default: break;
    }
  }
  KType type = is_comparison(op) || op == KB_AND || op == KB_OR ? KT_BOOL : a->type;
  KExpr *e = expr_new(k, KX_BINARY, type);
  e->op = op;
  e->a = a;
  e->b = b;
  return e;
}

KExpr *kir_add(Kernel *k, KExpr *a, KExpr *b) {
  if (is_int_const(a) && a->i == 0)
    return b;
  if (is_int_const(b) && b->i == 0)
    return a;
  return kir_binary(k, KB_ADD, a, b);
}

KExpr *kir_mul(Kernel *k, KExpr *a, KExpr *b) {
  if (is_int_const(a) && a->i == 1)
    return b;
  if (is_int_const(b) && b->i == 1)
    return a;
  if ((is_int_const(a) && a->i == 0) || (is_int_const(b) && b->i == 0))
    return kir_int(k, 0);
  return kir_binary(k, KB_MUL, a, b);
}

KExpr *kir_sub(Kernel *k, KExpr *a, KExpr *b) {
  if (is_int_const(b) && b->i == 0)
    return a;
  return kir_binary(k, KB_SUB, a, b);
}

KExpr *kir_div(Kernel *k, KExpr *a, int64_t b) { return b == 1 ? a : kir_binary(k, KB_DIV, a, kir_int(k, b)); }
KExpr *kir_mod(Kernel *k, KExpr *a, int64_t b) { return kir_binary(k, KB_MOD, a, kir_int(k, b)); }
KExpr *kir_fma(Kernel *k, KExpr *acc, KExpr *a, KExpr *b) { return kir_binary(k, KB_ADD, acc, kir_binary(k, KB_MUL, a, b)); }

KExpr *kir_select(Kernel *k, KExpr *cond, KExpr *a, KExpr *b) {
  KExpr *e = expr_new(k, KX_SELECT, a->type);
  e->a = cond;
  e->b = a;
  e->c = b;
  return e;
}

KExpr *kir_cast(Kernel *k, KType to, KExpr *a) {
  if (a->type == to)
    return a;
  if (is_int_const(a) && to == KT_F32)
    return kir_float(k, (double)a->i);
  KExpr *e = expr_new(k, KX_CAST, to);
  e->a = a;
  return e;
}

static KStmt *stmt_new(Kernel *k, KStmtKind kind) {
  KStmt *s = arena_alloc(k->arena, sizeof *s);
  s->kind = kind;
  return s;
}

static void append(Kernel *k, KStmt *into, KStmt *s) { ARENA_PUSH(k->arena, into->body, into->nbody, into->capbody, s); }

KStmt *kir_block(Kernel *k) { return stmt_new(k, KS_BLOCK); }

KStmt *kir_for(Kernel *k, KStmt *into, int var, KExpr *lo, KExpr *hi, bool parallel) {
  KStmt *s = stmt_new(k, KS_FOR);
  s->var = var;
  s->lo = lo;
  s->hi = hi;
  s->parallel = parallel;
  append(k, into, s);
  return s;
}

void kir_assign(Kernel *k, KStmt *into, int var, KExpr *value) {
  KStmt *s = stmt_new(k, KS_ASSIGN);
  s->var = var;
  s->value = value;
  append(k, into, s);
}

void kir_store(Kernel *k, KStmt *into, int buf, KExpr *index, KExpr *value) {
  KStmt *s = stmt_new(k, KS_STORE);
  s->buf = buf;
  s->index = index;
  s->value = value;
  k->bufs[buf].written = true;
  append(k, into, s);
}

KStmt *kir_if(Kernel *k, KStmt *into, KExpr *cond, KStmt **orelse) {
  KStmt *s = stmt_new(k, KS_IF);
  s->value = cond;
  append(k, into, s);
  if (orelse)
    *orelse = s->orelse = kir_block(k);
  return s;
}

static _Noreturn void bug(const Kernel *k, const char *what) { fatal("internal error in kernel %s: %s", k->name, what); }

static void verify_expr(const Kernel *k, const KExpr *e) {
  switch (e->kind) {
  case KX_CONST: break;
  case KX_VAR:
    if (e->var < 0 || e->var >= k->nvars)
      bug(k, "variable out of range");
    break;
  case KX_LOAD:
    if (e->buf < 0 || e->buf >= k->nbufs || e->a->type != KT_I64)
      bug(k, "bad load");
    verify_expr(k, e->a);
    break;
  case KX_UNARY: verify_expr(k, e->a); break;
  case KX_BINARY:
    verify_expr(k, e->a);
    verify_expr(k, e->b);
    if (e->a->type != e->b->type)
      bug(k, "operands of different types");
    break;
  case KX_SELECT:
    verify_expr(k, e->a);
    verify_expr(k, e->b);
    verify_expr(k, e->c);
    if (e->a->type != KT_BOOL || e->b->type != e->c->type)
      bug(k, "bad select");
    break;
  case KX_CAST: verify_expr(k, e->a); break;
  }
}

static void verify_stmt(const Kernel *k, const KStmt *s);

static void verify_block(const Kernel *k, const KStmt *block) {
  for (int i = 0; i < block->nbody; i++)
    verify_stmt(k, block->body[i]);
}

static void verify_stmt(const Kernel *k, const KStmt *s) {
  switch (s->kind) {
  case KS_FOR:
    verify_expr(k, s->lo);
    verify_expr(k, s->hi);
    if (s->lo->type != KT_I64 || s->hi->type != KT_I64 || k->vars[s->var].type != KT_I64)
      bug(k, "loop bounds must be integers");
    verify_block(k, s);
    break;
  case KS_ASSIGN:
    verify_expr(k, s->value);
    if (k->vars[s->var].type != s->value->type)
      bug(k, "assignment of another type");
    break;
  case KS_STORE:
    verify_expr(k, s->index);
    verify_expr(k, s->value);
    if (s->index->type != KT_I64 || s->value->type != k->bufs[s->buf].type)
      bug(k, "bad store");
    break;
  case KS_IF:
    verify_expr(k, s->value);
    if (s->value->type != KT_BOOL)
      bug(k, "condition is not a boolean");
    verify_block(k, s);
    if (s->orelse)
      verify_block(k, s->orelse);
    break;
  case KS_BLOCK: verify_block(k, s); break;
  }
}

void kir_verify(const Kernel *k) {
  if (k->body->nbody == 0 || k->body->body[0]->kind != KS_FOR || !k->body->body[0]->parallel)
    bug(k, "a kernel starts with its parallel loop");
  verify_block(k, k->body);
}

int64_t kir_parallel_extent(const Kernel *k) {
  const KStmt *loop = k->body->body[0];
  return loop->hi->i - loop->lo->i;
}
