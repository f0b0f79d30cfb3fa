// The forward and encoding passes behind lstm.h (lstm_forward, bilstm_forward, lstm_encode, bilstm_encode):
//
// Per direction, the batch is sorted by length (descending) and cut into row chunks (lstm_plan.h); each chunk
// task runs every step of its rows (fused step: input projection x·kernel + bias, recurrent product, gates
// and cell update in one register tile, kernels_lstm.h). One sequence, and the bf16 tier, project all steps
// as one GEMM first instead.
// Rows never interact, so chunks need no synchronisation. Token inputs: a first job projects the distinct
// tokens of the call into a table (row slices); the chunks then read table rows by index (fwd_table).
// Two directions simply contribute tasks to the same job (one per core with two threads). Every output
// element is computed by one task in an order that does not depend on the number of threads: results are
// bit-identical for any DEEPSENTRY_THREADS.
// At Precision::Bf16 the same plan runs the bf16 kernels (kernels/kernels_bf16.h) for both products, over
// the input kernel rounded with its columns gate-blocked and the recurrent kernel rounded, both packed once
// per call (also for one sequence: half the bytes per step): x given, several sequences, the step tiles
// project x themselves as at float32; token tables and one sequence project with the bf16 GEMM first (for
// a few rows over the float32 kernel rounded panel by panel). Gates, cell state and outputs stay float32.
#include "lstm.h"
#include "lstm_plan.h"

