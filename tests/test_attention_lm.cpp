// Stage 8b: the attention language model (docs/MATH.md, T1, T3). The backward of causal softmax
// attention and every parameter's gradient of the LM, tied and untied, against central finite
// differences of the forward (an independent truth: the differences never call a backward);
// the forward against a reference written here from attention.hpp's causal_attention (the
// library's blocked attention is not used by it); float against double; the stepper (KV cache)
// against logits(); concurrent loss_and_grad against serial; an overfitting run; bad input.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <thread>

#include "helpers.hpp"
#include "ssm/attention.hpp"
#include "ssm/attention_lm.hpp"
#include "ssm/mamba.hpp"  // rms_norm

using namespace ssm;

namespace {

using test::error_of;
using S = Signals<double>;

// Tolerance of every gradient against finite differences, on the whole array:
// max |g − fd| / max |fd| ≤ 1e-6.
constexpr double kTol = 1e-6;

// Central differences of f() with respect to each of the n numbers at x (restored after).
// Step h = 1e-5·max(1, |x_i|) ≈ ε^{1/3} (ε = 2.2e-16), the step that balances the two errors of
// a central difference: truncation h²/6·|f'''| ~ 2e-11 (f''' = O(1): inputs and weights are
// O(1), and a softmax's derivatives are bounded by O(1) multiples of its inputs' scale), rounding
// ~ε·|f|/h ~ 2e-16·10/1e-5 = 2e-10 for |f| ≲ 10 (the attention test's ℓ = Σ R∘y is ≲ 10, the
// LM's loss ≈ 2). Relative to an array's max |fd| — ≥ 1e-2 in these tests (MESSAGE prints each)
// — that is ≲ 2e-8, ≥ 50× below the 1e-6 tolerance, which a wrong term (an O(1) error in one
// contribution) exceeds by orders; the "resolution" checks below show that an error of 1e-5 in
// one entry is caught.
// (The differences themselves: test::central_fd in helpers.hpp.)
using test::central_fd;

using test::rel_err;
using test::max_abs;

// Compares one gradient array with its finite differences: checks ≤ kTol, returns the error.
double check_fd(const std::string& name, const double* grad, const std::vector<double>& fd) {
  const double e = rel_err(grad, fd);
  MESSAGE(name << ": max rel error vs FD " << e << " (max |fd| " << max_abs(fd) << ")");
  CHECK_MESSAGE(e <= kTol, name << ": " << e << " > " << kTol);
  return e;
}

// (1 + 1e-5)× on the largest entry of a correct gradient must fail the FD check: the check's
// noise is below the smallest error it has to catch.
void check_resolution(const std::string& name, const double* grad, const std::vector<double>& fd) {
  std::vector<double> bad(grad, grad + fd.size());
  const auto j = std::size_t(
      std::max_element(bad.begin(), bad.end(),
                       [](double a, double b) { return std::abs(a) < std::abs(b); }) -
      bad.begin());
  bad[j] *= 1 + 1e-5;
  CHECK_MESSAGE(rel_err(bad.data(), fd) > kTol, name << ": a 1e-5 error goes unseen");
}

S randn(Eigen::Index r, Eigen::Index c, std::mt19937_64& rng, double sd = 1.0) {
  std::normal_distribution<double> nd(0.0, sd);
  S m(r, c);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = nd(rng);
  return m;
}

double dot(const S& a, const S& b) { return (a.array() * b.array()).sum(); }

AttentionLMConfig cfg_of(int d_model, int heads, int n_layers, bool tied) {
  AttentionLMConfig c;
  c.d_model = d_model;
  c.heads = heads;
  c.n_layers = n_layers;
  c.tied = tied;
  return c;
}

// Every array gets noise, so that no term can hide behind a one (norms) or a near-uniform
// softmax: projections +N(0, 0.3²) (scores q·k/√d_k of O(1), attention far from uniform).
template <class T>
void perturb(AttentionLM<T>& lm, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd;
  for (auto& p : lm.params()) {
    const double sd = p.name.find("norm") != std::string::npos ? 0.3 : 0.3;
    for (std::size_t i = 0; i < p.size; ++i) p.data[i] += static_cast<T>(sd * nd(rng));
  }
}

// The forward written out here from the formulas (T1, T3), using attention.hpp's
// causal_attention (full L×L per head) and a positional encoding computed independently.
S reference_logits(const AttentionLM<double>& lm, const std::vector<int>& tokens) {
  const auto& w = lm.weights();
  const auto& c = lm.config();
  const int d = c.d_model;
  const auto L = Eigen::Index(tokens.size());
  S x(L, d);
  for (Eigen::Index t = 0; t < L; ++t)
    for (int j = 0; j < d; ++j) {
      const int i = j / 2;
      const double a = double(t) / std::pow(10000.0, 2.0 * i / d);
      x(t, j) = std::sqrt(double(d)) * w.embedding(tokens[std::size_t(t)], j) +
                (j % 2 == 0 ? std::sin(a) : std::cos(a));
    }
  for (const auto& ly : w.layers) {
    S h, y;
    rms_norm(x, ly.norm_w, c.rms_eps, h);
    causal_attention(S(h * ly.wq.transpose()), S(h * ly.wk.transpose()), S(h * ly.wv.transpose()),
                     c.heads, y);
    x += y * ly.wo.transpose();
  }
  S hf;
  rms_norm(x, w.norm_f, c.rms_eps, hf);
  return hf * (c.tied ? w.embedding : w.lm_head).transpose();
}

template <class T>
double loss_of(const AttentionLM<T>& lm, const std::vector<int>& tokens,
               const std::vector<int>& targets) {
  Signals<T> lg;
  lm.logits(tokens, lg);
  return softmax_cross_entropy(lg, targets);
}

// The tiny LM of the FD tests: vocab 5, d_model 8, 2 heads, 2 layers.
AttentionLM<double> tiny_lm(bool tied, std::uint64_t seed) {
  AttentionLM<double> lm(cfg_of(8, 2, 2, tied), 5, seed);
  perturb(lm, seed + 1);
  return lm;
}
// 7 tokens with repeats (token 3 three times: the embedding's scatter-add sums them), two
// targets ignored.
const std::vector<int> kTokens = {3, 1, 3, 0, 4, 3, 2};
const std::vector<int> kTargets = {1, -1, 0, 4, 3, -1, 2};

// Every parameter's gradient (flat, params() order) against FD of the loss; returns the worst
// error; the FD arrays in *fds.
double lm_vs_fd(AttentionLM<double> lm, const std::vector<double>& grad,
                std::vector<std::vector<double>>* fds = nullptr) {
  auto pv = lm.params();
  auto f = [&] { return loss_of(lm, kTokens, kTargets); };
  double worst = 0;
  std::size_t off = 0;
  for (auto& p : pv) {
    auto fd = central_fd(p.data, p.size, f);
    REQUIRE(off + p.size <= grad.size());
    worst = std::max(worst, check_fd(p.name, grad.data() + off, fd));
    check_resolution(p.name, grad.data() + off, fd);
    off += p.size;
    if (fds) fds->push_back(std::move(fd));
  }
  CHECK(off == grad.size());
  return worst;
}

std::vector<int> random_tokens(std::size_t L, int vocab, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> u(0, vocab - 1);
  std::vector<int> t(L);
  for (auto& x : t) x = u(rng);
  return t;
}
std::vector<int> next_token_targets(const std::vector<int>& tokens) {
  std::vector<int> y(tokens.size(), -1);
  for (std::size_t t = 0; t + 1 < tokens.size(); ++t) y[t] = tokens[t + 1];
  return y;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Causal softmax attention's backward
// ---------------------------------------------------------------------------------------------

TEST_CASE("causal_attention_backward matches finite differences of causal_attention") {
  // ℓ = Σ R ∘ y for a fixed random R: ∂ℓ/∂y = R. y from attention.hpp's causal_attention (the
  // full L×L form; the backward is blocked by 64 query rows): L = 70 crosses a block boundary,
  // d_v ≠ d_k, L = 1 has a single key. q, k ~ N(0, 1.5²): scores of O(3), softmax far from
  // uniform.
  struct Case {
    int L, heads, dk, dv;
  };
  double worst = 0;
  for (const Case c : {Case{9, 2, 3, 4}, Case{70, 2, 2, 3}, Case{1, 1, 2, 2}, Case{13, 3, 1, 2}}) {
    CAPTURE(c.L);
    CAPTURE(c.heads);
    std::mt19937_64 rng(100 + std::uint64_t(c.L));
    S q = randn(c.L, c.heads * c.dk, rng, 1.5), k = randn(c.L, c.heads * c.dk, rng, 1.5),
      v = randn(c.L, c.heads * c.dv, rng), R = randn(c.L, c.heads * c.dv, rng);
    S dq, dk, dv;
    causal_attention_backward(q, k, v, c.heads, R, dq, dk, dv);
    auto f = [&] {
      S y;
      causal_attention(q, k, v, c.heads, y);
      return dot(R, y);
    };
    const auto fq = central_fd(q.data(), std::size_t(q.size()), f);
    const auto fk = central_fd(k.data(), std::size_t(k.size()), f);
    const auto fv = central_fd(v.data(), std::size_t(v.size()), f);
    if (c.L == 1) {
      // One key: y = v exactly, so dq = dk = 0 (the FD is rounding noise around 0).
      CHECK(dq.cwiseAbs().maxCoeff() == 0.0);
      CHECK(dk.cwiseAbs().maxCoeff() == 0.0);
      CHECK(max_abs(fq) <= 1e-9);
    } else {
      worst = std::max(worst, check_fd("dq", dq.data(), fq));
      worst = std::max(worst, check_fd("dk", dk.data(), fk));
      check_resolution("dq", dq.data(), fq);
      check_resolution("dk", dk.data(), fk);
    }
    worst = std::max(worst, check_fd("dv", dv.data(), fv));
    check_resolution("dv", dv.data(), fv);
  }
  MESSAGE("causal_attention_backward: worst max rel error vs FD " << worst);
}

// ---------------------------------------------------------------------------------------------
// The language model
// ---------------------------------------------------------------------------------------------

TEST_CASE("logits equal the forward written from the formulas (causal_attention, sinusoids)") {
  // Same double arithmetic in another order (full vs blocked attention, the positional
  // encoding's powers): 1e-12 of the max. L = 70 crosses the attention's 64-row blocks.
  for (bool tied : {true, false}) {
    AttentionLM<double> lm(cfg_of(12, 3, 2, tied), 9, 7);
    perturb(lm, 8);
    const auto tok = random_tokens(70, 9, 9);
    S lg;
    lm.logits(tok, lg);
    CHECK(test::rel_err(lg, reference_logits(lm, tok)) <= 1e-12);
    lm.logits(tok, lg, 2);  // heads over 2 threads: the same arithmetic per head
    CHECK(test::rel_err(lg, reference_logits(lm, tok)) <= 1e-12);
  }
}

TEST_CASE("LM loss_and_grad: every parameter matches finite differences, head untied") {
  auto lm = tiny_lm(false, 31);
  std::vector<double> g;
  const double l = lm.loss_and_grad(kTokens, kTargets, g);
  CHECK(std::abs(l - loss_of(lm, kTokens, kTargets)) <= 1e-13 * std::abs(l));
  CHECK(g.size() == lm.num_params());
  MESSAGE("LM untied: worst max rel error vs FD " << lm_vs_fd(lm, g));
}

TEST_CASE("LM loss_and_grad: tied head — FD, and dE = untied dE + dHead with head = E") {
  auto lm = tiny_lm(true, 41);
  std::vector<double> g;
  lm.loss_and_grad(kTokens, kTargets, g);
  std::vector<std::vector<double>> fds;
  MESSAGE("LM tied: worst max rel error vs FD " << lm_vs_fd(lm, g, &fds));

  // The same model untied with lm_head = a copy of the embedding has the same loss; the tied
  // table's gradient is the sum of the untied table's and head's (both of its uses).
  AttentionLM<double> un(cfg_of(8, 2, 2, false), 5, 41);
  un.weights() = lm.weights();
  un.weights().lm_head = un.weights().embedding;
  std::vector<double> gu;
  const double lu = un.loss_and_grad(kTokens, kTargets, gu);
  CHECK(std::abs(lu - loss_of(lm, kTokens, kTargets)) <= 1e-13);
  const std::size_t nE = 5 * 8;
  std::vector<double> sum(nE);
  for (std::size_t i = 0; i < nE; ++i) sum[i] = gu[i] + gu[gu.size() - nE + i];
  CHECK(rel_err(sum.data(), std::vector<double>(g.begin(), g.begin() + nE)) <= 1e-13);
  // A tied backward that forgot the head's half (only the scatter-add) fails the FD check by far.
  CHECK(rel_err(gu.data(), fds[0]) > 1e-2);
}

TEST_CASE("params(): names, order, sizes and weight-decay hints") {
  for (bool tied : {true, false}) {
    AttentionLM<double> lm(cfg_of(8, 2, 3, tied), 5, 1);
    const auto pv = lm.params();
    std::vector<std::string> names = {"embedding"};
    for (int l = 0; l < 3; ++l)
      for (const char* s : {"norm_w", "wq", "wk", "wv", "wo"})
        names.push_back("layers." + std::to_string(l) + "." + s);
    names.push_back("norm_f");
    if (!tied) names.push_back("lm_head");
    REQUIRE(pv.size() == names.size());
    for (std::size_t i = 0; i < pv.size(); ++i) {
      CHECK(pv[i].name == names[i]);
      const bool norm = pv[i].name.find("norm") != std::string::npos;
      CHECK(pv[i].weight_decay == !norm);
      CHECK(pv[i].size == (norm ? 8u : pv[i].name == "embedding" || pv[i].name == "lm_head"
                                           ? 40u
                                           : 64u));
    }
    CHECK(lm.num_params() == 40 + 3 * (8 + 4 * 64) + 8 + (tied ? 0 : 40));
    CHECK(lm.kind() == "attention");
    CHECK(lm.describe() == std::string("attention: d_model 8, 3 layers, 2 heads (d_k 4), vocab 5, ") +
                               (tied ? "tied" : "untied") + ", sinusoidal positions, no MLP");
  }
  // wo's init is ±1/√d / √n_layers, the others ±1/√d (the bounds are reached to within a few %).
  AttentionLM<double> lm(cfg_of(64, 4, 4, true), 16, 3);
  const auto& w = lm.weights().layers[1];
  CHECK(w.wq.cwiseAbs().maxCoeff() <= 0.125);
  CHECK(w.wq.cwiseAbs().maxCoeff() >= 0.12);
  CHECK(w.wo.cwiseAbs().maxCoeff() <= 0.0625);
  CHECK(w.wo.cwiseAbs().maxCoeff() >= 0.06);
}

TEST_CASE("float gradients equal double gradients on the same weights, to float rounding") {
  // d_model 32, 4 heads, 2 layers, vocab 16, L 128 (two attention blocks), untied; the float
  // model's weights are the double model's rounded (so input rounding is out). Float rounding
  // ε_f = 6e-8 accumulates through sums of ≤ 128 terms (GEMMs, softmax rows) and the ~15 steps
  // of the backward chain, as a random walk: ~1e-6 of each array's max (measured ≤ 1.3e-6,
  // the loss ~1e-8 relative); 2e-5 leaves > 10× margin, and a wrong term is O(1).
  AttentionLM<double> lmd(cfg_of(32, 4, 2, false), 16, 61);
  perturb(lmd, 62);
  lmd.weights() = cast_weights<double>(cast_weights<float>(lmd.weights()));
  AttentionLM<float> lmf(cfg_of(32, 4, 2, false), 16, 61);
  lmf.weights() = cast_weights<float>(lmd.weights());
  const auto tokens = random_tokens(128, 16, 63);
  const auto targets = next_token_targets(tokens);
  std::vector<double> gd;
  std::vector<float> gf;
  const double ld = lmd.loss_and_grad(tokens, targets, gd);
  const double lf = lmf.loss_and_grad(tokens, targets, gf);
  CHECK(std::abs(lf - ld) <= 1e-6 * ld);
  REQUIRE(gf.size() == gd.size());
  double worst = 0;
  std::size_t off = 0;
  for (const auto& p : lmd.params()) {
    const std::vector<double> a(gf.begin() + std::ptrdiff_t(off),
                                gf.begin() + std::ptrdiff_t(off + p.size));
    const double e = rel_err(
        a.data(), std::vector<double>(gd.begin() + std::ptrdiff_t(off),
                                      gd.begin() + std::ptrdiff_t(off + p.size)));
    CHECK_MESSAGE(e <= 2e-5, p.name << ": " << e);
    worst = std::max(worst, e);
    off += p.size;
  }
  MESSAGE("float vs double: loss rel error " << std::abs(lf - ld) / ld
                                             << ", worst gradient max rel error " << worst);
}

TEST_CASE("stepper: step t's logits equal row t of logits(), and the KV cache grows") {
  // Double; the same arithmetic per token (one query against the cached keys) as the blocked
  // prefill, in another order: ≤ 1e-9 of the max (measured ~1e-15). L = 80 crosses the
  // prefill's 64-row blocks.
  for (bool tied : {true, false}) {
    AttentionLM<double> lm(cfg_of(16, 4, 2, tied), 11, 71);
    perturb(lm, 72);
    const auto tok = random_tokens(80, 11, 73);
    S lg, st(80, 11);
    lm.logits(tok, lg);
    auto sp = lm.stepper();
    CHECK(sp->state_bytes() == 0);
    std::size_t prev = 0, after1 = 0;
    for (std::size_t t = 0; t < tok.size(); ++t) {
      sp->step(tok[t], &st(Eigen::Index(t), 0));
      const std::size_t b = sp->state_bytes();
      CHECK(b >= prev);
      // At least keys and values of t + 1 tokens in each of the 2 layers.
      CHECK(b >= 2 * 2 * (t + 1) * 16 * sizeof(double));
      if (t == 0) after1 = b;
      prev = b;
    }
    CHECK(prev > after1);
    const double e = test::rel_err(st, lg);
    MESSAGE("stepper vs logits (" << std::string(tied ? "tied" : "untied") << "): " << e);
    CHECK(e <= 1e-9);
    // reset(): the empty context again, bit for bit.
    sp->reset();
    CHECK(sp->state_bytes() == 0);
    Eigen::Matrix<double, 1, Eigen::Dynamic> r(11);
    for (std::size_t t = 0; t < 5; ++t) sp->step(tok[t], r.data());
    CHECK((r.array() == st.row(4).array()).all());
  }
}

TEST_CASE("loss_and_grad from 2 threads on one const model equals serial, bit for bit") {
  AttentionLM<float> m(cfg_of(32, 4, 2, true), 16, 81);
  const AttentionLM<float>& lm = m;
  const auto t0 = random_tokens(128, 16, 82), t1 = random_tokens(128, 16, 83);
  const auto y0 = next_token_targets(t0), y1 = next_token_targets(t1);
  std::vector<float> s0, s1;
  const double l0 = lm.loss_and_grad(t0, y0, s0), l1 = lm.loss_and_grad(t1, y1, s1);
  std::vector<float> c0, c1;
  double cl0 = 0, cl1 = 0;
  bool same0 = true, same1 = true;
  // Several rounds each, so the two threads' calls overlap.
  std::thread a([&] {
    for (int r = 0; r < 4; ++r) {
      cl0 = lm.loss_and_grad(t0, y0, c0);
      same0 = same0 && cl0 == l0 && c0.size() == s0.size() &&
              std::memcmp(c0.data(), s0.data(), s0.size() * sizeof(float)) == 0;
    }
  });
  std::thread b([&] {
    for (int r = 0; r < 4; ++r) {
      cl1 = lm.loss_and_grad(t1, y1, c1);
      same1 = same1 && cl1 == l1 && c1.size() == s1.size() &&
              std::memcmp(c1.data(), s1.data(), s1.size() * sizeof(float)) == 0;
    }
  });
  a.join();
  b.join();
  CHECK(same0);
  CHECK(same1);
  CHECK(s0 != s1);  // two different problems (the comparison could tell them apart)
}

TEST_CASE("overfitting: Adam on one fixed tiny batch drives the loss down") {
  // 4 random sequences of 16 tokens over vocab 8, next-token targets: memorizable only by
  // using positions and context. Adam (β 0.9, 0.999, ε 1e-8, lr 5e-3, no decay, no clipping) on
  // the mean gradient, 300 steps: the loss falls from 3.3 (above ln 8 = 2.08: the tied head
  // first predicts the current token again) to 0.03, smoothly (measured; lr 1e-2 gets as low
  // but spikes back up without clipping). 0.15 leaves 5× margin; a wrong gradient (a sign, a
  // missing term) stalls far above, a pure unigram fit cannot go below ≈ 1.9.
  AttentionLM<double> lm(cfg_of(16, 2, 2, true), 8, 91);
  std::vector<std::vector<int>> toks, tgts;
  for (int b = 0; b < 4; ++b) {
    toks.push_back(random_tokens(16, 8, 92 + std::uint64_t(b)));
    tgts.push_back(next_token_targets(toks.back()));
  }
  auto pv = lm.params();
  const std::size_t n = lm.num_params();
  std::vector<double> m(n, 0.0), v(n, 0.0), g, mean(n);
  double first = 0, last = 0;
  const double lr = 5e-3, b1 = 0.9, b2 = 0.999;
  for (int step = 1; step <= 300; ++step) {
    std::fill(mean.begin(), mean.end(), 0.0);
    double loss = 0;
    for (std::size_t b = 0; b < toks.size(); ++b) {
      loss += lm.loss_and_grad(toks[b], tgts[b], g) / double(toks.size());
      for (std::size_t i = 0; i < n; ++i) mean[i] += g[i] / double(toks.size());
    }
    if (step == 1) first = loss;
    last = loss;
    std::size_t i = 0;
    for (auto& p : pv)
      for (std::size_t j = 0; j < p.size; ++j, ++i) {
        m[i] = b1 * m[i] + (1 - b1) * mean[i];
        v[i] = b2 * v[i] + (1 - b2) * mean[i] * mean[i];
        const double mh = m[i] / (1 - std::pow(b1, step)), vh = v[i] / (1 - std::pow(b2, step));
        p.data[j] -= lr * mh / (std::sqrt(vh) + 1e-8);
      }
  }
  MESSAGE("overfitting: loss " << first << " -> " << last << " after 300 Adam steps");
  CHECK(first > 1.5);
  CHECK(last < 0.15);
}

TEST_CASE("bad input throws an Error naming the argument") {
  auto has = [](const std::string& msg, const std::string& part) {
    CAPTURE(msg);
    CHECK(msg.find(part) != std::string::npos);
  };
  auto lm = tiny_lm(false, 101);
  std::vector<double> g;
  auto lg = [&](const std::vector<int>& tok, const std::vector<int>& tgt) {
    return error_of([&] { lm.loss_and_grad(tok, tgt, g); });
  };
  CHECK(lg(kTokens, kTargets).empty());
  has(lg({}, {}), "attention LM: tokens is empty");
  has(lg({1, 5, 2}, {1, 2, 3}), "attention LM: tokens[1] = 5 is outside [0, vocab = 5)");
  has(lg({1, -1, 2}, {1, 2, 3}), "tokens[1] = -1 is outside [0, vocab = 5)");
  has(lg({1, 2, 3}, {1, 2}), "attention LM: targets has 2 entries, expected 3 (one per token)");
  has(lg({1, 2, 3}, {1, 5, 2}), "attention LM: targets[1] = 5 is outside [-1, vocab = 5)");
  has(lg({1, 2, 3}, {1, -2, 2}), "targets[1] = -2 is outside [-1, vocab = 5)");
  has(lg({1, 2, 3}, {-1, -1, -1}), "attention LM: every target is -1 (ignored)");
  S out;
  has(error_of([&] { lm.logits({0, 8}, out); }), "tokens[1] = 8");
  auto sp = lm.stepper();
  double buf[5];
  has(error_of([&] { sp->step(5, buf); }), "attention LM: stepper: token 5 is outside [0, vocab = 5)");

  // The weights, edited to a wrong shape or a non-finite value.
  auto lm2 = lm;
  lm2.weights().layers[1].wk(0, 1) = std::nan("");
  has(error_of([&] { lm2.logits(kTokens, out); }), "attention LM: layers.1.wk(0, 1) = nan is not finite");
  lm2 = lm;
  lm2.weights().lm_head.resize(4, 8);
  has(error_of([&] { lm2.loss_and_grad(kTokens, kTargets, g); }),
      "attention LM: lm_head is 4x8, expected 5x8 (vocab, d_model)");
  lm2 = lm;
  lm2.weights().layers[0].norm_w.resize(7);
  has(error_of([&] { lm2.logits(kTokens, out); }),
      "attention LM: layers.0.norm_w has 7 entries, expected 8 (d_model)");
  lm2 = lm;
  lm2.weights().layers.pop_back();
  has(error_of([&] { lm2.logits(kTokens, out); }),
      "attention LM: weights have 1 layers, expected n_layers = 2");

  // The configuration.
  auto ctor = [](AttentionLMConfig c, int vocab) {
    return error_of([&] { AttentionLM<float>(c, vocab, 1); });
  };
  has(ctor(cfg_of(8, 3, 2, true), 5), "attention LM: heads = 3 must be >= 1 and divide d_model = 8");
  has(ctor(cfg_of(8, 0, 2, true), 5), "heads = 0");
  has(ctor(cfg_of(0, 1, 2, true), 5), "attention LM: d_model = 0 is outside [1, 8192]");
  has(ctor(cfg_of(8, 2, 0, true), 5), "attention LM: n_layers = 0 is outside [1, 64]");
  AttentionLMConfig c = cfg_of(8, 2, 2, true);
  c.rms_eps = -1;
  has(ctor(c, 5), "attention LM: rms_eps = -1");
  has(ctor(cfg_of(8, 2, 2, true), 1), "attention LM: vocab = 1 is outside [2, 1048576]");
  has(error_of([&] { validate(cfg_of(12, 5, 1, true)); }), "heads = 5");

  // causal_attention_backward's shapes.
  std::mt19937_64 rng(102);
  const S q = randn(6, 4, rng), k = randn(6, 4, rng), v = randn(6, 6, rng), dy = randn(6, 6, rng);
  S dq, dk, dv;
  CHECK(error_of([&] { causal_attention_backward(q, k, v, 2, dy, dq, dk, dv); }).empty());
  has(error_of([&] { causal_attention_backward(q, k, v, 4, dy, dq, dk, dv); }),
      "causal_attention_backward: heads = 4 does not divide the widths of q (4) and v (6)");
  has(error_of([&] { causal_attention_backward(q, k, v, 0, dy, dq, dk, dv); }),
      "causal_attention_backward: heads = 0, expected >= 1");
  has(error_of([&] { causal_attention_backward(q, S(k.topRows(5)), v, 2, dy, dq, dk, dv); }),
      "causal_attention_backward: q, k, v have 6, 5, 6 tokens, expected the same number");
  has(error_of([&] { causal_attention_backward(q, S(k.leftCols(2)), v, 2, dy, dq, dk, dv); }),
      "q has 4 columns and k 2");
  has(error_of([&] { causal_attention_backward(q, k, v, 2, S(dy.topRows(5)), dq, dk, dv); }),
      "causal_attention_backward: dy is 5x6, expected v's (L, heads·d_v) = 6x6");
}
