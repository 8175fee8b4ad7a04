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
  const grad::S4DKernelGrads kg =
      grad::s4d_kernels_backward(s.m, s.dt, s.C, dK, Method::ZOH, threads);
  // Complex gradients are ∂/∂Re + i ∂/∂Im; Re λ = −exp(log_neg_re): ∂Re λ/∂log_neg_re = Re λ.
  g.log_neg_re = (kg.dLambda.real().array() * s.m.Lambda.real().array()).matrix();
  g.lambda_im = kg.dLambda.imag();
  g.B_re = kg.dB.real();
  g.B_im = kg.dB.imag();
  g.C_re = kg.dC.real();
  g.C_im = kg.dC.imag();
  g.log_dt = kg.dlog_dt;  // Δ ∂ℓ/∂Δ
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
  std::unique_ptr<FFTConv<double>> fft;
  std::vector<FFTConv<double>::Spectra> KF;  // per layer
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
// validation included, only when a weight's bits or L changed since the last call).
template <class T>
std::shared_ptr<const Prepared> prepare(const S4DLMConfig& c, const S4DLMWeights<T>& w,
                                        const WeightsCache<Prepared>& cache, std::size_t L,
                                        int threads) {
  std::vector<typename WeightsCache<Prepared>::Span> arrays;
  arrays.reserve(3 + 11 * w.layers.size());
  for_each_array(w, false, [&arrays](const auto& a) {  // lm_head too (tied: its 0×0)
    arrays.push_back({a.data(), std::size_t(a.size()) * sizeof(T)});
  });
  return cache.get(arrays, L, [&] {
    auto p = std::make_shared<Prepared>();
    Wd tmp;
    const Wd& wd = in_double(c, w, tmp);  // validates
    p->w = wd;
    p->ssm = layer_ssms(p->w);
    p->fft = std::make_unique<FFTConv<double>>(L);
    for (const auto& s : p->ssm) {
      SD K;
      s4::s4d_kernels<double>(s.m, s.dt, s.C, L, Method::ZOH, K, threads);  // (Q1)
      p->KF.push_back(p->fft->transform_kernels(K, threads));
    }
    return std::shared_ptr<const Prepared>(std::move(p));
  });
}

}  // namespace

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

  std::size_t n = 0;
  for_each_array(g, tied(), [&n](const auto& a) { n += std::size_t(a.size()); });
  grad.resize(n);
  T* out = grad.data();  // params() order, rounded to T
  for_each_array(g, tied(), [&out](const auto& a) {
    for (Eigen::Index i = 0; i < a.size(); ++i) *out++ = static_cast<T>(a.data()[i]);
  });
  return loss;
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
