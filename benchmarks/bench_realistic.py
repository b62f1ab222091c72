"""The yardstick: one realistic subject through the default participant command.

Usage (from the project root)::

    python benchmarks/bench_realistic.py [--nprocs 1 2] [--keep DIR]

The subject (built by :mod:`bids_asl.synthetic_brain` from the MNI152 2009a template and tissue
priors shipped in nilearn, nothing pre-aligned):

* a 1 mm T1w on the template's own 197×233×189 grid, the head turned by (2, −1, 3)° and moved by
  (1, −2, 3) mm, with a scalp/skull shell;
* a 3-D pCASL run of 50 label/control pairs (100 volumes) on a 96×96×40 grid of 2.5×2.5×3.5 mm,
  the head turned by (3, −2, 4)° and moved by (2, −3, 4) mm; LD 1.8 s, PLD 1.8 s, 3 T; a separate
  M0 (TR 6 s); GM 60 / WM 20 mL/100 g/min by the white-paper forward model (partial volume from
  the priors); Gaussian noise of SD 0.8 on every volume (a ΔM SNR of ~0.5 per pair in GM).

It then runs ``bids-asl BIDS OUT participant --skip-bids-validation --nprocs N -w WORK`` (the
default pipeline: realignment, anatomy, atlases, QC, report) in a fresh process and prints, in
one run:

* the wall time and the time of each pipeline stage (nipype's runtime record of every node,
  summed by stage);
* the peak RSS of the whole process tree (sampled every 20 ms: what a Slurm cgroup sees);
* the I/O floor: nibabel load (``get_fdata``) + save (``.nii.gz``) of the same inputs, and the
  ratio wall / floor;
* GM and WM CBF against the truth: the mean of our CBF and of the true CBF map over the voxels
  whose true GM (WM) fraction is ≥ 0.7 (0.9), and their ratio.

Nothing here asserts on a timing.  Numbers are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hpc_resources import tree_rss_kib  # noqa: E402

#: node name → stage (first match wins; anything else is "other")
STAGES = (('realign', 'realignment'), ('t1w_', 'T1w pipeline'), ('brain_mask', 'T1w pipeline'),
          ('n4', 'T1w pipeline'), ('segment', 'T1w pipeline'), ('to_template', 'T1w pipeline'),
          ('asl_to_anat', 'ASL to T1w/template'), ('project', 'maps to T1w/template'),
          ('atlas', 'atlases'), ('prepare_', 'atlases'), ('regional', 'regional tables'),
          ('asymmetry', 'asymmetry'), ('fit_kinetic', 'CBF'), ('compute_cbf', 'CBF'),
          ('compute_', 'ΔM, M0, mask, QC'), ('ds_', 'writing derivatives'))


def build_subject(root: Path) -> Path:
    from bids_asl.synthetic import Variant
    from bids_asl.synthetic_brain import Acquisition, Geometry, make_brain_dataset

    asl = Geometry(shape=(96, 96, 40), zooms=(2.5, 2.5, 3.5), centre=(0.0, -18.0, 15.0),
                   pose=(3.0, -2.0, 4.0, 2.0, -3.0, 4.0))
    t1w = Geometry(shape=(197, 233, 189), zooms=(1.0, 1.0, 1.0), centre=(0.0, -18.0, 22.0),
                   pose=(2.0, -1.0, 3.0, 1.0, -2.0, 3.0))
    v = Variant(label='real', n_pairs=50, noise_sd=0.8, m0_tr=6.0)
    return make_brain_dataset(root, [(v, Acquisition(geometry=asl), {'t1w': t1w})])


def io_floor(bids: Path, scratch: Path) -> float:
    """Seconds to load every input image with nibabel and save it again (.nii.gz)."""
    import nibabel as nb

    files = sorted(p for p in (bids / 'sub-real').rglob('*.nii.gz'))
    out = scratch / 'floor'
    out.mkdir()
    start = time.perf_counter()
    for path in files:
        img = nb.load(str(path))
        data = img.get_fdata()
        nb.save(nb.Nifti1Image(data.astype(img.get_data_dtype()), img.affine, img.header),
                str(out / path.name))
    elapsed = time.perf_counter() - start
    shutil.rmtree(out)
    return elapsed


def stage_times(work: Path) -> dict[str, float]:
    from nipype.pipeline.engine.utils import load_resultfile

    times: dict[str, float] = defaultdict(float)
    for result in work.rglob('result_*.pklz'):
        node = result.parent.name
        duration = getattr(load_resultfile(str(result)).runtime, 'duration', 0.0) or 0.0
        stage = next((s for key, s in STAGES if key in node), 'other')
        times[stage] += float(duration)
    return dict(times)


def accuracy(bids: Path, out: Path) -> dict[str, tuple[float, float]]:
    import nibabel as nb

    truth = bids / 'derivatives' / 'groundtruth' / 'sub-real' / 'perf'
    cbf = nb.load(str(out / 'sub-real' / 'perf' / 'sub-real_cbf.nii.gz')).get_fdata()
    true = nb.load(str(truth / 'sub-real_desc-groundtruth_cbf.nii.gz')).get_fdata()
    rows = {}
    for tissue, threshold in (('GM', 0.7), ('WM', 0.9)):
        frac = nb.load(str(truth / f'sub-real_label-{tissue}_probseg.nii.gz')).get_fdata()
        sel = frac >= threshold
        rows[tissue] = (float(cbf[sel].mean()), float(true[sel].mean()))
    return rows


def run(bids: Path, scratch: Path, nprocs: int) -> dict:
    out, work = scratch / f'out-{nprocs}', scratch / f'work-{nprocs}'
    cmd = [str(Path(sys.executable).parent / 'bids-asl'), str(bids), str(out), 'participant',
           '--skip-bids-validation', '--nprocs', str(nprocs), '-w', str(work)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]

    def sample():
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_rss_kib(proc.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    _, err = proc.communicate()
    sampler.join()
    wall = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f'{" ".join(cmd)} failed ({proc.returncode}):\n{err[-3000:]}')
    return {'wall': wall, 'peak_mib': peak[0] / 1024, 'stages': stage_times(work),
            'accuracy': accuracy(bids, out)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--nprocs', type=int, nargs='+', default=[1, 2])
    parser.add_argument('--keep', type=Path, help='build and keep everything in this folder')
    args = parser.parse_args(argv)
    os.environ.setdefault('NIPYPE_NO_ET', '1')
    tmp = None
    if args.keep:
        scratch = args.keep
        scratch.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix='bids-asl-realistic-')
        scratch = Path(tmp.name)
    try:
        t0 = time.perf_counter()
        bids = build_subject(scratch / 'bids')
        print(f'subject built in {time.perf_counter() - t0:.1f} s: {bids}', flush=True)
        floor = io_floor(bids, scratch)
        print(f'I/O floor (nibabel load + save of the inputs): {floor:.2f} s', flush=True)
        for nprocs in args.nprocs:
            r = run(bids, scratch, nprocs)
            print(f'\n## --nprocs {nprocs}\n')
            print(f'wall {r["wall"]:.1f} s = {r["wall"] / floor:.1f} x the I/O floor; '
                  f'peak RSS (process tree) {r["peak_mib"]:.0f} MiB')
            print('\n| stage | node time (s) |\n|---|---|')
            for stage, seconds in sorted(r['stages'].items(), key=lambda kv: -kv[1]):
                print(f'| {stage} | {seconds:.1f} |')
            print('\n| tissue | ours | truth | ratio |\n|---|---|---|---|')
            for tissue, (ours, true) in r['accuracy'].items():
                print(f'| {tissue} | {ours:.2f} | {true:.2f} | {ours / true:.3f} |')
            sys.stdout.flush()
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f'\n(this script itself peaked at {maxrss:.0f} MiB while building the subject)')
    finally:
        if tmp is not None:
            tmp.cleanup()
    return 0


if __name__ == '__main__':
    sys.exit(main())
