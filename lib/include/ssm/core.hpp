// ssm/core.hpp: the vocabulary every stage shares.
//
// Types: double precision by default (a teaching tool must show errors down to 1e-12);
// float appears only where the real systems use it (FFT convolution, selective scan), always
// with a double reference beside it.
//
// Errors: an invalid argument throws ssm::Error whose message names the argument, the value
// and what was expected, so that an app can print it as one line and exit 2.
#pragma once

#include <Eigen/Dense>
#include <complex>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace ssm {

using Mat = Eigen::MatrixXd;
using Vec = Eigen::VectorXd;
using RowVec = Eigen::RowVectorXd;
using cdouble = std::complex<double>;
using CMat = Eigen::MatrixXcd;
using CVec = Eigen::VectorXcd;

// H signals of length L, one per row, each row contiguous in memory: shape (H, L).
template <class T>
using Signals = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Thrown for every invalid argument; the message is one line, ready for "ssm-<app>: error: ".
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws Error(message) unless cond holds.
inline void require(bool cond, std::string_view message) {
  if (!cond) throw Error(std::string(message));
}
// The same with the message built only on failure, for checks on hot paths (a model's
// per-sequence calls): require(ok, [&] { return "x has " + std::to_string(n) + " rows"; }).
template <class F, std::enable_if_t<std::is_invocable_v<F&>, int> = 0>
inline void require(bool cond, F&& message) {
  if (!cond) throw Error(std::string(message()));
}

// Formats a double compactly and without loss that matters to a reader (%.6g).
std::string fmt(double x);

// True when every entry is finite.
template <class Derived>
bool all_finite(const Eigen::DenseBase<Derived>& m) {
  return m.allFinite();
}

// True when each of the n values at p is finite. The exponent bits are tested as integers,
// which the compiler vectorizes (zmm compares with -march=native); a loop of std::isfinite
// that stops at the first failure does not (perf put that loop over dy at 2–3 % of the scan
// backward). Callers that must name the bad entry look for it only when this says there is one.
template <class T, std::enable_if_t<std::is_floating_point_v<T>, int> = 0>
bool all_finite(const T* p, std::size_t n) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8, "float or double");
  using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  constexpr U kExp = sizeof(T) == 4 ? U(0x7f800000u) : U(0x7ff0000000000000ull);
  U bad = 0;
  for (std::size_t i = 0; i < n; ++i) {
    U b;
    std::memcpy(&b, p + i, sizeof b);
    bad |= U((b & kExp) == kExp);  // all exponent bits set: ±inf or NaN
  }
  return bad == 0;
}

// Spectral radius max |λ_i| of a square matrix (eigenvalues by Eigen's EigenSolver).
double spectral_radius(const Mat& A);

// max |a − b|, and the same divided by max |b| (relative to the reference's scale, so it
// does not explode where b crosses zero). b is the reference. Sizes must match.
double max_abs_diff(const Eigen::Ref<const Eigen::ArrayXd>& a,
                    const Eigen::Ref<const Eigen::ArrayXd>& b);
double max_rel_diff(const Eigen::Ref<const Eigen::ArrayXd>& a,
                    const Eigen::Ref<const Eigen::ArrayXd>& b);
// max_rel_diff of two flat arrays, a in any precision against the double reference b.
template <class T>
double max_rel_diff(const std::vector<T>& a, const std::vector<double>& b) {
  const Eigen::ArrayXd x =
      Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>(a.data(), Eigen::Index(a.size()))
          .template cast<double>();
  return max_rel_diff(x, Eigen::Map<const Eigen::ArrayXd>(b.data(), Eigen::Index(b.size())));
}

// Atomic file output: write the whole content to "<path>.tmp-<pid>" and rename it onto path,
// so a failed run never leaves a half-written file. Throws Error naming the path on failure.
void write_file_atomic(const std::string& path, std::string_view content);

// A well-mixed seed for an independent random stream `stream` derived from a user seed
// (splitmix64), so that e.g. channel h of a model does not reuse channel 0's numbers.
std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t stream);

}  // namespace ssm
