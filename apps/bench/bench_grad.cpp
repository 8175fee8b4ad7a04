// bench-grad — stage 8a: the fast selective-scan backward (ssm/grad.hpp, G1–G10) against the
// fast forward of the same problem, in one run so the ratio is measured under the same load.
//
//   BM_ScanForward/D/L/threads         selective_scan (float, N = 16, gate, skip, Δ bias)
//   BM_ScanBackward/D/L/threads/chunk  selective_scan_backward, one checkpoint per chunk, on its
//                                      own: its own forward pass for the checkpoints, fresh outputs
//   BM_TrainForward/D/L/threads/chunk  training's path: selective_scan_checkpointed (y and the
//   BM_TrainBackward/D/L/threads/chunk checkpoints), then the backward from those checkpoints
//                                      into gradients reused from the last step
//   BM_BlockForward/threads            one Mamba block (M8, ssm/grad_mamba.hpp) at d_model 256,
//   BM_BlockBackward/threads           L 1024 (d_inner 512, N 16, dt_rank 16), float: its forward
//                                      and its backward (G17: recompute, GEMMs, scan backward)
//   BM_BlockScanForward/threads,       the block's own scan and scan backward at its shape
//   BM_BlockScanBackward/threads       (1, 512, 1024, 16): where the block's time goes is the
//                                      scan's share against the projections', conv and norm's
//
// Memory: this binary replaces the global operator new/delete with counting versions, so the
// bytes the backward allocates beyond what is live before it (its scratch, checkpoints,
// per-thread sums and its outputs) are measured, not computed: the counters extra_MB (peak
// during one call, outputs included), scratch_MB (the same less the gradients it returns) and
// inputs_MB (u, Δraw, z, B, C, dy: what the forward
// reads plus the incoming gradient). OpenMP's thread stacks are not counted (not from new).
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <vector>

#include <Eigen/Core>

#include "ssm/grad.hpp"
#include "ssm/grad_mamba.hpp"
#include "ssm/selective.hpp"

namespace {

std::atomic<long long> g_live{0}, g_peak{0};

void note_alloc(std::size_t n) {
  const long long now = g_live.fetch_add(static_cast<long long>(n)) + static_cast<long long>(n);
  long long p = g_peak.load();
  while (now > p && !g_peak.compare_exchange_weak(p, now)) {
  }
}

}  // namespace

// Counting allocator: a size header in front of every block (16 bytes keeps new's alignment).
void* operator new(std::size_t n) {
  void* raw = std::malloc(n + 16);
  if (!raw) throw std::bad_alloc();
  *static_cast<std::size_t*>(raw) = n;
  note_alloc(n);
  return static_cast<char*>(raw) + 16;
}
void operator delete(void* p) noexcept {
  if (!p) return;
  void* raw = static_cast<char*>(p) - 16;
  g_live.fetch_sub(static_cast<long long>(*static_cast<std::size_t*>(raw)));
  std::free(raw);
}
void operator delete(void* p, std::size_t) noexcept { operator delete(p); }
void* operator new[](std::size_t n) { return operator new(n); }
void operator delete[](void* p) noexcept { operator delete(p); }
void operator delete[](void* p, std::size_t) noexcept { operator delete(p); }

