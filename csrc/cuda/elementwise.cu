// In-place element-wise passes over a row-major matrix block, fused between cuBLAS GEMMs:
// mask_times_y (first-step gradient), relu_bias (ReLU features), kernel_matrix (kernel of a GEMM
// tile of inner products). One 2-D grid-stride kernel applies a small functor to every entry.
#include <algorithm>

#include "common.cuh"
#include "pyfeat/cuda_ops.hpp"
#include "pyfeat/kernel_math.hpp"

namespace pyfeat::cuda {
namespace {

using detail::ceil_div;
using detail::require;
using detail::require_nonnegative;
using detail::require_pointer;

// Z[i, j] <- f(Z[i, j], i, j) for i < rows, j < cols; threads run along j (coalesced) and
// stride over the whole matrix, so any shape works with a capped grid.
template <class T, class F>
__global__ void apply_2d(T* __restrict__ Z, std::int64_t ldz, std::int64_t rows, std::int64_t cols,
                         F f) {
  const std::int64_t i0 = std::int64_t(blockIdx.y) * blockDim.y + threadIdx.y;
  const std::int64_t j0 = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const std::int64_t si = std::int64_t(gridDim.y) * blockDim.y;
  const std::int64_t sj = std::int64_t(gridDim.x) * blockDim.x;
  for (std::int64_t i = i0; i < rows; i += si)
    for (std::int64_t j = j0; j < cols; j += sj) {
      T* z = Z + i * ldz + j;
      *z = f(*z, i, j);
    }
}

template <class T, class F>
void launch_2d(const char* op, T* Z, std::int64_t ldz, std::int64_t rows, std::int64_t cols, F f,
               std::uintptr_t stream) {
  require_nonnegative(op, "rows", rows);
  require_nonnegative(op, "cols", cols);
  require(ldz >= cols, op, "leading dimension " + std::to_string(ldz) + " < cols " +
                               std::to_string(cols));
  require_pointer(op, "Z", Z, rows * cols);
  if (rows == 0 || cols == 0) return;
  const dim3 block(32, 8);
  const dim3 grid(unsigned(std::min<std::int64_t>(ceil_div(cols, block.x), 65535)),
                  unsigned(std::min<std::int64_t>(ceil_div(rows, block.y), 65535)));
  apply_2d<<<grid, block, 0, detail::as_stream(stream)>>>(Z, ldz, rows, cols, f);
  CHECK_LAUNCH();
}

template <class T>
struct MaskTimesY {
  const T* b;
  const T* y;
  __device__ T operator()(T z, std::int64_t i, std::int64_t j) const {
    return z + b[j] >= T(0) ? y[i] : T(0);
  }
};

template <class T>
struct ReluBias {
  const T* b;
  __device__ T operator()(T z, std::int64_t, std::int64_t j) const {
    const T v = z + b[j];
    return v > T(0) ? v : T(0);
  }
};

template <class T>
struct KernelOfInner {
  int code;
  T p0, p1, p2;
  const T* sx;
  const T* sz;
  __device__ T operator()(T g, std::int64_t i, std::int64_t j) const {
    return kernel_value<T>(code, g, sx[i], sz[j], p0, p1, p2);
  }
};

}  // namespace

template <class T>
void mask_times_y(T* Z, std::int64_t ldz, std::int64_t rows, std::int64_t m, const T* b,
                  const T* y, std::uintptr_t stream) {
  require_pointer("mask_times_y", "b", b, m);
  require_pointer("mask_times_y", "y", y, rows);
  launch_2d("mask_times_y", Z, ldz, rows, m, MaskTimesY<T>{b, y}, stream);
}

template <class T>
void relu_bias(T* Z, std::int64_t ldz, std::int64_t rows, std::int64_t m, const T* b,
               std::uintptr_t stream) {
  require_pointer("relu_bias", "b", b, m);
  launch_2d("relu_bias", Z, ldz, rows, m, ReluBias<T>{b}, stream);
}

template <class T>
void kernel_matrix(int code, double p0, double p1, double p2, T* G, std::int64_t ldg,
                   std::int64_t rows, std::int64_t cols, const T* sx, const T* sz,
                   std::uintptr_t stream) {
  require(is_kernel_code(code), "kernel_matrix", "unknown kernel code " + std::to_string(code));
  require_pointer("kernel_matrix", "sx", sx, rows);
  require_pointer("kernel_matrix", "sz", sz, cols);
  launch_2d("kernel_matrix", G, ldg, rows, cols,
            KernelOfInner<T>{code, T(p0), T(p1), T(p2), sx, sz}, stream);
}

int runtime_version() {
  int v = 0;
  CHECK_CUDA(cudaRuntimeGetVersion(&v));
  return v;
}

#define PYFEAT_INSTANTIATE(T)                                                                    \
  template void mask_times_y<T>(T*, std::int64_t, std::int64_t, std::int64_t, const T*,          \
                                const T*, std::uintptr_t);                                       \
  template void relu_bias<T>(T*, std::int64_t, std::int64_t, std::int64_t, const T*,             \
                             std::uintptr_t);                                                    \
  template void kernel_matrix<T>(int, double, double, double, T*, std::int64_t, std::int64_t,    \
                                 std::int64_t, const T*, const T*, std::uintptr_t);
PYFEAT_INSTANTIATE(float)
PYFEAT_INSTANTIATE(double)
#undef PYFEAT_INSTANTIATE

}  // namespace pyfeat::cuda
