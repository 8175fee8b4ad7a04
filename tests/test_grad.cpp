// Stage 8a: the backward pass of the selective scan (docs/MATH.md, G1–G9). The reference's
// every gradient against central finite differences of the forward reference (an independent
// truth: it never calls the backward), and of step mode (the backward of a step-by-step
// rollout is the scan's); the fast float and double backward against the reference for chunk
// sizes 1, non-dividing, dividing and ≥ L; bad input.
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <string>

#include "helpers.hpp"
#include "ssm/grad.hpp"
#include "ssm/selective.hpp"

using namespace ssm;

namespace {

using test::error_of;
using test::rel;

using P = ScanParams<double>;
using I = ScanInputs<double>;
using G = ScanGrads<double>;

// The loss whose gradients the backward returns: ℓ = Σ dy·y + Σ dh_last·h_last.
using Forward = std::function<ScanOutputs<double>(const P&, const I&)>;
double loss(const Forward& fwd, const P& p, const I& in, const std::vector<double>& dy,
            const std::vector<double>& dhl) {
  const auto out = fwd(p, in);
  double l = 0;
  for (std::size_t i = 0; i < dy.size(); ++i) l += dy[i] * out.y[i];
  for (std::size_t i = 0; i < dhl.size(); ++i) l += dhl[i] * out.h_last[i];
  return l;
}

ScanOutputs<double> reference(const P& p, const I& in) {
  return selective_scan_reference(p, in);
}
ScanOutputs<double> stepwise(const P& p, const I& in) {
  ScanOutputs<double> out;
  selective_scan_stepwise(p, in, out);
  return out;
}

// One differentiable array: where it lives in (p, in) and where its gradient lives in G.
struct Field {
  const char* name;
  std::function<std::vector<double>&(P&, I&)> x;
  std::function<const std::vector<double>&(const G&)> g;
};
const std::vector<Field>& fields() {
  static const std::vector<Field> f = {
      {"u", [](P&, I& in) -> std::vector<double>& { return in.u; },
       [](const G& g) -> const std::vector<double>& { return g.du; }},
      {"delta", [](P&, I& in) -> std::vector<double>& { return in.delta; },
       [](const G& g) -> const std::vector<double>& { return g.ddelta; }},
      {"delta_bias", [](P& p, I&) -> std::vector<double>& { return p.delta_bias; },
       [](const G& g) -> const std::vector<double>& { return g.ddelta_bias; }},
      {"A", [](P& p, I&) -> std::vector<double>& { return p.A; },
       [](const G& g) -> const std::vector<double>& { return g.dA; }},
      {"B", [](P&, I& in) -> std::vector<double>& { return in.B; },
       [](const G& g) -> const std::vector<double>& { return g.dB; }},
      {"C", [](P&, I& in) -> std::vector<double>& { return in.C; },
       [](const G& g) -> const std::vector<double>& { return g.dC; }},
      {"D_skip", [](P& p, I&) -> std::vector<double>& { return p.D_skip; },
       [](const G& g) -> const std::vector<double>& { return g.dD; }},
      {"z", [](P&, I& in) -> std::vector<double>& { return in.z; },
       [](const G& g) -> const std::vector<double>& { return g.dz; }},
      {"h0", [](P&, I& in) -> std::vector<double>& { return in.h0; },
       [](const G& g) -> const std::vector<double>& { return g.dh0; }},
  };
  return f;
}

// Central differences of ℓ for every entry of every non-empty field, compared with the
// backward's gradient: max |g − fd| / max |fd| per field, which must be ≤ 1e-6.
// Step: h = 1e-5·max(1, |x|). The central difference's truncation error is h²/6·|ℓ'''| ~ 2e-11
// (ℓ''' = O(1) here: the inputs are O(1) and Δ ≤ ~1), its rounding error ε·|ℓ|/h ~ 1e-16·10/1e-5
// = 1e-10; both are ≥ 4 orders below the 1e-6 tolerance, which a wrong term (an O(1) relative
// error in one contribution) exceeds by orders.
double check_against_fd(const Forward& fwd, const P& p0, const I& in0,
                        const std::vector<double>& dy, const std::vector<double>& dhl,
                        const G& grads) {
  double worst = 0;
  for (const auto& f : fields()) {
    P p = p0;
    I in = in0;
    std::vector<double>& x = f.x(p, in);
    if (x.empty()) {
      CHECK_MESSAGE(!(std::string(f.name) == "z" && !f.g(grads).empty()),
                    "dz must be empty without a gate");
      continue;
    }
    const std::vector<double>& g = f.g(grads);
    REQUIRE_MESSAGE(g.size() == x.size(), f.name);
    std::vector<double> fd(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
      const double x0 = x[i], h = 1e-5 * std::max(1.0, std::abs(x0));
      x[i] = x0 + h;
      const double lp = loss(fwd, p, in, dy, dhl);
      x[i] = x0 - h;
      const double lm = loss(fwd, p, in, dy, dhl);
      x[i] = x0;
      fd[i] = (lp - lm) / (2 * h);
    }
    const double e = rel(g, fd);
    MESSAGE(std::string(f.name) << ": max rel error vs FD " << e);
    CHECK_MESSAGE(e <= 1e-6, std::string(f.name) << ": " << e);
    worst = std::max(worst, e);
  }
  return worst;
}

std::vector<double> randn(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd;
  std::vector<double> v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}

// A Mamba-like problem (random_scan_problem) with every option on, and dy, dh_last random.
struct Problem {
  P p;
  I in;
  std::vector<double> dy, dhl;
};
Problem problem(ScanShape s, std::uint64_t seed, RandomScanOptions opt, bool dh_last = true) {
  Problem q;
  random_scan_problem(s, seed, q.p, q.in, opt);
  q.dy = randn(q.in.u.size(), seed + 100);
  if (dh_last) q.dhl = randn(std::size_t(s.batch) * s.D * s.N, seed + 200);
  return q;
}

// Without softplus Δ = Δraw + bias must stay > 0: Δraw in [0.02, 0.2], bias 0.05.
void positive_delta(Problem& q) {
  q.p.delta_softplus = false;
  for (auto& b : q.p.delta_bias) b = 0.05;
  for (auto& x : q.in.delta) x = 0.02 + 0.18 * (0.5 + 0.5 * std::tanh(x));
}

RandomScanOptions all_on(ScanDiscretization disc) {
  RandomScanOptions o;
  o.gate = o.skip = o.initial_state = true;
  o.disc = disc;
  return o;
}

// Mamba's Δ ~ 1e-3..1e-1 makes ΔA small; scaling Δraw's bias up (Δ ~ 0.1..1) exercises ZOH's
// ψ(ΔA) on both sides of its series/closed-form switch at |ΔA| = 1/2.
void larger_delta(Problem& q) {
  const std::size_t D = q.p.delta_bias.size();
  for (std::size_t d = 0; d < D; ++d)
    q.p.delta_bias[d] = inverse_softplus(0.3 + 0.7 * double(d) / double(D));
}

}  // namespace

