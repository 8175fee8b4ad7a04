// The two experiments of ssm-mamba that are not a cross-check: the selectivity lesson and the
// float precision study (declared in ssm/selective.hpp).
#include <Eigen/QR>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "ssm/convolution.hpp"
#include "ssm/selective.hpp"
#include "ssm/vmath.hpp"

namespace ssm {

namespace {

double softplus_d(double x) {
  return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}

void check_int(const char* name, long long v, long long lo, long long hi) {
  if (v < lo || v > hi)
    throw Error(std::string("selectivity lesson: ") + name + " = " + std::to_string(v) +
                " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
}

struct Sequences {
  int count = 0;
  std::vector<double> u, marker;  // (count, L)
  std::vector<std::vector<int>> content;
};

Sequences make_sequences(const SelectivityConfig& c, int count, std::mt19937_64& rng) {
  Sequences s;
  s.count = count;
  s.u.resize(std::size_t(count) * c.L);
  s.marker.assign(std::size_t(count) * c.L, 0.0);
  std::uniform_int_distribution<int> digit(1, c.vocab);
  std::vector<int> pos(static_cast<std::size_t>(c.L));
  for (int i = 0; i < count; ++i) {
    for (int t = 0; t < c.L; ++t) s.u[std::size_t(i) * c.L + t] = digit(rng);
    for (int t = 0; t < c.L; ++t) pos[std::size_t(t)] = t;
    std::shuffle(pos.begin(), pos.end(), rng);
    std::vector<int> ct(pos.begin(), pos.begin() + c.K);
    std::sort(ct.begin(), ct.end());
    for (int t : ct) s.marker[std::size_t(i) * c.L + t] = 1.0;
    s.content.push_back(ct);
  }
  return s;
}

// Final states h_L (count, N) of the one-channel model with Δraw = w·m_t and bias b.
Mat final_states(const SelectivityConfig& c, const Sequences& s, double w, double b) {
  ScanParams<double> p;
  p.D = 1;
  p.N = c.N;
  for (int n = 0; n < c.N; ++n) p.A.push_back(-c.a0 * (n + 1));
  p.delta_bias = {b};
  ScanInputs<double> in;
  in.batch = s.count;
  in.L = c.L;
  in.u = s.u;
  in.delta.resize(s.marker.size());
  for (std::size_t i = 0; i < s.marker.size(); ++i) in.delta[i] = w * s.marker[i];
  in.B.assign(std::size_t(s.count) * c.N * c.L, 1.0);
  in.C.assign(std::size_t(s.count) * c.N * c.L, 0.0);  // y is not used: the readout is on h_L
  const auto out = selective_scan_reference(p, in);
  Mat H(s.count, c.N);
  for (int i = 0; i < s.count; ++i)
    for (int n = 0; n < c.N; ++n) H(i, n) = out.h_last[std::size_t(i) * c.N + n];
  return H;
}

// The content digits (count, K) of a set of sequences.
Mat content_digits(const SelectivityConfig& c, const Sequences& s) {
  Mat V(s.count, c.K);
  for (int i = 0; i < s.count; ++i)
    for (int k = 0; k < c.K; ++k)
      V(i, k) = s.u[std::size_t(i) * c.L + s.content[std::size_t(i)][std::size_t(k)]];
  return V;
}

// Least-squares readout [h, 1] → digits fitted on (Htr, Vtr), applied to Hte.
Mat fit_and_decode(const Mat& Htr, const Mat& Vtr, const Mat& Hte) {
  auto aug = [](const Mat& H) {
    Mat X(H.rows(), H.cols() + 1);
    X << H, Mat::Ones(H.rows(), 1);
    return X;
  };
  // Scale columns so the QR is not troubled by states of very different sizes.
  Mat Xtr = aug(Htr);
  Vec scale = Xtr.cwiseAbs().colwise().maxCoeff().transpose();
  for (Eigen::Index j = 0; j < scale.size(); ++j)
    if (!(scale(j) > 0)) scale(j) = 1.0;
  Xtr = Xtr * scale.cwiseInverse().asDiagonal();
  const Mat W = Xtr.colPivHouseholderQr().solve(Vtr);
  return aug(Hte) * scale.cwiseInverse().asDiagonal() * W;
}

double recall(const Mat& decoded, const Mat& truth) {
  int ok = 0;
  for (Eigen::Index i = 0; i < truth.size(); ++i)
    ok += std::lround(decoded.data()[i]) == std::lround(truth.data()[i]);
  return double(ok) / double(truth.size());
}

// h_t of one sequence in step mode (N, L), and Δ_t (L).
void trace(const SelectivityConfig& c, const Sequences& s, int i, double w, double b, Mat& states,
           std::vector<double>& delta) {
  ScanParams<double> p;
  p.D = 1;
  p.N = c.N;
  for (int n = 0; n < c.N; ++n) p.A.push_back(-c.a0 * (n + 1));
  p.delta_bias = {b};
  StepInputs<double> st;
  st.B.assign(std::size_t(c.N), 1.0);
  st.C.assign(std::size_t(c.N), 0.0);
  std::vector<double> h, y;
  states.resize(c.N, c.L);
  delta.resize(std::size_t(c.L));
  for (int t = 0; t < c.L; ++t) {
    const double raw = w * s.marker[std::size_t(i) * c.L + t];
    st.u = {s.u[std::size_t(i) * c.L + t]};
    st.delta = {raw};
    selective_state_update(p, st, h, y);
    for (int n = 0; n < c.N; ++n) states(n, t) = h[std::size_t(n)];
    const double x = raw + b;
    delta[std::size_t(t)] = x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));  // (M1)
  }
}

}  // namespace

