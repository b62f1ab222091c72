"""NIfTI reading and deterministic, atomic writing."""

from __future__ import annotations

import gzip
import os
import tempfile
from pathlib import Path

import nibabel as nb
import numpy as np


def load(path) -> tuple[np.ndarray, nb.Nifti1Image]:
    """Image data as float64 (scale slope/intercept applied) and the image itself."""
    img = nb.load(str(path))
    return np.asarray(img.get_fdata(dtype=np.float64)), img


def load_series(path) -> tuple[np.ndarray, nb.Nifti1Image]:
    """Like :func:`load`, with a 3-D image returned as a 4-D series of one volume."""
    data, img = load(path)
    return (data[..., None] if data.ndim == 3 else data), img


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to a temporary file in the same folder, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    try:
        with os.fdopen(fd, 'wb') as fobj:
            fobj.write(data)
            fobj.flush()
            os.fsync(fobj.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def nifti_bytes(data: np.ndarray, reference: nb.Nifti1Image, *, dtype=np.float32,
                compresslevel: int = 6) -> bytes:
    """Serialise ``data`` on the grid of ``reference``.

    gzip with mtime 0, so the same data always give the same bytes.
    """
    header = reference.header.copy()
    header.set_data_dtype(dtype)
    img = nb.Nifti1Image(np.asarray(data).astype(dtype), reference.affine, header)
    img.header.set_slope_inter(1.0, 0.0)
    img.header['cal_min'] = img.header['cal_max'] = 0
    if np.asarray(data).ndim == 3:
        img.header.set_data_shape(np.asarray(data).shape)
    return gzip.compress(img.to_bytes(), compresslevel=compresslevel, mtime=0)


def save(data: np.ndarray, reference: nb.Nifti1Image, path, *, dtype=np.float32,
         compresslevel: int = 6) -> Path:
    """Atomically save ``data`` as ``path`` (``.nii.gz``) on the reference grid."""
    return atomic_write_bytes(path, nifti_bytes(data, reference, dtype=dtype,
                                                compresslevel=compresslevel))


def save_work(data: np.ndarray, reference: nb.Nifti1Image, path, *, dtype=np.float32) -> Path:
    """Save an intermediate in the work dir: fast gzip (level 1), float32."""
    return save(data, reference, path, dtype=dtype, compresslevel=1)
