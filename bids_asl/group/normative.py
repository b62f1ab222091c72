"""``--reference-group COLUMN=VALUE``: normative z of every participant against a reference group.

The participants whose ``participants.tsv`` row has ``COLUMN`` equal to ``VALUE`` are the
reference. Each reference participant contributes one template-space CBF image (the mean of its
included runs, smoothed within its brain) to a voxelwise linear model (intercept, plus the
``--normative-covariates``); every participant's session (mean of the session's included runs)
is then scored against it, reference participants leave-one-out. The same model runs on the
regional means of the per-run atlas tables. Writes into ``OUTPUT_DIR/group/``:

* ``group_space-<tpl>_desc-normative{Mean,Sd,Count}_cbf.nii.gz``: the reference model,
* ``normative/sub-X[_ses-Y]_space-<tpl>_desc-normativeZ_cbf.nii.gz``: one z map per session,
* ``group_desc-normativeZ_cbf.tsv``: regional z (long format),
* ``group_desc-normativeClusters_cbf.tsv``: clusters of |z| ≥ threshold in grey matter.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nibabel as nb
import numpy as np

from bids_asl import __version__
from bids_asl.constants import TEMPLATE
from bids_asl.errors import InputMissingError, UsageError
from bids_asl.group import tables
from bids_asl.group.maps import subject_mean
from bids_asl.io import collect, templates, tsv
from bids_asl.io.derivatives import derivative_uri, write_json
from bids_asl.io.images import atomic_write_bytes, nifti_bytes
from bids_asl.io.naming import LEVELS, path_for, sidecar_of
from bids_asl.qcrules import as_float
from bids_asl.quant import qc, regions
from bids_asl.quant.covariates import CovariateCoding, NotScored, cell_value
from bids_asl.quant.normative import NormativeModel
from bids_asl.quant.resample import sample_linear

LOGGER = logging.getLogger('bids_asl')
#: Fewer residual degrees of freedom (n − p − 1) than this: a warning with the outputs.
MIN_DOF_WITHOUT_WARNING = 10
#: Template grey-matter probability above which flagged clusters are searched.
GM_THRESHOLD = 0.5
REGION_COLUMNS = ('participant_id', 'session_id', 'reference', 'atlas', 'index', 'region',
                  'hemisphere', 'cbf', 'expected', 'reference_sd', 'z', 'n_reference')
CLUSTER_COLUMNS = ('participant_id', 'session_id', 'reference', 'cluster', 'direction',
                   'n_voxels', 'volume_mm3', 'peak_z', 'mean_z', 'peak_x', 'peak_y', 'peak_z_mm',
                   'peak_region')
DESCRIPTIONS = {
    'participant_id': 'participant', 'session_id': 'session, or n/a',
    'reference': 'yes for a reference participant (scored leave-one-out)',
    'atlas': 'atlas (seg entity of the per-run regional table)',
    'index': 'region index in the atlas', 'region': 'region name',
    'hemisphere': 'bilateral (the whole region), left or right',
    'cbf': "the session's regional mean CBF (mean over its included runs), mL/100g/min",
    'expected': "the reference model's prediction for this participant (without it when it "
                'is a reference participant), mL/100g/min',
    'reference_sd': "the reference group's residual SD (without this participant when it is a "
                    'reference participant), mL/100g/min',
    'z': '(cbf - expected) / reference_sd',
    'n_reference': 'reference participants with a value for this region',
    'cluster': 'cluster number, largest first', 'direction': 'higher or lower than expected',
    'n_voxels': 'voxels in the cluster (template grid)', 'volume_mm3': 'cluster volume, mm3',
    'peak_z': 'z of largest magnitude', 'mean_z': 'mean z over the cluster',
    'peak_x': 'peak position, mm (template space)', 'peak_y': 'peak position, mm',
    'peak_z_mm': 'peak position, mm', 'peak_region': 'atlas region at the peak',
}


@dataclass(frozen=True)
class NormativeOptions:
    """``--reference-group COLUMN=VALUE`` and the ``--normative-*`` options."""

    column: str
    value: str
    covariates: tuple[str, ...] = ()
    fwhm: float = 8.0
    z_threshold: float = 3.0
    min_volume: float = 400.0
    region_atlas: str | None = None  # the atlas naming the cluster peaks (first of --atlases)
    nprocs: int = 1


@dataclass(frozen=True)
class _Unit:
    """The maps scored together: one session of one participant."""

    subject: str
    session: str | None
    paths: tuple[Path, ...]
    runs: tuple[collect.RunOutputs, ...]

    @property
    def participant_id(self) -> str:
        return f'sub-{self.subject}'

    @property
    def session_id(self) -> str:
        return f'ses-{self.session}' if self.session else 'n/a'

    @property
    def stem(self) -> str:
        return f'sub-{self.subject}' + (f'_ses-{self.session}' if self.session else '')


@dataclass(frozen=True)
class _Reference:
    """Who is scored, against which participants, with which design rows."""

    table: Path                      # participants.tsv
    names: list[str]                 # its columns
    participants: dict               # participant_id → row
    units: list[_Unit]               # every included session with template CBF
    by_subject: dict                 # participant_id → its units
    reference: list[str]             # the reference participants (scorable)
    coding: CovariateCoding
    centre: np.ndarray
    rows_of: dict                    # participant_id → design row (scorable participants)
    not_scored: dict                 # participant_id → why not
    warnings: list[str]


def _smoothed(paths, reference: nb.Nifti1Image, fwhm: float) -> np.ndarray:
    """Mean of the maps (missing outside each run's brain), smoothed within the finite voxels
    (mask-normalised Gaussian), NaN outside them."""
    data = subject_mean(list(paths), reference)
    inside = np.isfinite(data)
    voxel = np.sqrt((reference.affine[:3, :3] ** 2).sum(axis=0))
    smooth = qc.smooth_within(np.where(inside, data, 0.0), inside, fwhm, voxel)
    return np.where(inside, smooth, np.nan)


def _run_regional(run: collect.RunOutputs) -> dict[tuple, float]:
    """(atlas, index, region, hemisphere) → the run's regional mean CBF."""
    out = {}
    for atlas, path in run.regional_tables().items():
        for row in tsv.iter_rows(path):
            for hemi, (col, _, _) in tables.HEMISPHERES.items():
                value = as_float(row.get(col))
                if value is not None:
                    out[(row.get('atlas') or atlas, row.get('index', 'n/a'),
                         row.get('region', 'n/a'), hemi)] = value
    return out


def _mean_values(tables_of_runs) -> dict[tuple, float]:
    """Key → mean over the runs that have it."""
    values = defaultdict(list)
    for table in tables_of_runs:
        for key, value in table.items():
            values[key].append(value)
    return {k: float(np.mean(v)) for k, v in values.items()}


def _units(runs) -> list[_Unit]:
    groups = defaultdict(list)
    for run in runs:
        path = run.find('cbf_space', space=TEMPLATE)
        if path is not None:
            groups[(run.subject, run.session or '')].append((path, run))
    return [_Unit(subject, session or None, tuple(p for p, _ in items),
                  tuple(r for _, r in items))
            for (subject, session), items in sorted(groups.items(), key=lambda kv: kv[0])]


def _ordered_map(function, items, workers: int):
    """``map(function, items)`` on ``workers`` threads (numpy, scipy.ndimage and zlib release
    the GIL), results in order, at most ``2 × workers`` of them pending (bounded memory)."""
    items = list(items)
    if workers <= 1:
        yield from map(function, items)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = deque()
        for item in items:
            pending.append(pool.submit(function, item))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _write_tsv(path: Path, columns, rows, sidecar: dict, ref: _Reference) -> None:
    """TSV with the participants.tsv columns appended (renamed if they clash), and sidecar."""
    pcols = tables.participant_columns(ref.names, columns)
    rows = ({**r, **{new: ref.participants.get(r['participant_id'], {}).get(old)
                     for old, new in pcols.items()}} for r in rows)
    descriptions = {**DESCRIPTIONS, **tables.participant_descriptions(pcols)}
    columns = (*columns, *pcols.values())
    tsv.write_tsv(path, columns, rows)
    write_json(sidecar_of(path), {**tables.sidecar(columns, descriptions), **sidecar})


def _reference(options: NormativeOptions, bids_dir, runs, qc_rows) -> _Reference:
    """Check participants.tsv and the options; code the covariates; choose the reference."""
    table = Path(bids_dir) / 'participants.tsv'
    if not table.is_file():
        raise InputMissingError('file missing (needed by --reference-group)', path=table,
                                field='--reference-group')
    names, participants = collect.read_participants(bids_dir)
    for col, flag in ((options.column, '--reference-group'),
                      *((c, '--normative-covariates') for c in options.covariates)):
        if col not in names:
            raise UsageError(f'no column {col!r} (columns: {", ".join(names) or "none"})',
                             path=table, field=flag)
    excluded = {r['source'] for r in qc_rows if r['excluded'] == 'yes'}
    units = _units([r for r in runs if r.prefix not in excluded])
    by_subject = defaultdict(list)
    for unit in units:
        by_subject[unit.participant_id].append(unit)
    cells = {pid: {c: cell_value(participants.get(pid, {}).get(c))
                   for c in (options.column, *options.covariates)} for pid in by_subject}
    candidates = [pid for pid in by_subject if cells[pid][options.column] == options.value]
    try:
        coding = CovariateCoding.from_reference(options.covariates,
                                                [cells[pid] for pid in candidates])
    except ValueError as exc:
        raise UsageError(str(exc), path=table, field='--normative-covariates') from None
    not_scored, x_of = {}, {}
    for pid in by_subject:
        try:
            x_of[pid] = coding.encode(cells[pid])
        except NotScored as exc:
            not_scored[pid] = str(exc)
            LOGGER.warning('%s: no normative z (%s)', pid, exc)
    reference = [pid for pid in candidates if pid in x_of]
    n_params = coding.n_params
    if len(reference) < n_params + 2:
        raise InputMissingError(
            f'{len(reference)} reference participant(s) with {options.column}={options.value} '
            f'and included template-space CBF; the model ({n_params} parameter(s)) needs at '
            f'least {n_params + 2}', path=table, field='--reference-group')
    warnings = []
    if len(reference) - n_params - 1 < MIN_DOF_WITHOUT_WARNING:
        warnings.append(
            f'only {len(reference)} reference participant(s) for {n_params} parameter(s): the '
            f'leave-one-out SD has {len(reference) - n_params - 1} degree(s) of freedom, so z '
            'is unstable and heavy-tailed; treat it as descriptive')
        LOGGER.warning('normative z: %s', warnings[-1])
    centre, rows_of = coding.design_rows(x_of, reference)
    return _Reference(table, names, participants, units, by_subject, reference, coding, centre,
                      rows_of, not_scored, warnings)


def _sidecars(options: NormativeOptions, ref: _Reference, provenance: dict) -> tuple[dict, dict]:
    """(fields of every output, fields of the voxelwise outputs)."""
    base = {'ReferenceGroup': f'{options.column}={options.value}',
            'ReferenceParticipants': ref.reference,
            'Model': 'voxelwise (or regionwise) ordinary least squares of the reference '
                     "participants' CBF on an intercept"
                     + (' and the covariates' if ref.coding.covariates else '')
                     + '; z = (CBF - prediction) / residual SD; reference participants '
                     'leave-one-out (closed form)',
            'Covariates': ref.coding.to_sidecar(),
            'CovariateCentre': [float(c) for c in ref.centre],
            'Averaging': "a reference participant's included runs (all sessions) are averaged; "
                         "each scored session is the mean of that session's included runs",
            'NotScored': ref.not_scored, 'Warnings': ref.warnings, 'SpatialReference': TEMPLATE,
            'Software': f'bids-asl {__version__}', **provenance}
    maps = {**base, 'SmoothingFWHM': options.fwhm,
            'SmoothingNote': 'Gaussian within each map\'s brain mask (mask-normalised), before '
                             'the model'}
    return base, maps


def _fit_maps(options: NormativeOptions, ref: _Reference, first: nb.Nifti1Image, progress
              ) -> tuple[NormativeModel, dict]:
    """The voxelwise model of the reference participants' smoothed maps; returns it and the
    maps it was fitted on (participant_id → paths), for leave-one-out."""
    model = NormativeModel(first.shape[:3], ref.coding.n_params)
    ref_maps = {pid: tuple(p for u in ref.by_subject[pid] for p in u.paths)
                for pid in ref.reference}
    images = _ordered_map(lambda pid: _smoothed(ref_maps[pid], first, options.fwhm),
                          ref.reference, max(1, options.nprocs))
    for i, (pid, image) in enumerate(zip(ref.reference, images, strict=True), start=1):
        model.add(image, ref.rows_of[pid])  # in order: the sums are the same bytes every time
        progress.step(f'normative model: {i}/{len(ref.reference)} reference participant(s)')
    model.fit()
    return model, ref_maps


def _write_model(output_dir, model: NormativeModel, first, maps: dict) -> dict:
    written = {}
    for stat, data, meaning, unit, dtype in (
            ('Mean', model.mean, 'reference model prediction at the covariate centre',
             'mL/100g/min', np.float32),
            ('Sd', model.sd, 'reference residual SD', 'mL/100g/min', np.float32),
            ('Count', model.n, 'reference participants with a value', 'participants',
             np.int16)):
        path = (path_for(output_dir, 'normative_count', 'group') if stat == 'Count' else
                path_for(output_dir, 'normative_map', 'group', Stat=stat))
        atomic_write_bytes(path, nifti_bytes(data, first, dtype=dtype))
        write_json(sidecar_of(path), {**maps, 'Units': unit, 'Description': f'CBF: {meaning}'})
        written[f'normative{stat}'] = path
    return written


def _cluster_search(options: NormativeOptions, first):
    """(grey-matter search mask, region_at(peak) or None, minimum cluster voxels)."""
    shape, affine = first.shape[:3], first.affine
    grey = sample_linear(*templates.load_template('gm'), shape, affine) >= GM_THRESHOLD
    region_at = None
    if options.region_atlas:
        atlas = options.region_atlas
        labels = regions.labels_on_grid(
            *templates.load_atlas(atlas), shape, affine,
            probabilistic=templates.ATLASES[atlas].kind == 'prob',
            threshold=templates.MAXPROB_THRESHOLD)
        region_at = regions.region_lookup(labels, affine, templates.atlas_names(atlas), atlas)
    voxel_mm3 = float(abs(np.linalg.det(affine[:3, :3])))
    return grey, region_at, max(1, math.ceil(options.min_volume / voxel_mm3))


def _score_sessions(options, output_dir, ref: _Reference, model, ref_maps, first, maps,
                    progress) -> tuple[list[dict], int]:
    """Write every scorable session's z map; returns the flagged clusters' rows and the
    number of maps."""
    grey, region_at, min_voxels = _cluster_search(options, first)
    affine = first.affine

    def score(unit: _Unit) -> list[dict]:
        pid = unit.participant_id
        image = _smoothed(unit.paths, first, options.fwhm)
        left_out = None
        if pid in ref_maps:
            left_out = image if unit.paths == ref_maps[pid] else _smoothed(ref_maps[pid],
                                                                           first, options.fwhm)
        z = model.z(image, ref.rows_of[pid], left_out=left_out)
        path = path_for(output_dir, 'normative_z', unit.stem)
        atomic_write_bytes(path, nifti_bytes(z, first, dtype=np.float32))
        write_json(sidecar_of(path),
                   {**maps, 'Units': 'z', 'Sources': [derivative_uri(output_dir, p)
                                                      for p in unit.paths],
                    'LeaveOneOut': left_out is not None,
                    'Description': 'CBF z-score against the reference group (NaN where the '
                                   'model has fewer than p + 2 reference values or the map '
                                   'has none)'})
        return [{'participant_id': pid, 'session_id': unit.session_id,
                 'reference': 'yes' if left_out is not None else 'no',
                 'cluster': c.index, 'direction': c.sign, 'n_voxels': c.n_voxels,
                 'volume_mm3': c.volume_mm3, 'peak_z': c.peak, 'mean_z': c.mean,
                 'peak_x': c.peak_mm[0], 'peak_y': c.peak_mm[1], 'peak_z_mm': c.peak_mm[2],
                 'peak_region': region_at(c.peak_mm) if region_at else 'n/a'}
                for c in regions.clusters(z, affine, options.z_threshold, min_voxels,
                                          where=grey)]

    scored = [u for u in ref.units if u.participant_id in ref.rows_of]
    cluster_rows = []
    for i, rows in enumerate(_ordered_map(score, scored, max(1, options.nprocs)), start=1):
        cluster_rows += rows
        progress.step(f'normative z maps: {i}/{len(scored)} session(s)')
    return cluster_rows, len(scored)


def normative_outputs(options: NormativeOptions, *, bids_dir, output_dir, runs, qc_rows,
                      provenance: dict, progress) -> dict:
    """Fit the reference model, write every participant's z map, regional z table and flagged
    clusters; returns {key: path} of what was written."""
    ref = _reference(options, bids_dir, runs, qc_rows)
    first = nb.load(str(ref.units[0].paths[0]))
    base, maps = _sidecars(options, ref, provenance)
    model, ref_maps = _fit_maps(options, ref, first, progress)
    written = _write_model(output_dir, model, first, maps)
    cluster_rows, n_maps = _score_sessions(options, output_dir, ref, model, ref_maps, first,
                                           maps, progress)
    written['normativeZ'] = Path(output_dir) / LEVELS['normative'].folder
    clusters_path = path_for(output_dir, 'normative_clusters', 'group')
    _write_tsv(clusters_path, CLUSTER_COLUMNS, cluster_rows,
               {**maps, 'ClusterThreshold': options.z_threshold,
                'MinimumClusterVolume': options.min_volume,
                'ClusterConnectivity': 26,
                'ClusterSearchMask': f'template grey-matter probability >= {GM_THRESHOLD}',
                'RegionAtlas': options.region_atlas or 'n/a'}, ref)
    written['normativeClusters'] = clusters_path
    regional = _regional_z(ref)
    if regional:
        path = path_for(output_dir, 'normative_regional', 'group')
        _write_tsv(path, REGION_COLUMNS, regional,
                   {**base, 'Smoothing': 'none (regional means of the per-run tables)'}, ref)
        written['normativeRegional'] = path
    progress.stage(None, f'normative z: {len(ref.reference)} reference participant(s), '
                         f'{n_maps} map(s), {len(cluster_rows)} flagged cluster(s)')
    return written


def _regional_z(ref: _Reference) -> list[dict]:
    """Long-format regional z rows, from the per-run atlas tables."""
    units, by_subject, reference, rows_of = ref.units, ref.by_subject, ref.reference, ref.rows_of
    per_run = {r.prefix: _run_regional(r) for u in units for r in u.runs}
    unit_values = {u: _mean_values(per_run[r.prefix] for r in u.runs)
                   for u in units if u.participant_id in rows_of}
    ref_values = {pid: _mean_values(per_run[r.prefix] for u in by_subject[pid] for r in u.runs)
                  for pid in reference}
    keys = list(dict.fromkeys(k for v in (*ref_values.values(), *unit_values.values())
                              for k in v))
    if not keys:
        return []

    def vector(values):
        return np.array([values.get(k, np.nan) for k in keys])

    model = NormativeModel(len(keys), len(next(iter(rows_of.values()))))
    ref_vectors = {pid: vector(v) for pid, v in ref_values.items()}
    for pid in reference:
        model.add(ref_vectors[pid], rows_of[pid])
    model.fit()
    rows = []
    for unit, values in unit_values.items():
        pid = unit.participant_id
        y = vector(values)
        score = model.score(y, rows_of[pid], left_out=ref_vectors.get(pid))
        for j, (atlas, index, region, hemi) in enumerate(keys):
            if not math.isfinite(y[j]):
                continue
            rows.append({'participant_id': pid, 'session_id': unit.session_id,
                         'reference': 'yes' if pid in ref_vectors else 'no', 'atlas': atlas,
                         'index': index, 'region': region, 'hemisphere': hemi,
                         'cbf': float(y[j]), 'expected': float(score['expected'][j]),
                         'reference_sd': float(score['sd'][j]), 'z': float(score['z'][j]),
                         'n_reference': int(model.n[j])})
    return rows
