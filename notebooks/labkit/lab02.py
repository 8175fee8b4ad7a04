"""Checks of notebook 02 (stage 2: discretization, MATH.md D1–D6)."""
import numpy as np
import scipy.linalg

from . import Hint, check, ssmlab as ssm


def _model():
    return ssm.random_stable(4, seed=12), 0.05


def _disc(method, m, dt):
    d = ssm.discretize(m, dt, method)
    return d.Ab, d.Bb


# Ā, B̄ by the library and by NumPy evaluate the same rational function of ΔA in a different
# order: they agree to a few ulps times cond(I − cΔA) (≈ 1 here), so 1e-12 is generous.
TOL = 1e-12


def check_forward_euler(forward_euler):
    """Exercise 2.1: (D1) Ā = I + ΔA, B̄ = ΔB."""
    m, dt = _model()
    A, B, I = m.A, m.B, np.eye(m.N)
    Ab, Bb = _disc("euler", m, dt)
    return check(
        "Exercise 2.1 — forward_euler(A, B, Δ = 0.05)", forward_euler, (A, B, dt), (Ab, Bb),
        rtol=TOL, outputs=("Ā", "B̄"),
        hints=[
            Hint((dt * A, Bb), "Ā = I + ΔA: the identity carries the current state over to the "
                               "next step; ΔA is only the change."),
            Hint((I + A, Bb), "Ā = I + Δ·A: the change over one step is Δ·x' = Δ·A x."),
            Hint((Ab, B), "B̄ = Δ·B: the input acts during a time Δ."),
        ])


def check_bilinear(bilinear):
    """Exercise 2.2: (D3) Ā = (I − Δ/2 A)⁻¹(I + Δ/2 A), B̄ = (I − Δ/2 A)⁻¹ ΔB."""
    m, dt = _model()
    A, B, I = m.A, m.B, np.eye(m.N)
    Ab, Bb = _disc("bilinear", m, dt)
    inv = np.linalg.inv(I - dt / 2 * A)
    full = np.linalg.inv(I - dt * A)
    return check(
        "Exercise 2.2 — bilinear(A, B, Δ = 0.05)", bilinear, (A, B, dt), (Ab, Bb),
        rtol=TOL, outputs=("Ā", "B̄"),
        hints=[
            Hint((full @ (I + dt * A), full @ (dt * B)),
                 "use Δ/2 in both factors: the bilinear rule averages the slope at both ends "
                 "of the step (D3)."),
            Hint((_disc("backward-euler", m, dt)), "this is backward Euler (D2); bilinear is "
                                                   "(I − Δ/2·A)⁻¹(I + Δ/2·A)."),
            Hint((Ab, dt * B), "B̄ also goes through the inverse: B̄ = (I − Δ/2·A)⁻¹ Δ B."),
            Hint((Ab, inv @ B), "B̄ = (I − Δ/2·A)⁻¹ Δ B: the factor Δ is missing."),
        ])


def check_zoh(zoh):
    """Exercise 2.3: (D5) exp(Δ·[[A, B], [0, 0]]) = [[Ā, B̄], [0, 1]]."""
    m, dt = _model()
    A, B, N = m.A, m.B, m.N
    Ab, Bb = _disc("zoh", m, dt)
    M = np.zeros((N + 1, N + 1))
    M[:N, :N], M[:N, N] = A, B
    E1 = scipy.linalg.expm(M)
    return check(
        "Exercise 2.3 — zoh(A, B, Δ = 0.05)", zoh, (A, B, dt), (Ab, Bb),
        rtol=TOL, outputs=("Ā", "B̄"),
        hints=[
            Hint((Ab, dt * B), "B̄ = Δ·B is Mamba's simplification (D6). ZOH integrates "
                               "e^{As} over the step: take B̄ from the augmented exponential."),
            Hint((E1[:N, :N], E1[:N, N]), "scale the augmented matrix by Δ before the "
                                          "exponential: exp(Δ·[[A, B], [0, 0]])."),
            Hint((Ab, np.zeros(N)), "B̄ is the last column of the exponential, E[:N, N] (the "
                                    "last row is [0 … 0, 1])."),
            Hint((np.eye(N) + dt * A, dt * B), "this is forward Euler; ZOH uses the matrix "
                                               "exponential (scipy.linalg.expm)."),
        ])


def check_euler_threshold(euler_threshold):
    """Exercise 2.4: the largest Δ with every |1 + Δλ| ≤ 1: min −2 Re λ / |λ|²."""
    m = ssm.random_stable(6, seed=4)
    want = ssm.forward_euler_threshold(m)
    lam = np.linalg.eigvals(m.A)
    with np.errstate(divide="ignore"):
        per = -2 * lam.real / np.abs(lam) ** 2
    return check(
        "Exercise 2.4 — euler_threshold(A)", euler_threshold, (m.A,), want,
        rtol=1e-10, outputs=("Δ*",),
        hints=[
            Hint(np.max(per), "every eigenvalue must stay inside the disc |1 + Δλ| ≤ 1: take "
                              "the smallest threshold over the eigenvalues, not the largest."),
            Hint(np.min(2 / np.abs(lam)), "2/|λ| is right only for real λ; for complex λ solve "
                                          "|1 + Δλ|² = 1: Δ = −2 Re λ / |λ|²."),
            Hint(np.min(-lam.real / np.abs(lam) ** 2), "the factor 2 is missing: "
                                                       "|1 + Δλ|² = 1 + 2Δ Re λ + Δ²|λ|²."),
        ])