TEST_CASE("reference backward: every gradient matches finite differences, Mamba B̄ (D6)") {
  auto q = problem({2, 3, 9, 4}, 1, all_on(ScanDiscretization::Mamba));
  const G g = selective_scan_backward_reference(q.p, q.in, q.dy, q.dhl);
  check_against_fd(reference, q.p, q.in, q.dy, q.dhl, g);
}

TEST_CASE("reference backward: every gradient matches finite differences, ZOH (D5)") {
  for (double scale : {0.0, 1.0}) {
    auto q = problem({2, 3, 9, 4}, 2, all_on(ScanDiscretization::ZOH));
    if (scale > 0) larger_delta(q);  // |ΔA| up to ~2: the closed-form branch of ψ too
    const G g = selective_scan_backward_reference(q.p, q.in, q.dy, q.dhl);
    check_against_fd(reference, q.p, q.in, q.dy, q.dhl, g);
  }
}

TEST_CASE("reference backward: without softplus (Δ = Δraw + bias), both discretizations") {
  for (auto disc : {ScanDiscretization::Mamba, ScanDiscretization::ZOH}) {
    auto q = problem({2, 2, 8, 3}, 3, all_on(disc));
    positive_delta(q);
    const G g = selective_scan_backward_reference(q.p, q.in, q.dy, q.dhl);
    check_against_fd(reference, q.p, q.in, q.dy, q.dhl, g);
  }
}

