"""Crash and resume, concurrent participants, full or read-only disks, runtime safety.

The CLI runs as separate processes here (``python -m bids_asl``), as a Slurm array would run
it; the data are ASLDRO subjects (``conftest.clone_dro_subject``) without motion correction.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nb
import pytest

from bids_asl.cli.run import main
from bids_asl.errors import ExitCode, LockedError
from bids_asl.io import images
from bids_asl.io.locks import ParticipantLock

from conftest import ASLDRO, PROJECT, clone_dro_subject

pytestmark = pytest.mark.needs_data(ASLDRO)
ARGS = ('participant', '--skip-bids-validation', '--no-motion-correction', '--no-anatomy')
SUBJECTS = {'a': 'pcasl1pld', 'b': 'pasl1ti', 'c': 'pcaslm0incl'}
IS_ROOT = os.geteuid() == 0


def _env(**extra):
    return {**os.environ, 'PYTHONPATH': str(PROJECT), 'NIPYPE_NO_ET': '1', **extra}


def _cli(*args, cwd, env=None, **kwargs):
    return subprocess.Popen([sys.executable, '-m', 'bids_asl', *map(str, args)], cwd=cwd,
                            env=env or _env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kwargs)


def _digests(out: Path) -> dict:
    """Every file of the output dataset except the per-invocation logs and crash files."""
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob('*')) if p.is_file()
            and not {'log', 'logs', '.work'} & set(p.relative_to(out).parts)}


def _dataset(root: Path, subjects=SUBJECTS) -> Path:
    for label, source in subjects.items():
        clone_dro_subject(root, label, source)
    return root


def _assert_no_partial_file(out: Path):
    """Every file under a final name is complete: NIfTIs load fully, JSON parses."""
    for path in out.rglob('*'):
        if not path.is_file() or path.name.startswith('.') or 'logs' in path.parts:
            continue
        if path.name.endswith('.nii.gz'):
            nb.load(path).get_fdata()
        elif path.suffix == '.json':
            json.loads(path.read_text())


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
    """Three participants run in one uninterrupted process: (bids, output digests)."""
    root = tmp_path_factory.mktemp('reference')
    bids = _dataset(root / 'bids')
    proc = _cli(bids, root / 'out', *ARGS, cwd=root)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    digests = _digests(root / 'out')
    assert sum(name.endswith('_cbf.nii.gz') for name in digests) >= 3
    return bids, digests


# --- crash and resume ------------------------------------------------------------------------

def _wait_for(predicate, proc, timeout=120.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    return False


KILL_POINTS = {
    # the first computation of a participant has started in the work dir
    'first-node-started': lambda out, work: any(work.rglob('_0x*_unfinished.json')),
    # some participant's CBF has been computed, nothing written yet
    'cbf-computed': lambda out, work: any(work.rglob('result_compute_cbf.pklz')),
    # the derivative writer is under way (a temporary or a final file exists)
    'writing-derivatives': lambda out, work: any(out.glob('sub-*/perf/*')),
    # one participant complete, the others not necessarily
    'one-participant-done': lambda out, work: any(out.glob('sub-*/perf/*_desc-qc_cbf.json')),
}


@pytest.mark.parametrize('point', [
    'writing-derivatives',
    pytest.param('first-node-started', marks=pytest.mark.slow),
    pytest.param('cbf-computed', marks=pytest.mark.slow),
    pytest.param('one-participant-done', marks=pytest.mark.slow),
])
def test_sigkill_then_rerun_gives_identical_outputs(tmp_path, reference, point):
    bids, expected = reference
    out, work = tmp_path / 'out', tmp_path / 'work'
    args = (bids, out, *ARGS, '-w', work)

    proc = _cli(*args, cwd=tmp_path)
    reached = _wait_for(lambda: KILL_POINTS[point](out, work), proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert reached, f'the run ended before {point}'
    _assert_no_partial_file(out)  # whatever the moment of the kill

    again = _cli(*args, cwd=tmp_path)
    _, err = again.communicate(timeout=300)

    assert again.returncode == 0, err
    assert 'error' not in err
    assert _digests(out) == expected
    assert not [p for p in out.rglob(f'*{images.TEMP_SUFFIX}') if '.work' not in p.parts]
    assert not list(out.rglob('.locks/*'))


# --- concurrency ---------------------------------------------------------------------------

def test_three_processes_one_output_dir(tmp_path, reference):
    """A Slurm array: one process per participant, same output and (default) work dir."""
    bids, expected = reference
    out = tmp_path / 'out'
    procs = [_cli(bids, out, *ARGS, '--participant-label', label, cwd=tmp_path)
             for label in SUBJECTS]
    results = [(p.wait(timeout=300), p.communicate()[1]) for p in procs]

    assert [code for code, _ in results] == [0, 0, 0], results
    assert _digests(out) == expected
    assert not (out / '.work' / 'bids_asl_0_1_wf' / 'graph.json').exists()


def test_same_participant_twice_at_once(tmp_path, reference):
    """Both end cleanly: one does the work, the other waits its turn (exit 75) or, when the
    first is already done, redoes it from the cache."""
    bids, expected = reference
    out = tmp_path / 'out'
    procs = [_cli(bids, out, *ARGS, '--participant-label', 'a', cwd=tmp_path)
             for _ in range(2)]
    codes = sorted(p.wait(timeout=300) for p in procs)
    errs = [p.communicate()[1] for p in procs]

    assert codes in ([0, 0], [0, ExitCode.TEMPFAIL]), errs
    if codes[1] == ExitCode.TEMPFAIL:
        assert any('being processed by another bids-asl process' in e for e in errs), errs
    assert _digests(out) == {k: v for k, v in expected.items()
                             if not k.startswith(('sub-b/', 'sub-c/', 'sub-b.html', 'sub-c.html'))}


def _hold_lock(out: Path, label: str, cwd: Path) -> subprocess.Popen:
    """Another process holding the participant's lock (POSIX locks are per process)."""
    holder = subprocess.Popen(
        [sys.executable, '-c', 'import time; from bids_asl.io.locks import ParticipantLock;'
         f'ParticipantLock({str(out)!r}, {label!r}).acquire(); print("locked", flush=True); '
         'time.sleep(600)'], env=_env(), cwd=cwd, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == 'locked'
    return holder


def test_busy_participant_is_skipped_the_others_run(tmp_path, capsys):
    bids = _dataset(tmp_path / 'bids', {'a': 'pcasl1pld', 'b': 'pasl1ti'})
    out = tmp_path / 'out'
    holder = _hold_lock(out, 'a', tmp_path)
    try:
        code = main([str(bids), str(out), *ARGS])
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err
    assert code == ExitCode.TEMPFAIL, err
    lines = [ln for ln in err.splitlines() if ln.startswith('bids-asl: error:')]
    assert len(lines) == 1 and 'sub-a.lock: lock: participant a is being processed' in lines[0]
    assert f'PID {holder.pid} on {socket.gethostname()}' in lines[0]
    assert (out / 'sub-b' / 'perf' / 'sub-b_cbf.nii.gz').exists()
    assert not (out / 'sub-a' / 'perf').exists()


def test_lock_of_a_killed_process_is_recovered(tmp_path, capsys):
    bids = _dataset(tmp_path / 'bids', {'a': 'pcasl1pld'})
    out = tmp_path / 'out'
    holder = _hold_lock(out, 'a', tmp_path)
    with pytest.raises(LockedError, match=f'PID {holder.pid} on '):
        ParticipantLock(out, 'a').acquire()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (out / '.locks' / 'sub-a.lock').exists()  # the file is left behind, stale

    assert main([str(bids), str(out), *ARGS]) == 0

    assert (out / 'sub-a' / 'perf' / 'sub-a_cbf.nii.gz').exists()
    assert not (out / '.locks').exists()


# --- full and read-only disks --------------------------------------------------------------

def test_disk_full_while_writing_leaves_no_derivative(tmp_path, capsys, monkeypatch):
    bids = _dataset(tmp_path / 'bids', {'a': 'pcasl1pld'})
    out = tmp_path / 'out'
    assert main([str(bids), str(out), *ARGS]) == 0  # a first, complete run
    capsys.readouterr()
    calls = []
    real = images._write_temp

    def fill_up(path, data):
        calls.append(path)
        if len(calls) == 5:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, data)

    monkeypatch.setattr(images, '_write_temp', fill_up)
    (out / 'sub-a' / 'perf' / 'sub-a_cbf.nii.gz').unlink()  # the writer has to run again

    code = main([str(bids), str(out), *ARGS])

    err = capsys.readouterr().err
    assert code == ExitCode.CANTCREAT, err
    lines = [ln for ln in err.splitlines() if ln.startswith('bids-asl: error:')]
    assert len(lines) == 1, err
    assert f'{calls[4]}: write: cannot write (No space left on device)' in lines[0]
    perf = out / 'sub-a' / 'perf'
    assert list(perf.iterdir()) == []  # neither new nor old files, no temporaries


