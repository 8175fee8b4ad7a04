// ssm/grad_lesson.hpp — stage 8a's lesson (ssm-grad): how far back does a gradient reach?
//
// Read a model out at the last step. The gradient g_k = ∂y_{L−1}/∂u_{L−1−k} says how strongly
// training can tie that output to the input k steps earlier. Three models of one state size N:
//
// (G21) A diagonal linear SSM, h_{t,n} = Ā_{t,n} h_{t−1,n} + B̄_{t,n} u_t,
//       y_t = Σ_n C_{t,n} h_{t,n}. The backward pass with dy = e_{L−1} (G2 then G5) gives,
//       for s = L−1−k,
//         g_k = Σ_n C_{L−1,n} (∏_{s<r≤L−1} Ā_{r,n}) B̄_{s,n},
//         ∏_{s<r≤L−1} Ā_{r,n} = e^{A_n Σ_{s<r≤L−1} Δ_r}.
//       LTI (Δ, B, C constant): g_k = Σ_n C_n B̄_n Ā_n^k = K̄_k, the convolution kernel (K1): each
//       mode's share decays exactly like |Ā_n|^k = e^{A_n Δ k} — not faster (a slow mode keeps
//       the gradient alive), not slower (nothing explodes while |Ā_n| ≤ 1).
//       Selective (Δ_t from the input): the clock runs at Δ_t. Δ_t ≈ 0 holds the gradient (Ā ≈ 1),
//       one large Δ_t cuts everything before it by e^{A_n Δ_t}.
//       Eigenvalue bound: when every C_n B̄_n > 0 and Δ (hence B̄) is the same at lags k0 < k1,
//         g_{k1}/g_{k0} = Σ_n w_n e^{A_n T} / Σ_n w_n,  w_n ≥ 0,  T = Σ Δ over lags k0 … k1−1,
//       a weighted mean of the modes' factors: it lies in [e^{min A·T}, e^{max A·T}].
//       LTI tail: with a_n = C_n B̄_n, z_n = Ā_n and s the slowest mode, g_k = a_s z_s^k (1 + ε_k),
//       ε_k = Σ_{n≠s} (a_n/a_s)(z_n/z_s)^k decreasing, so the measured per-step log rate
//       log(g_{k1}/g_{k0})/(k1−k0) is within log(1 + ε_{k0})/(k1−k0) of log z_s = A_s Δ.
// (G20) A tanh RNN, h_t = tanh(a_t), a_t = W h_{t−1} + U u_t, y_t = c·h_t. Backprop through time,
//       with dy_t = ∂ℓ/∂y_t and G_t = ∂ℓ/∂h_t through every path:
//         G_{L−1} = cᵀ dy_{L−1},   G_t = cᵀ dy_t + Wᵀ δ_{t+1},   δ_t = G_t ⊙ (1 − h_t²) (=
//         ∂ℓ/∂a_t), du_t = U·δ_t,  dW = Σ_t δ_t h_{t−1}ᵀ,  dU = Σ_t δ_t u_t,  dc = Σ_t dy_t h_tᵀ,
//         dh0 = Wᵀ δ_0.
//       So g_k = c J_{L−1} ⋯ J_{L−k} diag(1 − h_s²) U with J_t = diag(1 − h_t²) W: at best ρ(W)^k
//       (the linear RNN), and every tanh' = 1 − h² < 1 shrinks it further.
//
// Intuition. In the linear model the gradient runs backward through the same Ā as the state runs
// forward, so it forgets exactly as fast as the model forgets; in the tanh RNN each step also
// multiplies by the slope of the tanh at that step, which is below one wherever the state is
// not near zero — the vanishing gradient.
//
// Shapes: N states, L steps; Vec (L) indexed by time t unless it says "by lag" (index k is the
// input at t = L−1−k). The linear models are one-channel scans (batch 1, D 1) of ssm/selective.hpp.
#pragma once

#include <cstdint>
#include <vector>

#include "ssm/core.hpp"
#include "ssm/selective.hpp"

