"""Covariate coding of the normative model: participants.tsv cells → design-matrix columns.

A covariate is numeric when every reference participant's value is a finite number, else
categorical with its sorted levels (the first is the baseline, one indicator column per other
level). A covariate that takes one value in the reference group cannot be estimated. Numeric
and indicator columns are centred on the reference participants' mean
(:func:`bids_asl.quant.normative.design`), so that the intercept is the prediction for an
average reference participant. Pure Python and numpy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from bids_asl.qcrules import as_float
from bids_asl.quant.normative import design


class NotScored(ValueError):
    """A participant whose covariates cannot be coded (missing, not a number, unseen level)."""


def cell_value(text) -> str | None:
    """A participants.tsv cell: None for empty or ``n/a``, else the stripped text."""
    text = (text or '').strip()
    return None if text in ('', 'n/a') else text


@dataclass(frozen=True)
class Covariate:
    column: str
    levels: tuple[str, ...] | None = None  # None: numeric

    @property
    def width(self) -> int:
        return 1 if self.levels is None else len(self.levels) - 1

    def encode(self, text: str | None) -> list[float]:
        if text is None:
            raise NotScored(f'{self.column} is n/a in participants.tsv')
        if self.levels is None:
            number = as_float(text)
            if number is None:
                raise NotScored(f'{self.column}={text!r} is not a finite number')
            return [number]
        if text not in self.levels:
            raise NotScored(f'{self.column}={text!r} does not occur in the reference group')
        return [float(text == level) for level in self.levels[1:]]

    def to_sidecar(self):
        if self.levels is None:
            return 'numeric, centred on the reference mean'
        return {'Levels': list(self.levels), 'Baseline': self.levels[0],
                'Coding': 'one indicator column per other level, centred'}


@dataclass(frozen=True)
class CovariateCoding:
    covariates: tuple[Covariate, ...] = ()

    @classmethod
    def from_reference(cls, columns: Sequence[str],
                       reference: Sequence[Mapping[str, str | None]]) -> CovariateCoding:
        """The coding of ``columns`` from the reference participants' cells (dicts column →
        :func:`cell_value`); ValueError naming a covariate that is constant among them."""
        out = []
        for column in columns:
            values = [v for v in (row.get(column) for row in reference) if v is not None]
            levels = sorted(set(values))
            if len(levels) < 2:
                raise ValueError(f'column {column!r} takes one value '
                                 f'({", ".join(levels) or "n/a"}) in the reference group: it '
                                 'cannot be a covariate')
            numeric = all(as_float(v) is not None for v in values)
            out.append(Covariate(column, None if numeric else tuple(levels)))
        return cls(tuple(out))

    @property
    def n_params(self) -> int:
        """Design columns: the intercept and the covariates' columns."""
        return 1 + sum(c.width for c in self.covariates)

    def encode(self, cells: Mapping[str, str | None]) -> list[float]:
        """One participant's covariate values (NotScored when they cannot be coded)."""
        return [x for c in self.covariates for x in c.encode(cells.get(c.column))]

    def to_sidecar(self) -> dict:
        return {c.column: c.to_sidecar() for c in self.covariates}

    def design_rows(self, values: Mapping[str, list[float]], reference: Sequence[str]
                    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(centre, key → design row) for every key of ``values``, centred on the mean of the
        ``reference`` keys' values."""
        if self.n_params == 1:
            centre = np.zeros(0)
            return centre, {k: design(1, None, centre=centre)[0] for k in values}
        centre = np.mean([values[k] for k in reference], axis=0)
        return centre, {k: design(1, np.asarray(v)[None, :], centre=centre)[0]
                        for k, v in values.items()}
