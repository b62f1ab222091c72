"""Two sessions of one subject: difference maps, percent change, global normalisation and a
voxelwise z against the runs' own noise (numpy only).

Convention: the comparison is ``A − B`` (``--compare-sessions A B``, e.g. ictal − interictal).
"""

from __future__ import annotations

import numpy as np

#: Percent change is reported where the reference session's CBF is at least this
#: (mL/100g/min): below it the ratio is dominated by noise.
MIN_REFERENCE_CBF = 5.0


def standard_error(series: np.ndarray) -> np.ndarray:
    """Voxelwise standard error of the mean over the last axis (SD/√n, ddof 1); NaN with
    fewer than 2 volumes."""
    series = np.asarray(series, dtype=np.float64)
    if series.ndim < 4 or series.shape[-1] < 2:
        return np.full(series.shape[:3], np.nan)
    return series.std(axis=-1, ddof=1) / np.sqrt(series.shape[-1])


def global_scale(a: np.ndarray, b: np.ndarray, valid: np.ndarray) -> float:
    """Factor that gives session A the mean of session B over ``valid`` (global
    normalisation: a focal change is then measured against the whole-brain level)."""
    mean_a, mean_b = float(a[valid].mean()), float(b[valid].mean())
    if not (np.isfinite(mean_a) and mean_a > 0):
        raise ValueError('session A has no positive mean CBF in the common mask')
    return mean_b / mean_a


def difference(a: np.ndarray, b: np.ndarray, valid: np.ndarray, *, normalise: bool = False,
               se_a: np.ndarray | None = None, se_b: np.ndarray | None = None) -> dict:
    """``{'difference', 'percent', 'z', 'scale'}`` of A − B over ``valid`` (NaN outside;
    ``z`` is NaN where either standard error is missing or both are zero)."""
    valid = np.asarray(valid, dtype=bool) & np.isfinite(a) & np.isfinite(b)
    scale = global_scale(a, b, valid) if normalise else 1.0
    a_scaled = a * scale
    diff = np.where(valid, a_scaled - b, np.nan)
    with np.errstate(divide='ignore', invalid='ignore'):
        percent = np.where(valid & (b >= MIN_REFERENCE_CBF), 100.0 * diff / b, np.nan)
        if se_a is None or se_b is None:
            z = np.full(a.shape, np.nan)
        else:
            noise = np.sqrt((scale * se_a) ** 2 + se_b ** 2)
            z = np.where(valid & np.isfinite(noise) & (noise > 0), diff / noise, np.nan)
    return {'difference': diff, 'percent': percent, 'z': z, 'scale': scale}
