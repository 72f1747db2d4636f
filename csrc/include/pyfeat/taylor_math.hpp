// Scalar math of the Taylor models (seed 002), shared by the host (unit tests through
// pyfeat._core) and the CUDA kernels (csrc/cuda/taylor.cu); pyfeat/ops/_numba.py mirrors it.
//
// The activations σ and their first two derivatives, by code (the codes of
// pyfeat/_activation_table.py's TABLE; tests/test_core_math.py checks that they agree):
//   RELU3     σ = relu(t)³/6      σ' = relu(t)²/2        σ'' = relu(t)
//   SOFTPLUS  σ = log(1 + eᵗ)     σ' = 1/(1 + e⁻ᵗ) = p   σ'' = p(1 − p) (one exp, accurate for all t)
//   RELU2     σ = relu(t)²/2      σ' = relu(t)           σ'' = 1[t ≥ 0]
//   CUBIC     σ = t³/6            σ' = t²/2              σ'' = t
// and one neuron of the Taylor model f(x) = Σ_r [a1_r σ'(u0_r) u_r + a2_r σ''(u0_r) u_r²/2]
// (u0_r = w0_r·x + b0_r, u_r = w_r·x + b_r): its term and the slope ∂/∂u_r of that term.
#pragma once

#include <cmath>

#ifndef PF_HD  // as in kernel_math.hpp
#ifdef __CUDACC__
#define PF_HD __host__ __device__ __forceinline__
#else
#define PF_HD inline
#endif
#endif

namespace pyfeat {

// Activation codes: the codes of pyfeat/_activation_table.py's TABLE.
enum ActivationCode : int { RELU3 = 0, SOFTPLUS = 1, RELU2 = 2, CUBIC = 3 };
constexpr int kActivationCount = 4;

// Whether `code` names an activation of activation_derivatives (the launchers reject others).
PF_HD bool is_activation_code(int code) { return code >= 0 && code < kActivationCount; }

PF_HD float pf_exp_neg(float t) { return expf(-t); }
PF_HD double pf_exp_neg(double t) { return exp(-t); }
PF_HD float pf_log1p(float t) { return log1pf(t); }
PF_HD double pf_log1p(double t) { return log1p(t); }

// σ'(t) and σ''(t) of activation `code` (0 for an unknown code).
template <class T>
PF_HD void activation_derivatives(int code, T t, T& d1, T& d2) {
  const T r = t > T(0) ? t : T(0);
  switch (code) {
    case RELU3:
      d1 = r * r * T(0.5);
      d2 = r;
      return;
    case SOFTPLUS: {  // with e = e^-|t| ≤ 1: p = 1/(1 + e) or e/(1 + e), p(1 − p) = e/(1 + e)²
      const T e = pf_exp_neg(t > T(0) ? t : -t);
      const T q = T(1) / (T(1) + e);
      d1 = t >= T(0) ? q : e * q;
      d2 = e * q * q;
      return;
    }
    case RELU2:
      d1 = r;
      d2 = t >= T(0) ? T(1) : T(0);
      return;
    case CUBIC:
      d1 = t * t * T(0.5);
      d2 = t;
      return;
    default:
      d1 = T(0);
      d2 = T(0);
  }
}

// σ(t) of activation `code` (host tests and the exact network; the kernels need σ' and σ'' only).
template <class T>
PF_HD T activation_value(int code, T t) {
  const T r = t > T(0) ? t : T(0);
  switch (code) {
    case RELU3:
      return r * r * r / T(6);
    case SOFTPLUS:  // log(1 + eᵗ) = max(t, 0) + log(1 + e^-|t|), exact for every t
      return r + pf_log1p(pf_exp_neg(t > T(0) ? t : -t));
    case RELU2:
      return r * r * T(0.5);
    case CUBIC:
      return t * t * t / T(6);
    default:
      return T(0);
  }
}

// One neuron of the Taylor model: returns its contribution a1 σ'(u0) u + a2 σ''(u0) u²/2 to f(x)
// and sets `slope` to its derivative in u, a1 σ'(u0) + a2 σ''(u0) u (the weight of x in the
// neuron's gradient), evaluating the activation once.
template <class T>
PF_HD T taylor_neuron(int code, T u0, T u, T a1, T a2, T& slope) {
  T d1, d2;
  activation_derivatives(code, u0, d1, d2);
  const T lin = a1 * d1;
  const T quad = a2 * d2 * u;
  slope = lin + quad;
  return (lin + T(0.5) * quad) * u;
}

}  // namespace pyfeat
