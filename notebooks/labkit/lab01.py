"""Checks of notebook 01 (stage 1: the continuous model). Each check builds its own inputs,
asks the library (ssmlab) for the answer, and lists the mistakes it knows how to explain."""
import numpy as np
import scipy.linalg

from . import Hint, check, ssmlab as ssm


def check_oscillator(oscillator):
    """Exercise 1.1: oscillator(omega, zeta) -> (A, B, C) of x'' + 2ζω x' + ω² x = ω² u."""
    w, z = 3.0, 0.2
    m = ssm.damped_oscillator(w, z)
    A, B, C = m.A, m.B, m.C
    return check(
        "Exercise 1.1 — oscillator(ω = 3, ζ = 0.2)", oscillator, (w, z), (A, B, C),
        rtol=1e-12, outputs=("A", "B", "C"),
        hints=[
            Hint((A, np.array([0.0, 1.0]), C),
                 "B = [0, 1]: the input enters the velocity equation as ω²·u (that is what gives "
                 "a unit DC gain: a constant u = 1 settles at position 1)."),
            Hint((np.array([[0, 1], [-w * w, 2 * z * w]]), B, C),
                 "the damping term has the wrong sign: friction is −2ζω·x2, so "
                 "A[1, 1] = −2ζω (a positive entry makes the oscillation grow)."),
            Hint((A.T, B, C),
                 "A is transposed: row n of A is the equation of x_n', so x1' = x2 gives row 0 = "
                 "[0, 1]."),
            Hint((A, B, np.array([0.0, 1.0])),
                 "C reads the velocity: the output is the position, C = [1, 0]."),
        ])


def _free_model():
    return ssm.random_stable(4, seed=21), np.array([1.0, -0.5, 0.25, 2.0]), 0.7


def check_free_response(free_response_np):
    """Exercise 1.2: free_response_np(A, x0, t) = e^{At} x0 by eigen-decomposition."""
    m, x0, t = _free_model()
    want = ssm.free_response(m, x0, t, 2).x[:, 1]  # samples at 0 and t
    lam, V = np.linalg.eig(m.A)
    no_t = (V @ np.diag(np.exp(lam)) @ np.linalg.inv(V) @ x0).real
    v_transpose = (V @ np.diag(np.exp(lam * t)) @ V.T @ x0).real
    elementwise = np.exp(m.A * t) @ x0
    # Eigen-decomposition in double: error ~ cond(V)·ε; the random model's basis is mildly
    # non-normal (cond ≲ 10), so 1e-10 leaves ample room.
    return check(
        "Exercise 1.2 — free_response_np(A, x0, t = 0.7)", free_response_np, (m.A, x0, t), want,
        rtol=1e-10, outputs=("x(t)",),
        hints=[
            Hint(no_t, "you computed e^{A}·x0: the exponent is A·t, so each mode is e^{λ t}."),
            Hint(v_transpose, "V is not orthogonal for a general A: use np.linalg.inv(V), not "
                              "V.T (A = V Λ V⁻¹)."),
            Hint(elementwise, "np.exp(A * t) exponentiates each entry; e^{At} is the matrix "
                              "exponential: V · diag(e^{λ t}) · V⁻¹."),
        ])


def _dc_model():
    m = ssm.random_stable(5, seed=8)
    return ssm.Model(m.A, m.B, m.C, 0.3, "random with D = 0.3")


def check_dc_gain(dc_gain):
    """Exercise 1.3: dc_gain(A, B, C, D): the output a constant input u = 1 settles at."""
    m = _dc_model()
    # The library's answer, measured: hold u = 1 for 80 s. The slowest mode decays at least
    # like e^{−0.5 t} (decay_min of random_stable), so after 80 s it is below e^{−40} ≈ 4e-18.
    want = ssm.simulate_held(m, np.ones(800), 0.1).y[-1]
    no_d = want - m.D
    wrong_sign = m.D + m.C @ np.linalg.solve(m.A, m.B)
    return check(
        "Exercise 1.3 — dc_gain(A, B, C, D = 0.3)", dc_gain, (m.A, m.B, m.C, m.D), want,
        rtol=1e-9, outputs=("y∞",),
        hints=[
            Hint(no_d, "the skip term is missing: y = C x + D u, so y∞ = D − C A⁻¹ B."),
            Hint(wrong_sign, "check the sign: at rest x' = 0 = A x∞ + B gives x∞ = −A⁻¹ B."),
        ])
