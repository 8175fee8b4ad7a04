"""Checks of notebook 07 (stage 7: the selective scan and Mamba, MATH.md M1–M7 with D5, D6, K1,
Q1).

Conventions, as in the library (lib/include/ssm/selective.hpp): one sequence of L steps over D
channels with N states each; u, Δraw and the gate z are (D, L), A is (D, N) (negative), B and C
are (N, L) — shared by the channels, they change with t — and the skip D and the Δ bias are (D,).
Per-step coefficients are indexed [d, t, n]: Ā and B̄ are (D, L, N). The state starts at h = 0.

Every expected answer comes from ssmlab.mamba: the scan from the float64 reference; Δ, Ā, B̄ of
every step from the library's step mode (one step from h = 1 with u = 0 leaves Ā, from h = 0
with u = 1 leaves B̄); the states h_t of a bare recurrence h ← a h + b from the reference scan
with N = 1 (Δ = −log a, A = −1, B = C = 1, u = b/Δ makes its output y_t the state h_t).
"""
import numpy as np

from . import Hint, check, ssmlab as ssm

mamba = ssm.mamba

# Every answer is a few hundred multiply-adds and exps in double per output; the library and
# NumPy agree to ~1e-15 relative (measured ≤ 4e-16 for the coefficients, 3e-16 for the scan,
# 2e-16 for the chunked scan and 1e-15 for the FFT convolution), so 1e-9 is loose for rounding
# and far below every mistake listed (all ≥ 1e-3).
TOL = 1e-9
D_, L_, N_ = 6, 40, 5  # N ≠ L ≠ D, so a transposed B or a wrong axis cannot broadcast silently
CHUNK = 16  # L = 40: chunks of 16, 16 and 8 steps (a shorter last chunk too)


def _problem():
    """A Mamba-like sequence (the library's generator: A = −(n+1)·e^ε, Δraw ~ 0.5·N(0,1), u, B,
    C, z ~ N(0,1), D = 1) whose Δ at Δraw = 0 spreads over [0.05, 0.8] rather than Mamba's
    [1e-3, 1e-1]: every step then changes h visibly, so each mistake moves the answer."""
    p = mamba.random_problem(D=D_, L=L_, N=N_, seed=7)
    p["delta_bias"] = mamba.inverse_softplus(np.geomspace(0.05, 0.8, D_))
    return p


def _softplus(x):
    return np.logaddexp(0.0, x)


def _silu(z):
    return z / (1.0 + np.exp(-z))


def _library_coefficients(delta_raw, delta_bias, A, B, discretization="mamba"):
    """Δ (D, L) and Ā, B̄ (D, L, N) of every step, read off the library's step mode: each time
    step is one entry of a batch of L independent one-step updates."""
    Dn, L = delta_raw.shape
    N = A.shape[1]
    raw = np.ascontiguousarray(delta_raw.T)  # (L, D)
    no_C = np.zeros((L, N))
    kw = dict(delta_bias=delta_bias, discretization=discretization)
    _, Ab = mamba.selective_state_update(np.ones((L, Dn, N)), np.zeros((L, Dn)), raw, A,
                                         np.ones((L, N)), no_C, **kw)  # Ā·1 + B̄·0
    _, Bb = mamba.selective_state_update(None, np.ones((L, Dn)), raw, A, B.T, no_C, **kw)  # B̄·1
    _, dt = mamba.selective_state_update(None, np.ones((L, Dn)), raw, A, np.ones((L, N)), no_C,
                                         delta_bias=delta_bias)  # Mamba's B̄ with B = 1: Δ
    return dt[:, :, 0].T, Ab.transpose(1, 0, 2), Bb.transpose(1, 0, 2)


