// ssm/train.hpp — stage 8b, learning: train the language models of ssm/lm.hpp (Mamba, S4D)
// on the synthetic tasks that motivate selection (docs/MATH.md, T4–T8).
//
// The tasks (T7; vocabulary: 0 = noise, 1 = marker/special, 2 … 2+v−1 = the v data tokens):
//   copy            k data tokens at positions 0 … k−1, noise up to the body length, then k
//                   markers; predict the k tokens in order at the markers. The lag between a
//                   token and the position that must reproduce it is the same in every
//                   sequence, so a fixed convolution kernel (an LTI model) can solve it.
//   selective-copy  the same k tokens at k random positions of the body (kept in order): the
//                   lag now changes from sequence to sequence, so the model must decide from
//                   the content which tokens to keep — selection (Mamba paper, §3.1, Table 1).
//   induction       random data tokens; the special token 1 at a random position p followed
//                   by the target token; the last token is 1 again: predict the target (the
//                   associative recall of Olsson et al.; Mamba paper, Table 2).
// Examples are deterministic from (seed, stream, index): the batch of training step s is a
// function of s alone, so a resumed run draws exactly the batches the uninterrupted run drew.
//
// Training (T4–T6): mini-batches of B sequences; each sequence's gradient by the model's exact
// backward (stage 8a), the batch gradient their mean — summed in sequence order whatever the
// number of threads, so a run gives the same bits on 1 and on 2 threads; global-norm gradient
// clipping (T6); AdamW with decoupled weight decay on the matrices only (T4); linear warm-up
// then cosine decay of the learning rate to lr_min (T5).
//
// Checkpoints (T8): one binary file, written under a temporary name and renamed, so a crash or
// a full disk never leaves a half-written checkpoint nor destroys the previous one. Layout
// (little-endian):
//   "SSMLABCK"  8 bytes magic
//   u32         format version (kCheckpointVersion)
//   u32, bytes  the run's description as "key=value" lines (model, task, sizes, hyper-
//               parameters, seed, dtype, the step reached)
//   u32         number of arrays; then for each: u32 name length, name, u64 count, count
//               values of the model's type (the parameters, then AdamW's m and v per parameter)
//   u64         FNV-1a 64 checksum of every byte before it.
// Reading checks the magic, the version, the length, the checksum, then every array's name and
// size against the model the description builds; any mismatch is an Error naming the file and
// what is wrong.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ssm/lm.hpp"

