"""Checks of notebook 06 (stage 6: S4D, diagonal state space models, MATH.md Q1–Q2).

Conventions, as in the library (lib/include/ssm/s4.hpp): N = 2·Nh real states, stored as the Nh
modes with Im λ ≥ 0, each standing for itself and its conjugate (S5); the kernel of the real
model is K̄_k = 2 Re Σ_n C_n B̄_n Ā_n^k (Q1), k = 0 … L − 1.

The discretizations are checked against stage 2 (ssm.discretize, ZOH by the augmented matrix
exponential, D5; bilinear by a dense solve, D3) applied to the same diagonal model written as a
dense real one (s4.to_real: each mode is a 2 × 2 rotation block on (a, b) with x_n = (a + ib)/√2),
and the kernel against the library's Vandermonde sum (s4.s4d_kernel).
"""
import numpy as np

from . import Hint, check, ssmlab as ssm

s4 = ssm.s4

# Closed forms and sums of ≤ 200 terms in double: the library and NumPy agree to ~1e-15 relative
# (measured: 3e-16 for stage 2's ZOH by the augmented matrix exponential, 2e-16 for bilinear,
# 1.2e-14 for the 200-term kernel), so 1e-9 is loose for rounding and far below every mistake
# (all ≥ 1e-3).
TOL = 1e-9
N = 16


def _from_real(d, Nh):
    """(Ā_n, B̄_n) of the complex modes from stage 2's dense real (Ā, B̄) of s4.to_real's form:
    mode n is the block on rows/columns (n, Nh + n), and x_n = (a + ib)/√2."""
    Ab = d.Ab[np.arange(Nh), np.arange(Nh)] + 1j * d.Ab[Nh + np.arange(Nh), np.arange(Nh)]
    Bb = (d.Bb[:Nh] + 1j * d.Bb[Nh:]) / np.sqrt(2)
    return Ab, Bb


def _stage2(m, dt, method):
    real = s4.to_real(m, np.zeros(m.Nh))
    return _from_real(ssm.discretize(real, dt, method), m.Nh)


# ---------------------------------------------------------------------------------------------
# Exercise 6.1 — the S4D inits (Q2)

def check_inits(s4d_inits_np):
    """Exercise 6.1: Λ of S4D-Inv and S4D-Lin for N real states (Nh = N/2 modes each)."""
    inv, lin = s4.s4d_init("inv", N).Lambda, s4.s4d_init("lin", N).Lambda
    Nh = N // 2
    n = np.arange(Nh)

    def inv_(n, M=N, scale=True, re=-0.5):
        return re + 1j * (M / np.pi if scale else 1.0) * (M / (2 * n + 1) - 1)

    def shape(got):
        try:
            shapes = [np.shape(x) for x in got]
        except TypeError:
            return None
        if (N,) in shapes:
            return ("you returned N = %d eigenvalues: a model keeps one per conjugate pair, "
                    "Nh = N/2 = %d, n = 0 … Nh − 1 (S5)." % (N, Nh))
        return None

    return check(
        "Exercise 6.1 — s4d_inits_np(N = 16)", s4d_inits_np, (N,), (inv, lin),
        rtol=TOL, outputs=("S4D-Inv λ", "S4D-Lin λ"), index="n", diagnose=[shape],
        hints=[
            Hint((inv_(n + 1), lin), "S4D-Inv: n runs from 0 (λ_0 = −½ + i(N/π)(N − 1))."),
            Hint((inv_(n, M=Nh), lin),
                 "S4D-Inv uses N, the number of real states (= 2·Nh), in both places: "
                 "λ_n = −½ + i(N/π)(N/(2n+1) − 1), not Nh."),
            Hint((inv_(n, scale=False), lin), "S4D-Inv: the factor N/π in front is missing."),
            Hint((inv, -0.5 + 1j * np.pi * (n + 1)), "S4D-Lin: n runs from 0 (λ_0 = −½)."),
            Hint((inv, -0.5 + 1j * n), "S4D-Lin: λ_n = −½ + iπn — the π is missing."),
            Hint((inv_(n, re=0.5), 0.5 + 1j * np.pi * n),
                 "Re λ = −½ (negative): with +½ every mode grows like e^{t/2}."),
            Hint((inv_(n, re=-1.0), -1.0 + 1j * np.pi * n), "Re λ = −½ for both inits, not −1."),
            Hint((lin, inv), "the two are swapped: return (S4D-Inv, S4D-Lin)."),
        ])


# ---------------------------------------------------------------------------------------------
# Exercises 6.2 and 6.3 — ZOH and bilinear for a diagonal A

def _legs_diag():
    return s4.s4d_init("legs", N)  # Λ and a complex B̃, so every factor of B̄ shows


