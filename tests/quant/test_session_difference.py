"""Session differences against the formulas computed here."""

import numpy as np
import pytest

from bids_asl.quant import sessions


def test_standard_error_is_sd_over_root_n(rng):
    series = rng.normal(50, 10, (3, 4, 2, 9))
    se = sessions.standard_error(series)
    assert se == pytest.approx(series.std(axis=-1, ddof=1) / 3.0)
    assert np.isnan(sessions.standard_error(series[..., :1])).all()


def test_difference_recovers_a_global_and_a_focal_change(rng):
    b = rng.uniform(20, 70, (10, 10, 4))
    focal = np.zeros(b.shape, bool)
    focal[2:4, 2:4, 1] = True
    a = b * 1.2 * np.where(focal, 0.7, 1.0)  # +20 % everywhere, then −30 % in the focus
    valid = np.ones(b.shape, bool)
    out = sessions.difference(a, b, valid)
    assert out['difference'] == pytest.approx(a - b)
    assert out['percent'][~focal] == pytest.approx(20.0)
    assert out['percent'][focal] == pytest.approx(100 * (1.2 * 0.7 - 1))
    norm = sessions.difference(a, b, valid, normalise=True)
    expected_scale = b.mean() / a.mean()
    assert norm['scale'] == pytest.approx(expected_scale)
    assert norm['percent'] == pytest.approx(100 * (a * expected_scale - b) / b)
    # with the focus small, normalisation brings the rest near 0 and the focus near −30 %
    assert abs(np.median(norm['percent'][~focal])) < 1.5
    assert np.median(norm['percent'][focal]) == pytest.approx(-30, abs=1.5)


def test_z_uses_both_standard_errors():
    a, b = np.full((2, 2, 2), 60.0), np.full((2, 2, 2), 50.0)
    se_a, se_b = np.full(a.shape, 3.0), np.full(a.shape, 4.0)
    out = sessions.difference(a, b, np.ones(a.shape, bool), se_a=se_a, se_b=se_b)
    assert out['z'] == pytest.approx(10.0 / 5.0)
    se_b[0, 0, 0] = np.nan
    out = sessions.difference(a, b, np.ones(a.shape, bool), se_a=se_a, se_b=se_b)
    assert np.isnan(out['z'][0, 0, 0])


def test_percent_is_undefined_where_the_reference_is_tiny():
    a, b = np.full((1, 1, 2), 10.0), np.array([[[1.0, 20.0]]])
    out = sessions.difference(a, b, np.ones(a.shape, bool))
    assert np.isnan(out['percent'][0, 0, 0]) and out['percent'][0, 0, 1] == pytest.approx(-50)
