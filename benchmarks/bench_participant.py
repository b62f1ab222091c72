"""Wall time of a ``bids-asl`` participant run against plain nibabel load + save.

Usage (from the project root)::

    python benchmarks/bench_participant.py [--quick] [--noise-sd SD]

For each dataset it measures, each in a fresh Python process (so peak RSS is per case and the
package imports are paid before the clock starts):

* ours, cold: ``bids_asl.cli.run.main([bids, out, 'participant', '--participant-label', L,
  '--skip-bids-validation', '--work-dir', fresh])``, a fresh output and work dir every time;
* ours, warm: the identical command again, reusing that work dir (nipype's cached results);
* baseline: load the same input NIfTIs (ASL series and M0) with nibabel (``get_fdata``) and
  save them again as ``.nii.gz`` with nibabel into a temporary folder.

Datasets: the ASLDRO subject ``pcasl1pld`` from ``../shared/data/asldro`` (skipped with a
message when absent) and a synthetic subject with 50 label/control pairs on a 96x96x40 grid
(100 volumes) written by :func:`bids_asl.synthetic.make_dataset` (noise-free unless
``--noise-sd SD`` is given: noise makes the data nearly incompressible, so gzip costs more).

Each timing is the median of 3 repetitions (1 with ``--quick``).  One extra cold run per
dataset runs under cProfile to split the time into pybids indexing, nipype, node compute and
gzip; it is not part of the timings.  Nothing here asserts on a timing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
DRO_DIR = PROJECT / '..' / 'shared' / 'data' / 'asldro'
DRO_SUBJECT = 'pcasl1pld'
SYNTH_SHAPE = (96, 96, 40)
SYNTH_PAIRS = 50


# --------------------------------------------------------------------------------------------
# worker side: one measurement in a fresh process


def _maxrss_mib() -> float:
    """Peak resident set size of this process so far, in MiB.

    ``VmHWM`` belongs to this process image only; ``ru_maxrss`` (the fallback off Linux) also
    counts what the parent had resident when it started us.
    """
    try:
        for line in Path('/proc/self/status').read_text().splitlines():
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    scale = 2**20 if sys.platform == 'darwin' else 2**10  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / scale / 1024


def _node_durations(work_dir: Path) -> dict:
    """Interface run time of each nipype node, from the result files of the run just done."""
    from nipype.utils.filemanip import loadpkl  # noqa: PLC0415

    out = {}
    for path in sorted(work_dir.rglob('result_*.pklz')):
        runtime = getattr(loadpkl(path), 'runtime', None)
        duration = getattr(runtime, 'duration', None)
        if duration is not None:
            out[path.parent.name] = float(duration)
    return out


# cProfile categories: (label, kind, predicate on (file, line, function name)).  'cum' sums the
# cumulative time of the matching functions (they must not nest), 'tot' their own time.
_ZLIB_COMPRESS = ("<built-in method zlib.compress>", "<method 'compress' of 'zlib.Compress' "
                  "objects>", "<method 'flush' of 'zlib.Compress' objects>",
                  "<built-in method zlib.crc32>")
_ZLIB_DECOMPRESS = ("<built-in method zlib.decompress>", "<method 'decompress' of "
                    "'zlib.Decompress' objects>")


def _profile_breakdown(stats) -> dict:
    rows = stats.stats  # {(file, line, func): (cc, nc, tottime, cumtime, callers)}

    def cum(file_end, func):
        return sum(v[3] for k, v in rows.items() if k[0].endswith(file_end) and k[2] == func)

    def tot(names):
        return sum(v[2] for k, v in rows.items() if k[0] == '~' and k[2] in names)

    iface = sum(v[3] for k, v in rows.items()
                if '/bids_asl/interfaces/' in k[0] and k[2] == '_run_interface')
    workflow = cum('bids_asl/cli/participant.py', '_run_workflow')
    build = cum('bids_asl/workflows/base.py', 'init_bids_asl_wf')
    return {
        'main() total': cum('bids_asl/cli/run.py', 'main'),
        'pybids index + run discovery': (cum('bids_asl/io/layout.py', 'load_layout')
                                         + cum('bids_asl/io/layout.py', 'collect_asl_runs')),
        'metadata validation': cum('bids_asl/cli/participant.py', 'prepare_runs'),
        'workflow build': build,
        'workflow.run: inside node interfaces': iface,
        'workflow.run: nipype around the nodes': workflow - build - iface,
        '  of which, anywhere: gzip compress (zlib + crc32)': tot(_ZLIB_COMPRESS),
        '  of which, anywhere: gzip decompress (zlib)': tot(_ZLIB_DECOMPRESS),
    }


def _worker(spec: dict) -> dict:
    task = spec['task']
    if task == 'synthetic':
        from bids_asl.synthetic import Variant, make_dataset  # noqa: PLC0415

        start = time.perf_counter()
        variant = Variant(label='big', n_pairs=SYNTH_PAIRS, noise_sd=spec['noise_sd'])
        make_dataset(spec['root'], variants=(variant,), shape=SYNTH_SHAPE)
        return {'seconds': time.perf_counter() - start}
    t0 = time.perf_counter()
    import nibabel as nb  # noqa: PLC0415

    if task == 'participant':
        import bids  # noqa: F401, PLC0415
        import nipype.pipeline.engine  # noqa: F401, PLC0415

        import bids_asl.interfaces.asl  # noqa: F401, PLC0415
        import bids_asl.interfaces.bids  # noqa: F401, PLC0415
        import bids_asl.interfaces.cbf  # noqa: F401, PLC0415
        import bids_asl.workflows.base  # noqa: F401, PLC0415
        from bids_asl.cli.run import main  # noqa: PLC0415
    import_s = time.perf_counter() - t0
    rss_after_import = _maxrss_mib()
    result = {'import_s': import_s, 'rss_after_import_mib': rss_after_import}
    if task == 'nibabel':
        out = Path(spec['out_dir'])
        start = time.perf_counter()
        for name in spec['files']:
            img = nb.load(name)
            data = img.get_fdata()
            nb.save(nb.Nifti1Image(data, img.affine, img.header), str(out / Path(name).name))
        result['seconds'] = time.perf_counter() - start
    else:
        argv = [spec['bids_dir'], spec['out_dir'], 'participant', '--participant-label',
                spec['label'], '--skip-bids-validation', '--work-dir', spec['work_dir']]
        profiler = None
        if spec.get('profile'):
            import cProfile  # noqa: PLC0415

            profiler = cProfile.Profile()
            profiler.enable()
        start = time.perf_counter()
        code = main(argv)
        result['seconds'] = time.perf_counter() - start
        if profiler is not None:
            import pstats  # noqa: PLC0415

            profiler.disable()
            result['profile'] = _profile_breakdown(pstats.Stats(profiler))
        result['exit_code'] = code
        result['nodes'] = _node_durations(Path(spec['work_dir']))
    result['peak_rss_mib'] = _maxrss_mib()
    return result


# --------------------------------------------------------------------------------------------
# driver side


def _run_worker(spec: dict) -> dict:
    with tempfile.NamedTemporaryFile('w', suffix='.json', delete=False) as fobj:
        json.dump(spec, fobj)
        spec_path = fobj.name
    try:
        proc = subprocess.run([sys.executable, __file__, '--worker', spec_path],
                              capture_output=True, text=True, cwd=PROJECT, check=False)
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout + proc.stderr)
            raise RuntimeError(f'benchmark worker failed ({spec["task"]})')
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        os.unlink(spec_path)
    if result.get('exit_code', 0) != 0:
        sys.stderr.write(proc.stderr)
        raise RuntimeError(f'bids-asl exited with {result["exit_code"]}')
    return result


def _fresh(parent: Path, name: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=f'{name}-', dir=parent))
    return path


def _dir_mib(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob('*') if p.is_file()) / 2**20


def _shape_text(files) -> str:
    import nibabel as nb  # noqa: PLC0415

    return ' + '.join('x'.join(map(str, nb.load(f).shape)) for f in files)


def bench_case(case: dict, scratch: Path, repeats: int) -> dict:
    files = [case['asl'], case['m0']]
    input_mib = sum(Path(f).stat().st_size for f in files) / 2**20
    print(f'\n== {case["name"]}: {_shape_text(files)} ({input_mib:.1f} MiB gzipped input)',
          flush=True)
    base = [_run_worker({'task': 'nibabel', 'files': files,
                         'out_dir': str(_fresh(scratch, 'nibabel'))}) for _ in range(repeats)]
    print('  nibabel load+save  s:', ', '.join(f'{r["seconds"]:.3f}' for r in base), flush=True)
    spec = {'task': 'participant', 'bids_dir': case['bids_dir'], 'label': case['label']}
    cold = []
    for _ in range(repeats):
        run = _fresh(scratch, 'run')
        cold.append(_run_worker({**spec, 'out_dir': str(run / 'out'),
                                 'work_dir': str(run / 'work')}))
    print('  ours, cold         s:', ', '.join(f'{r["seconds"]:.3f}' for r in cold), flush=True)
    # identical reruns of the last cold run: same output dir, warm work dir
    warm = [_run_worker({**spec, 'out_dir': str(run / 'out'), 'work_dir': str(run / 'work')})
            for _ in range(repeats)]
    print('  ours, warm rerun   s:', ', '.join(f'{r["seconds"]:.3f}' for r in warm), flush=True)
    output_mib = _dir_mib(run / 'out')
    work_mib = _dir_mib(run / 'work')
    prof_dir = _fresh(scratch, 'profile')
    prof_spec = {**spec, 'out_dir': str(prof_dir / 'out'), 'work_dir': str(prof_dir / 'work'),
                 'profile': True}
    prof = [_run_worker(prof_spec) for _ in ('cold', 'warm')]
    med = lambda rs, key='seconds': statistics.median(r[key] for r in rs)  # noqa: E731
    nodes = {}
    for r in cold:
        for name, seconds in r['nodes'].items():
            nodes.setdefault(name, []).append(seconds)
    return {
        'name': case['name'], 'shape': _shape_text(files), 'input_mib': input_mib,
        'output_mib': output_mib, 'work_mib': work_mib,
        'nibabel_s': med(base), 'cold_s': med(cold), 'warm_s': med(warm),
        'nibabel_rss': med(base, 'peak_rss_mib'), 'cold_rss': med(cold, 'peak_rss_mib'),
        'warm_rss': med(warm, 'peak_rss_mib'),
        'rss_after_import': med(cold, 'rss_after_import_mib'),
        'import_s': med(cold, 'import_s'),
        'nodes': {k: statistics.median(v) for k, v in nodes.items()},
        'profile': [r['profile'] for r in prof], 'profile_wall_s': [r['seconds'] for r in prof],
    }


def _print_results(results: list[dict], repeats: int) -> None:
    print(f'\nmedian of {repeats} run(s) each; every measurement in a fresh Python process, '
          'imports excluded\n')
    head = ('dataset', 'shape (ASL + M0)', 'ours cold s', 'nibabel load+save s',
            'ratio ours/nibabel', 'ours warm rerun s', 'peak RSS MiB ours cold / warm / nibabel')
    rows = [(r['name'], r['shape'], f'{r["cold_s"]:.2f}', f'{r["nibabel_s"]:.2f}',
             f'{r["cold_s"] / r["nibabel_s"]:.1f}', f'{r["warm_s"]:.2f}',
             f'{r["cold_rss"]:.0f} / {r["warm_rss"]:.0f} / {r["nibabel_rss"]:.0f}')
            for r in results]
    print('| ' + ' | '.join(head) + ' |')
    print('|' + '|'.join('---' for _ in head) + '|')
    for row in rows:
        print('| ' + ' | '.join(row) + ' |')
    for r in results:
        print(f'\n{r["name"]}: import of bids_asl + nipype + pybids {r["import_s"]:.2f} s '
              f'(RSS {r["rss_after_import"]:.0f} MiB after it, not in the times above); '
              f'outputs {r["output_mib"]:.1f} MiB, work dir {r["work_mib"]:.1f} MiB')
        print('  nipype node run times in the cold runs (median s): '
              + ', '.join(f'{k} {v:.3f}' for k, v in r['nodes'].items())
              + f'; sum {sum(r["nodes"].values()):.3f}')
        cold_w, warm_w = r['profile_wall_s']
        print(f'  cProfile of one extra cold run and its warm rerun (wall {cold_w:.2f} s and '
              f'{warm_w:.2f} s under the profiler), cumulative s:')
        print(f'    {"":<52} {"cold":>7} {"warm":>7}')
        cold_p, warm_p = r['profile']
        for label, seconds in cold_p.items():
            print(f'    {label:<52} {seconds:7.3f} {warm_p[label]:7.3f}')


def _machine() -> str:
    model = 'unknown'
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                model = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    return (f'nproc {os.cpu_count()}, CPU {model}, Python {platform.python_version()}, '
            f'{platform.system()} {platform.release()}')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true', help='1 repetition instead of 3')
    parser.add_argument('--noise-sd', type=float, default=0.0, metavar='SD',
                        help='Gaussian noise SD added to the synthetic series (default 0: the '
                             'noise-free phantom, which gzip compresses very well)')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        os.environ.setdefault('NIPYPE_NO_ET', '1')
        print(json.dumps(_worker(json.loads(Path(args.worker).read_text()))))
        return 0
    repeats = 1 if args.quick else 3
    print(_machine())
    print(', '.join(f'{name} {version(name)}'
                    for name in ('bids_asl', 'nipype', 'pybids', 'nibabel', 'numpy')))
    scratch = Path(tempfile.mkdtemp(prefix='bench-bids-asl-'))
    try:
        cases = []
        dro = DRO_DIR.resolve()
        perf = dro / f'sub-{DRO_SUBJECT}' / 'perf'
        if perf.is_dir():
            cases.append({'name': f'ASLDRO {DRO_SUBJECT}', 'bids_dir': str(dro),
                          'label': DRO_SUBJECT,
                          'asl': str(perf / f'sub-{DRO_SUBJECT}_asl.nii.gz'),
                          'm0': str(perf / f'sub-{DRO_SUBJECT}_m0scan.nii.gz')})
        else:
            print(f'skipping the ASLDRO case: {DRO_DIR} not found (it lives in ../shared)')
        # written by a worker too, so that this driver process stays small
        root = scratch / 'synthetic'
        made = _run_worker({'task': 'synthetic', 'root': str(root),
                            'noise_sd': args.noise_sd})
        print(f'synthetic dataset written in {made["seconds"]:.2f} s')
        perf = root / 'sub-big' / 'perf'
        noise = f', noise_sd {args.noise_sd:g}' if args.noise_sd else ''
        cases.append({'name': f'synthetic big ({2 * SYNTH_PAIRS} vols{noise})',
                      'bids_dir': str(root), 'label': 'big',
                      'asl': str(perf / 'sub-big_asl.nii.gz'),
                      'm0': str(perf / 'sub-big_m0scan.nii.gz')})
        load_start = os.getloadavg()
        results = [bench_case(case, scratch, repeats) for case in cases]
        _print_results(results, repeats)
        loads = lambda values: ' '.join(f'{v:.2f}' for v in values)  # noqa: E731
        print(f'\nload average (1, 5, 15 min): {loads(load_start)} at the start, '
              f'{loads(os.getloadavg())} at the end (other work on the machine skews the times)')
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