TEST_CASE("reference backward: no gate, no D, no h0, no dh_last (dz empty, dh0 still exact)") {
  RandomScanOptions o;
  o.gate = o.skip = o.initial_state = false;
  auto q = problem({1, 3, 10, 4}, 4, o, false);
  const G g = selective_scan_backward_reference(q.p, q.in, q.dy, q.dhl);
  CHECK(g.dz.empty());
  check_against_fd(reference, q.p, q.in, q.dy, q.dhl, g);
  // dh0 and dD are the gradients at the implied zeros: FD with h0 and D given as zeros.
  P p = q.p;
  I in = q.in;
  p.D_skip.assign(3, 0.0);
  in.h0.assign(3 * 4, 0.0);
  const G g0 = selective_scan_backward_reference(p, in, q.dy, q.dhl);
  CHECK(rel(g.dh0, g0.dh0) == 0.0);
  CHECK(rel(g.dD, g0.dD) == 0.0);
  check_against_fd(reference, p, in, q.dy, q.dhl, g0);
}

TEST_CASE("reference backward: long sequence, the adjoint through many steps (L = 200)") {
  // Mamba's Δ ~ 1e-3..1e-1: the slowest state remembers ~1/(Δ|A|) ≳ 10..1000 steps, so g_t
  // carries Ā-products over most of the 200 steps. Only u, A and h0 by FD (all fields are
  // tested on short sequences above).
  auto q = problem({1, 2, 200, 3}, 5, all_on(ScanDiscretization::Mamba));
  const G g = selective_scan_backward_reference(q.p, q.in, q.dy, q.dhl);
  for (const auto& f : fields()) {
    if (std::string(f.name) != "u" && std::string(f.name) != "h0" && std::string(f.name) != "A")
      continue;
    P p = q.p;
    I in = q.in;
    auto& x = f.x(p, in);
    std::vector<double> fd(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) {  // step as in check_against_fd
      const double x0 = x[i], h = 1e-5 * std::max(1.0, std::abs(x0));
      x[i] = x0 + h;
      const double lp = loss(reference, p, in, q.dy, q.dhl);
      x[i] = x0 - h;
      const double lm = loss(reference, p, in, q.dy, q.dhl);
      x[i] = x0;
      fd[i] = (lp - lm) / (2 * h);
    }
    const double e = rel(f.g(g), fd);
    MESSAGE(std::string(f.name) << ": max rel error vs FD " << e);
    CHECK(e <= 1e-6);
  }
}

TEST_CASE("step mode: the backward of a step-by-step rollout is the scan's backward") {
  // FD of selective_scan_stepwise (selective_state_update token by token, its own loops) against
  // the scan's reference backward: the two forward views have one gradient.
  for (auto disc : {ScanDiscretization::Mamba, ScanDiscretization::ZOH}) {
    auto q = problem({2, 2, 7, 3}, 6, all_on(disc));
    const G g = selective_scan_backward_reference(q.p, q.in, q.dy, q.dhl);
    check_against_fd(stepwise, q.p, q.in, q.dy, q.dhl, g);
  }
}

