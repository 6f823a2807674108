/*
 * error.c — the thread's last error message, and shapes as text for messages.
 */
#include "core/nv.h"

#include <stdarg.h>
#include <stdio.h>

/* ---- errors ----------------------------------------------------------------------- */
static _Thread_local char errbuf[1024];

int nv_seterr(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, sizeof errbuf, fmt, ap);
  va_end(ap);
  return 0;
}

const char *nv_last_error(void) { return errbuf[0] ? errbuf : "unknown error"; }

char *nv_shape_str(char *buf, size_t n, int ndim, const int64_t *size) {
  size_t k = 0;
  k += (size_t)snprintf(buf + k, n - k, "(");
  for (int i = 0; i < ndim && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, i ? ",%lld" : "%lld", (long long)size[i]);
  if (k < n) snprintf(buf + k, n - k, ")");
  return buf;
}
