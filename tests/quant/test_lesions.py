"""Lesion tables against a brute-force computation of distances and means."""

import numpy as np
import pytest

from bids_asl.quant.lesions import label_lesions, lesion_table


def _brute_distance(points_mm, target_mm):
    """Distance from each point to the nearest target point (all pairs)."""
    d = np.linalg.norm(points_mm[:, None, :] - target_mm[None, :, :], axis=2)
    return d.min(axis=1)


def test_lesion_table_equals_brute_force(rng):
    shape = (16, 14, 6)
    voxel = np.array([1.5, 2.0, 3.0])
    cbf = rng.normal(40, 8, shape)
    lesion = np.zeros(shape, bool)
    lesion[3:6, 3:6, 2:4] = True          # 18 voxels: lesion 1 (largest)
    lesion[11:13, 9:11, 3] = True         # 4 voxels: lesion 2
    brain = np.ones(shape, bool)
    brain[0] = False
    wm = rng.random(shape)
    rows = lesion_table(cbf, lesion, brain, wm, voxel, rings=((0, 2), (2, 4)),
                        nawm_bands=((0, 5), (5, np.inf)), wm_threshold=0.6)
    by = {(r.kind, r.lesion, r.band_mm): r for r in rows}
    ijk = np.argwhere(np.ones(shape, bool))
    mm = ijk * voxel
    labels, n = label_lesions(lesion)
    assert n == 2 and (labels == 1).sum() == 18 and (labels == 2).sum() == 4
    for k in (1, 2):
        this = (labels == k).ravel()
        row = by[('lesion', str(k), 'n/a')]
        assert row.n_voxels == this.sum()
        assert row.volume_mm3 == pytest.approx(this.sum() * voxel.prod())
        assert row.mean == pytest.approx(cbf.ravel()[this].mean())
        d = _brute_distance(mm, mm[this])
        for lo, hi in ((0, 2), (2, 4)):
            sel = brain.ravel() & ~lesion.ravel() & (d > lo) & (d <= hi)
            ring = by[('ring', str(k), f'{lo}-{hi}')]
            assert ring.n_voxels == sel.sum()
            assert ring.mean == pytest.approx(cbf.ravel()[sel].mean())
    d = _brute_distance(mm, mm[lesion.ravel()])
    nawm = brain.ravel() & ~lesion.ravel() & (wm.ravel() >= 0.6)
    near = by[('nawm', 'all', '0-5')]
    assert near.n_voxels == (nawm & (d <= 5)).sum()
    assert near.sd == pytest.approx(cbf.ravel()[nawm & (d <= 5)].std(ddof=1))
    assert by[('nawm', 'all', '>5')].n_voxels == (nawm & (d > 5)).sum()
    assert by[('nawm', 'all', 'all')].mean == pytest.approx(cbf.ravel()[nawm].mean())
    assert by[('all_lesions', 'all', 'n/a')].n_voxels == 22


def test_no_lesion_gives_only_nawm():
    rows = lesion_table(np.ones((4, 4, 4)), np.zeros((4, 4, 4)), np.ones((4, 4, 4), bool),
                        np.ones((4, 4, 4)), (1, 1, 1))
    assert [(r.kind, r.band_mm) for r in rows] == [('all_lesions', 'n/a'), ('nawm', 'all')]
    assert rows[0].n_voxels == 0 and np.isnan(rows[0].mean)
