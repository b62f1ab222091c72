"""Exit codes and the exceptions that carry them (standard library only; any layer may import).

The exit codes follow BSD ``sysexits.h`` (and 3 for a partial result, which that file has no
code for) and are documented in ``docs/usage.md``.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    # Every run has its CBF, QC and report, but an optional stage (the anatomy) failed for some
    # run: its sidecars say which step, and what was used instead.  Below the error codes, so
    # that any real failure wins when several runs end differently.
    PARTIAL = 3
    USAGE = 64  # wrong command line
    DATAERR = 65  # invalid data or metadata
    NOINPUT = 66  # input missing (BIDS dir, participant, ASL runs)
    UNAVAILABLE = 69  # a feature that is not implemented yet
    SOFTWARE = 70  # internal error (a bug: please report)
    CANTCREAT = 73  # cannot write the output or work directory
    TEMPFAIL = 75  # another bids-asl process is working on the participant: try again later


class BidsAslError(Exception):
    """A user-facing error: one line, naming the file and the field where there is one."""

    exit_code = ExitCode.SOFTWARE

    def __init__(self, message: str, *, path: object = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.path = None if path is None else str(path)
        self.field = field

    def __str__(self) -> str:
        parts = [p for p in (self.path, self.field) if p]
        return ': '.join([*parts, self.message])


class MetadataError(BidsAslError):
    """Invalid data or metadata of one run."""

    exit_code = ExitCode.DATAERR


class InputMissingError(BidsAslError):
    exit_code = ExitCode.NOINPUT


class OutputError(BidsAslError):
    exit_code = ExitCode.CANTCREAT


class LockedError(BidsAslError):
    """The participant is locked by another running bids-asl process."""

    exit_code = ExitCode.TEMPFAIL


class UsageError(BidsAslError):
    exit_code = ExitCode.USAGE


class NotImplementedYetError(BidsAslError):
    exit_code = ExitCode.UNAVAILABLE
