// python/bind_continuous.cpp — stage 1 (ssm/continuous.hpp): the model x' = Ax + Bu,
// y = Cx + Du, the example models and the two ground-truth simulations (exact held-input (D5)
// and the adaptive ODE solve).
#include "bindings.hpp"
#include "ssm/continuous.hpp"

namespace ssmpy {

namespace {

ssm::Vec opt_vec(const py::object& x0, const char* name) {
  return x0.is_none() ? ssm::Vec() : to_vec<double>(x0, name);
}

std::vector<double> to_std(const py::handle& u, const char* name) {
  const ssm::Vec v = to_vec<double>(u, name);
  return {v.data(), v.data() + v.size()};
}

}  // namespace

void bind_continuous(py::module_& m) {
  py::class_<ssm::Model>(m, "Model",
                         "A SISO continuous model x' = Ax + Bu, y = Cx + Du with N states (C).")
      .def(py::init<ssm::Mat, ssm::Vec, ssm::RowVec, double, std::string>(), py::arg("A"),
           py::arg("B"), py::arg("C"), py::arg("D") = 0.0, py::arg("name") = "model",
           "A (N, N), B (N,), C (N,), D scalar; validated (shapes, finite, 1 ≤ N ≤ 4096).")
      .def_property_readonly("A", &ssm::Model::A, "(N, N)")
      .def_property_readonly("B", &ssm::Model::B, "(N,)")
      .def_property_readonly(
          "C", [](const ssm::Model& s) { return ssm::Vec(s.C().transpose()); }, "(N,)")
      .def_property_readonly("D", &ssm::Model::D)
      .def_property_readonly("N", &ssm::Model::N)
      .def_property_readonly("name", &ssm::Model::name)
      .def("eigenvalues", &ssm::Model::eigenvalues, "Eigenvalues of A, complex (N,), unordered.")
      .def("is_stable", &ssm::Model::is_stable, "max Re λ(A) < 0: the state forgets.")
      .def("__repr__", [](const ssm::Model& s) {
        return "<ssmlab.Model '" + s.name() + "' N=" + std::to_string(s.N()) + ">";
      });

  m.def("damped_oscillator", &ssm::damped_oscillator, py::arg("omega") = 6.283185307179586,
        py::arg("zeta") = 0.1,
        "Damped oscillator, N = 2: x1 position, x2 velocity, y = x1;\n"
        "x1' = x2, x2' = −ω² x1 − 2ζω x2 + ω² u (ω in rad/s, unit DC gain).");
  m.def("random_stable", &ssm::random_stable, py::arg("N"), py::arg("seed") = 1,
        py::arg("decay_min") = 0.5, py::arg("decay_max") = 5.0, py::arg("freq_max") = 10.0,
        "A random stable model: eigenvalues −a ± iω, a log-uniform in [decay_min, decay_max],\n"
        "ω in [0, freq_max] rad/s; the same seed gives the same model.");
  m.def("stiff_model", &ssm::stiff_model, py::arg("N"), py::arg("seed") = 1,
        py::arg("stiffness") = 1000.0,
        "Real eigenvalues spread log-uniformly over [−stiffness, −1]: forward Euler diverges\n"
        "once Δ > 2 / stiffness (D1).");
  m.def("example_models", &ssm::example_models, "The example model names.");
  m.def("example_model", &ssm::example_model, py::arg("name"), py::arg("N") = 4,
        py::arg("seed") = 1, "A named example model: 'oscillator', 'random' or 'stiff'.");

  py::class_<ssm::Trajectory>(m, "Trajectory", "Sampled trajectory: t (L,), x (N, L), y (L,).")
      .def_property_readonly("t",
                             [](const ssm::Trajectory& tr) {
                               return py::array_t<double>(static_cast<py::ssize_t>(tr.t.size()),
                                                          tr.t.data());
                             })
      .def_readonly("x", &ssm::Trajectory::x)
      .def_readonly("y", &ssm::Trajectory::y);

  m.def(
      "simulate_held",
      [](const ssm::Model& md, const py::object& u, double dt, const py::object& x0) {
        return ssm::simulate_held(md, to_std(u, "u"), dt, opt_vec(x0, "x0"));
      },
      py::arg("model"), py::arg("u"), py::arg("dt"), py::arg("x0") = py::none(),
      "Exact trajectory (C1) for u held at u_k on (t_{k−1}, t_k], t_k = kΔ, from x(−Δ) = x0\n"
      "(zero when None): one exp of the augmented matrix Δ·[[A, B], [0, 0]] (D5), then L\n"
      "mat-vecs. ZOH reproduces it to rounding. O(N³ + N² L).");
  m.def(
      "free_response",
      [](const ssm::Model& md, const py::object& x0, double dt, std::size_t L) {
        return ssm::free_response(md, to_vec<double>(x0, "x0"), dt, L);
      },
      py::arg("model"), py::arg("x0"), py::arg("dt"), py::arg("L"),
      "Free response x(t_k) = e^{A t_k} x0, t_k = kΔ, each sample its own exp. O(N³ L).");
  m.def(
      "simulate_ode",
      [](const ssm::Model& md, const std::function<double(double)>& u, double dt, std::size_t L,
         const py::object& x0, double abs_tol, double rel_tol) {
        return ssm::simulate_ode(md, u, dt, L, opt_vec(x0, "x0"),
                                 ssm::OdeOptions{abs_tol, rel_tol});
      },
      py::arg("model"), py::arg("u"), py::arg("dt"), py::arg("L"), py::arg("x0") = py::none(),
      py::arg("abs_tol") = 1e-12, py::arg("rel_tol") = 1e-12,
      "Adaptive ODE solve (Dormand–Prince 5(4), dense output) of x' = Ax + Bu(t) for a Python\n"
      "callable u(t) (e.g. Signal.at), sampled at t_k = kΔ, k < L, from x(0) = x0.");
  m.def(
      "simulate_ode_held",
      [](const ssm::Model& md, const py::object& u, double dt, const py::object& x0, double abs_tol,
         double rel_tol) {
        return ssm::simulate_ode_held(md, to_std(u, "u"), dt, opt_vec(x0, "x0"),
                                      ssm::OdeOptions{abs_tol, rel_tol});
      },
      py::arg("model"), py::arg("u"), py::arg("dt"), py::arg("x0") = py::none(),
      py::arg("abs_tol") = 1e-12, py::arg("rel_tol") = 1e-12,
      "The ODE solve for the held input of simulate_held, interval by interval: an independent\n"
      "check of simulate_held.");
}

}  // namespace ssmpy
