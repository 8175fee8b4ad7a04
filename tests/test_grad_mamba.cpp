// Stage 8a: the backward pass of the Mamba block and of a small Mamba language model
// (docs/MATH.md, G14–G18). Every gradient — each piece (RMSNorm, linear, causal conv, SiLU), every
// weight of the block and its input, every parameter of the LM with the head tied and untied —
// against central finite differences of the forward run with the double reference scan (an
// independent truth: the differences never call a backward); the forward against MambaModel's;
// the fast scan path against the reference; float against double; that the checks detect wrong
// gradients; bad input.
#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <string>

#include "helpers.hpp"
#include "ssm/grad_mamba.hpp"

using namespace ssm;

namespace {

using test::error_of;
using S = Signals<double>;
using Blk = MambaBlockWeights<double>;

// Tolerance of every gradient against finite differences, on the whole array:
// max |g − fd| / max |fd| ≤ 1e-6.
constexpr double kTol = 1e-6;

// Central differences of f() with respect to each of the n numbers at x (restored after).
// Step h = 1e-5·max(1, |x_i|) ≈ ε^{1/3} (ε = 2.2e-16), the step that balances the two errors of
// a central difference: truncation h²/6·|f'''| ~ 2e-11 (f''' = O(1): the inputs and weights are
// O(1)), rounding ~ε·|f|/h ~ 2e-16·10/1e-5 = 2e-10 for |f| ≲ 10. Relative to an array's max
// |fd| ≥ 3.6e-3 (the smallest in these tests, A_log of the L = 2 block; MESSAGE prints each)
// that is ≲ 6e-8 (measured worst 1.7e-8), ≥ 16× below the 1e-6 tolerance, which a wrong term
// (an O(1) error in one contribution) exceeds by orders.
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

S randn(Eigen::Index r, Eigen::Index c, std::mt19937_64& rng, double sd = 1.0) {
  std::normal_distribution<double> nd(0.0, sd);
  S m(r, c);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = nd(rng);
  return m;
}

// Weights far from the initialization's special values, so that no term of the backward can
// hide behind a zero or a one: every array gets noise; D, norm_w, conv_b, A_log's jitter are
// O(1); Δ = softplus(Δraw + dt_bias) moves to ~0.05–0.8 (Mamba's init has 1e-3..1e-1) so the
// terms through Ā and B̄ are not small.
void perturb(Blk& w, std::mt19937_64& rng) {
  std::normal_distribution<double> nd;
  std::uniform_real_distribution<double> u(0.05, 0.8);
  auto noise = [&](auto& m, double sd) {
    for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] += sd * nd(rng);
  };
  noise(w.in_proj, 0.3);
  noise(w.conv_w, 0.3);
  noise(w.conv_b, 0.5);
  noise(w.x_proj, 0.3);
  noise(w.dt_proj, 0.3);
  for (Eigen::Index c = 0; c < w.dt_bias.size(); ++c) w.dt_bias(c) = inverse_softplus(u(rng));
  noise(w.A_log, 0.3);
  noise(w.D, 0.5);
  noise(w.out_proj, 0.3);
  noise(w.norm_w, 0.3);
}

// A block's arrays by name (written out here, independently of the library's param_views).
struct Arr {
  std::string name;
  double* data;
  std::size_t size;
};
std::vector<Arr> arrays(Blk& w) {
  auto a = [](const char* n, auto& m) { return Arr{n, m.data(), std::size_t(m.size())}; };
  return {a("norm_w", w.norm_w),    a("in_proj", w.in_proj), a("conv_w", w.conv_w),
          a("conv_b", w.conv_b),    a("x_proj", w.x_proj),   a("dt_proj", w.dt_proj),
          a("dt_bias", w.dt_bias),  a("A_log", w.A_log),     a("D", w.D),
          a("out_proj", w.out_proj)};
}

MambaConfig tiny(int d_model, int N, int d_conv, int dt_rank, int n_layers) {
  MambaConfig c;
  c.d_model = d_model;
  c.d_state = N;
  c.d_conv = d_conv;
  c.dt_rank = dt_rank;
  c.n_layers = n_layers;
  return c;
}

MambaRunOptions reference_scan() {
  MambaRunOptions o;
  o.reference_scan = true;
  return o;
}

