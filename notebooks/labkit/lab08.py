"""Checks of notebook 08 (stage 8a: the selective scan's backward pass, docs/MATH.md G1–G10).

Conventions, as in lab 7 and the library (lib/include/ssm/grad.hpp), for one sequence of L steps
over D channels with N states each and no gate: u and Δraw (D, L); A (D, N), negative; B and C
(N, L), shared by the channels; the skip D and the Δ bias (D,). Δ = softplus(Δraw + bias) (M1),
Ā = e^{ΔA} (M2), Mamba's B̄ = ΔB (D6), h_t = Ā_t h_{t−1} + B̄_t u_t from h_{−1} = 0 (M3),
y_t = C_t·h_t + D u_t (M4 without the gate). The loss is ℓ = Σ_{d,t} dy_{d,t} y_{d,t}, so dy =
∂ℓ/∂y is given and every gradient is one of ℓ. Per-step arrays are indexed [d, t, n]: Ā and the
adjoint g_{t,n} = ∂ℓ/∂h_{t,n} are (D, L, N).

Every expected answer comes from ssmlab.grad's float64 reference backward
(selective_scan_backward_reference: G1–G9 in plain loops): the six gradients themselves; the lag
gradient of a scalar recurrence as du of a one-channel scan (Δ = 1 without softplus, A = log a,
B = b, C = c) with dy = e_{L−1}; the adjoint g, which depends on neither B nor u, as du/Δ of N
scans whose B is the n-th unit vector at every step (then du_t = Σ_n g_{t,n} Δ_t B_{n,t} =
Δ_t g_{t,n}, G5 without the skip). The known mistakes are computed here in NumPy, each from the
same inputs.
"""
import re

import numpy as np

from . import Hint, check, ssmlab as ssm

mamba, grad = ssm.mamba, ssm.grad

# Every answer is a few hundred multiply-adds and exps in double per entry; NumPy and the
# library's reference agree to ~1e-15 relative (measured ≤ 1e-15 for the lag gradient, the
# adjoint and all six gradients), so 1e-9 is loose for rounding and far below every listed
# mistake (all ≥ 1e-2 relative).
TOL = 1e-9
D_, L_, N_ = 6, 40, 5  # D ≠ L ≠ N, so a transposed array or a sum over the wrong axis shows


def _softplus(x):
    return np.logaddexp(0.0, x)


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # = 1/(1 + e^{−x}), without overflow for x ≪ 0


def _problem():
    """(p, dy): lab 7's Mamba-like sequence (the library's generator, Δ at Δraw = 0 spread over
    [0.05, 0.8] so that every step changes h visibly) without the gate, a skip D that differs
    by channel, and a random dy."""
    p = mamba.random_problem(D=D_, L=L_, N=N_, seed=8, gate=False)
    p["delta_bias"] = mamba.inverse_softplus(np.geomspace(0.05, 0.8, D_))
    p["D"] = np.linspace(0.5, 1.5, D_)
    dy = np.random.default_rng(80).standard_normal((D_, L_))
    return p, dy


def _library_grads(p, dy):
    """(du, ddelta, dA, dB, dC, dD) from the library's float64 reference backward."""
    g = grad.selective_scan_backward_reference(
        dy=dy, u=p["u"], delta=p["delta"], A=p["A"], B=p["B"], C=p["C"], D=p["D"], z=None,
        delta_bias=p["delta_bias"], h0=None)
    return tuple(g[k] for k in ("du", "ddelta", "dA", "dB", "dC", "dD"))


def _shape_hint(want_shape, what, by_shape=None):
    """A diagnose function: the shape is wrong; by_shape maps a wrong shape to what it means."""
    def shape(got):
        s = np.shape(got)
        if s == want_shape:
            return None
        if by_shape and s in by_shape:
            return by_shape[s]
        if np.size(got) != np.prod(want_shape):
            return "%s has shape %s; expected %s." % (what, s, want_shape)
        return None
    return shape


# ---------------------------------------------------------------------------------------------
# Exercise 8.1 — the gradient through time of one scalar recurrence (G2 with N = D = 1)

LAG_L = 30
LAG_CASES = ((0.9, 0.5, 2.0), (0.5, 1.0, -1.5), (0.99, -0.3, 1.0))  # (a, b, c)


