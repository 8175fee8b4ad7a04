#include "ssm/grad.hpp"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <string>

#include "elementwise.hpp"
#include "ssm/vmath.hpp"

namespace ssm {

namespace {

int thread_count(int threads) {
  return threads <= 0 ? std::max(1, omp_get_num_procs()) : std::min(threads, 1024);
}

const char* kWho = "selective scan backward: ";

template <class T>
void check_array(const std::vector<T>& v, std::size_t want, const char* name,
                 const std::string& shape, std::size_t d1, std::size_t d2, bool values) {
  if (v.size() != want)
    throw Error(kWho + std::string(name) + " has " + std::to_string(v.size()) +
                " values, expected " + shape + " = " + std::to_string(want));
  if (!values || all_finite(v.data(), v.size())) return;
  for (std::size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i]))
      throw Error(kWho + std::string(name) + "[" + std::to_string(i / (d1 * d2)) + "][" +
                  std::to_string((i / d2) % d1) + "][" + std::to_string(i % d2) +
                  "] = " + fmt(static_cast<double>(v[i])) + " is not finite");
}

// The ZOH derivatives need ψ(x) = (x e^x − (e^x − 1)) / x², since ∂/∂A [(e^{ΔA} − 1)/A] =
// Δ² ψ(ΔA) (G7). The closed form cancels for small x, so below |x| = 1/2 the Taylor series
// ψ(x) = Σ_k (k+1)/(k+2)! x^k (degree 14: truncation < 1e-16 relative).
template <class T>
T psi(T x) {
  static const auto c = [] {  // c_k = (k+1)/(k+2)!
    std::array<T, 15> r{};
    double f = 1;
    for (int k = 0; k < 15; ++k) {
      f *= k + 2;
      r[static_cast<std::size_t>(k)] = static_cast<T>((k + 1) / f);
    }
    return r;
  }();
  if (std::abs(x) < T(0.5)) {
    T p = T(0);
    for (int k = 14; k >= 0; --k) p = p * x + c[static_cast<std::size_t>(k)];  // Horner
    return p;
  }
  return (x * std::exp(x) - std::expm1(x)) / (x * x);
}

template <class T>
T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

// silu'(z) = σ(z) (1 + z (1 − σ(z))).
template <class T>
T dsilu(T z) {
  const T s = sigmoid(z);
  return s * (T(1) + z * (T(1) - s));
}

}  // namespace

template <class T>
void validate_backward(const ScanParams<T>& p, const ScanInputs<T>& in, const std::vector<T>& dy,
                       const std::vector<T>& dh_last, const int* chunk, bool check_values) {
  validate(p, in, check_values);
  if (chunk && *chunk <= 0)
    throw Error(kWho + std::string("chunk = ") + std::to_string(*chunk) + " must be > 0");
  const auto b = static_cast<std::size_t>(in.batch), D = static_cast<std::size_t>(p.D),
             N = static_cast<std::size_t>(p.N), L = static_cast<std::size_t>(in.L);
  check_array(
      dy, b * D * L, "dy",
      "batch·D·L = " + std::to_string(b) + "·" + std::to_string(D) + "·" + std::to_string(L), D, L,
      true);
  if (!dh_last.empty())
    check_array(
        dh_last, b * D * N, "dh_last",
        "batch·D·N = " + std::to_string(b) + "·" + std::to_string(D) + "·" + std::to_string(N), D,
        N, true);
}

