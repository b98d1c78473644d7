// lex.c: source text to tokens. '#' starts a comment; newlines are plain white space
// (statements are separated by their shape, or by an optional ';').
#include "tlc.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const keywords[] = {
    "import", "let", "block", "model", "experiment", "if", "else", "repeat",
    "as", "seq", "true", "false", "none", "for", "in",
};

// Longest first, so "//" wins over "/".
static const char *const puncts[] = {
    "==", "!=", "<=", ">=", "&&", "||", "//", "(", ")", "[", "]", "{", "}", ",", ":",
    ";", "=", ".", "@", "+", "-", "*", "/", "%", "<", ">", "!", "?",
};

static Span span_at(const Source *src, const char *start, const char *end) {
  return (Span){src, (uint32_t)(start - src->text), (uint32_t)(end - start ? end - start : 1)};
}

static bool is_ident_start(char c) { return isalpha((unsigned char)c) || c == '_'; }
static bool is_ident_char(char c) { return isalnum((unsigned char)c) || c == '_'; }

// After a '.', digits are a path component ("features.1.0"), never a fraction.
static const char *lex_number(const Source *src, const char *p, bool after_dot, Token *t) {
  const char *start = p;
  while (isdigit((unsigned char)*p))
    p++;
  bool is_float = false;
  if (!after_dot && *p == '.' && isdigit((unsigned char)p[1])) {
    is_float = true;
    for (p++; isdigit((unsigned char)*p);)
      p++;
  }
  if (!after_dot && (*p == 'e' || *p == 'E')) {
    const char *q = p + 1;
    if (*q == '+' || *q == '-')
      q++;
    if (isdigit((unsigned char)*q)) {
      is_float = true;
      for (p = q; isdigit((unsigned char)*p);)
        p++;
    }
  }
  if (is_ident_char(*p)) {
    const char *q = p;
    while (is_ident_char(*q))
      q++;
    error_at(span_at(src, start, q), "malformed number '%.*s'", (int)(q - start), start);
  }
  t->span = span_at(src, start, p);
  char buf[400];
  size_t n = (size_t)(p - start);
  if (n >= sizeof buf)
    error_at(t->span, "number literal too long (%zu digits)", n);
  memcpy(buf, start, n);
  buf[n] = 0;
  errno = 0;
  if (is_float) {
    t->kind = TK_FLOAT;
    t->fval = strtod(buf, NULL);
    if (errno == ERANGE || !isfinite(t->fval))
      error_at(t->span, "number '%s' is out of range", buf);
  } else {
    t->kind = TK_INT;
    t->ival = strtoll(buf, NULL, 10);
    if (errno == ERANGE)
      error_at(t->span, "integer '%s' is too large (the limit is %lld)", buf, (long long)INT64_MAX);
  }
  return p;
}

static const char *lex_string(Arena *a, const Source *src, const char *p, Token *t) {
  const char *start = p++;
  const char *end = src->text + src->len;
  char *out = arena_alloc(a, (size_t)(end - p) + 1);
  size_t n = 0;
  for (; p < end && *p != '"'; p++) {
    if (*p == '\n')
      break;
    if (*p == '\\') {
      p++;
      switch (p < end ? *p : 0) {
      case 'n': out[n++] = '\n'; break;
      case 't': out[n++] = '\t'; break;
      case '\\': out[n++] = '\\'; break;
      case '"': out[n++] = '"'; break;
      default:
        error_at(span_at(src, p - 1, p + 1), "unknown escape sequence in string");
      }
      continue;
    }
    out[n++] = *p;
  }
  if (p >= end || *p != '"')
    error_at(span_at(src, start, start + 1), "unterminated string (a string ends on the line it starts)");
  t->kind = TK_STRING;
  t->text = out;
  t->span = span_at(src, start, p + 1);
  return p + 1;
}

static bool lex_punct(const char *p, Token *t, const Source *src) {
  for (size_t i = 0; i < sizeof puncts / sizeof *puncts; i++) {
    size_t n = strlen(puncts[i]);
    if (strncmp(p, puncts[i], n) == 0) {
      t->kind = TK_PUNCT;
      t->text = puncts[i];
      t->span = span_at(src, p, p + n);
      return true;
    }
  }
  return false;
}

Token *lex(Arena *a, const Source *src, size_t start, int *count) {
  Token *toks = NULL;
  int n = 0, cap = 0;
  const char *p = src->text + start, *end = src->text + src->len;
  while (p < end) {
    if (isspace((unsigned char)*p)) {
      p++;
      continue;
    }
    if (*p == '#') {
      while (p < end && *p != '\n')
        p++;
      continue;
    }
    Token t = {0};
    bool after_dot = n > 0 && toks[n - 1].kind == TK_PUNCT && strcmp(toks[n - 1].text, ".") == 0 &&
                     toks[n - 1].span.off + 1 == (uint32_t)(p - src->text);
    if (isdigit((unsigned char)*p)) {
      p = lex_number(src, p, after_dot, &t);
    } else if (is_ident_start(*p)) {
      const char *first = p;
      while (is_ident_char(*p))
        p++;
      if (p - first > 256)
        error_at(span_at(src, first, p), "name is too long (%d characters; the limit is 256)", (int)(p - first));
      t.kind = TK_IDENT;
      t.text = arena_strndup(a, first, (size_t)(p - first));
      t.span = span_at(src, first, p);
      for (size_t i = 0; i < sizeof keywords / sizeof *keywords; i++)
        if (strcmp(t.text, keywords[i]) == 0)
          t.kind = TK_KEYWORD;
    } else if (*p == '"') {
      p = lex_string(a, src, p, &t);
    } else if (lex_punct(p, &t, src)) {
      p += t.span.len;
    } else {
      unsigned char c = (unsigned char)*p;
      if (c >= 0x20 && c < 0x7f)
        error_at(span_at(src, p, p + 1), "unexpected character '%c'", c);
      error_at(span_at(src, p, p + 1), "unexpected byte 0x%02x (is this a text file?)", c);
    }
    ARENA_PUSH(a, toks, n, cap, t);
  }
  Token eof = {.kind = TK_EOF, .span = {src, (uint32_t)src->len, 1}, .text = "end of file"};
  ARENA_PUSH(a, toks, n, cap, eof);
  *count = n - 1;
  return toks;
}

const char *token_describe(Arena *a, const Token *t) {
  switch (t->kind) {
  case TK_EOF: return "end of file";
  case TK_IDENT: return arena_printf(a, "name '%s'", t->text);
  case TK_KEYWORD: return arena_printf(a, "keyword '%s'", t->text);
  case TK_STRING: return "a string";
  case TK_INT:
  case TK_FLOAT:
    return arena_printf(a, "number '%.*s'", (int)t->span.len, t->span.src->text + t->span.off);
  case TK_PUNCT: return arena_printf(a, "'%s'", t->text);
  }
  return "?";
}
