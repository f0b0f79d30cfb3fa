// What the rest of the addon knows about CUDA. Implemented in native/cuda/ (compiled only when nvcc is
// found, with DS_HAVE_CUDA defined for every source of the addon); without CUDA the addon does not include
// or call any of this and reports cudaCompiled: false.
#pragma once

#include <string>

#ifdef DS_HAVE_CUDA
#include <napi.h>

namespace ds {
namespace cuda {

struct Status {
  int device_count = 0;      // visible devices (0 on error)
  int runtime_version = 0;   // cudaRuntimeGetVersion
  int driver_version = 0;    // cudaDriverGetVersion (0 when no driver)
  std::string error;         // empty when usable, else why not (e.g. "cudaGetDeviceCount: ... (35)")
};
Status status();

// Adds the CUDA entry points to the addon's exports: CudaLstm (an LSTM layer whose weights stay on the
// device) and cudaPoolStats / cudaPoolTrim (the device memory pool). The host emulator of the kernels is a
// test target (native/verify), not part of this addon.
void register_bindings(Napi::Env env, Napi::Object exports);

}  // namespace cuda
}  // namespace ds
#endif
