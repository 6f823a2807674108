/*
 * draw.c — raster primitives on (C,H,W) image tensors for figures: filled rectangles
 * (clipped, optionally blended) and anti-aliasing-free thick lines.  Plots, labels and
 * diagrams are built from these, so a figure is a few C calls, not a loop per pixel in Lua.
 */
#include "draw.h"

#include <math.h>
#include <stdlib.h>

int nv_draw_check(const nv_tensor *img) {
  char a[200];
  if (img->ndim != 3 || img->size[0] < 1 || img->size[0] > 4)
    return nv_seterr("draw: expected an image (C,H,W) with C in 1..4, got %s",
                     nv_shape_str(a, sizeof a, img->ndim, img->size));
  for (int i = 0; i < 3; i++)
    if (img->size[i] > 1 && img->stride[i] == 0)
      return nv_seterr("draw: the image is an expanded view (its pixels share memory); draw on a copy");
  return 1;
}

/* rect x, y (0-based, top-left), w, h; clipped to the image; dst = (1-a) dst + a color */
static void rect(nv_tensor *img, int64_t x, int64_t y, int64_t w, int64_t h, const float *rgb, float alpha) {
  int64_t H = img->size[1], W = img->size[2];
  int64_t x0 = x < 0 ? 0 : x, y0 = y < 0 ? 0 : y;
  int64_t x1 = x + w > W ? W : x + w, y1 = y + h > H ? H : y + h;
  if (x0 >= x1 || y0 >= y1) return;
  float *d = nv_data(img);
  for (int64_t c = 0; c < img->size[0]; c++) {
    float v = rgb[c < 3 ? c : 3];
    for (int64_t yy = y0; yy < y1; yy++) {
      float *row = d + c * img->stride[0] + yy * img->stride[1];
      if (alpha >= 1.0f) for (int64_t xx = x0; xx < x1; xx++) row[xx * img->stride[2]] = v;
      else for (int64_t xx = x0; xx < x1; xx++) {
        float *p = row + xx * img->stride[2];
        *p = (1.0f - alpha) * *p + alpha * v;
      }
    }
  }
}

void nv_fill_rects(nv_tensor *img, const int64_t *r, int64_t n, const float *rgb, float alpha) {
  for (int64_t k = 0; k < n; k++) rect(img, r[4 * k], r[4 * k + 1], r[4 * k + 2], r[4 * k + 3], rgb, alpha);
}

/* A polyline through n points (x, y pairs, 0-based pixel centres), each segment stepped
 * along its longer axis with a square pen of the given thickness. */
void nv_draw_polyline(nv_tensor *img, const double *xy, int64_t n, const float *rgb, int thick, float alpha) {
  if (thick < 1) thick = 1;
  int64_t half = thick / 2;
  for (int64_t k = 0; k + 1 < n || (n == 1 && k == 0); k++) {
    double xa = xy[2 * k], ya = xy[2 * k + 1];
    double xb = n == 1 ? xa : xy[2 * k + 2], yb = n == 1 ? ya : xy[2 * k + 3];
    if (!isfinite(xa) || !isfinite(ya) || !isfinite(xb) || !isfinite(yb)) continue;
    double dx = xb - xa, dy = yb - ya;
    double len = fabs(dx) > fabs(dy) ? fabs(dx) : fabs(dy);
    int64_t steps = (int64_t)ceil(len);
    if (steps > 100000) steps = 100000;   /* a wild coordinate must not hang the caller */
    for (int64_t s = 0; s <= steps; s++) {
      double t = steps ? (double)s / (double)steps : 0.0;
      int64_t x = (int64_t)floor(xa + t * dx + 0.5), y = (int64_t)floor(ya + t * dy + 0.5);
      rect(img, x - half, y - half, thick, thick, rgb, alpha);
    }
    if (n == 1) break;
  }
}
