"""Participant level on synthetic datasets of every supported acquisition: the CBF equals both
the planted truth and the consensus formula evaluated independently on the raw files."""

import json

import nibabel as nb
import numpy as np
import pytest

from bids_asl.synthetic import Variant, make_dataset

from conftest import run_cli
from reference import expected_cbf

SHAPE = (14, 15, 9)

VARIANTS = {
    'pcasl': Variant(label='pcasl'),
    'casl': Variant(label='casl', asl_type='CASL', label_duration=2.0, pld=1.5),
    'pasl2dkminus': Variant(label='pasl2dkminus', asl_type='PASL', acquisition='2D',
                            slice_direction='k-', ti1=0.7, pld=1.9),
    'pcasl2dj': Variant(label='pcasl2dj', acquisition='2D', slice_direction='j'),
    'labelfirst': Variant(label='labelfirst', order='label-first'),
    'included': Variant(label='included', m0_type='Included'),
    'estimate': Variant(label='estimate', m0_type='Estimate'),
    'absent': Variant(label='absent', m0_type='Absent'),
    'bs4': Variant(label='bs4', background_suppression=True, bs_pulses=4),
    'alpha': Variant(label='alpha', extra={'LabelingEfficiency': 0.72}),
    'field15': Variant(label='field15', field_strength=1.5),
}


@pytest.fixture(scope='module')
def outputs(tmp_path_factory):
    root = tmp_path_factory.mktemp('e2e')
    bids = make_dataset(root / 'bids', variants=tuple(VARIANTS.values()), shape=SHAPE)
    # these tests check quantification to 1e-4: realignment would add interpolation
    code = run_cli(bids, root / 'out', 'participant', '--skip-bids-validation', '-w',
                   root / 'work', '--nprocs', '2', '--no-motion-correction')
    assert code == 0
    return bids, root / 'out'


def _load(path):
    return nb.load(str(path)).get_fdata()


@pytest.mark.parametrize('label', sorted(VARIANTS))
def test_cbf_equals_truth_and_reference(outputs, label):
    bids, out = outputs
    v = VARIANTS[label]
    perf = bids / f'sub-{label}' / 'perf'
    got = _load(out / f'sub-{label}/perf/sub-{label}_cbf.nii.gz')
    truth_dir = bids / 'derivatives/groundtruth' / f'sub-{label}' / 'perf'
    brain = (_load(truth_dir / f'sub-{label}_desc-gm_mask.nii.gz')
             + _load(truth_dir / f'sub-{label}_desc-wm_mask.nii.gz')) > 0
    truth = _load(truth_dir / f'sub-{label}_desc-groundtruth_cbf.nii.gz')
    np.testing.assert_allclose(got[brain], truth[brain], rtol=1e-4)
    t1b = 1.35 if v.field_strength == 1.5 else 1.65
    m0_file = perf / f'sub-{label}_m0scan.nii.gz'
    ref = expected_cbf(perf / f'sub-{label}_asl.nii.gz', m0_file=m0_file, m0_tr=v.m0_tr, t1b=t1b)
    np.testing.assert_allclose(got[brain], ref[brain], rtol=1e-4)
    assert np.all(got[~brain] == 0) or label in ('estimate',)


def test_sidecar_records_every_constant(outputs):
    _, out = outputs
    meta = json.loads((out / 'sub-bs4/perf/sub-bs4_cbf.json').read_text())
    assert meta['Units'] == 'mL/100g/min'
    assert meta['BloodT1'] == 1.65 and 'literature' in meta['BloodT1Source']
    assert meta['PartitionCoefficient'] == 0.9
    assert meta['LabelingEfficiency'] == 0.85
    assert meta['BackgroundSuppressionEfficiency'] == pytest.approx(0.95 ** 4)
    assert meta['TotalLabelingEfficiency'] == pytest.approx(0.85 * 0.95 ** 4)
    assert meta['PostLabelingDelay'] == 1.8 and meta['LabelingDuration'] == 1.8
    assert meta['M0']['M0RepetitionTime'] == 6.0
    assert meta['M0']['M0SaturationRecoveryFactor'] == pytest.approx(1 - np.exp(-6 / 1.3))
    assert 'Alsop' in meta['Formula']
    assert meta['Sources'][0] == 'bids:raw:sub-bs4/perf/sub-bs4_asl.nii.gz'
    assert 'bids::sub-bs4/perf/sub-bs4_desc-brain_mask.nii.gz' in meta['Sources']
    pasl = json.loads((out / 'sub-pasl2dkminus/perf/sub-pasl2dkminus_cbf.json').read_text())
    assert pasl['BolusCutOffDelayTime'] == 0.7 and pasl['BolusCutOffTechnique'] == 'Q2TIPS'
    assert pasl['PostLabelingDelayPerSlice'][0] == 1.9
    assert len(pasl['PostLabelingDelayPerSlice']) == SHAPE[2]


