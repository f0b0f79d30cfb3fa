// The backward pass behind lstm.h (lstm_backward, bilstm_backward):
//
// Per direction, chunk tasks over the rows sorted by length (lstm_plan.h) run the recurrence (elementwise
// cell backward + dh = dG·recurrentᵀ); dkernel = xᵀ·dG, drecurrent = Hprevᵀ·dG, dbias = Σ dG sum over the
// valid steps in the recurrence's order, step by step: inside the recurrence when a direction is one chunk
// (each step's dG is still in L2), else afterwards by column strips; dx = dG·kernelᵀ by parts of the batch.
// Two directions contribute tasks to the same job. Every output element is computed by one task in an order
// that does not depend on the number of threads: results are bit-identical for any DEEPSENTRY_THREADS.
// A weights-only call (dx, dh0, dc0 nullptr: the input is data) skips dx and the product giving dh0.
#include "lstm.h"
#include "lstm_plan.h"

namespace ds {
namespace {

using namespace plan;

// ---- backward ----------------------------------------------------------------------------------------------

// The pre-activation gradients dG of every valid (row, step) are kept in one compact buffer, step by step in the
// order the recurrence visits them (T-1 … 0), each step's active rows (a prefix of the rows sorted by length)
// consecutive: the step's product dh = dG·recurrentᵀ reads them in place, and the weight gradients sum over
// the compact rows in that order — step by step, so the same sums can be taken while a step's dG is still in
// L2 (one chunk per direction) or afterwards over the whole buffer (column strips): same bits either way.
struct BwdDir {
  const LstmBackwardArgs* a;
  int64_t B, T, I, H, G;
  const Table* tb;
  int Q;  // row chunks of the recurrence, column strips of the weight gradients
  Rows rows;
  int64_t* bounds;
  int64_t s_ld;
  int64_t* nact;    // [T] rows active at step s (a prefix of the sorted rows)
  int64_t* base;    // [T] compact row of (sorted row 0, step s)
  int64_t nvalid;   // Σ len
  int64_t* rowmap;  // [nvalid] b*T+t of each compact row (when not dense)
  float *rtp, *ktp, *dh, *dc, *dg, *hprev, *xc, *dxc;
  float** dgp;        // [Q] one K block of each column strip of dG, packed
  float** a_scratch;  // [Q]
  bool* k_started;    // [Q] the strip's dkernel and dbias hold a first block (else they are overwritten)
  bool* r_started;    // [Q] the same for drecurrent (whose first block may come later: see dw_step)
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
  d.nact = ar.get<int64_t>(d.T);
  d.base = ar.get<int64_t>(d.T);
  int64_t n = d.B;
  for (int64_t s = 0; s < d.T; s++) {
    while (n > 0 && d.rows.len[n - 1] <= s) n--;
    d.nact[s] = n;
  }
  d.nvalid = 0;
  for (int64_t s = d.T - 1; s >= 0; s--) {
    d.base[s] = d.nvalid;
    d.nvalid += d.nact[s];
  }
  // Dense rows (every sequence has T steps, rows in sequence order) are read in place from x and y; otherwise
  // the rows of x and of the previous hidden states are gathered into compact order by the chunks.
  const bool dense = d.rows.dense;
  d.rowmap = nullptr;
  d.xc = d.dxc = d.hprev = nullptr;
  if (!dense) {
    d.rowmap = ar.get<int64_t>(d.nvalid);
    d.xc = ar.get<float>((size_t)(d.nvalid * d.I));
    d.hprev = ar.get<float>((size_t)(d.nvalid * d.H));
    d.dxc = a.dx ? ar.get<float>((size_t)(d.nvalid * d.I)) : nullptr;
  }
  d.rtp = ar.get<float>(kern::packed_b_floats(tb, d.G, d.H));
  d.ktp = a.dx ? ar.get<float>(kern::packed_b_floats(tb, d.G, d.I)) : nullptr;
  d.dh = ar.get<float>((size_t)(d.B * d.s_ld));
  d.dc = ar.get<float>((size_t)(d.B * d.s_ld));
  d.dg = ar.get<float>((size_t)(d.nvalid * d.G));
  d.dgp = ar.get<float*>(Q);
  d.a_scratch = ar.get<float*>(Q);
  d.k_started = ar.get<bool>(Q);
  d.r_started = ar.get<bool>(Q);
  for (int q = 0; q < Q; q++) {
    int64_t c0, c1;
    split_range(d.G, q, Q, tb.nr, c0, c1);
    d.dgp[q] = ar.get<float>(kern::packed_b_floats(tb, tb.kc, c1 - c0 > 0 ? c1 - c0 : 1));
    d.a_scratch[q] = ar.get<float>(kern::packed_a_floats(tb));
    d.k_started[q] = d.r_started[q] = false;
  }
  d.gates = a.workspace;
  d.cells = a.workspace + d.B * d.T * d.G;
}

// The rows of x (ld: their stride) of step s for the sorted rows r0…
const float* x_rows(const BwdDir& d, int64_t s, int64_t r0, int64_t& ld) {
  if (d.xc) {
    ld = d.I;
    return d.xc + (d.base[s] + r0) * d.I;
  }
  const int64_t t = d.a->reverse ? d.T - 1 - s : s;
  ld = d.T * d.I;
  return d.a->x + (r0 * d.T + t) * d.I;
}

// The previous hidden states of step s for the sorted rows r0… (at step 0 only with h0)
const float* hprev_rows(const BwdDir& d, int64_t s, int64_t r0, int64_t& ld) {
  if (d.hprev) {
    ld = d.H;
    return d.hprev + (d.base[s] + r0) * d.H;
  }
  if (s == 0) {
    ld = d.H;
    return d.a->h0 + r0 * d.H;
  }
  const int64_t tp = d.a->reverse ? d.T - s : s - 1;
  ld = d.T * d.a->y_ld;
  return d.a->y + (r0 * d.T + tp) * d.a->y_ld;
}

// Column strip q of the weight gradients, the rows of step s: dkernel += xᵀ·dG, drecurrent += Hprevᵀ·dG,
// dbias += Σ dG, K block by K block (the gemm's own blocking: each block of dG is packed and then used at once
// by both products and the column sums while it is in L2). Without h0 the previous hidden state of step 0 is
// zero: its rows add nothing to drecurrent and are left out.
void dw_step(BwdDir& d, int q, int64_t s) {
  const LstmBackwardArgs& a = *d.a;
  const Table& tb = *d.tb;
  const int64_t I = d.I, H = d.H, G = d.G;
  int64_t c0, c1;
  split_range(G, q, d.Q, tb.nr, c0, c1);
  if (c1 <= c0) return;
  const int64_t nc = c1 - c0, n = d.nact[s];
  const bool rec = s > 0 || a.h0;
  for (int64_t k0 = 0; k0 < n; k0 += tb.kc) {
    const int64_t kcb = n - k0 < tb.kc ? n - k0 : tb.kc;
    const float* dg = d.dg + (d.base[s] + k0) * G + c0;
    tb.pack_b(dg, G, false, kcb, nc, d.dgp[q]);
    int64_t ld;
    const float* xs = x_rows(d, s, k0, ld);
    gemm_rows(tb, I, nc, kcb, xs, ld, true, d.dgp[q], nullptr, a.dkernel + c0, G, d.k_started[q], d.a_scratch[q]);
    if (rec) {
      const float* hs = hprev_rows(d, s, k0, ld);
      gemm_rows(tb, H, nc, kcb, hs, ld, true, d.dgp[q], nullptr, a.drecurrent + c0, G, d.r_started[q],
                d.a_scratch[q]);
      d.r_started[q] = true;
    }
    tb.colsum(dg, G, kcb, nc, a.dbias + c0, d.k_started[q]);
    d.k_started[q] = true;
  }
}

// The weight gradients of strip q that no row reached (no valid step; drecurrent with only step 0) are 0.
void dw_finish(BwdDir& d, int q) {
  const LstmBackwardArgs& a = *d.a;
  const Table& tb = *d.tb;
  int64_t c0, c1;
  split_range(d.G, q, d.Q, tb.nr, c0, c1);
  if (c1 <= c0) return;
  const int64_t nc = c1 - c0;
  if (!d.k_started[q]) {
    gemm_rows(tb, d.I, nc, 0, nullptr, d.I, true, d.dgp[q], nullptr, a.dkernel + c0, d.G, false, d.a_scratch[q]);
    tb.colsum(d.dg, d.G, 0, nc, a.dbias + c0, false);
  }
  if (!d.r_started[q])
    gemm_rows(tb, d.H, nc, 0, nullptr, d.H, true, d.dgp[q], nullptr, a.drecurrent + c0, d.G, false, d.a_scratch[q]);
}

// Column strip q of the weight gradients (after every chunk is done): every step in the recurrence's order.
void bwd_strip(BwdDir& d, int q) {
  for (int64_t s = d.T - 1; s >= 0; s--) dw_step(d, q, s);
  dw_finish(d, q);
}

// One chunk per direction: the weight gradients of step s while its dG is in L2.
void dw_after_step(void* ctx, int64_t s) { dw_step(*static_cast<BwdDir*>(ctx), 0, s); }

// Rows chunk q: init its carries, gather the previous hidden states and x of its sequences when padded, run
// their recurrence (dG of every valid step, dh0, dc0) and, with `fused` (the direction's only chunk), the
// weight gradients step by step. Needs the packed recurrentᵀ; touches no other chunk's rows.
void bwd_chunk(BwdDir& d, int q, bool fused) {
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
    if (d.xc)
      for (int64_t s = 0; s < L; s++) {
        const int64_t t = a.reverse ? L - 1 - s : s;
        const int64_t k = d.base[s] + r;
        d.rowmap[k] = b * T + t;
        copy_floats(d.xc + k * I, a.x + (b * T + t) * I, I);
        if (s > 0)
          copy_floats(d.hprev + k * H, a.y + (b * T + (a.reverse ? t + 1 : t - 1)) * a.y_ld, H);
        else if (a.h0)
          copy_floats(d.hprev + k * H, a.h0 + b * H, H);
      }
    if (a.dx && !a.dx_accumulate)
      for (int64_t t = L; t < T; t++) zero_floats(a.dx + (b * T + t) * I, I);
  }
  if (r1 > r0) {
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
    ra.dg = d.dg + r0 * G;
    ra.step_base = d.base;
    ra.want_dh0 = a.dh0 != nullptr;
    if (fused) {
      ra.after_step = dw_after_step;
      ra.ctx = &d;
    }
    tb.lstm_bwd_rec(ra);
    if (a.dh0)
      for (int64_t r = r0; r < r1; r++) {
        const int64_t b = d.rows.seq[r];
        copy_floats(a.dh0 + b * H, d.dh + r * d.s_ld, H);
        copy_floats(a.dc0 + b * H, d.dc + r * d.s_ld, H);
      }
  }
  if (fused) dw_finish(d, q);
}

// Sorted rows [r0, r1) of part q of n, balancing their valid steps (the rows of dx they own).
void row_range(const BwdDir& d, int q, int n, int64_t& r0, int64_t& r1) {
  auto cut = [&](int c) {
    if (c >= n) return d.B;
    const int64_t target = d.nvalid * c / n;
    int64_t r = 0, sum = 0;
    while (r < d.B && sum < target) sum += d.rows.len[r++];
    return r;
  };
  r0 = q == 0 ? 0 : cut(q);
  r1 = cut(q + 1);
}

// dx (+)= dG · kernelᵀ for the steps of sorted rows [r0, r1) (after dG and the packed kernelᵀ are complete),
// step by step: in place (rows T apart) when dense, else through the compact rows and their row map.
void bwd_dx(BwdDir& d, int64_t r0, int64_t r1) {
  const LstmBackwardArgs& a = *d.a;
  const Table& tb = *d.tb;
  const int64_t T = d.T, I = d.I, G = d.G;
  for (int64_t s = 0; s < T; s++) {
    const int64_t n1 = r1 < d.nact[s] ? r1 : d.nact[s];
    if (n1 <= r0) continue;
    const int64_t m = n1 - r0, k0 = d.base[s] + r0;
    const float* dg = d.dg + k0 * G;
    if (!d.dxc) {
      const int64_t t = a.reverse ? T - 1 - s : s;
      gemm_rows(tb, m, I, G, dg, G, false, d.ktp, nullptr, a.dx + (r0 * T + t) * I, T * I, a.dx_accumulate,
                nullptr);
      continue;
    }
    gemm_rows(tb, m, I, G, dg, G, false, d.ktp, nullptr, d.dxc + k0 * I, I, false, nullptr);
    for (int64_t k = k0; k < k0 + m; k++) {
      float* dst = a.dx + d.rowmap[k] * I;
      const float* src = d.dxc + k * I;
      if (a.dx_accumulate)
        for (int64_t j = 0; j < I; j++) dst[j] += src[j];
      else
        copy_floats(dst, src, I);
    }
  }
}

// Part q of n of dx for a bidirectional layer: the forward direction's dx, then the backward direction's
// added, for the same sequences (both directions sort the rows alike) — per element the same order as with
// one thread, and no other part touches these rows.
void bi_dx_part(BwdDir* d, int q, int n) {
  int64_t r0, r1;
  row_range(d[0], q, n, r0, r1);
  bwd_dx(d[0], r0, r1);
  bwd_dx(d[1], r0, r1);
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
        bwd_chunk(d[i], t, chained);
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
    int64_t r0, r1;
    row_range(d[i], t % parts, parts, r0, r1);
    bwd_dx(d[i], r0, r1);
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
