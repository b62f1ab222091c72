"""Tissue QC metrics from the CLI with tissue maps (--tissue-maps): ASLDRO ground-truth
segmentation as GM/WM/CSF probabilities; every number recomputed here from the files."""

import csv

import nibabel as nb
import numpy as np
import pytest
from scipy import ndimage

from conftest import ASLDRO, run_cli, truth_tissue_maps

pytestmark = [pytest.mark.integration,
              pytest.mark.needs_data(ASLDRO)]
SUB = 'pcasl1pldnoisy'


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp('tissue')
    labels = truth_tissue_maps(root / 'maps', SUB)
    assert run_cli(ASLDRO, root / 'out', 'participant', '--participant-label', SUB,
                   '--tissue-maps', root / 'maps', '--skip-bids-validation',
                   '-w', root / 'work') == 0
    perf = root / 'out' / f'sub-{SUB}' / 'perf'
    with open(perf / f'sub-{SUB}_desc-qc_cbf.tsv', newline='') as fobj:
        row = next(csv.DictReader(fobj, delimiter='\t'))
    return row, perf, {n: labels == v for v, n in ((1, 'gm'), (2, 'wm'), (3, 'csf'))}


def test_tissue_means_ratio_and_scov(run):
    row, perf, tissue = run
    cbf = nb.load(perf / f'sub-{SUB}_cbf.nii.gz').get_fdata()
    mask = nb.load(perf / f'sub-{SUB}_desc-brain_mask.nii.gz').get_fdata() > 0
    gm, wm = cbf[tissue['gm'] & mask], cbf[tissue['wm'] & mask]
    assert row['tissue_maps'] == 'yes'
    assert float(row['cbf_mean_gm']) == pytest.approx(gm.mean(), rel=1e-5)
    assert float(row['cbf_mean_wm']) == pytest.approx(wm.mean(), rel=1e-5)
    assert float(row['gm_wm_ratio']) == pytest.approx(gm.mean() / wm.mean(), rel=1e-5)
    assert float(row['scov_gm']) == pytest.approx(gm.std(ddof=1) / gm.mean(), rel=1e-4)
    assert float(row['negative_cbf_fraction_gm']) == pytest.approx((gm < 0).mean(), abs=1e-6)
    assert 2.0 < float(row['gm_wm_ratio']) < 6.0  # the phantom: 60 vs 20 through the formula


def test_qei_recomputed(run):
    row, perf, tissue = run
    img = nb.load(perf / f'sub-{SUB}_cbf.nii.gz')
    cbf = img.get_fdata()
    mask = nb.load(perf / f'sub-{SUB}_desc-brain_mask.nii.gz').get_fdata() > 0
    sigma = 5.0 / 2.3548200450309493 / np.array(img.header.get_zooms()[:3])
    sm = ndimage.gaussian_filter(np.where(mask, cbf, 0.0), sigma, mode='nearest')
    cls = [tissue[k] & mask for k in ('gm', 'wm', 'csf')]
    brain = cls[0] | cls[1] | cls[2]
    pseudo = 2.5 * tissue['gm'] + tissue['wm']
    rho = np.corrcoef(pseudo[brain], sm[brain])[0, 1]
    v = sum((c.sum() - 1) * np.var(sm[c], ddof=1) for c in cls) / sum(c.sum() - 1 for c in cls)
    di = v / abs(sm[cls[0]].mean())
    ngm = np.mean(cbf[cls[0]] < 0)
    qei = np.cbrt((1 - np.exp(-3.0126 * rho ** 2.4419))
                  * np.exp(-(0.054 * di ** 0.9272 + 2.8478 * ngm ** 0.5196)))
    assert float(row['qei']) == pytest.approx(qei, rel=1e-4)
    assert float(row['qei_rho']) == pytest.approx(rho, rel=1e-4)
    assert 0 < qei < 1


def test_bad_tissue_maps_are_refused(tmp_path, capsys):
    maps = tmp_path / 'maps'
    maps.mkdir()
    for name in ('GM', 'WM', 'CSF'):
        nb.save(nb.Nifti1Image(np.ones((3, 3, 3), np.float32), np.eye(4)),
                maps / f'sub-{SUB}_label-{name}_probseg.nii.gz')
    assert run_cli(ASLDRO, tmp_path / 'out', 'participant', '--participant-label', SUB,
                   '--tissue-maps', maps, '--skip-bids-validation') == 65
    err = capsys.readouterr().err
    assert '--tissue-maps' in err and 'probseg' in err
    assert not list((tmp_path / 'out').rglob('*.nii.gz'))
