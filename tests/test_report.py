"""Subject reports from the participant level, progress output, and report failure handling."""

import io

import pytest

from bids_asl.cli.progress import Progress
from bids_asl.errors import ExitCode
from bids_asl.report import figures, render
from bids_asl.synthetic import Variant, make_dataset

from conftest import run_cli


class _Node:
    def __init__(self, fullname):
        self.fullname = fullname


def test_progress_plain_lines_when_not_a_terminal():
    stream = io.StringIO()
    progress = Progress(stream, tty=False, total=4, runs={'sub_01_run_1': 'sub-01_run-1'})
    progress.stage('01', 'validating')
    progress.callback(_Node('bids_asl_0_1_wf.asl_sub_01_run_1_wf.compute_cbf'), 'start')
    progress.callback(_Node('bids_asl_0_1_wf.asl_sub_01_run_1_wf.compute_cbf'), 'end')
    progress.callback(_Node('bids_asl_0_1_wf.ds_sub_01_run_1'), 'exception')
    progress.subjects = {'01': '01'}
    progress.callback(_Node('bids_asl_0_1_wf.t1w_01_wf.atropos'), 'end')
    progress.callback(_Node('bids_asl_0_1_wf.prepare_AAL'), 'end')
    progress.step('transient')  # terminal only
    assert stream.getvalue().splitlines() == [
        'bids-asl: progress: sub-01: validating',
        'bids-asl: progress: [1/4] sub-01_run-1: compute_cbf done',
        'bids-asl: progress: [2/4] sub-01_run-1: ds_sub_01_run_1 FAILED',
        'bids-asl: progress: [3/4] sub-01 T1w: atropos done',
        'bids-asl: progress: [4/4] prepare_AAL done']


def test_progress_rewrites_one_line_on_a_terminal():
    stream = io.StringIO()
    progress = Progress(stream, tty=True, total=2, runs={'sub_01': 'sub-01'})
    progress.callback(_Node('wf.asl_sub_01_wf.m0'), 'start')
    progress.callback(_Node('wf.asl_sub_01_wf.m0'), 'end')
    progress.clear()
    out = stream.getvalue()
    assert '\n' not in out and out.count('\r\033[K') == 3
    assert out.split('\r\033[K')[2].endswith('[1/2] sub-01: m0 done')


def test_number_formatting_and_flatten():
    assert [render.format_number(v) for v in (None, '', 'n/a', float('nan'), 3, '12',
                                              0.123456, 'text', '42620.4', -12345.6, 9999.4,
                                              '1e-05')] == [
        'n/a', 'n/a', 'n/a', 'n/a', '3', '12', '0.1235', 'text', '42620', '-12346', '9999',
        '1e-05']
    assert render.flatten({'b': {'c': 1.5, 'a': [1, 2]}, 'a': 'x'}) == [
        ('a', 'x'), ('b.a', '[1, 2]'), ('b.c', '1.5')]


def test_slices_and_tiles():
    import numpy as np

    vol = np.zeros((4, 5, 10))
    vol[:, :, 2:8] = 1.0
    slices = figures.pick_slices(vol, n=4)
    assert list(slices) == [3, 4, 5, 6]  # inner points of 6 over 2..7
    tiled = figures.tile(vol, [2, 3, 4], columns=2)
    assert tiled.shape == (2 * 5, 2 * 4) and np.isnan(tiled[5:, 4:]).all()
    np.testing.assert_array_equal(tiled[:5, :4], np.rot90(vol[:, :, 2]))


@pytest.fixture
def small(tmp_path):
    bids = make_dataset(tmp_path / 'bids', variants=(Variant(label='r', n_pairs=3),),
                        shape=(12, 13, 8))
    return bids, tmp_path / 'out', tmp_path / 'work'


def test_participant_writes_the_subject_report(small, capsys):
    bids, out, work = small
    assert run_cli(bids, out, 'participant', '--skip-bids-validation',
                   '--no-motion-correction', '-w', work) == 0
    html = (out / 'sub-r.html').read_text()
    assert 'id="run-sub-r"' in html and 'No errors in this run of bids-asl.' in html
    err = capsys.readouterr().err
    assert 'bids-asl: progress: sub-r: report sub-r.html written' in err
    assert 'bids-asl: progress: [' in err and 'compute_cbf done' in err


def test_report_failure_keeps_the_derivatives(small, capsys, monkeypatch):
    bids, out, work = small

    def broken(*args, **kwargs):
        raise RuntimeError('template exploded')

    monkeypatch.setattr('bids_asl.report.subject.write_subject_report', broken)
    assert run_cli(bids, out, 'participant', '--skip-bids-validation',
                   '--no-motion-correction', '-w', work) == ExitCode.SOFTWARE
    lines = [ln for ln in capsys.readouterr().err.splitlines() if 'error' in ln]
    assert lines == [f'bids-asl: error: {out / "sub-r.html"}: report not written: '
                     'RuntimeError: template exploded']
    assert (out / 'sub-r' / 'perf' / 'sub-r_cbf.nii.gz').is_file()
    assert not (out / 'sub-r.html').exists()
