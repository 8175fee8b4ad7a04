// Stage 9: attention beside the SSM (X5). Softmax attention against a plain loop; linear
// attention against its recurrence and against SSD with a = 1; the layer's step mode with its
// KV cache against the whole prompt at once; the cache's size.
#include <cmath>
#include <random>

#include "helpers.hpp"
#include "ssm/attention.hpp"
#include "ssm/ssd.hpp"

using namespace ssm;
using test::error_of;

namespace {

Signals<double> randn(Eigen::Index rows, Eigen::Index cols, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nrm;
  Signals<double> m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = nrm(rng);
  return m;
}

}  // namespace

TEST_CASE("attention: causal softmax attention equals a plain loop, double and float") {
  const int L = 150, heads = 3, dk = 8, dv = 5;
  const auto q = randn(L, heads * dk, 1), k = randn(L, heads * dk, 2), v = randn(L, heads * dv, 3);
  Signals<double> y;
  causal_attention(q, k, v, heads, y);
  Signals<double> ref = Signals<double>::Zero(L, heads * dv);
  for (int h = 0; h < heads; ++h)
    for (int t = 0; t < L; ++t) {
      std::vector<double> w(std::size_t(t) + 1);
      double z = 0;
      for (int s = 0; s <= t; ++s) {
        double d = 0;
        for (int i = 0; i < dk; ++i) d += q(t, h * dk + i) * k(s, h * dk + i);
        w[s] = std::exp(d / std::sqrt(double(dk)));  // small scores here: no max needed
        z += w[s];
      }
      for (int s = 0; s <= t; ++s)
        for (int i = 0; i < dv; ++i) ref(t, h * dv + i) += w[s] / z * v(s, h * dv + i);
    }
  CHECK_CLOSE(y, ref, 1e-14, 1e-12);  // sums of ≤ 150 terms in double
  Signals<float> yf;
  causal_attention<float>(q.cast<float>(), k.cast<float>(), v.cast<float>(), heads, yf);
  // Float: scores to ~1e-6, exp and normalization keep the relative error; outputs O(1).
  CHECK_CLOSE(yf.cast<double>(), ref, 1e-5, 1e-4);
}

TEST_CASE("attention: the softmax survives huge scores (the row maximum is subtracted)") {
  Signals<double> q = Signals<double>::Constant(3, 2, 100.0), k = q, v = randn(3, 2, 4), y;
  causal_attention(q, k, v, 1, y);  // scores 1e4/√2: e^{score} alone would overflow
  CHECK(y.allFinite());
  CHECK_CLOSE(y.row(2), (v.colwise().sum() / 3.0), 1e-12, 1e-12);  // equal scores: the mean
}

TEST_CASE("attention: outputs are causal (a future token changes nothing before it)") {
  const int L = 40;
  auto q = randn(L, 8, 5), k = randn(L, 8, 6), v = randn(L, 8, 7);
  Signals<double> y1, y2;
  causal_attention(q, k, v, 2, y1);
  k.row(30) *= 7.0;
  v.row(30).setConstant(3.0);
  causal_attention(q, k, v, 2, y2);
  CHECK_CLOSE(y2.topRows(30), y1.topRows(30), 0.0, 0.0);
  CHECK((y2.row(30) - y1.row(30)).norm() > 1e-3);
}

TEST_CASE("attention: linear attention equals its recurrence S_t = S_{t-1} + k_t v_tᵀ") {
  const int L = 120, heads = 2, dk = 6, dv = 4;
  const auto q = randn(L, heads * dk, 8), k = randn(L, heads * dk, 9), v = randn(L, heads * dv, 10);
  Signals<double> y;
  linear_attention(q, k, v, heads, y);
  Signals<double> ref(L, heads * dv);
  for (int h = 0; h < heads; ++h) {
    Mat S = Mat::Zero(dk, dv);
    for (int t = 0; t < L; ++t) {
      S += k.row(t).segment(h * dk, dk).transpose() * v.row(t).segment(h * dv, dv);
      ref.row(t).segment(h * dv, dv) = q.row(t).segment(h * dk, dk) * S;
    }
  }
  CHECK_CLOSE(y, ref, 1e-11, 1e-11);  // O(L) sums of O(√dk) products
}

