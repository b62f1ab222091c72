"""Normative z at the group level (``--reference-group``) on template-space CBF built from the
ASLDRO ground truth: eight controls (ages 25-75, CBF falling with age), a patient of 70 with a
30 % deficit in a 12 mm sphere of the left insula in one session, and odd cases. Every number is
checked against a computation here: plain mean/SD/leave-one-out formulas without smoothing,
least squares with covariates, and the known place and size of the deficit."""

import csv
import json

import nibabel as nb
import numpy as np
import pytest

from bids_asl.constants import TEMPLATE
from bids_asl.io import templates
from bids_asl.io.anatoutputs import REGIONAL_COLUMNS
from bids_asl.io.tsv import write_tsv
from bids_asl.quant.resample import sample_linear, sample_nearest

from conftest import ASLDRO, assert_every_file_is_named, run_cli

pytestmark = pytest.mark.needs_data(ASLDRO)
TRUTH = 'derivatives/asldro-groundtruth/sub-pcasl1pld/perf/sub-pcasl1pld_desc-groundtruth_'
CENTRE = np.array([-36.0, 10.0, -2.0])  # left insula: grey matter in the DRO and the template
RADIUS = 12.0
AGE_SLOPE = -0.006  # relative CBF change per year
CONTROLS = {f'c{i}': (age, 'MF'[i % 2]) for i, age in enumerate(range(25, 80, 7))}  # 8
REGIONS = [('Insula_L', 60.0), ('Insula_R', 61.0), ('Precuneus_L', 55.0), ('Thalamus_R', 48.0)]


def _tsv(path):
    with open(path, newline='') as fobj:
        return list(csv.DictReader(fobj, delimiter='\t'))


def _scale(age, sex, rng):
    return rng.normal(1.0, 0.05) * (1 + AGE_SLOPE * (age - 50)) * (1.03 if sex == 'F' else 1.0)


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    rng = np.random.default_rng(11)
    root = tmp_path_factory.mktemp('normative')
    shape, affine = templates.template_grid()
    cbf = nb.load(ASLDRO / f'{TRUTH}cbf.nii.gz')
    seg = nb.load(ASLDRO / f'{TRUTH}dseg.nii.gz')
    truth = sample_linear(np.asarray(cbf.dataobj, float), cbf.affine, shape, affine)
    brain = sample_nearest(np.asarray(seg.dataobj), seg.affine, shape, affine) > 0
    ijk = np.indices(shape).reshape(3, -1)
    world = (affine[:3, :3] @ ijk + affine[:3, 3:4]).T.reshape(*shape, 3)
    sphere = ((world - CENTRE) ** 2).sum(axis=-1) <= RADIUS ** 2
    bids, out = root / 'bids', root / 'out'
    bids.mkdir()
    (bids / 'dataset_description.json').write_text(json.dumps(
        {'Name': 'normative', 'BIDSVersion': '1.10.0'}))
    people = {**{k: (a, s, 'control') for k, (a, s) in CONTROLS.items()},
              'p1': (70, 'M', 'patient'), 'p2': ('n/a', 'F', 'patient')}
    (bids / 'participants.tsv').write_text('participant_id\tgroup\tage\tsex\n' + ''.join(
        f'sub-{k}\t{g}\t{a}\t{s}\n' for k, (a, s, g) in people.items()))
    images, regional = {}, {}

    def add(prefix, folder, scale, deficit=False):
        perf = out / folder / 'perf'
        perf.mkdir(parents=True, exist_ok=True)
        data = truth * scale + rng.normal(0, 6.0, shape)
        if deficit:
            data = np.where(sphere, data * 0.7, data)
        data = np.where(brain, data, 0.0).astype(np.float32)
        nb.save(nb.Nifti1Image(data, affine), perf / f'{prefix}_space-{TEMPLATE}_cbf.nii.gz')
        nb.save(nb.Nifti1Image(brain.astype(np.uint8), affine),
                perf / f'{prefix}_space-{TEMPLATE}_desc-brain_mask.nii.gz')
        (perf / f'{prefix}_cbf.json').write_text('{}')
        rows = []
        for index, (region, level) in enumerate(REGIONS, start=1):
            mean = level * scale * (0.7 if deficit and region == 'Insula_L' else 1.0) \
                + rng.normal(0, 1.0)
            rows.append({'atlas': 'AAL', 'index': index, 'region': region, 'mean': mean,
                         'median': mean, 'sd': 5.0, 'n_voxels': 100, 'mean_left': None,
                         'mean_right': None, 'n_left': None, 'n_right': None,
                         'asymmetry_index': None})
        write_tsv(perf / f'{prefix}_space-{TEMPLATE}_seg-AAL_desc-regional_cbf.tsv',
                  REGIONAL_COLUMNS, rows)
        images[prefix] = np.where(brain, data, np.nan).astype(np.float64)
        regional[prefix] = np.array([r['mean'] for r in rows])

    for label, (age, sex) in CONTROLS.items():
        if label == 'c1':  # a control with two sessions: averaged in the model
            for ses in ('1', '2'):
                add(f'sub-c1_ses-{ses}', f'sub-c1/ses-{ses}', _scale(age, sex, rng))
        else:
            add(f'sub-{label}', f'sub-{label}', _scale(age, sex, rng))
    scale = _scale(70, 'M', rng)
    add('sub-p1_ses-ictal', 'sub-p1/ses-ictal', scale, deficit=True)
    add('sub-p1_ses-interictal', 'sub-p1/ses-interictal', scale)
    add('sub-p2', 'sub-p2', _scale(50, 'F', rng))
    grey = sample_linear(*templates.load_template('gm'), shape, affine) >= 0.5
    return {'bids': bids, 'out': out, 'images': images, 'regional': regional,
            'sphere': sphere, 'brain': brain, 'grey': grey, 'affine': affine}


