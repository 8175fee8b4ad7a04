"""Checks of notebook 09 (stage 8b: training, and the selection ablation; docs/MATH.md T1–T8).

Conventions, as in the library (lib/include/ssm/train.hpp, Python ssmlab.train): a selective-
copy sequence has a body of L tokens — noise (id 0, train.NOISE) except k data tokens (ids 2 …
v+1, from train.FIRST_DATA) at k random positions, in order — followed by k markers (id 1,
train.MARKER). Its targets are −1 (ignored) everywhere except at the k marker positions L … L+k−1,
where the answer is the j-th data token of the body. Logits (L+k, vocab) are aligned with the
targets: row t is scored against targets[t] (the answer is due at the marker itself).

Every expected answer comes from the library: the targets from train.make_example, the accuracies
from Trainer.evaluate of a briefly trained model, the optimizer step from train.clip_grad_norm
and train.adamw_step. The known mistakes are computed here in NumPy from the same inputs.
"""
import sys

import numpy as np

from . import FAIL, NOT_ATTEMPTED, PASS, TODO, Hint, Result, _finish, check, ssmlab as ssm

train = ssm.train


def _strict():
    """labkit.STRICT as it is now (the tests switch it)."""
    return sys.modules[__package__].STRICT

# ---------------------------------------------------------------------------------------------
# Exercise 9.1 — the targets of a selective-copy sequence (T7)

TARGET_CASES = ((16, 4, 8, 3), (24, 6, 5, 11), (10, 10, 8, 5))  # (L, k, v, index): k = L too


def _examples():
    out = []
    for L, k, v, i in TARGET_CASES:
        task = train.TaskConfig("selective-copy", length=L, tokens=k, vocab=v)
        out.append((k,) + train.make_example(task, seed=9, stream=0, index=i))
    return out


def _targets(tokens, k, mistake=None):
    """The targets (T7), or with one of the known mistakes of _TARGET_MESSAGES."""
    tokens = np.asarray(tokens)
    L = len(tokens) - k
    body = tokens[:L]
    pos = np.flatnonzero(body >= train.FIRST_DATA)
    data = body[pos]
    y = np.full(len(tokens), 0 if mistake == "zeros" else -1)
    if mistake == "at the data":
        y[pos] = data
        return y
    if mistake == "next token":
        return np.append(tokens[1:], -1)
    if mistake == "reversed":
        data = data[::-1]
    if mistake == "ids from 0":
        data = data - train.FIRST_DATA
    where = np.arange(L, L + k) - (1 if mistake == "one early" else 0)
    y[where] = data
    return y


_TARGET_MESSAGES = {
    "at the data": "the answers are due at the markers, after the body: targets[L + j] is the j-th data "
                   "token. Yours marks the data tokens where they stand — that asks the model to predict "
                   "a token it is shown, which needs no memory at all.",
    "next token": "that is next-token prediction of the input itself (targets[t] = tokens[t + 1]). Here only "
                  "the k answers are scored: −1 everywhere else, and at the markers L … L+k−1 the data "
                  "tokens in order.",
    "reversed": "the answers come in the order the tokens appeared: the first data token of the body at "
                "the first marker (a copy, not a reversal).",
    "ids from 0": "targets are token ids of the model's vocabulary (data tokens are 2 … v+1, as in the "
                  "input): do not subtract FIRST_DATA.",
    "one early": "one position early: row t of the logits is scored against targets[t], and the first "
                 "answer is due at the first marker, position L (the model has seen that marker when it "
                 "answers), not at L − 1.",
    "zeros": "the ignored positions are −1: 0 is the noise token, a real class the loss would train "
             "the model to predict.",
}


def check_targets(selective_copy_targets):
    """Exercise 9.1: selective_copy_targets(tokens, k) for three examples of make_example."""
    ex = _examples()
    want = tuple(y for _, _, y in ex)

    def run(fn):
        return tuple(np.asarray(fn(t.copy(), k)) for k, t, _ in ex)

    def wrong(m):
        return tuple(_targets(t, k, m) for k, t, _ in ex)

    names = tuple("targets (L = %d, k = %d)" % (L, k) for L, k, _, _ in TARGET_CASES)
    return check(
        "Exercise 9.1 — selective_copy_targets(tokens, k), three sequences of make_example",
        selective_copy_targets, None, want, rtol=1e-12, outputs=names, call=run, index="t",
        hints=[Hint(wrong(m), msg) for m, msg in _TARGET_MESSAGES.items()])


