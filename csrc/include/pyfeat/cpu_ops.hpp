// CPU kernels of pyfeat._core (csrc/cpu_cosine.cpp), registered on the module by bindings.cpp.
#pragma once

#include <pybind11/pybind11.h>

#include <string>
#include <vector>

namespace pyfeat {
namespace cpu {

// The instruction sets of the cosine-kernel reduction that this build has and the CPU runs, best
// last ("avx2", "avx512"); available: at least one.
std::vector<std::string> cosine_reduce_isas();
bool cosine_reduce_available();

void register_bindings(pybind11::module_& m);

}  // namespace cpu
}  // namespace pyfeat
