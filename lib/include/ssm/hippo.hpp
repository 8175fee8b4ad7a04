// ssm/hippo.hpp — stage 5: HiPPO, the memory matrices that compress a signal's history.
//
// The question HiPPO answers: keep N numbers c(t) that summarize all of u on the past, update
// them online as each new sample arrives, and be able to draw the past back from them. Pick a
// measure μ_t (how much each past moment matters at time t) and an orthonormal basis g_n of
// L²(μ_t); then c_n(t) = ∫ u(s) g_n(s) dμ_t(s) is the best N-term approximation of the past,
// and differentiating under the integral gives a linear ODE  c'(t) = A(t) c(t) + B(t) u(t):
// an SSM whose state *is* the compressed history. (x' = Ax + Bu throughout: A is the negated
// matrix of the HiPPO paper, which writes a minus in the ODE.)
//
// (H1) LegS, uniform measure ds/t on [0, t] (scaled Legendre):
//        A_nk = −√(2n+1)·√(2k+1) if n > k,  −(n+1) if n = k,  0 if n < k;   B_n = √(2n+1).
// (H2)   g_n(s) = √(2n+1)·P_n(2s/t − 1),  orthonormal under ds/t.
// (H3)   c_n(t) = ∫_0^t u(s) g_n(s) ds/t,   c'(t) = (1/t) A c(t) + (1/t) B u(t).
// (H4)   u(s) ≈ Σ_n c_n(t) g_n(s) for s in [0, t].
// (H5)   discrete LegS, step k = 1, 2, … (t_k = kΔ, relative step Δ/t_k = 1/k):
//        c_k = (I − αA/k)⁻¹ [ (I + (1−α)A/k) c_{k−1} + (1/k) B u_k ]     (Δ drops out).
// (H6)   A = −(diag(n+1) + L∘(b bᵀ)), b_n = √(2n+1), L the strict lower triangle, so
//        A·x = −((n+1)x_n + b_n·S_n(x)) with S_n(x) = Σ_{j<n} b_j x_j an exclusive prefix sum:
//        the product and the triangular solve of (H5) cost O(N), not O(N²).
//
// The other measures are time-invariant (LTI: c' = A c + B u with constant A, B), so stage 2's
// discretizations apply unchanged. Their normalizations (this project's; papers differ):
//  LegT, uniform measure ds/θ on the sliding window [t − θ, t], g_n(s) = √(2n+1)·P_n(z),
//       z = 2(s − t)/θ + 1 ∈ [−1, 1] (z = 1 is now):
//       A_nk = −(b_n b_k/θ)·(1 if k ≤ n, (−1)^{k−n} if k > n),   B_n = b_n/θ.
//       Exact except for one approximation: the value leaving the window, u(t − θ), is
//       replaced by the state's own estimate Σ_k c_k g_k(t − θ) (it is not remembered).
//  LagT, exponentially decaying measure e^{−(t−s)/θ} ds/θ on (−∞, t], g_n(s) = L_n((t − s)/θ)
//       (L_n: Laguerre polynomials, orthonormal under e^{−y} on [0, ∞)):
//       A_nk = −1/θ if k ≤ n, 0 if k > n,   B_n = 1/θ.   Exact: no approximation.
//  FouT, uniform measure ds/θ on [t − θ, t], Fourier basis in z = (s − t)/θ + 1 ∈ [0, 1]:
//       g_0 = 1, g_{2j−1} = √2 sin(2πjz), g_{2j} = √2 cos(2πjz)  (j = 1, 2, …).
//       A = (D − 2 e eᵀ)/θ, B = 2e/θ, with e = g(z = 0) = (1, 0, √2, 0, √2, …) and D the
//       derivative in this basis: D[sin_j, cos_j] = −2πj, D[cos_j, sin_j] = +2πj.
//       Like LegT it must estimate u(t − θ); a truncated Fourier series converges at the window's
//       ends to the mean (u(t − θ) + u(t))/2, so the estimate is 2·Σ_k c_k g_k(0) − u(t). (S4's
//       FouT uses Σ_k c_k g_k(0) itself, which is off by (u(t) − u(t − θ))/2 at every N.) With an
//       even N the last sine has no cosine partner: its coefficient cannot be tracked and stays 0.
// Every measure keeps a constant signal exactly: A e_0 = −B, so c = u·e_0 is a fixed point.
//
// Time convention (as in signal.hpp): sample k is u_k = u(t_k), t_k = kΔ, held on
// (t_{k−1}, t_k]; the signal starts at t = 0 and is 0 before. The online state after sample k
// describes u on [0, t_k]: c_0 = u_0·e_0 for LegS (the limit of (H3) as t → 0), c_0 = 0 for the
// LTI measures (an empty past), then one step per sample with input u_k.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "ssm/core.hpp"
#include "ssm/discretize.hpp"

