// Self-test and micro-benchmark of the CPU kernels (lstm.h) without Node: every SIMD level the CPU has, 1 and
// 2 threads, against a float64 reference (the same math as lib/backend/reference.ts).
//   ds_kernel_selftest            correctness (exit status 1 on any failure)
//   ds_kernel_selftest bench [baseline|avx2|avx512 [threads [cpu|wall [l1|w1f|train|w2|sgemm [fp32|bf16]]]]]
//                                 the reference workloads (W1, L1, W2 encoder; bench/workloads.ts); "cpu" times with
//                                 the thread's CPU time (meaningful with 1 thread on a busy machine)
// Build: see kernels.cmake (target ds_kernel_selftest).
#include <time.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include <atomic>
#include <thread>

#include "lstm.h"

using namespace ds;
using std::vector;

namespace {

struct Rng {
  std::mt19937_64 g;
  explicit Rng(uint64_t s) : g(s) {}
  float uni(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(g); }
  int64_t range(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(g); }
  vector<float> vec(size_t n, float s) {
    vector<float> v(n);
    for (auto& x : v) x = uni(-s, s);
    return v;
  }
};

struct Ref {
  vector<double> y, h, c, gates, cells;
};

double sig(double v) { return 1 / (1 + std::exp(-v)); }

Ref ref_forward(int64_t B, int64_t T, int64_t I, int64_t H, const float* x, const float* K, const float* R,
                const float* bias, const float* h0, const float* c0, const int32_t* len, bool rev) {
  const int64_t G = 4 * H;
  Ref o;
  o.y.assign(B * T * H, 0);
  o.h.assign(B * H, 0);
  o.c.assign(B * H, 0);
  o.gates.assign(B * T * G, 0);
  o.cells.assign(B * T * H, 0);
  vector<double> pre(G), h(H), c(H);
  for (int64_t b = 0; b < B; b++) {
    for (int64_t j = 0; j < H; j++) h[j] = h0 ? h0[b * H + j] : 0, c[j] = c0 ? c0[b * H + j] : 0;
    const int64_t L = len ? len[b] : T;
    for (int64_t k = 0; k < L; k++) {
      const int64_t t = rev ? L - 1 - k : k;
      for (int64_t g = 0; g < G; g++) pre[g] = bias[g];
      for (int64_t i = 0; i < I; i++)
        for (int64_t g = 0; g < G; g++) pre[g] += (double)x[(b * T + t) * I + i] * K[i * G + g];
      for (int64_t i = 0; i < H; i++)
        for (int64_t g = 0; g < G; g++) pre[g] += h[i] * R[i * G + g];
      for (int64_t j = 0; j < H; j++) {
        double ig = sig(pre[j]), fg = sig(pre[H + j]), gg = std::tanh(pre[2 * H + j]), og = sig(pre[3 * H + j]);
        c[j] = fg * c[j] + ig * gg;
        h[j] = og * std::tanh(c[j]);
        double* gp = o.gates.data() + (b * T + t) * G;
        gp[j] = ig, gp[H + j] = fg, gp[2 * H + j] = gg, gp[3 * H + j] = og;
        o.cells[(b * T + t) * H + j] = c[j];
        o.y[(b * T + t) * H + j] = h[j];
      }
    }
    for (int64_t j = 0; j < H; j++) o.h[b * H + j] = h[j], o.c[b * H + j] = c[j];
  }
  return o;
}

struct RefG {
  vector<double> dx, dh0, dc0, dK, dR, db;
};

RefG ref_backward(int64_t B, int64_t T, int64_t I, int64_t H, const float* x, const float* K, const float* R,
                  const float* h0, const float* c0, const int32_t* len, bool rev, const Ref& f, const float* dy,
                  const float* dhT, const float* dcT) {
  const int64_t G = 4 * H;
  RefG o;
  o.dx.assign(B * T * I, 0);
  o.dh0.assign(B * H, 0);
  o.dc0.assign(B * H, 0);
  o.dK.assign(I * G, 0);
  o.dR.assign(H * G, 0);
  o.db.assign(G, 0);
  vector<double> dp(G), dh(H), dc(H), nd(H);
  for (int64_t b = 0; b < B; b++) {
    for (int64_t j = 0; j < H; j++) dh[j] = dhT ? dhT[b * H + j] : 0, dc[j] = dcT ? dcT[b * H + j] : 0;
    const int64_t L = len ? len[b] : T;
    for (int64_t k = L - 1; k >= 0; k--) {
      const int64_t t = rev ? L - 1 - k : k;
      const int64_t tp = k > 0 ? (rev ? L - k : k - 1) : -1;
      if (dy)
        for (int64_t j = 0; j < H; j++) dh[j] += dy[(b * T + t) * H + j];
      const double* gp = f.gates.data() + (b * T + t) * G;
      for (int64_t j = 0; j < H; j++) {
        double ig = gp[j], fg = gp[H + j], gg = gp[2 * H + j], og = gp[3 * H + j];
        double cn = f.cells[(b * T + t) * H + j];
        double cp = tp >= 0 ? f.cells[(b * T + tp) * H + j] : (c0 ? c0[b * H + j] : 0);
        double tc = std::tanh(cn);
        double dct = dc[j] + dh[j] * og * (1 - tc * tc);
        dp[3 * H + j] = dh[j] * tc * og * (1 - og);
        dp[j] = dct * gg * ig * (1 - ig);
        dp[H + j] = dct * cp * fg * (1 - fg);
        dp[2 * H + j] = dct * ig * (1 - gg * gg);
        dc[j] = dct * fg;
      }
      for (int64_t g = 0; g < G; g++) o.db[g] += dp[g];
      for (int64_t i = 0; i < I; i++) {
        double xv = x[(b * T + t) * I + i], s = 0;
        for (int64_t g = 0; g < G; g++) o.dK[i * G + g] += xv * dp[g], s += K[i * G + g] * dp[g];
        o.dx[(b * T + t) * I + i] = s;
      }
      for (int64_t i = 0; i < H; i++) {
        double hp = tp >= 0 ? f.y[(b * T + tp) * H + i] : (h0 ? h0[b * H + i] : 0), s = 0;
        for (int64_t g = 0; g < G; g++) o.dR[i * G + g] += hp * dp[g], s += R[i * G + g] * dp[g];
        nd[i] = s;
      }
      dh = nd;
    }
    for (int64_t j = 0; j < H; j++) o.dh0[b * H + j] = dh[j], o.dc0[b * H + j] = dc[j];
  }
  return o;
}

int failures = 0;
bool verbose = false;

// max |a-b| / (max |b| + tiny): a tolerance relative to the array's scale
void check(const char* what, const float* got, const vector<double>& want, size_t n, double tol, int64_t ld = 0,
           int64_t width = 0, size_t stride_rows = 0) {
  double scale = 1e-6, err = 0;
  size_t worst = 0;
  for (size_t i = 0; i < n; i++) scale = std::max(scale, std::fabs(want[i]));
  for (size_t i = 0; i < n; i++) {
    size_t gi = i;
    if (ld) gi = (i / width) * ld + i % width;
    double e = std::fabs((double)got[gi] - want[i]);
    if (!(e <= err)) err = e, worst = i;  // NaN counts as the worst
  }
  (void)stride_rows;
  if (verbose) std::printf("    %-10s rel err %.3g\n", what, err / scale);
  if (!(err / scale <= tol)) {
    failures++;
    std::printf("  FAIL %s: max err %.3g (rel %.3g) at %zu (got %g want %g)\n", what, err, err / scale, worst,
                (double)got[ld ? (worst / width) * ld + worst % width : worst], want[worst]);
  }
}

// The inputs that the forward, encode and backward calls of one test share (lstm.h names them alike in the
// three argument structs).
template <class Args>
void set_inputs(Args& a, const LstmShape& s, const LstmParams& w, const float* x, const float* h0, const float* c0,
                const int32_t* lengths, bool reverse) {
  a.s = s;
  a.w = w;
  a.x = x;
  a.h0 = h0;
  a.c0 = c0;
  a.lengths = lengths;
  a.reverse = reverse;
}

void test_lstm(Rng& rng, int64_t B, int64_t T, int64_t I, int64_t H, bool rev, bool lens, bool init) {
  const int64_t G = 4 * H;
  auto x = rng.vec(B * T * I, 1), K = rng.vec(I * G, 0.3f), R = rng.vec(H * G, 0.3f), bias = rng.vec(G, 0.5f);
  auto h0 = rng.vec(B * H, 0.5f), c0 = rng.vec(B * H, 0.5f);
  vector<int32_t> len(B);
  for (auto& l : len) l = (int32_t)(lens ? rng.range(0, T) : T);
  auto dy = rng.vec(B * T * H, 1), dh = rng.vec(B * H, 1), dc = rng.vec(B * H, 1);
  const float* ph0 = init ? h0.data() : nullptr;
  const float* pc0 = init ? c0.data() : nullptr;
  const int32_t* pl = lens ? len.data() : nullptr;
  Ref ref = ref_forward(B, T, I, H, x.data(), K.data(), R.data(), bias.data(), ph0, pc0, pl, rev);
  RefG rg = ref_backward(B, T, I, H, x.data(), K.data(), R.data(), ph0, pc0, pl, rev, ref, dy.data(), dh.data(),
                         dc.data());
  LstmShape s{B, T, I, H};
  vector<float> y(B * T * H, 7.f), ho(B * H), co(B * H), ws(lstm_workspace_floats(s));
  LstmForwardArgs fa{};
  set_inputs(fa, s, {K.data(), R.data(), bias.data()}, x.data(), ph0, pc0, pl, rev);
  fa.y = y.data();
  fa.y_ld = H;
  fa.h_out = ho.data();
  fa.c_out = co.data();
  fa.workspace = ws.data();
  lstm_forward(fa);
  const double tol = 2e-5;
  check("y", y.data(), ref.y, y.size(), tol);
  check("h", ho.data(), ref.h, ho.size(), tol);
  check("c", co.data(), ref.c, co.size(), tol);
  // encode gives the same final state
  vector<float> eh(B * H), ec(B * H);
  LstmEncodeArgs ea{};
  set_inputs(ea, s, fa.w, x.data(), ph0, pc0, pl, rev);
  ea.h_out = eh.data();
  ea.c_out = ec.data();
  ea.out_ld = H;
  lstm_encode(ea);
  check("encode h", eh.data(), ref.h, eh.size(), tol);
  check("encode c", ec.data(), ref.c, ec.size(), tol);
  // backward
  vector<float> dx(B * T * I, 5.f), dh0(B * H), dc0(B * H), dK(I * G), dR(H * G), db(G);
  LstmBackwardArgs ba{};
  set_inputs(ba, s, fa.w, x.data(), ph0, pc0, pl, rev);
  ba.y = y.data();
  ba.y_ld = H;
  ba.workspace = ws.data();
  ba.dy = dy.data();
  ba.dh_out = dh.data();
  ba.dc_out = dc.data();
  ba.dx = dx.data();
  ba.dh0 = dh0.data();
  ba.dc0 = dc0.data();
  ba.dkernel = dK.data();
  ba.drecurrent = dR.data();
  ba.dbias = db.data();
  lstm_backward(ba);
  const double btol = 1e-4;
  check("dx", dx.data(), rg.dx, dx.size(), btol);
  check("dh0", dh0.data(), rg.dh0, dh0.size(), btol);
  check("dc0", dc0.data(), rg.dc0, dc0.size(), btol);
  check("dK", dK.data(), rg.dK, dK.size(), btol);
  check("dR", dR.data(), rg.dR, dR.size(), btol);
  check("db", db.data(), rg.db, db.size(), btol);
}

void test_bilstm(Rng& rng, int64_t B, int64_t T, int64_t I, int64_t H, bool lens) {
  const int64_t G = 4 * H;
  auto x = rng.vec(B * T * I, 1);
  vector<float> K[2], R[2], bias[2];
  for (int d = 0; d < 2; d++) K[d] = rng.vec(I * G, 0.3f), R[d] = rng.vec(H * G, 0.3f), bias[d] = rng.vec(G, 0.5f);
  vector<int32_t> len(B);
  for (auto& l : len) l = (int32_t)(lens ? rng.range(0, T) : T);
  const int32_t* pl = lens ? len.data() : nullptr;
  auto dy = rng.vec(B * T * 2 * H, 1);
  LstmShape s{B, T, I, H};
  vector<float> y(B * T * 2 * H, 3.f), ho[2], co[2], ws[2];
  LstmForwardArgs fa[2]{};
  for (int d = 0; d < 2; d++) {
    ho[d].resize(B * H), co[d].resize(B * H), ws[d].resize(lstm_workspace_floats(s));
    set_inputs(fa[d], s, {K[d].data(), R[d].data(), bias[d].data()}, x.data(), nullptr, nullptr, pl, d == 1);
    fa[d].y = y.data() + d * H;
    fa[d].y_ld = 2 * H;
    fa[d].h_out = ho[d].data();
    fa[d].c_out = co[d].data();
    fa[d].workspace = ws[d].data();
  }
  bilstm_forward(fa[0], fa[1]);
  vector<float> dx(B * T * I, 9.f), dh0[2], dc0[2], dK[2], dR[2], db[2];
  LstmBackwardArgs ba[2]{};
  for (int d = 0; d < 2; d++) {
    dh0[d].resize(B * H), dc0[d].resize(B * H), dK[d].resize(I * G), dR[d].resize(H * G), db[d].resize(G);
    set_inputs(ba[d], s, fa[d].w, x.data(), nullptr, nullptr, pl, d == 1);
    ba[d].y = y.data() + d * H;
    ba[d].y_ld = 2 * H;
    ba[d].workspace = ws[d].data();
    ba[d].dy = dy.data() + d * H;
    ba[d].dx = dx.data();
    ba[d].dx_accumulate = d == 1;
    ba[d].dh0 = dh0[d].data();
    ba[d].dc0 = dc0[d].data();
    ba[d].dkernel = dK[d].data();
    ba[d].drecurrent = dR[d].data();
    ba[d].dbias = db[d].data();
  }
  bilstm_backward(ba[0], ba[1]);
  vector<double> dxsum(B * T * I, 0);
  for (int d = 0; d < 2; d++) {
    Ref r = ref_forward(B, T, I, H, x.data(), K[d].data(), R[d].data(), bias[d].data(), nullptr, nullptr, pl, d == 1);
    check(d ? "bi y bw" : "bi y fw", y.data() + d * H, r.y, r.y.size(), 2e-5, 2 * H, H);
    check("bi h", ho[d].data(), r.h, r.h.size(), 2e-5);
    vector<float> dyd(B * T * H);
    for (int64_t i = 0; i < B * T; i++)
      for (int64_t j = 0; j < H; j++) dyd[i * H + j] = dy[i * 2 * H + d * H + j];
    RefG g = ref_backward(B, T, I, H, x.data(), K[d].data(), R[d].data(), nullptr, nullptr, pl, d == 1, r,
                          dyd.data(), nullptr, nullptr);
    for (size_t i = 0; i < dxsum.size(); i++) dxsum[i] += g.dx[i];
    check("bi dK", dK[d].data(), g.dK, g.dK.size(), 1e-4);
    check("bi dR", dR[d].data(), g.dR, g.dR.size(), 1e-4);
    check("bi db", db[d].data(), g.db, g.db.size(), 1e-4);
    check("bi dh0", dh0[d].data(), g.dh0, g.dh0.size(), 1e-4);
  }
  check("bi dx", dx.data(), dxsum, dxsum.size(), 1e-4);
}

void test_sgemm(Rng& rng, int64_t m, int64_t n, int64_t k, bool ta, bool tb, bool acc) {
  auto A = rng.vec(m * k, 1), Bm = rng.vec(k * n, 1), C = rng.vec(m * n, 1);
  vector<double> want(m * n);
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) {
      double s = acc ? C[i * n + j] : 0;
      for (int64_t p = 0; p < k; p++) s += (double)(ta ? A[p * m + i] : A[i * k + p]) * (tb ? Bm[j * k + p] : Bm[p * n + j]);
      want[i * n + j] = s;
    }
  sgemm(ta, tb, m, n, k, A.data(), ta ? m : k, Bm.data(), tb ? k : n, C.data(), n, acc);
  check("sgemm", C.data(), want, want.size(), 1e-5);
}

