"""Anatomy: T1w preprocessing, ASL ↔ T1w ↔ template, tissue fractions, spaces, regions, PVC.

Thin nipype faces of :mod:`bids_asl.registration.anat` (ANTs) and :mod:`bids_asl.quant`
(regions, partial-volume correction, resampling).
"""

from __future__ import annotations

import json
import os

import nibabel as nb
import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    isdefined,
    traits,
)

from bids_asl.io import images, templates
from bids_asl.quant import lesions, pvc, qc, regions, sessions
from bids_asl.quant.outliers import TISSUE_THRESHOLD
from bids_asl.quant.resample import sample_linear


def _reg():
    from bids_asl.registration import anat  # noqa: PLC0415 - imports ants (~3 s)

    return anat


def template_images():
    """Template T1w (brain), GM, WM, CSF and brain mask on the 2 mm template grid."""
    shape, affine = templates.template_grid()
    out = {}
    for kind in ('t1', 'gm', 'wm'):
        out[kind] = sample_linear(*templates.load_template(kind), shape, affine)
    out['mask'] = (out['t1'] > 0.05 * out['t1'].max()).astype(np.float64)
    out['csf'] = np.clip(out['mask'] - out['gm'] - out['wm'], 0.0, 1.0)
    return out, shape, affine


def _save(data, reference, cwd, name, dtype=np.float32) -> str:
    return str(images.save_work(data, reference, os.path.join(cwd, name), dtype=dtype))


def _template_reference() -> nb.Nifti1Image:
    shape, affine = templates.template_grid()
    return nb.Nifti1Image(np.zeros(shape, dtype=np.float32), affine)


# --- subject level: the T1w -------------------------------------------------------------

class _T1wInputSpec(BaseInterfaceInputSpec):
    t1w_file = File(exists=True, mandatory=True, desc='the subject\'s T1w image')


class _T1wOutputSpec(TraitedSpec):
    t1w_preproc = File(exists=True, desc='bias-corrected T1w')
    brain_mask = File(exists=True, desc='brain mask')
    gm = File(exists=True, desc='GM probability')
    wm = File(exists=True, desc='WM probability')
    csf = File(exists=True, desc='CSF probability')
    dseg = File(exists=True, desc='hard segmentation (1 GM, 2 WM, 3 CSF)')
    to_template = traits.List(File(exists=True), desc='T1w → template chain [warp, affine]')
    xfm_affine = File(exists=True, desc='T1w → template affine part (ITK text)')
    xfm_warp = File(exists=True, desc='T1w → template displacement field')
    xfm_inverse_warp = File(exists=True, desc='template → T1w displacement field')
    t1w_template = File(exists=True, desc='T1w resampled in the template (2 mm)')
    info = traits.Dict(desc='how each step was done')


class T1wPreproc(SimpleInterface):
    """Brain mask, N4 bias correction, GM/WM/CSF (Atropos), nonlinear registration to the
    symmetric MNI 2009a template."""

    input_spec = _T1wInputSpec
    output_spec = _T1wOutputSpec

    def _run_interface(self, runtime):
        reg = _reg()
        t1w, img = images.load(self.inputs.t1w_file)
        if t1w.ndim == 4:
            t1w = t1w[..., 0]
        tpl, shape, tpl_affine = template_images()
        mask, how = reg.brain_mask(t1w, img.affine, tpl['t1'], tpl_affine)
        corrected = reg.bias_correct(t1w, img.affine, mask)
        probs = reg.segment(corrected, img.affine, mask)
        xfm = reg.register_to_template(corrected * mask, img.affine, tpl['t1'], tpl_affine,
                                       os.path.join(runtime.cwd, 'xfm'))
        cwd, out = runtime.cwd, self._results
        out['t1w_preproc'] = _save(corrected, img, cwd, 't1w_preproc.nii.gz')
        out['brain_mask'] = _save(mask, img, cwd, 'brain_mask.nii.gz', np.uint8)
        for k, name in enumerate(('csf', 'gm', 'wm')):
            out[name] = _save(probs[..., k], img, cwd, f'{name}.nii.gz')
        dseg = np.choose(np.argmax(probs, axis=-1), [3, 1, 2]) * mask
        out['dseg'] = _save(dseg, img, cwd, 'dseg.nii.gz', np.uint8)
        out['to_template'] = xfm['forward']
        out['xfm_affine'], out['xfm_warp'] = xfm['affine_txt'], xfm['warp']
        out['xfm_inverse_warp'] = xfm['inverse_warp']
        out['t1w_template'] = _save(xfm['warped'], _template_reference(), cwd, 't1w_tpl.nii.gz')
        out['info'] = {'BrainExtraction': how, 'BiasCorrection': 'ANTs N4 (shrink 4)',
                       'Segmentation': 'ANTs Atropos, k-means init (3 classes), MRF 0.1',
                       'TemplateRegistration': 'ANTs rigid+affine (Mattes MI) then SyN (CC) '
                                               f'to {templates.TEMPLATE} at 2 mm'}
        return runtime