namespace ds {
namespace {

using namespace plan;

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
  struct {
    const uint32_t *kernel, *recurrent;
    const float* bias;
  } bf16_given;                // LstmParams::bf16_kernel, bf16_recurrent, bf16_bias
  const kern::Bf16Table* bt;  // the bf16 kernels, or nullptr at float32
  bool fused;                  // x given, several sequences: the step tiles project x (no xproj buffer)
  const uint32_t *kp16, *rp16;   // bf16: rounded kernel (nullptr: few rows, rounded panel by panel), recurrent
  uint32_t *kp16_buf, *rp16_buf;  // bf16: where this call rounds them otherwise
  uint32_t *hb16, *xb16;          // bf16: h scratch, x scratch (fused)
  const float* bias16;            // bf16: the bias in the gate-blocked column order (kernels_bf16.h)
  int64_t gp;                     // bf16: columns of a projection row (kern::bf16_gate_cols), else G
  uint32_t** as16;                // bf16: one A scratch per task
  int Q;            // row chunks: independent tasks
  bool pack_in_task;  // Q == 1: the task packs the weights itself (else the caller did before the job)
  Rows rows;
  int64_t* bounds;
  int64_t s_ld;
  float *kp, *rp, *pre, *xproj, *xl;
  float* kx;  // float32, x given, several sequences: the input kernel for the steps' fused projection
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
void fwd_plan(FwdDir& d, Arena& ar, const Table& tb, const kern::Bf16Table* bt, int want) {
  d.G = 4 * d.H;
  d.tb = &tb;
  d.bt = bt;
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
  // Several sequences of x: the step tiles project x themselves (kernels_lstm.h lstm_tile, the bf16 rec_tile),
  // so no projection buffer goes through memory.
  const bool fused = !d.tokens && d.B > 1;
  d.fused = fused;
  d.kx = fused && !bt ? ar.get<float>(kern::lstm_k_floats(tb, d.I, d.H)) : nullptr;
  d.gp = bt ? kern::bf16_gate_cols(d.H) : d.G;
  if (!bt) {
    // Packing the weights costs a pass over them; it pays when they are then read many times (many rows).
    d.kp = !fused && proj_rows > 4 * tb.mr ? ar.get<float>(kern::packed_b_floats(tb, d.I, d.G)) : nullptr;
    // One sequence: each step streams recurrent as it is (kernels_lstm.h lstm_row_gemv), nothing to pack.
    d.rp = d.B > 1 ? ar.get<float>(kern::lstm_r_floats(tb, d.H)) : nullptr;
    d.pre = d.B == 1 ? ar.get<float>((size_t)d.G) : nullptr;
  } else {  // bf16: both kernels rounded (the input kernel only for many rows: else panel by panel in the GEMM)
    const bool given = d.bf16_given.kernel && d.bf16_given.recurrent;  // the caller rounded them: nothing to pack
    d.kp16_buf = !given && (fused || proj_rows > kern::BF16_DIRECT_MAX)
                     ? ar.get<uint32_t>(kern::bf16_packed_b_words(d.I, d.gp)) : nullptr;
    d.rp16_buf = given ? nullptr : ar.get<uint32_t>(kern::bf16_lstm_r_words(d.H));
    d.kp16 = given ? d.bf16_given.kernel : d.kp16_buf;
    d.rp16 = given ? d.bf16_given.recurrent : d.rp16_buf;
    d.hb16 = ar.get<uint32_t>(kern::bf16_h_words(d.B, d.H));
    d.xb16 = fused ? ar.get<uint32_t>(kern::bf16_h_words(d.B, d.I)) : nullptr;
    if (d.bf16_given.bias) {
      d.bias16 = d.bf16_given.bias;
    } else {
      float* bg = ar.get<float>((size_t)d.gp);
      bf16_pack_bias(d.bias, d.H, bg);
      d.bias16 = bg;
    }
  }
  d.xproj = fused ? nullptr : ar.get<float>((size_t)(proj_rows * d.gp));
  d.xl = fused ? nullptr : ar.get<float>((size_t)(proj_rows * d.I));
  // Table slices: a few hundred rows each at least (a slice costs a wake-up and a pass over the packed kernel).
  d.TQ = d.tokens ? (int)(d.nd / 256 < want ? d.nd / 256 : want) : 0;
  if (d.tokens && d.TQ < 1) d.TQ = 1;
  if (bt) {
    const int tasks = d.Q > d.TQ ? d.Q : d.TQ;
    d.as16 = ar.get<uint32_t*>((size_t)tasks);
    for (int q = 0; q < tasks; q++) d.as16[q] = ar.get<uint32_t>(kern::bf16_a_scratch_words());
  }
  for (int i = 0; i < 2; i++) {
    d.hb[i] = ar.get<float>((size_t)(d.B * d.s_ld));
    d.cb[i] = ar.get<float>((size_t)(d.B * d.s_ld));
  }
}

void fwd_pack(FwdDir& d) {
  if (d.bt) {
    if (d.kp16_buf) d.bt->pack_k(d.kernel, d.I, d.H, d.kp16_buf);
    if (d.rp16_buf) d.bt->pack_r(d.recurrent, d.H, d.rp16_buf);
    return;
  }
  if (d.kp) d.tb->pack_b(d.kernel, d.G, false, d.I, d.G, d.kp);
  if (d.kx) d.tb->pack_k(d.kernel, d.I, d.H, d.kx);
  if (d.rp) d.tb->pack_r(d.recurrent, d.H, d.rp);
}

// The input projection of `rows` rows of x (row-major, I wide) into xp (gate-blocked columns, d.gp per row),
// with bf16 operands, by task q.
void fwd_gemm_bf16(FwdDir& d, int q, int64_t rows, const float* x, float* xp) {
  kern::Bf16GemmArgs g{};
  g.m = rows;
  g.n = d.gp;
  g.k = d.I;
  g.a = x;
  g.lda = d.I;
  g.bp = d.kp16;
  g.b = d.kernel;
  g.ldb = d.G;
  g.gate_h = d.H;
  g.bias = d.bias16;
  g.c = xp;
  g.ldc = d.gp;
  g.a_scratch = d.as16[q];
  d.bt->gemm(g);
}

// Slice q of the token table: gather the embedding rows of its distinct tokens, then one GEMM (+ bias). Every
// table element is the same FMA chain whatever the slicing (kernels_sgemm.h micro).
void fwd_table(FwdDir& d, int q) {
  int64_t m0, m1;
  split_range(d.nd, q, d.TQ, d.tb->mr, m0, m1);
  if (m1 <= m0) return;
  for (int64_t i = m0; i < m1; i++) copy_floats(d.xl + i * d.I, d.embedding + (int64_t)d.dtok[i] * d.I, d.I);
  if (d.bt) return fwd_gemm_bf16(d, q, m1 - m0, d.xl + m0 * d.I, d.xproj + m0 * d.gp);
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
    // the workspace is not zero-filled when allocated (binding_lstm.cpp): its rows past the length are zeroed here
    if (d.gates) zero_floats(d.gates + (b * T + d.rows.len[r]) * G, (T - d.rows.len[r]) * G);
    if (d.cells) zero_floats(d.cells + (b * T + d.rows.len[r]) * H, (T - d.rows.len[r]) * H);
  }
  const float* xa = nullptr;
  if (d.tokens || d.fused) {
    // projected already (fwd_table), or by the steps
  } else if (contiguous) {
    xa = d.x + d.rows.seq[r0] * T * I;
  } else {
    for (int64_t r = r0; r < r1; r++) {
      const int64_t b = d.rows.seq[r];
      copy_floats(d.xl + (r * T) * I, d.x + b * T * I, T * I);
    }
    xa = d.xl + r0 * T * I;
  }
  float* xp = d.tokens || !d.xproj ? d.xproj : d.xproj + r0 * T * d.gp;
  if (!d.tokens && !d.fused && d.bt)
    fwd_gemm_bf16(d, q, (r1 - r0) * T, xa, xp);
  else if (!d.tokens && !d.fused)
    gemm_rows(tb, (r1 - r0) * T, G, I, xa, I, false, d.kp, d.bias, xp, G, false, nullptr, d.kernel, G);
  kern::LstmRecArgs a{};
  set_chunk_rows(a, H, T, d.rows, r0, r1, d.reverse);
  a.rp = d.rp;
  a.r = d.recurrent;
  a.xproj = xp;
  a.xidx = d.tokens ? d.xidx + r0 * T : nullptr;
  a.kx = d.kx;
  a.x = d.x;
  a.bias = d.bias;
  a.input = I;
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
  if (d.bt) {
    a.bias = d.bias16;
    kern::Bf16RecArgs ba{a, d.rp16, d.hb16 + r0 * kern::bf16_row_ld(H), d.fused ? d.kp16 : nullptr,
                         d.fused ? d.xb16 + r0 * kern::bf16_row_ld(I) : nullptr};
    d.bt->lstm_rec(ba);
  } else {
    tb.lstm_rec(a);
  }
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
  d.bf16_given = {a.w.bf16_kernel, a.w.bf16_recurrent, a.w.bf16_bias};
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
  const kern::Bf16Table* bt = precision_active() == Precision::Bf16 ? &active_bf16_table() : nullptr;
  Arena& ar = arena();
  double flops = 0;
  for (int i = 0; i < ndir; i++) flops += fwd_flops(dirs[i]);
  PoolLease lease(threads_for(flops, ndir == 2 ? 5e5 : 4e6), flops < kSmallJobFlops);
  const int n = lease.n();
  // Chunks per direction: two directions on two threads need none (one task each).
  const int per_dir = ndir == 2 ? (n + 1) / 2 : n;
  for (int i = 0; i < ndir; i++) fwd_plan(dirs[i], ar, tb, bt, per_dir);
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
}  // namespace

// ---- the API ------------------------------------------------------------------------------------------------

// The layouts fwd_pack rounds into (kernels_bf16.h; the same for every bf16 table).
size_t bf16_kernel_words(int64_t input, int64_t hidden) {
  return kern::bf16_packed_b_words(input, kern::bf16_gate_cols(hidden));
}
size_t bf16_recurrent_words(int64_t hidden) { return kern::bf16_lstm_r_words(hidden); }
void bf16_pack_kernel(const float* kernel, int64_t input, int64_t hidden, uint32_t* dst) {
  active_bf16_table().pack_k(kernel, input, hidden, dst);
}
void bf16_pack_recurrent(const float* recurrent, int64_t hidden, uint32_t* dst) {
  active_bf16_table().pack_r(recurrent, hidden, dst);
}
size_t bf16_bias_floats(int64_t hidden) { return (size_t)kern::bf16_gate_cols(hidden); }
void bf16_pack_bias(const float* bias, int64_t hidden, float* dst) {
  // column jb*64 + g*16 + u: gate g of unit 16*jb + u (0 past hidden)
  for (int64_t j0 = 0; j0 < hidden; j0 += kern::BF16_UNITS)
    for (int64_t g = 0; g < 4; g++)
      for (int64_t u = 0; u < kern::BF16_UNITS; u++)
        *dst++ = j0 + u < hidden && bias ? bias[g * hidden + j0 + u] : 0.0f;
}

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

}  // namespace ds
