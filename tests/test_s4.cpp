// Stage 6: the S4 kernel (NPLR/DPLR, Cauchy sums, Woodbury), S4D and the S4 layer, each checked
// against an independent truth: the dense HiPPO matrix (stage 5), the kernel from powers of the
// dense discretized Ā (stage 4) and the dense recurrence (stage 3).
#include <cmath>
#include <random>

#include "helpers.hpp"
#include "ssm/hippo.hpp"
#include "ssm/s4.hpp"

using namespace ssm;

namespace {

constexpr double kEps = 2.220446049250313e-16;

RowVec random_row(int N, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  RowVec C(N);
  for (int i = 0; i < N; ++i) C(i) = normal(rng);
  return C;
}

// Stage 4's reference kernel of a dense model: K̄_k = C Ā^k B̄ by L mat-vecs (K1), bilinear Ā.
Vec reference_kernel(const Model& m, double dt, std::size_t L, Method method = Method::Bilinear) {
  return kernel(make_ssm(m, dt, method), L);
}

double rel(const Vec& a, const Vec& ref) {
  return max_rel_diff(a.array(), ref.array());
}

}  // namespace

TEST_CASE("NPLR of LegS (S1): S is normal and V(Λ − P̃P̃*)V* rebuilds A for N = 8 to 512") {
  for (int N : {8, 16, 32, 64, 128, 256, 512}) {
    CAPTURE(N);
    const auto [A, B] = hippo::legs(N);
    const s4::Nplr d = s4::nplr_legs(N);
    REQUIRE(d.Lambda.size() == N / 2);
    // S = A + PPᵀ is normal in exact arithmetic; the Schur form's off-block mass is rounding
    // (measured 3e-16 … 4.4e-16 for N = 8 … 1024, flat in N). Bound: 100 ε.
    CHECK(d.residual <= 100 * kEps);
    // Reconstruction against the dense A of stage 5 (independent: hippo::legs). Measured
    // 8e-16 (N = 8) … 3e-15 (N = 512): it grows slowly, about like √N·ε, from the backward
    // error of the Schur reduction and the N-term sums in V Λ V*, both relative to ‖A‖_F ∝ N².
    // Bound: 50·√N·ε (≥ 10× the measurement at every N).
    CHECK(s4::reconstruction_error(d, A) <= 50 * std::sqrt(double(N)) * kEps);
    // V_full = [V, conj V] is unitary.
    CMat Vf(N, N);
    Vf << d.V, d.V.conjugate();
    CHECK((Vf.adjoint() * Vf - CMat::Identity(N, N)).cwiseAbs().maxCoeff() <= 100 * N * kEps);
    // S = −½ I + skew: every eigenvalue has real part −½ (relative to the spectrum's size).
    const double scale = d.Lambda.cwiseAbs().maxCoeff();
    CHECK((d.Lambda.real().array() + 0.5).abs().maxCoeff() <= 100 * scale * kEps);
    // Im λ > 0, ascending: the kept half of the conjugate pairs (S5).
    CHECK(d.Lambda.imag().minCoeff() > 0);
    for (int n = 1; n < N / 2; ++n) CHECK(d.Lambda(n).imag() >= d.Lambda(n - 1).imag());
    // B̃ = V* B: ‖B̃_full‖ = ‖B‖ since V is unitary.
    CHECK(std::fabs(std::sqrt(2.0) * d.B.norm() - B.norm()) <= 1e3 * kEps * B.norm());
  }
}

TEST_CASE("NPLR refuses odd N and non-normal S and real eigenvalues and reports the residual") {
  const auto [A, B] = hippo::legs(8);
  const Mat P = s4::legs_low_rank(8);
  CHECK_THROWS_WITH_AS(s4::nplr_legs(7), doctest::Contains("must be even"), Error);
  // A perturbed by 1e-6·‖A‖: S is no longer normal; the message reports the residual.
  std::mt19937_64 rng(3);
  std::normal_distribution<double> normal;
  Mat E(8, 8);
  for (int i = 0; i < 64; ++i) E(i) = normal(rng);
  const Mat Ap = A + 1e-6 * A.norm() / E.norm() * E;
  CHECK_THROWS_WITH_AS(s4::nplr(Ap, P, B), doctest::Contains("not normal enough: residual"), Error);
  // With a loose tolerance the same model is accepted and the residual is of the perturbation's
  // size (1e-6 relative, up to a factor of a few).
  const s4::Nplr loose = s4::nplr(Ap, P, B, 1e-3);
  CHECK(loose.residual > 1e-8);
  CHECK(loose.residual < 1e-5);
  // A normal S with real eigenvalues cannot be halved into conjugate pairs.
  const Mat D = Vec::LinSpaced(4, -1.0, -4.0).asDiagonal();
  CHECK_THROWS_WITH_AS(s4::nplr(D, Mat::Zero(4, 1), Vec::Ones(4)),
                       doctest::Contains("real eigenvalue"), Error);
}

