// The bodies of the CUDA kernels, written as per-thread __host__ __device__ functions so that the host
// emulator (native/verify/emulate.cpp) runs exactly this code for small shapes with bounds-checked memory.
//
// A CUDA kernel in lstm_cuda.cu is a thin loop around these functions: it maps blockIdx/threadIdx to the
// arguments and puts __syncthreads() / grid.sync() between the phases. The emulator runs the same phases in
// the same order: for a phase, every thread of every block in turn, then the next phase. Nothing here touches
// blockIdx, threadIdx, shared-memory declarations or barriers, so this file also compiles with g++.
//
// Memory is reached only through `typename M::template ptr<T>` and `p[i]`: M = RawMem gives plain pointers
// (the device code); the emulator's memory model gives pointers that check every index against the buffer's
// size and count the writes to each output element.
//
// Layouts are those of native/src/lstm.h: x [B,T,I], kernel [I,4H], recurrent [H,4H], bias [4H], gate
// blocks i, f, g(c), o along 4H; lengths per sequence, the reverse direction visits t = len-1 … 0.
//
// The bf16 tier (lstm.h Precision::Bf16) of the forward products: the input kernel and the recurrent kernel are
// given as bf16 pair words (pack_bf16_pairs: word (p, c) holds rows 2p and 2p+1 of column c, the CPU tier's
// pairing of K), x (or the embedding rows) and h are rounded to bf16 as they are read, and every output is the
// chain of native/src/bf16_math.h bf16_dot_pair steps over the pairs in increasing order starting from the bias,
// the chain the CPU bf16 kernels compute (kernels/kernels_bf16.h) — the same per-element code, so the same
// float32 results. Gates, cell state and the backward pass stay float32. No tensor cores: the products run
// on the CUDA cores (bf16 storage, float32 arithmetic), the code the host emulator runs.
#pragma once

#include <cstdint>

#include "bf16_math.h"
#include "lstm_math.h"

// Full unrolling of the small fixed loops (registers on the device); nothing on the host (g++ would warn
// about an unknown pragma, also in nvcc's host pass).
#if defined(__CUDA_ARCH__)
#define DS_UNROLL _Pragma("unroll")
#else
#define DS_UNROLL
#endif