// ---------------------------------------------------------------------------------------------
// Reference
// ---------------------------------------------------------------------------------------------
ScanGrads<double> selective_scan_backward_reference(const ScanParams<double>& p,
                                                    const ScanInputs<double>& in,
                                                    const std::vector<double>& dy,
                                                    const std::vector<double>& dh_last) {
  validate_backward(p, in, dy, dh_last, nullptr, true);
  const auto nb = static_cast<std::size_t>(in.batch), D = static_cast<std::size_t>(p.D),
             N = static_cast<std::size_t>(p.N), L = static_cast<std::size_t>(in.L);
  const bool zoh = p.disc == ScanDiscretization::ZOH, gate = !in.z.empty();
  ScanGrads<double> g;
  g.du.assign(nb * D * L, 0.0);
  g.ddelta.assign(nb * D * L, 0.0);
  g.ddelta_bias.assign(D, 0.0);
  g.dA.assign(D * N, 0.0);
  g.dB.assign(nb * N * L, 0.0);
  g.dC.assign(nb * N * L, 0.0);
  g.dD.assign(D, 0.0);
  if (gate) g.dz.assign(nb * D * L, 0.0);
  g.dh0.assign(nb * D * N, 0.0);

  std::vector<double> h((L + 1) * N);  // h[(t + 1)·N + n] = h_{t,n}; row 0 is h_{−1}
  std::vector<double> adj(N);          // Ā_{t+1} g_{t+1} (dh_last at t = L − 1)
  for (std::size_t b = 0; b < nb; ++b)
    for (std::size_t d = 0; d < D; ++d) {
      const double Dd = p.D_skip.empty() ? 0.0 : p.D_skip[d];
      const double bias = p.delta_bias.empty() ? 0.0 : p.delta_bias[d];
      // Forward (M1)–(M3), every state kept.
      for (std::size_t n = 0; n < N; ++n) h[n] = in.h0.empty() ? 0.0 : in.h0[(b * D + d) * N + n];
      for (std::size_t t = 0; t < L; ++t) {
        const std::size_t i = (b * D + d) * L + t;
        const double x = in.delta[i] + bias;
        const double dt = p.delta_softplus ? detail::softplus(x) : x;  // (M1)
        for (std::size_t n = 0; n < N; ++n) {
          const double A = p.A[d * N + n], Bt = in.B[(b * N + n) * L + t];
          const double bbar = zoh ? std::expm1(dt * A) / A * Bt : dt * Bt;        // (M2)
          h[(t + 1) * N + n] = std::exp(dt * A) * h[t * N + n] + bbar * in.u[i];  // (M3)
        }
      }
      // Backward.
      for (std::size_t n = 0; n < N; ++n)
        adj[n] = dh_last.empty() ? 0.0 : dh_last[(b * D + d) * N + n];
      for (std::size_t t = L; t-- > 0;) {
        const std::size_t i = (b * D + d) * L + t;
        const double x = in.delta[i] + bias;
        const double dt = p.delta_softplus ? detail::softplus(x) : x;
        const double u = in.u[i];
        double s = Dd * u;  // s_t = Σ C h + D u: y before the gate (M4)
        for (std::size_t n = 0; n < N; ++n) s += in.C[(b * N + n) * L + t] * h[(t + 1) * N + n];
        double dyp = dy[i];  // (G1)
        if (gate) {
          g.dz[i] = dy[i] * s * dsilu(in.z[i]);
          dyp = dy[i] * detail::silu(in.z[i]);
        }
        g.dD[d] += dyp * u;  // (G6)
        double du = Dd * dyp, ddt = 0.0;
        for (std::size_t n = 0; n < N; ++n) {
          const std::size_t j = (b * N + n) * L + t;
          const double A = p.A[d * N + n], Bt = in.B[j], Ct = in.C[j];
          const double a = std::exp(dt * A);
          const double hprev = h[t * N + n];
          const double gt = Ct * dyp + adj[n];  // (G2)
          g.dC[j] += dyp * h[(t + 1) * N + n];  // (G3)
          // ∂B̄/∂B, ∂B̄/∂Δ, ∂B̄/∂A: Mamba's B̄ = ΔB: Δ, B, 0; ZOH's (e^{ΔA} − 1)/A·B:
          // (e^{ΔA} − 1)/A, e^{ΔA} B, Δ² ψ(ΔA) B.
          const double bbar_B = zoh ? std::expm1(dt * A) / A : dt;
          const double bbar_dt = zoh ? a * Bt : Bt;
          const double bbar_A = zoh ? dt * dt * psi(dt * A) * Bt : 0.0;
          g.dB[j] += gt * u * bbar_B;                             // (G4)
          du += gt * bbar_B * Bt;                                 // (G5)
          ddt += gt * (A * a * hprev + u * bbar_dt);              // (G7)
          g.dA[d * N + n] += gt * (dt * a * hprev + u * bbar_A);  // (G7)
          adj[n] = a * gt;  // Ā_t g_t, carried to t − 1 (G2)
        }
        g.du[i] = du;
        const double draw = p.delta_softplus ? ddt * sigmoid(x) : ddt;  // (G8)
        g.ddelta[i] = draw;
        g.ddelta_bias[d] += draw;
      }
      for (std::size_t n = 0; n < N; ++n) g.dh0[(b * D + d) * N + n] = adj[n];  // (G9)
    }
  return g;
}

