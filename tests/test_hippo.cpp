// Stage 5: HiPPO. The matrices against closed-form entries; the quadrature ground truth (H3)
// against closed-form projections (spherical Bessel functions, a Laplace transform, a Fourier
// harmonic); the online recurrence against that ground truth; the O(N) LegS step (H6) against
// the dense one and against a long-double dense step.
#include <boost/math/special_functions/bessel.hpp>
#include <boost/math/special_functions/legendre.hpp>
#include <cmath>
#include <complex>
#include <numbers>
#include <random>
#include <string>

#include "helpers.hpp"
#include "ssm/hippo.hpp"
#include "ssm/signal.hpp"

using namespace ssm;
using namespace ssm::hippo;

namespace {

constexpr double kPi = std::numbers::pi;

double rel(const Vec& a, const Vec& ref) {
  return test::rel_err(a, ref);
}

// The default lesson's signal: three sines at 0.2, 0.62 and 1.46 Hz (detail at three scales).
Signal sines(std::size_t L, double T) {
  return make_signal("sines:f=0.2", L, T / double(L - 1), 1);
}

// log2 of successive error ratios when the step halves: the measured order.
double order(double e_coarse, double e_fine) {
  return std::log2(e_coarse / e_fine);
}

}  // namespace

TEST_CASE("LegS (H1): closed-form entries for N = 4") {
  const auto [A, B] = hippo::legs(4);
  // Row n: −√(2n+1)√(2k+1) below the diagonal, −(n+1) on it, 0 above.
  CHECK(A(0, 0) == -1.0);
  CHECK(A(1, 1) == -2.0);
  CHECK(A(3, 3) == -4.0);
  CHECK(std::fabs(A(1, 0) + std::sqrt(3.0)) < 1e-15);
  CHECK(std::fabs(A(3, 1) + std::sqrt(7.0 * 3.0)) < 1e-15);
  CHECK(A(0, 3) == 0.0);
  CHECK(A(1, 2) == 0.0);
  CHECK(std::fabs(B(2) - std::sqrt(5.0)) < 1e-15);
  // Lower triangular: eigenvalues are the diagonal −1, −2, …, −N (stable).
  CHECK(A.triangularView<Eigen::StrictlyUpper>().toDenseMatrix().norm() == 0.0);
}

TEST_CASE("LegS rejects N out of range") {
  CHECK_THROWS_AS(hippo::legs(0), Error);
  CHECK_THROWS_AS(hippo::legs(4097), Error);
}

TEST_CASE("LegT: closed-form entries for N = 4 and theta = 2") {
  const auto [A, B] = legt(4, 2.0);
  // A_nk = −√(2n+1)√(2k+1)/θ on and below the diagonal, times (−1)^{k−n} above it.
  CHECK(std::fabs(A(0, 0) + 0.5) < 1e-15);
  CHECK(std::fabs(A(2, 2) + 2.5) < 1e-15);
  CHECK(std::fabs(A(1, 0) + std::sqrt(3.0) / 2) < 1e-15);
  CHECK(std::fabs(A(3, 1) + std::sqrt(21.0) / 2) < 1e-15);
  CHECK(std::fabs(A(0, 1) - std::sqrt(3.0) / 2) < 1e-15);   // k − n = 1: sign flips
  CHECK(std::fabs(A(0, 2) + std::sqrt(5.0) / 2) < 1e-15);   // k − n = 2: sign stays
  CHECK(std::fabs(A(1, 3) + std::sqrt(21.0) / 2) < 1e-15);  // k − n = 2
  CHECK(std::fabs(A(2, 3) - std::sqrt(35.0) / 2) < 1e-15);  // k − n = 1
  CHECK(std::fabs(B(2) - std::sqrt(5.0) / 2) < 1e-15);
}

TEST_CASE("LagT: closed-form entries for N = 5 and theta = 0.25") {
  const auto [A, B] = lagt(5, 0.25);
  for (int n = 0; n < 5; ++n) {
    CHECK(B(n) == 4.0);
    for (int k = 0; k < 5; ++k) CHECK(A(n, k) == (k <= n ? -4.0 : 0.0));
  }
}

