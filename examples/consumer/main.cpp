// examples/consumer/main.cpp — a program outside ssmlab built against its installed package
// (find_package(ssmlab) or pkg-config ssmlab): stage 3's recurrence and stage 4's convolution of
// one discretized model give the same output (K1–K2 of MATH.md), here by the FFT (uses FFTW).
#include <ssm/continuous.hpp>
#include <ssm/convolution.hpp>
#include <ssm/recurrent.hpp>

#include <cmath>
#include <cstdio>

int main() {
  const std::size_t L = 1000;
  const auto s = ssm::make_ssm(ssm::damped_oscillator(), 0.01, ssm::Method::ZOH);
  ssm::Signals<double> u(1, L), y_conv(1, L), k(1, L);
  for (std::size_t t = 0; t < L; ++t) u(0, t) = std::sin(0.05 * t) + (t % 100 == 0 ? 1.0 : 0.0);
  ssm::Vec y_rnn = ssm::unroll(s, u.row(0).transpose());          // x_k = Ā x_{k−1} + B̄ u_k
  k.row(0) = ssm::kernel(s, L).transpose();                        // K̄_k = C Ā^k B̄
  const ssm::Vec D = ssm::Vec::Constant(1, s.D);
  ssm::FFTConv<double>(L).convolve(k, u, y_conv, 1, &D);           // y = K̄ ∗ u + D u by FFT
  const double err = (y_rnn.transpose() - y_conv.row(0)).cwiseAbs().maxCoeff();
  std::printf("ssmlab consumer: recurrence vs FFT convolution over %zu steps: max |diff| = %.2e "
              "(tolerance 1e-9): %s\n", L, err, err <= 1e-9 ? "PASS" : "FAIL");
  return err <= 1e-9 ? 0 : 1;
}
