// ssm/grad_mamba.hpp — stage 8a, learning: the exact backward pass of the Mamba block (M8) and
// of a small Mamba language model (embedding → blocks → final RMSNorm → LM head → softmax).
//
// The block is the residual layer the model stacks, x ↦ x + M8(RMSNorm(x)). Read forward, its
// chain is (docs/MATH.md, M8 and G14–G18; shapes per sequence of L tokens):
//   h = RMSNorm(x)·w_norm       (L, d_model)
//   [x₁, z] = h W_inᵀ            (L, 2·d_inner)
//   a  = conv(x₁) + b_conv       (L, d_inner)   causal depthwise, width d_conv
//   x' = silu(a)                 (L, d_inner)   the scan's u, and x_proj's input
//   [δ, B, C] = x' W_xᵀ          (L, dt_rank + 2N)
//   Δraw = δ W_dtᵀ               (L, d_inner)   (dt_bias and softplus are inside the scan, M1)
//   y  = scan(u = x', Δraw, A = −exp(A_log), B, C, D, gate z)                      (M1–M4)
//   out = x + y W_outᵀ           (L, d_model)
// and the backward walks it in reverse, each piece's gradient from its own formula:
//   (G14) RMSNorm        (G15) a linear layer       (G16) the causal depthwise conv and SiLU
//   (G1–G9) the scan, by ssm/grad.hpp                  (G17) the block's chain and its two sums
//   (G18) the language model: softmax cross-entropy, LM head tied or not, embedding scatter-add.
// Every backward returns gradients with its forward arrays' shapes (a MambaBlockWeights-shaped
// struct for a block's weights), so a trainer updates weight and gradient array by array; the
// LM's param_views() lists them by name.
//
// Intuition. Backpropagation is the chain rule applied in reverse order of the forward; the
// places where it needs care are where one forward value feeds two consumers — x' is both the
// scan's u and x_proj's input, x both the residual and the norm's input, and a tied embedding is
// both the input table and the output head — and there the gradients of the consumers add.
//
// Checked in tests/test_grad_mamba.cpp: every gradient of every array against central finite
// differences of the forward (double, reference scan), the float fast path against double,
// the forward against MambaModel::forward.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ssm/grad.hpp"
#include "ssm/lm.hpp"
#include "ssm/mamba.hpp"

