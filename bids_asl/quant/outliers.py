"""Outlier-robust averaging of a volume-wise CBF series.

Arrays: ``cbf`` is (n_voxels, n_volumes) inside the brain mask; tissue maps are probability
vectors (n_voxels,) or ``None``.  Without tissue maps the whole mask is one class.

SCORE (Dolui et al. 2017, JMRI 45:1786), as implemented here:

1. Volumes whose mean GM CBF deviates from the median over volumes by more than 2.5 robust SD
   (MAD / 0.6745, at least 1e-6 of the median so that noise-free data still work) are rejected.
2. Then, repeatedly: the remaining volume least correlated (over the tissue voxels) with the
   mean of the remaining volumes is removed if that lowers V, the pooled within-tissue variance
   of the mean map, ``V = Σ_k (n_k − 1) var_k / Σ_k (n_k − 1)`` over GM, WM and CSF voxels with
   probability ≥ 0.7; the loop stops when it does not, or two volumes remain.

SCRUB (Dolui et al. 2016, ISMRM; robust Bayesian estimation): per voxel, a Huber M-estimate of
the mean over volumes by iteratively reweighted least squares, shrunk towards a structural
prior ``c_gm·GM + c_wm·WM`` (fitted to the mean map) with a weight that grows with the voxel's
temporal variance relative to the median GM voxel.  Without tissue maps it is the plain
Huber estimate.
"""

from __future__ import annotations

import numpy as np

TISSUE_THRESHOLD = 0.7
HUBER_TUNE = 1.345


def tissue_classes(gm=None, wm=None, csf=None, n_voxels=None, threshold=TISSUE_THRESHOLD):
    """Boolean class masks from probability maps (or one all-voxel class)."""
    maps = [m for m in (gm, wm, csf) if m is not None]
    if not maps:
        return [np.ones(n_voxels, dtype=bool)]
    return [np.asarray(m) >= threshold for m in maps]


def pooled_variance(values, classes) -> float:
    """Σ (n_k − 1) var_k / Σ (n_k − 1) over the classes with ≥ 2 voxels."""
    num = den = 0.0
    for cls in classes:
        n = int(cls.sum())
        if n >= 2:
            num += (n - 1) * float(np.var(values[cls], ddof=1))
            den += n - 1
    return num / den if den else float('nan')


def score(cbf, gm=None, wm=None, csf=None) -> np.ndarray:
    """SCORE: boolean (n_volumes,) array, True for the volumes kept."""
    cbf = np.asarray(cbf, dtype=np.float64)
    n_vox, n_vol = cbf.shape
    classes = tissue_classes(gm, wm, csf, n_vox)
    gm_cls = classes[0]
    keep = np.ones(n_vol, dtype=bool)
    if n_vol < 3:
        return keep
    gm_mean = cbf[gm_cls].mean(axis=0)
    med = np.median(gm_mean)
    # noise-free data have MAD = 0: then any deviation beyond round-off is an outlier
    robust_sd = max(np.median(np.abs(gm_mean - med)) / 0.6745, 1e-6 * abs(med))
    keep &= np.abs(gm_mean - med) <= 2.5 * robust_sd
    tissue = np.any(classes, axis=0)
    mean = cbf[:, keep].mean(axis=1)
    v = pooled_variance(mean, classes)
    while keep.sum() > 2:
        idx = np.flatnonzero(keep)
        corr = np.array([np.corrcoef(mean[tissue], cbf[tissue, i])[0, 1] for i in idx])
        worst = idx[np.nanargmin(corr)] if np.any(np.isfinite(corr)) else idx[0]
        trial = keep.copy()
        trial[worst] = False
        trial_mean = cbf[:, trial].mean(axis=1)
        trial_v = pooled_variance(trial_mean, classes)
        if not trial_v < v:
            break
        keep, mean, v = trial, trial_mean, trial_v
    return keep


def _structural_prior(mean, gm, wm):
    design = np.column_stack([gm, wm])
    tissue = (gm >= TISSUE_THRESHOLD) | (wm >= TISSUE_THRESHOLD)
    coef, *_ = np.linalg.lstsq(design[tissue], mean[tissue], rcond=None)
    return design @ coef, coef


def scrub(cbf, gm=None, wm=None, csf=None, *, tune: float = HUBER_TUNE,
          max_iter: int = 20) -> tuple[np.ndarray, dict]:
    """SCRUB-style robust mean: (n_voxels,) CBF and a dict describing the prior used."""
    y = np.asarray(cbf, dtype=np.float64)
    n_vox, n_vol = y.shape
    mean = y.mean(axis=1)
    info: dict = {'Estimator': f'Huber M-estimate (tune {tune:g}) per voxel, IRLS'}
    prior = np.zeros(n_vox)
    mu = np.zeros(n_vox)
    if gm is not None and wm is not None and n_vol > 1:
        gm, wm = np.asarray(gm, float), np.asarray(wm, float)
        prior, coef = _structural_prior(mean, gm, wm)
        var = y.var(axis=1, ddof=1)
        gm_med = np.median(var[gm >= TISSUE_THRESHOLD]) if np.any(gm >= TISSUE_THRESHOLD) \
            else np.median(var)
        # prior weight (in units of volumes): zero for typical voxels, growing with excess
        # temporal variance
        mu = np.clip(var / max(gm_med, 1e-12) - 1.0, 0.0, None)
        info.update(StructuralPrior={'GM': float(coef[0]), 'WM': float(coef[1])},
                    PriorWeight='max(0, var / median GM var - 1) volumes')
    b = mean.copy()
    for _ in range(max_iter):
        r = y - b[:, None]
        scale = np.median(np.abs(r), axis=1) / 0.6745
        scale = np.where(scale > 0, scale, np.sqrt(np.mean(r ** 2, axis=1)) + 1e-12)
        u = np.abs(r) / (tune * scale[:, None])
        w = np.where(u <= 1, 1.0, 1.0 / np.maximum(u, 1e-12))
        new = ((w * y).sum(axis=1) + mu * prior) / (w.sum(axis=1) + mu)
        if np.allclose(new, b, rtol=1e-10, atol=1e-10):
            b = new
            break
        b = new
    return b, info
