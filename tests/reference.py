"""An independent implementation of the consensus formulas on raw BIDS files, for tests.

Written from Alsop et al. 2015 (eqs. 1 and 2) without using bids_asl.quant: it reads the raw
series with nibabel and the sidecar with json and returns the expected mean CBF map.
"""

import json
from pathlib import Path

import nibabel as nb
import numpy as np


def expected_cbf(asl_file, *, m0_file=None, m0_tr=None, t1b=1.65, lam=0.9, alpha=None,
                 t1_tissue=1.3, m0_scale=1.0, bs_per_pulse=0.95):
    asl_file = Path(asl_file)
    meta = json.loads(asl_file.with_name(asl_file.name.replace('.nii.gz', '.json')).read_text())
    ctx = asl_file.with_name(asl_file.name.replace('_asl.nii.gz', '_aslcontext.tsv'))
    types = ctx.read_text().split()[1:]
    data = nb.load(asl_file).get_fdata()
    control = [i for i, t in enumerate(types) if t == 'control']
    label = [i for i, t in enumerate(types) if t == 'label']
    dm = (data[..., control] - data[..., label]).mean(-1)
    pld = meta['PostLabelingDelay']
    pld = pld if np.isscalar(pld) else pld[label[0]]
    trs = meta['RepetitionTimePreparation']
    if meta['M0Type'] == 'Separate':
        m0 = nb.load(m0_file).get_fdata()
        tr = m0_tr
    elif meta['M0Type'] == 'Included':
        idx = [i for i, t in enumerate(types) if t == 'm0scan']
        m0 = data[..., idx].mean(-1)
        tr = trs[idx[0]]
    elif meta['M0Type'] == 'Absent':
        m0 = data[..., control].mean(-1)
        tr = trs if np.isscalar(trs) else trs[control[0]]
    else:
        m0, tr = np.full(dm.shape, float(meta['M0Estimate'])), None
    if tr is not None:
        m0 = m0 / (1 - np.exp(-tr / t1_tissue))
    m0 = m0 * m0_scale
    if alpha is None:
        defaults = {'PCASL': 0.85, 'CASL': 0.68, 'PASL': 0.98}
        alpha = meta.get('LabelingEfficiency', defaults[meta['ArterialSpinLabelingType']])
    if meta['BackgroundSuppression'] and 'BackgroundSuppressionNumberPulses' in meta:
        alpha = alpha * bs_per_pulse ** meta['BackgroundSuppressionNumberPulses']
    delay = np.full(dm.shape, float(pld))
    if meta['MRAcquisitionType'] == '2D' and 'SliceTiming' in meta:
        direction = meta.get('SliceEncodingDirection', 'k')
        axis = 'ijk'.index(direction[0])
        st = np.array(meta['SliceTiming'])[::-1 if direction.endswith('-') else 1]
        for s in range(dm.shape[axis]):
            index = [slice(None)] * 3
            index[axis] = s
            delay[tuple(index)] += st[s]
    with np.errstate(divide='ignore', invalid='ignore'):
        if meta['ArterialSpinLabelingType'] == 'PASL':
            ti1 = meta['BolusCutOffDelayTime']
            ti1 = ti1 if np.isscalar(ti1) else ti1[0]
            return 6000 * lam * dm * np.exp(delay / t1b) / (2 * alpha * ti1 * m0)
        tau = meta['LabelingDuration']
        return (6000 * lam * dm * np.exp(delay / t1b)
                / (2 * alpha * t1b * m0 * (1 - np.exp(-tau / t1b))))


# -- the resampling of bids_asl.quant.resample before it used scipy.ndimage.affine_transform:
#    explicit world coordinates of every target voxel, np.rint for nearest neighbour and
#    ndimage.map_coordinates for trilinear interpolation (kept as the reference it must equal)

def source_coordinates(src_affine, dst_shape, dst_affine):
    """(3, *dst_shape) source voxel coordinates of each target voxel, through world mm."""
    ijk = np.indices(tuple(int(n) for n in dst_shape[:3]), dtype=np.float64).reshape(3, -1)
    world = dst_affine[:3, :3] @ ijk + dst_affine[:3, 3:4]
    inv = np.linalg.inv(src_affine)
    return (inv[:3, :3] @ world + inv[:3, 3:4]).reshape(3, *dst_shape[:3])


def nearest_by_coordinates(data, src_affine, dst_shape, dst_affine, fill=0):
    coords = np.rint(source_coordinates(src_affine, dst_shape, dst_affine)).astype(np.int64)
    inside = np.all([(c >= 0) & (c < n) for c, n in zip(coords, data.shape[:3], strict=True)],
                    axis=0)
    out = np.full(tuple(dst_shape[:3]) + data.shape[3:], fill, dtype=data.dtype)
    c = coords[:, inside]
    out[inside] = data[c[0], c[1], c[2]]
    return out


def linear_by_coordinates(data, src_affine, dst_shape, dst_affine, fill=0.0):
    from scipy import ndimage

    coords = source_coordinates(src_affine, dst_shape, dst_affine)
    return ndimage.map_coordinates(np.asarray(data, dtype=np.float64), coords, order=1,
                                   mode='constant', cval=fill)
