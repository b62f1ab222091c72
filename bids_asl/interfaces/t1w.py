"""The subject's T1w, one step per node: brain mask, N4 bias correction, GM/WM/CSF segmentation
(Atropos) and nonlinear registration to the template (SyN).

Every step is an :class:`~bids_asl.interfaces.steps.OptionalStep`: a failure names its step in
``error`` and leaves the step's outputs undefined, and :class:`T1wOutcome` gathers the errors so
that each run can fall back to the template path (``AslToAnat``).  Separate nodes also let the
cache keep what succeeded.
"""

from __future__ import annotations

import os

import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    isdefined,
    traits,
)

from bids_asl.interfaces.steps import OptionalStep, StepOutputSpec, _reg, save
from bids_asl.io import images, templates

#: How each step is done (the sidecars of the T1w outputs).
N4_INFO = 'ANTs N4 (shrink 4)'
SEGMENTATION_INFO = 'ANTs Atropos, k-means init (3 classes), MRF 0.1'
#: Where the T1w tissue probabilities come from (the ASL-grid fractions' TissueFractionSource).
TISSUE_SOURCE = {'bids-asl': 'T1w segmentation (ANTs Atropos), carried to the ASL grid',
                 'derivatives': 'T1w tissue probabilities of --anat-derivatives, carried to the '
                                'ASL grid'}
REGISTRATION_INFO = (f'ANTs rigid+affine (Mattes MI) then SyN (CC) to {templates.TEMPLATE} at '
                     '2 mm')


def _load_t1w(path) -> tuple[np.ndarray, object]:
    t1w, img = images.load(path)
    return (t1w[..., 0] if t1w.ndim == 4 else t1w), img


class _MaskInputSpec(BaseInterfaceInputSpec):
    t1w_file = File(exists=True, desc="the subject's T1w image")


class _MaskOutputSpec(StepOutputSpec):
    brain_mask = File(exists=True, desc='brain mask')
    how = traits.Str(desc='how the mask was found')


class T1wBrainMask(OptionalStep):
    """Brain mask: the nonzero voxels of a skull-stripped T1w, else the template's brain carried
    back by an affine registration of the head."""

    input_spec = _MaskInputSpec
    output_spec = _MaskOutputSpec
    step = 'T1w brain mask'
    requires = ('t1w_file',)

    def _run_step(self, runtime):
        t1w, img = _load_t1w(self.inputs.t1w_file)
        tpl, _, tpl_affine = templates.template_images()
        mask, how = _reg().brain_mask(t1w, img.affine, tpl['t1'], tpl_affine)
        self._results['brain_mask'] = save(mask, img, runtime.cwd, 'brain_mask.nii.gz',
                                           np.uint8)
        self._results['how'] = how


class _N4InputSpec(BaseInterfaceInputSpec):
    t1w_file = File(exists=True, desc="the subject's T1w image")
    brain_mask = File(exists=True, desc='brain mask')


class _N4OutputSpec(StepOutputSpec):
    t1w_preproc = File(exists=True, desc='bias-corrected T1w')


class T1wBiasCorrect(OptionalStep):
    """N4 bias-field correction within the brain mask."""

    input_spec = _N4InputSpec
    output_spec = _N4OutputSpec
    step = 'T1w bias correction (N4)'
    requires = ('t1w_file', 'brain_mask')

    def _run_step(self, runtime):
        t1w, img = _load_t1w(self.inputs.t1w_file)
        mask = images.load(self.inputs.brain_mask)[0] > 0
        corrected = _reg().bias_correct(t1w, img.affine, mask)
        self._results['t1w_preproc'] = save(corrected, img, runtime.cwd, 't1w_preproc.nii.gz')


class _SegmentInputSpec(BaseInterfaceInputSpec):
    t1w_preproc = File(exists=True, desc='bias-corrected T1w')
    brain_mask = File(exists=True, desc='brain mask')


class _SegmentOutputSpec(StepOutputSpec):
    gm = File(exists=True, desc='GM probability')
    wm = File(exists=True, desc='WM probability')
    csf = File(exists=True, desc='CSF probability')
    dseg = File(exists=True, desc='hard segmentation (1 GM, 2 WM, 3 CSF)')


class T1wSegment(OptionalStep):
    """GM/WM/CSF probabilities by Atropos, and the hard segmentation."""

    input_spec = _SegmentInputSpec
    output_spec = _SegmentOutputSpec
    step = 'T1w segmentation (Atropos)'
    requires = ('t1w_preproc', 'brain_mask')

    def _run_step(self, runtime):
        corrected, img = images.load(self.inputs.t1w_preproc)
        mask = images.load(self.inputs.brain_mask)[0] > 0
        probs = _reg().segment(corrected, img.affine, mask)
        for k, name in enumerate(('csf', 'gm', 'wm')):
            self._results[name] = save(probs[..., k], img, runtime.cwd, f'{name}.nii.gz')
        # voxels left out of the segmentation (too bright for tissue) have no class
        dseg = np.choose(np.argmax(probs, axis=-1), [3, 1, 2]) * (mask & (probs.sum(-1) > 0))
        self._results['dseg'] = save(dseg, img, runtime.cwd, 'dseg.nii.gz', np.uint8)


class _RegisterInputSpec(BaseInterfaceInputSpec):
    t1w_preproc = File(exists=True, desc='bias-corrected T1w')
    brain_mask = File(exists=True, desc='brain mask')
    gm = File(exists=True, desc='GM probability: registration waits for a segmentation')


