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


def run_cli(*args) -> int:
    from bids_asl.cli.run import main

    return main([str(a) for a in args])
