"""The README's first command: bids-asl-demo makes its own data and recovers the truth."""

import json

from bids_asl.cli.demo import compare, main
from bids_asl.io.validator import run_validator, validation_errors


def test_demo_recovers_known_cbf(tmp_path, capsys):
    assert main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert 'largest error' in out
    rows = compare(tmp_path / 'bids', tmp_path / 'derivatives')
    assert {(sub, tissue) for sub, tissue, _, _ in rows} == {
        ('sub-pasl2d', 'GM'), ('sub-pasl2d', 'WM'), ('sub-pcasl3d', 'GM'), ('sub-pcasl3d', 'WM')}
    for _, tissue, got, true in rows:
        assert true == (60.0 if tissue == 'GM' else 20.0)
        assert abs(got - true) / true < 1e-3
    # the synthetic raw dataset is valid BIDS
    assert validation_errors(run_validator(tmp_path / 'bids')) == []
    desc = json.loads((tmp_path / 'derivatives' / 'dataset_description.json').read_text())
    assert desc['DatasetType'] == 'derivative'
