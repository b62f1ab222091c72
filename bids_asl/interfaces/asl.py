"""Thin nipype interfaces: load (io) → compute (quant) → save (io)."""

from __future__ import annotations

import os

import nibabel as nb
import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    traits,
)

from bids_asl import quant
from bids_asl.errors import MetadataError
from bids_asl.io import images
from bids_asl.io.imagecheck import check_image
from bids_asl.io.metadata import AslParams


class _M0InputSpec(BaseInterfaceInputSpec):
    asl_file = File(exists=True, mandatory=True, desc='ASL series (4-D)')
    m0_file = File(exists=True, desc='separate M0 image (M0Type Separate)')
    params = traits.Dict(mandatory=True, desc='validated AslParams as a dict')
    constants = traits.Dict(mandatory=True, desc='resolved constants (io.quantparams)')


class _M0OutputSpec(TraitedSpec):
    m0 = File(exists=True, desc='M0 map used for calibration (3-D)')
    reference = File(exists=True, desc='3-D image the brain mask is derived from')
    info = traits.Dict(desc='how M0 was obtained, for the sidecars')


class ComputeM0(SimpleInterface):
    """M0 for any ``M0Type``, with saturation-recovery (short TR) correction and scaling."""

    input_spec = _M0InputSpec
    output_spec = _M0OutputSpec

    def _run_interface(self, runtime):
        p = AslParams.from_dict(self.inputs.params)
        c = self.inputs.constants
        if p.m0_type == 'Separate':  # the ASL series itself is not needed: skip decompressing
            data, img = None, nb.load(self.inputs.asl_file)
        else:
            data, img = images.load_series(self.inputs.asl_file, finite=True)
        kwargs = {'t1_tissue': c['TissueT1ForM0'], 'scale': c['M0ScaleFactor']}
        types = np.array(p.volume_types)
        info = {'M0Type': p.m0_type, 'M0ScaleFactor': c['M0ScaleFactor']}
        if p.m0_type == 'Separate':
            m0_data, _ = images.load(self.inputs.m0_file, finite=True)
            m0, factor = quant.m0_from_images(m0_data, tr=p.m0_tr, **kwargs)
            info['M0Source'] = 'separate m0scan image, mean over its volumes'
            reference = m0
        elif p.m0_type in ('Included', 'Absent'):
            vtype = 'm0scan' if p.m0_type == 'Included' else 'control'
            m0, factor = quant.m0_from_images(data[..., types == vtype], tr=p.m0_tr, **kwargs)
            info['M0Source'] = (f'mean of the {int((types == vtype).sum())} {vtype} volumes '
                                'of the ASL series')
            reference = m0
        else:
            m0 = quant.m0_from_estimate(p.m0_estimate, img.shape[:3],
                                        scale=c['M0ScaleFactor'])
            factor = 1.0
            info['M0Source'] = f'M0Estimate {p.m0_estimate:g} from the sidecar (no voxelwise M0)'
            reference = _mask_reference(data, types)
        if p.m0_type != 'Estimate':
            info.update(M0RepetitionTime=p.m0_tr, TissueT1ForM0=c['TissueT1ForM0'],
                        M0SaturationRecoveryFactor=factor,
                        M0Correction='M0 = mean(S) * scale / (1 - exp(-TR/T1tissue))')
        if p.nonfinite_voxels:
            m0 = np.where(_nonfinite_voxels(p), 0.0, m0)  # M0 <= 0: outside the brain mask
            info['NonFiniteSourceVoxels'] = p.nonfinite_voxels
        if not np.any(np.isfinite(m0) & (m0 > 0)):
            raise MetadataError('M0 has no positive finite voxel', path=p.m0_file or p.asl_file,
                                field='M0')
        out = os.path.join(runtime.cwd, 'm0.nii.gz')
        self._results['m0'] = str(images.save_work(m0, img, out))
        self._results['reference'] = str(
            images.save_work(reference, img, os.path.join(runtime.cwd, 'reference.nii.gz')))
        self._results['info'] = info
        return runtime


def _nonfinite_voxels(p: AslParams) -> np.ndarray:
    """Voxels NaN/Inf in some volume of the raw ASL series or M0 (before realignment)."""
    bad = check_image(p.asl_file).nonfinite
    if p.m0_file:
        bad = bad | check_image(p.m0_file).nonfinite
    return bad


def _mask_reference(data, types):
    for vtype in ('control', 'm0scan'):
        if np.any(types == vtype):
            return data[..., types == vtype].mean(axis=-1)
    return np.abs(data[..., types != 'noRF']).mean(axis=-1)


class _MaskInputSpec(BaseInterfaceInputSpec):
    reference = File(exists=True, mandatory=True, desc='3-D reference image (M0 or mean control)')
    m0 = File(exists=True, mandatory=True, desc='M0 map: voxels with M0 <= 0 are excluded')


class _MaskOutputSpec(TraitedSpec):
    mask = File(exists=True, desc='brain mask (uint8)')


class ComputeMask(SimpleInterface):
    """Brain mask: Otsu threshold, largest component, holes filled; M0 > 0 required."""

    input_spec = _MaskInputSpec
    output_spec = _MaskOutputSpec

    def _run_interface(self, runtime):
        ref, img = images.load(self.inputs.reference)
        m0, _ = images.load(self.inputs.m0)
        try:
            mask = quant.brain_mask(ref) & np.isfinite(m0) & (m0 > 0)
        except ValueError as exc:
            raise MetadataError(str(exc), path=self.inputs.reference, field='brain mask') from None
        out = os.path.join(runtime.cwd, 'mask.nii.gz')
        self._results['mask'] = str(images.save_work(mask, img, out, dtype=np.uint8))
        return runtime


class _DeltaMInputSpec(BaseInterfaceInputSpec):
    asl_file = File(exists=True, mandatory=True, desc='ASL series (4-D)')
    params = traits.Dict(mandatory=True, desc='validated AslParams as a dict')


class _DeltaMOutputSpec(TraitedSpec):
    deltam = File(exists=True, desc='ΔM series (control − label, plus deltam volumes)')
    sources = traits.List(desc='1-based source volumes of each ΔM volume')


class ComputeDeltaM(SimpleInterface):
    """ΔM = control − label for each pair (any order) plus the series' own ``deltam`` volumes."""

    input_spec = _DeltaMInputSpec
    output_spec = _DeltaMOutputSpec

    def _run_interface(self, runtime):
        p = AslParams.from_dict(self.inputs.params)
        data, img = images.load_series(self.inputs.asl_file, finite=True)
        deltam = quant.difference_series(data, p.volume_types)
        self._results['deltam'] = str(
            images.save_work(deltam, img, os.path.join(runtime.cwd, 'deltam.nii.gz')))
        self._results['sources'] = [[i + 1 for i in s]
                                    for s in quant.difference_sources(p.volume_types)]
        return runtime
