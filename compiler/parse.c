// parse.c: tokens to the AST. A recursive-descent parser; each function is named after
// the grammar rule written above it (docs/language.md has the whole grammar).
#include "tlc.h"

#include <string.h>

typedef struct Parser {
  Arena *arena;
  Token *tok;           // the current token
  int depth;            // nesting, bounded by MAX_NESTING
} Parser;

static Expr *expr(Parser *p);
static Body body(Parser *p);

static bool at(const Parser *p, const char *text) {
  return (p->tok->kind == TK_PUNCT || p->tok->kind == TK_KEYWORD) && strcmp(p->tok->text, text) == 0;
}

static bool consume(Parser *p, const char *text) {
  if (!at(p, text))
    return false;
  p->tok++;
  return true;
}

static _Noreturn void expected(Parser *p, const char *what) {
  error_at(p->tok->span, "expected %s, found %s", what, token_describe(p->arena, p->tok));
}

static Token *skip(Parser *p, const char *text) {
  if (!at(p, text))
    expected(p, arena_printf(p->arena, "'%s'", text));
  return p->tok++;
}

static Token *ident(Parser *p, const char *what) {
  if (p->tok->kind != TK_IDENT)
    expected(p, what);
  return p->tok++;
}

static void enter(Parser *p) {
  if (++p->depth > MAX_NESTING)
    error_at(p->tok->span, "nesting is too deep (more than %d levels)", MAX_NESTING);
}

static Expr *new_expr(Parser *p, ExprKind kind, Span span) {
  Expr *e = arena_alloc(p->arena, sizeof *e);
  e->kind = kind;
  e->span = span;
  return e;
}

// args = arg ("," arg)* ","?     arg = (IDENT "=")? expr
static void args(Parser *p, Expr *call, const char *close) {
  int cap = 0;
  while (!at(p, close)) {
    Arg a = {0};
    if (p->tok->kind == TK_IDENT && p->tok[1].kind == TK_PUNCT && strcmp(p->tok[1].text, "=") == 0) {
      a.name = p->tok->text;
      a.name_span = p->tok->span;
      p->tok += 2;
    }
    a.value = expr(p);
    if (!a.name)
      a.name_span = a.value->span;
    ARENA_PUSH(p->arena, call->args, call->nargs, cap, a);
    if (!consume(p, ","))
      break;
  }
  Token *t = skip(p, close);
  call->span = span_join(call->span, t->span);
}

// list = "[" (expr ("," expr)* ","? | expr "for" IDENT "in" expr)? "]"
static Expr *list(Parser *p) {
  Token *open = skip(p, "[");
  Expr *e = new_expr(p, EX_LIST, open->span);
  int cap = 0;
  while (!at(p, "]")) {
    Expr *item = expr(p);
    if (e->nitems == 0 && consume(p, "for")) {
      e->kind = EX_COMPREHENSION;
      e->a = item;
      e->name = ident(p, "a loop variable name")->text;
      skip(p, "in");
      e->b = expr(p);
      break;
    }
    ARENA_PUSH(p->arena, e->items, e->nitems, cap, item);
    if (!consume(p, ","))
      break;
  }
  e->span = span_join(e->span, skip(p, "]")->span);
  return e;
}

