// python/bind_train.cpp — stage 8b (ssm/train.hpp), as the submodule ssmlab.train: the synthetic
// tasks (T7), the optimizer's pieces (T4–T6) on NumPy arrays, and a Trainer of a small Mamba or
// S4D language model (T1–T6) that Python can step, run, evaluate and look inside.
//
//   from ssmlab import train
//   task = train.TaskConfig("selective-copy", length=16, tokens=4, vocab=8)
//   tokens, targets = train.make_example(task, seed=1, stream=0, index=0)
//   cfg = train.RunConfig(task=task, model=train.ModelSpec("mamba", fixed_dt=False),
//                         steps=300, batch=32, threads=2)
//   tr = train.Trainer(cfg)
//   loss = tr.step()                      # one AdamW step on the batch of step 0
//   tr.run(100)                           # 100 more steps (the GIL is released; Ctrl-C stops)
//   tr.evaluate()                         # {'loss', 'accuracy', 'sequence_accuracy'} held out
//   tr.logits(tokens)                     # (L, vocab)
//
// Everything is validated by the library (ssm::Error → ssmlab.Error with its message) or here,
// before anything runs: a task the library cannot build (tokens > length), a token outside the
// vocabulary, arrays whose sizes disagree.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bindings.hpp"
#include "ssm/train.hpp"

