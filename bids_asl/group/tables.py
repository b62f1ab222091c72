"""Group tables: QC (one row per run) and long-format regional and tissue CBF, as rows."""

from __future__ import annotations

from bids_asl import qcrules
from bids_asl.io import collect, tsv
from bids_asl.io.qctable import DERIVED_QC_COLUMNS, QC_COLUMNS

ID_COLUMNS = ('participant_id', 'session_id', 'run', 'source')
REGIONAL_COLUMNS = (*ID_COLUMNS, 'atlas', 'index', 'region', 'hemisphere', 'mean', 'sd',
                    'n_voxels', 'excluded')
TISSUE_COLUMNS = (*ID_COLUMNS, 'tissue', 'threshold', 'mean', 'median', 'sd', 'n_voxels',
                  'excluded')
QC_EXTRA = ('score_rejected_fraction', 'excluded', 'exclusion_reason')
#: Per-run regional columns → long-table (mean, sd, n_voxels) for each hemisphere.
HEMISPHERES = {'bilateral': ('mean', 'sd', 'n_voxels'),
               'left': ('mean_left', 'sd_left', 'n_left'),
               'right': ('mean_right', 'sd_right', 'n_right')}


def ids(run: collect.RunOutputs) -> dict:
    return {'participant_id': f'sub-{run.subject}',
            'session_id': f'ses-{run.session}' if run.session else 'n/a',
            'run': run.run or 'n/a', 'source': run.prefix}


def participant_columns(columns: list[str], taken) -> dict[str, str]:
    """participants.tsv column → group column name (prefixed if it would clash)."""
    return {c: (f'participants_{c}' if c in taken else c) for c in columns}


def participant_descriptions(pcols: dict[str, str]) -> dict[str, str]:
    """Sidecar descriptions of the joined participants.tsv columns (group name → text)."""
    return {new: f'participants.tsv column {old!r}' for old, new in pcols.items()}


def qc_rows(runs, rules) -> list[dict]:
    """One QC row per run (n/a where the run has no QC table), with exclusion decisions."""
    out = []
    for run in runs:
        path = run.find('qc')
        rows = tsv.read_tsv(path) if path else []
        row = {**(rows[0] if rows else {}), **ids(run)}
        row.update({k: v for k, v in qcrules.derived_metrics(row).items()})
        reasons = qcrules.exclusion_reasons(row, rules)
        row['excluded'] = 'yes' if reasons else 'no'
        row['exclusion_reason'] = ';'.join(reasons) if reasons else 'n/a'
        out.append(row)
    return out


def qc_columns() -> tuple[str, ...]:
    return (*ID_COLUMNS, *(c for c in QC_COLUMNS if c not in ID_COLUMNS), *QC_EXTRA)


def _base(run, participant: dict, pcols: dict) -> tuple[list[str], list[str]]:
    return ([tsv.cell(v) for v in ids(run).values()],
            [tsv.cell(participant.get(old)) for old in pcols])


def regional_rows(run: collect.RunOutputs, excluded: str, participant: dict,
                  pcols: dict) -> list[list[str]]:
    """Rows (cells in ``REGIONAL_COLUMNS`` + participants order): one per region and
    hemisphere of every atlas table of the run."""
    out = []
    base, extra = _base(run, participant, pcols)
    for atlas, path in run.regional_tables().items():
        for row in tsv.iter_rows(path):
            head = [*base, tsv.cell(row.get('atlas') or atlas), tsv.cell(row.get('index')),
                    tsv.cell(row.get('region'))]
            for hemi, (mean, sd, n) in HEMISPHERES.items():
                out.append([*head, hemi, tsv.cell(row.get(mean)), tsv.cell(row.get(sd)),
                            tsv.cell(row.get(n)), excluded, *extra])
    return out


def tissue_rows(run: collect.RunOutputs, excluded: str, participant: dict,
                pcols: dict) -> list[list[str]]:
    path = run.find('tissue')
    if path is None:
        return []
    base, extra = _base(run, participant, pcols)
    keys = TISSUE_COLUMNS[len(ID_COLUMNS):-1]
    return [[*base, *(tsv.cell(row.get(k)) for k in keys), excluded, *extra]
            for row in tsv.iter_rows(path)]


def sidecar(columns, descriptions: dict) -> dict:
    return tsv.column_sidecar(descriptions, columns)


DESCRIPTIONS = {
    **QC_COLUMNS,
    **DERIVED_QC_COLUMNS,
    'run': 'run entity of the ASL series, or n/a',
    'excluded': 'yes when a group exclusion rule matched this run (see the JSON '
                '"ExclusionRules"); excluded runs are left out of the group maps',
    'exclusion_reason': 'the rules that matched, separated by ";", or n/a',
    'atlas': 'atlas (seg entity of the per-run regional table)',
    'index': 'region index in the atlas',
    'region': 'region name',
    'hemisphere': 'bilateral (the whole region), left or right',
    'mean': 'mean CBF over the region (hemisphere) voxels, mL/100g/min',
    'sd': 'SD of CBF over the voxels (n/a where the per-run table has none)',
    'n_voxels': 'voxels in the region (hemisphere) with CBF',
    'tissue': 'GM, WM or brain',
    'threshold': 'probability threshold of the tissue mask',
    'median': 'median CBF, mL/100g/min',
}
