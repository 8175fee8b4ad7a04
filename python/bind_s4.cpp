// python/bind_s4.cpp — stage 6 (ssm/s4.hpp), as the submodule ssmlab.s4 (the library's namespace
// ssm::s4): the NPLR of HiPPO-LegS (S1), DPLR models, C̄' = C̃(I − Ā^L) (S2), the kernel by Cauchy
// sums, Woodbury and one inverse FFT (S2–S5) in float64 and float32, the O(N r) recurrent step
// (S6), the S4D inits and Vandermonde kernels (Q1–Q2), and the S4 layer in conv and recurrent
// mode.
//
//   from ssmlab import s4
//   d = s4.nplr_legs(64)                                   # (S1): Λ, P̃, B̃, V (kept half, S5)
//   m = s4.to_dplr(d)                                      # the DPLR model Λ − P̃P̃*, B̃
//   C = s4.transform_C(d, c_real)                          # C̃ = C V
//   K = s4.dplr_kernel(m, C, dt=0.01, L=1024)              # K̄ (L,), O(N L + L log L)
//   K2 = s4.s4d_kernel(s4.s4d_init("inv", 64), C, 0.01, 1024, "zoh")   # (Q1) S4D
//
// Complex arrays (Λ, P̃, B̃, C̃, C̄') are complex128 in and out; real arrays are accepted where a
// complex one is expected. Every mode n < Nh stands for itself and its conjugate (S5).
#include <complex>
#include <memory>

#include "bindings.hpp"
#include "ssm/grad_s4.hpp"
#include "ssm/s4.hpp"

