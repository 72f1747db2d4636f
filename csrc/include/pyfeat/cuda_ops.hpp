// Launchers of pyfeat's CUDA kernels (implemented in csrc/cuda/*.cu, bound in csrc/cuda_bindings.cpp).
//
// Plain C++: no CUDA or pybind11 header is needed to include this file, so the bindings compile
// with the host compiler. Every launcher takes raw device pointers, sizes in elements, row-major
// leading dimensions (elements between consecutive rows) and a CUDA stream handle as an integer
// (cudaStream_t; 0 = the legacy default stream, e.g. CuPy's `cupy.cuda.get_current_stream().ptr`).
// Launches are asynchronous on that stream. Bad sizes or null pointers throw std::invalid_argument;
// a failing CUDA call throws std::runtime_error naming file:line and the CUDA error.
//
// The templates are explicitly instantiated for T = float and T = double in the .cu files
// (kernel_matvec also for float X with double V).
#pragma once

#include <cstdint>

namespace pybind11 {
class module_;
}

namespace pyfeat::cuda {

// Z[i, j] <- y[i] if Z[i, j] + b[j] >= 0 else 0, in place, for i < rows, j < m.
// Z: rows x m with leading dimension ldz >= m; b: m; y: rows.
template <class T>
void mask_times_y(T* Z, std::int64_t ldz, std::int64_t rows, std::int64_t m, const T* b,
                  const T* y, std::uintptr_t stream);

// Z[i, j] <- max(Z[i, j] + b[j], 0), in place. Z: rows x m with leading dimension ldz >= m; b: m.
template <class T>
void relu_bias(T* Z, std::int64_t ldz, std::int64_t rows, std::int64_t m, const T* b,
               std::uintptr_t stream);

// The fused epilogue of the network gradient, on pre-activations Z (rows x m, leading dimension
// ldz >= m), biases b and output weights a (m), labels y (rows):
//   r[i] = sum_j a[j] max(Z[i, j] + b[j], 0) - y[i]                     (r: rows, in double)
//   parts[c * m + j]            = sum_{i in chunk c} r[i] max(Z[i, j] + b[j], 0)
//   parts[(splits + c) * m + j] = sum_{i in chunk c} r[i] 1[Z[i, j] + b[j] >= 0]
//   Z[i, j] <- r[i] 1[Z[i, j] + b[j] >= 0]   (in place)
// over `splits` chunks of consecutive rows (chunk c = rows [c q, (c+1) q), q = ceil(rows/splits);
// parts: 2 x splits x m doubles, every element written); the caller adds the chunks.
template <class T>
void relu_residual(T* Z, std::int64_t ldz, std::int64_t rows, std::int64_t m, const T* b,
                   const T* a, const T* y, double* r, double* parts, std::int64_t splits,
                   std::uintptr_t stream);

// The fused epilogue of the Taylor-model gradient (taylor_math.hpp's taylor_neuron with
// activation `code`), on Z = [U0 | U] (rows x 2m pre-activations before the biases bb (2m),
// leading dimension ldz >= 2m), coefficients a1, a2 (m), labels y (rows):
//   r[i] = sum_{j<m} term(Z[i, j] + bb[j], Z[i, m + j] + bb[m + j], a1[j], a2[j]) - y[i]  (double)
//   Z[i, j] <- r[i] slope(...) for j < m   (in place; the U half is left as it was)
//   parts[c * m + j] = sum_{i in chunk c} r[i] slope(...)
// over `splits` chunks of consecutive rows (as relu_residual; parts: splits x m doubles, every
// element written); the caller adds the chunks.
template <class T>
void taylor_residual(T* Z, std::int64_t ldz, std::int64_t rows, std::int64_t m, const T* bb,
                     const T* a1, const T* a2, const T* y, int code, double* r, double* parts,
                     std::int64_t splits, std::uintptr_t stream);

// The Taylor model's predictions from Z = [U0 | U] as above: out[i] = sum_{j<m} term(...)
// (summed in double, written in T). Z is not modified.
template <class T>
void taylor_forward(const T* Z, std::int64_t ldz, std::int64_t rows, std::int64_t m, const T* bb,
                    const T* a1, const T* a2, int code, T* out, std::uintptr_t stream);

// G[i, j] <- kernel_value(code, G[i, j], sx[i], sz[j], p0, p1, p2) (kernel_math.hpp), in place.
// G: rows x cols inner products with leading dimension ldg >= cols; sx: rows; sz: cols.
template <class T>
void kernel_matrix(int code, double p0, double p1, double p2, T* G, std::int64_t ldg,
                   std::int64_t rows, std::int64_t cols, const T* sx, const T* sz,
                   std::uintptr_t stream);

// out = K(X, Z) V without forming K, in `splits` partial sums over consecutive chunks of Z:
// out[c, i, :] = sum_{j in chunk c} kernel_value(code, <x_i, z_j>, sx[i], sz[j], p0, p1, p2) V[j, :]
// (chunk c = rows [c q, (c+1) q) of Z, q = ceil(nz / splits)); the caller adds the chunks.
// Contiguous row-major X: nx x d, Z: nz x d, V: nz x k, out: splits x nx x k; sx, sz: squared
// row norms of X and Z. Every element of out is written (zeros for empty chunks).
// V and out have type TV: T, or double with T = float (the float kernel values multiply V in
// double). Per Z tile the sums run in TV; across Z tiles they accumulate in double.
template <class T, class TV>
void kernel_matvec(int code, double p0, double p1, double p2, const T* X, std::int64_t nx,
                   const T* Z, std::int64_t nz, std::int64_t d, const T* sx, const T* sz,
                   const TV* V, std::int64_t k, TV* out, std::int64_t splits, std::uintptr_t stream);

// cudaRuntimeGetVersion of the (statically linked) runtime, e.g. 13000; needs no device.
int runtime_version();

// Adds the launchers above to the extension module as cuda_<name>_f32 / cuda_<name>_f64
// (csrc/cuda_bindings.cpp; cuda_kernel_matvec_f32(..., v_f64=True) is the float X, double V one).
void register_bindings(pybind11::module_& m);

}  // namespace pyfeat::cuda