// ---------------------------------------------------------------------------------------------
// Fast: channels in SIMD lanes, checkpoints per chunk, chunk states recomputed in reverse
// ---------------------------------------------------------------------------------------------
namespace {

using simd::Pack;

template <class V>
inline V load_upto(const simd::Elem<V>* p, int n) {
  if (n == static_cast<int>(sizeof(V) / sizeof(simd::Elem<V>))) return simd::load<V>(p);
  V v = V{};
  std::memcpy(&v, p, sizeof(simd::Elem<V>) * static_cast<std::size_t>(n));
  return v;
}
template <class V>
inline void store_upto(simd::Elem<V>* p, V v, int n) {
  if (n == static_cast<int>(sizeof(V) / sizeof(simd::Elem<V>)))
    simd::store(p, v);
  else
    std::memcpy(p, &v, sizeof(simd::Elem<V>) * static_cast<std::size_t>(n));
}

// φ₁(x) = (e^x − 1)/x (ZOH's ∂B̄/∂B = Δ φ₁(ΔA)) and ψ(x) = (x e^x − (e^x − 1))/x² (ZOH's
// ∂B̄/∂A = Δ² ψ(ΔA) B, G7), lane by lane, given ex = e^x: Taylor below |x| = 1/2 (both cancel
// there), the closed forms above.
template <class V>
inline V phi1(V x, V ex) {
  using T = simd::Elem<V>;
  V p = simd::splat<V>(T(1));
  for (int k = 14; k >= 1; --k) p = p * (x / T(k + 1)) + T(1);  // Σ x^k/(k+1)!
  const V ax = x < T(0) ? -x : x;
  return ax < T(0.5) ? p : (ex - T(1)) / x;
}
template <class V>
inline V psi_v(V x, V ex) {
  using T = simd::Elem<V>;
  static constexpr auto c = [] {  // c_k = (k+1)/(k+2)!
    std::array<double, 15> r{};
    double f = 1;
    for (int k = 0; k < 15; ++k) {
      f *= k + 2;
      r[static_cast<std::size_t>(k)] = (k + 1) / f;
    }
    return r;
  }();
  V p = V{};
  for (int k = 14; k >= 0; --k) p = p * x + static_cast<T>(c[static_cast<std::size_t>(k)]);
  const V ax = x < T(0) ? -x : x;
  return ax < T(0.5) ? p : (x * ex - (ex - T(1))) / (x * x);
}

// Per-thread scratch (one chunk of one group of W channels, as packs over the channels) and
// this thread's sums of the gradients shared between work items.
template <class T>
struct Work {
  using V = Pack<T>;
  std::vector<V> ckpt;                     // (K, N) state entering each chunk
  std::vector<V> h, a;                     // (c, N) states and Ā of the chunk
  std::vector<V> dt, u, sx, dy, z;         // (c) Δ, u, σ(x) = softplus'(Δraw + bias), dy, z
  std::vector<V> du, dd, dz;               // (c) outputs before the transpose back
  std::vector<T> dBT, dCT, dA, dD, dbias;  // sums; dB, dC as (batch, L, N)
};

template <class T>
struct BackCtx {
  const ScanParams<T>* p;
  const ScanInputs<T>* in;
  const std::vector<T>* dy;
  const std::vector<T>* dh_last;
  ScanGrads<T>* g;
  std::size_t D, N, L, Q, K;
  std::vector<T> BT, CT;  // (batch, L, N)
  // Checkpoints (batch, D, K, N): read instead of pass 1 when ck_in is set (the forward kept
  // them); forward_only: pass 1 over all L steps writing y, h_last and the checkpoints, no pass 2.
  const T* ck_in = nullptr;
  bool forward_only = false;
  ScanOutputs<T>* out = nullptr;
  T* ck_out = nullptr;
};

// Rows [t0, t0 + len) of the W channels' (batch, D, L) array `src` into dst[j][c] (padding
// channels 0), W steps at a time through a register transpose.
template <class T>
void gather(const T* const* rows, int nch, std::size_t t0, std::size_t len, Pack<T>* dst) {
  using V = Pack<T>;
  constexpr int W = simd::kLanes<T>;
  for (std::size_t j0 = 0; j0 < len; j0 += W) {
    const int m = static_cast<int>(std::min<std::size_t>(W, len - j0));
    V r[W];
    for (int c = 0; c < W; ++c) r[c] = c < nch ? load_upto<V>(rows[c] + t0 + j0, m) : V{};
    simd::transpose(r);
    for (int j = 0; j < m; ++j) dst[j0 + j] = r[j];
  }
}
// The inverse: src[j][c] into rows [t0, t0 + len) of the nch real channels.
template <class T>
void scatter(const Pack<T>* src, int nch, std::size_t t0, std::size_t len, T* const* rows) {
  using V = Pack<T>;
  constexpr int W = simd::kLanes<T>;
  for (std::size_t j0 = 0; j0 < len; j0 += W) {
    const int m = static_cast<int>(std::min<std::size_t>(W, len - j0));
    V r[W];
    for (int j = 0; j < W; ++j) r[j] = j < m ? src[j0 + j] : V{};
    simd::transpose(r);
    for (int c = 0; c < nch; ++c) store_upto(rows[c] + t0 + j0, r[c], m);
  }
}

// One group of W channels (d0 … d0 + W − 1) of batch b. NC = N when known at compile time.
template <class T, int NC, bool ZOH>
void backward_group(const BackCtx<T>& cx, Work<T>& w, std::size_t b, std::size_t d0) {
  using V = Pack<T>;
  constexpr int W = simd::kLanes<T>;
  constexpr int NMAX = NC ? NC : kMaxScanN;
  const ScanParams<T>& p = *cx.p;
  const ScanInputs<T>& in = *cx.in;
  const std::size_t D = cx.D, L = cx.L, Q = cx.Q, K = cx.K, Nz = cx.N;
  const int N = NC ? NC : static_cast<int>(cx.N);
  const int nch = static_cast<int>(std::min<std::size_t>(W, D - d0));
  const bool gate = !in.z.empty();

  // Per-state constants over the lanes; padding lanes get A = −1 and Δ = u = dy = 0, so every
  // gradient they would add is 0.
  alignas(64) V A2[NMAX], An[NMAX], adj[NMAX], dA[NMAX];
  for (int n = 0; n < N; ++n) {
    for (int c = 0; c < W; ++c) {
      const double a = c < nch ? static_cast<double>(p.A[(d0 + c) * Nz + n]) : -1.0;
      A2[n][c] = static_cast<T>(a * 1.4426950408889634074);
      An[n][c] = static_cast<T>(a);
      const std::size_t s = (b * D + d0 + c) * Nz + n;
      adj[n][c] = c < nch && cx.dh_last && !cx.dh_last->empty() ? (*cx.dh_last)[s] : T(0);
    }
    dA[n] = V{};
  }
  V bias = V{}, dskip = V{}, dD = V{}, dbias = V{};
  const T* urow[W];
  const T* drow[W];
  const T* zrow[W];
  const T* dyrow[W];
  T* durow[W];
  T* ddrow[W];
  T* dzrow[W];
  T* yrow[W];
  for (int c = 0; c < W; ++c) {
    const bool real = c < nch;
    bias[c] = real && !p.delta_bias.empty() ? p.delta_bias[d0 + c] : T(0);
    dskip[c] = real && !p.D_skip.empty() ? p.D_skip[d0 + c] : T(0);
    const std::size_t row = (b * D + d0 + (real ? c : 0)) * L;
    urow[c] = in.u.data() + row;
    drow[c] = in.delta.data() + row;
    zrow[c] = gate ? in.z.data() + row : nullptr;
    if (cx.forward_only) {
      yrow[c] = cx.out->y.data() + row;
      continue;
    }
    dyrow[c] = cx.dy->data() + row;
    durow[c] = cx.g->du.data() + row;
    ddrow[c] = cx.g->ddelta.data() + row;
    dzrow[c] = gate ? cx.g->dz.data() + row : nullptr;
  }
  const T* BT = cx.BT.data() + b * L * Nz;
  const T* CT = cx.CT.data() + b * L * Nz;

  // Δ (M1) and σ(x) = softplus'(x) (G8) of the chunk's steps, and u.
  auto load_dt_u = [&](std::size_t t0, std::size_t len, bool with_sigma) {
    gather(drow, nch, t0, len, w.dt.data());
    gather(urow, nch, t0, len, w.u.data());
    for (std::size_t j = 0; j < len; ++j) {
      const V x = w.dt[j] + bias;
      if (p.delta_softplus) {
        const V dt = simd::softplus(x);
        if (with_sigma) w.sx[j] = simd::exp(x - dt);  // σ(x) = e^{x − softplus(x)}
        w.dt[j] = dt;
      } else {
        w.dt[j] = x;
        if (with_sigma) w.sx[j] = simd::splat<V>(T(1));
      }
      for (int c = nch; c < W; ++c) w.dt[j][c] = T(0);
    }
  };
  // One step (M2, M3) of the N states from hin: Ā into a, the states into hout.
  auto step = [&](std::size_t j, std::size_t t, const V* hin, V* hout, V* a) {
    const V dt = w.dt[j], du = dt * w.u[j];
    const T* Bt = BT + t * Nz;
#pragma GCC unroll 16
    for (int n = 0; n < N; ++n) {
      const V an = simd::exp2(dt * A2[n]);                // Ā = e^{ΔA} (M2)
      V bu = du * Bt[n];                                  // B̄u = Δ B u (D6)
      if constexpr (ZOH) bu = bu * phi1(dt * An[n], an);  // (D5)
      a[n] = an;
      hout[n] = an * hin[n] + bu;  // (M3)
    }
  };

  // Where checkpoint k of channel c lives in the forward's (batch, D, K, N) array.
  auto ck_at = [&](int c, std::size_t k) { return ((b * D + d0 + c) * K + k) * Nz; };
  if (cx.ck_in) {
    // The checkpoints the forward kept (selective_scan_checkpointed): no pass 1.
    for (std::size_t k = 0; k < K; ++k)
      for (int n = 0; n < N; ++n)
        for (int c = 0; c < W; ++c)
          w.ckpt[k * Nz + n][c] = c < nch ? cx.ck_in[ck_at(c, k) + n] : T(0);
  } else {
    // Pass 1: the forward, keeping the state entering every chunk (G10); forward_only also
    // runs the last chunk and writes y (M3, M4) and h_last, as selective_scan does.
    alignas(64) V h[NMAX];
    for (int n = 0; n < N; ++n)
      for (int c = 0; c < W; ++c)
        h[n][c] = c < nch && !in.h0.empty() ? in.h0[(b * D + d0 + c) * Nz + n] : T(0);
    for (std::size_t k = 0; k < K; ++k) {
      const std::size_t t0 = k * Q, len = std::min(L, t0 + Q) - t0;
      std::copy(h, h + N, w.ckpt.data() + k * Nz);
      if (k + 1 == K && !cx.forward_only) break;  // the backward recomputes the last chunk
      load_dt_u(t0, len, false);
      if (cx.forward_only && gate) gather(zrow, nch, t0, len, w.z.data());
      for (std::size_t j = 0; j < len; ++j) {
        step(j, t0 + j, h, h, w.a.data());
        if (!cx.forward_only) continue;
        const T* Ct = CT + (t0 + j) * Nz;
        V s0 = V{}, s1 = V{};
        for (int n = 0; n < N; n += 2) {
          s0 += Ct[n] * h[n];
          if (n + 1 < N) s1 += Ct[n + 1] * h[n + 1];
        }
        V y = s0 + s1 + dskip * w.u[j];  // (M3) y = C h + D u
        if (gate) {
          const V z = w.z[j];
          y = y * z / (T(1) + simd::exp(-z));  // (M4) y · silu(z)
        }
        w.du[j] = y;  // du's buffer holds y here
      }
      if (cx.forward_only) scatter(w.du.data(), nch, t0, len, yrow);
    }
    if (cx.forward_only) {
      for (int c = 0; c < nch; ++c)
        for (int n = 0; n < N; ++n) {
          cx.out->h_last[(b * D + d0 + c) * Nz + n] = h[n][c];
          for (std::size_t k = 0; k < K; ++k) cx.ck_out[ck_at(c, k) + n] = w.ckpt[k * Nz + n][c];
        }
      return;
    }
  }

  // Pass 2: chunks last to first; the chunk's states and Ā recomputed from its checkpoint,
  // then the adjoint (G2) backward through it. cb, bb: one step's per-channel terms of dC, dB
  // (G3, G4), N rounded up to whole blocks of W states (the padding stays 0).
  alignas(64) V cb[NMAX + W] = {}, bb[NMAX + W] = {};
  for (std::size_t k = K; k-- > 0;) {
    const std::size_t t0 = k * Q, len = std::min(L, t0 + Q) - t0;
    load_dt_u(t0, len, true);
    gather(dyrow, nch, t0, len, w.dy.data());
    if (gate) gather(zrow, nch, t0, len, w.z.data());
    for (std::size_t j = 0; j < len; ++j)
      step(j, t0 + j, j ? w.h.data() + (j - 1) * Nz : w.ckpt.data() + k * Nz, w.h.data() + j * Nz,
           w.a.data() + j * Nz);
    for (std::size_t j = len; j-- > 0;) {
      const std::size_t t = t0 + j;
      const V* h = w.h.data() + j * Nz;
      const V* a = w.a.data() + j * Nz;
      const V* hp = j ? h - Nz : w.ckpt.data() + k * Nz;
      const T* Bt = BT + t * Nz;
      const T* Ct = CT + t * Nz;
      const V dt = w.dt[j], u = w.u[j];
      V dyp = w.dy[j];  // (G1)
      if (gate) {
        V s0 = V{}, s1 = V{};
        for (int n = 0; n < N; n += 2) {
          s0 += Ct[n] * h[n];
          if (n + 1 < N) s1 += Ct[n + 1] * h[n + 1];
        }
        const V s = s0 + s1 + dskip * u;  // y before the gate (M4)
        const V z = w.z[j], sz = T(1) / (T(1) + simd::exp(-z));
        w.dz[j] = dyp * s * sz * (T(1) + z * (T(1) - sz));  // silu'(z)
        dyp = dyp * z * sz;                                 // silu(z)
      }
      dD += dyp * u;  // (G6)
      V vB = V{}, vA = V{};
      const V dtu = dt * u;
#pragma GCC unroll 16
      for (int n = 0; n < N; ++n) {
        const V gn = Ct[n] * dyp + adj[n];  // (G2)
        const V gh = gn * hp[n];
        cb[n] = dyp * h[n];  // (G3), summed over the lanes below
        if constexpr (ZOH) {
          // ∂B̄/∂B = Δ φ₁(ΔA), ∂B̄/∂Δ = Ā B, ∂B̄/∂A = Δ² ψ(ΔA) B
          const V x = dt * An[n];
          const V bB = dt * phi1(x, a[n]);
          bb[n] = gn * u * bB;                         // (G4)
          vB += gn * bB * Bt[n];                       // (G5)
          vA += a[n] * (An[n] * gh + gn * u * Bt[n]);  // (G7)
          dA[n] += dt * a[n] * gh + gn * u * dt * dt * psi_v(x, a[n]) * Bt[n];
        } else {
          bb[n] = gn * dtu;  // (G4): ∂B̄/∂B = Δ
          vB += gn * Bt[n];  // (G5) Σ g B, times Δ below; also (G7)'s u ∂B̄/∂Δ = u B
          const V gah = a[n] * gh;
          vA += An[n] * gah;  // (G7)
          dA[n] += dt * gah;  // (G7)
        }
        adj[n] = a[n] * gn;  // Ā_t g_t, carried to t − 1 (G2)
      }
      V ddt;
      if constexpr (ZOH) {
        w.du[j] = vB + dskip * dyp;  // (G5)
        ddt = vA;
      } else {
        w.du[j] = dt * vB + dskip * dyp;  // (G5)
        ddt = vA + u * vB;                // (G7)
      }
      const V dr = ddt * w.sx[j];  // (G8)
      w.dd[j] = dr;
      dbias += dr;
      // (G3), (G4): the sums over this group's channels, added to this thread's dC, dB at t.
      T* dCt = w.dCT.data() + (b * L + t) * Nz;
      T* dBt = w.dBT.data() + (b * L + t) * Nz;
      for (int n0 = 0; n0 < N; n0 += W) {
        const int m = std::min(W, N - n0);
        const auto& cblk = *reinterpret_cast<const V(*)[W]>(cb + n0);
        const auto& bblk = *reinterpret_cast<const V(*)[W]>(bb + n0);
        store_upto(dCt + n0, load_upto<V>(dCt + n0, m) + simd::row_sums(cblk), m);
        store_upto(dBt + n0, load_upto<V>(dBt + n0, m) + simd::row_sums(bblk), m);
      }
    }
    scatter(w.du.data(), nch, t0, len, durow);
    scatter(w.dd.data(), nch, t0, len, ddrow);
    if (gate) scatter(w.dz.data(), nch, t0, len, dzrow);
  }
  for (int c = 0; c < nch; ++c) {
    const std::size_t d = d0 + c;
    for (int n = 0; n < N; ++n) {
      w.dA[d * Nz + n] += dA[n][c];
      cx.g->dh0[(b * D + d) * Nz + n] = adj[n][c];  // (G9)
    }
    w.dD[d] += dD[c];
    w.dbias[d] += dbias[c];
  }
}

template <class T, int NC>
void backward_dispatch(const BackCtx<T>& cx, Work<T>& w, std::size_t b, std::size_t d0) {
  if (cx.p->disc == ScanDiscretization::ZOH)
    backward_group<T, NC, true>(cx, w, b, d0);
  else
    backward_group<T, NC, false>(cx, w, b, d0);
}

}  // namespace

