// python/ssmlab_py.cpp — the ssmlab Python module: the library's stages for notebooks and
// scripts, NumPy arrays in and out (conventions in bindings.hpp).
//
//   import ssmlab as ssm
//   m = ssm.damped_oscillator()
//   s = ssm.make_ssm(m, dt=0.01, method="zoh")
//   y = ssm.unroll(s, u)                      # stage 3: the recurrence
//   y2 = ssm.fft_conv(ssm.kernel(s, len(u)), u, D=s.D)   # stage 4: the same by FFT
//   C = ssm.hippo.online(u, 0.01, ssm.hippo.Spec("legs", N=32))  # stage 5: HiPPO coefficients
//   K = ssm.s4.dplr_kernel(m6, ssm.s4.random_C(1, 32)[0], 0.01, 1024)  # stage 6: S4 kernel
//   y = ssm.mamba.selective_scan(**ssm.mamba.random_problem(D=64, L=1024))  # stage 7: the scan
#include "bindings.hpp"

#ifndef SSMLAB_VERSION
#define SSMLAB_VERSION "unknown"
#endif

// Compiled as ssmlab._core; python/ssmlab/__init__.py re-exports it as the package ssmlab.
PYBIND11_MODULE(_core, m) {
  namespace py = pybind11;
  m.doc() =
      "ssmlab: from a continuous state space model to Mamba, stage by stage.\n"
      "Stage 1 Model, simulate_*; stage 2 discretize; stage 3 make_ssm, unroll, Stepper;\n"
      "stage 4 kernel, causal_conv_direct, fft_conv, FFTConv64/FFTConv32; stage 5 the submodule\n"
      "hippo (legs, Online, online, reconstruct, project, …); stage 6 the submodule s4 "
      "(nplr_legs,\n"
      "Dplr, dplr_kernel, CauchyKernel64/32, s4d_init, s4d_kernels, Layer64/32); stage 7 the\n"
      "submodule mamba (selective_scan_reference, selective_scan, selective_scan_parallel,\n"
      "selective_state_update, combine, Model64/32); stage 8a the submodule grad (backward\n"
      "passes: selective_scan_backward(_reference), conv_backward, s4d_kernels_backward,\n"
      "s4d_layer_backward); stage 8b the submodule train (make_example, adamw_step,\n"
      "clip_grad_norm, learning_rate, Trainer/Trainer64); signals make_signal.\n"
      "Invalid arguments raise ssmlab.Error (a ValueError) with the library's message.";
  m.attr("__version__") = SSMLAB_VERSION;

  // ssm::Error → ssmlab.Error(ValueError): `except ValueError` catches it too.
  auto& error = py::register_exception<ssm::Error>(m, "Error", PyExc_ValueError);
  error.attr("__doc__") =
      "An invalid argument, with the library's one-line message naming the argument, its value\n"
      "and what was expected. A subclass of ValueError.";

  ssmpy::bind_signal(m);
  ssmpy::bind_continuous(m);
  ssmpy::bind_discretize(m);
  ssmpy::bind_recurrent(m);
  ssmpy::bind_convolution(m);
  ssmpy::bind_hippo(m);
  ssmpy::bind_s4(m);
  ssmpy::bind_mamba(m);
  ssmpy::bind_ssd(m);
  ssmpy::bind_grad(m);
  ssmpy::bind_train(m);
}