namespace ssm::hippo {

// (A, B) of HiPPO-LegS with N states (H1). N in [1, 4096]. Cost O(N²).
std::pair<Mat, Vec> legs(int N);

enum class Measure { LegS, LegT, LagT, FouT };

// Names on the command line: legs, legt, lagt, fout.
const std::vector<std::string>& measure_names();
std::string measure_name(Measure m);
// Parses a name; throws Error listing the valid names.
Measure parse_measure(const std::string& name);
// LegS is time-varying (its A, B scale with 1/t); the others are LTI.
bool time_invariant(Measure m);
// Largest N accepted: 4096 for LegS (O(N) steps, H6); 1024 for the LTI measures, whose steps are
// dense O(N²) and whose discretization is O(N³).
int max_N(Measure m);

// A HiPPO memory: which measure, how many coefficients, and its time scale.
struct Spec {
  Measure measure = Measure::LegS;
  int N = 32;
  double theta = 1.0;  // seconds. LegT, FouT: window length; LagT: decay time; LegS: unused
};
// Throws Error naming --N or --theta when N is outside [1, max_N] or θ is not finite and > 0.
void validate(const Spec& s);

// (A, B) of each measure with the normalizations above (shapes (N, N), (N)). Cost O(N²).
std::pair<Mat, Vec> legt(int N, double theta);
std::pair<Mat, Vec> lagt(int N, double theta);
std::pair<Mat, Vec> fout(int N, double theta);
// Dispatches on s.measure; for LegS it returns (H1) (the 1/t factor is applied by the steps).
std::pair<Mat, Vec> transition(const Spec& s);

// ---------------------------------------------------------------------------------------------
// One LegS step (H5): c ← (I − αA/k)⁻¹ [ (I + (1−α)A/k) c + (1/k) B u ], α in [0, 1]
// (0 forward Euler, ½ bilinear, 1 backward Euler), k ≥ 1 the step number (t_k / Δ).

// The readable reference: one dense mat-vec and one dense forward substitution. A, B from
// legs(N); c (N) is updated in place. Cost O(N²).
void legs_step_dense(const Mat& A, const Vec& B, Vec& c, double u, double k, double alpha);

// The same step in O(N) (H6): one pass over n keeps the prefix sums S_n(c_old) and S_n(c_new).
// Needs only B (b_n = B_n = √(2n+1)); A is never formed. Equal to the dense step to rounding.
void legs_step_fast(const Vec& B, Vec& c, double u, double k, double alpha);

// ---------------------------------------------------------------------------------------------
// Online projection: the HiPPO recurrence run over a sampled signal.

// How the ODE becomes a recurrence. LegS takes GBT steps (H5): euler, backward-euler, bilinear
// or gbt with α; its default is bilinear — every α is first order here (H5 freezes 1/t at the
// step's end and holds u_k over the step), but the bilinear error constant is ~15× smaller than
// either Euler's (measured: tests/test_hippo.cpp) and, unlike forward Euler, it is stable at
// every N (forward Euler multiplies mode n by 1 − (n+1)/k, far outside the unit disc while
// k < (n+1)/2). The LTI measures accept every stage-2 method (D1–D6) through discretize().
struct Stepping {
  Method method = Method::Bilinear;
  double alpha = 0.5;  // for Method::GBT
  bool dense = false;  // LegS: use legs_step_dense instead of the O(N) step
};
// Throws Error naming --method when a method cannot step this measure (zoh, mamba-zoh on LegS).
void validate(const Spec& s, const Stepping& st);

// The streaming form: push one sample at a time. Throws Error naming the measure, N, the step
// and its time when a coefficient becomes non-finite (an N too large for this measure and
// method to stay finite, e.g. LegS with forward Euler).
class Online {
 public:
  Online(const Spec& spec, const Stepping& stepping, double dt);
  // Consumes the next sample u_k (the first call is u_0). O(N) for LegS, O(N²) for the others.
  void push(double u);
  const Vec& c() const { return c_; }
  long long k() const { return k_; }             // index of the last sample pushed (−1 before)
  double t() const { return double(k_) * dt_; }  // its time t_k = kΔ (s)

