/*
 * draw.c — figures through Cairo: rectangles, polylines, circles, text in DejaVu Sans and
 * images on raster, SVG and PDF surfaces (draw.h).  Cairo anti-aliases lines, areas and
 * text; what it does not do for tensors — colormapping and resampling — stays in the
 * tensor kernels, and images arrive here already colored.
 */
#include "draw/draw.h"

#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <cairo.h>
#include <fontconfig/fontconfig.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FONT "DejaVu Sans"
#define PI 3.14159265358979323846

struct nv_draw {
  int kind;
  double w, h, scale;
  cairo_surface_t *surface;
  cairo_t *cr;
  char *buf;          /* SVG/PDF bytes written so far (the stream's target) */
  size_t len, cap;
};

static cairo_status_t append(void *closure, const unsigned char *data, unsigned int n) {
  nv_draw *d = closure;
  if (d->len + n > d->cap) {
    size_t cap = d->cap ? d->cap : 1 << 16;
    while (cap < d->len + n) cap *= 2;
    char *b = realloc(d->buf, cap);
    if (!b) return CAIRO_STATUS_NO_MEMORY;
    d->buf = b, d->cap = cap;
  }
  memcpy(d->buf + d->len, data, n);
  d->len += n;
  return CAIRO_STATUS_SUCCESS;
}

/* unhinted outlines and metrics: extents proportional to the size on every surface */
static void set_font(cairo_t *cr, double size, int flags) {
  cairo_select_font_face(cr, flags & NV_FONT_MONO ? FONT " Mono" : FONT, CAIRO_FONT_SLANT_NORMAL,
                         flags & NV_FONT_BOLD ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
}

static void font_options(cairo_t *cr) {
  cairo_font_options_t *fo = cairo_font_options_create();
  cairo_font_options_set_hint_metrics(fo, CAIRO_HINT_METRICS_OFF);
  cairo_font_options_set_hint_style(fo, CAIRO_HINT_STYLE_NONE);
  cairo_font_options_set_antialias(fo, CAIRO_ANTIALIAS_GRAY);
  cairo_set_font_options(cr, fo);
  cairo_font_options_destroy(fo);
}

nv_draw *nv_draw_new(int kind, double w, double h, double scale) {
  if (!(w >= 1 && h >= 1 && w <= 1e5 && h <= 1e5)) return nv_seterr("draw: size %gx%g points out of range", w, h), NULL;
  if (!(scale > 0 && scale <= 16)) return nv_seterr("draw: scale %g must be in (0, 16]", scale), NULL;
  if (kind == NV_DRAW_RASTER && (ceil(w * scale) * ceil(h * scale) > 4e8))
    return nv_seterr("draw: %gx%g points at scale %g is too many pixels", w, h, scale), NULL;
  nv_draw *d = calloc(1, sizeof *d);
  if (!d) return nv_seterr("draw: out of memory"), NULL;
  d->kind = kind, d->w = w, d->h = h, d->scale = kind == NV_DRAW_RASTER ? scale : 1;
  if (kind == NV_DRAW_RASTER)
    d->surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, (int)ceil(w * scale), (int)ceil(h * scale));
  else if (kind == NV_DRAW_SVG)
    d->surface = cairo_svg_surface_create_for_stream(append, d, w, h);
  else
    d->surface = cairo_pdf_surface_create_for_stream(append, d, w, h);
  if (cairo_surface_status(d->surface) != CAIRO_STATUS_SUCCESS) {
    nv_seterr("draw: %s", cairo_status_to_string(cairo_surface_status(d->surface)));
    nv_draw_free(d);
    return NULL;
  }
  d->cr = cairo_create(d->surface);
  cairo_scale(d->cr, d->scale, d->scale);
  font_options(d->cr);
  cairo_set_line_join(d->cr, CAIRO_LINE_JOIN_ROUND);
  cairo_set_line_cap(d->cr, CAIRO_LINE_CAP_BUTT);
  cairo_set_source_rgb(d->cr, 1, 1, 1);
  cairo_paint(d->cr);
  cairo_set_source_rgb(d->cr, 0, 0, 0);
  return d;
}

