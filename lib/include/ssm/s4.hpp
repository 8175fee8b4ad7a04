// ssm/s4.hpp — stage 6: the S4 kernel. DPLR form, Cauchy sums, Woodbury; S4D; the S4 layer.
//
// (S1) NPLR of HiPPO-LegS: with P_n = √(n + ½), S = A + P Pᵀ = −½ I + (skew-symmetric) is
//      normal, so S = V Λ V* with V unitary. In that basis Ã = V* A V = Λ − P̃ P̃*,
//      P̃ = V* P, B̃ = V* B, C̃ = C V: diagonal plus low rank (DPLR).
// (S2) K̂(z) = Σ_{k<L} K̄_k z^k = C̄' (I − Ā z)⁻¹ B̄ with C̄' = C̃ (I − Ā^L). At the roots of unity
//      z_j = e^{−2πij/L}, K̂(z_j) = DFT(K̄)_j, so K̄ is one inverse FFT away.
// (S3) Bilinear Ā, B̄:  K̂(z) = (2/(1+z)) · C̄' (g(z) − Ã)⁻¹ B̃,   g(z) = (2/Δ)(1 − z)/(1 + z).
// (S4) Woodbury, R = (g − Λ)⁻¹ diagonal:  K̂ = (2/(1+z)) [k₀₀ − k₀₁ (I + k₁₁)⁻¹ k₁₀],
//      k₀₀ = C̄'RB̃, k₀₁ = C̄'RP̃, k₁₀ = P̃*RB̃, k₁₁ = P̃*RP̃: Cauchy sums Σ_n v_n / (g − λ_n).
// (S5) A real S has eigenvalues in conjugate pairs; the model keeps the N/2 with Im λ > 0.
// (S6) Recurrent mode: Ā x = (I − Δ/2 Ã)⁻¹ (I + Δ/2 Ã) x in O(N r) per step (diagonal solve
//      plus a rank-r Woodbury correction), for the same layer that conv mode runs.
// (Q1) S4D: Ã diagonal; K̄_k = 2 Re Σ_n C_n B̄_n Ā_n^k, a Vandermonde product (ZOH or bilinear).
// (Q2) S4D inits: S4D-LegS λ = Λ of (S1); S4D-Inv λ_n = −½ + i(N/π)(N/(2n+1) − 1);
//      S4D-Lin λ_n = −½ + iπn.
//
// Intuition. Stage 4 builds K̄ = (CB̄, CĀB̄, …) by L mat-vecs with a dense Ā: O(N² L). HiPPO's A
// cannot be diagonalized stably (its eigenvectors are exponentially ill-conditioned), but it is
// a normal matrix minus a rank-1 term, and a normal matrix is diagonalized by a unitary V. In
// that basis the resolvent (g − Ã)⁻¹ is a diagonal one plus a rank-1 fix (Woodbury), so the
// generating function of K̄ at any point costs O(N): sums Σ v_n / (g − λ_n) (Cauchy kernels).
// Evaluating it at the L roots of unity gives the DFT of K̄, and one inverse FFT gives K̄:
// O(N L + L log L) per channel. S4D drops the low-rank term altogether.
//
// Conventions. N = 2·Nh real states, stored as Nh complex modes with Im λ > 0; each mode stands
// for itself and its conjugate (the model is real). Shapes use H channels, L length, Nh modes,
// r rank. Δ (dt) is the step of the discretization, in the same time unit as 1/λ.
// Conjugate pairs in the Cauchy sums (S5): at z on the unit circle g is purely imaginary,
// g = (2i/Δ) tan(πj/L), so the pair v/(g − λ) + v̄/(g − λ̄) is not 2·Re of one term; it is
// one fraction with real coefficients, (2Re(v)·g − 2Re(v λ̄)) / (g² − 2Re(λ)·g + |λ|²), which
// costs one real division per (mode, point) for all (r+1)² sums together. 2·Re is exact where
// the argument is real: the inner products of the recurrent step and the S4D Vandermonde sum.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "ssm/convolution.hpp"