def _load(path):
    return np.asarray(nb.load(path).dataobj, dtype=np.float64)


def _control_means(d):
    """Each control's image/regional vector (two sessions averaged), in CONTROLS order."""
    def mean(prefixes, key):
        return np.mean([d[key][p] for p in prefixes], axis=0)
    prefixes = {c: ([f'sub-{c}_ses-1', f'sub-{c}_ses-2'] if c == 'c1' else [f'sub-{c}'])
                for c in CONTROLS}
    return ({c: mean(p, 'images') for c, p in prefixes.items()},
            {c: mean(p, 'regional') for c, p in prefixes.items()})


def test_without_smoothing_or_covariates_z_is_the_plain_formula(dataset):
    d = dataset
    assert run_cli(d['bids'], d['out'], 'group', '--reference-group', 'group=control',
                   '--normative-fwhm', '0') == 0
    group = d['out'] / 'group'
    images, regional = _control_means(d)
    stack = np.stack(list(images.values()))
    inside = d['brain']
    mean = _load(group / f'group_space-{TEMPLATE}_desc-normativeMean_cbf.nii.gz')
    sd = _load(group / f'group_space-{TEMPLATE}_desc-normativeSd_cbf.nii.gz')
    np.testing.assert_allclose(mean[inside], stack.mean(axis=0)[inside], rtol=1e-5)
    np.testing.assert_allclose(sd[inside], stack.std(axis=0, ddof=1)[inside], rtol=1e-4)
    assert np.isnan(mean[~inside]).all()
    count = _load(group / f'group_space-{TEMPLATE}_desc-normativeCount_cbf.nii.gz')
    assert set(np.unique(count)) == {0, 8}
    zdir = group / 'normative'
    assert sorted(p.name.split('_space')[0] for p in zdir.glob('*.nii.gz')) == sorted(
        [*(f'sub-{c}' for c in CONTROLS if c != 'c1'), 'sub-c1_ses-1', 'sub-c1_ses-2',
         'sub-p1_ses-ictal', 'sub-p1_ses-interictal', 'sub-p2'])
    sample = np.flatnonzero(inside.reshape(-1))[::997]
    # a patient: against all controls
    z = _load(zdir / f'sub-p1_ses-ictal_space-{TEMPLATE}_desc-normativeZ_cbf.nii.gz')
    want = (d['images']['sub-p1_ses-ictal'] - stack.mean(axis=0)) / stack.std(axis=0, ddof=1)
    np.testing.assert_allclose(z.reshape(-1)[sample], want.reshape(-1)[sample], rtol=1e-4,
                               atol=1e-4)
    # controls leave-one-out: a single-session one, and each session of the two-session one
    for control, prefix in (('c3', 'sub-c3'), ('c1', 'sub-c1_ses-2')):
        others = np.stack([v for k, v in images.items() if k != control])
        z = _load(zdir / f'{prefix}_space-{TEMPLATE}_desc-normativeZ_cbf.nii.gz')
        want = (d['images'][prefix] - others.mean(axis=0)) / others.std(axis=0, ddof=1)
        np.testing.assert_allclose(z.reshape(-1)[sample], want.reshape(-1)[sample], rtol=1e-4,
                                   atol=1e-4)
    meta = json.loads((zdir / f'sub-c3_space-{TEMPLATE}_desc-normativeZ_cbf.json').read_text())
    assert meta['LeaveOneOut'] is True and meta['ReferenceGroup'] == 'group=control'
    assert meta['ReferenceParticipants'] == [f'sub-{c}' for c in sorted(CONTROLS)]
    assert meta['SmoothingFWHM'] == 0 and meta['NotScored'] == {}
    assert 'only 8 reference participant(s) for 1 parameter(s)' in meta['Warnings'][0]
    assert 'only 8 reference participant(s)' in (d['out'] / 'group.html').read_text()
    # the regional table, the same formulas on the per-run table values
    rows = _tsv(group / 'group_desc-normativeZ_cbf.tsv')
    reg = np.stack(list(regional.values()))
    got = {(r['participant_id'], r['session_id'], r['region']): r for r in rows
           if r['hemisphere'] == 'bilateral'}
    for j, (region, _) in enumerate(REGIONS):
        row = got[('sub-p1', 'ses-ictal', region)]
        assert float(row['expected']) == pytest.approx(reg[:, j].mean(), rel=1e-5)
        assert float(row['reference_sd']) == pytest.approx(reg[:, j].std(ddof=1), rel=1e-5)
        want = (d['regional']['sub-p1_ses-ictal'][j] - reg[:, j].mean()) / reg[:, j].std(ddof=1)
        assert float(row['z']) == pytest.approx(want, rel=1e-4)
        others = np.delete(reg[:, j], list(CONTROLS).index('c5'))
        want = (regional['c5'][j] - others.mean()) / others.std(ddof=1)
        assert float(got[('sub-c5', 'n/a', region)]['z']) == pytest.approx(want, rel=1e-4)
        assert got[('sub-c5', 'n/a', region)]['reference'] == 'yes'
        assert got[('sub-c5', 'n/a', region)]['age'] == str(CONTROLS['c5'][0])
    assert float(got[('sub-p1', 'ses-ictal', 'Insula_L')]['z']) < -3