# ---------------------------------------------------------------------------------------------
# Exercise 9.2 — token and whole-sequence accuracy (what Trainer.evaluate reports)

ACC_N = 96  # held-out sequences
_ACC_TRAINER = []  # one small, briefly trained model, made on first use (0.2 s)


def _acc_trainer():
    if not _ACC_TRAINER:
        # Plain copying (the lag is fixed, so 140 steps of a small Mamba learn part of it: 0.72 of the
        # tokens, 0.30 of the sequences, in 0.2 s): the
        # accuracies land strictly between 0 and 1, token and sequence accuracy differ, and each
        # known mistake below gives another number.
        cfg = train.RunConfig(task=train.TaskConfig("copy", length=8, tokens=3, vocab=6),
                              model=train.ModelSpec("mamba", d_model=32, n_layers=1),
                              optim=train.OptimConfig(lr=5e-3, warmup=10),
                              steps=140, batch=16, threads=1, eval_every=0, seed=3)
        t = train.Trainer(cfg)
        t.run(cfg.steps)
        _ACC_TRAINER.append(t)
    return _ACC_TRAINER[0]


def _acc_inputs():
    t = _acc_trainer()
    task = t.config.task
    ex = [train.make_example(task, seed=t.config.seed, stream=1, index=i) for i in range(ACC_N)]
    logits = np.stack([t.logits(x) for x, _ in ex]).astype(np.float64)
    targets = np.stack([y for _, y in ex])
    return t, logits, targets


def _accuracies(logits, targets, mistake=None):
    pred = np.argmax(logits, axis=-1)
    if mistake == "next token":
        pred, targets = pred[:, :-1], targets[:, 1:]
    right = pred == targets
    kept = targets >= 0
    if mistake == "all positions":
        return right.mean(), right.all(axis=1).mean()
    if mistake == "ignored count as right":
        ok = right | ~kept
        return ok.mean(), ok.all(axis=1).mean()
    tok = right[kept].mean() if mistake != "next token" else (right & kept).sum() / max(kept.sum(), 1)
    seq = (right | ~kept).all(axis=1).mean()
    if mistake == "seq = mean":
        return tok, tok
    if mistake == "seq = any":
        return tok, (right & kept).any(axis=1).mean()
    return tok, seq


_TOKEN_MESSAGES = {
    "all positions": "your token accuracy counts every position; only the answers (targets ≥ 0) are "
                     "scored — the −1 positions are ignored, not wrong.",
    "ignored count as right": "your token accuracy counts the ignored positions (−1) as right; leave them "
                              "out: right answers / answer positions.",
    "next token": "you compared row t of the logits with targets[t + 1]: the targets are already aligned "
                  "with the logits (the answer is due at the marker's own position), compare row t with "
                  "targets[t].",
}
_SEQ_MESSAGES = {
    "all positions": "your sequence accuracy asks every position to be right, the ignored ones too — a "
                     "−1 target is never an argmax, so it is 0. A sequence counts when all its answers "
                     "(targets ≥ 0) are right.",
    "seq = mean": "your sequence accuracy is the mean token accuracy; a sequence counts only when every "
                  "one of its k answers is right (np.all over the answers), so it is ≤ the token accuracy "
                  "— far below it when the errors are spread over the sequences.",
    "seq = any": "your sequence accuracy counts a sequence with any right answer; it needs all of them.",
    "next token": "compare row t of the logits with targets[t] (not t + 1) for the sequence accuracy too.",
}


