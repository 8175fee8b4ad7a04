// ssm/selective.hpp — stage 7: the selective scan (Mamba's S6).
//
// Per batch b and channel d, an N-state diagonal SSM whose step Δ and maps B, C change with
// the input at every time t (MATH.md, M1–M5):
//   (M1) Δ_t      = softplus(Δraw_t + bias_d)
//   (M2) Ā_{t,n}  = exp(Δ_t A_{d,n}),   B̄_{t,n} = Δ_t B_{t,n}   (Mamba's (D6); exact ZOH optional)
//   (M3) h_{t,n}  = Ā_{t,n} h_{t−1,n} + B̄_{t,n} u_t,           h_{−1} = 0 or a given state
//   (M4) y_t      = Σ_n C_{t,n} h_{t,n} + D_d u_t,  then y_t · silu(z_t) with the gate
//   (M5) h ↦ a h + b composes as (a₁,b₁) then (a₂,b₂) = (a₂a₁, a₂b₁ + b₂): associative, so the
//        L steps can be scanned in parallel.
//
// Intuition. An LTI model (stages 3–6) applies the same Ā, B̄ to every input, so it must
// remember filler as faithfully as content. Here Δ_t depends on the token: Δ_t ≈ 0 gives
// Ā ≈ 1, B̄ ≈ 0 (the step is the identity: the token is ignored, the state kept), a large Δ_t
// gives Ā ≈ 0, B̄ large (the state is overwritten by this token). The price is that there is no
// longer a convolution kernel (it would depend on the input), so training must scan.
//
// Shapes, as in Mamba: u, Δraw, z are (batch, D, L); A is (D, N); B and C are (batch, N, L) and
// shared by the D channels; D skip and Δ bias are (D); states are (batch, D, N). All arrays are
// row-major std::vector<T>, the last index contiguous.
//
// Four implementations, all checked against the first:
//   selective_scan_reference  plain loops in double: the readable truth.
//   selective_scan            the fast CPU scan (float or double): 16 channels in the lanes of
//                             one AVX-512 register, the N-state in registers, a vectorized exp,
//                             nothing of size N·L stored, channels over threads.
//   selective_scan_parallel   the associative scan (M5) chunked over time, threads over chunks.
//   selective_state_update    step mode: one token in, one out, the state carried.
// The CUDA kernel (cuda/) and its CPU emulation are the fifth, checked in tests/test_cuda_*.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ssm/core.hpp"