void run_tests() {
  for (int lvl = 0; lvl <= 2; lvl++) {
    if (!simd_supported((SimdLevel)lvl)) continue;
    simd_set((SimdLevel)lvl);
    for (int th : {1, 2, 3}) {
      threads_set(th);
      std::printf("%s, %d threads\n", simd_name(simd_active()), threads_get());
      Rng rng(42 + lvl * 10 + th);
      test_sgemm(rng, 1, 1, 1, false, false, false);
      test_sgemm(rng, 37, 53, 300, false, false, false);
      test_sgemm(rng, 300, 70, 129, true, false, true);
      test_sgemm(rng, 65, 200, 17, false, true, false);
      test_sgemm(rng, 130, 130, 260, true, true, true);
      test_sgemm(rng, 500, 9, 7, false, false, true);
      test_sgemm(rng, 10, 200, 300, false, false, true);  // few rows: B read in place, one tile
      test_sgemm(rng, 12, 77, 5, false, false, false);
      test_lstm(rng, 1, 1, 1, 1, false, false, false);
      test_lstm(rng, 1, 7, 5, 3, true, false, true);
      test_lstm(rng, 3, 5, 4, 16, false, true, true);
      test_lstm(rng, 9, 6, 13, 20, true, true, true);
      test_lstm(rng, 14, 4, 33, 17, false, false, true);
      test_lstm(rng, 20, 8, 16, 32, true, true, false);
      test_lstm(rng, 40, 3, 7, 5, false, true, false);
      // degenerate sizes: nothing to do, but no crash and well-defined outputs
      test_lstm(rng, 0, 3, 4, 5, false, true, true);
      test_lstm(rng, 2, 0, 4, 5, true, true, true);
      test_lstm(rng, 3, 4, 0, 5, false, true, true);
      test_lstm(rng, 3, 4, 2, 0, true, false, true);
      test_sgemm(rng, 5, 7, 0, false, false, false);
      test_bilstm(rng, 1, 4, 6, 8, false);
      test_bilstm(rng, 13, 5, 9, 19, true);
      test_bilstm(rng, 30, 4, 16, 16, false);
    }
  }
}

