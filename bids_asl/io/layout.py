"""The only pybids user: find every ASL run with its aslcontext, M0 and inherited metadata."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from bids_asl.errors import InputMissingError, MetadataError

LOGGER = logging.getLogger('bids_asl')
ENTITY_ORDER = ('subject', 'session', 'acquisition', 'reconstruction', 'direction', 'run')


@dataclass
class AslRun:
    """The files and metadata of one ASL run (unvalidated)."""

    asl_file: Path
    aslcontext_file: Path | None
    m0_file: Path | None
    metadata: dict
    m0_metadata: dict | None
    entities: dict = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        """File name stem before ``_asl`` (``sub-01_ses-1_run-1``), used for derivative names."""
        return self.asl_file.name.split('_asl.nii')[0]

    @property
    def subject(self) -> str:
        return self.entities['subject']


def strip_prefix(label: str, prefix: str) -> str:
    return label[len(prefix):] if label.startswith(prefix) else label


def load_layout(bids_dir):
    """A pybids layout (no validation: the BIDS validator runs separately)."""
    from bids import BIDSLayout  # noqa: PLC0415 - keep pybids off the --help path

    try:
        return BIDSLayout(str(bids_dir), validate=False, derivatives=False)
    except Exception as exc:  # noqa: BLE001 - pybids raises many types for a broken dataset
        bad_json = _first_invalid_json(Path(bids_dir))
        if bad_json is not None:
            raise bad_json from None
        raise MetadataError(f'not a readable BIDS dataset ({exc})', path=bids_dir,
                            field='dataset_description.json') from None


def _first_invalid_json(bids_dir: Path) -> MetadataError | None:
    """The error naming the first JSON file (outside derivatives/) that does not parse."""
    for path in sorted(bids_dir.rglob('*.json')):
        parts = path.relative_to(bids_dir).parts
        if parts[0] in ('derivatives', 'sourcedata') or any(p.startswith('.') for p in parts):
            continue
        try:
            json.loads(path.read_text(encoding='utf-8'))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            return MetadataError(f'not valid JSON ({exc})', path=path, field='json')
    return None


def _metadata(layout, path) -> dict:
    try:
        return dict(layout.get_metadata(str(path)))
    except Exception as exc:  # noqa: BLE001
        raise MetadataError(f'cannot read sidecar metadata ({exc})', path=path,
                            field='json') from None


def _intended_targets(bids_root: Path, subject_dir: Path, intended) -> set[Path]:
    """Resolve IntendedFor entries (BIDS URIs ``bids::…`` or paths relative to the subject)."""
    items = intended if isinstance(intended, list) else [intended]
    targets = set()
    for item in items:
        if not isinstance(item, str):
            continue
        if item.startswith('bids::'):
            targets.add((bids_root / item[len('bids::'):]).resolve())
        elif item.startswith('bids:'):
            continue  # another dataset: not ours to resolve
        else:
            targets.add((subject_dir / item).resolve())
    return targets


def _find_m0(layout, bids_root: Path, asl_file: Path, entities: dict):
    query = {k: v for k, v in entities.items() if k in ('subject', 'session')}
    candidates = layout.get(suffix='m0scan', extension=['.nii', '.nii.gz'], **query)
    subject_dir = bids_root / f'sub-{entities["subject"]}'
    target = asl_file.resolve()
    matches = []
    for cand in candidates:
        meta = _metadata(layout, cand.path)
        if target in _intended_targets(bids_root, subject_dir, meta.get('IntendedFor', [])):
            matches.append((Path(cand.path), meta))
    if len(matches) > 1:
        raise MetadataError(f'{len(matches)} m0scan files name this run in IntendedFor',
                            path=asl_file, field='IntendedFor')
    if matches:
        return matches[0]
    prefix = asl_file.name.split('_asl.nii')[0]
    same = [c for c in candidates if Path(c.path).name.split('_m0scan.nii')[0] == prefix]
    if len(same) == 1:
        LOGGER.warning('%s: no m0scan names this run in IntendedFor; using %s, which has the '
                       'same entities', asl_file.name, Path(same[0].path).name)
        return Path(same[0].path), _metadata(layout, same[0].path)
    return None, None


def collect_asl_runs(layout, subjects=None, sessions=None) -> list[AslRun]:
    """All ASL runs of the selected subjects/sessions, sorted by file name."""
    bids_root = Path(layout.root)
    available = set(layout.get_subjects())
    if subjects:
        missing = sorted(set(subjects) - available)
        if missing:
            raise InputMissingError(
                f'participant(s) {", ".join(missing)} not found (available: '
                f'{", ".join(sorted(available)) or "none"})', path=bids_root,
                field='--participant-label')
    query = {'suffix': 'asl', 'extension': ['.nii', '.nii.gz'], 'datatype': 'perf'}
    if subjects:
        query['subject'] = list(subjects)
    if sessions:
        query['session'] = list(sessions)
    runs = []
    for bids_file in sorted(layout.get(**query), key=lambda f: f.path):
        asl_file = Path(bids_file.path)
        entities = {k: v for k, v in bids_file.get_entities().items() if k in ENTITY_ORDER}
        ctx = asl_file.parent / (asl_file.name.split('_asl.nii')[0] + '_aslcontext.tsv')
        metadata = _metadata(layout, asl_file)
        m0_file, m0_meta = (None, None)
        if metadata.get('M0Type') == 'Separate':
            m0_file, m0_meta = _find_m0(layout, bids_root, asl_file, entities)
        runs.append(AslRun(asl_file=asl_file, aslcontext_file=ctx if ctx.exists() else None,
                           m0_file=m0_file, metadata=metadata, m0_metadata=m0_meta,
                           entities=entities))
    if not runs:
        what = f'participant(s) {", ".join(subjects)}' if subjects else 'the dataset'
        raise InputMissingError(f'no perf/*_asl.nii[.gz] runs found for {what}',
                                path=bids_root, field='asl')
    return runs



def find_t1w(layout, subject: str) -> Path | None:
    """One anatomical reference per subject: its T1w without a session if there is one,
    else the first by session (then acquisition/run) in sorted order; None without a T1w."""
    files = layout.get(subject=subject, suffix='T1w', datatype='anat',
                       extension=['.nii', '.nii.gz'])
    if not files:
        return None

    def key(bids_file):
        ents = bids_file.get_entities()
        return (ents.get('session') is not None, str(ents.get('session', '')),
                bids_file.path)

    chosen = Path(sorted(files, key=key)[0].path)
    if len(files) > 1:
        LOGGER.info('sub-%s: %d T1w images; anatomical reference: %s', subject, len(files),
                    chosen.name)
    return chosen