namespace {

// B and C transposed to (batch, L, N), so that B_{t,n} is a broadcast from a contiguous row.
template <class T>
void transpose_BC(const ScanInputs<T>& in, std::size_t nb, std::size_t N, std::size_t L,
                  BackCtx<T>& cx) {
  cx.BT.resize(nb * L * N);
  cx.CT.resize(nb * L * N);
  for (std::size_t b = 0; b < nb; ++b)
    for (std::size_t n = 0; n < N; ++n)
      for (std::size_t t = 0; t < L; ++t) {
        cx.BT[(b * L + t) * N + n] = in.B[(b * N + n) * L + t];
        cx.CT[(b * L + t) * N + n] = in.C[(b * N + n) * L + t];
      }
}

// Every (batch, group of W channels) as a work item on `nt` threads, each with its Work;
// returns the Work of each thread used (their sums, for the backward's reduction).
template <class T>
std::vector<Work<T>> run_groups(const BackCtx<T>& cx, std::size_t nb, int nt, bool gate) {
  constexpr int W = simd::kLanes<T>;
  const std::size_t D = cx.D, N = cx.N, L = cx.L, Q = cx.Q;
  const std::size_t groups = (D + W - 1) / W;
  const long long items = static_cast<long long>(nb * groups);
  const int used = static_cast<int>(std::min<long long>(nt, items));
  std::vector<Work<T>> work(static_cast<std::size_t>(used));
#pragma omp parallel num_threads(used)
  {
    Work<T>& w = work[static_cast<std::size_t>(omp_get_thread_num())];
    w.ckpt.resize(cx.K * N);
    for (auto* v : {&w.dt, &w.u, &w.du}) v->resize(Q);
    if (gate) w.z.resize(Q);
    w.a.resize(Q * N);
    if (!cx.forward_only) {
      w.h.resize(Q * N);
      for (auto* v : {&w.sx, &w.dy, &w.dd}) v->resize(Q);
      if (gate) w.dz.resize(Q);
      w.dBT.assign(nb * L * N, T(0));
      w.dCT.assign(nb * L * N, T(0));
      w.dA.assign(D * N, T(0));
      w.dD.assign(D, T(0));
      w.dbias.assign(D, T(0));
    }
#pragma omp for schedule(dynamic, 1)
    for (long long item = 0; item < items; ++item) {
      const std::size_t b = static_cast<std::size_t>(item) / groups,
                        d0 = (static_cast<std::size_t>(item) % groups) * W;
      if (N == 16)
        backward_dispatch<T, 16>(cx, w, b, d0);
      else
        backward_dispatch<T, 0>(cx, w, b, d0);
    }
  }
  return work;
}

template <class T>
void check_checkpoints(const ScanParams<T>& p, const ScanInputs<T>& in,
                       const ScanCheckpoints<T>& ck, int chunk) {
  const auto K = (static_cast<std::size_t>(in.L) + static_cast<std::size_t>(chunk) - 1) /
                 static_cast<std::size_t>(chunk);
  if (ck.chunk != chunk || ck.batch != in.batch || ck.D != p.D || ck.N != p.N || ck.L != in.L ||
      ck.h.size() != static_cast<std::size_t>(in.batch) * static_cast<std::size_t>(p.D) * K *
                         static_cast<std::size_t>(p.N))
    throw Error(kWho + std::string("checkpoints were taken with (batch, D, N, L) = (") +
                std::to_string(ck.batch) + ", " + std::to_string(ck.D) + ", " +
                std::to_string(ck.N) + ", " + std::to_string(ck.L) + ") every " +
                std::to_string(ck.chunk) + " steps (" + std::to_string(ck.h.size()) +
                " values), not for this problem (" + std::to_string(in.batch) + ", " +
                std::to_string(p.D) + ", " + std::to_string(p.N) + ", " + std::to_string(in.L) +
                ") with chunk = " + std::to_string(chunk));
}

}  // namespace

