"""Tests of the notebooks' checks (labkit): that each exercise's check passes the solved
notebook's own code, reports an empty exercise as "not attempted yet", reports a crash without
crashing, and explains each known mistake with its hint. Run by CTest with /usr/bin/python3.
"""
import contextlib
import io
import json
import os
import unittest

import numpy as np
import scipy.linalg

import labkit
from labkit import FAIL, PASS, TODO, lab01, lab02, lab03, lab04, lab05, lab06, lab07, lab08, lab09, lab10

HERE = os.path.dirname(os.path.abspath(__file__))


def solutions(notebook):
    """The functions defined by the solved notebook's exercise cells."""
    with open(os.path.join(HERE, notebook), encoding="utf-8") as f:
        nb = json.load(f)
    # What the notebooks' first cell imports (the solutions may call the library).
    ssm = labkit.ssmlab
    ns = {"np": np, "scipy": scipy, "ssm": ssm, "hippo": ssm.hippo, "s4": ssm.s4, "mamba": ssm.mamba,
          "ssd": ssm.ssd, "train": ssm.train}
    for c in nb["cells"]:
        if "exercise" in c["metadata"].get("tags", []):
            exec("".join(c["source"]), ns)
    return ns


def todo(*args):
    raise NotImplementedError("exercise")


def crash(*args):
    return np.linalg.solve(np.zeros((2, 3)), np.zeros(2))


class Base(unittest.TestCase):
    def setUp(self):
        labkit.STRICT = False  # report, do not raise (as in a student's notebook)

    def assertVerdict(self, fn, student, status, *fragments):
        with contextlib.redirect_stdout(io.StringIO()):  # the verdict is printed too
            r = fn(student)
        self.assertEqual(r.status, status, r.text)
        for f in fragments:
            self.assertIn(f, r.text)
        return r

    def assertCommonCases(self, fn):
        self.assertVerdict(fn, todo, TODO, labkit.NOT_ATTEMPTED)
        self.assertVerdict(fn, crash, FAIL, "your function raised LinAlgError")


class Lab01(Base):
    sol = solutions("01-continuous.ipynb")

    def test_oscillator(self):
        f, good = lab01.check_oscillator, self.sol["oscillator"]
        self.assertVerdict(f, good, PASS)
        self.assertCommonCases(f)

        def no_w2(w, z):
            A, B, C = good(w, z)
            return A, np.array([0.0, 1.0]), C

        def transposed(w, z):
            A, B, C = good(w, z)
            return A.T, B, C

        def two_outputs(w, z):
            return good(w, z)[:2]

        self.assertVerdict(f, no_w2, FAIL, "Hint: B = [0, 1]")
        self.assertVerdict(f, transposed, FAIL, "A is transposed")
        self.assertVerdict(f, two_outputs, FAIL, "expected 3 outputs (A, B, C), got 2")

    def test_free_response(self):
        f = lab01.check_free_response
        self.assertVerdict(f, self.sol["free_response_np"], PASS)
        self.assertCommonCases(f)

        def no_t(A, x0, t):
            lam, V = np.linalg.eig(A)
            return (V @ np.diag(np.exp(lam)) @ np.linalg.inv(V) @ x0).real

        def complex_result(A, x0, t):
            lam, V = np.linalg.eig(A)
            return V @ np.diag(np.exp(lam * t)) @ np.linalg.inv(V) @ x0

        self.assertVerdict(f, no_t, FAIL, "the exponent is A·t")
        self.assertVerdict(f, lambda A, x0, t: np.exp(A * t) @ x0, FAIL, "each entry")
        self.assertVerdict(f, complex_result, FAIL, "right but complex")

    def test_dc_gain(self):
        f = lab01.check_dc_gain
        self.assertVerdict(f, self.sol["dc_gain"], PASS)
        self.assertCommonCases(f)
        self.assertVerdict(f, lambda A, B, C, D: -C @ np.linalg.solve(A, B), FAIL,
                           "skip term is missing")
        self.assertVerdict(f, lambda A, B, C, D: D + C @ np.linalg.solve(A, B), FAIL,
                           "check the sign")


class Lab02(Base):
    sol = solutions("02-discretization.ipynb")

    def test_forward_euler(self):
        f = lab02.check_forward_euler
        self.assertVerdict(f, self.sol["forward_euler"], PASS)
        self.assertCommonCases(f)
        self.assertVerdict(f, lambda A, B, dt: (dt * A, dt * B), FAIL, "the identity carries")
        self.assertVerdict(f, lambda A, B, dt: (np.eye(len(A)) + dt * A, B), FAIL,
                           "during a time Δ")

    def test_bilinear(self):
        f = lab02.check_bilinear
        self.assertVerdict(f, self.sol["bilinear"], PASS)
        self.assertCommonCases(f)

        def full_step(A, B, dt):
            M = np.eye(len(A)) - dt * A
            return np.linalg.solve(M, np.eye(len(A)) + dt * A), np.linalg.solve(M, dt * B)

        def b_no_inverse(A, B, dt):
            return self.sol["bilinear"](A, B, dt)[0], dt * B

        self.assertVerdict(f, full_step, FAIL, "use Δ/2 in both factors")
        self.assertVerdict(f, b_no_inverse, FAIL, "B̄ also goes through the inverse")

    def test_zoh(self):
        f = lab02.check_zoh
        self.assertVerdict(f, self.sol["zoh"], PASS)
        self.assertCommonCases(f)
        self.assertVerdict(f, lambda A, B, dt: (scipy.linalg.expm(dt * A), dt * B), FAIL,
                           "Mamba's simplification (D6)")

        def no_dt(A, B, dt):
            return self.sol["zoh"](A, B, 1.0)

        self.assertVerdict(f, no_dt, FAIL, "scale the augmented matrix by Δ")

    def test_euler_threshold(self):
        f = lab02.check_euler_threshold
        self.assertVerdict(f, self.sol["euler_threshold"], PASS)
        self.assertCommonCases(f)
        lam = np.linalg.eigvals
        self.assertVerdict(f, lambda A: np.max(-2 * lam(A).real / np.abs(lam(A)) ** 2), FAIL,
                           "not the largest")
        self.assertVerdict(f, lambda A: np.min(2 / np.abs(lam(A))), FAIL, "only for real λ")


class Lab03(Base):
    sol = solutions("03-recurrence-vs-convolution.ipynb")

    def test_unroll(self):
        f = lab03.check_unroll
        self.assertVerdict(f, self.sol["unroll_np"], PASS)
        self.assertCommonCases(f)

        def read_first(Ab, Bb, C, D, u):
            x, y = np.zeros(len(Bb)), np.empty(len(u))
            for k, uk in enumerate(u):
                y[k] = C @ x + D * uk
                x = Ab @ x + Bb * uk
            return y

        self.assertVerdict(f, read_first, FAIL, "before updating the state")
        self.assertVerdict(f, lambda Ab, Bb, C, D, u: self.sol["unroll_np"](Ab, Bb, C, 0.0, u),
                           FAIL, "skip term D·u_k is missing")

    def test_kernel(self):
        f = lab03.check_kernel
        good = self.sol["kernel_np"]
        self.assertVerdict(f, good, PASS)
        self.assertCommonCases(f)
        self.assertVerdict(f, lambda Ab, Bb, C, L: good(Ab, Ab @ Bb, C, L), FAIL,
                           "shifted by one step", "K̄_0 = C B̄")

        def drifts(Ab, Bb, C, L):  # right for k < 3, then a wrong factor creeps in
            K = good(Ab, Bb, C, L)
            K[3:] *= 1.01
            return K

        self.assertVerdict(f, drifts, FAIL, "matches for k < 3, then diverges")
        self.assertVerdict(f, lambda Ab, Bb, C, L: good(Ab, Bb, C, L - 1), FAIL,
                           "has shape (63,), expected (64,)")

    def test_fft_conv(self):
        f = lab03.check_fft_conv
        self.assertVerdict(f, self.sol["fft_conv_np"], PASS)
        self.assertCommonCases(f)
        circular = lambda K, u: np.fft.irfft(np.fft.rfft(u) * np.fft.rfft(K), len(u))  # noqa
        self.assertVerdict(f, circular, FAIL, "circular convolution", "M ≥ 2L − 1")

        def full_length(K, u):
            M = 2 * len(u) - 1
            return np.fft.irfft(np.fft.rfft(u, M) * np.fft.rfft(K, M), M)

        self.assertVerdict(f, full_length, FAIL, "keep the first L = 300")

        def complex_fft(K, u):
            M = 2 * len(u)
            return np.fft.ifft(np.fft.fft(u, M) * np.fft.fft(K, M))[: len(u)]

        self.assertVerdict(f, complex_fft, FAIL, "right but complex")


