// s4d_lm.cpp — the S4D language model of stage 8b (T2): forward, exact backward, recurrent form.
#include "ssm/s4d_lm.hpp"

#include <algorithm>
#include <cmath>
#include <complex>
#include <random>
#include <string>
#include <type_traits>
#include <utility>

#include "elementwise.hpp"  // detail::uniform (PyTorch's Linear init)
#include "ssm/convolution.hpp"
#include "ssm/grad_mamba.hpp"  // rms_norm_backward, linear_backward (G14, G15)
#include "ssm/grad_s4.hpp"     // conv_backward, s4d_kernels_backward (G11–G13)
#include "ssm/mamba.hpp"       // rms_norm
#include "ssm/s4.hpp"
#include "ssm/vmath.hpp"  // normal_cdf, exp (the batched pass in float)
#include "weight_checks.hpp"  // detail::check_int, check_array, shape_of

namespace ssm {

namespace {

using SD = Signals<double>;
using Wd = S4DLMWeights<double>;
using LWd = S4DLayerWeights<double>;

const std::string kWho = "S4D LM: ";

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
void check_weights(const S4DLMConfig& c, const S4DLMWeights<T>& w) {
  const Eigen::Index H = c.d_model, Nh = c.modes(), V = w.embedding.rows();
  require(V >= 2, kWho + "embedding has " + std::to_string(V) + " rows, expected vocab >= 2");
  check_array("embedding", w.embedding, V, H, "vocab, d_model");
  require(w.layers.size() == std::size_t(c.n_layers),
          kWho + "weights have " + std::to_string(w.layers.size()) +
              " layers, expected n_layers = " + std::to_string(c.n_layers));
  for (std::size_t l = 0; l < w.layers.size(); ++l) {
    const auto& L = w.layers[l];
    const std::string p = "layers." + std::to_string(l) + ".";
    check_array(p + "norm_w", L.norm_w, H, 1, "d_model");
    check_array(p + "log_neg_re", L.log_neg_re, Nh, 1, "Nh = d_state/2");
    check_array(p + "lambda_im", L.lambda_im, Nh, 1, "Nh = d_state/2");
    check_array(p + "B_re", L.B_re, Nh, 1, "Nh = d_state/2");
    check_array(p + "B_im", L.B_im, Nh, 1, "Nh = d_state/2");
    check_array(p + "C_re", L.C_re, H, Nh, "d_model, Nh");
    check_array(p + "C_im", L.C_im, H, Nh, "d_model, Nh");
    check_array(p + "log_dt", L.log_dt, H, 1, "d_model");
    check_array(p + "D", L.D, H, 1, "d_model");
    check_array(p + "out_proj", L.out_proj, H, H, "d_model, d_model");
    check_array(p + "out_b", L.out_b, H, 1, "d_model");
  }
  check_array("norm_f", w.norm_f, H, 1, "d_model");
  if (c.tied)
    require(w.lm_head.size() == 0, kWho + "lm_head is " +
                                       shape_of(w.lm_head.rows(), w.lm_head.cols()) +
                                       ", expected 0x0 (the head is tied to the embedding)");
  else
    check_array("lm_head", w.lm_head, V, H, "vocab, d_model");
}

// The weights in double, validated: a reference for T = double, a converted copy in tmp else.
template <class T>
const Wd& in_double(const S4DLMConfig& c, const S4DLMWeights<T>& w, Wd& tmp) {
  check_weights(c, w);
  if constexpr (std::is_same_v<T, double>) {
    return w;
  } else {
    tmp = cast_weights<double>(w);
    return tmp;
  }
}

// Every array of a weights-shaped struct, in params() order, without names (the flat copies
// and the cache's spans, once per sequence).
template <class W, class F>
void for_each_array(W& w, bool tied, F&& f) {
  f(w.embedding);
  for (auto& L : w.layers) {
    f(L.norm_w), f(L.log_neg_re), f(L.lambda_im), f(L.B_re), f(L.B_im), f(L.C_re), f(L.C_im);
    f(L.log_dt), f(L.D), f(L.out_proj), f(L.out_b);
  }
  f(w.norm_f);
  if (!tied) f(w.lm_head);
}

// Every array of a weights-shaped struct, in params() order, with its name and decay hint.
template <class W, class F>
void visit_arrays(W& w, bool tied, F&& f) {
  f(std::string("embedding"), w.embedding, true);
  for (std::size_t l = 0; l < w.layers.size(); ++l) {
    auto& L = w.layers[l];
    const std::string p = "layers." + std::to_string(l) + ".";
    f(p + "norm_w", L.norm_w, false);
    f(p + "log_neg_re", L.log_neg_re, false);
    f(p + "lambda_im", L.lambda_im, false);
    f(p + "B_re", L.B_re, false);
    f(p + "B_im", L.B_im, false);
    f(p + "C_re", L.C_re, false);
    f(p + "C_im", L.C_im, false);
    f(p + "log_dt", L.log_dt, false);
    f(p + "D", L.D, false);
    f(p + "out_proj", L.out_proj, true);
    f(p + "out_b", L.out_b, false);
  }
  f(std::string("norm_f"), w.norm_f, false);
  if (!tied) f(std::string("lm_head"), w.lm_head, true);
}

// One layer's SSM from its parameters (T2): Λ = −exp(log_neg_re) + i·lambda_im and B̃ shared,
// Δ_h = exp(log_dt_h) and C̃_h per channel. make_dplr checks Re λ < 0 and finite values.
struct LayerSSM {
  s4::Dplr m;  // Λ, B̃ (rank 0: diagonal)
  Vec dt;      // (H)
  CMat C;      // (H, Nh)
};

LayerSSM layer_ssm(const LWd& w) {
  const Eigen::Index Nh = w.lambda_im.size(), H = w.log_dt.size();
  CVec Lam(Nh), B(Nh);
  for (Eigen::Index n = 0; n < Nh; ++n) {
    Lam(n) = cdouble(-std::exp(w.log_neg_re(n)), w.lambda_im(n));
    B(n) = cdouble(w.B_re(n), w.B_im(n));
  }
  LayerSSM s;
  s.m = s4::make_dplr(std::move(Lam), CMat(Nh, 0), std::move(B));
  s.dt = w.log_dt.array().exp().matrix();
  s.C.resize(H, Nh);
  for (Eigen::Index n = 0; n < Nh; ++n)
    for (Eigen::Index h = 0; h < H; ++h) s.C(h, n) = cdouble(w.C_re(h, n), w.C_im(h, n));
  for (Eigen::Index h = 0; h < H; ++h)
    require(std::isfinite(s.dt(h)) && s.dt(h) > 0, [&] {
      return kWho + "exp(log_dt(" + std::to_string(h) + ")) = " + fmt(s.dt(h)) +
             " is not a finite step > 0";
    });
  return s;
}

// The exact GELU, y·Φ(y) (erfc keeps Φ accurate for y < 0), and its derivative Φ(y) + y·φ(y)
// from the forward's Φ(y) (erfc is the costliest call of the layer's element-wise work).
constexpr double kInvSqrt2 = 0.70710678118654752440, kInvSqrt2Pi = 0.39894228040143267794;
double std_normal_cdf(double y) {
  return 0.5 * std::erfc(-y * kInvSqrt2);
}
double gelu(double y) {
  return y * std_normal_cdf(y);
}
double gelu_grad(double y, double Phi) {
  return Phi + y * kInvSqrt2Pi * std::exp(-0.5 * y * y);
}

// What a layer's backward needs from its forward (kept, not recomputed: 4·L·H doubles; K̄
// and its spectra are the model's, in Prepared).
struct LayerActs {
  SD U;    // (H, L)  RMSNorm(X)ᵀ: the convolution's input u
  SD Y;    // (H, L)  K̄ * u + D u, before the GELU
  SD Phi;  // (H, L)  Φ(Y), for GELU'
  SD G;    // (L, H)  GELU(Yᵀ) = (Y ∘ Φ(Y))ᵀ: out_proj's input
};

// (T2) Xout = X + GELU(S4D(RMSNorm(X)ᵀ))ᵀ W_outᵀ + b_out. X, Xout (L, H); Xout may be X.
// KF: the spectra of the layer's kernels K̄ (Q1), made once per change of the weights.
void layer_forward(const LWd& w, const FFTConv<double>::Spectra& KF, double eps,
                   const FFTConv<double>& fft, const SD& X, SD& Xout, LayerActs& a, int threads) {
  SD h;
  rms_norm(X, w.norm_w, eps, h);
  a.U = h.transpose();
  fft.apply(KF, a.U, a.Y, threads, &w.D);  // (K2): the same bits as convolve(K̄, U)
  a.Phi = a.Y.unaryExpr([](double y) { return std_normal_cdf(y); });
  a.G = a.Y.cwiseProduct(a.Phi).transpose();
  SD out = a.G * w.out_proj.transpose();
  out.rowwise() += w.out_b.transpose();
  out += X;
  Xout = std::move(out);
}

// (G12, G13) From ∂ℓ/∂K̄ (H, L) to the gradients of the kernel's parameters in g (rounded to
// g's precision). Complex gradients are ∂/∂Re + i ∂/∂Im; Re λ = −exp(log_neg_re), so
// ∂Re λ/∂log_neg_re = Re λ; log Δ gets Δ ∂ℓ/∂Δ.
template <class T>
void kernel_backward(const LayerSSM& s, const SD& dK, S4DLayerWeights<T>& g, int threads) {
  const grad::S4DKernelGrads kg =
      grad::s4d_kernels_backward(s.m, s.dt, s.C, dK, Method::ZOH, threads);
  g.log_neg_re = (kg.dLambda.real().array() * s.m.Lambda.real().array()).matrix().cast<T>();
  g.lambda_im = kg.dLambda.imag().cast<T>();
  g.B_re = kg.dB.real().cast<T>();
  g.B_im = kg.dB.imag().cast<T>();
  g.C_re = kg.dC.real().cast<T>();
  g.C_im = kg.dC.imag().cast<T>();
  g.log_dt = kg.dlog_dt.cast<T>();
}

// The layer's backward: dOut = ∂ℓ/∂Xout (L, H) → dX = ∂ℓ/∂X (the residual included) and g.
void layer_backward(const LWd& w, const LayerSSM& s, const FFTConv<double>::Spectra& KF,
                    double eps, const FFTConv<double>& fft, const SD& X, const LayerActs& a,
                    const SD& dOut, SD& dX, LWd& g, int threads) {
  const Eigen::Index L = X.rows(), H = X.cols();
  // (G15) out = G W_outᵀ + b_out.
  SD dG;
  linear_backward(a.G, w.out_proj, dOut, dG, g.out_proj);
  g.out_b = dOut.colwise().sum().transpose();
  // g = GELU(y): dy = dg ∘ GELU'(y), back in the channels-first layout.
  SD dY(H, L);
  for (Eigen::Index h = 0; h < H; ++h)
    for (Eigen::Index t = 0; t < L; ++t) dY(h, t) = dG(t, h) * gelu_grad(a.Y(h, t), a.Phi(h, t));
  // (G11) y = K̄ * u + D u, then (G12, G13) K̄ from (Λ, B̃, C̃, Δ).
  SD dK, dU;
  Vec dD;
  grad::conv_backward(fft, KF, a.U, dY, &w.D, dK, dU, &dD, threads);
  kernel_backward(s, dK, g, threads);
  g.D = std::move(dD);
  // (G14) u = RMSNorm(X)ᵀ, and the residual: X reaches the output directly too.
  const SD dh = dU.transpose();
  SD dxn;
  rms_norm_backward(X, w.norm_w, eps, dh, dxn, g.norm_w);
  dX = dxn + dOut;
}

// The forward of the whole stack (T1, T2) in double; with keep, every layer's input and
// activations stay for the backward.
struct Forward {
  std::vector<SD> inputs;       // (L, H) per layer
  std::vector<LayerActs> acts;  // per layer
  SD xf, hf;                    // the final norm's input and output (L, H)
  SD logits;                    // (L, V)
};

// What every sequence of one length shares, made from the weights once per change of them (or
// of the length): the weights in double, each layer's SSM, kernels K̄ (H, L) and their spectra,
// and the FFT plans of length L (made here, under FFTW's planner mutex, and then only executed,
// which is thread-safe).
}  // namespace

namespace detail {
struct S4DPrepared {
  Wd w;
  std::vector<LayerSSM> ssm;
  std::unique_ptr<FFTConv<double>> fft;      // null when prepared for the batched pass
  std::vector<FFTConv<double>::Spectra> KF;  // per layer (empty then too)
  std::vector<SD> K;                         // per layer, K̄ (H, L) itself (the batched pass)
};
}  // namespace detail

namespace {

using Prepared = detail::S4DPrepared;

void forward(const S4DLMConfig& c, const Prepared& p, const std::vector<int>& tokens, Forward& f,
             bool keep, int threads) {
  const Wd& w = p.w;
  const auto L = static_cast<Eigen::Index>(tokens.size());
  SD x(L, c.d_model);
  for (Eigen::Index t = 0; t < L; ++t) x.row(t) = w.embedding.row(tokens[std::size_t(t)]);
  const std::size_t n = w.layers.size();
  f.inputs.assign(keep ? n : 0, SD());
  f.acts.assign(keep ? n : 1, LayerActs());
  for (std::size_t l = 0; l < n; ++l) {
    if (keep) f.inputs[l] = x;
    layer_forward(w.layers[l], p.KF[l], c.rms_eps, *p.fft, x, x, f.acts[keep ? l : 0], threads);
  }
  rms_norm(x, w.norm_f, c.rms_eps, f.hf);
  f.logits = f.hf * (c.tied ? w.embedding : w.lm_head).transpose();
  f.xf = std::move(x);
}

std::vector<LayerSSM> layer_ssms(const Wd& w) {
  std::vector<LayerSSM> s;
  s.reserve(w.layers.size());
  for (const auto& l : w.layers) s.push_back(layer_ssm(l));
  return s;
}

// expm1 of a complex argument without cancellation near 0 (the ZOH B̄ of the stepper):
// e^{a+ib} − 1 = expm1(a) cos b − 2 sin²(b/2) + i e^a sin b.
cdouble cexpm1(cdouble z) {
  const double a = z.real(), b = z.imag(), s = std::sin(0.5 * b);
  return {std::expm1(a) * std::cos(b) - 2.0 * s * s, std::exp(a) * std::sin(b)};
}

// The recurrent form (T2), in double: per layer and channel the diagonal complex state.
template <class T>
class S4DStepper : public LMStepper<T> {
 public:
  explicit S4DStepper(const S4DLM<T>& lm)
      : vocab_(lm.vocab()), H_(lm.config().d_model), Nh_(lm.config().modes()),
        eps_(lm.config().rms_eps) {
    Wd tmp;
    const Wd& w = in_double(lm.config(), lm.weights(), tmp);
    E_ = w.embedding;
    head_ = lm.tied() ? w.embedding : w.lm_head;
    norm_f_ = w.norm_f;
    for (const auto& lw : w.layers) {
      const LayerSSM s = layer_ssm(lw);
      Layer L;
      L.norm_w = lw.norm_w;
      L.D = lw.D;
      L.out_proj = lw.out_proj;
      L.out_b = lw.out_b;
      const std::size_t HN = std::size_t(H_) * std::size_t(Nh_);
      L.Ab.resize(HN);
      L.Bb.resize(HN);
      L.C.resize(HN);
      for (int h = 0; h < H_; ++h)
        for (int n = 0; n < Nh_; ++n) {
          const std::size_t i = std::size_t(h) * Nh_ + n;
          const cdouble lam = s.m.Lambda(n), dl = s.dt(h) * lam;
          L.Ab[i] = std::exp(dl);                  // Ā = e^{Δλ}
          L.Bb[i] = cexpm1(dl) / lam * s.m.B(n);   // B̄ = (Ā − 1)/λ · B̃ (ZOH)
          L.C[i] = s.C(h, n);
        }
      layers_.push_back(std::move(L));
    }
    reset();
  }

