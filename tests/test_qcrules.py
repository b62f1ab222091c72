"""QC thresholds and exclusion rules; the thresholds are the ones documented in docs/qc.md."""

from pathlib import Path

import pytest

from bids_asl import qcrules
from bids_asl.io.qctable import QC_COLUMNS

DOCS = Path(__file__).resolve().parents[1] / 'docs'


def test_flags_at_and_beyond_the_thresholds():
    assert qcrules.flag('mean_fd', 0.55) == 'pass'
    assert qcrules.flag('mean_fd', 0.56) == 'warn'
    assert qcrules.flag('qei', '0.69') == 'warn' and qcrules.flag('qei', 0.7) == 'pass'
    assert qcrules.flag('gm_wm_ratio', 1.4) == 'warn'
    assert qcrules.flag('gm_wm_ratio', 4.1) == 'warn'
    assert qcrules.flag('gm_wm_ratio', 2.5) == 'pass'
    assert qcrules.flag('qei', 'n/a') == 'n/a' and qcrules.flag('deltam_tsnr', 3) == 'n/a'
    assert qcrules.flag('mean_fd', float('nan')) == 'n/a'


def test_derived_rejected_fraction():
    row = {'n_deltam_volumes': '10', 'n_deltam_rejected_score': '3'}
    assert qcrules.derived_metrics(row)['score_rejected_fraction'] == pytest.approx(0.3)
    assert qcrules.derived_metrics({})['score_rejected_fraction'] is None


def test_rules_parse_and_match():
    rule = qcrules.parse_rule('mean_fd > 0.5', QC_COLUMNS)
    assert (rule.metric, rule.op, rule.value, str(rule)) == ('mean_fd', '>', 0.5, 'mean_fd>0.5')
    assert rule.matches({'mean_fd': '0.6'}) and not rule.matches({'mean_fd': '0.5'})
    assert not rule.matches({'mean_fd': 'n/a'})  # n/a never excludes
    assert qcrules.parse_rule('qei<=0.7').matches({'qei': 0.7})
    rules = [rule, qcrules.parse_rule('qei<0.7'),
             qcrules.parse_rule('score_rejected_fraction>0.25')]
    row = {'mean_fd': '0.9', 'qei': '0.5', 'n_deltam_volumes': '4',
           'n_deltam_rejected_score': '2'}
    assert qcrules.exclusion_reasons(row, rules) == ['mean_fd>0.5', 'qei<0.7',
                                                     'score_rejected_fraction>0.25']
    for bad in ('mean_fd', 'mean_fd=1', 'mean_fd>abc', 'mean_fd>nan'):
        with pytest.raises(ValueError):
            qcrules.parse_rule(bad)
    with pytest.raises(ValueError, match='unknown QC metric'):
        qcrules.parse_rule('fd>1', QC_COLUMNS)


def test_thresholds_are_documented():
    text = (DOCS / 'qc.md').read_text()
    for t in qcrules.THRESHOLDS.values():
        assert f'| `{t.metric}` | {t.describe()} | {t.source} |' in text, t.metric