template <class T>
void selective_scan_checkpointed(const ScanParams<T>& p, const ScanInputs<T>& in,
                                 ScanOutputs<T>& out, ScanCheckpoints<T>& ck, int chunk,
                                 int threads) {
  validate(p, in, false);
  if (chunk <= 0) throw Error(kWho + std::string("chunk = ") + std::to_string(chunk) + " must be > 0");
  const auto nb = static_cast<std::size_t>(in.batch), D = static_cast<std::size_t>(p.D),
             N = static_cast<std::size_t>(p.N), L = static_cast<std::size_t>(in.L);
  const std::size_t Q = std::min<std::size_t>(static_cast<std::size_t>(chunk), L);
  const std::size_t K = (L + Q - 1) / Q;
  out.y.resize(nb * D * L);
  out.h_last.resize(nb * D * N);
  ck.chunk = chunk;
  ck.batch = in.batch;
  ck.D = p.D;
  ck.N = p.N;
  ck.L = in.L;
  ck.h.resize(nb * D * K * N);
  BackCtx<T> cx{&p, &in, nullptr, nullptr, nullptr, D, N, L, Q, K, {}, {}};
  cx.forward_only = true;
  cx.out = &out;
  cx.ck_out = ck.h.data();
  transpose_BC(in, nb, N, L, cx);
  run_groups(cx, nb, thread_count(threads), !in.z.empty());
}

