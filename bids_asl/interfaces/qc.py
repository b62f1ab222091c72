"""QC metrics, SCORE/SCRUB outlier handling and the confounds table of one run."""

from __future__ import annotations

import os

import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    isdefined,
    traits,
)

from bids_asl.io import images, tsv
from bids_asl.quant import outliers, qc

OUTLIER_METHODS = ('score', 'scrub')


def _fd_summary(rows) -> dict:
    fd = [float(r['framewise_displacement']) for r in rows
          if r['framewise_displacement'] != 'n/a']
    return {'mean_fd': float(np.mean(fd)) if fd else float('nan'),
            'max_fd': float(np.max(fd)) if fd else float('nan')}


def run_qc(cbf, series, deltam, mask, voxel_size, methods, tissue=None):
    """Metrics dict, outlier-robust maps and the SCORE mask of ΔM volumes kept."""
    gm, wm, csf = tissue if tissue is not None else (None, None, None)
    metrics = {'deltam_tsnr': qc.deltam_tsnr(deltam, mask)}
    metrics.update(qc.tissue_metrics(cbf, mask, gm, wm))
    if tissue is not None:
        metrics.update(qc.qei(cbf, gm, wm, csf, mask, voxel_size))
    else:
        metrics.update({k: float('nan') for k in ('qei', 'qei_rho', 'qei_di', 'qei_neg_gm')})
    maps, keep = {}, None
    n_vol = 0 if series is None else series.shape[3]
    metrics['n_deltam_volumes'] = int(deltam.shape[3]) if deltam.ndim == 4 else 1
    tissue_vox = None if tissue is None else [t[mask] for t in tissue]
    if series is not None and n_vol >= 3:
        cbf_vox = series[mask]
        if 'score' in methods:
            keep = outliers.score(cbf_vox, *(tissue_vox or (None, None, None)))
            out = np.zeros(mask.shape)
            out[mask] = cbf_vox[:, keep].mean(axis=1)
            maps['score_cbf'] = out
        if 'scrub' in methods:
            est, _ = outliers.scrub(cbf_vox, *(tissue_vox or (None, None, None)))
            out = np.zeros(mask.shape)
            out[mask] = est
            maps['scrub_cbf'] = out
    metrics['n_deltam_used_score'] = int(keep.sum()) if keep is not None else metrics[
        'n_deltam_volumes']
    metrics['n_deltam_rejected_score'] = metrics['n_deltam_volumes'] - metrics[
        'n_deltam_used_score']
    return metrics, maps, keep


class _QCInputSpec(BaseInterfaceInputSpec):
    cbf = File(exists=True, mandatory=True, desc='CBF map the metrics describe')
    cbf_timeseries = File(exists=True, desc='volume-wise CBF (single delay) for SCORE/SCRUB')
    deltam = File(exists=True, mandatory=True, desc='ΔM series')
    mask = File(exists=True, mandatory=True, desc='brain mask')
    confounds = File(exists=True, desc='motion confounds TSV from realignment')
    sources = traits.List(mandatory=True, desc='1-based source volumes of each ΔM volume')
    volume_types = traits.List(traits.Str, mandatory=True, desc='aslcontext volume types')
    methods = traits.List(traits.Enum(*OUTLIER_METHODS), desc='outlier methods to run')
    gm = File(exists=True, desc='GM probability on the ASL grid')
    wm = File(exists=True, desc='WM probability on the ASL grid')
    csf = File(exists=True, desc='CSF probability on the ASL grid')


class _QCOutputSpec(TraitedSpec):
    metrics = traits.Dict(desc='QC metrics of the run (one TSV row)')
    score_cbf = File(desc='mean CBF over the volumes SCORE kept')
    scrub_cbf = File(desc='SCRUB robust CBF')
    confounds = File(desc='confounds TSV with the score_outlier column')


class ComputeQC(SimpleInterface):
    """QC metrics, SCORE/SCRUB maps and the outlier column of the confounds table."""

    input_spec = _QCInputSpec
    output_spec = _QCOutputSpec

    def _run_interface(self, runtime):
        cbf, img = images.load(self.inputs.cbf)
        mask = images.load(self.inputs.mask)[0] > 0
        deltam = images.load_series(self.inputs.deltam)[0]
        series = (images.load(self.inputs.cbf_timeseries)[0]
                  if isdefined(self.inputs.cbf_timeseries) else None)
        tissue = None
        if all(isdefined(getattr(self.inputs, k)) for k in ('gm', 'wm', 'csf')):
            tissue = tuple(images.load(getattr(self.inputs, k))[0] for k in ('gm', 'wm', 'csf'))
        methods = self.inputs.methods if isdefined(self.inputs.methods) else []
        metrics, maps, keep = run_qc(cbf, series, deltam, mask, img.header.get_zooms()[:3],
                                     methods, tissue)
        metrics['tissue_maps'] = 'yes' if tissue is not None else 'none'
        rows = (tsv.read_tsv(self.inputs.confounds) if isdefined(self.inputs.confounds)
                else None)
        metrics.update(_fd_summary(rows) if rows else {'mean_fd': float('nan'),
                                                        'max_fd': float('nan')})
        rejected = [] if keep is None else [i for i, k in enumerate(keep) if not k]
        metrics['score_rejected_volumes'] = ' '.join(
            '+'.join(str(v) for v in self.inputs.sources[i]) for i in rejected) or 'none'
        for key, data in maps.items():
            self._results[key] = str(images.save_work(data, img,
                                                      os.path.join(runtime.cwd, f'{key}.nii.gz')))
        if rows is not None:
            flags = {}
            for i, src in enumerate(self.inputs.sources):
                for vol in src:
                    flags[vol - 1] = 'n/a' if keep is None else str(int(not keep[i]))
            path = tsv.write_tsv(os.path.join(runtime.cwd, 'confounds.tsv'),
                                 [*rows[0].keys(), 'score_outlier'],
                                 ([*row.values(), flags.get(i, 'n/a')]
                                  for i, row in enumerate(rows)))
            self._results['confounds'] = str(path)
        self._results['metrics'] = {k: (None if isinstance(v, float) and not np.isfinite(v)
                                        else v) for k, v in metrics.items()}
        return runtime
