/*
 * warp.c — rotation and scaling of image batches about their centre by bilinear sampling,
 * with backward (the transposed sampling), for the robustness transforms of activation
 * maximization.  Source coordinate of output pixel p: c + R(-angle) (p - c) / scale;
 * samples outside the input read the border pixel (replicate), so rotated images keep
 * their statistics at the corners.
 */
#include <math.h>
#include <string.h>

#include "ops/ops.h"

static int warp_backward(nv_node *n, nv_tensor *out, nv_tensor *gout, nv_tensor **gin);

typedef struct { int64_t y0, x0, y1, x1; float wy, wx; } tap;

static tap source(int64_t oy, int64_t ox, int64_t H, int64_t W, double ca, double sa, double inv) {
  double cy = (H - 1) / 2.0, cx = (W - 1) / 2.0;
  double dy = (oy - cy) * inv, dx = (ox - cx) * inv;
  /* the inverse rotation, counter-clockwise as displayed (y points down) */
  double sy = cy + ca * dy + sa * dx, sx = cx - sa * dy + ca * dx;
  if (sy < 0) sy = 0;
  if (sy > H - 1) sy = H - 1;
  if (sx < 0) sx = 0;
  if (sx > W - 1) sx = W - 1;
  tap t;
  t.y0 = (int64_t)floor(sy); t.x0 = (int64_t)floor(sx);
  t.y1 = t.y0 + 1 < H ? t.y0 + 1 : t.y0; t.x1 = t.x0 + 1 < W ? t.x0 + 1 : t.x0;
  t.wy = (float)(sy - t.y0); t.wx = (float)(sx - t.x0);
  return t;
}

static void warp_planes(float *out, const float *in, int64_t planes, int64_t H, int64_t W, double angle,
                        double scale, int backward) {
  double ca = cos(angle), sa = sin(angle), inv = 1.0 / scale;
  for (int64_t oy = 0; oy < H; oy++)
    for (int64_t ox = 0; ox < W; ox++) {
      tap t = source(oy, ox, H, W, ca, sa, inv);
      float w00 = (1 - t.wy) * (1 - t.wx), w01 = (1 - t.wy) * t.wx, w10 = t.wy * (1 - t.wx), w11 = t.wy * t.wx;
      int64_t o = oy * W + ox, a = t.y0 * W + t.x0, b = t.y0 * W + t.x1, c = t.y1 * W + t.x0, d = t.y1 * W + t.x1;
      for (int64_t p = 0; p < planes; p++) {
        const int64_t base = p * H * W;
        if (!backward) {
          out[base + o] = w00 * in[base + a] + w01 * in[base + b] + w10 * in[base + c] + w11 * in[base + d];
        } else {   /* in is dout, out is din: the transpose of the sampling */
          float g = in[base + o];
          out[base + a] += w00 * g; out[base + b] += w01 * g; out[base + c] += w10 * g; out[base + d] += w11 * g;
        }
      }
    }
}

nv_tensor *nv_rotate(nv_tensor *x, double angle, double scale) {
  char s[200];
  if (x->ndim < 2) return nv_seterr("rotate: expected (..., H, W), got %s", nv_shape_str(s, sizeof s, x->ndim, x->size)), NULL;
  if (!(scale > 0) || !isfinite(1.0 / scale) || !isfinite(scale) || !isfinite(angle))
    return nv_seterr("rotate: scale must be positive and finite, and angle finite"), NULL;
  int64_t H = x->size[x->ndim - 2], W = x->size[x->ndim - 1];
  int64_t planes = H * W > 0 ? nv_numel(x) / (H * W) : 0;
  nv_tensor *xc = nv_contiguous_data(x);
  nv_tensor *o = xc ? nv_empty_like(x) : NULL;
  if (o && planes) warp_planes(nv_data(o), nv_data(xc), planes, H, W, angle, scale, 0);
  nv_release(xc);
  if (o && nv_needs_grad(1, &x)) {
    nv_node *n = nv_op_node(NV_OP_WARP, warp_backward, 1, &x);
    if (!n) { nv_release(o); return NULL; }
    n->f[0] = angle;
    n->f[1] = scale;
    nv_attach(o, n);
  }
  return o;
}

static int warp_backward(nv_node *n, nv_tensor *out, nv_tensor *gout, nv_tensor **gin) {
  nv_tensor *x = n->in[0];
  if (!nv_need(n, 0)) return 1;
  int64_t H = x->size[x->ndim - 2], W = x->size[x->ndim - 1];
  int64_t planes = H * W > 0 ? nv_numel(x) / (H * W) : 0;
  nv_tensor *g = nv_zeros_like(x);
  if (!g) return 0;
  if (planes) warp_planes(nv_data(g), nv_data(gout), planes, H, W, n->f[0], n->f[1], 1);
  gin[0] = g;
  return 1;
}
