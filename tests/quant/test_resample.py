"""Resampling through scipy.ndimage.affine_transform equals the explicit-coordinate
implementation it replaced (tests/reference.py) on random affines, and known answers."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from bids_asl.quant.resample import sample_linear, sample_nearest, voxel_map

from reference import linear_by_coordinates, nearest_by_coordinates, source_coordinates


def _random_affine(rng, oblique=True):
    """Voxel sizes 0.8-5 mm, a random rotation and shear, a flip, a random origin."""
    zooms = rng.uniform(0.8, 5.0, 3)
    matrix = np.diag(zooms * rng.choice([-1, 1], 3))
    if oblique:
        shear = np.eye(3) + np.triu(rng.normal(0, 0.1, (3, 3)), 1)
        matrix = Rotation.random(random_state=rng).as_matrix() @ shear @ matrix
    affine = np.eye(4)
    affine[:3, :3] = matrix
    affine[:3, 3] = rng.uniform(-60, 60, 3)
    return affine


def _pair(rng, oblique=True):
    """Random source and target grids over much the same region: the target's extent is
    0.5-1.0 times the source's shortest side, its centre moved by up to 15 % of it."""
    src_shape = tuple(int(n) for n in rng.integers(6, 20, 3))
    dst_shape = tuple(int(n) for n in rng.integers(6, 20, 3))
    src = _random_affine(rng, oblique)
    extent = float(np.min(np.linalg.norm(src[:3, :3], axis=0) * src_shape))
    dst = _random_affine(rng, oblique)
    zooms = extent * rng.uniform(0.5, 1.0, 3) / np.array(dst_shape)
    dst[:3, :3] = dst[:3, :3] / np.linalg.norm(dst[:3, :3], axis=0) * zooms
    centre_src = src @ [*(np.array(src_shape) - 1) / 2, 1]
    centre_dst = dst @ [*(np.array(dst_shape) - 1) / 2, 1]
    dst[:3, 3] += (centre_src - centre_dst)[:3] + rng.uniform(-0.15, 0.15, 3) * extent
    return src_shape, src, dst_shape, dst


def _no_ties(src, dst_shape, dst):
    """Target voxels whose source coordinate is not within 1e-6 of a half-way point (where
    the two implementations may round differently: half-to-even vs half-up)."""
    frac = np.abs(np.mod(source_coordinates(src, dst_shape, dst), 1.0) - 0.5)
    return np.all(frac > 1e-6, axis=0)


@pytest.mark.parametrize('seed', range(12))
def test_linear_equals_the_coordinate_implementation_on_random_affines(seed):
    rng = np.random.default_rng(seed)
    src_shape, src, dst_shape, dst = _pair(rng, oblique=seed % 3 != 0)
    data = rng.normal(50, 20, src_shape).astype(np.float32 if seed % 2 else np.float64)
    got = sample_linear(data, src, dst_shape, dst, fill=-7.0)
    want = linear_by_coordinates(data, src, dst_shape, dst, fill=-7.0)
    assert got.dtype == np.float64 and got.shape == dst_shape
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize('seed', range(12))
@pytest.mark.parametrize('trailing', [(), (3,), (2, 2)])
@pytest.mark.parametrize('memory', ['C', 'F'])
def test_nearest_equals_the_coordinate_implementation_on_random_affines(seed, trailing,
                                                                         memory):
    rng = np.random.default_rng(100 + seed)
    src_shape, src, dst_shape, dst = _pair(rng, oblique=seed % 3 != 0)
    labels = rng.integers(0, 120, src_shape + trailing).astype(np.uint16)
    labels = np.asfortranarray(labels) if memory == 'F' else np.ascontiguousarray(labels)
    got = sample_nearest(labels, src, dst_shape, dst, fill=999)
    want = nearest_by_coordinates(labels, src, dst_shape, dst, fill=999)
    assert got.dtype == labels.dtype and got.shape == want.shape == dst_shape + trailing
    clear = _no_ties(src, dst_shape, dst)
    assert clear.mean() > 0.999
    np.testing.assert_array_equal(got[clear], want[clear])


def test_the_random_grids_compare_inside_and_outside_the_source():
    """The random pairs above put most target voxels inside the source grid and, in most
    pairs, some outside it (where ``fill`` must match too)."""
    outside = []
    for seed in range(12):
        for rng, oblique in ((np.random.default_rng(seed), seed % 3 != 0),
                             (np.random.default_rng(100 + seed), seed % 3 != 0)):
            src_shape, src, dst_shape, dst = _pair(rng, oblique)
            got = sample_linear(np.ones(src_shape), src, dst_shape, dst, fill=-7.0)
            outside.append(float(np.mean(got == -7.0)))
    assert max(outside) < 0.6 and sum(f > 0 for f in outside) >= 12, outside


