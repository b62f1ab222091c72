"""The participant array script's exit codes, without Slurm: a fake bids-asl stands in."""

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARRAY = ROOT / 'scripts' / 'slurm' / 'participant_array.sbatch'


@pytest.mark.parametrize(('code', 'expected'), [(0, 0), (3, 0), (65, 65), (70, 70)])
def test_partial_run_counts_as_done_and_errors_stay_errors(tmp_path, code, expected):
    """Exit 3 (partial: anatomy failed, CBF written) must not cancel the dependent group job
    (--dependency=afterok), every real error must."""
    bids = tmp_path / 'bids'
    bids.mkdir()
    (bids / 'participants.tsv').write_text('participant_id\tage\nsub-01\t30\n')
    fake = tmp_path / 'fake-bids-asl'
    calls = tmp_path / 'calls.txt'
    fake.write_text(f'#!/bin/sh\necho "$@" > {calls}\nexit {code}\n')
    fake.chmod(0o755)
    env = {**os.environ, 'SLURM_ARRAY_TASK_ID': '1', 'SLURM_ARRAY_JOB_ID': '7',
           'BIDS_ASL': str(fake)}
    done = subprocess.run(['bash', str(ARRAY), str(bids), str(tmp_path / 'out')], env=env,
                          capture_output=True, text=True, check=False)
    assert done.returncode == expected, done.stderr
    assert '--participant-label 01' in calls.read_text()
    assert ('partial run (exit 3)' in done.stderr) == (code == 3)
