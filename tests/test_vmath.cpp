// The vectorized exp, exp2, log1p, softplus, silu, normal_cdf, the pack loop map, the
// in-register transpose and row sums (ssm/vmath.hpp),
// against the C library in long double, over dense sweeps of their ranges. This file is built
// twice: natively (AVX-512 on this machine: vreduce/vscalef and the shuffle transposes) and as
// test_vmath_portable for x86-64-v2 (SSE4.2 only: the generic vector-extension code).
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <limits>
#include <vector>

#include "helpers.hpp"
#include "ssm/vmath.hpp"

using namespace ssm::simd;

namespace {

// Max relative error of f against ref over n points spread over [lo, hi] (linearly, or
// logarithmically when log_spaced; lo > 0 then). The reference runs in long double.
template <class T, class F, class R>
double max_rel(F f, R ref, double lo, double hi, bool log_spaced = false, int n = 400000) {
  using V = Pack<T>;
  constexpr int W = kLanes<T>;
  double worst = 0.0;
  for (int i = 0; i < n; i += W) {
    V x;
    for (int j = 0; j < W; ++j) {
      const double s = double(i + j) / (n - 1);
      x[j] = static_cast<T>(log_spaced ? lo * std::pow(hi / lo, s) : lo + (hi - lo) * s);
    }
    const V y = f(x);
    for (int j = 0; j < W; ++j) {
      const long double r = ref(static_cast<long double>(x[j]));
      const double e = static_cast<double>(std::fabs((static_cast<long double>(y[j]) - r) / r));
      if (!(e <= worst)) worst = e;  // a NaN result counts as the worst
    }
  }
  return worst;
}

template <class T>
constexpr double eps = std::numeric_limits<T>::epsilon();  // 2^−23 (float), 2^−52 (double)

long double softplus_ref(long double x) {
  return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}

}  // namespace

TEST_CASE("the build uses the code path its name says") {
#if defined(SSM_EXPECT_PORTABLE)
  CHECK_MESSAGE(!defined_avx512(), "the portable build must not use AVX-512");
#endif
  MESSAGE("AVX-512 path: " << (defined_avx512() ? "yes" : "no (generic vector extensions)"));
}

// Bounds: the polynomials' truncation is 2e-9 (float) and 3e-18 (double), far below an ulp, so
// what remains is rounding in the reduction, Horner's rule and the scaling: measured at most
// 0.9 ulp (eps = spacing at 1, so 1 eps ≈ 1–2 ulp of the result); the bound is 1.5 eps.
TEST_CASE("exp and exp2 are within 1.5 eps of the C library over their whole normal range") {
  auto fe = [](auto x) { return ssm::simd::exp(x); };
  auto f2 = [](auto x) { return ssm::simd::exp2(x); };
  auto re = [](long double x) { return std::exp(x); };
  auto r2 = [](long double x) { return std::exp2(x); };
  CHECK(max_rel<float>(fe, re, -87.3, 88.3) <= 1.5 * eps<float>);
  CHECK(max_rel<float>(fe, re, -1.0, 1.0) <= 1.5 * eps<float>);
  CHECK(max_rel<float>(f2, r2, -126.0, 127.0) <= 1.5 * eps<float>);
  CHECK(max_rel<double>(fe, re, -708.0, 709.0) <= 1.5 * eps<double>);
  CHECK(max_rel<double>(fe, re, -1.0, 1.0) <= 1.5 * eps<double>);
  CHECK(max_rel<double>(f2, r2, -1022.0, 1023.0) <= 1.5 * eps<double>);
}

TEST_CASE("exp and exp2 saturate to 0 and inf and keep NaN") {
  const f32x16 big = splat<f32x16>(1000.0f), small = splat<f32x16>(-1000.0f);
  CHECK(ssm::simd::exp(big)[3] == INFINITY);
  CHECK(ssm::simd::exp(small)[3] == 0.0f);
  CHECK(ssm::simd::exp2(big)[3] == INFINITY);
  CHECK(ssm::simd::exp2(small)[3] == 0.0f);
  CHECK(ssm::simd::exp(splat<f32x16>(-INFINITY))[0] == 0.0f);
  CHECK(ssm::simd::exp(splat<f32x16>(INFINITY))[0] == INFINITY);
  CHECK(std::isnan(ssm::simd::exp(splat<f32x16>(NAN))[0]));
  CHECK(std::isnan(ssm::simd::exp2(splat<f32x16>(NAN))[0]));
  CHECK(ssm::simd::exp(splat<f64x8>(-1e4))[0] == 0.0);
  CHECK(ssm::simd::exp(splat<f64x8>(1e4))[0] == INFINITY);
  CHECK(std::isnan(ssm::simd::exp(splat<f64x8>(NAN))[0]));
  CHECK(ssm::simd::exp(splat<f32x16>(0.0f))[5] == 1.0f);   // exactly
  CHECK(ssm::simd::exp2(splat<f64x8>(-3.0))[5] == 0.125);  // exactly
}

