"""Sessions, acquisitions and runs: discovery, --session-label and derivative names."""

import json
import shutil

from bids_asl.synthetic import Variant, make_dataset

from conftest import run_cli


def _with_sessions(tmp_path):
    bids = make_dataset(tmp_path / 'bids', variants=(Variant(label='s'),), shape=(12, 13, 8))
    src = bids / 'sub-s' / 'perf'
    names = {'pre': 'sub-s_ses-pre_run-1', 'post': 'sub-s_ses-post_acq-fast_run-2'}
    for ses, stem in names.items():
        dst = bids / 'sub-s' / f'ses-{ses}' / 'perf'
        dst.mkdir(parents=True)
        for f in src.iterdir():
            shutil.copy(f, dst / f.name.replace('sub-s', stem))
        m0 = dst / f'{stem}_m0scan.json'
        meta = json.loads(m0.read_text())
        # relative (subject-folder) IntendedFor form for one session, BIDS URI for the other
        meta['IntendedFor'] = (f'ses-{ses}/perf/{stem}_asl.nii.gz' if ses == 'pre'
                               else f'bids::sub-s/ses-{ses}/perf/{stem}_asl.nii.gz')
        m0.write_text(json.dumps(meta))
    shutil.rmtree(src)
    return bids, names


def test_session_selection_and_names(tmp_path):
    bids, names = _with_sessions(tmp_path)
    out = tmp_path / 'out'
    assert run_cli(bids, out, 'participant', '--session-label', 'ses-post') == 0
    post = out / 'sub-s' / 'ses-post' / 'perf' / f'{names["post"]}_cbf.nii.gz'
    assert post.exists()
    assert not (out / 'sub-s' / 'ses-pre').exists()
    meta = json.loads(post.with_name(post.name.replace('.nii.gz', '.json')).read_text())
    assert meta['Sources'][1] == f'bids:raw:sub-s/ses-post/perf/{names["post"]}_m0scan.nii.gz'
    assert run_cli(bids, out, 'participant') == 0
    assert (out / 'sub-s/ses-pre/perf' / f'{names["pre"]}_desc-brain_mask.nii.gz').exists()
