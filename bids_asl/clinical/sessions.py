"""``--compare-sessions A B``: CBF difference maps between two sessions of each subject.

Runs are paired by their file-name entities without the session (``sub-01_ses-ictal_run-1``
with ``sub-01_ses-interictal_run-1``). For each pair and each space both runs have (template;
T1w, shared by the sessions of a subject), the outputs go to ``sub-X/perf/`` with the session
removed from the name and ``desc-<A>Minus<B>``: the difference (A − B, mL/100g/min), the
percent change, and z = (A − B) / √(SE_A² + SE_B²) from each run's own standard-error map;
in template space also the clusters of |z| ≥ threshold and, per atlas, a regional change table.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from bids_asl import __version__
from bids_asl.constants import TEMPLATE
from bids_asl.errors import InputMissingError
from bids_asl.io import images, naming
from bids_asl.io.collect import RunOutputs
from bids_asl.io.derivatives import derivative_uri, write_json
from bids_asl.io.tsv import read_tsv, write_tsv
from bids_asl.quant import regions, sessions

LOGGER = logging.getLogger('bids_asl')
CLUSTER_COLUMNS = ('cluster', 'direction', 'n_voxels', 'volume_mm3', 'peak_z', 'mean_z',
                   'peak_x', 'peak_y', 'peak_z_mm', 'mean_percent')
REGION_COLUMNS = ('atlas', 'region', 'mean_a', 'mean_b', 'difference', 'percent', 'n_voxels_a',
                  'n_voxels_b')


def _without_session(stem: str, session: str) -> str:
    return stem.replace(f'_ses-{session}', '', 1)


def _template_cbf(perf: Path, session: str) -> dict[str, Path]:
    """Stem without the session → the run's template-space CBF, for the runs in ``perf``."""
    found = {}
    for path in sorted(perf.glob('*_cbf.nii.gz')):
        parsed = naming.parse(path)
        if parsed is not None and parsed.key == 'cbf_space' and parsed.values['space'] == TEMPLATE:
            found[_without_session(parsed.stem, session)] = path
    return found


def find_pairs(output_dir, session_a: str, session_b: str,
               subjects=None) -> list[tuple[str, Path, Path]]:
    """(subject, A CBF, B CBF) template-space maps present for both sessions (only of the
    given subject labels, when given: the participants this process holds)."""
    pairs = []
    for subject_dir in sorted(Path(output_dir).glob('sub-*')):
        if subjects is not None and subject_dir.name[4:] not in subjects:
            continue
        found = {session: _template_cbf(subject_dir / f'ses-{session}' / 'perf', session)
                 for session in (session_a, session_b)}
        # in the order of the file names (the stems' order can differ: 'a' < 'a_run-1')
        common = sorted(set(found[session_a]) & set(found[session_b]),
                        key=lambda stem: naming.name_for('cbf_space', stem, space=TEMPLATE))
        if not common and any(found.values()):
            LOGGER.warning('%s: no run in both ses-%s and ses-%s: not compared',
                           subject_dir.name, session_a, session_b)
        pairs += [(subject_dir.name, found[session_a][k], found[session_b][k]) for k in common]
    return pairs


def _sibling(cbf_path: Path, key: str, space: str) -> Path:
    """Another map of the same run (output ``key`` of the naming table in ``space``)."""
    return cbf_path.with_name(naming.name_for(key, naming.parse(cbf_path).stem, space=space))


def _num(text) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return float('nan')


def compare_sessions(output_dir, session_a: str, session_b: str, *, normalise: bool,
                     z_threshold: float, min_volume_mm3: float, subjects=None) -> list[str]:
    """Write the comparisons of every subject (of ``subjects`` when given) with runs in both
    sessions; returns the files."""
    pairs = find_pairs(output_dir, session_a, session_b, subjects)
    if not pairs:
        raise InputMissingError(f'no subject has template-space CBF for both ses-{session_a} '
                                f'and ses-{session_b} (anatomy must be on)', path=output_dir,
                                field='--compare-sessions')
    desc = f'{_alnum(session_a)}Minus{_alnum(session_b)}'
    written = []
    for subject, path_a, path_b in pairs:
        out_dir = Path(output_dir) / subject / 'perf'
        stem = _without_session(naming.parse(path_a).stem, session_a)
        for space in (TEMPLATE, 'T1w'):
            written += _compare_space(output_dir, out_dir, stem, space, desc, path_a, path_b,
                                      normalise, z_threshold, min_volume_mm3,
                                      (session_a, session_b))
    return written


def _alnum(label: str) -> str:
    return re.sub(r'[^A-Za-z0-9]', '', label)