// log1p: the atanh series after the reduction to m in [√½, √2); the rounding of 1 + y is
// recovered (Fast2Sum), so tiny y keep full relative precision. Measured ≤ 2.2 eps; bound 3 eps.
TEST_CASE("log1p is within 3 eps of the C library, tiny arguments included") {
  auto f = [](auto x) { return ssm::simd::log1p(x); };
  auto r = [](long double x) { return std::log1p(x); };
  CHECK(max_rel<float>(f, r, 0.0, 1.0) <= 3 * eps<float>);
  CHECK(max_rel<float>(f, r, -0.999, -1e-3) <= 3 * eps<float>);
  CHECK(max_rel<float>(f, r, 1e-30, 1e-3, true) <= 3 * eps<float>);
  CHECK(max_rel<float>(f, r, 1.0, 1e30, true) <= 3 * eps<float>);
  CHECK(max_rel<double>(f, r, 0.0, 1.0) <= 3 * eps<double>);
  CHECK(max_rel<double>(f, r, 1e-300, 1e-3, true) <= 3 * eps<double>);
  CHECK(max_rel<double>(f, r, 1.0, 1e300, true) <= 3 * eps<double>);
}

// softplus = max(x, 0) + log1p(e^{−|x|}) with the unit-interval series; silu = z / (1 + e^{−z}).
// Each chains an exp (≤ 1 eps), a division and a short sum: measured ≤ 2.2 eps; bound 3 eps.
TEST_CASE("softplus and silu are within 3 eps of their definitions") {
  auto sp = [](auto x) { return ssm::simd::softplus(x); };
  auto si = [](auto x) { return ssm::simd::silu(x); };
  auto si_ref = [](long double z) { return z / (1 + std::exp(-z)); };
  CHECK(max_rel<float>(sp, softplus_ref, -87.0, 80.0) <= 3 * eps<float>);
  CHECK(max_rel<double>(sp, softplus_ref, -700.0, 700.0) <= 3 * eps<double>);
  CHECK(max_rel<float>(si, si_ref, -80.0, 80.0) <= 3 * eps<float>);
  CHECK(max_rel<double>(si, si_ref, -700.0, 700.0) <= 3 * eps<double>);
  // The limits: softplus(x) → x for large x, → e^x for very negative x; silu(−inf side) → −0.
  CHECK(ssm::simd::softplus(splat<f32x16>(100.0f))[0] == 100.0f);
  CHECK(std::fabs(ssm::simd::softplus(splat<f32x16>(-30.0f))[0] / std::exp(-30.0f) - 1) < 3e-7);
  CHECK(ssm::simd::silu(splat<f32x16>(-200.0f))[0] == 0.0f);
}

// Φ(y) = ½ erfc(−y/√2) by the erfcc fit (fractional error 1.05e-7 in exact arithmetic) in
// float. The exp's argument ≈ −y²/2 carries a rounding of about eps·y²/2, so the relative error
// grows in the left tail, where Φ is tiny: it is bounded by 5 eps for y ≥ −2 and by
// (4 + y²/2) eps down to y = −4.75 (Φ = 1e-6); the absolute error is 2 eps over the whole range.
// Measured (AVX-512 / portable): 3.4 / 4.0 eps, 6.8 / 10.4 eps in the tail, 1.4 eps absolute.
TEST_CASE("normal_cdf: relative error 5 eps for y >= -2, (4 + y^2/2) eps in the tail, 2 eps absolute") {
  auto phi = [](auto y) { return ssm::simd::normal_cdf(y); };
  auto phi_ref = [](long double y) { return 0.5L * std::erfc(-y / std::sqrt(2.0L)); };
  const double rel = max_rel<float>(phi, phi_ref, -2.0, 12.0);
  MESSAGE("normal_cdf: max relative error on [-2, 12] " << rel / eps<float> << " eps (bound 5)");
  CHECK(rel <= 5 * eps<float>);
  const double tail = max_rel<float>(phi, phi_ref, -4.75, -2.0);
  MESSAGE("normal_cdf: max relative error on [-4.75, -2] " << tail / eps<float>
                                                           << " eps (bound 15.3)");
  CHECK(tail <= (4 + 4.75 * 4.75 / 2) * eps<float>);
  double worst_abs = 0.0;
  for (int i = 0; i < 400000; i += 16) {
    f32x16 y;
    for (int j = 0; j < 16; ++j) y[j] = float(-40.0 + 80.0 * (i + j) / 399999.0);
    const f32x16 p = ssm::simd::normal_cdf(y);
    for (int j = 0; j < 16; ++j) {
      const double e = double(std::fabs(p[j] - phi_ref(y[j])));
      if (!(e <= worst_abs)) worst_abs = e;
    }
  }
  MESSAGE("normal_cdf: max absolute error " << worst_abs / eps<float> << " eps (bound 2)");
  CHECK(worst_abs <= 2 * eps<float>);
  CHECK(ssm::simd::normal_cdf(splat<f32x16>(-200.0f))[0] == 0.0f);
  CHECK(ssm::simd::normal_cdf(splat<f32x16>(200.0f))[0] == 1.0f);
  CHECK(ssm::simd::normal_cdf(splat<f32x16>(0.0f))[0] == doctest::Approx(0.5).epsilon(1e-7));
}

