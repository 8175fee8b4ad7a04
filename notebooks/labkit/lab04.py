"""Checks of notebook 04 (stage 5: HiPPO-LegS, MATH.md H1–H6).

Sign convention: this project writes x' = Ax + Bu, so its LegS A is the negated matrix of the
HiPPO paper (which writes c' = −(1/t)A c + (1/t)B u). Several hints below name that flip.
"""
import numpy as np

from . import Hint, check, ssmlab as ssm

hippo = ssm.hippo

# Matrices, one step and a reconstruction at N ≤ 64: the library and NumPy evaluate the same
# formulas in a different order (a dense solve against forward substitution or prefix sums,
# Boost's Legendre recurrence against NumPy's Clenshaw sum); they agree to ~1e-14 relative, so
# 1e-10 is loose for rounding and still far below every mistake (all of order 1e-2 or more).
TOL = 1e-10


def _legs(N):
    A, B = hippo.legs(N)
    return A, B


def _step(A, B, c, u, k, alpha=0.5):
    """(H5) with a dense solve: the variants below change one ingredient each."""
    I = np.eye(len(B))
    return np.linalg.solve(I - alpha * A / k, (I + (1 - alpha) * A / k) @ c + B * u / k)


def _state(N, seed):
    """A plausible state: LegS coefficients of a real signal, plus a little noise so every mode
    (and every mistake in it) shows."""
    u = ssm.make_signal("sines:f=0.5", 400, 0.01).samples
    c = hippo.online(u, 0.01, hippo.Spec("legs", N=N))[:, -1]
    return c + 0.05 * np.random.default_rng(seed).standard_normal(N)


def check_legs_matrices(legs_matrices):
    """Exercise 4.1: (H1) the LegS (A, B)."""
    N = 6
    A, B = _legs(N)
    n = np.arange(N)
    b = np.sqrt(2 * n + 1)
    unnormalized = -np.tril(np.tile(2 * n + 1.0, (N, 1)), -1) - np.diag(n + 1.0)  # −(2k+1), n > k
    b1 = np.sqrt(2 * (n + 1) + 1)  # n, k counted from 1
    return check(
        "Exercise 4.1 — legs_matrices(N = 6)", legs_matrices, (N,), (A, B),
        rtol=TOL, outputs=("A", "B"), index="n",
        hints=[
            Hint((-A, B), "A has the HiPPO paper's sign. The paper writes c' = −(1/t)A c + "
                          "(1/t)B u; this project writes x' = Ax + Bu (MATH.md H1), so here A is "
                          "the negated matrix: A_00 = −1, and every entry is ≤ 0."),
            Hint((-A, -B), "A and B both have the wrong sign: A_nn = −(n+1) < 0 (the memory "
                           "decays) and B_n = +√(2n+1) (H1)."),
            Hint((A.T, B), "A is transposed: it is lower triangular. Coefficient c_n is driven by "
                           "the lower-order ones, so A_nk ≠ 0 only for n ≥ k."),
            Hint((unnormalized, np.ones(N)),
                 "these are the matrices of the unnormalized Legendre polynomials P_n. The "
                 "orthonormal basis is g_n = √(2n+1)·P_n (H2), which gives A_nk = "
                 "−√(2n+1)·√(2k+1) for n > k and B_n = √(2n+1)."),
            Hint((A, np.ones(N)), "B_n = √(2n+1): B is the basis at the present, g_n(t) = "
                                  "√(2n+1)·P_n(1), not 1."),
            Hint((-np.tril(np.outer(b, b)), B),
                 "the diagonal is −(n+1), not −(2n+1): the product −√(2n+1)·√(2k+1) is for the "
                 "strict lower triangle only (np.tril(…, -1))."),
            Hint((A + np.eye(N), B), "off by one on the diagonal: with n counted from 0, A_nn = "
                                     "−(n+1), so A_00 = −1."),
            Hint((-np.tril(np.outer(b1, b1), -1) - np.diag(n + 2.0), b1),
                 "n and k run from 0 to N − 1, not from 1: A_00 = −1, B_0 = 1."),
        ])


