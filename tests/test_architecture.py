"""Layering rules, interface specs and workflow graphs."""

import ast
import importlib
import inspect
import os
import pkgutil
from pathlib import Path

import pytest

import bids_asl

PKG = Path(bids_asl.__file__).parent

# layer -> what it must not import (a package's lazy imports inside functions count too)
_FEATURES = ('bids_asl.report', 'bids_asl.group', 'bids_asl.clinical')
FORBIDDEN = {
    # pure science: numpy/scipy (and the stdlib-only constants/qcrules/errors modules)
    'quant': ('bids_asl.io', 'bids_asl.interfaces', 'bids_asl.workflows', 'bids_asl.cli',
              'bids_asl.registration', *_FEATURES, 'nipype', 'bids', 'nibabel'),
    'io': ('bids_asl.quant', 'bids_asl.interfaces', 'bids_asl.workflows', 'bids_asl.cli',
           'bids_asl.registration', *_FEATURES, 'nipype'),
    # ANTs on arrays: beside quant, below the interfaces
    'registration': ('bids_asl.io', 'bids_asl.interfaces', 'bids_asl.workflows', 'bids_asl.cli',
                     *_FEATURES, 'nipype', 'bids'),
    'interfaces': ('bids_asl.workflows', 'bids_asl.cli', *_FEATURES, 'bids'),
    'workflows': ('bids_asl.cli', *_FEATURES, 'bids'),
    # the feature packages: read derivatives, never run the pipeline, never import each other
    # (bids_asl.cli orchestrates them)
    'report': ('bids_asl.interfaces', 'bids_asl.workflows', 'bids_asl.cli',
               'bids_asl.registration', 'bids_asl.group', 'bids_asl.clinical', 'nipype', 'bids'),
    'group': ('bids_asl.interfaces', 'bids_asl.workflows', 'bids_asl.cli',
              'bids_asl.registration', 'bids_asl.report', 'bids_asl.clinical', 'nipype', 'bids'),
    'clinical': ('bids_asl.interfaces', 'bids_asl.workflows', 'bids_asl.cli',
                 'bids_asl.registration', 'bids_asl.report', 'bids_asl.group', 'nipype'),
    # the top: the command line and the applications it runs (nothing imports it, below)
    'cli': (),
}
STDLIB_ONLY = ('qcrules.py', 'errors.py', 'constants.py')


def _imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_every_package_has_a_layer():
    packages = {p.parent.name for p in PKG.glob('*/__init__.py')}
    assert packages == set(FORBIDDEN), 'give the new package its rule in FORBIDDEN'


@pytest.mark.parametrize('layer', sorted(FORBIDDEN))
def test_layer_imports(layer):
    bad = []
    for path in (PKG / layer).rglob('*.py'):
        for name in _imports(path):
            if any(name == f or name.startswith(f + '.') for f in FORBIDDEN[layer]):
                bad.append(f'{path.name}: {name}')
    assert bad == []


def test_stdlib_only_modules():
    import sys

    for name in STDLIB_ONLY:
        third = [n for n in _imports(PKG / name) if n.split('.')[0] not in
                 sys.stdlib_module_names and n != '__future__']
        assert third == [], name


def test_report_uses_no_home_and_imports_matplotlib_lazily(tmp_path):
    import subprocess
    import sys

    code = ('import sys, numpy as np; import bids_asl.report.subject, bids_asl.group.run; '
            'assert "matplotlib" not in sys.modules; from bids_asl.report import figures; '
            'figures.mosaic(np.ones((4, 4, 3)), vmin=0, vmax=1); '
            'import matplotlib, os; assert matplotlib.get_backend().lower() == "agg"; '
            'print(os.environ["MPLCONFIGDIR"])')
    env = {k: v for k, v in os.environ.items() if k != 'MPLCONFIGDIR'}
    env['HOME'] = str(tmp_path / 'home')  # must not be created
    out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True,
                         check=True, cwd=PKG.parent).stdout.strip()
    assert not (tmp_path / 'home').exists()
    assert out and not out.startswith(env['HOME'])


def test_no_package_module_over_500_lines():
    long = {p.relative_to(PKG).as_posix(): n for p in PKG.rglob('*.py')
            if (n := len(p.read_text(encoding='utf-8').splitlines())) > 500}
    assert long == {}


def test_nothing_imports_cli():
    for path in PKG.rglob('*.py'):
        if 'cli' in path.parts or path.name == '__main__.py':
            continue
        assert not [n for n in _imports(path) if n.startswith('bids_asl.cli')], path


def test_every_interface_trait_has_a_desc():
    from nipype.interfaces.base import BaseInterface

    missing = []
    for mod in pkgutil.iter_modules([str(PKG / 'interfaces')]):
        module = importlib.import_module(f'bids_asl.interfaces.{mod.name}')
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseInterface) and cls.__module__ == module.__name__:
                for spec in (cls.input_spec, cls.output_spec):
                    for name, trait in spec().traits().items():
                        if name.startswith('trait_') or name in ('args', 'environ'):
                            continue
                        if not trait.desc:
                            missing.append(f'{cls.__name__}.{name}')
    assert missing == []


