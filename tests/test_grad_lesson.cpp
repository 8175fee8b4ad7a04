// Stage 8a's lesson (ssm/grad_lesson.hpp, docs/MATH.md G20, G21): the tanh RNN's backprop
// through time against central differences of its forward (every gradient) and, in its linear
// regime, against c W^k U from matrix powers; the linear models' lag gradient against stage 4's
// kernel K̄ and the closed form e^{A ΣΔ}; the eigenvalue bounds; bad input.
#include <cmath>
#include <random>

#include "helpers.hpp"
#include "ssm/continuous.hpp"
#include "ssm/convolution.hpp"
#include "ssm/grad_lesson.hpp"
#include "ssm/recurrent.hpp"

using namespace ssm;
using namespace ssm::grad;

namespace {

Vec normal_vec(int n, std::uint64_t seed, double scale = 1.0) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nrm;
  Vec v(n);
  for (int i = 0; i < n; ++i) v(i) = scale * nrm(rng);
  return v;
}

// ℓ = Σ_t dy_t y_t: the loss whose gradients tanh_rnn_backward returns.
double loss(const TanhRnn& m, const Vec& u, const Vec& dy, const Vec& h0) {
  return dy.dot(tanh_rnn_forward(m, u, h0).y);
}

// Central difference of ℓ in one scalar x (a reference into m, u or h0), step h.
template <class F>
double central(double& x, double h, F&& f) {
  const double x0 = x;
  x = x0 + h;
  const double lp = f();
  x = x0 - h;
  const double lm = f();
  x = x0;
  return (lp - lm) / (2 * h);
}

Vec diagonal_A(int N) {
  Vec A(N);
  for (int n = 0; n < N; ++n) A(n) = -(n + 1.0);
  return A;
}

}  // namespace

TEST_CASE("tanh RNN: BPTT (G20) matches central differences for du, dW, dU, dc and dh0") {
  const int N = 5, L = 13;
  const auto m0 = random_tanh_rnn(N, 0.95, 3);
  const Vec u = normal_vec(L, 11), dy = normal_vec(L, 12), h0 = normal_vec(N, 13, 0.5);
  const auto fwd = tanh_rnn_forward(m0, u, h0);
  const auto g = tanh_rnn_backward(m0, u, fwd, dy, h0);
  // Step 1e-5: truncation h²·ℓ'''/6 ~ 1e-11 for entries of order one, rounding ε·|ℓ|/h ~ 1e-11;
  // 1e-8 absolute + relative leaves room and still catches a wrong or missing term (O(1e-2)).
  const double h = 1e-5, tol = 1e-8;
  TanhRnn m = m0;
  Vec uu = u, hh = h0;
  auto f = [&] { return loss(m, uu, dy, hh); };
  Vec du(L), dU(N), dh0(N);
  Mat dW(N, N);
  RowVec dc(N);
  for (int t = 0; t < L; ++t) du(t) = central(uu(t), h, f);
  for (int i = 0; i < N; ++i) {
    dU(i) = central(m.U(i), h, f);
    dc(i) = central(m.c(i), h, f);
    dh0(i) = central(hh(i), h, f);
    for (int j = 0; j < N; ++j) dW(i, j) = central(m.W(i, j), h, f);
  }
  for (auto [name, c] : {std::pair{"du", test::allclose(g.du, du, tol, tol)},
                         {"dW", test::allclose(g.dW, dW, tol, tol)},
                         {"dU", test::allclose(g.dU, dU, tol, tol)},
                         {"dc", test::allclose(g.dc, dc, tol, tol)},
                         {"dh0", test::allclose(g.dh0, dh0, tol, tol)}}) {
    INFO(name << ": " << c.why);
    CHECK(c.ok);
  }
}

TEST_CASE("tanh RNN: the lag gradient is BPTT's du reversed and agrees with differences") {
  const int N = 8, L = 40;
  const auto m = random_tanh_rnn(N, 0.9, 5);
  const Vec u = normal_vec(L, 21);
  const Vec g = tanh_rnn_lag_gradient(m, u);
  const std::vector<int> lags = {0, 1, 2, 7, 20, 39};
  const Vec fd = tanh_rnn_lag_gradient_fd(m, u, lags, 1e-5);
  for (std::size_t i = 0; i < lags.size(); ++i) {
    INFO("lag " << lags[i]);
    CHECK(std::fabs(fd(Eigen::Index(i)) - g(lags[i])) <= 1e-9 + 1e-7 * std::fabs(g(lags[i])));
  }
}