// Callers on several threads at once (the main thread and libuv pool threads in the addon), while another
// thread resizes the pool: every result must equal the single-caller one bit for bit, and nothing may hang.
void test_concurrent_callers() {
  Rng rng(11);
  const int64_t B = 30, T = 6, I = 20, H = 36, G = 4 * H;
  auto x = rng.vec(B * T * I, 1), K = rng.vec(I * G, 0.3f), R = rng.vec(H * G, 0.3f), bias = rng.vec(G, 0.5f);
  auto dy = rng.vec(B * T * H, 1);
  vector<int32_t> len(B);
  for (auto& l : len) l = (int32_t)rng.range(0, T);
  LstmShape s{B, T, I, H};
  auto run = [&](vector<float>& out) {
    vector<float> y(B * T * H), ho(B * H), co(B * H), ws(lstm_workspace_floats(s));
    LstmForwardArgs fa{};
    fa.s = s, fa.w = {K.data(), R.data(), bias.data()}, fa.x = x.data(), fa.lengths = len.data(), fa.y = y.data(),
    fa.y_ld = H, fa.h_out = ho.data(), fa.c_out = co.data(), fa.workspace = ws.data();
    lstm_forward(fa);
    vector<float> dx(B * T * I), dh0(B * H), dc0(B * H), dK(I * G), dR(H * G), db(G);
    LstmBackwardArgs ba{};
    ba.s = s, ba.w = fa.w, ba.x = x.data(), ba.lengths = len.data(), ba.y = y.data(), ba.y_ld = H,
    ba.workspace = ws.data(), ba.dy = dy.data(), ba.dx = dx.data(), ba.dh0 = dh0.data(), ba.dc0 = dc0.data(),
    ba.dkernel = dK.data(), ba.drecurrent = dR.data(), ba.dbias = db.data();
    lstm_backward(ba);
    out.clear();
    for (auto* v : {&y, &ho, &co, &dx, &dK, &dR, &db}) out.insert(out.end(), v->begin(), v->end());
  };
  threads_set(1);
  vector<float> want;
  run(want);
  threads_set(2);
  std::atomic<int> bad{0};
  std::atomic<bool> done{false};
  std::thread resizer([&] {
    int n = 1;
    while (!done.load()) threads_set(n = n % 3 + 1);
  });
  vector<std::thread> callers;
  for (int c = 0; c < 4; c++)
    callers.emplace_back([&] {
      vector<float> got;
      for (int i = 0; i < 30; i++) {
        run(got);
        if (got.size() != want.size() || std::memcmp(got.data(), want.data(), want.size() * 4)) bad++;
      }
    });
  for (auto& t : callers) t.join();
  done = true;
  resizer.join();
  threads_set(2);
  if (bad) {
    failures++;
    std::printf("  FAIL: %d concurrent results differ from the single-caller result\n", bad.load());
  }
}