  void reset() override {
    state_.assign(layers_.size(), std::vector<cdouble>(std::size_t(H_) * std::size_t(Nh_)));
  }

  void step(int token, T* logits) override {
    require(token >= 0 && token < vocab_, kWho + "stepper: token " + std::to_string(token) +
                                              " is outside [0, vocab = " +
                                              std::to_string(vocab_) + ")");
    Vec x = E_.row(token).transpose();
    Vec u(H_), y(H_);
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      const Layer& L = layers_[l];
      cdouble* st = state_[l].data();
      const double r = 1.0 / std::sqrt(x.squaredNorm() / double(H_) + eps_);  // RMSNorm
      u = (x.array() * r * L.norm_w.array()).matrix();
      for (int h = 0; h < H_; ++h) {
        // s ← Ā s + B̄ u_h, y_h = 2 Re Σ_n C̃_n s_n + D_h u_h
        const std::size_t o = std::size_t(h) * Nh_;
        cdouble acc = 0.0;
        for (int n = 0; n < Nh_; ++n) {
          st[o + n] = L.Ab[o + n] * st[o + n] + L.Bb[o + n] * u(h);
          acc += L.C[o + n] * st[o + n];
        }
        y(h) = gelu(2.0 * acc.real() + L.D(h) * u(h));
      }
      x += L.out_proj * y + L.out_b;
    }
    const double r = 1.0 / std::sqrt(x.squaredNorm() / double(H_) + eps_);
    const Vec hf = (x.array() * r * norm_f_.array()).matrix();
    Eigen::Map<VecT<T>>(logits, vocab_) = (head_ * hf).template cast<T>();
  }

