// addon.BiLstmDense: the detector's forward (bilstm_dense.h) as one call over weights the object holds.
//
//   const m = new addon.BiLstmDense({inputSize, hiddenSize, outputSize,
//                                    forward: {kernel, recurrentKernel, bias}, backward: {...},
//                                    dense: {kernel, bias}});
//   m.forward({batch, steps, x, lengths?, target?, pred?, scores?}) → {pred, scores?}
//   m.forwardAsync({...the same}) → Promise<{pred, scores?}>
//
// The constructor checks the weights once and copies them into memory the object owns (later changes to the
// caller's arrays do not reach it: make a new object for new weights), so a call reads and checks only its
// per-batch arguments, and at Precision::Bf16 the LSTM kernels and the Dense kernel are rounded once, on the
// first bf16 call, and kept. A call returns the predictions [B, N] and, with a target [B, N], the per-window mean squared errors
// [B]; it writes them into `pred` / `scores` when given (the same arrays, returned), else into new arrays.
// No per-step output and no cell state is made. Same numbers as bilstmForward's final states through matMul
// plus the bias, and the MSE loop of bench/native.ts.
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "aligned.h"
#include "bilstm_dense.h"
#include "binding_common.h"
#include "check.h"

namespace ds {
namespace binding {
namespace {

// The weights of one object; shared with its async jobs, which may outlive it.
struct DenseModel {
  int64_t I = 0, H = 0, N = 0;
  struct Dir {
    AlignedVector<float> kernel, recurrent, bias;
    AlignedVector<uint32_t> bf16_kernel, bf16_recurrent;  // made by the first bf16 call (bf16_ready)
    AlignedVector<float> bf16_bias;                       // bias in the bf16 kernels' column order (the same)
  } dir[2];
  AlignedVector<float> dense_kernel, dense_bias;
  AlignedVector<uint32_t> bf16_dense;  // made by the first bf16 call (bf16_ready)
  std::once_flag bf16_once;

  // Rounds the LSTM and Dense kernels for the bf16 tier (and puts the LSTM biases in its column order), once (on the JavaScript thread, before a job can read
  // them).
  void bf16_ready() {
    std::call_once(bf16_once, [this] {
      for (Dir& d : dir) {
        d.bf16_kernel.resize(bf16_kernel_words(I, H));
        d.bf16_recurrent.resize(bf16_recurrent_words(H));
        bf16_pack_kernel(d.kernel.data(), I, H, d.bf16_kernel.data());
        bf16_pack_recurrent(d.recurrent.data(), H, d.bf16_recurrent.data());
        d.bf16_bias.resize(bf16_bias_floats(H));
        bf16_pack_bias(d.bias.data(), H, d.bf16_bias.data());
      }
      bf16_dense.resize(bf16_b_words(2 * H, N));
      bf16_pack_b(dense_kernel.data(), N, 2 * H, N, bf16_dense.data());
    });
  }
  LstmParams params(int d, bool bf16) const {
    const Dir& w = dir[d];
    LstmParams p;
    p.kernel = w.kernel.data();
    p.recurrent = w.recurrent.data();
    p.bias = w.bias.data();
    p.bf16_kernel = bf16 ? w.bf16_kernel.data() : nullptr;
    p.bf16_recurrent = bf16 ? w.bf16_recurrent.data() : nullptr;
    p.bf16_bias = bf16 ? w.bf16_bias.data() : nullptr;
    return p;
  }
};

AlignedVector<float> copy_of(const View<const float>& v) { return AlignedVector<float>(v.data, v.data + v.length); }

// Whether the caller's ranges [a, a + an) and [b, b + bn) (elements of 4 bytes) share memory.
bool overlap(const void* a, int64_t an, const void* b, int64_t bn) {
  const char* pa = static_cast<const char*>(a);
  const char* pb = static_cast<const char*>(b);
  return pa && pb && pa < pb + 4 * bn && pb < pa + 4 * an;
}

class BiLstmDense : public Napi::ObjectWrap<BiLstmDense> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "BiLstmDense",
                       {InstanceMethod<&BiLstmDense::Forward>("forward"),
                        InstanceMethod<&BiLstmDense::ForwardAsync>("forwardAsync"),
                        InstanceAccessor<&BiLstmDense::InputSize>("inputSize"),
                        InstanceAccessor<&BiLstmDense::HiddenSize>("hiddenSize"),
                        InstanceAccessor<&BiLstmDense::OutputSize>("outputSize")});
  }

