"""labkit: what every ssmlab notebook imports.

* `ssmlab`: the library's Python package, found on sys.path (installed: README, "Install"; or
  PYTHONPATH), in $SSMLAB_PYTHONPATH, or in the build/release/python folder of the checkout
  this file lives in (after `cmake --preset release && cmake --build build/release --target
  ssmlab_py`, or scripts/labs).
* `check(...)`: the engine behind every exercise's check cell. It calls the student's function,
  compares the result with the library's, and prints one verdict:
    ✓  it matches (with the measured error and the tolerance);
    …  not attempted yet (the function still raises NotImplementedError);
    ✗  it is wrong, and the most likely reason: a wrong shape, a complex or NaN result, the
       first index where a sequence diverges, a constant factor, or one of the exercise's
       known mistakes (each exercise lists them as hints: a wrong variant computed from the
       same inputs and what to tell the student when theirs equals it).
  In a student's notebook the verdict is printed and the notebook goes on. With
  SSMLAB_STRICT=1 (the test suite executing the solved notebooks) anything but ✓ raises, so a
  wrong solution or a broken check fails the test.

The per-notebook checks live beside this file: lab01.py for 01-continuous.ipynb, and so on.
"""
import glob
import os
import sys
import traceback

import numpy as np

__all__ = ["ssmlab", "check", "Hint", "Result", "STRICT", "PASS", "TODO", "FAIL"]

PASS, TODO, FAIL = "✓", "…", "✗"
# Markers the test runner looks for in a check cell's output (notebooks/run_notebook.py).
NOT_ATTEMPTED = "not attempted yet"


def _import_ssmlab():
    try:
        import ssmlab  # noqa: F401  (on PYTHONPATH already)

        return sys.modules["ssmlab"]
    except ImportError:
        pass
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [os.environ.get("SSMLAB_PYTHONPATH", "")]
    d = here
    while True:  # the build folder of the checkout that holds this file
        candidates.append(os.path.join(d, "build", "release", "python"))
        parent = os.path.dirname(d)
        if parent == d:
            break
        d = parent
    for c in candidates:
        built = glob.glob(os.path.join(c, "ssmlab", "_core*.so")) if c else []
        if not built:
            continue
        tag = sys.implementation.cache_tag  # e.g. cpython-311
        if not any(tag in os.path.basename(b) for b in built):
            raise ImportError(
                "ssmlab in %s was built for another Python (%s) than this kernel's (%s, %s): "
                "use Debian's /usr/bin/python3 kernel ('Python 3 (ipykernel)')"
                % (c, ", ".join(os.path.basename(b) for b in built), sys.executable, tag))
        sys.path.insert(0, c)
        import ssmlab  # noqa: F401

        return sys.modules["ssmlab"]
    raise ImportError(
        "the ssmlab Python module was not found: build it with `scripts/labs build` (or "
        "`cmake --preset release && cmake --build build/release --target ssmlab_py`), or set "
        "SSMLAB_PYTHONPATH to the folder that holds ssmlab/_core*.so"
    )


ssmlab = _import_ssmlab()
STRICT = os.environ.get("SSMLAB_STRICT") == "1"


class Result:
    """A check's verdict: status is PASS, TODO or FAIL; text is what was printed."""

    def __init__(self, status, text):
        self.status, self.text = status, text

    @property
    def ok(self):
        return self.status == PASS

    def __repr__(self):
        return "Result(%r, %r)" % (self.status, self.text)


class Hint:
    """A known mistake: `wrong` is what that mistake computes (an array, or a tuple of arrays
    for a function that returns several), `message` what to tell a student whose answer equals
    it. `wrong` may also be a callable of the exercise's inputs, evaluated only when needed."""

    def __init__(self, wrong, message):
        self.wrong, self.message = wrong, message


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) and not np.isscalar(x) else (x,)


