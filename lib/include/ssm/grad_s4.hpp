// ssm/grad_s4.hpp — stage 8a, learning: the backward passes of the FFT convolution (K2) and of
// the S4D kernel (Q1), so an S4D layer y = K̄ * u + D u trains end to end.
//
// Every function here takes ∂loss/∂(its outputs) and returns ∂loss/∂(its inputs), with the
// shapes of the forward's arrays. A complex parameter p = a + ib (λ, B̃, C̃) gets the gradient
//   ∂loss/∂a + i ∂loss/∂b                                                      
// — the direction of steepest ascent in the complex plane, the convention of PyTorch's .grad
// for a complex leaf — so a descent step is p ← p − lr · grad for real and complex alike.
//
// (G11) Convolution. y_k = Σ_{j≤k} K̄_j u_{k−j} + D u_k (K1) is linear in K̄, u and D:
//       ∂loss/∂u_i  = Σ_{k≥i} dy_k K̄_{k−i} + D dy_i      (a correlation: K̄ run backward in time)
//       ∂loss/∂K̄_j  = Σ_{k≥j} dy_k u_{k−j}
//       ∂loss/∂D    = Σ_k dy_k u_k.
//       With R reversing time, Σ_{k≥i} dy_k K̄_{k−i} = R (K̄ * R dy)_i: each correlation is a
//       causal convolution of the reversed gradient, so stage 4's FFT (K2) computes both.
// (G12) S4D kernel. K̄_k = 2 Re F_k, F_k = Σ_n C_n B̄_n z_n^k, z_n = Ā_n (Q1). For a real dK̄,
//       let S_n = Σ_k dK̄_k z_n^k and S'_n = Σ_k k dK̄_k z_n^{k−1} (a polynomial with the
//       gradient as coefficients and its derivative, both by Horner's rule from k = L − 1).
//       F is holomorphic in each of C_n, B̃_n, λ_n, so with the convention above
//       grad p = 2 conj(Σ_k dK̄_k ∂F_k/∂p):
//       grad C_n = 2 conj(B̄_n S_n),   grad B̃_n = 2 conj(C_n b_n S_n)   (B̄_n = b_n B̃_n),
//       grad λ_n = 2 conj(C_n B̃_n (∂b_n/∂λ S_n + b_n ∂z_n/∂λ S'_n)),
//       ∂loss/∂Δ = 2 Re Σ_n C_n B̃_n (∂b_n/∂Δ S_n + b_n ∂z_n/∂Δ S'_n),   ∂loss/∂log Δ = Δ ∂loss/∂Δ.
// (G13) The discretizations' derivatives. ZOH: z = e^{Δλ}, b = (z − 1)/λ:
//       ∂z/∂λ = Δ z, ∂z/∂Δ = λ z, ∂b/∂λ = (Δ λ z − (z − 1))/λ², ∂b/∂Δ = z.
//       Bilinear, with w = 1/(1 − Δλ/2): z = (1 + Δλ/2) w, b = Δ w:
//       ∂z/∂λ = Δ w², ∂z/∂Δ = λ w², ∂b/∂λ = (Δ²/2) w², ∂b/∂Δ = w².
//
// Costs. conv_backward: two FFT convolutions, O(H L log L) time, O(H L) memory for dK̄ and du
// (plus FFTConv's per-thread buffers). s4d_kernels_backward: O(H Nh L) complex multiply-adds
// (two Horner chains per mode), the same order as the forward, and O(H Nh) memory beside dK̄.
// The forward drops the terms of a mode once |z_n|^k < ε² (s4.cpp); the backward keeps them:
// the difference is below the forward's own rounding.
//
// Not here: the backward of the DPLR (Cauchy–Woodbury) kernel of full S4 (S2–S4). Its inputs
// reach K̄ through C̄' = C̃(I − Ā^L) and the inverse FFT of the Woodbury-corrected Cauchy sums;
// S4 itself trains C̄' directly for that reason. It is left for a later step of stage 8a.
#pragma once

#include "ssm/convolution.hpp"
#include "ssm/s4.hpp"

namespace ssm::grad {

// (G11) The backward of fft.convolve(K, U, Y, threads, D): K, U, dY (H, L) with L =
// fft.length(); D (H) or null for no skip. Writes dK, dU (H, L) and, when dD is given, dD (H).
template <class T>
void conv_backward(const FFTConv<T>& fft, const Signals<T>& K, const Signals<T>& U,
                   const Signals<T>& dY, const VecT<T>* D, Signals<T>& dK, Signals<T>& dU,
                   VecT<T>* dD = nullptr, int threads = 1);

// (G11) The same with K̄'s spectra made beforehand (KF = fft.transform_kernels(K)), as a model
// that convolves many sequences with one set of kernels keeps them: the same bits as above, one
// FFT per channel pair fewer.
template <class T>
void conv_backward(const FFTConv<T>& fft, const typename FFTConv<T>::Spectra& KF,
                   const Signals<T>& U, const Signals<T>& dY, const VecT<T>* D, Signals<T>& dK,
                   Signals<T>& dU, VecT<T>* dD = nullptr, int threads = 1);

// (G11) The same by the O(L²) sums written out: the reference the FFT path is tested against.
void conv_backward_direct(const Signals<double>& K, const Signals<double>& U,
                          const Signals<double>& dY, const Vec* D, Signals<double>& dK,
                          Signals<double>& dU, Vec* dD = nullptr);

// Gradients of the S4D kernels of H channels sharing (Λ, B̃), each with its Δ_h and C̃_h.
struct S4DKernelGrads {
  CVec dLambda;  // (Nh): summed over the channels
  CVec dB;       // (Nh): summed over the channels
  CMat dC;       // (H, Nh)
  Vec ddt;       // (H): ∂loss/∂Δ_h
  Vec dlog_dt;   // (H): ∂loss/∂log Δ_h = Δ_h ∂loss/∂Δ_h (S4D trains log Δ)
};

// (G12, G13) The backward of s4::s4d_kernels(m, dt, C, L, method, K): dK (H, L), finite;
// method ZOH or Bilinear. Channels run on `threads` threads.
S4DKernelGrads s4d_kernels_backward(const s4::Dplr& m, const Vec& dt, const CMat& C,
                                    const Signals<double>& dK, Method method, int threads = 1);

// An S4D layer Y = K̄(Λ, B̃, Δ, C̃) * U + D U (s4d_kernels, then FFTConv) and its backward.
struct S4DLayerGrads {
  S4DKernelGrads kernel;  // Λ, B̃, C̃, Δ
  Vec dD;                 // (H)
  Signals<double> dU;     // (H, L)
};
// Forward: Y (H, L) from U (H, L). Backward: from dY (H, L), recomputing K̄ (O(H Nh L)).
void s4d_layer_forward(const s4::Dplr& m, const Vec& dt, const CMat& C, const Vec& D,
                       const Signals<double>& U, Method method, Signals<double>& Y,
                       int threads = 1);
S4DLayerGrads s4d_layer_backward(const s4::Dplr& m, const Vec& dt, const CMat& C, const Vec& D,
                                 const Signals<double>& U, const Signals<double>& dY,
                                 Method method, int threads = 1);

}  // namespace ssm::grad
