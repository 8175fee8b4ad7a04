#include "ssm/selective.hpp"

#include <omp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>

#include "elementwise.hpp"
#include "ssm/vmath.hpp"

namespace ssm {

namespace {
// Threads to use: 0 → all cores (as resolve_threads in ssm/recurrent.hpp; kept local so this
// module compiles on its own, e.g. in the portable test build).
int thread_count(int threads) {
  return threads <= 0 ? std::max(1, omp_get_num_procs()) : std::min(threads, 1024);
}
}  // namespace

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------
namespace {

std::string index_str(std::initializer_list<std::size_t> idx) {
  std::string s;
  for (auto i : idx) s += "[" + std::to_string(i) + "]";
  return s;
}

template <class T>
void check_size(const std::vector<T>& v, std::size_t want, const char* name,
                const std::string& shape) {
  if (v.size() != want)
    throw Error("selective scan: " + std::string(name) + " has " + std::to_string(v.size()) +
                " values, expected " + shape + " = " + std::to_string(want));
}

// The first non-finite entry of a 3-index array (d0, d1, d2), named with its index.
template <class T>
void check_finite3(const std::vector<T>& v, const std::string& name, std::size_t d1,
                   std::size_t d2) {
  if (all_finite(v.data(), v.size())) return;
  for (std::size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i]))
      throw Error("selective scan: " + name + index_str({i / (d1 * d2), (i / d2) % d1, i % d2}) +
                  " = " + fmt(static_cast<double>(v[i])) + " is not finite");
}

template <class T>
void check_finite1(const std::vector<T>& v, const std::string& name) {
  for (std::size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i]))
      throw Error("selective scan: " + name + index_str({i}) + " = " +
                  fmt(static_cast<double>(v[i])) + " is not finite");
}

}  // namespace

template <class T>
void validate(const ScanParams<T>& p) {
  require(p.D >= 1 && p.D <= kMaxScanD, "selective scan: D = " + std::to_string(p.D) +
                                            " is out of range [1, " + std::to_string(kMaxScanD) +
                                            "]");
  require(p.N >= 1 && p.N <= kMaxScanN, "selective scan: N = " + std::to_string(p.N) +
                                            " is out of range [1, " + std::to_string(kMaxScanN) +
                                            "]");
  const auto D = static_cast<std::size_t>(p.D), N = static_cast<std::size_t>(p.N);
  check_size(p.A, D * N, "A", "D·N = " + std::to_string(D) + "·" + std::to_string(N));
  for (std::size_t i = 0; i < p.A.size(); ++i) {
    const double a = static_cast<double>(p.A[i]);
    if (!std::isfinite(a))
      throw Error("selective scan: A" + index_str({i / N, i % N}) + " = " + fmt(a) +
                  " is not finite");
    if (!(a < 0))
      throw Error("selective scan: A" + index_str({i / N, i % N}) + " = " + fmt(a) +
                  " must be < 0 (A = −exp(A_log); A ≥ 0 gives Ā = e^{ΔA} ≥ 1: unstable)");
  }
  if (!p.D_skip.empty()) check_size(p.D_skip, D, "D_skip", "D");
  if (!p.delta_bias.empty()) check_size(p.delta_bias, D, "delta_bias", "D");
  check_finite1(p.D_skip, "D_skip");
  check_finite1(p.delta_bias, "delta_bias");
}

