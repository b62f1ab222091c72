"""User-supplied tissue probability maps (``--tissue-maps DIR``) for one run."""

from __future__ import annotations

from pathlib import Path

import nibabel as nb
import numpy as np

from bids_asl.errors import MetadataError

LABELS = ('GM', 'WM', 'CSF')


def find_tissue_maps(folder, prefix: str, entities: dict) -> tuple[str, str, str] | None:
    """GM/WM/CSF maps for a run: the run's own (``<prefix>_label-GM_probseg``) or, failing
    that, its subject[/session]'s (``sub-X[_ses-Y]_label-GM_probseg``), anywhere in ``folder``.
    """
    stems = [prefix, f'sub-{entities["subject"]}'
             + (f'_ses-{entities["session"]}' if entities.get('session') else '')]
    for stem in stems:
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