class Lab04(Base):
    sol = solutions("04-hippo.ipynb")

    def test_legs_matrices(self):
        f, good = lab04.check_legs_matrices, self.sol["legs_matrices"]
        self.assertVerdict(f, good, PASS)
        self.assertCommonCases(f)

        def unnormalized(N):
            n = np.arange(N)
            A = -np.tril(np.tile(2 * n + 1.0, (N, 1)), -1) - np.diag(n + 1.0)
            return A, np.ones(N)

        def one_based(N):
            n = np.arange(1, N + 1)
            b = np.sqrt(2 * n + 1.0)
            return -np.tril(np.outer(b, b), -1) - np.diag(n + 1.0), b

        def inclusive(N):
            b = np.sqrt(2 * np.arange(N) + 1.0)
            return -np.tril(np.outer(b, b)), b

        def with_(fa=lambda A: A, fb=lambda B: B):
            return lambda N: (fa(good(N)[0]), fb(good(N)[1]))

        self.assertVerdict(f, with_(fa=lambda A: -A), FAIL, "HiPPO paper's sign", "A_00 = −1")
        self.assertVerdict(f, with_(lambda A: -A, lambda B: -B), FAIL, "both have the wrong sign")
        self.assertVerdict(f, with_(fa=lambda A: A.T), FAIL, "A is transposed")
        self.assertVerdict(f, unnormalized, FAIL, "unnormalized Legendre")
        self.assertVerdict(f, with_(fb=np.ones_like), FAIL, "B_n = √(2n+1)")
        self.assertVerdict(f, inclusive, FAIL, "not −(2n+1)", "strict lower triangle")
        self.assertVerdict(f, with_(fa=lambda A: A + np.eye(len(A))), FAIL, "off by one on the diagonal")
        self.assertVerdict(f, one_based, FAIL, "run from 0 to N − 1")
        self.assertVerdict(f, lambda N: good(N)[0], FAIL, "expected 2 outputs")
        self.assertVerdict(f, with_(fb=lambda B: np.r_[B[:3], 2 * B[3:]]), FAIL,
                           "B matches for n < 3, then diverges")

    @staticmethod
    def gbt(A, B, c, u, h, alpha=0.5):
        """One GBT step of relative size h (h = 1/k for LegS), written here for the mistakes."""
        I = np.eye(len(B))
        return np.linalg.solve(I - alpha * h * A, (I + (1 - alpha) * h * A) @ c + h * B * u)

    def test_legs_step(self):
        f, g = lab04.check_legs_step, self.gbt
        self.assertVerdict(f, self.sol["legs_step"], PASS)
        self.assertCommonCases(f)
        cases = [
            (lambda A, B, c, u, k, dt: g(A, B, c, u, dt), "you stepped by Δ"),
            (lambda A, B, c, u, k, dt: g(A, B, c, u, dt / k), "you used Δ/k"),
            (lambda A, B, c, u, k, dt: g(A, B, c, u, 1 / (k - 1)), "not 1/(k−1)"),
            (lambda A, B, c, u, k, dt: g(A, B, c, u, 1 / (k + 1)), "not 1/(k+1)"),
            (lambda A, B, c, u, k, dt: g(-A, B, c, u, 1 / k), "HiPPO paper's"),
            (lambda A, B, c, u, k, dt: g(A, B, c, u, 1 / k, 0.0), "forward Euler"),
            (lambda A, B, c, u, k, dt: g(A, B, c, u, 1 / k, 1.0), "backward Euler"),
            (lambda A, B, c, u, k, dt: g(A, B, c, u * k, 1 / k), "divided by k like"),
            (lambda A, B, c, u, k, dt: g(A, B * 0, c, u, 1 / k) + B * u / k,
             "B u/k goes through the inverse too"),
        ]
        for wrong, fragment in cases:
            self.assertVerdict(f, wrong, FAIL, fragment)

    def test_reconstruct(self):
        f = lab04.check_reconstruct
        self.assertVerdict(f, self.sol["reconstruct_np"], PASS)
        self.assertCommonCases(f)
        legval = np.polynomial.legendre.legval

        def variant(x_of, scale):
            return lambda c, t, s: legval(x_of(s, t), c * scale(np.arange(len(c))))

        root = lambda n: np.sqrt(2 * n + 1)  # noqa: E731
        cases = [
            (variant(lambda s, t: 2 * s / t - 1, lambda n: 1.0), "√(2n+1) of the orthonormal basis is missing"),
            (variant(lambda s, t: 2 * s / t - 1, lambda n: 1 / root(n)), "do not divide"),
            (variant(lambda s, t: s / t, root), "not s/t"),
            (variant(lambda s, t: 1 - 2 * s / t, root), "time runs the wrong way"),
            (variant(lambda s, t: 2 * s - 1, root), "divide by t"),
        ]
        for wrong, fragment in cases:
            self.assertVerdict(f, wrong, FAIL, fragment)
        self.assertVerdict(f, lambda c, t, s: self.sol["reconstruct_np"](c, t, s)[:-1], FAIL,
                           "has shape (120,), expected (121,)")

    def test_legs_step_fast(self):
        f, good, g = lab04.check_legs_step_fast, self.sol["legs_step_fast"], self.gbt
        self.assertVerdict(f, good, PASS)
        self.assertCommonCases(f)

        def inclusive(b, c, u, k):  # S_n includes j = n: add before use
            y, so, sn = np.empty_like(c), 0.0, 0.0
            for n in range(len(c)):
                d = n + 1.0
                so += b[n] * c[n]
                # y_n appears in its own sum: solve (k + d/2 + b_n²/2) y_n = … for it
                y[n] = ((k - d / 2) * c[n] + b[n] * (u - so / 2 - sn / 2)) / (k + d / 2 + b[n] ** 2 / 2)
                sn += b[n] * y[n]
            return y

        def old_sums(b, c, u, k):
            y, s = np.empty_like(c), 0.0
            for n in range(len(c)):
                d = n + 1.0
                y[n] = ((k - d / 2) * c[n] + b[n] * (u - s)) / (k + d / 2)
                s += b[n] * c[n]
            return y

        def cumsum_old(b, c, u, k):  # the old state's sum by np.cumsum: inclusive
            S = np.cumsum(b * c)
            y, sn = np.empty_like(c), 0.0
            for n in range(len(c)):
                d = n + 1.0
                y[n] = ((k - d / 2) * c[n] + b[n] * (u - S[n] / 2 - sn / 2)) / (k + d / 2)
                sn += b[n] * y[n]
            return y

        def dense(b, c, u, k, sign=1.0, kk=None, alpha=0.5):
            n = np.arange(len(b))
            A = sign * (-np.tril(np.outer(b, b), -1) - np.diag(n + 1.0))
            return g(A, b, c, u, 1 / (kk or k), alpha)

        cases = [
            (inclusive, "prefix sums are inclusive"),
            (cumsum_old, "np.cumsum includes row n"),
            (old_sums, "prefix sum of the new coefficients"),
            (lambda b, c, u, k: dense(b, c, u, k, kk=k - 1), "off by one in k"),
            (lambda b, c, u, k: dense(b, c, u, k, kk=k + 1), "off by one in k"),
            (lambda b, c, u, k: dense(b, c, u, k, sign=-1.0), "signs of A are flipped"),
            (lambda b, c, u, k: dense(b, c, u, k, alpha=0.0), "forward Euler"),
            (lambda b, c, u, k: good(b[:-1], c[:-1], u, k), "has 47 entries, expected N = 48"),
        ]
        for wrong, fragment in cases:
            self.assertVerdict(f, wrong, FAIL, fragment)