def _library_states(a, b):
    """h_t (L, S) of the S recurrences h ← a_t h + b_t from h = 0, a in (0, 1): the reference
    scan with N = 1, Δ_t = −log a_t (no softplus, no bias), A = −1 (so Ā = e^{−Δ} = a),
    B = C = 1 and u_t = b_t/Δ_t (so B̄u = Δ·1·b/Δ = b), whose output y_t = C h_t is h_t."""
    L, S = a.shape
    dt = -np.log(a)
    y = mamba.selective_scan_reference(np.ascontiguousarray((b / dt).T), np.ascontiguousarray(dt.T),
                                       -np.ones((S, 1)), np.ones((1, L)), np.ones((1, L)),
                                       delta_softplus=False)
    return y.T


# ---------------------------------------------------------------------------------------------
# Exercise 7.1 — the selective step's coefficients (M1, M2, D6)

def check_discretize(selective_discretize):
    """Exercise 7.1: Δ = softplus(Δraw + bias), Ā = e^{ΔA}, B̄ = ΔB for every (d, t, n)."""
    p = _problem()
    raw, bias, A, B = p["delta"], p["delta_bias"], p["A"], p["B"]
    want = _library_coefficients(raw, bias, A, B)
    x = raw + bias[:, None]
    dt = _softplus(x)

    def coeffs(dt, Ab=None, Bb=None):
        Ab = np.exp(dt[:, :, None] * A[:, None, :]) if Ab is None else Ab
        Bb = dt[:, :, None] * B.T[None] if Bb is None else Bb
        return dt, Ab, Bb

    full = (D_, L_, N_)

    def axes(got):
        try:
            shapes = [np.shape(g) for g in got]
        except TypeError:
            return None
        if (D_, N_, L_) in shapes:
            return ("Ā and B̄ are indexed [d, t, n] here: shape (D, L, N) = %s; yours is (D, N, L) "
                    "— put the state axis last (dt[:, :, None] * A[:, None, :])." % (full,))
        if (D_, N_) in shapes or (D_, L_) in shapes[1:]:
            return ("Ā and B̄ have one entry per channel, step and state: shape (D, L, N) = %s. "
                    "Broadcast Δ (D, L) against A (D, N) with Δ[:, :, None] and A[:, None, :]."
                    % (full,))
        return None

    return check(
        "Exercise 7.1 — selective_discretize(delta_raw, delta_bias, A, B), D = 6, L = 40, N = 5",
        selective_discretize, (raw, bias, A, B), want, rtol=TOL, outputs=("Δ", "Ā", "B̄"),
        diagnose=[axes],
        hints=[
            Hint(coeffs(x), "forgot the softplus: Δ = softplus(Δraw + bias) (M1). Without it some "
                            "Δ are negative here, and a negative step makes Ā = e^{ΔA} > 1."),
            Hint(coeffs(_softplus(raw)), "the Δ bias is missing: Δ = softplus(Δraw + bias_d) (M1)."),
            Hint(coeffs(np.exp(x)), "softplus(x) = log(1 + e^x), not e^x: it is ≈ x for large x "
                                    "and only behaves like e^x for x ≪ 0 (np.logaddexp(0, x))."),
            Hint(coeffs(dt, Ab=np.broadcast_to(np.exp(A[:, None, :]), full)),
                 "used e^{A}, not e^{ΔA}: the state evolves for a time Δ_t at step t (M2)."),
            Hint(coeffs(dt, Ab=1 + dt[:, :, None] * A[:, None, :]),
                 "Ā = 1 + ΔA is forward Euler (D1); the selective scan uses Ā = e^{ΔA} (M2)."),
            Hint(coeffs(dt, Ab=np.exp(-dt[:, :, None] * A[:, None, :])),
                 "A is already negative (A = −exp(A_log), M6): Ā = e^{ΔA} with no extra minus sign."),
            Hint(coeffs(dt, Bb=np.broadcast_to(B.T[None], full)),
                 "B̄ = B without Δ: Mamba's B̄ = ΔB (D6) — the input's weight grows with the step, "
                 "so Δ ≈ 0 ignores a token."),
            Hint(coeffs(dt, Bb=np.expm1(dt[:, :, None] * A[:, None, :]) / A[:, None, :] * B.T[None]),
                 "that is exact ZOH, B̄ = (e^{ΔA} − 1)/A · B (D5, the library's 'zoh' option); "
                 "Mamba's default, asked for here, is B̄ = ΔB (D6)."),
        ])


