// ssm/grad.hpp — stage 8a, learning: the exact backward pass of the selective scan.
//
// Given the forward (M1)–(M4) of ssm/selective.hpp and the gradient dy = ∂ℓ/∂y of some loss ℓ
// (and optionally dh_last = ∂ℓ/∂h_{L−1}), the gradients of ℓ with respect to every input and
// parameter (docs/MATH.md, G1–G9). Per batch b and channel d, with x_t = Δraw_t + bias_d,
// Δ_t = softplus(x_t), Ā_{t,n} = e^{Δ_t A_n}, s_t = Σ_n C_{t,n} h_{t,n} + D u_t:
//   (G1) gate:  dy'_t = dy_t · silu(z_t),   dz_t = dy_t · s_t · silu'(z_t)   (no gate: dy' = dy)
//   (G2) state adjoint, backward in time with the forward's own Ā:
//        g_{L−1,n} = C_{L−1,n} dy'_{L−1} + dh_last_n,   g_{t,n} = C_{t,n} dy'_t + Ā_{t+1,n}
//        g_{t+1,n}
//   (G3) dC_{t,n} = Σ_d dy'_t h_{t,n}            (G4) dB_{t,n} = Σ_d g_{t,n} u_t ∂B̄/∂B
//   (G5) du_t = Σ_n g_{t,n} B̄_{t,n} + D dy'_t     (G6) dD = Σ_{b,t} dy'_t u_t
//   (G7) dΔ_t = Σ_n g_{t,n} (A_n Ā_{t,n} h_{t−1,n} + u_t ∂B̄/∂Δ),
//        dA_n = Σ_{b,t} g_{t,n} (Δ_t Ā_{t,n} h_{t−1,n} + u_t ∂B̄/∂A)
//   (G8) dΔraw_t = dΔ_t · sigmoid(x_t) (softplus' ; 1 without softplus),  dbias = Σ_{b,t} dΔraw_t
//   (G9) dh0_n = Ā_{0,n} g_{0,n}
// Intuition. The adjoint g is the state's sensitivity; it runs backward through the same
// linear recurrence as h runs forward (the transpose of a diagonal step is itself), so it
// neither vanishes nor explodes faster than Ā^k does: the gradient of a past input decays like
// the memory of it, which is why linear recurrences train over long spans where a tanh RNN's
// Jacobians shrink the gradient.
//
// Shapes exactly as the forward: u, Δraw, z, dy (batch, D, L); A (D, N); B, C (batch, N, L);
// D skip, Δ bias (D); h0, dh_last (batch, D, N). Row-major std::vector<T>, last index contiguous.
#pragma once

#include <vector>

#include "ssm/selective.hpp"

