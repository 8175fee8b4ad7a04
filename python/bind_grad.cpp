// python/bind_grad.cpp — stage 8a (ssm/grad.hpp, ssm/grad_s4.hpp), as the submodule ssmlab.grad:
// the exact backward passes (docs/MATH.md, G1–G13). Each takes the forward's arguments and the
// gradient of a loss with respect to the forward's outputs, and returns the gradients with
// respect to the forward's inputs, each with its input's shape (a dict keyed by d<name>).
//
//   from ssmlab import grad, mamba
//   p = mamba.random_problem(D=8, L=64, N=4, seed=1)
//   y = mamba.selective_scan_reference(**p)
//   g = grad.selective_scan_backward_reference(dy=np.ones_like(y), **p)   # g["du"], g["dA"], …
//   g32 = grad.selective_scan_backward(dy=np.ones_like(y, "float32"),
//                                      **mamba.random_problem(8, 64, dtype="float32"))
//   dK, dU, dD = grad.conv_backward(K, U, dY, D=D)                         # (G11)
//
// The S4D kernel's backward (G12, G13) is bound in bind_s4.cpp (bind_s4_grad), beside the
// forward whose argument conversions it shares, and lives in this submodule too.
#include <vector>

#include "bindings.hpp"
#include "scan_args.hpp"
#include "ssm/convolution.hpp"
#include "ssm/grad.hpp"
#include "ssm/grad_s4.hpp"

