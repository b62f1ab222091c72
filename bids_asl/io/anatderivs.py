"""Anatomy from fMRIPrep/sMRIPrep (``--anat-derivatives DIR``): find a subject's preprocessed
T1w, brain mask, tissue probabilities and T1w → template transforms.

Looked for under ``DIR/sub-<label>/`` (``anat/`` or ``ses-*/anat/``), in T1w space (no ``space-``
entity), the session-less files first:

* ``sub-<label>[_ses-…][_acq-…][_rec-…][_run-…]_desc-preproc_T1w.nii[.gz]``,
  ``…_desc-brain_mask.nii[.gz]``, ``…_label-{GM,WM,CSF}_probseg.nii[.gz]`` (all required, on one
  grid);
* ``…_from-T1w_to-MNI152NLin2009aSym_mode-image_xfm.h5`` (optional: our template; without it
  the T1w is registered to the template here);
* ``…_from-T1w_to-MNI152NLin2009cAsym_mode-image_xfm.h5`` (optional: fMRIPrep's default
  template, then an extra output space).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nibabel as nb
import numpy as np

from bids_asl.errors import MetadataError
from bids_asl.io.templates import TEMPLATE

#: fMRIPrep's default template: an output space when its transform is in the derivatives.
MNI2009C = 'MNI152NLin2009cAsym'
_OPTIONAL = ('acq', 'ce', 'rec', 'run')


@dataclass(frozen=True)
class AnatDerivatives:
    """A subject's anatomy from another pipeline (paths)."""

    t1w: str
    brain_mask: str
    gm: str
    wm: str
    csf: str
    to_template: str | None = None  # T1w → MNI152NLin2009aSym (ITK composite .h5)
    to_mni2009c: str | None = None  # T1w → MNI152NLin2009cAsym (ITK composite .h5)


def _stem_pattern(subject: str) -> str:
    optional = ''.join(rf'(?:_{e}-[A-Za-z0-9]+)?' for e in _OPTIONAL)
    return rf'sub-{re.escape(subject)}(?:_ses-[A-Za-z0-9]+)?{optional}'


def _find(folder: Path, subject: str, rest: str) -> Path | None:
    pattern = re.compile(_stem_pattern(subject) + rest + r'$')
    hits = [p for p in folder.rglob(f'sub-{subject}*') if p.is_file()
            and pattern.fullmatch(p.name) and p.parent.name == 'anat']
    # the session-less (subject-level) file first, then by name
    hits.sort(key=lambda p: ('_ses-' in p.name, p.name))
    return hits[0] if hits else None


def find_anat_derivatives(folder, subject: str) -> AnatDerivatives | None:
    """The subject's anatomical derivatives in ``folder``, or None when the required files are
    not all there."""
    root = Path(folder) / f'sub-{subject}'
    if not root.is_dir():
        return None
    nii = r'\.nii(?:\.gz)?'
    found = {
        't1w': _find(root, subject, rf'_desc-preproc_T1w{nii}'),
        'brain_mask': _find(root, subject, rf'_desc-brain_mask{nii}'),
        **{k.lower(): _find(root, subject, rf'_label-{k}_probseg{nii}')
           for k in ('GM', 'WM', 'CSF')},
    }
    if any(v is None for v in found.values()):
        return None
    xfm = {key: _find(root, subject, rf'_from-T1w_to-{space}_mode-image_xfm\.h5')
           for key, space in (('to_template', TEMPLATE), ('to_mni2009c', MNI2009C))}
    return AnatDerivatives(**{k: str(v) for k, v in found.items()},
                           **{k: str(v) if v else None for k, v in xfm.items()})


def check_anat_derivatives(found: AnatDerivatives) -> None:
    """All images 3-D on the preprocessed T1w's grid; probabilities within [0, 1]."""
    ref = nb.load(found.t1w)
    for field in ('brain_mask', 'gm', 'wm', 'csf'):
        path = getattr(found, field)
        img = nb.load(path)
        if img.shape[:3] != ref.shape[:3] or not np.allclose(img.affine, ref.affine,
                                                               atol=1e-3):
            raise MetadataError(f'not on the grid of {Path(found.t1w).name}', path=path,
                                field='--anat-derivatives')
        if field != 'brain_mask':
            data = np.asarray(img.dataobj, dtype=np.float32)
            if data.min() < -1e-3 or data.max() > 1.001:
                raise MetadataError('probabilities outside [0, 1]', path=path,
                                    field='--anat-derivatives')
