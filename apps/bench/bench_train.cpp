// bench-train — stage 8b: training throughput of the language models of ssm/train.hpp at the
// default sizes of ssm-train (issue 12), float, one AdamW step at a time.
//
//   BM_TrainStep/<model>/<threads>   Trainer<float>::train_step(): a batch of 32 sequences of
//                                    the selective-copy task (body 32, 4 tokens, 8 data tokens:
//                                    36 tokens, model vocabulary 10), each sequence's loss and
//                                    exact gradient (forward + backward, split over the threads
//                                    by sequence), the batch mean, clipping, AdamW
//   models: mamba (d_model 64, 2 layers, N 16: d_inner 128, dt_rank 4), s4d (d_model 64,
//           2 layers, d_state 16 passed through: 8 complex modes)
//
// Counters: tokens/s (= items/s, batch · sequence length per step) and params. Wall time
// (UseRealTime): the steps run on OpenMP threads. apps/bench/bench_train_vs_torch.py runs this
// binary beside a plain PyTorch training step of the same models, in one run:
//
//   build/release/apps/bench/bench-train --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <string>

#include "ssm/train.hpp"

namespace {

ssm::train::RunConfig default_run(const std::string& model, int threads) {
  ssm::train::RunConfig rc;
  rc.task.task = ssm::train::Task::SelectiveCopy;
  rc.task.length = 32;  // ssm-train's defaults (apps/train.cpp, RunConfig)
  rc.task.tokens = 4;
  rc.task.vocab = 8;
  rc.model.kind = model;
  rc.model.d_model = 64;
  rc.model.n_layers = 2;
  rc.model.d_state = 16;
  rc.batch = 32;
  rc.threads = threads;
  rc.steps = 100000000;  // the trainer's upper bound: never reached by a benchmark
  rc.seed = 1;
  return rc;
}

void BM_TrainStep(benchmark::State& st, const std::string& model) {
  const auto rc = default_run(model, int(st.range(0)));
  ssm::train::Trainer<float> tr(rc);
  tr.train_step();  // warm-up: the per-sequence gradients and FFTW plans are allocated once
  for (auto _ : st) benchmark::DoNotOptimize(tr.train_step());
  const double tokens = double(rc.batch) * rc.task.sequence_length();
  st.SetItemsProcessed(static_cast<int64_t>(double(st.iterations()) * tokens));
  st.counters["tokens/s"] =
      benchmark::Counter(tokens, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["params"] = double(tr.model().num_params());
  st.SetLabel(tr.model().describe());
}

}  // namespace

BENCHMARK_CAPTURE(BM_TrainStep, mamba, std::string("mamba"))
    ->Arg(1)->Arg(2)->MinTime(1.0)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_TrainStep, s4d, std::string("s4d"))
    ->Arg(1)->Arg(2)->MinTime(1.0)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
