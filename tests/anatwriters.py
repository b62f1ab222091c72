"""Anatomy outputs for the report and group-level tests, written by the pipeline's own writers
(``io.anatoutputs.write_run_anat`` and ``write_subject_anat``) from small arrays, so that the
names, columns and cells are exactly those of a real run; the regional and tissue tables are
computed by ``quant.regions`` from a small label image. The T1w registration itself is tested
in tests/integration/test_anatomy.py."""

import json
from dataclasses import asdict

import nibabel as nb
import numpy as np

from bids_asl.io.anatoutputs import write_run_anat, write_subject_anat
from bids_asl.quant import regions

GRID = (10, 12, 9)  # a small stand-in for the 2 mm template grid, identical for every subject
AFFINE = np.array([[-2.0, 0, 0, 9], [0, 2.0, 0, -12], [0, 0, 2.0, -8], [0, 0, 0, 1]])
ATLASES = {'AAL': {1: 'Precentral_L', 2: 'Precentral_R', 3: 'Frontal_Sup_L',
                   4: 'Frontal_Sup_R', 5: 'Cerebellum_3'},
           'HarvardOxford': {1: 'Frontal Pole', 2: "Heschl's Gyrus"}}


def _labels(names: dict) -> np.ndarray:
    """Label values in slabs along y, each across both hemispheres (x < 0 and x > 0)."""
    labels = np.zeros(GRID, np.int32)
    for i, index in enumerate(sorted(names)):
        labels[:, 2 * i:2 * i + 2, 1:-1] = index
    return labels


def _rows(rows) -> list[dict]:
    """quant rows as the anatomy interface hands them to the writer."""
    return [{k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(r).items()}
            for r in rows]


def _save(data, path, affine=AFFINE):
    nb.save(nb.Nifti1Image(np.asarray(data), affine), path)
    return str(path)


def add_anatomy(out, work, prefix, entities, rng, *, level=50.0, nan_voxels=3,
                anat_reference='T1w', template_mask=False):
    """A run's template-space CBF/ATT (and brain mask), regional and tissue tables and
    ASL-grid tissue fractions, written by ``write_run_anat``; returns the values written."""
    work.mkdir(parents=True, exist_ok=True)
    cbf = rng.normal(level, 8.0, GRID).astype(np.float32)
    flat = cbf.reshape(-1)
    flat[rng.choice(flat.size, nan_voxels, replace=False)] = np.nan
    att = rng.uniform(0.8, 1.6, GRID).astype(np.float32)
    mask = np.ones(GRID, np.uint8)
    if template_mask:  # the run's brain mask in template space: CBF outside it is not data
        mask[:2] = 0
    files = {'cbf_template': _save(cbf, work / f'{prefix}_cbf.nii.gz'),
             'att_template': _save(att, work / f'{prefix}_att.nii.gz')}
    if template_mask:
        files['mask_template'] = _save(mask, work / f'{prefix}_mask.nii.gz')
    perf = next(out.glob(f'sub-*/**/perf/{prefix}_cbf.json')).parent
    m0 = nb.load(perf / f'{prefix}_desc-calibration_m0scan.nii.gz')
    m0_data = np.asarray(m0.dataobj)
    gm = (m0_data > np.percentile(m0_data, 70)).astype(np.float32)
    for key, data in (('gm', gm), ('wm', 1 - gm), ('csf', np.zeros_like(gm))):
        files[key] = _save(data, work / f'{prefix}_{key}.nii.gz', m0.affine)
    hemi = regions.hemisphere_map(GRID, AFFINE)
    valid = (mask > 0) & np.isfinite(cbf)
    regional, tables = {}, {}
    for atlas, names in ATLASES.items():
        labels = _labels(names)
        for measure, data in (('cbf', cbf), ('att', att)):
            tables[f'{atlas}/{measure}'] = _rows(
                regions.regional_table(data, labels, names, hemi, valid))
        regional[atlas] = tables[f'{atlas}/cbf']
    grey = np.zeros(GRID)
    grey[:, :6] = 1.0
    tissue = _rows(regions.tissue_table(cbf, grey, 1 - grey, mask > 0, 0.7, 0.7))
    sidecar = perf / f'{prefix}_cbf.json'
    meta = json.loads(sidecar.read_text())
    write_run_anat(output_dir=out, entities=entities, prefix=prefix, files=files,
                   info={'AnatomicalReference': anat_reference}, regional=tables,
                   tissue=tissue, pvc_info=None, quant_sidecar=meta)
    # what the participant level records when anatomy ran (it ran with --no-anatomy here)
    meta['AnatomicalReference'] = anat_reference
    sidecar.write_text(json.dumps(meta, indent=2))
    return {'cbf': cbf.astype(np.float64), 'att': att.astype(np.float64),
            'mask': mask if template_mask else None, 'regional': regional, 'tissue': tissue}


def add_t1w(out, bids, work, subject, rng):
    """The subject's T1w outputs, written by ``write_subject_anat`` from a small T1w."""
    work.mkdir(parents=True, exist_ok=True)
    t1 = rng.normal(100, 5, (16, 18, 14)).astype(np.float32)
    t1[4:12, 4:14, 3:11] += 200
    gm = np.zeros(t1.shape, np.float32)
    gm[5:11, 5:13, 4:10] = 1.0
    raw = bids / f'sub-{subject}' / 'anat' / f'sub-{subject}_T1w.nii.gz'
    raw.parent.mkdir(parents=True, exist_ok=True)
    eye = np.eye(4)
    _save(t1, raw, eye)
    files = {'t1w_preproc': _save(t1, work / 't1w.nii.gz', eye),
             'brain_mask': _save((t1 > 150).astype(np.uint8), work / 'mask.nii.gz', eye),
             'gm': _save(gm, work / 'gm.nii.gz', eye),
             'wm': _save(1 - gm, work / 'wm.nii.gz', eye),
             'csf': _save(np.zeros_like(gm), work / 'csf.nii.gz', eye),
             'dseg': _save((gm > 0).astype(np.uint8), work / 'dseg.nii.gz', eye),
             't1w_template': _save(t1[:10, :12, :9], work / 'tpl.nii.gz'),
             'xfm_warp': _save(np.zeros((*GRID, 1, 3), np.float32), work / 'warp.nii.gz'),
             'xfm_inverse_warp': _save(np.zeros((16, 18, 14, 1, 3), np.float32),
                                       work / 'iwarp.nii.gz', eye)}
    affine_txt = work / 'affine.txt'
    affine_txt.write_text('#Insight Transform File V1.0\n')
    files['xfm_affine'] = str(affine_txt)
    return write_subject_anat(output_dir=out, bids_dir=bids, subject=subject, t1w_file=raw,
                              files=files, info={'AnatomicalReference': 'T1w'})