def test_workflow_graph_builds_for_several_runs(tmp_path):
    from bids_asl.workflows.base import RunSpec, init_bids_asl_wf, workflow_name

    runs = [RunSpec(prefix=f'sub-0{i}_run-1', entities={'subject': f'0{i}'},
                    asl_file=f'/x/sub-0{i}_asl.nii.gz', m0_file=None,
                    params={'volume_types': ['control', 'label']}, constants={})
            for i in range(3)]
    wf = init_bids_asl_wf(runs=runs, output_dir=str(tmp_path / 'o'), bids_dir=str(tmp_path),
                          base_dir=str(tmp_path / 'w'))
    assert wf.name == workflow_name()
    names = {n.fullname for n in wf._create_flat_graph().nodes()}
    assert {f'{wf.name}.ds_sub_0{i}_run_1' for i in range(3)} <= names
    assert sum('compute_cbf' in n for n in names) == 3
    assert sum('realign' in n for n in names) == 3 and sum('compute_qc' in n for n in names) == 3


def test_workflow_graph_builds_with_anatomy(tmp_path):
    """Two runs of one subject with a T1w (one T1w workflow, shared), one without, PVC,
    asymmetry, a lesion mask: the flat graph has the expected nodes and no cycle."""
    from dataclasses import replace

    from bids_asl.workflows.anat import AnatomyOptions, AsymmetryOptions
    from bids_asl.workflows.base import RunSpec, init_bids_asl_wf

    def touch(name):
        (tmp_path / name).write_bytes(b'')
        return tmp_path / name

    t1w = touch('sub-01_T1w.nii.gz')
    anatomy = AnatomyOptions(pvc=True, atlases=('AAL',), asymmetry=AsymmetryOptions())
    runs = [RunSpec(prefix=f'sub-01_run-{i}', entities={'subject': '01'},
                    asl_file=str(touch(f'sub-01_run-{i}_asl.nii.gz')), m0_file=None,
                    params={'volume_types': ['control', 'label']}, constants={},
                    t1w_file=str(t1w), anatomy=anatomy) for i in (1, 2)]
    runs.append(RunSpec(prefix='sub-02', entities={'subject': '02'},
                        asl_file=str(touch('sub-02_asl.nii.gz')), m0_file=None,
                        params={'volume_types': ['control', 'label']}, constants={},
                        anatomy=replace(anatomy, lesion_space='asl',
                                        lesion_mask=str(touch('sub-02_label-lesion_mask.nii.gz')))))
    wf = init_bids_asl_wf(runs=runs, output_dir=str(tmp_path / 'o'), bids_dir=str(tmp_path),
                          base_dir=str(tmp_path / 'w'))
    names = {n.fullname.split('.', 1)[1] for n in wf._create_flat_graph().nodes()}
    for step in ('t1w_brain_mask', 't1w_bias_correct', 't1w_segment', 't1w_to_template'):
        assert sum(n.endswith(step) for n in names) == 1  # once per subject, one node a step
    assert 'atlas_wf.prepare_AAL' in names
    for run in ('sub_01_run_1', 'sub_01_run_2', 'sub_02'):
        assert f'asl_{run}_wf.asl_to_anat' in names
        for node in ('project_maps', 'regional_stats', 'asymmetry', 'pvc'):
            assert f'asl_{run}_wf.asl_anat_wf.{node}' in names
    assert 'asl_sub_02_wf.asl_anat_wf.lesion_stats' in names
    assert 'asl_sub_01_run_1_wf.asl_anat_wf.lesion_stats' not in names
    # the CBF writer of each run depends on no anatomy node that follows the CBF, and on no
    # subject-level T1w node except through asl_to_anat (which never raises); the tissue
    # fractions (asl_to_anat) do not depend on the CBF, so the quantification may use them;
    # the graph as nipype runs it (identity nodes removed)
    import networkx as nx
    from nipype.pipeline.engine.utils import generate_expanded_graph

    graph = generate_expanded_graph(wf._create_flat_graph())
    by_name = {n.fullname.split('.', 1)[1]: n for n in graph.nodes()}
    for run in ('sub_01_run_1', 'sub_02'):
        before = {n.fullname.split('.', 1)[1] for n in nx.ancestors(graph, by_name[f'ds_{run}'])}
        assert not {n for n in before if '.asl_anat_wf.' in n}, before
        fractions = {n.fullname.split('.', 1)[1] for n in nx.ancestors(
            graph, by_name[f'asl_{run}_wf.asl_to_anat'])}
        assert not {n for n in fractions if n.endswith(('compute_cbf', 'fit_kinetic'))}
        assert f'ds_anat_{run}' in names