# --- run level: the ASL reference ---------------------------------------------------------

class _AslAnatInputSpec(BaseInterfaceInputSpec):
    reference = File(exists=True, mandatory=True, desc='ASL reference (M0 or mean control)')
    mask = File(exists=True, mandatory=True, desc='ASL brain mask')
    t1w_preproc = File(exists=True, desc='bias-corrected T1w (absent: template only)')
    t1w_mask = File(exists=True, desc='T1w brain mask')
    gm = File(exists=True, desc='T1w GM probability')
    wm = File(exists=True, desc='T1w WM probability')
    csf = File(exists=True, desc='T1w CSF probability')
    to_template = traits.List(File(exists=True), desc='T1w → template transform chain')


class _AslAnatOutputSpec(TraitedSpec):
    gm = File(exists=True, desc='GM fraction on the ASL grid')
    wm = File(exists=True, desc='WM fraction on the ASL grid')
    csf = File(exists=True, desc='CSF fraction on the ASL grid')
    to_anat = File(exists=True, desc='ASL → T1w (or → template) affine, ITK .mat')
    to_anat_txt = File(exists=True, desc='the same transform as ITK text')
    transforms = traits.List(desc='ASL → template transform chain (ANTs order)')
    reference_anat = File(exists=True, desc='ASL reference resampled on the T1w grid')
    info = traits.Dict(desc='anatomical reference and registration method')


def _pseudo_m0(tpl: dict) -> np.ndarray:
    """A template image with M0-like contrast (proton density: CSF > GM > WM) from the
    template's tissue probabilities; the target when no T1w exists."""
    return 1.0 * tpl['csf'] + 0.85 * tpl['gm'] + 0.7 * tpl['wm']