  std::size_t state_bytes() const override {
    std::size_t b = 0;
    for (const auto& s : state_) b += s.capacity() * sizeof(cdouble);
    return b;
  }

 private:
  struct Layer {
    Vec norm_w, D, out_b;                 // (H)
    Mat out_proj;                         // (H, H)
    std::vector<cdouble> Ab, Bb, C;       // (H, Nh) row-major: Ā, B̄, C̃ per channel and mode
  };
  int vocab_, H_, Nh_;
  double eps_;
  Mat E_, head_;
  Vec norm_f_;
  std::vector<Layer> layers_;
  std::vector<std::vector<cdouble>> state_;  // per layer (H, Nh) row-major
};

}  // namespace

void validate(const S4DLMConfig& c) {
  check_int("d_model", c.d_model, 1, 4096);
  check_int("n_layers", c.n_layers, 1, 64);
  check_int("d_state", c.d_state, 2, 4096);
  require(c.d_state % 2 == 0, kWho + "d_state = " + std::to_string(c.d_state) +
                                  " must be even (N/2 complex modes, each with its conjugate)");
  require(std::isfinite(c.dt_min) && c.dt_min > 0,
          kWho + "dt_min = " + fmt(c.dt_min) + ", expected a finite value > 0");
  require(std::isfinite(c.dt_max) && c.dt_max >= c.dt_min,
          kWho + "dt_max = " + fmt(c.dt_max) + ", expected a finite value >= dt_min = " +
              fmt(c.dt_min));
  require(std::isfinite(c.rms_eps) && c.rms_eps >= 0,
          kWho + "rms_eps = " + fmt(c.rms_eps) + ", expected a finite value >= 0");
}

