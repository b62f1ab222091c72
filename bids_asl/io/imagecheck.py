"""Check a NIfTI input before any work: header, size, integrity and voxel values.

:func:`check_image` reads the header, refuses absurd sizes before allocating anything, then
streams the data one volume at a time (never the whole image in memory), which finds a
truncated or corrupt file (short data, bad gzip CRC) and counts the non-finite and positive
voxels of every volume.  Every failure is a :class:`~bids_asl.errors.MetadataError` naming the
file and a field: ``image`` (unreadable or truncated), ``dim`` (dimensions), ``affine``.
"""

from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import nibabel as nb
import numpy as np

from bids_asl.errors import MetadataError

#: Refuse images that would need more than this many bytes as float64 in memory, or more than
#: the machine's RAM, whichever is lower (the environment variable overrides the number).
MAX_IMAGE_BYTES = int(float(os.environ.get('BIDS_ASL_MAX_IMAGE_GB', '32')) * 2**30)


@dataclass(frozen=True)
class ImageCheck:
    """What :func:`check_image` found."""

    shape: tuple[int, ...]
    affine: np.ndarray
    nonfinite: np.ndarray  # bool, shape[:3]: NaN or ±Inf in at least one volume
    finite_voxels: tuple[int, ...]  # per volume
    positive_voxels: tuple[int, ...]  # per volume: finite and > 0 (after scaling)
    negative_voxels: tuple[int, ...]  # per volume: finite and < 0

    @property
    def n_volumes(self) -> int:
        return len(self.finite_voxels)

    @property
    def n_voxels(self) -> int:
        return int(np.prod(self.shape[:3]))


def _fail(path, field, message):
    raise MetadataError(message, path=path, field=field)


def _memory_limit() -> int:
    try:
        ram = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')
    except (ValueError, OSError, AttributeError):
        ram = MAX_IMAGE_BYTES
    return min(MAX_IMAGE_BYTES, ram)


def _header(path: Path):
    if not path.is_file():
        kind = 'missing' if not path.exists() else 'not a regular file'
        _fail(path, 'image', f'cannot be read as NIfTI ({kind})')
    try:
        img = nb.load(str(path))
    except Exception as exc:  # noqa: BLE001 - nibabel raises many types for bad files
        _fail(path, 'image', f'cannot be read as NIfTI ({exc.__class__.__name__}: {exc})')
    if not isinstance(img, nb.Nifti1Image | nb.Nifti2Image):
        _fail(path, 'image', f'is a {type(img).__name__}, not NIfTI')
    return img


def check_image(path, *, max_bytes: int | None = None) -> ImageCheck:
    """Header and data checks of one 3-D or 4-D NIfTI (see the module docstring)."""
    path = Path(path)
    img = _header(path)
    shape = tuple(int(s) for s in img.shape)
    if len(shape) not in (3, 4) or min(shape) < 1:
        _fail(path, 'dim', f'must be a 3-D image or a 4-D series, got shape {shape}')
    limit = _memory_limit() if max_bytes is None else max_bytes
    need = int(np.prod(shape, dtype=np.float64)) * 8
    if need > limit:
        _fail(path, 'dim', f'shape {shape} would need {need / 2**30:.3g} GiB in memory, more '
                           f'than the {limit / 2**30:.3g} GiB allowed (header corrupt?)')
    affine = img.affine
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        _fail(path, 'affine', 'the voxel-to-world matrix is not finite or is singular '
                              '(check pixdim, qform and sform)')
    proxy = img.dataobj  # what nibabel reads: offset, dtype, scaling and order
    dtype = np.dtype(proxy.dtype)
    if dtype.kind not in 'iuf' or dtype.itemsize > 8:
        _fail(path, 'datatype', f'data type {dtype} is not supported (integers or floats)')
    slope, inter = float(proxy.slope), float(proxy.inter)
    n3 = int(np.prod(shape[:3]))
    n_vols = shape[3] if len(shape) == 4 else 1
    offset = int(proxy.offset)
    volume_bytes = n3 * dtype.itemsize
    nonfinite = np.zeros(shape[:3], dtype=bool)
    finite_counts, positive_counts, negative_counts = [], [], []
    opener = gzip.open if path.name.endswith('.gz') else open
    try:
        with opener(path, 'rb') as fobj:
            skipped = len(fobj.read(offset))
            if skipped < offset:
                _fail(path, 'image', 'truncated: the file ends before the image data')
            for vol in range(n_vols):
                buf = fobj.read(volume_bytes)
                if len(buf) < volume_bytes:
                    _fail(path, 'image', f'truncated: volume {vol + 1} of {n_vols} is '
                                         'incomplete (file cut short while copying?)')
                values = np.frombuffer(buf, dtype=dtype).astype(np.float64) * slope + inter
                finite = np.isfinite(values)
                nonfinite |= ~finite.reshape(shape[:3], order=proxy.order)
                finite_counts.append(int(finite.sum()))
                positive_counts.append(int((finite & (values > 0)).sum()))
                negative_counts.append(int((finite & (values < 0)).sum()))
            while fobj.read(1 << 20):  # to the end: gzip checks its CRC and length there
                pass
    except MetadataError:
        raise
    except (OSError, EOFError, zlib.error) as exc:
        _fail(path, 'image', f'corrupt or truncated ({exc.__class__.__name__}: {exc})')
    return ImageCheck(shape=shape, affine=affine, nonfinite=nonfinite,
                      finite_voxels=tuple(finite_counts), positive_voxels=tuple(positive_counts),
                      negative_voxels=tuple(negative_counts))
