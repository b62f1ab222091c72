"""Array-level quality metrics of one ASL run (see docs/qc.md for every column).

Tissue maps are probability arrays on the CBF grid; a tissue metric is ``nan`` when its maps are
not available.  QEI follows Dolui et al. 2024 with the coefficients of the reference
implementation (ASLPrep): ``QEI = cbrt((1 − exp(α ρ^β)) · exp(−(γ DI^δ + ε nGM^ζ)))``, ρ the
correlation of the 5 mm-smoothed CBF with the pseudo-CBF ``2.5·GM + WM``, DI the pooled
within-tissue variance of the smoothed CBF over |mean GM CBF|, nGM the negative-CBF fraction of
GM voxels (unsmoothed).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from bids_asl.quant.outliers import TISSUE_THRESHOLD, pooled_variance

QEI_COEFFICIENTS = {'alpha': -3.0126, 'beta': 2.4419, 'gamma': 0.054, 'delta': 0.9272,
                    'epsilon': 2.8478, 'zeta': 0.5196}
QEI_SMOOTHING_FWHM_MM = 5.0


def _sigma(fwhm_mm: float, voxel_size) -> np.ndarray:
    return fwhm_mm / np.sqrt(8 * np.log(2)) / np.asarray(voxel_size, dtype=float)


def smooth(image, voxel_size, fwhm_mm: float = QEI_SMOOTHING_FWHM_MM):
    return ndimage.gaussian_filter(np.asarray(image, dtype=np.float64),
                                   _sigma(fwhm_mm, voxel_size), mode='nearest')


def smooth_within(data: np.ndarray, mask: np.ndarray, fwhm_mm: float, voxel_size) -> np.ndarray:
    """Gaussian smoothing normalised by the smoothed mask (no blurring with the outside);
    0 outside the mask."""
    mask = np.asarray(mask, dtype=bool)
    if fwhm_mm <= 0:
        return np.where(mask, data, 0.0)
    sigma = _sigma(fwhm_mm, voxel_size)
    num = ndimage.gaussian_filter(np.where(mask, data, 0.0), sigma)
    den = ndimage.gaussian_filter(mask.astype(np.float64), sigma)
    with np.errstate(divide='ignore', invalid='ignore'):
        return np.where(mask & (den > 1e-6), num / den, 0.0)


def qei(cbf, gm, wm, csf, mask, voxel_size) -> dict:
    """QEI and its components for a 3-D CBF map and 3-D tissue probability maps."""
    c = QEI_COEFFICIENTS
    mask = np.asarray(mask, dtype=bool)
    smoothed = smooth(np.where(mask, cbf, 0.0), voxel_size)
    classes = [np.asarray(p) >= TISSUE_THRESHOLD for p in (gm, wm, csf)]
    classes = [cls & mask for cls in classes]
    pseudo = 2.5 * np.asarray(gm) + np.asarray(wm)
    brain = np.any(classes, axis=0)
    rho = float(np.corrcoef(pseudo[brain], smoothed[brain])[0, 1])
    gm_cls = classes[0]
    di = pooled_variance(smoothed, classes) / abs(float(smoothed[gm_cls].mean()))
    ngm = float((np.asarray(cbf)[gm_cls] < 0).mean())
    value = (1 - np.exp(c['alpha'] * max(rho, 0.0) ** c['beta'])) * np.exp(
        -(c['gamma'] * di ** c['delta'] + c['epsilon'] * ngm ** c['zeta']))
    return {'qei': float(np.cbrt(value)), 'qei_rho': rho, 'qei_di': float(di),
            'qei_neg_gm': ngm}


def deltam_tsnr(deltam, mask) -> float:
    """Median over mask voxels of mean(ΔM)/SD(ΔM) across ΔM volumes (nan with < 2 volumes)."""
    d = np.asarray(deltam, dtype=np.float64)
    if d.ndim != 4 or d.shape[3] < 2:
        return float('nan')
    sd = d[mask].std(axis=1, ddof=1)
    ok = sd > 0
    return float(np.median(d[mask].mean(axis=1)[ok] / sd[ok])) if ok.any() else float('nan')


def tissue_metrics(cbf, mask, gm=None, wm=None) -> dict:
    """Means, GM/WM ratio, spatial CoV and negative fraction; tissue ones nan without maps."""
    cbf = np.asarray(cbf, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    out = {'cbf_mean_brain': float(cbf[mask].mean()),
           'negative_cbf_fraction_brain': float((cbf[mask] < 0).mean())}
    nan = float('nan')
    if gm is None or wm is None:
        out.update(cbf_mean_gm=nan, cbf_mean_wm=nan, gm_wm_ratio=nan, scov_gm=nan,
                   negative_cbf_fraction_gm=nan)
        return out
    gm_cls = (np.asarray(gm) >= TISSUE_THRESHOLD) & mask
    wm_cls = (np.asarray(wm) >= TISSUE_THRESHOLD) & mask
    gm_vals, wm_vals = cbf[gm_cls], cbf[wm_cls]
    out['cbf_mean_gm'] = float(gm_vals.mean()) if gm_vals.size else nan
    out['cbf_mean_wm'] = float(wm_vals.mean()) if wm_vals.size else nan
    out['gm_wm_ratio'] = out['cbf_mean_gm'] / out['cbf_mean_wm'] if wm_vals.size else nan
    out['scov_gm'] = float(gm_vals.std(ddof=1) / gm_vals.mean()) if gm_vals.size > 1 else nan
    out['negative_cbf_fraction_gm'] = float((gm_vals < 0).mean()) if gm_vals.size else nan
    return out