template <class To, class From>
S4DLMWeights<To> cast_weights(const S4DLMWeights<From>& w) {
  S4DLMWeights<To> r;
  r.embedding = w.embedding.template cast<To>();
  for (const auto& L : w.layers) {
    S4DLayerWeights<To> c;
    c.norm_w = L.norm_w.template cast<To>();
    c.log_neg_re = L.log_neg_re.template cast<To>();
    c.lambda_im = L.lambda_im.template cast<To>();
    c.B_re = L.B_re.template cast<To>();
    c.B_im = L.B_im.template cast<To>();
    c.C_re = L.C_re.template cast<To>();
    c.C_im = L.C_im.template cast<To>();
    c.log_dt = L.log_dt.template cast<To>();
    c.D = L.D.template cast<To>();
    c.out_proj = L.out_proj.template cast<To>();
    c.out_b = L.out_b.template cast<To>();
    r.layers.push_back(std::move(c));
  }
  r.norm_f = w.norm_f.template cast<To>();
  r.lm_head = w.lm_head.template cast<To>();
  return r;
}

template <class T>
S4DLM<T>::S4DLM(const S4DLMConfig& cfg, int vocab, std::uint64_t seed) : cfg_(cfg) {
  validate(cfg);
  require(vocab >= 2 && vocab <= (1 << 20),
          kWho + "vocab = " + std::to_string(vocab) + " is outside [2, 1048576]");
  const int H = cfg.d_model, Nh = cfg.modes();
  const double bound = 1.0 / std::sqrt(double(H));  // PyTorch's Linear: ±1/√fan_in
  const s4::Dplr lin = s4::s4d_init(s4::S4DInit::Lin, cfg.d_state);  // (Q2) λ_n = −½ + iπn
  for (int l = 0; l < cfg.n_layers; ++l) {
    std::mt19937_64 rng(mix_seed(seed, 100 + std::uint64_t(l)));
    S4DLayerWeights<T> w;
    w.norm_w = VecT<T>::Ones(H);
    w.log_neg_re.resize(Nh);
    w.lambda_im.resize(Nh);
    w.B_re.resize(Nh);
    w.B_im.resize(Nh);
    for (int n = 0; n < Nh; ++n) {
      w.log_neg_re(n) = static_cast<T>(std::log(-lin.Lambda(n).real()));
      w.lambda_im(n) = static_cast<T>(lin.Lambda(n).imag());
      w.B_re(n) = static_cast<T>(lin.B(n).real());
      w.B_im(n) = static_cast<T>(lin.B(n).imag());
    }
    const CMat C = s4::random_C(H, Nh, mix_seed(seed, 200 + std::uint64_t(l)));  // E|C̃|² = 1
    w.C_re = C.real().cast<T>();
    w.C_im = C.imag().cast<T>();
    std::uniform_real_distribution<double> ldt(std::log(cfg.dt_min), std::log(cfg.dt_max));
    std::normal_distribution<double> nd(0.0, 1.0);
    w.log_dt.resize(H);
    w.D.resize(H);
    for (int h = 0; h < H; ++h) w.log_dt(h) = static_cast<T>(ldt(rng));
    for (int h = 0; h < H; ++h) w.D(h) = static_cast<T>(nd(rng));
    w.out_proj = detail::uniform<T>(rng, H, H, bound);
    w.out_b = detail::uniform<T>(rng, H, 1, bound);
    w_.layers.push_back(std::move(w));
  }
  w_.norm_f = VecT<T>::Ones(H);
  std::mt19937_64 rng(mix_seed(seed, 1));
  std::normal_distribution<double> nd(0.0, 0.02);
  w_.embedding.resize(vocab, H);
  for (Eigen::Index j = 0; j < H; ++j)
    for (Eigen::Index i = 0; i < vocab; ++i) w_.embedding(i, j) = static_cast<T>(nd(rng));
  if (!cfg.tied) {
    std::mt19937_64 rng2(mix_seed(seed, 2));
    w_.lm_head = detail::uniform<T>(rng2, vocab, H, bound);
  }
}

template <class T>
std::string S4DLM<T>::describe() const {
  return "s4d: d_model " + std::to_string(cfg_.d_model) + ", " + std::to_string(cfg_.n_layers) +
         " layers, N " + std::to_string(cfg_.d_state) + " (" + std::to_string(cfg_.modes()) +
         " complex modes), vocab " + std::to_string(vocab()) + (tied() ? ", tied" : ", untied") +
         ", no gate, GELU";
}

template <class T>
std::vector<ParamView<T>> S4DLM<T>::params() {
  std::vector<ParamView<T>> v;
  visit_arrays(w_, tied(), [&v](std::string name, auto& a, bool decay) {
    v.push_back({std::move(name), a.data(), static_cast<std::size_t>(a.size()), decay});
  });
  return v;
}

