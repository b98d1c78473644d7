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

Kernel *kir_block_kernel(Arena *a, const char *name, const char *comment, int64_t grid, int block) {
  Kernel *k = kir_kernel(a, name, comment);
  k->kind = KK_BLOCKS;
  k->launch = (KLaunch){.grid = grid, .block = block};
  return k;
}

static int add_buf(Kernel *k, const char *name, KType type, int64_t elems, KSpace space) {
  KBuf b = {.name = name, .type = type, .elems = elems, .space = space};
  ARENA_PUSH(k->arena, k->bufs, k->nbufs, k->capbufs, b);
  return k->nbufs - 1;
}

int kir_buf(Kernel *k, const char *name, KType type, int64_t elems) { return add_buf(k, name, type, elems, KSP_GLOBAL); }

int kir_shared(Kernel *k, const char *name, KType type, int64_t elems) {
  return add_buf(k, name, type, elems, KSP_SHARED);
}

int kir_local(Kernel *k, const char *name, KType type, int64_t elems) { return add_buf(k, name, type, elems, KSP_LOCAL); }

// Buffers print as b0, b1, ...: a variable may not look like one.
static bool buffer_like(const char *name) {
  return name[0] == 'b' && name[1] && strspn(name + 1, "0123456789") == strlen(name + 1);
}

// Names are made unique (acc, acc2, ...): the C printers declare each variable once.
static const char *unique_name(const Kernel *k, const char *name) {
  const char *candidate = name;
  for (int n = 2;; n++) {
    bool taken = buffer_like(candidate);
    for (int i = 0; i < k->nvars && !taken; i++)
      taken = !strcmp(k->vars[i].name, candidate);
    if (!taken)
      return candidate;
    candidate = arena_printf(k->arena, "%s%d", name, n);
  }
}

int kir_array(Kernel *k, const char *name, KType type, int count) {
  KVar v = {.name = unique_name(k, name), .type = type, .count = count};
  ARENA_PUSH(k->arena, k->vars, k->nvars, k->capvars, v);
  return k->nvars - 1;
}

int kir_var(Kernel *k, const char *name, KType type) { return kir_array(k, name, type, 1); }

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

KExpr *kir_elem(Kernel *k, int var, int elem) {
  KExpr *e = expr_new(k, KX_VAR, k->vars[var].type);
  e->var = var;
  e->elem = elem;
  return e;
}

KExpr *kir_ref(Kernel *k, int var) { return kir_elem(k, var, 0); }

KExpr *kir_thread(Kernel *k) { return expr_new(k, KX_THREAD, KT_I64); }
KExpr *kir_block_index(Kernel *k) { return expr_new(k, KX_BLOCK, KT_I64); }

