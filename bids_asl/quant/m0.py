"""Equilibrium magnetisation (M0) for calibration.

An M0 image acquired with repetition time TR has not fully recovered:
``S = M0 (1 − exp(−TR / T1_tissue))`` (saturation recovery, Alsop et al. 2015 §"M0"), so
``M0 = S / (1 − exp(−TR / T1_tissue))``.  ``scale`` multiplies the result (vendor scaling
between the M0 and the ASL images, e.g. number of averages; ASLPrep's ``--m0_scale``).
"""

from __future__ import annotations

import numpy as np


def saturation_recovery(tr: float, t1_tissue: float) -> float:
    """Fraction of M0 recovered after a repetition time ``tr`` (s): ``1 − exp(−TR/T1)``."""
    if not tr > 0:
        raise ValueError(f'repetition time must be > 0 s, got {tr!r}')
    if not t1_tissue > 0:
        raise ValueError(f'tissue T1 must be > 0 s, got {t1_tissue!r}')
    return float(-np.expm1(-tr / t1_tissue))


def m0_from_images(
    images: np.ndarray, *, tr: float, t1_tissue: float, scale: float = 1.0
) -> tuple[np.ndarray, float]:
    """M0 map from one 3-D image or the mean of a 4-D stack (time last).

    Returns ``(m0, factor)`` where ``m0 = mean(images) * scale / factor`` and ``factor`` is the
    saturation-recovery fraction.
    """
    if not scale > 0:
        raise ValueError(f'M0 scale factor must be > 0, got {scale!r}')
    data = np.asarray(images, dtype=np.float64)
    mean = data.mean(axis=-1) if data.ndim == 4 else data
    factor = saturation_recovery(tr, t1_tissue)
    return mean * (scale / factor), factor


def m0_from_estimate(estimate: float, shape: tuple[int, ...], *, scale: float = 1.0) -> np.ndarray:
    """A constant M0 image from the sidecar's single ``M0Estimate`` value."""
    if not estimate > 0 or not scale > 0:
        raise ValueError(f'M0 estimate and scale must be > 0, got {estimate!r}, {scale!r}')
    return np.full(shape, float(estimate) * float(scale))
