// python/bind_ssd.cpp — stage 9 (ssm/ssd.hpp, ssm/attention.hpp, ssm/scans.hpp) as the submodule
// ssmlab.ssd: Mamba-2's scalar-A selective SSM as the recurrence (X1), the matrix M (X2), the
// chunked SSD (X3) and step mode; attention and linear attention (X5); the log-space and Blelloch
// scans (X7, X8).
//
//   from ssmlab import ssd
//   p = ssd.random_problem(L=64, H=2, P=4, N=8, seed=1)   # dict: x, delta, A, B, C, D, delta_bias
//   y = ssd.ssd_reference(**p)                           # (L, H, P): the recurrence, float64
//   y = ssd.ssd_chunked(**p, chunk=16)                   # the chunked algorithm (float32 in → float32)
//   M = ssd.ssd_matrix(**p, head=0)                      # (L, L): y[:, 0, :] = M @ x[:, 0, :] (no D)
//
// Shapes, Mamba-2's layout (time before head): x (L, H, P); delta (Δraw) (L, H); B, C (L, G, N)
// with G groups (head h reads group h // (H // G)); A, D, delta_bias (H,); states (H, P, N). A
// leading batch axis on x (batch, L, H, P) is carried through to every array and output.
#include <vector>

#include "bindings.hpp"
#include "ssm/attention.hpp"
#include "ssm/scans.hpp"
#include "ssm/ssd.hpp"

