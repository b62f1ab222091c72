"""--compare-sessions on two sessions of ASLDRO's noisy pCASL subject with a known change:
session "post" has CBF × 1.2 everywhere and, in a 15 mm sphere, a further × 0.7."""

import json
import shutil

import nibabel as nb
import numpy as np
import pytest

from conftest import ASLDRO, assert_every_file_is_named, run_cli

pytestmark = [pytest.mark.integration,
              pytest.mark.needs_data(ASLDRO)]
SRC = 'pcasl1pldnoisy'
TPL = 'MNI152NLin2009aSym'
FOCUS_MM = np.array([-40.0, -20.0, 40.0])
DESC = 'postMinusbase'


def _write_session(bids, session, factor_map):
    src = ASLDRO / f'sub-{SRC}' / 'perf'
    perf = bids / 'sub-01' / f'ses-{session}' / 'perf'
    perf.mkdir(parents=True)
    stem = f'sub-01_ses-{session}'
    for suffix in ('asl.json', 'aslcontext.tsv', 'm0scan.nii.gz'):
        shutil.copy(src / f'sub-{SRC}_{suffix}', perf / f'{stem}_{suffix}')
    m0 = json.loads((src / f'sub-{SRC}_m0scan.json').read_text())
    m0['IntendedFor'] = [f'bids::sub-01/ses-{session}/perf/{stem}_asl.nii.gz']
    (perf / f'{stem}_m0scan.json').write_text(json.dumps(m0))
    img = nb.load(src / f'sub-{SRC}_asl.nii.gz')
    data = img.get_fdata()
    types = (src / f'sub-{SRC}_aslcontext.tsv').read_text().split()[1:]
    for k in range(0, len(types), 2):  # control, label pairs: ΔM × factor
        control, label = data[..., k], data[..., k + 1]
        data[..., k + 1] = control - factor_map * (control - label)
    nb.save(nb.Nifti1Image(data, img.affine, img.header), perf / f'{stem}_asl.nii.gz')
    return img


@pytest.fixture(scope='module')
def compared(tmp_path_factory):
    root = tmp_path_factory.mktemp('sessions')
    bids = root / 'bids'
    bids.mkdir()
    shutil.copy(ASLDRO / 'dataset_description.json', bids)
    img = nb.load(ASLDRO / f'sub-{SRC}' / 'perf' / f'sub-{SRC}_asl.nii.gz')
    ijk = np.indices(img.shape[:3]).reshape(3, -1)
    world = (img.affine[:3, :3] @ ijk + img.affine[:3, 3:4]).reshape(3, *img.shape[:3])
    sphere = np.linalg.norm(world - FOCUS_MM[:, None, None, None], axis=0) <= 15
    _write_session(bids, 'base', np.ones(img.shape[:3]))
    _write_session(bids, 'post', np.where(sphere, 1.2 * 0.7, 1.2))
    code = run_cli(bids, root / 'out', 'participant', '--no-motion-correction',
                   '--atlases', 'AAL', '--compare-sessions', 'post', 'base',
                   '--skip-bids-validation', '-w', root / 'work', anatomy=True)
    assert code == 0
    return root / 'out' / 'sub-01' / 'perf', sphere


def test_every_file_written_is_named_by_the_table(compared):
    """Both sessions' outputs and the comparison's parse back through bids_asl.io.naming."""
    perf = compared[0]
    assert assert_every_file_is_named(perf.parents[1]) > 60


def _tpl(perf, desc):
    return nb.load(perf / f'sub-01_space-{TPL}_desc-{desc}_cbf.nii.gz').get_fdata()


def test_percent_map_recovers_the_global_and_the_focal_change(compared):
    perf, _ = compared
    percent = _tpl(perf, f'{DESC}Percent')
    img = nb.load(perf / f'sub-01_space-{TPL}_desc-{DESC}Percent_cbf.nii.gz')
    ijk = np.indices(percent.shape).reshape(3, -1)
    world = (img.affine[:3, :3] @ ijk + img.affine[:3, 3:4]).reshape(3, *percent.shape)
    dist = np.linalg.norm(world - FOCUS_MM[:, None, None, None], axis=0)
    defined = percent != 0
    # CBF is linear in ΔM and resampling is linear: the ratio is exact away from the edge
    assert np.median(percent[defined & (dist > 25)]) == pytest.approx(20.0, abs=0.5)
    assert np.median(percent[defined & (dist < 8)]) == pytest.approx(-16.0, abs=1.5)
    diff = _tpl(perf, DESC)
    base = nb.load(perf.parent / 'ses-base' / 'perf' /
                   f'sub-01_ses-base_space-{TPL}_cbf.nii.gz').get_fdata()
    post = nb.load(perf.parent / 'ses-post' / 'perf' /
                   f'sub-01_ses-post_space-{TPL}_cbf.nii.gz').get_fdata()
    both = (base != 0) & (post != 0)
    assert np.allclose(diff[both], (post - base)[both], atol=1e-3)


