"""BIDS TSV tables: the one writer and reader of every table the app makes or reads.

Cells: ``n/a`` for a missing value (None, '', NaN, ±Inf), floats with 6 significant digits, a
list or tuple as its items joined by ``+`` (label values merged into one region); tabs and line
breaks inside a cell become spaces (they would break the table). Tables are written atomically
(a temporary name, then a rename), whole (:func:`write_tsv`) or row by row
(:class:`TsvWriter`, memory independent of the number of rows); :func:`iter_rows` reads one row
at a time, :func:`read_tsv` all of them.
"""

from __future__ import annotations

import csv
import math
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from bids_asl.errors import OutputError

NA = 'n/a'
_BREAKS = str.maketrans({'\t': ' ', '\n': ' ', '\r': ' '})


def cell(value) -> str:
    """One TSV cell (see the module docstring)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return NA
    if isinstance(value, float):
        return f'{value:.6g}'
    if isinstance(value, (list, tuple)):
        return '+'.join(cell(v) for v in value)
    text = str(value).translate(_BREAKS)
    return text if text else NA


def line(cells: Iterable) -> str:
    return '\t'.join(cell(c) for c in cells) + '\n'


def row_line(columns: Sequence[str], row: dict | Sequence) -> str:
    """A row given as a dict (missing keys n/a) or as cells in column order."""
    if isinstance(row, dict):
        return line(row.get(c) for c in columns)
    return line(row)


def tsv_text(columns: Sequence[str], rows: Iterable) -> str:
    """Header and rows (dicts or cell sequences) as TSV text."""
    return line(columns) + ''.join(row_line(columns, r) for r in rows)


class TsvWriter:
    """Write a table row by row under a temporary name; :meth:`close` renames it into place
    (``with TsvWriter(path, columns) as out: out.write(row)``). An exception inside the
    ``with`` block removes the temporary file and leaves any existing table untouched."""

    def __init__(self, path, columns: Sequence[str]):
        self.path = Path(path)
        self.columns = tuple(columns)
        from bids_asl.io.images import TEMP_SUFFIX  # noqa: PLC0415 - keeps nibabel off the CLI

        self._tmp = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, self._tmp = tempfile.mkstemp(prefix=f'.{self.path.name}.', suffix=TEMP_SUFFIX,
                                             dir=self.path.parent)
            self._fobj = os.fdopen(fd, 'w', encoding='utf-8', newline='')
            self._fobj.write(line(self.columns))
        except OSError as exc:
            self._fail(exc)
        self.n_rows = 0

    def _fail(self, exc: OSError):
        if self._tmp is not None:
            Path(self._tmp).unlink(missing_ok=True)
        raise OutputError(f'cannot write ({exc.strerror or exc})', path=self.path,
                          field='write') from None

    def write(self, row: dict | Sequence) -> None:
        try:
            self._fobj.write(row_line(self.columns, row))
        except OSError as exc:
            self._fobj.close()
            self._fail(exc)
        self.n_rows += 1

    def write_all(self, rows: Iterable) -> None:
        for row in rows:
            self.write(row)

    def close(self) -> Path:
        try:
            self._fobj.flush()
            os.fsync(self._fobj.fileno())
            self._fobj.close()
            os.chmod(self._tmp, 0o644)
            os.replace(self._tmp, self.path)
        except OSError as exc:
            self._fobj.close()
            self._fail(exc)
        return self.path

    def abort(self) -> None:
        self._fobj.close()
        Path(self._tmp).unlink(missing_ok=True)

    def __enter__(self) -> TsvWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def column_sidecar(descriptions: dict, columns=None) -> dict:
    """The JSON sidecar entries describing a table's columns (``columns``: those described, in
    this order; default all of ``descriptions``)."""
    columns = descriptions if columns is None else columns
    return {c: {'Description': descriptions[c]} for c in columns if c in descriptions}


def write_tsv(path, columns: Sequence[str], rows: Iterable) -> Path:
    """Write a whole table atomically."""
    with TsvWriter(path, columns) as out:
        out.write_all(rows)
    return out.path


def iter_rows(path) -> Iterator[dict]:
    """The rows of a TSV as dicts (header → cell text), one at a time."""
    with open(path, newline='', encoding='utf-8') as fobj:
        yield from csv.DictReader(fobj, delimiter='\t')


def read_tsv(path) -> list[dict]:
    return list(iter_rows(path))
