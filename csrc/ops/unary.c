/*
 * unary.c — unary math and activations (the NV_UNARY ops of ops.def), each with its
 * gradient: forward and backward kernels are switches over the op, chosen once per call and
 * run over contiguous data split among threads.
 */
#include "ops/ops.h"
#include "core/mathfn.h"

#include <math.h>
#include <stdlib.h>

static int unary_backward(nv_node *n, nv_tensor *out, nv_tensor *gout, nv_tensor **gin);

/* ---- unary ---------------------------------------------------------------------------------- */
static inline float gelu_f(float x) { return nv_gelu(x); }
static inline float sigmoid_f(float x) { return 1.0f / (1.0f + nv_expf(-x)); }   /* 0 and 1 at the ends */
static inline float softplus_f(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

/* The parameters each op refuses; 1, or 0 with the error set. */
static int check_params(int op, double p0, double p1) {
  switch (op) {
  case NV_OP_CLAMP:
    if (p0 > p1) return nv_seterr("clamp: min %g is greater than max %g", p0, p1);
    break;
  case NV_OP_HARDTANH:
    if (p0 > p1) return nv_seterr("hardtanh: min_val %g is greater than max_val %g", p0, p1);
    break;
  }
  return 1;
}

NV_HOT static void unary_kernel(int op, float *restrict o, const float *restrict x, int64_t n, float p0, float p1) {
  switch (op) {
#define LOOP(expr) for (int64_t j = 0; j < n; j++) { float v = x[j]; o[j] = (expr); } break
  case NV_OP_NEG: LOOP(-v);
  case NV_OP_EXP: LOOP(nv_expf(v));
  case NV_OP_LOG: LOOP(logf(v));
  case NV_OP_SQRT: LOOP(sqrtf(v));
  case NV_OP_RSQRT: LOOP(1.0f / sqrtf(v));
  case NV_OP_ABS: LOOP(fabsf(v));
  case NV_OP_SIN: LOOP(sinf(v));
  case NV_OP_COS: LOOP(cosf(v));
  case NV_OP_TANH: LOOP(tanhf(v));
  case NV_OP_SIGMOID: LOOP(sigmoid_f(v));
  case NV_OP_RELU: LOOP(v > 0.0f ? v : 0.0f);
  case NV_OP_POWS: if (p0 == 2.0f) { LOOP(v * v); } else { LOOP(powf(v, p0)); }
  case NV_OP_CLAMP: LOOP(v < p0 ? p0 : (v > p1 ? p1 : v));
  case NV_OP_LEAKY_RELU: LOOP(v > 0.0f ? v : v * p0);
  case NV_OP_ELU: LOOP(v > 0.0f ? v : p0 * expm1f(v));
  case NV_OP_GELU: LOOP(gelu_f(v));
  case NV_OP_SQUARE: LOOP(v * v);
  case NV_OP_RECIPROCAL: LOOP(1.0f / v);
  case NV_OP_LOG1P: LOOP(log1pf(v));
  case NV_OP_SOFTPLUS: LOOP(softplus_f(v));
  case NV_OP_SIGN: LOOP((float)((v > 0.0f) - (v < 0.0f)));
  case NV_OP_FLOOR: LOOP(floorf(v));
  case NV_OP_CEIL: LOOP(ceilf(v));
  case NV_OP_ROUND: LOOP(nearbyintf(v));
  case NV_OP_HARDTANH: LOOP(v < p0 ? p0 : (v > p1 ? p1 : v));
  default: break;
#undef LOOP
  }
}

nv_tensor *nv_unary(int op, nv_tensor *x, double p0, double p1) {
  if (op < 0 || op >= NV_OP_COUNT || nv_op_kinds[op] != NV_UNARY) { nv_seterr("unary: bad op"); return NULL; }
  if (!check_params(op, p0, p1)) return NULL;
  nv_tensor *xc = nv_contiguous_data(x);
  if (!xc) return NULL;
  nv_tensor *o = nv_empty(x->ndim, x->size);
  if (o) {
    float *po = nv_data(o);
    const float *px = nv_data(xc);
    const int64_t n = nv_numel(o);
    const int parts = nv_parts(n);
#pragma omp parallel for if (parts > 1) schedule(static)
    for (int k = 0; k < parts; k++) {
      int64_t lo, hi;
      nv_part(n, k, parts, &lo, &hi);
      unary_kernel(op, po + lo, px + lo, hi - lo, (float)p0, (float)p1);
    }
  }
  nv_release(xc);
  if (o && nv_needs_grad(1, &x)) {
    nv_node *n = nv_op_node(op, unary_backward, 1, &x);
    if (!n) { nv_release(o); return NULL; }
    n->f[0] = p0;
    n->f[1] = p1;
    nv_attach(o, n);
  }
  return o;
}

/* gin = gout * f'(x), computed in one pass from x, out and gout (all contiguous). */
NV_HOT static void unary_backward_kernel(int op, float *restrict gi, const float *restrict g,
                                  const float *restrict x, const float *restrict y, int64_t n,
                                  float p0, float p1) {
  switch (op) {
#define LOOP(expr) for (int64_t j = 0; j < n; j++) { float v = x[j], o = y[j], d = g[j]; (void)v; (void)o; (void)d; gi[j] = (expr); } break
  case NV_OP_NEG: LOOP(-d);
  case NV_OP_EXP: LOOP(d * o);
  case NV_OP_LOG: LOOP(d / v);
  case NV_OP_SQRT: LOOP(d * 0.5f / o);
  case NV_OP_RSQRT: LOOP(-0.5f * d * o * o * o);
  case NV_OP_ABS: LOOP(d * (float)((v > 0.0f) - (v < 0.0f)));
  case NV_OP_SIN: LOOP(d * cosf(v));
  case NV_OP_COS: LOOP(-d * sinf(v));
  case NV_OP_TANH: LOOP(d * (1.0f - o * o));
  case NV_OP_SIGMOID: LOOP(d * o * (1.0f - o));
  case NV_OP_RELU: LOOP(v > 0.0f ? d : 0.0f);   /* guided backprop: a hook (saliency.c) */
  case NV_OP_POWS: LOOP(p0 == 0.0f ? 0.0f : d * p0 * powf(v, p0 - 1.0f));
  case NV_OP_CLAMP: LOOP((v >= p0 && v <= p1) ? d : 0.0f);
  case NV_OP_LEAKY_RELU: LOOP(v > 0.0f ? d : d * p0);
  case NV_OP_ELU: LOOP(v > 0.0f ? d : d * (o + p0));
  /* d/dx x*Phi(x) = Phi(x) + x*phi(x) */
  case NV_OP_GELU: LOOP(d * (0.5f * (1.0f + erff(v * 0.70710678118654752f)) +
                             v * 0.3989422804014327f * expf(-0.5f * v * v)));
  case NV_OP_SQUARE: LOOP(2.0f * v * d);
  case NV_OP_RECIPROCAL: LOOP(-d * o * o);
  case NV_OP_LOG1P: LOOP(d / (1.0f + v));
  case NV_OP_SOFTPLUS: LOOP(d * sigmoid_f(v));
  /* PyTorch's: 1 strictly inside (min_val, max_val), 0 outside and at the bounds */
  case NV_OP_HARDTANH: LOOP((v > p0 && v < p1) ? d : 0.0f);
  default: LOOP(0.0f);   /* sign, floor, ceil, round: zero almost everywhere */
#undef LOOP
  }
}

static int unary_backward(nv_node *n, nv_tensor *out, nv_tensor *gout, nv_tensor **gin) {
  nv_tensor *a = n->in[0];
  int op = n->op;
  if (!nv_need(n, 0)) return 1;
  nv_tensor *xc = nv_contiguous_data(a);
  nv_tensor *oc = xc ? nv_contiguous_data(out) : NULL;
  nv_tensor *g = oc ? nv_empty_like(a) : NULL;
  if (g) {
    float *pg = nv_data(g);
    const float *pd = nv_data(gout), *px = nv_data(xc), *py = nv_data(oc);
    const int64_t m = nv_numel(g);
    const int parts = nv_parts(m);
    const float p0 = (float)n->f[0], p1 = (float)n->f[1];
#pragma omp parallel for if (parts > 1) schedule(static)
    for (int k = 0; k < parts; k++) {
      int64_t lo, hi;
      nv_part(m, k, parts, &lo, &hi);
      unary_backward_kernel(op, pg + lo, pd + lo, px + lo, py + lo, hi - lo, p0, p1);
    }
  }
  nv_release(xc);
  nv_release(oc);
  gin[0] = g;
  return g != NULL;
}
