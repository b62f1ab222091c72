"""Atlases on the template grid, regional and tissue tables, partial-volume correction."""

from __future__ import annotations

import json
import os

import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    isdefined,
    traits,
)

from bids_asl.interfaces.steps import (
    OptionalStep,
    PartlyDone,
    StepOutputSpec,
    rows_as_dicts,
    save,
)
from bids_asl.io import images, templates
from bids_asl.quant import pvc, regions
from bids_asl.quant.outliers import TISSUE_THRESHOLD


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
        self._results['labels'] = save(on_grid, templates.template_reference(), runtime.cwd,
                                       f'{name}.nii.gz', np.int32)
        names = os.path.join(runtime.cwd, f'{name}.json')
        with open(names, 'w', encoding='utf-8') as fobj:
            json.dump({str(k): v for k, v in templates.atlas_names(name).items()}, fobj)
        self._results['names'] = names
        return runtime


def read_atlas_names(path) -> dict[int, str]:
    """A PrepareAtlas ``names`` file: label value → region label."""
    with open(path, encoding='utf-8') as fobj:
        return {int(k): v for k, v in json.load(fobj).items()}


class _RegionsInputSpec(BaseInterfaceInputSpec):
    cbf_template = File(exists=True, desc='CBF in template space')
    att_template = File(exists=True, desc='ATT in template space')
    mask_template = File(exists=True, desc='ASL brain mask in template space')
    atlas_names = traits.List(traits.Str, desc='atlas names, in the order of the files')
    atlas_labels = traits.List(File(exists=True), desc='PrepareAtlas labels')
    atlas_json = traits.List(File(exists=True), desc='PrepareAtlas names')
    cbf = File(exists=True, desc='CBF on the ASL grid')
    mask = File(exists=True, desc='ASL brain mask')
    gm = File(exists=True, desc='GM fraction on the ASL grid')
    wm = File(exists=True, desc='WM fraction on the ASL grid')


class _RegionsOutputSpec(StepOutputSpec):
    regional = traits.Dict(desc='{"<atlas>/<cbf|att>": rows as dicts}')
    tissue = traits.List(desc='GM/WM/brain rows as dicts')


class RegionalStats(OptionalStep):
    """The GM/WM/brain table (ASL grid) and the per-atlas regional tables (template space;
    skipped, with an error, when the template-space CBF is missing)."""

    input_spec = _RegionsInputSpec
    output_spec = _RegionsOutputSpec
    step = 'tissue and regional tables'
    requires = ('cbf', 'mask', 'gm', 'wm')

    def _run_step(self, runtime):
        cbf = images.load(self.inputs.cbf)[0]
        gm, wm = (images.load(getattr(self.inputs, k))[0] for k in ('gm', 'wm'))
        self._results['tissue'] = rows_as_dicts(regions.tissue_table(
            # the QC table's GM/WM threshold (docs/qc.md), so the two tables never disagree
            cbf, gm, wm, images.load(self.inputs.mask)[0] > 0, TISSUE_THRESHOLD,
            TISSUE_THRESHOLD))
        if not (isdefined(self.inputs.cbf_template) and isdefined(self.inputs.mask_template)):
            self._results['regional'] = {}
            raise PartlyDone('regional tables skipped (no template-space CBF: an earlier step '
                           'failed)')
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
            names = read_atlas_names(names_file)
            for measure, data in maps.items():
                tables[f'{name}/{measure}'] = rows_as_dicts(
                    regions.regional_table(data, labels, names, hemi, valid > 0))
        self._results['regional'] = tables


class _PvcInputSpec(BaseInterfaceInputSpec):
    cbf = File(exists=True, desc='CBF on the ASL grid')
    mask = File(exists=True, desc='ASL brain mask')
    gm = File(exists=True, desc='GM fraction on the ASL grid')
    wm = File(exists=True, desc='WM fraction on the ASL grid')
    kernel = traits.Tuple(traits.Int(pvc.DEFAULT_KERNEL[0]), traits.Int(pvc.DEFAULT_KERNEL[1]),
                          traits.Int(pvc.DEFAULT_KERNEL[2]), usedefault=True,
                          desc='regression box (voxels)')


class _PvcOutputSpec(StepOutputSpec):
    cbf_gm = File(exists=True, desc='partial-volume corrected GM CBF')
    cbf_wm = File(exists=True, desc='partial-volume corrected WM CBF')
    info = traits.Dict(desc='method and parameters')


class PartialVolumeCorrect(OptionalStep):
    """Pure-GM and pure-WM CBF by local linear regression (Asllani 2008)."""

    input_spec = _PvcInputSpec
    output_spec = _PvcOutputSpec
    step = 'partial-volume correction'
    requires = ('cbf', 'mask', 'gm', 'wm')

    def _run_step(self, runtime):
        cbf, img = images.load(self.inputs.cbf)
        gm, wm = (images.load(getattr(self.inputs, k))[0] for k in ('gm', 'wm'))
        mask = images.load(self.inputs.mask)[0] > 0
        y_gm, y_wm = pvc.pvc_linear_regression(cbf, gm, wm, mask, self.inputs.kernel)
        for key, data in (('cbf_gm', y_gm), ('cbf_wm', y_wm)):
            # no NaN in outputs: voxels without an estimate are 0, as outside the mask
            self._results[key] = save(np.nan_to_num(data, nan=0.0), img, runtime.cwd,
                                      f'{key}.nii.gz')
        self._results['info'] = {
            'PartialVolumeCorrection': 'linear regression (Asllani et al. 2008, MRM 60:1362)',
            'RegressionKernelVoxels': list(self.inputs.kernel),
            'MinimumTissueFraction': pvc.MIN_PV,
            'NoEstimate': 'set to 0 (tissue fraction below the minimum, or a singular '
                          'neighbourhood)'}