namespace ssm {

// How a Mamba pass runs its scans. threads: OpenMP threads of the scan and its backward (0 = all
// cores); chunk: the scan backward's checkpoint interval (G10); reference_scan: use the plain
// double loops of selective_scan_reference / selective_scan_backward_reference instead of the
// fast SIMD scans (the arrays are converted to double and back; for checks, not for speed).
struct MambaRunOptions {
  int threads = 1;
  int chunk = 64;
  bool reference_scan = false;
};

// ---------------------------------------------------------------------------------------------
// The pieces. Row t of every Signals argument is token t. Each *_backward takes the forward's
// inputs and dY = ∂ℓ/∂Y and writes (overwrites) the gradients; sizes are checked (Error).
// ---------------------------------------------------------------------------------------------

// (G14) RMSNorm backward. Y_t = w ∘ X_t r_t, r_t = (mean(X_t²) + eps)^−½ (rms_norm):
//   dX_t = r_t (g_t − X_t r_t² ⟨g_t, X_t⟩ / d),  g_t = dY_t ∘ w;   dw = Σ_t dY_t ∘ X_t r_t.
// X, dY, dX (L, d); w, dw (d). O(L·d).
template <class T>
void rms_norm_backward(const Signals<T>& X, const VecT<T>& w, double eps, const Signals<T>& dY,
                       Signals<T>& dX, VecT<T>& dw);

// (G15) Linear Y = X Wᵀ backward: dX = dY W, dW = dYᵀ X (two Eigen GEMMs).
// X, dX (L, in); W, dW (out, in) as PyTorch's Linear; dY (L, out). O(L·in·out).
template <class T>
void linear_backward(const Signals<T>& X, const MatT<T>& W, const Signals<T>& dY, Signals<T>& dX,
                     MatT<T>& dW);

// (G16) Causal depthwise conv1d, the forward (before the SiLU): one filter of width K per
// channel c, zero history before t = 0:  Y_{t,c} = b_c + Σ_k w_{c,k} X_{t−K+1+k, c}.
// X, Y (L, C); w (C, K); b (C). O(L·C·K).
template <class T>
void causal_conv1d(const Signals<T>& X, const MatT<T>& w, const VecT<T>& b, Signals<T>& Y);

// (G16) Its backward: db_c = Σ_t dY_{t,c},  dw_{c,k} = Σ_t dY_{t,c} X_{t−K+1+k, c},
//   dX_{s,c} = Σ_k dY_{s+K−1−k, c} w_{c,k} (terms past L − 1 are zero: the transpose of a causal
// filter looks ahead). X, dY, dX (L, C); w, dw (C, K); db (C). O(L·C·K).
template <class T>
void causal_conv1d_backward(const Signals<T>& X, const MatT<T>& w, const Signals<T>& dY,
                            Signals<T>& dX, MatT<T>& dw, VecT<T>& db);

// (G16, G1) SiLU backward: dX = dY ∘ silu'(X), silu'(x) = σ(x)(1 + x(1 − σ(x))). X, dY, dX
// any shape, equal. O(size); in float the exp is simd::exp (vmath.hpp).
template <class T>
void silu_backward(const Signals<T>& X, const Signals<T>& dY, Signals<T>& dX);

// ---------------------------------------------------------------------------------------------
// The block
// ---------------------------------------------------------------------------------------------

// The gradient of a block has one array per weight, each with the weight's shape.
template <class T>
using MambaBlockGrads = MambaBlockWeights<T>;

// Checks every array of w against cfg (the shapes listed in mamba.hpp) and that its values are
// finite; throws Error naming the array ("Mamba block: x_proj is 5x8, expected 7x8 (dt_rank +
// 2N, d_inner)"). O(number of weights).
template <class T>
void validate_block_weights(const MambaConfig& cfg, const MambaBlockWeights<T>& w);

// The residual block (M8): Out = X + M8(RMSNorm(X; w.norm_w)), computed from the weights
// (A = −exp(A_log), D, dt_bias read from w at every call, unlike MambaModel, which caches them
// at construction). X, Out (L, d_model). Same cost as one layer of MambaModel::forward:
// O(L·d_model·d_inner + L·d_inner·(dt_rank + 2N)) for the projections plus the scan's
// O(L·d_inner·N). Validates cfg's shapes against w and X (finite).
template <class T>
void mamba_block_forward(const MambaConfig& cfg, const MambaBlockWeights<T>& w, const Signals<T>& X,
                         Signals<T>& Out, const MambaRunOptions& opt = {});

// (G17) The block's backward: given its input X and dOut = ∂ℓ/∂Out, writes dX = ∂ℓ/∂X (the
// residual's dOut included) and the gradient of every weight (grads is resized and
// overwritten), dA_log = dA ∘ A (A = −exp(A_log)). It recomputes the forward activations from X
// (nothing is kept between the forward and the backward), then calls selective_scan_backward
// (fast, opt.threads, opt.chunk) or, with opt.reference_scan, the double reference.
// Cost: the forward once more, then the GEMMs' backward (twice the forward's GEMM flops) and the
// scan backward (grad.hpp: 3.1–4.4× the fast scan): the projections' part costs 3× their
// forward, the scan's about 4–5×, so 3–5× the block's forward in all (from the flop counts, not
// benchmarked): O(L·d_model·d_inner + L·d_inner·(dt_rank + 2N) + L·d_inner·N).
// Memory (numbers of type T) beyond the arguments, all at once at most: the recomputed
// activations h, x₁, a, x', [δ, B, C], the scan's u, Δraw, z, B, C and y (about
// L·(d_model + 7·d_inner + dt_rank + 4N)), their gradients (about 12·L·d_inner + 2·L·d_model +
// 2·L·(dt_rank + 2N)), i.e. O(L·(d_model + d_inner + N)), never O(L·d_inner·N), plus the fast
// scan backward's scratch (grad.hpp: O(threads·(L·N + N·L/chunk + N·chunk))).
// Throws Error for mismatched shapes or non-finite X or dOut.
template <class T>
void mamba_block_backward(const MambaConfig& cfg, const MambaBlockWeights<T>& w,
                          const Signals<T>& X, const Signals<T>& dOut, Signals<T>& dX,
                          MambaBlockGrads<T>& grads, const MambaRunOptions& opt = {});

// ---------------------------------------------------------------------------------------------
// The language model
// ---------------------------------------------------------------------------------------------

// Every parameter of the LM; its gradient has the same type and shapes.
template <class T>
struct MambaLMWeights {
  MatT<T> embedding;                         // (vocab, d_model): row v is token v's vector
  std::vector<MambaBlockWeights<T>> blocks;  // n_layers
  VecT<T> norm_f;                            // (d_model): the final RMSNorm's weight
  MatT<T> lm_head;                           // (vocab, d_model); empty (0×0): tied to embedding
};

// ParamView (one parameter array seen flat, with its name and weight-decay hint) is in ssm/lm.hpp.


// The views of every array of w, in the order embedding, layers.l.{norm_w, in_proj, conv_w,
// conv_b, x_proj, dt_proj, dt_bias, A_log, D, out_proj} for l = 0 …, norm_f, lm_head (absent when
// tied). The pointers stay valid until an array is resized.
template <class T>
std::vector<ParamView<T>> param_views(MambaLMWeights<T>& w);

// Calls f(array) for every array of w (weights or gradients) in param_views' order, without
// building the names: the flat copy of a gradient (the trainer's loss_and_grad).
template <class W, class F>
void for_each_array(W& w, F&& f) {
  f(w.embedding);
  for (auto& b : w.blocks) {
    f(b.norm_w), f(b.in_proj), f(b.conv_w), f(b.conv_b), f(b.x_proj);
    f(b.dt_proj), f(b.dt_bias), f(b.A_log), f(b.D), f(b.out_proj);
  }
  f(w.norm_f);
  if (w.lm_head.size() > 0) f(w.lm_head);
}

// Weights converted to another precision (a float model from a double one, or back).
template <class To, class From>
MambaLMWeights<To> cast_weights(const MambaLMWeights<From>& w);

// tokens (L ids in [0, vocab)) → embedding → the cfg.n_layers residual blocks (M8) → final
// RMSNorm → logits = x_f Hᵀ with H = lm_head, or the embedding when tied.
template <class T>
class MambaLM {
 public:
  // Blocks initialized as MambaModel<T>(cfg, seed) does (M6; cfg validated there), norm_f = 1,
  // embedding ~ N(0, 0.02²) (Mamba's), an untied lm_head uniform in ±1/√d_model (PyTorch's
  // Linear). vocab in [2, 2^20].
  MambaLM(const MambaConfig& cfg, int vocab, bool tied, std::uint64_t seed);

