/*
 * nn_ops.h — neural-network ops on tensors (nn.c), recording the graph like ops.h.
 * New references or NULL with the error set; arguments borrowed; pairs are {h, w}.
 */
#ifndef NV_NN_OPS_H
#define NV_NN_OPS_H

#include "ops/ops.h"

nv_tensor *nv_conv2d(nv_tensor *x, nv_tensor *w, nv_tensor *b, const int stride[2], const int pad[2],
                     const int dil[2], int groups, int relu, nv_tensor *add, int channels_last);
nv_tensor *nv_max_pool2d(nv_tensor *x, const int k[2], const int stride[2], const int pad[2],
                         const int dil[2], int ceil_mode);
nv_tensor *nv_avg_pool2d(nv_tensor *x, const int k[2], const int stride[2], const int pad[2],
                         int ceil_mode, int count_include_pad);
nv_tensor *nv_adaptive_avg_pool2d(nv_tensor *x, int oh, int ow);
/* rm, rv, w, b may be NULL; running stats are updated in place when training */
nv_tensor *nv_batch_norm(nv_tensor *x, nv_tensor *rm, nv_tensor *rv, nv_tensor *w, nv_tensor *b,
                         int training, double momentum, double eps);
/* rh, rw: the source step per output cell (1/scale_factor), or 0 to map by the sizes */
nv_tensor *nv_interpolate(nv_tensor *x, int oh, int ow, int bilinear, int align_corners, float rh, float rw);
/* pad: {left, right} (npad 2) or {left, right, top, bottom} (npad 4); mode nv_pad_mode */
nv_tensor *nv_pad(nv_tensor *x, const int pad[4], int npad, int mode, float value);

#endif
