#include "ssm/mamba.hpp"

#include <cmath>
#include <random>
#include <string>

#include "elementwise.hpp"

namespace ssm {

namespace {

using detail::silu;
using detail::uniform;

void check_range(const char* name, int v, int lo, int hi) {
  if (v < lo || v > hi)
    throw Error(std::string("Mamba config: ") + name + " = " + std::to_string(v) +
                " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
}

}  // namespace

template <class T>
void rms_norm(const Signals<T>& X, const VecT<T>& w, double eps, Signals<T>& Y) {
  require(w.size() == X.cols(), [&] {
    return "rms_norm: weight has " + std::to_string(w.size()) + " entries, expected " +
           std::to_string(X.cols());
  });
  const Eigen::Index d = X.cols();
  Y.resize(X.rows(), d);
  for (Eigen::Index t = 0; t < X.rows(); ++t) {
    const T* x = X.row(t).data();
    const double ms = detail::dot_double(x, x, d) / double(d);  // in double
    const T inv = static_cast<T>(1.0 / std::sqrt(ms + eps));
    T* y = Y.row(t).data();
    for (Eigen::Index i = 0; i < d; ++i) y[i] = x[i] * inv * w(i);
  }
}

template <class T>
MambaModel<T>::MambaModel(const MambaConfig& cfg, std::uint64_t seed) : cfg_(cfg) {
  check_range("d_model", cfg.d_model, 1, 4096);
  check_range("d_state", cfg.d_state, 1, kMaxScanN);
  check_range("d_conv", cfg.d_conv, 1, 16);
  check_range("expand", cfg.expand, 1, 8);
  check_range("n_layers", cfg.n_layers, 1, 64);
  check_range("dt_rank", cfg.rank(), 1, 4096);
  require(
      cfg.dt_min > 0 && cfg.dt_min <= cfg.dt_max && std::isfinite(cfg.dt_max),
      "Mamba config: need 0 < dt_min <= dt_max, got " + fmt(cfg.dt_min) + ", " + fmt(cfg.dt_max));
  const int dm = cfg.d_model, di = cfg.d_inner(), N = cfg.d_state, R = cfg.rank(), K = cfg.d_conv;
  for (int l = 0; l < cfg.n_layers; ++l) {
    std::mt19937_64 rng(mix_seed(seed, std::uint64_t(l) + 100));
    MambaBlockWeights<T> w;
    w.in_proj = uniform<T>(rng, 2 * di, dm, 1.0 / std::sqrt(double(dm)));
    w.conv_w = uniform<T>(rng, di, K, 1.0 / std::sqrt(double(K)));  // fan_in = 1 channel · K taps
    w.conv_b = uniform<T>(rng, di, 1, 1.0 / std::sqrt(double(K)));
    w.x_proj = uniform<T>(rng, R + 2 * N, di, 1.0 / std::sqrt(double(di)));
    w.dt_proj =
        uniform<T>(rng, di, R, 1.0 / std::sqrt(double(R)));  // dt_init_std = dt_rank^−½ (M6)
    w.dt_bias.resize(di);
    std::uniform_real_distribution<double> u01(0.0, 1.0);
    for (int c = 0; c < di; ++c) {  // Δ log-uniform in [dt_min, dt_max], floored (M6)
      double dt =
          std::exp(std::log(cfg.dt_min) + u01(rng) * (std::log(cfg.dt_max) - std::log(cfg.dt_min)));
      dt = std::max(dt, cfg.dt_init_floor);
      w.dt_bias(c) = static_cast<T>(inverse_softplus(dt));
    }
    w.A_log.resize(di, N);
    for (int c = 0; c < di; ++c)
      for (int n = 0; n < N; ++n) w.A_log(c, n) = static_cast<T>(std::log(double(n + 1)));  // (M6)
    w.D = VecT<T>::Ones(di);
    // Pre-norm residual rescaling: out_proj / √(n_layers) (one residual per layer).
    w.out_proj =
        uniform<T>(rng, dm, di, 1.0 / std::sqrt(double(di)) / std::sqrt(double(cfg.n_layers)));
    w.norm_w = VecT<T>::Ones(dm);
    blocks_.push_back(std::move(w));
  }
  norm_f_ = VecT<T>::Ones(dm);
  refresh_scan_params();
}

template <class T>
void MambaModel<T>::refresh_scan_params() {
  const int di = cfg_.d_inner(), N = cfg_.d_state;
  scan_.clear();
  for (const auto& w : blocks_) {
    ScanParams<T> p;
    p.D = di;
    p.N = N;
    p.A.resize(std::size_t(di) * N);
    for (int c = 0; c < di; ++c)
      for (int n = 0; n < N; ++n)
        p.A[std::size_t(c) * N + n] =
            static_cast<T>(-std::exp(double(w.A_log(c, n))));  // A = −exp(A_log)
    p.D_skip.assign(w.D.data(), w.D.data() + di);
    p.delta_bias.assign(w.dt_bias.data(), w.dt_bias.data() + di);
    p.delta_softplus = true;
    validate(p);
    scan_.push_back(std::move(p));
  }
}

template <class T>
void MambaModel<T>::set_weights(const std::vector<MambaBlockWeights<T>>& blocks,
                                const VecT<T>& norm_f) {
  require(blocks.size() == std::size_t(cfg_.n_layers),
          "Mamba set_weights: " + std::to_string(blocks.size()) + " blocks, expected n_layers = " +
              std::to_string(cfg_.n_layers));
  require(norm_f.size() == cfg_.d_model && norm_f.allFinite(),
          "Mamba set_weights: norm_f must hold d_model = " + std::to_string(cfg_.d_model) +
              " finite values");
  for (std::size_t l = 0; l < blocks.size(); ++l) {
    const auto& w = blocks[l];
    const auto& o = blocks_[l];
    require(w.in_proj.rows() == o.in_proj.rows() && w.in_proj.cols() == o.in_proj.cols() &&
                w.conv_w.rows() == o.conv_w.rows() && w.conv_w.cols() == o.conv_w.cols() &&
                w.conv_b.size() == o.conv_b.size() && w.x_proj.rows() == o.x_proj.rows() &&
                w.x_proj.cols() == o.x_proj.cols() && w.dt_proj.rows() == o.dt_proj.rows() &&
                w.dt_proj.cols() == o.dt_proj.cols() && w.dt_bias.size() == o.dt_bias.size() &&
                w.A_log.rows() == o.A_log.rows() && w.A_log.cols() == o.A_log.cols() &&
                w.D.size() == o.D.size() && w.out_proj.rows() == o.out_proj.rows() &&
                w.out_proj.cols() == o.out_proj.cols() && w.norm_w.size() == o.norm_w.size(),
            "Mamba set_weights: layer " + std::to_string(l) +
                " has an array whose shape differs from the config's");
  }
  blocks_ = blocks;
  norm_f_ = norm_f;
  refresh_scan_params();
}

template <class T>
std::vector<MambaLayerState<T>> MambaModel<T>::initial_state() const {
  std::vector<MambaLayerState<T>> s(static_cast<std::size_t>(cfg_.n_layers));
  for (auto& x : s) {
    x.conv = MatT<T>::Zero(cfg_.d_inner(), cfg_.d_conv);
    x.ssm.assign(std::size_t(cfg_.d_inner()) * cfg_.d_state, T(0));
  }
  return s;
}

template <class T>
void MambaModel<T>::block_forward(int l, const Signals<T>& h, Signals<T>& out,
                                  MambaLayerState<T>* st, int threads) const {
  const auto& w = blocks_[static_cast<std::size_t>(l)];
  const Eigen::Index L = h.rows(), di = cfg_.d_inner(), N = cfg_.d_state, R = cfg_.rank(),
                     K = cfg_.d_conv;
  const Signals<T> xz = h * w.in_proj.transpose();  // (L, 2·d_inner): x | z
  ScanInputs<T> in;
  in.batch = 1;
  in.L = static_cast<int>(L);
  in.u.resize(std::size_t(di * L));
  in.z.resize(std::size_t(di * L));
  in.delta.resize(std::size_t(di * L));
  in.B.resize(std::size_t(N * L));
  in.C.resize(std::size_t(N * L));
  // Causal depthwise conv (zero history before t = 0), then SiLU. Stored twice: (L, d_inner)
  // for x_proj's product and (d_inner, L) as the scan's u.
  Signals<T> xc(L, di);
  for (Eigen::Index c = 0; c < di; ++c)
    for (Eigen::Index t = 0; t < L; ++t) {
      T acc = w.conv_b(c);
      for (Eigen::Index k = 0; k < K; ++k) {
        const Eigen::Index tt = t - (K - 1) + k;
        if (tt >= 0) acc += w.conv_w(c, k) * xz(tt, c);
      }
      xc(t, c) = silu(acc);
      in.u[std::size_t(c * L + t)] = xc(t, c);
      in.z[std::size_t(c * L + t)] = xz(t, di + c);
    }
  const Signals<T> xdbl = xc * w.x_proj.transpose();                 // (L, R + 2N): δ | B | C
  const Signals<T> draw = xdbl.leftCols(R) * w.dt_proj.transpose();  // (L, d_inner): Δraw
  for (Eigen::Index t = 0; t < L; ++t) {
    for (Eigen::Index c = 0; c < di; ++c) in.delta[std::size_t(c * L + t)] = draw(t, c);
    for (Eigen::Index n = 0; n < N; ++n) {
      in.B[std::size_t(n * L + t)] = xdbl(t, R + n);
      in.C[std::size_t(n * L + t)] = xdbl(t, R + N + n);
    }
  }
  ScanOutputs<T> so;
  selective_scan(scan_[static_cast<std::size_t>(l)], in, so, threads);  // (M1–M4), gated by z
  const Eigen::Map<const Signals<T>> Y(so.y.data(), di, L);             // (d_inner, L)
  out = Y.transpose() * w.out_proj.transpose();                         // (L, d_model)
  if (st) {  // the state step() continues from: the conv's last K inputs and the scan's h
    st->conv = MatT<T>::Zero(di, K);
    for (Eigen::Index k = 0; k < K; ++k) {
      const Eigen::Index tt = L - K + k;
      if (tt >= 0) st->conv.col(k) = xz.row(tt).head(di).transpose();
    }
    st->ssm = so.h_last;
  }
}

template <class T>
void MambaModel<T>::forward(const Signals<T>& X, Signals<T>& Y,
                            std::vector<MambaLayerState<T>>* state, int threads) const {
  require(X.cols() == cfg_.d_model,
          "Mamba forward: input has " + std::to_string(X.cols()) +
              " features per token, expected d_model = " + std::to_string(cfg_.d_model));
  require(X.rows() >= 1, "Mamba forward: L = 0 tokens (expected at least 1)");
  require(X.allFinite(), "Mamba forward: the input holds non-finite values");
  if (state) state->assign(static_cast<std::size_t>(cfg_.n_layers), MambaLayerState<T>{});
  Signals<T> x = X, h, out;
  for (int l = 0; l < cfg_.n_layers; ++l) {
    rms_norm(x, blocks_[static_cast<std::size_t>(l)].norm_w, cfg_.rms_eps, h);
    block_forward(l, h, out, state ? &(*state)[static_cast<std::size_t>(l)] : nullptr, threads);
    x += out;  // pre-norm residual
  }
  rms_norm(x, norm_f_, cfg_.rms_eps, Y);
}

template <class T>
void MambaModel<T>::step(const T* x_in, T* y_out, std::vector<MambaLayerState<T>>& state) const {
  require(state.size() == static_cast<std::size_t>(cfg_.n_layers),
          "Mamba step: state has " + std::to_string(state.size()) + " layers, expected " +
              std::to_string(cfg_.n_layers));
  const Eigen::Index dm = cfg_.d_model, di = cfg_.d_inner(), N = cfg_.d_state, R = cfg_.rank(),
                     K = cfg_.d_conv;
  Signals<T> x = Eigen::Map<const Signals<T>>(x_in, 1, dm), h;
  StepInputs<T> in;
  in.batch = 1;
  std::vector<T> y;
  for (int l = 0; l < cfg_.n_layers; ++l) {
    const auto& w = blocks_[static_cast<std::size_t>(l)];
    auto& st = state[static_cast<std::size_t>(l)];
    require(st.conv.rows() == di && st.conv.cols() == K && st.ssm.size() == std::size_t(di * N),
            "Mamba step: layer " + std::to_string(l) + " state has the wrong shape");
    rms_norm(x, w.norm_w, cfg_.rms_eps, h);
    const VecT<T> xz = w.in_proj * h.row(0).transpose();  // (2·d_inner)
    // The conv window slides by one token: drop the oldest input, append the new one.
    for (Eigen::Index k = 0; k + 1 < K; ++k) st.conv.col(k) = st.conv.col(k + 1);
    st.conv.col(K - 1) = xz.head(di);
    VecT<T> xc = (st.conv.cwiseProduct(w.conv_w)).rowwise().sum() + w.conv_b;
    for (Eigen::Index c = 0; c < di; ++c) xc(c) = silu(xc(c));
    const VecT<T> xdbl = w.x_proj * xc;             // δ | B | C
    const VecT<T> draw = w.dt_proj * xdbl.head(R);  // Δraw (d_inner)
    in.u.assign(xc.data(), xc.data() + di);
    in.delta.assign(draw.data(), draw.data() + di);
    in.z.assign(xz.data() + di, xz.data() + 2 * di);
    in.B.assign(xdbl.data() + R, xdbl.data() + R + N);
    in.C.assign(xdbl.data() + R + N, xdbl.data() + R + 2 * N);
    selective_state_update(scan_[static_cast<std::size_t>(l)], in, st.ssm, y);
    const VecT<T> out = w.out_proj * Eigen::Map<const VecT<T>>(y.data(), di);
    x.row(0) += out.transpose();
  }
  rms_norm(x, norm_f_, cfg_.rms_eps, h);
  Eigen::Map<RowVecT<T>>(y_out, dm) = h.row(0);
}

template class MambaModel<float>;
template class MambaModel<double>;
template void rms_norm<float>(const Signals<float>&, const VecT<float>&, double, Signals<float>&);
template void rms_norm<double>(const Signals<double>&, const VecT<double>&, double,
                               Signals<double>&);

}  // namespace ssm