SelectivityResult selectivity_lesson(const SelectivityConfig& c) {
  check_int("N", c.N, 1, 32);
  check_int("L", c.L, 2, 4096);
  check_int("K", c.K, 1, std::min(c.N, c.L / 2));
  check_int("vocab", c.vocab, 2, 100);
  check_int("train", c.train, 2LL * c.N + 2, 100000);
  check_int("test", c.test, 1, 100000);
  require(c.delta_content > 0 && c.delta_content <= 10,
          "selectivity lesson: delta_content = " + fmt(c.delta_content) + " must be in (0, 10]");
  require(c.a0 > 0 && c.a0 <= 10, "selectivity lesson: a0 = " + fmt(c.a0) + " must be in (0, 10]");
  std::mt19937_64 rng(mix_seed(c.seed, 77));
  const Sequences tr = make_sequences(c, c.train, rng), te = make_sequences(c, c.test, rng);
  const Mat Vtr = content_digits(c, tr), Vte = content_digits(c, te);

  SelectivityResult r;
  r.chance = 1.0 / c.vocab;
  // Selective: bias −12 (Δ ≈ 6e-6 on filler), w lifts Δ to delta_content on content (M1).
  const double b_sel = -12.0, w_sel = inverse_softplus(c.delta_content) - b_sel;
  const Mat dec_sel =
      fit_and_decode(final_states(c, tr, w_sel, b_sel), Vtr, final_states(c, te, w_sel, b_sel));
  r.recall_sel = recall(dec_sel, Vte);
  // LTI: w = 0; the constant Δ from a grid spanning "forgets within a token" to "remembers the
  // whole sequence"; the best is reported.
  Mat dec_lti;
  r.recall_lti = -1;
  for (int g = 0; g < 13; ++g) {
    const double dt = std::pow(10.0, -4.0 + g * (4.0 / 12));  // 1e-4 … 1
    const double b = inverse_softplus(dt);
    const Mat dec = fit_and_decode(final_states(c, tr, 0.0, b), Vtr, final_states(c, te, 0.0, b));
    const double rc = recall(dec, Vte);
    r.lti_grid.emplace_back(dt, rc);
    if (rc > r.recall_lti) {
      r.recall_lti = rc;
      r.lti_delta = dt;
      dec_lti = dec;
    }
  }
  for (Eigen::Index i = 0; i < Vte.rows(); ++i)
    for (Eigen::Index k = 0; k < Vte.cols(); ++k) {
      r.truth.push_back(Vte(i, k));
      r.decoded_sel.push_back(dec_sel(i, k));
      r.decoded_lti.push_back(dec_lti(i, k));
    }
  // The example: test sequence 0.
  r.u.assign(te.u.begin(), te.u.begin() + c.L);
  r.content = te.content[0];
  trace(c, te, 0, w_sel, b_sel, r.states_sel, r.delta_sel);
  trace(c, te, 0, 0.0, inverse_softplus(r.lti_delta), r.states_lti, r.delta_lti);
  return r;
}