def _library_lag_gradient(a, b, c, L):
    """∂y_{L−1}/∂u_{L−1−k}, k = 0 … L−1, of h_t = a h_{t−1} + b u_t, y_t = c h_t: the library's
    backward of a one-channel scan with Δ = 1 (no softplus: Ā = e^{log a} = a, B̄ = ΔB = b)."""
    dy = np.zeros((1, L))
    dy[0, -1] = 1.0
    g = grad.selective_scan_backward_reference(
        dy=dy, u=np.ones((1, L)), delta=np.ones((1, L)), A=np.array([[np.log(a)]]),
        B=np.full((1, L), b), C=np.full((1, L), c), delta_softplus=False)
    return g["du"][0, ::-1].copy()  # by lag: the input at t = L−1−k


def check_lag_gradient(lag_gradient):
    """Exercise 8.1: lag_gradient(a, b, c, k) for k = 0 … 29 and three (a, b, c)."""
    k = np.arange(LAG_L)
    want = tuple(_library_lag_gradient(a, b, c, LAG_L) for a, b, c in LAG_CASES)

    def run(fn):
        return tuple(fn(a, b, c, k) for a, b, c in LAG_CASES)

    def every(f):
        return tuple(f(a, b, c) for a, b, c in LAG_CASES)

    names = tuple("g (a = %g, b = %g, c = %g)" % case for case in LAG_CASES)
    return check(
        "Exercise 8.1 — lag_gradient(a, b, c, k), k = 0 … %d, three (a, b, c)" % (LAG_L - 1),
        lag_gradient, None, want, rtol=TOL, outputs=names, call=run,
        diagnose=[lambda got: _shape_hint((LAG_L,), "g", None)(got[0]) if len(got) else None],
        hints=[
            Hint(every(lambda a, b, c: c * a ** (k + 1) * b),
                 "one power of a too many: the input u_{L−1} enters h_{L−1} at step L−1 itself "
                 "(h_t = a h_{t−1} + b u_t) and is read at once by y_{L−1} = c h_{L−1}, so "
                 "g_0 = c b, with no a; each step further back adds one factor a: g_k = c a^k b."),
            Hint(every(lambda a, b, c: c * a ** (k - 1.0) * b),
                 "one power of a too few: g_0 = c b (lag 0 is read at once), g_1 = c a b, … "
                 "g_k = c a^k b."),
            Hint(every(lambda a, b, c: c * a ** (LAG_L - 1.0 - k) * b),
                 "you indexed by time, not by lag: k counts the steps back from the output, "
                 "s = L−1−k, and the input at lag k has passed through k decays: c a^k b."),
            Hint(every(lambda a, b, c: a ** (k * 1.0)),
                 "the input's weight b and the readout c are missing: u enters as b u, y reads "
                 "c h, so g_k = c a^k b."),
            Hint(every(lambda a, b, c: c * b * k * a ** (k - 1.0)),
                 "that is ∂(c a^k b)/∂a, the derivative with respect to the decay; the exercise "
                 "asks for ∂y_{L−1}/∂u_{L−1−k} = c a^k b itself."),
        ])


# ---------------------------------------------------------------------------------------------
# Exercise 8.2 — the adjoint recurrence (G2)

def _coefficients(p):
    """Δ (D, L), its pre-activation x = Δraw + bias, and Ā (D, L, N)."""
    x = p["delta"] + p["delta_bias"][:, None]
    dt = _softplus(x)
    return dt, x, np.exp(dt[:, :, None] * p["A"][:, None, :])


def _library_adjoint(p, dy):
    """g (D, L, N) = ∂ℓ/∂h from the library: du/Δ of N scans, B = the n-th unit vector, no skip."""
    dt, _, _ = _coefficients(p)
    g = np.empty((D_, L_, N_))
    for n in range(N_):
        e_n = np.zeros((N_, L_))
        e_n[n] = 1.0
        r = grad.selective_scan_backward_reference(
            dy=dy, u=p["u"], delta=dt, A=p["A"], B=e_n, C=p["C"], delta_softplus=False)
        g[:, :, n] = r["du"] / dt
    return g