# ---------------------------------------------------------------------------------------------
# Exercise 7.2 — the sequential selective scan (M1–M4)

def _recurrence(Ab, Bb, u, C, read_before=False):
    """y_t = Σ_n C_{t,n} h_{t,n} and the final h for given coefficients (D, L, N)."""
    Dn, L, N = Ab.shape
    h, y = np.zeros((Dn, N)), np.empty((Dn, L))
    for t in range(L):
        if read_before:
            y[:, t] = h @ C[:, t]
        h = Ab[:, t] * h + Bb[:, t] * u[:, t, None]
        if not read_before:
            y[:, t] = h @ C[:, t]
    return y, h


def check_scan(selective_scan_np):
    """Exercise 7.2: (y, h_last) of the gated scan with skip, from h = 0."""
    p = _problem()
    u, raw, bias, A, B, C, D, z = (p[k] for k in ("u", "delta", "delta_bias", "A", "B", "C", "D", "z"))
    want = mamba.selective_scan_reference(u, raw, A, B, C, D=D, z=z, delta_bias=bias,
                                          return_state=True)
    dt, Ab, Bb = _library_coefficients(raw, bias, A, B)
    core, h = _recurrence(Ab, Bb, u, C)
    Du, g = D[:, None] * u, _silu(z)

    def with_coeffs(Ab2=None, Bb2=None):
        y2, h2 = _recurrence(Ab if Ab2 is None else Ab2, Bb if Bb2 is None else Bb2, u, C)
        return (y2 + Du) * g, h2

    before, _ = _recurrence(Ab, Bb, u, C, read_before=True)

    scale = np.max(np.abs(want[0]))

    def blew_up(got):
        try:
            ys = [np.asarray(x, dtype=float) for x in got]
        except (TypeError, ValueError):
            return None
        # Stable steps keep |y| within a few times the library's; 1e6 times is an explosion.
        if any(not np.all(np.isfinite(x)) or (x.size and np.max(np.abs(x)) > 1e6 * scale) for x in ys):
            return ("your outputs are huge (or inf/NaN): h grew without bound. Is Δ = "
                    "softplus(Δraw + bias) (M1)? Without the softplus some Δ < 0 and "
                    "Ā = e^{ΔA} > 1.")
        return None

    return check(
        "Exercise 7.2 — selective_scan_np(u, delta_raw, delta_bias, A, B, C, D, z), D = 6, L = 40, N = 5",
        selective_scan_np, (u, raw, bias, A, B, C, D, z), want, rtol=TOL, outputs=("y", "h_last"),
        diagnose=[blew_up],
        hints=[
            Hint(((before + Du) * g, h),
                 "y is read before the state update (off by one): y_t = C_t h_t uses the state "
                 "after step t has added u_t (M3, then M4); yours is C_t h_{t−1}."),
            Hint(((core + Du) * z, h), "the gate is silu(z) = z·σ(z) (M4), not z itself."),
            Hint(((core + Du) / (1 + np.exp(-z)), h),
                 "the gate is silu(z) = z·σ(z), not the sigmoid σ(z) alone."),
            Hint((core + Du, h), "the gate is missing: y_t = (Σ_n C h + D u) · silu(z_t) (M4)."),
            Hint((core * g, h), "the skip D·u is missing: y_t = (Σ_n C_{t,n} h_{t,n} + D_d u_t)·silu(z_t) (M4)."),
            Hint((core * g + Du, h),
                 "the skip goes inside the gate: y = (Σ_n C h + D u) · silu(z), not "
                 "Σ_n C h · silu(z) + D u (M4)."),
            Hint(with_coeffs(Ab2=np.broadcast_to(np.exp(A[:, None, :]), Ab.shape)),
                 "used e^{A}, not e^{ΔA}: Ā_t = e^{Δ_t A} (M2)."),
            Hint(with_coeffs(Bb2=np.broadcast_to(B.T[None], Bb.shape)),
                 "B̄ = B without Δ: B̄_t = Δ_t B_t (D6)."),
            Hint(with_coeffs(Bb2=np.expm1(dt[:, :, None] * A[:, None, :]) / A[:, None, :] * B.T[None]),
                 "that is exact ZOH's B̄ (D5); Mamba's, asked for here, is B̄ = ΔB (D6)."),
            Hint(with_coeffs(*_library_coefficients(raw, None, A, B)[1:]),
                 "the Δ bias is missing: Δ = softplus(Δraw + bias_d) (M1)."),
        ])