class AslToAnat(SimpleInterface):
    """Register the ASL reference to the T1w (rigid, mutual information) — or, without a
    T1w, to the template (affine) — and bring the tissue probabilities to the ASL grid as
    partial-volume fractions."""

    input_spec = _AslAnatInputSpec
    output_spec = _AslAnatOutputSpec

    def _run_interface(self, runtime):
        reg, cwd, out = _reg(), runtime.cwd, self._results
        ref, img = images.load(self.inputs.reference)
        ref = ref * (images.load(self.inputs.mask)[0] > 0)
        if isdefined(self.inputs.t1w_preproc):
            t1w, t1img = images.load(self.inputs.t1w_preproc)
            brain = images.load(self.inputs.t1w_mask)[0] > 0
            probs = [images.load(getattr(self.inputs, k))[0] for k in ('gm', 'wm', 'csf')]
            mat, _ = reg.register_linear(ref, img.affine, t1w * brain, t1img.affine,
                                         os.path.join(cwd, 'asl2anat.mat'), fixed_mask=brain,
                                         fixed_spacing=reg.ASL_TARGET_SPACING)
            out['transforms'] = [*self.inputs.to_template, mat]
            anat_affine, anat_ref = t1img.affine, t1img
            info = {'AnatomicalReference': 'T1w',
                    'Registration': 'ASL reference → T1w brain (resampled to 2 mm): ANTs '
                                    'rigid, Mattes MI'}
        else:
            tpl, shape, anat_affine = template_images()
            mat, _ = reg.register_linear(ref, img.affine, _pseudo_m0(tpl), anat_affine,
                                         os.path.join(cwd, 'asl2anat.mat'),
                                         settings=reg.ASL_AFFINE, fixed_mask=tpl['mask'] > 0)
            probs = [tpl['gm'], tpl['wm'], tpl['csf']]
            out['transforms'] = [mat]
            anat_ref = _template_reference()
            info = {'AnatomicalReference': 'none (no T1w): the ASL reference was registered '
                                           'affinely to the template; tissue fractions are '
                                           'the template priors',
                    'Registration': 'ASL reference → pseudo-M0 template (CSF 1.0, GM 0.85, WM '
                                    '0.7 × probabilities): ANTs affine, Mattes MI'}
        fractions = reg.probabilities_to_grid(probs, anat_affine, ref.shape, img.affine, [mat],
                                              [True])
        for name, data in zip(('gm', 'wm', 'csf'), fractions, strict=True):
            out[name] = _save(data, img, cwd, f'{name}_asl.nii.gz')
        out['to_anat'], out['to_anat_txt'] = mat, mat.replace('.mat', '.txt')
        on_anat = reg.apply_transforms(ref, img.affine, anat_ref.shape, anat_affine, [mat])
        out['reference_anat'] = _save(on_anat, anat_ref, cwd, 'reference_anat.nii.gz')
        out['info'] = info
        return runtime


# --- spaces -----------------------------------------------------------------------------

class _ProjectInputSpec(BaseInterfaceInputSpec):
    cbf = File(exists=True, mandatory=True, desc='CBF on the ASL grid')
    att = File(exists=True, desc='ATT on the ASL grid (multi-delay)')
    mask = File(exists=True, mandatory=True, desc='ASL brain mask')
    transforms = traits.List(mandatory=True, desc='ASL → template transform chain')
    to_anat = File(exists=True, mandatory=True, desc='ASL → T1w (or template) affine')
    t1w_preproc = File(exists=True, desc='T1w (the T1w-space grid; absent: no T1w space)')
    gm = File(exists=True, desc='GM fraction on the ASL grid (also taken to the template)')
    se = File(exists=True, desc='standard error of CBF on the ASL grid')


class _ProjectOutputSpec(TraitedSpec):
    cbf_t1w = File(exists=True, desc='CBF in T1w space')
    att_t1w = File(exists=True, desc='ATT in T1w space')
    cbf_template = File(exists=True, desc='CBF in template space')
    att_template = File(exists=True, desc='ATT in template space')
    mask_template = File(exists=True, desc='ASL brain mask in template space')
    gm_template = File(exists=True, desc='GM fraction in template space')
    se_template = File(exists=True, desc='standard error of CBF in template space')
    se_t1w = File(exists=True, desc='standard error of CBF in T1w space')


def _mask_weight(reg, mask, img, shape, affine, transforms) -> np.ndarray:
    """The brain mask carried to the target grid (linear): the weights of mask-normalised
    interpolation."""
    return reg.apply_transforms(mask.astype(np.float64), img.affine, shape, affine, transforms)


def _warp_masked(reg, data, mask, weight, img, shape, affine, transforms) -> np.ndarray:
    """Mask-normalised linear interpolation: values near the mask edge are not pulled toward
    the zeros outside it; 0 where the carried mask is below one half."""
    num = reg.apply_transforms(data * mask, img.affine, shape, affine, transforms)
    inside = weight > 0.5
    with np.errstate(divide='ignore', invalid='ignore'):
        return np.where(inside, num / np.where(inside, weight, 1.0), 0.0)


