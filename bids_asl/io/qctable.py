"""The per-run QC table (``_desc-qc_cbf.tsv``) and the confounds sidecar: columns and text."""

from __future__ import annotations

from bids_asl.io.tsv import column_sidecar, tsv_text

#: Column → description, in table order (also rendered into docs/qc.md by a test).
QC_COLUMNS = {
    'participant_id': 'subject label with the "sub-" prefix',
    'session_id': 'session label with "ses-", or n/a',
    'source': 'file name stem of the ASL run (identifies acq/run entities)',
    'mean_fd': 'mean framewise displacement over realigned volumes, mm (Power 2012); n/a '
               'without motion correction',
    'max_fd': 'maximum framewise displacement, mm',
    'deltam_tsnr': 'median over brain-mask voxels of mean(ΔM)/SD(ΔM) across ΔM volumes',
    'qei': 'quality evaluation index (Dolui 2024), 0-1, higher is better; needs tissue maps',
    'qei_rho': 'QEI component: correlation of smoothed CBF with 2.5 GM + WM',
    'qei_di': 'QEI component: dispersion index (pooled within-tissue variance / |mean GM|)',
    'qei_neg_gm': 'QEI component: fraction of GM voxels with negative CBF',
    'scov_gm': 'spatial coefficient of variation of CBF in GM (SD/mean; Mutsaerts 2017)',
    'negative_cbf_fraction_gm': 'fraction of GM voxels (probability >= 0.7) with CBF < 0',
    'negative_cbf_fraction_brain': 'fraction of brain-mask voxels with CBF < 0',
    'gm_wm_ratio': 'mean GM CBF / mean WM CBF (adults ~2-3)',
    'cbf_mean_gm': 'mean CBF in GM (probability >= 0.7), mL/100g/min',
    'cbf_mean_wm': 'mean CBF in WM (probability >= 0.7), mL/100g/min',
    'cbf_mean_brain': 'mean CBF in the brain mask, mL/100g/min',
    'n_deltam_volumes': 'number of ΔM volumes (pairs plus deltam volumes)',
    'n_deltam_used_score': 'ΔM volumes kept by SCORE (all when SCORE did not run)',
    'n_deltam_rejected_score': 'ΔM volumes rejected by SCORE',
    'score_rejected_volumes': 'source volumes (1-based, control+label) of the rejected ΔM '
                              'volumes, or none',
    'tissue_maps': 'yes when GM/WM/CSF maps were available for the tissue metrics, else none',
}

#: Metrics derived from a QC row (:func:`bids_asl.qcrules.derived_metrics`), in the group table.
DERIVED_QC_COLUMNS = {
    'score_rejected_fraction': 'ΔM volumes rejected by SCORE / all ΔM volumes',
}

#: Numeric QC columns (and derived metrics) that group exclusion rules may test.
RULE_METRICS = (*(c for c in QC_COLUMNS if c not in ('participant_id', 'session_id', 'source',
                                                      'score_rejected_volumes', 'tissue_maps')),
                *DERIVED_QC_COLUMNS)

CONFOUND_COLUMNS = {
    'trans_x': {'Description': 'translation along x (RAS)', 'Units': 'mm'},
    'trans_y': {'Description': 'translation along y (RAS)', 'Units': 'mm'},
    'trans_z': {'Description': 'translation along z (RAS)', 'Units': 'mm'},
    'rot_x': {'Description': 'rotation about x (R = Rz Ry Rx)', 'Units': 'rad'},
    'rot_y': {'Description': 'rotation about y', 'Units': 'rad'},
    'rot_z': {'Description': 'rotation about z', 'Units': 'rad'},
    'framewise_displacement': {'Description': 'Power et al. 2012 FD between consecutive '
                                              'realigned volumes, 50 mm head radius',
                               'Units': 'mm'},
    'volume_type': {'Description': 'aslcontext volume type'},
    'score_outlier': {'Description': '1 if SCORE rejected the ΔM volume this volume belongs '
                                     'to, 0 if kept, n/a if SCORE did not run or the volume '
                                     'is not part of a ΔM volume'},
}


def qc_row(metrics: dict, entities: dict, source: str) -> str:
    """Header and one row of the QC table."""
    values = {'participant_id': f'sub-{entities["subject"]}',
              'session_id': f'ses-{entities["session"]}' if entities.get('session') else None,
              'source': source, **metrics}
    return tsv_text(QC_COLUMNS, [values])


def qc_sidecar() -> dict:
    return column_sidecar(QC_COLUMNS)
