"""Shared pieces of the anatomy interfaces: optional steps that report their failure instead of
raising it, and the small helpers every anatomy module uses.

In nipype a node that raises stops every node that depends on it.  The anatomy stage is optional
(it must never cost a run its CBF), so each of its steps is an :class:`OptionalStep`: a failure
becomes the one-line ``error`` output (``'<step>: <exception>: <message>'``) and the step's other
outputs stay undefined; a step whose required inputs are undefined (an earlier step failed) is
skipped, with an ``error`` saying so.  Later nodes see the undefined outputs and fall back (e.g.
the run uses the template path instead of the T1w).  A full or read-only work dir is not an
anatomical failure: it is raised, so the run stops with its usual exit code.
"""

from __future__ import annotations

import errno
import os
from dataclasses import asdict

import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    SimpleInterface,
    TraitedSpec,
    isdefined,
    traits,
)

from bids_asl.io import images

#: errno values that mean the work dir cannot be written: raised, never turned into a status.
_WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES)


def _reg():
    """:mod:`bids_asl.registration.anat` (imports ants, ~3 s: only when registering)."""
    from bids_asl.registration import anat  # noqa: PLC0415

    return anat


def save(data, reference, cwd, name, dtype=np.float32) -> str:
    """A work-dir image on the grid of ``reference``."""
    return str(images.save_work(data, reference, os.path.join(cwd, name), dtype=dtype))


def rows_as_dicts(rows) -> list[dict]:
    """Dataclass rows as JSON-ready dicts (tuples become lists)."""
    return [{k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(r).items()}
            for r in rows]


class PartlyDone(Exception):  # noqa: N818 - not an error: what was done is kept
    """Raised by a step that did part of its work: its outputs so far are kept and the message
    becomes its ``error``."""


class StepOutputSpec(TraitedSpec):
    error = traits.Str(desc='empty when the step succeeded; else "<step>: <what failed>"')


class OptionalStep(SimpleInterface):
    """A step whose failure is an output (``error``) rather than an exception.

    Subclasses set ``step`` (a short name for messages), ``requires`` (input names that must be
    defined: else the step is skipped) and implement ``_run_step(runtime)``.
    """

    input_spec = BaseInterfaceInputSpec
    output_spec = StepOutputSpec
    step = 'anatomy step'
    requires: tuple[str, ...] = ()

    def _run_interface(self, runtime):
        missing = [n for n in self.requires if not isdefined(getattr(self.inputs, n))]
        if missing:
            self._results = {'error': f'{self.step}: skipped ({missing[0]} unavailable: an '
                                      'earlier step failed)'}
            return runtime
        try:
            self._run_step(runtime)
        except PartlyDone as partial:
            self._results['error'] = f'{self.step}: {partial}'
        except OSError as exc:
            if exc.errno in _WRITE_ERRNOS:
                raise
            self._fail(exc)
        except Exception as exc:  # noqa: BLE001 - an optional stage reports, never raises
            self._fail(exc)
        else:
            self._results['error'] = ''
        return runtime

    def _fail(self, exc: Exception) -> None:
        message = ' '.join(str(exc).split()) or 'no message'
        self._results = {'error': f'{self.step}: {type(exc).__name__}: {message}'}

    def _run_step(self, runtime):  # pragma: no cover - abstract
        raise NotImplementedError
