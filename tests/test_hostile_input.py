"""Hostile and malformed inputs built from the ASLDRO data: one line, a documented code, nothing
written for the run, the other participants still done.

Each case copies one ASLDRO subject, breaks ONE thing (image content, JSON, aslcontext, the
file system) and runs the CLI in-process.  The run must be refused with the case's exit code,
exactly one ``bids-asl: error: <path>: <field>: <message>`` line naming the file and the field,
no traceback, and no derivative for that participant.  ``test_all_at_once`` puts every case
next to a valid participant in one dataset: the valid one is still quantified.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
from pathlib import Path

import nibabel as nb
import numpy as np
import pytest

from bids_asl.cli.run import main
from bids_asl.errors import ExitCode

from conftest import ASLDRO, clone_dro_subject

pytestmark = pytest.mark.needs_data(ASLDRO)
ARGS = ('participant', '--skip-bids-validation', '--no-motion-correction', '--no-anatomy')


# --- mutations: f(stem) where stem is '<bids>/sub-L/perf/sub-L_' -----------------------------

def _file(stem, suffix) -> Path:
    return Path(f'{stem}{suffix}')


def image(suffix, edit, dtype=None):
    """Rewrite an image as ``edit(float64 data, affine) -> (data, affine)``."""
    def mutate(stem):
        path = _file(stem, suffix)
        img = nb.load(path)
        data, affine = edit(np.asarray(img.dataobj, dtype=np.float64), img.affine.copy())
        out = nb.Nifti1Image(np.asarray(data).astype(dtype or np.float32), affine)
        nb.save(out, path)
    return mutate


def _set(index, value):
    def edit(data, affine):
        data[index] = value
        return data, affine
    return edit


def raw_bytes(suffix, edit):
    """Replace a file's bytes by ``edit(bytes)``."""
    def mutate(stem):
        path = _file(stem, suffix)
        path.write_bytes(edit(path.read_bytes()))
    return mutate


def sidecar(suffix='asl.json', **changes):
    def mutate(stem):
        path = _file(stem, suffix)
        meta = json.loads(path.read_text())
        meta.update(changes)
        path.write_text(json.dumps(meta))
    return mutate


