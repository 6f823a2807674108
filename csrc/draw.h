/* draw.h — raster primitives on (C,H,W) image tensors (draw.c).  Coordinates are 0-based
 * pixels, x to the right and y down; everything is clipped to the image. */
#ifndef NV_DRAW_H
#define NV_DRAW_H

#include "nv.h"

/* 1 when img is (C,H,W) with C in 1..4, else 0 with the error set */
int nv_draw_check(const nv_tensor *img);
/* n rectangles r[4k..4k+3] = x, y, w, h, filled with rgb[0..3] blended by alpha */
void nv_fill_rects(nv_tensor *img, const int64_t *r, int64_t n, const float *rgb, float alpha);
/* polyline through n points xy[2k], xy[2k+1] with a square pen `thick` pixels wide */
void nv_draw_polyline(nv_tensor *img, const double *xy, int64_t n, const float *rgb, int thick, float alpha);

#endif
