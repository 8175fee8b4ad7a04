// ssm/discretize.hpp — stage 2: from x' = Ax + Bu to x_k = Ā x_{k−1} + B̄ u_k with step Δ.
//
// (D1) forward Euler   Ā = I + ΔA                        B̄ = ΔB
// (D2) backward Euler  Ā = (I − ΔA)⁻¹                    B̄ = (I − ΔA)⁻¹ ΔB
// (D3) bilinear        Ā = (I − Δ/2 A)⁻¹(I + Δ/2 A)      B̄ = (I − Δ/2 A)⁻¹ ΔB      (S4's choice)
// (D4) GBT(α)          Ā = (I − αΔA)⁻¹(I + (1−α)ΔA)      B̄ = (I − αΔA)⁻¹ ΔB
// (D5) ZOH             Ā = e^{ΔA}                        B̄ = ∫_0^Δ e^{As} ds B
// (D6) Mamba's ZOH     Ā = e^{ΔA}                        B̄ = ΔB
//
// Intuition: each method approximates e^{ΔA} (the exact one-step map of the free system) by a
// rational function of ΔA. Euler is the first two Taylor terms, so its error per unit time is
// O(Δ); bilinear matches e^{ΔA} to O(Δ³) per step, so O(Δ²) overall; ZOH uses e^{ΔA} itself.
// Stability: Ā's eigenvalues are r(Δλ) for the method's r; forward Euler's 1 + Δλ leaves the
// unit disc once Δ > −2 Re λ / |λ|², while backward Euler, bilinear and ZOH keep every stable λ
// inside it for any Δ (A-stability).
#pragma once

#include <string>
#include <vector>

#include "ssm/continuous.hpp"

namespace ssm {

enum class Method { Euler, BackwardEuler, Bilinear, ZOH, GBT, MambaZOH };

// Names on the command line: euler, backward-euler, bilinear, zoh, gbt, mamba-zoh.
const std::vector<std::string>& method_names();
std::string method_name(Method m);
// Parses a name; throws Error listing the valid names.
Method parse_method(const std::string& name);
// Global order of accuracy on a free response: 1, 1, 2, exact (0 means "exact"), order of
// GBT(α) is 2 for α = ½ and 1 otherwise; Mamba's ZOH is exact on a free response (its Ā is
// e^{ΔA}) and first order with an input.
int free_response_order(Method m, double alpha = 0.5);

struct Discretized {
  Mat Ab;  // Ā (N×N)
  Vec Bb;  // B̄ (N)
  double dt = 0.0;
  Method method = Method::ZOH;
  double alpha = 0.5;  // meaningful for GBT only
};

// Ā, B̄ of (A, B) with step Δ by `method` (D1–D6). Throws Error when Δ is not finite and > 0,
// α is not in [0, 1], or a solve is singular (I − αΔA not invertible). Cost O(N³).
Discretized discretize(const Mat& A, const Vec& B, double dt, Method method, double alpha = 0.5);
Discretized discretize(const Model& m, double dt, Method method, double alpha = 0.5);

// The largest Δ for which forward Euler is stable on A: min over eigenvalues with Re λ < 0 of
// −2 Re λ / |λ|² (where |1 + Δλ| = 1). +inf when A has no such eigenvalue.
double forward_euler_threshold(const Model& m);

// The measured stability threshold of a method: the Δ in [lo, hi] where ρ(Ā(Δ)) crosses 1,
// by bisection (in log Δ) to relative precision 1e-12. Requires ρ ≤ 1 at lo and > 1 at hi;
// returns hi when the method stays stable up to hi. O(N³) per bisection step.
double stability_threshold(const Model& m, Method method, double lo, double hi, double alpha = 0.5);

// One point of a Δ sweep: the trajectory error of the discretized model against the exact
// continuous one, and the spectral radius ρ(Ā) (≤ 1 ⇔ the recurrence does not blow up).
struct SweepPoint {
  double dt = 0.0;
  double error = 0.0;  // max_k ‖x_k − x(t_k)‖ / max_k ‖x(t_k)‖
  double rho = 0.0;    // spectral radius of Ā
  std::size_t steps = 0;
  double dt_lambda = 0.0;  // Δ·max|λ(A)|: the asymptotic (Taylor) regime needs it ≪ 1
};

// The exact free response x(t_k) = e^{A t_k} x0 on t_k = kΔ, k = 0 … n (eigen-decomposition when
// A is well conditioned, else one expm per sample; never powers of e^{AΔ}). Columns = samples.
Mat exact_free_states(const Model& m, const Vec& x0, double dt, std::size_t n);

// Free response over [0, T] from x(0) = x0: x_0 = x0, x_k = Ā x_{k−1} for k = 1 … n,
// n = round(T / Δ), compared with the exact e^{A t_k} x0 at every sample.
SweepPoint free_response_error(const Model& m, const Vec& x0, double T, double dt, Method method,
                               double alpha = 0.5);

// Input held piecewise constant on a coarse grid: v_j on (t_{j−1}, t_j], t_j = j·Δc, from
// x(t_{−1}) = 0. The model is discretized with Δ = Δc / m (so the input is held on that grid
// too) and compared with the exact (D5 with Δc) at the coarse times.
SweepPoint held_input_error(const Model& model, const std::vector<double>& v, double dc, int m,
                            Method method, double alpha = 0.5);

// A point is in the asymptotic range, where error ≈ c·Δ^order, when Δ·max|λ| ≤ 0.5 (the
// Taylor expansion behind the order holds), 1e-12 < error < 0.1 (neither rounding nor
// saturation) and ρ(Ā) ≤ 1 (the recurrence is stable).
bool in_asymptotic_range(const SweepPoint& p);
std::size_t asymptotic_points(const std::vector<SweepPoint>& pts);

// Measured order of convergence: the least-squares slope of log(error) against log(Δ) over the
// points in the asymptotic range. NaN when fewer than 2 points qualify (e.g. a method exact to
// rounding, or a sweep whose Δ are all too large for the model's fastest mode).
double fit_order(const std::vector<SweepPoint>& pts);

}  // namespace ssm
