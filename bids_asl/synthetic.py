"""A small synthetic BIDS ASL dataset with known CBF, made with the package's own forward model.

Used by ``bids-asl-demo`` and the test-suite: it needs nothing outside the package.  The phantom
is an ellipsoidal "brain" with a white-matter core and a grey-matter shell on a zero background.
ΔM is the exact inverse of the consensus single-delay formula (``quant.cbf.deltam_*``), with the
effective per-slice delay for 2-D readouts and the background-suppression efficiency included,
so a correct quantification returns the ground-truth CBF.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nb
import numpy as np

from bids_asl import constants
from bids_asl.quant import cbf as qcbf
from bids_asl.quant import kinetic
from bids_asl.quant.m0 import saturation_recovery
from bids_asl.quant.slicetiming import slice_time_map

M0_GM, M0_WM, M0_CSF = 75.0, 65.0, 70.0
T1_TISSUE_GM, T1_TISSUE_WM, T1_CSF = 1.3, 0.9, 4.0


@dataclass
class Variant:
    """Acquisition of one synthetic subject (field names mirror the BIDS sidecar)."""

    label: str = 'pcasl'
    asl_type: str = 'PCASL'
    m0_type: str = 'Separate'  # Separate | Included | Estimate | Absent
    acquisition: str = '3D'
    order: str = 'control-first'  # or 'label-first'
    n_pairs: int = 4
    pld: float = 1.8
    label_duration: float = 1.8
    ti1: float = 0.8  # PASL
    field_strength: float = 3.0
    background_suppression: bool = False
    bs_pulses: int | None = None
    slice_timing_step: float = 0.04  # 2-D readouts: s per slice
    slice_direction: str = 'k'
    asl_tr: float = 4.5
    m0_tr: float = 6.0
    cbf_gm: float = 60.0
    cbf_wm: float = 20.0
    noise_sd: float = 0.0
    plds: tuple[float, ...] | None = None  # multi-delay: n_pairs pairs at each delay
    kinetic_model: str = 'blood'  # multi-delay signal: 'blood' or 'tissue' (T1 after arrival)
    att_gm: float = 0.8
    att_wm: float = 1.2
    extra: dict = field(default_factory=dict)  # extra/overriding sidecar fields


def phantom(shape=(24, 26, 14)) -> tuple[np.ndarray, np.ndarray]:
    """Boolean GM and WM masks of an ellipsoidal brain (non-cubic grid).

    Not symmetric, so that rigid registration is well posed: the GM/WM boundary undulates with
    the angle ("gyri"), and two off-centre "ventricles" (neither GM nor WM) are cut out.
    """
    grid = np.indices(shape).astype(float)
    centre = (np.array(shape) - 1) / 2
    radii = np.array(shape) * 0.42
    rel = [(grid[i] - centre[i]) / radii[i] for i in range(3)]
    r = np.sqrt(sum(x ** 2 for x in rel))
    theta = np.arctan2(rel[1], rel[0])
    boundary = 0.6 + 0.08 * np.sin(3 * theta + 0.7) + 0.05 * rel[2]
    ventricles = (((rel[0] - 0.25) ** 2 + (rel[1] + 0.1) ** 2) / 0.03 + rel[2] ** 2 / 0.2 <= 1) | (
        ((rel[0] + 0.2) ** 2 + (rel[1] - 0.3) ** 2) / 0.02 + (rel[2] - 0.2) ** 2 / 0.1 <= 1)
    gm = (r <= 1.0) & (r > boundary) & ~ventricles
    wm = (r <= boundary) & ~ventricles
    return gm, wm


def _ventricles(gm, wm):
    """CSF: the holes of the phantom inside its outer surface (M0 but no perfusion)."""
    from scipy import ndimage  # noqa: PLC0415

    return ndimage.binary_fill_holes(gm | wm) & ~(gm | wm)


def _sidecar(v: Variant, n_vols: int, shape) -> dict:
    meta = {
        'ArterialSpinLabelingType': v.asl_type, 'MagneticFieldStrength': v.field_strength,
        'MRAcquisitionType': v.acquisition, 'M0Type': v.m0_type,
        'BackgroundSuppression': v.background_suppression, 'TotalAcquiredPairs': v.n_pairs,
        'RepetitionTimePreparation': v.asl_tr, 'PostLabelingDelay': v.pld,
        'EchoTime': 0.012, 'FlipAngle': 90, 'Manufacturer': 'bids_asl synthetic',
    }
    if v.asl_type == 'PASL':
        meta.update(BolusCutOffFlag=True, BolusCutOffTechnique='Q2TIPS',
                    BolusCutOffDelayTime=[v.ti1, v.ti1 + 0.6])
    else:
        meta['LabelingDuration'] = v.label_duration
    if v.background_suppression and v.bs_pulses is not None:
        meta['BackgroundSuppressionNumberPulses'] = v.bs_pulses
        meta['BackgroundSuppressionPulseTime'] = [0.5 + 0.3 * i for i in range(v.bs_pulses)]
    if v.acquisition == '2D':
        axis = 'ijk'.index(v.slice_direction[0])
        meta['SliceTiming'] = [round(v.slice_timing_step * i, 6) for i in range(shape[axis])]
        meta['SliceEncodingDirection'] = v.slice_direction
    if v.plds:
        meta['PostLabelingDelay'] = [d for d in v.plds for _ in range(2 * v.n_pairs)]
        meta['TotalAcquiredPairs'] = v.n_pairs * len(v.plds)
    if v.m0_type == 'Included':
        meta['PostLabelingDelay'] = [0.0] + [v.pld] * (n_vols - 1)
        meta['RepetitionTimePreparation'] = [v.m0_tr] + [v.asl_tr] * (n_vols - 1)
    if v.m0_type == 'Estimate':
        meta['M0Estimate'] = M0_GM
    meta.update(v.extra)
    return meta


def simulate(v: Variant, shape=(24, 26, 14), seed: int = 0) -> dict:
    """Arrays of one subject: series, volume types, M0 image, true CBF and the sidecar."""
    gm, wm = phantom(shape)
    brain = gm | wm
    csf = _ventricles(gm, wm)
    m0_true = np.where(gm, M0_GM, np.where(wm, M0_WM, np.where(csf, M0_CSF, 0.0)))
    t1t = np.where(wm, T1_TISSUE_WM, T1_TISSUE_GM)
    cbf_true = np.where(gm, v.cbf_gm, np.where(wm, v.cbf_wm, 0.0))
    if v.m0_type == 'Estimate':  # a single M0 value: the tissue must share it
        m0_true = np.where(brain, M0_GM, 0.0)
    alpha = v.extra.get('LabelingEfficiency', constants.LABELING_EFFICIENCY[v.asl_type])
    if v.background_suppression and v.bs_pulses:
        alpha *= constants.BS_EFFICIENCY_PER_PULSE ** v.bs_pulses
    delay = np.full(shape, v.pld)
    if v.acquisition == '2D':
        axis = 'ijk'.index(v.slice_direction[0])
        times = [v.slice_timing_step * i for i in range(shape[axis])]
        delay = v.pld + slice_time_map(shape, times, v.slice_direction)
    t1b = constants.t1_blood_for_field(v.field_strength)[0]
    common = {'t1_blood': t1b, 'labeling_efficiency': alpha}
    # The quantification's M0 for 'Absent' is the control image corrected with the tissue T1
    # default, so simulate the control with that same T1 to keep the truth exact.
    t1_control = np.full(shape, constants.T1_TISSUE) if v.m0_type == 'Absent' else t1t
    control = m0_true * -np.expm1(-v.asl_tr / t1_control)
    if v.background_suppression and v.m0_type != 'Absent':
        control = control * 0.1  # suppressed static tissue; ΔM is unaffected
    safe_m0 = np.where(brain, m0_true, 1.0)
    if v.asl_type == 'PASL':
        dm = qcbf.deltam_pasl(cbf_true, safe_m0, ti=delay, ti1=v.ti1, **common)
    else:
        dm = qcbf.deltam_pcasl(cbf_true, safe_m0, pld=delay, label_duration=v.label_duration,
                               **common)
    dm = np.where(brain, dm, 0.0)
    pair = ['control', 'label'] if v.order == 'control-first' else ['label', 'control']
    types = pair * v.n_pairs
    vols = [control if t == 'control' else control - dm for t in types]
    if v.plds:  # multi-delay: the general kinetic model, same truth maps
        att = np.where(gm, v.att_gm, np.where(wm, v.att_wm, 1.0))
        tau = v.ti1 if v.asl_type == 'PASL' else v.label_duration
        kin = {'asl_type': v.asl_type, 'tau': tau, 't1_blood': t1b, 'alpha': alpha,
               't1_tissue': t1t if v.kinetic_model == 'tissue' else None}
        types, vols = [], []
        for d in v.plds:
            t = kinetic.labelling_time(d + (delay - v.pld), tau, v.asl_type)
            dm_d = np.where(brain, kinetic.tissue_signal(t, cbf_true, att, **kin) * m0_true, 0.0)
            types += pair * v.n_pairs
            vols += [control if ty == 'control' else control - dm_d for ty in pair * v.n_pairs]
    # M0 images are acquired with TR = m0_tr and the quantification corrects with T1 = 1.3 s.
    m0_image = m0_true * saturation_recovery(v.m0_tr, constants.T1_TISSUE)
    if v.m0_type == 'Included':
        types = ['m0scan', *types]
        vols = [m0_image, *vols]
    rng = np.random.default_rng(seed)
    series = np.stack(vols, axis=-1)
    if v.noise_sd:
        series = series + rng.normal(0, v.noise_sd, series.shape)
    return {'series': series, 'types': types, 'm0': m0_image, 'cbf': cbf_true, 'gm': gm,
            'wm': wm, 't1': np.where(brain, t1t, np.where(csf, T1_CSF, 0.0)),
            'att': np.where(gm, v.att_gm, np.where(wm, v.att_wm, 0.0)),
            'sidecar': _sidecar(v, len(types), shape)}


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + '\n')


def _write_nifti(path: Path, data: np.ndarray, zooms=(3.0, 3.0, 4.0)) -> None:
    affine = np.diag([*zooms, 1.0])
    affine[:3, 3] = -np.array(data.shape[:3]) * np.array(zooms) / 2
    img = nb.Nifti1Image(data.astype(np.float32), affine)
    img.header.set_xyzt_units('mm', 'sec')
    nb.save(img, str(path))


def write_subject(root, v: Variant, shape=(24, 26, 14), seed: int = 0) -> dict:
    """Write ``sub-<label>`` (and its ground truth) into the dataset at ``root``."""
    root = Path(root)
    sim = simulate(v, shape, seed)
    perf = root / f'sub-{v.label}' / 'perf'
    perf.mkdir(parents=True, exist_ok=True)
    stem = perf / f'sub-{v.label}'
    _write_nifti(Path(f'{stem}_asl.nii.gz'), sim['series'])
    _write_json(Path(f'{stem}_asl.json'), sim['sidecar'])
    Path(f'{stem}_aslcontext.tsv').write_text('volume_type\n' + '\n'.join(sim['types']) + '\n')
    if v.m0_type == 'Separate':
        _write_nifti(Path(f'{stem}_m0scan.nii.gz'), sim['m0'])
        _write_json(Path(f'{stem}_m0scan.json'), {
            'RepetitionTimePreparation': v.m0_tr, 'MagneticFieldStrength': v.field_strength,
            'MRAcquisitionType': v.acquisition, 'EchoTime': 0.012, 'FlipAngle': 90,
            'IntendedFor': f'bids::sub-{v.label}/perf/sub-{v.label}_asl.nii.gz',
            **{k: sim['sidecar'][k] for k in ('SliceTiming', 'SliceEncodingDirection')
               if k in sim['sidecar']}})
    truth = root / 'derivatives' / 'groundtruth' / f'sub-{v.label}' / 'perf'
    truth.mkdir(parents=True, exist_ok=True)
    _write_nifti(truth / f'sub-{v.label}_desc-groundtruth_cbf.nii.gz', sim['cbf'])
    _write_nifti(truth / f'sub-{v.label}_desc-groundtruth_att.nii.gz', sim['att'])
    _write_nifti(truth / f'sub-{v.label}_desc-groundtruth_T1map.nii.gz', sim['t1'])
    _write_nifti(truth / f'sub-{v.label}_desc-gm_mask.nii.gz', sim['gm'].astype(np.uint8))
    _write_nifti(truth / f'sub-{v.label}_desc-wm_mask.nii.gz', sim['wm'].astype(np.uint8))
    return sim


DEMO_VARIANTS = (
    Variant(label='pcasl3d'),
    Variant(label='pasl2d', asl_type='PASL', acquisition='2D', pld=1.8, ti1=0.8,
            m0_type='Included', order='label-first', background_suppression=True, bs_pulses=2),
)


def make_dataset(root, variants=DEMO_VARIANTS, shape=(24, 26, 14), seed: int = 0) -> Path:
    """Write a complete BIDS dataset (one subject per variant) and return its root."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    _write_json(root / 'dataset_description.json', {
        'Name': 'bids_asl synthetic ASL dataset', 'BIDSVersion': '1.10.0',
        'DatasetType': 'raw', 'License': 'CC0',
        'Authors': ['bids_asl developers', 'synthetic data'],
    })
    (root / 'README').write_text('Synthetic ASL data made by bids_asl.synthetic with known CBF '
                                 '(GM/WM). Ground truth in derivatives/groundtruth.\n')
    (root / 'participants.tsv').write_text(
        'participant_id\tvariant\n' + ''.join(f'sub-{v.label}\t{v.asl_type}\n'
                                              for v in variants))
    deriv = root / 'derivatives' / 'groundtruth'
    deriv.mkdir(parents=True, exist_ok=True)
    _write_json(deriv / 'dataset_description.json', {
        'Name': 'ground truth', 'BIDSVersion': '1.10.0', 'DatasetType': 'derivative',
        'GeneratedBy': [{'Name': 'bids_asl.synthetic'}]})
    for i, v in enumerate(variants):
        write_subject(root, v, shape, seed + i)
    return root
