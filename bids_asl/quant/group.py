"""Group statistics: streaming voxelwise mean/SD across subjects, summaries and outlier flags.

Pure numpy. Images are flat or N-D float arrays of one common grid; a non-finite voxel of a
subject is missing for that subject (it counts in neither the mean nor ``n``).
"""

from __future__ import annotations

import numpy as np


class RunningMeanSD:
    """Welford's online mean and variance, voxelwise, one image at a time.

    Memory is three arrays of the image shape, whatever the number of subjects; the result
    equals ``np.nanmean`` / ``np.nanstd(ddof=1)`` of the stacked images to rounding.
    """

    def __init__(self, shape):
        self.n = np.zeros(shape, dtype=np.int64)
        self.mean = np.zeros(shape, dtype=np.float64)
        self._m2 = np.zeros(shape, dtype=np.float64)

    def add(self, image: np.ndarray) -> None:
        x = np.asarray(image, dtype=np.float64)
        if x.shape != self.n.shape:
            raise ValueError(f'image shape {x.shape} differs from {self.n.shape}')
        ok = np.isfinite(x)
        if ok.all():  # the common case, without masking: about half the work
            self.n += 1
            delta = x - self.mean
            self.mean += delta / self.n
            self._m2 += delta * (x - self.mean)
            return
        self.n += ok
        delta = np.where(ok, x - self.mean, 0.0)
        self.mean += np.divide(delta, self.n, out=np.zeros_like(delta), where=ok)
        self._m2 += np.where(ok, delta * (x - self.mean), 0.0)

    def result(self, min_n: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean, SD with ddof=1, n): NaN mean where n < max(min_n, 1), NaN SD where n < 2."""
        n = self.n
        mean = np.where(n >= max(min_n, 1), self.mean, np.nan)
        var = np.divide(self._m2, n - 1, out=np.full(n.shape, np.nan), where=n >= 2)
        sd = np.where(n >= max(min_n, 2), np.sqrt(np.maximum(var, 0.0)), np.nan)
        return mean, sd, n


def mean_of_images(images) -> np.ndarray:
    """Voxelwise mean of several images of one subject, ignoring non-finite voxels."""
    stack = np.stack([np.asarray(i, dtype=np.float64) for i in images])
    finite = np.isfinite(stack)
    count = finite.sum(axis=0)
    total = np.where(finite, stack, 0.0).sum(axis=0)
    return np.divide(total, count, out=np.full(count.shape, np.nan), where=count > 0)


def summary(values) -> dict:
    """n, mean, SD (ddof=1), median, min, max of the finite values (NaN when undefined)."""
    x = np.asarray([v for v in values if v is not None], dtype=np.float64)
    x = x[np.isfinite(x)]
    n = int(x.size)
    return {'n': n,
            'mean': float(x.mean()) if n else float('nan'),
            'sd': float(x.std(ddof=1)) if n > 1 else float('nan'),
            'median': float(np.median(x)) if n else float('nan'),
            'min': float(x.min()) if n else float('nan'),
            'max': float(x.max()) if n else float('nan')}


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
