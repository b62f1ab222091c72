"""The group level on three ASLDRO participants (no anatomy yet: QC table, exclusion by QEI and
the reports); every number is compared with the per-run files."""

import csv
import json

import numpy as np
import pytest

from conftest import ASLDRO, run_cli, truth_tissue_maps

pytestmark = [pytest.mark.integration,
              pytest.mark.needs_data(ASLDRO)]
SUBJECTS = ('pcasl1pld', 'pcasl1pldnoisy', 'pasl1ti')


def _tsv(path):
    with open(path, newline='') as fobj:
        return list(csv.DictReader(fobj, delimiter='\t'))


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp('groupdro')
    for sub in SUBJECTS:  # ground-truth segmentation as tissue maps: QEI is defined
        truth_tissue_maps(root / 'maps', sub)
    out = root / 'out'
    assert run_cli(ASLDRO, out, 'participant', '--participant-label', *SUBJECTS,
                   '--tissue-maps', root / 'maps', '--no-motion-correction',
                   '--skip-bids-validation', '-w', root / 'work') == 0
    qei = {s: float(_tsv(out / f'sub-{s}/perf/sub-{s}_desc-qc_cbf.tsv')[0]['qei'])
           for s in SUBJECTS}
    cut = float(np.median(list(qei.values())))  # excludes exactly the lowest-QEI run
    assert run_cli(ASLDRO, out, 'group', '--exclude-qei-below', f'{cut!r}') == 0
    return out, qei, cut


def test_group_qc_table_equals_the_runs(run):
    out, qei, cut = run
    rows = _tsv(out / 'group' / 'group_desc-qc_cbf.tsv')
    assert [r['participant_id'] for r in rows] == sorted(f'sub-{s}' for s in SUBJECTS)
    for row in rows:
        sub = row['participant_id'][4:]
        own = _tsv(out / f'sub-{sub}/perf/sub-{sub}_desc-qc_cbf.tsv')[0]
        assert {k: row[k] for k in own} == own
        assert row['excluded'] == ('yes' if qei[sub] < cut else 'no')
    assert sum(r['excluded'] == 'yes' for r in rows) == 1
    meta = json.loads((out / 'group' / 'group_desc-qc_cbf.json').read_text())
    assert meta['ExclusionRules'] == [f'qei<{cut:g}']
    # no anatomy on this branch yet: no regional table, no template maps
    assert sorted(p.name for p in (out / 'group').iterdir()) == [
        'group_desc-qc_cbf.json', 'group_desc-qc_cbf.tsv']


def test_reports_exist_and_link(run):
    out, _, _ = run
    html = (out / 'group.html').read_text()
    for sub in SUBJECTS:
        assert f'href="sub-{sub}.html#run-sub-{sub}"' in html
        page = (out / f'sub-{sub}.html').read_text()
        assert 'tissue_maps' in page and '>pass<' in page
