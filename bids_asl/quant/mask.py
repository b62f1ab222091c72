"""A brain mask from a 3-D reference image (M0 or mean control).

Otsu's threshold on the finite intensities (background included), then the largest 3-D connected
component, then hole filling (scipy.ndimage).  Robust to a zero or noisy background; later
issues replace it with an anatomy-based mask.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def otsu_threshold(values: np.ndarray, nbins: int = 256) -> float:
    """Otsu (1979) threshold maximising the between-class variance of ``values``."""
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size < 2 or np.ptp(values) == 0:
        raise ValueError('cannot threshold an image with fewer than two distinct values')
    hist, edges = np.histogram(values, bins=nbins)
    centres = 0.5 * (edges[:-1] + edges[1:])
    weight1 = np.cumsum(hist)
    weight2 = weight1[-1] - weight1
    sum1 = np.cumsum(hist * centres)
    mean1 = sum1 / np.maximum(weight1, 1)
    mean2 = (sum1[-1] - sum1) / np.maximum(weight2, 1)
    between = weight1 * weight2 * (mean1 - mean2) ** 2
    between = between[:-1]
    # Well-separated classes give a plateau of equal maxima: take its middle.
    best = np.flatnonzero(between >= between.max() * (1 - 1e-9))
    return float(0.5 * (edges[1:][best[0]] + edges[1:][best[-1]]))


def brain_mask(reference: np.ndarray) -> np.ndarray:
    """Boolean brain mask of a 3-D reference image; ``ValueError`` when nothing is found."""
    ref = np.asarray(reference, dtype=np.float64)
    if ref.ndim != 3:
        raise ValueError(f'reference image must be 3-D, got shape {ref.shape}')
    valid = np.isfinite(ref) & (ref > 0)
    if valid.sum() < 2:
        raise ValueError('reference image has no positive finite voxels')
    # Threshold over all finite voxels: the background (zero or noise) is one of the classes.
    candidate = valid & (ref > otsu_threshold(ref[np.isfinite(ref)]))
    if not candidate.any():
        raise ValueError('brain mask is empty')
    return largest_component(candidate) & valid


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest face-connected component of a boolean 3-D mask, holes filled (the mask
    itself, as booleans, when it is empty)."""
    mask = np.asarray(mask, dtype=bool)
    labels, n = ndimage.label(mask)
    if n == 0:
        return mask
    sizes = ndimage.sum_labels(mask, labels, index=np.arange(1, n + 1))
    return ndimage.binary_fill_holes(labels == (int(np.argmax(sizes)) + 1))
