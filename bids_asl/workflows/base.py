"""Root workflow: one CBF sub-workflow and one derivative writer per validated run."""

from __future__ import annotations

import re
from dataclasses import dataclass

from nipype.pipeline import engine as pe

from bids_asl import __version__
from bids_asl.interfaces.bids import WriteDerivatives
from bids_asl.workflows.asl import init_asl_cbf_wf, output_fields


@dataclass(frozen=True)
class RunSpec:
    """A validated run: what the workflow needs, as plain data."""

    prefix: str
    entities: dict
    asl_file: str
    m0_file: str | None
    params: dict
    constants: dict
    multi_delay: bool = False
    kinetic: dict | None = None  # model options of the multi-delay fit
    t1_map: str | None = None
    motion_correction: bool = True
    tissue: tuple[str, str, str] | None = None  # GM, WM, CSF probabilities on the ASL grid
    outlier_methods: tuple[str, ...] = ('score', 'scrub')


def workflow_name() -> str:
    """Versioned root name, so a work dir of another version is never reused."""
    major, minor = __version__.split('.')[:2]
    return f'bids_asl_{major}_{minor}_wf'


def safe_name(prefix: str) -> str:
    return re.sub(r'[^A-Za-z0-9]', '_', prefix)


def init_bids_asl_wf(*, runs: list[RunSpec], output_dir: str, bids_dir: str,
                     base_dir: str) -> pe.Workflow:
    workflow = pe.Workflow(name=workflow_name(), base_dir=base_dir)
    for run in runs:
        run_wf = init_asl_cbf_wf(params=run.params, constants=run.constants,
                                 multi_delay=run.multi_delay, kinetic=run.kinetic,
                                 motion_correction=run.motion_correction,
                                 outlier_methods=run.outlier_methods,
                                 name=f'asl_{safe_name(run.prefix)}_wf')
        run_wf.inputs.inputnode.asl_file = run.asl_file
        if run.t1_map:
            run_wf.inputs.inputnode.t1_map = run.t1_map
        if run.tissue:
            for name, path in zip(('gm', 'wm', 'csf'), run.tissue, strict=True):
                setattr(run_wf.inputs.inputnode, name, path)
        if run.m0_file:
            run_wf.inputs.inputnode.m0_file = run.m0_file
        # The writer always reruns (overwrite=True) so that a deleted output is rewritten even
        # when every computation comes from the cache.
        ds_run = pe.Node(
            WriteDerivatives(output_dir=output_dir, bids_dir=bids_dir, prefix=run.prefix,
                             entities=run.entities, params=run.params, constants=run.constants),
            name=f'ds_{safe_name(run.prefix)}', overwrite=True, run_without_submitting=True)
        fit_abv = bool((run.kinetic or {}).get('fit_abv'))
        for field in output_fields(multi_delay=run.multi_delay, fit_abv=fit_abv,
                                   motion_correction=run.motion_correction):
            workflow.connect(run_wf, f'outputnode.{field}', ds_run, field)
    return workflow

