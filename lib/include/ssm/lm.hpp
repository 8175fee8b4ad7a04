// ssm/lm.hpp — stage 8b, learning: what a trainable language model is to the trainer
// (ssm/train.hpp), whatever its layer: the Mamba block (grad_mamba.hpp) or S4D (s4d_lm.hpp).
//
// Every model here is the same stack (docs/MATH.md, T1):
//   tokens → embedding → n_layers residual layers x ← x + layer(RMSNorm(x)) → final RMSNorm
//          → logits = h_f Hᵀ (H the LM head, or the embedding when tied) → softmax
// and differs only in the layer. The trainer sees a model as a list of flat parameter arrays
// (params()), a function returning the loss of one sequence and its gradient with respect to
// all of them, concatenated in params() order (loss_and_grad), and a recurrent evaluator that
// takes one token at a time (stepper(): a state of fixed size for an SSM; an attention model
// would carry a growing KV cache here) — the form in which a model trained at length L is run at 64·L.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ssm/core.hpp"  // Signals

namespace ssm {

// One parameter array seen flat (column-major for MatT, the storage order), so a trainer (AdamW
// over all parameters) loops over the views of the weights and of the gradients side by side.
// weight_decay is the usual hint: true for the matrices (embedding, lm_head, projections,
// convolution filters), false for biases, norms, D, A_log, Λ and Δ (kept out of weight decay,
// as Mamba and S4 do).
template <class T>
struct ParamView {
  std::string name;  // "embedding", "layers.0.in_proj", …, "norm_f", "lm_head"
  T* data = nullptr;
  std::size_t size = 0;
  bool weight_decay = false;
};

// (G18) Mean softmax cross-entropy over the positions with targets[t] ≥ 0 (−1 = ignored):
//   ℓ = (1/n) Σ_{t: y_t ≥ 0} (logsumexp(logits_t) − logits_{t, y_t}),
// by a stable log-softmax (the row maximum subtracted before exp), summed in double. With
// dlogits, also writes ∂ℓ/∂logits = (softmax − onehot(y))/n on kept rows and 0 on ignored ones
// (resized to logits' shape). logits (L, vocab); targets (L) in [−1, vocab) with at least one
// ≥ 0 (Error otherwise). O(L·vocab).
template <class T>
double softmax_cross_entropy(const Signals<T>& logits, const std::vector<int>& targets,
                             Signals<T>* dlogits = nullptr);

// Buffers a model keeps between calls: a training step's scratch, which, allocated afresh at
// every step, would cost page faults (large blocks go back to the system when freed and fault
// in again). One call at a time uses them: with(f) runs f(V&) under the mutex, the V made on
// first use. A copied model starts with none. V may be incomplete where this is declared (it is
// made, and its deleter fixed, where with() is instantiated).
template <class V>
class KeptBuffers {
 public:
  KeptBuffers() = default;
  KeptBuffers(const KeptBuffers&) {}
  KeptBuffers& operator=(const KeptBuffers&) { return *this; }
  template <class F>
  decltype(auto) with(F&& f) const {
    std::lock_guard<std::mutex> lock(m_);
    if (!v_) v_ = std::make_shared<V>();
    return f(*v_);
  }

 private:
  mutable std::mutex m_;
  mutable std::shared_ptr<V> v_;
};

// Recurrent evaluation: one token in, the logits of the next one out.
template <class T>
class LMStepper {
 public:
  virtual ~LMStepper() = default;
  virtual void reset() = 0;                     // back to the empty context
  virtual void step(int token, T* logits) = 0;  // writes vocab() values
  // Bytes the state holds now: constant in the number of tokens seen for an SSM, growing
  // linearly for an attention model's KV cache (measured from the containers' capacities).
  virtual std::size_t state_bytes() const = 0;
};

// The trainer's view of a model. Implementations: MambaLanguageModel (train.cpp, around
// MambaLM), S4DLM (s4d_lm.hpp).
template <class T>
class LanguageModel {
 public:
  virtual ~LanguageModel() = default;
  virtual std::string kind() const = 0;  // "mamba", "s4d"
  // One line for logs and JSON, e.g. "mamba: d_model 64, 2 layers, N 16, vocab 16, tied".
  virtual std::string describe() const = 0;
  virtual int vocab() const = 0;

  // Every parameter array, always in the same order and with unique names. The pointers stay
  // valid as long as the model lives (the arrays are never resized after construction).
  virtual std::vector<ParamView<T>> params() = 0;

  // Logits (L, vocab) of one sequence, all tokens at once (the training-time form: the scan
  // or the FFT convolution).
  virtual void logits(const std::vector<int>& tokens, Signals<T>& out, int threads = 1) const = 0;

  // (G18) The loss of one sequence (softmax_cross_entropy of logits(tokens) against targets)
  // and its gradient with respect to every parameter, written to grad (resized to the sum of
  // params()' sizes and overwritten), the arrays concatenated in params() order. Reads the
  // weights only: it may run concurrently on one model from several threads (the trainer
  // splits a mini-batch across threads so). Throws Error on a token outside [0, vocab), a
  // target outside [−1, vocab), sizes that differ, or no kept target.
  virtual double loss_and_grad(const std::vector<int>& tokens, const std::vector<int>& targets,
                               std::vector<T>& grad, int threads = 1) const = 0;