 private:
  Spec spec_;
  Stepping st_;
  double dt_;
  Mat A_, Ab_;  // LegS: A (dense reference only); LTI: Ā (N, N)
  Vec B_, Bb_;  // LegS: B; LTI: B̄
  Vec c_;
  long long k_ = -1;
};

// Coefficients after every sample: column k is c(t_k), shape (N, L). Cost O(N L) for LegS,
// O(N² L + N³) for the LTI measures.
Mat online(const std::vector<double>& u, double dt, const Spec& spec, const Stepping& st = {});
// Only after the given sample indices (each < L, any order): shape (N, steps.size()).
Mat online_at(const std::vector<double>& u, double dt, const Spec& spec, const Stepping& st,
              const std::vector<std::size_t>& steps);

// ---------------------------------------------------------------------------------------------
// Basis, reconstruction (H4) and the ground truth (H3).

// The part of the past the state at time t describes: [0, t] (LegS), [t − θ, t] (LegT, FouT),
// [max(0, t − 8θ), t] for LagT (the ages that carry all but e⁻⁸ ≈ 3·10⁻⁴ of its measure; older
// ages are weighted too little to be reconstructed).
std::pair<double, double> window(const Spec& s, double t);

// G(i, n) = g_n(s_i) for the state at time t: shape (S, N). Legendre and Laguerre values come
// from Boost.Math's three-term recurrences (legendre_next, laguerre_next). Cost O(S·N).
Mat basis(const Spec& s, double t, const std::vector<double>& points);

// (H4) u(s_i) ≈ Σ_n c_n g_n(s_i) from the state c (N) at time t. Cost O(S·N).
std::vector<double> reconstruct(const Spec& s, const Vec& c, double t,
                                const std::vector<double>& points);

// A signal for the ground truth: u(s) on [0, t], and where it may jump. breaks > 0 says u is
// smooth between the multiples of `breaks`: a sampled signal held constant on (kΔ − Δ, kΔ]
// (breaks = Δ), or a generator whose jumps fall on its sample grid (a step or a square wave).
// The quadrature's panels end there, so no panel straddles a jump.
struct Truth {
  std::function<double(double)> u;
  double breaks = 0.0;
};

// (H3) The exact projection c_n(t) = ∫ u(s) g_n(s) dμ_t(s) by composite Gauss–Legendre
// quadrature (Boost.Math, 20 nodes per panel, exact for polynomials of degree ≤ 39 on each
// panel), with u = 0 before 0. Panels end at every point where the integrand may jump (0, and
// the multiples of Truth::breaks), at 1024 even steps across [0, t] (to resolve u), and where
// the basis needs it, about one oscillation of g_{N−1} per panel: N/2 ends evenly spaced in φ
// (x = cos φ) for Legendre, whose zeros crowd towards the window's ends; N/2 evenly spaced ones
// for Fourier; N evenly spaced in √(age) for Laguerre, whose support is cut at ages
// max(80, 10N)·θ (past that, even products of two Laguerre polynomials weigh less than
// e^{−3N}). Cost O(panels·20·N).
Vec project(const Spec& s, double t, const Truth& truth);

// The reconstruction error the measure weighs: ∫ (u − Σ c_n g_n)² dμ_t / ∫ u² dμ_t (relative,
// dimensionless), by the same quadrature. The exact projection minimizes it over all c.
double weighted_mse(const Spec& s, const Vec& c, double t, const Truth& truth);

}  // namespace ssm::hippo
