"""Checks of notebook 05 (stage 6: the S4 kernel, MATH.md S1–S5).

Conventions, as in the library (lib/include/ssm/s4.hpp): the roots of unity are z_j = e^{−2πij/L}
(S2), so K̂(z_j) = Σ_k K̄_k z_j^k is exactly np.fft.fft(K̄)[j]; g(z) = (2/Δ)(1 − z)/(1 + z) (S3);
a model keeps the Nh = N/2 eigenvalues with Im λ > 0, and every sum over modes runs over both
halves of each conjugate pair (S5). Several hints below name a flip of one of these.

The exercises use HiPPO-LegS with N = 16 (Nh = 8), Δ = 0.01 and L = 255. L is odd so that no
root of unity is z = −1 (where g and 2/(1 + z) are infinite; the library handles that point
apart for even L), and so that np.fft.irfft without n= visibly returns the wrong length. With
Δ = 0.01 the kernel is still alive at k = L (LegS's slowest mode keeps e^{−LΔ} ≈ 8 % of it), so
forgetting C̄' = C̃(I − Ā^L) changes the answer by far more than the tolerance.
"""
import numpy as np
import scipy.linalg

from . import Hint, check, ssmlab as ssm

s4 = ssm.s4

# Every answer here is a few O(N³) or O(N L) evaluations in double. The library and NumPy agree
# to ~1e-14 relative (measured ≤ 3e-14 for the kernel, the DFT and C̄'), so 1e-9 is loose for
# rounding and still far below every mistake (all of order 1e-3 or more).
TOL = 1e-9
N, DT, L = 16, 0.01, 255


def _model():
    d = s4.nplr_legs(N)
    m = s4.to_dplr(d)
    return d, m, m.Lambda, m.P[:, 0], m.B