template <class T>
void validate(const ScanParams<T>& p, const ScanInputs<T>& in, bool check_values) {
  validate(p);
  require(in.batch >= 1 && in.batch <= (1 << 20),
          "selective scan: batch = " + std::to_string(in.batch) + " is out of range [1, 2^20]");
  require(in.L >= 1 && in.L <= kMaxScanL,
          "selective scan: L = " + std::to_string(in.L) + " is out of range [1, 2^26]");
  const auto b = static_cast<std::size_t>(in.batch), D = static_cast<std::size_t>(p.D),
             N = static_cast<std::size_t>(p.N), L = static_cast<std::size_t>(in.L);
  const std::string bdl =
      "batch·D·L = " + std::to_string(b) + "·" + std::to_string(D) + "·" + std::to_string(L);
  const std::string bnl =
      "batch·N·L = " + std::to_string(b) + "·" + std::to_string(N) + "·" + std::to_string(L);
  check_size(in.u, b * D * L, "u", bdl);
  check_size(in.delta, b * D * L, "delta", bdl);
  check_size(in.B, b * N * L, "B", bnl);
  check_size(in.C, b * N * L, "C", bnl);
  if (!in.z.empty()) check_size(in.z, b * D * L, "z", bdl);
  if (!in.h0.empty())
    check_size(
        in.h0, b * D * N, "h0",
        "batch·D·N = " + std::to_string(b) + "·" + std::to_string(D) + "·" + std::to_string(N));
  if (!check_values) return;
  check_finite3(in.u, "u", D, L);
  check_finite3(in.delta, "delta", D, L);
  check_finite3(in.B, "B", N, L);
  check_finite3(in.C, "C", N, L);
  check_finite3(in.z, "z", D, L);
  check_finite3(in.h0, "h0", D, N);
}

// ---------------------------------------------------------------------------------------------
// Per-element math shared by the reference, step mode and the parallel scan
// ---------------------------------------------------------------------------------------------
using detail::delta_of;  // the per-element math (M1, M2, M4): lib/src/elementwise.hpp
using detail::output;
using detail::silu;
using detail::softplus;
using detail::step_pair;

// ---------------------------------------------------------------------------------------------
// Reference
// ---------------------------------------------------------------------------------------------
ScanOutputs<double> selective_scan_reference(const ScanParams<double>& p,
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
      for (std::size_t n = 0; n < N; ++n) h[n] = in.h0.empty() ? 0.0 : in.h0[(b * D + d) * N + n];
      for (std::size_t t = 0; t < L; ++t) {
        const std::size_t i = (b * D + d) * L + t;      // (b, d, t)
        const double dt = delta_of(p, in.delta[i], d);  // (M1)
        double sum = 0.0;
        for (std::size_t n = 0; n < N; ++n) {
          const std::size_t j = (b * N + n) * L + t;  // (b, n, t)
          const auto [a, bu] = step_pair(p.disc, dt, p.A[d * N + n], in.B[j], in.u[i]);  // (M2)
          h[n] = a * h[n] + bu;                                                          // (M3)
          sum += in.C[j] * h[n];                                                         // (M4)
        }
        out.y[i] = output(p, sum, in.u[i], in.z.empty() ? nullptr : &in.z[i], d);
      }
      for (std::size_t n = 0; n < N; ++n) out.h_last[(b * D + d) * N + n] = h[n];
    }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Step mode
// ---------------------------------------------------------------------------------------------
template <class T>
void selective_state_update(const ScanParams<T>& p, const StepInputs<T>& in, std::vector<T>& h,
                            std::vector<T>& y) {
  validate(p);
  require(in.batch >= 1,
          "selective_state_update: batch = " + std::to_string(in.batch) + " must be >= 1");
  const auto nb = static_cast<std::size_t>(in.batch), D = static_cast<std::size_t>(p.D),
             N = static_cast<std::size_t>(p.N);
  check_size(in.u, nb * D, "u", "batch·D");
  check_size(in.delta, nb * D, "delta", "batch·D");
  check_size(in.B, nb * N, "B", "batch·N");
  check_size(in.C, nb * N, "C", "batch·N");
  if (!in.z.empty()) check_size(in.z, nb * D, "z", "batch·D");
  if (h.empty()) h.assign(nb * D * N, T(0));
  check_size(h, nb * D * N, "state h", "batch·D·N");
  y.resize(nb * D);
  for (std::size_t b = 0; b < nb; ++b)
    for (std::size_t d = 0; d < D; ++d) {
      const std::size_t i = b * D + d;
      const T dt = delta_of(p, in.delta[i], d);
      T sum = 0;
      T* hs = &h[i * N];
      for (std::size_t n = 0; n < N; ++n) {
        const auto [a, bu] = step_pair(p.disc, dt, p.A[d * N + n], in.B[b * N + n], in.u[i]);
        hs[n] = a * hs[n] + bu;
        sum += in.C[b * N + n] * hs[n];
      }
      y[i] = output(p, sum, in.u[i], in.z.empty() ? nullptr : &in.z[i], d);
    }
}

