#!/usr/bin/python3
"""bench-train against a plain PyTorch CPU training step of the same models, in one run (issue 12).

Runs ssmlab's bench-train (Trainer<float>::train_step at ssm-train's default sizes, Google
Benchmark, JSON) and, in the same process on the same machine, a PyTorch training step of the
same language models written plainly (docs/MATH.md T1: embedding → n_layers residual layers
x ← x + layer(RMSNorm(x)) → final RMSNorm → tied head → cross-entropy on the answer positions):

  mamba  the Mamba block of M8 as the popular minimal implementations write it: in_proj, causal
         depthwise conv1d, SiLU, x_proj, dt_proj + softplus, Ā = exp(ΔA) and B̄u for all
         (batch, d_inner, L, N) at once, then a Python loop over L for h_t = Ā_t h_{t−1} + B̄_t u_t
         vectorized over (batch, d_inner, N) — the slices taken by unbind and the states
         appended to a list (indexing's backward, dA[:, :, t], would make autograd quadratic in
         L), y = C·h + D·u, the gate SiLU(z), out_proj.
  s4d    the layer of ssm/s4d_lm.hpp: λ = −exp(log_neg_re) + i·lambda_im, Ā = exp(Δλ),
         B̄ = (Ā − 1)/λ · B̃, the kernel K̄ = 2 Re Σ_n C̃ B̄ exp(Δλ k) (Vandermonde), the FFT
         convolution (rfft of length 2L), + D·u, the exact GELU, out_proj with its bias.

The step timed is a whole optimizer step on a batch of 32 sequences (the whole batch in one
graph, as PyTorch is used): forward, loss.backward(), clip_grad_norm_(1.0), AdamW (lr 2e-3, weight
decay 0.1 on the matrices only, as ssmlab), zero_grad. float32 on both sides (ssmlab's S4D
trainer step runs its batched pass in float; its kernel and the kernel's backward in double).
The sizes are bench-train's (ssm-train's defaults):
selective copy, body 32, 4 tokens, 8 data tokens (sequence 36, model vocabulary 10), d_model 64,
2 layers, d_state 16 (Mamba: N 16, d_inner 128, dt_rank 4; S4D: 8 complex modes); the parameter
counts of both sides are printed and should match.

torch.set_num_threads(threads) for each thread count; each measurement is the median of `--reps`
steps after `--warmup` steps, alternated with the bench-train run of the same row (median of its
repetitions) so a change of load hits both. Prints the table and the ratios; --json writes them.

  /usr/bin/python3 apps/bench/bench_train_vs_torch.py build/release/apps/bench/bench-train

Needs python3-torch (scripts/bootstrap --labs).
"""
import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_EXE = os.path.join(HERE, "..", "..", "build", "release", "apps", "bench", "bench-train")

# bench-train's sizes (apps/bench/bench_train.cpp).
LENGTH, TOKENS, VOCAB = 32, 4, 8
SEQ, MODEL_VOCAB = LENGTH + TOKENS, VOCAB + 2
D_MODEL, N_LAYERS, D_STATE, BATCH = 64, 2, 16, 32


def selective_copy_batch(rng, batch):
    """Tokens and targets (−1 = ignored) of the selective-copy task (ssm/train.hpp, T7)."""
    toks, tgts = [], []
    for _ in range(batch):
        t = [0] * SEQ
        y = [-1] * SEQ
        pos = sorted(rng.sample(range(LENGTH), TOKENS))
        for j, p in enumerate(pos):
            d = 2 + rng.randrange(VOCAB)
            t[p] = d
            t[LENGTH + j] = 1
            y[LENGTH + j] = d
        toks.append(t)
        tgts.append(y)
    return toks, tgts


