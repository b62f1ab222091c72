"""QC pass/warn thresholds and group exclusion rules (standard library only; any layer may import).

The thresholds are documented, with their sources, in ``docs/qc.md`` (a test keeps the two in
step). A flag is advice for the reader of a report; only the exclusion rules given on the
command line (``--group-exclude``, ``--exclude-fd-above``, ``--exclude-qei-below``) remove runs
from group aggregates.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Threshold:
    metric: str
    low: float | None  # warn when value < low
    high: float | None  # warn when value > high
    source: str

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return f'{self.low:g} – {self.high:g}'
        return f'≥ {self.low:g}' if self.low is not None else f'≤ {self.high:g}'


#: QC column → pass range. Everything outside warns.
THRESHOLDS = {t.metric: t for t in (
    Threshold('mean_fd', None, 0.55, 'Parkes et al. 2018, lenient mean-FD criterion (fMRI)'),
    Threshold('max_fd', None, 5.0, 'Parkes et al. 2018, lenient criterion: no FD > 5 mm'),
    Threshold('qei', 0.7, None, 'heuristic on the 0–1 scale of Dolui et al. 2024 (the paper '
                                'validates QEI against ratings; it sets no universal cut-off)'),
    Threshold('scov_gm', None, 0.8, 'heuristic; sCoV rises with arterial transit artefacts '
                                    '(Mutsaerts et al. 2017)'),
    Threshold('negative_cbf_fraction_gm', None, 0.1, 'heuristic; negative GM CBF is noise or '
                                                     'artefact (QEI component, Dolui 2024)'),
    Threshold('gm_wm_ratio', 1.5, 4.0, 'heuristic band around the ~2–3 expected in adults'),
    Threshold('cbf_mean_gm', 20.0, 110.0, 'heuristic band around healthy adult GM CBF of '
                                          'roughly 40–80 mL/100g/min'),
    Threshold('score_rejected_fraction', None, 0.2, 'heuristic: SCORE rejected more than one '
                                                    'ΔM volume in five (Dolui et al. 2017)'),
)}


def as_float(value) -> float | None:
    """A table cell as a finite float, else None (``n/a``, empty, text, NaN)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def derived_metrics(row: dict) -> dict:
    """Metrics computed from a QC row for flagging (currently the SCORE rejected fraction)."""
    n = as_float(row.get('n_deltam_volumes'))
    rejected = as_float(row.get('n_deltam_rejected_score'))
    return {'score_rejected_fraction': rejected / n if n and rejected is not None else None}


def flag(metric: str, value) -> str:
    """``pass``, ``warn``, or ``n/a`` (no value, or no threshold for the metric)."""
    threshold = THRESHOLDS.get(metric)
    number = as_float(value)
    if threshold is None or number is None:
        return 'n/a'
    if threshold.low is not None and number < threshold.low:
        return 'warn'
    if threshold.high is not None and number > threshold.high:
        return 'warn'
    return 'pass'


_OPS = {'<=': operator.le, '>=': operator.ge, '<': operator.lt, '>': operator.gt}
_RULE = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|<|>)\s*([-+0-9.eE]+)\s*$')


@dataclass(frozen=True)
class Rule:
    """Exclude a run when ``metric op value`` holds (an ``n/a`` metric never matches)."""

    metric: str
    op: str
    value: float

    def __str__(self) -> str:
        return f'{self.metric}{self.op}{self.value:g}'

    def matches(self, row: dict) -> bool:
        number = as_float(row.get(self.metric))
        return number is not None and _OPS[self.op](number, self.value)


def parse_rule(text: str, metrics=None) -> Rule:
    """``'mean_fd>0.5'`` → Rule; ValueError naming the problem otherwise."""
    match = _RULE.match(text)
    if not match:
        raise ValueError(f'{text!r} is not METRIC<VALUE, METRIC<=VALUE, METRIC>VALUE or '
                         'METRIC>=VALUE')
    metric, op, value = match.groups()
    if metrics is not None and metric not in metrics:
        raise ValueError(f'{text!r}: unknown QC metric {metric!r} (one of: '
                         f'{", ".join(metrics)})')
    number = as_float(value)
    if number is None:
        raise ValueError(f'{text!r}: {value!r} is not a finite number')
    return Rule(metric, op, number)


def exclusion_reasons(row: dict, rules) -> list[str]:
    """The rules (as text) that exclude this QC row."""
    values = {**row, **derived_metrics(row)}
    return [str(rule) for rule in rules if rule.matches(values)]
