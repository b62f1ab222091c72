"""User-supplied maps for one run: tissue probabilities (``--tissue-maps DIR``) and lesion
masks (``--lesion-masks DIR``)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nb
import numpy as np

from bids_asl.errors import MetadataError

LABELS = ('GM', 'WM', 'CSF')


def _stems(prefix: str, entities: dict) -> list[str]:
    """The run's own file stem, then its subject[/session]'s: where user maps are looked for."""
    return [prefix, f'sub-{entities["subject"]}'
            + (f'_ses-{entities["session"]}' if entities.get('session') else '')]


def find_tissue_maps(folder, prefix: str, entities: dict) -> tuple[str, str, str] | None:
    """GM/WM/CSF maps for a run: the run's own (``<prefix>_label-GM_probseg``) or, failing
    that, its subject[/session]'s (``sub-X[_ses-Y]_label-GM_probseg``), anywhere in ``folder``.
    """
    for stem in _stems(prefix, entities):
        found = []
        for label in LABELS:
            hits = sorted(Path(folder).rglob(f'{stem}_label-{label}_probseg.nii*'))
            if not hits:
                break
            found.append(str(hits[0]))
        if len(found) == 3:
            return tuple(found)
    return None


def check_tissue_maps(paths, asl_file) -> None:
    """Each map must be 3-D on the ASL grid with values in [0, 1]."""
    asl = nb.load(str(asl_file))
    for path in paths:
        img = nb.load(path)
        if tuple(img.shape[:3]) != tuple(asl.shape[:3]) or img.ndim != 3:
            raise MetadataError(f'shape {img.shape} is not the ASL grid {asl.shape[:3]}',
                                path=path, field='--tissue-maps')
        if not np.allclose(img.affine, asl.affine, atol=1e-3):
            raise MetadataError('affine differs from the ASL image', path=path,
                                field='--tissue-maps')
        data = np.asarray(img.dataobj, dtype=np.float64)
        if not np.all(np.isfinite(data)) or data.min() < 0 or data.max() > 1.0 + 1e-6:
            raise MetadataError('probabilities must be finite and within 0-1', path=path,
                                field='--tissue-maps')


def find_lesion_mask(folder, prefix: str, entities: dict):
    """A run's lesion mask (``<prefix>_label-lesion_{mask,roi}``) or its subject[/session]'s
    (``sub-X[_ses-Y]_label-lesion_{mask,roi}``), other entities allowed before ``label``,
    anywhere in ``folder``; None if absent."""
    for stem in _stems(prefix, entities):
        for suffix in ('mask', 'roi'):
            hits = sorted(Path(folder).rglob(f'{stem}_*label-lesion_{suffix}.nii*'))
            if hits:
                return hits[0]
    return None


def lesion_space(path, asl_file, t1w_file) -> str:
    """'asl' or 'T1w': the grid the lesion mask is on (shape and affine); a one-line error
    naming the file otherwise, or when it holds no lesion voxel."""
    img = nb.load(str(path))
    data = np.asarray(img.dataobj)
    if img.ndim != 3 or not np.all(np.isfinite(data)):
        raise MetadataError('lesion mask must be a finite 3-D image', path=path,
                            field='--lesion-masks')
    if not np.any(data > 0):
        raise MetadataError('lesion mask has no lesion voxel', path=path,
                            field='--lesion-masks')
    for space, reference in (('asl', asl_file), ('T1w', t1w_file)):
        if reference is None:
            continue
        ref = nb.load(str(reference))
        if tuple(ref.shape[:3]) == tuple(img.shape) and np.allclose(ref.affine, img.affine,
                                                                    atol=1e-3):
            return space
    raise MetadataError('lesion mask is neither on the ASL grid nor on the T1w grid '
                        '(shape and affine)', path=path, field='--lesion-masks')
