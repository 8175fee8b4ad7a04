// attention_lm.cpp — the attention language model of stage 8b (T1, T3): forward, exact backward,
// recurrent form with a KV cache. See ssm/attention_lm.hpp for the math.
#include "ssm/attention_lm.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <utility>

#include "elementwise.hpp"     // detail::uniform (PyTorch's Linear init)
#include "ssm/attention.hpp"   // KVCache
#include "ssm/grad_mamba.hpp"  // rms_norm_backward (G14)
#include "ssm/mamba.hpp"       // rms_norm
#include "weight_checks.hpp"   // detail::check_int, check_array, shape_of

namespace ssm {

namespace {

const std::string kWho = "attention LM: ";

// Query rows per block of the causal attention: each block's scores (kBlock × keys up to its
// last row) are one GEMM, so the forward and backward touch only the causal half, and the
// scratch is O(kBlock·L) per head instead of O(L²).
constexpr Eigen::Index kBlock = 64;

int thread_count(int threads) {
  return threads <= 0 ? std::max(1, omp_get_num_procs()) : std::min(threads, 1024);
}

using detail::shape_of;  // weight_checks.hpp

// The shared checks with this model's prefix.
void check_int(const char* field, int v, int lo, int hi) {
  detail::check_int(kWho, field, v, lo, hi);
}
template <class M>
void check_array(const std::string& name, const M& m, Eigen::Index rows, Eigen::Index cols,
                 const char* what) {
  detail::check_array(kWho, name, m, rows, cols, what);
}

template <class T>
void check_weights(const AttentionLMConfig& c, const AttentionLMWeights<T>& w) {
  const Eigen::Index d = c.d_model, V = w.embedding.rows();
  require(V >= 2, kWho + "embedding has " + std::to_string(V) + " rows, expected vocab >= 2");
  check_array("embedding", w.embedding, V, d, "vocab, d_model");
  require(w.layers.size() == std::size_t(c.n_layers),
          kWho + "weights have " + std::to_string(w.layers.size()) +
              " layers, expected n_layers = " + std::to_string(c.n_layers));
  for (std::size_t l = 0; l < w.layers.size(); ++l) {
    const auto& L = w.layers[l];
    const std::string p = "layers." + std::to_string(l) + ".";
    check_array(p + "norm_w", L.norm_w, d, 1, "d_model");
    check_array(p + "wq", L.wq, d, d, "d_model, d_model");
    check_array(p + "wk", L.wk, d, d, "d_model, d_model");
    check_array(p + "wv", L.wv, d, d, "d_model, d_model");
    check_array(p + "wo", L.wo, d, d, "d_model, d_model");
  }
  check_array("norm_f", w.norm_f, d, 1, "d_model");
  if (c.tied)
    require(w.lm_head.size() == 0, kWho + "lm_head is " +
                                       shape_of(w.lm_head.rows(), w.lm_head.cols()) +
                                       ", expected 0x0 (the head is tied to the embedding)");
  else
    check_array("lm_head", w.lm_head, V, d, "vocab, d_model");
}

// Every array of a weights-shaped struct, in params() order, with its name and decay hint.
template <class W, class F>
void visit_arrays(W& w, bool tied, F&& f) {
  f(std::string("embedding"), w.embedding, true);
  for (std::size_t l = 0; l < w.layers.size(); ++l) {
    auto& L = w.layers[l];
    const std::string p = "layers." + std::to_string(l) + ".";
    f(p + "norm_w", L.norm_w, false);
    f(p + "wq", L.wq, true);
    f(p + "wk", L.wk, true);
    f(p + "wv", L.wv, true);
    f(p + "wo", L.wo, true);
  }
  f(std::string("norm_f"), w.norm_f, false);
  if (!tied) f(std::string("lm_head"), w.lm_head, true);
}

template <class T>
void check_qkv(const Signals<T>& q, const Signals<T>& k, const Signals<T>& v, int heads,
               const std::string& who) {
  require(heads >= 1, who + ": heads = " + std::to_string(heads) + ", expected >= 1");
  require(q.rows() == k.rows() && k.rows() == v.rows(),
          who + ": q, k, v have " + std::to_string(q.rows()) + ", " + std::to_string(k.rows()) +
              ", " + std::to_string(v.rows()) + " tokens, expected the same number");
  require(q.cols() == k.cols(), who + ": q has " + std::to_string(q.cols()) +
                                    " columns and k " + std::to_string(k.cols()) +
                                    ", expected the same (heads·d_k)");
  require(q.cols() > 0 && v.cols() > 0 && q.cols() % heads == 0 && v.cols() % heads == 0,
          who + ": heads = " + std::to_string(heads) + " does not divide the widths of q (" +
              std::to_string(q.cols()) + ") and v (" + std::to_string(v.cols()) + ")");
}

// (X5) The rows of one block of scores → causal softmax, in place. Row i is query r0 + i; the
// block has the keys 0 … n − 1; query t sees keys s ≤ t (the rest set to 0). The row maximum is
// subtracted before exp (no overflow).
template <class M>
void causal_softmax_rows(M& S, Eigen::Index r0) {
  const Eigen::Index n = S.cols();
  for (Eigen::Index i = 0; i < S.rows(); ++i) {
    const Eigen::Index t = r0 + i;
    auto r = S.row(i).head(t + 1).array();
    r = (r - r.maxCoeff()).exp();
    r /= r.sum();
    S.row(i).tail(n - t - 1).setZero();
  }
}

// A (rows, cols) row-major view of the front of a Buffer of kBlock·L numbers, allocated once per
// head: the blocks' score matrices grow with the block index, and reallocating them cost more
// than the exps (measured: 3.5× on loss_and_grad at L 256). The buffer is Eigen's, aligned like
// every Eigen array: a row's sum and max peel their unaligned head off by the address, so a
// buffer at an arbitrary address (std::vector) would give other bits from call to call.
template <class T>
using Buffer = Eigen::Matrix<T, Eigen::Dynamic, 1>;
template <class T>
using BlockView = Eigen::Map<Signals<T>>;

// (X5) Causal softmax attention, blocked by kBlock query rows, heads over `threads` OpenMP
// threads (each head writes its own columns of y). Shapes checked by the caller.
template <class T>
void attention_forward(const Signals<T>& q, const Signals<T>& k, const Signals<T>& v, int heads,
                       Signals<T>& y, int threads) {
  const Eigen::Index L = q.rows(), dk = q.cols() / heads, dv = v.cols() / heads;
  const T scale = T(1) / std::sqrt(T(dk));
  y.resize(L, v.cols());
  const int nt = std::min(thread_count(threads), heads);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int h = 0; h < heads; ++h) {
    Buffer<T> buf(std::min(kBlock, L) * L);
    for (Eigen::Index r0 = 0; r0 < L; r0 += kBlock) {
      const Eigen::Index b = std::min(kBlock, L - r0), n = r0 + b;  // keys 0 … n − 1
      BlockView<T> S(buf.data(), b, n);  // the block's scores, then P
      // Two statements: Eigen evaluates (A·Bᵀ)·scale coefficient by coefficient, not as a GEMM.
      S.noalias() = q.block(r0, h * dk, b, dk) * k.block(0, h * dk, n, dk).transpose();
      S *= scale;
      causal_softmax_rows(S, r0);
      y.block(r0, h * dv, b, dv).noalias() = S * v.block(0, h * dv, n, dv);
    }
  }
}

// (T3) The backward of attention_forward, block by block: P recomputed, then
// dP = dy vᵀ, dS = P ∘ (dP − rowsum(dP ∘ P)), dq = dS k·scale, dk += dSᵀ q·scale, dv += Pᵀ dy.
template <class T>
void attention_backward(const Signals<T>& q, const Signals<T>& k, const Signals<T>& v, int heads,
                        const Signals<T>& dy, Signals<T>& dq, Signals<T>& dk, Signals<T>& dv,
                        int threads) {
  const Eigen::Index L = q.rows(), dh = q.cols() / heads, dw = v.cols() / heads;
  const T scale = T(1) / std::sqrt(T(dh));
  Signals<T> gq(L, q.cols());
  Signals<T> gk = Signals<T>::Zero(L, k.cols()), gv = Signals<T>::Zero(L, v.cols());
  const int nt = std::min(thread_count(threads), heads);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int h = 0; h < heads; ++h) {
    Buffer<T> pbuf(std::min(kBlock, L) * L), sbuf(pbuf.size());
    Eigen::Matrix<T, Eigen::Dynamic, 1> D;  // (b) rowsum(dP ∘ P) = dy_t · y_t
    for (Eigen::Index r0 = 0; r0 < L; r0 += kBlock) {
      const Eigen::Index b = std::min(kBlock, L - r0), n = r0 + b;
      BlockView<T> P(pbuf.data(), b, n), dS(sbuf.data(), b, n);
      const auto Qb = q.block(r0, h * dh, b, dh);
      const auto Kn = k.block(0, h * dh, n, dh);
      const auto Vn = v.block(0, h * dw, n, dw);
      const auto dYb = dy.block(r0, h * dw, b, dw);
      P.noalias() = Qb * Kn.transpose();  // the forward's P, recomputed
      P *= scale;
      causal_softmax_rows(P, r0);
      dS.noalias() = dYb * Vn.transpose();  // dP (entries s > t are unused: P = 0 there)
      D = (P.array() * dS.array()).rowwise().sum().matrix();
      // dS = P ∘ (dP − D), times the scale that both dq and dk carry.
      dS.array() = scale * P.array() * (dS.array().colwise() - D.array());
      gq.block(r0, h * dh, b, dh).noalias() = dS * Kn;
      gk.block(0, h * dh, n, dh).noalias() += dS.transpose() * Qb;
      gv.block(0, h * dw, n, dw).noalias() += P.transpose() * dYb;
    }
  }
  dq = std::move(gq);
  dk = std::move(gk);
  dv = std::move(gv);
}

