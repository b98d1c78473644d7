// kir_print.c: a kernel as C text, so a user can read what tlc generated. The statements
// are valid CUDA C too (given the CUDA prelude, codegen/cuda_prelude.cuh), so the CUDA
// lowering prints them with this code and only adds the thread indexing around them.
#include "kir.h"

#include <math.h>
#include <string.h>

static const char *const unary_names[KU_COUNT] = {"-", "expf", "logf", "sqrtf", "fabsf", "!"};
static const char *const binary_names[KB_COUNT] = {"+", "-", "*", "/", "fminf", "fmaxf", "%",
                                                   "<", "<=", "==", "!=", "&&", "||", "^", ">>", "__fmul_rn"};

const char *kir_type_name(KType t) {
  static const char *const names[] = {[KT_I64] = "int64_t", [KT_F32] = "float", [KT_BOOL] = "bool",
                                      [KT_U32] = "unsigned", [KT_BF16] = "unsigned short",
                                      [KT_U8] = "unsigned char"};
  return names[t];
}

static void print_var(FILE *out, const Kernel *k, int var, int elem) {
  fputs(k->vars[var].name, out);
  if (k->vars[var].count > 1)
    fprintf(out, "[%d]", elem);
}

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
  case KX_VAR: print_var(out, k, e->var, e->elem); return;
  case KX_THREAD: fputs("(int64_t)threadIdx.x", out); return;
  case KX_BLOCK: fputs("(int64_t)blockIdx.x", out); return;
  case KX_LOAD: {
    bool bf16 = k->bufs[e->buf].type == KT_BF16, u8 = k->bufs[e->buf].type == KT_U8;
    fprintf(out, "%sb%d[", bf16 ? "tlc_bf2f(" : u8 ? "((int64_t)" : "", e->buf);
    print_expr(out, k, e->a);
    fputs(bf16 || u8 ? "])" : "]", out);
    return;
  }
  case KX_UNARY:
    fprintf(out, "%s(", unary_names[e->op]);
    print_expr(out, k, e->a);
    fputc(')', out);
    return;
  case KX_BINARY:
    if (e->op == KB_MIN || e->op == KB_MAX || e->op == KB_MUL_RN) {   // integers: imin and imax (kir_cuda.c defines them)
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
    fprintf(out, "(%s)", kir_type_name(e->type));
    print_expr(out, k, e->a);
    return;
  }
}

static void print_stmt(FILE *out, const Kernel *k, const KStmt *s, int depth);

// The GPU constructs, as the CUDA prelude's functions and CUDA's own.
static void print_gpu_stmt(FILE *out, const Kernel *k, const KStmt *s) {
  static const char *const shuffles[] = {[KSH_XOR] = "__shfl_xor_sync", [KSH_DOWN] = "__shfl_down_sync",
                                         [KSH_IDX] = "__shfl_sync"};
  const char *v = k->vars[s->var].name;
  switch (s->kind) {
  case KS_BARRIER: fputs("__syncthreads();\n", out); return;
  case KS_SHUFFLE:
    fprintf(out, "%s = %s(0xffffffffu, %s, %lld);\n", v, shuffles[s->shuffle], k->vars[s->src].name, (long long)s->operand);
    return;
  case KS_LDMATRIX:
    fprintf(out, "tlc_ldmatrix_x%lld%s(%s, &b%d[", (long long)s->operand, s->trans ? "_trans" : "", v, s->buf);
    print_expr(out, k, s->index);
    fputs("]);\n", out);
    return;
  case KS_MMA:
    fprintf(out, "tlc_mma_16816_bf16(%s, %s, %s, %s);\n", v, k->vars[s->a].name, k->vars[s->b].name, k->vars[s->c].name);
    return;
  case KS_CP_ASYNC:
    fprintf(out, "tlc_cp_async%d(&b%d[", k->bufs[s->buf].type == KT_BF16 ? 8 : 16, s->buf);
    print_expr(out, k, s->index);
    fprintf(out, "], &b%d[", s->src_buf);
    print_expr(out, k, s->src_index);
    fputs("], (int)", out);
    print_expr(out, k, s->value);
    fputs(");\n", out);
    return;
  case KS_CP_COMMIT: fputs("tlc_cp_async_commit();\n", out); return;
  case KS_CP_WAIT: fprintf(out, "TLC_CP_ASYNC_WAIT(%lld);\n", (long long)s->operand); return;
  case KS_LOAD4:
    if (k->bufs[s->buf].type == KT_BF16) {   // 8 bytes: two bf16 values a word, the first low
      fprintf(out, "{ const uint2 q = *(const uint2 *)&b%d[", s->buf);
      print_expr(out, k, s->index);
      fprintf(out, "]; %s[0] = tlc_bf2f((unsigned short)q.x); %s[1] = tlc_bf2f((unsigned short)(q.x >> 16)); "
              "%s[2] = tlc_bf2f((unsigned short)q.y); %s[3] = tlc_bf2f((unsigned short)(q.y >> 16)); }\n", v, v, v, v);
      return;
    }
    fprintf(out, "{ const float4 q = *(const float4 *)&b%d[", s->buf);
    print_expr(out, k, s->index);
    fprintf(out, "]; %s[0] = q.x; %s[1] = q.y; %s[2] = q.z; %s[3] = q.w; }\n", v, v, v, v);
    return;
  case KS_STORE4: {
    const char *src = k->vars[s->src].name;
    bool bf16 = k->bufs[s->buf].type == KT_BF16;
    fprintf(out, "*(%s *)&b%d[", bf16 ? "uint2" : "float4", s->buf);
    print_expr(out, k, s->index);
    if (bf16)
      fprintf(out, "] = make_uint2(tlc_pack_bf16x2(%s[0], %s[1]), tlc_pack_bf16x2(%s[2], %s[3]));\n", src, src, src, src);
    else
      fprintf(out, "] = make_float4(%s[0], %s[1], %s[2], %s[3]);\n", src, src, src, src);
    return;
  }
  default: return;
  }
}

