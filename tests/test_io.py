import gzip
import json
from pathlib import Path

import nibabel as nb
import numpy as np
import pytest

from bids_asl.config import Settings
from bids_asl.errors import MetadataError
from bids_asl.io import derivatives, images
from bids_asl.io.layout import collect_asl_runs, load_layout
from bids_asl.io.metadata import validate_run
from bids_asl.io.quantparams import Overrides, resolve_constants
from bids_asl.synthetic import Variant, make_dataset

SHAPE = (12, 13, 8)


@pytest.mark.parametrize('key,prefix,values,expected', [
    ('cbf', 'sub-01', {}, 'sub-01/perf/sub-01_cbf.nii.gz'),
    ('cbf_timeseries', 'sub-01_ses-pre_acq-3d_run-2', {},
     'sub-01/ses-pre/perf/sub-01_ses-pre_acq-3d_run-2_desc-timeseries_cbf.nii.gz'),
    ('mask', 'sub-x', {}, 'sub-x/perf/sub-x_desc-brain_mask.nii.gz'),
    ('regional', 'sub-1_ses-2_run-3', {'atlas': 'AAL', 'measure': 'att'},
     'sub-1/ses-2/perf/sub-1_ses-2_run-3_space-MNI152NLin2009aSym_seg-AAL_desc-regional_att.tsv'),
    ('xfm_warp', 'sub-1', {}, 'sub-1/anat/sub-1_from-T1w_to-MNI152NLin2009aSym_mode-image_'
                             'desc-warp_xfm.nii.gz'),
    ('group_map', 'group', {'stat': 'sd', 'measure': 'cbf'},
     'group/group_space-MNI152NLin2009aSym_desc-sd_cbf.nii.gz'),
    ('normative_z', 'sub-1_ses-a', {},
     'group/normative/sub-1_ses-a_space-MNI152NLin2009aSym_desc-normativeZ_cbf.nii.gz'),
])
def test_derivative_path_table(tmp_path, key, prefix, values, expected):
    from bids_asl.io import naming

    got = naming.path_for(tmp_path, key, prefix, **values)
    assert got == tmp_path / expected
    parsed = naming.parse(got)
    assert (parsed.key, parsed.stem, parsed.is_sidecar) == (key, prefix, False)
    sidecar = naming.parse(naming.sidecar_of(got))
    assert (sidecar is not None and sidecar.key == key) == naming.OUTPUTS[key].sidecar


def test_uris(tmp_path):
    (tmp_path / 'raw' / 'sub-01' / 'perf').mkdir(parents=True)
    assert derivatives.raw_uri(tmp_path / 'raw', tmp_path / 'raw/sub-01/perf/sub-01_asl.nii.gz') \
        == 'bids:raw:sub-01/perf/sub-01_asl.nii.gz'
    assert derivatives.derivative_uri(tmp_path, tmp_path / 'sub-01/perf/a_mask.nii.gz') \
        == 'bids::sub-01/perf/a_mask.nii.gz'


def test_nifti_bytes_are_deterministic_and_atomic(tmp_path, rng):
    ref = nb.Nifti1Image(np.zeros((3, 4, 5), np.float32), np.diag([2.0, 2, 3, 1]))
    data = rng.normal(size=(3, 4, 5))
    a = images.save(data, ref, tmp_path / 'a.nii.gz')
    b = images.save(data, ref, tmp_path / 'b.nii.gz')
    assert a.read_bytes() == b.read_bytes()
    assert gzip.decompress(a.read_bytes())  # a valid gzip stream
    np.testing.assert_allclose(nb.load(a).get_fdata(), data.astype(np.float32))
    assert not list(tmp_path.glob('.*tmp'))  # no temporary file left behind


def test_dataset_description_and_bidsignore(tmp_path):
    derivatives.init_output_dataset(tmp_path / 'out', tmp_path, '1.2.3')
    desc = json.loads((tmp_path / 'out' / 'dataset_description.json').read_text())
    assert desc['DatasetType'] == 'derivative'
    assert desc['GeneratedBy'][0] == {'Name': 'bids-asl', 'Version': '1.2.3',
                                      'CodeURL': 'https://github.com/bids-asl/bids_asl'}
    assert desc['SourceDatasets'][0]['URL'] == tmp_path.resolve().as_uri()
    ignore = (tmp_path / 'out' / '.bidsignore').read_text().splitlines()
    assert '*_cbf.nii.gz' in ignore and 'sub-*/log' in ignore


def _dataset(tmp_path, **kw):
    return make_dataset(tmp_path / 'bids', variants=(Variant(label='a', **kw),), shape=SHAPE)


@pytest.mark.parametrize('intended', [
    'bids::sub-a/perf/sub-a_asl.nii.gz', 'perf/sub-a_asl.nii.gz', ['perf/sub-a_asl.nii.gz'],
])
def test_m0_found_through_either_intendedfor_form(tmp_path, intended):
    bids = _dataset(tmp_path)
    sidecar = bids / 'sub-a/perf/sub-a_m0scan.json'
    meta = json.loads(sidecar.read_text())
    meta['IntendedFor'] = intended
    sidecar.write_text(json.dumps(meta))
    (run,) = collect_asl_runs(load_layout(bids), ['a'])
    assert run.m0_file == bids / 'sub-a/perf/sub-a_m0scan.nii.gz'
    assert run.m0_metadata['RepetitionTimePreparation'] == 6.0


