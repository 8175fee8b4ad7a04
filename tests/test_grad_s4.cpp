// Stage 8a: the backward passes of the FFT convolution (G11), of the S4D kernel (G12, G13) and
// of the S4 DPLR kernel (G22, G23), each against central finite differences of its forward
// (stage 4's direct convolution, stage 6's s4d_kernel and CauchyKernel), which never call the
// backward; the FFT path against the O(L²) sums; float against double; the whole S4D layer end
// to end; the DPLR backward at rank 0 against the S4D one; bad input.
#include <cmath>
#include <complex>
#include <functional>
#include <random>

#include "helpers.hpp"
#include "ssm/grad_s4.hpp"

using namespace ssm;

namespace {

using cdouble = std::complex<double>;

Signals<double> random_signals(Eigen::Index H, Eigen::Index L, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nrm;
  Signals<double> S(H, L);
  for (Eigen::Index i = 0; i < S.size(); ++i) S.data()[i] = nrm(rng);
  return S;
}

// Central differences. The losses below are smooth with derivatives of order 1–10 in every
// parameter; with h = 1e-6·max(1, |p|) the truncation error h²·|ℓ'''|/6 is ~1e-12 and the
// rounding error ε·|ℓ|/h ~ 1e-10·|ℓ|, both four orders below the 1e-6 relative tolerance (the
// convolution is linear: its differences are exact up to that rounding).
double step_of(double p) { return 1e-6 * std::max(1.0, std::abs(p)); }

double fd(const std::function<double(double)>& f, double p) {
  const double h = step_of(p);
  return (f(p + h) - f(p - h)) / (2 * h);
}

// ∂ℓ/∂Re p + i ∂ℓ/∂Im p, the convention of grad_s4.hpp.
cdouble fd_complex(const std::function<double(cdouble)>& f, cdouble p) {
  const double h = step_of(std::abs(p));
  const cdouble i(0.0, 1.0);
  return {(f(p + h) - f(p - h)) / (2 * h), (f(p + i * h) - f(p - i * h)) / (2 * h)};
}

template <class A, class B>
double rel_to_max(const A& got, const B& want) {
  return (got - want).cwiseAbs().maxCoeff() / want.cwiseAbs().maxCoeff();
}

constexpr double kFdTol = 1e-6;

// An S4D model with a random complex B̃ (the inits' B̃ = 1 would hide a conj or a swapped B, C).
s4::Dplr random_s4d(s4::S4DInit init, int N, std::uint64_t seed) {
  s4::Dplr m = s4::s4d_init(init, N);
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nrm;
  for (Eigen::Index n = 0; n < m.B.size(); ++n) m.B(n) = cdouble(nrm(rng), nrm(rng));
  return m;
}

double kernel_loss(const s4::Dplr& m, const Vec& dt, const CMat& C, std::size_t L, Method method,
                   const Signals<double>& W) {
  Signals<double> K;
  s4::s4d_kernels<double>(m, dt, C, L, method, K, 1);
  return (K.array() * W.array()).sum();
}

double dplr_loss(const s4::Dplr& m, const Vec& dt, const CMat& Cp, const Signals<double>& W) {
  s4::CauchyKernel<double> gen(m, static_cast<std::size_t>(W.cols()));
  Signals<double> K;
  gen(dt, Cp, K, 1);
  return (K.array() * W.array()).sum();
}

// Every gradient of dplr_loss by central differences (complex entries: real and imaginary
// parts apart), in the layout of grad::DplrKernelGrads.
grad::DplrKernelGrads dplr_fd(const s4::Dplr& m, const Vec& dt, const CMat& Cp,
                              const Signals<double>& W) {
  const int Nh = m.Nh(), r = m.rank();
  const Eigen::Index H = dt.size();
  grad::DplrKernelGrads f;
  f.dLambda.resize(Nh);
  f.dB.resize(Nh);
  f.dP.resize(Nh, r);
  f.dCp.resize(H, Nh);
  f.ddt.resize(H);
  f.dlog_dt.resize(H);
  for (int n = 0; n < Nh; ++n) {
    f.dLambda(n) = fd_complex([&](cdouble x) { auto mm = m; mm.Lambda(n) = x;
                                               return dplr_loss(mm, dt, Cp, W); }, m.Lambda(n));
    f.dB(n) = fd_complex([&](cdouble x) { auto mm = m; mm.B(n) = x;
                                          return dplr_loss(mm, dt, Cp, W); }, m.B(n));
    for (int q = 0; q < r; ++q)
      f.dP(n, q) = fd_complex([&](cdouble x) { auto mm = m; mm.P(n, q) = x;
                                               return dplr_loss(mm, dt, Cp, W); }, m.P(n, q));
    for (Eigen::Index h = 0; h < H; ++h)
      f.dCp(h, n) = fd_complex([&](cdouble x) { CMat c = Cp; c(h, n) = x;
                                                return dplr_loss(m, dt, c, W); }, Cp(h, n));
  }
  for (Eigen::Index h = 0; h < H; ++h) {
    // A relative step for Δ (see the note above the first DPLR test).
    const double st = 1e-6 * dt(h);
    Vec a = dt, b = dt;
    a(h) += st;
    b(h) -= st;
    f.ddt(h) = (dplr_loss(m, a, Cp, W) - dplr_loss(m, b, Cp, W)) / (2 * st);
    f.dlog_dt(h) = fd([&](double x) { Vec d = dt; d(h) = std::exp(x);
                                      return dplr_loss(m, d, Cp, W); }, std::log(dt(h)));
  }
  return f;
}

}  // namespace

