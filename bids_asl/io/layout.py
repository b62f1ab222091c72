"""The only pybids user: find every ASL run with its aslcontext, M0 and inherited metadata."""

from __future__ import annotations

import json
import logging
import os
import re
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
    #: why the run cannot be processed, found while collecting it (reported with the others)
    problem: MetadataError | None = None

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
    """A pybids layout (no validation: the BIDS validator runs separately).

    JSON files that pybids cannot read (not UTF-8, not JSON, not an object) are left out of
    the index and kept in ``layout.invalid_json``: only the runs they apply to fail.
    """
    from bids import BIDSLayout, BIDSLayoutIndexer  # noqa: PLC0415 - not on the --help path
    from bids.layout.validation import DEFAULT_LOCATIONS_TO_IGNORE  # noqa: PLC0415

    bids_dir = Path(bids_dir)
    config = rooted_config(bids_dir)

    def index(invalid):
        ignore = [*DEFAULT_LOCATIONS_TO_IGNORE,
                  *(p.relative_to(bids_dir).as_posix() for p in invalid)]
        layout = BIDSLayout(str(bids_dir), validate=False, derivatives=False, config=[config],
                            indexer=BIDSLayoutIndexer(validate=False, ignore=ignore))
        layout.invalid_json = invalid
        return layout

    # a FIFO or device named *.json would block pybids forever: never let it read one
    special = {p: MetadataError('not a regular file', path=p, field='file')
               for p in _json_files(bids_dir) if not p.is_file()}
    try:
        return index(special)
    except Exception as exc:  # noqa: BLE001 - pybids raises many types for a broken dataset
        first = exc
    invalid = {**special, **_invalid_json(bids_dir)}
    top = invalid.get(bids_dir / 'dataset_description.json')
    if top is not None:
        raise top
    if len(invalid) > len(special):
        try:
            return index(invalid)
        except Exception as exc:  # noqa: BLE001
            first = exc
    raise MetadataError(f'not a readable BIDS dataset ({first})', path=bids_dir,
                        field='dataset_description.json') from None


def rooted_config(bids_dir) -> dict:
    """pybids' ``bids`` configuration with every path entity read below ``bids_dir`` only.

    pybids (up to 0.22 at least) matches its entity patterns against the absolute path of a
    file, so a folder *above* the dataset named like a BIDS folder wins: a dataset stored under
    ``…/perf/`` gets ``datatype=perf`` for every file (its T1w is lost), one under ``…/anat/``
    has no ASL, one under ``…/sub-x/`` puts every file in subject ``x``.  Each pattern that can
    match a folder is prefixed with the dataset root, so it only searches the part of the path
    inside the dataset.  The prefix is optional and possessive: should pybids pass root-relative
    paths instead (as its development version does), the patterns still match them the same way.
    """
    from bids.config import get_option  # noqa: PLC0415 - not on the --help path

    with open(get_option('config_paths')['bids'], encoding='utf-8') as fh:
        config = json.load(fh)
    root = re.escape(str(Path(bids_dir).absolute()).rstrip('/\\'))
    for entity in config['entities']:
        pattern = entity.get('pattern')
        if pattern and pattern.startswith(('[/\\\\]', '[_/\\\\]')):
            entity['pattern'] = rf'^(?:{root}(?=[/\\]))?+.*?' + pattern
    return config


def _json_files(bids_dir: Path):
    """JSON files pybids indexes (not under derivatives/, sourcedata/, … or hidden)."""
    for path in sorted(bids_dir.rglob('*.json')):
        parts = path.relative_to(bids_dir).parts
        if parts[0] in ('derivatives', 'sourcedata', 'code', 'models', 'stimuli') or any(
                p.startswith('.') for p in parts):
            continue
        yield path