// What the backward needs of one layer's forward.
template <class T>
struct LayerActs {
  Signals<T> x;        // (L, d) the layer's input (the residual stream)
  Signals<T> h;        // (L, d) RMSNorm(x)·norm_w
  Signals<T> q, k, v;  // (L, d)
  Signals<T> y;        // (L, d) attention's output, before W_o
};

// (T1) x₀ = √d·E[token] + P.
template <class T>
void embed(const AttentionLMWeights<T>& w, const std::vector<int>& tokens, Signals<T>& x) {
  const auto L = static_cast<Eigen::Index>(tokens.size());
  const int d = static_cast<int>(w.embedding.cols());
  const T es = std::sqrt(T(d));
  sinusoidal_positions(0, L, d, x);
  for (Eigen::Index t = 0; t < L; ++t) x.row(t) += es * w.embedding.row(tokens[std::size_t(t)]);
}

// The forward (T1, T3) up to h_f = RMSNorm(x_n)·norm_f; xf = x_n. With acts, every layer's
// activations are kept.
template <class T>
void body(const AttentionLMConfig& c, const AttentionLMWeights<T>& w,
          const std::vector<int>& tokens, Signals<T>& xf, Signals<T>& hf,
          std::vector<LayerActs<T>>* acts, int threads) {
  Signals<T> x;
  embed(w, tokens, x);
  LayerActs<T> scratch;  // logits only: one layer's activations at a time
  if (acts) acts->resize(w.layers.size());
  for (std::size_t l = 0; l < w.layers.size(); ++l) {
    const auto& L = w.layers[l];
    LayerActs<T>& a = acts ? (*acts)[l] : scratch;
    if (acts) a.x = x;  // x changes below (the residual)
    rms_norm(x, L.norm_w, c.rms_eps, a.h);
    a.q.noalias() = a.h * L.wq.transpose();
    a.k.noalias() = a.h * L.wk.transpose();
    a.v.noalias() = a.h * L.wv.transpose();
    attention_forward(a.q, a.k, a.v, c.heads, a.y, threads);
    x.noalias() += a.y * L.wo.transpose();  // the residual: x ← x + out
  }
  rms_norm(x, w.norm_f, c.rms_eps, hf);
  xf = std::move(x);
}