def test_z_map_and_clusters_use_the_runs_own_noise(compared):
    perf, _ = compared
    z = _tpl(perf, f'{DESC}Z')
    diff = _tpl(perf, DESC)
    se_a = nb.load(perf.parent / 'ses-post' / 'perf' /
                   f'sub-01_ses-post_space-{TPL}_desc-stderr_cbf.nii.gz').get_fdata()
    se_b = nb.load(perf.parent / 'ses-base' / 'perf' /
                   f'sub-01_ses-base_space-{TPL}_desc-stderr_cbf.nii.gz').get_fdata()
    ok = (se_a > 0) & (se_b > 0) & (diff != 0)
    assert np.allclose(z[ok], diff[ok] / np.sqrt(se_a[ok] ** 2 + se_b[ok] ** 2), rtol=1e-4)
    rows = (perf / f'sub-01_space-{TPL}_desc-{DESC}_clusters.tsv').read_text().splitlines()
    assert rows[0].split('\t')[:2] == ['cluster', 'direction']


def test_regional_change_table(compared):
    perf, _ = compared
    lines = (perf / f'sub-01_space-{TPL}_seg-AAL_desc-{DESC}_cbf.tsv').read_text().splitlines()
    header = lines[0].split('\t')
    rows = [dict(zip(header, ln.split('\t'), strict=True)) for ln in lines[1:]]
    far = {r['region']: float(r['percent']) for r in rows if r['percent'] != 'n/a'}
    assert np.median(list(far.values())) == pytest.approx(20.0, abs=1.0)
    assert far['Postcentral'] < 20.0  # holds part of the focus


def test_subject_report_shows_the_comparison(compared):
    """The report is written after the comparison (same invocation): its section holds the
    cluster and regional change tables with the values of the files."""
    from markupsafe import escape

    from bids_asl.report.render import format_number

    perf, _ = compared
    page = (perf.parent.parent / 'sub-01.html').read_text(encoding='utf-8')
    section = page.split('<section id="comparisons">')[1].split('</section>')[0]
    assert f'<h3 id="cmp-sub-01-{DESC}">sub-01: ses-post minus ses-base</h3>' in section
    assert section.count('<img src="data:image/png;base64,') == 2  # percent and z maps

    def row_html(row):
        return '<tr>' + ''.join(f'<td>{escape(format_number(v))}</td>' for v in row) + '</tr>'

    lines = (perf / f'sub-01_space-{TPL}_desc-{DESC}_clusters.tsv').read_text().splitlines()
    for line in lines[1:]:
        assert row_html(line.split('\t')) in section
    if len(lines) == 1:  # this noisy pair has none at |z| >= 3 and 400 mm3
        assert 'No cluster with |z| ≥ 3 of at least 400 mm³.' in section
    lines = (perf / f'sub-01_space-{TPL}_seg-AAL_desc-{DESC}_cbf.tsv').read_text().splitlines()
    assert f'<summary>AAL ({len(lines) - 1} regions)</summary>' in section
    postcentral = next(ln.split('\t') for ln in lines if '\tPostcentral\t' in ln)
    assert row_html(postcentral[1:]) in section  # without the atlas column


def test_normalised_comparison_removes_the_global_change(compared):
    """Runs last: rewrites the comparison with --compare-normalise's computation."""
    perf, _ = compared
    from bids_asl.clinical.sessions import compare_sessions

    out = perf.parent.parent
    compare_sessions(out, 'post', 'base', normalise=True, z_threshold=3.0, min_volume_mm3=400)
    percent = _tpl(perf, f'{DESC}Percent')
    sidecar = json.loads((perf / f'sub-01_space-{TPL}_desc-{DESC}Percent_cbf.json').read_text())
    assert sidecar['GlobalNormalisation'] is True
    assert 1 / 1.25 < sidecar['GlobalScaleAppliedToA'] < 1 / 1.15
    assert abs(np.median(percent[percent != 0])) < 3.0
    img = nb.load(perf / f'sub-01_space-{TPL}_desc-{DESC}Percent_cbf.nii.gz')
    ijk = np.indices(percent.shape).reshape(3, -1)
    world = (img.affine[:3, :3] @ ijk + img.affine[:3, 3:4]).reshape(3, *percent.shape)
    near = (np.linalg.norm(world - FOCUS_MM[:, None, None, None], axis=0) < 8) & (percent != 0)
    scale = sidecar['GlobalScaleAppliedToA']
    assert np.median(percent[near]) == pytest.approx(100 * (1.2 * 0.7 * scale - 1), abs=1.5)
