// Stage 9: the scan variants (X6–X8) against the sequential reference of stage 7 and against
// plain loops written here: the bidirectional scan against the forward reference plus the
// anti-causal recurrence; the log-space scan, its float error growing with the total decay;
// the Blelloch and Hillis–Steele trees with their exact work and depth.
#include <cmath>
#include <random>

#include "helpers.hpp"
#include "ssm/scans.hpp"
#include "ssm/selective.hpp"

using namespace ssm;
using test::error_of;
using test::rel;

namespace {

// h_t = a_t h_{t−1} + b_t, the plain loop in double.
std::vector<double> linear_loop(const std::vector<double>& a, const std::vector<double>& b,
                                double h0) {
  std::vector<double> h(a.size());
  double s = h0;
  for (std::size_t t = 0; t < a.size(); ++t) h[t] = s = a[t] * s + b[t];
  return h;
}

std::vector<double> silu_gate(const std::vector<double>& y, const std::vector<double>& z) {
  std::vector<double> o(y.size());
  for (std::size_t i = 0; i < y.size(); ++i) o[i] = y[i] * z[i] / (1.0 + std::exp(-z[i]));
  return o;
}

}  // namespace

TEST_CASE("scans: the anti-causal reference is the causal reference on the reversed sequence") {
  ScanParams<double> p;
  ScanInputs<double> in;
  random_scan_problem<double>({2, 24, 500, 16}, 1, p, in);
  const auto back = selective_scan_anticausal_reference(p, in);
  const auto fwd_rev = selective_scan_reference(p, reverse_time(in));
  const auto again = reverse_time(reverse_time(in));
  CHECK(again.u == in.u);  // R is its own inverse
  CHECK(again.B == in.B);
  // Reverse y of the reversed run back along time (y has the layout of u).
  ScanInputs<double> tmp = in;
  tmp.u = fwd_rev.y;
  const auto yb = reverse_time(tmp).u;
  // Two loops, written independently, summing the same terms in the same order: rounding.
  CHECK(rel(back.y, yb) < 1e-13);
  CHECK(rel(back.h_last, fwd_rev.h_last) < 1e-13);
}

TEST_CASE("scans: bidirectional scan (X6) = forward reference + anti-causal reference, gated once") {
  ScanParams<double> pf, pb;
  ScanInputs<double> in, other;
  random_scan_problem<double>({2, 64, 1000, 16}, 2, pf, in);
  random_scan_problem<double>({2, 64, 1000, 16}, 3, pb, other);  // the backward weights differ
  in.h0.clear();
  auto nz = in;
  nz.z.clear();
  const auto f = selective_scan_reference(pf, nz);
  const auto b = selective_scan_anticausal_reference(pb, nz);
  std::vector<double> sum(f.y.size());
  for (std::size_t i = 0; i < sum.size(); ++i) sum[i] = f.y[i] + b.y[i];
  const auto want = silu_gate(sum, in.z);
  std::vector<double> y;
  selective_scan_bidirectional(pf, pb, in, y, 2);
  CHECK(rel(y, want) < 1e-12);  // the fast double scan vs plain loops: rounding (~1e-15)
  std::vector<float> yf;
  selective_scan_bidirectional(cast_params<float>(pf), cast_params<float>(pb),
                               cast_inputs<float>(in), yf, 2);
  CHECK(rel(yf, want) < 2e-5);  // float: as stage 7's fast scan, ~5e-7 measured there
  // Without a gate: the plain sum.
  selective_scan_bidirectional(pf, pb, nz, y, 1);
  CHECK(rel(y, sum) < 1e-12);
  // A state carried in is refused: a bidirectional layer reads a whole sequence.
  auto with_h0 = in;
  with_h0.h0.assign(std::size_t(2) * 64 * 16, 0.0);
  CHECK(error_of([&] { selective_scan_bidirectional(pf, pb, with_h0, y); }).find("h0") !=
        std::string::npos);
}

TEST_CASE("scans: log-space scan (X7) equals the loop; b of both signs through complex logs") {
  std::mt19937_64 rng(4);
  std::uniform_real_distribution<double> ua(0.9, 1.0);
  std::normal_distribution<double> nrm;
  const std::size_t L = 2000;
  std::vector<double> a(L), b(L), bpos(L);
  for (std::size_t t = 0; t < L; ++t) {
    a[t] = ua(rng);
    b[t] = nrm(rng);
    bpos[t] = std::fabs(b[t]);
  }
  std::vector<double> h;
  log_space_scan(a, bpos, 0.5, h);
  // Double, |a*_L| ≈ 0.05·2000 = 100: the exponent's error ~1e-16·100 → ~1e-14 relative.
  CHECK(rel(h, linear_loop(a, bpos, 0.5)) < 1e-11);
  log_space_scan(a, b, -0.5, h);  // negative terms and h0: the complex path
  CHECK(rel(h, linear_loop(a, b, -0.5)) < 1e-11);
}

