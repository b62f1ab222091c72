"""The public CI (.circleci/config.yml) and the Dockerfile it builds: static checks."""

import re
from pathlib import Path

import pytest

from bids_asl import __version__

yaml = pytest.importorskip('yaml')

ROOT = Path(__file__).resolve().parents[1]
JOBS = {'lint', 'test', 'docs', 'build-image', 'integration'}


@pytest.fixture(scope='module')
def config():
    return yaml.safe_load((ROOT / '.circleci' / 'config.yml').read_text())


def _commands(job: dict) -> str:
    """Every shell command of a job's `run` steps, joined."""
    out = []
    for step in job['steps']:
        run = step.get('run') if isinstance(step, dict) else None
        if isinstance(run, str):
            out.append(run)
        elif isinstance(run, dict):
            out.append(run['command'])
    return '\n'.join(out)


def _docker_runs(job: dict) -> list[str]:
    """The `docker run` commands of a job, with their continuation lines joined."""
    text = _commands(job).replace('\\\n', ' ')
    return [' '.join(line.split()) for line in text.splitlines() if 'docker run' in line]


def test_valid_yaml_with_the_expected_jobs(config):
    assert config['version'] == 2.1
    assert JOBS <= set(config['jobs'])
    for name in JOBS:
        assert config['jobs'][name]['steps'], name


def test_workflow_runs_every_job_and_integration_after_the_build(config):
    (workflow,) = config['workflows'].values()
    entries = {}
    for entry in workflow['jobs']:
        name, options = (entry, {}) if isinstance(entry, str) else next(iter(entry.items()))
        entries[name] = options or {}
    assert set(entries) == JOBS
    assert 'build-image' in entries['integration']['requires']


def test_jobs_run_the_project_commands(config):
    jobs = config['jobs']
    assert 'ruff check' in _commands(jobs['lint'])
    assert 'python -m pytest' in _commands(jobs['test'])
    assert 'mkdocs build --strict' in _commands(jobs['docs'])
    assert 'scripts/gen_cli_docs.py --check' in _commands(jobs['docs'])
    assert 'docker build' in _commands(jobs['build-image'])
    steps = jobs['test']['steps'] + jobs['docs']['steps']
    extras = {s['pip-install']['extras'] for s in steps if isinstance(s, dict)
              and 'pip-install' in s}
    assert extras == {'test', 'docs'}


def test_integration_runs_the_app_read_only_and_unprivileged(config):
    runs = [r for r in _docker_runs(config['jobs']['integration']) if '--rm bids-asl:ci' not in r]
    levels = {m.group(1): r for r in runs
              if (m := re.search(r'bids-asl:ci /data /out (participant|group)\b', r))}
    assert set(levels) == {'participant', 'group'}
    for run in runs:  # the demo data is made in the image too, under the same restrictions
        assert '--read-only' in run, run
        assert '--tmpfs /tmp' in run, run
        assert '-u 1000:1000' in run, run
        assert '--network none' in run, run
    for run in levels.values():
        assert re.search(r'-v \S+:/data:ro\b', run), run
        assert re.search(r'-v \S+:/out\b', run), run


# -- the Dockerfile
DOCKERFILE = (ROOT / 'Dockerfile').read_text()


def _instructions() -> list[str]:
    text = DOCKERFILE.replace('\\\n', ' ')
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith('#')]


def test_dockerfile_base_can_be_swapped():
    lines = DOCKERFILE.splitlines()
    assert lines[:2] == ['ARG BASE_IMAGE=python:3.12-slim', 'FROM ${BASE_IMAGE}']
    froms = [ln for ln in _instructions() if ln.upper().startswith('FROM ')]
    assert froms and all(ln.split()[1] == '${BASE_IMAGE}' for ln in froms), froms
    for copy_from in re.findall(r'--from=(\S+)', DOCKERFILE):
        assert copy_from.isdigit(), copy_from  # a stage of this file, never a registry image


def test_dockerfile_runs_unprivileged_read_only_and_offline():
    final = DOCKERFILE.rsplit('FROM ${BASE_IMAGE}', 1)[1]
    assert re.search(r'^USER (?!root\b|0\b)\S+', final, re.MULTILINE)
    assert 'ENTRYPOINT ["bids-asl"]' in final
    for env in ('HOME=/tmp', 'MPLCONFIGDIR=/tmp/matplotlib', 'XDG_CACHE_HOME=/tmp/.cache',
                'NIPYPE_NO_ET=1', 'BIDS_ASL_CONTAINER=docker:bids-asl:${BIDS_ASL_VERSION}'):
        assert env in final, env
    assert '--no-cache-dir' in DOCKERFILE
    assert not re.search(r'\b(gcc|g\+\+|build-essential|apt-get)\b', DOCKERFILE)


def test_dockerfile_version_is_the_package_version():
    (version,) = re.findall(r'^ARG BIDS_ASL_VERSION=(\S+)$', DOCKERFILE, re.MULTILINE)
    assert version == __version__


def test_dockerignore_keeps_local_state_out_of_the_build_context():
    ignored = set((ROOT / '.dockerignore').read_text().split())
    assert {'.git', '.venv*', '**/__pycache__', 'work'} <= ignored
    assert 'bids_asl' not in ignored and 'pyproject.toml' not in ignored