class ProjectMaps(SimpleInterface):
    """CBF (and ATT) in T1w space and in the template (2 mm grid)."""

    input_spec = _ProjectInputSpec
    output_spec = _ProjectOutputSpec

    def _run_interface(self, runtime):
        reg, cwd, out = _reg(), runtime.cwd, self._results
        mask, img = images.load(self.inputs.mask)
        mask = mask > 0
        maps = {'cbf': self.inputs.cbf}
        if isdefined(self.inputs.att):
            maps['att'] = self.inputs.att
        if isdefined(self.inputs.gm):
            maps['gm'] = self.inputs.gm
        if isdefined(self.inputs.se):
            maps['se'] = self.inputs.se
        data = {name: images.load(path)[0] for name, path in maps.items()}
        targets = [('template', _template_reference(), list(self.inputs.transforms))]
        if isdefined(self.inputs.t1w_preproc):
            targets.append(('t1w', nb.load(self.inputs.t1w_preproc), [self.inputs.to_anat]))
        for space, ref, chain in targets:
            weight = _mask_weight(reg, mask, img, ref.shape, ref.affine, chain)
            for name, values in data.items():
                if name == 'gm' and space != 'template':
                    continue
                warped = _warp_masked(reg, values, mask, weight, img, ref.shape, ref.affine,
                                      chain)
                out[f'{name}_{space}'] = _save(warped, ref, cwd, f'{name}_{space}.nii.gz')
            if space == 'template':
                out['mask_template'] = _save(weight > 0.5, ref, cwd, 'mask_template.nii.gz',
                                             np.uint8)
        return runtime


# --- atlases, regions, tissue, PVC ---------------------------------------------------------

class _AtlasInputSpec(BaseInterfaceInputSpec):
    atlas = traits.Str(mandatory=True, desc='atlas name (io.templates.ATLASES)')


class _AtlasOutputSpec(TraitedSpec):
    labels = File(exists=True, desc='integer labels on the 2 mm template grid')
    names = File(exists=True, desc='JSON: label value → region label')


class PrepareAtlas(SimpleInterface):
    """An atlas on the template grid (nearest neighbour; probabilistic atlases as maximum-
    probability labels at 25 %)."""

    input_spec = _AtlasInputSpec
    output_spec = _AtlasOutputSpec

    def _run_interface(self, runtime):
        name = self.inputs.atlas
        on_grid = regions.labels_on_grid(
            *templates.load_atlas(name), *templates.template_grid(),
            probabilistic=templates.ATLASES[name].kind == 'prob',
            threshold=templates.MAXPROB_THRESHOLD)
        self._results['labels'] = _save(on_grid, _template_reference(),
                                        runtime.cwd, f'{name}.nii.gz', np.int32)
        names = os.path.join(runtime.cwd, f'{name}.json')
        with open(names, 'w', encoding='utf-8') as fobj:
            json.dump({str(k): v for k, v in templates.atlas_names(name).items()}, fobj)
        self._results['names'] = names
        return runtime


class _RegionsInputSpec(BaseInterfaceInputSpec):
    cbf_template = File(exists=True, mandatory=True, desc='CBF in template space')
    att_template = File(exists=True, desc='ATT in template space')
    mask_template = File(exists=True, mandatory=True, desc='ASL brain mask in template space')
    atlas_names = traits.List(traits.Str, desc='atlas names, in the order of the files')
    atlas_labels = traits.List(File(exists=True), desc='PrepareAtlas labels')
    atlas_json = traits.List(File(exists=True), desc='PrepareAtlas names')
    cbf = File(exists=True, mandatory=True, desc='CBF on the ASL grid')
    mask = File(exists=True, mandatory=True, desc='ASL brain mask')
    gm = File(exists=True, mandatory=True, desc='GM fraction on the ASL grid')
    wm = File(exists=True, mandatory=True, desc='WM fraction on the ASL grid')


class _RegionsOutputSpec(TraitedSpec):
    regional = traits.Dict(desc='{"<atlas>/<cbf|att>": rows as dicts}')
    tissue = traits.List(desc='GM/WM/brain rows as dicts')


