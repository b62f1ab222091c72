"""Group statistics: streaming voxelwise mean/SD across subjects, summaries and outlier flags.

Pure numpy. Images are flat or N-D float arrays of one common grid; a non-finite voxel of a
subject is missing for that subject (it counts in neither the mean nor ``n``).
"""

from __future__ import annotations

import numpy as np


class RunningMeanSD:
    """Streaming voxelwise mean and variance: shifted sums, one image at a time.

    Keeps n, Σ(x − c) and Σ(x − c)² per voxel with the shift c = the first image (its
    non-finite voxels 0), which keeps the sums small and the variance free of cancellation
    when c is near the mean (the textbook "shifted data" algorithm). Memory is four arrays of
    the image shape, whatever the number of subjects. Accumulators filled from disjoint
    subsets (e.g. in threads) combine exactly with :meth:`merge`. The result equals
    ``np.nanmean`` / ``np.nanstd(ddof=1)`` of the stacked images to rounding.
    """

    def __init__(self, shape):
        self.n = np.zeros(shape, dtype=np.int64)
        self.shift = None
        self._s = np.zeros(shape, dtype=np.float64)
        self._ss = np.zeros(shape, dtype=np.float64)

    def add(self, image: np.ndarray) -> None:
        x = np.asarray(image)  # float32 stays float32 here: the subtraction promotes it
        if x.shape != self.n.shape:
            raise ValueError(f'image shape {x.shape} differs from {self.n.shape}')
        ok = np.isfinite(x)
        if self.shift is None:
            self.shift = np.where(ok, x, 0.0).astype(np.float64)
        d = np.subtract(x, self.shift, dtype=np.float64)
        if ok.all():  # the common case, without masking
            self.n += 1
        else:
            self.n += ok
            d[~ok] = 0.0
        self._s += d
        d *= d
        self._ss += d

    def merge(self, other: RunningMeanSD) -> None:
        """Add the images accumulated by ``other`` (any shift) to this accumulator."""
        if other.shift is None:
            return
        if self.shift is None:
            self.n, self.shift = other.n.copy(), other.shift.copy()
            self._s, self._ss = other._s.copy(), other._ss.copy()
            return
        delta = other.shift - self.shift  # re-centre other's sums on this shift
        s = other._s + other.n * delta
        self._ss += other._ss + 2 * delta * other._s + other.n * delta ** 2
        self._s += s
        self.n += other.n

    def result(self, min_n: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean, SD with ddof=1, n): NaN mean where n < max(min_n, 1), NaN SD where n < 2."""
        n = self.n
        shift = self.shift if self.shift is not None else np.zeros(n.shape)
        safe = np.maximum(n, 1)
        mean = np.where(n >= max(min_n, 1), shift + self._s / safe, np.nan)
        m2 = np.maximum(self._ss - self._s ** 2 / safe, 0.0)
        var = np.divide(m2, n - 1, out=np.full(n.shape, np.nan), where=n >= 2)
        sd = np.where(n >= max(min_n, 2), np.sqrt(var), np.nan)
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
