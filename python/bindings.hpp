// python/bindings.hpp — what the binding files of the ssmlab Python module share.
//
// The module is a thin layer: every function calls the library (lib/) and converts NumPy arrays
// in and out; no formula lives here. Conventions, for every stage:
//  * arrays in: anything NumPy can turn into float64 (lists too); arrays out: new NumPy arrays.
//  * precision: functions with a float path (stage 3's recurrence, stage 4's convolution, stage
//    7's scans) take float32 when given float32 arrays (or a DiscreteSSMFloat) and float64
//    otherwise; classes templated on the precision come in two names (FFTConv64/FFTConv32,
//    s4.Layer64/Layer32, mamba.Model64/Model32).
//  * channels: a 1-D array is one signal of length L; a 2-D array (H, L) is H signals, one per
//    row (the library's Signals<T>); outputs keep the input's number of dimensions.
//  * errors: ssm::Error (and the checks below) become ssmlab.Error, a subclass of ValueError,
//    carrying the library's one-line message.
//
// Adding a stage: write python/bind_<module>.cpp with void bind_<module>(py::module_&), declare
// it here, call it from ssmlab_py.cpp and list the file in python/CMakeLists.txt.
#pragma once

#include <pybind11/eigen.h>
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>

#include "ssm/core.hpp"
#include "ssm/discretize.hpp"

namespace ssmpy {

namespace py = pybind11;

// A C-contiguous array of T converted from anything array-like (NumPy casts as needed).
template <class T>
using Arr = py::array_t<T, py::array::c_style | py::array::forcecast>;

// "(3, 4)" for error messages.
inline std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

// True when obj is a NumPy array (or scalar) of dtype float32: such inputs take the float path.
inline bool is_float32(const py::handle& obj) {
  if (!py::isinstance<py::array>(obj)) return false;
  return py::reinterpret_borrow<py::array>(obj).dtype().is(py::dtype::of<float>());
}

// Signals (H, L) from a 1-D (one channel) or 2-D (H, L) array; `name` names it in errors.
// one_d (when given) receives whether the input was 1-D, so the output can match it.
template <class T>
ssm::Signals<T> to_signals(const py::handle& obj, const char* name, bool* one_d = nullptr) {
  const auto a = Arr<T>::ensure(obj);
  if (!a) throw ssm::Error(std::string(name) + " must be an array of numbers");
  ssm::require(a.ndim() == 1 || a.ndim() == 2,
               std::string(name) + " must be 1-D (L,) or 2-D (H, L), got shape " + shape_str(a));
  const Eigen::Index H = a.ndim() == 1 ? 1 : a.shape(0);
  const Eigen::Index L = a.ndim() == 1 ? a.shape(0) : a.shape(1);
  ssm::require(H >= 1 && L >= 1, std::string(name) + " is empty: shape " + shape_str(a));
  if (one_d) *one_d = a.ndim() == 1;
  return Eigen::Map<const ssm::Signals<T>>(a.data(), H, L);
}

// The NumPy array of Signals (H, L): 1-D (L,) when `one_d`, else 2-D.
template <class T>
py::array_t<T> from_signals(const ssm::Signals<T>& Y, bool one_d) {
  if (one_d) {
    py::array_t<T> out(Y.cols());
    std::copy(Y.data(), Y.data() + Y.size(), out.mutable_data());
    return out;
  }
  py::array_t<T> out({Y.rows(), Y.cols()});
  std::copy(Y.data(), Y.data() + Y.size(), out.mutable_data());
  return out;
}

// A 1-D vector of T from anything array-like; `name` names it in errors.
template <class T>
Eigen::Matrix<T, Eigen::Dynamic, 1> to_vec(const py::handle& obj, const char* name) {
  const auto a = Arr<T>::ensure(obj);
  if (!a) throw ssm::Error(std::string(name) + " must be an array of numbers");
  ssm::require(a.ndim() == 1, std::string(name) + " must be 1-D, got shape " + shape_str(a));
  return Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>(a.data(), a.shape(0));
}

template <class T>
py::array_t<T> to_numpy(const Eigen::Matrix<T, Eigen::Dynamic, 1>& v) {
  py::array_t<T> out(v.size());
  std::copy(v.data(), v.data() + v.size(), out.mutable_data());
  return out;
}

// A method given as an ssmlab.Method or as its name ("zoh", "backward-euler", …); an unknown
// name raises ssmlab.Error listing the valid ones. Defined in bind_discretize.cpp.
ssm::Method to_method(const py::handle& h);

void bind_signal(py::module_& m);
void bind_continuous(py::module_& m);
void bind_discretize(py::module_& m);
void bind_recurrent(py::module_& m);
void bind_convolution(py::module_& m);
void bind_hippo(py::module_& m);  // the submodule ssmlab.hippo
void bind_s4(py::module_& m);     // the submodule ssmlab.s4
void bind_mamba(py::module_& m);  // the submodule ssmlab.mamba
void bind_ssd(py::module_& m);    // the submodule ssmlab.ssd
void bind_grad(py::module_& m);   // the submodule ssmlab.grad
void bind_train(py::module_& m);  // the submodule ssmlab.train
void bind_s4_grad(py::module_& grad);  // S4D backward into ssmlab.grad (bind_s4.cpp)

}  // namespace ssmpy