TEST_CASE("conv backward (G11): the FFT correlations equal the direct sums and finite differences") {
  const Eigen::Index H = 3, L = 13;
  const Signals<double> K = random_signals(H, L, 1), U = random_signals(H, L, 2),
                        dY = random_signals(H, L, 3);
  const Vec D = Vec::LinSpaced(H, 0.5, 1.5);
  FFTConv<double> fft(L);
  Signals<double> dK, dU, dK0, dU0;
  Vec dD, dD0;
  grad::conv_backward(fft, K, U, dY, &D, dK, dU, &dD);
  grad::conv_backward_direct(K, U, dY, &D, dK0, dU0, &dD0);
  CHECK(rel_to_max(dK, dK0) <= 1e-13);  // FFT rounding of sums of L products: ~1e-15 measured
  CHECK(rel_to_max(dU, dU0) <= 1e-13);
  CHECK(rel_to_max(dD, dD0) <= 1e-15);

  auto loss = [&](const Signals<double>& k, const Signals<double>& u, const Vec& d) {
    double l = 0;
    std::vector<double> y(static_cast<std::size_t>(L));
    for (Eigen::Index h = 0; h < H; ++h) {
      causal_conv_direct(k.row(h).data(), u.row(h).data(), y.data(), std::size_t(L), d(h));
      for (Eigen::Index t = 0; t < L; ++t) l += dY(h, t) * y[std::size_t(t)];
    }
    return l;
  };
  Signals<double> fK(H, L), fU(H, L);
  Vec fD(H);
  for (Eigen::Index h = 0; h < H; ++h) {
    for (Eigen::Index t = 0; t < L; ++t) {
      fK(h, t) = fd([&](double v) { auto k = K; k(h, t) = v; return loss(k, U, D); }, K(h, t));
      fU(h, t) = fd([&](double v) { auto u = U; u(h, t) = v; return loss(K, u, D); }, U(h, t));
    }
    fD(h) = fd([&](double v) { Vec d = D; d(h) = v; return loss(K, U, d); }, D(h));
  }
  CHECK(rel_to_max(dK0, fK) <= kFdTol);
  CHECK(rel_to_max(dU0, fU) <= kFdTol);
  CHECK(rel_to_max(dD0, fD) <= kFdTol);
  MESSAGE("conv backward vs finite differences: dK " << rel_to_max(dK0, fK) << ", du "
                                                     << rel_to_max(dU0, fU) << ", dD "
                                                     << rel_to_max(dD0, fD) << " (tol 1e-6)");

  SUBCASE("float follows double to float rounding, and no skip leaves D out") {
    FFTConv<float> f32(L);
    Signals<float> dKf, dUf;
    grad::conv_backward<float>(f32, K.cast<float>(), U.cast<float>(), dY.cast<float>(), nullptr,
                               dKf, dUf, nullptr, 2);
    Signals<double> dKn, dUn;
    grad::conv_backward_direct(K, U, dY, nullptr, dKn, dUn);
    CHECK(rel_to_max(dKf.cast<double>(), dKn) <= 1e-5);  // ε_float·√L·a few
    CHECK(rel_to_max(dUf.cast<double>(), dUn) <= 1e-5);
    CHECK(rel_to_max(dUn + D.asDiagonal() * dY, dU0) <= 1e-15);
  }
}

