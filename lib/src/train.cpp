// train.cpp — stage 8b: the synthetic tasks (T7), AdamW with clipping and its schedule (T4–T6),
// the Mamba LM seen as a LanguageModel, the trainer and its checkpoints (T8).
#include "ssm/train.hpp"

#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <iterator>
#include <numeric>
#include <random>
#include <sstream>
#include <type_traits>

#include "ssm/attention_lm.hpp"
#include "ssm/grad_mamba.hpp"
#include "ssm/s4d_lm.hpp"

namespace ssm::train {

// ------------------------------------------------------------------------------------------
// Tasks (T7)
// ------------------------------------------------------------------------------------------

Task parse_task(const std::string& name) {
  if (name == "copy") return Task::Copy;
  if (name == "selective-copy") return Task::SelectiveCopy;
  if (name == "induction") return Task::Induction;
  throw Error("unknown task '" + name + "' (expected copy, selective-copy or induction)");
}

std::string task_name(Task t) {
  switch (t) {
    case Task::Copy: return "copy";
    case Task::SelectiveCopy: return "selective-copy";
    case Task::Induction: return "induction";
  }
  return "?";
}

void validate(const TaskConfig& c, const std::string& p) {
  // (Messages built only on failure: make_example validates once per sequence.)
  require(c.vocab >= 2 && c.vocab <= 4096, [&] {
    return p + "vocab " + std::to_string(c.vocab) + " is outside [2, 4096] (data tokens)";
  });
  require(c.length >= 1 && c.length <= (1 << 22), [&] {
    return p + "length " + std::to_string(c.length) + " is outside [1, 4194304]";
  });
  if (c.task == Task::Induction) {
    require(c.length >= 4, [&] {
      return p + "length " + std::to_string(c.length) +
             " is too short for induction (at least 4: the special token, its target, one more "
             "token and the final query)";
    });
  } else {
    require(c.tokens >= 1 && c.tokens <= 4096, [&] {
      return p + "tokens " + std::to_string(c.tokens) + " is outside [1, 4096]";
    });
    require(c.length >= c.tokens, [&] {
      return p + "length " + std::to_string(c.length) + " is shorter than the " +
             std::to_string(c.tokens) + " tokens it must hold (" + p + "tokens)";
    });
  }
}

Example make_example(const TaskConfig& c, std::uint64_t seed, std::uint64_t stream,
                     std::uint64_t index) {
  validate(c, "make_example: ");  // a few comparisons: nothing beside a model's forward pass
  std::mt19937_64 rng(mix_seed(mix_seed(seed, 0x7a5c0000ULL + stream), index));
  auto data = [&] { return kFirstData + int(rng() % std::uint64_t(c.vocab)); };
  Example e;
  const int n = c.sequence_length();
  e.tokens.assign(std::size_t(n), kNoise);
  e.targets.assign(std::size_t(n), -1);
  if (c.task == Task::Induction) {
    for (auto& t : e.tokens) t = data();
    const int p = int(rng() % std::uint64_t(c.length - 2));  // special at p ∈ [0, L−3]
    e.tokens[std::size_t(p)] = kMarker;
    const int target = data();
    e.tokens[std::size_t(p) + 1] = target;
    e.tokens[std::size_t(n) - 1] = kMarker;
    e.targets[std::size_t(n) - 1] = target;
    return e;
  }
  std::vector<int> pos(std::size_t(c.tokens));
  if (c.task == Task::Copy) {
    std::iota(pos.begin(), pos.end(), 0);
  } else {  // k distinct positions of the body, in order (Floyd's sampling)
    std::vector<char> used(std::size_t(c.length), 0);
    for (int j = c.length - c.tokens; j < c.length; ++j) {
      const int r = int(rng() % std::uint64_t(j + 1));
      used[std::size_t(used[std::size_t(r)] ? j : r)] = 1;
    }
    std::size_t i = 0;
    for (int t = 0; t < c.length; ++t)
      if (used[std::size_t(t)]) pos[i++] = t;
  }
  for (int j = 0; j < c.tokens; ++j) {
    const int tok = data();
    e.tokens[std::size_t(pos[std::size_t(j)])] = tok;
    e.tokens[std::size_t(c.length + j)] = kMarker;
    e.targets[std::size_t(c.length + j)] = tok;
  }
  return e;
}

// ------------------------------------------------------------------------------------------
// Optimization (T4–T6)
// ------------------------------------------------------------------------------------------

double learning_rate(const OptimConfig& o, long step, long steps) {
  const double lr_min = o.lr * o.lr_min_ratio;
  if (step < o.warmup) return o.lr * double(step + 1) / double(o.warmup);  // (T5) warm-up
  const double span = double(std::max<long>(1, steps - o.warmup));
  const double p = std::min(1.0, double(step - o.warmup) / span);
  return lr_min + 0.5 * (o.lr - lr_min) * (1 + std::cos(M_PI * p));  // (T5) cosine
}

template <class T>
double clip_grad_norm(std::vector<T>& g, double clip) {
  double s = 0;
  for (T x : g) s += double(x) * double(x);
  const double norm = std::sqrt(s);
  if (clip > 0 && norm > clip) {  // (T6) g ← g · clip/‖g‖
    const T f = T(clip / norm);
    for (T& x : g) x *= f;
  }
  return norm;
}

template <class T>
void adamw_step(const OptimConfig& o, double lr, long step, std::vector<ParamView<T>>& params,
                const std::vector<T>& grad, std::vector<T>& m, std::vector<T>& v) {
  std::size_t total = 0;
  for (const auto& p : params) total += p.size;
  require(grad.size() == total && m.size() == total && v.size() == total, [&] {
    return "AdamW: gradient and moments must hold " + std::to_string(total) + " values";
  });
  // (T4) m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², θ ← θ − lr(m̂/(√v̂ + ε) + λθ),
  // m̂ = m/(1−β₁^t), v̂ = v/(1−β₂^t); λ = weight_decay on the matrices, 0 elsewhere.
  const double c1 = 1 - std::pow(o.beta1, double(step)), c2 = 1 - std::pow(o.beta2, double(step));
  const T b1 = T(o.beta1), b2 = T(o.beta2), a1 = T(1 - o.beta1), a2 = T(1 - o.beta2);
  const T step_size = T(lr / c1), inv_sqrt_c2 = T(1 / std::sqrt(c2)), eps = T(o.eps);
  std::size_t off = 0;
  for (auto& p : params) {
    const T decay = T(1 - (p.weight_decay ? lr * o.weight_decay : 0.0));
    for (std::size_t i = 0; i < p.size; ++i) {
      const std::size_t j = off + i;
      const T g = grad[j];
      m[j] = b1 * m[j] + a1 * g;
      v[j] = b2 * v[j] + a2 * g * g;
      p.data[i] = p.data[i] * decay - step_size * m[j] / (std::sqrt(v[j]) * inv_sqrt_c2 + eps);
    }
    off += p.size;
  }
}

// ------------------------------------------------------------------------------------------
// The Mamba LM as a LanguageModel
// ------------------------------------------------------------------------------------------

namespace {

template <class T>
class MambaStepper : public LMStepper<T> {
 public:
  MambaStepper(const MambaLM<T>& lm) : lm_(lm), model_(lm.config(), 1) {
    model_.set_weights(lm.weights().blocks, lm.weights().norm_f);
    reset();
  }
  void reset() override { state_ = model_.initial_state(); }
  void step(int token, T* logits) override {
    require(token >= 0 && token < lm_.vocab(),
            [&] { return "Mamba stepper: token " + std::to_string(token) + " is outside [0, vocab)"; });
    const auto& w = lm_.weights();
    const VecT<T> x = w.embedding.row(token).transpose();
    VecT<T> y(x.size());
    model_.step(x.data(), y.data(), state_);  // blocks and the final norm (M8, step mode)
    const MatT<T>& H = lm_.tied() ? w.embedding : w.lm_head;
    Eigen::Map<VecT<T>>(logits, H.rows()) = H * y;
  }
  std::size_t state_bytes() const override {
    std::size_t b = 0;
    for (const auto& s : state_) b += (std::size_t(s.conv.size()) + s.ssm.capacity()) * sizeof(T);
    return b;
  }

