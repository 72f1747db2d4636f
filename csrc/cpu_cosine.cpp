// The cosine kernels' tile reduction on AVX-512 CPUs: acc[i, c] += sum_j K(x_i, z_j) V[j, c] for
// ntk, nngp and arccos0, with the inner products, the kernel and the float64 sums in registers.
//
// Why: at d = 32 pyfeat's portable path (a BLAS GEMM writes the tile, then a Numba pass reads it
// back to evaluate the kernel) spends as long in that second pass as in the GEMM, and half of the
// pass is the tile's round trip through the L2 cache. Here the rows are scaled to unit norm, an
// 8-row x 2-vector block of their inner products (the cosines) is accumulated in 16 registers
// over k = 0..d-1 and the kernel is evaluated on it at once. Measured (ntk, n = 20,000, d = 32,
// 2 threads, time / GEMM floor 2n^2 d/R): float32 2.1-2.6 against 3.2-3.3, float64 2.6 against
// 3.8; at d = 128 1.4-1.6 against 1.7-2.1. Above d = 256 BLAS's cache-blocked GEMM wins, and
// pyfeat.ops._numba sends those tiles there (AVX512_MAX_D).
//
// The formula is the one of pyfeat.ops._numba (_ov_cosine_unit, _acos), written in one form
// with the coefficients and constants passed from there (pyfeat.ops._numba._COSINE_FORMS):
//   c = <x, z>/(|x||z|), where |c| >= near from the rows' difference (exact_cosine, as
//   pyfeat.ops._numba._exact_cosine), a = |c|, r = sqrt(max(1 - a, 0)) P(mu a + nu),
//   h = c >= 0 ? slope c + offset + sign r : r,        K = u_x v_z h,
// with u_x = |x|/(2 pi) and v_z = |z| for ntk and nngp (radial), 1/(2 pi) and 1 for arccos0.
// tests/test_ops.py compares this path with the Numba one and with the float64 reference.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "pyfeat/cpu_ops.hpp"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define PYFEAT_AVX512 1
#include <immintrin.h>
#endif

namespace py = pybind11;

namespace pyfeat {
namespace cpu {

bool cosine_reduce_available() {
#ifdef PYFEAT_AVX512
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
#else
  return false;
#endif
}

namespace {

// The kernel's form (see the file's comment) in the working dtype, its constants rounded once as
// the Numba loops round them; coef: P's coefficients, highest degree first.
template <class T>
struct Form {
  T slope, offset, sign, mu, nu, near;
  bool radial;
  std::vector<T> coef;
};

// rx = 1/|a| (0 for a zero row), scale = factor |a| (radial) or factor, from sq = |a|^2 (the
// blocked loop keeps sq within 2^±60: pyfeat.ops.blocked._cosine_rows)
template <class T>
void inverse_norms(const T* sq, int64_t n, bool radial, T factor, T* r, T* scale) {
  for (int64_t j = 0; j < n; ++j) {
    const T norm = std::sqrt(sq[j]);
    r[j] = norm > T(0) ? T(1) / norm : T(0);
    scale[j] = factor * (radial ? norm : T(1));
  }
}

#ifdef PYFEAT_AVX512
#define PF_SIMD __attribute__((target("avx512f,avx512dq,fma"), always_inline)) inline
#define PF_SIMD_ENTRY __attribute__((target("avx512f,avx512dq,fma")))

template <class T>
struct Simd;

template <>
struct Simd<float> {
  using V = __m512;
  using M = __mmask16;
  static constexpr int L = 16;
  static PF_SIMD V load(const float* p) { return _mm512_loadu_ps(p); }
  static PF_SIMD void store(float* p, V a) { _mm512_storeu_ps(p, a); }
  static PF_SIMD V set1(float x) { return _mm512_set1_ps(x); }
  static PF_SIMD V zero() { return _mm512_setzero_ps(); }
  static PF_SIMD V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static PF_SIMD V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static PF_SIMD V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static PF_SIMD V max(V a, V b) { return _mm512_max_ps(a, b); }
  static PF_SIMD V abs(V a) { return _mm512_abs_ps(a); }
  static PF_SIMD V sqrt(V a) { return _mm512_sqrt_ps(a); }
  static PF_SIMD M nonnegative(V a) { return _mm512_cmp_ps_mask(a, _mm512_setzero_ps(), _CMP_GE_OQ); }
  static PF_SIMD M at_least(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ); }
  static PF_SIMD V select(M m, V yes, V no) { return _mm512_mask_blend_ps(m, no, yes); }

