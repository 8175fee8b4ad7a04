// Stage 6 benchmark: kernel generation for H = 256 channels of HiPPO-LegS with N = 64 states,
// L = 1024 and 4096, float and double, 1 and 2 threads. items/s = kernel samples (H·L) per
// second; bytes/s = the kernels written (H·L·sizeof(T)).
//
//   build/release/apps/bench/bench-s4 --benchmark_repetitions=5
//   --benchmark_report_aggregates_only=true
//
// BM_DPLR: S4's kernel from (Λ, P̃, B̃, C̄', Δ_h) — Cauchy sums at the L/2 + 1 points, Woodbury,
//   inverse real FFT (S2–S5). C̄' = C̃(I − Ā^L) is the parameter S4 learns, so it is given.
// BM_CPrime: the one-off setup C̃ → C̄' (L steps of the O(N) DPLR recurrence per channel), paid
//   when Δ or L change if one stores C̃ instead of C̄'.
// BM_Powers: stage 4's reference K̄_k = C Ā^k B̄ by L mat-vecs with a dense 64×64 Ā: O(N² L).
// BM_S4D: the diagonal kernel (S4D-LegS, bilinear) by Vandermonde sums (Q1): O(N L).
// Each channel h has its own Δ_h (log-spaced over [1e-3, 1e-1], S4's init) and its own C.
#include <benchmark/benchmark.h>

#include <map>

#include "ssm/hippo.hpp"
#include "ssm/s4.hpp"

namespace {

constexpr int kH = 256, kN = 64;

struct Model {
  ssm::s4::Nplr nplr = ssm::s4::nplr_legs(kN);
  ssm::s4::Dplr dplr = ssm::s4::to_dplr(nplr);
  ssm::s4::Dplr diag = ssm::s4::s4d_init(ssm::s4::S4DInit::LegS, kN);
  ssm::Vec dt = ssm::Vec(kH);
  ssm::CMat C = ssm::s4::random_C(kH, kN / 2, 1);
  Model() {
    for (int h = 0; h < kH; ++h) dt(h) = 1e-3 * std::pow(100.0, double(h) / (kH - 1));
  }
};

const Model& model() {
  static const Model m;
  return m;
}

// C̄' for every channel at length L, computed once per L.
const ssm::CMat& c_prime(std::size_t L) {
  static std::map<std::size_t, ssm::CMat> cache;
  auto& c = cache[L];
  if (c.size() == 0) {
    const Model& m = model();
    c.resize(kH, kN / 2);
    for (int h = 0; h < kH; ++h)
      c.row(h) = ssm::s4::c_prime(m.dplr, m.C.row(h).transpose(), m.dt(h), L).transpose();
  }
  return c;
}

template <class T>
void counters(benchmark::State& st, std::size_t L) {
  const double items = double(kH) * double(L);
  st.SetItemsProcessed(static_cast<int64_t>(st.iterations() * items));
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * items * sizeof(T)));
}

template <class T>
void BM_DPLR(benchmark::State& st) {
  const std::size_t L = std::size_t(1) << st.range(0);
  const int threads = static_cast<int>(st.range(1));
  const Model& m = model();
  const ssm::CMat& Cp = c_prime(L);
  ssm::s4::CauchyKernel<T> gen(m.dplr, L);  // FFT plan made once, outside the timing
  ssm::Signals<T> K;
  for (auto _ : st) {
    gen(m.dt, Cp, K, threads);
    benchmark::DoNotOptimize(K.data());
  }
  counters<T>(st, L);
}

void BM_CPrime(benchmark::State& st) {
  const std::size_t L = std::size_t(1) << st.range(0);
  const int threads = static_cast<int>(st.range(1));
  const Model& m = model();
  ssm::CMat Cp(kH, kN / 2);
  for (auto _ : st) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int h = 0; h < kH; ++h)
      Cp.row(h) = ssm::s4::c_prime(m.dplr, m.C.row(h).transpose(), m.dt(h), L).transpose();
    benchmark::DoNotOptimize(Cp.data());
  }
  counters<double>(st, L);
}

template <class T>
void BM_Powers(benchmark::State& st) {
  const std::size_t L = std::size_t(1) << st.range(0);
  const int threads = static_cast<int>(st.range(1));
  const Model& m = model();
  const auto [A, B] = ssm::hippo::legs(kN);
  std::vector<ssm::DiscreteSSM<T>> ss;  // discretization (O(N³) per channel) outside the timing
  for (int h = 0; h < kH; ++h) {
    const ssm::RowVec c = 2.0 * (m.C.row(h) * m.nplr.V.adjoint()).real();
    const auto s = ssm::make_ssm(ssm::Model(A, B, c), m.dt(h), ssm::Method::Bilinear);
    if constexpr (std::is_same_v<T, float>)
      ss.push_back(ssm::to_float(s));
    else
      ss.push_back(s);
  }
  ssm::Signals<T> K(kH, static_cast<Eigen::Index>(L));
  for (auto _ : st) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int h = 0; h < kH; ++h)
      K.row(h) = ssm::kernel(ss[static_cast<std::size_t>(h)], L).transpose();
    benchmark::DoNotOptimize(K.data());
  }
  counters<T>(st, L);
}

template <class T>
void BM_S4D(benchmark::State& st) {
  const std::size_t L = std::size_t(1) << st.range(0);
  const int threads = static_cast<int>(st.range(1));
  const Model& m = model();
  ssm::Signals<T> K;
  for (auto _ : st) {
    ssm::s4::s4d_kernels<T>(m.diag, m.dt, m.C, L, ssm::Method::Bilinear, K, threads);
    benchmark::DoNotOptimize(K.data());
  }
  counters<T>(st, L);
}

void sizes(benchmark::internal::Benchmark* b) {
  for (int lg : {10, 12})
    for (int t : {1, 2}) b->Args({lg, t});
  // Process CPU time beside wall time: on a shared machine their ratio shows whether the
  // threads really ran in parallel.
  b->ArgNames({"log2L", "threads"})
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime()
      ->MeasureProcessCPUTime();
}

}  // namespace

BENCHMARK(BM_DPLR<float>)->Apply(sizes);
BENCHMARK(BM_DPLR<double>)->Apply(sizes);
BENCHMARK(BM_S4D<float>)->Apply(sizes);
BENCHMARK(BM_S4D<double>)->Apply(sizes);
BENCHMARK(BM_Powers<float>)->Apply(sizes);
BENCHMARK(BM_Powers<double>)->Apply(sizes);
BENCHMARK(BM_CPrime)->Apply(sizes);
BENCHMARK_MAIN();
