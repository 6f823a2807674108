/* draw.h — figures drawn with Cairo (draw.c): one drawing path for raster images (read back
 * as (3,H,W) tensors), SVG and PDF.  Coordinates are in points, 0-based, x to the right and
 * y down; a raster surface has scale pixels per point (matplotlib's dpi / 72).  Text is
 * DejaVu Sans through fontconfig/FreeType, unhinted, so its extents scale exactly with the
 * size and a layout measured once holds on every surface.
 *
 *   nv_draw *d = nv_draw_new(NV_DRAW_RASTER, 320, 200, 2);    // 640x400 pixels
 *   nv_draw_color(d, 0, 0, 0, 1);
 *   nv_draw_text(d, "loss", 160, 4, 12, 0, 0.5, 0, 0);         // centred on x = 160
 *   nv_tensor *img = nv_draw_tensor(d);                         // new reference
 *   nv_draw_free(d);
 */
#ifndef NV_DRAW_H
#define NV_DRAW_H

#include <stddef.h>

#include "core/nv.h"

enum { NV_DRAW_RASTER = 0, NV_DRAW_SVG = 1, NV_DRAW_PDF = 2 };
enum { NV_FONT_BOLD = 1, NV_FONT_MONO = 2 };   /* text flags: DejaVu Sans (Bold) or Sans Mono */

typedef struct nv_draw nv_draw;

/* a new surface w x h points (scale pixels per point for rasters), white; NULL with the
 * error set when the size is out of range or Cairo fails.  Owned by the caller. */
nv_draw *nv_draw_new(int kind, double w, double h, double scale);
/* frees d and its surface; NULL passes (idempotent through the binding's __gc) */
void nv_draw_free(nv_draw *d);

void nv_draw_color(nv_draw *d, double r, double g, double b, double a);
/* lw > 0 strokes the outline with that line width (points), lw <= 0 fills */
void nv_draw_rect(nv_draw *d, double x, double y, double w, double h, double lw);
/* polyline through n points xy[2k], xy[2k+1]; closed joins the ends; dash > 0 dashes */
void nv_draw_path(nv_draw *d, const double *xy, int64_t n, int closed, double lw, double dash);
void nv_draw_circle(nv_draw *d, double x, double y, double r, double lw);
/* s (UTF-8) at size points; (x, y) is the point of the text box (width x ascent+descent of
 * the font) at fractions (ax, ay) of its width and height, e.g. (0.5, 0) = top centre;
 * angle in degrees counter-clockwise about that point */
void nv_draw_text(nv_draw *d, const char *s, double x, double y, double size, int flags, double ax, double ay,
                  double angle);
/* width of s and the font's ascent and descent at size points (no surface needed) */
void nv_draw_text_extents(const char *s, double size, int flags, double *w, double *ascent, double *descent);
/* img (C,H,W), C in 1..4 (gray, gray+alpha, RGB, RGBA), values clamped to [0,1], drawn into
 * the box x, y, w, h; nearest-neighbour when nearest, else bilinear; with opacity alpha.
 * over (NULL or (3,H,W) like img) is blended in first: (1 - over_alpha) img + over_alpha over.
 * 0 with the error set. */
int nv_draw_image(nv_draw *d, const nv_tensor *img, double x, double y, double w, double h, int nearest, double alpha,
                  const nv_tensor *over, double over_alpha);
/* the raster's pixels as a new (3,H,W) tensor in [0,1]; NULL with the error set */
nv_tensor *nv_draw_tensor(nv_draw *d);
/* finishes an SVG or PDF surface; *bytes (malloc'd, the caller frees) and *len hold the file.
 * 0 with the error set. */
int nv_draw_finish(nv_draw *d, char **bytes, size_t *len);

/* frees Cairo's and fontconfig's caches (the host's exit: the binding calls it when the Lua
 * state closes, before the library is unloaded, so leak checkers see nothing left) */
void nv_draw_shutdown(void);

/* colormapping (no Cairo): map (H,W) values clamped to [0,1] (NaN as 0) through lut (n,3)
 * rows of RGB, index round(v * (n-1)), to a new (3,H,W) image; NULL with the error set */
nv_tensor *nv_colormap(const nv_tensor *map, const nv_tensor *lut);

#endif
