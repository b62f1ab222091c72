"""``bids-asl BIDS_DIR OUTPUT_DIR group``: aggregate every participant's outputs.

Writes ``OUTPUT_DIR/group/`` (QC table, long regional and tissue tables, template-space mean/SD
maps, each with a JSON sidecar recording the exclusion rules and the runs they excluded) and
``OUTPUT_DIR/group.html``. Every file is written atomically.
"""

from __future__ import annotations

import logging

import numpy as np

from bids_asl import __version__, qcrules
from bids_asl.errors import ExitCode, InputMissingError, UsageError
from bids_asl.group import tables
from bids_asl.group.maps import template_maps
from bids_asl.io import collect
from bids_asl.io.derivatives import derivative_uri, write_json
from bids_asl.io.images import atomic_write_bytes, nifti_bytes
from bids_asl.io.qctable import RULE_METRICS

LOGGER = logging.getLogger('bids_asl')
GROUP_DIR = 'group'


def parse_rules(texts) -> list[qcrules.Rule]:
    try:
        return [qcrules.parse_rule(t, RULE_METRICS) for t in texts]
    except ValueError as exc:
        raise UsageError(str(exc), field='--group-exclude') from None


def _write_table(path, columns, rows, sidecar: dict) -> None:
    text = (tables.rows_text(columns, rows) if rows and isinstance(rows[0], list)
            else tables.tsv_text(columns, rows))
    atomic_write_bytes(path, text.encode('utf-8'))
    write_json(path.with_suffix('.json'), sidecar)


def _provenance(rules, qc_rows) -> dict:
    return {'ExclusionRules': [str(r) for r in rules],
            'ExclusionRulesNote': 'a run is excluded when any rule holds; a metric that is '
                                  'n/a never excludes',
            'ExcludedRuns': {r['source']: r['exclusion_reason'].split(';')
                             for r in qc_rows if r['excluded'] == 'yes'},
            'Software': f'bids-asl {__version__}'}


def _write_maps(settings, out_dir, runs, rules, qc_rows, progress) -> dict:
    """Mean/SD/count maps for CBF (and ATT) in template space; returns what was written."""
    excluded = {r['source'] for r in qc_rows if r['excluded'] == 'yes'}
    included = [r for r in runs if r.prefix not in excluded]
    written = {}
    for suffix, units in (('cbf', 'mL/100g/min'), ('att', 's')):
        done = []

        def tick(subject, done=done, suffix=suffix):
            done.append(subject)
            progress.step(f'group {suffix} maps: {len(done)} subject(s) read')

        result = template_maps(included, suffix, n_threads=settings.nprocs, on_subject=tick)
        if result is None:
            continue
        ref = result['reference']
        common = {
            'Sources': [derivative_uri(settings.output_dir, p) for p in result['sources']],
            'SubjectsIncluded': result['n_subjects'],
            'Averaging': "each subject's included runs are averaged first; then mean and SD "
                         '(ddof=1) across subjects, voxelwise; non-finite voxels, and voxels '
                         "outside a run's template-space brain mask, are missing",
            'SpatialReference': collect.TEMPLATE, **_provenance(rules, qc_rows)}
        for desc, data, meaning, unit, dtype in (
                ('mean', result['mean'], 'mean across subjects', units, np.float32),
                ('sd', result['sd'], 'SD across subjects (NaN where < 2 subjects)', units,
                 np.float32),
                ('count', result['count'], 'subjects with a finite value', 'subjects',
                 np.int16)):
            name = f'group_space-{collect.TEMPLATE}_desc-{desc}_{suffix}.nii.gz'
            path = out_dir / name
            atomic_write_bytes(path, nifti_bytes(data, ref, dtype=dtype))
            write_json(out_dir / name.replace('.nii.gz', '.json'),
                       {**common, 'Units': unit, 'Description': f'{suffix.upper()}: {meaning}'})
            written[f'{suffix}_{desc}'] = path
        progress.stage(None, f'group {suffix} maps of {result["n_subjects"]} subject(s) written')
    return written


def run_group(settings, progress) -> int:
    out = settings.output_dir
    rules = parse_rules(settings.group_exclude)
    runs = collect.find_runs(out)
    if settings.participant_label:
        runs = [r for r in runs if r.subject in settings.participant_label]
    if settings.session_label:
        runs = [r for r in runs if r.session in settings.session_label]
    if not runs:
        raise InputMissingError('no participant outputs (sub-*/perf/*_cbf.json) to aggregate: '
                                'run the participant level first', path=out,
                                field='output_dir')
    group_dir = out / GROUP_DIR
    progress.stage(None, f'group level: {len(runs)} run(s) of '
                         f'{len({r.subject for r in runs})} subject(s)')
    qc_rows = tables.qc_rows(runs, rules)
    provenance = _provenance(rules, qc_rows)
    for row in qc_rows:
        if row['excluded'] == 'yes':
            LOGGER.info('%s excluded from the group maps: %s', row['source'],
                        row['exclusion_reason'])
    columns = tables.qc_columns()
    _write_table(group_dir / 'group_desc-qc_cbf.tsv', columns, qc_rows,
                 {**tables.sidecar(columns, tables.DESCRIPTIONS), **provenance})
    pnames, participants = collect.read_participants(settings.bids_dir)
    written = {'qc': group_dir / 'group_desc-qc_cbf.tsv'}
    excluded = {r['source']: r['excluded'] for r in qc_rows}
    for key, cols, make in (('regional', tables.REGIONAL_COLUMNS, tables.regional_rows),
                            ('tissue', tables.TISSUE_COLUMNS, tables.tissue_rows)):
        pcols = tables.participant_columns(pnames, cols)
        rows = [row for run in runs for row in make(
            run, excluded[run.prefix], participants.get(f'sub-{run.subject}', {}), pcols)]
        if not rows:
            continue
        columns = (*cols, *pcols.values())
        descriptions = {**tables.DESCRIPTIONS, **tables.participant_descriptions(pcols)}
        path = group_dir / f'group_desc-{key}_cbf.tsv'
        _write_table(path, columns, rows, {**tables.sidecar(columns, descriptions),
                                           **provenance})
        written[key] = path
        progress.stage(None, f'{path.name}: {len(rows)} row(s)')
    written.update(_write_maps(settings, group_dir, runs, rules, qc_rows, progress))
    if settings.reference_group is not None:
        from bids_asl.group.normative import normative_outputs  # noqa: PLC0415

        written.update(normative_outputs(settings, group_dir, runs, qc_rows, provenance,
                                         progress))
    from bids_asl.report.group import write_group_report  # noqa: PLC0415 - matplotlib

    report = write_group_report(out, qc_rows, written, rules)
    progress.stage(None, f'group report {report.name} written')
    return int(ExitCode.OK)