TEST_CASE("DPLR kernel == kernel from powers of Ā (stage 4) to 1e-8 at N = 64 and L = 1024") {
  const int N = 64;
  const std::size_t L = 1024;
  const auto [A, B] = hippo::legs(N);
  const s4::Nplr d = s4::nplr_legs(N);
  const s4::Dplr m = s4::to_dplr(d);
  for (std::uint64_t seed : {1u, 2u})
    for (double dt : {1e-3, 1e-2, 1e-1}) {
      CAPTURE(seed);
      CAPTURE(dt);
      const RowVec C = random_row(N, seed);
      const Vec ref = reference_kernel(Model(A, B, C), dt, L);
      const Vec K = s4::dplr_kernel(m, s4::transform_C(d, C), dt, L);
      // The bound. Measured 5e-15 … 3e-14 (both sides' rounding).
      CHECK(rel(K, ref) <= 1e-8);
    }
}

TEST_CASE("DPLR kernel error for N up to 512 and L up to 16384 stays below 1000·N·ε") {
  // Measured over Δ = 1e-4 … 1 (relative to max |K̄|): N = 64: ≤ 7e-14, 128: ≤ 1.7e-13,
  // 256: ≤ 5.9e-13, 512: ≤ 7.2e-13 — growing about like N and not with L. The error has two
  // N-dependent sources: the NPLR's backward error ε‖S‖ with ‖S‖ ∝ N² against a kernel whose
  // scale grows like ‖B‖ ∝ N, and the reference's own N-term dot products over L steps. The
  // bound 1000·N·ε (1.4e-11 at N = 64, 1.1e-10 at N = 512) leaves a factor ≥ 150 and is
  // 7 orders tighter than the 1e-8 at N = 64.
  struct Case {
    int N;
    std::size_t L;
    double dt;
  };
  for (const Case c : {Case{128, 16384, 1e-4}, Case{128, 4096, 1.0}, Case{256, 4096, 1e-2},
                       Case{256, 16384, 0.1}, Case{512, 1024, 1e-3}, Case{512, 1024, 1.0}}) {
    CAPTURE(c.N);
    CAPTURE(c.L);
    CAPTURE(c.dt);
    const auto [A, B] = hippo::legs(c.N);
    const s4::Nplr d = s4::nplr_legs(c.N);
    const RowVec C = random_row(c.N, 7);
    const Vec ref = reference_kernel(Model(A, B, C), c.dt, c.L);
    const Vec K = s4::dplr_kernel(s4::to_dplr(d), s4::transform_C(d, C), c.dt, c.L);
    CHECK(rel(K, ref) <= 1000 * c.N * kEps);
  }
}

TEST_CASE("DPLR kernel of any Λ P B C with rank 0 to 3 == stage 4 kernel of its real form") {
  // random_dplr: an arbitrary stable DPLR model (not from HiPPO); to_real writes the same model
  // as a dense real (A, B, C), whose kernel stage 4 computes by powers of Ā. Odd and even L
  // (even L has the point z = −1 handled apart), L = 1 and 2 included. Measured ≤ 2e-14.
  for (int r : {0, 1, 2, 3})
    for (std::size_t L : {1u, 2u, 3u, 777u, 1000u}) {
      CAPTURE(r);
      CAPTURE(L);
      const s4::Dplr m = s4::random_dplr(16, r, 10 + r);
      const CVec C = s4::random_C(1, 16, 20 + r).row(0).transpose();
      for (double dt : {1e-2, 0.3}) {
        CAPTURE(dt);
        const Vec ref = reference_kernel(s4::to_real(m, C), dt, L);
        CHECK(rel(s4::dplr_kernel(m, C, dt, L), ref) <= 1e-11);
      }
    }
}

