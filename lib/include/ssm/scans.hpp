// ssm/scans.hpp — stage 9: the scan variants learners ask about.
//
// Three other ways to run the recurrence of stage 7 (MATH.md M1–M5), each checked against the
// sequential reference of ssm/selective.hpp:
//
//   (X6) Bidirectional scan. With R the time reversal (R u)_t = u_{L−1−t},
//          y = scan_fwd(u) + R(scan_bwd(R u)),
//        each direction with its own ScanParams (bidirectional Mamba models such as Vim and
//        Caduceus keep two sets of weights). Equivalently the backward half is the anti-causal
//        recurrence, run from the end of the sequence towards its start,
//          h_t = Ā_t h_{t+1} + B̄_t u_t,   y_t = C_t h_t + D u_t,   (h_L = 0)
//        with Ā_t, B̄_t from Δ_t, B_t as in (M2). A gate z, if given, multiplies the sum once:
//        y = (y_f + y_b)·silu(z).
//
//   (X7) Log-space scan (Heinsen's trick). For the scalar recurrence h_t = a_t h_{t−1} + b_t
//        with a_t > 0 and h_{−1} = h0, let a*_t = Σ_{r≤t} log a_r. Then
//          h_t = exp(a*_t) (h0 + Σ_{s≤t} b_s exp(−a*_s))
//              = exp(a*_t + logcumsumexp_{s≤t}(log b_s − a*_s)),
//        h0 being one more term at s = −1 with a* = 0. Negative b_s need a complex logarithm,
//        log b = log|b| + iπ; then h = Re(exp(…)), and terms of opposite signs cancel inside the
//        sum (precision is lost there). In float the exponent a*_t + LSE_t is a difference of
//        two large numbers (both ~|a*_t|), so the relative error of h grows like eps·|a*_t|:
//        the total log decay. That growth is the lesson. Below it, the L roundings of the
//        running log-sum-exp and of the running sum a* add up to ~eps·L (measured by ssm-ssd).
//
//   (X8) Blelloch scan. The work-efficient parallel prefix scan over the pairs (a, b) of (M5):
//        an up-sweep (a reduction tree) then a down-sweep (the prefixes pushed back down), for
//        n = 2^k elements (shorter inputs padded with the identity (1, 0)): 2(n − 1) combines in
//        2·log2 n levels. The naive (Hillis–Steele) scan does n·log2 n − (n − 1) combines in
//        log2 n levels.
//
// Intuition.
//   Why bidirectional. A causal scan lets y_t see only u_0 … u_t: right for generating text one
//   token at a time, wrong for data that is read whole (an image cut into patches for Vim, a
//   DNA strand for Caduceus, whose two strands are read in opposite directions). Running a
//   second scan from the end gives every position both its past and its future, at twice the
//   cost and without the possibility of streaming (the output at t waits for the last token).
//   Both halves are ordinary causal scans on suitably reversed data, so the fast kernel is
//   reused unchanged.
//   Why log space, and when it fails. Frameworks without a fused scan kernel compute the
//   recurrence with a cumulative sum and a logcumsumexp, two primitives every array library
//   has and parallelizes (Heinsen 2023); in log space the products of many a_t cannot
//   underflow. The price: exp(a*_t) and exp(−a*_s) are never formed, but their logarithms
//   are, and they are large and of opposite signs. Adding them cancels the leading digits, so
//   the absolute error of the exponent is eps·|a*_t| and the relative error of h the same. A
//   Mamba channel with Δ|A| ~ 0.1 over L = 10^4 steps has |a*| ~ 10^3: in float that is a
//   relative error ~10^-4, a thousand times the sequential scan's. The sequential loop, which
//   multiplies by a_t ≤ 1 at each step, never sees a large number and has no such growth.
//   What work and depth mean. Work is the number of combines executed (the energy); depth is
//   the number of levels, each level's combines being independent (the time on a machine with
//   enough processors). The sequential scan has work n − 1 and depth n − 1. Hillis–Steele
//   reaches depth log2 n by doing ~n·log2 n work; Blelloch keeps the work at ~2n (only twice
//   the sequential) for depth 2·log2 n. GPU scans are built from Blelloch-like trees inside
//   a block and a sequential carry between blocks (the chunked scan of stage 7).
//
// Shapes as in ssm/selective.hpp (B batch, D channels, L length, N state): u, Δraw, z, y are
// (batch, D, L); B, C are (batch, N, L); h0 and h_last are (batch, D, N). All row-major.
#pragma once

