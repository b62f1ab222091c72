import json
import subprocess
import sys

import pytest

from bids_asl import __version__
from bids_asl.cli.parser import build_parser, parse_args
from bids_asl.synthetic import Variant, make_dataset

from conftest import run_cli

SHAPE = (12, 13, 8)


def test_version_and_help_do_not_import_heavy_packages():
    code = (
        'import sys\n'
        'from bids_asl.cli.run import main\n'
        'for args in (["--version"], ["--help"]):\n'
        '    try:\n'
        '        main(args)\n'
        '    except SystemExit as exc:\n'
        '        assert exc.code == 0, exc.code\n'
        'heavy = [m for m in ("nipype", "bids", "nibabel", "numpy", "scipy")\n'
        '         if m in sys.modules]\n'
        'print("HEAVY", heavy)\n'
    )
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert f'bids-asl {__version__}' in out.stdout
    assert 'exit codes:' in out.stdout
    assert 'HEAVY []' in out.stdout


def test_labels_accept_prefix_and_deduplicate(tmp_path):
    s = parse_args([str(tmp_path), str(tmp_path / 'o'), 'participant', '--participant-label',
                    'sub-01', '02', '01', '--session-label', 'ses-a'])
    assert s.participant_label == ('01', '02') and s.session_label == ('a',)


@pytest.mark.parametrize('args', [
    ['--nprocs', '0'], ['--t1-blood', '-1'], ['--labeling-efficiency', '1.5'],
    ['--participant-label', 'a/b'], ['--no-such-option'],
])
def test_usage_errors_exit_64(tmp_path, args, capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([str(tmp_path), str(tmp_path / 'o'), 'participant', *args])
    assert info.value.code == 64


def test_missing_bids_dir_exits_66(tmp_path, capsys):
    assert run_cli(tmp_path / 'nope', tmp_path / 'out', 'participant') == 66
    assert 'bids_dir' in capsys.readouterr().err


@pytest.fixture
def dataset(tmp_path):
    return make_dataset(tmp_path / 'bids', variants=(Variant(label='a'),), shape=SHAPE)


def test_output_inside_bids_dir_is_refused(dataset, capsys):
    assert run_cli(dataset, dataset, 'participant') == 64
    assert run_cli(dataset, dataset / 'sub-a' / 'out', 'participant') == 64
    err = capsys.readouterr().err
    assert 'output_dir' in err
    assert not (dataset / 'sub-a' / 'out').exists()


def test_output_under_bids_derivatives_is_allowed(dataset, tmp_path):
    out = dataset / 'derivatives' / 'bids-asl'
    assert run_cli(dataset, out, 'participant', '--skip-bids-validation',
                   '-w', tmp_path / 'work') == 0
    assert (out / 'sub-a' / 'perf' / 'sub-a_cbf.nii.gz').exists()


def test_unknown_participant_exits_66(dataset, tmp_path, capsys):
    assert run_cli(dataset, tmp_path / 'out', 'participant', '--participant-label', 'zz',
                   '--skip-bids-validation') == 66
    assert 'zz' in capsys.readouterr().err


def test_unwritable_output_exits_73(dataset, tmp_path, capsys):
    blocker = tmp_path / 'file'
    blocker.write_text('not a directory')
    assert run_cli(dataset, blocker / 'out', 'participant') == 73


def test_group_level_without_participant_outputs_exits_66(dataset, tmp_path, capsys):
    assert run_cli(dataset, tmp_path / 'out', 'group') == 66
    assert 'run the participant level first' in capsys.readouterr().err


def test_multi_delay_with_too_few_volumes_is_refused(tmp_path, capsys):
    bids = make_dataset(tmp_path / 'bids', variants=(Variant(label='m', n_pairs=2),), shape=SHAPE)
    sidecar = bids / 'sub-m/perf/sub-m_asl.json'
    meta = json.loads(sidecar.read_text())
    meta['PostLabelingDelay'] = [1.0, 1.0, 2.0, 2.0]  # two ΔM volumes for two parameters
    sidecar.write_text(json.dumps(meta))
    assert run_cli(bids, tmp_path / 'out', 'participant', '--skip-bids-validation') == 65
    err = capsys.readouterr().err
    assert 'sub-m_asl.nii.gz: PostLabelingDelay' in err and 'Traceback' not in err
    assert not list((tmp_path / 'out').rglob('*.nii.gz'))


def test_invalid_dataset_stopped_by_bids_validator(dataset, tmp_path, capsys):
    (dataset / 'sub-a' / 'perf' / 'sub-a_asl.json').write_text('{"M0Type": "Separate"}')
    assert run_cli(dataset, tmp_path / 'out', 'participant') == 65
    err = capsys.readouterr().err
    errors = [ln for ln in err.splitlines() if ln.startswith('bids-asl: error:')]
    assert len(errors) == 1 and 'BIDS validator' in errors[0] and 'sub-a_asl' in errors[0]
    assert 'Traceback' not in err


def test_settings_saved_as_toml(dataset, tmp_path):
    assert run_cli(dataset, tmp_path / 'out', 'participant', '--t1-blood', '1.7',
                   '--skip-bids-validation') == 0
    (toml,) = (tmp_path / 'out' / 'sub-a' / 'log').glob('*/bids_asl.toml')
    text = toml.read_text()
    assert 't1_blood = 1.7' in text and 'analysis_level = "participant"' in text


def test_cbf_only_run_is_refused_clearly(tmp_path, capsys):
    bids = make_dataset(tmp_path / 'bids', variants=(Variant(label='c', n_pairs=2),), shape=SHAPE)
    (bids / 'sub-c/perf/sub-c_aslcontext.tsv').write_text('volume_type\n' + 'cbf\n' * 4)
    assert run_cli(bids, tmp_path / 'out', 'participant', '--skip-bids-validation') == 69
    err = capsys.readouterr().err
    assert 'sub-c_aslcontext.tsv: volume_type' in err and 'Traceback' not in err


def test_deltam_only_run_is_quantified(tmp_path):
    import nibabel as nb
    import numpy as np

    bids = make_dataset(tmp_path / 'bids', variants=(Variant(label='d', n_pairs=2),), shape=SHAPE)
    asl = bids / 'sub-d/perf/sub-d_asl.nii.gz'
    img = nb.load(asl)
    data = img.get_fdata()
    nb.save(nb.Nifti1Image((data[..., 0::2] - data[..., 1::2]).astype(np.float32), img.affine),
            asl)
    (bids / 'sub-d/perf/sub-d_aslcontext.tsv').write_text('volume_type\ndeltam\ndeltam\n')
    assert run_cli(bids, tmp_path / 'out', 'participant', '--skip-bids-validation') == 0
    cbf = nb.load(tmp_path / 'out/sub-d/perf/sub-d_cbf.nii.gz').get_fdata()
    truth = nb.load(bids / 'derivatives/groundtruth/sub-d/perf/sub-d_desc-groundtruth_cbf.nii.gz')
    mask = truth.get_fdata() > 0
    np.testing.assert_allclose(cbf[mask], truth.get_fdata()[mask], rtol=1e-4)
