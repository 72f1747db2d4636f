// pyfeat._core: build facts, the host side of the shared scalar math (so that it is unit-tested on
// machines without a GPU), and, when compiled with CUDA, the GPU kernels' launchers.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

#include "pyfeat/cpu_ops.hpp"
#include "pyfeat/kernel_math.hpp"
#include "pyfeat/taylor_math.hpp"
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

void check_activation(const char* op, int code) {
  if (!pyfeat::is_activation_code(code))
    throw std::invalid_argument(std::string(op) + ": unknown activation code " + std::to_string(code));
}

// σ, σ' or σ'' (k = 0, 1, 2) of activation `code` on a 1-D array (host side of taylor_math.hpp).
template <class T>
py::array_t<T> activation_values(int code, carray<T> t, int k) {
  check_activation("activation_values", code);
  if (t.ndim() != 1 || k < 0 || k > 2)
    throw std::invalid_argument("activation_values: t must be a 1-D array and k in {0, 1, 2}");
  py::array_t<T> out(t.shape(0));
  const T* pt = t.data();
  T* po = out.mutable_data();
  for (py::ssize_t i = 0; i < t.shape(0); ++i) {
    T d[3];
    d[0] = pyfeat::activation_value<T>(code, pt[i]);
    pyfeat::activation_derivatives<T>(code, pt[i], d[1], d[2]);
    po[i] = d[k];
  }
  return out;
}

// (term, slope) of taylor_neuron over 1-D arrays of equal length.
template <class T>
py::tuple taylor_neurons(int code, carray<T> u0, carray<T> u, carray<T> a1, carray<T> a2) {
  check_activation("taylor_neurons", code);
  const py::ssize_t n = u0.shape(0);
  if (u0.ndim() != 1 || u.ndim() != 1 || a1.ndim() != 1 || a2.ndim() != 1 || u.shape(0) != n ||
      a1.shape(0) != n || a2.shape(0) != n)
    throw std::invalid_argument("taylor_neurons: u0, u, a1, a2 must be 1-D arrays of equal length");
  py::array_t<T> term(n), slope(n);
  T* pt = term.mutable_data();
  T* ps = slope.mutable_data();
  for (py::ssize_t i = 0; i < n; ++i)
    pt[i] = pyfeat::taylor_neuron<T>(code, u0.data()[i], u.data()[i], a1.data()[i], a2.data()[i], ps[i]);
  return py::make_tuple(term, slope);
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
  m.doc() = "pyfeat compiled core: shared scalar math, the AVX-512 cosine-kernel reduction and CUDA kernels";
  m.def("build_info", &build_info, "Build facts: version, CUDA compiled in, architectures.");
  m.def("kernel_values", &kernel_values<float>, py::arg("code"), py::arg("g"), py::arg("sx"),
        py::arg("sz"), py::arg("p0"), py::arg("p1"), py::arg("p2"),
        "Host evaluation of csrc/include/pyfeat/kernel_math.hpp kernel_value (float32).");
  m.def("kernel_values", &kernel_values<double>, py::arg("code"), py::arg("g"), py::arg("sx"),
        py::arg("sz"), py::arg("p0"), py::arg("p1"), py::arg("p2"),
        "Host evaluation of csrc/include/pyfeat/kernel_math.hpp kernel_value (float64).");
  m.def("acos_values", &acos_values<float>, "Host evaluation of pf_acos (float32 polynomial).");
  m.def("acos_values", &acos_values<double>, "Host evaluation of pf_acos (float64 libm).");
  m.def("activation_values", &activation_values<float>, py::arg("code"), py::arg("t"), py::arg("k"),
        "Host evaluation of taylor_math.hpp: sigma (k=0), sigma' (1) or sigma'' (2) (float32).");
  m.def("activation_values", &activation_values<double>, py::arg("code"), py::arg("t"), py::arg("k"),
        "Host evaluation of taylor_math.hpp: sigma (k=0), sigma' (1) or sigma'' (2) (float64).");
  m.def("taylor_neurons", &taylor_neurons<float>, py::arg("code"), py::arg("u0"), py::arg("u"),
        py::arg("a1"), py::arg("a2"), "Host evaluation of taylor_math.hpp taylor_neuron: (term, slope) (float32).");
  m.def("taylor_neurons", &taylor_neurons<double>, py::arg("code"), py::arg("u0"), py::arg("u"),
        py::arg("a1"), py::arg("a2"), "Host evaluation of taylor_math.hpp taylor_neuron: (term, slope) (float64).");
  pyfeat::cpu::register_bindings(m);
#ifdef PYFEAT_WITH_CUDA
  pyfeat::cuda::register_bindings(m);
#endif
}