def test_inherited_sidecar_fields(tmp_path):
    bids = _dataset(tmp_path)
    sidecar = bids / 'sub-a/perf/sub-a_asl.json'
    meta = json.loads(sidecar.read_text())
    (bids / 'asl.json').write_text(json.dumps({'LabelingDuration': meta.pop('LabelingDuration')}))
    sidecar.write_text(json.dumps(meta))
    (run,) = collect_asl_runs(load_layout(bids))
    assert run.metadata['LabelingDuration'] == 1.8


def test_validate_run_expands_per_volume_fields(tmp_path):
    bids = _dataset(tmp_path, m0_type='Included')
    (run,) = collect_asl_runs(load_layout(bids))
    p = validate_run(run.asl_file, run.aslcontext_file, run.metadata)
    assert p.volume_types[0] == 'm0scan' and len(p.pld) == 9
    assert p.m0_tr == 6.0 and p.difference_plds == (1.8,) and not p.is_multi_delay


def test_constant_precedence(tmp_path):
    bids = _dataset(tmp_path, background_suppression=True, bs_pulses=4,
                    extra={'LabelingEfficiency': 0.8})
    (run,) = collect_asl_runs(load_layout(bids))
    p = validate_run(run.asl_file, run.aslcontext_file, run.metadata, m0_file=run.m0_file,
                     m0_metadata=run.m0_metadata)
    c = resolve_constants(p, Overrides())
    assert c['LabelingEfficiency'] == 0.8 and 'sidecar' in c['LabelingEfficiencySource']
    assert c['TotalLabelingEfficiency'] == pytest.approx(0.8 * 0.95 ** 4)
    assert c['BloodT1'] == 1.65 and c['PartitionCoefficient'] == 0.9
    c = resolve_constants(p, Overrides(labeling_efficiency=0.7, t1_blood=1.8,
                                       partition_coefficient=0.95))
    assert (c['LabelingEfficiency'], c['BloodT1'], c['PartitionCoefficient']) == (0.7, 1.8, 0.95)
    assert 'command line' in c['BloodT1Source']


def test_background_suppression_without_pulse_count_is_recorded(tmp_path):
    bids = _dataset(tmp_path, background_suppression=True, bs_pulses=None)
    (run,) = collect_asl_runs(load_layout(bids))
    p = validate_run(run.asl_file, run.aslcontext_file, run.metadata, m0_file=run.m0_file,
                     m0_metadata=run.m0_metadata)
    c = resolve_constants(p, Overrides())
    assert c['BackgroundSuppressionEfficiency'] == 1.0
    assert 'NO correction' in c['BackgroundSuppressionRule']


def test_metadata_error_names_file_and_field(tmp_path):
    bids = _dataset(tmp_path)
    (run,) = collect_asl_runs(load_layout(bids))
    meta = {**run.metadata, 'RepetitionTimePreparation': 0}
    with pytest.raises(MetadataError) as info:
        validate_run(run.asl_file, run.aslcontext_file, meta, m0_file=run.m0_file,
                     m0_metadata=run.m0_metadata)
    assert str(info.value).startswith(str(bids / 'sub-a/perf/sub-a_asl.json'))
    assert 'RepetitionTimePreparation' in str(info.value)


def test_settings_toml_round_trip(tmp_path):
    s = Settings(bids_dir=tmp_path, output_dir=tmp_path / 'o', analysis_level='participant',
                 participant_label=('01', '02'), t1_blood=1.7, run_uuid='abc', version='0.1.0')
    assert Settings.from_toml(s.to_toml()) == s
    assert 'hematocrit' not in s.to_toml()  # None is "not given"
    assert Path(s.effective_work_dir) == tmp_path / 'o' / '.work'


def test_qc_docs_list_every_column():
    from bids_asl.io.qctable import CONFOUND_COLUMNS, QC_COLUMNS

    text = (Path(__file__).parents[1] / 'docs' / 'qc.md').read_text()
    for column in (*QC_COLUMNS, *CONFOUND_COLUMNS):
        assert f'`{column}`' in text, column


def test_qc_row_formats_missing_values():
    from bids_asl.io.qctable import QC_COLUMNS, qc_row

    header, row = qc_row({'mean_fd': 0.1234567, 'qei': float('nan'), 'n_deltam_volumes': 4},
                         {'subject': '01'}, 'sub-01_run-1').splitlines()
    cells = dict(zip(header.split('\t'), row.split('\t'), strict=True))
    assert list(cells) == list(QC_COLUMNS)
    assert cells['participant_id'] == 'sub-01' and cells['session_id'] == 'n/a'
    assert cells['mean_fd'] == '0.123457' and cells['qei'] == 'n/a'
    assert cells['n_deltam_volumes'] == '4'
