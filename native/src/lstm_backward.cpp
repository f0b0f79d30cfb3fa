// The backward pass behind lstm.h (lstm_backward, bilstm_backward):
//
// Per direction, chunk tasks over the rows sorted by length (lstm_plan.h) run the recurrence (elementwise
// cell backward + dh = dG·recurrentᵀ); then dkernel = xᵀ·dG, drecurrent = Hprevᵀ·dG, dbias = Σ dG by column
// strips and dx = dG·kernelᵀ by parts of the batch, as large GEMMs over every valid step at once. Two
// directions contribute tasks to the same job. Every output element is computed by one task in an order that
// does not depend on the number of threads: results are bit-identical for any DEEPSENTRY_THREADS.
// A weights-only call (dx, dh0, dc0 nullptr: the input is data) skips dx and the product giving dh0.
#include "lstm.h"
#include "lstm_plan.h"

namespace ds {
namespace {

using namespace plan;

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
    d.dxc = a.dx ? ar.get<float>((size_t)(d.nvalid * d.I)) : nullptr;
  }
  d.rtp = ar.get<float>(kern::packed_b_floats(tb, d.G, d.H));
  d.ktp = a.dx ? ar.get<float>(kern::packed_b_floats(tb, d.G, d.I)) : nullptr;
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
    if (a.dx && !a.dx_accumulate)
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
  ra.want_dh0 = a.dh0 != nullptr;
  tb.lstm_bwd_rec(ra);
  if (!a.dh0) return;
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
    // dG is packed and then used at once by both products and the bias column sums (continued block after
    // block: the same sums as over all rows at once) while it is in L2.
    if (d.nvalid == 0) {
      gemm_rows(tb, I, nc, 0, xs, I, true, d.dgp[q], nullptr, a.dkernel + c0, G, false, d.a_scratch[q]);
      gemm_rows(tb, H, nc, 0, d.hprev, H, true, d.dgp[q], nullptr, a.drecurrent + c0, G, false, d.a_scratch[q]);
      tb.colsum(d.dg, G, 0, nc, a.dbias + c0, false);
    }
    for (int64_t k0 = 0; k0 < d.nvalid; k0 += tb.kc) {
      const int64_t kcb = d.nvalid - k0 < tb.kc ? d.nvalid - k0 : tb.kc;
      tb.pack_b(d.dg + k0 * G + c0, G, false, kcb, nc, d.dgp[q]);
      gemm_rows(tb, I, nc, kcb, xs + k0 * I, I, true, d.dgp[q], nullptr, a.dkernel + c0, G, k0 > 0, d.a_scratch[q]);
      gemm_rows(tb, H, nc, kcb, d.hprev + k0 * H, H, true, d.dgp[q], nullptr, a.drecurrent + c0, G, k0 > 0,
                d.a_scratch[q]);
      tb.colsum(d.dg + k0 * G + c0, G, kcb, nc, a.dbias + c0, k0 > 0);
    }
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
// dx by parts of the batch. recurrentᵀ is packed first, by the caller. With one chunk per direction, its
// task of (1) also packs recurrentᵀ and computes the direction's weight gradients, and (2) is dx only.
void run_backward(const LstmBackwardArgs* args, int ndir) {
  const Table& tb = active_table();
  Arena& ar = arena();
  double flops = 0;
  for (int i = 0; i < ndir; i++) flops += bwd_flops(args[i]);
  PoolLease lease(threads_for(flops, ndir == 2 ? 1e6 : 4e6));
  const int n = lease.n();
  const int per_dir = ndir == 2 ? (n + 1) / 2 : n;
  BwdDir d[2]{};
  for (int i = 0; i < ndir; i++) bwd_plan(d[i], args[i], ar, tb, per_dir);
  // One chunk per direction (one or two threads): its task packs recurrentᵀ, runs the recurrence and goes on
  // to the direction's weight gradients, with no wait for the other direction in between.
  const bool chained = d[0].Q == 1 && (ndir == 1 || d[1].Q == 1);
  auto pack_rt = [&](int i) { tb.pack_b(args[i].w.recurrent, d[i].G, true, d[i].G, d[i].H, d[i].rtp); };
  if (!chained)
    for (int i = 0; i < ndir; i++) pack_rt(i);
  const bool want_dx = args[0].dx != nullptr;  // the directions of a layer agree (the binding sets both)
  const int chunks = ndir == 2 ? d[0].Q + d[1].Q : d[0].Q;
  auto job1 = [&](int t) {
    for (int i = 0; i < ndir; i++) {
      if (t < d[i].Q) {
        if (chained) pack_rt(i);
        bwd_chunk(d[i], t);
        if (chained) bwd_strip(d[i], t);
        return;
      }
      t -= d[i].Q;
    }
    tb.pack_b(args[t].w.kernel, d[t].G, true, d[t].G, d[t].I, d[t].ktp);
  };
  lease.run_tasks(chunks + (want_dx ? ndir : 0), job1);
  // dx of a bidirectional layer is shared: each part adds the backward direction after the forward one.
  const bool shared_dx = ndir == 2 && args[0].dx == args[1].dx;
  const int parts = want_dx ? n : 0;
  auto job2 = [&](int t) {
    for (int i = 0; i < ndir && !chained; i++) {
      if (t < d[i].Q) return bwd_strip(d[i], t);
      t -= d[i].Q;
    }
    if (shared_dx) return bi_dx_part(d, t, parts);
    const int i = t / parts;
    int64_t b0, b1;
    seq_range(d[i], t % parts, parts, b0, b1);
    bwd_dx(d[i], b0, b1);
  };
  const int strips = chained ? 0 : chunks;
  const int tasks2 = strips + (shared_dx ? parts : ndir * parts);
  if (tasks2 > 0) lease.run_tasks(tasks2, job2);
}

}  // namespace

// ---- the API ------------------------------------------------------------------------------------------------

void lstm_backward(const LstmBackwardArgs& a) { run_backward(&a, 1); }

void bilstm_backward(const LstmBackwardArgs& fw, const LstmBackwardArgs& bw) {
  const LstmBackwardArgs args[2] = {fw, bw};
  run_backward(args, 2);
}

}  // namespace ds
