"""The group level on three synthetic participants (one with two sessions): every aggregate
equals an independent computation here from the per-run files."""

import csv
import json
import shutil

import nibabel as nb
import numpy as np
import pytest

from bids_asl.constants import TEMPLATE
from bids_asl.errors import ExitCode

from conftest import GROUP_LEVELS, assert_every_file_is_named, run_cli

RULE = 'cbf_mean_brain>{}'


def _tsv(path):
    with open(path, newline='') as fobj:
        return list(csv.DictReader(fobj, delimiter='\t'))


def _num(text):
    return np.nan if text == 'n/a' else float(text)


@pytest.fixture(scope='module')
def group(group_dataset, tmp_path_factory):
    bids, out, values = group_dataset
    # exclude sub-c, the subject with the highest CBF, through its QC row
    brain = {p: float(_tsv(next(out.glob(f'sub-*/**/perf/{p}_desc-qc_cbf.tsv')))[0]
                       ['cbf_mean_brain']) for p in values}
    cut = (brain['sub-c'] + max(v for p, v in brain.items() if p != 'sub-c')) / 2
    assert run_cli(bids, out, 'group', '--group-exclude', RULE.format(cut),
                   '--exclude-fd-above', '0.5') == 0
    return bids, out, values, brain, cut


def test_every_file_written_is_named_by_the_table(group):
    """Participant outputs, anatomy outputs (the anatomy writers), the T1w outputs and every
    group output parse back through bids_asl.io.naming."""
    out = group[1]
    assert assert_every_file_is_named(out) > 50
    assert {p.name for p in (out / 'group').iterdir()} >= {
        'group_desc-qc_cbf.tsv', 'group_desc-regional_cbf.tsv', 'group_desc-tissue_cbf.tsv',
        f'group_space-{TEMPLATE}_desc-count_att.nii.gz'}


def test_qc_table_one_row_per_run(group):
    _, out, values, brain, cut = group
    rows = _tsv(out / 'group' / 'group_desc-qc_cbf.tsv')
    assert [r['source'] for r in rows] == sorted(values)
    for row in rows:
        own = _tsv(next(out.glob(f'sub-*/**/perf/{row["source"]}_desc-qc_cbf.tsv')))[0]
        assert {k: row[k] for k in own} == own
        assert row['excluded'] == ('yes' if brain[row['source']] > cut else 'no')
        n, rejected = float(own['n_deltam_volumes']), float(own['n_deltam_rejected_score'])
        assert float(row['score_rejected_fraction']) == pytest.approx(rejected / n)
    assert [r['session_id'] for r in rows] == ['ses-1', 'ses-2', 'n/a', 'n/a']
    assert [r['exclusion_reason'] for r in rows if r['excluded'] == 'yes'] == [
        f'cbf_mean_brain>{cut:g}']
    meta = json.loads((out / 'group' / 'group_desc-qc_cbf.json').read_text())
    assert meta['ExclusionRules'] == [f'cbf_mean_brain>{cut:g}', 'mean_fd>0.5']
    assert meta['ExcludedRuns'] == {'sub-c': [f'cbf_mean_brain>{cut:g}']}


def test_regional_long_table(group):
    _, out, values, _, _ = group
    rows = _tsv(out / 'group' / 'group_desc-regional_cbf.tsv')
    assert list(rows[0])[:12] == ['participant_id', 'session_id', 'run', 'source', 'atlas',
                                  'index', 'region', 'hemisphere', 'mean', 'sd', 'n_voxels',
                                  'excluded']
    expected = []
    ages = {'a': '31', 'b': '45', 'c': '52'}
    for prefix in sorted(values):
        for atlas, regions in values[prefix]['regional'].items():
            for r in regions:
                for hemi, cols in (('bilateral', ('mean', 'sd', 'n_voxels')),
                                   ('left', ('mean_left', 'sd_left', 'n_left')),
                                   ('right', ('mean_right', 'sd_right', 'n_right'))):
                    expected.append((prefix, atlas, r['region'], hemi,
                                     *(float(r[c]) for c in cols), ages[prefix[4]]))
    got = [(r['source'], r['atlas'], r['region'], r['hemisphere'], _num(r['mean']),
            _num(r['sd']), _num(r['n_voxels']), r['age']) for r in rows]
    assert len(got) == len(expected) == 4 * 5 * 3
    for g, e in zip(got, expected, strict=True):
        assert g[:4] == e[:4] and g[7] == e[7]
        np.testing.assert_allclose(g[4:7], e[4:7], rtol=1e-5)
    # every hemisphere row has its own SD (it was n/a for left and right before: the per-run
    # tables had no sd_left/sd_right column)
    assert all(np.isfinite(g[5]) for g in got)
    assert {r['group'] for r in rows} == {'control', 'patient'}
    assert {r['excluded'] for r in rows if r['participant_id'] == 'sub-c'} == {'yes'}


def test_tissue_long_table(group):
    _, out, values, _, _ = group
    rows = _tsv(out / 'group' / 'group_desc-tissue_cbf.tsv')
    assert len(rows) == 4 * 3
    for row in rows:
        want = next(t for t in values[row['source']]['tissue'] if t['tissue'] == row['tissue'])
        assert float(row['mean']) == pytest.approx(want['mean'], rel=1e-5)
        assert int(row['n_voxels']) == want['n_voxels']