TEST_CASE("S4D kernel backward (G12, G13): every gradient against finite differences") {
  const int N = 8, H = 2;
  const std::size_t L = 40;
  for (Method method : {Method::ZOH, Method::Bilinear})
    for (s4::S4DInit init : {s4::S4DInit::Inv, s4::S4DInit::Lin, s4::S4DInit::LegS}) {
      CAPTURE(method_name(method));
      CAPTURE(s4::s4d_init_name(init));
      const s4::Dplr m = random_s4d(init, N, 11);
      const Vec dt = (Vec(H) << 0.07, 0.3).finished();
      const CMat C = s4::random_C(H, m.Nh(), 12);
      const Signals<double> W = random_signals(H, Eigen::Index(L), 13);
      const auto g = grad::s4d_kernels_backward(m, dt, C, W, method, 2);
      const int Nh = m.Nh();
      CVec fLam(Nh), fB(Nh);
      CMat fC(H, Nh);
      Vec fdt(H);
      for (int n = 0; n < Nh; ++n) {
        fLam(n) = fd_complex([&](cdouble v) { auto mm = m; mm.Lambda(n) = v;
                                              return kernel_loss(mm, dt, C, L, method, W); },
                             m.Lambda(n));
        fB(n) = fd_complex([&](cdouble v) { auto mm = m; mm.B(n) = v;
                                            return kernel_loss(mm, dt, C, L, method, W); },
                           m.B(n));
        for (int h = 0; h < H; ++h)
          fC(h, n) = fd_complex([&](cdouble v) { CMat c = C; c(h, n) = v;
                                                 return kernel_loss(m, dt, c, L, method, W); },
                                C(h, n));
      }
      for (int h = 0; h < H; ++h)
        fdt(h) = fd([&](double v) { Vec d = dt; d(h) = v;
                                    return kernel_loss(m, d, C, L, method, W); }, dt(h));
      CHECK(rel_to_max(g.dLambda, fLam) <= kFdTol);
      CHECK(rel_to_max(g.dB, fB) <= kFdTol);
      CHECK(rel_to_max(g.dC, fC) <= kFdTol);
      CHECK(rel_to_max(g.ddt, fdt) <= kFdTol);
      CHECK(rel_to_max(g.dlog_dt, Vec(dt.array() * fdt.array())) <= kFdTol);
      if (init == s4::S4DInit::Inv)
        MESSAGE(method_name(method) << ": dΛ " << rel_to_max(g.dLambda, fLam) << ", dB̃ "
                << rel_to_max(g.dB, fB) << ", dC̃ " << rel_to_max(g.dC, fC) << ", dΔ "
                << rel_to_max(g.ddt, fdt) << " (tol 1e-6)");
    }
}

