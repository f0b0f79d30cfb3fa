// The driver behind lstm.h: plans each call (row order, chunks, scratch), then runs the single-threaded
// per-ISA primitives of kernels/kernels.h as independent tasks on the pool (threadpool.h).
//
// Forward, per direction: the batch is sorted by length (descending) and cut into row chunks; each chunk
// task computes its rows' input projections x·kernel + bias for all steps as one GEMM, then runs every step
// of its rows (fused step: recurrent product, gates and cell update in one register tile, kernels_impl.h).
// Rows never interact, so chunks need no synchronisation. Token inputs: a first job projects the distinct
// tokens of the call into a table (row slices); the chunks then read table rows by index (fwd_table).
// Backward, per direction: chunk tasks run the recurrence (elementwise cell backward + dh = dG·recurrentᵀ);
// then dkernel = xᵀ·dG, drecurrent = Hprevᵀ·dG, dbias = Σ dG by column strips and dx = dG·kernelᵀ by parts of
// the batch, as large GEMMs over every valid step at once.
// Two directions simply contribute tasks to the same job (one per core with two threads). Every output
// element is computed by one task in an order that does not depend on the number of threads: results are
// bit-identical for any DEEPSENTRY_THREADS.
#include "lstm.h"

#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "dispatch.h"
#include "threadpool.h"

