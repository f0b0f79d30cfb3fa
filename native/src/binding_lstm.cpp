// LSTM entry points: lstmForward, lstmBackward, bilstmForward, bilstmBackward, lstmEncode (+ *Async).
// Each builder checks every argument against the dims (lib/backend/binding.ts documents the contract),
// allocates the result arrays, and returns a Job that calls native/src/lstm.h with pointers into the callers'
// typed arrays (sync: no input copies) or into the job's copies of them (async: ArrayMode::kCopy, check.h).
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "aligned.h"
#include "binding_common.h"
#include "check.h"
#include "lstm.h"

namespace ds {
namespace binding {
namespace {

struct Dims {
  int64_t B, T, I, H;
  LstmShape shape() const { return {B, T, I, H}; }
};

Dims read_dims(ArgReader& r) {
  Dims d;
  d.B = r.integer("batch", 1, kMaxDim);
  d.T = r.integer("steps", 1, kMaxDim);
  d.I = r.integer("inputSize", 1, kMaxDim);
  d.H = r.integer("hiddenSize", 1, kMaxDim);
  // Products are checked one by one so that the message names the array that would be too large.
  checked_product(r.env(), r.fn(), "x (batch*steps*inputSize)", {d.B, d.T, d.I});
  checked_product(r.env(), r.fn(), "the gate pre-activations (batch*steps*4*hiddenSize)", {d.B, d.T, 4, d.H});
  checked_product(r.env(), r.fn(), "the bidirectional output (batch*steps*2*hiddenSize)", {d.B, d.T, 2, d.H});
  checked_product(r.env(), r.fn(), "kernel (inputSize*4*hiddenSize)", {d.I, 4, d.H});
  checked_product(r.env(), r.fn(), "recurrentKernel (hiddenSize*4*hiddenSize)", {d.H, 4, d.H});
  return d;
}

// The bf16 tier's rounded copies of arrays passed with `frozen: true` (the caller promises they do not change):
// attached to the typed array itself (napi_wrap, marked with our type tag), so they live and die with it, and
// reused while the array still has the memory, length and shape they were made from. Two slots: an array may
// serve as a kernel and as a recurrent kernel (I = H), whose layouts differ.
constexpr napi_type_tag kBf16Tag = {0x64732d6266313621ULL, 0x726f756e64656421ULL};

struct Bf16Slot {
  const void* source = nullptr;
  int64_t length = 0, input = 0, hidden = 0;
  std::shared_ptr<AlignedVector<uint32_t>> words;  // 64-byte aligned: read with full-width loads
};
struct Bf16Attached {
  Bf16Slot slot[2];  // [0] as a kernel, [1] as a recurrent kernel
};

// The attachment of `array`, made when it has none; nullptr when it cannot have one (another addon's wrap).
Bf16Attached* bf16_attachment(Napi::Env env, napi_value array) {
  bool ours = false;
  void* found = nullptr;
  if (napi_check_object_type_tag(env, array, &kBf16Tag, &ours) == napi_ok && ours)
    return napi_unwrap(env, array, &found) == napi_ok ? static_cast<Bf16Attached*>(found) : nullptr;
  auto* fresh = new Bf16Attached();
  auto finalize = [](napi_env, void* data, void*) { delete static_cast<Bf16Attached*>(data); };
  if (napi_type_tag_object(env, array, &kBf16Tag) != napi_ok ||
      napi_wrap(env, array, fresh, finalize, nullptr, nullptr) != napi_ok) {
    delete fresh;
    return nullptr;
  }
  return fresh;
}

// The rounded copy of the checked array v as a kernel or a recurrent kernel, or nullptr when it
// cannot be kept (the call then rounds the weights itself). Sync calls read it while the array, which holds
// it, is referenced by the arguments; async jobs hold their own reference (JobArrays::copies).
const uint32_t* bf16_attached(ArgReader& w, View<const float> v, const Dims& d, bool recurrent) {
  Bf16Attached* a = bf16_attachment(w.env(), v.array);
  if (!a) return nullptr;
  Bf16Slot& s = a->slot[recurrent ? 1 : 0];
  if (!(s.words && s.source == v.source && s.length == v.length && s.input == d.I && s.hidden == d.H)) {
    auto words = std::make_shared<AlignedVector<uint32_t>>(recurrent ? bf16_recurrent_words(d.H) : bf16_kernel_words(d.I, d.H));
    if (recurrent)
      bf16_pack_recurrent(v.data, d.H, words->data());
    else
      bf16_pack_kernel(v.data, d.I, d.H, words->data());
    s = {v.source, v.length, d.I, d.H, std::move(words)};
  }
  if (w.arrays()) w.arrays()->copies.push_back(s.words);
  return s.words->data();
}

// `forward`: the call runs the forward products, which a bf16 copy serves (the backward is float32).
LstmParams read_weights(ArgReader& parent, const char* field, const Dims& d, bool forward) {
  ArgReader w = parent.object(field);
  LstmParams p;
  View<const float> k = w.f32("kernel", d.I * 4 * d.H, "inputSize*4*hiddenSize");
  View<const float> r = w.f32("recurrentKernel", d.H * 4 * d.H, "hiddenSize*4*hiddenSize");
  p.kernel = k.data;
  p.recurrent = r.data;
  p.bias = w.f32("bias", 4 * d.H, "4*hiddenSize").data;
  if (w.boolean_or("frozen", false) && forward && precision_active() == Precision::Bf16) {
    p.bf16_kernel = bf16_attached(w, k, d, false);
    p.bf16_recurrent = p.bf16_kernel ? bf16_attached(w, r, d, true) : nullptr;
  }
  return p;
}

Indices read_lengths(ArgReader& r, const Dims& d) { return binding::read_lengths(r, d.B, d.T); }

const int32_t* ptr(const Indices& v) { return v ? v->data() : nullptr; }

const float* opt_state(ArgReader& r, const char* field, const Dims& d) {
  return r.f32_opt(field, d.B * d.H, "batch*hiddenSize").data;
}

int64_t workspace_floats(ArgReader& r, const Dims& d) {
  size_t n = lstm_workspace_floats(d.shape());
  if (n > static_cast<size_t>(kMaxElements)) {
    r.fail_msg(kOutOfRange, "the training workspace would need " + std::to_string(n) + " floats; at most " +
                                std::to_string(kMaxElements) + " are allowed");
  }
  return static_cast<int64_t>(n);
}

// ---- caller-provided outputs (`into`) ------------------------------------------------------------------
// A training loop repeats the same calls step after step; it may hand back the arrays an earlier step returned
// (or any arrays of the right lengths), which the call overwrites instead of allocating new ones: no
// allocation, page faults or zero-filling of megabytes per step. ArgReader::f32_out_opt checks each against
// every other array of the call (no overlap).

// One direction's weight gradients given in `into` (each optional).
struct WeightGradsInto {
  View<float> k, r, b;
};
WeightGradsInto read_weight_grads_into(ArgReader& into, const Dims& d) {
  WeightGradsInto g;
  g.k = into.f32_out_opt("dKernel", d.I * 4 * d.H, "inputSize*4*hiddenSize");
  g.r = into.f32_out_opt("dRecurrentKernel", d.H * 4 * d.H, "hiddenSize*4*hiddenSize");
  g.b = into.f32_out_opt("dBias", 4 * d.H, "4*hiddenSize");
  return g;
}

// out[key] = the given array (returned as the result's field), or a new zero-filled one; where the kernels write.
float* output_into(Napi::Env env, Napi::Object out, const char* key, const View<float>& given, int64_t length) {
  if (!given) return add_output(env, out, key, length);
  out.Set(key, given.array);
  return given.data;
}

// `into` of a forward call with training: true (a training loop's): {workspace, y}, each optional.
struct ForwardInto {
  View<float> workspace, y;
};
ForwardInto read_forward_into(ArgReader& r, bool training, int64_t ws_floats, const char* ws_formula, int64_t y_floats,
                              const char* y_formula) {
  if (!r.has("into")) return {};
  if (!training) r.fail_field(kInvalidArgument, "into", "absent unless training is true", r.get("into"));
  ArgReader into = r.object("into");
  ForwardInto f;
  f.workspace = into.f32_out_opt("workspace", ws_floats, ws_formula);
  f.y = into.f32_out_opt("y", y_floats, y_formula);
  return f;
}

// One direction's weight gradients as fields of g: the result itself for one direction, result.forward or
// result.backward for two; written into the arrays given in `into` where there are some.
void add_weight_grads(Napi::Env env, Napi::Object g, const Dims& d, LstmBackwardArgs& a, const WeightGradsInto& into) {
  a.dkernel = output_into(env, g, "dKernel", into.k, d.I * 4 * d.H);
  a.drecurrent = output_into(env, g, "dRecurrentKernel", into.r, d.H * 4 * d.H);
  a.dbias = output_into(env, g, "dBias", into.b, 4 * d.H);
}

// The inputs lstmForward and lstmBackward share, read in one order so their errors name arguments alike:
// x, the weights, the initial state, the lengths (returned: they must outlive the job).
template <class Args>
Indices read_lstm_inputs(ArgReader& r, const Dims& d, Args& a) {
  a.x = r.f32("x", d.B * d.T * d.I, "batch*steps*inputSize").data;
  a.w = read_weights(r, "weights", d, std::is_same<Args, LstmForwardArgs>::value);
  a.h0 = opt_state(r, "h0", d);
  a.c0 = opt_state(r, "c0", d);
  Indices lengths = read_lengths(r, d);
  a.lengths = ptr(lengths);
  return lengths;
}

// The training workspace as an output: lstm_workspace_floats floats of memory that is not zero-filled first
// (the forward writes every element: each valid step's gates and cell state, zeros past each sequence's
// length — lstm_forward.cpp fwd_chunk). A Buffer's memory is allocated without zero-filling (as
// Buffer.allocUnsafe's), and zero-filling W1's 13 MB costs about as much as the stores into it, on the calling
// thread before the kernels start. Or the array given as into.workspace.
float* add_workspace_output(Napi::Env env, Napi::Object out, int64_t floats, const View<float>& given) {
  if (given) return output_into(env, out, "workspace", given, floats);
  Napi::Buffer<float> buf = Napi::Buffer<float>::New(env, static_cast<size_t>(floats));
  if (buf.ByteOffset() % sizeof(float) != 0) return add_output(env, out, "workspace", floats);  // not seen: unpooled
  Napi::Float32Array a = Napi::Float32Array::New(env, static_cast<size_t>(floats), buf.ArrayBuffer(), buf.ByteOffset());
  out.Set("workspace", a);
  return a.Data();
}

constexpr const char* kWorkspaceFormula = "the workspace lstmForward returned with training: true";
constexpr const char* kBiWorkspaceFormula = "the workspace bilstmForward returned with training: true";

// ---- lstmForward --------------------------------------------------------------------------------------
Job build_lstm_forward(ArgReader& r) {
  Napi::Env env = r.env();
  const Dims d = read_dims(r);
  LstmForwardArgs a{};
  a.s = d.shape();
  a.reverse = r.boolean_or("reverse", false);
  const bool training = r.boolean_or("training", false);
  const int64_t ws = training ? workspace_floats(r, d) : 0;
  check_budget(r, {d.B * d.T * d.H, 2 * d.B * d.H, ws, d.B * d.T * 4 * d.H});
  const Indices lengths = read_lstm_inputs(r, d, a);
  const ForwardInto into = read_forward_into(r, training, ws, kWorkspaceFormula, d.B * d.T * d.H, "batch*steps*hiddenSize");
  r.verify_inputs();

  Napi::Object out = Napi::Object::New(env);
  a.y = output_into(env, out, "y", into.y, d.B * d.T * d.H);
  a.y_ld = d.H;
  a.h_out = add_output(env, out, "h", d.B * d.H);
  a.c_out = add_output(env, out, "c", d.B * d.H);
  if (training) a.workspace = add_workspace_output(env, out, ws, into.workspace);
  return {out, r.arrays(), [a, lengths]() { lstm_forward(a); }};
}

// ---- lstmBackward -------------------------------------------------------------------------------------
Job build_lstm_backward(ArgReader& r) {
  Napi::Env env = r.env();
  const Dims d = read_dims(r);
  LstmBackwardArgs a{};
  a.s = d.shape();
  a.reverse = r.boolean_or("reverse", false);
  const int64_t ws = workspace_floats(r, d);
  check_budget(r, {d.B * d.T * d.I, 2 * d.B * d.H, (d.I + d.H + 1) * 4 * d.H, d.B * d.T * 4 * d.H});
  const Indices lengths = read_lstm_inputs(r, d, a);
  a.y = r.f32("y", d.B * d.T * d.H, "batch*steps*hiddenSize, the y lstmForward returned").data;
  a.y_ld = d.H;
  a.workspace = r.f32("workspace", ws, kWorkspaceFormula).data;
  a.dy = r.f32_opt("dy", d.B * d.T * d.H, "batch*steps*hiddenSize").data;
  a.dh_out = r.f32_opt("dh", d.B * d.H, "batch*hiddenSize").data;
  a.dc_out = r.f32_opt("dc", d.B * d.H, "batch*hiddenSize").data;
  const bool input_grads = r.boolean_or("inputGradients", true);
  WeightGradsInto into;
  if (r.has("into")) {
    ArgReader i = r.object("into");
    into = read_weight_grads_into(i, d);
  }
  r.verify_inputs();

  Napi::Object out = Napi::Object::New(env);
  a.dx_accumulate = false;
  if (input_grads) {
    a.dx = add_output(env, out, "dx", d.B * d.T * d.I);
    a.dh0 = add_output(env, out, "dh0", d.B * d.H);
    a.dc0 = add_output(env, out, "dc0", d.B * d.H);
  }
  add_weight_grads(env, out, d, a, into);
  return {out, r.arrays(), [a, lengths]() { lstm_backward(a); }};
}

// The inputs both bidirectional entry points share, read in one order so their errors name arguments alike:
// x, the two weight sets, the four initial states, the lengths (returned: they must outlive the job).
template <class Args>
Indices read_bilstm_inputs(ArgReader& r, const Dims& d, Args& f, Args& b) {
  f.x = b.x = r.f32("x", d.B * d.T * d.I, "batch*steps*inputSize").data;
  f.w = read_weights(r, "forward", d, std::is_same<Args, LstmForwardArgs>::value);
  b.w = read_weights(r, "backward", d, std::is_same<Args, LstmForwardArgs>::value);
  f.h0 = opt_state(r, "h0Fw", d);
  f.c0 = opt_state(r, "c0Fw", d);
  b.h0 = opt_state(r, "h0Bw", d);
  b.c0 = opt_state(r, "c0Bw", d);
  Indices lengths = read_lengths(r, d);
  f.lengths = b.lengths = ptr(lengths);
  f.reverse = false;
  b.reverse = true;
  return lengths;
}

// ---- bilstmForward ------------------------------------------------------------------------------------
Job build_bilstm_forward(ArgReader& r) {
  Napi::Env env = r.env();
  const Dims d = read_dims(r);
  LstmForwardArgs f{}, b{};
  f.s = b.s = d.shape();
  const bool training = r.boolean_or("training", false);
  const int64_t ws = training ? workspace_floats(r, d) : 0;
  if (training) checked_product(env, r.fn(), "the workspace (2 directions)", {2, ws});
  check_budget(r, {2 * d.B * d.T * d.H, 4 * d.B * d.H, 2 * ws, 2 * d.B * d.T * 4 * d.H});
  const Indices lengths = read_bilstm_inputs(r, d, f, b);
  const ForwardInto into =
      read_forward_into(r, training, 2 * ws, kBiWorkspaceFormula, d.B * d.T * 2 * d.H, "batch*steps*2*hiddenSize");
  r.verify_inputs();

  Napi::Object out = Napi::Object::New(env);
  f.y = output_into(env, out, "y", into.y, d.B * d.T * 2 * d.H);
  b.y = f.y + d.H;  // [B, T, 2H]: forward in columns [0, H), backward in [H, 2H)
  f.y_ld = b.y_ld = 2 * d.H;
  f.h_out = add_output(env, out, "hFw", d.B * d.H);
  f.c_out = add_output(env, out, "cFw", d.B * d.H);
  b.h_out = add_output(env, out, "hBw", d.B * d.H);
  b.c_out = add_output(env, out, "cBw", d.B * d.H);
  if (training) {
    f.workspace = add_workspace_output(env, out, 2 * ws, into.workspace);
    b.workspace = f.workspace + ws;
  }
  return {out, r.arrays(), [f, b, lengths]() { bilstm_forward(f, b); }};
}

// ---- bilstmBackward -----------------------------------------------------------------------------------
Job build_bilstm_backward(ArgReader& r) {
  Napi::Env env = r.env();
  const Dims d = read_dims(r);
  LstmBackwardArgs f{}, b{};
  f.s = b.s = d.shape();
  const int64_t ws = workspace_floats(r, d);
  checked_product(env, r.fn(), "the workspace (2 directions)", {2, ws});
  check_budget(r, {d.B * d.T * d.I, 4 * d.B * d.H, 2 * (d.I + d.H + 1) * 4 * d.H, 2 * d.B * d.T * 4 * d.H});
  const Indices lengths = read_bilstm_inputs(r, d, f, b);
  const float* y = r.f32("y", d.B * d.T * 2 * d.H, "batch*steps*2*hiddenSize, the y bilstmForward returned").data;
  f.y = y;
  b.y = y + d.H;
  f.y_ld = b.y_ld = 2 * d.H;
  const float* w = r.f32("workspace", 2 * ws, kBiWorkspaceFormula).data;
  f.workspace = w;
  b.workspace = w + ws;
  const float* dy = r.f32_opt("dy", d.B * d.T * 2 * d.H, "batch*steps*2*hiddenSize").data;
  f.dy = dy;
  b.dy = dy ? dy + d.H : nullptr;
  f.dh_out = r.f32_opt("dhFw", d.B * d.H, "batch*hiddenSize").data;
  f.dc_out = r.f32_opt("dcFw", d.B * d.H, "batch*hiddenSize").data;
  b.dh_out = r.f32_opt("dhBw", d.B * d.H, "batch*hiddenSize").data;
  b.dc_out = r.f32_opt("dcBw", d.B * d.H, "batch*hiddenSize").data;
  const bool input_grads = r.boolean_or("inputGradients", true);
  WeightGradsInto into_f, into_b;
  if (r.has("into")) {
    ArgReader i = r.object("into");
    if (i.has("forward")) {
      ArgReader g = i.object("forward");
      into_f = read_weight_grads_into(g, d);
    }
    if (i.has("backward")) {
      ArgReader g = i.object("backward");
      into_b = read_weight_grads_into(g, d);
    }
  }
  r.verify_inputs();

  Napi::Object out = Napi::Object::New(env);
  f.dx_accumulate = false;
  b.dx_accumulate = true;
  if (input_grads) {
    f.dx = b.dx = add_output(env, out, "dx", d.B * d.T * d.I);  // the sum of both directions: the reverse one adds
    f.dh0 = add_output(env, out, "dh0Fw", d.B * d.H);
    f.dc0 = add_output(env, out, "dc0Fw", d.B * d.H);
    b.dh0 = add_output(env, out, "dh0Bw", d.B * d.H);
    b.dc0 = add_output(env, out, "dc0Bw", d.B * d.H);
  }
  Napi::Object gf = Napi::Object::New(env), gb = Napi::Object::New(env);
  add_weight_grads(env, gf, d, f, into_f);
  add_weight_grads(env, gb, d, b, into_b);
  out.Set("forward", gf);
  out.Set("backward", gb);
  return {out, r.arrays(), [f, b, lengths]() { bilstm_backward(f, b); }};
}

// ---- lstmEncode ---------------------------------------------------------------------------------------
Job build_lstm_encode(ArgReader& r) {
  Napi::Env env = r.env();
  const Dims d = read_dims(r);
  LstmEncodeArgs f{};
  f.s = d.shape();
  const bool bidirectional = r.has("backwardWeights");
  const int64_t dirs = bidirectional ? 2 : 1;
  check_budget(r, {2 * dirs * d.B * d.H, dirs * d.B * d.T * 4 * d.H});
  const bool has_x = r.has("x"), has_tokens = r.has("tokens");
  if (has_x == has_tokens) {
    r.fail_msg(kInvalidArgument, has_x ? "give either x or tokens (+ embedding, vocabSize), not both"
                                       : "expected x (batch*steps*inputSize) or tokens + embedding + vocabSize, "
                                         "but neither was given");
  }
  Indices tokens;
  if (has_x) {
    for (const char* extra : {"embedding", "vocabSize"}) {
      if (r.has(extra)) r.fail_field(kInvalidArgument, extra, "absent when x is given", r.get(extra));
    }
    f.x = r.f32("x", d.B * d.T * d.I, "batch*steps*inputSize").data;
  } else {
    const int64_t vocab = r.integer("vocabSize", 1, kMaxDim);
    checked_product(env, r.fn(), "embedding (vocabSize*inputSize)", {vocab, d.I});
    View<const int32_t> given = r.i32("tokens", d.B * d.T, "batch*steps");
    auto copy = std::make_shared<std::vector<int32_t>>(given.data, given.data + given.length);
    f.embedding = r.f32("embedding", vocab * d.I, "vocabSize*inputSize").data;
    // Every position is checked, padding included: the kernels may gather all B*T rows at once.
    for (int64_t i = 0; i < given.length; i++) {
      if ((*copy)[i] < 0 || (*copy)[i] >= vocab) {
        r.fail_msg(kOutOfRange, "tokens[" + std::to_string(i) + "] (batch " + std::to_string(i / d.T) + ", step " +
                                    std::to_string(i % d.T) + ") = " + std::to_string((*copy)[i]) +
                                    " is outside [0, vocabSize=" + std::to_string(vocab) + ")");
      }
    }
    tokens = copy;
    f.tokens = copy->data();
  }
  f.w = read_weights(r, "weights", d, true);
  LstmEncodeArgs b = f;
  if (bidirectional) b.w = read_weights(r, "backwardWeights", d, true);
  const Indices lengths = read_lengths(r, d);
  f.lengths = b.lengths = ptr(lengths);
  f.reverse = r.boolean_or("reverse", false);
  if (bidirectional && f.reverse) {
    r.fail_field(kInvalidArgument, "reverse", "false or absent with backwardWeights (a bidirectional encoder runs "
                                              "both directions)", r.get("reverse"));
  }
  b.reverse = true;
  r.verify_inputs();

  Napi::Object out = Napi::Object::New(env);
  f.out_ld = b.out_ld = dirs * d.H;
  f.h_out = add_output(env, out, "h", dirs * d.B * d.H);
  f.c_out = add_output(env, out, "c", dirs * d.B * d.H);
  b.h_out = f.h_out + d.H;  // [B, 2H]: forward then backward in each row
  b.c_out = f.c_out + d.H;
  if (bidirectional) return {out, r.arrays(), [f, b, lengths, tokens]() { bilstm_encode(f, b); }};
  return {out, r.arrays(), [f, lengths, tokens]() { lstm_encode(f); }};
}

}  // namespace

void register_lstm(Napi::Env env, Napi::Object exports) {
  export_pair<build_lstm_forward>(env, exports, "lstmForward", "lstmForwardAsync");
  export_pair<build_lstm_backward>(env, exports, "lstmBackward", "lstmBackwardAsync");
  export_pair<build_bilstm_forward>(env, exports, "bilstmForward", "bilstmForwardAsync");
  export_pair<build_bilstm_backward>(env, exports, "bilstmBackward", "bilstmBackwardAsync");
  export_pair<build_lstm_encode>(env, exports, "lstmEncode", "lstmEncodeAsync");
}

}  // namespace binding
}  // namespace ds
