"""The docs site: the CLI reference matches the real parser, and mkdocs builds it strictly."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from bids_asl.cli.parser import EPILOG, build_parser
from bids_asl.errors import ExitCode

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def gen_cli_docs():
    spec = importlib.util.spec_from_file_location('gen_cli_docs', ROOT / 'scripts' /
                                                  'gen_cli_docs.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_is_up_to_date(gen_cli_docs):
    assert (ROOT / 'docs' / 'cli.md').read_text() == gen_cli_docs.render(), \
        'docs/cli.md is out of date: run python scripts/gen_cli_docs.py'


def test_cli_reference_lists_every_option_and_exit_code(gen_cli_docs):
    text = gen_cli_docs.render()
    for action in build_parser()._actions:  # noqa: SLF001
        for option in action.option_strings:
            assert option in text, option
    codes = [code for code, _ in gen_cli_docs.exit_codes()]
    assert codes == [str(int(code)) for code in ExitCode]  # every code, documented
    for code, meaning in gen_cli_docs.exit_codes():
        assert f'| {code} | {meaning} |' in text
        assert meaning in EPILOG


def test_every_docs_page_is_in_the_nav():
    yaml = pytest.importorskip('yaml')
    config = yaml.safe_load((ROOT / 'mkdocs.yml').read_text())
    pages = {page for entry in config['nav'] for page in entry.values()}
    assert pages == {p.name for p in (ROOT / 'docs').glob('*.md')}
    assert {'index.md', 'usage.md', 'cli.md', 'outputs.md', 'methods.md', 'hpc.md',
            'benchmarks.md'} <= pages


def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip('mkdocs', reason='mkdocs is not installed (pip install -e .[docs])')
    proc = subprocess.run([sys.executable, '-m', 'mkdocs', 'build', '--strict', '--site-dir',
                           str(tmp_path / 'site'), '--config-file', str(ROOT / 'mkdocs.yml')],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / 'site' / 'cli' / 'index.html').is_file()
    assert 'bids-asl' in (tmp_path / 'site' / 'hpc' / 'index.html').read_text()
