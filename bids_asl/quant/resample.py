"""Sampling one voxel grid on another through their affines (numpy/scipy only)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def grid_to_source(src_affine: np.ndarray, dst_shape, dst_affine: np.ndarray) -> np.ndarray:
    """(3, *dst_shape) continuous voxel coordinates in the source grid of each target voxel."""
    ijk = np.indices(tuple(int(n) for n in dst_shape[:3]), dtype=np.float64).reshape(3, -1)
    world = dst_affine[:3, :3] @ ijk + dst_affine[:3, 3:4]
    inv = np.linalg.inv(src_affine)
    return (inv[:3, :3] @ world + inv[:3, 3:4]).reshape(3, *dst_shape[:3])


def sample_nearest(data: np.ndarray, src_affine: np.ndarray, dst_shape,
                   dst_affine: np.ndarray, fill=0) -> np.ndarray:
    """Nearest-neighbour resampling of a (label) image onto another grid; trailing axes
    beyond the third (e.g. the volumes of a probabilistic atlas) are carried along."""
    coords = np.rint(grid_to_source(src_affine, dst_shape, dst_affine)).astype(np.int64)
    inside = np.all([(c >= 0) & (c < n)
                     for c, n in zip(coords, data.shape[:3], strict=True)], axis=0)
    out = np.full(tuple(dst_shape[:3]) + data.shape[3:], fill, dtype=data.dtype)
    c = coords[:, inside]
    out[inside] = data[c[0], c[1], c[2]]
    return out


def sample_linear(data: np.ndarray, src_affine: np.ndarray, dst_shape,
                  dst_affine: np.ndarray, fill=0.0) -> np.ndarray:
    """Trilinear resampling of a 3-D image onto another grid (``fill`` outside)."""
    coords = grid_to_source(src_affine, dst_shape, dst_affine)
    return ndimage.map_coordinates(np.asarray(data, dtype=np.float64), coords, order=1,
                                   mode='constant', cval=fill)


def mirror_x(data: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Left/right mirror image about the world x = 0 plane.

    Needs a grid whose first axis is world x and whose x = 0 plane is a voxel plane or lies
    half-way between two (true of the symmetric template grid).
    """
    if not np.allclose(affine[:3, :3], np.diag(np.diag(affine[:3, :3]))):
        raise ValueError('mirror_x needs an axis-aligned grid')
    centre = -affine[0, 3] / affine[0, 0]  # voxel index of x = 0
    if not np.isclose(2 * centre, data.shape[0] - 1):
        raise ValueError('x = 0 is not the centre of the first axis')
    return np.flip(data, axis=0)
