"""Tests that need the shared reference data (``../shared/data``: ASLDRO, the FSL course data).

They skip when the data is absent (a user's clone has no ``../shared``), but fail instead when
``BIDS_ASL_REQUIRE_DATA=1``: CI sets it, so that a missing or moved data folder cannot turn the
data-dependent accuracy tests into silent skips while the run stays green.

Mark a test, a class or a module with ``pytest.mark.needs_data(path, ...)`` (no path: the whole
data folder), or call :func:`require_data` in a fixture or helper that reads the data.  The
hooks are imported into ``tests/conftest.py``.
"""

import os
from pathlib import Path

import pytest

ENV = 'BIDS_ASL_REQUIRE_DATA'
SHARED = Path(__file__).resolve().parents[2] / 'shared'
DATA = SHARED / 'data'
ASLDRO = DATA / 'asldro'
FSL_MPLD = DATA / 'fslcourse-mpld-downsampled'
MARKER = ('needs_data(*paths): reads ../shared/data (the given paths); skipped when a path is '
          f'missing, failed instead when {ENV}=1 (CI)')


def data_required() -> bool:
    return os.environ.get(ENV, '').strip() not in ('', '0')


def require_data(*paths) -> None:
    """Skip the calling test when a path is missing; fail it when ``BIDS_ASL_REQUIRE_DATA=1``."""
    missing = [Path(p) for p in (paths or (DATA,)) if not Path(p).exists()]
    if not missing:
        return
    what = ', '.join(str(p) for p in missing)
    if data_required():
        pytest.fail(f'shared test data missing: {what} ({ENV}=1: data-dependent tests must '
                    'run, not skip)', pytrace=False)
    pytest.skip(f'shared test data missing: {what}')


def pytest_configure(config):
    config.addinivalue_line('markers', MARKER)


@pytest.hookimpl(tryfirst=True)  # before fixtures: a module fixture may read the data
def pytest_runtest_setup(item):
    for mark in item.iter_markers(name='needs_data'):
        require_data(*mark.args)
