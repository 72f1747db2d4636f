// Python bindings of the CUDA launchers (compiled by the host compiler; see cuda_ops.hpp).
//
// pybind11 has no CuPy caster: pyfeat/ops/_cuda.py validates the CuPy arrays and passes device
// pointers (arr.data.ptr), sizes, leading dimensions and the stream (cupy's current stream .ptr)
// as integers. Each function is bound as cuda_<name>_f32 and cuda_<name>_f64; the launch runs
// with the GIL released and is asynchronous on the given stream.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <type_traits>

#include "pyfeat/cuda_ops.hpp"

namespace py = pybind11;

namespace pyfeat::cuda {
namespace {

using i64 = std::int64_t;
using ptr = std::uintptr_t;

template <class T>
T* as(ptr p) {
  return reinterpret_cast<T*>(p);
}

// kernel_matvec<T, T>, and for T = float with v_f64 = true kernel_matvec<float, double> (float
// X, double V and out).
template <class T>
void bind_kernel_matvec(py::module_& m, const std::string& name) {
  m.def(
      name.c_str(),
      [](int code, double p0, double p1, double p2, ptr X, i64 nx, ptr Z, i64 nz, i64 d, ptr sx,
         ptr sz, ptr V, i64 k, ptr out, ptr stream, i64 splits, bool v_f64) {
        py::gil_scoped_release release;
        if (v_f64 && !std::is_same_v<T, double>) {
          kernel_matvec<T, double>(code, p0, p1, p2, as<const T>(X), nx, as<const T>(Z), nz, d,
                                   as<const T>(sx), as<const T>(sz), as<const double>(V), k,
                                   as<double>(out), splits, stream);
        } else {
          kernel_matvec<T, T>(code, p0, p1, p2, as<const T>(X), nx, as<const T>(Z), nz, d,
                              as<const T>(sx), as<const T>(sz), as<const T>(V), k, as<T>(out),
                              splits, stream);
        }
      },
      py::arg("code"), py::arg("p0"), py::arg("p1"), py::arg("p2"), py::arg("X"), py::arg("nx"),
      py::arg("Z"), py::arg("nz"), py::arg("d"), py::arg("sx"), py::arg("sz"), py::arg("V"),
      py::arg("k"), py::arg("out"), py::arg("stream"), py::arg("splits") = 1,
      py::arg("v_f64") = false,
      "out (splits, nx, k): K(X, Z) @ V over `splits` chunks of Z, fused; contiguous row-major "
      "device arrays (the chunks' sum is K(X, Z) @ V); v_f64: V and out are float64 (float32 "
      "X, Z, sx, sz only).");
}

template <class T>
void bind_dtype(py::module_& m, const std::string& sfx) {
  m.def(
      ("cuda_mask_times_y_" + sfx).c_str(),
      [](ptr Z, i64 ldz, i64 rows, i64 m, ptr b, ptr y, ptr stream) {
        py::gil_scoped_release release;
        mask_times_y<T>(as<T>(Z), ldz, rows, m, as<const T>(b), as<const T>(y), stream);
      },
      py::arg("Z"), py::arg("ldz"), py::arg("rows"), py::arg("m"), py::arg("b"), py::arg("y"),
      py::arg("stream"), "Z[i,j] <- y[i] if Z[i,j] + b[j] >= 0 else 0 (in place, device pointers).");
  m.def(
      ("cuda_relu_bias_" + sfx).c_str(),
      [](ptr Z, i64 ldz, i64 rows, i64 m, ptr b, ptr stream) {
        py::gil_scoped_release release;
        relu_bias<T>(as<T>(Z), ldz, rows, m, as<const T>(b), stream);
      },
      py::arg("Z"), py::arg("ldz"), py::arg("rows"), py::arg("m"), py::arg("b"), py::arg("stream"),
      "Z <- max(Z + b, 0) (in place, device pointers).");
  m.def(
      ("cuda_relu_residual_" + sfx).c_str(),
      [](ptr Z, i64 ldz, i64 rows, i64 m, ptr b, ptr a, ptr y, ptr r, ptr parts, i64 splits,
         ptr stream) {
        py::gil_scoped_release release;
        relu_residual<T>(as<T>(Z), ldz, rows, m, as<const T>(b), as<const T>(a), as<const T>(y),
                         as<double>(r), as<double>(parts), splits, stream);
      },
      py::arg("Z"), py::arg("ldz"), py::arg("rows"), py::arg("m"), py::arg("b"), py::arg("a"),
      py::arg("y"), py::arg("r"), py::arg("parts"), py::arg("splits"), py::arg("stream"),
      "Network-gradient epilogue (device pointers): r = relu(Z + b) a - y (double), per-chunk "
      "sums of r relu(Z + b) and r 1[Z + b >= 0] into parts (2 x splits x m doubles), "
      "Z <- r 1[Z + b >= 0] in place.");
  m.def(
      ("cuda_taylor_residual_" + sfx).c_str(),
      [](ptr Z, i64 ldz, i64 rows, i64 m, ptr bb, ptr a1, ptr a2, ptr y, int code, ptr r,
         ptr parts, i64 splits, ptr stream) {
        py::gil_scoped_release release;
        taylor_residual<T>(as<T>(Z), ldz, rows, m, as<const T>(bb), as<const T>(a1),
                           as<const T>(a2), as<const T>(y), code, as<double>(r), as<double>(parts),
                           splits, stream);
      },
      py::arg("Z"), py::arg("ldz"), py::arg("rows"), py::arg("m"), py::arg("bb"), py::arg("a1"),
      py::arg("a2"), py::arg("y"), py::arg("code"), py::arg("r"), py::arg("parts"),
      py::arg("splits"), py::arg("stream"),
      "Taylor-model gradient epilogue (device pointers): r = f - y (double) from Z = [U0 | U], "
      "Z[:, :m] <- r slope in place, per-chunk column sums of r slope into parts (splits x m).");
  m.def(
      ("cuda_taylor_forward_" + sfx).c_str(),
      [](ptr Z, i64 ldz, i64 rows, i64 m, ptr bb, ptr a1, ptr a2, int code, ptr out, ptr stream) {
        py::gil_scoped_release release;
        taylor_forward<T>(as<const T>(Z), ldz, rows, m, as<const T>(bb), as<const T>(a1),
                          as<const T>(a2), code, as<T>(out), stream);
      },
      py::arg("Z"), py::arg("ldz"), py::arg("rows"), py::arg("m"), py::arg("bb"), py::arg("a1"),
      py::arg("a2"), py::arg("code"), py::arg("out"), py::arg("stream"),
      "Taylor-model predictions (device pointers): out[i] = sum_j term(Z[i, j] + bb[j], "
      "Z[i, m + j] + bb[m + j]) from Z = [U0 | U].");
  m.def(
      ("cuda_kernel_matrix_" + sfx).c_str(),
      [](int code, double p0, double p1, double p2, ptr G, i64 ldg, i64 rows, i64 cols, ptr sx,
         ptr sz, ptr stream) {
        py::gil_scoped_release release;
        kernel_matrix<T>(code, p0, p1, p2, as<T>(G), ldg, rows, cols, as<const T>(sx),
                         as<const T>(sz), stream);
      },
      py::arg("code"), py::arg("p0"), py::arg("p1"), py::arg("p2"), py::arg("G"), py::arg("ldg"),
      py::arg("rows"), py::arg("cols"), py::arg("sx"), py::arg("sz"), py::arg("stream"),
      "G[i,j] <- k(G[i,j], sx[i], sz[j]) (in place, device pointers).");
  bind_kernel_matvec<T>(m, "cuda_kernel_matvec_" + sfx);
}

}  // namespace

void register_bindings(py::module_& m) {
  bind_dtype<float>(m, "f32");
  bind_dtype<double>(m, "f64");
  m.def("cuda_runtime_version", &runtime_version,
        "cudaRuntimeGetVersion of the statically linked CUDA runtime (e.g. 13000).");
}

}  // namespace pyfeat::cuda
