"""ANTs-based anatomy steps checked against known transforms and exact fractions."""

import nibabel as nb
import numpy as np
import pytest

from conftest import ASLDRO

T1W = ASLDRO / 'sub-pcasl1pld' / 'anat' / 'sub-pcasl1pld_T1w.nii.gz'
needs_dro = pytest.mark.needs_data(T1W)


def _rigid(rx_deg, rz_deg, t):
    rx, rz = np.radians(rx_deg), np.radians(rz_deg)
    mx = np.array([[1, 0, 0], [0, np.cos(rx), -np.sin(rx)], [0, np.sin(rx), np.cos(rx)]])
    mz = np.array([[np.cos(rz), -np.sin(rz), 0], [np.sin(rz), np.cos(rz), 0], [0, 0, 1]])
    out = np.eye(4)
    out[:3, :3] = mz @ mx
    out[:3, 3] = t
    return out


@needs_dro
def test_t1w_moved_by_a_known_rigid_transform_is_registered_back_within_1mm(tmp_path):
    from bids_asl.registration import anat

    img = nb.load(str(T1W))
    data = img.get_fdata()
    known = _rigid(5.0, 8.0, (6.0, -4.0, 3.0))  # world → world: where each point moved
    # the same voxels, moved in space; resampled on a shifted grid so that the voxel
    # lattices differ too (not a header-only identity in disguise)
    moved_affine = known @ img.affine
    from scipy import ndimage
    shifted = ndimage.shift(data, (0.4, -0.3, 0.2), order=1)
    shift_mm = np.eye(4)
    shift_mm[:3, 3] = img.affine[:3, :3] @ np.array([0.4, -0.3, 0.2])
    moved_affine = moved_affine @ np.linalg.inv(img.affine) @ shift_mm @ img.affine
    brain = data > 1e-3
    _, matrix = anat.register_linear(shifted, moved_affine, data * brain, img.affine,
                                     tmp_path / 'x.mat', fixed_mask=brain)
    # matrix maps fixed (original) points to moving points; the truth is moved_affine's
    # world mapping: p_moving = moved_affine @ inv(img.affine) @ p_fixed
    truth = moved_affine @ np.linalg.inv(img.affine)
    ijk = np.argwhere(brain)[::50].T
    points = img.affine[:3, :3] @ ijk + img.affine[:3, 3:4]
    points = np.vstack([points, np.ones(points.shape[1])])
    error = np.linalg.norm((matrix @ points - truth @ points)[:3], axis=0)
    assert error.max() < 1.0, f'max displacement error {error.max():.2f} mm'
    assert (tmp_path / 'x.txt').exists()  # the ITK text copy for the outputs


def test_pv_sigmas_match_the_box_variance():
    from bids_asl.registration.anat import pv_sigmas

    dst = np.diag([4.0, 2.0, 1.0, 1.0])
    sigma = pv_sigmas(np.eye(4), dst)
    assert sigma == pytest.approx(np.sqrt((np.array([4.0, 2.0, 1.0]) ** 2 - 1) / 12))


def test_fine_probabilities_become_partial_volume_fractions(tmp_path):
    import ants

    from bids_asl.registration.anat import probabilities_to_grid

    identity = tmp_path / 'identity.mat'
    ants.write_transform(ants.create_ants_transform(transform_type='AffineTransform',
                                                    dimension=3), str(identity))
    fine = np.zeros((80, 24, 24))
    fine[:37] = 1.0  # tissue for x < 36.5 mm (voxel centres at 0..79 mm)
    coarse_affine = np.diag([4.0, 4.0, 4.0, 1.0])
    coarse_affine[:3, 3] = (1.5, 9.5, 9.5)  # coarse voxel i covers [4i, 4i + 4) mm in x
    (out,) = probabilities_to_grid([fine], np.eye(4), (20, 2, 2), coarse_affine,
                                   [str(identity)], [True])
    edges = np.arange(20) * 4.0  # lower edge in mm of each coarse voxel
    exact = np.clip((36.5 - edges) / 4.0, 0, 1)
    assert np.abs(out[2:-2, 0, 0] - exact[2:-2]).max() < 0.1
    assert out[1:5, 0, 0] == pytest.approx(1.0, abs=1e-3)  # [0]: the image border
    assert out[12:, 0, 0] == pytest.approx(0.0, abs=1e-3)


