"""Multi-delay kinetic fit: our vectorised fit vs a per-voxel scipy curve_fit loop.

    python benchmarks/bench_kinetic.py [--voxels 1000000] [--subset 2000] [--threads 2]

Simulates N voxels x 6 PLDs of pCASL (tissue-T1 model, CBF 10-90, ATT 0.5-2.0 s, Gaussian noise),
fits all of them with bids_asl.quant.kinetic.fit_multidelay, then fits the first `subset` voxels
with a per-voxel scipy.optimize.curve_fit loop (same model, bounds and start values from our
ATT grid), and prints both throughputs, their ratio, and the agreement of the two on the subset.
Timings are measured in this run; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
from scipy.optimize import curve_fit

from bids_asl.quant import kinetic as K

PLDS = np.array([0.25, 0.5, 1.0, 1.5, 2.0, 2.5])
KW = {'asl_type': 'PCASL', 'tau': 1.8, 't1_blood': 1.65, 'alpha': 0.85, 't1_tissue': 1.3}


def simulate(n, noise, seed=0):
    rng = np.random.default_rng(seed)
    t = K.labelling_time(PLDS, KW['tau'], 'PCASL')
    f = rng.uniform(10, 90, n)
    att = rng.uniform(0.5, 2.0, n)
    y = K.tissue_signal(t[None], f[:, None], att[:, None], **KW)
    return t, f, att, y + rng.normal(0, noise, y.shape)


def curve_fit_loop(y, t, start):
    lo, hi = K.DEFAULT_BOUNDS['cbf'], K.DEFAULT_BOUNDS['att']
    out = np.empty((y.shape[0], 2))

    def model(tt, f, att):
        return K.tissue_signal(tt, f, att, **KW)

    for i in range(y.shape[0]):
        p0 = np.clip(start[i], [lo[0] + 1e-6, hi[0] + 1e-6], [lo[1] - 1e-6, hi[1] - 1e-6])
        out[i], _ = curve_fit(model, t, y[i], p0=p0, bounds=([lo[0], hi[0]], [lo[1], hi[1]]))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--voxels', type=int, default=1_000_000)
    ap.add_argument('--subset', type=int, default=2000)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--noise', type=float, default=2e-4, help='SD of ΔM/M0 (GM peak ~1e-2)')
    args = ap.parse_args(argv)
    t, f, att, y = simulate(args.voxels, args.noise)
    t0 = time.perf_counter()
    ours = K.fit_multidelay(y, t, n_threads=args.threads, **KW)
    t_ours = time.perf_counter() - t0
    sub = slice(0, args.subset)
    # same start values for the loop: our grid start on the subset
    start = K._grid_start(y[sub], t, {**KW, 'lam': 0.9}, K.DEFAULT_BOUNDS, 36)
    t0 = time.perf_counter()
    ref = curve_fit_loop(y[sub], t, start)
    t_loop = time.perf_counter() - t0
    rate_ours = args.voxels / t_ours
    rate_loop = args.subset / t_loop
    d_cbf = np.abs(ours.cbf[sub] - ref[:, 0])
    d_att = np.abs(ours.att[sub] - ref[:, 1])
    print(f'machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, '
          f'numpy {np.__version__}')
    print(f'voxels x PLDs: {args.voxels} x {PLDS.size}, noise SD {args.noise:g}, '
          f'threads {args.threads}')
    print(f'ours:       {t_ours:8.2f} s for {args.voxels} voxels  ({rate_ours:12.0f} voxels/s)')
    print(f'curve_fit:  {t_loop:8.2f} s for {args.subset} voxels  ({rate_loop:12.0f} voxels/s)')
    print(f'speed ratio (voxels/s): {rate_ours / rate_loop:.0f}x')
    print(f'agreement on the subset: |dCBF| median {np.median(d_cbf):.2e}, 99th pct '
          f'{np.percentile(d_cbf, 99):.2e} mL/100g/min; |dATT| median {np.median(d_att):.2e}, '
          f'99th pct {np.percentile(d_att, 99):.2e} s')
    print(f'accuracy vs truth (all voxels): CBF median abs error '
          f'{np.median(np.abs(ours.cbf - f)):.3f}, ATT {np.median(np.abs(ours.att - att)):.4f} s')


if __name__ == '__main__':
    main()
