// Stage 9 benchmark: the chunked SSD (X3) at Mamba-2's layer shape — batch 1, 24 heads × head
// dim 64 (d_inner 1536), N = 128, L = 2048, float — against the same model run as a Mamba-1
// selective scan (D = 1536 channels, N = 128: one exp per element) and as the sequential SSD
// recurrence (rank-1 updates of the N×P state), 1 and 2 threads; and this machine's FMA peak,
// measured in the same run by a kernel of independent vector FMAs, so that GFLOP/s can be read
// as a fraction of it.
// items/s = tokens per second (L per call); counters: GFLOP/s of the SSD's matrix products
// (ssd_chunked_flops: 2 flops per multiply-add) and, for the SSD, Q, N, P.
//
//   build/release/apps/bench/bench-ssd --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//   (BM_FmaPeak gives the peak; the "Q sweep" rows, 1 thread, show the best chunk for each N, P)
#include <benchmark/benchmark.h>

#include <omp.h>

#include <Eigen/Dense>
#include <map>
#include <tuple>
#include <vector>

#include "ssm/selective.hpp"
#include "ssm/ssd.hpp"
#include "ssm/vmath.hpp"

namespace {

// The FMA peak: `chains` independent accumulators in 64-byte packs, each updated by a·x + b in
// a loop. With enough chains to cover the FMA latency × the number of FMA pipes, the loop runs
// at the core's FMA throughput. flops = 2 · lanes · chains per iteration.
void BM_FmaPeak(benchmark::State& st) {
  using V = ssm::simd::Pack<float>;
  constexpr int kChains = 16;
  const int threads = static_cast<int>(st.range(0));
  constexpr long kIters = 1 << 16;
  for (auto _ : st) {
#pragma omp parallel num_threads(threads)
    {
      V acc[kChains];
      for (int c = 0; c < kChains; ++c) acc[c] = ssm::simd::splat<V>(1.0f + 0.001f * float(c));
      const V a = ssm::simd::splat<V>(0.999999f), b = ssm::simd::splat<V>(1e-7f);
      for (long i = 0; i < kIters; ++i)
        for (int c = 0; c < kChains; ++c) acc[c] = acc[c] * a + b;  // contracted to one FMA
      for (int c = 0; c < kChains; ++c) benchmark::DoNotOptimize(acc[c]);
    }
  }
  const double flops = 2.0 * ssm::simd::kLanes<float> * kChains * double(kIters) * threads;
  st.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9 * double(st.iterations()),
                                              benchmark::Counter::kIsRate);
  st.counters["threads"] = threads;
}

struct Shape {
  int H, P, N, L;
};
const Shape kMamba2 = {24, 64, 128, 2048};

template <class T>
struct Problem {
  ssm::SsdParams<T> p;
  ssm::SsdInputs<T> in;
  ssm::SsdOutputs<T> out;
};

Problem<float>& problem(const Shape& s) {
  static std::map<std::tuple<int, int, int, int>, Problem<float>> cache;
  auto& x = cache[{s.H, s.P, s.N, s.L}];
  if (x.in.L == 0) {
    ssm::SsdShape sh;
    sh.batch = 1;
    sh.L = s.L;
    sh.H = s.H;
    sh.P = s.P;
    sh.N = s.N;
    sh.G = 1;
    ssm::random_ssd_problem(sh, 1, x.p, x.in);
  }
  return x;
}

void counters(benchmark::State& st, const Shape& s, double flops) {
  st.SetItemsProcessed(static_cast<int64_t>(st.iterations()) * s.L);
  if (flops > 0)
    st.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9 * double(st.iterations()),
                                                benchmark::Counter::kIsRate);
  st.counters["N"] = s.N;
  st.counters["P"] = s.P;
}

// Args: Q, threads (Mamba-2's shape).
void BM_Ssd(benchmark::State& st) {
  auto& x = problem(kMamba2);
  const int Q = static_cast<int>(st.range(0)), threads = static_cast<int>(st.range(1));
  for (auto _ : st) {
    ssm::ssd_chunked(x.p, x.in, x.out, Q, threads);
    benchmark::DoNotOptimize(x.out.y.data());
  }
  counters(st, kMamba2, ssm::ssd_chunked_flops(1, kMamba2.L, kMamba2.H, kMamba2.P, kMamba2.N, Q));
  st.counters["Q"] = Q;
}

