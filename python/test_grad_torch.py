"""Stage 8a's backward passes against PyTorch autograd, an independent oracle (run by CTest with
Debian's /usr/bin/python3 and python3-torch, which scripts/bootstrap --labs installs).

Each test writes the forward here in torch, straight from docs/MATH.md (a plain loop over time
for the scan, vectorized over batch, channels and states; the Toeplitz sum for the convolution;
the Vandermonde sum for the S4D kernel; dense matrix powers in time for the S4 DPLR kernel),
lets autograd differentiate the loss
    loss = Σ y·dy (+ Σ h_last·dh_last)
for random dy, and compares every gradient with ssmlab's backward through the bindings.

Tolerances. float64: the two sides sum the same terms in a different order, so they agree to a
few ulps of each array's scale, times the O(L) length of the adjoint's sum: 1e-11 relative (max
|a − b| / max |b|) at L ≤ 64. float32 (the fast backward in float32 against torch in float64):
float32's eps is 1.2e-7 and the adjoint accumulates O(L) rounding steps, so 1e-4 relative.
The checks can fail: test_a_wrong_gradient_is_caught feeds a deliberately wrong gradient (dy
off by one time step) to the same comparison and sees it rejected.
"""
import unittest

import numpy as np
import torch

import ssmlab as ssm
from ssmlab import grad, mamba

torch.set_default_dtype(torch.float64)

F64_TOL = 1e-11
F32_TOL = 1e-4


def rel_err(a, b):
    a = np.asarray(a, dtype=np.result_type(np.asarray(a).dtype, np.float64))
    b = np.asarray(b, dtype=np.result_type(np.asarray(b).dtype, np.float64))
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-300))


def scan_torch(u, delta, A, B, C, D, z, delta_bias, softplus, h0, disc):
    """(M1)–(M4) in torch: u, delta, z (b, D, L); A (D, N); B, C (b, N, L); h0 (b, D, N)."""
    x = delta + delta_bias[None, :, None]
    dt = torch.nn.functional.softplus(x) if softplus else x
    h = h0
    ys = []
    for t in range(u.shape[2]):
        a = torch.exp(dt[:, :, t, None] * A[None])                      # Ā (b, D, N)
        if disc == "mamba":
            bbar = dt[:, :, t, None] * B[:, None, :, t]                 # B̄ = ΔB (D6)
        else:
            bbar = (a - 1) / A[None] * B[:, None, :, t]                 # ZOH (D5)
        h = a * h + bbar * u[:, :, t, None]
        ys.append((h * C[:, None, :, t]).sum(-1) + D[None, :] * u[:, :, t])
    y = torch.stack(ys, dim=-1)
    if z is not None:
        y = y * torch.nn.functional.silu(z)
    return y, h


def problem(b, D, L, N, seed, gate=True):
    """Random inputs of Mamba's form, every optional argument present and non-trivial."""
    p = mamba.random_problem(D=D, L=L, N=N, batch=b, seed=seed)
    rng = np.random.default_rng(seed + 100)
    p["D"] = rng.normal(size=D)
    p["delta_bias"] = rng.normal(scale=0.5, size=D)
    p["h0"] = rng.normal(size=(b, D, N))
    p["z"] = rng.normal(size=(b, D, L)) if gate else None
    return p


def torch_scan_grads(p, dy, dh_last, softplus=True, disc="mamba"):
    names = ["u", "delta", "A", "B", "C", "D", "delta_bias", "h0"] + (
        ["z"] if p["z"] is not None else [])
    leaves = {k: torch.tensor(np.asarray(p[k], dtype=np.float64), requires_grad=True)
              for k in names}
    y, h = scan_torch(leaves["u"], leaves["delta"], leaves["A"], leaves["B"], leaves["C"],
                      leaves["D"], leaves.get("z"), leaves["delta_bias"], softplus, leaves["h0"],
                      disc)
    loss = (y * torch.tensor(dy)).sum() + (h * torch.tensor(dh_last)).sum()
    loss.backward()
    return {"d" + ("delta" if k == "delta" else k): leaves[k].grad.numpy() for k in names}


def compare(test, ours, theirs, tol, label):
    for k, ref in theirs.items():
        err = rel_err(ours[k], ref)
        test.assertLessEqual(err, tol, f"{label}: {k} rel err {err:.2e} > {tol:.0e}")