template <class T>
void selective_scan_stepwise(const ScanParams<T>& p, const ScanInputs<T>& in, ScanOutputs<T>& out) {
  validate(p, in, false);
  const auto nb = static_cast<std::size_t>(in.batch), D = static_cast<std::size_t>(p.D),
             N = static_cast<std::size_t>(p.N), L = static_cast<std::size_t>(in.L);
  StepInputs<T> st;
  st.batch = in.batch;
  st.u.resize(nb * D);
  st.delta.resize(nb * D);
  if (!in.z.empty()) st.z.resize(nb * D);
  st.B.resize(nb * N);
  st.C.resize(nb * N);
  out.h_last = in.h0.empty() ? std::vector<T>(nb * D * N, T(0)) : in.h0;
  out.y.resize(nb * D * L);
  std::vector<T> y;
  for (std::size_t t = 0; t < L; ++t) {
    for (std::size_t b = 0; b < nb; ++b) {
      for (std::size_t d = 0; d < D; ++d) {
        st.u[b * D + d] = in.u[(b * D + d) * L + t];
        st.delta[b * D + d] = in.delta[(b * D + d) * L + t];
        if (!in.z.empty()) st.z[b * D + d] = in.z[(b * D + d) * L + t];
      }
      for (std::size_t n = 0; n < N; ++n) {
        st.B[b * N + n] = in.B[(b * N + n) * L + t];
        st.C[b * N + n] = in.C[(b * N + n) * L + t];
      }
    }
    selective_state_update(p, st, out.h_last, y);
    for (std::size_t i = 0; i < nb * D; ++i) out.y[i * L + t] = y[i];
  }
}

// ---------------------------------------------------------------------------------------------
// Parallel (chunked associative) scan
// ---------------------------------------------------------------------------------------------
template <class T>
void selective_scan_parallel(const ScanParams<T>& p, const ScanInputs<T>& in, ScanOutputs<T>& out,
                             int threads, int chunks) {
  validate(p, in, false);
  const int nt = thread_count(threads);
  const auto nb = static_cast<std::size_t>(in.batch), D = static_cast<std::size_t>(p.D),
             N = static_cast<std::size_t>(p.N), L = static_cast<std::size_t>(in.L);
  const std::size_t P =
      std::min<std::size_t>(L, chunks > 0 ? std::size_t(chunks) : std::size_t(nt));
  const std::size_t S = nb * D * N;  // number of independent scalar recurrences (b, d, n)
  auto chunk_begin = [&](std::size_t c) { return c * L / P; };
  out.y.assign(nb * D * L, T(0));
  out.h_last.assign(S, T(0));

  // Pass 1: every chunk reduces its steps to one pair per (b, d, n): the map from the state
  // entering the chunk to the state leaving it (M5, folded left to right).
  std::vector<ScanPair<T>> agg(P * S);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (std::size_t c = 0; c < P; ++c)
    for (std::size_t b = 0; b < nb; ++b)
      for (std::size_t d = 0; d < D; ++d) {
        ScanPair<T>* g = &agg[c * S + (b * D + d) * N];
        for (std::size_t t = chunk_begin(c); t < chunk_begin(c + 1); ++t) {
          const std::size_t i = (b * D + d) * L + t;
          const T dt = delta_of(p, in.delta[i], d);
          for (std::size_t n = 0; n < N; ++n)
            g[n] = combine(
                g[n], step_pair(p.disc, dt, p.A[d * N + n], in.B[(b * N + n) * L + t], in.u[i]));
        }
      }

  // Pass 2: scan the chunk pairs (sequential over P chunks, O(P·S)): the state entering chunk c.
  std::vector<T> h_in(P * S);
  for (std::size_t s = 0; s < S; ++s) {
    T h = in.h0.empty() ? T(0) : in.h0[s];
    for (std::size_t c = 0; c < P; ++c) {
      h_in[c * S + s] = h;
      h = agg[c * S + s].a * h + agg[c * S + s].b;
    }
    out.h_last[s] = h;
  }

  // Pass 3: fix up each chunk — re-scan it from its true incoming state and emit y.
#pragma omp parallel for num_threads(nt) schedule(static)
  for (std::size_t c = 0; c < P; ++c) {
    std::vector<T> h(N);
    for (std::size_t b = 0; b < nb; ++b)
      for (std::size_t d = 0; d < D; ++d) {
        std::copy_n(&h_in[c * S + (b * D + d) * N], N, h.begin());
        for (std::size_t t = chunk_begin(c); t < chunk_begin(c + 1); ++t) {
          const std::size_t i = (b * D + d) * L + t;
          const T dt = delta_of(p, in.delta[i], d);
          T sum = 0;
          for (std::size_t n = 0; n < N; ++n) {
            const std::size_t j = (b * N + n) * L + t;
            const auto [a, bu] = step_pair(p.disc, dt, p.A[d * N + n], in.B[j], in.u[i]);
            h[n] = a * h[n] + bu;
            sum += in.C[j] * h[n];
          }
          out.y[i] = output(p, sum, in.u[i], in.z.empty() ? nullptr : &in.z[i], d);
        }
      }
  }
}

