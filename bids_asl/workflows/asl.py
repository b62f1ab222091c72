"""Per-run quantification workflow: M0 → mask, ΔM → CBF."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from bids_asl.interfaces.asl import ComputeDeltaM, ComputeM0, ComputeMask
from bids_asl.interfaces.cbf import ComputeCBF

OUTPUT_FIELDS = ('cbf', 'cbf_timeseries', 'deltam_mean', 'm0', 'mask', 'm0_info', 'cbf_info',
                 'sources')


def init_asl_cbf_wf(*, params: dict, constants: dict, mem_gb: float = 0.5,
                    name: str = 'asl_cbf_wf') -> pe.Workflow:
    """Single-delay CBF for one ASL run.

    Inputs: ``asl_file``, ``m0_file`` (M0Type Separate only).  Outputs: mean CBF, CBF series,
    mean ΔM, M0 map, brain mask and the information their sidecars need.
    """
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=['asl_file', 'm0_file']), name='inputnode')
    outputnode = pe.Node(niu.IdentityInterface(fields=list(OUTPUT_FIELDS)), name='outputnode')
    compute_m0 = pe.Node(ComputeM0(params=params, constants=constants), name='compute_m0',
                         mem_gb=mem_gb)
    compute_mask = pe.Node(ComputeMask(), name='compute_mask', mem_gb=mem_gb)
    compute_deltam = pe.Node(ComputeDeltaM(params=params), name='compute_deltam', mem_gb=mem_gb)
    compute_cbf = pe.Node(ComputeCBF(params=params, constants=constants), name='compute_cbf',
                          mem_gb=mem_gb * 2)
    workflow.connect([
        (inputnode, compute_m0, [('asl_file', 'asl_file'), ('m0_file', 'm0_file')]),
        (inputnode, compute_deltam, [('asl_file', 'asl_file')]),
        (compute_m0, compute_mask, [('reference', 'reference'), ('m0', 'm0')]),
        (compute_m0, compute_cbf, [('m0', 'm0')]),
        (compute_mask, compute_cbf, [('mask', 'mask')]),
        (compute_deltam, compute_cbf, [('deltam', 'deltam')]),
        (compute_cbf, outputnode, [('cbf', 'cbf'), ('cbf_timeseries', 'cbf_timeseries'),
                                   ('deltam_mean', 'deltam_mean'), ('info', 'cbf_info')]),
        (compute_m0, outputnode, [('m0', 'm0'), ('info', 'm0_info')]),
        (compute_mask, outputnode, [('mask', 'mask')]),
        (compute_deltam, outputnode, [('sources', 'sources')]),
    ])  # fmt:skip
    return workflow
