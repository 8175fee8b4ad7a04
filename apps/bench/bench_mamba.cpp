// Stage 7 benchmark: the fast CPU selective scan at Mamba layer sizes, float, with the gate and
// the skip D, threads 1 and 2; the reference and the chunked parallel scan for scale; and the
// exp floor (the vectorized exp2 the scan uses, against scalar std::exp).
// items/s = elements batch·D·L·N per second (one exp each); bytes/s counts u, Δ, z read and y
// written once (B and C are read once per batch and are small).
//
//   build/release/apps/bench/bench-mamba --benchmark_filter=Fast --benchmark_repetitions=7
//       --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cmath>
#include <map>
#include <vector>

#include "ssm/selective.hpp"
#include "ssm/vmath.hpp"

namespace {

const ssm::ScanShape kShapes[] = {{1, 1536, 2048, 16}, {1, 768, 1024, 16}};

template <class T>
struct Problem {
  ssm::ScanParams<T> p;
  ssm::ScanInputs<T> in;
  ssm::ScanOutputs<T> out;
};

// One problem per (type, shape), shared by the benchmarks (generating it takes longer than a run).
template <class T>
Problem<T>& problem(int shape) {
  static std::map<int, Problem<T>> cache;
  auto& x = cache[shape];
  if (x.in.L == 0) ssm::random_scan_problem<T>(kShapes[shape], 1, x.p, x.in);
  return x;
}

void counters(benchmark::State& st, const ssm::ScanShape& s, std::size_t elem_bytes) {
  const double el = double(s.batch) * s.D * s.L * s.N;
  st.SetItemsProcessed(static_cast<int64_t>(st.iterations() * el));
  st.SetBytesProcessed(
      static_cast<int64_t>(st.iterations() * double(s.batch) * s.D * s.L * 4 * elem_bytes));
  st.counters["batch"] = s.batch;
  st.counters["D"] = s.D;
  st.counters["L"] = s.L;
  st.counters["N"] = s.N;
}

template <class T>
void BM_FastScan(benchmark::State& st) {
  auto& x = problem<T>(static_cast<int>(st.range(0)));
  const int threads = static_cast<int>(st.range(1));
  for (auto _ : st) {
    ssm::selective_scan(x.p, x.in, x.out, threads);
    benchmark::DoNotOptimize(x.out.y.data());
  }
  counters(st, kShapes[st.range(0)], sizeof(T));
}

void BM_Reference(benchmark::State& st) {
  auto& x = problem<double>(static_cast<int>(st.range(0)));
  for (auto _ : st) benchmark::DoNotOptimize(ssm::selective_scan_reference(x.p, x.in).y.data());
  counters(st, kShapes[st.range(0)], sizeof(double));
}

void BM_ParallelScan(benchmark::State& st) {
  auto& x = problem<float>(static_cast<int>(st.range(0)));
  const int threads = static_cast<int>(st.range(1));
  for (auto _ : st) {
    ssm::selective_scan_parallel(x.p, x.in, x.out, threads, threads);
    benchmark::DoNotOptimize(x.out.y.data());
  }
  counters(st, kShapes[st.range(0)], sizeof(float));
}

// The exp floor: one Ā = exp2(Δ·A·log2 e) per element is the scan's irreducible work.
void BM_VExp2(benchmark::State& st) {
  using V = ssm::simd::Pack<float>;
  std::vector<float> x(1 << 14), y(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = -0.001f * float(i % 5000);
  for (auto _ : st) {
    for (std::size_t i = 0; i < x.size(); i += ssm::simd::kLanes<float>)
      ssm::simd::store(&y[i], ssm::simd::exp2(ssm::simd::load<V>(&x[i])));
    benchmark::DoNotOptimize(y.data());
  }
  st.SetItemsProcessed(static_cast<int64_t>(st.iterations() * x.size()));
}

void BM_StdExp(benchmark::State& st) {
  std::vector<float> x(1 << 14), y(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = -0.001f * float(i % 5000);
  for (auto _ : st) {
    for (std::size_t i = 0; i < x.size(); ++i) y[i] = std::exp(x[i]);
    benchmark::DoNotOptimize(y.data());
  }
  st.SetItemsProcessed(static_cast<int64_t>(st.iterations() * x.size()));
}

void shapes_threads(benchmark::internal::Benchmark* b) {
  for (int s : {0, 1})
    for (int t : {1, 2}) b->Args({s, t});
  b->ArgNames({"shape", "threads"})->Unit(benchmark::kMillisecond)->UseRealTime();
}

}  // namespace

BENCHMARK(BM_FastScan<float>)->Apply(shapes_threads);
BENCHMARK(BM_FastScan<double>)->Apply(shapes_threads);
BENCHMARK(BM_ParallelScan)
    ->Args({1, 1})
    ->Args({1, 2})
    ->ArgNames({"shape", "threads"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_Reference)->Arg(1)->ArgName("shape")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_VExp2);
BENCHMARK(BM_StdExp);
BENCHMARK_MAIN();
