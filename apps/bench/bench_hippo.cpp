// Stage 5 benchmark: one HiPPO-LegS step (H5, bilinear), the dense O(N²) reference against the
// O(N) prefix-sum step (H6), N = 64 … 4096. items/s = state entries updated per second (N per
// step); bytes/s counts what each step must read and write (the dense one streams A: 8N² bytes).
//
//   build/release/apps/bench/bench-hippo --benchmark_repetitions=5
//   --benchmark_report_aggregates_only=true
//
// The state is that of a real run (a signal projected for 1000 steps) and the step number k
// grows with each iteration, as in a run; the O(N) step must take ~2× longer when N doubles.
#include <benchmark/benchmark.h>

#include <cmath>

#include "ssm/hippo.hpp"

namespace {

// A LegS state after 1000 steps of a signal with detail at several time scales.
ssm::Vec state(int N) {
  ssm::hippo::Online run(ssm::hippo::Spec{ssm::hippo::Measure::LegS, N, 1.0},
                         ssm::hippo::Stepping{}, 0.01);
  for (int k = 0; k <= 1000; ++k) run.push(std::sin(0.05 * k) + 0.3 * std::sin(0.31 * k));
  return run.c();
}

void counters(benchmark::State& st, double N, double bytes_per_step) {
  st.SetItemsProcessed(static_cast<int64_t>(st.iterations() * N));
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * bytes_per_step));
  st.counters["N"] = N;
}

void BM_LegSStepDense(benchmark::State& st) {
  const int N = static_cast<int>(st.range(0));
  const auto [A, B] = ssm::hippo::legs(N);
  ssm::Vec c = state(N);
  double k = 1001;
  for (auto _ : st) {
    ssm::hippo::legs_step_dense(A, B, c, std::sin(0.05 * k), k, 0.5);
    benchmark::DoNotOptimize(c.data());
    k += 1;
  }
  // Two passes over A (mat-vec, then forward substitution): 2·8N² bytes; c, B: 3·8N.
  counters(st, N, 16.0 * N * N + 24.0 * N);
}

void BM_LegSStepFast(benchmark::State& st) {
  const int N = static_cast<int>(st.range(0));
  const ssm::Vec B = ssm::hippo::legs(N).second;
  ssm::Vec c = state(N);
  double k = 1001;
  for (auto _ : st) {
    ssm::hippo::legs_step_fast(B, c, std::sin(0.05 * k), k, 0.5);
    benchmark::DoNotOptimize(c.data());
    k += 1;
  }
  counters(st, N, 24.0 * N);  // read c and B, write c
}

}  // namespace

BENCHMARK(BM_LegSStepDense)->RangeMultiplier(2)->Range(64, 4096)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_LegSStepFast)->RangeMultiplier(2)->Range(64, 4096)->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
