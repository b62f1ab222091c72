"""Regions, hemispheres, asymmetry, tissue tables, PVC and resampling against direct maths."""

import numpy as np
import pytest

from bids_asl.quant import pvc, regions
from bids_asl.quant.resample import mirror_x, sample_linear, sample_nearest


@pytest.mark.parametrize('label,expected', [
    ('Precentral_L', 'Precentral'), ('Frontal_Sup_2_R', 'Frontal_Sup_2'),
    ('Left_Frontal_Pole', 'Frontal_Pole'), ('Right_Insular_Cortex', 'Insular_Cortex'),
    ('Left-Cerebral-White-Matter', 'Cerebral-White-Matter'), ('ctx-lh-bankssts', 'ctx-bankssts'),
    ('ctx-rh-bankssts', 'ctx-bankssts'), ('G_Frontal_Sup-1-L', 'G_Frontal_Sup-1'),
    ('Brain-Stem', 'Brain-Stem'), ('Vermis_1_2', 'Vermis_1_2'),
])
def test_region_name_strips_the_hemisphere(label, expected):
    assert regions.region_name(label) == expected


def test_hemisphere_map_follows_world_x():
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[0, 3] = -4.0  # x = -4, -2, 0, 2, 4
    hemi = regions.hemisphere_map((5, 2, 2), affine)
    assert hemi[:, 0, 0].tolist() == [-1, -1, 0, 1, 1]


def test_asymmetry_index_formula():
    assert regions.asymmetry_index(60.0, 40.0) == pytest.approx(2 * 20 / 100)
    assert np.isnan(regions.asymmetry_index(np.nan, 40.0))
    assert np.isnan(regions.asymmetry_index(0.0, 0.0))


def test_regional_table_equals_direct_computation(rng):
    shape = (10, 8, 6)
    values = rng.normal(50, 10, shape)
    values[0, 0, 0] = np.nan  # non-finite voxels are ignored
    labels = rng.integers(0, 5, shape)
    names = {1: 'A_L', 2: 'A_R', 3: 'Left_B', 4: 'C'}
    hemi = np.where(np.arange(shape[0]) < 5, -1, 1)[:, None, None] * np.ones(shape, int)
    hemi[5] = 0
    valid = rng.random(shape) > 0.2
    rows = {r.region: r for r in regions.regional_table(values, labels, names, hemi, valid)}
    assert list(rows) == ['A', 'B', 'C']
    ok = valid & np.isfinite(values)
    for region, idx in (('A', [1, 2]), ('B', [3]), ('C', [4])):
        sel = ok & np.isin(labels, idx)
        row = rows[region]
        assert row.n_voxels == sel.sum()
        assert row.mean == pytest.approx(values[sel].mean())
        assert row.median == pytest.approx(np.median(values[sel]))
        assert row.sd == pytest.approx(values[sel].std(ddof=1))
        left, right = values[sel & (hemi < 0)], values[sel & (hemi > 0)]
        assert (row.n_left, row.n_right) == (left.size, right.size)
        assert row.mean_left == pytest.approx(left.mean())
        assert row.sd_left == pytest.approx(left.std(ddof=1))
        assert row.sd_right == pytest.approx(right.std(ddof=1))
        assert row.asymmetry_index == pytest.approx(
            2 * (left.mean() - right.mean()) / (left.mean() + right.mean()))


def test_regional_table_keeps_empty_regions():
    rows = regions.regional_table(np.ones((2, 2, 2)), np.zeros((2, 2, 2), int), {7: 'X'},
                                  np.zeros((2, 2, 2), int), np.ones((2, 2, 2), bool))
    assert rows[0].n_voxels == 0 and np.isnan(rows[0].mean)


def test_tissue_table_thresholds(rng):
    shape = (6, 6, 6)
    values = rng.normal(40, 5, shape)
    gm, wm = rng.random(shape), rng.random(shape)
    brain = rng.random(shape) > 0.1
    rows = {r.tissue: r for r in regions.tissue_table(values, gm, wm, brain, 0.7, 0.8)}
    assert rows['GM'].mean == pytest.approx(values[brain & (gm >= 0.7)].mean())
    assert rows['WM'].n_voxels == (brain & (wm >= 0.8)).sum()
    assert rows['brain'].sd == pytest.approx(values[brain].std(ddof=1))


def test_dice():
    a = np.zeros(10, bool)
    b = np.zeros(10, bool)
    a[:4], b[2:6] = True, True
    assert regions.dice(a, b) == pytest.approx(2 * 2 / 8)


