// python/bind_recurrent.cpp — stage 3 (ssm/recurrent.hpp): the discretized model as a
// recurrence x_k = Ā x_{k−1} + B̄ u_k, y_k = C x_k + D u_k, in float64 (DiscreteSSM) and float32
// (DiscreteSSMFloat); whole sequences (unroll, unroll_channels) and one step at a time (Stepper).
#include "bindings.hpp"
#include "ssm/recurrent.hpp"

namespace ssmpy {

namespace {

template <class T>
void bind_precision(py::module_& m, const char* ssm_name, const char* stepper_name,
                    const char* dtype) {
  using S = ssm::DiscreteSSM<T>;
  py::class_<S>(m, ssm_name,
                (std::string("One discrete SISO channel (Ā, B̄, C, D) in ") + dtype +
                 ": x_k = Ā x_{k−1} + B̄ u_k, y_k = C x_k + D u_k.")
                    .c_str())
      .def_readonly("Ab", &S::Ab, "Ā (N, N)")
      .def_readonly("Bb", &S::Bb, "B̄ (N,)")
      .def_property_readonly(
          "C", [](const S& s) { return ssm::VecT<T>(s.C.transpose()); }, "(N,)")
      .def_readonly("D", &S::D)
      .def_property_readonly("N", &S::N)
      .def("__repr__", [ssm_name](const S& s) {
        return std::string("<ssmlab.") + ssm_name + " N=" + std::to_string(s.N()) + ">";
      });

  m.def(
      "unroll",
      [](const S& s, const py::object& u_obj, const py::object& x_start,
         bool return_states) -> py::object {
        const ssm::VecT<T> u = to_vec<T>(u_obj, "u");
        const ssm::VecT<T> x0 = x_start.is_none() ? ssm::VecT<T>() : to_vec<T>(x_start, "x_start");
        ssm::VecT<T> y(u.size());
        ssm::MatT<T> X;
        ssm::unroll<T>(s, u.data(), y.data(), static_cast<std::size_t>(u.size()), x0,
                       return_states ? &X : nullptr);
        if (!return_states) return to_numpy<T>(y);
        return py::make_tuple(to_numpy<T>(y), py::cast(X));
      },
      py::arg("ssm"), py::arg("u"), py::arg("x_start") = py::none(),
      py::arg("return_states") = false,
      "Runs the recurrence over u (L,) from x_{−1} = x_start (zero when None): y (L,), or\n"
      "(y, X) with every state x_k as a column of X (N, L) when return_states. The precision\n"
      "is the channel's (u is cast to it). O(N² L).");

  m.def(
      "unroll_channels",
      [](const std::vector<S>& channels, const py::object& U_obj, int threads) {
        bool one_d = false;
        const ssm::Signals<T> U = to_signals<T>(U_obj, "U", &one_d);
        ssm::Signals<T> Y;
        ssm::unroll_channels<T>(channels, U, Y, threads);
        return from_signals<T>(Y, one_d);
      },
      py::arg("channels"), py::arg("U"), py::arg("threads") = 1,
      "H independent channels: row h of Y (H, L) is channels[h] run on row h of U (H, L);\n"
      "one channel is shared by every row. threads = 0 uses all cores.");

  py::class_<ssm::Stepper<T>>(m, stepper_name,
                              "The streaming form: keeps the state x; step(u_k) returns y_k in "
                              "O(N²).")
      .def(py::init([](const S& s, const py::object& x_start) {
             return ssm::Stepper<T>(
                 s, x_start.is_none() ? ssm::VecT<T>() : to_vec<T>(x_start, "x_start"));
           }),
           py::arg("ssm"), py::arg("x_start") = py::none())
      .def("step", &ssm::Stepper<T>::step, py::arg("u"), "Feeds u_k, returns y_k.")
      .def_property_readonly(
          "state", [](const ssm::Stepper<T>& st) { return ssm::VecT<T>(st.state()); },
          "the current state x_k (N,)")
      .def(
          "reset",
          [](ssm::Stepper<T>& st, const py::object& x_start) {
            st.reset(x_start.is_none() ? ssm::VecT<T>() : to_vec<T>(x_start, "x_start"));
          },
          py::arg("x_start") = py::none(), "Back to x_{−1} = x_start (zero when None).");
}

}  // namespace

void bind_recurrent(py::module_& m) {
  bind_precision<double>(m, "DiscreteSSM", "Stepper", "float64");
  bind_precision<float>(m, "DiscreteSSMFloat", "StepperFloat", "float32");

  m.def(
      "make_ssm",
      [](const ssm::Discretized& d, const ssm::RowVec& C, double D) {
        return ssm::make_ssm(d, C, D);
      },
      py::arg("discretized"), py::arg("C"), py::arg("D") = 0.0,
      "The channel (Ā, B̄, C, D) of a discretized model with output map C (N,), D.");
  m.def(
      "make_ssm",
      [](const ssm::Model& md, double dt, const py::object& method, double alpha) {
        return ssm::make_ssm(md, dt, to_method(method), alpha);
      },
      py::arg("model"), py::arg("dt"), py::arg("method") = "bilinear", py::arg("alpha") = 0.5,
      "Discretizes the model (method name or ssmlab.Method, D1–D6) and keeps its C, D.");
  m.def("to_float", &ssm::to_float, py::arg("ssm"), "The same channel rounded to float32.");
  m.def("resolve_threads", &ssm::resolve_threads, py::arg("threads"),
        "0 → all cores; otherwise clamped to [1, 1024].");
}

}  // namespace ssmpy
