// Stage 8b: the S4D language model (ssm/s4d_lm.hpp, docs/MATH.md T2). Every parameter's
// gradient against central finite differences of the forward (logits() then the cross-entropy:
// the differences never call a backward), tied and untied; the float model against the double
// one on the same weights; the recurrent stepper against logits() (the recurrence against the
// kernel + FFT convolution: two independent computations of the layer); loss_and_grad from two
// threads at once against serial calls, bit for bit; a few hundred Adam steps on one batch
// (overfitting); the parameter list; bad input; the batched pass against the per-sequence one.
#include <algorithm>
#include <cmath>
#include <complex>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "helpers.hpp"
#include "ssm/s4d_lm.hpp"

using namespace ssm;

namespace {

using test::error_of;

S4DLMConfig tiny_config(int d_model, int n_layers, int d_state, bool tied) {
  S4DLMConfig c;
  c.d_model = d_model;
  c.n_layers = n_layers;
  c.d_state = d_state;
  c.tied = tied;
  return c;
}

// Weights far from the initialization's special values, so that no term of the backward can
// hide behind a zero or a one: every array gets O(0.3) noise (B̃ = 1 + 0i, norms = 1 and the
// 0.02 embedding would otherwise make whole terms vanish or be tiny), and Δ moves to 0.05–0.8
// (the init's 1e-3..1e-1 leaves the kernels nearly flat over 7 steps), so the terms through
// Ā and B̄ and the kernel's decay matter.
template <class T>
void perturb(S4DLMWeights<T>& w, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd;
  std::uniform_real_distribution<double> u(std::log(0.05), std::log(0.8));
  auto noise = [&](auto& m, double sd) {
    for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] += static_cast<T>(sd * nd(rng));
  };
  noise(w.embedding, 0.7);
  for (auto& L : w.layers) {
    noise(L.norm_w, 0.3);
    noise(L.log_neg_re, 0.3);
    noise(L.lambda_im, 0.3);
    noise(L.B_re, 0.3);
    noise(L.B_im, 0.3);
    noise(L.C_re, 0.3);
    noise(L.C_im, 0.3);
    for (Eigen::Index h = 0; h < L.log_dt.size(); ++h) L.log_dt(h) = static_cast<T>(u(rng));
    noise(L.D, 0.3);
    noise(L.out_proj, 0.3);
    noise(L.out_b, 0.3);
  }
  noise(w.norm_f, 0.3);
  noise(w.lm_head, 0.3);
}

std::vector<int> random_tokens(int L, int vocab, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> d(0, vocab - 1);
  std::vector<int> t(static_cast<std::size_t>(L));
  for (auto& v : t) v = d(rng);
  return t;
}

// The loss by the forward only: logits() and the cross-entropy of lm.hpp.
template <class T>
double forward_loss(const S4DLM<T>& m, const std::vector<int>& tokens,
                    const std::vector<int>& targets) {
  Signals<T> lg;
  m.logits(tokens, lg);
  return softmax_cross_entropy(lg, targets);
}

// Tolerance of every gradient against finite differences, on the whole array:
// max |g − fd| / max |fd| ≤ 1e-6.
constexpr double kTol = 1e-6;

// Central differences with step h = 1e-5·max(1, |x_i|) ≈ ε^{1/3} (ε = 2.2e-16), the step
// that balances a central difference's two errors: truncation h²/6·|f'''| ~ 2e-11 (f''' = O(1):
// weights and activations are O(1), the exponentials of log_dt and log_neg_re have derivatives
// of the same size as the values), rounding ~ ε·|f|/h ≈ 2e-16·2/1e-5 = 4e-11 for the loss
// |f| ≈ log 5 (plus the FFT's rounding of the activations, ~1e-15 relative, the same order).
// Relative to an array's max |fd| ≥ 1e-3 (MESSAGE prints each; the smallest is reported) that
// is ≲ 1e-7 (measured worst 1.9e-8 untied, 7.4e-9 tied; smallest max |fd| 1.3e-3), ≥ 10× below the tolerance, which a wrong term (an
// O(1) error in one contribution) exceeds by orders.
// (The differences themselves: test::central_fd in helpers.hpp.)
using test::central_fd;

using test::rel_err;
using test::max_abs;

