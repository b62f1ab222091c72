"""The brain-shaped phantom: its truth is what the formulas typed here give on its images."""

import numpy as np
import pytest

from bids_asl.synthetic import Variant
from bids_asl.synthetic_brain import (
    Acquisition,
    Geometry,
    bs_residual,
    default_tissues,
    sample_fields,
    simulate_brain,
    smooth_motion,
)

SMALL = Geometry(shape=(40, 48, 20), zooms=(4.5, 4.5, 7.0))


def test_single_delay_truth_is_the_white_paper_formula_on_the_images():
    v = Variant(label='x', n_pairs=2, m0_tr=6.0)
    sim = simulate_brain(v, Acquisition(geometry=SMALL))
    series, types = sim['series'], np.array(sim['types'])
    dm = (series[..., types == 'control'] - series[..., types == 'label']).mean(axis=-1)
    tissues = default_tissues(3.0)
    frac = sim['fractions']
    m0 = sum(frac[k] * tissues[k].m0 for k in frac)  # fully relaxed M0 of the mixture
    t1b, alpha, lam, pld, tau = 1.65, 0.85, 0.9, v.pld, v.label_duration
    brain = m0 > 1.0
    cbf = 6000 * lam * dm * np.exp(pld / t1b) / (2 * alpha * t1b * np.where(brain, m0, 1)
                                                 * (1 - np.exp(-tau / t1b)))
    np.testing.assert_allclose(cbf[brain], sim['cbf'][brain], rtol=1e-6, atol=1e-6)
    pure = frac['wm'] > 0.99  # a 1 % admixture of GM moves CBF by < 0.5
    assert pure.sum() > 10 and np.allclose(sim['cbf'][pure], 20.0, atol=0.5)
    # the M0 image is the saturation-recovery of each tissue with the M0 TR
    expected = sum(frac[k] * tissues[k].m0 * (1 - np.exp(-6.0 / tissues[k].t1)) for k in frac)
    np.testing.assert_allclose(sim['m0'], expected, rtol=1e-6)
    # a brain, not a blob: GM and WM both present in quantity, CSF in the ventricles
    assert (frac['gm'] > 0.5).sum() > 2000 and (frac['wm'] > 0.5).sum() > 1500


def test_motion_moves_the_head_by_the_given_rigid_transform():
    from bids_asl.quant.motion import rigid_matrix

    # a pure translation of one voxel along x equals the rest image shifted by one voxel
    move = np.array([0, 0, 0, 4.5, 0, 0])
    rest = sample_fields(SMALL, None, oversample=1)
    moved = sample_fields(SMALL, rigid_matrix(move, SMALL.centre), oversample=1)
    np.testing.assert_allclose(moved['gm'][1:], rest['gm'][:-1], atol=1e-5)


def test_smooth_motion_has_the_requested_jump():
    m = smooth_motion(20, drift_mm=0.0, drift_deg=0.0, jump_at=10, jump_mm=3.0, jump_deg=2.0)
    assert np.allclose(m[:10], 0)
    assert np.linalg.norm(m[10, 3:]) == pytest.approx(3.0)
    assert np.rad2deg(np.linalg.norm(m[10, :3])) == pytest.approx(2.0)


def test_background_suppression_residual_matches_bloch_by_hand():
    t1, t_read = 1.3, 3.0
    # saturation at 0, one inversion at 1.0 s: Mz(1) = 1 - e^-1/T1, inverted, then recovery
    m1 = 1 - np.exp(-1.0 / t1)
    expected = 1 - (1 + m1) * np.exp(-(t_read - 1.0) / t1)
    assert bs_residual(t1, t_read, [1.0]) == pytest.approx(expected)
    assert bs_residual(t1, t_read, []) == pytest.approx(1 - np.exp(-t_read / t1))