def _close(a, b, rtol, atol):
    """Elementwise |a − b| ≤ atol + rtol·max|b| (scale of the reference, so zeros are fine)."""
    a, b = _as_tuple(a), _as_tuple(b)
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        try:
            x, y = np.asarray(x, dtype=np.result_type(x, np.float64)), np.asarray(y)
        except (TypeError, ValueError):
            return False  # not numbers
        if np.iscomplexobj(x) and not np.iscomplexobj(y):
            return False  # a real answer is expected (_diagnose says so)
        if x.shape != y.shape or not np.all(np.isfinite(x)):
            return False
        scale = np.max(np.abs(y)) if y.size else 0.0
        if y.size and np.max(np.abs(x - y)) > atol + rtol * scale:
            return False
    return True


def _rel_err(x, y):
    x, y = np.asarray(x), np.asarray(y)
    scale = np.max(np.abs(y)) if y.size else 0.0
    d = np.max(np.abs(x - y)) if y.size else 0.0
    return d / scale if scale > 0 else d


def _num(x, digits=6):
    """A number for a message: '0.25', or '0.25+1.5i' for a complex one."""
    x = complex(x) if np.iscomplexobj(x) else float(x)
    if isinstance(x, complex) and abs(x.imag) <= 1e-12 * abs(x.real):
        x = x.real
    if isinstance(x, complex):
        return "%.*g%+.*gi" % (digits, x.real, digits, x.imag)
    return "%.*g" % (digits, x)


def _describe(x):
    x = np.asarray(x)
    return "%s array of shape %s" % (x.dtype, x.shape)


def _diagnose(got, want, names, rtol, atol, index="k"):
    """Generic reasons for one output being wrong; returns a list of sentences."""
    got_a = np.asarray(got)
    want = np.asarray(want)
    if got_a.dtype == object:
        return ["%s is not an array of numbers (got %s)." % (names, type(got).__name__)]
    if np.iscomplexobj(got_a) and not np.iscomplexobj(want):
        if got_a.shape == want.shape and _close(got_a.real, want, rtol, atol):
            return ["%s is right but complex: return its real part (np.real)." % names]
        return ["%s is complex where a real array is expected." % names]
    if got_a.shape != want.shape:
        if got_a.size == want.size:
            return ["%s has shape %s, expected %s: the values may be right; reshape it (a "
                    "vector is 1-D here, not a column)." % (names, got_a.shape, want.shape)]
        return ["%s has shape %s, expected %s." % (names, got_a.shape, want.shape)]
    if not np.all(np.isfinite(got_a)):
        bad = np.argwhere(~np.isfinite(got_a))[0]
        return ["%s has a non-finite entry (NaN or inf) at index %s." % (names, tuple(bad))]
    if got_a.size == 1:
        return ["%s = %s, expected %s (relative error %.2e > tolerance %.0e)."
                % (names, _num(got_a.item(), 10), _num(want.item(), 10), _rel_err(got_a, want), rtol)]
    out = []
    if _close(-got_a, want, rtol, atol):
        out.append("%s has the right size but the opposite sign." % names)
    else:
        nz = np.abs(want) > atol + rtol * np.max(np.abs(want))
        if np.any(nz):
            ratio = got_a[nz] / want[nz]
            r0 = ratio.flat[0]
            if np.all(np.isfinite(ratio)) and abs(r0 - 1) > 1e-6 and np.allclose(ratio, r0, rtol=1e-8):
                out.append("%s is off by a constant factor %s." % (names, _num(r0)))
    if got_a.ndim == 1 and not out:
        err = np.abs(got_a - want) > atol + rtol * np.max(np.abs(want))
        first = int(np.argmax(err))
        if first > 0:
            out.append("%s matches for %s < %d, then diverges (%s = %d: got %s, expected %s)."
                       % (names, index, first, index, first, _num(got_a[first]), _num(want[first])))
        else:
            out.append("%s is wrong from the first entry (%s = 0: got %s, expected %s)."
                       % (names, index, _num(got_a[0]), _num(want[0])))
    if not out:
        out.append("%s differs from the library's: max relative error %.2e > tolerance %.0e."
                   % (names, _rel_err(got_a, want), rtol))
    return out


