// Optimiser entry points: adamUpdate / adamUpdateAsync over ds::adam_update, and adamUpdateMany /
// adamUpdateManyAsync over ds::adam_update_all for many parameter arrays at once (native/src/adam.h). The
// weights and the two moment arrays are updated IN PLACE (they are the optimiser's state, owned by the caller),
// so all arrays of a call must be distinct memory: overlapping ones are refused rather than silently mixed.
// adamUpdate returns (resolves to) the weights array, adamUpdateMany the params array.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "adam.h"
#include "binding_common.h"
#include "check.h"

namespace ds {
namespace binding {
namespace {

// One step's settings, shared by both entry points.
AdamStep read_step(ArgReader& r) {
  AdamStep s;
  s.alpha = r.number("alpha", 0, 1e6);
  s.beta1 = r.number("beta1", 0, 1);
  s.beta2 = r.number("beta2", 0, 1);
  s.epsilon = r.number("epsilon", 0, 1e6);
  s.v_scale = r.number_or("vScale", 1, 0, 1e12);
  s.grad_scale = r.number_or("gradScale", 1, 0, 1e12);
  // ε > 0 keeps the division defined where v is 0 (a parameter whose gradient has always been 0).
  if (!(s.epsilon > 0)) r.fail_field(kOutOfRange, "epsilon", "a number > 0 (and <= 1e6)", r.get("epsilon"));
  return s;
}

// The arrays of every tensor must be distinct memory: the callers' ranges must not intersect (views of one
// buffer at other offsets included), since weights, m and v are updated in place. Checked on the callers'
// memory (View::source; an async job's copies are always distinct): the ranges sorted by start, two overlap
// somewhere only if two neighbours do.
struct Range {
  const char* start;
  const char* end;
  std::string name;
};
void check_disjoint(ArgReader& r, const std::vector<Range>& ranges) {
  // stable: of two arrays at one address, the one read first is named first, as when they are apart
  std::vector<size_t> order(ranges.size());
  for (size_t i = 0; i < order.size(); i++) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ranges[a].start < ranges[b].start; });
  for (size_t i = 1; i < order.size(); i++) {
    size_t a = order[i - 1], b = order[i];
    if (ranges[b].start < ranges[a].end) {
      if (b < a) std::swap(a, b);
      r.fail_msg(kInvalidArgument, ranges[a].name + " and " + ranges[b].name + " share memory; " + r.fn() +
                                       " updates weights, m and v in place, so no two of its arrays may overlap");
    }
  }
}

// One parameter array and its state, read from `r` (the call's argument or one element of its params); the
// callers' memory of its four arrays is added to `ranges`, named prefix + field.
AdamTensor read_tensor(ArgReader& r, const std::string& prefix, std::vector<Range>& ranges) {
  const int64_t n = r.integer("size", 1, kMaxElements);
  const char* names[4] = {"weights", "gradients", "m", "v"};
  View<float> w = r.f32_inout("weights", n, "size");
  View<const float> g = r.f32("gradients", n, "size");
  View<float> m = r.f32_inout("m", n, "size");
  View<float> v = r.f32_inout("v", n, "size");
  const void* src[4] = {w.source, g.source, m.source, v.source};
  for (int k = 0; k < 4; k++) {
    const char* p = static_cast<const char*>(src[k]);
    ranges.push_back({p, p + n * static_cast<int64_t>(sizeof(float)), prefix + names[k]});
  }
  return {w.data, g.data, m.data, v.data, n};
}

Job build_adam(ArgReader& r) {
  std::vector<Range> ranges;
  const AdamTensor t = read_tensor(r, "", ranges);
  Napi::Value w_array = r.get("weights");
  const AdamStep s = read_step(r);
  r.verify_inputs();
  check_disjoint(r, ranges);
  // The result is the weights array itself (updated): async jobs hold their result alive, and a reference
  // can only be held to an object. An async job updates its copies of weights, m and v and writes them back
  // when it completes (binding_common.cpp).
  return {w_array, r.arrays(), [=]() { adam_update(t.w, t.g, t.m, t.v, t.n, s); }};
}

// A model's parameter arrays in one call (adam_update_all): params[i] = {size, weights, gradients, m, v}.
constexpr uint32_t kMaxTensors = 1 << 16;

Job build_adam_many(ArgReader& r) {
  const uint32_t count = r.array_length("params", 1, kMaxTensors);
  auto tensors = std::make_shared<std::vector<AdamTensor>>();
  tensors->reserve(count);
  std::vector<Range> ranges;
  for (uint32_t i = 0; i < count; i++) {
    ArgReader e = r.element("params", i);
    tensors->push_back(read_tensor(e, "params[" + std::to_string(i) + "].", ranges));
  }
  Napi::Value list = r.get("params");
  const AdamStep s = read_step(r);
  r.verify_inputs();
  check_disjoint(r, ranges);
  // The result is the params array (async jobs hold their result alive); its weights, m and v are updated.
  return {list, r.arrays(), [tensors, s]() { adam_update_all(tensors->data(), static_cast<int64_t>(tensors->size()), s); }};
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
  export_pair<build_adam_many>(env, exports, "adamUpdateMany", "adamUpdateManyAsync");
}

}  // namespace binding
}  // namespace ds
