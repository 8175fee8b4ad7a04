// Stage 1 against closed forms and against itself computed two independent ways.
#include <cmath>
#include <random>

#include "helpers.hpp"
#include "ssm/continuous.hpp"

using namespace ssm;

namespace {
Model scalar(double a, double b = 1.0, double c = 1.0) {
  return Model(Mat::Constant(1, 1, -a), Vec::Constant(1, b), RowVec::Constant(1, c));
}
}  // namespace

TEST_CASE("scalar x' = -a x + u: step response matches (1 - e^{-at})/a") {
  const double a = 1.7, dt = 0.01;
  const std::size_t L = 500;
  const Model m = scalar(a);
  // ODE solve from x(0) = 0 with u(t) = 1: x(t) = (1 − e^{−at})/a.
  const Trajectory ode = simulate_ode(m, [](double) { return 1.0; }, dt, L);
  // Held input from x(−Δ) = 0: x(t_k) = (1 − e^{−a(t_k + Δ)})/a.
  const Trajectory held = simulate_held(m, std::vector<double>(L, 1.0), dt);
  Vec want_ode(L), want_held(L);
  for (std::size_t k = 0; k < L; ++k) {
    const double t = double(k) * dt;
    want_ode(k) = (1 - std::exp(-a * t)) / a;
    want_held(k) = (1 - std::exp(-a * (t + dt))) / a;
  }
  // The ODE solver runs at rel/abs tolerance 1e-12 per step; over 500 steps of a contracting
  // system the global error stays well below 1e-10.
  CHECK_CLOSE(ode.x.row(0).transpose(), want_ode, 1e-10, 1e-10);
  // simulate_held is one exact matrix exponential per step: rounding only (500 steps · ε).
  CHECK_CLOSE(held.x.row(0).transpose(), want_held, 1e-13, 1e-12);
}

TEST_CASE("scalar x' = -a x + sin(wt): ODE solve matches the closed form") {
  const double a = 0.8, w = 3.0, dt = 0.02;
  const std::size_t L = 400;
  const Trajectory tr = simulate_ode(scalar(a), [w](double t) { return std::sin(w * t); }, dt, L);
  Vec want(L);
  for (std::size_t k = 0; k < L; ++k) {
    const double t = double(k) * dt;
    want(k) = (a * std::sin(w * t) - w * std::cos(w * t) + w * std::exp(-a * t)) / (a * a + w * w);
  }
  CHECK_CLOSE(tr.y, want, 1e-10, 1e-9);
}

TEST_CASE("free response of a scalar is e^{-at} x0") {
  const Trajectory tr = free_response(scalar(2.0), Vec::Constant(1, 3.0), 0.1, 50);
  Vec want(50);
  for (int k = 0; k < 50; ++k) want(k) = 3.0 * std::exp(-2.0 * 0.1 * k);
  CHECK_CLOSE(tr.x.row(0).transpose(), want, 1e-15, 1e-13);
}

TEST_CASE("held input: exact (D5) and interval-by-interval ODE solve agree for N up to 16") {
  for (int N : {1, 2, 7, 16})
    for (std::uint64_t seed : {1u, 2u, 3u}) {
      CAPTURE(N);
      CAPTURE(seed);
      const Model m = random_stable(N, seed);
      std::mt19937_64 rng(seed);
      std::uniform_real_distribution<double> unif(-1, 1);
      std::vector<double> u(200);
      for (auto& v : u) v = unif(rng);
      Vec x0 = Vec::Constant(N, 0.3);
      const Trajectory a = simulate_held(m, u, 0.03, x0);
      const Trajectory b = simulate_ode_held(m, u, 0.03, x0);
      // 200 intervals each solved to 1e-12: accumulated error below ~1e-9 relative.
      CHECK(test::rel_err(b.x, a.x) < 1e-9);
      CHECK(test::rel_err(b.y, a.y) < 1e-9);
    }
}

TEST_CASE("oscillator eigenvalues are -zw +- i w sqrt(1 - z^2)") {
  const double w = 5.0, z = 0.2;
  const CVec ev = damped_oscillator(w, z).eigenvalues();
  for (const auto& l : ev) {
    CHECK(std::fabs(l.real() + z * w) < 1e-12);
    CHECK(std::fabs(std::fabs(l.imag()) - w * std::sqrt(1 - z * z)) < 1e-12);
  }
}

TEST_CASE("random_stable is stable and deterministic per seed and differs across seeds") {
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    const Model m = random_stable(12, seed);
    CHECK(m.is_stable());
    CHECK(m.eigenvalues().real().maxCoeff() <= -0.5 + 1e-9);  // decay_min = 0.5
    CHECK((random_stable(12, seed).A() - m.A()).norm() == 0.0);
  }
  CHECK((random_stable(12, 1).A() - random_stable(12, 2).A()).norm() > 0.1);
}

TEST_CASE("stiff model spans eigenvalues from -stiffness to -1") {
  const Model m = stiff_model(6, 1, 500.0);
  const Eigen::VectorXd re = m.eigenvalues().real();
  CHECK(std::fabs(re.minCoeff() + 500.0) < 1e-9);
  CHECK(std::fabs(re.maxCoeff() + 1.0) < 1e-9);
}

TEST_CASE("Model rejects bad shapes and non-finite entries with a named message") {
  auto msg = [](auto f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(msg([] { Model(Mat::Zero(2, 3), Vec::Zero(2), RowVec::Zero(2)); }).find("A must be square") != std::string::npos);
  CHECK(msg([] { Model(Mat::Zero(2, 2), Vec::Zero(3), RowVec::Zero(2)); }).find("B must have N = 2") != std::string::npos);
  CHECK(msg([] { Model(Mat::Zero(2, 2), Vec::Zero(2), RowVec::Zero(1)); }).find("C must have N = 2") != std::string::npos);
  Mat bad = Mat::Zero(2, 2);
  bad(1, 1) = NAN;
  CHECK(msg([&] { Model(bad, Vec::Zero(2), RowVec::Zero(2)); }).find("A has a non-finite") != std::string::npos);
  CHECK(msg([] { Model(Mat::Zero(0, 0), Vec::Zero(0), RowVec::Zero(0)); }).find("N (states)") != std::string::npos);
  CHECK(msg([] { random_stable(5000, 1); }).find("[1, 4096]") != std::string::npos);
  CHECK(msg([] { example_model("nope", 2, 1); }).find("valid: oscillator, random, stiff") != std::string::npos);
  CHECK(msg([] { simulate_held(scalar(1), {1.0}, -1.0); }).find("dt must be finite and > 0") != std::string::npos);
}