namespace {
// The fast backward against the reference on the same (precision-rounded) inputs, for every
// array: returns the worst relative error.
template <class T>
double fast_vs_reference(const Problem& q0, int chunk, int threads, double tol) {
  // Round the inputs to T first, so that input rounding is not part of the error.
  const auto pt = cast_params<T>(q0.p);
  const auto it = cast_inputs<T>(q0.in);
  const std::vector<T> dy(q0.dy.begin(), q0.dy.end()), dhl(q0.dhl.begin(), q0.dhl.end());
  const auto pd = cast_params<double>(pt);
  const auto id = cast_inputs<double>(it);
  const G ref = selective_scan_backward_reference(pd, id, std::vector<double>(dy.begin(), dy.end()),
                                                  std::vector<double>(dhl.begin(), dhl.end()));
  const ScanGrads<T> g = selective_scan_backward<T>(pt, it, dy, dhl, chunk, threads);
  double worst = 0;
  auto cmp = [&](const char* name, const std::vector<T>& a, const std::vector<double>& b) {
    const double e = rel(a, b);
    CHECK_MESSAGE(e <= tol, std::string(name) << " chunk " << chunk << ": " << e << " > " << tol);
    worst = std::max(worst, e);
  };
  cmp("du", g.du, ref.du);
  cmp("ddelta", g.ddelta, ref.ddelta);
  cmp("ddelta_bias", g.ddelta_bias, ref.ddelta_bias);
  cmp("dA", g.dA, ref.dA);
  cmp("dB", g.dB, ref.dB);
  cmp("dC", g.dC, ref.dC);
  cmp("dD", g.dD, ref.dD);
  cmp("dh0", g.dh0, ref.dh0);
  CHECK(g.dz.size() == ref.dz.size());
  if (!ref.dz.empty()) cmp("dz", g.dz, ref.dz);
  return worst;
}
}  // namespace

TEST_CASE("fast backward (double) equals the reference for chunk 1, non-dividing, dividing, ≥ L") {
  // Both sum the same terms in double, only the exp (vmath's exp2, ~1 ulp) and the order of the
  // sums over d and t differ: ≲ L·ε = 50·1.1e-16 ≈ 6e-15 relative (measured ~6e-16); 1e-13.
  const int L = 50;
  double worst = 0;
  for (auto disc : {ScanDiscretization::Mamba, ScanDiscretization::ZOH})
    for (int N : {16, 5}) {
      auto q = problem({2, 11, L, N}, 7 + N, all_on(disc));  // 11 = 8 + 3 lanes
      for (int chunk : {1, 3, 7, 10, 50, 64, 1000})
        for (int threads : {1, 2})
          worst = std::max(worst, fast_vs_reference<double>(q, chunk, threads, 1e-13));
    }
  MESSAGE("fast double vs reference: worst max rel error " << worst);
}

TEST_CASE("fast backward (float) equals the double reference to float rounding") {
  // Float rounding (ε_f = 6e-8) of the states, accumulated over their memory L_mem ≲ 1/(Δ|A|)
  // ≲ 1000 steps, and of the adjoint and the sums over t and d, as a random walk: ~√L_mem·ε_f
  // ≈ 2e-6 of each array's max (measured ≤ 1.5e-6); 2e-5 is 10× that, and a wrong term gives O(1).
  double worst = 0;
  for (auto disc : {ScanDiscretization::Mamba, ScanDiscretization::ZOH}) {
    auto q = problem({2, 20, 300, 16}, 11, all_on(disc));
    for (int chunk : {1, 64, 77, 300, 512})
      worst = std::max(worst, fast_vs_reference<float>(q, chunk, 2, 2e-5));
  }
  auto q = problem({1, 17, 100, 7}, 12, all_on(ScanDiscretization::Mamba));
  positive_delta(q);
  worst = std::max(worst, fast_vs_reference<float>(q, 13, 1, 2e-5));
  // A Mamba-length sequence (L = 2048, N = 16): the slowest states remember ~1000 steps.
  auto m = problem({1, 32, 2048, 16}, 15, all_on(ScanDiscretization::Mamba));
  worst = std::max(worst, fast_vs_reference<float>(m, 64, 2, 2e-5));
  MESSAGE("fast float vs reference: worst max rel error " << worst);
}

TEST_CASE("fast float backward at Mamba's layer shape (1, 1536, 2048, 16) vs the double reference") {
  // The shape: d_inner 1536 (Mamba-790M's), L 2048, N 16, every option on; the same
  // float-rounding argument as above (measured 2.5e-6), so the same 2e-5.
  auto q = problem({1, 1536, 2048, 16}, 21, all_on(ScanDiscretization::Mamba));
  const double worst = fast_vs_reference<float>(q, 64, 2, 2e-5);
  MESSAGE("fast float vs double reference at (1, 1536, 2048, 16): max rel error " << worst
          << " (tolerance 2e-5)");
}

