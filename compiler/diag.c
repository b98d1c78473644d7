// diag.c: every compiler error is FILE:LINE:COL: error: message, the source line and a
// caret under the offending text. Errors exit with status 1 before any output file is
// written (outputs are written only after the whole front end has succeeded).
#include "tlc.h"

#include <stdlib.h>
#include <string.h>

static const Note *current_notes;

void diag_set_notes(const Note *notes) { current_notes = notes; }

Span span_join(Span a, Span b) {
  if (!a.src || a.src != b.src)
    return a.src ? a : b;
  uint32_t lo = a.off < b.off ? a.off : b.off;
  uint32_t hi_a = a.off + a.len, hi_b = b.off + b.len;
  uint32_t hi = hi_a > hi_b ? hi_a : hi_b;
  return (Span){a.src, lo, hi - lo};
}

// Prints "path:line:col: " and returns the line's start and end.
static void print_location(Span s, const char **line_start, const char **line_end, int *col) {
  const char *text = s.src->text;
  size_t off = s.off <= s.src->len ? s.off : s.src->len;
  int line = 1;
  const char *start = text;
  for (const char *p = text; p < text + off; p++)
    if (*p == '\n') {
      line++;
      start = p + 1;
    }
  const char *end = start;
  while (end < text + s.src->len && *end != '\n')
    end++;
  *col = (int)(text + off - start) + 1;
  *line_start = start;
  *line_end = end;
  fprintf(stderr, "%s:%d:%d: ", s.src->path, line, *col);
}

static void print_caret(Span s, const char *start, const char *end, int col) {
  // Control bytes (from binary garbage) are shown as '?' so the terminal stays sane.
  fputc(' ', stderr);
  for (const char *p = start; p < end && p - start < 200; p++)
    fputc((*p == '\t' || (unsigned char)*p >= 0x20) && *p != 0x7f ? *p : '?', stderr);
  fputs("\n ", stderr);
  for (int i = 1; i < col && i <= 200; i++)
    fputc(start[i - 1] == '\t' ? '\t' : ' ', stderr);
  fputc('^', stderr);
  size_t room = (size_t)(end - (start + col - 1));
  for (uint32_t i = 1; i < s.len && i < room && i < 80; i++)
    fputc('~', stderr);
  fputc('\n', stderr);
}

static void report(Span s, const char *kind, const char *fmt, va_list ap) {
  const char *start, *end;
  int col;
  if (s.src)
    print_location(s, &start, &end, &col);
  else
    fputs("tlc: ", stderr);
  fprintf(stderr, "%s: ", kind);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  if (s.src)
    print_caret(s, start, end, col);
}

static void report_notes(void) {
  for (const Note *n = current_notes; n; n = n->outer) {
    const char *start, *end;
    int col;
    if (!n->span.src)
      continue;
    print_location(n->span, &start, &end, &col);
    fprintf(stderr, "note: %s\n", n->what);
    print_caret(n->span, start, end, col);
  }
}

void error_at(Span span, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  report(span, "error", fmt, ap);
  va_end(ap);
  report_notes();
  exit(1);
}

void warn_at(Span span, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  report(span, "warning", fmt, ap);
  va_end(ap);
}

void fatal(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("tlc: error: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}
