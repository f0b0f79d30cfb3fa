// The verification addon (build/Release/deepsentry_verify.node, CMake target deepsentry_verify): code that
// checks the product and is never part of it. Built by `npm run build:verify`, loaded only by the tests.
#pragma once

#include <napi.h>

namespace ds {
namespace cuda {

// Adds cudaEmulator (native/verify/emulate.cpp): the CUDA kernels' bodies run on the host with checked memory.
void register_emulator(Napi::Env env, Napi::Object exports);

}  // namespace cuda
}  // namespace ds
