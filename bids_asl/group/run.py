"""``bids-asl BIDS_DIR OUTPUT_DIR group``: aggregate every participant's outputs.

Writes ``OUTPUT_DIR/group/`` (QC table, long regional and tissue tables, template-space mean/SD
maps, each with a JSON sidecar recording the exclusion rules and the runs they excluded) and,
with a reference group, the normative outputs. Every file is written atomically. The group
report is drawn from the result by the caller (``bids_asl.cli.group``), above this package.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from bids_asl import __version__, qcrules
from bids_asl.errors import InputMissingError, UsageError
from bids_asl.group import tables
from bids_asl.group.maps import write_group_maps
from bids_asl.group.normative import NormativeOptions, normative_outputs
from bids_asl.io import collect, tsv
from bids_asl.io.derivatives import write_json
from bids_asl.io.naming import path_for, sidecar_of
from bids_asl.io.qctable import RULE_METRICS

LOGGER = logging.getLogger('bids_asl')


@dataclass(frozen=True)
class GroupOptions:
    """What the group level needs from the command line."""

    output_dir: Path
    bids_dir: Path
    participant_label: tuple[str, ...] = ()
    session_label: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()   # exclusion rules as given, e.g. 'mean_fd>0.5'
    nprocs: int = 1
    normative: NormativeOptions | None = None


@dataclass(frozen=True)
class GroupResult:
    """What the group level wrote: the QC rows (with exclusions), the rules and the files."""

    qc_rows: list[dict]
    rules: tuple[qcrules.Rule, ...]
    written: dict[str, Path] = field(default_factory=dict)


def parse_rules(texts) -> list[qcrules.Rule]:
    try:
        return [qcrules.parse_rule(t, RULE_METRICS) for t in texts]
    except ValueError as exc:
        raise UsageError(str(exc), field='--group-exclude') from None


def _provenance(rules, qc_rows) -> dict:
    return {'ExclusionRules': [str(r) for r in rules],
            'ExclusionRulesNote': 'a run is excluded when any rule holds; a metric that is '
                                  'n/a never excludes',
            'ExcludedRuns': {r['source']: r['exclusion_reason'].split(';')
                             for r in qc_rows if r['excluded'] == 'yes'},
            'Software': f'bids-asl {__version__}'}


def find_group_runs(options: GroupOptions) -> list[collect.RunOutputs]:
    runs = collect.find_runs(options.output_dir)
    if options.participant_label:
        runs = [r for r in runs if r.subject in options.participant_label]
    if options.session_label:
        runs = [r for r in runs if r.session in options.session_label]
    if not runs:
        raise InputMissingError('no participant outputs (sub-*/perf/*_cbf.json) to aggregate: '
                                'run the participant level first', path=options.output_dir,
                                field='output_dir')
    return runs


def _long_tables(options, runs, qc_rows, provenance, progress) -> dict:
    """The long regional and tissue tables, written row by row (those with rows)."""
    names, participants = collect.read_participants(options.bids_dir)
    excluded = {r['source']: r['excluded'] for r in qc_rows}
    written = {}
    for key, cols, make in (('regional', tables.REGIONAL_COLUMNS, tables.regional_rows),
                            ('tissue', tables.TISSUE_COLUMNS, tables.tissue_rows)):
        pcols = tables.participant_columns(names, cols)
        columns = (*cols, *pcols.values())
        path = path_for(options.output_dir, f'group_{key}', 'group')
        out = tsv.TsvWriter(path, columns)
        try:
            for run in runs:
                out.write_all(make(run, excluded[run.prefix],
                                   participants.get(f'sub-{run.subject}', {}), pcols))
        except BaseException:
            out.abort()
            raise
        if not out.n_rows:
            out.abort()
            continue
        out.close()
        descriptions = {**tables.DESCRIPTIONS, **tables.participant_descriptions(pcols)}
        write_json(sidecar_of(path), {**tables.sidecar(columns, descriptions), **provenance})
        written[key] = path
        progress.stage(None, f'{path.name}: {out.n_rows} row(s)')
    return written


def aggregate(options: GroupOptions, progress) -> GroupResult:
    """Write the group tables and maps (and the normative outputs); the report is not drawn."""
    rules = tuple(parse_rules(options.exclude))
    runs = find_group_runs(options)
    progress.stage(None, f'group level: {len(runs)} run(s) of '
                         f'{len({r.subject for r in runs})} subject(s)')
    qc_rows = tables.qc_rows(runs, rules)
    provenance = _provenance(rules, qc_rows)
    for row in qc_rows:
        if row['excluded'] == 'yes':
            LOGGER.info('%s excluded from the group maps: %s', row['source'],
                        row['exclusion_reason'])
    columns = tables.qc_columns()
    qc_path = tsv.write_tsv(path_for(options.output_dir, 'group_qc', 'group'), columns, qc_rows)
    write_json(sidecar_of(qc_path),
               {**tables.sidecar(columns, tables.DESCRIPTIONS), **provenance})
    written = {'qc': qc_path}
    written.update(_long_tables(options, runs, qc_rows, provenance, progress))
    excluded = {r['source'] for r in qc_rows if r['excluded'] == 'yes'}
    written.update(write_group_maps(options.output_dir,
                                    [r for r in runs if r.prefix not in excluded], provenance,
                                    n_threads=options.nprocs, progress=progress))
    if options.normative is not None:
        written.update(normative_outputs(options.normative, bids_dir=options.bids_dir,
                                         output_dir=options.output_dir, runs=runs,
                                         qc_rows=qc_rows, provenance=provenance,
                                         progress=progress))
    return GroupResult(qc_rows, rules, written)
