"""Single-delay CBF from ΔM and M0 (nipype face of :mod:`bids_asl.quant.cbf`)."""

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

from bids_asl import quant
from bids_asl.io import images
from bids_asl.io.metadata import AslParams


def effective_delay(p: AslParams, shape3d) -> tuple[np.ndarray | float, dict]:
    """PLD (or TI) per voxel: ``PLD + SliceTiming`` for 2-D readouts; and a description."""
    (delay,) = p.difference_plds
    info = {'PostLabelingDelay': delay}
    if p.acquisition_type == '2D' and p.slice_timing is not None:
        offsets = quant.slice_time_map(shape3d, p.slice_timing, p.slice_encoding_direction)
        info['SliceTimingCorrection'] = (
            'per-slice delay = PostLabelingDelay + SliceTiming[slice] along '
            f'SliceEncodingDirection {p.slice_encoding_direction}')
        info['PostLabelingDelayPerSlice'] = [round(delay + t, 6) for t in p.slice_timing]
        return delay + offsets, info
    if p.acquisition_type == '2D':
        info['SliceTimingCorrection'] = ('none: 2D readout without SliceTiming, every slice '
                                         'quantified with the nominal delay')
    else:
        info['SliceTimingCorrection'] = 'none needed (3D readout)'
    return delay, info


def cbf_series(deltam, m0, p: AslParams, c: dict) -> tuple[np.ndarray, dict]:
    """CBF for each ΔM volume (time last), using the run's parameters and constants."""
    delay, info = effective_delay(p, deltam.shape[:3])
    common = {'t1_blood': c['BloodT1'], 'labeling_efficiency': c['TotalLabelingEfficiency'],
              'partition_coefficient': c['PartitionCoefficient']}
    if p.asl_type == 'PASL':
        scale = quant.pasl_scale(ti=delay, ti1=p.ti1, **common)
        info.update(InversionTime=info['PostLabelingDelay'], BolusCutOffDelayTime=p.ti1,
                    BolusCutOffTechnique=p.bolus_cutoff_technique)
    else:
        scale = quant.pcasl_scale(pld=delay, label_duration=p.label_duration, **common)
        info['LabelingDuration'] = p.label_duration
    return quant.cbf.cbf_from_deltam(deltam, m0, scale), info


class _CBFInputSpec(BaseInterfaceInputSpec):
    deltam = File(exists=True, mandatory=True, desc='ΔM series (4-D)')
    m0 = File(exists=True, mandatory=True, desc='M0 map (3-D)')
    mask = File(exists=True, mandatory=True, desc='brain mask')
    params = traits.Dict(mandatory=True, desc='validated AslParams as a dict')
    constants = traits.Dict(mandatory=True, desc='resolved constants (io.quantparams)')


class _CBFOutputSpec(TraitedSpec):
    cbf = File(exists=True, desc='mean CBF (mL/100 g/min)')
    cbf_timeseries = File(exists=True, desc='CBF of each ΔM volume')
    deltam_mean = File(exists=True, desc='mean ΔM')
    info = traits.Dict(desc='delays and counts used, for the sidecars')


class ComputeCBF(SimpleInterface):
    """Consensus single-compartment CBF per ΔM volume, then the mean; zero outside the mask."""

    input_spec = _CBFInputSpec
    output_spec = _CBFOutputSpec

    def _run_interface(self, runtime):
        p = AslParams.from_dict(self.inputs.params)
        deltam, img = images.load_series(self.inputs.deltam)
        m0, _ = images.load(self.inputs.m0)
        mask = images.load(self.inputs.mask)[0] > 0
        finite = mask & np.all(np.isfinite(deltam), axis=-1)
        # Compute on the full grid (per-slice delays keep their geometry), M0 = 1 outside the
        # mask only to avoid dividing by zero there; those voxels are then set to 0.
        full, info = cbf_series(np.where(finite[..., None], deltam, 0.0),
                                np.where(finite, m0, 1.0), p, self.inputs.constants)
        series = np.where(finite[..., None], full, 0.0)
        info.update(quant.plausibility_warnings(series.mean(axis=-1)[finite]))
        info.update(NumberOfDeltaMVolumes=int(deltam.shape[3]),
                    VoxelsInMask=int(mask.sum()),
                    NonFiniteVoxelsExcluded=int(mask.sum() - finite.sum()))
        save = lambda arr, name: str(images.save_work(arr, img, os.path.join(runtime.cwd, name)))  # noqa: E731
        self._results['cbf'] = save(series.mean(axis=-1), 'cbf.nii.gz')
        self._results['cbf_timeseries'] = save(series, 'cbf_timeseries.nii.gz')
        self._results['deltam_mean'] = save(np.where(finite, deltam.mean(axis=-1), 0),
                                            'deltam_mean.nii.gz')
        self._results['info'] = info
        return runtime