class SelectiveScanBackward(unittest.TestCase):
    def run_case(self, b, D, L, N, seed, softplus, disc, gate):
        p = problem(b, D, L, N, seed, gate)
        rng = np.random.default_rng(seed + 7)
        if not softplus:  # then Δ = Δraw + bias itself, which must stay > 0 to be a step
            p["delta"] = rng.uniform(0.01, 0.3, size=(b, D, L))
            p["delta_bias"] = rng.uniform(0.0, 0.05, size=D)
        dy = rng.normal(size=(b, D, L))
        dh_last = rng.normal(size=(b, D, N))
        theirs = torch_scan_grads(p, dy, dh_last, softplus, disc)
        kw = dict(p, delta_softplus=softplus, discretization=disc)
        ref = grad.selective_scan_backward_reference(dy=dy, dh_last=dh_last, **kw)
        fast = grad.selective_scan_backward(dy=dy, dh_last=dh_last, chunk=5, threads=2, **kw)
        label = f"(b, D, L, N) = {(b, D, L, N)}, softplus={softplus}, {disc}, gate={gate}"
        compare(self, ref, theirs, F64_TOL, "reference " + label)
        compare(self, fast, theirs, F64_TOL, "fast float64 " + label)
        if not gate:
            self.assertIsNone(ref["dz"])
        # float32: every array cast, the fast path in float32 against torch's float64.
        p32 = {k: (np.asarray(v, np.float32) if isinstance(v, np.ndarray) else v)
               for k, v in kw.items()}
        f32 = grad.selective_scan_backward(dy=dy.astype(np.float32),
                                           dh_last=dh_last.astype(np.float32), **p32)
        self.assertEqual(f32["du"].dtype, np.float32)
        compare(self, f32, theirs, F32_TOL, "fast float32 " + label)

    def test_mamba_discretization_with_gate(self):
        self.run_case(2, 5, 23, 4, seed=1, softplus=True, disc="mamba", gate=True)

    def test_zoh_without_gate(self):
        self.run_case(1, 17, 40, 3, seed=2, softplus=True, disc="zoh", gate=False)

    def test_without_softplus(self):
        self.run_case(2, 9, 31, 5, seed=8, softplus=False, disc="mamba", gate=True)

    def test_long_sequence_many_channels(self):
        self.run_case(1, 33, 64, 16, seed=3, softplus=True, disc="mamba", gate=True)

    def test_a_wrong_gradient_is_caught(self):
        # The comparison above must be able to fail: feed ssmlab a dy shifted by one step.
        p = problem(1, 4, 12, 3, seed=4)
        dy = np.random.default_rng(5).normal(size=(1, 4, 12))
        dh_last = np.zeros((1, 4, 3))
        theirs = torch_scan_grads(p, dy, dh_last)
        wrong = grad.selective_scan_backward_reference(dy=np.roll(dy, 1, axis=2), **p)
        self.assertGreater(rel_err(wrong["du"], theirs["du"]), 1e3 * F64_TOL)

    def test_bad_input_names_the_argument(self):
        p = problem(1, 4, 6, 2, seed=6)
        with self.assertRaisesRegex(ssm.Error, "dy must have shape"):
            grad.selective_scan_backward(dy=np.zeros((1, 4, 5)), **p)
        with self.assertRaisesRegex(ssm.Error, "chunk"):
            grad.selective_scan_backward(dy=np.zeros((1, 4, 6)), chunk=0, **p)
        with self.assertRaisesRegex(ssm.Error, "dy"):
            grad.selective_scan_backward_reference(dy=np.full((1, 4, 6), np.nan), **p)
        with self.assertRaisesRegex(ssm.Error, "dh_last must have shape"):
            grad.selective_scan_backward(dy=np.zeros((1, 4, 6)), dh_last=np.zeros(3), **p)