def build_models(torch):
    nn, F = torch.nn, torch.nn.functional

    def uniform(shape, fan_in):
        b = 1 / math.sqrt(fan_in)
        return nn.Parameter(torch.empty(*shape).uniform_(-b, b))

    def rms(x, w, eps=1e-5):
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w

    class MambaBlock(nn.Module):
        """M8 with M6's initialization, the scan a loop over L (the minimal implementations')."""

        def __init__(self, d, N, n_layers):
            super().__init__()
            di, R, K = 2 * d, (d + 15) // 16, 4
            self.di, self.N, self.R, self.K = di, N, R, K
            self.norm_w = nn.Parameter(torch.ones(d))
            self.in_proj = uniform((2 * di, d), d)
            self.conv_w = uniform((di, 1, K), K)
            self.conv_b = uniform((di,), K)
            self.x_proj = uniform((R + 2 * N, di), di)
            self.dt_proj = uniform((di, R), R)
            dt = torch.exp(torch.rand(di) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
            self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
            self.A_log = nn.Parameter(torch.log(torch.arange(1, N + 1).float()).repeat(di, 1))
            self.D = nn.Parameter(torch.ones(di))
            self.out_proj = nn.Parameter(uniform((d, di), di).data / math.sqrt(n_layers))

        def forward(self, x):                                   # x (B, L, d) → (B, L, d)
            Bsz, L, _ = x.shape
            di, N, R = self.di, self.N, self.R
            xz = rms(x, self.norm_w) @ self.in_proj.T           # (B, L, 2di)
            xi, z = xz[..., :di], xz[..., di:]
            u = F.silu(F.conv1d(xi.transpose(1, 2), self.conv_w, self.conv_b,
                                padding=self.K - 1, groups=di)[..., :L])   # (B, di, L) causal
            xdbl = u.transpose(1, 2) @ self.x_proj.T            # (B, L, R + 2N)
            delta = F.softplus(xdbl[..., :R] @ self.dt_proj.T + self.dt_bias)  # (B, L, di)
            Bm, Cm = xdbl[..., R:R + N], xdbl[..., R + N:]      # (B, L, N)
            A = -torch.exp(self.A_log)                          # (di, N)
            ut = u.transpose(1, 2)                              # (B, L, di)
            dA = torch.exp(delta[..., None] * A)                # (B, L, di, N)
            dBu = delta[..., None] * Bm[:, :, None, :] * ut[..., None]
            h = torch.zeros(Bsz, di, N)
            hs = []
            for a_t, bu_t in zip(dA.unbind(1), dBu.unbind(1)):  # the sequential scan (M3)
                h = a_t * h + bu_t
                hs.append(h)
            H = torch.stack(hs, 1)                              # (B, L, di, N)
            y = torch.einsum("bldn,bln->bld", H, Cm) + self.D * ut
            y = y * F.silu(z)                                   # (M4)
            return y @ self.out_proj.T

    class S4DLayer(nn.Module):
        """The layer of ssm/s4d_lm.hpp (T2), its initialization included."""

        def __init__(self, d, N):
            super().__init__()
            Nh = N // 2
            self.norm_w = nn.Parameter(torch.ones(d))
            self.log_neg_re = nn.Parameter(torch.full((Nh,), math.log(0.5)))
            self.lambda_im = nn.Parameter(math.pi * torch.arange(Nh).float())
            self.B_re = nn.Parameter(torch.ones(Nh))
            self.B_im = nn.Parameter(torch.zeros(Nh))
            self.C_re = nn.Parameter(torch.randn(d, Nh) * math.sqrt(0.5))
            self.C_im = nn.Parameter(torch.randn(d, Nh) * math.sqrt(0.5))
            self.log_dt = nn.Parameter(torch.rand(d) * (math.log(0.1) - math.log(1e-3))
                                       + math.log(1e-3))
            self.D = nn.Parameter(torch.randn(d))
            self.out_proj = uniform((d, d), d)
            self.out_b = uniform((d,), d)

        def forward(self, x):                                   # x (B, L, d) → (B, L, d)
            L = x.shape[1]
            u = rms(x, self.norm_w).transpose(1, 2)             # (B, H, L)
            lam = torch.complex(-torch.exp(self.log_neg_re), self.lambda_im)   # (Nh)
            Bt = torch.complex(self.B_re, self.B_im)
            Ct = torch.complex(self.C_re, self.C_im)            # (H, Nh)
            dtlam = torch.exp(self.log_dt)[:, None] * lam       # (H, Nh)
            Bbar = (torch.exp(dtlam) - 1) / lam * Bt            # ZOH (Q1)
            V = torch.exp(dtlam[..., None] * torch.arange(L))   # (H, Nh, L) Vandermonde
            K = 2 * torch.einsum("hn,hnl->hl", Ct * Bbar, V).real            # (H, L)
            n = 2 * L                                           # FFT convolution (K2)
            y = torch.fft.irfft(torch.fft.rfft(u, n=n) * torch.fft.rfft(K, n=n), n=n)[..., :L]
            y = y + self.D[:, None] * u
            # The exact (erf) GELU on a contiguous (B, L, H) copy: torch 1.13's GELU backward
            # returns wrong values (1e17 for O(1) inputs, measured on this Zen 5 machine) when
            # the incoming gradient is not contiguous, as after gelu(y).transpose(1, 2) @ W.
            g = F.gelu(y.transpose(1, 2).contiguous())
            return g @ self.out_proj.T + self.out_b

    class LM(nn.Module):
        def __init__(self, kind):
            super().__init__()
            self.embedding = nn.Parameter(0.02 * torch.randn(MODEL_VOCAB, D_MODEL))
            mk = (lambda: MambaBlock(D_MODEL, D_STATE, N_LAYERS)) if kind == "mamba" else \
                (lambda: S4DLayer(D_MODEL, D_STATE))
            self.layers = nn.ModuleList([mk() for _ in range(N_LAYERS)])
            self.norm_f = nn.Parameter(torch.ones(D_MODEL))

        def forward(self, tokens, targets):
            x = self.embedding[tokens]                          # (B, L, d)
            for layer in self.layers:
                x = x + layer(x)                                # pre-norm residual (norm inside)
            logits = rms(x, self.norm_f) @ self.embedding.T     # tied head
            return F.cross_entropy(logits.reshape(-1, MODEL_VOCAB), targets.reshape(-1),
                                   ignore_index=-1)

    return LM


def torch_step_times(torch, LM, kind, threads, reps, warmup):
    """Median seconds of one training step (forward, backward, clip, AdamW) and the param count."""
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    model = LM(kind)
    # Weight decay on the matrices only, as ssmlab (embedding, projections, conv filter).
    decay_names = ("embedding", "in_proj", "conv_w", "x_proj", "dt_proj", "out_proj")
    decay = [p for n, p in model.named_parameters() if n.split(".")[-1] in decay_names]
    rest = [p for n, p in model.named_parameters() if n.split(".")[-1] not in decay_names]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": rest, "weight_decay": 0.0}],
                            lr=2e-3, betas=(0.9, 0.999), eps=1e-8)
    rng = random.Random(1)
    times = []
    for i in range(warmup + reps):
        toks, tgts = selective_copy_batch(rng, BATCH)
        t0 = time.perf_counter()
        tokens, targets = torch.tensor(toks), torch.tensor(tgts)
        loss = model(tokens, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        t1 = time.perf_counter()
        if i >= warmup:
            times.append(t1 - t0)
        if not math.isfinite(loss.item()):
            sys.exit(f"bench_train_vs_torch: error: torch {kind} loss is not finite")
    return statistics.median(times), sum(p.numel() for p in model.parameters())


def bench_train_row(exe, kind, threads, reps):
    """Median seconds per step of bench-train's BM_TrainStep/kind/threads, and its params."""
    filt = f"^BM_TrainStep/{kind}/{threads}/"
    out = subprocess.run(
        [exe, f"--benchmark_filter={filt}", f"--benchmark_repetitions={reps}",
         "--benchmark_report_aggregates_only=true", "--benchmark_format=json"],
        check=True, capture_output=True, text=True).stdout
    for b in json.loads(out)["benchmarks"]:
        if b.get("aggregate_name") == "median":
            return b["real_time"] / 1e3, int(round(b["params"])), b.get("label", "")  # ms → s
    sys.exit(f"bench_train_vs_torch: error: bench-train ran no {filt} (is the model built in?)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("bench_train", nargs="?", default=os.path.normpath(DEFAULT_EXE),
                    help="path to the bench-train binary (default: %(default)s)")
    ap.add_argument("--reps", type=int, default=5,
                    help="bench-train repetitions and timed torch steps per row (median)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed torch steps first")
    ap.add_argument("--models", default="mamba,s4d", help="models, comma-separated")
    ap.add_argument("--threads", default="1,2", help="thread counts")
    ap.add_argument("--json", help="write the rows here")
    a = ap.parse_args()
    if not os.access(a.bench_train, os.X_OK):
        sys.exit(f"bench_train_vs_torch: error: {a.bench_train} is not an executable "
                 "(build bench-train)")
    try:
        import torch
    except ImportError:
        sys.exit("bench_train_vs_torch: error: no torch module (run with /usr/bin/python3; "
                 "scripts/bootstrap --labs installs python3-torch)")
    LM = build_models(torch)
    tokens = BATCH * SEQ
    rows = []
    print(f"torch {torch.__version__}; one AdamW step on {BATCH} sequences of {SEQ} tokens "
          f"(selective copy, d_model {D_MODEL}, {N_LAYERS} layers, d_state {D_STATE}); float32; "
          f"median of {a.reps}")
    print(f"{'model':>6} {'thr':>3} | {'params':>7} {'ssmlab ms':>9} {'tokens/s':>9} | "
          f"{'params':>7} {'torch ms':>9} {'tokens/s':>9} | {'ratio':>6}")
    for kind in a.models.split(","):
        for thr in (int(t) for t in a.threads.split(",")):
            s, sp, label = bench_train_row(a.bench_train, kind, thr, a.reps)
            t, tp = torch_step_times(torch, LM, kind, thr, a.reps, a.warmup)
            r = dict(model=kind, threads=thr, batch=BATCH, sequence_length=SEQ,
                     ssmlab_params=sp, torch_params=tp, ssmlab_step_s=s, torch_step_s=t,
                     ssmlab_tokens_per_s=tokens / s, torch_tokens_per_s=tokens / t,
                     ratio=t / s, ssmlab_model=label)
            rows.append(r)
            print(f"{kind:>6} {thr:>3} | {sp:>7} {s*1e3:>9.2f} {tokens/s:>9.0f} | "
                  f"{tp:>7} {t*1e3:>9.2f} {tokens/t:>9.0f} | {r['ratio']:>5.1f}×", flush=True)
    print("target (issue 12): ssmlab's training ≥ 10× PyTorch's tokens/s: "
          + ("met" if all(r["ratio"] >= 10 for r in rows) else "NOT met") + " in every row ("
          + ", ".join(f"{r['model']}/{r['threads']} {r['ratio']:.1f}×" for r in rows) + ")")
    if a.json:
        tmp = a.json + ".tmp"
        with open(tmp, "w") as fh:
            json.dump({"torch": torch.__version__, "rows": rows}, fh, indent=1)
        os.replace(tmp, a.json)


if __name__ == "__main__":
    main()