// primary = INT | FLOAT | STRING | "true" | "false" | "none" | IDENT | "in"
//         | "@" (IDENT | INT) | "(" expr ")" | list
static Expr *primary(Parser *p) {
  Token *t = p->tok;
  switch (t->kind) {
  case TK_INT:
  case TK_FLOAT:
  case TK_STRING:
  case TK_IDENT: {
    static const ExprKind kinds[] = {[TK_INT] = EX_INT, [TK_FLOAT] = EX_FLOAT, [TK_STRING] = EX_STRING, [TK_IDENT] = EX_NAME};
    Expr *e = new_expr(p, kinds[t->kind], t->span);
    e->ival = t->ival;
    e->fval = t->fval;
    e->name = t->text;
    p->tok++;
    return e;
  }
  default: break;
  }
  if (consume(p, "true") || consume(p, "false")) {
    Expr *e = new_expr(p, EX_BOOL, t->span);
    e->ival = strcmp(t->text, "true") == 0;
    return e;
  }
  if (consume(p, "none"))
    return new_expr(p, EX_NONE, t->span);
  if (consume(p, "in")) {
    Expr *e = new_expr(p, EX_NAME, t->span);
    e->name = "in";
    return e;
  }
  if (consume(p, "@")) {
    Token *label = p->tok;
    if (label->kind != TK_IDENT && label->kind != TK_INT && label->kind != TK_KEYWORD)
      expected(p, "a layer label after '@'");
    p->tok++;
    Expr *e = new_expr(p, EX_REF, span_join(t->span, label->span));
    e->name = label->kind != TK_INT ? label->text : arena_printf(p->arena, "%lld", (long long)label->ival);
    return e;
  }
  if (consume(p, "(")) {
    Expr *e = expr(p);
    skip(p, ")");
    return e;
  }
  if (at(p, "["))
    return list(p);
  expected(p, "an expression");
}

// postfix = primary ("(" args ")" | "[" expr (":" expr?)? "]" | "." (IDENT | INT))*
static Expr *postfix(Parser *p) {
  Expr *e = primary(p);
  for (;;) {
    Token *t = p->tok;
    if (consume(p, "(")) {
      if (e->kind != EX_NAME)
        error_at(t->span, "only a name can be called");
      Expr *call = new_expr(p, EX_CALL, e->span);
      call->name = e->name;
      args(p, call, ")");
      e = call;
    } else if (consume(p, "[")) {
      Expr *idx = new_expr(p, EX_INDEX, e->span);
      idx->a = e;
      if (!at(p, ":"))
        idx->b = expr(p);
      if (consume(p, ":")) {
        idx->kind = EX_SLICE;
        if (!at(p, "]"))
          idx->c = expr(p);
      } else if (!idx->b) {
        expected(p, "an index");
      }
      idx->span = span_join(idx->span, skip(p, "]")->span);
      e = idx;
    } else if (consume(p, ".")) {
      Token *field = p->tok;
      if (field->kind != TK_IDENT && field->kind != TK_INT)
        expected(p, "a field name after '.'");
      p->tok++;
      Expr *f = new_expr(p, EX_FIELD, span_join(e->span, field->span));
      f->a = e;
      f->name = field->kind == TK_IDENT ? field->text : arena_printf(p->arena, "%lld", (long long)field->ival);
      e = f;
    } else {
      return e;
    }
  }
}

// unary = ("-" | "!") unary | postfix
static Expr *unary(Parser *p) {
  enter(p);
  Token *t = p->tok;
  Expr *e;
  if (consume(p, "-") || consume(p, "!")) {
    e = new_expr(p, EX_UNARY, t->span);
    e->name = t->text;
    e->a = unary(p);
    e->span = span_join(t->span, e->a->span);
  } else {
    e = postfix(p);
  }
  p->depth--;
  return e;
}

// Binary levels, loosest first: || && (== != < <= > >=) (+ -) (* / // %)
static const char *const levels[][7] = {
    {"||"}, {"&&"}, {"==", "!=", "<", "<=", ">", ">="}, {"+", "-"}, {"*", "/", "//", "%"},
};

static Expr *binary(Parser *p, int level) {
  if (level == (int)(sizeof levels / sizeof *levels))
    return unary(p);
  Expr *lhs = binary(p, level + 1);
  for (;;) {
    const char *op = NULL;
    for (int i = 0; i < 7 && levels[level][i]; i++)
      if (at(p, levels[level][i]))
        op = levels[level][i];
    if (!op)
      return lhs;
    p->tok++;
    Expr *e = new_expr(p, EX_BINARY, lhs->span);
    e->name = op;
    e->a = lhs;
    e->b = binary(p, level + 1);
    e->span = span_join(lhs->span, e->b->span);
    lhs = e;
  }
}

