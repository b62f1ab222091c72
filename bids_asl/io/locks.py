"""One process per participant: advisory locks that die with their process.

``<folder>/.locks/sub-<label>.lock`` is locked with ``fcntl.lockf`` (POSIX record locks: local
file systems and NFS).  The kernel (or the NFS server) releases the lock when the process ends
in any way, SIGKILL included, so a lock left by a killed job is never stale: the file stays,
the lock does not, and the next run takes it over.  The file holds the host, PID and start time
of its holder, for the message shown to a process that finds the participant busy; a clean end
removes it (and the folder when empty), so that finished outputs hold no lock files.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
import time
from pathlib import Path

from bids_asl.errors import LockedError, OutputError

LOGGER = logging.getLogger('bids_asl')
LOCK_DIR = '.locks'
_UNSUPPORTED = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


class ParticipantLock:
    """Holds the lock of one participant in one folder until :meth:`release`."""

    def __init__(self, folder, subject: str):
        self.path = Path(folder) / LOCK_DIR / f'sub-{subject}.lock'
        self.subject = subject
        self._fd: int | None = None

    def acquire(self) -> ParticipantLock:
        for _ in range(20):  # the file may be removed by its holder between open and lock
            fd = self._open()
            if not self._lock(fd):
                return self  # no lock support: warned
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        else:
            raise OutputError('cannot take the lock (the file keeps changing)', path=self.path,
                              field='lock')
        self._fd = fd
        info = {'host': socket.gethostname(), 'pid': os.getpid(),
                'since': time.strftime('%Y-%m-%dT%H:%M:%S%z')}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + '\n').encode(), 0)
        return self

    def _open(self) -> int:
        for _ in range(20):
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except (FileNotFoundError, FileExistsError):
                continue  # another process removed the empty folder in between
            except OSError as exc:
                raise OutputError(f'cannot create the lock file ({exc.strerror})',
                                  path=self.path, field='lock') from None
        raise OutputError('cannot create the lock file (its folder keeps disappearing)',
                          path=self.path, field='lock')

    def _lock(self, fd: int) -> bool:
        """Lock ``fd`` (True), or warn that the file system cannot (False)."""
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_holder(fd)
            os.close(fd)
            if exc.errno in (errno.EACCES, errno.EAGAIN):
                raise LockedError(
                    f'participant {self.subject} is being processed by another bids-asl '
                    f'process ({holder}); wait for it to end, then rerun', path=self.path,
                    field='lock') from None
            if exc.errno in _UNSUPPORTED:
                LOGGER.warning('%s: the file system does not support locks: two processes '
                               'working on participant %s at once would not be detected',
                               self.path, self.subject)
                os.close(fd)
                return False
            raise OutputError(f'cannot lock ({exc.strerror})', path=self.path,
                              field='lock') from None
        return True

    def release(self) -> None:
        if self._fd is None:
            return
        try:  # remove while still holding it: a waiting process then sees a new inode
            self.path.unlink(missing_ok=True)
            self.path.parent.rmdir()  # only when empty
        except OSError:
            pass
        os.close(self._fd)  # closing the descriptor drops the lock
        self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or '{}')
        return f'PID {info["pid"]} on {info["host"]} since {info["since"]}'
    except (OSError, ValueError, KeyError, TypeError):
        return 'holder unknown'
