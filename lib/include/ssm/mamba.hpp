// ssm/mamba.hpp — stage 7: the Mamba block around the selective scan, and a small stack of them.
//
// (M8) For a sequence of L tokens h (L, d_model), one block computes
//        [x, z]  = h W_inᵀ                              in_proj: d_model → 2·d_inner
//        x'      = silu(causal depthwise conv1d(x))      width 4, one filter per channel
//        [δ, B, C] = x' W_xᵀ                            x_proj: d_inner → dt_rank + 2N
//        Δraw    = δ W_dtᵀ                               dt_proj: dt_rank → d_inner (its bias is
//                                                        the scan's Δ bias, softplus in the scan)
//        y       = selective_scan(u = x', Δraw, A = −exp(A_log), B, C, D, gate z)   (M1–M4)
//        out     = y W_outᵀ                              out_proj: d_inner → d_model
//      and the model stacks blocks with pre-norm residuals, x ← x + block(RMSNorm(x)), then a
//      final RMSNorm. Defaults: d_inner = 2·d_model, dt_rank = ⌈d_model/16⌉, N = 16.
// (M6) Weights from a seed with Mamba's initialization: A_log = log(n+1); Δ log-uniform in
//      [dt_min, dt_max] stored as its inverse softplus in dt_proj's bias; dt_proj's weight
//      uniform in ±dt_rank^−½; D = 1; the linear maps and the conv as PyTorch initializes them
//      (uniform in ±1/√fan_in), out_proj divided by √n_layers (pre-norm residual rescaling).
//
// Intuition: everything here except the scan is position-wise (the projections) or looks back
// only 3 steps (the conv); the scan carries information across the whole sequence, with Δ, B, C
// computed from the current token: that is where the model decides what to remember.
//
// Two ways to run it, which must agree to rounding (tested, and printed by ssm-mamba):
//   scan mode  forward(): the whole prompt at once, the scan over all L steps;
//   step mode  step(): one token in, one out; the state is the conv's last 3 inputs (d_conv − 1)
//              plus the scan's h (d_inner, N) per layer — O(1) memory in L, as in an RNN.
#pragma once

#include <cstdint>
#include <vector>

#include "ssm/recurrent.hpp"  // MatT, VecT
#include "ssm/selective.hpp"

namespace ssm {

struct MambaConfig {
  int d_model = 64;
  int d_state = 16;  // N
  int d_conv = 4;
  int expand = 2;   // d_inner = expand · d_model
  int dt_rank = 0;  // 0: ⌈d_model / 16⌉
  int n_layers = 2;
  double dt_min = 1e-3, dt_max = 1e-1, dt_init_floor = 1e-4;
  double rms_eps = 1e-5;
  int d_inner() const { return expand * d_model; }
  int rank() const { return dt_rank > 0 ? dt_rank : (d_model + 15) / 16; }
};

// The weights of one block (and of the RMSNorm in front of it). Shapes as in PyTorch's Linear:
// (out, in).
template <class T>
struct MambaBlockWeights {
  MatT<T> in_proj;   // (2·d_inner, d_model)
  MatT<T> conv_w;    // (d_inner, d_conv)
  VecT<T> conv_b;    // (d_inner)
  MatT<T> x_proj;    // (dt_rank + 2N, d_inner)
  MatT<T> dt_proj;   // (d_inner, dt_rank)
  VecT<T> dt_bias;   // (d_inner)
  MatT<T> A_log;     // (d_inner, N)
  VecT<T> D;         // (d_inner)
  MatT<T> out_proj;  // (d_model, d_inner)
  VecT<T> norm_w;    // (d_model)
};

// Step-mode state of one layer.
template <class T>
struct MambaLayerState {
  MatT<T> conv;        // (d_inner, d_conv): the conv's input window, oldest first (zeros at start)
                       // Only its last d_conv − 1 columns carry information between tokens
                       // (step() shifts the oldest out first); it is kept whole, as Mamba's
                       // conv_state is, so a step is one shift and one row-wise dot product.
  std::vector<T> ssm;  // (1, d_inner, N): the scan's h
};

template <class T>
class MambaModel {
 public:
  // Weights from `seed` with Mamba's initialization (M6). Validates the config: d_model in
  // [1, 4096], d_state in [1, 256], d_conv in [1, 16], expand in [1, 8], n_layers in [1, 64].
  MambaModel(const MambaConfig& cfg, std::uint64_t seed);

  const MambaConfig& config() const { return cfg_; }
  const std::vector<MambaBlockWeights<T>>& blocks() const { return blocks_; }
  std::vector<MambaBlockWeights<T>>& blocks() { return blocks_; }

  // Scan mode: X (L, d_model), one token per row → Y (L, d_model). When `state` is given it
  // receives each layer's state after the last token, ready for step(). Cost per layer
  // O(L·d_model·d_inner) for the projections plus the scan's O(L·d_inner·N). The scan is the
  // fast CPU scan (selective_scan) on `threads` threads.
  void forward(const Signals<T>& X, Signals<T>& Y, std::vector<MambaLayerState<T>>* state = nullptr,
               int threads = 1) const;

  // Step mode: one token x (d_model values at x) → y (d_model values written at y); `state`
  // (from initial_state() or forward(), one entry per layer, checked) is advanced by one step. O(d_model·d_inner + d_inner·N) per token.
  void step(const T* x, T* y, std::vector<MambaLayerState<T>>& state) const;

  // Replaces every weight (blocks and the final norm, shapes as the config's, checked: Error
  // otherwise) and recomputes the cached scan parameters (A = −exp(A_log), D, Δ bias) from
  // them: how a trained MambaLM's weights run in step mode (train.hpp). O(parameters).
  void set_weights(const std::vector<MambaBlockWeights<T>>& blocks, const VecT<T>& norm_f);
  const VecT<T>& norm_f() const { return norm_f_; }

  // Zero conv windows and zero scan states, one per layer.
  std::vector<MambaLayerState<T>> initial_state() const;

  // The scan parameters of layer l in [0, n_layers) (A = −exp(A_log), D, Δ bias, softplus on);
  // throws std::out_of_range outside.
  const ScanParams<T>& scan_params(int l) const { return scan_.at(static_cast<std::size_t>(l)); }

 private:
  void refresh_scan_params();
  void block_forward(int l, const Signals<T>& h, Signals<T>& out, MambaLayerState<T>* st,
                     int threads) const;
  MambaConfig cfg_;
  std::vector<MambaBlockWeights<T>> blocks_;
  std::vector<ScanParams<T>> scan_;
  VecT<T> norm_f_;  // final RMSNorm weight (d_model)
};

// RMSNorm of each row of X (L, d): x / sqrt(mean(x²) + eps) · w. O(L·d).
template <class T>
void rms_norm(const Signals<T>& X, const VecT<T>& w, double eps, Signals<T>& Y);

}  // namespace ssm