  // the float64 sums take h in H halves of 8 lanes: half q of h, in float64
  static constexpr int H = 2;
  static PF_SIMD __m512d half(V h, int q) {
    return q == 0 ? _mm512_cvtps_pd(_mm512_castps512_ps256(h))
                  : _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(h), 1)));
  }
};

template <>
struct Simd<double> {
  using V = __m512d;
  using M = __mmask8;
  static constexpr int L = 8;
  static PF_SIMD V load(const double* p) { return _mm512_loadu_pd(p); }
  static PF_SIMD void store(double* p, V a) { _mm512_storeu_pd(p, a); }
  static PF_SIMD V set1(double x) { return _mm512_set1_pd(x); }
  static PF_SIMD V zero() { return _mm512_setzero_pd(); }
  static PF_SIMD V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static PF_SIMD V mul(V a, V b) { return _mm512_mul_pd(a, b); }
  static PF_SIMD V sub(V a, V b) { return _mm512_sub_pd(a, b); }
  static PF_SIMD V max(V a, V b) { return _mm512_max_pd(a, b); }
  static PF_SIMD V abs(V a) { return _mm512_abs_pd(a); }
  static PF_SIMD V sqrt(V a) { return _mm512_sqrt_pd(a); }
  static PF_SIMD M nonnegative(V a) { return _mm512_cmp_pd_mask(a, _mm512_setzero_pd(), _CMP_GE_OQ); }
  static PF_SIMD M at_least(V a, V b) { return _mm512_cmp_pd_mask(a, b, _CMP_GE_OQ); }
  static PF_SIMD V select(M m, V yes, V no) { return _mm512_mask_blend_pd(m, no, yes); }

  static constexpr int H = 1;
  static PF_SIMD __m512d half(V h, int) { return h; }
};

// h(c) of the file's comment on one vector of cosines; N = P's number of coefficients.
template <class T, int N>
PF_SIMD typename Simd<T>::V unit(typename Simd<T>::V c, const Form<T>& f) {
  using S = Simd<T>;
  const auto a = S::abs(c);
  const auto t = S::fma(a, S::set1(f.mu), S::set1(f.nu));
  auto p = S::set1(f.coef[0]);
#pragma GCC unroll 32
  for (int k = 1; k < N; ++k) p = S::fma(p, t, S::set1(f.coef[k]));
  const auto r = S::mul(S::sqrt(S::max(S::sub(S::set1(T(1)), a), S::zero())), p);
  const auto pos = S::fma(S::set1(f.sign), r, S::fma(S::set1(f.slope), c, S::set1(f.offset)));
  return S::select(S::nonnegative(c), pos, r);
}

// ±(1 - |x rx ∓ z rz|²/2) in float64 with the sign of c: the cosine of the unit rows from their
// difference (or sum), for |c| >= near (pyfeat.ops._numba._exact_cosine).
template <class T>
double exact_cosine(const T* x, T rx, const T* z, T rz, int64_t d, T c) {
  const double s = c >= T(0) ? 1.0 : -1.0;
  double t = 0.0;
  for (int64_t k = 0; k < d; ++k) {
    const double e = double(x[k]) * double(rx) - s * double(z[k]) * double(rz);
    t += e * e;
  }
  return s * (1.0 - 0.5 * t);
}

// The register block: MR rows x NV vectors of columns (NR = NV L), MR NV accumulators. 8 x 2,
// 4 x 4, 6 x 4, 12 x 2 and 14 x 2 measured within 10 % of each other at d = 32.
constexpr int MR = 8;
constexpr int NV = 2;

