"""Multi-delay runs end to end on synthetic data made with the general kinetic model."""

import json

import nibabel as nb
import numpy as np
import pytest

from bids_asl.io.validator import run_validator, validation_errors
from bids_asl.synthetic import Variant, make_dataset

from conftest import run_cli

SHAPE = (14, 15, 9)
PLDS = (0.25, 0.5, 1.0, 1.5, 2.0, 2.5)
VARIANTS = {
    'blood3d': (Variant(label='blood3d', plds=PLDS, n_pairs=2), ['--kinetic-model', 'blood']),
    'blood2d': (Variant(label='blood2d', plds=PLDS, n_pairs=1, acquisition='2D',
                        order='label-first'), ['--kinetic-model', 'blood']),
    'pasl': (Variant(label='pasl', asl_type='PASL', plds=(1.0, 1.4, 1.8, 2.2, 2.6, 3.0),
                     ti1=0.8, att_gm=0.6, att_wm=0.9, n_pairs=1), ['--kinetic-model', 'blood']),
    'tissue': (Variant(label='tissue', plds=PLDS, n_pairs=1, kinetic_model='tissue'),
               ['--t1-tissue-map', 'T1MAP']),
}


def _load(path):
    return nb.load(str(path)).get_fdata()


@pytest.fixture(scope='module', params=sorted(VARIANTS))
def run(request, tmp_path_factory):
    label = request.param
    variant, args = VARIANTS[label]
    root = tmp_path_factory.mktemp(label)
    bids = make_dataset(root / 'bids', variants=(variant,), shape=SHAPE)
    truth = bids / 'derivatives/groundtruth' / f'sub-{label}' / 'perf'
    args = [str(truth / f'sub-{label}_desc-groundtruth_T1map.nii.gz') if a == 'T1MAP' else a
            for a in args]
    assert run_cli(bids, root / 'out', 'participant', '-w', root / 'work',
                   '--no-motion-correction', *args) == 0
    return label, bids, truth, root / 'out' / f'sub-{label}' / 'perf'


def test_recovers_truth(run):
    label, _, truth, perf = run
    brain = (_load(truth / f'sub-{label}_desc-gm_mask.nii.gz')
             + _load(truth / f'sub-{label}_desc-wm_mask.nii.gz')) > 0
    cbf = _load(perf / f'sub-{label}_cbf.nii.gz')
    att = _load(perf / f'sub-{label}_att.nii.gz')
    true_cbf = _load(truth / f'sub-{label}_desc-groundtruth_cbf.nii.gz')
    true_att = _load(truth / f'sub-{label}_desc-groundtruth_att.nii.gz')
    np.testing.assert_allclose(cbf[brain], true_cbf[brain], rtol=1e-4)
    np.testing.assert_allclose(att[brain], true_att[brain], atol=1e-4)
    r2 = _load(perf / f'sub-{label}_desc-fit_rsquared.nii.gz')
    assert np.all(r2[brain] > 0.9999)
    se = _load(perf / f'sub-{label}_desc-stderr_cbf.nii.gz')
    assert np.all(se[brain] < 1e-3)  # noise-free: no uncertainty


def test_sidecars_and_validity(run):
    label, _, _, perf = run
    meta = json.loads((perf / f'sub-{label}_cbf.json').read_text())
    assert 'kinetic model' in meta['Model']
    assert meta['Bounds']['att'] == [0.05, 3.5]
    assert meta['ATTPrior']['Mean'] in (1.3, 0.7) and meta['ATTPrior']['SD'] == 1.0
    assert meta['BloodT1'] == 1.65 and meta['PartitionCoefficient'] == 0.9
    assert 'Levenberg-Marquardt' in meta['Fit']
    att_meta = json.loads((perf / f'sub-{label}_att.json').read_text())
    assert att_meta['Units'] == 's'
    dm = nb.load(perf / f'sub-{label}_desc-mean_deltam.nii.gz')
    n_delays = 6
    assert dm.shape == SHAPE + (n_delays,)
    assert not (perf / f'sub-{label}_desc-timeseries_cbf.nii.gz').exists()
    assert validation_errors(run_validator(perf.parents[1])) == []


def test_blood_model_on_tissue_data_is_biased_as_expected(tmp_path):
    # the model choice matters and is recorded: fitting the white-paper model to data made
    # with tissue T1 underestimates CBF (as the single-delay formula does on ASLDRO)
    variant = Variant(label='mis', plds=PLDS, n_pairs=1, kinetic_model='tissue')
    bids = make_dataset(tmp_path / 'bids', variants=(variant,), shape=SHAPE)
    assert run_cli(bids, tmp_path / 'out', 'participant', '--kinetic-model', 'blood',
                   '--skip-bids-validation', '--no-motion-correction') == 0
    gm = _load(bids / 'derivatives/groundtruth/sub-mis/perf/sub-mis_desc-gm_mask.nii.gz') > 0
    cbf = _load(tmp_path / 'out/sub-mis/perf/sub-mis_cbf.nii.gz')
    assert 40 < np.median(cbf[gm]) < 58
    meta = json.loads((tmp_path / 'out/sub-mis/perf/sub-mis_cbf.json').read_text())
    assert 'blood T1 throughout' in meta['KineticModelVariant']


def test_bad_t1_map_is_a_clear_error(tmp_path, capsys):
    variant = Variant(label='t', plds=PLDS, n_pairs=1)
    bids = make_dataset(tmp_path / 'bids', variants=(variant,), shape=SHAPE)
    bad = tmp_path / 't1.nii.gz'
    nb.save(nb.Nifti1Image(np.ones((3, 3, 3), np.float32), np.eye(4)), bad)
    assert run_cli(bids, tmp_path / 'out', 'participant', '--skip-bids-validation',
                   '--t1-tissue-map', bad) == 65
    err = capsys.readouterr().err
    assert '--t1-tissue-map' in err and 't1.nii.gz' in err
    assert not list((tmp_path / 'out').rglob('*_cbf.nii.gz'))
    assert run_cli(bids, tmp_path / 'out', 'participant', '--t1-tissue-map',
                   tmp_path / 'missing.nii.gz') == 66


def test_subject_report_shows_att_and_the_kinetic_model(run):
    label, _, _, perf = run
    html = (perf.parents[1] / f'sub-{label}.html').read_text()
    assert 'alt="ATT"' in html and 'multi-delay kinetic fit' in html
    assert 'general kinetic model [' in html  # methods text cites Buxton 1998
    assert 'Buxton RB et al.' in html
