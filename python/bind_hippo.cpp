// python/bind_hippo.cpp — stage 5 (ssm/hippo.hpp), as the submodule ssmlab.hippo (the library's
// namespace ssm::hippo): the HiPPO matrices (LegS (H1), LegT, LagT, FouT), one LegS step dense
// (H5) or in O(N) (H6), the online projection, the basis (H2), the reconstruction (H4), and the
// exact projection by quadrature (H3) with its weighted error.
//
//   from ssmlab import hippo
//   A, B = hippo.legs(32)                                  # (H1)
//   sp = hippo.Spec("legs", N=32)
//   C = hippo.online(u, dt, sp)                            # (N, L): c(t_k) for every k
//   v = hippo.reconstruct(sp, C[:, -1], t, s)              # (H4) u(s) ≈ Σ c_n g_n(s)
//   q = hippo.project(sp, t, signal)                       # (H3) the exact c(t), by quadrature
#include <cmath>
#include <memory>
#include <optional>

#include "bindings.hpp"
#include "ssm/hippo.hpp"
#include "ssm/signal.hpp"

namespace ssmpy {

namespace {

namespace hp = ssm::hippo;

// A measure given as an ssmlab.hippo.Measure or as its name ("legs", "legt", "lagt", "fout").
hp::Measure to_measure(const py::handle& h) {
  if (py::isinstance<hp::Measure>(h)) return h.cast<hp::Measure>();
  if (py::isinstance<py::str>(h)) return hp::parse_measure(h.cast<std::string>());
  throw ssm::Error(
      "measure must be a name (legs, legt, lagt, fout) or an ssmlab.hippo.Measure, "
      "got " +
      std::string(py::str(py::type::of(h))));
}

// A matrix of doubles (R, C) from anything array-like; `name` names it in errors.
ssm::Mat to_mat(const py::handle& obj, const char* name) {
  const auto a = Arr<double>::ensure(obj);
  if (!a) throw ssm::Error(std::string(name) + " must be an array of numbers");
  ssm::require(a.ndim() == 2, std::string(name) + " must be 2-D, got shape " + shape_str(a));
  // NumPy is row-major, Eigen's Mat column-major: map as row-major, copy.
  using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  return Eigen::Map<const RowMajor>(a.data(), a.shape(0), a.shape(1));
}

std::vector<double> to_std(const py::handle& obj, const char* name) {
  const ssm::Vec v = to_vec<double>(obj, name);
  return {v.data(), v.data() + v.size()};
}

py::array_t<double> to_numpy_std(const std::vector<double>& v) {
  py::array_t<double> out(static_cast<py::ssize_t>(v.size()));
  std::copy(v.begin(), v.end(), out.mutable_data());
  return out;
}

hp::Stepping to_stepping(const py::object& st) {
  if (st.is_none()) return {};
  if (py::isinstance<hp::Stepping>(st)) return st.cast<hp::Stepping>();
  throw ssm::Error("stepping must be an ssmlab.hippo.Stepping or None, got " +
                   std::string(py::str(py::type::of(st))));
}

// The function to integrate for the ground truth (H3): a Python callable u(s) (s in seconds,
// one float in, one float out), or an ssmlab.Signal. A Signal is read the way ssm-hippo reads
// it: its analytic u(t) when known, else its held samples, with the quadrature's panels ending
// on its sample grid (where a held signal, and a step or square generator, may jump). `breaks`
// (s) overrides that grid; for a callable it defaults to 0 (u smooth on [0, t]).
hp::Truth to_truth(const py::object& u, const std::optional<double>& breaks) {
  if (breaks)
    ssm::require(std::isfinite(*breaks) && *breaks >= 0,
                 "breaks must be finite and >= 0, got " + ssm::fmt(*breaks));
  if (py::isinstance<ssm::Signal>(u)) {
    // Keep the Signal alive (and unchanged: it is read-only in Python) for the truth's lifetime
    // by holding a copy.
    auto sig = std::make_shared<ssm::Signal>(u.cast<ssm::Signal>());
    const double b = breaks.value_or(sig->dt);
    if (sig->held()) return {[sig](double s) { return sig->at(s); }, b};
    return {sig->fn, b};
  }
  if (!PyCallable_Check(u.ptr()))
    throw ssm::Error("u must be a callable u(s) or an ssmlab.Signal, got " +
                     std::string(py::str(py::type::of(u))));
  return {u.cast<std::function<double(double)>>(), breaks.value_or(0.0)};
}

}  // namespace

void bind_hippo(py::module_& parent) {
  auto m = parent.def_submodule(
      "hippo",
      "Stage 5, HiPPO (ssm/hippo.hpp): N coefficients c(t) that summarize a signal's past,\n"
      "updated online by an SSM c' = A c + B u and drawn back by u(s) ≈ Σ c_n g_n(s).\n"
      "Measures: 'legs' (uniform on [0, t], time-varying: c' = (A c + B u)/t, H1–H6), 'legt'\n"
      "(window θ), 'lagt' (exponential decay θ), 'fout' (Fourier, window θ); normalizations as\n"
      "in lib/include/ssm/hippo.hpp. A is this project's sign (x' = Ax + Bu): the negated\n"
      "matrix of the HiPPO paper.");

  py::enum_<hp::Measure>(m, "Measure",
                         "The HiPPO measures; functions also accept their names "
                         "'legs', 'legt', 'lagt', 'fout'.")
      .value("LegS", hp::Measure::LegS, "uniform on [0, t]: scaled Legendre (H1)")
      .value("LegT", hp::Measure::LegT, "uniform on the window [t − θ, t]: translated Legendre")
      .value("LagT", hp::Measure::LagT, "e^{−(t−s)/θ}/θ on (−∞, t]: Laguerre")
      .value("FouT", hp::Measure::FouT, "uniform on [t − θ, t]: Fourier");
  m.def("measure_names", &hp::measure_names, "The measure names: legs, legt, lagt, fout.");
  m.def(
      "measure_name", [](const py::object& h) { return hp::measure_name(to_measure(h)); },
      py::arg("measure"));
  m.def("parse_measure", &hp::parse_measure, py::arg("name"));
  m.def(
      "time_invariant", [](const py::object& h) { return hp::time_invariant(to_measure(h)); },
      py::arg("measure"), "False for LegS (A/t, B/t), True for the others (constant A, B).");
  m.def(
      "max_N", [](const py::object& h) { return hp::max_N(to_measure(h)); }, py::arg("measure"),
      "The largest N accepted: 4096 for LegS (O(N) steps), 1024 for the others (dense steps).");

  py::class_<hp::Spec>(m, "Spec",
                       "A HiPPO memory: measure, number of coefficients N, time scale θ.")
      .def(py::init([](const py::object& measure, int N, double theta) {
             hp::Spec s{to_measure(measure), N, theta};
             hp::validate(s);
             return s;
           }),
           py::arg("measure") = "legs", py::arg("N") = 32, py::arg("theta") = 1.0,
           "measure: a name or Measure; N in [1, max_N(measure)]; theta (s) finite and > 0:\n"
           "the window of LegT and FouT, the decay time of LagT, unused by LegS. Invalid values\n"
           "raise ssmlab.Error.")
      .def_readonly("measure", &hp::Spec::measure)
      .def_readonly("N", &hp::Spec::N)
      .def_readonly("theta", &hp::Spec::theta, "seconds")
      .def("__repr__", [](const hp::Spec& s) {
        return "<ssmlab.hippo.Spec " + hp::measure_name(s.measure) + " N=" + std::to_string(s.N) +
               (s.measure == hp::Measure::LegS ? std::string() : " theta=" + ssm::fmt(s.theta)) +
               ">";
      });

  py::class_<hp::Stepping>(m, "Stepping",
                           "How the ODE becomes a recurrence. LegS: GBT steps (H5) with α from the "
                           "method (euler 0, bilinear ½, backward-euler 1, gbt alpha); the LTI "
                           "measures: any stage-2 method (D1–D6).")
      .def(py::init([](const py::object& method, double alpha, bool dense) {
             return hp::Stepping{to_method(method), alpha, dense};
           }),
           py::arg("method") = "bilinear", py::arg("alpha") = 0.5, py::arg("dense") = false,
           "method: a name or ssmlab.Method; alpha: GBT's α in [0, 1]; dense: LegS with the\n"
           "O(N²) reference step instead of the O(N) one.")
      .def_readonly("method", &hp::Stepping::method)
      .def_readonly("alpha", &hp::Stepping::alpha)
      .def_readonly("dense", &hp::Stepping::dense);

  // ---- The matrices.
  m.def("legs", &hp::legs, py::arg("N"),
        "(A (N, N), B (N,)) of HiPPO-LegS (H1): A_nk = −√(2n+1)√(2k+1) (n > k), −(n+1) (n = k),\n"
        "0 (n < k); B_n = √(2n+1). N in [1, 4096]. O(N²).");
  m.def("legt", &hp::legt, py::arg("N"), py::arg("theta"),
        "(A, B) of HiPPO-LegT, window θ (s): A_nk = −(b_n b_k/θ)·(1 if k ≤ n, (−1)^{k−n} if\n"
        "k > n), B_n = b_n/θ, b_n = √(2n+1). N in [1, 1024].");
  m.def("lagt", &hp::lagt, py::arg("N"), py::arg("theta"),
        "(A, B) of HiPPO-LagT, decay time θ (s): A_nk = −1/θ (k ≤ n), 0 (k > n); B_n = 1/θ.");
  m.def("fout", &hp::fout, py::arg("N"), py::arg("theta"),
        "(A, B) of HiPPO-FouT, window θ (s): A = (D − 2 e eᵀ)/θ, B = 2e/θ, e = (1, 0, √2, 0, √2,\n"
        "…), D the derivative in the basis 1, √2 sin 2πjz, √2 cos 2πjz.");
  m.def("transition", &hp::transition, py::arg("spec"),
        "(A, B) of spec's measure (for LegS the 1/t factor is left to the steps).");

  // ---- The LegS steps.
  m.def(
      "legs_step_dense",
      [](const py::object& A, const py::object& B, const py::object& c, double u, double k,
         double alpha) {
        ssm::Vec x = to_vec<double>(c, "c");
        hp::legs_step_dense(to_mat(A, "A"), to_vec<double>(B, "B"), x, u, k, alpha);
        return to_numpy<double>(x);
      },
      py::arg("A"), py::arg("B"), py::arg("c"), py::arg("u"), py::arg("k"), py::arg("alpha") = 0.5,
      "One LegS step (H5): the new c = (I − αA/k)⁻¹ [(I + (1−α)A/k) c + (1/k) B u], by a dense\n"
      "mat-vec and forward substitution, O(N²). A, B from legs(N); c (N,) is not modified;\n"
      "k ≥ 1 the step number (t_k/Δ); α in [0, 1] (½ bilinear).");
  m.def(
      "legs_step_fast",
      [](const py::object& B, const py::object& c, double u, double k, double alpha) {
        ssm::Vec x = to_vec<double>(c, "c");
        hp::legs_step_fast(to_vec<double>(B, "B"), x, u, k, alpha);
        return to_numpy<double>(x);
      },
      py::arg("B"), py::arg("c"), py::arg("u"), py::arg("k"), py::arg("alpha") = 0.5,
      "The same step in O(N) (H6): running prefix sums S_n = Σ_{j<n} b_j x_j of the old and the\n"
      "new state replace the mat-vec and the triangular solve. Needs only B (b_n = √(2n+1)).");

  // ---- Online projection.
  py::class_<hp::Online>(m, "Online",
                         "The streaming memory: push one sample at a time. After sample k, c "
                         "describes u on the measure's window at t_k = kΔ (LegS: c = u_0·e_0 "
                         "after the first sample; the LTI measures start from 0).")
      .def(py::init([](const hp::Spec& spec, double dt, const py::object& st) {
             return std::make_unique<hp::Online>(spec, to_stepping(st), dt);
           }),
           py::arg("spec"), py::arg("dt"), py::arg("stepping") = py::none(),
           "dt: the sample spacing Δ (s), finite and > 0; stepping: a Stepping (default "
           "bilinear).")
      .def("push", &hp::Online::push, py::arg("u"),
           "Consumes the next sample (the first call is u_0). O(N) for LegS, O(N²) for the "
           "others. Raises ssmlab.Error when a coefficient becomes non-finite.")
      .def_property_readonly(
          "c", [](const hp::Online& o) { return to_numpy<double>(o.c()); }, "c (N,), a copy")
      .def_property_readonly("k", &hp::Online::k, "index of the last sample pushed (−1 before)")
      .def_property_readonly("t", &hp::Online::t, "its time t_k = kΔ (s)");

  m.def(
      "online",
      [](const py::object& u, double dt, const hp::Spec& spec, const py::object& st) {
        return hp::online(to_std(u, "u"), dt, spec, to_stepping(st));
      },
      py::arg("u"), py::arg("dt"), py::arg("spec"), py::arg("stepping") = py::none(),
      "The coefficients after every sample of u (L,): column k is c(t_k), shape (N, L).\n"
      "O(N L) for LegS, O(N² L + N³) for the others.");
  m.def(
      "online_at",
      [](const py::object& u, double dt, const hp::Spec& spec,
         const std::vector<std::size_t>& steps, const py::object& st) {
        return hp::online_at(to_std(u, "u"), dt, spec, to_stepping(st), steps);
      },
      py::arg("u"), py::arg("dt"), py::arg("spec"), py::arg("steps"),
      py::arg("stepping") = py::none(),
      "Only after the given sample indices (each < L, any order): shape (N, len(steps)).");

  // ---- Basis, reconstruction, ground truth.
  m.def("window", &hp::window, py::arg("spec"), py::arg("t"),
        "(lo, hi) (s): the part of the past the state at time t describes: [0, t] (LegS),\n"
        "[t − θ, t] (LegT, FouT), [max(0, t − 8θ), t] (LagT).");
  m.def(
      "basis",
      [](const hp::Spec& spec, double t, const py::object& points) {
        return hp::basis(spec, t, to_std(points, "points"));
      },
      py::arg("spec"), py::arg("t"), py::arg("points"),
      "G (S, N), G[i, n] = g_n(s_i) for the state at time t (H2 for LegS: √(2n+1) P_n(2s/t − 1)).");
  m.def(
      "reconstruct",
      [](const hp::Spec& spec, const py::object& c, double t, const py::object& points) {
        return to_numpy_std(
            hp::reconstruct(spec, to_vec<double>(c, "c"), t, to_std(points, "points")));
      },
      py::arg("spec"), py::arg("c"), py::arg("t"), py::arg("points"),
      "(H4) u(s_i) ≈ Σ_n c_n g_n(s_i) from the state c (N,) at time t: (S,). O(S N).");
  m.def(
      "project",
      [](const hp::Spec& spec, double t, const py::object& u, std::optional<double> breaks) {
        return hp::project(spec, t, to_truth(u, breaks));
      },
      py::arg("spec"), py::arg("t"), py::arg("u"), py::arg("breaks") = py::none(),
      "(H3) the exact c_n(t) = ∫ u(s) g_n(s) dμ_t(s) (u = 0 before 0) by composite Gauss–Legendre\n"
      "quadrature (20 nodes per panel). u: a callable u(s) or an ssmlab.Signal. breaks (s): u is\n"
      "smooth between its multiples (panels end there); default the Signal's Δ, or 0 (smooth)\n"
      "for a callable. A Python callable is called ~20 times per panel (> 20 000 calls).");
  m.def(
      "weighted_mse",
      [](const hp::Spec& spec, const py::object& c, double t, const py::object& u,
         std::optional<double> breaks) {
        return hp::weighted_mse(spec, to_vec<double>(c, "c"), t, to_truth(u, breaks));
      },
      py::arg("spec"), py::arg("c"), py::arg("t"), py::arg("u"), py::arg("breaks") = py::none(),
      "∫ (u − Σ c_n g_n)² dμ_t / ∫ u² dμ_t by the same quadrature as project (dimensionless);\n"
      "the exact projection minimizes it over all c.");
}

}  // namespace ssmpy