def check_zoh(zoh_diag):
    """Exercise 6.2: (Q1) Ā_n = e^{Δλ_n}, B̄_n = (e^{Δλ_n} − 1)/λ_n · B_n."""
    m, dt = _legs_diag(), 0.05
    lam, B = m.Lambda, m.B
    want = _stage2(m, dt, "zoh")
    e = np.exp(dt * lam)
    return check(
        "Exercise 6.2 — zoh_diag(lam, B, dt = 0.05)", zoh_diag, (lam, B, dt), want,
        rtol=TOL, outputs=("Ā", "B̄"), index="n",
        hints=[
            Hint((np.exp(lam), np.expm1(lam) / lam * B),
                 "you used e^{λ}: the exponent is Δλ — the state evolves for a time Δ."),
            Hint((e, np.expm1(lam) / lam * B), "B̄ needs e^{Δλ} too: (e^{Δλ} − 1)/λ · B."),
            Hint((e, dt * B), "B̄ = ΔB is Euler's (and Mamba's, D6) approximation; ZOH integrates "
                              "e^{λs} over the step: B̄ = (e^{Δλ} − 1)/λ · B."),
            Hint((1 + dt * lam, dt * B), "this is forward Euler (D1): ZOH is exact for a held "
                                         "input, Ā = e^{Δλ}."),
            Hint((e, (e - 1) / (dt * lam) * B), "divide by λ, not by Δλ: ∫₀^Δ e^{λs} ds = "
                                                "(e^{Δλ} − 1)/λ."),
            Hint((e, dt * (e - 1) / lam * B), "no extra Δ: ∫₀^Δ e^{λs} ds = (e^{Δλ} − 1)/λ "
                                              "already has the units of time."),
            Hint((e, (e - 1) * lam * B), "divide by λ: B̄ = (e^{Δλ} − 1)/λ · B."),
            Hint(((1 + dt * lam / 2) / (1 - dt * lam / 2), dt * B / (1 - dt * lam / 2)),
                 "this is the bilinear rule (Exercise 6.3); ZOH is Ā = e^{Δλ}."),
        ])


def check_bilinear(bilinear_diag):
    """Exercise 6.3: (D3) for a diagonal A: Ā = (1 + Δλ/2)/(1 − Δλ/2), B̄ = ΔB/(1 − Δλ/2)."""
    m, dt = _legs_diag(), 0.05
    lam, B = m.Lambda, m.B
    want = _stage2(m, dt, "bilinear")
    h = dt * lam / 2
    Ab = (1 + h) / (1 - h)
    return check(
        "Exercise 6.3 — bilinear_diag(lam, B, dt = 0.05)", bilinear_diag, (lam, B, dt), want,
        rtol=TOL, outputs=("Ā", "B̄"), index="n",
        hints=[
            Hint(((1 + 2 * h) / (1 - 2 * h), dt * B / (1 - 2 * h)),
                 "use Δ/2 in both factors: Ā = (1 + Δλ/2)/(1 − Δλ/2), B̄ = ΔB/(1 − Δλ/2) (D3)."),
            Hint((Ab, dt * B), "B̄ goes through the inverse too: B̄ = ΔB/(1 − Δλ/2)."),
            Hint((Ab, B / (1 - h)), "B̄ = ΔB/(1 − Δλ/2): the Δ is missing."),
            Hint((1 / Ab, dt * B / (1 + h)),
                 "the factors are swapped: Ā = (1 + Δλ/2)/(1 − Δλ/2), so |Ā| < 1 for Re λ < 0."),
            Hint((np.exp(dt * lam), np.expm1(dt * lam) / lam * B),
                 "this is ZOH (Exercise 6.2); the bilinear rule is Ā = (1 + Δλ/2)/(1 − Δλ/2)."),
        ])


# ---------------------------------------------------------------------------------------------
# Exercise 6.4 — the Vandermonde kernel (Q1)

def check_vandermonde(vandermonde_kernel):
    """Exercise 6.4: K̄_k = 2 Re Σ_n C_n B̄_n Ā_n^k for k < L."""
    m, dt, L = s4.s4d_init("inv", N), 0.01, 200
    C = s4.random_C(1, N // 2, 11)[0]
    Ab, Bb = _stage2(m, dt, "zoh")
    want = s4.s4d_kernel(m, C, dt, L, "zoh")  # the library's Vandermonde sum
    k = np.arange(L)[:, None]
    terms = (C * Bb) * Ab ** k  # (L, Nh)

    def length(got):
        s = np.shape(got)
        if s == (N // 2,):
            return ("your result has one entry per mode: sum over the modes n, keeping one "
                    "entry per k (L = %d)." % L)
        if s in ((L, N // 2), (N // 2, L)):
            return ("your result is the table of terms, shape %s: sum it over the modes n." % (s,))
        return None

    return check(
        "Exercise 6.4 — vandermonde_kernel(C, Ab, Bb, L = 200), S4D-Inv, N = 16", vandermonde_kernel,
        (C, Ab, Bb, L), want, rtol=TOL, outputs=("K̄",), diagnose=[length],
        hints=[
            Hint(terms.sum(axis=1).real,
                 "forgot the 2: each kept mode stands for itself and its conjugate, whose term is "
                 "the complex conjugate, so the pair adds up to 2·Re (Q1)."),
            Hint(4 * terms.sum(axis=1).real,
                 "doubled twice: 2·Re already counts the conjugate half; summing both halves and "
                 "then taking 2·Re counts every pair twice."),
            Hint(2 * ((C * Bb) * Ab ** (k + 1)).sum(axis=1).real,
                 "off by one in the power: K̄_0 = 2 Re Σ_n C_n B̄_n (power k = 0), so the "
                 "Vandermonde matrix has Ā_n^k for k = 0 … L − 1."),
            Hint(2 * ((C * Bb) * Ab ** (L - 1 - k)).sum(axis=1).real,
                 "your K̄ runs backwards: np.vander(x, L) puts the highest power first; use "
                 "np.vander(Ab, L, increasing=True), or Ab ** np.arange(L)[:, None]."),
            Hint(2 * ((np.conj(C) * Bb) * Ab ** k).sum(axis=1).real,
                 "C is not conjugated: y = 2 Re(C x) with the C̃ as given."),
            Hint(2 * np.abs(terms.sum(axis=1)), "2·Re, not 2·|…|: the kernel takes signs."),
        ])