template <class T>
void selective_scan_backward(const ScanParams<T>& p, const ScanInputs<T>& in,
                             const std::vector<T>& dy, const std::vector<T>& dh_last,
                             ScanGrads<T>& g, int chunk, int threads,
                             const ScanCheckpoints<T>* ck) {
  validate_backward(p, in, dy, dh_last, &chunk, false);
  if (ck) check_checkpoints(p, in, *ck, chunk);
  const auto nb = static_cast<std::size_t>(in.batch), D = static_cast<std::size_t>(p.D),
             N = static_cast<std::size_t>(p.N), L = static_cast<std::size_t>(in.L);
  // Q = min(chunk, L) for the work; the checkpoints' K = ⌈L/chunk⌉ is the same number.
  const std::size_t Q = std::min<std::size_t>(static_cast<std::size_t>(chunk), L);
  const bool gate = !in.z.empty();

  // du, ddelta, dz and dh0 are overwritten entry by entry: resize keeps a reused g's memory.
  g.du.resize(nb * D * L);
  g.ddelta.resize(nb * D * L);
  if (gate)
    g.dz.resize(nb * D * L);
  else
    g.dz.clear();
  g.dh0.resize(nb * D * N);
  BackCtx<T> cx{&p, &in, &dy, &dh_last, &g, D, N, L, Q, (L + Q - 1) / Q, {}, {}};
  cx.ck_in = ck ? ck->h.data() : nullptr;
  transpose_BC(in, nb, N, L, cx);
  const std::vector<Work<T>> work = run_groups(cx, nb, thread_count(threads), gate);

  // Reduce the per-thread sums; dB, dC back to (batch, N, L).
  g.dA.assign(D * N, T(0));
  g.dD.assign(D, T(0));
  g.ddelta_bias.assign(D, T(0));
  g.dB.assign(nb * N * L, T(0));
  g.dC.assign(nb * N * L, T(0));
  for (const auto& w : work) {
    for (std::size_t i = 0; i < D * N; ++i) g.dA[i] += w.dA[i];
    for (std::size_t i = 0; i < D; ++i) {
      g.dD[i] += w.dD[i];
      g.ddelta_bias[i] += w.dbias[i];
    }
    for (std::size_t b = 0; b < nb; ++b)
      for (std::size_t t = 0; t < L; ++t)
        for (std::size_t n = 0; n < N; ++n) {
          g.dB[(b * N + n) * L + t] += w.dBT[(b * L + t) * N + n];
          g.dC[(b * N + n) * L + t] += w.dCT[(b * L + t) * N + n];
        }
  }
}

