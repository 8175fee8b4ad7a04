"""Checks of notebook 10 (stage 9: Mamba-2's state space duality, docs/MATH.md X1–X3, with M5).

Conventions, as in the library (lib/include/ssm/ssd.hpp), for one sequence (no batch axis) and
one group of B, C shared by every head: x (L, H, P), the step Δ (L, H) — here already positive,
the softplus done (the library's delta_softplus=False) — A (H,) with A_h < 0, B and C (L, N),
states (H, P, N). Each head h is the selective scan (M3) with the scalar decay a_t = e^{Δ_t A_h}:
    H_t = a_t H_{t−1} + Δ_t B_t x_tᵀ  (an N×P matrix),   y_t = H_tᵀ C_t              (X1)
and, unrolled from H = 0, the masked attention y = M x with                        (X2)
    M[t, s] = C_t·B_s Δ_s Π_{s<r≤t} a_r  for s ≤ t,   0 above the diagonal.

Every expected answer comes from ssmlab.ssd: M from ssd_matrix, y and the final state from the
float64 recurrence ssd_reference, the ranks from offdiag_rank.
"""
import numpy as np

from . import Hint, check, ssmlab as ssm

ssd = ssm.ssd

# Every answer is at most a few hundred multiply-adds and exps in double per entry; NumPy and the
# library agree to ~1e-15 relative (measured 2e-16 for M, 4e-16 for the chunked outputs against
# the recurrence), so 1e-9 is loose for rounding and far below every listed mistake (all ≥ 1e-2).
TOL = 1e-9
L_, H_, P_, N_ = 40, 3, 4, 5  # L ≠ H ≠ P ≠ N, so a transposed array cannot broadcast silently
CHUNK = 16  # L = 40: chunks of 16, 16 and 8 steps (a shorter last chunk too)
CHUNKS = (1, CHUNK, L_)  # Q = 1 is the recurrence, Q = L the quadratic (attention) form alone


def _softplus(x):
    return np.logaddexp(0.0, x)


def _problem():
    """x (L, H, P), Δ (L, H) > 0, A (H,), B, C (L, N): the library's Mamba-2-like generator, with
    the heads' Δ around 0.05, 0.15 and 0.5 (Mamba-2's [1e-3, 1e-1] barely decays over 40 steps,
    and a mask ≈ 1 would hide the mistakes that get the decay wrong)."""
    p = ssd.random_problem(L=L_, H=H_, P=P_, N=N_, G=1, seed=10)
    bias = ssm.mamba.inverse_softplus(np.geomspace(0.05, 0.5, H_))
    dt = _softplus(p["delta"] + bias)
    return p["x"], dt, p["A"], p["B"][:, 0], p["C"][:, 0]


def _library_M(dt, a, B, C):
    """M (L, L) of one head from the library: step Δ (L,), A_h = a, B, C (L, N)."""
    L = len(dt)
    return ssd.ssd_matrix(np.zeros((L, 1, 1)), dt[:, None], np.array([a]), B[:, None], C[:, None],
                          delta_softplus=False, head=0)


def _library_scan(x, dt, A, B, C):
    """(y (L, H, P), h_last (H, P, N)) of the recurrence (X1) in float64, from H = 0."""
    return ssd.ssd_reference(x, dt, A, B[:, None], C[:, None], delta_softplus=False,
                             return_state=True)


def _matrix_variants(dt, a, B, C):
    """The known wrong M of one head, each from the same inputs."""
    cs = np.cumsum(dt * a)  # inclusive: cs_t = Σ_{r≤t} Δ_r A_h
    seg = cs[:, None] - cs[None, :]  # Σ_{s<r≤t} Δ_r A_h
    low = np.tril(np.ones((len(dt), len(dt))))
    CB = C @ B.T
    t = np.arange(len(dt))
    return {
        "Δ_t": low * np.exp(seg) * CB * dt[:, None],
        "diagonal decayed": low * np.exp(seg + (dt * a)[None, :]) * CB * dt[None, :],
        "step t missing": low * np.exp(seg - (dt * a)[:, None]) * CB * dt[None, :],
        "upper": np.exp(seg) * CB * dt[None, :],
        "B, C swapped": low * np.exp(seg) * (B @ C.T) * dt[None, :],
        "no Δ": low * np.exp(seg) * CB,
        "A (t − s)": low * np.exp(a * (t[:, None] - t[None, :])) * CB * dt[None, :],
    }


