import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault('NIPYPE_NO_ET', '1')

PROJECT = Path(__file__).resolve().parents[1]
SHARED = PROJECT.parent / 'shared'
ASLDRO = SHARED / 'data' / 'asldro'


@pytest.fixture
def rng():
    return np.random.default_rng(20261123)


def run_cli(*args, anatomy: bool = False) -> int:
    """``bids-asl`` in-process. Anatomy (T1w segmentation, registrations, regional tables) is
    off unless asked for: it is tested by tests/integration/test_anatomy.py and
    tests/integration/test_sessions_compare.py, and would add ~10-60 s to every other CLI test."""
    from bids_asl.cli.run import main

    extra = [] if anatomy or '--no-anatomy' in args else ['--no-anatomy']
    return main([str(a) for a in args] + extra)


def clone_dro_subject(root: Path, label: str, source: str = 'pcasl1pld') -> Path:
    """Copy the ASLDRO subject ``sub-<source>`` (perf only) into the BIDS dataset ``root`` as
    ``sub-<label>``, renaming files and IntendedFor; returns the file stem ``.../sub-<label>_``.
    Creates ``root`` with the DRO ``dataset_description.json`` when needed."""
    if not ASLDRO.is_dir():
        pytest.skip(f'ASLDRO data not found at {ASLDRO}')
    root.mkdir(parents=True, exist_ok=True)
    if not (root / 'dataset_description.json').exists():
        (root / 'dataset_description.json').write_bytes(
            (ASLDRO / 'dataset_description.json').read_bytes())
    perf = root / f'sub-{label}' / 'perf'
    perf.mkdir(parents=True)
    for src in (ASLDRO / f'sub-{source}' / 'perf').iterdir():
        dst = perf / src.name.replace(f'sub-{source}', f'sub-{label}')
        data = src.read_bytes()
        if src.suffix == '.json':
            data = data.replace(f'sub-{source}'.encode(), f'sub-{label}'.encode())
        dst.write_bytes(data)
    return perf / f'sub-{label}_'