void kir_print_block(FILE *out, const Kernel *k, const KStmt *block, int depth) {
  for (int i = 0; i < block->nbody; i++)
    print_stmt(out, k, block->body[i], depth);
}

// The register tile as the loops it means (tp, ti, tj: names no kernel variable has).
static void print_tile(FILE *out, const Kernel *k, const KStmt *s, int depth) {
  fprintf(out, "for (int64_t tp = 0; tp < ");
  print_expr(out, k, s->value);
  fprintf(out, "; tp++)   // a %dx%d register tile\n%*sfor (int64_t ti = 0; ti < %d; ti++)\n", s->rows, s->cols,
          2 * depth + 2, "", s->rows);
  fprintf(out, "%*sfor (int64_t tj = 0; tj < %d; tj++)\n%*sb%d[", 2 * depth + 4, "", s->cols, 2 * depth + 6, "", s->buf);
  print_expr(out, k, s->index);
  fprintf(out, " + ti * %lld + tj] += b%d[", (long long)s->operand, s->a_buf);
  print_expr(out, k, s->a_index);
  fprintf(out, " + tp * %lld + ti * %lld] * b%d[", (long long)s->a_step, (long long)s->a_row, s->src_buf);
  print_expr(out, k, s->src_index);
  fprintf(out, " + tp * %lld + tj];\n", (long long)s->ldb);
}

static void print_dot(FILE *out, const Kernel *k, const KStmt *s, int depth) {
  fprintf(out, "for (int64_t ti = 0; ti < %d; ti++)   // %dx%d dot products, %lld lanes\n", s->rows, s->rows, s->cols,
          (long long)s->a_step);
  fprintf(out, "%*sfor (int64_t tj = 0; tj < %d; tj++)\n%*sfor (int64_t tp = 0; tp < ", 2 * depth + 2, "", s->cols,
          2 * depth + 4, "");
  print_expr(out, k, s->value);
  fprintf(out, "; tp++)\n%*sb%d[", 2 * depth + 6, "", s->buf);
  print_expr(out, k, s->index);
  fprintf(out, " + ti * %lld + tj] += b%d[", (long long)s->operand, s->a_buf);
  print_expr(out, k, s->a_index);
  fprintf(out, " + ti * %lld + tp] * b%d[", (long long)s->a_row, s->src_buf);
  print_expr(out, k, s->src_index);
  fprintf(out, " + tj * %lld + tp];\n", (long long)s->ldb);
}

