// Checking every CUDA runtime call and every kernel launch (for the .cu files).
#pragma once

#include <cuda_runtime.h>

#include <string>

namespace ds {
namespace cuda {

// "what: cudaErrorName: text (number)".
std::string error_text(const char* what, int code);
[[noreturn]] void throw_cuda(const char* what, int code);  // throws CudaError(error_text(what, code))

}  // namespace cuda
}  // namespace ds

// Throws CudaError naming the call when it does not return cudaSuccess.
#define DS_CUDA_CHECK(call)                                     \
  do {                                                          \
    cudaError_t ds_cuda_err_ = (call);                          \
    if (ds_cuda_err_ != cudaSuccess) {                          \
      cudaGetLastError();                                       \
      ::ds::cuda::throw_cuda(#call, static_cast<int>(ds_cuda_err_)); \
    }                                                           \
  } while (0)

// After a <<<>>> launch: configuration errors (bad grid, too much shared memory, no kernel image for this
// device) are reported by cudaGetLastError, not by the launch statement.
#define DS_CUDA_LAUNCHED(kernel_name)                                   \
  do {                                                                  \
    cudaError_t ds_cuda_err_ = cudaGetLastError();                      \
    if (ds_cuda_err_ != cudaSuccess)                                    \
      ::ds::cuda::throw_cuda("launch of " kernel_name, static_cast<int>(ds_cuda_err_)); \
  } while (0)
