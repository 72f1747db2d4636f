// CPU kernels of pyfeat._core (csrc/cpu_cosine.cpp), registered on the module by bindings.cpp.
#pragma once

#include <pybind11/pybind11.h>

namespace pyfeat {
namespace cpu {

// True when this build has the AVX-512 cosine-kernel reduction and the CPU (and OS) run it.
bool cosine_reduce_available();

void register_bindings(pybind11::module_& m);

}  // namespace cpu
}  // namespace pyfeat
