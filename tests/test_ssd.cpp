// Stage 9: the state space duality. The recurrence (X1) is the truth; the matrix view (X2), the
// chunked SSD (X3) for every chunk length, the float paths, step mode and the Mamba-2 block's
// two modes are compared with it, and the recurrence itself with stage 7's selective scan
// (the same model written with a diagonal A of equal entries).
#include <cmath>
#include <random>

#include "helpers.hpp"
#include "ssm/selective.hpp"
#include "ssm/ssd.hpp"

using namespace ssm;
using test::error_of;
using test::rel;

namespace {

SsdShape shape(int batch, int L, int H, int P, int N, int G) {
  SsdShape s;
  s.batch = batch;
  s.L = L;
  s.H = H;
  s.P = P;
  s.N = N;
  s.G = G;
  return s;
}

}  // namespace

TEST_CASE("ssd: the recurrence equals stage 7's selective scan with A_{d,n} = A_h for all n") {
  SsdParams<double> p;
  SsdInputs<double> in;
  random_ssd_problem(shape(2, 300, 3, 5, 8, 1), 1, p, in, /*initial_state=*/true);
  const auto ref = ssd_reference(p, in);
  ScanParams<double> sp;
  ScanInputs<double> si;
  ssd_as_selective_scan(p, in, sp, si);
  const auto s7 = selective_scan_reference(sp, si);
  // Two double loops summing the same terms in the same order up to the layout: rounding only.
  CHECK(rel(ssd_from_scan_layout(s7.y, 2, 300, 15), ref.y) < 1e-13);
  CHECK(rel(s7.h_last, ref.h_last) < 1e-13);
}

TEST_CASE("ssd: y = M x, the matrix view (X2), equals the recurrence") {
  SsdParams<double> p;
  SsdInputs<double> in;
  random_ssd_problem(shape(2, 257, 3, 4, 6, 3), 2, p, in);
  p.D_skip.clear();  // M carries no skip term
  const auto ref = ssd_reference(p, in);
  const int L = in.L, H = p.H, P = p.P;
  for (int b = 0; b < in.batch; ++b)
    for (int h = 0; h < H; ++h) {
      const Mat M = ssd_matrix(p, in, b, h);
      CHECK(M.isLowerTriangular(0.0));
      Mat X(L, P), Yref(L, P);
      for (int t = 0; t < L; ++t)
        for (int i = 0; i < P; ++i) {
          X(t, i) = in.x[((std::size_t(b) * L + t) * H + h) * P + i];
          Yref(t, i) = ref.y[((std::size_t(b) * L + t) * H + h) * P + i];
        }
      // Sums of ≤ L = 257 terms of size O(1) in double: ~L·eps relative.
      CHECK_CLOSE(M * X, Yref, 1e-13, 1e-11);
    }
}

TEST_CASE("ssd: blocks of M below the diagonal have rank <= N (semiseparable), a random one not") {
  SsdParams<double> p;
  SsdInputs<double> in;
  random_ssd_problem(shape(1, 192, 1, 1, 5, 1), 3, p, in);
  // Slow decay so that no singular value is lost to e^{ΣΔA} underflowing: rank exactly N.
  p.A[0] = -0.05;
  const Mat M = ssd_matrix(p, in, 0, 0);
  CHECK(ssd_max_offdiag_rank(M, 32) == p.N);
  // A random lower-triangular matrix of the same size: its 96×96 corner has full rank.
  std::mt19937_64 rng(4);
  std::normal_distribution<double> nrm;
  Mat R = Mat::Zero(192, 192);
  for (int t = 0; t < 192; ++t)
    for (int s = 0; s <= t; ++s) R(t, s) = nrm(rng);
  CHECK(ssd_max_offdiag_rank(R, 32) == 96);
}

