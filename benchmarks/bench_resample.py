"""Resampling: bids_asl.quant.resample (scipy.ndimage.affine_transform) vs the explicit-coordinate
implementation it replaced (kept in tests/reference.py).

    python benchmarks/bench_resample.py [--repeats 5]

The calls the app makes, on the real grids: the 1 mm template onto the 2 mm template grid
(linear), an ASL-sized map on an oblique grid onto the template grid (linear) and the template
onto that ASL grid, and each shipped atlas onto the template grid (nearest neighbour; the
Harvard-Oxford atlas is probabilistic, 113 volumes).  For each: the best of ``--repeats`` wall
times of both implementations, their ratio measured in this run, and the largest difference of
their outputs.  Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from bids_asl.io import templates
from bids_asl.quant.motion import rigid_matrix
from bids_asl.quant.resample import sample_linear, sample_nearest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'tests'))
from reference import linear_by_coordinates, nearest_by_coordinates  # noqa: E402


def best_time(func, args, repeats):
    best, out = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = func(*args)
        best = min(best, time.perf_counter() - t0)
    return best, out


def cases():
    shape, grid = templates.template_grid()
    t1, t1_affine = templates.load_template('t1')
    asl_affine = np.diag([3.5, 3.5, 5.0, 1.0])
    asl_affine[:3, 3] = (-110.0, -120.0, -50.0)
    asl_affine = rigid_matrix(np.array([0.1, -0.05, 0.2, 3.0, -2.0, 5.0])) @ asl_affine
    asl = np.random.default_rng(0).normal(50, 10, (64, 64, 24)).astype(np.float32)
    yield ('linear: template 1 mm -> 2 mm grid', 'linear', (t1, t1_affine, shape, grid))
    yield ('linear: ASL 64x64x24 oblique -> template grid', 'linear',
           (asl, asl_affine, shape, grid))
    yield ('linear: template 1 mm -> ASL grid', 'linear', (t1, t1_affine, asl.shape, asl_affine))
    for name in templates.DEFAULT_ATLASES:
        data, affine = templates.load_atlas(name)
        label = f'nearest: {name} {"x".join(map(str, data.shape))} {data.dtype} -> template grid'
        yield (label, 'nearest', (data, affine, shape, grid))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeats', type=int, default=5)
    args = parser.parse_args(argv)
    print(f'# {platform.python_version()} numpy {np.__version__} '
          f'scipy {__import__("scipy").__version__}, {os.cpu_count()} CPUs, '
          f'best of {args.repeats}')
    print(f'{"case":<62} {"ours s":>8} {"old s":>8} {"old/ours":>9} {"max |diff|":>11}')
    for label, kind, call in cases():
        ours, old = ((sample_linear, linear_by_coordinates) if kind == 'linear'
                     else (sample_nearest, nearest_by_coordinates))
        t_ours, out_ours = best_time(ours, call, args.repeats)
        t_old, out_old = best_time(old, call, args.repeats)
        diff = float(np.max(np.abs(out_ours.astype(np.float64) - out_old)))
        print(f'{label:<62} {t_ours:8.3f} {t_old:8.3f} {t_old / t_ours:9.2f} {diff:11.2e}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
