// Stage 2: closed forms, the GBT family, convergence orders and stability thresholds.
#include <cmath>
#include <random>
#include <unsupported/Eigen/MatrixFunctions>

#include "helpers.hpp"
#include "ssm/discretize.hpp"

using namespace ssm;

TEST_CASE("Euler of a scalar is 1 - a dt (D1)") {
  const Discretized d = discretize(Mat::Constant(1, 1, -3.0), Vec::Constant(1, 2.0), 0.1, Method::Euler);
  CHECK(std::fabs(d.Ab(0, 0) - (1.0 - 0.3)) < 1e-16);
  CHECK(std::fabs(d.Bb(0) - 0.2) < 1e-16);
}

TEST_CASE("ZOH of a diagonal A is exp(lambda dt) and B̄ = (e^{lambda dt} - 1)/lambda B (D5)") {
  Vec lam(4);
  lam << -0.5, -2.0, -7.0, 0.3;
  Vec B(4);
  B << 1.0, -2.0, 0.5, 3.0;
  const double dt = 0.37;
  const Discretized d = discretize(Mat(lam.asDiagonal()), B, dt, Method::ZOH);
  Mat wantA = Mat::Zero(4, 4);
  Vec wantB(4);
  for (int i = 0; i < 4; ++i) {
    wantA(i, i) = std::exp(lam(i) * dt);
    wantB(i) = std::expm1(lam(i) * dt) / lam(i) * B(i);
  }
  // Padé-based expm of an (N+1)×(N+1) matrix: accurate to a few ulps of its norm.
  CHECK_CLOSE(d.Ab, wantA, 1e-15, 1e-14);
  CHECK_CLOSE(d.Bb, wantB, 1e-15, 1e-14);
}

TEST_CASE("bilinear of a 2x2 matches the hand-worked result (D3)") {
  // A = [[0, 1], [−2, −3]], Δ = 0.5: I − Δ/2·A = [[1, −1/4], [1/2, 7/4]] (det 15/8),
  // Ā = (I − Δ/2 A)⁻¹(I + Δ/2 A) = [[13, 4], [−8, 1]] / 15,  B̄ = (I − Δ/2 A)⁻¹ Δ e₂ = [1, 4] / 15.
  Mat A(2, 2);
  A << 0, 1, -2, -3;
  const Discretized d = discretize(A, Vec::Unit(2, 1), 0.5, Method::Bilinear);
  Mat wantA(2, 2);
  wantA << 13.0 / 15, 4.0 / 15, -8.0 / 15, 1.0 / 15;
  Vec wantB(2);
  wantB << 1.0 / 15, 4.0 / 15;
  CHECK_CLOSE(d.Ab, wantA, 1e-15, 1e-15);
  CHECK_CLOSE(d.Bb, wantB, 1e-15, 1e-15);
}

TEST_CASE("GBT(0) GBT(1/2) GBT(1) equal Euler and bilinear and backward Euler exactly (D4)") {
  for (std::uint64_t seed = 1; seed <= 5; ++seed)
    for (int N : {1, 3, 16, 64}) {
      const Model m = random_stable(N, seed);
      for (double dt : {1e-3, 0.05, 0.7}) {
        CAPTURE(N);
        CAPTURE(dt);
        const auto e = discretize(m, dt, Method::Euler), g0 = discretize(m, dt, Method::GBT, 0.0);
        const auto b = discretize(m, dt, Method::Bilinear), gh = discretize(m, dt, Method::GBT, 0.5);
        const auto be = discretize(m, dt, Method::BackwardEuler), g1 = discretize(m, dt, Method::GBT, 1.0);
        // Same operations in the same order: bit-for-bit equal.
        CHECK((e.Ab - g0.Ab).cwiseAbs().maxCoeff() == 0.0);
        CHECK((e.Bb - g0.Bb).cwiseAbs().maxCoeff() == 0.0);
        CHECK((b.Ab - gh.Ab).cwiseAbs().maxCoeff() == 0.0);
        CHECK((b.Bb - gh.Bb).cwiseAbs().maxCoeff() == 0.0);
        CHECK((be.Ab - g1.Ab).cwiseAbs().maxCoeff() == 0.0);
        CHECK((be.Bb - g1.Bb).cwiseAbs().maxCoeff() == 0.0);
      }
    }
}

TEST_CASE("Mamba's ZOH shares Ā with ZOH and uses B̄ = dt B (D6)") {
  const Model m = random_stable(8, 3);
  const auto z = discretize(m, 0.1, Method::ZOH), mz = discretize(m, 0.1, Method::MambaZOH);
  CHECK_CLOSE(mz.Ab, z.Ab, 1e-15, 1e-13);
  CHECK_CLOSE(mz.Bb, Vec(0.1 * m.B()), 0.0, 0.0);
}

TEST_CASE("backward Euler is the inverse of forward Euler with -dt") {
  const Model m = random_stable(6, 4);
  const auto be = discretize(m, 0.02, Method::BackwardEuler);
  const Mat fwd_neg = Mat::Identity(6, 6) - 0.02 * m.A();
  CHECK_CLOSE(Mat(be.Ab * fwd_neg), Mat(Mat::Identity(6, 6)), 1e-14, 0.0);
}

namespace {
std::vector<double> sweep(double hi, double lo, int n, double T) {
  std::vector<double> d;
  for (int i = 0; i < n; ++i) d.push_back(T / std::round(T / (hi * std::pow(lo / hi, double(i) / (n - 1)))));
  return d;
}
}  // namespace

