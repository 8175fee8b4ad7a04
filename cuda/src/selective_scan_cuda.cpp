// Host side of the CUDA selective scan (compiled by g++): validation, supports(), and the
// ScanParams/ScanInputs API on top of the device functions in selective_scan.cu.
#include "ssm/cuda/selective_scan_cuda.hpp"

#include "scan_device.hpp"
#include "ssm/cuda/emulate.hpp"  // make_args

namespace ssm::cuda {

DeviceInfo device_info() {
  DeviceInfo info;
  try {
    const detail::DeviceQuery q = detail::query_device();
    info.available = q.count > 0 && q.error.empty();
    info.name = q.name;
    info.error = q.error;
    info.sm_count = q.sm_count;
    info.peak_gbps = q.peak_gbps;
  } catch (const std::exception& e) {
    info.available = false;
    info.error = e.what();
  }
  return info;
}

namespace {
ScanArgs checked_args(const ScanParams<float>& p, const ScanInputs<float>& in,
                      ScanOutputs<float>& out) {
  validate(p, in, false);
  const std::string why = unsupported_reason({in.batch, p.D, in.L, p.N});
  require(why.empty(), "CUDA selective scan does not support this shape: " + why);
  return make_args(p, in, out);
}
}  // namespace

DeviceScan::DeviceScan(const ScanParams<float>& p, const ScanInputs<float>& in) {
  const ScanArgs a = checked_args(p, in, out_);
  const std::size_t bdl = std::size_t(in.batch) * p.D * in.L,
                    bnl = std::size_t(in.batch) * p.N * in.L,
                    bdn = std::size_t(in.batch) * p.D * p.N;
  bytes_ = sizeof(float) * (bdl * (2 + (a.z ? 1 : 0) + 1) + 2 * bnl + std::size_t(p.D) * p.N +
                            std::size_t(p.D) * 2 + (a.h0 ? bdn : 0) + bdn);
  dev_ = detail::upload(a);
}

DeviceScan::~DeviceScan() {
  detail::release(static_cast<detail::DeviceArrays*>(dev_));
}

double DeviceScan::run(int iterations) {
  require(iterations >= 1, "DeviceScan::run: iterations must be >= 1");
  return detail::run(static_cast<detail::DeviceArrays*>(dev_), iterations);
}

const ScanOutputs<float>& DeviceScan::download() {
  detail::download(static_cast<detail::DeviceArrays*>(dev_));
  return out_;
}

void selective_scan_cuda(const ScanParams<float>& p, const ScanInputs<float>& in,
                         ScanOutputs<float>& out) {
  DeviceScan s(p, in);
  s.run(1);
  out = s.download();
}

}  // namespace ssm::cuda