// ℓ = Σ R ∘ Out for a fixed random R: ∂ℓ/∂Out = R, so the backward with dOut = R gives ∂ℓ/∂·.
double dot(const S& a, const S& b) {
  return (a.array() * b.array()).sum();
}

// A block problem: config, perturbed weights, input X and dOut.
struct BlockProblem {
  MambaConfig cfg;
  Blk w;
  S X, dOut;
};
BlockProblem block_problem(const MambaConfig& cfg, int L, std::uint64_t seed) {
  BlockProblem q;
  q.cfg = cfg;
  q.w = MambaModel<double>(cfg, seed).blocks()[0];
  std::mt19937_64 rng(seed + 7);
  perturb(q.w, rng);
  q.X = randn(L, cfg.d_model, rng);
  q.dOut = randn(L, cfg.d_model, rng);
  return q;
}
double block_loss(const BlockProblem& q, const Blk& w, const S& X) {
  S out;
  mamba_block_forward(q.cfg, w, X, out, reference_scan());
  return dot(q.dOut, out);
}

// Every weight of the block and its input against finite differences; returns the worst error.
double block_vs_fd(BlockProblem q, const Blk& g, const S& dX) {
  double worst = 0;
  Blk w = q.w;
  S X = q.X;
  auto f = [&] { return block_loss(q, w, X); };
  Blk gc = g;
  const auto wa = arrays(w), ga = arrays(gc);
  for (std::size_t i = 0; i < wa.size(); ++i) {
    REQUIRE(ga[i].size == wa[i].size);
    worst =
        std::max(worst, check_fd(wa[i].name, ga[i].data, central_fd(wa[i].data, wa[i].size, f)));
  }
  worst =
      std::max(worst, check_fd("dX", dX.data(), central_fd(X.data(), std::size_t(X.size()), f)));
  return worst;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The pieces
// ---------------------------------------------------------------------------------------------

TEST_CASE("pieces: RMSNorm, linear, causal conv and SiLU backward match finite differences") {
  std::mt19937_64 rng(1);
  const int L = 6, d = 5, out = 3, K = 4;
  S X = randn(L, d, rng), R = randn(L, d, rng), Ro = randn(L, out, rng);
  double worst = 0;
  {  // (G14) RMSNorm, a weight far from 1 and one row of small norm (r large: eps matters)
    VecT<double> w = VecT<double>::Ones(d) + 0.5 * randn(d, 1, rng);
    S Xs = X;
    Xs.row(2) *= 1e-2;
    const double eps = 1e-3;
    S dX;
    VecT<double> dw;
    rms_norm_backward(Xs, w, eps, R, dX, dw);
    auto f = [&] {
      S Y;
      rms_norm(Xs, w, eps, Y);
      return dot(R, Y);
    };
    worst =
        std::max(worst, check_fd("rms_norm dX", dX.data(), central_fd(Xs.data(), Xs.size(), f)));
    worst = std::max(worst, check_fd("rms_norm dw", dw.data(), central_fd(w.data(), d, f)));
  }
  {  // (G15) linear
    MatT<double> W = randn(out, d, rng);
    S dX;
    MatT<double> dW;
    linear_backward(X, W, Ro, dX, dW);
    auto f = [&] { return dot(Ro, S(X * W.transpose())); };
    worst = std::max(worst, check_fd("linear dX", dX.data(), central_fd(X.data(), X.size(), f)));
    worst = std::max(worst, check_fd("linear dW", dW.data(), central_fd(W.data(), W.size(), f)));
  }
  {  // (G16) causal depthwise conv (width 4 over L = 6: the first 3 outputs see zero history)
    MatT<double> w = randn(d, K, rng);
    VecT<double> b = randn(d, 1, rng);
    // The forward against its formula written independently (a (L+K−1)-long zero-padded input).
    S Y;
    causal_conv1d(X, w, b, Y);
    S pad = S::Zero(L + K - 1, d);
    pad.bottomRows(L) = X;
    S Yr(L, d);
    for (int t = 0; t < L; ++t)
      for (int c = 0; c < d; ++c)
        Yr(t, c) = b(c) + pad.block(t, c, K, 1).col(0).dot(w.row(c).transpose());
    CHECK_CLOSE(Y, Yr, 1e-14, 1e-14);
    S dX;
    MatT<double> dw;
    VecT<double> db;
    causal_conv1d_backward(X, w, R, dX, dw, db);
    auto f = [&] {
      S Yc;
      causal_conv1d(X, w, b, Yc);
      return dot(R, Yc);
    };
    worst = std::max(worst, check_fd("conv dX", dX.data(), central_fd(X.data(), X.size(), f)));
    worst = std::max(worst, check_fd("conv dw", dw.data(), central_fd(w.data(), w.size(), f)));
    worst = std::max(worst, check_fd("conv db", db.data(), central_fd(b.data(), d, f)));
  }
  {  // (G16, G1) SiLU, on inputs spread over [−6, 6]
    S Xw = 3.0 * X;
    S dX;
    silu_backward(Xw, R, dX);
    auto f = [&] {
      return dot(R, S(Xw.unaryExpr([](double v) { return v / (1 + std::exp(-v)); })));
    };
    worst = std::max(worst, check_fd("silu dX", dX.data(), central_fd(Xw.data(), Xw.size(), f)));
  }
  MESSAGE("pieces: worst max rel error vs FD " << worst);
}

// ---------------------------------------------------------------------------------------------
// The block
// ---------------------------------------------------------------------------------------------

TEST_CASE("block forward equals MambaModel's layer (one-layer model, final norm weight 1)") {
  // MambaModel::forward(X) of a one-layer model is RMSNorm_f(X + M8(RMSNorm(X))), norm_f = 1,
  // by its own code (block_forward, cached scan parameters): both run the same double
  // arithmetic, in a different order (the conv, the transposes): 1e-12 of the max.
  const MambaConfig cfg = tiny(8, 4, 4, 0, 1);
  MambaModel<double> m(cfg, 3);
  std::mt19937_64 rng(3);
  const S X = randn(9, 8, rng);
  S Ym, out, Y;
  m.forward(X, Ym);
  mamba_block_forward(cfg, m.blocks()[0], X, out);
  rms_norm(out, VecT<double>(VecT<double>::Ones(8)), cfg.rms_eps, Y);
  CHECK(test::rel_err(Y, Ym) <= 1e-12);
  mamba_block_forward(cfg, m.blocks()[0], X, out, reference_scan());
  rms_norm(out, VecT<double>(VecT<double>::Ones(8)), cfg.rms_eps, Y);
  CHECK(test::rel_err(Y, Ym) <= 1e-12);
}

TEST_CASE("block backward: every weight and dX match finite differences (fast scan backward)") {
  // (d_model, N, d_conv, dt_rank, L): dt_rank 1 (Mamba's default at this width) and 3; d_conv
  // 3 and 4; L = 2 < d_conv − 1 (no token has a full conv window).
  struct Case {
    int dm, N, K, R, L;
  };
  double worst = 0;
  for (const Case c : {Case{6, 3, 3, 0, 7}, Case{8, 4, 4, 3, 9}, Case{4, 3, 4, 2, 2}}) {
    CAPTURE(c.dm);
    CAPTURE(c.L);
    auto q = block_problem(tiny(c.dm, c.N, c.K, c.R, 1), c.L, 10 + std::uint64_t(c.dm));
    S dX;
    MambaBlockGrads<double> g;
    MambaRunOptions opt;
    opt.threads = 2;
    opt.chunk = 3;  // several checkpoints (G10), one partial chunk
    mamba_block_backward(q.cfg, q.w, q.X, q.dOut, dX, g, opt);
    worst = std::max(worst, block_vs_fd(q, g, dX));
  }
  MESSAGE("block backward: worst max rel error vs FD " << worst);
}

TEST_CASE("block backward: the fast scan path equals the reference scan path (double)") {
  // Same arithmetic but the scan's (G1–G9) exp and sum order (grad.hpp: ≤ 1e-13 of each array's
  // max); the rest is shared code: 1e-12.
  auto q = block_problem(tiny(8, 4, 4, 0, 1), 40, 21);
  S dXf, dXr;
  MambaBlockGrads<double> gf, gr;
  MambaRunOptions fast;
  fast.threads = 2;
  fast.chunk = 7;
  mamba_block_backward(q.cfg, q.w, q.X, q.dOut, dXf, gf, fast);
  mamba_block_backward(q.cfg, q.w, q.X, q.dOut, dXr, gr, reference_scan());
  const auto af = arrays(gf), ar = arrays(gr);
  for (std::size_t i = 0; i < af.size(); ++i) {
    const double e = rel_err(af[i].data, std::vector<double>(ar[i].data, ar[i].data + ar[i].size));
    CHECK_MESSAGE(e <= 1e-12, af[i].name << ": " << e);
  }
  CHECK(test::rel_err(dXf, dXr) <= 1e-12);
}

// ---------------------------------------------------------------------------------------------
// The language model
// ---------------------------------------------------------------------------------------------

namespace {

// A 2-layer LM, vocab 7, with every array perturbed (the embedding and head at N(0, 0.5²) so
// that the logits are O(1) and the softmax is far from uniform).
MambaLM<double> tiny_lm(bool tied, std::uint64_t seed) {
  MambaLM<double> lm(tiny(6, 3, 3, 0, 2), 7, tied, seed);
  std::mt19937_64 rng(seed + 1);
  auto& w = lm.weights();
  for (auto& b : w.blocks) perturb(b, rng);
  w.embedding = randn(7, 6, rng, 0.5);
  if (!tied) w.lm_head = randn(7, 6, rng, 0.5);
  w.norm_f += 0.3 * randn(6, 1, rng);
  return lm;
}
// 8 tokens with repeats (token 2 three times: the embedding's scatter-add sums them), two
// targets ignored.
const std::vector<int> kTokens = {2, 5, 2, 0, 6, 2, 1, 3};
const std::vector<int> kTargets = {5, -1, 0, 6, 2, 1, -1, 4};

// Every parameter's gradient against FD of lm.loss (reference scan); returns the worst error
// and the FD arrays (by param_views order) in *fds.
double lm_vs_fd(MambaLM<double> lm, const MambaLMWeights<double>& grads,
                std::vector<std::vector<double>>* fds = nullptr) {
  MambaLMWeights<double> g = grads;
  const auto pv = param_views(lm.weights());
  const auto gv = param_views(g);
  REQUIRE(pv.size() == gv.size());
  auto f = [&] { return lm.loss(kTokens, kTargets, reference_scan()); };
  double worst = 0;
  for (std::size_t i = 0; i < pv.size(); ++i) {
    REQUIRE(pv[i].name == gv[i].name);
    REQUIRE(pv[i].size == gv[i].size);
    auto fd = central_fd(pv[i].data, pv[i].size, f);
    worst = std::max(worst, check_fd(pv[i].name, gv[i].data, fd));
    if (fds) fds->push_back(std::move(fd));
  }
  return worst;
}

}  // namespace

TEST_CASE("LM forward: logits equal MambaModel::forward followed by the head") {
  // Unperturbed weights (norm_f = 1, as MambaModel's), the model's own code path: 1e-12.
  const MambaConfig cfg = tiny(8, 4, 4, 0, 2);
  for (bool tied : {true, false}) {
    MambaLM<double> lm(cfg, 11, tied, 5);
    MambaModel<double> m(cfg, 5);
    const std::vector<int> tok = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3};
    S X(10, 8), Y, lg;
    for (int t = 0; t < 10; ++t) X.row(t) = lm.weights().embedding.row(tok[std::size_t(t)]);
    m.forward(X, Y);
    lm.logits(tok, lg);
    const MatT<double>& H = tied ? lm.weights().embedding : lm.weights().lm_head;
    CHECK(test::rel_err(lg, S(Y * H.transpose())) <= 1e-12);
  }
}