void nv_draw_free(nv_draw *d) {
  if (!d) return;
  if (d->cr) cairo_destroy(d->cr);
  if (d->surface) cairo_surface_destroy(d->surface);
  free(d->buf);
  free(d);
}

void nv_draw_color(nv_draw *d, double r, double g, double b, double a) { cairo_set_source_rgba(d->cr, r, g, b, a); }

static void paint(nv_draw *d, double lw) {
  if (lw > 0) {
    cairo_set_line_width(d->cr, lw);
    cairo_stroke(d->cr);
  } else cairo_fill(d->cr);
}

void nv_draw_rect(nv_draw *d, double x, double y, double w, double h, double lw) {
  cairo_rectangle(d->cr, x, y, w, h);
  paint(d, lw);
}

void nv_draw_path(nv_draw *d, const double *xy, int64_t n, int closed, double lw, double dash) {
  if (n < 1) return;
  cairo_new_path(d->cr);
  for (int64_t i = 0; i < n; i++) {
    double x = xy[2 * i], y = xy[2 * i + 1];
    if (!isfinite(x) || !isfinite(y)) continue;
    cairo_line_to(d->cr, x, y);
  }
  if (closed) cairo_close_path(d->cr);
  if (dash > 0) cairo_set_dash(d->cr, &dash, 1, 0);
  paint(d, lw);
  cairo_set_dash(d->cr, NULL, 0, 0);
}

void nv_draw_circle(nv_draw *d, double x, double y, double r, double lw) {
  cairo_new_path(d->cr);
  cairo_arc(d->cr, x, y, r, 0, 2 * PI);
  paint(d, lw);
}

void nv_draw_text(nv_draw *d, const char *s, double x, double y, double size, int flags, double ax, double ay,
                  double angle) {
  cairo_t *cr = d->cr;
  set_font(cr, size, flags);
  cairo_text_extents_t te;
  cairo_font_extents_t fe;
  cairo_text_extents(cr, s, &te);
  cairo_font_extents(cr, &fe);
  cairo_save(cr);
  cairo_translate(cr, x, y);
  if (angle != 0) cairo_rotate(cr, -angle * PI / 180);
  cairo_move_to(cr, -ax * te.x_advance, -ay * (fe.ascent + fe.descent) + fe.ascent);
  cairo_show_text(cr, s);
  cairo_restore(cr);
}

static cairo_t *measure_cr;   /* a 1x1 surface kept for measuring, made on first use */

void nv_draw_shutdown(void) {
  if (measure_cr) cairo_destroy(measure_cr), measure_cr = NULL;
  cairo_debug_reset_static_data();   /* font caches: freed while the libraries are still loaded */
  FcFini();
}

void nv_draw_text_extents(const char *s, double size, int flags, double *w, double *ascent, double *descent) {
  cairo_t *cr = measure_cr;
  /* a context in an error state (an invalid font matrix) measures everything as 0 from then
   * on: a fresh one instead */
  if (cr && cairo_status(cr) != CAIRO_STATUS_SUCCESS) cairo_destroy(cr), cr = measure_cr = NULL;
  if (!cr) {
    cairo_surface_t *sf = cairo_image_surface_create(CAIRO_FORMAT_A8, 1, 1);
    cr = measure_cr = cairo_create(sf);
    cairo_surface_destroy(sf);
    font_options(cr);
  }
  set_font(cr, size, flags);
  cairo_text_extents_t te;
  cairo_font_extents_t fe;
  cairo_text_extents(cr, s, &te);
  cairo_font_extents(cr, &fe);
  *w = te.x_advance, *ascent = fe.ascent, *descent = fe.descent;
}

static unsigned char byte(float v) {
  if (!(v > 0)) return 0;   /* NaN too */
  if (v >= 1) return 255;
  return (unsigned char)(v * 255 + 0.5f);
}

