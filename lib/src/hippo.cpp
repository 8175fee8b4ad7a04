#include "ssm/hippo.hpp"

#include <algorithm>
#include <boost/math/quadrature/gauss.hpp>
#include <boost/math/special_functions/laguerre.hpp>
#include <boost/math/special_functions/legendre.hpp>
#include <cmath>
#include <numbers>
#include <string>

namespace ssm::hippo {

namespace {

constexpr double kTwoPi = 2.0 * std::numbers::pi;

void require_theta(double theta) {
  require(std::isfinite(theta) && theta > 0, "--theta must be finite and > 0, got " + fmt(theta));
}

// The LegS step's α for a stage-2 method name; ZOH needs e^{ΔA} of a constant A, which LegS
// (A/t) does not have.
double legs_alpha(const Stepping& st) {
  switch (st.method) {
    case Method::Euler:
      return 0.0;
    case Method::BackwardEuler:
      return 1.0;
    case Method::Bilinear:
      return 0.5;
    case Method::GBT:
      return st.alpha;
    default:
      throw Error(
          "--method " + method_name(st.method) +
          " cannot step legs (time-varying, H5): use euler, backward-euler, bilinear or gbt");
  }
}

}  // namespace

std::pair<Mat, Vec> legs(int N) {
  require(N >= 1 && N <= 4096, "--N must be in [1, 4096], got " + std::to_string(N));
  Vec B(N);
  for (int n = 0; n < N; ++n) B(n) = std::sqrt(2.0 * n + 1.0);
  Mat A = Mat::Zero(N, N);
  for (int k = 0; k < N; ++k) {  // column by column: Eigen stores columns contiguously
    A(k, k) = -(k + 1.0);        // (H1)
    for (int n = k + 1; n < N; ++n) A(n, k) = -B(n) * B(k);
  }
  return {A, B};
}

const std::vector<std::string>& measure_names() {
  static const std::vector<std::string> names = {"legs", "legt", "lagt", "fout"};
  return names;
}

std::string measure_name(Measure m) {
  return measure_names()[static_cast<std::size_t>(m)];
}

Measure parse_measure(const std::string& name) {
  const auto& names = measure_names();
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return static_cast<Measure>(i);
  throw Error("unknown measure '" + name + "' (valid: legs, legt, lagt, fout)");
}

bool time_invariant(Measure m) {
  return m != Measure::LegS;
}

int max_N(Measure m) {
  return m == Measure::LegS ? 4096 : 1024;
}

void validate(const Spec& s) {
  const int hi = max_N(s.measure);
  require(s.N >= 1 && s.N <= hi, "--N must be in [1, " + std::to_string(hi) + "] for " +
                                     measure_name(s.measure) + ", got " + std::to_string(s.N));
  if (s.measure != Measure::LegS) require_theta(s.theta);
}

std::pair<Mat, Vec> legt(int N, double theta) {
  validate(Spec{Measure::LegT, N, theta});
  Mat A(N, N);
  Vec B(N);
  for (int n = 0; n < N; ++n) {
    const double bn = std::sqrt(2.0 * n + 1.0);
    B(n) = bn / theta;
    for (int k = 0; k < N; ++k) {
      const double sign =
          (k <= n || (k - n) % 2 == 0) ? 1.0 : -1.0;  // 1 if k ≤ n, (−1)^{k−n} if k > n
      A(n, k) = -bn * std::sqrt(2.0 * k + 1.0) * sign / theta;
    }
  }
  return {A, B};
}

std::pair<Mat, Vec> lagt(int N, double theta) {
  validate(Spec{Measure::LagT, N, theta});
  Mat A = Mat::Zero(N, N);
  A.triangularView<Eigen::Lower>().setConstant(-1.0 / theta);  // −1/θ on and below the diagonal
  return {A, Vec::Constant(N, 1.0 / theta)};
}

std::pair<Mat, Vec> fout(int N, double theta) {
  validate(Spec{Measure::FouT, N, theta});
  // e = g(z = 0): 1 for the constant, 0 for each sine, √2 for each cosine.
  Vec e = Vec::Zero(N);
  e(0) = 1.0;
  for (int n = 2; n < N; n += 2) e(n) = std::sqrt(2.0);
  Mat D = Mat::Zero(N, N);
  for (int s = 1; s + 1 < N; s += 2) {  // the pair (sin_j, cos_j) sits at (s, s + 1), j = (s+1)/2
    const double w = kTwoPi * ((s + 1) / 2);
    D(s, s + 1) = -w;  // d/dt c_{sin_j} gains −2πj/θ · c_{cos_j}
    D(s + 1, s) = w;   // d/dt c_{cos_j} gains +2πj/θ · c_{sin_j}
  }
  Mat A = (D - 2.0 * e * e.transpose()) / theta;
  return {A, 2.0 * e / theta};
}

std::pair<Mat, Vec> transition(const Spec& s) {
  validate(s);
  switch (s.measure) {
    case Measure::LegS:
      return legs(s.N);
    case Measure::LegT:
      return legt(s.N, s.theta);
    case Measure::LagT:
      return lagt(s.N, s.theta);
    case Measure::FouT:
      return fout(s.N, s.theta);
  }
  throw Error("unknown measure");
}

// ---------------------------------------------------------------------------------------------

void legs_step_dense(const Mat& A, const Vec& B, Vec& c, double u, double k, double alpha) {
  const Eigen::Index N = c.size();
  require(A.rows() == N && A.cols() == N && B.size() == N, "legs_step_dense: A, B, c sizes differ");
  require(k >= 1 && alpha >= 0 && alpha <= 1, "legs_step_dense: need k >= 1 and alpha in [0, 1]");
  // (H5) right-hand side: (I + (1−α)A/k) c + (1/k) B u — one dense mat-vec.
  Vec r = c + ((1.0 - alpha) / k) * (A * c) + (u / k) * B;
  // (H5) solve (I − αA/k) c = r. A is lower triangular, so forward substitution; column by
  // column, so each inner update reads a contiguous column of A.
  for (Eigen::Index n = 0; n < N; ++n) {
    c(n) = r(n) / (1.0 - (alpha / k) * A(n, n));
    r.tail(N - n - 1) += ((alpha / k) * c(n)) * A.col(n).tail(N - n - 1);
  }
}

void legs_step_fast(const Vec& B, Vec& c, double u, double k, double alpha) {
  const Eigen::Index N = c.size();
  require(B.size() == N, "legs_step_fast: B and c sizes differ");
  require(k >= 1 && alpha >= 0 && alpha <= 1, "legs_step_fast: need k >= 1 and alpha in [0, 1]");
  // (H6) A·x = −((n+1) x_n + b_n S_n(x)), S_n(x) = Σ_{j<n} b_j x_j. Row n of (H5), times k:
  //   (k + α(n+1)) y_n = (k − (1−α)(n+1)) c_n + b_n (u − (1−α) S_n(c) − α S_n(y)),
  // where c is the old state and y the new one. S_n(c) and S_n(y) are running sums, so one
  // pass over n does the mat-vec and the triangular solve together, in place.
  // Speed: the loop is a chain through s_new (each y_n needs the sum of the y before it), so
  // only what depends on s_new stays on it: the division and the old-state terms do not
  // (measured 2.3× faster than dividing the whole numerator: apps/bench/bench_hippo.cpp).
  const double a1 = 1.0 - alpha;
  double s_old = 0.0, s_new = 0.0;
  double* x = c.data();
  const double* b = B.data();
  for (Eigen::Index n = 0; n < N; ++n) {
    const double d = static_cast<double>(n + 1), inv = 1.0 / (k + alpha * d);
    const double rhs = (k - a1 * d) * x[n] + b[n] * (u - a1 * s_old);  // needs only the old state
    s_old += b[n] * x[n];
    const double y = (rhs - alpha * b[n] * s_new) * inv;
    s_new += b[n] * y;
    x[n] = y;
  }
}

// ---------------------------------------------------------------------------------------------

void validate(const Spec& s, const Stepping& st) {
  validate(s);
  require(std::isfinite(st.alpha) && st.alpha >= 0 && st.alpha <= 1,
          "--alpha must be in [0, 1], got " + fmt(st.alpha));
  if (s.measure == Measure::LegS) legs_alpha(st);
}

Online::Online(const Spec& spec, const Stepping& stepping, double dt)
    : spec_(spec), st_(stepping), dt_(dt) {
  validate(spec_, st_);
  require(std::isfinite(dt) && dt > 0, "--dt must be finite and > 0, got " + fmt(dt));
  auto [A, B] = transition(spec_);
  if (spec_.measure == Measure::LegS) {
    st_.alpha = legs_alpha(st_);
    B_ = std::move(B);
    if (st_.dense) A_ = std::move(A);
  } else {
    // LTI: stage 2's discretization (D1–D6) with step Δ, then x_k = Ā x_{k−1} + B̄ u_k.
    const Discretized d = discretize(A, B, dt, st_.method, st_.alpha);
    Ab_ = d.Ab;
    Bb_ = d.Bb;
  }
  c_ = Vec::Zero(spec_.N);
}

void Online::push(double u) {
  ++k_;
  if (spec_.measure == Measure::LegS) {
    if (k_ == 0) {
      c_.setZero();
      c_(0) = u;  // (H3) as t → 0: the projection of u on [0, t] tends to u(0)·e_0
    } else if (st_.dense) {
      legs_step_dense(A_, B_, c_, u, double(k_), st_.alpha);
    } else {
      legs_step_fast(B_, c_, u, double(k_), st_.alpha);
    }
  } else if (k_ > 0) {  // c_0 = 0: the past before t = 0 is empty
    c_ = Ab_ * c_ + Bb_ * u;
  }
  if (!c_.allFinite())
    throw Error(measure_name(spec_.measure) + " with N = " + std::to_string(spec_.N) + " and " +
                method_name(st_.method) + " steps: the coefficients became non-finite at step " +
                std::to_string(k_) + " (t = " + fmt(t()) + " s); N = " + std::to_string(spec_.N) +
                " is too large for this measure to stay finite with this method (use a smaller "
                "--N or a stable --method such as bilinear)");
}

Mat online(const std::vector<double>& u, double dt, const Spec& spec, const Stepping& st) {
  Online o(spec, st, dt);
  Mat C(spec.N, static_cast<Eigen::Index>(u.size()));
  for (std::size_t k = 0; k < u.size(); ++k) {
    o.push(u[k]);
    C.col(static_cast<Eigen::Index>(k)) = o.c();
  }
  return C;
}

Mat online_at(const std::vector<double>& u, double dt, const Spec& spec, const Stepping& st,
              const std::vector<std::size_t>& steps) {
  std::size_t last = 0;
  for (std::size_t s : steps) {
    require(s < u.size(), "online_at: step " + std::to_string(s) +
                              " is past the signal (L = " + std::to_string(u.size()) + ")");
    last = std::max(last, s);
  }
  Mat C(spec.N, static_cast<Eigen::Index>(steps.size()));
  Online o(spec, st, dt);
  for (std::size_t k = 0; k <= last && !steps.empty(); ++k) {
    o.push(u[k]);
    for (std::size_t j = 0; j < steps.size(); ++j)
      if (steps[j] == k) C.col(static_cast<Eigen::Index>(j)) = o.c();
  }
  return C;
}

// ---------------------------------------------------------------------------------------------

std::pair<double, double> window(const Spec& s, double t) {
  switch (s.measure) {
    case Measure::LegS:
      return {0.0, t};
    case Measure::LagT:
      return {std::max(0.0, t - 8.0 * s.theta), t};
    default:
      return {t - s.theta, t};
  }
}

namespace {

// g_0(s) … g_{N−1}(s) for the state at time t, written to out[0 … N−1].
void eval_basis(const Spec& sp, double t, double s, double* out) {
  const int N = sp.N;
  switch (sp.measure) {
    case Measure::LegS:
    case Measure::LegT: {
      // (H2) g_n = √(2n+1) P_n(x), x = 2s/t − 1 (LegS) or 2(s − t)/θ + 1 (LegT).
      const double x =
          sp.measure == Measure::LegS ? 2.0 * s / t - 1.0 : 2.0 * (s - t) / sp.theta + 1.0;
      double p_prev = 1.0, p = x;  // P_0, P_1
      out[0] = 1.0;
      if (N > 1) out[1] = std::sqrt(3.0) * x;
      for (int n = 1; n + 1 < N; ++n) {
        const double next = boost::math::legendre_next(static_cast<unsigned>(n), x, p, p_prev);
        p_prev = p;
        p = next;
        out[n + 1] = std::sqrt(2.0 * n + 3.0) * p;
      }
      return;
    }
    case Measure::LagT: {
      // g_n = L_n(y), y = (t − s)/θ the age in units of θ.
      const double y = (t - s) / sp.theta;
      double l_prev = 1.0, l = 1.0 - y;  // L_0, L_1
      out[0] = 1.0;
      if (N > 1) out[1] = l;
      for (int n = 1; n + 1 < N; ++n) {
        const double next = boost::math::laguerre_next(static_cast<unsigned>(n), y, l, l_prev);
        l_prev = l;
        l = next;
        out[n + 1] = l;
      }
      return;
    }
    case Measure::FouT: {
      const double z = (s - t) / sp.theta + 1.0;
      out[0] = 1.0;
      for (int n = 1; n < N; ++n) {
        const double arg = kTwoPi * ((n + 1) / 2) * z;
        out[n] = std::sqrt(2.0) * (n % 2 == 1 ? std::sin(arg) : std::cos(arg));
      }
      return;
    }
  }
}

// Quadrature nodes s_i and weights w_i (the measure's density included) over the part of [0, t]
// the measure sees; see project() in the header for the panel rules.
struct Nodes {
  std::vector<double> s, w;
};

Nodes nodes(const Spec& sp, double t, const Truth& tr) {
  validate(sp);
  require(std::isfinite(t) && t > 0, "quadrature: t must be finite and > 0, got " + fmt(t));
  const int N = sp.N;
  // Panel ends. Each panel gets 20 Gauss–Legendre nodes, so each must hold only a few
  // oscillations of the integrand; the ends come from every reason to cut:
  std::vector<double> ends;
  double a = 0.0;  // start of the measure's support
  switch (sp.measure) {
    case Measure::LegS:
    case Measure::LegT: {
      // Legendre: P_n(cos φ) oscillates evenly in φ (its zeros crowd towards ±1 like 1/n²), so
      // the ends are evenly spaced in φ, N/2 of them: about one oscillation per panel.
      a = sp.measure == Measure::LegS ? 0.0 : t - sp.theta;
      const int M = std::max(32, N / 2);
      for (int j = 0; j <= M; ++j)
        ends.push_back(a + (t - a) * 0.5 * (1.0 - std::cos(std::numbers::pi * j / M)));
      break;
    }
    case Measure::FouT: {
      a = t - sp.theta;  // sines and cosines: evenly spaced, one period of the top one per panel
      const int M = std::max(32, N / 2);
      for (int j = 0; j <= M; ++j) ends.push_back(a + sp.theta * j / M);
      break;
    }
    case Measure::LagT: {
      // The support is cut at ages Y = max(80, 10N)·θ: |L_n(y)| ≤ e^{y/2}, so a bounded u adds
      // < 2e^{−40} past age 80θ, but L_n oscillates out to y ≈ 4n and products L_n L_m e^{−y} (as
      // in the error of a reconstruction) fall below e^{−3n} only past y ≈ 10n. L_n(y) behaves
      // like J_0(2√(ny)): it oscillates evenly in √y, so the ends are evenly spaced in √y.
      const double Y = std::max(80.0, 10.0 * N);
      a = t - Y * sp.theta;
      const int M = std::max(64, N);
      for (int j = M; j >= 0; --j)
        ends.push_back(t - sp.theta * Y * (double(j) / M) * (double(j) / M));
      break;
    }
  }
  const double a0 = std::max(a, 0.0);  // u lives on [a0, t]; before 0 it is 0
  if (a < 0) ends.push_back(0.0);      // u may jump at 0
  // u may jump at the multiples of `breaks` (the sample points of a held signal).
  if (tr.breaks > 0)
    for (double k = std::floor(a0 / tr.breaks) + 1; k * tr.breaks < t; k += 1)
      ends.push_back(k * tr.breaks);
  for (int j = 1; j < 1024; ++j) ends.push_back(a0 + (t - a0) * j / 1024.0);  // resolve u itself
  std::sort(ends.begin(), ends.end());
  ends.erase(
      std::unique(ends.begin(), ends.end(),
                  [&](double p, double q) { return q - p <= 1e-14 * std::max(1.0, std::fabs(t)); }),
      ends.end());

  using gauss = boost::math::quadrature::gauss<double, 20>;
  const auto& x = gauss::abscissa();  // the 10 non-negative nodes on [−1, 1]
  const auto& gw = gauss::weights();
  Nodes nd;
  for (std::size_t e = 0; e + 1 < ends.size(); ++e) {
    const double lo = ends[e], hi = ends[e + 1], mid = 0.5 * (lo + hi), h = hi - lo;
    if (!(h > 0)) continue;
    for (std::size_t i = 0; i < x.size(); ++i)
      for (double sign : {-1.0, 1.0}) {
        if (x[i] == 0 && sign > 0) continue;
        const double s = mid + sign * x[i] * 0.5 * h;
        double density = 1.0;
        switch (sp.measure) {
          case Measure::LegS:
            density = 1.0 / t;
            break;
          case Measure::LagT:
            density = std::exp(-(t - s) / sp.theta) / sp.theta;
            break;
          default:
            density = 1.0 / sp.theta;
            break;
        }
        nd.s.push_back(s);
        nd.w.push_back(gw[i] * 0.5 * h * density);
      }
  }
  return nd;
}

}  // namespace

Mat basis(const Spec& s, double t, const std::vector<double>& points) {
  validate(s);
  Mat G(static_cast<Eigen::Index>(points.size()), s.N);
  std::vector<double> row(static_cast<std::size_t>(s.N));
  for (std::size_t i = 0; i < points.size(); ++i) {
    eval_basis(s, t, points[i], row.data());
    G.row(static_cast<Eigen::Index>(i)) = Eigen::Map<const RowVec>(row.data(), s.N);
  }
  return G;
}

std::vector<double> reconstruct(const Spec& s, const Vec& c, double t,
                                const std::vector<double>& points) {
  require(c.size() == s.N, "reconstruct: c has " + std::to_string(c.size()) +
                               " entries, N = " + std::to_string(s.N));
  const Vec v = basis(s, t, points) * c;  // (H4)
  return {v.data(), v.data() + v.size()};
}

Vec project(const Spec& s, double t, const Truth& truth) {
  const Nodes nd = nodes(s, t, truth);
  Vec c = Vec::Zero(s.N);
  std::vector<double> g(static_cast<std::size_t>(s.N));
  for (std::size_t i = 0; i < nd.s.size(); ++i) {
    if (nd.s[i] < 0) continue;                     // u = 0 before the signal starts
    const double wu = nd.w[i] * truth.u(nd.s[i]);  // (H3) ∫ u g_n dμ_t
    if (wu == 0.0) continue;
    eval_basis(s, t, nd.s[i], g.data());
    c += wu * Eigen::Map<const Vec>(g.data(), s.N);
  }
  return c;
}

double weighted_mse(const Spec& s, const Vec& c, double t, const Truth& truth) {
  require(c.size() == s.N, "weighted_mse: c has " + std::to_string(c.size()) +
                               " entries, N = " + std::to_string(s.N));
  const Nodes nd = nodes(s, t, truth);
  std::vector<double> g(static_cast<std::size_t>(s.N));
  double err = 0.0, norm = 0.0;
  for (std::size_t i = 0; i < nd.s.size(); ++i) {
    eval_basis(s, t, nd.s[i], g.data());
    const double u = nd.s[i] < 0 ? 0.0 : truth.u(nd.s[i]);  // u = 0 before the signal starts
    const double d = u - Eigen::Map<const Vec>(g.data(), s.N).dot(c);
    err += nd.w[i] * d * d;
    norm += nd.w[i] * u * u;
  }
  return norm > 0 ? err / norm : err;
}

}  // namespace ssm::hippo