namespace ssm {

// Every gradient of ℓ, each with its forward array's shape. du, ddelta (w.r.t. Δraw, before
// the bias and softplus), dz: (batch, D, L); dA: (D, N); dB, dC: (batch, N, L); dD,
// ddelta_bias: (D); dh0: (batch, D, N). dD, ddelta_bias and dh0 are filled even when the
// forward's D_skip, delta_bias or h0 is empty (the gradient at the implied zero, what training
// from zero needs); dz is empty exactly when the forward has no gate.
template <class T>
struct ScanGrads {
  std::vector<T> du, ddelta, ddelta_bias, dA, dB, dC, dD, dz, dh0;
};

// Checks dy (batch·D·L values, finite), dh_last (empty or batch·D·N values, finite) against a
// valid forward problem (validate(p, in, check_values)) and, when chunk is not null, *chunk > 0.
// Throws Error with a one-line message naming the argument. O(batch·D·L) with values.
template <class T>
void validate_backward(const ScanParams<T>& p, const ScanInputs<T>& in, const std::vector<T>& dy,
                       const std::vector<T>& dh_last, const int* chunk, bool check_values = true);

// (G1)–(G9) in plain double loops, straight from the equations: runs the forward once storing
// every state h_t (N·L values per channel, one channel at a time), then the adjoint backward.
// Every forward option: softplus on/off, Δ bias, D, gate, h0, Mamba's B̄ = ΔB (D6) and ZOH (D5).
// Validates its arguments (values included). Cost O(batch·D·L·N) (about 3× the forward's
// flops, one exp per element), memory 8·N·L bytes of scratch beyond the outputs.
ScanGrads<double> selective_scan_backward_reference(const ScanParams<double>& p,
                                                    const ScanInputs<double>& in,
                                                    const std::vector<double>& dy,
                                                    const std::vector<double>& dh_last = {});

// The fast backward, float or double (G1)–(G9), without storing the batch·D·L·N states. As the
// fast forward: W channels (16 float, 8 double) in the lanes of one 64-byte SIMD pack, the N
// states as N packs, Ā = 2^{Δ·A·log2 e} from the vectorized exp2 of ssm/vmath.hpp, B and C
// transposed once per batch to (L, N) so B_{t,n} is a broadcast; each (batch, group of W
// channels) is a work item on `threads` OpenMP threads (0 = all cores). Per item: (1) the
// forward, keeping one state checkpoint every `chunk` steps (G10); (2) the chunks last to first:
// each chunk's states and Ā recomputed from its checkpoint, then the adjoint (G2) run backward
// through it. The sums over channels of dB and dC (G3, G4) are stored as one pack per (t, n)
// and reduced W at a time by register transposes. Work O(batch·D·L·N) with two exps per
// element (one per pass): bench-grad measured 3.8× the fast forward's time from the forward's
// checkpoints (selective_scan_checkpointed, below), more on its own (README, "Stage 8a —
// bench-grad").
// Memory beyond the inputs and outputs, in bytes, with s = sizeof(T), P = the threads used,
// K = ⌈L/chunk⌉, c = min(chunk, L), W·s = 64:
//   2·s·batch·L·N                         B and C transposed
//   + P·s·(2·batch·L·N + D·N + 2·D)       per-thread sums of dB, dC, dA, dD, dbias (reduced)
//   + P·64·(N·K + 4·N·c + 8·c)            per-thread checkpoints (N·K packs), one chunk of h,
//                                         Ā and the dB, dC terms (4·N·c packs), and of Δ, u,
//                                         σ, dy, z, du, dΔ, dz (8·c packs)
//   + P·s·(c·N + W)                       one chunk of reduced dB / dC terms
// e.g. (1, 1536, 2048, 16) float, chunk 64, P = 2: at most 1.6 MB (bench-grad counts 1.0 MB
// allocated), against 38 MB of u, Δraw, z. That is
// O(P·(batch·L·N + N·L/chunk + N·chunk)): the checkpoints live only while their channel group
// is processed, so it is within O(B·D·N·L/chunk + B·D·L) and never O(B·D·L·N). chunk ≥ L keeps
// no checkpoint but one chunk of L·N packs per thread; chunk = 1 keeps every state as a
// checkpoint (per group). Validates sizes, dy, dh_last (values included) and chunk (> 0); the
// forward's values are not checked (call validate(p, in) first for untrusted data). Same result
// as the reference to rounding: tested ≤ 1e-13 (double) and ≤ 2e-5 (float) of each array's max.
template <class T>
ScanGrads<T> selective_scan_backward(const ScanParams<T>& p, const ScanInputs<T>& in,
                                     const std::vector<T>& dy, const std::vector<T>& dh_last = {},
                                     int chunk = 64, int threads = 1);

// The checkpoints a forward pass keeps for the backward (G10): the state entering each chunk of
// `chunk` steps, (batch, D, K, N) with K = ⌈L/chunk⌉ — s·batch·D·N·K bytes (at (1, 1536, 2048,
// 16) float, chunk 64: 3.1 MB; 0.79 MB at chunk 256), against s·batch·D·N·L for every state.
template <class T>
struct ScanCheckpoints {
  int chunk = 0, batch = 0, D = 0, N = 0, L = 0;
  std::vector<T> h;
};

// Training's forward: y and h_last exactly as selective_scan computes them (M1–M4, same lanes,
// same vectorized exp; equal to rounding, tested), and the checkpoints in ck (resized). The
// backward given ck then skips its own forward pass (pass 1 above): the forward's work is not
// done twice. Same cost as selective_scan plus the checkpoints' stores. Validates sizes (not
// values: call validate(p, in) first for untrusted data) and chunk > 0.
template <class T>
void selective_scan_checkpointed(const ScanParams<T>& p, const ScanInputs<T>& in,
                                 ScanOutputs<T>& out, ScanCheckpoints<T>& ck, int chunk = 64,
                                 int threads = 1);

// The backward into g, whose arrays are resized and overwritten (a g reused from the last call
// keeps its memory: no fresh pages for 2·batch·D·L + … values per call), and, when ck is not
// null, from the checkpoints selective_scan_checkpointed kept for these inputs (ck->chunk must
// equal chunk and its shape the problem's; Error otherwise). Otherwise as above.
template <class T>
void selective_scan_backward(const ScanParams<T>& p, const ScanInputs<T>& in,
                             const std::vector<T>& dy, const std::vector<T>& dh_last,
                             ScanGrads<T>& g, int chunk = 64, int threads = 1,
                             const ScanCheckpoints<T>* ck = nullptr);

}  // namespace ssm