namespace ssm::s4 {

// ---------------------------------------------------------------------------------------------
// (S1) NPLR: A = V (Λ − P̃P̃*) V* from a real A and a real low-rank factor P.

// nplr() refuses S = A + PPᵀ whose normality residual (below) exceeds this. For an exactly
// normal S the residual is rounding: measured 3e-16 … 4.4e-16 for HiPPO-LegS, N = 8 … 1024.
// A residual ρ means the DPLR model drops a part of size ρ·‖S‖_F of A; the kernel then moves by
// about 60·ρ relative (measured with ssm-s4 --perturb at N = 64), so 1e-10 keeps it below the
// stage's 1e-8 kernel tolerance while accepting any normal S with a margin of 10⁵.
inline constexpr double kNormalityTolerance = 1e-10;

struct Nplr {
  CVec Lambda;            // (Nh)     eigenvalues of S with Im λ > 0, ascending Im λ
  CMat P;                 // (Nh, r)  P̃ = V_h* P
  CVec B;                 // (Nh)     B̃ = V_h* B
  CMat V;                 // (N, Nh)  V_h; the full unitary V is [V_h, conj(V_h)]
  double residual = 0.0;  // normality residual of S (see nplr)
  int N() const { return static_cast<int>(V.rows()); }
  int rank() const { return static_cast<int>(P.cols()); }
};

// NPLR of (A, P, B) (S1): S = A + PPᵀ is brought to real Schur form S = U T Uᵀ (Eigen's
// RealSchur, backward stable). For a normal S, T is block diagonal with 2×2 blocks
// [[a, b], [−b, a]] (eigenvalues a ± ib) whose eigenvectors give the columns of V. The
// normality residual is ‖T − blockdiag(T)‖_F / ‖S‖_F (Henrici's departure from normality,
// relative). Throws Error when N is odd or S has a real eigenvalue (the halving (S5) needs
// conjugate pairs), or when the residual exceeds `tolerance` (the message reports it).
// Shapes: A (N, N), P (N, r), B (N). Cost O(N³).
Nplr nplr(const Mat& A, const Mat& P, const Vec& B, double tolerance = kNormalityTolerance);

// The rank-1 factor of HiPPO-LegS, P_n = √(n + ½) (S1). Shape (N, 1).
Mat legs_low_rank(int N);

// nplr(hippo::legs(N), legs_low_rank(N), B) for even N in [2, 4096]. Cost O(N³).
Nplr nplr_legs(int N);

// The dense real matrix V (Λ − P̃P̃*) V* = 2 Re(V_h Λ V_h*) − Q Qᵀ with Q = 2 Re(V_h P̃). O(N² Nh).
Mat reconstruct(const Nplr& d);
// ‖reconstruct(d) − A‖_F / ‖A‖_F: how well the NPLR represents A (S1).
double reconstruction_error(const Nplr& d, const Mat& A);

// ---------------------------------------------------------------------------------------------
// A DPLR state space model with conjugate pairs: Ã = Λ − P̃P̃* and B̃ in the DPLR basis, shared
// by all channels; each channel brings its own output row C̃ (Nh) and step Δ.
struct Dplr {
  CVec Lambda;  // (Nh)
  CMat P;       // (Nh, r), r ≥ 0 (r = 0: diagonal, S4D)
  CVec B;       // (Nh)
  int Nh() const { return static_cast<int>(Lambda.size()); }
  int N() const { return 2 * Nh(); }
  int rank() const { return static_cast<int>(P.cols()); }
};

// Any (Λ, P, B), validated: sizes agree, entries finite, Re λ_n < 0 (a stable diagonal part;
// the bilinear Cauchy sums divide by g − λ_n with g imaginary), rank r ≤ 16.
Dplr make_dplr(CVec Lambda, CMat P, CVec B);
// The DPLR model of an NPLR decomposition.
Dplr to_dplr(const Nplr& d);
// C̃ = C V_h: a real output row C (N) in the DPLR basis.
CVec transform_C(const Nplr& d, const RowVec& C);

// The same model as a dense real N-state SISO model, for stage 4's reference kernel: with
// x_h = (a + ib)/√2 per mode, A = [[diag Re Λ, −diag Im Λ], [diag Im Λ, diag Re Λ]] − Q Qᵀ,
// Q = √2 [Re P; Im P], B = √2 [Re B̃; Im B̃], C = √2 [Re C̃, −Im C̃]. (The map is orthogonal,
// so A has the conditioning of the DPLR form.) Cost O(N² + N r).
Model to_real(const Dplr& m, const CVec& C, double D = 0.0);

// A random stable DPLR model for tests and the app: Re λ uniform in [−1, −0.1], Im λ uniform in
// [0, π·Nh], P̃ (Nh, r) and B̃ complex normal with E|·|² = 1. Reproducible from seed.
Dplr random_dplr(int Nh, int r, std::uint64_t seed);
// H output rows C̃, complex normal with E|C_n|² = 1 (real and imaginary parts N(0, ½)).
CMat random_C(int H, int Nh, std::uint64_t seed);

// The baseline of the long-memory lesson: a random stable A of the same size as HiPPO-LegS —
// Gaussian entries scaled to ‖A‖_F = ‖A_LegS‖_F, shifted by a multiple of I so that its slowest
// mode decays at LegS's rate (max Re λ = −1) — and a Gaussian B with ‖B‖ = ‖B_LegS‖. Same N,
// same size, same slowest time scale: what differs is the structure. Cost O(N³).
Model random_like_legs(int N, std::uint64_t seed);

// ‖x_k‖ = ‖Ā^k B̄‖, k < L: the state's response to an impulse at step 0, i.e. the RMS of K̄_k over
// random readouts C with E[CᵀC] = I — how much of the impulse any readout can still see.
// O(N² L).
Vec impulse_state_norms(const DiscreteSSM<double>& s, std::size_t L);

// ---------------------------------------------------------------------------------------------
// (S2) C̄' = C̃ (I − Ā^L) for bilinear Ā with step Δ, by L steps c ← c Ā of the transposed DPLR
// recurrence (diagonal solve + rank-r Woodbury, as in (S6)): O(N r L). S4 learns C̄' directly
// and pays this only when L or Δ changes; so does Layer (it caches C̄' per length).
CVec c_prime(const Dplr& m, const CVec& C, double dt, std::size_t L);

// Kernel generation for H channels sharing (Λ, P̃, B̃), each with its own Δ_h and C̄'_h
// (S2–S5): for each channel the (r+1)² Cauchy sums at the ⌊L/2⌋ + 1 points a real inverse FFT
// needs (K̄ is real, so K̂ at z_{L−j} is conj K̂(z_j)), the Woodbury correction, the bilinear
// factor, then one complex-to-real inverse FFT of size L (FFTW, planned once).
// Cost O(H (Nh (r+1)² L/2 + L log L)); channels over threads. Precision T (float, double) for
// the sums and the FFT; the per-point r×r Woodbury solve is in double. Thread-safe for calls.
// The hot loop vectorizes over the points (8 doubles or 16 floats per AVX-512 register) with
// one real division per (mode, point) shared by all sums; in double the divider bounds it.
template <class T>
class CauchyKernel {
 public:
  CauchyKernel(const Dplr& m, std::size_t L);
  ~CauchyKernel();
  CauchyKernel(const CauchyKernel&) = delete;
  CauchyKernel& operator=(const CauchyKernel&) = delete;

