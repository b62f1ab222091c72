"""Partial-volume correction by local linear regression (Asllani et al. 2008, MRM 60:1362).

In each voxel's neighbourhood (a box of ``kernel`` voxels, within the brain mask) the signal is
modelled as ``y = pGM · y_GM + pWM · y_WM`` with ``y_GM``, ``y_WM`` constant over the box; the
least-squares solution gives pure-GM and pure-WM values at the box centre. The sums are box
filters, so every voxel is solved at once.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

DEFAULT_KERNEL = (5, 5, 1)  # Asllani 2008 used a 2-D in-plane kernel on 2-D acquisitions
MIN_PV = 0.1  # pure-tissue values are reported where that tissue's fraction reaches this


def pvc_linear_regression(values: np.ndarray, gm: np.ndarray, wm: np.ndarray,
                          mask: np.ndarray, kernel=DEFAULT_KERNEL,
                          min_pv: float = MIN_PV) -> tuple[np.ndarray, np.ndarray]:
    """Pure-GM and pure-WM maps of ``values`` (e.g. CBF) from GM/WM fractions.

    A neighbourhood holding only one tissue gives that tissue's one-parameter fit. Voxels
    outside ``mask``, where the system is otherwise singular, or where the tissue's fraction
    is below ``min_pv`` are NaN in that tissue's map.
    """
    if len(kernel) != 3 or min(kernel) < 1:
        raise ValueError(f'kernel must be three sizes >= 1, got {kernel!r}')
    mask = np.asarray(mask, dtype=bool) & np.isfinite(values)
    y = np.where(mask, values, 0.0)
    g, w = np.where(mask, gm, 0.0), np.where(mask, wm, 0.0)

    def box(a):
        return ndimage.uniform_filter(np.asarray(a, dtype=np.float64), size=kernel,
                                      mode='constant')

    sgg, sww, sgw = box(g * g), box(w * w), box(g * w)
    sgy, swy = box(g * y), box(w * y)
    det = sgg * sww - sgw ** 2
    scale = np.maximum(sgg * sww, 1e-12)
    solvable = mask & (det > 1e-6 * scale)
    with np.errstate(divide='ignore', invalid='ignore'):
        y_gm = (sww * sgy - sgw * swy) / det
        y_wm = (sgg * swy - sgw * sgy) / det
        # a neighbourhood holding a single tissue: that tissue's value is the 1-D fit
        only_gm = mask & ~solvable & (sww <= 1e-9) & (sgg > 1e-9)
        only_wm = mask & ~solvable & (sgg <= 1e-9) & (sww > 1e-9)
        y_gm = np.where(only_gm, sgy / sgg, y_gm)
        y_wm = np.where(only_wm, swy / sww, y_wm)
    y_gm = np.where((solvable | only_gm) & (gm >= min_pv), y_gm, np.nan)
    y_wm = np.where((solvable | only_wm) & (wm >= min_pv), y_wm, np.nan)
    return y_gm, y_wm