TEST_CASE("S4D layer backward: Λ, B̃, C̃, Δ, D and u of y = K̄ * u + D u, end to end") {
  const int N = 6, H = 3;
  const Eigen::Index L = 33;  // not a power of two: FFTConv pads to 65 → 66
  const s4::Dplr m = random_s4d(s4::S4DInit::Inv, N, 21);
  const Vec dt = (Vec(H) << 0.02, 0.1, 0.5).finished();
  const CMat C = s4::random_C(H, m.Nh(), 22);
  const Vec D = (Vec(H) << 1.0, -0.5, 0.25).finished();
  const Signals<double> U = random_signals(H, L, 23), dY = random_signals(H, L, 24);
  auto loss = [&](const s4::Dplr& mm, const Vec& d, const CMat& c, const Vec& skip,
                  const Signals<double>& u) {
    Signals<double> Y;
    grad::s4d_layer_forward(mm, d, c, skip, u, Method::ZOH, Y);
    return (Y.array() * dY.array()).sum();
  };
  const auto g = grad::s4d_layer_backward(m, dt, C, D, U, dY, Method::ZOH, 2);
  Signals<double> fU(H, L);
  Vec fD(H), flog(H);
  for (int h = 0; h < H; ++h) {
    for (Eigen::Index t = 0; t < L; ++t)
      fU(h, t) = fd([&](double v) { auto u = U; u(h, t) = v; return loss(m, dt, C, D, u); }, U(h, t));
    fD(h) = fd([&](double v) { Vec s = D; s(h) = v; return loss(m, dt, C, s, U); }, D(h));
    flog(h) = fd([&](double v) { Vec d = dt; d(h) = std::exp(v); return loss(m, d, C, D, U); },
                 std::log(dt(h)));
  }
  const cdouble fl0 = fd_complex([&](cdouble v) { auto mm = m; mm.Lambda(0) = v;
                                                  return loss(mm, dt, C, D, U); }, m.Lambda(0));
  CHECK(rel_to_max(g.dU, fU) <= kFdTol);
  CHECK(rel_to_max(g.dD, fD) <= kFdTol);
  CHECK(rel_to_max(g.kernel.dlog_dt, flog) <= kFdTol);
  CHECK(std::abs(g.kernel.dLambda(0) - fl0) <= kFdTol * std::abs(fl0));
  MESSAGE("S4D layer vs finite differences: du " << rel_to_max(g.dU, fU) << ", dD "
          << rel_to_max(g.dD, fD) << ", dlogΔ " << rel_to_max(g.kernel.dlog_dt, flog) << ", dλ_0 "
          << std::abs(g.kernel.dLambda(0) - fl0) / std::abs(fl0) << " (tol 1e-6)");
}

// The step: h = 1e-6·max(1, |p|) (step_of); the central difference errs by h²|ℓ⁽³⁾|/6 plus
// ε|ℓ|/h. The resolvents 1/(g − λ) peak at 1/|Re λ| ≤ 10 (Re λ ≤ −0.1 in random_dplr) where
// Im λ ≈ 2t/Δ, each derivative costing one more such factor, so ℓ⁽³⁾ is at most ~10⁴ times
// the gradient's scale: truncation ≲ 2e-9 and rounding ~1e-10·|ℓ|, both far below the 1e-6
// tolerance. Δ enters through g = 2it/Δ, so the k-th derivative in Δ scales as Δ^{−k}: Δ gets
// the relative step h = 1e-6·Δ (truncation ~(h/Δ)² ~ 1e-12 relative, rounding ε|ℓ|/h ~ 2e-9
// at Δ = 0.05). With step_of's absolute 1e-6 the Δ = 0.05 channel measured 1.2e-7, converging
// as h² (6.8e-4 at 1e-5, 6.6e-8 at 1e-7 absolute on ∂ℓ/∂Δ = 57): truncation, not the gradient.
// The MESSAGE lines print the measured errors.
TEST_CASE("S4 DPLR kernel backward (G22, G23): every gradient against finite differences") {
  const int Nh = 4, H = 3;
  const Vec dt = (Vec(H) << 0.05, 0.3, 1.1).finished();
  for (int r : {0, 1, 2})
    for (Eigen::Index L : {16, 15}) {
      CAPTURE(r);
      CAPTURE(L);
      const s4::Dplr m = s4::random_dplr(Nh, r, 31 + std::uint64_t(r));
      const CMat Cp = s4::random_C(H, Nh, 32);  // C̄' itself, the parameter S4 trains
      const Signals<double> W = random_signals(H, L, 33);
      const auto g = grad::dplr_kernels_backward(m, dt, Cp, W, 1);
      const auto f = dplr_fd(m, dt, Cp, W);
      REQUIRE(g.dP.rows() == Nh);
      REQUIRE(g.dP.cols() == r);
      const double eP = r > 0 ? rel_to_max(g.dP, f.dP) : 0.0;
      CHECK(rel_to_max(g.dLambda, f.dLambda) <= kFdTol);
      CHECK(eP <= kFdTol);
      CHECK(rel_to_max(g.dB, f.dB) <= kFdTol);
      CHECK(rel_to_max(g.dCp, f.dCp) <= kFdTol);
      CHECK(rel_to_max(g.ddt, f.ddt) <= kFdTol);
      CHECK(rel_to_max(g.dlog_dt, f.dlog_dt) <= kFdTol);
      MESSAGE("DPLR r = " << r << ", L = " << L << ": dΛ " << rel_to_max(g.dLambda, f.dLambda)
              << ", dP̃ " << eP << ", dB̃ " << rel_to_max(g.dB, f.dB) << ", dC̄' "
              << rel_to_max(g.dCp, f.dCp) << ", dΔ " << rel_to_max(g.ddt, f.ddt) << ", dlogΔ "
              << rel_to_max(g.dlog_dt, f.dlog_dt) << " (tol 1e-6)");
      // Channels on threads: the same bits (per-channel parts summed in channel order).
      const auto g2 = grad::dplr_kernels_backward(m, dt, Cp, W, 2);
      CHECK(g2.dLambda == g.dLambda);
      CHECK(g2.dP == g.dP);
      CHECK(g2.dB == g.dB);
      CHECK(g2.dCp == g.dCp);
      CHECK(g2.ddt == g.ddt);
    }
}

