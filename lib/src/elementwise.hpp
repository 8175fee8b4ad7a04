// lib/src/elementwise.hpp — private to the library: the per-element math of the selective scan
// (M1, M2, M4) and PyTorch's weight initialization, written once for the sources of stage 7
// (selective.cpp, mamba.cpp) and stage 9 (scans.cpp, ssd.cpp).
#pragma once

#include <cmath>
#include <cstddef>
#include <random>

#include "ssm/recurrent.hpp"  // MatT
#include "ssm/selective.hpp"

namespace ssm::detail {

// Σ_i a_i b_i over n values, summed in double in 8 interleaved partial sums (lanes the compiler
// vectorizes; one running sum would chain n dependent additions), then those in a fixed order:
// the same bits on every call. RMSNorm's mean square and its backward's ⟨g, x⟩ (G14).
template <class T>
double dot_double(const T* a, const T* b, std::ptrdiff_t n) {
  double acc[8] = {};
  std::ptrdiff_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += double(a[i + k]) * double(b[i + k]);
  for (int k = 0; i < n; ++i, ++k) acc[k] += double(a[i]) * double(b[i]);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// softplus(x) = log(1 + e^x) without overflow (M1).
template <class T>
T softplus(T x) {
  return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}

template <class T>
T silu(T z) {
  return z / (T(1) + std::exp(-z));
}

// Δ of channel d from its raw value (M1).
template <class T>
T delta_of(const ScanParams<T>& p, T raw, std::size_t d) {
  const T x = raw + (p.delta_bias.empty() ? T(0) : p.delta_bias[d]);
  return p.delta_softplus ? softplus(x) : x;
}

// B̄ of one element (M2): Mamba's ΔB (D6) or ZOH's (e^{ΔA} − 1)/A·B (D5; expm1 keeps it
// accurate when ΔA is tiny).
template <class T>
T bbar_of(ScanDiscretization disc, T dt, T A, T B) {
  return disc == ScanDiscretization::Mamba ? dt * B : std::expm1(dt * A) / A * B;
}

// The step pair (Ā, B̄·u) of one element (M2, M5).
template <class T>
ScanPair<T> step_pair(ScanDiscretization disc, T dt, T A, T B, T u) {
  return {std::exp(dt * A), bbar_of(disc, dt, A, B) * u};
}

// y_t = Σ_n C h + D u, gated by silu(*z) when z is given (M4): the output after the state sum.
template <class T>
T output(const ScanParams<T>& p, T sum_ch, T u, const T* z, std::size_t d) {
  const T y = sum_ch + (p.D_skip.empty() ? T(0) : p.D_skip[d]) * u;
  return z ? y * silu(*z) : y;
}

// PyTorch's default for Linear and Conv1d weights: uniform in ±bound (bound = 1/√fan_in),
// drawn column by column from rng.
template <class T>
MatT<T> uniform(std::mt19937_64& rng, Eigen::Index rows, Eigen::Index cols, double bound) {
  std::uniform_real_distribution<double> u(-bound, bound);
  MatT<T> m(rows, cols);
  for (Eigen::Index j = 0; j < cols; ++j)
    for (Eigen::Index i = 0; i < rows; ++i) m(i, j) = static_cast<T>(u(rng));
  return m;
}

}  // namespace ssm::detail
