// The CUDA selective-scan kernel: GB/s of the bytes it must move at least (u, Δ, z, B, C read,
// y written, once), against the device's peak memory bandwidth (M9: on a GPU the scan is bound
// by memory traffic). Without a device every benchmark reports "no CUDA device" and is skipped.
//
//   build/release/apps/bench/bench-cuda-scan --benchmark_repetitions=5
#include <benchmark/benchmark.h>

#include <memory>

#include "ssm/cuda/selective_scan_cuda.hpp"

namespace {

const ssm::ScanShape kShapes[] = {
    {1, 768, 1024, 16}, {1, 1536, 2048, 16}, {8, 1536, 2048, 16}, {8, 2048, 4096, 16}};

void BM_CudaScan(benchmark::State& st) {
  static const ssm::cuda::DeviceInfo info = ssm::cuda::device_info();
  if (!info.available) {
    st.SkipWithError(("no CUDA device: " + info.error).c_str());
    return;
  }
  const auto& s = kShapes[st.range(0)];
  ssm::ScanParams<float> p;
  ssm::ScanInputs<float> in;
  ssm::random_scan_problem<float>(s, 1, p, in);
  ssm::cuda::DeviceScan dev(p, in);
  dev.run(3);  // warm-up
  for (auto _ : st) st.SetIterationTime(dev.run(10) / 1e3);
  const double gbps = double(dev.min_bytes()) / 1e9;
  st.counters["GB/s"] = benchmark::Counter(gbps, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["peak GB/s"] = info.peak_gbps;
  st.counters["elements"] = double(s.batch) * s.D * s.L * s.N;
  st.SetLabel(info.name);
}

}  // namespace

BENCHMARK(BM_CudaScan)
    ->DenseRange(0, 3)
    ->ArgName("shape")
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const auto info = ssm::cuda::device_info();
  if (info.available)
    std::printf(
        "device: %s, %d SMs, peak memory bandwidth %.0f GB/s; GB/s below divided by it gives "
        "the fraction of peak\n",
        info.name.c_str(), info.sm_count, info.peak_gbps);
  else
    std::printf("no CUDA device (%s): the benchmarks are skipped\n", info.error.c_str());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
