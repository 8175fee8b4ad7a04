// ssm/attention_lm.hpp — stage 8b, learning: a language model whose layer is causal softmax
// attention (the Transformer baseline of the Mamba paper), trained end to end by the exact
// backward written here.
//
// The stack is the one every model of ssm/lm.hpp shares (docs/MATH.md, T1), with a fixed
// sinusoidal positional encoding P added to the embedding (attention has no other notion of
// position: without P it is a function of the set of past tokens, not of their order):
//   x₀,t = √d·E[token_t] + P_t          (L, d)   d = d_model; E (vocab, d)
//   P_t,2i = sin(t·ω_i),  P_t,2i+1 = cos(t·ω_i),  ω_i = 10000^(−2i/d)   (Vaswani et al. §3.5)
//   n_layers residual layers x ← x + layer(RMSNorm(x)) → h_f = RMSNorm(x)·norm_f
//   logits = h_f Hᵀ (H = lm_head, or E when tied) → softmax cross-entropy (G18)
// P is defined at every t (no parameters, no table), so a model trained at length L runs at
// 64·L; the Mamba paper's point is that attention then fails beyond ~2× the training length,
// and that is what the trainer measures. The factor √d (Vaswani §3.4) with E ~ N(0, 1/d) makes
// both terms of x₀ O(1) per coordinate, and keeps the tied head's logits h_f E_vᵀ O(1) at init.
//
// The layer is an attention-only transformer layer (no MLP: two such layers are the canonical
// induction-head circuit), read forward as (T3; shapes per sequence of L tokens, heads of
// width d_k = d / heads, head j in columns [j·d_k, (j+1)·d_k)):
//   h = RMSNorm(x)·norm_w                       (L, d)
//   q = h W_qᵀ,  k = h W_kᵀ,  v = h W_vᵀ         (L, d)   W (d, d) as PyTorch's Linear (out, in)
//   per head: S = q kᵀ/√d_k (s ≤ t only),  P = softmax_rows(S),  y = P v      (X5)
//   out = y W_oᵀ                                (L, d)
// and its backward, per head (T3), from dy = ∂ℓ/∂y:
//   dv = Pᵀ dy,    dP = dy vᵀ,
//   dS = P ∘ (dP − rowsum(dP ∘ P))   (the softmax's Jacobian; rowsum(dP ∘ P)_t = dy_t·y_t),
//   dq = dS k/√d_k,   dk = dSᵀ q/√d_k
// (masked entries have P = 0, so dS = 0 there: no mask is needed in the backward), then the
// four linear layers (G15: dh = dq W_q + dk W_k + dv W_v, dW_q = dqᵀ h, …), RMSNorm (G14), the
// residual sum, and the embedding's scatter-add dE[token_t] += √d·dx₀,t (plus the head's dH
// when tied).
//
// Initialization (the seed fixes every array): E ~ N(0, 1/d); W_q, W_k, W_v uniform in
// ±1/√d (PyTorch's Linear); W_o the same divided by √n_layers (so the residual stream's
// variance grows like Σ_l 1/n_layers, not like n_layers: GPT-2's scaled residual init); norms = 1;
// an untied lm_head uniform in ±1/√d.
//
// Costs per sequence (d = d_model, n = n_layers, V = vocab):
//   logits(): per layer the projections 4·L·d² multiply-adds and the causal attention
//             ≈ L²·d (QKᵀ and PV on the causal half, by blocks of 64 query rows) plus L²/2
//             exps per head; the head L·V·d. Memory O(L·(d + V)) plus O(64·L) per head.
//   loss_and_grad(): the forward once, keeping per layer its input, h, q, k, v, y (6·L·d
//             numbers: 6·n·L·d in all), then per layer the projections' backward (8·L·d², 2×
//             their forward) and causal_attention_backward (≈ 2.5·L²·d: S recomputed, dP,
//             dq, dk, dv); about 2.5–3× logits() from the operation counts, 3.2× measured
//             (float, d 64, 4 heads, 2 layers, vocab 16, L 256, one core: loss_and_grad
//             ≈ 125 000 tokens/s, logits() ≈ 410 000 tokens/s).
//   stepper(): per token O(n·(t·d + 4·d²) + V·d) at position t; state: the KV caches,
//             2·n·t·d numbers, growing with t.
// Thread safety: every call reads the weights only (all scratch is local), so loss_and_grad
// may run on one const model from many threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ssm/lm.hpp"
#include "ssm/recurrent.hpp"  // MatT, VecT