 private:
  const MambaLM<T>& lm_;
  MambaModel<T> model_;
  std::vector<MambaLayerState<T>> state_;
};

template <class T>
class MambaLanguageModel : public LanguageModel<T> {
 public:
  MambaLanguageModel(const MambaConfig& cfg, int vocab, bool tied, bool fixed_dt,
                     std::uint64_t seed)
      : lm_(cfg, vocab, tied, seed), fixed_dt_(fixed_dt) {
    if (fixed_dt_)
      for (auto& b : lm_.weights().blocks) b.dt_proj.setZero();
  }
  std::string kind() const override { return "mamba"; }
  std::string describe() const override {
    const auto& c = lm_.config();
    return "mamba: d_model " + std::to_string(c.d_model) + ", " + std::to_string(c.n_layers) +
           " layers, N " + std::to_string(c.d_state) + ", d_inner " +
           std::to_string(c.d_inner()) + ", vocab " + std::to_string(lm_.vocab()) +
           (lm_.tied() ? ", tied" : ", untied") +
           (fixed_dt_ ? ", Δ not input-dependent (dt_proj = 0)" : "");
  }
  int vocab() const override { return lm_.vocab(); }
  std::vector<ParamView<T>> params() override { return param_views(lm_.weights()); }
  void logits(const std::vector<int>& tokens, Signals<T>& out, int threads) const override {
    MambaRunOptions o;
    o.threads = threads;
    lm_.logits(tokens, out, o);
  }
  double loss_and_grad(const std::vector<int>& tokens, const std::vector<int>& targets,
                       std::vector<T>& grad, int threads) const override {
    MambaRunOptions o;
    o.threads = threads;
    MambaLMWeights<T> g;
    const double l = lm_.loss_and_grad(tokens, targets, g, o);
    if (fixed_dt_)  // the ablation: dt_proj stays 0, so Δ_t = softplus(Δ bias) at every token
      for (auto& b : g.blocks) b.dt_proj.setZero();
    std::size_t n = 0;
    for_each_array(g, [&n](const auto& a) { n += std::size_t(a.size()); });
    grad.resize(n);
    T* out = grad.data();  // params() order (param_views), no names built per sequence
    for_each_array(g, [&out](const auto& a) { out = std::copy(a.data(), a.data() + a.size(), out); });
    return l;
  }
  std::unique_ptr<LMStepper<T>> stepper() const override {
    return std::make_unique<MambaStepper<T>>(lm_);
  }

