"""The naming table (bids_asl.io.naming): every name it builds parses back to the same output,
stem and values; names it must refuse; and docs/outputs.md carries the table as rendered now.
The end-to-end check (every file a participant + group level run writes parses) is in
tests/test_group_level.py, on the group fixture."""

from pathlib import Path

import pytest

from bids_asl.errors import OutputError
from bids_asl.io import naming

SAMPLES = {'space': 'T1w', 'template': 'MNI152NLin2009aSym', 'label': 'CSF', 'tissue': 'WM',
           'atlas': 'HarvardOxford', 'measure': 'att', 'stat': 'sd', 'Stat': 'Sd',
           'comparison': 'ictalMinusinterictal'}
STEMS = {'run': 'sub-01_ses-pre_acq-3d_dir-AP_run-2', 'anat': 'sub-01',
         'comparison': 'sub-01_acq-3d_run-2', 'group': 'group', 'normative': 'sub-01_ses-pre'}


@pytest.mark.parametrize('key', list(naming.OUTPUTS))
def test_every_output_round_trips(tmp_path, key):
    output = naming.OUTPUTS[key]
    values = {f: SAMPLES[f] for f in output.fields}
    path = naming.path_for(tmp_path, key, STEMS[output.level], **values)
    parsed = naming.parse(path)
    assert parsed is not None, path.name
    assert (parsed.key, parsed.stem, parsed.values, parsed.is_sidecar) == (
        key, STEMS[output.level], values, False)
    sidecar = naming.parse(naming.sidecar_of(path))
    if output.sidecar:
        assert (sidecar.key, sidecar.stem, sidecar.is_sidecar) == (key, parsed.stem, True)
    else:  # no sidecar of its own (dseg.tsv's name is that of the dseg image's sidecar)
        assert sidecar is None or sidecar.key != key
    # the folder is part of the name: the same file elsewhere is not this output
    assert naming.parse(tmp_path / 'elsewhere' / path.name) is None


def test_names_are_unique_across_the_table(tmp_path):
    names = {}
    for key, output in naming.OUTPUTS.items():
        values = {f: SAMPLES[f] for f in output.fields}
        path = naming.path_for(tmp_path, key, STEMS[output.level], **values)
        assert path not in names, (key, names.get(path))
        names[path] = key


@pytest.mark.parametrize('key,stem,values', [
    ('cbf', 'sub-0_1', {}),                       # a label that is not alphanumeric
    ('cbf', 'sub-01_desc-x', {}),                 # a derivative entity in the source stem
    ('cbf_space', 'sub-01', {'space': 'MNI305'}),  # not a space we write
    ('regional', 'sub-01', {'atlas': 'AAL'}),     # a field missing
])
def test_invalid_names_are_refused(key, stem, values):
    with pytest.raises(OutputError):
        naming.name_for(key, stem, **values)


def test_unknown_files_parse_to_none():
    for name in ('sub-01/perf/sub-01_asl.nii.gz', 'sub-01/perf/sub-01_desc-foo_cbf.nii.gz',
                 'sub-01.html', 'dataset_description.json', 'group/group_desc-x_cbf.tsv'):
        assert naming.parse(name) is None, name


def test_comparison_percent_and_z_are_maps_of_one_comparison():
    perf = Path('sub-01/perf')
    for kind, key in (('', 'comparison'), ('Percent', 'comparison_percent'),
                      ('Z', 'comparison_z')):
        parsed = naming.parse(perf / f'sub-01_space-T1w_desc-aMinusb{kind}_cbf.nii.gz')
        assert (parsed.key, parsed.values['comparison']) == (key, 'aMinusb')


def test_docs_carry_the_table():
    docs = Path(__file__).resolve().parents[1] / 'docs' / 'outputs.md'
    assert naming.markdown_table() in docs.read_text(encoding='utf-8'), \
        'docs/outputs.md is out of date: paste bids_asl.io.naming.markdown_table() in'