// The rows of a tile: the original ones (for exact_cosine) with their inverse norms, at unit norm
// (X' rows x d; Z' packed into panels Z'P[p][k][0..NR), zero-padded to panels * NR columns), and
// W = v_z V^T (K rows of stride ws, float64, zero-padded). Both sides (VX given): WX = u_x VX^T
// (K rows of stride wxs, zero-padded to whole register blocks) and the column sums
// CS[c][j] = sum_i h_ij WX[c][i] (K rows of stride ws).
template <class T>
struct Tile {
  const T *X, *rx, *ux, *Z, *rz, *Xu, *ZP;
  const double *W, *WX;
  double* CS;
  int64_t rows, cols, d, panels, ws, wxs;
};

// acc[i, :K] += u_i sum_j h(c_ij) W[:, j], c_ij = <x'_i, z'_j> (or exact_cosine), over the panels;
// BOTH: also CS[:, j] += sum_i h(c_ij) WX[:, i] from the same h (the two sides of a symmetric
// product, each pair evaluated once).
template <class T, int K, int N, bool BOTH>
PF_SIMD_ENTRY void reduce_panels(const Tile<T>& tile, const Form<T>& f, double* acc) {
  const T *X = tile.Xu, *ux = tile.ux, *ZP = tile.ZP;
  const double *W = tile.W, *WX = tile.WX;
  const int64_t rows = tile.rows, d = tile.d, panels = tile.panels, ws = tile.ws, wxs = tile.wxs;
  using S = Simd<T>;
  using V = typename S::V;
  constexpr int NR = NV * S::L, H = S::H;
  for (int64_t i0 = 0; i0 < rows; i0 += MR) {
    const int mr = int(std::min<int64_t>(MR, rows - i0));
    const T* xr[MR];  // a partial block repeats its last row (its sums are dropped, its WX is 0)
    for (int r = 0; r < MR; ++r) xr[r] = X + (i0 + std::min(r, mr - 1)) * d;
    __m512d sums[MR][K];
    for (int r = 0; r < MR; ++r)
      for (int c = 0; c < K; ++c) sums[r][c] = _mm512_setzero_pd();
    for (int64_t p = 0; p < panels; ++p) {
      const T* zp = ZP + p * d * NR;
      V g[MR][NV];
      for (int r = 0; r < MR; ++r)
        for (int v = 0; v < NV; ++v) g[r][v] = S::zero();
      for (int64_t k = 0; k < d; ++k) {
        V z[NV];
        for (int v = 0; v < NV; ++v) z[v] = S::load(zp + k * NR + v * S::L);
#pragma GCC unroll 16
        for (int r = 0; r < MR; ++r) {
          const V x = S::set1(xr[r][k]);
          for (int v = 0; v < NV; ++v) g[r][v] = S::fma(x, z[v], g[r][v]);
        }
      }
      __m512d cols[BOTH ? K : 1][NV * H];
      if (BOTH)
        for (int c = 0; c < K; ++c)
          for (int q = 0; q < NV * H; ++q) cols[c][q] = _mm512_setzero_pd();
      const V near = S::set1(f.near);
      for (int r = 0; r < MR; ++r)
        for (int v = 0; v < NV; ++v) {
          if (S::at_least(S::abs(g[r][v]), near) && r < mr) {  // rare: x and z (anti)parallel
            T c[S::L];
            S::store(c, g[r][v]);
            const int64_t i = i0 + r;
            for (int l = 0; l < S::L; ++l) {
              const int64_t j = p * NR + v * S::L + l;
              if (j < tile.cols && std::abs(c[l]) >= f.near)
                c[l] = T(exact_cosine(tile.X + i * d, tile.rx[i], tile.Z + j * d, tile.rz[j], d, c[l]));
            }
            g[r][v] = S::load(c);
          }
          const V h = unit<T, N>(g[r][v], f);
          for (int q = 0; q < H; ++q) {
            const __m512d hq = S::half(h, q);
            const int64_t j = p * NR + v * S::L + q * 8;
            for (int c = 0; c < K; ++c) {
              sums[r][c] = _mm512_fmadd_pd(hq, _mm512_loadu_pd(W + c * ws + j), sums[r][c]);
              if (BOTH)
                cols[c][v * H + q] = _mm512_fmadd_pd(hq, _mm512_set1_pd(WX[c * wxs + i0 + r]), cols[c][v * H + q]);
            }
          }
        }
      if (BOTH)
        for (int c = 0; c < K; ++c)
          for (int q = 0; q < NV * H; ++q) {
            double* cs = tile.CS + c * ws + p * NR + q * 8;
            _mm512_storeu_pd(cs, _mm512_add_pd(_mm512_loadu_pd(cs), cols[c][q]));
          }
    }
    for (int r = 0; r < mr; ++r)
      for (int c = 0; c < K; ++c)
        acc[(i0 + r) * K + c] += double(ux[i0 + r]) * _mm512_reduce_add_pd(sums[r][c]);
  }
}

