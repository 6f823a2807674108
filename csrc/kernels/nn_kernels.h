/*
 * nn_kernels.h — neural-network compute kernels on raw, contiguous float buffers:
 * conv2d (conv.c), max/avg/adaptive-avg pooling (pool.c), batch norm and softmax (norm.c),
 * interpolation and padding (resample.c).  No tensors, no graph: the autograd and the
 * binding check shapes, allocate, and call these.  Semantics are PyTorch's functions of the
 * same name (torch.nn.functional.*), including their padding, ceil-mode and divisor rules.
 *
 * Dimension legend: N batch, C channels, H height, W width (input), OH/OW output height and
 * width, KH/KW kernel height and width.  Every buffer is contiguous row-major (N,C,H,W).
 * A "plane" is one (H,W) image of one channel of one sample; pooling, interpolation and
 * padding work plane by plane, so they take the number of planes (N*C, or the product of
 * all leading dimensions).
 *
 * Conventions:
 *  - Outputs come first; gradients have a d prefix (dout is the gradient of the output).
 *  - Forward functions OVERWRITE their outputs.
 *  - Backward functions ACCUMULATE into their gradient outputs (din += ...), so the caller
 *    zero-initialises them (or passes an existing gradient to add to).  A NULL gradient
 *    output is skipped (e.g. dweight when the weight needs no gradient).
 *  - The *_init/_check functions validate a geometry with PyTorch's rules and return 1, or
 *    0 with nv_seterr() set to a message naming the op and the shapes.  The kernels
 *    themselves never fail and never allocate, except conv2d's grow-only scratch
 *    (nv_scratch slots 0 and 1), which the caller may reserve beforehand with
 *    nv_conv2d_scratch() so that a failure happens before anything else is allocated.
 *
 * Worked example (one 3x3 convolution, padding 1, on a (1,3,32,32) image):
 *     nv_conv2d_shape s = {.n = 1, .cin = 3, .h = 32, .w = 32, .cout = 16, .kh = 3, .kw = 3,
 *                          .sh = 1, .sw = 1, .ph = 1, .pw = 1, .dh = 1, .dw = 1, .groups = 1};
 *     if (!nv_conv2d_init(&s) || !nv_conv2d_scratch(&s, 1)) return 0;  // s.oh = s.ow = 32
 *     nv_conv2d_forward(out, in, weight, bias, &s, NULL);              // out: (1,16,32,32)
 *     memset(din, 0, ...); memset(dweight, 0, ...); memset(dbias, 0, ...);
 *     nv_conv2d_backward(din, dweight, dbias, dout, in, weight, &s, NULL);
 */
#ifndef NV_NN_KERNELS_H
#define NV_NN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* Output size of a sliding window, shared by conv and pooling:
 *   out = floor((in + 2*pad - dil*(k-1) - 1) / stride) + 1            (ceil_mode = 0)
 *   out = ceil (...same...) + 1, minus one if the last window would start at or past
 *         in + pad (PyTorch: the last window must start inside the input or left padding).
 * May return <= 0 when the window does not fit; callers treat that as an error. */
int64_t nv_pool_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dil,
                         int ceil_mode);

/* ---- conv2d (conv.c) ------------------------------------------------------------------
 * out[n,co,oh,ow] = bias[co] + sum_{ci in group(co), i, j}
 *     weight[co, ci - g*Cin/G, i, j] * in[n, ci, oh*sh - ph + i*dh, ow*sw - pw + j*dw]
 * (zero outside the input).  weight is (Cout, Cin/groups, KH, KW), bias (Cout) or NULL. */
typedef struct nv_conv2d_shape {
  int n, cin, h, w;          /* input (N,Cin,H,W) */
  int cout, kh, kw;          /* weight (Cout, Cin/groups, KH, KW) */
  int sh, sw;                /* stride (height, width), >= 1 */
  int ph, pw;                /* zero padding on both sides, >= 0 */
  int dh, dw;                /* dilation, >= 1 */
  int groups;                /* divides Cin and Cout; groups == Cin is depthwise */
  int oh, ow;                /* output (N,Cout,OH,OW): set by nv_conv2d_init */
} nv_conv2d_shape;

/* Checks s and sets s->oh, s->ow.  Returns 1, or 0 with the error set. */
int nv_conv2d_init(nv_conv2d_shape *s);
/* Reserves the im2col scratch the forward (backward = 0) or backward (backward = 1) pass
 * needs.  Returns 1, or 0 with the error set (out of memory).  Optional: the kernels reserve
 * it themselves, and abort() if that fails. */
