// ssm/convolution.hpp — stage 4: the same LTI model as a convolution, applied by FFT.
//
// (K1) Unrolling the recurrence from x_{−1} = 0 gives
//        y_k = Σ_{j=0..k} K̄_j u_{k−j} + D u_k,    K̄ = (C B̄, C Ā B̄, C Ā² B̄, …, C Ā^{L−1} B̄).
// (K2) A causal convolution of length L is the first L outputs of a linear convolution, which an
//      FFT of size M ≥ 2L − 1 computes without circular wrap-around:
//        y = irfft(rfft(u, M) · rfft(K̄, M))[0 : L] + D u.
// The recurrence needs L sequential steps of O(N²); the convolution needs K̄ once (O(N² L) here,
// O(N L) with S4's trick in stage 6) and then O(L log L) per channel, all of it parallel.
#pragma once

#include <memory>
#include <mutex>

#include "ssm/recurrent.hpp"

namespace ssm {

// K̄_k = C Ā^k B̄ for k = 0 … L−1 by repeated mat-vec (K1): O(N² L). The reference kernel.
// Entries after Ā^k B̄ has decayed below the smallest normal number are exactly 0.
template <class T>
VecT<T> kernel(const DiscreteSSM<T>& s, std::size_t L);

// Direct causal convolution y_k = Σ_{j≤k} k_j u_{k−j} + D u_k, k < L: O(L²). For tests and the
// timing table; the FFT path is the one to use.
template <class T>
void causal_conv_direct(const T* k, const T* u, T* y, std::size_t L, T D = T(0));

// The smallest M ≥ n of the form 2^a 3^b 5^c 7^d (sizes FFTW transforms fastest).
std::size_t fft_size(std::size_t n);

// How hard FFTW searches for a fast plan: Estimate plans instantly; Measure times candidate
// algorithms once (tens of ms) and pays off when the plan is reused many times.
enum class Planning { Estimate, Measure };

// FFTW's planner is not thread-safe (executing a plan is): every module that makes or destroys
// FFTW plans (FFTConv here, the S4 kernel in stage 6) holds this one mutex while doing so.
std::mutex& fftw_planner_mutex();

// Causal convolution of H channels of length L by FFT (K2), float or double.
// The FFTW plans (a forward and an inverse complex transform of size M = fft_size(2L − 1);
// two real channels share each complex transform, see convolution.cpp) are made once in the
// constructor and reused by every call, from any number of threads (each thread transforms its
// own aligned buffers). Thread-safe for calls.
template <class T>
class FFTConv {
 public:
  explicit FFTConv(std::size_t L, Planning planning = Planning::Estimate);
  ~FFTConv();
  FFTConv(const FFTConv&) = delete;
  FFTConv& operator=(const FFTConv&) = delete;

  std::size_t length() const { return L_; }  // L
  std::size_t fft_length() const { return M_; }  // M
  std::size_t bins() const { return M_ / 2 + 1; }  // rfft bins

  // The kernels' spectra rfft(K̄ row, M) / M (the 1/M of the inverse FFT folded in):
  // complex (H, M/2 + 1) stored as interleaved re, im. Compute once, apply many times.
  struct Spectra {
    Eigen::Index H = 0;
    std::size_t bins = 0;
    std::vector<T> data;  // H · bins · 2
  };
  Spectra transform_kernels(const Signals<T>& K, int threads = 1) const;

  // Y (H, L) = causal convolution of each row of U (H, L) with its kernel, + D_h · U row h when
  // D (size H) is given. The spectra may hold H rows or 1 row shared by all channels.
  void apply(const Spectra& KF, const Signals<T>& U, Signals<T>& Y, int threads = 1,
             const VecT<T>* D = nullptr) const;

  // transform_kernels + apply in one call (the kernels' FFTs are then part of the cost), fused
  // pair by pair so the spectra of all channels are never stored.
  void convolve(const Signals<T>& K, const Signals<T>& U, Signals<T>& Y, int threads = 1,
                const VecT<T>* D = nullptr) const;

 private:
  void check_io(Eigen::Index kernel_rows, const Signals<T>& U, Signals<T>& Y,
                const VecT<T>* D) const;
  std::size_t L_, M_;
  struct Plans;
  std::unique_ptr<Plans> plans_;
};

}  // namespace ssm
