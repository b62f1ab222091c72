"""Normative z: our closed-form leave-one-out model vs refitting without each control.

    python benchmarks/bench_normative.py [--controls 40] [--voxels 235000] [--covariates 2]

On the same synthetic data (controls x voxels, an intercept and ``--covariates`` columns), times

* ours: :class:`bids_asl.quant.normative.NormativeModel` fed one control at a time (as the group
  level does), fitted once, then every control scored leave-one-out in closed form;
* refit: for each control, ``numpy.linalg.lstsq`` on the other controls (all voxels at once,
  already vectorised over voxels) and the z from that fit,

checks that both give the same z (max |difference| printed) and prints the time ratio measured
in this run. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from bids_asl.quant.normative import NormativeModel, design


def ours(y, x):
    model = NormativeModel(y.shape[1], x.shape[1])
    for row, xi in zip(y, x, strict=True):
        model.add(row, xi)
    model.fit()
    return np.stack([model.z(row, xi, left_out=row) for row, xi in zip(y, x, strict=True)])


def refit(y, x):
    n, p = x.shape
    out = np.empty_like(y)
    for i in range(n):
        keep = np.arange(n) != i
        beta, *_ = np.linalg.lstsq(x[keep], y[keep], rcond=None)
        resid = y[keep] - x[keep] @ beta
        s = np.sqrt((resid ** 2).sum(axis=0) / (n - 1 - p))
        out[i] = (y[i] - x[i] @ beta) / s
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--controls', type=int, default=40)
    parser.add_argument('--voxels', type=int, default=235_000)
    parser.add_argument('--covariates', type=int, default=2)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    cov = rng.normal(size=(args.controls, args.covariates))
    x = design(args.controls, cov if args.covariates else None)
    y = 50 + cov @ rng.normal(size=(args.covariates, 1)) * 3 + rng.normal(
        0, 5, (args.controls, args.voxels)) if args.covariates else rng.normal(
        50, 5, (args.controls, args.voxels))
    t0 = time.perf_counter()
    z_ours = ours(y, x)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    z_refit = refit(y, x)
    t_refit = time.perf_counter() - t0
    print(f'{args.controls} controls x {args.voxels} voxels, {x.shape[1]} parameters')
    print(f'ours (streaming, closed-form leave-one-out): {t_ours:.2f} s')
    print(f'refit without each control (lstsq):          {t_refit:.2f} s')
    print(f'ratio refit/ours: {t_refit / t_ours:.1f}x; max |z difference| '
          f'{np.nanmax(np.abs(z_ours - z_refit)):.2e}')
    print(f'machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, '
          f'load average {os.getloadavg()[0]:.2f}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