TEST_CASE("S4 DPLR kernel backward: the shortest lengths, L = 1, 2, 3 (z = 1 alone, then z = −1)") {
  const s4::Dplr m = s4::random_dplr(3, 1, 41);
  const Vec dt = (Vec(2) << 0.2, 0.7).finished();
  const CMat Cp = s4::random_C(2, 3, 42);
  for (Eigen::Index L : {1, 2, 3}) {
    CAPTURE(L);
    const Signals<double> W = random_signals(2, L, 43);
    const auto g = grad::dplr_kernels_backward(m, dt, Cp, W);
    const auto f = dplr_fd(m, dt, Cp, W);
    CHECK(rel_to_max(g.dLambda, f.dLambda) <= kFdTol);
    CHECK(rel_to_max(g.dP, f.dP) <= kFdTol);
    CHECK(rel_to_max(g.dB, f.dB) <= kFdTol);
    CHECK(rel_to_max(g.dCp, f.dCp) <= kFdTol);
    if (L == 1) {  // K̄_0 = K̂(1) = C̄'(−Ã)⁻¹B̃ (g = 0) does not depend on Δ
      CHECK(g.ddt.cwiseAbs().maxCoeff() == 0.0);
      CHECK(f.ddt.cwiseAbs().maxCoeff() <= 1e-8);  // rounding ε|ℓ|/h only
    } else {
      CHECK(rel_to_max(g.ddt, f.ddt) <= kFdTol);
    }
  }
}

