// ssm/continuous.hpp — stage 1: the continuous-time state space model.
//
//     x'(t) = A x(t) + B u(t)        A: N×N, B: N×1
//     y(t)  = C x(t) + D u(t)        C: 1×N, D: scalar
//
// (C1) x(t) = e^{At} x(0) + ∫_0^t e^{A(t−s)} B u(s) ds.
//
// Two independent ways to compute a trajectory serve as the ground truth of every later stage:
//  * exact, for an input held constant between samples: each interval is one matrix exponential
//    of the augmented matrix [[A, B], [0, 0]] (D5) — no ODE solver, no truncation error;
//  * a high-accuracy adaptive ODE solve (Boost.Odeint, Dormand–Prince 5(4) with dense output)
//    for any input function u(t), with tolerances as options.
// A stable model has every eigenvalue of A in the open left half-plane: the state forgets.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ssm/core.hpp"

namespace ssm {

// A SISO model {A, B, C, D} with N states. The constructor validates shapes and finiteness and
// throws Error naming the offending part.
class Model {
 public:
  Model(Mat A, Vec B, RowVec C, double D = 0.0, std::string name = "model");

  const Mat& A() const { return A_; }
  const Vec& B() const { return B_; }
  const RowVec& C() const { return C_; }
  double D() const { return D_; }
  int N() const { return static_cast<int>(A_.rows()); }
  const std::string& name() const { return name_; }

  // Eigenvalues of A (complex, unordered).
  CVec eigenvalues() const;
  // max Re λ(A) < 0.
  bool is_stable() const;

 private:
  Mat A_;
  Vec B_;
  RowVec C_;
  double D_;
  std::string name_;
};

// Damped oscillator (N = 2): x1 = position, x2 = velocity; y = position.
//   x1' = x2,  x2' = −ω² x1 − 2ζω x2 + ω² u     (ω in rad/s; unit DC gain)
Model damped_oscillator(double omega = 6.283185307179586, double zeta = 0.1);

// A random stable model: A = Q diag-blocks Q⁻¹ with eigenvalues −a ± iω, decay rates a spread
// log-uniformly over [decay_min, decay_max] and frequencies in [0, freq_max] rad/s; B, C random
// normal. The same seed always gives the same model. N in [1, 4096].
Model random_stable(int N, std::uint64_t seed, double decay_min = 0.5, double decay_max = 5.0,
                    double freq_max = 10.0);

// A stiff model: eigenvalues spread over [−stiffness, −1] (real, log-uniform), a random
// orthogonal basis. Forward Euler diverges on it once Δ > 2 / stiffness (see D1).
Model stiff_model(int N, std::uint64_t seed, double stiffness = 1000.0);

// The named example models: "oscillator", "random", "stiff".
const std::vector<std::string>& example_models();
Model example_model(const std::string& name, int N, std::uint64_t seed);

// A sampled trajectory: states x(t_k) as columns, outputs y(t_k), at the requested times.
struct Trajectory {
  std::vector<double> t;  // (L)
  Mat x;                  // (N, L)
  Vec y;                  // (L)
};

// Exact trajectory (C1) for an input held piecewise constant: u(t) = u_k on (t_{k−1}, t_k],
// t_k = k·Δ, k = 0 … L−1, starting at t_{−1} = −Δ from x(t_{−1}) = x0 (zero when empty).
// This is the time grid of the discrete recurrence x_k = Ā x_{k−1} + B̄ u_k with x_{−1} = x0,
// so ZOH (D5) reproduces it to rounding. Each step applies the exp of the augmented matrix
// Δ·[[A, B], [0, 0]], computed once. Cost O(N³ + N² L). y_k = C x(t_k) + D u_k.
Trajectory simulate_held(const Model& m, const std::vector<double>& u, double dt,
                         const Vec& x0 = Vec());

// Free response x(t_k) = e^{A t_k} x0 (u = 0), each sample by its own matrix exponential
// (not by powers of e^{AΔ}, so rounding does not accumulate). Cost O(N³ L).
Trajectory free_response(const Model& m, const Vec& x0, double dt, std::size_t L);

// Options of the adaptive ODE solve.
struct OdeOptions {
  double abs_tol = 1e-12;
  double rel_tol = 1e-12;
};

// High-accuracy solve of x' = Ax + Bu(t) with dense output, sampled at t_k = k·Δ,
// k = 0 … L−1, from x(0) = x0 (zero when empty). u is evaluated wherever the solver needs it,
// so it must be smooth for the tolerances to be met (for sampled inputs use simulate_held or
// simulate_ode_held). y_k = C x(t_k) + D u(t_k).
Trajectory simulate_ode(const Model& m, const std::function<double(double)>& u, double dt,
                        std::size_t L, const Vec& x0 = Vec(), OdeOptions opt = {});

// The ODE solve for an input held at u_k on (t_{k−1}, t_k] (same grid and start as
// simulate_held): integrates each interval separately, so the solver never steps across a
// jump. An independent check of simulate_held.
Trajectory simulate_ode_held(const Model& m, const std::vector<double>& u, double dt,
                             const Vec& x0 = Vec(), OdeOptions opt = {});

}  // namespace ssm