  const MambaConfig& config() const { return cfg_; }
  int vocab() const { return static_cast<int>(w_.embedding.rows()); }
  bool tied() const { return w_.lm_head.size() == 0; }
  // The parameters, free to edit (a trainer's step) as long as the shapes stay. Every call
  // checks them (shapes and finite values) once per change: the validation and the scan
  // parameters A = −exp(A_log) are kept in a WeightsCache (lm.hpp) with a copy of the weights'
  // bits, and each call only compares the weights with that copy (O(parameters) bytes).
  MambaLMWeights<T>& weights() { return w_; }
  const MambaLMWeights<T>& weights() const { return w_; }

  // Forward only: logits (L, vocab) of tokens (L). Cost per token O(n_layers·(d_model·d_inner +
  // d_inner·N) + vocab·d_model); memory O(L·(d_model + d_inner + vocab)).
  void logits(const std::vector<int>& tokens, Signals<T>& out,
              const MambaRunOptions& opt = {}) const;

  // (G18) Mean softmax cross-entropy over the positions with targets[t] ≥ 0 (−1 = ignored):
  //   ℓ = (1/n) Σ_{t: target_t ≥ 0} (logsumexp(logits_t) − logits_{t, target_t}),
  // computed with a stable log-softmax and summed in double. Forward only.
  double loss(const std::vector<int>& tokens, const std::vector<int>& targets,
              const MambaRunOptions& opt = {}) const;

  // (G18) ℓ as loss() and its gradient with respect to every parameter, written to grads
  // (resized to the weights' shapes and overwritten, not accumulated): dlogits = (softmax −
  // onehot)/n on kept positions, the head, the final norm (G14), the blocks last to first (G17),
  // the embedding's rows scatter-added; a tied embedding adds the head's gradient.
  // Cost: logits() once, then per block the backward (mamba_block_backward without its
  // recompute: the forward keeps every block's activations): about 3–5× logits() (estimated
  // from the flop counts).
  // Memory beyond the weights and grads: the input and the activations of every block
  // (n_layers·L·(2·d_model + 7·d_inner + dt_rank + 4N), listed at mamba_block_backward) and the
  // final norm's input, the final norm's output and its gradient (3·L·d_model), the logits and
  // their gradient (2·L·vocab), and one block's gradient scratch at a time: O(n_layers·L·(d_model
  // + d_inner + N)), still never O(L·d_inner·N).
  // Throws Error when tokens is empty, targets' size differs, a token is outside [0, vocab), a
  // target outside [−1, vocab), every target is −1, or a weight has a wrong shape / non-finite
  // value.
  double loss_and_grad(const std::vector<int>& tokens, const std::vector<int>& targets,
                       MambaLMWeights<T>& grads, const MambaRunOptions& opt = {}) const;

 private:
  // What the calls derive from validated weights: per block the scan's parameters (M1, M6).
  struct Prepared {
    std::vector<ScanParams<T>> scan;
  };
  // Checks tokens (and targets), and the weights when they changed (cache_); Error as listed.
  std::shared_ptr<const Prepared> check(const std::vector<int>& tokens,
                                        const std::vector<int>* targets) const;
  // Every block's input and forward activations (defined in grad_mamba.cpp).
  struct Kept;
  // Embedding and blocks: xf = the final norm's input (L, d_model); keep, when not null,
  // receives what the backward needs of every block.
  void body(const std::vector<int>& tokens, Signals<T>& xf, Kept* keep, const Prepared& prep,
            const MambaRunOptions& opt) const;
  const MatT<T>& head() const { return tied() ? w_.embedding : w_.lm_head; }
  MambaConfig cfg_;
  MambaLMWeights<T> w_;
  WeightsCache<Prepared> cache_;
};

}  // namespace ssm