int nv_draw_image(nv_draw *d, const nv_tensor *img, double x, double y, double w, double h, int nearest, double alpha,
                  const nv_tensor *over, double over_alpha) {
  char a[200], b[200];
  if (img->ndim != 3 || img->size[0] < 1 || img->size[0] > 4 || img->size[1] < 1 || img->size[2] < 1 ||
      img->size[1] > 32767 || img->size[2] > 32767)
    return nv_seterr("draw: expected an image (C,H,W) with C in 1..4, got %s", nv_shape_str(a, sizeof a, img->ndim, img->size));
  int C = (int)img->size[0], H = (int)img->size[1], W = (int)img->size[2];
  if (over && (over->ndim != 3 || over->size[0] != 3 || over->size[1] != H || over->size[2] != W))
    return nv_seterr("draw: the image laid over %s must be (3,%d,%d), got %s", nv_shape_str(a, sizeof a, img->ndim, img->size),
                     H, W, nv_shape_str(b, sizeof b, over->ndim, over->size));
  float oa = (float)over_alpha, ia = 1 - oa;
  /* SVG has no nearest filter that browsers honour (Cairo writes none): an enlarged image of
   * cells is stored with each pixel repeated f x f times (up to 1024 pixels a side), so the
   * browser's smoothing blurs only the cells' edges, not the cells */
  int f = 1;
  if (d->kind == NV_DRAW_SVG && nearest) {
    double up = fmax(w / W, h / H);
    int cap = 1024 / (W > H ? W : H);
    if (up > 1.5) f = (int)fmin(ceil(up), cap > 1 ? cap : 1);
  }
  cairo_surface_t *sf = cairo_image_surface_create(C == 2 || C == 4 ? CAIRO_FORMAT_ARGB32 : CAIRO_FORMAT_RGB24, W * f,
                                                   H * f);
  if (cairo_surface_status(sf) != CAIRO_STATUS_SUCCESS) {
    cairo_surface_destroy(sf);
    return nv_seterr("draw: cannot make a %dx%d image", W, H);
  }
  cairo_surface_flush(sf);
  unsigned char *px = cairo_image_surface_get_data(sf);
  int rs = cairo_image_surface_get_stride(sf);
  const float *src = nv_data(img);
  const int64_t *st = img->stride;
  for (int i = 0; i < H; i++) {
    uint32_t *row = (uint32_t *)(px + (size_t)i * f * rs);
    for (int j = 0; j < W; j++) {
      const float *p = src + i * st[1] + j * st[2];
      uint32_t r, g, b, al = 255;
      float fr, fg, fb;
      if (C <= 2) fr = fg = fb = p[0];
      else fr = p[0], fg = p[st[0]], fb = p[2 * st[0]];
      if (over) {   /* (1 - a) image + a over, as nv.image.overlay blends */
        const float *q = nv_data(over) + i * over->stride[1] + j * over->stride[2];
        fr = ia * fr + oa * q[0], fg = ia * fg + oa * q[over->stride[0]], fb = ia * fb + oa * q[2 * over->stride[0]];
      }
      r = byte(fr), g = byte(fg), b = byte(fb);
      if (C == 2 || C == 4) {
        al = byte(p[(C - 1) * st[0]]);   /* premultiplied, as Cairo keeps ARGB32 */
        r = (r * al + 127) / 255, g = (g * al + 127) / 255, b = (b * al + 127) / 255;
      }
      const uint32_t v = al << 24 | r << 16 | g << 8 | b;
      for (int k = 0; k < f; k++) row[j * f + k] = v;
    }
    for (int k = 1; k < f; k++) memcpy(px + (size_t)(i * f + k) * rs, row, (size_t)W * f * 4);
  }
  cairo_surface_mark_dirty(sf);
  cairo_t *cr = d->cr;
  cairo_save(cr);
  cairo_rectangle(cr, x, y, w, h);
  cairo_clip(cr);
  cairo_translate(cr, x, y);
  cairo_scale(cr, w / (W * f), h / (H * f));
  cairo_set_source_surface(cr, sf, 0, 0);
  cairo_pattern_t *pat = cairo_get_source(cr);
  cairo_pattern_set_filter(pat, nearest ? CAIRO_FILTER_NEAREST : CAIRO_FILTER_BILINEAR);
  cairo_pattern_set_extend(pat, CAIRO_EXTEND_PAD);
  if (alpha >= 1) cairo_paint(cr);
  else cairo_paint_with_alpha(cr, alpha);
  cairo_restore(cr);
  cairo_surface_destroy(sf);
  return 1;
}

