"""Pure quantification code: numpy/scipy arrays in, arrays out; no files, no nipype, no pybids."""

from bids_asl.quant.cbf import (
    cbf_pasl,
    cbf_pcasl,
    deltam_pasl,
    deltam_pcasl,
    pasl_scale,
    pcasl_scale,
    plausibility_warnings,
)
from bids_asl.quant.context import (
    VOLUME_TYPES,
    difference_series,
    difference_sources,
    index_volume_types,
    pair_control_label,
)
from bids_asl.quant.m0 import m0_from_estimate, m0_from_images, saturation_recovery
from bids_asl.quant.mask import brain_mask, otsu_threshold
from bids_asl.quant.slicetiming import slice_time_map

__all__ = [
    'VOLUME_TYPES',
    'brain_mask',
    'cbf_pasl',
    'cbf_pcasl',
    'deltam_pasl',
    'deltam_pcasl',
    'difference_series',
    'difference_sources',
    'index_volume_types',
    'm0_from_estimate',
    'm0_from_images',
    'otsu_threshold',
    'pair_control_label',
    'pasl_scale',
    'pcasl_scale',
    'plausibility_warnings',
    'saturation_recovery',
    'slice_time_map',
]
