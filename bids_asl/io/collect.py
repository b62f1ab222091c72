"""Find the participant-level outputs already in a derivative dataset (reports, group level).

A run is identified by its main CBF sidecar ``<prefix>_cbf.json`` (no ``desc``/``space``
entity); every other file of the run is looked up by its key in the naming table
(:mod:`bids_asl.io.naming`) from its prefix. Files written by the
anatomy pipeline (template/T1w space, regional and tissue tables) are optional.

A session comparison (``--compare-sessions A B``) is identified by its template-space
difference map ``sub-X/perf/<stem>_space-<template>_desc-<A>Minus<B>_cbf.nii.gz`` (``<stem>``:
the runs' names without the session); its other files are looked up from ``<stem>`` and
``<A>Minus<B>``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from bids_asl.constants import TEMPLATE
from bids_asl.io import naming
from bids_asl.io.tsv import read_tsv


@dataclass(frozen=True)
class RunOutputs:
    """The derivative files of one run (``perf`` folder and BIDS prefix)."""

    prefix: str
    perf: Path

    @property
    def entities(self) -> dict:
        return naming.stem_entities(self.prefix)

    @property
    def subject(self) -> str:
        return self.entities['sub']

    @property
    def session(self) -> str | None:
        return self.entities.get('ses')

    @property
    def run(self) -> str | None:
        return self.entities.get('run')

    def path(self, key: str, **values) -> Path:
        """The run's output ``key`` of the naming table (present or not)."""
        return self.perf / naming.name_for(key, self.prefix, **values)

    def find(self, key: str, **values) -> Path | None:
        path = self.path(key, **values)
        return path if path.is_file() else None

    def regional_tables(self, measure: str = 'cbf') -> dict[str, Path]:
        """Atlas name → ``<prefix>_space-<template>_seg-<Atlas>_desc-regional_<measure>.tsv``."""
        return _by_atlas(self.perf, 'regional', self.prefix, measure=measure)


def _by_atlas(folder: Path, key: str, stem: str, **values) -> dict[str, Path]:
    out = {}
    for path in sorted(folder.glob(f'{stem}_*.tsv')):
        parsed = naming.parse(path)
        if (parsed is not None and parsed.key == key and parsed.stem == stem
                and all(parsed.values.get(k) == v for k, v in values.items())):
            out[parsed.values['atlas']] = path
    return out


@dataclass(frozen=True)
class ComparisonOutputs:
    """The files of one session comparison (``sub-X/perf``, no session entity)."""

    stem: str
    desc: str  # <A>Minus<B>
    perf: Path

    def map(self, kind: str = '', space: str = TEMPLATE) -> Path | None:
        """``kind`` '' (A − B), 'Percent' or 'Z'; None when the file is absent."""
        key = {'': 'comparison', 'Percent': 'comparison_percent', 'Z': 'comparison_z'}[kind]
        path = self.perf / naming.name_for(key, self.stem, space=space, comparison=self.desc)
        return path if path.is_file() else None

    def clusters(self) -> Path | None:
        path = self.perf / naming.name_for('comparison_clusters', self.stem,
                                           comparison=self.desc)
        return path if path.is_file() else None

    def regional_tables(self) -> dict[str, Path]:
        """Atlas name → ``<stem>_space-<template>_seg-<Atlas>_desc-<A>Minus<B>_cbf.tsv``."""
        return _by_atlas(self.perf, 'comparison_regional', self.stem, comparison=self.desc)


def find_comparisons(output_dir, subject: str) -> list[ComparisonOutputs]:
    """Every session comparison of one subject, sorted by (stem, desc).

    ``desc-<A>Minus<B>Percent`` and ``…Z`` are the maps of ``<A>Minus<B>`` (the naming table
    reads them so), not comparisons of their own.
    """
    perf = Path(output_dir) / f'sub-{subject}' / 'perf'
    found = set()
    for path in perf.glob(f'sub-{subject}*_cbf.nii.gz'):
        parsed = naming.parse(path)
        if (parsed is not None and parsed.key == 'comparison'
                and parsed.values['space'] == TEMPLATE
                and parsed.entities.get('sub') == subject):
            found.add((parsed.stem, parsed.values['comparison']))
    return [ComparisonOutputs(stem, desc, perf) for stem, desc in sorted(found)]


def find_runs(output_dir, subject: str | None = None) -> list[RunOutputs]:
    """Every run with a main CBF sidecar, sorted by prefix (optionally of one subject)."""
    root = Path(output_dir)
    sub = f'sub-{subject}' if subject else 'sub-*'
    found = []
    for pattern in (f'{sub}/perf/*_cbf.json', f'{sub}/ses-*/perf/*_cbf.json'):
        for path in root.glob(pattern):
            parsed = naming.parse(path)
            if parsed is not None and parsed.key == 'cbf' and parsed.is_sidecar:
                found.append(RunOutputs(prefix=parsed.stem, perf=path.parent))
    return sorted(found, key=lambda r: r.prefix)


def subjects_with_outputs(output_dir) -> list[str]:
    return sorted({r.subject for r in find_runs(output_dir)})


def read_json(path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding='utf-8'))
    except (OSError, ValueError):
        return {}


def read_participants(bids_dir) -> tuple[list[str], dict[str, dict]]:
    """(extra column names, participant_id → row) from ``participants.tsv`` (empty if absent)."""
    path = Path(bids_dir) / 'participants.tsv'
    if not path.is_file():
        return [], {}
    rows = read_tsv(path)
    if not rows or 'participant_id' not in rows[0]:
        return [], {}
    columns = [c for c in rows[0] if c != 'participant_id']
    return columns, {r['participant_id']: r for r in rows}


def latest_log_dir(output_dir, subject: str) -> Path | None:
    """The newest ``sub-<label>/log/<run-id>/`` (by modification time)."""
    logs = [p for p in (Path(output_dir) / f'sub-{subject}' / 'log').glob('*') if p.is_dir()]
    return max(logs, key=lambda p: p.stat().st_mtime) if logs else None
