// Optimiser entry point: adamUpdate / adamUpdateAsync over ds::adam_update (native/src/adam.h). The weights
// and the two moment arrays are updated IN PLACE (they are the optimiser's state, owned by the caller), so
// the four arrays must be distinct memory: overlapping ones are refused rather than silently mixed. Returns
// (resolves to) the weights array.
#include <string>

#include "adam.h"
#include "binding_common.h"
#include "check.h"

namespace ds {
namespace binding {
namespace {

Job build_adam(ArgReader& r) {
  const int64_t n = r.integer("size", 1, kMaxElements);
  View<float> w = r.f32_inout("weights", n, "size");
  Napi::Value w_array = r.get("weights");
  View<const float> g = r.f32("gradients", n, "size");
  View<float> m = r.f32_inout("m", n, "size");
  View<float> v = r.f32_inout("v", n, "size");
  AdamStep s;
  s.alpha = r.number("alpha", 0, 1e6);
  s.beta1 = r.number("beta1", 0, 1);
  s.beta2 = r.number("beta2", 0, 1);
  s.epsilon = r.number("epsilon", 0, 1e6);
  s.v_scale = r.number_or("vScale", 1, 0, 1e12);
  s.grad_scale = r.number_or("gradScale", 1, 0, 1e12);
  // ε > 0 keeps the division defined where v is 0 (a parameter whose gradient has always been 0).
  if (!(s.epsilon > 0)) r.fail_field(kOutOfRange, "epsilon", "a number > 0 (and <= 1e6)", r.get("epsilon"));
  r.verify_inputs();
  // Distinct memory: the callers' [p, p + n) ranges must not intersect (views of one buffer at other offsets
  // included). Checked on the callers' memory: an async job's copies are always distinct.
  const char* names[4] = {"weights", "gradients", "m", "v"};
  const float* ptr[4] = {static_cast<const float*>(w.source), static_cast<const float*>(g.source),
                         static_cast<const float*>(m.source), static_cast<const float*>(v.source)};
  for (int a = 0; a < 4; a++) {
    for (int b = a + 1; b < 4; b++) {
      if (ptr[a] < ptr[b] + n && ptr[b] < ptr[a] + n) {
        r.fail_msg(kInvalidArgument, std::string(names[a]) + " and " + names[b] +
                                         " share memory; adamUpdate updates weights, m and v in place, so the four arrays must not overlap");
      }
    }
  }
  float* wd = w.data;
  const float* gd = g.data;
  float* md = m.data;
  float* vd = v.data;
  // The result is the weights array itself (updated): async jobs hold their result alive, and a reference
  // can only be held to an object. An async job updates its copies of weights, m and v and writes them back
  // when it completes (binding_common.cpp).
  return {w_array, r.arrays(), [=]() { adam_update(wd, gd, md, vd, n, s); }};
}

}  // namespace

void register_adam(Napi::Env env, Napi::Object exports) {
  exports.Set("adamUpdate", Napi::Function::New(
                                env, [](const Napi::CallbackInfo& i) { return sync_entry<build_adam>(i, "adamUpdate"); },
                                "adamUpdate"));
  exports.Set("adamUpdateAsync",
              Napi::Function::New(
                  env, [](const Napi::CallbackInfo& i) { return async_entry<build_adam>(i, "adamUpdateAsync"); },
                  "adamUpdateAsync"));
}

}  // namespace binding
}  // namespace ds
