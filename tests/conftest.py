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
    tests/test_anatomy_cli.py, and would add ~10-60 s to every other CLI test."""
    from bids_asl.cli.run import main

    extra = [] if anatomy or '--no-anatomy' in args else ['--no-anatomy']
    return main([str(a) for a in args] + extra)
