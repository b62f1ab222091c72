"""Per-run workflow: realignment → M0 and mask, ΔM → CBF (formula or kinetic fit) → QC."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from bids_asl.interfaces.asl import ComputeDeltaM, ComputeM0, ComputeMask
from bids_asl.interfaces.cbf import ComputeCBF
from bids_asl.interfaces.kinetic import FitKinetic
from bids_asl.interfaces.motion import Realign
from bids_asl.interfaces.qc import ComputeQC
from bids_asl.interfaces.spaces import AslToAnat
from bids_asl.workflows.anat import (
    REGISTRATION_OUTPUTS,
    SUBJECT_INPUTS,
    AnatomyOptions,
    anat_output_fields,
    init_asl_anat_wf,
)

OUTPUT_FIELDS = ('cbf', 'deltam_mean', 'm0', 'mask', 'm0_info', 'cbf_info', 'sources',
                 'qc_metrics')
SINGLE_DELAY_FIELDS = ('cbf_timeseries', 'score_cbf', 'scrub_cbf')
MULTI_DELAY_FIELDS = ('att', 'cbf_se', 'att_se', 'rsquared')
MOTION_FIELDS = ('confounds', 'motion_info')


def output_fields(*, multi_delay: bool, fit_abv: bool = False,
                  motion_correction: bool = False, anatomy: AnatomyOptions | None = None,
                  has_t1w: bool = False, mni2009c: bool = False) -> tuple[str, ...]:
    extra = MULTI_DELAY_FIELDS + (('abv',) if fit_abv else ()) if multi_delay \
        else SINGLE_DELAY_FIELDS
    anat = () if anatomy is None else anat_output_fields(
        has_t1w=has_t1w, multi_delay=multi_delay, options=anatomy, mni2009c=mni2009c)
    return OUTPUT_FIELDS + extra + (MOTION_FIELDS if motion_correction else ()) + anat


def init_asl_cbf_wf(*, params: dict, constants: dict, multi_delay: bool = False,
                    kinetic: dict | None = None, motion_correction: bool = True,
                    outlier_methods: tuple[str, ...] = ('score', 'scrub'),
                    anatomy: AnatomyOptions | None = None, has_t1w: bool = False,
                    user_tissue: bool = False, mni2009c: bool = False, mem_gb: float = 0.5,
                    name: str = 'asl_cbf_wf') -> pe.Workflow:
    """CBF for one ASL run: the consensus formula (one delay) or a kinetic fit (several).

    Realignment (optional) → M0 and brain mask, ΔM → CBF → QC; with ``anatomy`` also the
    run's registration to the T1w (or the template): ``asl_to_anat``, from the reference and the
    mask alone, whose tissue fractions always exist and feed the QC unless the user gave tissue
    maps; and everything computed after the CBF
    (:func:`~bids_asl.workflows.anat.init_asl_anat_wf`).

    Parameters
    ----------
    params : dict
        The validated acquisition parameters of the run (``AslParams.to_dict()``).
    constants : dict
        The resolved quantification constants (blood T1, λ, α, …) and where each came from.
    multi_delay : bool
        Several post-labelling delays: fit the kinetic model instead of the formula.
    kinetic : dict or None
        Options of the kinetic fit (``model``, ``att_prior``, ``fit_abv``, ``n_threads``).
    motion_correction : bool
        Realign the series (and a separate M0) before anything else.
    outlier_methods : tuple of str
        Outlier-robust CBF estimates to add (``score``, ``scrub``; single delay only).
    anatomy : AnatomyOptions or None
        What the run asks of the anatomy stage; None: anatomy off.
    has_t1w : bool
        The subject has a T1w (or anatomical derivatives): its outputs are inputs here.
    user_tissue : bool
        ``--tissue-maps`` gave the run's tissue maps: they feed the QC, not ours.
    mni2009c : bool
        The anatomical derivatives hold a T1w → MNI152NLin2009cAsym transform.
    mem_gb : float
        Memory estimate of one node (nipype's scheduler), scaled per node.
    name : str
        Name of the workflow.

    Inputs
    ------
    asl_file
        The ASL series.
    m0_file
        The M0 image (``M0Type: Separate`` only).
    t1_map
        A tissue T1 map on the ASL grid (optional; kinetic fit).
    gm, wm, csf
        Tissue probabilities on the ASL grid (optional, ``--tissue-maps``; for QC).
    t1w_preproc, t1w_mask, t1w_gm, t1w_wm, t1w_csf, to_template
        The subject's T1w workflow outputs (anatomy with a T1w).
    t1w_errors, t1w_tissue_source, mni2009c_xfm
        The subject's failed T1w steps, where its tissue probabilities come from, and the
        MNI152NLin2009cAsym transform of anatomical derivatives.
    atlas_names, atlas_labels, atlas_json
        The atlases on the template grid (anatomy on).
    lesion_mask
        The run's lesion mask (``--lesion-masks``).

    Outputs
    -------
    cbf, deltam_mean, m0, mask
        CBF (mL/100 g/min), mean ΔM, the M0 used and the brain mask, on the ASL grid.
    m0_info, cbf_info, sources, qc_metrics
        Sidecar fields of the M0 and CBF, the ΔM source volumes, the QC metrics.
    cbf_timeseries, score_cbf, scrub_cbf
        Single delay: CBF of each ΔM volume and the outlier-robust estimates.
    att, cbf_se, att_se, rsquared, abv
        Multi-delay: arrival time, standard errors, fit quality, arterial blood volume
        (``fit_abv``).
    confounds, motion_info
        Realignment: the confounds table and its sidecar fields.
    gm, wm, csf, to_anat_txt, anat_info, cbf_t1w, att_t1w, se_t1w
        Anatomy: see :func:`~bids_asl.workflows.anat.init_asl_anat_wf`.
    cbf_template, att_template, mask_template, se_template, regional, tissue
        Anatomy: template space and the regional and tissue tables.
    cbf_mni2009c, att_mni2009c, mask_mni2009c
        Anatomy: MNI152NLin2009cAsym space (anatomical derivatives).
    cbf_pvc_gm, cbf_pvc_wm, pvc_info, asymmetry, asym_clusters, asym_info
        Anatomy: partial-volume correction and the left/right asymmetry.
    lesion_rows, lesion_info
        Anatomy: lesion and perilesional CBF (``--lesion-masks``).
    anat_errors
        Anatomy: the failed or skipped steps.
    """
    kinetic = kinetic or {}
    fields = output_fields(multi_delay=multi_delay, fit_abv=kinetic.get('fit_abv', False),
                           motion_correction=motion_correction, anatomy=anatomy,
                           has_t1w=has_t1w, mni2009c=mni2009c)
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(
        fields=['asl_file', 'm0_file', 't1_map', 'gm', 'wm', 'csf', *SUBJECT_INPUTS,
                'atlas_names', 'atlas_labels', 'atlas_json', 'lesion_mask']),
        name='inputnode')
    outputnode = pe.Node(niu.IdentityInterface(fields=list(fields)), name='outputnode')
    compute_m0 = pe.Node(ComputeM0(params=params, constants=constants), name='compute_m0',
                         mem_gb=mem_gb)
    compute_mask = pe.Node(ComputeMask(), name='compute_mask', mem_gb=mem_gb)
    compute_deltam = pe.Node(ComputeDeltaM(params=params), name='compute_deltam', mem_gb=mem_gb)
    if multi_delay:
        compute_cbf = pe.Node(FitKinetic(params=params, constants=constants, options=kinetic),
                              name='fit_kinetic', mem_gb=mem_gb * 4,
                              n_procs=int(kinetic.get('n_threads', 1)))
        workflow.connect(inputnode, 't1_map', compute_cbf, 't1_map')
    else:
        compute_cbf = pe.Node(ComputeCBF(params=params, constants=constants),
                              name='compute_cbf', mem_gb=mem_gb * 2)
    compute_qc = pe.Node(ComputeQC(volume_types=list(params['volume_types']),
                                   methods=[] if multi_delay else list(outlier_methods)),
                         name='compute_qc', mem_gb=mem_gb)
    if motion_correction:
        realign = pe.Node(Realign(params=params), name='realign', mem_gb=mem_gb * 2)
        workflow.connect([
            (inputnode, realign, [('asl_file', 'asl_file'), ('m0_file', 'm0_file')]),
            (realign, compute_m0, [('asl_file', 'asl_file'), ('m0_file', 'm0_file')]),
            (realign, compute_deltam, [('asl_file', 'asl_file')]),
            (realign, compute_qc, [('confounds', 'confounds')]),
            (compute_qc, outputnode, [('confounds', 'confounds')]),
            (realign, outputnode, [('info', 'motion_info')]),
        ])  # fmt:skip
    else:
        workflow.connect([
            (inputnode, compute_m0, [('asl_file', 'asl_file'), ('m0_file', 'm0_file')]),
            (inputnode, compute_deltam, [('asl_file', 'asl_file')]),
        ])  # fmt:skip
    workflow.connect([
        (compute_m0, compute_mask, [('reference', 'reference'), ('m0', 'm0')]),
        (compute_m0, compute_cbf, [('m0', 'm0')]),
        (compute_mask, compute_cbf, [('mask', 'mask')]),
        (compute_deltam, compute_cbf, [('deltam', 'deltam')]),
        (compute_cbf, compute_qc, [('cbf', 'cbf')]),
        (compute_deltam, compute_qc, [('deltam', 'deltam'), ('sources', 'sources')]),
        (compute_mask, compute_qc, [('mask', 'mask')]),
        (compute_qc, outputnode, [('metrics', 'qc_metrics')]),
        (compute_cbf, outputnode, [('cbf', 'cbf'), ('deltam_mean', 'deltam_mean'),
                                   ('info', 'cbf_info')]),
        (compute_m0, outputnode, [('m0', 'm0'), ('info', 'm0_info')]),
        (compute_mask, outputnode, [('mask', 'mask')]),
        (compute_deltam, outputnode, [('sources', 'sources')]),
    ])  # fmt:skip
    if not multi_delay:
        workflow.connect([
            (compute_cbf, compute_qc, [('cbf_timeseries', 'cbf_timeseries')]),
            (compute_cbf, outputnode, [('cbf_timeseries', 'cbf_timeseries')]),
            (compute_qc, outputnode, [('score_cbf', 'score_cbf'), ('scrub_cbf', 'scrub_cbf')]),
        ])  # fmt:skip
    else:
        for field in MULTI_DELAY_FIELDS + (('abv',) if kinetic.get('fit_abv') else ()):
            workflow.connect(compute_cbf, field, outputnode, field)
    source, prefix = inputnode, ''
    if anatomy is not None:
        to_anat = _connect_anatomy(workflow, anatomy, has_t1w, mni2009c, multi_delay,
                                   inputnode, outputnode, compute_m0, compute_mask, compute_cbf)
        if not user_tissue:  # --tissue-maps win over our segmentation
            source, prefix = to_anat, ''
    for tissue in ('gm', 'wm', 'csf'):
        workflow.connect(source, prefix + tissue, compute_qc, tissue)
    return workflow


def _connect_anatomy(workflow, anatomy, has_t1w, mni2009c, multi_delay, inputnode, outputnode,
                     compute_m0, compute_mask, compute_cbf):
    """The registration node (before the quantification: it needs only the reference and the
    mask) and the anatomy that follows the CBF; returns the registration node, whose tissue
    fractions always exist."""
    to_anat = pe.Node(AslToAnat(), name='asl_to_anat', mem_gb=1.0)
    anat_wf = init_asl_anat_wf(options=anatomy, has_t1w=has_t1w, multi_delay=multi_delay,
                               mni2009c=mni2009c)
    workflow.connect([
        (compute_m0, to_anat, [('reference', 'reference')]),
        (compute_mask, to_anat, [('mask', 'mask')]),
        (to_anat, anat_wf, [(f, f'inputnode.{f}') for f in REGISTRATION_OUTPUTS]),
        (compute_mask, anat_wf, [('mask', 'inputnode.mask')]),
        (compute_cbf, anat_wf, [('cbf', 'inputnode.cbf')]),
        (inputnode, anat_wf, [(f, f'inputnode.{f}') for f in
                              ('atlas_names', 'atlas_labels', 'atlas_json',
                               *(('lesion_mask',) if anatomy.lesion_space else ()))]),
    ])  # fmt:skip
    if has_t1w:
        workflow.connect([
            (inputnode, to_anat, [('t1w_preproc', 't1w_preproc'), ('t1w_mask', 't1w_mask'),
                                  ('t1w_gm', 'gm'), ('t1w_wm', 'wm'), ('t1w_csf', 'csf'),
                                  ('to_template', 'to_template'),
                                  ('t1w_errors', 't1w_errors'),
                                  ('t1w_tissue_source', 't1w_tissue_source')]),
            (inputnode, anat_wf, [('t1w_mask', 'inputnode.t1w_mask'),
                                  ('t1w_wm', 'inputnode.t1w_wm'),
                                  ('mni2009c_xfm', 'inputnode.mni2009c_xfm')]),
        ])  # fmt:skip
    if multi_delay:
        workflow.connect([(compute_cbf, anat_wf, [('att', 'inputnode.att'),
                                                  ('cbf_se', 'inputnode.cbf_se')])])
    else:
        workflow.connect(compute_cbf, 'cbf_timeseries', anat_wf, 'inputnode.cbf_timeseries')
    for field in anat_output_fields(has_t1w=has_t1w, multi_delay=multi_delay,
                                    options=anatomy, mni2009c=mni2009c):
        workflow.connect(anat_wf, f'outputnode.{field}', outputnode, field)
    return to_anat