TEST_CASE("measured convergence orders on free responses are within 0.15 of theory") {
  // Random stable models: eigenvalues −a ± iω with a ≤ 5 and ω ≤ 10, so Δ ≤ 2e-3 keeps every
  // method in its asymptotic range (|Δλ| ≤ 0.03).
  const double T = 2.0;
  const auto dts = sweep(2e-3, 1e-4, 6, T);
  for (std::uint64_t seed = 1; seed <= 4; ++seed)
    for (int N : {2, 8, 32, 64}) {
      const Model m = random_stable(N, seed);
      Vec x0 = Vec::Ones(N) / std::sqrt(double(N));
      for (auto [me, theory] : {std::pair{Method::Euler, 1.0}, {Method::BackwardEuler, 1.0},
                                {Method::Bilinear, 2.0}}) {
        std::vector<SweepPoint> pts;
        for (double dt : dts) pts.push_back(free_response_error(m, x0, T, dt, me));
        CAPTURE(seed);
        CAPTURE(N);
        CAPTURE(method_name(me));
        CHECK(std::fabs(fit_order(pts) - theory) <= 0.15);
      }
      // GBT(0.3) is first order.
      std::vector<SweepPoint> pts;
      for (double dt : dts) pts.push_back(free_response_error(m, x0, T, dt, Method::GBT, 0.3));
      CHECK(std::fabs(fit_order(pts) - 1.0) <= 0.15);
    }
}

TEST_CASE("on a free response ZOH is exact to rounding") {
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    const Model m = random_stable(16, seed);
    // 4000 steps, each adding ~ε relative: 4000 · 2.2e-16 ≈ 1e-12.
    CHECK(free_response_error(m, Vec::Ones(16), 2.0, 5e-4, Method::ZOH).error < 1e-11);
  }
}

TEST_CASE("held input: ZOH exact and bilinear order 2 while Euler and Mamba's B̄ = dt B are order 1") {
  const Model m = random_stable(6, 7);
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> unif(-1, 1);
  std::vector<double> v(40);
  for (auto& x : v) x = unif(rng);
  const double dc = 0.05;
  auto order = [&](Method me) {
    std::vector<SweepPoint> pts;
    for (int r = 4; r <= 128; r *= 2) pts.push_back(held_input_error(m, v, dc, r, me));
    return fit_order(pts);
  };
  CHECK(std::fabs(order(Method::Euler) - 1.0) <= 0.15);
  CHECK(std::fabs(order(Method::MambaZOH) - 1.0) <= 0.15);
  CHECK(std::fabs(order(Method::Bilinear) - 2.0) <= 0.15);
  for (int r : {1, 8, 64}) CHECK(held_input_error(m, v, dc, r, Method::ZOH).error < 1e-12);
}

TEST_CASE("forward Euler threshold 2/|lambda| for real eigenvalues and bisection agrees") {
  const Model s = stiff_model(8, 2, 400.0);
  const double thr = forward_euler_threshold(s);
  CHECK(std::fabs(thr - 2.0 / 400.0) < 1e-12);
  CHECK(std::fabs(stability_threshold(s, Method::Euler, thr / 10, thr * 10) - thr) / thr < 1e-9);
  // A-stable methods never cross ρ = 1 on a stable model.
  for (Method me : {Method::BackwardEuler, Method::Bilinear, Method::ZOH})
    CHECK(stability_threshold(s, me, thr / 10, thr * 1000) == thr * 1000);
  // Just below and above: ρ(Ā) ≤ 1 and > 1.
  CHECK(spectral_radius(discretize(s, thr * 0.99, Method::Euler).Ab) <= 1.0);
  CHECK(spectral_radius(discretize(s, thr * 1.01, Method::Euler).Ab) > 1.0);
}

TEST_CASE("complex eigenvalues: threshold is -2 Re lambda / |lambda|^2") {
  const Model osc = damped_oscillator(10.0, 0.05);  // λ = −0.5 ± i·9.987
  CHECK(std::fabs(forward_euler_threshold(osc) - 2 * 0.5 / 100.0) < 1e-12);
}

TEST_CASE("discretize rejects bad dt and alpha and names the flag") {
  const Model m = random_stable(3, 1);
  auto msg = [&](double dt, double alpha) {
    try {
      discretize(m, dt, Method::GBT, alpha);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(msg(0.0, 0.5).find("--dt must be finite and > 0") != std::string::npos);
  CHECK(msg(-1.0, 0.5).find("--dt") != std::string::npos);
  CHECK(msg(NAN, 0.5).find("--dt") != std::string::npos);
  CHECK(msg(INFINITY, 0.5).find("--dt") != std::string::npos);
  CHECK(msg(0.1, 1.5).find("--alpha must be in [0, 1]") != std::string::npos);
  CHECK(msg(0.1, -0.1).find("--alpha") != std::string::npos);
  try {
    parse_method("rk4");
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("valid: euler, backward-euler, bilinear, zoh, gbt, mamba-zoh") != std::string::npos);
  }
}

TEST_CASE("backward Euler refuses a singular I - dt A") {
  // A = 1 (unstable) and Δ = 1: I − ΔA = 0.
  CHECK_THROWS_AS(discretize(Mat::Constant(1, 1, 1.0), Vec::Ones(1), 1.0, Method::BackwardEuler), Error);
}