def _invalid_json(bids_dir: Path) -> dict[Path, MetadataError]:
    """An error for each JSON file that pybids would index and is not a JSON object."""
    out = {}
    for path in _json_files(bids_dir):
        try:
            if not path.is_file():
                continue  # reported as not a regular file
            data = json.loads(path.read_text(encoding='utf-8'))
            if not isinstance(data, dict):
                raise ValueError(f'the top level is a {type(data).__name__}, not an object')
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            out[path] = MetadataError(f'not valid JSON ({exc})', path=path, field='json')
    return out


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def check_run_files(bids_root: Path, run: AslRun) -> None:
    """Refuse a run whose name is not BIDS or whose files are not plain files of the dataset.

    A symlink may point anywhere inside the dataset (DataLad's ``.git/annex``), not outside it:
    the run would depend on files the dataset does not hold (and a container would not see).
    """
    asl = run.asl_file
    ent = run.entities
    rel = Path(os.path.abspath(asl)).relative_to(os.path.abspath(bids_root)).parts
    folder = (f'sub-{ent.get("subject")}', *([f'ses-{ent["session"]}'] if ent.get('session')
                                             else []), 'perf')
    name = re.compile(rf'sub-{re.escape(str(ent.get("subject")))}'
                      + (rf'_ses-{re.escape(str(ent["session"]))}' if ent.get('session') else '')
                      + r'(_[a-z]+-[A-Za-z0-9]+)*_asl\.nii(\.gz)?')
    if rel[:-1] != folder or not name.fullmatch(rel[-1]):
        raise MetadataError('is not a BIDS name: expected sub-<label>/[ses-<label>/]perf/'
                            'sub-<label>[_ses-<label>][_<key>-<value>...]_asl.nii[.gz] with '
                            'alphanumeric labels', path=asl, field='filename')
    root = Path(bids_root).resolve()
    files = [asl, run.aslcontext_file, run.m0_file,
             *(Path(str(f).split('.nii')[0] + '.json') for f in (asl, run.m0_file) if f)]
    for path in (Path(f) for f in files if f is not None):
        if not os.path.lexists(path):
            continue  # a missing file is reported by the validation of the run
        target = path.resolve()
        if not path.exists():
            raise MetadataError(f'is a broken symlink (to {os.readlink(path)})', path=path,
                                field='symlink')
        if not _inside(target, root):
            raise MetadataError(f'points outside the BIDS dataset (to {target}); copy the '
                                'file into the dataset (cp -L) or mount its target inside it',
                                path=path, field='symlink')
        if not target.is_file():
            raise MetadataError('is not a regular file', path=path, field='file')


def _invalid_json_of(run: AslRun, bids_root: Path, invalid: dict) -> MetadataError | None:
    """The error of an unreadable JSON that applies to the run: an ASL or M0 sidecar in the
    run's folder or a parent (inheritance principle)."""
    folders = {Path(os.path.abspath(f)).parent for f in (run.asl_file, run.m0_file) if f}
    for path, error in invalid.items():
        if not path.name.endswith(('asl.json', 'm0scan.json')):
            continue  # participants.json, anat sidecars, ...: not this run's metadata
        where = Path(os.path.abspath(path)).parent
        if any(_inside(folder, where) for folder in folders):
            return error
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
    invalid = getattr(layout, 'invalid_json', {})
    for bids_file in sorted(layout.get(**query), key=lambda f: f.path):
        asl_file = Path(bids_file.path)
        entities = {k: v for k, v in bids_file.get_entities().items() if k in ENTITY_ORDER}
        ctx = asl_file.parent / (asl_file.name.split('_asl.nii')[0] + '_aslcontext.tsv')
        run = AslRun(asl_file=asl_file, aslcontext_file=ctx if os.path.lexists(ctx) else None,
                     m0_file=None, metadata={}, m0_metadata=None, entities=entities)
        try:  # a problem of one run is reported with the others, not for the whole dataset
            check_run_files(bids_root, run)
            run.metadata = _metadata(layout, asl_file)
            if run.metadata.get('M0Type') == 'Separate':
                run.m0_file, run.m0_metadata = _find_m0(layout, bids_root, asl_file, entities)
            check_run_files(bids_root, run)
            bad_json = _invalid_json_of(run, bids_root, invalid)
            if bad_json is not None:
                raise bad_json
        except MetadataError as exc:
            run.problem = exc
        runs.append(run)
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
