"""NIfTI reading and deterministic, atomic writing."""

from __future__ import annotations

import gzip
import os
import tempfile
import time
from pathlib import Path

import nibabel as nb
import numpy as np

from bids_asl.errors import OutputError

#: Suffix of the temporary files that become a final file by an atomic rename.  A run killed
#: while writing leaves one behind: hidden (dot) files, cleaned by :func:`remove_stale_temps`.
TEMP_SUFFIX = '.tmp'


def load(path, *, finite: bool = False) -> tuple[np.ndarray, nb.Nifti1Image]:
    """Image data as float64 (scale slope/intercept applied) and the image itself.

    ``finite=True`` replaces NaN and ±Inf by 0 (raw inputs: their non-finite voxels were
    found by :func:`check_image` and are excluded from the brain mask).
    """
    img = nb.load(str(path))
    data = np.asarray(img.get_fdata(dtype=np.float64))
    if finite:
        data = np.nan_to_num(data, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return data, img


def load_canonical(path) -> np.ndarray | None:
    """Data (float64) reoriented to the closest canonical (RAS) axes, for display; None when
    ``path`` is None or not a file."""
    if path is None or not Path(path).is_file():
        return None
    return np.asarray(nb.as_closest_canonical(nb.load(str(path))).get_fdata(dtype=np.float64))


def load_series(path, *, finite: bool = False) -> tuple[np.ndarray, nb.Nifti1Image]:
    """Like :func:`load`, with a 3-D image returned as a 4-D series of one volume."""
    data, img = load(path, finite=finite)
    return (data[..., None] if data.ndim == 3 else data), img


def _write_temp(path: Path, data: bytes) -> Path:
    """``data`` in a new hidden temporary file next to ``path`` (flushed to disk)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, 'wb') as fobj:
            fobj.write(data)
            fobj.flush()
            os.fsync(fobj.fileno())
        os.chmod(tmp, 0o644)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def _cannot_write(path, exc: OSError) -> OutputError:
    return OutputError(f'cannot write ({exc.strerror or exc})', path=path, field='write')


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to a temporary file in the same folder, then rename it into place.

    A reader sees the old file or the complete new one, never a partial file; an ``OSError``
    (disk full, read-only, permission) becomes an :class:`OutputError` naming the file.
    """
    path = Path(path)
    try:
        tmp = _write_temp(path, data)
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    try:
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _cannot_write(path, exc) from None
        raise
    return path


def write_all_or_none(items) -> list[Path]:
    """Write every ``(path, bytes)`` or, if one cannot be written, none of them.

    All contents go to temporary files first (where a full disk shows up), then are renamed
    into place.  On failure the temporary files are removed and so are the final files of
    the set that already exist (from an earlier run), so that no mix of old and new outputs
    is left; the :class:`OutputError` names the file that could not be written.
    """
    items = [(Path(p), d) for p, d in items]
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data in items:
            try:
                staged.append((_write_temp(path, data), path))
            except OSError as exc:
                raise _cannot_write(path, exc) from None
        for tmp, path in staged:
            try:
                os.replace(tmp, path)
            except OSError as exc:
                raise _cannot_write(path, exc) from None
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        for path, _ in items:
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass
        raise
    return [path for path, _ in items]


def remove_stale_temps(folder, *, older_than: float = 0.0, recursive: bool = True
                       ) -> list[Path]:
    """Remove the temporary files of :func:`atomic_write_bytes` under ``folder``.

    Only safe where no other process writes (the caller holds the participant's lock), or
    with ``older_than`` seconds larger than any write could take.
    """
    removed = []
    now = time.time()
    pattern = f'.*{TEMP_SUFFIX}'
    for tmp in Path(folder).rglob(pattern) if recursive else Path(folder).glob(pattern):
        try:
            if tmp.is_file() and now - tmp.stat().st_mtime >= older_than:
                tmp.unlink()
                removed.append(tmp)
        except OSError:
            pass
    return removed


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
