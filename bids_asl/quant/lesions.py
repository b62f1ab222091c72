"""Lesion-wise CBF, perilesional rings and normal-appearing white matter by distance (numpy,
scipy).

* lesions are the 26-connected components of the lesion mask, numbered largest first;
* a ring ``[a, b)`` mm around a lesion is every non-lesion brain voxel whose distance to that
  lesion (Euclidean, in mm, between voxel centres, anisotropic voxels honoured) is > a and
  ≤ b: the first ring starts next to the lesion;
* NAWM is white matter (fraction ≥ threshold) outside every lesion; its bands use the distance
  to the nearest lesion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from bids_asl.quant.outliers import TISSUE_THRESHOLD
from bids_asl.quant.stats import describe

DEFAULT_RINGS_MM = ((0.0, 2.0), (2.0, 4.0))
DEFAULT_NAWM_BANDS_MM = ((0.0, 5.0), (5.0, 10.0), (10.0, 20.0), (20.0, np.inf))


@dataclass(frozen=True)
class LesionRow:
    kind: str          # 'lesion', 'ring', 'nawm' or 'all_lesions'
    lesion: str        # lesion number, or 'all'
    band_mm: str       # 'a-b' for rings and NAWM bands, 'n/a' otherwise
    n_voxels: int
    volume_mm3: float
    mean: float
    median: float
    sd: float


def _row(kind, lesion, band, values, voxel_mm3) -> LesionRow:
    stats = describe(values)
    n = stats['n']
    return LesionRow(kind, lesion, band, n, n * voxel_mm3, stats['mean'], stats['median'],
                     stats['sd'])


def _band(lo: float, hi: float) -> str:
    return f'{lo:g}-{hi:g}' if np.isfinite(hi) else f'>{lo:g}'


def label_lesions(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """26-connected components numbered by decreasing size (1 = largest)."""
    labels, n = ndimage.label(np.asarray(mask, dtype=bool), structure=np.ones((3, 3, 3)))
    if n == 0:
        return labels, 0
    sizes = np.bincount(labels.ravel())[1:]
    order = np.argsort(-sizes, kind='stable') + 1
    remap = np.zeros(n + 1, dtype=np.int32)
    remap[order] = np.arange(1, n + 1)
    return remap[labels], n


def lesion_table(cbf: np.ndarray, lesion_mask: np.ndarray, brain: np.ndarray,
                 wm: np.ndarray, voxel_mm, *, rings=DEFAULT_RINGS_MM,
                 nawm_bands=DEFAULT_NAWM_BANDS_MM, wm_threshold: float = TISSUE_THRESHOLD
                 ) -> list[LesionRow]:
    """Per-lesion CBF, its perilesional rings, all lesions together, and NAWM by distance."""
    voxel_mm = np.asarray(voxel_mm, dtype=np.float64)
    voxel_mm3 = float(np.prod(voxel_mm))
    brain = np.asarray(brain, dtype=bool) & np.isfinite(cbf)
    lesion = np.asarray(lesion_mask, dtype=bool) & brain
    labels, n = label_lesions(lesion)
    rows = []
    for k in range(1, n + 1):
        this = labels == k
        rows.append(_row('lesion', str(k), 'n/a', cbf[this], voxel_mm3))
        distance = ndimage.distance_transform_edt(~this, sampling=voxel_mm)
        for lo, hi in rings:
            ring = brain & ~lesion & (distance > lo) & (distance <= hi)
            rows.append(_row('ring', str(k), _band(lo, hi), cbf[ring], voxel_mm3))
    rows.append(_row('all_lesions', 'all', 'n/a', cbf[lesion], voxel_mm3))
    nawm = brain & ~lesion & (np.asarray(wm) >= wm_threshold)
    if n:
        distance = ndimage.distance_transform_edt(~lesion, sampling=voxel_mm)
        for lo, hi in nawm_bands:
            band = nawm & (distance > lo) & (distance <= hi)
            rows.append(_row('nawm', 'all', _band(lo, hi), cbf[band], voxel_mm3))
    rows.append(_row('nawm', 'all', 'all', cbf[nawm], voxel_mm3))
    return rows
