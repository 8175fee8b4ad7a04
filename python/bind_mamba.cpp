// python/bind_mamba.cpp — stage 7 (ssm/selective.hpp and ssm/mamba.hpp), as the submodule
// ssmlab.mamba: the selective scan (Mamba's S6, M1–M5) as the double reference, the fast scan
// (float32 or float64), the chunked associative scan and step mode; the pair operator (M5), the
// M7 cross-check with stage 4's convolution, the selectivity lesson and the precision study; and
// the Mamba block stack (M8) built from a seed, in scan mode and in step mode.
//
//   from ssmlab import mamba
//   p = mamba.random_problem(D=64, L=1024, N=16, seed=1)    # Mamba-like arrays, a dict
//   y = mamba.selective_scan_reference(**p)                  # (D, L): the sequential truth
//   y32, h = mamba.selective_scan(**mamba.random_problem(64, 1024, dtype="float32"),
//                                 return_state=True)         # fast, float32, final state (D, N)
//   yt, h = mamba.selective_state_update(None, u[:, 0], delta[:, 0], A, B[:, 0], C[:, 0])
//   model = mamba.Model64(mamba.Config(d_model=32, n_layers=2), seed=1)
//   Y = model.forward(X)                                     # X (L, d_model): scan mode
//
// Shapes, as in Mamba (the letters of ssm/selective.hpp): u, delta (Δraw) and z are
// (batch, D, L); A is (D, N); B and C are (batch, N, L), shared by the D channels; the skip D and
// the Δ bias are (D,); states are (batch, D, N). Without the batch axis — u (D, L), B and C
// (N, L), states (D, N) — the arrays are one sequence and the outputs drop the axis too. Step
// mode takes one token: u, delta, z (batch, D) or (D,); B, C (batch, N) or (N,).
#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "bindings.hpp"
#include "scan_args.hpp"
#include "ssm/grad_mamba.hpp"
#include "ssm/mamba.hpp"
#include "ssm/selective.hpp"