namespace {

// The prepared state for the current weights and length L (lm.hpp's WeightsCache: built,
// validation included, only when a weight's bits or L changed since the last call). The
// batched pass convolves by sums and needs no FFT: with spectra false, fft and KF stay empty
// (planning FFTW and transforming the kernels after every step of a trainer cost it about 3 %),
// and the cache tells the two kinds apart by its key.
template <class T>
std::shared_ptr<const Prepared> prepare(const S4DLMConfig& c, const S4DLMWeights<T>& w,
                                        const WeightsCache<Prepared>& cache, std::size_t L,
                                        int threads, bool spectra = true) {
  std::vector<typename WeightsCache<Prepared>::Span> arrays;
  arrays.reserve(3 + 11 * w.layers.size());
  for_each_array(w, false, [&arrays](const auto& a) {  // lm_head too (tied: its 0×0)
    arrays.push_back({a.data(), std::size_t(a.size()) * sizeof(T)});
  });
  return cache.get(arrays, 2 * L + (spectra ? 0 : 1), [&] {
    auto p = std::make_shared<Prepared>();
    Wd tmp;
    const Wd& wd = in_double(c, w, tmp);  // validates
    p->w = wd;
    p->ssm = layer_ssms(p->w);
    if (spectra) p->fft = std::make_unique<FFTConv<double>>(L);
    for (const auto& s : p->ssm) {
      SD K;
      s4::s4d_kernels<double>(s.m, s.dt, s.C, L, Method::ZOH, K, threads);  // (Q1)
      if (spectra) p->KF.push_back(p->fft->transform_kernels(K, threads));
      p->K.push_back(std::move(K));
    }
    return std::shared_ptr<const Prepared>(std::move(p));
  });
}

// ---------------------------------------------------------------------------------------------
// The batched pass (batch_loss_and_grad): the same layer (T2) and the same backward (G11–G15,
// G18), with the sequences of a mini-batch sharing the work. A group of kGroup sequences of
// one length L ≤ kBatchMaxL runs as one (N, H) array, N = group·L (row b·L + t is token t of
// the group's sequence b), in the model's precision T:
//   every projection is one GEMM over the group's N tokens (G15); RMSNorm (G14) as before;
//   the convolution (K1, G11) is written out as sums over the lag j, each one vector operation
//   across the H channels (K̄ kept transposed, Kt (L, H), Kt[j] = K̄_·,j):
//     y_t = D ∘ u_t + Σ_{j≤t} Kt[j] ∘ u_{t−j},   du_s = D ∘ dy_s + Σ_{t≥s} Kt[t−s] ∘ dy_t,
//     ∂ℓ/∂Kt[j] = Σ_sequences Σ_{t≥j} dy_t ∘ u_{t−j},   ∂ℓ/∂D = Σ_t dy_t ∘ u_t;
//   the GELU's Φ is vectorized in float (simd::normal_cdf; std::erfc in double).
// The groups' gradients are summed in group order, so the bits do not depend on the threads
// (which run whole groups; Eigen's own threads must be 1, as the trainer sets them), and
// ∂ℓ/∂K̄, summed over the batch in double, goes through the kernel's backward (G12, G13) once
// per batch instead of once per sequence. The convolution costs L(L+1)/2 multiply-adds per
// channel, sequence and pass against the FFT's O(L log L) with its larger constant: at
// L ≤ kBatchMaxL the sums win; longer sequences take the per-sequence FFT path.
// Memory per group: n_layers·4·N·H values of T (kept activations) plus O(N·(H + V)).
constexpr int kGroup = 8;
constexpr std::size_t kBatchMaxL = 128;

// Φ(y) elementwise over n values: simd::normal_cdf in float (a zero-padded pack for the tail,
// so every value takes the same formula), the exact std::erfc in double.
template <class T>
void normal_cdf_all(const T* y, T* phi, std::size_t n) {
  if constexpr (std::is_same_v<T, float>)
    simd::map<simd::f32x16>(phi, n, [](simd::f32x16 v) { return simd::normal_cdf(v); }, y);
  else
    for (std::size_t i = 0; i < n; ++i) phi[i] = std_normal_cdf(y[i]);
}

// dY = dG ∘ GELU'(Y) = dG ∘ (Φ(Y) + Y φ(Y)), φ(y) = e^{−y²/2}/√(2π) (simd::exp in float).
template <class T>
void gelu_backward_all(const T* y, const T* phi, const T* dg, T* dy, std::size_t n) {
  if constexpr (std::is_same_v<T, float>) {
    using V = simd::f32x16;
    simd::map<V>(
        dy, n,
        [](V yv, V pv, V gv) {
          return gv * (pv + yv * float(kInvSqrt2Pi) * simd::exp(-0.5f * yv * yv));
        },
        y, phi, dg);
  } else {
    for (std::size_t i = 0; i < n; ++i) dy[i] = dg[i] * gelu_grad(y[i], phi[i]);
  }
}

// Every pass of the batched convolution, forward and backward, is one shape of sum: for each
// output o in [0, n), over rows of H channels,
//   out_o = init_o + Σ_{m=0}^{o} P_m ∘ Q_{o−m}                                   (m ascending)
// with init_o = A ∘ B for a pair of rows (A, B) = init(o), A alone (accumulate onto a row), or
// 0 (A null). The forward (K1) is this with P = K̄ᵀ's rows and Q = the inputs; the two
// correlations of its backward (G11) become it when their rows are read in reverse.
//
// Register tiling: kTile consecutive outputs share each P_m they read, and the Q rows they
// need slide by one row per step of m (output o₀+i reads Q_{o₀+i−m}), so one step loads P_m and
// a single new Q row for kTile·2 fused multiply-adds on a block of 2 packs (32 floats). The
// terms each output has beyond o₀ (the tile's corner) follow, still in ascending m, so every
// output is summed in the same order as the plain loop: the bits do not depend on the tiling,
// and the channels beyond the last full block take that plain loop.
constexpr int kTile = 4;

template <int R, class T, class Out, class Pf, class Qf, class Init>
inline void causal_tile(Eigen::Index o0, Eigen::Index h0, const Out& out, const Pf& P,
                        const Qf& Q, const Init& init) {
  using V = simd::Pack<T>;
  constexpr Eigen::Index W = simd::kLanes<T>;
  V acc[R][2], q[R][2];
  for (int i = 0; i < R; ++i) {
    const auto [a, b] = init(o0 + i);
    for (int k = 0; k < 2; ++k)
      acc[i][k] = !a   ? V{}
                  : !b ? simd::load<V>(a + h0 + k * W)
                       : simd::load<V>(a + h0 + k * W) * simd::load<V>(b + h0 + k * W);
    for (int k = 0; k < 2; ++k) q[i][k] = simd::load<V>(Q(o0 + i) + h0 + k * W);
  }
  for (Eigen::Index m = 0; m <= o0; ++m) {  // every output of the tile has these terms
    const T* p = P(m) + h0;
    const V p0 = simd::load<V>(p), p1 = simd::load<V>(p + W);
    for (int i = 0; i < R; ++i) {
      acc[i][0] += p0 * q[i][0];
      acc[i][1] += p1 * q[i][1];
    }
    if (m == o0) break;
    for (int i = R - 1; i > 0; --i) q[i][0] = q[i - 1][0], q[i][1] = q[i - 1][1];
    const T* r = Q(o0 - m - 1) + h0;
    q[0][0] = simd::load<V>(r);
    q[0][1] = simd::load<V>(r + W);
  }
  for (int i = 1; i < R; ++i)  // the corner: output o₀+i's terms m ∈ (o₀, o₀+i]
    for (Eigen::Index m = o0 + 1; m <= o0 + i; ++m)
      for (int k = 0; k < 2; ++k)
        acc[i][k] += simd::load<V>(P(m) + h0 + k * W) * simd::load<V>(Q(o0 + i - m) + h0 + k * W);
  for (int i = 0; i < R; ++i)
    for (int k = 0; k < 2; ++k) simd::store(out(o0 + i) + h0 + k * W, acc[i][k]);
}

template <class T, class Out, class Pf, class Qf, class Init>
void causal_sums(Eigen::Index n, Eigen::Index H, const Out& out, const Pf& P, const Qf& Q,
                 const Init& init) {
  constexpr Eigen::Index CB = 2 * simd::kLanes<T>;
  Eigen::Index h0 = 0;
  for (; h0 + CB <= H; h0 += CB) {
    Eigen::Index o0 = 0;
    for (; o0 + kTile <= n; o0 += kTile) causal_tile<kTile, T>(o0, h0, out, P, Q, init);
    for (; o0 < n; ++o0) causal_tile<1, T>(o0, h0, out, P, Q, init);
  }
  for (Eigen::Index o = 0; o < n && h0 < H; ++o) {  // the channels beyond the last full block
    const auto [a, b] = init(o);
    T* y = out(o);
    for (Eigen::Index h = h0; h < H; ++h) {
      T acc = !a ? T(0) : !b ? a[h] : a[h] * b[h];
      for (Eigen::Index m = 0; m <= o; ++m) acc += P(m)[h] * Q(o - m)[h];
      y[h] = acc;
    }
  }
}

// (K1) Y = K̄ * U + D U for each of the nb sequences of L rows in U, Y (nb·L, H); Kt (L, H):
// y_t = D ∘ u_t + Σ_{j≤t} Kt[j] ∘ u_{t−j}.
template <class T>
void conv_rows(const Signals<T>& Kt, const VecT<T>& D, const Signals<T>& U, Eigen::Index L,
               Signals<T>& Y) {
  const Eigen::Index H = U.cols(), nb = U.rows() / L;
  Y.resize(U.rows(), H);
  for (Eigen::Index b = 0; b < nb; ++b) {
    const Eigen::Index r0 = b * L;
    causal_sums<T>(
        L, H, [&](Eigen::Index o) { return Y.row(r0 + o).data(); },
        [&](Eigen::Index m) { return Kt.row(m).data(); },
        [&](Eigen::Index r) { return U.row(r0 + r).data(); },
        [&](Eigen::Index o) { return std::pair<const T*, const T*>(D.data(), U.row(r0 + o).data()); });
  }
}

// (G11) Its backward from dY: du_s = D ∘ dy_s + Σ_{j=0}^{L−1−s} Kt[j] ∘ dy_{s+j} (nb·L, H);
// dKt[j] = Σ_b Σ_{r=0}^{L−1−j} u_r ∘ dy_{r+j} (L, H); dD = Σ_b Σ_t dy_t ∘ u_t (H).
// Both correlations are causal_sums with o = L−1−s (or L−1−j) and dy read from the end.
template <class T>
void conv_rows_backward(const Signals<T>& Kt, const VecT<T>& D, const Signals<T>& U,
                        const Signals<T>& dY, Eigen::Index L, Signals<T>& dU, Signals<T>& dKt,
                        VecT<T>& dD) {
  const Eigen::Index H = U.cols(), nb = U.rows() / L;
  dU.resize(U.rows(), H);
  dKt.resize(L, H);
  using Rows = std::pair<const T*, const T*>;
  for (Eigen::Index b = 0; b < nb; ++b) {
    const Eigen::Index r0 = b * L, last = b * L + L - 1;
    auto dy_rev = [&](Eigen::Index q) { return dY.row(last - q).data(); };
    causal_sums<T>(
        L, H, [&](Eigen::Index o) { return dU.row(last - o).data(); },
        [&](Eigen::Index m) { return Kt.row(m).data(); }, dy_rev,
        [&](Eigen::Index o) { return Rows(D.data(), dY.row(last - o).data()); });
    causal_sums<T>(
        L, H, [&](Eigen::Index o) { return dKt.row(L - 1 - o).data(); },
        [&](Eigen::Index r) { return U.row(r0 + r).data(); }, dy_rev,
        [&](Eigen::Index o) {  // Σ_b in b order: onto the previous sequences' sum
          return Rows(b == 0 ? nullptr : dKt.row(L - 1 - o).data(), nullptr);
        });
  }
  dD.setZero(H);
  for (Eigen::Index n = 0; n < U.rows(); ++n) dD += dY.row(n).transpose().cwiseProduct(U.row(n).transpose());
}

// One group's share of the batch, and the buffers it runs in (kept by the model between
// calls, so a step allocates next to nothing once the first has run: fresh large blocks cost
// page faults, and freeing them returns memory to the system, which the next step faults in).
template <class T>
struct GroupWork {
  // Out: the losses of the group's sequences and the gradients of every array but the
  // kernel's (Λ, B̃, C̃, Δ), for which ∂ℓ/∂K̄ᵀ (L, H) per layer.
  S4DLMWeights<T> g;
  std::vector<Signals<T>> dKt;
  std::vector<double> loss;
  // The forward's activations per layer, (N, H): input, RMSNorm(X), Y = K̄ * U + D U, Φ(Y).
  std::vector<Signals<T>> X, U, Y, Phi;
  // Scratch.
  Signals<T> x, G, o, hf, logits, dlog, lg, dl, dhf, dx, dG, dY, dU, dxn;
  MatT<T> dHead;
};

template <class T>
void group_pass(const S4DLMConfig& c, const S4DLMWeights<T>& w,
                const std::vector<Signals<T>>& Kt, const std::vector<std::vector<int>>& tokens,
                const std::vector<std::vector<int>>& targets, std::size_t b0, std::size_t nb,
                GroupWork<T>& k) {
  const Eigen::Index H = c.d_model;
  const auto L = static_cast<Eigen::Index>(tokens[b0].size());
  const Eigen::Index N = Eigen::Index(nb) * L;
  const std::size_t nl = w.layers.size();
  const MatT<T>& head = c.tied ? w.embedding : w.lm_head;

  // Forward (T1, T2), keeping what the backward needs.
  Signals<T>& x = k.x;
  x.resize(N, H);
  for (std::size_t b = 0; b < nb; ++b)
    for (Eigen::Index t = 0; t < L; ++t)
      x.row(Eigen::Index(b) * L + t) = w.embedding.row(tokens[b0 + b][std::size_t(t)]);
  k.X.resize(nl), k.U.resize(nl), k.Y.resize(nl), k.Phi.resize(nl);
  for (std::size_t l = 0; l < nl; ++l) {
    const auto& lw = w.layers[l];
    k.X[l] = x;
    rms_norm(x, lw.norm_w, c.rms_eps, k.U[l]);
    conv_rows(Kt[l], lw.D, k.U[l], L, k.Y[l]);  // (K1)
    k.Phi[l].resize(N, H);
    normal_cdf_all(k.Y[l].data(), k.Phi[l].data(), std::size_t(N * H));
    k.G = k.Y[l].cwiseProduct(k.Phi[l]);
    k.o.noalias() = k.G * lw.out_proj.transpose();  // out = GELU(Y) W_outᵀ + b_out + X
    k.o.rowwise() += lw.out_b.transpose();
    x += k.o;
  }
  rms_norm(x, w.norm_f, c.rms_eps, k.hf);
  k.logits.noalias() = k.hf * head.transpose();  // (N, V)

  // (G18) Each sequence's mean cross-entropy and its ∂ℓ/∂logits.
  k.dlog.resize(N, head.rows());
  k.loss.resize(nb);
  for (std::size_t b = 0; b < nb; ++b) {
    k.lg = k.logits.middleRows(Eigen::Index(b) * L, L);
    k.loss[b] = softmax_cross_entropy(k.lg, targets[b0 + b], &k.dl);
    k.dlog.middleRows(Eigen::Index(b) * L, L) = k.dl;
  }

  // Backward, last layer first.
  S4DLMWeights<T>& g = k.g;
  k.dHead.noalias() = k.dlog.transpose() * k.hf;  // (V, H)
  k.dhf.noalias() = k.dlog * head;
  Signals<T>& dx = k.dx;
  rms_norm_backward(x, w.norm_f, c.rms_eps, k.dhf, dx, g.norm_f);  // (G14)
  g.layers.resize(nl);
  k.dKt.resize(nl);
  for (std::size_t l = nl; l-- > 0;) {
    const auto& lw = w.layers[l];
    auto& gl = g.layers[l];
    k.G = k.Y[l].cwiseProduct(k.Phi[l]);
    gl.out_proj.noalias() = dx.transpose() * k.G;  // (G15) with dOut = dx
    gl.out_b = dx.colwise().sum().transpose();
    k.dG.noalias() = dx * lw.out_proj;
    k.dY.resize(N, H);
    gelu_backward_all(k.Y[l].data(), k.Phi[l].data(), k.dG.data(), k.dY.data(),
                      std::size_t(N * H));
    conv_rows_backward(Kt[l], lw.D, k.U[l], k.dY, L, k.dU, k.dKt[l], gl.D);  // (G11)
    rms_norm_backward(k.X[l], lw.norm_w, c.rms_eps, k.dU, k.dxn, gl.norm_w);
    dx += k.dxn;  // the residual: X reaches the output directly too
  }
  // (G18) x₀ = E[token]: a repeated token sums its rows' gradients.
  if (c.tied) {
    g.embedding = k.dHead;
  } else {
    g.embedding.setZero(w.embedding.rows(), w.embedding.cols());
    g.lm_head = k.dHead;
  }
  for (std::size_t b = 0; b < nb; ++b)
    for (Eigen::Index t = 0; t < L; ++t)
      g.embedding.row(tokens[b0 + b][std::size_t(t)]) += dx.row(Eigen::Index(b) * L + t);
}

// grad (resized) = every array of the gradients g in params() order, rounded to T.
template <class T, class W>
void flatten(W& g, bool tied, std::vector<T>& grad) {
  std::size_t n = 0;
  for_each_array(g, tied, [&n](const auto& a) { n += std::size_t(a.size()); });
  grad.resize(n);
  T* out = grad.data();
  for_each_array(g, tied, [&out](const auto& a) {
    for (Eigen::Index i = 0; i < a.size(); ++i) *out++ = static_cast<T>(a.data()[i]);
  });
}

// The arrays of a weights-shaped struct as (pointer, size), in params() order.
template <class T>
std::vector<std::pair<T*, Eigen::Index>> flat_arrays(S4DLMWeights<T>& w, bool tied) {
  std::vector<std::pair<T*, Eigen::Index>> v;
  for_each_array(w, tied, [&v](auto& a) { v.emplace_back(a.data(), a.size()); });
  return v;
}

}  // namespace