TEST_CASE("tanh RNN: in its linear regime the gradient is c W^k U; tanh' only shrinks it") {
  // Inputs of size 1e-7 keep every pre-activation tiny: tanh(a) = a(1 − a²/3 + …), so the
  // gradient is the linear RNN's c W^k U up to a relative 1e-13. The independent truth here is
  // plain matrix powers.
  const int N = 6, L = 30;
  const auto m = random_tanh_rnn(N, 0.8, 7);
  const Vec u = normal_vec(L, 31, 1e-7);
  const Vec g = tanh_rnn_lag_gradient(m, u);
  Vec lin(L);
  Vec v = m.U;
  for (int k = 0; k < L; ++k) {
    lin(k) = m.c.dot(v);
    v = m.W * v;
  }
  const auto c = test::allclose(g, lin, 1e-13 * lin.cwiseAbs().maxCoeff(), 1e-10);
  INFO(c.why);
  CHECK(c.ok);
  // With inputs of order one the states leave the linear part and the gradient is smaller in
  // the far lags: the mean tanh' over the window is below one.
  const Vec u1 = normal_vec(L, 32, 1.0);
  const auto fwd = tanh_rnn_forward(m, u1);
  CHECK(mean_tanh_slope(fwd, 0, L - 1) < 0.95);
  CHECK(mean_tanh_slope(tanh_rnn_forward(m, u), 0, L - 1) == doctest::Approx(1.0).epsilon(1e-12));
}

TEST_CASE("random_tanh_rnn: W has spectral radius rho") {
  for (double rho : {0.5, 0.9, 1.0, 2.0}) {
    const auto m = random_tanh_rnn(12, rho, 9);
    CHECK(std::fabs(spectral_radius(m.W) - rho) <= 1e-12 * rho);
  }
}

TEST_CASE(
    "LTI scan: the lag gradient is stage 4's kernel K̄ and its tail follows the slowest mode") {
  const int N = 8, L = 300;
  const double dt = 0.05;
  const Vec A = diagonal_A(N);
  const Vec u = normal_vec(L, 41);
  ScanParams<double> p;
  ScanInputs<double> in;
  lti_scan_problem(A, dt, u, p, in);
  const auto g = scan_lag_gradient(p, in);
  const Model dense(Mat(A.asDiagonal()), Vec::Ones(N), RowVec::Ones(N));
  const Vec K = kernel(make_ssm(dense, dt, Method::ZOH), std::size_t(L));
  // Independent paths (the backward's adjoint vs repeated mat-vec): L·ε of max |K̄|.
  const auto c = test::allclose(g.du, K, 1e-13 * K.cwiseAbs().maxCoeff(), 0.0);
  INFO(c.why);
  CHECK(c.ok);
  // N = 1: the slowest mode is the whole gradient.
  ScanParams<double> p1;
  ScanInputs<double> i1;
  lti_scan_problem(Vec::Constant(1, -0.7), dt, u, p1, i1);
  const auto c1 =
      test::allclose(slowest_mode_lag_gradient(p1, i1), scan_lag_gradient(p1, i1).du, 1e-15, 1e-13);
  INFO(c1.why);
  CHECK(c1.ok);
  // The tail rate: within the G21 bound of A_s Δ, and the bound shrinks as k0 grows.
  const Vec delta = scan_deltas(p, in);
  for (int k0 : {20, 100, 200}) {
    const auto s = stretch_decay(g.du, delta, A, k0, L - 1);
    const double rate = std::log(s.measured) / (L - 1 - k0);
    const double bound = lti_tail_log_rate_bound(A, dt, k0, L - 1);
    INFO("k0 " << k0 << ": rate " << rate << ", bound " << bound);
    CHECK(std::fabs(rate - A.maxCoeff() * dt) <= bound + 1e-13);
    CHECK(s.outside() == 0.0);
  }
  CHECK(lti_tail_log_rate_bound(A, dt, 200, L - 1) <
        1e-3 * lti_tail_log_rate_bound(A, dt, 20, L - 1));
}

TEST_CASE("gated scan: Δ is switched by the marker; held between gates, cut across them") {
  const int N = 4, L = 80;
  const Vec A = diagonal_A(N);
  const Vec u = normal_vec(L, 51);
  const std::vector<int> gates = {20, 50};  // times t
  ScanParams<double> p;
  ScanInputs<double> in;
  gated_scan_problem(A, gates, 1e-3, 4.0, u, p, in);
  const Vec d = scan_deltas(p, in);
  for (int t = 0; t < L; ++t) {
    const double want = (t == 20 || t == 50) ? 4.0 : 1e-3;
    CHECK(std::fabs(d(t) - want) <= 1e-12 * want);
  }
  const auto g = scan_lag_gradient(p, in);
  // The closed form of G21 with B = C = 1: g_k = Σ_n e^{A_n Σ_{s<r≤L−1} Δ_r} (e^{Δ_s A_n} − 1)/A_n.
  Vec truth(L);
  double elapsed = 0;
  for (int t = L - 1; t >= 0; --t) {
    double v = 0;
    for (int n = 0; n < N; ++n) v += std::exp(A(n) * elapsed) * std::expm1(d(t) * A(n)) / A(n);
    truth(L - 1 - t) = v;
    elapsed += d(t);
  }
  const auto c = test::allclose(g.du, truth, 1e-15, 1e-12);
  INFO(c.why);
  CHECK(c.ok);
  // Lag of t = 50 is 29; of t = 20 is 59. Held from lag 0 to 28, cut across 29.
  const auto held = stretch_decay(g.du, d, A, 0, 28);
  CHECK(held.outside() == 0.0);
  CHECK(held.measured > 0.9);
  const auto cut = stretch_decay(g.du, d, A, 28, 30);
  CHECK(cut.outside() == 0.0);
  CHECK(cut.measured <= std::exp(-4.0) * (1 + 1e-12));
  // Differences agree with the backward at a few lags (y is linear in u: exact to rounding).
  const std::vector<int> lags = {0, 28, 29, 30, 59, 79};
  const auto fd = scan_lag_gradient_fd(p, in, lags, 1e-5);
  for (std::size_t i = 0; i < lags.size(); ++i) {
    INFO("lag " << lags[i]);
    CHECK(std::fabs(fd.du(Eigen::Index(i)) - g.du(lags[i])) <= 1e-9);
    CHECK(std::fabs(fd.ddelta(Eigen::Index(i)) - g.ddelta(lags[i])) <= 1e-7);
  }
}

