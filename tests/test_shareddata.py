"""The data-dependent tests skip without ../shared/data, and fail instead when CI sets
BIDS_ASL_REQUIRE_DATA=1 (tests/shareddata.py)."""

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from xml.etree import ElementTree

import pytest

import shareddata
from shareddata import ENV, require_data

TESTS = Path(__file__).resolve().parent


def test_require_data_skips_fails_or_passes(tmp_path, monkeypatch):
    missing = tmp_path / 'absent'
    monkeypatch.delenv(ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match='shared test data missing: .*absent'):
        require_data(tmp_path, missing)
    for value in ('1', 'yes'):
        monkeypatch.setenv(ENV, value)
        with pytest.raises(pytest.fail.Exception, match=f'{ENV}=1'):
            require_data(missing)
    require_data(tmp_path)  # present: nothing happens, whatever the variable
    monkeypatch.setenv(ENV, '0')
    with pytest.raises(pytest.skip.Exception):
        require_data(missing)


def _run_pytest(folder: Path, required: bool) -> dict[str, str]:
    """Run pytest on ``folder`` in a subprocess; {test name: outcome} from its JUnit XML."""
    env = {k: v for k, v in os.environ.items() if k != ENV}
    if required:
        env[ENV] = '1'
    env['PYTHONPATH'] = os.pathsep.join([str(TESTS), env.get('PYTHONPATH', '')])
    xml = folder / f'junit-{required}.xml'
    proc = subprocess.run([sys.executable, '-m', 'pytest', '-p', 'no:cacheprovider',
                           '--rootdir', str(folder), '-c', os.devnull, f'--junitxml={xml}',
                           str(folder)],
                          capture_output=True, text=True, timeout=120, check=False, env=env,
                          cwd=folder)
    assert xml.is_file(), proc.stdout + proc.stderr
    outcomes = {}
    for case in ElementTree.parse(xml).iter('testcase'):
        kinds = [child.tag for child in case if child.tag in ('failure', 'error', 'skipped')]
        outcomes[case.get('name')] = kinds[0] if kinds else 'passed'
    return outcomes


def test_marker_and_helper_skip_or_fail_in_a_real_session(tmp_path):
    """The hooks as CI uses them: the marker (on a test and on a module-scoped fixture's test)
    and the helper, with the variable unset and set."""
    (tmp_path / 'conftest.py').write_text(
        'from shareddata import pytest_configure, pytest_runtest_setup  # noqa: F401\n')
    (tmp_path / 'test_example.py').write_text(textwrap.dedent(f'''
        import pytest
        from shareddata import require_data

        MISSING = {str(tmp_path / 'no-such-data')!r}
        PRESENT = {str(tmp_path)!r}
        READ = []

        @pytest.fixture(scope='module')
        def data():
            READ.append(1)  # must not run when the marker fails or skips first
            return open(MISSING).read()

        @pytest.mark.needs_data(MISSING)
        def test_marked(data):
            pass

        def test_helper():
            require_data(MISSING)

        @pytest.mark.needs_data(PRESENT)
        def test_present():
            assert READ == []
        '''))
    assert _run_pytest(tmp_path, required=False) == {
        'test_marked': 'skipped', 'test_helper': 'skipped', 'test_present': 'passed'}
    # the marker fails in setup (an error), before the fixture reads anything
    assert _run_pytest(tmp_path, required=True) == {
        'test_marked': 'error', 'test_helper': 'failure', 'test_present': 'passed'}


def test_no_test_skips_on_data_outside_the_mechanism():
    """A new test that skips on a missing data path by itself would escape CI's check."""
    pattern = re.compile(r'skip(if)?\(\s*not\s+[\w.]+\.(is_dir|exists|is_file)\(\)'
                         r'|pytest\.skip\([^)]*(ASLDRO|SHARED|shared/data|FSL)')
    offenders = [f'{p.relative_to(TESTS)}:{i}' for p in sorted(TESTS.rglob('*.py'))
                 for i, line in enumerate(p.read_text().splitlines(), 1)
                 if pattern.search(line)]
    assert offenders == []


def test_the_data_dependent_tests_use_the_mechanism():
    """Every test module that names the shared data is gated by the marker or the helper (a
    module that only *prefers* the data, with a fallback, is listed here)."""
    prefer_only = {'test_registration.py', 'test_multidelay.py'}
    names = re.compile(r'\b(ASLDRO|FSL|SHARED)\b|clone_dro_subject|truth_tissue_maps')
    gated = re.compile(r'needs_data|require_data|clone_dro_subject|truth_tissue_maps')
    ungated = [p.name for p in sorted(TESTS.rglob('test_*.py'))
               if p.name not in prefer_only and p != Path(__file__)
               and names.search(p.read_text()) and not gated.search(p.read_text())]
    assert ungated == []
    assert shareddata.ASLDRO == shareddata.SHARED / 'data' / 'asldro'
    # CI sets the variable
    assert re.search(rf'^export {ENV}=1$', (TESTS.parent / '.ci' / 'run').read_text(),
                     re.MULTILINE)