int nv_conv2d_scratch(const nv_conv2d_shape *s, int backward);
/* Optional extras of a convolution.  wid names the weight's values (the storage's uid, its
 * version and the weight's offset in it; uid 0 = unnamed): the Winograd path keeps the
 * transformed kernels of named weights and reuses them while the version stays.  add: a
 * (N,Cout,OH,OW) buffer added to the output (a residual), or NULL.  relu: the output is
 * max(0, . + add) (both inference only: the graph needs the plain output). */
typedef struct nv_weight_id { uint64_t uid; int64_t version, off; } nv_weight_id;
typedef struct nv_conv2d_extra { nv_weight_id wid; int relu; const float *add; int layout; } nv_conv2d_extra;
/* layout bits: the input, the output or the residual is channels-last, (N,H,W,C) in memory
 * (oneDNN only: nv_onednn_forward; nv_conv2d_forward needs them all NCHW, layout 0) */
enum { NV_IN_NHWC = 1, NV_OUT_NHWC = 2, NV_ADD_NHWC = 4 };
/* out (N,Cout,OH,OW) = conv2d(in (N,Cin,H,W), weight, bias or NULL); ex may be NULL. */
void nv_conv2d_forward(float *out, const float *in, const float *weight, const float *bias,
                       const nv_conv2d_shape *s, const nv_conv2d_extra *ex);
/* 3x3 stride-1 convolutions by Winograd's F(2x2,3x3) (winograd.c), which nv_conv2d_forward
 * and nv_conv2d_backward choose themselves when nv_winograd_eligible(s): dense, 16 or more
 * channels each way, padding <= 2, enough 2x2 output tiles; nv_config's conv_winograd = 0 turns
 * it off (nv.config{winograd = false}). */
int nv_winograd_eligible(const nv_conv2d_shape *s);
/* Whether an eligible convolution runs Winograd before oneDNN is tried (forward and input
 * gradient): nv_config's conv_prefer_winograd 1 yes, 0 no, -1 (the default) when the CPU has no
 * AVX-512, where oneDNN has only direct kernels and F(2x2,3x3) measured faster, from 64
 * output tiles on (nv.config{prefer_winograd = true | false | "auto"}). */
int nv_winograd_preferred(const nv_conv2d_shape *s);
int nv_winograd_prefer_auto(void);
/* whether oneDNN is tried first for the forward and the input gradient (conv_backend.c) */
int nv_conv2d_onednn_first(const nv_conv2d_shape *s);
int nv_winograd_scratch(const nv_conv2d_shape *s, int backward);
void nv_winograd_forward(float *out, const float *in, const float *weight, const float *bias,
                         const nv_conv2d_shape *s, const nv_conv2d_extra *ex);
/* din (N,Cin,H,W) += the input gradient of dout (N,Cout,OH,OW) */
void nv_winograd_backward_input(float *din, const float *dout, const float *weight, const nv_conv2d_shape *s,
                                const nv_weight_id *wid);
/* The kept transformed kernels: drop those of storage uid (when it is freed), or all (uid 0);
 * the bytes kept, at most nv_winograd_cache_limit (default 256 MiB). */
void nv_winograd_forget(uint64_t uid);
size_t nv_winograd_cache_bytes(void);
extern size_t nv_winograd_cache_limit;
/* Convolutions on oneDNN (onednn.c), which nv_conv2d_forward and nv_conv2d_backward try
 * first unless nv_config's conv_onednn = 0 (nv.config{onednn = false}) or, for the forward and the
 * input gradient, nv_winograd_preferred(s); each returns 1 when it did
 * the work, 0 when oneDNN has no primitive for it (then the built-in kernels run).  The
 * backward ones accumulate, like nv_conv2d_backward. */
int nv_onednn_forward(float *out, const float *in, const float *weight, const float *bias,
                      const nv_conv2d_shape *s, const nv_conv2d_extra *ex);
int nv_onednn_backward_data(float *din, const float *dout, const float *weight, const nv_conv2d_shape *s,
                            const nv_weight_id *wid);
int nv_onednn_backward_weights(float *dweight, float *dbias, const float *dout, const float *in,
                               const nv_conv2d_shape *s);
/* the implementation oneDNN chose for kind 0 forward, 1 input gradient, 2 weight gradient
 * (e.g. "brg:avx512_core"), or NULL */
const char *nv_onednn_impl(const nv_conv2d_shape *s, int kind);
/* the reordered weights kept (bytes), and dropping them: of storage uid, or all (uid 0,
 * which also releases the primitives) */