TEST_CASE("FouT: closed-form entries for N = 5 and theta = 0.5") {
  // Order (1, sin 2πz, cos 2πz, sin 4πz, cos 4πz); e = (1, 0, √2, 0, √2).
  const auto [A, B] = fout(5, 0.5);
  const double r2 = std::sqrt(2.0);
  CHECK(std::fabs(B(0) - 4.0) < 1e-15);  // 2·e/θ
  CHECK(B(1) == 0.0);
  CHECK(std::fabs(B(2) - 4.0 * r2) < 1e-14);
  CHECK(B(3) == 0.0);
  CHECK(std::fabs(A(0, 0) + 4.0) < 1e-14);            // −2·1·1/θ
  CHECK(std::fabs(A(2, 2) + 8.0) < 1e-14);            // −2·√2·√2/θ
  CHECK(std::fabs(A(0, 4) + 4.0 * r2) < 1e-14);       // −2·1·√2/θ
  CHECK(std::fabs(A(1, 2) + 2 * kPi / 0.5) < 1e-13);  // d/dt sin_1 ∋ −2π/θ cos_1
  CHECK(std::fabs(A(2, 1) - 2 * kPi / 0.5) < 1e-13);  // d/dt cos_1 ∋ +2π/θ sin_1
  CHECK(std::fabs(A(3, 4) + 4 * kPi / 0.5) < 1e-13);  // frequency 2
  CHECK(std::fabs(A(4, 3) - 4 * kPi / 0.5) < 1e-13);
  CHECK(A(1, 1) == 0.0);
  CHECK(A(1, 3) == 0.0);
  // An even N leaves the last sine alone: its row is zero, so its coefficient stays 0.
  const auto [A4, B4] = fout(4, 0.5);
  CHECK(A4.row(3).norm() == 0.0);
  CHECK(B4(3) == 0.0);
}

TEST_CASE("Every measure keeps a constant: A e0 = -B and the projection of a constant is e0") {
  for (Measure m : {Measure::LegS, Measure::LegT, Measure::LagT, Measure::FouT}) {
    CAPTURE(measure_name(m));
    const Spec s{m, 9, 0.7};
    const auto [A, B] = transition(s);
    CHECK_CLOSE(A.col(0), -B, 1e-13, 1e-14);
    // A constant signal, looked at after the window is full (t = 60θ: LagT's tail is e^{−60}).
    const Vec c = project(s, 60 * 0.7, Truth{[](double) { return 2.5; }, 0.0});
    Vec e0 = Vec::Zero(9);
    e0(0) = 2.5;
    CHECK_CLOSE(c, e0, 1e-12, 0.0);
  }
}

TEST_CASE("Quadrature: each basis is orthonormal under its measure") {
  // Projecting u = g_m itself must give e_m: checks basis() and the quadrature's weights
  // together, at N = 40 where the Legendre and Laguerre recurrences have run for a while.
  for (Measure m : {Measure::LegS, Measure::LegT, Measure::LagT, Measure::FouT}) {
    const Spec s{m, 40, 0.5};
    const double t = 500.0 * 0.5;  // past every support (LagT: 10N·θ), so none of it sees s < 0
    for (int j : {0, 1, 7, 20, 39}) {
      CAPTURE(measure_name(m));
      CAPTURE(j);
      const auto g = [&](double x) { return basis(s, t, {x})(0, j); };
      Vec ej = Vec::Zero(40);
      ej(j) = 1.0;
      // Rounding of ~10⁴ weighted products of O(1) values: far below 1e-12.
      CHECK_CLOSE(project(s, t, Truth{g, 0.0}), ej, 1e-11, 0.0);
    }
  }
  // At large N the zeros of P_n crowd towards the window's ends (spacing ~1/n²): panels evenly
  // spaced in x would hold dozens of oscillations there; the quadrature spaces them in arccos x.
  for (Measure m : {Measure::LegS, Measure::LegT}) {
    const Spec s{m, 1024, 3.0};
    const double t = 5.0;
    for (int j : {1023}) {
      CAPTURE(measure_name(m));
      CAPTURE(j);
      const auto g = [&](double x) { return basis(s, t, {x})(0, j); };
      Vec ej = Vec::Zero(1024);
      ej(j) = 1.0;
      CHECK_CLOSE(project(s, t, Truth{g, 0.0}), ej, 1e-10, 0.0);
    }
  }
}