namespace detail {
// The batched pass's buffers: K̄ᵀ (L, H) in T per layer, one GroupWork per group.
template <class T>
struct S4DBatchWork {
  std::vector<Signals<T>> Kt;
  std::vector<GroupWork<T>> groups;
  S4DLMWeights<T> total;  // Σ of the groups' gradients
};
}  // namespace detail

template <class T>
void S4DLM<T>::logits(const std::vector<int>& tokens, Signals<T>& out, int threads) const {
  check_tokens("S4D LM", vocab(), tokens, nullptr);
  const auto p = prepare(cfg_, w_, cache_, tokens.size(), threads);
  Forward f;
  forward(cfg_, *p, tokens, f, false, threads);
  out = f.logits.template cast<T>();
}

template <class T>
double S4DLM<T>::loss_and_grad(const std::vector<int>& tokens, const std::vector<int>& targets,
                               std::vector<T>& grad, int threads) const {
  check_tokens("S4D LM", vocab(), tokens, &targets);
  const auto p = prepare(cfg_, w_, cache_, tokens.size(), threads);
  const Wd& w = p->w;
  Forward f;
  forward(cfg_, *p, tokens, f, true, threads);
  SD dlog;
  const double loss = softmax_cross_entropy(f.logits, targets, &dlog);  // (G18)

  Wd g;
  // (G15) logits = h_f Hᵀ: dH = dlogitsᵀ h_f, dh_f = dlogits H.
  SD dhf, dx, dprev;
  Mat dH;
  linear_backward(f.hf, tied() ? w.embedding : w.lm_head, dlog, dhf, dH);
  if (tied()) {
    g.embedding = std::move(dH);  // the head's half of the tied table; the scatter-add follows
  } else {
    g.embedding = Mat::Zero(w.embedding.rows(), w.embedding.cols());
    g.lm_head = std::move(dH);
  }
  rms_norm_backward(f.xf, w.norm_f, cfg_.rms_eps, dhf, dx, g.norm_f);  // (G14)
  g.layers.resize(w.layers.size());
  for (std::size_t l = w.layers.size(); l-- > 0;) {  // last layer first
    layer_backward(w.layers[l], p->ssm[l], p->KF[l], cfg_.rms_eps, *p->fft, f.inputs[l],
                   f.acts[l], dx, dprev, g.layers[l], threads);
    std::swap(dx, dprev);
  }
  // (G18) x₀,t = E[token_t]: a repeated token sums its rows' gradients.
  for (std::size_t t = 0; t < tokens.size(); ++t)
    g.embedding.row(tokens[t]) += dx.row(static_cast<Eigen::Index>(t));

  flatten(g, tied(), grad);
  return loss;
}