TEST_CASE("c_prime is C(I − Ā^L) from the dense real model") {
  const s4::Dplr m = s4::random_dplr(8, 2, 4);
  const CVec C = s4::random_C(1, 8, 5).row(0).transpose();
  const double dt = 0.05;
  const std::size_t L = 300;
  const Model real = s4::to_real(m, C);
  const Discretized dz = discretize(real, dt, Method::Bilinear);
  RowVec c = real.C();
  for (std::size_t k = 0; k < L; ++k) c = c * dz.Ab;  // C Ā^L by L row-vector products
  const RowVec cp_real = real.C() - c;
  // Back to the DPLR basis: C_real = √2 [Re C̃, −Im C̃]  ⇒  C̃ = (C_a − i C_b)/√2.
  CVec expect(8);
  for (int n = 0; n < 8; ++n) expect(n) = cdouble(cp_real(n), -cp_real(8 + n)) / std::sqrt(2.0);
  // Two O(L)-step recurrences in double: rounding ~ L·ε relative. Measured ~1e-15.
  CHECK_CLOSE(s4::c_prime(m, C, dt, L), expect, 1e-12, 1e-11);
}

TEST_CASE("float DPLR kernels match the double reference to 1e-4") {
  // Float rounding 6e-8 grows like N (as in double): measured ≤ 7.5e-6 relative up to N = 512
  // over Δ = 1e-4 … 1; bound 1e-4 (stage 4's float bound).
  const int N = 64, H = 5;
  const std::size_t L = 4096;
  const auto [A, B] = hippo::legs(N);
  const s4::Nplr d = s4::nplr_legs(N);
  const s4::Dplr m = s4::to_dplr(d);
  Vec dt(H);
  CMat Cp(H, N / 2);
  std::vector<Vec> refs;
  for (int h = 0; h < H; ++h) {
    dt(h) = 1e-4 * std::pow(1e4, h / double(H - 1));
    const RowVec C = random_row(N, 30 + h);
    const CVec Ct = s4::transform_C(d, C);
    Cp.row(h) = s4::c_prime(m, Ct, dt(h), L).transpose();
    refs.push_back(reference_kernel(Model(A, B, C), dt(h), L));
  }
  s4::CauchyKernel<float> gen(m, L);
  Signals<float> K;
  gen(dt, Cp, K, 2);
  for (int h = 0; h < H; ++h) {
    CAPTURE(dt(h));
    CHECK(rel(K.row(h).transpose().cast<double>(), refs[static_cast<std::size_t>(h)]) <= 1e-4);
  }
}

TEST_CASE("CauchyKernel over threads gives bit-identical kernels") {
  const s4::Dplr m = s4::to_dplr(s4::nplr_legs(32));
  const int H = 7;
  const std::size_t L = 1000;
  Vec dt = Vec::LinSpaced(H, 1e-3, 1e-1);
  const CMat Cp = s4::random_C(H, 16, 9);
  s4::CauchyKernel<double> gen(m, L);
  Signals<double> K1, K2;
  gen(dt, Cp, K1, 1);
  gen(dt, Cp, K2, 2);
  CHECK_CLOSE(K2, K1, 0.0, 0.0);  // threads change who computes a row, not how
}

TEST_CASE("S4D inits follow Q2 and S4D-LegS is the diagonal part of the LegS NPLR") {
  const int N = 16;
  const s4::Dplr inv = s4::s4d_init(s4::S4DInit::Inv, N), lin = s4::s4d_init(s4::S4DInit::Lin, N);
  const double pi = 3.14159265358979323846;
  for (int n = 0; n < N / 2; ++n) {
    CHECK(inv.Lambda(n) == cdouble(-0.5, (N / pi) * (double(N) / (2 * n + 1) - 1)));
    CHECK(lin.Lambda(n) == cdouble(-0.5, pi * n));
    CHECK(inv.B(n) == 1.0);
  }
  const s4::Dplr legs = s4::s4d_init(s4::S4DInit::LegS, N);
  const s4::Nplr d = s4::nplr_legs(N);
  CHECK(legs.rank() == 0);
  CHECK_CLOSE(legs.Lambda, d.Lambda, 0.0, 0.0);
  CHECK_CLOSE(legs.B, d.B, 0.0, 0.0);
  CHECK_THROWS_WITH_AS(s4::s4d_init(s4::S4DInit::Lin, 9), doctest::Contains("must be even"), Error);
  CHECK(s4::parse_s4d_init("inv") == s4::S4DInit::Inv);
  CHECK_THROWS_WITH_AS(s4::parse_s4d_init("foo"), doctest::Contains("valid: legs, inv, lin"),
                       Error);
}