def check_legs_step(legs_step):
    """Exercise 4.2: (H5) one bilinear LegS step, c_{k−1} → c_k, with the step number k and the
    sample spacing Δ (which must drop out)."""
    N, k, dt, u = 8, 5, 0.01, 0.7
    A, B = _legs(N)
    c = _state(N, 1)
    want = hippo.legs_step_dense(A, B, c, u, float(k), 0.5)
    I = np.eye(N)
    lti = np.linalg.solve(I - dt / 2 * A, (I + dt / 2 * A) @ c + dt * B * u)  # stage 2's bilinear
    return check(
        "Exercise 4.2 — legs_step(A, B, c, u = 0.7, k = 5, Δ = 0.01)", legs_step,
        (A, B, c, u, k, dt), want, rtol=TOL, outputs=("c_k",), index="n",
        hints=[
            Hint(lti, "you stepped by Δ, as stage 2 does for a time-invariant model. LegS's ODE "
                      "is c' = (A c + B u)/t: over one step the change is Δ/t_k = Δ/(kΔ) = 1/k "
                      "times (A c + B u), so Δ drops out (H5). Use A/k and B/k."),
            Hint(_step(A, B, c, u, k / dt), "you used Δ/k as the step: the relative step is "
                                            "Δ/t_k with t_k = kΔ, which is 1/k — no Δ left."),
            Hint(_step(A, B, c, u, k - 1), "off by one in k: t_k = kΔ, so the relative step of "
                                           "step k is 1/k, not 1/(k−1)."),
            Hint(_step(A, B, c, u, k + 1), "off by one in k: the relative step of step k is 1/k "
                                           "(t_k = kΔ), not 1/(k+1)."),
            Hint(_step(-A, B, c, u, k), "the signs of A are flipped: you have the HiPPO paper's "
                                        "formula (its A is the negated one). Here c' = +A c/t + "
                                        "B u/t with A from legs_matrices."),
            Hint(_step(A, B, c, u, k, 0.0), "this is forward Euler (α = 0). Bilinear averages "
                                            "both ends: (I − A/(2k)) c_k = (I + A/(2k)) c_{k−1} "
                                            "+ B u/k."),
            Hint(_step(A, B, c, u, k, 1.0), "this is backward Euler (α = 1); bilinear splits A "
                                            "half and half: (I − A/(2k)) on the left, "
                                            "(I + A/(2k)) on the right."),
            Hint(_step(A, B, c, u * k, k), "the input term is B u/k: it is divided by k like "
                                           "the A term (H5)."),
            Hint(np.linalg.solve(I - A / (2 * k), (I + A / (2 * k)) @ c) + B * u / k,
                 "B u/k goes through the inverse too: c_k = (I − A/(2k))⁻¹ [(I + A/(2k)) c_{k−1} "
                 "+ B u/k]."),
        ])


def check_reconstruct(reconstruct_np):
    """Exercise 4.3: (H4) u(s) ≈ Σ_n c_n √(2n+1) P_n(2s/t − 1)."""
    N, t = 12, 3.0
    sp = hippo.Spec("legs", N=N)
    c = hippo.project(sp, t, ssm.make_signal("sines:f=0.5", 400, 0.01))
    s = np.linspace(0.0, t, 121)
    want = hippo.reconstruct(sp, c, t, s)
    n = np.arange(N)
    legval = np.polynomial.legendre.legval

    def at(x, scale):
        return legval(x, c * scale)

    return check(
        "Exercise 4.3 — reconstruct_np(c, t = 3, s), N = 12", reconstruct_np, (c, t, s), want,
        rtol=TOL, outputs=("u(s)",), index="i",
        hints=[
            Hint(at(2 * s / t - 1, 1.0), "the √(2n+1) of the orthonormal basis is missing: "
                                         "g_n(s) = √(2n+1)·P_n(2s/t − 1) (H2)."),
            Hint(at(2 * s / t - 1, 1 / np.sqrt(2 * n + 1)),
                 "multiply by √(2n+1), do not divide: g_n = √(2n+1)·P_n is orthonormal under "
                 "ds/t (∫ P_n² ds/t = 1/(2n+1))."),
            Hint(at(s / t, np.sqrt(2 * n + 1)), "map [0, t] onto [−1, 1], where the Legendre "
                                                "polynomials live: x = 2s/t − 1, not s/t."),
            Hint(at(1 - 2 * s / t, np.sqrt(2 * n + 1)),
                 "time runs the wrong way: the present s = t is x = +1 and the start s = 0 is "
                 "x = −1, so x = 2s/t − 1."),
            Hint(at(2 * s - 1, np.sqrt(2 * n + 1)), "divide by t: x = 2s/t − 1 (the window "
                                                    "[0, t] grows with t)."),
        ])


