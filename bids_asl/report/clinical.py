"""Report sections of the clinical outputs: a run's lesion table (``--lesion-masks``) and the
subject's session comparisons (``--compare-sessions A B``), from the derivative files only.

Tables are shown as written (long format, the file's row order) with readable headers and
units; the maps on fixed, symmetric scales, the same in every report.
"""

from __future__ import annotations

import re

import numpy as np

from bids_asl.io import collect, tsv
from bids_asl.io.images import load_canonical
from bids_asl.io.naming import sidecar_of
from bids_asl.report import figures

#: Fixed symmetric display scales of the session comparison maps.
PERCENT_RANGE = 50.0   # percent change
DIFFERENCE_RANGE = 30.0  # mL/100g/min, when there is no percent map
Z_RANGE = 5.0
CBF_UNITS = 'mL/100g/min'


def _columns(rows: list[dict], labels: dict) -> list[tuple[str, str]]:
    """(column, header) of the known columns in ``labels`` order, then any other column of the
    file under its own name."""
    present = list(rows[0]) if rows else list(labels)
    return [(c, labels[c]) for c in labels if c in present] + \
        [(c, c) for c in present if c not in labels]


def _band(band: str) -> str:
    return band.replace('-', '–') if not band.startswith('>') else '> ' + band[1:]


def lesion_label(row: dict) -> str:
    """Readable name of one row of ``<prefix>_desc-lesions_cbf.tsv``."""
    kind, lesion, band = row.get('kind', ''), row.get('lesion', ''), row.get('band_mm', '')
    if kind == 'lesion':
        return f'lesion {lesion}'
    if kind == 'ring':
        return f'ring {_band(band)} mm around lesion {lesion}'
    if kind == 'all_lesions':
        return 'all lesions'
    if kind == 'nawm':
        return 'NAWM, all' if band in ('all', 'n/a', '') else \
            f'NAWM {_band(band)} mm from the nearest lesion'
    return ' '.join(v for v in (kind, lesion, band) if v and v != 'n/a')


def lesions(run: collect.RunOutputs) -> dict | None:
    """The run's lesion table with readable row names, or None without ``--lesion-masks``."""
    path = run.find('lesions')
    if path is None:
        return None
    sidecar = collect.read_json(sidecar_of(path))
    units = sidecar.get('Units', CBF_UNITS)
    rows = [{'name': lesion_label(r), 'row_class': 'sub' if r.get('kind') == 'ring' else '',
             **r} for r in tsv.read_tsv(path)]
    labels = {'name': 'region', 'n_voxels': 'voxels', 'volume_mm3': 'volume (mm³)',
              'mean': f'mean CBF ({units})', 'median': f'median CBF ({units})',
              'sd': f'SD of CBF ({units})'}
    hidden = {'kind', 'lesion', 'band_mm', 'row_class'}  # shown through the row name
    columns = [(c, h) for c, h in _columns(rows, labels) if c not in hidden]
    notes = [f'{key}: {text}' for key, text in (
        ('grid', sidecar.get('LesionSpace')), ('lesions', sidecar.get('Lesions')),
        ('rings', _pairs_mm(sidecar.get('RingsMM'))), ('NAWM', sidecar.get('NAWM')),
        ('NAWM bands', _pairs_mm(sidecar.get('NAWMBandsMM')))) if text]
    return {'file': path.name, 'rows': rows, 'columns': columns, 'notes': notes}


def _pairs_mm(pairs) -> str | None:
    if not isinstance(pairs, list):
        return None
    text = []
    for pair in pairs:
        if isinstance(pair, list) and len(pair) == 2:
            lo, hi = pair
            text.append(f'> {lo:g} mm' if hi is None else f'{lo:g}–{hi:g} mm')
    return ', '.join(text) or None


def _sessions(sidecar: dict, desc: str) -> tuple[str, str]:
    match = re.fullmatch(r'ses-(.+) minus ses-(.+)', str(sidecar.get('Comparison', '')))
    if match:
        return match[1], match[2]
    a, _, b = desc.partition('Minus')
    return a, b


def _shown(volume: np.ndarray) -> np.ndarray:
    """0 is outside the sessions' common mask (or undefined): drawn as background."""
    return np.where(volume != 0, volume, np.nan)


