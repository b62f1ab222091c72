"""Template-space mean and SD maps across subjects (streaming: one subject in memory at a time).

Each subject's included runs are averaged first (so a subject with two sessions counts once),
then Welford's algorithm accumulates the subject means voxelwise. Non-finite voxels are missing.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from itertools import groupby
from pathlib import Path

import nibabel as nb
import numpy as np

from bids_asl.constants import TEMPLATE
from bids_asl.errors import MetadataError
from bids_asl.io import collect
from bids_asl.io.derivatives import derivative_uri, write_json
from bids_asl.io.images import atomic_write_bytes, nifti_bytes
from bids_asl.io.naming import name_for, parse, path_for, sidecar_of
from bids_asl.quant.group import mean_of_images
from bids_asl.quant.normative import RunningMeanSD


def _load(path: Path) -> tuple[np.ndarray, nb.Nifti1Image]:
    img = nb.load(str(path))
    return np.asarray(img.dataobj, dtype=np.float32), img


def brain_mask_of(path: Path) -> Path:
    """``<prefix>_space-<tpl>_desc-brain_mask.nii.gz`` next to ``<prefix>_space-<tpl>_<map>``."""
    parsed = parse(path, check_folder=False)
    return path.with_name(name_for('mask_space', parsed.stem, space=parsed.values['space']))


def subject_mean(paths: list[Path], reference: nb.Nifti1Image) -> np.ndarray:
    """Mean of one subject's maps, each checked against the reference grid; voxels outside a
    run's template-space brain mask (when the anatomy stage wrote one) are missing."""
    data = []
    for path in paths:
        image, img = _load(path)
        mask = brain_mask_of(path)
        if mask.is_file():
            inside = np.asarray(nb.load(str(mask)).dataobj) > 0
            if inside.shape == image.shape:
                image = np.where(inside, image, np.float32(np.nan))
        if img.shape != reference.shape or not np.allclose(img.affine, reference.affine,
                                                           atol=1e-4):
            raise MetadataError(
                f'grid {img.shape} differs from the first subject\'s {reference.shape} (all '
                'template-space maps must share one grid)', path=path,
                field='space-' + TEMPLATE)
        data.append(image)
    return data[0] if len(data) == 1 else mean_of_images(data)


def _accumulate(subjects, reference, on_subject) -> RunningMeanSD:
    stats = RunningMeanSD(reference.shape)
    for subject, paths in subjects:
        stats.add(subject_mean(paths, reference))
        if on_subject is not None:
            on_subject(subject)
    return stats


def template_maps(runs: list[collect.RunOutputs], measure: str, *, n_threads: int = 1,
                  on_subject=None) -> dict | None:
    """Mean, SD (ddof=1) and count across subjects of ``<prefix>_space-<template>_<measure>``
    (``measure``: cbf or att).

    Subjects are split into ``n_threads`` contiguous parts accumulated in parallel (numpy and
    zlib release the GIL) and merged exactly. Returns None when no run has such a map; raises
    MetadataError naming the file when grids differ.
    """
    files = [(r.subject, p) for r in runs
             if (p := r.find(f'{measure}_space', space=TEMPLATE)) is not None]
    if not files:
        return None
    by_subject = [(s, [p for _, p in grp])
                  for s, grp in groupby(sorted(files), key=lambda x: x[0])]
    reference = nb.load(str(by_subject[0][1][0]))
    n_parts = max(1, min(n_threads, len(by_subject)))
    bounds = np.linspace(0, len(by_subject), n_parts + 1).round().astype(int)
    parts = [by_subject[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    with ThreadPoolExecutor(max_workers=n_parts) as pool:
        partials = list(pool.map(lambda part: _accumulate(part, reference, on_subject), parts))
    stats = partials[0]
    for other in partials[1:]:
        stats.merge(other)
    mean, sd, count = stats.result()
    return {'mean': mean, 'sd': sd, 'count': count, 'reference': reference,
            'sources': [p for _, paths in by_subject for p in paths],
            'n_subjects': len(by_subject)}


def write_group_maps(output_dir, included: list[collect.RunOutputs], provenance: dict, *,
                     n_threads: int = 1, progress=None) -> dict:
    """Mean/SD/count maps of CBF (and ATT) in template space across the subjects of the
    included runs; returns {'cbf_mean': path, …} of what was written."""
    written = {}
    for measure, units in (('cbf', 'mL/100g/min'), ('att', 's')):
        done = []

        def tick(subject, done=done, measure=measure):
            done.append(subject)
            if progress is not None:
                progress.step(f'group {measure} maps: {len(done)} subject(s) read')

        result = template_maps(included, measure, n_threads=n_threads, on_subject=tick)
        if result is None:
            continue
        ref = result['reference']
        common = {
            'Sources': [derivative_uri(output_dir, p) for p in result['sources']],
            'SubjectsIncluded': result['n_subjects'],
            'Averaging': "each subject's included runs are averaged first; then mean and SD "
                         '(ddof=1) across subjects, voxelwise; non-finite voxels, and voxels '
                         "outside a run's template-space brain mask, are missing",
            'SpatialReference': TEMPLATE, **provenance}
        for stat, data, meaning, unit, dtype in (
                ('mean', result['mean'], 'mean across subjects', units, np.float32),
                ('sd', result['sd'], 'SD across subjects (NaN where < 2 subjects)', units,
                 np.float32),
                ('count', result['count'], 'subjects with a finite value', 'subjects',
                 np.int16)):
            path = (path_for(output_dir, 'group_count', 'group', measure=measure)
                     if stat == 'count' else
                     path_for(output_dir, 'group_map', 'group', stat=stat, measure=measure))
            atomic_write_bytes(path, nifti_bytes(data, ref, dtype=dtype))
            write_json(sidecar_of(path), {**common, 'Units': unit,
                                          'Description': f'{measure.upper()}: {meaning}'})
            written[f'{measure}_{stat}'] = path
        if progress is not None:
            progress.stage(None, f'group {measure} maps of {result["n_subjects"]} subject(s) '
                                 'written')
    return written