def test_nearest_of_a_probabilistic_atlas_keeps_each_volume():
    """A 4-D map: volume k of the result is the nearest-neighbour sample of volume k."""
    rng = np.random.default_rng(5)
    src_shape, src, dst_shape, dst = _pair(rng)
    atlas = np.asfortranarray(rng.integers(0, 100, (*src_shape, 6)).astype(np.uint8))
    got = sample_nearest(atlas, src, dst_shape, dst)
    for k in range(6):
        np.testing.assert_array_equal(got[..., k], sample_nearest(
            np.ascontiguousarray(atlas[..., k]), src, dst_shape, dst))


def test_linear_reproduces_a_linear_ramp_exactly():
    """Trilinear interpolation is exact on a linear function: the value at each target voxel
    is the ramp evaluated at its source coordinate, written out here."""
    rng = np.random.default_rng(3)
    src = _random_affine(rng)
    shape = (12, 14, 10)
    ijk = np.indices(shape, dtype=np.float64)
    a, c = np.array([1.5, -2.0, 0.75]), 4.0
    ramp = np.tensordot(a, ijk, axes=1) + c
    dst = src.copy()
    dst[:3, :3] = src[:3, :3] * 0.5  # half the voxel size, a quarter voxel in
    dst[:3, 3] = (src @ [0.25, 0.25, 0.25, 1])[:3]
    got = sample_linear(ramp, src, (20, 24, 16), dst)
    # target voxel (i, j, k) is at source voxel (i, j, k) / 2 + 1/4 (inside the source grid)
    expected = np.tensordot(a, np.indices((20, 24, 16), dtype=np.float64) / 2 + 0.25,
                            axes=1) + c
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)


def test_nearest_on_a_shifted_grid_is_a_slice_and_fills_outside():
    data = np.arange(4 * 5 * 6, dtype=np.int32).reshape(4, 5, 6)
    dst = np.eye(4)
    dst[:3, 3] = [1.2, -0.7, 2.0]  # one voxel on, one back (rounded), two on
    got = sample_nearest(data, np.eye(4), (4, 5, 6), dst, fill=-1)
    np.testing.assert_array_equal(got[:3, 1:, :4], data[1:, :4, 2:])
    assert (got[3] == -1).all() and (got[:, 0] == -1).all() and (got[..., 4:] == -1).all()
    # within half a voxel of the edge is still inside
    dst[:3, 3] = [-0.49, 0.0, 0.0]
    np.testing.assert_array_equal(sample_nearest(data, np.eye(4), (4, 5, 6), dst), data)


def test_voxel_map_composes_the_affines():
    rng = np.random.default_rng(9)
    src, dst = _random_affine(rng), _random_affine(rng)
    point = np.array([3.0, -1.0, 7.0, 1.0])
    np.testing.assert_allclose(src @ voxel_map(src, dst) @ point, dst @ point, atol=1e-9)


ATLASES = ('AAL', 'HarvardOxford', 'DesikanKilliany', 'Destrieux', 'Juelich', 'AICHA',
           'MarsAtlas', 'Neuromorphometrics', 'TalairachBA', 'TalairachGyrus')


def test_every_atlas_is_listed_here():
    from bids_asl.io import templates  # noqa: PLC0415

    assert set(ATLASES) == set(templates.ATLASES)


@pytest.mark.parametrize('name', [n if n == 'AAL' else pytest.param(n, marks=pytest.mark.slow)
                                  for n in ATLASES])
def test_atlases_on_the_template_grid_are_unchanged(name):
    """What the app resamples with nearest neighbour: each shipped atlas onto the 2 mm template
    grid, identical to the old implementation (these grids have no half-way ties)."""
    from bids_asl.io import templates  # noqa: PLC0415 - io is above quant; only the test

    data, affine = templates.load_atlas(name)
    shape, grid = templates.template_grid()
    assert _no_ties(affine, shape, grid).all()
    np.testing.assert_array_equal(sample_nearest(data, affine, shape, grid),
                                  nearest_by_coordinates(data, affine, shape, grid))


def test_template_on_its_2mm_grid_is_unchanged():
    from bids_asl.io import templates  # noqa: PLC0415

    shape, grid = templates.template_grid()
    template, affine = templates.load_template('gm')
    np.testing.assert_allclose(sample_linear(template, affine, shape, grid),
                               linear_by_coordinates(template, affine, shape, grid),
                               rtol=0, atol=1e-12)
