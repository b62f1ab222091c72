"""A failed anatomy step never costs the CBF; a thick-slice clinical T1w with bright scalp fat
(the case where Atropos used to exit with status 1) is segmented.

Both run the command a user types, on the brain-shaped synthetic subject (no ../shared data):
the default command (realignment, anatomy, default model) against the subject's ground truth.
"""

import json

import nibabel as nb
import numpy as np
import pytest

from conftest import run_cli

TPL = 'MNI152NLin2009aSym'


def _subject(root, t1w_data=None, t1w_geometry=None, seed=3):
    """One pCASL subject on a coarse ASL grid, with a T1w: ``t1w_data`` replaces the synthetic
    T1w on ``t1w_geometry``.  Returns (bids dir, truth dir)."""
    from bids_asl.synthetic import Variant
    from bids_asl.synthetic_brain import Acquisition, Geometry, make_brain_dataset

    asl = Geometry(shape=(40, 48, 22), zooms=(4.5, 4.5, 6.0), centre=(0.0, -18.0, 14.0))
    v = Variant(label='s', n_pairs=2, noise_sd=0.0)
    bids = make_brain_dataset(root / 'bids', [(v, Acquisition(geometry=asl),
                                               {'t1w': t1w_geometry, 'seed': seed})])
    if t1w_data is not None:
        img = nb.Nifti1Image(t1w_data.astype(np.float32), t1w_geometry.affine)
        nb.save(img, bids / 'sub-s' / 'anat' / 'sub-s_T1w.nii.gz')
    return bids, bids / 'derivatives' / 'groundtruth' / 'sub-s' / 'perf'


def _load(path):
    return nb.load(path).get_fdata()


def _gm_cbf_matches_truth(perf, truth):
    cbf = _load(perf / 'sub-s_cbf.nii.gz')
    true = _load(truth / 'sub-s_desc-groundtruth_cbf.nii.gz')
    from scipy import ndimage
    pure = ndimage.binary_erosion(_load(truth / 'sub-s_desc-gm_mask.nii.gz') > 0)
    assert cbf[pure].mean() == pytest.approx(true[pure].mean(), rel=0.03)


@pytest.fixture(scope='module')
def failed(tmp_path_factory):
    """A T1w on which segmentation must fail: a skull-stripped brain of one intensity (no
    tissue contrast: Atropos exits with status 1 with every initialisation)."""
    from bids_asl.synthetic_brain import Geometry, sample_fields

    root = tmp_path_factory.mktemp('failed')
    geometry = Geometry(shape=(80, 96, 80), zooms=(2.4, 2.4, 2.4), centre=(0.0, -18.0, 12.0),
                        pose=(2.0, -1.0, 3.0, 1.0, -2.0, 3.0))
    f = sample_fields(geometry, None, oversample=1)
    flat = np.where(f['gm'] + f['wm'] + f['csf'] > 0.5, 500.0, 0.0)
    bids, truth = _subject(root, flat, geometry)
    code = run_cli(bids, root / 'out', 'participant', '-w', root / 'work',
                   '--skip-bids-validation', '--atlases', 'AAL', anatomy=True)
    return code, root / 'out', truth


def test_failed_segmentation_keeps_the_cbf_and_says_so(failed, capsys):
    code, out, truth = failed
    assert code == 3  # ExitCode.PARTIAL
    perf = out / 'sub-s' / 'perf'
    _gm_cbf_matches_truth(perf, truth)  # the CBF is there, and right
    meta = json.loads((perf / 'sub-s_cbf.json').read_text())
    first = meta['AnatomyErrors'][0]
    assert first.startswith('T1w segmentation (Atropos): SegmentationError: Atropos found no '
                            'three tissue classes')
    assert meta['AnatomicalReference'].startswith(f'none (the T1w could not be used: {first}')
    assert meta['TissueFractionSource'].startswith('template priors')
    assert any(w.startswith('anatomy incomplete: T1w segmentation') for w in meta['Warnings'])
    # the run fell back to the template path: template space, fractions, regional tables
    assert (perf / f'sub-s_space-{TPL}_cbf.nii.gz').exists()
    assert not (perf / 'sub-s_space-T1w_cbf.nii.gz').exists()
    assert (perf / f'sub-s_space-{TPL}_seg-AAL_desc-regional_cbf.tsv').exists()
    gm = _load(perf / 'sub-s_label-GM_probseg.nii.gz')
    from bids_asl.quant.regions import dice
    assert dice(gm > 0.5, _load(truth / 'sub-s_label-GM_probseg.nii.gz') > 0.5) > 0.6
    gm_meta = json.loads((perf / 'sub-s_label-GM_probseg.json').read_text())
    assert gm_meta['AnatomyErrors'] == meta['AnatomyErrors']
    # the T1w steps that succeeded are written, the failed one is not
    anat = out / 'sub-s' / 'anat'
    assert (anat / 'sub-s_desc-brain_mask.nii.gz').exists()
    assert not (anat / 'sub-s_label-GM_probseg.nii.gz').exists()
    assert 'AnatomyErrors' in json.loads((anat / 'sub-s_desc-preproc_T1w.json').read_text())
    # the report shows it, QC used the template fractions
    page = (out / 'sub-s.html').read_text(encoding='utf-8')
    assert 'anatomy incomplete: T1w segmentation (Atropos)' in page
    qc = (perf / 'sub-s_desc-qc_cbf.tsv').read_text().splitlines()
    row = dict(zip(qc[0].split('\t'), qc[1].split('\t'), strict=True))
    assert row['tissue_maps'] == 'yes'


