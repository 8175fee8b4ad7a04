// Stage 8a's lesson: the gradient of the last output with respect to each past input, for a
// linear SSM (LTI and selective) and a tanh RNN (ssm/grad_lesson.hpp, docs/MATH.md G20, G21).
#include "ssm/grad_lesson.hpp"

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>

#include "ssm/grad.hpp"

namespace ssm::grad {

namespace {

double softplus(double x) {
  return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}
// softplus⁻¹(y) = log(e^y − 1), written so that it neither overflows nor cancels.
double softplus_inverse(double y) {
  return y + std::log(-std::expm1(-y));
}

void require_finite_vec(const Vec& v, const std::string& name) {
  for (Eigen::Index i = 0; i < v.size(); ++i)
    require(std::isfinite(v(i)), name + ": entry " + std::to_string(i) + " is " + fmt(v(i)) +
                                     ", expected a finite value");
}

void check_h0(const TanhRnn& m, const Vec& h0) {
  require(h0.size() == 0 || h0.size() == m.N(),
          "h0 has " + std::to_string(h0.size()) +
              " entries, expected N = " + std::to_string(m.N()) + " (or none for zero)");
  require_finite_vec(h0, "h0");
}

void check_lag_range(int k0, int k1, Eigen::Index L, const char* what) {
  require(0 <= k0 && k0 < k1 && k1 < L,
          std::string(what) + ": lags " + std::to_string(k0) + " → " + std::to_string(k1) +
              " must satisfy 0 <= k0 < k1 < L = " + std::to_string(L));
}

void check_one_channel(const ScanParams<double>& p, const ScanInputs<double>& in) {
  require(in.batch == 1 && p.D == 1,
          "the lag gradient needs one sequence of one channel, got batch " +
              std::to_string(in.batch) + ", D " + std::to_string(p.D));
  validate(p, in);
}

void check_A(const Vec& A) {
  require(A.size() >= 1 && A.size() <= kMaxScanN, "A has " + std::to_string(A.size()) +
                                                      " entries, expected N in [1, " +
                                                      std::to_string(kMaxScanN) + "]");
  for (Eigen::Index n = 0; n < A.size(); ++n)
    require(std::isfinite(A(n)) && A(n) < 0,
            "A: entry " + std::to_string(n) + " is " + fmt(A(n)) + ", must be finite and < 0");
}

// The one-channel problem shared by both linear models; Δraw is filled by the caller.
void linear_problem(const Vec& A, const Vec& u, ScanParams<double>& p, ScanInputs<double>& in) {
  check_A(A);
  require(u.size() >= 2, "u has " + std::to_string(u.size()) + " samples, expected L >= 2");
  require_finite_vec(u, "u");
  const int N = static_cast<int>(A.size());
  const auto L = static_cast<std::size_t>(u.size());
  p = ScanParams<double>{};
  p.D = 1;
  p.N = N;
  p.A.assign(A.data(), A.data() + N);
  p.disc = ScanDiscretization::ZOH;
  in = ScanInputs<double>{};
  in.batch = 1;
  in.L = static_cast<int>(L);
  in.u.assign(u.data(), u.data() + u.size());
  in.B.assign(std::size_t(N) * L, 1.0);
  in.C.assign(std::size_t(N) * L, 1.0);
}

std::vector<double> one_hot_last(int L) {
  std::vector<double> dy(static_cast<std::size_t>(L), 0.0);
  dy.back() = 1.0;
  return dy;
}

Vec reversed(const std::vector<double>& v) {
  Vec r(static_cast<Eigen::Index>(v.size()));
  for (std::size_t i = 0; i < v.size(); ++i) r(Eigen::Index(v.size() - 1 - i)) = v[i];
  return r;
}

}  // namespace

// ---- (G20) ------------------------------------------------------------------------------------

TanhRnn random_tanh_rnn(int N, double rho, std::uint64_t seed) {
  require(N >= 1 && N <= 1024, "tanh RNN: N must be in [1, 1024], got " + std::to_string(N));
  require(std::isfinite(rho) && rho > 0 && rho <= 10,
          "tanh RNN: rho must be finite and in (0, 10], got " + fmt(rho));
  std::mt19937_64 rng(mix_seed(seed, 820));
  std::normal_distribution<double> normal;
  TanhRnn m;
  m.W.resize(N, N);
  m.U.resize(N);
  m.c.resize(N);
  for (;;) {  // a normal matrix has spectral radius 0 with probability 0; redraw if it happens
    for (Eigen::Index i = 0; i < m.W.size(); ++i) m.W.data()[i] = normal(rng);
    const double r = spectral_radius(m.W);
    if (r > 1e-12) {
      m.W *= rho / r;
      break;
    }
  }
  for (int i = 0; i < N; ++i) m.U(i) = normal(rng);
  for (int i = 0; i < N; ++i) m.c(i) = normal(rng);
  return m;
}

void validate(const TanhRnn& m) {
  const Eigen::Index N = m.W.rows();
  require(N >= 1 && m.W.cols() == N, "W is " + std::to_string(m.W.rows()) + "×" +
                                         std::to_string(m.W.cols()) +
                                         ", expected square N×N, N >= 1");
  require(m.U.size() == N,
          "U has " + std::to_string(m.U.size()) + " entries, expected N = " + std::to_string(N));
  require(m.c.size() == N,
          "c has " + std::to_string(m.c.size()) + " entries, expected N = " + std::to_string(N));
  require(m.W.allFinite(), "W has a non-finite entry");
  require_finite_vec(m.U, "U");
  require_finite_vec(m.c.transpose(), "c");
}

TanhRnnTrace tanh_rnn_forward(const TanhRnn& m, const Vec& u, const Vec& h0) {
  validate(m);
  check_h0(m, h0);
  require(u.size() >= 1, "u is empty, expected L >= 1 samples");
  require_finite_vec(u, "u");
  const Eigen::Index N = m.N(), L = u.size();
  TanhRnnTrace tr;
  tr.H.resize(N, L);
  tr.y.resize(L);
  Vec h = h0.size() ? h0 : Vec::Zero(N);
  for (Eigen::Index t = 0; t < L; ++t) {
    h = (m.W * h + m.U * u(t)).array().tanh().matrix();  // h_t = tanh(W h_{t−1} + U u_t)
    tr.H.col(t) = h;
    tr.y(t) = m.c.dot(h);  // y_t = c·h_t
  }
  return tr;
}

TanhRnnGrads tanh_rnn_backward(const TanhRnn& m, const Vec& u, const TanhRnnTrace& fwd,
                               const Vec& dy, const Vec& h0) {
  validate(m);
  check_h0(m, h0);
  const Eigen::Index N = m.N(), L = u.size();
  require(L >= 1, "u is empty, expected L >= 1 samples");
  require(fwd.H.rows() == N && fwd.H.cols() == L && fwd.y.size() == L,
          "the forward trace is " + std::to_string(fwd.H.rows()) + "×" +
              std::to_string(fwd.H.cols()) + ", expected N×L = " + std::to_string(N) + "×" +
              std::to_string(L) + " (run tanh_rnn_forward on the same u)");
  require(dy.size() == L,
          "dy has " + std::to_string(dy.size()) + " entries, expected L = " + std::to_string(L));
  require_finite_vec(dy, "dy");
  require_finite_vec(u, "u");
  TanhRnnGrads g;
  g.du.resize(L);
  g.dW = Mat::Zero(N, N);
  g.dU = Vec::Zero(N);
  g.dc = RowVec::Zero(N);
  const Vec hm1 = h0.size() ? h0 : Vec::Zero(N);
  Vec G = Vec::Zero(N);  // Wᵀ δ_{t+1}: what flows into h_t from the later steps
  for (Eigen::Index t = L - 1; t >= 0; --t) {
    G += m.c.transpose() * dy(t);  // G_t = cᵀ dy_t + Wᵀ δ_{t+1}
    const Vec delta = G.cwiseProduct((1.0 - fwd.H.col(t).array().square()).matrix());  // δ_t
    g.du(t) = m.U.dot(delta);
    g.dU += delta * u(t);
    g.dW += delta * (t > 0 ? Vec(fwd.H.col(t - 1)) : hm1).transpose();
    g.dc += dy(t) * fwd.H.col(t).transpose();
    G = m.W.transpose() * delta;
  }
  g.dh0 = G;  // Wᵀ δ_0
  return g;
}

Vec tanh_rnn_lag_gradient(const TanhRnn& m, const Vec& u) {
  const auto fwd = tanh_rnn_forward(m, u);
  Vec dy = Vec::Zero(u.size());
  dy(u.size() - 1) = 1.0;
  const Vec du = tanh_rnn_backward(m, u, fwd, dy).du;
  return du.reverse();
}

Vec tanh_rnn_lag_gradient_fd(const TanhRnn& m, const Vec& u, const std::vector<int>& lags,
                             double h) {
  require(std::isfinite(h) && h > 0,
          "finite-difference step h must be finite and > 0, got " + fmt(h));
  const Eigen::Index L = u.size();
  Vec out(static_cast<Eigen::Index>(lags.size()));
  Vec up = u;
  for (std::size_t i = 0; i < lags.size(); ++i) {
    require(lags[i] >= 0 && lags[i] < L, "lag " + std::to_string(lags[i]) + " is outside [0, L)");
    const Eigen::Index s = L - 1 - lags[i];
    up(s) = u(s) + h;
    const double yp = tanh_rnn_forward(m, up).y(L - 1);
    up(s) = u(s) - h;
    const double ym = tanh_rnn_forward(m, up).y(L - 1);
    up(s) = u(s);
    out(Eigen::Index(i)) = (yp - ym) / (2 * h);
  }
  return out;
}

double mean_tanh_slope(const TanhRnnTrace& fwd, int k0, int k1) {
  const Eigen::Index L = fwd.H.cols();
  require(0 <= k0 && k0 <= k1 && k1 < L, "mean_tanh_slope: lags " + std::to_string(k0) + " … " +
                                             std::to_string(k1) + " are outside [0, L)");
  double sum = 0;
  for (int k = k0; k <= k1; ++k) sum += (1.0 - fwd.H.col(L - 1 - k).array().square()).sum();
  return sum / (double(k1 - k0 + 1) * double(fwd.H.rows()));
}

// ---- (G21) ------------------------------------------------------------------------------------

void lti_scan_problem(const Vec& A, double dt, const Vec& u, ScanParams<double>& p,
                      ScanInputs<double>& in) {
  require(std::isfinite(dt) && dt > 0 && dt <= 100,
          "dt must be finite and in (0, 100], got " + fmt(dt));
  linear_problem(A, u, p, in);
  p.delta_softplus = false;
  in.delta.assign(std::size_t(in.L), dt);
}

void gated_scan_problem(const Vec& A, const std::vector<int>& gates, double delta_hold,
                        double delta_gate, const Vec& u, ScanParams<double>& p,
                        ScanInputs<double>& in) {
  for (auto [name, v] : {std::pair{"delta_hold", delta_hold}, std::pair{"delta_gate", delta_gate}})
    require(std::isfinite(v) && v > 0 && v <= 100,
            std::string(name) + " must be finite and in (0, 100], got " + fmt(v));
  linear_problem(A, u, p, in);
  std::vector<double> marker(std::size_t(in.L), 0.0);
  for (int t : gates) {
    require(t >= 0 && t < in.L, "gate at t = " + std::to_string(t) +
                                    " is outside [0, L = " + std::to_string(in.L) + ")");
    require(marker[std::size_t(t)] == 0.0, "gate at t = " + std::to_string(t) + " is listed twice");
    marker[std::size_t(t)] = 1.0;
  }
  const double b = softplus_inverse(delta_hold), w = softplus_inverse(delta_gate) - b;
  p.delta_softplus = true;
  p.delta_bias = {b};
  in.delta.resize(marker.size());
  for (std::size_t t = 0; t < marker.size(); ++t) in.delta[t] = w * marker[t];  // Δraw_t = w m_t
}

Vec scan_deltas(const ScanParams<double>& p, const ScanInputs<double>& in) {
  check_one_channel(p, in);
  const double bias = p.delta_bias.empty() ? 0.0 : p.delta_bias[0];
  Vec d(in.L);
  for (int t = 0; t < in.L; ++t) {
    const double x = in.delta[std::size_t(t)] + bias;
    d(t) = p.delta_softplus ? softplus(x) : x;  // (M1)
  }
  return d;
}

LagGradient scan_lag_gradient(const ScanParams<double>& p, const ScanInputs<double>& in) {
  check_one_channel(p, in);
  const auto g = selective_scan_backward_reference(p, in, one_hot_last(in.L));
  return {reversed(g.du), reversed(g.ddelta)};
}

LagGradient scan_lag_gradient_fd(const ScanParams<double>& p, const ScanInputs<double>& in,
                                 const std::vector<int>& lags, double h) {
  check_one_channel(p, in);
  require(std::isfinite(h) && h > 0,
          "finite-difference step h must be finite and > 0, got " + fmt(h));
  LagGradient out;
  out.du.resize(Eigen::Index(lags.size()));
  out.ddelta.resize(Eigen::Index(lags.size()));
  auto last_y = [&](const ScanInputs<double>& x) {
    return selective_scan_reference(p, x).y.back();
  };
  ScanInputs<double> x = in;
  for (std::size_t i = 0; i < lags.size(); ++i) {
    require(lags[i] >= 0 && lags[i] < in.L,
            "lag " + std::to_string(lags[i]) + " is outside [0, L)");
    const auto s = std::size_t(in.L - 1 - lags[i]);
    for (auto* v : {&x.u, &x.delta}) {
      const double v0 = (*v)[s];
      (*v)[s] = v0 + h;
      const double yp = last_y(x);
      (*v)[s] = v0 - h;
      const double ym = last_y(x);
      (*v)[s] = v0;
      (v == &x.u ? out.du : out.ddelta)(Eigen::Index(i)) = (yp - ym) / (2 * h);
    }
  }
  return out;
}

Vec slowest_mode_lag_gradient(const ScanParams<double>& p, const ScanInputs<double>& in) {
  check_one_channel(p, in);
  const int L = in.L;
  const int s = int(std::max_element(p.A.begin(), p.A.end()) - p.A.begin());
  const double As = p.A[std::size_t(s)];
  const Vec delta = scan_deltas(p, in);
  const double* B = in.B.data() + std::size_t(s) * L;  // (N, L): row s
  const double C_last = in.C[std::size_t(s) * L + std::size_t(L - 1)];
  Vec out(L);
  double elapsed = 0;  // Σ_{t<r≤L−1} Δ_r
  for (int t = L - 1; t >= 0; --t) {
    const double d = delta(t);
    const double Bbar = p.disc == ScanDiscretization::ZOH ? std::expm1(d * As) / As * B[t]  // (D5)
                                                          : d * B[t];                       // (D6)
    out(L - 1 - t) = C_last * std::exp(As * elapsed) * Bbar;
    elapsed += d;
  }
  return out;
}

double StretchDecay::outside() const {
  const double m = std::log(measured), lo = std::log(fastest), hi = std::log(slowest);
  if (!std::isfinite(m)) return std::numeric_limits<double>::infinity();
  return std::max({0.0, lo - m, m - hi});
}

StretchDecay stretch_decay(const Vec& g, const Vec& delta, const Vec& A, int k0, int k1) {
  const Eigen::Index L = g.size();
  require(delta.size() == L, "delta has " + std::to_string(delta.size()) +
                                 " entries, expected L = " + std::to_string(L));
  check_A(A);
  check_lag_range(k0, k1, L, "stretch_decay");
  const double d0 = delta(L - 1 - k0), d1 = delta(L - 1 - k1);
  require(std::fabs(d0 - d1) <= 1e-12 * std::max(d0, d1),
          "stretch_decay: Δ differs at lags " + std::to_string(k0) + " (" + fmt(d0) + ") and " +
              std::to_string(k1) + " (" + fmt(d1) + "); the bound needs the same B̄ at both");
  StretchDecay s;
  s.k0 = k0;
  s.k1 = k1;
  for (int k = k0; k < k1; ++k) s.T += delta(L - 1 - k);  // the steps r with s1 < r ≤ s0
  s.measured = g(k1) / g(k0);
  s.slowest = std::exp(A.maxCoeff() * s.T);
  s.fastest = std::exp(A.minCoeff() * s.T);
  return s;
}

double lti_tail_log_rate_bound(const Vec& A, double dt, int k0, int k1) {
  check_A(A);
  require(0 <= k0 && k0 < k1, "lti_tail_log_rate_bound: needs 0 <= k0 < k1, got " +
                                  std::to_string(k0) + ", " + std::to_string(k1));
  Eigen::Index s = 0;
  A.maxCoeff(&s);
  auto weight = [&](Eigen::Index n) {
    return std::expm1(A(n) * dt) / A(n);
  };  // B̄_n (D5), B = C = 1
  double eps = 0;
  for (Eigen::Index n = 0; n < A.size(); ++n)
    if (n != s) eps += weight(n) / weight(s) * std::exp((A(n) - A(s)) * dt * k0);  // (z_n/z_s)^k0
  return std::log1p(eps) / (k1 - k0);
}

int representable_lags(const Vec& g, double floor) {
  int k = 0;
  while (k < g.size() && std::fabs(g(k)) >= floor) ++k;
  return k;
}

double log_slope(const Vec& g, int k0, int k1) {
  check_lag_range(k0, k1, g.size(), "log_slope");
  double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (int k = k0; k <= k1; ++k) {
    const double a = std::fabs(g(k));
    if (!(a >= std::numeric_limits<double>::min()) || !std::isfinite(a)) continue;
    const double y = std::log(a);
    n += 1;
    sx += k;
    sy += y;
    sxx += double(k) * k;
    sxy += k * y;
  }
  if (n < 2) return std::numeric_limits<double>::quiet_NaN();
  return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

}  // namespace ssm::grad
