"""The dataset is read the same wherever it sits: a parent folder named like a BIDS folder
(``perf``, ``anat``, ``sub-x``, ``ses-y``, ``acq-z``) must not change what pybids finds.

pybids (0.22) matches its entity patterns against the absolute path, so before the fix a
dataset under ``…/perf/`` lost its T1w silently (every file had ``datatype=perf``) and one under
``…/anat/`` had no ASL run ("no perf/*_asl runs found").
"""

import json
import re

import nibabel as nb
import numpy as np
import pytest

from bids_asl.io.layout import collect_asl_runs, find_t1w, load_layout, rooted_config
from bids_asl.synthetic import Variant, make_dataset
from bids_asl.synthetic_brain import Acquisition, Geometry, make_brain_dataset, t1w_image

from conftest import run_cli

PARENTS = ('perf', 'anat', 'sub-zz/ses-y', 'acq-q_run-3', 'func/dwi')
SMALL_T1W = Geometry(shape=(20, 24, 20), zooms=(8.0, 8.0, 8.0))


def _dataset(root):
    """Two subjects (one with a session and a separate M0), each with a T1w."""
    bids = make_dataset(root, variants=(Variant(label='a'), Variant(label='b',
                                                                     m0_type='Included')),
                        shape=(8, 9, 6))
    src, dst = bids / 'sub-b' / 'perf', bids / 'sub-b' / 'ses-1' / 'perf'
    dst.mkdir(parents=True)
    for f in sorted(src.iterdir()):
        f.rename(dst / f.name.replace('sub-b_', 'sub-b_ses-1_'))
    src.rmdir()
    for stem in ('sub-a/anat/sub-a', 'sub-b/ses-1/anat/sub-b_ses-1'):
        path = bids / f'{stem}_T1w.nii.gz'
        path.parent.mkdir(parents=True)
        nb.save(nb.Nifti1Image(t1w_image(SMALL_T1W).astype(np.float32), SMALL_T1W.affine),
                path)
    return bids


@pytest.mark.parametrize('parent', PARENTS)
def test_runs_m0_and_t1w_found_under_a_bids_named_parent(tmp_path, parent):
    bids = _dataset(tmp_path / parent / 'bids')
    layout = load_layout(bids)
    assert sorted(layout.get_subjects()) == ['a', 'b']
    assert layout.get_sessions() == ['1']
    runs = collect_asl_runs(layout)
    assert [(r.asl_file.relative_to(bids).as_posix(), r.entities, r.problem) for r in runs] == [
        ('sub-a/perf/sub-a_asl.nii.gz', {'subject': 'a'}, None),
        ('sub-b/ses-1/perf/sub-b_ses-1_asl.nii.gz', {'subject': 'b', 'session': '1'}, None)]
    assert runs[0].m0_file == bids / 'sub-a/perf/sub-a_m0scan.nii.gz'
    assert runs[0].m0_metadata['RepetitionTimePreparation'] == 6.0
    assert runs[1].m0_file is None
    # the sidecar of each run (not another's, not none): its own label type and delay
    for run in runs:
        assert run.metadata == json.loads(run.asl_file.with_name(
            run.asl_file.name.replace('.nii.gz', '.json')).read_text())
    assert find_t1w(layout, 'a') == bids / 'sub-a/anat/sub-a_T1w.nii.gz'
    assert find_t1w(layout, 'b') == bids / 'sub-b/ses-1/anat/sub-b_ses-1_T1w.nii.gz'
    # every entity pybids indexed for the T1w comes from inside the dataset
    (t1w,) = layout.get(subject='a', suffix='T1w', extension='.nii.gz')
    assert t1w.get_entities() == {'subject': 'a', 'datatype': 'anat', 'suffix': 'T1w',
                                  'extension': '.nii.gz'}


