// The fused epilogues of the Taylor-model ops (pyfeat.ops.blocked.taylor_gradient and
// taylor_predict), after the cuBLAS GEMM Z = φ [W0; W]ᵀ of a row block (rows × 2m: U0 | U before
// the biases bb) and before Pᵀφ:
//
//   1. rows:    f_i = Σ_j taylor_neuron(u0_ij, u_ij) (one thread block per row, in double);
//               r_i = f_i − y_i, and Z_ij ← slope_ij for j < m (taylor_math.hpp)
//   2. columns: Z_ij ← r_i slope_ij and gb_j = Σ_i r_i slope_ij (double) for j < m
//               (threads along j: coalesced)
//
// Kernel 2 splits the rows into `splits` chunks (grid.y); chunk c writes its partial sums to
// parts[c * m + j], which the caller adds: no atomics, deterministic results. The forward op runs
// kernel 1 alone, writing f_i (no y, Z unchanged).
#include <algorithm>

#include "common.cuh"
#include "pyfeat/cuda_ops.hpp"
#include "pyfeat/taylor_math.hpp"

namespace pyfeat::cuda {
namespace {

using detail::ceil_div;
using detail::require;
using detail::require_nonnegative;
using detail::require_pointer;

constexpr int ROW_THREADS = 256;
constexpr int COL_THREADS = 256;

// out[i] = Σ_j term_ij − (y ? y[i] : 0); with `keep_slope`, Z_ij ← slope_ij for j < m.
template <class T, class Out>
__global__ void __launch_bounds__(ROW_THREADS)
    taylor_rows(T* __restrict__ Z, std::int64_t ldz, std::int64_t rows, std::int64_t m,
                const T* __restrict__ bb, const T* __restrict__ a1, const T* __restrict__ a2,
                const T* __restrict__ y, int code, bool keep_slope, Out* __restrict__ out) {
  __shared__ double partial[ROW_THREADS / 32];
  for (std::int64_t i = blockIdx.x; i < rows; i += gridDim.x) {
    T* z = Z + i * ldz;
    double f = 0.0;
    for (std::int64_t j = threadIdx.x; j < m; j += ROW_THREADS) {
      T slope;
      f += double(taylor_neuron<T>(code, z[j] + bb[j], z[m + j] + bb[m + j], a1[j], a2[j], slope));
      if (keep_slope) z[j] = slope;
    }
    for (int off = 16; off > 0; off /= 2) f += __shfl_down_sync(0xffffffffu, f, off);
    if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = f;
    __syncthreads();
    if (threadIdx.x == 0) {
      double s = 0.0;
      for (int w = 0; w < ROW_THREADS / 32; ++w) s += partial[w];
      out[i] = Out(s - (y ? double(y[i]) : 0.0));
    }
    __syncthreads();
  }
}

template <class T>
__global__ void __launch_bounds__(COL_THREADS)
    taylor_cols(T* __restrict__ Z, std::int64_t ldz, std::int64_t rows, std::int64_t m,
                const double* __restrict__ r, std::int64_t chunk, double* __restrict__ parts) {
  const std::int64_t j = std::int64_t(blockIdx.x) * COL_THREADS + threadIdx.x;
  if (j >= m) return;
  const std::int64_t begin = std::int64_t(blockIdx.y) * chunk;
  const std::int64_t end = begin + chunk < rows ? begin + chunk : rows;
  double gb = 0.0;
  for (std::int64_t i = begin; i < end; ++i) {
    T* z = Z + i * ldz + j;
    const double p = r[i] * double(*z);
    gb += p;
    *z = T(p);
  }
  parts[std::int64_t(blockIdx.y) * m + j] = gb;
}

template <class T>
void check_common(const char* op, const T* Z, std::int64_t ldz, std::int64_t rows,
                  std::int64_t m, const T* bb, const T* a1, const T* a2, int code) {
  require_nonnegative(op, "rows", rows);
  require_nonnegative(op, "m", m);
  require(is_activation_code(code), op, "unknown activation code " + std::to_string(code));
  require(ldz >= 2 * m, op,
          "leading dimension " + std::to_string(ldz) + " < 2m " + std::to_string(2 * m));
  require_pointer(op, "Z", Z, rows * m);
  require_pointer(op, "bb", bb, 2 * m);
  require_pointer(op, "a1", a1, m);
  require_pointer(op, "a2", a2, m);
}

unsigned row_grid(std::int64_t rows) { return unsigned(std::min<std::int64_t>(rows, 1 << 20)); }

}  // namespace

template <class T>
void taylor_residual(T* Z, std::int64_t ldz, std::int64_t rows, std::int64_t m, const T* bb,
                     const T* a1, const T* a2, const T* y, int code, double* r, double* parts,
                     std::int64_t splits, std::uintptr_t stream) {
  const char* op = "taylor_residual";
  check_common(op, Z, ldz, rows, m, bb, a1, a2, code);
  require(splits >= 1 && splits <= 65535, op,
          "splits must be in [1, 65535], got " + std::to_string(splits));
  require_pointer(op, "y", y, rows);
  require_pointer(op, "r", r, rows);
  require_pointer(op, "parts", parts, splits * m);
  if (m == 0) return;
  const cudaStream_t s = detail::as_stream(stream);
  if (rows == 0) {  // every partial sum is zero
    CHECK_CUDA(cudaMemsetAsync(parts, 0, sizeof(double) * splits * m, s));
    return;
  }
  taylor_rows<T, double><<<row_grid(rows), ROW_THREADS, 0, s>>>(Z, ldz, rows, m, bb, a1, a2, y,
                                                                code, true, r);
  CHECK_LAUNCH();
  const dim3 grid(unsigned(ceil_div(m, COL_THREADS)), unsigned(splits));
  taylor_cols<<<grid, COL_THREADS, 0, s>>>(Z, ldz, rows, m, r, ceil_div(rows, splits), parts);
  CHECK_LAUNCH();
}

template <class T>
void taylor_forward(const T* Z, std::int64_t ldz, std::int64_t rows, std::int64_t m, const T* bb,
                    const T* a1, const T* a2, int code, T* out, std::uintptr_t stream) {
  const char* op = "taylor_forward";
  check_common(op, Z, ldz, rows, m, bb, a1, a2, code);
  require_pointer(op, "out", out, rows);
  if (rows == 0) return;
  // keep_slope = false: Z is only read
  taylor_rows<T, T><<<row_grid(rows), ROW_THREADS, 0, detail::as_stream(stream)>>>(
      const_cast<T*>(Z), ldz, rows, m, bb, a1, a2, nullptr, code, false, out);
  CHECK_LAUNCH();
}

#define PYFEAT_INSTANTIATE(T)                                                                    \
  template void taylor_residual<T>(T*, std::int64_t, std::int64_t, std::int64_t, const T*,       \
                                   const T*, const T*, const T*, int, double*, double*,          \
                                   std::int64_t, std::uintptr_t);                                \
  template void taylor_forward<T>(const T*, std::int64_t, std::int64_t, std::int64_t, const T*,  \
                                  const T*, const T*, int, T*, std::uintptr_t);
PYFEAT_INSTANTIATE(float)
PYFEAT_INSTANTIATE(double)
#undef PYFEAT_INSTANTIATE

}  // namespace pyfeat::cuda
