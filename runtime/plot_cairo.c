// plot_cairo.c: Cairo through dlopen, and what every picture does with it (plot_cairo.h says
// why): a white RGB canvas, text cut to a width, the PNG written atomically.
#include "plot_cairo.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

static TlcCairo cairo_table;
static bool cairo_loaded;

const TlcCairo *tlc_cairo_load(TlcError *err) {
  if (cairo_loaded)
    return &cairo_table;
  void *lib = dlopen("libcairo.so.2", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    tlc_fail(err, "pictures are drawn with the Cairo library, which this machine lacks (libcairo.so.2 not found): "
             "install libcairo2 (Debian, Ubuntu) or cairo (Fedora, Arch)");
    return NULL;
  }
  const char *missing = NULL;
#define TLC_CAIRO_LOAD(name)                                                                                         \
  if (!missing && !(*(void **)&cairo_table.name = dlsym(lib, "cairo_" #name)))                                        \
    missing = "cairo_" #name;
  TLC_CAIRO_FUNCTIONS(TLC_CAIRO_LOAD)
#undef TLC_CAIRO_LOAD
  if (missing) {
    tlc_fail(err, "libcairo.so.2 lacks %s: it is older than the Cairo 1.12 tlc draws with", missing);
    dlclose(lib);
    return NULL;
  }
  cairo_loaded = true;
  return &cairo_table;
}

int tlc_picture_begin(TlcPicture *p, int width, int height, TlcError *err) {
  memset(p, 0, sizeof *p);
  if (!(p->c = tlc_cairo_load(err)))
    return -1;
  p->width = width, p->height = height;
  p->surface = p->c->image_surface_create(CAIRO_FORMAT_RGB24, width, height);
  p->cr = p->c->create(p->surface);
  if (p->c->status(p->cr) != CAIRO_STATUS_SUCCESS) {
    tlc_fail(err, "cannot draw a %dx%d picture: %s", width, height, p->c->status_to_string(p->c->status(p->cr)));
    tlc_picture_free(p);
    return -1;
  }
  tlc_picture_color(p, 0xFFFFFF);
  p->c->paint(p->cr);
  p->c->select_font_face(p->cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  return 0;
}

void tlc_picture_free(TlcPicture *p) {
  if (p->cr)
    p->c->destroy(p->cr);
  if (p->surface)
    p->c->surface_destroy(p->surface);
  p->cr = NULL, p->surface = NULL;
}

void tlc_picture_color(TlcPicture *p, uint32_t rgb) {
  p->c->set_source_rgb(p->cr, (rgb >> 16 & 255) / 255.0, (rgb >> 8 & 255) / 255.0, (rgb & 255) / 255.0);
}

typedef struct PngBuffer {
  unsigned char *data;
  size_t size, cap;
} PngBuffer;

static cairo_status_t png_append(void *closure, const unsigned char *data, unsigned int length) {
  PngBuffer *b = closure;
  if (b->size + length > b->cap) {
    size_t cap = (b->size + length) * 2;
    unsigned char *grown = realloc(b->data, cap);
    if (!grown)
      return CAIRO_STATUS_NO_MEMORY;
    b->data = grown, b->cap = cap;
  }
  memcpy(b->data + b->size, data, length);
  b->size += length;
  return CAIRO_STATUS_SUCCESS;
}

// The PNG is made in memory, then written through tlc_write_atomic, so that a failure leaves
// whatever was at path before.
int tlc_picture_write(TlcPicture *p, const char *path, TlcError *err) {
  cairo_status_t s = p->c->status(p->cr);
  PngBuffer png = {0};
  if (s == CAIRO_STATUS_SUCCESS) {
    p->c->surface_flush(p->surface);
    s = p->c->surface_write_to_png_stream(p->surface, png_append, &png);
  }
  int rc = s == CAIRO_STATUS_SUCCESS ? tlc_write_atomic(path, &(TlcBytes){png.data, png.size}, 1, err)
                                     : tlc_fail(err, "%s: Cairo failed to draw it: %s", path, p->c->status_to_string(s));
  free(png.data);
  tlc_picture_free(p);
  return rc;
}

// The length of the valid UTF-8 sequence at s, or 0 when it is not one.
static size_t utf8_length(const unsigned char *s) {
  size_t n = s[0] < 0x80 ? 1 : (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3 : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
  if (n == 2 && s[0] < 0xC2)   // overlong
    return 0;
  for (size_t i = 1; i < n; i++)
    if ((s[i] & 0xC0) != 0x80)
      return 0;
  return n;
}

// text with every byte that is not part of valid UTF-8 (and every control character) as '?'.
static char *clean_utf8(const char *text) {
  size_t len = strlen(text);
  char *out = malloc(len + 1);
  if (!out)
    return NULL;
  size_t o = 0;
  for (const unsigned char *s = (const unsigned char *)text; *s;) {
    size_t n = utf8_length(s);
    if (n == 0 || (n == 1 && *s < 32)) {
      out[o++] = '?', s++;
      continue;
    }
    memcpy(out + o, s, n);
    o += n, s += n;
  }
  out[o] = '\0';
  return out;
}

static double text_width(TlcPicture *p, const char *text) {
  cairo_text_extents_t e;
  p->c->text_extents(p->cr, text, &e);
  return e.x_advance;
}

// Cuts clean (valid UTF-8, in a buffer with room for 3 more bytes) at a character boundary
// so that it and an ellipsis fit max_width.
static void cut_to_fit(TlcPicture *p, char *clean, double max_width) {
  static const char ellipsis[] = "\xE2\x80\xA6";
  size_t keep = strlen(clean);
  while (keep > 0) {
    do   // back to the start of the previous character
      keep--;
    while (keep > 0 && ((unsigned char)clean[keep] & 0xC0) == 0x80);
    memcpy(clean + keep, ellipsis, sizeof ellipsis);
    if (text_width(p, clean) <= max_width)
      return;
  }
  memcpy(clean, ellipsis, sizeof ellipsis);
}

// text as it will be drawn in style: valid UTF-8, cut to style->max_width; NULL when out of
// memory. *width is its width.
static char *fitted(TlcPicture *p, const TlcTextStyle *style, const char *text, double *width) {
  char *clean = clean_utf8(text);
  char *room = clean ? realloc(clean, strlen(clean) + 4) : NULL;
  if (!room) {
    free(clean);
    return NULL;
  }
  p->c->select_font_face(p->cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
                         style->bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  p->c->set_font_size(p->cr, style->size);
  *width = text_width(p, room);
  if (style->max_width > 0 && *width > style->max_width) {
    cut_to_fit(p, room, style->max_width);
    *width = text_width(p, room);
  }
  return room;
}

double tlc_picture_text_width(TlcPicture *p, const TlcTextStyle *style, const char *text) {
  double width = 0;
  free(fitted(p, style, text, &width));
  return width;
}

double tlc_picture_text(TlcPicture *p, double x, double y, const TlcTextStyle *style, const char *text) {
  double width = 0;
  char *clean = fitted(p, style, text, &width);
  if (!clean)
    return 0;
  double left = style->align == TLC_ALIGN_LEFT ? x : style->align == TLC_ALIGN_CENTER ? x - width / 2 : x - width;
  p->c->move_to(p->cr, left, y);
  p->c->show_text(p->cr, clean);
  p->c->new_path(p->cr);
  free(clean);
  return width;
}
