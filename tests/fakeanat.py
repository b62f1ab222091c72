"""Fake outputs of the anatomy pipeline (issue #6), with exactly the agreed names and columns,
so that the reports and the group level can be tested before it lands."""

import json

import nibabel as nb
import numpy as np

TEMPLATE = 'MNI152NLin2009aSym'
GRID = (10, 12, 9)  # a small stand-in for the 2 mm template grid, identical for every subject
AFFINE = np.array([[-2.0, 0, 0, 9], [0, 2.0, 0, -12], [0, 0, 2.0, -8], [0, 0, 0, 1]])
REGIONAL_COLUMNS = ('atlas', 'index', 'region', 'mean', 'median', 'sd', 'n_voxels', 'mean_left',
                    'mean_right', 'n_left', 'n_right', 'asymmetry_index')
ATLASES = {'AAL': ['Precentral', 'Frontal_Sup', 'Cerebellum_3'],
           'HarvardOxford': ['Frontal Pole', "Heschl's Gyrus"]}


def _fmt(value):
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return 'n/a'
    return f'{value:.6g}' if isinstance(value, float) else str(value)


def write_tsv(path, columns, rows):
    lines = ['\t'.join(columns)] + ['\t'.join(_fmt(r[c]) for c in columns) for r in rows]
    path.write_text('\n'.join(lines) + '\n')


def add_anatomy(perf, prefix, rng, *, level=50.0, nan_voxels=3, anat_reference='T1w',
                template_mask=False):
    """Template-space CBF, regional and tissue tables, GM map; returns the values written."""
    cbf = rng.normal(level, 8.0, GRID)
    flat = cbf.reshape(-1)
    flat[rng.choice(flat.size, nan_voxels, replace=False)] = np.nan
    nb.save(nb.Nifti1Image(cbf.astype(np.float32), AFFINE),
            perf / f'{prefix}_space-{TEMPLATE}_cbf.nii.gz')
    mask = None
    if template_mask:  # the run's brain mask in template space: CBF outside it is not data
        mask = np.ones(GRID, np.uint8)
        mask[:2] = 0
        nb.save(nb.Nifti1Image(mask, AFFINE), perf / f'{prefix}_space-{TEMPLATE}_desc-brain_mask'
                                                     '.nii.gz')
    att = rng.uniform(0.8, 1.6, GRID)
    nb.save(nb.Nifti1Image(att.astype(np.float32), AFFINE),
            perf / f'{prefix}_space-{TEMPLATE}_att.nii.gz')
    regional = {}
    for atlas, regions in ATLASES.items():
        rows = []
        for i, region in enumerate(regions, start=1):
            left, right = rng.normal(level, 5.0, 2)
            midline = region == 'Frontal Pole'  # a region with no hemisphere split
            rows.append({'atlas': atlas, 'index': i, 'region': region,
                         'mean': (left + right) / 2, 'median': (left + right) / 2 + 0.5,
                         'sd': float(rng.uniform(5, 10)), 'n_voxels': int(rng.integers(50, 500)),
                         'mean_left': None if midline else left,
                         'mean_right': None if midline else right,
                         'n_left': None if midline else int(rng.integers(20, 200)),
                         'n_right': None if midline else int(rng.integers(20, 200)),
                         'asymmetry_index': None if midline else (left - right) / (left + right)})
        write_tsv(perf / f'{prefix}_space-{TEMPLATE}_seg-{atlas}_desc-regional_cbf.tsv',
                  REGIONAL_COLUMNS, rows)
        regional[atlas] = rows
    tissue = [{'tissue': t, 'threshold': th, 'mean': float(m), 'median': float(m) - 1,
               'sd': 7.5, 'n_voxels': int(n)}
              for t, th, m, n in (('GM', 0.7, level, 900), ('WM', 0.7, level / 3, 700),
                                  ('brain', 0.5, level * 0.7, 2000))]
    write_tsv(perf / f'{prefix}_desc-tissue_cbf.tsv',
              ('tissue', 'threshold', 'mean', 'median', 'sd', 'n_voxels'), tissue)
    m0 = nb.load(perf / f'{prefix}_desc-calibration_m0scan.nii.gz')
    gm = (np.asarray(m0.dataobj) > np.percentile(np.asarray(m0.dataobj), 70)).astype(np.float32)
    nb.save(nb.Nifti1Image(gm, m0.affine), perf / f'{prefix}_label-GM_probseg.nii.gz')
    sidecar = perf / f'{prefix}_cbf.json'
    meta = json.loads(sidecar.read_text())
    meta['AnatomicalReference'] = anat_reference
    sidecar.write_text(json.dumps(meta, indent=2))
    return {'cbf': cbf, 'att': att, 'mask': mask, 'regional': regional, 'tissue': tissue}


def add_t1w(anat_dir, subject, rng):
    anat_dir.mkdir(parents=True, exist_ok=True)
    t1 = rng.normal(100, 5, (16, 18, 14))
    t1[4:12, 4:14, 3:11] += 200
    gm = np.zeros(t1.shape, np.float32)
    gm[5:11, 5:13, 4:10] = 1.0
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    nb.save(nb.Nifti1Image(t1.astype(np.float32), affine),
            anat_dir / f'sub-{subject}_desc-preproc_T1w.nii.gz')
    nb.save(nb.Nifti1Image(gm, affine), anat_dir / f'sub-{subject}_label-GM_probseg.nii.gz')
    for name in ('desc-preproc_T1w', 'label-GM_probseg'):
        (anat_dir / f'sub-{subject}_{name}.json').write_text('{"SkullStripped": false}\n')
