"""Reruns: cached results are reused, outputs are byte-identical, deleted outputs come back."""

import hashlib

from bids_asl.synthetic import Variant, make_dataset

from conftest import run_cli


def _digests(out):
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob('*')) if p.is_file() and '/log/' not in p.as_posix()
            and 'logs' not in p.parts}


def test_rerun_reuses_cache_and_gives_identical_bytes(tmp_path):
    bids = make_dataset(tmp_path / 'bids', variants=(Variant(label='r'),), shape=(12, 13, 8))
    args = [bids, tmp_path / 'out', 'participant', '--skip-bids-validation', '-w',
            tmp_path / 'work']
    assert run_cli(*args) == 0
    first = _digests(tmp_path / 'out')
    assert 'sub-r/perf/sub-r_cbf.nii.gz' in first
    results = sorted((tmp_path / 'work').rglob('result_compute_cbf.pklz'))
    assert len(results) == 1
    stamp = results[0].stat().st_mtime_ns
    (tmp_path / 'out' / 'sub-r/perf/sub-r_cbf.nii.gz').unlink()  # lost output
    assert run_cli(*args) == 0
    assert results[0].stat().st_mtime_ns == stamp  # computation came from the cache
    assert _digests(tmp_path / 'out') == first  # ... and the lost file is back, same bytes


def test_fresh_work_dir_gives_identical_bytes(tmp_path):
    bids = make_dataset(tmp_path / 'bids', variants=(Variant(label='r'),), shape=(12, 13, 8))
    for name in ('a', 'b'):
        assert run_cli(bids, tmp_path / name, 'participant', '--skip-bids-validation', '-w',
                       tmp_path / f'work-{name}') == 0
    assert _digests(tmp_path / 'a') == _digests(tmp_path / 'b')
