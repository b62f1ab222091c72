"""Validation of one ASL run's BIDS metadata and image headers into typed parameters.

Rules follow the BIDS specification (ASL section, schema ``rules/sidecars/asl.yaml`` and
``rules/checks/asl.yaml``) plus plausibility ranges.  Every failure raises
:class:`~bids_asl.errors.MetadataError` naming the file and the field.  Nothing here computes
CBF; :func:`resolve_constants` picks the physical constants and records where each came from.
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bids_asl.constants import VOLUME_TYPES
from bids_asl.errors import MetadataError
from bids_asl.io.imagecheck import ImageCheck, check_image

ASL_TYPES = ('PCASL', 'CASL', 'PASL')
M0_TYPES = ('Separate', 'Included', 'Estimate', 'Absent')
BOLUS_TECHNIQUES = ('QUIPSS', 'QUIPSSII', 'Q2TIPS')

#: Plausible ranges (inclusive) of timing fields, in seconds.  A value above the range is
#: usually milliseconds given where BIDS wants seconds.
PLD_RANGE = (0.0, 10.0)
LABEL_DURATION_RANGE = (0.05, 10.0)
TI1_RANGE = (0.05, 5.0)
TR_RANGE = (0.1, 100.0)
FIELD_RANGE = (0.05, 12.0)
AFFINE_TOLERANCE_MM = 1e-3
#: A run is refused when more than this fraction of its voxels is NaN or ±Inf in some volume
#: of the ASL series or the M0 image; fewer are excluded from the brain mask with a warning.
MAX_NONFINITE_FRACTION = 0.5


@dataclass(frozen=True)
class AslParams:
    """Everything about one ASL run that quantification needs, validated, in SI units."""

    asl_file: str
    aslcontext_file: str
    m0_file: str | None
    shape: tuple[int, ...]
    volume_types: tuple[str, ...]
    asl_type: str
    pld: tuple[float, ...]  # one per volume
    label_duration: float | None  # (P)CASL
    bolus_cutoff_technique: str | None  # PASL
    ti1: float | None  # PASL bolus duration (first BolusCutOffDelayTime)
    labeling_efficiency: float | None  # from the sidecar, when given
    background_suppression: bool
    bs_pulses: int | None
    m0_type: str
    m0_estimate: float | None
    m0_tr: float | None
    asl_tr: tuple[float, ...]  # RepetitionTimePreparation, one per volume
    field_strength: float
    acquisition_type: str
    slice_timing: tuple[float, ...] | None
    slice_encoding_direction: str
    nonfinite_voxels: int = 0  # voxels NaN/Inf in the ASL series or M0: excluded from the mask

    @property
    def difference_plds(self) -> tuple[float, ...]:
        """Distinct delays of the volumes that carry perfusion signal."""
        idx = [i for i, t in enumerate(self.volume_types) if t in ('control', 'label', 'deltam')]
        return tuple(sorted({round(self.pld[i], 6) for i in idx}))

    @property
    def is_multi_delay(self) -> bool:
        return len(self.difference_plds) > 1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> AslParams:
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**fields)


def _fail(path, field, message):
    raise MetadataError(message, path=path, field=field)


def _number(meta, key, path, *, required=True, positive=False, rng=None, seconds=False):
    if key not in meta:
        if required:
            _fail(path, key, 'required field is missing')
        return None
    val = meta[key]
    if isinstance(val, bool) or not isinstance(val, int | float) or not math.isfinite(val):
        _fail(path, key, f'must be a number, got {val!r}')
    if positive and not val > 0:
        _fail(path, key, f'must be > 0, got {val!r}')
    if rng is not None and not rng[0] <= val <= rng[1]:
        _fail(path, key, f'{val!r} is outside the plausible range {rng[0]:g}-{rng[1]:g}'
                         + (' (seconds expected, not ms?)' if seconds and val > rng[1] else ''))
    return float(val)


def _per_volume(meta, key, path, n_vols, *, required=True):
    """A number or a list with one number per volume → tuple of n_vols floats."""
    if key not in meta:
        if required:
            _fail(path, key, 'required field is missing')
        return None
    val = meta[key]
    if isinstance(val, list):
        if len(val) != n_vols:
            _fail(path, key, f'has {len(val)} entries but the series has {n_vols} volumes')
        if not all(isinstance(v, int | float) and not isinstance(v, bool)
                   and math.isfinite(v) for v in val):
            _fail(path, key, 'list entries must all be numbers')
        return tuple(float(v) for v in val)
    _number(meta, key, path)
    return (float(val),) * n_vols


def _bool(meta, key, path, *, required=True):
    if key not in meta:
        if required:
            _fail(path, key, 'required field is missing')
        return None
    if not isinstance(meta[key], bool):
        _fail(path, key, f'must be true or false, got {meta[key]!r}')
    return meta[key]


def _enum(meta, key, path, allowed):
    if key not in meta:
        _fail(path, key, 'required field is missing')
    if meta[key] not in allowed:
        _fail(path, key, f'{meta[key]!r} is not one of {", ".join(allowed)}')
    return meta[key]


def read_aslcontext(path) -> tuple[str, ...]:
    """Volume types from ``*_aslcontext.tsv`` (column ``volume_type``)."""
    path = Path(path)
    try:
        with path.open(newline='', encoding='utf-8') as fobj:
            rows = list(csv.DictReader(fobj, delimiter='\t'))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        _fail(path, 'volume_type', f'cannot read the file ({exc})')
    if not rows or 'volume_type' not in rows[0]:
        _fail(path, 'volume_type', 'the required column is missing or the file is empty')
    types = tuple((row['volume_type'] or '').strip() for row in rows)
    for i, vtype in enumerate(types):
        if vtype not in VOLUME_TYPES:
            _fail(path, 'volume_type',
                  f'row {i + 1} is {vtype!r}; allowed: {", ".join(VOLUME_TYPES)}')
    return types


def _check_values(check: ImageCheck, path, types, *, m0_role: str | None = None) -> np.ndarray:
    """Non-finite voxels of one image (bool map); refuses unusable voxel values."""
    for i, n_finite in enumerate(check.finite_voxels):
        vtype = types[i] if types else 'M0'
        if n_finite == 0 and vtype != 'noRF':
            _fail(path, 'image', f'volume {i + 1} ({vtype}) has no finite value (all NaN/Inf)')
    fraction = check.nonfinite.sum() / check.n_voxels
    if fraction > MAX_NONFINITE_FRACTION:
        _fail(path, 'image', f'{fraction:.0%} of the voxels are NaN or Inf in some volume '
                             f'(at most {MAX_NONFINITE_FRACTION:.0%} can be masked out)')
    if m0_role is not None:
        volumes = [i for i, t in enumerate(types) if t == m0_role] if types else \
            list(range(check.n_volumes))
        for i in volumes:
            where = f'volume {i + 1} ({m0_role})' if types else 'M0'
            if check.positive_voxels[i] == 0:
                _fail(path, 'M0', f'{where} has no positive finite voxel (zero, negative or NaN '
                                  'everywhere: cannot calibrate)')
            if check.negative_voxels[i] > check.positive_voxels[i]:
                _fail(path, 'M0', f'{where} has more negative ({check.negative_voxels[i]}) than '
                                  f'positive ({check.positive_voxels[i]}) voxels: M0 must be '
                                  'positive (sign flipped or a wrong scale slope?)')
    return check.nonfinite


def _check_pld_values(pld, types, path):
    for i, (value, vtype) in enumerate(zip(pld, types, strict=True)):
        if vtype in ('control', 'label', 'deltam', 'cbf'):
            lo, hi = PLD_RANGE
            if not lo < value <= hi:
                _fail(path, 'PostLabelingDelay',
                      f'volume {i + 1} ({vtype}) has {value:g}; expected {lo:g} < PLD <= {hi:g} s'
                      + (' (seconds expected, not ms?)' if value > hi else ''))


def validate_run(
    asl_file, aslcontext_file, metadata: dict, *, m0_file=None, m0_metadata=None
) -> AslParams:
    """Validate one run; returns :class:`AslParams` or raises :class:`MetadataError`."""
    sidecar = Path(str(asl_file).replace('.nii.gz', '.json').replace('.nii', '.json'))
    meta = metadata
    if aslcontext_file is None:
        expected = Path(str(asl_file).split('_asl.nii')[0] + '_aslcontext.tsv')
        _fail(expected, 'volume_type', 'required file is missing (it gives the type of each '
                                       f'volume of {Path(asl_file).name})')
    types = read_aslcontext(aslcontext_file)
    img = check_image(asl_file)
    shape = img.shape
    if len(shape) == 3:
        if len(types) > 1:
            _fail(asl_file, 'dim', f'is a 3-D image (one volume) but {Path(aslcontext_file).name}'
                                   f' lists {len(types)} volumes: a 4-D series is expected')
        shape = shape + (1,)
    n_vols = shape[3]
    if len(types) != n_vols:
        _fail(aslcontext_file, 'volume_type',
              f'{len(types)} rows but {Path(asl_file).name} has {n_vols} volumes')
    n_control, n_label = types.count('control'), types.count('label')
    if n_control != n_label:
        _fail(aslcontext_file, 'volume_type',
              f'{n_control} control and {n_label} label volumes cannot be paired')
    if not (n_control or types.count('deltam') or types.count('cbf')):
        _fail(aslcontext_file, 'volume_type', 'no control/label, deltam or cbf volumes')
    m0_role = {'Included': 'm0scan', 'Absent': 'control'}.get(metadata.get('M0Type'))
    nonfinite = _check_values(img, asl_file, types, m0_role=m0_role)

    asl_type = _enum(meta, 'ArterialSpinLabelingType', sidecar, ASL_TYPES)
    m0_type = _enum(meta, 'M0Type', sidecar, M0_TYPES)
    acq = _enum(meta, 'MRAcquisitionType', sidecar, ('2D', '3D'))
    bs = _bool(meta, 'BackgroundSuppression', sidecar)
    _number(meta, 'TotalAcquiredPairs', sidecar, positive=True)
    field = _number(meta, 'MagneticFieldStrength', sidecar, positive=True, rng=FIELD_RANGE)
    pld = _per_volume(meta, 'PostLabelingDelay', sidecar, n_vols)
    _check_pld_values(pld, types, sidecar)
    asl_tr = _per_volume(meta, 'RepetitionTimePreparation', sidecar, n_vols)
    for value in asl_tr:
        if not TR_RANGE[0] <= value <= TR_RANGE[1]:
            _fail(sidecar, 'RepetitionTimePreparation',
                  f'{value:g} is outside {TR_RANGE[0]:g}-{TR_RANGE[1]:g} s (must be > 0)')

    label_duration = ti1 = technique = None
    if asl_type in ('PCASL', 'CASL'):
        durations = _per_volume(meta, 'LabelingDuration', sidecar, n_vols)
        used = {durations[i] for i, t in enumerate(types) if t in ('control', 'label', 'deltam')}
        used = used or set(durations)
        if len(used) > 1:
            _fail(sidecar, 'LabelingDuration',
                  'different label durations within one run are not supported yet')
        label_duration = used.pop()
        if not LABEL_DURATION_RANGE[0] <= label_duration <= LABEL_DURATION_RANGE[1]:
            _fail(sidecar, 'LabelingDuration',
                  f'{label_duration:g} is outside {LABEL_DURATION_RANGE[0]:g}-'
                  f'{LABEL_DURATION_RANGE[1]:g} s')
    else:
        if not _bool(meta, 'BolusCutOffFlag', sidecar):
            _fail(sidecar, 'BolusCutOffFlag',
                  'PASL without a bolus cut-off has no defined bolus duration; '
                  'single-delay quantification needs QUIPSS II or Q2TIPS')
        technique = _enum(meta, 'BolusCutOffTechnique', sidecar, BOLUS_TECHNIQUES)
        if 'BolusCutOffDelayTime' not in meta:
            _fail(sidecar, 'BolusCutOffDelayTime', 'required field is missing')
        raw = meta['BolusCutOffDelayTime']
        first = raw[0] if isinstance(raw, list) and raw else raw
        ti1 = _number({'BolusCutOffDelayTime': first}, 'BolusCutOffDelayTime', sidecar,
                      positive=True, rng=TI1_RANGE, seconds=True)
        min_ti = min(p for p, t in zip(pld, types, strict=True) if t != 'm0scan')
        if ti1 >= min_ti:
            _fail(sidecar, 'BolusCutOffDelayTime',
                  f'TI1 {ti1:g} s must be shorter than the inversion time {min_ti:g} s')

    alpha = _number(meta, 'LabelingEfficiency', sidecar, required=False, positive=True,
                    rng=(0.0, 1.0))
    bs_pulses = None
    if 'BackgroundSuppressionNumberPulses' in meta:
        val = meta['BackgroundSuppressionNumberPulses']
        if isinstance(val, bool) or not isinstance(val, int | float) or val < 0 or val != int(val):
            _fail(sidecar, 'BackgroundSuppressionNumberPulses',
                  f'must be a whole number >= 0, got {val!r}')
        bs_pulses = int(val)

    slice_timing = None
    direction = meta.get('SliceEncodingDirection', 'k')
    if direction not in ('i', 'j', 'k', 'i-', 'j-', 'k-'):
        _fail(sidecar, 'SliceEncodingDirection', f'invalid value {direction!r}')
    if 'SliceTiming' in meta:
        st = meta['SliceTiming']
        if not isinstance(st, list) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < 10 for v in st
        ):
            _fail(sidecar, 'SliceTiming', 'must be a list of times in seconds (0-10)')
        n_slices = shape['ijk'.index(direction[0])]
        if len(st) != n_slices:
            _fail(sidecar, 'SliceTiming',
                  f'has {len(st)} entries but the image has {n_slices} slices')
        slice_timing = tuple(float(v) for v in st)

    m0_estimate = m0_tr = None
    n_m0 = types.count('m0scan')
    if m0_type == 'Included':
        if not n_m0:
            _fail(aslcontext_file, 'volume_type', 'M0Type is Included but no m0scan volume')
        trs = {asl_tr[i] for i, t in enumerate(types) if t == 'm0scan'}
        m0_tr = min(trs)
    elif n_m0:
        _fail(sidecar, 'M0Type', f'is {m0_type} but aslcontext lists m0scan volumes '
                                 '(expected Included)')
    if m0_type == 'Estimate':
        m0_estimate = _number(meta, 'M0Estimate', sidecar, positive=True)
    if m0_type == 'Separate':
        if m0_file is None:
            _fail(sidecar, 'M0Type',
                  'is Separate but no *_m0scan.nii[.gz] has IntendedFor this run')
        m0_img = check_image(m0_file)
        m0_sidecar = Path(str(m0_file).replace('.nii.gz', '.json').replace('.nii', '.json'))
        if tuple(m0_img.shape[:3]) != shape[:3]:
            _fail(m0_file, 'shape', f'M0 grid {tuple(m0_img.shape[:3])} differs from the '
                                    f'ASL grid {shape[:3]}')
        if not np.allclose(m0_img.affine, img.affine, atol=AFFINE_TOLERANCE_MM):
            _fail(m0_file, 'affine', 'M0 and ASL images are not on the same grid (affines differ)')
        nonfinite = nonfinite | _check_values(m0_img, m0_file, (), m0_role='M0')
        m0_meta = m0_metadata or {}
        m0_tr = _number(m0_meta, 'RepetitionTimePreparation', m0_sidecar, rng=TR_RANGE,
                        seconds=True)
    if m0_type == 'Absent':
        m0_tr = (min(asl_tr[i] for i, t in enumerate(types) if t == 'control') if n_control
                 else None)

    return AslParams(
        asl_file=str(asl_file), aslcontext_file=str(aslcontext_file),
        m0_file=None if m0_file is None else str(m0_file), shape=shape, volume_types=types,
        asl_type=asl_type, pld=pld, label_duration=label_duration,
        bolus_cutoff_technique=technique, ti1=ti1, labeling_efficiency=alpha,
        background_suppression=bs, bs_pulses=bs_pulses, m0_type=m0_type,
        m0_estimate=m0_estimate, m0_tr=m0_tr, asl_tr=asl_tr, field_strength=field,
        acquisition_type=acq, slice_timing=slice_timing, slice_encoding_direction=direction,
        nonfinite_voxels=int(nonfinite.sum()),
    )
