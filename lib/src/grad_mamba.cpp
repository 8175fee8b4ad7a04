#include "ssm/grad_mamba.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "elementwise.hpp"
#include "ssm/vmath.hpp"
#include "weight_checks.hpp"

namespace ssm {

namespace {

using detail::silu;

using detail::check_array;  // weight_checks.hpp
using detail::shape_of;

template <class T>
void check_block(const MambaConfig& cfg, const MambaBlockWeights<T>& w, const std::string& who) {
  require(cfg.rms_eps >= 0 && std::isfinite(cfg.rms_eps),
          who + "rms_eps = " + fmt(cfg.rms_eps) + ", expected a finite value >= 0");
  const Eigen::Index dm = cfg.d_model, di = cfg.d_inner(), N = cfg.d_state, R = cfg.rank(),
                     K = cfg.d_conv;
  check_array(who, "norm_w", w.norm_w, dm, 1, "d_model");
  check_array(who, "in_proj", w.in_proj, 2 * di, dm, "2·d_inner, d_model");
  check_array(who, "conv_w", w.conv_w, di, K, "d_inner, d_conv");
  check_array(who, "conv_b", w.conv_b, di, 1, "d_inner");
  check_array(who, "x_proj", w.x_proj, R + 2 * N, di, "dt_rank + 2N, d_inner");
  check_array(who, "dt_proj", w.dt_proj, di, R, "d_inner, dt_rank");
  check_array(who, "dt_bias", w.dt_bias, di, 1, "d_inner");
  check_array(who, "A_log", w.A_log, di, N, "d_inner, N");
  check_array(who, "D", w.D, di, 1, "d_inner");
  check_array(who, "out_proj", w.out_proj, dm, di, "d_model, d_inner");
}

// The scan's parameters, read from the weights (M1, M6): A = −exp(A_log) (D, N) row-major,
// D skip, Δ bias, softplus on, Mamba's B̄ = ΔB.
template <class T>
ScanParams<T> scan_params_of(const MambaBlockWeights<T>& w) {
  ScanParams<T> p;
  p.D = static_cast<int>(w.A_log.rows());
  p.N = static_cast<int>(w.A_log.cols());
  p.A.resize(std::size_t(p.D) * std::size_t(p.N));
  for (int c = 0; c < p.D; ++c)
    for (int n = 0; n < p.N; ++n)
      p.A[std::size_t(c) * p.N + n] = static_cast<T>(-std::exp(double(w.A_log(c, n))));
  p.D_skip.assign(w.D.data(), w.D.data() + w.D.size());
  p.delta_bias.assign(w.dt_bias.data(), w.dt_bias.data() + w.dt_bias.size());
  p.delta_softplus = true;
  p.disc = ScanDiscretization::Mamba;
  return p;
}

template <class To, class From>
std::vector<To> cast_vec(const std::vector<From>& v) {
  return std::vector<To>(v.begin(), v.end());
}

// The forward scan (M1–M4): fast, or the double reference for checks.
template <class T>
std::vector<T> run_scan(const ScanParams<T>& p, const ScanInputs<T>& in,
                        const MambaRunOptions& opt) {
  if (opt.reference_scan)
    return cast_vec<T>(selective_scan_reference(cast_params<double>(p), cast_inputs<double>(in)).y);
  ScanOutputs<T> out;
  selective_scan(p, in, out, opt.threads);
  return std::move(out.y);
}

// The scan's backward (G1–G9): fast (G10 checkpoints every opt.chunk steps), or the reference.
template <class T>
ScanGrads<T> run_scan_backward(const ScanParams<T>& p, const ScanInputs<T>& in,
                               const std::vector<T>& dy, const MambaRunOptions& opt) {
  if (!opt.reference_scan) return selective_scan_backward<T>(p, in, dy, {}, opt.chunk, opt.threads);
  const ScanGrads<double> g = selective_scan_backward_reference(
      cast_params<double>(p), cast_inputs<double>(in), cast_vec<double>(dy));
  ScanGrads<T> r;
  r.du = cast_vec<T>(g.du);
  r.ddelta = cast_vec<T>(g.ddelta);
  r.ddelta_bias = cast_vec<T>(g.ddelta_bias);
  r.dA = cast_vec<T>(g.dA);
  r.dB = cast_vec<T>(g.dB);
  r.dC = cast_vec<T>(g.dC);
  r.dD = cast_vec<T>(g.dD);
  r.dz = cast_vec<T>(g.dz);
  r.dh0 = cast_vec<T>(g.dh0);
  return r;
}

// A (rows, cols) row-major buffer transposed into a (cols, rows) Signals: the scan's (D, L)
// layout ↔ the projections' (L, D).
template <class T>
Signals<T> transposed(const std::vector<T>& v, Eigen::Index rows, Eigen::Index cols) {
  return Eigen::Map<const Signals<T>>(v.data(), rows, cols).transpose();
}
template <class T, class Derived>
void put_transposed(const Eigen::MatrixBase<Derived>& m, std::vector<T>& v) {
  v.resize(std::size_t(m.size()));
  Eigen::Map<Signals<T>>(v.data(), m.cols(), m.rows()) = m.transpose();
}

// Everything the block's backward needs from its forward (M8), recomputed from X.
template <class T>
struct BlockActs {
  Signals<T> h;     // (L, d_model)    RMSNorm(X)
  Signals<T> x1;    // (L, d_inner)    in_proj's x half, the conv's input
  Signals<T> a;     // (L, d_inner)    conv output before the SiLU
  Signals<T> xc;    // (L, d_inner)    x' = silu(a)
  Signals<T> xdbl;  // (L, R + 2N)     δ | B | C
  ScanParams<T> own;             // the scan's parameters when the caller has none prepared
  const ScanParams<T>* p = nullptr;  // &own, or the LM's cached ones (MambaLM::Prepared)
  ScanInputs<T> in;  // u = x', Δraw, z (D, L); B, C (N, L)
  std::vector<T> y;  // (d_inner, L)  the gated scan output
};

// y = silu(a) over n values (M4): simd::silu in float, std::exp in double.
template <class T>
void silu_all(const T* a, T* y, std::size_t n) {
  if constexpr (std::is_same_v<T, float>)
    simd::map<simd::f32x16>(y, n, [](simd::f32x16 v) { return simd::silu(v); }, a);
  else
    for (std::size_t i = 0; i < n; ++i) y[i] = silu(a[i]);
}

inline float exp_of(float x) { return std::exp(x); }
inline double exp_of(double x) { return std::exp(x); }
inline simd::f32x16 exp_of(simd::f32x16 x) { return simd::exp(x); }

// dx = dy ∘ silu'(a), silu'(a) = σ(a)(1 + a(1 − σ(a))) (G16, G1), over n values.
template <class T>
void silu_backward_all(const T* a, const T* dy, T* dx, std::size_t n) {
  auto one = [](auto v, auto g) {
    const auto s = T(1) / (T(1) + exp_of(-v));
    return g * (s * (T(1) + v * (T(1) - s)));
  };
  if constexpr (std::is_same_v<T, float>)
    simd::map<simd::f32x16>(dx, n, one, a, dy);
  else
    for (std::size_t i = 0; i < n; ++i) dx[i] = one(a[i], dy[i]);
}

// scan: the block's scan parameters, already made from w by an LM that validated w (its
// WeightsCache); null: w is validated here and the parameters made (the public functions).
template <class T>
void block_activations(const MambaConfig& cfg, const MambaBlockWeights<T>& w, const Signals<T>& X,
                       BlockActs<T>& s, const MambaRunOptions& opt,
                       const ScanParams<T>* scan = nullptr) {
  if (!scan) check_block(cfg, w, "Mamba block: ");
  require(X.cols() == cfg.d_model, [&] {
    return "Mamba block: X has " + std::to_string(X.cols()) +
           " columns, expected d_model = " + std::to_string(cfg.d_model);
  });
  require(X.rows() >= 1, "Mamba block: X has L = 0 rows (expected at least 1 token)");
  require(X.allFinite(), "Mamba block: X holds non-finite values");
  const Eigen::Index L = X.rows(), di = cfg.d_inner(), N = cfg.d_state, R = cfg.rank();
  rms_norm(X, w.norm_w, cfg.rms_eps, s.h);
  const Signals<T> xz = s.h * w.in_proj.transpose();  // (L, 2·d_inner): x | z
  s.x1 = xz.leftCols(di);
  causal_conv1d(s.x1, w.conv_w, w.conv_b, s.a);
  s.xc.resize(L, di);
  silu_all(s.a.data(), s.xc.data(), std::size_t(s.a.size()));
  s.xdbl = s.xc * w.x_proj.transpose();
  const Signals<T> draw = s.xdbl.leftCols(R) * w.dt_proj.transpose();  // (L, d_inner)
  if (scan) {
    s.p = scan;
  } else {
    s.own = scan_params_of(w);
    s.p = &s.own;
  }
  s.in.batch = 1;
  s.in.L = static_cast<int>(L);
  put_transposed(s.xc, s.in.u);
  put_transposed(draw, s.in.delta);
  put_transposed(xz.rightCols(di), s.in.z);
  put_transposed(s.xdbl.middleCols(R, N), s.in.B);
  put_transposed(s.xdbl.rightCols(N), s.in.C);
  s.y = run_scan(*s.p, s.in, opt);
}


}  // namespace

// ---------------------------------------------------------------------------------------------
// The pieces
// ---------------------------------------------------------------------------------------------

template <class T>
void rms_norm_backward(const Signals<T>& X, const VecT<T>& w, double eps, const Signals<T>& dY,
                       Signals<T>& dX, VecT<T>& dw) {
  require(w.size() == X.cols(), [&] {
    return "rms_norm_backward: w has " + std::to_string(w.size()) + " entries, expected " +
           std::to_string(X.cols());
  });
  require(dY.rows() == X.rows() && dY.cols() == X.cols(), [&] {
    return "rms_norm_backward: dY is " + shape_of(dY.rows(), dY.cols()) + ", expected X's " +
           shape_of(X.rows(), X.cols());
  });
  const Eigen::Index L = X.rows(), d = X.cols();
  require(&dX != &X && &dX != &dY, "rms_norm_backward: dX must not be X or dY");
  dX.resize(L, d);
  dw.setZero(d);
  std::vector<T> g(static_cast<std::size_t>(d));
  for (Eigen::Index t = 0; t < L; ++t) {
    const T *x = X.row(t).data(), *dy = dY.row(t).data();
    // r = (mean(x²) + eps)^−½, the forward's scale (sums in double, as rms_norm).
    const double r = 1.0 / std::sqrt(detail::dot_double(x, x, d) / double(d) + eps);
    for (Eigen::Index i = 0; i < d; ++i) g[std::size_t(i)] = dy[i] * w(i);  // g = dY ∘ w
    const double gx = detail::dot_double(g.data(), x, d);
    // (G14) dX = r (g − X r² ⟨g, X⟩ / d),  dw += dY ∘ X r
    const T rt = T(r), c = T(r * r * r * gx / double(d));
    T* dx = dX.row(t).data();
    for (Eigen::Index i = 0; i < d; ++i) {
      dx[i] = rt * g[std::size_t(i)] - x[i] * c;
      dw(i) += dy[i] * x[i] * rt;
    }
  }
}

template <class T>
void linear_backward(const Signals<T>& X, const MatT<T>& W, const Signals<T>& dY, Signals<T>& dX,
                     MatT<T>& dW) {
  require(X.cols() == W.cols(), [&] {
    return "linear_backward: X has " + std::to_string(X.cols()) + " columns, expected W's in = " +
           std::to_string(W.cols());
  });
  require(dY.rows() == X.rows() && dY.cols() == W.rows(), [&] {
    return "linear_backward: dY is " + shape_of(dY.rows(), dY.cols()) + ", expected (L, out) = " +
           shape_of(X.rows(), W.rows());
  });
  // (G15) Y = X Wᵀ: dX = dY W, dW = dYᵀ X.
  MatT<T> dw = dY.transpose() * X;
  dX = dY * W;
  dW = std::move(dw);
}

template <class T>
void causal_conv1d(const Signals<T>& X, const MatT<T>& w, const VecT<T>& b, Signals<T>& Y) {
  require(w.rows() == X.cols() && b.size() == X.cols(), [&] {
    return "causal_conv1d: w has " + std::to_string(w.rows()) + " rows and b " +
           std::to_string(b.size()) + " entries, expected one per channel = " +
           std::to_string(X.cols());
  });
  const Eigen::Index L = X.rows(), C = X.cols(), K = w.cols();
  Signals<T> y(L, C);
  // (G16) Y_{t,c} = b_c + Σ_k w_{c,k} X_{t−K+1+k, c}, the sum in increasing k; the channels
  // run innermost, contiguous in X's and Y's rows and in w's columns (vectorized).
  for (Eigen::Index t = 0; t < L; ++t) {
    T* yt = y.row(t).data();
    for (Eigen::Index c = 0; c < C; ++c) yt[c] = b(c);
    for (Eigen::Index k = std::max<Eigen::Index>(0, K - 1 - t); k < K; ++k) {
      const T *xs = X.row(t - (K - 1) + k).data(), *wk = w.col(k).data();
      for (Eigen::Index c = 0; c < C; ++c) yt[c] += wk[c] * xs[c];
    }
  }
  Y = std::move(y);
}

template <class T>
void causal_conv1d_backward(const Signals<T>& X, const MatT<T>& w, const Signals<T>& dY,
                            Signals<T>& dX, MatT<T>& dw, VecT<T>& db) {
  require(w.rows() == X.cols(), [&] {
    return "causal_conv1d_backward: w has " + std::to_string(w.rows()) +
           " rows, expected one per channel = " + std::to_string(X.cols());
  });
  require(dY.rows() == X.rows() && dY.cols() == X.cols(), [&] {
    return "causal_conv1d_backward: dY is " + shape_of(dY.rows(), dY.cols()) + ", expected X's " +
           shape_of(X.rows(), X.cols());
  });
  const Eigen::Index L = X.rows(), C = X.cols(), K = w.cols();
  Signals<T> dx = Signals<T>::Zero(L, C);
  MatT<T> dwt = MatT<T>::Zero(C, K);
  VecT<T> dbt = VecT<T>::Zero(C);
  // (G16) Each forward term w_{c,k} X_{s,c} (s = t − K + 1 + k) sends dY_{t,c} to both factors.
  // Channels innermost (contiguous rows and columns, vectorized); every sum still runs in t.
  for (Eigen::Index t = 0; t < L; ++t) {
    const T* g = dY.row(t).data();
    for (Eigen::Index c = 0; c < C; ++c) dbt(c) += g[c];
    for (Eigen::Index k = std::max<Eigen::Index>(0, K - 1 - t); k < K; ++k) {
      const Eigen::Index s = t - (K - 1) + k;
      T *dxs = dx.row(s).data(), *dwk = dwt.col(k).data();
      const T *xs = X.row(s).data(), *wk = w.col(k).data();
      for (Eigen::Index c = 0; c < C; ++c) {
        dxs[c] += g[c] * wk[c];
        dwk[c] += g[c] * xs[c];
      }
    }
  }
  dX = std::move(dx);
  dw = std::move(dwt);
  db = std::move(dbt);
}

template <class T>
void silu_backward(const Signals<T>& X, const Signals<T>& dY, Signals<T>& dX) {
  require(dY.rows() == X.rows() && dY.cols() == X.cols(), [&] {
    return "silu_backward: dY is " + shape_of(dY.rows(), dY.cols()) + ", expected X's " +
           shape_of(X.rows(), X.cols());
  });
  Signals<T> dx(X.rows(), X.cols());
  silu_backward_all(X.data(), dY.data(), dx.data(), std::size_t(X.size()));  // (G16, G1)
  dX = std::move(dx);
}

// ---------------------------------------------------------------------------------------------
// The block
// ---------------------------------------------------------------------------------------------

template <class T>
void validate_block_weights(const MambaConfig& cfg, const MambaBlockWeights<T>& w) {
  check_block(cfg, w, "Mamba block: ");
}

namespace {

// The block's forward and backward with the scan parameters given (null: validate w and make
// them): the public functions below, and MambaLM with its cached ones.
// keep, when not null, receives the activations (the backward's, so it need not recompute them).
template <class T>
void block_forward(const MambaConfig& cfg, const MambaBlockWeights<T>& w, const Signals<T>& X,
                   Signals<T>& Out, const MambaRunOptions& opt, const ScanParams<T>* scan,
                   BlockActs<T>* keep = nullptr) {
  BlockActs<T> local;
  BlockActs<T>& s = keep ? *keep : local;
  block_activations(cfg, w, X, s, opt, scan);
  // out = X + y W_outᵀ, y (d_inner, L) from the scan.
  Signals<T> out = X + transposed(s.y, cfg.d_inner(), X.rows()) * w.out_proj.transpose();
  Out = std::move(out);
}

template <class T>
void block_backward(const MambaConfig& cfg, const MambaBlockWeights<T>& w, const Signals<T>& X,
                    const Signals<T>& dOut, Signals<T>& dX, MambaBlockGrads<T>& grads,
                    const MambaRunOptions& opt, const ScanParams<T>* scan,
                    const BlockActs<T>* kept = nullptr) {
  require(dOut.rows() == X.rows() && dOut.cols() == X.cols(), [&] {
    return "Mamba block backward: dOut is " + shape_of(dOut.rows(), dOut.cols()) +
           ", expected X's (L, d_model) = " + shape_of(X.rows(), X.cols());
  });
  require(dOut.allFinite(), "Mamba block backward: dOut holds non-finite values");
  // The forward's activations: kept by the caller's forward (block_forward's keep, from this
  // X and these weights), or recomputed from X.
  BlockActs<T> local;
  if (!kept) block_activations(cfg, w, X, local, opt, scan);
  const BlockActs<T>& s = kept ? *kept : local;
  const Eigen::Index L = X.rows(), di = cfg.d_inner(), N = cfg.d_state, R = cfg.rank();
  MambaBlockGrads<T> g;

  // (G17) out = X + Y W_outᵀ with Y = yᵀ (L, d_inner): out_proj's backward (G15).
  Signals<T> dY;
  linear_backward<T>(transposed(s.y, di, L), w.out_proj, dOut, dY, g.out_proj);

  // The scan (G1–G9); its outputs come back in the scan's (D, L) / (N, L) layouts.
  std::vector<T> dy;
  put_transposed(dY, dy);
  const ScanGrads<T> sg = run_scan_backward(*s.p, s.in, dy, opt);
  g.D = Eigen::Map<const VecT<T>>(sg.dD.data(), di);
  g.dt_bias = Eigen::Map<const VecT<T>>(sg.ddelta_bias.data(), di);
  g.A_log.resize(di, N);  // A = −exp(A_log): dA_log = dA · ∂A/∂A_log = dA · A
  for (Eigen::Index c = 0; c < di; ++c)
    for (Eigen::Index n = 0; n < N; ++n)
      g.A_log(c, n) = sg.dA[std::size_t(c * N + n)] * s.p->A[std::size_t(c * N + n)];

  // Δraw = δ W_dtᵀ (G15).
  Signals<T> ddelta_low;
  linear_backward<T>(s.xdbl.leftCols(R), w.dt_proj, transposed(sg.ddelta, di, L), ddelta_low,
                     g.dt_proj);

  // [δ, B, C] = x' W_xᵀ (G15): x' also is the scan's u, so its two gradients add.
  Signals<T> dxdbl(L, R + 2 * N);
  dxdbl.leftCols(R) = ddelta_low;
  dxdbl.middleCols(R, N) = transposed(sg.dB, N, L);
  dxdbl.rightCols(N) = transposed(sg.dC, N, L);
  Signals<T> dxc;
  linear_backward(s.xc, w.x_proj, dxdbl, dxc, g.x_proj);
  dxc += transposed(sg.du, di, L);

  // x' = silu(a), a = conv(x₁) + b (G16).
  Signals<T> da, dx1;
  silu_backward(s.a, dxc, da);
  causal_conv1d_backward(s.x1, w.conv_w, da, dx1, g.conv_w, g.conv_b);

  // [x₁, z] = h W_inᵀ (G15): z's gradient is the gate's (G1).
  Signals<T> dxz(L, 2 * di), dh;
  dxz.leftCols(di) = dx1;
  dxz.rightCols(di) = transposed(sg.dz, di, L);
  linear_backward(s.h, w.in_proj, dxz, dh, g.in_proj);

  // h = RMSNorm(X) (G14), and the residual: X reaches out directly too.
  Signals<T> dx;
  rms_norm_backward(X, w.norm_w, cfg.rms_eps, dh, dx, g.norm_w);
  dx += dOut;
  dX = std::move(dx);
  grads = std::move(g);
}

}  // namespace

template <class T>
void mamba_block_forward(const MambaConfig& cfg, const MambaBlockWeights<T>& w, const Signals<T>& X,
                         Signals<T>& Out, const MambaRunOptions& opt) {
  block_forward(cfg, w, X, Out, opt, static_cast<const ScanParams<T>*>(nullptr));
}

template <class T>
void mamba_block_backward(const MambaConfig& cfg, const MambaBlockWeights<T>& w,
                          const Signals<T>& X, const Signals<T>& dOut, Signals<T>& dX,
                          MambaBlockGrads<T>& grads, const MambaRunOptions& opt) {
  block_backward(cfg, w, X, dOut, dX, grads, opt, static_cast<const ScanParams<T>*>(nullptr));
}

// ---------------------------------------------------------------------------------------------
// The language model
// ---------------------------------------------------------------------------------------------

template <class T>
std::vector<ParamView<T>> param_views(MambaLMWeights<T>& w) {
  std::vector<ParamView<T>> v;
  auto add = [&v](std::string name, auto& a, bool decay) {
    v.push_back({std::move(name), a.data(), static_cast<std::size_t>(a.size()), decay});
  };
  add("embedding", w.embedding, true);
  for (std::size_t l = 0; l < w.blocks.size(); ++l) {
    auto& b = w.blocks[l];
    const std::string p = "layers." + std::to_string(l) + ".";
    add(p + "norm_w", b.norm_w, false);
    add(p + "in_proj", b.in_proj, true);
    add(p + "conv_w", b.conv_w, true);
    add(p + "conv_b", b.conv_b, false);
    add(p + "x_proj", b.x_proj, true);
    add(p + "dt_proj", b.dt_proj, true);
    add(p + "dt_bias", b.dt_bias, false);
    add(p + "A_log", b.A_log, false);
    add(p + "D", b.D, false);
    add(p + "out_proj", b.out_proj, true);
  }
  add("norm_f", w.norm_f, false);
  if (w.lm_head.size() > 0) add("lm_head", w.lm_head, true);
  return v;
}

template <class To, class From>
MambaLMWeights<To> cast_weights(const MambaLMWeights<From>& w) {
  MambaLMWeights<To> r;
  r.embedding = w.embedding.template cast<To>();
  for (const auto& b : w.blocks) {
    MambaBlockWeights<To> c;
    c.in_proj = b.in_proj.template cast<To>();
    c.conv_w = b.conv_w.template cast<To>();
    c.conv_b = b.conv_b.template cast<To>();
    c.x_proj = b.x_proj.template cast<To>();
    c.dt_proj = b.dt_proj.template cast<To>();
    c.dt_bias = b.dt_bias.template cast<To>();
    c.A_log = b.A_log.template cast<To>();
    c.D = b.D.template cast<To>();
    c.out_proj = b.out_proj.template cast<To>();
    c.norm_w = b.norm_w.template cast<To>();
    r.blocks.push_back(std::move(c));
  }
  r.norm_f = w.norm_f.template cast<To>();
  r.lm_head = w.lm_head.template cast<To>();
  return r;
}

template <class T>
MambaLM<T>::MambaLM(const MambaConfig& cfg, int vocab, bool tied, std::uint64_t seed) : cfg_(cfg) {
  require(vocab >= 2 && vocab <= (1 << 20),
          "Mamba LM: vocab = " + std::to_string(vocab) + " is out of range [2, 1048576]");
  w_.blocks = MambaModel<T>(cfg, seed).blocks();  // (M6), validates cfg
  const int dm = cfg.d_model;
  w_.norm_f = VecT<T>::Ones(dm);
  std::mt19937_64 rng(mix_seed(seed, 1));
  std::normal_distribution<double> nd(0.0, 0.02);
  w_.embedding.resize(vocab, dm);
  for (Eigen::Index j = 0; j < dm; ++j)
    for (Eigen::Index i = 0; i < vocab; ++i) w_.embedding(i, j) = static_cast<T>(nd(rng));
  if (!tied) {
    std::mt19937_64 rng2(mix_seed(seed, 2));
    w_.lm_head = detail::uniform<T>(rng2, vocab, dm, 1.0 / std::sqrt(double(dm)));
  }
}

template <class T>
std::shared_ptr<const typename MambaLM<T>::Prepared> MambaLM<T>::check(
    const std::vector<int>& tokens, const std::vector<int>* targets) const {
  const int V = vocab();
  check_tokens("Mamba LM", V, tokens, targets);
  require(w_.blocks.size() == std::size_t(cfg_.n_layers), [&] {
    return "Mamba LM: weights have " + std::to_string(w_.blocks.size()) +
           " blocks, expected n_layers = " + std::to_string(cfg_.n_layers);
  });
  // Every array's bits: the cache validates and derives once per change of the weights.
  using Span = typename WeightsCache<Prepared>::Span;
  std::vector<Span> arrays;
  arrays.reserve(3 + 10 * w_.blocks.size());
  auto add = [&arrays](const auto& a) {
    arrays.push_back({a.data(), std::size_t(a.size()) * sizeof(T)});
  };
  add(w_.embedding);
  add(w_.norm_f);
  add(w_.lm_head);
  for (const auto& b : w_.blocks) {
    add(b.norm_w), add(b.in_proj), add(b.conv_w), add(b.conv_b), add(b.x_proj);
    add(b.dt_proj), add(b.dt_bias), add(b.A_log), add(b.D), add(b.out_proj);
  }
  return cache_.get(arrays, 0, [&] {
    check_array("Mamba LM: ", "embedding", w_.embedding, w_.embedding.rows(), cfg_.d_model,
                "vocab, d_model");
    check_array("Mamba LM: ", "norm_f", w_.norm_f, cfg_.d_model, 1, "d_model");
    if (!tied())
      check_array("Mamba LM: ", "lm_head", w_.lm_head, V, cfg_.d_model, "vocab, d_model");
    auto p = std::make_shared<Prepared>();
    for (std::size_t l = 0; l < w_.blocks.size(); ++l) {
      check_block(cfg_, w_.blocks[l], "Mamba LM: layers." + std::to_string(l) + ".");
      p->scan.push_back(scan_params_of(w_.blocks[l]));
    }
    return std::shared_ptr<const Prepared>(std::move(p));
  });
}

// What loss_and_grad's forward keeps for the backward: every block's input and activations.
template <class T>
struct MambaLM<T>::Kept {
  std::vector<Signals<T>> inputs;
  std::vector<BlockActs<T>> acts;
};

template <class T>
void MambaLM<T>::body(const std::vector<int>& tokens, Signals<T>& xf, Kept* keep,
                      const Prepared& prep, const MambaRunOptions& opt) const {
  const auto L = static_cast<Eigen::Index>(tokens.size());
  Signals<T> x(L, cfg_.d_model);
  for (Eigen::Index t = 0; t < L; ++t) x.row(t) = w_.embedding.row(tokens[std::size_t(t)]);
  if (keep) {
    keep->inputs.resize(w_.blocks.size());
    keep->acts.resize(w_.blocks.size());  // sized once: acts[l].p may point into acts[l]
  }
  for (std::size_t l = 0; l < w_.blocks.size(); ++l) {
    if (keep) keep->inputs[l] = x;
    // x ← x + M8(RMSNorm(x))
    block_forward(cfg_, w_.blocks[l], x, x, opt, &prep.scan[l], keep ? &keep->acts[l] : nullptr);
  }
  xf = std::move(x);
}

template <class T>
void MambaLM<T>::logits(const std::vector<int>& tokens, Signals<T>& out,
                        const MambaRunOptions& opt) const {
  const auto prep = check(tokens, nullptr);
  Signals<T> xf, hf;
  body(tokens, xf, nullptr, *prep, opt);
  rms_norm(xf, w_.norm_f, cfg_.rms_eps, hf);
  out = hf * head().transpose();  // (L, vocab)
}


template <class T>
double MambaLM<T>::loss(const std::vector<int>& tokens, const std::vector<int>& targets,
                        const MambaRunOptions& opt) const {
  check(tokens, &targets);
  Signals<T> lg;
  logits(tokens, lg, opt);
  return softmax_cross_entropy(lg, targets, static_cast<Signals<T>*>(nullptr));
}

template <class T>
double MambaLM<T>::loss_and_grad(const std::vector<int>& tokens, const std::vector<int>& targets,
                                 MambaLMWeights<T>& grads, const MambaRunOptions& opt) const {
  const auto prep = check(tokens, &targets);
  Kept kept;  // every block's input and activations
  Signals<T> xf, hf, dlog;
  body(tokens, xf, &kept, *prep, opt);
  rms_norm(xf, w_.norm_f, cfg_.rms_eps, hf);
  const Signals<T> lg = hf * head().transpose();
  const double l = softmax_cross_entropy(lg, targets, &dlog);

  MambaLMWeights<T> g;
  // logits = h_f Hᵀ (G15): dH = dlogitsᵀ h_f, dh_f = dlogits H.
  Signals<T> dhf, dx, dprev;
  MatT<T> dH;
  linear_backward(hf, head(), dlog, dhf, dH);
  if (tied()) {
    g.embedding = std::move(dH);  // the tied table's head half; the scatter-add follows
  } else {
    g.embedding = MatT<T>::Zero(w_.embedding.rows(), w_.embedding.cols());
    g.lm_head = std::move(dH);
  }
  rms_norm_backward(xf, w_.norm_f, cfg_.rms_eps, dhf, dx, g.norm_f);  // (G14)
  g.blocks.resize(w_.blocks.size());
  for (std::size_t b = w_.blocks.size(); b-- > 0;) {  // (G17), last block first
    block_backward(cfg_, w_.blocks[b], kept.inputs[b], dx, dprev, g.blocks[b], opt,
                   &prep->scan[b], &kept.acts[b]);
    std::swap(dx, dprev);
  }
  // x_0 row t = embedding row tokens[t]: a repeated token sums its rows' gradients.
  for (std::size_t t = 0; t < tokens.size(); ++t)
    g.embedding.row(tokens[t]) += dx.row(static_cast<Eigen::Index>(t));
  grads = std::move(g);
  return l;
}

#define SSM_GRAD_MAMBA_INSTANTIATE(T)                                                              \
  template void rms_norm_backward<T>(const Signals<T>&, const VecT<T>&, double, const Signals<T>&, \
                                     Signals<T>&, VecT<T>&);                                       \
  template void linear_backward<T>(const Signals<T>&, const MatT<T>&, const Signals<T>&,           \
                                   Signals<T>&, MatT<T>&);                                         \
  template void causal_conv1d<T>(const Signals<T>&, const MatT<T>&, const VecT<T>&, Signals<T>&);  \
  template void causal_conv1d_backward<T>(const Signals<T>&, const MatT<T>&, const Signals<T>&,    \
                                          Signals<T>&, MatT<T>&, VecT<T>&);                        \
  template void silu_backward<T>(const Signals<T>&, const Signals<T>&, Signals<T>&);               \
  template void validate_block_weights<T>(const MambaConfig&, const MambaBlockWeights<T>&);        \
  template void mamba_block_forward<T>(const MambaConfig&, const MambaBlockWeights<T>&,            \
                                       const Signals<T>&, Signals<T>&, const MambaRunOptions&);    \
  template void mamba_block_backward<T>(const MambaConfig&, const MambaBlockWeights<T>&,           \
                                        const Signals<T>&, const Signals<T>&, Signals<T>&,         \
                                        MambaBlockGrads<T>&, const MambaRunOptions&);              \
  template std::vector<ParamView<T>> param_views<T>(MambaLMWeights<T>&);                           \
  template class MambaLM<T>;
SSM_GRAD_MAMBA_INSTANTIATE(float)
SSM_GRAD_MAMBA_INSTANTIATE(double)
template MambaLMWeights<float> cast_weights<float, double>(const MambaLMWeights<double>&);
template MambaLMWeights<double> cast_weights<double, float>(const MambaLMWeights<float>&);
template MambaLMWeights<float> cast_weights<float, float>(const MambaLMWeights<float>&);
template MambaLMWeights<double> cast_weights<double, double>(const MambaLMWeights<double>&);

}  // namespace ssm