TEST_CASE("LM loss_and_grad: every parameter matches finite differences, head untied") {
  auto lm = tiny_lm(false, 31);
  MambaLMWeights<double> g;
  MambaRunOptions opt;
  opt.chunk = 3;
  const double l = lm.loss_and_grad(kTokens, kTargets, g, opt);
  CHECK(std::abs(l - lm.loss(kTokens, kTargets, reference_scan())) <= 1e-13 * std::abs(l));
  MESSAGE("LM untied: worst max rel error vs FD " << lm_vs_fd(lm, g));
}

TEST_CASE("LM loss_and_grad: tied head — FD, and dE = untied dE + dHead with head = E") {
  auto lm = tiny_lm(true, 41);
  REQUIRE(lm.tied());
  MambaLMWeights<double> g;
  lm.loss_and_grad(kTokens, kTargets, g, reference_scan());
  CHECK(g.lm_head.size() == 0);
  std::vector<std::vector<double>> fds;
  MESSAGE("LM tied: worst max rel error vs FD " << lm_vs_fd(lm, g, &fds));

  // The same model untied with lm_head = a copy of the embedding has the same loss; the tied
  // table's gradient is the sum of the untied table's and head's (both of its uses).
  MambaLM<double> un = lm;
  un.weights().lm_head = un.weights().embedding;
  REQUIRE(!un.tied());
  MambaLMWeights<double> gu;
  const double lu = un.loss_and_grad(kTokens, kTargets, gu, reference_scan());
  CHECK(std::abs(lu - lm.loss(kTokens, kTargets)) <= 1e-13);
  CHECK(test::rel_err(S(gu.embedding + gu.lm_head), S(g.embedding)) <= 1e-13);
  // A tied backward that forgot the head's half (only the scatter-add) fails the FD check by far.
  REQUIRE(param_views(g)[0].name == "embedding");
  CHECK(rel_err(gu.embedding.data(), fds[0]) > 1e-2);
}

