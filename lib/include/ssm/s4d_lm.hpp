// ssm/s4d_lm.hpp — stage 8b, learning: a language model whose layer is S4D (the LTI baseline of
// the Mamba paper's Table 1), trained end to end by the exact backward of stage 8a.
//
// The stack is the one every model of ssm/lm.hpp shares (docs/MATH.md, T1):
//   x = E[token] → n_layers residual layers x ← x + layer(RMSNorm(x)) → final RMSNorm
//                → logits = h_f Hᵀ (H = lm_head, or E when tied) → softmax cross-entropy (G18)
// and the layer is S4D without a gate ("no gate", the S4 baseline of the Mamba paper), read
// forward as (T2; shapes per sequence of L tokens, H = d_model channels, Nh = N/2 modes):
//   h = RMSNorm(x)·norm_w               (L, H)
//   u = hᵀ                              (H, L)   one channel per row (stage 6's layout)
//   λ_n = −exp(log_neg_re_n) + i·lambda_im_n,  B̃_n = B_re_n + i·B_im_n     (Nh), shared
//   C̃_h = C_re_h + i·C_im_h (Nh),  Δ_h = exp(log_dt_h),  D_h                 per channel
//   K̄_h,k = 2 Re Σ_n C̃_h,n B̄_h,n Ā_h,n^k,  Ā = e^{Δλ}, B̄ = (Ā − 1)/λ · B̃    (Q1, ZOH)
//   y_h = K̄_h * u_h + D_h u_h            (H, L)   FFT convolution (K2)
//   g = GELU(yᵀ)                        (L, H)   the exact (erf) GELU: y·Φ(y)
//   out = g W_outᵀ + b_out              (L, H)   W_out (H, H) as PyTorch's Linear
// and the backward walks it in reverse: the linear layer (G15), GELU' = Φ(y) + y·φ(y), the
// convolution (G11), the kernel (G12, G13: grad_s4.hpp), RMSNorm (G14), the residual sum; a
// complex parameter's gradient is ∂/∂a + i∂/∂b (grad_s4.hpp), so the real and imaginary arrays
// take its real and imaginary parts, and the chain rule through the exponentials gives
//   ∂ℓ/∂log_neg_re_n = Re(∂ℓ/∂λ_n) · Re λ_n,     ∂ℓ/∂log_dt_h = Δ_h ∂ℓ/∂Δ_h.
// Re λ = −exp(·) keeps every mode stable (|Ā| < 1) whatever step the optimizer takes; Im λ, B̃,
// C̃, D are free. The recurrent form (the stepper) is the same layer token by token:
//   s_h,n ← Ā_h,n s_h,n + B̄_h,n u_t,h,   y_t,h = 2 Re Σ_n C̃_h,n s_h,n + D_h u_t,h
// with a state of H·Nh complex numbers per layer, whatever the number of tokens seen.
//
// Initialization (the seed fixes every array): Λ S4D-Lin (Q2: λ_n = −½ + iπn, so log_neg_re =
// log ½, lambda_im = πn); B̃ = 1; C̃ complex normal with E|C̃|² = 1 (real and imaginary parts
// N(0, ½): S4's torch.randn(cfloat), s4::random_C); log Δ uniform in [log dt_min, log dt_max]
// per channel (S4's); D ~ N(0, 1) (S4's torch.randn); W_out, b_out and an untied lm_head
// uniform in ±1/√d_model (PyTorch's Linear); embedding ~ N(0, 0.02²) (as MambaLM); norms = 1.
//
// Precision: the parameters are stored in T (the trainer's float or double). logits(),
// loss_and_grad() and the stepper convert them to double and run in double, rounding the
// outputs to T at the end; batch_loss_and_grad() (the trainer's path) runs its batched pass in
// T (a float model in float: 5.8e-7 from the double path, tested), the kernel and its backward
// in double always (stage 6's S4D kernel backward is double only). T = double is exact enough
// for finite differences.
//
// Once per change of the weights: what depends only on the weights and the length L — their
// validation, the weights in double, each layer's SSM, its kernels K̄ (Q1) and their spectra,
// the FFTW plans of length L — is made by the first call after a change and kept (lm.hpp's
// WeightsCache, which compares the weights' bits with a copy at every call, so an edit through
// weights() or a kept params() pointer is always seen). A trainer's batch pays for it once per
// optimizer step, not once per sequence.
//
// Costs per sequence (H = d_model, Nh = d_state/2, V = vocab, n = n_layers):
//   after a change of the weights or of L, once: the validation O(parameters), per layer the
//             kernels O(H·Nh·L) and their FFTs O(H·L log L), the FFTW plans.
//   every call: a compare of the weights with the cache's copy, O(parameters) bytes.
//   logits(): per layer the FFT convolution with the kept spectra O(H·L log L), the output
//             projection O(L·H²); the head O(L·V·H). Memory O(L·(H + V)) beside the weights.
//   loss_and_grad(): the forward once, keeping per layer its input, u, y, Φ(y) and g
//             (5·L·H doubles: n·5·L·H in all, nothing is recomputed), then per layer two GEMMs
//             (2·L·H² multiply-adds), the convolution's backward (conv_backward: one FFT
//             convolution with the kept spectra, one with u's), the kernel backward (two
//             Horner chains per mode: O(H·Nh·L), latency-bound complex recurrences) and
//             RMSNorm's O(L·H). Memory: n·5·L·H + O(L·(H + V)) doubles and the gradient.
//   kept by the model (the cache): the weights' bits, the weights in double and, per layer,
//             K̄'s spectra (≈ H·M doubles, M = fft_size(2L − 1) ≈ 2L): O(parameters + n·H·L).
//   batch_loss_and_grad(), B sequences of L ≤ 128 tokens: per layer 3 GEMMs of B·L·H² each,
//             the convolution's sums 3·B·H·L(L+1)/2 multiply-adds, the kernel backward once
//             O(H·Nh·L); memory per group of 8 in flight n·4·8L·H values, kept between calls.
//   stepper(): O(n·(H·Nh + H²) + V·H) per token, a state of n·H·Nh complex doubles.
// Thread safety: every call reads the weights only; the cache is built under its own mutex
// (the FFTW plans under the planner mutex of convolution.hpp) and then only read, and FFTW
// executes plans from many threads, so loss_and_grad may run on one model from many threads.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ssm/lm.hpp"
#include "ssm/recurrent.hpp"  // MatT, VecT

