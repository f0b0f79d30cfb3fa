// The verification addon's exports: setErrorClass (the same as the product's, so that its errors are
// DeepSentryErrors) and cudaEmulator. Nothing here is in the shipped build/Release/deepsentry.node.
#include <napi.h>

#include "binding_common.h"
#include "verify.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  ds::binding::init_addon_data(env);
  ds::binding::register_error_class(env, exports);
  ds::cuda::register_emulator(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(deepsentry_verify, Init)
