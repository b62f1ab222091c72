"""``OUTPUT_DIR/group.html``: distributions, outlier flags, a sortable run table, the group maps
and links to the subject reports; self-contained like the subject reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bids_asl import __version__, qcrules
from bids_asl.io import collect, tsv
from bids_asl.io.images import atomic_write_bytes, load_canonical
from bids_asl.io.naming import LEVELS, parse, sidecar_of, stem_entities
from bids_asl.io.qctable import DERIVED_QC_COLUMNS, QC_COLUMNS
from bids_asl.quant.group import robust_z
from bids_asl.quant.stats import describe
from bids_asl.report import figures
from bids_asl.report.render import inline_script, render, software_versions
from bids_asl.report.subject import ATT_RANGE, CBF_RANGE

METRICS = ('mean_fd', 'max_fd', 'deltam_tsnr', 'qei', 'scov_gm', 'negative_cbf_fraction_brain',
           'gm_wm_ratio', 'cbf_mean_gm', 'cbf_mean_brain', 'score_rejected_fraction')
#: |robust z| above this flags a run as an outlier of the group for that metric.
OUTLIER_Z = 3.5
#: Normative z maps are drawn on ±Z_RANGE; at most MAX_Z_FIGURES of them (participants outside
#: the reference group first), the rest are in the files.
Z_RANGE = 5.0
MAX_Z_FIGURES = 24
DESCRIPTIONS = {**QC_COLUMNS, **DERIVED_QC_COLUMNS}
CLUSTER_SHOWN = ('participant_id', 'session_id', 'reference', 'cluster', 'direction',
                 'volume_mm3', 'peak_z', 'mean_z', 'peak_x', 'peak_y', 'peak_z_mm', 'peak_region')


@dataclass(frozen=True)
class GroupReportInputs:
    """What the group report is drawn from: the group level's QC rows (with the exclusion
    decisions), the rules as text and the files it wrote (key → path, as returned by
    ``bids_asl.group.run.aggregate``)."""

    output_dir: Path
    qc_rows: tuple[dict, ...]
    written: dict[str, Path] = field(default_factory=dict)
    rules: tuple[str, ...] = ()


def metric_table(qc_rows: list[dict]) -> tuple[list[dict], dict]:
    """Per-run cells (value, flag, robust z, outlier) and per-metric summaries."""
    cells = [{} for _ in qc_rows]
    stats = {}
    for metric in METRICS:
        values = [qcrules.as_float(r.get(metric)) for r in qc_rows]
        z = robust_z(values)
        outlier = np.abs(np.nan_to_num(z)) > OUTLIER_Z
        for i, value in enumerate(values):
            cells[i][metric] = {'value': value, 'flag': qcrules.flag(metric, value),
                                'z': None if np.isnan(z[i]) else float(z[i]),
                                'outlier': bool(outlier[i])}
        stats[metric] = {**describe(values), 'n_outliers': int(outlier.sum()),
                         'n_warn': sum(c[metric]['flag'] == 'warn' for c in cells)}
    return cells, stats


def _distributions(qc_rows, cells, stats) -> list[dict]:
    out = []
    for metric in METRICS:
        if stats[metric]['n'] == 0:
            continue
        values = [c[metric]['value'] for c in cells]
        flagged = [c[metric]['outlier'] or c[metric]['flag'] == 'warn' for c in cells]
        threshold = qcrules.THRESHOLDS.get(metric)
        out.append({'metric': metric, 'description': DESCRIPTIONS.get(metric, ''),
                    'uri': figures.distribution(
                        [np.nan if v is None else v for v in values], label=metric,
                        flagged=flagged, low=threshold.low if threshold else None,
                        high=threshold.high if threshold else None)})
    return out


def _map_figures(written: dict) -> list[dict]:
    figs = []
    for key, title, rng, cmap in (('cbf_mean', 'mean CBF', CBF_RANGE, 'viridis'),
                                  ('cbf_sd', 'SD of CBF', (0.0, CBF_RANGE[1] / 2), 'magma'),
                                  ('att_mean', 'mean ATT', ATT_RANGE, 'plasma')):
        if key in written:
            data = load_canonical(written[key])
            figs.append({'title': title, 'caption': f'{written[key].name}, scale {rng[0]:g}–'
                                                    f'{rng[1]:g}',
                         'uri': figures.mosaic(data, vmin=rng[0], vmax=rng[1], cmap=cmap,
                                               label=key)})
    return figs


def _normative(output_dir: Path, written: dict) -> dict | None:
    """The reference model, its flagged clusters and z maps (``--reference-group``)."""
    path = written.get('normativeClusters')
    if path is None:
        return None
    meta = collect.read_json(sidecar_of(path))
    clusters = tsv.read_tsv(path)
    z_dir = written.get('normativeZ', output_dir / LEVELS['normative'].folder)
    maps = {p: parsed.stem for p in sorted(z_dir.glob('*.nii.gz'))
            if (parsed := parse(p)) is not None and parsed.key == 'normative_z'}
    flagged = {}
    for row in clusters:
        flagged.setdefault(row['participant_id'] + row['session_id'], []).append(row)
    threshold = float(meta.get('ClusterThreshold', 3.0))
    figs = []
    reference = set(meta.get('ReferenceParticipants', []))
    for z_path in sorted(maps, key=lambda p: f'sub-{stem_entities(maps[p])["sub"]}' in reference):
        if len(figs) == MAX_Z_FIGURES:
            break
        z = load_canonical(z_path)
        figs.append({'title': maps[z_path],
                     'caption': f'normative z, scale ±{Z_RANGE:g}; |z| ≥ {threshold:g} outlined',
                     'uri': figures.mosaic(z, vmin=-Z_RANGE, vmax=Z_RANGE, cmap='RdBu_r',
                                           label='z', contour=(np.abs(np.nan_to_num(z))
                                                               >= threshold).astype(float),
                                           contour_color='k')})
    return {'reference': meta.get('ReferenceGroup'),
            'participants': meta.get('ReferenceParticipants', []),
            'covariates': meta.get('Covariates', {}), 'fwhm': meta.get('SmoothingFWHM'),
            'threshold': threshold, 'min_volume': meta.get('MinimumClusterVolume'),
            'not_scored': meta.get('NotScored', {}), 'warnings': meta.get('Warnings', []),
            'clusters': clusters,
            'columns': CLUSTER_SHOWN, 'n_maps': len(maps), 'figures': figs,
            'max_figures': MAX_Z_FIGURES}


def group_context(inputs: GroupReportInputs) -> dict:
    output_dir, qc_rows, written = Path(inputs.output_dir), list(inputs.qc_rows), inputs.written
    cells, stats = metric_table(qc_rows)
    rows = []
    for row, cell in zip(qc_rows, cells, strict=True):
        report = f'{row["participant_id"]}.html'
        rows.append({'row': row, 'cells': cell,
                     'report': report if (output_dir / report).is_file() else None,
                     'n_flags': sum(c['outlier'] or c['flag'] == 'warn' for c in cell.values())})
    return {'rows': rows, 'metrics': METRICS, 'stats': stats, 'outlier_z': OUTLIER_Z,
            'n_subjects': len({r['participant_id'] for r in qc_rows}), 'n_runs': len(qc_rows),
            'n_excluded': sum(r['excluded'] == 'yes' for r in qc_rows),
            'rules': list(inputs.rules),
            'distributions': _distributions(qc_rows, cells, stats),
            'maps': _map_figures(written),
            'normative': _normative(output_dir, written),
            'files': [p.relative_to(output_dir).as_posix() for p in written.values()],
            'thresholds': list(qcrules.THRESHOLDS.values()),
            'software': software_versions(), 'version': __version__,
            **inline_script('sort.js')}


def write_group_report(inputs: GroupReportInputs) -> Path:
    html = render('group.html.j2', **group_context(inputs))
    return atomic_write_bytes(Path(inputs.output_dir) / 'group.html', html.encode('utf-8'))