def check(title, student, args, expected, *, rtol=1e-10, atol=0.0, hints=(), diagnose=(),
          outputs=None, call=None, strict=None, index="k"):
    """Checks one exercise and prints the verdict.

    title:    "Exercise 2.3 — zoh(A, B, dt)".
    student:  the student's function; called as student(*args) (or call(student) when given).
    expected: the library's answer: an array, or a tuple of arrays for several outputs.
    rtol, atol: pass when every output has max |got − expected| ≤ atol + rtol·max|expected|.
    hints:    Hint(wrong, message) for the exercise's known mistakes, tried in order.
    diagnose: functions of the student's result returning a hint (str) or None, for mistakes
              a fixed wrong answer cannot describe (e.g. a result of the wrong length).
    outputs:  names of the outputs for messages ("Ā", "B̄"); default "your result".
    index:    the letter that indexes a 1-D output in messages ("k" for a sequence in time, "n"
              for the coefficients of a state).
    strict:   raise on anything but a pass (default: SSMLAB_STRICT=1 in the environment).
    Returns a Result.
    """
    strict = STRICT if strict is None else strict
    exp_t = _as_tuple(expected)
    names = list(outputs) if outputs else (["your result"] if len(exp_t) == 1 else
                                           ["output %d" % i for i in range(len(exp_t))])
    try:
        got = call(student) if call else student(*args)
    except NotImplementedError:
        return _finish(Result(TODO, "%s %s: %s — write the function above, run its cell, then "
                                    "this one." % (TODO, title, NOT_ATTEMPTED)), strict)
    except Exception as e:  # the student's code crashed: say where, briefly
        return _finish(Result(FAIL, "%s %s: your function raised %s: %s%s."
                                    % (FAIL, title, type(e).__name__, e, _where(e))), strict)
    got_t = _as_tuple(got) if len(exp_t) > 1 else (got,)
    if len(got_t) != len(exp_t):
        return _finish(Result(FAIL, "%s %s: expected %d outputs (%s), got %d."
                                    % (FAIL, title, len(exp_t), ", ".join(names), len(got_t))),
                       strict)
    if _close(got_t, exp_t, rtol, atol):
        err = max(_rel_err(g, e) for g, e in zip(got_t, exp_t))
        return _finish(Result(PASS, "%s %s: matches the library (max relative error %.1e ≤ "
                                    "tolerance %.0e)." % (PASS, title, err, rtol)), strict)
    lines = ["%s %s: not right yet." % (FAIL, title)]
    for d in diagnose:
        msg = d(got)
        if msg:
            lines.append("  Hint: " + msg)
    for h in ([] if len(lines) > 1 else hints):  # a known mistake explains it best
        wrong = h.wrong(*args) if callable(h.wrong) else h.wrong
        wrong_t = _as_tuple(wrong) if len(exp_t) > 1 else (wrong,)
        if _close(got_t, wrong_t, max(rtol, 1e-9), atol):
            lines.append("  Hint: " + h.message)
            break
    for g, e, n in zip(got_t, exp_t, names):
        if not _close((g,), (e,), rtol, atol):
            lines += ["  " + s for s in _diagnose(g, e, n, rtol, atol, index)]
    return _finish(Result(FAIL, "\n".join(lines)), strict)


def _where(e):
    """' (at line 7: `x = A @ v`)' for the deepest frame of the student's own code."""
    lib = (os.sep + "dist-packages" + os.sep, os.sep + "site-packages" + os.sep,
           os.path.dirname(os.__file__), os.path.dirname(os.path.abspath(__file__)))
    frames = [f for f in traceback.extract_tb(e.__traceback__)
              if not f.filename.startswith("<") and not any(p in f.filename for p in lib)]
    if not frames:
        return ""
    f = frames[-1]
    code = (f.line or "").strip()
    return " (at line %d%s)" % (f.lineno, ": `%s`" % code if code else "")


def _finish(result, strict):
    print(result.text)
    if strict and not result.ok:
        raise AssertionError(result.text)
    return result