def test_timeseries_mean_and_deltam(outputs):
    bids, out = outputs
    series = _load(out / 'sub-pcasl/perf/sub-pcasl_desc-timeseries_cbf.nii.gz')
    assert series.shape == SHAPE + (4,)
    np.testing.assert_allclose(series.mean(-1), _load(out / 'sub-pcasl/perf/sub-pcasl_cbf.nii.gz'),
                               rtol=1e-5, atol=1e-4)
    raw = _load(bids / 'sub-pcasl/perf/sub-pcasl_asl.nii.gz')
    mask = _load(out / 'sub-pcasl/perf/sub-pcasl_desc-brain_mask.nii.gz') > 0
    dm = _load(out / 'sub-pcasl/perf/sub-pcasl_desc-mean_deltam.nii.gz')
    np.testing.assert_allclose(dm[mask], (raw[..., 0::2] - raw[..., 1::2]).mean(-1)[mask],
                               rtol=1e-5)


def test_overrides_change_the_numbers_as_the_formula_says(tmp_path):
    bids = make_dataset(tmp_path / 'bids', variants=(Variant(label='o'),), shape=SHAPE)
    args = ['--skip-bids-validation', '-w', tmp_path / 'work', '--no-motion-correction']
    assert run_cli(bids, tmp_path / 'out', 'participant', '--t1-blood', '1.9', '--lambda',
                   '0.98', '--labeling-efficiency', '0.7', '--m0-scale', '2', '--t1-tissue',
                   '1.1', *args) == 0
    got = _load(tmp_path / 'out/sub-o/perf/sub-o_cbf.nii.gz')
    perf = bids / 'sub-o/perf'
    ref = expected_cbf(perf / 'sub-o_asl.nii.gz', m0_file=perf / 'sub-o_m0scan.nii.gz',
                       m0_tr=6.0, t1b=1.9, lam=0.98, alpha=0.7, m0_scale=2.0, t1_tissue=1.1)
    mask = _load(tmp_path / 'out/sub-o/perf/sub-o_desc-brain_mask.nii.gz') > 0
    np.testing.assert_allclose(got[mask], ref[mask], rtol=1e-5)


def test_absent_m0_with_background_suppression_needs_explicit_choice(tmp_path, capsys):
    bids = make_dataset(tmp_path / 'bids', variants=(Variant(
        label='bs', m0_type='Absent', background_suppression=True, bs_pulses=2),), shape=SHAPE)
    args = [bids, tmp_path / 'out', 'participant', '--skip-bids-validation']
    assert run_cli(*args) == 65
    assert 'M0Type' in capsys.readouterr().err
    assert run_cli(*args, '--allow-control-m0') == 0


def test_implausible_scaling_is_flagged(tmp_path, capsys):
    bids = make_dataset(tmp_path / 'bids', variants=(Variant(label='w'),), shape=SHAPE)
    assert run_cli(bids, tmp_path / 'out', 'participant', '--skip-bids-validation',
                   '--m0-scale', '0.01', '--no-motion-correction') == 0
    meta = json.loads((tmp_path / 'out/sub-w/perf/sub-w_cbf.json').read_text())
    assert meta['MeanCBFInMask'] > 200 and 'M0 scaling' in meta['Warnings'][0]
    assert 'M0 scaling' in capsys.readouterr().err
