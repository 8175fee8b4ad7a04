// lib/src/fftw_api.hpp — private to the library: FFTW's float and double APIs under one name,
// so that the FFT code of stage 4 (convolution.cpp: complex in-place transforms) and stage 6
// (s4.cpp: the complex-to-real inverse FFT of the kernel, S4) is written once for both types.
// Planning is not thread-safe in FFTW: callers hold ssm::fftw_planner_mutex() around dft/c2r
// and destroy; exec is thread-safe (new-array execute on a shared plan).
#pragma once

#include <fftw3.h>

#include <cstddef>

namespace ssm::detail {

template <class T>
struct Fftw;

template <>
struct Fftw<double> {
  using plan = fftw_plan;
  using complex = fftw_complex;
  static void* malloc(std::size_t n) { return fftw_malloc(n); }
  static void free(void* p) { fftw_free(p); }
  // Complex in place, size n, sign FFTW_FORWARD or FFTW_BACKWARD.
  static plan dft(int n, complex* io, int sign, unsigned f) {
    return fftw_plan_dft_1d(n, io, io, sign, f);
  }
  static void exec(plan p, complex* io) { fftw_execute_dft(p, io, io); }
  // Complex (n/2 + 1 points) to real (n points), unnormalized.
  static plan c2r(int n, complex* in, double* out, unsigned f) {
    return fftw_plan_dft_c2r_1d(n, in, out, f);
  }
  static void exec(plan p, complex* in, double* out) { fftw_execute_dft_c2r(p, in, out); }
  static void destroy(plan p) { fftw_destroy_plan(p); }
};

template <>
struct Fftw<float> {
  using plan = fftwf_plan;
  using complex = fftwf_complex;
  static void* malloc(std::size_t n) { return fftwf_malloc(n); }
  static void free(void* p) { fftwf_free(p); }
  static plan dft(int n, complex* io, int sign, unsigned f) {
    return fftwf_plan_dft_1d(n, io, io, sign, f);
  }
  static void exec(plan p, complex* io) { fftwf_execute_dft(p, io, io); }
  static plan c2r(int n, complex* in, float* out, unsigned f) {
    return fftwf_plan_dft_c2r_1d(n, in, out, f);
  }
  static void exec(plan p, complex* in, float* out) { fftwf_execute_dft_c2r(p, in, out); }
  static void destroy(plan p) { fftwf_destroy_plan(p); }
};

}  // namespace ssm::detail
