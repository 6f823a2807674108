/*
 * resample.c — interpolation (PyTorch's F.interpolate with size, modes 'nearest' and
 * 'bilinear') and padding (F.pad, modes constant, reflect, replicate), forward and backward.
 *
 * Dimension legend: planes = N*C (or the product of all leading dimensions), H,W input,
 * OH,OW output.  Every op maps each output cell to the input cell(s) it reads, so backward
 * is the same map run the other way, adding the output's gradient into those cells.
 */
#include "core/nv.h"
#include "kernels/nn_kernels.h"

#include <math.h>
#include <string.h>

/* ---- nearest --------------------------------------------------------------------------- */

/* The source step per output cell: 1/scale_factor when the caller gave one (PyTorch maps by
 * the scale, not by the rounded size), else in/out.  In float, as PyTorch computes it. */
static float step_of(int in, int out, float given) { return given > 0 ? given : (float)in / (float)out; }

/* PyTorch's 'nearest' source index: min(floor(dst * step), in - 1), in float as it does,
 * so the same cell is picked even where the product rounds. */
static int nearest_src(int dst, int in, float step) {
  if (step == 1.0f) return dst < in - 1 ? dst : in - 1;
  if (step == 0.5f) return dst >> 1;
  int src = (int)floorf((float)dst * step);
  return src < in - 1 ? src : in - 1;
}

void nv_interpolate_nearest_forward(float *out, const float *in, int64_t planes, int h, int w,
                                    int oh, int ow, float rh, float rw) {
  float sh = step_of(h, oh, rh), sw = step_of(w, ow, rw);
  for (int64_t pl = 0; pl < planes; pl++) {
    const float *p = in + pl * h * w;
    float *o = out + pl * oh * ow;
    for (int y = 0; y < oh; y++) {
      const float *row = p + (int64_t)nearest_src(y, h, sh) * w;
      for (int x = 0; x < ow; x++) o[(int64_t)y * ow + x] = row[nearest_src(x, w, sw)];
    }
  }
}

void nv_interpolate_nearest_backward(float *din, const float *dout, int64_t planes, int h,
                                     int w, int oh, int ow, float rh, float rw) {
  float sh = step_of(h, oh, rh), sw = step_of(w, ow, rw);
  for (int64_t pl = 0; pl < planes; pl++) {
    float *d = din + pl * h * w;
    const float *g = dout + pl * oh * ow;
    for (int y = 0; y < oh; y++) {
      float *row = d + (int64_t)nearest_src(y, h, sh) * w;
      for (int x = 0; x < ow; x++) row[nearest_src(x, w, sw)] += g[(int64_t)y * ow + x];
    }
  }
}

/* ---- bilinear -------------------------------------------------------------------------- */

/* PyTorch's linear source position of output cell dst along one axis:
 *   align_corners: src = dst * (in-1)/(out-1)   (0 when out == 1; a scale factor is ignored)
 *   otherwise:     src = max((dst + 0.5) * step - 0.5, 0), step = 1/scale_factor or in/out
 * gives the two neighbours i0 <= i1 (equal at the last cell) and the weight l1 of i1. */
static void linear_src(int dst, int in, int out, int align, float step, int *i0, int *i1, float *l1) {
  if (out == in && (align || step == 1.0f)) {
    *i0 = *i1 = dst, *l1 = 0.0f;
    return;
  }
  float src;
  if (align) {
    float scale = out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f;
    src = scale * (float)dst;
  } else {
    src = step * ((float)dst + 0.5f) - 0.5f;
    if (src < 0) src = 0; /* cells left of the first centre copy it */
  }
  int i = (int)floorf(src);
  if (i > in - 1) i = in - 1;
  float l = src - (float)i;
  *i0 = i, *i1 = i + (i < in - 1), *l1 = l < 0 ? 0 : l > 1 ? 1 : l;
}

/* out = (1-ly)*((1-lx)*x[y0,x0] + lx*x[y0,x1]) + ly*((1-lx)*x[y1,x0] + lx*x[y1,x1]) */
void nv_interpolate_bilinear_forward(float *out, const float *in, int64_t planes, int h, int w,
                                     int oh, int ow, int align_corners, float rh, float rw) {
  float sh = step_of(h, oh, rh), sw = step_of(w, ow, rw);
  for (int64_t pl = 0; pl < planes; pl++) {
    const float *p = in + pl * h * w;
    float *o = out + pl * oh * ow;
    for (int y = 0; y < oh; y++) {
      int y0, y1, x0, x1;
      float ly, lx;
      linear_src(y, h, oh, align_corners, sh, &y0, &y1, &ly);
      const float *r0 = p + (int64_t)y0 * w, *r1 = p + (int64_t)y1 * w;
      for (int x = 0; x < ow; x++) {
        linear_src(x, w, ow, align_corners, sw, &x0, &x1, &lx);
        o[(int64_t)y * ow + x] = (1 - ly) * ((1 - lx) * r0[x0] + lx * r0[x1]) +
                                 ly * ((1 - lx) * r1[x0] + lx * r1[x1]);
      }
    }
  }
}