template <class T, int K, bool BOTH>
void reduce_panels_n(const Tile<T>& tile, const Form<T>& f, double* acc) {
  switch (f.coef.size()) {  // the forms' polynomials (pyfeat.ops._numba._COSINE_FORMS)
    case 8: return reduce_panels<T, K, 8, BOTH>(tile, f, acc);
    case 19: return reduce_panels<T, K, 19, BOTH>(tile, f, acc);
    case 27: return reduce_panels<T, K, 27, BOTH>(tile, f, acc);
  }
  throw std::invalid_argument("cosine_reduce: coef must have 8, 19 or 27 coefficients");
}

template <class T, bool BOTH>
void reduce_panels_k(const Tile<T>& tile, const Form<T>& f, int k, double* acc) {
  switch (k) {
    case 1: return reduce_panels_n<T, 1, BOTH>(tile, f, acc);
    case 2: return reduce_panels_n<T, 2, BOTH>(tile, f, acc);
    case 3: return reduce_panels_n<T, 3, BOTH>(tile, f, acc);
    case 4: return reduce_panels_n<T, 4, BOTH>(tile, f, acc);
  }
}

// One tile: the rows of X and Z at unit norm (Z's packed into panels) and W = v_z V^T, in
// per-thread buffers, then reduce_panels; with VX (not null) both sides, acc_z += K^T VX.
// V's dtype TV: the working dtype or float64.
template <class T, class TV>
void reduce_tile(const T* X, const T* sx, int64_t rows, const T* Z, const T* sz, int64_t cols,
                 int64_t d, const TV* Vm, const TV* VX, int k, const Form<T>& f, double* acc,
                 double* acc_z) {
  constexpr int NR = NV * Simd<T>::L;
  const int64_t panels = (cols + NR - 1) / NR, padded = panels * NR;
  const int64_t wxs = (rows + MR - 1) / MR * MR;
  thread_local std::vector<T> xs, zp, rx, ux, rz, vz;
  thread_local std::vector<double> w, wx, cs;
  xs.resize(size_t(rows * d));
  zp.assign(size_t(panels * d * NR), T(0));
  w.assign(size_t(k * padded), 0.0);
  rx.resize(size_t(rows));
  ux.resize(size_t(rows));
  rz.resize(size_t(cols));
  vz.resize(size_t(cols));
  inverse_norms<T>(sx, rows, f.radial, T(0.5 / M_PI), rx.data(), ux.data());
  inverse_norms<T>(sz, cols, f.radial, T(1), rz.data(), vz.data());
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t t = 0; t < d; ++t) xs[size_t(i * d + t)] = X[i * d + t] * rx[i];
  for (int64_t j = 0; j < cols; ++j) {
    T* dst = zp.data() + (j / NR) * d * NR + j % NR;
    for (int64_t t = 0; t < d; ++t) dst[t * NR] = Z[j * d + t] * rz[j];
    for (int c = 0; c < k; ++c) w[size_t(c * padded + j)] = double(vz[j]) * double(Vm[j * k + c]);
  }
  if (VX) {
    wx.assign(size_t(k * wxs), 0.0);
    cs.assign(size_t(k * padded), 0.0);
    for (int64_t i = 0; i < rows; ++i)
      for (int c = 0; c < k; ++c) wx[size_t(c * wxs + i)] = double(ux[i]) * double(VX[i * k + c]);
  }
  const Tile<T> tile{X, rx.data(), ux.data(), Z, rz.data(), xs.data(), zp.data(), w.data(),
                     VX ? wx.data() : nullptr, VX ? cs.data() : nullptr, rows, cols, d, panels, padded, wxs};
  if (!VX) return reduce_panels_k<T, false>(tile, f, k, acc);
  reduce_panels_k<T, true>(tile, f, k, acc);
  for (int64_t j = 0; j < cols; ++j)
    for (int c = 0; c < k; ++c) acc_z[j * k + c] += double(vz[j]) * cs[size_t(c * padded + j)];
}
#endif  // PYFEAT_AVX512

