// python/bind_discretize.cpp — stage 2 (ssm/discretize.hpp): Ā, B̄ by forward Euler (D1),
// backward Euler (D2), bilinear (D3), GBT(α) (D4), ZOH (D5) and Mamba's ZOH (D6); stability
// thresholds and the error sweeps behind the convergence orders.
#include "bindings.hpp"
#include "ssm/discretize.hpp"

namespace ssmpy {

ssm::Method to_method(const py::handle& h) {
  if (py::isinstance<ssm::Method>(h)) return h.cast<ssm::Method>();
  if (py::isinstance<py::str>(h)) return ssm::parse_method(h.cast<std::string>());
  throw ssm::Error("method must be a name (" +
                   [] {
                     std::string s;
                     for (const auto& n : ssm::method_names()) s += (s.empty() ? "" : ", ") + n;
                     return s;
                   }() +
                   ") or an ssmlab.Method, got " + std::string(py::str(py::type::of(h))));
}

void bind_discretize(py::module_& m) {
  py::enum_<ssm::Method>(m, "Method",
                         "Discretization methods (D1–D6); functions also accept "
                         "their names: 'euler', 'backward-euler', 'bilinear', "
                         "'zoh', 'gbt', 'mamba-zoh'.")
      .value("Euler", ssm::Method::Euler, "forward Euler (D1)")
      .value("BackwardEuler", ssm::Method::BackwardEuler, "backward Euler (D2)")
      .value("Bilinear", ssm::Method::Bilinear, "bilinear / Tustin (D3)")
      .value("ZOH", ssm::Method::ZOH, "zero-order hold (D5)")
      .value("GBT", ssm::Method::GBT, "generalized bilinear transform GBT(α) (D4)")
      .value("MambaZOH", ssm::Method::MambaZOH, "Mamba's Ā = e^{ΔA}, B̄ = ΔB (D6)");
  m.def("method_names", &ssm::method_names, "The method names: euler, backward-euler, …");
  m.def(
      "method_name", [](const py::object& h) { return ssm::method_name(to_method(h)); },
      py::arg("method"));
  m.def("parse_method", &ssm::parse_method, py::arg("name"));
  m.def(
      "free_response_order",
      [](const py::object& h, double alpha) {
        return ssm::free_response_order(to_method(h), alpha);
      },
      py::arg("method"), py::arg("alpha") = 0.5,
      "Global order of accuracy on a free response (0 = exact).");

  py::class_<ssm::Discretized>(m, "Discretized", "Ā (N, N), B̄ (N,) of a model with step dt.")
      .def_readonly("Ab", &ssm::Discretized::Ab, "Ā (N, N)")
      .def_readonly("Bb", &ssm::Discretized::Bb, "B̄ (N,)")
      .def_readonly("dt", &ssm::Discretized::dt)
      .def_readonly("method", &ssm::Discretized::method)
      .def_readonly("alpha", &ssm::Discretized::alpha, "GBT's α (meaningful for GBT only)");

  const char* disc_doc =
      "Ā, B̄ of (A, B) with step dt by `method` (a name or ssmlab.Method): D1–D6. alpha is\n"
      "GBT's α in [0, 1]. Raises ssmlab.Error for dt ≤ 0, α outside [0, 1] or a singular\n"
      "I − αΔA. O(N³).";
  m.def(
      "discretize",
      [](const ssm::Model& md, double dt, const py::object& h, double alpha) {
        return ssm::discretize(md, dt, to_method(h), alpha);
      },
      py::arg("model"), py::arg("dt"), py::arg("method"), py::arg("alpha") = 0.5, disc_doc);
  m.def(
      "discretize",
      [](const ssm::Mat& A, const ssm::Vec& B, double dt, const py::object& h, double alpha) {
        return ssm::discretize(A, B, dt, to_method(h), alpha);
      },
      py::arg("A"), py::arg("B"), py::arg("dt"), py::arg("method"), py::arg("alpha") = 0.5,
      disc_doc);

  m.def("forward_euler_threshold", &ssm::forward_euler_threshold, py::arg("model"),
        "The largest Δ for which forward Euler is stable: min over Re λ < 0 of −2 Re λ / |λ|².");
  m.def(
      "stability_threshold",
      [](const ssm::Model& md, const py::object& h, double lo, double hi, double alpha) {
        return ssm::stability_threshold(md, to_method(h), lo, hi, alpha);
      },
      py::arg("model"), py::arg("method"), py::arg("lo"), py::arg("hi"), py::arg("alpha") = 0.5,
      "The Δ in [lo, hi] where ρ(Ā(Δ)) crosses 1, by bisection; hi when stable up to hi.");

  py::class_<ssm::SweepPoint>(m, "SweepPoint",
                              "One Δ of a sweep: error against the exact "
                              "trajectory and spectral radius ρ(Ā).")
      .def_readonly("dt", &ssm::SweepPoint::dt)
      .def_readonly("error", &ssm::SweepPoint::error, "max_k ‖x_k − x(t_k)‖ / max_k ‖x(t_k)‖")
      .def_readonly("rho", &ssm::SweepPoint::rho, "spectral radius of Ā")
      .def_readonly("steps", &ssm::SweepPoint::steps)
      .def("__repr__", [](const ssm::SweepPoint& p) {
        return "<SweepPoint dt=" + ssm::fmt(p.dt) + " error=" + ssm::fmt(p.error) +
               " rho=" + ssm::fmt(p.rho) + ">";
      });

  m.def(
      "exact_free_states",
      [](const ssm::Model& md, const ssm::Vec& x0, double dt, std::size_t n) {
        return ssm::exact_free_states(md, x0, dt, n);
      },
      py::arg("model"), py::arg("x0"), py::arg("dt"), py::arg("n"),
      "x(t_k) = e^{A t_k} x0 for k = 0 … n as columns (N, n + 1).");
  m.def(
      "free_response_error",
      [](const ssm::Model& md, const ssm::Vec& x0, double T, double dt, const py::object& h,
         double alpha) { return ssm::free_response_error(md, x0, T, dt, to_method(h), alpha); },
      py::arg("model"), py::arg("x0"), py::arg("T"), py::arg("dt"), py::arg("method"),
      py::arg("alpha") = 0.5,
      "Free response over [0, T] by the discretized recurrence vs the exact e^{A t_k} x0.");
  m.def(
      "held_input_error",
      [](const ssm::Model& md, const std::vector<double>& v, double dc, int refine,
         const py::object& h,
         double alpha) { return ssm::held_input_error(md, v, dc, refine, to_method(h), alpha); },
      py::arg("model"), py::arg("v"), py::arg("dc"), py::arg("m"), py::arg("method"),
      py::arg("alpha") = 0.5,
      "Input held on a coarse grid Δc, model discretized with Δ = Δc / m, vs the exact.");
  m.def("fit_order", &ssm::fit_order, py::arg("points"),
        "Least-squares slope of log error vs log Δ over the asymptotic points (NaN if < 2).");
}

}  // namespace ssmpy
