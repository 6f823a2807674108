/*
 * mathfn.h — elementwise math written so that the compiler vectorizes it (glibc's expf is
 * a scalar call).  Internal to csrc/.
 */
#ifndef NV_MATHFN_H
#define NV_MATHFN_H

#include <math.h>
#include <stdint.h>

/* e^x with a relative error below 1e-7: x = n ln2 + r, |r| <= ln2/2 (ln2 in two parts, Cody
 * and Waite), e^r by a degree-7 polynomial (Cephes' expf coefficients), 2^n put in the
 * exponent bits.  Below ln(FLT_MIN) the result flushes to 0 (no subnormals); NaN and
 * infinities behave as expf's. */
static inline float nv_expf(float x) {
  const float hi = 88.3762626647949f, lo = -87.3365447505531f;
  float xc = x == x ? x : 0.0f;
  xc = xc > hi ? hi : xc;
  xc = xc < lo ? lo : xc;
  float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;   /* round to nearest */
  float r = xc - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  union { int32_t i; float f; } u;
  u.i = ((int32_t)n + 127) << 23;
  float y = p * u.f;
  y = x > hi ? INFINITY : y;
  y = x < lo ? 0.0f : y;
  return x == x ? y : x;
}

/* GELU's 0.5 x (1 + erf(x / sqrt 2)) with erf by Abramowitz and Stegun 7.1.26 (absolute error
 * below 1.5e-7, so 1 + erf is within 1.5e-7 relative): erf|z| = 1 - t (a1 + t (a2 + ...)) e^-z^2,
 * t = 1 / (1 + p |z|).  Vectorizes, as erff does not. */
static inline float nv_gelu(float x) {
  const float z = fabsf(x) * 0.70710678118654752f;
  const float t = 1.0f / (1.0f + 0.3275911f * z);
  float p = 1.061405429f;
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  float e = 1.0f - p * t * nv_expf(-z * z);
  e = x < 0.0f ? -e : e;
  return 0.5f * x * (1.0f + e);
}

#endif
