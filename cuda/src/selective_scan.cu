// cuda/src/selective_scan.cu — the fused selective-scan kernel (the decomposition and the
// arithmetic are in ssm/cuda/scan_kernel.hpp, shared with the CPU emulation) and its launcher.
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "scan_device.hpp"

namespace ssm::cuda {

namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess)
    throw std::runtime_error(std::string("CUDA: ") + what + ": " + cudaGetErrorString(e));
}

// One block owns (sequence b = blockIdx.y, channels blockIdx.x·kChannelsPerBlock + 0…3). See the
// header comment of scan_kernel.hpp for the decomposition.
__global__ void __launch_bounds__(kThreads) selective_scan_kernel(ScanArgs a) {
  __shared__ Pair s_warp[kWarps];   // warp totals of the current block-wide scan
  __shared__ float s_carry[kMaxN];  // h_n entering the current chunk
  const int tid = threadIdx.x, lane = tid % kWarp, warp = tid / kWarp, b = blockIdx.y;
  for (int ch = 0; ch < kChannelsPerBlock; ++ch) {
    const int d = blockIdx.x * kChannelsPerBlock + ch;
    if (d >= a.D) break;  // uniform over the block
    for (int n = tid; n < a.N; n += kThreads)
      s_carry[n] = a.h0 ? a.h0[(static_cast<long long>(b) * a.D + d) * a.N + n] : 0.0f;
    __syncthreads();
    for (int c0 = 0; c0 < a.L; c0 += kChunk) {
      const int t0 = c0 + tid * kItems;
      float dt[kItems], du[kItems], u[kItems], z[kItems], y[kItems];
      thread_load(a, b, d, t0, dt, du, u, z);
      for (int i = 0; i < kItems; ++i) y[i] = 0.0f;
      for (int n = 0; n < a.N; ++n) {
        const float A_dn = a.A[static_cast<long long>(d) * a.N + n], a2 = A_dn * kLog2e;
        const long long nrow = (static_cast<long long>(b) * a.N + n) * a.L;
        float Bn[kItems], Cn[kItems];
        for (int i = 0; i < kItems; ++i) {
          const int t = t0 + i;
          Bn[i] = t < a.L ? a.B[nrow + t] : 0.0f;
          Cn[i] = t < a.L ? a.C[nrow + t] : 0.0f;
        }
        Pair pairs[kItems];
        Pair incl = thread_pairs(dt, du, Bn, a2, A_dn, a.zoh, pairs);
        for (int off = 1; off < kWarp; off *= 2) {  // warp inclusive scan (Kogge–Stone)
          const Pair lower{__shfl_up_sync(0xffffffffu, incl.a, off),
                           __shfl_up_sync(0xffffffffu, incl.b, off)};
          incl = kogge_stone_step(incl, lower, lane, off);
        }
        if (lane == kWarp - 1) s_warp[warp] = incl;
        Pair lane_excl{__shfl_up_sync(0xffffffffu, incl.a, 1),
                       __shfl_up_sync(0xffffffffu, incl.b, 1)};
        if (lane == 0) lane_excl = identity();
        __syncthreads();
        const Pair prefix = combine(warps_before(s_warp, warp), lane_excl);
        const Pair total = warps_before(s_warp, kWarps);
        const float carry = s_carry[n];
        thread_apply(pairs, Cn, fmaf(prefix.a, carry, prefix.b), y);
        __syncthreads();  // s_warp and s_carry[n] read by all
        if (tid == 0) s_carry[n] = fmaf(total.a, carry, total.b);
      }
      const long long row = (static_cast<long long>(b) * a.D + d) * a.L;
      for (int i = 0; i < kItems; ++i)
        if (t0 + i < a.L) a.y[row + t0 + i] = epilogue(a, d, y[i], u[i], z[i]);
    }
    __syncthreads();  // the last carries are written
    if (a.h_last)
      for (int n = tid; n < a.N; n += kThreads)
        a.h_last[(static_cast<long long>(b) * a.D + d) * a.N + n] = s_carry[n];
    __syncthreads();  // before the next channel overwrites s_carry
  }
}

}  // namespace

namespace detail {

DeviceQuery query_device() {
  DeviceQuery q;
  const cudaError_t e = cudaGetDeviceCount(&q.count);
  if (e != cudaSuccess || q.count == 0) {
    q.error = e != cudaSuccess ? cudaGetErrorString(e) : "no CUDA device";
    q.count = 0;
    cudaGetLastError();  // clear the sticky error
    return q;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
    q.error = cudaGetErrorString(cudaGetLastError());
    q.count = 0;
    return q;
  }
  q.name = prop.name;
  q.sm_count = prop.multiProcessorCount;
  int clock_khz = 0, bus_bits = 0;
  cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, 0);
  cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, 0);
  q.peak_gbps = 2.0 * clock_khz * 1e3 * (bus_bits / 8.0) / 1e9;
  return q;
}

