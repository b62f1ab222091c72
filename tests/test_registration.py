"""Motion recovery with ANTs on series moved by known rigid transforms.

The moved volumes are made here with scipy.ndimage.affine_transform (independent of ANTs),
from an ASLDRO M0 image when ../shared is present, else from the package's synthetic phantom.
"""

import nibabel as nb
import numpy as np
import pytest
from scipy import ndimage

from bids_asl.quant import motion
from bids_asl.synthetic import M0_GM, phantom

from conftest import ASLDRO

pytest.importorskip('ants')
from bids_asl.registration import realign_series  # noqa: E402


def _source():
    path = ASLDRO / 'sub-pcasl1pld/perf/sub-pcasl1pld_m0scan.nii.gz'
    if path.exists():
        img = nb.load(path)
        return img.get_fdata(), img.affine
    gm, wm = phantom((40, 44, 24))
    affine = np.diag([3.0, 3.0, 4.0, 1.0])
    return ndimage.gaussian_filter(np.where(gm, M0_GM, np.where(wm, 60.0, 0.0)), 1.0), affine


def move(data, affine, params, centre):
    """The object moved by M (reference point → volume point): volume(x) = data(M⁻¹ x)."""
    m = np.linalg.inv(motion.rigid_matrix(params, centre))
    vox = np.linalg.inv(affine) @ m @ affine  # voxel-to-voxel map
    return ndimage.affine_transform(data, vox[:3, :3], vox[:3, 3], order=3, mode='constant')


def test_realignment_recovers_known_motion(rng):
    data, affine = _source()
    centre = (affine @ [*(np.array(data.shape) - 1) / 2, 1])[:3]
    truth = np.zeros((5, 6))
    truth[1:, :3] = np.deg2rad(rng.uniform(-3, 3, (4, 3)))
    truth[1:, 3:] = rng.uniform(-3, 3, (4, 3))
    series = np.stack([move(data, affine, p, centre) for p in truth], axis=-1)
    series *= np.array([1.0, 0.99, 1.0, 0.99, 1.0])  # label/control-like intensity steps
    _, matrices = realign_series(series, affine, series[..., 0])
    est = np.array([motion.rigid_params(m, centre) for m in matrices])
    np.testing.assert_allclose(np.rad2deg(est[:, :3]), np.rad2deg(truth[:, :3]), atol=0.3)
    np.testing.assert_allclose(est[:, 3:], truth[:, 3:], atol=0.3)


def test_realignment_is_reproducible():
    data, affine = _source()
    centre = (affine @ [*(np.array(data.shape) - 1) / 2, 1])[:3]
    vol = move(data, affine, [0.02, 0, -0.01, 1.0, -0.5, 0.3], centre)
    series = np.stack([data, vol], axis=-1)
    a = realign_series(series, affine, data)
    b = realign_series(series, affine, data)
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[0], b[0])
