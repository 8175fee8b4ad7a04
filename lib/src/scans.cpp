#include "ssm/scans.hpp"

#include <algorithm>
#include <cmath>
#include <complex>
#include <limits>
#include <string>

#include "elementwise.hpp"

namespace ssm {

using detail::bbar_of;  // the per-element math (M1, M2, M4): lib/src/elementwise.hpp
using detail::delta_of;
using detail::output;
using detail::silu;
using detail::step_pair;

// ---------------------------------------------------------------------------------------------
// (X6) Bidirectional scan
// ---------------------------------------------------------------------------------------------
namespace {

// Each contiguous row of L values of v reversed (v is (rows, L) for some rows).
template <class T>
std::vector<T> reverse_rows(const std::vector<T>& v, std::size_t L, const char* name) {
  if (v.size() % L != 0)
    throw Error("reverse_time: " + std::string(name) + " has " + std::to_string(v.size()) +
                " values, not a multiple of L = " + std::to_string(L));
  std::vector<T> r(v.size());
  for (std::size_t row = 0; row < v.size(); row += L)
    std::reverse_copy(v.begin() + std::ptrdiff_t(row), v.begin() + std::ptrdiff_t(row + L),
                      r.begin() + std::ptrdiff_t(row));
  return r;
}

}  // namespace

template <class T>
ScanInputs<T> reverse_time(const ScanInputs<T>& in) {
  require(in.L >= 1, "reverse_time: L = " + std::to_string(in.L) + " must be >= 1");
  const auto L = static_cast<std::size_t>(in.L);
  ScanInputs<T> r;
  r.batch = in.batch;
  r.L = in.L;
  r.u = reverse_rows(in.u, L, "u");          // (batch, D, L)
  r.delta = reverse_rows(in.delta, L, "delta");
  r.B = reverse_rows(in.B, L, "B");          // (batch, N, L)
  r.C = reverse_rows(in.C, L, "C");
  r.z = reverse_rows(in.z, L, "z");          // empty stays empty
  r.h0 = in.h0;                              // (batch, D, N): not a time series
  return r;
}

template <class T>
void selective_scan_bidirectional(const ScanParams<T>& fwd, const ScanParams<T>& bwd,
                                  const ScanInputs<T>& in, std::vector<T>& y, int threads) {
  validate(fwd, in, false);
  validate(bwd);
  if (bwd.D != fwd.D || bwd.N != fwd.N)
    throw Error("selective_scan_bidirectional: bwd has D = " + std::to_string(bwd.D) +
                ", N = " + std::to_string(bwd.N) + "; expected fwd's D = " +
                std::to_string(fwd.D) + ", N = " + std::to_string(fwd.N) +
                " (both directions read the same u, B, C)");
  require(in.h0.empty(), "selective_scan_bidirectional: h0 has " +
                             std::to_string(in.h0.size()) +
                             " values, expected none (a bidirectional scan has no carried state)");
  // Both halves without the gate: it multiplies their sum, once (X6).
  ScanInputs<T> ungated = in;
  ungated.z.clear();
  ScanOutputs<T> of, ob;
  selective_scan(fwd, ungated, of, threads);
  ungated = reverse_time(ungated);
  selective_scan(bwd, ungated, ob, threads);  // ob.y is R(y_b): time reversed
  const auto L = static_cast<std::size_t>(in.L);
  y.resize(of.y.size());
  for (std::size_t row = 0; row < y.size(); row += L)  // row = (b, d)
    for (std::size_t t = 0; t < L; ++t) {
      const std::size_t i = row + t;
      const T s = of.y[i] + ob.y[row + (L - 1 - t)];
      y[i] = in.z.empty() ? s : s * silu(in.z[i]);
    }
}

ScanOutputs<double> selective_scan_anticausal_reference(const ScanParams<double>& p,
                                                        const ScanInputs<double>& in) {
  validate(p, in, true);
  const auto nb = static_cast<std::size_t>(in.batch), D = static_cast<std::size_t>(p.D),
             N = static_cast<std::size_t>(p.N), L = static_cast<std::size_t>(in.L);
  ScanOutputs<double> out;
  out.y.assign(nb * D * L, 0.0);
  out.h_last.assign(nb * D * N, 0.0);
  std::vector<double> h(N);
  for (std::size_t b = 0; b < nb; ++b)
    for (std::size_t d = 0; d < D; ++d) {
      // h_L: the boundary state just past the end (0 unless given).
      for (std::size_t n = 0; n < N; ++n) h[n] = in.h0.empty() ? 0.0 : in.h0[(b * D + d) * N + n];
      for (std::size_t t = L; t-- > 0;) {                // t = L − 1, …, 0
        const std::size_t i = (b * D + d) * L + t;       // (b, d, t)
        const double dt = delta_of(p, in.delta[i], d);   // (M1)
        double sum = 0.0;
        for (std::size_t n = 0; n < N; ++n) {
          const std::size_t j = (b * N + n) * L + t;     // (b, n, t)
          const double A = p.A[d * N + n];
          // h_t = Ā_t h_{t+1} + B̄_t u_t (X6), Ā_t = e^{Δ_t A} (M2)
          h[n] = std::exp(dt * A) * h[n] + bbar_of(p.disc, dt, A, in.B[j]) * in.u[i];
          sum += in.C[j] * h[n];
        }
        out.y[i] = output(p, sum, in.u[i], in.z.empty() ? nullptr : &in.z[i], d);
      }
      for (std::size_t n = 0; n < N; ++n) out.h_last[(b * D + d) * N + n] = h[n];  // h_0
    }
  return out;
}

// ---------------------------------------------------------------------------------------------
// (X7) Log-space scan
// ---------------------------------------------------------------------------------------------
namespace {

// h_t = Re exp(astar_t + LSE_t) with LSE_t = logcumsumexp(log b_s − astar_s) (and log h0 at
// s = −1), V = T when every term is ≥ 0, std::complex<T> otherwise. astar (L), b (L), h (L).
template <class T, class V>
void log_space_core(const T* astar, const T* b, std::size_t L, T h0, T* h) {
  using std::real;
  // Online logcumsumexp: the sum so far is exp(m)·S, m the largest real part seen. A new term
  // e^w with Re w ≤ m adds e^{w−m} ≤ 1 to S; one with Re w > m rescales S by e^{m−Re w} < 1
  // first. No exp ever overflows, and underflow only drops terms below eps of the largest.
  T m = -std::numeric_limits<T>::infinity();
  V S = V(0);
  bool any = false;
  auto add = [&](V w) {
    const T x = real(w);
    if (!any) {
      m = x;
      S = std::exp(w - V(x));  // e^{i·Im w}: +1 or −1 (to rounding)
      any = true;
    } else if (x > m) {
      S = S * std::exp(V(m - x)) + std::exp(w - V(x));
      m = x;
    } else {
      S += std::exp(w - V(m));
    }
  };
  if (h0 != T(0)) add(std::log(V(h0)));  // the s = −1 term, a*_{−1} = 0
  for (std::size_t t = 0; t < L; ++t) {
    if (b[t] != T(0)) add(std::log(V(b[t])) - V(astar[t]));  // log b_s − a*_s (X7)
    // a*_t + m: two numbers of size ~|a*_t| and opposite signs. This sum is where float loses
    // eps·|a*_t| of absolute accuracy in the exponent, i.e. of relative accuracy in h_t.
    h[t] = any ? T(real(std::exp(V(astar[t] + m) + std::log(S)))) : T(0);
  }
}

template <class T>
void log_space_dispatch(const T* astar, const T* b, std::size_t L, T h0, T* h) {
  const bool negative = h0 < T(0) || std::any_of(b, b + L, [](T x) { return x < T(0); });
  if (negative)
    log_space_core<T, std::complex<T>>(astar, b, L, h0, h);
  else
    log_space_core<T, T>(astar, b, L, h0, h);
}

}  // namespace

template <class T>
void log_space_scan(const std::vector<T>& a, const std::vector<T>& b, T h0, std::vector<T>& h) {
  const std::size_t L = a.size();
  if (b.size() != L)
    throw Error("log_space_scan: b has " + std::to_string(b.size()) +
                " values, expected the size of a = " + std::to_string(L));
  for (std::size_t t = 0; t < L; ++t) {
    if (!(a[t] > T(0)) || !std::isfinite(a[t]))
      throw Error("log_space_scan: a[" + std::to_string(t) + "] = " +
                  fmt(static_cast<double>(a[t])) +
                  " must be finite and > 0 (log a is taken; use the sequential scan otherwise)");
    if (!std::isfinite(b[t]))
      throw Error("log_space_scan: b[" + std::to_string(t) + "] = " +
                  fmt(static_cast<double>(b[t])) + " is not finite");
  }
  if (!std::isfinite(h0))
    throw Error("log_space_scan: h0 = " + fmt(static_cast<double>(h0)) + " is not finite");
  std::vector<T> astar(L);
  T acc = 0;
  for (std::size_t t = 0; t < L; ++t) astar[t] = acc += std::log(a[t]);  // a*_t = Σ_{r≤t} log a_r
  h.resize(L);
  log_space_dispatch(astar.data(), b.data(), L, h0, h.data());
}

namespace {

// What the whole-scan variants below share: per (b, d), Δ_t (M1); per state n, `states` fills
// h_t of that one series from (Δ (L), A_{d,n}, B_{n,·} (L), u_{d,·} (L), h_{−1}); then
// y_t = Σ_n C_{t,n} h_{t,n} + D u_t, gated (M4). Validates (values included).
template <class T, class States>
void scan_by_series(const ScanParams<T>& p, const ScanInputs<T>& in, ScanOutputs<T>& out,
                    States states) {
  validate(p, in, true);
  const auto nb = static_cast<std::size_t>(in.batch), D = static_cast<std::size_t>(p.D),
             N = static_cast<std::size_t>(p.N), L = static_cast<std::size_t>(in.L);
  out.y.assign(nb * D * L, T(0));
  out.h_last.assign(nb * D * N, T(0));
  std::vector<T> dt(L), h(L), sum(L);  // one (b, d) row, one state at a time
  for (std::size_t b = 0; b < nb; ++b)
    for (std::size_t d = 0; d < D; ++d) {
      const std::size_t row = (b * D + d) * L;  // (b, d, ·)
      for (std::size_t t = 0; t < L; ++t) dt[t] = delta_of(p, in.delta[row + t], d);  // (M1)
      std::fill(sum.begin(), sum.end(), T(0));
      for (std::size_t n = 0; n < N; ++n) {
        const std::size_t bn = (b * N + n) * L;  // (b, n, ·)
        const T h0 = in.h0.empty() ? T(0) : in.h0[(b * D + d) * N + n];
        states(dt.data(), p.A[d * N + n], &in.B[bn], &in.u[row], h0, h.data());  // (M3)
        for (std::size_t t = 0; t < L; ++t) sum[t] += in.C[bn + t] * h[t];        // (M4)
        out.h_last[(b * D + d) * N + n] = h[L - 1];
      }
      for (std::size_t t = 0; t < L; ++t)
        out.y[row + t] =
            output(p, sum[t], in.u[row + t], in.z.empty() ? nullptr : &in.z[row + t], d);
    }
}

}  // namespace

template <class T>
void selective_scan_logspace(const ScanParams<T>& p, const ScanInputs<T>& in,
                             ScanOutputs<T>& out) {
  const auto L = static_cast<std::size_t>(std::max(in.L, 0));
  std::vector<T> astar(L), bu(L);
  scan_by_series(p, in, out, [&](const T* dt, T A, const T* B, const T* u, T h0, T* h) {
    T acc = 0;
    for (std::size_t t = 0; t < L; ++t) {
      astar[t] = acc += dt[t] * A;  // log Ā_t = Δ_t A, summed directly (see the header)
      bu[t] = bbar_of(p.disc, dt[t], A, B[t]) * u[t];  // (M2)
    }
    log_space_dispatch(astar.data(), bu.data(), L, h0, h);  // (X7) for (M3)
  });
}

// ---------------------------------------------------------------------------------------------
// (X8) Parallel prefix scans
// ---------------------------------------------------------------------------------------------
template <class T>
ScanCounts blelloch_scan(std::vector<ScanPair<T>>& x) {
  ScanCounts c;
  const std::size_t n = x.size();
  if (n <= 1) return c;  // a single step is its own prefix: no combine, no level
  std::size_t np = 1;
  while (np < n) np *= 2;
  x.resize(np, ScanPair<T>{});  // padding with the identity (1, 0) changes no prefix
  // Up-sweep (reduce). At the level with `half` = 2^k, the node ending at i (i + 1 a multiple
  // of 2·half) absorbs its left sibling, which ends at i − half: afterwards x[i] is the
  // composition of the 2·half steps ending at i. The combines of a level touch disjoint
  // pairs: they are independent.
  for (std::size_t half = 1; half < np; half *= 2) {
    for (std::size_t i = 2 * half - 1; i < np; i += 2 * half) {
      x[i] = combine(x[i - half], x[i]);  // left subtree first, then right (M5)
      ++c.combines;
    }
    ++c.depth;
  }
  const ScanPair<T> total = x[np - 1];  // steps 0 … np−1: the inclusive prefix of the last
  // Down-sweep. Invariant: entering a level, x[i] at each node's right end holds the
  // composition of every step before the node's subtree (the root: nothing, the identity).
  // The left child's prefix is the node's; the right child's is the node's followed by the
  // left subtree's reduction (still in x[i − half] from the up-sweep). Again one combine per
  // node, independent within the level.
  x[np - 1] = ScanPair<T>{};
  for (std::size_t half = np / 2; half >= 1; half /= 2) {
    for (std::size_t i = 2 * half - 1; i < np; i += 2 * half) {
      const ScanPair<T> left = x[i - half];
      x[i - half] = x[i];
      x[i] = combine(x[i], left);  // the prefix before the node, then the left subtree
      ++c.combines;
    }
    ++c.depth;
  }
  // x[t] now holds steps 0 … t−1 (exclusive). Inclusive = exclusive one place later.
  for (std::size_t t = 0; t < n; ++t) x[t] = t + 1 < np ? x[t + 1] : total;
  x.resize(n);
  return c;
}

template <class T>
ScanCounts hillis_steele_scan(std::vector<ScanPair<T>>& x) {
  ScanCounts c;
  const std::size_t n = x.size();
  std::vector<ScanPair<T>> prev;
  // After the level with offset 2^k, x[t] composes steps max(0, t − 2^{k+1} + 1) … t. Every
  // combine of a level reads only the previous level (prev): all independent.
  for (std::size_t offset = 1; offset < n; offset *= 2) {
    prev = x;
    for (std::size_t t = offset; t < n; ++t) {
      x[t] = combine(prev[t - offset], prev[t]);
      ++c.combines;
    }
    ++c.depth;
  }
  return c;
}

template <class T>
ScanCounts selective_scan_blelloch(const ScanParams<T>& p, const ScanInputs<T>& in,
                                   ScanOutputs<T>& out) {
  ScanCounts counts;
  std::vector<ScanPair<T>> pairs;
  scan_by_series(p, in, out, [&](const T* dt, T A, const T* B, const T* u, T h0, T* h) {
    const auto L = static_cast<std::size_t>(in.L);
    pairs.resize(L);
    for (std::size_t t = 0; t < L; ++t)  // the step pair (Ā_t, B̄_t u_t) (M2, M5)
      pairs[t] = step_pair(p.disc, dt[t], A, B[t], u[t]);
    counts = blelloch_scan(pairs);  // (X8)
    for (std::size_t t = 0; t < L; ++t)
      h[t] = pairs[t].a * h0 + pairs[t].b;  // steps 0 … t applied to h_{−1} = h0 (M3)
  });
  return counts;
}

#define SSM_INSTANTIATE_SCANS(T)                                                                  \
  template ScanInputs<T> reverse_time<T>(const ScanInputs<T>&);                                  \
  template void selective_scan_bidirectional<T>(const ScanParams<T>&, const ScanParams<T>&,      \
                                                const ScanInputs<T>&, std::vector<T>&, int);      \
  template void log_space_scan<T>(const std::vector<T>&, const std::vector<T>&, T,              \
                                  std::vector<T>&);                                              \
  template void selective_scan_logspace<T>(const ScanParams<T>&, const ScanInputs<T>&,           \
                                           ScanOutputs<T>&);                                     \
  template ScanCounts blelloch_scan<T>(std::vector<ScanPair<T>>&);                               \
  template ScanCounts hillis_steele_scan<T>(std::vector<ScanPair<T>>&);                          \
  template ScanCounts selective_scan_blelloch<T>(const ScanParams<T>&, const ScanInputs<T>&,     \
                                                 ScanOutputs<T>&);
SSM_INSTANTIATE_SCANS(float)
SSM_INSTANTIATE_SCANS(double)
#undef SSM_INSTANTIATE_SCANS

}  // namespace ssm
