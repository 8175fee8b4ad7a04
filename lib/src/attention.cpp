// Stage 9: attention and its KV cache (docs/MATH.md, X5). See ssm/attention.hpp for the math.
#include "ssm/attention.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <string>

namespace ssm {

namespace {

std::string str(long long v) { return std::to_string(v); }

template <class T>
void check_qkv(const Signals<T>& q, const Signals<T>& k, const Signals<T>& v, int heads,
               const char* who) {
  const std::string w = who;
  require(heads >= 1, w + ": heads = " + str(heads) + ", expected ≥ 1");
  require(q.rows() == k.rows() && k.rows() == v.rows(),
          w + ": q, k, v have " + str(q.rows()) + ", " + str(k.rows()) + ", " + str(v.rows()) +
              " tokens, expected the same number");
  require(q.cols() == k.cols(), w + ": q has " + str(q.cols()) + " columns and k " +
                                    str(k.cols()) + ", expected the same (heads·d_k)");
  require(q.cols() % heads == 0 && v.cols() % heads == 0 && q.cols() > 0 && v.cols() > 0,
          w + ": heads = " + str(heads) + " does not divide the widths of q (" + str(q.cols()) +
              ") and v (" + str(v.cols()) + ")");
}

}  // namespace

template <class T>
void causal_attention(const Signals<T>& q, const Signals<T>& k, const Signals<T>& v, int heads,
                      Signals<T>& y) {
  check_qkv(q, k, v, heads, "causal_attention");
  const Eigen::Index L = q.rows(), dk = q.cols() / heads, dv = v.cols() / heads;
  const T scale = T(1) / std::sqrt(T(dk));
  y.setZero(L, v.cols());
  for (int h = 0; h < heads; ++h) {
    // Scores of every (t, s) for this head, then a row-wise softmax over s ≤ t.
    Signals<T> S = (q.middleCols(h * dk, dk) * k.middleCols(h * dk, dk).transpose()) * scale;
    for (Eigen::Index t = 0; t < L; ++t) {
      auto r = S.row(t).head(t + 1).array();
      r = (r - r.maxCoeff()).exp();  // largest term e^0 = 1: no overflow
      r /= r.sum();
      S.row(t).tail(L - t - 1).setZero();
    }
    y.middleCols(h * dv, dv) = S * v.middleCols(h * dv, dv);
  }
}

template <class T>
void linear_attention(const Signals<T>& q, const Signals<T>& k, const Signals<T>& v, int heads,
                      Signals<T>& y) {
  check_qkv(q, k, v, heads, "linear_attention");
  const Eigen::Index dk = q.cols() / heads, dv = v.cols() / heads;
  y.setZero(q.rows(), v.cols());
  for (int h = 0; h < heads; ++h) {
    Signals<T> S = q.middleCols(h * dk, dk) * k.middleCols(h * dk, dk).transpose();
    S.template triangularView<Eigen::StrictlyUpper>().setZero();  // causal: s ≤ t only
    y.middleCols(h * dv, dv) = S * v.middleCols(h * dv, dv);
  }
}

template <class T>
KVCache<T>::KVCache(int heads, int d_k, int d_v) : heads_(heads), dk_(d_k), dv_(d_v) {
  require(heads >= 1 && d_k >= 1 && d_v >= 1,
          "KVCache: heads, d_k, d_v = " + str(heads) + ", " + str(d_k) + ", " + str(d_v) +
              ", expected all ≥ 1");
}

template <class T>
void KVCache<T>::append(const T* k, const T* v) {
  k_.insert(k_.end(), k, k + std::size_t(heads_) * dk_);
  v_.insert(v_.end(), v, v + std::size_t(heads_) * dv_);
  ++n_;
}

template <class T>
void KVCache<T>::reserve(std::size_t tokens) {
  k_.reserve(tokens * std::size_t(heads_) * dk_);
  v_.reserve(tokens * std::size_t(heads_) * dv_);
}

template <class T>
void KVCache<T>::truncate(std::size_t tokens) {
  require(tokens <= n_, "KVCache: cannot truncate " + str((long long)n_) + " tokens to " +
                            str((long long)tokens));
  n_ = tokens;
  k_.resize(tokens * std::size_t(heads_) * dk_);  // capacity kept: bytes() still counts it
  v_.resize(tokens * std::size_t(heads_) * dv_);
}

template <class T>
AttentionLayer<T>::AttentionLayer(int d_model, int heads, std::uint64_t seed)
    : dm_(d_model), heads_(heads) {
  require(d_model >= 1 && d_model <= 8192,
          "attention: d_model = " + str(d_model) + ", expected 1 ≤ d_model ≤ 8192");
  require(heads >= 1 && d_model % heads == 0,
          "attention: heads = " + str(heads) + " must be ≥ 1 and divide d_model = " + str(d_model));
  std::mt19937_64 rng(mix_seed(seed, 600));
  std::uniform_real_distribution<double> u(-1.0 / std::sqrt(double(d_model)),
                                           1.0 / std::sqrt(double(d_model)));
  for (MatT<T>* W : {&Wq_, &Wk_, &Wv_, &Wo_}) {
    W->resize(d_model, d_model);
    for (Eigen::Index j = 0; j < d_model; ++j)
      for (Eigen::Index i = 0; i < d_model; ++i) (*W)(i, j) = static_cast<T>(u(rng));
  }
}

template <class T>
void AttentionLayer<T>::attend(const Signals<T>& q, std::size_t first, const KVCache<T>& cache,
                               Signals<T>& y) const {
  const int dh = dm_ / heads_;
  const T scale = T(1) / std::sqrt(T(dh));
  y.setZero(q.rows(), dm_);
  // The cache as matrices (tokens, d_model): keys and values of every cached token.
  const Eigen::Map<const Signals<T>> K(cache.key(0), Eigen::Index(cache.size()), dm_);
  const Eigen::Map<const Signals<T>> V(cache.value(0), Eigen::Index(cache.size()), dm_);
  Eigen::Matrix<T, Eigen::Dynamic, 1> s;
  for (Eigen::Index r = 0; r < q.rows(); ++r) {
    const Eigen::Index n = Eigen::Index(first) + r + 1;  // tokens visible to this query
    for (int h = 0; h < heads_; ++h) {
      s.noalias() = K.topRows(n).middleCols(h * dh, dh) * q.row(r).segment(h * dh, dh).transpose();
      s = ((s.array() - s.maxCoeff()) * scale).exp().matrix();  // softmax with the max removed
      s /= s.sum();
      y.row(r).segment(h * dh, dh).noalias() = s.transpose() * V.topRows(n).middleCols(h * dh, dh);
    }
  }
}

template <class T>
void AttentionLayer<T>::forward(const Signals<T>& U, Signals<T>& Y, KVCache<T>* cache) const {
  require(U.cols() == dm_, "attention forward: input has " + str(U.cols()) +
                               " features per token, expected d_model = " + str(dm_));
  require(U.rows() >= 1, "attention forward: L = 0 tokens (expected at least 1)");
  const Signals<T> q = U * Wq_.transpose(), k = U * Wk_.transpose(), v = U * Wv_.transpose();
  Signals<T> a;
  if (!cache) {
    causal_attention(q, k, v, heads_, a);  // (X5): all tokens at once
  } else {
    require(
        cache->heads() == heads_ && cache->d_k() == dm_ / heads_ && cache->d_v() == dm_ / heads_,
        "attention forward: the cache was made for another layer shape");
    const std::size_t first = cache->size();
    for (Eigen::Index t = 0; t < U.rows(); ++t) cache->append(&k(t, 0), &v(t, 0));
    attend(q, first, *cache, a);
  }
  Y = a * Wo_.transpose();
}

template <class T>
void AttentionLayer<T>::step(const T* u, T* y, KVCache<T>& cache) const {
  require(cache.heads() == heads_ && cache.d_k() == dm_ / heads_ && cache.d_v() == dm_ / heads_,
          "attention step: the cache was made for another layer shape");
  const Eigen::Map<const Signals<T>> U(u, 1, dm_);
  const Signals<T> q = U * Wq_.transpose(), k = U * Wk_.transpose(), v = U * Wv_.transpose();
  const std::size_t first = cache.size();
  cache.append(k.data(), v.data());
  Signals<T> a;
  attend(q, first, cache, a);
  Eigen::Map<Signals<T>>(y, 1, dm_) = a * Wo_.transpose();
}

#define SSM_ATTN_INSTANTIATE(T)                                                                \
  template void causal_attention<T>(const Signals<T>&, const Signals<T>&, const Signals<T>&,   \
                                    int, Signals<T>&);                                         \
  template void linear_attention<T>(const Signals<T>&, const Signals<T>&, const Signals<T>&,   \
                                    int, Signals<T>&);                                         \
  template class KVCache<T>;                                                                   \
  template class AttentionLayer<T>;
SSM_ATTN_INSTANTIATE(float)
SSM_ATTN_INSTANTIATE(double)
#undef SSM_ATTN_INSTANTIATE

}  // namespace ssm