def _adjoint(Ab, C, dy, mistake=None):
    """g (D, L, N) of (G2), or the adjoint with one of the known mistakes (see _ADJOINT_MESSAGES)."""
    Dn, L, N = Ab.shape
    local = C.T[None] * dy[:, :, None]  # C_{t,n} dy_t, (D, L, N)
    if mistake == "no C":
        local = np.broadcast_to(dy[:, :, None], (Dn, L, N))
    g = np.zeros((Dn, L, N))
    if mistake == "forward":  # the forward scan of C dy: g_t = C_t dy_t + Ā_t g_{t−1}
        acc = np.zeros((Dn, N))
        for t in range(L):
            acc = local[:, t] + Ab[:, t] * acc
            g[:, t] = acc
        return g
    acc = np.zeros((Dn, N))
    for t in reversed(range(L)):
        if mistake == "local only":
            acc = local[:, t]
        elif mistake == "same step":
            acc = local[:, t] + Ab[:, t] * acc
        elif mistake == "later outputs only":  # ∂ℓ/∂h_t through y_{t+1}, … only
            acc = Ab[:, t + 1] * (local[:, t + 1] + acc) if t + 1 < L else np.zeros((Dn, N))
        else:
            acc = local[:, t] + (Ab[:, t + 1] * acc if t + 1 < L else 0.0)
        g[:, t] = acc
    return g


_ADJOINT_MESSAGES = {
    "same step": "the adjoint carries g_{t+1} back with Ā_{t+1}, the decay of the step that took h_t "
                 "to h_{t+1} (h_{t+1} = Ā_{t+1} h_t + …): g_t = C_t dy_t + Ā_{t+1} g_{t+1} (G2). Yours "
                 "uses Ā_t, the step that made h_t.",
    "forward": "the adjoint runs backward in time: h_t influences only y_t, y_{t+1}, …, so g_{L−1} = "
               "C_{L−1} dy_{L−1} comes first, then t = L−2, …, 0 (G2). Yours runs forward (it is the "
               "forward scan of the input C dy).",
    "no C": "the local term is C_{t,n} dy_t: y_t = Σ_n C_{t,n} h_{t,n}, so ∂y_t/∂h_{t,n} = C_{t,n} (G2). "
            "Yours adds dy_t alone to every state.",
    "later outputs only": "g_t = ∂ℓ/∂h_t includes y_t's own read of h_t: g_t = C_t dy_t + Ā_{t+1} g_{t+1}, "
                          "starting from g_{L−1} = C_{L−1} dy_{L−1}, not 0 (G2). Yours is the gradient "
                          "through the later outputs only.",
    "local only": "h_t also reaches every later output through the state: add Ā_{t+1} g_{t+1} (G2). "
                  "Yours is only y_t's own share, C_t dy_t.",
}

_ADJOINT_SHAPES = {
    (D_, N_, L_): "g is indexed [d, t, n] like Ā: shape (D, L, N) = %s; yours is (D, N, L)." % ((D_, L_, N_),),
    (L_, D_, N_): "g is indexed [d, t, n] like Ā: shape (D, L, N) = %s; yours is (L, D, N)." % ((D_, L_, N_),),
    (D_, N_): "g has one entry per channel, step and state, (D, L, N) = %s: keep every g_t, not only "
              "the last one computed (g_0)." % ((D_, L_, N_),),
}


def check_adjoint(adjoint_np):
    """Exercise 8.2: g (D, L, N) from Ā (D, L, N), C (N, L), dy (D, L)."""
    p, dy = _problem()
    _, _, Ab = _coefficients(p)
    C = p["C"]
    want = _library_adjoint(p, dy)
    return check(
        "Exercise 8.2 — adjoint_np(Abar, C, dy), D = 6, L = 40, N = 5",
        adjoint_np, (Ab, C, dy), want, rtol=TOL, outputs=("g",),
        diagnose=[_shape_hint((D_, L_, N_), "g", _ADJOINT_SHAPES)],
        hints=[Hint(_adjoint(Ab, C, dy, k), m) for k, m in _ADJOINT_MESSAGES.items()])


# ---------------------------------------------------------------------------------------------
# Exercise 8.3 — all the gradients (G3–G9)

_NAMES = ("du", "ddelta", "dA", "dB", "dC", "dD")


