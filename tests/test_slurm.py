"""The Slurm scripts on a real one-node Slurm cluster (scripts/local_slurm.sh, needs root).

scripts/slurm/submit.sh submits the participant array (one task per row of participants.tsv)
and the group job with --dependency=afterok on the array; this runs them with the current
Python's bids-asl on a three-participant synthetic dataset.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
LOCAL_SLURM = ROOT / 'scripts' / 'local_slurm.sh'
SUBMIT = ROOT / 'scripts' / 'slurm' / 'submit.sh'
LABELS = ('alpha', 'beta', 'gamma')
TIMEOUT = 600  # s, for the whole array and the group job


@pytest.fixture(scope='module')
def slurm_env():
    """Environment with SLURM_CONF of a running local cluster; the cluster is stopped after."""
    if not hasattr(os, 'geteuid') or os.geteuid() != 0:
        pytest.skip('local_slurm.sh needs root')
    if shutil.which('bash') is None:
        pytest.skip('bash is missing')
    # a private directory (and so a private cluster): never stop somebody else's
    slurm_dir = tempfile.mkdtemp(prefix='bids-asl-slurm-')
    os.chmod(slurm_dir, 0o755)  # the munge socket in it must be reachable by all
    env = {**os.environ, 'LOCAL_SLURM_DIR': slurm_dir}
    up = subprocess.run(['bash', str(LOCAL_SLURM), 'up'], env=env, capture_output=True,
                        text=True, timeout=300, check=False)
    conf = re.search(r'export SLURM_CONF=(\S+)', up.stdout)
    if up.returncode != 0 or not conf:
        subprocess.run(['bash', str(LOCAL_SLURM), 'down'], env=env, capture_output=True,
                       timeout=120, check=False)
        shutil.rmtree(slurm_dir, ignore_errors=True)
        pytest.skip(f'local Slurm did not come up: {(up.stderr or up.stdout).strip()[-500:]}')
    env['SLURM_CONF'] = conf.group(1).strip('\'"')
    try:
        yield env
    finally:
        subprocess.run(['bash', str(LOCAL_SLURM), 'down'], env=env, capture_output=True,
                       timeout=120, check=False)
        shutil.rmtree(slurm_dir, ignore_errors=True)


def _job(job_id: str, env) -> dict:
    """``scontrol show job -o`` as a dict (finished jobs are kept for MinJobAge)."""
    out = subprocess.run(['scontrol', 'show', 'job', '-o', job_id], env=env,
                         capture_output=True, text=True, check=True).stdout
    return dict(f.split('=', 1) for f in out.split() if '=' in f)


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def test_participant_array_then_dependent_group_job(slurm_env, tmp_path):
    from bids_asl.synthetic import Variant, make_dataset

    bids = make_dataset(tmp_path / 'bids', variants=tuple(Variant(label=x) for x in LABELS))
    out = tmp_path / 'out'
    bin_dir = Path(sys.executable).parent
    bids_asl = bin_dir / 'bids-asl'
    env = {**slurm_env, 'PATH': f'{bin_dir}{os.pathsep}{slurm_env.get("PATH", "")}',
           'BIDS_ASL': str(bids_asl) if bids_asl.exists() else f'{sys.executable} -m bids_asl',
           # one CPU per task: two participants at once on a two-core node
           'ARRAY_ARGS': '--cpus-per-task=1 --mem=1G', 'SBATCH_ARGS': '--time=00:15:00'}
    sub = subprocess.run(['bash', str(SUBMIT), str(bids), str(out), '--skip-bids-validation'],
                         env=env, capture_output=True, text=True, timeout=60, check=False)
    assert sub.returncode == 0, sub.stderr
    array_id = re.search(r'^array_job_id=(\d+)$', sub.stdout, re.MULTILINE).group(1)
    group_id = re.search(r'^group_job_id=(\d+)$', sub.stdout, re.MULTILINE).group(1)

    deadline = time.monotonic() + TIMEOUT
    while subprocess.run(['squeue', '-h', '-j', f'{array_id},{group_id}', '-o', '%i'], env=env,
                         capture_output=True, text=True, check=False).stdout.strip():
        if time.monotonic() > deadline:
            queue = subprocess.run(['squeue'], env=env, capture_output=True, text=True).stdout
            pytest.fail(f'jobs not finished after {TIMEOUT} s:\n{queue}')
        time.sleep(1)

    logs = out / 'logs' / 'slurm'
    tasks = [_job(f'{array_id}_{i}', env) for i in range(1, len(LABELS) + 1)]
    for i, task in enumerate(tasks, start=1):
        log = logs / f'participant-{array_id}_{i}.out'
        detail = log.read_text() if log.exists() else f'(no {log})'
        assert (task['JobState'], task['ExitCode']) == ('COMPLETED', '0:0'), detail
    for label in LABELS:
        assert (out / f'sub-{label}' / 'perf' / f'sub-{label}_cbf.nii.gz').is_file(), label
    assert (out / 'dataset_description.json').is_file()

    group = _job(group_id, env)
    assert (group['JobState'], group['ExitCode']) == ('COMPLETED', '0:0'), \
        (logs / f'group-{group_id}.out').read_text()
    qc = (out / 'group' / 'group_desc-qc_cbf.tsv').read_text().splitlines()
    assert len(qc) == 1 + len(LABELS)
    assert (out / 'group.html').is_file()
    assert _time(group['StartTime']) >= max(_time(t['EndTime']) for t in tasks)
    assert 'group job' in (logs / f'group-{group_id}.out').read_text()