def _comparison_figures(comp: collect.ComparisonOutputs, a: str, b: str,
                        z_threshold: float | None) -> tuple[list[dict], list[str]]:
    figs, notes = [], []
    sessions = f'A = ses-{a}, B = ses-{b}'
    diff = load_canonical(comp.map())
    slices = figures.pick_slices(diff)
    percent = load_canonical(comp.map('Percent'))
    common = diff != 0  # the sessions' common mask: outlined, since 0 % is drawn white too
    mask_note = ', the common mask of the two runs outlined in grey'
    if percent is not None and np.any(percent != 0):
        figs.append({'title': 'CBF change, percent', 'uri': figures.mosaic(
            _shown(percent), vmin=-PERCENT_RANGE, vmax=PERCENT_RANGE, cmap='RdBu_r',
            label='%', slices=slices, contour=common, contour_color='0.5'),
            'caption': f'100 (A − B) / B, {sessions}, in template space where B ≥ 5 '
                       f'{CBF_UNITS}; fixed scale ±{PERCENT_RANGE:g} % in every report, red: '
                       f'increase{mask_note}'})
    else:
        figs.append({'title': 'CBF difference', 'uri': figures.mosaic(
            _shown(diff), vmin=-DIFFERENCE_RANGE, vmax=DIFFERENCE_RANGE, cmap='RdBu_r',
            label=CBF_UNITS, slices=slices, contour=common, contour_color='0.5'),
            'caption': f'A − B, {sessions}, in template space; fixed scale '
                       f'±{DIFFERENCE_RANGE:g} {CBF_UNITS} in every report, red: increase'
                       f'{mask_note}'})
    z = load_canonical(comp.map('Z'))
    if z is not None and np.any(z != 0):
        supra = z_threshold is not None and np.any(np.abs(z) >= z_threshold)
        figs.append({'title': 'z map', 'uri': figures.mosaic(
            _shown(z), vmin=-Z_RANGE, vmax=Z_RANGE, cmap='RdBu_r', label='z', slices=slices,
            contour=np.abs(z) if supra else None, contour_level=z_threshold or 0.0,
            contour_color='limegreen'),
            'caption': f'z = (A − B) / √(SE_A² + SE_B²), {sessions}, from each run\'s own '
                       f'standard error; fixed scale ±{Z_RANGE:g}' + (
                           f'; |z| ≥ {z_threshold:g} outlined in green' if supra else '')})
    elif z is not None:
        notes.append('z map not defined (no standard error: runs with a single ΔM volume)')
    return figs, notes


def comparisons(output_dir, subject: str) -> list[dict]:
    """One entry per session comparison of the subject (none without ``--compare-sessions``)."""
    out = []
    for comp in collect.find_comparisons(output_dir, subject):
        sidecar = collect.read_json(sidecar_of(comp.map()))
        a, b = _sessions(sidecar, comp.desc)
        clusters_path = comp.clusters()
        cluster_info = collect.read_json(sidecar_of(clusters_path)) if clusters_path else {}
        z_threshold = cluster_info.get('ZThreshold')
        figs, notes = _comparison_figures(comp, a, b, z_threshold)
        clusters = tsv.read_tsv(clusters_path) if clusters_path else None
        cluster_labels = {
            'cluster': 'cluster', 'direction': 'direction', 'n_voxels': 'voxels',
            'volume_mm3': 'volume (mm³)', 'peak_z': 'peak z', 'mean_z': 'mean z',
            'peak_x': 'peak x (mm)', 'peak_y': 'peak y (mm)', 'peak_z_mm': 'peak z (mm)',
            'mean_percent': 'change at the peak (%)'}
        region_labels = {
            'region': 'region', 'mean_a': f'mean ses-{a} ({CBF_UNITS})',
            'mean_b': f'mean ses-{b} ({CBF_UNITS})',
            'difference': f'ses-{a} − ses-{b} ({CBF_UNITS})',
            'percent': 'change (%)', 'n_voxels_a': f'voxels ses-{a}',
            'n_voxels_b': f'voxels ses-{b}'}
        regional = {}
        for atlas, path in comp.regional_tables().items():
            rows = tsv.read_tsv(path)
            regional[atlas] = {'rows': rows, 'columns': [
                (c, h) for c, h in _columns(rows, region_labels) if c != 'atlas']}
        scale = sidecar.get('GlobalScaleAppliedToA')
        out.append({
            'id': f'cmp-{comp.stem}-{comp.desc}', 'stem': comp.stem, 'desc': comp.desc,
            'title': f'{comp.stem}: ses-{a} minus ses-{b}', 'figures': figs, 'notes': notes,
            'normalised': bool(sidecar.get('GlobalNormalisation')),
            'scale': scale if isinstance(scale, (int, float)) else None,
            'z_threshold': z_threshold,
            'min_volume': cluster_info.get('MinimumClusterVolume'),
            'clusters': clusters,
            'cluster_columns': _columns(clusters or [], cluster_labels),
            'regional': regional})
    return out
