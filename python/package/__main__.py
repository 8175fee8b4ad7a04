"""python3 -m ssmlab: the installed module's version and location, and one cross-check between
two stages (stage 3's recurrence against stage 4's FFT convolution, MATH.md K1–K2), so a fresh
installation proves it works.

    python3 -m ssmlab             version, location, the cross-check (exit 1 if it fails)
    python3 -m ssmlab --version   the version only
"""
import argparse
import os
import sys

import numpy as np

import ssmlab as ssm


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit code 2, like every ssmlab command
        self.exit(2, "%s: error: %s\n" % (self.prog, message))


def main(argv=None):
    parser = _Parser(
        prog="python3 -m ssmlab",
        description="ssmlab's Python module: version, location and a quick cross-check.")
    parser.add_argument("--version", action="version", version="ssmlab " + ssm.__version__)
    parser.parse_args(argv)  # unknown arguments: one line and exit code 2 (argparse)

    print("ssmlab %s (%s)" % (ssm.__version__, os.path.dirname(os.path.abspath(ssm.__file__))))
    L = 1000
    s = ssm.make_ssm(ssm.damped_oscillator(), dt=0.01, method="zoh")
    t = np.arange(L)
    u = np.sin(0.05 * t) + (t % 100 == 0)
    y_rnn = ssm.unroll(s, u)                               # x_k = Ā x_{k−1} + B̄ u_k
    y_fft = ssm.fft_conv(ssm.kernel(s, L), u, D=s.D)       # y = K̄ ∗ u + D u by FFT
    err, tol = float(np.max(np.abs(y_rnn - y_fft))), 1e-9
    ok = err <= tol
    print("recurrence vs FFT convolution over %d steps: max |diff| = %.2e (tolerance %.0e): %s"
          % (L, err, tol, "PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
