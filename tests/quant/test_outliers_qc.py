"""SCORE/SCRUB on series with injected outliers, and every QC metric against a direct
computation written here."""

import numpy as np
import pytest
from scipy import ndimage

from bids_asl.quant import outliers, qc


def _tissues(shape=(20, 22, 12)):
    """Smooth GM/WM/CSF probability maps of a layered ball."""
    grid = np.indices(shape).astype(float)
    c = (np.array(shape) - 1) / 2
    r = np.sqrt(sum(((grid[i] - c[i]) / (shape[i] * 0.45)) ** 2 for i in range(3)))
    csf = np.clip((r - 0.85) / 0.1, 0, 1) * (r <= 1)
    wm = np.clip((0.55 - r) / 0.1, 0, 1)
    gm = np.clip(1 - csf - wm, 0, 1) * (r <= 1)
    return gm, wm, csf, r <= 1


def _series(rng, n_vol=12, noise=5.0):
    gm, wm, csf, mask = _tissues()
    clean = 60 * gm + 20 * wm
    vols = clean[..., None] + rng.normal(0, noise, mask.shape + (n_vol,))
    return gm, wm, csf, mask, clean, vols


def test_pooled_variance_by_hand():
    values = np.array([1.0, 3.0, 10.0, 14.0, 18.0])
    classes = [np.array([1, 1, 0, 0, 0], bool), np.array([0, 0, 1, 1, 1], bool)]
    # (1*var([1,3]) + 2*var([10,14,18])) / 3 = (1*2 + 2*16) / 3
    assert outliers.pooled_variance(values, classes) == pytest.approx((2 + 32) / 3)


def test_score_rejects_injected_outliers(rng):
    gm, wm, csf, mask, clean, vols = _series(rng)
    vols[..., 3] += 80 * (np.indices(mask.shape)[0] < 8)  # a motion-like bright band
    vols[..., 8] *= 1.8  # a global spike
    cbf = vols[mask]
    keep = outliers.score(cbf, gm[mask], wm[mask], csf[mask])
    assert not keep[3] and not keep[8]
    assert keep.sum() >= 8
    est = cbf[:, keep].mean(axis=1)
    gm_vox = gm[mask] >= 0.7
    assert est[gm_vox].mean() == pytest.approx(clean[mask][gm_vox].mean(), rel=0.02)
    plain = cbf.mean(axis=1)
    assert abs(plain[gm_vox].mean() / clean[mask][gm_vox].mean() - 1) > 0.05  # it mattered


def test_score_keeps_a_clean_series(rng):
    gm, wm, csf, mask, _, vols = _series(rng)
    keep = outliers.score(vols[mask], gm[mask], wm[mask], csf[mask])
    assert keep.sum() >= 10


def test_scrub_recovers_the_clean_mean(rng):
    gm, wm, csf, mask, clean, vols = _series(rng, n_vol=16)
    vols[..., 2] += 150 * (np.indices(mask.shape)[1] > 14)
    vols[..., 11] += rng.normal(0, 60, mask.shape)
    est, info = outliers.scrub(vols[mask], gm[mask], wm[mask], csf[mask])
    for tissue in (gm[mask] >= 0.7, wm[mask] >= 0.7):
        assert est[tissue].mean() == pytest.approx(clean[mask][tissue].mean(), rel=0.02)
    assert info['StructuralPrior']['GM'] == pytest.approx(60, rel=0.1)
    # without tissue maps: plain Huber mean, still robust
    est2, _ = outliers.scrub(vols[mask])
    gmv = gm[mask] >= 0.7
    assert est2[gmv].mean() == pytest.approx(clean[mask][gmv].mean(), rel=0.02)


def test_tissue_metrics_by_hand(rng):
    gm, wm, csf, mask, clean, vols = _series(rng)
    cbf = vols.mean(-1)
    m = qc.tissue_metrics(cbf, mask, gm, wm)
    g, w = (gm >= 0.7) & mask, (wm >= 0.7) & mask
    assert m['cbf_mean_gm'] == pytest.approx(np.mean(cbf[g]))
    assert m['cbf_mean_wm'] == pytest.approx(np.mean(cbf[w]))
    assert m['gm_wm_ratio'] == pytest.approx(np.mean(cbf[g]) / np.mean(cbf[w]))
    assert m['scov_gm'] == pytest.approx(np.std(cbf[g], ddof=1) / np.mean(cbf[g]))
    assert m['negative_cbf_fraction_gm'] == pytest.approx(np.sum(cbf[g] < 0) / g.sum())
    assert m['cbf_mean_brain'] == pytest.approx(cbf[mask].sum() / mask.sum())
    nomaps = qc.tissue_metrics(cbf, mask)
    assert np.isnan(nomaps['cbf_mean_gm']) and nomaps['cbf_mean_brain'] == m['cbf_mean_brain']


def test_deltam_tsnr_by_hand(rng):
    mask = np.ones((3, 4, 5), bool)
    d = rng.normal(2.0, 0.5, (3, 4, 5, 10))
    expected = np.median(d.mean(-1) / d.std(-1, ddof=1))
    assert qc.deltam_tsnr(d, mask) == pytest.approx(expected)
    assert np.isnan(qc.deltam_tsnr(d[..., :1], mask))


def test_qei_components_by_hand(rng):
    gm, wm, csf, mask, clean, vols = _series(rng)
    cbf = vols.mean(-1)
    cbf[mask & (gm > 0.9)] *= rng.choice([1, -1], size=(mask & (gm > 0.9)).sum(), p=[.95, .05])
    vox = (2.0, 2.5, 3.0)
    got = qc.qei(cbf, gm, wm, csf, mask, vox)
    sig = 5.0 / 2.3548200450309493 / np.array(vox)
    sm = ndimage.gaussian_filter(np.where(mask, cbf, 0), sig, mode='nearest')
    cls = [(p >= 0.7) & mask for p in (gm, wm, csf)]
    brain = cls[0] | cls[1] | cls[2]
    rho = np.corrcoef((2.5 * gm + wm)[brain], sm[brain])[0, 1]
    v = sum((c.sum() - 1) * np.var(sm[c], ddof=1) for c in cls) / sum(c.sum() - 1 for c in cls)
    di = v / abs(sm[cls[0]].mean())
    ngm = np.mean(cbf[cls[0]] < 0)
    qei = np.cbrt((1 - np.exp(-3.0126 * rho ** 2.4419))
                  * np.exp(-(0.054 * di ** 0.9272 + 2.8478 * ngm ** 0.5196)))
    assert got['qei_rho'] == pytest.approx(rho)
    assert got['qei_di'] == pytest.approx(di)
    assert got['qei_neg_gm'] == pytest.approx(ngm)
    assert got['qei'] == pytest.approx(qei)
    assert 0 < got['qei'] < 1
