"""Root workflow: one CBF sub-workflow and one derivative writer per validated run."""

from __future__ import annotations

import re
from dataclasses import dataclass

from nipype.pipeline import engine as pe

from bids_asl import __version__
from bids_asl.interfaces.bids import WriteDerivatives, WriteRunAnatomy, WriteT1wDerivatives
from bids_asl.io.anatderivs import AnatDerivatives
from bids_asl.workflows.anat import (
    RUN_ANAT_FIELDS,
    T1W_FIELDS,
    AnatomyOptions,
    init_anat_derivatives_wf,
    init_atlas_wf,
    init_t1w_wf,
)
from bids_asl.workflows.asl import init_asl_cbf_wf, output_fields

#: T1w workflow output → run workflow input
SUBJECT_LINKS = (('t1w_preproc', 't1w_preproc'), ('brain_mask', 't1w_mask'), ('gm', 't1w_gm'),
                 ('wm', 't1w_wm'), ('csf', 't1w_csf'), ('to_template', 'to_template'),
                 ('errors', 't1w_errors'), ('tissue_source', 't1w_tissue_source'))


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
    t1w_file: str | None = None  # the subject's anatomical reference (anatomy on)
    anatomy: AnatomyOptions | None = None  # None: anatomy off
    anat_derivatives: AnatDerivatives | None = None  # --anat-derivatives (t1w_file: theirs)


def workflow_name() -> str:
    """Versioned root name, so a work dir of another version is never reused."""
    major, minor = __version__.split('.')[:2]
    return f'bids_asl_{major}_{minor}_wf'


def safe_name(prefix: str) -> str:
    return re.sub(r'[^A-Za-z0-9]', '_', prefix)


def init_bids_asl_wf(*, runs: list[RunSpec], output_dir: str, bids_dir: str,
                     base_dir: str | None) -> pe.Workflow:
    """The participant level: every validated run of the selected participants, end to end.

    For each run, a CBF workflow (:func:`~bids_asl.workflows.asl.init_asl_cbf_wf`) and a
    derivative writer; with anatomy on, one T1w workflow per subject
    (:func:`~bids_asl.workflows.anat.init_t1w_wf`, shared by the subject's runs, with its own
    writer) and one atlas workflow for the whole process
    (:func:`~bids_asl.workflows.anat.init_atlas_wf`).  The writers always rerun, so that a
    deleted output is rewritten when everything else comes from the cache.

    Parameters
    ----------
    runs : list of RunSpec
        The validated runs (file names, metadata, resolved constants and options of each).
    output_dir : str
        The output (derivatives) dataset.
    bids_dir : str
        The input BIDS dataset (for ``Sources`` and ``bids:raw:`` references).
    base_dir : str or None
        The nipype working directory (``--work-dir``).

    Inputs
    ------
    (none)
        Every input is a file named in ``runs``: the workflow has no ``inputnode``.

    Outputs
    -------
    (none)
        The derivatives are written into ``output_dir`` by the writer nodes
        (``ds_<run>``, ``ds_t1w_<subject>``): the workflow has no ``outputnode``.
    """
    workflow = pe.Workflow(name=workflow_name(), base_dir=base_dir)
    atlases = next((r.anatomy.atlases for r in runs if r.anatomy is not None), ())
    atlas_wf = init_atlas_wf(atlases=atlases) if atlases else None
    t1w_wfs = {}
    for run in runs:
        has_t1w = run.anatomy is not None and run.t1w_file is not None
        mni2009c = has_t1w and bool(run.anat_derivatives and run.anat_derivatives.to_mni2009c)
        run_wf = init_asl_cbf_wf(params=run.params, constants=run.constants,
                                 multi_delay=run.multi_delay, kinetic=run.kinetic,
                                 motion_correction=run.motion_correction,
                                 outlier_methods=run.outlier_methods, anatomy=run.anatomy,
                                 has_t1w=has_t1w, user_tissue=run.tissue is not None,
                                 mni2009c=mni2009c, name=f'asl_{safe_name(run.prefix)}_wf')
        run_wf.inputs.inputnode.asl_file = run.asl_file
        if run.anatomy is not None and run.anatomy.lesion_mask:
            run_wf.inputs.inputnode.lesion_mask = run.anatomy.lesion_mask
        if run.t1_map:
            run_wf.inputs.inputnode.t1_map = run.t1_map
        if run.tissue:
            for name, path in zip(('gm', 'wm', 'csf'), run.tissue, strict=True):
                setattr(run_wf.inputs.inputnode, name, path)
        if run.m0_file:
            run_wf.inputs.inputnode.m0_file = run.m0_file
        # The writers always rerun (overwrite=True) so that a deleted output is rewritten even
        # when every computation comes from the cache.
        ds_run = pe.Node(
            WriteDerivatives(output_dir=output_dir, bids_dir=bids_dir, prefix=run.prefix,
                             entities=run.entities, params=run.params, constants=run.constants,
                             user_tissue=run.tissue is not None),
            name=f'ds_{safe_name(run.prefix)}', overwrite=True, run_without_submitting=True)
        fit_abv = bool((run.kinetic or {}).get('fit_abv'))
        fields = output_fields(multi_delay=run.multi_delay, fit_abv=fit_abv,
                               motion_correction=run.motion_correction, anatomy=run.anatomy,
                               has_t1w=has_t1w, mni2009c=mni2009c)
        # the CBF writer takes nothing from the anatomy but the reference's description, from
        # the node that cannot fail (asl_to_anat): the anatomy has a writer of its own
        for field in fields:
            if field not in RUN_ANAT_FIELDS:
                workflow.connect(run_wf, f'outputnode.{field}', ds_run, field)
        if run.anatomy is not None:
            workflow.connect(run_wf, 'outputnode.anat_info', ds_run, 'anat_info')
            ds_anat = pe.Node(
                WriteRunAnatomy(output_dir=output_dir, prefix=run.prefix,
                                entities=run.entities),
                name=f'ds_anat_{safe_name(run.prefix)}', overwrite=True,
                run_without_submitting=True)
            workflow.connect(ds_run, 'out_files', ds_anat, 'cbf_files')
            for field in fields:
                if field in RUN_ANAT_FIELDS:
                    workflow.connect(run_wf, f'outputnode.{field}', ds_anat, field)
            _connect_run_anatomy(workflow, run, run_wf, atlas_wf, t1w_wfs, output_dir,
                                 bids_dir)
    return workflow


