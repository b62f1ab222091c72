"""``--anat-derivatives``: an fMRIPrep-like derivative tree built here (the synthetic subject's
T1w, brain mask and tissue probabilities, and ITK composite transforms made with antspyx whose
mapping is known exactly) replaces our T1w steps; CBF lands in MNI152NLin2009aSym and in
MNI152NLin2009cAsym space where the known mapping puts it."""

import json

import nibabel as nb
import numpy as np
import pytest

from conftest import run_cli

LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
#: the field grid of the 2009cAsym transform: 2.5 mm over TemplateFlow's res-01 box
FIELD = {'size': (77, 92, 77), 'origin_ras': (-96.0, -132.0, -78.0), 'spacing': 2.5}


def _composite(matrix_ras, path):
    """An fMRIPrep-shaped composite (affine + displacement field, the field zero) whose
    mapping of template points to T1w points is ``matrix_ras``."""
    import ants

    lps = LPS @ matrix_ras @ LPS
    affine = ants.create_ants_transform(transform_type='AffineTransform', dimension=3)
    affine.set_parameters(np.concatenate([lps[:3, :3].ravel(), lps[:3, 3]]))
    origin = LPS[:3, :3] @ np.array(FIELD['origin_ras'])
    field = ants.from_numpy(np.zeros((*FIELD['size'], 3), np.float32), origin=tuple(origin),
                            spacing=(FIELD['spacing'],) * 3, direction=LPS[:3, :3],
                            has_components=True)
    ants.write_transform(ants.compose_ants_transforms(
        [affine, ants.transform_from_displacement_field(field)]), str(path))


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    from bids_asl.synthetic import Variant
    from bids_asl.synthetic_brain import (
        Acquisition,
        Geometry,
        make_brain_dataset,
        sample_fields,
        t1w_image,
    )

    root = tmp_path_factory.mktemp('derivs')
    t1w_geom = Geometry(shape=(96, 115, 96), zooms=(2.0, 2.0, 2.0), centre=(0.0, -18.0, 12.0),
                        pose=(4.0, -3.0, 5.0, 3.0, -4.0, 6.0))
    asl = Geometry(shape=(40, 48, 22), zooms=(4.5, 4.5, 6.0), centre=(0.0, -18.0, 14.0),
                   pose=t1w_geom.pose)  # one session: the head sits where the T1w shows it
    v = Variant(label='s', n_pairs=2, noise_sd=0.0)
    bids = make_brain_dataset(root / 'bids', [(v, Acquisition(geometry=asl), {'t1w': None})])
    anat = root / 'fmriprep' / 'sub-s' / 'anat'
    anat.mkdir(parents=True)
    fields = sample_fields(t1w_geom, None, oversample=2)
    save = lambda data, name: nb.save(  # noqa: E731
        nb.Nifti1Image(np.asarray(data, np.float32), t1w_geom.affine), anat / name)
    save(t1w_image(t1w_geom, noise_sd=10.0), 'sub-s_desc-preproc_T1w.nii.gz')
    save(fields['gm'] + fields['wm'] + fields['csf'] > 0.3, 'sub-s_desc-brain_mask.nii.gz')
    for k in ('gm', 'wm', 'csf'):
        save(fields[k], f'sub-s_label-{k.upper()}_probseg.nii.gz')
        # their MNI-space copies must not be taken for T1w-space maps
        save(fields[k] * 0, f'sub-s_space-MNI152NLin2009cAsym_label-{k.upper()}_probseg.nii.gz')
    # the synthetic head is the template placed by the pose P: template point u is T1w point P u
    for space in ('MNI152NLin2009aSym', 'MNI152NLin2009cAsym'):
        _composite(t1w_geom.pose_matrix, anat / f'sub-s_from-T1w_to-{space}_mode-image_xfm.h5')
    out = root / 'out'
    # realignment off to isolate the anatomy (test_anatomy_fallback runs the default command)
    code = run_cli(bids, out, 'participant', '-w', root / 'work', '--skip-bids-validation',
                   '--no-motion-correction', '--atlases', 'AAL',
                   '--anat-derivatives', root / 'fmriprep', anatomy=True)
    return code, out, root, t1w_geom


def _direct(cbf_img, ref_img, pose):
    """The ASL map sampled where the known mapping puts each reference voxel."""
    from bids_asl.quant.resample import sample_linear

    return sample_linear(cbf_img.get_fdata(), cbf_img.affine, ref_img.shape,
                         pose @ ref_img.affine)


def test_derivatives_replace_the_t1w_steps(run):
    code, out, root, _ = run
    assert code == 0
    perf = out / 'sub-s' / 'perf'
    meta = json.loads((perf / 'sub-s_cbf.json').read_text())
    assert meta['AnatomicalReference'] == 'T1w' and 'AnatomyErrors' not in meta
    assert meta['TissueFractionSource'].startswith('T1w tissue probabilities of '
                                                   '--anat-derivatives')
    # none of our T1w steps ran: no segmentation, no SyN
    work = list((root / 'work').rglob('t1w_segment')) + list((root / 'work').rglob(
        't1w_to_template'))
    assert work == []
    # their fractions, carried to the ASL grid, match the truth there
    from bids_asl.quant.regions import dice
    truth = root / 'bids' / 'derivatives' / 'groundtruth' / 'sub-s' / 'perf'
    gm = nb.load(perf / 'sub-s_label-GM_probseg.nii.gz').get_fdata()
    assert dice(gm > 0.5, nb.load(truth / 'sub-s_label-GM_probseg.nii.gz').get_fdata()
                > 0.5) > 0.8


@pytest.mark.parametrize('space', ['MNI152NLin2009aSym', 'MNI152NLin2009cAsym'])
def test_cbf_in_template_space_through_their_transform(run, space):
    code, out, _, t1w_geom = run
    perf = out / 'sub-s' / 'perf'
    ours = nb.load(perf / f'sub-s_space-{space}_cbf.nii.gz')
    mask = nb.load(perf / f'sub-s_space-{space}_desc-brain_mask.nii.gz').get_fdata() > 0
    if space == 'MNI152NLin2009cAsym':  # 2 mm over the field's domain, same corner
        assert ours.shape == (96, 114, 96)  # floor((77, 92, 77) - 1) * 2.5 / 2) + 1
        assert np.allclose(ours.affine, np.diag([2.0, 2.0, 2.0, 1.0])
                           + np.array([[0, 0, 0, -96], [0, 0, 0, -132], [0, 0, 0, -78],
                                       [0, 0, 0, 0]]))
        sidecar = json.loads((perf / f'sub-s_space-{space}_cbf.json').read_text())
        assert sidecar['SpatialReference'] == space
    direct = _direct(nb.load(perf / 'sub-s_cbf.nii.gz'), ours, t1w_geom.pose_matrix)
    # inside the ASL brain mask carried the same way (at its edge our mask-normalised
    # interpolation differs from plain linear interpolation by design)
    core = mask & (_direct(nb.load(perf / 'sub-s_desc-brain_mask.nii.gz'), ours,
                           t1w_geom.pose_matrix) > 0.999)
    assert core.sum() > 50000
    data = ours.get_fdata()[core]
    # only our ASL -> T1w rigid registration stands between the two (measured r 0.9992,
    # median |difference| 0.21 mL/100g/min; the transposed or inverted transform gives < 0.5)
    assert np.corrcoef(data, direct[core])[0, 1] > 0.99
    assert np.median(np.abs(data - direct[core])) < 1.0
