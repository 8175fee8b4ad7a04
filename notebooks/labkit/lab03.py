"""Checks of notebook 03 (stages 3–4: recurrence, kernel K̄ (K1), FFT convolution (K2))."""
import numpy as np

from . import Hint, check, ssmlab as ssm


def _channel():
    m = ssm.random_stable(4, seed=31, decay_min=0.05, decay_max=0.5)
    d = ssm.discretize(m, 0.05, "zoh")
    return ssm.make_ssm(d, m.C, 0.5)  # D ≠ 0 so a forgotten skip term shows


def _input(L, seed):
    return np.random.default_rng(seed).standard_normal(L)


# Recurrence, kernel and FFT in double: rounding grows like ε·L at worst; at L ≤ 300 with a
# stable Ā the library and NumPy agree to ~1e-14 relative, so 1e-10 is a loose but sharp bar.
TOL = 1e-10


def check_unroll(unroll_np):
    """Exercise 3.1: x_k = Ā x_{k−1} + B̄ u_k, y_k = C x_k + D u_k, from x_{−1} = 0."""
    s, u = _channel(), _input(200, 1)
    want = ssm.unroll(s, u)
    y_prev = np.empty_like(u)  # output read before the update: y_k = C x_{k−1} + D u_k
    x = np.zeros(s.N)
    for k, uk in enumerate(u):
        y_prev[k] = s.C @ x + s.D * uk
        x = s.Ab @ x + s.Bb * uk
    return check(
        "Exercise 3.1 — unroll_np(Ā, B̄, C, D, u)", unroll_np, (s.Ab, s.Bb, s.C, s.D, u), want,
        rtol=TOL, outputs=("y",),
        hints=[
            Hint(y_prev, "you read the output before updating the state: first "
                         "x_k = Ā x_{k−1} + B̄ u_k, then y_k = C x_k + D u_k."),
            Hint(want - s.D * u, "the skip term D·u_k is missing from y_k."),
        ])


def check_kernel(kernel_np):
    """Exercise 3.2: K̄_k = C Ā^k B̄, k = 0 … L−1 (K1)."""
    s, L = _channel(), 64
    want = ssm.kernel(s, L)
    shifted = ssm.kernel(s, L + 1)[1:]
    return check(
        "Exercise 3.2 — kernel_np(Ā, B̄, C, L = 64)", kernel_np, (s.Ab, s.Bb, s.C, L), want,
        rtol=TOL, outputs=("K̄",),
        hints=[
            Hint(shifted, "your K̄ is the right one shifted by one step: K̄_0 = C B̄ (Ā⁰ = I). "
                          "Record C·v first, then multiply v by Ā."),
            Hint(np.r_[s.C @ s.Bb + s.D, want[1:]], "K̄ has no skip term: D·u_k is added "
                                                      "beside the convolution (K1)."),
        ])


def check_fft_conv(fft_conv_np):
    """Exercise 3.3: y = irfft(rfft(u, M) · rfft(K̄, M))[:L], M ≥ 2L − 1 (K2)."""
    s, L = _channel(), 300
    K, u = ssm.kernel(s, L), _input(L, 2)
    want = ssm.fft_conv(K, u)
    circular = np.fft.irfft(np.fft.rfft(u) * np.fft.rfft(K), L)

    def too_long(got):
        g = np.asarray(got)
        if g.ndim == 1 and g.shape[0] > L and np.allclose(g[:L], want, rtol=0, atol=TOL * np.max(np.abs(want))):
            return ("you returned all M = %d samples of the linear convolution: keep the first "
                    "L = %d (the causal outputs y_0 … y_{L−1})." % (g.shape[0], L))
        return None

    return check(
        "Exercise 3.3 — fft_conv_np(K̄, u), L = 300", fft_conv_np, (K, u), want,
        rtol=TOL, outputs=("y",), diagnose=[too_long],
        hints=[
            Hint(circular, "your output is the circular convolution: an FFT of length L wraps "
                           "the tail of K̄ * u around onto its first samples. Pad u and K̄ with "
                           "zeros to a length M ≥ 2L − 1 (K2)."),
        ])