# ---------------------------------------------------------------------------------------------
# Exercise 7.3 — the pair operator (M5)

def check_combine(combine):
    """Exercise 7.3: combine((a1, b1), (a2, b2)) = (a2·a1, a2·b1 + b2): first, then second."""
    rng = np.random.default_rng(73)
    a1, a2 = rng.uniform(0.2, 0.95, (2, 8))
    b1, b2 = rng.standard_normal((2, 8))
    want = mamba.combine((a1, b1), (a2, b2))
    return check(
        "Exercise 7.3 — combine((a1, b1), (a2, b2)) on arrays of 8 pairs", combine,
        ((a1, b1), (a2, b2)), want, rtol=TOL, outputs=("a", "b"),
        hints=[
            Hint((a1 * a2, a1 * b2 + b1),
                 "composed in the wrong order: (a₁a₂, a₁b₂ + b₁) is 'second, then first'. First "
                 "(a₁, b₁), then (a₂, b₂): h ↦ a₂(a₁h + b₁) + b₂ = (a₂a₁)h + (a₂b₁ + b₂) (M5)."),
            Hint((a1 * a2, a2 * b1), "+ b₂ is missing: the second step adds its own input."),
            Hint((a1 * a2, b1 + b2),
                 "b₁ passes through the second step, which scales it: a₂b₁ + b₂, not b₁ + b₂."),
            Hint((a1 * a2, a1 * b1 + b2), "b₁ is scaled by the second step's a₂, not by a₁."),
            Hint((a1 + a2, a2 * b1 + b2), "the decays multiply (a₂a₁): e^{Δ₂A}e^{Δ₁A} = e^{(Δ₁+Δ₂)A}."),
        ])


# ---------------------------------------------------------------------------------------------
# Exercise 7.4 — the chunked scan (M5)

def _pairs():
    """(a, b) (L, S): Ā and B̄u of Exercise 7.1's problem, one column per (d, n)."""
    p = _problem()
    _, Ab, Bb = _library_coefficients(p["delta"], p["delta_bias"], p["A"], p["B"])
    a = Ab.transpose(1, 0, 2).reshape(L_, D_ * N_)
    b = (Bb * p["u"][:, :, None]).transpose(1, 0, 2).reshape(L_, D_ * N_)
    return a, b


def _chunk_variants(a, b, chunk):
    """The known wrong chunked scans, each from the same local pass."""
    L = len(a)
    starts = list(range(0, L, chunk))
    pa, pb = np.empty_like(a), np.empty_like(b)  # local inclusive prefixes: the map start → t
    for s in starts:
        pa[s], pb[s] = a[s], b[s]
        for t in range(s + 1, min(s + chunk, L)):
            pa[t], pb[t] = a[t] * pa[t - 1], a[t] * pb[t - 1] + b[t]
    ends = [min(s + chunk, L) - 1 for s in starts]
    h_in, h = [], np.zeros(a.shape[1])
    for e in ends:  # states entering each chunk (the carries, scanned)
        h_in.append(h)
        h = pa[e] * h + pb[e]
    h_out = h_in[1:] + [h]

    def fix(carry, decay=True):
        out = np.empty_like(b)
        for c, s in enumerate(starts):
            sl = slice(s, min(s + chunk, L))
            out[sl] = (pa[sl] if decay else 1.0) * carry[c] + pb[sl]
        return out

    not_scanned = [np.zeros(a.shape[1])] + [pb[e] for e in ends[:-1]]
    return {
        "no carry": pb.copy(),
        "no decay": fix(h_in, decay=False),
        "carry out": fix(h_out),
        "not scanned": fix(not_scanned),
    }


