// pyfeat._core: build facts, the host side of the shared scalar math (so that it is unit-tested on
// machines without a GPU), and, when compiled with CUDA, the GPU kernels' launchers.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

#include "pyfeat/kernel_math.hpp"
#ifdef PYFEAT_WITH_CUDA
#include "pyfeat/cuda_ops.hpp"
#endif

namespace py = pybind11;

namespace {

template <class T>
using carray = py::array_t<T, py::array::c_style | py::array::forcecast>;

// Elementwise kernel_value over 1-D arrays of equal length (host reference of the device math).
template <class T>
py::array_t<T> kernel_values(int code, carray<T> g, carray<T> sx, carray<T> sz, double p0,
                             double p1, double p2) {
  if (g.ndim() != 1 || sx.ndim() != 1 || sz.ndim() != 1 || g.shape(0) != sx.shape(0) ||
      g.shape(0) != sz.shape(0))
    throw std::invalid_argument("kernel_values: g, sx, sz must be 1-D arrays of equal length");
  if (!pyfeat::is_kernel_code(code))
    throw std::invalid_argument("kernel_values: unknown kernel code " + std::to_string(code));
  const py::ssize_t n = g.shape(0);
  py::array_t<T> out(n);
  const T* pg = g.data();
  const T* px = sx.data();
  const T* pz = sz.data();
  T* po = out.mutable_data();
  {
    py::gil_scoped_release release;
    for (py::ssize_t i = 0; i < n; ++i)
      po[i] = pyfeat::kernel_value<T>(code, pg[i], px[i], pz[i], T(p0), T(p1), T(p2));
  }
  return out;
}

template <class T>
py::array_t<T> acos_values(carray<T> x) {
  py::array_t<T> out(x.size());
  const T* px = x.data();
  T* po = out.mutable_data();
  for (py::ssize_t i = 0; i < x.size(); ++i) po[i] = pyfeat::pf_acos(px[i]);
  return out;
}

py::dict build_info() {
  py::dict d;
  d["version"] = PYFEAT_VERSION;
#ifdef PYFEAT_WITH_CUDA
  d["cuda"] = true;
  d["cuda_architectures"] = std::string(PYFEAT_CUDA_ARCHS);
  d["cuda_runtime_version"] = pyfeat::cuda::runtime_version();
#else
  d["cuda"] = false;
  d["cuda_architectures"] = std::string();
  d["cuda_runtime_version"] = -1;
#endif
  return d;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "pyfeat compiled core: shared scalar math and CUDA kernels";
  m.def("build_info", &build_info, "Build facts: version, CUDA compiled in, architectures.");
  m.def("kernel_values", &kernel_values<float>, py::arg("code"), py::arg("g"), py::arg("sx"),
        py::arg("sz"), py::arg("p0"), py::arg("p1"), py::arg("p2"),
        "Host evaluation of csrc/include/pyfeat/kernel_math.hpp kernel_value (float32).");
  m.def("kernel_values", &kernel_values<double>, py::arg("code"), py::arg("g"), py::arg("sx"),
        py::arg("sz"), py::arg("p0"), py::arg("p1"), py::arg("p2"),
        "Host evaluation of csrc/include/pyfeat/kernel_math.hpp kernel_value (float64).");
  m.def("acos_values", &acos_values<float>, "Host evaluation of pf_acos (float32 polynomial).");
  m.def("acos_values", &acos_values<double>, "Host evaluation of pf_acos (float64 libm).");
#ifdef PYFEAT_WITH_CUDA
  pyfeat::cuda::register_bindings(m);
#endif
}
