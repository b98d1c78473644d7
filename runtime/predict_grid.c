// predict_grid.c: --predict-grid, the predicted images as one PNG (tlcrt.h, section
// "predict_grid.c"), drawn with Cairo (plot_cairo.h says why, and why it is loaded at run time).
//
// Each tile shows the image file as decoded (before the evaluation transforms, as a reader
// knows it), scaled to fit a square box (pixel for pixel when enlarged, so that a 28x28 image
// stays sharp), its file name, the predicted class with its probability, and the true class
// when it is known: green when the prediction is right, red when it is wrong.
#include "plot_cairo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
  GRID_BOX = 200,       // the image's square
  GRID_LINE = 17,       // one line of text under it
  GRID_TILE_H = GRID_BOX + 6 + 3 * GRID_LINE,
  GRID_GAP = 12,
  GRID_COLUMNS = 5,
};
static const uint32_t GRID_RIGHT = 0x1A7F37, GRID_WRONG = 0xC62828, GRID_TEXT = 0x202020, GRID_QUIET = 0x606060;

void tlc_predict_grid_size(int n, int *width, int *height) {
  int cols = n < GRID_COLUMNS ? n : GRID_COLUMNS, rows = (n + GRID_COLUMNS - 1) / GRID_COLUMNS;
  *width = cols * GRID_BOX + (cols + 1) * GRID_GAP;
  *height = rows * GRID_TILE_H + (rows + 1) * GRID_GAP;
}

// img as a Cairo surface (RGB24: one 0x00RRGGBB word per pixel), or NULL when out of memory.
static cairo_surface_t *image_surface(const TlcCairo *c, const TlcImage *img) {
  cairo_surface_t *s = c->image_surface_create(CAIRO_FORMAT_RGB24, img->width, img->height);
  if (c->surface_status(s) != CAIRO_STATUS_SUCCESS) {
    c->surface_destroy(s);
    return NULL;
  }
  c->surface_flush(s);
  unsigned char *rows = c->image_surface_get_data(s);
  int stride = c->image_surface_get_stride(s);
  for (int y = 0; y < img->height; y++) {
    uint32_t *row = (uint32_t *)(rows + (size_t)y * stride);
    for (int x = 0; x < img->width; x++) {
      const uint8_t *px = img->pixels + ((size_t)y * img->width + x) * img->channels;
      uint8_t r = px[0], g = img->channels == 3 ? px[1] : px[0], b = img->channels == 3 ? px[2] : px[0];
      row[x] = (uint32_t)r << 16 | (uint32_t)g << 8 | b;
    }
  }
  c->surface_mark_dirty(s);
  return s;
}

// The image scaled to fit the box at (x0, y0), centred; 0 when it could not be made.
static int draw_image(TlcPicture *p, double x0, double y0, const TlcImage *img) {
  const TlcCairo *c = p->c;
  cairo_surface_t *s = image_surface(c, img);
  if (!s)
    return -1;
  double scale = (double)GRID_BOX / (img->width > img->height ? img->width : img->height);
  double w = img->width * scale, h = img->height * scale;
  c->save(p->cr);
  c->translate(p->cr, x0 + (GRID_BOX - w) / 2, y0 + (GRID_BOX - h) / 2);
  c->scale(p->cr, scale, scale);
  c->set_source_surface(p->cr, s, 0, 0);
  // Enlarged pixels stay squares (a 28x28 image stays legible); reduced ones are filtered.
  c->pattern_set_filter(c->get_source(p->cr), scale >= 1 ? CAIRO_FILTER_NEAREST : CAIRO_FILTER_GOOD);
  c->rectangle(p->cr, 0, 0, img->width, img->height);
  c->fill(p->cr);
  c->restore(p->cr);
  c->surface_destroy(s);
  return 0;
}

static const char *base_name(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

static int draw_tile(TlcPicture *p, double x0, double y0, const TlcGridTile *t) {
  bool known = t->truth != NULL, right = known && strcmp(t->truth, t->predicted) == 0;
  if (known) {   // a frame in the verdict's colour
    tlc_picture_color(p, right ? GRID_RIGHT : GRID_WRONG);
    p->c->rectangle(p->cr, x0 - 3, y0 - 3, GRID_BOX + 6, GRID_BOX + 6);
    p->c->fill(p->cr);
  }
  tlc_picture_color(p, 0xF0F0F0);
  p->c->rectangle(p->cr, x0, y0, GRID_BOX, GRID_BOX);
  p->c->fill(p->cr);
  if (draw_image(p, x0, y0, t->image) != 0)
    return -1;
  char line[512];
  double y = y0 + GRID_BOX + 6 + 13;
  TlcTextStyle quiet = {.size = 12, .max_width = GRID_BOX}, strong = {.size = 13, .bold = true, .max_width = GRID_BOX};
  tlc_picture_color(p, GRID_QUIET);
  tlc_picture_text(p, x0, y, &quiet, base_name(t->file));
  snprintf(line, sizeof line, "%s %.1f%%", t->predicted, 100 * t->probability);
  tlc_picture_color(p, !known ? GRID_TEXT : right ? GRID_RIGHT : GRID_WRONG);
  tlc_picture_text(p, x0, y + GRID_LINE, &strong, line);
  snprintf(line, sizeof line, known ? "true: %s" : "true class unknown", t->truth);
  tlc_picture_color(p, GRID_QUIET);
  tlc_picture_text(p, x0, y + 2 * GRID_LINE, &quiet, line);
  return 0;
}

int tlc_predict_grid_write(const char *path, const TlcGridTile *tiles, int n, TlcError *err) {
  int width, height;
  tlc_predict_grid_size(n, &width, &height);
  TlcPicture p;
  if (n < 1)
    return tlc_fail(err, "%s: no images to draw", path);
  if (tlc_picture_begin(&p, width, height, err) != 0)
    return -1;
  for (int i = 0; i < n; i++) {
    double x0 = GRID_GAP + (i % GRID_COLUMNS) * (GRID_BOX + GRID_GAP);
    double y0 = GRID_GAP + (double)(i / GRID_COLUMNS) * (GRID_TILE_H + GRID_GAP);
    if (draw_tile(&p, x0, y0, &tiles[i]) != 0) {
      tlc_picture_free(&p);
      return tlc_fail(err, "%s: out of memory drawing %s", path, tiles[i].file);
    }
  }
  return tlc_picture_write(&p, path, err);
}
