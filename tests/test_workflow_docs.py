"""docs/workflows.md and its graphs are current, and every workflow factory documents its
parameters, inputs and outputs (nipreps style) as its nodes really have them."""

import importlib.util
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: sub-workflow names of the participant workflow → the factory that builds them
FACTORY_OF = {r'asl_sub_\w+_wf': 'init_asl_cbf_wf', r't1w_\w+_wf': 'init_t1w_wf',
              r'atlas_wf': 'init_atlas_wf', r'asl_anat_wf': 'init_asl_anat_wf'}


@pytest.fixture(scope='module')
def gen():
    spec = importlib.util.spec_from_file_location('gen_workflow_docs',
                                                  ROOT / 'scripts' / 'gen_workflow_docs.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def examples(gen, tmp_path_factory):
    return gen.example_workflows(tmp_path_factory.mktemp('workflow-docs'))


def test_page_is_current(gen):
    assert gen.PAGE.read_text() == gen.render_page(), \
        'docs/workflows.md is out of date: run python scripts/gen_workflow_docs.py'


def test_graphs_are_current(gen, examples):
    for name, workflow in examples.items():
        svg = gen.GRAPHS / f'{name}.svg'
        assert gen.svg_digest(svg) == gen.digest(gen.dot_source(workflow)), (
            f'{svg.relative_to(ROOT)} is out of date: run python scripts/gen_workflow_docs.py '
            '(needs Graphviz: apt-get install graphviz)')
        assert f'workflows/{name}.svg' in gen.PAGE.read_text()


def _nodes(workflow, prefix=''):
    """(dotted name, node or workflow) of everything in ``workflow``, recursively."""
    for node in workflow._graph.nodes():  # noqa: SLF001 - nipype has no public walk
        yield prefix + node.name, node
        if hasattr(node, '_graph'):
            yield from _nodes(node, f'{prefix}{node.name}.')


def test_graphs_show_the_app_workflow(gen, examples):
    """The examples are what a user's run builds: the realignment, the CBF, the T1w and
    atlas workflows and the writers; the kinetic fit for several delays."""
    single = {name.split('.')[-1] for name, _ in _nodes(examples['participant'])}
    assert {'realign', 'compute_m0', 'compute_cbf', 'compute_qc', 'ds_sub_01', 'ds_t1w_01',
            'atlas_wf', 't1w_01_wf', 'asl_anat_wf'} <= single
    multi = {name.split('.')[-1] for name, _ in _nodes(examples['participant_multidelay'])}
    assert 'fit_kinetic' in multi and 'compute_cbf' not in multi and 't1w_01_wf' not in multi
    source = gen.dot_source(examples['participant'])
    assert source.startswith('strict digraph ')
    assert re.search(r'\w+realign\w* -> \w+compute_m0', source)


def test_every_factory_documents_its_parameters_inputs_and_outputs(gen):
    found = gen.factories()
    assert {f.__name__ for _, f in found} >= {'init_bids_asl_wf', *FACTORY_OF.values()}
    for _, func in found:
        summary, sections = gen.parse_docstring(func.__doc__)
        assert summary, func.__name__
        missing = [s for s in gen.SECTIONS if not sections.get(s)]
        assert missing == [], f'{func.__name__}: no {", ".join(missing)} section'
        documented = [name for name, _, _ in sections['Parameters']]
        assert documented == list(inspect.signature(func).parameters), func.__name__


def _fields(node) -> set[str]:
    return set(node.inputs.copyable_trait_names())


def test_documented_inputs_and_outputs_are_the_nodes(gen, examples):
    """Each sub-workflow of the examples has the inputnode and outputnode fields its factory's
    docstring lists (a subset: some are there only with some options)."""
    docs = {f.__name__: gen.parse_docstring(f.__doc__)[1] for _, f in gen.factories()}
    seen = set()
    for workflow in examples.values():
        for name, node in _nodes(workflow):
            if not hasattr(node, '_graph'):
                continue
            short = name.split('.')[-1]
            factory = next((f for p, f in FACTORY_OF.items() if re.fullmatch(p, short)), None)
            assert factory is not None, f'{name}: which factory? (add it to FACTORY_OF)'
            seen.add(factory)
            for section, end in (('Inputs', 'inputnode'), ('Outputs', 'outputnode')):
                listed = {f for n, _, _ in docs[factory][section] for f in gen.names(n)}
                sub = {n.split('.')[-1]: n for n, _ in _nodes(node)}
                actual = _fields(node.get_node(end)) if end in sub else set()
                assert actual <= listed, f'{factory} {section}: not documented: ' \
                                         f'{sorted(actual - listed)}'
    assert seen == set(FACTORY_OF.values())
