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
                  'se_template', 'se_t1w', 'cbf_mni2009c', 'att_mni2009c', 'mask_mni2009c')


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
    anat_info = traits.Dict(desc='anatomical reference, registration and tissue-fraction '
                                 'source (anatomy on)')
    user_tissue = traits.Bool(False, usedefault=True,
                              desc='QC used --tissue-maps, not the anatomy\'s fractions')


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
            cbf_info['TissueFractionSource'] = ('--tissue-maps (user-supplied maps)'
                                                if self.inputs.user_tissue
                                                else anat['TissueFractionSource'])
        self._results['out_files'] = write_run_outputs(
            output_dir=self.inputs.output_dir, bids_dir=self.inputs.bids_dir,
            prefix=self.inputs.prefix, entities=self.inputs.entities,
            params=self.inputs.params, constants=self.inputs.constants,
            m0_info=self.inputs.m0_info,
            cbf_info=cbf_info,
            files={k: getattr(self.inputs, k) for k in keys if isdefined(getattr(self.inputs, k))},
            qc_metrics=self.inputs.qc_metrics,
            motion_info=self.inputs.motion_info if isdefined(self.inputs.motion_info) else None)
        return runtime


class _WriteAnatInputSpec(BaseInterfaceInputSpec):
    output_dir = Directory(mandatory=True, desc='derivative dataset root')
    prefix = traits.Str(mandatory=True, desc='source file stem, e.g. sub-01_run-1')
    entities = traits.Dict(mandatory=True, desc='subject/session entities of the run')
    cbf_files = traits.List(mandatory=True,
                            desc="the run's CBF derivatives (WriteDerivatives: written first)")
    anat_info = traits.Dict(mandatory=True, desc='anatomical reference and registration')
    anat_errors = traits.List(traits.Str, desc='failed or skipped anatomy steps')
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
    cbf_mni2009c = File(exists=True, desc='CBF in MNI152NLin2009cAsym space')
    att_mni2009c = File(exists=True, desc='ATT in MNI152NLin2009cAsym space')
    mask_mni2009c = File(exists=True, desc='ASL brain mask in MNI152NLin2009cAsym space')
    asym_clusters = traits.List(desc='asymmetry clusters')
    asym_info = traits.Dict(desc='asymmetry method and parameters')
    lesion_rows = traits.List(desc='lesion/ring/NAWM rows')
    lesion_info = traits.Dict(desc='lesion table definitions')


class WriteRunAnatomy(SimpleInterface):
    """Write a run's anatomy-derived outputs (after its CBF derivatives, whose sidecar they
    read), and record the failed anatomy steps in the CBF sidecar.  A separate node from
    :class:`WriteDerivatives`, so that nothing anatomical can stop the CBF from being written."""

    input_spec = _WriteAnatInputSpec
    output_spec = _WriteOutputSpec

    def _run_interface(self, runtime):
        import json  # noqa: PLC0415

        value = lambda k: getattr(self.inputs, k)  # noqa: E731
        defined = lambda k: isdefined(value(k))  # noqa: E731
        sidecar = sidecar_of(path_for(self.inputs.output_dir, 'cbf', self.inputs.prefix))
        self._results['out_files'] = write_run_anat(
            output_dir=self.inputs.output_dir, entities=self.inputs.entities,
            prefix=self.inputs.prefix, info=self.inputs.anat_info,
            files={k: value(k) for k in ANAT_FILE_KEYS if defined(k)},
            regional=value('regional') if defined('regional') else {},
            tissue=value('tissue') if defined('tissue') else [],
            pvc_info=value('pvc_info') if defined('pvc_info') else None,
            asymmetry=({'clusters': value('asym_clusters'), 'info': value('asym_info')}
                       if defined('asym_info') else None),
            lesions=({'rows': value('lesion_rows'), 'info': value('lesion_info')}
                     if defined('lesion_info') else None),
            quant_sidecar=json.loads(sidecar.read_text()),
            errors=list(value('anat_errors')) if defined('anat_errors') else [])
        return runtime


class _WriteT1wInputSpec(BaseInterfaceInputSpec):
    output_dir = Directory(mandatory=True, desc='derivative dataset root')
    bids_dir = Directory(exists=True, mandatory=True, desc='raw BIDS dataset root')
    subject = traits.Str(mandatory=True, desc='subject label')
    t1w_file = File(exists=True, mandatory=True, desc='the raw T1w')
    sources = traits.List(traits.Str, desc='sources outside the raw dataset (derivatives)')
    info = traits.Dict(mandatory=True, desc='how the T1w was processed')
    errors = traits.List(traits.Str, desc='failed or skipped T1w steps')
    t1w_preproc = File(exists=True, desc='bias-corrected T1w')
    brain_mask = File(exists=True, desc='brain mask')
    gm = File(exists=True, desc='GM probability')
    wm = File(exists=True, desc='WM probability')
    csf = File(exists=True, desc='CSF probability')
    dseg = File(exists=True, desc='hard segmentation')
    to_template = traits.List(desc='T1w → template chain (not written: the parts are)')
    xfm_affine = File(exists=True, desc='T1w → template affine (ITK text)')
    xfm_warp = File(exists=True, desc='T1w → template displacement field')
    xfm_inverse_warp = File(exists=True, desc='template → T1w field')
    t1w_template = File(exists=True, desc='T1w in template space')


class WriteT1wDerivatives(SimpleInterface):
    """Atomically write a subject's T1w-derived outputs: those of the steps that succeeded."""

    input_spec = _WriteT1wInputSpec
    output_spec = _WriteOutputSpec

    def _run_interface(self, runtime):
        keys = ('t1w_preproc', 'brain_mask', 'gm', 'wm', 'csf', 'dseg', 'xfm_affine',
                'xfm_warp', 'xfm_inverse_warp', 't1w_template')
        errors = list(self.inputs.errors) if isdefined(self.inputs.errors) else []
        self._results['out_files'] = write_subject_anat(
            output_dir=self.inputs.output_dir, bids_dir=self.inputs.bids_dir,
            subject=self.inputs.subject, t1w_file=self.inputs.t1w_file,
            sources=list(self.inputs.sources) if isdefined(self.inputs.sources) else None,
            info={**self.inputs.info, **({'AnatomyErrors': errors} if errors else {})},
            files={k: getattr(self.inputs, k) for k in keys
                   if isdefined(getattr(self.inputs, k))})
        return runtime