  // (G18) A mini-batch: losses[b] (resized) = the loss of sequence b, grad (resized, overwritten)
  // = Σ_b its gradient, in params() order; the work spread over `threads` threads. The sum runs
  // in a fixed order, so the bits do not depend on the number of threads. This default runs
  // loss_and_grad once per sequence, in parallel, and sums in sequence order (keeping one
  // gradient per sequence, under a mutex: one batch at a time per model). A model whose
  // sequences can share work overrides it: S4DLM runs a group of sequences as one (H, group·L)
  // array, so one GEMM serves every token and the kernel's backward runs once per batch.
  // Throws as loss_and_grad does, and Error when tokens and targets differ in count or are empty.
  virtual void batch_loss_and_grad(const std::vector<std::vector<int>>& tokens,
                                   const std::vector<std::vector<int>>& targets,
                                   std::vector<double>& losses, std::vector<T>& grad,
                                   int threads = 1) const;

  // A fresh recurrent evaluator of the current weights (it copies or refers to them; the model
  // must outlive it and not change while it runs). Step t's logits equal row t of logits() of
  // the same tokens, to rounding (tested for each model).
  virtual std::unique_ptr<LMStepper<T>> stepper() const = 0;

  // Σ params()' sizes.
  std::size_t num_params() {
    std::size_t n = 0;
    for (const auto& p : params()) n += p.size;
    return n;
  }

 private:
  // The per-sequence gradients of the default batch_loss_and_grad (KeptBuffers, below).
  KeptBuffers<std::vector<std::vector<T>>> seq_grads_;
};

// Runs f(i) for i in [0, n) on `threads` OpenMP threads (static schedule); rethrows the first
// exception once all have stopped.
void parallel_for(int n, int threads, const std::function<void(int)>& f);

// Something a model derives from its weights (that they passed validation, A = −exp(A_log),
// the weights in double, the S4D kernels K̄ and their spectra, FFTW plans, …), made once per
// change of the weights instead of once per sequence. The cache keeps a copy of the weights'
// bits beside the value; get() compares the current arrays with that copy (memcmp, O(parameters)
// bytes: microseconds at the trainer's sizes) and calls build() only when a bit, an array's
// size or the key (a sequence length, say) differs. So whoever changes a weight — AdamW through
// params(), a test through weights() or through a pointer kept from an earlier params() — is
// seen at the next call, with no flag to set and no call to forget; a build that throws (a
// non-finite weight) remembers nothing, so the next call validates again.
// Thread-safe: the value is immutable and shared (a caller keeps its shared_ptr for the whole
// call); build() runs under the cache's mutex, once per change (other callers wait for it).
// Copying a cache gives an empty one (a copied model builds its own).
// Memory: the weights' bytes once more, plus the value.
template <class V>
class WeightsCache {
 public:
  struct Span {
    const void* data;
    std::size_t bytes;
  };
  WeightsCache() = default;
  WeightsCache(const WeightsCache&) {}
  WeightsCache& operator=(const WeightsCache&) {
    std::lock_guard<std::mutex> lock(m_);
    e_.reset();
    return *this;
  }

  template <class Build>
  std::shared_ptr<const V> get(const std::vector<Span>& arrays, std::size_t key,
                               Build&& build) const {
    std::shared_ptr<const Entry> e;
    {
      std::lock_guard<std::mutex> lock(m_);
      e = e_;
    }
    if (e && matches(*e, arrays, key)) return e->value;
    std::lock_guard<std::mutex> lock(m_);
    if (e_ && matches(*e_, arrays, key)) return e_->value;  // another caller built it meanwhile
    auto n = std::make_shared<Entry>();
    n->value = build();  // may throw: nothing is remembered
    n->key = key;
    for (const Span& a : arrays) {
      n->sizes.push_back(a.bytes);
      const auto* p = static_cast<const unsigned char*>(a.data);
      n->bits.insert(n->bits.end(), p, p + a.bytes);
    }
    e_ = n;
    return n->value;
  }

 private:
  struct Entry {
    std::size_t key = 0;
    std::vector<std::size_t> sizes;
    std::vector<unsigned char> bits;
    std::shared_ptr<const V> value;
  };
  static bool matches(const Entry& e, const std::vector<Span>& arrays, std::size_t key) {
    if (e.key != key || e.sizes.size() != arrays.size()) return false;
    std::size_t off = 0;
    for (std::size_t i = 0; i < arrays.size(); ++i) {
      if (e.sizes[i] != arrays[i].bytes) return false;
      if (arrays[i].bytes && std::memcmp(e.bits.data() + off, arrays[i].data, arrays[i].bytes))
        return false;
      off += arrays[i].bytes;
    }
    return true;
  }
  mutable std::mutex m_;
  mutable std::shared_ptr<const Entry> e_;
};

// Shared by the models: the embedding lookup x_t = E[token_t] (E (vocab, d_model) column-major
// MatT stored as Eigen::Matrix<T, Dynamic, Dynamic>) and its scatter-add backward are in each
// model; the checks below are common.
// Throws Error("<who>: token 17 at position 3 is outside [0, vocab 16)") and the like for the
// conditions loss_and_grad lists; targets may be null (logits only).
void check_tokens(const std::string& who, int vocab, const std::vector<int>& tokens,
                  const std::vector<int>* targets);
// batch_loss_and_grad's count check: ≥ 1 sequence, as many target sequences as token ones.
// Returns the count.
int check_batch(const std::string& who, const std::vector<std::vector<int>>& tokens,
                const std::vector<std::vector<int>>& targets);

}  // namespace ssm