struct DeviceArrays {
  ScanArgs host, dev;
  cudaEvent_t start = nullptr, stop = nullptr;
};

namespace {
std::size_t bdl(const ScanArgs& a) {
  return std::size_t(a.batch) * a.D * a.L;
}
std::size_t bnl(const ScanArgs& a) {
  return std::size_t(a.batch) * a.N * a.L;
}
std::size_t bdn(const ScanArgs& a) {
  return std::size_t(a.batch) * a.D * a.N;
}

template <class T>
T* copy_in(const T* host, std::size_t n) {
  if (!host) return nullptr;
  void* p = nullptr;
  check(cudaMalloc(&p, n * sizeof(float)), "cudaMalloc");
  check(cudaMemcpy(p, host, n * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy to device");
  return static_cast<T*>(p);
}
}  // namespace

DeviceArrays* upload(const ScanArgs& h) {
  auto* d = new DeviceArrays{h, h, nullptr, nullptr};
  ScanArgs& g = d->dev;  // device pointers: none yet, so release() frees only what exists
  g.u = g.delta = g.A = g.B = g.C = g.D_skip = g.z = g.delta_bias = g.h0 = nullptr;
  g.y = g.h_last = nullptr;
  try {
    g.u = copy_in(h.u, bdl(h));
    g.delta = copy_in(h.delta, bdl(h));
    g.A = copy_in(h.A, std::size_t(h.D) * h.N);
    g.B = copy_in(h.B, bnl(h));
    g.C = copy_in(h.C, bnl(h));
    g.D_skip = copy_in(h.D_skip, std::size_t(h.D));
    g.z = copy_in(h.z, bdl(h));
    g.delta_bias = copy_in(h.delta_bias, std::size_t(h.D));
    g.h0 = copy_in(h.h0, bdn(h));
    void* p = nullptr;
    check(cudaMalloc(&p, bdl(h) * sizeof(float)), "cudaMalloc");
    g.y = static_cast<float*>(p);
    g.h_last = nullptr;
    if (h.h_last) {
      check(cudaMalloc(&p, bdn(h) * sizeof(float)), "cudaMalloc");
      g.h_last = static_cast<float*>(p);
    }
    check(cudaEventCreate(&d->start), "cudaEventCreate");
    check(cudaEventCreate(&d->stop), "cudaEventCreate");
  } catch (...) {
    release(d);
    throw;
  }
  return d;
}

double run(DeviceArrays* d, int iterations) {
  const ScanArgs& g = d->dev;
  const dim3 grid((g.D + kChannelsPerBlock - 1) / kChannelsPerBlock, g.batch), block(kThreads);
  check(cudaEventRecord(d->start), "cudaEventRecord");
  for (int i = 0; i < iterations; ++i) selective_scan_kernel<<<grid, block>>>(g);
  check(cudaGetLastError(), "kernel launch");
  check(cudaEventRecord(d->stop), "cudaEventRecord");
  check(cudaEventSynchronize(d->stop), "kernel execution");
  float ms = 0.0f;
  check(cudaEventElapsedTime(&ms, d->start, d->stop), "cudaEventElapsedTime");
  return double(ms) / iterations;
}

void download(DeviceArrays* d) {
  check(cudaMemcpy(d->host.y, d->dev.y, bdl(d->host) * sizeof(float), cudaMemcpyDeviceToHost),
        "cudaMemcpy to host");
  if (d->host.h_last)
    check(cudaMemcpy(d->host.h_last, d->dev.h_last, bdn(d->host) * sizeof(float),
                     cudaMemcpyDeviceToHost),
          "cudaMemcpy to host");
}

void release(DeviceArrays* d) noexcept {
  if (!d) return;
  const ScanArgs& g = d->dev;
  for (const void* p :
       {static_cast<const void*>(g.u), static_cast<const void*>(g.delta),
        static_cast<const void*>(g.A), static_cast<const void*>(g.B), static_cast<const void*>(g.C),
        static_cast<const void*>(g.D_skip), static_cast<const void*>(g.z),
        static_cast<const void*>(g.delta_bias), static_cast<const void*>(g.h0),
        static_cast<const void*>(g.y), static_cast<const void*>(g.h_last)})
    if (p) cudaFree(const_cast<void*>(p));
  if (d->start) cudaEventDestroy(d->start);
  if (d->stop) cudaEventDestroy(d->stop);
  delete d;
}

}  // namespace detail
}  // namespace ssm::cuda