def check_accuracy(accuracy_np):
    """Exercise 9.2: (token accuracy, sequence accuracy) from logits (n, L, V) and targets (n, L),
    against Trainer.evaluate of the same held-out sequences."""
    t, logits, targets = _acc_inputs()
    r = t.evaluate(ACC_N)
    want = (r["accuracy"], r["sequence_accuracy"])

    def per_output(got):
        try:
            g = [float(np.asarray(x, dtype=float)) for x in got]
        except (TypeError, ValueError):
            return None
        msgs = []
        for i, table in ((0, _TOKEN_MESSAGES), (1, _SEQ_MESSAGES)):
            if abs(g[i] - want[i]) <= 1e-12:
                continue
            for key, msg in table.items():
                w = _accuracies(logits, targets, key)[i]
                if abs(w - want[i]) > 1e-12 and abs(g[i] - w) <= 1e-12:
                    msgs.append(msg)
                    break
        return "\n  Hint: ".join(msgs) or None

    def run(fn):
        out = fn(logits.copy(), targets.copy())
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise TypeError("return two numbers: (token accuracy, sequence accuracy)")
        return tuple(float(np.asarray(x, dtype=float)) for x in out)

    return check(
        "Exercise 9.2 — accuracy_np(logits, targets), %d held-out sequences vs Trainer.evaluate" % ACC_N,
        accuracy_np, None, want, rtol=1e-12, outputs=("token accuracy", "sequence accuracy"),
        call=run, diagnose=[per_output])


# ---------------------------------------------------------------------------------------------
# Exercise 9.3 — one optimizer step: global-norm clipping (T6), then AdamW (T4)

OPT = dict(lr=1e-2, step=3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.1, clip=1.0)


def _opt_cases():
    """Two problems: a matrix (decayed) and a vector (not), with ‖g‖ = 3.7 (clipped) and 0.4 (not)."""
    rng = np.random.default_rng(93)
    cases = []
    for norm in (3.7, 0.4):
        params = [rng.standard_normal((4, 3)), rng.standard_normal(5)]
        grads = [rng.standard_normal((4, 3)), rng.standard_normal(5)]
        s = norm / np.sqrt(sum(np.sum(g * g) for g in grads))
        grads = [g * s for g in grads]
        m = [0.1 * rng.standard_normal(p.shape) for p in params]
        v = [0.01 * rng.random(p.shape) + 1e-4 for p in params]
        cases.append((params, grads, m, v))
    return cases


def _optim():
    return train.OptimConfig(lr=OPT["lr"], beta1=OPT["beta1"], beta2=OPT["beta2"], eps=OPT["eps"],
                             weight_decay=OPT["weight_decay"], clip=OPT["clip"])


DECAY = [True, False]  # the matrix is decayed, the vector (like a bias or a norm's weight) is not


def _library_step(params, grads, m, v):
    sizes = [g.size for g in grads]
    flat, _ = train.clip_grad_norm(np.concatenate([g.ravel() for g in grads]), OPT["clip"])
    clipped = [c.reshape(g.shape) for c, g in zip(np.split(flat, np.cumsum(sizes)[:-1]), grads)]
    return train.adamw_step(_optim(), OPT["lr"], OPT["step"], params, clipped, m, v, decay=DECAY)


def _np_step(params, grads, m, v, mistake=None):
    """Clipping then AdamW in NumPy, or with one of the known mistakes of _OPT_MESSAGES."""
    lr, t, b1, b2, eps, wd, clip = (OPT[k] for k in ("lr", "step", "beta1", "beta2", "eps",
                                                     "weight_decay", "clip"))
    norm = np.sqrt(sum(np.sum(g * g) for g in grads))
    if mistake == "per array":
        grads = [g * min(1.0, clip / np.sqrt(np.sum(g * g))) for g in grads]
    elif mistake == "always":
        grads = [g * clip / norm for g in grads]
    elif mistake != "no clip":
        grads = [g * min(1.0, clip / norm) for g in grads]
    out_p, out_m, out_v = [], [], []
    for p, g, mi, vi, dec in zip(params, grads, m, v, DECAY):
        dec = dec or mistake == "decay all"
        if mistake == "L2" and dec:
            g = g + wd * p
        mi = b1 * mi + (1 - b1) * g
        vi = b2 * vi + (1 - b2) * g * g
        tt = t - 1 if mistake == "step-1" else (t + 1 if mistake == "step+1" else t)
        mh, vh = (mi, vi) if mistake == "no bias correction" else (mi / (1 - b1 ** tt), vi / (1 - b2 ** tt))
        upd = mh / ((vh if mistake == "no sqrt" else np.sqrt(vh)) + eps)
        if mistake == "L2" or not dec:
            newp = p - lr * upd
        elif mistake == "decay without lr":
            newp = p * (1 - wd) - lr * upd
        else:
            newp = p - lr * (upd + wd * p)
        out_p.append(newp)
        out_m.append(mi)
        out_v.append(vi)
    return out_p, out_m, out_v