TEST_CASE("S4D kernels with ZOH and bilinear == stage 4 kernel of the same diagonal model") {
  // Vandermonde sum (Q1) against L mat-vecs with the dense 2×2-block real model: both O(L)
  // recurrences of rounding, measured ≤ 2e-14 relative; bound 1e-11.
  for (auto init : {s4::S4DInit::LegS, s4::S4DInit::Inv, s4::S4DInit::Lin})
    for (Method method : {Method::ZOH, Method::Bilinear})
      for (double dt : {1e-3, 1e-2, 0.5}) {
        CAPTURE(s4::s4d_init_name(init));
        CAPTURE(method_name(method));
        CAPTURE(dt);
        const int N = 64;
        const std::size_t L = 5000;  // not a multiple of the block size: the tail is exercised
        const s4::Dplr m = s4::s4d_init(init, N);
        const CVec C = s4::random_C(1, N / 2, 40).row(0).transpose();
        const Vec ref = reference_kernel(s4::to_real(m, C), dt, L, method);
        CHECK(rel(s4::s4d_kernel(m, C, dt, L, method), ref) <= 1e-11);
        // Float: 6e-8 per product, anchored powers: measured ≤ 2e-6; bound 1e-4.
        Signals<float> Kf;
        s4::s4d_kernels<float>(m, Vec::Constant(1, dt), CMat(C.transpose()), L, method, Kf);
        CHECK(rel(Kf.row(0).transpose().cast<double>(), ref) <= 1e-4);
      }
}

TEST_CASE("rank-0 DPLR through Cauchy sums == S4D Vandermonde with bilinear") {
  // Two different algorithms for one diagonal model: the generating function at the roots of
  // unity plus inverse FFT (S2–S3), and the direct sum of powers (Q1). Measured ~1e-15.
  const s4::Dplr m = s4::s4d_init(s4::S4DInit::Lin, 32);
  const CVec C = s4::random_C(1, 16, 41).row(0).transpose();
  for (std::size_t L : {64u, 999u, 4096u}) {
    CAPTURE(L);
    const Vec a = s4::dplr_kernel(m, C, 0.02, L);
    const Vec b = s4::s4d_kernel(m, C, 0.02, L, Method::Bilinear);
    CHECK(rel(a, b) <= 1e-12);
  }
}

TEST_CASE("DPLR recurrence step (S6) == stage 3 recurrence of the real model") {
  const s4::Dplr m = s4::random_dplr(12, 2, 50);
  const CVec C = s4::random_C(1, 12, 51).row(0).transpose();
  const double dt = 0.07, D = 0.3;
  const Model real = s4::to_real(m, C, D);
  const auto s = make_ssm(real, dt, Method::Bilinear);
  std::mt19937_64 rng(5);
  std::normal_distribution<double> normal;
  Vec u(2000);
  for (Eigen::Index k = 0; k < u.size(); ++k) u(k) = normal(rng);
  const Vec ref = unroll(s, u);
  s4::Recurrence<double> rec(m, C, dt, D);
  Vec y(u.size());
  for (Eigen::Index k = 0; k < u.size(); ++k) y(k) = rec.step(u(k));
  // O(N) DPLR step vs O(N²) dense step: both accumulate ~L·ε; measured ~1e-15 relative.
  CHECK(rel(y, ref) <= 1e-11);
  rec.reset();
  CHECK(std::fabs(rec.step(1.0) - (ref(0) / u(0))) <= 1e-12 * std::fabs(ref(0) / u(0)));
}

