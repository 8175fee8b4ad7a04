#!/usr/bin/python3
"""Prints the polynomial coefficients of ssm/vmath.hpp: Chebyshev fits (near-minimax) of
e^r on [-ln2/2, ln2/2] and 2^f on [-1/2, 1/2], degree 6 (float) and 11 (double), with their
maximum absolute error on the interval. Needs mpmath (Debian: python3-mpmath, installed by
scripts/bootstrap --labs).   Usage: scripts/fit_exp_poly.py"""
import mpmath as mp

mp.mp.dps = 50
half_ln2 = mp.log(2) / 2
for name, f, lo, hi in (("e^r", mp.exp, -half_ln2, half_ln2),
                        ("2^f", lambda x: mp.power(2, x), mp.mpf(-0.5), mp.mpf(0.5))):
    for degree in (6, 11):
        poly, err = mp.chebyfit(f, [lo, hi], degree + 1, error=True)
        print(f"{name} degree {degree}: max abs error {mp.nstr(err, 3)}; coefficients c0 first:")
        for c in reversed(poly):
            print("   ", mp.nstr(c, 20))