TEST_CASE("S4 DPLR kernel backward at rank 0 equals the bilinear S4D backward through C̄'") {
  // With no P̃ and C̄' = C̃(1 − z^L), z = (1 + Δλ/2)w, w = 1/(1 − Δλ/2), the DPLR kernel is the
  // bilinear S4D kernel of C̃ (S2, Q1). C̄' depends on C̃, λ and Δ, so the S4D gradients are the
  // DPLR ones plus the chain through C̄': ∂C̄'/∂C̃ = 1 − z^L, ∂C̄'/∂λ = −C̃ L z^{L−1} Δw²,
  // ∂C̄'/∂Δ = −C̃ L z^{L−1} λw² (G13), each entering as grad p += conj(∂C̄'/∂p) grad C̄'.
  const int Nh = 5, H = 3;
  const s4::Dplr m = random_s4d(s4::S4DInit::Inv, 2 * Nh, 51);
  const Vec dt = (Vec(H) << 0.01, 0.08, 0.4).finished();
  const CMat C = s4::random_C(H, Nh, 52);
  for (Eigen::Index L : {24, 17}) {
    CAPTURE(L);
    const Signals<double> W = random_signals(H, L, 53);
    CMat Cp(H, Nh), dCp_dlam(H, Nh), dCp_ddt(H, Nh), dCp_dC(H, Nh);
    for (int h = 0; h < H; ++h)
      for (int n = 0; n < Nh; ++n) {
        const cdouble l = m.Lambda(n), w = 1.0 / (1.0 - 0.5 * dt(h) * l);
        const cdouble z = (1.0 + 0.5 * dt(h) * l) * w, zl1 = std::pow(z, int(L - 1));
        dCp_dC(h, n) = 1.0 - zl1 * z;
        Cp(h, n) = C(h, n) * dCp_dC(h, n);
        dCp_dlam(h, n) = -C(h, n) * double(L) * zl1 * dt(h) * w * w;
        dCp_ddt(h, n) = -C(h, n) * double(L) * zl1 * l * w * w;
      }
    Signals<double> K4, K4d;
    s4::CauchyKernel<double>(m, std::size_t(L))(dt, Cp, K4);
    s4::s4d_kernels<double>(m, dt, C, std::size_t(L), Method::Bilinear, K4d);
    REQUIRE(rel_to_max(K4, K4d) <= 1e-12);  // the same kernel
    const auto g = grad::dplr_kernels_backward(m, dt, Cp, W, 2);
    const auto s = grad::s4d_kernels_backward(m, dt, C, W, Method::Bilinear, 2);
    const CMat dC = dCp_dC.conjugate().cwiseProduct(g.dCp);
    const CVec dLam =
        g.dLambda + dCp_dlam.conjugate().cwiseProduct(g.dCp).colwise().sum().transpose();
    const Vec ddt = g.ddt + dCp_ddt.conjugate().cwiseProduct(g.dCp).rowwise().sum().real();
    CHECK(rel_to_max(dC, s.dC) <= 1e-10);
    CHECK(rel_to_max(g.dB, s.dB) <= 1e-10);
    CHECK(rel_to_max(dLam, s.dLambda) <= 1e-10);
    CHECK(rel_to_max(ddt, s.ddt) <= 1e-10);
    MESSAGE("DPLR r = 0 vs S4D bilinear, L = " << L << ": dC̃ " << rel_to_max(dC, s.dC)
            << ", dB̃ " << rel_to_max(g.dB, s.dB) << ", dΛ " << rel_to_max(dLam, s.dLambda)
            << ", dΔ " << rel_to_max(ddt, s.ddt));
  }
}

TEST_CASE("S4 DPLR kernel backward: the finite-difference comparison catches a wrong gradient") {
  // The checks above can fail: a gradient with one entry's sign flipped, or one entry
  // conjugated (a conj in the wrong place), is rejected by the same comparison.
  const s4::Dplr m = s4::random_dplr(4, 2, 61);
  const Vec dt = (Vec(2) << 0.1, 0.6).finished();
  const CMat Cp = s4::random_C(2, 4, 62);
  const Signals<double> W = random_signals(2, 16, 63);
  const auto g = grad::dplr_kernels_backward(m, dt, Cp, W);
  const auto f = dplr_fd(m, dt, Cp, W);
  REQUIRE(rel_to_max(g.dP, f.dP) <= kFdTol);
  REQUIRE(rel_to_max(g.dLambda, f.dLambda) <= kFdTol);
  CMat flipped = g.dP;
  flipped(1, 0) = -flipped(1, 0);
  CHECK(rel_to_max(flipped, f.dP) > 1e3 * kFdTol);
  CVec conjugated = g.dLambda;
  conjugated(2) = std::conj(conjugated(2));
  CHECK(rel_to_max(conjugated, f.dLambda) > 1e3 * kFdTol);
  Vec ddt = g.ddt;
  ddt(0) = -ddt(0);
  CHECK(rel_to_max(ddt, f.ddt) > 1e3 * kFdTol);
}