def _compare_space(output_dir, out_dir, stem, space, desc, path_a, path_b, normalise,
                   z_threshold, min_volume_mm3, labels) -> list[str]:
    files = {k: (_sibling(p, 'cbf_space', space), _sibling(p, 'cbf_se_space', space))
             for k, p in (('a', path_a), ('b', path_b))}
    if not all(f.exists() for f in (files['a'][0], files['b'][0])):
        return []
    (a, img), b = images.load(files['a'][0]), images.load(files['b'][0])[0]
    if a.shape != b.shape:
        return []  # T1w space of sessions with different anatomical references
    se = {k: images.load(v[1])[0] if v[1].exists() else None for k, v in files.items()}
    for k in se:
        if se[k] is not None:
            se[k] = np.where(se[k] > 0, se[k], np.nan)  # 0 = not estimable
    valid = (a != 0) & (b != 0)
    result = sessions.difference(a, b, valid, normalise=normalise, se_a=se['a'], se_b=se['b'])
    info = {'Comparison': f'ses-{labels[0]} minus ses-{labels[1]}',
            'Sources': [derivative_uri(output_dir, files[k][0]) for k in ('a', 'b')],
            'GlobalNormalisation': bool(normalise),
            'GlobalScaleAppliedToA': result['scale'], 'SpatialReference': space,
            'MinimumReferenceCBFForPercent': sessions.MIN_REFERENCE_CBF,
            'ZDefinition': '(A - B) / sqrt(SE_A^2 + SE_B^2), each run\'s standard-error map',
            'OutsideCommonMask': 'set to 0', 'Software': f'bids-asl {__version__}'}
    written = []
    for key, output in (('difference', 'comparison'), ('percent', 'comparison_percent'),
                        ('z', 'comparison_z')):
        target = out_dir / naming.name_for(output, stem, space=space, comparison=desc)
        images.save(np.nan_to_num(result[key], nan=0.0), img, target)
        write_json(naming.sidecar_of(target), {**info, 'Units': naming.OUTPUTS[output].units})
        written.append(str(target))
    if space == TEMPLATE:
        written += _clusters(out_dir, stem, desc, result, img.affine, z_threshold,
                             min_volume_mm3, info)
        written += _regional(out_dir, stem, desc, path_a, path_b, result['scale'], info)
    return written


def _clusters(out_dir, stem, desc, result, affine, z_threshold, min_volume_mm3, info):
    voxel = float(abs(np.linalg.det(affine[:3, :3])))
    found = regions.clusters(result['z'], affine, z_threshold,
                             min_voxels=int(np.ceil(min_volume_mm3 / voxel)))
    inv = np.linalg.inv(affine)
    rows = []
    for c in found:
        ijk = np.rint(inv[:3, :3] @ np.asarray(c.peak_mm) + inv[:3, 3]).astype(int)
        rows.append({'cluster': c.index,
                     'direction': 'increase' if c.sign == 'higher' else 'decrease',
                     'n_voxels': c.n_voxels, 'volume_mm3': c.volume_mm3, 'peak_z': c.peak,
                     'mean_z': c.mean, 'peak_x': c.peak_mm[0], 'peak_y': c.peak_mm[1],
                     'peak_z_mm': c.peak_mm[2],
                     'mean_percent': float(result['percent'][tuple(ijk)])})
    target = write_tsv(out_dir / naming.name_for('comparison_clusters', stem, comparison=desc),
                       CLUSTER_COLUMNS, rows)
    write_json(naming.sidecar_of(target), {**info, 'ZThreshold': z_threshold,
                                             'MinimumClusterVolume': min_volume_mm3,
                                             'mean_percent': 'percent change at the peak'})
    return [str(target)]


def _regional(out_dir, stem, desc, path_a, path_b, scale, info):
    written = []
    tables_b = RunOutputs(naming.parse(path_b).stem, path_b.parent).regional_tables()
    for atlas, table_a in RunOutputs(naming.parse(path_a).stem,
                                     path_a.parent).regional_tables().items():
        table_b = tables_b.get(atlas)
        if table_b is None:
            continue
        rows_b = {r['region']: r for r in read_tsv(table_b)}
        rows = []
        for row in read_tsv(table_a):
            other = rows_b.get(row['region'])
            if other is None:
                continue
            mean_a, mean_b = _num(row['mean']) * scale, _num(other['mean'])
            diff = mean_a - mean_b
            rows.append({'atlas': atlas, 'region': row['region'], 'mean_a': mean_a,
                         'mean_b': mean_b, 'difference': diff,
                         'percent': 100 * diff / mean_b if mean_b > 0 else float('nan'),
                         'n_voxels_a': row['n_voxels'], 'n_voxels_b': other['n_voxels']})
        target = write_tsv(out_dir / naming.name_for('comparison_regional', stem, atlas=atlas,
                                                      comparison=desc), REGION_COLUMNS, rows)
        write_json(naming.sidecar_of(target), {
            **info, 'mean_a': 'regional mean of session A (times GlobalScaleAppliedToA)',
            'mean_b': 'regional mean of session B', 'percent': '100 (A - B) / B'})
        written.append(str(target))
    return written