TEST_CASE("Quadrature vs closed form: LegS of a sine through spherical Bessel functions") {
  // ∫_{−1}^{1} e^{iωx} P_n(x) dx = 2 iⁿ j_n(ω), so for u(s) = sin(ω₀s + φ):
  // c_n(t) = √(2n+1) j_n(ω) Im(iⁿ e^{i(ω + φ)}), ω = ω₀t/2.
  const double w0 = 2 * kPi * 1.3, phi = 0.4, t = 7.0;
  const int N = 1024;  // j_n(ω) ~ (eω/2n)ⁿ: past n ≈ 40 the coefficients are tiny, and must stay so
  const Vec c = project(Spec{Measure::LegS, N, 1.0}, t,
                        Truth{[&](double s) { return std::sin(w0 * s + phi); }, 0.0});
  const double w = w0 * t / 2;
  Vec ref(N);
  for (int n = 0; n < N; ++n) {
    const std::complex<double> in =
        std::pow(std::complex<double>(0, 1), n) * std::polar(1.0, w + phi);
    ref(n) =
        std::sqrt(2.0 * n + 1) * boost::math::sph_bessel(static_cast<unsigned>(n), w) * in.imag();
  }
  CHECK_CLOSE(c, ref, 1e-13, 1e-12);
}

TEST_CASE("Quadrature vs closed form: LegS of a step whose jump is on the break grid") {
  // u = 1 for s ≥ t0: c_n = (√(2n+1)/2) ∫_{x0}^{1} P_n = −(√(2n+1)/2)(P_{n+1}(x0) −
  // P_{n−1}(x0))/(2n+1) for n ≥ 1 and (1 − x0)/2 for n = 0, x0 = 2t0/t − 1. Panels end at the
  // multiples of 0.25 (the jump included), so each panel integrates a polynomial: exact to
  // rounding.
  const double t0 = 3.0, t = 10.0, x0 = 2 * t0 / t - 1;
  const int N = 200;
  const Vec c = project(Spec{Measure::LegS, N, 1.0}, t,
                        Truth{[&](double s) { return s >= t0 ? 1.0 : 0.0; }, 0.25});
  Vec ref(N);
  ref(0) = (1 - x0) / 2;
  for (int n = 1; n < N; ++n)
    ref(n) = -std::sqrt(2.0 * n + 1) / 2 *
             (boost::math::legendre_p(n + 1, x0) - boost::math::legendre_p(n - 1, x0)) /
             (2.0 * n + 1);
  CHECK_CLOSE(c, ref, 1e-13, 1e-12);
}

TEST_CASE("Quadrature vs closed form: LagT of a sine through its Laplace transform") {
  // ∫_0^∞ L_n(z) e^{−pz} dz = (p − 1)ⁿ / p^{n+1}; with u(s) = sin(ω₀s + φ) and z the age in units
  // of θ: c_n = Im(e^{i(ω₀t + φ)} (iω₀θ)ⁿ / (1 + iω₀θ)^{n+1}). The signal starts at 0, so take
  // t = 80θ: the missing tail is below 2e^{−40}.
  const double w0 = 2 * kPi * 0.9, phi = 1.1, theta = 0.3, t = 80 * theta;
  const int N = 24;
  const Vec c = project(Spec{Measure::LagT, N, theta}, t,
                        Truth{[&](double s) { return std::sin(w0 * s + phi); }, 0.0});
  const std::complex<double> p(1.0, w0 * theta);
  Vec ref(N);
  for (int n = 0; n < N; ++n)
    ref(n) = (std::polar(1.0, w0 * t + phi) * std::pow(p - 1.0, n) / std::pow(p, n + 1)).imag();
  CHECK_CLOSE(c, ref, 1e-13, 1e-12);
}

TEST_CASE("Quadrature vs closed form: FouT of a harmonic of the window") {
  // u(s) = sin(2πm s/θ + φ) = sin(2πmz + ψ) on the window, ψ = 2πm(t/θ − 1) + φ:
  // c_{sin m} = cos ψ / √2, c_{cos m} = sin ψ / √2, every other coefficient 0.
  const double theta = 0.8, phi = 0.3, t = 3.3;
  const int m = 3, N = 11;
  const Vec c =
      project(Spec{Measure::FouT, N, theta}, t,
              Truth{[&](double s) { return std::sin(2 * kPi * m * s / theta + phi); }, 0.0});
  const double psi = 2 * kPi * m * (t / theta - 1) + phi;
  Vec ref = Vec::Zero(N);
  ref(2 * m - 1) = std::cos(psi) / std::sqrt(2.0);
  ref(2 * m) = std::sin(psi) / std::sqrt(2.0);
  CHECK_CLOSE(c, ref, 1e-13, 0.0);
}

