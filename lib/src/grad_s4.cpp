// grad_s4.cpp — backward passes of the FFT convolution (G11), the S4D kernel (G12, G13) and the
// S4 DPLR kernel (G22, G23).
#include "ssm/grad_s4.hpp"

#include <cmath>
#include <complex>
#include <mutex>
#include <string>
#include <vector>

#include <Eigen/LU>

#include "fftw_api.hpp"

namespace ssm::grad {

namespace {

using cdouble = std::complex<double>;

std::string dims(Eigen::Index r, Eigen::Index c) {
  return std::to_string(r) + " × " + std::to_string(c);
}

// (The messages are built only on failure: these run once per sequence in training.)
template <class M>
void require_shape(const M& a, Eigen::Index rows, Eigen::Index cols, const char* what) {
  require(a.rows() == rows && a.cols() == cols, [&] {
    return std::string(what) + " must be " + dims(rows, cols) + ", got " + dims(a.rows(), a.cols());
  });
}

template <class M>
void require_finite(const M& a, const char* what) {
  require(a.allFinite(), [&] { return std::string(what) + " has a non-finite entry"; });
}

// The checks both conv_backward overloads share (H = U.rows(), L = fft.length()).
template <class T>
void check_conv_backward(Eigen::Index L, const Signals<T>& U, const Signals<T>& dY,
                         const VecT<T>* D) {
  const Eigen::Index H = U.rows();
  require_shape(U, H, L, "conv_backward: U");
  require_shape(dY, H, L, "conv_backward: dY");
  require_finite(dY, "conv_backward: dY");
  if (D)
    require(D->size() == H,
            [&] { return "conv_backward: D must have H = " + std::to_string(H) + " entries"; });
}

}  // namespace

template <class T>
void conv_backward(const FFTConv<T>& fft, const Signals<T>& K, const Signals<T>& U,
                   const Signals<T>& dY, const VecT<T>* D, Signals<T>& dK, Signals<T>& dU,
                   VecT<T>* dD, int threads) {
  const auto L = static_cast<Eigen::Index>(fft.length());
  const Eigen::Index H = U.rows();
  check_conv_backward(L, U, dY, D);
  require_shape(K, H, L, "conv_backward: K");
  // (G11) R (K̄ * R dy) and R (u * R dy), R reversing time.
  const Signals<T> R = dY.rowwise().reverse();
  Signals<T> tmp;
  fft.convolve(K, R, tmp, threads);
  dU = tmp.rowwise().reverse();
  if (D) dU += D->asDiagonal() * dY;
  fft.convolve(U, R, tmp, threads);
  dK = tmp.rowwise().reverse();
  if (dD) *dD = (U.array() * dY.array()).rowwise().sum().matrix();
}

template <class T>
void conv_backward(const FFTConv<T>& fft, const typename FFTConv<T>::Spectra& KF,
                   const Signals<T>& U, const Signals<T>& dY, const VecT<T>* D, Signals<T>& dK,
                   Signals<T>& dU, VecT<T>* dD, int threads) {
  const auto L = static_cast<Eigen::Index>(fft.length());
  const Eigen::Index H = U.rows();
  check_conv_backward(L, U, dY, D);
  require(KF.H == H, [&] {
    return "conv_backward: kernel spectra of " + std::to_string(KF.H) + " channels, U has " +
           std::to_string(H);
  });
  // (G11) as above; K̄'s half reuses its spectra (apply = convolve's fused pairs, same bits).
  const Signals<T> R = dY.rowwise().reverse();
  Signals<T> tmp;
  fft.apply(KF, R, tmp, threads);
  dU = tmp.rowwise().reverse();
  if (D) dU += D->asDiagonal() * dY;
  fft.convolve(U, R, tmp, threads);
  dK = tmp.rowwise().reverse();
  if (dD) *dD = (U.array() * dY.array()).rowwise().sum().matrix();
}

void conv_backward_direct(const Signals<double>& K, const Signals<double>& U,
                          const Signals<double>& dY, const Vec* D, Signals<double>& dK,
                          Signals<double>& dU, Vec* dD) {
  const Eigen::Index H = U.rows(), L = U.cols();
  require_shape(K, H, L, "conv_backward_direct: K");
  require_shape(dY, H, L, "conv_backward_direct: dY");
  dK.setZero(H, L);
  dU.setZero(H, L);
  for (Eigen::Index h = 0; h < H; ++h)
    for (Eigen::Index k = 0; k < L; ++k)
      for (Eigen::Index j = 0; j <= k; ++j) {  // y_k ∋ K̄_j u_{k−j}
        dK(h, j) += dY(h, k) * U(h, k - j);
        dU(h, k - j) += dY(h, k) * K(h, j);
      }
  if (D) dU += D->asDiagonal() * dY;
  if (dD) *dD = (U.array() * dY.array()).rowwise().sum().matrix();
}

S4DKernelGrads s4d_kernels_backward(const s4::Dplr& m, const Vec& dt, const CMat& C,
                                    const Signals<double>& dK, Method method, int threads) {
  require(method == Method::ZOH || method == Method::Bilinear, [&] {
    return "s4d_kernels_backward: method must be zoh or bilinear, got " + method_name(method);
  });
  const Eigen::Index H = dt.size(), Nh = m.Nh();
  require(H >= 1, "s4d_kernels_backward: no channels");
  require_shape(C, H, Nh, "s4d_kernels_backward: C");
  require(dK.rows() == H && dK.cols() >= 1, [&] {
    return "s4d_kernels_backward: dK must have H = " + std::to_string(H) + " rows, got " +
           dims(dK.rows(), dK.cols());
  });
  require_finite(dK, "s4d_kernels_backward: dK");
  for (Eigen::Index h = 0; h < H; ++h)
    require(std::isfinite(dt(h)) && dt(h) > 0, [&] {
      return "s4d_kernels_backward: dt[" + std::to_string(h) + "] must be finite and > 0";
    });
  const Eigen::Index L = dK.cols();
  S4DKernelGrads g;
  g.dC.resize(H, Nh);
  g.ddt.resize(H);
  CMat dLam(H, Nh), dB(H, Nh);  // per channel, summed below (no shared accumulators)
#pragma omp parallel num_threads(resolve_threads(threads))
  {
    // Per mode: z = Ā, b = B̄/B̃ and their derivatives in λ and Δ (G13); the Horner sums of all
    // modes run side by side (real and imaginary parts apart: independent chains, vectorized).
    const std::size_t nm = std::size_t(Nh);
    std::vector<cdouble> zv(nm), bv(nm), zl(nm), zd(nm), bl(nm), bd(nm);
    std::vector<double> zr(nm), zi(nm), Sr(nm), Si(nm), Pr(nm), Pi(nm);
#pragma omp for schedule(static)
    for (Eigen::Index h = 0; h < H; ++h) {
      const double d = dt(h);
      for (Eigen::Index n = 0; n < Nh; ++n) {
        const cdouble l = m.Lambda(n);
        const auto i = std::size_t(n);
        if (method == Method::ZOH) {
          const cdouble z = std::exp(d * l);
          zv[i] = z;
          bv[i] = (z - 1.0) / l;
          zl[i] = d * z;
          zd[i] = l * z;
          bl[i] = (d * l * z - (z - 1.0)) / (l * l);
          bd[i] = z;
        } else {
          const cdouble w = 1.0 / (1.0 - 0.5 * d * l);
          zv[i] = (1.0 + 0.5 * d * l) * w;
          bv[i] = d * w;
          zl[i] = d * w * w;
          zd[i] = l * w * w;
          bl[i] = 0.5 * d * d * w * w;
          bd[i] = w * w;
        }
        zr[i] = zv[i].real();
        zi[i] = zv[i].imag();
        Sr[i] = dK(h, L - 1);
        Si[i] = Pr[i] = Pi[i] = 0.0;
      }
      // (G12) S = Σ_k dK̄_k z^k and S' = Σ_k k dK̄_k z^{k−1} by Horner's rule:
      // S' ← S' z + S, S ← S z + dK̄_k, for k = L−2 … 0.
      for (Eigen::Index k = L - 2; k >= 0; --k) {
        const double dk = dK(h, k);
        for (std::size_t i = 0; i < std::size_t(Nh); ++i) {
          const double pr = Pr[i] * zr[i] - Pi[i] * zi[i] + Sr[i];
          const double pi = Pr[i] * zi[i] + Pi[i] * zr[i] + Si[i];
          const double sr = Sr[i] * zr[i] - Si[i] * zi[i] + dk;
          const double si = Sr[i] * zi[i] + Si[i] * zr[i];
          Pr[i] = pr, Pi[i] = pi, Sr[i] = sr, Si[i] = si;
        }
      }
      double ddt = 0.0;
      for (Eigen::Index n = 0; n < Nh; ++n) {
        const auto i = std::size_t(n);
        const cdouble S(Sr[i], Si[i]), Sp(Pr[i], Pi[i]), b = bv[i];
        const cdouble Bt = m.B(n), Cn = C(h, n);
        g.dC(h, n) = 2.0 * std::conj(b * Bt * S);
        dB(h, n) = 2.0 * std::conj(Cn * b * S);
        const cdouble e = Cn * Bt;
        dLam(h, n) = 2.0 * std::conj(e * (bl[i] * S + b * zl[i] * Sp));
        ddt += 2.0 * std::real(e * (bd[i] * S + b * zd[i] * Sp));
      }
      g.ddt(h) = ddt;
    }
  }
  g.dLambda = dLam.colwise().sum().transpose();
  g.dB = dB.colwise().sum().transpose();
  g.dlog_dt = (dt.array() * g.ddt.array()).matrix();
  return g;
}

void s4d_layer_forward(const s4::Dplr& m, const Vec& dt, const CMat& C, const Vec& D,
                       const Signals<double>& U, Method method, Signals<double>& Y,
                       int threads) {
  require(D.size() == dt.size(), "s4d_layer: D must have one entry per channel");
  require(U.rows() == dt.size(), "s4d_layer: U must have H = " + std::to_string(dt.size()) +
                                     " rows, got " + std::to_string(U.rows()));
  const auto L = static_cast<std::size_t>(U.cols());
  Signals<double> K;
  s4::s4d_kernels<double>(m, dt, C, L, method, K, threads);  // (Q1)
  FFTConv<double> fft(L);
  fft.convolve(K, U, Y, threads, &D);  // (K2)
}

S4DLayerGrads s4d_layer_backward(const s4::Dplr& m, const Vec& dt, const CMat& C, const Vec& D,
                                 const Signals<double>& U, const Signals<double>& dY,
                                 Method method, int threads) {
  require(D.size() == dt.size(), "s4d_layer_backward: D must have one entry per channel");
  require_shape(dY, U.rows(), U.cols(), "s4d_layer_backward: dY");
  const auto L = static_cast<std::size_t>(U.cols());
  Signals<double> K, dK;
  s4::s4d_kernels<double>(m, dt, C, L, method, K, threads);
  FFTConv<double> fft(L);
  S4DLayerGrads g;
  conv_backward(fft, K, U, dY, &D, dK, g.dU, &g.dD, threads);  // (G11)
  g.kernel = s4d_kernels_backward(m, dt, C, dK, method, threads);  // (G12)
  return g;
}

// ---------------------------------------------------------------------------------------------
// (G22, G23) The S4 DPLR kernel's backward.

namespace {

constexpr double kPi = 3.14159265358979323846;
using Fft = detail::Fftw<double>;

// An FFTW buffer of n complex values (FFTW's alignment, so one plan serves every buffer).
struct FftBuffer {
  Fft::complex* p;
  explicit FftBuffer(Eigen::Index n)
      : p(static_cast<Fft::complex*>(Fft::malloc(sizeof(Fft::complex) * std::size_t(n)))) {
    if (!p) throw Error("dplr_kernels_backward: out of memory for the FFT buffer");
  }
  ~FftBuffer() { Fft::free(p); }
  FftBuffer(const FftBuffer&) = delete;
  FftBuffer& operator=(const FftBuffer&) = delete;
};

// A forward complex FFT of size n, F_j = Σ_k x_k e^{−2πijk/n}, planned once (FFTW_ESTIMATE does
// not touch the buffer) and executed in place on per-thread buffers.
struct ForwardFft {
  Fft::plan p = nullptr;
  explicit ForwardFft(Eigen::Index n) {
    FftBuffer buf(n);
    std::lock_guard<std::mutex> lock(fftw_planner_mutex());
    p = Fft::dft(static_cast<int>(n), buf.p, FFTW_FORWARD, FFTW_ESTIMATE);
    if (!p) throw Error("FFTW could not plan a forward FFT of size " + std::to_string(n));
  }
  ~ForwardFft() {
    std::lock_guard<std::mutex> lock(fftw_planner_mutex());
    if (p) Fft::destroy(p);
  }
  ForwardFft(const ForwardFft&) = delete;
  ForwardFft& operator=(const ForwardFft&) = delete;
};

// The r × r matrices of the Woodbury step, on the stack (r ≤ 16, make_dplr).
using SmallCMat = Eigen::Matrix<cdouble, Eigen::Dynamic, Eigen::Dynamic, 0, 16, 16>;
using SmallCVec = Eigen::Matrix<cdouble, Eigen::Dynamic, 1, 0, 16, 1>;

}  // namespace

DplrKernelGrads dplr_kernels_backward(const s4::Dplr& model, const Vec& dt, const CMat& Cp,
                                      const Signals<double>& dK, int threads) {
  const s4::Dplr m = [&] {  // the forward's checks (CauchyKernel validates with make_dplr)
    try {
      return s4::make_dplr(model.Lambda, model.P, model.B);
    } catch (const Error& e) {
      throw Error(std::string("dplr_kernels_backward: ") + e.what());
    }
  }();
  const Eigen::Index H = dt.size(), Nh = m.Nh();
  const int r = m.rank(), R = r + 1, S = R * R;
  require(H >= 1, "dplr_kernels_backward: no channels");
  require_shape(Cp, H, Nh, "dplr_kernels_backward: Cp");
  require_finite(Cp, "dplr_kernels_backward: Cp");
  require(dK.rows() == H && dK.cols() >= 1 && dK.cols() <= (Eigen::Index(1) << 26), [&] {
    return "dplr_kernels_backward: dK must have H = " + std::to_string(H) +
           " rows and L in [1, 2^26] columns, got " + dims(dK.rows(), dK.cols());
  });
  require_finite(dK, "dplr_kernels_backward: dK");
  for (Eigen::Index h = 0; h < H; ++h)
    require(std::isfinite(dt(h)) && dt(h) > 0, [&] {
      return "dplr_kernels_backward: dt[" + std::to_string(h) + "] must be finite and > 0";
    });
  const Eigen::Index L = dK.cols();
  const bool even = L % 2 == 0;
  // The regular points j = 0 … ⌊L/2⌋ of the forward, less z = −1 (j = L/2) for even L.
  const Eigen::Index J = even ? L / 2 : L / 2 + 1;
  std::vector<double> tan_j(static_cast<std::size_t>(J));
  for (Eigen::Index j = 0; j < J; ++j)
    tan_j[std::size_t(j)] = std::tan(kPi * double(j) / double(L));  // as CauchyKernel's t_j
  const ForwardFft fft(L);

  DplrKernelGrads g;
  g.dCp.resize(H, Nh);
  g.ddt.resize(H);
  CMat dLam(H, Nh), dB(H, Nh);  // per channel, summed below in channel order
  std::vector<CMat> dP(static_cast<std::size_t>(H));
  const cdouble I(0.0, 1.0);
#pragma omp parallel num_threads(resolve_threads(threads))
  {
    FftBuffer F(L);
    CMat left(R, Nh), right(R, Nh), v(S, Nh), Gv(S, Nh);  // sum s = a·R + b, column n
    std::vector<cdouble> e(static_cast<std::size_t>(Nh)), ec(static_cast<std::size_t>(Nh));
    CVec k(S), G(S), dl(Nh);
    SmallCMat M, Minv;
    SmallCVec u, w, x, y;
#pragma omp for schedule(dynamic, 1)
    for (Eigen::Index h = 0; h < H; ++h) {
      const double d = dt(h);
      // F = DFT(dK̄_h): grad X_j = (c_j/L) F_j, the adjoint of K̄ = (1/L) irfft(X) (G22).
      for (Eigen::Index t = 0; t < L; ++t) {
        F.p[t][0] = dK(h, t);
        F.p[t][1] = 0.0;
      }
      Fft::exec(fft.p, F.p);
      for (Eigen::Index n = 0; n < Nh; ++n) {
        left(0, n) = Cp(h, n);
        right(0, n) = m.B(n);
        for (int a = 1; a < R; ++a) {
          left(a, n) = std::conj(m.P(n, a - 1));
          right(a, n) = m.P(n, a - 1);
        }
        for (int a = 0; a < R; ++a)
          for (int b = 0; b < R; ++b) v(a * R + b, n) = left(a, n) * right(b, n);
      }
      Gv.setZero();
      dl.setZero();
      double ddt = 0.0;
      for (Eigen::Index j = 0; j < J; ++j) {
        const double t = tan_j[std::size_t(j)];
        const cdouble gj(0.0, 2.0 * t / d);  // g(z_j) = (2/Δ)(1 − z)/(1 + z) = (2i/Δ) tan(πj/L)
        // The (r+1)² sums over both halves of the pairs (S4, S5).
        k.setZero();
        for (Eigen::Index n = 0; n < Nh; ++n) {
          const cdouble lam = m.Lambda(n);
          e[std::size_t(n)] = 1.0 / (gj - lam);
          ec[std::size_t(n)] = 1.0 / (gj - std::conj(lam));
          for (int s = 0; s < S; ++s)
            k(s) += v(s, n) * e[std::size_t(n)] + std::conj(v(s, n)) * ec[std::size_t(n)];
        }
        // grad X_j, then through the bilinear factor 1 + it and Woodbury (G22).
        const double c = j == 0 ? 1.0 : 2.0;
        const cdouble Fj(F.p[j][0], F.p[j][1]);
        const cdouble gW = (1.0 - I * t) * (c / double(L)) * Fj;
        G(0) = gW;
        if (r > 0) {
          M.resize(r, r);
          u.resize(r);
          w.resize(r);
          for (int a = 0; a < r; ++a) {
            for (int b = 0; b < r; ++b) M(a, b) = k((a + 1) * R + b + 1) + (a == b ? 1.0 : 0.0);
            u(a) = k(a + 1);        // k₀₁
            w(a) = k((a + 1) * R);  // k₁₀
          }
          Minv = Eigen::PartialPivLU<SmallCMat>(M).inverse();
          y = Minv * w;                  // M⁻¹ k₁₀
          x = Minv.transpose() * u;      // (k₀₁ M⁻¹)ᵀ
          for (int a = 0; a < r; ++a) {
            G(a + 1) = -std::conj(y(a)) * gW;
            G((a + 1) * R) = -std::conj(x(a)) * gW;
            for (int b = 0; b < r; ++b) G((a + 1) * R + b + 1) = std::conj(x(a) * y(b)) * gW;
          }
        }
        // Back through every sum, both halves (G23).
        for (Eigen::Index n = 0; n < Nh; ++n) {
          const cdouble en = e[std::size_t(n)], ecn = ec[std::size_t(n)], cen = std::conj(en);
          cdouble sig = 0.0, tau = 0.0;
          for (int s = 0; s < S; ++s) {
            Gv(s, n) += cen * G(s) + ecn * std::conj(G(s));
            sig += std::conj(v(s, n)) * G(s);
            tau += v(s, n) * G(s);
          }
          dl(n) += cen * cen * sig + ecn * ecn * std::conj(tau);
          ddt += std::real(gj * (en * en * std::conj(sig) + ecn * ecn * std::conj(tau))) / d;
        }
      }
      // z = −1 for even L: X = Δ Re Σ C̄'_n B̃_n, grad X = F_{L/2}/L (real).
      const double gam = even ? F.p[L / 2][0] / double(L) : 0.0;
      if (even) {
        cdouble cb = 0.0;
        for (Eigen::Index n = 0; n < Nh; ++n) cb += Cp(h, n) * m.B(n);
        ddt += gam * cb.real();
      }
      // From grad v to the factors of v = left·right (G23).
      CMat& dPh = dP[std::size_t(h)];
      dPh.setZero(Nh, r);
      for (Eigen::Index n = 0; n < Nh; ++n) {
        cdouble dc = gam * d * std::conj(m.B(n)), db = gam * d * std::conj(Cp(h, n));
        for (int b = 0; b < R; ++b) dc += std::conj(right(b, n)) * Gv(b, n);
        for (int a = 0; a < R; ++a) db += std::conj(left(a, n)) * Gv(a * R, n);
        for (int q = 0; q < r; ++q) {
          cdouble dp = 0.0;
          for (int a = 0; a < R; ++a) dp += std::conj(left(a, n)) * Gv(a * R + q + 1, n);
          for (int b = 0; b < R; ++b) dp += std::conj(Gv((q + 1) * R + b, n)) * right(b, n);
          dPh(n, q) = dp;
        }
        g.dCp(h, n) = dc;
        dB(h, n) = db;
      }
      dLam.row(h) = dl.transpose();
      g.ddt(h) = ddt;
    }
  }
  g.dLambda = dLam.colwise().sum().transpose();
  g.dB = dB.colwise().sum().transpose();
  g.dP = CMat::Zero(Nh, r);
  for (const CMat& p : dP) g.dP += p;
  g.dlog_dt = (dt.array() * g.ddt.array()).matrix();
  return g;
}

template void conv_backward<float>(const FFTConv<float>&, const Signals<float>&,
                                   const Signals<float>&, const Signals<float>&,
                                   const VecT<float>*, Signals<float>&, Signals<float>&,
                                   VecT<float>*, int);
template void conv_backward<double>(const FFTConv<double>&, const Signals<double>&,
                                    const Signals<double>&, const Signals<double>&,
                                    const VecT<double>*, Signals<double>&, Signals<double>&,
                                    VecT<double>*, int);
template void conv_backward<float>(const FFTConv<float>&, const FFTConv<float>::Spectra&,
                                   const Signals<float>&, const Signals<float>&,
                                   const VecT<float>*, Signals<float>&, Signals<float>&,
                                   VecT<float>*, int);
template void conv_backward<double>(const FFTConv<double>&, const FFTConv<double>::Spectra&,
                                    const Signals<double>&, const Signals<double>&,
                                    const VecT<double>*, Signals<double>&, Signals<double>&,
                                    VecT<double>*, int);

}  // namespace ssm::grad
