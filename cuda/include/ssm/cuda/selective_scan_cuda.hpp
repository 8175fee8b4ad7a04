// ssm/cuda/selective_scan_cuda.hpp — host API of the fused selective-scan kernel (cuda/; built
// when CMake finds nvcc, target ssm::cuda). Plain C++: callers need no CUDA headers.
//
// What the kernel does, in the spirit of Mamba's selective_scan_fwd: each block owns one sequence
// and 4 channels; it loads u, Δ, z of a 512-step chunk into registers (4 steps per thread), forms
// Δ, Ā, B̄ in-kernel, scans the chunk with a block-wide scan of the (a, b) operator (M5), carries
// h_n to the next chunk in shared memory, and writes only y and the final state. Nothing of size
// N·L reaches global memory, so its cost is reading u, Δ, z, B, C and writing y once (M9).
// float, real A (A < 0), Mamba's B̄ = ΔB or ZOH. Left out: complex A (S4D-style diagonal
// complex states), the backward pass (gradients), bf16/fp16 inputs, variable-length batches.
#pragma once

#include <memory>
#include <string>

#include "ssm/cuda/scan_kernel.hpp"
#include "ssm/selective.hpp"

namespace ssm::cuda {

struct DeviceInfo {
  bool available = false;
  std::string name;   // e.g. "NVIDIA H100 80GB HBM3"
  std::string error;  // why not available (any CUDA error counts as "no device")
  int sm_count = 0;
  double peak_gbps = 0.0;  // from the memory clock and bus width
};
// Never throws.
DeviceInfo device_info();

// The kernel's supports() predicate (ggml's convention): "" when the kernel handles a problem
// of this shape, else the reason. It needs 1 ≤ N ≤ 256 (carries in shared memory), 1 ≤ batch ≤
// 65535 (grid y), D ≥ 1, L ≥ 1. Callers fall back to the CPU scan instead of failing.
inline std::string unsupported_reason(const ScanShape& s) {
  if (s.N < 1 || s.N > kMaxN)
    return "N = " + std::to_string(s.N) + " is outside [1, " + std::to_string(kMaxN) +
           "] (the carries live in shared memory)";
  if (s.batch < 1 || s.batch > 65535)
    return "batch = " + std::to_string(s.batch) + " is outside [1, 65535] (grid y)";
  if (s.D < 1) return "D = " + std::to_string(s.D) + " must be >= 1";
  if (s.L < 1) return "L = " + std::to_string(s.L) + " must be >= 1";
  return "";
}
inline bool supports(const ScanShape& s) {
  return unsupported_reason(s).empty();
}

// Inputs resident on the device, for repeated runs (benchmarks). Throws Error (unsupported
// shape, invalid arguments) or std::runtime_error (a CUDA error, with its message).
class DeviceScan {
 public:
  DeviceScan(const ScanParams<float>& p, const ScanInputs<float>& in);
  ~DeviceScan();
  DeviceScan(const DeviceScan&) = delete;
  DeviceScan& operator=(const DeviceScan&) = delete;
  // Runs the kernel `iterations` times; milliseconds per run (CUDA events around the kernels).
  double run(int iterations = 1);
  // y (batch, D, L) and h_last (batch, D, N) of the last run.
  const ScanOutputs<float>& download();
  // The bytes one run must move at least: u, Δ, z, B, C, A, D, bias, h0 read; y, h_last written.
  std::size_t min_bytes() const { return bytes_; }

 private:
  ScanOutputs<float> out_;
  std::size_t bytes_ = 0;
  void* dev_ = nullptr;
};

// One call: upload, run, download. out.y (batch, D, L), out.h_last (batch, D, N).
void selective_scan_cuda(const ScanParams<float>& p, const ScanInputs<float>& in,
                         ScanOutputs<float>& out);

}  // namespace ssm::cuda
