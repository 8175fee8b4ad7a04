// Stage 8b: the trainer's pieces (docs/MATH.md T4–T8) — the tasks' structure and determinism,
// the schedule, clipping and AdamW against hand-computed values, every model's flat gradient
// (params() order) against finite differences through make_model, the overfitting check for
// each layer type, the recurrent evaluation against the all-at-once one, resume bit for bit,
// the same bits on 1 and 2 threads, and corrupt, truncated and mismatched checkpoints.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>

#include "helpers.hpp"
#include "ssm/train.hpp"

using namespace ssm;
using namespace ssm::train;

namespace {

std::string tmp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("ssm_test_train_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

void spit(const std::string& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(s.data(), std::streamsize(s.size()));
}

// FNV-1a 64, as the checkpoint format documents (train.hpp), to forge a well-formed file.
std::uint64_t fnv1a(const std::string& s, std::size_t n) {
  std::uint64_t h = 1469598103934665603ULL;
  for (std::size_t i = 0; i < n; ++i) {
    h ^= std::uint8_t(s[i]);
    h *= 1099511628211ULL;
  }
  return h;
}

RunConfig tiny_run(const std::string& kind) {
  RunConfig c;
  c.task.task = Task::SelectiveCopy;
  c.task.length = 12;
  c.task.tokens = 2;
  c.task.vocab = 4;
  c.model.kind = kind;
  c.model.d_model = 8;
  c.model.n_layers = 1;
  c.model.d_state = 4;
  c.steps = 6;
  c.batch = 3;
  c.eval_every = 2;
  c.eval_examples = 4;
  c.optim.warmup = 2;
  c.seed = 7;
  return c;
}

}  // namespace

TEST_CASE("tasks: the structure of each task, deterministic from (seed, stream, index)") {
  TaskConfig c;
  c.length = 20;
  c.tokens = 4;
  c.vocab = 6;
  for (Task t : {Task::Copy, Task::SelectiveCopy}) {
    c.task = t;
    const Example e = make_example(c, 3, 0, 5);
    REQUIRE(int(e.tokens.size()) == 24);
    std::vector<int> body, answers;
    for (int i = 0; i < 20; ++i)
      if (e.tokens[std::size_t(i)] != kNoise) body.push_back(e.tokens[std::size_t(i)]);
    for (int i = 0; i < 24; ++i) {
      if (i < 20) CHECK(e.targets[std::size_t(i)] == -1);
      else {
        CHECK(e.tokens[std::size_t(i)] == kMarker);
        answers.push_back(e.targets[std::size_t(i)]);
      }
    }
    CHECK(body == answers);  // the k tokens, in order
    for (int y : answers) CHECK((y >= kFirstData && y < kFirstData + 6));
    if (t == Task::Copy)
      for (int i = 0; i < 4; ++i) CHECK(e.tokens[std::size_t(i)] >= kFirstData);
    CHECK(make_example(c, 3, 0, 5).tokens == e.tokens);
    CHECK(make_example(c, 3, 0, 6).tokens != e.tokens);
    CHECK(make_example(c, 3, 1, 5).tokens != e.tokens);
  }
  // Selective copying moves its tokens from sequence to sequence (that is the point).
  c.task = Task::SelectiveCopy;
  bool moved = false;
  for (int i = 1; i < 10; ++i) {
    const Example a = make_example(c, 3, 0, 0), b = make_example(c, 3, 0, std::uint64_t(i));
    for (int p = 0; p < 20; ++p)
      moved = moved || ((a.tokens[std::size_t(p)] == kNoise) != (b.tokens[std::size_t(p)] == kNoise));
  }
  CHECK(moved);
  c.task = Task::Induction;
  const Example e = make_example(c, 3, 0, 1);
  REQUIRE(e.tokens.size() == 20);
  int specials = 0, first = -1;
  for (int i = 0; i < 20; ++i)
    if (e.tokens[std::size_t(i)] == kMarker) {
      ++specials;
      if (first < 0) first = i;
    }
  CHECK(specials == 2);
  CHECK(e.tokens.back() == kMarker);
  CHECK(e.targets.back() == e.tokens[std::size_t(first) + 1]);
  int kept = 0;
  for (int y : e.targets) kept += (y >= 0);
  CHECK(kept == 1);
}

TEST_CASE("tasks: bad sizes name the flag") {
  TaskConfig c;
  c.length = 3;
  c.tokens = 4;
  CHECK_THROWS_WITH_AS(validate(c, "--"), doctest::Contains("--length 3 is shorter than the 4"),
                       Error);
  // make_example refuses it too (it would write past the sequence's end otherwise).
  CHECK_THROWS_WITH_AS(make_example(c, 1, 0, 0),
                       doctest::Contains("make_example: length 3 is shorter than the 4"), Error);
  c.task = Task::Induction;
  CHECK_THROWS_WITH_AS(validate(c, "--"), doctest::Contains("--length 3 is too short"), Error);
  c = TaskConfig{};
  c.vocab = 1;
  CHECK_THROWS_WITH_AS(validate(c, "--"), doctest::Contains("--vocab 1"), Error);
  CHECK_THROWS_WITH_AS(parse_task("copying"), doctest::Contains("unknown task 'copying'"), Error);
}

TEST_CASE("optimization: schedule, clipping and AdamW against hand-computed values") {
  OptimConfig o;
  o.lr = 1.0;
  o.lr_min_ratio = 0.1;
  o.warmup = 4;
  CHECK(learning_rate(o, 0, 104) == doctest::Approx(0.25));
  CHECK(learning_rate(o, 3, 104) == doctest::Approx(1.0));
  CHECK(learning_rate(o, 4, 104) == doctest::Approx(1.0));
  CHECK(learning_rate(o, 54, 104) == doctest::Approx(0.55));  // halfway down the cosine
  CHECK(learning_rate(o, 104, 104) == doctest::Approx(0.1));
  for (long s = 4; s < 104; ++s) CHECK(learning_rate(o, s + 1, 104) <= learning_rate(o, s, 104));

  std::vector<double> g = {3, 4};
  CHECK(clip_grad_norm(g, 10.0) == doctest::Approx(5));
  CHECK(g[0] == 3);
  CHECK(clip_grad_norm(g, 1.0) == doctest::Approx(5));
  CHECK(g[0] == doctest::Approx(0.6));
  CHECK(g[1] == doctest::Approx(0.8));

  // Two AdamW steps on θ = (2, −1), the first decayed, the second not, written out by hand.
  o = OptimConfig{};
  o.weight_decay = 0.5;
  std::vector<double> w = {2.0, -1.0}, m(2, 0), v(2, 0);
  std::vector<ParamView<double>> p = {{"a", &w[0], 1, true}, {"b", &w[1], 1, false}};
  const double lr = 0.1;
  adamw_step(o, lr, 1, p, {0.5, -2.0}, m, v);
  // step 1: m̂ = g, v̂ = g², so the update is lr·g/(|g| + ε) = ±lr; a is also decayed by lr·λ.
  CHECK(w[0] == doctest::Approx(2.0 * (1 - lr * 0.5) - lr * 0.5 / (0.5 + 1e-8)));
  CHECK(w[1] == doctest::Approx(-1.0 + lr * 2.0 / (2.0 + 1e-8)));
  const double w0 = w[0], m0 = 0.1 * 0.5, v0 = 0.001 * 0.25;
  adamw_step(o, lr, 2, p, {1.0, 0.0}, m, v);
  const double m1 = 0.9 * m0 + 0.1 * 1.0, v1 = 0.999 * v0 + 0.001 * 1.0;
  const double mh = m1 / (1 - 0.81), vh = v1 / (1 - 0.999 * 0.999);
  CHECK(w[0] == doctest::Approx(w0 * (1 - lr * 0.5) - lr * mh / (std::sqrt(vh) + 1e-8)));
}

TEST_CASE("models: each model's flat gradient, in params() order, against finite differences") {
  // Central differences of the loss of one sequence with respect to every parameter value of a
  // tiny double model, through the LanguageModel interface the trainer uses. Step h = 1e-5·
  // max(1, |θ|) ≈ ε^{1/3} (test::central_fd) (truncation ~h² and rounding ~ε/h both
  // ≲ 1e-10, far below the 1e-6 tolerance relative to the largest gradient).
  TaskConfig task;
  task.length = 6;
  task.tokens = 2;
  task.vocab = 3;
  const Example e = make_example(task, 11, 0, 0);
  for (const std::string kind : {"mamba", "s4d", "attention"}) {
    for (bool fixed_dt : {false, true}) {
      if (fixed_dt && kind != "mamba") continue;
      ModelSpec s;
      s.kind = kind;
      s.vocab = task.model_vocab();
      s.d_model = 4;
      s.n_layers = 2;
      s.d_state = 4;
      s.fixed_dt = fixed_dt;
      s.seed = 5;
      auto m = make_model<double>(s);
      std::vector<double> g;
      m->loss_and_grad(e.tokens, e.targets, g);
      auto views = m->params();
      REQUIRE(g.size() == m->num_params());
      // Every gradient value against the differences, all arrays together (one scale).
      std::vector<double> fd;
      for (auto& p : views) {
        auto part = test::central_fd(p.data, p.size, [&] {
          std::vector<double> tmp;
          return m->loss_and_grad(e.tokens, e.targets, tmp);
        });
        // The ablation holds dt_proj at 0: its gradient is 0 by construction, not ∂ℓ/∂θ.
        if (fixed_dt && p.name.find("dt_proj") != std::string::npos) part.assign(p.size, 0.0);
        fd.insert(fd.end(), part.begin(), part.end());
      }
      const double err = test::rel_err(g.data(), fd);
      MESSAGE(std::string(kind + (fixed_dt ? " (fixed Δ)" : "")) << ": max |g − fd| / max |fd| = "
                   << err << " over " << g.size() << " parameters (tolerance 1e-6)");
      CHECK(err <= 1e-6);
    }
  }
}

TEST_CASE("models: every layer type memorizes one fixed batch (overfitting check)") {
  TaskConfig task;
  task.length = 10;
  task.tokens = 3;
  task.vocab = 4;
  std::vector<Example> batch;
  for (int i = 0; i < 4; ++i) batch.push_back(make_example(task, 2, 0, std::uint64_t(i)));
  for (const std::string kind : {"mamba", "s4d", "attention"}) {
    ModelSpec s;
    s.kind = kind;
    s.vocab = task.model_vocab();
    s.d_model = 16;
    s.n_layers = 2;
    s.d_state = 8;
    auto m = make_model<float>(s);
    OptimConfig o;
    o.weight_decay = 0;
    std::vector<float> mo(m->num_params(), 0), vo(m->num_params(), 0), g, sum;
    double first = 0, last = 0;
    for (int step = 1; step <= 150; ++step) {
      double loss = 0;
      sum.assign(m->num_params(), 0);
      for (const auto& e : batch) {
        loss += m->loss_and_grad(e.tokens, e.targets, g) / double(batch.size());
        for (std::size_t i = 0; i < g.size(); ++i) sum[i] += g[i] / float(batch.size());
      }
      if (step == 1) first = loss;
      last = loss;
      auto views = m->params();
      adamw_step(o, 1e-2, step, views, sum, mo, vo);
    }
    MESSAGE(kind << ": loss on the fixed batch " << first << " → " << last << " in 150 steps");
    CHECK(last < first / 10);
  }
}

TEST_CASE("evaluation: recurrent (step) mode scores as the all-at-once mode") {
  for (const std::string kind : {"mamba", "s4d", "attention"}) {
    RunConfig c = tiny_run(kind);
    c.steps = 10;
    Trainer<float> tr(c);
    tr.run(10);
    const EvalResult a = evaluate(tr.model(), c.task, c.seed, 16, 2);
    const EvalResult b = evaluate_recurrent(tr.model(), c.task, c.seed, 16, 2);
    MESSAGE(kind << ": accuracy " << a.accuracy << " vs " << b.accuracy << ", loss " << a.loss
                 << " vs " << b.loss);
    CHECK(a.accuracy == b.accuracy);
    CHECK(std::abs(a.loss - b.loss) <= 1e-4 * std::max(1.0, a.loss));
  }
}

TEST_CASE("trainer: 2n steps equal n steps + checkpoint + resume + n steps, bit for bit") {
  for (const std::string kind : {"mamba", "s4d", "attention"}) {
    const std::string pa = tmp_path(kind + "_a.ck"), pb = tmp_path(kind + "_b.ck");
    RunConfig c = tiny_run(kind);
    {
      Trainer<float> a(c);
      a.run(c.steps);
      a.save(pa);
    }
    {
      Trainer<float> b(c);
      b.run(c.steps / 2);
      b.save(pb);
    }
    {
      Trainer<float> b = Trainer<float>::resume(pb, 1);
      CHECK(b.step() == c.steps / 2);
      b.run(c.steps);
      b.save(pb);
    }
    const std::string A = slurp(pa), B = slurp(pb);
    CHECK(A.size() > 100);
    CHECK(A == B);
    // Two threads split the batch but sum the sequences' gradients in the same order.
    RunConfig c2 = c;
    c2.threads = 2;
    Trainer<float> t2(c2);
    t2.run(c2.steps);
    t2.save(pb);
    CHECK(slurp(pb) == A);
    std::remove(pa.c_str());
    std::remove(pb.c_str());
  }
}

TEST_CASE("trainer: corrupt, truncated and mismatched checkpoints are refused, naming the file") {
  const std::string p = tmp_path("good.ck"), q = tmp_path("bad.ck");
  RunConfig c = tiny_run("mamba");
  Trainer<float> t(c);
  t.run(2);
  t.save(p);
  const std::string good = slurp(p);

  spit(q, "NOTACKPT" + good.substr(8));
  CHECK_THROWS_WITH_AS(Trainer<float>::resume(q, 1), doctest::Contains((q + ": wrong magic").c_str()), Error);
  std::string flipped = good;
  flipped[good.size() / 2] ^= 0x10;
  spit(q, flipped);
  CHECK_THROWS_WITH_AS(Trainer<float>::resume(q, 1), doctest::Contains("checksum mismatch"), Error);
  spit(q, good.substr(0, good.size() - 100));
  CHECK_THROWS_WITH_AS(Trainer<float>::resume(q, 1), doctest::Contains((q + ":").c_str()), Error);
  spit(q, good.substr(0, 10));
  CHECK_THROWS_WITH_AS(Trainer<float>::resume(q, 1), doctest::Contains("truncated"), Error);
  CHECK_THROWS_WITH_AS(Trainer<float>::resume(tmp_path("missing.ck"), 1),
                       doctest::Contains("cannot open"), Error);
  // Well-formed (checksum recomputed) but describing a wider model: the arrays do not fit.
  std::string forged = good;
  const std::string key = "model.d_model=8\n", wider = "model.d_model=9\n";
  const auto at = forged.find(key);
  REQUIRE(at != std::string::npos);
  forged.replace(at, key.size(), wider);
  const std::uint64_t h = fnv1a(forged, forged.size() - 8);
  std::memcpy(&forged[forged.size() - 8], &h, 8);
  spit(q, forged);
  CHECK_THROWS_WITH_AS(Trainer<float>::resume(q, 1), doctest::Contains("wrong shapes"), Error);
  // A double checkpoint is not read as float.
  CHECK_THROWS_WITH_AS(Trainer<double>::resume(p, 1), doctest::Contains("holds float weights"),
                       Error);
  // A save that cannot happen leaves the previous checkpoint as it was.
  CHECK_THROWS_AS(t.save(tmp_path("no_such_dir") + "/x.ck"), Error);
  t.run(4);
  const std::string dir_as_target = tmp_path("dir.ck");
  std::filesystem::create_directory(dir_as_target);
  CHECK_THROWS_AS(t.save(dir_as_target), Error);
  CHECK(std::filesystem::is_directory(dir_as_target));
  CHECK(slurp(p) == good);
  std::filesystem::remove_all(dir_as_target);
  std::remove(p.c_str());
  std::remove(q.c_str());
}

TEST_CASE("models: unknown kind and the ablation on a non-Mamba model are errors") {
  ModelSpec s;
  s.kind = "rnn";
  CHECK_THROWS_WITH_AS(make_model<float>(s), doctest::Contains("unknown model 'rnn'"), Error);
  s.kind = "s4d";
  s.fixed_dt = true;
  CHECK_THROWS_WITH_AS(make_model<float>(s), doctest::Contains("--fixed-dt"), Error);
}
