"""A run's link to the anatomy: ASL → T1w (or → template) registration, the tissue fractions on
the ASL grid, and CBF/ATT/SE carried to T1w and template space.

:class:`AslToAnat` needs only the ASL reference and mask (never the CBF), so the fractions can
feed the quantification itself; it always produces fractions, and says where they came from:

1. the T1w segmentation, through a rigid ASL → T1w registration (the subject's T1w steps all
   succeeded);
2. else the template priors, through an affine ASL → template registration (no T1w, or a T1w
   step failed, or the ASL → T1w registration failed);
3. else the template priors placed by the centres of mass of the two brain masks (every
   registration failed: no template space then).
"""

from __future__ import annotations

import os

import nibabel as nb
import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    isdefined,
    traits,
)

from bids_asl.interfaces.steps import _WRITE_ERRNOS, OptionalStep, StepOutputSpec, _reg, save
from bids_asl.io import images, templates
from bids_asl.quant import sessions
from bids_asl.quant.resample import sample_linear

#: The subject-level inputs of the T1w path.
T1W_INPUTS = ('t1w_preproc', 't1w_mask', 'gm', 'wm', 'csf', 'to_template')
NO_T1W = ('none (no T1w): the ASL reference was registered affinely to the template; tissue '
          'fractions are the template priors')
TEMPLATE_REGISTRATION = ('ASL reference → pseudo-M0 template (CSF 1.0, GM 0.85, WM 0.7 × '
                         'probabilities): ANTs affine, Mattes MI')
FRACTIONS_T1W = 'T1w segmentation (ANTs Atropos), carried to the ASL grid'
FRACTIONS_TEMPLATE = (f'template priors ({templates.TEMPLATE}), carried to the ASL grid by the '
                      'affine ASL → template registration')
FRACTIONS_CENTROID = (f'template priors ({templates.TEMPLATE}) placed by the centres of mass of '
                      'the ASL and template brain masks (every registration failed)')


class _AslAnatInputSpec(BaseInterfaceInputSpec):
    reference = File(exists=True, mandatory=True, desc='ASL reference (M0 or mean control)')
    mask = File(exists=True, mandatory=True, desc='ASL brain mask')
    t1w_preproc = File(exists=True, desc='bias-corrected T1w (absent: template only)')
    t1w_mask = File(exists=True, desc='T1w brain mask')
    gm = File(exists=True, desc='T1w GM probability')
    wm = File(exists=True, desc='T1w WM probability')
    csf = File(exists=True, desc='T1w CSF probability')
    to_template = traits.List(File(exists=True), desc='T1w → template transform chain')
    t1w_errors = traits.List(traits.Str, desc="the subject's failed T1w steps (T1wOutcome)")
    t1w_tissue_source = traits.Str(desc='where the T1w tissue probabilities come from')


class _AslAnatOutputSpec(StepOutputSpec):
    gm = File(exists=True, desc='GM fraction on the ASL grid')
    wm = File(exists=True, desc='WM fraction on the ASL grid')
    csf = File(exists=True, desc='CSF fraction on the ASL grid')
    to_anat = File(exists=True, desc='ASL → T1w (or → template) affine, ITK .mat')
    to_anat_txt = File(exists=True, desc='the same transform as ITK text')
    transforms = traits.List(desc='ASL → template transform chain (ANTs order)')
    reference_anat = File(exists=True, desc='ASL reference resampled on the T1w grid')
    t1w_reference = File(exists=True, desc='the T1w whose grid is T1w space (T1w path only)')
    info = traits.Dict(desc='anatomical reference, registration and tissue-fraction source')
    errors = traits.List(traits.Str, desc='every failure behind a fallback, in order')


def pseudo_m0(tpl: dict) -> np.ndarray:
    """A template image with M0-like contrast (proton density: CSF > GM > WM) from the
    template's tissue probabilities; the target when no T1w exists."""
    return 1.0 * tpl['csf'] + 0.85 * tpl['gm'] + 0.7 * tpl['wm']