static void print_transpose(FILE *out, const Kernel *k, const KStmt *s, int depth) {
  fprintf(out, "for (int64_t ti = 0; ti < %d; ti++)   // %dx%d transposed\n", s->rows, s->rows, s->rows);
  fprintf(out, "%*sfor (int64_t tj = 0; tj < %d; tj++)\n%*sb%d[", 2 * depth + 2, "", s->rows, 2 * depth + 4, "", s->buf);
  print_expr(out, k, s->index);
  fprintf(out, " + ti * %lld + tj] = b%d[", (long long)s->operand, s->src_buf);
  print_expr(out, k, s->src_index);
  fprintf(out, " + tj * %lld + ti];\n", (long long)s->ldb);
}

static void print_stmt(FILE *out, const Kernel *k, const KStmt *s, int depth) {
  fprintf(out, "%*s", 2 * depth, "");
  switch (s->kind) {
  case KS_TILE: print_tile(out, k, s, depth); return;
  case KS_DOT: print_dot(out, k, s, depth); return;
  case KS_TRANSPOSE: print_transpose(out, k, s, depth); return;
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
    print_var(out, k, s->var, s->elem);
    fputs(" = ", out);
    print_expr(out, k, s->value);
    fputs(";\n", out);
    return;
  case KS_STORE: {
    bool bf16 = k->bufs[s->buf].type == KT_BF16, u8 = k->bufs[s->buf].type == KT_U8;
    fprintf(out, "b%d[", s->buf);
    print_expr(out, k, s->index);
    fputs(bf16 ? "] = tlc_f2bf(" : u8 ? "] = (unsigned char)(" : "] = ", out);
    print_expr(out, k, s->value);
    fputs(bf16 || u8 ? ");\n" : ";\n", out);
    return;
  }
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
  default: print_gpu_stmt(out, k, s); return;
  }
}

void kir_print_header(FILE *out, const Kernel *k) {
  fprintf(out, "// %s\n", k->comment);
  if (k->kind == KK_BLOCKS)
    fprintf(out, "//   %lld blocks of %d threads%s\n", (long long)k->launch.grid, k->launch.block,
            k->bf16 ? ", bf16 tensor-core tiles with float accumulation" : "");
  if (k->layout)
    fprintf(out, "//   %s\n", k->layout);
  for (int i = 0; i < k->nbufs; i++) {
    const KBuf *b = &k->bufs[i];
    const char *type = b->type == KT_BF16 ? "bf16" : b->type == KT_U8 ? "uint8" : kir_type_name(b->type);
    fprintf(out, "//   b%d: %s%s %s[", i, b->space == KSP_SHARED ? "shared " : b->space == KSP_LOCAL ? "local " : "", type,
            b->name);
    if (b->elems)   // 0: a global buffer whose length is the trainer's to know
      fprintf(out, "%lld", (long long)b->elems);
    fprintf(out, "]%s\n", b->written && b->space == KSP_GLOBAL ? " (written)" : "");
  }
}

static void mark_loop_vars(const KStmt *s, bool *is_loop) {
  if (s->kind == KS_FOR)
    is_loop[s->var] = true;
  for (int i = 0; i < s->nbody; i++)
    mark_loop_vars(s->body[i], is_loop);
  if (s->orelse)
    mark_loop_vars(s->orelse, is_loop);
}

// Shared and local buffers first, then the variables; loop variables are declared by their loops.
void kir_print_locals(FILE *out, const Kernel *k) {
  for (int i = kir_nparams(k); i < k->nbufs; i++)
    fprintf(out, "  %s%s b%d[%lld];   // %s\n", k->bufs[i].space == KSP_SHARED ? "__shared__ __align__(16) " : "",
            kir_type_name(k->bufs[i].type), i, (long long)k->bufs[i].elems, k->bufs[i].name);
  bool *is_loop = arena_alloc(k->arena, (size_t)k->nvars + 1);
  mark_loop_vars(k->body, is_loop);
  for (int i = 0; i < k->nvars; i++) {
    if (is_loop[i])
      continue;
    fprintf(out, "  %s %s", kir_type_name(k->vars[i].type), k->vars[i].name);
    if (k->vars[i].count > 1)
      fprintf(out, "[%d]", k->vars[i].count);
    fputs(";\n", out);
  }
}

void kir_print(FILE *out, const Kernel *k) {
  kir_print_header(out, k);
  if (k->kind == KK_BLOCKS)
    fprintf(out, "kernel %s <<<%lld, %d>>> {\n", k->name, (long long)k->launch.grid, k->launch.block);
  else
    fprintf(out, "kernel %s {\n", k->name);
  kir_print_locals(out, k);
  kir_print_block(out, k, k->body, 1);
  fputs("}\n", out);
}
