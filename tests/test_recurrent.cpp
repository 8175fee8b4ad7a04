// Stage 3: the recurrence against closed forms, and its streaming and multi-channel forms.
#include <cmath>

#include "helpers.hpp"
#include "ssm/recurrent.hpp"

using namespace ssm;

TEST_CASE("scalar recurrence x_k = a x_{k-1} + b u_k: impulse response is c b a^k") {
  DiscreteSSM<double> s{Mat::Constant(1, 1, 0.9), Vec::Constant(1, 2.0), RowVec::Constant(1, 0.5), 0.25};
  Vec u = Vec::Zero(30);
  u(0) = 1.0;
  const Vec y = unroll(s, u);
  for (int k = 0; k < 30; ++k) {
    const double want = 0.5 * 2.0 * std::pow(0.9, k) + (k == 0 ? 0.25 : 0.0);
    CHECK(std::fabs(y(k) - want) <= 1e-15 * std::fabs(want) + 1e-300);
  }
}

TEST_CASE("a given initial state x_{-1} decays as C A^{k+1} x_{-1}") {
  DiscreteSSM<double> s{Mat::Constant(1, 1, 0.5), Vec::Constant(1, 1.0), RowVec::Constant(1, 1.0), 0.0};
  Mat states;
  const Vec y = unroll(s, Vec::Zero(5), Vec::Constant(1, 8.0), &states);
  for (int k = 0; k < 5; ++k) CHECK(y(k) == 8.0 * std::pow(0.5, k + 1));  // exact in binary
  CHECK(states.cols() == 5);
  CHECK(states(0, 4) == 0.25);
}

TEST_CASE("Stepper streams the same outputs as unroll and reset restarts it") {
  const auto s = make_ssm(random_stable(10, 3), 0.05, Method::Bilinear);
  Vec u = Vec::Random(300);
  const Vec y = unroll(s, u);
  Stepper<double> st(s);
  Vec ys(300);
  for (int k = 0; k < 300; ++k) ys(k) = st.step(u(k));
  CHECK_CLOSE(ys, y, 0.0, 0.0);  // same operations: identical
  st.reset();
  CHECK(st.state().norm() == 0.0);
  CHECK(st.step(u(0)) == y(0));
}

TEST_CASE("unroll_channels: each row runs its own channel with any thread count") {
  const int H = 7;
  std::vector<DiscreteSSM<double>> ch;
  for (int h = 0; h < H; ++h) ch.push_back(make_ssm(random_stable(5, h + 1), 0.1, Method::ZOH));
  Signals<double> U = Signals<double>::Random(H, 257), Y1, Y2;
  unroll_channels(ch, U, Y1, 1);
  unroll_channels(ch, U, Y2, 2);
  for (int h = 0; h < H; ++h) {
    const Vec want = unroll(ch[h], Vec(U.row(h).transpose()));
    CHECK_CLOSE(Vec(Y1.row(h).transpose()), want, 0.0, 0.0);
  }
  CHECK_CLOSE(Y2, Y1, 0.0, 0.0);
}

TEST_CASE("float recurrence tracks the double one to float rounding") {
  const auto s = make_ssm(random_stable(16, 5), 0.05, Method::Bilinear);
  Vec u = Vec::Random(2000);
  const Vec y = unroll(s, u);
  const auto sf = to_float(s);
  Eigen::VectorXf uf = u.cast<float>(), yf(2000);
  unroll<float>(sf, uf.data(), yf.data(), 2000);
  // Float rounding (6e-8) amplified by the conditioning of a stable recurrence: ≪ 1e-4.
  CHECK(test::rel_err(yf.cast<double>(), y) < 1e-4);
}

TEST_CASE("recurrence rejects a wrong-sized initial state and mismatched channels") {
  const auto s = make_ssm(random_stable(4, 1), 0.1, Method::ZOH);
  CHECK_THROWS_AS(unroll(s, Vec::Zero(3), Vec::Zero(5)), Error);
  std::vector<DiscreteSSM<double>> two = {s, s};
  Signals<double> U = Signals<double>::Zero(3, 10), Y;
  CHECK_THROWS_AS(unroll_channels(two, U, Y), Error);
}