def _backward(p, dy, adjoint=None, **mistakes):
    """(du, ddelta, dA, dB, dC, dD) by G2–G8, or with known mistakes switched on (the keys of
    _BACKWARD_MESSAGES; adjoint= one of _ADJOINT_MESSAGES)."""
    m = mistakes.get
    u, A, B, C, Dk = p["u"], p["A"], p["B"], p["C"], p["D"]
    dt, x, Ab = _coefficients(p)
    Bb = dt[:, :, None] * B.T[None]  # B̄ (D, L, N)
    h = np.zeros((D_, L_, N_))
    prev = np.zeros((D_, N_))
    for t in range(L_):
        prev = Ab[:, t] * prev + Bb[:, t] * u[:, t, None]
        h[:, t] = prev
    h_prev = np.concatenate([np.zeros((D_, 1, N_)), h[:, :-1]], axis=1)  # h_{t−1}, h_{−1} = 0
    g = _adjoint(Ab, C, dy, adjoint)
    hA = h if m("h_t in G7") else h_prev  # the state Ā_t acts on
    dC = np.einsum("dt,dtn->nt", dy, h_prev if m("dC from h_{t−1}") else h)
    dB = np.einsum("dtn,dt->nt", g, u * (1.0 if m("dB without Δ") else dt))
    du = np.einsum("dtn,dtn->dt", g, np.broadcast_to(B.T[None], Bb.shape) if m("du with B") else Bb)
    if not m("no skip in du"):
        du = du + Dk[:, None] * dy
    dD = np.sum(dy * u, axis=1)
    through_A = A[:, None, :] * Ab * hA
    through_B = u[:, :, None] * B.T[None]
    ddt = np.einsum("dtn,dtn->dt", g, (0.0 if m("Δ through B̄ only") else through_A)
                    + (0.0 if m("Δ through Ā only") else through_B))
    slope = 1.0 if m("no softplus'") else _sigmoid(p["delta"] if m("σ without bias") else x)
    ddelta = ddt * slope
    dA = np.einsum("dtn,dtn->dn", g, (1.0 if m("dA without Δ") else dt[:, :, None]) * Ab * hA)
    if m("dA sign"):
        dA = -dA
    return du, ddelta, dA, dB, dC, dD


_BACKWARD_MESSAGES = {
    "dC from h_{t−1}": "dC reads the state the output read: y_t = C_t·h_t + D u_t with h_t after step t's "
                       "update, so dC_{t,n} = Σ_d dy_{t,d} h_{t,d,n} (G3) — not h_{t−1}.",
    "dB without Δ": "∂B̄/∂B = Δ for Mamba's B̄ = ΔB (D6): dB_{t,n} = Σ_d g_{t,d,n} u_{t,d} Δ_{t,d} (G4).",
    "du with B": "u_t enters the state as B̄_t u_t = Δ_t B_t u_t: du_t = Σ_n g_{t,n} B̄_{t,n} + D dy_t (G5) "
                 "— yours uses B without the Δ.",
    "no skip in du": "the skip's share is missing: y_t = C_t·h_t + D u_t, so du_t = Σ_n g_{t,n} B̄_{t,n} "
                     "+ D dy_t (G5).",
    "no softplus'": "ddelta is the gradient with respect to Δraw, before the bias and the softplus: "
                    "multiply dΔ by softplus'(Δraw + bias) = σ(Δraw + bias), the sigmoid (G8).",
    "σ without bias": "softplus' is taken where the softplus was: at x = Δraw + bias, so σ(Δraw + bias), "
                      "not σ(Δraw) (G8).",
    "Δ through Ā only": "Δ_t enters step t twice, through Ā = e^{ΔA} and through B̄ = ΔB: dΔ_t = Σ_n "
                        "g_{t,n} (A_n Ā_{t,n} h_{t−1,n} + u_t B_{t,n}) (G7). Yours has only the decay's "
                        "path; add u_t B_{t,n}.",
    "Δ through B̄ only": "Δ_t enters step t twice, through Ā = e^{ΔA} and through B̄ = ΔB: dΔ_t = Σ_n "
                        "g_{t,n} (A_n Ā_{t,n} h_{t−1,n} + u_t B_{t,n}) (G7). Yours has only the input's "
                        "path; add the decay's A_n Ā_{t,n} h_{t−1,n}.",
    "h_t in G7": "Ā_t multiplies the state before step t (h_t = Ā_t h_{t−1} + B̄_t u_t): ∂h_t/∂Δ_t and "
                 "∂h_t/∂A use h_{t−1}, so dΔ_t has A_n Ā_{t,n} h_{t−1,n} and dA has Δ_t Ā_{t,n} "
                 "h_{t−1,n} (G7) — yours uses h_t (and h_{−1} = 0 at t = 0).",
    "dA sign": "dA has the wrong sign: ∂Ā/∂A = ∂e^{ΔA}/∂A = Δ Ā > 0 (A is already negative; no extra "
               "minus), so dA_{d,n} = Σ_t g_{t,n} Δ_t Ā_{t,n} h_{t−1,n} (G7).",
    "dA without Δ": "the chain rule of e^{ΔA} gives ∂Ā/∂A = Δ Ā: dA_{d,n} = Σ_t g_{t,n} Δ_t Ā_{t,n} "
                    "h_{t−1,n} (G7) — yours misses Δ_t.",
}