void nv_interpolate_bilinear_backward(float *din, const float *dout, int64_t planes, int h,
                                      int w, int oh, int ow, int align_corners, float rh, float rw) {
  float sh = step_of(h, oh, rh), sw = step_of(w, ow, rw);
  for (int64_t pl = 0; pl < planes; pl++) {
    float *d = din + pl * h * w;
    const float *g = dout + pl * oh * ow;
    for (int y = 0; y < oh; y++) {
      int y0, y1, x0, x1;
      float ly, lx;
      linear_src(y, h, oh, align_corners, sh, &y0, &y1, &ly);
      float *r0 = d + (int64_t)y0 * w, *r1 = d + (int64_t)y1 * w;
      for (int x = 0; x < ow; x++) {
        linear_src(x, w, ow, align_corners, sw, &x0, &x1, &lx);
        float v = g[(int64_t)y * ow + x];
        r0[x0] += (1 - ly) * (1 - lx) * v;
        r0[x1] += (1 - ly) * lx * v;
        r1[x0] += ly * (1 - lx) * v;
        r1[x1] += ly * lx * v;
      }
    }
  }
}

/* ---- pad ------------------------------------------------------------------------------- */

int nv_pad_check(int h, int w, const int pad[4], nv_pad_mode mode) {
  if (pad[0] < 0 || pad[1] < 0 || pad[2] < 0 || pad[3] < 0)
    return nv_seterr("pad: padding (%d,%d,%d,%d) must be non-negative", pad[0], pad[1], pad[2],
                     pad[3]);
  if (h < 1 || w < 1) return nv_seterr("pad: cannot pad an empty input (%d,%d)", h, w);
  if (mode == NV_PAD_REFLECT && (pad[0] >= w || pad[1] >= w || pad[2] >= h || pad[3] >= h))
    return nv_seterr("pad: reflect padding (%d,%d,%d,%d) must be less than the input size "
                     "(%d,%d)", pad[0], pad[1], pad[2], pad[3], h, w);
  return 1;
}

/* The input index output index o reads along an axis of n cells with lo cells of padding
 * before it, or -1 for a constant cell.  reflect mirrors about the edge cell (-1 -> 1),
 * replicate clamps (-1 -> 0). */
static int pad_src(int o, int lo, int n, nv_pad_mode mode) {
  int i = o - lo;
  if (i >= 0 && i < n) return i;
  if (mode == NV_PAD_CONSTANT) return -1;
  if (mode == NV_PAD_REFLECT) return i < 0 ? -i : 2 * (n - 1) - i;
  return i < 0 ? 0 : n - 1;
}

void nv_pad_forward(float *out, const float *in, int64_t planes, int h, int w, const int pad[4],
                    nv_pad_mode mode, float value) {
  const int oh = h + pad[2] + pad[3], ow = w + pad[0] + pad[1];
  for (int64_t pl = 0; pl < planes; pl++) {
    const float *p = in + pl * h * w;
    float *o = out + pl * oh * ow;
    for (int y = 0; y < oh; y++) {
      float *orow = o + (int64_t)y * ow;
      int sy = pad_src(y, pad[2], h, mode);
      if (sy < 0) {
        for (int x = 0; x < ow; x++) orow[x] = value;
        continue;
      }
      const float *row = p + (int64_t)sy * w;
      for (int x = 0; x < pad[0]; x++) {
        int sx = pad_src(x, pad[0], w, mode);
        orow[x] = sx < 0 ? value : row[sx];
      }
      memcpy(orow + pad[0], row, sizeof(float) * w); /* the input itself */
      for (int x = pad[0] + w; x < ow; x++) {
        int sx = pad_src(x, pad[0], w, mode);
        orow[x] = sx < 0 ? value : row[sx];
      }
    }
  }
}

void nv_pad_backward(float *din, const float *dout, int64_t planes, int h, int w,
                     const int pad[4], nv_pad_mode mode) {
  const int oh = h + pad[2] + pad[3], ow = w + pad[0] + pad[1];
  for (int64_t pl = 0; pl < planes; pl++) {
    float *d = din + pl * h * w;
    const float *g = dout + pl * oh * ow;
    for (int y = 0; y < oh; y++) {
      int sy = pad_src(y, pad[2], h, mode);
      if (sy < 0) continue;
      float *row = d + (int64_t)sy * w;
      const float *grow = g + (int64_t)y * ow;
      for (int x = 0; x < ow; x++) {
        int sx = pad_src(x, pad[0], w, mode);
        if (sx >= 0) row[sx] += grow[x];
      }
    }
  }
}