class ConvolutionBackward(unittest.TestCase):
    def test_fft_conv_backward_G11(self):
        H, L = 3, 50
        rng = np.random.default_rng(11)
        K, U, dY, D = rng.normal(size=(H, L)), rng.normal(size=(H, L)), rng.normal(size=(H, L)), \
            rng.normal(size=H)
        Kt, Ut, Dt = (torch.tensor(a, requires_grad=True) for a in (K, U, D))
        # Toeplitz: y_k = Σ_{j ≤ k} K_j u_{k−j} + D u_k (K1), as one masked gather.
        k = torch.arange(L)
        lag = k[:, None] - k[None, :]
        T = torch.where(lag >= 0, Kt[:, lag.clamp(min=0)], torch.zeros(()))
        Y = torch.einsum("hks,hs->hk", T, Ut) + Dt[:, None] * Ut
        (Y * torch.tensor(dY)).sum().backward()
        dK, dU, dD = grad.conv_backward(K, U, dY, D=D)
        self.assertLessEqual(rel_err(dK, Kt.grad.numpy()), 1e-12)
        self.assertLessEqual(rel_err(dU, Ut.grad.numpy()), 1e-12)
        self.assertLessEqual(rel_err(dD, Dt.grad.numpy()), 1e-12)
        dK32, dU32, _ = grad.conv_backward(K.astype(np.float32), U.astype(np.float32),
                                           dY.astype(np.float32))
        self.assertEqual(dK32.dtype, np.float32)
        self.assertLessEqual(rel_err(dK32, Kt.grad.numpy()), 1e-5)


class S4DBackward(unittest.TestCase):
    def kernel_torch(self, Lam, Bt, C, dt, L, method):
        """(Q1) K̄_k = 2 Re Σ_n C_n B̄_n z_n^k with ZOH or bilinear (G13), in torch."""
        dtc = dt[:, None].to(torch.complex128)
        if method == "zoh":
            z = torch.exp(dtc * Lam[None])
            b = (z - 1) / Lam[None]
        else:
            w = 1 / (1 - dtc * Lam[None] / 2)
            z = (1 + dtc * Lam[None] / 2) * w
            b = dtc * w
        k = torch.arange(L, dtype=torch.float64).to(torch.complex128)
        F = torch.einsum("hn,hnk->hk", C * b * Bt[None], z[:, :, None] ** k[None, None])
        return 2 * F.real

    def test_kernel_and_layer_backward_G12_G13(self):
        H, Nh, L = 3, 6, 40
        md = ssm.s4.s4d_init("lin", 2 * Nh)
        C = ssm.s4.random_C(H, Nh, seed=3)
        rng = np.random.default_rng(12)
        dt = np.exp(rng.uniform(np.log(1e-2), np.log(1e-1), size=H))
        D = rng.normal(size=H)
        U, dY = rng.normal(size=(H, L)), rng.normal(size=(H, L))
        for method in ("zoh", "bilinear"):
            Lam = torch.tensor(np.asarray(md.Lambda), requires_grad=True)
            Bt = torch.tensor(np.asarray(md.B), requires_grad=True)
            Ct = torch.tensor(np.asarray(C), requires_grad=True)
            dtt = torch.tensor(dt, requires_grad=True)
            Dt = torch.tensor(D, requires_grad=True)
            Ut = torch.tensor(U, requires_grad=True)
            K = self.kernel_torch(Lam, Bt, Ct, dtt, L, method)
            k = torch.arange(L)
            lag = k[:, None] - k[None, :]
            T = torch.where(lag >= 0, K[:, lag.clamp(min=0)], torch.zeros(()))
            Y = torch.einsum("hks,hs->hk", T, Ut) + Dt[:, None] * Ut
            (Y * torch.tensor(dY)).sum().backward()
            g = grad.s4d_layer_backward(md, dt, C, D, U, dY, method=method)
            for ours, theirs, name in ((g["dLambda"], Lam.grad, "dLambda"), (g["dB"], Bt.grad, "dB"),
                                       (g["dC"], Ct.grad, "dC"), (g["ddt"], dtt.grad, "ddt"),
                                       (g["dD"], Dt.grad, "dD"), (g["dU"], Ut.grad, "dU")):
                err = rel_err(ours, theirs.numpy())
                self.assertLessEqual(err, 1e-9, f"{method}: {name} rel err {err:.2e}")
            np.testing.assert_allclose(g["dlog_dt"], dt * g["ddt"], rtol=1e-14)


