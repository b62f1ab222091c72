"""Anatomy stage on a 1 mm T1w: wall time per step and peak memory (RSS), 2 cores.

    python benchmarks/bench_anatomy.py [--t1w FILE] [--threads 1]

The T1w is ASLDRO's (../shared) resampled to 1 mm (193x229x193 over the same field of view),
with Rician-like noise and a smooth 20 % bias field, so N4 and the mask have work to do; or any
``--t1w``. It runs the steps of the T1w workflow (brain mask, N4, Atropos, SyN to the template)
and the per-run ASL reference → T1w rigid registration and tissue fractions, as the pipeline
does (one ITK thread unless ``--threads``, for identical reruns). Prints seconds per step and
the process's peak RSS. Each step prints wall time and the process's CPU time: with one ITK
thread the CPU time is what the step takes on an idle core, even when the machine is shared.
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

SHARED = Path(__file__).resolve().parents[2] / 'shared' / 'data' / 'asldro' / 'sub-pcasl1pld'


def one_mm_t1w(rng):
    import nibabel as nb

    img = nb.load(SHARED / 'anat' / 'sub-pcasl1pld_T1w.nii.gz')
    zoom = np.sqrt((img.affine[:3, :3] ** 2).sum(axis=0))
    data = ndimage.zoom(img.get_fdata(), zoom, order=1)
    affine = img.affine.copy()
    affine[:3, :3] = np.diag(np.sign(np.diag(img.affine[:3, :3])))
    x = np.linspace(-1, 1, data.shape[0])[:, None, None]
    y = np.linspace(-1, 1, data.shape[1])[None, :, None]
    bias = 1 + 0.2 * (x + 0.5 * y)
    noisy = np.abs(data * bias + rng.normal(0, 0.02 * data.max(), data.shape))
    return noisy * (data > 1e-3 * data.max()), affine


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--t1w', type=Path)
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args(argv)
    os.environ['ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS'] = str(args.threads)
    import nibabel as nb

    from bids_asl.io.templates import template_images
    from bids_asl.registration import anat

    rng = np.random.default_rng(0)
    if args.t1w:
        img = nb.load(args.t1w)
        t1w, affine = img.get_fdata(), img.affine
    else:
        t1w, affine = one_mm_t1w(rng)
    m0_img = nb.load(SHARED / 'perf' / 'sub-pcasl1pld_m0scan.nii.gz')
    m0 = m0_img.get_fdata()
    m0 = m0.mean(axis=3) if m0.ndim == 4 else m0
    print(f'T1w {t1w.shape} voxels {np.sqrt((affine[:3, :3] ** 2).sum(0)).round(2)} mm; '
          f'{platform.processor() or platform.machine()}, {os.cpu_count()} cores, '
          f'ITK threads {args.threads}')
    times = {}

    def cpu():
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    class Step:
        def __init__(self, name):
            self.name = name

        def __enter__(self):
            self.wall, self.cpu = time.perf_counter(), cpu()

        def __exit__(self, *exc):
            times[self.name] = (time.perf_counter() - self.wall, cpu() - self.cpu)

    start, start_cpu = time.perf_counter(), cpu()
    with Step('load ANTs + template'):
        anat._ants()
        tpl, _, tpl_affine = template_images()
    with tempfile.TemporaryDirectory() as tmp:
        with Step('brain mask'):
            mask = anat.brain_mask(t1w, affine, tpl['t1'], tpl_affine)[0]
        with Step('N4 bias correction'):
            corrected = anat.bias_correct(t1w, affine, mask)
        with Step('Atropos (3 classes)'):
            probs = anat.segment(corrected, affine, mask)
        with Step('SyN to the template (2 mm)'):
            anat.register_to_template(corrected * mask, affine, tpl['t1'], tpl_affine, tmp)
        with Step('per run: ASL -> T1w + fractions'):
            mat, _ = anat.register_linear(m0, m0_img.affine, corrected * mask, affine,
                                          Path(tmp) / 'asl.mat', fixed_mask=mask,
                                          fixed_spacing=anat.ASL_TARGET_SPACING)
            anat.probabilities_to_grid([probs[..., k] for k in range(3)], affine, m0.shape,
                                       m0_img.affine, [mat], [True])
    times['total'] = (time.perf_counter() - start, cpu() - start_cpu)
    print(f'{"step":34s} {"wall":>8s} {"CPU":>8s}')
    for name, (wall, used) in times.items():
        print(f'{name:34s} {wall:7.1f}s {used:7.1f}s')
    print(f'peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