TEST_CASE("ssd: chunked SSD (X3) equals the recurrence in double for Q = 1, 7, 64, L, 2L") {
  SsdParams<double> p;
  SsdInputs<double> in;
  random_ssd_problem(shape(2, 200, 4, 6, 10, 2), 5, p, in, true);
  const auto ref = ssd_reference(p, in);
  for (int Q : {1, 7, 64, 200, 400}) {
    CAPTURE(Q);
    SsdOutputs<double> o;
    ssd_chunked(p, in, o, Q, 2);
    // Same terms, summed in another order (inside a chunk by a GEMM, across chunks through the
    // state): rounding of O(L) sums in double.
    CHECK(rel(o.y, ref.y) < 1e-12);
    CHECK(rel(o.h_last, ref.h_last) < 1e-12);
  }
}

TEST_CASE("ssd: chunked SSD and the sequential scan in float, at a Mamba-2-like size") {
  SsdParams<double> p;
  SsdInputs<double> in;
  random_ssd_problem(shape(1, 2048, 4, 32, 64, 1), 6, p, in, true);
  const auto ref = ssd_reference(p, in);
  const auto pf = cast_params<float>(p);
  const auto inf = cast_inputs<float>(in);
  for (int Q : {16, 64, 256}) {
    CAPTURE(Q);
    SsdOutputs<float> o;
    ssd_chunked(pf, inf, o, Q, 2);
    // Float rounding (6e-8) of sums of ~Q + N terms per output plus the carried state's
    // O(L/Q) products; the decays are exp of differences of cumulative sums of ≤ Q terms.
    // Measured ~2e-6; 5e-5 leaves room and would still catch any wrong term (O(1) error).
    CHECK(rel(o.y, ref.y) < 5e-5);
    CHECK(rel(o.h_last, ref.h_last) < 5e-5);
  }
  SsdOutputs<float> s;
  ssd_sequential(pf, inf, s, 2);
  CHECK(rel(s.y, ref.y) < 5e-5);
  CHECK(rel(s.h_last, ref.h_last) < 5e-5);
}

TEST_CASE("ssd: step mode token by token equals the scan, final state included") {
  SsdParams<double> p;
  SsdInputs<double> in;
  random_ssd_problem(shape(2, 100, 4, 3, 5, 2), 7, p, in, true);
  const auto ref = ssd_reference(p, in);
  SsdOutputs<double> o;
  ssd_stepwise(p, in, o);
  // The recurrence one token at a time, its sums over n vectorized: rounding only.
  CHECK(rel(o.y, ref.y) < 1e-13);
  CHECK(rel(o.h_last, ref.h_last) < 1e-13);
}

TEST_CASE("ssd: linear attention is SSD with a = 1 (A = 0)") {
  SsdParams<double> p;
  SsdInputs<double> in;
  random_ssd_problem(shape(1, 80, 2, 3, 4, 2), 8, p, in);
  p.A.assign(2, 0.0);
  p.delta_softplus = false;
  p.delta_bias.clear();
  p.D_skip.clear();
  std::fill(in.delta.begin(), in.delta.end(), 1.0);
  const auto ref = ssd_reference(p, in);
  // y_t = Σ_{s≤t} (q_t·k_s) v_s with q = C, k = B, v = x, written out (no state).
  const int L = in.L, H = 2, P = 3, N = 4;
  std::vector<double> y(ref.y.size(), 0.0);
  for (int h = 0; h < H; ++h)
    for (int t = 0; t < L; ++t)
      for (int s = 0; s <= t; ++s) {
        double qk = 0;
        for (int n = 0; n < N; ++n)
          qk += in.C[(std::size_t(t) * 2 + h) * N + n] * in.B[(std::size_t(s) * 2 + h) * N + n];
        for (int i = 0; i < P; ++i)
          y[(std::size_t(t) * H + h) * P + i] += qk * in.x[(std::size_t(s) * H + h) * P + i];
      }
  CHECK(rel(y, ref.y) < 1e-13);
  SsdOutputs<double> o;
  ssd_chunked(p, in, o, 16);
  CHECK(rel(o.y, ref.y) < 1e-13);
}