namespace ssm::train {

// ------------------------------------------------------------------------------------------
// Tasks (T7)
// ------------------------------------------------------------------------------------------

enum class Task { Copy, SelectiveCopy, Induction };
Task parse_task(const std::string& name);  // "copy", "selective-copy", "induction"; Error else
std::string task_name(Task t);

struct TaskConfig {
  Task task = Task::SelectiveCopy;
  int length = 64;  // L: the body (copy tasks) or the whole sequence (induction)
  int tokens = 4;   // k: tokens to memorize (copy tasks; ignored for induction)
  int vocab = 8;    // v: data tokens (the model's vocabulary is v + 2)
  int model_vocab() const { return vocab + 2; }
  // Tokens per sequence the model sees: L + k (copy tasks), L (induction).
  int sequence_length() const { return task == Task::Induction ? length : length + tokens; }
};
// Checks the sizes (Error naming the field: "--length 3 is shorter than the 4 tokens it must
// hold"); `flag_prefix` chooses how the fields are named ("--" for the app).
void validate(const TaskConfig& c, const std::string& flag_prefix = "");

struct Example {
  std::vector<int> tokens;   // (sequence_length)
  std::vector<int> targets;  // (sequence_length): −1 except where the answer is due
};
constexpr int kNoise = 0, kMarker = 1, kFirstData = 2;

// The example of (seed, stream, index): stream 0 = training, 1 = held-out evaluation.
// O(sequence_length). Throws Error for a configuration validate() refuses ("make_example: length
// 3 is shorter than the 4 tokens it must hold …").
Example make_example(const TaskConfig& c, std::uint64_t seed, std::uint64_t stream,
                     std::uint64_t index);

// ------------------------------------------------------------------------------------------
// Optimization (T4–T6)
// ------------------------------------------------------------------------------------------

struct OptimConfig {
  double lr = 2e-3, lr_min_ratio = 0.1;  // peak rate; the cosine ends at lr·lr_min_ratio
  int warmup = 50;                       // steps of linear warm-up
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.1;
  double clip = 1.0;  // global gradient-norm bound (≤ 0: no clipping)
};

// (T5) lr(s) = lr·(s+1)/warmup for s < warmup, then lr_min + ½(lr − lr_min)(1 + cos(π·p)),
// p = (s − warmup)/(steps − warmup) ∈ [0, 1]. O(1).
double learning_rate(const OptimConfig& o, long step, long steps);

// (T6) Scales g in place so that ‖g‖₂ ≤ clip; returns the norm before clipping (in double).
template <class T>
double clip_grad_norm(std::vector<T>& g, double clip);

// (T4) AdamW over every parameter view; m and v hold one moment per parameter value (flat, in
// params() order). step is 1-based (bias correction 1 − β^step). O(parameters).
template <class T>
void adamw_step(const OptimConfig& o, double lr, long step, std::vector<ParamView<T>>& params,
                const std::vector<T>& grad, std::vector<T>& m, std::vector<T>& v);

// ------------------------------------------------------------------------------------------
// Models
// ------------------------------------------------------------------------------------------

struct ModelSpec {
  std::string kind = "mamba";  // mamba | s4d | attention
  int vocab = 10;
  int d_model = 64, n_layers = 2;
  int d_state = 16;  // Mamba's N; S4D's N (modes = N/2); unused by attention
  int heads = 4;     // attention's heads (dividing d_model); unused by the SSMs
  bool tied = true;
  // Ablation for the lab: Δ without its input dependence (dt_proj held at 0, so Δ_t =
  // softplus(Δ bias) per channel, learned but the same at every token). Mamba only.
  bool fixed_dt = false;
  std::uint64_t seed = 1;
};
// Builds the model the spec names (Error for an unknown kind or a bad size, naming it).
template <class T>
std::unique_ptr<LanguageModel<T>> make_model(const ModelSpec& s);

// ------------------------------------------------------------------------------------------
// The run
// ------------------------------------------------------------------------------------------

struct RunConfig {
  TaskConfig task;
  ModelSpec model;
  OptimConfig optim;
  long steps = 800;
  int batch = 32;
  int threads = 1;
  int eval_every = 100;      // evaluate on held-out data every so many steps (0: only at the end)
  int eval_examples = 128;   // held-out sequences per evaluation
  std::uint64_t seed = 1;    // data and (through ModelSpec) weights
};

struct EvalResult {
  double loss = 0;      // mean cross-entropy of the answer positions
  double accuracy = 0;  // fraction of answer tokens predicted exactly (argmax)
  double sequence_accuracy = 0;  // fraction of sequences with every answer right
};

struct CurvePoint {
  long step = 0;
  double loss = 0;       // training loss of that step's batch
  double lr = 0;
  double grad_norm = 0;
  double eval_accuracy = -1;  // held-out accuracy where evaluated, −1 elsewhere
};

// Held-out evaluation of n sequences (stream 1) in the all-at-once form (logits()).
template <class T>
EvalResult evaluate(const LanguageModel<T>& m, const TaskConfig& task, std::uint64_t seed, int n,
                    int threads);
// The same in the recurrent form (stepper()), at any length: only the positions with targets
// are scored. Memory: the stepper's state (constant for the SSMs, the KV cache for attention).
template <class T>
EvalResult evaluate_recurrent(const LanguageModel<T>& m, const TaskConfig& task,
                              std::uint64_t seed, int n, int threads);

// Progress of a run, reported after every step (the app draws its progress bar from it).
struct Progress {
  long step = 0, steps = 0;
  double loss = 0, accuracy = -1;  // accuracy: the last evaluation's, −1 before the first
  double tokens_per_s = 0, seconds = 0, eta_s = 0;
};

// A run in progress: the model, AdamW's state and the step reached; checkpoints to and from a
// file. T = float for training (S4D computes in double inside); double for the tests' finite
// differences.
template <class T>
class Trainer {
 public:
  explicit Trainer(const RunConfig& cfg);
  // From a checkpoint: the run's configuration is the file's (except threads, given here).
  static Trainer resume(const std::string& path, int threads);

  const RunConfig& config() const { return cfg_; }
  LanguageModel<T>& model() { return *model_; }
  const LanguageModel<T>& model() const { return *model_; }
  long step() const { return step_; }
  const std::vector<CurvePoint>& curve() const { return curve_; }

  // One optimizer step on the batch of step(): returns its mean loss. O(batch · the model's
  // backward) + O(parameters).
  double train_step();
  // Steps until `until` (≤ config().steps), evaluating every eval_every steps; on_progress is
  // called after each step.
  void run(long until, const std::function<void(const Progress&)>& on_progress = {});
  // Writes the checkpoint atomically (path + ".tmp", then rename); Error naming the path when
  // it cannot be written (the previous file at path is left as it was).
  void save(const std::string& path) const;
  // Seconds spent in train_step, tokens trained on (since construction or resume).
  double train_seconds() const { return seconds_; }
  long long train_tokens() const { return tokens_; }

 private:
  RunConfig cfg_;
  std::unique_ptr<LanguageModel<T>> model_;
  std::vector<T> m_, v_;
  std::vector<T> grad_;
  long step_ = 0;
  std::vector<CurvePoint> curve_;
  double seconds_ = 0;
  long long tokens_ = 0;
  double last_acc_ = -1;
};

// The description a checkpoint carries, as key=value pairs (also printed by the app).
std::map<std::string, std::string> describe_run(const RunConfig& cfg);
RunConfig run_from_description(const std::map<std::string, std::string>& d,
                               const std::string& file);
constexpr std::uint32_t kCheckpointVersion = 1;

}  // namespace ssm::train
