// Planning helpers shared by the CPU driver behind lstm.h (lstm_forward.cpp, lstm_backward.cpp, sgemm.cpp):
// the calling thread's scratch arena, rows sorted by length, chunking, the GEMM call of a row block. Each
// call plans (row order, chunks, scratch), then runs the single-threaded per-ISA primitives of
// kernels/kernels.h as independent tasks on the pool (threadpool.h).
#pragma once

#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "dispatch.h"
#include "threadpool.h"

namespace ds {
namespace plan {

using kern::GemmArgs;
using kern::round_up;
using kern::Table;

// ---- scratch --------------------------------------------------------------------------------------------

// Grow-only scratch of the calling thread, reset at the start of each API call: after the first calls of a
// given shape no call allocates. Blocks never move, so pointers stay valid for the whole call.
class Arena {
 public:
  void reset() {
    cur_ = 0;
    used_ = 0;
  }
  template <class T>
  T* get(size_t count) {
    size_t bytes = (count * sizeof(T) + 63) & ~size_t(63);
    if (bytes == 0) bytes = 64;
    while (cur_ < blocks_.size()) {
      Block& b = blocks_[cur_];
      if (used_ + bytes <= b.cap) {
        char* p = b.p.get() + used_;
        used_ += bytes;
        return reinterpret_cast<T*>(p);
      }
      cur_++;
      used_ = 0;
    }
    size_t cap = blocks_.empty() ? (size_t(4) << 20) : blocks_.back().cap * 2;
    if (cap < bytes) cap = bytes;
    Block nb;
    nb.p.reset(static_cast<char*>(::operator new(cap, std::align_val_t(64))));
    nb.cap = cap;
    blocks_.push_back(std::move(nb));
    cur_ = blocks_.size() - 1;
    used_ = bytes;
    return reinterpret_cast<T*>(blocks_.back().p.get());
  }

 private:
  struct Free {
    void operator()(char* p) const { ::operator delete(p, std::align_val_t(64)); }
  };
  struct Block {
    std::unique_ptr<char, Free> p;
    size_t cap = 0;
  };
  std::vector<Block> blocks_;
  size_t cur_ = 0, used_ = 0;
};

inline Arena& arena() {
  thread_local Arena a;
  a.reset();
  return a;
}

// The scratch of an API call that runs sgemm itself (each sgemm resets arena()): the output layers with their
// loss (dense_xent.cpp, dense_mse.cpp), which never nest. Reset at the start of each such call.
inline Arena& call_arena() {
  thread_local Arena a;
  a.reset();
  return a;
}

// ---- planning helpers -------------------------------------------------------------------------------------

// memcpy / memset of n floats; n may be 0 with null pointers (empty arrays), which the C functions forbid.
inline void copy_floats(float* dst, const float* src, int64_t n) {
  if (n > 0) std::memcpy(dst, src, sizeof(float) * n);
}
inline void zero_floats(float* dst, int64_t n) {
  if (n > 0) std::memset(dst, 0, sizeof(float) * n);
}

inline int64_t len_of(const int32_t* lengths, int64_t b, int64_t T) { return lengths ? lengths[b] : T; }

// Rows sorted by length, descending (stable: equal lengths keep batch order). Counting sort, O(B + T).
struct Rows {
  int32_t* len;
  int64_t* seq;
  bool dense;  // every sequence has all T steps
};

inline Rows sort_rows(Arena& ar, const int32_t* lengths, int64_t B, int64_t T) {
  Rows r;
  r.len = ar.get<int32_t>(B);
  r.seq = ar.get<int64_t>(B);
  r.dense = true;
  if (!lengths) {
    for (int64_t b = 0; b < B; b++) r.len[b] = (int32_t)T, r.seq[b] = b;
    return r;
  }
  int64_t* start = ar.get<int64_t>(T + 2);
  for (int64_t l = 0; l <= T + 1; l++) start[l] = 0;
  for (int64_t b = 0; b < B; b++) {
    start[T - lengths[b] + 1]++;  // bucket T-len: longest first
    if (lengths[b] != T) r.dense = false;
  }
  for (int64_t l = 1; l <= T + 1; l++) start[l] += start[l - 1];
  for (int64_t b = 0; b < B; b++) {
    int64_t p = start[T - lengths[b]]++;
    r.len[p] = lengths[b];
    r.seq[p] = b;
  }
  return r;
}

// Q+1 chunk boundaries over the sorted rows: multiples of `align` (so the LSTM tiles are the same whatever
// the chunking), balancing the number of steps.
inline void chunk_bounds(const int32_t* len, int64_t B, int Q, int align, int64_t* bounds) {
  int64_t total = 0;
  for (int64_t r = 0; r < B; r++) total += len[r];
  bounds[0] = 0;
  int64_t r = 0, acc = 0;
  for (int q = 1; q < Q; q++) {
    const int64_t target = total * q / Q;
    while (r < B && acc + len[r] <= target) acc += len[r++];
    int64_t cut = round_up(r, align);
    if (cut > B) cut = B;
    if (cut < bounds[q - 1]) cut = bounds[q - 1];
    bounds[q] = cut;
  }
  bounds[Q] = B;
}

// [m0, m1) of member q of Q over M rows, in multiples of `align`.
inline void split_range(int64_t M, int q, int Q, int64_t align, int64_t& m0, int64_t& m1) {
  const int64_t units = (M + align - 1) / align;
  m0 = units * q / Q * align;
  m1 = units * (q + 1) / Q * align;
  if (m0 > M) m0 = M;
  if (m1 > M) m1 = M;
}

// C (+)= op(A)·B with B packed (bp) or, when bp is nullptr, read directly from b [k, n] (ldb).
inline void gemm_rows(const Table& tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, bool trans_a,
               const float* bp, const float* bias, float* c, int64_t ldc, bool accumulate, float* a_scratch,
               const float* b = nullptr, int64_t ldb = 0) {
  GemmArgs g{};
  g.b = b;
  g.ldb = ldb;
  g.m = m;
  g.n = n;
  g.k = k;
  g.a = a;
  g.lda = lda;
  g.trans_a = trans_a;
  g.bp = bp;
  g.bias = bias;
  g.c = c;
  g.ldc = ldc;
  g.accumulate = accumulate;
  g.a_scratch = a_scratch;
  tb.gemm(g);
}

// Threads worth waking for a job of `flops`: waking costs microseconds, so tiny calls run alone.
inline int threads_for(double flops, double min_flops) { return flops < min_flops ? 1 : threads_get(); }
// A job this small takes tens of microseconds: a latency-bound call (PoolLease small_job).
constexpr double kSmallJobFlops = 5e7;

// The sorted rows [r0, r1) of a chunk as both recurrence kernels (LstmRecArgs, LstmBwdRecArgs) take them.
template <class RecArgs>
void set_chunk_rows(RecArgs& a, int64_t H, int64_t T, const Rows& rows, int64_t r0, int64_t r1, bool reverse) {
  a.hidden = H;
  a.steps = T;
  a.rows = r1 - r0;
  a.len = rows.len + r0;
  a.seq = rows.seq + r0;
  a.reverse = reverse;
}

}  // namespace plan
}  // namespace ds
