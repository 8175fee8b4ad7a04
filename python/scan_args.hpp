// python/scan_args.hpp — the selective scan's keyword arguments as library arrays, shared by the
// bindings of the scan (bind_mamba.cpp, ssmlab.mamba) and of its backward (bind_grad.cpp,
// ssmlab.grad): every array's shape is checked here, so that a mistake is named by its shape
// (the library checks only sizes). Shapes as in Mamba: u, delta, z (batch, D, L); A (D, N);
// B, C (batch, N, L); D, delta_bias (D,); h0 (batch, D, N); without the batch axis, one sequence.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "bindings.hpp"
#include "ssm/selective.hpp"

namespace ssmpy {
namespace scanargs {

using Shape = std::vector<py::ssize_t>;

inline std::string shape_text(const Shape& s) {
  std::string t = "(";
  for (std::size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
  return t + (s.size() == 1 ? ",)" : ")");
}

inline Shape shape_of(const py::array& a) {
  return Shape(a.shape(), a.shape() + a.ndim());
}

inline ssm::ScanDiscretization to_disc(const py::handle& h) {
  if (py::isinstance<ssm::ScanDiscretization>(h)) return h.cast<ssm::ScanDiscretization>();
  if (py::isinstance<py::str>(h)) {
    const auto s = h.cast<std::string>();
    if (s == "mamba") return ssm::ScanDiscretization::Mamba;
    if (s == "zoh") return ssm::ScanDiscretization::ZOH;
    throw ssm::Error("unknown discretization '" + s + "' (valid: mamba, zoh)");
  }
  throw ssm::Error(
      "discretization must be a name (mamba, zoh) or an ssmlab.mamba.Discretization, got " +
      std::string(py::str(py::type::of(h))));
}

inline const char* disc_name(ssm::ScanDiscretization d) {
  return d == ssm::ScanDiscretization::ZOH ? "zoh" : "mamba";
}

// float32 or float64 from a NumPy dtype-like (np.float32, "float32", …).
inline bool wants_float32(const py::object& dtype) {
  const py::dtype dt = py::dtype::from_args(dtype);
  if (dt.is(py::dtype::of<float>())) return true;
  if (dt.is(py::dtype::of<double>())) return false;
  throw ssm::Error("dtype must be float32 or float64, got " + std::string(py::str(dtype)));
}

// Copies anything array-like into `dst` (its capacity reused), checking that it has exactly the
// shape `want` (`what` spells it with letters, "(batch, N, L)"). `name` names it in errors.
template <class T>
void take_into(std::vector<T>& dst, const py::handle& obj, const char* name, const Shape& want,
               const std::string& what) {
  const auto a = Arr<T>::ensure(obj);
  if (!a) throw ssm::Error(std::string(name) + " must be an array of numbers");
  if (shape_of(a) != want)
    throw ssm::Error(std::string(name) + " must have shape " + what + " = " + shape_text(want) +
                     ", got " + shape_str(a));
  dst.assign(a.data(), a.data() + a.size());
}

template <class T>
std::vector<T> take(const py::handle& obj, const char* name, const Shape& want,
                    const std::string& what) {
  std::vector<T> v;
  take_into(v, obj, name, want, what);
  return v;
}

// A per-channel vector (D,): None (empty: the library's "none"), a number (every channel) or an
// array of D numbers.
template <class T>
std::vector<T> per_channel(const py::object& obj, const char* name, py::ssize_t D) {
  if (obj.is_none()) return {};
  const auto a = Arr<T>::ensure(obj);
  if (!a) throw ssm::Error(std::string(name) + " must be None, a number or an array of D numbers");
  if (a.ndim() == 0) return std::vector<T>(static_cast<std::size_t>(D), *a.data());
  return take<T>(obj, name, {D}, "(D,)");
}

template <class T>
py::array_t<T> to_array(const std::vector<T>& v, const Shape& shape) {
  py::array_t<T> out(shape);
  std::copy(v.begin(), v.end(), out.mutable_data());
  return out;
}

// A read-only property returning the 1-D NumPy copy of a std::vector member.
template <class C, class T>
auto vector_property(std::vector<T> C::*member) {
  return [member](const C& obj) {
    const auto& v = obj.*member;
    return to_array<T>(v, {py::ssize_t(v.size())});
  };
}

// The keyword arguments every scan takes, as given.
struct ScanArgs {
  py::object u, delta, A, B, C, D, z, delta_bias, h0, disc;
  bool softplus = true;
};

// Library arrays from the arguments, with the shapes checked here so that a mistake is named by
// its shape (the library checks only sizes).
template <class T>
struct Scan {
  ssm::ScanParams<T> p;
  ssm::ScanInputs<T> in;
  bool batched = true;
  py::ssize_t b = 1, D = 0, L = 0, N = 0;

  Shape bdl() const { return batched ? Shape{b, D, L} : Shape{D, L}; }
  Shape bnl() const { return batched ? Shape{b, N, L} : Shape{N, L}; }
  Shape bdn() const { return batched ? Shape{b, D, N} : Shape{D, N}; }
  std::string bdl_s() const { return batched ? "(batch, D, L)" : "(D, L)"; }
  std::string bnl_s() const { return batched ? "(batch, N, L)" : "(N, L)"; }
  std::string bdn_s() const { return batched ? "(batch, D, N)" : "(D, N)"; }
};

template <class T>
void make_scan(const ScanArgs& a, Scan<T>& s) {
  {
    const auto u = Arr<T>::ensure(a.u);
    if (!u) throw ssm::Error("u must be an array of numbers");
    ssm::require(
        u.ndim() == 3 || u.ndim() == 2,
        "u must be 3-D (batch, D, L) or 2-D (D, L) for one sequence, got shape " + shape_str(u));
    s.batched = u.ndim() == 3;
    s.b = s.batched ? u.shape(0) : 1;
    s.D = u.shape(u.ndim() - 2);
    s.L = u.shape(u.ndim() - 1);
    const auto A = Arr<T>::ensure(a.A);
    if (!A) throw ssm::Error("A must be an array of numbers");
    ssm::require(A.ndim() == 2 && A.shape(0) == s.D,
                 "A must have shape (D, N) with D = " + std::to_string(s.D) +
                     " (from u), got shape " + shape_str(A));
    s.N = A.shape(1);
  }
  s.p.D = static_cast<int>(std::min<py::ssize_t>(s.D, 1 << 30));
  s.p.N = static_cast<int>(std::min<py::ssize_t>(s.N, 1 << 30));
  take_into(s.p.A, a.A, "A", {s.D, s.N}, "(D, N)");
  s.p.D_skip = per_channel<T>(a.D, "D", s.D);
  s.p.delta_bias = per_channel<T>(a.delta_bias, "delta_bias", s.D);
  s.p.delta_softplus = a.softplus;
  s.p.disc = to_disc(a.disc);
  s.in.batch = static_cast<int>(std::min<py::ssize_t>(s.b, 1 << 30));
  s.in.L = static_cast<int>(std::min<py::ssize_t>(s.L, py::ssize_t(1) << 30));
  take_into(s.in.u, a.u, "u", s.bdl(), s.bdl_s());
  take_into(s.in.delta, a.delta, "delta", s.bdl(), s.bdl_s() + " (the shape of u)");
  take_into(s.in.B, a.B, "B", s.bnl(), s.bnl_s());
  take_into(s.in.C, a.C, "C", s.bnl(), s.bnl_s());
  s.in.z.clear();
  if (!a.z.is_none()) take_into(s.in.z, a.z, "z", s.bdl(), s.bdl_s() + " (the shape of u)");
  s.in.h0.clear();
  if (!a.h0.is_none()) take_into(s.in.h0, a.h0, "h0", s.bdn(), s.bdn_s());
}

template <class T>
Scan<T> make_scan(const ScanArgs& a) {
  Scan<T> s;
  make_scan(a, s);
  return s;
}

}  // namespace scanargs
}  // namespace ssmpy