def _mount_tmpfs(path: Path, options: str):
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(['mount', '-t', 'tmpfs', '-o', options, 'tmpfs', str(path)],
                          capture_output=True)
    if done.returncode:
        pytest.skip(f'cannot mount a tmpfs: {done.stderr.decode().strip()}')
    return path


@pytest.fixture
def mounts():
    mounted = []
    yield lambda path, options: mounted.append(_mount_tmpfs(path, options)) or path
    for path in mounted:
        subprocess.run(['umount', str(path)], check=False)


@pytest.mark.skipif(not IS_ROOT, reason='needs root to mount a small tmpfs')
@pytest.mark.parametrize('full', ['output', 'work'])
def test_full_file_system_exit_73(tmp_path, mounts, full):
    bids = _dataset(tmp_path / 'bids', {'a': 'pcasl1pld', 'b': 'pasl1ti'})
    out, work = tmp_path / 'out', tmp_path / 'work'
    mounts(out if full == 'output' else work, 'size=300k')

    proc = _cli(bids, out, *ARGS, '-w', work, cwd=tmp_path)
    _, err = proc.communicate(timeout=300)

    assert proc.returncode == ExitCode.CANTCREAT, err
    lines = [ln for ln in err.splitlines() if ln.startswith('bids-asl: error:')]
    assert len(lines) == 2, err  # one per run
    assert all('No space left on device' in ln for ln in lines), err
    assert 'Traceback' not in err
    assert not list(out.rglob('*.nii.gz'))
    assert not [p for p in out.rglob(f'*{images.TEMP_SUFFIX}') if '.work' not in p.parts]