// Every params() array of m against finite differences; returns the worst relative error.
// The gradient is sliced by params()' sizes (the documented concatenation order).
double all_params_vs_fd(S4DLM<double>& m, const std::vector<int>& tokens,
                        const std::vector<int>& targets) {
  std::vector<double> grad;
  const double loss = m.loss_and_grad(tokens, targets, grad);
  CHECK(std::abs(loss - forward_loss(m, tokens, targets)) <= 1e-13 * std::abs(loss));
  auto views = m.params();
  std::size_t total = 0;
  for (const auto& v : views) total += v.size;
  REQUIRE(grad.size() == total);
  double worst = 0, smallest = INFINITY;
  std::size_t off = 0;
  for (auto& v : views) {
    const auto fd = central_fd(v.data, v.size, [&] { return forward_loss(m, tokens, targets); });
    const double e = rel_err(grad.data() + off, fd);
    MESSAGE(v.name << ": max rel error vs FD " << e << " (max |fd| " << max_abs(fd) << ")");
    CHECK_MESSAGE(e <= kTol, v.name << ": " << e << " > " << kTol);
    CHECK_MESSAGE(max_abs(fd) > 0, v.name << ": the loss does not depend on it");
    worst = std::max(worst, e);
    smallest = std::min(smallest, max_abs(fd));
    off += v.size;
  }
  MESSAGE("worst FD error " << worst << ", smallest array max |fd| " << smallest);
  return worst;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

TEST_CASE("loss_and_grad: every parameter matches finite differences, head tied and untied") {
  // vocab 5, d_model 4, 2 layers, N 4 (2 modes), L 7, two targets ignored, a repeated token (its
  // embedding row gathers two gradients).
  const std::vector<int> tokens{3, 1, 4, 1, 0, 2, 4};
  const std::vector<int> targets{1, -1, 1, 0, -1, 4, 2};
  for (bool tied : {true, false}) {
    CAPTURE(tied);
    S4DLM<double> m(tiny_config(4, 2, 4, tied), 5, 11);
    perturb(m.weights(), 5);
    CHECK(all_params_vs_fd(m, tokens, targets) <= kTol);
  }
}

TEST_CASE("the FD check can fail: a wrong gradient is detected") {
  // An untied model whose lm_head equals the embedding computes the tied model's function, but
  // its embedding gradient lacks the head's half (dH, G18): against the tied model's finite
  // differences it must miss by far more than kTol (measured 0.47).
  const std::vector<int> tokens{3, 1, 4, 1, 0, 2, 4};
  const std::vector<int> targets{1, -1, 1, 0, -1, 4, 2};
  S4DLM<double> tied(tiny_config(4, 1, 4, true), 5, 3);
  perturb(tied.weights(), 8);
  S4DLM<double> untied(tiny_config(4, 1, 4, false), 5, 3);
  untied.weights() = tied.weights();
  untied.weights().lm_head = tied.weights().embedding;  // the same function as the tied model
  std::vector<double> gu;
  untied.loss_and_grad(tokens, targets, gu);
  auto v = tied.params();
  const auto fd = central_fd(v[0].data, v[0].size, [&] { return forward_loss(tied, tokens, targets); });
  const double e = rel_err(gu.data(), fd);  // untied dE lacks the head's part
  MESSAGE("embedding gradient without the head's half: rel error " << e);
  CHECK(e > 1e3 * kTol);
}

TEST_CASE("float model equals the double model on the same weights") {
  // Both compute in double inside from the same (float-representable) weights, so the loss is
  // the same number and each float gradient entry is the double one rounded once to float:
  // |g_f − g_d| ≤ 2⁻²⁴|g_d|, i.e. ≤ 6e-8 of the array's max. Tolerance 1e-7 relative to each
  // array's max; logits the same way (rounded once).
  const S4DLMConfig c = tiny_config(8, 2, 8, false);
  S4DLM<double> d(c, 9, 21);
  perturb(d.weights(), 2);
  S4DLM<float> f(c, 9, 99);
  f.weights() = cast_weights<float>(d.weights());
  d.weights() = cast_weights<double>(f.weights());
  const auto tokens = random_tokens(33, 9, 4);
  auto targets = random_tokens(33, 9, 5);
  targets[3] = -1;
  std::vector<double> gd;
  std::vector<float> gf;
  const double ld = d.loss_and_grad(tokens, targets, gd);
  const double lf = f.loss_and_grad(tokens, targets, gf);
  CHECK(std::abs(ld - lf) <= 1e-12 * std::abs(ld));
  REQUIRE(gd.size() == gf.size());
  std::size_t off = 0;
  double worst = 0;
  for (const auto& v : d.params()) {
    const std::vector<double> a(gd.begin() + std::ptrdiff_t(off),
                                gd.begin() + std::ptrdiff_t(off + v.size));
    const std::vector<float> b(gf.begin() + std::ptrdiff_t(off),
                               gf.begin() + std::ptrdiff_t(off + v.size));
    const double e = test::rel(b, a);
    CHECK_MESSAGE(e <= 1e-7, v.name << ": float vs double " << e);
    worst = std::max(worst, e);
    off += v.size;
  }
  Signals<double> Ld;
  Signals<float> Lf;
  d.logits(tokens, Ld);
  f.logits(tokens, Lf);
  CHECK(test::rel_err(Lf, Ld) <= 1e-7);
  MESSAGE("float vs double: worst gradient array " << worst << ", logits "
                                                  << test::rel_err(Lf, Ld));
}

TEST_CASE("stepper: the recurrence gives logits() rows, with a constant state") {
  // The recurrence s ← Ā s + B̄ u against the kernel K̄ (blocked powers) and the FFT convolution:
  // both in double, agreeing to the rounding of O(L) sums and the FFT (~1e-14 relative
  // measured); 1e-9 relative to the largest logit leaves a wide margin, and any wrong
  // discretization (Euler's B̄ = ΔB instead of ZOH's, say) is off by percents.
  for (bool tied : {true, false}) {
    CAPTURE(tied);
    const S4DLMConfig c = tiny_config(8, 2, 8, tied);
    S4DLM<double> m(c, 7, 31);
    perturb(m.weights(), 9);
    const auto tokens = random_tokens(60, 7, 6);
    Signals<double> ref;
    m.logits(tokens, ref);
    const double scale = ref.cwiseAbs().maxCoeff();
    auto st = m.stepper();
    const std::size_t bytes = st->state_bytes();
    // n_layers · d_model · Nh complex doubles.
    CHECK(bytes == std::size_t(2 * 8 * 4) * sizeof(std::complex<double>));
    double worst = 0;
    std::vector<double> row(7);
    for (int pass = 0; pass < 2; ++pass) {  // the second pass after reset(): the same numbers
      for (std::size_t t = 0; t < tokens.size(); ++t) {
        st->step(tokens[t], row.data());
        for (int v = 0; v < 7; ++v)
          worst = std::max(worst, std::abs(row[std::size_t(v)] - ref(Eigen::Index(t), v)) / scale);
        CHECK(st->state_bytes() == bytes);
      }
      st->reset();
      CHECK(st->state_bytes() == bytes);
    }
    MESSAGE("stepper vs logits(): max rel error " << worst);
    CHECK(worst <= 1e-9);
  }
  // The float model's stepper (double inside) too: rounded once to float.
  S4DLM<float> mf(tiny_config(8, 1, 8, true), 7, 2);
  perturb(mf.weights(), 3);
  const auto tokens = random_tokens(20, 7, 8);
  Signals<float> ref;
  mf.logits(tokens, ref);
  auto st = mf.stepper();
  std::vector<float> row(7);
  double worst = 0;
  for (std::size_t t = 0; t < tokens.size(); ++t) {
    st->step(tokens[t], row.data());
    for (int v = 0; v < 7; ++v)
      worst = std::max(worst, double(std::abs(row[std::size_t(v)] - ref(Eigen::Index(t), v))));
  }
  CHECK(worst <= 1e-6 * double(ref.cwiseAbs().maxCoeff()));
}

TEST_CASE("loss_and_grad from two threads at once equals serial calls, bit for bit") {
  // No shared mutable state: each call makes its own FFTW plan (under the planner mutex) and
  // its own buffers. Two threads run different sequences at the same time, several rounds.
  const S4DLMConfig c = tiny_config(16, 2, 16, true);
  S4DLM<float> m(c, 11, 41);
  const std::vector<int> ta = random_tokens(200, 11, 1), ya = random_tokens(200, 11, 2);
  const std::vector<int> tb = random_tokens(150, 11, 3), yb = random_tokens(150, 11, 4);
  std::vector<float> ga, gb;
  const double la = m.loss_and_grad(ta, ya, ga), lb = m.loss_and_grad(tb, yb, gb);
  for (int round = 0; round < 4; ++round) {
    std::vector<float> g1, g2;
    double l1 = 0, l2 = 0;
    std::thread t1([&] { l1 = m.loss_and_grad(ta, ya, g1); });
    std::thread t2([&] { l2 = m.loss_and_grad(tb, yb, g2); });
    t1.join();
    t2.join();
    CHECK(l1 == la);
    CHECK(l2 == lb);
    REQUIRE(g1.size() == ga.size());
    REQUIRE(g2.size() == gb.size());
    CHECK(std::memcmp(g1.data(), ga.data(), ga.size() * sizeof(float)) == 0);
    CHECK(std::memcmp(g2.data(), gb.data(), gb.size() * sizeof(float)) == 0);
  }
}

TEST_CASE("a few hundred Adam steps overfit one fixed batch") {
  // Two random sequences, next-token targets: nothing to generalize, everything to memorize.
  // Adam (lr 1e-2, β 0.9/0.999), 300 steps on the mean gradient of the two: the loss must fall
  // from about log(8) ≈ 2.1 by a factor ≥ 10 (a wrong gradient, or one in the wrong array
  // order, stalls or diverges).
  const int V = 8, L = 24;
  S4DLM<float> m(tiny_config(16, 2, 16, true), V, 7);
  std::vector<std::vector<int>> tok, tgt;
  for (int b = 0; b < 2; ++b) {
    auto s = random_tokens(L + 1, V, 50 + std::uint64_t(b));
    tok.emplace_back(s.begin(), s.end() - 1);
    tgt.emplace_back(s.begin() + 1, s.end());
  }
  auto views = m.params();
  const std::size_t n = m.num_params();
  std::vector<float> mom(n, 0.f), vel(n, 0.f), g, sum(n);
  auto batch_loss = [&](bool grad) {
    double l = 0;
    std::fill(sum.begin(), sum.end(), 0.f);
    for (std::size_t b = 0; b < tok.size(); ++b) {
      l += m.loss_and_grad(tok[b], tgt[b], g) / double(tok.size());
      if (grad)
        for (std::size_t i = 0; i < n; ++i) sum[i] += g[i] / float(tok.size());
    }
    return l;
  };
  const double l0 = batch_loss(false);
  const double lr = 1e-2, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  double l = l0;
  for (int step = 1; step <= 300; ++step) {
    l = batch_loss(true);
    const double c1 = 1 - std::pow(b1, step), c2 = 1 - std::pow(b2, step);
    std::size_t off = 0;
    for (auto& v : views)
      for (std::size_t i = 0; i < v.size; ++i, ++off) {
        mom[off] = float(b1 * mom[off] + (1 - b1) * sum[off]);
        vel[off] = float(b2 * vel[off] + (1 - b2) * double(sum[off]) * sum[off]);
        v.data[i] -= float(lr * (mom[off] / c1) / (std::sqrt(vel[off] / c2) + eps));
      }
  }
  const double lend = batch_loss(false);
  MESSAGE("overfitting: loss " << l0 << " -> " << lend << " after 300 Adam steps (last step "
                               << l << ")");
  CHECK(lend * 10 <= l0);
}

TEST_CASE("params(): names, order, sizes, decay hints; the views write through") {
  S4DLM<double> m(tiny_config(4, 2, 6, false), 5, 1);
  const auto v = m.params();
  const std::vector<std::string> layer{"norm_w", "log_neg_re", "lambda_im", "B_re", "B_im", "C_re",
                                       "C_im", "log_dt", "D", "out_proj", "out_b"};
  const std::vector<std::size_t> sizes{4, 3, 3, 3, 3, 12, 12, 4, 4, 16, 4};
  REQUIRE(v.size() == 1 + 2 * layer.size() + 2);
  CHECK(v[0].name == "embedding");
  CHECK(v[0].size == 20);
  CHECK(v[0].weight_decay);
  for (int l = 0; l < 2; ++l)
    for (std::size_t i = 0; i < layer.size(); ++i) {
      const auto& p = v[1 + std::size_t(l) * layer.size() + i];
      CHECK(p.name == "layers." + std::to_string(l) + "." + layer[i]);
      CHECK(p.size == sizes[i]);
      CHECK(p.weight_decay == (layer[i] == "out_proj"));
    }
  CHECK(v[v.size() - 2].name == "norm_f");
  CHECK(!v[v.size() - 2].weight_decay);
  CHECK(v.back().name == "lm_head");
  CHECK(v.back().weight_decay);
  CHECK(m.kind() == "s4d");
  CHECK(m.vocab() == 5);
  CHECK(m.describe() == "s4d: d_model 4, 2 layers, N 6 (3 complex modes), vocab 5, untied, "
                        "no gate, GELU");
  S4DLM<double> t(tiny_config(4, 2, 6, true), 5, 1);
  CHECK(t.params().back().name == "norm_f");
  // The initialization documented: S4D-Lin Λ, B̃ = 1, Δ in [dt_min, dt_max], norms 1.
  const auto& w = t.weights().layers[0];
  for (Eigen::Index n = 0; n < 3; ++n) {
    CHECK(std::abs(-std::exp(w.log_neg_re(n)) + 0.5) <= 1e-15);
    CHECK(std::abs(w.lambda_im(n) - M_PI * double(n)) <= 1e-14);
    CHECK(w.B_re(n) == 1.0);
    CHECK(w.B_im(n) == 0.0);
  }
  for (Eigen::Index h = 0; h < 4; ++h) {
    CHECK(std::exp(w.log_dt(h)) >= 1e-3 * (1 - 1e-12));
    CHECK(std::exp(w.log_dt(h)) <= 1e-1 * (1 + 1e-12));
  }
  // Writing through a view changes the model.
  const std::vector<int> tok{1, 2, 3};
  Signals<double> a, b;
  m.logits(tok, a);
  m.params()[10].data[0] += 0.5;  // layers.0.out_proj
  m.logits(tok, b);
  CHECK((a - b).cwiseAbs().maxCoeff() > 1e-6);
}

TEST_CASE("bad input: tokens, targets, sizes, config fields, weights") {
  S4DLM<double> m(tiny_config(4, 1, 4, true), 5, 1);
  std::vector<double> g;
  Signals<double> lg;
  CHECK_THROWS_WITH_AS(m.loss_and_grad({0, 1, 5}, {1, 2, 3}, g),
                       doctest::Contains("tokens[2] = 5 is outside [0, vocab = 5)"), Error);
  CHECK_THROWS_WITH_AS(m.logits({0, -1}, lg), doctest::Contains("tokens[1] = -1"), Error);
  CHECK_THROWS_WITH_AS(m.loss_and_grad({0, 1, 2}, {1, 5, 3}, g),
                       doctest::Contains("targets[1] = 5 is outside [-1, vocab = 5)"), Error);
  CHECK_THROWS_WITH_AS(m.loss_and_grad({0, 1, 2}, {1, 2}, g),
                       doctest::Contains("targets has 2 entries, expected 3"), Error);
  CHECK_THROWS_WITH_AS(m.loss_and_grad({0, 1}, {-1, -1}, g), doctest::Contains("every target"),
                       Error);
  CHECK_THROWS_WITH_AS(m.logits({}, lg), doctest::Contains("tokens is empty"), Error);
  auto st = m.stepper();
  std::vector<double> row(5);
  CHECK_THROWS_WITH_AS(st->step(7, row.data()), doctest::Contains("token 7"), Error);

  auto bad = [](auto edit) {
    S4DLMConfig c = tiny_config(4, 1, 4, true);
    edit(c);
    return error_of([&] { S4DLM<double>(c, 5, 1); });
  };
  CHECK(bad([](S4DLMConfig& c) { c.d_model = 0; }).find("d_model = 0") != std::string::npos);
  CHECK(bad([](S4DLMConfig& c) { c.n_layers = 0; }).find("n_layers = 0") != std::string::npos);
  CHECK(bad([](S4DLMConfig& c) { c.d_state = 5; }).find("d_state = 5 must be even") !=
        std::string::npos);
  CHECK(bad([](S4DLMConfig& c) { c.d_state = 0; }).find("d_state = 0") != std::string::npos);
  CHECK(bad([](S4DLMConfig& c) { c.dt_min = 0; }).find("dt_min = 0") != std::string::npos);
  CHECK(bad([](S4DLMConfig& c) { c.dt_max = 1e-4; }).find("dt_max = 0.0001") !=
        std::string::npos);
  CHECK(bad([](S4DLMConfig& c) { c.rms_eps = -1; }).find("rms_eps = -1") != std::string::npos);
  CHECK_THROWS_WITH_AS(S4DLM<float>(tiny_config(4, 1, 4, true), 1, 1),
                       doctest::Contains("vocab = 1"), Error);

  // Weights edited into a bad state: named by their params() name.
  S4DLM<double> w(tiny_config(4, 1, 4, true), 5, 1);
  w.weights().layers[0].C_im(1, 0) = NAN;
  CHECK_THROWS_WITH_AS(w.loss_and_grad({0, 1}, {1, 2}, g),
                       doctest::Contains("layers.0.C_im(1, 0) = nan is not finite"), Error);
  w.weights().layers[0].C_im(1, 0) = 0;
  w.weights().layers[0].out_proj.resize(3, 4);
  CHECK_THROWS_WITH_AS(w.logits({0, 1}, lg),
                       doctest::Contains("layers.0.out_proj is 3x4, expected 4x4"), Error);
}

// ---------------------------------------------------------------------------------------------
// The batched pass (batch_loss_and_grad): groups of 8 sequences as one array, the convolution
// written as sums over the lag, the kernel's backward once per batch. It must equal the sum of
// the per-sequence path (FFT convolution, one kernel backward per sequence), which the finite
// differences above check; and it must not depend on the number of threads.
namespace {

struct Batch {
  std::vector<std::vector<int>> tokens, targets;
};

Batch random_batch(int B, int L, int vocab, std::uint64_t seed) {
  Batch b;
  for (int i = 0; i < B; ++i) {
    b.tokens.push_back(random_tokens(L, vocab, seed + 2 * std::uint64_t(i)));
    auto y = random_tokens(L, vocab, seed + 2 * std::uint64_t(i) + 1);
    for (std::size_t t = 0; t < y.size(); t += 3) y[t] = -1;  // some positions ignored
    b.targets.push_back(std::move(y));
  }
  return b;
}

// Σ_b loss_and_grad(sequence b), summed in sequence order, and the losses.
template <class T>
std::vector<double> per_sequence_sum(const S4DLM<T>& m, const Batch& b, std::vector<T>& sum) {
  std::vector<double> losses;
  std::vector<T> g;
  for (std::size_t i = 0; i < b.tokens.size(); ++i) {
    losses.push_back(m.loss_and_grad(b.tokens[i], b.targets[i], g));
    if (i == 0) sum = g;
    else
      for (std::size_t k = 0; k < g.size(); ++k) sum[k] += g[k];
  }
  return losses;
}

// Eigen's own GEMM threads stay at 1 inside (as the trainer keeps them): the bits of a product
// may depend on how Eigen splits it.
struct OneEigenThread {
  int saved = Eigen::nbThreads();
  OneEigenThread() { Eigen::setNbThreads(1); }
  ~OneEigenThread() { Eigen::setNbThreads(saved); }
};

}  // namespace

TEST_CASE("batch_loss_and_grad equals the sum of loss_and_grad over the sequences") {
  OneEigenThread one;
  // 11 sequences: one full group of 8 and a short one of 3.
  for (bool tied : {true, false}) {
    CAPTURE(tied);
    const S4DLMConfig c = tiny_config(24, 2, 8, tied);  // H = 24: a channel block of 24 < 64
    S4DLM<double> m(c, 9, 5);
    perturb(m.weights(), 17);
    const Batch b = random_batch(11, 21, 9, 100);
    std::vector<double> ref, got, losses;
    const std::vector<double> ref_losses = per_sequence_sum(m, b, ref);
    m.batch_loss_and_grad(b.tokens, b.targets, losses, got, 1);
    REQUIRE(got.size() == ref.size());
    REQUIRE(losses.size() == ref_losses.size());
    for (std::size_t i = 0; i < losses.size(); ++i)
      CHECK(std::abs(losses[i] - ref_losses[i]) <= 1e-13 * std::abs(ref_losses[i]));
    // Two summation orders and FFT against sums: rounding only (measured ~1e-15).
    const double e = rel_err(got.data(), ref);
    MESSAGE("double, tied " << tied << ": batched vs per sequence, max rel error " << e
                            << " (tolerance 1e-12)");
    CHECK(e <= 1e-12);
  }
  // Float computes the batched pass in float (the per-sequence path in double inside): float
  // rounding, measured 5.8e-7 relative to the largest entry; tolerance 1e-5.
  const S4DLMConfig c = tiny_config(64, 2, 16, true);  // H = 64: one full channel block
  S4DLM<float> mf(c, 10, 6);
  perturb(mf.weights(), 18);
  const Batch b = random_batch(16, 36, 10, 200);
  std::vector<float> ref, got;
  std::vector<double> losses;
  const std::vector<double> ref_losses = per_sequence_sum(mf, b, ref);
  mf.batch_loss_and_grad(b.tokens, b.targets, losses, got, 1);
  for (std::size_t i = 0; i < losses.size(); ++i)
    CHECK(std::abs(losses[i] - ref_losses[i]) <= 1e-5 * std::abs(ref_losses[i]));
  const std::vector<double> gd(got.begin(), got.end());
  const double e = rel_err(gd.data(), std::vector<double>(ref.begin(), ref.end()));
  MESSAGE("float: batched vs per sequence, max rel error " << e << " (tolerance 1e-5)");
  CHECK(e <= 1e-5);
}

TEST_CASE("batch_loss_and_grad: the same bits on 1, 2 and 3 threads, and on a second call") {
  OneEigenThread one;
  const S4DLMConfig c = tiny_config(64, 2, 16, true);
  S4DLM<float> m(c, 10, 7);
  perturb(m.weights(), 19);
  const Batch b = random_batch(32, 36, 10, 300);
  std::vector<float> g1, g;
  std::vector<double> l1, l;
  m.batch_loss_and_grad(b.tokens, b.targets, l1, g1, 1);
  for (int threads : {2, 3, 1}) {
    CAPTURE(threads);
    m.batch_loss_and_grad(b.tokens, b.targets, l, g, threads);
    REQUIRE(g.size() == g1.size());
    CHECK(l == l1);
    CHECK(std::memcmp(g.data(), g1.data(), g1.size() * sizeof(float)) == 0);
  }
}

TEST_CASE("batch_loss_and_grad: long or unequal sequences take the per-sequence path") {
  OneEigenThread one;
  const S4DLMConfig c = tiny_config(16, 1, 8, true);
  S4DLM<double> m(c, 9, 8);
  perturb(m.weights(), 20);
  // L = 129 > 128, then two lengths in one batch: exactly the per-sequence sum, bit for bit.
  for (const Batch& b : {random_batch(3, 129, 9, 400), [] {
                           Batch x = random_batch(2, 20, 9, 500);
                           const Batch y = random_batch(1, 30, 9, 600);
                           x.tokens.push_back(y.tokens[0]);
                           x.targets.push_back(y.targets[0]);
                           return x;
                         }()}) {
    std::vector<double> ref, got, losses;
    const std::vector<double> ref_losses = per_sequence_sum(m, b, ref);
    m.batch_loss_and_grad(b.tokens, b.targets, losses, got, 2);
    CHECK(losses == ref_losses);
    CHECK(got == ref);
  }
}

TEST_CASE("batch_loss_and_grad: bad batches are errors naming what is wrong") {
  const S4DLM<float> m(tiny_config(8, 1, 4, true), 6, 9);
  std::vector<double> losses;
  std::vector<float> g;
  const std::vector<std::vector<int>> none;
  CHECK(error_of([&] { m.batch_loss_and_grad(none, none, losses, g); })
            .find("the batch is empty") != std::string::npos);
  const std::vector<std::vector<int>> two{{1, 2, 3}, {1, 2, 3}}, one{{1, 2, 3}};
  CHECK(error_of([&] { m.batch_loss_and_grad(two, one, losses, g); })
            .find("2 token sequences and 1 target sequences") != std::string::npos);
  const std::vector<std::vector<int>> bad{{1, 2, 3}, {1, 6, 3}};
  CHECK(error_of([&] { m.batch_loss_and_grad(bad, two, losses, g); })
            .find("tokens[1] = 6 is outside [0, vocab = 6)") != std::string::npos);
}
