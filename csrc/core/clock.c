/*
 * clock.c — a monotonic clock in seconds.
 */
#define _POSIX_C_SOURCE 200809L
#include "core/nv.h"

#include <time.h>

double nv_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
