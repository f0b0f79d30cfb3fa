// The C++ compute API of the detector's forward (what binding_predict.cpp calls once every argument has been
// checked; nothing here validates input): a bidirectional LSTM whose final hidden states feed a Dense layer,
// optionally scored against a target by the per-window mean squared error. Layouts as in lstm.h.
#pragma once

#include <cstdint>

#include "lstm.h"

namespace ds {

// summary [B, 2H] = [h_fw_final, h_bw_final] of a bidirectional LSTM over x (lstm.h bilstm_encode: no per-step
// output, no cell states), pred [B, N] = summary·dense_kernel + dense_bias (dense_kernel [2H, N], the product
// by lstm.h sgemm, so at Precision::Bf16 with bf16 operands), and with target [B, N] given,
// scores[b] = Σ_j (pred[b, j] − target[b, j])² / N — the differences, squares and sum in double and the
// result rounded to float32 once, as a JavaScript loop over Float32Arrays computes it. The numbers are those of
// bilstm_forward's final states, then sgemm, then the bias added row by row.
struct BiLstmDenseArgs {
  LstmShape s;                // batch, steps, input, hidden
  int64_t out;                // N
  LstmParams fw, bw;
  const float* x;             // [B, T, I]
  const int32_t* lengths;     // [B] or nullptr
  const float* dense_kernel;  // [2H, N]
  const float* dense_bias;    // [N]
  // At Precision::Bf16: dense_kernel already rounded by bf16_pack_b (lstm.h, from this very array), or nullptr:
  // the product rounds it itself. Same numbers either way.
  const uint32_t* bf16_dense_kernel = nullptr;  // bf16_b_words(2H, N)
  const float* target;        // [B, N] or nullptr
  float* pred;                // [B, N]
  float* scores;              // [B] (with target)
};
void bilstm_dense_forward(const BiLstmDenseArgs& a);

}  // namespace ds