TEST_CASE("Reconstruction (H4) of a polynomial of degree N-1 is exact") {
  // A cubic is in the span of g_0 … g_3 on any window: its projection reproduces it.
  const auto u = [](double s) { return 0.5 - 1.2 * s + 0.3 * s * s - 0.04 * s * s * s; };
  for (Measure m : {Measure::LegS, Measure::LegT}) {
    CAPTURE(measure_name(m));
    const Spec s{m, 4, 1.5};
    const double t = 4.0;
    const Vec c = project(s, t, Truth{u, 0.0});
    const auto [lo, hi] = window(s, t);
    std::vector<double> pts;
    for (int i = 0; i <= 20; ++i) pts.push_back(lo + (hi - lo) * i / 20.0);
    const std::vector<double> r = reconstruct(s, c, t, pts);
    for (std::size_t i = 0; i < pts.size(); ++i) CHECK(std::fabs(r[i] - u(pts[i])) < 1e-12);
  }
}

TEST_CASE(
    "LegS online vs quadrature: first order for every alpha and bilinear is the most accurate") {
  // (H5) freezes 1/t at the step's end and holds u_k over the step, so every α is first order:
  // the error halves when Δ halves. Δ = 10 s / 1000, 10 s / 2000, 10 s / 4000; N = 32; t = 10 s.
  const Spec s{Measure::LegS, 32, 1.0};
  const double T = 10.0;
  const std::size_t Ls[] = {1001, 2001, 4001};
  double err[3][3];
  Vec c[3][3];
  const double alphas[] = {0.0, 0.5, 1.0};
  for (int a = 0; a < 3; ++a)
    for (int i = 0; i < 3; ++i) {
      const Signal sig = sines(Ls[i], T);
      c[a][i] =
          online_at(sig.samples, sig.dt, s, Stepping{Method::GBT, alphas[a]}, {Ls[i] - 1}).col(0);
      const Vec q = project(s, T, Truth{sig.fn, 0.0});
      err[a][i] = rel(c[a][i], q);
    }
  for (int a = 0; a < 3; ++a) {
    CAPTURE(alphas[a]);
    CHECK(order(err[a][0], err[a][1]) == doctest::Approx(1.0).epsilon(0.15));
    CHECK(order(err[a][1], err[a][2]) == doctest::Approx(1.0).epsilon(0.1));
  }
  // Bilinear: ~15× smaller than either Euler (measured 9.4e-4 against 1.4e-2 and 1.3e-2).
  CHECK(err[1][2] * 5 < err[0][2]);
  CHECK(err[1][2] * 5 < err[2][2]);
  // The app's tolerance for this check (Richardson): at first order the error at Δ is about
  // twice the change of c when Δ halves; the app allows 2.5×.
  for (int a = 0; a < 3; ++a)
    for (int i = 0; i < 2; ++i) {
      CAPTURE(alphas[a]);
      CAPTURE(i);
      CHECK(err[a][i] <= 2.5 * rel(c[a][i], c[a][i + 1]));
      CHECK(err[a][i] >= 1.5 * rel(c[a][i], c[a][i + 1]));  // and the estimate is not loose
    }
}

TEST_CASE("LagT online with ZOH equals the projection of the held signal to rounding") {
  // LagT's ODE is exact (no approximation) and ZOH is exact for an input held over each step,
  // so the only errors are rounding: ~ε per step, forgotten at rate 1/θ.
  const Signal sig = make_signal("walk", 600, 0.01, 7);
  const Spec s{Measure::LagT, 16, 0.5};
  const Mat C = online_at(sig.samples, sig.dt, s, Stepping{Method::ZOH}, {100, 599});
  for (int j = 0; j < 2; ++j) {
    const double t = (j == 0 ? 100 : 599) * sig.dt;
    const Vec q = project(s, t, Truth{[&](double x) { return sig.at(x); }, sig.dt});
    CHECK(rel(C.col(j), q) < 1e-11);
  }
}

