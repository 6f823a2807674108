/*
 * conv_backend.c — which kernels run a 2-d convolution: oneDNN (onednn.c), Winograd's
 * F(2x2,3x3) (winograd.c) or im2col + gemm (conv.c).  The backends know nothing of each
 * other; the choice, and the settings that steer it (nv_config: winograd, onednn,
 * prefer_winograd), are read here only.
 *
 * Forward and input gradient: oneDNN first unless Winograd is preferred for the shape, then
 * Winograd when eligible, else im2col.  Weight gradient: oneDNN, else im2col.
 */
#include "core/config.h"
#include "core/nv.h"
#include "kernels/nn_kernels.h"


/* the 2x2 output tiles of a batch */
static int64_t out_tiles(const nv_conv2d_shape *s) { return (int64_t)s->n * ((s->oh + 1) / 2) * ((s->ow + 1) / 2); }

int nv_winograd_eligible(const nv_conv2d_shape *s) {
  if (!nv_config_get()->conv_winograd) return 0;
  if (s->kh != 3 || s->kw != 3 || s->sh != 1 || s->sw != 1 || s->dh != 1 || s->dw != 1 || s->groups != 1)
    return 0;
  if (s->ph > 2 || s->pw > 2 || s->cin < 16 || s->cout < 16) return 0;
  return out_tiles(s) >= 32;
}

/* oneDNN's Winograd kernels need AVX-512; below it, its direct AVX2 kernels lost to this
 * file's F(2x2,3x3) on VGG16's and ResNet-18's 3x3 layers (1.1-2.1x forward, 1.2-1.5x with
 * the input gradient), except on maps of fewer than 64 tiles (batch 1 at 14x14 and 7x7) */
int nv_winograd_prefer_auto(void) {
  static int v = -1;
  if (v < 0) {
    __builtin_cpu_init();
    v = !__builtin_cpu_supports("avx512f");
  }
  return v;
}

int nv_winograd_preferred(const nv_conv2d_shape *s) {
  const int setting = nv_config_get()->conv_prefer_winograd;
  int prefer = setting < 0 ? nv_winograd_prefer_auto() : setting;
  if (!prefer || !nv_winograd_eligible(s)) return 0;
  return setting == 1 || out_tiles(s) >= 64;
}

int nv_conv2d_onednn_first(const nv_conv2d_shape *s) {
  return nv_config_get()->conv_onednn && !nv_winograd_preferred(s);
}

/* out = out + add, then max(0, .) when relu */
NV_HOT static void add_relu(float *restrict out, const float *restrict add, size_t n, int relu) {
  if (relu)
    for (size_t i = 0; i < n; i++) {
      float v = out[i] + add[i];
      out[i] = v > 0.0f ? v : 0.0f;
    }
  else
    for (size_t i = 0; i < n; i++) out[i] += add[i];
}

void nv_conv2d_forward(float *out, const float *in, const float *weight, const float *bias,
                       const nv_conv2d_shape *s, const nv_conv2d_extra *ex) {
  if (nv_conv2d_onednn_first(s) && nv_onednn_forward(out, in, weight, bias, s, ex)) return;
  const float *add = ex ? ex->add : NULL;
  nv_conv2d_extra plain = {.wid = ex ? ex->wid : (nv_weight_id){0}, .relu = ex && ex->relu && !add};
  if (nv_winograd_eligible(s)) nv_winograd_forward(out, in, weight, bias, s, &plain);
  else nv_im2col_forward(out, in, weight, bias, s, plain.relu);
  if (add) add_relu(out, add, (size_t)s->n * s->cout * s->oh * s->ow, ex->relu);
}

void nv_conv2d_backward(float *din, float *dweight, float *dbias, const float *dout,
                        const float *in, const float *weight, const nv_conv2d_shape *s,
                        const nv_weight_id *wid) {
  if (din && nv_conv2d_onednn_first(s) && nv_onednn_backward_data(din, dout, weight, s, wid)) din = NULL;
  if (dweight && nv_config_get()->conv_onednn && nv_onednn_backward_weights(dweight, dbias, dout, in, s))
    dweight = dbias = NULL;
  if (!din && !dweight && !dbias) return;
  if (din && nv_winograd_eligible(s)) {
    nv_winograd_backward_input(din, dout, weight, s, wid);
    din = NULL;
    if (!dweight && !dbias) return;
  }
  nv_im2col_backward(din, dweight, dbias, dout, in, weight, s);
}
