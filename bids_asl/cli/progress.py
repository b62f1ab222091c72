"""Progress on stderr, per subject and stage.

On a terminal: one status line rewritten in place (``[12/40] sub-01 sub-01_run-1: compute_cbf``).
Otherwise (a log file, a Slurm job, a pipe): plain lines, one per finished or failed step, so a
log shows where a long run is and where it stopped. nipype reports node starts and ends through
its plugins' ``status_callback``.
"""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, stream=None, *, tty: bool | None = None, total: int = 0,
                 runs: dict[str, str] | None = None):
        """``runs``: nipype-safe run name → BIDS prefix (``safe_name(prefix)``)."""
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.total = total
        self.done = 0
        self.runs = runs or {}
        self.subjects: dict[str, str] = {}  # nipype-safe subject label → label (T1w stage)
        self._t0 = time.monotonic()
        self._dirty = False

    def _run_of(self, fullname: str) -> str:
        for safe, prefix in self.runs.items():
            if f'.asl_{safe}_wf.' in f'.{fullname}.' or fullname.endswith(f'.ds_{safe}'):
                return prefix
        for safe, subject in self.subjects.items():
            if f'.t1w_{safe}_wf.' in f'.{fullname}.' or fullname.endswith(f'.ds_t1w_{safe}'):
                return f'sub-{subject} T1w'
        return ''

    def _emit(self, text: str, *, final: bool) -> None:
        elapsed = time.monotonic() - self._t0
        if self.tty:
            line = f'\r\033[K[{elapsed:6.1f} s] {text}'
            self.stream.write(line + ('\n' if final else ''))
            self._dirty = not final
        else:
            if not final:
                return
            self.stream.write(f'bids-asl: progress: {text}\n')
        self.stream.flush()

    def stage(self, subject: str | None, text: str) -> None:
        """A stage outside nipype (validation, reports, group steps): always a line."""
        self.clear()
        self._emit(f'{"sub-" + subject + ": " if subject else ""}{text}', final=True)

    def step(self, text: str) -> None:
        """A transient status (terminal only), e.g. a count inside a long stage."""
        if self.tty:
            self._emit(text, final=False)

    def callback(self, node, status: str) -> None:
        """nipype ``status_callback(node, status)``; status is start, end or exception."""
        fullname = getattr(node, 'fullname', str(node))
        name = fullname.rsplit('.', 1)[-1]
        prefix = self._run_of(fullname)
        where = f'{prefix}: ' if prefix else ''
        if status == 'start':
            self._emit(f'[{self.done}/{self.total}] {where}{name} …', final=False)
            return
        self.done += 1
        verb = 'done' if status == 'end' else 'FAILED'
        self._emit(f'[{self.done}/{self.total}] {where}{name} {verb}',
                   final=not self.tty or status != 'end')

    def clear(self) -> None:
        if self.tty and self._dirty:
            self.stream.write('\r\033[K')
            self.stream.flush()
            self._dirty = False
