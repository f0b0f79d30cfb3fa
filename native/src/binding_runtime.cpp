// Runtime entry points: capabilities(), setSimdLevel(), setPrecision(), setThreads(), and setErrorClass()
// (binding_common.cpp).
#include <cmath>
#include <mutex>
#include <string>

#include "binding_common.h"
#include "check.h"
#include "lstm.h"
#ifdef DS_HAVE_CUDA
#include "cuda/cuda_api.h"
#endif

#ifndef DS_VERSION
#define DS_VERSION "0.0.0-unknown"
#endif

namespace ds {
namespace binding {
namespace {

constexpr SimdLevel kLevels[] = {SimdLevel::Baseline, SimdLevel::Avx2, SimdLevel::Avx512};

// The names binding.ts uses ('baseline' | 'avx2' | 'avx512'), independent of whatever simd_name() prints.
const char* level_id(SimdLevel l) {
  switch (l) {
    case SimdLevel::Avx2: return "avx2";
    case SimdLevel::Avx512: return "avx512";
    default: return "baseline";
  }
}

Napi::Value capabilities(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, "capabilities", [&]() -> Napi::Value {
    Napi::Object o = Napi::Object::New(env);
    o.Set("version", DS_VERSION);
    o.Set("simd", level_id(simd_active()));
    Napi::Array supported = Napi::Array::New(env);
    uint32_t n = 0;
    for (SimdLevel l : kLevels) {
      if (simd_supported(l)) supported.Set(n++, level_id(l));
    }
    o.Set("simdSupported", supported);
    o.Set("threads", threads_get());
    o.Set("precision", precision_active() == Precision::Bf16 ? "bf16" : "fp32");
    o.Set("bf16Kernels", bf16_kernels_name());
    o.Set("bf16Instructions", bf16_instructions());
    o.Set("bf16Hardware", bf16_hardware());
#ifdef DS_HAVE_CUDA
    cuda::Status st = cuda::status();
    o.Set("cudaCompiled", true);
    o.Set("cudaDeviceCount", st.device_count);
    o.Set("cudaError", st.error.empty() ? env.Null() : Napi::String::New(env, st.error));
    o.Set("cudaRuntimeVersion", st.runtime_version > 0 ? Napi::Number::New(env, st.runtime_version) : env.Null());
    o.Set("cudaDriverVersion", st.driver_version > 0 ? Napi::Number::New(env, st.driver_version) : env.Null());
#else
    o.Set("cudaCompiled", false);
    o.Set("cudaDeviceCount", 0);
    o.Set("cudaError", "this addon was built without CUDA (nvcc was not found or DS_CUDA=OFF at build time)");
    o.Set("cudaRuntimeVersion", env.Null());
    o.Set("cudaDriverVersion", env.Null());
#endif
    return o;
  });
}

Napi::Value set_simd_level(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, "setSimdLevel", [&]() -> Napi::Value {
    Napi::Value v = info.Length() > 0 ? info[0] : env.Undefined();
    const std::string expected = "'baseline', 'avx2' or 'avx512'";
    if (!v.IsString()) {
      fail(env, kInvalidArgument, "setSimdLevel: expected level to be " + expected + " but received " + describe(v));
    }
    std::string s = v.As<Napi::String>().Utf8Value();
    for (SimdLevel l : kLevels) {
      if (s != level_id(l)) continue;
      if (!simd_supported(l)) {
        std::string have;
        for (SimdLevel k : kLevels) {
          if (simd_supported(k)) have += std::string(have.empty() ? "" : ", ") + level_id(k);
        }
        fail(env, kUnsupported,
             "setSimdLevel: '" + s + "' is not available (not compiled in or not supported by this CPU); available: " +
                 have);
      }
      std::unique_lock<std::shared_mutex> lock(config_mutex());  // waits for running async jobs
      simd_set(l);
      return env.Undefined();
    }
    fail(env, kInvalidArgument, "setSimdLevel: expected level to be " + expected + " but received " + describe(v));
  });
}

Napi::Value set_precision(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, "setPrecision", [&]() -> Napi::Value {
    Napi::Value v = info.Length() > 0 ? info[0] : env.Undefined();
    std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
    if (s != "fp32" && s != "bf16") {
      fail(env, kInvalidArgument, "setPrecision: expected precision to be 'fp32' or 'bf16' but received " + describe(v));
    }
    std::unique_lock<std::shared_mutex> lock(config_mutex());  // waits for running async jobs
    precision_set(s == "bf16" ? Precision::Bf16 : Precision::Fp32);
    return env.Undefined();
  });
}

Napi::Value set_threads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, "setThreads", [&]() -> Napi::Value {
    Napi::Value v = info.Length() > 0 ? info[0] : env.Undefined();
    const std::string expected = "setThreads: expected n to be an integer in [1, 256] but received ";
    if (!v.IsNumber()) fail(env, kInvalidArgument, expected + describe(v));
    double d = v.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d) || d != std::floor(d)) fail(env, kInvalidArgument, expected + describe(v));
    if (d < 1 || d > 256) fail(env, kOutOfRange, expected + describe(v));
    std::unique_lock<std::shared_mutex> lock(config_mutex());
    threads_set(static_cast<int>(d));
    return env.Undefined();
  });
}

}  // namespace

void register_runtime(Napi::Env env, Napi::Object exports) {
  exports.Set("capabilities", Napi::Function::New(env, capabilities, "capabilities"));
  exports.Set("setSimdLevel", Napi::Function::New(env, set_simd_level, "setSimdLevel"));
  exports.Set("setPrecision", Napi::Function::New(env, set_precision, "setPrecision"));
  exports.Set("setThreads", Napi::Function::New(env, set_threads, "setThreads"));
  register_error_class(env, exports);
}

}  // namespace binding
}  // namespace ds