_MATRIX_MESSAGES = {
    "Δ_t": "each column s is weighted by Δ_s, the step of the input x_s it carries (B̄_s = Δ_s B_s, "
           "D6): M[t, s] = C_t·B_s Δ_s Π a_r — yours uses the output's Δ_t (multiply by dt[None, :]).",
    "diagonal decayed": "the diagonal is decayed: the product runs over s < r ≤ t, so M[t, t] = C_t·B_t Δ_t "
                        "with no a_t — the input enters the state at step t after a_t has acted (X2).",
    "step t missing": "the decay of step t itself is missing: M[t, s] includes a_t for s < t "
                      "(Π_{s<r≤t}, X2) — exp(cs_t − cs_s) with the inclusive cumulative sum cs.",
    "upper": "the upper triangle must be zero: y_t depends only on x_s with s ≤ t (causal). "
             "Multiply by np.tril(np.ones((L, L))) — and mind that exp(cs_t − cs_s) > 1 up there.",
    "B, C swapped": "B and C are swapped: the output reads the state with C_t, the input writes it with B_s "
                    "(M[t, s] = C_t·B_s …, i.e. C @ B.T, not B @ C.T).",
    "no Δ": "Δ_s is missing: the input enters the state as Δ_s B_s x_s (B̄ = ΔB, D6).",
    "A (t − s)": "the decay is exp(Σ_{s<r≤t} Δ_r A_h), a sum of the steps in between (each token has its "
                 "own Δ_r), not exp(A_h (t − s)): use the cumulative sum of Δ·A_h.",
}


def _shape_hint(want_shape, what):
    def shape(got):
        s = np.shape(got)
        if s and s != want_shape and np.size(got) != np.prod(want_shape):
            return "%s has shape %s; expected %s." % (what, s, want_shape)
        return None
    return shape


# ---------------------------------------------------------------------------------------------
# Exercise 10.1 — the matrix M of one head (X2)

def check_matrix(ssd_matrix_np):
    """Exercise 10.1: M (L, L) of one head from its Δ (L,), A_h, B, C (L, N)."""
    _, dt, A, B, C = _problem()
    h = 1
    args = (dt[:, h].copy(), float(A[h]), B, C)
    want = _library_M(*args)
    return check(
        "Exercise 10.1 — ssd_matrix_np(dt, a, B, C), one head, L = 40, N = 5",
        ssd_matrix_np, args, want, rtol=TOL, outputs=("M",),
        diagnose=[_shape_hint((L_, L_), "M")],
        hints=[Hint(v, _MATRIX_MESSAGES[k]) for k, v in _matrix_variants(*args).items()])


# ---------------------------------------------------------------------------------------------
# Exercise 10.2 — a 3×3 M by hand (X1, X2)

HAND_A = -float(np.log(2.0))  # A_h = −ln 2: a_t = e^{Δ_t A_h} = 2^{−Δ_t}
HAND_DT = np.array([1.0, 2.0, 1.0])  # so a = (1/2, 1/4, 1/2)
HAND_B = np.array([1.0, 2.0, -1.0])
HAND_C = np.array([2.0, 1.0, 1.0])
HAND_X = np.array([1.0, -1.0, 2.0])


def check_by_hand(M_by_hand):
    """Exercise 10.2: (M (3, 3), y (3,)) for N = 1, P = 1 and the numbers above."""
    B, C = HAND_B[:, None], HAND_C[:, None]
    M = _library_M(HAND_DT, HAND_A, B, C)
    y = _library_scan(HAND_X[:, None, None], HAND_DT[:, None], np.array([HAND_A]), B, C)[0][:, 0, 0]
    hints = [Hint((v, v @ HAND_X), _MATRIX_MESSAGES[k])
             for k, v in _matrix_variants(HAND_DT, HAND_A, B, C).items()]
    hints.append(Hint((M, M.T @ HAND_X), "y = M x sums along a row: y_t = Σ_s M[t, s] x_s (yours is Mᵀ x)."))
    return check(
        "Exercise 10.2 — M_by_hand(): a = (1/2, 1/4, 1/2), B = (1, 2, −1), C = (2, 1, 1), x = (1, −1, 2)",
        M_by_hand, (), (M, y), rtol=TOL, outputs=("M", "y"), hints=hints)


