// python/bind_convolution.cpp — stage 4 (ssm/convolution.hpp): the kernel
// K̄ = (CB̄, CĀB̄, CĀ²B̄, …) (K1), the direct causal convolution (O(L²)) and the FFT convolution
// with zero-padding to M ≥ 2L − 1 (K2), in float64 and float32.
#include <optional>

#include "bindings.hpp"
#include "ssm/convolution.hpp"

namespace ssmpy {

namespace {

ssm::Planning to_planning(const std::string& s) {
  if (s == "estimate") return ssm::Planning::Estimate;
  if (s == "measure") return ssm::Planning::Measure;
  throw ssm::Error("planning must be 'estimate' or 'measure', got '" + s + "'");
}

// D as the library wants it: none, one value for every channel, or one per channel (H).
template <class T>
std::optional<ssm::VecT<T>> to_D(const py::object& D, Eigen::Index H) {
  if (D.is_none()) return std::nullopt;
  const auto a = Arr<T>::ensure(D);
  if (!a) throw ssm::Error("D must be a number or an array of H numbers");
  if (a.ndim() == 0) return ssm::VecT<T>::Constant(H, *a.data());
  ssm::VecT<T> d = to_vec<T>(D, "D");
  ssm::require(d.size() == H, "D must have H = " + std::to_string(H) + " entries, got " +
                                  std::to_string(d.size()));
  return d;
}

template <class T>
py::array_t<T> conv_direct(const py::object& k_obj, const py::object& u_obj, double D) {
  const ssm::VecT<T> k = to_vec<T>(k_obj, "k"), u = to_vec<T>(u_obj, "u");
  ssm::require(k.size() == u.size(),
               "causal_conv_direct: k must have L = len(u) = " + std::to_string(u.size()) +
                   " entries, got " + std::to_string(k.size()));
  ssm::VecT<T> y(u.size());
  ssm::causal_conv_direct<T>(k.data(), u.data(), y.data(), static_cast<std::size_t>(u.size()),
                             static_cast<T>(D));
  return to_numpy<T>(y);
}

template <class T>
py::array_t<T> conv_fft(const ssm::FFTConv<T>& c, const py::object& K_obj, const py::object& U_obj,
                        int threads, const py::object& D_obj) {
  bool one_d = false;
  const ssm::Signals<T> K = to_signals<T>(K_obj, "K");
  const ssm::Signals<T> U = to_signals<T>(U_obj, "U", &one_d);
  const auto D = to_D<T>(D_obj, U.rows());
  ssm::Signals<T> Y;
  c.convolve(K, U, Y, threads, D ? &*D : nullptr);
  return from_signals<T>(Y, one_d);
}

template <class T>
void bind_fftconv(py::module_& m, const char* name, const char* dtype) {
  using C = ssm::FFTConv<T>;
  using Spectra = typename C::Spectra;
  py::class_<C> cls(
      m, name,
      (std::string("Causal convolution of H channels of length L by FFT (K2) in ") + dtype +
       ": FFTW plans of size M = fft_size(2L − 1) made once, reused by "
       "every call.")
          .c_str());
  py::class_<Spectra>(cls, "Spectra",
                      "The kernels' FFTs (opaque): compute once with transform_kernels, apply "
                      "many times.")
      .def_readonly("H", &Spectra::H)
      .def_readonly("bins", &Spectra::bins);
  cls.def(py::init([](std::size_t L, const std::string& planning) {
            return std::make_unique<C>(L, to_planning(planning));
          }),
          py::arg("L"), py::arg("planning") = "estimate",
          "L in [1, 2^26]; planning 'estimate' (instant) or 'measure' (tens of ms, faster "
          "plans).")
      .def_property_readonly("length", &C::length, "L")
      .def_property_readonly("fft_length", &C::fft_length, "M ≥ 2L − 1 (no wrap-around, K2)")
      .def_property_readonly("bins", &C::bins, "M/2 + 1")
      .def(
          "transform_kernels",
          [](const C& c, const py::object& K, int threads) {
            return c.transform_kernels(to_signals<T>(K, "K"), threads);
          },
          py::arg("K"), py::arg("threads") = 1, "The FFTs of the kernels K (L,) or (H, L).")
      .def(
          "apply",
          [](const C& c, const Spectra& KF, const py::object& U_obj, int threads,
             const py::object& D_obj) {
            bool one_d = false;
            const ssm::Signals<T> U = to_signals<T>(U_obj, "U", &one_d);
            const auto D = to_D<T>(D_obj, U.rows());
            ssm::Signals<T> Y;
            c.apply(KF, U, Y, threads, D ? &*D : nullptr);
            return from_signals<T>(Y, one_d);
          },
          py::arg("spectra"), py::arg("U"), py::arg("threads") = 1, py::arg("D") = py::none(),
          "Y = causal convolution of each row of U (L,) or (H, L) with its kernel, + D·U.")
      .def("convolve", &conv_fft<T>, py::arg("K"), py::arg("U"), py::arg("threads") = 1,
           py::arg("D") = py::none(),
           "transform_kernels + apply in one call. K (L,) or (H, L) (one kernel shared, or one "
           "per row of U); D none, a number or (H,).");
}

}  // namespace

void bind_convolution(py::module_& m) {
  m.def(
      "kernel", [](const ssm::DiscreteSSM<double>& s, std::size_t L) { return ssm::kernel(s, L); },
      py::arg("ssm"), py::arg("L"),
      "K̄_k = C Ā^k B̄, k = 0 … L−1, by repeated mat-vec (K1): O(N² L). In the channel's "
      "precision.");
  m.def(
      "kernel", [](const ssm::DiscreteSSM<float>& s, std::size_t L) { return ssm::kernel(s, L); },
      py::arg("ssm"), py::arg("L"));

  m.def(
      "causal_conv_direct",
      [](const py::object& k, const py::object& u, double D) -> py::object {
        if (is_float32(u)) return conv_direct<float>(k, u, D);
        return conv_direct<double>(k, u, D);
      },
      py::arg("k"), py::arg("u"), py::arg("D") = 0.0,
      "y_k = Σ_{j≤k} k_j u_{k−j} + D u_k for k < L = len(u) = len(k): O(L²). float32 when u\n"
      "is float32, else float64.");

  m.def("fft_size", &ssm::fft_size, py::arg("n"),
        "The smallest M ≥ n of the form 2^a 3^b 5^c 7^d (sizes FFTW transforms fastest).");

  bind_fftconv<double>(m, "FFTConv64", "float64");
  bind_fftconv<float>(m, "FFTConv32", "float32");

  m.def(
      "fft_conv",
      [](const py::object& K, const py::object& U, const py::object& D, int threads) -> py::object {
        // The length L comes from U; the library validates everything else.
        const py::array a = py::array::ensure(U);
        ssm::require(static_cast<bool>(a), "fft_conv: U must be an array of numbers");
        ssm::require(a.ndim() == 1 || a.ndim() == 2,
                     "fft_conv: U must be 1-D (L,) or 2-D (H, L), got shape " + shape_str(a));
        const auto L = static_cast<std::size_t>(a.shape(a.ndim() - 1));
        if (is_float32(a)) return conv_fft<float>(ssm::FFTConv<float>(L), K, a, threads, D);
        return conv_fft<double>(ssm::FFTConv<double>(L), K, a, threads, D);
      },
      py::arg("K"), py::arg("U"), py::arg("D") = py::none(), py::arg("threads") = 1,
      "Causal convolution by FFT (K2) in one call: Y = K * U + D·U for U (L,) or (H, L) and\n"
      "K (L,) or (H, L) (one kernel shared, or one per row). float32 when U is float32, else\n"
      "float64. For repeated calls at one L, make an FFTConv64/FFTConv32 once.");
}

}  // namespace ssmpy