class S4DplrBackward(unittest.TestCase):
    """(G22, G23) against autograd through a forward that shares nothing with ssmlab's: dense
    N × N matrices in the full basis (both halves of every conjugate pair), the bilinear Ā, B̄
    by linear solves, and K̄ in the time domain, with no Cauchy sum, Woodbury identity or FFT."""

    @staticmethod
    def kernel_torch(Lam, P, Bt, Cp, dt, L):
        """K̄_k = C̄' (I − Ā^L)⁻¹ Ā^k B̄ (S2: C̄' = C̃(I − Ā^L), so this is C̃ Ā^k B̄), with
        Ã = diag(Λ, conj Λ) − P̃P̃*, P̃ = [P̃; conj P̃], B̃ = [B̃; conj B̃], C̄' = [C̄', conj C̄']
        (S1, S5) and Ā = (I − Δ/2 Ã)⁻¹(I + Δ/2 Ã), B̄ = (I − Δ/2 Ã)⁻¹ Δ B̃ (bilinear, S3)."""
        Pf = torch.cat([P, P.conj()], 0)
        A = torch.diag(torch.cat([Lam, Lam.conj()])) - Pf @ Pf.conj().T
        Bf = torch.cat([Bt, Bt.conj()])
        N = A.shape[0]
        eye = torch.eye(N, dtype=torch.complex128)
        dtc = dt.to(torch.complex128)
        rows = []
        for h in range(Cp.shape[0]):
            A0 = eye - dtc[h] / 2 * A
            Abar = torch.linalg.solve(A0, eye + dtc[h] / 2 * A)
            x = torch.linalg.solve(A0, dtc[h] * Bf)              # B̄
            AL = eye
            for _ in range(L):
                AL = Abar @ AL
            c = torch.linalg.solve((eye - AL).T, torch.cat([Cp[h], Cp[h].conj()]))  # C̃ as a row
            ks = []
            for _ in range(L):
                ks.append((c * x).sum())  # not c @ x: this torch's complex 1-D dot returns 0
                x = Abar @ x
            rows.append(torch.stack(ks).real)
        return torch.stack(rows)

    def test_dplr_kernel_backward_G22_G23(self):
        H, Nh = 3, 4
        rng = np.random.default_rng(31)
        for r in (1, 2):
            for L in (16, 15):
                md = ssm.s4.random_dplr(Nh, r, seed=30 + r)
                Cp = ssm.s4.random_C(H, Nh, seed=32)
                dt = np.exp(rng.uniform(np.log(0.05), np.log(0.5), size=H))
                dK = rng.normal(size=(H, L))
                Lam = torch.tensor(np.asarray(md.Lambda), requires_grad=True)
                P = torch.tensor(np.asarray(md.P), requires_grad=True)
                Bt = torch.tensor(np.asarray(md.B), requires_grad=True)
                Cpt = torch.tensor(np.asarray(Cp), requires_grad=True)
                dtt = torch.tensor(dt, requires_grad=True)
                K = self.kernel_torch(Lam, P, Bt, Cpt, dtt, L)
                # The two forwards agree first (else the gradients compare different functions).
                K_ours = ssm.s4.CauchyKernel64(md, L)(dt, Cp)
                self.assertLessEqual(rel_err(K_ours, K.detach().numpy()), 1e-11)
                (K * torch.tensor(dK)).sum().backward()
                g = grad.dplr_kernels_backward(md, dt, Cp, dK, threads=2)
                self.assertEqual(g["dP"].shape, (Nh, r))
                for name, theirs in (("dLambda", Lam.grad), ("dP", P.grad), ("dB", Bt.grad),
                                     ("dCp", Cpt.grad), ("ddt", dtt.grad)):
                    err = rel_err(g[name], theirs.numpy())
                    self.assertLessEqual(err, F64_TOL, f"r={r}, L={L}: {name} rel err {err:.2e}")
                np.testing.assert_allclose(g["dlog_dt"], dt * g["ddt"], rtol=1e-14)
        # One channel: Cp (Nh,) and dK (L,) give dCp (Nh,) and scalar ddt, dlog_dt.
        g1 = grad.dplr_kernels_backward(md, 0.2, Cp[0], dK[0])
        gH = grad.dplr_kernels_backward(md, np.array([0.2]), Cp[:1], dK[:1])
        self.assertEqual(g1["dCp"].shape, (Nh,))
        np.testing.assert_array_equal(g1["dCp"], gH["dCp"][0])
        self.assertEqual(g1["ddt"], gH["ddt"][0])
        with self.assertRaisesRegex(ssm.Error, "dK must have H = 3 rows"):
            grad.dplr_kernels_backward(md, dt, Cp, np.zeros((2, 8)))
        with self.assertRaisesRegex(ssm.Error, "dt"):
            grad.dplr_kernels_backward(md, -1.0, Cp, np.zeros((3, 8)))