# ---------------------------------------------------------------------------------------------
# Exercise 10.3 — the chunked SSD algorithm (X3)

def _chunked(x, dt, A, B, C, Q, carry=True, decay_in=True, decay_carry=True, decay_to_end=True,
             mask_dt_t=False):
    """The chunked algorithm with the known mistakes as switches (all True/False = correct)."""
    L, H, P = x.shape
    N = B.shape[1]
    y = np.empty((L, H, P))
    hs = np.empty((H, P, N))
    for h in range(H):
        S = np.zeros((N, P))
        for s0 in range(0, L, Q):
            sl = slice(s0, min(s0 + Q, L))
            d, xc, Bc, Cc = dt[sl, h], x[sl, h], B[sl], C[sl]
            cs = np.cumsum(d * A[h])
            Lm = np.tril(np.exp(cs[:, None] - cs[None, :]))
            w = d[:, None] if mask_dt_t else d[None, :]
            dx = d[:, None] * xc
            y[sl, h] = (Lm * (Cc @ Bc.T) * w) @ xc
            if carry:
                y[sl, h] += (np.exp(cs)[:, None] if decay_in else 1.0) * (Cc @ S)
            to_end = np.exp(cs[-1] - cs)[:, None] if decay_to_end else 1.0
            S = (np.exp(cs[-1]) if decay_carry else 1.0) * (S if carry else 0.0) + Bc.T @ (to_end * dx)
        hs[h] = S.T
    return y, hs


_CHUNK_MESSAGES = {
    "no carry": "the chunks do not pass the state on: every chunk after the first starts from H = 0. "
                "Add diag(e^{cs}) C_c H_prev to each chunk's outputs (X3) and carry H forward.",
    "carry not decayed in chunk": "the state entering a chunk decays through it: step i of the chunk reads "
                                  "e^{cs_i} C_i·H_prev, not C_i·H_prev (cs inclusive, X3).",
    "carry not decayed across": "the state passed on must decay over the whole chunk: H = e^{cs_{Q−1}} H_prev + …, "
                                "not H_prev + … (X3).",
    "inputs not decayed to end": "each input of the chunk decays from its step to the chunk's end before it is "
                                 "passed on: H += B_cᵀ diag(e^{cs_{Q−1} − cs}) (Δx)_c (X3).",
    "Δ_t": "inside a chunk each column s is weighted by Δ_s (the input's step), not the row's Δ_t (X2).",
}


def _chunk_variants(x, dt, A, B, C):
    def at(**kw):
        ys = [_chunked(x, dt, A, B, C, Q, **kw) for Q in CHUNKS]
        return tuple(y for y, _ in ys) + (ys[1][1],)
    return {
        "no carry": at(carry=False),
        "carry not decayed in chunk": at(decay_in=False),
        "carry not decayed across": at(decay_carry=False),
        "inputs not decayed to end": at(decay_to_end=False),
        "Δ_t": at(mask_dt_t=True),
    }


