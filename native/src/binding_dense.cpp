// Dense entry points: matMul / matMulAsync (batched, with transposes and batch broadcasting) over ds::sgemm.
#include <string>

#include "binding_common.h"
#include "check.h"
#include "lstm.h"

namespace ds {
namespace binding {
namespace {

Job build_matmul(ArgReader& r) {
  Napi::Env env = r.env();
  const int64_t m = r.integer("m", 1, kMaxDim), k = r.integer("k", 1, kMaxDim), n = r.integer("n", 1, kMaxDim);
  const int64_t batch_a = r.integer_or("batchA", 1, 1, kMaxDim), batch_b = r.integer_or("batchB", 1, 1, kMaxDim);
  const bool ta = r.boolean_or("transposeA", false), tb = r.boolean_or("transposeB", false);
  if (batch_a != batch_b && batch_a != 1 && batch_b != 1) {
    r.fail_msg(kShapeMismatch, "batchA (" + std::to_string(batch_a) + ") and batchB (" + std::to_string(batch_b) +
                                   ") must be equal or one of them 1 (broadcast)");
  }
  const int64_t batch = batch_a > batch_b ? batch_a : batch_b;
  const int64_t a_len = checked_product(env, r.fn(), "a (batchA*m*k)", {batch_a, m, k});
  const int64_t b_len = checked_product(env, r.fn(), "b (batchB*k*n)", {batch_b, k, n});
  const int64_t c_len = checked_product(env, r.fn(), "the result (max(batchA,batchB)*m*n)", {batch, m, n});
  if (c_len > kMaxCallBytes / 4) {
    r.fail_msg(kOutOfRange, "the result would need " + std::to_string(c_len * 4 / (1 << 20)) + " MiB; at most " +
                                std::to_string(kMaxCallBytes >> 20) + " MiB is allowed per call");
  }
  const float* a = r.f32("a", a_len, ta ? "batchA*k*m, transposed" : "batchA*m*k").data;
  const float* b = r.f32("b", b_len, tb ? "batchB*n*k, transposed" : "batchB*k*n").data;
  r.verify_inputs();

  OutF32 c = new_f32(env, c_len);
  float* cd = c.data;
  return {c.array, r.arrays(), [=]() {
            // Row-major: A is [m,k] (lda k) or, transposed, stored [k,m] (lda m); B is [k,n] (ldb n) or [n,k] (ldb k).
            for (int64_t p = 0; p < batch; p++) {
              const float* ap = a + (batch_a == 1 ? 0 : p * m * k);
              const float* bp = b + (batch_b == 1 ? 0 : p * k * n);
              sgemm(ta, tb, m, n, k, ap, ta ? m : k, bp, tb ? k : n, cd + p * m * n, n, false);
            }
          }};
}

}  // namespace

void register_dense(Napi::Env env, Napi::Object exports) {
  exports.Set("matMul", Napi::Function::New(
                            env, [](const Napi::CallbackInfo& i) { return sync_entry<build_matmul>(i, "matMul"); },
                            "matMul"));
  exports.Set("matMulAsync",
              Napi::Function::New(
                  env, [](const Napi::CallbackInfo& i) { return async_entry<build_matmul>(i, "matMulAsync"); },
                  "matMulAsync"));
}

}  // namespace binding
}  // namespace ds
