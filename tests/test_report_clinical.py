"""Subject-report sections of the clinical outputs (issue #9): the lesion table of a run and the
session comparisons of a subject, rendered from a tiny derivative folder (tests/fakeclinical.py,
written by the pipeline's own writers)."""

import base64
import html
import re
from dataclasses import replace

import numpy as np
import pytest

from bids_asl.io import collect
from bids_asl.report.subject import write_subject_report

from conftest import assert_every_file_is_named
from fakeclinical import GRID, TPL, save, write_lesions, write_run, write_sessions


def _rows_of(page, table_class):
    """Cell texts of each body row of the first table of that class."""
    table = re.search(rf'<table class="{table_class}">(.*?)</table>', page, re.S).group(1)
    body = table.split('<tbody>')[1]
    return [[html.unescape(c) for c in re.findall(r'<td>(.*?)</td>', row)]
            for row in re.findall(r'<tr[^>]*>(.*?)</tr>', body, re.S)]


def _headers_of(page, table_class):
    table = re.search(rf'<table class="{table_class}">(.*?)</table>', page, re.S).group(1)
    return [html.unescape(h) for h in re.findall(r'<th>(.*?)</th>', table)]


@pytest.fixture
def report(tmp_path):
    out = tmp_path / 'out'
    rows = write_lesions(out)
    write_run(out, 'base')
    written = write_sessions(out)
    path = write_subject_report(out, 'p')
    assert_every_file_is_named(out)  # lesion and comparison outputs parse through the table
    return out, path.read_text(encoding='utf-8'), rows, written


def test_lesion_section_shows_each_row_with_units(report):
    _, page, rows, _ = report
    assert '<h3>Lesions</h3>' in page and 'sub-p_ses-base_desc-lesions_cbf.tsv' in page
    assert _headers_of(page, 'lesions') == [
        'region', 'voxels', 'volume (mm³)', 'mean CBF (mL/100g/min)',
        'median CBF (mL/100g/min)', 'SD of CBF (mL/100g/min)']
    table = _rows_of(page, 'lesions')
    assert len(table) == len(rows)  # every row of the file, in its order
    # lesion 1: 8 voxels of 2 x 2 x 3 mm, CBF 20..27: mean 23.5, SD of 0..7 (ddof 1) 2.449
    assert table[0] == ['lesion 1', '8', '96', '23.5', '23.5', '2.449']
    # a ring is named by its band; the ring around lesion 1 holds only CBF 40
    assert table[1][0] == 'ring 0–2 mm around lesion 1' and table[1][3:5] == ['40', '40']
    assert '<tr class="sub"><td>ring 0–2 mm around lesion 1</td>' in page
    lesion2 = table[[r[0] for r in table].index('lesion 2')]
    assert lesion2 == ['lesion 2', '1', '12', '12.5', '12.5', 'n/a']  # SD of one voxel
    everything = table[[r[0] for r in table].index('all lesions')]
    assert everything[1:4] == ['9', '108', f'{(sum(range(20, 28)) + 12.5) / 9:.4g}']
    names = [r[0] for r in table]
    assert names[-5:] == ['NAWM 0–5 mm from the nearest lesion', 'NAWM 5–10 mm from the '
                          'nearest lesion', 'NAWM 10–20 mm from the nearest lesion',
                          'NAWM > 20 mm from the nearest lesion', 'NAWM, all']
    nawm_all = table[-1]
    assert nawm_all[1] == str(12 * 12 * 10 - 9) and nawm_all[3] == '40'
    assert '<li>grid: ASL grid</li>' in page and '<li>rings: 0–2 mm, 2–4 mm</li>' in page
    assert '<li>NAWM bands: 0–5 mm, 5–10 mm, 10–20 mm, &gt; 20 mm</li>' in page


def test_comparison_section_shows_maps_clusters_and_regional_change(report):
    out, page, _, written = report
    assert any(w.endswith(f'sub-p_space-{TPL}_desc-postMinusbase_clusters.tsv')
               for w in written)
    assert '<a href="#comparisons">Session comparison</a>' in page
    section = page.split('<section id="comparisons">')[1].split('</section>')[0]
    assert '<h3 id="cmp-sub-p-postMinusbase">sub-p: ses-post minus ses-base</h3>' in section
    assert 'Not normalised' in section
    # two mosaics (percent change, z) as decodable PNGs
    uris = re.findall(r'<img src="data:image/png;base64,([^"]+)" alt="([^"]+)"', section)
    assert [alt for _, alt in uris] == ['CBF change, percent', 'z map']
    assert all(base64.b64decode(u).startswith(b'\x89PNG') for u, _ in uris)
    assert '±50 %' in section and '±5;' in section and '|z| ≥ 3 outlined' in section
    assert _headers_of(section, 'clusters') == [
        'cluster', 'direction', 'voxels', 'volume (mm³)', 'peak z', 'mean z', 'peak x (mm)',
        'peak y (mm)', 'peak z (mm)', 'change at the peak (%)']
    clusters = _rows_of(section, 'clusters')
    # 27 voxels of 8 mm³, +15 (centre +18) over SE sqrt(2); peak at voxel (4, 5, 3)
    mean_z = (26 * 15 + 18) / 27 / np.sqrt(2)
    assert clusters[0] == ['1', 'increase', '27', '216', f'{18 / np.sqrt(2):.4g}',
                           f'{mean_z:.4g}', '-2', '-2', '-2', '36']
    assert clusters[1][:4] == ['2', 'decrease', '8', '64']
    assert clusters[1][4] == f'{-10 / np.sqrt(2):.4g}' and clusters[1][-1] == '-20'
    assert _headers_of(section, 'regional-change') == [
        'region', 'mean ses-post (mL/100g/min)', 'mean ses-base (mL/100g/min)',
        'ses-post − ses-base (mL/100g/min)', 'change (%)', 'voxels ses-post',
        'voxels ses-base']
    assert _rows_of(section, 'regional-change') == [
        ['Precentral', '55', '50', '5', '10', '100', '100'],
        ['Frontal_Sup', '38', '40', '-2', '-5', '100', '100']]
    assert '<summary>AAL (2 regions)</summary>' in section
    # subject-level: not repeated in the runs
    assert page.count('id="cmp-') == 1


