// ssm/ssd.hpp — stage 9: Mamba-2's state space duality (SSD).
//
// Mamba-2 restricts the selective SSM of stage 7 to a scalar A per head (docs/MATH.md, X1–X4):
//   (X1) per head h, with P channels x_t ∈ R^P sharing one step Δ_t and a state H_t ∈ R^{N×P}:
//          a_t = exp(Δ_t A_h)                   (A_h ≤ 0: one decay per head, not per state)
//          H_t = a_t H_{t−1} + Δ_t B_t x_tᵀ,    y_t = H_tᵀ C_t + D_h x_t
//   (X2) unrolled, y = M x with the L×L lower-triangular matrix
//          M[t, s] = C_tᵀ B_s · Δ_s · ∏_{s<r≤t} a_r   (s ≤ t; 0 above the diagonal)
//        M = L ∘ (C Bᵀ) diag(Δ), L[t, s] = exp(Σ_{s<r≤t} Δ_r A): a masked "attention" whose mask
//        is a decay. Every block of M strictly below the diagonal has rank ≤ N (it factors
//        through the N-dimensional state): M is N-semiseparable ("1-semiseparable" mask).
//   (X3) SSD, the chunked algorithm: cut time into chunks of Q steps. Inside a chunk, the
//        quadratic (attention) form (L_c ∘ C_c B_cᵀ)(Δ x)_c — two matrix products; between
//        chunks, the recurrence (X1) on the chunk's end states only: L/Q steps. Cost per head
//        O(L·Q·(N + P) + L·N·P) in matrix products instead of O(L·N·P) in rank-1 updates: more
//        flops, but flops a GEMM runs near the machine's peak.
//   (X4) The Mamba-2 block around it (see Mamba2Block below).
//
// Intuition: the same model has two faces. Read left to right it is an RNN with an N×P state
// (cheap per token, constant memory: inference). Read as a matrix it is masked linear
// attention (all pairs (t, s) at once, matrix products: training). SSD uses each face where it
// is cheap: attention inside short chunks, recurrence across them.
//
// Shapes (Mamba-2's layout, time before head so a chunk of one head is a strided matrix):
// x (batch, L, H, P); Δraw (batch, L, H); B, C (batch, L, G, N) with G groups, head h reading
// group h / (H / G); A, D skip, Δ bias (H); states (batch, H, P, N). Row-major std::vector<T>.
#pragma once

#include <cstdint>
#include <vector>

#include "ssm/core.hpp"
#include "ssm/recurrent.hpp"  // MatT, VecT
#include "ssm/selective.hpp"  // ScanParams, ScanInputs: the stage 7 view of the same model