namespace ds {
namespace cuda {
namespace k {

// Plain pointers: what the device kernels use.
struct RawMem {
  template <class T>
  using ptr = T*;
};

// A load that bypasses L1: the persistent kernels read state other blocks wrote before the last grid-wide
// barrier, and L1 is not coherent between SMs. The emulator's checked pointers get their own overload (ADL).
DS_HD float ld_cg(const float* p, int64_t i) {
#if defined(__CUDA_ARCH__)
  return __ldcg(p + i);
#else
  return p[i];
#endif
}
DS_HD float ld_cg(float* p, int64_t i) { return ld_cg(static_cast<const float*>(p), i); }

// ---- step visiting order (shared by forward, backward and the gather of previous hidden states) --------

// Length of sequence b (all T when no lengths are given).
template <class P>
DS_HD int64_t seq_len(P lengths, int64_t b, int64_t T) {
  return lengths ? static_cast<int64_t>(lengths[b]) : T;
}
// The time index visited at step s (0 <= s < len) of a sequence of length len.
DS_HD int64_t step_time(int64_t s, int64_t len, bool reverse) { return reverse ? len - 1 - s : s; }

// ---- tiled sgemm ------------------------------------------------------------------------------------
// C[m,n] = (accumulate ? C : 0) + op(A)[m,k] · op(B)[k,n], row-major with leading dimensions, the same
// contract as ds::sgemm. Optionally row r of op(A) is row a_rows[r] of A (embedding lookup fused into the
// input projection; only without trans_a).
//
// A block computes a GEMM_BM x GEMM_BN tile of C with GEMM_TX x GEMM_TY threads; thread (tx, ty) owns the
// 4x4 elements (ty + 16 i, tx + 16 j): strided so that a warp reads consecutive shared-memory words.
// Per GEMM_BK slice of k: phase "load" (every thread stages 4 elements of A and 4 of B, zero past the edges),
// barrier, phase "accumulate", barrier. Then phase "store" writes each in-range element of C exactly once.
constexpr int GEMM_BM = 64, GEMM_BN = 64, GEMM_BK = 16;
constexpr int GEMM_TX = 16, GEMM_TY = 16, GEMM_THREADS = GEMM_TX * GEMM_TY;
constexpr int GEMM_MR = GEMM_BM / GEMM_TY, GEMM_NR = GEMM_BN / GEMM_TX;  // 4 x 4 per thread
constexpr int GEMM_LOADS = GEMM_BM * GEMM_BK / GEMM_THREADS;             // 4 of A and 4 of B per thread
static_assert(GEMM_BM * GEMM_BK == GEMM_BN * GEMM_BK, "A and B tiles are loaded by the same threads");

template <class M>
struct GemmArgs {
  bool trans_a, trans_b, accumulate;
  int64_t m, n, k, lda, ldb, ldc;
  typename M::template ptr<const float> A;
  typename M::template ptr<const int32_t> a_rows;  // nullptr: row r of op(A) is row r of A
  typename M::template ptr<const float> B;
  typename M::template ptr<float> C;
  // C starts from bias[c] instead of 0 (not with accumulate), or nullptr.
  typename M::template ptr<const float> bias;
  // The bf16 tier: B is given as pair words Bp [(k+1)/2, ldb] (pack_bf16_pairs; B null, not transposed), op(A) is
  // rounded to bf16 as it is loaded and C[r, c] = bias[c] followed by bf16_dot_pair over the pairs of k.
  typename M::template ptr<const uint32_t> Bp;
};

// Rows [0, rows) × columns [0, cols) of a row-major float32 matrix as bf16 pair words [(rows+1)/2, cols]: word
// (p, c) = bf16_pair(src[2p, c], src[2p+1, c]) (0 past the last row). The layout of GemmArgs::Bp and FwdArgs::Rp,
// rounded once on the host when the weights are uploaded.
inline void pack_bf16_pairs(const float* src, int64_t rows, int64_t cols, uint32_t* dst) {
  for (int64_t p = 0; p < (rows + 1) / 2; ++p)
    for (int64_t c = 0; c < cols; ++c)
      dst[p * cols + c] = kern::bf16_pair(src[2 * p * cols + c], 2 * p + 1 < rows ? src[(2 * p + 1) * cols + c] : 0.0f);
}
inline int64_t bf16_pair_words(int64_t rows, int64_t cols) { return (rows + 1) / 2 * cols; }

// Grid: x = m tiles (up to 2^31-1), y = n tiles.
inline int64_t gemm_tiles_m(int64_t m) { return (m + GEMM_BM - 1) / GEMM_BM; }
inline int64_t gemm_tiles_n(int64_t n) { return (n + GEMM_BN - 1) / GEMM_BN; }

// op(A)[r, kk], or 0 outside [0,m) x [0,k).
template <class M>
DS_HD float gemm_a_at(const GemmArgs<M>& g, int64_t r, int64_t kk) {
  if (r >= g.m || kk >= g.k) return 0.0f;
  if (g.trans_a) return g.A[kk * g.lda + r];
  int64_t row = g.a_rows ? static_cast<int64_t>(g.a_rows[r]) : r;
  return g.A[row * g.lda + kk];
}
// op(B)[kk, c], or 0 outside [0,k) x [0,n); the bf16 value from its pair word in the bf16 tier.
template <class M>
DS_HD float gemm_b_at(const GemmArgs<M>& g, int64_t kk, int64_t c) {
  if (kk >= g.k || c >= g.n) return 0.0f;
  if (g.Bp) {
    const uint32_t w = g.Bp[(kk / 2) * g.ldb + c];
    return kk % 2 ? kern::bf16_hi(w) : kern::bf16_lo(w);
  }
  return g.trans_b ? g.B[c * g.ldb + kk] : g.B[kk * g.ldb + c];
}

// Phase "load": stage slice k0 of the A tile as As[kk*BM + r] and of the B tile as Bs[kk*BN + c]. The
// element a thread takes is chosen so that neighbouring threads read neighbouring addresses of global
// memory in each storage order (k contiguous for A, m contiguous for Aᵀ; n contiguous for B, k for Bᵀ).
template <class M>
DS_HD void gemm_load(const GemmArgs<M>& g, int64_t tile_m, int64_t tile_n, int tid, int64_t k0,
                     typename M::template ptr<float> As, typename M::template ptr<float> Bs) {
  DS_UNROLL
  for (int e = 0; e < GEMM_LOADS; ++e) {
    int idx = tid + e * GEMM_THREADS;
    int r, kk;
    if (g.trans_a) { r = idx % GEMM_BM; kk = idx / GEMM_BM; }
    else           { kk = idx % GEMM_BK; r = idx / GEMM_BK; }
    const float av = gemm_a_at(g, tile_m * GEMM_BM + r, k0 + kk);
    As[kk * GEMM_BM + r] = g.Bp ? kern::bf16_rounded(av) : av;
    int c;
    if (g.trans_b) { kk = idx % GEMM_BK; c = idx / GEMM_BK; }
    else           { c = idx % GEMM_BN; kk = idx / GEMM_BN; }
    Bs[kk * GEMM_BN + c] = gemm_b_at(g, k0 + kk, tile_n * GEMM_BN + c);
  }
}

// Phase "accumulate": acc[i*NR + j] += Σ_kk As[kk, ty+16i] · Bs[kk, tx+16j].
template <class SP, class AccP>
DS_HD void gemm_accumulate(int tx, int ty, SP As, SP Bs, AccP acc) {
  DS_UNROLL
  for (int kk = 0; kk < GEMM_BK; ++kk) {
    float a[GEMM_MR], b[GEMM_NR];
    DS_UNROLL
    for (int i = 0; i < GEMM_MR; ++i) a[i] = As[kk * GEMM_BM + ty + GEMM_TY * i];
    DS_UNROLL
    for (int j = 0; j < GEMM_NR; ++j) b[j] = Bs[kk * GEMM_BN + tx + GEMM_TX * j];
    DS_UNROLL
    for (int i = 0; i < GEMM_MR; ++i)
      DS_UNROLL
      for (int j = 0; j < GEMM_NR; ++j) acc[i * GEMM_NR + j] = acc[i * GEMM_NR + j] + a[i] * b[j];
  }
}

// Phase "accumulate" of the bf16 tier, on a slice whose first pair is pair p0 of k2: for each pair p of the slice
// (below k2, so the chain has exactly the CPU tier's steps), acc = bf16_dot_pair(acc, even, odd values).
template <class SP, class AccP>
DS_HD void gemm_accumulate_bf16(int tx, int ty, SP As, SP Bs, AccP acc, int64_t p0, int64_t k2) {
  DS_UNROLL
  for (int kp = 0; kp < GEMM_BK / 2; ++kp) {
    if (p0 + kp >= k2) break;
    float ae[GEMM_MR], ao[GEMM_MR], be[GEMM_NR], bo[GEMM_NR];
    DS_UNROLL
    for (int i = 0; i < GEMM_MR; ++i) {
      ae[i] = As[2 * kp * GEMM_BM + ty + GEMM_TY * i];
      ao[i] = As[(2 * kp + 1) * GEMM_BM + ty + GEMM_TY * i];
    }
    DS_UNROLL
    for (int j = 0; j < GEMM_NR; ++j) {
      be[j] = Bs[2 * kp * GEMM_BN + tx + GEMM_TX * j];
      bo[j] = Bs[(2 * kp + 1) * GEMM_BN + tx + GEMM_TX * j];
    }
    DS_UNROLL
    for (int i = 0; i < GEMM_MR; ++i)
      DS_UNROLL
      for (int j = 0; j < GEMM_NR; ++j)
        acc[i * GEMM_NR + j] = kern::bf16_dot_pair(acc[i * GEMM_NR + j], ae[i], be[j], ao[i], bo[j]);
  }
}

// Before the first slice: each accumulator starts from its column's bias (0 without one or past n).
template <class M, class AccP>
DS_HD void gemm_init(const GemmArgs<M>& g, int64_t tile_n, int tx, AccP acc) {
  DS_UNROLL
  for (int j = 0; j < GEMM_NR; ++j) {
    const int64_t c = tile_n * GEMM_BN + tx + GEMM_TX * j;
    const float b = g.bias && c < g.n ? g.bias[c] : 0.0f;
    DS_UNROLL
    for (int i = 0; i < GEMM_MR; ++i) acc[i * GEMM_NR + j] = b;
  }
}

// Phase "store".
template <class M, class AccP>
DS_HD void gemm_store(const GemmArgs<M>& g, int64_t tile_m, int64_t tile_n, int tx, int ty, AccP acc) {
  DS_UNROLL
  for (int i = 0; i < GEMM_MR; ++i) {
    int64_t r = tile_m * GEMM_BM + ty + GEMM_TY * i;
    if (r >= g.m) continue;
    DS_UNROLL
    for (int j = 0; j < GEMM_NR; ++j) {
      int64_t c = tile_n * GEMM_BN + tx + GEMM_TX * j;
      if (c >= g.n) continue;
      float v = acc[i * GEMM_NR + j];
      if (g.accumulate) v = v + g.C[r * g.ldc + c];
      g.C[r * g.ldc + c] = v;
    }
  }
}

// ---- recurrent blocks: which hidden units a block owns ---------------------------------------------
// Block bx of the forward/backward step kernels owns hidden units [bx*U, min(H, bx*U+U)) for every
// sequence; its threads stride over the (b, unit) pairs. With U units a block needs 4·H·U floats of
// recurrent weights: the persistent kernels keep them in shared memory for all steps.
struct UnitRange {
  int64_t j0, count;
};
DS_HD UnitRange block_units(int64_t bx, int64_t U, int64_t H) {
  int64_t j0 = bx * U;
  int64_t j1 = j0 + U < H ? j0 + U : H;
  return {j0, j1 - j0};
}
inline int64_t recurrent_blocks(int64_t H, int64_t U) { return (H + U - 1) / U; }
inline int64_t recurrent_slice_floats(int64_t H, int64_t U) { return 4 * H * U; }

// ---- forward ------------------------------------------------------------------------------------------
template <class M>
struct FwdArgs {
  int64_t B, T, H;
  int64_t U;                                         // hidden units per block
  typename M::template ptr<const float> xproj;      // [B*T, 4H]: x · kernel for every step
  typename M::template ptr<const float> bias;       // [4H], or nullptr when xproj includes it (bf16 tier)
  typename M::template ptr<const float> R;          // [H, 4H]
  // The bf16 tier: the recurrent kernel as pair words [(H+1)/2, 4H] (pack_bf16_pairs), used instead of R; h is
  // rounded to bf16 as it is read and the recurrent product continues xproj's bf16_dot_pair chain.
  typename M::template ptr<const uint32_t> Rp;
  typename M::template ptr<const int32_t> lengths;  // [B] or nullptr
  bool reverse;
  typename M::template ptr<const float> h0, c0;     // [B, H] or nullptr (zeros)
  typename M::template ptr<float> hbuf;             // [2, B, H]: step s reads half s&1, writes the other
  typename M::template ptr<float> cbuf;             // [B, H]
  typename M::template ptr<float> y;                // y + (b*T+t)*y_ld, or nullptr (encoding)
  int64_t y_ld;
  typename M::template ptr<float> gates;            // [B, T, 4H] activated gates, or nullptr (inference)
  typename M::template ptr<float> cells;            // [B, T, H] cell states, or nullptr (inference)
  typename M::template ptr<float> h_out;            // h_out + b*out_ld
  typename M::template ptr<float> c_out;            // same, or nullptr
  int64_t out_ld;
};

// Persistent kernel, before the steps: copy this block's recurrent columns into shared memory as
// Rs[k*4U + gate*U + (j - j0)] (all k < H, the block's units j); in the bf16 tier the bf16 values of Rp's words
// (as float32: the same shared-memory layout and size as float32).
template <class M>
DS_HD void fwd_load_slice(const FwdArgs<M>& a, int64_t bx, int tid, int nthreads,
                          typename M::template ptr<float> Rs) {
  UnitRange u = block_units(bx, a.U, a.H);
  int64_t per_k = 4 * u.count;
  for (int64_t e = tid; e < a.H * per_k; e += nthreads) {
    int64_t kk = e / per_k, rem = e % per_k, gate = rem / u.count, jj = rem % u.count;
    const int64_t col = gate * a.H + u.j0 + jj;
    float w;
    if (a.Rp) {
      const uint32_t pw = a.Rp[(kk / 2) * 4 * a.H + col];
      w = kk % 2 ? kern::bf16_hi(pw) : kern::bf16_lo(pw);
    } else {
      w = a.R[kk * 4 * a.H + col];
    }
    Rs[kk * 4 * a.U + gate * a.U + jj] = w;
  }
}

// The bf16 recurrent product of unit j: acc[gate] continues with bf16_dot_pair over the pairs of h (read at hin,
// rounded) and of the unit's recurrent column (from the slice Rs, or Rp's words).
template <class M>
DS_HD void fwd_recurrent_bf16(const FwdArgs<M>& a, int64_t hin, int64_t j, int64_t j0,
                              typename M::template ptr<const float> Rs, float* acc) {
  const int64_t H = a.H, G = 4 * H;
  for (int64_t p = 0; 2 * p < H; ++p) {
    const bool odd = 2 * p + 1 < H;  // an odd H pads the last pair with zeros, as the CPU tier does
    const float he = kern::bf16_rounded(ld_cg(a.hbuf, hin + 2 * p));
    const float ho = odd ? kern::bf16_rounded(ld_cg(a.hbuf, hin + 2 * p + 1)) : 0.0f;
    for (int gate = 0; gate < 4; ++gate) {
      float re, ro;
      if (Rs) {
        re = Rs[2 * p * 4 * a.U + gate * a.U + (j - j0)];
        ro = odd ? Rs[(2 * p + 1) * 4 * a.U + gate * a.U + (j - j0)] : 0.0f;
      } else {
        const uint32_t w = a.Rp[p * G + gate * H + j];
        re = kern::bf16_lo(w);
        ro = kern::bf16_hi(w);
      }
      acc[gate] = kern::bf16_dot_pair(acc[gate], he, re, ho, ro);
    }
  }
}

// Before step 0, thread of pair (b, j): initial state; a sequence of length 0 has its final state now.
template <class M>
DS_HD void fwd_init(const FwdArgs<M>& a, int64_t b, int64_t j) {
  float h = a.h0 ? a.h0[b * a.H + j] : 0.0f;
  float c = a.c0 ? a.c0[b * a.H + j] : 0.0f;
  a.hbuf[b * a.H + j] = h;
  a.cbuf[b * a.H + j] = c;
  if (seq_len(a.lengths, b, a.T) == 0) {
    a.h_out[b * a.out_ld + j] = h;
    if (a.c_out) a.c_out[b * a.out_ld + j] = c;
  }
}

// Step s (0 <= s < T) for pair (b, j): recurrent product + input projection + bias, gates, cell update
// (ds::math::cell_forward, the CPU kernels' arithmetic). Rs is this block's slice (fwd_load_slice) or
// nullptr to read the weights from global memory. A sequence already finished (s >= len) writes the zeros
// of its padded step t = s instead, so every element of y, gates and cells is written exactly once.
template <class M>
DS_HD void fwd_step(const FwdArgs<M>& a, int64_t s, int64_t b, int64_t j, int64_t j0,
                    typename M::template ptr<const float> Rs) {
  const int64_t H = a.H, G = 4 * H, T = a.T;
  const int64_t len = seq_len(a.lengths, b, T);
  if (s >= len) {
    int64_t row = b * T + s;
    if (a.y) a.y[row * a.y_ld + j] = 0.0f;
    if (a.gates)
      for (int gate = 0; gate < 4; ++gate) a.gates[row * G + gate * H + j] = 0.0f;
    if (a.cells) a.cells[row * H + j] = 0.0f;
    return;
  }
  const int64_t t = step_time(s, len, a.reverse);
  const int64_t row = b * T + t;
  const int64_t hin = (s & 1) * a.B * H + b * H, hout = ((s + 1) & 1) * a.B * H + b * H;
  float acc[4];
  for (int gate = 0; gate < 4; ++gate)
    acc[gate] = a.bias ? a.xproj[row * G + gate * H + j] + a.bias[gate * H + j] : a.xproj[row * G + gate * H + j];
  if (a.Rp) {
    // as the CPU tier, step 0 from a zero state (no h0) has no recurrent product
    if (s > 0 || a.h0) fwd_recurrent_bf16(a, hin, j, j0, Rs, acc);
  } else if (Rs) {
    const int64_t jj = j - j0;
    for (int64_t kk = 0; kk < H; ++kk) {
      float hv = ld_cg(a.hbuf, hin + kk);
      for (int gate = 0; gate < 4; ++gate) acc[gate] = acc[gate] + hv * Rs[kk * 4 * a.U + gate * a.U + jj];
    }
  } else {
    for (int64_t kk = 0; kk < H; ++kk) {
      float hv = ld_cg(a.hbuf, hin + kk);
      for (int gate = 0; gate < 4; ++gate) acc[gate] = acc[gate] + hv * a.R[kk * G + gate * H + j];
    }
  }
  float i, f, g, o, c, h;
  math::cell_forward<float>(acc[0], acc[1], acc[2], acc[3], a.cbuf[b * H + j], i, f, g, o, c, h);
  a.cbuf[b * H + j] = c;
  a.hbuf[hout + j] = h;
  if (a.y) a.y[row * a.y_ld + j] = h;
  if (a.gates) {
    a.gates[row * G + j] = i;
    a.gates[row * G + H + j] = f;
    a.gates[row * G + 2 * H + j] = g;
    a.gates[row * G + 3 * H + j] = o;
  }
  if (a.cells) a.cells[row * H + j] = c;
  if (s == len - 1) {
    a.h_out[b * a.out_ld + j] = h;
    if (a.c_out) a.c_out[b * a.out_ld + j] = c;
  }
}

// ---- backward (BPTT) --------------------------------------------------------------------------------
// Iterations s = T-1 … 0 write dpre[b, t] = the pre-activation gate gradients of visited step s (zeros for
// padded steps, so the weight-gradient GEMMs need no masking); a final pass (fwd step "s = -1") gives dh0
// and dc0. dh at step s is dy + (dpre of step s+1) · Rᵀ, read right after the previous iteration wrote it.
template <class M>
struct BwdArgs {
  int64_t B, T, H;
  int64_t U;
  typename M::template ptr<const float> R;          // [H, 4H]
  typename M::template ptr<const int32_t> lengths;
  bool reverse;
  typename M::template ptr<const float> gates;      // [B, T, 4H] from forward
  typename M::template ptr<const float> cells;      // [B, T, H] from forward
  typename M::template ptr<const float> c0;         // [B, H] or nullptr
  typename M::template ptr<const float> dy;         // dy + (b*T+t)*dy_ld, or nullptr
  int64_t dy_ld;
  typename M::template ptr<const float> dh_out, dc_out;  // [B, H] or nullptr
  typename M::template ptr<float> dpre;             // [B, T, 4H] out
  typename M::template ptr<float> dcbuf;            // [B, H] the carried dc
  typename M::template ptr<float> dh0, dc0;         // [B, H] out
};

// Persistent kernel: this block's recurrent rows, Rs[(j - j0)*4H + col].
template <class M>
DS_HD void bwd_load_slice(const BwdArgs<M>& a, int64_t bx, int tid, int nthreads,
                          typename M::template ptr<float> Rs) {
  UnitRange u = block_units(bx, a.U, a.H);
  const int64_t G = 4 * a.H;
  for (int64_t e = tid; e < u.count * G; e += nthreads) Rs[e] = a.R[u.j0 * G + e];
}

// Σ_col R[j, col] · dpre[row, col]: the gradient reaching h_j from the step whose gates are at `row`.
template <class M>
DS_HD float bwd_recurrent_dot(const BwdArgs<M>& a, int64_t row, int64_t j, int64_t j0,
                              typename M::template ptr<const float> Rs) {
  const int64_t G = 4 * a.H;
  float s = 0.0f;
  if (Rs) {
    for (int64_t col = 0; col < G; ++col) s = s + Rs[(j - j0) * G + col] * ld_cg(a.dpre, row * G + col);
  } else {
    for (int64_t col = 0; col < G; ++col) s = s + a.R[j * G + col] * ld_cg(a.dpre, row * G + col);
  }
  return s;
}

template <class M>
DS_HD void bwd_step(const BwdArgs<M>& a, int64_t s, int64_t b, int64_t j, int64_t j0,
                    typename M::template ptr<const float> Rs) {
  const int64_t H = a.H, G = 4 * H, T = a.T;
  const int64_t len = seq_len(a.lengths, b, T);
  if (s >= len) {
    for (int gate = 0; gate < 4; ++gate) a.dpre[(b * T + s) * G + gate * H + j] = 0.0f;
    return;
  }
  const int64_t t = step_time(s, len, a.reverse);
  const int64_t row = b * T + t;
  float dh = a.dy ? a.dy[row * a.dy_ld + j] : 0.0f;
  float dc;
  if (s == len - 1) {
    if (a.dh_out) dh = dh + a.dh_out[b * H + j];
    dc = a.dc_out ? a.dc_out[b * H + j] : 0.0f;
  } else {
    dh = dh + bwd_recurrent_dot(a, b * T + step_time(s + 1, len, a.reverse), j, j0, Rs);
    dc = a.dcbuf[b * H + j];
  }
  const float i = a.gates[row * G + j], f = a.gates[row * G + H + j];
  const float g = a.gates[row * G + 2 * H + j], o = a.gates[row * G + 3 * H + j];
  const float c = a.cells[row * H + j];
  float c_prev;
  if (s > 0) c_prev = a.cells[(b * T + step_time(s - 1, len, a.reverse)) * H + j];
  else c_prev = a.c0 ? a.c0[b * H + j] : 0.0f;
  float dpi, dpf, dpg, dpo, dc_prev;
  math::cell_backward<float>(i, f, g, o, c_prev, c, dh, dc, dpi, dpf, dpg, dpo, dc_prev);
  a.dpre[row * G + j] = dpi;
  a.dpre[row * G + H + j] = dpf;
  a.dpre[row * G + 2 * H + j] = dpg;
  a.dpre[row * G + 3 * H + j] = dpo;
  a.dcbuf[b * H + j] = dc_prev;
}

// After iteration 0: the gradients of the initial state.
template <class M>
DS_HD void bwd_finish(const BwdArgs<M>& a, int64_t b, int64_t j, int64_t j0,
                      typename M::template ptr<const float> Rs) {
  const int64_t H = a.H;
  const int64_t len = seq_len(a.lengths, b, a.T);
  if (len == 0) {
    a.dh0[b * H + j] = a.dh_out ? a.dh_out[b * H + j] : 0.0f;
    a.dc0[b * H + j] = a.dc_out ? a.dc_out[b * H + j] : 0.0f;
    return;
  }
  a.dh0[b * H + j] = bwd_recurrent_dot(a, b * a.T + step_time(0, len, a.reverse), j, j0, Rs);
  a.dc0[b * H + j] = a.dcbuf[b * H + j];
}

// ---- helpers for the weight gradients -------------------------------------------------------------------
// hprev[b*T+t, k] = the hidden state step t started from (h0, or y of the previous visited step), 0 for
// padded steps: dRecurrent = hprevᵀ · dpre. One thread per element (e < B*T*H).
template <class M>
struct GatherArgs {
  int64_t B, T, H;
  typename M::template ptr<const int32_t> lengths;
  bool reverse;
  typename M::template ptr<const float> h0;  // or nullptr
  typename M::template ptr<const float> y;   // y + (b*T+t)*y_ld
  int64_t y_ld;
  typename M::template ptr<float> hprev;     // [B*T, H]
};
template <class M>
DS_HD void gather_hprev(const GatherArgs<M>& a, int64_t e) {
  const int64_t kk = e % a.H, row = e / a.H, t = row % a.T, b = row / a.T;
  const int64_t len = seq_len(a.lengths, b, a.T);
  float v = 0.0f;
  if (t < len) {
    const int64_t s = a.reverse ? len - 1 - t : t;  // the visit index of time t
    if (s > 0) v = a.y[(b * a.T + step_time(s - 1, len, a.reverse)) * a.y_ld + kk];
    else if (a.h0) v = a.h0[b * a.H + kk];
  }
  a.hprev[e] = v;
}

// dbias[col] = Σ_rows dpre[row, col], one thread per column, rows summed in order (deterministic).
template <class M>
DS_HD void column_sum(typename M::template ptr<const float> m, int64_t rows, int64_t cols, int64_t col,
                      typename M::template ptr<float> out) {
  float s = 0.0f;
  for (int64_t r = 0; r < rows; ++r) s = s + m[r * cols + col];
  out[col] = s;
}

// ---- kernel programs: the phase structure of every kernel, shared by the device and the emulator ----------
// A program is the whole body of a kernel written against a scheduler `sc`:
//   sc.each(f)         runs f(Tid) as a phase: on the device, for the calling thread; in the emulator, for
//                      every thread of every block in turn;
//   sc.block_barrier() __syncthreads();   sc.grid_barrier()  cooperative_groups grid.sync();
//   sc.shared(t, i)    the block's i-th shared-memory array;   sc.locals(t)  the thread's private registers.
// Only code inside sc.each has effects; what is outside (loop control) is uniform across the grid, so running
// it once (emulator) or in every thread (device) is the same. The device's kernels in kernels.cu are one call
// of a program each; the emulator runs the very same programs.
struct Tid {
  int64_t bx, by;    // blockIdx.x, blockIdx.y
  int tid;           // linear thread index in the block
  int nthreads;      // threads per block
  int64_t nblocks;   // gridDim.x (for grid-stride loops)
};

// The share of thread t in a recurrent kernel's phase: block t.bx owns the units of block_units, and its
// threads stride over the (sequence b, unit j) pairs of those units; body(b, j, j0), j0 the block's first
// unit. Written once for every forward and backward program, per-step and persistent (a = FwdArgs/BwdArgs).
template <class Args, class F>
DS_HD void each_unit_pair(const Tid& t, const Args& a, F body) {
  const UnitRange u = block_units(t.bx, a.U, a.H);
  for (int64_t p = t.tid; p < a.B * u.count; p += t.nthreads) body(p / u.count, u.j0 + p % u.count, u.j0);
}

template <class Sched, class M>
DS_HD void gemm_program(Sched& sc, const GemmArgs<M>& g) {
  sc.each([&](const Tid& t) { gemm_init(g, t.by, t.tid % GEMM_TX, sc.locals(t)); });
  for (int64_t k0 = 0; k0 < g.k; k0 += GEMM_BK) {
    sc.each([&](const Tid& t) { gemm_load(g, t.bx, t.by, t.tid, k0, sc.shared(t, 0), sc.shared(t, 1)); });
    sc.block_barrier();
    sc.each([&](const Tid& t) {
      typename M::template ptr<const float> As = sc.shared(t, 0), Bs = sc.shared(t, 1);
      if (g.Bp)
        gemm_accumulate_bf16(t.tid % GEMM_TX, t.tid / GEMM_TX, As, Bs, sc.locals(t), k0 / 2, (g.k + 1) / 2);
      else
        gemm_accumulate(t.tid % GEMM_TX, t.tid / GEMM_TX, As, Bs, sc.locals(t));
    });
    sc.block_barrier();
  }
  sc.each([&](const Tid& t) { gemm_store(g, t.bx, t.by, t.tid % GEMM_TX, t.tid / GEMM_TX, sc.locals(t)); });
}

// Per-step form: one launch initialises the state (one thread per element), one launch per step.
template <class Sched, class M>
DS_HD void fwd_init_program(Sched& sc, const FwdArgs<M>& a) {
  sc.each([&](const Tid& t) {
    const int64_t e = t.bx * t.nthreads + t.tid;
    if (e < a.B * a.H) fwd_init(a, e / a.H, e % a.H);
  });
}

template <class Sched, class M>
DS_HD void fwd_step_program(Sched& sc, const FwdArgs<M>& a, int64_t s) {
  sc.each([&](const Tid& t) {
    const typename M::template ptr<const float> no_slice(nullptr);  // the weights are read from global memory
    each_unit_pair(t, a, [&](int64_t b, int64_t j, int64_t j0) { fwd_step(a, s, b, j, j0, no_slice); });
  });
}

// Persistent form: every block resident for all steps with its recurrent weights in shared memory.
template <class Sched, class M>
DS_HD void fwd_persistent_program(Sched& sc, const FwdArgs<M>& a) {
  sc.each([&](const Tid& t) {
    fwd_load_slice(a, t.bx, t.tid, t.nthreads, sc.shared(t, 0));
    const int64_t stride = t.nblocks * t.nthreads;
    for (int64_t e = t.bx * t.nthreads + t.tid; e < a.B * a.H; e += stride) fwd_init(a, e / a.H, e % a.H);
  });
  sc.grid_barrier();  // slices loaded (block) and the initial state written (grid)
  for (int64_t s = 0; s < a.T; ++s) {
    sc.each([&](const Tid& t) {
      typename M::template ptr<const float> slice = sc.shared(t, 0);
      each_unit_pair(t, a, [&](int64_t b, int64_t j, int64_t j0) { fwd_step(a, s, b, j, j0, slice); });
    });
    sc.grid_barrier();  // step s+1 reads the h every block wrote at step s
  }
}

template <class Sched, class M>
DS_HD void bwd_step_program(Sched& sc, const BwdArgs<M>& a, int64_t s) {
  sc.each([&](const Tid& t) {
    const typename M::template ptr<const float> no_slice(nullptr);  // the weights are read from global memory
    each_unit_pair(t, a, [&](int64_t b, int64_t j, int64_t j0) { bwd_step(a, s, b, j, j0, no_slice); });
  });
}

template <class Sched, class M>
DS_HD void bwd_finish_program(Sched& sc, const BwdArgs<M>& a) {
  sc.each([&](const Tid& t) {
    const typename M::template ptr<const float> no_slice(nullptr);  // the weights are read from global memory
    each_unit_pair(t, a, [&](int64_t b, int64_t j, int64_t j0) { bwd_finish(a, b, j, j0, no_slice); });
  });
}

template <class Sched, class M>
DS_HD void bwd_persistent_program(Sched& sc, const BwdArgs<M>& a) {
  sc.each([&](const Tid& t) { bwd_load_slice(a, t.bx, t.tid, t.nthreads, sc.shared(t, 0)); });
  sc.block_barrier();
  for (int64_t s = a.T - 1; s >= 0; --s) {
    sc.each([&](const Tid& t) {
      typename M::template ptr<const float> slice = sc.shared(t, 0);
      each_unit_pair(t, a, [&](int64_t b, int64_t j, int64_t j0) { bwd_step(a, s, b, j, j0, slice); });
    });
    sc.grid_barrier();  // iteration s-1 reads the dpre every block wrote at iteration s
  }
  sc.each([&](const Tid& t) {
    typename M::template ptr<const float> slice = sc.shared(t, 0);
    each_unit_pair(t, a, [&](int64_t b, int64_t j, int64_t j0) { bwd_finish(a, b, j, j0, slice); });
  });
}

template <class Sched, class M>
DS_HD void gather_hprev_program(Sched& sc, const GatherArgs<M>& a) {
  sc.each([&](const Tid& t) {
    const int64_t e = t.bx * t.nthreads + t.tid;
    if (e < a.B * a.T * a.H) gather_hprev(a, e);
  });
}

template <class Sched, class M>
DS_HD void column_sum_program(Sched& sc, typename M::template ptr<const float> m, int64_t rows, int64_t cols,
                              typename M::template ptr<float> out) {
  sc.each([&](const Tid& t) {
    const int64_t col = t.bx * t.nthreads + t.tid;
    if (col < cols) column_sum<M>(m, rows, cols, col, out);
  });
}

}  // namespace k
}  // namespace cuda
}  // namespace ds
