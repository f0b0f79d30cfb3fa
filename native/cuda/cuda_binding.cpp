// The N-API face of the CUDA code: status() for capabilities(), and addon.CudaLstm, an LSTM layer (one or
// two directions) whose weights live on the device between calls:
//
//   const l = new addon.CudaLstm({inputSize, hiddenSize, kernel, recurrentKernel, bias,
//                                 backward?: {kernel, recurrentKernel, bias},   // bidirectional
//                                 mode?: 'auto' | 'persistent' | 'perStep', precision?: 'fp32' | 'bf16'});
//   l.forward({batch, steps, x, h0?, c0?, lengths?, reverse?, training?})        // like addon.lstmForward
//   l.forward({batch, steps, x, h0Fw?, c0Fw?, h0Bw?, c0Bw?, lengths?, training?})  // bidirectional: like bilstmForward
//   l.backward({...same as addon.lstmBackward / bilstmBackward without dims and weights...})
//   l.encode({batch, steps, x | tokens+embedding+vocabSize, lengths?, reverse?}) → {h, c} ([B, H·dirs])
//   l.setWeights({kernel, recurrentKernel, bias, backward?}); l.setPrecision('fp32' | 'bf16'); l.dispose()
//
// Precision 'bf16' is the bf16 tier of the CPU kernels (native/src/lstm.h Precision::Bf16) on the device: forward
// and encode take their products from bf16 copies of the input and recurrent kernels (rounded on the host with
// the CPU tier's rounding, uploaded beside the float32 weights, which the float32 backward uses) with float32
// accumulation in the CPU tier's order (lstm_kernels.cuh); everything else stays float32.
//
// Arguments are checked with the addon's ArgReader (native/src/check.h) before any CUDA call; a failing CUDA
// call or launch becomes a DeepSentryError with code DS_CUDA naming the call and the CUDA error. Without a
// usable device the constructor throws DS_CUDA with the runtime's reason.
#include <napi.h>

#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "binding_common.h"
#include "check.h"
#include "cuda_api.h"
#include "device.h"
#include "lstm_plan.h"

namespace ds {
namespace cuda {

Status status() {
  RuntimeStatus r = runtime_status();
  Status s;
  s.device_count = r.device_count;
  s.runtime_version = r.runtime_version;
  s.driver_version = r.driver_version;
  s.error = r.error;
  return s;
}

namespace {

using binding::ArgReader;
using binding::View;
using k::RawMem;

// Runs body; a CudaError becomes DS_CUDA, everything else goes through the addon's guard.
Napi::Value cuda_guarded(Napi::Env env, const std::string& fn, const std::function<Napi::Value()>& body) {
  return binding::guarded(env, fn.c_str(), [&]() -> Napi::Value {
    try {
      return body();
    } catch (const CudaError& e) {
      binding::fail(env, binding::kCuda, fn + ": " + e.what());
    }
  });
}

template <class T>
DeviceBuffer upload(const View<const T>& v, const Stream& s) {
  if (!v) return DeviceBuffer();
  DeviceBuffer b = device_alloc(static_cast<size_t>(v.length) * sizeof(T));
  copy_to_device(b.as<void>(), v.data, static_cast<size_t>(v.length) * sizeof(T), s);
  return b;
}
DeviceBuffer scratch(int64_t floats) { return device_alloc(static_cast<size_t>(floats) * sizeof(float)); }
template <class T>
const T* cptr(const DeviceBuffer& b) {
  return b ? b.as<const T>() : nullptr;
}
float* fptr(const DeviceBuffer& b) { return b ? b.as<float>() : nullptr; }

Napi::Float32Array download(Napi::Env env, const DeviceBuffer& b, int64_t floats, const Stream& s) {
  binding::OutF32 out = binding::new_f32(env, floats);
  copy_to_host(out.data, b.as<void>(), static_cast<size_t>(floats) * sizeof(float), s);
  return out.array;
}

class CudaLstm : public Napi::ObjectWrap<CudaLstm> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "CudaLstm",
                       {InstanceMethod<&CudaLstm::Forward>("forward"),
                        InstanceMethod<&CudaLstm::Backward>("backward"),
                        InstanceMethod<&CudaLstm::Encode>("encode"),
                        InstanceMethod<&CudaLstm::SetWeights>("setWeights"),
                        InstanceMethod<&CudaLstm::SetPrecision>("setPrecision"),
                        InstanceAccessor<&CudaLstm::PrecisionJs>("precision"),
                        InstanceMethod<&CudaLstm::Dispose>("dispose"),
                        InstanceAccessor<&CudaLstm::InputSize>("inputSize"),
                        InstanceAccessor<&CudaLstm::HiddenSize>("hiddenSize"),
                        InstanceAccessor<&CudaLstm::Bidirectional>("bidirectional"),
                        InstanceAccessor<&CudaLstm::LastPersistent>("lastPersistent")});
  }