def test_failed_anatomy_is_one_warning_line(tmp_path, failed, capsys):
    """A rerun (from the cache) prints the warning once and exits PARTIAL again."""
    code, out, _ = failed
    bids = out.parent / 'bids'
    assert run_cli(bids, out, 'participant', '-w', out.parent / 'work',
                   '--skip-bids-validation', '--atlases', 'AAL', anatomy=True) == 3
    lines = [ln for ln in capsys.readouterr().err.splitlines() if 'anatomy incomplete' in ln]
    assert len(lines) == 1 and 'sub-s_cbf.json' in lines[0]


@pytest.fixture(scope='module')
def thick(tmp_path_factory):  # used by a slow test: SyN alone takes ~1.5 min
    """A clinical T1w: 1 × 1 × 5 mm slices, scalp fat brighter than white matter, noise, not
    skull-stripped (the protocol on which Atropos exited with status 1)."""
    from bids_asl.synthetic_brain import Geometry, t1w_image

    root = tmp_path_factory.mktemp('thick')
    geometry = Geometry(shape=(192, 230, 38), zooms=(1.0, 1.0, 5.0), centre=(0.0, -18.0, 12.0),
                        pose=(2.0, -1.0, 3.0, 1.0, -2.0, 3.0))
    t1w = t1w_image(geometry, noise_sd=20.0, scalp=2500.0, seed=1)
    bids, truth = _subject(root, t1w, geometry)
    code = run_cli(bids, root / 'out', 'participant', '-w', root / 'work',
                   '--skip-bids-validation', '--atlases', 'AAL', anatomy=True)
    return code, root / 'out', truth


@pytest.mark.slow
def test_thick_slice_t1w_with_bright_fat_is_segmented(thick):
    code, out, truth = thick
    assert code == 0
    perf = out / 'sub-s' / 'perf'
    meta = json.loads((perf / 'sub-s_cbf.json').read_text())
    assert meta['AnatomicalReference'] == 'T1w' and 'AnatomyErrors' not in meta
    assert meta['TissueFractionSource'].startswith('T1w segmentation')
    from bids_asl.quant.regions import dice
    # measured: GM 0.715, WM 0.895 (5 mm slices blur thin cortex into CSF; the ASL grid is
    # 4.5 x 4.5 x 6 mm); without the bright fence Atropos fails or calls the fat white matter
    for tissue, least in (('GM', 0.65), ('WM', 0.85)):
        ours = _load(perf / f'sub-s_label-{tissue}_probseg.nii.gz')
        true = _load(truth / f'sub-s_label-{tissue}_probseg.nii.gz')
        assert dice(ours > 0.5, true > 0.5) >= least, tissue
    _gm_cbf_matches_truth(perf, truth)
    # the GM CBF of our tissue table (GM fraction >= 0.7) is the truth's GM CBF there
    rows = (perf / 'sub-s_desc-tissue_cbf.tsv').read_text().splitlines()
    table = {r.split('\t')[0]: dict(zip(rows[0].split('\t'), r.split('\t'), strict=True))
             for r in rows[1:]}
    cbf = _load(perf / 'sub-s_cbf.nii.gz')
    true = _load(truth / 'sub-s_desc-groundtruth_cbf.nii.gz')
    ours = (_load(perf / 'sub-s_label-GM_probseg.nii.gz') >= 0.7) & \
        (_load(perf / 'sub-s_desc-brain_mask.nii.gz') > 0)
    assert float(table['GM']['mean']) == pytest.approx(cbf[ours].mean(), rel=1e-5)
    assert float(table['GM']['mean']) == pytest.approx(true[ours].mean(), rel=0.05)
    # the fat was left out of the segmentation, not called white matter
    anat = out / 'sub-s' / 'anat'
    raw = _load(out.parent / 'bids' / 'sub-s' / 'anat' / 'sub-s_T1w.nii.gz')
    wm = _load(anat / 'sub-s_label-WM_probseg.nii.gz')
    fat = raw > 2000
    assert fat.sum() > 10000 and (wm[fat] > 0.5).mean() < 0.01
