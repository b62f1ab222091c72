"""Head-motion realignment of the ASL series (and of a separate M0) with ANTs."""

from __future__ import annotations

import os

import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    traits,
)

from bids_asl.errors import MetadataError
from bids_asl.io import images
from bids_asl.io.metadata import AslParams
from bids_asl.quant import motion

REALIGNED_TYPES = ('control', 'label', 'm0scan')
MOTION_COLUMNS = ('trans_x', 'trans_y', 'trans_z', 'rot_x', 'rot_y', 'rot_z')


def _as_columns(params):
    """quant.motion order (rot_x, rot_y, rot_z, trans_x, trans_y, trans_z) → MOTION_COLUMNS."""
    p = np.asarray(params, dtype=np.float64)
    return np.concatenate([p[3:], p[:3]])


def realign_run(series, affine, volume_types, m0=None):
    """Realign control/label/m0scan volumes to the mean of the control and label volumes.

    Returns (realigned series, (T, 6) parameters with NaN for volumes not realigned, FD,
    registered M0 or None, info dict).
    """
    from bids_asl.registration import realign_series, register_rigid  # noqa: PLC0415

    types = np.array(volume_types)
    selected = np.flatnonzero(np.isin(types, REALIGNED_TYPES))
    cl = np.isin(types, ('control', 'label'))
    info = {'Software': 'ANTs (antspyx) rigid registration, Mattes mutual information',
            'Reference': 'mean of the control and label volumes',
            'Interpolation': 'linear', 'ParameterConvention': (
                'x_volume = R (x_reference - c) + c + t in RAS mm, c = image centre, '
                'R = Rz Ry Rx; rot_* in rad, trans_* in mm'),
            'FramewiseDisplacement': 'Power et al. 2012, 50 mm radius, over realigned volumes'}
    n = series.shape[3]
    params = np.full((n, 6), np.nan)
    if not cl.any():
        info['Reference'] = 'none: no control/label volumes, no realignment'
        return series, params, np.full(n, np.nan), m0, info
    reference = series[..., cl].mean(axis=-1)
    realigned, matrices = realign_series(series, affine, reference, volumes=selected)
    centre = (affine @ [*((np.array(series.shape[:3]) - 1) / 2), 1])[:3]
    for i in selected:
        params[i] = motion.rigid_params(matrices[i], centre)
    fd = np.full(n, np.nan)
    fd[selected] = motion.framewise_displacement(params[selected])
    m0_out = None
    if m0 is not None:
        m0_3d = m0.mean(axis=-1) if m0.ndim == 4 else m0
        m0_out, m0_matrix = register_rigid(reference, m0_3d, affine)
        info['M0Registration'] = ('separate M0 registered rigidly to the reference: '
                                  + ', '.join(f'{k}={v:.4g}' for k, v in zip(
                                      MOTION_COLUMNS,
                                      _as_columns(motion.rigid_params(m0_matrix, centre)),
                                      strict=True)))
    return realigned, params, fd, m0_out, info


def motion_table(params, fd, volume_types) -> str:
    """The confounds TSV text: motion parameters, FD and volume type, 'n/a' for NaN."""
    header = [*MOTION_COLUMNS, 'framewise_displacement', 'volume_type']
    rows = ['\t'.join(header)]
    for p, d, t in zip(params, fd, volume_types, strict=True):
        cells = ['n/a' if not np.isfinite(v) else f'{v:.6g}' for v in (*_as_columns(p), d)]
        rows.append('\t'.join([*cells, t]))
    return '\n'.join(rows) + '\n'


class _RealignInputSpec(BaseInterfaceInputSpec):
    asl_file = File(exists=True, mandatory=True, desc='ASL series (4-D)')
    m0_file = File(exists=True, desc='separate M0 image (registered to the ASL reference)')
    params = traits.Dict(mandatory=True, desc='validated AslParams as a dict')


class _RealignOutputSpec(TraitedSpec):
    asl_file = File(exists=True, desc='realigned ASL series')
    m0_file = File(desc='M0 registered to the ASL reference (separate M0 only)')
    confounds = File(exists=True, desc='motion parameters and FD (TSV)')
    info = traits.Dict(desc='how realignment was done, and FD summary')


class Realign(SimpleInterface):
    """Rigid realignment of every control/label/m0scan volume (ANTs, mutual information)."""

    input_spec = _RealignInputSpec
    output_spec = _RealignOutputSpec

    def _run_interface(self, runtime):
        p = AslParams.from_dict(self.inputs.params)
        # NaN/Inf (refused in bulk, masked out when few) would derail the registration
        data, img = images.load_series(self.inputs.asl_file, finite=True)
        m0 = images.load(self.inputs.m0_file, finite=True)[0] if self.inputs.m0_file else None
        if m0 is not None and not np.any(np.isfinite(m0) & (m0 > 0)):
            raise MetadataError('M0 has no positive finite voxel', path=self.inputs.m0_file,
                                field='M0')
        out, params, fd, m0_reg, info = realign_run(data, img.affine, p.volume_types, m0)
        self._results['asl_file'] = str(images.save_work(
            out, img, os.path.join(runtime.cwd, 'asl_realigned.nii.gz')))
        if m0_reg is not None:
            self._results['m0_file'] = str(images.save_work(
                m0_reg, img, os.path.join(runtime.cwd, 'm0_registered.nii.gz')))
        path = os.path.join(runtime.cwd, 'confounds.tsv')
        with open(path, 'w') as fobj:
            fobj.write(motion_table(params, fd, p.volume_types))
        finite = fd[np.isfinite(fd)]
        info.update(MeanFD=float(finite.mean()) if finite.size else None,
                    MaxFD=float(finite.max()) if finite.size else None)
        self._results['confounds'] = path
        self._results['info'] = info
        return runtime
