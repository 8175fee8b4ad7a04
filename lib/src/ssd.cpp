// Stage 9: the state space duality (docs/MATH.md, X1–X4). See ssm/ssd.hpp for the math.
#include "ssm/ssd.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <string>

#include <omp.h>

#include "elementwise.hpp"
#include "ssm/selective.hpp"  // inverse_softplus (M6)

namespace ssm {

namespace {

using detail::silu;
using detail::softplus;
using detail::uniform;

std::string str(long long v) { return std::to_string(v); }

// Δ of head h from its raw value (M1): softplus(Δraw + bias) or Δraw + bias.
template <class T>
T delta_of(const SsdParams<T>& p, T raw, int h) {
  const T x = raw + (p.delta_bias.empty() ? T(0) : p.delta_bias[std::size_t(h)]);
  return p.delta_softplus ? softplus(x) : x;
}

void check_size(const char* name, std::size_t got, std::size_t want, const char* shape) {
  if (got != want)
    throw Error(std::string("SSD: ") + name + " has " + str((long long)got) + " values, expected " +
                str((long long)want) + " = " + shape);
}

template <class T>
void check_finite(const char* name, const std::vector<T>& v) {
  for (std::size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(double(v[i])))
      throw Error(std::string("SSD: ") + name + "[" + str((long long)i) + "] = " +
                  fmt(double(v[i])) + " is not finite");
}

// Row-major views of one head's (or group's) rows in a (batch, L, heads, width) array: q rows
// starting at time t0, `width` columns, consecutive times `stride` values apart.
template <class T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using CView = Eigen::Map<const RowMat<T>, 0, Eigen::OuterStride<>>;
template <class T>
using View = Eigen::Map<RowMat<T>, 0, Eigen::OuterStride<>>;

}  // namespace

template <class T>
void validate(const SsdParams<T>& p) {
  require(p.H >= 1 && p.H <= (1 << 16), "SSD: heads H = " + str(p.H) + ", expected 1 ≤ H ≤ 65536");
  require(p.P >= 1 && p.P <= 4096, "SSD: head dim P = " + str(p.P) + ", expected 1 ≤ P ≤ 4096");
  require(p.N >= 1 && p.N <= 1024, "SSD: state size N = " + str(p.N) + ", expected 1 ≤ N ≤ 1024");
  require(p.G >= 1 && p.H % p.G == 0,
          "SSD: groups G = " + str(p.G) + " must be ≥ 1 and divide the heads H = " + str(p.H));
  check_size("A", p.A.size(), std::size_t(p.H), "(H)");
  if (!p.D_skip.empty()) check_size("D", p.D_skip.size(), std::size_t(p.H), "(H)");
  if (!p.delta_bias.empty()) check_size("delta_bias", p.delta_bias.size(), std::size_t(p.H), "(H)");
  for (int h = 0; h < p.H; ++h)
    require(std::isfinite(double(p.A[h])) && p.A[h] <= 0,
            "SSD: A[" + str(h) + "] = " + fmt(double(p.A[h])) +
                ", expected ≤ 0 (a = e^{ΔA} ≤ 1; A > 0 makes the state grow without bound)");
}

template <class T>
void validate(const SsdParams<T>& p, const SsdInputs<T>& in, bool check_values) {
  validate(p);
  require(in.batch >= 1, "SSD: batch = " + str(in.batch) + ", expected ≥ 1");
  require(in.L >= 1 && in.L <= (1 << 26), "SSD: L = " + str(in.L) + ", expected 1 ≤ L ≤ 2^26");
  const std::size_t BL = std::size_t(in.batch) * std::size_t(in.L);
  check_size("x", in.x.size(), BL * p.H * p.P, "(batch, L, H, P)");
  check_size("delta", in.delta.size(), BL * p.H, "(batch, L, H)");
  check_size("B", in.B.size(), BL * p.G * p.N, "(batch, L, G, N)");
  check_size("C", in.C.size(), BL * p.G * p.N, "(batch, L, G, N)");
  if (!in.h0.empty())
    check_size("h0", in.h0.size(), std::size_t(in.batch) * p.H * p.P * p.N, "(batch, H, P, N)");
  if (!check_values) return;
  check_finite("x", in.x);
  check_finite("delta", in.delta);
  check_finite("B", in.B);
  check_finite("C", in.C);
  check_finite("h0", in.h0);
  check_finite("D", p.D_skip);
  check_finite("delta_bias", p.delta_bias);
}

template <class T>
T ssd_delta(const SsdParams<T>& p, const SsdInputs<T>& in, int b, long long t, int h) {
  return delta_of(p, in.delta[(std::size_t(b) * in.L + t) * p.H + h], h);
}

// (X1), written straight from the recurrence. State index (b, h, p, n).
SsdOutputs<double> ssd_reference(const SsdParams<double>& p, const SsdInputs<double>& in) {
  validate(p, in);
  const int H = p.H, P = p.P, N = p.N, G = p.G, hpg = H / G;
  const long long L = in.L;
  SsdOutputs<double> out;
  out.y.assign(in.x.size(), 0.0);
  out.h_last.assign(std::size_t(in.batch) * H * P * N, 0.0);
  for (int b = 0; b < in.batch; ++b)
    for (int h = 0; h < H; ++h) {
      double* S = &out.h_last[(std::size_t(b) * H + h) * P * N];  // (P, N)
      if (!in.h0.empty()) std::copy_n(&in.h0[(std::size_t(b) * H + h) * P * N], P * N, S);
      const double Dh = p.D_skip.empty() ? 0.0 : p.D_skip[h];
      for (long long t = 0; t < L; ++t) {
        const double dt = ssd_delta(p, in, b, t, h);
        const double a = std::exp(dt * p.A[h]);  // one decay for the whole head (X1)
        const double* x = &in.x[((std::size_t(b) * L + t) * H + h) * P];
        const std::size_t bc = ((std::size_t(b) * L + t) * G + h / hpg) * N;
        const double* Bt = &in.B[bc];
        const double* Ct = &in.C[bc];
        double* y = &out.y[((std::size_t(b) * L + t) * H + h) * P];
        for (int i = 0; i < P; ++i) {
          double acc = 0.0;
          for (int n = 0; n < N; ++n) {
            double& s = S[i * N + n];
            s = a * s + dt * Bt[n] * x[i];  // H_t = a_t H_{t−1} + Δ_t B_t x_tᵀ
            acc += Ct[n] * s;               // y_t = H_tᵀ C_t
          }
          y[i] = acc + Dh * x[i];
        }
      }
    }
  return out;
}

// (X2): M[t, s] = C_tᵀ B_s Δ_s exp(Σ_{s<r≤t} Δ_r A). The sums come from a cumulative sum taken
// in double; the product of the a_r directly would underflow no sooner, but would cost O(L³).
Mat ssd_matrix(const SsdParams<double>& p, const SsdInputs<double>& in, int b, int h) {
  validate(p, in);
  require(b >= 0 && b < in.batch, "ssd_matrix: batch index " + str(b) + " out of range");
  require(h >= 0 && h < p.H, "ssd_matrix: head " + str(h) + " out of range");
  const long long L = in.L;
  const int N = p.N, g = h / (p.H / p.G);
  Vec cum(L), dt(L);  // cum[t] = Σ_{r≤t} Δ_r A
  double c = 0.0;
  for (long long t = 0; t < L; ++t) {
    dt(t) = ssd_delta(p, in, b, t, h);
    c += dt(t) * p.A[h];
    cum(t) = c;
  }
  const CView<double> B(&in.B[(std::size_t(b) * L * p.G + g) * N], L, N,
                        Eigen::OuterStride<>(p.G * N));
  const CView<double> C(&in.C[(std::size_t(b) * L * p.G + g) * N], L, N,
                        Eigen::OuterStride<>(p.G * N));
  Mat M = C * B.transpose();  // C Bᵀ, then the decay mask L ∘ (·) and Δ_s
  for (long long t = 0; t < L; ++t)
    for (long long s = 0; s < L; ++s)
      M(t, s) = s <= t ? M(t, s) * dt(s) * std::exp(cum(t) - cum(s)) : 0.0;
  return M;
}

// (X3). For one (batch, head): chunk by chunk, the quadratic form inside the chunk plus the
// carried state's contribution, then the state carried to the next chunk.
template <class T>
void ssd_chunked(const SsdParams<T>& p, const SsdInputs<T>& in, SsdOutputs<T>& out, int Q,
                 int threads) {
  validate(p, in, false);
  require(Q >= 1, "SSD: chunk length Q = " + str(Q) + ", expected ≥ 1");
  const int H = p.H, P = p.P, N = p.N, G = p.G, hpg = H / G;
  const long long L = in.L;
  const int Qe = int(std::min<long long>(Q, L));
  out.y.assign(in.x.size(), T(0));
  out.h_last.assign(std::size_t(in.batch) * H * P * N, T(0));
  const int pairs = in.batch * H;
#pragma omp parallel num_threads(resolve_threads(threads))
  {
    // Each thread runs its GEMMs alone. Without this a 1-thread team, an inactive region, lets
    // Eigen open its own 2-thread region for every small product: measured 30× slower.
    omp_set_num_threads(1);
    using Arr = Eigen::Array<T, Eigen::Dynamic, 1>;
    RowMat<T> Gm(Qe, Qe), Xd(Qe, P), S(N, P), Yc(Qe, P), CS(Qe, P);
    Arr cs(Qe), dt(Qe);
#pragma omp for schedule(dynamic)
    for (int bh = 0; bh < pairs; ++bh) {
      const int b = bh / H, h = bh % H, g = h / hpg;
      const T A = p.A[h], Dh = p.D_skip.empty() ? T(0) : p.D_skip[h];
      // The carried state H_prev, kept as (N, P) so that C_c H_prev and B_cᵀ X are plain GEMMs.
      S.setZero();
      if (!in.h0.empty())
        S = Eigen::Map<const RowMat<T>>(&in.h0[std::size_t(bh) * P * N], P, N).transpose();
      for (long long t0 = 0; t0 < L; t0 += Qe) {
        const int q = int(std::min<long long>(Qe, L - t0));
        const std::size_t xo = ((std::size_t(b) * L + t0) * H + h) * P;
        const std::size_t bo = ((std::size_t(b) * L + t0) * G + g) * N;
        const CView<T> X(&in.x[xo], q, P, Eigen::OuterStride<>(H * P));
        const CView<T> Bc(&in.B[bo], q, N, Eigen::OuterStride<>(G * N));
        const CView<T> Cc(&in.C[bo], q, N, Eigen::OuterStride<>(G * N));
        View<T> Y(&out.y[xo], q, P, Eigen::OuterStride<>(H * P));
        T c = 0;  // cs[i] = Σ_{r ≤ i} Δ_r A inside the chunk: the chunk's log decays
        for (int i = 0; i < q; ++i) {
          dt(i) = ssd_delta(p, in, b, t0 + i, h);
          c += dt(i) * A;
          cs(i) = c;
        }
        auto xd = Xd.topRows(q);
        xd.noalias() = dt.head(q).matrix().asDiagonal() * X;  // Δ_s x_s: B̄ = Δ B (M2)
        // Inside the chunk: (L_c ∘ C_c B_cᵀ)(Δx)_c, with L_c[i, j] = e^{cs_i − cs_j}, j ≤ i.
        auto gm = Gm.topLeftCorner(q, q);
        gm.noalias() = Cc * Bc.transpose();
        for (int i = 0; i < q; ++i) {
          gm.row(i).head(i + 1).array() *= (cs(i) - cs.head(i + 1)).exp().transpose();
          gm.row(i).tail(q - i - 1).setZero();
        }
        auto yc = Yc.topRows(q);
        yc.noalias() = gm * xd;
        // The state carried in from earlier chunks, decayed to each step: e^{cs_i} C_i H_prev.
        auto cst = CS.topRows(q);
        cst.noalias() = Cc * S;
        yc.noalias() += cs.head(q).exp().matrix().asDiagonal() * cst;
        Y = yc + Dh * X;
        // The state after the chunk: e^{cs_last} H_prev + Σ_s e^{cs_last − cs_s} Δ_s B_s x_sᵀ.
        const T last = cs(q - 1);
        xd = (last - cs.head(q)).exp().matrix().asDiagonal() * xd;
        S *= std::exp(last);
        S.noalias() += Bc.transpose() * xd;
      }
      Eigen::Map<RowMat<T>>(&out.h_last[std::size_t(bh) * P * N], P, N) = S.transpose();
    }
  }
}

template <class T>
void ssd_sequential(const SsdParams<T>& p, const SsdInputs<T>& in, SsdOutputs<T>& out,
                    int threads) {
  validate(p, in, false);
  const int H = p.H, P = p.P, N = p.N, G = p.G, hpg = H / G;
  const long long L = in.L;
  out.y.assign(in.x.size(), T(0));
  out.h_last.assign(std::size_t(in.batch) * H * P * N, T(0));
  const int pairs = in.batch * H;
#pragma omp parallel num_threads(resolve_threads(threads))
  {
    omp_set_num_threads(1);  // Eigen's products stay on this thread (see ssd_chunked)
    RowMat<T> S(N, P);  // H_t as (N, P)
#pragma omp for schedule(dynamic)
    for (int bh = 0; bh < pairs; ++bh) {
      const int b = bh / H, h = bh % H, g = h / hpg;
      const T Dh = p.D_skip.empty() ? T(0) : p.D_skip[h];
      S.setZero();
      if (!in.h0.empty())
        S = Eigen::Map<const RowMat<T>>(&in.h0[std::size_t(bh) * P * N], P, N).transpose();
      for (long long t = 0; t < L; ++t) {
        const T dt = ssd_delta(p, in, b, t, h);
        const std::size_t xo = ((std::size_t(b) * L + t) * H + h) * P;
        const std::size_t bo = ((std::size_t(b) * L + t) * G + g) * N;
        const Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>> x(&in.x[xo], P), Bt(&in.B[bo], N),
            Ct(&in.C[bo], N);
        S *= std::exp(dt * p.A[h]);               // a_t H_{t−1}
        S.noalias() += (dt * Bt) * x.transpose();  // + Δ_t B_t x_tᵀ (rank 1)
        Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>>(&out.y[xo], P) =
            S.transpose() * Ct + Dh * x;  // y_t = H_tᵀ C_t + D x_t
      }
      Eigen::Map<RowMat<T>>(&out.h_last[std::size_t(bh) * P * N], P, N) = S.transpose();
    }
  }
}

template <class T>
void ssd_step(const SsdParams<T>& p, int batch, const T* x, const T* delta, const T* B,
              const T* C, std::vector<T>& h, T* y) {
  validate(p);
  require(batch >= 1, "SSD step: batch = " + str(batch) + ", expected ≥ 1");
  const int H = p.H, P = p.P, N = p.N, G = p.G, hpg = H / G;
  check_size("state h", h.size(), std::size_t(batch) * H * P * N, "(batch, H, P, N)");
  for (int b = 0; b < batch; ++b)
    for (int hd = 0; hd < H; ++hd) {
      const T dt = delta_of(p, delta[b * H + hd], hd);
      const T a = std::exp(dt * p.A[hd]);
      const T* xt = x + (std::size_t(b) * H + hd) * P;
      const T* Bt = B + (std::size_t(b) * G + hd / hpg) * N;
      const T* Ct = C + (std::size_t(b) * G + hd / hpg) * N;
      // The state of this head as a (P, N) row-major matrix: a rank-1 update and a mat-vec
      // (X1), vectorized by Eigen.
      Eigen::Map<RowMat<T>> S(&h[(std::size_t(b) * H + hd) * P * N], P, N);
      const Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>> xv(xt, P), Bv(Bt, N), Cv(Ct, N);
      const T Dh = p.D_skip.empty() ? T(0) : p.D_skip[hd];
      S *= a;
      S.noalias() += (dt * xv) * Bv.transpose();  // H ← a H + Δ x Bᵀ (stored transposed: P×N)
      Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>>(y + (std::size_t(b) * H + hd) * P, P) =
          S * Cv + Dh * xv;
    }
}

template <class T>
void ssd_stepwise(const SsdParams<T>& p, const SsdInputs<T>& in, SsdOutputs<T>& out) {
  validate(p, in, false);
  const int B = in.batch, H = p.H, P = p.P, N = p.N, G = p.G;
  const std::size_t L = std::size_t(in.L);
  out.y.assign(in.x.size(), T(0));
  out.h_last = in.h0.empty() ? std::vector<T>(std::size_t(B) * H * P * N, T(0)) : in.h0;
  // Token t of every sequence, gathered into step mode's (batch, ·) layout.
  std::vector<T> xt(std::size_t(B) * H * P), dt(std::size_t(B) * H), Bt(std::size_t(B) * G * N),
      Ct(Bt.size()), yt(xt.size());
  for (std::size_t t = 0; t < L; ++t) {
    for (std::size_t b = 0; b < std::size_t(B); ++b) {
      std::copy_n(&in.x[(b * L + t) * H * P], H * P, &xt[b * H * P]);
      std::copy_n(&in.delta[(b * L + t) * H], H, &dt[b * H]);
      std::copy_n(&in.B[(b * L + t) * G * N], G * N, &Bt[b * G * N]);
      std::copy_n(&in.C[(b * L + t) * G * N], G * N, &Ct[b * G * N]);
    }
    ssd_step(p, B, xt.data(), dt.data(), Bt.data(), Ct.data(), out.h_last, yt.data());
    for (std::size_t b = 0; b < std::size_t(B); ++b)
      std::copy_n(&yt[b * H * P], H * P, &out.y[(b * L + t) * H * P]);
  }
}

double ssd_chunked_flops(int batch, long long L, int H, int P, int N, int Q) {
  require(Q >= 1 && L >= 1, "ssd_chunked_flops: need Q ≥ 1 and L ≥ 1");
  double f = 0.0;
  for (long long t0 = 0; t0 < L; t0 += Q) {
    const double q = double(std::min<long long>(Q, L - t0));
    f += 2.0 * q * q * (N + P) + 4.0 * q * N * P;  // CBᵀ, (·)Δx; C H_prev, Bᵀ(wΔx)
  }
  return f * batch * H;
}

int ssd_max_offdiag_rank(const Mat& M, int Q, double tol) {
  require(M.rows() == M.cols(), "ssd_max_offdiag_rank: M must be square");
  require(Q >= 1, "ssd_max_offdiag_rank: block step Q = " + str(Q) + ", expected ≥ 1");
  int worst = 0;
  for (Eigen::Index k = Q; k < M.rows(); k += Q) {
    // The whole block below and left of the diagonal at k: rows k.., columns ..k−1. Every
    // path from an input s < k to an output t ≥ k passes through the state at time k − 1.
    const Mat blk = M.bottomLeftCorner(M.rows() - k, k);
    const Eigen::VectorXd sv = Eigen::BDCSVD<Mat>(blk).singularValues();
    if (sv.size() == 0 || sv(0) == 0.0) continue;
    worst = std::max(worst, int((sv.array() > tol * sv(0)).count()));
  }
  return worst;
}

template <class T>
void random_ssd_problem(const SsdShape& s, std::uint64_t seed, SsdParams<T>& p, SsdInputs<T>& in,
                        bool initial_state) {
  std::mt19937_64 rng(mix_seed(seed, 77));
  std::normal_distribution<double> nrm;
  std::uniform_real_distribution<double> u01(0.0, 1.0);
  p = SsdParams<T>{};
  p.H = s.H;
  p.P = s.P;
  p.N = s.N;
  p.G = s.G;
  for (int h = 0; h < s.H; ++h) {
    p.A.push_back(static_cast<T>(-(1.0 + 15.0 * u01(rng))));
    p.D_skip.push_back(T(1));
    const double dt = std::exp(std::log(1e-3) + u01(rng) * (std::log(1e-1) - std::log(1e-3)));
    p.delta_bias.push_back(static_cast<T>(inverse_softplus(dt)));
  }
  validate(p);  // the shape, before anything of its size is allocated
  in = SsdInputs<T>{};
  in.batch = s.batch;
  in.L = s.L;
  require(s.batch >= 1 && s.L >= 1, "random_ssd_problem: batch and L must be ≥ 1");
  const std::size_t BL = std::size_t(s.batch) * s.L;
  const double bs = 1.0 / std::sqrt(double(s.N));
  auto fill = [&](std::vector<T>& v, std::size_t n, double scale) {
    v.resize(n);
    for (auto& e : v) e = static_cast<T>(scale * nrm(rng));
  };
  fill(in.x, BL * s.H * s.P, 1.0);
  fill(in.delta, BL * s.H, 0.5);
  fill(in.B, BL * s.G * s.N, bs);
  fill(in.C, BL * s.G * s.N, bs);
  if (initial_state) fill(in.h0, std::size_t(s.batch) * s.H * s.P * s.N, 1.0);
}

template <class To, class From>
SsdParams<To> cast_params(const SsdParams<From>& p) {
  SsdParams<To> q;
  q.H = p.H;
  q.P = p.P;
  q.N = p.N;
  q.G = p.G;
  q.A.assign(p.A.begin(), p.A.end());
  q.D_skip.assign(p.D_skip.begin(), p.D_skip.end());
  q.delta_bias.assign(p.delta_bias.begin(), p.delta_bias.end());
  q.delta_softplus = p.delta_softplus;
  return q;
}
template <class To, class From>
SsdInputs<To> cast_inputs(const SsdInputs<From>& in) {
  SsdInputs<To> o;
  o.batch = in.batch;
  o.L = in.L;
  o.x.assign(in.x.begin(), in.x.end());
  o.delta.assign(in.delta.begin(), in.delta.end());
  o.B.assign(in.B.begin(), in.B.end());
  o.C.assign(in.C.begin(), in.C.end());
  o.h0.assign(in.h0.begin(), in.h0.end());
  return o;
}

void ssd_as_selective_scan(const SsdParams<double>& p, const SsdInputs<double>& in,
                           ScanParams<double>& sp, ScanInputs<double>& si) {
  validate(p, in);
  require(p.G == 1, "ssd_as_selective_scan: needs G = 1 (stage 7 shares one B, C per batch), got " +
                        str(p.G));
  const int H = p.H, P = p.P, N = p.N, D = H * P, L = in.L;
  sp = ScanParams<double>{};
  sp.D = D;
  sp.N = N;
  sp.delta_softplus = p.delta_softplus;
  for (int d = 0; d < D; ++d) {
    for (int n = 0; n < N; ++n) sp.A.push_back(p.A[d / P]);  // scalar A: equal diagonal entries
    if (!p.D_skip.empty()) sp.D_skip.push_back(p.D_skip[d / P]);
    if (!p.delta_bias.empty()) sp.delta_bias.push_back(p.delta_bias[d / P]);
  }
  si = ScanInputs<double>{};
  si.batch = in.batch;
  si.L = L;
  si.u.resize(std::size_t(in.batch) * D * L);
  si.delta.resize(si.u.size());
  si.B.resize(std::size_t(in.batch) * N * L);
  si.C.resize(si.B.size());
  for (int b = 0; b < in.batch; ++b)
    for (int t = 0; t < L; ++t) {
      for (int d = 0; d < D; ++d) {
        si.u[(std::size_t(b) * D + d) * L + t] = in.x[(std::size_t(b) * L + t) * D + d];
        si.delta[(std::size_t(b) * D + d) * L + t] = in.delta[(std::size_t(b) * L + t) * H + d / P];
      }
      for (int n = 0; n < N; ++n) {
        si.B[(std::size_t(b) * N + n) * L + t] = in.B[(std::size_t(b) * L + t) * N + n];
        si.C[(std::size_t(b) * N + n) * L + t] = in.C[(std::size_t(b) * L + t) * N + n];
      }
    }
  si.h0 = in.h0;  // (batch, H, P, N) is (batch, D, N): the same order
}

std::vector<double> ssd_from_scan_layout(const std::vector<double>& y, int batch, int L, int D) {
  require(y.size() == std::size_t(batch) * L * D, "ssd_from_scan_layout: y has the wrong size");
  std::vector<double> o(y.size());
  for (int b = 0; b < batch; ++b)
    for (int d = 0; d < D; ++d)
      for (int t = 0; t < L; ++t)
        o[(std::size_t(b) * L + t) * D + d] = y[(std::size_t(b) * D + d) * L + t];
  return o;
}

// ---------------------------------------------------------------------------------------------
// (X4) The Mamba-2 block.

namespace {
void check_cfg(const char* name, int v, int lo, int hi) {
  if (v < lo || v > hi)
    throw Error(std::string("Mamba-2 config: ") + name + " = " + str(v) + " is out of range [" +
                str(lo) + ", " + str(hi) + "]");
}
}  // namespace

template <class T>
Mamba2Block<T>::Mamba2Block(const Mamba2Config& cfg, std::uint64_t seed) : cfg_(cfg) {
  check_cfg("d_model", cfg.d_model, 1, 4096);
  check_cfg("expand", cfg.expand, 1, 8);
  check_cfg("d_state", cfg.d_state, 1, 256);
  check_cfg("d_conv", cfg.d_conv, 1, 16);
  check_cfg("chunk", cfg.chunk, 1, 1 << 20);
  const int di = cfg.d_inner();
  require(cfg.headdim >= 1 && di % cfg.headdim == 0,
          "Mamba-2 config: headdim = " + str(cfg.headdim) +
              " must be ≥ 1 and divide d_inner = expand·d_model = " + str(di));
  const int H = cfg.nheads();
  require(cfg.ngroups >= 1 && H % cfg.ngroups == 0,
          "Mamba-2 config: ngroups = " + str(cfg.ngroups) + " must be ≥ 1 and divide the " +
              str(H) + " heads");
  require(cfg.dt_min > 0 && cfg.dt_min <= cfg.dt_max && std::isfinite(cfg.dt_max),
          "Mamba-2 config: need 0 < dt_min <= dt_max, got " + fmt(cfg.dt_min) + ", " +
              fmt(cfg.dt_max));
  const int dm = cfg.d_model, K = cfg.d_conv, cd = cfg.conv_dim(), GN = cfg.ngroups * cfg.d_state;
  std::mt19937_64 rng(mix_seed(seed, 900));
  w_.in_proj = uniform<T>(rng, 2 * di + 2 * GN + H, dm, 1.0 / std::sqrt(double(dm)));
  w_.conv_w = uniform<T>(rng, cd, K, 1.0 / std::sqrt(double(K)));
  w_.conv_b = uniform<T>(rng, cd, 1, 1.0 / std::sqrt(double(K)));
  std::uniform_real_distribution<double> u01(0.0, 1.0);
  w_.dt_bias.resize(H);
  w_.A_log.resize(H);
  for (int h = 0; h < H; ++h) {
    const double dt = std::exp(std::log(cfg.dt_min) +
                               u01(rng) * (std::log(cfg.dt_max) - std::log(cfg.dt_min)));
    w_.dt_bias(h) = static_cast<T>(inverse_softplus(std::max(dt, 1e-4)));
    w_.A_log(h) = static_cast<T>(std::log(1.0 + 15.0 * u01(rng)));  // A ~ U[1, 16]
  }
  w_.D = VecT<T>::Ones(H);
  w_.norm_w = VecT<T>::Ones(di);
  w_.out_proj = uniform<T>(rng, dm, di, 1.0 / std::sqrt(double(di)));
  p_.H = H;
  p_.P = cfg.headdim;
  p_.N = cfg.d_state;
  p_.G = cfg.ngroups;
  p_.A.resize(H);
  for (int h = 0; h < H; ++h) p_.A[h] = static_cast<T>(-std::exp(double(w_.A_log(h))));
  p_.D_skip.assign(w_.D.data(), w_.D.data() + H);
  p_.delta_bias.assign(w_.dt_bias.data(), w_.dt_bias.data() + H);
  p_.delta_softplus = true;
  validate(p_);
}

template <class T>
Mamba2State<T> Mamba2Block<T>::initial_state() const {
  Mamba2State<T> s;
  s.conv = MatT<T>::Zero(cfg_.conv_dim(), cfg_.d_conv);
  s.ssm.assign(std::size_t(p_.H) * p_.P * p_.N, T(0));
  return s;
}

namespace {
// y ← RMSNorm(y · silu(z)) · w over groups of `gs` channels (Mamba-2's gated norm, the gate
// applied before the norm). One token of d_inner values.
template <class T>
void gated_rms_norm(T* y, const T* z, const VecT<T>& w, int gs, double eps) {
  const int di = int(w.size());
  for (int g0 = 0; g0 < di; g0 += gs) {
    double ms = 0.0;
    for (int c = g0; c < g0 + gs; ++c) {
      y[c] *= silu(z[c]);
      ms += double(y[c]) * double(y[c]);
    }
    const T inv = static_cast<T>(1.0 / std::sqrt(ms / gs + eps));
    for (int c = g0; c < g0 + gs; ++c) y[c] = y[c] * inv * w(c);
  }
}
}  // namespace

template <class T>
void Mamba2Block<T>::forward(const Signals<T>& U, Signals<T>& Y, Mamba2State<T>* state,
                             int threads) const {
  require(U.cols() == cfg_.d_model, "Mamba-2 forward: input has " + str(U.cols()) +
                                        " features per token, expected d_model = " +
                                        str(cfg_.d_model));
  require(U.rows() >= 1, "Mamba-2 forward: L = 0 tokens (expected at least 1)");
  require(U.allFinite(), "Mamba-2 forward: the input holds non-finite values");
  const Eigen::Index L = U.rows();
  const int di = cfg_.d_inner(), cd = cfg_.conv_dim(), K = cfg_.d_conv, H = p_.H,
            GN = cfg_.ngroups * cfg_.d_state;
  if (state)
    require(state->conv.rows() == cd && state->conv.cols() == K &&
                state->ssm.size() == std::size_t(H) * p_.P * p_.N,
            "Mamba-2 forward: the state has the wrong shape");
  const Signals<T> zx = U * w_.in_proj.transpose();  // (L, ...): z | xBC | δ
  // Input of the conv at time τ (τ < 0: the state's window, or zero).
  auto conv_in = [&](Eigen::Index tau, int c) -> T {
    if (tau >= 0) return zx(tau, di + c);
    if (state && tau >= -K) return state->conv(c, K + tau);
    return T(0);
  };
  SsdInputs<T> in;
  in.batch = 1;
  in.L = int(L);
  in.x.resize(std::size_t(L) * di);
  in.B.resize(std::size_t(L) * GN);
  in.C.resize(std::size_t(L) * GN);
  in.delta.resize(std::size_t(L) * H);
  for (Eigen::Index t = 0; t < L; ++t) {
    for (int c = 0; c < cd; ++c) {  // causal depthwise conv, then SiLU
      T acc = w_.conv_b(c);
      for (int k = 0; k < K; ++k) acc += w_.conv_w(c, k) * conv_in(t - (K - 1) + k, c);
      const T v = silu(acc);
      if (c < di)
        in.x[std::size_t(t) * di + c] = v;
      else if (c < di + GN)
        in.B[std::size_t(t) * GN + (c - di)] = v;
      else
        in.C[std::size_t(t) * GN + (c - di - GN)] = v;
    }
    for (int h = 0; h < H; ++h) in.delta[std::size_t(t) * H + h] = zx(t, di + cd + h);
  }
  if (state) in.h0 = state->ssm;
  SsdOutputs<T> so;
  ssd_chunked(p_, in, so, cfg_.chunk, threads);  // (X3)
  for (Eigen::Index t = 0; t < L; ++t)
    gated_rms_norm(&so.y[std::size_t(t) * di], &zx(t, 0), w_.norm_w, di / cfg_.ngroups,
                   cfg_.rms_eps);
  const Eigen::Map<const Signals<T>> Yin(so.y.data(), L, di);
  Y = Yin * w_.out_proj.transpose();
  if (state) {
    MatT<T> win(cd, K);
    for (int k = 0; k < K; ++k)
      for (int c = 0; c < cd; ++c) win(c, k) = conv_in(L - K + k, c);
    state->conv = win;
    state->ssm = so.h_last;
  }
}

template <class T>
void Mamba2Block<T>::step(const T* u, T* y, Mamba2State<T>& st) const {
  const int di = cfg_.d_inner(), cd = cfg_.conv_dim(), K = cfg_.d_conv, H = p_.H,
            GN = cfg_.ngroups * cfg_.d_state;
  require(st.conv.rows() == cd && st.conv.cols() == K &&
              st.ssm.size() == std::size_t(H) * p_.P * p_.N,
          "Mamba-2 step: the state has the wrong shape");
  const VecT<T> zx = w_.in_proj * Eigen::Map<const VecT<T>>(u, cfg_.d_model);
  for (int k = 0; k + 1 < K; ++k) st.conv.col(k) = st.conv.col(k + 1);  // slide the window
  st.conv.col(K - 1) = zx.segment(di, cd);
  VecT<T> xbc = st.conv.cwiseProduct(w_.conv_w).rowwise().sum() + w_.conv_b;
  for (int c = 0; c < cd; ++c) xbc(c) = silu(xbc(c));
  VecT<T> yi(di);
  ssd_step(p_, 1, xbc.data(), zx.data() + di + cd, xbc.data() + di, xbc.data() + di + GN, st.ssm,
           yi.data());
  gated_rms_norm(yi.data(), zx.data(), w_.norm_w, di / cfg_.ngroups, cfg_.rms_eps);
  Eigen::Map<VecT<T>>(y, cfg_.d_model) = w_.out_proj * yi;
}

#define SSM_SSD_INSTANTIATE(T)                                                                 \
  template void validate<T>(const SsdParams<T>&);                                              \
  template void validate<T>(const SsdParams<T>&, const SsdInputs<T>&, bool);                   \
  template T ssd_delta<T>(const SsdParams<T>&, const SsdInputs<T>&, int, long long, int);      \
  template void ssd_chunked<T>(const SsdParams<T>&, const SsdInputs<T>&, SsdOutputs<T>&, int, \
                               int);                                                           \
  template void ssd_sequential<T>(const SsdParams<T>&, const SsdInputs<T>&, SsdOutputs<T>&,    \
                                  int);                                                        \
  template void ssd_step<T>(const SsdParams<T>&, int, const T*, const T*, const T*, const T*,  \
                            std::vector<T>&, T*);                                              \
  template void ssd_stepwise<T>(const SsdParams<T>&, const SsdInputs<T>&, SsdOutputs<T>&);     \
  template class Mamba2Block<T>;                                                              \
  template void random_ssd_problem<T>(const SsdShape&, std::uint64_t, SsdParams<T>&,           \
                                      SsdInputs<T>&, bool);
SSM_SSD_INSTANTIATE(float)
SSM_SSD_INSTANTIATE(double)
#undef SSM_SSD_INSTANTIATE
template SsdParams<float> cast_params<float, double>(const SsdParams<double>&);
template SsdParams<double> cast_params<double, float>(const SsdParams<float>&);
template SsdInputs<float> cast_inputs<float, double>(const SsdInputs<double>&);
template SsdInputs<double> cast_inputs<double, float>(const SsdInputs<float>&);

}  // namespace ssm