namespace {

double rel_y(const std::vector<double>& a, const std::vector<double>& ref) {
  double m = 0, s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    m = std::max(m, std::fabs(a[i] - ref[i]));
    s = std::max(s, std::fabs(ref[i]));
  }
  return s > 0 ? m / s : m;
}

// Rounds a float to the nearest bfloat16 (its top 16 bits), ties to even.
float round_bf16(float x) {
  std::uint32_t b;
  std::memcpy(&b, &x, 4);
  b += 0x7FFFu + ((b >> 16) & 1u);
  b &= 0xFFFF0000u;
  std::memcpy(&x, &b, 4);
  return x;
}

}  // namespace

std::vector<double> selective_scan_as_convolution(const ScanParams<double>& p,
                                                  const ScanInputs<double>& in) {
  validate(p, in, true);
  require(in.z.empty(), "selective_scan_as_convolution: the gate z is not part of the LTI view");
  require(in.h0.empty(), "selective_scan_as_convolution: the convolution view starts from h = 0");
  const auto nb = std::size_t(in.batch), D = std::size_t(p.D), N = std::size_t(p.N),
             L = std::size_t(in.L);
  auto constant = [L](const std::vector<double>& v, const char* name) {
    for (std::size_t r = 0; r < v.size() / L; ++r)
      for (std::size_t t = 1; t < L; ++t)
        if (v[r * L + t] != v[r * L])
          throw Error(std::string("selective_scan_as_convolution: ") + name +
                      " changes in time (row " + std::to_string(r) + ", t = " + std::to_string(t) +
                      "): there is no convolution kernel");
  };
  constant(in.delta, "delta");
  constant(in.B, "B");
  constant(in.C, "C");
  FFTConv<double> conv(L);
  std::vector<double> y(nb * D * L);
  for (std::size_t b = 0; b < nb; ++b)
    for (std::size_t d = 0; d < D; ++d) {
      const double raw = in.delta[(b * D + d) * L] + (p.delta_bias.empty() ? 0.0 : p.delta_bias[d]);
      const double dt = p.delta_softplus ? softplus_d(raw) : raw;  // (M1)
      Mat A = Mat::Zero(Eigen::Index(N), Eigen::Index(N));
      Vec B(static_cast<Eigen::Index>(N));
      RowVec C(static_cast<Eigen::Index>(N));
      for (std::size_t n = 0; n < N; ++n) {
        A(Eigen::Index(n), Eigen::Index(n)) = p.A[d * N + n];
        B(Eigen::Index(n)) = in.B[(b * N + n) * L];
        C(Eigen::Index(n)) = in.C[(b * N + n) * L];
      }
      const Method m =
          p.disc == ScanDiscretization::ZOH ? Method::ZOH : Method::MambaZOH;  // (D5)/(D6)
      const auto s = make_ssm(discretize(A, B, dt, m), C, p.D_skip.empty() ? 0.0 : p.D_skip[d]);
      const Signals<double> K = kernel(s, L).transpose();  // (K1)
      const Signals<double> U =
          Eigen::Map<const Signals<double>>(&in.u[(b * D + d) * L], 1, Eigen::Index(L));
      Signals<double> Y;
      const VecT<double> Dv = VecT<double>::Constant(1, s.D);
      conv.convolve(K, U, Y, 1, &Dv);  // (K2)
      std::copy_n(Y.data(), L, &y[(b * D + d) * L]);
    }
  return y;
}