class Lab05(Base):
    sol = solutions("05-s4-kernel.ipynb")

    def test_nplr(self):
        f, good = lab05.check_nplr, self.sol["nplr_legs_np"]
        self.assertVerdict(f, good, PASS)
        self.assertCommonCases(f)
        hippo = labkit.ssmlab.hippo

        def variant(P_of=lambda N: np.sqrt(np.arange(N) + 0.5), sign=1.0, conj=True, of_A=False):
            def fn(N):
                A, B = hippo.legs(N)
                P = P_of(N)
                lam, V = np.linalg.eig(A if of_A else A + sign * np.outer(P, P))
                Vh = V.conj().T if conj else V.T
                return lam, Vh @ P, Vh @ B, V
            return fn

        self.assertVerdict(f, variant(of_A=True), FAIL, "those of A itself", "cond(V)")
        self.assertVerdict(f, variant(P_of=lambda N: np.sqrt(2 * np.arange(N) + 1.0)), FAIL,
                           "P_n = √(n + ½)")
        self.assertVerdict(f, variant(sign=-1.0), FAIL, "Re λ = −½")
        self.assertVerdict(f, variant(conj=False), FAIL, "conjugate transpose")

        def half(N):
            lam, Pt, Bt, V = good(N)
            k = lam.imag > 0
            return lam[k], Pt[k], Bt[k], V[:, k]

        self.assertVerdict(f, half, FAIL, "return all N = 16")
        self.assertVerdict(f, lambda N: good(N)[:3], FAIL, "must return four arrays")

    def test_cauchy(self):
        f, good = lab05.check_cauchy, self.sol["cauchy"]
        self.assertVerdict(f, good, PASS)
        self.assertCommonCases(f)

        def terms(v, lam, g, w=lambda v: np.conj(v), pole=lambda l: np.conj(l)):
            G = np.asarray(g)[:, None]
            return v / (G - lam) + w(v) / (G - pole(lam))

        half = lambda v, lam, g: (v / (np.asarray(g)[:, None] - lam)).sum(1)  # noqa: E731
        cases = [
            (half, "conjugate half is missing"),
            (lambda v, lam, g: 2 * half(v, lam, g).real, "2·Re is not the pair sum"),
            (lambda v, lam, g: 2 * half(v, lam, g), "doubling the kept half"),
            (lambda v, lam, g: terms(v, lam, g, w=lambda v: v).sum(1), "conjugate the weight too"),
            (lambda v, lam, g: terms(v, lam, g, pole=lambda l: l).sum(1), "partner's pole"),
            (lambda v, lam, g: -good(v, lam, g), "λ_n − g"),
            (lambda v, lam, g: terms(v, lam, g).sum(0), "one entry per mode"),
            (lambda v, lam, g: terms(v, lam, g), "table of terms"),
        ]
        for wrong, fragment in cases:
            self.assertVerdict(f, wrong, FAIL, fragment)

    def test_khat(self):
        f, good = lab05.check_khat, self.sol["khat"]
        self.assertVerdict(f, good, PASS)
        self.assertCommonCases(f)
        cauchy = self.sol["cauchy"]

        def variant(zsign=-1, factor=2.0, wsign=-1.0, one=1.0, gscale=None, swap=False,
                    k11=lambda P: np.conj(P) * P, lowrank=True):
            def fn(Cp, Pt, Bt, lam, dt, L):
                z = np.exp(zsign * 2j * np.pi * np.arange(L) / L)
                g = (2 / dt if gscale is None else gscale) * (1 - z) / (1 + z)
                a, b = (np.conj(Pt), Pt) if swap else (Pt, np.conj(Pt))
                k00, k01 = cauchy(Cp * Bt, lam, g), cauchy(Cp * a, lam, g)
                k10, k11_ = cauchy(b * Bt, lam, g), cauchy(k11(Pt), lam, g)
                inner = k00 + wsign * k01 * k10 / (one + k11_) if lowrank else k00
                return factor / (1 + z) * inner
            return fn

        def no_factor(Cp, Pt, Bt, lam, dt, L):
            z = np.exp(-2j * np.pi * np.arange(L) / L)
            return variant()(Cp, Pt, Bt, lam, dt, L) * (1 + z) / 2

        cases = [
            (variant(zsign=+1), "z_j = e^{−2πij/L} (minus)"),
            (no_factor, "2/(1 + z) is missing"),
            (variant(factor=1.0), "not 1/(1 + z)"),
            (variant(wsign=+1.0), "wrong sign in Woodbury"),
            (variant(one=0.0), "denominator is 1 + k₁₁"),
            (variant(swap=True), "swapped"),
            (variant(k11=lambda P: P * P), "conjugate one factor"),
            (variant(lowrank=False), "low-rank correction"),
            (variant(gscale=1.0), "the 2/Δ is missing"),
        ]
        for wrong, fragment in cases:
            self.assertVerdict(f, wrong, FAIL, fragment)

    def test_c_prime(self):
        f, good = lab05.check_c_prime, self.sol["c_prime_np"]
        self.assertVerdict(f, good, PASS)
        self.assertCommonCases(f)

        def variant(power=0, second=np.conj, sign=-1.0, outer=lambda P: np.conj(P), zoh=False,
                    combine=lambda I, AL: I - AL, half=False):
            def fn(C, lam, Pt, dt, L):
                Nh = len(lam)
                lf = lam if half else np.r_[lam, np.conj(lam)]
                Pf = Pt if half else np.r_[Pt, second(Pt)]
                Cf = C if half else np.r_[C, np.conj(C)]
                At = np.diag(lf) + sign * np.outer(Pf, outer(Pf))
                I = np.eye(len(lf))
                Ab = (scipy.linalg.expm(dt * At) if zoh else
                      np.linalg.solve(I - dt / 2 * At, I + dt / 2 * At))
                return (Cf @ combine(I, np.linalg.matrix_power(Ab, L + power)))[:Nh]
            return fn

        cases = [
            (lambda C, lam, Pt, dt, L: C, "C̄' is C̃ itself"),
            (variant(power=-1), "not Ā^(L−1)"),
            (variant(power=+1), "not Ā^(L+1)"),
            (variant(combine=lambda I, AL: AL), "this is C̃ Ā^L"),
            (variant(combine=lambda I, AL: I + AL), "(minus)"),
            (variant(half=True), "kept half alone"),
            (variant(second=lambda P: P), "not P̃: the full P"),
            (variant(sign=+1.0), "Ã = Λ − P̃P̃* (minus)"),
            (variant(outer=lambda P: P), "outer product with the conjugate"),
            (variant(zoh=True), "ZOH's e^{ΔÃ}"),
        ]
        for wrong, fragment in cases:
            self.assertVerdict(f, wrong, FAIL, fragment)

        def full_length(C, lam, Pt, dt, L):
            cp = good(C, lam, Pt, dt, L)
            return np.r_[cp, np.conj(cp)]

        self.assertVerdict(f, full_length, FAIL, "keep the first Nh = 8")

    def test_kernel(self):
        f, good = lab05.check_kernel, self.sol["kernel_np"]
        self.assertVerdict(f, good, PASS)
        self.assertCommonCases(f)
        khat, c_prime = self.sol["khat"], self.sol["c_prime_np"]

        def spectrum(C, lam, Pt, Bt, dt, L, use_cp=True):
            return khat(c_prime(C, lam, Pt, dt, L) if use_cp else C, Pt, Bt, lam, dt, L)

        cases = [
            (lambda *a: np.fft.irfft(spectrum(*a, use_cp=False)[: a[-1] // 2 + 1], n=a[-1]),
             "you used C̃ where C̄'"),
            (lambda *a: np.fft.fft(spectrum(*a)).real / a[-1], "runs backwards in time"),
            (lambda *a: np.fft.ifft(spectrum(*a)).real * a[-1], "already divide by L"),
            (lambda *a: np.fft.irfft(spectrum(*a)[: a[-1] // 2 + 1]), "pass n=L"),
            (lambda *a: np.fft.irfft(spectrum(*a)), "takes the half spectrum"),
            (lambda *a: np.fft.ifft(spectrum(*a)), "right but complex"),
        ]
        for wrong, fragment in cases:
            self.assertVerdict(f, wrong, FAIL, fragment)


class Lab06(Base):
    sol = solutions("06-s4d.ipynb")

    def test_inits(self):
        f, good = lab06.check_inits, self.sol["s4d_inits_np"]
        self.assertVerdict(f, good, PASS)
        self.assertCommonCases(f)

        def variant(n0=0, M=None, scale=True, re=-0.5, lin_n0=0, pi=np.pi):
            def fn(N):
                n = np.arange(N // 2)
                M_ = N if M is None else M(N)
                inv = re + 1j * (M_ / np.pi if scale else 1.0) * (M_ / (2 * (n + n0) + 1) - 1)
                return inv, re + 1j * pi * (n + lin_n0)
            return fn

        cases = [
            (variant(n0=1), "S4D-Inv: n runs from 0"),
            (variant(M=lambda N: N // 2), "not Nh"),
            (variant(scale=False), "factor N/π in front is missing"),
            (variant(lin_n0=1), "S4D-Lin: n runs from 0"),
            (variant(pi=1.0), "the π is missing"),
            (variant(re=0.5), "with +½ every mode grows"),
            (variant(re=-1.0), "not −1"),
            (lambda N: good(N)[::-1], "the two are swapped"),
        ]
        for wrong, fragment in cases:
            self.assertVerdict(f, wrong, FAIL, fragment)

        def all_modes(N):
            n = np.arange(N)
            return -0.5 + 1j * (N / np.pi) * (N / (2 * n + 1) - 1), -0.5 + 1j * np.pi * n

        self.assertVerdict(f, all_modes, FAIL, "Nh = N/2 = 8")

    def test_zoh(self):
        f, good = lab06.check_zoh, self.sol["zoh_diag"]
        self.assertVerdict(f, good, PASS)
        self.assertCommonCases(f)
        e = lambda lam, dt: np.exp(dt * lam)  # noqa: E731
        cases = [
            (lambda lam, B, dt: (np.exp(lam), (np.exp(lam) - 1) / lam * B), "you used e^{λ}"),
            (lambda lam, B, dt: (e(lam, dt), (np.exp(lam) - 1) / lam * B), "B̄ needs e^{Δλ} too"),
            (lambda lam, B, dt: (e(lam, dt), dt * B), "Euler's (and Mamba's, D6)"),
            (lambda lam, B, dt: (1 + dt * lam, dt * B), "this is forward Euler"),
            (lambda lam, B, dt: (e(lam, dt), (e(lam, dt) - 1) / (dt * lam) * B), "not by Δλ"),
            (lambda lam, B, dt: (e(lam, dt), dt * (e(lam, dt) - 1) / lam * B), "no extra Δ"),
            (lambda lam, B, dt: (e(lam, dt), (e(lam, dt) - 1) * lam * B), "divide by λ"),
            (self.sol["bilinear_diag"], "this is the bilinear rule"),
        ]
        for wrong, fragment in cases:
            self.assertVerdict(f, wrong, FAIL, fragment)
        self.assertVerdict(f, lambda lam, B, dt: good(lam, B, dt)[0], FAIL, "expected 2 outputs")

    def test_bilinear(self):
        f, good = lab06.check_bilinear, self.sol["bilinear_diag"]
        self.assertVerdict(f, good, PASS)
        self.assertCommonCases(f)
        a = lambda lam, dt: (1 + dt * lam / 2) / (1 - dt * lam / 2)  # noqa: E731
        cases = [
            (lambda lam, B, dt: ((1 + dt * lam) / (1 - dt * lam), dt * B / (1 - dt * lam)), "Δ/2 in both factors"),
            (lambda lam, B, dt: (a(lam, dt), dt * B), "B̄ goes through the inverse too"),
            (lambda lam, B, dt: (a(lam, dt), B / (1 - dt * lam / 2)), "the Δ is missing"),
            (lambda lam, B, dt: (1 / a(lam, dt), dt * B / (1 + dt * lam / 2)), "the factors are swapped"),
            (self.sol["zoh_diag"], "this is ZOH"),
        ]
        for wrong, fragment in cases:
            self.assertVerdict(f, wrong, FAIL, fragment)

    def test_vandermonde(self):
        f, good = lab06.check_vandermonde, self.sol["vandermonde_kernel"]
        self.assertVerdict(f, good, PASS)
        self.assertCommonCases(f)

        def terms(C, Ab, Bb, L, shift=0):
            return (C * Bb) * Ab ** (np.arange(L)[:, None] + shift)

        cases = [
            (lambda C, Ab, Bb, L: terms(C, Ab, Bb, L).sum(1).real, "forgot the 2"),
            (lambda C, Ab, Bb, L: 2 * (terms(C, Ab, Bb, L).sum(1) + terms(np.conj(C), np.conj(Ab), np.conj(Bb), L).sum(1)).real,
             "doubled twice"),
            (lambda C, Ab, Bb, L: 2 * terms(C, Ab, Bb, L, shift=1).sum(1).real, "K̄_0 = 2 Re Σ_n C_n B̄_n"),
            (lambda C, Ab, Bb, L: 2 * (np.vander(Ab, L).T @ (C * Bb)).real, "increasing=True"),
            (lambda C, Ab, Bb, L: 2 * terms(np.conj(C), Ab, Bb, L).sum(1).real, "C is not conjugated"),
            (lambda C, Ab, Bb, L: 2 * np.abs(terms(C, Ab, Bb, L).sum(1)), "2·Re, not 2·|…|"),
            (lambda C, Ab, Bb, L: 2 * terms(C, Ab, Bb, L).sum(1), "right but complex"),
            (lambda C, Ab, Bb, L: 2 * terms(C, Ab, Bb, L).sum(0).real, "one entry per mode"),
            (lambda C, Ab, Bb, L: 2 * terms(C, Ab, Bb, L).real, "table of terms"),
        ]
        for wrong, fragment in cases:
            self.assertVerdict(f, wrong, FAIL, fragment)


def softplus(x):
    return np.logaddexp(0.0, x)


def silu(z):
    return z / (1 + np.exp(-z))


class Lab07(Base):
    sol = solutions("07-selective-scan-and-mamba.ipynb")

    def test_discretize(self):
        f, good = lab07.check_discretize, self.sol["selective_discretize"]
        self.assertVerdict(f, good, PASS)
        self.assertCommonCases(f)

        def variant(dt_of=lambda raw, bias: softplus(raw + bias[:, None]), Ab_of=None, Bb_of=None):
            def fn(raw, bias, A, B):
                dt = dt_of(raw, bias)
                dA = dt[:, :, None] * A[:, None, :]
                Ab = np.exp(dA) if Ab_of is None else Ab_of(dt, A, dA)
                Bb = dt[:, :, None] * B.T[None] if Bb_of is None else Bb_of(dt, A, B, dA)
                return dt, Ab, Bb
            return fn

        full = lambda x, dA: np.broadcast_to(x, dA.shape)  # noqa: E731
        cases = [
            (variant(dt_of=lambda raw, bias: raw + bias[:, None]), "forgot the softplus"),
            (variant(dt_of=lambda raw, bias: softplus(raw)), "the Δ bias is missing"),
            (variant(dt_of=lambda raw, bias: np.exp(raw + bias[:, None])), "not e^x"),
            (variant(Ab_of=lambda dt, A, dA: full(np.exp(A)[:, None, :], dA)), "used e^{A}, not e^{ΔA}"),
            (variant(Ab_of=lambda dt, A, dA: 1 + dA), "forward Euler (D1)"),
            (variant(Ab_of=lambda dt, A, dA: np.exp(-dA)), "A is already negative"),
            (variant(Bb_of=lambda dt, A, B, dA: full(B.T[None], dA)), "B̄ = B without Δ"),
            (variant(Bb_of=lambda dt, A, B, dA: np.expm1(dA) / A[:, None, :] * B.T[None]), "that is exact ZOH"),
        ]
        for wrong, fragment in cases:
            self.assertVerdict(f, wrong, FAIL, fragment)

        def state_axis_middle(raw, bias, A, B):
            dt, Ab, Bb = good(raw, bias, A, B)
            return dt, Ab.transpose(0, 2, 1), Bb.transpose(0, 2, 1)

        def no_time_axis(raw, bias, A, B):
            dt, Ab, Bb = good(raw, bias, A, B)
            return dt, Ab[:, 0], Bb[:, 0]

        self.assertVerdict(f, state_axis_middle, FAIL, "yours is (D, N, L)")
        self.assertVerdict(f, no_time_axis, FAIL, "one entry per channel, step and state")
        self.assertVerdict(f, lambda *a: good(*a)[1:], FAIL, "expected 3 outputs")

    def test_scan(self):
        f, good = lab07.check_scan, self.sol["selective_scan_np"]
        self.assertVerdict(f, good, PASS)
        self.assertCommonCases(f)

        def variant(read_before=False, gate=silu, skip_inside=True, skip=True, softplus_=True,
                    bias=True, Ab_of=None, Bb_of=None):
            def fn(u, raw, b, A, B, C, D, z):
                x = raw + (b[:, None] if bias else 0)
                dt = softplus(x) if softplus_ else x
                h, y = np.zeros((u.shape[0], A.shape[1])), np.empty(u.shape)
                for t in range(u.shape[1]):
                    dA = dt[:, t, None] * A
                    Ab = np.exp(dA) if Ab_of is None else Ab_of(A, dA)
                    Bb = dt[:, t, None] * B[:, t] if Bb_of is None else Bb_of(A, B[:, t], dA)
                    if read_before:
                        y[:, t] = h @ C[:, t]
                    h = Ab * h + Bb * u[:, t, None]
                    if not read_before:
                        y[:, t] = h @ C[:, t]
                Du = D[:, None] * u if skip else 0
                g = 1.0 if gate is None else gate(z)
                return ((y + Du) * g if skip_inside else y * g + Du), h
            return fn

        cases = [
            (variant(read_before=True), "y is read before the state update"),
            (variant(gate=lambda z: z), "not z itself"),
            (variant(gate=lambda z: 1 / (1 + np.exp(-z))), "not the sigmoid"),
            (variant(gate=None), "the gate is missing"),
            (variant(skip=False), "the skip D·u is missing"),
            (variant(skip_inside=False), "the skip goes inside the gate"),
            (variant(Ab_of=lambda A, dA: np.broadcast_to(np.exp(A), dA.shape)), "used e^{A}, not e^{ΔA}"),
            (variant(Bb_of=lambda A, B, dA: np.broadcast_to(B, dA.shape)), "B̄ = B without Δ"),
            (variant(Bb_of=lambda A, B, dA: np.expm1(dA) / A * B), "exact ZOH's B̄"),
            (variant(bias=False), "the Δ bias is missing"),
            (variant(softplus_=False), "h grew without bound"),
        ]
        for wrong, fragment in cases:
            self.assertVerdict(f, wrong, FAIL, fragment)
        self.assertVerdict(f, lambda *a: good(*a)[0], FAIL, "expected 2 outputs")

    def test_combine(self):
        f, good = lab07.check_combine, self.sol["combine"]
        self.assertVerdict(f, good, PASS)
        self.assertCommonCases(f)
        cases = [
            (lambda p, q: (p[0] * q[0], p[0] * q[1] + p[1]), "composed in the wrong order"),
            (lambda p, q: (p[0] * q[0], q[0] * p[1]), "+ b₂ is missing"),
            (lambda p, q: (p[0] * q[0], p[1] + q[1]), "a₂b₁ + b₂, not b₁ + b₂"),
            (lambda p, q: (p[0] * q[0], p[0] * p[1] + q[1]), "not by a₁"),
            (lambda p, q: (p[0] + q[0], q[0] * p[1] + q[1]), "the decays multiply"),
        ]
        for wrong, fragment in cases:
            self.assertVerdict(f, wrong, FAIL, fragment)

    def test_chunked(self):
        f, good = lab07.check_chunked, self.sol["chunked_scan"]
        self.assertVerdict(f, good, PASS)
        self.assertCommonCases(f)

        def variant(carry="scanned", decay=True, local_op=None):
            def fn(a, b, chunk):
                L = len(a)
                starts = list(range(0, L, chunk))
                pa, pb = np.empty_like(a), np.empty_like(b)
                for s in starts:
                    pa[s], pb[s] = a[s], b[s]
                    for t in range(s + 1, min(s + chunk, L)):
                        if local_op is None:
                            pa[t], pb[t] = a[t] * pa[t - 1], a[t] * pb[t - 1] + b[t]
                        else:
                            pa[t], pb[t] = local_op(pa[t - 1], pb[t - 1], a[t], b[t])
                h, h_in = np.empty_like(b), np.zeros(a.shape[1])
                for c, s in enumerate(starts):
                    e = min(s + chunk, L)
                    h_out = pa[e - 1] * h_in + pb[e - 1]
                    use = {"scanned": h_in, "none": 0.0, "out": h_out,
                           "local": pb[s - 1] if s else 0.0}[carry]
                    h[s:e] = (pa[s:e] if decay else 1.0) * use + pb[s:e]
                    h_in = h_out
                return h
            return fn

        cases = [
            (variant(carry="none"), "the carry is not applied in the fix-up pass"),
            (variant(decay=False), "the carry decays through the chunk"),
            (variant(carry="out"), "off by one chunk"),
            (variant(carry="local"), "the carries must themselves be scanned"),
            # The reversed operator inside the chunks: right on each chunk's first step only.
            (variant(local_op=lambda a1, b1, a2, b2: (a1 * a2, a1 * b2 + b1)), "wrong from t = 1, inside chunk 0"),
        ]
        for wrong, fragment in cases:
            self.assertVerdict(f, wrong, FAIL, fragment)

        def late_carry(a, b, chunk):  # the second chunk's carry only: chunks 0 and 1 right
            h = good(a, b, chunk)
            h[2 * chunk:] = variant(carry="none")(a, b, chunk)[2 * chunk:]
            return h

        self.assertVerdict(f, late_carry, FAIL, "the first 2 chunk(s) are right (t < 32) and chunk 2")
        self.assertVerdict(f, lambda a, b, chunk: good(a, b, chunk).T, FAIL, "h has shape (30, 40), expected (40, 30)")

    def test_lesson_weights(self):
        f, good = lab07.check_lesson_weights, self.sol["lesson_weights"]
        self.assertVerdict(f, good, PASS)
        self.assertCommonCases(f)

        def inv(d):
            return np.log(np.expm1(d))

        cases = [
            (lambda dc, df: (dc - df, df), "softplus is not the identity"),
            (lambda dc, df: (inv(dc), inv(df)), "w must make up the difference"),
            (lambda dc, df: good(dc, df)[::-1], "the two are swapped"),
            (lambda dc, df: (np.log(dc) - np.log(df), np.log(df)), "log Δ inverts e^x, not softplus"),
        ]
        for wrong, fragment in cases:
            self.assertVerdict(f, wrong, FAIL, fragment)
        # log(e^Δ − 1) is the same inverse written directly: exact enough here, so it passes.
        self.assertVerdict(f, lambda dc, df: (inv(dc) - inv(df), inv(df)), PASS)

    def test_convolution(self):
        f, good = lab07.check_convolution, self.sol["scan_as_convolution"]
        self.assertVerdict(f, good, PASS)
        self.assertCommonCases(f)

        def variant(shift=0, skip=True, Bb_of=lambda dt, A, B: dt * B, dA_of=lambda dt, A: dt * A,
                    circular=False, full=False):
            def fn(u, dt, A, B, C, D):
                Dn, L = u.shape
                k = np.arange(L)[:, None] + shift
                y = []
                for d in range(Dn):
                    K = (np.exp(k * dA_of(dt[d], A[d])) * (C * Bb_of(dt[d], A[d], B))).sum(1)
                    if circular:
                        yd = np.fft.irfft(np.fft.rfft(K) * np.fft.rfft(u[d]), n=L)
                    else:
                        yd = np.convolve(K, u[d]) if full else np.convolve(K, u[d])[:L]
                    y.append(yd + (D[d] * np.pad(u[d], (0, len(yd) - L)) if skip else 0))
                return np.array(y)
            return fn

        cases = [
            (variant(shift=1), "your kernel starts one power late"),
            (variant(skip=False), "the skip D·u is missing"),
            (variant(Bb_of=lambda dt, A, B: B), "B̄ = B without Δ"),
            (variant(Bb_of=lambda dt, A, B: np.expm1(dt * A) / A * B), "exact ZOH's B̄"),
            (variant(dA_of=lambda dt, A: A), "used e^{kA}, not e^{kΔA}"),
            (variant(circular=True), "your convolution wraps around"),
            (variant(full=True), "keep the first L"),
        ]
        for wrong, fragment in cases:
            self.assertVerdict(f, wrong, FAIL, fragment)
        self.assertVerdict(f, lambda *a: good(*a)[0], FAIL, "one row per channel")


class Lab08(Base):
    sol = solutions("08-backprop.ipynb")

    def test_lag_gradient(self):
        f, good = lab08.check_lag_gradient, self.sol["lag_gradient"]
        self.assertVerdict(f, good, PASS)
        self.assertCommonCases(f)
        self.assertVerdict(f, lambda a, b, c, k: np.array([c * b * a ** j for j in k]), PASS)
        cases = [
            (lambda a, b, c, k: c * b * a ** (k + 1.0), "one power of a too many"),
            (lambda a, b, c, k: c * b * a ** (k - 1.0), "one power of a too few"),
            (lambda a, b, c, k: c * b * a ** (len(k) - 1.0 - k), "you indexed by time, not by lag"),
            (lambda a, b, c, k: a ** (1.0 * k), "the input's weight b and the readout c are missing"),
            (lambda a, b, c, k: c * b * k * a ** (k - 1.0), "the derivative with respect to the decay"),
        ]
        for wrong, fragment in cases:
            self.assertVerdict(f, wrong, FAIL, fragment)
        self.assertVerdict(f, lambda a, b, c, k: (c * b * a ** k)[:10], FAIL, "g has shape (10,); expected (30,)")

    @staticmethod
    def adjoint(same_step=False, forward=False, no_C=False, later_only=False, local_only=False):
        """A student's adjoint with one of the known mistakes switched on."""
        def fn(Abar, C, dy):
            Dn, L, N = Abar.shape
            g = np.zeros((Dn, L, N))
            for d in range(Dn):
                for n in range(N):
                    acc = 0.0
                    for t in (range(L) if forward else range(L - 1, -1, -1)):
                        own = dy[d, t] * (1.0 if no_C else C[n, t])
                        if forward:
                            acc = own + Abar[d, t, n] * acc
                        elif local_only:
                            acc = own
                        elif same_step:
                            acc = own + Abar[d, t, n] * acc
                        elif later_only:
                            acc = Abar[d, t + 1, n] * (dy[d, t + 1] * C[n, t + 1] + acc) if t + 1 < L else 0.0
                        else:
                            acc = own + (Abar[d, t + 1, n] * acc if t + 1 < L else 0.0)
                        g[d, t, n] = acc
            return g
        return fn

    def test_adjoint(self):
        f, good = lab08.check_adjoint, self.sol["adjoint_np"]
        self.assertVerdict(f, good, PASS)
        self.assertCommonCases(f)
        self.assertVerdict(f, self.adjoint(), PASS)
        cases = [
            (dict(same_step=True), "Yours uses Ā_t"),
            (dict(forward=True), "the adjoint runs backward in time"),
            (dict(no_C=True), "the local term is C_{t,n} dy_t"),
            (dict(later_only=True), "includes y_t's own read of h_t"),
            (dict(local_only=True), "add Ā_{t+1} g_{t+1}"),
        ]
        for kw, fragment in cases:
            self.assertVerdict(f, self.adjoint(**kw), FAIL, fragment)
        self.assertVerdict(f, lambda *a: good(*a).transpose(0, 2, 1), FAIL, "yours is (D, N, L)")
        self.assertVerdict(f, lambda *a: good(*a)[:, 0], FAIL, "keep every g_t")

    @staticmethod
    def backward(same_step=False, dC_prev=False, dB_no_dt=False, du_B=False, no_skip=False,
                 no_sigmoid=False, sigmoid_raw=False, only_A=False, only_B=False, h_now=False,
                 dA_sign=False, dA_no_dt=False, dB_over_t=False, dB_per_channel=False,
                 dA_over_d=False, dD_per_step=False):
        """A student's scan_backward_np, written with explicit loops, with known mistakes."""
        def fn(u, raw, bias, A, B, C, D, dy):
            Dn, L = u.shape
            N = A.shape[1]
            x = raw + bias[:, None]
            dt = np.log1p(np.exp(x))
            h = np.zeros((Dn, L + 1, N))  # h[:, t + 1] = h_t, h[:, 0] = h_{−1} = 0
            for t in range(L):
                h[:, t + 1] = np.exp(dt[:, t, None] * A) * h[:, t] + dt[:, t, None] * B[:, t] * u[:, t, None]
            Ab = np.exp(dt[:, :, None] * A[:, None, :])
            g = Lab08.adjoint(same_step=same_step)(Ab, C, dy)
            hs, hp = h[:, 1:], h[:, :-1]
            hA = hs if h_now else hp
            du = (g * (B.T[None] if du_B else dt[:, :, None] * B.T[None])).sum(2) + (0 if no_skip else D[:, None] * dy)
            through = (0 if only_B else A[:, None, :] * Ab * hA) + (0 if only_A else u[:, :, None] * B.T[None])
            ddt = (g * through).sum(2)
            s = 1 / (1 + np.exp(-(raw if sigmoid_raw else x)))
            ddelta = ddt if no_sigmoid else ddt * s
            terms_A = g * (1.0 if dA_no_dt else dt[:, :, None]) * Ab * hA
            dA = terms_A.sum(0) if dA_over_d else terms_A.sum(1)
            dA = -dA if dA_sign else dA
            terms_B = g * (u if dB_no_dt else u * dt)[:, :, None]
            dB = terms_B.sum(1) if dB_over_t else terms_B if dB_per_channel else terms_B.sum(0).T
            dC = (dy[:, :, None] * (hp if dC_prev else hs)).sum(0).T
            dD = dy * u if dD_per_step else (dy * u).sum(1)
            return du, ddelta, dA, dB, dC, dD
        return fn

    def test_scan_backward(self):
        f, good = lab08.check_scan_backward, self.sol["scan_backward_np"]
        self.assertVerdict(f, good, PASS)
        self.assertCommonCases(f)
        self.assertVerdict(f, self.backward(), PASS)
        cases = [
            (dict(same_step=True), "Yours uses Ā_t"),
            (dict(dC_prev=True), "dC reads the state the output read"),
            (dict(dB_no_dt=True), "∂B̄/∂B = Δ"),
            (dict(du_B=True), "yours uses B without the Δ"),
            (dict(no_skip=True), "the skip's share is missing"),
            (dict(no_sigmoid=True), "multiply dΔ by softplus'(Δraw + bias)"),
            (dict(sigmoid_raw=True), "not σ(Δraw)"),
            (dict(only_A=True), "Yours has only the decay's path"),
            (dict(only_B=True), "Yours has only the input's path"),
            (dict(h_now=True), "Ā_t multiplies the state before step t"),
            (dict(dA_sign=True), "dA has the wrong sign"),
            (dict(dA_no_dt=True), "yours misses Δ_t"),
            (dict(dB_over_t=True), "dB has shape (D, N): you summed over the steps t"),
            (dict(dB_per_channel=True), "dB has shape (D, L, N): sum it over the channels d"),
            (dict(dA_over_d=True), "dA has shape (L, N): you summed over the channels d"),
            (dict(dD_per_step=True), "dD has shape (D, L)"),
        ]
        for kw, fragment in cases:
            self.assertVerdict(f, self.backward(**kw), FAIL, fragment)
        # Two independent mistakes: both are named.
        self.assertVerdict(f, self.backward(dA_sign=True, no_sigmoid=True), FAIL, "dA has the wrong sign",
                           "multiply dΔ by softplus'")
        self.assertVerdict(f, lambda *a: good(*a)[:5], FAIL, "expected 6 outputs")

        def calls_empty_adjoint(*a):  # 8.3 written, 8.2 still the student version's stub
            raise NotImplementedError("exercise: write the body of adjoint_np()")

        self.assertVerdict(f, calls_empty_adjoint, FAIL, "it calls adjoint_np(), which is not written yet")

    @staticmethod
    def fd(step=None, denominator=2.0, sign=1.0, one_sided=False, all_at_once=False, restore="exact"):
        """A student's fd_gradient with one of the known mistakes switched on."""
        def fn(f, x):
            g = np.empty(x.shape)
            if all_at_once:
                h = 6e-6
                g[...] = (f(x + h) - f(x - h)) / (2 * h)
                return g
            for i in np.ndindex(x.shape):
                h = step if step else np.cbrt(np.finfo(float).eps) * max(1.0, abs(x[i]))
                old = x[i]
                x[i] = old + h
                fp = f(x)
                if one_sided:
                    x[i] = old
                    fm = f(x)
                else:
                    x[i] = old - h if restore != "drift" else x[i] - 2 * h
                    fm = f(x)
                if restore == "exact":
                    x[i] = old
                elif restore == "arithmetic":
                    x[i] += h  # back to x ± rounding: harmless
                g[i] = sign * (fp - fm) / ((1.0 if one_sided else denominator) * h)
            return g
        return fn

    def test_fd(self):
        f, good = lab08.check_fd, self.sol["fd_gradient"]
        self.assertVerdict(f, good, PASS)
        self.assertCommonCases(f)
        self.assertVerdict(f, self.fd(), PASS)
        self.assertVerdict(f, self.fd(restore="arithmetic"), PASS)
        cases = [
            (dict(denominator=1.0), "yours divides by h"),
            (dict(sign=-1.0), "the forward value first"),
            (dict(all_at_once=True), "you perturbed all entries at once"),
            (dict(one_sided=True), "A one-sided difference"),
            (dict(step=1e-11), "Too small an h"),
            (dict(restore="drift"), "your fd_gradient left x changed: A"),
        ]
        for kw, fragment in cases:
            self.assertVerdict(f, self.fd(**kw), FAIL, fragment)
        self.assertVerdict(f, lambda fn, x: good(fn, x).ravel(), FAIL, "reshape it")


class Lab09(Base):
    sol = solutions("09-selection-ablation.ipynb")

    def test_targets(self):
        f, good = lab09.check_targets, self.sol["selective_copy_targets"]
        self.assertVerdict(f, good, PASS)
        self.assertCommonCases(f)

        def loop(tokens, k):  # another correct way: walk the body, count the data tokens
            L, out, j = len(tokens) - k, [-1] * len(tokens), 0
            for t in range(L):
                if tokens[t] >= 2:
                    out[L + j] = tokens[t]
                    j += 1
            return out
        self.assertVerdict(f, loop, PASS)

        def variant(mistake):
            def fn(tokens, k):
                tokens = np.asarray(tokens)
                L = len(tokens) - k
                pos = [t for t in range(L) if tokens[t] >= 2]
                data = [int(tokens[t]) for t in pos]
                y = np.full(len(tokens), 0 if mistake == "zeros" else -1)
                if mistake == "at the data":
                    for t in pos:
                        y[t] = tokens[t]
                    return y
                if mistake == "next":
                    return np.concatenate([tokens[1:], [-1]])
                if mistake == "reversed":
                    data = data[::-1]
                if mistake == "from 0":
                    data = [d - 2 for d in data]
                start = L - 1 if mistake == "early" else L
                y[start:start + k] = data
                return y
            return fn
        cases = [("at the data", "the answers are due at the markers"),
                 ("next", "next-token prediction of the input"),
                 ("reversed", "in the order the tokens appeared"),
                 ("from 0", "do not subtract FIRST_DATA"),
                 ("early", "one position early"),
                 ("zeros", "0 is the noise token")]
        for mistake, fragment in cases:
            self.assertVerdict(f, variant(mistake), FAIL, fragment)
        self.assertVerdict(f, lambda tokens, k: good(tokens, k)[:-1], FAIL, "has shape")

    def test_accuracy(self):
        f, good = lab09.check_accuracy, self.sol["accuracy_np"]
        r = self.assertVerdict(f, good, PASS)
        self.assertCommonCases(f)
        # The check's model is partly trained: both accuracies strictly inside (0, 1), and different,
        # or the mistakes below could not be told from the truth.
        t = lab09._acc_trainer()
        ev = t.evaluate(lab09.ACC_N)
        self.assertTrue(0.05 < ev["sequence_accuracy"] < ev["accuracy"] < 0.98, (ev, r.text))

        def acc(mistake):
            def fn(logits, targets):
                pred = logits.argmax(axis=2)
                if mistake == "next":
                    pred, targets = pred[:, :-1], targets[:, 1:]
                right, kept = pred == targets, targets >= 0
                tok = right[kept].mean()
                seq = np.mean([all(r[k]) for r, k in zip(right, kept)])
                if mistake == "all":
                    tok, seq = right.mean(), right.all(axis=1).mean()
                if mistake == "ignored right":
                    tok = (right | ~kept).mean()
                if mistake == "mean":
                    seq = tok
                if mistake == "any":
                    seq = np.mean([any(r[k]) for r, k in zip(right, kept)])
                return tok, seq
            return fn
        self.assertVerdict(f, acc(None), PASS)
        cases = [("all", "your token accuracy counts every position"),
                 ("all", "asks every position to be right, the ignored ones too"),
                 ("ignored right", "counts the ignored positions (−1) as right"),
                 ("next", "compared row t of the logits with targets[t + 1]"),
                 ("mean", "your sequence accuracy is the mean token accuracy"),
                 ("any", "counts a sequence with any right answer")]
        for mistake, fragment in cases:
            self.assertVerdict(f, acc(mistake), FAIL, fragment)
        self.assertVerdict(f, lambda lg, y: good(lg, y)[0], FAIL, "return two numbers")

    def test_optimizer(self):
        f, good = lab09.check_optimizer, self.sol["optimizer_step"]
        self.assertVerdict(f, good, PASS)
        self.assertCommonCases(f)

        def step(mistake):
            def fn(params, grads, m, v, t, lr, decay, o):
                norms = [np.linalg.norm(g) for g in grads]
                total = np.sqrt(sum(n * n for n in norms))
                out = ([], [], [])
                for p, g, mi, vi, dec, n in zip(params, grads, m, v, decay, norms):
                    if mistake == "per array":
                        g = g * min(1.0, o.clip / n)
                    elif mistake == "always":
                        g = g * (o.clip / total)
                    elif mistake != "no clip":
                        g = g * min(1.0, o.clip / total)
                    if mistake == "decay all":
                        dec = True
                    if mistake == "L2" and dec:
                        g = g + o.weight_decay * p
                    mi = o.beta1 * mi + (1 - o.beta1) * g
                    vi = o.beta2 * vi + (1 - o.beta2) * g ** 2
                    tt = t - 1 if mistake == "t-1" else t
                    mh, vh = mi / (1 - o.beta1 ** tt), vi / (1 - o.beta2 ** tt)
                    if mistake == "no bias correction":
                        mh, vh = mi, vi
                    upd = mh / ((vh if mistake == "no sqrt" else np.sqrt(vh)) + o.eps)
                    if mistake == "no lr in decay" and dec:
                        q = p * (1 - o.weight_decay) - lr * upd
                    elif dec and mistake != "L2":
                        q = p * (1 - lr * o.weight_decay) - lr * upd
                    else:
                        q = p - lr * upd
                    for lst, x in zip(out, (q, mi, vi)):
                        lst.append(x)
                return out
            return fn
        self.assertVerdict(f, step(None), PASS)
        cases = [("L2", "that is L2 regularization"),
                 ("decay all", "the trainer decays the matrices only"),
                 ("no lr in decay", "the decoupled decay is scaled by the step's rate"),
                 ("no bias correction", "the bias correction is missing"),
                 ("t-1", "not step − 1"),
                 ("no sqrt", "divides by √v̂ + ε"),
                 ("per array", "you clipped each array by its own norm"),
                 ("always", "clipping only shrinks"),
                 ("no clip", "the gradient is not clipped")]
        for mistake, fragment in cases:
            self.assertVerdict(f, step(mistake), FAIL, fragment)
        self.assertVerdict(f, lambda *a: good(*a)[:2], FAIL, "return three lists")

    def test_prediction(self):
        f, good = lab09.check_prediction, self.sol["my_prediction"]
        self.assertVerdict(f, good, PASS, "recorded")
        self.assertVerdict(f, todo, TODO, labkit.NOT_ATTEMPTED)
        self.assertVerdict(f, crash, FAIL, "your function raised LinAlgError")
        why = "B_t still gates what is written, but the state decays anyway"
        self.assertVerdict(f, lambda: [0.9, 0.5, 0.1], FAIL, "return a dict")
        self.assertVerdict(f, lambda: {"mamba": 0.9, "s4d": 0.1, "why": why}, FAIL, "has no 'fixed_dt'")
        self.assertVerdict(f, lambda: {"mamba": 95, "fixed_dt": 0.5, "s4d": 0.1, "why": why}, FAIL,
                           "a percentage? write 0.95")
        self.assertVerdict(f, lambda: {"mamba": "high", "fixed_dt": 0.5, "s4d": 0.1, "why": why}, FAIL,
                           "is not a number")
        self.assertVerdict(f, lambda: {"mamba": 0.9, "fixed_dt": 0.5, "s4d": 0.1}, FAIL, "add 'why'")
        self.assertIsNone(lab09.recorded(todo))
        self.assertEqual(lab09.recorded(good)["s4d"], good()["s4d"])

    def test_report_claims_the_ordering(self):
        res = {k: dict(accuracy=a, sequence_accuracy=s, seconds=1.0)
               for k, a, s in (("mamba", 0.99, 0.97), ("fixed_dt", 0.95, 0.8), ("s4d", 0.8, 0.3))}
        with contextlib.redirect_stdout(io.StringIO()) as out:
            lab09.report(res, self.sol["my_prediction"]())
        self.assertIn("Mamba > fixed Δ > S4D", out.getvalue())
        self.assertIn("got the ordering", out.getvalue())
        res["s4d"]["sequence_accuracy"] = 0.9
        try:
            labkit.STRICT = True
            with self.assertRaises(AssertionError), contextlib.redirect_stdout(io.StringIO()):
                lab09.report(res)
        finally:
            labkit.STRICT = False


class Lab10(Base):
    sol = solutions("10-ssd.ipynb")

    @staticmethod
    def matrix(dt_out=False, diag_decay=False, drop_t=False, upper=False, swap=False, no_dt=False,
               by_lag=False):
        """A student's M of one head with one of the known mistakes switched on."""
        def fn(dt, a, B, C):
            L = len(dt)
            cs = np.cumsum(dt * a)
            e = cs[:, None] - cs[None, :]
            if diag_decay:
                e = e + dt[None, :] * a
            if drop_t:
                e = e - dt[:, None] * a
            if by_lag:
                e = a * (np.arange(L)[:, None] - np.arange(L)[None, :])
            mask = np.exp(e) if upper else np.tril(np.exp(e))
            w = 1.0 if no_dt else (dt[:, None] if dt_out else dt[None, :])
            return mask * ((B @ C.T) if swap else (C @ B.T)) * w
        return fn

    def test_matrix(self):
        f, good = lab10.check_matrix, self.sol["ssd_matrix_np"]
        self.assertVerdict(f, good, PASS)
        self.assertCommonCases(f)
        self.assertVerdict(f, self.matrix(), PASS)
        cases = [
            (dict(dt_out=True), "yours uses the output's Δ_t"),
            (dict(diag_decay=True), "the diagonal is decayed"),
            (dict(drop_t=True), "the decay of step t itself is missing"),
            (dict(upper=True), "the upper triangle must be zero"),
            (dict(swap=True), "B and C are swapped"),
            (dict(no_dt=True), "Δ_s is missing"),
            (dict(by_lag=True), "not exp(A_h (t − s))"),
        ]
        for kw, fragment in cases:
            self.assertVerdict(f, self.matrix(**kw), FAIL, fragment)
        self.assertVerdict(f, lambda dt, a, B, C: good(dt, a, B, C)[:10], FAIL, "M has shape (10, 40)")

    def test_by_hand(self):
        f, good = lab10.check_by_hand, self.sol["M_by_hand"]
        self.assertVerdict(f, good, PASS)
        self.assertCommonCases(f)
        M, y = good()
        x = np.array([1.0, -1.0, 2.0])
        self.assertVerdict(f, lambda: (M, M.T @ x), FAIL, "yours is Mᵀ x")
        decayed = M * np.array([0.5, 0.25, 0.5])[None, :]  # every column s also decayed by a_s
        decayed = np.tril(decayed)
        self.assertVerdict(f, lambda: (decayed, decayed @ x), FAIL, "the diagonal is decayed")
        dt = np.array([1.0, 2.0, 1.0])
        by_t = M / dt[None, :] * dt[:, None]
        self.assertVerdict(f, lambda: (by_t, by_t @ x), FAIL, "the output's Δ_t")
        self.assertVerdict(f, lambda: (M + 1e-3, y), FAIL, "M differs from the library's")

    @staticmethod
    def chunked(carry=True, decay_in=True, decay_carry=True, decay_to_end=True, last_full=False):
        def fn(x, dt, A, B, C, Q):
            L, H, P = x.shape
            y, hl = np.zeros((L, H, P)), np.zeros((H, P, B.shape[1]))
            for h in range(H):
                S = np.zeros((B.shape[1], P))
                starts = range(0, L, Q)
                for s0 in starts:
                    e = min(s0 + Q, L)
                    if last_full and e - s0 < Q and s0 > 0:
                        break  # forgets the shorter last chunk
                    d, xc, Bc, Cc = dt[s0:e, h], x[s0:e, h], B[s0:e], C[s0:e]
                    cs = np.cumsum(d * A[h])
                    G = np.tril(np.exp(cs[:, None] - cs[None, :])) * (Cc @ Bc.T)
                    y[s0:e, h] = G @ (d[:, None] * xc)
                    if carry:
                        y[s0:e, h] += (np.exp(cs)[:, None] if decay_in else 1) * (Cc @ S)
                    w = np.exp(cs[-1] - cs)[:, None] if decay_to_end else 1
                    S = (np.exp(cs[-1]) if decay_carry else 1) * (S if carry else 0) + Bc.T @ (w * d[:, None] * xc)
                hl[h] = S.T
            return y, hl
        return fn

    def test_chunked(self):
        f, good = lab10.check_chunked, self.sol["ssd_chunked_np"]
        self.assertVerdict(f, good, PASS)
        self.assertCommonCases(f)
        self.assertVerdict(f, self.chunked(), PASS)
        cases = [
            (dict(carry=False), "the chunks do not pass the state on"),
            (dict(decay_in=False), "the state entering a chunk decays through it"),
            (dict(decay_carry=False), "must decay over the whole chunk"),
            (dict(decay_to_end=False), "decays from its step to the chunk's end"),
            (dict(last_full=True), "the last chunk, which is shorter"),
        ]
        for kw, fragment in cases:
            self.assertVerdict(f, self.chunked(**kw), FAIL, fragment)
        self.assertVerdict(f, lambda *a: good(*a)[0], FAIL, "must return two arrays")

    def test_offdiag_rank(self):
        f, good = lab10.check_offdiag_rank, self.sol["max_offdiag_rank"]
        self.assertVerdict(f, good, PASS)
        self.assertCommonCases(f)
        self.assertVerdict(f, lambda M, Q, tol: np.linalg.matrix_rank(M), FAIL, "the rank of the whole M")
        upper = lambda M, Q, tol: max(np.linalg.matrix_rank(M[:k, k:]) for k in range(Q, len(M), Q))  # noqa: E731
        self.assertVerdict(f, upper, FAIL, "take the ones below")
        wide = lambda M, Q, tol: max(np.linalg.matrix_rank(M[k:, :k + 1]) for k in range(Q, len(M), Q))  # noqa: E731
        self.assertVerdict(f, wide, FAIL, "includes column k")


class Strict(unittest.TestCase):
    def test_strict_raises(self):
        # The solved notebooks run with SSMLAB_STRICT=1: a wrong or empty exercise must raise.
        labkit.STRICT = True
        try:
            with self.assertRaises(AssertionError), contextlib.redirect_stdout(io.StringIO()):
                lab03.check_kernel(todo)
        finally:
            labkit.STRICT = False


if __name__ == "__main__":
    unittest.main()
