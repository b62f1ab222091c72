"""Realignment time per volume (ANTs rigid, our settings) at 64x64x24 and 96x96x40.

    python benchmarks/bench_realign.py [--volumes 10]

Each volume is a brain image (the ASLDRO M0 from ../shared when present, zoomed to each shape;
else the package's phantom, whose near-circular slices leave the in-plane rotation poorly
determined) moved by a random rigid transform (up to 2 deg, 2 mm) with scipy; the script
times bids_asl.registration.realign_series on the series (ANTs
import excluded) and prints seconds per volume and the worst motion-recovery error. Timings are
measured in this run; nothing is asserted.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from bids_asl.quant import motion
from bids_asl.synthetic import M0_GM, M0_WM, phantom

DRO_M0 = (Path(__file__).resolve().parents[2] / 'shared' / 'data' / 'asldro'
          / 'sub-pcasl1pld' / 'perf' / 'sub-pcasl1pld_m0scan.nii.gz')


def brain(shape):
    if DRO_M0.exists():
        import nibabel as nb

        data = nb.load(DRO_M0).get_fdata()
        return ndimage.zoom(data, np.array(shape) / np.array(data.shape), order=1), 'ASLDRO M0'
    gm, wm = phantom(shape)
    return (ndimage.gaussian_filter(np.where(gm, M0_GM, np.where(wm, M0_WM, 0.0)), 0.7),
            'synthetic phantom')


def series(shape, zooms, n, rng):
    base, _ = brain(shape)
    affine = np.diag([*zooms, 1.0])
    affine[:3, 3] = -np.array(shape) * np.array(zooms) / 2
    centre = (affine @ [*((np.array(shape) - 1) / 2), 1])[:3]
    truth = np.zeros((n, 6))
    truth[1:, :3] = np.deg2rad(rng.uniform(-2, 2, (n - 1, 3)))
    truth[1:, 3:] = rng.uniform(-2, 2, (n - 1, 3))
    vols = []
    for p in truth:
        m = np.linalg.inv(affine) @ np.linalg.inv(motion.rigid_matrix(p, centre)) @ affine
        vols.append(ndimage.affine_transform(base, m[:3, :3], m[:3, 3], order=3))
    return np.stack(vols, -1), affine, centre, truth


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--volumes', type=int, default=10)
    args = ap.parse_args(argv)
    from bids_asl.registration import _ants, realign_series, rigid_settings

    _ants()  # import ANTs before timing (~3 s)
    rng = np.random.default_rng(0)
    print(f'Python {platform.python_version()}, one ITK thread (reproducible transforms), '
          f'image: {brain((8, 8, 8))[1]}')
    print(f'{"shape":>14} {"voxel mm":>14} {"pyramid":>10} {"s/volume":>9} {"max rot err":>12} '
          f'{"max trans err":>14}')
    for shape, zooms in (((64, 64, 24), (3.4, 3.4, 5.0)), ((96, 96, 40), (2.3, 2.3, 3.0))):
        data, affine, centre, truth = series(shape, zooms, args.volumes, rng)
        t0 = time.perf_counter()
        _, mats = realign_series(data, affine, data[..., 0])
        per_volume = (time.perf_counter() - t0) / args.volumes
        est = np.array([motion.rigid_params(m, centre) for m in mats])
        rot = np.rad2deg(np.abs(est[:, :3] - truth[:, :3])).max()
        trans = np.abs(est[:, 3:] - truth[:, 3:]).max()
        pyr = rigid_settings(shape)['aff_shrink_factors']
        print(f'{"x".join(map(str, shape)):>14} {"x".join(map(str, zooms)):>14} {str(pyr):>10} '
              f'{per_volume:9.2f} {rot:12.3f} {trans:14.3f}')


if __name__ == '__main__':
    main()