def _readout(seed=3):
    return s4.random_C(1, N // 2, seed)[0]


def _z(L, sign=-1):
    return np.exp(sign * 2j * np.pi * np.arange(L) / L)


def _g(z, dt):
    return 2 / dt * (1 - z) / (1 + z)


def _pair_sum(v, lam, g):
    """Σ over both halves (S5): v_n/(g − λ_n) + conj(v_n)/(g − conj(λ_n)), one entry per g."""
    g = np.asarray(g)[:, None]
    return (v / (g - lam) + np.conj(v) / (g - np.conj(lam))).sum(axis=1)


# ---------------------------------------------------------------------------------------------
# Exercise 5.1 — the NPLR of LegS (S1)

def _sorted(lam):
    return np.lexsort((lam.real, lam.imag))


def _nplr_summary(out):
    """What the check compares, unchanged by the freedom eig has (the order of the eigenvalues,
    the phase of each eigenvector): the eigenvalues sorted by Im λ; V (Λ − P̃P̃*) V*, which must
    be A; and conj(P̃_n)·B̃_n (a phase e^{iφ} of V_n multiplies P̃_n and B̃_n by e^{−iφ})."""
    try:
        lam, Pt, Bt, V = (np.asarray(x) for x in out)
    except (TypeError, ValueError):
        raise TypeError("nplr_legs_np must return four arrays (Lam, Pt, Bt, V)") from None
    Pt, Bt = Pt.reshape(-1), Bt.reshape(-1)
    if not (lam.ndim == 1 and V.shape == (len(V), lam.size) and Pt.shape == lam.shape == Bt.shape):
        raise ValueError("shapes do not fit together: Lam %s, Pt %s, Bt %s, V %s (expected "
                         "(N,), (N,), (N,), (N, N))" % (lam.shape, Pt.shape, Bt.shape, V.shape))
    o = _sorted(lam)
    rec = (V @ (np.diag(lam) - np.outer(Pt, np.conj(Pt))) @ np.conj(V).T).real
    return lam[o], rec, (np.conj(Pt) * Bt)[o]


def _nplr_variant(A, P, B, sign=1.0, conj=True):
    """The NPLR by np.linalg.eig with one ingredient changed (for the hints)."""
    lam, V = np.linalg.eig(A + sign * np.outer(P, P))
    Vh = np.conj(V).T if conj else V.T
    return lam, Vh @ P, Vh @ B, V


def check_nplr(nplr_legs_np):
    """Exercise 5.1: (Λ, P̃, B̃, V) for all N eigenvalues, from S = A + PPᵀ."""
    d, m, lam, P, B = _model()
    A, Bl = ssm.hippo.legs(N)
    lam_f = np.r_[lam, np.conj(lam)]
    Pf, Bf = np.r_[P, np.conj(P)], np.r_[B, np.conj(B)]
    o = _sorted(lam_f)
    # The reconstruction's truth is A itself (hippo.legs, stage 5), not the library's NPLR.
    want = (lam_f[o], A, (np.conj(Pf) * Bf)[o])
    p = np.sqrt(np.arange(N) + 0.5)

    def eigenvalues(got):
        ev = np.asarray(got[0])
        if ev.shape == (N // 2,):
            return ("you returned Nh = %d eigenvalues: here return all N = %d (both halves of "
                    "each pair); the notebook keeps the Im λ > 0 half afterwards (S5)." % (N // 2, N))
        if ev.shape != (N,):
            return None
        if np.max(np.abs(ev.imag)) < 1e-8 * np.max(np.abs(ev)):
            srt = np.sort(ev.real)
            if np.allclose(srt, -np.arange(N, 0, -1), atol=1e-6):
                return ("your eigenvalues are −1, …, −N: those of A itself. A is not normal (its "
                        "eigenvectors are nearly parallel: cond(V) ≈ 1e11 at N = 16), so diagonalize "
                        "the normal S = A + PPᵀ instead (S1).")
            if np.allclose(srt, np.arange(N), atol=1e-6):
                return ("your eigenvalues are 0, …, N − 1: with P = B = √(2n+1), S = A + PPᵀ is "
                        "triangular, not normal. The low-rank factor is P_n = √(n + ½) (S1).")
            return "your eigenvalues are all real: S is not the normal matrix of (S1)."
        if np.max(np.abs(ev.real + 0.5)) > 1e-6 * np.max(np.abs(ev)):
            return ("S = A + PPᵀ with P_n = √(n + ½) is −½ I plus a skew-symmetric matrix, so every "
                    "eigenvalue has Re λ = −½; yours range over Re λ ∈ [%.3g, %.3g]. Check the sign "
                    "(A + PPᵀ) and P." % (ev.real.min(), ev.real.max()))
        return None

    return check(
        "Exercise 5.1 — nplr_legs_np(N = 16)", nplr_legs_np, (N,), want,
        call=lambda f: _nplr_summary(f(N)), rtol=TOL, diagnose=[eigenvalues], index="n",
        outputs=("λ (sorted by Im λ)", "V (Λ − P̃P̃*) V* (must be A)", "conj(P̃_n)·B̃_n"),
        hints=[
            Hint(lambda n: _nplr_summary(_nplr_variant(A, p, Bl, conj=False)),
                 "P̃ = V* P and B̃ = V* B use the conjugate transpose V* = V.conj().T; with V.T "
                 "you get conj(P̃) and conj(B̃)."),
            Hint(lambda n: _nplr_summary(_nplr_variant(A, p, Bl, sign=-1.0)),
                 "S = A + PPᵀ (plus): LegS's A is −½ I + skew − PPᵀ, so P Pᵀ must be added back."),
        ])


# ---------------------------------------------------------------------------------------------
# Exercise 5.2 — the Cauchy sum with conjugate pairs (S4, S5)

def check_cauchy(cauchy):
    """Exercise 5.2: Σ_n [v_n/(g_j − λ_n) + conj(v_n)/(g_j − conj(λ_n))] at every point g_j."""
    _, m, lam, P, B = _model()
    Lc = 63  # odd: no point z = −1
    v = _readout(5) * B
    g = _g(_z(Lc), DT)
    # The library's answer: its kernel generator runs exactly these sums. For the diagonal model
    # (Λ, B̃ = 1) with C̄' = v, DFT(K̄)_j = K̂(z_j) = (2/(1 + z_j)) Σ_pairs v/(g_j − λ) (S3), so the
    # sums are (1 + z_j)/2 · np.fft.fft(K̄)_j.
    diag = s4.Dplr(lam, None, np.ones_like(lam))
    K = s4.CauchyKernel64(diag, Lc)(DT, v)
    want = (1 + _z(Lc)) / 2 * np.fft.fft(K)
    half = (v / (g[:, None] - lam)).sum(axis=1)

    def wrong_axis(got):
        s = np.shape(got)
        if s == (N // 2,):
            return ("your result has one entry per mode (%d): sum over the modes n, keeping one "
                    "entry per point g_j (%d)." % (N // 2, Lc))
        if s in ((Lc, N // 2), (N // 2, Lc)):
            return ("your result is the table of terms v_n/(g_j − λ_n), shape %s: sum it over the "
                    "modes n (one entry per point g_j)." % (s,))
        return None

    return check(
        "Exercise 5.2 — cauchy(v, lam, g), Nh = 8 modes, 63 points", cauchy, (v, lam, g), want,
        rtol=TOL, outputs=("cauchy(v, lam, g)",), index="j", diagnose=[wrong_axis],
        hints=[
            Hint(half, "the conjugate half is missing: each kept mode stands for a pair (S5), so "
                       "add conj(v_n)/(g − conj(λ_n)) for every n."),
            Hint(2 * half.real, "2·Re is not the pair sum here: on the unit circle g is purely "
                                "imaginary, so conj(v)/(g − conj(λ)) is not the conjugate of "
                                "v/(g − λ). Add the partner term itself (s4.hpp explains why)."),
            Hint(2 * half, "doubling the kept half is not the pair: the partner has the pole "
                           "conj(λ_n) and the weight conj(v_n)."),
            Hint((v / (g[:, None] - lam) + v / (g[:, None] - np.conj(lam))).sum(axis=1),
                 "conjugate the weight too: the partner term is conj(v_n)/(g − conj(λ_n))."),
            Hint((v / (g[:, None] - lam) + np.conj(v) / (g[:, None] - lam)).sum(axis=1),
                 "the partner's pole is conj(λ_n): conj(v_n)/(g − conj(λ_n))."),
            Hint(-want, "the terms are v_n/(g − λ_n), from the resolvent (g − Ã)⁻¹: you have "
                        "λ_n − g."),
        ])


# ---------------------------------------------------------------------------------------------
# Exercise 5.3 — K̂(z_j) by Woodbury (S2–S4)

def _khat(cp, P, B, lam, dt, L, *, zsign=-1, factor=2.0, wsign=-1.0, one=1.0, gscale=None,
          swap=False, k11_noconj=False, lowrank=True):
    """K̂(z_j) for j < L with one ingredient changed (for the hints)."""
    z = _z(L, zsign)
    g = _g(z, dt) if gscale is None else gscale * (1 - z) / (1 + z)
    Pa, Pb = (np.conj(P), P) if swap else (P, np.conj(P))
    k00 = _pair_sum(cp * B, lam, g)
    k01 = _pair_sum(cp * Pa, lam, g)
    k10 = _pair_sum(Pb * B, lam, g)
    k11 = _pair_sum((P if k11_noconj else np.conj(P)) * P, lam, g)
    inner = k00 + wsign * k01 * k10 / (one + k11) if lowrank else k00
    return factor / (1 + z) * inner


def check_khat(khat):
    """Exercise 5.3: K̂(z_j) = (2/(1 + z_j)) [k₀₀ − k₀₁ k₁₀ / (1 + k₁₁)] for j < L."""
    _, m, lam, P, B = _model()
    C = _readout()
    cp = s4.c_prime(m, C, DT, L)
    # The library's kernel K̄, and its DFT: K̂(z_j) = DFT(K̄)_j (S2).
    want = np.fft.fft(s4.dplr_kernel(m, C, DT, L))
    args = (cp, P, B, lam, DT, L)
    return check(
        "Exercise 5.3 — khat(Cp, Pt, Bt, lam, dt = 0.01, L = 255)", khat, args, want,
        rtol=TOL, outputs=("K̂(z_j)",), index="j",
        hints=[
            Hint(_khat(*args, zsign=+1),
                 "your K̂ is the complex conjugate of the right one: z_j = e^{−2πij/L} (minus), "
                 "the convention of np.fft.fft, so that K̂(z_j) = DFT(K̄)_j (S2)."),
            Hint(_khat(*args, factor=1.0, one=1.0) * (1 + _z(L)),
                 "the bilinear factor 2/(1 + z) is missing (S3): K̂ = (2/(1 + z))·[…]."),
            Hint(_khat(*args, factor=1.0), "the factor is 2/(1 + z), not 1/(1 + z) (S3)."),
            Hint(_khat(*args, wsign=+1.0),
                 "wrong sign in Woodbury: (g − Λ + P̃P̃*)⁻¹ = R − R P̃ (1 + P̃*R P̃)⁻¹ P̃* R, so "
                 "K̂ ∝ k₀₀ − k₀₁ k₁₀ / (1 + k₁₁) (minus) (S4)."),
            Hint(_khat(*args, one=0.0), "the Woodbury denominator is 1 + k₁₁, not k₁₁ (S4)."),
            Hint(_khat(*args, swap=True),
                 "P̃ and conj(P̃) are swapped: k₀₁ = Σ C̄'_n P̃_n /(g − λ_n) and "
                 "k₁₀ = Σ conj(P̃_n) B̃_n /(g − λ_n) (S4): P̃* (conjugated) sits on the left."),
            Hint(_khat(*args, k11_noconj=True),
                 "k₁₁ = Σ conj(P̃_n) P̃_n /(g − λ_n) = Σ |P̃_n|²/(g − λ_n): conjugate one factor."),
            Hint(_khat(*args, lowrank=False),
                 "this is the diagonal part alone: the low-rank correction − k₀₁ k₁₀ / (1 + k₁₁) "
                 "is missing (S4)."),
            Hint(_khat(*args, gscale=1.0), "g(z) = (2/Δ)(1 − z)/(1 + z): the 2/Δ is missing (S3)."),
        ])


# ---------------------------------------------------------------------------------------------
# Exercise 5.4 — C̄' = C̃ (I − Ā^L) (S2)

def _c_prime(C, lam, P, dt, L, *, power=None, conj_half=True, lr_sign=-1.0, transpose_only=False,
             method="bilinear", plus=False, no_identity=False, half_only=False):
    """C̄' by a dense full complex Ā with one ingredient changed (for the hints)."""
    if half_only:
        lf, Pf, Cf = lam, P, C
    else:
        lf = np.r_[lam, np.conj(lam)]
        Pf = np.r_[P, np.conj(P) if conj_half else P]
        Cf = np.r_[C, np.conj(C)]
    Pc = Pf if transpose_only else np.conj(Pf)
    At = np.diag(lf) + lr_sign * np.outer(Pf, Pc)
    I = np.eye(len(lf))
    if method == "zoh":
        Ab = scipy.linalg.expm(dt * At)  # not by eig: Ã is as far from normal as LegS's A
    else:
        Ab = np.linalg.solve(I - dt / 2 * At, I + dt / 2 * At)
    AL = np.linalg.matrix_power(Ab, L if power is None else power)
    if no_identity:
        out = Cf @ AL
    else:
        out = Cf @ (I + AL if plus else I - AL)
    return out[: len(lam)]


def check_c_prime(c_prime_np):
    """Exercise 5.4: C̄' = C̃ (I − Ā^L) (Nh,) with the bilinear Ā of the full model."""
    _, m, lam, P, B = _model()
    C = _readout()
    want = s4.c_prime(m, C, DT, L)
    args = (C, lam, P, DT, L)

    def shape(got):
        if np.shape(got) == (N,):
            return ("your C̄' has N = %d entries: it lives in the DPLR basis like C̃ — keep the "
                    "first Nh = %d (the second half is their conjugate, S5)." % (N, N // 2))
        return None

    return check(
        "Exercise 5.4 — c_prime_np(C, lam, Pt, dt = 0.01, L = 255)", c_prime_np, args, want,
        rtol=TOL, outputs=("C̄'",), index="n", diagnose=[shape],
        hints=[
            Hint(C, "your C̄' is C̃ itself: C̄' = C̃ (I − Ā^L) (S2)."),
            Hint(_c_prime(*args, power=L - 1), "off by one: the power is Ā^L (z_j^L = 1 makes the "
                                               "truncation at L terms exact), not Ā^(L−1)."),
            Hint(_c_prime(*args, power=L + 1), "off by one: the power is Ā^L, not Ā^(L+1)."),
            Hint(_c_prime(*args, no_identity=True), "this is C̃ Ā^L: C̄' = C̃ (I − Ā^L)."),
            Hint(_c_prime(*args, plus=True), "C̄' = C̃ (I − Ā^L) (minus): it removes the terms "
                                             "past k = L − 1 from the generating function (S2)."),
            Hint(_c_prime(*args, half_only=True),
                 "you used the kept half alone: the low-rank term P̃P̃* couples each mode with "
                 "the conjugate half, so build the full model: Λ_f = [Λ, conj Λ], "
                 "P_f = [P̃, conj P̃], C_f = [C̃, conj C̃]."),
            Hint(_c_prime(*args, conj_half=False),
                 "the second half of P_f is conj(P̃), not P̃: the full P = V P_f is real."),
            Hint(_c_prime(*args, lr_sign=+1.0), "Ã = Λ − P̃P̃* (minus) (S1)."),
            Hint(_c_prime(*args, transpose_only=True),
                 "P̃P̃* is the outer product with the conjugate: np.outer(P, P.conj())."),
            Hint(_c_prime(*args, method="zoh"),
                 "this Ā is ZOH's e^{ΔÃ}; S4's kernel path uses the bilinear Ā = (I − Δ/2 Ã)⁻¹ "
                 "(I + Δ/2 Ã) (S3)."),
        ])


# ---------------------------------------------------------------------------------------------
# Exercise 5.5 — K̄ by one inverse FFT, against powers of Ā

def check_kernel(kernel_np):
    """Exercise 5.5: K̄ (L,) from C̃ through C̄', K̂(z_j) and one inverse FFT."""
    _, m, lam, P, B = _model()
    C = _readout()
    # The truth: stage 4's K̄_k = C Ā^k B̄ by L mat-vecs on the same model as a dense real one.
    want = ssm.kernel(ssm.make_ssm(s4.to_real(m, C), DT, "bilinear"), L)
    args = (C, lam, P, B, DT, L)
    no_cp = np.fft.irfft(_khat(C, P, B, lam, DT, L)[: L // 2 + 1], n=L)
    reversed_ = np.roll(want[::-1], 1)  # K̄_{(−k) mod L}

    def length(got):
        n = np.shape(got)
        if n == (L - 1,):
            return ("your K̄ has L − 1 = %d samples: np.fft.irfft(X) assumes an even length "
                    "2(len(X) − 1) unless told otherwise; pass n=L." % (L - 1))
        if n == (2 * (L - 1),):
            return ("your K̄ has 2(L − 1) = %d samples: np.fft.irfft takes the half spectrum "
                    "(j ≤ L/2) and the length: np.fft.irfft(Khat[: L // 2 + 1], n=L)." % (2 * L - 2))
        return None

    return check(
        "Exercise 5.5 — kernel_np(C, lam, Pt, Bt, dt = 0.01, L = 255) vs powers of Ā", kernel_np,
        args, want, rtol=TOL, outputs=("K̄",), diagnose=[length],
        hints=[
            Hint(no_cp, "you used C̃ where C̄' = C̃ (I − Ā^L) belongs (S2): without it the "
                        "generating function sums all k ≥ 0 and the tail past L wraps around "
                        "onto K̄ (the kernel is still alive at k = L here)."),
            Hint(reversed_, "your K̄ runs backwards in time (K̄_{−k mod L}): K̂(z_j) is the DFT "
                            "np.fft.fft(K̄)[j] (z_j = e^{−2πij/L}), so invert it with np.fft.ifft "
                            "or np.fft.irfft, not with fft again."),
            Hint(L * want, "np.fft.ifft and irfft already divide by L; you multiplied it back "
                           "(or summed the inverse DFT by hand without the 1/L)."),
        ])
