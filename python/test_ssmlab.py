"""Tests of the ssmlab Python module (stages 1-4), run by CTest with Debian's /usr/bin/python3.

Every test compares the bindings with an independent truth written here in NumPy/SciPy from
MATH.md's formulas (never with numbers copied from the library's output), checks that float32
in gives float32 out, and that bad input raises ssmlab.Error with the library's message.

Tolerances: the library and NumPy evaluate the same formula in a different order, so they agree
to a few ulps of the result's scale; 1e-12 relative leaves room for O(N) and O(L) sums at the
sizes used here (N <= 8, L <= 512). Float32 paths are compared with the float64 truth at 1e-4
relative (float32 eps = 1.2e-7, times the O(L) growth of the recurrence's rounding).
"""
import os
import tempfile
import unittest

import numpy as np
import scipy.linalg

import ssmlab as ssm


def rel_err(a, b):
    """max |a - b| / max |b|: the error relative to the reference's scale."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


def unroll_np(Ab, Bb, C, D, u, x=None):
    """x_k = Ā x_{k-1} + B̄ u_k, y_k = C x_k + D u_k from x_{-1} = x (stage 3, by hand)."""
    x = np.zeros(len(Bb)) if x is None else np.array(x, dtype=float)
    y = np.empty(len(u))
    for k, uk in enumerate(u):
        x = Ab @ x + Bb * uk
        y[k] = C @ x + D * uk
    return y


class Errors(unittest.TestCase):
    def test_error_is_a_value_error(self):
        self.assertTrue(issubclass(ssm.Error, ValueError))

    def test_model_shapes_are_named(self):
        with self.assertRaisesRegex(ssm.Error, "model: A must be square"):
            ssm.Model(np.zeros((2, 3)), np.zeros(2), np.zeros(2))
        with self.assertRaisesRegex(ssm.Error, "model: B must have N = 2 entries, got 3"):
            ssm.Model(np.eye(2), np.zeros(3), np.zeros(2))
        with self.assertRaisesRegex(ssm.Error, "non-finite"):
            ssm.Model(np.array([[np.nan]]), np.ones(1), np.ones(1))

    def test_discretize_bad_arguments(self):
        m = ssm.damped_oscillator()
        with self.assertRaisesRegex(ssm.Error, r"dt must be finite and > 0, got -1"):
            ssm.discretize(m, -1.0, "zoh")
        with self.assertRaisesRegex(ssm.Error, r"unknown method 'rk4' \(valid: euler, "):
            ssm.discretize(m, 0.1, "rk4")
        with self.assertRaisesRegex(ssm.Error, "method must be a name"):
            ssm.discretize(m, 0.1, 3)
        with self.assertRaisesRegex(ssm.Error, r"alpha|α"):
            ssm.discretize(m, 0.1, "gbt", alpha=1.5)

    def test_array_arguments(self):
        s = ssm.make_ssm(ssm.damped_oscillator(), 0.01, "zoh")
        with self.assertRaisesRegex(ssm.Error, r"u must be 1-D, got shape \(2, 2\)"):
            ssm.unroll(s, np.zeros((2, 2)))
        with self.assertRaisesRegex(ssm.Error, "initial state must have N = 2 entries, got 3"):
            ssm.unroll(s, np.zeros(4), x_start=np.zeros(3))
        with self.assertRaisesRegex(ssm.Error, "must be an array of numbers"):
            ssm.unroll(s, ["a", "b"])
        with self.assertRaisesRegex(ssm.Error, "k must have L = len"):
            ssm.causal_conv_direct(np.zeros(3), np.zeros(4))
        with self.assertRaisesRegex(ssm.Error, r"U must be 1-D \(L,\) or 2-D \(H, L\), got shape \(1, 2, 4\)"):
            ssm.fft_conv(np.zeros(4), np.zeros((1, 2, 4)))
        with self.assertRaisesRegex(ssm.Error, "D must have H = 2 entries, got 3"):
            ssm.fft_conv(np.zeros(4), np.zeros((2, 4)), D=np.zeros(3))
        with self.assertRaisesRegex(ssm.Error, "planning must be 'estimate' or 'measure'"):
            ssm.FFTConv64(8, planning="fast")
        with self.assertRaisesRegex(ssm.Error, r"unknown model 'x' \(valid: oscillator"):
            ssm.example_model("x")
        with self.assertRaisesRegex(ssm.Error, "unknown signal 'saw'"):
            ssm.make_signal("saw", 10, 0.1)

    def test_python_exception_in_callback_propagates(self):
        def u(t):
            raise RuntimeError("boom at t = %g" % t)

        with self.assertRaisesRegex(RuntimeError, "boom"):
            ssm.simulate_ode(ssm.damped_oscillator(), u, 0.1, 5)


class Stage1Continuous(unittest.TestCase):
    def test_model_round_trip(self):
        A = np.array([[-1.0, 2.0], [0.0, -3.0]])
        m = ssm.Model(A, [1.0, 2.0], [3.0, 4.0], 0.5, "mine")
        np.testing.assert_array_equal(m.A, A)
        np.testing.assert_array_equal(m.B, [1, 2])
        np.testing.assert_array_equal(m.C, [3, 4])
        self.assertEqual((m.D, m.N, m.name), (0.5, 2, "mine"))
        np.testing.assert_allclose(sorted(m.eigenvalues().real), [-3, -1], rtol=1e-14)
        self.assertTrue(m.is_stable())

    def test_oscillator_matches_its_equation(self):
        w, z = 3.0, 0.2
        m = ssm.damped_oscillator(w, z)
        np.testing.assert_allclose(m.A, [[0, 1], [-w * w, -2 * z * w]], rtol=1e-15)
        np.testing.assert_allclose(m.B, [0, w * w], rtol=1e-15)

    def test_free_response_is_expm(self):
        # (C1) with u = 0: x(t) = e^{At} x0, by SciPy's expm.
        m = ssm.random_stable(5, seed=7)
        x0 = np.linspace(1, -1, 5)
        tr = ssm.free_response(m, x0, 0.1, 20)
        truth = np.stack([scipy.linalg.expm(m.A * 0.1 * k) @ x0 for k in range(20)], axis=1)
        self.assertLess(rel_err(tr.x, truth), 1e-12)
        np.testing.assert_allclose(tr.t, 0.1 * np.arange(20), rtol=1e-15)

    def test_held_input_exact_vs_ode(self):
        # Two independent truths of stage 1 agree: exact (D5) and the adaptive ODE solve.
        # The ODE's 1e-12 tolerances are local; over 50 steps the error stays below 1e-9.
        m = ssm.random_stable(4, seed=3)
        u = np.sin(np.arange(50) * 0.3)
        a = ssm.simulate_held(m, u, 0.05)
        b = ssm.simulate_ode_held(m, u, 0.05)
        self.assertLess(rel_err(a.x, b.x), 1e-9)
        self.assertLess(rel_err(a.y, m.C @ a.x + m.D * u), 1e-14)

    def test_ode_with_python_input_vs_closed_form(self):
        # x' = -x + 1 from x(0) = 0: x(t) = 1 - e^{-t}. The callable is Python.
        m = ssm.Model([[-1.0]], [1.0], [1.0])
        tr = ssm.simulate_ode(m, lambda t: 1.0, 0.1, 30)
        self.assertLess(rel_err(tr.y, 1 - np.exp(-tr.t)), 1e-10)


class Stage2Discretize(unittest.TestCase):
    def setUp(self):
        self.m = ssm.random_stable(6, seed=11)
        self.A, self.B, self.dt = self.m.A, self.m.B, 0.03
        self.I = np.eye(6)

    def check(self, method, Ab, Bb, alpha=0.5, tol=1e-12):
        d = ssm.discretize(self.m, self.dt, method, alpha)
        self.assertLess(rel_err(d.Ab, Ab), tol, method)
        self.assertLess(rel_err(d.Bb, Bb), tol, method)
        # The (A, B) overload and the enum give the same.
        d2 = ssm.discretize(self.A, self.B, self.dt, d.method, alpha)
        np.testing.assert_array_equal(d.Ab, d2.Ab)

    def test_forward_euler_D1(self):
        self.check("euler", self.I + self.dt * self.A, self.dt * self.B)

    def test_backward_euler_D2(self):
        inv = np.linalg.inv(self.I - self.dt * self.A)
        self.check("backward-euler", inv, inv @ (self.dt * self.B))

    def test_bilinear_D3(self):
        inv = np.linalg.inv(self.I - self.dt / 2 * self.A)
        self.check("bilinear", inv @ (self.I + self.dt / 2 * self.A), inv @ (self.dt * self.B))

    def test_gbt_D4(self):
        a = 0.3
        inv = np.linalg.inv(self.I - a * self.dt * self.A)
        self.check("gbt", inv @ (self.I + (1 - a) * self.dt * self.A), inv @ (self.dt * self.B), a)

    def test_zoh_D5(self):
        # The augmented-matrix exponential, by SciPy.
        M = np.zeros((7, 7))
        M[:6, :6], M[:6, 6] = self.A, self.B
        E = scipy.linalg.expm(self.dt * M)
        self.check("zoh", E[:6, :6], E[:6, 6])

    def test_mamba_zoh_D6(self):
        self.check("mamba-zoh", scipy.linalg.expm(self.dt * self.A), self.dt * self.B)

    def test_method_names_and_enum(self):
        self.assertEqual(ssm.method_names(),
                         ["euler", "backward-euler", "bilinear", "zoh", "gbt", "mamba-zoh"])
        self.assertEqual(ssm.parse_method("zoh"), ssm.Method.ZOH)
        self.assertEqual(ssm.method_name(ssm.Method.BackwardEuler), "backward-euler")

    def test_forward_euler_threshold_from_eigenvalues(self):
        m = ssm.stiff_model(5, seed=2, stiffness=1000.0)
        lam = np.linalg.eigvals(m.A)
        truth = np.min(-2 * lam.real / np.abs(lam) ** 2)
        self.assertLess(abs(ssm.forward_euler_threshold(m) - truth) / truth, 1e-10)
        # Bisection on rho(Ā) = 1 finds the same Δ (to its 1e-12 relative precision, loosened
        # by the eigenvalue solver's conditioning).
        found = ssm.stability_threshold(m, "euler", 1e-6, 1.0)
        self.assertLess(abs(found - truth) / truth, 1e-8)

    def test_convergence_orders(self):
        # Bilinear is second order on a free response (MATH.md, D3): halving Δ divides the
        # error by about 4. fit_order over a sweep says 2 within 0.15.
        m = ssm.damped_oscillator()
        pts = [ssm.free_response_error(m, np.array([1.0, 0.0]), 2.0, dt, "bilinear")
               for dt in (0.02, 0.01, 0.005, 0.0025)]
        self.assertLess(abs(ssm.fit_order(pts) - 2.0), 0.15)
        self.assertEqual(ssm.free_response_order("euler"), 1)


class Stage3Recurrence(unittest.TestCase):
    def setUp(self):
        self.m = ssm.random_stable(5, seed=5)
        self.s = ssm.make_ssm(self.m, 0.05, "bilinear")
        self.u = np.random.default_rng(1).standard_normal(300)

    def test_unroll_vs_numpy_loop(self):
        s = self.s
        truth = unroll_np(s.Ab, s.Bb, s.C, s.D, self.u)
        self.assertLess(rel_err(ssm.unroll(s, self.u), truth), 1e-12)

    def test_states_and_start(self):
        x0 = np.arange(5.0)
        y, X = ssm.unroll(self.s, self.u[:10], x_start=x0, return_states=True)
        self.assertEqual(X.shape, (5, 10))
        x1 = self.s.Ab @ x0 + self.s.Bb * self.u[0]
        self.assertLess(rel_err(X[:, 0], x1), 1e-14)
        self.assertLess(rel_err(y, unroll_np(self.s.Ab, self.s.Bb, self.s.C, self.s.D,
                                             self.u[:10], x0)), 1e-12)

    def test_make_ssm_from_discretized(self):
        d = ssm.discretize(self.m, 0.05, "bilinear")
        s = ssm.make_ssm(d, self.m.C, self.m.D)
        np.testing.assert_array_equal(s.Ab, self.s.Ab)

    def test_stepper_matches_unroll(self):
        st = ssm.Stepper(self.s)
        y = np.array([st.step(v) for v in self.u[:50]])
        self.assertLess(rel_err(y, ssm.unroll(self.s, self.u[:50])), 1e-14)
        st.reset()
        self.assertEqual(np.max(np.abs(st.state)), 0.0)

    def test_float32_path(self):
        sf = ssm.to_float(self.s)
        self.assertEqual(sf.Ab.dtype, np.float32)
        y = ssm.unroll(sf, self.u)
        self.assertEqual(y.dtype, np.float32)
        self.assertLess(rel_err(y, ssm.unroll(self.s, self.u)), 1e-4)
        st = ssm.StepperFloat(sf)
        self.assertIsInstance(st.step(1.0), float)

    def test_channels(self):
        U = np.random.default_rng(2).standard_normal((3, 64))
        s2 = ssm.make_ssm(self.m, 0.1, "zoh")
        Y = ssm.unroll_channels([self.s, s2, self.s], U, threads=2)
        self.assertEqual(Y.shape, (3, 64))
        self.assertLess(rel_err(Y[1], ssm.unroll(s2, U[1])), 1e-14)
        self.assertEqual(ssm.unroll_channels([self.s], U[0]).shape, (64,))
        with self.assertRaisesRegex(ssm.Error, "need 1 or H = 3 channels, got 2"):
            ssm.unroll_channels([self.s, s2], U)


class Stage4Convolution(unittest.TestCase):
    def setUp(self):
        self.s = ssm.make_ssm(ssm.random_stable(6, seed=9), 0.05, "zoh")
        rng = np.random.default_rng(4)
        self.L = 500
        self.u = rng.standard_normal(self.L)

    def test_kernel_is_powers_K1(self):
        s = self.s
        truth = [s.C @ np.linalg.matrix_power(s.Ab, k) @ s.Bb for k in range(40)]
        self.assertLess(rel_err(ssm.kernel(s, 40), truth), 1e-12)
        self.assertEqual(ssm.kernel(ssm.to_float(s), 40).dtype, np.float32)

    def test_convolutions_vs_numpy(self):
        # The truth: NumPy's direct linear convolution, first L samples (K1).
        K = ssm.kernel(self.s, self.L)
        truth = np.convolve(K, self.u)[: self.L] + self.s.D * self.u
        self.assertLess(rel_err(ssm.causal_conv_direct(K, self.u, self.s.D), truth), 1e-12)
        self.assertLess(rel_err(ssm.fft_conv(K, self.u, D=self.s.D), truth), 1e-12)
        # ... and the recurrence (stage 3) gives the same output.
        self.assertLess(rel_err(ssm.unroll(self.s, self.u), truth), 1e-12)

    def test_float32_convolution(self):
        K = ssm.kernel(self.s, self.L)
        truth = np.convolve(K, self.u)[: self.L]
        y = ssm.fft_conv(K.astype(np.float32), self.u.astype(np.float32))
        self.assertEqual(y.dtype, np.float32)
        self.assertLess(rel_err(y, truth), 1e-4)
        y = ssm.causal_conv_direct(K, self.u.astype(np.float32))
        self.assertEqual(y.dtype, np.float32)
        self.assertLess(rel_err(y, truth), 1e-4)

    def test_channels_and_plan_reuse(self):
        rng = np.random.default_rng(5)
        H, L = 3, 64
        K, U, D = rng.standard_normal((H, L)), rng.standard_normal((H, L)), np.array([0.5, 0, -1])
        truth = np.stack([np.convolve(K[h], U[h])[:L] + D[h] * U[h] for h in range(H)])
        c = ssm.FFTConv64(L)
        self.assertGreaterEqual(c.fft_length, 2 * L - 1)
        self.assertEqual(c.bins, c.fft_length // 2 + 1)
        self.assertLess(rel_err(c.convolve(K, U, D=D), truth), 1e-12)
        spectra = c.transform_kernels(K)
        self.assertEqual((spectra.H, spectra.bins), (H, c.bins))
        self.assertLess(rel_err(c.apply(spectra, U, D=D), truth), 1e-12)
        # One kernel shared by every channel, D as a number.
        shared = np.stack([np.convolve(K[0], U[h])[:L] + 2 * U[h] for h in range(H)])
        self.assertLess(rel_err(ssm.fft_conv(K[0], U, D=2.0), shared), 1e-12)
        c32 = ssm.FFTConv32(L)
        self.assertEqual(c32.convolve(K, U).dtype, np.float32)

    def test_fft_size(self):
        for n in (1, 7, 11, 13, 999, 1025):
            M = ssm.fft_size(n)
            self.assertGreaterEqual(M, n)
            r = M
            for p in (2, 3, 5, 7):
                while r % p == 0:
                    r //= p
            self.assertEqual(r, 1, M)


class Signals(unittest.TestCase):
    def test_generators(self):
        sig = ssm.make_signal("sine:f=2,amp=0.5", 100, 0.01)
        t = 0.01 * np.arange(100)
        self.assertLess(np.max(np.abs(sig.samples - 0.5 * np.sin(2 * np.pi * 2 * t))), 1e-15)
        self.assertFalse(sig.held)
        self.assertAlmostEqual(sig.at(0.0125), 0.5 * np.sin(2 * np.pi * 2 * 0.0125), places=15)
        self.assertEqual(sig.at(np.zeros((2, 3))).shape, (2, 3))
        self.assertIn("noise", ssm.signal_generators())
        a, b = ssm.make_signal("noise", 50, 0.1, seed=3), ssm.make_signal("noise", 50, 0.1, seed=3)
        np.testing.assert_array_equal(a.samples, b.samples)

    def test_csv(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "x.csv")
            with open(p, "w") as f:
                f.write("a,b\n1,2\n3,4\n")
            self.assertEqual(ssm.read_csv_column(p, "b"), [2.0, 4.0])
            sig = ssm.make_signal(p + ":a", 0, 0.5)
            np.testing.assert_array_equal(sig.samples, [1.0, 3.0])
            self.assertTrue(sig.held)
            with open(p, "w") as f:
                f.write("1\nx1\n")
            with self.assertRaisesRegex(ssm.Error, "line 2"):
                ssm.read_csv_column(p)


if __name__ == "__main__":
    unittest.main()
