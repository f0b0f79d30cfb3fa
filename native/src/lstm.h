// The C++ compute API of the addon: what the N-API bindings (native/src/binding_*.cpp) call once every
// argument has been checked. Nothing here validates input: callers guarantee shapes, lengths in [0, T],
// non-null required pointers and buffers of the documented sizes.
//
// Layout (Keras / tfjs-layers, so tfjs weights load directly):
//   x [B, T, I] row-major (batch-major), kernel [I, 4H], recurrent [H, 4H], bias [4H],
//   gate blocks along the 4H axis in the order i, f, c(g), o.
// PyTorch stores weight_ih_l0 [4H, I] and weight_hh_l0 [4H, H] with gate order i, f, g, o and two biases:
//   kernel = weight_ih_l0ᵀ, recurrent = weight_hh_l0ᵀ, bias = bias_ih_l0 + bias_hh_l0 (same gate order).
//
// Padded batches: lengths[b] ∈ [0, T]. The forward direction runs t = 0 … len-1; the reverse direction runs
// t = len-1 … 0 (as PyTorch's packed sequences do). Outputs at t >= len are 0; the final state is the state
// after the last valid step (h0/c0 when len = 0).
#pragma once

#include <cstddef>
#include <cstdint>

namespace ds {

// ---- runtime dispatch and threads -------------------------------------------------------------
enum class SimdLevel : int { Baseline = 0, Avx2 = 1, Avx512 = 2 };
const char* simd_name(SimdLevel level);
bool simd_supported(SimdLevel level);  // compiled in and supported by this CPU
SimdLevel simd_best();                 // chosen at load (DEEPSENTRY_SIMD may lower it)
SimdLevel simd_active();
void simd_set(SimdLevel level);        // precondition: simd_supported(level)

int threads_get();
void threads_set(int n);  // n >= 1; DEEPSENTRY_THREADS sets the initial value (default: cores)

// ---- precision tier ---------------------------------------------------------------------------
// Fp32: every product in float32 (the default). Bf16: the matrix products of lstm_forward, bilstm_forward,
// lstm_encode, bilstm_encode and sgemm take bfloat16 operands (rounded to nearest even) and accumulate in
// float32 (kernels/kernels_bf16.h); everything else stays float32, and lstm_backward / bilstm_backward always
// run in float32. Process-wide like the SIMD level. The bf16 kernels are AVX512-BF16 when the CPU has it and
// the SIMD level is avx512, else a portable emulation giving the same numbers (slower than float32).
enum class Precision : int { Fp32 = 0, Bf16 = 1 };
Precision precision_active();
void precision_set(Precision p);
bool bf16_hardware();             // the AVX512-BF16 kernels are compiled in and this CPU has the instructions
const char* bf16_kernels_name();  // the bf16 kernels the current SIMD level uses: "avx512bf16" | "portable"
const char* bf16_instructions();  // what computes their products, in words
// Makes precision_active() return `p` on the calling thread while it lives: an async job runs at the tier its
// call was made at, whatever precision_set() does before the job starts.
class PrecisionScope {
 public:
  explicit PrecisionScope(Precision p);
  ~PrecisionScope();
  PrecisionScope(const PrecisionScope&) = delete;
  PrecisionScope& operator=(const PrecisionScope&) = delete;

