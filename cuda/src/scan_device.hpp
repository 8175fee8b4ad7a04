// cuda/src/scan_device.hpp — the boundary between the nvcc-compiled kernel file and the g++
// host code: plain C++ types only (no CUDA headers, no Eigen), so both compilers read it.
#pragma once

#include <cstddef>
#include <string>

#include "ssm/cuda/scan_kernel.hpp"

namespace ssm::cuda::detail {

// What cudaGetDeviceCount / cudaGetDeviceProperties say about device 0. error is non-empty when
// there is no usable device (any CUDA error counts as "no device": e.g. "CUDA driver version is
// insufficient for CUDA runtime version" on machines with the toolkit but no GPU).
struct DeviceQuery {
  int count = 0;
  std::string name, error;
  int sm_count = 0;
  double peak_gbps = 0.0;  // 2 · memory clock · bus width / 8 (double data rate)
};
DeviceQuery query_device();

// Device copies of every array of a ScanArgs (sizes from its shape); host pointers in `host`.
struct DeviceArrays;
// Allocates and uploads; throws std::runtime_error with the CUDA error on failure.
DeviceArrays* upload(const ScanArgs& host);
// Runs the kernel `iterations` times; returns milliseconds per run (CUDA events, kernel only).
double run(DeviceArrays* dev, int iterations);
// Copies y and h_last back into the host pointers given to upload().
void download(DeviceArrays* dev);
void release(DeviceArrays* dev) noexcept;

}  // namespace ssm::cuda::detail
