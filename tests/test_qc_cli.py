"""Motion, outliers and QC from the command line, on a synthetic series with a known rigid
motion and a known outlier pair; every number is recomputed here from the files."""

import csv
import json

import nibabel as nb
import numpy as np
import pytest
from scipy import ndimage

from bids_asl.quant import motion
from bids_asl.synthetic import Variant, make_dataset

from conftest import run_cli

pytest.importorskip('ants')
SHAPE = (40, 44, 20)
MOVE = np.array([np.deg2rad(2.0), np.deg2rad(-1.5), np.deg2rad(1.0), 1.5, -2.0, 1.0])


def _move(vol, affine, params, centre):
    m = np.linalg.inv(motion.rigid_matrix(params, centre))
    vox = np.linalg.inv(affine) @ m @ affine
    return ndimage.affine_transform(vol, vox[:3, :3], vox[:3, 3], order=3, mode='constant')


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp('qc')
    bids = make_dataset(root / 'bids', variants=(Variant(label='m', n_pairs=8, noise_sd=0.5),),
                        shape=SHAPE)
    path = bids / 'sub-m/perf/sub-m_asl.nii.gz'
    img = nb.load(path)
    data = img.get_fdata()
    centre = (img.affine @ [*((np.array(SHAPE) - 1) / 2), 1])[:3]
    for vol in (4, 5):  # the third pair moved
        data[..., vol] = _move(data[..., vol], img.affine, MOVE, centre)
    data[..., 13] -= 8.0 * (data[..., 13] > 0)  # a label with a large artefact: pair 7
    nb.save(nb.Nifti1Image(data.astype(np.float32), img.affine, img.header), path)
    assert run_cli(bids, root / 'out', 'participant', '--skip-bids-validation',
                   '-w', root / 'work') == 0
    return root / 'out/sub-m/perf', centre


def _table(path):
    with open(path, newline='') as fobj:
        return list(csv.DictReader(fobj, delimiter='\t'))


def test_motion_recovered_in_confounds(run):
    perf, centre = run
    rows = _table(perf / 'sub-m_desc-confounds_timeseries.tsv')
    assert len(rows) == 16
    cols = ('rot_x', 'rot_y', 'rot_z', 'trans_x', 'trans_y', 'trans_z')
    params = np.array([[float(r[c]) for c in cols] for r in rows])
    ref = motion.rigid_matrix(params[0], centre)
    rel = motion.rigid_params(motion.rigid_matrix(params[4], centre) @ np.linalg.inv(ref), centre)
    np.testing.assert_allclose(np.rad2deg(rel[:3]), np.rad2deg(MOVE[:3]), atol=0.3)
    np.testing.assert_allclose(rel[3:], MOVE[3:], atol=0.3)
    # FD recomputed here from the table's own parameters (Power 2012)
    fd = [0.0] + [np.abs(np.diff(params[i - 1:i + 1, 3:], axis=0)).sum()
                  + 50 * np.abs(np.diff(params[i - 1:i + 1, :3], axis=0)).sum()
                  for i in range(1, 16)]
    np.testing.assert_allclose([float(r['framewise_displacement']) for r in rows], fd,
                               atol=2e-5)
    qc = _table(perf / 'sub-m_desc-qc_cbf.tsv')[0]
    assert float(qc['mean_fd']) == pytest.approx(np.mean(fd), rel=1e-4)
    assert float(qc['max_fd']) == pytest.approx(np.max(fd), rel=1e-4)
    assert float(qc['max_fd']) > 2.0  # the moved pair stands out


def test_outlier_pair_rejected_and_recorded(run):
    perf, _ = run
    qc = _table(perf / 'sub-m_desc-qc_cbf.tsv')[0]
    assert '13+14' in qc['score_rejected_volumes'].split()
    rows = _table(perf / 'sub-m_desc-confounds_timeseries.tsv')
    assert rows[12]['score_outlier'] == '1' and rows[13]['score_outlier'] == '1'
    assert int(qc['n_deltam_rejected_score']) >= 1
    assert int(qc['n_deltam_used_score']) + int(qc['n_deltam_rejected_score']) == 8
    meta = json.loads((perf / 'sub-m_desc-confounds_timeseries.json').read_text())
    assert meta['framewise_displacement']['Units'] == 'mm'
    assert 'ANTs' in meta['Realignment']['Software']


def test_qc_numbers_equal_direct_computation(run):
    perf, _ = run
    qc = _table(perf / 'sub-m_desc-qc_cbf.tsv')[0]
    cbf = nb.load(perf / 'sub-m_cbf.nii.gz').get_fdata()
    mask = nb.load(perf / 'sub-m_desc-brain_mask.nii.gz').get_fdata() > 0
    assert float(qc['cbf_mean_brain']) == pytest.approx(cbf[mask].mean(), rel=1e-5)
    assert float(qc['negative_cbf_fraction_brain']) == pytest.approx((cbf[mask] < 0).mean(),
                                                                     abs=1e-6)
    assert qc['tissue_maps'] == 'none' and qc['qei'] == 'n/a'
    series = nb.load(perf / 'sub-m_desc-timeseries_cbf.nii.gz').get_fdata()
    rejected = {int(v.split('+')[0]) // 2 for v in qc['score_rejected_volumes'].split()}
    keep = [i for i in range(8) if i not in rejected]
    score = nb.load(perf / 'sub-m_desc-score_cbf.nii.gz').get_fdata()
    np.testing.assert_allclose(score[mask], series[mask][:, keep].mean(axis=1), rtol=1e-5,
                               atol=1e-4)
    # the artefact inflated the plain mean; SCORE's is back near the truth in the brain
    # (the motion of pair 3 is undone by realignment up to interpolation at the edges)
    truth = nb.load(perf.parents[2] / 'bids/derivatives/groundtruth/sub-m/perf/'
                    'sub-m_desc-groundtruth_cbf.nii.gz').get_fdata()
    inner = ndimage.binary_erosion(truth > 0, iterations=2)
    assert abs(score[inner].mean() / truth[inner].mean() - 1) < 0.02
    assert abs(cbf[inner].mean() / truth[inner].mean() - 1) > 0.05


def test_subject_report_shows_motion_and_rejected_volumes(run):
    perf, _ = run
    html = (perf.parents[1] / 'sub-m.html').read_text()
    section = html.split('id="run-sub-m"', 1)[1]
    assert '<h3>Motion</h3>' in section and section.count('alt="motion plot"') == 3
    qc = _table(perf / 'sub-m_desc-qc_cbf.tsv')[0]
    assert f'source volumes {qc["score_rejected_volumes"]}' in section
    flagged = [i + 1 for i, r in enumerate(_table(perf / 'sub-m_desc-confounds_timeseries.tsv'))
               if r['score_outlier'] == '1']
    assert f'volumes flagged by SCORE: {", ".join(map(str, flagged))}.' in section
    # the FD row of the QC table carries the flag its threshold gives
    from bids_asl import qcrules

    flag = qcrules.flag('max_fd', qc['max_fd'])
    assert '<td>max_fd</td><td class="num">' in section and f'>{flag}</td>' in section
