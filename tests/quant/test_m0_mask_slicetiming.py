import numpy as np
import pytest

from bids_asl import constants
from bids_asl.quant import m0, mask, slicetiming


def test_saturation_recovery_formula():
    assert m0.saturation_recovery(2.0, 1.3) == pytest.approx(1 - np.exp(-2.0 / 1.3), rel=1e-14)
    with pytest.raises(ValueError, match='> 0'):
        m0.saturation_recovery(0.0, 1.3)  # RepetitionTimePreparation = 0 is an error, not zeros


def test_m0_from_images_mean_tr_and_scale(rng):
    stack = rng.uniform(40, 60, (3, 4, 5, 3))
    got, factor = m0.m0_from_images(stack, tr=3.0, t1_tissue=1.3, scale=10.0)
    assert factor == pytest.approx(1 - np.exp(-3.0 / 1.3))
    np.testing.assert_allclose(got, stack.mean(-1) * 10.0 / (1 - np.exp(-3.0 / 1.3)))


def test_m0_from_estimate():
    np.testing.assert_array_equal(m0.m0_from_estimate(80.0, (2, 3, 4), scale=2.0),
                                  np.full((2, 3, 4), 160.0))
    with pytest.raises(ValueError):
        m0.m0_from_estimate(0.0, (2, 2, 2))


def test_otsu_separates_two_populations(rng):
    values = np.concatenate([rng.normal(10, 1, 500), rng.normal(50, 2, 500)])
    thr = mask.otsu_threshold(values)
    assert 15 < thr < 45


def test_brain_mask_finds_the_ball_and_fills_holes(rng):
    grid = np.indices((30, 32, 20)).astype(float)
    r = np.sqrt(((grid[0] - 15) / 10) ** 2 + ((grid[1] - 16) / 11) ** 2
                + ((grid[2] - 10) / 7) ** 2)
    ref = np.where(r <= 1, 70.0, 0.0) + rng.normal(0, 2, r.shape).clip(0)
    ref[15, 16, 10] = 0.0  # a hole inside
    ref[0, 0, 0] = 80.0  # an isolated bright voxel outside
    got = mask.brain_mask(ref)
    truth = r <= 1
    dice = 2 * (got & truth).sum() / (got.sum() + truth.sum())
    assert dice > 0.98
    assert not got[0, 0, 0]


def test_brain_mask_refuses_empty():
    with pytest.raises(ValueError, match='no positive'):
        mask.brain_mask(np.zeros((4, 4, 4)))


@pytest.mark.parametrize('direction,axis', [('k', 2), ('j', 1), ('i', 0)])
def test_slice_time_map_axes(direction, axis):
    shape = (4, 5, 6)
    times = np.arange(shape[axis]) * 0.05
    got = slicetiming.slice_time_map(shape, times, direction)
    idx = [0, 0, 0]
    for s in range(shape[axis]):
        idx[axis] = s
        assert got[tuple(idx)] == pytest.approx(times[s])
    assert got.shape == shape


def test_slice_time_map_reversed_direction():
    got = slicetiming.slice_time_map((2, 2, 3), [0.0, 0.1, 0.2], 'k-')
    np.testing.assert_allclose(got[0, 0], [0.2, 0.1, 0.0])
    with pytest.raises(ValueError, match='3 entries'):
        slicetiming.slice_time_map((2, 2, 4), [0.0, 0.1, 0.2], 'k')


def test_blood_t1_rule():
    assert constants.t1_blood_for_field(3)[0] == 1.65
    assert constants.t1_blood_for_field(2.89)[0] == 1.65  # Siemens "3 T"
    assert constants.t1_blood_for_field(1.494)[0] == 1.35
    assert constants.t1_blood_for_field(7)[0] == 2.1
    # halfway between 3 T and 7 T: linear
    assert constants.t1_blood_for_field(5)[0] == pytest.approx((1.65 + 2.1) / 2)
    # below 1.5 T: extrapolated on the 1.5-3 T line
    assert constants.t1_blood_for_field(1.0)[0] == pytest.approx(1.35 - 0.5 * 0.3 / 1.5)
    with pytest.raises(ValueError, match='--t1-blood'):
        constants.t1_blood_for_field(0.2)


def test_blood_t1_from_hematocrit():
    assert constants.t1_blood_from_hematocrit(0.42) == pytest.approx(1 / (0.52 * 0.42 + 0.38))
    with pytest.raises(ValueError):
        constants.t1_blood_from_hematocrit(0.9)


def test_brain_mask_keeps_both_tissues_on_zero_background():
    # Two tissue intensities close together on an exact-zero background: the threshold must
    # separate brain from background, not grey from white matter.
    ref = np.zeros((20, 20, 10))
    ref[4:16, 4:16, 2:8] = 72.6
    ref[7:13, 7:13, 4:6] = 74.5
    assert mask.brain_mask(ref).sum() == 12 * 12 * 6