// expr = binary ("?" expr ":" expr)?
static Expr *expr(Parser *p) {
  enter(p);
  Expr *cond = binary(p, 0);
  if (consume(p, "?")) {
    Expr *e = new_expr(p, EX_TERNARY, cond->span);
    e->a = cond;
    e->b = expr(p);
    skip(p, ":");
    e->c = expr(p);
    e->span = span_join(cond->span, e->c->span);
    cond = e;
  }
  p->depth--;
  return cond;
}

static Stmt *new_stmt(Parser *p, StmtKind kind) {
  Stmt *s = arena_alloc(p->arena, sizeof *s);
  s->kind = kind;
  s->span = p->tok->span;
  return s;
}

// if = "if" expr body ("else" (if | body))?
static Stmt *if_stmt(Parser *p) {
  Stmt *s = new_stmt(p, ST_IF);
  skip(p, "if");
  s->value = expr(p);
  s->body = body(p);
  if (consume(p, "else")) {
    s->has_else = true;
    if (at(p, "if")) {
      Stmt *inner = if_stmt(p);
      s->else_body.stmts = arena_alloc(p->arena, sizeof(Stmt *));
      s->else_body.stmts[0] = inner;
      s->else_body.n = 1;
      s->else_body.span = inner->span;
    } else {
      s->else_body = body(p);
    }
  }
  return s;
}

// stmt = "let" IDENT "=" expr | if | "repeat" expr ("as" IDENT)? body
//      | ((IDENT | INT) ":")? ("seq" ("(" args ")")? body | IDENT ("(" args ")")?)
static Stmt *stmt(Parser *p) {
  if (at(p, "if"))
    return if_stmt(p);
  Stmt *s = new_stmt(p, ST_LAYER);
  if (consume(p, "let")) {
    s->kind = ST_LET;
    s->var = ident(p, "a variable name")->text;
    skip(p, "=");
    s->value = expr(p);
    return s;
  }
  if (consume(p, "repeat")) {
    s->kind = ST_REPEAT;
    s->value = expr(p);
    if (consume(p, "as"))
      s->var = ident(p, "a loop variable name")->text;
    s->body = body(p);
    return s;
  }
  Token *t = p->tok;
  // A keyword followed by ':' is a label too: torchvision names modules "block".
  bool labelish = t->kind == TK_IDENT || t->kind == TK_INT || t->kind == TK_KEYWORD;
  if (labelish && t[1].kind == TK_PUNCT && strcmp(t[1].text, ":") == 0) {
    if (t->kind == TK_INT && t->ival < 0)
      error_at(t->span, "a numeric label cannot be negative");
    s->label = t->kind != TK_INT ? t->text : arena_printf(p->arena, "%lld", (long long)t->ival);
    s->label_span = t->span;
    p->tok += 2;
  }
  Token *start = p->tok;
  if (consume(p, "seq")) {
    s->kind = ST_SEQ;
    s->call = new_expr(p, EX_CALL, start->span);
    s->call->name = "seq";
    if (consume(p, "("))
      args(p, s->call, ")");
    s->body = body(p);
    s->span = span_join(start->span, s->call->span);
    return s;
  }
  Token *name = ident(p, "a layer, a block call, 'seq', 'let', 'if' or 'repeat'");
  s->call = new_expr(p, EX_CALL, name->span);
  s->call->name = name->text;
  if (consume(p, "("))
    args(p, s->call, ")");
  s->span = s->call->span;
  return s;
}

// body = "{" (stmt ";"?)* "}"
static Body body(Parser *p) {
  enter(p);
  Body b = {0};
  Token *open = skip(p, "{");
  int cap = 0;
  while (!at(p, "}")) {
    if (p->tok->kind == TK_EOF)
      error_at(open->span, "this '{' is never closed");
    Stmt *s = stmt(p);
    ARENA_PUSH(p->arena, b.stmts, b.n, cap, s);
    while (consume(p, ";"))
      ;
  }
  b.span = span_join(open->span, p->tok->span);
  p->tok++;
  p->depth--;
  return b;
}