 private:
  int saved_;
};

// ---- LSTM -------------------------------------------------------------------------------------
struct LstmShape {
  int64_t batch, steps, input, hidden;
};

struct LstmParams {
  const float* kernel;     // [I, 4H]
  const float* recurrent;  // [H, 4H]
  const float* bias;       // [4H]
  // At Precision::Bf16: kernel and recurrent already rounded by bf16_pack_weights (from these very arrays), or
  // nullptr: the call rounds them itself. Ignored at Fp32.
  const uint32_t* bf16_kernel = nullptr;     // bf16_kernel_words(I, H)
  const uint32_t* bf16_recurrent = nullptr;  // bf16_recurrent_words(H)
  // At Precision::Bf16, optional: bias in the bf16 kernels' column order, made by bf16_pack_bias from this very
  // bias (else each call reorders it). Ignored at Fp32.
  const float* bf16_bias = nullptr;          // bf16_bias_floats(H)
};

// The bf16 tier's rounded copies of one direction's kernels, for callers that reuse a weight set over many
// calls (a trained model): made once, they spare each call a pass over both kernels. Same numbers either way.
size_t bf16_kernel_words(int64_t input, int64_t hidden);
size_t bf16_recurrent_words(int64_t hidden);
void bf16_pack_kernel(const float* kernel, int64_t input, int64_t hidden, uint32_t* dst);
void bf16_pack_recurrent(const float* recurrent, int64_t hidden, uint32_t* dst);
size_t bf16_bias_floats(int64_t hidden);
void bf16_pack_bias(const float* bias, int64_t hidden, float* dst);  // bias nullptr: zeros

struct LstmForwardArgs {
  LstmShape s;
  LstmParams w;
  const float* x;          // [B, T, I]
  const float* h0;         // [B, H] or nullptr = zeros
  const float* c0;         // [B, H] or nullptr = zeros
  const int32_t* lengths;  // [B] or nullptr = all T
  bool reverse;
  float* y;                // y + (b*T + t)*y_ld is the H-vector of step t of sequence b
  int64_t y_ld;            // H for a plain layer, 2H for one half of a bidirectional layer
  float* h_out;            // [B, H]
  float* c_out;            // [B, H]
  float* workspace;        // nullptr for inference, else lstm_workspace_floats(s) floats (kept for backward)
};

size_t lstm_workspace_floats(const LstmShape& s);
void lstm_forward(const LstmForwardArgs& a);

struct LstmBackwardArgs {
  LstmShape s;
  LstmParams w;
  const float* x;
  const float* h0;
  const float* c0;
  const int32_t* lengths;
  bool reverse;
  const float* y;          // the forward output, same y_ld
  int64_t y_ld;
  const float* workspace;  // from the forward call with the same inputs
  const float* dy;         // gradient of y (same y_ld) or nullptr
  const float* dh_out;     // gradient of the final h [B, H] or nullptr
  const float* dc_out;     // gradient of the final c [B, H] or nullptr
  // The input gradients dx, dh0, dc0: all three, or all three nullptr (weights only: a layer whose input is
  // data skips dx = dG·kernelᵀ and the last step's dh product, about a sixth of the backward FLOPs).
  float* dx;               // [B, T, I] or nullptr
  bool dx_accumulate;      // add into dx instead of overwriting (second half of a bidirectional layer)
  float* dh0;              // [B, H] or nullptr
  float* dc0;              // [B, H] or nullptr
  float* dkernel;          // [I, 4H]   (overwritten)
  float* drecurrent;       // [H, 4H]   (overwritten)
  float* dbias;            // [4H]      (overwritten)
};

void lstm_backward(const LstmBackwardArgs& a);

// Both directions of a bidirectional layer, run concurrently. fw.reverse = false, bw.reverse = true; the
// two share x. For backward, bw.dx_accumulate = true and bw.dx = fw.dx: dx is the sum of both directions.
void bilstm_forward(const LstmForwardArgs& fw, const LstmForwardArgs& bw);
void bilstm_backward(const LstmBackwardArgs& fw, const LstmBackwardArgs& bw);

// Batched encoding: the final (h, c) of many variable-length sequences, forward only, storing no per-step
// gates. Input either x [B, T, I] or token ids [B, T] looked up in embedding [vocab, I] (ids < vocab,
// checked by the caller).
struct LstmEncodeArgs {
  LstmShape s;
  LstmParams w;
  const float* x;          // [B, T, I] or nullptr when tokens are given
  const int32_t* tokens;   // [B, T] or nullptr
  const float* embedding;  // [vocab, I] when tokens are given
  const int32_t* lengths;  // [B] or nullptr
  const float* h0;
  const float* c0;
  bool reverse;
  float* h_out;            // h_out + b*out_ld
  float* c_out;            // c_out + b*out_ld (may be nullptr)
  int64_t out_ld;          // H, or 2H when two directions write halves of one [B, 2H] array
};
void lstm_encode(const LstmEncodeArgs& a);
// Both directions of a bidirectional encoder, concurrently (fw writes columns [0,H), bw [H,2H)).
void bilstm_encode(const LstmEncodeArgs& fw, const LstmEncodeArgs& bw);

// ---- dense ------------------------------------------------------------------------------------
// C[m, n] = (accumulate ? C : 0) + op(A)[m, k] · op(B)[k, n], row-major with leading dimensions.
// At Precision::Bf16, bf16_b may hold B (not transposed) already rounded by bf16_pack_b from this very B, for
// callers that reuse a weight matrix over many calls (BiLstmDense's Dense kernel): the call then reads it
// instead of rounding B. Same numbers either way; ignored at Fp32 and with trans_b.
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* A, int64_t lda,
           const float* B, int64_t ldb, float* C, int64_t ldc, bool accumulate, const uint32_t* bf16_b = nullptr);
// The rounded copy sgemm's bf16_b takes, of B [k, n] (ldb apart, not transposed).
size_t bf16_b_words(int64_t k, int64_t n);
void bf16_pack_b(const float* B, int64_t ldb, int64_t k, int64_t n, uint32_t* dst);

}  // namespace ds
