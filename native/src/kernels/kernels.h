// The per-instruction-set compute primitives behind native/src/lstm.h.
//
// kernels_impl.h is compiled once per ISA (kernels_baseline.cpp, kernels_avx2.cpp, kernels_avx512.cpp, each
// with its own -m flags and its own namespace) and each exposes one Table of function pointers. The driver
// (lstm_forward.cpp, lstm_backward.cpp, sgemm.cpp, compiled with baseline flags) picks the table of the active SIMD level (dispatch.h), owns all
// memory and threads, and calls these single-threaded primitives on disjoint parts of the work. Everything
// here is plain data: no std:: types cross the ISA boundary (see simd/vec.h on ODR).
#pragma once

#include <cstddef>
#include <cstdint>

namespace ds {
namespace kern {

// ---- sgemm on a packed B ----------------------------------------------------------------------------
// A packed B holds op(B)[K, N] (op = transpose or not) in K blocks of `kc` rows; block kb (rows k0 = kb*kc
// .. k0+kcb) starts at k0*Np (Np = N rounded up to nr) and holds Np/nr panels of kcb×nr floats, element
// (k, j) of a panel at k*nr + j; columns past N are zero.
struct GemmArgs {
  int64_t m, n, k;       // C[m, n] (+)= op(A)[m, k] · op(B)[k, n]
  const float* a;        // op(A) = trans_a ? Aᵀ : A
  int64_t lda;
  bool trans_a;
  const float* bp;       // packed op(B), K = k, N = n (packed_b_floats), or nullptr: read b directly
  const float* b;        // B [k, n] row-major (not transposed), used when bp is nullptr (few rows of A)
  int64_t ldb;
  const float* bias;     // [n] added to every row when not accumulating, or nullptr
  float* c;
  int64_t ldc;
  bool accumulate;       // C += … instead of C = …
  float* a_scratch;      // packed_a_floats() floats when trans_a, else unused
};

// ---- LSTM recurrence -------------------------------------------------------------------------------
// The rows of one thread's chunk of a batch, sorted by length, descending: row r is sequence seq[r] of
// length len[r]; at step s (0 … T-1) rows 0 … n_s-1 are active (len > s) and visit time
// t = reverse ? len-1-s : s. Rows of different chunks never interact, so chunks run on different threads
// with no synchronisation, and every output element is computed by the same code in the same order
// whatever the number of threads.
struct LstmRecArgs {
  int64_t hidden, steps;
  int64_t rows;
  const int32_t* len;     // [rows]
  const int64_t* seq;     // [rows]
  bool reverse;
  const float* rp;        // recurrent kernel packed by Table::pack_r (unused when pre is set)
  // The input projection fused into the step (x given, several rows): each step tile starts from bias and
  // adds x·kernel before the recurrent product — the same FMA chain as projecting with gemm first, without
  // the [rows*T, 4H] projection buffer. Else kx is nullptr and the steps read xproj.
  const float* kx;        // input kernel packed by Table::pack_k, or nullptr
  const float* x;         // [B*T, input]: x + (b*T+t)*input (the layer's x, in batch order)
  const float* bias;      // [4H]
  int64_t input;
  const float* r;         // recurrent [H, 4H]
  float* pre;             // [4H] scratch, set only when the whole batch is one sequence (rows = 1): then
                          // each step is a vector × matrix product straight over r
  const float* xproj;     // [rows*T, 4H]: x·kernel + bias in chunk order, row r's step t at r*T + t; or,
                          //   with xidx, a table of projected rows: row r's step t at xidx[r*T + t]
  const int32_t* xidx;    // [rows*T] or nullptr (token inputs: the projections of the distinct tokens)
  float* h[2];            // state double buffers [rows, s_ld]; h[0], c[0] hold h0, c0 on entry;
  float* c[2];            //   the final state of row r is in buffer len[r] % 2 on return
  int64_t s_ld;           // >= round_up(hidden, 16); lanes past hidden are 0 on entry and stay 0
  float* y;               // [B*T, y_ld] or nullptr (encoding): y + (b*T+t)*y_ld
  int64_t y_ld;
  bool h0_zero;           // h0 is all zeros: the first step needs no recurrent product
  float* gates;           // workspace [B*T, 4H] activated gates, or nullptr
  float* cells;           // workspace [B*T, H] cell states, or nullptr
};

struct LstmBwdRecArgs {
  int64_t hidden, steps;
  int64_t rows;
  const int32_t* len;
  const int64_t* seq;
  bool reverse;
  const float* rtp;       // recurrentᵀ [4H, H] packed as a gemm B (pack_b of recurrent, trans)
  const float* gates;     // forward workspace
  const float* cells;
  const float* c0;        // [B, H] or nullptr
  const float* dy;        // [B*T, dy_ld] or nullptr
  int64_t dy_ld;
  float* dh;              // [rows, s_ld] carries: dh_out/dc_out on entry, dh0/dc0 on return (dh0 only with want_dh0)
  float* dc;
  int64_t s_ld;
  // [*, 4H]: the pre-activation gradients of the chunk's row i at step s go to row step_base[s] + i (the rows
  // of a step are consecutive: the step's product reads them there)
  float* dg;
  const int64_t* step_base;  // [steps]
  bool want_dh0;          // compute dh0 (the product after the first step); else dh is left undefined at the end
  // called with s once dG of step s is complete (before its product), or nullptr
  void (*after_step)(void* ctx, int64_t s);
  void* ctx;
};

// Softmax cross-entropy of `rows` rows of logits (row r at logits + r*ld, n classes; labels[r] in [0, n)):
// loss[r] = w·(logsumexp(row) − row[label]) with w = weights[r] (1 when null), 0 where w = 0. With grad, each
// row is overwritten by its gradient w·d·(softmax(row) − onehot(label)), d = dloss[r] (1 when null); rows with
// w·d = 0 become 0. Per-element math: xent_math.h.
struct XentRowsArgs {
  float* logits;
  int64_t ld, rows, n;
  const int32_t* labels;
  const float* weights;   // [rows] or nullptr
  const float* dloss;     // [rows] or nullptr
  float* loss;            // [rows]
  bool grad;
};

struct Table {
  const char* name;
  int vw;              // floats per vector
  int mr, nr, kc;      // sgemm register tile and K block
  int lmr;             // rows of the fused LSTM step tile: thread chunks start at multiples of it
  // op(B)[k, n] → packed B (layout above). B is [k, n] (ldb) or, when trans, [n, k].
  void (*pack_b)(const float* b, int64_t ldb, bool trans, int64_t k, int64_t n, float* dst);
  void (*gemm)(const GemmArgs& g);
  // recurrent [H, 4H] → the layout lstm_rec reads (lstm_r_floats floats)
  void (*pack_r)(const float* r, int64_t hidden, float* dst);
  // input kernel [I, 4H] → the same layout over I rows (lstm_k_floats floats), for LstmRecArgs::kx
  void (*pack_k)(const float* k, int64_t input, int64_t hidden, float* dst);
  void (*lstm_rec)(const LstmRecArgs& a);
  void (*lstm_bwd_rec)(const LstmBwdRecArgs& a);
  // out[j] = Σ_r a[r*lda + j] for j in [0, n), rows summed in order; with accumulate the sum continues from
  // out[j] (so consecutive blocks of rows give the same bits as one call over all of them)
  void (*colsum)(const float* a, int64_t lda, int64_t rows, int64_t n, float* out, bool accumulate);
  void (*xent_rows)(const XentRowsArgs& a);
};

inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
inline size_t packed_b_floats(const Table& t, int64_t k, int64_t n) { return (size_t)(k * round_up(n, t.nr)); }
inline size_t packed_a_floats(const Table& t) { return (size_t)(t.kc * 256 + t.mr * t.kc); }
inline size_t lstm_r_floats(const Table& t, int64_t hidden) { return (size_t)(hidden * 4 * round_up(hidden, t.vw)); }
inline size_t lstm_k_floats(const Table& t, int64_t input, int64_t hidden) {
  return (size_t)((input > 0 ? input : 1) * 4 * round_up(hidden, t.vw));
}

extern const Table table_baseline;
#if defined(__x86_64__)
extern const Table table_avx2;
extern const Table table_avx512;
#endif

}  // namespace kern
}  // namespace ds