namespace ssm {

// How B̄ is formed from Δ, A and B (M2).
enum class ScanDiscretization {
  Mamba,  // B̄ = Δ B (D6): Mamba's default; first order in Δ
  ZOH     // B̄ = (e^{ΔA} − 1) / A · B (D5, diagonal A): exact for inputs held over the step
};

// Limits checked by validate(): beyond them the arrays would not fit in memory anyway, and N is
// kept to what Mamba's kernels support.
inline constexpr int kMaxScanN = 256;
inline constexpr int kMaxScanD = 1 << 16;
inline constexpr long long kMaxScanL = 1LL << 26;

// The layer's per-channel parameters (its weights).
template <class T>
struct ScanParams {
  int D = 0, N = 0;
  std::vector<T> A;            // (D, N)  real and < 0: A = −exp(A_log) (M6)
  std::vector<T> D_skip;       // (D)     skip term D u; empty: none
  std::vector<T> delta_bias;   // (D)     added to Δraw (M1); empty: 0
  bool delta_softplus = true;  // Δ = softplus(Δraw + bias); false: Δ = Δraw + bias
  ScanDiscretization disc = ScanDiscretization::Mamba;
};

// One batch of sequences.
template <class T>
struct ScanInputs {
  int batch = 1, L = 0;
  std::vector<T> u;      // (batch, D, L)
  std::vector<T> delta;  // (batch, D, L)  Δraw
  std::vector<T> B, C;   // (batch, N, L)
  std::vector<T> z;      // (batch, D, L)  gate; empty: no gate
  std::vector<T> h0;     // (batch, D, N)  state before t = 0; empty: zero
};

template <class T>
struct ScanOutputs {
  std::vector<T> y;       // (batch, D, L)
  std::vector<T> h_last;  // (batch, D, N)  the state after the last step (to continue in step mode)
};

// Checks sizes against (batch, D, L, N), the ranges of the shape (D in [1, 2^16], N in
// [1, 256], L in [1, 2^26], batch ≥ 1), A < 0 (a positive A makes Ā = e^{ΔA} > 1: the state
// grows without bound) and, when check_values, that every input is finite. Throws Error naming
// the array, the value or size found and what was expected. O(size of the inputs) with values,
// O(D·N) without.
template <class T>
void validate(const ScanParams<T>& p, const ScanInputs<T>& in, bool check_values = true);
template <class T>
void validate(const ScanParams<T>& p);

// The sequential scan (M1–M4), plain loops in double, one exp and one expm1 (ZOH) per element
// from the C library. Cost O(batch·D·L·N). The truth every other path is compared with.
// Validates its arguments (values included).
ScanOutputs<double> selective_scan_reference(const ScanParams<double>& p,
                                             const ScanInputs<double>& in);

// The fast CPU scan, float or double (M1–M4). Same result as the reference up to rounding:
// relative error ~5e-7 (float) and ~1e-15 (double) of max |y| for Mamba-like inputs (tested).
// Layout: 16 channels (float; 8 for double) in the lanes of one 64-byte SIMD pack, state
// h_n kept in registers for n < N, exp(ΔA) from the vectorized exp2 of ssm/vmath.hpp with
// A·log2(e) precomputed, B and C transposed once per batch to (L, N) so that B_{t,n} is a
// broadcast, time in chunks of 64 steps with Δ, Δ·u pre-computed and transposed per chunk.
// Nothing of size N·L is ever stored. Channel groups are spread over `threads` (0 = all cores).
// Validates sizes and A but not the values (O(D·N)): call validate(p, in) first for untrusted
// data. Work O(batch·D·L·N), one exp per element; memory traffic reads u, Δ, z once and
// writes y once.
template <class T>
void selective_scan(const ScanParams<T>& p, const ScanInputs<T>& in, ScanOutputs<T>& out,
                    int threads = 1);

// The associative scan (M5), chunked over time: split [0, L) into `chunks` pieces (0: one per
// thread); pass 1, in parallel: each chunk reduces its steps to one pair (a, b) per (b, d, n);
// pass 2, sequential and short: the pairs are scanned to give every chunk its incoming state;
// pass 3, in parallel: each chunk is re-scanned from its incoming state and emits y. Same
// result as the reference to rounding (the products are associated differently). Work about
// twice the sequential scan's (two exps per element), depth O(L / chunks + chunks).
// Scalar code, written for clarity, not speed.
template <class T>
void selective_scan_parallel(const ScanParams<T>& p, const ScanInputs<T>& in, ScanOutputs<T>& out,
                             int threads = 1, int chunks = 0);

// One step of every (batch, channel): the token at time t in, its output out, the state carried.
template <class T>
struct StepInputs {
  int batch = 1;
  std::vector<T> u, delta, z;  // (batch, D); z empty: no gate
  std::vector<T> B, C;         // (batch, N)
};

// Step mode (inference): h (batch, D, N) ← Ā h + B̄ u, y (batch, D) = C h + D u (· silu(z)).
// Feeding the L tokens of a sequence one by one gives the scan's outputs and final state.
// Cost O(batch·D·N) per token. Validates sizes.
template <class T>
void selective_state_update(const ScanParams<T>& p, const StepInputs<T>& in, std::vector<T>& h,
                            std::vector<T>& y);

// Step mode over a whole sequence: selective_state_update token by token from in.h0, collecting
// y (batch, D, L) and the final state. The scan must give the same (tested; printed by
// ssm-mamba). O(batch·D·L·N).
template <class T>
void selective_scan_stepwise(const ScanParams<T>& p, const ScanInputs<T>& in, ScanOutputs<T>& out);

// The (a, b) pair of the step h ↦ a h + b and its composition (M5): combine(first, second) is
// "apply first, then second". Associative; identity (1, 0).
template <class T>
struct ScanPair {
  T a = 1, b = 0;
};
template <class T>
inline ScanPair<T> combine(ScanPair<T> first, ScanPair<T> second) {
  return {second.a * first.a, second.a * first.b + second.b};
}

// Mamba-like random inputs for tests, benchmarks and the app: A_{d,n} = −(n+1)·e^{ε} (M6 with a
// small jitter ε ~ 0.1·N(0,1) so that channels differ), Δ bias from Mamba's init (Δ log-uniform
// in [1e-3, 1e-1], stored through the inverse softplus), Δraw ~ 0.5·N(0,1), u, B, C, z ~ N(0,1),
// D = 1. Options select the gate, D, h0 and the discretization.
struct ScanShape {
  int batch = 1, D = 1, L = 1, N = 16;
};
struct RandomScanOptions {
  bool gate = true, skip = true, initial_state = false;
  ScanDiscretization disc = ScanDiscretization::Mamba;
  bool constant_in_time = false;  // Δraw, B, C the same at every t (an LTI problem, for M7)
};
template <class T>
void random_scan_problem(const ScanShape& s, std::uint64_t seed, ScanParams<T>& p,
                         ScanInputs<T>& in, const RandomScanOptions& opt = {});

// Precision conversion (float problems are checked against the double reference).
template <class To, class From>
ScanParams<To> cast_params(const ScanParams<From>& p);
template <class To, class From>
ScanInputs<To> cast_inputs(const ScanInputs<From>& in);

// (M7) The same scan computed the stage 4 way, for inputs whose Δraw, B and C do not change
// with t: each channel is then the LTI diagonal model Ā = diag(e^{ΔA_d}), B̄ from stage 2's
// discretize (Method::MambaZOH for B̄ = ΔB, Method::ZOH), K̄ = (CB̄, CĀB̄, …) by repeated mat-vec
// (kernel) and y = K̄ * u + D u by FFT (FFTConv). Requires no gate and h0 = 0 (the convolution
// view starts from rest); throws Error naming what varies in time otherwise.
// Cost O(batch·D·(N²·L + L log L)).
std::vector<double> selective_scan_as_convolution(const ScanParams<double>& p,
                                                  const ScanInputs<double>& in);

// Mamba's Δ bias initialization (M6): the inverse softplus of Δ, Δ + log(−expm1(−Δ)).
double inverse_softplus(double delta);

// ---------------------------------------------------------------------------------------------
// The selectivity lesson (hand-constructed parameters, no training)
//
// A sequence of L tokens; K of them, at random positions, are "content", the rest "filler".
// Every token carries a digit v_t ∈ {1 … V} as its input u_t (content and filler digits come from
// the same distribution) and a marker m_t (1 for content) that only Δ sees:
//   selective model   Δ_t = softplus(w·m_t + b)  with b = −12 (Δ ≈ 6e-6 on filler: Ā ≈ 1,
//                     B̄ ≈ 0, the token is ignored) and w so that Δ = delta_content on content;
//   LTI model         the same N, A, B with w = 0: Δ_t = softplus(b') constant — a convolution.
// One channel, A_n = −a0·(n+1), B_n = 1. After the sequence, the K content digits are read from
// the final state h_L (N numbers) by a linear readout fitted by least squares on `train`
// sequences and scored on `test` others: a digit is recalled when the readout rounds to it.
// For the selective model h_L is (up to the ~1e-4 drift of the filler steps) the state of the
// content tokens alone, a fixed invertible (Vandermonde) function of them, wherever they sit.
// For the LTI model h_L mixes in every filler digit with a weight that depends on its position:
// no readout can undo that, whatever the constant Δ (the best of a grid is reported).
struct SelectivityConfig {
  int L = 64, K = 4, N = 8, vocab = 8;
  int train = 600, test = 400;
  double delta_content = 1.0;  // Δ on content tokens (selective model)
  double a0 = 0.5;             // A_n = −a0·(n+1)
  std::uint64_t seed = 1;
};

struct SelectivityResult {
  // One example sequence (the first test sequence).
  std::vector<double> u;                     // (L) digits
  std::vector<int> content;                  // positions of the K content tokens
  std::vector<double> delta_sel, delta_lti;  // (L) Δ_t of each model
  Mat states_sel, states_lti;                // (N, L) h_t of each model (step mode)
  // Recall on the test sequences.
  double recall_sel = 0, recall_lti = 0, chance = 0;  // fractions of content digits recalled
  double lti_delta = 0;  // the constant Δ of the reported LTI model (best of grid)
  std::vector<std::pair<double, double>> lti_grid;      // (Δ, recall) for every Δ tried
  std::vector<double> truth, decoded_sel, decoded_lti;  // every test content digit and readouts
};

// Runs the lesson (reference scan in double, step mode for the example's states). Validates the
// config: L in [2, 4096], K in [1, min(N, L/2)], N in [1, 32], vocab in [2, 100], train ≥ 2N + 2,
// test ≥ 1, delta_content in (0, 10], a0 in (0, 10]. Cost O((train + test)·L·N·grid).
SelectivityResult selectivity_lesson(const SelectivityConfig& cfg);

// ---------------------------------------------------------------------------------------------
// Where float loses precision (the precision table of ssm-mamba)
//
// For Mamba-like random inputs of shape (1, D, L, N), without gate and skip (y = Σ_n C h: the
// SSM's own output, so the D·u term does not dilute its error), the error of y against the
// double reference (max |Δy| / max |y|) of runs that each change one thing:
struct PrecisionRow {
  int L = 0;
  double inputs_only = 0;  // the double reference on inputs rounded to float: unavoidable
  // The next three run on the rounded inputs and are compared with the double reference on
  // those same inputs, so input rounding is out of them:
  double coefficients = 0;  // Δ, Ā = exp2(Δ·A·log2 e), B̄u computed in float exactly as the
                            // fast scan does (its softplus and exp); recurrence in double
  double recurrence = 0;    // Ā, B̄u exact, rounded to float; h = Ā h + B̄u and y in float
  double fast_float = 0;    // the fast float scan: everything in float
  double bf16_state = 0;    // as `recurrence`, with h rounded to bfloat16 (8-bit mantissa)
                            // after every step: what a low-precision state does
  double memory_steps = 0;  // the slowest state's memory 1 / (Δ |A|)_min at typical Δ
};
// delta_scale multiplies Mamba's Δ (smaller Δ: longer memory, more steps accumulate).
PrecisionRow precision_row(int D, int L, int N, double delta_scale, std::uint64_t seed);

}  // namespace ssm
