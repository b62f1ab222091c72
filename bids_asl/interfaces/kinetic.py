"""Multi-delay CBF and ATT (nipype face of :func:`bids_asl.quant.kinetic.fit_multidelay`)."""

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
from bids_asl.errors import MetadataError
from bids_asl.io import images
from bids_asl.io.metadata import AslParams
from bids_asl.quant import kinetic


def deltam_delays(p: AslParams) -> np.ndarray:
    """PLD (or TI) of each ΔM volume: that of its label volume (or of the deltam volume)."""
    return np.array([p.pld[src[-1]] for src in quant.difference_sources(p.volume_types)])


def fit_run(deltam, m0, mask, p: AslParams, c: dict, options: dict, t1_map=None):
    """Fit the kinetic model to the masked voxels; returns (maps dict, sidecar info)."""
    delays = deltam_delays(p)
    tau = p.ti1 if p.asl_type == 'PASL' else p.label_duration
    info = {'Model': 'general kinetic model (Buxton et al. 1998), single compartment',
            'PostLabelingDelay': sorted({round(float(d), 6) for d in delays}),
            'NumberOfDeltaMVolumes': int(deltam.shape[3]),
            'RepeatedDelays': 'fitted jointly (every ΔM volume is an observation)'}
    if p.asl_type == 'PASL':
        info.update(BolusCutOffDelayTime=p.ti1, BolusCutOffTechnique=p.bolus_cutoff_technique,
                    ModelTime='t = TI (PostLabelingDelay)')
    else:
        info.update(LabelingDuration=p.label_duration, ModelTime='t = LabelingDuration + PLD')
    y = deltam[mask] / m0[mask][:, None]
    if p.acquisition_type == '2D' and p.slice_timing is not None:
        offsets = quant.slice_time_map(mask.shape, p.slice_timing, p.slice_encoding_direction)
        times = kinetic.labelling_time(delays[None] + offsets[mask][:, None], tau, p.asl_type)
        info['SliceTimingCorrection'] = 'per-voxel time = t + SliceTiming[slice]'
    else:
        times = kinetic.labelling_time(delays, tau, p.asl_type)
        info['SliceTimingCorrection'] = ('none needed (3D readout)' if p.acquisition_type == '3D'
                                         else 'none: 2D readout without SliceTiming')
    if options['model'] == 'tissue':
        t1 = c['TissueT1ForM0'] if t1_map is None else t1_map[mask]
        info['KineticModelVariant'] = ("tissue T1 after arrival: 1/T1' = 1/T1tissue + f/lambda "
                                       '(Buxton 1998; as ASLDRO and BASIL)')
        info['KineticTissueT1'] = ('voxelwise map (--t1-tissue-map)' if t1_map is not None
                                   else c['TissueT1ForM0'])
    else:
        t1 = None
        info['KineticModelVariant'] = 'blood T1 throughout (white-paper assumption)'
    prior = options.get('att_prior')
    bounds = {**kinetic.DEFAULT_BOUNDS, **options.get('bounds', {})}
    result = kinetic.fit_multidelay(
        y, times, asl_type=p.asl_type, tau=tau, t1_blood=c['BloodT1'],
        alpha=c['TotalLabelingEfficiency'], t1_tissue=t1, lam=c['PartitionCoefficient'],
        fit_abv=options.get('fit_abv', False), bounds=bounds,
        att_prior=None if prior is None else tuple(prior),
        n_threads=int(options.get('n_threads', 1)))
    info.update(
        Fit='ATT grid start with CBF by linear least squares, then bounded '
            'Levenberg-Marquardt on all voxels at once',
        Bounds={k: list(v) for k, v in bounds.items()},
        ATTPrior=('none' if prior is None else {'Mean': prior[0], 'SD': prior[1],
                                                'NoiseSD': float(np.sqrt(result.prior_weight))
                                                * prior[1]}),
        ArterialComponent=('fitted: aBV with arterial arrival = ATT - 0.3 s'
                           if options.get('fit_abv') else 'not modelled'),
        StandardErrors='sqrt(diag(sigma^2 (J^T J)^-1)), sigma^2 = RSS/(n - k)',
        VoxelsAtBound=int(result.at_bound.sum()), VoxelsInMask=int(mask.sum()),
        Iterations=int(result.iterations))
    maps = {'cbf': result.cbf, 'att': result.att, 'cbf_se': result.cbf_se,
            'att_se': result.att_se, 'rsquared': result.r2}
    if result.abv is not None:
        maps['abv'] = result.abv
    info.update(quant.plausibility_warnings(result.cbf))
    return maps, info


class _FitInputSpec(BaseInterfaceInputSpec):
    deltam = File(exists=True, mandatory=True, desc='ΔM series (4-D)')
    m0 = File(exists=True, mandatory=True, desc='M0 map (3-D)')
    mask = File(exists=True, mandatory=True, desc='brain mask')
    t1_map = File(exists=True, desc='tissue T1 map (s) on the ASL grid, optional')
    params = traits.Dict(mandatory=True, desc='validated AslParams as a dict')
    constants = traits.Dict(mandatory=True, desc='resolved constants (io.quantparams)')
    options = traits.Dict(mandatory=True, desc='kinetic model options: model, att_prior, fit_abv')


class _FitOutputSpec(TraitedSpec):
    cbf = File(exists=True, desc='CBF (mL/100 g/min)')
    att = File(exists=True, desc='arterial transit time (s)')
    cbf_se = File(exists=True, desc='standard error of CBF')
    att_se = File(exists=True, desc='standard error of ATT')
    rsquared = File(exists=True, desc='coefficient of determination of the fit')
    abv = File(desc='arterial blood volume fraction (when fitted)')
    deltam_mean = File(exists=True, desc='mean ΔM per delay (4-D)')
    info = traits.Dict(desc='model, bounds, initialisation and counts, for the sidecars')


class FitKinetic(SimpleInterface):
    """Vectorised kinetic-model fit of every brain voxel; zero outside the mask."""

    input_spec = _FitInputSpec
    output_spec = _FitOutputSpec

    def _run_interface(self, runtime):
        p = AslParams.from_dict(self.inputs.params)
        deltam, img = images.load(self.inputs.deltam)
        m0 = images.load(self.inputs.m0)[0]
        mask = (images.load(self.inputs.mask)[0] > 0) & np.all(np.isfinite(deltam), axis=-1)
        t1_map = images.load(self.inputs.t1_map)[0] if self.inputs.t1_map else None
        if t1_map is not None and (t1_map.shape != mask.shape
                                   or not np.all(t1_map[mask] > 0)):
            raise MetadataError('must be on the ASL grid with T1 > 0 s in the brain mask',
                                path=self.inputs.t1_map, field='--t1-tissue-map')
        maps, info = fit_run(deltam, m0, mask, p, self.inputs.constants, self.inputs.options,
                             t1_map)
        for key, values in maps.items():
            full = np.zeros(mask.shape)
            full[mask] = values  # a standard error may be NaN where J^T J is singular
            self._results[key] = str(images.save_work(full, img,
                                                 os.path.join(runtime.cwd, f'{key}.nii.gz')))
        delays = deltam_delays(p)
        means = np.stack([deltam[..., delays == d].mean(axis=-1) for d in np.unique(delays)], -1)
        self._results['deltam_mean'] = str(images.save_work(
            np.where(mask[..., None], means, 0.0), img,
            os.path.join(runtime.cwd, 'deltam_mean.nii.gz')))
        info['DeltaMMeanVolumes'] = [float(d) for d in np.unique(delays)]
        self._results['info'] = info
        return runtime
