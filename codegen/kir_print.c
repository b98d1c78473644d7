// kir_print.c: a kernel as C text, so a user can read what tlc generated. The statements
// are valid CUDA C too (given kir_cuda.c's prelude), so the CUDA lowering prints them with
// this code and only adds the thread indexing around them.
#include "kir.h"

#include <math.h>
#include <string.h>

static const char *const unary_names[KU_COUNT] = {"-", "expf", "logf", "sqrtf", "fabsf", "!"};
static const char *const binary_names[KB_COUNT] = {"+", "-", "*", "/", "fminf", "fmaxf", "%",
                                                   "<", "<=", "==", "!=", "&&", "||", "^", ">>"};

static const char *type_name(KType t) { return t == KT_F32 ? "float" : t == KT_I64 ? "int64_t" : "bool"; }

static void print_expr(FILE *out, const Kernel *k, const KExpr *e) {
  switch (e->kind) {
  case KX_CONST:
    if (e->type == KT_F32 && isinf(e->f))
      fputs(e->f < 0 ? "-INFINITY" : "INFINITY", out);
    else if (e->type == KT_F32 && e->f == (double)(int64_t)e->f && fabs(e->f) < 1e15)
      fprintf(out, "%.1ff", e->f);   // "2.0f": C reads "2f" as a malformed integer
    else if (e->type == KT_F32)
      fprintf(out, "%.9gf", e->f);
    else
      fprintf(out, "%lld", (long long)e->i);
    return;
  case KX_VAR: fputs(k->vars[e->var].name, out); return;
  case KX_LOAD:
    fprintf(out, "b%d[", e->buf);
    print_expr(out, k, e->a);
    fputc(']', out);
    return;
  case KX_UNARY:
    fprintf(out, "%s(", unary_names[e->op]);
    print_expr(out, k, e->a);
    fputc(')', out);
    return;
  case KX_BINARY:
    if (e->op == KB_MIN || e->op == KB_MAX) {   // integers: imin and imax (kir_cuda.c defines them)
      fprintf(out, "%s(", e->type == KT_F32 ? binary_names[e->op] : e->op == KB_MIN ? "imin" : "imax");
      print_expr(out, k, e->a);
      fputs(", ", out);
      print_expr(out, k, e->b);
      fputc(')', out);
      return;
    }
    fputs(e->op == KB_SHR ? "(int64_t)((uint64_t)" : "(", out);   // a logical shift
    print_expr(out, k, e->a);
    fprintf(out, " %s ", binary_names[e->op]);
    print_expr(out, k, e->b);
    fputc(')', out);
    return;
  case KX_SELECT:
    fputc('(', out);
    print_expr(out, k, e->a);
    fputs(" ? ", out);
    print_expr(out, k, e->b);
    fputs(" : ", out);
    print_expr(out, k, e->c);
    fputc(')', out);
    return;
  case KX_CAST:
    fprintf(out, "(%s)", type_name(e->type));
    print_expr(out, k, e->a);
    return;
  }
}

static void print_stmt(FILE *out, const Kernel *k, const KStmt *s, int depth);

void kir_print_block(FILE *out, const Kernel *k, const KStmt *block, int depth) {
  for (int i = 0; i < block->nbody; i++)
    print_stmt(out, k, block->body[i], depth);
}

static void print_stmt(FILE *out, const Kernel *k, const KStmt *s, int depth) {
  fprintf(out, "%*s", 2 * depth, "");
  switch (s->kind) {
  case KS_FOR: {
    const char *v = k->vars[s->var].name;
    fprintf(out, "for (int64_t %s = ", v);
    print_expr(out, k, s->lo);
    fprintf(out, "; %s < ", v);
    print_expr(out, k, s->hi);
    fprintf(out, "; %s++) {%s\n", v, s->parallel ? "  // parallel" : "");
    kir_print_block(out, k, s, depth + 1);
    fprintf(out, "%*s}\n", 2 * depth, "");
    return;
  }
  case KS_ASSIGN:
    fprintf(out, "%s = ", k->vars[s->var].name);
    print_expr(out, k, s->value);
    fputs(";\n", out);
    return;
  case KS_STORE:
    fprintf(out, "b%d[", s->buf);
    print_expr(out, k, s->index);
    fputs("] = ", out);
    print_expr(out, k, s->value);
    fputs(";\n", out);
    return;
  case KS_IF:
    fputs("if (", out);
    print_expr(out, k, s->value);
    fputs(") {\n", out);
    kir_print_block(out, k, s, depth + 1);
    if (s->orelse) {
      fprintf(out, "%*s} else {\n", 2 * depth, "");
      kir_print_block(out, k, s->orelse, depth + 1);
    }
    fprintf(out, "%*s}\n", 2 * depth, "");
    return;
  case KS_BLOCK:
    fputs("{\n", out);
    kir_print_block(out, k, s, depth + 1);
    fprintf(out, "%*s}\n", 2 * depth, "");
    return;
  }
}

void kir_print_header(FILE *out, const Kernel *k) {
  fprintf(out, "// %s\n", k->comment);
  for (int i = 0; i < k->nbufs; i++)
    fprintf(out, "//   b%d: %s %s[%lld]%s\n", i, k->bufs[i].type == KT_F32 ? "float" : "int64_t", k->bufs[i].name,
            (long long)k->bufs[i].elems, k->bufs[i].written ? " (written)" : "");
}

static void mark_loop_vars(const KStmt *s, bool *is_loop) {
  if (s->kind == KS_FOR)
    is_loop[s->var] = true;
  for (int i = 0; i < s->nbody; i++)
    mark_loop_vars(s->body[i], is_loop);
  if (s->orelse)
    mark_loop_vars(s->orelse, is_loop);
}

// Loop variables are declared by their loops.
void kir_print_locals(FILE *out, const Kernel *k) {
  bool *is_loop = arena_alloc(k->arena, (size_t)k->nvars + 1);
  memset(is_loop, 0, (size_t)k->nvars + 1);
  mark_loop_vars(k->body, is_loop);
  for (int i = 0; i < k->nvars; i++)
    if (!is_loop[i])
      fprintf(out, "  %s %s;\n", type_name(k->vars[i].type), k->vars[i].name);
}

void kir_print(FILE *out, const Kernel *k) {
  kir_print_header(out, k);
  fprintf(out, "kernel %s {\n", k->name);
  kir_print_locals(out, k);
  kir_print_block(out, k, k->body, 1);
  fputs("}\n", out);
}