# What a wrong shape of each gradient says (D = 6, L = 40, N = 5 are all different).
_GRAD_SHAPES = {
    "dB": {(D_, N_): "dB has shape (D, N): you summed over the steps t. B_t is a new vector at every "
                     "step, shared by the D channels: sum over the channels d and keep t, (N, L) like B (G4).",
           (D_, L_, N_): "dB has shape (D, L, N): sum it over the channels d — B_t is shared by them, so "
                         "its gradient is the sum of theirs (G4) — and lay it out (N, L) like B.",
           (D_, N_, L_): "dB has shape (D, N, L): sum it over the channels d — B_t is shared by them (G4).",
           (L_, N_): "dB has shape (L, N): lay it out (N, L) like B."},
    "dC": {(D_, N_): "dC has shape (D, N): you summed over the steps t. C_t is a new vector at every "
                     "step, shared by the D channels: sum over d and keep t, (N, L) like C (G3).",
           (D_, L_, N_): "dC has shape (D, L, N): sum it over the channels d (C_t is shared by them, G3) "
                         "and lay it out (N, L) like C.",
           (D_, N_, L_): "dC has shape (D, N, L): sum it over the channels d (C_t is shared by them, G3).",
           (L_, N_): "dC has shape (L, N): lay it out (N, L) like C."},
    "dA": {(N_,): "dA has shape (N,): you summed over the channels too. A_{d,n} is one number per "
                  "channel and state: sum over t only, (D, N) (G7).",
           (N_, L_): "dA has shape (N, L): you summed over the channels d. A_{d,n} is the same at every "
                     "step: sum over t, keep d, (D, N) (G7).",
           (L_, N_): "dA has shape (L, N): you summed over the channels d. A_{d,n} is the same at every "
                     "step: sum over t, keep d, (D, N) (G7).",
           (D_, L_, N_): "dA has shape (D, L, N): A_{d,n} is the same at every step, so sum over t (G7)."},
    "dD": {(D_, L_): "dD has shape (D, L): D_d is the same at every step: sum dy·u over t (G6).",
           (): "dD is one number per channel, (D,): sum dy·u over t only, not over d (G6)."},
}


def check_scan_backward(scan_backward_np):
    """Exercise 8.3: (du, ddelta, dA, dB, dC, dD) of ℓ = Σ dy·y, against the library's reference."""
    p, dy = _problem()
    want = _library_grads(p, dy)
    args = (p["u"], p["delta"], p["delta_bias"], p["A"], p["B"], p["C"], p["D"], dy)
    whole = {k: _backward(p, dy, adjoint=k) for k in _ADJOINT_MESSAGES}
    each = {k: _backward(p, dy, **{k: True}) for k in _BACKWARD_MESSAGES}

    def close(a, b):
        a = np.asarray(a, dtype=float)
        return a.shape == b.shape and np.max(np.abs(a - b)) <= TOL * max(np.max(np.abs(b)), 1e-300)

    def shapes(got):
        msgs = []
        for name, g, w in zip(_NAMES, got, want):
            s = np.shape(g)
            if s != w.shape:
                msgs.append(_GRAD_SHAPES.get(name, {}).get(s) or "%s has shape %s; expected %s."
                            % (name, s, w.shape))
        return " ".join(msgs) or None

    def per_output(got):
        """The known mistake behind each wrong gradient (several may be wrong at once)."""
        try:
            g = [np.asarray(v, dtype=float) for v in got]
        except (TypeError, ValueError):
            return None
        if any(v.shape != w.shape or not np.all(np.isfinite(v)) for v, w in zip(g, want)):
            return None  # shapes() or check's own messages say it
        if any(all(close(a, b) for a, b in zip(g, v)) for v in whole.values()):
            return None  # a mistake in the adjoint: its hint says it for all outputs at once
        msgs = []
        for key, v in each.items():
            wrong = [i for i in range(6) if not close(v[i], want[i])]
            if wrong and all(close(g[i], v[i]) for i in wrong) and _BACKWARD_MESSAGES[key] not in msgs:
                msgs.append(_BACKWARD_MESSAGES[key])
        return "\n  Hint: ".join(msgs) or None

    def run(fn):
        try:
            return fn(*args)
        except NotImplementedError as e:  # the empty exercise 8.2 called from a written 8.3?
            m = re.search(r"write the body of (\w+)\(\)", str(e))
            if m and m.group(1) != getattr(fn, "__name__", m.group(1)):
                raise RuntimeError("it calls %s(), which is not written yet: do that exercise first"
                                   % m.group(1)) from None
            raise

    return check(
        "Exercise 8.3 — scan_backward_np(u, delta_raw, delta_bias, A, B, C, D, dy), D = 6, L = 40, N = 5",
        scan_backward_np, args, want, rtol=TOL, outputs=_NAMES, call=run, diagnose=[shapes, per_output],
        hints=[Hint(whole[k], m) for k, m in _ADJOINT_MESSAGES.items()])