TEST_CASE("log_slope recovers a geometric rate, skipping zeros") {
  Vec g(50);
  for (int k = 0; k < 50; ++k) g(k) = (k % 7 == 3) ? 0.0 : 2.0 * std::pow(-0.8, k);
  CHECK(std::fabs(log_slope(g, 5, 45) - std::log(0.8)) <= 1e-12);
  CHECK(std::isnan(log_slope(Vec::Zero(10), 0, 9)));
  Vec h(6);
  h << 1.0, 1e-100, 1e-200, 1e-260, 1e-100, 0.0;  // leading entries above the floor only
  CHECK(representable_lags(h) == 3);
  CHECK(representable_lags(h, 1e-300) == 5);
}

TEST_CASE("grad lesson: bad input is refused with a message naming it") {
  const auto m = random_tanh_rnn(3, 0.9, 1);
  auto bad = m;
  bad.W = Mat::Zero(3, 2);
  CHECK_THROWS_WITH_AS(tanh_rnn_forward(bad, Vec::Ones(4)), doctest::Contains("W is 3×2"), Error);
  bad = m;
  bad.U = Vec::Ones(2);
  CHECK_THROWS_WITH_AS(tanh_rnn_forward(bad, Vec::Ones(4)), doctest::Contains("U has 2 entries"),
                       Error);
  Vec u = Vec::Ones(4);
  u(2) = NAN;
  CHECK_THROWS_WITH_AS(tanh_rnn_forward(m, u), doctest::Contains("u: entry 2"), Error);
  const auto fwd = tanh_rnn_forward(m, Vec::Ones(4));
  CHECK_THROWS_WITH_AS(tanh_rnn_backward(m, Vec::Ones(4), fwd, Vec::Ones(3)),
                       doctest::Contains("dy has 3 entries, expected L = 4"), Error);
  CHECK_THROWS_WITH_AS(tanh_rnn_forward(m, Vec::Ones(4), Vec::Ones(2)),
                       doctest::Contains("h0 has 2 entries"), Error);
  CHECK_THROWS_WITH_AS(random_tanh_rnn(3, NAN, 1), doctest::Contains("rho"), Error);
  ScanParams<double> p;
  ScanInputs<double> in;
  CHECK_THROWS_WITH_AS(lti_scan_problem(Vec::Constant(2, 0.5), 0.1, Vec::Ones(8), p, in),
                       doctest::Contains("A: entry 0 is 0.5"), Error);
  CHECK_THROWS_WITH_AS(lti_scan_problem(Vec::Constant(2, -1), 0.0, Vec::Ones(8), p, in),
                       doctest::Contains("dt must be finite"), Error);
  CHECK_THROWS_WITH_AS(gated_scan_problem(Vec::Constant(2, -1), {9}, 1e-3, 3, Vec::Ones(8), p, in),
                       doctest::Contains("gate at t = 9 is outside"), Error);
  CHECK_THROWS_WITH_AS(
      gated_scan_problem(Vec::Constant(2, -1), {1}, 1e-3, INFINITY, Vec::Ones(8), p, in),
      doctest::Contains("delta_gate"), Error);
  gated_scan_problem(Vec::Constant(2, -1), {3}, 1e-3, 3, Vec::Ones(8), p, in);
  const Vec d = scan_deltas(p, in), g = scan_lag_gradient(p, in).du;
  CHECK_THROWS_WITH_AS(stretch_decay(g, d, Vec::Constant(2, -1), 4, 6),
                       doctest::Contains("Δ differs"), Error);  // lag 4 is the gate (t = 3)
  CHECK_THROWS_WITH_AS(stretch_decay(g, d, Vec::Constant(2, -1), 5, 5),
                       doctest::Contains("0 <= k0 < k1 < L"), Error);
}