  std::size_t length() const { return L_; }
  const Dplr& model() const { return m_; }

  // dt (H) steps Δ_h > 0; Cp (H, Nh) the rows C̄'_h; K (H, L) receives K̄ of each channel.
  void operator()(const Vec& dt, const CMat& Cp, Signals<T>& K, int threads = 1) const;

 private:
  Dplr m_;
  std::size_t L_;
  std::vector<double> t_;  // tan(πj/L), j < ⌊L/2⌋ + 1 (the point z = −1 is handled apart)
  struct Plan;
  std::unique_ptr<Plan> plan_;
};

// One channel in double, from C̃ (computes C̄' first): K̄ (L). O(N r L + L log L).
Vec dplr_kernel(const Dplr& m, const CVec& C, double dt, std::size_t L);

// ---------------------------------------------------------------------------------------------
// (S6) The recurrent mode of one DPLR channel: x_k = Ā x_{k−1} + B̄ u_k, y_k = 2 Re(C̃ x_k) + D u_k,
// with Ā = A₀A₁, B̄ = A₀ΔB̃, A₁ = I + Δ/2 Ã, A₀ = (I − Δ/2 Ã)⁻¹ applied by Woodbury. O(N r) per
// step; state: Nh complex values (each mode stands for its conjugate pair).
template <class T>
class Recurrence {
 public:
  Recurrence(const Dplr& m, const CVec& C, double dt, double D = 0.0);
  T step(T u);
  void reset();
  int Nh() const { return static_cast<int>(x_.size()); }