namespace ds {
namespace {

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

Arena& arena() {
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

Rows sort_rows(Arena& ar, const int32_t* lengths, int64_t B, int64_t T) {
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
void chunk_bounds(const int32_t* len, int64_t B, int Q, int align, int64_t* bounds) {
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
void gemm_rows(const Table& tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, bool trans_a,
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
int threads_for(double flops, double min_flops) { return flops < min_flops ? 1 : threads_get(); }

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

// ---- forward / encoding ----------------------------------------------------------------------------------

struct FwdDir {
  // what to compute
  int64_t B, T, I, H, G;
  const float* x;
  const int32_t* tokens;
  const float* embedding;
  const int32_t* lengths;
  const float *kernel, *recurrent, *bias, *h0, *c0;
  bool reverse;
  float* y;
  int64_t y_ld;
  float *gates, *cells;
  float *h_out, *c_out;
  int64_t out_ld;
  // plan
  const Table* tb;
  int Q;            // row chunks: independent tasks
  bool pack_in_task;  // Q == 1: the task packs the weights itself (else the caller did before the job)
  Rows rows;
  int64_t* bounds;
  int64_t s_ld;
  float *kp, *rp, *pre, *xproj, *xl;
  float *hb[2], *cb[2];
  // Token inputs: the input projection is a row gather from embedding·kernel + bias, so only the distinct
  // tokens of the call are projected (nd rows, one GEMM split into TQ slices, before the recurrence), into
  // xproj; xidx[r*T + t] (sorted row r, step t) is the table row the recurrence reads. Fewer FLOPs than
  // projecting every step (nd <= min(vocab, Σ len)), and no embedded copy of the batch.
  int32_t* dtok;   // [nd] the distinct token ids in order of first use (depends on the data only)
  int32_t* xidx;   // [B*T]
  int64_t nd;
  int TQ;
};

// Plans one direction as Q chunks of rows (at most `want`, at least one tile of rows each).
void fwd_plan(FwdDir& d, Arena& ar, const Table& tb, int want) {
  d.G = 4 * d.H;
  d.tb = &tb;
  int64_t tiles = (d.B + tb.lmr - 1) / tb.lmr;
  d.Q = (int)(want < tiles ? want : tiles > 0 ? tiles : 1);
  d.pack_in_task = d.Q == 1;
  d.rows = sort_rows(ar, d.lengths, d.B, d.T);
  d.bounds = ar.get<int64_t>(d.Q + 1);
  chunk_bounds(d.rows.len, d.B, d.Q, tb.lmr, d.bounds);
  d.s_ld = round_up(d.H, 16);
  int64_t proj_rows = d.B * d.T;
  if (d.tokens) {
    int32_t vmax = -1;
    for (int64_t r = 0; r < d.B; r++) {
      const int32_t* tk = d.tokens + d.rows.seq[r] * d.T;
      for (int64_t t = 0; t < d.rows.len[r]; t++) vmax = tk[t] > vmax ? tk[t] : vmax;
    }
    int32_t* map = ar.get<int32_t>((size_t)vmax + 1);
    for (int32_t v = 0; v <= vmax; v++) map[v] = -1;
    d.dtok = ar.get<int32_t>((size_t)(d.B * d.T));
    d.xidx = ar.get<int32_t>((size_t)(d.B * d.T));
    d.nd = 0;
    for (int64_t r = 0; r < d.B; r++) {
      const int32_t* tk = d.tokens + d.rows.seq[r] * d.T;
      const int64_t L = d.rows.len[r];
      for (int64_t t = 0; t < L; t++) {  // ids past a sequence's length are padding: never read
        int32_t& m = map[tk[t]];
        if (m < 0) m = (int32_t)d.nd, d.dtok[d.nd++] = tk[t];
        d.xidx[r * d.T + t] = m;
      }
      for (int64_t t = L; t < d.T; t++) d.xidx[r * d.T + t] = 0;  // never read
    }
    proj_rows = d.nd;
    d.pack_in_task = false;  // the table GEMM runs before the chunks: the caller packs
  }
  // Packing the weights costs a pass over them; it pays when they are then read many times (many rows).
  d.kp = proj_rows > 4 * tb.mr ? ar.get<float>(kern::packed_b_floats(tb, d.I, d.G)) : nullptr;
  // One sequence: each step streams recurrent as it is (kernels_impl.h lstm_row_gemv), nothing to pack.
  d.rp = d.B > 1 ? ar.get<float>(kern::lstm_r_floats(tb, d.H)) : nullptr;
  d.pre = d.B == 1 ? ar.get<float>((size_t)d.G) : nullptr;
  d.xproj = ar.get<float>((size_t)(proj_rows * d.G));
  d.xl = ar.get<float>((size_t)(proj_rows * d.I));
  // Table slices: a few hundred rows each at least (a slice costs a wake-up and a pass over the packed kernel).
  d.TQ = d.tokens ? (int)(d.nd / 256 < want ? d.nd / 256 : want) : 0;
  if (d.tokens && d.TQ < 1) d.TQ = 1;
  for (int i = 0; i < 2; i++) {
    d.hb[i] = ar.get<float>((size_t)(d.B * d.s_ld));
    d.cb[i] = ar.get<float>((size_t)(d.B * d.s_ld));
  }
}

void fwd_pack(FwdDir& d) {
  if (d.kp) d.tb->pack_b(d.kernel, d.G, false, d.I, d.G, d.kp);
  if (d.rp) d.tb->pack_r(d.recurrent, d.H, d.rp);
}

// Slice q of the token table: gather the embedding rows of its distinct tokens, then one GEMM (+ bias). Every
// table element is the same FMA chain whatever the slicing (kernels_impl.h micro).
void fwd_table(FwdDir& d, int q) {
  int64_t m0, m1;
  split_range(d.nd, q, d.TQ, d.tb->mr, m0, m1);
  if (m1 <= m0) return;
  for (int64_t i = m0; i < m1; i++) copy_floats(d.xl + i * d.I, d.embedding + (int64_t)d.dtok[i] * d.I, d.I);
  gemm_rows(*d.tb, m1 - m0, d.G, d.I, d.xl + m0 * d.I, d.I, false, d.kp, d.bias, d.xproj + m0 * d.G, d.G, false,
            nullptr, d.kernel, d.G);
}

// Chunk q: its rows' input projections (token inputs: done by fwd_table; else one GEMM over their steps, in chunk order: row r, step t at
// (r - r0)*T + t), then the recurrence. Touches nothing of other chunks.
void fwd_chunk(FwdDir& d, int q) {
  const Table& tb = *d.tb;
  const int64_t T = d.T, I = d.I, H = d.H, G = d.G;
  if (d.pack_in_task) fwd_pack(d);
  const int64_t r0 = d.bounds[q], r1 = d.bounds[q + 1];
  if (r1 <= r0) return;
  bool contiguous = !d.tokens;  // the chunk's sequences are b0, b0+1, …: x is already in chunk order
  for (int64_t r = r0; r < r1; r++) {
    const int64_t b = d.rows.seq[r];
    contiguous = contiguous && b == d.rows.seq[r0] + (r - r0);
    float* h = d.hb[0] + r * d.s_ld;
    float* c = d.cb[0] + r * d.s_ld;
    zero_floats(h, d.s_ld);
    zero_floats(c, d.s_ld);
    zero_floats(d.hb[1] + r * d.s_ld, d.s_ld);
    zero_floats(d.cb[1] + r * d.s_ld, d.s_ld);
    if (d.h0) copy_floats(h, d.h0 + b * H, H);
    if (d.c0) copy_floats(c, d.c0 + b * H, H);
    if (d.y)
      for (int64_t t = d.rows.len[r]; t < T; t++) zero_floats(d.y + (b * T + t) * d.y_ld, H);
  }
  const float* xa = nullptr;
  if (d.tokens) {
    // projected already (fwd_table)
  } else if (contiguous) {
    xa = d.x + d.rows.seq[r0] * T * I;
  } else {
    for (int64_t r = r0; r < r1; r++) {
      const int64_t b = d.rows.seq[r];
      copy_floats(d.xl + (r * T) * I, d.x + b * T * I, T * I);
    }
    xa = d.xl + r0 * T * I;
  }
  float* xp = d.tokens ? d.xproj : d.xproj + r0 * T * G;
  if (!d.tokens) gemm_rows(tb, (r1 - r0) * T, G, I, xa, I, false, d.kp, d.bias, xp, G, false, nullptr, d.kernel, G);
  kern::LstmRecArgs a{};
  set_chunk_rows(a, H, T, d.rows, r0, r1, d.reverse);
  a.rp = d.rp;
  a.r = d.recurrent;
  a.xproj = xp;
  a.xidx = d.tokens ? d.xidx + r0 * T : nullptr;
  for (int i = 0; i < 2; i++) {
    a.h[i] = d.hb[i] + r0 * d.s_ld;
    a.c[i] = d.cb[i] + r0 * d.s_ld;
  }
  a.s_ld = d.s_ld;
  a.y = d.y;
  a.y_ld = d.y_ld;
  a.h0_zero = d.h0 == nullptr;
  a.pre = d.pre;
  a.gates = d.gates;
  a.cells = d.cells;
  tb.lstm_rec(a);
  for (int64_t r = r0; r < r1; r++) {
    const int64_t b = d.rows.seq[r];
    const int p = d.rows.len[r] & 1;
    if (d.h_out) copy_floats(d.h_out + b * d.out_ld, d.hb[p] + r * d.s_ld, H);
    if (d.c_out) copy_floats(d.c_out + b * d.out_ld, d.cb[p] + r * d.s_ld, H);
  }
}

// What a direction takes alike from a forward and an encode call (LstmForwardArgs and LstmEncodeArgs name
// these fields the same): shape, weights, lengths, initial state, order and the final-state outputs.
template <class Args>
FwdDir fwd_common(const Args& a) {
  FwdDir d{};
  d.B = a.s.batch;
  d.T = a.s.steps;
  d.I = a.s.input;
  d.H = a.s.hidden;
  d.lengths = a.lengths;
  d.kernel = a.w.kernel;
  d.recurrent = a.w.recurrent;
  d.bias = a.w.bias;
  d.h0 = a.h0;
  d.c0 = a.c0;
  d.reverse = a.reverse;
  d.h_out = a.h_out;
  d.c_out = a.c_out;
  return d;
}

FwdDir fwd_from(const LstmForwardArgs& a) {
  FwdDir d = fwd_common(a);
  d.x = a.x;
  d.y = a.y;
  d.y_ld = a.y_ld;
  if (a.workspace) {
    d.gates = a.workspace;
    d.cells = a.workspace + d.B * d.T * 4 * d.H;
  }
  d.out_ld = d.H;
  return d;
}

FwdDir fwd_from(const LstmEncodeArgs& a) {
  FwdDir d = fwd_common(a);
  d.x = a.tokens ? nullptr : a.x;
  d.tokens = a.tokens;
  d.embedding = a.embedding;
  d.out_ld = a.out_ld;
  return d;
}

double fwd_flops(const FwdDir& d) { return 2.0 * d.B * d.T * 4 * d.H * (double)(d.I + d.H); }

// One or two directions as independent chunk tasks: whichever thread is free takes the next chunk, and the
// caller never waits for a worker that has not woken (a loaded machine).
void run_forward(FwdDir* dirs, int ndir) {
  const Table& tb = active_table();
  Arena& ar = arena();
  double flops = 0;
  for (int i = 0; i < ndir; i++) flops += fwd_flops(dirs[i]);
  PoolLease lease(threads_for(flops, ndir == 2 ? 5e5 : 4e6));
  const int n = lease.n();
  // Chunks per direction: two directions on two threads need none (one task each).
  const int per_dir = ndir == 2 ? (n + 1) / 2 : n;
  for (int i = 0; i < ndir; i++) fwd_plan(dirs[i], ar, tb, per_dir);
  for (int i = 0; i < ndir; i++)
    if (!dirs[i].pack_in_task) fwd_pack(dirs[i]);
  const int t0 = dirs[0].TQ, ntables = t0 + (ndir == 2 ? dirs[1].TQ : 0);
  if (ntables > 0) {
    // The tasks of the two directions laid end to end: t0 of direction 0, then direction 1's.
    auto table = [&](int t) { t < t0 ? fwd_table(dirs[0], t) : fwd_table(dirs[1], t - t0); };
    lease.run_tasks(ntables, table);
  }
  const int q0 = dirs[0].Q, ntasks = q0 + (ndir == 2 ? dirs[1].Q : 0);
  auto task = [&](int t) { t < q0 ? fwd_chunk(dirs[0], t) : fwd_chunk(dirs[1], t - q0); };
  lease.run_tasks(ntasks, task);
}

// ---- backward ---------------------------------------------------------------------------------------------

struct BwdDir {
  const LstmBackwardArgs* a;
  int64_t B, T, I, H, G;
  const Table* tb;
  int Q;  // row chunks of the recurrence, column strips of the weight gradients, parts of dx
  Rows rows;
  int64_t* bounds;
  int64_t s_ld;
  int64_t* off;     // [B] compact row of (b, 0)
  int64_t nvalid;   // Σ len
  int64_t* rowmap;  // [nvalid] b*T+t of each compact row (when not dense)
  float *rtp, *ktp, *dh, *dc, *dg_step, *dg, *hprev, *xc, *dxc;
  float** dgp;       // [Q] one K block of each column strip of dG, packed
  float** a_scratch;  // [Q]
  const float* gates;
  const float* cells;
};

void bwd_plan(BwdDir& d, const LstmBackwardArgs& a, Arena& ar, const Table& tb, int Q) {
  d.a = &a;
  d.B = a.s.batch;
  d.T = a.s.steps;
  d.I = a.s.input;
  d.H = a.s.hidden;
  d.G = 4 * d.H;
  d.tb = &tb;
  d.Q = Q;
  d.rows = sort_rows(ar, a.lengths, d.B, d.T);
  d.bounds = ar.get<int64_t>(Q + 1);
  chunk_bounds(d.rows.len, d.B, Q, 1, d.bounds);
  d.s_ld = round_up(d.H, 16);
  d.off = ar.get<int64_t>(d.B);
  d.nvalid = 0;
  for (int64_t b = 0; b < d.B; b++) {
    d.off[b] = d.nvalid;
    d.nvalid += len_of(a.lengths, b, d.T);
  }
  const bool dense = d.rows.dense;
  d.rowmap = nullptr;
  d.xc = d.dxc = nullptr;
  if (!dense) {
    d.rowmap = ar.get<int64_t>(d.nvalid);
    for (int64_t b = 0; b < d.B; b++)
      for (int64_t t = 0; t < len_of(a.lengths, b, d.T); t++) d.rowmap[d.off[b] + t] = b * d.T + t;
    d.xc = ar.get<float>((size_t)(d.nvalid * d.I));
    d.dxc = ar.get<float>((size_t)(d.nvalid * d.I));
  }
  d.rtp = ar.get<float>(kern::packed_b_floats(tb, d.G, d.H));
  d.ktp = ar.get<float>(kern::packed_b_floats(tb, d.G, d.I));
  d.dh = ar.get<float>((size_t)(d.B * d.s_ld));
  d.dc = ar.get<float>((size_t)(d.B * d.s_ld));
  d.dg_step = ar.get<float>((size_t)(d.B * d.G));
  d.dg = ar.get<float>((size_t)(d.nvalid * d.G));
  d.hprev = ar.get<float>((size_t)(d.nvalid * d.H));
  d.dgp = ar.get<float*>(Q);
  d.a_scratch = ar.get<float*>(Q);
  for (int q = 0; q < Q; q++) {
    int64_t c0, c1;
    split_range(d.G, q, Q, tb.nr, c0, c1);
    d.dgp[q] = ar.get<float>(kern::packed_b_floats(tb, tb.kc, c1 - c0 > 0 ? c1 - c0 : 1));
    d.a_scratch[q] = ar.get<float>(kern::packed_a_floats(tb));
  }
  d.gates = a.workspace;
  d.cells = a.workspace + d.B * d.T * d.G;
}

// Rows chunk q: init its carries, gather the previous hidden states (and x when padded) of its sequences,
// run their recurrence (dG of every valid step, dh0, dc0). Needs the packed recurrentᵀ; touches no other
// chunk's rows.
void bwd_chunk(BwdDir& d, int q) {
  const LstmBackwardArgs& a = *d.a;
  const Table& tb = *d.tb;
  const int64_t T = d.T, I = d.I, H = d.H, G = d.G;
  const int64_t r0 = d.bounds[q], r1 = d.bounds[q + 1];
  for (int64_t r = r0; r < r1; r++) {
    const int64_t b = d.rows.seq[r], L = d.rows.len[r];
    float* dh = d.dh + r * d.s_ld;
    float* dc = d.dc + r * d.s_ld;
    zero_floats(dh, d.s_ld);
    zero_floats(dc, d.s_ld);
    if (a.dh_out) copy_floats(dh, a.dh_out + b * H, H);
    if (a.dc_out) copy_floats(dc, a.dc_out + b * H, H);
    for (int64_t t = 0; t < L; t++) {
      const int64_t tp = a.reverse ? t + 1 : t - 1;  // the step visited before t
      float* dst = d.hprev + (d.off[b] + t) * H;
      if (tp >= 0 && tp < L)
        copy_floats(dst, a.y + (b * T + tp) * a.y_ld, H);
      else if (a.h0)
        copy_floats(dst, a.h0 + b * H, H);
      else
        zero_floats(dst, H);
      if (d.xc) copy_floats(d.xc + (d.off[b] + t) * I, a.x + (b * T + t) * I, I);
    }
    if (!a.dx_accumulate)
      for (int64_t t = L; t < T; t++) zero_floats(a.dx + (b * T + t) * I, I);
  }
  if (r1 <= r0) return;
  kern::LstmBwdRecArgs ra{};
  set_chunk_rows(ra, H, T, d.rows, r0, r1, a.reverse);
  ra.rtp = d.rtp;
  ra.gates = d.gates;
  ra.cells = d.cells;
  ra.c0 = a.c0;
  ra.dy = a.dy;
  ra.dy_ld = a.y_ld;
  ra.dh = d.dh + r0 * d.s_ld;
  ra.dc = d.dc + r0 * d.s_ld;
  ra.s_ld = d.s_ld;
  ra.dg_step = d.dg_step + r0 * G;
  ra.dg = d.dg;
  ra.off = d.off;
  tb.lstm_bwd_rec(ra);
  for (int64_t r = r0; r < r1; r++) {
    const int64_t b = d.rows.seq[r];
    copy_floats(a.dh0 + b * H, d.dh + r * d.s_ld, H);
    copy_floats(a.dc0 + b * H, d.dc + r * d.s_ld, H);
  }
}

// Column strip q of the weight gradients (after every chunk is done): dkernel, drecurrent, dbias.
void bwd_strip(BwdDir& d, int q) {
  const LstmBackwardArgs& a = *d.a;
  const Table& tb = *d.tb;
  const int64_t I = d.I, H = d.H, G = d.G;
  int64_t c0, c1;
  split_range(G, q, d.Q, tb.nr, c0, c1);
  if (c1 > c0) {
    const int64_t nc = c1 - c0;
    const float* xs = d.xc ? d.xc : a.x;
    // K block by K block (the gemm's own blocking, so the sums are the same as in one call): each block of
    // dG is packed and then used at once by both products while it is in L2.
    if (d.nvalid == 0) {
      gemm_rows(tb, I, nc, 0, xs, I, true, d.dgp[q], nullptr, a.dkernel + c0, G, false, d.a_scratch[q]);
      gemm_rows(tb, H, nc, 0, d.hprev, H, true, d.dgp[q], nullptr, a.drecurrent + c0, G, false, d.a_scratch[q]);
    }
    for (int64_t k0 = 0; k0 < d.nvalid; k0 += tb.kc) {
      const int64_t kcb = d.nvalid - k0 < tb.kc ? d.nvalid - k0 : tb.kc;
      tb.pack_b(d.dg + k0 * G + c0, G, false, kcb, nc, d.dgp[q]);
      gemm_rows(tb, I, nc, kcb, xs + k0 * I, I, true, d.dgp[q], nullptr, a.dkernel + c0, G, k0 > 0, d.a_scratch[q]);
      gemm_rows(tb, H, nc, kcb, d.hprev + k0 * H, H, true, d.dgp[q], nullptr, a.drecurrent + c0, G, k0 > 0,
                d.a_scratch[q]);
    }
    tb.colsum(d.dg + c0, G, d.nvalid, nc, a.dbias + c0);
  }
}

// Sequences [b0, b1) of part q of n, balancing their valid steps (the rows of dx they own).
void seq_range(const BwdDir& d, int q, int n, int64_t& b0, int64_t& b1) {
  auto cut = [&](int c) {
    if (c >= n) return d.B;
    const int64_t target = d.nvalid * c / n;
    int64_t b = 0;
    while (b < d.B && d.off[b] < target) b++;
    return b;
  };
  b0 = q == 0 ? 0 : cut(q);
  b1 = cut(q + 1);
}

// dx (+)= dG · kernelᵀ for the steps of sequences [b0, b1) (after dG and the packed kernelᵀ are complete).
void bwd_dx(BwdDir& d, int64_t b0, int64_t b1) {
  const LstmBackwardArgs& a = *d.a;
  const Table& tb = *d.tb;
  const int64_t I = d.I, G = d.G;
  const int64_t m0 = b0 < d.B ? d.off[b0] : d.nvalid, m1 = b1 < d.B ? d.off[b1] : d.nvalid;
  if (m1 <= m0) return;
  if (!d.dxc) {
    gemm_rows(tb, m1 - m0, I, G, d.dg + m0 * G, G, false, d.ktp, nullptr, a.dx + m0 * I, I, a.dx_accumulate,
              nullptr);
    return;
  }
  gemm_rows(tb, m1 - m0, I, G, d.dg + m0 * G, G, false, d.ktp, nullptr, d.dxc + m0 * I, I, false, nullptr);
  for (int64_t i = m0; i < m1; i++) {
    float* dst = a.dx + d.rowmap[i] * I;
    const float* src = d.dxc + i * I;
    if (a.dx_accumulate)
      for (int64_t j = 0; j < I; j++) dst[j] += src[j];
    else
      copy_floats(dst, src, I);
  }
}

// Part q of n of dx for a bidirectional layer: the forward direction's dx, then the backward direction's
// added, for the same sequences — per element the same order as with one thread, and no other part touches
// these rows.
void bi_dx_part(BwdDir* d, int q, int n) {
  int64_t b0, b1;
  seq_range(d[0], q, n, b0, b1);
  bwd_dx(d[0], b0, b1);
  bwd_dx(d[1], b0, b1);
}

double bwd_flops(const LstmBackwardArgs& a) {
  return 4.0 * a.s.batch * a.s.steps * 4 * a.s.hidden * (double)(a.s.input + a.s.hidden);
}

// Backward of one or two directions as two jobs of independent tasks (a late worker never stalls a call):
// (1) the recurrence of every row chunk, and packing kernelᵀ; (2) the weight gradients by column strip and
// dx by parts of the batch. recurrentᵀ is packed first, by the caller.
void run_backward(const LstmBackwardArgs* args, int ndir) {
  const Table& tb = active_table();
  Arena& ar = arena();
  double flops = 0;
  for (int i = 0; i < ndir; i++) flops += bwd_flops(args[i]);
  PoolLease lease(threads_for(flops, ndir == 2 ? 1e6 : 4e6));
  const int n = lease.n();
  const int per_dir = ndir == 2 ? (n + 1) / 2 : n;
  BwdDir d[2]{};
  for (int i = 0; i < ndir; i++) {
    bwd_plan(d[i], args[i], ar, tb, per_dir);
    tb.pack_b(args[i].w.recurrent, d[i].G, true, d[i].G, d[i].H, d[i].rtp);
  }
  auto job1 = [&](int t) {
    for (int i = 0; i < ndir; i++) {
      if (t < d[i].Q) return bwd_chunk(d[i], t);
      t -= d[i].Q;
    }
    tb.pack_b(args[t].w.kernel, d[t].G, true, d[t].G, d[t].I, d[t].ktp);
  };
  lease.run_tasks(ndir == 2 ? d[0].Q + d[1].Q + 2 : d[0].Q + 1, job1);
  // dx of a bidirectional layer is shared: each part adds the backward direction after the forward one.
  const bool shared_dx = ndir == 2 && args[0].dx == args[1].dx;
  const int parts = n;
  auto job2 = [&](int t) {
    for (int i = 0; i < ndir; i++) {
      if (t < d[i].Q) return bwd_strip(d[i], t);
      t -= d[i].Q;
    }
    if (shared_dx) return bi_dx_part(d, t, parts);
    const int i = t / parts;
    int64_t b0, b1;
    seq_range(d[i], t % parts, parts, b0, b1);
    bwd_dx(d[i], b0, b1);
  };
  const int strips = ndir == 2 ? d[0].Q + d[1].Q : d[0].Q;
  lease.run_tasks(strips + (shared_dx ? parts : ndir * parts), job2);
}

}  // namespace

// ---- the API ------------------------------------------------------------------------------------------------

// The workspace: the activated gates [B*T, 4H] (i, f, g, o), then the cell states [B*T, H], row b*T+t; rows of
// steps past a sequence's length are not written.
size_t lstm_workspace_floats(const LstmShape& s) { return (size_t)(s.batch * s.steps * 5 * s.hidden); }

void lstm_forward(const LstmForwardArgs& a) {
  FwdDir d = fwd_from(a);
  run_forward(&d, 1);
}

void bilstm_forward(const LstmForwardArgs& fw, const LstmForwardArgs& bw) {
  FwdDir d[2] = {fwd_from(fw), fwd_from(bw)};
  run_forward(d, 2);
}

void lstm_encode(const LstmEncodeArgs& a) {
  FwdDir d = fwd_from(a);
  run_forward(&d, 1);
}

void bilstm_encode(const LstmEncodeArgs& fw, const LstmEncodeArgs& bw) {
  FwdDir d[2] = {fwd_from(fw), fwd_from(bw)};
  run_forward(d, 2);
}

void lstm_backward(const LstmBackwardArgs& a) { run_backward(&a, 1); }

void bilstm_backward(const LstmBackwardArgs& fw, const LstmBackwardArgs& bw) {
  const LstmBackwardArgs args[2] = {fw, bw};
  run_backward(args, 2);
}

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* A, int64_t lda,
           const float* B, int64_t ldb, float* C, int64_t ldc, bool accumulate) {
  if (m <= 0 || n <= 0) return;
  const Table& tb = active_table();
  Arena& ar = arena();
  PoolLease lease(threads_for(2.0 * m * n * (double)k, 2e6));
  const int Q = lease.n();
  // Column strips when there are enough columns (each thread packs only its strip of B), else row strips.
  // A few rows of A read B straight, without packing it.
  const bool by_cols = n >= (int64_t)Q * tb.nr * 2 || m < (int64_t)Q * tb.mr * 2;
  const bool direct = !trans_b && m <= 2 * tb.mr;
  float** bp = ar.get<float*>(Q);
  float** as = ar.get<float*>(Q);
  for (int q = 0; q < Q; q++) {
    int64_t c0 = 0, c1 = n;
    if (by_cols) split_range(n, q, Q, tb.nr, c0, c1);
    bp[q] = direct ? nullptr : ar.get<float>(kern::packed_b_floats(tb, k > 0 ? k : 1, c1 > c0 ? c1 - c0 : 1));
    as[q] = ar.get<float>(kern::packed_a_floats(tb));
  }
  auto job = [&](int q) {  // strip q of Q (independent tasks)
    int64_t c0 = 0, c1 = n, r0 = 0, r1 = m;
    if (by_cols)
      split_range(n, q, Q, tb.nr, c0, c1);
    else
      split_range(m, q, Q, tb.mr, r0, r1);
    if (c1 <= c0 || r1 <= r0) return;
    if (k > 0 && !direct) tb.pack_b(trans_b ? B + c0 * ldb : B + c0, ldb, trans_b, k, c1 - c0, bp[q]);
    const float* a = trans_a ? A + r0 : A + r0 * lda;
    gemm_rows(tb, r1 - r0, c1 - c0, k, a, lda, trans_a, direct ? nullptr : bp[q], nullptr, C + r0 * ldc + c0, ldc,
              accumulate, as[q], B + c0, ldb);
  };
  lease.run_tasks(Q, job);
}

}  // namespace ds