_CHUNK_MESSAGES = {
    "no carry": "the carry is not applied in the fix-up pass: every chunk after the first starts "
                "from h = 0. Fix up step t of chunk c with h_t = (a-prefix_t)·h_in(c) + b-prefix_t, "
                "h_in(c) the state entering chunk c (M5).",
    "no decay": "the carry decays through the chunk: h_t = (a_s ⋯ a_t)·h_in + b-prefix_t (the "
                "prefix pair applied to the incoming state), not b-prefix_t + h_in.",
    "carry out": "off by one chunk: chunk c starts from the state leaving chunk c − 1, and you used "
                 "the one leaving chunk c.",
    "not scanned": "the carries must themselves be scanned: the state entering chunk c is chunk "
                   "c − 1's pair applied to the state entering chunk c − 1, not chunk c − 1's local "
                   "result from h = 0.",
}


def check_chunked(chunked_scan):
    """Exercise 7.4: all states h (L, S) of S recurrences by a two-pass chunked scan."""
    a, b = _pairs()
    want = _library_states(a, b)
    variants = _chunk_variants(a, b, CHUNK)

    def where(got):
        g = np.asarray(got)
        if g.shape != want.shape or not np.all(np.isfinite(g)):
            return None
        scale = np.max(np.abs(want))
        if any(np.max(np.abs(g - v)) <= max(TOL, 1e-9) * scale for v in variants.values()):
            return None  # a known mistake: its hint says more
        bad = np.any(np.abs(g - want) > TOL * scale, axis=1)
        t = int(np.argmax(bad))
        c = t // CHUNK
        if t == 0:
            return ("wrong from t = 0. The first chunk needs no carry (it starts from h = 0): "
                    "check the local pass, h_t = a_t h_{t−1} + b_t.")
        if t % CHUNK == 0:
            return ("the first %d chunk(s) are right (t < %d) and chunk %d is wrong from its first "
                    "step: check the state entering it (the carry)." % (c, t, c))
        return ("wrong from t = %d, inside chunk %d (steps %d–%d), not at its start: check how the "
                "steps of a chunk are combined." % (t, c, c * CHUNK, min((c + 1) * CHUNK, L_) - 1))

    return check(
        "Exercise 7.4 — chunked_scan(a, b, chunk = 16), L = 40 steps, S = 30 recurrences",
        chunked_scan, (a, b, CHUNK), want, rtol=TOL, outputs=("h",), diagnose=[where],
        hints=[Hint(v, _CHUNK_MESSAGES[k]) for k, v in variants.items()])


# ---------------------------------------------------------------------------------------------
# Exercise 7.5 — hand-set Δ for the selectivity lesson (M1, M6)

DELTA_CONTENT = 1.0
DELTA_FILLER = float(np.log1p(np.exp(-12.0)))  # softplus(−12) ≈ 6.1e-6: the library's lesson


def check_lesson_weights(lesson_weights):
    """Exercise 7.5: (w, b) with softplus(w·m + b) = Δ_content for m = 1, Δ_filler for m = 0."""
    dc, df = DELTA_CONTENT, DELTA_FILLER
    b = mamba.inverse_softplus(df)
    want = (mamba.inverse_softplus(dc) - b, b)
    return check(
        "Exercise 7.5 — lesson_weights(delta_content = 1, delta_filler = softplus(−12))",
        lesson_weights, (dc, df), want, rtol=TOL, outputs=("w", "b"),
        hints=[
            Hint((dc - df, df), "softplus is not the identity: b must satisfy softplus(b) = "
                                "Δ_filler, so b = softplus⁻¹(Δ_filler) = Δ + log(−expm1(−Δ)) (M6)."),
            Hint((mamba.inverse_softplus(dc), b),
                 "on content Δ = softplus(w + b): w must make up the difference, "
                 "w = softplus⁻¹(Δ_content) − b."),
            Hint((b, want[0]), "the two are swapped: return (w, b)."),
            Hint((np.log(dc) - np.log(df), np.log(df)),
                 "log Δ inverts e^x, not softplus (softplus(x) ≈ e^x only for x ≪ 0): "
                 "softplus⁻¹(Δ) = log(e^Δ − 1) = Δ + log(−expm1(−Δ))."),
        ])


