"""CLI on the ASLDRO digital reference object (../shared/data/asldro).

Pure-tissue GM/WM means must equal the consensus formula evaluated independently on the raw
files (tests/reference.py) within 1 %.  The DRO generator uses the tissue T1 after arrival, so
the single-delay formula is not expected to return the ground-truth 60/20 (see
../shared/docs/asl-science.md §7): the yardstick is the formula, on the truth's tissue masks.
"""

import json

import nibabel as nb
import pytest

from bids_asl.io.validator import run_validator, validation_errors

from conftest import ASLDRO, run_cli
from reference import expected_cbf

pytestmark = [pytest.mark.integration,
              pytest.mark.needs_data(ASLDRO)]
SUBJECTS = ('pcasl1pld', 'pcasl1pldnoisy', 'pasl1ti', 'pcaslm0incl')


@pytest.fixture(scope='module')
def derivatives(tmp_path_factory):
    out = tmp_path_factory.mktemp('asldro') / 'out'
    code = run_cli(ASLDRO, out, 'participant', '--participant-label', *SUBJECTS,
                   '-w', out.parent / 'work')
    assert code == 0
    return out


def _truth(sub, key):
    return nb.load(ASLDRO / f'derivatives/asldro-groundtruth/sub-{sub}/perf/'
                   f'sub-{sub}_desc-groundtruth_{key}.nii.gz').get_fdata()


def pure_tissue(sub):
    cbf, att, t1 = _truth(sub, 'cbf'), _truth(sub, 'att'), _truth(sub, 'T1map')
    gm = (abs(cbf - 60) < 0.01) & (abs(att - 0.8) < 0.001) & (abs(t1 - 1.33) < 0.001)
    wm = (abs(cbf - 20) < 0.01) & (abs(att - 1.2) < 0.001) & (abs(t1 - 0.83) < 0.001)
    return gm, wm


@pytest.mark.parametrize('sub', SUBJECTS)
def test_pure_tissue_means_match_consensus_formula(derivatives, sub):
    gm, wm = pure_tissue(sub)
    assert gm.sum() == 1064 and wm.sum() == 1093
    got = nb.load(derivatives / f'sub-{sub}/perf/sub-{sub}_cbf.nii.gz').get_fdata()
    perf = ASLDRO / f'sub-{sub}/perf'
    m0_tr = None
    if (perf / f'sub-{sub}_m0scan.json').exists():
        m0_tr = json.loads((perf / f'sub-{sub}_m0scan.json').read_text())[
            'RepetitionTimePreparation']
    ref = expected_cbf(perf / f'sub-{sub}_asl.nii.gz', m0_file=perf / f'sub-{sub}_m0scan.nii.gz',
                       m0_tr=m0_tr)
    for tissue in (gm, wm):
        assert got[tissue].mean() == pytest.approx(ref[tissue].mean(), rel=0.01)
    # plausibility of the formula itself on this phantom (tissue-T1 model: below the 60/20 truth)
    assert 40 < got[gm].mean() < 60 and 8 < got[wm].mean() < 20


def test_mask_covers_the_brain(derivatives):
    gm, wm = pure_tissue('pcasl1pld')
    mask = nb.load(derivatives / 'sub-pcasl1pld/perf/sub-pcasl1pld_desc-brain_mask.nii.gz')
    assert mask.get_fdata()[gm | wm].mean() == 1.0


def test_derivatives_pass_bids_validator(derivatives):
    report = run_validator(derivatives)
    assert validation_errors(report) == []
    ignore = (derivatives / '.bidsignore').read_text()
    assert '*_cbf.nii.gz' in ignore