def test_template_mean_sd_maps(group):
    _, out, values, _, _ = group
    # independent: average sub-a's two sessions, then mean/SD over the included subjects
    sub_a = np.nanmean(np.stack([values['sub-a_ses-1']['cbf'], values['sub-a_ses-2']['cbf']]),
                       axis=0)
    sub_b = np.where(values['sub-b']['mask'] > 0, values['sub-b']['cbf'], np.nan)  # masked
    stack = np.stack([sub_a, sub_b])  # sub-c excluded
    base = out / 'group' / f'group_space-{TEMPLATE}_desc-'
    mean = nb.load(f'{base}mean_cbf.nii.gz').get_fdata()
    sd = nb.load(f'{base}sd_cbf.nii.gz').get_fdata()
    count = nb.load(f'{base}count_cbf.nii.gz').get_fdata()
    np.testing.assert_array_equal(count, np.isfinite(stack).sum(axis=0))
    np.testing.assert_allclose(mean, np.nanmean(stack, axis=0), rtol=1e-5)
    with np.errstate(invalid='ignore'), pytest.warns(RuntimeWarning):
        want_sd = np.nanstd(stack, axis=0, ddof=1)
    np.testing.assert_allclose(sd, want_sd, rtol=1e-4, atol=1e-4)
    meta = json.loads(open(f'{base}mean_cbf.json').read())
    assert meta['SubjectsIncluded'] == 2
    assert meta['ExcludedRuns'] == {'sub-c': [meta['ExclusionRules'][0]]}
    assert len(meta['Sources']) == 3 and all(s.startswith('bids::sub-') for s in meta['Sources'])
    assert nb.load(f'{base}mean_cbf.nii.gz').shape == values['sub-b']['cbf'].shape


def test_template_att_maps_and_threads(group):
    _, out, values, _, _ = group
    sub_a = (values['sub-a_ses-1']['att'] + values['sub-a_ses-2']['att']) / 2
    sub_b = np.where(values['sub-b']['mask'] > 0, values['sub-b']['att'], np.nan)
    stack = np.stack([sub_a, sub_b])
    base = out / 'group' / f'group_space-{TEMPLATE}_desc-'
    np.testing.assert_allclose(nb.load(f'{base}mean_att.nii.gz').get_fdata(),
                               np.nanmean(stack, axis=0), rtol=1e-5)
    with np.errstate(invalid='ignore'), pytest.warns(RuntimeWarning):
        want_sd = np.nanstd(stack, axis=0, ddof=1)
    np.testing.assert_allclose(nb.load(f'{base}sd_att.nii.gz').get_fdata(), want_sd,
                               rtol=1e-4, atol=1e-6)
    # threads split the subjects and merge their sums: same maps as one thread
    from bids_asl.group.maps import template_maps
    from bids_asl.io.collect import find_runs

    runs = find_runs(out)
    one, two = (template_maps(runs, 'cbf', n_threads=n) for n in (1, 3))
    for key in ('mean', 'sd', 'count'):
        np.testing.assert_allclose(two[key], one[key], rtol=1e-12, equal_nan=True)
    assert one['n_subjects'] == two['n_subjects'] == 3


def test_group_report_links_subject_reports(group):
    _, out, _, _, _ = group
    html = (out / 'group.html').read_text()
    for sub in GROUP_LEVELS:
        assert f'href="sub-{sub}.html#run-sub-{sub}' in html
        assert (out / f'sub-{sub}.html').is_file()
    assert 'id="runs-table"' in html and 'class="sortable"' in html
    assert 'src="http' not in html and 'href="http' not in html


def test_no_participant_outputs_is_a_clear_error(group_dataset, tmp_path, capsys):
    bids = group_dataset[0]
    (tmp_path / 'empty').mkdir()
    for out in (tmp_path / 'empty', tmp_path / 'missing'):
        assert run_cli(bids, out, 'group') == ExitCode.NOINPUT
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(out) in err[0] and 'participant level' in err[0], err
    assert not (tmp_path / 'missing').exists()


def test_mismatched_template_grid_is_refused(group_dataset, tmp_path, capsys):
    bids, out, _, = group_dataset
    copy = tmp_path / 'out'
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns('.work', 'group*'))
    path = copy / 'sub-b' / 'perf' / f'sub-b_space-{TEMPLATE}_cbf.nii.gz'
    nb.save(nb.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4)), path)
    assert run_cli(bids, copy, 'group') == ExitCode.DATAERR
    err = capsys.readouterr().err
    assert str(path) in err and 'grid' in err


def test_bad_rule_is_a_usage_error(group_dataset, tmp_path, capsys):
    bids, out, _ = group_dataset
    with pytest.raises(SystemExit) as exc:
        run_cli(bids, out, 'group', '--group-exclude', 'fd>1')
    assert exc.value.code == ExitCode.USAGE
    assert "unknown QC metric 'fd'" in capsys.readouterr().err


def test_output_with_reports_and_group_is_valid_bids(group):
    from bids_asl.io.validator import run_validator, validation_errors

    _, out, _, _, _ = group
    ignore = (out / '.bidsignore').read_text().splitlines()
    assert {'sub-*.html', 'group.html', 'group'} <= set(ignore)
    # every file: participant, anatomy (the real writers), reports and group/
    assert validation_errors(run_validator(out)) == []
