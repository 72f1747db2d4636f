// The fused epilogue of the network gradient (pyfeat.ops.blocked.network_gradient), between the
// two cuBLAS GEMMs Z = X_b Wᵀ and Zᵀ X_b: from the pre-activations Z of a row block,
//
//   1. rows:    r_i = Σ_j a_j max(Z_ij + b_j, 0) − y_i             (one thread block per row, in double)
//   2. columns: ga_j = Σ_i r_i max(Z_ij + b_j, 0), gb_j = Σ_i r_i 1[Z_ij + b_j ≥ 0] (double), and
//               Z_ij ← r_i 1[Z_ij + b_j ≥ 0] in place               (threads along j: coalesced)
//
// Kernel 2 splits the rows into `splits` chunks (grid.y) so that a block of few columns still
// fills the GPU; chunk c writes its partial sums to parts[c * m + j] (ga) and
// parts[(splits + c) * m + j] (gb), which the caller adds: no atomics, deterministic results.
#include <algorithm>

#include "common.cuh"
#include "pyfeat/cuda_ops.hpp"

namespace pyfeat::cuda {
namespace {

using detail::ceil_div;
using detail::require;
using detail::require_nonnegative;
using detail::require_pointer;

constexpr int ROW_THREADS = 256;
constexpr int COL_THREADS = 256;

template <class T>
__global__ void __launch_bounds__(ROW_THREADS)
    residual_rows(const T* __restrict__ Z, std::int64_t ldz, std::int64_t rows, std::int64_t m,
                  const T* __restrict__ b, const T* __restrict__ a, const T* __restrict__ y,
                  double* __restrict__ r) {
  __shared__ double partial[ROW_THREADS / 32];
  for (std::int64_t i = blockIdx.x; i < rows; i += gridDim.x) {
    const T* z = Z + i * ldz;
    double f = 0.0;
    for (std::int64_t j = threadIdx.x; j < m; j += ROW_THREADS) {
      const T u = z[j] + b[j];
      f += double(a[j]) * double(u > T(0) ? u : T(0));
    }
    for (int off = 16; off > 0; off /= 2) f += __shfl_down_sync(0xffffffffu, f, off);
    if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = f;
    __syncthreads();
    if (threadIdx.x == 0) {
      double s = 0.0;
      for (int w = 0; w < ROW_THREADS / 32; ++w) s += partial[w];
      r[i] = s - double(y[i]);
    }
    __syncthreads();
  }
}

template <class T>
__global__ void __launch_bounds__(COL_THREADS)
    residual_cols(T* __restrict__ Z, std::int64_t ldz, std::int64_t rows, std::int64_t m,
                  const T* __restrict__ b, const double* __restrict__ r, std::int64_t chunk,
                  double* __restrict__ parts) {
  const std::int64_t j = std::int64_t(blockIdx.x) * COL_THREADS + threadIdx.x;
  if (j >= m) return;
  const std::int64_t begin = std::int64_t(blockIdx.y) * chunk;
  const std::int64_t end = begin + chunk < rows ? begin + chunk : rows;
  const T bj = b[j];
  double ga = 0.0, gb = 0.0;
  for (std::int64_t i = begin; i < end; ++i) {
    T* z = Z + i * ldz + j;
    const T u = *z + bj;
    const double ri = r[i];
    if (u >= T(0)) {
      ga += ri * double(u);
      gb += ri;
      *z = T(ri);
    } else {
      *z = T(0);
    }
  }
  parts[std::int64_t(blockIdx.y) * m + j] = ga;
  parts[(std::int64_t(gridDim.y) + blockIdx.y) * m + j] = gb;
}

}  // namespace

template <class T>
void relu_residual(T* Z, std::int64_t ldz, std::int64_t rows, std::int64_t m, const T* b,
                   const T* a, const T* y, double* r, double* parts, std::int64_t splits,
                   std::uintptr_t stream) {
  const char* op = "relu_residual";
  require_nonnegative(op, "rows", rows);
  require_nonnegative(op, "m", m);
  require(splits >= 1 && splits <= 65535, op,
          "splits must be in [1, 65535], got " + std::to_string(splits));
  require(ldz >= m, op, "leading dimension " + std::to_string(ldz) + " < m " + std::to_string(m));
  require_pointer(op, "Z", Z, rows * m);
  require_pointer(op, "b", b, m);
  require_pointer(op, "a", a, m);
  require_pointer(op, "y", y, rows);
  require_pointer(op, "r", r, rows);
  require_pointer(op, "parts", parts, 2 * splits * m);
  if (m == 0) return;
  const cudaStream_t s = detail::as_stream(stream);
  if (rows == 0) {  // every partial sum is zero
    CHECK_CUDA(cudaMemsetAsync(parts, 0, sizeof(double) * 2 * splits * m, s));
    return;
  }
  residual_rows<<<unsigned(std::min<std::int64_t>(rows, 1 << 20)), ROW_THREADS, 0, s>>>(
      Z, ldz, rows, m, b, a, y, r);
  CHECK_LAUNCH();
  const dim3 grid(unsigned(ceil_div(m, COL_THREADS)), unsigned(splits));
  residual_cols<<<grid, COL_THREADS, 0, s>>>(Z, ldz, rows, m, b, r, ceil_div(rows, splits), parts);
  CHECK_LAUNCH();
}

#define PYFEAT_INSTANTIATE(T)                                                                  \
  template void relu_residual<T>(T*, std::int64_t, std::int64_t, std::int64_t, const T*,       \
                                 const T*, const T*, double*, double*, std::int64_t,           \
                                 std::uintptr_t);
PYFEAT_INSTANTIATE(float)
PYFEAT_INSTANTIATE(double)
#undef PYFEAT_INSTANTIATE

}  // namespace pyfeat::cuda
