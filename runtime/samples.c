// samples.c: a PNG grid of transformed training samples with their class names
// (tlcrt.h, section "samples.c"), so a user can see what the network is fed.
//
// Tiles are the samples as the transforms left them (the normalisation undone), enlarged by
// a whole factor to at least 64 pixels wide so that a label fits under a 28x28 image, each
// with its class name (or label number) in a strip below, cut to the tile's width.
#include "tlcrt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SAMPLES_MIN_TILE = 64, SAMPLES_GAP = 4 };

static uint8_t to_byte(float v) {
  float x = roundf(v * 255.0f);
  return (uint8_t)(x < 0 ? 0 : x > 255 ? 255 : x);
}

// Tile k at (x0, y0): sample k, scale times larger, always RGB.
static void draw_tile(TlcImage *grid, int x0, int y0, int scale, const float *image, int channels, int height,
                      int width, const float mean[4], const float std[4]) {
  size_t plane = (size_t)height * width;
  for (int y = 0; y < height * scale; y++)
    for (int x = 0; x < width * scale; x++) {
      uint8_t *p = grid->pixels + ((size_t)(y0 + y) * grid->width + x0 + x) * 3;
      size_t k = (size_t)(y / scale) * width + x / scale;
      for (int c = 0; c < 3; c++) {
        int src = channels == 3 ? c : 0;
        p[c] = to_byte(image[src * plane + k] * std[src] + mean[src]);
      }
    }
}

int tlc_samples_write(const char *path, const float *images, const int32_t *labels, int n, int channels, int height,
                      int width, const float mean[4], const float std[4], char *const *class_names, TlcError *err) {
  if (n < 1 || (channels != 1 && channels != 3))
    return tlc_fail(err, "%s: no samples to draw, or %d channels (1 or 3 can be drawn)", path, channels);
  int scale = width >= SAMPLES_MIN_TILE ? 1 : (SAMPLES_MIN_TILE + width - 1) / width;
  int tile_w = width * scale, tile_h = height * scale + TLC_FONT_CELL_H + 2;
  int cols = (int)ceil(sqrt((double)n)), rows = (n + cols - 1) / cols;
  TlcImage grid = {.width = cols * (tile_w + SAMPLES_GAP) + SAMPLES_GAP,
                   .height = rows * (tile_h + SAMPLES_GAP) + SAMPLES_GAP, .channels = 3};
  grid.pixels = malloc((size_t)grid.width * grid.height * 3);
  if (!grid.pixels)
    return tlc_fail(err, "%s: out of memory for a %dx%d grid", path, grid.width, grid.height);
  memset(grid.pixels, 32, (size_t)grid.width * grid.height * 3);
  static const uint8_t white[3] = {255, 255, 255};
  char label[256];
  for (int k = 0; k < n; k++) {
    int x0 = SAMPLES_GAP + (k % cols) * (tile_w + SAMPLES_GAP), y0 = SAMPLES_GAP + (k / cols) * (tile_h + SAMPLES_GAP);
    draw_tile(&grid, x0, y0, scale, images + (size_t)k * channels * height * width, channels, height, width, mean, std);
    if (class_names)
      snprintf(label, sizeof label, "%s", class_names[labels[k]]);
    else
      snprintf(label, sizeof label, "%d", labels[k]);
    size_t fit = (size_t)(tile_w / TLC_FONT_CELL_W);
    if (strlen(label) > fit)
      label[fit] = '\0';
    // The font draws into the whole grid; the label was cut so that it stays under its tile.
    tlc_font_draw(&grid, x0, y0 + height * scale + 1, label, white);
  }
  int rc = tlc_image_write_png(path, &grid, err);
  tlc_image_free(&grid);
  return rc;
}