def _rows(rows) -> list[dict]:
    from dataclasses import asdict  # noqa: PLC0415

    return [{k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(r).items()}
            for r in rows]


class RegionalStats(SimpleInterface):
    """Per-atlas regional tables (template space) and the GM/WM/brain table (ASL grid)."""

    input_spec = _RegionsInputSpec
    output_spec = _RegionsOutputSpec

    def _run_interface(self, runtime):
        valid, ref = images.load(self.inputs.mask_template)
        hemi = regions.hemisphere_map(valid.shape, ref.affine)
        maps = {'cbf': images.load(self.inputs.cbf_template)[0]}
        if isdefined(self.inputs.att_template):
            maps['att'] = images.load(self.inputs.att_template)[0]
        tables = {}
        for name, labels_file, names_file in zip(self.inputs.atlas_names,
                                                 self.inputs.atlas_labels,
                                                 self.inputs.atlas_json, strict=True):
            labels = images.load(labels_file)[0].astype(np.int32)
            with open(names_file, encoding='utf-8') as fobj:
                names = {int(k): v for k, v in json.load(fobj).items()}
            for measure, data in maps.items():
                tables[f'{name}/{measure}'] = _rows(
                    regions.regional_table(data, labels, names, hemi, valid > 0))
        cbf = images.load(self.inputs.cbf)[0]
        gm, wm = (images.load(getattr(self.inputs, k))[0] for k in ('gm', 'wm'))
        self._results['tissue'] = _rows(regions.tissue_table(
            # the QC table's GM/WM threshold (docs/qc.md), so the two tables never disagree
            cbf, gm, wm, images.load(self.inputs.mask)[0] > 0, TISSUE_THRESHOLD,
            TISSUE_THRESHOLD))
        self._results['regional'] = tables
        return runtime


class _PvcInputSpec(BaseInterfaceInputSpec):
    cbf = File(exists=True, mandatory=True, desc='CBF on the ASL grid')
    mask = File(exists=True, mandatory=True, desc='ASL brain mask')
    gm = File(exists=True, mandatory=True, desc='GM fraction on the ASL grid')
    wm = File(exists=True, mandatory=True, desc='WM fraction on the ASL grid')
    kernel = traits.Tuple(traits.Int(pvc.DEFAULT_KERNEL[0]), traits.Int(pvc.DEFAULT_KERNEL[1]),
                          traits.Int(pvc.DEFAULT_KERNEL[2]), usedefault=True,
                          desc='regression box (voxels)')


class _PvcOutputSpec(TraitedSpec):
    cbf_gm = File(exists=True, desc='partial-volume corrected GM CBF')
    cbf_wm = File(exists=True, desc='partial-volume corrected WM CBF')
    info = traits.Dict(desc='method and parameters')


class PartialVolumeCorrect(SimpleInterface):
    """Pure-GM and pure-WM CBF by local linear regression (Asllani 2008)."""

    input_spec = _PvcInputSpec
    output_spec = _PvcOutputSpec

    def _run_interface(self, runtime):
        cbf, img = images.load(self.inputs.cbf)
        gm, wm = (images.load(getattr(self.inputs, k))[0] for k in ('gm', 'wm'))
        mask = images.load(self.inputs.mask)[0] > 0
        y_gm, y_wm = pvc.pvc_linear_regression(cbf, gm, wm, mask, self.inputs.kernel)
        for key, data in (('cbf_gm', y_gm), ('cbf_wm', y_wm)):
            # no NaN in outputs: voxels without an estimate are 0, as outside the mask
            self._results[key] = _save(np.nan_to_num(data, nan=0.0), img, runtime.cwd,
                                       f'{key}.nii.gz')
        self._results['info'] = {
            'PartialVolumeCorrection': 'linear regression (Asllani et al. 2008, MRM 60:1362)',
            'RegressionKernelVoxels': list(self.inputs.kernel),
            'MinimumTissueFraction': pvc.MIN_PV,
            'NoEstimate': 'set to 0 (tissue fraction below the minimum, or a singular '
                          'neighbourhood)'}
        return runtime


