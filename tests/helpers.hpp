// Test helpers. doctest's Approx uses a float-sized epsilon and Eigen's isApprox is relative to
// the whole norm (it fails near zero), so every comparison goes through allclose (DESIGN.md).
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>
#include <sstream>
#include <string>

#include "ssm/core.hpp"

namespace test {

// |a_i − b_i| <= atol + rtol·|b_i| for every i (b is the reference). On failure the message
// names the first offending index, both values and the largest violation.
struct Close {
  bool ok = true;
  std::string why;
};

template <class DA, class DB>
Close allclose(const Eigen::DenseBase<DA>& a, const Eigen::DenseBase<DB>& b, double atol,
               double rtol) {
  Close c;
  if (a.rows() != b.rows() || a.cols() != b.cols()) {
    c.ok = false;
    c.why = "shapes differ: " + std::to_string(a.rows()) + "x" + std::to_string(a.cols()) +
            " vs " + std::to_string(b.rows()) + "x" + std::to_string(b.cols());
    return c;
  }
  double worst = 0.0;
  Eigen::Index wi = -1, wj = -1;
  for (Eigen::Index j = 0; j < a.cols(); ++j)
    for (Eigen::Index i = 0; i < a.rows(); ++i) {
      const double x = static_cast<double>(std::real(a.derived()(i, j)));
      const double y = static_cast<double>(std::real(b.derived()(i, j)));
      const double xi = static_cast<double>(std::imag(a.derived()(i, j)));
      const double yi = static_cast<double>(std::imag(b.derived()(i, j)));
      const double d = std::hypot(x - y, xi - yi);
      const double lim = atol + rtol * std::hypot(y, yi);
      const double excess = std::isfinite(d) ? d / lim : INFINITY;
      if (!(d <= lim) && (wi < 0 || excess > worst)) {
        worst = excess;
        wi = i;
        wj = j;
      }
    }
  if (wi >= 0) {
    std::ostringstream o;
    o.precision(17);
    o << "worst at (" << wi << ", " << wj << "): " << a.derived()(wi, wj) << " vs reference "
      << b.derived()(wi, wj) << ", |diff| is " << worst << "× the allowed atol + rtol·|ref| (atol "
      << atol << ", rtol " << rtol << ")";
    c.ok = false;
    c.why = o.str();
  }
  return c;
}

// max |a − b| / max |b|: the relative error used across the project (ssm::max_rel_diff).
template <class DA, class DB>
double rel_err(const Eigen::DenseBase<DA>& a, const Eigen::DenseBase<DB>& b) {
  const double scale = b.derived().cwiseAbs().maxCoeff();
  const double d = (a.derived().template cast<typename DB::Scalar>() - b.derived()).cwiseAbs().maxCoeff();
  return scale > 0 ? d / scale : d;
}

// max |a − ref| / max |ref| of two flat arrays (any precision against a double reference).
template <class T>
double rel(const std::vector<T>& a, const std::vector<double>& ref) {
  REQUIRE(a.size() == ref.size());
  return ssm::max_rel_diff(a, ref);
}

// Central differences of f() with respect to each of the n numbers at x (each restored after):
// fd_i = (f(x + h e_i) − f(x − h e_i)) / 2h with h = 1e-5·max(1, |x_i|) ≈ ε^{1/3} (ε = 2.2e-16),
// the step that balances a central difference's truncation error h²/6·|f‴| against its
// rounding ε·|f|/h. Each test that calls it justifies its tolerance from those two terms at its
// own sizes (test_grad_mamba, test_s4d_lm, test_attention_lm).
inline std::vector<double> central_fd(double* x, std::size_t n, const std::function<double()>& f) {
  std::vector<double> fd(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double x0 = x[i], h = 1e-5 * std::max(1.0, std::abs(x0));
    x[i] = x0 + h;
    const double fp = f();
    x[i] = x0 - h;
    const double fm = f();
    x[i] = x0;
    fd[i] = (fp - fm) / (2 * h);
  }
  return fd;
}

// max |a − b| / max |b| over b's entries (b the reference; a is read for as many).
inline double rel_err(const double* a, const std::vector<double>& b) {
  double d = 0, s = 0;
  for (std::size_t i = 0; i < b.size(); ++i) {
    d = std::max(d, std::abs(a[i] - b[i]));
    s = std::max(s, std::abs(b[i]));
  }
  return s > 0 ? d / s : d;
}

// max |b_i|.
inline double max_abs(const std::vector<double>& b) {
  double s = 0;
  for (double v : b) s = std::max(s, std::abs(v));
  return s;
}

// The message of the ssm::Error fn throws ("" when it does not throw).
inline std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const ssm::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace test

#define CHECK_CLOSE(a, b, atol, rtol)                          \
  do {                                                         \
    const auto _c = ::test::allclose((a), (b), (atol), (rtol)); \
    CHECK_MESSAGE(_c.ok, _c.why);                              \
  } while (0)
