"""CBF per lesion, in perilesional rings and in NAWM by distance from the lesions."""

from __future__ import annotations

import numpy as np
from nipype.interfaces.base import BaseInterfaceInputSpec, File, isdefined, traits

from bids_asl.interfaces.steps import OptionalStep, StepOutputSpec, rows_as_dicts
from bids_asl.io import images
from bids_asl.quant import lesions


class _LesionInputSpec(BaseInterfaceInputSpec):
    lesion_mask = File(exists=True, desc='lesion mask (ASL or T1w grid)')
    space = traits.Enum('asl', 'T1w', mandatory=True, desc='grid of the lesion mask')
    cbf = File(exists=True, desc='CBF on the ASL grid')
    mask = File(exists=True, desc='ASL brain mask')
    wm = File(exists=True, desc='WM fraction on the ASL grid')
    cbf_t1w = File(exists=True, desc='CBF in T1w space (space T1w)')
    t1w_mask = File(exists=True, desc='T1w brain mask (space T1w)')
    t1w_wm = File(exists=True, desc='T1w WM probability (space T1w)')


class _LesionOutputSpec(StepOutputSpec):
    rows = traits.List(desc='lesion, ring and NAWM rows')
    info = traits.Dict(desc='definitions used')


class LesionStats(OptionalStep):
    """CBF per lesion, in perilesional rings and in NAWM by distance from the lesions, on the
    grid of the lesion mask."""

    input_spec = _LesionInputSpec
    output_spec = _LesionOutputSpec
    step = 'lesion table'
    requires = ('lesion_mask', 'cbf', 'mask', 'wm')

    def _run_step(self, runtime):
        lesion, img = images.load(self.inputs.lesion_mask)
        if self.inputs.space == 'asl':
            cbf = images.load(self.inputs.cbf)[0]
            brain = images.load(self.inputs.mask)[0] > 0
            wm = images.load(self.inputs.wm)[0]
        else:
            missing = [k for k in ('cbf_t1w', 't1w_mask', 't1w_wm')
                       if not isdefined(getattr(self.inputs, k))]
            if missing:
                raise ValueError(f'the lesion mask is on the T1w grid but {missing[0]} is '
                                 'unavailable (the T1w path failed)')
            cbf = images.load(self.inputs.cbf_t1w)[0]
            brain = (images.load(self.inputs.t1w_mask)[0] > 0) & (cbf != 0)
            wm = images.load(self.inputs.t1w_wm)[0]
        voxel = np.sqrt((img.affine[:3, :3] ** 2).sum(axis=0))
        self._results['rows'] = rows_as_dicts(lesions.lesion_table(cbf, lesion > 0, brain, wm,
                                                                   voxel))
        self._results['info'] = {
            'LesionSpace': 'ASL grid' if self.inputs.space == 'asl' else 'T1w grid',
            'Lesions': '26-connected components of the mask within the brain, largest first',
            'RingsMM': [list(r) for r in lesions.DEFAULT_RINGS_MM],
            'NAWM': 'WM fraction >= 0.7 outside every lesion, by distance to the nearest',
            'NAWMBandsMM': [[lo, hi if np.isfinite(hi) else None]
                            for lo, hi in lesions.DEFAULT_NAWM_BANDS_MM]}
