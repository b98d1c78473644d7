// report_confusion.c: confusion.png, one run's test-set confusion matrix (its confusion.tsv):
// a row per true class, a column per predicted class, class names on both axes, each cell
// shaded by its share of the row (the class's recall on the diagonal) and, where the cell is
// large enough to hold it, the number of images. Cells are 64 pixels for 10 classes, down to
// 12 for 53 classes and more; names longer than 170 pixels are cut, and the margins are as wide
// as the longest name, so that labels neither overlap nor float far from the matrix.
#include "report.h"
#include "plot_cairo.h"

#include <math.h>
#include <string.h>

enum { MAX_LABEL = 170, TOP = 78, EDGE = 16, AXIS_TITLE = 18, GAP = 8, MIN_WIDTH = 560 };
static const uint32_t INK = 0x222222, QUIET = 0x555555;

// Where everything goes: the matrix at (left, TOP), side pixels square.
typedef struct Layout {
  int cell, side, label, left, width, height;
  TlcTextStyle name;
} Layout;

static Layout layout(TlcPicture *probe, const ReportConfusion *c) {
  Layout l = {.cell = 640 / c->classes};
  l.cell = l.cell > 64 ? 64 : l.cell < 12 ? 12 : l.cell;
  l.side = c->classes * l.cell;
  l.name = (TlcTextStyle){.size = fmax(8, fmin(l.cell * 0.7, 13)), .align = TLC_ALIGN_RIGHT, .max_width = MAX_LABEL};
  for (int k = 0; k < c->classes; k++) {
    int w = (int)ceil(tlc_picture_text_width(probe, &l.name, c->names[k]));
    l.label = w > l.label ? w : l.label;
  }
  l.left = EDGE + AXIS_TITLE + 2 * GAP + l.label;
  l.width = l.left + l.side + EDGE > MIN_WIDTH ? l.left + l.side + EDGE : MIN_WIDTH;
  l.height = TOP + l.side + 2 * GAP + l.label + AXIS_TITLE + GAP + EDGE;
  return l;
}

// White to dark blue (matplotlib's "Blues" ends) by f in [0, 1].
static uint32_t shade(double f) {
  static const int lo[3] = {0xF7, 0xFB, 0xFF}, hi[3] = {0x08, 0x30, 0x6B};
  uint32_t rgb = 0;
  for (int k = 0; k < 3; k++)
    rgb = rgb << 8 | (uint32_t)lround(lo[k] + (hi[k] - lo[k]) * f);
  return rgb;
}

static int64_t row_total(const ReportConfusion *c, int t) {
  int64_t sum = 0;
  for (int p = 0; p < c->classes; p++)
    sum += c->counts[(int64_t)t * c->classes + p];
  return sum;
}

static void draw_cells(TlcPicture *pic, const ReportConfusion *c, const Layout *l) {
  char count[32];
  int cell = l->cell;
  TlcTextStyle number = {.size = fmin(cell * 0.3, 14), .align = TLC_ALIGN_CENTER};
  for (int t = 0; t < c->classes; t++) {
    int64_t total = row_total(c, t);
    for (int p = 0; p < c->classes; p++) {
      int64_t n = c->counts[(int64_t)t * c->classes + p];
      double f = total ? (double)n / (double)total : 0, x = l->left + p * cell, y = TOP + t * cell;
      tlc_picture_color(pic, shade(f));
      pic->c->rectangle(pic->cr, x, y, cell, cell);
      pic->c->fill(pic->cr);
      if (cell < 24 || n == 0)   // too small to hold a number; empty cells stay quiet
        continue;
      snprintf(count, sizeof count, "%lld", (long long)n);
      tlc_picture_color(pic, f > 0.5 ? 0xFFFFFF : INK);
      tlc_picture_text(pic, x + cell / 2.0, y + cell / 2.0 + number.size * 0.36, &number, count);
    }
  }
  tlc_picture_color(pic, 0x888888);
  pic->c->set_line_width(pic->cr, 1);
  pic->c->rectangle(pic->cr, l->left, TOP, l->side, l->side);
  pic->c->stroke(pic->cr);
}