namespace ssm {

namespace detail {
struct S4DPrepared;  // s4d_lm.cpp: what the sequences of one length share (S4DLM::cache_)
template <class T>
struct S4DBatchWork;  // s4d_lm.cpp: the batched pass's buffers (S4DLM::work_)
}

struct S4DLMConfig {
  int d_model = 64;   // H channels, in [1, 4096]
  int n_layers = 2;   // in [1, 64]
  int d_state = 64;   // N real states per channel, even, in [2, 4096]: Nh = N/2 complex modes
  double dt_min = 1e-3, dt_max = 1e-1;  // 0 < dt_min ≤ dt_max: the range of the initial Δ
  double rms_eps = 1e-5;                // RMSNorm's ε, finite and ≥ 0
  bool tied = true;                     // logits through the embedding (no lm_head)
  int modes() const { return d_state / 2; }
};
// Throws Error naming the first field out of range ("S4D LM: d_state = 5 must be even …").
void validate(const S4DLMConfig& c);

// One layer's parameters (params() exposes them flat under the same names).
template <class T>
struct S4DLayerWeights {
  VecT<T> norm_w;      // (H)      the pre-norm's weight
  VecT<T> log_neg_re;  // (Nh)     Re λ_n = −exp(log_neg_re_n)       shared by the channels
  VecT<T> lambda_im;   // (Nh)     Im λ_n
  VecT<T> B_re, B_im;  // (Nh)     B̃
  MatT<T> C_re, C_im;  // (H, Nh)  C̃, one row per channel
  VecT<T> log_dt;      // (H)      Δ_h = exp(log_dt_h)
  VecT<T> D;           // (H)      skip
  MatT<T> out_proj;    // (H, H)   W_out, (out, in)
  VecT<T> out_b;       // (H)      b_out
};

template <class T>
struct S4DLMWeights {
  MatT<T> embedding;                        // (vocab, H)
  std::vector<S4DLayerWeights<T>> layers;   // n_layers
  VecT<T> norm_f;                           // (H)
  MatT<T> lm_head;                          // (vocab, H); empty (0×0) when tied
};

// The same weights in another precision (a float model from a double one, or back).
template <class To, class From>
S4DLMWeights<To> cast_weights(const S4DLMWeights<From>& w);

template <class T>
class S4DLM : public LanguageModel<T> {
 public:
  // cfg validated (validate); vocab in [2, 2^20]. Initialized as the header says, from seed.
  S4DLM(const S4DLMConfig& cfg, int vocab, std::uint64_t seed);