TEST_CASE("abs clears the sign and transpose turns rows into columns") {
  f32x16 x;
  for (int i = 0; i < 16; ++i) x[i] = (i % 2 ? -1.0f : 1.0f) * float(i);
  const f32x16 a = ssm::simd::abs(x);
  for (int i = 0; i < 16; ++i) CHECK(a[i] == float(i));
  f32x16 rf[16];
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) rf[i][j] = float(100 * i + j);
  transpose(rf);
  int bad = 0;
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) bad += rf[i][j] != float(100 * j + i);
  CHECK(bad == 0);
  f64x8 rd[8];
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 8; ++j) rd[i][j] = 100.0 * i + j;
  transpose(rd);
  bad = 0;
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 8; ++j) bad += rd[i][j] != 100.0 * j + i;
  CHECK(bad == 0);
}

TEST_CASE("row_sums puts the sum of row i of a block in lane i") {
  // r[i][c] = (i + 1)·2^c: every sum is exact in float, and a lane taken from the wrong row
  // or a column left out or counted twice changes it.
  f32x16 rf[16];
  for (int i = 0; i < 16; ++i)
    for (int c = 0; c < 16; ++c) rf[i][c] = float(i + 1) * std::ldexp(1.0f, c);
  const f32x16 sf = row_sums(rf);
  int bad = 0;
  for (int i = 0; i < 16; ++i) bad += sf[i] != float(i + 1) * 65535.0f;
  CHECK(bad == 0);
  f64x8 rd[8];
  for (int i = 0; i < 8; ++i)
    for (int c = 0; c < 8; ++c) rd[i][c] = (i + 1) * std::ldexp(1.0, c) + 0.25;
  const f64x8 sd = row_sums(rd);
  bad = 0;
  for (int i = 0; i < 8; ++i) bad += sd[i] != (i + 1) * 255.0 + 2.0;
  CHECK(bad == 0);
}

TEST_CASE("map applies a pack function to every value, the tail through a padded pack") {
  // out[i] = a[i]·b[i] + e^{−a[i]}: each value must come out as the pack formula gives it,
  // wherever it sits (full packs, the tail, and lengths 0, 1, 15, 16, 17, 37), and out may
  // alias an input.
  auto f = [](f32x16 a, f32x16 b) { return a * b + exp(-a); };
  for (std::size_t n : {0u, 1u, 15u, 16u, 17u, 37u}) {
    std::vector<float> a(n), b(n), out(n, -7.0f);
    for (std::size_t i = 0; i < n; ++i) a[i] = 0.1f * float(i) - 1.0f, b[i] = 2.0f - 0.05f * float(i);
    map<f32x16>(out.data(), n, f, a.data(), b.data());
    int bad = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const f32x16 r = f(splat<f32x16>(a[i]), splat<f32x16>(b[i]));
      bad += out[i] != r[0];
    }
    CHECK_MESSAGE(bad == 0, "n = " << n);
    map<f32x16>(a.data(), n, f, a.data(), b.data());  // in place: a ← f(a, b)
    CHECK(a == out);
  }
  std::vector<double> d(11, 3.0);  // doubles: 8 lanes, a tail of 3
  map<f64x8>(d.data(), d.size(), [](f64x8 x) { return x * x; }, d.data());
  CHECK(d == std::vector<double>(11, 9.0));
}
