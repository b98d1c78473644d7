// error.c: tlc_fail, the one way libtlcrt reports a failure. The message goes into the
// caller's TlcError (truncated to fit, always NUL-terminated) and the return value is -1,
// so a failing path reads `return tlc_fail(err, "...", ...)`. Only executables exit.
#include "tlcrt.h"

#include <stdarg.h>
#include <stdio.h>

int tlc_fail(TlcError *err, const char *fmt, ...) {
  // A NULL err is tolerated so that callers which only want the status can pass none.
  if (err != NULL) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
  }
  return -1;
}
