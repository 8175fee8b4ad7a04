#include "ssm/s4.hpp"

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "fftw_api.hpp"
#include "ssm/hippo.hpp"

namespace ssm::s4 {

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr int kMaxRank = 16;

void check_even_N(int N, const std::string& what) {
  require(N >= 2 && N <= 4096 && N % 2 == 0,
          "--N must be even and in [2, 4096] (" + what +
              ": the conjugate-pair halving (S5) keeps N/2 pairs), got " + std::to_string(N));
}

void check_dt(double dt, const std::string& what) {
  require(std::isfinite(dt) && dt > 0, what + ": Δ must be finite and > 0, got " + fmt(dt));
}

void check_L(std::size_t L) {
  require(L >= 1 && L <= (std::size_t(1) << 26),
          "--L must be in [1, 2^26], got " + std::to_string(L));
}

void check_C(const Dplr& m, const CVec& C, const std::string& what) {
  require(C.size() == m.Nh(), what + ": C̃ must have Nh = " + std::to_string(m.Nh()) +
                                  " entries, got " + std::to_string(C.size()));
  require(C.allFinite(), what + ": C̃ has a non-finite entry");
}

// e^z − 1 without the cancellation of exp(z) − 1 near z = 0:
// e^{x+iy} − 1 = (expm1(x) cos y − 2 sin²(y/2)) + i e^x sin y.
cdouble cexpm1(cdouble z) {
  const double x = z.real(), y = z.imag(), s = std::sin(0.5 * y);
  return {std::expm1(x) * std::cos(y) - 2.0 * s * s, std::exp(x) * std::sin(y)};
}

// |a|² (libstdc++'s std::norm squares a hypot unless -ffast-math).
inline double abs2(cdouble a) {
  return a.real() * a.real() + a.imag() * a.imag();
}

// a·b without the NaN/Inf recovery of std::complex's operator* (GCC calls __muldc3 when the
// naive product is NaN): the operands here are finite by construction.
inline cdouble cmul(cdouble a, cdouble b) {
  return {a.real() * b.real() - a.imag() * b.imag(), a.real() * b.imag() + a.imag() * b.real()};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// (S1) NPLR

Nplr nplr(const Mat& A, const Mat& P, const Vec& B, double tolerance) {
  const Eigen::Index N = A.rows();
  require(N >= 1 && A.cols() == N, "NPLR: A must be square and non-empty");
  require(P.rows() == N && P.cols() <= kMaxRank,
          "NPLR: P must be N × r with r ≤ " + std::to_string(kMaxRank) + ", got " +
              std::to_string(P.rows()) + " × " + std::to_string(P.cols()));
  require(B.size() == N, "NPLR: B must have N = " + std::to_string(N) + " entries");
  require(A.allFinite() && P.allFinite() && B.allFinite(), "NPLR: A, P, B must be finite");
  check_even_N(static_cast<int>(N), "NPLR");

  // S = A + PPᵀ (S1); normal ⇔ its real Schur form is block diagonal.
  const Mat S = A + P * P.transpose();
  Eigen::RealSchur<Mat> schur(S);
  require(schur.info() == Eigen::Success, "NPLR: the Schur decomposition of S did not converge");
  const Mat& T = schur.matrixT();
  const Mat& U = schur.matrixU();

  std::vector<Eigen::Index> blocks;   // start row of each 2×2 block
  std::vector<Eigen::Index> singles;  // rows of 1×1 blocks (real eigenvalues)
  for (Eigen::Index i = 0; i < N;) {
    if (i + 1 < N && T(i + 1, i) != 0.0) {
      blocks.push_back(i);
      i += 2;
    } else {
      singles.push_back(i);
      i += 1;
    }
  }
  // Henrici's departure from normality: the mass of T outside its diagonal blocks, summed
  // entry by entry (‖T‖² − ‖blocks‖² would cancel down to √ε‖S‖).
  std::vector<Eigen::Index> block_of(static_cast<std::size_t>(N));
  for (Eigen::Index i : blocks) block_of[i] = block_of[i + 1] = i;
  for (Eigen::Index i : singles) block_of[i] = i;
  double off = 0.0;
  for (Eigen::Index j = 0; j < N; ++j)
    for (Eigen::Index i = 0; i < N; ++i)
      if (block_of[i] != block_of[j]) off += T(i, j) * T(i, j);
  const double Snorm = S.norm();
  Nplr d;
  d.residual = Snorm > 0 ? std::sqrt(std::max(off, 0.0)) / Snorm : 0.0;
  require(d.residual <= tolerance,
          "NPLR: S = A + PPᵀ is not normal enough: residual ‖T − blockdiag(T)‖/‖S‖ = " +
              fmt(d.residual) + " > tolerance " + fmt(tolerance) +
              " (the DPLR form needs S = VΛV* with V unitary)");
  if (!singles.empty())
    throw Error("NPLR: S = A + PPᵀ has a real eigenvalue (" + fmt(T(singles[0], singles[0])) +
                "); the halving (S5) needs eigenvalues in conjugate pairs");

  // Each 2×2 block b = [[b11, b12], [b21, b22]] has eigenvalues a ± iω; its eigenvector for
  // a + iω (ω > 0) is e = (b12, λ − b11), and v = U[:, i:i+2] e is an eigenvector of S.
  const Eigen::Index Nh = N / 2;
  std::vector<std::pair<cdouble, CVec>> modes;
  for (Eigen::Index i : blocks) {
    const double b11 = T(i, i), b12 = T(i, i + 1), b21 = T(i + 1, i), b22 = T(i + 1, i + 1);
    const double a = 0.5 * (b11 + b22), h = 0.5 * (b11 - b22);
    const double w = std::sqrt(std::max(-(h * h + b12 * b21), 0.0));
    const cdouble lambda(a, w);
    cdouble e0 = b12, e1 = lambda - b11;
    const double en = std::sqrt(std::norm(e0) + std::norm(e1));
    e0 /= en;
    e1 /= en;
    CVec v = U.col(i).cast<cdouble>() * e0 + U.col(i + 1).cast<cdouble>() * e1;
    modes.emplace_back(lambda, std::move(v));
  }
  std::sort(modes.begin(), modes.end(),
            [](const auto& x, const auto& y) { return x.first.imag() < y.first.imag(); });
  d.Lambda.resize(Nh);
  d.V.resize(N, Nh);
  for (Eigen::Index n = 0; n < Nh; ++n) {
    d.Lambda(n) = modes[static_cast<std::size_t>(n)].first;
    d.V.col(n) = modes[static_cast<std::size_t>(n)].second;
  }
  d.P = d.V.adjoint() * P.cast<cdouble>();  // P̃ = V* P
  d.B = d.V.adjoint() * B.cast<cdouble>();  // B̃ = V* B
  return d;
}

Mat legs_low_rank(int N) {
  require(N >= 1 && N <= 4096, "--N must be in [1, 4096], got " + std::to_string(N));
  Mat P(N, 1);
  for (int n = 0; n < N; ++n) P(n, 0) = std::sqrt(n + 0.5);  // (S1)
  return P;
}

Nplr nplr_legs(int N) {
  check_even_N(N, "S4-LegS");
  const auto [A, B] = hippo::legs(N);
  return nplr(A, legs_low_rank(N), B);
}

Mat reconstruct(const Nplr& d) {
  // V_f Λ_f V_f* = 2 Re(V Λ V*) and V_f P̃_f = 2 Re(V P̃) for V_f = [V, conj V] (S5).
  const CMat VL = d.V * d.Lambda.asDiagonal();
  const Mat Q = 2.0 * (d.V * d.P).real();
  return 2.0 * (VL * d.V.adjoint()).real() - Q * Q.transpose();
}

double reconstruction_error(const Nplr& d, const Mat& A) {
  require(A.rows() == d.N() && A.cols() == d.N(), "reconstruction_error: A must be N × N");
  return (reconstruct(d) - A).norm() / A.norm();
}

// ---------------------------------------------------------------------------------------------
// DPLR models

Dplr make_dplr(CVec Lambda, CMat P, CVec B) {
  const Eigen::Index Nh = Lambda.size();
  require(Nh >= 1 && Nh <= 2048,
          "DPLR model: need 1 to 2048 modes (N = 2·Nh), got " + std::to_string(Nh));
  require(P.rows() == Nh && P.cols() <= kMaxRank,
          "DPLR model: P̃ must be Nh × r with r ≤ " + std::to_string(kMaxRank));
  require(B.size() == Nh, "DPLR model: B̃ must have Nh = " + std::to_string(Nh) + " entries");
  require(Lambda.allFinite() && P.allFinite() && B.allFinite(),
          "DPLR model: Λ, P̃, B̃ must be finite");
  for (Eigen::Index n = 0; n < Nh; ++n)
    require(Lambda(n).real() < 0, "DPLR model: Re λ must be < 0 (a stable diagonal part), got λ_" +
                                      std::to_string(n) + " = " + fmt(Lambda(n).real()) + " + " +
                                      fmt(Lambda(n).imag()) + "i");
  return Dplr{std::move(Lambda), std::move(P), std::move(B)};
}

Dplr to_dplr(const Nplr& d) {
  return make_dplr(d.Lambda, d.P, d.B);
}

CVec transform_C(const Nplr& d, const RowVec& C) {
  require(C.size() == d.N(), "transform_C: C must have N = " + std::to_string(d.N()) + " entries");
  return (C.cast<cdouble>() * d.V).transpose();  // C̃ = C V (S1)
}

Model to_real(const Dplr& m, const CVec& C, double D) {
  check_C(m, C, "to_real");
  const int Nh = m.Nh(), N = m.N(), r = m.rank();
  const double s2 = std::sqrt(2.0);
  Mat A = Mat::Zero(N, N);
  Vec B(N);
  RowVec Cr(N);
  for (int n = 0; n < Nh; ++n) {
    const cdouble l = m.Lambda(n);
    A(n, n) = A(Nh + n, Nh + n) = l.real();
    A(n, Nh + n) = -l.imag();
    A(Nh + n, n) = l.imag();
    B(n) = s2 * m.B(n).real();
    B(Nh + n) = s2 * m.B(n).imag();
    Cr(n) = s2 * C(n).real();
    Cr(Nh + n) = -s2 * C(n).imag();
  }
  if (r > 0) {
    Mat Q(N, r);
    Q.topRows(Nh) = s2 * m.P.real();
    Q.bottomRows(Nh) = s2 * m.P.imag();
    A -= Q * Q.transpose();
  }
  return Model(A, B, Cr, D,
               "DPLR model (N = " + std::to_string(N) + ", r = " + std::to_string(r) + ")");
}

Dplr random_dplr(int Nh, int r, std::uint64_t seed) {
  require(Nh >= 1 && Nh <= 2048, "random DPLR: Nh must be in [1, 2048]");
  require(r >= 0 && r <= kMaxRank, "random DPLR: r must be in [0, 16]");
  std::mt19937_64 rng(mix_seed(seed, 60));
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  std::normal_distribution<double> normal(0.0, std::sqrt(0.5));
  CVec L(Nh), B(Nh);
  CMat P(Nh, r);
  for (int n = 0; n < Nh; ++n) L(n) = cdouble(-0.1 - 0.9 * unif(rng), kPi * Nh * unif(rng));
  for (int n = 0; n < Nh; ++n)
    for (int a = 0; a < r; ++a) P(n, a) = cdouble(normal(rng), normal(rng));
  for (int n = 0; n < Nh; ++n) B(n) = cdouble(normal(rng), normal(rng));
  return make_dplr(L, P, B);
}

CMat random_C(int H, int Nh, std::uint64_t seed) {
  require(H >= 1 && Nh >= 1, "random_C: H and Nh must be >= 1");
  std::mt19937_64 rng(mix_seed(seed, 61));
  std::normal_distribution<double> normal(0.0, std::sqrt(0.5));
  CMat C(H, Nh);
  for (int h = 0; h < H; ++h)
    for (int n = 0; n < Nh; ++n) C(h, n) = cdouble(normal(rng), normal(rng));
  return C;
}

Model random_like_legs(int N, std::uint64_t seed) {
  require(N >= 1 && N <= 1024, "--N must be in [1, 1024], got " + std::to_string(N));
  const auto [AL, BL] = hippo::legs(N);
  std::mt19937_64 rng(mix_seed(seed, 62));
  std::normal_distribution<double> normal;
  Mat G(N, N);
  Vec B(N);
  for (Eigen::Index i = 0; i < G.size(); ++i) G.data()[i] = normal(rng);
  for (int i = 0; i < N; ++i) B(i) = normal(rng);
  G *= AL.norm() / G.norm();
  const double abscissa = Eigen::EigenSolver<Mat>(G, false).eigenvalues().real().maxCoeff();
  G -= (abscissa + 1.0) * Mat::Identity(N, N);  // slowest decay rate 1, as LegS's λ = −1
  B *= BL.norm() / B.norm();
  return Model(G, B, RowVec::Zero(N), 0.0, "random stable A (N = " + std::to_string(N) + ")");
}

Vec impulse_state_norms(const DiscreteSSM<double>& s, std::size_t L) {
  Vec out(static_cast<Eigen::Index>(L));
  Vec x = s.Bb, next(s.N());
  for (std::size_t k = 0; k < L; ++k) {
    out(static_cast<Eigen::Index>(k)) = x.norm();  // x_k = Ā^k B̄
    next.noalias() = s.Ab * x;
    x.swap(next);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The bilinear step in the DPLR basis (S6), shared by c_prime (transposed) and Recurrence.
// D = I − Δ/2 Λ (diagonal), A₀ = (D + Δ/2 P̃P̃*)⁻¹ = D⁻¹ − D⁻¹P̃ M P̃*D⁻¹ (Woodbury) with
// M = ((2/Δ) I + P̃* D⁻¹ P̃)⁻¹, A₁ = I + Δ/2 (Λ − P̃P̃*). Every P̃*-product of a conjugate-
// symmetric vector is real: Σ over both halves = 2 Re Σ over the kept half (S5).
namespace {

struct Step {
  int Nh = 0, r = 0;
  double half_dt = 0;
  CVec a1, dinv;  // (Nh) 1 + Δ/2 λ,  1 / (1 − Δ/2 λ)
  Mat M;          // (r, r) real
};

Step make_step(const Dplr& m, double dt) {
  Step s;
  s.Nh = m.Nh();
  s.r = m.rank();
  s.half_dt = 0.5 * dt;
  s.a1 = (1.0 + s.half_dt * m.Lambda.array()).matrix();
  s.dinv = (1.0 / (1.0 - s.half_dt * m.Lambda.array())).matrix();
  if (s.r > 0) {
    // P̃* D⁻¹ P̃ over both halves: 2 Re Σ_n conj(P_an) P_bn / d_n.
    const Mat G = 2.0 * (m.P.adjoint() * s.dinv.asDiagonal() * m.P).real();
    const Mat K = (2.0 / dt) * Mat::Identity(s.r, s.r) + G;
    Eigen::FullPivLU<Mat> lu(K);
    require(lu.isInvertible(), "DPLR step: (2/Δ) I + P̃*D⁻¹P̃ is singular at Δ = " + fmt(dt));
    s.M = lu.inverse();
  } else {
    s.M.resize(0, 0);
  }
  return s;
}

}  // namespace

CVec c_prime(const Dplr& m, const CVec& C, double dt, std::size_t L) {
  check_C(m, C, "c_prime");
  check_dt(dt, "c_prime");
  check_L(L);
  const Step st = make_step(m, dt);
  const int Nh = m.Nh(), r = st.r;
  // Split real/imaginary arrays so the passes over n vectorize. Per step:
  //   c ← c A₀ = q − ((q P̃) M) P̃* D⁻¹,  q = c D⁻¹   (Woodbury; q P̃ is real, S5)
  //   c ← c A₁ = c (I + Δ/2 Λ) − Δ/2 (c P̃) P̃*
  // The A₁ update of one step and the q = c D⁻¹ of the next are fused into one pass.
  const std::size_t rn = static_cast<std::size_t>(r) * Nh;
  std::vector<double> buf(10 * static_cast<std::size_t>(Nh) + 4 * rn +
                          2 * static_cast<std::size_t>(r));
  double* qr = buf.data();  // q and c swap roles every step (no copies)
  double* qi = qr + Nh;
  double* __restrict dr = qi + Nh;  // D⁻¹
  double* __restrict di = dr + Nh;
  double* __restrict ar = di + Nh;  // 1 + Δ/2 λ, and the fused (1 + Δ/2 λ)/(1 − Δ/2 λ)
  double* __restrict ai = ar + Nh;
  double* __restrict fr = ai + Nh;
  double* __restrict fi = fr + Nh;
  double* cr = fi + Nh;
  double* ci = cr + Nh;
  double* __restrict pr = ci + Nh;  // P̃ (r, Nh)
  double* __restrict pi = pr + rn;
  double* __restrict pdr = pi + rn;  // conj(P̃) / d (r, Nh)
  double* __restrict pdi = pdr + rn;
  double* __restrict e = pdi + rn;  // (r)
  double* __restrict f = e + r;     // (r)
  for (int n = 0; n < Nh; ++n) {
    dr[n] = st.dinv(n).real();
    di[n] = st.dinv(n).imag();
    ar[n] = st.a1(n).real();
    ai[n] = st.a1(n).imag();
    const cdouble ad = st.a1(n) * st.dinv(n);
    fr[n] = ad.real();
    fi[n] = ad.imag();
    for (int a = 0; a < r; ++a) {
      const std::size_t i = static_cast<std::size_t>(a) * Nh + n;
      pr[i] = m.P(n, a).real();
      pi[i] = m.P(n, a).imag();
      const cdouble pd = std::conj(m.P(n, a)) * st.dinv(n);
      pdr[i] = pd.real();
      pdi[i] = pd.imag();
    }
  }
  // g_a = Δ/2 · (c P̃)_a of the previous A₁ update (zero before the first step).
  std::vector<double> g(r, 0.0);
  for (int n = 0; n < Nh; ++n) {  // q = C D⁻¹
    qr[n] = C(n).real() * dr[n] - C(n).imag() * di[n];
    qi[n] = C(n).real() * di[n] + C(n).imag() * dr[n];
  }
  for (std::size_t k = 0; k < L; ++k) {
    // A₀: e = 2 Re(q P̃) (real, r), f = e M, q ← q − f P̃* D⁻¹; then e = 2 Re(q P̃) for A₁.
    for (int a = 0; a < r; ++a) {
      const double* Pr = pr + static_cast<std::size_t>(a) * Nh;
      const double* Pi = pi + static_cast<std::size_t>(a) * Nh;
      double acc = 0;
#pragma omp simd reduction(+ : acc)
      for (int n = 0; n < Nh; ++n) acc += qr[n] * Pr[n] - qi[n] * Pi[n];
      e[a] = 2.0 * acc;
    }
    for (int b = 0; b < r; ++b) {
      double acc = 0;
      for (int a = 0; a < r; ++a) acc += e[a] * st.M(a, b);
      f[b] = acc;
    }
    for (int b = 0; b < r; ++b) {
      const double* Dr = pdr + static_cast<std::size_t>(b) * Nh;
      const double* Di = pdi + static_cast<std::size_t>(b) * Nh;
      const double fb = f[b];
#pragma omp simd
      for (int n = 0; n < Nh; ++n) {
        qr[n] -= fb * Dr[n];
        qi[n] -= fb * Di[n];
      }
    }
    for (int a = 0; a < r; ++a) {
      const double* Pr = pr + static_cast<std::size_t>(a) * Nh;
      const double* Pi = pi + static_cast<std::size_t>(a) * Nh;
      double acc = 0;
#pragma omp simd reduction(+ : acc)
      for (int n = 0; n < Nh; ++n) acc += qr[n] * Pr[n] - qi[n] * Pi[n];
      g[a] = st.half_dt * 2.0 * acc;
    }
    // A₁: c = q (1 + Δ/2 λ) − Σ_a g_a conj(P̃_a); the last step keeps c, the others go straight
    // on to the next q = c D⁻¹ = q (1 + Δ/2 λ)/(1 − Δ/2 λ) − Σ_a g_a conj(P̃_a)/d.
    const bool last = k + 1 == L;
    const double* xr = last ? ar : fr;
    const double* xi = last ? ai : fi;
#pragma omp simd
    for (int n = 0; n < Nh; ++n) {
      cr[n] = qr[n] * xr[n] - qi[n] * xi[n];
      ci[n] = qr[n] * xi[n] + qi[n] * xr[n];
    }
    for (int a = 0; a < r; ++a) {
      const double* Ur =
          last ? pr + static_cast<std::size_t>(a) * Nh : pdr + static_cast<std::size_t>(a) * Nh;
      const double* Ui =
          last ? pi + static_cast<std::size_t>(a) * Nh : pdi + static_cast<std::size_t>(a) * Nh;
      const double ga = g[a], sgn = last ? -1.0 : 1.0;  // conj(P̃) = Pr − i Pi; pd is already conj
#pragma omp simd
      for (int n = 0; n < Nh; ++n) {
        cr[n] -= ga * Ur[n];
        ci[n] -= sgn * ga * Ui[n];
      }
    }
    std::swap(qr, cr);
    std::swap(qi, ci);
  }
  CVec out(Nh);
  for (int n = 0; n < Nh; ++n) out(n) = C(n) - cdouble(qr[n], qi[n]);  // C̄' = C̃ (I − Ā^L)  (S2)
  return out;
}

// ---------------------------------------------------------------------------------------------
// The Cauchy kernel (S2–S5).

namespace {

template <class T>
using FftwR = detail::Fftw<T>;  // FFTW float/double under one name (fftw_api.hpp)

// Per-thread FFTW-aligned buffers: the half spectrum (⌊L/2⌋ + 1 complex) and K̄ (L real).
template <class T>
struct SpecBuf {
  T* spec;
  T* out;
  SpecBuf(std::size_t L)
      : spec(static_cast<T*>(FftwR<T>::malloc(sizeof(T) * 2 * (L / 2 + 1)))),
        out(static_cast<T*>(FftwR<T>::malloc(sizeof(T) * L))) {
    if (!spec || !out) throw Error("S4 kernel: out of memory for FFT buffers");
  }
  ~SpecBuf() {
    FftwR<T>::free(spec);
    FftwR<T>::free(out);
  }
  SpecBuf(const SpecBuf&) = delete;
  SpecBuf& operator=(const SpecBuf&) = delete;
  typename FftwR<T>::complex* cspec() {
    return reinterpret_cast<typename FftwR<T>::complex*>(spec);
  }
};

// The coefficients of one channel's (r+1)² Cauchy sums, pair-combined (S5). Sum s = a(r+1) + b
// has v_n = left_a,n · right_b,n with left = (C̄', conj P̃_1 … conj P̃_r), right = (B̃, P̃_1 … P̃_r),
// so S_00 = C̄'·B̃, S_0b = C̄'·P̃_b, S_a0 = P̃_a*·B̃, S_ab = P̃_a*·P̃_b (S4).
// With μ_n = Δλ_n/2 and t = tan(πj/L), g − λ_n = (2/Δ)(it − μ_n); the full-basis sum is
//   Σ_n [v_n/(it − μ_n) + v̄_n/(it − μ̄_n)] = Σ_n (α_n + iβ_n t) / ((|μ_n|² − t²) − 2i Re(μ_n) t),
//   α_n = −2 Re(v_n μ̄_n),  β_n = 2 Re(v_n).
template <class T>
struct Coefs {
  int Nh = 0, M = 0;
  std::vector<T> re2, im, c;   // (Nh): (Re μ)², Im μ, 2 Re μ
  std::vector<T> alpha, beta;  // (M, Nh)
};

template <class T>
void make_coefs(const Dplr& m, double dt, const cdouble* cp, Coefs<T>& k) {
  const int Nh = m.Nh(), r = m.rank(), R = r + 1;
  k.Nh = Nh;
  k.M = R * R;
  k.re2.resize(Nh);
  k.im.resize(Nh);
  k.c.resize(Nh);
  k.alpha.resize(static_cast<std::size_t>(k.M) * Nh);
  k.beta.resize(static_cast<std::size_t>(k.M) * Nh);
  for (int n = 0; n < Nh; ++n) {
    const cdouble mu = 0.5 * dt * m.Lambda(n);
    k.re2[n] = static_cast<T>(mu.real() * mu.real());
    k.im[n] = static_cast<T>(mu.imag());
    k.c[n] = static_cast<T>(2.0 * mu.real());
    for (int a = 0; a < R; ++a) {
      const cdouble left = a == 0 ? cp[n] : std::conj(m.P(n, a - 1));
      for (int b = 0; b < R; ++b) {
        const cdouble right = b == 0 ? m.B(n) : m.P(n, b - 1);
        const cdouble v = left * right;
        const std::size_t i = static_cast<std::size_t>(a * R + b) * Nh + n;
        k.alpha[i] = static_cast<T>(-2.0 * (v * std::conj(mu)).real());
        k.beta[i] = static_cast<T>(2.0 * v.real());
      }
    }
  }
}

// The hot loop. For a tile of TJ points t_j it forms, for all M sums at once,
//   S_s(t) = Σ_n (α_sn + iβ_sn t)(e_r + i e_i),   e_r + i e_i = 1/den_n(t),
// as S = (Σα e_r − t Σβ e_i) + i(Σα e_i + t Σβ e_r): four FMA accumulators per sum and the
// factor t applied once after the n loop. One real division per (n, j) serves every sum. The
// loop over j is the vector loop (independent lanes; with M fixed at compile time the 4·M
// accumulators of one SIMD register each stay in registers across the n loop). The real part
// of the denominator, |μ|² − t², is formed as (Re μ)² + (Im μ − t)(Im μ + t): exact where
// t ≈ Im μ (the resolvent's peak) instead of cancelling.
template <class T, int TJ, int MC>
void cauchy_tile(const Coefs<T>& k, const T* __restrict t, T* __restrict sre, T* __restrict sim,
                 T* __restrict scratch) {
  constexpr bool fixed = MC > 0;
  const int M = fixed ? MC : k.M;
  constexpr int MS = fixed ? MC : 1;
  alignas(64) T fixed_acc[4 * MS * TJ];
  T* acc = fixed ? fixed_acc : scratch;  // (4, M, TJ): Σα e_r, Σα e_i, Σβ e_r, Σβ e_i
  T* aer = acc;
  T* aei = acc + M * TJ;
  T* ber = acc + 2 * M * TJ;
  T* bei = acc + 3 * M * TJ;
  for (int i = 0; i < 4 * M * TJ; ++i) acc[i] = T(0);
  const int Nh = k.Nh;
  for (int n = 0; n < Nh; ++n) {
    const T a2 = k.re2[n], b = k.im[n], c = k.c[n];
    const T* al = k.alpha.data() + n;
    const T* be = k.beta.data() + n;
#pragma omp simd
    for (int i = 0; i < TJ; ++i) {
      const T x = t[i];
      const T dr = a2 + (b - x) * (b + x);  // Re den = |μ|² − t²
      const T di = c * x;                   // −Im den = 2 Re(μ) t
      const T inv = T(1) / (dr * dr + di * di);
      const T er = dr * inv, ei = di * inv;  // 1/den = e_r + i e_i
      for (int s = 0; s < M; ++s) {
        const T as = al[static_cast<std::size_t>(s) * Nh],
                bs = be[static_cast<std::size_t>(s) * Nh];
        aer[s * TJ + i] += as * er;
        aei[s * TJ + i] += as * ei;
        ber[s * TJ + i] += bs * er;
        bei[s * TJ + i] += bs * ei;
      }
    }
  }
  for (int s = 0; s < M; ++s)
#pragma omp simd
    for (int i = 0; i < TJ; ++i) {
      sre[s * TJ + i] = aer[s * TJ + i] - t[i] * bei[s * TJ + i];
      sim[s * TJ + i] = aei[s * TJ + i] + t[i] * ber[s * TJ + i];
    }
}

}  // namespace

template <class T>
struct CauchyKernel<T>::Plan {
  typename FftwR<T>::plan p = nullptr;
};

template <class T>
CauchyKernel<T>::CauchyKernel(const Dplr& m, std::size_t L) : m_(m), L_(L), plan_(new Plan) {
  check_L(L);
  m_ = make_dplr(m.Lambda, m.P, m.B);  // validate
  // The regular points j = 0 … ⌊L/2⌋, less z = −1 (j = L/2) when L is even (S3: 1 + z = 0).
  const std::size_t J = L / 2 + 1, Jreg = L % 2 == 0 ? J - 1 : J;
  t_.resize(Jreg);
  for (std::size_t j = 0; j < Jreg; ++j) t_[j] = std::tan(kPi * double(j) / double(L));
  SpecBuf<T> buf(L);
  std::lock_guard<std::mutex> lock(fftw_planner_mutex());
  plan_->p = FftwR<T>::c2r(static_cast<int>(L), buf.cspec(), buf.out, FFTW_ESTIMATE);
  if (!plan_->p)
    throw Error("FFTW could not plan an inverse real FFT of size " + std::to_string(L));
}

template <class T>
CauchyKernel<T>::~CauchyKernel() {
  std::lock_guard<std::mutex> lock(fftw_planner_mutex());
  if (plan_->p) FftwR<T>::destroy(plan_->p);
}

namespace {

// Solves X = (I + k11)⁻¹ k10 by Gaussian elimination with partial pivoting (r ≤ 16) and returns
// k00 − k01·X, the Woodbury form of C̄'(g − Ã)⁻¹B̃ (S4). k holds the (r+1)² sums, already
// scaled by Δ/2. (The rank-1 case is done in vector form in channel_spectrum.)
cdouble woodbury(int r, const cdouble* k) {
  const int R = r + 1;
  if (r == 0) return k[0];
  cdouble a[kMaxRank][kMaxRank + 1];
  for (int i = 0; i < r; ++i) {
    for (int j = 0; j < r; ++j) a[i][j] = k[(i + 1) * R + (j + 1)] + (i == j ? 1.0 : 0.0);
    a[i][r] = k[(i + 1) * R];  // k10
  }
  for (int c = 0; c < r; ++c) {
    int p = c;
    for (int i = c + 1; i < r; ++i)
      if (std::abs(a[i][c]) > std::abs(a[p][c])) p = i;
    if (p != c)
      for (int j = 0; j <= r; ++j) std::swap(a[p][j], a[c][j]);
    for (int i = c + 1; i < r; ++i) {
      const cdouble f = a[i][c] / a[c][c];
      for (int j = c; j <= r; ++j) a[i][j] -= f * a[c][j];
    }
  }
  cdouble x[kMaxRank];
  for (int i = r - 1; i >= 0; --i) {
    cdouble s = a[i][r];
    for (int j = i + 1; j < r; ++j) s -= a[i][j] * x[j];
    x[i] = s / a[i][i];
  }
  cdouble out = k[0];
  for (int b = 0; b < r; ++b) out -= k[b + 1] * x[b];  // k01 · X
  return out;
}

// K̂(z_j) of one channel at the regular points (and z = −1 for even L) into spec (interleaved
// re, im), tile by tile: Cauchy sums, then Woodbury and the bilinear factor per point.
template <class T, int TJ, int MC>
void channel_spectrum(const Coefs<T>& co, const std::vector<double>& t, int r, double dt,
                      const cdouble* cp, const Dplr& m, std::size_t L, T* spec, std::vector<T>& sre,
                      std::vector<T>& sim, std::vector<T>& scratch) {
  const int M = co.M;
  const std::size_t Jreg = t.size();
  alignas(64) T tt[TJ];
  alignas(64) double td[TJ];
  std::vector<cdouble> ks(static_cast<std::size_t>(M));
  const double h = 0.5 * dt;
  for (std::size_t j0 = 0; j0 < Jreg; j0 += TJ) {
    const std::size_t nj = std::min<std::size_t>(TJ, Jreg - j0);
    for (std::size_t i = 0; i < std::size_t(TJ); ++i) {
      td[i] = i < nj ? t[j0 + i] : 0.0;  // padding lanes: t = 0, harmless (den = |μ|² > 0)
      tt[i] = static_cast<T>(td[i]);
    }
    cauchy_tile<T, TJ, MC>(co, tt, sre.data(), sim.data(), scratch.data());
    T* out = spec + 2 * j0;
    if (r == 1) {
      // K̂ = (1 + it) h [S00 − h S01 S10 / (1 + h S11)],  h = Δ/2  (S3, S4), in double, per lane.
      const T *r0 = sre.data(), *r1 = r0 + TJ, *r2 = r1 + TJ, *r3 = r2 + TJ;
      const T *i0 = sim.data(), *i1 = i0 + TJ, *i2 = i1 + TJ, *i3 = i2 + TJ;
      alignas(64) double kr[TJ], ki[TJ];
#pragma omp simd
      for (int i = 0; i < TJ; ++i) {
        const double dr = 1.0 + h * r3[i], di = h * i3[i];                // 1 + k11
        const double pr = r1[i] * double(r2[i]) - i1[i] * double(i2[i]);  // S01 S10
        const double pi = r1[i] * double(i2[i]) + i1[i] * double(r2[i]);
        const double inv = h / (dr * dr + di * di);
        const double qr = (pr * dr + pi * di) * inv, qi = (pi * dr - pr * di) * inv;
        const double wr = h * (r0[i] - qr), wi = h * (i0[i] - qi);
        kr[i] = wr - td[i] * wi;  // × (1 + it)
        ki[i] = wi + td[i] * wr;
      }
      for (std::size_t i = 0; i < nj; ++i) {
        out[2 * i] = static_cast<T>(kr[i]);
        out[2 * i + 1] = static_cast<T>(ki[i]);
      }
    } else {
      for (std::size_t i = 0; i < nj; ++i) {
        for (int s = 0; s < M; ++s)  // k = (Δ/2) S: the resolvent 1/(g − λ) = (Δ/2)/(it − μ)
          ks[static_cast<std::size_t>(s)] = h * cdouble(sre[static_cast<std::size_t>(s) * TJ + i],
                                                        sim[static_cast<std::size_t>(s) * TJ + i]);
        // K̂(z_j) = (2/(1 + z_j)) [k00 − k01 (I + k11)⁻¹ k10],  2/(1 + z_j) = 1 + i t_j  (S3, S4)
        const cdouble w = woodbury(r, ks.data());
        out[2 * i] = static_cast<T>(w.real() - td[i] * w.imag());
        out[2 * i + 1] = static_cast<T>(w.imag() + td[i] * w.real());
      }
    }
  }
  if (L % 2 == 0) {
    // z = −1: (I + Ā)⁻¹ B̄ = Δ B̃ / 2 exactly, so K̂(−1) = (Δ/2) Σ_both halves C̄'_n B̃_n.
    cdouble acc = 0;
    for (int n = 0; n < m.Nh(); ++n) acc += cp[n] * m.B(n);
    spec[2 * Jreg] = static_cast<T>(h * 2.0 * acc.real());
    spec[2 * Jreg + 1] = T(0);
  }
}

}  // namespace

template <class T>
void CauchyKernel<T>::operator()(const Vec& dt, const CMat& Cp, Signals<T>& K, int threads) const {
  const Eigen::Index H = dt.size();
  require(H >= 1, "S4 kernel: no channels");
  require(Cp.rows() == H && Cp.cols() == m_.Nh(),
          "S4 kernel: C̄' must be H × Nh = " + std::to_string(H) + " × " + std::to_string(m_.Nh()) +
              ", got " + std::to_string(Cp.rows()) + " × " + std::to_string(Cp.cols()));
  require(Cp.allFinite(), "S4 kernel: C̄' has a non-finite entry");
  for (Eigen::Index h = 0; h < H; ++h)
    check_dt(dt(h), "S4 kernel (channel " + std::to_string(h) + ")");
  K.resize(H, static_cast<Eigen::Index>(L_));
  const int r = m_.rank(), M = (r + 1) * (r + 1);
  // One vector of the widest SIMD register per tile (8 doubles or 16 floats with AVX-512): with
  // r = 1 the 16 accumulators then stay in registers.
  constexpr int TJ = 64 / sizeof(T);
  const T scale = T(1) / static_cast<T>(L_);
#pragma omp parallel num_threads(resolve_threads(threads))
  {
    SpecBuf<T> buf(L_);
    Coefs<T> co;
    std::vector<T> sre(static_cast<std::size_t>(M) * TJ), sim(static_cast<std::size_t>(M) * TJ);
    std::vector<T> scratch(r > 2 ? 4 * static_cast<std::size_t>(M) * TJ : 0);
    std::vector<cdouble> cp(static_cast<std::size_t>(m_.Nh()));
#pragma omp for schedule(dynamic, 1)
    for (Eigen::Index h = 0; h < H; ++h) {
      for (int n = 0; n < m_.Nh(); ++n) cp[static_cast<std::size_t>(n)] = Cp(h, n);
      make_coefs<T>(m_, dt(h), cp.data(), co);
      switch (r) {
        case 0:
          channel_spectrum<T, TJ, 1>(co, t_, r, dt(h), cp.data(), m_, L_, buf.spec, sre, sim,
                                     scratch);
          break;
        case 1:
          channel_spectrum<T, TJ, 4>(co, t_, r, dt(h), cp.data(), m_, L_, buf.spec, sre, sim,
                                     scratch);
          break;
        case 2:
          channel_spectrum<T, TJ, 9>(co, t_, r, dt(h), cp.data(), m_, L_, buf.spec, sre, sim,
                                     scratch);
          break;
        default:
          channel_spectrum<T, TJ, 0>(co, t_, r, dt(h), cp.data(), m_, L_, buf.spec, sre, sim,
                                     scratch);
      }
      // K̄ = (1/L) · inverse DFT of K̂ (S2), from the half spectrum (K̄ is real).
      FftwR<T>::exec(plan_->p, buf.cspec(), buf.out);
      T* row = K.row(h).data();
      for (std::size_t k = 0; k < L_; ++k) row[k] = buf.out[k] * scale;
    }
  }
}

Vec dplr_kernel(const Dplr& m, const CVec& C, double dt, std::size_t L) {
  const CVec cp = c_prime(m, C, dt, L);
  CauchyKernel<double> gen(m, L);
  Signals<double> K;
  gen(Vec::Constant(1, dt), CMat(cp.transpose()), K, 1);
  return K.row(0).transpose();
}

// ---------------------------------------------------------------------------------------------
// (S6) Recurrence

template <class T>
Recurrence<T>::Recurrence(const Dplr& m, const CVec& C, double dt, double D) {
  check_C(m, C, "S4 recurrence");
  check_dt(dt, "S4 recurrence");
  require(std::isfinite(D), "S4 recurrence: D must be finite");
  const Step s = make_step(m, dt);
  const int Nh = m.Nh();
  r_ = m.rank();
  D_ = static_cast<T>(D);
  half_dt_ = static_cast<T>(s.half_dt);
  x_.assign(Nh, cT(0));
  w_.assign(Nh, cT(0));
  a1_.resize(Nh);
  dinv_.resize(Nh);
  C_.resize(Nh);
  bdt_.resize(Nh);
  for (int n = 0; n < Nh; ++n) {
    a1_[n] = cT(s.a1(n));
    dinv_[n] = cT(s.dinv(n));
    C_[n] = cT(C(n));
    bdt_[n] = cT(dt * m.B(n));  // Δ B̃
  }
  P_.resize(static_cast<std::size_t>(r_) * Nh);
  dP_.resize(P_.size());
  for (int a = 0; a < r_; ++a)
    for (int n = 0; n < Nh; ++n) {
      P_[static_cast<std::size_t>(a) * Nh + n] = cT(m.P(n, a));
      dP_[static_cast<std::size_t>(a) * Nh + n] = cT(s.dinv(n) * m.P(n, a));
    }
  Minv_.resize(static_cast<std::size_t>(r_) * r_);
  for (int a = 0; a < r_; ++a)
    for (int b = 0; b < r_; ++b)
      Minv_[static_cast<std::size_t>(a) * r_ + b] = static_cast<T>(s.M(a, b));
  s_.assign(2 * static_cast<std::size_t>(r_), T(0));
}

template <class T>
void Recurrence<T>::reset() {
  std::fill(x_.begin(), x_.end(), cT(0));
}

template <class T>
T Recurrence<T>::step(T u) {
  const int Nh = static_cast<int>(x_.size()), r = r_;
  T* sp = s_.data();  // P̃* x (r, real)
  T* tq = sp + r;     // M P̃* D⁻¹ v (r, real)
  // s_a = P̃_a* x = 2 Re Σ_n conj(P_an) x_n  (both halves, S5)
  for (int a = 0; a < r; ++a) {
    const cT* P = P_.data() + static_cast<std::size_t>(a) * Nh;
    T acc = 0;
    for (int n = 0; n < Nh; ++n) acc += P[n].real() * x_[n].real() + P[n].imag() * x_[n].imag();
    sp[a] = 2 * acc;
  }
  // v = A₁ x + Δ B̃ u = (1 + Δ/2 λ) x − Δ/2 P̃ (P̃* x) + Δ B̃ u;  w = D⁻¹ v
  for (int n = 0; n < Nh; ++n) {
    cT v = a1_[n] * x_[n] + bdt_[n] * u;
    for (int a = 0; a < r; ++a) v -= half_dt_ * sp[a] * P_[static_cast<std::size_t>(a) * Nh + n];
    w_[n] = dinv_[n] * v;
  }
  if (r > 0) {
    // x = A₀ v = w − D⁻¹P̃ M (P̃* w)   (Woodbury)
    for (int a = 0; a < r; ++a) {
      const cT* P = P_.data() + static_cast<std::size_t>(a) * Nh;
      T acc = 0;
      for (int n = 0; n < Nh; ++n) acc += P[n].real() * w_[n].real() + P[n].imag() * w_[n].imag();
      sp[a] = 2 * acc;
    }
    for (int a = 0; a < r; ++a) {
      T acc = 0;
      for (int b = 0; b < r; ++b) acc += Minv_[static_cast<std::size_t>(a) * r + b] * sp[b];
      tq[a] = acc;
    }
    for (int n = 0; n < Nh; ++n) {
      cT x = w_[n];
      for (int a = 0; a < r; ++a) x -= tq[a] * dP_[static_cast<std::size_t>(a) * Nh + n];
      x_[n] = x;
    }
  } else {
    std::copy(w_.begin(), w_.end(), x_.begin());
  }
  // y = C̃ x over both halves = 2 Re Σ_n C_n x_n
  T y = 0;
  for (int n = 0; n < Nh; ++n) y += C_[n].real() * x_[n].real() - C_[n].imag() * x_[n].imag();
  return 2 * y + D_ * u;
}

// ---------------------------------------------------------------------------------------------
// S4D (Q1–Q2)

const std::vector<std::string>& s4d_init_names() {
  static const std::vector<std::string> names{"legs", "inv", "lin"};
  return names;
}

S4DInit parse_s4d_init(const std::string& name) {
  if (name == "legs") return S4DInit::LegS;
  if (name == "inv") return S4DInit::Inv;
  if (name == "lin") return S4DInit::Lin;
  throw Error("unknown S4D init '" + name + "' (valid: legs, inv, lin)");
}

std::string s4d_init_name(S4DInit init) {
  switch (init) {
    case S4DInit::LegS:
      return "S4D-LegS";
    case S4DInit::Inv:
      return "S4D-Inv";
    case S4DInit::Lin:
      return "S4D-Lin";
  }
  return "?";
}

Dplr s4d_init(S4DInit init, int N) {
  check_even_N(N, s4d_init_name(init));
  const int Nh = N / 2;
  if (init == S4DInit::LegS) {
    const Nplr d = nplr_legs(N);
    return make_dplr(d.Lambda, CMat(Nh, 0), d.B);  // (Q2): Λ, B̃ of (S1), low-rank term dropped
  }
  CVec L(Nh);
  for (int n = 0; n < Nh; ++n)
    L(n) = init == S4DInit::Inv ? cdouble(-0.5, (N / kPi) * (double(N) / (2.0 * n + 1.0) - 1.0))
                                : cdouble(-0.5, kPi * n);  // (Q2)
  return make_dplr(L, CMat(Nh, 0), CVec::Ones(Nh));
}

namespace {

// K̄ of one diagonal channel into out (L): K̄_k = Re Σ_n W_n z_n^k with W_n = 2 C_n B̄_n (Q1).
// Mode by mode, block by block (k = k0 + t, t < TB): the powers P_t = z_n^{k0+t} of one block
// are held in arrays (split real and imaginary parts); each block adds Re(W_n P_t) to K̄ (two
// FMAs per (n, k)) and advances P_t ← P_t · z_n^{TB} (four more). Every step is a vector loop
// over t with no dependence between lanes. P is recomputed as z^{k0} · z^t (z^{k0} by exp,
// z^t tabulated) every kAnchor blocks, so rounding never compounds over more than kAnchor + 7
// products (relative error ≲ 140·2ε): no drift over long L.
template <class T>
struct S4DScratch {
  static constexpr std::size_t TB = 64 / sizeof(T) * 4;  // 32 doubles or 64 floats: 4 registers
  std::vector<cdouble> tab;                              // (TB) z^t
  std::vector<T> acc;                                    // (L rounded up to TB) K̄
};

template <class T>
void s4d_channel(const Dplr& m, const cdouble* C, double dt, std::size_t L, Method method, T* out,
                 S4DScratch<T>& s) {
  constexpr std::size_t TB = S4DScratch<T>::TB;
  constexpr std::size_t kAnchor = 128;
  const std::size_t nb = (L + TB - 1) / TB;
  s.tab.resize(TB);
  s.acc.assign(nb * TB, T(0));
  T* __restrict acc = s.acc.data();
  for (int n = 0; n < m.Nh(); ++n) {
    const cdouble l = m.Lambda(n), dl = dt * l;
    cdouble lz, Bb;
    if (method == Method::ZOH) {
      lz = dl;                       // Ā = e^{Δλ}
      Bb = cexpm1(dl) / l * m.B(n);  // B̄ = (e^{Δλ} − 1)/λ · B
    } else {
      lz = 2.0 * std::atanh(0.5 * dl);      // log Ā = log((1 + Δλ/2)/(1 − Δλ/2))
      Bb = dt * m.B(n) / (1.0 - 0.5 * dl);  // B̄ = ΔB / (1 − Δλ/2)
    }
    const cdouble W = 2.0 * C[n] * Bb;  // 2·Re for the conjugate pair
    const T wr = static_cast<T>(W.real()), wi = static_cast<T>(W.imag());
    // |z|^k = e^{k Re log z} < ε²: the mode's terms are far below the rounding ε·Σ|W| of every
    // K̄_k; stop there. Letting them decay on would reach subnormal numbers (at Δ = 0.1,
    // L = 4096 in float), which the FPU handles hundreds of times slower.
    const double tiny =
        double(std::numeric_limits<T>::epsilon()) * double(std::numeric_limits<T>::epsilon());
    const double kmax = std::log(tiny) / lz.real();  // Re log z < 0 for a stable mode
    const std::size_t nb_n =
        static_cast<std::size_t>(std::clamp(std::ceil(kmax / double(TB)), 1.0, double(nb)));
    const cdouble z = std::exp(lz);
    cdouble zTB = std::exp(double(TB) * lz);
    const double tiny2 = tiny * tiny;  // compare |·|² (std::abs and std::norm call a slow hypot)
    if (abs2(zTB) < tiny2) zTB = 0.0;
    const T zr = static_cast<T>(zTB.real()), zi = static_cast<T>(zTB.imag());
    // z^t, t < TB, by doubling (z^{s+t} = z^t · z^s): log2(TB) products deep, and each
    // doubling is a loop without a carried dependence.
    s.tab[0] = 1.0;
    cdouble zs = z;
    for (std::size_t w = 1; w < TB; w *= 2) {
      for (std::size_t t = 0; t < w; ++t) s.tab[w + t] = cmul(s.tab[t], zs);
      zs = cmul(zs, zs);
    }
    for (std::size_t t = 1; t < TB; ++t)
      if (abs2(s.tab[t]) < tiny2) s.tab[t] = 0.0;
    for (std::size_t q0 = 0; q0 < nb_n; q0 += kAnchor) {
      // The block's powers live in registers for a whole anchor segment (fixed size TB).
      alignas(64) T prl[TB], pil[TB];
      const cdouble base = std::exp(double(q0 * TB) * lz);  // z^{k0}
      for (std::size_t t = 0; t < TB; ++t) {
        cdouble p = cmul(base, s.tab[t]);
        if (abs2(p) < tiny2) p = 0.0;
        prl[t] = static_cast<T>(p.real());
        pil[t] = static_cast<T>(p.imag());
      }
      const std::size_t q1 = std::min(nb_n, q0 + kAnchor);
      for (std::size_t q = q0; q < q1; ++q) {
        T* a = acc + q * TB;
#pragma omp simd
        for (std::size_t t = 0; t < TB; ++t) {
          a[t] += wr * prl[t] - wi * pil[t];  // Re(W z^k)
          const T r = prl[t] * zr - pil[t] * zi;
          pil[t] = prl[t] * zi + pil[t] * zr;  // P ← P z^{TB}
          prl[t] = r;
        }
      }
    }
  }
  std::copy(acc, acc + L, out);
}

}  // namespace

template <class T>
void s4d_kernels(const Dplr& m, const Vec& dt, const CMat& C, std::size_t L, Method method,
                 Signals<T>& K, int threads) {
  check_L(L);
  require(method == Method::ZOH || method == Method::Bilinear,
          "S4D kernel: method must be zoh or bilinear, got " + method_name(method));
  const Eigen::Index H = dt.size();
  require(H >= 1, "S4D kernel: no channels");
  require(C.rows() == H && C.cols() == m.Nh(),
          "S4D kernel: C must be H × Nh = " + std::to_string(H) + " × " + std::to_string(m.Nh()));
  require(C.allFinite(), "S4D kernel: C has a non-finite entry");
  // The messages are built only on failure (a trainer calls this once per step and layer).
  for (Eigen::Index h = 0; h < H; ++h)
    if (!(std::isfinite(dt(h)) && dt(h) > 0))
      check_dt(dt(h), "S4D kernel (channel " + std::to_string(h) + ")");
  for (int n = 0; n < m.Nh(); ++n)
    require(m.Lambda(n).real() < 0,
            [&] { return "S4D kernel: Re λ must be < 0, got " + fmt(m.Lambda(n).real()); });
  K.resize(H, static_cast<Eigen::Index>(L));
  const CMat Crow = C;
#pragma omp parallel num_threads(resolve_threads(threads))
  {
    S4DScratch<T> scratch;
    std::vector<cdouble> c(static_cast<std::size_t>(m.Nh()));
#pragma omp for schedule(static)
    for (Eigen::Index h = 0; h < H; ++h) {
      for (int n = 0; n < m.Nh(); ++n) c[static_cast<std::size_t>(n)] = Crow(h, n);
      s4d_channel<T>(m, c.data(), dt(h), L, method, K.row(h).data(), scratch);
    }
  }
}

Vec s4d_kernel(const Dplr& m, const CVec& C, double dt, std::size_t L, Method method) {
  check_C(m, C, "S4D kernel");
  Signals<double> K;
  s4d_kernels<double>(m, Vec::Constant(1, dt), CMat(C.transpose()), L, method, K, 1);
  return K.row(0).transpose();
}

// ---------------------------------------------------------------------------------------------
// The S4 layer

template <class T>
Layer<T>::Layer(Dplr m, Vec dt, CMat C, Vec D)
    : m_(make_dplr(std::move(m.Lambda), std::move(m.P), std::move(m.B))),
      dt_(std::move(dt)),
      C_(std::move(C)),
      D_(std::move(D)) {
  const Eigen::Index H = dt_.size();
  require(H >= 1 && H <= 65536, "S4 layer: H must be in [1, 65536], got " + std::to_string(H));
  require(C_.rows() == H && C_.cols() == m_.Nh(),
          "S4 layer: C̃ must be H × Nh = " + std::to_string(H) + " × " + std::to_string(m_.Nh()));
  require(D_.size() == H, "S4 layer: D must have H entries");
  require(C_.allFinite() && D_.allFinite(), "S4 layer: C̃ and D must be finite");
  for (Eigen::Index h = 0; h < H; ++h)
    check_dt(dt_(h), "S4 layer (channel " + std::to_string(h) + ")");
}

template <class T>
const CMat& Layer<T>::c_prime_for(std::size_t L, int threads) const {
  if (cached_L_ != L) {
    check_L(L);
    CMat Cp(H(), m_.Nh());
#pragma omp parallel for num_threads(resolve_threads(threads)) schedule(static)
    for (Eigen::Index h = 0; h < H(); ++h)
      Cp.row(h) = c_prime(m_, C_.row(h).transpose(), dt_(h), L).transpose();
    Cp_ = std::move(Cp);
    cached_L_ = L;
  }
  return Cp_;
}

template <class T>
Signals<T> Layer<T>::kernels(std::size_t L, int threads) const {
  const CMat& Cp = c_prime_for(L, threads);
  CauchyKernel<T> gen(m_, L);
  Signals<T> K;
  gen(dt_, Cp, K, threads);
  return K;
}

template <class T>
void Layer<T>::conv(const Signals<T>& U, Signals<T>& Y, int threads) const {
  require(U.rows() == H(), "S4 layer: input has " + std::to_string(U.rows()) +
                               " channels, the layer " + std::to_string(H()));
  require(U.cols() >= 1, "S4 layer: empty input");
  const auto L = static_cast<std::size_t>(U.cols());
  const Signals<T> K = kernels(L, threads);
  FFTConv<T> fft(L);
  const VecT<T> D = D_.cast<T>();
  fft.convolve(K, U, Y, threads, &D);  // (K2)
}

template <class T>
void Layer<T>::recurrent(const Signals<T>& U, Signals<T>& Y, int threads) const {
  require(U.rows() == H(), "S4 layer: input has " + std::to_string(U.rows()) +
                               " channels, the layer " + std::to_string(H()));
  Y.resize(U.rows(), U.cols());
  const Eigen::Index L = U.cols();
#pragma omp parallel for num_threads(resolve_threads(threads)) schedule(static)
  for (Eigen::Index h = 0; h < H(); ++h) {
    Recurrence<T> rec(m_, C_.row(h).transpose(), dt_(h), D_(h));
    const T* u = U.row(h).data();
    T* y = Y.row(h).data();
    for (Eigen::Index k = 0; k < L; ++k) y[k] = rec.step(u[k]);
  }
}

template <class T>
Layer<T> legs_layer(int N, int H, double dt_min, double dt_max, std::uint64_t seed) {
  check_even_N(N, "S4 layer");
  require(H >= 1 && H <= 65536, "--H must be in [1, 65536], got " + std::to_string(H));
  check_dt(dt_min, "S4 layer (dt_min)");
  check_dt(dt_max, "S4 layer (dt_max)");
  require(dt_min <= dt_max,
          "S4 layer: need dt_min <= dt_max, got " + fmt(dt_min) + " > " + fmt(dt_max));
  Vec dt(H);
  for (int h = 0; h < H; ++h)
    dt(h) = H == 1 ? dt_min : dt_min * std::pow(dt_max / dt_min, double(h) / double(H - 1));
  return Layer<T>(to_dplr(nplr_legs(N)), dt, random_C(H, N / 2, seed), Vec::Ones(H));
}

template class CauchyKernel<float>;
template class CauchyKernel<double>;
template class Recurrence<float>;
template class Recurrence<double>;
template class Layer<float>;
template class Layer<double>;
template void s4d_kernels<float>(const Dplr&, const Vec&, const CMat&, std::size_t, Method,
                                 Signals<float>&, int);
template void s4d_kernels<double>(const Dplr&, const Vec&, const CMat&, std::size_t, Method,
                                  Signals<double>&, int);
template Layer<float> legs_layer<float>(int, int, double, double, std::uint64_t);
template Layer<double> legs_layer<double>(int, int, double, double, std::uint64_t);

}  // namespace ssm::s4