class _RegisterOutputSpec(StepOutputSpec):
    to_template = traits.List(File(exists=True), desc='T1w → template chain [warp, affine]')
    xfm_affine = File(exists=True, desc='T1w → template affine part (ITK text)')
    xfm_warp = File(exists=True, desc='T1w → template displacement field')
    xfm_inverse_warp = File(exists=True, desc='template → T1w displacement field')
    t1w_template = File(exists=True, desc='T1w resampled in the template (2 mm)')


class T1wToTemplate(OptionalStep):
    """Rigid + affine then SyN registration of the T1w brain to the symmetric MNI 2009a
    template (2 mm).  It follows the segmentation and is skipped when that failed: a T1w
    without tissue classes is not used, and SyN is the longest step."""

    input_spec = _RegisterInputSpec
    output_spec = _RegisterOutputSpec
    step = 'T1w to template registration (SyN)'
    requires = ('t1w_preproc', 'brain_mask', 'gm')

    def _run_step(self, runtime):
        corrected, img = images.load(self.inputs.t1w_preproc)
        mask = images.load(self.inputs.brain_mask)[0] > 0
        tpl, _, tpl_affine = templates.template_images()
        xfm = _reg().register_to_template(corrected * mask, img.affine, tpl['t1'], tpl_affine,
                                          os.path.join(runtime.cwd, 'xfm'))
        out = self._results
        out['to_template'] = xfm['forward']
        out['xfm_affine'], out['xfm_warp'] = xfm['affine_txt'], xfm['warp']
        out['xfm_inverse_warp'] = xfm['inverse_warp']
        out['t1w_template'] = save(xfm['warped'], templates.template_reference(), runtime.cwd,
                                   't1w_tpl.nii.gz')


class _OutcomeInputSpec(BaseInterfaceInputSpec):
    errors = traits.List(traits.Str, desc="each step's error ('' when it succeeded)")
    how = traits.Str(desc='how the brain mask was found (T1wBrainMask)')
    source = traits.Enum('bids-asl', 'derivatives', usedefault=True,
                         desc='who processed the T1w: bids-asl, or --anat-derivatives')
    info = traits.Dict(desc='how each step was done, when not done here (derivatives)')


class _OutcomeOutputSpec(StepOutputSpec):
    errors = traits.List(traits.Str, desc='the failed and skipped steps, in order')
    info = traits.Dict(desc='how each step was done (for the sidecars)')
    tissue_source = traits.Str(desc='where the T1w tissue probabilities come from')


class T1wOutcome(SimpleInterface):
    """The subject's T1w steps as one outcome: the errors of those that failed or were
    skipped (empty when the T1w can be used) and the description of each step."""

    input_spec = _OutcomeInputSpec
    output_spec = _OutcomeOutputSpec

    def _run_interface(self, runtime):
        errors = [e for e in self.inputs.errors if e] if isdefined(self.inputs.errors) else []
        info = dict(self.inputs.info) if isdefined(self.inputs.info) else {
            'BrainExtraction': self.inputs.how if isdefined(self.inputs.how) else 'failed',
            'BiasCorrection': N4_INFO, 'Segmentation': SEGMENTATION_INFO,
            'TemplateRegistration': REGISTRATION_INFO}
        self._results.update(errors=errors, info=info, error=errors[0] if errors else '',
                             tissue_source=TISSUE_SOURCE[self.inputs.source])
        return runtime


class _DerivInputSpec(BaseInterfaceInputSpec):
    t1w = File(exists=True, desc='their preprocessed T1w (desc-preproc_T1w)')
    brain_mask = File(exists=True, desc='their brain mask (desc-brain_mask)')
    gm = File(exists=True, desc='their GM probability (label-GM_probseg)')
    wm = File(exists=True, desc='their WM probability')
    csf = File(exists=True, desc='their CSF probability')


class _DerivOutputSpec(StepOutputSpec):
    t1w_preproc = File(exists=True, desc='preprocessed T1w')
    brain_mask = File(exists=True, desc='brain mask (0/1)')
    gm = File(exists=True, desc='GM probability')
    wm = File(exists=True, desc='WM probability')
    csf = File(exists=True, desc='CSF probability')
    dseg = File(exists=True, desc='hard segmentation (1 GM, 2 WM, 3 CSF), from the maps')


class LoadAnatDerivatives(OptionalStep):
    """The anatomy of another pipeline (fMRIPrep, sMRIPrep) in place of our T1w steps: the
    maps as float32 on their grid, the brain mask as 0/1, the hard segmentation from them."""

    input_spec = _DerivInputSpec
    output_spec = _DerivOutputSpec
    step = 'anatomical derivatives'
    requires = ('t1w', 'brain_mask', 'gm', 'wm', 'csf')

    def _run_step(self, runtime):
        t1w, img = _load_t1w(self.inputs.t1w)
        mask = images.load(self.inputs.brain_mask)[0] > 0
        out, cwd = self._results, runtime.cwd
        out['t1w_preproc'] = save(t1w, img, cwd, 't1w_preproc.nii.gz')
        out['brain_mask'] = save(mask, img, cwd, 'brain_mask.nii.gz', np.uint8)
        probs = []
        for name in ('csf', 'gm', 'wm'):
            data = np.clip(images.load(getattr(self.inputs, name))[0], 0.0, 1.0) * mask
            probs.append(data)
            out[name] = save(data, img, cwd, f'{name}.nii.gz')
        probs = np.stack(probs, axis=-1)
        dseg = np.choose(np.argmax(probs, axis=-1), [3, 1, 2]) * (mask & (probs.sum(-1) > 0))
        out['dseg'] = save(dseg, img, cwd, 'dseg.nii.gz', np.uint8)