size_t nv_onednn_cache_bytes(void);
void nv_onednn_forget(uint64_t uid);
extern size_t nv_onednn_cache_limit;
void nv_onednn_set_threads(int n);
/* The im2col + gemm backend (conv.c), which conv_backend.c falls back to: relu clamps the
 * output at 0; the backward accumulates into whichever of din, dweight, dbias is not NULL. */
void nv_im2col_forward(float *out, const float *in, const float *weight, const float *bias,
                       const nv_conv2d_shape *s, int relu);
void nv_im2col_backward(float *din, float *dweight, float *dbias, const float *dout,
                        const float *in, const float *weight, const nv_conv2d_shape *s);
/* din (N,Cin,H,W), dweight (Cout,Cin/groups,KH,KW), dbias (Cout): each accumulated, each
 * may be NULL.  in is needed for dweight, weight for din. */
void nv_conv2d_backward(float *din, float *dweight, float *dbias, const float *dout,
                        const float *in, const float *weight, const nv_conv2d_shape *s,
                        const nv_weight_id *wid);

/* ---- pooling (pool.c) -----------------------------------------------------------------*/
typedef struct nv_pool2d_shape {
  int n, c, h, w;            /* input (N,C,H,W); the N*C planes are pooled independently */
  int kh, kw;                /* window */
  int sh, sw;                /* stride (PyTorch's default is the window size) */
  int ph, pw;                /* implicit padding, at most half the window: -inf for max, 0 for avg */
  int dh, dw;                /* dilation: max_pool2d only, 1 for avg_pool2d */
  int ceil_mode;             /* ceil instead of floor in the output size */
  int count_include_pad;     /* avg_pool2d: padded cells count in the divisor */
  int oh, ow;                /* output (N,C,OH,OW): set by nv_pool2d_init */
} nv_pool2d_shape;

/* Checks s with PyTorch's rules for op ("max_pool2d" or "avg_pool2d") and sets oh, ow. */
int nv_pool2d_init(nv_pool2d_shape *s, const char *op);

/* out (N,C,OH,OW) = max over each window; indices (N,C,OH,OW) receives the flat position
 * ih*W + iw of each maximum within its input plane (PyTorch's return_indices values), kept
 * for backward (NULL: not wanted, not written).  Ties go to the first maximum in row-major window order; NaN wins.  A dilated
 * window that misses the input entirely (possible: k 2, pad 1, dilation 3, W 2) gives -inf
 * and index -1, which backward skips. */
void nv_max_pool2d_forward(float *out, int32_t *indices, const float *in,
                           const nv_pool2d_shape *s);
/* The same maxima, value only, on channels-last memory: in (N,H,W,C), out (N,OH,OW,C). */
void nv_max_pool2d_forward_nhwc(float *out, const float *in, const nv_pool2d_shape *s);
/* din[plane, indices[o]] += dout[o]. */
void nv_max_pool2d_backward(float *din, const float *dout, const int32_t *indices,
                            const nv_pool2d_shape *s);

/* out = sum of the window's cells inside the input / divisor, where the window is first
 * clipped to the padded input (in + pad on each side) and the divisor is that clipped area
 * when count_include_pad, else the number of cells inside the input. */
void nv_avg_pool2d_forward(float *out, const float *in, const nv_pool2d_shape *s);
void nv_avg_pool2d_backward(float *din, const float *dout, const nv_pool2d_shape *s);

/* Adaptive average pooling of planes (H,W) to (OH,OW): output cell i averages input rows
 * floor(i*H/OH) .. ceil((i+1)*H/OH) - 1 (and likewise for columns). */
void nv_adaptive_avg_pool2d_forward(float *out, const float *in, int64_t planes, int h, int w,
                                    int oh, int ow);
void nv_adaptive_avg_pool2d_backward(float *din, const float *dout, int64_t planes, int h,
                                     int w, int oh, int ow);

/* ---- batch norm and softmax (norm.c) --------------------------------------------------
 * Batch norm views the input (N,C) or (N,C,L...) as (N,C,S), S the product of the trailing
 * sizes (1 for (N,C)), and normalises each channel over its N*S values:
 *   out = (x - mean) * invstd * weight + bias,   invstd = 1 / sqrt(var + eps).
 * training = 1: mean and the biased var are the batch's (N*S must be > 1, which
 *   nv_batch_norm_check enforces); running_mean/running_var, when not NULL, are updated in
 *   place: r = (1 - momentum) * r + momentum * stat, with the UNBIASED variance
 *   var * n / (n - 1) for running_var (PyTorch).
 * training = 0: mean and var are running_mean and running_var (both required).
 * weight and bias (C) may be NULL (as 1 and 0).  save_mean and save_invstd (C), when not NULL,
 * receive the mean and invstd used; backward needs them. */