// A NaN in x must reach the outputs of its sequence (never become a plausible number) and no other sequence.
void test_nan() {
  Rng rng(3);
  const int64_t B = 8, T = 3, I = 5, H = 20, G = 4 * H;
  auto x = rng.vec(B * T * I, 1), K = rng.vec(I * G, 0.3f), R = rng.vec(H * G, 0.3f), bias = rng.vec(G, 0.5f);
  x[(2 * T + 1) * I + 3] = std::nanf("");
  LstmShape s{B, T, I, H};
  vector<float> y(B * T * H), ho(B * H), co(B * H);
  LstmForwardArgs fa{};
  fa.s = s, fa.w = {K.data(), R.data(), bias.data()}, fa.x = x.data(), fa.y = y.data(), fa.y_ld = H,
  fa.h_out = ho.data(), fa.c_out = co.data();
  lstm_forward(fa);
  bool ok = true;
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < T; t++)
      for (int64_t j = 0; j < H; j++) ok &= std::isnan(y[(b * T + t) * H + j]) == (b == 2 && t >= 1);
  if (!ok) {
    failures++;
    std::printf("  FAIL: NaN in x did not propagate to exactly its sequence's later outputs\n");
  }
}

// ---- bit-identity across thread counts -----------------------------------------------------------------
// Every entry point, 1 vs 2 vs 3 threads: the same bits (work is split so that each output element is
// computed by one thread in a fixed order).
void test_threads_identical() {
  Rng rng(7);
  const int64_t B = 50, T = 7, I = 24, H = 40, G = 4 * H, V = 30;
  auto x = rng.vec(B * T * I, 1), emb = rng.vec(V * I, 1);
  vector<float> K[2], R[2], bias[2];
  for (int d = 0; d < 2; d++) K[d] = rng.vec(I * G, 0.3f), R[d] = rng.vec(H * G, 0.3f), bias[d] = rng.vec(G, 0.5f);
  vector<int32_t> len(B), tok(B * T);
  for (auto& l : len) l = (int32_t)rng.range(0, T);
  for (auto& t : tok) t = (int32_t)rng.range(0, V - 1);
  auto dy = rng.vec(B * T * 2 * H, 1), h0 = rng.vec(B * H, 1), c0 = rng.vec(B * H, 1);
  auto A = rng.vec(300 * 200, 1), Bm = rng.vec(200 * 260, 1);
  // A larger vocabulary: enough distinct tokens (~800) for the token table to be split between threads.
  const int64_t V2 = 1200;
  auto emb2 = rng.vec(V2 * I, 1);
  vector<int32_t> tok2(4 * B * T);
  for (auto& t : tok2) t = (int32_t)rng.range(0, V2 - 1);
  vector<int32_t> len2(4 * B);
  for (auto& l : len2) l = (int32_t)rng.range(0, T);
  vector<float> out[4];
  for (int th : {1, 2, 3}) {
    threads_set(th);
    LstmShape s{B, T, I, H};
    vector<float> all;
    auto keep = [&](const vector<float>& v) { all.insert(all.end(), v.begin(), v.end()); };
    {  // one direction, forward + backward, padded, with h0/c0
      vector<float> y(B * T * H), ho(B * H), co(B * H), ws(lstm_workspace_floats(s));
      LstmForwardArgs fa{};
      fa.s = s, fa.w = {K[0].data(), R[0].data(), bias[0].data()}, fa.x = x.data(), fa.h0 = h0.data(),
      fa.c0 = c0.data(), fa.lengths = len.data(), fa.reverse = true, fa.y = y.data(), fa.y_ld = H,
      fa.h_out = ho.data(), fa.c_out = co.data(), fa.workspace = ws.data();
      lstm_forward(fa);
      vector<float> dx(B * T * I), dh0(B * H), dc0(B * H), dK(I * G), dR(H * G), db(G);
      LstmBackwardArgs ba{};
      ba.s = s, ba.w = fa.w, ba.x = x.data(), ba.h0 = h0.data(), ba.c0 = c0.data(), ba.lengths = len.data(),
      ba.reverse = true, ba.y = y.data(), ba.y_ld = H, ba.workspace = ws.data(), ba.dy = dy.data(), ba.dx = dx.data(),
      ba.dh0 = dh0.data(), ba.dc0 = dc0.data(), ba.dkernel = dK.data(), ba.drecurrent = dR.data(), ba.dbias = db.data();
      lstm_backward(ba);
      for (auto* v : {&y, &ho, &co, &dx, &dh0, &dc0, &dK, &dR, &db}) keep(*v);
    }
    // bidirectional forward + backward: full length with every gradient; padded and weights only (no h0: the
    // rows of the first step are left out of drecurrent)
    for (bool padded : {false, true}) {
      vector<float> y(B * T * 2 * H), ho[2], co[2], ws[2], dx(B * T * I), dh0[2], dc0[2], dK[2], dR[2], db[2];
      LstmForwardArgs fa[2]{};
      LstmBackwardArgs ba[2]{};
      for (int d = 0; d < 2; d++) {
        ho[d].resize(B * H), co[d].resize(B * H), ws[d].resize(lstm_workspace_floats(s));
        dh0[d].resize(B * H), dc0[d].resize(B * H), dK[d].resize(I * G), dR[d].resize(H * G), db[d].resize(G);
        fa[d].s = s, fa[d].w = {K[d].data(), R[d].data(), bias[d].data()}, fa[d].x = x.data(), fa[d].reverse = d == 1,
        fa[d].y = y.data() + d * H, fa[d].y_ld = 2 * H, fa[d].h_out = ho[d].data(), fa[d].c_out = co[d].data(),
        fa[d].workspace = ws[d].data();
        ba[d].s = s, ba[d].w = fa[d].w, ba[d].x = x.data(), ba[d].reverse = d == 1, ba[d].y = y.data() + d * H,
        ba[d].y_ld = 2 * H, ba[d].workspace = ws[d].data(), ba[d].dy = dy.data() + d * H, ba[d].dx = dx.data(),
        ba[d].dx_accumulate = d == 1, ba[d].dh0 = dh0[d].data(), ba[d].dc0 = dc0[d].data(),
        ba[d].dkernel = dK[d].data(), ba[d].drecurrent = dR[d].data(), ba[d].dbias = db[d].data();
        if (padded)
          fa[d].lengths = ba[d].lengths = len.data(), ba[d].dx = ba[d].dh0 = ba[d].dc0 = nullptr;
      }
      bilstm_forward(fa[0], fa[1]);
      bilstm_backward(ba[0], ba[1]);
      keep(y), keep(dx);
      for (int d = 0; d < 2; d++) keep(ho[d]), keep(co[d]), keep(dK[d]), keep(dR[d]), keep(db[d]), keep(dh0[d]);
    }
    {  // bidirectional encoder over tokens
      vector<float> hh(B * 2 * H), cc(B * 2 * H);
      LstmEncodeArgs ea[2]{};
      for (int d = 0; d < 2; d++)
        ea[d].s = s, ea[d].w = {K[d].data(), R[d].data(), bias[d].data()}, ea[d].tokens = tok.data(),
        ea[d].embedding = emb.data(), ea[d].lengths = len.data(), ea[d].reverse = d == 1,
        ea[d].h_out = hh.data() + d * H, ea[d].c_out = cc.data() + d * H, ea[d].out_ld = 2 * H;
      bilstm_encode(ea[0], ea[1]);
      keep(hh), keep(cc);
    }
    {  // one direction over tokens, a table of many distinct tokens
      vector<float> hh(4 * B * H), cc(4 * B * H);
      LstmEncodeArgs ea{};
      ea.s = {4 * B, T, I, H}, ea.w = {K[1].data(), R[1].data(), bias[1].data()}, ea.tokens = tok2.data(),
      ea.embedding = emb2.data(), ea.lengths = len2.data(), ea.h_out = hh.data(), ea.c_out = cc.data(), ea.out_ld = H;
      lstm_encode(ea);
      keep(hh), keep(cc);
    }
    {
      vector<float> C(300 * 260);
      sgemm(false, false, 300, 260, 200, A.data(), 200, Bm.data(), 260, C.data(), 260, false);
      keep(C);
    }
    out[th] = all;
  }
  for (int th : {2, 3})
    if (out[1].size() != out[th].size() || std::memcmp(out[1].data(), out[th].data(), out[1].size() * 4) != 0) {
      failures++;
      std::printf("  FAIL: 1 and %d threads differ\n", th);
    }
}

