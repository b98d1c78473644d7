// image_jpeg.c: JPEG files through libjpeg-turbo (image_internal.h has the codec contract).
//
// libjpeg's default error handler calls exit(), so ours longjmps back with its message. Its
// warnings are about corrupt data (a premature end, a bad Huffman or arithmetic code, bytes
// where a marker belongs, a lost restart marker, an impossible progression), and libjpeg
// decodes past each by padding or guessing, so a damaged file would reach training half gray:
// every one is an error here. Three warnings are not about the data and are let through: a
// newer JFIF version, an unknown Adobe transform code, and too many scanlines asked for.
//
// CMYK and YCCK files are read as PIL reads them: Adobe's inverted CMYK, then convert("RGB"),
// whose exact arithmetic is in cmyk_to_rgb.
#include "image_internal.h"

#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

typedef struct Jpeg {
  struct jpeg_error_mgr mgr;   // first: libjpeg hands back a pointer to it
  jmp_buf back;
  char msg[JMSG_LENGTH_MAX + 64];
  struct jpeg_decompress_struct cinfo;
  JSAMPLE *row;                // one CMYK scanline
} Jpeg;

static void fail_exit(j_common_ptr cinfo) {
  Jpeg *j = (Jpeg *)cinfo->err;
  cinfo->err->format_message(cinfo, j->msg);
  longjmp(j->back, 1);
}

static bool about_the_data(int code) {
  return code != JWRN_JFIF_MAJOR && code != JWRN_ADOBE_XFORM && code != JWRN_TOO_MUCH_DATA;
}

static void on_message(j_common_ptr cinfo, int level) {
  Jpeg *j = (Jpeg *)cinfo->err;
  if (level != -1 || !about_the_data(cinfo->err->msg_code))
    return;   // trace messages, and warnings that do not concern the pixels
  if (cinfo->err->msg_code == JWRN_JPEG_EOF) {
    snprintf(j->msg, sizeof j->msg, "the file is truncated (premature end of JPEG data)");
  } else {
    char what[JMSG_LENGTH_MAX];
    cinfo->err->format_message(cinfo, what);
    snprintf(j->msg, sizeof j->msg, "corrupt data (libjpeg: %s)", what);
  }
  longjmp(j->back, 1);
}

// libjpeg's full-image coefficient buffer, which it keeps for progressive and multi-scan
// files: 64 coefficients of 2 bytes per 8x8 block of each component.
static int64_t coefficient_bytes(const struct jpeg_decompress_struct *c) {
  if (!c->progressive_mode && c->comps_in_scan >= c->num_components)
    return 0;
  int64_t bytes = 0;
  for (int i = 0; i < c->num_components; i++) {
    const jpeg_component_info *comp = &c->comp_info[i];
    int64_t w = comp->width_in_blocks + comp->h_samp_factor, h = comp->height_in_blocks + comp->v_samp_factor;
    bytes += w * h * (int64_t)sizeof(JBLOCK);
  }
  return bytes;
}

int image_jpeg_open(TlcImageReader *r, TlcError *err) {
  Jpeg *j = calloc(1, sizeof *j);
  if (!j)
    return tlc_fail(err, "%s: out of memory", r->name);
  r->codec = j;
  struct jpeg_decompress_struct *c = &j->cinfo;
  c->err = jpeg_std_error(&j->mgr);
  j->mgr.error_exit = fail_exit;
  j->mgr.emit_message = on_message;
  if (setjmp(j->back))
    return tlc_fail(err, "%s: not a readable JPEG: %s", r->name, j->msg);
  jpeg_create_decompress(c);
  jpeg_stdio_src(c, r->file);
  jpeg_read_header(c, TRUE);
  bool cmyk = c->jpeg_color_space == JCS_CMYK || c->jpeg_color_space == JCS_YCCK;
  r->header.kind = c->num_components == 1 ? TLC_IMAGE_GRAY : cmyk ? TLC_IMAGE_CMYK : TLC_IMAGE_RGB;
  c->out_color_space = c->num_components == 1 ? JCS_GRAYSCALE : cmyk ? JCS_CMYK : JCS_RGB;
  r->stored = c->num_components == 1 ? 1 : 3;
  r->header.width = (int32_t)c->image_width, r->header.height = (int32_t)c->image_height;
  // Beside the coefficients: a CMYK row, and libjpeg's few rows per component of work space.
  r->codec_bytes = coefficient_bytes(c) + (int64_t)c->image_width * (4 + 32 * c->num_components);
  return 0;
}

// PIL: "CMYK;I" (Adobe's inverted samples) unpacked, then cmyk2rgb with MULDIV255.
static uint8_t muldiv255(int a, int b) {
  int t = a * b + 128;
  return (uint8_t)(((t >> 8) + t) >> 8);
}

static void cmyk_to_rgb(const JSAMPLE *in, uint8_t *out, JDIMENSION width) {
  for (JDIMENSION x = 0; x < width; x++, in += 4, out += 3) {
    int nk = in[3];   // 255 - (255 - in[3])
    for (int k = 0; k < 3; k++) {
      int v = nk - muldiv255(255 - in[k], nk);
      out[k] = (uint8_t)(v < 0 ? 0 : v);
    }
  }
}

int image_jpeg_decode(TlcImageReader *r, uint8_t *pixels, TlcError *err) {
  Jpeg *j = r->codec;
  struct jpeg_decompress_struct *c = &j->cinfo;
  bool cmyk = c->out_color_space == JCS_CMYK;
  if (cmyk && !(j->row = malloc((size_t)c->image_width * 4)))
    return tlc_fail(err, "%s: out of memory", r->name);
  if (setjmp(j->back))
    return tlc_fail(err, "%s: not a readable JPEG: %s", r->name, j->msg);
  jpeg_start_decompress(c);
  int want = cmyk ? 4 : r->stored;
  if (c->output_width != (JDIMENSION)r->header.width || c->output_height != (JDIMENSION)r->header.height ||
      c->output_components != want)
    return tlc_fail(err, "%s: not a readable JPEG: it decodes to %ux%u with %d components, not %dx%d with %d", r->name,
                    c->output_width, c->output_height, c->output_components, r->header.width, r->header.height, want);
  size_t stride = (size_t)c->output_width * (size_t)r->stored;
  while (c->output_scanline < c->output_height) {
    uint8_t *dst = pixels + c->output_scanline * stride;
    JSAMPROW row = cmyk ? j->row : dst;
    if (jpeg_read_scanlines(c, &row, 1) != 1)
      return tlc_fail(err, "%s: not a readable JPEG: no scanline came back", r->name);
    if (cmyk)
      cmyk_to_rgb(j->row, dst, c->output_width);
  }
  jpeg_finish_decompress(c);   // reads on to the end marker: damage after the last scan is found too
  return 0;
}

void image_jpeg_close(TlcImageReader *r) {
  Jpeg *j = r->codec;
  jpeg_destroy_decompress(&j->cinfo);   // safe on a struct libjpeg never set up (calloc'd)
  free(j->row);
  free(j);
  r->codec = NULL;
}