namespace ssmpy {

namespace {

using namespace scanargs;

// The scan's arguments plus dy (the shape of u) and dh_last (None or the shape of h0).
template <class T>
struct Backward {
  Scan<T> s;
  std::vector<T> dy, dh_last;
};

template <class T>
Backward<T> make_backward(const ScanArgs& a, const py::object& dy, const py::object& dh_last) {
  Backward<T> b;
  make_scan(a, b.s);
  take_into(b.dy, dy, "dy", b.s.bdl(), b.s.bdl_s() + " (the shape of u)");
  if (!dh_last.is_none())
    take_into(b.dh_last, dh_last, "dh_last", b.s.bdn(), b.s.bdn_s() + " (the shape of h0)");
  return b;
}

// The gradients as a dict of arrays with the forward's shapes; dz is None without a gate.
template <class T>
py::dict grads_dict(const Scan<T>& s, const ssm::ScanGrads<T>& g) {
  py::dict d;
  d["du"] = to_array<T>(g.du, s.bdl());
  d["ddelta"] = to_array<T>(g.ddelta, s.bdl());
  d["dA"] = to_array<T>(g.dA, {s.D, s.N});
  d["dB"] = to_array<T>(g.dB, s.bnl());
  d["dC"] = to_array<T>(g.dC, s.bnl());
  d["dD"] = to_array<T>(g.dD, {s.D});
  d["ddelta_bias"] = to_array<T>(g.ddelta_bias, {s.D});
  d["dz"] = g.dz.empty() ? py::object(py::none()) : py::object(to_array<T>(g.dz, s.bdl()));
  d["dh0"] = to_array<T>(g.dh0, s.bdn());
  return d;
}

const char* kBackwardDoc =
    "Arguments: dy = ∂loss/∂y (the shape of u), then the forward's arguments exactly as\n"
    "ssmlab.mamba.selective_scan takes them (u, delta, A, B, C, D, z, delta_bias,\n"
    "delta_softplus, h0, discretization), and dh_last = ∂loss/∂h_last (None: 0; the shape of\n"
    "h0) for a loss that also reads the final state. Returns a dict of the gradients, each with\n"
    "its forward array's shape: du, ddelta (w.r.t. Δraw, before the bias and softplus), dz\n"
    "(None without a gate), dA, dB, dC, dD, ddelta_bias, dh0 (filled even when D, delta_bias or\n"
    "h0 was None: the gradient at the implied zero). Bad shapes or non-finite values raise\n"
    "ssmlab.Error naming the argument.";

py::tuple conv_result(bool one_d, const auto& dK, const auto& dU, const auto* dD) {
  using T = typename std::decay_t<decltype(dK)>::Scalar;
  return py::make_tuple(from_signals<T>(dK, one_d), from_signals<T>(dU, one_d),
                        dD ? py::object(to_numpy<T>(*dD)) : py::object(py::none()));
}

}  // namespace

void bind_grad(py::module_& parent) {
  auto m = parent.def_submodule(
      "grad",
      "Stage 8a, learning: exact backward passes (ssm/grad.hpp, ssm/grad_s4.hpp; docs/MATH.md\n"
      "G1–G13). The selective scan's adjoint runs backward in time through the forward's own Ā\n"
      "(G2); the FFT convolution's backward is two correlations by FFT (G11); the S4D kernel's\n"
      "is two Horner sums per mode (G12). Complex parameters get ∂/∂Re + i ∂/∂Im, PyTorch's\n"
      "convention for a complex leaf's .grad.");

  m.def(
      "selective_scan_backward_reference",
      [](const py::object& dy, const py::object& u, const py::object& delta, const py::object& A,
         const py::object& B, const py::object& C, const py::object& D, const py::object& z,
         const py::object& delta_bias, bool softplus, const py::object& h0,
         const py::object& disc, const py::object& dh_last) {
        const auto b = make_backward<double>(
            {u, delta, A, B, C, D, z, delta_bias, h0, disc, softplus}, dy, dh_last);
        return grads_dict(b.s, ssm::selective_scan_backward_reference(b.s.p, b.s.in, b.dy,
                                                                      b.dh_last));
      },
      py::arg("dy"), py::arg("u"), py::arg("delta"), py::arg("A"), py::arg("B"), py::arg("C"),
      py::arg("D") = py::none(), py::arg("z") = py::none(), py::arg("delta_bias") = py::none(),
      py::arg("delta_softplus") = true, py::arg("h0") = py::none(),
      py::arg("discretization") = "mamba", py::arg("dh_last") = py::none(),
      (std::string("(G1)–(G9) in plain float64 loops, straight from the equations: the forward\n"
                   "with every state stored, then the adjoint backward. O(batch·D·L·N).\n") +
       kBackwardDoc)
          .c_str());

  m.def(
      "selective_scan_backward",
      [](const py::object& dy, const py::object& u, const py::object& delta, const py::object& A,
         const py::object& B, const py::object& C, const py::object& D, const py::object& z,
         const py::object& delta_bias, bool softplus, const py::object& h0,
         const py::object& disc, const py::object& dh_last, int chunk, int threads) {
        auto go = [&](auto tag) -> py::dict {
          using T = decltype(tag);
          const auto b = make_backward<T>(
              {u, delta, A, B, C, D, z, delta_bias, h0, disc, softplus}, dy, dh_last);
          ssm::validate(b.s.p, b.s.in, true);  // Python data is untrusted (ssm/grad.hpp)
          ssm::ScanGrads<T> g;
          {
            py::gil_scoped_release release;
            g = ssm::selective_scan_backward<T>(b.s.p, b.s.in, b.dy, b.dh_last, chunk, threads);
          }
          return grads_dict(b.s, g);
        };
        return is_float32(u) ? go(float{}) : go(double{});
      },
      py::arg("dy"), py::arg("u"), py::arg("delta"), py::arg("A"), py::arg("B"), py::arg("C"),
      py::arg("D") = py::none(), py::arg("z") = py::none(), py::arg("delta_bias") = py::none(),
      py::arg("delta_softplus") = true, py::arg("h0") = py::none(),
      py::arg("discretization") = "mamba", py::arg("dh_last") = py::none(),
      py::arg("chunk") = 64, py::arg("threads") = 1,
      (std::string("The fast backward (G1)–(G10): SIMD lanes over channels, one state\n"
                   "checkpoint every `chunk` steps instead of all L states, each chunk's states\n"
                   "recomputed in reverse. float32 when u is a float32 array (every array is\n"
                   "then cast), else float64. chunk > 0; threads: 0 = all cores.\n") +
       kBackwardDoc)
          .c_str());

  m.def(
      "conv_backward",
      [](const py::object& K_obj, const py::object& U_obj, const py::object& dY_obj,
         const py::object& D_obj, int threads) -> py::tuple {
        auto go = [&](auto tag) -> py::tuple {
          using T = decltype(tag);
          bool one_d = false;
          const auto K = to_signals<T>(K_obj, "K", &one_d);
          const auto U = to_signals<T>(U_obj, "U");
          const auto dY = to_signals<T>(dY_obj, "dY");
          ssm::VecT<T> D;
          if (!D_obj.is_none()) {
            const auto a = Arr<T>::ensure(D_obj);
            if (a && a.ndim() == 0)
              D = ssm::VecT<T>::Constant(K.rows(), *a.data());
            else
              D = to_vec<T>(D_obj, "D");
          }
          ssm::require(K.cols() >= 1, "K is empty");
          const ssm::FFTConv<T> fft(static_cast<std::size_t>(K.cols()));
          ssm::Signals<T> dK, dU;
          ssm::VecT<T> dD;
          ssm::grad::conv_backward<T>(fft, K, U, dY, D_obj.is_none() ? nullptr : &D, dK, dU,
                                      D_obj.is_none() ? nullptr : &dD, threads);
          return conv_result(one_d, dK, dU, D_obj.is_none() ? nullptr : &dD);
        };
        return is_float32(K_obj) ? go(float{}) : go(double{});
      },
      py::arg("K"), py::arg("U"), py::arg("dY"), py::arg("D") = py::none(), py::arg("threads") = 1,
      "(G11) The backward of y = K̄ * u + D u (ssmlab.fft_conv): K, U, dY (H, L) or (L,) for one\n"
      "channel; D None, a number or (H,). Returns (dK, dU, dD): dU_i = Σ_{k≥i} dY_k K̄_{k−i} +\n"
      "D dY_i and dK_j = Σ_{k≥j} dY_k U_{k−j} (correlations, each a causal FFT convolution of\n"
      "the reversed dY), dD = Σ_k dY_k U_k (None when D is None). float32 when K is float32.\n"
      "O(H L log L).");

  bind_s4_grad(m);
}

}  // namespace ssmpy
