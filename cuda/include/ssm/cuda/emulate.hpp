// ssm/cuda/emulate.hpp — the fused selective-scan kernel run on the CPU, in its own
// decomposition: the same blocks (kChannelsPerBlock channels of one sequence), the same 128
// "threads" with 4 consecutive steps each, the same 512-step chunks with their carries, the same
// Kogge–Stone warp scans and warp-total prefix, all through the __host__ __device__ functions of
// scan_kernel.hpp. Only the shuffles and shared memory are replaced by arrays. So the algorithm
// the GPU runs is tested on machines without a GPU (tests/test_cuda_emulation.cpp) and the app
// prints "CPU-emulated kernel vs reference". Host only (g++), O(batch·D·L·N), single-threaded.
#pragma once

#include <vector>

#include "ssm/cuda/scan_kernel.hpp"
#include "ssm/selective.hpp"

namespace ssm::cuda {

// The kernel's arguments pointing into host arrays; out.y and out.h_last are sized here.
inline ScanArgs make_args(const ScanParams<float>& p, const ScanInputs<float>& in,
                          ScanOutputs<float>& out) {
  out.y.assign(static_cast<std::size_t>(in.batch) * p.D * in.L, 0.0f);
  out.h_last.assign(static_cast<std::size_t>(in.batch) * p.D * p.N, 0.0f);
  ScanArgs a;
  a.batch = in.batch;
  a.D = p.D;
  a.L = in.L;
  a.N = p.N;
  a.u = in.u.data();
  a.delta = in.delta.data();
  a.A = p.A.data();
  a.B = in.B.data();
  a.C = in.C.data();
  a.D_skip = p.D_skip.empty() ? nullptr : p.D_skip.data();
  a.z = in.z.empty() ? nullptr : in.z.data();
  a.delta_bias = p.delta_bias.empty() ? nullptr : p.delta_bias.data();
  a.h0 = in.h0.empty() ? nullptr : in.h0.data();
  a.y = out.y.data();
  a.h_last = out.h_last.data();
  a.softplus = p.delta_softplus;
  a.zoh = p.disc == ScanDiscretization::ZOH;
  return a;
}

// One block (x = bx, y = b) of the kernel, every thread of it in turn at each barrier.
inline void emulate_block(const ScanArgs& a, int bx, int b) {
  // Per-thread registers, indexed [thread][item].
  static thread_local float dt[kThreads][kItems], du[kThreads][kItems], u[kThreads][kItems],
      z[kThreads][kItems], y[kThreads][kItems], Cn[kThreads][kItems];
  static thread_local Pair pairs[kThreads][kItems], incl[kThreads];
  std::vector<float> s_carry(static_cast<std::size_t>(a.N));  // shared memory
  Pair s_warp[kWarps];                                        // shared memory
  for (int ch = 0; ch < kChannelsPerBlock; ++ch) {
    const int d = bx * kChannelsPerBlock + ch;
    if (d >= a.D) break;
    for (int n = 0; n < a.N; ++n)
      s_carry[n] = a.h0 ? a.h0[(static_cast<long long>(b) * a.D + d) * a.N + n] : 0.0f;
    for (int c0 = 0; c0 < a.L; c0 += kChunk) {
      for (int tid = 0; tid < kThreads; ++tid) {
        thread_load(a, b, d, c0 + tid * kItems, dt[tid], du[tid], u[tid], z[tid]);
        for (int i = 0; i < kItems; ++i) y[tid][i] = 0.0f;
      }
      for (int n = 0; n < a.N; ++n) {
        const float A_dn = a.A[static_cast<long long>(d) * a.N + n], a2 = A_dn * kLog2e;
        const long long nrow = (static_cast<long long>(b) * a.N + n) * a.L;
        for (int tid = 0; tid < kThreads; ++tid) {
          float Bn[kItems];
          for (int i = 0; i < kItems; ++i) {
            const int t = c0 + tid * kItems + i;
            Bn[i] = t < a.L ? a.B[nrow + t] : 0.0f;
            Cn[tid][i] = t < a.L ? a.C[nrow + t] : 0.0f;
          }
          incl[tid] = thread_pairs(dt[tid], du[tid], Bn, a2, A_dn, a.zoh, pairs[tid]);
        }
        // Each warp's inclusive scan, Kogge–Stone: a shuffle reads the values before the step.
        for (int w = 0; w < kWarps; ++w)
          for (int off = 1; off < kWarp; off *= 2) {
            Pair before[kWarp];
            for (int lane = 0; lane < kWarp; ++lane) before[lane] = incl[w * kWarp + lane];
            for (int lane = 0; lane < kWarp; ++lane)
              incl[w * kWarp + lane] = kogge_stone_step(
                  before[lane], lane >= off ? before[lane - off] : before[lane], lane, off);
          }
        for (int w = 0; w < kWarps; ++w) s_warp[w] = incl[w * kWarp + kWarp - 1];
        // __syncthreads(): every thread reads the warp totals and the carry.
        const Pair total = warps_before(s_warp, kWarps);
        const float carry = s_carry[n];
        for (int tid = 0; tid < kThreads; ++tid) {
          const int lane = tid % kWarp, w = tid / kWarp;
          const Pair lane_excl = lane == 0 ? identity() : incl[tid - 1];
          const Pair prefix = combine(warps_before(s_warp, w), lane_excl);
          thread_apply(pairs[tid], Cn[tid], fmaf(prefix.a, carry, prefix.b), y[tid]);
        }
        // __syncthreads(); thread 0 moves the carry past this chunk.
        s_carry[n] = fmaf(total.a, carry, total.b);
      }
      const long long row = (static_cast<long long>(b) * a.D + d) * a.L;
      for (int tid = 0; tid < kThreads; ++tid)
        for (int i = 0; i < kItems; ++i) {
          const int t = c0 + tid * kItems + i;
          if (t < a.L) a.y[row + t] = epilogue(a, d, y[tid][i], u[tid][i], z[tid][i]);
        }
    }
    if (a.h_last)
      for (int n = 0; n < a.N; ++n)
        a.h_last[(static_cast<long long>(b) * a.D + d) * a.N + n] = s_carry[n];
  }
}

// The whole grid, block after block.
inline void emulate_selective_scan(const ScanArgs& a) {
  const int grid_x = (a.D + kChannelsPerBlock - 1) / kChannelsPerBlock;
  for (int b = 0; b < a.batch; ++b)
    for (int bx = 0; bx < grid_x; ++bx) emulate_block(a, bx, b);
}

// Convenience: validates (as the GPU launcher does) and runs the emulation on ScanParams data.
inline void emulate_selective_scan(const ScanParams<float>& p, const ScanInputs<float>& in,
                                   ScanOutputs<float>& out) {
  validate(p, in, false);
  require(p.N <= kMaxN, "CUDA kernel emulation: N = " + std::to_string(p.N) + " exceeds " +
                            std::to_string(kMaxN));
  emulate_selective_scan(make_args(p, in, out));
}

}  // namespace ssm::cuda
