// report_curves.c: curves.png, the training curves of every run: loss and accuracy per epoch
// side by side, one colour per run, training solid and validation dashed (a run without a
// validation split shows its per-epoch test figures dotted, as the trainer prints them:
// no held-out score). The legend is a column on the right, so the picture's size depends only
// on the number of runs (report_curves_size).
#include "report.h"
#include "plot_cairo.h"

#include <math.h>

enum {
  PANEL_W = 520, PANEL_H = 440, LEGEND_W = 300, ROW = 22,
  PLOT_LEFT = 78, PLOT_RIGHT = 16, PLOT_TOP = 44, PLOT_BOTTOM = 58,   // a panel's margins around its plot
  MAX_DOTTED_EPOCHS = 30,
};

// matplotlib's tab10, then the light half of tab20: distinct for up to 20 runs, then repeated.
static const uint32_t PALETTE[] = {0x1F77B4, 0xFF7F0E, 0x2CA02C, 0xD62728, 0x9467BD, 0x8C564B, 0xE377C2,
                                   0x7F7F7F, 0xBCBD22, 0x17BECF, 0xAEC7E8, 0xFFBB78, 0x98DF8A, 0xFF9896,
                                   0xC5B0D5, 0xC49C94, 0xF7B6D2, 0xC7C7C7, 0xDBDB8D, 0x9EDAE5};
enum { COLOURS = sizeof PALETTE / sizeof *PALETTE };
static const uint32_t INK = 0x222222, GRID = 0xE4E4E4, FRAME = 0x888888;

typedef enum { LINE_TRAIN, LINE_VAL, LINE_TEST } LineKind;

void report_curves_size(int n, int *width, int *height) {
  *width = 2 * PANEL_W + LEGEND_W;
  int legend = PLOT_TOP + ROW * (n + 5);   // title, the runs, a gap, three line styles
  *height = legend > PANEL_H ? legend : PANEL_H;
}

// An axis: the range shown and the step of its ticks (1, 2 or 5 times a power of ten).
typedef struct Axis {
  double lo, hi, step;
} Axis;

static double nice_step(double range, int ticks) {
  double raw = range / ticks, power = pow(10, floor(log10(raw))), f = raw / power;
  return power * (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10);
}

// lo..hi widened to whole steps; floor and ceiling bound the result.
static Axis axis_around(double lo, double hi, double floor_at, double ceiling_at) {
  if (!(hi > lo))
    lo -= 0.5, hi += 0.5;
  double step = nice_step(hi - lo, 5);
  Axis a = {floor(lo / step) * step, ceil(hi / step) * step, step};
  a.lo = a.lo < floor_at ? floor_at : a.lo;
  a.hi = a.hi > ceiling_at ? ceiling_at : a.hi;
  return a;
}

// The plot area of a panel, and its two axes.
typedef struct Panel {
  double x0, y0, w, h;   // the plot area in pixels
  Axis x, y;
} Panel;

static double px(const Panel *p, double v) { return p->x0 + (v - p->x.lo) / (p->x.hi - p->x.lo) * p->w; }
static double py(const Panel *p, double v) { return p->y0 + p->h - (v - p->y.lo) / (p->y.hi - p->y.lo) * p->h; }

static void draw_line(TlcPicture *pic, double x0, double y0, double x1, double y1) {
  pic->c->move_to(pic->cr, x0, y0);
  pic->c->line_to(pic->cr, x1, y1);
  pic->c->stroke(pic->cr);
}

// Tick labels with as many decimals as the step needs.
static void tick_label(char *buf, size_t size, double v, double step) {
  int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
  snprintf(buf, size, "%.*f", decimals, fabs(v) < step / 1e6 ? 0.0 : v);
}