// params = param ("," param)* ","?     param = IDENT ("=" expr)?
static void params(Parser *p, Decl *d) {
  skip(p, "(");
  int cap = 0;
  while (!at(p, ")")) {
    Token *name = ident(p, "a parameter name");
    ParamDecl pd = {.name = name->text, .span = name->span};
    for (int i = 0; i < d->nparams; i++)
      if (strcmp(d->params[i].name, pd.name) == 0)
        error_at(name->span, "parameter '%s' is declared twice", pd.name);
    if (consume(p, "="))
      pd.default_value = expr(p);
    ARENA_PUSH(p->arena, d->params, d->nparams, cap, pd);
    if (!consume(p, ","))
      break;
  }
  skip(p, ")");
}

// experiment = "experiment" "{" (("let")? IDENT "=" expr ";"?)* "}"
static void experiment(Parser *p, Decl *d) {
  Token *open = skip(p, "{");
  int cap = 0;
  while (!consume(p, "}")) {
    if (p->tok->kind == TK_EOF)
      error_at(open->span, "this '{' is never closed");
    Setting s = {0};
    s.is_let = consume(p, "let");
    if (!s.is_let && at(p, "model"))
      p->tok->kind = TK_IDENT;   // "model = ..." names the experiment's model
    Token *name = ident(p, "a setting name");
    s.name = name->text;
    s.span = name->span;
    skip(p, "=");
    s.value = expr(p);
    for (int i = 0; i < d->nsettings; i++)
      if (strcmp(d->settings[i].name, s.name) == 0)
        error_at(name->span, "setting '%s' is given twice", s.name);
    ARENA_PUSH(p->arena, d->settings, d->nsettings, cap, s);
    while (consume(p, ";"))
      ;
  }
}

// decl = "import" STRING | "let" IDENT "=" expr
//      | "block" IDENT "(" params ")" body
//      | "model" IDENT "(" params ")" (body | "=" IDENT "(" args ")")
//      | "experiment" experiment
static Decl *decl(Parser *p, const Program *prog) {
  Decl *d = arena_alloc(p->arena, sizeof *d);
  d->span = p->tok->span;
  d->home = prog;
  if (consume(p, "import")) {
    d->kind = DECL_IMPORT;
    if (p->tok->kind != TK_STRING)
      expected(p, "a file name in quotes after 'import'");
    d->name = p->tok->text;
    d->name_span = p->tok->span;
    p->tok++;
  } else if (consume(p, "let")) {
    d->kind = DECL_LET;
    Token *name = ident(p, "a constant name");
    d->name = name->text;
    d->name_span = name->span;
    skip(p, "=");
    d->value = expr(p);
  } else if (at(p, "block") || at(p, "model")) {
    d->kind = at(p, "block") ? DECL_BLOCK : DECL_MODEL;
    p->tok++;
    Token *name = ident(p, d->kind == DECL_BLOCK ? "a block name" : "a model name");
    d->name = name->text;
    d->name_span = name->span;
    params(p, d);
    if (d->kind == DECL_MODEL && consume(p, "=")) {
      d->value = postfix(p);   // model m(...) = some_block(...): the block's layers at the root
      if (d->value->kind != EX_CALL)
        error_at(d->value->span, "expected a block call after '='");
    } else {
      d->body = body(p);
    }
  } else if (consume(p, "experiment")) {
    d->kind = DECL_EXPERIMENT;
    d->name = "experiment";
    d->name_span = d->span;
    experiment(p, d);
  } else {
    expected(p, "'import', 'let', 'block', 'model' or 'experiment'");
  }
  while (consume(p, ";"))
    ;
  return d;
}

Program *parse_source(Arena *a, const Source *src) {
  int n;
  Parser p = {.arena = a, .tok = lex(a, src, 0, &n)};
  Program *prog = arena_alloc(a, sizeof *prog);
  prog->src = src;
  int cap = 0;
  while (p.tok->kind != TK_EOF) {
    Decl *d = decl(&p, prog);
    ARENA_PUSH(a, prog->decls, prog->n, cap, d);
  }
  return prog;
}

Expr *parse_expr_text(Arena *a, const Source *src, size_t start) {
  int n;
  Parser p = {.arena = a, .tok = lex(a, src, start, &n)};
  Expr *e = expr(&p);
  if (p.tok->kind != TK_EOF)
    expected(&p, "the end of the value");
  return e;
}