#include <vector>

#include "ssm/core.hpp"
#include "ssm/selective.hpp"

namespace ssm {

// ---------------------------------------------------------------------------------------------
// (X6) Bidirectional scan
// ---------------------------------------------------------------------------------------------

// R applied to every time series of in: u, delta, z (batch, D, L) and B, C (batch, N, L)
// reversed along L (each contiguous row of L values); batch, L and h0 kept. R is its own
// inverse. Throws Error naming the array whose size is not a multiple of L (or L < 1).
// O(size of the inputs).
template <class T>
ScanInputs<T> reverse_time(const ScanInputs<T>& in);

// (X6) y (batch, D, L) = (scan_fwd(u) + R(scan_bwd(R u)))·silu(z) (no factor without z), each
// half by the fast ssm::selective_scan (float or double) on `threads` threads, without its
// gate; the gate is applied once to the sum. Both directions read the same u, Δraw, B, C (a
// model whose directions have separate input projections composes reverse_time and
// selective_scan itself); fwd and bwd must agree on D and N, and each has its own A, D skip,
// Δ bias and discretization. in.h0 must be empty: a bidirectional layer sees a whole sequence
// and has no state carried in from before it (nor a meaningful one to hand on), so the
// function refuses one rather than guess which direction it belongs to. Validates sizes and A
// (O(D·N)), not the values. Cost: two fast scans, O(batch·D·L·N) each, plus O(batch·(D + N)·L)
// copies for the reversal.
template <class T>
void selective_scan_bidirectional(const ScanParams<T>& fwd, const ScanParams<T>& bwd,
                                  const ScanInputs<T>& in, std::vector<T>& y, int threads = 1);

// (X6) The backward half written directly from the anti-causal recurrence, plain loops in
// double, t from L − 1 down to 0 (no reverse_time, no forward scan: an independent truth):
//   h_t = Ā_t h_{t+1} + B̄_t u_t,  y_t = Σ_n C_{t,n} h_{t,n} + D u_t  (· silu(z_t) if z given),
// Ā, B̄ from Δ_t (M1, M2). in.h0, when given, is the boundary state h_L just past the end — the
// state reverse_time's kept h0 is to the forward scan of the reversed inputs. Returns y and,
// as h_last, the state h_0 reached at the start of the sequence. Validates (values included).
// O(batch·D·L·N).
ScanOutputs<double> selective_scan_anticausal_reference(const ScanParams<double>& p,
                                                        const ScanInputs<double>& in);

// ---------------------------------------------------------------------------------------------
// (X7) Log-space scan
// ---------------------------------------------------------------------------------------------

// (X7) h (L) for h_t = a_t h_{t−1} + b_t, h_{−1} = h0, computed in log space: a*_t the running
// sum of log a_t, then h_t = exp(a*_t + LSE_t) with LSE_t the logcumsumexp of the terms
// log b_s − a*_s (and log h0 at s = −1), accumulated online and stably: a running maximum m
// and the sum S = Σ exp(term − m), rescaled when m grows, LSE_t = m + log S. When every b_s and
// h0 is ≥ 0 everything is real; otherwise the terms are std::complex<T> (log b = log|b| + iπ)
// and h_t = Re(exp(…)). Terms with b_s = 0 are skipped (log 0 = −∞). a, b (L); any L ≥ 0.
// Throws Error naming "a" (an entry ≤ 0 or not finite, with its index), "b" (size ≠ size of a,
// or not finite) or "h0" (not finite). Written to show the method's error, not for speed:
// O(L) with one log and two exps (complex ones when needed) per step.
template <class T>
void log_space_scan(const std::vector<T>& a, const std::vector<T>& b, T h0, std::vector<T>& h);

// The whole selective scan (M1–M4, gate and h0 included) with every (b, d, n) state sequence
// from the log-space scan (X7): a_t = exp(Δ_t A_{d,n}), b_t = B̄_{t,n} u_t, h_{−1} = h0. a*_t is
// accumulated directly as Σ_{r≤t} Δ_r A_{d,n} rather than as log(exp(Δ_r A_{d,n})): exp would
// underflow to 0 for Δ|A| > ~87 (float) or ~745 (double), where log gives −∞, and for small
// Δ|A| exp(ΔA) = 1 − Δ|A| rounds with an absolute error eps, which log turns into a relative
// error eps/(Δ|A|) of the step (1e-4 for Δ|A| = 1e-3 in float) — before the method's own eps·|a*|.
// Same result as selective_scan_reference up to that error (tested). Validates (values
// included). O(batch·D·N·L) with complex exp and log.
template <class T>
void selective_scan_logspace(const ScanParams<T>& p, const ScanInputs<T>& in,
                             ScanOutputs<T>& out);

// ---------------------------------------------------------------------------------------------
// (X8) Parallel prefix scans over the pairs of (M5)
// ---------------------------------------------------------------------------------------------

// What a parallel scan did: combines executed (work) and levels (depth; the combines within a
// level are independent of each other and could all run at once).
struct ScanCounts {
  long long combines = 0;
  int depth = 0;
};

// (X8) Blelloch's scan, in place and inclusive: pairs[t] becomes combine(pairs[0], …, pairs[t])
// ("step 0 first, then … step t"). The n pairs are padded with the identity (1, 0) to
// n' = 2^⌈log2 n⌉. Up-sweep: log2 n' levels, level k combining pairs 2^k apart at every
// 2^{k+1}-th position (n'/2^{k+1} combines): n' − 1 combines, leaving the total at the root.
// Down-sweep: the root set to the identity, then log2 n' levels pushing the exclusive prefixes
// down (one combine per tree node): n' − 1 combines. That leaves the exclusive scan (steps
// 0 … t−1); the inclusive one is it shifted by one place, the last entry being the total saved
// from the up-sweep: a copy, no combine. Counts every combine executed, those on padding
// included (a real kernel would skip them): combines = 2(n' − 1), depth = 2·log2 n' (0 and 0
// for n ≤ 1). Sequential code that executes the parallel schedule level by level. O(n') work,
// O(n') extra memory (the padding).
template <class T>
ScanCounts blelloch_scan(std::vector<ScanPair<T>>& pairs);

// (X8) The Hillis–Steele scan for comparison, in place and inclusive, no padding needed: at the
// level with offset 2^k (k = 0, 1, … while 2^k < n), every pair t ≥ 2^k becomes
// combine(pairs[t − 2^k], pairs[t]) from the previous level's values (double-buffered).
// combines = Σ_{k: 2^k<n} (n − 2^k) = n·K − (2^K − 1) with K = ⌈log2 n⌉ levels
// (n·log2 n − (n − 1) for n a power of two); depth = K. O(n log n) work, O(n) extra memory.
template <class T>
ScanCounts hillis_steele_scan(std::vector<ScanPair<T>>& pairs);

// The selective scan (M1–M4, gate and h0 included) with every (b, d, n) time series of pairs
// (Ā_t, B̄_t u_t) scanned by blelloch_scan, then h_t = a_t·h0 + b_t from the scanned pair (a_t, b_t).
// Returns the counts of one series (they depend only on L: every series has the same).
// Same result as selective_scan_reference to rounding (products associated differently).
// Validates (values included). O(batch·D·N·L) work, O(L) extra memory.
template <class T>
ScanCounts selective_scan_blelloch(const ScanParams<T>& p, const ScanInputs<T>& in,
                                   ScanOutputs<T>& out);

}  // namespace ssm