namespace ssmpy {

namespace {

namespace tr = ssm::train;

tr::Task to_task(const py::handle& h) {
  if (py::isinstance<tr::Task>(h)) return h.cast<tr::Task>();
  if (py::isinstance<py::str>(h)) return tr::parse_task(h.cast<std::string>());
  throw ssm::Error("task must be a name (selective-copy, copy, induction) or an ssmlab.train.Task");
}

py::array_t<long long> int_array(const std::vector<int>& v) {
  py::array_t<long long> a(static_cast<py::ssize_t>(v.size()));
  std::copy(v.begin(), v.end(), a.mutable_data());
  return a;
}

// Token ids (L,) from any integer array-like, each in [0, vocab).
std::vector<int> to_tokens(const py::handle& obj, int vocab) {
  {  // a list of floats would be truncated silently by the cast below
    const py::array any = py::array::ensure(obj);
    if (!any) throw ssm::Error("tokens must be an array of integers");
    const auto k = any.dtype().kind();
    ssm::require(k == 'i' || k == 'u', "tokens must be an array of integers, got dtype kind '" +
                                           std::string(1, k) + "'");
  }
  const auto a = Arr<long long>::ensure(obj);
  if (!a) throw ssm::Error("tokens must be an array of integers");
  ssm::require(a.ndim() == 1, "tokens must be 1-D (L,), got shape " + shape_str(a));
  ssm::require(a.shape(0) >= 1, "tokens is empty");
  std::vector<int> v(static_cast<std::size_t>(a.shape(0)));
  for (std::size_t i = 0; i < v.size(); ++i) {
    const long long x = a.data()[i];
    ssm::require(x >= 0 && x < vocab, "tokens[" + std::to_string(i) + "] = " + std::to_string(x) +
                                          " is outside [0, vocab " + std::to_string(vocab) + ")");
    v[i] = int(x);
  }
  return v;
}

// One parameter array for adamw_step: a 1-D or n-D float array, flattened (C order).
template <class T>
std::vector<T> flat(const py::handle& obj, const std::string& name) {
  const auto a = Arr<T>::ensure(obj);
  if (!a) throw ssm::Error(name + " must be an array of numbers");
  return std::vector<T>(a.data(), a.data() + a.size());
}

// A list of arrays (or one array, as a list of one).
py::list as_list(const py::handle& obj) {
  if (py::isinstance<py::list>(obj) || py::isinstance<py::tuple>(obj))
    return py::list(py::reinterpret_borrow<py::object>(obj));
  py::list l;
  l.append(obj);
  return l;
}

// adamw_step on NumPy: params, grads, m, v lists of arrays of matching shapes; decay one bool
// per array (or one for all). Returns (params, m, v) updated, as new arrays of the same shapes.
template <class T>
py::tuple adamw_numpy(const tr::OptimConfig& o, double lr, long step, const py::handle& params,
                      const py::handle& grads, const py::handle& m, const py::handle& v,
                      const py::handle& decay) {
  const bool single = !(py::isinstance<py::list>(params) || py::isinstance<py::tuple>(params));
  const py::list P = as_list(params), G = as_list(grads), M = as_list(m), V = as_list(v);
  const std::size_t n = P.size();
  ssm::require(n >= 1, "params is empty");
  ssm::require(G.size() == n && M.size() == n && V.size() == n,
               "params, grad, m and v must hold the same number of arrays (" + std::to_string(n) +
                   " params, " + std::to_string(G.size()) + " grad, " + std::to_string(M.size()) +
                   " m, " + std::to_string(V.size()) + " v)");
  std::vector<bool> dec(n, true);
  if (py::isinstance<py::bool_>(decay)) {
    std::fill(dec.begin(), dec.end(), decay.cast<bool>());
  } else {
    const py::list D = as_list(decay);
    ssm::require(D.size() == n, "decay must be one bool or one per array (" + std::to_string(n) +
                                    "), got " + std::to_string(D.size()));
    for (std::size_t i = 0; i < n; ++i) dec[i] = D[i].cast<bool>();
  }
  ssm::require(step >= 1, "step is 1-based (bias correction 1 − β^step), got " + std::to_string(step));
  ssm::require(std::isfinite(lr) && lr >= 0, "lr must be finite and ≥ 0, got " + std::to_string(lr));
  std::vector<std::vector<T>> data(n);
  std::vector<std::vector<py::ssize_t>> shapes(n);
  std::vector<T> g, mm, vv;
  std::vector<ssm::ParamView<T>> views;
  for (std::size_t i = 0; i < n; ++i) {
    const std::string k = "[" + std::to_string(i) + "]";
    const auto a = Arr<T>::ensure(P[i]);
    if (!a) throw ssm::Error("params" + k + " must be an array of numbers");
    shapes[i].assign(a.shape(), a.shape() + a.ndim());
    data[i] = flat<T>(P[i], "params" + k);
    auto append = [&](const py::handle& arr, const std::string& what, std::vector<T>& out) {
      const auto b = flat<T>(arr, what + k);
      ssm::require(b.size() == data[i].size(), what + k + " has " + std::to_string(b.size()) +
                                                   " values, params" + k + " " +
                                                   std::to_string(data[i].size()));
      out.insert(out.end(), b.begin(), b.end());
    };
    append(G[i], "grad", g);
    append(M[i], "m", mm);
    append(V[i], "v", vv);
  }
  for (std::size_t i = 0; i < n; ++i)  // after every push: the pointers stay valid
    views.push_back({"params[" + std::to_string(i) + "]", data[i].data(), data[i].size(), dec[i]});
  tr::adamw_step<T>(o, lr, step, views, g, mm, vv);
  py::list Po, Mo, Vo;
  std::size_t off = 0;
  for (std::size_t i = 0; i < n; ++i) {
    py::array_t<T> p(shapes[i]), a(shapes[i]), b(shapes[i]);
    std::copy(data[i].begin(), data[i].end(), p.mutable_data());
    std::copy(mm.begin() + off, mm.begin() + off + data[i].size(), a.mutable_data());
    std::copy(vv.begin() + off, vv.begin() + off + data[i].size(), b.mutable_data());
    off += data[i].size();
    Po.append(p);
    Mo.append(a);
    Vo.append(b);
  }
  if (single) return py::make_tuple(Po[0], Mo[0], Vo[0]);
  return py::make_tuple(Po, Mo, Vo);
}

py::dict eval_dict(const tr::EvalResult& r) {
  py::dict d;
  d["loss"] = r.loss;
  d["accuracy"] = r.accuracy;
  d["sequence_accuracy"] = r.sequence_accuracy;
  return d;
}

// Thrown from the progress callback when Python has a pending signal (Ctrl-C); the Python
// error is set, so it is re-raised once the GIL is back.
struct Interrupted {};

template <class T>
void bind_trainer(py::module_& m, const char* name, const char* dtype) {
  using Tr = tr::Trainer<T>;
  py::class_<Tr>(m, name,
                 (std::string("A training run in ") + dtype +
                  " (ssm::train::Trainer): the model the RunConfig names, AdamW's moments and "
                  "the step reached. step() trains on the batch of step steps_done (a function "
                  "of the step alone), run(n) does n more steps, evaluate() scores held-out "
                  "sequences (stream 1).")
                     .c_str())
      .def(py::init([](const tr::RunConfig& c) { return std::make_unique<Tr>(c); }),
           py::arg("config"),
           "Validates the configuration (ssmlab.Error naming the field) and builds the model "
           "from config.seed; the model's vocabulary is the task's (vocab + 2).")
      .def_property_readonly("config", &Tr::config, py::return_value_policy::copy)
      .def_property_readonly("steps_done", &Tr::step, "Optimizer steps taken so far.")
      .def_property_readonly("describe", [](Tr& t) { return t.model().describe(); })
      .def_property_readonly("num_params", [](Tr& t) { return t.model().num_params(); })
      .def_property_readonly("vocab", [](Tr& t) { return t.model().vocab(); })
      .def_property_readonly("train_seconds", &Tr::train_seconds,
                             "Seconds spent in step() (and run()'s steps), evaluations excluded.")
      .def_property_readonly("train_tokens", &Tr::train_tokens)
      .def(
          "step",
          [](Tr& t) {
            py::gil_scoped_release release;
            return t.train_step();
          },
          "One optimizer step (T4–T6) on the batch of step steps_done; returns its mean loss. "
          "ssmlab.Error once config.steps steps are done.")
      .def(
          "run",
          [](Tr& t, long n) {
            ssm::require(n >= 0, "run: n = " + std::to_string(n) + " must be ≥ 0");
            const long until = std::min<long>(t.config().steps, t.step() + n);
            bool interrupted = false;
            {
              py::gil_scoped_release release;
              try {
                t.run(until, [](const tr::Progress&) {
                  py::gil_scoped_acquire acquire;
                  if (PyErr_CheckSignals() != 0) throw Interrupted{};
                });
              } catch (const Interrupted&) {
                interrupted = true;
              }
            }
            if (interrupted) throw py::error_already_set();
          },
          py::arg("n"),
          "n more steps (fewer when config.steps is reached), evaluating every "
          "config.eval_every steps into curve(); the GIL is released, Ctrl-C stops after the "
          "current step.")
      .def(
          "evaluate",
          [](const Tr& t, int n, py::object seed, bool recurrent, int threads) {
            const auto& c = t.config();
            const std::uint64_t s = seed.is_none() ? c.seed : seed.cast<std::uint64_t>();
            const int th = threads > 0 ? threads : c.threads;
            ssm::require(n >= 1 && n <= 1000000, "evaluate: n = " + std::to_string(n) +
                                                     " must be in [1, 1e6]");
            tr::EvalResult r;
            {
              py::gil_scoped_release release;
              r = recurrent ? tr::evaluate_recurrent<T>(t.model(), c.task, s, n, th)
                            : tr::evaluate<T>(t.model(), c.task, s, n, th);
            }
            return eval_dict(r);
          },
          py::arg("n") = 128, py::arg("seed") = py::none(), py::arg("recurrent") = false,
          py::arg("threads") = 0,
          "Held-out scores of n sequences (stream 1 of seed, by default the run's): "
          "{'loss': mean cross-entropy of the answers, 'accuracy': fraction of answer tokens "
          "right (argmax), 'sequence_accuracy': fraction of sequences with every answer "
          "right}. recurrent: one token at a time (the stepper) instead of all at once. "
          "threads ≤ 0: the run's.")
      .def(
          "curve",
          [](const Tr& t) {
            const auto& c = t.curve();
            const py::ssize_t n = py::ssize_t(c.size());
            py::array_t<long long> step(n);
            py::array_t<double> loss(n), lr(n), gn(n), acc(n);
            for (py::ssize_t i = 0; i < n; ++i) {
              step.mutable_data()[i] = c[std::size_t(i)].step;
              loss.mutable_data()[i] = c[std::size_t(i)].loss;
              lr.mutable_data()[i] = c[std::size_t(i)].lr;
              gn.mutable_data()[i] = c[std::size_t(i)].grad_norm;
              acc.mutable_data()[i] = c[std::size_t(i)].eval_accuracy;
            }
            py::dict d;
            d["step"] = step;
            d["loss"] = loss;
            d["lr"] = lr;
            d["grad_norm"] = gn;
            d["eval_accuracy"] = acc;
            return d;
          },
          "One entry per step taken: {'step' (1-based), 'loss' (the batch's), 'lr', "
          "'grad_norm' (before clipping), 'eval_accuracy' (held-out token accuracy where "
          "run() evaluated, NaN-free: −1 elsewhere)}, each an array.")
      .def(
          "logits",
          [](const Tr& t, const py::object& tokens, int threads) {
            const auto ids = to_tokens(tokens, t.model().vocab());
            ssm::Signals<T> out;
            {
              py::gil_scoped_release release;
              t.model().logits(ids, out, std::max(1, threads));
            }
            return from_signals<T>(out, false);
          },
          py::arg("tokens"), py::arg("threads") = 1,
          "Token ids (L,) → logits (L, vocab) of the current weights, all tokens at once.")
      .def(
          "params",
          [](Tr& t) {
            py::dict d;
            for (const auto& p : t.model().params()) {
              py::array_t<T> a(static_cast<py::ssize_t>(p.size));
              std::copy(p.data, p.data + p.size, a.mutable_data());
              d[py::str(p.name)] = a;
            }
            return d;
          },
          "Every parameter array as a flat copy, by name, in the trainer's order.")
      .def("__repr__", [name](Tr& t) {
        return "<ssmlab.train." + std::string(name) + " " + t.model().describe() + ", step " +
               std::to_string(t.step()) + "/" + std::to_string(t.config().steps) + ">";
      });
}

}  // namespace

void bind_train(py::module_& parent) {
  auto m = parent.def_submodule(
      "train",
      "Stage 8b, learning (ssm/train.hpp; docs/MATH.md T1–T8): the synthetic tasks of the Mamba\n"
      "paper (make_example: selective copying, copying, induction heads), AdamW with decoupled\n"
      "weight decay, global-norm clipping and the warm-up + cosine schedule on NumPy arrays\n"
      "(adamw_step, clip_grad_norm, learning_rate), and Trainer/Trainer64: a small Mamba or S4D\n"
      "language model trained with the exact backward of stage 8a.");

  py::enum_<tr::Task>(m, "Task")
      .value("copy", tr::Task::Copy)
      .value("selective_copy", tr::Task::SelectiveCopy)
      .value("induction", tr::Task::Induction);
  m.attr("NOISE") = tr::kNoise;
  m.attr("MARKER") = tr::kMarker;
  m.attr("FIRST_DATA") = tr::kFirstData;

  py::class_<tr::TaskConfig>(m, "TaskConfig",
                             "A synthetic task (T7): task, length L (the body for the copy tasks, "
                             "the whole sequence for induction), tokens k to memorize, vocab v "
                             "data tokens (ids 2 … v+1; 0 = noise, 1 = marker).")
      .def(py::init([](const py::object& task, int length, int tokens, int vocab) {
             tr::TaskConfig c;
             c.task = to_task(task);
             c.length = length;
             c.tokens = tokens;
             c.vocab = vocab;
             tr::validate(c);
             return c;
           }),
           py::arg("task") = "selective-copy", py::arg("length") = 64, py::arg("tokens") = 4,
           py::arg("vocab") = 8, "Validated (ssmlab.Error naming the field).")
      .def_property(
          "task", [](const tr::TaskConfig& c) { return tr::task_name(c.task); },
          [](tr::TaskConfig& c, const py::object& t) { c.task = to_task(t); })
      .def_readwrite("length", &tr::TaskConfig::length)
      .def_readwrite("tokens", &tr::TaskConfig::tokens)
      .def_readwrite("vocab", &tr::TaskConfig::vocab)
      .def_property_readonly("model_vocab", &tr::TaskConfig::model_vocab, "vocab + 2")
      .def_property_readonly("sequence_length", &tr::TaskConfig::sequence_length,
                             "L + k for the copy tasks, L for induction")
      .def("__repr__", [](const tr::TaskConfig& c) {
        return "<ssmlab.train.TaskConfig " + tr::task_name(c.task) + " length=" +
               std::to_string(c.length) + " tokens=" + std::to_string(c.tokens) + " vocab=" +
               std::to_string(c.vocab) + ">";
      });

  m.def(
      "make_example",
      [](const tr::TaskConfig& c, std::uint64_t seed, std::uint64_t stream, std::uint64_t index) {
        tr::validate(c);  // the fields may have been changed since construction
        const tr::Example e = tr::make_example(c, seed, stream, index);
        return py::make_tuple(int_array(e.tokens), int_array(e.targets));
      },
      py::arg("task"), py::arg("seed") = 1, py::arg("stream") = 0, py::arg("index") = 0,
      "(tokens, targets), each an int64 array (sequence_length,), of the example (seed, stream,\n"
      "index): stream 0 = training, 1 = held-out. targets is −1 except where an answer is due.\n"
      "Deterministic. O(sequence_length).");

  py::class_<tr::OptimConfig>(m, "OptimConfig",
                              "AdamW and its schedule (T4–T6): lr (peak), lr_min_ratio (the "
                              "cosine ends at lr·lr_min_ratio), warmup steps, beta1, beta2, eps, "
                              "weight_decay (decoupled, on the matrices only), clip (global "
                              "gradient norm; ≤ 0: none).")
      .def(py::init([](double lr, double lr_min_ratio, int warmup, double beta1, double beta2,
                       double eps, double weight_decay, double clip) {
             tr::OptimConfig o;
             o.lr = lr;
             o.lr_min_ratio = lr_min_ratio;
             o.warmup = warmup;
             o.beta1 = beta1;
             o.beta2 = beta2;
             o.eps = eps;
             o.weight_decay = weight_decay;
             o.clip = clip;
             return o;
           }),
           py::arg("lr") = 2e-3, py::arg("lr_min_ratio") = 0.1, py::arg("warmup") = 50,
           py::arg("beta1") = 0.9, py::arg("beta2") = 0.999, py::arg("eps") = 1e-8,
           py::arg("weight_decay") = 0.1, py::arg("clip") = 1.0,
           "Validated when a Trainer is built from it.")
      .def_readwrite("lr", &tr::OptimConfig::lr)
      .def_readwrite("lr_min_ratio", &tr::OptimConfig::lr_min_ratio)
      .def_readwrite("warmup", &tr::OptimConfig::warmup)
      .def_readwrite("beta1", &tr::OptimConfig::beta1)
      .def_readwrite("beta2", &tr::OptimConfig::beta2)
      .def_readwrite("eps", &tr::OptimConfig::eps)
      .def_readwrite("weight_decay", &tr::OptimConfig::weight_decay)
      .def_readwrite("clip", &tr::OptimConfig::clip);

  m.def(
      "learning_rate",
      [](const tr::OptimConfig& o, long step, long steps) {
        ssm::require(o.warmup >= 1, "warmup must be at least 1, got " + std::to_string(o.warmup));
        ssm::require(step >= 0, "step is 0-based and ≥ 0, got " + std::to_string(step));
        return tr::learning_rate(o, step, steps);
      },
      py::arg("optim"), py::arg("step"), py::arg("steps"),
      "(T5) The rate of 0-based step `step` of `steps`: linear warm-up lr·(s+1)/warmup, then a\n"
      "cosine from lr to lr·lr_min_ratio. O(1).");

  m.def(
      "clip_grad_norm",
      [](const py::object& g, double clip) {
        auto go = [&](auto tag) -> py::tuple {
          using T = decltype(tag);
          const auto a = Arr<T>::ensure(g);
          if (!a) throw ssm::Error("g must be an array of numbers");
          std::vector<T> v(a.data(), a.data() + a.size());
          const double norm = tr::clip_grad_norm<T>(v, clip);
          py::array_t<T> out(std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
          std::copy(v.begin(), v.end(), out.mutable_data());
          return py::make_tuple(out, norm);
        };
        return is_float32(g) ? go(float{}) : go(double{});
      },
      py::arg("g"), py::arg("clip"),
      "(T6) (g scaled so that ‖g‖₂ ≤ clip, the norm before clipping): a new array of g's shape\n"
      "(float32 stays float32); clip ≤ 0: no clipping. The norm is over every entry. O(size).");

  m.def(
      "adamw_step",
      [](const tr::OptimConfig& o, double lr, long step, const py::object& params,
         const py::object& grad, const py::object& mom, const py::object& var,
         const py::object& decay) {
        const py::object first = as_list(params)[0];
        return is_float32(first) ? adamw_numpy<float>(o, lr, step, params, grad, mom, var, decay)
                                 : adamw_numpy<double>(o, lr, step, params, grad, mom, var, decay);
      },
      py::arg("optim"), py::arg("lr"), py::arg("step"), py::arg("params"), py::arg("grad"),
      py::arg("m"), py::arg("v"), py::arg("decay") = true,
      "(T4) One AdamW step of the library, on copies: params, grad, m, v are arrays (or lists\n"
      "of arrays, matching shapes); decay says which arrays get the decoupled weight decay (one\n"
      "bool, or one per array: the trainer decays the matrices only). step is 1-based. Returns\n"
      "(params, m, v) updated, as new arrays (lists when lists were given). lr is the step's\n"
      "rate (learning_rate), optim.lr is not used. O(parameters).");

  py::class_<tr::ModelSpec>(m, "ModelSpec",
                            "The model to train: kind 'mamba', 's4d' or 'attention', d_model, n_layers, "
                            "d_state (Mamba's N; S4D keeps N/2 complex modes), heads (attention's, "
                            "dividing d_model), tied (LM head = "
                            "embedding), fixed_dt (Mamba only: Δ without its input dependence, "
                            "dt_proj held at 0 — the ablation), seed (set by the Trainer from "
                            "RunConfig.seed), vocab (set from the task).")
      .def(py::init([](const std::string& kind, int d_model, int n_layers, int d_state, bool tied,
                       bool fixed_dt, std::uint64_t seed, int vocab, int heads) {
             ssm::require(kind == "mamba" || kind == "s4d" || kind == "attention",
                          "unknown model '" + kind + "' (expected mamba, s4d or attention)");
             ssm::require(!fixed_dt || kind == "mamba", "fixed_dt applies to the mamba model only");
             tr::ModelSpec s;
             s.kind = kind;
             s.d_model = d_model;
             s.n_layers = n_layers;
             s.d_state = d_state;
             s.heads = heads;
             s.tied = tied;
             s.fixed_dt = fixed_dt;
             s.seed = seed;
             s.vocab = vocab;
             return s;
           }),
           py::arg("kind") = "mamba", py::arg("d_model") = 64, py::arg("n_layers") = 2,
           py::arg("d_state") = 16, py::arg("tied") = true, py::arg("fixed_dt") = false,
           py::arg("seed") = 1, py::arg("vocab") = 10, py::arg("heads") = 4)
      .def_readwrite("kind", &tr::ModelSpec::kind)
      .def_readwrite("d_model", &tr::ModelSpec::d_model)
      .def_readwrite("n_layers", &tr::ModelSpec::n_layers)
      .def_readwrite("d_state", &tr::ModelSpec::d_state)
      .def_readwrite("heads", &tr::ModelSpec::heads)
      .def_readwrite("tied", &tr::ModelSpec::tied)
      .def_readwrite("fixed_dt", &tr::ModelSpec::fixed_dt)
      .def_readwrite("seed", &tr::ModelSpec::seed)
      .def_readwrite("vocab", &tr::ModelSpec::vocab)
      .def("__repr__", [](const tr::ModelSpec& s) {
        return "<ssmlab.train.ModelSpec " + s.kind + " d_model=" + std::to_string(s.d_model) +
               " n_layers=" + std::to_string(s.n_layers) + " d_state=" + std::to_string(s.d_state) +
               (s.fixed_dt ? " fixed_dt" : "") + ">";
      });

  py::class_<tr::RunConfig>(m, "RunConfig",
                            "A training run: task, model, optim, steps, batch (sequences per "
                            "step), threads, eval_every (0: only at the end), eval_examples, seed "
                            "(data and weights).")
      .def(py::init([](const py::object& task, const py::object& model, const py::object& optim,
                       long steps, int batch, int threads, int eval_every, int eval_examples,
                       std::uint64_t seed) {
             tr::RunConfig c;
             if (!task.is_none()) c.task = task.cast<tr::TaskConfig>();
             if (!model.is_none()) c.model = model.cast<tr::ModelSpec>();
             if (!optim.is_none()) c.optim = optim.cast<tr::OptimConfig>();
             c.steps = steps;
             c.batch = batch;
             c.threads = threads;
             c.eval_every = eval_every;
             c.eval_examples = eval_examples;
             c.seed = seed;
             return c;
           }),
           py::arg("task") = py::none(), py::arg("model") = py::none(),
           py::arg("optim") = py::none(), py::arg("steps") = 800, py::arg("batch") = 32,
           py::arg("threads") = 1, py::arg("eval_every") = 100, py::arg("eval_examples") = 128,
           py::arg("seed") = 1,
           "None: the library's default TaskConfig, ModelSpec, OptimConfig. Validated when a "
           "Trainer is built from it.")
      .def_readwrite("task", &tr::RunConfig::task)
      .def_readwrite("model", &tr::RunConfig::model)
      .def_readwrite("optim", &tr::RunConfig::optim)
      .def_readwrite("steps", &tr::RunConfig::steps)
      .def_readwrite("batch", &tr::RunConfig::batch)
      .def_readwrite("threads", &tr::RunConfig::threads)
      .def_readwrite("eval_every", &tr::RunConfig::eval_every)
      .def_readwrite("eval_examples", &tr::RunConfig::eval_examples)
      .def_readwrite("seed", &tr::RunConfig::seed);

  bind_trainer<float>(m, "Trainer", "float32");
  bind_trainer<double>(m, "Trainer64", "float64");
}

}  // namespace ssmpy