// The recurrent form: per layer a KV cache; position t's P_t computed on the fly.
template <class T>
class AttentionStepper : public LMStepper<T> {
 public:
  explicit AttentionStepper(const AttentionLM<T>& lm)
      : cfg_(lm.config()), w_(lm.weights()), vocab_(lm.vocab()) {
    check_weights(cfg_, w_);
    reset();
  }

  void reset() override {
    caches_.clear();  // fresh caches: state_bytes() back to 0
    for (int l = 0; l < cfg_.n_layers; ++l)
      caches_.emplace_back(cfg_.heads, cfg_.d_head(), cfg_.d_head());
    pos_ = 0;
  }

  void step(int token, T* logits) override {
    require(token >= 0 && token < vocab_, kWho + "stepper: token " + std::to_string(token) +
                                              " is outside [0, vocab = " +
                                              std::to_string(vocab_) + ")");
    const int d = cfg_.d_model, dh = cfg_.d_head();
    const T scale = T(1) / std::sqrt(T(dh));
    Signals<T> x, h, q, k, v, y(1, d);
    sinusoidal_positions(pos_, 1, d, x);  // x₀ = √d·E[token] + P_pos
    x.row(0) += std::sqrt(T(d)) * w_.embedding.row(token);
    Eigen::Matrix<T, Eigen::Dynamic, 1> s;
    for (std::size_t l = 0; l < w_.layers.size(); ++l) {
      const auto& L = w_.layers[l];
      KVCache<T>& cache = caches_[l];
      rms_norm(x, L.norm_w, cfg_.rms_eps, h);
      q.noalias() = h * L.wq.transpose();
      k.noalias() = h * L.wk.transpose();
      v.noalias() = h * L.wv.transpose();
      cache.append(k.data(), v.data());
      const auto n = static_cast<Eigen::Index>(cache.size());  // tokens 0 … pos_
      const Eigen::Map<const Signals<T>> K(cache.key(0), n, d), V(cache.value(0), n, d);
      for (int j = 0; j < cfg_.heads; ++j) {  // (X5) one query against every cached key
        s.noalias() = K.middleCols(j * dh, dh) * q.row(0).segment(j * dh, dh).transpose();
        s = ((s.array() - s.maxCoeff()) * scale).exp().matrix();
        s /= s.sum();
        y.row(0).segment(j * dh, dh).noalias() = s.transpose() * V.middleCols(j * dh, dh);
      }
      x.noalias() += y * L.wo.transpose();
    }
    ++pos_;
    Signals<T> hf;
    rms_norm(x, w_.norm_f, cfg_.rms_eps, hf);
    const MatT<T>& H = cfg_.tied ? w_.embedding : w_.lm_head;
    Eigen::Map<Eigen::Matrix<T, 1, Eigen::Dynamic>>(logits, vocab_).noalias() =
        hf.row(0) * H.transpose();
  }