TEST_CASE("ssd: the flop count of the chunked algorithm") {
  // One chunk (Q ≥ L): 2L²(N + P) for the quadratic form, 4LNP for the state in and out.
  CHECK(ssd_chunked_flops(1, 100, 1, 3, 5, 100) == 2.0 * 100 * 100 * 8 + 4.0 * 100 * 5 * 3);
  // Q = 30 over L = 100: chunks of 30, 30, 30, 10, times batch·H.
  const double per = 3 * (2.0 * 900 * 8 + 4.0 * 30 * 15) + (2.0 * 100 * 8 + 4.0 * 10 * 15);
  CHECK(ssd_chunked_flops(2, 100, 3, 3, 5, 30) == 6 * per);
}

TEST_CASE("ssd: the Mamba-2 block, step mode equals scan mode, and a scan continues a scan") {
  Mamba2Config cfg;
  cfg.d_model = 32;
  cfg.d_state = 16;
  cfg.headdim = 16;  // 4 heads
  cfg.ngroups = 2;
  cfg.chunk = 24;
  const int L = 70, dm = cfg.d_model;
  std::mt19937_64 rng(9);
  std::normal_distribution<double> nrm;
  Signals<double> U(L, dm);
  for (int t = 0; t < L; ++t)
    for (int c = 0; c < dm; ++c) U(t, c) = nrm(rng);
  const Mamba2Block<double> blk(cfg, 3);
  Signals<double> Y;
  auto st_scan = blk.initial_state();
  blk.forward(U, Y, &st_scan, 2);
  auto st = blk.initial_state();
  Signals<double> Ys(L, dm);
  for (int t = 0; t < L; ++t) blk.step(&U(t, 0), &Ys(t, 0), st);
  CHECK_CLOSE(Ys, Y, 1e-12, 1e-10);
  CHECK(rel(st.ssm, st_scan.ssm) < 1e-12);
  CHECK_CLOSE(st.conv, st_scan.conv, 0.0, 0.0);
  // The first 41 tokens by scan, the rest by a second scan from the state: the whole scan.
  auto st2 = blk.initial_state();
  Signals<double> Y1, Y2;
  blk.forward(U.topRows(41), Y1, &st2);
  blk.forward(U.bottomRows(L - 41), Y2, &st2);
  CHECK_CLOSE(Y1, Y.topRows(41), 1e-12, 1e-10);
  CHECK_CLOSE(Y2, Y.bottomRows(L - 41), 1e-12, 1e-10);
  // In float against the double block (same seed, same weights to float rounding).
  const Mamba2Block<float> bf(cfg, 3);
  Signals<float> Yf;
  bf.forward(U.cast<float>(), Yf);
  CHECK(test::rel_err(Yf, Y) < 1e-4);  // float weights and activations through 5 layers of math
}

TEST_CASE("ssd: bad input is a one-line error naming the argument") {
  SsdParams<double> p;
  SsdInputs<double> in;
  random_ssd_problem(shape(1, 10, 4, 2, 3, 2), 1, p, in);
  SsdOutputs<double> o;
  CHECK(error_of([&] { ssd_chunked(p, in, o, 0); }).find("chunk length Q = 0") != std::string::npos);
  auto q = p;
  q.G = 3;
  CHECK(error_of([&] { validate(q); }).find("groups G = 3") != std::string::npos);
  q = p;
  q.A[1] = 0.5;
  CHECK(error_of([&] { validate(q); }).find("A[1] = 0.5") != std::string::npos);
  auto bad = in;
  bad.x[3] = NAN;
  CHECK(error_of([&] { validate(p, bad); }).find("x[3]") != std::string::npos);
  bad = in;
  bad.B.pop_back();
  CHECK(error_of([&] { validate(p, bad, false); }).find("B has") != std::string::npos);
  Mamba2Config cfg;
  cfg.headdim = 48;  // d_inner = 128
  CHECK(error_of([&] { Mamba2Block<double>(cfg, 1); }).find("headdim = 48") != std::string::npos);
  cfg = Mamba2Config{};
  cfg.ngroups = 3;  // 4 heads
  CHECK(error_of([&] { Mamba2Block<double>(cfg, 1); }).find("ngroups = 3") != std::string::npos);
}
