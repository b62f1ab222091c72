import os
from pathlib import Path

import numpy as np
import pytest

# the data-dependent tests: skipped without ../shared/data, failed with BIDS_ASL_REQUIRE_DATA=1
from shareddata import (  # noqa: F401 - pytest hooks, and names the tests import from here
    ASLDRO,
    SHARED,
    pytest_configure,
    pytest_runtest_setup,
    require_data,
)

os.environ.setdefault('NIPYPE_NO_ET', '1')

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture
def rng():
    return np.random.default_rng(20261123)


def run_cli(*args, anatomy: bool = False) -> int:
    """``bids-asl`` in-process. Anatomy (T1w segmentation, registrations, regional tables) is
    off unless asked for: it is tested by tests/integration/test_anatomy.py and
    tests/integration/test_sessions_compare.py, and would add ~10-60 s to every other CLI test."""
    from bids_asl.cli.run import main

    extra = [] if anatomy or '--no-anatomy' in args else ['--no-anatomy']
    return main([str(a) for a in args] + extra)


GROUP_LEVELS = {'a': 60.0, 'b': 45.0, 'c': 75.0}  # synthetic GM CBF of each subject


def _split_sessions(bids, label, sessions):
    """Move ``sub-<label>``'s run into one copy per session (relative IntendedFor)."""
    import json
    import shutil

    src = bids / f'sub-{label}' / 'perf'
    for ses in sessions:
        dst = bids / f'sub-{label}' / f'ses-{ses}' / 'perf'
        dst.mkdir(parents=True)
        stem = f'sub-{label}_ses-{ses}'
        for f in src.iterdir():
            shutil.copy(f, dst / f.name.replace(f'sub-{label}', stem))
        m0 = dst / f'{stem}_m0scan.json'
        meta = json.loads(m0.read_text())
        meta['IntendedFor'] = f'ses-{ses}/perf/{stem}_asl.nii.gz'
        m0.write_text(json.dumps(meta))
    shutil.rmtree(src)


@pytest.fixture(scope='session')
def group_dataset(tmp_path_factory):
    """Three synthetic subjects (sub-a with two sessions) and one broken one, through the
    participant level (exit 65 for the broken one), plus anatomy outputs for every run written
    by the anatomy writers from small arrays (tests/anatwriters.py).

    Returns (bids, out, values): values[prefix] = what was written for that run.
    """
    import json

    from anatwriters import add_anatomy, add_t1w

    from bids_asl.synthetic import Variant, make_dataset

    root = tmp_path_factory.mktemp('group')
    variants = [Variant(label=k, cbf_gm=v, n_pairs=3) for k, v in GROUP_LEVELS.items()]
    bids = make_dataset(root / 'bids', variants=(*variants, Variant(label='bad')),
                        shape=(12, 13, 8))
    _split_sessions(bids, 'a', ('1', '2'))
    (bids / 'participants.tsv').write_text(
        'participant_id\tage\tgroup\n' + 'sub-a\t31\tcontrol\nsub-b\t45\tpatient\n'
        'sub-c\t52\tcontrol\nsub-bad\t60\tpatient\n')
    sidecar = bids / 'sub-bad/perf/sub-bad_asl.json'
    meta = json.loads(sidecar.read_text())
    meta['RepetitionTimePreparation'] = 0
    sidecar.write_text(json.dumps(meta))
    out = root / 'out'
    assert run_cli(bids, out, 'participant', '--skip-bids-validation', '--no-motion-correction',
                   '-w', root / 'work') == 65
    rng = np.random.default_rng(7)
    values = {}
    for perf in sorted(out.glob('sub-*/**/perf')):
        for cbf in sorted(perf.glob('*_cbf.json')):
            prefix = cbf.name[:-len('_cbf.json')]
            if '_desc-' in prefix or '_space-' in prefix:
                continue
            subject = prefix.split('_')[0][4:]
            entities = {'subject': subject}
            if '_ses-' in prefix:
                entities['session'] = prefix.split('_ses-')[1].split('_')[0]
            values[prefix] = add_anatomy(out, root / 'anatwork' / prefix, prefix, entities,
                                         rng, level=GROUP_LEVELS[subject],
                                         template_mask=subject == 'b')
    add_t1w(out, bids, root / 'anatwork' / 't1w', 'b', rng)
    return bids, out, values


def truth_tissue_maps(folder: Path, sub: str) -> np.ndarray:
    """Write the ASLDRO ground-truth segmentation of ``sub-<sub>`` as binary GM/WM/CSF
    probability maps for ``--tissue-maps`` (``folder/sub-<sub>/sub-<sub>_label-*_probseg``);
    returns the label image (1 GM, 2 WM, 3 CSF)."""
    import nibabel as nb

    require_data(ASLDRO)
    dseg = nb.load(ASLDRO / f'derivatives/asldro-groundtruth/sub-{sub}/perf/'
                   f'sub-{sub}_desc-groundtruth_dseg.nii.gz')
    labels = np.asarray(dseg.dataobj)
    maps = folder / f'sub-{sub}'
    maps.mkdir(parents=True)
    for value, name in ((1, 'GM'), (2, 'WM'), (3, 'CSF')):
        nb.save(nb.Nifti1Image((labels == value).astype(np.float32), dseg.affine),
                maps / f'sub-{sub}_label-{name}_probseg.nii.gz')
    return labels


def clone_dro_subject(root: Path, label: str, source: str = 'pcasl1pld') -> Path:
    """Copy the ASLDRO subject ``sub-<source>`` (perf only) into the BIDS dataset ``root`` as
    ``sub-<label>``, renaming files and IntendedFor; returns the file stem ``.../sub-<label>_``.
    Creates ``root`` with the DRO ``dataset_description.json`` when needed."""
    require_data(ASLDRO)
    root.mkdir(parents=True, exist_ok=True)
    if not (root / 'dataset_description.json').exists():
        (root / 'dataset_description.json').write_bytes(
            (ASLDRO / 'dataset_description.json').read_bytes())
    perf = root / f'sub-{label}' / 'perf'
    perf.mkdir(parents=True)
    for src in (ASLDRO / f'sub-{source}' / 'perf').iterdir():
        dst = perf / src.name.replace(f'sub-{source}', f'sub-{label}')
        data = src.read_bytes()
        if src.suffix == '.json':
            data = data.replace(f'sub-{source}'.encode(), f'sub-{label}'.encode())
        dst.write_bytes(data)
    return perf / f'sub-{label}_'


def assert_every_file_is_named(out: Path) -> int:
    """Every file under the derivative dataset ``out`` (but its dataset files, logs and HTML
    reports) is parsed by the naming table, and every sidecar's ``Units`` is the table's where
    the table gives them; returns the number of files checked."""
    import json

    from bids_asl.io import naming

    checked, unnamed, wrong_units = 0, [], []
    for path in sorted(p for p in out.rglob('*') if p.is_file()):
        rel = path.relative_to(out)
        if (rel.as_posix() in ('dataset_description.json', '.bidsignore')
                or rel.parts[0] == 'logs' or 'log' in rel.parts[:-1]
                or path.suffix == '.html'):
            continue
        checked += 1
        parsed = naming.parse(path)
        if parsed is None:
            unnamed.append(rel.as_posix())
            continue
        units = parsed.output.units_for(parsed.values)
        if parsed.is_sidecar and units is not None:
            got = json.loads(path.read_text()).get('Units')
            if got != units:
                wrong_units.append((rel.as_posix(), got, units))
    assert unnamed == [] and wrong_units == []
    return checked