_OPT_MESSAGES = {
    "L2": "that is L2 regularization (λθ added to the gradient, then through Adam's scaling): AdamW's decay "
          "is decoupled, θ ← θ − lr·(m̂/(√v̂ + ε) + λθ), outside the moments (T4).",
    "decay all": "the decay is applied to every array; the trainer decays the matrices only (decay[i] "
                 "says which): biases, norms, D, A_log and Δ are left alone (T4).",
    "decay without lr": "the decoupled decay is scaled by the step's rate: θ ← θ(1 − lr·λ) − lr·m̂/(√v̂ + ε); "
                        "yours multiplies θ by (1 − λ) (T4).",
    "no bias correction": "the bias correction is missing: m̂ = m/(1 − β₁^t), v̂ = v/(1 − β₂^t) with t the "
                          "1-based step (T4); without it the first steps are too small.",
    "step-1": "the bias correction uses t = step, the 1-based step given (1 − β^step), not step − 1.",
    "step+1": "the bias correction uses t = step, the 1-based step given (1 − β^step), not step + 1.",
    "no sqrt": "the update divides by √v̂ + ε, the root of the second moment (so that the step is about lr "
               "whatever the gradient's scale); yours divides by v̂.",
    "per array": "you clipped each array by its own norm; the bound is on the global norm of all "
                 "gradients together, ‖g‖₂ = √(Σ_arrays Σ g²), one factor min(1, clip/‖g‖) for all (T6).",
    "always": "you scaled the gradient to norm clip even where ‖g‖ < clip: clipping only shrinks, "
              "g ← g·min(1, clip/‖g‖) (T6).",
    "no clip": "the gradient is not clipped: first scale all arrays by min(1, clip/‖g‖₂), ‖g‖₂ the global "
               "norm (T6), then the AdamW step.",
}

_OPT_NAMES = tuple("%s (‖g‖ = %s)" % (w, n) for n in ("3.7", "0.4") for w in ("θ", "m", "v"))


def _flat3(step_out):
    return tuple(np.concatenate([np.ravel(a) for a in part]) for part in step_out)


def check_optimizer(optimizer_step):
    """Exercise 9.3: optimizer_step(params, grads, m, v, step, lr, decay, o) → (params, m, v) lists,
    twice (clipped and not), against train.clip_grad_norm then train.adamw_step."""
    cases = _opt_cases()
    want = sum((_flat3(_library_step(*c)) for c in cases), ())

    def run(fn):
        out = ()
        for params, grads, m, v in cases:
            copies = [[a.copy() for a in part] for part in (params, grads, m, v)]
            got = fn(*copies, OPT["step"], OPT["lr"], list(DECAY), _optim())
            if not isinstance(got, (tuple, list)) or len(got) != 3:
                raise TypeError("return three lists: (params, m, v)")
            if any(len(part) != 2 for part in got):
                raise TypeError("each of params, m, v is a list of 2 arrays, one per parameter")
            out += _flat3(got)
        return out

    def wrong(mistake):
        return sum((_flat3(_np_step(*c, mistake)) for c in cases), ())

    return check(
        "Exercise 9.3 — optimizer_step: global-norm clipping, then AdamW with decoupled decay, two cases",
        optimizer_step, None, want, rtol=1e-12, outputs=_OPT_NAMES, call=run, index="i",
        hints=[Hint(wrong(m), msg) for m, msg in _OPT_MESSAGES.items()])


# ---------------------------------------------------------------------------------------------
# Exercise 9.4 — the prediction, written before the experiment