namespace ssm {

// The per-head parameters of an SSD layer.
template <class T>
struct SsdParams {
  int H = 0, P = 0, N = 0, G = 1;  // heads, head dim, state size, groups of (B, C)
  std::vector<T> A;                // (H)  ≤ 0; A = 0 gives a = 1: linear attention (X5)
  std::vector<T> D_skip;           // (H)  empty: none
  std::vector<T> delta_bias;       // (H)  empty: 0
  bool delta_softplus = true;      // Δ = softplus(Δraw + bias); false: Δ = Δraw + bias
};

template <class T>
struct SsdInputs {
  int batch = 1, L = 0;
  std::vector<T> x;      // (batch, L, H, P)
  std::vector<T> delta;  // (batch, L, H)   Δraw
  std::vector<T> B, C;   // (batch, L, G, N)
  std::vector<T> h0;     // (batch, H, P, N) state before t = 0; empty: zero
};

template <class T>
struct SsdOutputs {
  std::vector<T> y;       // (batch, L, H, P)
  std::vector<T> h_last;  // (batch, H, P, N)
};

// Checks sizes, H, P, N ≥ 1, G ≥ 1 dividing H, A ≤ 0 and (check_values) every value finite.
// Throws Error naming the argument, what was found and what was expected. O(inputs).
template <class T>
void validate(const SsdParams<T>& p, const SsdInputs<T>& in, bool check_values = true);
template <class T>
void validate(const SsdParams<T>& p);

// Δ of (X1) for (b, t, h): softplus(Δraw + bias) or Δraw + bias (M1).
template <class T>
T ssd_delta(const SsdParams<T>& p, const SsdInputs<T>& in, int b, long long t, int h);

// (X1) The recurrence, plain loops in double: the truth. O(batch·L·H·P·N). Validates.
SsdOutputs<double> ssd_reference(const SsdParams<double>& p, const SsdInputs<double>& in);

// (X2) The L×L matrix M of head h in batch b (lower triangular; no D skip, no h0). Its
// product with x[b, :, h, :] (L, P) is the reference's y minus D x when h0 = 0. O(L²·N).
Mat ssd_matrix(const SsdParams<double>& p, const SsdInputs<double>& in, int b, int h);

// (X3) The chunked SSD algorithm with chunk length Q (1 ≤ Q; Q ≥ L is one chunk: the
// quadratic form alone; Q = 1 is the recurrence), float or double. Per (batch, head), chunk
// by chunk: Y = (L_c ∘ C_c B_cᵀ)(Δx)_c + diag(e^{cumsum ΔA}) C_c H_prev (two GEMMs and one
// more for the carried state), H ← e^{ΣΔA} H_prev + B_cᵀ diag(w)(Δx)_c. Same result as the
// reference to rounding. The products are Eigen GEMMs on strided views of x, B, C (no copies);
// (batch, head) pairs spread over `threads` (0 = all cores). Memory: O(Q² + Q·(N + P) + N·P)
// per thread beyond the outputs. Validates sizes (not values; call validate first).
// Each thread runs its products alone (omp_set_num_threads(1) inside its region); a caller
// that has called Eigen::setNbThreads(n > 1) overrides that and makes Eigen nest a team inside
// every small product (measured 10–30× slower): leave Eigen's own setting alone.
template <class T>
void ssd_chunked(const SsdParams<T>& p, const SsdInputs<T>& in, SsdOutputs<T>& out, int Q,
                 int threads = 1);

// The recurrence (X1) in T with Eigen rank-1 updates of the N×P state: the "sequential scan
// of the same model" the benchmark compares SSD with. O(batch·L·H·P·N). Validates sizes.
template <class T>
void ssd_sequential(const SsdParams<T>& p, const SsdInputs<T>& in, SsdOutputs<T>& out,
                    int threads = 1);

// Step mode: one token per batch row in, out; h (batch, H, P, N) carried.
// x (batch, H, P), delta (batch, H), B, C (batch, G, N) → y (batch, H, P). O(batch·H·P·N).
template <class T>
void ssd_step(const SsdParams<T>& p, int batch, const T* x, const T* delta, const T* B,
              const T* C, std::vector<T>& h, T* y);

// Step mode over whole sequences: ssd_step token by token from in.h0, collecting y and the
// final state; the scan must give the same (tested; printed by ssm-ssd). O(batch·L·H·P·N).
// Validates sizes.
template <class T>
void ssd_stepwise(const SsdParams<T>& p, const SsdInputs<T>& in, SsdOutputs<T>& out);

// Floating-point operations of ssd_chunked for these shapes (the matrix products only, 2 per
// multiply-add): 2·L·Q_eff·(N + P) + 4·L·N·P per (batch, head), Q_eff the mean chunk length.
double ssd_chunked_flops(int batch, long long L, int H, int P, int N, int Q);

// The numerical rank of every block M[i·Q : (i+1)·Q, j·Q : (j+1)·Q] with j < i (strictly below
// the diagonal blocks), from its singular values (> tol · largest singular value of M): the
// semiseparable structure of (X2). Returns the largest rank found (≤ N in exact arithmetic).
int ssd_max_offdiag_rank(const Mat& M, int Q, double tol = 1e-10);

// Mamba-2-like random inputs for tests, benchmarks and the app: A_h = −U[1, 16] (Mamba-2's
// init), Δ bias the inverse softplus of Δ log-uniform in [1e-3, 1e-1], Δraw ~ 0.5·N(0,1),
// x ~ N(0,1), B, C ~ N(0,1)/√N (so C·B stays O(1) as N grows), D = 1; h0 ~ N(0,1) when asked.
struct SsdShape {
  int batch = 1, L = 64, H = 2, P = 4, N = 8, G = 1;
};
template <class T>
void random_ssd_problem(const SsdShape& s, std::uint64_t seed, SsdParams<T>& p, SsdInputs<T>& in,
                        bool initial_state = false);
template <class To, class From>
SsdParams<To> cast_params(const SsdParams<From>& p);
template <class To, class From>
SsdInputs<To> cast_inputs(const SsdInputs<From>& in);

// The same model as a Mamba-1 selective scan (stage 7): D = H·P channels, A_{d,n} = A_h for
// every n (the scalar A is a diagonal A with equal entries), Δ and its bias copied to the P
// channels of each head, B, C of each batch shared by all channels (requires G = 1), inputs
// transposed to stage 7's (batch, D, L) layout. selective_scan_reference on the result must
// give the SSD's y (transposed back by ssd_from_scan_layout): a check between stages.
void ssd_as_selective_scan(const SsdParams<double>& p, const SsdInputs<double>& in,
                           ScanParams<double>& sp, ScanInputs<double>& si);
// y (batch, D = H·P, L) of stage 7 → (batch, L, H, P) of this stage.
std::vector<double> ssd_from_scan_layout(const std::vector<double>& y, int batch, int L, int D);

// ---------------------------------------------------------------------------------------------
// (X4) The Mamba-2 block. For tokens u (L, d_model):
//   [z, xBC, δ] = u W_inᵀ            in_proj: d_model → d_inner + (d_inner + 2·G·N) + H
//   xBC'        = silu(causal depthwise conv1d(xBC) + conv_b)   width d_conv, one filter each
//   [x, B, C]   = xBC'               x (L, H·P), B, C (L, G·N)
//   y           = SSD(x, Δraw = δ, A = −exp(A_log), B, C, D, Δ bias)       (X1–X3)
//   y'          = RMSNorm(y · silu(z)) · norm_w     the gated RMSNorm (norm after the gate)
//   out         = y' W_outᵀ          out_proj: d_inner → d_model
// d_inner = expand·d_model = H·P. Initialization as Mamba-2: A_log = log(U[1, 16]), Δ
// log-uniform in [dt_min, dt_max] stored as its inverse softplus, D = 1, linear maps and conv
// uniform in ±1/√fan_in.
struct Mamba2Config {
  int d_model = 64;
  int d_state = 64;  // N
  int d_conv = 4;
  int expand = 2;
  int headdim = 32;  // P
  int ngroups = 1;   // G
  int chunk = 64;    // Q of the SSD in scan mode
  double dt_min = 1e-3, dt_max = 1e-1;
  double rms_eps = 1e-5;
  int d_inner() const { return expand * d_model; }
  int nheads() const { return d_inner() / headdim; }
  int conv_dim() const { return d_inner() + 2 * ngroups * d_state; }
};

template <class T>
struct Mamba2Weights {
  MatT<T> in_proj;   // (2·d_inner + 2·G·N + H, d_model)
  MatT<T> conv_w;    // (conv_dim, d_conv)
  VecT<T> conv_b;    // (conv_dim)
  VecT<T> dt_bias;   // (H)
  VecT<T> A_log;     // (H)
  VecT<T> D;         // (H)
  VecT<T> norm_w;    // (d_inner)
  MatT<T> out_proj;  // (d_model, d_inner)
};

// Step-mode state: the conv's input window and the SSD state.
template <class T>
struct Mamba2State {
  MatT<T> conv;        // (conv_dim, d_conv), oldest column first
  std::vector<T> ssm;  // (1, H, P, N)
};

template <class T>
class Mamba2Block {
 public:
  // Validates: d_model in [1, 4096], headdim ≥ 1 dividing d_inner, ngroups ≥ 1 dividing H,
  // d_state in [1, 256], d_conv in [1, 16], expand in [1, 8], chunk ≥ 1. Errors name the field.
  Mamba2Block(const Mamba2Config& cfg, std::uint64_t seed);
  const Mamba2Config& config() const { return cfg_; }
  const Mamba2Weights<T>& weights() const { return w_; }
  const SsdParams<T>& ssd_params() const { return p_; }

  // Scan mode: U (L, d_model) → Y (L, d_model), the SSD with chunk cfg.chunk. `state`, when
  // given, is both the state before the first token (its ssm part is h0 and its window the
  // conv's past inputs) and receives the state after the last. O(L·d_model·d_inner) + SSD.
  void forward(const Signals<T>& U, Signals<T>& Y, Mamba2State<T>* state = nullptr,
               int threads = 1) const;
  // Step mode: one token (d_model values) in, one out; the state advanced. O(d_model·d_inner
  // + H·P·N).
  void step(const T* u, T* y, Mamba2State<T>& state) const;
  Mamba2State<T> initial_state() const;

 private:
  Mamba2Config cfg_;
  Mamba2Weights<T> w_;
  SsdParams<T> p_;
};

}  // namespace ssm