def test_maxprob_labels_threshold():
    prob = np.zeros((2, 1, 1, 3))
    prob[0, 0, 0] = [10, 60, 30]
    prob[1, 0, 0] = [20, 20, 24]
    assert regions.maxprob_labels(prob, 25).ravel().tolist() == [2, 0]


def test_pvc_recovers_known_pure_tissue_values(rng):
    shape = (24, 24, 4)
    gm = rng.uniform(0, 1, shape)
    wm = (1 - gm) * rng.uniform(0.6, 1.0, shape)
    cbf = 62.0 * gm + 21.0 * wm
    y_gm, y_wm = pvc.pvc_linear_regression(cbf, gm, wm, np.ones(shape, bool))
    assert np.nanmax(np.abs(y_gm - 62.0)) < 1e-9
    assert np.nanmax(np.abs(y_wm - 21.0)) < 1e-9
    # with noise: unbiased on average, and better than the uncorrected GM-voxel mean
    noisy = cbf + rng.normal(0, 3, shape)
    y_gm, _ = pvc.pvc_linear_regression(noisy, gm, wm, np.ones(shape, bool))
    assert np.nanmean(y_gm) == pytest.approx(62.0, abs=1.0)
    assert abs(noisy[gm > 0.5].mean() - 62.0) > 5


def test_pvc_single_tissue_neighbourhood_and_low_fraction():
    shape = (9, 9, 1)
    gm, wm = np.ones(shape), np.zeros(shape)
    y_gm, y_wm = pvc.pvc_linear_regression(55.0 * gm, gm, wm, np.ones(shape, bool))
    assert np.allclose(y_gm, 55.0) and np.all(np.isnan(y_wm))


def test_sample_nearest_and_linear_match_a_known_shift():
    data = np.arange(4 * 5 * 6, dtype=float).reshape(4, 5, 6)
    src = np.eye(4)
    dst = np.eye(4)
    dst[:3, 3] = (1, 0, 2)  # target voxel (i,j,k) is source voxel (i+1, j, k+2)
    out = sample_nearest(data, src, (3, 5, 4), dst)
    assert np.array_equal(out, data[1:4, :, 2:6])
    dst[0, 3] = 0.5
    lin = sample_linear(data, src, (3, 5, 4), dst)
    assert np.allclose(lin, (data[0:3, :, 2:6] + data[1:4, :, 2:6]) / 2)


def test_sample_nearest_carries_trailing_axes():
    data = np.arange(2 * 2 * 2 * 3).reshape(2, 2, 2, 3)
    out = sample_nearest(data, np.eye(4), (2, 2, 2), np.eye(4))
    assert np.array_equal(out, data)


def test_mirror_x_on_the_template_grid():
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = (-98, -134, -72)
    data = np.zeros((99, 2, 2))
    data[10] = 1  # x = -78
    mirrored = mirror_x(data, affine)
    assert mirrored[88].all() and mirrored.sum() == data.sum()  # x = +78
    with pytest.raises(ValueError):
        mirror_x(np.zeros((98, 2, 2)), affine)


def test_pvc_refuses_an_empty_kernel():
    with pytest.raises(ValueError):
        pvc.pvc_linear_regression(np.ones((3, 3, 3)), np.ones((3, 3, 3)), np.zeros((3, 3, 3)),
                                  np.ones((3, 3, 3), bool), kernel=(0, 0, 0))


def test_asymmetry_map_and_clusters_find_a_known_deficit():
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = (-98, -134, -72)
    cbf = np.full((99, 117, 95), 50.0)
    cbf[20:25, 50:55, 40:44] *= 0.7  # x = -58..-50 mm: a 5x5x4 block on the left
    ai = regions.asymmetry_map(cbf, np.ones(cbf.shape, bool), lambda d: mirror_x(d, affine))
    assert np.nanmin(ai) == pytest.approx(2 * (0.7 - 1) / 1.7)
    assert np.allclose(ai, -mirror_x(ai, affine))
    found = regions.clusters(ai, affine, 0.2, where=regions.hemisphere_map(ai.shape, affine) < 0)
    assert len(found) == 1
    c = found[0]
    assert (c.n_voxels, c.sign) == (100, 'lower') and c.volume_mm3 == pytest.approx(800.0)
    assert c.centre_mm == pytest.approx((-54.0, -30.0, 11.0))
    assert regions.clusters(ai, affine, 0.2, min_voxels=101) == []