def _fast(b, c, u, k, old_inclusive=False, new_from_old=False):
    """The row equation of (H6) with one mistake: the old state's prefix sum inclusive of row n
    (np.cumsum), or the implicit half fed the old state's sum instead of the new one's."""
    y, s_old, s_new = np.empty_like(c), 0.0, 0.0
    for n in range(len(c)):
        d = n + 1.0
        so = s_old + b[n] * c[n] if old_inclusive else s_old
        sn = s_old if new_from_old else s_new
        y[n] = ((k - d / 2) * c[n] + b[n] * (u - so / 2 - sn / 2)) / (k + d / 2)
        s_old += b[n] * c[n]
        s_new += b[n] * y[n]
    return y


def check_legs_step_fast(legs_step_fast):
    """Exercise 4.4: (H6) the bilinear step of 4.2 in O(N) with running prefix sums."""
    # k ≫ N: with the sign of A flipped (a mistake below) the step divides by I + A/(2k), which
    # is singular at row n = 2k − 1 and badly conditioned while k is not large against N
    # (cond ≈ 6e15 at N = 48, k = 37; ≈ 5e2 at k = 200), so that hint would not reproduce.
    N, k, u = 48, 200, 0.3
    A, B = _legs(N)
    b = B
    c = _state(N, 2)
    want = hippo.legs_step_dense(A, B, c, u, float(k), 0.5)
    n = np.arange(N)
    inclusive = -np.diag(n + 1.0) - np.tril(np.outer(b, b), 0)  # S_n includes j = n

    def wrong_length(got):
        g = np.asarray(got)
        if g.ndim == 1 and g.shape[0] in (N - 1, N + 1):
            return ("your result has %d entries, expected N = %d: a prefix sum has one entry per "
                    "n (S_0 = 0 is the empty sum), check the loop's range." % (g.shape[0], N))
        return None

    return check(
        "Exercise 4.4 — legs_step_fast(b, c, u = 0.3, k = 200), N = 48", legs_step_fast,
        (b, c, u, k), want, rtol=TOL, outputs=("c_k",), index="n", diagnose=[wrong_length],
        hints=[
            Hint(_step(inclusive, B, c, u, k),
                 "your prefix sums are inclusive: S_n = Σ_{j<n} b_j x_j stops before n "
                 "(exclusive), because the strict lower triangle of A excludes the diagonal, "
                 "which is −(n+1) alone (H6). Use S_n, then add b_n x_n to the running sum."),
            Hint(_fast(b, c, u, k, old_inclusive=True),
                 "your prefix sum of the old state is inclusive (np.cumsum includes row n): "
                 "S_n(c) = Σ_{j<n} b_j c_j stops before n (H6). Use np.cumsum(b * c) − b * c, or "
                 "add b_n c_n to a running sum after using it."),
            Hint(_fast(b, c, u, k, new_from_old=True),
                 "the implicit half of the step needs the prefix sum of the new coefficients "
                 "y_0 … y_{n−1} (just computed, in the same pass), not of the old ones: keep two "
                 "running sums."),
            Hint(_step(A, B, c, u, k - 1), "off by one in k: the relative step is 1/k."),
            Hint(_step(A, B, c, u, k + 1), "off by one in k: the relative step is 1/k."),
            Hint(_step(-A, B, c, u, k), "the signs of A are flipped: A x = −((n+1) x_n + "
                                        "b_n S_n(x)) (H6), with a minus."),
            Hint(_step(A, B, c, u, k, 0.0), "this is forward Euler (α = 0): the step must also "
                                            "solve (I − A/(2k)) y = r, row by row."),
        ])