  std::size_t state_bytes() const override {
    std::size_t b = 0;
    for (const auto& c : caches_) b += c.bytes();
    return b;
  }

 private:
  AttentionLMConfig cfg_;
  AttentionLMWeights<T> w_;  // a copy: the model may be trained on while this runs
  int vocab_;
  std::vector<KVCache<T>> caches_;  // one per layer
  std::size_t pos_ = 0;             // tokens seen: the next token's position
};

}  // namespace

void validate(const AttentionLMConfig& c) {
  check_int("d_model", c.d_model, 1, 8192);
  check_int("n_layers", c.n_layers, 1, 64);
  require(c.heads >= 1 && c.heads <= c.d_model && c.d_model % c.heads == 0,
          kWho + "heads = " + std::to_string(c.heads) + " must be >= 1 and divide d_model = " +
              std::to_string(c.d_model));
  require(std::isfinite(c.rms_eps) && c.rms_eps >= 0,
          kWho + "rms_eps = " + fmt(c.rms_eps) + ", expected a finite value >= 0");
}

template <class T>
void causal_attention_backward(const Signals<T>& q, const Signals<T>& k, const Signals<T>& v,
                               int heads, const Signals<T>& dy, Signals<T>& dq, Signals<T>& dk,
                               Signals<T>& dv) {
  const std::string who = "causal_attention_backward";
  check_qkv(q, k, v, heads, who);
  require(dy.rows() == v.rows() && dy.cols() == v.cols(),
          who + ": dy is " + shape_of(dy.rows(), dy.cols()) + ", expected v's (L, heads·d_v) = " +
              shape_of(v.rows(), v.cols()));
  attention_backward(q, k, v, heads, dy, dq, dk, dv, 1);
}

template <class T>
void sinusoidal_positions(std::size_t first, Eigen::Index L, int d_model, Signals<T>& P) {
  require(d_model >= 1, "sinusoidal_positions: d_model = " + std::to_string(d_model) +
                            ", expected >= 1");
  require(L >= 0, "sinusoidal_positions: L = " + std::to_string(L) + ", expected >= 0");
  P.resize(L, d_model);
  const double ln = std::log(10000.0);
  for (Eigen::Index c = 0; c < d_model; c += 2) {
    const double w = std::exp(-double(c) / double(d_model) * ln);  // ω_i, 2i = c
    for (Eigen::Index t = 0; t < L; ++t) {
      const double a = double(first + std::size_t(t)) * w;
      P(t, c) = static_cast<T>(std::sin(a));
      if (c + 1 < d_model) P(t, c + 1) = static_cast<T>(std::cos(a));
    }
  }
}

