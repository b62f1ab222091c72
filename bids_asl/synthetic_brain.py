"""A brain-shaped synthetic subject with known truth, from the MNI152 template shipped in nilearn.

The ellipsoid of :mod:`bids_asl.synthetic` is quick but nearly round, so it cannot pin rotations
and it does not look like a brain to a registration.  This module samples the symmetric MNI
ICBM152 2009a template (1 mm T1w and GM/WM probabilities, read offline from the nilearn
package) onto any acquisition grid, with the head placed in the scanner by a rigid *pose* and
moved per volume by a rigid *motion*, and builds the ASL signal from the tissue fractions:

* every tissue ``t`` (GM, WM, CSF) has its own CBF, arrival time, T1, and proton density M0;
* the fractions of a voxel are averaged over ``oversample³`` points inside it (partial volume);
* control = Σ pₜ M0ₜ (1 − e^(−TR/T1ₜ)) · (background-suppression residual of tissue t at the
  readout), ΔM = Σ pₜ M0ₜ · sₜ(t) with sₜ the kinetic model of tissue t (the white-paper
  single-compartment signal, with the tissue's T1 after arrival when ``kinetic_model='tissue'``),
  label = control − ΔM; the M0 image is Σ pₜ M0ₜ (1 − e^(−TR_M0/T1ₜ)).

Coordinates: a template point ``u`` (MNI mm) of the head at rest is at scanner point ``P u``
(``P`` = the pose); in volume ``i`` the head has moved by ``A_i`` (a rigid matrix in scanner mm,
:func:`bids_asl.quant.motion.rigid_matrix` of ``motion[i]`` about the ASL grid centre), so the
image value at scanner point ``y`` is the template value at ``P⁻¹ A_i⁻¹ y``.  A realignment that
maps reference points to volume points should therefore recover ``A_i`` (up to the choice of the
reference volume).

Truth written beside the data (``derivatives/groundtruth``): the voxel CBF the single-delay
formula returns on noise-free data at rest (``desc-groundtruth_cbf``; M0-weighted mean of the
tissue CBFs), the M0-weighted arrival time and tissue T1, the tissue fractions at rest
(``label-{GM,WM,CSF}_probseg``), ``desc-{gm,wm}_mask`` (fraction ≥ 0.5) and the motion
(``desc-motion_timeseries.tsv``).  Nothing here needs the network or files outside the packages.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nb
import numpy as np
from scipy import ndimage

from bids_asl import constants
from bids_asl.quant import kinetic
from bids_asl.quant.cbf import pasl_scale, pcasl_scale
from bids_asl.quant.motion import rigid_matrix
from bids_asl.quant.slicetiming import slice_time_map
from bids_asl.synthetic import Variant, _sidecar, _write_json

TISSUES = ('gm', 'wm', 'csf')


@dataclass(frozen=True)
class Tissue:
    """Properties of one tissue (CBF mL/100 g/min, ATT s, T1 s, proton-density M0, a.u.)."""

    cbf: float
    att: float
    t1: float
    m0: float


#: Tissue T1 by field strength (s): GM/WM at 3 T as in ASLDRO's ground truth (1.33/0.83),
#: at 1.5 T from Wansapura et al. 1999 / Lu et al. 2005 (≈1.1/0.65); CSF ≈ 4 s at both.
DEFAULT_TISSUES = {
    3.0: {'gm': Tissue(60.0, 0.8, 1.33, 80.0), 'wm': Tissue(20.0, 1.2, 0.83, 70.0),
          'csf': Tissue(0.0, 1.0, 4.0, 100.0)},
    1.5: {'gm': Tissue(60.0, 0.8, 1.10, 80.0), 'wm': Tissue(20.0, 1.2, 0.65, 70.0),
          'csf': Tissue(0.0, 1.0, 4.0, 100.0)},
}


def default_tissues(field_strength: float) -> dict[str, Tissue]:
    key = min(DEFAULT_TISSUES, key=lambda b: abs(b - field_strength))
    return dict(DEFAULT_TISSUES[key])


@dataclass(frozen=True)
class Geometry:
    """An acquisition grid and where the head sits in the scanner.

    ``pose``: (rx, ry, rz) in degrees and (tx, ty, tz) in mm, the rigid placement of the template
    head in scanner space (about the template origin).  The grid is centred on ``centre`` (scanner
    mm), axis-aligned, with voxel size ``zooms``.
    """

    shape: tuple[int, int, int] = (64, 64, 26)
    zooms: tuple[float, float, float] = (3.5, 3.5, 5.0)
    centre: tuple[float, float, float] = (0.0, -18.0, 18.0)
    pose: tuple[float, ...] = (3.0, -2.0, 4.0, 2.0, -3.0, 4.0)

    @property
    def affine(self) -> np.ndarray:
        aff = np.diag([*self.zooms, 1.0])
        aff[:3, 3] = np.asarray(self.centre) - (np.asarray(self.shape) - 1) / 2 * self.zooms
        return aff

    @property
    def pose_matrix(self) -> np.ndarray:
        return pose_matrix(self.pose)


def pose_matrix(pose) -> np.ndarray:
    """4×4 rigid matrix of (rx, ry, rz deg, tx, ty, tz mm) about the origin."""
    p = np.asarray(pose, dtype=np.float64)
    return rigid_matrix(np.concatenate([np.deg2rad(p[:3]), p[3:]]))


@functools.lru_cache(maxsize=1)
def template_fields() -> tuple[dict[str, np.ndarray], np.ndarray]:
    """1 mm template fields (``t1`` intensity 0-1, ``gm``, ``wm``, ``csf`` fractions) and their
    affine.  CSF is what the brain mask holds beyond GM and WM."""
    from bids_asl.io import templates  # noqa: PLC0415 - file locations only

    t1, affine = templates.load_template('t1')
    gm, _ = templates.load_template('gm')
    wm, _ = templates.load_template('wm')
    t1 = t1 / t1.max()
    brain = ndimage.binary_fill_holes(ndimage.binary_closing(t1 > 0.05, iterations=2))
    gm, wm = np.clip(gm, 0, 1), np.clip(wm, 0, 1)
    total = gm + wm
    over = total > 1
    gm = np.where(over, gm / np.maximum(total, 1e-9), gm)
    wm = np.where(over, wm / np.maximum(total, 1e-9), wm)
    csf = np.where(brain, np.clip(1.0 - gm - wm, 0.0, 1.0), 0.0)
    out = {'t1': t1.astype(np.float32), 'gm': gm.astype(np.float32),
           'wm': wm.astype(np.float32), 'csf': csf.astype(np.float32)}
    return out, affine


def _subsample_points(geometry: Geometry, oversample: int) -> np.ndarray:
    """(3, n_voxels, oversample³) scanner coordinates of the sub-voxel sample points."""
    n = int(oversample)
    offsets = (np.arange(n) + 0.5) / n - 0.5  # in voxels, centred
    sub = np.stack(np.meshgrid(offsets, offsets, offsets, indexing='ij'), 0).reshape(3, -1)
    ijk = np.indices(geometry.shape, dtype=np.float64).reshape(3, -1)
    pts = ijk[:, :, None] + sub[:, None, :]
    aff = geometry.affine
    return np.einsum('ij,jnk->ink', aff[:3, :3], pts) + aff[:3, 3][:, None, None]


def sample_fields(geometry: Geometry, head: np.ndarray | None = None, *, oversample: int = 2,
                  kinds=TISSUES) -> dict[str, np.ndarray]:
    """Template fields on ``geometry``'s grid, averaged over ``oversample³`` points per voxel.

    ``head``: an extra rigid motion (4×4, scanner mm) applied after the pose.
    """
    fields, tpl_affine = template_fields()
    full = geometry.pose_matrix if head is None else np.asarray(head) @ geometry.pose_matrix
    to_voxel = np.linalg.inv(tpl_affine) @ np.linalg.inv(full)
    pts = _subsample_points(geometry, oversample)
    shape3 = pts.shape[1:]
    flat = pts.reshape(3, -1)
    vox = to_voxel[:3, :3] @ flat + to_voxel[:3, 3:4]
    out = {}
    for kind in kinds:
        values = ndimage.map_coordinates(fields[kind], vox, order=1, mode='constant', cval=0.0)
        out[kind] = values.reshape(shape3).mean(axis=1).reshape(geometry.shape)
    return out


def bs_residual(t1, readout_time: float, pulse_times) -> np.ndarray:
    """Longitudinal magnetisation (fraction of M0) of static tissue at the readout after a
    saturation at time 0 and ideal inversions at ``pulse_times`` (s, from the saturation)."""
    t1 = np.asarray(t1, dtype=np.float64)
    mz = np.zeros_like(t1)
    last = 0.0
    for tp in sorted(p for p in pulse_times if 0 < p < readout_time):
        mz = 1.0 - (1.0 - mz) * np.exp(-(tp - last) / t1)
        mz = -mz
        last = tp
    return 1.0 - (1.0 - mz) * np.exp(-(readout_time - last) / t1)


@dataclass(frozen=True)
class Acquisition:
    """What :func:`simulate_brain` needs beyond the :class:`~bids_asl.synthetic.Variant`."""

    geometry: Geometry = field(default_factory=Geometry)
    tissues: dict | None = None  # {'gm': Tissue, ...}; None: default_tissues(field strength)
    motion: np.ndarray | None = None  # (n_volumes, 6): rx, ry, rz (rad), tx, ty, tz (mm)
    oversample: int = 2
    #: background suppression: inversion times before the readout (s); the static signal of
    #: each tissue is then its own residual, different at each delay (as in real multi-delay
    #: data).  None: the flat 10 % residual of bids_asl.synthetic.
    bs_pulses_before_readout: tuple[float, ...] | None = None


def simulate_brain(v: Variant, acq: Acquisition = Acquisition(), seed: int = 0) -> dict:
    """Arrays of one subject: the ASL series, volume types, M0 image, truth maps, sidecar.

    ``v`` gives the protocol (labelling, delays, M0 type, background suppression, noise SD in
    the units of the images); ``acq`` the grid, pose, motion and tissues.
    """
    geom = acq.geometry
    tissues = acq.tissues or default_tissues(v.field_strength)
    pair = ['control', 'label'] if v.order == 'control-first' else ['label', 'control']
    plds = list(v.plds) if v.plds else [v.pld]
    types = [t for _ in plds for t in pair * v.n_pairs]
    delays = np.array([d for d in plds for _ in range(2 * v.n_pairs)])
    if v.m0_type == 'Included':
        types, delays = ['m0scan', *types], np.concatenate([[0.0], delays])
    n_vols = len(types)
    motion = np.zeros((n_vols, 6)) if acq.motion is None else np.asarray(acq.motion, float)
    if motion.shape != (n_vols, 6):
        raise ValueError(f'motion must be ({n_vols}, 6), got {motion.shape}')
    centre = np.asarray(geom.centre, dtype=np.float64)

    alpha = v.extra.get('LabelingEfficiency', constants.LABELING_EFFICIENCY[v.asl_type])
    if v.background_suppression and v.bs_pulses:
        alpha *= constants.BS_EFFICIENCY_PER_PULSE ** v.bs_pulses
    t1b = constants.t1_blood_for_field(v.field_strength)[0]
    tau = v.ti1 if v.asl_type == 'PASL' else v.label_duration
    slice_offset = np.zeros(geom.shape)
    if v.acquisition == '2D':
        axis = 'ijk'.index(v.slice_direction[0])
        times = [v.slice_timing_step * i for i in range(geom.shape[axis])]
        slice_offset = slice_time_map(geom.shape, times, v.slice_direction)

    def tissue_dm(t: Tissue, delay: float) -> np.ndarray:
        """ΔM/M0 of a pure voxel of tissue ``t`` at a nominal delay (per slice for 2-D)."""
        d = delay + slice_offset
        if not v.plds:  # single delay: the white-paper model, exactly invertible
            if v.asl_type == 'PASL':
                scale = pasl_scale(ti=d, ti1=v.ti1, t1_blood=t1b, labeling_efficiency=alpha)
            else:
                scale = pcasl_scale(pld=d, label_duration=v.label_duration, t1_blood=t1b,
                                    labeling_efficiency=alpha)
            return t.cbf / scale
        time = kinetic.labelling_time(d, tau, v.asl_type)
        return kinetic.tissue_signal(
            time, t.cbf, t.att, asl_type=v.asl_type, tau=tau, t1_blood=t1b, alpha=alpha,
            t1_tissue=t.t1 if v.kinetic_model == 'tissue' else None)

    def static(t: Tissue, delay: float) -> float | np.ndarray:
        base = t.m0 * -np.expm1(-v.asl_tr / t.t1)
        if not v.background_suppression:
            return base
        if acq.bs_pulses_before_readout is None:
            return base * 0.1
        readout = kinetic.labelling_time(delay + slice_offset, tau, v.asl_type)
        pulses = [float(np.mean(readout)) - p for p in acq.bs_pulses_before_readout]
        return base * np.abs(bs_residual(t.t1, float(np.mean(readout)), pulses))

    cache: dict[bytes, dict] = {}

    def fractions(i: int) -> dict:
        key = np.round(motion[i], 12).tobytes()
        if key not in cache:
            head = None if not np.any(motion[i]) else rigid_matrix(motion[i], centre)
            cache[key] = sample_fields(geom, head, oversample=acq.oversample)
        return cache[key]

    m0_tr = v.m0_tr
    vols = []
    for i, (vtype, delay) in enumerate(zip(types, delays, strict=True)):
        frac = fractions(i)
        if vtype == 'm0scan':
            vols.append(sum(frac[k] * tissues[k].m0 * -np.expm1(-m0_tr / tissues[k].t1)
                            for k in TISSUES))
            continue
        ctrl = sum(frac[k] * static(tissues[k], delay) for k in TISSUES)
        if vtype == 'control':
            vols.append(ctrl)
        else:
            vols.append(ctrl - sum(frac[k] * tissues[k].m0 * tissue_dm(tissues[k], delay)
                                   for k in TISSUES))
    series = np.stack(vols, axis=-1)
    rest = sample_fields(geom, None, oversample=acq.oversample)
    m0_rest = sum(rest[k] * tissues[k].m0 for k in TISSUES)
    m0_image = sum(rest[k] * tissues[k].m0 * -np.expm1(-m0_tr / tissues[k].t1) for k in TISSUES)
    rng = np.random.default_rng(seed)
    if v.noise_sd:
        series = series + rng.normal(0.0, v.noise_sd, series.shape)
    weights = {k: rest[k] * tissues[k].m0 for k in TISSUES}
    with np.errstate(invalid='ignore', divide='ignore'):
        def weighted(attr):
            num = sum(weights[k] * getattr(tissues[k], attr) for k in TISSUES)
            return np.where(m0_rest > 0, num / np.where(m0_rest > 0, m0_rest, 1.0), 0.0)
        perf = {k: w for k, w in weights.items() if tissues[k].cbf > 0}
        perf_m0 = sum(perf.values())
        att = np.where(perf_m0 > 0, sum(perf[k] * tissues[k].att for k in perf)
                       / np.where(perf_m0 > 0, perf_m0, 1.0), 0.0)
    sidecar = _sidecar(v, n_vols, geom.shape)
    if v.m0_type == 'Included':
        sidecar['PostLabelingDelay'] = [float(d) for d in delays]
        sidecar['RepetitionTimePreparation'] = [m0_tr] + [v.asl_tr] * (n_vols - 1)
    if v.m0_type == 'Estimate':
        sidecar['M0Estimate'] = tissues['gm'].m0
    return {'series': series, 'types': types, 'm0': m0_image, 'cbf': weighted('cbf'),
            'att': att, 't1': weighted('t1'), 'fractions': rest, 'motion': motion,
            'sidecar': sidecar, 'affine': geom.affine}


def t1w_image(geometry: Geometry, *, skull: bool = True, oversample: int = 1,
              noise_sd: float = 0.0, seed: int = 0, scalp: float = 700.0) -> np.ndarray:
    """A T1w head on ``geometry``: the template T1w (white matter ≈ 870), plus (``skull``) a
    scalp shell of intensity ``scalp`` and a dark skull around the brain so that brain
    extraction has something to remove.  Scalp fat on a real T1w is brighter than white
    matter: ``scalp=2500`` mimics it."""
    fields = sample_fields(geometry, None, oversample=oversample, kinds=('t1', 'gm', 'wm', 'csf'))
    image = fields['t1'] * 1000.0
    if skull:
        brain = (fields['gm'] + fields['wm'] + fields['csf']) > 0.3
        spacing = float(min(geometry.zooms))
        dist = ndimage.distance_transform_edt(~brain, sampling=geometry.zooms)
        skull_shell = (dist > 0) & (dist <= max(5.0, 2 * spacing))
        scalp_shell = (dist > max(5.0, 2 * spacing)) & (dist <= max(11.0, 4 * spacing))
        image = np.where(skull_shell, 80.0, image)
        image = np.where(scalp_shell, float(scalp), image)
    if noise_sd:
        image = image + np.random.default_rng(seed).normal(0.0, noise_sd, image.shape)
    return np.clip(image, 0.0, None)


def _save(path: Path, data: np.ndarray, affine: np.ndarray, dtype=np.float32) -> None:
    img = nb.Nifti1Image(np.asarray(data).astype(dtype), affine)
    img.header.set_xyzt_units('mm', 'sec')
    path.parent.mkdir(parents=True, exist_ok=True)
    nb.save(img, str(path))


T1W_GEOMETRY = Geometry(shape=(160, 192, 160), zooms=(1.2, 1.2, 1.2), centre=(0.0, -18.0, 12.0),
                        pose=(2.0, -1.0, 3.0, 1.0, -2.0, 3.0))


def write_brain_subject(root, v: Variant, acq: Acquisition = Acquisition(), *,
                        t1w: Geometry | None = T1W_GEOMETRY, session: str | None = None,
                        seed: int = 0) -> dict:
    """Write ``sub-<label>[/ses-<session>]`` (ASL, M0, T1w) and its truth into ``root``.

    ``t1w=None`` writes no anatomical image.  Returns :func:`simulate_brain`'s dictionary.
    """
    root = Path(root)
    sim = simulate_brain(v, acq, seed)
    sub = f'sub-{v.label}'
    rel = Path(sub) / f'ses-{session}' if session else Path(sub)
    stem = f'{sub}_ses-{session}' if session else sub
    perf = root / rel / 'perf'
    perf.mkdir(parents=True, exist_ok=True)
    affine = sim['affine']
    _save(perf / f'{stem}_asl.nii.gz', sim['series'], affine)
    _write_json(perf / f'{stem}_asl.json', sim['sidecar'])
    (perf / f'{stem}_aslcontext.tsv').write_text('volume_type\n' + '\n'.join(sim['types'])
                                                 + '\n')
    if v.m0_type == 'Separate':
        _save(perf / f'{stem}_m0scan.nii.gz', sim['m0'], affine)
        _write_json(perf / f'{stem}_m0scan.json', {
            'RepetitionTimePreparation': v.m0_tr, 'MagneticFieldStrength': v.field_strength,
            'MRAcquisitionType': v.acquisition, 'EchoTime': 0.012, 'FlipAngle': 90,
            'IntendedFor': f'bids::{rel.as_posix()}/perf/{stem}_asl.nii.gz',
            **{k: sim['sidecar'][k] for k in ('SliceTiming', 'SliceEncodingDirection')
               if k in sim['sidecar']}})
    if t1w is not None:
        anat = root / rel / 'anat'
        _save(anat / f'{stem}_T1w.nii.gz', t1w_image(t1w, seed=seed), t1w.affine)
        _write_json(anat / f'{stem}_T1w.json', {'MagneticFieldStrength': v.field_strength,
                                                'Manufacturer': 'bids_asl synthetic'})
    truth = root / 'derivatives' / 'groundtruth' / rel / 'perf'
    truth.mkdir(parents=True, exist_ok=True)
    _save(truth / f'{stem}_desc-groundtruth_cbf.nii.gz', sim['cbf'], affine)
    _save(truth / f'{stem}_desc-groundtruth_att.nii.gz', sim['att'], affine)
    _save(truth / f'{stem}_desc-groundtruth_T1map.nii.gz', sim['t1'], affine)
    for k in TISSUES:
        _save(truth / f'{stem}_label-{k.upper()}_probseg.nii.gz', sim['fractions'][k], affine)
    for k in ('gm', 'wm'):
        _save(truth / f'{stem}_desc-{k}_mask.nii.gz', sim['fractions'][k] >= 0.5, affine,
              dtype=np.uint8)
    cols = ('rot_x', 'rot_y', 'rot_z', 'trans_x', 'trans_y', 'trans_z')
    rows = ['\t'.join(cols)] + ['\t'.join(f'{x:.9g}' for x in m) for m in sim['motion']]
    (truth / f'{stem}_desc-motion_timeseries.tsv').write_text('\n'.join(rows) + '\n')
    return sim


def make_brain_dataset(root, subjects, *, participants: dict | None = None) -> Path:
    """A BIDS dataset of brain-shaped subjects.

    ``subjects``: iterable of ``(Variant, Acquisition, kwargs)`` where ``kwargs`` go to
    :func:`write_brain_subject` (``t1w``, ``session``, ``seed``).  ``participants``: extra
    participants.tsv columns, ``{label: {column: value}}``.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    _write_json(root / 'dataset_description.json', {
        'Name': 'bids_asl brain-shaped synthetic ASL dataset', 'BIDSVersion': '1.10.0',
        'DatasetType': 'raw', 'License': 'CC0',
        'Authors': ['bids_asl developers', 'synthetic data from the MNI152 2009a template']})
    (root / 'README').write_text(
        'Synthetic ASL data made by bids_asl.synthetic_brain from the MNI ICBM152 2009a '
        'symmetric template (nilearn), with known CBF/ATT. Ground truth in '
        'derivatives/groundtruth.\n')
    subjects = list(subjects)
    labels = list(dict.fromkeys(v.label for v, _, _ in subjects))
    extra = participants or {}
    columns = sorted({c for row in extra.values() for c in row})
    lines = ['\t'.join(['participant_id', *columns])]
    for label in labels:
        lines.append('\t'.join([f'sub-{label}', *(str(extra.get(label, {}).get(c, 'n/a'))
                                                 for c in columns)]))
    (root / 'participants.tsv').write_text('\n'.join(lines) + '\n')
    deriv = root / 'derivatives' / 'groundtruth'
    deriv.mkdir(parents=True, exist_ok=True)
    _write_json(deriv / 'dataset_description.json', {
        'Name': 'ground truth', 'BIDSVersion': '1.10.0', 'DatasetType': 'derivative',
        'GeneratedBy': [{'Name': 'bids_asl.synthetic_brain'}]})
    for v, acq, kwargs in subjects:
        write_brain_subject(root, v, acq, **kwargs)
    return root