KExpr *kir_load(Kernel *k, int buf, KExpr *index) {
  KType t = k->bufs[buf].type;
  KExpr *e = expr_new(k, KX_LOAD, t == KT_BF16 ? KT_F32 : t == KT_U8 ? KT_I64 : t);
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
KExpr *kir_mod(Kernel *k, KExpr *a, int64_t b) { return b == 1 ? kir_int(k, 0) : kir_binary(k, KB_MOD, a, kir_int(k, b)); }
KExpr *kir_fma(Kernel *k, KExpr *acc, KExpr *a, KExpr *b) { return kir_binary(k, KB_ADD, acc, kir_binary(k, KB_MUL, a, b)); }

KExpr *kir_lt(Kernel *k, KExpr *a, KExpr *b) { return kir_binary(k, KB_LT, a, b); }
KExpr *kir_and(Kernel *k, KExpr *a, KExpr *b) { return kir_binary(k, KB_AND, a, b); }

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

void kir_assign_elem(Kernel *k, KStmt *into, int var, int elem, KExpr *value) {
  KStmt *s = stmt_new(k, KS_ASSIGN);
  s->var = var;
  s->elem = elem;
  s->value = value;
  append(k, into, s);
}

void kir_assign(Kernel *k, KStmt *into, int var, KExpr *value) { kir_assign_elem(k, into, var, 0, value); }

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

void kir_barrier(Kernel *k, KStmt *into) { append(k, into, stmt_new(k, KS_BARRIER)); }

void kir_shuffle(Kernel *k, KStmt *into, KShuffle how, int var, int src, int64_t operand) {
  KStmt *s = stmt_new(k, KS_SHUFFLE);
  s->shuffle = how;
  s->var = var;
  s->src = src;
  s->operand = operand;
  append(k, into, s);
}

void kir_ldmatrix(Kernel *k, KStmt *into, int var, int tiles, bool trans, int buf, KExpr *row) {
  KStmt *s = stmt_new(k, KS_LDMATRIX);
  s->var = var;
  s->operand = tiles;
  s->trans = trans;
  s->buf = buf;
  s->index = row;
  append(k, into, s);
}

void kir_mma(Kernel *k, KStmt *into, int d, int a, int b, int c) {
  KStmt *s = stmt_new(k, KS_MMA);
  s->var = d;
  s->a = a;
  s->b = b;
  s->c = c;
  append(k, into, s);
}

void kir_cp_async(Kernel *k, KStmt *into, int buf, KExpr *index, int src_buf, KExpr *src_index, KExpr *bytes) {
  KStmt *s = stmt_new(k, KS_CP_ASYNC);
  s->buf = buf;
  s->index = index;
  s->src_buf = src_buf;
  s->src_index = src_index;
  s->value = bytes;
  k->bufs[buf].written = true;
  append(k, into, s);
}

void kir_cp_commit(Kernel *k, KStmt *into) { append(k, into, stmt_new(k, KS_CP_COMMIT)); }

void kir_cp_wait(Kernel *k, KStmt *into, int64_t groups) {
  KStmt *s = stmt_new(k, KS_CP_WAIT);
  s->operand = groups;
  append(k, into, s);
}

void kir_load4(Kernel *k, KStmt *into, int var, int buf, KExpr *index) {
  KStmt *s = stmt_new(k, KS_LOAD4);
  s->var = var;
  s->buf = buf;
  s->index = index;
  append(k, into, s);
}

void kir_store4(Kernel *k, KStmt *into, int buf, KExpr *index, int var) {
  KStmt *s = stmt_new(k, KS_STORE4);
  s->buf = buf;
  s->index = index;
  s->src = var;
  k->bufs[buf].written = true;
  append(k, into, s);
}

static void tile_stmt(Kernel *k, KStmt *into, KStmtKind kind, const KTile *t) {
  KStmt *s = stmt_new(k, kind);
  s->buf = t->c;
  s->index = t->c_index;
  s->operand = t->ldc;
  s->a_buf = t->a;
  s->a_index = t->a_index;
  s->a_step = t->a_step;
  s->a_row = t->a_row;
  s->src_buf = t->b;
  s->src_index = t->b_index;
  s->ldb = t->ldb;
  s->value = t->depth;
  s->rows = t->rows;
  s->cols = t->cols;
  k->bufs[t->c].written = true;
  append(k, into, s);
}

void kir_tile(Kernel *k, KStmt *into, const KTile *t) { tile_stmt(k, into, KS_TILE, t); }

void kir_transpose(Kernel *k, KStmt *into, int dst, KExpr *dst_index, int64_t dst_pitch, int src, KExpr *src_index,
                   int64_t src_pitch, int n) {
  KStmt *s = stmt_new(k, KS_TRANSPOSE);
  s->buf = dst;
  s->index = dst_index;
  s->operand = dst_pitch;
  s->src_buf = src;
  s->src_index = src_index;
  s->ldb = src_pitch;
  s->rows = s->cols = n;
  k->bufs[dst].written = true;
  append(k, into, s);
}

// The same fields, `lanes` in a_step.
void kir_dot(Kernel *k, KStmt *into, const KDot *t) {
  KTile as = {.rows = t->rows, .cols = t->cols, .c = t->c, .a = t->a, .b = t->b, .c_index = t->c_index,
              .a_index = t->a_index, .b_index = t->b_index, .depth = t->depth, .ldc = t->ldc, .a_step = t->lanes,
              .a_row = t->a_row, .ldb = t->ldb};
  tile_stmt(k, into, KS_DOT, &as);
}

static _Noreturn void bug(const Kernel *k, const char *what) { fatal("internal error in kernel %s: %s", k->name, what); }

bool kir_synchronises(const KStmt *s) {
  switch (s->kind) {
  case KS_BARRIER:
  case KS_SHUFFLE:
  case KS_LDMATRIX:
  case KS_MMA: return true;
  case KS_FOR:
  case KS_IF:
  case KS_BLOCK:
    for (int i = 0; i < s->nbody; i++)
      if (kir_synchronises(s->body[i]))
        return true;
    return s->orelse && kir_synchronises(s->orelse);
  default: return false;
  }
}

typedef struct Verifier {
  const Kernel *k;
  bool *uniform;        // per variable: the loop variable of a loop that synchronises
} Verifier;

static bool is_blocks(const Verifier *v) { return v->k->kind == KK_BLOCKS; }

static const KVar *var_of(const Verifier *v, int var, int elem) {
  if (var < 0 || var >= v->k->nvars || elem < 0 || elem >= v->k->vars[var].count)
    bug(v->k, "variable out of range");
  return &v->k->vars[var];
}

static const KBuf *buf_of(const Verifier *v, int buf) {
  if (buf < 0 || buf >= v->k->nbufs)
    bug(v->k, "buffer out of range");
  return &v->k->bufs[buf];
}

static void verify_expr(const Verifier *v, const KExpr *e) {
  const Kernel *k = v->k;
  switch (e->kind) {
  case KX_CONST: break;
  case KX_VAR:
    if (var_of(v, e->var, e->elem)->type == KT_U32)
      bug(k, "a fragment register is read only by mma");
    break;
  case KX_LOAD:
    buf_of(v, e->buf);
    if (e->a->type != KT_I64)
      bug(k, "bad load");
    verify_expr(v, e->a);
    break;
  case KX_UNARY: verify_expr(v, e->a); break;
  case KX_BINARY:
    verify_expr(v, e->a);
    verify_expr(v, e->b);
    if (e->a->type != e->b->type)
      bug(k, "operands of different types");
    if (e->op == KB_MUL_RN && e->a->type != KT_F32)
      bug(k, "a rounded product of integers");
    break;
  case KX_SELECT:
    verify_expr(v, e->a);
    verify_expr(v, e->b);
    verify_expr(v, e->c);
    if (e->a->type != KT_BOOL || e->b->type != e->c->type)
      bug(k, "bad select");
    break;
  case KX_CAST: verify_expr(v, e->a); break;
  case KX_THREAD:
  case KX_BLOCK:
    if (!is_blocks(v))
      bug(k, "a loop kernel has no thread or block index");
    break;
  }
}

// The same value in every thread of a block: built from constants, the block index and the
// variables of loops that synchronise (whose bounds are uniform in turn).
static bool uniform_expr(const Verifier *v, const KExpr *e) {
  switch (e->kind) {
  case KX_CONST:
  case KX_BLOCK: return true;
  case KX_VAR: return v->uniform[e->var];
  case KX_THREAD:
  case KX_LOAD: return false;
  default:
    return uniform_expr(v, e->a) && (!e->b || uniform_expr(v, e->b)) && (!e->c || uniform_expr(v, e->c));
  }
}

static void verify_stmt(const Verifier *v, const KStmt *s);

static void verify_block(const Verifier *v, const KStmt *block) {
  for (int i = 0; i < block->nbody; i++)
    verify_stmt(v, block->body[i]);
}

static void expect(const Verifier *v, bool ok, const char *what) {
  if (!ok)
    bug(v->k, what);
}

static void verify_fragments(const Verifier *v, const KStmt *s) {
  const KVar *d = var_of(v, s->var, 0), *a = var_of(v, s->a, 0), *b = var_of(v, s->b, 0), *c = var_of(v, s->c, 0);
  expect(v, d->type == KT_F32 && d->count == 4 && c->type == KT_F32 && c->count == 4, "mma accumulates 4 floats a lane");
  expect(v, a->type == KT_U32 && a->count == 4 && b->type == KT_U32 && b->count == 2, "mma takes 4 + 2 bf16x2 registers");
}

static void verify_gpu_stmt(const Verifier *v, const KStmt *s) {
  expect(v, is_blocks(v), "a GPU construct in a loop kernel");
  switch (s->kind) {
  case KS_SHUFFLE: {
    const KVar *d = var_of(v, s->var, 0), *src = var_of(v, s->src, 0);
    expect(v, d->type == src->type && (d->type == KT_F32 || d->type == KT_I64), "shuffle of another type");
    expect(v, s->operand >= 0 && s->operand < KIR_WARP, "shuffle lane out of range");
    break;
  }
  case KS_LDMATRIX: {
    const KVar *d = var_of(v, s->var, 0);
    const KBuf *b = buf_of(v, s->buf);
    expect(v, (s->operand == 2 || s->operand == 4) && d->type == KT_U32 && d->count == s->operand,
           "ldmatrix loads 2 or 4 tiles into as many registers");
    expect(v, b->space == KSP_SHARED && b->type == KT_BF16, "ldmatrix reads a bf16 shared buffer");
    verify_expr(v, s->index);
    break;
  }
  case KS_MMA: verify_fragments(v, s); break;
  case KS_CP_ASYNC: {
    const KBuf *dst = buf_of(v, s->buf), *src = buf_of(v, s->src_buf);
    expect(v, dst->space == KSP_SHARED && src->space == KSP_GLOBAL && dst->type == src->type,
           "cp.async copies global memory into shared memory of its type");
    verify_expr(v, s->index);
    verify_expr(v, s->src_index);
    verify_expr(v, s->value);
    expect(v, s->index->type == KT_I64 && s->src_index->type == KT_I64 && s->value->type == KT_I64, "bad cp.async");
    break;
  }
  case KS_LOAD4:
  case KS_STORE4: {
    const KVar *r = var_of(v, s->kind == KS_LOAD4 ? s->var : s->src, 3);
    const KBuf *b = buf_of(v, s->buf);
    expect(v, r->count == 4 && r->type == KT_F32 && (b->type == KT_F32 || b->type == KT_BF16),
           "a 4-element access moves 4 floats (16 bytes) or 4 bf16 values (8 bytes) into or out of floats");
    verify_expr(v, s->index);
    break;
  }
  default: break;
  }
}

static void verify_tile(const Verifier *v, const KStmt *s) {
  expect(v, !is_blocks(v), "a register tile in a block kernel");
  const KBuf *c = buf_of(v, s->buf), *a = buf_of(v, s->a_buf), *b = buf_of(v, s->src_buf);
  expect(v, c->type == KT_F32 && a->type == KT_F32 && b->type == KT_F32, "a register tile multiplies floats");
  expect(v, s->rows >= 1 && s->rows <= 16 && s->cols >= 8 && s->cols <= 64 && s->cols % 8 == 0 && s->operand >= s->cols &&
             s->ldb >= 0,
         "a register tile is at most 16 rows of 8 to 64 columns");
  verify_expr(v, s->index);
  verify_expr(v, s->a_index);
  verify_expr(v, s->src_index);
  verify_expr(v, s->value);
  expect(v, s->index->type == KT_I64 && s->a_index->type == KT_I64 && s->src_index->type == KT_I64 &&
            s->value->type == KT_I64, "a register tile's indexes and depth are integers");
}

static void verify_dot(const Verifier *v, const KStmt *s) {
  expect(v, !is_blocks(v), "dot products in a block kernel");
  const KBuf *c = buf_of(v, s->buf), *a = buf_of(v, s->a_buf), *b = buf_of(v, s->src_buf);
  expect(v, c->type == KT_F32 && a->type == KT_F32 && b->type == KT_F32, "dot products multiply floats");
  expect(v, s->rows >= 1 && s->cols >= 1 && s->rows * s->cols <= 24 && (s->a_step == 8 || s->a_step == 16) &&
            s->operand >= s->cols, "a tile of dot products is at most 24 sums of 8 or 16 lanes");
  verify_expr(v, s->index);
  verify_expr(v, s->a_index);
  verify_expr(v, s->src_index);
  verify_expr(v, s->value);
  expect(v, s->index->type == KT_I64 && s->a_index->type == KT_I64 && s->src_index->type == KT_I64 &&
            s->value->type == KT_I64, "dot products' indexes and depth are integers");
}

static void verify_transpose(const Verifier *v, const KStmt *s) {
  expect(v, !is_blocks(v), "a transpose in a block kernel");
  expect(v, buf_of(v, s->buf)->type == KT_F32 && buf_of(v, s->src_buf)->type == KT_F32, "a transpose moves floats");
  expect(v, (s->rows == 8 || s->rows == 16) && s->operand >= s->rows && s->ldb >= s->rows,
         "a transpose is of 8 x 8 or 16 x 16 floats, rows apart");
  verify_expr(v, s->index);
  verify_expr(v, s->src_index);
  expect(v, s->index->type == KT_I64 && s->src_index->type == KT_I64, "a transpose's indexes are integers");
}

static void verify_stmt(const Verifier *v, const KStmt *s) {
  const Kernel *k = v->k;
  bool sync = is_blocks(v) && kir_synchronises(s);
  switch (s->kind) {
  case KS_FOR:
    verify_expr(v, s->lo);
    verify_expr(v, s->hi);
    if (s->lo->type != KT_I64 || s->hi->type != KT_I64 || var_of(v, s->var, 0)->type != KT_I64)
      bug(k, "loop bounds must be integers");
    if (sync) {   // every thread runs it alike, so the CPU can run it once for the block
      expect(v, uniform_expr(v, s->lo) && uniform_expr(v, s->hi), "a loop that synchronises has uniform bounds");
      v->uniform[s->var] = true;
    }
    verify_block(v, s);
    break;
  case KS_ASSIGN:
    verify_expr(v, s->value);
    if (var_of(v, s->var, s->elem)->type != s->value->type)
      bug(k, "assignment of another type");
    expect(v, !v->uniform[s->var], "assignment to the variable of a loop that synchronises");
    break;
  case KS_STORE: {
    const KBuf *b = buf_of(v, s->buf);
    verify_expr(v, s->index);
    verify_expr(v, s->value);
    KType stored = b->type == KT_BF16 ? KT_F32 : b->type == KT_U8 ? KT_I64 : b->type;
    if (s->index->type != KT_I64 || s->value->type != stored)
      bug(k, "bad store");
    break;
  }
  case KS_IF:
    verify_expr(v, s->value);
    if (s->value->type != KT_BOOL)
      bug(k, "condition is not a boolean");
    expect(v, !sync || uniform_expr(v, s->value), "a branch that synchronises has a uniform condition");
    verify_block(v, s);
    if (s->orelse)
      verify_block(v, s->orelse);
    break;
  case KS_BLOCK: verify_block(v, s); break;
  case KS_TILE: verify_tile(v, s); break;
  case KS_DOT: verify_dot(v, s); break;
  case KS_TRANSPOSE: verify_transpose(v, s); break;
  case KS_BARRIER:
  case KS_CP_COMMIT:
  case KS_CP_WAIT: expect(v, is_blocks(v), "a GPU construct in a loop kernel"); break;
  default: verify_gpu_stmt(v, s); break;
  }
}

static void verify_layout(const Kernel *k) {
  int64_t shared = 0;
  for (int i = 0; i < k->nbufs; i++) {
    const KBuf *b = &k->bufs[i];
    if (b->space == KSP_SHARED) {
      if (k->kind != KK_BLOCKS)
        bug(k, "a loop kernel has no shared memory");
      shared += b->elems * (b->type == KT_BF16 ? 2 : b->type == KT_I64 ? 8 : 4);
    } else if (b->space == KSP_LOCAL && k->kind != KK_LOOP) {
      bug(k, "a block kernel's threads have no local buffers");
    } else if (b->space == KSP_GLOBAL && i > 0 && k->bufs[i - 1].space != KSP_GLOBAL) {
      bug(k, "global buffers (the parameters) come before the others");
    }
  }
  if (shared > 48 * 1024)
    bug(k, "more than 48 KiB of static shared memory");
  if (k->kind == KK_BLOCKS) {
    const KLaunch *l = &k->launch;
    if (l->block < KIR_WARP || l->block > 1024 || l->block % KIR_WARP || l->grid < 1 || l->grid > INT32_MAX || l->shared < 0)
      bug(k, "a block kernel runs whole warps, at most 1024 threads a block");
  } else if (k->body->nbody != 1 || k->body->body[0]->kind != KS_FOR || !k->body->body[0]->parallel) {
    bug(k, "a loop kernel is its parallel loop");
  }
}

void kir_verify(const Kernel *k) {
  verify_layout(k);
  Verifier v = {k, arena_alloc(k->arena, (size_t)k->nvars + 1)};
  verify_block(&v, k->body);
}

void kir_finish(Kernel *k) {
  if (k->kind == KK_LOOP && k->body->nbody > 0 && k->body->body[0]->kind == KS_FOR) {
    int64_t extent = kir_parallel_extent(k);
    k->launch = (KLaunch){.grid = (extent + KIR_LOOP_BLOCK - 1) / KIR_LOOP_BLOCK, .block = KIR_LOOP_BLOCK};
  }
  kir_verify(k);
}

int64_t kir_parallel_extent(const Kernel *k) {
  if (k->kind == KK_BLOCKS)
    return k->launch.grid;
  const KStmt *loop = k->body->body[0];
  return loop->hi->i - loop->lo->i;
}

int kir_nparams(const Kernel *k) {
  int n = 0;
  while (n < k->nbufs && k->bufs[n].space == KSP_GLOBAL)
    n++;
  return n;
}