TEST_CASE("scans: in float the log-space error grows with the total log decay |a*|") {
  // One decay per step, e^{−λ}; λ·L is the total log decay. Same L, same inputs, two λ.
  const std::size_t L = 4096;
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> ub(0.5, 1.5);
  std::vector<double> b(L);
  for (auto& v : b) v = ub(rng);
  auto err = [&](double lambda) {
    std::vector<double> a(L, std::exp(-lambda));
    const auto ref = linear_loop(a, b, 0.0);
    std::vector<float> af(a.begin(), a.end()), bf(b.begin(), b.end()), h;
    log_space_scan(af, bf, 0.0f, h);
    return rel(h, ref);
  };
  const double small = err(1e-3), large = err(30.0);  // |a*_L| ≈ 4 and ≈ 1.2e5
  CAPTURE(small);
  CAPTURE(large);
  CHECK(large > 30 * small);
  CHECK(large > 1e-4);  // ~ε·|a*| = 6e-8 · 1.2e5 ≈ 7e-3, give or take the constant
}

TEST_CASE("scans: the whole selective scan in log space equals the reference") {
  ScanParams<double> p;
  ScanInputs<double> in;
  random_scan_problem<double>({1, 16, 600, 8}, 6, p, in, {true, true, true});
  ScanOutputs<double> o;
  selective_scan_logspace(p, in, o);
  const auto ref = selective_scan_reference(p, in);
  // |a*| ≤ Δ|A|·L ≈ 0.1·8·600 ≈ 500 at most: double error ~500·1e-16 per exponent.
  CHECK(rel(o.y, ref.y) < 1e-11);
  CHECK(rel(o.h_last, ref.h_last) < 1e-11);
}

TEST_CASE("scans: Blelloch (X8) gives the prefixes with 2(n'-1) combines in 2 log2 n' levels") {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> ua(0.5, 1.0);
  std::normal_distribution<double> nrm;
  for (int n : {1, 2, 3, 7, 8, 1000, 1024}) {
    CAPTURE(n);
    std::vector<ScanPair<double>> pr(static_cast<std::size_t>(n)), hs;
    std::vector<double> a(pr.size()), b(pr.size());
    for (std::size_t t = 0; t < pr.size(); ++t) pr[t] = {a[t] = ua(rng), b[t] = nrm(rng)};
    hs = pr;
    const ScanCounts c = blelloch_scan(pr);
    int K = 0;
    while ((1 << K) < n) ++K;
    const long long np2 = 1LL << K;
    CHECK(c.combines == (n <= 1 ? 0 : 2 * (np2 - 1)));
    CHECK(c.depth == (n <= 1 ? 0 : 2 * K));
    const auto h = linear_loop(a, b, 0.0);
    double prod = 1, worst = 0;
    for (std::size_t t = 0; t < pr.size(); ++t) {
      prod *= a[t];
      worst = std::max({worst, std::fabs(pr[t].b - h[t]) / (1 + std::fabs(h[t])),
                        std::fabs(pr[t].a - prod) / prod});
    }
    CHECK(worst < 1e-12);  // products regrouped by the tree: rounding only
    const ScanCounts d = hillis_steele_scan(hs);
    CHECK(d.combines == (long long)n * K - ((1LL << K) - 1));
    CHECK(d.depth == K);
    for (std::size_t t = 0; t < hs.size(); ++t)
      CHECK(std::fabs(hs[t].b - h[t]) <= 1e-12 * (1 + std::fabs(h[t])));
  }
}

TEST_CASE("scans: the selective scan through the Blelloch tree equals the reference") {
  ScanParams<double> p;
  ScanInputs<double> in;
  random_scan_problem<double>({2, 8, 777, 4}, 8, p, in, {true, true, true});
  ScanOutputs<double> o;
  const ScanCounts c = selective_scan_blelloch(p, in, o);
  const auto ref = selective_scan_reference(p, in);
  CHECK(rel(o.y, ref.y) < 1e-12);
  CHECK(rel(o.h_last, ref.h_last) < 1e-12);
  CHECK(c.combines == 2 * (1024 - 1));  // 777 padded to 1024, counted for one series
  CHECK(c.depth == 20);
}

TEST_CASE("scans: bad input is a one-line error naming the argument") {
  std::vector<double> h;
  CHECK(error_of([&] { log_space_scan<double>({1.0, 0.0}, {1.0, 1.0}, 0.0, h); })
            .find("a[1] = 0") != std::string::npos);
  CHECK(error_of([&] { log_space_scan<double>({1.0, -2.0}, {1.0, 1.0}, 0.0, h); })
            .find("a[1] = -2") != std::string::npos);
  CHECK(error_of([&] { log_space_scan<double>({0.5}, {1.0, 1.0}, 0.0, h); }).find("b has 2") !=
        std::string::npos);
  CHECK(error_of([&] { log_space_scan<double>({0.5}, {1.0}, NAN, h); }).find("h0") !=
        std::string::npos);
  ScanParams<double> p, q;
  ScanInputs<double> in, unused;
  random_scan_problem<double>({1, 4, 10, 2}, 1, p, in);
  random_scan_problem<double>({1, 4, 10, 3}, 1, q, unused);  // N = 3 against fwd's N = 2
  std::vector<double> y;
  in.h0.clear();
  CHECK(error_of([&] { selective_scan_bidirectional(p, q, in, y); }).find("bwd has D") !=
        std::string::npos);
}