@pytest.fixture
def read_only_dir(tmp_path, mounts):
    """A read-only folder: a read-only tmpfs as root (root ignores permissions), else 0o555."""
    path = tmp_path / 'out'
    if IS_ROOT:
        yield mounts(path, 'ro,size=64k')
        return
    path.mkdir()
    path.chmod(0o555)
    yield path
    path.chmod(0o755)


def test_read_only_output_dir_exit_73(tmp_path, read_only_dir, capsys):
    bids = _dataset(tmp_path / 'bids', {'a': 'pcasl1pld'})
    out = read_only_dir

    code = main([str(bids), str(out), *ARGS, '-w', str(tmp_path / 'work')])

    err = capsys.readouterr().err.strip()
    assert code == ExitCode.CANTCREAT
    reason = 'Read-only file system' if IS_ROOT else 'Permission denied'
    assert err == f'bids-asl: error: {out}: output_dir: cannot write ({reason})'


# --- runtime safety ------------------------------------------------------------------------

def _snapshot(*folders) -> dict:
    return {str(p): (p.stat().st_mtime_ns, p.stat().st_size if p.is_file() else None)
            for folder in folders for p in [folder, *folder.rglob('*')]}


@pytest.mark.skipif(not IS_ROOT, reason='unshare -n (no network namespace) needs root')
def test_offline_and_writes_only_output_and_work(tmp_path):
    """No network (a process without one still succeeds, BIDS validator included), nothing
    written to $HOME, $TMPDIR, the current folder or the BIDS dataset."""
    bids = _dataset(tmp_path / 'bids', {'a': 'pcasl1pld'})
    home, tmp, cwd = (tmp_path / name for name in ('home', 'tmp', 'cwd'))
    for folder in (home, tmp, cwd):
        folder.mkdir()
    before = _snapshot(home, tmp, cwd, bids)
    env = _env(HOME=str(home), TMPDIR=str(tmp))
    env.pop('MPLCONFIGDIR', None)
    env.pop('XDG_CACHE_HOME', None)

    done = subprocess.run(['unshare', '-n', sys.executable, '-m', 'bids_asl', str(bids),
                           str(tmp_path / 'out'), 'participant', '--participant-label', 'a',
                           '-w', str(tmp_path / 'work')],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600)

    assert done.returncode == 0, done.stderr
    assert _snapshot(home, tmp, cwd, bids) == before
    assert (tmp_path / 'out' / 'sub-a' / 'perf' / 'sub-a_cbf.nii.gz').exists()