template <class T>
using carray = py::array_t<T, py::array::c_style | py::array::forcecast>;

constexpr int kMaxColumns = 4;

template <class T>
void cosine_reduce(carray<T> X, carray<T> sx, carray<T> Z, carray<T> sz, py::array V,
                   py::array_t<double> acc, double slope, double offset, double sign, double mu,
                   double nu, bool radial, carray<double> coef, double near, py::object VX,
                   py::object acc_z) {
  if (!cosine_reduce_available())
    throw std::runtime_error("cosine_reduce: needs a CPU with AVX-512 (cosine_reduce_available())");
  if (X.ndim() != 2 || Z.ndim() != 2 || X.shape(1) != Z.shape(1) || sx.ndim() != 1 ||
      sz.ndim() != 1 || sx.shape(0) != X.shape(0) || sz.shape(0) != Z.shape(0) || V.ndim() != 2 ||
      V.shape(0) != Z.shape(0) || V.shape(1) < 1 || V.shape(1) > kMaxColumns || acc.ndim() != 2 ||
      acc.shape(0) != X.shape(0) || acc.shape(1) != V.shape(1) || coef.ndim() != 1 || coef.shape(0) < 1)
    throw std::invalid_argument("cosine_reduce: X (rows, d), sx (rows,), Z (cols, d), sz (cols,), "
                                "V (cols, k <= 4), acc (rows, k), coef (degree + 1,) expected");
  if (!(acc.flags() & py::array::c_style) || !acc.writeable())
    throw std::invalid_argument("cosine_reduce: acc must be a writeable C-contiguous float64 array");
  if (VX.is_none() != acc_z.is_none())
    throw std::invalid_argument("cosine_reduce: VX and acc_z go together");
  // V in float64 is taken as it is with float32 X; any other V is read in the working dtype
  const bool v64 = py::isinstance<py::array_t<double>>(V) && !py::isinstance<py::array_t<T>>(V);
  const bool both = !VX.is_none();
  py::array vx, az;
  if (both) {
    // acc_z is added into in place and VX read as it is, in the dtype V is read in: no copies
    if (!py::isinstance<py::array>(VX) || !py::isinstance<py::array>(acc_z))
      throw std::invalid_argument("cosine_reduce: VX and acc_z must be arrays");
    vx = py::reinterpret_borrow<py::array>(VX);
    az = py::reinterpret_borrow<py::array>(acc_z);
    if (!py::isinstance<py::array_t<double>>(az) || az.ndim() != 2 || az.shape(0) != Z.shape(0) ||
        az.shape(1) != V.shape(1) || !(az.flags() & py::array::c_style) || !az.writeable())
      throw std::invalid_argument("cosine_reduce: acc_z must be a writeable C-contiguous float64 (cols, k) array");
    const bool vx_dtype = v64 ? py::isinstance<py::array_t<double>>(vx) : py::isinstance<py::array_t<T>>(vx);
    if (vx.ndim() != 2 || vx.shape(0) != X.shape(0) || vx.shape(1) != V.shape(1) || !vx_dtype ||
        !(vx.flags() & py::array::c_style))
      throw std::invalid_argument("cosine_reduce: VX must be a C-contiguous (rows, k) array in the dtype V is "
                                  "read in (float64 for a float64 V, else X's)");
  }
#ifdef PYFEAT_AVX512
  const Form<T> form{T(slope), T(offset), T(sign), T(mu), T(nu), T(near), radial,
                     std::vector<T>(coef.data(), coef.data() + coef.shape(0))};
  const int64_t rows = X.shape(0), cols = Z.shape(0), d = X.shape(1);
  const int k = int(V.shape(1));
  double* out = acc.mutable_data();
  double* out_z = both ? static_cast<double*>(az.mutable_data()) : nullptr;
  if (rows == 0 || cols == 0) return;
  if (v64) {
    const carray<double> Vd = carray<double>::ensure(V);
    const double* vxd = both ? static_cast<const double*>(vx.data()) : nullptr;
    py::gil_scoped_release release;
    reduce_tile<T, double>(X.data(), sx.data(), rows, Z.data(), sz.data(), cols, d, Vd.data(), vxd, k, form, out, out_z);
  } else {
    const carray<T> Vt = carray<T>::ensure(V);
    if (!Vt) throw std::invalid_argument("cosine_reduce: V must be a float32 or float64 array");
    const T* vxt = both ? static_cast<const T*>(vx.data()) : nullptr;
    py::gil_scoped_release release;
    reduce_tile<T, T>(X.data(), sx.data(), rows, Z.data(), sz.data(), cols, d, Vt.data(), vxt, k, form, out, out_z);
  }
#else
  (void)slope, (void)offset, (void)sign, (void)mu, (void)nu, (void)radial, (void)near;
#endif
}

}  // namespace