TEST_CASE("the checks can fail: wrong gradients are detected") {
  // (1) Resolution: every array's gradient with its largest entry changed by 1e-5 relative is
  // rejected (its error vs FD is ≥ 1e-5 − the true error ≫ 1e-6): the FD noise is below the
  // smallest error the tolerance must catch. (2) Three plausible bugs, each rejected by orders.
  auto lm = tiny_lm(false, 51);
  MambaLMWeights<double> g;
  lm.loss_and_grad(kTokens, kTargets, g);
  std::vector<std::vector<double>> fds;
  lm_vs_fd(lm, g, &fds);
  auto gv = param_views(g);
  for (std::size_t i = 0; i < gv.size(); ++i) {
    std::vector<double> bad(gv[i].data, gv[i].data + gv[i].size);
    const auto j =
        std::size_t(std::max_element(bad.begin(), bad.end(),
                                     [](double a, double b) { return std::abs(a) < std::abs(b); }) -
                    bad.begin());
    bad[j] *= 1 + 1e-5;
    CHECK_MESSAGE(rel_err(bad.data(), fds[i]) > kTol, gv[i].name);
  }
  // Bug: dA_log = dA (the chain factor ∂A/∂A_log = A forgotten).
  for (std::size_t l = 0; l < 2; ++l) {
    const auto& A_log = lm.weights().blocks[l].A_log;
    const MatT<double> dA = g.blocks[l].A_log.array() / (-A_log.array().exp());
    std::size_t i = 0;
    while (gv[i].name != "layers." + std::to_string(l) + ".A_log") ++i;
    CHECK(rel_err(dA.data(), fds[i]) > 1e-1);
  }
  // Bug: a block backward that drops the residual (dX without dOut).
  auto q = block_problem(tiny(6, 3, 3, 0, 1), 7, 52);
  S dX, Xc = q.X;
  MambaBlockGrads<double> gb;
  mamba_block_backward(q.cfg, q.w, q.X, q.dOut, dX, gb);
  const auto fdX =
      central_fd(Xc.data(), std::size_t(Xc.size()), [&] { return block_loss(q, q.w, Xc); });
  CHECK(rel_err(dX.data(), fdX) <= kTol);
  const S no_residual = dX - q.dOut;
  CHECK(rel_err(no_residual.data(), fdX) > 1e-1);
}

