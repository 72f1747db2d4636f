// The cosine kernels' tile reduction on x86-64 CPUs with AVX-512 or AVX2 + FMA:
// acc[i, c] += sum_j K(x_i, z_j) V[j, c] for ntk, nngp and arccos0, with the inner products, the
// kernel and the sums in registers (float64, or float32 within a tile for float32 X and V).
//
// Why: at d = 32 pyfeat's portable path (a BLAS GEMM writes the tile, then a Numba pass reads it
// back to evaluate the kernel) spends as long in that second pass as in the GEMM, and half of the
// pass is the tile's round trip through the L2 cache. Here the rows are scaled to unit norm, an
// MR-row x NV-vector block of their inner products (the cosines) is accumulated in registers over
// k = 0..d-1 and the kernel is evaluated on it at once. Measured (ntk, n = 20,000, d = 32,
// 2 threads, time / GEMM floor 2n^2 d/R, one-sided): AVX-512 Xeon float32 1.8-2.1 against 3.2-3.3
// for BLAS + Numba, float64 2.0-2.5 against 3.8, at d = 128 1.4-1.6 against 1.7-2.1; AVX-512 EPYC
// (Zen 4) float32 1.5-1.7, float64 2.0-2.1; the symmetric product 1.0-1.2 (float32) on both;
// AVX2 (EPYC Zen 3): see pyfeat.ops._numba (SIMD_MAX_D). Above SIMD_MAX_D BLAS's cache-blocked GEMM wins, and pyfeat.ops._numba sends those
// tiles there.
//
// Up to 4 columns of V the sums stay in registers; 5 to kMaxColumns = 32 columns (ridge="auto"'s 25
// shifted systems) are counted at run time, their sums in the L1 cache, so that each pair is still
// evaluated once for all columns (ntk, n = 20,000, d = 32, 2-core Xeon, float32, one-sided: 8
// columns 0.27 s, 25 columns 0.40 s, against 0.41 / 0.63 s for the tile stored and reduced by GEMM;
// 1 column 0.21 s).
//
// The same register blocks also write the kernel values themselves (cosine_store): kernel_matrix's
// tiles and the tile a GEMM reduces against more columns of V than the loop takes, so that those tiles are
// written once from registers instead of by a BLAS GEMM and then read and rewritten by a Numba pass
// (ntk, n = 20,000, d = 32, 2-core EPYC Zen 5, SkylakeX OpenBLAS, float32: kernel_matrix 0.183 s
// against 0.243 s, 8 columns 0.159 s against 0.196 s; float64 0.449 / 0.580 s, 0.367 / 0.454 s).
//
// One loop (csrc/cosine_tile.inc) is compiled once per instruction set, in the namespaces avx512
// (16 float32 lanes, 32 registers: an 8 x 2 block) and avx2 (8 lanes, 16 registers: 4 x 2), each
// with the target attribute of its ISA, so that the rest of the extension needs neither; the
// binding takes the best ISA the CPU runs (or the one asked for: the tests run both).
//
// The formula is the one of pyfeat.ops._numba (_ov_cosine_unit, _acos), written in one form
// with the coefficients and constants passed from there (pyfeat.ops._numba._COSINE_FORMS):
//   c = <x, z>/(|x||z|), where |c| >= near from the rows' difference (exact_cosine, as
//   pyfeat.ops._numba._exact_cosine), a = |c|, r = sqrt(max(1 - a, 0)) P(mu a + nu),
//   h = c >= 0 ? slope c + offset + sign r : r,        K = u_x v_z h,
// with u_x = |x|/(2 pi) and v_z = |z| for ntk and nngp (radial), 1/(2 pi) and 1 for arccos0.
// tests/test_ops.py compares this path (each ISA the CPU runs) with the Numba one and with the
// float64 reference.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "pyfeat/cpu_ops.hpp"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define PYFEAT_X86_SIMD 1
#include <immintrin.h>
#endif

namespace py = pybind11;

