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

from bids_asl.errors import MetadataError
from bids_asl.io import collect
from bids_asl.quant.group import RunningMeanSD, mean_of_images


def _load(path: Path) -> tuple[np.ndarray, nb.Nifti1Image]:
    img = nb.load(str(path))
    return np.asarray(img.dataobj, dtype=np.float32), img


def _subject_mean(paths: list[Path]) -> tuple[np.ndarray, nb.Nifti1Image, list[Path]]:
    loaded = [_load(p) for p in paths]
    data = loaded[0][0] if len(loaded) == 1 else mean_of_images([d for d, _ in loaded])
    return data, loaded[0][1], [(p, img) for p, (_, img) in zip(paths, loaded, strict=True)]


def template_maps(runs: list[collect.RunOutputs], suffix: str, *, n_threads: int = 1,
                  on_subject=None) -> dict | None:
    """Mean, SD (ddof=1) and count across subjects of ``<prefix>_space-<template>_<suffix>``.

    Returns None when no included run has such a map; raises MetadataError naming the file
    when grids differ.
    """
    files = [(r.subject, p) for r in runs
             if (p := r.find(suffix, space=collect.TEMPLATE)) is not None]
    if not files:
        return None
    by_subject = [(s, [p for _, p in grp])
                  for s, grp in groupby(sorted(files), key=lambda x: x[0])]
    stats, reference, sources = None, None, []
    with ThreadPoolExecutor(max_workers=max(1, n_threads)) as pool:
        chunk = max(2, 2 * n_threads)
        for start in range(0, len(by_subject), chunk):
            part = by_subject[start:start + chunk]
            for (subject, paths), (data, img, checked) in zip(
                    part, pool.map(_subject_mean, [p for _, p in part]), strict=True):
                if reference is None:
                    reference = img
                    stats = RunningMeanSD(data.shape)
                for path, other in checked:
                    if other.shape != reference.shape or not np.allclose(
                            other.affine, reference.affine, atol=1e-4):
                        raise MetadataError(
                            f'grid {other.shape} differs from the first subject\'s '
                            f'{reference.shape} (all template-space maps must share one grid)',
                            path=path, field='space-' + collect.TEMPLATE)
                stats.add(data)
                sources.extend(paths)
                if on_subject is not None:
                    on_subject(subject)
    mean, sd, count = stats.result()
    return {'mean': mean, 'sd': sd, 'count': count, 'reference': reference,
            'sources': sources, 'n_subjects': len(by_subject)}