TEST_CASE("float fast path equals the double path to float rounding") {
  // A moderate LM (d_model 32, d_inner 64, N 16, 2 layers, vocab 50, L 256) in float (fast scan,
  // 2 threads) against the same weights (rounded to float, so input rounding is out) in double.
  // Float rounding ε_f = 6e-8 accumulates through the GEMMs (sums of ≤ 64 terms), the scan and
  // its backward (~√(memory)·ε_f, grad.hpp: ≲ 2e-6) and the chain of ~20 backward steps, as a
  // random walk: ~1e-6 of each array's max (measured ≤ 9e-7, the loss 2e-9 relative); 1e-5 is
  // 10× that, and a wrong term is O(1).
  MambaConfig cfg = tiny(32, 16, 4, 0, 2);
  MambaLM<double> lmd(cfg, 50, false, 61);
  lmd.weights() = cast_weights<double>(cast_weights<float>(lmd.weights()));
  MambaLM<float> lmf(cfg, 50, false, 61);
  lmf.weights() = cast_weights<float>(lmd.weights());
  std::mt19937_64 rng(62);
  std::uniform_int_distribution<int> tok(0, 49);
  std::vector<int> tokens(256), targets(256);
  for (auto& t : tokens) t = tok(rng);
  for (std::size_t t = 0; t < 256; ++t) targets[t] = t + 1 < 256 ? tokens[t + 1] : -1;
  MambaRunOptions opt;
  opt.threads = 2;
  MambaLMWeights<double> gd;
  MambaLMWeights<float> gf;
  const double ld = lmd.loss_and_grad(tokens, targets, gd, opt);
  const double lf = lmf.loss_and_grad(tokens, targets, gf, opt);
  CHECK(std::abs(lf - ld) <= 1e-6 * ld);
  const auto vd = param_views(gd);
  const auto vf = param_views(gf);
  REQUIRE(vd.size() == vf.size());
  double worst = 0;
  for (std::size_t i = 0; i < vd.size(); ++i) {
    const std::vector<double> a(vf[i].data, vf[i].data + vf[i].size);
    const double e = rel_err(a.data(), std::vector<double>(vd[i].data, vd[i].data + vd[i].size));
    CHECK_MESSAGE(e <= 1e-5, vd[i].name << ": " << e);
    worst = std::max(worst, e);
  }
  MESSAGE("float vs double: loss rel error " << std::abs(lf - ld) / ld
                                             << ", worst gradient max rel error " << worst);
}