def _connect_run_anatomy(workflow, run, run_wf, atlas_wf, t1w_wfs, output_dir, bids_dir):
    if atlas_wf is not None:
        workflow.connect([(atlas_wf, run_wf, [('outputnode.names', 'inputnode.atlas_names'),
                                              ('outputnode.labels', 'inputnode.atlas_labels'),
                                              ('outputnode.json', 'inputnode.atlas_json')])])
    else:
        run_wf.inputs.inputnode.atlas_names = []
        run_wf.inputs.inputnode.atlas_labels = []
        run_wf.inputs.inputnode.atlas_json = []
    if run.t1w_file is None:
        return
    subject = run.entities['subject']
    derivs = run.anat_derivatives
    if subject not in t1w_wfs:
        ds_t1w = pe.Node(WriteT1wDerivatives(output_dir=output_dir, bids_dir=bids_dir,
                                             subject=subject, t1w_file=run.t1w_file),
                         name=f'ds_t1w_{safe_name(subject)}', overwrite=True,
                         run_without_submitting=True)
        if derivs is None:
            t1w_wf = init_t1w_wf(name=f't1w_{safe_name(subject)}_wf')
            t1w_wf.inputs.inputnode.t1w_file = run.t1w_file
            written = tuple(f for f in T1W_FIELDS if f != 'tissue_source')
        else:  # their files stay theirs: only what is computed here is written
            t1w_wf = init_anat_derivatives_wf(has_template_xfm=derivs.to_template is not None,
                                              name=f't1w_{safe_name(subject)}_wf')
            for field in ('t1w', 'brain_mask', 'gm', 'wm', 'csf'):
                setattr(t1w_wf.inputs.inputnode, field, getattr(derivs, field))
            if derivs.to_template:
                t1w_wf.inputs.inputnode.template_xfm = derivs.to_template
            if derivs.to_mni2009c:
                t1w_wf.inputs.inputnode.mni2009c_xfm = derivs.to_mni2009c
            ds_t1w.inputs.sources = [derivs.t1w]
            written = ('xfm_affine', 'xfm_warp', 'xfm_inverse_warp', 't1w_template', 'info',
                       'errors')
        workflow.connect([(t1w_wf, ds_t1w, [(f'outputnode.{f}', f) for f in written])])
        t1w_wfs[subject] = t1w_wf
    links = SUBJECT_LINKS + ((('mni2009c_xfm', 'mni2009c_xfm'),)
                             if derivs is not None and derivs.to_mni2009c else ())
    workflow.connect([(t1w_wfs[subject], run_wf, [(f'outputnode.{a}', f'inputnode.{b}')
                                                  for a, b in links])])