namespace ssmpy {

namespace {

template <class T>
std::vector<T> flat(const py::handle& obj, const char* name, const std::vector<py::ssize_t>& want,
                    const std::string& letters) {
  const auto a = Arr<T>::ensure(obj);
  if (!a) throw ssm::Error(std::string(name) + " must be an array of numbers");
  std::vector<py::ssize_t> got(a.shape(), a.shape() + a.ndim());
  if (got != want) {
    std::string w = "(";
    for (std::size_t i = 0; i < want.size(); ++i) w += (i ? ", " : "") + std::to_string(want[i]);
    throw ssm::Error(std::string(name) + " must have shape " + letters + " = " + w +
                     (want.size() == 1 ? ",)" : ")") + ", got " + shape_str(a));
  }
  return std::vector<T>(a.data(), a.data() + a.size());
}

template <class T>
struct Problem {
  ssm::SsdParams<T> p;
  ssm::SsdInputs<T> in;
  bool batched = false;
};

// The library's structs from NumPy arrays; the shape letters come from x (and B for G, N).
template <class T>
Problem<T> make(const py::object& x, const py::object& delta, const py::object& A,
                const py::object& B, const py::object& C, const py::object& D,
                const py::object& delta_bias, const py::object& h0, bool softplus) {
  Problem<T> s;
  const auto xa = Arr<T>::ensure(x);
  const auto ba = Arr<T>::ensure(B);
  if (!xa || !ba) throw ssm::Error("x and B must be arrays of numbers");
  if (xa.ndim() != 3 && xa.ndim() != 4)
    throw ssm::Error("x must be (L, H, P) or (batch, L, H, P), got shape " + shape_str(xa));
  s.batched = xa.ndim() == 4;
  const int o = s.batched ? 1 : 0;
  const py::ssize_t batch = s.batched ? xa.shape(0) : 1, L = xa.shape(o), H = xa.shape(o + 1),
                    P = xa.shape(o + 2);
  if (ba.ndim() != 3 + o)
    throw ssm::Error(std::string("B must be ") + (s.batched ? "(batch, L, G, N)" : "(L, G, N)") +
                     ", got shape " + shape_str(ba));
  const py::ssize_t G = ba.shape(o + 1), N = ba.shape(o + 2);
  auto lead = [&](std::vector<py::ssize_t> v) {
    if (s.batched) v.insert(v.begin(), batch);
    return v;
  };
  const std::string bl = s.batched ? "(batch, " : "(";
  s.p.H = int(H);
  s.p.P = int(P);
  s.p.N = int(N);
  s.p.G = int(G);
  s.p.A = flat<T>(A, "A", {H}, "(H,)");
  if (!D.is_none()) s.p.D_skip = flat<T>(D, "D", {H}, "(H,)");
  if (!delta_bias.is_none()) s.p.delta_bias = flat<T>(delta_bias, "delta_bias", {H}, "(H,)");
  s.p.delta_softplus = softplus;
  s.in.batch = int(batch);
  s.in.L = int(L);
  s.in.x = flat<T>(x, "x", lead({L, H, P}), bl + "L, H, P)");
  s.in.delta = flat<T>(delta, "delta", lead({L, H}), bl + "L, H)");
  s.in.B = flat<T>(B, "B", lead({L, G, N}), bl + "L, G, N)");
  s.in.C = flat<T>(C, "C", lead({L, G, N}), bl + "L, G, N)");
  if (!h0.is_none()) s.in.h0 = flat<T>(h0, "h0", lead({H, P, N}), bl + "H, P, N)");
  ssm::validate(s.p, s.in);
  return s;
}

template <class T>
py::array_t<T> shaped(const std::vector<T>& v, std::vector<py::ssize_t> shape, bool batched,
                      int batch) {
  if (batched) shape.insert(shape.begin(), batch);
  py::array_t<T> out(shape);
  std::copy(v.begin(), v.end(), out.mutable_data());
  return out;
}

template <class T>
py::object result(const Problem<T>& s, const ssm::SsdOutputs<T>& o, bool return_state) {
  auto y = shaped(o.y, {s.in.L, s.p.H, s.p.P}, s.batched, s.in.batch);
  if (!return_state) return y;
  return py::make_tuple(y, shaped(o.h_last, {s.p.H, s.p.P, s.p.N}, s.batched, s.in.batch));
}

#define SSD_ARGS                                                                              \
  py::arg("x"), py::arg("delta"), py::arg("A"), py::arg("B"), py::arg("C"),                   \
      py::arg("D") = py::none(), py::arg("delta_bias") = py::none(), py::arg("h0") = py::none(), \
      py::arg("delta_softplus") = true

template <class T>
ssm::Signals<T> sig(const py::object& a, const char* name) {
  const auto arr = Arr<T>::ensure(a);
  if (!arr || arr.ndim() != 2)
    throw ssm::Error(std::string(name) + " must be 2-D (L, heads·d), got " +
                     (arr ? shape_str(arr) : std::string("a non-array")));
  return Eigen::Map<const ssm::Signals<T>>(arr.data(), arr.shape(0), arr.shape(1));
}

}  // namespace

void bind_ssd(py::module_& parent) {
  auto m = parent.def_submodule(
      "ssd",
      "Stage 9, Mamba-2's state space duality (ssm/ssd.hpp, ssm/attention.hpp, ssm/scans.hpp).\n"
      "With a scalar A per head the selective SSM is an RNN with an N×P state (X1),\n"
      "H_t = a_t H_{t−1} + Δ_t B_t x_tᵀ, y_t = H_tᵀ C_t + D x_t, a_t = e^{Δ_t A}, and unrolled a\n"
      "masked attention y = M x, M[t, s] = C_tᵀ B_s Δ_s Π_{s<r≤t} a_r (X2); SSD computes it in\n"
      "chunks (X3). Shapes: x (L, H, P), delta (L, H), B, C (L, G, N), A, D, delta_bias (H,),\n"
      "states (H, P, N); a leading batch axis is optional.");

  m.def(
      "random_problem",
      [](int L, int H, int P, int N, int G, int batch, std::uint64_t seed, bool initial_state,
         const py::object& dtype) {
        ssm::SsdShape sh;
        sh.batch = batch > 0 ? batch : 1;
        sh.L = L;
        sh.H = H;
        sh.P = P;
        sh.N = N;
        sh.G = G;
        ssm::SsdParams<double> p;
        ssm::SsdInputs<double> in;
        ssm::random_ssd_problem(sh, seed, p, in, initial_state);
        const bool f32 = py::dtype::from_args(dtype).is(py::dtype::of<float>());
        const bool b = batch > 0;
        auto arr = [&](const std::vector<double>& v, std::vector<py::ssize_t> shape,
                       bool batched) -> py::object {
          auto a = shaped(v, std::move(shape), batched, sh.batch);
          return f32 ? py::object(a.attr("astype")("float32")) : py::object(a);
        };
        py::dict d;
        d["x"] = arr(in.x, {L, H, P}, b);
        d["delta"] = arr(in.delta, {L, H}, b);
        d["A"] = arr(p.A, {H}, false);
        d["B"] = arr(in.B, {L, G, N}, b);
        d["C"] = arr(in.C, {L, G, N}, b);
        d["D"] = arr(p.D_skip, {H}, false);
        d["delta_bias"] = arr(p.delta_bias, {H}, false);
        if (initial_state) d["h0"] = arr(in.h0, {H, P, N}, b);
        return d;
      },
      py::arg("L") = 64, py::arg("H") = 2, py::arg("P") = 4, py::arg("N") = 8, py::arg("G") = 1,
      py::arg("batch") = 0, py::arg("seed") = 1, py::arg("initial_state") = false,
      py::arg("dtype") = py::dtype::of<double>(),
      "Mamba-2-like random inputs as a dict of keyword arguments for the functions below: A_h =\n"
      "−U[1, 16], Δ bias from Δ log-uniform in [1e-3, 1e-1], Δraw ~ 0.5·N(0,1), x ~ N(0,1), B, C ~\n"
      "N(0,1)/√N, D = 1 (h0 ~ N(0,1) with initial_state). batch > 0 adds the batch axis.");

  m.def(
      "ssd_reference",
      [](const py::object& x, const py::object& delta, const py::object& A, const py::object& B,
         const py::object& C, const py::object& D, const py::object& delta_bias,
         const py::object& h0, bool softplus, bool return_state) {
        const auto s = make<double>(x, delta, A, B, C, D, delta_bias, h0, softplus);
        return result(s, ssm::ssd_reference(s.p, s.in), return_state);
      },
      SSD_ARGS, py::arg("return_state") = false,
      "(X1) The recurrence in float64: y (L, H, P), and with return_state (y, h_last (H, P, N)).");

  m.def(
      "ssd_chunked",
      [](const py::object& x, const py::object& delta, const py::object& A, const py::object& B,
         const py::object& C, const py::object& D, const py::object& delta_bias,
         const py::object& h0, bool softplus, int chunk, int threads,
         bool return_state) -> py::object {
        if (is_float32(x)) {
          const auto s = make<float>(x, delta, A, B, C, D, delta_bias, h0, softplus);
          ssm::SsdOutputs<float> o;
          ssm::ssd_chunked(s.p, s.in, o, chunk, threads);
          return result(s, o, return_state);
        }
        const auto s = make<double>(x, delta, A, B, C, D, delta_bias, h0, softplus);
        ssm::SsdOutputs<double> o;
        ssm::ssd_chunked(s.p, s.in, o, chunk, threads);
        return result(s, o, return_state);
      },
      SSD_ARGS, py::arg("chunk") = 64, py::arg("threads") = 1, py::arg("return_state") = false,
      "(X3) The chunked SSD algorithm, chunks of `chunk` steps (float32 when x is float32).");

  m.def(
      "ssd_matrix",
      [](const py::object& x, const py::object& delta, const py::object& A, const py::object& B,
         const py::object& C, const py::object& D, const py::object& delta_bias,
         const py::object& h0, bool softplus, int head, int batch_index) {
        const auto s = make<double>(x, delta, A, B, C, D, delta_bias, h0, softplus);
        return ssm::ssd_matrix(s.p, s.in, batch_index, head);
      },
      SSD_ARGS, py::arg("head") = 0, py::arg("batch_index") = 0,
      "(X2) The L×L matrix M of one head: y[:, head, :] = M @ x[:, head, :] without D and h0.");

  m.def(
      "ssd_step",
      [](const py::object& h, const py::object& x, const py::object& delta, const py::object& A,
         const py::object& B, const py::object& C, const py::object& D,
         const py::object& delta_bias, bool softplus) {
        const auto xa = Arr<double>::ensure(x);
        const auto ba = Arr<double>::ensure(B);
        if (!xa || xa.ndim() != 2 || !ba || ba.ndim() != 2)
          throw ssm::Error("ssd_step takes one token: x (H, P), B and C (G, N)");
        const py::ssize_t H = xa.shape(0), P = xa.shape(1), G = ba.shape(0), N = ba.shape(1);
        ssm::SsdParams<double> p;
        p.H = int(H);
        p.P = int(P);
        p.N = int(N);
        p.G = int(G);
        p.A = flat<double>(A, "A", {H}, "(H,)");
        if (!D.is_none()) p.D_skip = flat<double>(D, "D", {H}, "(H,)");
        if (!delta_bias.is_none()) p.delta_bias = flat<double>(delta_bias, "delta_bias", {H}, "(H,)");
        p.delta_softplus = softplus;
        std::vector<double> st = h.is_none() ? std::vector<double>(std::size_t(H * P * N), 0.0)
                                             : flat<double>(h, "h", {H, P, N}, "(H, P, N)");
        const auto xv = flat<double>(x, "x", {H, P}, "(H, P)");
        const auto dv = flat<double>(delta, "delta", {H}, "(H,)");
        const auto bv = flat<double>(B, "B", {G, N}, "(G, N)");
        const auto cv = flat<double>(C, "C", {G, N}, "(G, N)");
        std::vector<double> y(std::size_t(H * P));
        ssm::ssd_step(p, 1, xv.data(), dv.data(), bv.data(), cv.data(), st, y.data());
        return py::make_tuple(shaped(y, {H, P}, false, 1), shaped(st, {H, P, N}, false, 1));
      },
      py::arg("h"), py::arg("x"), py::arg("delta"), py::arg("A"), py::arg("B"), py::arg("C"),
      py::arg("D") = py::none(), py::arg("delta_bias") = py::none(),
      py::arg("delta_softplus") = true,
      "Step mode: (y (H, P), h (H, P, N)) after one token; h None starts from zero.");

  m.def("offdiag_rank", &ssm::ssd_max_offdiag_rank, py::arg("M"), py::arg("Q"),
        py::arg("tol") = 1e-10,
        "Largest numerical rank of the blocks M[k:, :k], k = Q, 2Q, …: ≤ N for an SSD matrix.");
  m.def(
      "chunked_flops",
      [](long long L, int H, int P, int N, int Q, int batch) {
        return ssm::ssd_chunked_flops(batch, L, H, P, N, Q);
      },
      py::arg("L"), py::arg("H"), py::arg("P"), py::arg("N"), py::arg("Q"), py::arg("batch") = 1,
      "Flops of the chunked algorithm's matrix products (2 per multiply-add).");

  m.def(
      "causal_attention",
      [](const py::object& q, const py::object& k, const py::object& v, int heads) {
        ssm::Signals<double> y;
        ssm::causal_attention(sig<double>(q, "q"), sig<double>(k, "k"), sig<double>(v, "v"),
                              heads, y);
        return y;
      },
      py::arg("q"), py::arg("k"), py::arg("v"), py::arg("heads") = 1,
      "(X5) Causal softmax attention: q, k (L, heads·d_k), v (L, heads·d_v) → (L, heads·d_v).");
  m.def(
      "linear_attention",
      [](const py::object& q, const py::object& k, const py::object& v, int heads) {
        ssm::Signals<double> y;
        ssm::linear_attention(sig<double>(q, "q"), sig<double>(k, "k"), sig<double>(v, "v"),
                              heads, y);
        return y;
      },
      py::arg("q"), py::arg("k"), py::arg("v"), py::arg("heads") = 1,
      "(X5) Causal linear attention, the masked (q kᵀ) v: SSD with a = 1.");

  m.def(
      "log_space_scan",
      [](const py::object& a, const py::object& b, double h0) -> py::object {
        if (is_float32(a)) {
          const auto av = to_vec<float>(a, "a");
          const auto bv = to_vec<float>(b, "b");
          std::vector<float> h;
          ssm::log_space_scan(std::vector<float>(av.data(), av.data() + av.size()),
                              std::vector<float>(bv.data(), bv.data() + bv.size()), float(h0), h);
          return shaped(h, {py::ssize_t(h.size())}, false, 1);
        }
        const auto av = to_vec<double>(a, "a");
        const auto bv = to_vec<double>(b, "b");
        std::vector<double> h;
        ssm::log_space_scan(std::vector<double>(av.data(), av.data() + av.size()),
                            std::vector<double>(bv.data(), bv.data() + bv.size()), h0, h);
        return shaped(h, {py::ssize_t(h.size())}, false, 1);
      },
      py::arg("a"), py::arg("b"), py::arg("h0") = 0.0,
      "(X7) h_t = a_t h_{t−1} + b_t (a > 0) in log space: exp(a*_t + logcumsumexp(log b − a*)).");
  m.def(
      "blelloch_scan",
      [](const py::object& a, const py::object& b) {
        const auto av = to_vec<double>(a, "a");
        const auto bv = to_vec<double>(b, "b");
        ssm::require(av.size() == bv.size(), "blelloch_scan: a and b must have the same length");
        std::vector<ssm::ScanPair<double>> pr(std::size_t(av.size()));
        for (Eigen::Index i = 0; i < av.size(); ++i) pr[std::size_t(i)] = {av(i), bv(i)};
        const auto c = ssm::blelloch_scan(pr);
        Eigen::VectorXd A(av.size()), Bv(av.size());
        for (Eigen::Index i = 0; i < av.size(); ++i) {
          A(i) = pr[std::size_t(i)].a;
          Bv(i) = pr[std::size_t(i)].b;
        }
        return py::make_tuple(A, Bv, c.combines, c.depth);
      },
      py::arg("a"), py::arg("b"),
      "(X8) Inclusive prefix scan of the pairs (a_t, b_t) by Blelloch's tree: (a-prefix, b-prefix\n"
      "= the states from h = 0, combines, depth).");
}

}  // namespace ssmpy
