"""Group statistics: a subject's mean image and robust outlier flags.

Pure numpy. Images are flat or N-D float arrays of one common grid; a non-finite voxel of a
subject is missing for that subject. The streaming mean/SD across subjects is
:class:`bids_asl.quant.normative.RunningMeanSD`; summaries are
:func:`bids_asl.quant.stats.describe`.
"""

from __future__ import annotations

import numpy as np


def mean_of_images(images) -> np.ndarray:
    """Voxelwise mean of several images of one subject, ignoring non-finite voxels."""
    stack = np.stack([np.asarray(i, dtype=np.float64) for i in images])
    finite = np.isfinite(stack)
    count = finite.sum(axis=0)
    total = np.where(finite, stack, 0.0).sum(axis=0)
    return np.divide(total, count, out=np.full(count.shape, np.nan), where=count > 0)


def robust_z(values) -> np.ndarray:
    """(x − median) / (1.4826 · MAD) over the finite values; NaN for missing values, and for
    all values when the MAD is zero or fewer than 3 values are finite."""
    x = np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
    finite = np.isfinite(x)
    out = np.full(x.shape, np.nan)
    if finite.sum() < 3:
        return out
    med = np.median(x[finite])
    mad = 1.4826 * np.median(np.abs(x[finite] - med))
    if mad == 0:
        return out
    out[finite] = (x[finite] - med) / mad
    return out