TEST_CASE("S4 layer: conv mode == recurrent mode to rounding in double and float") {
  const int N = 64, H = 6;
  const std::size_t L = 3000;
  const auto layer = s4::legs_layer<double>(N, H, 1e-3, 1e-1, 3);
  const auto layer_f = s4::legs_layer<float>(N, H, 1e-3, 1e-1, 3);
  std::mt19937_64 rng(6);
  std::normal_distribution<double> normal;
  Signals<double> U(H, static_cast<Eigen::Index>(L)), Yc, Yr;
  for (Eigen::Index i = 0; i < U.size(); ++i) U.data()[i] = normal(rng);
  layer.conv(U, Yc, 2);
  layer.recurrent(U, Yr, 2);
  // Conv: kernel (≤ 1e-13, above) then FFT (ε·log M); recurrence: L steps of O(N) rounding.
  // Measured ~1e-14 relative per channel; bound 1e-10 (stage 4's double bound).
  for (int h = 0; h < H; ++h) {
    CAPTURE(h);
    CHECK(rel(Yc.row(h).transpose(), Yr.row(h).transpose()) <= 1e-10);
  }
  const Signals<float> Uf = U.cast<float>();
  Signals<float> Ycf, Yrf;
  layer_f.conv(Uf, Ycf, 2);
  layer_f.recurrent(Uf, Yrf, 2);
  for (int h = 0; h < H; ++h) {
    CAPTURE(h);
    // Float: the kernel's ≤ 7.5e-6 (above) plus the recurrence's L·6e-8 growth: bound 1e-4.
    CHECK(rel(Ycf.row(h).transpose().cast<double>(), Yrf.row(h).transpose().cast<double>()) <=
          1e-4);
    CHECK(rel(Ycf.row(h).transpose().cast<double>(), Yr.row(h).transpose()) <= 1e-4);
  }
  // The layer's kernels are each channel's DPLR kernel with its own Δ: check against stage 4.
  const Signals<double> K = layer.kernels(L);
  const auto [A, B] = hippo::legs(N);
  const s4::Nplr d = s4::nplr_legs(N);
  // C̃ random ⇒ the real C = 2 Re(C̃ V*) in the original basis.
  const CMat Cs = s4::random_C(H, N / 2, 3);
  for (int h : {0, H - 1}) {
    const RowVec C = 2.0 * (Cs.row(h) * d.V.adjoint()).real();
    const Vec ref = reference_kernel(Model(A, B, C), layer.dt()(h), L);
    CHECK(rel(K.row(h).transpose(), ref) <= 1e-8);
  }
}

TEST_CASE("S4 functions reject bad input with named errors") {
  const s4::Dplr m = s4::random_dplr(4, 1, 1);
  const CVec C = CVec::Ones(4);
  CHECK_THROWS_WITH_AS(s4::dplr_kernel(m, C, 0.0, 10),
                       doctest::Contains("Δ must be finite and > 0, got 0"), Error);
  CHECK_THROWS_WITH_AS(s4::dplr_kernel(m, C, -1.0, 10),
                       doctest::Contains("Δ must be finite and > 0"), Error);
  CHECK_THROWS_WITH_AS(s4::dplr_kernel(m, C, NAN, 10), doctest::Contains("Δ must be finite"),
                       Error);
  CHECK_THROWS_WITH_AS(s4::dplr_kernel(m, C, 0.1, 0),
                       doctest::Contains("--L must be in [1, 2^26], got 0"), Error);
  CHECK_THROWS_WITH_AS(s4::dplr_kernel(m, CVec::Ones(3), 0.1, 10),
                       doctest::Contains("C̃ must have Nh = 4"), Error);
  CHECK_THROWS_WITH_AS(s4::make_dplr(CVec::Constant(2, cdouble(0.1, 1)), CMat(2, 1), CVec::Ones(2)),
                       doctest::Contains("Re λ must be < 0"), Error);
  CHECK_THROWS_WITH_AS(s4::s4d_kernel(m, C, 0.1, 10, Method::Euler),
                       doctest::Contains("zoh or bilinear"), Error);
  CHECK_THROWS_WITH_AS(s4::legs_layer<double>(8, 4, 0.1, 0.01, 1),
                       doctest::Contains("dt_min <= dt_max"), Error);
  s4::CauchyKernel<double> gen(m, 16);
  Signals<double> K;
  CHECK_THROWS_WITH_AS(gen(Vec::Constant(2, 0.1), CMat::Ones(3, 4), K),
                       doctest::Contains("C̄' must be H × Nh"), Error);
  CHECK_THROWS_WITH_AS(gen(Vec::Constant(1, -0.1), CMat::Ones(1, 4), K),
                       doctest::Contains("channel 0"), Error);
}