def test_report_is_byte_identical_when_rendered_again(report):
    out, page, _, _ = report
    again = write_subject_report(out, 'p').read_bytes()
    assert again == page.encode('utf-8')


def test_sections_absent_without_their_files(tmp_path):
    out = tmp_path / 'out'
    write_run(out, 'base')
    page = write_subject_report(out, 'p').read_text(encoding='utf-8')
    assert '<h3>Lesions</h3>' not in page
    assert 'id="comparisons"' not in page and 'Session comparison' not in page


def test_difference_map_and_undefined_z_when_percent_and_z_are_missing(tmp_path):
    out = tmp_path / 'out'
    write_sessions(out)
    perf = out / 'sub-p' / 'perf'
    (perf / f'sub-p_space-{TPL}_desc-postMinusbasePercent_cbf.nii.gz').unlink()
    save(np.zeros(GRID), perf / f'sub-p_space-{TPL}_desc-postMinusbaseZ_cbf.nii.gz')
    (perf / f'sub-p_space-{TPL}_desc-postMinusbase_clusters.tsv').write_text(
        'cluster\tdirection\n')
    page = write_subject_report(out, 'p').read_text(encoding='utf-8')
    section = page.split('<section id="comparisons">')[1].split('</section>')[0]
    assert re.findall(r'alt="([^"]+)"', section) == ['CBF difference']
    assert '±30 mL/100g/min' in section
    assert 'z map not defined' in section
    assert 'No cluster with |z| ≥ 3 of at least 40 mm³.' in section


def test_find_comparisons_by_file_name(tmp_path):
    perf = tmp_path / 'sub-p' / 'perf'
    perf.mkdir(parents=True)
    names = ['sub-p_run-2_space-{t}_desc-aMinusb_cbf.nii.gz',
             'sub-p_run-1_space-{t}_desc-aMinusb_cbf.nii.gz',
             'sub-p_run-1_space-{t}_desc-aMinusbPercent_cbf.nii.gz',
             'sub-p_run-1_space-{t}_desc-aMinusbZ_cbf.nii.gz',
             'sub-p_run-1_space-T1w_desc-aMinusb_cbf.nii.gz',  # T1w: not a comparison key
             'sub-p_run-1_space-{t}_desc-asymmetry_cbf.nii.gz',
             'sub-p_run-1_space-{t}_seg-AAL_desc-aMinusb_cbf.tsv',
             'sub-p_run-1_space-{t}_seg-AAL_desc-regional_cbf.tsv']
    for name in names:
        (perf / name.format(t=TPL)).touch()
    found = collect.find_comparisons(tmp_path, 'p')
    assert [(c.stem, c.desc) for c in found] == [('sub-p_run-1', 'aMinusb'),
                                                 ('sub-p_run-2', 'aMinusb')]
    assert found[0].map('Z').name == f'sub-p_run-1_space-{TPL}_desc-aMinusbZ_cbf.nii.gz'
    assert found[1].map('Percent') is None and found[0].clusters() is None
    assert list(found[0].regional_tables()) == ['AAL'] and found[1].regional_tables() == {}


def test_reports_follow_the_comparison_and_survive_its_crash(tmp_path, monkeypatch, capsys):
    """run_participant: the session comparison runs before the reports (so they show it), and
    a comparison that crashes costs one line and exit 70, not the reports."""
    from bids_asl.cli import participant, run
    from bids_asl.cli.parser import parse_args
    from bids_asl.cli.progress import Progress
    from bids_asl.errors import ExitCode
    from bids_asl.synthetic import Variant, make_dataset

    bids = make_dataset(tmp_path / 'bids', variants=(Variant(label='r', n_pairs=2),),
                        shape=(12, 13, 8))
    settings = parse_args([str(bids), str(tmp_path / 'out'), 'participant', '-w',
                           str(tmp_path / 'work'), '--skip-bids-validation',
                           '--no-motion-correction', '--no-anatomy'])
    settings = replace(settings, compare_sessions=('1', '2'))  # anatomy itself is not needed
    calls = []

    def crash(*args, **kwargs):
        calls.append('compare')
        raise ValueError('session A has no positive mean CBF in the common mask')

    def report(output_dir, subject, errors=()):
        calls.append('report')
        return output_dir / f'sub-{subject}.html'

    monkeypatch.setattr('bids_asl.clinical.sessions.compare_sessions', crash)
    monkeypatch.setattr('bids_asl.report.subject.write_subject_report', report)
    run.check_paths(replace(settings, compare_sessions=None))
    with run._private_temp(settings):
        code = participant.run_participant(settings, Progress(tty=False))
    assert calls == ['compare', 'report']
    assert code == ExitCode.SOFTWARE
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ': error:' in ln]
    assert errors == ['bids-asl: error: session comparison ses-1 minus ses-2 not written: '
                      'ValueError: session A has no positive mean CBF in the common mask']
