"""Sampling one voxel grid on another through their affines (numpy/scipy only)."""

from __future__ import annotations

import warnings

import numpy as np
from scipy import ndimage


def voxel_map(src_affine: np.ndarray, dst_affine: np.ndarray) -> np.ndarray:
    """4×4 matrix from target voxel indices to (continuous) source voxel indices."""
    return np.linalg.inv(np.asarray(src_affine, dtype=np.float64)) @ np.asarray(
        dst_affine, dtype=np.float64)


def grid_to_source(src_affine: np.ndarray, dst_shape, dst_affine: np.ndarray) -> np.ndarray:
    """(3, *dst_shape) continuous voxel coordinates in the source grid of each target voxel."""
    ijk = np.indices(tuple(int(n) for n in dst_shape[:3]), dtype=np.float64).reshape(3, -1)
    world = dst_affine[:3, :3] @ ijk + dst_affine[:3, 3:4]
    inv = np.linalg.inv(src_affine)
    return (inv[:3, :3] @ world + inv[:3, 3:4]).reshape(3, *dst_shape[:3])


def _affine_transform(data, mapping: np.ndarray, dst_shape, **kwargs) -> np.ndarray:
    """``scipy.ndimage.affine_transform`` of a 3-D array through a voxel mapping; an
    axis-aligned mapping (diagonal matrix) takes scipy's faster zoom-and-shift path, whose
    coordinates are the same numbers."""
    matrix = mapping[:3, :3]
    diagonal = not np.any(matrix - np.diag(np.diag(matrix)))
    with warnings.catch_warnings():
        # scipy warns that a 1-D matrix means a diagonal one since 0.18: that is what we want
        warnings.filterwarnings('ignore', message='The behavior of affine_transform with a 1-D',
                                category=UserWarning)
        return ndimage.affine_transform(data, np.diag(matrix) if diagonal else matrix,
                                        mapping[:3, 3],
                                        output_shape=tuple(int(n) for n in dst_shape[:3]),
                                        **kwargs)


def sample_nearest(data: np.ndarray, src_affine: np.ndarray, dst_shape,
                   dst_affine: np.ndarray, fill=0) -> np.ndarray:
    """Nearest-neighbour resampling of a (label) image onto another grid; trailing axes
    beyond the third (e.g. the volumes of a probabilistic atlas) are carried along.

    Each target voxel takes the source voxel nearest to its centre (``fill`` when that lies
    outside the source grid by more than half a voxel).  The nearest voxel of every target
    voxel is found once, by sampling an image of source voxel numbers with
    ``scipy.ndimage.affine_transform`` (order 0); the values, of any dtype and with any
    trailing axes, are then gathered in the memory order of ``data`` (the result has that
    order too).  A target centre exactly half-way between two source voxels takes the upper
    one.
    """
    data = np.asarray(data)
    src_shape, trailing = data.shape[:3], data.shape[3:]
    dst3 = tuple(int(n) for n in dst_shape[:3])
    order = 'F' if data.flags.f_contiguous and not data.flags.c_contiguous else 'C'
    n_src, n_dst = int(np.prod(src_shape)), int(np.prod(dst3))
    numbers = np.arange(n_src, dtype=np.float64).reshape(src_shape, order=order)
    nearest = _affine_transform(numbers, voxel_map(src_affine, dst_affine), dst3, order=0,
                                mode='grid-constant', cval=-1.0).ravel(order=order)
    inside = nearest >= 0
    index = nearest[inside].astype(np.intp)
    out = np.full(dst3 + trailing, fill, dtype=data.dtype, order=order)
    n_vol = int(np.prod(trailing))
    source = data.reshape((n_src, n_vol), order=order)  # views: no copy
    target = out.reshape((n_dst, n_vol), order=order)
    if order == 'F':  # a volume is contiguous: gather volume by volume
        for vol in range(n_vol):
            column = target[:, vol]
            column[inside] = source[:, vol][index]
    else:  # a voxel's trailing values are contiguous: gather voxel rows
        target[inside] = source[index]
    return out


def sample_linear(data: np.ndarray, src_affine: np.ndarray, dst_shape,
                  dst_affine: np.ndarray, fill=0.0) -> np.ndarray:
    """Trilinear resampling of a 3-D image onto another grid (``fill`` outside), in float64
    (``scipy.ndimage.affine_transform``, order 1: the interpolation of
    ``ndimage.map_coordinates`` at each target voxel centre)."""
    data = np.asarray(data)
    if data.dtype.kind not in 'fiu' or data.dtype.itemsize not in (1, 2, 4, 8) or (
            data.dtype.kind == 'f' and data.dtype.itemsize < 4):
        data = data.astype(np.float64)  # bool, float16, float128: types ndimage cannot read
    return _affine_transform(data, voxel_map(src_affine, dst_affine), dst_shape,
                             output=np.float64, order=1, mode='constant', cval=fill)


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
