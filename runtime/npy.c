// npy.c: NumPy's .npy format, version 1.0, for 2-D float32 arrays.
//
// The format (numpy.lib.format): the magic "\x93NUMPY", the version bytes 1 and 0, a
// 2-byte little-endian header length H, then H bytes of a Python dict literal
// {'descr': '<f4', 'fortran_order': False, 'shape': (rows, cols), } padded with spaces and
// ended by a newline so that the data starts at a multiple of 64 bytes; then the values in
// C order. numpy.load reads it with no pickle involved.
#include "tlcrt.h"

#include <inttypes.h>
#include <string.h>

int tlc_npy_save_f32(const char *path, const float *data, int64_t rows, int64_t cols, TlcError *err) {
  if (rows < 0 || cols < 0 || (cols && rows > INT64_MAX / 4 / cols))
    return tlc_fail(err, "%s: cannot write a %" PRId64 " x %" PRId64 " array", path, rows, cols);
  char header[128];
  const size_t prefix = 10;  // magic, version, length
  int len = snprintf(header, sizeof header, "{'descr': '<f4', 'fortran_order': False, 'shape': (%" PRId64
                     ", %" PRId64 "), }", rows, cols);
  size_t total = ((prefix + (size_t)len + 1) + 63) / 64 * 64;
  size_t dict = total - prefix;
  memset(header + len, ' ', dict - 1 - (size_t)len);
  header[dict - 1] = '\n';
  uint8_t start[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (uint8_t)(dict & 0xff), (uint8_t)(dict >> 8)};
  TlcBytes parts[] = {{start, sizeof start}, {header, dict}, {data, (size_t)(rows * cols) * sizeof(float)}};
  return tlc_write_atomic(path, parts, 3, err);
}
