"""Choose the physical constants for one run and record where each value came from.

Precedence for every constant: command-line override > BIDS sidecar > literature default
(``bids_asl.constants``).  The returned dictionary is written verbatim into the sidecars.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bids_asl import constants
from bids_asl.errors import MetadataError
from bids_asl.io.metadata import AslParams

FORMULAS = {
    'PCASL': 'CBF = 6000*lambda*dM*exp(PLD/T1b) / (2*alpha*T1b*M0*(1-exp(-tau/T1b))) '
             '[Alsop et al. 2015, eq. 1]',
    'CASL': 'CBF = 6000*lambda*dM*exp(PLD/T1b) / (2*alpha*T1b*M0*(1-exp(-tau/T1b))) '
            '[Alsop et al. 2015, eq. 1]',
    'PASL': 'CBF = 6000*lambda*dM*exp(TI/T1b) / (2*alpha*TI1*M0) [Alsop et al. 2015, eq. 2]',
}


@dataclass(frozen=True)
class Overrides:
    """Values the user gave on the command line (``None``: not given)."""

    t1_blood: float | None = None
    hematocrit: float | None = None
    partition_coefficient: float | None = None
    labeling_efficiency: float | None = None
    m0_scale: float = 1.0
    t1_tissue: float | None = None
    bs_efficiency_per_pulse: float | None = None
    allow_control_m0: bool = False


def resolve_constants(params: AslParams, overrides: Overrides) -> dict:
    sidecar = Path(params.asl_file.replace('.nii.gz', '.json').replace('.nii', '.json'))
    out: dict = {}
    if overrides.t1_blood is not None:
        out['BloodT1'], out['BloodT1Source'] = overrides.t1_blood, 'command line --t1-blood'
    elif overrides.hematocrit is not None:
        if abs(params.field_strength - 3.0) > constants.FIELD_SNAP_TOLERANCE:
            raise MetadataError('--hematocrit uses a 3 T relation (Lu et al. 2004); give '
                                '--t1-blood at this field strength', path=sidecar,
                                field='MagneticFieldStrength')
        out['BloodT1'] = constants.t1_blood_from_hematocrit(overrides.hematocrit)
        out['BloodT1Source'] = (f'3 T relation 1/T1 = 0.52*Hct + 0.38 (Lu et al. 2004) with '
                                f'hematocrit {overrides.hematocrit:g} from --hematocrit')
    else:
        try:
            out['BloodT1'], out['BloodT1Source'] = constants.t1_blood_for_field(
                params.field_strength)
        except ValueError as exc:
            raise MetadataError(str(exc), path=sidecar, field='MagneticFieldStrength') from None

    if overrides.partition_coefficient is not None:
        out['PartitionCoefficient'] = overrides.partition_coefficient
        out['PartitionCoefficientSource'] = 'command line --partition-coefficient'
    else:
        out['PartitionCoefficient'] = constants.PARTITION_COEFFICIENT
        out['PartitionCoefficientSource'] = 'default 0.9 mL/g (Herscovitch & Raichle 1985)'

    if overrides.labeling_efficiency is not None:
        alpha, source = overrides.labeling_efficiency, 'command line --labeling-efficiency'
    elif params.labeling_efficiency is not None:
        alpha, source = params.labeling_efficiency, 'sidecar LabelingEfficiency'
    else:
        alpha = constants.LABELING_EFFICIENCY[params.asl_type]
        source = f'default for {params.asl_type} (Alsop et al. 2015)'
    out['LabelingEfficiency'], out['LabelingEfficiencySource'] = alpha, source

    per_pulse = (overrides.bs_efficiency_per_pulse if overrides.bs_efficiency_per_pulse
                 is not None else constants.BS_EFFICIENCY_PER_PULSE)
    if not params.background_suppression:
        bs_factor, rule = 1.0, 'no background suppression'
    elif params.bs_pulses is None:
        bs_factor = 1.0
        rule = ('BackgroundSuppression is true but BackgroundSuppressionNumberPulses is absent: '
                'NO correction applied; CBF may be underestimated by ~5% per pulse')
    else:
        bs_factor = per_pulse ** params.bs_pulses
        rule = (f'{per_pulse:g} per inversion pulse ** {params.bs_pulses} pulses '
                '(Garcia et al. 2005)')
    out['BackgroundSuppressionEfficiency'] = bs_factor
    out['BackgroundSuppressionRule'] = rule
    out['TotalLabelingEfficiency'] = alpha * bs_factor

    out['M0Type'] = params.m0_type
    out['M0ScaleFactor'] = overrides.m0_scale
    out['TissueT1ForM0'] = (overrides.t1_tissue if overrides.t1_tissue is not None
                            else constants.T1_TISSUE)
    if params.m0_type == 'Absent':
        if 'control' not in params.volume_types:
            raise MetadataError('M0 is Absent and there are no control volumes to stand in '
                                'for it; CBF cannot be calibrated', path=sidecar, field='M0Type')
        if params.background_suppression and not overrides.allow_control_m0:
            raise MetadataError('M0 is Absent and background suppression is on, so the mean '
                                'control image is not a valid M0; rerun with '
                                '--allow-control-m0 to use it anyway', path=sidecar,
                                field='M0Type')
    out['M0RepetitionTime'] = params.m0_tr
    out['Formula'] = FORMULAS[params.asl_type]
    return out
