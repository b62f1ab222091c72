"""The group level on N synthetic participants' derivatives (default 1,000).

    python benchmarks/bench_group.py [--subjects 1000] [--nprocs 2] [--keep DIR] [--normative]

Each participant gets what the participant level and the anatomy pipeline write and the group
level reads: a CBF sidecar, a QC table, a template-space CBF map on the 2 mm MNI152 grid of
nilearn (99x117x95, float32, gzip level 6 as bids_asl writes it; noisy CBF in a 235k-voxel
brain, 0 outside), three regional tables (AAL 116, HarvardOxford 69, DesikanKilliany 68 regions)
and a tissue table. To keep set-up short, 25 distinct maps are compressed once and their bytes
copied (decompression work per file is unchanged). Then ``bids-asl BIDS OUT group --nprocs N``
runs in a fresh process; the script prints its wall time, the peak RSS of that process and the
sizes of what it wrote. ``--normative`` adds ``--reference-group group=control
--normative-covariates age sex`` (half the participants are controls). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nb
import numpy as np

from bids_asl.io.images import nifti_bytes
from bids_asl.io.qctable import qc_row

GRID = (99, 117, 95)
AFFINE = np.array([[2.0, 0, 0, -98], [0, 2.0, 0, -134], [0, 0, 2.0, -72], [0, 0, 0, 1]])
ATLASES = {'AAL': 116, 'HarvardOxford': 69, 'DesikanKilliany': 68}
TEMPLATE = 'MNI152NLin2009aSym'
N_DISTINCT = 25


def _brain():
    idx = np.indices(GRID).astype(float)
    centre = (np.array(GRID) - 1) / 2
    radii = np.array([34.0, 42.0, 33.0])  # ~235k voxels, the size of nilearn's brain mask
    return sum(((idx[i] - centre[i]) / radii[i]) ** 2 for i in range(3)) <= 1


def _regional(rng, atlas, n):
    head = ('atlas\tindex\tregion\tmean\tmedian\tsd\tn_voxels\tmean_left\tmean_right\tn_left\t'
            'n_right\tasymmetry_index\n')
    rows = []
    for i in range(1, n + 1):
        left, right = rng.normal(50, 8, 2)
        rows.append(f'{atlas}\t{i}\t{atlas}_region_{i}\t{(left + right) / 2:.4f}\t'
                    f'{(left + right) / 2:.4f}\t{rng.uniform(5, 12):.4f}\t'
                    f'{rng.integers(50, 900)}\t{left:.4f}\t{right:.4f}\t{rng.integers(20, 450)}\t'
                    f'{rng.integers(20, 450)}\t{(left - right) / (left + right):.5f}\n')
    return head + ''.join(rows)


def make_derivatives(root: Path, n_subjects: int, seed: int = 0) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    bids, out = root / 'bids', root / 'out'
    bids.mkdir(parents=True)
    (bids / 'dataset_description.json').write_text(json.dumps(
        {'Name': 'group benchmark', 'BIDSVersion': '1.10.0', 'DatasetType': 'raw'}))
    labels = [f'{i:04d}' for i in range(1, n_subjects + 1)]
    (bids / 'participants.tsv').write_text('participant_id\tage\tsex\tgroup\n' + ''.join(
        f'sub-{lab}\t{rng.integers(20, 80)}\t{"MF"[i % 2]}\t{("control", "patient")[i // 2 % 2]}\n'
        for i, lab in enumerate(labels)))
    brain = _brain()
    ref = nb.Nifti1Image(np.zeros(GRID, np.float32), AFFINE)
    maps = []
    for _ in range(N_DISTINCT):
        cbf = np.zeros(GRID, np.float32)
        cbf[brain] = rng.normal(50, 15, int(brain.sum()))
        maps.append(nifti_bytes(cbf, ref))
    out.mkdir()
    (out / 'dataset_description.json').write_text('{}')
    for i, lab in enumerate(labels):
        perf = out / f'sub-{lab}' / 'perf'
        perf.mkdir(parents=True)
        prefix = f'sub-{lab}'
        (perf / f'{prefix}_cbf.json').write_text(json.dumps({'Units': 'mL/100g/min'}))
        metrics = {'mean_fd': float(rng.gamma(2, 0.1)), 'max_fd': float(rng.gamma(3, 0.3)),
                   'deltam_tsnr': float(rng.normal(2, 0.5)), 'qei': float(rng.beta(8, 2)),
                   'cbf_mean_brain': float(rng.normal(45, 8)), 'n_deltam_volumes': 40,
                   'n_deltam_used_score': 38, 'n_deltam_rejected_score': 2,
                   'score_rejected_volumes': '5 6 17 18', 'tissue_maps': 'yes'}
        (perf / f'{prefix}_desc-qc_cbf.tsv').write_text(qc_row(metrics, {'subject': lab}, prefix))
        (perf / f'{prefix}_space-{TEMPLATE}_cbf.nii.gz').write_bytes(maps[i % N_DISTINCT])
        for atlas, n in ATLASES.items():
            (perf / f'{prefix}_space-{TEMPLATE}_seg-{atlas}_desc-regional_cbf.tsv').write_text(
                _regional(rng, atlas, n))
        (perf / f'{prefix}_desc-tissue_cbf.tsv').write_text(
            'tissue\tthreshold\tmean\tmedian\tsd\tn_voxels\n'
            f'GM\t0.7\t{rng.normal(60, 8):.4f}\t60\t9\t90000\n'
            f'WM\t0.7\t{rng.normal(22, 4):.4f}\t22\t5\t70000\n'
            f'brain\t0.5\t{rng.normal(45, 6):.4f}\t45\t14\t235000\n')
    return bids, out


def _size_mib(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob('*') if p.is_file()) / 2 ** 20


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--subjects', type=int, default=1000)
    parser.add_argument('--nprocs', type=int, default=2)
    parser.add_argument('--keep', type=Path, help='build the derivatives here and keep them')
    parser.add_argument('--normative', action='store_true',
                        help='also normative z against the controls (age, sex covariates)')
    args = parser.parse_args(argv)
    root = args.keep or Path(tempfile.mkdtemp(prefix='bids-asl-bench-group-'))
    try:
        if not (root / 'out').exists():
            t0 = time.perf_counter()
            bids, out = make_derivatives(root, args.subjects)
            print(f'set-up: {args.subjects} participants in {time.perf_counter() - t0:.1f} s, '
                  f'{_size_mib(out):.0f} MiB of derivatives')
        else:
            bids, out = root / 'bids', root / 'out'
        shutil.rmtree(out / 'group', ignore_errors=True)
        env = {**os.environ, 'NIPYPE_NO_ET': '1'}
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, '-m', 'bids_asl', str(bids), str(out), 'group',
                               '--nprocs', str(args.nprocs), '--exclude-fd-above', '0.5',
                               *(['--reference-group', 'group=control', '--normative-covariates',
                                  'age', 'sex'] if args.normative else [])],
                              env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if proc.returncode:
            print(proc.stderr, file=sys.stderr)
            return proc.returncode
        print(f'group level: {args.subjects} participants, --nprocs {args.nprocs}: {wall:.1f} s '
              f'wall, peak RSS {rss:.0f} MiB')
        for path in sorted((out / 'group').iterdir()):
            size = _size_mib(path) if path.is_dir() else path.stat().st_size / 2 ** 20
            print(f'  {path.name}: {size:.1f} MiB')
        print(f'  group.html: {(out / "group.html").stat().st_size / 2 ** 20:.1f} MiB')
        print(f'machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, '
              f'load average {os.getloadavg()[0]:.2f}')
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