// Args: threads. The recurrence (X1) in float, the state updated by rank-1 products.
void BM_SsdSequential(benchmark::State& st) {
  auto& x = problem(kMamba2);
  const int threads = static_cast<int>(st.range(0));
  for (auto _ : st) {
    ssm::ssd_sequential(x.p, x.in, x.out, threads);
    benchmark::DoNotOptimize(x.out.y.data());
  }
  counters(st, kMamba2, 0);
}

// Args: threads. The same model through stage 7's fast scan: A per (channel, state) as Mamba-1
// has it, so one exp per element of the D·L·N state sequence.
void BM_Mamba1Scan(benchmark::State& st) {
  static ssm::ScanParams<float> sp;
  static ssm::ScanInputs<float> si;
  if (si.L == 0) {
    ssm::ScanParams<double> pd;
    ssm::ScanInputs<double> id;
    auto& x = problem(kMamba2);
    ssm::ssd_as_selective_scan(ssm::cast_params<double>(x.p), ssm::cast_inputs<double>(x.in), pd,
                               id);
    sp = ssm::cast_params<float>(pd);
    si = ssm::cast_inputs<float>(id);
  }
  ssm::ScanOutputs<float> out;
  const int threads = static_cast<int>(st.range(0));
  for (auto _ : st) {
    ssm::selective_scan(sp, si, out, threads);
    benchmark::DoNotOptimize(out.y.data());
  }
  counters(st, kMamba2, 0);
}

// Args: N, P, Q (1 thread, L = 2048, 24 heads): how the best chunk length moves with N and P.
void BM_SsdSweep(benchmark::State& st) {
  const Shape s = {24, static_cast<int>(st.range(1)), static_cast<int>(st.range(0)), 2048};
  auto& x = problem(s);
  const int Q = static_cast<int>(st.range(2));
  for (auto _ : st) {
    ssm::ssd_chunked(x.p, x.in, x.out, Q, 1);
    benchmark::DoNotOptimize(x.out.y.data());
  }
  counters(st, s, ssm::ssd_chunked_flops(1, s.L, s.H, s.P, s.N, Q));
  st.counters["Q"] = Q;
}


// Args: Q, N, P (1 thread). The four matrix products of one chunk at the SSD's shapes, alone,
// on contiguous operands: C Bᵀ (Q×N·N×Q), (·)(Δx) (Q×Q·Q×P), C H (Q×N·N×P), Bᵀ(wΔx) (N×Q·Q×P).
// Their GFLOP/s against BM_FmaPeak is what Eigen's GEMM reaches at these sizes: the ceiling of
// the whole SSD, whose other work (the decay mask's exps, scalings) runs between them.
void BM_ChunkProducts(benchmark::State& st) {
  const int Q = static_cast<int>(st.range(0)), N = static_cast<int>(st.range(1)),
            P = static_cast<int>(st.range(2));
  using RM = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const RM C = RM::Random(Q, N), B = RM::Random(Q, N), X = RM::Random(Q, P), S = RM::Random(N, P);
  RM G(Q, Q), Y(Q, P), Z(Q, P), T(N, P);
  for (auto _ : st) {
    // One core, pinned the way ssd_chunked pins each thread's products (Eigen::setNbThreads is
    // left alone: once set, Eigen would ignore the per-thread setting and nest teams).
#pragma omp parallel num_threads(1)
    {
      omp_set_num_threads(1);
      G.noalias() = C * B.transpose();
      Y.noalias() = G * X;
      Z.noalias() = C * S;
      T.noalias() = B.transpose() * X;
    }
    benchmark::DoNotOptimize(Y.data());
    benchmark::DoNotOptimize(Z.data());
    benchmark::DoNotOptimize(T.data());
  }
  const double flops = 2.0 * Q * Q * (N + P) + 4.0 * Q * N * P;
  st.counters["GFLOP/s"] =
      benchmark::Counter(flops * 1e-9 * double(st.iterations()), benchmark::Counter::kIsRate);
  st.counters["Q"] = Q;
  st.counters["N"] = N;
  st.counters["P"] = P;
}

}  // namespace

BENCHMARK(BM_FmaPeak)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Ssd)
    ->ArgsProduct({{16, 32, 64, 128, 256}, {1, 2}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ChunkProducts)
    ->ArgsProduct({{32, 64, 128, 256}, {128}, {64}})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SsdSequential)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Mamba1Scan)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SsdSweep)
    ->ArgsProduct({{32, 64, 128, 256}, {64}, {8, 16, 32, 64, 128}})
    ->ArgsProduct({{128}, {32, 128}, {8, 16, 32, 64, 128}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
