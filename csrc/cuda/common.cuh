// Helpers shared by the .cu files: error checks, argument checks, stream handles.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

// Throw std::runtime_error("file:line: what: CUDA error text") when a CUDA call fails.
#define CHECK_CUDA(call)                                                                   \
  do {                                                                                     \
    const cudaError_t pf_err_ = (call);                                                    \
    if (pf_err_ != cudaSuccess)                                                            \
      throw std::runtime_error(std::string(__FILE__) + ":" + std::to_string(__LINE__) +    \
                               ": " #call ": " + cudaGetErrorName(pf_err_) + ": " +        \
                               cudaGetErrorString(pf_err_));                               \
  } while (0)

// Check the launch configuration and any earlier asynchronous error right after a launch.
#define CHECK_LAUNCH() CHECK_CUDA(cudaGetLastError())

namespace pyfeat::cuda::detail {

inline cudaStream_t as_stream(std::uintptr_t s) { return reinterpret_cast<cudaStream_t>(s); }

// std::invalid_argument("<op>: <what>") unless ok.
inline void require(bool ok, const char* op, const std::string& what) {
  if (!ok) throw std::invalid_argument(std::string(op) + ": " + what);
}

inline void require_nonnegative(const char* op, const char* name, std::int64_t v) {
  require(v >= 0, op, std::string(name) + " must be >= 0, got " + std::to_string(v));
}

// A pointer may be null only when the array it points to is empty.
inline void require_pointer(const char* op, const char* name, const void* p, std::int64_t size) {
  require(p != nullptr || size == 0, op, std::string(name) + " is a null pointer");
}

inline std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

}  // namespace pyfeat::cuda::detail