def _clusters(group, participant, session):
    return [r for r in _tsv(group / 'group_desc-normativeClusters_cbf.tsv')
            if r['participant_id'] == participant and r['session_id'] == session]


def test_the_deficit_is_found_at_its_place_and_size_with_age_and_sex_covariates(dataset):
    d = dataset
    args = ('group', '--reference-group', 'group=control', '--normative-covariates', 'age',
            'sex')
    assert run_cli(d['bids'], d['out'], *args) == 0
    group = d['out'] / 'group'
    assert assert_every_file_is_named(group) >= 2 * 16  # the naming table reads them all
    ictal = _clusters(group, 'sub-p1', 'ses-ictal')
    lower = [c for c in ictal if c['direction'] == 'lower']
    assert lower, ictal
    top = lower[0]
    peak = np.array([float(top[k]) for k in ('peak_x', 'peak_y', 'peak_z_mm')])
    assert np.linalg.norm(peak - CENTRE) < 8.0, peak
    expected = (d['sphere'] & d['grey'] & d['brain']).sum() * 8.0
    assert 0.5 * expected < float(top['volume_mm3']) < 2.0 * expected
    assert float(top['peak_z']) < -4
    assert 'Insula' in top['peak_region'] or top['peak_region'] == 'n/a'
    assert all(float(c['volume_mm3']) < 0.25 * expected for c in ictal[1:])
    assert not [c for c in _clusters(group, 'sub-p1', 'ses-interictal')
                if float(c['volume_mm3']) > 0.25 * expected]
    # with age in the model, the 70-year-old patient is not globally low outside the sphere
    z = _load(group / 'normative' / f'sub-p1_ses-interictal_space-{TEMPLATE}'
                                    '_desc-normativeZ_cbf.nii.gz')
    assert abs(np.nanmedian(z[d['grey'] & d['brain']])) < 1.0
    meta = json.loads((group / 'group_desc-normativeClusters_cbf.json').read_text())
    assert meta['Covariates']['sex']['Levels'] == ['F', 'M']
    assert meta['CovariateCentre'][0] == pytest.approx(np.mean([a for a, _ in
                                                                CONTROLS.values()]))
    assert meta['NotScored'] == {'sub-p2': 'age is n/a in participants.tsv'}
    # regional z with covariates equals least squares computed here (patient and a control)
    _, regional = _control_means(d)
    ages = np.array([a for a, _ in CONTROLS.values()], float)
    female = np.array([s == 'F' for _, s in CONTROLS.values()], float)
    x = np.column_stack([np.ones(8), ages - ages.mean(), female - female.mean()])
    reg = np.stack(list(regional.values()))
    rows = {(r['participant_id'], r['session_id'], r['region']): r
            for r in _tsv(group / 'group_desc-normativeZ_cbf.tsv')}
    for j, (region, _) in enumerate(REGIONS):
        beta, *_ = np.linalg.lstsq(x, reg[:, j], rcond=None)
        s = np.sqrt(((reg[:, j] - x @ beta) ** 2).sum() / (8 - 3))
        xp = np.array([1.0, 70 - ages.mean(), 0 - female.mean()])
        want = (d['regional']['sub-p1_ses-ictal'][j] - xp @ beta) / s
        assert float(rows[('sub-p1', 'ses-ictal', region)]['z']) == pytest.approx(want,
                                                                                 rel=1e-4)
        keep = np.arange(8) != 2
        beta, *_ = np.linalg.lstsq(x[keep], reg[keep, j], rcond=None)
        s = np.sqrt(((reg[keep, j] - x[keep] @ beta) ** 2).sum() / (7 - 3))
        want = (regional['c2'][j] - x[2] @ beta) / s
        assert float(rows[('sub-c2', 'n/a', region)]['z']) == pytest.approx(want, rel=1e-4)
    # the group report lists the cluster and draws the patient's maps first
    html = (d['out'] / 'group.html').read_text()
    section = html[html.index('id="normative"'):]
    assert 'sub-p2 (age is n/a in participants.tsv)' in section
    assert f'<td>{float(top["peak_z"]):.4g}</td>' in section
    assert section.index('<b>sub-p1_ses-ictal</b>') < section.index('<b>sub-c0</b>')
    # the same command again, on two threads, gives the same bytes
    before = {p: p.read_bytes() for p in group.rglob('*') if 'normative' in p.name and
              p.is_file()}
    assert run_cli(d['bids'], d['out'], *args, '--nprocs', '2') == 0
    assert {p: p.read_bytes() for p in before} == before


