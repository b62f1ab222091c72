"""Copy one run's results from the work dir into the derivative dataset, with sidecars.

Every file is written under a temporary name and renamed into place, all of a run's files or
none (:func:`~bids_asl.io.images.write_all_or_none`); JSON is written with sorted keys and NIfTI
with a zero gzip mtime, so an identical rerun yields identical bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bids_asl import __version__
from bids_asl.io import images
from bids_asl.io.derivatives import check_inside, derivative_uri, json_bytes, raw_uri
from bids_asl.io.metadata import AslParams
from bids_asl.io.naming import CBF_UNITS, path_for, sidecar_of
from bids_asl.io.qctable import CONFOUND_COLUMNS, qc_row, qc_sidecar

#: The run's images, by their keys in the naming table (also the keys of ``files``).
RUN_IMAGES = ('mask', 'm0', 'deltam_mean', 'cbf', 'cbf_timeseries', 'att', 'cbf_se', 'att_se',
              'rsquared', 'abv', 'score_cbf', 'scrub_cbf')


def write_run_outputs(*, output_dir, bids_dir, prefix: str, entities: dict, params: dict,
                      constants: dict, m0_info: dict, cbf_info: dict, files: dict,
                      qc_metrics: dict | None = None, motion_info: dict | None = None
                      ) -> list[str]:
    """Write the derivatives of one run; ``files`` maps output keys to work-dir NIfTIs."""
    p = AslParams.from_dict(params)
    targets = {key: path_for(output_dir, key, prefix) for key in RUN_IMAGES}
    for target in targets.values():  # before anything resolves a path through a symlink
        check_inside(output_dir, target)
    raw_sources = [raw_uri(bids_dir, p.asl_file)]
    if p.m0_file:
        raw_sources.append(raw_uri(bids_dir, p.m0_file))
    mask_uri = derivative_uri(output_dir, targets['mask'])
    m0_uri = derivative_uri(output_dir, targets['m0'])
    software = {'Software': f'bids-asl {__version__}'}
    sidecars = {
        'mask': {'Type': 'Brain', 'RawSources': raw_sources, 'Sources': [m0_uri],
                 'Description': 'brain mask: Otsu threshold of the M0 (or mean control) image, '
                                'largest connected component, holes filled, M0 > 0',
                 **software},
        'm0': {'Units': 'arbitrary (scanner units, as ΔM)', 'Sources': raw_sources,
               'Description': 'M0 used for calibration (after TR correction and scaling)',
               'SkullStripped': False,
               **m0_info, **software},
        'deltam_mean': {'Units': 'arbitrary (scanner units)', 'Sources': raw_sources,
                        'Description': 'mean ΔM = control − label over all ΔM volumes, '
                                       'zero outside the brain mask',
                        'DeltaMSources': cbf_info.get('DeltaMSources'), **software},
    }
    quant = {'Units': CBF_UNITS, 'Sources': [*raw_sources, m0_uri, mask_uri],
             'ArterialSpinLabelingType': p.asl_type, 'MagneticFieldStrength': p.field_strength,
             **constants, **cbf_info, 'M0': m0_info,
             'VoxelsOutsideMask': 'set to 0 (see the brain mask)', **software}
    if p.nonfinite_voxels:
        quant['Warnings'] = [*quant.get('Warnings', []),
                             f'{p.nonfinite_voxels} voxel(s) are NaN or Inf in some volume of the '
                             'source images: excluded from the brain mask']
    multi = 'Model' in cbf_info
    method = ('multi-delay kinetic model fit' if multi
              else 'mean over the ΔM volumes (single-delay consensus model)')
    sidecars['cbf'] = {**quant, 'Description': f'CBF: {method}'}
    sidecars['cbf_timeseries'] = {**quant, 'Description': 'CBF of each ΔM volume, in order'}
    sidecars['att'] = {**quant, 'Units': 's', 'Description': 'arterial transit time (ATT) from '
                                                             'the kinetic model fit'}
    sidecars['cbf_se'] = {**quant, 'Description': 'standard error of CBF from the fit Jacobian'}
    sidecars['att_se'] = {**quant, 'Units': 's',
                          'Description': 'standard error of ATT from the fit Jacobian'}
    sidecars['rsquared'] = {**quant, 'Units': 'unitless',
                            'Description': 'coefficient of determination R² of the kinetic fit '
                                           'per voxel (NaN where the signal is constant)'}
    sidecars['abv'] = {**quant, 'Units': 'fraction',
                       'Description': 'arterial blood volume fraction (macrovascular component)'}
    sidecars['score_cbf'] = {**quant, 'Description': 'mean CBF over the volumes kept by SCORE '
                                                      '(Dolui 2017); see the confounds table',
                             'QC': 'bids::' + path_for(output_dir, 'qc', prefix)
                             .relative_to(output_dir).as_posix()}
    sidecars['scrub_cbf'] = {**quant, 'Description': 'SCRUB-style robust CBF (Huber '
                                                     'M-estimate per voxel with a structural '
                                                     'prior when tissue maps exist)'}
    if multi:
        sidecars['deltam_mean']['Description'] = ('mean ΔM per delay (one volume per '
                                                  'DeltaMMeanVolumes entry), zero outside mask')
        sidecars['deltam_mean']['DeltaMMeanVolumes'] = cbf_info.get('DeltaMMeanVolumes')
    written, items = [], []
    n_volumes = cbf_info.get('NumberOfDeltaMVolumes', 1)
    for key, target in targets.items():
        if key not in files or (key == 'cbf_timeseries' and n_volumes < 2):
            continue
        data, img = images.load(files[key])
        dtype = np.uint8 if key == 'mask' else np.float32
        items.append((target, images.nifti_bytes(data, img, dtype=dtype)))
        items.append((sidecar_of(target),
                      json_bytes({k: v for k, v in sidecars[key].items() if v is not None})))
        written.append(str(target))
    tables = _tables(output_dir, entities, prefix, files, qc_metrics, motion_info, raw_sources)
    items += tables
    written += [str(t) for t, _ in tables if t.suffix == '.tsv']
    for target, _ in tables:
        check_inside(output_dir, target)
    # all of the run's files or none: a full disk never leaves half a run behind
    images.write_all_or_none(items)
    return written


def _tables(output_dir, entities, prefix, files, qc_metrics, motion_info, raw_sources):
    items = []
    if 'confounds' in files:
        target = path_for(output_dir, 'confounds', prefix)
        items.append((target, Path(files['confounds']).read_bytes()))
        items.append((sidecar_of(target),
                      json_bytes({**CONFOUND_COLUMNS, 'Sources': raw_sources,
                                  'Realignment': motion_info or {}})))
    if qc_metrics is not None:
        target = path_for(output_dir, 'qc', prefix)
        items.append((target, qc_row(qc_metrics, entities, prefix).encode()))
        items.append((sidecar_of(target), json_bytes(qc_sidecar())))
    return items
