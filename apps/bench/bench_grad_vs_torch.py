#!/usr/bin/python3
"""bench-grad against PyTorch autograd, in one run (stage 8a).

Runs ssmlab's bench-grad (the fast float scan forward and backward, Google Benchmark, JSON) and,
in the same process run on the same machine, PyTorch autograd of the selective scan written as
the popular minimal Mamba implementations write it: Ā = exp(ΔA) and B̄u for all (D, L, N) at
once, then a Python loop over L for h_t = Ā_t h_{t−1} + B̄_t u_t (vectorized over D × N; the
slices taken by unbind, whose backward is linear in L, where the indexing of the minimal
implementations, dA[:, :, t], makes it quadratic), y from the stacked states, the gate, loss = Σ y·dy; backward() gives the same gradients as
ssm::selective_scan_backward (du, dΔraw, dA, dB, dC, dD, dz, dΔbias). float32, the same shapes
and thread counts (torch.set_num_threads), median of `--reps` runs each, alternated with
bench-grad so a load change hits both. Prints the table and the ratios; --json writes them.

  /usr/bin/python3 apps/bench/bench_grad_vs_torch.py build/release/apps/bench/bench-grad

Needs python3-torch (scripts/bootstrap --labs).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def torch_times(torch, D, L, N, threads, reps):
    """Median seconds of (forward with the graph recorded, backward) of the vectorized scan."""
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(7)
    f = dict(dtype=torch.float32)
    u = torch.randn(1, D, L, generator=g, **f).requires_grad_()
    draw = (0.5 * torch.randn(1, D, L, generator=g, **f)).requires_grad_()
    A = (-torch.arange(1, N + 1, **f).repeat(D, 1)).requires_grad_()
    B = torch.randn(1, N, L, generator=g, **f).requires_grad_()
    C = torch.randn(1, N, L, generator=g, **f).requires_grad_()
    Dsk = torch.ones(D, **f).requires_grad_()
    z = torch.randn(1, D, L, generator=g, **f).requires_grad_()
    bias = torch.full((D,), -2.0, **f).requires_grad_()
    dy = torch.randn(1, D, L, generator=g, **f)
    fwd, bwd = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        delta = torch.nn.functional.softplus(draw + bias[None, :, None])      # (M1)
        dA = torch.exp(delta[..., None] * A[None, :, None, :])                # (1, D, L, N)
        dBu = delta[..., None] * B.transpose(1, 2)[:, None] * u[..., None]    # (D6)
        h = torch.zeros(1, D, N, **f)
        hs = []
        # unbind, not dA[:, :, t]: indexing's backward would write a zero tensor of dA's full
        # size for every t (O(L²·D·N)); unbind's is one stack of the L slices' gradients.
        for a_t, bu_t in zip(dA.unbind(2), dBu.unbind(2)):                     # (M3)
            h = a_t * h + bu_t
            hs.append(h)
        H = torch.stack(hs, dim=2)                                            # (1, D, L, N)
        y = torch.einsum("bdln,bnl->bdl", H, C) + Dsk[None, :, None] * u
        y = y * torch.nn.functional.silu(z)                                   # (M4)
        loss = (y * dy).sum()
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        fwd.append(t1 - t0)
        bwd.append(t2 - t1)
        for p in (u, draw, A, B, C, Dsk, z, bias):
            p.grad = None
        del H, hs, h, dA, dBu, y, loss
    return statistics.median(fwd), statistics.median(bwd)


def bench_grad_times(exe, D, L, threads, chunk, reps):
    """Median ms of bench-grad's forward and backward at (D, L, threads, chunk)."""
    filt = f"BM_ScanForward/{D}/{L}/{threads}/|BM_ScanBackward/{D}/{L}/{threads}/{chunk}/"
    out = subprocess.run(
        [exe, f"--benchmark_filter={filt}", f"--benchmark_repetitions={reps}",
         "--benchmark_report_aggregates_only=true", "--benchmark_format=json"],
        check=True, capture_output=True, text=True).stdout
    res = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        kind = "fwd" if b["run_name"].startswith("BM_ScanForward") else "bwd"
        res[kind] = b["real_time"] / 1e3  # ms → s (Unit kMillisecond)
    return res["fwd"], res["bwd"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("bench_grad", help="path to the bench-grad binary")
    ap.add_argument("--reps", type=int, default=3, help="runs per measurement (median)")
    ap.add_argument("--chunk", type=int, default=256, help="the backward's checkpoint chunk")
    ap.add_argument("--shapes", default="1536x2048,768x1024", help="DxL,DxL,… (N = 16)")
    ap.add_argument("--threads", default="1,2", help="thread counts")
    ap.add_argument("--json", help="write the rows here")
    a = ap.parse_args()
    if not os.access(a.bench_grad, os.X_OK):
        sys.exit(f"bench_grad_vs_torch: error: {a.bench_grad} is not an executable (build bench-grad)")
    try:
        import torch
    except ImportError:
        sys.exit("bench_grad_vs_torch: error: no torch module (scripts/bootstrap --labs installs "
                 "python3-torch)")
    rows = []
    print(f"torch {torch.__version__}; float32, N = 16, batch 1; median of {a.reps}; "
          f"ssmlab backward chunk {a.chunk}")
    print(f"{'D×L':>10} {'thr':>3} | {'ssmlab fwd':>10} {'bwd':>8} | {'torch fwd':>10} {'bwd':>8}"
          f" | {'bwd ×':>6} {'fwd+bwd ×':>9}")
    for shape in a.shapes.split(","):
        D, L = (int(x) for x in shape.split("x"))
        for thr in (int(t) for t in a.threads.split(",")):
            sf, sb = bench_grad_times(a.bench_grad, D, L, thr, a.chunk, a.reps)
            tf, tb = torch_times(torch, D, L, 16, thr, a.reps)
            r = dict(D=D, L=L, N=16, threads=thr, chunk=a.chunk, ssmlab_fwd_s=sf,
                     ssmlab_bwd_s=sb, torch_fwd_s=tf, torch_bwd_s=tb, bwd_ratio=tb / sb,
                     fwd_bwd_ratio=(tf + tb) / (sf + sb))
            rows.append(r)
            print(f"{D:>5}×{L:<4} {thr:>3} | {sf*1e3:>8.1f}ms {sb*1e3:>6.1f}ms | "
                  f"{tf*1e3:>8.0f}ms {tb*1e3:>6.0f}ms | {r['bwd_ratio']:>5.0f}× "
                  f"{r['fwd_bwd_ratio']:>8.0f}×")
    print("target (issue 11): ssmlab's backward ≥ 20× faster than PyTorch autograd: "
          + ("met" if all(r["bwd_ratio"] >= 20 for r in rows) else "NOT met") + " in every row")
    if a.json:
        tmp = a.json + ".tmp"
        with open(tmp, "w") as fh:
            json.dump({"torch": torch.__version__, "rows": rows}, fh, indent=1)
        os.replace(tmp, a.json)


if __name__ == "__main__":
    main()