namespace ssmpy {

namespace {

namespace s4 = ssm::s4;
using cdouble = std::complex<double>;

// A complex vector from anything array-like (real arrays and lists too); `name` names it in
// errors.
ssm::CVec to_cvec(const py::handle& obj, const char* name) {
  const auto a = Arr<cdouble>::ensure(obj);
  if (!a) throw ssm::Error(std::string(name) + " must be an array of (complex) numbers");
  ssm::require(a.ndim() == 1, std::string(name) + " must be 1-D, got shape " + shape_str(a));
  return Eigen::Map<const ssm::CVec>(a.data(), a.shape(0));
}

// A complex matrix (R, C) from a 2-D array (NumPy row-major, copied into Eigen's column-major).
// one_d (when given) lets a 1-D array (C,) stand for one row and records that it did.
ssm::CMat to_cmat(const py::handle& obj, const char* name, bool* one_d = nullptr) {
  const auto a = Arr<cdouble>::ensure(obj);
  if (!a) throw ssm::Error(std::string(name) + " must be an array of (complex) numbers");
  using RowMajor = Eigen::Matrix<cdouble, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  if (one_d && a.ndim() == 1) {
    *one_d = true;
    return Eigen::Map<const RowMajor>(a.data(), 1, a.shape(0));
  }
  ssm::require(a.ndim() == 2, std::string(name) + " must be 2-D" +
                                  (one_d ? " (H, Nh) or 1-D (Nh,)" : "") + ", got shape " +
                                  shape_str(a));
  if (one_d) *one_d = false;
  return Eigen::Map<const RowMajor>(a.data(), a.shape(0), a.shape(1));
}

// A real matrix (R, C) from anything array-like.
ssm::Mat to_mat(const py::handle& obj, const char* name) {
  const auto a = Arr<double>::ensure(obj);
  if (!a) throw ssm::Error(std::string(name) + " must be an array of numbers");
  ssm::require(a.ndim() == 2, std::string(name) + " must be 2-D, got shape " + shape_str(a));
  using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  return Eigen::Map<const RowMajor>(a.data(), a.shape(0), a.shape(1));
}

// P̃ of a DPLR model: None (rank 0: a diagonal model, S4D), a vector (Nh,) (rank 1) or (Nh, r).
ssm::CMat to_P(const py::object& P, Eigen::Index Nh) {
  if (P.is_none()) return ssm::CMat(Nh, 0);
  const auto a = Arr<cdouble>::ensure(P);
  if (!a) throw ssm::Error("P must be None or an array of (complex) numbers");
  if (a.ndim() == 1) return to_cvec(P, "P");
  return to_cmat(P, "P");
}

// Per-channel steps: a number (every channel) or (H,).
ssm::Vec to_dt(const py::handle& obj, Eigen::Index H) {
  const auto a = Arr<double>::ensure(obj);
  if (!a) throw ssm::Error("dt must be a number or an array of H numbers");
  if (a.ndim() == 0) return ssm::Vec::Constant(H, *a.data());
  const ssm::Vec v = to_vec<double>(obj, "dt");
  ssm::require(v.size() == H, "dt must have H = " + std::to_string(H) + " entries, got " +
                                  std::to_string(v.size()));
  return v;
}

// D of a layer: None (0), a number (every channel) or (H,).
ssm::Vec to_layer_D(const py::object& D, Eigen::Index H) {
  if (D.is_none()) return ssm::Vec::Zero(H);
  const auto a = Arr<double>::ensure(D);
  if (!a) throw ssm::Error("D must be a number or an array of H numbers");
  if (a.ndim() == 0) return ssm::Vec::Constant(H, *a.data());
  return to_vec<double>(D, "D");
}

s4::S4DInit to_init(const py::handle& h) {
  if (py::isinstance<s4::S4DInit>(h)) return h.cast<s4::S4DInit>();
  if (py::isinstance<py::str>(h)) return s4::parse_s4d_init(h.cast<std::string>());
  throw ssm::Error("init must be a name (legs, inv, lin) or an ssmlab.s4.S4DInit, got " +
                   std::string(py::str(py::type::of(h))));
}

// float32 or float64 from a NumPy dtype-like (np.float32, "float32", …).
bool wants_float32(const py::object& dtype) {
  const py::dtype dt = py::dtype::from_args(dtype);
  if (dt.is(py::dtype::of<float>())) return true;
  if (dt.is(py::dtype::of<double>())) return false;
  throw ssm::Error("dtype must be float32 or float64, got " + std::string(py::str(dtype)));
}

std::string dplr_repr(const s4::Dplr& m) {
  return "<ssmlab.s4.Dplr N=" + std::to_string(m.N()) + " (Nh=" + std::to_string(m.Nh()) +
         " modes) rank=" + std::to_string(m.rank()) + ">";
}

template <class T>
void bind_precision(py::module_& m, const char* kernel_name, const char* rec_name,
                    const char* layer_name, const char* dtype) {
  using CK = s4::CauchyKernel<T>;
  py::class_<CK>(m, kernel_name,
                 (std::string("The S4 kernel generator in ") + dtype +
                  " for a DPLR model and a length L (S2–S5): per channel the (r+1)² Cauchy sums "
                  "at the ⌊L/2⌋ + 1 roots of unity a real inverse FFT needs, the Woodbury "
                  "correction, the bilinear factor 2/(1 + z), one inverse FFT (planned once). "
                  "O(H (Nh (r+1)² L/2 + L log L)).")
                     .c_str())
      .def(py::init([](const s4::Dplr& md, std::size_t L) { return std::make_unique<CK>(md, L); }),
           py::arg("model"), py::arg("L"), "model: a Dplr; L in [1, 2^26].")
      .def_property_readonly("length", &CK::length, "L")
      .def_property_readonly("model", &CK::model, py::return_value_policy::copy)
      .def(
          "__call__",
          [](const CK& k, const py::object& dt, const py::object& Cp_obj, int threads) {
            bool one_d = false;
            const ssm::CMat Cp = to_cmat(Cp_obj, "Cp", &one_d);
            ssm::Signals<T> K;
            k(to_dt(dt, Cp.rows()), Cp, K, threads);
            return from_signals<T>(K, one_d);
          },
          py::arg("dt"), py::arg("Cp"), py::arg("threads") = 1,
          "K̄ of each channel from its step Δ_h (a number, or (H,)) and its row C̄'_h = "
          "C̃_h(I − Ā_h^L) (S2): Cp (H, Nh) gives K (H, L); Cp (Nh,) gives K (L,). threads = 0 "
          "uses all cores.");

  using R = s4::Recurrence<T>;
  py::class_<R>(m, rec_name,
                (std::string("The recurrent mode of one DPLR channel in ") + dtype +
                 " (S6): x_k = Ā x_{k−1} + B̄ u_k, y_k = 2 Re(C̃ x_k) + D u_k with the bilinear "
                 "Ā applied in O(N r) per step (diagonal solve + Woodbury); state: Nh complex "
                 "values.")
                    .c_str())
      .def(py::init([](const s4::Dplr& md, const py::object& C, double dt, double D) {
             return R(md, to_cvec(C, "C"), dt, D);
           }),
           py::arg("model"), py::arg("C"), py::arg("dt"), py::arg("D") = 0.0,
           "model: a Dplr; C: C̃ (Nh,) complex; dt: Δ > 0; D: the skip term.")
      .def("step", &R::step, py::arg("u"), "Feeds u_k, returns y_k.")
      .def("reset", &R::reset, "Back to the zero state.")
      .def_property_readonly("Nh", &R::Nh);

  using Ly = s4::Layer<T>;
  py::class_<Ly>(m, layer_name,
                 (std::string("The S4 layer in ") + dtype +
                  ": H channels sharing (Λ, P̃, B̃), each with its own Δ_h, C̃_h and skip D_h; "
                  "y_h = K̄_h * u_h + D_h u_h by conv (DPLR kernels + FFT convolution, K2) or "
                  "by recurrent (the O(N r) step, S6) — the two agree to rounding.")
                     .c_str())
      .def(py::init([](const s4::Dplr& md, const py::object& dt, const py::object& C,
                       const py::object& D) {
             const ssm::CMat Cm = to_cmat(C, "C");
             return Ly(md, to_dt(dt, Cm.rows()), Cm, to_layer_D(D, Cm.rows()));
           }),
           py::arg("model"), py::arg("dt"), py::arg("C"), py::arg("D") = py::none(),
           "model: a Dplr; C: C̃ (H, Nh) complex; dt: a number or (H,), each > 0; D: None (0), "
           "a number or (H,).")
      .def_property_readonly("H", &Ly::H)
      .def_property_readonly("model", &Ly::model, py::return_value_policy::copy)
      .def_property_readonly(
          "dt", [](const Ly& l) { return to_numpy<double>(l.dt()); }, "(H,)")
      .def(
          "kernels", [](const Ly& l, std::size_t L, int threads) { return l.kernels(L, threads); },
          py::arg("L"), py::arg("threads") = 1,
          "K̄ of every channel (H, L). The first call for a length computes C̄' (O(H N r L)) and "
          "caches it.")
      .def(
          "conv",
          [](const Ly& l, const py::object& U_obj, int threads) {
            bool one_d = false;
            const ssm::Signals<T> U = to_signals<T>(U_obj, "U", &one_d);
            ssm::Signals<T> Y;
            l.conv(U, Y, threads);
            return from_signals<T>(Y, one_d);
          },
          py::arg("U"), py::arg("threads") = 1,
          "Conv mode: U (H, L) (or (L,) when H = 1) → Y, same shape. Cast to the layer's "
          "precision.")
      .def(
          "recurrent",
          [](const Ly& l, const py::object& U_obj, int threads) {
            bool one_d = false;
            const ssm::Signals<T> U = to_signals<T>(U_obj, "U", &one_d);
            ssm::Signals<T> Y;
            l.recurrent(U, Y, threads);
            return from_signals<T>(Y, one_d);
          },
          py::arg("U"), py::arg("threads") = 1,
          "Recurrent mode: the same Y by the O(N r) DPLR step (S6), one step per sample.")
      .def("__repr__", [layer_name](const Ly& l) {
        return std::string("<ssmlab.s4.") + layer_name + " H=" + std::to_string(l.H()) +
               " N=" + std::to_string(l.model().N()) + " rank=" + std::to_string(l.model().rank()) +
               ">";
      });
}

}  // namespace

void bind_s4(py::module_& parent) {
  auto m = parent.def_submodule(
      "s4",
      "Stage 6, S4 (ssm/s4.hpp): the kernel K̄ without powers of Ā. HiPPO-LegS is normal plus\n"
      "rank 1 (S1), so in the basis V of S = A + PPᵀ it is Λ − P̃P̃* (DPLR); the generating\n"
      "function of K̄ at the L roots of unity is four Cauchy sums Σ v_n/(g − λ_n) and a Woodbury\n"
      "correction (S2–S4), and one inverse FFT gives K̄: O(N L) per channel. S4D (Q1–Q2) drops\n"
      "the low-rank term and sums powers of a diagonal Ā. Models keep the Nh = N/2 modes with\n"
      "Im λ > 0, each standing for its conjugate pair (S5); complex arrays are complex128.");

  // ---- (S1) NPLR.
  py::class_<s4::Nplr>(m, "Nplr",
                       "A = V (Λ − P̃P̃*) V* (S1), kept half: Λ (Nh,) the eigenvalues of "
                       "S = A + PPᵀ with Im λ > 0 (ascending), P̃ = V_h* P (Nh, r), B̃ = V_h* B "
                       "(Nh,), V_h (N, Nh); the full unitary V is [V_h, conj(V_h)].")
      .def_readonly("Lambda", &s4::Nplr::Lambda, "Λ (Nh,) complex")
      .def_readonly("P", &s4::Nplr::P, "P̃ (Nh, r) complex")
      .def_readonly("B", &s4::Nplr::B, "B̃ (Nh,) complex")
      .def_readonly("V", &s4::Nplr::V, "V_h (N, Nh) complex")
      .def_readonly("residual", &s4::Nplr::residual,
                    "normality residual of S: ‖T − blockdiag(T)‖_F / ‖S‖_F of its real Schur "
                    "form T")
      .def_property_readonly("N", &s4::Nplr::N)
      .def_property_readonly("rank", &s4::Nplr::rank)
      .def("__repr__", [](const s4::Nplr& d) {
        return "<ssmlab.s4.Nplr N=" + std::to_string(d.N()) + " rank=" + std::to_string(d.rank()) +
               " residual=" + ssm::fmt(d.residual) + ">";
      });
  m.attr("NORMALITY_TOLERANCE") = s4::kNormalityTolerance;
  m.def(
      "nplr",
      [](const py::object& A, const py::object& P, const py::object& B, double tol) {
        ssm::Mat Pm;
        const auto a = Arr<double>::ensure(P);
        if (a && a.ndim() == 1) {
          Pm = to_vec<double>(P, "P");  // a vector is the rank-1 factor (N, 1)
        } else {
          Pm = to_mat(P, "P");
        }
        return s4::nplr(to_mat(A, "A"), Pm, to_vec<double>(B, "B"), tol);
      },
      py::arg("A"), py::arg("P"), py::arg("B"), py::arg("tolerance") = s4::kNormalityTolerance,
      "NPLR of a real (A (N, N), P (N, r) or (N,), B (N,)) (S1) through the real Schur form of\n"
      "S = A + PPᵀ. Raises ssmlab.Error for odd N, a real eigenvalue of S (the halving S5 needs\n"
      "conjugate pairs) or a normality residual above `tolerance` (the message reports it).\n"
      "O(N³).");
  m.def("legs_low_rank", &s4::legs_low_rank, py::arg("N"),
        "P (N, 1), P_n = √(n + ½): the rank-1 factor that makes A_LegS + PPᵀ normal (S1).");
  m.def("nplr_legs", &s4::nplr_legs, py::arg("N"),
        "nplr(hippo.legs(N), legs_low_rank(N), B) for even N in [2, 4096]. O(N³).");
  m.def("reconstruct", &s4::reconstruct, py::arg("nplr"),
        "The dense real V (Λ − P̃P̃*) V* (N, N) = 2 Re(V_h Λ V_h*) − Q Qᵀ, Q = 2 Re(V_h P̃).");
  m.def(
      "reconstruction_error",
      [](const s4::Nplr& d, const py::object& A) {
        return s4::reconstruction_error(d, to_mat(A, "A"));
      },
      py::arg("nplr"), py::arg("A"), "‖reconstruct(nplr) − A‖_F / ‖A‖_F (S1).");

  // ---- DPLR models.
  py::class_<s4::Dplr>(m, "Dplr",
                       "A DPLR model with conjugate pairs: Ã = Λ − P̃P̃* and B̃ in the DPLR "
                       "basis, Nh modes standing for N = 2·Nh real states (S5); rank 0 is a "
                       "diagonal (S4D) model.")
      .def(py::init([](const py::object& Lambda, const py::object& P, const py::object& B) {
             ssm::CVec L = to_cvec(Lambda, "Lambda");
             const Eigen::Index Nh = L.size();
             return s4::make_dplr(std::move(L), to_P(P, Nh), to_cvec(B, "B"));
           }),
           py::arg("Lambda"), py::arg("P"), py::arg("B"),
           "Lambda (Nh,), P None (rank 0), (Nh,) (rank 1) or (Nh, r), B (Nh,): complex.\n"
           "Validated: sizes agree, entries finite, Re λ_n < 0, r ≤ 16.")
      .def_readonly("Lambda", &s4::Dplr::Lambda, "Λ (Nh,) complex")
      .def_readonly("P", &s4::Dplr::P, "P̃ (Nh, r) complex")
      .def_readonly("B", &s4::Dplr::B, "B̃ (Nh,) complex")
      .def_property_readonly("Nh", &s4::Dplr::Nh)
      .def_property_readonly("N", &s4::Dplr::N)
      .def_property_readonly("rank", &s4::Dplr::rank)
      .def("__repr__", &dplr_repr);
  m.def("to_dplr", &s4::to_dplr, py::arg("nplr"), "The DPLR model (Λ, P̃, B̃) of an NPLR.");
  m.def(
      "transform_C",
      [](const s4::Nplr& d, const py::object& C) {
        return s4::transform_C(d, to_vec<double>(C, "C").transpose());
      },
      py::arg("nplr"), py::arg("C"),
      "C̃ = C V_h (Nh,): a real output row C (N,) in the DPLR basis.");
  m.def(
      "to_real",
      [](const s4::Dplr& md, const py::object& C, double D) {
        return s4::to_real(md, to_cvec(C, "C"), D);
      },
      py::arg("model"), py::arg("C"), py::arg("D") = 0.0,
      "The same model as a dense real ssmlab.Model (N = 2·Nh states), for stage 4's kernel:\n"
      "x_h = (a + ib)/√2, A = [[diag Re Λ, −diag Im Λ], [diag Im Λ, diag Re Λ]] − Q Qᵀ,\n"
      "Q = √2 [Re P̃; Im P̃], B = √2 [Re B̃; Im B̃], C = √2 [Re C̃, −Im C̃]. O(N²).");
  m.def("random_dplr", &s4::random_dplr, py::arg("Nh"), py::arg("r"), py::arg("seed") = 1,
        "A random stable DPLR model: Re λ uniform in [−1, −0.1], Im λ in [0, π·Nh], P̃ and B̃\n"
        "complex normal with E|·|² = 1. Reproducible from seed.");
  m.def("random_C", &s4::random_C, py::arg("H"), py::arg("Nh"), py::arg("seed") = 1,
        "H output rows C̃ (H, Nh), complex normal with E|C_n|² = 1.");
  m.def("random_like_legs", &s4::random_like_legs, py::arg("N"), py::arg("seed") = 1,
        "A random stable model the size of HiPPO-LegS (same ‖A‖_F, slowest mode e^{−t}, same\n"
        "‖B‖), C = 0: the baseline of the long-memory lesson. O(N³).");
  m.def(
      "impulse_state_norms",
      [](const ssm::DiscreteSSM<double>& s, std::size_t L) {
        return s4::impulse_state_norms(s, L);
      },
      py::arg("ssm"), py::arg("L"),
      "‖Ā^k B̄‖ for k < L (L,): how much of an impulse the state holds.");

  // ---- (S2–S5) kernels.
  m.def(
      "c_prime",
      [](const s4::Dplr& md, const py::object& C, double dt, std::size_t L) {
        return s4::c_prime(md, to_cvec(C, "C"), dt, L);
      },
      py::arg("model"), py::arg("C"), py::arg("dt"), py::arg("L"),
      "C̄' = C̃ (I − Ā^L) (Nh,) for the bilinear Ā with step dt (S2), by L steps of the\n"
      "transposed DPLR recurrence: O(N r L).");
  m.def(
      "dplr_kernel",
      [](const s4::Dplr& md, const py::object& C, double dt, std::size_t L) {
        return s4::dplr_kernel(md, to_cvec(C, "C"), dt, L);
      },
      py::arg("model"), py::arg("C"), py::arg("dt"), py::arg("L"),
      "K̄ (L,) of one channel with output row C̃ (Nh,) and step dt, in float64: c_prime, then\n"
      "the Cauchy sums, Woodbury and one inverse FFT (S2–S5). O(N r L + L log L).");

  bind_precision<double>(m, "CauchyKernel64", "Recurrence64", "Layer64", "float64");
  bind_precision<float>(m, "CauchyKernel32", "Recurrence32", "Layer32", "float32");

  m.def(
      "legs_layer",
      [](int N, int H, double dt_min, double dt_max, std::uint64_t seed,
         const py::object& dtype) -> py::object {
        if (wants_float32(dtype))
          return py::cast(s4::legs_layer<float>(N, H, dt_min, dt_max, seed));
        return py::cast(s4::legs_layer<double>(N, H, dt_min, dt_max, seed));
      },
      py::arg("N"), py::arg("H"), py::arg("dt_min") = 1e-3, py::arg("dt_max") = 1e-1,
      py::arg("seed") = 1, py::arg("dtype") = "float64",
      "The S4 initialization: HiPPO-LegS in DPLR form (N even), C̃ = random_C(H, N/2, seed),\n"
      "Δ_h log-spaced over [dt_min, dt_max], D_h = 1. dtype float64 → Layer64, float32 →\n"
      "Layer32.");

  // ---- S4D (Q1–Q2).
  py::enum_<s4::S4DInit>(m, "S4DInit",
                         "The S4D initializations (Q2); functions also accept their names "
                         "'legs', 'inv', 'lin'.")
      .value("LegS", s4::S4DInit::LegS, "Λ, B̃ of the LegS NPLR (S1), low-rank term dropped")
      .value("Inv", s4::S4DInit::Inv, "λ_n = −½ + i(N/π)(N/(2n+1) − 1), B = 1")
      .value("Lin", s4::S4DInit::Lin, "λ_n = −½ + iπn, B = 1");
  m.def("s4d_init_names", &s4::s4d_init_names, "The init names: legs, inv, lin.");
  m.def("parse_s4d_init", &s4::parse_s4d_init, py::arg("name"));
  m.def(
      "s4d_init_name", [](const py::object& h) { return s4::s4d_init_name(to_init(h)); },
      py::arg("init"), "'S4D-LegS', 'S4D-Inv' or 'S4D-Lin'.");
  m.def(
      "s4d_init", [](const py::object& h, int N) { return s4::s4d_init(to_init(h), N); },
      py::arg("init"), py::arg("N"),
      "The diagonal model (Λ, B̃, rank 0) of an S4D init (Q2) for N = 2·Nh real states (N even\n"
      "in [2, 4096]).");
  m.def(
      "s4d_kernels",
      [](const s4::Dplr& md, const py::object& dt, const py::object& C_obj, std::size_t L,
         const py::object& method, int threads) -> py::object {
        bool one_d = false;
        const ssm::CMat C = to_cmat(C_obj, "C", &one_d);
        const ssm::Vec d = to_dt(dt, C.rows());
        // float32 for a float32 array or NumPy scalar (np.float32(0.1)); a Python float is float64.
        const py::array dta = py::array::ensure(dt);
        if (dta && dta.dtype().is(py::dtype::of<float>())) {
          ssm::Signals<float> K;
          s4::s4d_kernels<float>(md, d, C, L, to_method(method), K, threads);
          return from_signals<float>(K, one_d);
        }
        ssm::Signals<double> K;
        s4::s4d_kernels<double>(md, d, C, L, to_method(method), K, threads);
        return from_signals<double>(K, one_d);
      },
      py::arg("model"), py::arg("dt"), py::arg("C"), py::arg("L"), py::arg("method") = "zoh",
      py::arg("threads") = 1,
      "(Q1) K̄_k = 2 Re Σ_n C_n B̄_n Ā_n^k, k < L, for each channel of a diagonal model (P̃\n"
      "ignored): C (H, Nh) → K (H, L), C (Nh,) → K (L,); dt a number or (H,). method 'zoh'\n"
      "(Ā = e^{Δλ}, B̄ = (e^{Δλ} − 1)/λ · B) or 'bilinear'. float32 when dt is float32 (an\n"
      "array or np.float32), else float64. O(Nh L) per channel.");
  m.def(
      "s4d_kernel",
      [](const s4::Dplr& md, const py::object& C, double dt, std::size_t L,
         const py::object& method) {
        return s4::s4d_kernel(md, to_cvec(C, "C"), dt, L, to_method(method));
      },
      py::arg("model"), py::arg("C"), py::arg("dt"), py::arg("L"), py::arg("method") = "zoh",
      "One channel of s4d_kernels in float64: K̄ (L,).");
}

// Stage 8a's S4D and S4 (DPLR) kernel backward (ssm/grad_s4.hpp, G11–G13, G22–G23), in the
// submodule ssmlab.grad (bind_grad.cpp calls this with it), here because it shares the forward's
// argument conversions.
void bind_s4_grad(py::module_& g) {
  auto kernel_grads = [](const ssm::grad::S4DKernelGrads& kg, bool one_d) {
    py::dict d;
    d["dLambda"] = kg.dLambda;
    d["dB"] = kg.dB;
    if (one_d) {
      d["dC"] = ssm::CVec(kg.dC.row(0).transpose());
      d["ddt"] = kg.ddt(0);
      d["dlog_dt"] = kg.dlog_dt(0);
    } else {
      d["dC"] = kg.dC;
      d["ddt"] = kg.ddt;
      d["dlog_dt"] = kg.dlog_dt;
    }
    return d;
  };
  g.def(
      "s4d_kernels_backward",
      [kernel_grads](const s4::Dplr& md, const py::object& dt, const py::object& C_obj,
                     const py::object& dK_obj, const py::object& method, int threads) {
        bool one_d = false;
        const ssm::CMat C = to_cmat(C_obj, "C", &one_d);
        const ssm::Vec d = to_dt(dt, C.rows());
        const auto dK = to_signals<double>(dK_obj, "dK");
        return kernel_grads(ssm::grad::s4d_kernels_backward(md, d, C, dK, to_method(method), threads),
                            one_d);
      },
      py::arg("model"), py::arg("dt"), py::arg("C"), py::arg("dK"), py::arg("method") = "zoh",
      py::arg("threads") = 1,
      "(G12, G13) The backward of ssmlab.s4.s4d_kernels(model, dt, C, L, method): dK = ∂loss/∂K̄\n"
      "(H, L) (or (L,) with C (Nh,)). Returns a dict: dLambda, dB (Nh,) summed over channels, dC\n"
      "(H, Nh), ddt and dlog_dt (H,) (= Δ·ddt; scalars for one channel). Complex gradients are\n"
      "∂/∂Re + i ∂/∂Im. float64; method 'zoh' or 'bilinear'. O(H Nh L).");
  g.def(
      "dplr_kernels_backward",
      [](const s4::Dplr& md, const py::object& dt, const py::object& Cp_obj,
         const py::object& dK_obj, int threads) {
        bool one_d = false;
        const ssm::CMat Cp = to_cmat(Cp_obj, "Cp", &one_d);
        const ssm::Vec d = to_dt(dt, Cp.rows());
        const auto dK = to_signals<double>(dK_obj, "dK");
        const auto kg = ssm::grad::dplr_kernels_backward(md, d, Cp, dK, threads);
        py::dict out;
        out["dLambda"] = kg.dLambda;
        out["dP"] = kg.dP;
        out["dB"] = kg.dB;
        if (one_d) {
          out["dCp"] = ssm::CVec(kg.dCp.row(0).transpose());
          out["ddt"] = kg.ddt(0);
          out["dlog_dt"] = kg.dlog_dt(0);
        } else {
          out["dCp"] = kg.dCp;
          out["ddt"] = kg.ddt;
          out["dlog_dt"] = kg.dlog_dt;
        }
        return out;
      },
      py::arg("model"), py::arg("dt"), py::arg("Cp"), py::arg("dK"), py::arg("threads") = 1,
      "(G22, G23) The backward of ssmlab.s4.CauchyKernel64(model, L)(dt, Cp): dK = ∂loss/∂K̄\n"
      "(H, L) (or (L,) with Cp (Nh,)). Returns a dict: dLambda, dB (Nh,) and dP (Nh, r) summed\n"
      "over channels, dCp (H, Nh) (C̄', the row S4 trains), ddt and dlog_dt (H,) (= Δ·ddt;\n"
      "scalars for one channel). Complex gradients are ∂/∂Re + i ∂/∂Im. float64.\n"
      "O(H (Nh (r+1)² + r³) L/2 + H L log L).");
  g.def(
      "s4d_layer_backward",
      [kernel_grads](const s4::Dplr& md, const py::object& dt, const py::object& C_obj,
                     const py::object& D, const py::object& U_obj, const py::object& dY_obj,
                     const py::object& method, int threads) {
        bool one_d = false;
        const ssm::CMat C = to_cmat(C_obj, "C", &one_d);
        const auto H = C.rows();
        const auto U = to_signals<double>(U_obj, "U");
        const auto dY = to_signals<double>(dY_obj, "dY");
        const auto r = ssm::grad::s4d_layer_backward(md, to_dt(dt, H), C, to_layer_D(D, H), U, dY,
                                                     to_method(method), threads);
        py::dict d = kernel_grads(r.kernel, one_d);
        d["dD"] = one_d ? py::object(py::float_(r.dD(0))) : py::object(to_numpy<double>(r.dD));
        d["dU"] = from_signals<double>(r.dU, one_d);
        return d;
      },
      py::arg("model"), py::arg("dt"), py::arg("C"), py::arg("D"), py::arg("U"), py::arg("dY"),
      py::arg("method") = "zoh", py::arg("threads") = 1,
      "The backward of an S4D layer Y = K̄(Λ, B̃, Δ, C̃) * U + D U (s4d_kernels, then the FFT\n"
      "convolution; G11–G13): C (H, Nh), D None, a number or (H,), U and dY (H, L). Returns the\n"
      "dict of s4d_kernels_backward plus dD (H,) and dU (H, L). float64. O(H (Nh + log L) L).");
}

}  // namespace ssmpy