 private:
  using cT = std::complex<T>;
  int r_;
  T D_, half_dt_;
  std::vector<cT> x_, a1_, dinv_, C_, bdt_;
  std::vector<cT> P_, dP_;  // (r, Nh) row-major: P̃ and D⁻¹P̃
  std::vector<T> Minv_;     // (r, r): ((2/Δ) I + P̃* D⁻¹ P̃)⁻¹, real
  std::vector<T> s_;        // scratch (r)
  std::vector<cT> w_;       // scratch (Nh)
};

// ---------------------------------------------------------------------------------------------
// S4D (Q1–Q2): diagonal models.
enum class S4DInit { LegS, Inv, Lin };
const std::vector<std::string>& s4d_init_names();  // legs, inv, lin
S4DInit parse_s4d_init(const std::string& name);
std::string s4d_init_name(S4DInit init);

// (Λ, B̃) of an S4D init for N = 2·Nh real states (N even, in [2, 4096]); P has rank 0.
// S4D-LegS: Λ, B̃ of nplr_legs(N) (the low-rank term dropped); S4D-Inv, S4D-Lin: B̃ = 1.
Dplr s4d_init(S4DInit init, int N);

// (Q1) K̄_k = 2 Re Σ_n C_n B̄_n Ā_n^k, k < L, for a diagonal model (P ignored) with ZOH
// (Ā = e^{Δλ}, B̄ = (e^{Δλ} − 1)/λ · B) or bilinear (Ā = (1 + Δλ/2)/(1 − Δλ/2), B̄ = ΔB/(1 − Δλ/2)).
// Powers Ā^k = exp(k log Ā) in blocks (k = 64q + t: one exp per block and per t), so there is
// no drift from repeated multiplication and the inner loop is 2 FMAs per (n, k).
// Cost O(Nh L) per channel. method: Method::ZOH or Method::Bilinear (else Error).
template <class T>
void s4d_kernels(const Dplr& m, const Vec& dt, const CMat& C, std::size_t L, Method method,
                 Signals<T>& K, int threads = 1);
Vec s4d_kernel(const Dplr& m, const CVec& C, double dt, std::size_t L, Method method);

// ---------------------------------------------------------------------------------------------
// The S4 layer: H channels sharing (Λ, P̃, B̃), each with its own Δ_h, C̃_h and skip D_h.
// Conv mode: K̄ of every channel (CauchyKernel, C̄' cached per length) then stage 4's FFT
// convolution (K2). Recurrent mode: the O(N r) DPLR step (S6) per channel. Both compute
// y_h = K̄_h * u_h + D_h u_h and agree to rounding.
template <class T>
class Layer {
 public:
  // dt (H) > 0, C (H, Nh), D (H).
  Layer(Dplr m, Vec dt, CMat C, Vec D);
  int H() const { return static_cast<int>(dt_.size()); }
  const Dplr& model() const { return m_; }
  const Vec& dt() const { return dt_; }

  // K̄ of every channel (H, L). First call for a length costs O(H N r L) for C̄', which is then
  // cached: calls on one Layer object must not overlap (the cache is not locked).
  Signals<T> kernels(std::size_t L, int threads = 1) const;
  // U, Y (H, L).
  void conv(const Signals<T>& U, Signals<T>& Y, int threads = 1) const;
  void recurrent(const Signals<T>& U, Signals<T>& Y, int threads = 1) const;

 private:
  const CMat& c_prime_for(std::size_t L, int threads) const;
  Dplr m_;
  Vec dt_;
  CMat C_;
  Vec D_;
  mutable std::size_t cached_L_ = 0;
  mutable CMat Cp_;
};

// The S4 initialization: HiPPO-LegS in DPLR form (N even), C̃ random (random_C), Δ_h log-spaced
// over [dt_min, dt_max], D_h = 1 (S4's skip).
template <class T>
Layer<T> legs_layer(int N, int H, double dt_min, double dt_max, std::uint64_t seed);

}  // namespace ssm::s4