def truncated_gzip(data: bytes) -> bytes:
    return data[:len(data) // 2]


def header_edit(edit):
    """Edit the NIfTI header fields in place (nibabel would refuse to save such a header)."""
    def change(data: bytes) -> bytes:
        raw = bytearray(gzip.decompress(data))
        header = nb.Nifti1Header.from_fileobj(io.BytesIO(bytes(raw[:348])))
        edit(header)
        raw[:348] = header.binaryblock
        return gzip.compress(bytes(raw))
    return change


def _huge(header):
    header.set_data_shape((2000, 2000, 2000, 8))


def _singular(header):
    header['qform_code'] = 0
    header['sform_code'] = 1
    header['srow_z'] = [0.0, 0.0, 0.0, -72.0]  # a zero slice direction


def uncompressed_and_cut(stem):
    path = _file(stem, 'asl.nii.gz')
    raw = gzip.decompress(path.read_bytes())
    path.unlink()
    _file(stem, 'asl.nii').write_bytes(raw[:len(raw) * 2 // 3])
    _retarget_m0(stem, 'asl.nii')


def _retarget_m0(stem, asl_suffix):
    m0_json = _file(stem, 'm0scan.json')
    meta = json.loads(m0_json.read_text())
    meta['IntendedFor'] = [meta['IntendedFor'][0].replace('asl.nii.gz', asl_suffix)]
    m0_json.write_text(json.dumps(meta))


def symlink_outside(suffix):
    """Move the file out of the dataset and leave a symlink to it."""
    def mutate(stem):
        path = _file(stem, suffix)
        outside = path.parents[3].parent / f'outside-{path.name}'
        shutil.move(path, outside)
        path.symlink_to(outside)
    return mutate


def broken_symlink(stem):
    path = _file(stem, 'asl.nii.gz')
    path.unlink()
    path.symlink_to(path.parent / 'no-such-file.nii.gz')


def fifo(suffix):
    def mutate(stem):
        path = _file(stem, suffix)
        path.unlink()
        os.mkfifo(path)
    return mutate


def folder_instead(suffix):
    def mutate(stem):
        path = _file(stem, suffix)
        path.unlink()
        path.mkdir()
    return mutate


def subject_folder_renamed(stem):
    subject_dir = Path(stem).parents[1]
    subject_dir.rename(subject_dir.with_name(subject_dir.name + ' copy'))


def aslcontext(text: bytes):
    return raw_bytes('aslcontext.tsv', lambda _: text)


def _zero_m0_volume(data, affine):
    data[..., 0] = 0.0  # sub-pcaslm0incl: volume 1 is the m0scan
    return data, affine


def _shifted(data, affine):
    affine[:3, 3] += 4.0
    return data, affine


def case(case_id, mutate, suffix, field, *, source='pcasl1pld', code=ExitCode.DATAERR,
         says=''):
    return pytest.param(source, mutate, suffix, field, code, says, id=case_id)


IMG, M0, CTX, ASLJ = 'asl.nii.gz', 'm0scan.nii.gz', 'aslcontext.tsv', 'asl.json'
CASES = [
    # image files: integrity and size
    case('asl-gzip-truncated', raw_bytes(IMG, truncated_gzip), IMG, 'image', says='truncated'),
    case('asl-nii-cut-short', uncompressed_and_cut, 'asl.nii', 'image', says='truncated'),
    case('m0-gzip-truncated', raw_bytes(M0, truncated_gzip), M0, 'image'),
    case('asl-gzip-corrupt-crc', raw_bytes(IMG, lambda b: b[:-8] + bytes(8)), IMG, 'image'),
    case('asl-huge-header', raw_bytes(IMG, header_edit(_huge)), IMG, 'dim', says='GiB'),
    case('asl-empty-file', raw_bytes(IMG, lambda _: b''), IMG, 'image'),
    case('asl-not-nifti', raw_bytes(IMG, lambda _: b'<html>not an image</html>'), IMG, 'image'),
    case('asl-complex-datatype', image(IMG, lambda d, a: (d, a), dtype=np.complex64), IMG,
         'datatype'),
    case('asl-3d-not-a-series', image(IMG, lambda d, a: (d[..., 0], a)), IMG, 'dim',
         says='4-D series is expected'),
    case('asl-singular-affine', raw_bytes(IMG, header_edit(_singular)), IMG, 'affine'),
    # voxel values
    case('asl-all-nan', image(IMG, lambda d, a: (d * np.nan, a)), IMG, 'image'),
    case('asl-one-volume-nan', image(IMG, _set((..., 2), np.nan)), IMG, 'image',
         says='volume 3 (control) has no finite value'),
    case('asl-inf-half-the-grid', image(IMG, _set((slice(0, 40),), np.inf)), IMG, 'image',
         says='NaN or Inf'),
    case('m0-all-nan', image(M0, lambda d, a: (d * np.nan, a)), M0, 'image'),
    case('m0-zero', image(M0, lambda d, a: (0 * d, a)), M0, 'M0', says='no positive'),
    case('m0-negative', image(M0, lambda d, a: (-d, a)), M0, 'M0', says='negative'),
    case('m0-included-volume-zero', image(IMG, _zero_m0_volume), IMG, 'M0',
         source='pcaslm0incl', says='volume 1 (m0scan)'),
    # grids
    case('m0-affine-mismatch', image(M0, _shifted), M0, 'affine'),
    case('m0-grid-mismatch', image(M0, lambda d, a: (d[:-2], a)), M0, 'shape'),
    # JSON
    case('asl-json-not-utf8', raw_bytes(ASLJ, lambda b: b.replace(b'PCASL', b'PC\xffASL')),
         ASLJ, 'json'),
    case('asl-json-truncated', raw_bytes(ASLJ, lambda b: b[:len(b) // 2]), ASLJ, 'json'),
    case('asl-json-is-a-list', raw_bytes(ASLJ, lambda _: b'[1, 2]'), ASLJ, 'json'),
    case('m0-json-latin1', raw_bytes('m0scan.json', lambda b: b.replace(b'"SE"', b'"\xe9"')),
         'm0scan.json', 'json'),
    case('asl-json-NaN-literal', raw_bytes(ASLJ, lambda b: b.replace(
        b'"PostLabelingDelay": 1.8', b'"PostLabelingDelay": NaN')), ASLJ, 'PostLabelingDelay'),
    case('PostLabelingDelay-strings', sidecar(PostLabelingDelay=['1.8'] * 8), ASLJ,
         'PostLabelingDelay'),
    case('LabelingDuration-object', sidecar(LabelingDuration={'value': 1.8}), ASLJ,
         'LabelingDuration'),
    case('M0Type-number', sidecar(M0Type=3), ASLJ, 'M0Type'),
    case('TotalAcquiredPairs-bool', sidecar(TotalAcquiredPairs=True), ASLJ,
         'TotalAcquiredPairs'),
    case('MagneticFieldStrength-null', sidecar(MagneticFieldStrength=None), ASLJ,
         'MagneticFieldStrength'),
    case('BackgroundSuppression-string', sidecar(BackgroundSuppression='false'), ASLJ,
         'BackgroundSuppression'),
    # aslcontext
    case('aslcontext-unknown-label', aslcontext(b'volume_type\n' + b'control\ntag\n' * 4), CTX,
         'volume_type', says="'tag'"),
    case('aslcontext-latin1', aslcontext(b'volume_type\ncontr\xf4le\n'), CTX, 'volume_type'),
    case('aslcontext-empty', aslcontext(b''), CTX, 'volume_type'),
    case('aslcontext-NUL-bytes', aslcontext(b'volume_type\n\x00\x00\x00\n'), CTX, 'volume_type'),
    # the file system
    case('asl-symlink-out-of-dataset', symlink_outside(IMG), IMG, 'symlink'),
    case('m0-symlink-out-of-dataset', symlink_outside(M0), M0, 'symlink'),
    case('asl-broken-symlink', broken_symlink, IMG, 'symlink'),
    case('aslcontext-fifo', fifo(CTX), CTX, 'file'),
    case('asl-json-fifo', fifo(ASLJ), ASLJ, 'file'),
    case('asl-json-is-a-folder', folder_instead(ASLJ), ASLJ, 'file'),
    case('subject-folder-not-bids', subject_folder_renamed, IMG, 'filename'),
]


def _error_lines(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.startswith('bids-asl: error:')]


def _assert_one_line(err, label, suffix, field, says=''):
    lines = [ln for ln in _error_lines(err) if f'sub-{label}' in ln]
    assert len(lines) == 1, err
    _, _, path, named_field, message = lines[0].split(': ', 4)
    assert (Path(path).name, named_field) == (f'sub-{label}_{suffix}', field), lines[0]
    assert says in message, lines[0]


def _derivatives(out: Path, label: str) -> list[Path]:
    return sorted(p for p in (out / f'sub-{label}').rglob('*') if p.is_file()
                  and '/log/' not in p.as_posix())


@pytest.mark.parametrize(('source', 'mutate', 'suffix', 'field', 'code', 'says'), CASES)
def test_refused_in_one_line(tmp_path, capsys, source, mutate, suffix, field, code, says):
    bids = tmp_path / 'bids'
    mutate(clone_dro_subject(bids, 'x', source))
    capsys.readouterr()

    result = main([str(bids), str(tmp_path / 'out'), *ARGS, '-w', str(tmp_path / 'work')])

    err = capsys.readouterr().err
    assert result == code, err
    assert len(_error_lines(err)) == 1, err
    _assert_one_line(err, 'x', suffix, field, says)
    assert 'Traceback' not in err and 'internal error' not in err, err
    assert _derivatives(tmp_path / 'out', 'x') == []


def test_at_least_30_cases():
    assert len(CASES) >= 30


def test_all_at_once_the_valid_participant_is_done(tmp_path, capsys):
    bids = tmp_path / 'bids'
    labels = {}
    for i, param in enumerate(CASES):
        source, mutate, suffix, field, _, says = param.values
        label = f'bad{i:02d}'
        mutate(clone_dro_subject(bids, label, source))
        labels[label] = (suffix, field, says)
    clone_dro_subject(bids, 'good')
    capsys.readouterr()

    result = main([str(bids), str(tmp_path / 'out'), *ARGS, '-w', str(tmp_path / 'work')])

    err = capsys.readouterr().err
    assert result == ExitCode.DATAERR, err
    assert len(_error_lines(err)) == len(CASES), err
    for label, (suffix, field, says) in labels.items():
        _assert_one_line(err, label, suffix, field, says)
        assert _derivatives(tmp_path / 'out', label) == []
    perf = tmp_path / 'out' / 'sub-good' / 'perf'
    assert (perf / 'sub-good_cbf.nii.gz').is_file()
    assert 'sub-good' not in '\n'.join(_error_lines(err))


@pytest.mark.parametrize('where', ['asl', 'm0'])
def test_few_nan_voxels_are_masked_out_with_a_warning(tmp_path, capsys, where):
    bids = tmp_path / 'bids'
    stem = clone_dro_subject(bids, 'x')
    voxels = (slice(30, 32), slice(30, 32), 12)
    if where == 'asl':
        image(IMG, _set((*voxels, 3), np.nan))(stem)
    else:
        image(M0, _set(voxels, np.inf))(stem)
    capsys.readouterr()

    assert main([str(bids), str(tmp_path / 'out'), *ARGS, '-w', str(tmp_path / 'work')]) == 0

    err = capsys.readouterr().err
    assert '4 voxel(s) are NaN or Inf' in err
    perf = tmp_path / 'out' / 'sub-x' / 'perf'
    sidecar_ = json.loads((perf / 'sub-x_cbf.json').read_text())
    assert any('4 voxel(s) are NaN or Inf' in w for w in sidecar_['Warnings'])
    mask = np.asarray(nb.load(perf / 'sub-x_desc-brain_mask.nii.gz').dataobj)
    cbf = np.asarray(nb.load(perf / 'sub-x_cbf.nii.gz').dataobj)
    assert mask[voxels].sum() == 0 and mask.sum() > 1000
    assert np.all(np.isfinite(cbf)) and np.all(cbf[voxels] == 0)


@pytest.mark.parametrize('label', ['../../x', 'sub-../x', 'x/../../y', '.', 'a b'])
def test_participant_label_cannot_leave_the_dataset(tmp_path, capsys, label):
    stem = clone_dro_subject(tmp_path / 'bids', 'x')
    assert stem.parent.is_dir()
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path / 'bids'), str(tmp_path / 'out'), *ARGS, '--participant-label', label])
    assert exc.value.code == ExitCode.USAGE
    assert 'not a valid BIDS label' in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()


def test_symlink_inside_the_dataset_is_fine(tmp_path):
    """DataLad-style: the file is a link into a hidden annex folder of the dataset itself."""
    bids = tmp_path / 'bids'
    stem = clone_dro_subject(bids, 'x')
    annex = bids / '.git' / 'annex' / 'objects'
    annex.mkdir(parents=True)
    asl = _file(stem, IMG)
    shutil.move(asl, annex / 'KEY-asl.nii.gz')
    asl.symlink_to(os.path.relpath(annex / 'KEY-asl.nii.gz', asl.parent))

    assert main([str(bids), str(tmp_path / 'out'), *ARGS]) == 0

    sidecar_ = json.loads((tmp_path / 'out/sub-x/perf/sub-x_cbf.json').read_text())
    assert 'bids:raw:sub-x/perf/sub-x_asl.nii.gz' in sidecar_['Sources']


def test_planted_symlink_in_the_output_dir_is_not_followed(tmp_path, capsys):
    """A folder of the output dataset that links elsewhere is refused, nothing written there."""
    stem = clone_dro_subject(tmp_path / 'bids', 'x')
    assert stem.parent.is_dir()
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    (tmp_path / 'out').mkdir()
    (tmp_path / 'out' / 'sub-x').symlink_to(elsewhere)
    capsys.readouterr()

    code = main([str(tmp_path / 'bids'), str(tmp_path / 'out'), *ARGS, '-w',
                 str(tmp_path / 'work')])

    err = capsys.readouterr().err
    assert code == ExitCode.CANTCREAT, err
    assert 'resolves outside the output directory' in err
    assert len(_error_lines(err)) == 1, err
    assert not list(elsewhere.rglob('*.nii.gz'))


def test_broken_json_of_other_data_does_not_stop_the_run(tmp_path, capsys):
    """Only ASL and M0 sidecars (and those they inherit from) matter to a run."""
    bids = tmp_path / 'bids'
    stem = clone_dro_subject(bids, 'x')
    (bids / 'participants.json').write_bytes(b'{"age": ')
    (stem.parents[1] / 'anat').mkdir()
    (stem.parents[1] / 'anat' / 'sub-x_T1w.json').write_bytes(b'\xff\xfe')

    assert main([str(bids), str(tmp_path / 'out'), *ARGS, '-w', str(tmp_path / 'work')]) == 0
    assert 'error' not in capsys.readouterr().err