namespace ssm::grad {

// ---- (G20) the tanh RNN ----------------------------------------------------------------------
struct TanhRnn {
  Mat W;     // (N, N) recurrent weights
  Vec U;     // (N)    input weights (one input channel)
  RowVec c;  // (N)    readout
  int N() const { return static_cast<int>(W.rows()); }
};

// W with independent normal entries rescaled to spectral radius exactly rho (the largest
// |eigenvalue|, Eigen's EigenSolver); U and c standard normal, so a_t = W h + U u is of order
// one for inputs of order one and the tanh works in its bend, not only its linear part.
// N in [1, 1024], rho finite in (0, 10]. O(N³). Reproducible from seed.
TanhRnn random_tanh_rnn(int N, double rho, std::uint64_t seed);

// Throws Error unless W is square (N, N) and U, c have N entries, all finite.
void validate(const TanhRnn& m);

struct TanhRnnTrace {
  Mat H;  // (N, L) the states h_t, column t
  Vec y;  // (L)
};
// The forward pass: u (L ≥ 1, finite), h0 (N, finite) or empty (zero). O(N² L).
TanhRnnTrace tanh_rnn_forward(const TanhRnn& m, const Vec& u, const Vec& h0 = Vec());

struct TanhRnnGrads {
  Vec du;     // (L)
  Mat dW;     // (N, N)
  Vec dU;     // (N)
  RowVec dc;  // (N)
  Vec dh0;    // (N): ∂ℓ/∂h_{−1}
};
// (G20) Backprop through time for a loss ℓ with ∂ℓ/∂y = dy (L, finite), from the forward's
// stored states (fwd from tanh_rnn_forward(m, u, h0)). One sweep back in time, O(N² L).
TanhRnnGrads tanh_rnn_backward(const TanhRnn& m, const Vec& u, const TanhRnnTrace& fwd,
                               const Vec& dy, const Vec& h0 = Vec());

// ∂y_{L−1}/∂u_{L−1−k} by lag k (L): BPTT with dy = e_{L−1}. O(N² L).
Vec tanh_rnn_lag_gradient(const TanhRnn& m, const Vec& u);

// The same for the lags listed by central differences of the forward alone (an independent
// check of BPTT): (y_{L−1}(u + h e_s) − y_{L−1}(u − h e_s)) / 2h, s = L−1−k. Error O(h²) from
// the tanh's curvature plus O(ε/h) from rounding. O(N² L) per lag.
Vec tanh_rnn_lag_gradient_fd(const TanhRnn& m, const Vec& u, const std::vector<int>& lags,
                             double h);

// The mean of tanh' = 1 − h_t² over the N states at the times of lags k0 … k1 (0 ≤ k0 ≤ k1 < L):
// how much, on average, each step's Jacobian diag(1 − h²) W shrinks the gradient beyond W.
double mean_tanh_slope(const TanhRnnTrace& fwd, int k0, int k1);

// ---- (G21) the linear models: one-channel scans ----------------------------------------------
// Both: A (N) real and < 0 (Ā_n = e^{Δ A_n} in (0, 1)), B_t = C_t = 1 at every t (so every
// C_n B̄_n > 0 and the bound of G21 applies), exact ZOH (D5), no skip, no gate, h_{−1} = 0,
// input u (L ≥ 2, finite). Throw Error naming A, u, dt or the gates when out of range.
// LTI: Δ_t = dt at every step (no softplus): the kernel view K̄ of stage 4 applies.
void lti_scan_problem(const Vec& A, double dt, const Vec& u, ScanParams<double>& p,
                      ScanInputs<double>& in);
// Selective: Δ_t = softplus(w m_t + b) (M1) from a marker m_t the input carries, 1 at the gate
// steps and 0 elsewhere, with b = softplus⁻¹(delta_hold) and w = softplus⁻¹(delta_gate) − b:
// Δ_t = delta_gate at a gate and delta_hold elsewhere. gates: times t in [0, L), distinct;
// delta_hold, delta_gate finite and in (0, 100].
void gated_scan_problem(const Vec& A, const std::vector<int>& gates, double delta_hold,
                        double delta_gate, const Vec& u, ScanParams<double>& p,
                        ScanInputs<double>& in);
// Δ_t (L) of a one-channel problem, after bias and softplus (M1).
Vec scan_deltas(const ScanParams<double>& p, const ScanInputs<double>& in);

// ∂y_{L−1}/∂u_{L−1−k} (du) and ∂y_{L−1}/∂Δraw_{L−1−k} (ddelta) by lag, for a one-channel scan
// (batch 1, D 1): selective_scan_backward_reference with dy = e_{L−1} (G1–G9). O(N L).
struct LagGradient {
  Vec du, ddelta;  // (L) by lag
};
LagGradient scan_lag_gradient(const ScanParams<double>& p, const ScanInputs<double>& in);

// The same for the lags listed by central differences of selective_scan_reference, step h in
// u and in Δraw. y is linear in u, so du has no truncation error; ddelta has O(h²). O(N L) per lag.
LagGradient scan_lag_gradient_fd(const ScanParams<double>& p, const ScanInputs<double>& in,
                                 const std::vector<int>& lags, double h);

// The slowest mode's share of g_k (by lag): C_{L−1,s} e^{A_s Σ_{s<r≤L−1} Δ_r} B̄_{t,s} for the
// mode s with the largest A_s — computed from the eigenvalue and Δ alone, not by a backward
// pass. For the LTI model it is a_s z_s^k, the line the gradient's tail follows (G21). O(L).
Vec slowest_mode_lag_gradient(const ScanParams<double>& p, const ScanInputs<double>& in);

// What the eigenvalues predict between two lags of a linear model (G21).
struct StretchDecay {
  int k0 = 0, k1 = 0;
  double T = 0;  // Σ Δ over lags k0 … k1−1 (the time that passes between the two inputs)
  double measured = 0;  // g_{k1} / g_{k0}
  double slowest = 0;   // e^{max A · T}: the ratio if only the slowest mode were left
  double fastest = 0;   // e^{min A · T}
  // Distance of log(measured) outside [log fastest, log slowest]; 0 inside (the bound holds).
  double outside() const;
};
// g (L) by lag, delta (L) by time (scan_deltas), A (N); 0 ≤ k0 < k1 < L with the same Δ at both
// lags (B̄ equal, as the bound needs; Error otherwise). O(k1 − k0 + N).
StretchDecay stretch_decay(const Vec& g, const Vec& delta, const Vec& A, int k0, int k1);

// The LTI tail bound of G21 for lti_scan_problem(A, dt, ·): log(1 + ε_{k0})/(k1 − k0), with
// a_n = B̄_n = (e^{A_n Δ} − 1)/A_n and z_n = e^{A_n Δ}. 0 ≤ k0 < k1. O(N).
double lti_tail_log_rate_bound(const Vec& A, double dt, int k0, int k1);

// The number of leading lags k with |g_k| ≥ floor (g by lag): past them a gradient that keeps
// decaying has left double's normal range (≈ 2e-308, rounding losing digits before that), and
// ratios of its values mean nothing. O(L).
int representable_lags(const Vec& g, double floor = 1e-250);

// The least-squares slope of log|g_k| against k over k0 … k1 (g by lag), skipping entries that
// are zero or below the normal range of double: the measured per-step log decay of a gradient
// that oscillates (the tanh RNN's). NaN when fewer than two entries remain. O(k1 − k0).
double log_slope(const Vec& g, int k0, int k1);

}  // namespace ssm::grad