namespace pyfeat {
namespace cpu {

std::vector<std::string> cosine_reduce_isas() {
  std::vector<std::string> isas;
#ifdef PYFEAT_X86_SIMD
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) isas.push_back("avx2");
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")) isas.push_back("avx512");
#endif
  return isas;
}

bool cosine_reduce_available() { return !cosine_reduce_isas().empty(); }

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

// The most columns of V one cosine_reduce call takes (the loop's sums of MR rows x kMaxColumns
// vectors sit on the stack: 16 KiB on AVX-512); ridge="auto"'s 25 shifted systems fit.
constexpr int kMaxColumns = 32;

#ifdef PYFEAT_X86_SIMD
namespace avx512 {
#define PF_SIMD __attribute__((target("avx512f,avx512dq,fma"), always_inline)) inline
#define PF_SIMD_ENTRY __attribute__((target("avx512f,avx512dq,fma")))

// the float64 sums: 8 lanes
struct Doubles {
  using D = __m512d;
  static constexpr int DL = 8;
  static PF_SIMD D dzero() { return _mm512_setzero_pd(); }
  static PF_SIMD D dset1(double x) { return _mm512_set1_pd(x); }
  static PF_SIMD D dload(const double* p) { return _mm512_loadu_pd(p); }
  static PF_SIMD void dstore(double* p, D a) { _mm512_storeu_pd(p, a); }
  static PF_SIMD D dadd(D a, D b) { return _mm512_add_pd(a, b); }
  static PF_SIMD D dfma(D a, D b, D c) { return _mm512_fmadd_pd(a, b, c); }
  static PF_SIMD double dsum(D a) { return _mm512_reduce_add_pd(a); }
};

template <class T>
struct Simd;

template <>
struct Simd<float> : Doubles {
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
  static PF_SIMD bool any(M m) { return m != 0; }
  // h in H parts of DL lanes: part q of h, in float64
  static constexpr int H = 2;
  static PF_SIMD D half(V h, int q) {
    return q == 0 ? _mm512_cvtps_pd(_mm512_castps512_ps256(h))
                  : _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(h), 1)));
  }
};

template <>
struct Simd<double> : Doubles {
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
  static PF_SIMD bool any(M m) { return m != 0; }
  static constexpr int H = 1;
  static PF_SIMD D half(V h, int) { return h; }
};

// The register block: 8 x 2, 4 x 4, 6 x 4, 12 x 2 and 14 x 2 measured within 10 % of each other
// at d = 32.
constexpr int MR = 8;
constexpr int NV = 2;

#include "cosine_tile.inc"

#undef PF_SIMD
#undef PF_SIMD_ENTRY
}  // namespace avx512