namespace {

struct Problem {
  ssm::ScanParams<float> p;
  ssm::ScanInputs<float> in;
  std::vector<float> dy;
};

Problem& problem(int D, int L) {
  static Problem cache[3];  // one per shape benchmarked, so interleaved runs do not redraw
  static int keyD[3] = {0, 0, 0}, keyL[3] = {0, 0, 0};
  const int slot = D >= 1536 ? 0 : D >= 768 ? 1 : 2;
  Problem& x = cache[slot];
  if (keyD[slot] != D || keyL[slot] != L) {
    ssm::ScanShape s;
    s.batch = 1;
    s.D = D;
    s.L = L;
    s.N = 16;
    ssm::random_scan_problem(s, 7, x.p, x.in);
    x.dy.assign(x.in.u.size(), 0.0f);
    for (std::size_t i = 0; i < x.dy.size(); ++i) x.dy[i] = float((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    keyD[slot] = D;
    keyL[slot] = L;
  }
  return x;
}

double inputs_mb(const Problem& x) {
  const double floats = double(x.in.u.size() + x.in.delta.size() + x.in.z.size() +
                               x.in.B.size() + x.in.C.size() + x.dy.size());
  return floats * sizeof(float) / 1e6;
}

void BM_ScanForward(benchmark::State& st) {
  auto& x = problem(int(st.range(0)), int(st.range(1)));
  ssm::ScanOutputs<float> out;
  for (auto _ : st) {
    ssm::selective_scan(x.p, x.in, out, int(st.range(2)));
    benchmark::DoNotOptimize(out.y.data());
  }
  st.counters["tokens/s"] = benchmark::Counter(double(st.range(1)), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_ScanBackward(benchmark::State& st) {
  auto& x = problem(int(st.range(0)), int(st.range(1)));
  const int threads = int(st.range(2)), chunk = int(st.range(3));
  double extra = 0, outputs = 0;
  for (auto _ : st) {
    const long long before = g_live.load();
    g_peak.store(before);
    auto g = ssm::selective_scan_backward(x.p, x.in, x.dy, {}, chunk, threads);
    extra = double(g_peak.load() - before) / 1e6;
    outputs = 0;
    for (const auto* v : {&g.du, &g.ddelta, &g.ddelta_bias, &g.dA, &g.dB, &g.dC, &g.dD, &g.dz, &g.dh0})
      outputs += double(v->size() * sizeof(float)) / 1e6;
    benchmark::DoNotOptimize(g.du.data());
  }
  st.counters["extra_MB"] = extra;
  st.counters["scratch_MB"] = extra - outputs;  // beyond the gradients it returns
  st.counters["inputs_MB"] = inputs_mb(x);
  st.counters["tokens/s"] = benchmark::Counter(double(st.range(1)), benchmark::Counter::kIsIterationInvariantRate);
}

// ---- One Mamba block at d_model 256, L 1024 (the size), float.
struct Block {
  ssm::MambaConfig cfg;
  ssm::MambaBlockWeights<float> w;
  ssm::Signals<float> X, dOut;
};
Block& block() {
  static Block b = [] {
    Block x;
    x.cfg.d_model = 256;
    x.cfg.n_layers = 1;
    x.w = ssm::MambaModel<float>(x.cfg, 3).blocks()[0];
    const int L = 1024;
    x.X.resize(L, x.cfg.d_model);
    x.dOut.resize(L, x.cfg.d_model);
    for (Eigen::Index i = 0; i < x.X.size(); ++i) {
      x.X.data()[i] = float((i * 2654435761u) % 2000) / 1000.0f - 1.0f;
      x.dOut.data()[i] = float((i * 40503u) % 1000) / 500.0f - 1.0f;
    }
    return x;
  }();
  return b;
}
// Eigen's GEMMs run on their own OpenMP team: pin it to the benchmark's thread count too.
ssm::MambaRunOptions block_options(int threads) {
  Eigen::setNbThreads(threads);
  ssm::MambaRunOptions o;
  o.threads = threads;
  o.chunk = 256;
  return o;
}
void BM_BlockForward(benchmark::State& st) {
  auto& b = block();
  const auto o = block_options(int(st.range(0)));
  ssm::Signals<float> out;
  for (auto _ : st) {
    ssm::mamba_block_forward(b.cfg, b.w, b.X, out, o);
    benchmark::DoNotOptimize(out.data());
  }
  st.counters["tokens/s"] = benchmark::Counter(double(b.X.rows()), benchmark::Counter::kIsIterationInvariantRate);
}
void BM_BlockBackward(benchmark::State& st) {
  auto& b = block();
  const auto o = block_options(int(st.range(0)));
  ssm::Signals<float> dX;
  ssm::MambaBlockGrads<float> g;
  for (auto _ : st) {
    ssm::mamba_block_backward(b.cfg, b.w, b.X, b.dOut, dX, g, o);
    benchmark::DoNotOptimize(dX.data());
  }
  st.counters["tokens/s"] = benchmark::Counter(double(b.X.rows()), benchmark::Counter::kIsIterationInvariantRate);
}
void BM_BlockScanForward(benchmark::State& st) {
  auto& x = problem(512, 1024);
  ssm::ScanOutputs<float> out;
  for (auto _ : st) {
    ssm::selective_scan(x.p, x.in, out, int(st.range(0)));
    benchmark::DoNotOptimize(out.y.data());
  }
}
void BM_BlockScanBackward(benchmark::State& st) {
  auto& x = problem(512, 1024);
  for (auto _ : st) {
    auto g = ssm::selective_scan_backward(x.p, x.in, x.dy, {}, 256, int(st.range(0)));
    benchmark::DoNotOptimize(g.du.data());
  }
}
// Training's path: the forward keeps its checkpoints, the backward reads them (no second
// forward pass) and writes into the gradients of the previous step (no fresh pages).
struct Train {
  ssm::ScanOutputs<float> out;
  ssm::ScanCheckpoints<float> ck;
  ssm::ScanGrads<float> g;
};
void BM_TrainForward(benchmark::State& st) {
  auto& x = problem(int(st.range(0)), int(st.range(1)));
  Train t;
  for (auto _ : st) {
    ssm::selective_scan_checkpointed(x.p, x.in, t.out, t.ck, int(st.range(3)), int(st.range(2)));
    benchmark::DoNotOptimize(t.out.y.data());
  }
  st.counters["ckpt_MB"] = double(t.ck.h.size() * sizeof(float)) / 1e6;
}
void BM_TrainBackward(benchmark::State& st) {
  auto& x = problem(int(st.range(0)), int(st.range(1)));
  const int threads = int(st.range(2)), chunk = int(st.range(3));
  Train t;
  ssm::selective_scan_checkpointed(x.p, x.in, t.out, t.ck, chunk, threads);
  for (auto _ : st) {
    ssm::selective_scan_backward(x.p, x.in, x.dy, {}, t.g, chunk, threads, &t.ck);
    benchmark::DoNotOptimize(t.g.du.data());
  }
  st.counters["tokens/s"] = benchmark::Counter(double(st.range(1)), benchmark::Counter::kIsIterationInvariantRate);
}
}  // namespace

BENCHMARK(BM_ScanForward)
    ->ArgsProduct({{1536}, {2048}, {1, 2}})
    ->ArgsProduct({{768}, {1024}, {1, 2}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ScanBackward)
    ->ArgsProduct({{1536}, {2048}, {1, 2}, {64, 256}})
    ->ArgsProduct({{768}, {1024}, {1, 2}, {64, 256}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

BENCHMARK(BM_TrainForward)
    ->ArgsProduct({{1536}, {2048}, {1, 2}, {64, 256}})
    ->ArgsProduct({{768}, {1024}, {1, 2}, {64, 256}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TrainBackward)
    ->ArgsProduct({{1536}, {2048}, {1, 2}, {64, 256}})
    ->ArgsProduct({{768}, {1024}, {1, 2}, {64, 256}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BlockForward)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BlockBackward)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BlockScanForward)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BlockScanBackward)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
