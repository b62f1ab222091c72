"""Group statistics against numpy on the stacked arrays, and hand-computed values."""

import numpy as np
import pytest

from bids_asl.quant import group, stats
from bids_asl.quant.normative import NormativeModel, RunningMeanSD


def test_running_mean_sd_equals_nan_stack(rng):
    images = [rng.normal(50, 10, (7, 8, 9)) for _ in range(6)]
    for i, img in enumerate(images):  # missing voxels: NaN in some subjects
        img[i, :, 0] = np.nan
    images[0][0, 0, 0] = np.inf
    stats = RunningMeanSD((7, 8, 9))
    for img in images:
        stats.add(img)
    mean, sd, n = stats.result()
    stack = np.stack(images)
    stack[~np.isfinite(stack)] = np.nan
    np.testing.assert_array_equal(n, np.isfinite(stack).sum(axis=0))
    np.testing.assert_allclose(mean, np.nanmean(stack, axis=0), rtol=1e-12)
    np.testing.assert_allclose(sd, np.nanstd(stack, axis=0, ddof=1), rtol=1e-10)


def test_running_mean_sd_merge_and_all_finite_path(rng):
    images = [rng.normal(1000, 3, (5, 6)) for _ in range(7)]  # large offset, small spread
    images[4][2, 3] = np.nan
    whole, part1, part2 = (RunningMeanSD((5, 6)) for _ in range(3))
    for i, img in enumerate(images):
        whole.add(img)
        (part1 if i < 3 else part2).add(img)
    part1.merge(part2)
    part1.merge(RunningMeanSD((5, 6)))  # an empty one changes nothing
    empty = RunningMeanSD((5, 6))
    empty.merge(whole)
    stack = np.stack(images)
    for acc in (whole, part1, empty):
        mean, sd, n = acc.result()
        np.testing.assert_array_equal(n, np.isfinite(stack).sum(axis=0))
        np.testing.assert_allclose(mean, np.nanmean(stack, axis=0), rtol=1e-13)
        np.testing.assert_allclose(sd, np.nanstd(stack, axis=0, ddof=1), rtol=1e-9)


def test_running_mean_sd_small_n_and_offset():
    stats = RunningMeanSD((3,))
    stats.add(np.array([1e6 + 1, 5.0, np.nan]))
    stats.add(np.array([1e6 + 3, np.nan, np.nan]))
    mean, sd, n = stats.result()
    np.testing.assert_array_equal(n, [2, 1, 0])
    np.testing.assert_allclose(mean[:2], [1e6 + 2, 5.0])
    assert np.isnan(mean[2])
    assert sd[0] == pytest.approx(np.sqrt(2.0), rel=1e-9)  # sd of (1, 3) with ddof=1
    assert np.isnan(sd[1]) and np.isnan(sd[2])
    mean2, _, _ = stats.result(min_n=2)
    assert np.isnan(mean2[1]) and mean2[0] == pytest.approx(1e6 + 2)
    with pytest.raises(ValueError, match='shape'):
        stats.add(np.zeros(4))


def test_mean_of_images():
    a = np.array([1.0, np.nan, 3.0, np.nan])
    b = np.array([3.0, 2.0, np.inf, np.nan])
    np.testing.assert_allclose(group.mean_of_images([a, b]), [2.0, 2.0, 3.0, np.nan])


def test_summary_by_hand():
    s = stats.describe([1.0, 2.0, None, float('nan'), 6.0])
    assert s['n'] == 3 and s['mean'] == pytest.approx(3.0) and s['median'] == 2.0
    assert s['sd'] == pytest.approx(np.sqrt(((1 - 3) ** 2 + 1 + 9) / 2))
    assert (s['min'], s['max']) == (1.0, 6.0)
    assert np.isnan(stats.describe([])['mean']) and np.isnan(stats.describe([1.0])['sd'])
    # a float32 array is summarised in float32, as numpy does (the regional tables' bytes)
    x = np.array([0.1, 0.2, 0.7], np.float32)
    assert stats.describe(x)['mean'] == float(x.mean())


def test_robust_z_by_hand():
    z = group.robust_z([1.0, 2.0, 3.0, 4.0, 100.0, None])
    # median 3, |x - 3| = 2 1 0 1 97 -> MAD 1 -> scale 1.4826
    np.testing.assert_allclose(z[:5], np.array([-2, -1, 0, 1, 97]) / 1.4826)
    assert np.isnan(z[5])
    assert np.isnan(group.robust_z([1.0, 1.0, 1.0, 5.0])).all()  # MAD 0
    assert np.isnan(group.robust_z([1.0, 2.0])).all()


def test_running_mean_sd_is_the_intercept_only_normative_model(rng):
    """The group maps' accumulator and the normative model are one accumulator: with an
    intercept only, the model's fitted mean and residual SD are the running mean and SD."""
    images = [rng.normal(50, 10, (4, 5)) for _ in range(7)]
    images[2][0, 0] = np.nan
    running, model = RunningMeanSD((4, 5)), NormativeModel((4, 5), 1)
    for img in images:
        running.add(img)
        model.add(img, [1.0])
    mean, sd, n = running.result()
    np.testing.assert_allclose(model.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(model.sd, sd, rtol=1e-10)
    np.testing.assert_array_equal(model.n, n)


def test_normative_model_merge_equals_one_pass(rng):
    """Two models filled from disjoint subjects (different shifts) merge into the one-pass fit,
    with covariates."""
    y = rng.normal(60, 8, (9, 6))
    y[3, 2] = np.nan
    x = np.column_stack([np.ones(9), rng.normal(0, 1, (9, 2))])
    whole, first, second = (NormativeModel(6, 3) for _ in range(3))
    for i in range(9):
        whole.add(y[i], x[i])
        (first if i < 4 else second).add(y[i], x[i])
    first.merge(second)
    first.fit()
    whole.fit()
    np.testing.assert_allclose(first.beta, whole.beta, rtol=1e-10)
    np.testing.assert_allclose(first.sd, whole.sd, rtol=1e-10)
    np.testing.assert_array_equal(first.n, whole.n)
    with pytest.raises(ValueError):
        first.merge(NormativeModel(6, 2))



def test_the_first_design_column_is_the_intercept():
    with pytest.raises(ValueError, match='intercept'):
        NormativeModel(3, 2).add(np.ones(3), [2.0, 1.0])
