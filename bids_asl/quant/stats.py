"""Summary statistics of a set of values: the one helper behind every mean/median/SD table.

Pure numpy. Missing values (None, NaN, ±Inf) are left out. A float32 array is summarised in
float32 (as numpy does), anything else in float64.
"""

from __future__ import annotations

import numpy as np


def finite_values(values) -> np.ndarray:
    """The finite values as a flat array (None and non-finite values dropped)."""
    x = np.asarray(values)
    if x.dtype == object:
        x = np.asarray([v for v in x.ravel() if v is not None], dtype=np.float64)
    elif not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    x = x.ravel()
    return x[np.isfinite(x)]


def describe(values) -> dict:
    """``n``, ``mean``, ``median``, ``sd`` (ddof = 1), ``min`` and ``max`` of the finite values;
    NaN where undefined (no value; SD of fewer than two)."""
    x = finite_values(values)
    n = int(x.size)
    nan = float('nan')
    return {'n': n,
            'mean': float(x.mean()) if n else nan,
            'median': float(np.median(x)) if n else nan,
            'sd': float(x.std(ddof=1)) if n > 1 else nan,
            'min': float(x.min()) if n else nan,
            'max': float(x.max()) if n else nan}
