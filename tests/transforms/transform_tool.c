// transform_tool.c: runs one libtlcrt transform with fixed choices on a PNM image, so that
// compare_torchvision.py can hold the result against torchvision/PIL on the same input.
//
//   transform_tool IN.pnm OUT OP [ARGS...]
//
// OP and ARGS (OUT is a PNM image unless said otherwise):
//   eval RESIZE CROP             resize, center_crop, ImageNet normalize through
//                                tlc_transform_run; OUT is CHW float32, native byte order
//   resize W H                   tlc_image_resize to exactly W x H
//   resize_hw H W                resize([H, W]) through TlcTransform (aspect ratio not kept)
//   resize_short S | center_crop S | hflip | vflip | grayscale_to_rgb
//   random_crop S PAD TOP LEFT   the S x S box at (TOP, LEFT) of the padded image
//   random_resized_crop S TOP LEFT H W
//   rotate DEGREES
//   brightness F | contrast F | saturation F | hue F
//   jitter ORDER B C S H         ORDER: four digits, 0 brightness 1 contrast 2 saturation 3 hue
#include "tlcrt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int read_token(FILE *f, char *buf, size_t cap) {
  int ch = fgetc(f);
  for (;;) {
    while (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r')
      ch = fgetc(f);
    if (ch != '#')
      break;
    while (ch != '\n' && ch != EOF)
      ch = fgetc(f);
  }
  size_t n = 0;
  while (ch != EOF && ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r' && n + 1 < cap) {
    buf[n++] = (char)ch;
    ch = fgetc(f);
  }
  buf[n] = 0;
  return n > 0 ? 0 : -1;  // the one whitespace after the last token has been consumed
}

static int read_pnm(const char *path, TlcImage *img) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return fprintf(stderr, "transform_tool: cannot open %s\n", path), -1;
  char magic[8], w[16], h[16], maxval[16];
  int bad = read_token(f, magic, sizeof magic) || read_token(f, w, sizeof w) || read_token(f, h, sizeof h) ||
            read_token(f, maxval, sizeof maxval) || strcmp(maxval, "255") != 0 ||
            (strcmp(magic, "P5") != 0 && strcmp(magic, "P6") != 0);
  if (!bad) {
    img->width = atoi(w), img->height = atoi(h), img->channels = magic[1] == '5' ? 1 : 3;
    size_t bytes = (size_t)img->width * img->height * img->channels;
    img->pixels = malloc(bytes);
    bad = img->pixels == NULL || fread(img->pixels, 1, bytes, f) != bytes;
  }
  fclose(f);
  if (bad)
    fprintf(stderr, "transform_tool: %s is not an 8-bit binary PGM/PPM\n", path);
  return bad ? -1 : 0;
}

static int write_pnm(const char *path, const TlcImage *img) {
  FILE *f = fopen(path, "wb");
  if (f == NULL)
    return -1;
  fprintf(f, "P%c\n%d %d\n255\n", img->channels == 1 ? '5' : '6', img->width, img->height);
  size_t bytes = (size_t)img->width * img->height * img->channels;
  int bad = fwrite(img->pixels, 1, bytes, f) != bytes;
  return fclose(f) != 0 || bad ? -1 : 0;
}

static int run_eval(const TlcImage *src, int resize, int crop, const char *out_path, TlcError *err) {
  TlcTransform tf[3] = {
      {.kind = TLC_TF_RESIZE, .size = resize},
      {.kind = TLC_TF_CENTER_CROP, .size = crop},
      {.kind = TLC_TF_NORMALIZE, .mean = {0.485f, 0.456f, 0.406f}, .std = {0.229f, 0.224f, 0.225f}},
  };
  size_t count = (size_t)src->channels * crop * crop;
  float *out = malloc(count * sizeof *out);
  TlcTransformScratch scratch = {0};
  TlcRng rng;
  tlc_rng_seed(&rng, 1);
  int rc = out == NULL || tlc_transform_run(tf, 3, src, &rng, &scratch, out, src->channels, crop, crop, err);
  tlc_transform_scratch_free(&scratch);
  FILE *f = rc ? NULL : fopen(out_path, "wb");
  if (f != NULL) {
    rc = fwrite(out, sizeof *out, count, f) != count;
    rc |= fclose(f) != 0;
  } else {
    rc = 1;
  }
  free(out);
  return rc;
}