TEST_CASE("fast backward without gate, D, h0, dh_last and without softplus") {
  RandomScanOptions o;
  o.gate = o.skip = o.initial_state = false;
  auto q = problem({3, 4, 40, 16}, 13, o, false);
  fast_vs_reference<double>(q, 9, 2, 1e-13);
  positive_delta(q);
  fast_vs_reference<double>(q, 40, 1, 1e-13);
}

TEST_CASE("backward: bad input throws an Error naming the argument") {
  auto q = problem({1, 2, 5, 3}, 14, all_on(ScanDiscretization::Mamba));
  auto ref = [&](const std::vector<double>& dy, const std::vector<double>& dhl) {
    return error_of([&] { selective_scan_backward_reference(q.p, q.in, dy, dhl); });
  };
  auto fast = [&](const std::vector<double>& dy, const std::vector<double>& dhl, int chunk) {
    return error_of([&] { selective_scan_backward<double>(q.p, q.in, dy, dhl, chunk); });
  };
  std::vector<double> short_dy(q.dy.begin(), q.dy.end() - 1), bad_dhl(q.dhl.size() + 1, 0.0);
  std::vector<double> nan_dy = q.dy, inf_dhl = q.dhl;
  nan_dy[3] = std::nan("");
  inf_dhl[1] = INFINITY;
  CHECK(ref(short_dy, q.dhl).find("dy has 9 values, expected batch·D·L") != std::string::npos);
  CHECK(fast(short_dy, q.dhl, 4).find("dy has 9 values") != std::string::npos);
  CHECK(ref(q.dy, bad_dhl).find("dh_last has 7 values, expected batch·D·N") != std::string::npos);
  CHECK(fast(q.dy, bad_dhl, 4).find("dh_last has 7 values") != std::string::npos);
  CHECK(ref(nan_dy, q.dhl).find("dy[0][0][3] = nan is not finite") != std::string::npos);
  CHECK(fast(nan_dy, q.dhl, 4).find("dy[0][0][3]") != std::string::npos);
  CHECK(ref(q.dy, inf_dhl).find("dh_last[0][0][1]") != std::string::npos);
  CHECK(fast(q.dy, q.dhl, 0).find("chunk = 0 must be > 0") != std::string::npos);
  CHECK(fast(q.dy, q.dhl, -3).find("chunk = -3 must be > 0") != std::string::npos);
  CHECK(fast(q.dy, q.dhl, 4).empty());
  // The forward's own validation still applies (a positive A).
  q.p.A[0] = 0.5;
  CHECK(ref(q.dy, q.dhl).find("A[0][0]") != std::string::npos);
}

TEST_CASE_TEMPLATE("all_finite(p, n): the vectorized test that gates the bad-entry search", T,
                   float, double) {
  // Every value but ±inf and NaN passes (the largest finite, subnormals, −0), wherever a bad
  // value sits: in the vectorized body or the tail.
  std::vector<T> v(37, T(1));
  v[1] = std::numeric_limits<T>::max();
  v[2] = -std::numeric_limits<T>::max();
  v[3] = std::numeric_limits<T>::denorm_min();
  v[4] = T(-0.0);
  CHECK(ssm::all_finite(v.data(), v.size()));
  CHECK(ssm::all_finite(v.data(), 0));
  for (T bad : {std::numeric_limits<T>::infinity(), -std::numeric_limits<T>::infinity(),
                std::numeric_limits<T>::quiet_NaN()})
    for (std::size_t at : {std::size_t(0), std::size_t(17), std::size_t(36)}) {
      std::vector<T> w = v;
      w[at] = bad;
      CHECK_FALSE(ssm::all_finite(w.data(), w.size()));
      CHECK(ssm::all_finite(w.data(), at));  // the values before it
    }
}