TEST_CASE("LegT and FouT: online vs quadrature error falls as N grows") {
  // Both estimate the value leaving the window from the state: the error of that estimate falls
  // spectrally with N for LegT (down to the step's own first-order error) and like 1/N for FouT
  // (a Fourier series converges slowly at the window's ends).
  const double T = 10.0;
  const Signal sig = sines(8001, T);
  for (Measure m : {Measure::LegT, Measure::FouT}) {
    CAPTURE(measure_name(m));
    std::vector<double> e;
    for (int N : {9, 17, 33, 65}) {
      const Spec s{m, N, 2.0};
      const Vec c = online_at(sig.samples, sig.dt, s, Stepping{}, {sig.size() - 1}).col(0);
      e.push_back(rel(c, project(s, T, Truth{sig.fn, 0.0})));
    }
    if (m == Measure::LegT) {
      CHECK(e[1] < e[0] / 20);  // measured 8.7e-2 → 1.3e-3: at the step's first-order floor
      CHECK(e[3] < 2e-3);
    } else {
      for (std::size_t i = 1; i < e.size(); ++i) CHECK(e[i] < 0.65 * e[i - 1]);  // ≈ halves
      CHECK(e[3] < 0.02);
    }
  }
}

TEST_CASE("Reconstruction error falls as N grows on a smooth signal for every measure") {
  // The exact projection minimizes the measure-weighted error, so it must fall with N (Bessel's
  // inequality); the online coefficients must follow it.
  const double T = 10.0;
  const Signal sig = sines(4001, T);
  for (Measure m : {Measure::LegS, Measure::LegT, Measure::LagT, Measure::FouT}) {
    CAPTURE(measure_name(m));
    double prev_q = INFINITY, prev_o = INFINITY;
    for (int N : {5, 9, 17, 33}) {
      CAPTURE(N);
      const Spec s{m, N, 2.0};
      const Truth tr{sig.fn, 0.0};
      const double mq = weighted_mse(s, project(s, T, tr), T, tr);
      const double mo =
          weighted_mse(s, online_at(sig.samples, sig.dt, s, Stepping{}, {4000}).col(0), T, tr);
      CHECK(mq < prev_q);
      CHECK(mo < prev_o);
      CHECK(mq <= mo * (1 + 1e-9));  // nothing beats the projection
      prev_q = mq;
      prev_o = mo;
    }
  }
}

TEST_CASE("Fast LegS step equals the dense step on the states of real runs for N up to 4096") {
  // The states HiPPO visits are coefficient vectors of signals. Both steps round like ε times the
  // size of the sums they form (~1e-15 here); the project's bound is 1e-12 relative.
  for (int N : {1, 2, 7, 64, 512, 4096}) {
    const auto [A, B] = legs(N);
    for (const char* spec : {"sines:f=0.2", "square:f=0.3", "noise"}) {
      const Signal sig = make_signal(spec, 3000, 0.0025, 3);
      for (double alpha : {0.0, 0.5, 1.0}) {
        if (alpha == 0.0 && N > 64) continue;  // forward Euler LegS overflows at large N
        Online run(Spec{Measure::LegS, N, 1.0}, Stepping{Method::GBT, alpha}, sig.dt);
        for (std::size_t k = 0; k < sig.size(); ++k) {
          if (k == 1 || k == 2 || k == 30 || k == 2999) {  // step k from the state c_{k−1}
            CAPTURE(N);
            CAPTURE(spec);
            CAPTURE(alpha);
            CAPTURE(k);
            Vec c = run.c(), d = run.c();
            legs_step_fast(B, c, sig.samples[k], double(k), alpha);
            legs_step_dense(A, B, d, sig.samples[k], double(k), alpha);
            CHECK(rel(c, d) <= 1e-12);
          }
          run.push(sig.samples[k]);
        }
      }
    }
  }
}

