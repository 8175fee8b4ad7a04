#include "ssm/discretize.hpp"

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>
#include <limits>
#include <unsupported/Eigen/MatrixFunctions>

namespace ssm {

const std::vector<std::string>& method_names() {
  static const std::vector<std::string> n = {"euler", "backward-euler", "bilinear",
                                             "zoh",   "gbt",            "mamba-zoh"};
  return n;
}

std::string method_name(Method m) { return method_names()[static_cast<int>(m)]; }

Method parse_method(const std::string& name) {
  const auto& n = method_names();
  for (std::size_t i = 0; i < n.size(); ++i)
    if (n[i] == name) return static_cast<Method>(i);
  std::string list;
  for (const auto& s : n) list += (list.empty() ? "" : ", ") + s;
  throw Error("unknown method '" + name + "' (valid: " + list + ")");
}

int free_response_order(Method m, double alpha) {
  switch (m) {
    case Method::Euler:
    case Method::BackwardEuler: return 1;
    case Method::Bilinear: return 2;
    case Method::GBT: return alpha == 0.5 ? 2 : 1;
    case Method::ZOH:
    case Method::MambaZOH: return 0;
  }
  return 0;
}

namespace {

// (I − cΔA)⁻¹ M by LU with partial pivoting; refuses a (numerically) singular I − cΔA.
Mat solve_shifted(const Mat& A, double c_dt, const Mat& M, const char* method) {
  const Mat I = Mat::Identity(A.rows(), A.cols());
  const Mat S = I - c_dt * A;
  Eigen::PartialPivLU<Mat> lu(S);
  const double rc = lu.rcond();
  require(rc > 1e-14, std::string(method) + ": I − αΔA is singular at this Δ (rcond " + fmt(rc) +
                          "); A has an eigenvalue at 1/(αΔ)");
  return lu.solve(M);
}

}  // namespace

Discretized discretize(const Mat& A, const Vec& B, double dt, Method method, double alpha) {
  require(A.rows() == A.cols() && A.rows() == B.size(),
          "discretize: A must be N×N and B of size N");
  require(std::isfinite(dt) && dt > 0, "--dt must be finite and > 0, got " + fmt(dt));
  require(std::isfinite(alpha) && alpha >= 0 && alpha <= 1,
          "--alpha must be in [0, 1], got " + fmt(alpha));
  const auto N = A.rows();
  const Mat I = Mat::Identity(N, N);
  Discretized d;
  d.dt = dt;
  d.method = method;
  d.alpha = alpha;
  switch (method) {
    case Method::Euler:  // (D1)
      d.Ab = I + dt * A;
      d.Bb = dt * B;
      break;
    case Method::BackwardEuler:  // (D2)
      d.Ab = solve_shifted(A, dt, I, "backward-euler");
      d.Bb = solve_shifted(A, dt, dt * B, "backward-euler");
      break;
    case Method::Bilinear:  // (D3)
      d.Ab = solve_shifted(A, dt / 2, I + (dt / 2) * A, "bilinear");
      d.Bb = solve_shifted(A, dt / 2, dt * B, "bilinear");
      break;
    case Method::GBT:  // (D4)
      d.Ab = solve_shifted(A, alpha * dt, I + ((1 - alpha) * dt) * A, "gbt");
      d.Bb = solve_shifted(A, alpha * dt, dt * B, "gbt");
      break;
    case Method::ZOH: {  // (D5): exp(Δ[[A, B], [0, 0]]) = [[Ā, B̄], [0, 1]], no A⁻¹ needed
      Mat M = Mat::Zero(N + 1, N + 1);
      M.topLeftCorner(N, N) = dt * A;
      M.topRightCorner(N, 1) = dt * B;
      const Mat E = M.exp();
      d.Ab = E.topLeftCorner(N, N);
      d.Bb = E.topRightCorner(N, 1);
      break;
    }
    case Method::MambaZOH: {  // (D6)
      const Mat dA = dt * A;
      d.Ab = dA.exp();
      d.Bb = dt * B;
      break;
    }
  }
  require(d.Ab.allFinite() && d.Bb.allFinite(),
          "discretize: " + method_name(method) + " produced non-finite Ā or B̄ at Δ = " + fmt(dt));
  return d;
}

Discretized discretize(const Model& m, double dt, Method method, double alpha) {
  return discretize(m.A(), m.B(), dt, method, alpha);
}

double forward_euler_threshold(const Model& m) {
  double best = std::numeric_limits<double>::infinity();
  for (const cdouble& l : m.eigenvalues())
    if (l.real() < 0) best = std::min(best, -2.0 * l.real() / std::norm(l));
  return best;
}

double stability_threshold(const Model& m, Method method, double lo, double hi, double alpha) {
  require(lo > 0 && hi > lo, "stability_threshold: need 0 < lo < hi");
  auto rho = [&](double dt) { return spectral_radius(discretize(m, dt, method, alpha).Ab); };
  require(rho(lo) <= 1.0, "stability_threshold: already unstable at lo = " + fmt(lo));
  if (rho(hi) <= 1.0) return hi;
  while (hi / lo > 1.0 + 1e-12) {
    const double mid = std::sqrt(lo * hi);
    (rho(mid) > 1.0 ? hi : lo) = mid;
  }
  return lo;
}

Mat exact_free_states(const Model& m, const Vec& x0, double dt, std::size_t n) {
  require(x0.size() == m.N(), "exact_free_states: x0 must have N entries");
  const auto cols = static_cast<Eigen::Index>(n + 1);
  Mat X(m.N(), cols);
  // Modal solution x(t) = V e^{Λt} V⁻¹ x0 when V is well conditioned: O(N²) per sample.
  Eigen::EigenSolver<Mat> es(m.A());
  const CMat V = es.eigenvectors();
  const CVec lam = es.eigenvalues();
  Eigen::JacobiSVD<CMat> svd(V);
  const double cond = svd.singularValues()(0) / svd.singularValues().tail(1)(0);
  if (es.info() == Eigen::Success && std::isfinite(cond) && cond < 1e6) {
    const CVec w = V.partialPivLu().solve(x0.cast<cdouble>());
    for (Eigen::Index k = 0; k < cols; ++k) {
      const double t = double(k) * dt;
      const CVec e = (lam * t).array().exp().matrix().cwiseProduct(w);
      X.col(k) = (V * e).real();
    }
    // Guard: the last sample must agree with an independent matrix exponential.
    const Mat At = m.A() * (double(n) * dt);
    const Vec xe = At.exp() * x0;
    if ((xe - X.col(cols - 1)).norm() <= 1e-11 * std::max(1.0, xe.norm())) return X;
  }
  for (Eigen::Index k = 0; k < cols; ++k) {
    const Mat At = m.A() * (double(k) * dt);
    X.col(k) = At.exp() * x0;
  }
  return X;
}

SweepPoint free_response_error(const Model& m, const Vec& x0, double T, double dt, Method method,
                               double alpha) {
  require(std::isfinite(T) && T > 0, "free response: T must be > 0");
  const Discretized d = discretize(m, dt, method, alpha);
  const auto n = static_cast<std::size_t>(std::llround(T / dt));
  const Mat X = exact_free_states(m, x0, dt, n);
  SweepPoint p;
  p.dt = dt;
  p.steps = n;
  p.rho = spectral_radius(d.Ab);
  p.dt_lambda = dt * m.eigenvalues().cwiseAbs().maxCoeff();
  Vec x = x0;
  double err = 0.0, scale = 0.0;
  for (std::size_t k = 0; k <= n; ++k) {
    if (k > 0) x = d.Ab * x;  // the recurrence with u = 0
    const auto c = static_cast<Eigen::Index>(k);
    const double e = (x - X.col(c)).norm();
    err = std::isfinite(e) ? std::max(err, e) : std::numeric_limits<double>::infinity();
    scale = std::max(scale, X.col(c).norm());
  }
  p.error = scale > 0 ? err / scale : err;
  return p;
}

SweepPoint held_input_error(const Model& model, const std::vector<double>& v, double dc, int m,
                            Method method, double alpha) {
  require(m >= 1, "held input: refinement m must be >= 1");
  const Trajectory truth = simulate_held(model, v, dc);  // exact at the coarse times (D5)
  const double dt = dc / m;
  const Discretized d = discretize(model, dt, method, alpha);
  SweepPoint p;
  p.dt = dt;
  p.rho = spectral_radius(d.Ab);
  p.dt_lambda = dt * model.eigenvalues().cwiseAbs().maxCoeff();
  p.steps = v.size() * static_cast<std::size_t>(m);
  Vec x = Vec::Zero(model.N());
  double err = 0.0, scale = 0.0;
  for (std::size_t j = 0; j < v.size(); ++j) {
    for (int i = 0; i < m; ++i) x = d.Ab * x + d.Bb * v[j];  // u_i = v_j on this coarse interval
    const auto c = static_cast<Eigen::Index>(j);
    const double e = (x - truth.x.col(c)).norm();
    err = std::isfinite(e) ? std::max(err, e) : std::numeric_limits<double>::infinity();
    scale = std::max(scale, truth.x.col(c).norm());
  }
  p.error = scale > 0 ? err / scale : err;
  return p;
}

bool in_asymptotic_range(const SweepPoint& p) {
  return p.dt_lambda <= 0.5 && p.error > 1e-12 && p.error < 0.1 && p.rho <= 1.0 + 1e-12;
}

std::size_t asymptotic_points(const std::vector<SweepPoint>& pts) {
  return static_cast<std::size_t>(std::count_if(pts.begin(), pts.end(), in_asymptotic_range));
}

double fit_order(const std::vector<SweepPoint>& pts) {
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  int n = 0;
  for (const auto& p : pts) {
    if (!in_asymptotic_range(p)) continue;
    const double x = std::log(p.dt), y = std::log(p.error);
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
    ++n;
  }
  if (n < 2) return std::numeric_limits<double>::quiet_NaN();
  return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

}  // namespace ssm
