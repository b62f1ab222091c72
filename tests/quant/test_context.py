import numpy as np
import pytest

from bids_asl.quant import context


def test_index_and_pairs_control_first():
    types = ['m0scan', 'control', 'label', 'control', 'label', 'noRF']
    idx = context.index_volume_types(types)
    assert idx.m0scan == (0,) and idx.norf == (5,) and idx.n_volumes == 6
    assert context.pair_control_label(idx) == [(1, 2), (3, 4)]


def test_label_first_gives_same_sign(rng):
    base = rng.uniform(50, 100, (3, 4, 5))
    dm = rng.uniform(0.5, 1.5, (3, 4, 5))
    cl = np.stack([base, base - dm] * 3, axis=-1)
    lc = np.stack([base - dm, base] * 3, axis=-1)
    out_cl = context.difference_series(cl, ['control', 'label'] * 3)
    out_lc = context.difference_series(lc, ['label', 'control'] * 3)
    for out in (out_cl, out_lc):
        assert out.shape == (3, 4, 5, 3)
        np.testing.assert_allclose(out, np.repeat(dm[..., None], 3, axis=-1))


def test_blocked_order_and_deltam_volumes(rng):
    data = rng.normal(size=(2, 3, 4, 5))
    types = ['control', 'control', 'label', 'label', 'deltam']
    out = context.difference_series(data, types)
    np.testing.assert_allclose(out[..., 0], data[..., 0] - data[..., 2])
    np.testing.assert_allclose(out[..., 1], data[..., 1] - data[..., 3])
    np.testing.assert_allclose(out[..., 2], data[..., 4])
    assert context.difference_sources(types) == [(0, 2), (1, 3), (4,)]


def test_unequal_counts_and_unknown_types():
    with pytest.raises(ValueError, match='2 control and 1 label'):
        context.pair_control_label(context.index_volume_types(['control', 'label', 'control']))
    with pytest.raises(ValueError, match="'tag'"):
        context.index_volume_types(['control', 'tag'])
    with pytest.raises(ValueError, match='no control/label'):
        context.difference_series(np.zeros((2, 2, 2, 1)), ['m0scan'])


def test_mean_of_type(rng):
    data = rng.normal(size=(2, 3, 4, 4))
    got = context.mean_of_type(data, ['control', 'label', 'control', 'label'], 'control')
    np.testing.assert_allclose(got, (data[..., 0] + data[..., 2]) / 2)