  const S4DLMConfig& config() const { return cfg_; }
  bool tied() const { return cfg_.tied; }
  // The parameters, free to edit (a trainer's step, a test's perturbation) as long as the
  // shapes stay: a call after a change validates shapes and finite values (Error naming the
  // array); see "Once per change of the weights" above.
  S4DLMWeights<T>& weights() { return w_; }
  const S4DLMWeights<T>& weights() const { return w_; }

  std::string kind() const override { return "s4d"; }
  // "s4d: d_model 64, 2 layers, N 64 (32 complex modes), vocab 16, tied, no gate, GELU".
  std::string describe() const override;
  int vocab() const override { return static_cast<int>(w_.embedding.rows()); }
  // embedding, layers.l.{norm_w, log_neg_re, lambda_im, B_re, B_im, C_re, C_im, log_dt, D,
  // out_proj, out_b} for l = 0 …, norm_f, lm_head (untied only); weight decay on embedding,
  // out_proj and lm_head only.
  std::vector<ParamView<T>> params() override;
  // (T2, G18) Logits (L, vocab); threads: OpenMP threads of the kernels and convolutions.
  void logits(const std::vector<int>& tokens, Signals<T>& out, int threads = 1) const override;
  // (T2, G11–G15, G18) The loss and its gradient, concatenated in params() order (lm.hpp).
  double loss_and_grad(const std::vector<int>& tokens, const std::vector<int>& targets,
                       std::vector<T>& grad, int threads = 1) const override;
  // (T2, G11–G15, G18) A mini-batch (lm.hpp). Sequences of one length L ≤ 128 run in groups of
  // 8 as (H, 8·L) arrays in T: one GEMM per projection for all of a group's tokens, the
  // convolution as products with K̄'s Toeplitz matrices, the kernel's backward once per batch
  // (s4d_lm.cpp: "The batched pass"); other batches take the per-sequence path. Equal to the
  // sum of loss_and_grad over the sequences to rounding (tested); the same bits on any number of
  // threads (with Eigen's own threads at 1, as the trainer keeps them).
  void batch_loss_and_grad(const std::vector<std::vector<int>>& tokens,
                           const std::vector<std::vector<int>>& targets,
                           std::vector<double>& losses, std::vector<T>& grad,
                           int threads = 1) const override;
  // The recurrent form (T2), in double inside; the model must outlive it and not change.
  std::unique_ptr<LMStepper<T>> stepper() const override;

 private:
  S4DLMConfig cfg_;
  S4DLMWeights<T> w_;
  WeightsCache<detail::S4DPrepared> cache_;  // for the last weights and length seen
  // The batched pass's buffers, kept between calls (so a training step allocates nothing).
  KeptBuffers<detail::S4DBatchWork<T>> work_;
};

}  // namespace ssm
