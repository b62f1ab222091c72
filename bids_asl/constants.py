"""Literature constants used in quantification, with their sources.

Pure data and tiny pure functions, no imports beyond the standard library, so that every layer
(``quant``, ``io``, ``cli``) can use the same numbers.  Every value used for a run is recorded in
that run's JSON sidecars together with where it came from.
"""

from __future__ import annotations

#: Volume types allowed by BIDS in ``aslcontext.tsv`` (case-sensitive).
VOLUME_TYPES = ('control', 'label', 'm0scan', 'deltam', 'cbf', 'noRF')

#: The output template: the symmetric MNI ICBM152 2009a nonlinear template (TemplateFlow name),
#: the ``space-`` entity of every template-space derivative.
TEMPLATE = 'MNI152NLin2009aSym'

#: Blood-brain partition coefficient of water, mL/g
#: (Herscovitch & Raichle 1985; Alsop et al. 2015).
PARTITION_COEFFICIENT = 0.9

#: Converts mL/g/s to mL/100 g/min.
UNIT_SCALE = 6000.0

#: Labelling efficiency by labelling type (Alsop et al. 2015, MRM 73:102, Table 2 / text).
LABELING_EFFICIENCY = {'PCASL': 0.85, 'CASL': 0.68, 'PASL': 0.98}

#: Efficiency retained per background-suppression inversion pulse (Garcia et al. 2005 MRM 54:366;
#: the same rule is used by ASLPrep).  alpha_BS = 0.95 ** n_pulses.
BS_EFFICIENCY_PER_PULSE = 0.95

#: Arterial blood T1 (s) at field strengths where it is well established:
#: 1.5 T and 3 T from Alsop et al. 2015 (white paper); 7 T from Zhang et al. 2013 MRM 70:1082
#: (~2.1 s; they confirm a linear relation between blood T1 and B0).
T1_BLOOD_ANCHORS = ((1.5, 1.35), (3.0, 1.65), (7.0, 2.1))

#: Field strengths within this distance (T) of an anchor use the anchor's value (Siemens 2.89 T
#: "3 T" systems, 1.494 T "1.5 T" systems).
FIELD_SNAP_TOLERANCE = 0.15

#: Outside this range (T) no blood T1 is extrapolated: the user must give --t1-blood.
T1_BLOOD_EXTRAPOLATION_RANGE = (0.5, 9.4)

#: Tissue (grey matter) T1 (s) used for the saturation-recovery correction of an M0 acquired with
#: a short repetition time (BASIL/oxford_asl default at 3 T; Alsop et al. 2015 recommend a TR of
#: >= 5 s so that the correction is small).  Override with --t1-tissue.
T1_TISSUE = 1.3


def t1_blood_for_field(field_strength: float) -> tuple[float, str]:
    """Arterial blood T1 (s) for a field strength (T), and a sentence saying how it was chosen.

    Rule: within ``FIELD_SNAP_TOLERANCE`` of 1.5, 3 or 7 T use that literature value; otherwise
    interpolate (or extrapolate) linearly between the two nearest anchors, inside
    ``T1_BLOOD_EXTRAPOLATION_RANGE``.  Outside that range raise ``ValueError``.
    """
    b0 = float(field_strength)
    for field, t1 in T1_BLOOD_ANCHORS:
        if abs(b0 - field) <= FIELD_SNAP_TOLERANCE:
            return t1, f'literature value for {field:g} T (field strength {b0:g} T)'
    lo, hi = T1_BLOOD_EXTRAPOLATION_RANGE
    if not lo <= b0 <= hi:
        raise ValueError(
            f'no blood T1 rule for {b0:g} T (supported {lo:g}-{hi:g} T); give --t1-blood'
        )
    anchors = sorted(T1_BLOOD_ANCHORS)
    if b0 < anchors[0][0]:
        (f1, t1a), (f2, t2a) = anchors[0], anchors[1]
    elif b0 > anchors[-1][0]:
        (f1, t1a), (f2, t2a) = anchors[-2], anchors[-1]
    else:
        idx = max(i for i, (f, _) in enumerate(anchors) if f <= b0)
        (f1, t1a), (f2, t2a) = anchors[idx], anchors[idx + 1]
    value = t1a + (t2a - t1a) * (b0 - f1) / (f2 - f1)
    return value, (
        f'linear in B0 between the literature values at {f1:g} T and {f2:g} T '
        f'(field strength {b0:g} T)'
    )


def t1_blood_from_hematocrit(hematocrit: float) -> float:
    """Arterial blood T1 (s) at 3 T from hematocrit: 1/T1 = 0.52 Hct + 0.38 (Lu et al. 2004)."""
    hct = float(hematocrit)
    if not 0.1 <= hct <= 0.7:
        raise ValueError(f'hematocrit {hct:g} outside 0.1-0.7')
    return 1.0 / (0.52 * hct + 0.38)