 private:
  MambaLM<T> lm_;
  bool fixed_dt_;
};

}  // namespace

template <class T>
std::unique_ptr<LanguageModel<T>> make_model(const ModelSpec& s) {
  require(s.vocab >= 2, "model: vocab " + std::to_string(s.vocab) + " must be at least 2");
  require(!s.fixed_dt || s.kind == "mamba", "--fixed-dt applies to the mamba model only");
  if (s.kind == "mamba") {
    MambaConfig c;
    c.d_model = s.d_model;
    c.n_layers = s.n_layers;
    c.d_state = s.d_state;
    return std::make_unique<MambaLanguageModel<T>>(c, s.vocab, s.tied, s.fixed_dt, s.seed);
  }
  if (s.kind == "s4d") {
    S4DLMConfig c;
    c.d_model = s.d_model;
    c.n_layers = s.n_layers;
    c.d_state = s.d_state;
    c.tied = s.tied;
    return std::make_unique<S4DLM<T>>(c, s.vocab, s.seed);
  }
  if (s.kind == "attention") {
    AttentionLMConfig c;
    c.d_model = s.d_model;
    c.n_layers = s.n_layers;
    c.heads = s.heads;
    c.tied = s.tied;
    return std::make_unique<AttentionLM<T>>(c, s.vocab, s.seed);
  }
  throw Error("unknown model '" + s.kind + "' (expected mamba, s4d or attention)");
}

// ------------------------------------------------------------------------------------------
// Evaluation
// ------------------------------------------------------------------------------------------

namespace {

struct Scored {
  double loss = 0;
  int right = 0, total = 0;
};

// Eigen's GEMMs use their own OpenMP threads outside a parallel region; a trainer that owns the
// threads keeps them at one while it runs (and restores the setting after).
struct EigenThreadsGuard {
  int saved = Eigen::nbThreads();
  EigenThreadsGuard() { Eigen::setNbThreads(1); }
  ~EigenThreadsGuard() { Eigen::setNbThreads(saved); }
};

EvalResult combine(const std::vector<Scored>& s) {
  EvalResult r;
  long right = 0, total = 0, seq_right = 0;
  for (const auto& x : s) {
    r.loss += x.loss;
    right += x.right;
    total += x.total;
    seq_right += (x.right == x.total);
  }
  r.loss /= double(std::max<std::size_t>(1, s.size()));
  r.accuracy = total ? double(right) / double(total) : 0;
  r.sequence_accuracy = s.empty() ? 0 : double(seq_right) / double(s.size());
  return r;
}

template <class T>
void score_row(const T* row, int V, int target, Scored& s) {
  int best = 0;
  double m = double(row[0]);
  for (int v = 1; v < V; ++v)
    if (double(row[v]) > m) m = double(row[best = v]);
  double se = 0;
  for (int v = 0; v < V; ++v) se += std::exp(double(row[v]) - m);
  s.loss += m + std::log(se) - double(row[target]);
  s.right += (best == target);
  s.total += 1;
}

}  // namespace

template <class T>
EvalResult evaluate(const LanguageModel<T>& m, const TaskConfig& task, std::uint64_t seed, int n,
                    int threads) {
  require(n >= 1, "evaluate: at least 1 example");
  EigenThreadsGuard guard;
  std::vector<Scored> s(static_cast<std::size_t>(n));
  parallel_for(n, threads, [&](int i) {
    const Example e = make_example(task, seed, 1, std::uint64_t(i));
    Signals<T> lg;
    m.logits(e.tokens, lg, 1);
    Scored& x = s[std::size_t(i)];
    for (std::size_t t = 0; t < e.targets.size(); ++t)
      if (e.targets[t] >= 0) score_row(lg.row(Eigen::Index(t)).data(), m.vocab(), e.targets[t], x);
    x.loss /= std::max(1, x.total);
  });
  return combine(s);
}

template <class T>
EvalResult evaluate_recurrent(const LanguageModel<T>& m, const TaskConfig& task,
                              std::uint64_t seed, int n, int threads) {
  require(n >= 1, "evaluate: at least 1 example");
  EigenThreadsGuard guard;
  std::vector<Scored> s(static_cast<std::size_t>(n));
  parallel_for(n, threads, [&](int i) {
    const Example e = make_example(task, seed, 1, std::uint64_t(i));
    auto st = m.stepper();
    std::vector<T> lg(std::size_t(m.vocab()));
    Scored& x = s[std::size_t(i)];
    for (std::size_t t = 0; t < e.tokens.size(); ++t) {
      st->step(e.tokens[t], lg.data());
      if (e.targets[t] >= 0) score_row(lg.data(), m.vocab(), e.targets[t], x);
    }
    x.loss /= std::max(1, x.total);
  });
  return combine(s);
}

// ------------------------------------------------------------------------------------------
// The trainer
// ------------------------------------------------------------------------------------------

template <class T>
Trainer<T>::Trainer(const RunConfig& cfg) : cfg_(cfg) {
  validate(cfg_.task, "--");
  require(cfg_.steps >= 1 && cfg_.steps <= 100000000, "--steps must be in [1, 1e8]");
  require(cfg_.batch >= 1 && cfg_.batch <= 4096, "--batch must be in [1, 4096]");
  require(cfg_.threads >= 1 && cfg_.threads <= 256, "--threads must be in [1, 256]");
  require(cfg_.eval_every >= 0, "--eval-every must be ≥ 0");
  require(cfg_.eval_examples >= 1 && cfg_.eval_examples <= 1000000,
          "--eval-examples must be in [1, 1e6]");
  const auto& o = cfg_.optim;
  require(std::isfinite(o.lr) && o.lr > 0 && o.lr < 10, "--lr must be in (0, 10)");
  require(o.lr_min_ratio >= 0 && o.lr_min_ratio <= 1, "lr_min_ratio must be in [0, 1]");
  require(o.warmup >= 1, "--warmup must be at least 1");
  require(o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1, "AdamW β must be in [0, 1)");
  require(o.eps > 0 && o.weight_decay >= 0 && o.weight_decay < 10,
          "--weight-decay must be in [0, 10) and eps > 0");
  cfg_.model.vocab = cfg_.task.model_vocab();
  cfg_.model.seed = cfg_.seed;
  model_ = make_model<T>(cfg_.model);
  const std::size_t P = model_->num_params();
  m_.assign(P, T(0));
  v_.assign(P, T(0));
}

template <class T>
double Trainer<T>::train_step() {
  require(step_ < cfg_.steps, [&] {
    return "train_step: the run has reached its " + std::to_string(cfg_.steps) + " steps";
  });
  const auto t0 = std::chrono::steady_clock::now();
  EigenThreadsGuard guard;
  const int B = cfg_.batch;
  std::vector<std::vector<int>> tokens(static_cast<std::size_t>(B)), targets(tokens.size());
  for (int b = 0; b < B; ++b) {
    Example e = make_example(cfg_.task, cfg_.seed, 0, std::uint64_t(step_) * B + b);
    tokens[std::size_t(b)] = std::move(e.tokens);
    targets[std::size_t(b)] = std::move(e.targets);
  }
  // The batch's gradient: the mean of the sequences', their sum made in a fixed order by the
  // model (the same bits on any number of threads).
  std::vector<double> losses;
  model_->batch_loss_and_grad(tokens, targets, losses, grad_, cfg_.threads);
  const T inv = T(1.0 / B);
  for (T& x : grad_) x *= inv;
  double loss = 0;
  for (double l : losses) loss += l;
  loss /= B;
  for (T x : grad_)
    require(std::isfinite(double(x)), [&] {
      return "training diverged at step " + std::to_string(step_) +
             ": a gradient is not finite (lower --lr)";
    });
  const double norm = clip_grad_norm(grad_, cfg_.optim.clip);
  const double lr = learning_rate(cfg_.optim, step_, cfg_.steps);
  auto views = model_->params();
  adamw_step(cfg_.optim, lr, step_ + 1, views, grad_, m_, v_);
  ++step_;
  curve_.push_back({step_, loss, lr, norm, -1});
  seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  tokens_ += (long long)B * cfg_.task.sequence_length();
  return loss;
}

template <class T>
void Trainer<T>::run(long until, const std::function<void(const Progress&)>& on_progress) {
  until = std::min(until, cfg_.steps);
  const double s0 = seconds_;
  const long first = step_;
  while (step_ < until) {
    const double loss = train_step();
    if ((cfg_.eval_every > 0 && step_ % cfg_.eval_every == 0) || step_ == cfg_.steps) {
      last_acc_ = evaluate(*model_, cfg_.task, cfg_.seed, cfg_.eval_examples, cfg_.threads).accuracy;
      curve_.back().eval_accuracy = last_acc_;
    }
    if (on_progress) {
      Progress p;
      p.step = step_;
      p.steps = cfg_.steps;
      p.loss = loss;
      p.accuracy = last_acc_;
      p.seconds = seconds_;
      p.tokens_per_s = seconds_ > 0 ? double(tokens_) / seconds_ : 0;
      const double per_step = (seconds_ - s0) / double(step_ - first);
      p.eta_s = per_step * double(until - step_);
      on_progress(p);
    }
  }
}

// ------------------------------------------------------------------------------------------
// Checkpoints (T8)
// ------------------------------------------------------------------------------------------

namespace {

constexpr char kMagic[8] = {'S', 'S', 'M', 'L', 'A', 'B', 'C', 'K'};

std::uint64_t fnv1a(const char* p, std::size_t n) {
  std::uint64_t h = 1469598103934665603ULL;
  for (std::size_t i = 0; i < n; ++i) {
    h ^= std::uint8_t(p[i]);
    h *= 1099511628211ULL;
  }
  return h;
}

template <class U>
void put(std::string& s, U x) {
  static_assert(std::is_trivially_copyable_v<U>);
  char b[sizeof(U)];
  std::memcpy(b, &x, sizeof(U));
  s.append(b, sizeof(U));
}

struct Reader {
  const std::string& s;
  const std::string& file;
  std::size_t pos = 0, end = 0;
  template <class U>
  U get(const char* what) {
    if (end - pos < sizeof(U))
      throw Error(file + ": truncated checkpoint (it ends inside " + std::string(what) + ")");
    U x;
    std::memcpy(&x, s.data() + pos, sizeof(U));
    pos += sizeof(U);
    return x;
  }
  std::string bytes(std::size_t n, const char* what) {
    if (end - pos < n)
      throw Error(file + ": truncated checkpoint (it ends inside " + std::string(what) + ")");
    std::string r = s.substr(pos, n);
    pos += n;
    return r;
  }
};

std::string fmt(double x) {
  char b[40];
  std::snprintf(b, sizeof b, "%.17g", x);
  return b;
}

template <class T>
constexpr const char* dtype_name() {
  return std::is_same_v<T, float> ? "float" : "double";
}

}  // namespace

std::map<std::string, std::string> describe_run(const RunConfig& c) {
  std::map<std::string, std::string> d;
  d["task"] = task_name(c.task.task);
  d["task.length"] = std::to_string(c.task.length);
  d["task.tokens"] = std::to_string(c.task.tokens);
  d["task.vocab"] = std::to_string(c.task.vocab);
  d["model"] = c.model.kind;
  d["model.d_model"] = std::to_string(c.model.d_model);
  d["model.n_layers"] = std::to_string(c.model.n_layers);
  d["model.d_state"] = std::to_string(c.model.d_state);
  d["model.heads"] = std::to_string(c.model.heads);
  d["model.tied"] = c.model.tied ? "1" : "0";
  d["model.fixed_dt"] = c.model.fixed_dt ? "1" : "0";
  d["optim.lr"] = fmt(c.optim.lr);
  d["optim.lr_min_ratio"] = fmt(c.optim.lr_min_ratio);
  d["optim.warmup"] = std::to_string(c.optim.warmup);
  d["optim.beta1"] = fmt(c.optim.beta1);
  d["optim.beta2"] = fmt(c.optim.beta2);
  d["optim.eps"] = fmt(c.optim.eps);
  d["optim.weight_decay"] = fmt(c.optim.weight_decay);
  d["optim.clip"] = fmt(c.optim.clip);
  d["steps"] = std::to_string(c.steps);
  d["batch"] = std::to_string(c.batch);
  d["eval_every"] = std::to_string(c.eval_every);
  d["eval_examples"] = std::to_string(c.eval_examples);
  d["seed"] = std::to_string(c.seed);
  return d;
}

RunConfig run_from_description(const std::map<std::string, std::string>& d,
                               const std::string& file) {
  auto get = [&](const std::string& k) -> const std::string& {
    auto it = d.find(k);
    if (it == d.end()) throw Error(file + ": checkpoint description lacks '" + k + "'");
    return it->second;
  };
  auto num = [&](const std::string& k) {
    const std::string& v = get(k);
    char* endp = nullptr;
    const double x = std::strtod(v.c_str(), &endp);
    if (v.empty() || *endp != '\0' || !std::isfinite(x))
      throw Error(file + ": checkpoint field " + k + " = '" + v + "' is not a number");
    return x;
  };
  auto integer = [&](const std::string& k) {
    const double x = num(k);
    if (x != std::floor(x) || std::abs(x) > 9e15)
      throw Error(file + ": checkpoint field " + k + " is not an integer");
    return (long long)x;
  };
  RunConfig c;
  c.task.task = parse_task(get("task"));
  c.task.length = int(integer("task.length"));
  c.task.tokens = int(integer("task.tokens"));
  c.task.vocab = int(integer("task.vocab"));
  c.model.kind = get("model");
  c.model.d_model = int(integer("model.d_model"));
  c.model.n_layers = int(integer("model.n_layers"));
  c.model.d_state = int(integer("model.d_state"));
  // Written since the attention model (v1 checkpoints of Mamba and S4D before it lack it).
  if (d.count("model.heads")) c.model.heads = int(integer("model.heads"));
  c.model.tied = integer("model.tied") != 0;
  c.model.fixed_dt = integer("model.fixed_dt") != 0;
  c.optim.lr = num("optim.lr");
  c.optim.lr_min_ratio = num("optim.lr_min_ratio");
  c.optim.warmup = int(integer("optim.warmup"));
  c.optim.beta1 = num("optim.beta1");
  c.optim.beta2 = num("optim.beta2");
  c.optim.eps = num("optim.eps");
  c.optim.weight_decay = num("optim.weight_decay");
  c.optim.clip = num("optim.clip");
  c.steps = long(integer("steps"));
  c.batch = int(integer("batch"));
  c.eval_every = int(integer("eval_every"));
  c.eval_examples = int(integer("eval_examples"));
  c.seed = std::uint64_t(std::stoull(get("seed")));
  return c;
}

template <class T>
void Trainer<T>::save(const std::string& path) const {
  std::string s(kMagic, 8);
  put<std::uint32_t>(s, kCheckpointVersion);
  auto d = describe_run(cfg_);
  d["dtype"] = dtype_name<T>();
  d["step"] = std::to_string(step_);
  std::string text;
  for (const auto& [k, v] : d) text += k + "=" + v + "\n";
  put<std::uint32_t>(s, std::uint32_t(text.size()));
  s += text;
  auto views = const_cast<LanguageModel<T>&>(*model_).params();
  put<std::uint32_t>(s, std::uint32_t(3 * views.size()));
  std::size_t off = 0;
  auto array = [&](const std::string& name, const T* p, std::size_t n) {
    put<std::uint32_t>(s, std::uint32_t(name.size()));
    s += name;
    put<std::uint64_t>(s, n);
    s.append(reinterpret_cast<const char*>(p), n * sizeof(T));
  };
  for (const auto& v : views) array(v.name, v.data, v.size);
  for (const auto& v : views) {
    array("adam.m." + v.name, m_.data() + off, v.size);
    array("adam.v." + v.name, v_.data() + off, v.size);
    off += v.size;
  }
  put<std::uint64_t>(s, curve_.size());  // the learning curve so far (for the plot of a resumed run)
  for (const auto& p : curve_) {
    put<double>(s, double(p.step));
    put<double>(s, p.loss);
    put<double>(s, p.lr);
    put<double>(s, p.grad_norm);
    put<double>(s, p.eval_accuracy);
  }
  put<std::uint64_t>(s, fnv1a(s.data(), s.size()));

  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw Error("cannot write checkpoint " + path + ": cannot create " + tmp);
    f.write(s.data(), std::streamsize(s.size()));
    f.flush();
    if (!f) {
      f.close();
      std::remove(tmp.c_str());
      throw Error("cannot write checkpoint " + path + ": writing " + tmp + " failed (disk full?)");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error("cannot write checkpoint " + path + ": rename from " + tmp + " failed");
  }
}

template <class T>
Trainer<T> Trainer<T>::resume(const std::string& path, int threads) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot open checkpoint");
  const std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (s.size() < 8 || std::memcmp(s.data(), kMagic, 8) != 0)
    throw Error(path + ": wrong magic (not an ssmlab checkpoint)");
  if (s.size() < 8 + 4 + 8) throw Error(path + ": truncated checkpoint (" +
                                        std::to_string(s.size()) + " bytes)");
  Reader r{s, path, 8, s.size() - 8};
  const auto version = r.get<std::uint32_t>("the version");
  if (version != kCheckpointVersion)
    throw Error(path + ": checkpoint format version " + std::to_string(version) +
                " (this build reads version " + std::to_string(kCheckpointVersion) + ")");
  std::uint64_t stored;
  std::memcpy(&stored, s.data() + s.size() - 8, 8);
  if (stored != fnv1a(s.data(), s.size() - 8))
    throw Error(path + ": checksum mismatch (the file is corrupt or truncated)");
  const auto text_len = r.get<std::uint32_t>("the description");
  const std::string text = r.bytes(text_len, "the description");
  std::map<std::string, std::string> d;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const auto eq = line.find('=');
    if (eq == std::string::npos) throw Error(path + ": bad description line '" + line + "'");
    d[line.substr(0, eq)] = line.substr(eq + 1);
  }
  if (d.count("dtype") == 0 || d["dtype"] != dtype_name<T>())
    throw Error(path + ": checkpoint holds " + (d.count("dtype") ? d["dtype"] : "?") +
                " weights, expected " + dtype_name<T>());
  RunConfig cfg = run_from_description(d, path);
  cfg.threads = threads;
  Trainer t(cfg);
  auto views = t.model_->params();
  const auto count = r.get<std::uint32_t>("the array count");
  if (count != 3 * views.size())
    throw Error(path + ": checkpoint has " + std::to_string(count) + " arrays, the " +
                cfg.model.kind + " model it describes needs " + std::to_string(3 * views.size()));
  auto array = [&](const std::string& name, T* dst, std::size_t n) {
    const auto len = r.get<std::uint32_t>("an array name");
    const std::string got = r.bytes(len, "an array name");
    if (got != name)
      throw Error(path + ": expected array " + name + ", found '" + got + "' (wrong shapes)");
    const auto size = r.get<std::uint64_t>("an array size");
    if (size != n)
      throw Error(path + ": array " + name + " has " + std::to_string(size) +
                  " values, the model expects " + std::to_string(n) + " (wrong shapes)");
    const std::string b = r.bytes(n * sizeof(T), "an array's values");
    std::memcpy(dst, b.data(), b.size());
  };
  for (auto& v : views) array(v.name, v.data, v.size);
  std::size_t off = 0;
  for (auto& v : views) {
    array("adam.m." + v.name, t.m_.data() + off, v.size);
    array("adam.v." + v.name, t.v_.data() + off, v.size);
    off += v.size;
  }
  const auto n_curve = r.get<std::uint64_t>("the learning curve");
  for (std::uint64_t i = 0; i < n_curve; ++i) {
    CurvePoint p;
    p.step = long(r.get<double>("the learning curve"));
    p.loss = r.get<double>("the learning curve");
    p.lr = r.get<double>("the learning curve");
    p.grad_norm = r.get<double>("the learning curve");
    p.eval_accuracy = r.get<double>("the learning curve");
    t.curve_.push_back(p);
  }
  if (r.pos != r.end) throw Error(path + ": " + std::to_string(r.end - r.pos) +
                                  " unexpected bytes after the learning curve");
  t.step_ = long(std::stoll(d.count("step") ? d["step"] : "-1"));
  if (t.step_ < 0 || t.step_ > cfg.steps)
    throw Error(path + ": step " + std::to_string(t.step_) + " is outside [0, steps]");
  for (auto it = t.curve_.rbegin(); it != t.curve_.rend(); ++it)
    if (it->eval_accuracy >= 0) {
      t.last_acc_ = it->eval_accuracy;
      break;
    }
  return t;
}

#define SSM_TRAIN_INSTANTIATE(T)                                                                  \
  template double clip_grad_norm<T>(std::vector<T>&, double);                                     \
  template void adamw_step<T>(const OptimConfig&, double, long, std::vector<ParamView<T>>&,       \
                              const std::vector<T>&, std::vector<T>&, std::vector<T>&);           \
  template std::unique_ptr<LanguageModel<T>> make_model<T>(const ModelSpec&);                     \
  template EvalResult evaluate<T>(const LanguageModel<T>&, const TaskConfig&, std::uint64_t, int, \
                                  int);                                                           \
  template EvalResult evaluate_recurrent<T>(const LanguageModel<T>&, const TaskConfig&,           \
                                            std::uint64_t, int, int);                             \
  template class Trainer<T>;
SSM_TRAIN_INSTANTIATE(float)
SSM_TRAIN_INSTANTIATE(double)

}  // namespace ssm::train