@needs_dro
@pytest.mark.slow
def test_brain_mask_of_a_head_with_a_synthetic_skull():
    """A T1w that is not skull-stripped: bright skull shell, dark gap, noise everywhere; the
    template-based mask must find the brain (Dice ≥ 0.9 vs the known brain)."""
    from scipy import ndimage

    from bids_asl.io.templates import template_images
    from bids_asl.quant.regions import dice
    from bids_asl.registration import anat

    img = nb.load(str(T1W))
    t1 = img.get_fdata()
    brain = t1 > 1e-3 * t1.max()
    outer = ndimage.binary_dilation(brain, iterations=6)
    inner = ndimage.binary_dilation(brain, iterations=3)
    head = t1.copy()
    head[outer & ~inner] = 0.9 * t1.max()
    head[inner & ~brain] = 0.1 * t1.max()
    head = np.abs(head + np.random.default_rng(1).normal(0, 0.02 * t1.max(), t1.shape))
    assert not anat.looks_skull_stripped(head) and anat.looks_skull_stripped(t1)
    tpl, _, tpl_affine = template_images()
    mask, how = anat.brain_mask(head, img.affine, tpl['t1'], tpl_affine)
    assert 'template' in how
    assert dice(mask, brain) >= 0.9


def _thick_head(noise_sd=20.0, scalp=2500.0):
    from bids_asl.synthetic_brain import Geometry, sample_fields, t1w_image

    geometry = Geometry(shape=(192, 230, 38), zooms=(1.0, 1.0, 5.0), centre=(0.0, -18.0, 12.0),
                        pose=(2.0, -1.0, 3.0, 1.0, -2.0, 3.0))
    return geometry, t1w_image(geometry, noise_sd=noise_sd, scalp=scalp, seed=1), \
        sample_fields(geometry, None, oversample=2)


def test_thick_slice_t1w_with_bright_scalp_fat_is_segmented():
    """1 x 1 x 5 mm slices, scalp fat 2.9x brighter than white matter inside a brain mask
    dilated by one voxel (as brain_mask does): Atropos' k-means used to exit with status 1 on
    this (or put the fat in a class of its own); the bright fence leaves the fat out."""
    from scipy import ndimage

    from bids_asl.quant.regions import dice
    from bids_asl.registration import anat

    geometry, t1w, truth = _thick_head()
    brain = (truth['gm'] + truth['wm'] + truth['csf']) > 0.5
    mask = ndimage.binary_dilation(brain, structure=np.ones((5, 5, 3), bool))
    assert (t1w[mask] > 2000).mean() > 0.01  # fat in the mask
    probs = anat.segment(t1w, geometry.affine, mask)
    assert dice(probs[..., 1] > 0.5, truth['gm'] > 0.5) >= 0.75
    assert dice(probs[..., 2] > 0.5, truth['wm'] > 0.5) >= 0.8
    assert probs[t1w > 2000].sum() == 0  # the fat has no tissue class


def test_a_t1w_without_contrast_is_a_segmentation_error():
    from bids_asl.registration import anat
    from bids_asl.synthetic_brain import Geometry, sample_fields

    geometry = Geometry(shape=(64, 77, 64), zooms=(3.0, 3.0, 3.0))
    f = sample_fields(geometry, None, oversample=1)
    brain = f['gm'] + f['wm'] + f['csf'] > 0.5
    with pytest.raises(anat.SegmentationError, match='no three tissue classes'):
        anat.segment(np.where(brain, 500.0, 0.0), geometry.affine, brain)
