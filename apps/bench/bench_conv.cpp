// Stage 4 benchmark: recurrence vs FFT convolution for H = 256 channels of an N = 64 model,
// L = 2^10 … 2^16, float and double, 1 and 2 threads. items/s = channel-samples (H·L) per second.
//
//   build/release/apps/bench/bench-conv --benchmark_filter='FFT' --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true
//
// BM_FFTConvApply: the kernels' spectra are computed once (the usual case: the kernel is a
// parameter, reused for every input) — per call: rfft(u), product, irfft.
// BM_FFTConvFull: the kernels' FFTs are part of every call (as in a training step).
// BM_Recurrence: x_k = Ā x_{k−1} + B̄ u_k with a dense 64×64 Ā: O(N² L) per channel.
#include <benchmark/benchmark.h>

#include <map>
#include <memory>

#include "ssm/convolution.hpp"

namespace {

constexpr int kH = 256, kN = 64;

template <class T>
struct Setup {
  std::size_t L;
  ssm::DiscreteSSM<T> s;
  ssm::Signals<T> K, U, Y;
  explicit Setup(std::size_t L_) : L(L_) {
    const auto sd = ssm::make_ssm(ssm::random_stable(kN, 1), 0.05, ssm::Method::Bilinear);
    if constexpr (std::is_same_v<T, float>) s = ssm::to_float(sd);
    else s = sd;
    K.resize(kH, static_cast<Eigen::Index>(L));
    const ssm::VecT<T> k = ssm::kernel(s, L);
    for (int h = 0; h < kH; ++h) K.row(h) = k.transpose() * T(1 + 0.001 * h);
    U = ssm::Signals<T>::Random(kH, static_cast<Eigen::Index>(L));
    Y.resize(kH, static_cast<Eigen::Index>(L));
  }
};

// One FFTConv per (type, L), shared by every benchmark: FFTW_MEASURE times candidate plans and
// can pick different ones on each planning, so sharing keeps Apply and Full comparable.
template <class T>
const ssm::FFTConv<T>& conv_for(std::size_t L) {
  static std::map<std::size_t, std::unique_ptr<ssm::FFTConv<T>>> cache;
  auto& c = cache[L];
  if (!c) c = std::make_unique<ssm::FFTConv<T>>(L, ssm::Planning::Measure);
  return *c;
}

template <class T>
void counters(benchmark::State& st, std::size_t L) {
  const double items = double(kH) * double(L);
  st.SetItemsProcessed(static_cast<int64_t>(st.iterations() * items));
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * items * 2 * sizeof(T)));  // u in, y out
}

template <class T>
void BM_FFTConvApply(benchmark::State& st) {
  const std::size_t L = std::size_t(1) << st.range(0);
  const int threads = static_cast<int>(st.range(1));
  Setup<T> x(L);
  const auto& conv = conv_for<T>(L);  // plans made once, outside the timing
  const auto spectra = conv.transform_kernels(x.K, threads);
  for (auto _ : st) {
    conv.apply(spectra, x.U, x.Y, threads);
    benchmark::DoNotOptimize(x.Y.data());
  }
  counters<T>(st, L);
}

template <class T>
void BM_FFTConvFull(benchmark::State& st) {
  const std::size_t L = std::size_t(1) << st.range(0);
  const int threads = static_cast<int>(st.range(1));
  Setup<T> x(L);
  const auto& conv = conv_for<T>(L);
  for (auto _ : st) {
    conv.convolve(x.K, x.U, x.Y, threads);
    benchmark::DoNotOptimize(x.Y.data());
  }
  counters<T>(st, L);
}

template <class T>
void BM_Recurrence(benchmark::State& st) {
  const std::size_t L = std::size_t(1) << st.range(0);
  const int threads = static_cast<int>(st.range(1));
  Setup<T> x(L);
  for (auto _ : st) {
    ssm::unroll_channels<T>({x.s}, x.U, x.Y, threads);
    benchmark::DoNotOptimize(x.Y.data());
  }
  counters<T>(st, L);
}

void sizes(benchmark::internal::Benchmark* b) {
  for (int lg = 10; lg <= 16; lg += 2)
    for (int t : {1, 2}) b->Args({lg, t});
  b->ArgNames({"log2L", "threads"})->Unit(benchmark::kMillisecond)->UseRealTime();
}

}  // namespace

BENCHMARK(BM_FFTConvApply<float>)->Apply(sizes);
BENCHMARK(BM_FFTConvApply<double>)->Apply(sizes);
BENCHMARK(BM_FFTConvFull<float>)->Apply(sizes);
BENCHMARK(BM_FFTConvFull<double>)->Apply(sizes);
BENCHMARK(BM_Recurrence<float>)->Apply(sizes);
BENCHMARK(BM_Recurrence<double>)->Apply(sizes);
BENCHMARK_MAIN();
