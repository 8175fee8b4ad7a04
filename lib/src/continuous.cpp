#include "ssm/continuous.hpp"

#include <Eigen/Eigenvalues>
#include <boost/numeric/odeint.hpp>
#include <cmath>
#include <random>
#include <unsupported/Eigen/MatrixFunctions>

namespace ssm {

namespace odeint = boost::numeric::odeint;

Model::Model(Mat A, Vec B, RowVec C, double D, std::string name)
    : A_(std::move(A)), B_(std::move(B)), C_(std::move(C)), D_(D), name_(std::move(name)) {
  const auto n = A_.rows();
  require(n >= 1 && n <= 4096, "model: N (states) must be in [1, 4096], got " + std::to_string(n));
  require(A_.cols() == n, "model: A must be square, got " + std::to_string(A_.rows()) + "×" +
                              std::to_string(A_.cols()));
  require(B_.size() == n, "model: B must have N = " + std::to_string(n) + " entries, got " +
                              std::to_string(B_.size()));
  require(C_.size() == n, "model: C must have N = " + std::to_string(n) + " entries, got " +
                              std::to_string(C_.size()));
  require(A_.allFinite(), "model: A has a non-finite entry");
  require(B_.allFinite(), "model: B has a non-finite entry");
  require(C_.allFinite(), "model: C has a non-finite entry");
  require(std::isfinite(D_), "model: D is not finite");
}

CVec Model::eigenvalues() const {
  return Eigen::EigenSolver<Mat>(A_, false).eigenvalues();
}

bool Model::is_stable() const { return eigenvalues().real().maxCoeff() < 0.0; }

Model damped_oscillator(double omega, double zeta) {
  require(std::isfinite(omega) && omega > 0, "oscillator: omega must be > 0, got " + fmt(omega));
  require(std::isfinite(zeta) && zeta >= 0, "oscillator: zeta must be >= 0, got " + fmt(zeta));
  Mat A(2, 2);
  A << 0.0, 1.0, -omega * omega, -2.0 * zeta * omega;
  Vec B(2);
  B << 0.0, omega * omega;
  RowVec C(2);
  C << 1.0, 0.0;
  return Model(A, B, C, 0.0, "damped oscillator (ω = " + fmt(omega) + " rad/s, ζ = " +
                                 fmt(zeta) + ")");
}

namespace {

Mat random_orthogonal(int N, std::mt19937_64& rng) {
  std::normal_distribution<double> normal;
  Mat G(N, N);
  for (int i = 0; i < G.size(); ++i) G.data()[i] = normal(rng);
  Eigen::HouseholderQR<Mat> qr(G);
  Mat Q = qr.householderQ();
  // Fix the signs so the distribution is uniform (Haar) and the result deterministic.
  const Vec d = qr.matrixQR().diagonal();
  for (int j = 0; j < N; ++j)
    if (d(j) < 0) Q.col(j) = -Q.col(j);
  return Q;
}

void check_N(int N, const char* what) {
  require(N >= 1 && N <= 4096,
          std::string(what) + ": N must be in [1, 4096], got " + std::to_string(N));
}

}  // namespace

Model random_stable(int N, std::uint64_t seed, double decay_min, double decay_max,
                    double freq_max) {
  check_N(N, "random model");
  require(decay_min > 0 && decay_max >= decay_min && freq_max >= 0,
          "random model: need 0 < decay_min <= decay_max and freq_max >= 0");
  std::mt19937_64 rng(mix_seed(seed, 10));
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  std::normal_distribution<double> normal;
  // Block diagonal: 2×2 blocks [[−a, ω], [−ω, −a]] (eigenvalues −a ± iω), one 1×1 if N is odd.
  Mat J = Mat::Zero(N, N);
  for (int i = 0; i < N; i += 2) {
    const double a = decay_min * std::pow(decay_max / decay_min, unif(rng));
    if (i + 1 < N) {
      const double w = freq_max * unif(rng);
      J(i, i) = J(i + 1, i + 1) = -a;
      J(i, i + 1) = w;
      J(i + 1, i) = -w;
    } else {
      J(i, i) = -a;
    }
  }
  // A mildly non-normal basis: orthogonal times a diagonal scaling in [e^{−½}, e^{½}].
  Mat S = random_orthogonal(N, rng);
  for (int j = 0; j < N; ++j) S.col(j) *= std::exp(unif(rng) - 0.5);
  const Mat A = S * J * S.inverse();
  Vec B(N);
  RowVec C(N);
  for (int i = 0; i < N; ++i) B(i) = normal(rng);
  for (int i = 0; i < N; ++i) C(i) = normal(rng) / std::sqrt(double(N));
  return Model(A, B, C, 0.0, "random stable (N = " + std::to_string(N) + ", seed " +
                                 std::to_string(seed) + ")");
}

Model stiff_model(int N, std::uint64_t seed, double stiffness) {
  check_N(N, "stiff model");
  require(std::isfinite(stiffness) && stiffness >= 1,
          "stiff model: stiffness must be >= 1, got " + fmt(stiffness));
  std::mt19937_64 rng(mix_seed(seed, 11));
  std::normal_distribution<double> normal;
  Vec lambda(N);
  for (int i = 0; i < N; ++i) {
    const double f = N == 1 ? 1.0 : double(i) / (N - 1);  // endpoints included exactly
    lambda(i) = -std::pow(stiffness, f);
  }
  const Mat Q = random_orthogonal(N, rng);
  const Mat A = Q * lambda.asDiagonal() * Q.transpose();
  Vec B(N);
  RowVec C(N);
  for (int i = 0; i < N; ++i) B(i) = normal(rng);
  for (int i = 0; i < N; ++i) C(i) = normal(rng) / std::sqrt(double(N));
  return Model(A, B, C, 0.0, "stiff (N = " + std::to_string(N) + ", λ in [−" + fmt(stiffness) +
                                 ", −1])");
}

const std::vector<std::string>& example_models() {
  static const std::vector<std::string> names = {"oscillator", "random", "stiff"};
  return names;
}

Model example_model(const std::string& name, int N, std::uint64_t seed) {
  if (name == "oscillator") return damped_oscillator();
  if (name == "random") return random_stable(N, seed);
  if (name == "stiff") return stiff_model(N, seed);
  std::string list;
  for (const auto& n : example_models()) list += (list.empty() ? "" : ", ") + n;
  throw Error("unknown model '" + name + "' (valid: " + list + ")");
}

namespace {

Vec start_state(const Model& m, const Vec& x0) {
  if (x0.size() == 0) return Vec::Zero(m.N());
  require(x0.size() == m.N(), "initial state must have N = " + std::to_string(m.N()) +
                                  " entries, got " + std::to_string(x0.size()));
  require(x0.allFinite(), "initial state has a non-finite entry");
  return x0;
}

void check_dt(double dt) {
  require(std::isfinite(dt) && dt > 0, "dt must be finite and > 0, got " + fmt(dt));
}

}  // namespace

Trajectory simulate_held(const Model& m, const std::vector<double>& u, double dt, const Vec& x0) {
  check_dt(dt);
  const int N = m.N();
  // (D5): exp(Δ·[[A, B], [0, 0]]) = [[e^{AΔ}, Γ], [0, 1]] with Γ = ∫_0^Δ e^{As} ds B.
  Mat M = Mat::Zero(N + 1, N + 1);
  M.topLeftCorner(N, N) = dt * m.A();
  M.topRightCorner(N, 1) = dt * m.B();
  const Mat E = M.exp();
  const Mat Phi = E.topLeftCorner(N, N);
  const Vec Gamma = E.topRightCorner(N, 1);
  const std::size_t L = u.size();
  Trajectory tr;
  tr.t.resize(L);
  tr.x.resize(N, static_cast<Eigen::Index>(L));
  tr.y.resize(static_cast<Eigen::Index>(L));
  Vec x = start_state(m, x0);
  for (std::size_t k = 0; k < L; ++k) {
    x = Phi * x + Gamma * u[k];
    tr.t[k] = double(k) * dt;
    tr.x.col(static_cast<Eigen::Index>(k)) = x;
    tr.y(static_cast<Eigen::Index>(k)) = m.C().dot(x) + m.D() * u[k];
  }
  return tr;
}

Trajectory free_response(const Model& m, const Vec& x0, double dt, std::size_t L) {
  check_dt(dt);
  const Vec x_start = start_state(m, x0);
  Trajectory tr;
  tr.t.resize(L);
  tr.x.resize(m.N(), static_cast<Eigen::Index>(L));
  tr.y.resize(static_cast<Eigen::Index>(L));
  for (std::size_t k = 0; k < L; ++k) {
    const double t = double(k) * dt;
    const Mat At = m.A() * t;
    const Vec x = At.exp() * x_start;  // (C1) with u = 0
    tr.t[k] = t;
    tr.x.col(static_cast<Eigen::Index>(k)) = x;
    tr.y(static_cast<Eigen::Index>(k)) = m.C().dot(x);
  }
  return tr;
}

namespace {

using State = std::vector<double>;

struct Rhs {
  const Model& m;
  std::function<double(double)> u;
  void operator()(const State& x, State& dxdt, double t) const {
    Eigen::Map<const Vec> xv(x.data(), static_cast<Eigen::Index>(x.size()));
    Eigen::Map<Vec> dv(dxdt.data(), static_cast<Eigen::Index>(dxdt.size()));
    dv.noalias() = m.A() * xv + m.B() * u(t);
  }
};

void check_tol(const OdeOptions& o) {
  require(std::isfinite(o.abs_tol) && o.abs_tol > 0 && std::isfinite(o.rel_tol) && o.rel_tol > 0,
          "ODE tolerances must be finite and > 0");
}

}  // namespace

Trajectory simulate_ode(const Model& m, const std::function<double(double)>& u, double dt,
                        std::size_t L, const Vec& x0, OdeOptions opt) {
  check_dt(dt);
  check_tol(opt);
  const Vec xs = start_state(m, x0);
  State x(xs.data(), xs.data() + xs.size());
  Trajectory tr;
  tr.t.resize(L);
  for (std::size_t k = 0; k < L; ++k) tr.t[k] = double(k) * dt;
  tr.x.resize(m.N(), static_cast<Eigen::Index>(L));
  tr.y.resize(static_cast<Eigen::Index>(L));
  if (L == 0) return tr;
  auto stepper = odeint::make_dense_output(opt.abs_tol, opt.rel_tol,
                                           odeint::runge_kutta_dopri5<State>());
  std::size_t k = 0;
  auto observe = [&](const State& xk, double) {
    tr.x.col(static_cast<Eigen::Index>(k)) =
        Eigen::Map<const Vec>(xk.data(), static_cast<Eigen::Index>(xk.size()));
    ++k;
  };
  odeint::integrate_times(stepper, Rhs{m, u}, x, tr.t.begin(), tr.t.end(), dt / 4, observe);
  for (std::size_t i = 0; i < L; ++i)
    tr.y(static_cast<Eigen::Index>(i)) =
        m.C().dot(tr.x.col(static_cast<Eigen::Index>(i))) + m.D() * u(tr.t[i]);
  return tr;
}

Trajectory simulate_ode_held(const Model& m, const std::vector<double>& u, double dt,
                             const Vec& x0, OdeOptions opt) {
  check_dt(dt);
  check_tol(opt);
  const Vec xs = start_state(m, x0);
  State x(xs.data(), xs.data() + xs.size());
  const std::size_t L = u.size();
  Trajectory tr;
  tr.t.resize(L);
  tr.x.resize(m.N(), static_cast<Eigen::Index>(L));
  tr.y.resize(static_cast<Eigen::Index>(L));
  auto stepper = odeint::make_controlled(opt.abs_tol, opt.rel_tol,
                                         odeint::runge_kutta_dopri5<State>());
  for (std::size_t k = 0; k < L; ++k) {
    const double t1 = double(k) * dt, t0 = t1 - dt;
    const double uk = u[k];
    odeint::integrate_adaptive(stepper, Rhs{m, [uk](double) { return uk; }}, x, t0, t1, dt / 4);
    tr.t[k] = t1;
    const Eigen::Map<const Vec> xv(x.data(), static_cast<Eigen::Index>(x.size()));
    tr.x.col(static_cast<Eigen::Index>(k)) = xv;
    tr.y(static_cast<Eigen::Index>(k)) = m.C().dot(xv) + m.D() * uk;
  }
  return tr;
}

}  // namespace ssm
