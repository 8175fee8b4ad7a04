// python/bind_signal.cpp — input signals (ssm/signal.hpp): generators and CSV/WAV files.
#include "bindings.hpp"
#include "ssm/signal.hpp"

namespace ssmpy {

void bind_signal(py::module_& m) {
  py::class_<ssm::Signal>(
      m, "Signal", "Samples u_k = u(k·Δ), k = 0 … L−1, and u(t) when it is known analytically.")
      .def_readonly("name", &ssm::Signal::name, "generator spec or file name")
      .def_readonly("dt", &ssm::Signal::dt, "sample spacing Δ (s)")
      .def_property_readonly(
          "samples",
          [](const ssm::Signal& s) {
            return py::array_t<double>(static_cast<py::ssize_t>(s.samples.size()),
                                       s.samples.data());
          },
          "the samples u_k, float64 (L,)")
      .def_property_readonly("held", &ssm::Signal::held,
                             "True when u(t) between samples is the held sample (files, noise)")
      .def(
          "at",
          [](const ssm::Signal& s, const Arr<double>& t) -> py::object {
            if (t.ndim() == 0) return py::float_(s.at(*t.data()));
            py::array_t<double> u(std::vector<py::ssize_t>(t.shape(), t.shape() + t.ndim()));
            for (py::ssize_t i = 0; i < t.size(); ++i) u.mutable_data()[i] = s.at(t.data()[i]);
            return u;
          },
          py::arg("t"),
          "u(t) (s): the analytic function when known, else the held sample u_{⌈t/Δ⌉}. "
          "Accepts a number or an array of times.")
      .def("__len__", &ssm::Signal::size)
      .def("__repr__", [](const ssm::Signal& s) {
        return "<ssmlab.Signal '" + s.name + "' L=" + std::to_string(s.size()) +
               " dt=" + ssm::fmt(s.dt) + ">";
      });

  m.def("signal_generators", &ssm::signal_generators,
        "The generator names accepted by make_signal: sine, sines, chirp, step, square, impulse, "
        "noise, walk.");
  m.def("make_signal", &ssm::make_signal, py::arg("spec"), py::arg("L"), py::arg("dt"),
        py::arg("seed") = 1,
        "A signal from a spec: a generator with optional parameters ('sine', 'sine:f=2,amp=0.5',\n"
        "'chirp:f0=0.5,f1=8', 'step:t0=1') or a file ('x.csv', 'x.csv:name', 'x.csv:3', 'x.wav').\n"
        "L samples with spacing dt (s); for files the first L (all when L = 0) at the file's\n"
        "spacing. seed drives noise and walk. Bad specs and bad data raise ssmlab.Error.");
  m.def("read_csv_column", &ssm::read_csv_column, py::arg("path"), py::arg("column") = "",
        "One column of a CSV file (by header name or 1-based index; the first when empty).");
}

}  // namespace ssmpy
