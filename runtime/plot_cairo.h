// plot_cairo.h: the pictures tlc draws (a trainer's --predict-grid; tlc report's curves and
// confusion matrix) are drawn with Cairo, loaded at run time with dlopen.
//
// Why Cairo: it is a C library in every distribution (libcairo2), draws antialiased lines and
// text (its "toy" text API finds a sans-serif font through fontconfig) and writes PNG itself,
// in process, so a picture needs no second program and no text protocol (gnuplot) and a grid of
// photographs is as easy as a plot. Why dlopen: a trainer is copied to GPU machines that have
// a driver and nothing else, and Cairo cannot be linked statically in a useful way (it brings
// pixman, freetype, fontconfig and X11, and fontconfig needs its configuration and font files
// on the machine anyway); loaded when a picture is asked for, it costs a trainer nothing, `ldd`
// still shows only the C library, and a machine without it gets a message saying what to
// install before any work is done. tlc itself uses the same table, so there is one way to draw.
//
// The header needs <cairo.h> (libcairo2-dev) for the functions' types; tlcrt.h does not
// include it, so generated trainers compile without it.
#ifndef TLC_PLOT_CAIRO_H
#define TLC_PLOT_CAIRO_H

#include <cairo.h>

#include "tlcrt.h"

// The Cairo functions the pictures call, each loaded as cairo_NAME.
#define TLC_CAIRO_FUNCTIONS(X)                                                                                       \
  X(create) X(destroy) X(status) X(status_to_string) X(save) X(restore) X(translate) X(scale) X(rotate)              \
  X(set_source_rgb) X(set_source_surface) X(get_source) X(pattern_set_filter) X(paint) X(rectangle) X(fill)          \
  X(stroke) X(move_to) X(line_to) X(arc) X(new_path) X(set_line_width) X(set_dash) X(select_font_face)               \
  X(set_font_size) X(show_text) X(text_extents) X(image_surface_create) X(image_surface_get_data)                    \
  X(image_surface_get_stride) X(surface_flush) X(surface_mark_dirty) X(surface_status) X(surface_destroy)            \
  X(surface_write_to_png_stream)

typedef struct TlcCairo {
#define TLC_CAIRO_POINTER(name) __typeof__(cairo_##name) *name;
  TLC_CAIRO_FUNCTIONS(TLC_CAIRO_POINTER)
#undef TLC_CAIRO_POINTER
} TlcCairo;

// libcairo.so.2, loaded on the first call; NULL, with err saying what to install, without it.
const TlcCairo *tlc_cairo_load(TlcError *err);

// A picture being drawn: an RGB surface, white, and its context.
typedef struct TlcPicture {
  const TlcCairo *c;
  cairo_surface_t *surface;
  cairo_t *cr;
  int width, height;
} TlcPicture;

int tlc_picture_begin(TlcPicture *p, int width, int height, TlcError *err);
// Writes the picture as an 8-bit RGB PNG, atomically (tlc_write_atomic), and frees it.
int tlc_picture_write(TlcPicture *p, const char *path, TlcError *err);
void tlc_picture_free(TlcPicture *p);   // after an error; tlc_picture_write frees already

void tlc_picture_color(TlcPicture *p, uint32_t rgb);   // 0xRRGGBB for what is drawn next

typedef enum { TLC_ALIGN_LEFT, TLC_ALIGN_CENTER, TLC_ALIGN_RIGHT } TlcAlign;
typedef struct TlcTextStyle {
  double size;          // pixels
  bool bold;
  TlcAlign align;       // where x is: the text's left end, middle or right end
  double max_width;     // longer text is cut and ends in an ellipsis; 0: no limit
} TlcTextStyle;
// Draws text with its baseline at y in the current colour. Bytes that are not UTF-8 draw as
// '?' (a folder name can hold any byte, and Cairo stops drawing at invalid UTF-8). Returns
// the width drawn.
double tlc_picture_text(TlcPicture *p, double x, double y, const TlcTextStyle *style, const char *text);
double tlc_picture_text_width(TlcPicture *p, const TlcTextStyle *style, const char *text);   // as it would be drawn

#endif
