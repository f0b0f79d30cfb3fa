// The bf16 precision tier (lstm.h Precision::Bf16): matrix products with bfloat16 operands and float32
// accumulation, for the LSTM input projection, the LSTM recurrent product and sgemm (Dense). Everything else
// (bias, gates, cell state, outputs) stays float32.
//
// Arithmetic, exactly that of the AVX512-BF16 instruction vdpbf16ps, which every table here reproduces bit for
// bit (kernels_bf16_portable.cpp in plain C++, kernels_bf16_avx512.cpp with the instruction):
//   - operands are rounded float32 → bf16 to nearest, ties to even (vcvtne2ps2bf16: a denormal input becomes
//     a zero of its sign, a NaN stays a NaN);
//   - the K axis is taken in pairs (k = 2p, 2p+1; an odd K is padded with a zero); per pair and output,
//     acc = acc + a[2p+1]·b[2p+1], then acc = acc + a[2p]·b[2p], each a float32 addition rounded to nearest
//     (the product of two bf16 is exact in float32), denormal results flushed to zero;
//   - the accumulator starts from the bias (or C when accumulating) and runs over p in increasing order.
// So each output is the same chain whatever the tiling, the number of threads or the table.
//
// Layouts (uint32 = one pair: bf16 of the even k in the low half, of the odd k in the high half):
//   packed B (bf16_packed_b_words): op(B)[K, N] in blocks of BF16_KC2 pairs; block kb (pairs p0 = kb*KC2 …)
//     starts at p0*Np (Np = N rounded up to BF16_NR) and holds Np/NR panels of kcb2×NR words, pair (p, j) of
//     a panel at p*NR + j; columns past N are 0.
//   packed recurrent (bf16_lstm_r_words): [H/16 blocks][H2 pairs][4 gates][16 units], units past H are 0.
//   packed LSTM input kernel (Bf16Table::pack_k): a packed B of bf16_gate_cols(H) columns in the recurrent
//     kernel's gate-blocked order: column jb*64 + g*16 + u is gate g of unit 16*jb + u (0 past H), so panel jb
//     holds the four gates of the same 16 units and a step tile reads it as it reads the recurrent kernel
//     (for I <= 256, one K block, it is exactly [H/16 blocks][I2 pairs][4 gates][16 units]). The projections
//     the gemm makes with it (token tables, one sequence) have their columns in that order too.
#pragma once

#include <cstddef>
#include <cstdint>

#include "bf16_math.h"  // bf16_round, bf16_pair, bf16_dot_pair: shared with the CUDA kernels
#include "kernels/kernels.h"