  explicit CudaLstm(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CudaLstm>(info) {
    Napi::Env env = info.Env();
    cuda_guarded(env, "CudaLstm", [&]() -> Napi::Value {
      ArgReader r = ArgReader::from_info(info, "CudaLstm");
      I_ = r.integer("inputSize", 1, binding::kMaxDim);
      H_ = r.integer("hiddenSize", 1, binding::kMaxDim);
      binding::checked_product(env, "CudaLstm: inputSize*4*hiddenSize", {I_, 4, H_});
      binding::checked_product(env, "CudaLstm: hiddenSize*4*hiddenSize", {H_, 4, H_});
      dirs_ = r.has("backward") ? 2 : 1;
      const std::string mode = r.choice_or("mode", "auto", {"auto", "persistent", "perStep"});
      bf16_ = r.choice_or("precision", "fp32", {"fp32", "bf16"}) == "bf16";
      mode_ = mode == "persistent" ? DeviceExec::Mode::Persistent
              : mode == "perStep"  ? DeviceExec::Mode::PerStep
                                   : DeviceExec::Mode::Auto;
      std::vector<View<const float>> w = read_weights(r);  // checked before CUDA is touched
      RuntimeStatus st = runtime_status();
      if (!st.error.empty()) binding::fail(env, binding::kCuda, "CudaLstm: CUDA is not usable: " + st.error);
      for (int d = 0; d < dirs_; ++d) streams_[d].reset(new Stream());
      dx_done_.reset(new Event());
      inputs_ready_.reset(new Event());
      upload_weights(w, "uploading the weights");
      return env.Undefined();
    });
  }

 private:
  struct DirWeights {
    DeviceBuffer kernel, recurrent, bias;
    DeviceBuffer kernel_bf16, recurrent_bf16;  // pair words (k::pack_bf16_pairs) at precision bf16, else empty
  };

  std::vector<View<const float>> read_weights(ArgReader& r) {
    const int64_t G = 4 * H_;
    std::vector<View<const float>> w;
    w.push_back(r.f32("kernel", I_ * G, "inputSize*4*hiddenSize"));
    w.push_back(r.f32("recurrentKernel", H_ * G, "hiddenSize*4*hiddenSize"));
    w.push_back(r.f32("bias", G, "4*hiddenSize"));
    if (dirs_ == 2) {
      ArgReader b = r.object("backward");
      w.push_back(b.f32("kernel", I_ * G, "inputSize*4*hiddenSize"));
      w.push_back(b.f32("recurrentKernel", H_ * G, "hiddenSize*4*hiddenSize"));
      w.push_back(b.f32("bias", G, "4*hiddenSize"));
    }
    return w;
  }
  // Uploads the weights (and their bf16 copies at precision bf16) and waits for the copies.
  void upload_weights(const std::vector<View<const float>>& w, const char* what) {
    for (int d = 0; d < dirs_; ++d) {
      w_[d].kernel = upload(w[3 * d], *streams_[0]);
      w_[d].recurrent = upload(w[3 * d + 1], *streams_[0]);
      w_[d].bias = upload(w[3 * d + 2], *streams_[0]);
    }
    std::vector<uint32_t> words[4];  // the host side of the copies: alive until they are done
    for (int d = 0; d < dirs_; ++d) {
      if (bf16_) {
        w_[d].kernel_bf16 = upload_bf16(w[3 * d].data, I_, words[2 * d]);
        w_[d].recurrent_bf16 = upload_bf16(w[3 * d + 1].data, H_, words[2 * d + 1]);
      } else {
        w_[d].kernel_bf16 = DeviceBuffer();
        w_[d].recurrent_bf16 = DeviceBuffer();
      }
    }
    streams_[0]->synchronize(what);
  }
  // A [rows, 4H] weight matrix rounded into bf16 pair words (in `words`, which must outlive the copy) on the device.
  DeviceBuffer upload_bf16(const float* m, int64_t rows, std::vector<uint32_t>& words) {
    words.resize(static_cast<size_t>(k::bf16_pair_words(rows, 4 * H_)));
    k::pack_bf16_pairs(m, rows, 4 * H_, words.data());
    DeviceBuffer b = device_alloc(words.size() * sizeof(uint32_t));
    copy_to_device(b.as<void>(), words.data(), words.size() * sizeof(uint32_t), *streams_[0]);
    return b;
  }
  void check_live(Napi::Env env, const char* fn) {
    if (disposed_) binding::fail(env, binding::kInvalidArgument, std::string(fn) + ": this CudaLstm was disposed");
  }

  // Common arguments of forward/backward/encode.
  struct Common {
    int64_t B, T;
    View<const int32_t> lengths;
  };
  Common read_common(ArgReader& r) {
    Common c;
    c.B = r.integer("batch", 1, binding::kMaxDim);
    c.T = r.integer("steps", 1, binding::kMaxDim);
    const int64_t bt = binding::checked_product(r.env(), r.fn() + ": batch*steps", {c.B, c.T});
    // The largest per-call device footprint is the backward pass: about (I + 11·H)·dirs floats per step.
    binding::checked_product(r.env(), r.fn() + ": device memory for batch*steps*(inputSize+11*hiddenSize*dirs)",
                             {bt, I_ + 11 * H_ * dirs_, 4}, binding::kMaxCallBytes);
    c.lengths = r.i32_opt("lengths", c.B, "batch");
    if (c.lengths)
      for (int64_t b = 0; b < c.B; ++b)
        if (c.lengths.data[b] < 0 || c.lengths.data[b] > c.T)
          r.fail_msg(binding::kOutOfRange, "lengths[" + std::to_string(b) + "] = " + std::to_string(c.lengths.data[b]) +
                                               " is outside [0, steps = " + std::to_string(c.T) + "]");
    return c;
  }
  const char* dname(int d, const char* uni, const char* fw, const char* bw) const {
    return dirs_ == 1 ? uni : d == 0 ? fw : bw;
  }

  // One executor per direction, each on its own stream; direction 1 waits for the inputs direction 0's
  // stream uploaded and, in backward, for direction 0's dx before adding its own.
  struct Execs {
    std::unique_ptr<DeviceExec> e[2];
    DeviceExec* p[2] = {nullptr, nullptr};
  };
  Execs execs(bool backward) {
    Execs x;
    for (int d = 0; d < dirs_; ++d) {
      x.e[d].reset(new DeviceExec(*streams_[d], mode_));
      x.p[d] = x.e[d].get();
    }
    if (backward && dirs_ == 2) {
      x.e[0]->set_dx_order(nullptr, dx_done_.get());
      x.e[1]->set_dx_order(dx_done_.get(), nullptr);
    }
    return x;
  }
  // Direction 1's stream starts after everything queued on stream 0 so far (the shared inputs).
  void fork_streams() {
    if (dirs_ == 2) {
      inputs_ready_->record(*streams_[0]);
      inputs_ready_->wait_on(*streams_[1]);
    }
  }
  void join_streams(const char* what) {
    for (int d = dirs_ - 1; d >= 0; --d) streams_[d]->synchronize(what);
  }

  // Runs a LayerForward or LayerBackward: its directions on their streams (direction 1 after the inputs stream
  // 0 uploaded), then waits for both.
  template <class Layer>
  void run(const Layer& L, const char* what) {
    constexpr bool backward = std::is_same<Layer, LayerBackward<RawMem>>::value;
    fork_streams();
    Execs ex = execs(backward);
    if constexpr (backward)
      run_layer_backward(ex.p, L);
    else
      run_layer_forward(ex.p, L);
    last_persistent_ = ex.e[0]->last_persistent();
    join_streams(what);
  }

  // The fields of a layer call that forward, backward and encode set alike: dims, directions and their order,
  // x, lengths and this object's resident weights (the bias: set_forward_scratch, only forward passes read it).
  template <class Layer>
  void set_layer(Layer& L, const Common& c, bool reverse, const DeviceBuffer& x, const DeviceBuffer& lengths) const {
    L.B = c.B;
    L.T = c.T;
    L.I = I_;
    L.H = H_;
    L.dirs = dirs_;
    L.reverse = reverse;
    L.x = cptr<float>(x);
    L.lengths = cptr<int32_t>(lengths);
    for (int d = 0; d < dirs_; ++d) {
      L.kernel[d] = cptr<float>(w_[d].kernel);
      L.recurrent[d] = cptr<float>(w_[d].recurrent);
    }
  }

  // A forward pass's per-direction scratch (forward and encode): every step's input projection and the
  // double-buffered h and c. Declared before the call's QuiesceOnExit, like every buffer of the call.
  struct ForwardScratch {
    DeviceBuffer xproj[2], hbuf[2], cbuf[2];
  };
  void set_forward_scratch(LayerForward<RawMem>& L, ForwardScratch& s) const {
    const int64_t B = L.B, H = H_, G = 4 * H, BT = L.B * L.T;
    for (int d = 0; d < dirs_; ++d) {
      s.xproj[d] = scratch(BT * G);
      s.hbuf[d] = scratch(2 * B * H);
      s.cbuf[d] = scratch(B * H);
      L.bias[d] = cptr<float>(w_[d].bias);
      L.kernel_bf16[d] = cptr<uint32_t>(w_[d].kernel_bf16);
      L.recurrent_bf16[d] = cptr<uint32_t>(w_[d].recurrent_bf16);
      L.xproj[d] = fptr(s.xproj[d]);
      L.hbuf[d] = fptr(s.hbuf[d]);
      L.cbuf[d] = fptr(s.cbuf[d]);
    }
  }

  // Every per-call entry point: a CUDA failure becomes DS_CUDA; the object must be live; then the argument
  // object's batch, steps and lengths are read (in this order, so every entry point fails alike on them), and
  // body reads the rest and runs the call.
  template <class Body>
  Napi::Value guarded_call(const Napi::CallbackInfo& info, const char* fn, Body body) {
    Napi::Env env = info.Env();
    return cuda_guarded(env, fn, [&]() -> Napi::Value {
      check_live(env, fn);
      ArgReader r = ArgReader::from_info(info, fn);
      const Common c = read_common(r);
      return body(env, r, c);
    });
  }

  Napi::Value Forward(const Napi::CallbackInfo& info) {
    return guarded_call(info, "CudaLstm.forward", [&](Napi::Env env, ArgReader& r, const Common& c) -> Napi::Value {
      const int64_t B = c.B, T = c.T, H = H_, G = 4 * H, BT = B * T, D = dirs_;
      View<const float> x = r.f32("x", BT * I_, "batch*steps*inputSize");
      View<const float> h0[2], c0[2];
      for (int d = 0; d < D; ++d) {
        h0[d] = r.f32_opt(dname(d, "h0", "h0Fw", "h0Bw"), B * H, "batch*hiddenSize");
        c0[d] = r.f32_opt(dname(d, "c0", "c0Fw", "c0Bw"), B * H, "batch*hiddenSize");
      }
      const bool reverse = D == 1 && r.boolean_or("reverse", false);
      const bool training = r.boolean_or("training", false);
      r.verify_inputs();

      const Stream& s0 = *streams_[0];
      DeviceBuffer dx = upload(x, s0), dlen = upload(c.lengths, s0), dy = scratch(BT * H * D);
      DeviceBuffer dh0[2], dc0[2], gates[2], cells[2], hout[2], cout[2];
      ForwardScratch fs;
      QuiesceOnExit quiesce(streams_[0].get(), streams_[1].get());
      LayerForward<RawMem> L{};
      set_layer(L, c, reverse, dx, dlen);
      set_forward_scratch(L, fs);
      L.y = fptr(dy);
      L.concat_out = false;
      for (int d = 0; d < D; ++d) {
        dh0[d] = upload(h0[d], s0);
        dc0[d] = upload(c0[d], s0);
        if (training) {
          gates[d] = scratch(BT * G);
          cells[d] = scratch(BT * H);
        }
        hout[d] = scratch(B * H);
        cout[d] = scratch(B * H);
        L.h0[d] = cptr<float>(dh0[d]);
        L.c0[d] = cptr<float>(dc0[d]);
        L.gates[d] = fptr(gates[d]);
        L.cells[d] = fptr(cells[d]);
        L.h_out[d] = fptr(hout[d]);
        L.c_out[d] = fptr(cout[d]);
      }
      run(L, "CudaLstm.forward");

      Napi::Object out = Napi::Object::New(env);
      out.Set("y", download(env, dy, BT * H * D, s0));
      for (int d = 0; d < D; ++d) {
        out.Set(dname(d, "h", "hFw", "hBw"), download(env, hout[d], B * H, s0));
        out.Set(dname(d, "c", "cFw", "cBw"), download(env, cout[d], B * H, s0));
      }
      if (training) {
        // Opaque to callers: per direction, the activated gates [B,T,4H] then the cell states [B,T,H].
        binding::OutF32 ws = binding::new_f32(env, D * BT * 5 * H);
        for (int d = 0; d < D; ++d) {
          copy_to_host(ws.data + d * BT * 5 * H, gates[d].as<void>(), BT * G * sizeof(float), s0);
          copy_to_host(ws.data + d * BT * 5 * H + BT * G, cells[d].as<void>(), BT * H * sizeof(float), s0);
        }
        out.Set("workspace", ws.array);
      }
      s0.synchronize("CudaLstm.forward (copying the results)");
      return out;
    });
  }

  Napi::Value Backward(const Napi::CallbackInfo& info) {
    return guarded_call(info, "CudaLstm.backward", [&](Napi::Env env, ArgReader& r, const Common& c) -> Napi::Value {
      const int64_t B = c.B, T = c.T, H = H_, G = 4 * H, BT = B * T, D = dirs_;
      const char* yshape = D == 1 ? "batch*steps*hiddenSize" : "batch*steps*2*hiddenSize";
      View<const float> x = r.f32("x", BT * I_, "batch*steps*inputSize");
      View<const float> y = r.f32("y", BT * H * D, yshape);
      View<const float> ws = r.f32("workspace", D * BT * 5 * H, "the size of the workspace forward returns (training: true)");
      View<const float> dyv = r.f32_opt("dy", BT * H * D, yshape);
      View<const float> h0[2], c0[2], dh[2], dc[2];
      for (int d = 0; d < D; ++d) {
        h0[d] = r.f32_opt(dname(d, "h0", "h0Fw", "h0Bw"), B * H, "batch*hiddenSize");
        c0[d] = r.f32_opt(dname(d, "c0", "c0Fw", "c0Bw"), B * H, "batch*hiddenSize");
        dh[d] = r.f32_opt(dname(d, "dh", "dhFw", "dhBw"), B * H, "batch*hiddenSize");
        dc[d] = r.f32_opt(dname(d, "dc", "dcFw", "dcBw"), B * H, "batch*hiddenSize");
      }
      const bool reverse = D == 1 && r.boolean_or("reverse", false);
      r.verify_inputs();

      const Stream& s0 = *streams_[0];
      DeviceBuffer dxin = upload(x, s0), dlen = upload(c.lengths, s0), dyb = upload(y, s0);
      DeviceBuffer dws = upload(ws, s0), ddy = upload(dyv, s0), gx = scratch(BT * I_);
      DeviceBuffer h0b[2], c0b[2], dhb[2], dcb[2], dpre[2], dcbuf[2], hprev[2], gh0[2], gc0[2], gk[2], gr[2], gb[2];
      QuiesceOnExit quiesce(streams_[0].get(), streams_[1].get());
      LayerBackward<RawMem> L{};
      set_layer(L, c, reverse, dxin, dlen);
      L.y = cptr<float>(dyb);
      L.dy = cptr<float>(ddy);
      L.dx = fptr(gx);
      for (int d = 0; d < D; ++d) {
        h0b[d] = upload(h0[d], s0);
        c0b[d] = upload(c0[d], s0);
        dhb[d] = upload(dh[d], s0);
        dcb[d] = upload(dc[d], s0);
        dpre[d] = scratch(BT * G);
        dcbuf[d] = scratch(B * H);
        hprev[d] = scratch(BT * H);
        gh0[d] = scratch(B * H);
        gc0[d] = scratch(B * H);
        gk[d] = scratch(I_ * G);
        gr[d] = scratch(H * G);
        gb[d] = scratch(G);
        L.h0[d] = cptr<float>(h0b[d]);
        L.c0[d] = cptr<float>(c0b[d]);
        L.gates[d] = cptr<float>(dws) + d * BT * 5 * H;
        L.cells[d] = cptr<float>(dws) + d * BT * 5 * H + BT * G;
        L.dh_out[d] = cptr<float>(dhb[d]);
        L.dc_out[d] = cptr<float>(dcb[d]);
        L.dpre[d] = fptr(dpre[d]);
        L.dcbuf[d] = fptr(dcbuf[d]);
        L.hprev[d] = fptr(hprev[d]);
        L.dh0[d] = fptr(gh0[d]);
        L.dc0[d] = fptr(gc0[d]);
        L.dkernel[d] = fptr(gk[d]);
        L.drecurrent[d] = fptr(gr[d]);
        L.dbias[d] = fptr(gb[d]);
      }
      run(L, "CudaLstm.backward");

      Napi::Object out = Napi::Object::New(env);
      out.Set("dx", download(env, gx, BT * I_, s0));
      for (int d = 0; d < D; ++d) {
        out.Set(dname(d, "dh0", "dh0Fw", "dh0Bw"), download(env, gh0[d], B * H, s0));
        out.Set(dname(d, "dc0", "dc0Fw", "dc0Bw"), download(env, gc0[d], B * H, s0));
        Napi::Object g = D == 1 ? out : Napi::Object::New(env);
        g.Set("dKernel", download(env, gk[d], I_ * G, s0));
        g.Set("dRecurrentKernel", download(env, gr[d], H * G, s0));
        g.Set("dBias", download(env, gb[d], G, s0));
        if (D == 2) out.Set(d == 0 ? "forward" : "backward", g);
      }
      s0.synchronize("CudaLstm.backward (copying the results)");
      return out;
    });
  }

  Napi::Value Encode(const Napi::CallbackInfo& info) {
    return guarded_call(info, "CudaLstm.encode", [&](Napi::Env env, ArgReader& r, const Common& c) -> Napi::Value {
      const int64_t B = c.B, T = c.T, H = H_, BT = B * T, D = dirs_;
      View<const float> x, emb;
      View<const int32_t> tokens;
      if (r.has("tokens")) {
        if (r.has("x")) r.fail_msg(binding::kInvalidArgument, "give either x or tokens, not both");
        const int64_t vocab = r.integer("vocabSize", 1, binding::kMaxDim);
        tokens = r.i32("tokens", BT, "batch*steps");
        emb = r.f32("embedding", binding::checked_product(env, "CudaLstm.encode: vocabSize*inputSize", {vocab, I_}),
                    "vocabSize*inputSize");
        for (int64_t e = 0; e < BT; ++e)
          if (tokens.data[e] < 0 || tokens.data[e] >= vocab)
            r.fail_msg(binding::kOutOfRange, "tokens[" + std::to_string(e) + "] = " + std::to_string(tokens.data[e]) +
                                                 " is outside [0, vocabSize = " + std::to_string(vocab) + ")");
      } else {
        x = r.f32("x", BT * I_, "batch*steps*inputSize");
      }
      const bool reverse = D == 1 && r.boolean_or("reverse", false);
      r.verify_inputs();

      const Stream& s0 = *streams_[0];
      DeviceBuffer dx = upload(x, s0), dtok = upload(tokens, s0), demb = upload(emb, s0), dlen = upload(c.lengths, s0);
      DeviceBuffer hout = scratch(B * H * D), cout = scratch(B * H * D);
      ForwardScratch fs;
      QuiesceOnExit quiesce(streams_[0].get(), streams_[1].get());
      LayerForward<RawMem> L{};
      set_layer(L, c, reverse, dx, dlen);
      set_forward_scratch(L, fs);
      L.tokens = cptr<int32_t>(dtok);
      L.embedding = cptr<float>(demb);
      L.y = nullptr;  // encoding keeps no per-step output and no gates
      L.concat_out = true;
      L.h_out[0] = fptr(hout);
      L.c_out[0] = fptr(cout);
      run(L, "CudaLstm.encode");
      Napi::Object out = Napi::Object::New(env);
      out.Set("h", download(env, hout, B * H * D, s0));
      out.Set("c", download(env, cout, B * H * D, s0));
      s0.synchronize("CudaLstm.encode (copying the results)");
      return out;
    });
  }

  Napi::Value SetWeights(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return cuda_guarded(env, "CudaLstm.setWeights", [&]() -> Napi::Value {
      check_live(env, "CudaLstm.setWeights");
      ArgReader r = ArgReader::from_info(info, "CudaLstm.setWeights");
      if ((dirs_ == 2) != r.has("backward"))
        r.fail_msg(binding::kShapeMismatch, dirs_ == 2 ? "this layer is bidirectional: give backward"
                                                       : "this layer has one direction: no backward");
      std::vector<View<const float>> w = read_weights(r);
      upload_weights(w, "CudaLstm.setWeights");
      return env.Undefined();
    });
  }

  // setPrecision('fp32' | 'bf16'): the tier of the following forward and encode calls. To bf16, the float32
  // weights on the device are copied back and rounded (as setWeights would); to fp32, the bf16 copies are freed.
  Napi::Value SetPrecision(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return cuda_guarded(env, "CudaLstm.setPrecision", [&]() -> Napi::Value {
      check_live(env, "CudaLstm.setPrecision");
      Napi::Value v = info.Length() > 0 ? info[0] : env.Undefined();
      const std::string p = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
      if (p != "fp32" && p != "bf16")
        binding::fail(env, binding::kInvalidArgument,
                      "CudaLstm.setPrecision: expected precision to be 'fp32' or 'bf16' but received " + binding::describe(v));
      if ((p == "bf16") == bf16_) return env.Undefined();
      bf16_ = p == "bf16";
      const int64_t G = 4 * H_;
      std::vector<float> host[6];
      std::vector<View<const float>> w;
      for (int d = 0; d < dirs_; ++d) {
        const DeviceBuffer* src[3] = {&w_[d].kernel, &w_[d].recurrent, &w_[d].bias};
        const int64_t n[3] = {I_ * G, H_ * G, G};
        for (int i = 0; i < 3; ++i) {
          host[3 * d + i].resize(static_cast<size_t>(n[i]));
          copy_to_host(host[3 * d + i].data(), src[i]->as<void>(), static_cast<size_t>(n[i]) * sizeof(float), *streams_[0]);
          w.push_back(View<const float>{host[3 * d + i].data(), n[i]});
        }
      }
      streams_[0]->synchronize("CudaLstm.setPrecision (reading the weights back)");
      upload_weights(w, "CudaLstm.setPrecision");
      return env.Undefined();
    });
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    for (auto& d : w_) d = DirWeights();
    disposed_ = true;
    return info.Env().Undefined();
  }

  Napi::Value InputSize(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(I_)); }
  Napi::Value HiddenSize(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(H_)); }
  Napi::Value Bidirectional(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), dirs_ == 2); }
  Napi::Value PrecisionJs(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), bf16_ ? "bf16" : "fp32"); }
  Napi::Value LastPersistent(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), last_persistent_);
  }

  int64_t I_ = 0, H_ = 0;
  int dirs_ = 1;
  DeviceExec::Mode mode_ = DeviceExec::Mode::Auto;
  bool bf16_ = false;  // precision 'bf16': forward and encode on the bf16 copies of the kernels
  DirWeights w_[2];
  std::unique_ptr<Stream> streams_[2];
  std::unique_ptr<Event> dx_done_;       // the forward direction's dx is complete (bidirectional backward)
  std::unique_ptr<Event> inputs_ready_;  // stream 0 has uploaded a call's shared inputs
  bool disposed_ = false;
  bool last_persistent_ = false;
};

Napi::Value PoolStatsJs(const Napi::CallbackInfo& info) {
  PoolStats s = pool_stats();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("bytesInUse", double(s.bytes_in_use));
  o.Set("bytesCached", double(s.bytes_cached));
  o.Set("mallocs", double(s.mallocs));
  o.Set("reuses", double(s.reuses));
  return o;
}

Napi::Value PoolTrimJs(const Napi::CallbackInfo& info) {
  pool_trim();
  return info.Env().Undefined();
}

}  // namespace

void register_bindings(Napi::Env env, Napi::Object exports) {
  exports.Set("CudaLstm", CudaLstm::Define(env));
  exports.Set("cudaPoolStats", Napi::Function::New(env, PoolStatsJs, "cudaPoolStats"));
  exports.Set("cudaPoolTrim", Napi::Function::New(env, PoolTrimJs, "cudaPoolTrim"));
}

}  // namespace cuda
}  // namespace ds
