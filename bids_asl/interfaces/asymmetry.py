"""Left/right asymmetry of CBF in the symmetric template: the AI map and its clusters."""

from __future__ import annotations

import numpy as np
from nipype.interfaces.base import BaseInterfaceInputSpec, File, isdefined, traits

from bids_asl.interfaces.regions import read_atlas_names
from bids_asl.interfaces.steps import OptionalStep, StepOutputSpec, save
from bids_asl.io import images
from bids_asl.quant import qc, regions
from bids_asl.quant.resample import mirror_x


class _AsymInputSpec(BaseInterfaceInputSpec):
    cbf_template = File(exists=True, desc='CBF in template space')
    mask_template = File(exists=True, desc='ASL brain mask in template space')
    gm_template = File(exists=True, desc='GM fraction in template space')
    options = traits.Dict(mandatory=True, desc='fwhm_mm, threshold, min_volume_mm3, gm')
    atlas_names = traits.List(traits.Str, desc='atlas names (the first names the peaks)')
    atlas_labels = traits.List(File(exists=True), desc='PrepareAtlas labels')
    atlas_json = traits.List(File(exists=True), desc='PrepareAtlas names')


class _AsymOutputSpec(StepOutputSpec):
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


class Asymmetry(OptionalStep):
    """Left/right asymmetry of CBF in the symmetric template: AI = 2 (L − R) / (L + R) in GM,
    optionally smoothed, and its clusters beyond a threshold."""

    input_spec = _AsymInputSpec
    output_spec = _AsymOutputSpec
    step = 'asymmetry'
    requires = ('cbf_template', 'mask_template', 'gm_template')

    def _run_step(self, runtime):
        opts = self.inputs.options
        cbf, img = images.load(self.inputs.cbf_template)
        mask = images.load(self.inputs.mask_template)[0] > 0
        gm = images.load(self.inputs.gm_template)[0]
        voxel = np.sqrt((img.affine[:3, :3] ** 2).sum(axis=0))
        smoothed = qc.smooth_within(cbf, mask, opts['fwhm_mm'], voxel)
        valid = mask & (gm >= opts['gm'])
        ai = regions.asymmetry_map(smoothed, valid, lambda d: mirror_x(d, img.affine))
        self._results['asymmetry'] = save(np.nan_to_num(ai, nan=0.0), img, runtime.cwd,
                                          'asymmetry.nii.gz')
        self._results['clusters'] = asymmetry_clusters(ai, img.affine, opts,
                                                       self._region_lookup(img.affine))
        self._results['info'] = {
            'AsymmetryIndex': 'AI = 2 (L - R) / (L + R), R = the mirror image about x = 0 of '
                              'the symmetric template; positive: left higher',
            'SmoothingFWHM': opts['fwhm_mm'], 'GreyMatterThreshold': opts['gm'],
            'ClusterThreshold': opts['threshold'], 'MinimumClusterVolume': opts['min_volume_mm3'],
            'OutsideGreyMatter': 'set to 0'}

    def _region_lookup(self, affine):
        if not (isdefined(self.inputs.atlas_labels) and self.inputs.atlas_labels):
            return None
        labels = images.load(self.inputs.atlas_labels[0])[0].astype(int)
        names = read_atlas_names(self.inputs.atlas_json[0])
        return regions.region_lookup(labels, affine, names, self.inputs.atlas_names[0])
