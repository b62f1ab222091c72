"""Image registration with ANTs (antspyx): arrays and affines in, arrays and matrices out.

This is the one place that imports ``ants``.  Transforms are returned as 4×4 matrices in the
NIfTI world frame (RAS, mm) mapping points of the fixed (reference) image to points of the
moving image, so :mod:`bids_asl.quant.motion` can turn them into motion parameters.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

LPS = np.diag([-1.0, -1.0, 1.0, 1.0])

#: Rigid registration: Mattes mutual information (insensitive to the label/control intensity
#: difference and to background suppression), a two-level pyramid chosen by rigid_settings().
RIGID = {'type_of_transform': 'Rigid', 'aff_metric': 'mattes', 'aff_sampling': 32,
         'aff_iterations': (100, 50)}
MIN_FINEST_INPLANE = 32  # voxels along the smaller in-plane axis at the finest level
MAX_DENSE_VOXELS = 60000  # finest levels up to this size sample every voxel


def rigid_settings(shape) -> dict:
    """Pyramid for an image: the finest level is the coarsest shrink (1, 2 or 4) that keeps
    ≥ 32 voxels in-plane; every voxel is sampled when that level is small, a quarter otherwise.

    Measured on 64×64×24 (2 cores): full resolution with dense sampling 6.6 s per volume,
    shrink 4→2 0.5–0.7 s, with known motions still recovered within 0.3 mm / 0.3°.
    """
    inplane = min(int(shape[0]), int(shape[1]))
    finest = max(s for s in (1, 2, 4) if inplane // s >= MIN_FINEST_INPLANE or s == 1)
    voxels = np.prod([max(int(n) // finest, 1) for n in shape[:3]])
    return {**RIGID, 'aff_shrink_factors': (2 * finest, finest),
            'aff_smoothing_sigmas': (float(finest), finest / 2.0),
            'aff_random_sampling_rate': 1.0 if voxels <= MAX_DENSE_VOXELS else 0.25}


RANDOM_SEED = 42  # ANTs samples the metric at random points: fix them for identical reruns


def _ants():
    os.environ.setdefault('ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS', '1')  # reproducible sums
    import ants  # noqa: PLC0415 - heavy (~3 s), only when registering

    ants.config._random_seed = RANDOM_SEED  # antspyx passes it as --random-seed
    return ants


def to_ants(data: np.ndarray, affine: np.ndarray):
    """An ANTs image (LPS physical space) from a 3-D array and its NIfTI affine."""
    ants = _ants()
    spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    lps = LPS @ affine
    direction = lps[:3, :3] / spacing
    return ants.from_numpy(np.asarray(data, dtype=np.float32), origin=tuple(lps[:3, 3]),
                           spacing=tuple(spacing), direction=direction)


def _read_affine(path) -> np.ndarray:
    """4×4 LPS matrix of an ITK affine transform file (x' = A (x − c) + c + t)."""
    ants = _ants()
    tx = ants.read_transform(str(path))
    p = np.asarray(tx.parameters, dtype=np.float64)
    c = np.asarray(tx.fixed_parameters, dtype=np.float64)
    a = p[:9].reshape(3, 3)
    out = np.eye(4)
    out[:3, :3] = a
    out[:3, 3] = c + p[9:12] - a @ c
    return out


def register_rigid(fixed: np.ndarray, moving: np.ndarray, affine: np.ndarray,
                   moving_affine: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rigidly register ``moving`` to ``fixed``.

    Returns ``(resampled, matrix)``: ``moving`` resampled on the fixed grid (linear), and the
    RAS 4×4 matrix mapping fixed-space points to moving-space points.
    """
    ants = _ants()
    fixed_img = to_ants(fixed, affine)
    moving_img = to_ants(moving, affine if moving_affine is None else moving_affine)
    with tempfile.TemporaryDirectory(prefix='bids-asl-reg-') as tmp:
        result = ants.registration(fixed=fixed_img, moving=moving_img, verbose=False,
                                   outprefix=str(Path(tmp) / 'reg_'),
                                   **rigid_settings(fixed.shape))
        matrix = LPS @ _read_affine(result['fwdtransforms'][0]) @ LPS
        resampled = ants.apply_transforms(fixed=fixed_img, moving=moving_img,
                                          transformlist=result['fwdtransforms'],
                                          interpolator='linear').numpy()
    return resampled.astype(np.float64), matrix


def realign_series(series: np.ndarray, affine: np.ndarray, reference: np.ndarray,
                   volumes=None) -> tuple[np.ndarray, np.ndarray]:
    """Register each selected volume of a 4-D series to ``reference``.

    Returns the realigned series (unselected volumes copied unchanged) and the (T, 4, 4) RAS
    matrices (identity for unselected volumes).
    """
    n = series.shape[3]
    volumes = range(n) if volumes is None else volumes
    out = np.array(series, dtype=np.float64, copy=True)
    matrices = np.repeat(np.eye(4)[None], n, axis=0)
    for i in volumes:
        out[..., i], matrices[i] = register_rigid(reference, series[..., i], affine)
    return out, matrices