def test_no_network_call_in_process(tmp_path, monkeypatch):
    """Any attempt to resolve or connect fails the test (nipype's version check, telemetry)."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError('network access attempted')

    for name in ('getaddrinfo', 'create_connection', 'gethostbyname'):
        monkeypatch.setattr(socket, name, refuse)
    monkeypatch.setattr(socket.socket, 'connect', refuse)
    monkeypatch.delenv('NIPYPE_NO_ET', raising=False)
    bids = _dataset(tmp_path / 'bids', {'a': 'pcasl1pld'})

    assert main([str(bids), str(tmp_path / 'out'), *ARGS]) == 0
    assert attempts == []


def _unprivileged_python_works() -> bool:
    if not IS_ROOT or not Path('/usr/bin/setpriv').exists():
        return False
    probe = subprocess.run(['setpriv', '--reuid', '12345', '--regid', '12345',
                            '--clear-groups', sys.executable, '-c', 'import nipype, bids'],
                           env=_env(), capture_output=True, cwd='/')
    return probe.returncode == 0


@pytest.mark.skipif(not _unprivileged_python_works(),
                    reason='needs root and a Python that uid 12345 can import from')
def test_runs_as_an_unprivileged_user(tmp_path):
    import tempfile

    top = Path(tempfile.mkdtemp(prefix='bids-asl-uid-'))  # pytest's tmp_path is root-only
    try:
        bids = _dataset(top / 'bids', {'a': 'pcasl1pld'})
        (top / 'out').mkdir()
        os.chmod(top, 0o755)
        subprocess.run(['chown', '-R', '12345:12345', str(top / 'out')], check=True)
        done = subprocess.run(['setpriv', '--reuid', '12345', '--regid', '12345',
                               '--clear-groups', sys.executable, '-m', 'bids_asl', str(bids),
                               str(top / 'out'), *ARGS], env=_env(HOME=str(top / 'out')),
                              cwd=top / 'out', capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
    finally:
        subprocess.run(['rm', '-rf', str(top)], check=False)


def _contend(folder: str) -> tuple[int, int]:
    """Take and release the lock of participant 'a' 150 times; count holds and refusals."""
    held = busy = 0
    for _ in range(150):
        try:
            lock = ParticipantLock(folder, 'a').acquire()
        except LockedError:
            busy += 1
            continue
        fd = os.open(os.path.join(folder, 'holder'), os.O_CREAT | os.O_EXCL)  # fails if shared
        os.close(fd)
        os.unlink(os.path.join(folder, 'holder'))
        lock.release()
        held += 1
    return held, busy


def test_lock_is_exclusive_under_contention(tmp_path):
    """Four processes race for one lock (creating and removing its file and folder)."""
    import multiprocessing

    with multiprocessing.get_context('fork').Pool(4) as pool:
        results = pool.map(_contend, [str(tmp_path)] * 4)
    assert sum(held for held, _ in results) >= 4
    assert list(tmp_path.iterdir()) == []