namespace avx2 {
#define PF_SIMD __attribute__((target("avx2,fma"), always_inline)) inline
#define PF_SIMD_ENTRY __attribute__((target("avx2,fma")))

// the float64 sums: 4 lanes
struct Doubles {
  using D = __m256d;
  static constexpr int DL = 4;
  static PF_SIMD D dzero() { return _mm256_setzero_pd(); }
  static PF_SIMD D dset1(double x) { return _mm256_set1_pd(x); }
  static PF_SIMD D dload(const double* p) { return _mm256_loadu_pd(p); }
  static PF_SIMD void dstore(double* p, D a) { _mm256_storeu_pd(p, a); }
  static PF_SIMD D dadd(D a, D b) { return _mm256_add_pd(a, b); }
  static PF_SIMD D dfma(D a, D b, D c) { return _mm256_fmadd_pd(a, b, c); }
  static PF_SIMD double dsum(D a) {
    const __m128d s = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
  }
};

template <class T>
struct Simd;

// AVX2 has no mask registers: a comparison gives a vector of all-ones / all-zeros lanes
template <>
struct Simd<float> : Doubles {
  using V = __m256;
  using M = __m256;
  static constexpr int L = 8;
  static PF_SIMD V load(const float* p) { return _mm256_loadu_ps(p); }
  static PF_SIMD void store(float* p, V a) { _mm256_storeu_ps(p, a); }
  static PF_SIMD V set1(float x) { return _mm256_set1_ps(x); }
  static PF_SIMD V zero() { return _mm256_setzero_ps(); }
  static PF_SIMD V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static PF_SIMD V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static PF_SIMD V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static PF_SIMD V max(V a, V b) { return _mm256_max_ps(a, b); }
  static PF_SIMD V abs(V a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
  static PF_SIMD V sqrt(V a) { return _mm256_sqrt_ps(a); }
  static PF_SIMD M nonnegative(V a) { return _mm256_cmp_ps(a, _mm256_setzero_ps(), _CMP_GE_OQ); }
  static PF_SIMD M at_least(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
  static PF_SIMD V select(M m, V yes, V no) { return _mm256_blendv_ps(no, yes, m); }
  static PF_SIMD bool any(M m) { return _mm256_movemask_ps(m) != 0; }
  static constexpr int H = 2;
  static PF_SIMD D half(V h, int q) {
    return _mm256_cvtps_pd(q == 0 ? _mm256_castps256_ps128(h) : _mm256_extractf128_ps(h, 1));
  }
};

template <>
struct Simd<double> : Doubles {
  using V = __m256d;
  using M = __m256d;
  static constexpr int L = 4;
  static PF_SIMD V load(const double* p) { return _mm256_loadu_pd(p); }
  static PF_SIMD void store(double* p, V a) { _mm256_storeu_pd(p, a); }
  static PF_SIMD V set1(double x) { return _mm256_set1_pd(x); }
  static PF_SIMD V zero() { return _mm256_setzero_pd(); }
  static PF_SIMD V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static PF_SIMD V mul(V a, V b) { return _mm256_mul_pd(a, b); }
  static PF_SIMD V sub(V a, V b) { return _mm256_sub_pd(a, b); }
  static PF_SIMD V max(V a, V b) { return _mm256_max_pd(a, b); }
  static PF_SIMD V abs(V a) { return _mm256_andnot_pd(_mm256_set1_pd(-0.0), a); }
  static PF_SIMD V sqrt(V a) { return _mm256_sqrt_pd(a); }
  static PF_SIMD M nonnegative(V a) { return _mm256_cmp_pd(a, _mm256_setzero_pd(), _CMP_GE_OQ); }
  static PF_SIMD M at_least(V a, V b) { return _mm256_cmp_pd(a, b, _CMP_GE_OQ); }
  static PF_SIMD V select(M m, V yes, V no) { return _mm256_blendv_pd(no, yes, m); }
  static PF_SIMD bool any(M m) { return _mm256_movemask_pd(m) != 0; }
  static constexpr int H = 1;
  static PF_SIMD D half(V h, int) { return h; }
};

// The register block: 16 registers hold the MR NV accumulators, NV vectors of Z and a broadcast.
// 4 x 2 measured 10-40 % faster than 6 x 2, 4 x 3 and 3 x 4 (AMD EPYC, d = 32 and 128, one thread).
constexpr int MR = 4;
constexpr int NV = 2;

#include "cosine_tile.inc"

#undef PF_SIMD
#undef PF_SIMD_ENTRY
}  // namespace avx2
#endif  // PYFEAT_X86_SIMD

template <class T>
using carray = py::array_t<T, py::array::c_style | py::array::forcecast>;


// Whether the loop runs on AVX-512 (else AVX2) for isa = "auto" (the best of cosine_reduce_isas())
// or one named; the error names the caller.
bool wide_isa(const std::string& isa, const std::string& caller) {
  static const std::vector<std::string> isas = cosine_reduce_isas();
  if (isas.empty())
    throw std::runtime_error(caller + ": needs an x86-64 CPU with AVX2 + FMA or AVX-512 (cosine_reduce_isas())");
  if (isa != "auto" && std::find(isas.begin(), isas.end(), isa) == isas.end())
    throw std::invalid_argument(caller + ": isa must be 'auto' or one this CPU runs (cosine_reduce_isas()), got '" +
                                isa + "'");
  return isa == "auto" ? isas.back() == "avx512" : isa == "avx512";
}

// The forms the loops are compiled for (pyfeat.ops._numba._COSINE_FORMS): ramps (offset 0, sign 1)
// with 8 or 19 coefficients, the others with 8 or 27; checked before the loop releases the GIL.
void check_form_size(double offset, double sign, int64_t size, const std::string& caller) {
  const bool ramp = offset == 0.0 && sign == 1.0;
  if (!(size == 8 || (ramp && size == 19) || (!ramp && size == 27)))
    throw std::invalid_argument(caller + ": coef must have 8 or 19 coefficients (offset 0, sign 1) or 8 or 27 (otherwise)");
}

template <class T>
void cosine_reduce(carray<T> X, carray<T> sx, carray<T> Z, carray<T> sz, py::array V,
                   py::array_t<double> acc, double slope, double offset, double sign, double mu,
                   double nu, bool radial, carray<double> coef, double near, py::object VX,
                   py::object acc_z, const std::string& isa) {
  const bool wide = wide_isa(isa, "cosine_reduce");
  if (X.ndim() != 2 || Z.ndim() != 2 || X.shape(1) != Z.shape(1) || sx.ndim() != 1 ||
      sz.ndim() != 1 || sx.shape(0) != X.shape(0) || sz.shape(0) != Z.shape(0) || V.ndim() != 2 ||
      V.shape(0) != Z.shape(0) || V.shape(1) < 1 || V.shape(1) > kMaxColumns || acc.ndim() != 2 ||
      acc.shape(0) != X.shape(0) || acc.shape(1) != V.shape(1) || coef.ndim() != 1 || coef.shape(0) < 1)
    throw std::invalid_argument("cosine_reduce: X (rows, d), sx (rows,), Z (cols, d), sz (cols,), "
                                "V (cols, k <= 32), acc (rows, k), coef (degree + 1,) expected");
  if (!(acc.flags() & py::array::c_style) || !acc.writeable())
    throw std::invalid_argument("cosine_reduce: acc must be a writeable C-contiguous float64 array");
  if (VX.is_none() != acc_z.is_none())
    throw std::invalid_argument("cosine_reduce: VX and acc_z go together");
  check_form_size(offset, sign, coef.shape(0), "cosine_reduce");
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
#ifdef PYFEAT_X86_SIMD
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
    (wide ? avx512::reduce_tile<T, double> : avx2::reduce_tile<T, double>)(
        X.data(), sx.data(), rows, Z.data(), sz.data(), cols, d, Vd.data(), vxd, k, form, out, out_z);
  } else {
    const carray<T> Vt = carray<T>::ensure(V);
    if (!Vt) throw std::invalid_argument("cosine_reduce: V must be a float32 or float64 array");
    const T* vxt = both ? static_cast<const T*>(vx.data()) : nullptr;
    py::gil_scoped_release release;
    (wide ? avx512::reduce_tile<T, T> : avx2::reduce_tile<T, T>)(
        X.data(), sx.data(), rows, Z.data(), sz.data(), cols, d, Vt.data(), vxt, k, form, out, out_z);
  }
#else
  (void)slope, (void)offset, (void)sign, (void)mu, (void)nu, (void)radial, (void)near, (void)wide;
#endif
}

// R <- K(X, Z) for a cosine kernel of the given form (R: rows x cols, C-contiguous rows, any row
// stride: a tile of a wider output), the kernel values written once from registers.
template <class T>
void cosine_store(carray<T> X, carray<T> sx, carray<T> Z, carray<T> sz, py::array_t<T> R, double slope,
                  double offset, double sign, double mu, double nu, bool radial, carray<double> coef,
                  double near, const std::string& isa) {
  const bool wide = wide_isa(isa, "cosine_store");
  if (X.ndim() != 2 || Z.ndim() != 2 || X.shape(1) != Z.shape(1) || sx.ndim() != 1 || sz.ndim() != 1 ||
      sx.shape(0) != X.shape(0) || sz.shape(0) != Z.shape(0) || R.ndim() != 2 || R.shape(0) != X.shape(0) ||
      R.shape(1) != Z.shape(0) || coef.ndim() != 1 || coef.shape(0) < 1)
    throw std::invalid_argument("cosine_store: X (rows, d), sx (rows,), Z (cols, d), sz (cols,), R (rows, cols), "
                                "coef (degree + 1,) expected");
  check_form_size(offset, sign, coef.shape(0), "cosine_store");
  if (R.shape(0) == 0 || R.shape(1) == 0) return;  // (NumPy gives empty arrays zero strides)
  if (!R.writeable() || R.strides(1) != ssize_t(sizeof(T)) || R.strides(0) % ssize_t(sizeof(T)) != 0 ||
      R.strides(0) < R.shape(1) * ssize_t(sizeof(T)))
    throw std::invalid_argument("cosine_store: R must be writeable, in X's dtype, with contiguous rows");
#ifdef PYFEAT_X86_SIMD
  const Form<T> form{T(slope), T(offset), T(sign), T(mu), T(nu), T(near), radial,
                     std::vector<T>(coef.data(), coef.data() + coef.shape(0))};
  const int64_t rows = X.shape(0), cols = Z.shape(0), d = X.shape(1), ldr = R.strides(0) / ssize_t(sizeof(T));
  T* out = R.mutable_data();
  py::gil_scoped_release release;
  (wide ? avx512::store_tile<T> : avx2::store_tile<T>)(X.data(), sx.data(), rows, Z.data(), sz.data(), cols, d,
                                                       form, out, ldr);
#else
  (void)slope, (void)offset, (void)sign, (void)mu, (void)nu, (void)radial, (void)near, (void)wide;
#endif
}

// cosine_reduce and cosine_store for X in T (one overload per dtype). noconvert: X, sx, Z, sz, acc
// and R are used as given (C-contiguous, X's dtype; acc float64), never as silent copies (a copy of
// acc or R would drop the results).
template <class T>
void def_loops(py::module_& m, const char* reduce_doc, const char* store_doc) {
  m.def("cosine_reduce", &cosine_reduce<T>, py::arg("X").noconvert(), py::arg("sx").noconvert(),
        py::arg("Z").noconvert(), py::arg("sz").noconvert(), py::arg("V"), py::arg("acc").noconvert(),
        py::arg("slope"), py::arg("offset"), py::arg("sign"), py::arg("mu"), py::arg("nu"),
        py::arg("radial"), py::arg("coef"), py::arg("near"), py::arg("VX") = py::none(),
        py::arg("acc_z") = py::none(), py::arg("isa") = "auto", reduce_doc);
  m.def("cosine_store", &cosine_store<T>, py::arg("X").noconvert(), py::arg("sx").noconvert(),
        py::arg("Z").noconvert(), py::arg("sz").noconvert(), py::arg("R").noconvert(), py::arg("slope"),
        py::arg("offset"), py::arg("sign"), py::arg("mu"), py::arg("nu"), py::arg("radial"), py::arg("coef"),
        py::arg("near"), py::arg("isa") = "auto", store_doc);
}

}  // namespace

