"""Derivative URIs, JSON sidecars and ``dataset_description.json``: all written atomically.

File names come from the naming table, :mod:`bids_asl.io.naming`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from bids_asl.errors import OutputError
from bids_asl.io.images import atomic_write_bytes

#: Suffixes BIDS does not define yet (ASLPrep's de-facto names); listed in ``.bidsignore``.
UNDEFINED_SUFFIX_PATTERNS = ('*_cbf.nii.gz', '*_cbf.json', '*_deltam.nii.gz', '*_deltam.json',
                             '*_att.nii.gz', '*_att.json', '*_abv.nii.gz', '*_abv.json',
                             '*_rsquared.nii.gz', '*_rsquared.json', '*_cbf.tsv',
                             '**/perf/*_mask.nii.gz', '**/perf/*_mask.json',
                             '**/perf/*_timeseries.tsv', '**/perf/*_timeseries.json',
                             # anatomy: ANTs transforms, ASL-grid tissue fractions, ATT tables
                             '*_xfm.txt', '*_xfm.nii.gz', '**/perf/*_probseg.nii.gz',
                             '**/perf/*_probseg.json', '*_att.tsv', '*_clusters.tsv',
                             '*_clusters.json')
#: Provenance folders (settings TOML, crash reports), not BIDS files.
LOG_PATTERNS = ('logs', 'sub-*/log')
#: HTML reports and the group level's folder (BIDS has no group-level derivative layout).
REPORT_PATTERNS = ('sub-*.html', 'group.html', 'group')


def check_inside(output_dir, path) -> Path:
    """``path``, after refusing one that resolves outside ``output_dir`` (``..``, a symlinked
    folder planted in the output dataset)."""
    root = Path(output_dir).resolve()
    target = Path(path)
    try:
        # the deepest existing folder decides where a new file really lands
        parent = next(p for p in target.parents if p.exists())
        (parent.resolve() / target.relative_to(parent)).relative_to(root)
        if '..' in target.relative_to(Path(output_dir)).parts:
            raise ValueError
    except ValueError:
        raise OutputError('resolves outside the output directory (".." or a symlink); '
                          'refusing to write there', path=path, field='output_dir') from None
    return target


def raw_uri(bids_dir, path) -> str:
    """BIDS URI of a raw file: ``bids:raw:sub-01/perf/sub-01_asl.nii.gz``.

    Symlinks are not followed (a DataLad file points into ``.git/annex``: its name is the link).
    """
    try:
        rel = Path(os.path.abspath(path)).relative_to(os.path.abspath(bids_dir))
    except ValueError:
        rel = Path(path).resolve().relative_to(Path(bids_dir).resolve())
    return 'bids:raw:' + rel.as_posix()


def derivative_uri(output_dir, path) -> str:
    """BIDS URI of a file of this derivative dataset: ``bids::sub-01/perf/…``."""
    return 'bids::' + Path(path).resolve().relative_to(Path(output_dir).resolve()).as_posix()


def json_bytes(data: dict) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + '\n').encode()


def write_json(path, data: dict) -> Path:
    return atomic_write_bytes(path, json_bytes(data))


def write_if_changed(path, data: bytes) -> Path:
    """Atomic write that leaves an identical existing file alone (safe for concurrent runs)."""
    path = Path(path)
    try:
        if path.read_bytes() == data:
            return path
    except OSError:
        pass
    return atomic_write_bytes(path, data)


def dataset_description(bids_dir, version: str) -> dict:
    source = Path(bids_dir).resolve()
    generated = {'Name': 'bids-asl', 'Version': version,
                 'CodeURL': 'https://github.com/bids-asl/bids_asl'}
    container = os.environ.get('BIDS_ASL_CONTAINER')
    if container:
        generated['Container'] = {'Type': container.split(':', 1)[0],
                                  'Tag': container.split(':', 1)[-1]}
    return {
        'Name': 'bids-asl derivatives',
        'BIDSVersion': '1.10.0',
        'DatasetType': 'derivative',
        'GeneratedBy': [generated],
        'SourceDatasets': [{'URL': source.as_uri()}],
        'DatasetLinks': {'raw': source.as_uri()},
    }


def init_output_dataset(output_dir, bids_dir, version: str) -> None:
    """Write ``dataset_description.json`` and ``.bidsignore`` (idempotent, atomic)."""
    out = Path(output_dir)
    write_if_changed(out / 'dataset_description.json',
                     json_bytes(dataset_description(bids_dir, version)))
    ignore = '# ASL derivative suffixes not (yet) defined by BIDS; see docs/outputs.md\n'
    ignore += ''.join(f'{p}\n' for p in UNDEFINED_SUFFIX_PATTERNS + LOG_PATTERNS
                      + REPORT_PATTERNS)
    write_if_changed(out / '.bidsignore', ignore.encode())