template <class To, class From>
AttentionLMWeights<To> cast_weights(const AttentionLMWeights<From>& w) {
  AttentionLMWeights<To> r;
  r.embedding = w.embedding.template cast<To>();
  for (const auto& L : w.layers) {
    AttentionLayerWeights<To> c;
    c.norm_w = L.norm_w.template cast<To>();
    c.wq = L.wq.template cast<To>();
    c.wk = L.wk.template cast<To>();
    c.wv = L.wv.template cast<To>();
    c.wo = L.wo.template cast<To>();
    r.layers.push_back(std::move(c));
  }
  r.norm_f = w.norm_f.template cast<To>();
  r.lm_head = w.lm_head.template cast<To>();
  return r;
}

template <class T>
AttentionLM<T>::AttentionLM(const AttentionLMConfig& cfg, int vocab, std::uint64_t seed)
    : cfg_(cfg) {
  validate(cfg);
  require(vocab >= 2 && vocab <= (1 << 20),
          kWho + "vocab = " + std::to_string(vocab) + " is outside [2, 1048576]");
  const int d = cfg.d_model;
  const double bound = 1.0 / std::sqrt(double(d));  // PyTorch's Linear: ±1/√fan_in
  for (int l = 0; l < cfg.n_layers; ++l) {
    std::mt19937_64 rng(mix_seed(seed, 700 + std::uint64_t(l)));
    AttentionLayerWeights<T> w;
    w.norm_w = VecT<T>::Ones(d);
    w.wq = detail::uniform<T>(rng, d, d, bound);
    w.wk = detail::uniform<T>(rng, d, d, bound);
    w.wv = detail::uniform<T>(rng, d, d, bound);
    w.wo = detail::uniform<T>(rng, d, d, bound / std::sqrt(double(cfg.n_layers)));
    w_.layers.push_back(std::move(w));
  }
  w_.norm_f = VecT<T>::Ones(d);
  std::mt19937_64 rng(mix_seed(seed, 1));
  std::normal_distribution<double> nd(0.0, 1.0 / std::sqrt(double(d)));  // √d·E: O(1) entries
  w_.embedding.resize(vocab, d);
  for (Eigen::Index j = 0; j < d; ++j)
    for (Eigen::Index i = 0; i < vocab; ++i) w_.embedding(i, j) = static_cast<T>(nd(rng));
  if (!cfg.tied) {
    std::mt19937_64 rng2(mix_seed(seed, 2));
    w_.lm_head = detail::uniform<T>(rng2, vocab, d, bound);
  }
}

template <class T>
std::string AttentionLM<T>::describe() const {
  return "attention: d_model " + std::to_string(cfg_.d_model) + ", " +
         std::to_string(cfg_.n_layers) + " layers, " + std::to_string(cfg_.heads) +
         " heads (d_k " + std::to_string(cfg_.d_head()) + "), vocab " + std::to_string(vocab()) +
         (tied() ? ", tied" : ", untied") + ", sinusoidal positions, no MLP";
}

template <class T>
std::vector<ParamView<T>> AttentionLM<T>::params() {
  std::vector<ParamView<T>> v;
  visit_arrays(w_, tied(), [&v](std::string name, auto& a, bool decay) {
    v.push_back({std::move(name), a.data(), static_cast<std::size_t>(a.size()), decay});
  });
  return v;
}

template <class T>
void AttentionLM<T>::logits(const std::vector<int>& tokens, Signals<T>& out, int threads) const {
  check_tokens("attention LM", vocab(), tokens, nullptr);
  check_weights(cfg_, w_);
  Signals<T> xf, hf;
  body(cfg_, w_, tokens, xf, hf, static_cast<std::vector<LayerActs<T>>*>(nullptr), threads);
  out.noalias() = hf * (tied() ? w_.embedding : w_.lm_head).transpose();  // (L, vocab)
}