TEST_CASE("attention: linear attention is the SSD recurrence with a = 1 (A = 0, Δ = 1)") {
  const int L = 90, heads = 3, dk = 5, dv = 4;
  const auto q = randn(L, heads * dk, 11), k = randn(L, heads * dk, 12), v = randn(L, heads * dv, 13);
  SsdParams<double> p;
  p.H = heads;
  p.P = dv;
  p.N = dk;
  p.G = heads;  // each head its own B = k and C = q
  p.A.assign(heads, 0.0);
  p.delta_softplus = false;
  SsdInputs<double> in;
  in.L = L;
  in.x.assign(v.data(), v.data() + v.size());  // (L, H, P): the same row-major order
  in.B.assign(k.data(), k.data() + k.size());  // (L, G, N)
  in.C.assign(q.data(), q.data() + q.size());
  in.delta.assign(std::size_t(L) * heads, 1.0);
  const auto ref = ssd_reference(p, in);
  Signals<double> y;
  linear_attention(q, k, v, heads, y);
  const Eigen::Map<const Signals<double>> ys(ref.y.data(), L, heads * dv);
  CHECK_CLOSE(y, ys, 1e-11, 1e-11);
}

TEST_CASE("attention: the layer's step mode with a KV cache equals the prompt at once") {
  const int L = 64, dm = 24;
  const AttentionLayer<double> att(dm, 4, 1);
  const auto U = randn(L, dm, 14);
  Signals<double> Y, Ys(L, dm);
  att.forward(U, Y);
  auto cache = att.make_cache();
  for (int t = 0; t < L; ++t) att.step(&U(t, 0), &Ys(t, 0), cache);
  CHECK_CLOSE(Ys, Y, 1e-13, 1e-11);
  CHECK(cache.size() == std::size_t(L));
  // Prefill the first 40 tokens into a cache, then step through the rest.
  auto c2 = att.make_cache();
  Signals<double> Y1, Yr(L - 40, dm);
  att.forward(U.topRows(40), Y1, &c2);
  for (int t = 40; t < L; ++t) att.step(&U(t, 0), &Yr(t - 40, 0), c2);
  CHECK_CLOSE(Y1, Y.topRows(40), 1e-13, 1e-11);
  CHECK_CLOSE(Yr, Y.bottomRows(L - 40), 1e-13, 1e-11);
  // Float layer, same seed.
  const AttentionLayer<float> af(dm, 4, 1);
  Signals<float> Yf;
  af.forward(U.cast<float>(), Yf);
  CHECK(test::rel_err(Yf, Y) < 1e-5);
}

TEST_CASE("attention: the KV cache holds 2·L·d_model numbers and grows with every token") {
  KVCache<float> c(4, 16, 16);  // d_model 64
  std::vector<float> kv(64, 1.0f);
  std::size_t last = 0;
  for (int t = 1; t <= 1000; ++t) {
    c.append(kv.data(), kv.data());
    CHECK(c.bytes() >= std::size_t(t) * 2 * 64 * sizeof(float));
    CHECK(c.bytes() >= last);
    last = c.bytes();
  }
  c.reserve(4000);  // the storage is counted, not just the tokens in it
  CHECK(c.bytes() >= 4000u * 2 * 64 * sizeof(float));
  c.truncate(10);
  CHECK(c.size() == 10);
  CHECK(c.key(9)[0] == 1.0f);
}

TEST_CASE("attention: bad input is a one-line error naming the argument") {
  const auto q = randn(5, 6, 1), v = randn(5, 4, 2);
  Signals<double> y;
  CHECK(error_of([&] { causal_attention(q, q, v, 0, y); }).find("heads = 0") != std::string::npos);
  CHECK(error_of([&] { causal_attention(q, q, v, 4, y); }).find("heads = 4 does not divide") !=
        std::string::npos);
  CHECK(error_of([&] { causal_attention(q, q, randn(4, 4, 3), 2, y); }).find("tokens") !=
        std::string::npos);
  CHECK(error_of([&] { AttentionLayer<double>(10, 3, 1); }).find("heads = 3") != std::string::npos);
  KVCache<double> c(1, 2, 2);
  CHECK(error_of([&] { c.truncate(3); }).find("truncate") != std::string::npos);
}
