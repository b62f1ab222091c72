"""Regional and tissue statistics, hemispheres, asymmetry, overlap (numpy only).

Conventions:

* a region is every atlas label with the same name once the hemisphere is removed from it
  (``Precentral_L`` and ``Precentral_R`` are the region ``Precentral``); its left and right
  parts are its voxels with world x < 0 and x > 0 in the symmetric template (RAS), voxels on
  the mid-sagittal plane belong to neither half;
* asymmetry index AI = 2 (L − R) / (L + R) of the left and right means (undefined, NaN, when
  either half is empty or L + R = 0).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np

from bids_asl.quant.stats import describe

_HEMI_PATTERNS = (
    re.compile(r'^(?:left|right|lh|rh)[-_ ]+', re.IGNORECASE),
    re.compile(r'[-_ ](?:left|right|l|r|lh|rh)$', re.IGNORECASE),
)


def region_name(label: str) -> str:
    """The atlas label without its hemisphere: ``Left_Insular_Cortex`` → ``Insular_Cortex``."""
    name = label.strip()
    if name.lower().startswith(('ctx-lh-', 'ctx-rh-', 'ctx_lh_', 'ctx_rh_')):
        return 'ctx-' + name[7:]
    for pattern in _HEMI_PATTERNS:
        stripped = pattern.sub('', name, count=1)
        if stripped != name and stripped:
            return stripped
    return name


def maxprob_labels(prob: np.ndarray, threshold: float) -> np.ndarray:
    """Label ``k + 1`` where volume ``k`` of a 4-D probability atlas is the most probable and
    reaches ``threshold``; 0 elsewhere."""
    best = np.argmax(prob, axis=3)
    top = np.take_along_axis(prob, best[..., None], axis=3)[..., 0]
    return np.where(top >= threshold, best + 1, 0).astype(np.int32)


def hemisphere_map(shape, affine: np.ndarray) -> np.ndarray:
    """−1 (left, x < 0), +1 (right, x > 0), 0 (on the mid-sagittal plane) for each voxel."""
    ijk = np.indices(tuple(shape[:3]), dtype=np.float64).reshape(3, -1)
    x = (affine[0, :3] @ ijk + affine[0, 3]).reshape(tuple(shape[:3]))
    return np.sign(np.where(np.abs(x) < 1e-6, 0.0, x)).astype(np.int8)


def asymmetry_index(left, right):
    """AI = 2 (L − R) / (L + R); NaN where undefined."""
    left, right = np.asarray(left, dtype=np.float64), np.asarray(right, dtype=np.float64)
    total = left + right
    with np.errstate(divide='ignore', invalid='ignore'):
        return np.where(np.isfinite(total) & (total != 0), 2 * (left - right) / total, np.nan)


@dataclass(frozen=True)
class RegionRow:
    region: str
    indices: tuple[int, ...]
    mean: float
    median: float
    sd: float
    n_voxels: int
    mean_left: float
    mean_right: float
    n_left: int
    n_right: int
    asymmetry_index: float
    sd_left: float   # sample SD over the voxels with x < 0 (NaN with fewer than two)
    sd_right: float


def _stats(values: np.ndarray) -> tuple[float, float, float]:
    stats = describe(values)
    return stats['mean'], stats['median'], stats['sd']


def regional_table(values: np.ndarray, labels: np.ndarray, names: dict[int, str],
                   hemisphere: np.ndarray, valid: np.ndarray) -> list[RegionRow]:
    """Statistics of ``values`` in each region (labels merged by :func:`region_name`), over
    the voxels where ``valid`` is true and ``values`` is finite. Regions are listed in the
    order of their first label value; regions without a valid voxel are kept (n = 0)."""
    ok = np.asarray(valid, dtype=bool) & np.isfinite(values)
    groups: dict[str, list[int]] = {}
    for index in sorted(names):
        groups.setdefault(region_name(names[index]), []).append(index)
    rows = []
    lab, val, hemi = labels[ok], values[ok], hemisphere[ok]
    for region, indices in groups.items():
        inside = np.isin(lab, indices)
        mean, median, sd = _stats(val[inside])
        left = describe(val[inside & (hemi < 0)])
        right = describe(val[inside & (hemi > 0)])
        rows.append(RegionRow(region, tuple(indices), mean, median, sd, int(inside.sum()),
                              left['mean'], right['mean'], left['n'], right['n'],
                              float(asymmetry_index(left['mean'], right['mean'])),
                              sd_left=left['sd'], sd_right=right['sd']))
    return rows


@dataclass(frozen=True)
class TissueRow:
    tissue: str
    threshold: float
    mean: float
    median: float
    sd: float
    n_voxels: int


def tissue_table(values: np.ndarray, gm: np.ndarray, wm: np.ndarray, brain: np.ndarray,
                 gm_threshold: float, wm_threshold: float) -> list[TissueRow]:
    """Mean/median/SD of ``values`` in GM (pGM ≥ threshold), WM (pWM ≥ threshold) and the
    whole brain mask, over finite voxels of the brain mask."""
    ok = np.asarray(brain, dtype=bool) & np.isfinite(values)
    rows = []
    for tissue, selected, threshold in (('GM', gm >= gm_threshold, gm_threshold),
                                        ('WM', wm >= wm_threshold, wm_threshold),
                                        ('brain', np.ones_like(ok), np.nan)):
        picked = values[ok & selected]
        rows.append(TissueRow(tissue, threshold, *_stats(picked), int(picked.size)))
    return rows


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient 2|A∩B| / (|A| + |B|) of two boolean masks."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    total = a.sum() + b.sum()
    return float(2 * np.logical_and(a, b).sum() / total) if total else 1.0


def asymmetry_map(values: np.ndarray, valid: np.ndarray, mirror) -> np.ndarray:
    """Voxelwise AI = 2 (v − v') / (v + v') with v' the mirror image (``mirror`` flips about the
    mid-sagittal plane); NaN where the voxel or its mirror is not valid or v + v' ≤ 0. Positive
    AI: this side has the higher value."""
    values = np.asarray(values, dtype=np.float64)
    other = mirror(values)
    ok = np.asarray(valid, dtype=bool) & mirror(np.asarray(valid, dtype=bool))
    total = values + other
    ok &= np.isfinite(total) & (total > 0)
    with np.errstate(divide='ignore', invalid='ignore'):
        return np.where(ok, 2 * (values - other) / total, np.nan)


@dataclass(frozen=True)
class Cluster:
    index: int
    n_voxels: int
    volume_mm3: float
    sign: str              # 'higher' or 'lower' on this side than the other
    peak: float            # the most extreme value
    mean: float
    peak_mm: tuple[float, float, float]
    centre_mm: tuple[float, float, float]


def labels_on_grid(data: np.ndarray, src_affine: np.ndarray, shape, affine: np.ndarray, *,
                   probabilistic: bool, threshold: float) -> np.ndarray:
    """Integer atlas labels on another grid: nearest neighbour; a probabilistic (4-D) atlas
    as maximum-probability labels at ``threshold``."""
    from bids_asl.quant.resample import sample_nearest  # noqa: PLC0415

    on_grid = sample_nearest(data, src_affine, shape, affine)
    if probabilistic:
        on_grid = maxprob_labels(on_grid, threshold)
    return on_grid.astype(np.int32)


def region_lookup(labels: np.ndarray, affine: np.ndarray, names: dict[int, str], atlas: str):
    """A function of a world point (mm) → ``'<atlas>: <region>'`` of the label image at the
    nearest voxel, or ``'n/a'`` outside the image or the labelled regions."""
    inv = np.linalg.inv(affine)

    def region_at(point_mm) -> str:
        ijk = np.rint(inv[:3, :3] @ np.asarray(point_mm, float) + inv[:3, 3]).astype(int)
        if np.any(ijk < 0) or np.any(ijk >= labels.shape[:3]):
            return 'n/a'
        name = names.get(int(labels[tuple(ijk)]))
        return f'{atlas}: {name}' if name else 'n/a'

    return region_at


def clusters(stat: np.ndarray, affine: np.ndarray, threshold: float, min_voxels: int = 1,
             where: np.ndarray | None = None) -> list[Cluster]:
    """Clusters of |stat| ≥ threshold (26-connected, same sign within a cluster), optionally
    only where ``where`` is true, largest first."""
    from scipy import ndimage  # noqa: PLC0415

    stat = np.asarray(stat, dtype=np.float64)
    allowed = np.isfinite(stat) if where is None else np.isfinite(stat) & where
    voxel_mm3 = float(abs(np.linalg.det(affine[:3, :3])))
    found = []
    for sign, supra in (('higher', stat >= threshold), ('lower', stat <= -threshold)):
        labels, n = ndimage.label(supra & allowed, structure=np.ones((3, 3, 3)))
        sizes = np.bincount(labels.reshape(-1), minlength=n + 1)
        boxes = ndimage.find_objects(labels)
        for k in np.flatnonzero(sizes[1:] >= max(min_voxels, 1)) + 1:
            box = boxes[k - 1]  # only the cluster's bounding box is searched
            idx = np.argwhere(labels[box] == k) + [sl.start for sl in box]
            vals = stat[tuple(idx.T)]
            peak_i = int(np.argmax(np.abs(vals)))
            world = affine[:3, :3] @ idx.T + affine[:3, 3:4]
            found.append(Cluster(0, len(idx), len(idx) * voxel_mm3, sign, float(vals[peak_i]),
                                 float(vals.mean()), tuple(float(v) for v in world[:, peak_i]),
                                 tuple(float(v) for v in world.mean(axis=1))))
    found.sort(key=lambda c: (-c.n_voxels, -abs(c.peak)))
    return [replace(c, index=i + 1) for i, c in enumerate(found)]
