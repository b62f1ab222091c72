"""Participant level on invalid data or metadata: exit 65, one error line naming file and field.

Each case writes a small valid synthetic dataset, breaks ONE thing and runs the CLI in-process.
The run must be refused with exit code 65 (``ExitCode.DATAERR``), exactly one
``bids-asl: error:`` line that names the offending file and field, no traceback, and no
derivative image for that run.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nb
import numpy as np
import pytest

from bids_asl.cli.run import main
from bids_asl.errors import ExitCode
from bids_asl.synthetic import Variant, make_dataset

SHAPE = (12, 13, 8)
LABEL = 'x'


# --- helpers ---------------------------------------------------------------------------------

def _stem(bids: Path, label: str = LABEL) -> Path:
    return bids / f'sub-{label}' / 'perf' / f'sub-{label}'


def _edit_json(path: Path, **changes) -> None:
    """Set fields; a value of ``...`` removes the field."""
    meta = json.loads(path.read_text())
    for key, value in changes.items():
        if value is ...:
            assert key in meta, f'{key} not in {path.name}: the mutation would do nothing'
            del meta[key]
        else:
            meta[key] = value
    path.write_text(json.dumps(meta, indent=2))


def asl_json(**changes):
    """Mutation: edit ``sub-x_asl.json`` (``...`` deletes a field)."""
    return lambda stem: _edit_json(Path(f'{stem}_asl.json'), **changes)


def m0_json(**changes):
    """Mutation: edit ``sub-x_m0scan.json``."""
    return lambda stem: _edit_json(Path(f'{stem}_m0scan.json'), **changes)


def aslcontext(edit):
    """Mutation: ``edit(list of volume types) -> list`` applied to ``sub-x_aslcontext.tsv``."""
    def mutate(stem):
        path = Path(f'{stem}_aslcontext.tsv')
        header, *rows = path.read_text().splitlines()
        path.write_text('\n'.join([header, *edit(rows)]) + '\n')
    return mutate


def _replace(rows, index, value):
    rows = list(rows)
    rows[index] = value
    return rows


def remove(*suffixes):
    """Mutation: delete files of the run (``'aslcontext.tsv'``, ``'m0scan.nii.gz'``, …)."""
    def mutate(stem):
        for suffix in suffixes:
            Path(f'{stem}_{suffix}').unlink()
    return mutate


def m0_image(edit):
    """Mutation: rewrite ``sub-x_m0scan.nii.gz`` as ``edit(data, affine) -> (data, affine)``."""
    def mutate(stem):
        path = Path(f'{stem}_m0scan.nii.gz')
        img = nb.load(str(path))
        data, affine = edit(np.asarray(img.dataobj), img.affine.copy())
        nb.save(nb.Nifti1Image(data.astype(np.float32), affine), str(path))
    return mutate


def overwrite(suffix, text):
    """Mutation: replace a file of the run by ``text`` (a broken JSON, a non-NIfTI, …)."""
    return lambda stem: Path(f'{stem}_{suffix}').write_text(text)


def _shifted(data, affine):
    affine[:3, 3] += 5.0  # 5 mm off the ASL grid
    return data, affine


def _run(tmp_path: Path, bids: Path) -> int:
    return main([str(bids), str(tmp_path / 'out'), 'participant', '--skip-bids-validation',
                 '--no-anatomy',
                 '--work-dir', str(tmp_path / 'work')])


def _error_lines(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.startswith('bids-asl: error:')]


def _derivative_images(out: Path, label: str = LABEL) -> list[Path]:
    return sorted((out / f'sub-{label}' / 'perf').glob('*.nii.gz'))


def case(case_id, mutate, file, field, *, variant=None, says=(), never_says=()):
    """One table row: ``variant`` are Variant() keyword arguments of the valid starting point;
    ``says``/``never_says``: extra text that must/must not be in the error line."""
    return pytest.param(variant or {}, mutate, file, field, says, never_says, id=case_id)


PASL = {'asl_type': 'PASL'}
ASLJ = 'sub-x_asl.json'
CTX = 'sub-x_aslcontext.tsv'
M0 = 'sub-x_m0scan.nii.gz'
M0J = 'sub-x_m0scan.json'

CASES = [
    # required fields missing
    case('missing-ArterialSpinLabelingType', asl_json(ArterialSpinLabelingType=...), ASLJ,
         'ArterialSpinLabelingType'),
    case('missing-PostLabelingDelay', asl_json(PostLabelingDelay=...), ASLJ, 'PostLabelingDelay'),
    case('missing-BackgroundSuppression', asl_json(BackgroundSuppression=...), ASLJ,
         'BackgroundSuppression'),
    case('missing-M0Type', asl_json(M0Type=...), ASLJ, 'M0Type'),
    case('missing-TotalAcquiredPairs', asl_json(TotalAcquiredPairs=...), ASLJ,
         'TotalAcquiredPairs'),
    case('missing-MagneticFieldStrength', asl_json(MagneticFieldStrength=...), ASLJ,
         'MagneticFieldStrength'),
    case('missing-MRAcquisitionType', asl_json(MRAcquisitionType=...), ASLJ, 'MRAcquisitionType'),
    case('missing-RepetitionTimePreparation', asl_json(RepetitionTimePreparation=...), ASLJ,
         'RepetitionTimePreparation'),
    case('missing-LabelingDuration-PCASL', asl_json(LabelingDuration=...), ASLJ,
         'LabelingDuration'),
    case('missing-BolusCutOffFlag-PASL', asl_json(BolusCutOffFlag=...), ASLJ, 'BolusCutOffFlag',
         variant=PASL),
    case('missing-BolusCutOffTechnique', asl_json(BolusCutOffTechnique=...), ASLJ,
         'BolusCutOffTechnique', variant=PASL),
    case('missing-BolusCutOffDelayTime', asl_json(BolusCutOffDelayTime=...), ASLJ,
         'BolusCutOffDelayTime', variant=PASL),
    case('missing-M0Estimate', asl_json(M0Estimate=...), ASLJ, 'M0Estimate',
         variant={'m0_type': 'Estimate'}),
    case('missing-m0scan-RepetitionTimePreparation', m0_json(RepetitionTimePreparation=...), M0J,
         'RepetitionTimePreparation'),
    # wrong types and ranges
    case('PostLabelingDelay-string', asl_json(PostLabelingDelay='1.8'), ASLJ,
         'PostLabelingDelay'),
    case('BackgroundSuppression-yes', asl_json(BackgroundSuppression='yes'), ASLJ,
         'BackgroundSuppression'),
    case('LabelingEfficiency-above-1', asl_json(LabelingEfficiency=1.2), ASLJ,
         'LabelingEfficiency', never_says=('seconds expected',)),
    case('MagneticFieldStrength-string', asl_json(MagneticFieldStrength='3T'), ASLJ,
         'MagneticFieldStrength'),
    case('TotalAcquiredPairs-zero', asl_json(TotalAcquiredPairs=0), ASLJ, 'TotalAcquiredPairs'),
    # enumerations
    case('ArterialSpinLabelingType-FAIR', asl_json(ArterialSpinLabelingType='FAIR'), ASLJ,
         'ArterialSpinLabelingType'),
    case('M0Type-Sometimes', asl_json(M0Type='Sometimes'), ASLJ, 'M0Type'),
    case('MRAcquisitionType-4D', asl_json(MRAcquisitionType='4D'), ASLJ, 'MRAcquisitionType'),
    case('BolusCutOffTechnique-unknown', asl_json(BolusCutOffTechnique='QUIPSSIII'), ASLJ,
         'BolusCutOffTechnique', variant=PASL),
    # per-volume lists
    case('PostLabelingDelay-list-too-short', asl_json(PostLabelingDelay=[1.8] * 7), ASLJ,
         'PostLabelingDelay', says=('7 entries', '8 volumes')),
    case('RepetitionTimePreparation-list-too-long',
         asl_json(RepetitionTimePreparation=[4.5] * 9), ASLJ, 'RepetitionTimePreparation'),
    # aslcontext
    case('aslcontext-rows-not-volumes', aslcontext(lambda rows: rows[:-1]), CTX, 'volume_type',
         says=('7 rows', '8 volumes')),
    case('aslcontext-unpaired', aslcontext(lambda rows: _replace(rows, 1, 'control')), CTX,
         'volume_type', says=('5 control', '3 label')),
    case('aslcontext-unknown-volume-type', aslcontext(lambda rows: _replace(rows, 2, 'tag')),
         CTX, 'volume_type', says=("'tag'",)),
    case('aslcontext-missing', remove('aslcontext.tsv'), CTX, 'volume_type'),
    # M0
    case('M0Type-Separate-without-m0scan', remove('m0scan.nii.gz', 'm0scan.json'), ASLJ,
         'M0Type', says=('m0scan',)),
    case('m0scan-grid-shape', m0_image(lambda d, a: (d[:, :, :-1], a)), M0, 'shape'),
    case('m0scan-affine', m0_image(_shifted), M0, 'affine'),
    case('M0Type-Included-without-m0scan-volume', asl_json(M0Type='Included'), CTX,
         'volume_type', says=('Included',)),
    case('M0Type-Absent-with-background-suppression', asl_json(BackgroundSuppression=True), ASLJ,
         'M0Type', variant={'m0_type': 'Absent'}, says=('--allow-control-m0',)),
    # implausible values (the peer failure: TR 0 gave an all-zero CBF map)
    case('RepetitionTimePreparation-zero', asl_json(RepetitionTimePreparation=0), ASLJ,
         'RepetitionTimePreparation'),
    case('m0scan-RepetitionTimePreparation-zero', m0_json(RepetitionTimePreparation=0), M0J,
         'RepetitionTimePreparation'),
    case('PostLabelingDelay-in-ms', asl_json(PostLabelingDelay=1800), ASLJ, 'PostLabelingDelay',
         says=('not ms',)),
    case('LabelingDuration-25s', asl_json(LabelingDuration=25), ASLJ, 'LabelingDuration'),
    case('MagneticFieldStrength-300', asl_json(MagneticFieldStrength=300), ASLJ,
         'MagneticFieldStrength', never_says=('seconds expected',)),
    case('MagneticFieldStrength-0.2-no-blood-T1-rule', asl_json(MagneticFieldStrength=0.2), ASLJ,
         'MagneticFieldStrength', says=('--t1-blood',)),
    # PASL bolus
    case('PASL-BolusCutOffFlag-false', asl_json(BolusCutOffFlag=False), ASLJ, 'BolusCutOffFlag',
         variant=PASL),
    case('BolusCutOffDelayTime-not-before-TI', asl_json(BolusCutOffDelayTime=[1.8, 2.4]), ASLJ,
         'BolusCutOffDelayTime', variant=PASL, says=('inversion time',)),
    # unreadable files and other header fields
    case('asl-json-not-json', overwrite('asl.json', '{"M0Type": "Separate",'), ASLJ, 'json'),
    case('m0scan-json-not-json', overwrite('m0scan.json', '{'), M0J, 'json'),
    case('asl-image-not-nifti', overwrite('asl.nii.gz', 'not an image'), 'sub-x_asl.nii.gz',
         'image'),
    case('m0scan-image-not-nifti', overwrite('m0scan.nii.gz', 'not an image'), M0, 'image'),
    case('aslcontext-no-volume_type-column', overwrite('aslcontext.tsv', 'type\ncontrol\n'),
         CTX, 'volume_type'),
    case('SliceTiming-wrong-length', asl_json(SliceTiming=[0.0, 0.04]), ASLJ, 'SliceTiming',
         variant={'acquisition': '2D'}),
    case('BackgroundSuppressionNumberPulses-negative',
         asl_json(BackgroundSuppression=True, BackgroundSuppressionNumberPulses=-1), ASLJ,
         'BackgroundSuppressionNumberPulses'),
    # detected while processing, not while validating
    case('m0scan-all-zero', m0_image(lambda d, a: (np.zeros_like(d), a)), M0, 'M0'),
]


# --- tests -----------------------------------------------------------------------------------

@pytest.mark.parametrize(('variant', 'mutate', 'file', 'field', 'says', 'never_says'), CASES)
def test_bad_input_is_refused(tmp_path, capsys, variant, mutate, file, field, says, never_says):
    bids = make_dataset(tmp_path / 'bids', variants=(Variant(label=LABEL, **variant),),
                        shape=SHAPE)
    mutate(_stem(bids))
    capsys.readouterr()

    code = _run(tmp_path, bids)

    err = capsys.readouterr().err
    assert code == ExitCode.DATAERR, err
    lines = _error_lines(err)
    assert len(lines) == 1, err
    line = lines[0]
    # Attributed to the file and the field: 'bids-asl: error: <dir>/<file>: <field>: <message>'.
    _, _, path, named_field, _ = line.split(': ', 4)
    assert (Path(path).name, named_field) == (file, field), line
    for text in says:
        assert text in line, line
    for text in never_says:
        assert text not in line, line
    assert 'Traceback' not in err
    assert 'internal error' not in err
    assert not (tmp_path / 'out' / f'sub-{LABEL}' / 'perf' / f'sub-{LABEL}_cbf.nii.gz').exists()
    assert _derivative_images(tmp_path / 'out') == []


@pytest.mark.parametrize(('field_strength', 'blood_t1'), [(2.89, 1.65), (7.0, 2.1)],
                         ids=['2.89T-snaps-to-3T', '7T'])
def test_field_strength_rule(tmp_path, capsys, field_strength, blood_t1):
    bids = make_dataset(tmp_path / 'bids',
                        variants=(Variant(label=LABEL, field_strength=field_strength),),
                        shape=SHAPE)

    code = _run(tmp_path, bids)

    err = capsys.readouterr().err
    assert code == ExitCode.OK, err
    assert _error_lines(err) == []
    cbf_json = tmp_path / 'out' / f'sub-{LABEL}' / 'perf' / f'sub-{LABEL}_cbf.json'
    sidecar = json.loads(cbf_json.read_text())
    assert sidecar['BloodT1'] == pytest.approx(blood_t1)
    assert sidecar['MagneticFieldStrength'] == pytest.approx(field_strength)
    assert (cbf_json.parent / f'sub-{LABEL}_cbf.nii.gz').is_file()


def test_one_broken_subject_does_not_stop_the_others(tmp_path, capsys):
    bids = make_dataset(tmp_path / 'bids',
                        variants=(Variant(label='bad'), Variant(label='good')), shape=SHAPE)
    asl_json(RepetitionTimePreparation=0)(_stem(bids, 'bad'))

    code = _run(tmp_path, bids)

    err = capsys.readouterr().err
    out = tmp_path / 'out'
    assert code == ExitCode.DATAERR, err
    lines = _error_lines(err)
    assert len(lines) == 1, err
    assert '/sub-bad_asl.json: RepetitionTimePreparation: ' in lines[0]
    assert 'Traceback' not in err
    assert (out / 'sub-good' / 'perf' / 'sub-good_cbf.nii.gz').is_file()
    assert (out / 'sub-good' / 'perf' / 'sub-good_cbf.json').is_file()
    assert _derivative_images(out, 'bad') == []