template <class T>
ScanGrads<T> selective_scan_backward(const ScanParams<T>& p, const ScanInputs<T>& in,
                                     const std::vector<T>& dy, const std::vector<T>& dh_last,
                                     int chunk, int threads) {
  ScanGrads<T> g;
  selective_scan_backward(p, in, dy, dh_last, g, chunk, threads);
  return g;
}

#define SSM_GRAD_INSTANTIATE(T)                                                                  \
  template void validate_backward<T>(const ScanParams<T>&, const ScanInputs<T>&,                 \
                                     const std::vector<T>&, const std::vector<T>&, const int*,   \
                                     bool);                                                      \
  template ScanGrads<T> selective_scan_backward<T>(const ScanParams<T>&, const ScanInputs<T>&,   \
                                                   const std::vector<T>&, const std::vector<T>&, \
                                                   int, int);                                    \
  template void selective_scan_backward<T>(const ScanParams<T>&, const ScanInputs<T>&,          \
                                           const std::vector<T>&, const std::vector<T>&,         \
                                           ScanGrads<T>&, int, int, const ScanCheckpoints<T>*);  \
  template void selective_scan_checkpointed<T>(const ScanParams<T>&, const ScanInputs<T>&,      \
                                               ScanOutputs<T>&, ScanCheckpoints<T>&, int, int);
SSM_GRAD_INSTANTIATE(float)
SSM_GRAD_INSTANTIATE(double)

}  // namespace ssm