TEST_CASE("param_views lists every parameter once, weights and grads side by side") {
  for (bool tied : {true, false}) {
    auto lm = tiny_lm(tied, 71);
    MambaLMWeights<double> g;
    lm.loss_and_grad(kTokens, kTargets, g);
    const auto pv = param_views(lm.weights());
    const auto gv = param_views(g);
    const std::size_t n = 2 + 2 * 10 + (tied ? 0 : 1);  // embedding, norm_f, 10 per layer, head
    REQUIRE(pv.size() == n);
    REQUIRE(gv.size() == n);
    std::size_t total = 0;
    for (std::size_t i = 0; i < n; ++i) {
      CHECK(pv[i].name == gv[i].name);
      CHECK(pv[i].size == gv[i].size);
      CHECK(pv[i].data != gv[i].data);
      total += pv[i].size;
    }
    const std::size_t per_layer =
        6 + 24 * 6 + 12 * 3 + 12 + 7 * 12 + 12 + 12 + 12 * 3 + 12 + 6 * 12;
    CHECK(total == 7 * 6 + 2 * per_layer + 6 + (tied ? 0 : 7 * 6));
    CHECK(pv.front().name == "embedding");
    CHECK(pv[3].name == "layers.0.conv_w");
    CHECK(pv[8].name == "layers.0.A_log");
    CHECK(!pv[8].weight_decay);
    CHECK(pv[2].weight_decay);  // in_proj
    CHECK(pv[n - (tied ? 1 : 2)].name == "norm_f");
  }
}