namespace ds {
namespace kern {

constexpr int BF16_NR = 64;     // columns of a packed B panel (4 AVX-512 vectors)
constexpr int BF16_KC2 = 128;   // pairs per K block (256 values of K: a 128×64 panel is 32 KB, L1)
constexpr int BF16_UNITS = 16;  // hidden units per block of the packed recurrent kernel
constexpr int64_t BF16_GEMM_MR = 6;       // rows of a gemm tile over packed B (strips start at multiples)
constexpr int64_t BF16_DIRECT_MAX = 12;   // at most this many rows of A: B rounded panel by panel (Bf16GemmArgs::b)

inline size_t bf16_packed_b_words(int64_t k, int64_t n) { return (size_t)((k + 1) / 2 * round_up(n, BF16_NR)); }
// Columns of the LSTM input projection in the gate-blocked order (4H rounded up to whole blocks of 16 units).
inline int64_t bf16_gate_cols(int64_t hidden) { return 4 * round_up(hidden, BF16_UNITS); }
// Where pair p of column c lies in a packed B of k2 pairs and np columns (a multiple of BF16_NR).
inline int64_t bf16_b_word(int64_t k2, int64_t np, int64_t p, int64_t c) {
  const int64_t p0 = p / BF16_KC2 * BF16_KC2, kcb2 = k2 - p0 < BF16_KC2 ? k2 - p0 : BF16_KC2;
  return p0 * np + (c / BF16_NR) * kcb2 * BF16_NR + (p - p0) * BF16_NR + c % BF16_NR;
}
inline size_t bf16_lstm_r_words(int64_t hidden) {
  return (size_t)(round_up(hidden, BF16_UNITS) / BF16_UNITS * ((hidden + 1) / 2) * 4 * BF16_UNITS);
}
// The A block a gemm converts at a time (rows × pairs), and the current h (or x) of a recurrence's rows
// (rows × pairs, bf16_row_ld words apart).
constexpr int64_t BF16_MC = 240;
inline size_t bf16_a_scratch_words() { return (size_t)(BF16_MC * BF16_KC2); }
inline int64_t bf16_row_ld(int64_t n) { return round_up((n + 1) / 2, 16); }
inline size_t bf16_h_words(int64_t rows, int64_t n) { return (size_t)(rows * bf16_row_ld(n)); }

// C (+)= op(A)·op(B) with bf16 operands. B is packed (bp) or, when bp is nullptr, read as float32 from b
// [k, n] (ldb, not transposed) and rounded one panel at a time into an L1 buffer just before its tiles read it
// (few rows of A: a separate packing pass and buffer would cost more than the product).
struct Bf16GemmArgs {
  int64_t m, n, k;
  const float* a;
  int64_t lda;
  bool trans_a;
  const uint32_t* bp;
  const float* b;
  int64_t ldb;
  const float* bias;     // [n] when not accumulating, or nullptr
  float* c;
  int64_t ldc;
  bool accumulate;
  uint32_t* a_scratch;   // bf16_a_scratch_words()
  int64_t gate_h;        // b (bp nullptr) is an LSTM input kernel [k, 4*gate_h] whose columns C takes in the
                         // gate-blocked order (n = bf16_gate_cols(gate_h)); 0: plain columns
};

// The fused recurrence of kernels.h (LstmRecArgs, whose rp, kx, r and pre are unused here) on a recurrent
// kernel packed by Bf16Table::pack_r, with scratch for the bf16 copy of the active rows' h. Its xproj rows
// have bf16_gate_cols(hidden) columns in the gate-blocked order. With kp (x given, several rows) the input
// projection is fused into the step as at float32: each step rounds the active rows' x to bf16 pairs (xb) and
// the tile starts from rec.bias (bf16_gate_cols floats, gate-blocked) and adds x·kernel, then h·recurrent —
// the chain of projecting with the gemm first (bias, then the pairs of x, then those of h), without the
// [rows*T, 4H] projection buffer going through memory.
struct Bf16RecArgs {
  LstmRecArgs rec;
  const uint32_t* rp;
  uint32_t* hb;          // bf16_h_words(rows, hidden)
  const uint32_t* kp;    // input kernel packed by Bf16Table::pack_k, or nullptr: read xproj
  uint32_t* xb;          // bf16_h_words(rows, input) when kp
};

struct Bf16Table {
  const char* name;          // "avx512bf16" | "portable"
  const char* instructions;  // what runs the products, for capabilities()
  void (*pack_b)(const float* b, int64_t ldb, bool trans, int64_t k, int64_t n, uint32_t* dst);
  void (*gemm)(const Bf16GemmArgs& g);
  void (*pack_r)(const float* r, int64_t hidden, uint32_t* dst);
  // kernel [input, 4*hidden] → bf16_packed_b_words(input, bf16_gate_cols(hidden)), gate-blocked columns
  void (*pack_k)(const float* kernel, int64_t input, int64_t hidden, uint32_t* dst);
  void (*lstm_rec)(const Bf16RecArgs& a);
};

extern const Bf16Table bf16_table_portable;
#if defined(__x86_64__)
extern const Bf16Table bf16_table_avx512;
#endif

}  // namespace kern
}  // namespace ds