TEST_CASE("training's path: the checkpointed forward is the fast forward, and the backward from its checkpoints is the backward") {
  // selective_scan_checkpointed runs the very pass 1 the backward runs (same steps, same order),
  // so its checkpoints are the backward's own and the gradients from them are equal bit for bit;
  // its y is the fast forward's to rounding (another summation order: ≤ 1e-6 float, 1e-13 double).
  for (auto disc : {ScanDiscretization::Mamba, ScanDiscretization::ZOH})
    for (int chunk : {1, 7, 50, 64, 1000}) {
      auto q = problem({2, 19, 50, 16}, 31 + chunk, all_on(disc));  // 19: a partial group
      const auto pf = cast_params<float>(q.p);
      const auto inf = cast_inputs<float>(q.in);
      const std::vector<float> dy(q.dy.begin(), q.dy.end()), dhl(q.dhl.begin(), q.dhl.end());
      ScanOutputs<float> fast, ck_out;
      ScanCheckpoints<float> ck;
      selective_scan(pf, inf, fast, 2);
      selective_scan_checkpointed(pf, inf, ck_out, ck, chunk, 2);
      const auto ref = selective_scan_reference(cast_params<double>(pf), cast_inputs<double>(inf));
      CHECK(rel(ck_out.y, ref.y) <= 2e-6);
      CHECK(rel(ck_out.h_last, ref.h_last) <= 2e-6);
      CHECK(rel(ck_out.y, std::vector<double>(fast.y.begin(), fast.y.end())) <= 1e-6);
      CHECK(ck.h.size() == std::size_t(2 * 19 * 16) * ((50 + chunk - 1) / chunk));
      const ScanGrads<float> g0 = selective_scan_backward(pf, inf, dy, dhl, chunk, 2);
      ScanGrads<float> g1;
      g1.dA.assign(5, 9.0f);  // a reused g with stale contents of the wrong size
      selective_scan_backward(pf, inf, dy, dhl, g1, chunk, 1, &ck);
      for (auto [a, b] : {std::pair{&g0.du, &g1.du}, {&g0.ddelta, &g1.ddelta}, {&g0.dA, &g1.dA},
                          {&g0.dB, &g1.dB}, {&g0.dC, &g1.dC}, {&g0.dD, &g1.dD},
                          {&g0.ddelta_bias, &g1.ddelta_bias}, {&g0.dz, &g1.dz},
                          {&g0.dh0, &g1.dh0}})
        CHECK(*a == *b);
      // Reused once more, on the same inputs: the same gradients.
      selective_scan_backward(pf, inf, dy, dhl, g1, chunk, 2, &ck);
      CHECK(g1.du == g0.du);
      CHECK(g1.dA == g0.dA);
    }
  // The double path too, against the reference's gradients.
  auto q = problem({1, 11, 40, 5}, 41, all_on(ScanDiscretization::ZOH));
  ScanOutputs<double> out;
  ScanCheckpoints<double> ck;
  selective_scan_checkpointed(q.p, q.in, out, ck, 9, 1);
  CHECK(rel(out.y, selective_scan_reference(q.p, q.in).y) <= 1e-13);
  ScanGrads<double> g;
  selective_scan_backward(q.p, q.in, q.dy, q.dhl, g, 9, 2, &ck);
  const G r = selective_scan_backward_reference(q.p, q.in, q.dy, q.dhl);
  CHECK(rel(g.du, r.du) <= 1e-13);
  CHECK(rel(g.dA, r.dA) <= 1e-13);
  CHECK(rel(g.dB, r.dB) <= 1e-13);
  // Checkpoints of another chunk or problem are refused, naming both.
  CHECK_THROWS_WITH_AS(selective_scan_backward(q.p, q.in, q.dy, q.dhl, g, 10, 1, &ck),
                       doctest::Contains("checkpoints were taken with (batch, D, N, L) = (1, 11, 5, 40) every 9 steps"),
                       Error);
  ScanCheckpoints<double> bad = ck;
  bad.h.pop_back();
  CHECK_THROWS_AS(selective_scan_backward(q.p, q.in, q.dy, q.dhl, g, 9, 1, &bad), Error);
  CHECK_THROWS_WITH_AS(selective_scan_checkpointed(q.p, q.in, out, ck, 0, 1),
                       doctest::Contains("chunk = 0 must be > 0"), Error);
}
