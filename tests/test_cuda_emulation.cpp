// The CUDA kernel's algorithm without a GPU (DESIGN.md, "The CUDA part"): its __host__
// __device__ arithmetic (ssm/cuda/scan_kernel.hpp) run in its exact decomposition — 4 channels
// per block, 128 threads × 4 steps, 512-step chunks, Kogge–Stone warp scans, warp-total prefixes,
// carries between chunks — by ssm/cuda/emulate.hpp, against the double reference.
#include <random>

#include "helpers.hpp"
#include "ssm/cuda/emulate.hpp"
#include "ssm/cuda/selective_scan_cuda.hpp"  // supports(): inline, no device needed

using namespace ssm;
using namespace ssm::cuda;

static_assert(kChunk == kThreads * kItems && kThreads % kWarp == 0 && kWarps * kWarp == kThreads);

namespace {
double rel(const std::vector<float>& a, const std::vector<double>& b) {
  double m = 0, s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    m = std::max(m, std::fabs(double(a[i]) - b[i]));
    s = std::max(s, std::fabs(b[i]));
  }
  return m / s;
}
}  // namespace

TEST_CASE("the block scan (warp Kogge-Stone + warp totals + carry) gives every thread its prefix") {
  std::mt19937_64 rng(4);
  std::uniform_real_distribution<float> ua(0.5f, 1.0f), ub(-1.0f, 1.0f);
  Pair v[kThreads], incl[kThreads];
  for (auto& p : v) p = Pair{ua(rng), ub(rng)};
  for (int t = 0; t < kThreads; ++t) incl[t] = v[t];
  for (int w = 0; w < kWarps; ++w)
    for (int off = 1; off < kWarp; off *= 2) {
      Pair before[kWarp];
      for (int l = 0; l < kWarp; ++l) before[l] = incl[w * kWarp + l];
      for (int l = 0; l < kWarp; ++l)
        incl[w * kWarp + l] =
            kogge_stone_step(before[l], l >= off ? before[l - off] : before[l], l, off);
    }
  Pair totals[kWarps];
  for (int w = 0; w < kWarps; ++w) totals[w] = incl[w * kWarp + kWarp - 1];
  Pair seq = identity();  // the sequential exclusive fold, in double for the reference
  double sa = 1, sb = 0;
  for (int t = 0; t < kThreads; ++t) {
    const int lane = t % kWarp, w = t / kWarp;
    const Pair ex = combine(warps_before(totals, w), lane == 0 ? identity() : incl[t - 1]);
    // ~7 combines deep instead of t: rounding 6e-8 per step, values O(1).
    CHECK(std::fabs(ex.a - sa) <= 1e-6 * std::max(1.0, std::fabs(sa)));
    CHECK(std::fabs(ex.b - sb) <= 1e-6 * std::max(1.0, std::fabs(sb)));
    sb = double(v[t].a) * sb + v[t].b;
    sa = double(v[t].a) * sa;
    seq = combine(seq, v[t]);
  }
  const Pair total = warps_before(totals, kWarps);
  CHECK(std::fabs(total.a - sa) <= 1e-6);
  CHECK(std::fabs(total.b - sb) <= 1e-6 * std::max(1.0, std::fabs(sb)));
}

TEST_CASE("CPU-emulated kernel == reference: chunk tails, partial channel blocks, options") {
  struct Case {
    ScanShape s;
    RandomScanOptions o;
  };
  const Case cases[] = {
      {{1, 4, 512, 16}, {true, true, false}},   // exactly one chunk, one block
      {{2, 9, 1300, 16}, {true, true, true}},   // 3 chunks with a tail; 3 blocks, last partial
      {{1, 3, 100, 1}, {false, false, false}},  // L < chunk, N = 1, no gate, no D
      {{1, 5, 700, 33}, {true, true, true, ScanDiscretization::ZOH}},
      {{3, 1, 1, 16}, {true, true, true}},  // L = 1
  };
  for (const auto& c : cases) {
    CAPTURE(c.s.batch);
    CAPTURE(c.s.D);
    CAPTURE(c.s.L);
    CAPTURE(c.s.N);
    ScanParams<double> p;
    ScanInputs<double> in;
    random_scan_problem<double>(c.s, 21, p, in, c.o);
    const auto ref = selective_scan_reference(p, in);
    ScanOutputs<float> out;
    emulate_selective_scan(cast_params<float>(p), cast_inputs<float>(in), out);
    // Float arithmetic (ε = 6e-8) with libm's exp2f/log1pf, the inputs rounded to float; the
    // carries add one combine per chunk: as the fast CPU scan, ~1e-6 measured, bound 2e-5.
    CHECK(rel(out.y, ref.y) <= 2e-5);
    CHECK(rel(out.h_last, ref.h_last) <= 2e-5);
  }
}

TEST_CASE("supports() accepts what the kernel handles and names the reason otherwise") {
  CHECK(supports({1, 1536, 2048, 16}));
  CHECK(supports({8, 1, 1, 256}));
  CHECK(unsupported_reason({1, 16, 100, 300}) ==
        "N = 300 is outside [1, 256] (the carries live in shared memory)");
  CHECK(unsupported_reason({70000, 16, 100, 16}) == "batch = 70000 is outside [1, 65535] (grid y)");
  CHECK(!supports({1, 0, 100, 16}));
  CHECK(!supports({1, 16, 0, 16}));
}
