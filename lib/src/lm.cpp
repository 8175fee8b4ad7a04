// lm.cpp — the pieces every language model of stage 8b shares: the token checks and the
// softmax cross-entropy (G18).
#include "ssm/lm.hpp"

#include <algorithm>
#include <cmath>
#include <exception>

namespace ssm {

void check_tokens(const std::string& who, int vocab, const std::vector<int>& tokens,
                  const std::vector<int>* targets) {
  // The messages are built only on failure (this runs once per sequence in training).
  require(!tokens.empty(), [&] { return who + ": tokens is empty (expected at least 1 token)"; });
  for (std::size_t t = 0; t < tokens.size(); ++t)
    require(tokens[t] >= 0 && tokens[t] < vocab, [&] {
      return who + ": tokens[" + std::to_string(t) + "] = " + std::to_string(tokens[t]) +
             " is outside [0, vocab = " + std::to_string(vocab) + ")";
    });
  if (!targets) return;
  require(targets->size() == tokens.size(), [&] {
    return who + ": targets has " + std::to_string(targets->size()) + " entries, expected " +
           std::to_string(tokens.size()) + " (one per token)";
  });
  bool any = false;
  for (std::size_t t = 0; t < targets->size(); ++t) {
    const int y = (*targets)[t];
    require(y >= -1 && y < vocab, [&] {
      return who + ": targets[" + std::to_string(t) + "] = " + std::to_string(y) +
             " is outside [-1, vocab = " + std::to_string(vocab) + ") (-1 = ignored)";
    });
    any = any || y >= 0;
  }
  require(any, [&] { return who + ": every target is -1 (ignored); need at least one target"; });
}

// (G18) Mean cross-entropy over the kept positions, by a stable log-softmax (max subtracted
// before exp); with dlogits, also ∂ℓ/∂logits = (softmax − onehot(target)) / n on kept rows, 0
// on ignored ones.
template <class T>
double softmax_cross_entropy(const Signals<T>& logits, const std::vector<int>& targets,
                             Signals<T>* dlogits) {
  const Eigen::Index L = logits.rows(), V = logits.cols();
  require(std::size_t(L) == targets.size(), [&] {
    return "cross-entropy: logits have " + std::to_string(L) + " rows, targets " +
           std::to_string(targets.size()) + " entries";
  });
  const double n =
      double(std::count_if(targets.begin(), targets.end(), [](int y) { return y >= 0; }));
  require(n > 0, "cross-entropy: every target is -1 (ignored); need at least one target");
  if (dlogits) dlogits->setZero(L, V);
  double sum = 0;
  for (Eigen::Index t = 0; t < L; ++t) {
    const int y = targets[std::size_t(t)];
    if (y < 0) continue;
    require(y < V, [&] {
      return "cross-entropy: target " + std::to_string(y) + " is outside [-1, vocab = " +
             std::to_string(V) + ")";
    });
    const double m = double(logits.row(t).maxCoeff());
    double se = 0;
    for (Eigen::Index v = 0; v < V; ++v) se += std::exp(double(logits(t, v)) - m);
    const double lse = m + std::log(se);
    sum += lse - double(logits(t, y));
    if (dlogits) {
      for (Eigen::Index v = 0; v < V; ++v)
        (*dlogits)(t, v) = T(std::exp(double(logits(t, v)) - lse) / n);
      (*dlogits)(t, y) -= T(1.0 / n);
    }
  }
  return sum / n;
}

void parallel_for(int n, int threads, const std::function<void(int)>& f) {
  std::exception_ptr err;
#pragma omp parallel for num_threads(std::max(1, threads)) schedule(static)
  for (int i = 0; i < n; ++i) {
    try {
      f(i);
    } catch (...) {
#pragma omp critical
      if (!err) err = std::current_exception();
    }
  }
  if (err) std::rethrow_exception(err);
}

template <class T>
void LanguageModel<T>::batch_loss_and_grad(const std::vector<std::vector<int>>& tokens,
                                           const std::vector<std::vector<int>>& targets,
                                           std::vector<double>& losses, std::vector<T>& grad,
                                           int threads) const {
  const int B = check_batch(kind(), tokens, targets);
  seq_grads_.with([&](std::vector<std::vector<T>>& g) {
    g.resize(std::size_t(B));
    losses.resize(std::size_t(B));
    parallel_for(B, threads, [&](int b) {
      const auto i = std::size_t(b);
      losses[i] = loss_and_grad(tokens[i], targets[i], g[i], 1);
    });
    grad = g[0];  // Σ_b in sequence order: the same bits on any number of threads
    for (int b = 1; b < B; ++b) {
      const auto& x = g[std::size_t(b)];
      for (std::size_t k = 0; k < grad.size(); ++k) grad[k] += x[k];
    }
  });
}

int check_batch(const std::string& who, const std::vector<std::vector<int>>& tokens,
                const std::vector<std::vector<int>>& targets) {
  require(!tokens.empty(), [&] { return who + ": the batch is empty (expected >= 1 sequence)"; });
  require(tokens.size() == targets.size(), [&] {
    return who + ": the batch has " + std::to_string(tokens.size()) + " token sequences and " +
           std::to_string(targets.size()) + " target sequences";
  });
  require(tokens.size() <= std::size_t(1) << 30, [&] { return who + ": the batch is too large"; });
  return static_cast<int>(tokens.size());
}

template class LanguageModel<float>;
template class LanguageModel<double>;

template double softmax_cross_entropy<float>(const Signals<float>&, const std::vector<int>&,
                                             Signals<float>*);
template double softmax_cross_entropy<double>(const Signals<double>&, const std::vector<int>&,
                                              Signals<double>*);

}  // namespace ssm