template <class T>
void S4DLM<T>::batch_loss_and_grad(const std::vector<std::vector<int>>& tokens,
                                   const std::vector<std::vector<int>>& targets,
                                   std::vector<double>& losses, std::vector<T>& grad,
                                   int threads) const {
  const auto B = std::size_t(check_batch("S4D LM", tokens, targets));
  const std::size_t L = tokens[0].size();
  bool one_length = true;
  for (std::size_t b = 0; b < B; ++b) {
    check_tokens("S4D LM", vocab(), tokens[b], &targets[b]);
    one_length = one_length && tokens[b].size() == L;
  }
  if (!one_length || L > kBatchMaxL) {  // the FFT, one sequence at a time
    LanguageModel<T>::batch_loss_and_grad(tokens, targets, losses, grad, threads);
    return;
  }
  const auto p = prepare(cfg_, w_, cache_, L, threads, /*spectra=*/false);
  work_.with([&](detail::S4DBatchWork<T>& work) {
    work.Kt.resize(p->K.size());
    for (std::size_t l = 0; l < p->K.size(); ++l)
      work.Kt[l] = p->K[l].transpose().template cast<T>();
    const int ng = int((B + kGroup - 1) / kGroup);
    auto& gg = work.groups;
    gg.resize(std::size_t(ng));
    parallel_for(ng, threads, [&](int i) {
      const std::size_t b0 = std::size_t(i) * kGroup;
      group_pass(cfg_, w_, work.Kt, tokens, targets, b0, std::min<std::size_t>(kGroup, B - b0),
                 gg[std::size_t(i)]);
    });
    // Σ over the groups, in group order; then the kernel's backward once per layer.
    S4DLMWeights<T>& total = work.total;
    total = gg[0].g;  // the kernel's arrays (empty here) are set below
    const auto dst = flat_arrays(total, tied());
    losses.clear();
    for (int i = 0; i < ng; ++i) {
      const auto& gi = gg[std::size_t(i)];
      losses.insert(losses.end(), gi.loss.begin(), gi.loss.end());
      if (i == 0) continue;
      const auto src = flat_arrays(gg[std::size_t(i)].g, tied());
      for (std::size_t k = 0; k < dst.size(); ++k)
        Eigen::Map<VecT<T>>(dst[k].first, dst[k].second) +=
            Eigen::Map<const VecT<T>>(src[k].first, src[k].second);
    }
    for (std::size_t l = 0; l < p->ssm.size(); ++l) {
      SD dKt = gg[0].dKt[l].template cast<double>();
      for (int i = 1; i < ng; ++i) dKt += gg[std::size_t(i)].dKt[l].template cast<double>();
      kernel_backward(p->ssm[l], dKt.transpose(), total.layers[l], threads);
    }
    flatten(total, tied(), grad);
  });
}

template <class T>
std::unique_ptr<LMStepper<T>> S4DLM<T>::stepper() const {
  return std::make_unique<S4DStepper<T>>(*this);
}

template class S4DLM<float>;
template class S4DLM<double>;
template S4DLMWeights<float> cast_weights<float, double>(const S4DLMWeights<double>&);
template S4DLMWeights<double> cast_weights<double, float>(const S4DLMWeights<float>&);
template S4DLMWeights<float> cast_weights<float, float>(const S4DLMWeights<float>&);
template S4DLMWeights<double> cast_weights<double, double>(const S4DLMWeights<double>&);

}  // namespace ssm
