// ssm/attention.hpp — stage 9: attention beside the SSM (docs/MATH.md, X5).
//
//   (X5) causal softmax attention, per head with key size d_k:
//          y_t = Σ_{s≤t} softmax_s(q_t·k_s / √d_k) v_s
//        linear attention, the same without the softmax:
//          y_t = Σ_{s≤t} (q_t·k_s) v_s = S_tᵀ q_t,   S_t = S_{t−1} + k_t v_tᵀ
//        which is the SSD recurrence (X1) with a = 1 (A = 0), Δ = 1, C = q, B = k, x = v.
//
// Intuition. Attention compares the new token with every past one, so generating token L+1
// needs all L past keys and values: the KV cache, 2·L·d_model numbers per layer, growing with
// the context, and O(L·d_model) work per token. A recurrent model compresses the past into a
// state of fixed size (Mamba-1: d_inner·N, Mamba-2: heads·P·N): the same memory and the same
// work per token at any L, at the price of having to choose what to keep (selection). Linear
// attention sits between them: it drops the softmax, and then its "KV cache" folds into a
// d_k×d_v state — it is an SSM that never forgets (a = 1); Mamba-2 adds the forgetting.
//
// Shapes: q, k (L, heads·d_k), v, y (L, heads·d_v), one token per row (Signals<T>, row-major),
// head h in columns [h·d, (h+1)·d).
#pragma once

#include <cstdint>
#include <vector>

#include "ssm/core.hpp"
#include "ssm/recurrent.hpp"  // MatT, VecT

namespace ssm {

// (X5) Causal softmax attention over all L tokens at once (prefill), scale 1/√d_k, the softmax
// computed with its row maximum subtracted (no overflow). O(L²·heads·(d_k + d_v)). Throws Error
// for heads < 1, widths not divisible by heads, or differing row counts.
template <class T>
void causal_attention(const Signals<T>& q, const Signals<T>& k, const Signals<T>& v, int heads,
                      Signals<T>& y);

// (X5) Causal linear attention in its quadratic form: (q kᵀ masked to s ≤ t) v per head, an
// independent computation from the recurrence it equals. O(L²·heads·(d_k + d_v)).
template <class T>
void linear_attention(const Signals<T>& q, const Signals<T>& k, const Signals<T>& v, int heads,
                      Signals<T>& y);

// Attention's step-mode state: every past key and value of one layer, token after token
// (row t of keys() is k_t). bytes() is the storage the cache holds (its capacity), measured from
// the container rather than computed from the formula 2·L·d_model·sizeof(T).
template <class T>
class KVCache {
 public:
  KVCache(int heads, int d_k, int d_v);
  void append(const T* k, const T* v);       // one token: heads·d_k and heads·d_v values
  void reserve(std::size_t tokens);          // room for this many tokens without reallocating
  void truncate(std::size_t tokens);         // forget every token from `tokens` on (≤ size())
  void clear() { truncate(0); }
  std::size_t size() const { return n_; }    // tokens held
  std::size_t bytes() const { return (k_.capacity() + v_.capacity()) * sizeof(T); }
  int heads() const { return heads_; }
  int d_k() const { return dk_; }
  int d_v() const { return dv_; }
  const T* key(std::size_t t) const { return &k_[t * std::size_t(heads_ * dk_)]; }
  const T* value(std::size_t t) const { return &v_[t * std::size_t(heads_ * dv_)]; }

 private:
  int heads_, dk_, dv_;
  std::size_t n_ = 0;
  std::vector<T> k_, v_;  // (tokens, heads·d_k), (tokens, heads·d_v)
};

// One causal multi-head self-attention layer, d_model → d_model: q, k, v = u W_{q,k,v}ᵀ, then
// (X5) per head (d_k = d_v = d_model / heads), then y W_oᵀ. The minimal layer the comparison
// needs: no positional encoding, no norm, no MLP (none of them changes the cache's size).
// Weights uniform in ±1/√d_model (PyTorch's Linear) from the seed.
template <class T>
class AttentionLayer {
 public:
  // d_model in [1, 8192]; heads ≥ 1 dividing d_model (Error names "heads" otherwise).
  AttentionLayer(int d_model, int heads, std::uint64_t seed);
  int d_model() const { return dm_; }
  int heads() const { return heads_; }

  // Prefill: U (L, d_model) → Y (L, d_model), all tokens at once. When `cache` is given (made
  // by make_cache(), possibly holding earlier tokens) the L keys and values are appended to it
  // and attention looks back over the cached tokens too. O(L·(L + cached)·d_model + L·d_model²).
  void forward(const Signals<T>& U, Signals<T>& Y, KVCache<T>* cache = nullptr) const;
  // Step: one token (d_model values) in, one out; its key and value are appended to the cache
  // and it attends over all of them. O(cache·d_model + d_model²).
  void step(const T* u, T* y, KVCache<T>& cache) const;
  KVCache<T> make_cache() const { return KVCache<T>(heads_, dm_ / heads_, dm_ / heads_); }

 private:
  // Attention of `rows` queries (row r sits at position first + r) over the cache's tokens
  // [0, first + r] — causal — into y (rows, d_model).
  void attend(const Signals<T>& q, std::size_t first, const KVCache<T>& cache, Signals<T>& y) const;
  int dm_, heads_;
  MatT<T> Wq_, Wk_, Wv_, Wo_;  // (d_model, d_model), (out, in)
};

}  // namespace ssm