TEST_CASE("kernel and convolution backward: bad input is refused with the argument named") {
  const s4::Dplr m = s4::s4d_init(s4::S4DInit::Lin, 4);
  const Vec dt = Vec::Constant(2, 0.1);
  const CMat C = s4::random_C(2, m.Nh(), 1);
  Signals<double> dK = random_signals(2, 10, 2);
  auto msg = [](const std::function<void()>& f) { return test::error_of(f); };
  CHECK(msg([&] { grad::s4d_kernels_backward(m, dt, C, random_signals(3, 10, 2), Method::ZOH); })
            .find("dK must have H = 2 rows") != std::string::npos);
  CHECK(msg([&] { grad::s4d_kernels_backward(m, dt, C, dK, Method::Euler); })
            .find("method must be zoh or bilinear") != std::string::npos);
  CHECK(msg([&] { grad::s4d_kernels_backward(m, Vec::Constant(2, -0.1), C, dK, Method::ZOH); })
            .find("dt[0] must be finite and > 0") != std::string::npos);
  CHECK(msg([&] { grad::s4d_kernels_backward(m, dt, CMat(C.leftCols(1)), dK, Method::ZOH); })
            .find("C must be 2 × 2") != std::string::npos);
  dK(1, 3) = NAN;
  CHECK(msg([&] { grad::s4d_kernels_backward(m, dt, C, dK, Method::ZOH); })
            .find("dK has a non-finite entry") != std::string::npos);
  FFTConv<double> fft(10);
  const Signals<double> K = random_signals(2, 10, 3), U = random_signals(2, 10, 4);
  Signals<double> a, b;
  CHECK(msg([&] { grad::conv_backward<double>(fft, K, U, random_signals(2, 9, 5), nullptr, a, b); })
            .find("dY must be 2 × 10, got 2 × 9") != std::string::npos);
  CHECK(msg([&] { grad::conv_backward<double>(fft, K, random_signals(2, 11, 5), U, nullptr, a, b); })
            .find("U must be 2 × 10") != std::string::npos);
  // The DPLR kernel's backward.
  const s4::Dplr md = s4::random_dplr(3, 1, 7);
  const CMat Cp = s4::random_C(2, 3, 8);
  Signals<double> dK2 = random_signals(2, 10, 9);
  CHECK(msg([&] { grad::dplr_kernels_backward(md, dt, Cp, random_signals(3, 10, 2)); })
            .find("dK must have H = 2 rows") != std::string::npos);
  CHECK(msg([&] { grad::dplr_kernels_backward(md, dt, CMat(Cp.leftCols(2)), dK2); })
            .find("Cp must be 2 × 3, got 2 × 2") != std::string::npos);
  CHECK(msg([&] { grad::dplr_kernels_backward(md, Vec::Constant(2, 0.0), Cp, dK2); })
            .find("dt[0] must be finite and > 0") != std::string::npos);
  CHECK(msg([&] { grad::dplr_kernels_backward(md, (Vec(2) << 0.1, NAN).finished(), Cp, dK2); })
            .find("dt[1] must be finite and > 0") != std::string::npos);
  CMat Cp_nan = Cp;
  Cp_nan(1, 2) = cdouble(0.0, INFINITY);
  CHECK(msg([&] { grad::dplr_kernels_backward(md, dt, Cp_nan, dK2); })
            .find("Cp has a non-finite entry") != std::string::npos);
  s4::Dplr bad_model = md;
  bad_model.B.resize(2);
  CHECK(msg([&] { grad::dplr_kernels_backward(bad_model, dt, Cp, dK2); })
            .find("dplr_kernels_backward: DPLR model: B̃ must have Nh = 3") != std::string::npos);
  CHECK(msg([&] { grad::dplr_kernels_backward(md, Vec(0), CMat(0, 3), Signals<double>(0, 10)); })
            .find("no channels") != std::string::npos);
  dK2(0, 4) = INFINITY;
  CHECK(msg([&] { grad::dplr_kernels_backward(md, dt, Cp, dK2); })
            .find("dplr_kernels_backward: dK has a non-finite entry") != std::string::npos);
}