  explicit BiLstmDense(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BiLstmDense>(info) {
    guarded(info.Env(), "BiLstmDense", [&]() -> Napi::Value {
      ArgReader r = ArgReader::from_info(info, "BiLstmDense");
      auto m = std::make_shared<DenseModel>();
      m->I = r.integer("inputSize", 1, kMaxDim);
      m->H = r.integer("hiddenSize", 1, kMaxDim);
      m->N = r.integer("outputSize", 1, kMaxDim);
      const int64_t I = m->I, H = m->H, N = m->N;
      checked_product(r.env(), r.fn(), "kernel (inputSize*4*hiddenSize)", {I, 4, H});
      checked_product(r.env(), r.fn(), "recurrentKernel (hiddenSize*4*hiddenSize)", {H, 4, H});
      checked_product(r.env(), r.fn(), "dense.kernel (2*hiddenSize*outputSize)", {2, H, N});
      check_budget(r, {2 * (I + H + 1) * 4 * H, 2 * H * N + N});
      const char* dirs[2] = {"forward", "backward"};
      for (int d = 0; d < 2; d++) {
        ArgReader w = r.object(dirs[d]);
        m->dir[d].kernel = copy_of(w.f32("kernel", I * 4 * H, "inputSize*4*hiddenSize"));
        m->dir[d].recurrent = copy_of(w.f32("recurrentKernel", H * 4 * H, "hiddenSize*4*hiddenSize"));
        m->dir[d].bias = copy_of(w.f32("bias", 4 * H, "4*hiddenSize"));
      }
      ArgReader dense = r.object("dense");
      m->dense_kernel = copy_of(dense.f32("kernel", 2 * H * N, "2*hiddenSize*outputSize"));
      m->dense_bias = copy_of(dense.f32("bias", N, "outputSize"));
      r.verify_inputs();
      model_ = std::move(m);
      return info.Env().Undefined();
    });
  }

 private:
  Napi::Value Forward(const Napi::CallbackInfo& info) {
    return call_sync(info, "BiLstmDense.forward", [this](ArgReader& r) { return Build(r); });
  }
  Napi::Value ForwardAsync(const Napi::CallbackInfo& info) {
    return call_async(info, "BiLstmDense.forwardAsync", [this](ArgReader& r) { return Build(r); });
  }
  Napi::Value InputSize(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), (double)model_->I); }
  Napi::Value HiddenSize(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), (double)model_->H); }
  Napi::Value OutputSize(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), (double)model_->N); }

  Job Build(ArgReader& r) {
    Napi::Env env = r.env();
    std::shared_ptr<DenseModel> m = model_;
    BiLstmDenseArgs a{};
    const int64_t B = r.integer("batch", 1, kMaxDim), T = r.integer("steps", 1, kMaxDim);
    a.s = {B, T, m->I, m->H};
    a.out = m->N;
    const int64_t x_len = checked_product(env, r.fn(), "x (batch*steps*inputSize)", {B, T, m->I});
    checked_product(env, r.fn(), "the gate pre-activations (batch*steps*4*hiddenSize)", {B, T, 4, m->H});
    checked_product(env, r.fn(), "the summary (batch*2*hiddenSize)", {B, 2, m->H});
    const int64_t p_len = checked_product(env, r.fn(), "pred (batch*outputSize)", {B, m->N});
    // pred, scores, the summary, the projections of both directions (scratch)
    check_budget(r, {p_len, B, 2 * B * m->H, 2 * B * T * 4 * m->H});
    View<const float> x = r.f32("x", x_len, "batch*steps*inputSize");
    a.x = x.data;
    const Indices lengths = read_lengths(r, B, T);
    a.lengths = lengths ? lengths->data() : nullptr;
    View<const float> target = r.f32_opt("target", p_len, "batch*outputSize");
    a.target = target.data;
    View<float> pred, scores;
    if (r.has("pred")) pred = r.f32_inout("pred", p_len, "batch*outputSize");
    if (r.has("scores")) {
      if (!target) r.fail_field(kInvalidArgument, "scores", "absent without target (the scores compare pred with it)", r.get("scores"));
      scores = r.f32_inout("scores", B, "batch");
    }
    r.verify_inputs();
    // The outputs must not share memory with an input or with each other (checked on the caller's memory).
    struct Range {
      const char* name;
      const void* p;
      int64_t n;
    };
    const Range ins[3] = {{"x", x.source, x.length}, {"target", target.source, target.length},
                          {"pred", pred.source, pred.length}};
    const Range outs[2] = {{"pred", pred.source, pred.length}, {"scores", scores.source, scores.length}};
    for (int o = 0; o < 2; o++)
      for (int i = 0; i < 2 + o; i++)
        if (overlap(outs[o].p, outs[o].n, ins[i].p, ins[i].n))
          r.fail_msg(kInvalidArgument, std::string(outs[o].name) + " and " + ins[i].name +
                                           " share memory; the call writes " + outs[o].name + ", so it must not overlap " +
                                           ins[i].name);

    const bool bf16 = precision_active() == Precision::Bf16;
    if (bf16) m->bf16_ready();
    a.fw = m->params(0, bf16);
    a.bw = m->params(1, bf16);
    a.dense_kernel = m->dense_kernel.data();
    a.dense_bias = m->dense_bias.data();
    a.bf16_dense_kernel = bf16 ? m->bf16_dense.data() : nullptr;
    Napi::Object out = Napi::Object::New(env);
    if (pred) {
      a.pred = pred.data;
      out.Set("pred", Napi::Value(env, pred.array));  // the array checked, not a second read
    } else {
      a.pred = add_output(env, out, "pred", p_len);
    }
    if (target) {
      if (scores) {
        a.scores = scores.data;
        out.Set("scores", Napi::Value(env, scores.array));
      } else {
        a.scores = add_output(env, out, "scores", B);
      }
    }
    return {out, r.arrays(), [a, m, lengths]() { bilstm_dense_forward(a); }};
  }

  std::shared_ptr<DenseModel> model_;
};

}  // namespace

void register_predict(Napi::Env env, Napi::Object exports) { exports.Set("BiLstmDense", BiLstmDense::Define(env)); }

}  // namespace binding
}  // namespace ds
