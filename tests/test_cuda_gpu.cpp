// The real CUDA kernel against the CPU reference and the CPU emulation. Exits with CTest's skip
// code 77 when there is no usable device (any CUDA error counts as "no device").
#include <cmath>
#include <cstdio>

#include "ssm/cuda/emulate.hpp"
#include "ssm/cuda/selective_scan_cuda.hpp"

using namespace ssm;

namespace {
double rel(const std::vector<float>& a, const std::vector<double>& b) {
  double m = 0, s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    m = std::max(m, std::fabs(double(a[i]) - b[i]));
    s = std::max(s, std::fabs(b[i]));
  }
  return s > 0 ? m / s : m;
}
// On a failure, the first elements outside |x − ref| ≤ atol + rtol·|ref| with their (b, d, t).
void first_mismatches(const std::vector<float>& x, const std::vector<double>& ref, int D, int L) {
  double scale = 0;
  for (double r : ref) scale = std::max(scale, std::fabs(r));
  const double atol = 2e-5 * scale, rtol = 1e-4;
  int shown = 0;
  for (std::size_t i = 0; i < x.size() && shown < 5; ++i)
    if (!(std::fabs(double(x[i]) - ref[i]) <= atol + rtol * std::fabs(ref[i]))) {
      std::printf("    mismatch at (b, d, t) = (%zu, %zu, %zu): %.9g vs reference %.9g\n",
                  i / (std::size_t(D) * L), (i / L) % D, i % L, double(x[i]), ref[i]);
      ++shown;
    }
}

}  // namespace

int main() {
  const auto info = cuda::device_info();
  if (!info.available) {
    std::printf("no CUDA device (%s): skipped\n", info.error.c_str());
    return 77;
  }
  std::printf("device: %s, %d SMs, peak %.0f GB/s\n", info.name.c_str(), info.sm_count,
              info.peak_gbps);
  int failures = 0;
  auto expect = [&](bool ok, const char* what, double err, double tol) {
    std::printf("%-60s %.2e (tolerance %.0e) %s\n", what, err, tol, ok ? "ok" : "FAIL");
    failures += !ok;
  };
  const ScanShape shapes[] = {
      {1, 4, 512, 16}, {2, 9, 1300, 16}, {1, 3, 100, 1}, {2, 67, 2048, 33}, {1, 768, 1024, 16}};
  for (const auto& s : shapes) {
    for (bool zoh : {false, true}) {
      ScanParams<double> p;
      ScanInputs<double> in;
      random_scan_problem<double>(
          s, 31, p, in,
          {true, true, true, zoh ? ScanDiscretization::ZOH : ScanDiscretization::Mamba});
      const auto ref = selective_scan_reference(p, in);
      const auto pf = cast_params<float>(p);
      const auto inf = cast_inputs<float>(in);
      ScanOutputs<float> gpu, emu;
      try {
        cuda::selective_scan_cuda(pf, inf, gpu);
      } catch (const std::exception& e) {
        std::printf("(%d, %d, %d, %d): %s\n", s.batch, s.D, s.L, s.N, e.what());
        ++failures;
        continue;
      }
      cuda::emulate_selective_scan(pf, inf, emu);
      char what[128];
      std::snprintf(what, sizeof what, "(%d, %d, %d, %d)%s GPU vs double reference", s.batch, s.D,
                    s.L, s.N, zoh ? " ZOH" : "");
      const double e1 = rel(gpu.y, ref.y), e2 = rel(gpu.h_last, ref.h_last);
      expect(e1 <= 2e-5 && e2 <= 2e-5, what, std::max(e1, e2), 2e-5);  // as the CPU float paths
      if (e1 > 2e-5) first_mismatches(gpu.y, ref.y, s.D, s.L);
      std::vector<double> emu_d(emu.y.begin(), emu.y.end());
      std::snprintf(what, sizeof what, "(%d, %d, %d, %d)%s GPU vs CPU emulation", s.batch, s.D, s.L,
                    s.N, zoh ? " ZOH" : "");
      const double e3 = rel(gpu.y, emu_d);  // same decomposition; device vs libm exp2f/log1pf
      expect(e3 <= 1e-5, what, e3, 1e-5);
    }
  }
  try {  // an unsupported shape is refused before touching the device
    ScanParams<float> p;
    ScanInputs<float> in;
    random_scan_problem<float>({1, 2, 8, 300}, 1, p, in);
    ScanOutputs<float> out;
    cuda::selective_scan_cuda(p, in, out);
    std::printf("N = 300 was not refused: FAIL\n");
    ++failures;
  } catch (const Error& e) {
    std::printf("N = 300 refused: %s\n", e.what());
  }
  return failures ? 1 : 0;
}