// Fills t and d for OP from argv; returns -1 on a usage error.
static int parse_op(int argc, char **argv, TlcTransform *t, TlcTransformDraw *d, const TlcImage *src) {
  const char *op = argv[0];
  memset(t, 0, sizeof *t);
  memset(d, 0, sizeof *d);
  d->width = src->width, d->height = src->height;
#define ARG(i) (argc > (i) ? atof(argv[i]) : 0.0)
  if (strcmp(op, "resize_short") == 0) {
    *t = (TlcTransform){.kind = TLC_TF_RESIZE, .size = (int32_t)ARG(1)};
  } else if (strcmp(op, "resize_hw") == 0) {
    *t = (TlcTransform){.kind = TLC_TF_RESIZE, .height = (int32_t)ARG(1), .width = (int32_t)ARG(2)};
  } else if (strcmp(op, "center_crop") == 0) {
    TlcRng rng;
    TlcError err;
    *t = (TlcTransform){.kind = TLC_TF_CENTER_CROP, .size = (int32_t)ARG(1)};
    if (tlc_transform_draw(t, src->width, src->height, &rng, d, &err))
      return fprintf(stderr, "transform_tool: %s\n", err.msg), -1;
  } else if (strcmp(op, "random_crop") == 0) {
    *t = (TlcTransform){.kind = TLC_TF_RANDOM_CROP, .size = (int32_t)ARG(1), .pad = (int32_t)ARG(2)};
    d->top = (int32_t)ARG(3), d->left = (int32_t)ARG(4), d->width = d->height = t->size;
  } else if (strcmp(op, "random_resized_crop") == 0) {
    *t = (TlcTransform){.kind = TLC_TF_RANDOM_RESIZED_CROP, .size = (int32_t)ARG(1)};
    d->top = (int32_t)ARG(2), d->left = (int32_t)ARG(3), d->height = (int32_t)ARG(4), d->width = (int32_t)ARG(5);
  } else if (strcmp(op, "hflip") == 0 || strcmp(op, "vflip") == 0) {
    *t = (TlcTransform){.kind = op[0] == 'h' ? TLC_TF_HFLIP : TLC_TF_VFLIP, .p = 1};
    d->flip = true;
  } else if (strcmp(op, "grayscale_to_rgb") == 0) {
    t->kind = TLC_TF_GRAYSCALE_TO_RGB;
  } else if (strcmp(op, "rotate") == 0) {
    t->kind = TLC_TF_ROTATE;
    d->angle = ARG(1);
  } else if (strcmp(op, "jitter") == 0 && argc == 6 && strlen(argv[1]) == 4) {
    t->kind = TLC_TF_COLOR_JITTER;
    for (int i = 0; i < 4; i++) {
      d->order[i] = argv[1][i] - '0';
      d->factor[i] = (float)ARG(2 + i);
      d->enabled[i] = true;
    }
  } else {
    static const char *single[4] = {"brightness", "contrast", "saturation", "hue"};
    for (int i = 0; i < 4; i++)
      if (strcmp(op, single[i]) == 0) {
        t->kind = TLC_TF_COLOR_JITTER;
        d->order[0] = i, d->order[1] = d->order[2] = d->order[3] = -1;
        d->factor[i] = (float)ARG(1);
        d->enabled[i] = true;
        return 0;
      }
    return -1;
  }
#undef ARG
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 4)
    return fprintf(stderr, "usage: transform_tool IN.pnm OUT OP [ARGS...]\n"), 2;
  TlcImage src;
  if (read_pnm(argv[1], &src))
    return 1;
  TlcError err = {{0}};
  int rc;
  if (strcmp(argv[3], "eval") == 0 && argc == 6) {
    rc = run_eval(&src, atoi(argv[4]), atoi(argv[5]), argv[2], &err);
  } else if (strcmp(argv[3], "resize") == 0 && argc == 6) {
    TlcImage dst = {atoi(argv[4]), atoi(argv[5]), src.channels, NULL};
    dst.pixels = malloc((size_t)dst.width * dst.height * dst.channels);
    rc = dst.pixels == NULL || tlc_image_resize(&src, &dst, &err) || write_pnm(argv[2], &dst);
    free(dst.pixels);
  } else {
    TlcTransform t;
    TlcTransformDraw d;
    if (parse_op(argc - 3, argv + 3, &t, &d, &src))
      return fprintf(stderr, "transform_tool: bad operation '%s' or arguments\n", argv[3]), 2;
    TlcImage dst = {0};
    size_t cap = 0;
    rc = tlc_transform_apply(&t, &d, &src, &dst, &cap, &err) || write_pnm(argv[2], &dst);
    free(dst.pixels);
  }
  free(src.pixels);
  if (rc)
    fprintf(stderr, "transform_tool: %s failed%s%s\n", argv[3], err.msg[0] ? ": " : "", err.msg);
  return rc ? 1 : 0;
}