namespace ssmpy {

namespace {

using namespace scanargs;

template <class T>
py::object scan_result(const Scan<T>& s, const ssm::ScanOutputs<T>& o, bool return_state) {
  auto y = to_array<T>(o.y, s.bdl());
  if (!return_state) return y;
  return py::make_tuple(y, to_array<T>(o.h_last, s.bdn()));
}

// The library's arrays for the fast paths, kept between the calls of a thread. The scans take
// std::vector arguments, and vectors allocated afresh for every call cost fresh pages from the
// OS (a page fault per 4 KiB on first touch): at (D, L, N) = (256, 1024, 16) that was 15× the
// fast scan's own time on this project's machine. Reused, the vectors keep their pages; above
// kKeepBytes they are released after the call, so that one huge call does not pin its memory.
template <class T>
struct Buffers {
  Scan<T> s;
  ssm::ScanOutputs<T> o;
  static Buffers& get() {
    static thread_local Buffers b;
    return b;
  }
  void release_if_large() {
    constexpr std::size_t kKeepBytes = std::size_t(64) << 20;
    const std::size_t n = s.in.u.capacity() + s.in.delta.capacity() + s.in.B.capacity() +
                          s.in.C.capacity() + s.in.z.capacity() + s.in.h0.capacity() +
                          o.y.capacity() + o.h_last.capacity();
    if (n * sizeof(T) > kKeepBytes) *this = Buffers{};
  }
};

// Runs `fn(params, inputs, outputs)` in the precision of u (float32 for a float32 array, else
// float64), values validated first: Python data is untrusted (ssm/selective.hpp).
template <class Fn>
py::object run_scan(const ScanArgs& a, bool return_state, Fn&& fn) {
  auto go = [&](auto tag) -> py::object {
    using T = decltype(tag);
    auto& buf = Buffers<T>::get();
    try {
      make_scan(a, buf.s);
      ssm::validate(buf.s.p, buf.s.in, true);
      fn(buf.s.p, buf.s.in, buf.o);
      py::object r = scan_result(buf.s, buf.o, return_state);
      buf.release_if_large();
      return r;
    } catch (...) {
      buf.release_if_large();
      throw;
    }
  };
  return is_float32(a.u) ? go(float{}) : go(double{});
}

const char* kScanShapes =
    "Shapes: u, delta (Δraw), z (batch, D, L); A (D, N), each < 0; B, C (batch, N, L); D and\n"
    "delta_bias None, a number or (D,); h0 None (zero) or (batch, D, N). Without the batch axis\n"
    "(u (D, L), B and C (N, L), h0 (D, N)) it is one sequence and the outputs drop the axis.\n"
    "Options: delta_softplus (Δ = softplus(Δraw + bias), M1; False: Δ = Δraw + bias), z (the\n"
    "gate y·silu(z), M4), discretization 'mamba' (B̄ = ΔB, D6) or 'zoh' (B̄ = (e^{ΔA} − 1)/A·B,\n"
    "D5). Returns y (the shape of u), or (y, h_last) with return_state=True: the state after the\n"
    "last step, to continue in step mode. Invalid shapes or values raise ssmlab.Error.";

// The state of a Mamba stack in step mode (one conv window and one scan state per layer), held
// by reference so that step() advances it in place.
template <class T>
struct StackState {
  std::vector<ssm::MambaLayerState<T>> layers;
};

void check_layer(int l, std::size_t n) {
  if (l < 0 || static_cast<std::size_t>(l) >= n)
    throw ssm::Error("layer " + std::to_string(l) + " is out of range [0, " + std::to_string(n) +
                     ")");
}

// A (rows, cols) Eigen matrix (column-major) as a new NumPy array.
template <class T>
py::array_t<T> mat_array(const ssm::MatT<T>& M) {
  py::array_t<T> out({M.rows(), M.cols()});
  Eigen::Map<ssm::Signals<T>>(out.mutable_data(), M.rows(), M.cols()) = M;
  return out;
}

// Every array of a Mamba LM's weights (or of its gradient, the same type), by the names of
// ssm::param_views and in its order: fn_mat(name, MatT&) for matrices, fn_vec(name, VecT&) for
// vectors. The Model's weights(layer) dict uses the same block names without the prefix.
template <class T, class W, class FM, class FV>
void each_block_array(W& b, const std::string& prefix, FM&& fm, FV&& fv) {
  fv(prefix + "norm_w", b.norm_w);
  fm(prefix + "in_proj", b.in_proj);
  fm(prefix + "conv_w", b.conv_w);
  fv(prefix + "conv_b", b.conv_b);
  fm(prefix + "x_proj", b.x_proj);
  fm(prefix + "dt_proj", b.dt_proj);
  fv(prefix + "dt_bias", b.dt_bias);
  fm(prefix + "A_log", b.A_log);
  fv(prefix + "D", b.D);
  fm(prefix + "out_proj", b.out_proj);
}
template <class T, class W, class FM, class FV>
void each_lm_array(W& w, FM&& fm, FV&& fv) {
  fm(std::string("embedding"), w.embedding);
  for (std::size_t l = 0; l < w.blocks.size(); ++l)
    each_block_array<T>(w.blocks[l], "layers." + std::to_string(l) + ".", fm, fv);
  fv(std::string("norm_f"), w.norm_f);
  if (w.lm_head.size() > 0) fm(std::string("lm_head"), w.lm_head);
}
template <class T>
py::dict lm_dict(const ssm::MambaLMWeights<T>& w) {
  py::dict d;
  each_lm_array<T>(
      w, [&](const std::string& n, const ssm::MatT<T>& M) { d[py::str(n)] = mat_array<T>(M); },
      [&](const std::string& n, const ssm::VecT<T>& v) { d[py::str(n)] = to_numpy<T>(v); });
  return d;
}

template <class T>
std::vector<int> to_ids(const py::handle& obj, const char* name) {
  const auto a = Arr<long long>::ensure(obj);
  if (!a) throw ssm::Error(std::string(name) + " must be an array of integers");
  ssm::require(a.ndim() == 1, std::string(name) + " must be 1-D (L,), got shape " + shape_str(a));
  std::vector<int> v(static_cast<std::size_t>(a.shape(0)));
  for (std::size_t i = 0; i < v.size(); ++i) {
    const long long x = a.data()[i];
    ssm::require(x >= -1 && x < (1LL << 30), std::string(name) + "[" + std::to_string(i) +
                                                 "] = " + std::to_string(x) + " is out of range");
    v[i] = static_cast<int>(x);
  }
  return v;
}

// Stage 8a's language model (ssm/grad_mamba.hpp): embedding → blocks → final RMSNorm → head,
// its cross-entropy and the gradient of every parameter (G14–G18).
template <class T>
void bind_lm(py::module_& m, const char* name, const char* dtype) {
  using LM = ssm::MambaLM<T>;
  py::class_<LM>(m, name,
                 (std::string("A Mamba language model in ") + dtype +
                  " (ssm/grad_mamba.hpp): token ids → embedding (vocab, d_model) → the blocks "
                  "of M8 with pre-norm residuals → final RMSNorm → logits by the LM head "
                  "(tied: the embedding). loss_and_grad() is the exact backward (G14–G18).")
                     .c_str())
      .def(py::init([](const ssm::MambaConfig& c, int vocab, bool tied, std::uint64_t seed) {
             return std::make_unique<LM>(c, vocab, tied, seed);
           }),
           py::arg("config"), py::arg("vocab"), py::arg("tied") = true, py::arg("seed") = 1,
           "Blocks initialized as Model (M6), embedding ~ N(0, 0.02²), an untied head uniform "
           "in ±1/√d_model. vocab in [2, 2^20].")
      .def_property_readonly("config", &LM::config, py::return_value_policy::copy)
      .def_property_readonly("vocab", &LM::vocab)
      .def_property_readonly("tied", &LM::tied)
      .def(
          "weights", [](const LM& lm) { return lm_dict<T>(lm.weights()); },
          "Every parameter as a new array, by name: embedding (vocab, d_model), layers.l.norm_w, "
          ".in_proj, .conv_w, .conv_b, .x_proj, .dt_proj, .dt_bias, .A_log, .D, .out_proj (the "
          "shapes of Model.weights), norm_f (d_model,), lm_head (vocab, d_model) when untied.")
      .def(
          "set_weights",
          [](LM& lm, const py::dict& d) {
            std::size_t used = 0;
            auto find = [&](const std::string& n) -> py::object {
              const py::str key(n);
              if (!d.contains(key)) return py::none();
              ++used;
              return d[key];
            };
            // Check every array first, then copy: a bad one leaves the model unchanged.
            ssm::MambaLMWeights<T> w = lm.weights();
            each_lm_array<T>(
                w,
                [&](const std::string& n, ssm::MatT<T>& M) {
                  const py::object o = find(n);
                  if (o.is_none()) return;
                  const auto a = Arr<T>::ensure(o);
                  if (!a || a.ndim() != 2 || a.shape(0) != M.rows() || a.shape(1) != M.cols())
                    throw ssm::Error(n + " must have shape (" + std::to_string(M.rows()) + ", " +
                                     std::to_string(M.cols()) + ")");
                  M = Eigen::Map<const ssm::Signals<T>>(a.data(), M.rows(), M.cols());
                },
                [&](const std::string& n, ssm::VecT<T>& v) {
                  const py::object o = find(n);
                  if (o.is_none()) return;
                  const auto a = Arr<T>::ensure(o);
                  if (!a || a.ndim() != 1 || a.shape(0) != v.size())
                    throw ssm::Error(n + " must have shape (" + std::to_string(v.size()) + ",)");
                  v = Eigen::Map<const ssm::VecT<T>>(a.data(), v.size());
                });
            if (used != d.size())
              throw ssm::Error("set_weights: " + std::to_string(d.size() - used) +
                               " name(s) are not parameters of this model (see weights())");
            lm.weights() = std::move(w);
          },
          py::arg("weights"),
          "Replaces the named parameters (a dict as weights() returns, any subset); every "
          "array's shape is checked before anything is copied.")
      .def(
          "logits",
          [](const LM& lm, const py::object& tokens, int threads) {
            ssm::Signals<T> out;
            ssm::MambaRunOptions o;
            o.threads = threads;
            lm.logits(to_ids<T>(tokens, "tokens"), out, o);
            return from_signals<T>(out, false);
          },
          py::arg("tokens"), py::arg("threads") = 1, "Token ids (L,) → logits (L, vocab).")
      .def(
          "loss_and_grad",
          [](const LM& lm, const py::object& tokens, const py::object& targets, int threads,
             int chunk, bool reference_scan) {
            ssm::MambaRunOptions o;
            o.threads = threads;
            o.chunk = chunk;
            o.reference_scan = reference_scan;
            ssm::MambaLMWeights<T> g;
            const double loss = lm.loss_and_grad(to_ids<T>(tokens, "tokens"),
                                                 to_ids<T>(targets, "targets"), g, o);
            return py::make_tuple(loss, lm_dict<T>(g));
          },
          py::arg("tokens"), py::arg("targets"), py::arg("threads") = 1, py::arg("chunk") = 64,
          py::arg("reference_scan") = false,
          "(G18) The mean softmax cross-entropy over the positions whose target is ≥ 0 (−1: "
          "ignored) and its gradient: (loss, dict of gradients named and shaped as weights()). "
          "The scans' backward is the fast one (checkpoints every `chunk` steps) or, with "
          "reference_scan, the double reference.");
}

template <class T>
void bind_model(py::module_& m, const char* model_name, const char* state_name, const char* dtype) {
  using Model = ssm::MambaModel<T>;
  using St = StackState<T>;
  py::class_<St>(m, state_name,
                 (std::string("The step-mode state of a Mamba stack in ") + dtype +
                  ": per layer the conv's input window (d_inner, d_conv), oldest first, and the "
                  "scan's h (d_inner, N). O(1) in the length of the sequence. step() advances "
                  "it in place; copy() to keep one.")
                     .c_str())
      .def_property_readonly("n_layers", [](const St& s) { return s.layers.size(); })
      .def(
          "conv",
          [](const St& s, int l) {
            check_layer(l, s.layers.size());
            return mat_array<T>(s.layers[std::size_t(l)].conv);
          },
          py::arg("layer"), "The conv window of a layer (d_inner, d_conv), oldest input first.")
      .def(
          "ssm",
          [](const St& s, int l) {
            check_layer(l, s.layers.size());
            const auto& x = s.layers[std::size_t(l)];
            const auto di = static_cast<py::ssize_t>(x.conv.rows());
            const auto N = di ? static_cast<py::ssize_t>(x.ssm.size()) / di : 0;
            return to_array<T>(x.ssm, {di, N});
          },
          py::arg("layer"), "The scan state h of a layer (d_inner, N).")
      .def("copy", [](const St& s) { return St(s); })
      .def("__copy__", [](const St& s) { return St(s); })
      .def(
          "__deepcopy__", [](const St& s, const py::object&) { return St(s); }, py::arg("memo"))
      .def("__repr__", [state_name](const St& s) {
        return std::string("<ssmlab.mamba.") + state_name +
               " n_layers=" + std::to_string(s.layers.size()) + ">";
      });

  py::class_<Model>(m, model_name,
                    (std::string("A stack of Mamba blocks in ") + dtype +
                     " (M8), weights from a seed with Mamba's initialization (M6): x ← x + "
                     "block(RMSNorm(x)) per layer, then a final RMSNorm. forward() runs a "
                     "prompt in scan mode, step() one token in step mode; the two agree to "
                     "rounding.")
                        .c_str())
      .def(py::init([](const ssm::MambaConfig& c, std::uint64_t seed) {
             return std::make_unique<Model>(c, seed);
           }),
           py::arg("config"), py::arg("seed") = 1,
           "config: a Config (validated: d_model in [1, 4096], d_state in [1, 256], d_conv in "
           "[1, 16], expand in [1, 8], n_layers in [1, 64], 0 < dt_min ≤ dt_max).")
      .def_property_readonly("config", &Model::config, py::return_value_policy::copy)
      .def(
          "forward",
          [](const Model& md, const py::object& X_obj, bool return_state,
             int threads) -> py::object {
            const auto a = Arr<T>::ensure(X_obj);
            if (!a) throw ssm::Error("X must be an array of numbers");
            ssm::require(
                a.ndim() == 2,
                "X must be 2-D (L, d_model), one token per row, got shape " + shape_str(a));
            const ssm::Signals<T> X =
                Eigen::Map<const ssm::Signals<T>>(a.data(), a.shape(0), a.shape(1));
            ssm::Signals<T> Y;
            if (!return_state) {
              md.forward(X, Y, nullptr, threads);
              return from_signals<T>(Y, false);
            }
            St st;
            md.forward(X, Y, &st.layers, threads);
            return py::make_tuple(from_signals<T>(Y, false), std::move(st));
          },
          py::arg("X"), py::arg("return_state") = false, py::arg("threads") = 1,
          "Scan mode: X (L, d_model) → Y (L, d_model), the fast scan on `threads` threads (0: "
          "all cores). With return_state=True, (Y, state): the state after the last token, "
          "ready for step().")
      .def(
          "step",
          [](const Model& md, const py::object& x_obj, St& st) {
            const auto a = Arr<T>::ensure(x_obj);
            if (!a) throw ssm::Error("x must be an array of numbers");
            const auto dm = static_cast<py::ssize_t>(md.config().d_model);
            ssm::require(a.ndim() == 1 && a.shape(0) == dm,
                         "x must have shape (d_model,) = (" + std::to_string(dm) +
                             ",), one token, got shape " + shape_str(a));
            py::array_t<T> y(dm);
            md.step(a.data(), y.mutable_data(), st.layers);
            return y;
          },
          py::arg("x"), py::arg("state"),
          "Step mode: one token x (d_model,) → y (d_model,); `state` (from initial_state() or "
          "forward(…, return_state=True)) advances by one token, in place. O(d_model·d_inner + "
          "d_inner·N) per token.")
      .def(
          "initial_state", [](const Model& md) { return St{md.initial_state()}; },
          "Zero conv windows and zero scan states, one per layer.")
      .def(
          "weights",
          [](const Model& md, int l) {
            check_layer(l, md.blocks().size());
            const auto& w = md.blocks()[std::size_t(l)];
            py::dict d;
            d["in_proj"] = mat_array<T>(w.in_proj);
            d["conv_w"] = mat_array<T>(w.conv_w);
            d["conv_b"] = to_numpy<T>(w.conv_b);
            d["x_proj"] = mat_array<T>(w.x_proj);
            d["dt_proj"] = mat_array<T>(w.dt_proj);
            d["dt_bias"] = to_numpy<T>(w.dt_bias);
            d["A_log"] = mat_array<T>(w.A_log);
            d["D"] = to_numpy<T>(w.D);
            d["out_proj"] = mat_array<T>(w.out_proj);
            d["norm_w"] = to_numpy<T>(w.norm_w);
            return d;
          },
          py::arg("layer"),
          "The weights of block `layer` as new arrays, shapes as PyTorch's Linear (out, in): "
          "in_proj (2·d_inner, d_model), conv_w (d_inner, d_conv), conv_b (d_inner,), x_proj "
          "(dt_rank + 2N, d_inner), dt_proj (d_inner, dt_rank), dt_bias (d_inner,), A_log "
          "(d_inner, N), D (d_inner,), out_proj (d_model, d_inner), norm_w (d_model,).")
      .def(
          "scan_params",
          [](const Model& md, int l) {
            check_layer(l, md.blocks().size());
            const auto& p = md.scan_params(l);
            py::dict d;
            d["A"] = to_array<T>(p.A, {p.D, p.N});
            d["D"] = to_array<T>(p.D_skip, {p.D});
            d["delta_bias"] = to_array<T>(p.delta_bias, {p.D});
            d["delta_softplus"] = p.delta_softplus;
            d["discretization"] = disc_name(p.disc);
            return d;
          },
          py::arg("layer"),
          "The scan parameters of block `layer` as keyword arguments of the scans: A = "
          "−exp(A_log) (d_inner, N), D, delta_bias (d_inner,), delta_softplus, discretization.")
      .def("__repr__", [model_name](const Model& md) {
        const auto& c = md.config();
        return std::string("<ssmlab.mamba.") + model_name +
               " d_model=" + std::to_string(c.d_model) + " d_inner=" + std::to_string(c.d_inner()) +
               " N=" + std::to_string(c.d_state) + " n_layers=" + std::to_string(c.n_layers) + ">";
      });
}

}  // namespace

void bind_mamba(py::module_& parent) {
  auto m = parent.def_submodule(
      "mamba",
      "Stage 7, the selective scan and Mamba (ssm/selective.hpp, ssm/mamba.hpp). Per channel an\n"
      "N-state diagonal SSM whose Δ, B, C change with every token (M1–M4): Δ = softplus(Δraw +\n"
      "bias), Ā = e^{ΔA}, B̄ = ΔB, h_t = Ā h_{t−1} + B̄ u_t, y_t = C_t h_t + D u_t, gated by\n"
      "silu(z). The steps compose as pairs (a, b) (M5), so the scan can run in parallel; with Δ,\n"
      "B, C constant it is stage 4's convolution (M7). Shapes as in Mamba: u, delta, z\n"
      "(batch, D, L); A (D, N); B, C (batch, N, L). The Mamba block (M8) wraps the scan in\n"
      "projections, a short causal conv and a gate; Model64/Model32 stack it.");

  py::enum_<ssm::ScanDiscretization>(
      m, "Discretization",
      "How B̄ is formed (M2); functions also accept the names 'mamba' and 'zoh'.")
      .value("Mamba", ssm::ScanDiscretization::Mamba, "B̄ = ΔB (D6), Mamba's default")
      .value("ZOH", ssm::ScanDiscretization::ZOH, "B̄ = (e^{ΔA} − 1)/A · B (D5), exact ZOH");
  m.attr("MAX_N") = ssm::kMaxScanN;

  // ---- The scans (M1–M5).
  m.def(
      "selective_scan_reference",
      [](const py::object& u, const py::object& delta, const py::object& A, const py::object& B,
         const py::object& C, const py::object& D, const py::object& z,
         const py::object& delta_bias, bool softplus, const py::object& h0, const py::object& disc,
         bool return_state) {
        const auto s = make_scan<double>({u, delta, A, B, C, D, z, delta_bias, h0, disc, softplus});
        return scan_result(s, ssm::selective_scan_reference(s.p, s.in), return_state);
      },
      py::arg("u"), py::arg("delta"), py::arg("A"), py::arg("B"), py::arg("C"),
      py::arg("D") = py::none(), py::arg("z") = py::none(), py::arg("delta_bias") = py::none(),
      py::arg("delta_softplus") = true, py::arg("h0") = py::none(),
      py::arg("discretization") = "mamba", py::arg("return_state") = false,
      (std::string("The sequential scan (M1–M4), plain loops in float64: the truth every other\n"
                   "path is checked against. O(batch·D·L·N). Any input is cast to float64.\n") +
       kScanShapes)
          .c_str());
  m.def(
      "selective_scan",
      [](const py::object& u, const py::object& delta, const py::object& A, const py::object& B,
         const py::object& C, const py::object& D, const py::object& z,
         const py::object& delta_bias, bool softplus, const py::object& h0, const py::object& disc,
         bool return_state, int threads) {
        return run_scan({u, delta, A, B, C, D, z, delta_bias, h0, disc, softplus}, return_state,
                        [threads](const auto& p, const auto& in, auto& o) {
                          ssm::selective_scan(p, in, o, threads);
                        });
      },
      py::arg("u"), py::arg("delta"), py::arg("A"), py::arg("B"), py::arg("C"),
      py::arg("D") = py::none(), py::arg("z") = py::none(), py::arg("delta_bias") = py::none(),
      py::arg("delta_softplus") = true, py::arg("h0") = py::none(),
      py::arg("discretization") = "mamba", py::arg("return_state") = false, py::arg("threads") = 1,
      (std::string("The fast CPU scan (M1–M4): channels in the lanes of SIMD registers, the state\n"
                   "in registers, a vectorized exp. float32 when u is a float32 array (every\n"
                   "array is then cast to float32), else float64; relative error ~5e-7 (float32)\n"
                   "and ~1e-15 (float64) of max |y| against the reference. threads: 0 = all\n"
                   "cores.\n") +
       kScanShapes)
          .c_str());
  m.def(
      "selective_scan_parallel",
      [](const py::object& u, const py::object& delta, const py::object& A, const py::object& B,
         const py::object& C, const py::object& D, const py::object& z,
         const py::object& delta_bias, bool softplus, const py::object& h0, const py::object& disc,
         bool return_state, int threads, int chunks) {
        ssm::require(chunks >= 0,
                     "chunks must be >= 0 (0: one per thread), got " + std::to_string(chunks));
        return run_scan({u, delta, A, B, C, D, z, delta_bias, h0, disc, softplus}, return_state,
                        [threads, chunks](const auto& p, const auto& in, auto& o) {
                          ssm::selective_scan_parallel(p, in, o, threads, chunks);
                        });
      },
      py::arg("u"), py::arg("delta"), py::arg("A"), py::arg("B"), py::arg("C"),
      py::arg("D") = py::none(), py::arg("z") = py::none(), py::arg("delta_bias") = py::none(),
      py::arg("delta_softplus") = true, py::arg("h0") = py::none(),
      py::arg("discretization") = "mamba", py::arg("return_state") = false, py::arg("threads") = 1,
      py::arg("chunks") = 0,
      (std::string("The associative scan (M5) chunked over time: each of `chunks` pieces (0: one\n"
                   "per thread) folds its steps into one pair (a, b) per state; the pairs are\n"
                   "scanned to give every chunk its incoming state; each chunk is re-scanned\n"
                   "from it. Same result as the reference to rounding. float32 or float64 as\n"
                   "selective_scan.\n") +
       kScanShapes)
          .c_str());
  m.def(
      "selective_scan_stepwise",
      [](const py::object& u, const py::object& delta, const py::object& A, const py::object& B,
         const py::object& C, const py::object& D, const py::object& z,
         const py::object& delta_bias, bool softplus, const py::object& h0, const py::object& disc,
         bool return_state) {
        return run_scan(
            {u, delta, A, B, C, D, z, delta_bias, h0, disc, softplus}, return_state,
            [](const auto& p, const auto& in, auto& o) { ssm::selective_scan_stepwise(p, in, o); });
      },
      py::arg("u"), py::arg("delta"), py::arg("A"), py::arg("B"), py::arg("C"),
      py::arg("D") = py::none(), py::arg("z") = py::none(), py::arg("delta_bias") = py::none(),
      py::arg("delta_softplus") = true, py::arg("h0") = py::none(),
      py::arg("discretization") = "mamba", py::arg("return_state") = false,
      (std::string("Step mode over a whole sequence: selective_state_update token by token from\n"
                   "h0 (in C++, no Python loop). float32 or float64 as selective_scan.\n") +
       kScanShapes)
          .c_str());
  m.def(
      "selective_state_update",
      [](const py::object& h, const py::object& u, const py::object& delta, const py::object& A,
         const py::object& B, const py::object& C, const py::object& D, const py::object& z,
         const py::object& delta_bias, bool softplus, const py::object& disc) {
        auto go = [&](auto tag) -> py::object {
          using T = decltype(tag);
          const auto ua = Arr<T>::ensure(u);
          if (!ua) throw ssm::Error("u must be an array of numbers");
          ssm::require(ua.ndim() == 2 || ua.ndim() == 1,
                       "u must be 2-D (batch, D) or 1-D (D,) for one sequence: one token, got "
                       "shape " +
                           shape_str(ua));
          const bool batched = ua.ndim() == 2;
          const py::ssize_t b = batched ? ua.shape(0) : 1, Dn = ua.shape(ua.ndim() - 1);
          const auto Aa = Arr<T>::ensure(A);
          if (!Aa) throw ssm::Error("A must be an array of numbers");
          ssm::require(Aa.ndim() == 2 && Aa.shape(0) == Dn,
                       "A must have shape (D, N) with D = " + std::to_string(Dn) +
                           " (from u), got shape " + shape_str(Aa));
          const py::ssize_t N = Aa.shape(1);
          const Shape bd = batched ? Shape{b, Dn} : Shape{Dn};
          const Shape bn = batched ? Shape{b, N} : Shape{N};
          const Shape bdn = batched ? Shape{b, Dn, N} : Shape{Dn, N};
          const std::string bd_s = batched ? "(batch, D)" : "(D,)",
                            bn_s = batched ? "(batch, N)" : "(N,)",
                            bdn_s = batched ? "(batch, D, N)" : "(D, N)";
          ssm::ScanParams<T> p;
          p.D = static_cast<int>(std::min<py::ssize_t>(Dn, 1 << 30));
          p.N = static_cast<int>(std::min<py::ssize_t>(N, 1 << 30));
          p.A = take<T>(A, "A", {Dn, N}, "(D, N)");
          p.D_skip = per_channel<T>(D, "D", Dn);
          p.delta_bias = per_channel<T>(delta_bias, "delta_bias", Dn);
          p.delta_softplus = softplus;
          p.disc = to_disc(disc);
          ssm::StepInputs<T> in;
          in.batch = static_cast<int>(std::min<py::ssize_t>(b, 1 << 30));
          in.u = take<T>(u, "u", bd, bd_s);
          in.delta = take<T>(delta, "delta", bd, bd_s + " (the shape of u)");
          in.B = take<T>(B, "B", bn, bn_s);
          in.C = take<T>(C, "C", bn, bn_s);
          if (!z.is_none()) in.z = take<T>(z, "z", bd, bd_s + " (the shape of u)");
          std::vector<T> state;
          if (!h.is_none()) state = take<T>(h, "h", bdn, bdn_s);
          std::vector<T> y;
          ssm::selective_state_update(p, in, state, y);
          return py::make_tuple(to_array<T>(y, bd), to_array<T>(state, bdn));
        };
        return is_float32(u) ? go(float{}) : go(double{});
      },
      py::arg("h"), py::arg("u"), py::arg("delta"), py::arg("A"), py::arg("B"), py::arg("C"),
      py::arg("D") = py::none(), py::arg("z") = py::none(), py::arg("delta_bias") = py::none(),
      py::arg("delta_softplus") = true, py::arg("discretization") = "mamba",
      "Step mode (inference), one token: h ← Ā h + B̄ u, y = C h + D u (· silu(z)) (M1–M4).\n"
      "h: the state (batch, D, N), or None for zero; u, delta, z (batch, D); A (D, N); B, C\n"
      "(batch, N) — or without the batch axis: u (D,), B (N,), h (D, N). Returns (y, h_new) as\n"
      "new arrays (h is not modified). float32 when u is a float32 array, else float64.\n"
      "Feeding a sequence token by token gives the scan's outputs and final state. O(batch·D·N).");

  m.def(
      "combine",
      [](const py::object& first, const py::object& second) {
        const auto f = first.cast<py::sequence>(), s = second.cast<py::sequence>();
        ssm::require(py::len(f) == 2 && py::len(s) == 2,
                     "combine: first and second must be pairs (a, b)");
        auto a_of = py::vectorize([](double a1, double b1, double a2, double b2) {
          return ssm::combine<double>({a1, b1}, {a2, b2}).a;
        });
        auto b_of = py::vectorize([](double a1, double b1, double a2, double b2) {
          return ssm::combine<double>({a1, b1}, {a2, b2}).b;
        });
        using A = py::array_t<double, py::array::forcecast>;
        const A a1 = A::ensure(f[0]), b1 = A::ensure(f[1]), a2 = A::ensure(s[0]),
                b2 = A::ensure(s[1]);
        if (!a1 || !b1 || !a2 || !b2)
          throw ssm::Error("combine: a and b must be numbers or arrays of numbers");
        return py::make_tuple(a_of(a1, b1, a2, b2), b_of(a1, b1, a2, b2));
      },
      py::arg("first"), py::arg("second"),
      "(M5) The step h ↦ a h + b as a pair (a, b): combine(first, second) is 'apply first, then\n"
      "second', (a₂a₁, a₂b₁ + b₂). Associative, identity (1, 0). Elementwise on arrays (NumPy\n"
      "broadcasting), float64.");

  m.def(
      "selective_scan_as_convolution",
      [](const py::object& u, const py::object& delta, const py::object& A, const py::object& B,
         const py::object& C, const py::object& D, const py::object& z,
         const py::object& delta_bias, bool softplus, const py::object& h0,
         const py::object& disc) {
        const auto s = make_scan<double>({u, delta, A, B, C, D, z, delta_bias, h0, disc, softplus});
        return to_array<double>(ssm::selective_scan_as_convolution(s.p, s.in), s.bdl());
      },
      py::arg("u"), py::arg("delta"), py::arg("A"), py::arg("B"), py::arg("C"),
      py::arg("D") = py::none(), py::arg("z") = py::none(), py::arg("delta_bias") = py::none(),
      py::arg("delta_softplus") = true, py::arg("h0") = py::none(),
      py::arg("discretization") = "mamba",
      "(M7) The same y computed the stage 4 way, for inputs whose Δraw, B and C do not change in\n"
      "time: per channel the LTI diagonal model Ā = e^{ΔA}, B̄ from stage 2 (ΔB or ZOH), its\n"
      "kernel K̄ by powers of Ā (K1), y = K̄ * u + D u by FFT (K2). Raises ssmlab.Error when Δraw,\n"
      "B or C varies in time (there is no kernel), with a gate z or an initial state h0.\n"
      "float64. Shapes as selective_scan_reference.");

  m.def("inverse_softplus", py::vectorize(&ssm::inverse_softplus), py::arg("delta"),
        "(M6) Mamba's Δ bias for a step Δ > 0: the inverse of softplus, Δ + log(−expm1(−Δ)).\n"
        "Elementwise on arrays.");

  m.def(
      "random_problem",
      [](int D, int L, int N, const py::object& batch, std::uint64_t seed, bool gate, bool skip,
         bool initial_state, const py::object& disc, bool constant_in_time,
         const py::object& dtype) {
        ssm::RandomScanOptions opt;
        opt.gate = gate;
        opt.skip = skip;
        opt.initial_state = initial_state;
        opt.disc = to_disc(disc);
        opt.constant_in_time = constant_in_time;
        const bool batched = !batch.is_none();
        const int nb = batched ? batch.cast<int>() : 1;
        ssm::require(D >= 1 && D <= ssm::kMaxScanD && L >= 1 && N >= 1 && N <= ssm::kMaxScanN &&
                         nb >= 1 && double(nb) * D * L <= double(1 << 28),
                     "random_problem: need D in [1, 2^16], N in [1, 256], L >= 1, batch >= 1 "
                     "and batch·D·L <= 2^28, got D = " +
                         std::to_string(D) + ", L = " + std::to_string(L) +
                         ", N = " + std::to_string(N) + ", batch = " + std::to_string(nb));
        auto go = [&](auto tag) {
          using T = decltype(tag);
          ssm::ScanParams<T> p;
          ssm::ScanInputs<T> in;
          ssm::random_scan_problem<T>({nb, D, L, N}, seed, p, in, opt);
          const py::ssize_t b = nb;
          const Shape bdl = batched ? Shape{b, D, L} : Shape{D, L};
          const Shape bnl = batched ? Shape{b, N, L} : Shape{N, L};
          const Shape bdn = batched ? Shape{b, D, N} : Shape{D, N};
          py::dict d;
          d["u"] = to_array<T>(in.u, bdl);
          d["delta"] = to_array<T>(in.delta, bdl);
          d["A"] = to_array<T>(p.A, {D, N});
          d["B"] = to_array<T>(in.B, bnl);
          d["C"] = to_array<T>(in.C, bnl);
          d["D"] =
              p.D_skip.empty() ? py::object(py::none()) : py::object(to_array<T>(p.D_skip, {D}));
          d["z"] = in.z.empty() ? py::object(py::none()) : py::object(to_array<T>(in.z, bdl));
          d["delta_bias"] = to_array<T>(p.delta_bias, {D});
          d["delta_softplus"] = p.delta_softplus;
          d["h0"] = in.h0.empty() ? py::object(py::none()) : py::object(to_array<T>(in.h0, bdn));
          d["discretization"] = disc_name(p.disc);
          return d;
        };
        return wants_float32(dtype) ? go(float{}) : go(double{});
      },
      py::arg("D"), py::arg("L"), py::arg("N") = 16, py::arg("batch") = py::none(),
      py::arg("seed") = 1, py::arg("gate") = true, py::arg("skip") = true,
      py::arg("initial_state") = false, py::arg("discretization") = "mamba",
      py::arg("constant_in_time") = false, py::arg("dtype") = "float64",
      "Mamba-like random inputs, as a dict of the scans' keyword arguments (splat it:\n"
      "selective_scan(**p)): A_{d,n} = −(n+1)·e^{ε} (M6 with a small jitter), delta_bias from\n"
      "Mamba's Δ init (log-uniform in [1e-3, 1e-1], stored by inverse softplus), delta (Δraw) ~\n"
      "0.5·N(0,1), u, B, C, z ~ N(0,1), D = 1. batch None: one sequence (u (D, L), B (N, L));\n"
      "an int: (batch, D, L). gate, skip, initial_state: z, D, h0 present or None;\n"
      "constant_in_time: Δraw, B, C the same at every t (an LTI problem, M7). dtype float64 or\n"
      "float32. Reproducible from seed.");

  // ---- The selectivity lesson.
  py::class_<ssm::SelectivityResult>(
      m, "SelectivityResult",
      "The selectivity lesson's outcome: one example sequence (u, the content positions, Δ_t and\n"
      "h_t of both models) and the recall of the content digits on the test sequences.")
      .def_property_readonly("u", vector_property(&ssm::SelectivityResult::u),
                             "(L,) the example's digits")
      .def_property_readonly("content", vector_property(&ssm::SelectivityResult::content),
                             "(K,) the positions of its content tokens")
      .def_property_readonly("delta_sel", vector_property(&ssm::SelectivityResult::delta_sel),
                             "(L,) Δ_t of the selective model on the example")
      .def_property_readonly("delta_lti", vector_property(&ssm::SelectivityResult::delta_lti),
                             "(L,) Δ_t of the reported LTI model (constant)")
      .def_readonly("states_sel", &ssm::SelectivityResult::states_sel,
                    "(N, L) h_t of the selective model on the example (step mode)")
      .def_readonly("states_lti", &ssm::SelectivityResult::states_lti,
                    "(N, L) h_t of the LTI model on the example")
      .def_readonly("recall_sel", &ssm::SelectivityResult::recall_sel,
                    "fraction of test content digits the selective model's readout recalls")
      .def_readonly("recall_lti", &ssm::SelectivityResult::recall_lti,
                    "the same for the LTI model (best constant Δ of the grid)")
      .def_readonly("chance", &ssm::SelectivityResult::chance, "1/vocab")
      .def_readonly("lti_delta", &ssm::SelectivityResult::lti_delta,
                    "the constant Δ of the reported LTI model")
      .def_property_readonly(
          "lti_grid",
          [](const ssm::SelectivityResult& r) {
            std::vector<double> v;
            for (const auto& [d, rc] : r.lti_grid) {
              v.push_back(d);
              v.push_back(rc);
            }
            return to_array<double>(v, {py::ssize_t(r.lti_grid.size()), 2});
          },
          "(G, 2): (Δ, recall) of every constant Δ tried")
      .def_property_readonly("truth", vector_property(&ssm::SelectivityResult::truth),
                             "every test content digit (test·K,)")
      .def_property_readonly("decoded_sel", vector_property(&ssm::SelectivityResult::decoded_sel),
                             "the selective model's readout of each (before rounding)")
      .def_property_readonly("decoded_lti", vector_property(&ssm::SelectivityResult::decoded_lti),
                             "the LTI model's readout of each")
      .def("__repr__", [](const ssm::SelectivityResult& r) {
        return "<ssmlab.mamba.SelectivityResult recall_sel=" + ssm::fmt(r.recall_sel) +
               " recall_lti=" + ssm::fmt(r.recall_lti) + " chance=" + ssm::fmt(r.chance) + ">";
      });
  m.def(
      "selectivity_lesson",
      [](int L, int K, int N, int vocab, int train, int test, double delta_content, double a0,
         std::uint64_t seed) {
        ssm::SelectivityConfig c;
        c.L = L;
        c.K = K;
        c.N = N;
        c.vocab = vocab;
        c.train = train;
        c.test = test;
        c.delta_content = delta_content;
        c.a0 = a0;
        c.seed = seed;
        return ssm::selectivity_lesson(c);
      },
      py::arg("L") = 64, py::arg("K") = 4, py::arg("N") = 8, py::arg("vocab") = 8,
      py::arg("train") = 600, py::arg("test") = 400, py::arg("delta_content") = 1.0,
      py::arg("a0") = 0.5, py::arg("seed") = 1,
      "K content digits hidden at random positions among L tokens (digits 1..vocab); one\n"
      "channel, A_n = −a0·(n+1), B = 1. Selective model: Δ_t = softplus(w·m_t − 12) (m_t = 1 on\n"
      "content: Δ = delta_content there, ≈ 6e-6 on filler); LTI model: the same with w = 0 and\n"
      "the best constant Δ of a grid. A linear readout of the final state h_L is fitted on\n"
      "`train` sequences and scored on `test` others. Returns a SelectivityResult.");

  m.def(
      "precision_row",
      [](int D, int L, int N, double delta_scale, std::uint64_t seed) {
        const ssm::PrecisionRow r = ssm::precision_row(D, L, N, delta_scale, seed);
        py::dict d;
        d["L"] = r.L;
        d["inputs_only"] = r.inputs_only;
        d["coefficients"] = r.coefficients;
        d["recurrence"] = r.recurrence;
        d["fast_float"] = r.fast_float;
        d["bf16_state"] = r.bf16_state;
        d["memory_steps"] = r.memory_steps;
        return d;
      },
      py::arg("D"), py::arg("L"), py::arg("N") = 16, py::arg("delta_scale") = 1.0,
      py::arg("seed") = 1,
      "Where float32 loses precision (ssm-mamba's table), for Mamba-like inputs (1, D, L, N)\n"
      "without gate and skip: max |Δy| / max |y| against the float64 reference of runs that each\n"
      "change one thing — inputs_only (inputs rounded to float32), coefficients (Δ, Ā, B̄u in\n"
      "float32 as the fast scan computes them), recurrence (h and y in float32), fast_float (the\n"
      "fast float32 scan), bf16_state (h rounded to bfloat16 every step) — and memory_steps,\n"
      "1/(Δ|A|)_min. delta_scale multiplies Mamba's Δ. A dict.");

  // ---- The Mamba block stack (M6, M8).
  py::class_<ssm::MambaConfig>(m, "Config",
                               "The shape of a Mamba stack (M8): d_model, d_state (N), d_conv, "
                               "expand (d_inner = expand·d_model), dt_rank (0: ⌈d_model/16⌉), "
                               "n_layers; the Δ init range and floor (M6); RMSNorm's eps.")
      .def(py::init([](int d_model, int d_state, int d_conv, int expand, int dt_rank, int n_layers,
                       double dt_min, double dt_max, double dt_init_floor, double rms_eps) {
             ssm::MambaConfig c;
             c.d_model = d_model;
             c.d_state = d_state;
             c.d_conv = d_conv;
             c.expand = expand;
             c.dt_rank = dt_rank;
             c.n_layers = n_layers;
             c.dt_min = dt_min;
             c.dt_max = dt_max;
             c.dt_init_floor = dt_init_floor;
             c.rms_eps = rms_eps;
             return c;
           }),
           py::arg("d_model") = 64, py::arg("d_state") = 16, py::arg("d_conv") = 4,
           py::arg("expand") = 2, py::arg("dt_rank") = 0, py::arg("n_layers") = 2,
           py::arg("dt_min") = 1e-3, py::arg("dt_max") = 1e-1, py::arg("dt_init_floor") = 1e-4,
           py::arg("rms_eps") = 1e-5, "Validated when a model is built from it.")
      .def_readwrite("d_model", &ssm::MambaConfig::d_model)
      .def_readwrite("d_state", &ssm::MambaConfig::d_state)
      .def_readwrite("d_conv", &ssm::MambaConfig::d_conv)
      .def_readwrite("expand", &ssm::MambaConfig::expand)
      .def_readwrite("dt_rank", &ssm::MambaConfig::dt_rank)
      .def_readwrite("n_layers", &ssm::MambaConfig::n_layers)
      .def_readwrite("dt_min", &ssm::MambaConfig::dt_min)
      .def_readwrite("dt_max", &ssm::MambaConfig::dt_max)
      .def_readwrite("dt_init_floor", &ssm::MambaConfig::dt_init_floor)
      .def_readwrite("rms_eps", &ssm::MambaConfig::rms_eps)
      .def_property_readonly("d_inner", &ssm::MambaConfig::d_inner, "expand·d_model")
      .def_property_readonly("rank", &ssm::MambaConfig::rank, "dt_rank, resolved")
      .def("__repr__", [](const ssm::MambaConfig& c) {
        return "<ssmlab.mamba.Config d_model=" + std::to_string(c.d_model) +
               " d_state=" + std::to_string(c.d_state) + " d_conv=" + std::to_string(c.d_conv) +
               " expand=" + std::to_string(c.expand) + " dt_rank=" + std::to_string(c.rank()) +
               " n_layers=" + std::to_string(c.n_layers) + ">";
      });
  bind_model<double>(m, "Model64", "State64", "float64");
  bind_model<float>(m, "Model32", "State32", "float32");
  bind_lm<double>(m, "LM64", "float64");
  bind_lm<float>(m, "LM32", "float32");
  m.def(
      "rms_norm",
      [](const py::object& X, const py::object& w, double eps) {
        const ssm::Signals<double> Xs = to_signals<double>(X, "X");
        ssm::Signals<double> Y;
        ssm::rms_norm<double>(Xs, to_vec<double>(w, "w"), eps, Y);
        return from_signals<double>(Y, Arr<double>::ensure(X).ndim() == 1);
      },
      py::arg("X"), py::arg("w"), py::arg("eps") = 1e-5,
      "RMSNorm of each row of X (L, d) (or one row (d,)): x / sqrt(mean(x²) + eps) · w, in\n"
      "float64. O(L·d).");
}

}  // namespace ssmpy