void register_bindings(py::module_& m) {
  m.def("cosine_reduce_available", &cosine_reduce_available,
        "True when the AVX-512 cosine-kernel tile reduction is compiled in and this CPU runs it.");
  const char* doc =
      "acc[i, c] += sum_j K(x_i, z_j) V[j, c] for a cosine kernel of the form (slope, offset, sign, "
      "mu, nu, radial, coef), cosines with |c| >= near from the rows' differences (csrc/cpu_cosine.cpp): inner "
      "products, kernel and float64 sums fused; with VX and acc_z also acc_z[j, c] += sum_i K(x_i, z_j) VX[i, c] "
      "from the same kernel values.";
  // noconvert: X, sx, Z, sz and acc are used as given (C-contiguous, X's dtype; acc float64),
  // never as silent copies (a copy of acc would drop the sums)
  m.def("cosine_reduce", &cosine_reduce<float>, py::arg("X").noconvert(), py::arg("sx").noconvert(),
        py::arg("Z").noconvert(), py::arg("sz").noconvert(), py::arg("V"), py::arg("acc").noconvert(),
        py::arg("slope"), py::arg("offset"), py::arg("sign"), py::arg("mu"), py::arg("nu"),
        py::arg("radial"), py::arg("coef"), py::arg("near"), py::arg("VX") = py::none(),
        py::arg("acc_z") = py::none(), doc);
  m.def("cosine_reduce", &cosine_reduce<double>, py::arg("X").noconvert(), py::arg("sx").noconvert(),
        py::arg("Z").noconvert(), py::arg("sz").noconvert(), py::arg("V"), py::arg("acc").noconvert(),
        py::arg("slope"), py::arg("offset"), py::arg("sign"), py::arg("mu"), py::arg("nu"),
        py::arg("radial"), py::arg("coef"), py::arg("near"), py::arg("VX") = py::none(),
        py::arg("acc_z") = py::none(), doc);
}

}  // namespace cpu
}  // namespace pyfeat
