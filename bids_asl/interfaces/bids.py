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

from bids_asl.io.anatoutputs import write_run_anat, write_subject_anat
from bids_asl.io.naming import path_for, sidecar_of
from bids_asl.io.outputs import write_run_outputs

#: Anatomy-derived files of a run (workflows.anat.RUN_ANAT_FILES).
ANAT_FILE_KEYS = ('gm', 'wm', 'csf', 'to_anat_txt', 'cbf_t1w', 'att_t1w', 'cbf_template',
                  'att_template', 'mask_template', 'cbf_pvc_gm', 'cbf_pvc_wm', 'asymmetry',
                  'se_template', 'se_t1w')


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
    anat_info = traits.Dict(desc='anatomical reference and registration (anatomy on)')
    regional = traits.Dict(desc='regional tables by "<atlas>/<measure>"')
    tissue = traits.List(desc='GM/WM/brain table rows')
    pvc_info = traits.Dict(desc='partial-volume correction method')
    gm = File(exists=True, desc='GM fraction on the ASL grid')
    wm = File(exists=True, desc='WM fraction on the ASL grid')
    csf = File(exists=True, desc='CSF fraction on the ASL grid')
    to_anat_txt = File(exists=True, desc='ASL → T1w/template transform (ITK text)')
    cbf_t1w = File(exists=True, desc='CBF in T1w space')
    att_t1w = File(exists=True, desc='ATT in T1w space')
    cbf_template = File(exists=True, desc='CBF in template space')
    att_template = File(exists=True, desc='ATT in template space')
    mask_template = File(exists=True, desc='ASL brain mask in template space')
    cbf_pvc_gm = File(exists=True, desc='PVC GM CBF')
    cbf_pvc_wm = File(exists=True, desc='PVC WM CBF')
    asymmetry = File(exists=True, desc='asymmetry index map (template space)')
    se_template = File(exists=True, desc='standard error of CBF, template space')
    se_t1w = File(exists=True, desc='standard error of CBF, T1w space')
    asym_clusters = traits.List(desc='asymmetry clusters')
    asym_info = traits.Dict(desc='asymmetry method and parameters')
    lesion_rows = traits.List(desc='lesion/ring/NAWM rows')
    lesion_info = traits.Dict(desc='lesion table definitions')


class _WriteOutputSpec(TraitedSpec):
    out_files = traits.List(desc='derivative files written')


class WriteDerivatives(SimpleInterface):
    """Atomically write a run's derivatives and sidecars into the output dataset."""

    input_spec = _WriteInputSpec
    output_spec = _WriteOutputSpec

    def _run_interface(self, runtime):
        keys = ('cbf', 'cbf_timeseries', 'deltam_mean', 'm0', 'mask', 'att', 'cbf_se', 'att_se',
                'rsquared', 'abv', 'score_cbf', 'scrub_cbf', 'confounds')
        anat = self.inputs.anat_info if isdefined(self.inputs.anat_info) else {}
        cbf_info = {**self.inputs.cbf_info, 'DeltaMSources': self.inputs.sources}
        if anat:
            cbf_info['AnatomicalReference'] = anat['AnatomicalReference']
        self._results['out_files'] = write_run_outputs(
            output_dir=self.inputs.output_dir, bids_dir=self.inputs.bids_dir,
            prefix=self.inputs.prefix, entities=self.inputs.entities,
            params=self.inputs.params, constants=self.inputs.constants,
            m0_info=self.inputs.m0_info,
            cbf_info=cbf_info,
            files={k: getattr(self.inputs, k) for k in keys if isdefined(getattr(self.inputs, k))},
            qc_metrics=self.inputs.qc_metrics,
            motion_info=self.inputs.motion_info if isdefined(self.inputs.motion_info) else None)
        if anat:
            self._results['out_files'] += self._write_anat(anat)
        return runtime

    def _write_anat(self, anat: dict) -> list[str]:
        import json  # noqa: PLC0415

        sidecar = sidecar_of(path_for(self.inputs.output_dir, 'cbf', self.inputs.prefix))
        value = lambda k: getattr(self.inputs, k)  # noqa: E731
        return write_run_anat(
            output_dir=self.inputs.output_dir, entities=self.inputs.entities,
            prefix=self.inputs.prefix, info=anat,
            files={k: value(k) for k in ANAT_FILE_KEYS if isdefined(value(k))},
            regional=value('regional') if isdefined(value('regional')) else {},
            tissue=value('tissue') if isdefined(value('tissue')) else [],
            pvc_info=value('pvc_info') if isdefined(value('pvc_info')) else None,
            asymmetry=({'clusters': value('asym_clusters'), 'info': value('asym_info')}
                       if isdefined(value('asym_info')) else None),
            lesions=({'rows': value('lesion_rows'), 'info': value('lesion_info')}
                     if isdefined(value('lesion_info')) else None),
            quant_sidecar=json.loads(sidecar.read_text()))


class _WriteT1wInputSpec(BaseInterfaceInputSpec):
    output_dir = Directory(mandatory=True, desc='derivative dataset root')
    bids_dir = Directory(exists=True, mandatory=True, desc='raw BIDS dataset root')
    subject = traits.Str(mandatory=True, desc='subject label')
    t1w_file = File(exists=True, mandatory=True, desc='the raw T1w')
    info = traits.Dict(mandatory=True, desc='how the T1w was processed')
    t1w_preproc = File(exists=True, mandatory=True, desc='bias-corrected T1w')
    brain_mask = File(exists=True, mandatory=True, desc='brain mask')
    gm = File(exists=True, mandatory=True, desc='GM probability')
    wm = File(exists=True, mandatory=True, desc='WM probability')
    csf = File(exists=True, mandatory=True, desc='CSF probability')
    dseg = File(exists=True, mandatory=True, desc='hard segmentation')
    to_template = traits.List(desc='T1w → template chain (not written: the parts are)')
    xfm_affine = File(exists=True, mandatory=True, desc='T1w → template affine (ITK text)')
    xfm_warp = File(exists=True, mandatory=True, desc='T1w → template displacement field')
    xfm_inverse_warp = File(exists=True, mandatory=True, desc='template → T1w field')
    t1w_template = File(exists=True, mandatory=True, desc='T1w in template space')


class WriteT1wDerivatives(SimpleInterface):
    """Atomically write a subject's T1w-derived outputs."""

    input_spec = _WriteT1wInputSpec
    output_spec = _WriteOutputSpec

    def _run_interface(self, runtime):
        keys = ('t1w_preproc', 'brain_mask', 'gm', 'wm', 'csf', 'dseg', 'xfm_affine',
                'xfm_warp', 'xfm_inverse_warp', 't1w_template')
        self._results['out_files'] = write_subject_anat(
            output_dir=self.inputs.output_dir, bids_dir=self.inputs.bids_dir,
            subject=self.inputs.subject, t1w_file=self.inputs.t1w_file, info=self.inputs.info,
            files={k: getattr(self.inputs, k) for k in keys})
        return runtime
