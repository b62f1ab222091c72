"""Anatomical processing with ANTs (antspyx): bias correction, brain mask, tissue
segmentation, T1w → template (nonlinear), ASL reference → T1w (rigid), resampling.

Arrays and NIfTI affines in, arrays and transform files out; the caller decides where the
transform files live. Everything runs with one ITK thread and a fixed random seed
(:func:`bids_asl.registration._ants`), so a rerun gives the same numbers.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from bids_asl.quant.mask import largest_component
from bids_asl.registration import LPS, _ants, _read_affine, to_ants

#: T1w → template: rigid + affine (Mattes MI) then symmetric normalisation (SyN, cross-
#: correlation), at the 2 mm template resolution (ASL voxels are 3-4 mm or larger).
SYN = {'type_of_transform': 'SyN', 'aff_metric': 'mattes', 'syn_metric': 'CC',
       'syn_sampling': 2, 'reg_iterations': (40, 20, 0), 'aff_iterations': (200, 100, 50, 0),
       'aff_shrink_factors': (8, 4, 2, 1), 'aff_smoothing_sigmas': (3, 2, 1, 0),
       'aff_sampling': 32, 'aff_random_sampling_rate': 0.25, 'grad_step': 0.2,
       'flow_sigma': 3, 'total_sigma': 0}
#: ASL reference (M0 or mean control, low resolution, different contrast) → T1w brain:
#: rigid, Mattes mutual information, started from the images' centres of mass.
ASL_RIGID = {'type_of_transform': 'Rigid', 'aff_metric': 'mattes', 'aff_sampling': 32,
             'aff_iterations': (200, 100, 50), 'aff_shrink_factors': (4, 2, 1),
             'aff_smoothing_sigmas': (2, 1, 0), 'aff_random_sampling_rate': 0.5}
#: Voxel size (mm) the T1w is resampled to as the target of the ASL reference.
ASL_TARGET_SPACING = 2.0
#: ASL reference → template when there is no T1w: rigid then affine (12 dof), no warp.
ASL_AFFINE = {**ASL_RIGID, 'type_of_transform': 'Affine'}


def from_ants(img) -> np.ndarray:
    return np.asarray(img.numpy(), dtype=np.float64)


def bias_correct(t1w: np.ndarray, affine: np.ndarray, mask: np.ndarray | None = None
                 ) -> np.ndarray:
    """N4 bias-field correction (shrink 4, within ``mask`` when given)."""
    ants = _ants()
    img = to_ants(np.clip(t1w, 0, None), affine)
    kwargs = {'shrink_factor': 4, 'convergence': {'iters': [50, 50, 50], 'tol': 1e-7}}
    if mask is not None:
        kwargs['mask'] = to_ants(mask.astype(np.float32), affine)
    return from_ants(ants.n4_bias_field_correction(img, **kwargs))


def register_to_template(moving: np.ndarray, affine: np.ndarray, template: np.ndarray,
                         template_affine: np.ndarray, outdir, *, settings=None,
                         moving_mask: np.ndarray | None = None) -> dict:
    """Nonlinear registration of ``moving`` to the template.

    Returns ``{'affine': .mat, 'affine_txt': .txt, 'warp': .nii.gz, 'inverse_warp': .nii.gz,
    'forward': [warp, affine], 'inverse': [affine, inverse warp], 'invert_inverse':
    [True, False], 'warped': array}``; ``forward`` takes ``moving`` into the template with
    :func:`apply_transforms` (template as reference). The parts are written separately, not
    as an HDF5 composite: HDF5 stores creation times, so identical results would not give
    identical bytes.
    """
    ants = _ants()
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    fixed = to_ants(template, template_affine)
    moving_img = to_ants(moving, affine)
    kwargs = dict(settings or SYN)
    if moving_mask is not None:
        kwargs['moving_mask'] = to_ants(moving_mask.astype(np.float32), affine)
    with tempfile.TemporaryDirectory(prefix='bids-asl-syn-') as tmp:
        result = ants.registration(fixed=fixed, moving=moving_img, verbose=False,
                                   outprefix=str(Path(tmp) / 'reg_'), **kwargs)
        warp = next(f for f in result['fwdtransforms'] if f.endswith('.nii.gz'))
        mat = next(f for f in result['fwdtransforms'] if f.endswith('.mat'))
        inverse_warp = next(f for f in result['invtransforms'] if f.endswith('.nii.gz'))
        out = {'affine': outdir / 'affine.mat', 'affine_txt': outdir / 'affine.txt',
               'warp': outdir / 'warp.nii.gz', 'inverse_warp': outdir / 'inverse_warp.nii.gz'}
        shutil.copyfile(mat, out['affine'])
        ants.write_transform(ants.read_transform(mat), str(out['affine_txt']))
        shutil.copyfile(warp, out['warp'])
        shutil.copyfile(inverse_warp, out['inverse_warp'])
        warped = from_ants(result['warpedmovout'])
    out = {k: str(v) for k, v in out.items()}
    out.update(forward=[out['warp'], out['affine']], inverse=[out['affine'],
                                                              out['inverse_warp']],
               invert_inverse=[True, False], warped=warped)
    return out


def register_linear(moving: np.ndarray, affine: np.ndarray, fixed: np.ndarray,
                    fixed_affine: np.ndarray, out_file, *, settings=None,
                    fixed_mask: np.ndarray | None = None,
                    fixed_spacing: float | None = None) -> tuple[str, np.ndarray]:
    """Rigid (default) or affine registration of ``moving`` to ``fixed``.

    ``fixed_spacing`` (mm): resample the fixed image (and mask) to this voxel size first; the
    metric is sampled on the fixed grid, so a 1 mm T1w as the target of a 3-4 mm ASL image
    costs 8× more than at 2 mm for no gain in accuracy. The transform is in world
    coordinates and does not depend on that grid.

    Writes the ITK transform to ``out_file`` (``.mat``, the form antspyx can invert) and an
    ITK text copy beside it (``.txt``, for the outputs); returns the ``.mat`` path and the
    4×4 RAS matrix that maps fixed-space points to moving-space points.
    """
    ants = _ants()
    fixed_img = to_ants(fixed, fixed_affine)
    kwargs = dict(settings or ASL_RIGID)
    if fixed_mask is not None:
        kwargs['mask'] = to_ants(fixed_mask.astype(np.float32), fixed_affine)
    if fixed_spacing is not None and min(fixed_img.spacing) < fixed_spacing:
        spacing = (float(fixed_spacing),) * 3
        fixed_img = ants.resample_image(ants.smooth_image(fixed_img, fixed_spacing / 2.355,
                                                          sigma_in_physical_coordinates=True),
                                        spacing, use_voxels=False, interp_type=0)
        if fixed_mask is not None:
            kwargs['mask'] = ants.resample_image(kwargs['mask'], spacing, use_voxels=False,
                                                 interp_type=1)
    with tempfile.TemporaryDirectory(prefix='bids-asl-lin-') as tmp:
        result = ants.registration(fixed=fixed_img, moving=to_ants(moving, affine),
                                   verbose=False, outprefix=str(Path(tmp) / 'reg_'), **kwargs)
        mat = result['fwdtransforms'][0]
        matrix = LPS @ _read_affine(mat) @ LPS
        out_file = Path(out_file).with_suffix('.mat')
        shutil.copyfile(mat, out_file)
        ants.write_transform(ants.read_transform(mat), str(out_file.with_suffix('.txt')))
    return str(out_file), matrix


def apply_transforms(moving: np.ndarray, affine: np.ndarray, reference_shape,
                     reference_affine: np.ndarray, transforms: list[str], *,
                     invert: list[bool] | None = None, interpolator: str = 'linear'
                     ) -> np.ndarray:
    """Resample ``moving`` on the reference grid through ``transforms`` (ANTs order: the
    last transform is applied first to the reference points' mapping, as antsApplyTransforms
    ``-t``)."""
    ants = _ants()
    ref = to_ants(np.zeros(tuple(reference_shape[:3]), dtype=np.float32), reference_affine)
    out = ants.apply_transforms(fixed=ref, moving=to_ants(moving, affine),
                                transformlist=[str(t) for t in transforms],
                                whichtoinvert=invert, interpolator=interpolator)
    return from_ants(out)


#: Voxels of the brain mask brighter than Q3 + BRIGHT_FENCE_IQR × IQR of its intensities
#: (Tukey's "far out" fence) are left out of the segmentation, with probability 0: nothing in
#: the brain is that much brighter than white matter on a T1w, but scalp fat and vessels are,
#: and a loose mask holds some (a thick slice through the vertex, a mask dilated by one 5 mm
#: voxel).  They otherwise spread Atropos' k-means starting points so that a class ends empty
#: ("Atropos exited with non-zero status 1") or becomes the bright voxels alone, with grey and
#: white matter merged in one class.  On a clean brain no voxel is beyond the fence.
BRIGHT_FENCE_IQR = 3.0
#: Each tissue class must hold at least this share of the brain mask (sum of probabilities).
MIN_CLASS_SHARE = 0.02
#: Atropos initialisations tried in turn (the second when the first fails or is degenerate).
SEGMENT_INITS = ('kmeans[3]', 'Otsu[3]')


class SegmentationError(RuntimeError):
    """Atropos failed, or gave a degenerate segmentation, with every initialisation."""


def _atropos(ants, img, mask_img, init, weight):
    seg = ants.atropos(a=img, x=mask_img, i=init, m='[0.1,1x1x1]', c='[5,0]',
                       priorweight=weight, v=0, r=0)
    return np.stack([from_ants(p) for p in seg['probabilityimages']], axis=-1)


def segment(t1w: np.ndarray, affine: np.ndarray, mask: np.ndarray,
            priors: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
            ) -> np.ndarray:
    """CSF/GM/WM posterior probabilities (4-D, last axis in that order) by Atropos.

    Voxels beyond the bright fence (:data:`BRIGHT_FENCE_IQR`) are left out.  k-means
    initialisation with 3 classes (ordered by mean intensity, which on a T1w is CSF < GM < WM)
    and an MRF smoothness prior; if Atropos fails or a class holds less than
    :data:`MIN_CLASS_SHARE` of the mask, Otsu initialisation is tried; then
    :class:`SegmentationError`.  With ``priors`` (CSF, GM, WM on the T1w grid, e.g. the
    template's, warped) they are used as spatial priors with weight 0.25.
    """
    ants = _ants()
    inside = mask > 0
    q1, q3 = np.percentile(t1w[inside], [25, 75])
    inside &= t1w <= q3 + BRIGHT_FENCE_IQR * (q3 - q1)
    img = to_ants(t1w, affine)
    mask_img = to_ants(inside.astype(np.float32), affine)
    if priors is not None:
        init = [to_ants(np.asarray(p, dtype=np.float32), affine) for p in priors]
        probs = _atropos(ants, img, mask_img, init, 0.25)
        return np.clip(probs, 0.0, 1.0) * inside[..., None]
    problems = []
    for init in SEGMENT_INITS:
        try:
            probs = _atropos(ants, img, mask_img, init, 0.0)
        except Exception as exc:  # noqa: BLE001 - antspyx raises a bare Exception
            problems.append(f'{init}: {exc}')
            continue
        # order the classes by their mean intensity
        means = [float((t1w[inside] * probs[inside, k]).sum()
                       / max(probs[inside, k].sum(), 1e-9)) for k in range(3)]
        probs = np.clip(probs[..., np.argsort(means)], 0.0, 1.0) * inside[..., None]
        share = probs[inside].sum(axis=0) / max(int(inside.sum()), 1)
        if share.min() >= MIN_CLASS_SHARE:
            return probs
        problems.append(f'{init}: degenerate (class shares CSF/GM/WM '
                        f'{"/".join(f"{x:.3f}" for x in share)})')
    raise SegmentationError('Atropos found no three tissue classes: ' + '; '.join(problems))


def looks_skull_stripped(t1w: np.ndarray) -> bool:
    """True when ≥ 30 % of the voxels are exactly zero and they surround the nonzero ones
    (a brain-extracted image); a head image has noise, not zeros, around the head."""
    zero = t1w <= 1e-6 * float(np.max(t1w))
    if zero.mean() < 0.3:
        return False
    edges = np.concatenate([zero[[0, -1]].ravel(), zero[:, [0, -1]].ravel(),
                            zero[:, :, [0, -1]].ravel()])
    return bool(edges.mean() > 0.9)


def brain_mask(t1w: np.ndarray, affine: np.ndarray, template: np.ndarray,
               template_affine: np.ndarray) -> tuple[np.ndarray, str]:
    """Brain mask of a T1w and how it was found.

    A skull-stripped input keeps its nonzero voxels (largest component, holes filled).
    Otherwise the head (ANTs' Otsu-based ``get_mask``) is registered affinely to the
    brain-extracted template, the template's brain is carried back and dilated by 2 mm, and
    intersected with the head mask.
    """
    from scipy import ndimage  # noqa: PLC0415

    if looks_skull_stripped(t1w):
        return (largest_component(t1w > 1e-6 * float(np.max(t1w))),
                'input is skull-stripped: its nonzero voxels')
    ants = _ants()
    head = from_ants(ants.get_mask(to_ants(t1w, affine))) > 0
    tpl_mask = (template > 0).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix='bids-asl-bet-') as tmp:
        xfm, _ = register_linear(t1w * head, affine, template, template_affine,
                                 Path(tmp) / 'head2tpl.mat',
                                 settings={**ASL_AFFINE, 'aff_random_sampling_rate': 0.25})
        back = apply_transforms(tpl_mask, template_affine, t1w.shape, affine, [xfm],
                                invert=[True]) > 0.5
    voxel = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    radius = np.maximum(np.round(2.0 / voxel).astype(int), 1)
    structure = np.ones(tuple(2 * r + 1 for r in radius), dtype=bool)
    mask = ndimage.binary_dilation(back, structure=structure) & head
    return largest_component(mask), ('template brain mask carried back by an affine '
                                      'registration of the head, dilated 2 mm, within the head')


def pv_sigmas(src_affine: np.ndarray, dst_affine: np.ndarray) -> np.ndarray:
    """Gaussian sigmas (source voxels, per source axis) whose variance equals that of a
    target voxel's box footprint: resampling after this smoothing turns fine tissue
    probabilities into partial-volume fractions of the coarse voxels."""
    edges = np.linalg.inv(src_affine[:3, :3]) @ dst_affine[:3, :3]
    width = np.abs(edges).sum(axis=1)  # extent of one target voxel along each source axis
    return np.sqrt(np.maximum(width ** 2 - 1.0, 0.0) / 12.0)


def probabilities_to_grid(probs: list[np.ndarray], affine: np.ndarray, reference_shape,
                          reference_affine: np.ndarray, transforms: list[str],
                          invert: list[bool]) -> list[np.ndarray]:
    """Fine-grid tissue probabilities as partial-volume fractions on a coarse grid."""
    from scipy import ndimage  # noqa: PLC0415

    ref_in_src = np.linalg.inv(affine) @ reference_affine  # ignoring the small rigid part
    sigma = pv_sigmas(np.eye(4), ref_in_src)
    out = []
    for p in probs:
        smooth = ndimage.gaussian_filter(np.asarray(p, dtype=np.float64), sigma=sigma,
                                         mode='constant')
        out.append(np.clip(apply_transforms(smooth, affine, reference_shape, reference_affine,
                                            transforms, invert=invert), 0.0, 1.0))
    return out


#: fMRIPrep's default template, MNI152NLin2009cAsym, is not available offline; its outputs go on
#: a 2 mm grid over the domain of the subject's T1w → MNI152NLin2009cAsym displacement field, or,
#: without one, every other voxel of TemplateFlow's 1 mm grid (193 × 229 × 193 from (-96, -132,
#: -78) mm).
MNI2009C_RES1 = ((193, 229, 193), (-96.0, -132.0, -78.0))


def _looks_like_field(values: np.ndarray) -> bool:
    size, step, direction = values[0:3], values[6:9], values[9:18].reshape(3, 3)
    return bool(np.all(size >= 2) and np.allclose(size, np.round(size)) and np.all(step > 0)
                and np.allclose(direction @ direction.T, np.eye(3), atol=1e-4))


def transform_grid(path, spacing: float = 2.0) -> tuple[tuple[int, int, int], np.ndarray]:
    """A grid of ``spacing`` mm over the domain of the displacement field in an ITK transform
    file (an fMRIPrep composite ``.h5``): same corner voxel and axes; the TemplateFlow 2009cAsym
    grid subsampled when the file holds no field."""
    ants = _ants()
    # a composite's fixed parameters are those of its parts in a row: an affine's centre (3
    # numbers), a displacement field's size, origin, spacing and direction (18)
    fixed = np.asarray(ants.read_transform(str(path)).fixed_parameters, dtype=np.float64)
    field = next((fixed[i:i + 18] for i in range(0, fixed.size - 17, 3)
                  if _looks_like_field(fixed[i:i + 18])), None)
    if field is not None:
        size, origin, step = field[0:3], field[3:6], field[6:9]
        direction = field[9:18].reshape(3, 3)
        lps = np.eye(4)
        lps[:3, :3] = direction * step
        lps[:3, 3] = origin
        affine = LPS @ lps
    else:
        size = np.asarray(MNI2009C_RES1[0], dtype=np.float64)
        step = np.ones(3)
        affine = np.eye(4)
        affine[:3, 3] = MNI2009C_RES1[1]
    factor = spacing / step
    shape = tuple(int(n) for n in np.floor((size - 1) / factor) + 1)
    out = affine.copy()
    out[:3, :3] = affine[:3, :3] * factor
    return shape, out