TEST_CASE("Fast LegS step on random states is as accurate as a long-double dense step") {
  // Random O(1) states (every Legendre mode excited) are the hard case: the sums have large
  // terms that cancel. Against a dense step in long double (A's entries formed on the fly), the
  // O(N) step errs by ≤ ~1e-13; the double dense step itself errs by up to ~5e-12 at N = 4096.
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> U(-1.0, 1.0);
  for (int N : {64, 1024, 4096})
    for (double alpha : {0.0, 0.5, 1.0})
      for (double k : {1.0, 2.0, 37.0}) {
        if (N == 4096 && (alpha != 0.5 || k != 1.0))
          continue;  // the worst case only: O(N²) in long double
        Vec c(N);
        for (int n = 0; n < N; ++n) c(n) = U(rng);
        // Long-double dense reference: r = (I + (1−α)A/k)c + Bu/k, then forward substitution.
        using LD = long double;
        const LD kk = k, al = alpha, u = 0.3L;
        std::vector<LD> b(N), r(N), y(N);
        for (int n = 0; n < N; ++n) b[n] = std::sqrt(LD(2 * n + 1));
        for (int n = 0; n < N; ++n) {
          LD Ac = -LD(n + 1) * c(n);
          for (int j = 0; j < n; ++j) Ac -= b[n] * b[j] * c(j);
          r[n] = c(n) + (1 - al) / kk * Ac + u / kk * b[n];
        }
        for (int n = 0; n < N; ++n) {
          LD acc = r[n];
          for (int j = 0; j < n; ++j) acc += al / kk * (-b[n] * b[j]) * y[j];
          y[n] = acc / (1 + al / kk * LD(n + 1));
        }
        Vec ref(N);
        for (int n = 0; n < N; ++n) ref(n) = static_cast<double>(y[n]);
        legs_step_fast(legs(N).second, c, 0.3, k, alpha);
        CAPTURE(N);
        CAPTURE(alpha);
        CAPTURE(k);
        CHECK(rel(c, ref) <= 1e-12);
      }
}

TEST_CASE("Online LegS: dense and fast runs agree over a whole signal") {
  const Signal sig = make_signal("chirp", 2000, 0.005, 1);
  const Spec s{Measure::LegS, 256, 1.0};
  const Mat f = online(sig.samples, sig.dt, s, Stepping{});
  const Mat d = online(sig.samples, sig.dt, s, Stepping{Method::Bilinear, 0.5, true});
  // Per step ~1e-15; bilinear steps do not amplify (A-stable), so no growth over 2000 steps.
  CHECK(test::rel_err(f, d) <= 1e-12);
  // online_at returns the same columns.
  const Mat at = online_at(sig.samples, sig.dt, s, Stepping{}, {1999, 0, 500});
  CHECK(test::rel_err(Vec(at.col(0)), Vec(f.col(1999))) == 0.0);
  CHECK(test::rel_err(Vec(at.col(1)), Vec(f.col(0))) == 0.0);
  CHECK(test::rel_err(Vec(at.col(2)), Vec(f.col(500))) == 0.0);
}

TEST_CASE("Non-finite coefficients are detected and name the step and N") {
  // Forward Euler multiplies LegS mode n by 1 − (n+1)/k: at N = 2048 the early steps overflow.
  const Signal sig = make_signal("sines", 2000, 0.005, 1);
  try {
    online(sig.samples, sig.dt, Spec{Measure::LegS, 2048, 1.0}, Stepping{Method::Euler});
    FAIL("expected an Error");
  } catch (const Error& e) {
    const std::string w = e.what();
    CHECK(w.find("N = 2048") != std::string::npos);
    CHECK(w.find("non-finite at step ") != std::string::npos);
  }
  // The same N with bilinear steps stays finite.
  CHECK(online_at(sig.samples, sig.dt, Spec{Measure::LegS, 2048, 1.0}, Stepping{}, {1999})
            .allFinite());
}

TEST_CASE("Bad arguments are rejected with a message naming the flag") {
  CHECK_THROWS_WITH_AS(legt(8, 0.0), "--theta must be finite and > 0, got 0", Error);
  CHECK_THROWS_WITH_AS(fout(8, -1.0), "--theta must be finite and > 0, got -1", Error);
  CHECK_THROWS_AS(lagt(8, NAN), Error);
  CHECK_THROWS_WITH_AS(transition(Spec{Measure::LegT, 1025, 1.0}),
                       "--N must be in [1, 1024] for legt, got 1025", Error);
  CHECK_THROWS_AS(transition(Spec{Measure::FouT, 0, 1.0}), Error);
  CHECK_THROWS_WITH_AS(parse_measure("legx"),
                       "unknown measure 'legx' (valid: legs, legt, lagt, fout)", Error);
  CHECK_THROWS_AS(Online(Spec{Measure::LegS, 8, 1.0}, Stepping{Method::ZOH}, 0.1), Error);
  CHECK_THROWS_AS(Online(Spec{Measure::LegS, 8, 1.0}, Stepping{Method::GBT, 1.5}, 0.1), Error);
  CHECK_THROWS_AS(Online(Spec{Measure::LegT, 8, 1.0}, Stepping{}, 0.0), Error);
  CHECK(parse_measure("fout") == Measure::FouT);
  CHECK(time_invariant(Measure::LagT));
  CHECK(!time_invariant(Measure::LegS));
}