// ---- benchmarks --------------------------------------------------------------------------------------------
// With "cpu" the clock is this thread's CPU time: with 1 kernel thread on a loaded machine (other jobs
// competing for the cores) that is the time the work would take on a core of its own.
bool cpu_clock = false;
double now_s() {
  if (cpu_clock) {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

template <class F>
double median_time(F&& f, int reps, double min_total = 0.3) {
  f();  // warm up
  vector<double> ts;
  double start = now_s();
  while ((int)ts.size() < reps || now_s() - start < min_total) {
    double t0 = now_s();
    f();
    ts.push_back(now_s() - t0);
    if (ts.size() > 100000) break;
  }
  std::sort(ts.begin(), ts.end());
  return ts[ts.size() / 2];
}

// only: "" for everything, else one of l1, w1f (W1 forward), train (W1 training step), w2, sgemm
void bench(const char* only) {
  auto want = [&](const char* w) { return !*only || !std::strcmp(only, w); };
  Rng rng(1);
  std::printf("simd %s, %d threads, %s products%s\n", simd_name(simd_active()), threads_get(),
              precision_active() == Precision::Bf16 ? "bf16" : "fp32",
              precision_active() == Precision::Bf16 ? (std::string(" on ") + bf16_instructions()).c_str() : "");
  // W1: BiLSTM I=128 H=128 T=10 B=256 (+ Dense 256→128 on every step, as a GEMM)
  for (int64_t B : {256, 1}) {
    if (B == 1 ? !want("l1") : !(want("w1f") || want("train"))) continue;
    const int64_t T = 10, I = 128, H = 128, G = 4 * H;
    auto x = rng.vec(B * T * I, 1);
    vector<float> K[2], R[2], bias[2];
    for (int d = 0; d < 2; d++) K[d] = rng.vec(I * G, 0.1f), R[d] = rng.vec(H * G, 0.1f), bias[d] = rng.vec(G, 0.1f);
    LstmShape s{B, T, I, H};
    vector<float> y(B * T * 2 * H), ho[2], co[2], ws[2];
    auto dy = rng.vec(B * T * 2 * H, 1);
    LstmForwardArgs fa[2]{};
    for (int d = 0; d < 2; d++) {
      ho[d].resize(B * H), co[d].resize(B * H), ws[d].resize(lstm_workspace_floats(s));
      fa[d].s = s, fa[d].w = {K[d].data(), R[d].data(), bias[d].data()}, fa[d].x = x.data(), fa[d].reverse = d == 1,
      fa[d].y = y.data() + d * H, fa[d].y_ld = 2 * H, fa[d].h_out = ho[d].data(), fa[d].c_out = co[d].data();
    }
    double t = B == 1 || want("w1f") ? median_time([&] { bilstm_forward(fa[0], fa[1]); }, 20) : 1;
    const double flops = 2.0 * 2 * B * T * G * (I + H);
    if (B == 1)
      std::printf("L1  bilstm forward B=1: %.1f us/call (%.1f GFLOP/s)\n", t * 1e6, flops / t * 1e-9);
    else
      std::printf("W1  bilstm forward B=%ld: %.0f seq/s (%.1f GFLOP/s)\n", (long)B, B / t, flops / t * 1e-9);
    if (B == 1 || !want("train")) continue;
    for (int d = 0; d < 2; d++) fa[d].workspace = ws[d].data();
    vector<float> dx(B * T * I), dh0[2], dc0[2], dK[2], dR[2], db[2];
    LstmBackwardArgs ba[2]{};
    for (int d = 0; d < 2; d++) {
      dh0[d].resize(B * H), dc0[d].resize(B * H), dK[d].resize(I * G), dR[d].resize(H * G), db[d].resize(G);
      ba[d].s = s, ba[d].w = fa[d].w, ba[d].x = x.data(), ba[d].reverse = d == 1, ba[d].y = y.data() + d * H,
      ba[d].y_ld = 2 * H, ba[d].workspace = ws[d].data(), ba[d].dy = dy.data() + d * H, ba[d].dx = dx.data(),
      ba[d].dx_accumulate = d == 1, ba[d].dh0 = dh0[d].data(), ba[d].dc0 = dc0[d].data(),
      ba[d].dkernel = dK[d].data(), ba[d].drecurrent = dR[d].data(), ba[d].dbias = db[d].data();
    }
    // training step: forward with workspace + backward + the Dense(256→128) layer forward and backward on the
    // last step's output (3 small GEMMs)
    auto Wd = rng.vec(2 * H * 128, 0.1f);
    vector<float> out(B * 128), dWd(2 * H * 128), dlast(B * 2 * H);
    double tt = median_time(
        [&] {
          bilstm_forward(fa[0], fa[1]);
          sgemm(false, false, B, 128, 2 * H, y.data() + (T - 1) * 2 * H, T * 2 * H, Wd.data(), 128, out.data(), 128, false);
          sgemm(true, false, 2 * H, 128, B, y.data() + (T - 1) * 2 * H, T * 2 * H, out.data(), 128, dWd.data(), 128, false);
          sgemm(false, true, B, 2 * H, 128, out.data(), 128, Wd.data(), 128, dlast.data(), 2 * H, false);
          bilstm_backward(ba[0], ba[1]);
        },
        10);
    std::printf("W1  training step B=%ld: %.0f seq/s (%.1f GFLOP/s LSTM only)\n", (long)B, B / tt, 3 * flops / tt * 1e-9);
    double tb = median_time([&] { bilstm_backward(ba[0], ba[1]); }, 10);
    std::printf("    of which bilstm backward: %.2f ms, forward (training) %.2f ms\n", tb * 1e3, (tt - tb) * 1e3);
  }
  if (want("w2")) {  // W2 encoder: tokens (vocab 2000) → E=64 → LSTM H=128, T=24, B=128
    const int64_t B = 128, T = 24, E = 64, H = 128, G = 4 * H, V = 2000;
    auto emb = rng.vec(V * E, 1), K = rng.vec(E * G, 0.1f), R = rng.vec(H * G, 0.1f), bias = rng.vec(G, 0.1f);
    vector<int32_t> tok(B * T), len(B);
    for (auto& t : tok) t = (int32_t)rng.range(0, V - 1);
    for (auto& l : len) l = (int32_t)rng.range(T / 2, T);
    vector<float> ho(B * H), co(B * H);
    LstmEncodeArgs ea{};
    ea.s = {B, T, E, H}, ea.w = {K.data(), R.data(), bias.data()}, ea.tokens = tok.data(), ea.embedding = emb.data(),
    ea.h_out = ho.data(), ea.c_out = co.data(), ea.out_ld = H;
    double t = median_time([&] { lstm_encode(ea); }, 20);
    std::printf("W2  encode B=%ld T=%ld (full length): %.0f sent/s (%.1f GFLOP/s)\n", (long)B, (long)T, B / t,
                2.0 * B * T * G * (E + H) / t * 1e-9);
    ea.lengths = len.data();
    t = median_time([&] { lstm_encode(ea); }, 20);
    std::printf("W2  encode, lengths T/2..T: %.0f sent/s\n", B / t);
  }
  if (want("sgemm")) {
    const int64_t n = 1024;
    auto A = rng.vec(n * n, 1), Bm = rng.vec(n * n, 1);
    vector<float> C(n * n);
    double t = median_time([&] { sgemm(false, false, n, n, n, A.data(), n, Bm.data(), n, C.data(), n, false); }, 5);
    std::printf("sgemm 1024^3: %.1f GFLOP/s\n", 2.0 * n * n * n / t * 1e-9);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && !std::strcmp(argv[1], "bench")) {
    if (argc > 2) {
      for (int l = 0; l <= 2; l++)
        if (!std::strcmp(argv[2], simd_name((SimdLevel)l))) simd_set((SimdLevel)l);
    }
    if (argc > 3) threads_set(std::atoi(argv[3]));
    cpu_clock = argc > 4 && !std::strcmp(argv[4], "cpu");
    if (argc > 6 && !std::strcmp(argv[6], "bf16")) precision_set(Precision::Bf16);
    if (cpu_clock) std::printf("(thread CPU time)\n");
    bench(argc > 5 && std::strcmp(argv[5], "all") ? argv[5] : "");
    return 0;
  }
  verbose = argc > 1 && !std::strcmp(argv[1], "-v");
  run_tests();
  for (int lvl = 0; lvl <= 2; lvl++) {
    if (!simd_supported((SimdLevel)lvl)) continue;
    simd_set((SimdLevel)lvl);
    test_threads_identical();
    test_nan();
    test_concurrent_callers();
  }
  std::printf(failures ? "%d FAILURES\n" : "all passed\n", failures);
  return failures ? 1 : 0;
}