def check_chunked(ssd_chunked_np):
    """Exercise 10.3: (y (L, H, P), h_last (H, P, N)) by chunks of Q, for Q = 1, 16 and L."""
    x, dt, A, B, C = _problem()
    y, h = _library_scan(x, dt, A, B, C)
    want = (y, y, y, h)
    variants = _chunk_variants(x, dt, A, B, C)

    def run(fn):
        outs = [fn(x, dt, A, B, C, Q) for Q in CHUNKS]
        for o in outs:
            if not isinstance(o, (tuple, list)) or len(o) != 2:
                raise TypeError("ssd_chunked_np must return two arrays: (y, h_last)")
        return tuple(o[0] for o in outs) + (outs[1][1],)

    def where(got):
        g = [np.asarray(v, dtype=float) for v in got]
        if any(v.shape != w.shape or not np.all(np.isfinite(v)) for v, w in zip(g, want)):
            return None
        scale = np.max(np.abs(y))
        for v in variants.values():
            if all(np.max(np.abs(a - b)) <= 1e-9 * max(scale, 1.0) for a, b in zip(g, v)):
                return None  # a known mistake: its hint says more
        for Q, yq in zip(CHUNKS, g[:3]):
            bad = np.any(np.abs(yq - y) > TOL * scale, axis=(1, 2))
            if not bad.any():
                continue
            t = int(np.argmax(bad))
            if Q == 1:
                return ("wrong with Q = 1 (one step per chunk: the plain recurrence), from t = %d. "
                        "Check the state update H = a_t H + Δ_t B_t x_tᵀ." % t)
            if Q == L_:
                return ("right with Q = 1 but wrong with Q = L = %d (one chunk: the masked "
                        "attention form alone), from t = %d: check the mask and C Bᵀ." % (L_, t))
            c = t // Q
            if c == (L_ - 1) // Q and L_ % Q:
                return ("with Q = %d, chunks 0–%d are right and the last chunk, which is shorter "
                        "(steps %d–%d), is wrong from t = %d: slice it to min(s0 + Q, L) and "
                        "check the state carried into it." % (Q, c - 1, c * Q, L_ - 1, t))
            if t % Q == 0:
                return ("with Q = %d, chunks 0–%d are right and chunk %d is wrong from its first step "
                        "(t = %d): check the state carried into it." % (Q, c - 1, c, t))
            return ("with Q = %d, wrong from t = %d inside chunk %d (not at its start): check how "
                    "a chunk's steps are combined." % (Q, t, c))
        return None

    names = ("y (Q = 1)", "y (Q = 16)", "y (Q = 40)", "h_last (Q = 16)")
    return check(
        "Exercise 10.3 — ssd_chunked_np(x, dt, A, B, C, Q), L = 40, H = 3, P = 4, N = 5, Q = 1, 16, 40",
        ssd_chunked_np, None, want, rtol=TOL, outputs=names, call=run, diagnose=[where],
        hints=[Hint(v, _CHUNK_MESSAGES[k]) for k, v in variants.items()])


# ---------------------------------------------------------------------------------------------
# Exercise 10.4 — the rank of the off-diagonal blocks (X2)

RANK_Q = 8
RANK_TOL = 1e-10


def _rank_matrices():
    """Three 40×40 lower-triangular matrices: an SSD head's M (rank ≤ N = 5 below the diagonal),
    linear attention's tril(q kᵀ) with d_k = 3 (an SSD with a = 1: rank ≤ 3), and a random one."""
    _, dt, A, B, C = _problem()
    M = _library_M(dt[:, 0].copy(), float(A[0]), B, C)
    rng = np.random.default_rng(104)
    q, k = rng.standard_normal((2, L_, 3))
    lin = np.tril(q @ k.T)
    rnd = np.tril(rng.standard_normal((L_, L_)))
    return M, lin, rnd


def check_offdiag_rank(max_offdiag_rank):
    """Exercise 10.4: the largest numerical rank of the blocks M[k:, :k], k = Q, 2Q, …, < L."""
    mats = _rank_matrices()
    want = tuple(float(ssd.offdiag_rank(m, RANK_Q, RANK_TOL)) for m in mats)

    def run(fn):
        return tuple(float(fn(m, RANK_Q, RANK_TOL)) for m in mats)

    def full_rank(m):
        return float(np.linalg.matrix_rank(m))

    def diag_blocks(m):
        return float(max(np.linalg.matrix_rank(m[k:, :k + 1]) for k in range(RANK_Q, L_, RANK_Q)))

    names = ("rank (SSD head, N = 5)", "rank (linear attention, d_k = 3)", "rank (random)")
    return check(
        "Exercise 10.4 — max_offdiag_rank(M, Q = 8, tol = 1e-10) of three 40×40 matrices",
        max_offdiag_rank, None, want, rtol=0.0, atol=0.0, outputs=names, call=run,
        hints=[
            Hint(tuple(full_rank(m) for m in mats),
                 "that is the rank of the whole M (40 for a random triangle, and M's diagonal is "
                 "nonzero): take the blocks strictly below and left of the diagonal, M[k:, :k]."),
            Hint((0.0, 0.0, 0.0), "the blocks above the diagonal, M[:k, k:], are zero (causal): "
                                  "take the ones below, M[k:, :k]."),
            Hint(tuple(diag_blocks(m) for m in mats),
                 "M[k:, :k + 1] includes column k, whose diagonal entry is not in the "
                 "off-diagonal block: take columns 0..k−1, M[k:, :k]."),
        ])