static void draw_axes(TlcPicture *pic, const Panel *p, const char *title, const char *ylabel) {
  const TlcCairo *c = pic->c;
  char buf[32];
  TlcTextStyle ticks = {.size = 12, .align = TLC_ALIGN_RIGHT}, centred = {.size = 13, .align = TLC_ALIGN_CENTER};
  c->set_line_width(pic->cr, 1);
  for (double v = p->y.lo; v <= p->y.hi + p->y.step / 1e6; v += p->y.step) {
    tlc_picture_color(pic, GRID);
    draw_line(pic, p->x0, py(p, v), p->x0 + p->w, py(p, v));
    tlc_picture_color(pic, INK);
    tick_label(buf, sizeof buf, v, p->y.step);
    tlc_picture_text(pic, p->x0 - 6, py(p, v) + 4, &ticks, buf);
  }
  ticks.align = TLC_ALIGN_CENTER;
  for (double v = ceil(p->x.lo / p->x.step) * p->x.step; v <= p->x.hi + 1e-9; v += p->x.step) {
    tlc_picture_color(pic, GRID);
    draw_line(pic, px(p, v), p->y0, px(p, v), p->y0 + p->h);
    tlc_picture_color(pic, INK);
    tick_label(buf, sizeof buf, v, p->x.step);
    tlc_picture_text(pic, px(p, v), p->y0 + p->h + 17, &ticks, buf);
  }
  tlc_picture_color(pic, FRAME);
  c->rectangle(pic->cr, p->x0, p->y0, p->w, p->h);
  c->stroke(pic->cr);
  tlc_picture_color(pic, INK);
  tlc_picture_text(pic, p->x0 + p->w / 2, p->y0 + p->h + 40, &centred, "epoch");
  tlc_picture_text(pic, p->x0 + p->w / 2, p->y0 - 16, &(TlcTextStyle){.size = 15, .bold = true, .align = TLC_ALIGN_CENTER},
                   title);
  c->save(pic->cr);
  c->translate(pic->cr, p->x0 - 52, p->y0 + p->h / 2);
  c->rotate(pic->cr, -M_PI / 2);
  tlc_picture_text(pic, 0, 0, &centred, ylabel);
  c->restore(pic->cr);
}

static void set_style(TlcPicture *pic, LineKind kind) {
  static const double dash[] = {7, 4}, dot[] = {1.5, 3.5};
  pic->c->set_line_width(pic->cr, kind == LINE_TRAIN ? 2.2 : 2);
  pic->c->set_dash(pic->cr, kind == LINE_VAL ? dash : kind == LINE_TEST ? dot : NULL, kind == LINE_TRAIN ? 0 : 2, 0);
}

// The value a curve plots at epoch e: accuracies as percentages.
static double value_of(const ReportEpoch *e, bool accuracy, LineKind kind) {
  double loss = kind == LINE_TRAIN ? e->loss : kind == LINE_VAL ? e->val_loss : e->test_loss;
  double acc = kind == LINE_TRAIN ? e->acc : kind == LINE_VAL ? e->val_acc : e->test_acc;
  return accuracy ? 100 * acc : loss;
}

// One curve: a line through the epochs that have the figure (broken where one lacks it) and,
// where the epochs are few enough not to blur it, a dot on each, so that a run of one or two
// epochs still shows.
static void draw_curve(TlcPicture *pic, const Panel *p, const ReportRun *r, bool accuracy, LineKind kind) {
  const TlcCairo *c = pic->c;
  set_style(pic, kind);
  bool pen_down = false;
  for (int i = 0; i < r->nepochs; i++) {
    double v = value_of(&r->epochs[i], accuracy, kind);
    if (isnan(v)) {
      pen_down = false;
      continue;
    }
    (pen_down ? c->line_to : c->move_to)(pic->cr, px(p, r->epochs[i].epoch), py(p, v));
    pen_down = true;
  }
  c->stroke(pic->cr);
  c->set_dash(pic->cr, NULL, 0, 0);
  for (int i = 0; i < r->nepochs && p->x.hi <= MAX_DOTTED_EPOCHS; i++) {
    double v = value_of(&r->epochs[i], accuracy, kind);
    if (!isnan(v)) {
      c->arc(pic->cr, px(p, r->epochs[i].epoch), py(p, v), kind == LINE_TRAIN ? 3 : 2.5, 0, 2 * M_PI);
      c->fill(pic->cr);
    }
  }
}

