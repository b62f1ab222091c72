"""Single-delay CBF: the consensus ("white paper") single-compartment model.

Alsop et al. 2015, MRM 73:102-116, eqs. [1] and [2].  For (P)CASL with label duration τ and
post-labelling delay w::

    CBF = 6000 λ ΔM exp(w / T1b) / (2 α T1b M0 (1 − exp(−τ / T1b)))

For PASL with a bolus cut-off (QUIPSS II / Q2TIPS), inversion time TI and bolus duration TI1::

    CBF = 6000 λ ΔM exp(TI / T1b) / (2 α TI1 M0)

CBF in mL/100 g/min; times in s; α the total labelling efficiency (including background
suppression).  Arguments broadcast: ``delta_m`` may be ``(X, Y, Z)`` or ``(X, Y, Z, T)`` if
``m0`` and ``pld`` are given with a trailing axis (see :func:`expand_time`).  The forward
functions (``deltam_*``) are the exact inverses, used to make synthetic data.
"""

from __future__ import annotations

import numpy as np

from bids_asl.constants import PARTITION_COEFFICIENT, UNIT_SCALE


def _check_positive(name: str, value) -> None:
    arr = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f'{name} must be finite and > 0')


def expand_time(arr, ndim: int):
    """Append a trailing (time) axis when ``arr`` has one dimension fewer than the data."""
    arr = np.asarray(arr, dtype=np.float64)
    return arr[..., None] if arr.ndim and arr.ndim == ndim - 1 else arr


def pcasl_scale(
    *, pld, label_duration: float, t1_blood: float, labeling_efficiency: float,
    partition_coefficient: float = PARTITION_COEFFICIENT,
):
    """The factor k with CBF = k ΔM / M0 for (P)CASL (``pld`` scalar or array)."""
    for name, val in (('label_duration', label_duration), ('t1_blood', t1_blood),
                      ('labeling_efficiency', labeling_efficiency),
                      ('partition_coefficient', partition_coefficient), ('pld', pld)):
        _check_positive(name, val)
    pld = np.asarray(pld, dtype=np.float64)
    return (UNIT_SCALE * partition_coefficient * np.exp(pld / t1_blood)) / (
        2.0 * labeling_efficiency * t1_blood * -np.expm1(-label_duration / t1_blood)
    )


def pasl_scale(
    *, ti, ti1: float, t1_blood: float, labeling_efficiency: float,
    partition_coefficient: float = PARTITION_COEFFICIENT,
):
    """The factor k with CBF = k ΔM / M0 for PASL with bolus cut-off (``ti`` scalar or array)."""
    for name, val in (('ti1', ti1), ('t1_blood', t1_blood), ('ti', ti),
                      ('labeling_efficiency', labeling_efficiency),
                      ('partition_coefficient', partition_coefficient)):
        _check_positive(name, val)
    ti = np.asarray(ti, dtype=np.float64)
    if np.any(ti1 >= ti):
        raise ValueError('bolus duration TI1 must be shorter than the inversion time TI')
    return (UNIT_SCALE * partition_coefficient * np.exp(ti / t1_blood)) / (
        2.0 * labeling_efficiency * ti1
    )


def cbf_from_deltam(delta_m, m0, scale):
    """CBF = scale · ΔM / M0, with ``M0 > 0`` required everywhere it is used."""
    delta_m = np.asarray(delta_m, dtype=np.float64)
    _check_positive('M0', m0)
    m0 = expand_time(m0, delta_m.ndim)
    scale = expand_time(scale, delta_m.ndim)
    return scale * delta_m / m0


def cbf_pcasl(delta_m, m0, **kwargs):
    """(P)CASL single-delay CBF (mL/100 g/min); keyword arguments as :func:`pcasl_scale`."""
    return cbf_from_deltam(delta_m, m0, pcasl_scale(**kwargs))


def cbf_pasl(delta_m, m0, **kwargs):
    """PASL (QUIPSS II / Q2TIPS) single-delay CBF; keyword arguments as :func:`pasl_scale`."""
    return cbf_from_deltam(delta_m, m0, pasl_scale(**kwargs))


def deltam_pcasl(cbf, m0, **kwargs):
    """Forward model: ΔM that the (P)CASL formula maps back to ``cbf``."""
    return np.asarray(cbf, dtype=np.float64) * np.asarray(m0) / pcasl_scale(**kwargs)


def deltam_pasl(cbf, m0, **kwargs):
    """Forward model: ΔM that the PASL formula maps back to ``cbf``."""
    return np.asarray(cbf, dtype=np.float64) * np.asarray(m0) / pasl_scale(**kwargs)


#: Whole-brain mean CBF outside this range (mL/100 g/min) is physiologically implausible and
#: usually means a wrong M0 scaling, label order or unit (healthy adults ~30-60 whole brain).
PLAUSIBLE_MEAN_CBF = (5.0, 200.0)


def plausibility_warnings(cbf_in_mask) -> dict:
    """``{'MeanCBFInMask': m}`` plus ``'Warnings'`` when the mean is implausible."""
    values = np.asarray(cbf_in_mask, dtype=np.float64)
    if values.size == 0:
        return {'Warnings': ['the brain mask is empty']}
    mean = float(values.mean())
    out: dict = {'MeanCBFInMask': round(mean, 4)}
    lo, hi = PLAUSIBLE_MEAN_CBF
    if not lo <= mean <= hi:
        out['Warnings'] = [
            f'mean CBF in the brain mask is {mean:.4g} mL/100g/min, outside {lo:g}-{hi:g}: '
            'check the M0 scaling (--m0-scale), the label/control order and the units'
        ]
    return out