def smooth_motion(n_volumes: int, *, drift_mm: float = 1.0, drift_deg: float = 1.0,
                  jump_at: int | None = None, jump_mm: float = 3.0, jump_deg: float = 2.0,
                  seed: int = 0) -> np.ndarray:
    """A motion series: a smooth random drift plus an optional step at volume ``jump_at``.

    Returns (n_volumes, 6) with rotations in rad and translations in mm, zero at volume 0.
    """
    rng = np.random.default_rng(seed)
    x = np.linspace(0.0, 1.0, n_volumes)
    out = np.zeros((n_volumes, 6))
    for j in range(6):
        amp = np.deg2rad(drift_deg) if j < 3 else drift_mm
        phase, freq = rng.uniform(0, 2 * np.pi), rng.uniform(0.5, 1.5)
        out[:, j] = amp * (np.sin(2 * np.pi * freq * x + phase) - np.sin(phase))
    if jump_at is not None:
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        out[jump_at:, 3:] += jump_mm * direction
        out[jump_at:, :3] += np.deg2rad(jump_deg) * axis
    return out


__all__ = ['Acquisition', 'Geometry', 'T1W_GEOMETRY', 'Tissue', 'default_tissues',
           'make_brain_dataset', 'pose_matrix', 'sample_fields', 'simulate_brain',
           'smooth_motion', 't1w_image', 'template_fields', 'write_brain_subject']