@pytest.mark.parametrize(('args', 'code', 'words'), [
    (('--reference-group', 'cohort=control'), 64, ["no column 'cohort'", 'participants.tsv']),
    (('--reference-group', 'group=nobody'), 66, ['0 reference participant(s)']),
    (('--reference-group', 'group=control', '--normative-covariates', 'weight'), 64,
     ["no column 'weight'"]),
    (('--reference-group', 'group=patient'), 66, ['needs at least 3']),
    (('--reference-group', 'group'), 64, ['COLUMN=VALUE']),
    (('--normative-covariates', 'age'), 64, ['needs --reference-group']),
])
def test_bad_reference_options_fail_in_one_line(dataset, capsys, args, code, words):
    d = dataset
    try:
        got = run_cli(d['bids'], d['out'], 'group', *args)
    except SystemExit as exc:  # argparse: the option's syntax
        got = exc.code
    assert got == code
    err = capsys.readouterr().err.strip().splitlines()
    assert any(all(w in line for w in words) for line in err), err
    assert 'Traceback' not in '\n'.join(err)


def test_a_covariate_constant_in_the_reference_is_refused(dataset, tmp_path, capsys):
    d = dataset
    bids = tmp_path / 'bids'
    bids.mkdir()
    for name in ('dataset_description.json', 'participants.tsv'):
        (bids / name).write_bytes((d['bids'] / name).read_bytes())
    text = (bids / 'participants.tsv').read_text().replace('\tF\n', '\tM\n')
    (bids / 'participants.tsv').write_text(text)
    assert run_cli(bids, d['out'], 'group', '--reference-group', 'group=control',
                   '--normative-covariates', 'sex') == 64
    assert "column 'sex' takes one value (M)" in capsys.readouterr().err
