"""Clinical outputs for the report tests, written by the pipeline's own writers
(``io.anatoutputs.write_run_anat``, ``clinical.sessions.compare_sessions``) from small arrays,
so that the file names and columns are the ones a real run produces: a lesion table for
``sub-p_ses-base`` and the comparison ``ses-post`` minus ``ses-base`` of ``sub-p``. Only the
main CBF sidecar (what lists a run in the report) is written by hand."""

import json
from dataclasses import asdict

import nibabel as nb
import numpy as np

from bids_asl.clinical.sessions import compare_sessions
from bids_asl.constants import TEMPLATE
from bids_asl.io.anatoutputs import write_run_anat
from bids_asl.quant.lesions import DEFAULT_NAWM_BANDS_MM, DEFAULT_RINGS_MM, lesion_table

TPL = TEMPLATE
AFFINE = np.array([[2.0, 0, 0, -10], [0, 2.0, 0, -12], [0, 0, 2.0, -8], [0, 0, 0, 1]])
GRID = (10, 12, 9)


def write_run(out, session):
    """A run's main CBF sidecar: what makes the report list the run."""
    perf = out / 'sub-p' / f'ses-{session}' / 'perf'
    perf.mkdir(parents=True, exist_ok=True)
    (perf / f'sub-p_ses-{session}_cbf.json').write_text(json.dumps({'Units': 'mL/100g/min'}))
    return perf


def write_lesions(out):
    """Lesion 1: 8 voxels of CBF 20..27; lesion 2: one voxel of 12.5; 40 elsewhere; voxels
    2 x 2 x 3 mm, all white matter."""
    cbf = np.full((12, 12, 10), 40.0)
    mask = np.zeros(cbf.shape, bool)
    mask[2:4, 2:4, 2:4] = True
    cbf[2:4, 2:4, 2:4] = np.arange(20.0, 28.0).reshape(2, 2, 2)
    mask[9, 9, 8] = True
    cbf[9, 9, 8] = 12.5
    rows = [asdict(r) for r in lesion_table(cbf, mask, np.ones(cbf.shape, bool),
                                            np.ones(cbf.shape), (2.0, 2.0, 3.0))]
    info = {'LesionSpace': 'ASL grid', 'RingsMM': [list(r) for r in DEFAULT_RINGS_MM],
            'NAWMBandsMM': [[lo, hi if np.isfinite(hi) else None]  # as LesionStats writes it
                            for lo, hi in DEFAULT_NAWM_BANDS_MM]}
    write_run_anat(output_dir=out, entities={'subject': 'p', 'session': 'base'},
                   prefix='sub-p_ses-base', files={}, info={}, regional={}, tissue=[],
                   pvc_info=None, quant_sidecar={}, lesions={'rows': rows, 'info': info})
    return rows


def save(data, path):
    nb.save(nb.Nifti1Image(np.asarray(data, np.float32), AFFINE), path)


def regional_rows(means):
    """Rows of a per-run regional table, as the anatomy interface hands them to the writer."""
    return [{'region': name, 'indices': [i + 1], 'mean': m, 'median': m, 'sd': 1.0,
             'n_voxels': 100} for i, (name, m) in enumerate(means.items())]


def write_sessions(out):
    """post − base: +15 in a 3 x 3 x 3 block (+18 at its centre), −10 in a 2 x 2 x 2 block;
    SE 1 in both runs, so z = difference / sqrt(2)."""
    base = np.full(GRID, 50.0)
    post = base.copy()
    post[3:6, 4:7, 2:5] += 15.0
    post[4, 5, 3] += 3.0
    post[7:9, 8:10, 5:7] -= 10.0
    for session, cbf, means in (('base', base, {'Precentral': 50.0, 'Frontal_Sup': 40.0}),
                                ('post', post, {'Precentral': 55.0, 'Frontal_Sup': 38.0})):
        write_run(out, session)
        stem = f'sub-p_ses-{session}'
        work = out.parent / 'work' / stem
        work.mkdir(parents=True, exist_ok=True)
        save(cbf, work / 'cbf.nii.gz')
        save(np.ones(GRID), work / 'se.nii.gz')
        write_run_anat(output_dir=out, entities={'subject': 'p', 'session': session},
                       prefix=stem, files={'cbf_template': str(work / 'cbf.nii.gz'),
                                           'se_template': str(work / 'se.nii.gz')},
                       info={}, regional={'AAL/cbf': regional_rows(means)}, tissue=[],
                       pvc_info=None, quant_sidecar={'Units': 'mL/100g/min'})
    return compare_sessions(out, 'post', 'base', normalise=False, z_threshold=3.0,
                            min_volume_mm3=40.0)