// Text centred on (x, y), read upwards.
static void upwards(TlcPicture *pic, double x, double y, const TlcTextStyle *style, const char *text) {
  pic->c->save(pic->cr);
  pic->c->translate(pic->cr, x, y);
  pic->c->rotate(pic->cr, -M_PI / 2);
  tlc_picture_text(pic, 0, 0, style, text);
  pic->c->restore(pic->cr);
}

static void draw_names(TlcPicture *pic, const ReportConfusion *c, const Layout *l) {
  double bottom = TOP + l->side, lift = l->name.size * 0.36;   // from a name's middle to its baseline
  tlc_picture_color(pic, INK);
  for (int k = 0; k < c->classes; k++) {
    double middle = k * l->cell + l->cell / 2.0;
    tlc_picture_text(pic, l->left - GAP, TOP + middle + lift, &l->name, c->names[k]);
    upwards(pic, l->left + middle + lift, bottom + GAP, &l->name, c->names[k]);   // ends under its column
  }
  TlcTextStyle axis = {.size = 14, .bold = true, .align = TLC_ALIGN_CENTER};
  tlc_picture_text(pic, l->left + l->side / 2.0, bottom + 2 * GAP + l->label + AXIS_TITLE - 4, &axis,
                   "predicted class");
  upwards(pic, l->left - 2 * GAP - l->label - 4, TOP + l->side / 2.0, &axis, "true class");
}

// The value of key=VALUE in the "tested=..." line, or NULL.
static const char *token(Arena *a, const char *line, const char *key) {
  size_t n = strlen(key);
  for (const char *s = line; s; s = strchr(s, ' ')) {
    s += *s == ' ';
    if (!strncmp(s, key, n) && s[n] == '=')
      return arena_strndup(a, s + n + 1, strcspn(s + n + 1, " "));
  }
  return NULL;
}

// "test split, 5,000 images, accuracy 88.60%, best.ckpt (epoch 38)"
static const char *subtitle(Arena *a, const ReportConfusion *c) {
  int64_t total = 0, right = 0;
  for (int t = 0; t < c->classes; t++) {
    total += row_total(c, t);
    right += c->counts[(int64_t)t * c->classes + t];
  }
  const char *tested = c->tested ? token(a, c->tested, "tested") : NULL, *weights = NULL;
  if (tested && !strcmp(tested, "best"))
    weights = arena_printf(a, ", best.ckpt (epoch %s)", token(a, c->tested, "best_epoch"));
  else if (tested && !strcmp(tested, "last"))
    weights = ", the last epoch's weights";
  else if (tested && token(a, c->tested, "weights"))
    weights = arena_printf(a, ", %s", token(a, c->tested, "weights"));
  return arena_printf(a, "test split, %s images, accuracy %.2f%%%s", report_grouped(a, total),
                      total ? 100.0 * (double)right / (double)total : 0.0, weights ? weights : "");
}

int report_confusion(const char *path, const ReportRun *r, int *width, int *height, TlcError *err) {
  const ReportConfusion *c = r->confusion;
  TlcPicture pic;
  if (tlc_picture_begin(&pic, 1, 1, err) != 0)   // to measure the names
    return -1;
  Layout l = layout(&pic, c);
  tlc_picture_free(&pic);
  *width = l.width, *height = l.height;
  if (tlc_picture_begin(&pic, l.width, l.height, err) != 0)
    return -1;
  Arena *a = arena_new();
  TlcTextStyle title = {.size = 17, .bold = true, .max_width = l.width - 2 * EDGE};
  TlcTextStyle note = {.size = 12, .max_width = l.width - 2 * EDGE};
  tlc_picture_color(&pic, INK);
  tlc_picture_text(&pic, EDGE, 28, &title, arena_printf(a, "Confusion matrix: %s", r->name));
  tlc_picture_color(&pic, QUIET);
  tlc_picture_text(&pic, EDGE, 50, &note, subtitle(a, c));
  tlc_picture_text(&pic, EDGE, 67, &note, "a row per true class; the shade is the share of its images, the number their count");
  arena_free(a);
  draw_cells(&pic, c, &l);
  draw_names(&pic, c, &l);
  return tlc_picture_write(&pic, path, err);
}
