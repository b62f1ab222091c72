"""Nipype face of :mod:`bids_asl.io.outputs`: write one run's derivatives."""

from __future__ import annotations

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    Directory,
    File,
    SimpleInterface,
    TraitedSpec,
    isdefined,
    traits,
)

from bids_asl.io.outputs import write_run_outputs


class _WriteInputSpec(BaseInterfaceInputSpec):
    output_dir = Directory(mandatory=True, desc='derivative dataset root')
    bids_dir = Directory(exists=True, mandatory=True, desc='raw BIDS dataset root')
    prefix = traits.Str(mandatory=True, desc='source file stem, e.g. sub-01_run-1')
    entities = traits.Dict(mandatory=True, desc='subject/session entities of the run')
    params = traits.Dict(mandatory=True, desc='validated AslParams as a dict')
    constants = traits.Dict(mandatory=True, desc='resolved constants')
    m0_info = traits.Dict(mandatory=True, desc='how M0 was obtained')
    cbf_info = traits.Dict(mandatory=True, desc='delays and counts used for CBF')
    sources = traits.List(mandatory=True, desc='1-based source volumes of each ΔM volume')
    cbf = File(exists=True, mandatory=True, desc='mean CBF')
    cbf_timeseries = File(exists=True, desc='CBF series (single delay)')
    att = File(exists=True, desc='arterial transit time (multi-delay)')
    cbf_se = File(exists=True, desc='standard error of CBF (multi-delay)')
    att_se = File(exists=True, desc='standard error of ATT (multi-delay)')
    rsquared = File(exists=True, desc='R² of the kinetic fit (multi-delay)')
    abv = File(exists=True, desc='arterial blood volume fraction (multi-delay, optional)')
    score_cbf = File(exists=True, desc='SCORE CBF (single delay)')
    scrub_cbf = File(exists=True, desc='SCRUB CBF (single delay)')
    confounds = File(exists=True, desc='confounds TSV (motion, FD, outliers)')
    motion_info = traits.Dict(desc='how realignment was done')
    qc_metrics = traits.Dict(mandatory=True, desc='QC metrics of the run')
    deltam_mean = File(exists=True, mandatory=True, desc='mean ΔM')
    m0 = File(exists=True, mandatory=True, desc='M0 map')
    mask = File(exists=True, mandatory=True, desc='brain mask')


class _WriteOutputSpec(TraitedSpec):
    out_files = traits.List(desc='derivative files written')


class WriteDerivatives(SimpleInterface):
    """Atomically write a run's derivatives and sidecars into the output dataset."""

    input_spec = _WriteInputSpec
    output_spec = _WriteOutputSpec

    def _run_interface(self, runtime):
        keys = ('cbf', 'cbf_timeseries', 'deltam_mean', 'm0', 'mask', 'att', 'cbf_se', 'att_se',
                'rsquared', 'abv', 'score_cbf', 'scrub_cbf', 'confounds')
        self._results['out_files'] = write_run_outputs(
            output_dir=self.inputs.output_dir, bids_dir=self.inputs.bids_dir,
            prefix=self.inputs.prefix, entities=self.inputs.entities,
            params=self.inputs.params, constants=self.inputs.constants,
            m0_info=self.inputs.m0_info,
            cbf_info={**self.inputs.cbf_info, 'DeltaMSources': self.inputs.sources},
            files={k: getattr(self.inputs, k) for k in keys if isdefined(getattr(self.inputs, k))},
            qc_metrics=self.inputs.qc_metrics,
            motion_info=self.inputs.motion_info if isdefined(self.inputs.motion_info) else None)
        return runtime