# ---------------------------------------------------------------------------------------------
# Exercise 8.4 — central finite differences

# Central differences of ℓ(A) and ℓ(Δraw) in double with h = ε^{1/3}·max(1, |x|) ≈ 6e-6: the
# truncation error h²|ℓ'''|/6 and the rounding error ε|ℓ|/h are both ~1e-10 of the gradients'
# scale here (measured 1.7e-10 for dA, 3.4e-10 for dΔraw); 1e-7 leaves a margin of about 300,
# and a one-sided difference with the same h (error h|ℓ''|/2, measured 3.6e-6 and 2.0e-6) fails
# it by 20×, as does h = 1e-11 (rounding: 1e-4).
FD_TOL = 1e-7


def check_fd(fd_gradient):
    """Exercise 8.4: fd_gradient(f, x) of the scan's loss ℓ with respect to A (D, N) and Δraw
    (D, L), against the library's dA and ddelta."""
    p, dy = _problem()
    _, ddelta, dA, _, _, _ = _library_grads(p, dy)
    want = (dA, ddelta)

    def loss(**changed):
        q = dict(p, **changed)
        return float(np.sum(dy * mamba.selective_scan_reference(**q)))

    inputs = (("A", p["A"], lambda A: loss(A=A)), ("delta", p["delta"], lambda r: loss(delta=r)))
    changed = []

    def run(fn):
        del changed[:]
        out = []
        for name, x0, f in inputs:
            x = x0.copy()  # the student's function gets its own copy
            out.append(fn(f, x))
            drift = np.max(np.abs(np.asarray(x, dtype=float) - x0))
            if drift > 1e-10 * max(1.0, np.max(np.abs(x0))):
                changed.append("%s (by up to %.1e)" % (name, drift))
        return tuple(out)

    def mutated(got):
        if changed:
            return ("your fd_gradient left x changed: %s. Put each entry back after its two "
                    "evaluations (x[i] = old) or perturb a copy: otherwise every later entry is "
                    "differentiated at a shifted point, and the caller's x is spoiled."
                    % ", ".join(changed))
        return None

    def close_but_not_enough(got):
        try:
            errs = [np.max(np.abs(np.asarray(g, dtype=float) - w)) / np.max(np.abs(w))
                    for g, w in zip(got, want)]
        except (TypeError, ValueError):
            return None
        worst = max(errs)
        if FD_TOL < worst < 1e-2 and not changed:  # (a changed x is the likelier reason)
            return ("close (max relative error %.1e) but not to the %.0e that central differences "
                    "reach in double. A one-sided difference (f(x + h) − f(x))/h errs by O(h) ≈ "
                    "h·|f''|/2; the central one (f(x + h) − f(x − h))/(2h) by O(h²) + O(ε/h), "
                    "smallest near h ≈ ε^{1/3}·max(1, |x_i|) ≈ 6e-6 (the figure above). Too small an "
                    "h (1e-10, say) lets rounding, ε|f|/h, dominate." % (worst, FD_TOL))
        return None

    every = tuple(np.full(w.shape, w.sum()) for w in want)
    return check(
        "Exercise 8.4 — fd_gradient(f, x) of the scan's loss w.r.t. A (6, 5) and Δraw (6, 40)",
        fd_gradient, None, want, rtol=FD_TOL, outputs=("dA by differences", "dΔraw by differences"),
        call=run, diagnose=[mutated, close_but_not_enough],
        hints=[
            Hint(tuple(2 * w for w in want),
                 "twice the gradient: the central difference spans 2h, (f(x + h e_i) − f(x − h e_i)) "
                 "/ (2h) — yours divides by h."),
            Hint(tuple(-w for w in want),
                 "the opposite sign: the difference is f(x + h e_i) − f(x − h e_i), the forward value "
                 "first."),
            Hint(every, "every entry is the same number, the sum of the gradient: you perturbed all "
                        "entries at once (the directional derivative along (1, …, 1)). Perturb one "
                        "entry at a time, x[i] ± h, with the others left as they are."),
        ])
