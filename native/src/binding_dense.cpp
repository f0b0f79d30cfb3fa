// Dense entry points: matMul (batched, with transposes and batch broadcasting) over ds::sgemm; the output
// layer with its loss, denseSoftmaxXent (train_ops.h dense_softmax_xent); the regression head with its mean
// squared error, denseMse (train_ops.h dense_mse); the embedding gradient,
// scatterAddRows (train_ops.h scatter_add_rows). Each with its *Async form.
#include <memory>
#include <string>
#include <vector>

#include "binding_common.h"
#include "check.h"
#include "lstm.h"
#include "train_ops.h"

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

// An int32 index array that decides which memory the kernels touch: copied before it is checked (a getter read
// later in the call could change the caller's array), every entry in [0, bound). `what` names the bound.
std::shared_ptr<const std::vector<int32_t>> read_indices(ArgReader& r, const char* field, int64_t n,
                                                         const char* formula, int64_t bound, const char* what) {
  View<const int32_t> given = r.i32(field, n, formula);
  auto copy = std::make_shared<std::vector<int32_t>>(given.data, given.data + given.length);
  for (int64_t i = 0; i < n; i++) {
    const int32_t v = (*copy)[i];
    if (v < 0 || v >= bound) {
      r.fail_msg(kOutOfRange, std::string(field) + "[" + std::to_string(i) + "] = " + std::to_string(v) +
                                  " is outside [0, " + what + "=" + std::to_string(bound) + ")");
    }
  }
  return copy;
}

// The result of an output layer with its loss: the per-row loss as out[loss_key] (where *loss points), and with
// the gradient dx, dKernel and dBias (set in a's fields, which both layers' argument structs name alike).
template <class Args>
Napi::Object dense_loss_result(Napi::Env env, Args& a, const char* loss_key, float** loss, int64_t rows, bool grad,
                               int64_t x_len, int64_t k_len, int64_t n) {
  Napi::Object out = Napi::Object::New(env);
  *loss = add_output(env, out, loss_key, rows);
  if (grad) {
    a.dx = add_output(env, out, "dx", x_len);
    a.dkernel = add_output(env, out, "dKernel", k_len);
    a.dbias = add_output(env, out, "dBias", n);
  }
  return out;
}

Job build_dense_xent(ArgReader& r) {
  Napi::Env env = r.env();
  const int64_t rows = r.integer("rows", 1, kMaxDim), in = r.integer("inSize", 1, kMaxDim),
                classes = r.integer("classes", 1, kMaxDim);
  const int64_t x_len = checked_product(env, r.fn(), "x (rows*inSize)", {rows, in});
  const int64_t k_len = checked_product(env, r.fn(), "kernel (inSize*classes)", {in, classes});
  const int64_t l_len = checked_product(env, r.fn(), "the logits (rows*classes)", {rows, classes});
  const bool grad = r.boolean_or("gradient", false);
  // logits, the packed kernel (and kernelᵀ), the loss; training: dx, dkernel (and its transpose), dbias and
  // the per-block bias sums
  check_budget(r, {l_len, 2 * k_len, 64 * (in + classes), rows, grad ? x_len + 2 * k_len + classes + l_len / 6 : 0});
  DenseXentArgs a{};
  a.rows = rows;
  a.in = in;
  a.classes = classes;
  a.x = r.f32("x", x_len, "rows*inSize").data;
  a.kernel = r.f32("kernel", k_len, "inSize*classes").data;
  a.bias = r.f32("bias", classes, "classes").data;
  auto labels = read_indices(r, "labels", rows, "rows", classes, "classes");
  a.labels = labels->data();
  a.weights = r.f32_opt("weights", rows, "rows").data;
  if (r.has("dLoss") && !grad) {
    r.fail_field(kInvalidArgument, "dLoss", "absent unless gradient is true (it scales the gradient)", r.get("dLoss"));
  }
  a.dloss = r.f32_opt("dLoss", rows, "rows").data;
  r.verify_inputs();

  Napi::Object out = dense_loss_result(env, a, "loss", &a.loss, rows, grad, x_len, k_len, classes);
  return {out, r.arrays(), [a, labels]() { dense_softmax_xent(a); }};
}

Job build_dense_mse(ArgReader& r) {
  Napi::Env env = r.env();
  const int64_t rows = r.integer("rows", 1, kMaxDim), in = r.integer("inSize", 1, kMaxDim),
                n = r.integer("outSize", 1, kMaxDim);
  const int64_t x_len = checked_product(env, r.fn(), "x (rows*inSize)", {rows, in});
  const int64_t k_len = checked_product(env, r.fn(), "kernel (inSize*outSize)", {in, n});
  const int64_t p_len = checked_product(env, r.fn(), "target (rows*outSize)", {rows, n});
  const bool grad = r.boolean_or("gradient", false);
  // the predictions, the scores, the sgemms' packed operands; training: dx, dkernel, dbias
  check_budget(r, {p_len, rows, 2 * k_len + x_len, grad ? x_len + k_len + n : 0});
  DenseMseArgs a{};
  a.rows = rows;
  a.in = in;
  a.out = n;
  a.x = r.f32("x", x_len, "rows*inSize").data;
  a.kernel = r.f32("kernel", k_len, "inSize*outSize").data;
  a.bias = r.f32("bias", n, "outSize").data;
  a.target = r.f32("target", p_len, "rows*outSize").data;
  r.verify_inputs();

  Napi::Object out = dense_loss_result(env, a, "scores", &a.scores, rows, grad, x_len, k_len, n);
  return {out, r.arrays(), [a]() { dense_mse(a); }};
}

Job build_scatter_add(ArgReader& r) {
  Napi::Env env = r.env();
  const int64_t rows = r.integer("rows", 1, kMaxDim), cols = r.integer("cols", 1, kMaxDim),
                num_rows = r.integer("numRows", 1, kMaxDim);
  const int64_t x_len = checked_product(env, r.fn(), "x (rows*cols)", {rows, cols});
  const int64_t o_len = checked_product(env, r.fn(), "the result (numRows*cols)", {num_rows, cols});
  check_budget(r, {o_len});
  const float* x = r.f32("x", x_len, "rows*cols").data;
  auto idx = read_indices(r, "indices", rows, "rows", num_rows, "numRows");
  r.verify_inputs();
  OutF32 o = new_f32(env, o_len);
  float* od = o.data;
  return {o.array, r.arrays(), [=]() { scatter_add_rows(x, idx->data(), rows, cols, num_rows, od); }};
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
  export_pair<build_dense_xent>(env, exports, "denseSoftmaxXent", "denseSoftmaxXentAsync");
  export_pair<build_dense_mse>(env, exports, "denseMse", "denseMseAsync");
  export_pair<build_scatter_add>(env, exports, "scatterAddRows", "scatterAddRowsAsync");
}

}  // namespace binding
}  // namespace ds
