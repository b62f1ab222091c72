"""Wall time and memory of one ``bids-asl`` participant run, for Slurm ``--mem``/``--time``.

Usage (from the project root, Linux, GNU time in /usr/bin/time)::

    python benchmarks/hpc_resources.py [--nprocs 1 2] [--quick]

Each case runs the real command line ``bids-asl BIDS OUT participant --participant-label L
--nprocs N -w WORK`` (BIDS validation included) under ``/usr/bin/time -v`` with a fresh output
and work directory, and reports

* wall: GNU time's elapsed time (interpreter start-up and imports included);
* maxrss: GNU time's "Maximum resident set size": the largest single process (bids-asl itself,
  a nipype MultiProc worker, or the BIDS validator);
* tree peak: the peak of the summed RSS of the whole process tree, sampled every 20 ms: what a
  Slurm memory limit (cgroup) sees when ``--nprocs`` > 1 starts worker processes.

Cases: the demo subjects of :func:`bids_asl.synthetic.make_dataset` (24x26x14 grid), a
synthetic subject with 50 pairs on a 96x96x40 grid with Gaussian noise (100 volumes, 140 MiB of
float32, close to a clinical 3-D pCASL series), and ASLDRO ``sub-pcaslmultipld`` (64x64x24x12,
6 delays, multi-delay fit) from ``../shared/data/asldro`` when it exists.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
DRO_DIR = PROJECT / '..' / 'shared' / 'data' / 'asldro'


def tree_rss_kib(root_pid: int) -> int:
    """Summed VmRSS of ``root_pid`` and all its descendants."""
    parents = {}
    for stat in Path('/proc').glob('[0-9]*/stat'):
        try:
            fields = stat.read_text().rsplit(')', 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    tree, todo = set(), [root_pid]
    while todo:
        pid = todo.pop()
        tree.add(pid)
        todo.extend(p for p, ppid in parents.items() if ppid == pid and p not in tree)
    total = 0
    for pid in tree:
        try:
            status = Path(f'/proc/{pid}/status').read_text()
        except OSError:
            continue
        match = re.search(r'^VmRSS:\s+(\d+) kB', status, re.MULTILINE)
        total += int(match.group(1)) if match else 0
    return total


def measure(bids: Path, label: str, nprocs: int, scratch: Path) -> dict:
    out, work = scratch / f'out-{label}-{nprocs}', scratch / f'work-{label}-{nprocs}'
    bids_asl = Path(sys.executable).parent / 'bids-asl'
    cmd = ['/usr/bin/time', '-v', str(bids_asl), str(bids), str(out), 'participant',
           '--participant-label', label, '--nprocs', str(nprocs), '-w', str(work)]
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
    if proc.returncode:
        raise SystemExit(f'{" ".join(cmd)} failed ({proc.returncode}):\n{err}')
    wall = re.search(r'Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)', err)
    hours, minutes, seconds = (float(g or 0) for g in wall.groups())
    maxrss = int(re.search(r'Maximum resident set size \(kbytes\): (\d+)', err).group(1))
    shutil.rmtree(out)
    shutil.rmtree(work, ignore_errors=True)
    return {'wall': 3600 * hours + 60 * minutes + seconds, 'maxrss': maxrss / 1024,
            'tree': peak[0] / 1024}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--nprocs', type=int, nargs='+', default=[1, 2])
    parser.add_argument('--quick', action='store_true', help='skip the 96x96x40x100 case')
    args = parser.parse_args(argv)
    from bids_asl.synthetic import Variant, make_dataset

    with tempfile.TemporaryDirectory(prefix='bids-asl-hpc-') as tmp:
        scratch = Path(tmp)
        demo = make_dataset(scratch / 'demo')
        cases = [('synthetic demo', demo, 'pcasl3d'), ('synthetic demo', demo, 'pasl2d')]
        if not args.quick:
            big = make_dataset(scratch / 'big', shape=(96, 96, 40), variants=(
                Variant(label='big', n_pairs=50, noise_sd=2.0),))
            cases.append(('synthetic 96x96x40x100, noisy', big, 'big'))
        if (DRO_DIR / 'sub-pcaslmultipld').is_dir():
            cases.append(('ASLDRO', DRO_DIR.resolve(), 'pcaslmultipld'))
        else:
            print(f'(no {DRO_DIR}: ASLDRO case skipped)', file=sys.stderr)
        print('| data | subject | --nprocs | wall (s) | maxrss (MiB) | tree peak (MiB) |')
        print('|---|---|---|---|---|---|')
        for name, bids, label in cases:
            for nprocs in args.nprocs:
                r = measure(bids, label, nprocs, scratch)
                print(f'| {name} | {label} | {nprocs} | {r["wall"]:.1f} | {r["maxrss"]:.0f} '
                      f'| {r["tree"]:.0f} |', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