namespace ssm {

struct AttentionLMConfig {
  int d_model = 64;      // d, in [1, 8192]
  int n_layers = 2;      // in [1, 64]
  int heads = 4;         // ≥ 1, dividing d_model: d_k = d_model / heads
  double rms_eps = 1e-5; // RMSNorm's ε, finite and ≥ 0
  bool tied = true;      // logits through the embedding (no lm_head)
  int d_head() const { return d_model / heads; }
};
// Throws Error naming the first field out of range ("attention LM: heads = 3 does not divide
// d_model = 8").
void validate(const AttentionLMConfig& c);

// (T3) The backward of causal_attention (attention.hpp, X5) for ℓ with ∂ℓ/∂y = dy:
// writes (overwrites, resized) dq, dk (L, heads·d_k) and dv (L, heads·d_v), from the formulas
// at the top of this header. The forward's P is recomputed from q, k block by block (64 query
// rows at a time, each against the keys s ≤ its last row), so nothing of the forward is kept:
// time O(L²·heads·(d_k + d_v)) (≈ 2.5× the forward's), memory O(64·L) per head beyond the
// outputs. q, k (L, heads·d_k); v, dy (L, heads·d_v). Throws Error for heads < 1, widths not
// divisible by heads, or differing row counts / shapes.
template <class T>
void causal_attention_backward(const Signals<T>& q, const Signals<T>& k, const Signals<T>& v,
                               int heads, const Signals<T>& dy, Signals<T>& dq, Signals<T>& dk,
                               Signals<T>& dv);

// (T1) Rows first … first + L − 1 of the sinusoidal positional encoding (L, d_model), computed
// in double and rounded to T: P_t,2i = sin(t ω_i), P_t,2i+1 = cos(t ω_i), ω_i = 10000^(−2i/d)
// (an odd d_model ends with a sine). O(L·d).
template <class T>
void sinusoidal_positions(std::size_t first, Eigen::Index L, int d_model, Signals<T>& P);

// One layer's parameters (params() exposes them flat under the same names).
template <class T>
struct AttentionLayerWeights {
  VecT<T> norm_w;          // (d)     the pre-norm's weight
  MatT<T> wq, wk, wv, wo;  // (d, d)  (out, in)
};

template <class T>
struct AttentionLMWeights {
  MatT<T> embedding;                              // (vocab, d)
  std::vector<AttentionLayerWeights<T>> layers;   // n_layers
  VecT<T> norm_f;                                 // (d)
  MatT<T> lm_head;                                // (vocab, d); empty (0×0) when tied
};

// The same weights in another precision (a float model from a double one, or back).
template <class To, class From>
AttentionLMWeights<To> cast_weights(const AttentionLMWeights<From>& w);

template <class T>
class AttentionLM : public LanguageModel<T> {
 public:
  // cfg validated (validate); vocab in [2, 2^20]. Initialized as the header says, from seed.
  AttentionLM(const AttentionLMConfig& cfg, int vocab, std::uint64_t seed);

  const AttentionLMConfig& config() const { return cfg_; }
  bool tied() const { return cfg_.tied; }
  // The parameters, free to edit (a trainer's step, a test's perturbation) as long as the
  // shapes stay: every call validates shapes and finite values (Error naming the array).
  AttentionLMWeights<T>& weights() { return w_; }
  const AttentionLMWeights<T>& weights() const { return w_; }

  std::string kind() const override { return "attention"; }
  // "attention: d_model 64, 2 layers, 4 heads (d_k 16), vocab 16, tied, sinusoidal positions,
  // no MLP".
  std::string describe() const override;
  int vocab() const override { return static_cast<int>(w_.embedding.rows()); }
  // embedding, layers.l.{norm_w, wq, wk, wv, wo} for l = 0 …, norm_f, lm_head (untied only);
  // weight decay on embedding, wq, wk, wv, wo and lm_head.
  std::vector<ParamView<T>> params() override;
  // (T1, T3, G18) Logits (L, vocab); threads: OpenMP threads over the heads (1: none).
  void logits(const std::vector<int>& tokens, Signals<T>& out, int threads = 1) const override;
  // (T3, G14, G15, G18) The loss and its gradient, concatenated in params() order (lm.hpp).
  double loss_and_grad(const std::vector<int>& tokens, const std::vector<int>& targets,
                       std::vector<T>& grad, int threads = 1) const override;
  // Token by token: per layer a KVCache (attention.hpp) and the position counter; the stepper
  // copies the weights (the model may change after it is made). state_bytes() = Σ the caches'
  // bytes(), growing with the number of tokens seen.
  std::unique_ptr<LMStepper<T>> stepper() const override;

 private:
  AttentionLMConfig cfg_;
  AttentionLMWeights<T> w_;
};

}  // namespace ssm