// ---------------------------------------------------------------------------------------------
// The fast CPU scan
// ---------------------------------------------------------------------------------------------
namespace {

using simd::Pack;

// Runs n independent work items on the calling thread and up to `helpers` pool threads, and
// returns as soon as every item is done. Why not an OpenMP parallel region: its join waits for
// every thread of the team to arrive, and on a shared machine a helper may not get a core for a
// whole scheduler time slice (several ms: measured 2 threads 3× slower than 1 on this project's
// busy 2-core machine); here the caller takes the items a late helper did not, and waits only
// for items actually started. On an idle machine both behave the same.
class WorkPool {
 public:
  static WorkPool& get() {
    static WorkPool pool;
    return pool;
  }
  ~WorkPool() {
    {
      std::lock_guard<std::mutex> lk(m_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
  }
  void run(std::size_t n, int helpers, const std::function<void(std::size_t)>& fn) {
    if (helpers <= 0 || n <= 1) {
      for (std::size_t i = 0; i < n; ++i) fn(i);
      return;
    }
    std::lock_guard<std::mutex> one_job(run_m_);  // the pool serves one call at a time
    {
      std::lock_guard<std::mutex> lk(m_);
      while (static_cast<int>(threads_.size()) < helpers) threads_.emplace_back([this] { loop(); });
      job_ = &fn;
      n_ = n;
      next_.store(0);
      done_.store(0);
      seats_ = helpers;
      open_ = true;
      ++gen_;
    }
    wake_.notify_all();
    work();
    // Items a helper took may still run; helpers that never came are not waited for.
    while (done_.load(std::memory_order_acquire) < n) std::this_thread::yield();
    std::unique_lock<std::mutex> lk(m_);
    open_ = false;
    idle_.wait(lk, [this] { return inside_ == 0; });  // those inside find no items left
  }

 private:
  WorkPool() = default;
  void work() {
    for (std::size_t i; (i = next_.fetch_add(1, std::memory_order_relaxed)) < n_;) {
      (*job_)(i);
      done_.fetch_add(1, std::memory_order_release);
    }
  }
  void loop() {
    std::uint64_t seen = 0;
    std::unique_lock<std::mutex> lk(m_);
    for (;;) {
      wake_.wait(lk, [&] { return stop_ || (open_ && gen_ != seen && seats_ > 0); });
      if (stop_) return;
      seen = gen_;
      --seats_;
      ++inside_;
      lk.unlock();
      work();
      lk.lock();
      if (--inside_ == 0) idle_.notify_all();
    }
  }
  std::mutex run_m_, m_;
  std::condition_variable wake_, idle_;
  std::vector<std::thread> threads_;
  const std::function<void(std::size_t)>* job_ = nullptr;
  std::size_t n_ = 0;
  std::atomic<std::size_t> next_{0}, done_{0};
  int seats_ = 0, inside_ = 0;
  std::uint64_t gen_ = 0;
  bool open_ = false, stop_ = false;
};

// Work shared by every channel group of one call.
template <class T>
struct FastCtx {
  const ScanParams<T>* p;
  const ScanInputs<T>* in;
  ScanOutputs<T>* out;
  std::size_t D, N, L;
  std::vector<T> BT, CT;  // (batch, L, N): B and C transposed so B_{t,·} is contiguous
};

template <class T>
inline constexpr int kW = simd::kLanes<T>;  // channels per group = lanes per pack
inline constexpr int kChunk = 64;           // time steps per chunk (a multiple of every kW)

// Per-thread scratch for one chunk of one channel group, [time][channel]: Δ, Δ·u and the state
// sum Σ_n C h. 3 · 64 · 64 B = 12 KiB: stays in L1 beside B_t and C_t.
template <class T>
struct alignas(64) Scratch {
  T dt[kChunk * kW<T>], du[kChunk * kW<T>], y[kChunk * kW<T>];
};

// Partial load/store of the first n < W elements (tails), zero-filled.
template <class V>
inline V load_n(const simd::Elem<V>* p, int n) {
  V v = V{};
  std::memcpy(&v, p, sizeof(simd::Elem<V>) * static_cast<std::size_t>(n));
  return v;
}
template <class V>
inline void store_n(simd::Elem<V>* p, V v, int n) {
  std::memcpy(p, &v, sizeof(simd::Elem<V>) * static_cast<std::size_t>(n));
}
template <class V>
inline V load_upto(const simd::Elem<V>* p, int n) {
  return n == static_cast<int>(sizeof(V) / sizeof(simd::Elem<V>)) ? simd::load<V>(p)
                                                                  : load_n<V>(p, n);
}

// Asks for the cache lines of [p, p + n) ahead of their use (the rows of a group are 16
// interleaved streams, more than the hardware prefetcher follows reliably).
template <class T>
inline void prefetch(const T* p, std::size_t n) {
  for (std::size_t i = 0; i < n; i += 64 / sizeof(T)) __builtin_prefetch(p + i);
}

// φ₁(x) = (e^x − 1)/x, accurate near 0 (ZOH's B̄ = Δ·φ₁(ΔA)·B): Taylor below |x| = 1/2 (degree
// 8 in float, 14 in double: truncation < ½ ulp), else from e^x.
template <class V>
inline V phi1(V x, V ex) {
  using T = simd::Elem<V>;
  constexpr int deg = std::is_same_v<T, float> ? 8 : 14;
  V p = simd::splat<V>(T(1));
  for (int k = deg; k >= 1; --k) p = p * (x / T(k + 1)) + T(1);
  // p = 1 + x/2 (1 + x/3 (1 + …)) = Σ x^k/(k+1)!
  const V big = (ex - T(1)) / x;
  const V ax = x < T(0) ? -x : x;
  return ax < T(0.5) ? p : big;
}

// One group of W channels (d0 … d0+W−1) of batch b, over the whole sequence. NC is N when it is
// known at compile time (the state then lives in registers), 0 otherwise.
template <class T, int NC, bool ZOH>
void scan_group(const FastCtx<T>& cx, Scratch<T>& s, std::size_t b, std::size_t d0) {
  using V = Pack<T>;
  constexpr int W = kW<T>;
  const ScanParams<T>& p = *cx.p;
  const ScanInputs<T>& in = *cx.in;
  const std::size_t D = cx.D, L = cx.L;
  const int N = NC ? NC : static_cast<int>(cx.N);
  const int nch = static_cast<int>(std::min<std::size_t>(W, D - d0));  // real channels here
  constexpr int NMAX = NC ? NC : kMaxScanN;

  // Per-state constants: A·log2(e), so that Ā = 2^{Δ·A·log2 e} (one multiply fewer per
  // element), and A itself for ZOH. Padding lanes get A = −1 and Δ = 0: Ā = 1, B̄ = 0.
  alignas(64) V A2[NMAX], An[ZOH ? NMAX : 1];
  alignas(64) V h[NMAX];
  for (int n = 0; n < N; ++n) {
    for (int c = 0; c < W; ++c) {
      const double a = c < nch ? static_cast<double>(p.A[(d0 + c) * cx.N + n]) : -1.0;
      A2[n][c] = static_cast<T>(a * 1.4426950408889634074);  // rounded once, from double
      if constexpr (ZOH) An[n][c] = static_cast<T>(a);
      h[n][c] = c < nch && !in.h0.empty() ? in.h0[((b * D) + d0 + c) * cx.N + n] : T(0);
    }
  }
  T bias[W], dskip[W];
  const T* urow[W];
  const T* drow[W];
  const T* zrow[W];
  T* yrow[W];
  const bool gate = !in.z.empty();
  for (int c = 0; c < W; ++c) {
    const bool real = c < nch;
    bias[c] = real && !p.delta_bias.empty() ? p.delta_bias[d0 + c] : T(0);
    dskip[c] = real && !p.D_skip.empty() ? p.D_skip[d0 + c] : T(0);
    const std::size_t row = (b * D + d0 + (real ? c : 0)) * L;
    urow[c] = in.u.data() + row;
    drow[c] = in.delta.data() + row;
    zrow[c] = gate ? in.z.data() + row : nullptr;
    yrow[c] = cx.out->y.data() + row;
  }
  const T* BT = cx.BT.data() + b * L * cx.N;
  const T* CT = cx.CT.data() + b * L * cx.N;

  for (std::size_t t0 = 0; t0 < L; t0 += kChunk) {
    const int len = static_cast<int>(std::min<std::size_t>(kChunk, L - t0));
    if (t0 + kChunk < L) {  // the next chunk's rows, while this one computes
      const std::size_t n = std::min<std::size_t>(kChunk, L - t0 - kChunk);
      for (int c = 0; c < nch; ++c) {
        prefetch(urow[c] + t0 + kChunk, n);
        prefetch(drow[c] + t0 + kChunk, n);
        if (gate) prefetch(zrow[c] + t0 + kChunk, n);
      }
    }
    // 1. Δ (M1) and Δ·u, computed W time steps at a time along each channel's row, then
    //    transposed in registers to [time][channel].
    for (int j0 = 0; j0 < len; j0 += W) {
      const int m = std::min(W, len - j0);
      V dt[W], du[W];
      for (int c = 0; c < W; ++c) {
        if (c >= nch) {
          dt[c] = du[c] = V{};
          continue;
        }
        const V raw = load_upto<V>(drow[c] + t0 + j0, m) + bias[c];
        dt[c] = p.delta_softplus ? simd::softplus(raw) : raw;
        du[c] = dt[c] * load_upto<V>(urow[c] + t0 + j0, m);
      }
      simd::transpose(dt);
      simd::transpose(du);
      for (int j = 0; j < W; ++j) {
        simd::store(s.dt + (j0 + j) * W, dt[j]);
        simd::store(s.du + (j0 + j) * W, du[j]);
      }
    }

    // 2. The recurrence (M2–M4), W channels per instruction, the N states in registers.
    for (int j = 0; j < len; ++j) {
      const V dt = simd::load<V>(s.dt + j * W);
      const V du = simd::load<V>(s.du + j * W);
      const T* Bt = BT + (t0 + static_cast<std::size_t>(j)) * cx.N;
      const T* Ct = CT + (t0 + static_cast<std::size_t>(j)) * cx.N;
      V y0 = V{}, y1 = V{};
#pragma GCC unroll 16
      for (int n = 0; n < N; ++n) {
        const V a = simd::exp2(dt * A2[n]);                // Ā = e^{ΔA} (M2)
        V bu = du * Bt[n];                                 // B̄u = Δ B u (D6)
        if constexpr (ZOH) bu = bu * phi1(dt * An[n], a);  // (D5): Δ φ₁(ΔA) B u
        h[n] = a * h[n] + bu;                              // (M3)
        if (n & 1)
          y1 += Ct[n] * h[n];  // (M4), two accumulators to halve the add chain
        else
          y0 += Ct[n] * h[n];
      }
      simd::store(s.y + j * W, y0 + y1);
    }

    // 3. Back to [channel][time] (in registers); skip D u and gate silu(z) along time (M4).
    for (int j0 = 0; j0 < len; j0 += W) {
      const int m = std::min(W, len - j0);
      V y[W];
      for (int j = 0; j < W; ++j) y[j] = simd::load<V>(s.y + (j0 + j) * W);
      simd::transpose(y);
      for (int c = 0; c < nch; ++c) {
        V yc = y[c] + dskip[c] * load_upto<V>(urow[c] + t0 + j0, m);
        if (gate) yc *= simd::silu(load_upto<V>(zrow[c] + t0 + j0, m));
        if (m == W)
          simd::store(yrow[c] + t0 + j0, yc);
        else
          store_n(yrow[c] + t0 + j0, yc, m);
      }
    }
  }
  for (int c = 0; c < nch; ++c)
    for (int n = 0; n < N; ++n) cx.out->h_last[(b * D + d0 + c) * cx.N + n] = h[n][c];
}

template <class T, int NC>
void scan_group_dispatch(const FastCtx<T>& cx, Scratch<T>& s, std::size_t b, std::size_t d0) {
  if (cx.p->disc == ScanDiscretization::ZOH)
    scan_group<T, NC, true>(cx, s, b, d0);
  else
    scan_group<T, NC, false>(cx, s, b, d0);
}

}  // namespace

template <class T>
void selective_scan(const ScanParams<T>& p, const ScanInputs<T>& in, ScanOutputs<T>& out,
                    int threads) {
  validate(p, in, false);
  const int nt = thread_count(threads);
  FastCtx<T> cx{&p,
                &in,
                &out,
                static_cast<std::size_t>(p.D),
                static_cast<std::size_t>(p.N),
                static_cast<std::size_t>(in.L),
                {},
                {}};
  const auto nb = static_cast<std::size_t>(in.batch), D = cx.D, N = cx.N, L = cx.L;
  out.y.resize(nb * D * L);
  out.h_last.resize(nb * D * N);
  cx.BT.resize(nb * L * N);
  cx.CT.resize(nb * L * N);
  const std::size_t groups = (D + kW<T> - 1) / kW<T>;
  // B, C: (batch, N, L) → (batch, L, N), before the threads start (a few µs of work, and one
  // barrier fewer: on a shared machine a barrier waits for the slowest thread's time slice).
  for (std::size_t b = 0; b < nb; ++b)
    for (std::size_t n = 0; n < N; ++n)
      for (std::size_t t = 0; t < L; ++t) {
        cx.BT[(b * L + t) * N + n] = in.B[(b * N + n) * L + t];
        cx.CT[(b * L + t) * N + n] = in.C[(b * N + n) * L + t];
      }
  // Channel groups are independent work items, ~0.2 ms each at Mamba sizes.
  const std::function<void(std::size_t)> item = [&](std::size_t g) {
    static thread_local Scratch<T> scratch;
    const std::size_t b = g / groups, d0 = (g % groups) * kW<T>;
    if (N == 16)
      scan_group_dispatch<T, 16>(cx, scratch, b, d0);
    else
      scan_group_dispatch<T, 0>(cx, scratch, b, d0);
  };
  WorkPool::get().run(nb * groups, nt - 1, item);
}

// ---------------------------------------------------------------------------------------------
// Random problems and conversions
// ---------------------------------------------------------------------------------------------
double inverse_softplus(double delta) {
  require(delta > 0 && std::isfinite(delta),
          "inverse_softplus: Δ = " + fmt(delta) + " must be finite and > 0");
  return delta + std::log(-std::expm1(-delta));  // (M6)
}

template <class T>
void random_scan_problem(const ScanShape& s, std::uint64_t seed, ScanParams<T>& p,
                         ScanInputs<T>& in, const RandomScanOptions& opt) {
  require(s.batch >= 1 && s.D >= 1 && s.L >= 1 && s.N >= 1,
          "random_scan_problem: batch, D, L, N must be >= 1");
  std::mt19937_64 rng(mix_seed(seed, 7));
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  const auto nb = static_cast<std::size_t>(s.batch), D = static_cast<std::size_t>(s.D),
             N = static_cast<std::size_t>(s.N), L = static_cast<std::size_t>(s.L);
  p = ScanParams<T>{};
  p.D = s.D;
  p.N = s.N;
  p.disc = opt.disc;
  p.A.resize(D * N);
  for (std::size_t d = 0; d < D; ++d)
    for (std::size_t n = 0; n < N; ++n)
      p.A[d * N + n] = static_cast<T>(-double(n + 1) * std::exp(0.1 * normal(rng)));
  p.delta_bias.resize(D);
  for (auto& x : p.delta_bias)  // Δ log-uniform in [1e-3, 1e-1] (M6)
    x = static_cast<T>(inverse_softplus(std::exp(std::log(1e-3) + unif(rng) * std::log(100.0))));
  if (opt.skip) p.D_skip.assign(D, T(1));
  in = ScanInputs<T>{};
  in.batch = s.batch;
  in.L = s.L;
  auto fill = [&](std::vector<T>& v, std::size_t n, double scale) {
    v.resize(n);
    for (auto& x : v) x = static_cast<T>(scale * normal(rng));
  };
  fill(in.u, nb * D * L, 1.0);
  fill(in.delta, nb * D * L, 0.5);
  fill(in.B, nb * N * L, 1.0);
  fill(in.C, nb * N * L, 1.0);
  if (opt.constant_in_time) {  // every row takes the value of its first step
    auto hold = [L](std::vector<T>& v) {
      for (std::size_t r = 0; r < v.size() / L; ++r) std::fill_n(&v[r * L + 1], L - 1, v[r * L]);
    };
    hold(in.delta);
    hold(in.B);
    hold(in.C);
  }
  if (opt.gate) fill(in.z, nb * D * L, 1.0);
  if (opt.initial_state) fill(in.h0, nb * D * N, 1.0);
}

template <class To, class From>
ScanParams<To> cast_params(const ScanParams<From>& p) {
  auto cv = [](const std::vector<From>& v) { return std::vector<To>(v.begin(), v.end()); };
  return ScanParams<To>{p.D,   p.N, cv(p.A), cv(p.D_skip), cv(p.delta_bias), p.delta_softplus,
                        p.disc};
}

template <class To, class From>
ScanInputs<To> cast_inputs(const ScanInputs<From>& in) {
  auto cv = [](const std::vector<From>& v) { return std::vector<To>(v.begin(), v.end()); };
  return ScanInputs<To>{in.batch, in.L,     cv(in.u), cv(in.delta),
                        cv(in.B), cv(in.C), cv(in.z), cv(in.h0)};
}

#define SSM_SELECTIVE_INSTANTIATE(T)                                                           \
  template void validate<T>(const ScanParams<T>&, const ScanInputs<T>&, bool);                 \
  template void validate<T>(const ScanParams<T>&);                                             \
  template void selective_scan<T>(const ScanParams<T>&, const ScanInputs<T>&, ScanOutputs<T>&, \
                                  int);                                                        \
  template void selective_scan_parallel<T>(const ScanParams<T>&, const ScanInputs<T>&,         \
                                           ScanOutputs<T>&, int, int);                         \
  template void selective_scan_stepwise<T>(const ScanParams<T>&, const ScanInputs<T>&,         \
                                           ScanOutputs<T>&);                                   \
  template void selective_state_update<T>(const ScanParams<T>&, const StepInputs<T>&,          \
                                          std::vector<T>&, std::vector<T>&);                   \
  template void random_scan_problem<T>(const ScanShape&, std::uint64_t, ScanParams<T>&,        \
                                       ScanInputs<T>&, const RandomScanOptions&);
SSM_SELECTIVE_INSTANTIATE(float)
SSM_SELECTIVE_INSTANTIATE(double)
template ScanParams<double> cast_params<double, float>(const ScanParams<float>&);
template ScanParams<float> cast_params<float, double>(const ScanParams<double>&);
template ScanParams<double> cast_params<double, double>(const ScanParams<double>&);
template ScanParams<float> cast_params<float, float>(const ScanParams<float>&);
template ScanInputs<double> cast_inputs<double, float>(const ScanInputs<float>&);
template ScanInputs<float> cast_inputs<float, double>(const ScanInputs<double>&);
template ScanInputs<double> cast_inputs<double, double>(const ScanInputs<double>&);
template ScanInputs<float> cast_inputs<float, float>(const ScanInputs<float>&);

}  // namespace ssm