void register_bindings(py::module_& m) {
  m.def("cosine_reduce_available", &cosine_reduce_available,
        "True when the cosine-kernel tile reduction is compiled in and this CPU runs it (AVX2 + FMA or AVX-512).");
  m.attr("cosine_max_columns") = kMaxColumns;  // the most columns of V one cosine_reduce call takes
  m.def("cosine_reduce_isas", &cosine_reduce_isas,
        "The instruction sets of the cosine-kernel tile reduction this CPU runs, best last: 'avx2', 'avx512'.");
  const char* doc =
      "acc[i, c] += sum_j K(x_i, z_j) V[j, c] for a cosine kernel of the form (slope, offset, sign, "
      "mu, nu, radial, coef), cosines with |c| >= near from the rows' differences (csrc/cpu_cosine.cpp): inner "
      "products, kernel and sums fused (float64; float32 within the tile for float32 X and V); with VX and acc_z also acc_z[j, c] += sum_i K(x_i, z_j) VX[i, c] "
      "from the same kernel values. isa: 'auto' (the best of cosine_reduce_isas()), 'avx2' or 'avx512'.";
  const char* store_doc =
      "R[i, j] = K(x_i, z_j) for a cosine kernel of the form (slope, offset, sign, mu, nu, radial, coef), cosines "
      "with |c| >= near from the rows' differences (csrc/cpu_cosine.cpp): the inner products and the kernel in "
      "registers, each value written once. R: (rows, cols) in X's dtype with contiguous rows (a tile of a wider "
      "array is fine). isa: 'auto', 'avx2' or 'avx512'.";
  def_loops<float>(m, doc, store_doc);
  def_loops<double>(m, doc, store_doc);
}

}  // namespace cpu
}  // namespace pyfeat