# --- asymmetry ----------------------------------------------------------------------------

class _AsymInputSpec(BaseInterfaceInputSpec):
    cbf_template = File(exists=True, mandatory=True, desc='CBF in template space')
    mask_template = File(exists=True, mandatory=True, desc='ASL brain mask in template space')
    gm_template = File(exists=True, mandatory=True, desc='GM fraction in template space')
    options = traits.Dict(mandatory=True, desc='fwhm_mm, threshold, min_volume_mm3, gm')
    atlas_names = traits.List(traits.Str, desc='atlas names (the first names the peaks)')
    atlas_labels = traits.List(File(exists=True), desc='PrepareAtlas labels')
    atlas_json = traits.List(File(exists=True), desc='PrepareAtlas names')


class _AsymOutputSpec(TraitedSpec):
    asymmetry = File(exists=True, desc='voxelwise asymmetry index map (template space)')
    clusters = traits.List(desc='suprathreshold clusters as dicts')
    info = traits.Dict(desc='method and parameters')


def asymmetry_clusters(ai, affine, options, region_at=None) -> list[dict]:
    """Clusters of the left hemisphere's AI (the right one is its mirror with the sign
    flipped), described from the lower-perfused side."""
    hemi = regions.hemisphere_map(ai.shape, affine)
    voxel = float(abs(np.linalg.det(affine[:3, :3])))
    found = regions.clusters(ai, affine, options['threshold'],
                             min_voxels=int(np.ceil(options['min_volume_mm3'] / voxel)),
                             where=hemi < 0)
    rows = []
    for c in found:
        lower_left = c.peak < 0
        flip = np.array([1.0 if lower_left else -1.0, 1.0, 1.0])
        peak = np.asarray(c.peak_mm) * flip
        rows.append({'cluster': c.index, 'lower_side': 'left' if lower_left else 'right',
                     'n_voxels': c.n_voxels, 'volume_mm3': c.volume_mm3,
                     'peak_ai': c.peak, 'mean_ai': c.mean, 'peak_x': peak[0],
                     'peak_y': peak[1], 'peak_z': peak[2],
                     'region': region_at(peak) if region_at else 'n/a'})
    return rows


class Asymmetry(SimpleInterface):
    """Left/right asymmetry of CBF in the symmetric template: AI = 2 (L − R) / (L + R) in GM,
    optionally smoothed, and its clusters beyond a threshold."""

    input_spec = _AsymInputSpec
    output_spec = _AsymOutputSpec

    def _run_interface(self, runtime):
        from bids_asl.quant.resample import mirror_x  # noqa: PLC0415

        opts = self.inputs.options
        cbf, img = images.load(self.inputs.cbf_template)
        mask = images.load(self.inputs.mask_template)[0] > 0
        gm = images.load(self.inputs.gm_template)[0]
        voxel = np.sqrt((img.affine[:3, :3] ** 2).sum(axis=0))
        smoothed = qc.smooth_within(cbf, mask, opts['fwhm_mm'], voxel)
        valid = mask & (gm >= opts['gm'])
        ai = regions.asymmetry_map(smoothed, valid, lambda d: mirror_x(d, img.affine))
        self._results['asymmetry'] = _save(np.nan_to_num(ai, nan=0.0), img, runtime.cwd,
                                           'asymmetry.nii.gz')
        self._results['clusters'] = asymmetry_clusters(ai, img.affine, opts,
                                                       self._region_lookup(img.affine))
        self._results['info'] = {
            'AsymmetryIndex': 'AI = 2 (L - R) / (L + R), R = the mirror image about x = 0 of '
                              'the symmetric template; positive: left higher',
            'SmoothingFWHM': opts['fwhm_mm'], 'GreyMatterThreshold': opts['gm'],
            'ClusterThreshold': opts['threshold'], 'MinimumClusterVolume': opts['min_volume_mm3'],
            'OutsideGreyMatter': 'set to 0'}
        return runtime

    def _region_lookup(self, affine):
        if not (isdefined(self.inputs.atlas_labels) and self.inputs.atlas_labels):
            return None
        labels = images.load(self.inputs.atlas_labels[0])[0].astype(int)
        with open(self.inputs.atlas_json[0], encoding='utf-8') as fobj:
            names = {int(k): v for k, v in json.load(fobj).items()}
        return regions.region_lookup(labels, affine, names, self.inputs.atlas_names[0])