def lm_torch(W, cfg, tokens, targets, tied):
    """The Mamba LM (M8, G14–G18) in torch from a weights() dict of leaves."""
    F = torch.nn.functional
    di, N, R, K = cfg.d_model * cfg.expand, cfg.d_state, W["layers.0.dt_proj"].shape[1], cfg.d_conv
    L = len(tokens)

    def rms(x, w):
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + cfg.rms_eps) * w

    x = W["embedding"][torch.tensor(tokens)]
    for l in range(cfg.n_layers):
        g = lambda n: W[f"layers.{l}.{n}"]
        h = rms(x, g("norm_w"))
        xz = h @ g("in_proj").T
        x1, z = xz[:, :di], xz[:, di:]
        a = F.conv1d(x1.T[None], g("conv_w")[:, None, :], g("conv_b"), padding=K - 1,
                     groups=di)[0, :, :L]                          # (di, L), causal (G16)
        u = F.silu(a)                                                # x' (di, L)
        xdbl = u.T @ g("x_proj").T                                   # (L, R + 2N)
        delta = F.softplus(xdbl[:, :R] @ g("dt_proj").T + g("dt_bias")).T   # (di, L)
        B, C = xdbl[:, R:R + N].T, xdbl[:, R + N:].T               # (N, L)
        A = -torch.exp(g("A_log"))
        hs = torch.zeros(di, N)
        ys = []
        for t in range(L):
            hs = torch.exp(delta[:, t, None] * A) * hs + delta[:, t, None] * B[None, :, t] * u[:, t, None]
            ys.append((hs * C[None, :, t]).sum(-1) + g("D") * u[:, t])
        y = torch.stack(ys, 1) * F.silu(z.T)                         # (di, L)
        x = x + y.T @ g("out_proj").T
    hf = rms(x, W["norm_f"])
    logits = hf @ (W["embedding"] if tied else W["lm_head"]).T
    return F.cross_entropy(logits, torch.tensor(targets), ignore_index=-1)


class MambaLMBackward(unittest.TestCase):
    def test_every_parameter_vs_autograd_G14_G18(self):
        cfg = mamba.Config(d_model=8, d_state=4, n_layers=2, d_conv=3)
        rng = np.random.default_rng(21)
        tokens = rng.integers(0, 11, size=13)
        targets = rng.integers(0, 11, size=13)
        targets[[2, 7]] = -1                                          # ignored positions
        for tied in (True, False):
            lm = mamba.LM64(cfg, vocab=11, tied=tied, seed=5)
            # Non-trivial norms, skip and biases (the init sets them to 1 or small values).
            w = lm.weights()
            lm.set_weights({k: v + rng.normal(scale=0.2, size=v.shape) for k, v in w.items()
                            if k.endswith(("norm_w", "norm_f", ".D", "conv_b"))})
            w = lm.weights()
            leaves = {k: torch.tensor(v, requires_grad=True) for k, v in w.items()}
            loss_t = lm_torch(leaves, cfg, tokens, targets, tied)
            loss_t.backward()
            for ref_scan in (False, True):
                loss, g = lm.loss_and_grad(tokens, targets, chunk=4, reference_scan=ref_scan)
                self.assertAlmostEqual(loss, loss_t.item(), delta=1e-12 * abs(loss))
                self.assertEqual(set(g), set(w))
                for k in w:
                    err = rel_err(g[k], leaves[k].grad.numpy())
                    self.assertLessEqual(err, F64_TOL, f"tied={tied}: {k} rel err {err:.2e}")
        with self.assertRaisesRegex(ssm.Error, "must have shape"):
            lm.set_weights({"norm_f": np.ones(3)})
        with self.assertRaisesRegex(ssm.Error, "not parameters"):
            lm.set_weights({"no_such": np.ones(3)})


if __name__ == "__main__":
    unittest.main()