static bool has_validation(const ReportRun *r) {
  for (int i = 0; i < r->nepochs; i++)
    if (!isnan(r->epochs[i].val_acc))
      return true;
  return false;
}

// The range of every figure a panel plots.
static void data_range(ReportRun **runs, int n, bool accuracy, double *lo, double *hi, int *epochs) {
  *lo = INFINITY, *hi = -INFINITY, *epochs = 1;
  for (int i = 0; i < n; i++)
    for (int k = 0; k < runs[i]->nepochs; k++) {
      const ReportEpoch *e = &runs[i]->epochs[k];
      *epochs = e->epoch > *epochs ? e->epoch : *epochs;
      for (LineKind kind = LINE_TRAIN; kind <= LINE_TEST; kind++) {
        double v = value_of(e, accuracy, kind);
        *lo = isnan(v) || v > *lo ? *lo : v;
        *hi = isnan(v) || v < *hi ? *hi : v;
      }
    }
}

static void draw_panel(TlcPicture *pic, int index, ReportRun **runs, int n, bool accuracy) {
  double lo, hi;
  int epochs;
  data_range(runs, n, accuracy, &lo, &hi, &epochs);
  Panel p = {index * PANEL_W + PLOT_LEFT, PLOT_TOP, PANEL_W - PLOT_LEFT - PLOT_RIGHT, PANEL_H - PLOT_TOP - PLOT_BOTTOM};
  p.x = (Axis){1, epochs > 1 ? epochs : 2, epochs <= 10 ? 1 : nice_step(epochs - 1, 8)};
  p.y = accuracy ? axis_around(lo, hi, 0, 100) : axis_around(0, hi, 0, INFINITY);
  draw_axes(pic, &p, accuracy ? "Accuracy" : "Loss", accuracy ? "accuracy (%)" : "cross-entropy loss");
  for (int i = 0; i < n; i++) {
    tlc_picture_color(pic, PALETTE[i % COLOURS]);
    draw_curve(pic, &p, runs[i], accuracy, LINE_TRAIN);
    draw_curve(pic, &p, runs[i], accuracy, has_validation(runs[i]) ? LINE_VAL : LINE_TEST);
  }
}

static void legend_entry(TlcPicture *pic, double y, uint32_t color, LineKind kind, const char *text) {
  double x = 2 * PANEL_W + 10;
  tlc_picture_color(pic, color);
  set_style(pic, kind);
  draw_line(pic, x, y - 4, x + 34, y - 4);
  pic->c->set_dash(pic->cr, NULL, 0, 0);
  tlc_picture_color(pic, INK);
  tlc_picture_text(pic, x + 44, y, &(TlcTextStyle){.size = 13, .max_width = LEGEND_W - 64}, text);
}

static void draw_legend(TlcPicture *pic, ReportRun **runs, int n) {
  double x = 2 * PANEL_W + 10, y = PLOT_TOP + 4;
  tlc_picture_color(pic, INK);
  tlc_picture_text(pic, x, y, &(TlcTextStyle){.size = 14, .bold = true}, "runs");
  bool test_only = false;
  for (int i = 0; i < n; i++) {
    legend_entry(pic, y += ROW, PALETTE[i % COLOURS], LINE_TRAIN, runs[i]->name);
    test_only |= !has_validation(runs[i]);
  }
  y += ROW;
  legend_entry(pic, y += ROW, INK, LINE_TRAIN, "training");
  legend_entry(pic, y += ROW, INK, LINE_VAL, "validation");
  if (test_only)
    legend_entry(pic, y += ROW, INK, LINE_TEST, "test (no validation split)");
}

int report_curves(const char *path, ReportRun **runs, int n, int *width, int *height, TlcError *err) {
  report_curves_size(n, width, height);
  TlcPicture pic;
  if (tlc_picture_begin(&pic, *width, *height, err) != 0)
    return -1;
  draw_panel(&pic, 0, runs, n, false);
  draw_panel(&pic, 1, runs, n, true);
  draw_legend(&pic, runs, n);
  return tlc_picture_write(&pic, path, err);
}
