// grad_s4.cpp — backward passes of the FFT convolution (G11) and the S4D kernel (G12, G13).
#include "ssm/grad_s4.hpp"

#include <complex>
#include <string>

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

}  // namespace

template <class T>
void conv_backward(const FFTConv<T>& fft, const Signals<T>& K, const Signals<T>& U,
                   const Signals<T>& dY, const VecT<T>* D, Signals<T>& dK, Signals<T>& dU,
                   VecT<T>* dD, int threads) {
  const auto L = static_cast<Eigen::Index>(fft.length());
  const Eigen::Index H = U.rows();
  require_shape(U, H, L, "conv_backward: U");
  require_shape(K, H, L, "conv_backward: K");
  require_shape(dY, H, L, "conv_backward: dY");
  require_finite(dY, "conv_backward: dY");
  if (D)
    require(D->size() == H,
            [&] { return "conv_backward: D must have H = " + std::to_string(H) + " entries"; });
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
  require_shape(U, H, L, "conv_backward: U");
  require_shape(dY, H, L, "conv_backward: dY");
  require(KF.H == H, [&] {
    return "conv_backward: kernel spectra of " + std::to_string(KF.H) + " channels, U has " +
           std::to_string(H);
  });
  require_finite(dY, "conv_backward: dY");
  if (D)
    require(D->size() == H,
            [&] { return "conv_backward: D must have H = " + std::to_string(H) + " entries"; });
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
#pragma omp parallel for num_threads(resolve_threads(threads)) schedule(static)
  for (Eigen::Index h = 0; h < H; ++h) {
    const double d = dt(h);
    double ddt = 0.0;
    for (Eigen::Index n = 0; n < Nh; ++n) {
      const cdouble l = m.Lambda(n);
      cdouble z, b, z_l, z_d, b_l, b_d;  // (G13)
      if (method == Method::ZOH) {
        z = std::exp(d * l);
        b = (z - 1.0) / l;
        z_l = d * z;
        z_d = l * z;
        b_l = (d * l * z - (z - 1.0)) / (l * l);
        b_d = z;
      } else {
        const cdouble w = 1.0 / (1.0 - 0.5 * d * l);
        z = (1.0 + 0.5 * d * l) * w;
        b = d * w;
        z_l = d * w * w;
        z_d = l * w * w;
        b_l = 0.5 * d * d * w * w;
        b_d = w * w;
      }
      // (G12) S = Σ_k dK̄_k z^k and S' = Σ_k k dK̄_k z^{k−1} by Horner's rule.
      cdouble S = dK(h, L - 1), Sp = 0.0;
      for (Eigen::Index k = L - 2; k >= 0; --k) {
        Sp = Sp * z + S;
        S = S * z + dK(h, k);
      }
      const cdouble Bt = m.B(n), Cn = C(h, n);
      g.dC(h, n) = 2.0 * std::conj(b * Bt * S);
      dB(h, n) = 2.0 * std::conj(Cn * b * S);
      const cdouble e = Cn * Bt;
      dLam(h, n) = 2.0 * std::conj(e * (b_l * S + b * z_l * Sp));
      ddt += 2.0 * std::real(e * (b_d * S + b * z_d * Sp));
    }
    g.ddt(h) = ddt;
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