# ---------------------------------------------------------------------------------------------
# Exercise 7.6 — constant Δ, B, C: the scan is a convolution (M7, Q1, K1)

DC, LC, NC = 4, 128, 8


def _lti_problem():
    p = mamba.random_problem(D=DC, L=LC, N=NC, seed=76, gate=False, constant_in_time=True)
    dt = np.geomspace(0.05, 0.5, DC)  # Δ of each channel, softplus already applied
    return p["u"], dt, p["A"], p["B"][:, 0].copy(), p["C"][:, 0].copy(), np.full(DC, 0.5)


def check_convolution(scan_as_convolution):
    """Exercise 7.6: y (D, L) of the LTI scan by its kernel K̄_{d,k} = Σ_n C_n ΔB_n e^{kΔA}."""
    u, dt, A, B, C, D = _lti_problem()
    tile = np.ones(LC)
    want = mamba.selective_scan_reference(u, dt[:, None] * tile, A, B[:, None] * tile,
                                          C[:, None] * tile, D=D, delta_softplus=False)
    k = np.arange(LC)[None, :, None]
    dA = dt[:, None, None] * A[:, None, :]  # (D, 1, N)

    def kernel(power=k, Bb=dt[:, None] * B, dA=dA):
        return (C * Bb[:, None, :] * np.exp(power * dA)).sum(-1)  # (D, L)

    def conv(K, skip=True, circular=False):
        if circular:
            y = np.fft.irfft(np.fft.rfft(K) * np.fft.rfft(u), n=LC)
        else:
            y = np.array([np.convolve(K[d], u[d])[:LC] for d in range(DC)])
        return y + (D[:, None] * u if skip else 0)

    K = kernel()

    def shape(got):
        s = np.shape(got)
        if s == (DC, 2 * LC - 1):
            return ("your y has the full convolution's 2L − 1 samples: keep the first L "
                    "(np.convolve(K, u)[:L]); the rest is the response after the input ends.")
        if s == (LC,) or s == (NC, LC):
            return "y has one row per channel: shape (D, L) = (%d, %d)." % (DC, LC)
        return None

    return check(
        "Exercise 7.6 — scan_as_convolution(u, dt, A, B, C, D), D = 4, L = 128, N = 8",
        scan_as_convolution, (u, dt, A, B, C, D), want, rtol=TOL, outputs=("y",),
        diagnose=[shape],
        hints=[
            Hint(conv(kernel(power=k + 1)),
                 "your kernel starts one power late: K̄_0 = Σ_n C_n B̄_n (power 0, K1) — the "
                 "current token enters h_t before y_t is read."),
            Hint(conv(K, skip=False), "the skip D·u is missing: y = K̄ * u + D u."),
            Hint(conv(kernel(Bb=np.broadcast_to(B, (DC, NC)))),
                 "B̄ = B without Δ: the scan's B̄ = ΔB (D6), so K̄_k = Σ_n C_n ΔB_n e^{kΔA_n}."),
            Hint(conv(kernel(Bb=np.expm1(dA[:, 0, :]) / A * B)),
                 "that is exact ZOH's B̄ (D5); the scan here uses Mamba's B̄ = ΔB (D6)."),
            Hint(conv(kernel(dA=A[:, None, :])),
                 "used e^{kA}, not e^{kΔA}: Ā = e^{ΔA}, so Ā^k = e^{kΔA} (Q1)."),
            Hint(conv(K, circular=True),
                 "your convolution wraps around: an FFT of length L is circular. Pad to "
                 "M ≥ 2L − 1 (np.fft.rfft(x, n=M)) and keep the first L samples (K2)."),
        ])