template <class T>
double AttentionLM<T>::loss_and_grad(const std::vector<int>& tokens,
                                     const std::vector<int>& targets, std::vector<T>& grad,
                                     int threads) const {
  check_tokens("attention LM", vocab(), tokens, &targets);
  check_weights(cfg_, w_);
  std::vector<LayerActs<T>> acts;
  Signals<T> xf, hf, dlog;
  body(cfg_, w_, tokens, xf, hf, &acts, threads);
  const MatT<T>& H = tied() ? w_.embedding : w_.lm_head;
  const Signals<T> lg = hf * H.transpose();
  const double loss = softmax_cross_entropy(lg, targets, &dlog);  // (G18)

  AttentionLMWeights<T> g;
  // (G15) logits = h_f Hᵀ: dH = dlogitsᵀ h_f, dh_f = dlogits H.
  Signals<T> dhf = dlog * H, dx, dxn, dy, dq, dk, dv, dh;
  MatT<T> dH = dlog.transpose() * hf;
  if (tied()) {
    g.embedding = std::move(dH);  // the head's half of the tied table; the scatter-add follows
  } else {
    g.embedding = MatT<T>::Zero(w_.embedding.rows(), w_.embedding.cols());
    g.lm_head = std::move(dH);
  }
  rms_norm_backward(xf, w_.norm_f, cfg_.rms_eps, dhf, dx, g.norm_f);  // (G14)
  g.layers.resize(w_.layers.size());
  for (std::size_t l = w_.layers.size(); l-- > 0;) {  // last layer first; dx = ∂ℓ/∂(its output)
    const auto& W = w_.layers[l];
    const auto& a = acts[l];
    auto& G = g.layers[l];
    // out = y W_oᵀ (G15).
    dy.noalias() = dx * W.wo;
    G.wo.noalias() = dx.transpose() * a.y;
    // (T3) the attention.
    attention_backward(a.q, a.k, a.v, cfg_.heads, dy, dq, dk, dv, threads);
    // q, k, v = h W_{q,k,v}ᵀ (G15): h feeds all three, so their gradients add.
    dh.noalias() = dq * W.wq;
    dh.noalias() += dk * W.wk;
    dh.noalias() += dv * W.wv;
    G.wq.noalias() = dq.transpose() * a.h;
    G.wk.noalias() = dk.transpose() * a.h;
    G.wv.noalias() = dv.transpose() * a.h;
    // h = RMSNorm(x)·norm_w (G14), and the residual: x reaches the output directly too.
    rms_norm_backward(a.x, W.norm_w, cfg_.rms_eps, dh, dxn, G.norm_w);
    dx += dxn;
  }
  // (T1) x₀,t = √d·E[token_t] + P_t: a repeated token sums its rows' gradients.
  const T es = std::sqrt(T(cfg_.d_model));
  for (std::size_t t = 0; t < tokens.size(); ++t)
    g.embedding.row(tokens[t]) += es * dx.row(static_cast<Eigen::Index>(t));

  std::size_t n = 0;
  visit_arrays(g, tied(), [&n](const std::string&, auto& a, bool) { n += std::size_t(a.size()); });
  grad.resize(n);
  std::size_t off = 0;
  visit_arrays(g, tied(), [&](const std::string&, auto& a, bool) {
    std::copy(a.data(), a.data() + a.size(), grad.begin() + std::ptrdiff_t(off));
    off += std::size_t(a.size());
  });
  return loss;
}

template <class T>
std::unique_ptr<LMStepper<T>> AttentionLM<T>::stepper() const {
  return std::make_unique<AttentionStepper<T>>(*this);
}

#define SSM_ATTN_LM_INSTANTIATE(T)                                                              \
  template void causal_attention_backward<T>(const Signals<T>&, const Signals<T>&,              \
                                             const Signals<T>&, int, const Signals<T>&,         \
                                             Signals<T>&, Signals<T>&, Signals<T>&);            \
  template void sinusoidal_positions<T>(std::size_t, Eigen::Index, int, Signals<T>&);           \
  template class AttentionLM<T>;
SSM_ATTN_LM_INSTANTIATE(float)
SSM_ATTN_LM_INSTANTIATE(double)
#undef SSM_ATTN_LM_INSTANTIATE
template AttentionLMWeights<float> cast_weights<float, double>(const AttentionLMWeights<double>&);
template AttentionLMWeights<double> cast_weights<double, float>(const AttentionLMWeights<float>&);
template AttentionLMWeights<float> cast_weights<float, float>(const AttentionLMWeights<float>&);
template AttentionLMWeights<double> cast_weights<double, double>(const AttentionLMWeights<double>&);

}  // namespace ssm
