// Scalar kernel formulas shared by the host (unit tests through pyfeat._core) and the CUDA kernels.
//
// Every kernel is written as a function of the inner product g = <x, z> and the squared norms
// sx = |x|^2, sz = |z|^2, so that a tile of inner products from a GEMM-like product is all a
// kernel needs. Conventions are those of DESIGN.md; pyfeat/kernels.py mirrors these formulas.
#pragma once

#include <cfloat>
#include <cmath>

#ifdef __CUDACC__
#define PF_HD __host__ __device__ __forceinline__
#else
#define PF_HD inline
#endif

namespace pyfeat {

// Kernel codes: the codes of pyfeat/_kernel_table.py's TABLE (tests/test_kernel_table.py checks
// that they agree). Adding a kernel: its table row, its code here and its case in kernel_value.
enum KernelCode : int { NTK = 0, NNGP = 1, ARCCOS0 = 2, RBF = 3, LAPLACE = 4, POLY = 5 };
constexpr int kKernelCount = 6;

// Whether `code` names a kernel of kernel_value (the launchers reject any other code).
PF_HD bool is_kernel_code(int code) { return code >= 0 && code < kKernelCount; }

constexpr double kPi = 3.14159265358979323846;

// arccos on [-1, 1]. float: Abramowitz & Stegun 4.4.46, acos(x) = sqrt(1-x) * P7(x) on [0, 1]
// (the coefficients of _kernel_table.ACOS32_COEFFICIENTS, highest first),
// |error| <= 2e-8 in exact arithmetic, 4.2e-7 measured in float32 arithmetic (tests), and
// acos(-x) = pi - acos(x). double: libm acos.
PF_HD float pf_acos(float x) {
  const float ax = fabsf(x);
  float p = -0.0012624911f;
  p = p * ax + 0.0066700901f;
  p = p * ax - 0.0170881256f;
  p = p * ax + 0.0308918810f;
  p = p * ax - 0.0501743046f;
  p = p * ax + 0.0889789874f;
  p = p * ax - 0.2145988016f;
  p = p * ax + 1.5707963050f;
  const float r = sqrtf(fmaxf(1.0f - ax, 0.0f)) * p;
  return x < 0.0f ? static_cast<float>(kPi) - r : r;
}
PF_HD double pf_acos(double x) { return acos(x); }

PF_HD float pf_sqrt(float x) { return sqrtf(x); }
PF_HD double pf_sqrt(double x) { return sqrt(x); }
PF_HD float pf_exp(float x) { return expf(x); }
PF_HD double pf_exp(double x) { return exp(x); }
PF_HD float pf_pow(float x, float y) { return powf(x, y); }
PF_HD double pf_pow(double x, double y) { return pow(x, y); }

// |x||z| = sqrt(sx sz), exact for x = z (sqrt(fl(s^2)) = s); where sx sz leaves the normal
// range (float32 norms beyond about 1e+-19) sqrt(sx) sqrt(sz), which cannot overflow or underflow.
PF_HD bool pf_normal(float s) { return s >= FLT_MIN && s <= FLT_MAX; }
PF_HD bool pf_normal(double s) { return s >= DBL_MIN && s <= DBL_MAX; }
template <class T>
PF_HD T pf_norm_product(T sx, T sz) {
  const T s = sx * sz;
  return pf_normal(s) ? pf_sqrt(s) : pf_sqrt(sx) * pf_sqrt(sz);
}

// Cosine of the angle between x and z, clamped to [-1, 1]; 0 (angle pi/2) when either is zero.
template <class T>
PF_HD T pf_cosine(T g, T sx, T sz) {
  if (!(sx > T(0)) || !(sz > T(0))) return T(0);
  T c = g / pf_norm_product(sx, sz);
  c = c > T(1) ? T(1) : c;
  c = c < T(-1) ? T(-1) : c;
  return c;
}

// k(g, sx, sz) for kernel `code` with parameters p0, p1, p2:
//   NTK     g (pi - t)/(2 pi) + |x||z| ((pi - t) cos t + sin t)/(2 pi),  t = angle(x, z)
//   NNGP    |x||z| ((pi - t) cos t + sin t)/(2 pi)          (arc-cosine kernel of degree 1)
//   ARCCOS0 (pi - t)/(2 pi)                                  (arc-cosine kernel of degree 0)
//   RBF     exp(-|x - z|^2 / (2 p0^2))                       p0 = bandwidth
//   LAPLACE exp(-|x - z| / p0)                               p0 = bandwidth
//   POLY    (p0 g + p1)^p2                                   p0 = gamma, p1 = coef0, p2 = degree
template <class T>
PF_HD T kernel_value(int code, T g, T sx, T sz, T p0, T p1, T p2) {
  const T inv2pi = T(0.5 / kPi);
  switch (code) {
    case NTK:
    case NNGP:
    case ARCCOS0: {
      const T c = pf_cosine(g, sx, sz);
      const T pit = T(kPi) - pf_acos(c);  // pi - t
      if (code == ARCCOS0) return pit * inv2pi;
      const T sint = pf_sqrt(T(1) - c * c > T(0) ? T(1) - c * c : T(0));
      const T nngp = pf_norm_product(sx, sz) * (pit * c + sint) * inv2pi;
      return code == NTK ? g * pit * inv2pi + nngp : nngp;
    }
    case RBF: {
      T d2 = sx + sz - T(2) * g;
      d2 = d2 > T(0) ? d2 : T(0);
      return pf_exp(-d2 / (T(2) * p0 * p0));
    }
    case LAPLACE: {
      T d2 = sx + sz - T(2) * g;
      d2 = d2 > T(0) ? d2 : T(0);
      return pf_exp(-pf_sqrt(d2) / p0);
    }
    case POLY:
      return pf_pow(p0 * g + p1, p2);
    default:
      return T(0);
  }
}

}  // namespace pyfeat