int nv_batch_norm_check(int n, int c, int64_t s, int training, int have_running);
/* layer norm over the last d values of each of rows rows (inference): out = (x - mean) /
 * sqrt(var + eps) * weight + bias, the biased variance; weight and bias may be NULL */
void nv_layer_norm_forward(float *out, const float *in, const float *weight, const float *bias, int64_t rows,
                           int64_t d, float eps);
void nv_batch_norm_forward(float *out, float *save_mean, float *save_invstd, const float *in,
                           const float *weight, const float *bias, float *running_mean,
                           float *running_var, int n, int c, int64_t s, int training,
                           float momentum, float eps);
/* din (N,C,S), dweight (C), dbias (C), each accumulated and each may be NULL.  With xhat =
 * (x - mean) * invstd and m = N*S:
 *   dbias += sum dout,  dweight += sum dout * xhat,
 *   training: din += weight * invstd * (dout - sum(dout)/m - xhat * sum(dout * xhat)/m)
 *   eval:     din += weight * invstd * dout   (running stats are constants). */
void nv_batch_norm_backward(float *din, float *dweight, float *dbias, const float *dout,
                            const float *in, const float *weight, const float *save_mean,
                            const float *save_invstd, int n, int c, int64_t s, int training);

/* Softmax over the middle dimension of a contiguous (outer, dim, inner) view:
 *   out = exp(x - max) / sum exp(x - max),  computed with the max subtracted so large
 *   inputs do not overflow.  in and out may be the same buffer. */
void nv_softmax_forward(float *out, const float *in, int64_t outer, int64_t dim, int64_t inner);
/* din += out * (dout - sum_dim(dout * out)), from the forward's output. */
void nv_softmax_backward(float *din, const float *dout, const float *out, int64_t outer,
                         int64_t dim, int64_t inner);
/* out = x - max - log(sum exp(x - max)). */
void nv_log_softmax_forward(float *out, const float *in, int64_t outer, int64_t dim,
                            int64_t inner);
/* din += dout - exp(out) * sum_dim(dout), from the forward's output. */
void nv_log_softmax_backward(float *din, const float *dout, const float *out, int64_t outer,
                             int64_t dim, int64_t inner);

/* ---- interpolation and padding (resample.c) -------------------------------------------
 * Planes (H,W) resized to (OH,OW), F.interpolate(size = {OH, OW}) or scale_factor.
 * step = rh (rw) when > 0 (1/scale_factor: PyTorch maps by the scale), else in/out.
 * nearest:  src = min(floor(dst * step), in - 1)       (PyTorch's 'nearest', float scale)
 * bilinear: src = dst * (in-1)/(out-1)                  (align_corners = 1; 0 when out = 1)
 *           src = max((dst + 0.5) * step - 0.5, 0)      (align_corners = 0)
 *           then a weighted mean of the 2x2 neighbours floor(src), floor(src)+1 (clamped). */
void nv_interpolate_nearest_forward(float *out, const float *in, int64_t planes, int h, int w,
                                    int oh, int ow, float rh, float rw);
void nv_interpolate_nearest_backward(float *din, const float *dout, int64_t planes, int h,
                                     int w, int oh, int ow, float rh, float rw);
void nv_interpolate_bilinear_forward(float *out, const float *in, int64_t planes, int h, int w,
                                     int oh, int ow, int align_corners, float rh, float rw);
void nv_interpolate_bilinear_backward(float *din, const float *dout, int64_t planes, int h,
                                      int w, int oh, int ow, int align_corners, float rh, float rw);

/* F.pad of planes (H,W) to (H + top + bottom, W + left + right); for a last-dimension pad
 * pass h = 1, top = bottom = 0.  pad = {left, right, top, bottom}, each >= 0.
 * constant: cells outside the input are value.
 * reflect:  the input mirrored about its edge cells (pad < size; needs size >= 2 to pad).
 * replicate: the edge cell repeated (size >= 1). */
typedef enum { NV_PAD_CONSTANT, NV_PAD_REFLECT, NV_PAD_REPLICATE } nv_pad_mode;
int nv_pad_check(int h, int w, const int pad[4], nv_pad_mode mode);
void nv_pad_forward(float *out, const float *in, int64_t planes, int h, int w, const int pad[4],
                    nv_pad_mode mode, float value);
/* din += the gradient of each output cell routed to the input cell it was copied from
 * (constant: cells of value get none). */
void nv_pad_backward(float *din, const float *dout, int64_t planes, int h, int w,
                     const int pad[4], nv_pad_mode mode);

#endif