PrecisionRow precision_row(int D, int L, int N, double delta_scale, std::uint64_t seed) {
  require(D >= 1 && D <= 4096 && L >= 1 && L <= (1 << 22) && N >= 1 && N <= kMaxScanN,
          "precision_row: D, L, N out of range");
  require(delta_scale > 0 && std::isfinite(delta_scale),
          "precision_row: delta_scale = " + fmt(delta_scale) + " must be > 0");
  ScanParams<double> p;
  ScanInputs<double> in;
  random_scan_problem<double>({1, D, L, N}, seed, p, in, {false, false, false});
  PrecisionRow row;
  row.L = L;
  for (int d = 0; d < D; ++d) {  // Δ scaled at its typical value (Δraw = 0)
    const double dt = softplus_d(p.delta_bias[std::size_t(d)]) * delta_scale;
    p.delta_bias[std::size_t(d)] = inverse_softplus(dt);
    double amin = INFINITY;
    for (int n = 0; n < N; ++n) amin = std::min(amin, std::fabs(p.A[std::size_t(d) * N + n]));
    row.memory_steps = std::max(row.memory_steps, 1.0 / (dt * amin));
  }
  const auto ref = selective_scan_reference(p, in);
  const auto pf = cast_params<float>(p);
  const auto inf = cast_inputs<float>(in);
  const auto pr = cast_params<double>(pf);
  const auto inr = cast_inputs<double>(inf);
  const auto ref_r = selective_scan_reference(pr, inr);
  row.inputs_only = rel_y(ref_r.y, ref.y);
  {
    ScanOutputs<float> of;
    selective_scan(pf, inf, of, 1);
    row.fast_float = rel_y(std::vector<double>(of.y.begin(), of.y.end()), ref_r.y);
  }
  using V = simd::Pack<float>;
  constexpr int W = simd::kLanes<float>;
  std::vector<double> y_coef(ref_r.y.size()), y_rec(ref_r.y.size()), y_bf(ref_r.y.size());
  std::vector<float> hb(static_cast<std::size_t>(N));
  std::vector<double> hd(static_cast<std::size_t>(N));
  std::vector<float> hf(static_cast<std::size_t>(N)), a2(static_cast<std::size_t>(N + W));
  for (int d = 0; d < D; ++d) {
    std::fill(hd.begin(), hd.end(), 0.0);
    std::fill(hf.begin(), hf.end(), 0.0f);
    std::fill(hb.begin(), hb.end(), 0.0f);
    for (int n = 0; n < N; ++n)
      a2[std::size_t(n)] = static_cast<float>(pr.A[std::size_t(d) * N + n] * 1.4426950408889634074);
    for (int t = 0; t < L; ++t) {
      const std::size_t i = std::size_t(d) * L + t;
      // Coefficients in float, as the fast scan computes them; the recurrence in double.
      const float raw = inf.delta[i] + pf.delta_bias[std::size_t(d)];
      const float dtf = simd::softplus(simd::splat<V>(raw))[0];
      const float duf = dtf * inf.u[i];
      double sum = 0;
      for (int n0 = 0; n0 < N; n0 += W) {
        const V a = simd::exp2(simd::splat<V>(dtf) * simd::load<V>(&a2[std::size_t(n0)]));
        for (int n = n0; n < std::min(N, n0 + W); ++n) {
          const std::size_t j = std::size_t(n) * L + t;
          hd[std::size_t(n)] = double(a[n - n0]) * hd[std::size_t(n)] + double(duf * inf.B[j]);
          sum += inr.C[j] * hd[std::size_t(n)];
        }
      }
      y_coef[i] = sum;
      // Exact coefficients rounded to float; the recurrence and the sums in float.
      const double dt = softplus_d(inr.delta[i] + pr.delta_bias[std::size_t(d)]);
      float sumf = 0, sumb = 0;
      for (int n = 0; n < N; ++n) {
        const std::size_t j = std::size_t(n) * L + t;
        const auto a = static_cast<float>(std::exp(dt * pr.A[std::size_t(d) * N + n]));
        const auto bu = static_cast<float>(dt * inr.B[j] * inr.u[i]);
        hf[std::size_t(n)] = a * hf[std::size_t(n)] + bu;
        sumf += inf.C[j] * hf[std::size_t(n)];
        hb[std::size_t(n)] = round_bf16(a * hb[std::size_t(n)] + bu);
        sumb += inf.C[j] * hb[std::size_t(n)];
      }
      y_rec[i] = double(sumf);
      y_bf[i] = double(sumb);
    }
  }
  row.coefficients = rel_y(y_coef, ref_r.y);
  row.recurrence = rel_y(y_rec, ref_r.y);
  row.bf16_state = rel_y(y_bf, ref_r.y);
  return row;
}

}  // namespace ssm
