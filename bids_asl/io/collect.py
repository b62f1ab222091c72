"""Find the participant-level outputs already in a derivative dataset (reports, group level).

A run is identified by its main CBF sidecar ``<prefix>_cbf.json`` (no ``desc``/``space``
entity); every other file of the run is looked up by name from its prefix. Files written by the
anatomy pipeline (template/T1w space, regional and tissue tables) are optional.

A session comparison (``--compare-sessions A B``) is identified by its template-space
difference map ``sub-X/perf/<stem>_space-<template>_desc-<A>Minus<B>_cbf.nii.gz`` (``<stem>``:
the runs' names without the session); its other files are looked up from ``<stem>`` and
``<A>Minus<B>``.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

TEMPLATE = 'MNI152NLin2009aSym'
_ENTITY = re.compile(r'([a-z]+)-([A-Za-z0-9]+)')
#: A file stem of entities without ``desc``/``space`` (a run's prefix, a comparison's stem).
_STEM = r'sub-[A-Za-z0-9]+(?:_(?!desc-|space-)[a-z]+-[A-Za-z0-9]+)*'
_MAIN_CBF = re.compile(rf'^({_STEM})_cbf\.json$')
_COMPARISON = re.compile(rf'^(?P<stem>{_STEM})'
                         rf'_space-{TEMPLATE}_desc-(?P<desc>[A-Za-z0-9]+Minus[A-Za-z0-9]+)'
                         r'_cbf\.nii\.gz$')
_REGIONAL = re.compile(r'_space-(?P<space>[A-Za-z0-9]+)_seg-(?P<atlas>[A-Za-z0-9]+)'
                       r'_desc-regional_cbf\.tsv$')


@dataclass(frozen=True)
class RunOutputs:
    """The derivative files of one run (``perf`` folder and BIDS prefix)."""

    prefix: str
    perf: Path

    @property
    def entities(self) -> dict:
        return dict(_ENTITY.findall(self.prefix))

    @property
    def subject(self) -> str:
        return self.entities['sub']

    @property
    def session(self) -> str | None:
        return self.entities.get('ses')

    @property
    def run(self) -> str | None:
        return self.entities.get('run')

    def path(self, suffix: str, *, desc: str | None = None, space: str | None = None,
             extension: str = '.nii.gz') -> Path:
        name = (self.prefix + (f'_space-{space}' if space else '') +
                (f'_desc-{desc}' if desc else '') + f'_{suffix}{extension}')
        return self.perf / name

    def find(self, suffix: str, **kwargs) -> Path | None:
        path = self.path(suffix, **kwargs)
        return path if path.is_file() else None

    def regional_tables(self) -> dict[str, Path]:
        """Atlas name → ``<prefix>_space-<template>_seg-<Atlas>_desc-regional_cbf.tsv``."""
        out = {}
        for path in sorted(self.perf.glob(f'{self.prefix}_space-*_seg-*_desc-regional_cbf.tsv')):
            match = _REGIONAL.search(path.name)
            if match and path.name == (f'{self.prefix}_space-{match["space"]}_seg-'
                                       f'{match["atlas"]}_desc-regional_cbf.tsv'):
                out[match['atlas']] = path
        return out


@dataclass(frozen=True)
class ComparisonOutputs:
    """The files of one session comparison (``sub-X/perf``, no session entity)."""

    stem: str
    desc: str  # <A>Minus<B>
    perf: Path

    def map(self, kind: str = '', space: str = TEMPLATE) -> Path | None:
        """``kind`` '' (A − B), 'Percent' or 'Z'; None when the file is absent."""
        path = self.perf / f'{self.stem}_space-{space}_desc-{self.desc}{kind}_cbf.nii.gz'
        return path if path.is_file() else None

    def clusters(self) -> Path | None:
        path = self.perf / f'{self.stem}_space-{TEMPLATE}_desc-{self.desc}_clusters.tsv'
        return path if path.is_file() else None

    def regional_tables(self) -> dict[str, Path]:
        """Atlas name → ``<stem>_space-<template>_seg-<Atlas>_desc-<A>Minus<B>_cbf.tsv``."""
        pattern = re.compile(rf'^{re.escape(self.stem)}_space-{TEMPLATE}_seg-(?P<atlas>'
                             rf'[A-Za-z0-9]+)_desc-{re.escape(self.desc)}_cbf\.tsv$')
        out = {}
        for path in sorted(self.perf.glob(f'{self.stem}_space-{TEMPLATE}_seg-*_desc-'
                                          f'{self.desc}_cbf.tsv')):
            match = pattern.match(path.name)
            if match:
                out[match['atlas']] = path
        return out


def find_comparisons(output_dir, subject: str) -> list[ComparisonOutputs]:
    """Every session comparison of one subject, sorted by (stem, desc).

    ``desc-<A>Minus<B>Percent`` and ``…Z`` are the maps of ``<A>Minus<B>`` when that
    difference map exists too, not comparisons of their own.
    """
    perf = Path(output_dir) / f'sub-{subject}' / 'perf'
    found = set()
    for path in perf.glob(f'sub-{subject}*_space-{TEMPLATE}_desc-*Minus*_cbf.nii.gz'):
        match = _COMPARISON.match(path.name)
        if match and match['stem'].split('_')[0] == f'sub-{subject}':
            found.add((match['stem'], match['desc']))
    derived = {(stem, desc) for stem, desc in found for kind in ('Percent', 'Z')
               if desc.endswith(kind) and (stem, desc[:-len(kind)]) in found}
    return [ComparisonOutputs(stem, desc, perf) for stem, desc in sorted(found - derived)]


def find_runs(output_dir, subject: str | None = None) -> list[RunOutputs]:
    """Every run with a main CBF sidecar, sorted by prefix (optionally of one subject)."""
    root = Path(output_dir)
    sub = f'sub-{subject}' if subject else 'sub-*'
    found = []
    for pattern in (f'{sub}/perf/*_cbf.json', f'{sub}/ses-*/perf/*_cbf.json'):
        for path in root.glob(pattern):
            match = _MAIN_CBF.match(path.name)
            if match and path.parent.parent.name.startswith(('sub-', 'ses-')):
                found.append(RunOutputs(prefix=match.group(1), perf=path.parent))
    return sorted(found, key=lambda r: r.prefix)


def subjects_with_outputs(output_dir) -> list[str]:
    return sorted({r.subject for r in find_runs(output_dir)})


def read_tsv(path) -> list[dict]:
    with open(path, newline='', encoding='utf-8') as fobj:
        return list(csv.DictReader(fobj, delimiter='\t'))


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