nv_tensor *nv_draw_tensor(nv_draw *d) {
  if (d->kind != NV_DRAW_RASTER) return nv_seterr("draw: not a raster surface"), NULL;
  cairo_surface_flush(d->surface);
  int W = cairo_image_surface_get_width(d->surface), H = cairo_image_surface_get_height(d->surface);
  int rs = cairo_image_surface_get_stride(d->surface);
  const unsigned char *px = cairo_image_surface_get_data(d->surface);
  int64_t size[3] = { 3, H, W };
  nv_tensor *t = nv_empty(3, size);
  if (!t) return NULL;
  float *o = nv_data(t);
  size_t plane = (size_t)H * W;
  float lv[256];
  for (int k = 0; k < 256; k++) lv[k] = k / 255.0f;
  for (int c = 0; c < 3; c++) {   /* one plane at a time: each written sequentially */
    int shift = 16 - 8 * c;
    float *op = o + c * plane;
    for (int i = 0; i < H; i++) {
      const uint32_t *row = (const uint32_t *)(px + (size_t)i * rs);
      float *orow = op + (size_t)i * W;
      for (int j = 0; j < W; j++) orow[j] = lv[(row[j] >> shift) & 255];
    }
  }
  return t;
}

int nv_draw_finish(nv_draw *d, char **bytes, size_t *len) {
  if (d->kind == NV_DRAW_RASTER) return nv_seterr("draw: a raster has no file form here");
  cairo_destroy(d->cr), d->cr = NULL;
  cairo_surface_finish(d->surface);
  cairo_status_t s = cairo_surface_status(d->surface);
  if (s != CAIRO_STATUS_SUCCESS) return nv_seterr("draw: %s", cairo_status_to_string(s));
  *bytes = d->buf, *len = d->len;
  d->buf = NULL, d->len = d->cap = 0;
  return 1;
}

nv_tensor *nv_colormap(const nv_tensor *map, const nv_tensor *lut) {
  char a[200];
  if (map->ndim != 2) return nv_seterr("colormap: expected an (H,W) map, got %s", nv_shape_str(a, sizeof a, map->ndim, map->size)), NULL;
  if (lut->ndim != 2 || lut->size[1] != 3 || lut->size[0] < 2)
    return nv_seterr("colormap: expected an (n,3) table, n >= 2, got %s", nv_shape_str(a, sizeof a, lut->ndim, lut->size)), NULL;
  int64_t H = map->size[0], W = map->size[1], n = lut->size[0];
  int64_t size[3] = { 3, H, W };
  nv_tensor *t = nv_empty(3, size);
  if (!t) return NULL;
  const float *m = nv_data(map), *l = nv_data(lut);
  float *o = nv_data(t);
  size_t plane = (size_t)H * W;
  for (int64_t i = 0; i < H; i++)
    for (int64_t j = 0; j < W; j++) {
      float v = m[i * map->stride[0] + j * map->stride[1]];
      if (!(v > 0)) v = 0;
      if (v > 1) v = 1;
      int64_t k = (int64_t)(v * (float)(n - 1) + 0.5f);
      const float *row = l + k * lut->stride[0];
      size_t p = (size_t)(i * W + j);
      o[p] = row[0], o[plane + p] = row[lut->stride[1]], o[2 * plane + p] = row[2 * lut->stride[1]];
    }
  return t;
}