def _reraise_write_errors(exc: Exception) -> None:
    if isinstance(exc, OSError) and exc.errno in _WRITE_ERRNOS:
        raise exc


def _message(step: str, exc: Exception) -> str:
    return f'{step}: {type(exc).__name__}: {" ".join(str(exc).split()) or "no message"}'


def _centroid(mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
    ijk = np.argwhere(mask).mean(axis=0)
    return affine[:3, :3] @ ijk + affine[:3, 3]


class AslToAnat(SimpleInterface):
    """Register the ASL reference to the T1w (rigid, mutual information) — or, without a
    usable T1w, to the template (affine) — and bring the tissue probabilities to the ASL grid
    as partial-volume fractions.  Never raises for anatomical reasons: each failure is recorded
    in ``errors`` and the next way of getting fractions is taken (module docstring)."""

    input_spec = _AslAnatInputSpec
    output_spec = _AslAnatOutputSpec

    def _run_interface(self, runtime):
        ref, img = images.load(self.inputs.reference)
        brain = images.load(self.inputs.mask)[0] > 0
        ref = ref * brain
        errors = list(self.inputs.t1w_errors) if isdefined(self.inputs.t1w_errors) else []
        ready = all(isdefined(getattr(self.inputs, k)) for k in T1W_INPUTS) and not errors
        done = False
        if ready:
            try:
                self._t1w_path(ref, img, runtime.cwd)
                done = True
            except Exception as exc:  # noqa: BLE001 - fall back to the template
                _reraise_write_errors(exc)
                errors.append(_message('ASL to T1w registration', exc))
        if not done:
            try:
                self._template_path(ref, img, runtime.cwd, errors)
                done = True
            except Exception as exc:  # noqa: BLE001 - fall back to the centres of mass
                _reraise_write_errors(exc)
                errors.append(_message('ASL to template registration', exc))
        if not done:
            self._centroid_path(brain, img, runtime.cwd, errors)
        self._results['errors'] = errors
        self._results['error'] = errors[0] if errors else ''
        return runtime

    def _fractions(self, probs, affine, ref, img, mat, cwd) -> None:
        fractions = _reg().probabilities_to_grid(probs, affine, ref.shape, img.affine, [mat],
                                                 [True])
        for name, data in zip(('gm', 'wm', 'csf'), fractions, strict=True):
            self._results[name] = save(data, img, cwd, f'{name}_asl.nii.gz')

    def _t1w_path(self, ref, img, cwd) -> None:
        reg, out = _reg(), self._results
        t1w, t1img = images.load(self.inputs.t1w_preproc)
        brain = images.load(self.inputs.t1w_mask)[0] > 0
        probs = [images.load(getattr(self.inputs, k))[0] for k in ('gm', 'wm', 'csf')]
        mat, _ = reg.register_linear(ref, img.affine, t1w * brain, t1img.affine,
                                     os.path.join(cwd, 'asl2anat.mat'), fixed_mask=brain,
                                     fixed_spacing=reg.ASL_TARGET_SPACING)
        self._fractions(probs, t1img.affine, ref, img, mat, cwd)
        on_anat = reg.apply_transforms(ref, img.affine, t1img.shape, t1img.affine, [mat])
        out['reference_anat'] = save(on_anat, t1img, cwd, 'reference_anat.nii.gz')
        out.update(to_anat=mat, to_anat_txt=mat.replace('.mat', '.txt'),
                   transforms=[*self.inputs.to_template, mat],
                   t1w_reference=self.inputs.t1w_preproc)
        out['info'] = {'AnatomicalReference': 'T1w',
                       'Registration': 'ASL reference → T1w brain (resampled to 2 mm): ANTs '
                                       'rigid, Mattes MI',
                       'TissueFractionSource': self.inputs.t1w_tissue_source
                       if isdefined(self.inputs.t1w_tissue_source) else FRACTIONS_T1W}

    def _template_path(self, ref, img, cwd, errors) -> None:
        reg, out = _reg(), self._results
        tpl, _, tpl_affine = templates.template_images()
        mat, _ = reg.register_linear(ref, img.affine, pseudo_m0(tpl), tpl_affine,
                                     os.path.join(cwd, 'asl2anat.mat'),
                                     settings=reg.ASL_AFFINE, fixed_mask=tpl['mask'] > 0)
        self._fractions([tpl['gm'], tpl['wm'], tpl['csf']], tpl_affine, ref, img, mat, cwd)
        anat_ref = templates.template_reference()
        on_anat = reg.apply_transforms(ref, img.affine, anat_ref.shape, tpl_affine, [mat])
        out['reference_anat'] = save(on_anat, anat_ref, cwd, 'reference_anat.nii.gz')
        out.update(to_anat=mat, to_anat_txt=mat.replace('.mat', '.txt'), transforms=[mat])
        reference = NO_T1W if not errors else (
            f'none (the T1w could not be used: {errors[0]}): the ASL reference was registered '
            'affinely to the template; tissue fractions are the template priors')
        out['info'] = {'AnatomicalReference': reference, 'Registration': TEMPLATE_REGISTRATION,
                       'TissueFractionSource': FRACTIONS_TEMPLATE}

    def _centroid_path(self, brain, img, cwd, errors) -> None:
        """Template priors moved so that the centres of mass of the two brain masks meet: crude,
        but the run keeps tissue fractions (QC, tissue T1) when every registration failed."""
        from scipy import ndimage  # noqa: PLC0415

        tpl, _, tpl_affine = templates.template_images()
        shift = np.eye(4)
        shift[:3, 3] = _centroid(tpl['mask'] > 0, tpl_affine) - _centroid(brain, img.affine)
        grid = shift @ img.affine  # ASL voxel → template world
        sigma = _reg().pv_sigmas(np.eye(4), np.linalg.inv(tpl_affine) @ grid)
        for name in ('gm', 'wm', 'csf'):
            smooth = ndimage.gaussian_filter(np.asarray(tpl[name], dtype=np.float64),
                                             sigma=sigma, mode='constant')
            data = np.clip(sample_linear(smooth, tpl_affine, brain.shape, grid), 0.0, 1.0)
            self._results[name] = save(data, img, cwd, f'{name}_asl.nii.gz')
        self._results['info'] = {
            'AnatomicalReference': f'none (every registration failed: {errors[-1]}): no '
                                   'template space',
            'Registration': 'none', 'TissueFractionSource': FRACTIONS_CENTROID}


# --- spaces -----------------------------------------------------------------------------

class _ProjectInputSpec(BaseInterfaceInputSpec):
    cbf = File(exists=True, desc='CBF on the ASL grid')
    att = File(exists=True, desc='ATT on the ASL grid (multi-delay)')
    mask = File(exists=True, desc='ASL brain mask')
    transforms = traits.List(desc='ASL → template transform chain')
    to_anat = File(exists=True, desc='ASL → T1w (or template) affine')
    t1w_preproc = File(exists=True, desc='T1w (the T1w-space grid; absent: no T1w space)')
    gm = File(exists=True, desc='GM fraction on the ASL grid (also taken to the template)')
    se = File(exists=True, desc='standard error of CBF on the ASL grid')
    mni2009c_xfm = File(exists=True, desc='T1w → MNI152NLin2009cAsym (anatomical derivatives)')


class _ProjectOutputSpec(StepOutputSpec):
    cbf_t1w = File(exists=True, desc='CBF in T1w space')
    att_t1w = File(exists=True, desc='ATT in T1w space')
    cbf_template = File(exists=True, desc='CBF in template space')
    att_template = File(exists=True, desc='ATT in template space')
    mask_template = File(exists=True, desc='ASL brain mask in template space')
    gm_template = File(exists=True, desc='GM fraction in template space')
    se_template = File(exists=True, desc='standard error of CBF in template space')
    se_t1w = File(exists=True, desc='standard error of CBF in T1w space')
    cbf_mni2009c = File(exists=True, desc='CBF in MNI152NLin2009cAsym space')
    att_mni2009c = File(exists=True, desc='ATT in MNI152NLin2009cAsym space')
    mask_mni2009c = File(exists=True, desc='ASL brain mask in MNI152NLin2009cAsym space')


def _warp_masked(reg, data, mask, weight, img, shape, affine, transforms) -> np.ndarray:
    """Mask-normalised linear interpolation: values near the mask edge are not pulled toward
    the zeros outside it; 0 where the carried mask is below one half."""
    num = reg.apply_transforms(data * mask, img.affine, shape, affine, transforms)
    inside = weight > 0.5
    with np.errstate(divide='ignore', invalid='ignore'):
        return np.where(inside, num / np.where(inside, weight, 1.0), 0.0)


class ProjectMaps(OptionalStep):
    """CBF (and ATT, SE, GM) in T1w space and in the template (2 mm grid); with anatomical
    derivatives that hold a T1w → MNI152NLin2009cAsym transform, CBF and ATT in that space too
    (:func:`bids_asl.registration.anat.transform_grid`)."""

    input_spec = _ProjectInputSpec
    output_spec = _ProjectOutputSpec
    step = 'CBF to T1w/template space'
    requires = ('cbf', 'mask', 'transforms', 'to_anat')

    def _run_step(self, runtime):
        reg, cwd, out = _reg(), runtime.cwd, self._results
        mask, img = images.load(self.inputs.mask)
        mask = mask > 0
        maps = {'cbf': self.inputs.cbf}
        for name in ('att', 'gm', 'se'):
            if isdefined(getattr(self.inputs, name)):
                maps[name] = getattr(self.inputs, name)
        data = {name: images.load(path)[0] for name, path in maps.items()}
        targets = [('template', templates.template_reference(), list(self.inputs.transforms))]
        if isdefined(self.inputs.t1w_preproc):
            targets.append(('t1w', nb.load(self.inputs.t1w_preproc), [self.inputs.to_anat]))
            if isdefined(self.inputs.mni2009c_xfm):
                shape, affine = reg.transform_grid(self.inputs.mni2009c_xfm)
                targets.append(('mni2009c', nb.Nifti1Image(np.zeros(shape, np.float32), affine),
                                [self.inputs.mni2009c_xfm, self.inputs.to_anat]))
        for space, ref, chain in targets:
            # the brain mask carried to the target grid: the weights of mask-normalised
            # interpolation
            weight = reg.apply_transforms(mask.astype(np.float64), img.affine, ref.shape,
                                          ref.affine, chain)
            for name, values in data.items():
                if (name == 'gm' and space != 'template') or (name in ('gm', 'se')
                                                              and space == 'mni2009c'):
                    continue
                warped = _warp_masked(reg, values, mask, weight, img, ref.shape, ref.affine,
                                      chain)
                out[f'{name}_{space}'] = save(warped, ref, cwd, f'{name}_{space}.nii.gz')
            if space in ('template', 'mni2009c'):
                out[f'mask_{space}'] = save(weight > 0.5, ref, cwd, f'mask_{space}.nii.gz',
                                            np.uint8)


class _SeInputSpec(BaseInterfaceInputSpec):
    cbf_timeseries = File(exists=True, desc='CBF of each ΔM volume (4-D)')


class _SeOutputSpec(StepOutputSpec):
    se = File(exists=True, desc='standard error of the mean CBF (NaN written as 0)')


class CbfStandardError(OptionalStep):
    """Voxelwise standard error of the mean CBF of a single-delay run (SD/√n over its ΔM
    volumes): the run's own noise estimate for session comparisons."""

    input_spec = _SeInputSpec
    output_spec = _SeOutputSpec
    step = 'CBF standard error'
    requires = ('cbf_timeseries',)

    def _run_step(self, runtime):
        series, img = images.load_series(self.inputs.cbf_timeseries)
        se = sessions.standard_error(series)
        ref = nb.Nifti1Image(np.zeros(series.shape[:3], np.float32), img.affine)
        self._results['se'] = save(np.nan_to_num(se, nan=0.0), ref, runtime.cwd, 'se.nii.gz')
