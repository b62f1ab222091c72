"""Single-delay CBF against the consensus formulas written out independently here."""

import numpy as np
import pytest

from bids_asl.quant import cbf


def white_paper_pcasl(dm, m0, pld, tau, t1b, alpha, lam):
    return 6000 * lam * dm * np.exp(pld / t1b) / (2 * alpha * t1b * m0 * (1 - np.exp(-tau / t1b)))


def white_paper_pasl(dm, m0, ti, ti1, t1b, alpha, lam):
    return 6000 * lam * dm * np.exp(ti / t1b) / (2 * alpha * ti1 * m0)


def test_pcasl_hand_value():
    # ΔM/M0 = 0.01, PLD = τ = 1.8 s, T1b 1.65 s, α 0.85, λ 0.9, computed by hand:
    # 6000*0.9*0.01*exp(1.8/1.65) / (2*0.85*1.65*(1-exp(-1.8/1.65))) = 160.76 / 1.8625 = 86.31
    expected = 54.0 * np.exp(1.8 / 1.65) / (2 * 0.85 * 1.65 * (1 - np.exp(-1.8 / 1.65)))
    got = cbf.cbf_pcasl(np.array(1.0), np.array(100.0), pld=1.8, label_duration=1.8,
                        t1_blood=1.65, labeling_efficiency=0.85, partition_coefficient=0.9)
    assert got == pytest.approx(expected, rel=1e-12)
    assert 86.2 < got < 86.4


@pytest.mark.parametrize('pld,tau,t1b,alpha,lam', [
    (1.8, 1.8, 1.65, 0.85, 0.9), (2.0, 1.5, 1.35, 0.68, 0.9), (1.5, 1.8, 2.1, 0.72, 0.98),
])
def test_pcasl_matches_formula(rng, pld, tau, t1b, alpha, lam):
    dm = rng.normal(1.0, 0.3, (7, 8, 9))
    m0 = rng.uniform(50, 100, (7, 8, 9))
    got = cbf.cbf_pcasl(dm, m0, pld=pld, label_duration=tau, t1_blood=t1b,
                        labeling_efficiency=alpha, partition_coefficient=lam)
    np.testing.assert_allclose(got, white_paper_pcasl(dm, m0, pld, tau, t1b, alpha, lam),
                               rtol=1e-12)


def test_pasl_matches_formula(rng):
    dm = rng.normal(1.0, 0.3, (7, 8, 9))
    m0 = rng.uniform(50, 100, (7, 8, 9))
    got = cbf.cbf_pasl(dm, m0, ti=1.8, ti1=0.7, t1_blood=1.65, labeling_efficiency=0.98,
                       partition_coefficient=0.9)
    np.testing.assert_allclose(got, white_paper_pasl(dm, m0, 1.8, 0.7, 1.65, 0.98, 0.9),
                               rtol=1e-12)


def test_timeseries_and_per_voxel_delay(rng):
    dm = rng.normal(1.0, 0.3, (7, 8, 9, 5))
    m0 = rng.uniform(50, 100, (7, 8, 9))
    pld = 1.5 + 0.05 * np.arange(9)[None, None, :] * np.ones((7, 8, 9))
    got = cbf.cbf_pcasl(dm, m0, pld=pld, label_duration=1.8, t1_blood=1.65,
                        labeling_efficiency=0.85)
    expected = white_paper_pcasl(dm, m0[..., None], pld[..., None], 1.8, 1.65, 0.85, 0.9)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_forward_inverse_round_trip(rng):
    truth = rng.uniform(10, 90, (7, 8, 9))
    m0 = rng.uniform(50, 100, (7, 8, 9))
    kw = {'pld': 1.7, 'label_duration': 1.6, 't1_blood': 1.65, 'labeling_efficiency': 0.8}
    np.testing.assert_allclose(cbf.cbf_pcasl(cbf.deltam_pcasl(truth, m0, **kw), m0, **kw), truth,
                               rtol=1e-12)
    kw = {'ti': 1.8, 'ti1': 0.8, 't1_blood': 1.65, 'labeling_efficiency': 0.98}
    np.testing.assert_allclose(cbf.cbf_pasl(cbf.deltam_pasl(truth, m0, **kw), m0, **kw), truth,
                               rtol=1e-12)


@pytest.mark.parametrize('bad', [
    {'t1_blood': 0}, {'labeling_efficiency': -0.1}, {'label_duration': np.nan}, {'pld': 0.0},
])
def test_invalid_parameters_raise(bad):
    kw = {'pld': 1.8, 'label_duration': 1.8, 't1_blood': 1.65, 'labeling_efficiency': 0.85}
    with pytest.raises(ValueError):
        cbf.cbf_pcasl(np.ones(3), np.ones(3), **{**kw, **bad})


def test_nonpositive_m0_raises_instead_of_inf():
    with pytest.raises(ValueError, match='M0'):
        cbf.cbf_pcasl(np.ones(3), np.array([1.0, 0.0, 1.0]), pld=1.8, label_duration=1.8,
                      t1_blood=1.65, labeling_efficiency=0.85)


def test_pasl_ti1_must_be_shorter_than_ti():
    with pytest.raises(ValueError, match='TI1'):
        cbf.cbf_pasl(np.ones(3), np.ones(3), ti=0.7, ti1=0.8, t1_blood=1.65,
                     labeling_efficiency=0.98)


def test_plausibility_warnings():
    assert cbf.plausibility_warnings(np.full(10, 50.0)) == {'MeanCBFInMask': 50.0}
    high = cbf.plausibility_warnings(np.full(10, 3000.0))
    assert 'M0 scaling' in high['Warnings'][0] and high['MeanCBFInMask'] == 3000.0
    assert 'Warnings' in cbf.plausibility_warnings(np.full(10, 1.0))
    assert cbf.plausibility_warnings(np.array([]))['Warnings'] == ['the brain mask is empty']