def test_relative_dataset_path_and_symlinked_parent(tmp_path, monkeypatch):
    real = _dataset(tmp_path / 'store' / 'perf' / 'bids')
    (tmp_path / 'anat').symlink_to(real.parent, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    for where in ('anat/bids', tmp_path / 'anat' / 'bids', 'store/perf/bids'):
        layout = load_layout(where)
        assert [r.entities['subject'] for r in collect_asl_runs(layout)] == ['a', 'b']
        assert find_t1w(layout, 'a') is not None and find_t1w(layout, 'b') is not None


def test_patterns_read_root_relative_paths_the_same():
    """Should pybids start matching root-relative paths (as its development version does), the
    rooted patterns must still find the same entities."""
    config = rooted_config('/data/sub-99/anat/bids')
    patterns = {e['name']: re.compile(e['pattern']) for e in config['entities']
                if e.get('pattern')}
    for path in ('/data/sub-99/anat/bids/sub-01/ses-2/perf/sub-01_ses-2_acq-x_run-1_asl.nii.gz',
                 '/sub-01/ses-2/perf/sub-01_ses-2_acq-x_run-1_asl.nii.gz'):
        found = {name: m.group(1) for name, p in patterns.items() if (m := p.search(path))}
        assert found == {'subject': '01', 'session': '2', 'acquisition': 'x', 'run': '1',
                         'datatype': 'perf', 'suffix': 'asl', 'extension': '.nii.gz'}, path
    # a folder above the root never matches, even when nothing inside the dataset does
    assert not patterns['datatype'].search('/data/sub-99/anat/bids/participants.tsv')
    assert not patterns['subject'].search('/data/sub-99/anat/bids/participants.tsv')


def test_cli_under_an_anat_folder_quantifies_the_asl(tmp_path):
    """The command line on a dataset under ``anat/`` (before the fix: exit 66, no ASL found).
    Realignment is off so that the CBF can be checked to 1e-4 against the truth (the right
    sidecar and M0 were read); the default command runs in the slow test below."""
    bids = make_dataset(tmp_path / 'anat' / 'bids', variants=(Variant(label='a'),),
                        shape=(12, 13, 8))
    out = tmp_path / 'out'
    assert run_cli(bids, out, 'participant', '--skip-bids-validation', '-w',
                   tmp_path / 'work', '--no-motion-correction') == 0
    cbf = nb.load(out / 'sub-a' / 'perf' / 'sub-a_cbf.nii.gz').get_fdata()
    truth_dir = bids / 'derivatives/groundtruth/sub-a/perf'
    truth = nb.load(truth_dir / 'sub-a_desc-groundtruth_cbf.nii.gz').get_fdata()
    brain = sum(nb.load(truth_dir / f'sub-a_desc-{t}_mask.nii.gz').get_fdata()
                for t in ('gm', 'wm')) > 0
    np.testing.assert_allclose(cbf[brain], truth[brain], rtol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize('parent', ['perf', 'anat'])
def test_default_command_uses_the_t1w_under_a_bids_named_parent(tmp_path, parent):
    """The default command (anatomy, realignment, default models on) on a brain-shaped subject
    stored under ``perf/`` or ``anat/``: the T1w is found and used, the CBF is right."""
    t1w = Geometry(shape=(64, 76, 64), zooms=(2.5, 2.5, 2.5), centre=(0.0, -18.0, 12.0),
                   pose=(2.0, -1.0, 3.0, 1.0, -2.0, 3.0))
    asl = Geometry(shape=(40, 48, 20), zooms=(4.5, 4.5, 7.0))
    bids = make_brain_dataset(tmp_path / parent / 'bids', [
        (Variant(label='x', n_pairs=3), Acquisition(geometry=asl), {'t1w': t1w})])
    out = tmp_path / 'out'
    assert run_cli(bids, out, 'participant', '-w', tmp_path / 'work', anatomy=True) == 0
    sidecar = json.loads((out / 'sub-x/perf/sub-x_cbf.json').read_text())
    assert sidecar['AnatomicalReference'] == 'T1w'
    assert (out / 'sub-x/anat/sub-x_desc-preproc_T1w.nii.gz').is_file()
    assert (out / 'sub-x/perf/sub-x_from-asl_to-T1w_mode-image_xfm.txt').is_file()
    cbf = nb.load(out / 'sub-x/perf/sub-x_cbf.nii.gz').get_fdata()
    truth_dir = bids / 'derivatives/groundtruth/sub-x/perf'
    truth = nb.load(truth_dir / 'sub-x_desc-groundtruth_cbf.nii.gz').get_fdata()
    for tissue in ('gm', 'wm'):
        mask = nb.load(truth_dir / f'sub-x_desc-{tissue}_mask.nii.gz').get_fdata() > 0
        assert np.nanmean(cbf[mask]) == pytest.approx(truth[mask].mean(), rel=0.06), tissue
