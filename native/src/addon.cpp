// The DeepSentry native addon: the list of exported functions (their contract is lib/backend/binding.ts).
// Each binding_*.cpp registers its own entry points; CUDA adds its own when compiled in (native/cuda).
#include <napi.h>

#include "binding_common.h"
#ifdef DS_HAVE_CUDA
#include "cuda/cuda_api.h"
#endif

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  ds::binding::init_addon_data(env);
  ds::binding::register_runtime(env, exports);
  ds::binding::register_lstm(env, exports);
  ds::binding::register_dense(env, exports);
  ds::binding::register_adam(env, exports);
  ds::binding::register_predict(env, exports);
#ifdef DS_HAVE_CUDA
  ds::cuda::register_bindings(env, exports);
#endif
  return exports;
}

}  // namespace

NODE_API_MODULE(deepsentry, Init)
