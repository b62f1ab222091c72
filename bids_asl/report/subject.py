"""``OUTPUT_DIR/sub-<label>.html``: one self-contained report per subject, from the derivatives.

Sections appear when their data exist (motion, multi-delay, anatomy, regional tables, lesions,
session comparisons; the last two in ``report.clinical``). Every
image is an inline PNG, the CSS is inline, nothing is fetched: the page works offline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bids_asl import __version__, qcrules
from bids_asl.constants import TEMPLATE
from bids_asl.io import collect, naming, tsv
from bids_asl.io.images import atomic_write_bytes, load_canonical
from bids_asl.io.qctable import DERIVED_QC_COLUMNS, QC_COLUMNS
from bids_asl.report import clinical, figures
from bids_asl.report.methods import REFERENCES, methods_text
from bids_asl.report.render import flatten, render, software_versions

#: One colour scale for every CBF map of every report (mL/100 g/min), and for ATT (s).
CBF_RANGE = (0.0, 100.0)
ATT_RANGE = (0.0, 3.0)
ASYM_RANGE = 0.5
#: Settings of the invocation rather than of the processing: left out of the report, so that a
#: participant's report is the same bytes whether it ran alone (a Slurm array task) or with
#: others, in any folder, with any number of processes (the full TOML stays in the log folder).
UNSHOWN_SETTINGS = ('run_uuid', 'output_dir', 'work_dir', 'participant_label', 'session_label',
                    'nprocs', 'verbose', 'skip_bids_validation')
QC_SHOWN = ('mean_fd', 'max_fd', 'deltam_tsnr', 'qei', 'scov_gm', 'negative_cbf_fraction_gm',
            'negative_cbf_fraction_brain', 'gm_wm_ratio', 'cbf_mean_gm', 'cbf_mean_wm',
            'cbf_mean_brain', 'n_deltam_volumes', 'n_deltam_rejected_score',
            'score_rejected_fraction', 'tissue_maps')


def _masked(volume, mask):
    out = np.array(volume, dtype=float)
    if mask is not None and mask.shape == out.shape[:3]:
        out[~mask] = np.nan
    return out


def _image_figures(run: collect.RunOutputs) -> list[dict]:
    figs = []
    mask_img = load_canonical(run.find('mask'))
    mask = None if mask_img is None else mask_img > 0
    cbf = load_canonical(run.find('cbf'))
    slices = figures.pick_slices(cbf if cbf is not None else mask_img,
                                 mask=mask) if cbf is not None else None

    def add(title, uri, caption):
        figs.append({'title': title, 'uri': uri, 'caption': caption})

    for key, title in (('cbf', 'CBF'), ('score_cbf', 'CBF, SCORE'), ('scrub_cbf', 'CBF, SCRUB')):
        vol = cbf if key == 'cbf' else load_canonical(run.find(key))
        if vol is not None:
            add(title, figures.mosaic(_masked(vol, mask), vmin=CBF_RANGE[0], vmax=CBF_RANGE[1],
                                      label='mL/100g/min', slices=slices),
                f'{title} in the brain mask; fixed scale {CBF_RANGE[0]:g}–{CBF_RANGE[1]:g} '
                'mL/100g/min in every report')
    att = load_canonical(run.find('att'))
    if att is not None:
        add('ATT', figures.mosaic(_masked(att, mask), vmin=ATT_RANGE[0], vmax=ATT_RANGE[1],
                                  cmap='plasma', label='s', slices=slices),
            f'arterial transit time, fixed scale {ATT_RANGE[0]:g}–{ATT_RANGE[1]:g} s')
    deltam = load_canonical(run.find('deltam_mean'))
    if deltam is not None:
        if deltam.ndim == 4:
            deltam = deltam.mean(axis=3)
        lo, hi = figures.robust_range(_masked(deltam, mask))
        add('ΔM', figures.mosaic(_masked(deltam, mask), vmin=lo, vmax=hi, cmap='gray',
                                 label='scanner units', slices=slices),
            'mean ΔM (control − label; multi-delay: mean over delays), 2–98th percentile')
    m0 = load_canonical(run.find('m0'))
    if m0 is not None:
        lo, hi = figures.robust_range(m0)
        add('M0 and brain mask', figures.mosaic(m0, vmin=lo, vmax=hi, cmap='gray',
                                                label='scanner units', slices=slices,
                                                contour=mask_img),
            'calibration M0 with the brain mask outlined in red')
        gm = load_canonical(run.find('probseg', label='GM'))
        if gm is not None and gm.shape == m0.shape[:3]:
            add('Registration: GM on M0', figures.mosaic(
                m0, vmin=lo, vmax=hi, cmap='gray', label='scanner units', slices=slices,
                contour=gm, contour_color='y'),
                'T1w grey matter (probability 0.5, yellow) resampled to the ASL grid, on M0')
    subject_dir = next(p for p in run.perf.parents if p.name == f'sub-{run.subject}')
    anat_gm = load_canonical(subject_dir / 'anat' / naming.name_for(
        't1w_probseg', f'sub-{run.subject}', label='GM'))
    for space, caption in ((TEMPLATE, 'template space'), ('T1w', 'T1w space')):
        vol = load_canonical(run.find('cbf_space', space=space))
        if vol is not None:
            space_mask = load_canonical(run.find('mask_space', space=space))
            if space_mask is not None:
                vol = _masked(vol, space_mask > 0)
            gm_here = anat_gm if space == 'T1w' and anat_gm is not None and \
                anat_gm.shape == vol.shape else None
            add(f'CBF, {caption}', figures.mosaic(vol, vmin=CBF_RANGE[0], vmax=CBF_RANGE[1],
                                                  label='mL/100g/min', contour=gm_here,
                                                  contour_color='w'),
                f'CBF resampled to {space}, same fixed scale' + (
                    '; the T1w grey matter (probability 0.5) outlined in white: registration '
                    'check' if gm_here is not None else ''))
    asym = load_canonical(run.find('asymmetry'))
    if asym is not None:
        add('Left/right asymmetry', figures.mosaic(asym, vmin=-ASYM_RANGE, vmax=ASYM_RANGE,
                                                   cmap='RdBu_r', label='AI'),
            f'voxelwise asymmetry index of CBF in template space, scale ±{ASYM_RANGE:g}')
    return figs


def _motion(run: collect.RunOutputs) -> dict | None:
    path = run.find('confounds')
    if path is None:
        return None
    rows = tsv.read_tsv(path)
    if not rows:
        return None
    x = np.arange(1, len(rows) + 1)
    num = lambda c: np.array([qcrules.as_float(r.get(c)) or 0.0 for r in rows])  # noqa: E731
    fd_thr = qcrules.THRESHOLDS['max_fd'].high
    figs = [figures.lines(x, {'FD': num('framewise_displacement')}, xlabel='volume',
                          ylabel='FD (mm)', hline=fd_thr, hline_label=f'{fd_thr:g} mm'),
            figures.lines(x, {c: num(c) for c in ('trans_x', 'trans_y', 'trans_z')},
                          xlabel='volume', ylabel='translation (mm)'),
            figures.lines(x, {c: np.rad2deg(num(c)) for c in ('rot_x', 'rot_y', 'rot_z')},
                          xlabel='volume', ylabel='rotation (deg)')]
    outliers = [i + 1 for i, r in enumerate(rows) if r.get('score_outlier') == '1']
    return {'figures': figs, 'n_volumes': len(rows), 'score_outlier_volumes': outliers}


def _qc(run: collect.RunOutputs) -> tuple[list[dict], dict]:
    path = run.find('qc')
    rows = tsv.read_tsv(path) if path else []
    if not rows:
        return [], {}
    row = {**rows[0], **qcrules.derived_metrics(rows[0])}
    table = []
    for metric in QC_SHOWN:
        threshold = qcrules.THRESHOLDS.get(metric)
        table.append({'metric': metric, 'value': row.get(metric),
                      'flag': qcrules.flag(metric, row.get(metric)),
                      'range': threshold.describe() if threshold else '',
                      'description': {**QC_COLUMNS, **DERIVED_QC_COLUMNS}.get(metric, '')})
    return table, row


def run_context(run: collect.RunOutputs) -> dict:
    sidecar = collect.read_json(naming.sidecar_of(run.path('cbf')))
    qc_table, qc_row = _qc(run)
    motion = _motion(run)
    methods, cites = methods_text(
        sidecar, motion_corrected=motion is not None,
        outlier_methods=[m for m in ('score', 'scrub') if run.find(f'{m}_cbf')],
        version=__version__)
    anat_ref = sidecar.get('AnatomicalReference')
    return {
        'prefix': run.prefix, 'id': 'run-' + run.prefix,
        'entities': run.entities, 'multi_delay': 'Model' in sidecar,
        'constants': flatten(sidecar),
        'anat_reference': anat_ref,
        'anat_missing': isinstance(anat_ref, str) and anat_ref.lower().startswith('none'),
        'figures': _image_figures(run), 'motion': motion,
        'qc': qc_table, 'n_warn': sum(r['flag'] == 'warn' for r in qc_table),
        'rejected': qc_row.get('score_rejected_volumes', 'n/a'),
        'n_rejected': qc_row.get('n_deltam_rejected_score', 'n/a'),
        'tissue': tsv.read_tsv(p) if (p := run.find('tissue')) else [],
        'regional': {atlas: tsv.read_tsv(p) for atlas, p in run.regional_tables().items()},
        'asymmetry_clusters': tsv.read_tsv(p) if (p := run.find('asymmetry_clusters')) else None,
        'lesions': clinical.lesions(run),
        'methods': methods, 'references': [REFERENCES[c] for c in cites],
        'warnings': sidecar.get('Warnings', []),
    }


def _anatomy(output_dir: Path, subject: str) -> list[dict]:
    anat = output_dir / f'sub-{subject}' / 'anat'
    t1w = load_canonical(anat / naming.name_for('t1w_preproc', f'sub-{subject}'))
    if t1w is None:
        return []
    gm = load_canonical(anat / naming.name_for('t1w_probseg', f'sub-{subject}', label='GM'))
    lo, hi = figures.robust_range(t1w)
    uri = figures.mosaic(t1w, vmin=lo, vmax=hi, cmap='gray', label='T1w',
                         contour=gm if gm is not None and gm.shape == t1w.shape else None,
                         contour_color='y')
    return [{'title': 'T1w and GM segmentation', 'uri': uri,
             'caption': 'preprocessed T1w; grey matter probability 0.5 outlined in yellow'}]


def _processing_settings(path: Path) -> str:
    """The settings TOML without the invocation's keys (``UNSHOWN_SETTINGS``)."""
    import tomllib  # noqa: PLC0415

    import tomli_w  # noqa: PLC0415

    try:
        data = tomllib.loads(path.read_text(encoding='utf-8'))
    except (OSError, ValueError):
        return ''
    kept = {k: v for k, v in data.get('bids_asl', {}).items() if k not in UNSHOWN_SETTINGS}
    return tomli_w.dumps({'bids_asl': kept})


def subject_context(output_dir, subject: str, errors=()) -> dict:
    output_dir = Path(output_dir)
    log = collect.latest_log_dir(output_dir, subject)
    settings_text = ''
    if log is not None and (log / 'bids_asl.toml').is_file():
        settings_text = _processing_settings(log / 'bids_asl.toml')
    runs = [run_context(r) for r in collect.find_runs(output_dir, subject)]
    return {'subject': subject, 'runs': runs, 'anatomy': _anatomy(output_dir, subject),
            'comparisons': clinical.comparisons(output_dir, subject),
            'errors': [{'source': str(s), 'message': str(m)} for s, m in errors],
            'settings': settings_text, 'software': software_versions(),
            'thresholds': list(qcrules.THRESHOLDS.values()),
            'version': __version__}


def write_subject_report(output_dir, subject: str, errors=()) -> Path:
    """Render and atomically write ``OUTPUT_DIR/sub-<subject>.html``."""
    html = render('subject.html.j2', **subject_context(output_dir, subject, errors))
    return atomic_write_bytes(Path(output_dir) / f'sub-{subject}.html', html.encode('utf-8'))