TEST_CASE("bad input throws an Error naming the argument") {
  auto q = block_problem(tiny(6, 3, 3, 0, 1), 7, 81);
  S dX;
  MambaBlockGrads<double> g;
  auto bwd = [&](const Blk& w, const S& X, const S& dOut) {
    return error_of([&] { mamba_block_backward(q.cfg, w, X, dOut, dX, g); });
  };
  auto has = [](const std::string& msg, const std::string& part) {
    CAPTURE(msg);
    CHECK(msg.find(part) != std::string::npos);
  };
  CHECK(bwd(q.w, q.X, q.dOut).empty());
  has(bwd(q.w, q.X.leftCols(5), q.dOut.leftCols(5)),
      "Mamba block: X has 5 columns, expected d_model = 6");
  has(bwd(q.w, q.X, q.dOut.topRows(6)), "dOut is 6x6, expected X's (L, d_model) = 7x6");
  S nan_dout = q.dOut;
  nan_dout(3, 1) = std::nan("");
  has(bwd(q.w, q.X, nan_dout), "Mamba block backward: dOut holds non-finite values");
  S inf_x = q.X;
  inf_x(0, 0) = INFINITY;
  has(bwd(q.w, inf_x, q.dOut), "Mamba block: X holds non-finite values");
  Blk w = q.w;
  w.x_proj.conservativeResize(7, 11);
  has(bwd(w, q.X, q.dOut), "Mamba block: x_proj is 7x11, expected 7x12 (dt_rank + 2N, d_inner)");
  w = q.w;
  w.D(2) = INFINITY;
  has(bwd(w, q.X, q.dOut), "Mamba block: D(2) = inf is not finite");
  w = q.w;
  w.dt_bias.resize(5);
  has(bwd(w, q.X, q.dOut), "Mamba block: dt_bias has 5 entries, expected 12 (d_inner)");
  has(error_of([&] { validate_block_weights(q.cfg, w); }), "dt_bias has 5 entries");

  // The pieces.
  S dY;
  MatT<double> dW;
  has(error_of([&] { linear_backward(q.X, q.w.in_proj, q.X, dY, dW); }),
      "linear_backward: dY is 7x6, expected (L, out) = 7x24");
  VecT<double> dw;
  has(error_of(
          [&] { rms_norm_backward(q.X, VecT<double>(VecT<double>::Ones(5)), 1e-5, q.X, dY, dw); }),
      "rms_norm_backward: w has 5 entries, expected 6");
  VecT<double> db;
  has(error_of([&] { causal_conv1d_backward(q.X, q.w.conv_w, q.X, dY, dW, db); }),
      "causal_conv1d_backward: w has 12 rows, expected one per channel = 6");

  // The LM.
  auto lm = tiny_lm(false, 82);
  MambaLMWeights<double> gl;
  auto lg = [&](const std::vector<int>& tok, const std::vector<int>& tgt) {
    return error_of([&] { lm.loss_and_grad(tok, tgt, gl); });
  };
  CHECK(lg(kTokens, kTargets).empty());
  has(lg({}, {}), "Mamba LM: tokens is empty");
  has(lg({1, 7, 2}, {1, 2, 3}), "Mamba LM: tokens[1] = 7 is outside [0, vocab = 7)");
  has(lg({1, -1, 2}, {1, 2, 3}), "tokens[1] = -1 is outside [0, vocab = 7)");
  has(lg({1, 2, 3}, {1, 2}), "Mamba LM: targets has 2 entries, expected 3 (one per token)");
  has(lg({1, 2, 3}, {1, 7, 2}), "Mamba LM: targets[1] = 7 is outside [-1, vocab = 7)");
  has(lg({1, 2, 3}, {1, -2, 2}), "targets[1] = -2 is outside [-1, vocab = 7)");
  has(lg({1, 2, 3}, {-1, -1, -1}), "Mamba LM: every target is -1 (ignored)");
  has(error_of([&] { lm.loss({1, 9}, {1, 2}); }), "tokens[1] = 9");
  S out;
  has(error_of([&] { lm.logits({0, 8}, out); }), "tokens[1] = 8");
  auto lm2 = lm;
  lm2.weights().blocks[1].A_log(0, 1) = std::nan("");
  has(error_of([&] { lm2.loss(kTokens, kTargets); }),
      "Mamba LM: layers.1.A_log(0, 1) = nan is not finite");
  lm2 = lm;
  lm2.weights().lm_head.resize(6, 6);
  has(error_of([&] { lm2.logits(kTokens, out); }),
      "Mamba LM: lm_head is 6x6, expected 7x6 (vocab, d_model)");
  lm2 = lm;
  lm2.weights().blocks.pop_back();
  has(error_of([&] { lm2.logits(kTokens, out); }),
      "Mamba LM: weights have 1 blocks, expected n_layers = 2");
  has(error_of([&] { MambaLM<double>(tiny(6, 3, 3, 0, 2), 1, true, 1); }),
      "Mamba LM: vocab = 1 is out of range [2, 1048576]");
  MambaRunOptions bad;
  bad.chunk = 0;
  has(error_of([&] { mamba_block_backward(q.cfg, q.w, q.X, q.dOut, dX, g, bad); }),
      "chunk = 0 must be > 0");
}