MODELS = ("mamba", "fixed_dt", "s4d")
LABELS = {"mamba": "Mamba (selective Δ, B, C)", "fixed_dt": "Mamba, Δ not input-dependent",
          "s4d": "S4D (LTI)"}


def _prediction_problem(p):
    if not isinstance(p, dict):
        return "return a dict, e.g. {'mamba': 0.9, 'fixed_dt': 0.5, 's4d': 0.1, 'why': '…'}"
    missing = [k for k in MODELS if k not in p]
    if missing:
        return "the prediction has no %s: one whole-sequence accuracy in [0, 1] for each of %s" % (
            ", ".join(repr(k) for k in missing), ", ".join(MODELS))
    for k in MODELS:
        try:
            x = float(p[k])
        except (TypeError, ValueError):
            return "prediction[%r] = %r is not a number" % (k, p[k])
        if not 0.0 <= x <= 1.0:
            hint = " (a percentage? write %.2f)" % (x / 100) if 1 < x <= 100 else ""
            return "prediction[%r] = %s is not an accuracy in [0, 1]%s" % (k, p[k], hint)
    why = p.get("why", "")
    if not isinstance(why, str) or len(why.split()) < 5:
        return "add 'why': a sentence or two on what you expect each change to break, and why"
    return None


def check_prediction(my_prediction):
    """Exercise 9.4, first part: the prediction is written down (its form is checked, not its values)."""
    title = "Exercise 9.4 — your prediction, before the experiment"
    try:
        p = my_prediction()
    except NotImplementedError:
        return _finish(Result(TODO, "%s %s: %s — write it above, run its cell, then this one."
                              % (TODO, title, NOT_ATTEMPTED)), _strict())
    except Exception as e:
        return _finish(Result(FAIL, "%s %s: your function raised %s: %s." % (FAIL, title, type(e).__name__, e)),
                       _strict())
    problem = _prediction_problem(p)
    if problem:
        return _finish(Result(FAIL, "%s %s: not right yet.\n  Hint: %s." % (FAIL, title, problem)), _strict())
    return _finish(Result(PASS, "%s %s: recorded — whole-sequence accuracy %s. Now run the experiment."
                          % (PASS, title, ", ".join("%s %.2f" % (k, float(p[k])) for k in MODELS))), _strict())


def recorded(my_prediction):
    """The student's prediction, or None while it is not written (or not well formed)."""
    try:
        p = my_prediction()
    except Exception:
        return None
    return None if _prediction_problem(p) else p


def report(results, prediction=None):
    """Prints the table of accuracies beside the prediction, and what the experiment shows. The
    ordering Mamba > fixed Δ > S4D on whole sequences is the lab's claim: with SSMLAB_STRICT=1 (the
    solved notebook in the tests) a run where it does not hold fails."""
    print("%-30s %10s %10s %10s %9s" % ("model", "token acc", "seq acc", "predicted", "train s"))
    for k in MODELS:
        r = results[k]
        pred = "%.2f" % float(prediction[k]) if prediction else "—"
        print("%-30s %10.3f %10.3f %10s %9.1f" % (LABELS[k], r["accuracy"], r["sequence_accuracy"], pred,
                                                  r["seconds"]))
    seq = [results[k]["sequence_accuracy"] for k in MODELS]
    ordered = seq[0] > seq[1] > seq[2]
    print("whole sequences: Mamba %s fixed Δ %s S4D" % (">" if seq[0] > seq[1] else "≤",
                                                         ">" if seq[1] > seq[2] else "≤"))
    if prediction:
        err = {k: float(prediction[k]) - results[k]["sequence_accuracy"] for k in MODELS}
        worst = max(err, key=lambda k: abs(err[k]))
        order_p = sorted(MODELS, key=lambda k: -float(prediction[k]))
        print("your prediction %s the ordering; it was furthest off for %s (%+.2f)."
              % ("got" if order_p == list(MODELS) else "did not get", LABELS[worst], err[worst]))
    else:
        print("(no prediction recorded: write my_prediction() before you look at this table)")
    if _strict() and not ordered:
        raise AssertionError("the lab's claim failed: whole-sequence accuracy %s is not Mamba > fixed Δ > S4D"
                             % dict(zip(MODELS, seq)))