# --- lesions ------------------------------------------------------------------------------

class _LesionInputSpec(BaseInterfaceInputSpec):
    lesion_mask = File(exists=True, mandatory=True, desc='lesion mask (ASL or T1w grid)')
    space = traits.Enum('asl', 'T1w', mandatory=True, desc='grid of the lesion mask')
    cbf = File(exists=True, mandatory=True, desc='CBF on the ASL grid')
    mask = File(exists=True, mandatory=True, desc='ASL brain mask')
    wm = File(exists=True, mandatory=True, desc='WM fraction on the ASL grid')
    cbf_t1w = File(exists=True, desc='CBF in T1w space (space T1w)')
    t1w_mask = File(exists=True, desc='T1w brain mask (space T1w)')
    t1w_wm = File(exists=True, desc='T1w WM probability (space T1w)')


class _LesionOutputSpec(TraitedSpec):
    rows = traits.List(desc='lesion, ring and NAWM rows')
    info = traits.Dict(desc='definitions used')


class LesionStats(SimpleInterface):
    """CBF per lesion, in perilesional rings and in NAWM by distance from the lesions, on the
    grid of the lesion mask."""

    input_spec = _LesionInputSpec
    output_spec = _LesionOutputSpec

    def _run_interface(self, runtime):
        lesion, img = images.load(self.inputs.lesion_mask)
        if self.inputs.space == 'asl':
            cbf = images.load(self.inputs.cbf)[0]
            brain = images.load(self.inputs.mask)[0] > 0
            wm = images.load(self.inputs.wm)[0]
        else:
            cbf = images.load(self.inputs.cbf_t1w)[0]
            brain = (images.load(self.inputs.t1w_mask)[0] > 0) & (cbf != 0)
            wm = images.load(self.inputs.t1w_wm)[0]
        voxel = np.sqrt((img.affine[:3, :3] ** 2).sum(axis=0))
        self._results['rows'] = _rows(lesions.lesion_table(cbf, lesion > 0, brain, wm, voxel))
        self._results['info'] = {
            'LesionSpace': 'ASL grid' if self.inputs.space == 'asl' else 'T1w grid',
            'Lesions': '26-connected components of the mask within the brain, largest first',
            'RingsMM': [list(r) for r in lesions.DEFAULT_RINGS_MM],
            'NAWM': 'WM fraction >= 0.7 outside every lesion, by distance to the nearest',
            'NAWMBandsMM': [[lo, hi if np.isfinite(hi) else None]
                            for lo, hi in lesions.DEFAULT_NAWM_BANDS_MM]}
        return runtime


class _SeInputSpec(BaseInterfaceInputSpec):
    cbf_timeseries = File(exists=True, mandatory=True, desc='CBF of each ΔM volume (4-D)')


class _SeOutputSpec(TraitedSpec):
    se = File(exists=True, desc='standard error of the mean CBF (NaN written as 0)')


class CbfStandardError(SimpleInterface):
    """Voxelwise standard error of the mean CBF of a single-delay run (SD/√n over its ΔM
    volumes): the run's own noise estimate for session comparisons."""

    input_spec = _SeInputSpec
    output_spec = _SeOutputSpec

    def _run_interface(self, runtime):
        series, img = images.load_series(self.inputs.cbf_timeseries)
        se = sessions.standard_error(series)
        ref = nb.Nifti1Image(np.zeros(series.shape[:3], np.float32), img.affine)
        self._results['se'] = _save(np.nan_to_num(se, nan=0.0), ref, runtime.cwd, 'se.nii.gz')
        return runtime
