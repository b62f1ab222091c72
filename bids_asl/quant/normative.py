"""Normative z-scores against a reference (control) group, voxel- or region-wise (numpy).

Model: for each voxel, the controls' values follow ``y = X b + e`` with ``X`` an intercept and
optional covariates (age, sex, …) and ``e ~ N(0, σ²)``. A participant's z is its residual from
the controls' fit divided by the controls' residual SD. Each control is scored leave-one-out
(fit without it), in closed form through the hat matrix: with ``e_i`` the ordinary residual and
``h_i`` the leverage, the deleted residual is ``e_i / (1 − h_i)`` and the deleted residual
variance ``s²_(i) = ((n − p) s² − e_i² / (1 − h_i)) / (n − p − 1)``. Without covariates this is
exactly ``(y_i − mean of the others) / SD of the others``.
"""

from __future__ import annotations

import numpy as np


def design(n: int, covariates: np.ndarray | None = None,
           centre: np.ndarray | None = None) -> np.ndarray:
    """Intercept plus covariate columns, centred on ``centre`` (default: their own mean, so
    that the intercept is the value of an average participant). Build the patients' design
    with the controls' centre."""
    columns = [np.ones(n)]
    if covariates is not None and np.size(covariates):
        cov = np.asarray(covariates, dtype=np.float64).reshape(n, -1)
        centre = cov.mean(axis=0) if centre is None else np.asarray(centre, dtype=np.float64)
        columns += list((cov - centre).T)
    return np.column_stack(columns)


def normative_z(controls: np.ndarray, patients: np.ndarray | None = None, *,
                x_controls: np.ndarray | None = None,
                x_patients: np.ndarray | None = None) -> dict:
    """z of every control (leave-one-out) and every patient, per column (voxel or region).

    ``controls`` (n × v) and ``patients`` (m × v) hold the values; ``x_*`` are the design
    matrices (default: intercept only). Returns ``{'controls', 'patients', 'mean', 'sd'}``:
    z arrays, and the controls' fitted intercept and residual SD per column. Columns with a
    non-finite control value, or a residual SD of 0, give NaN.
    """
    y = np.asarray(controls, dtype=np.float64)
    n = y.shape[0]
    x = design(n) if x_controls is None else np.asarray(x_controls, dtype=np.float64)
    p = x.shape[1]
    if n - p < 2:
        raise ValueError(f'{n} controls cannot estimate {p} parameters and a leave-one-out SD')
    pinv = np.linalg.pinv(x)                   # p × n
    beta = pinv @ y                            # p × v
    resid = y - x @ beta                       # n × v
    leverage = np.einsum('ij,ji->i', x, pinv)  # diag of the hat matrix
    dof = n - p
    s2 = (resid ** 2).sum(axis=0) / dof
    with np.errstate(divide='ignore', invalid='ignore'):
        s2_loo = (dof * s2 - resid ** 2 / (1 - leverage)[:, None]) / (dof - 1)
        z_controls = resid / (1 - leverage)[:, None] / np.sqrt(s2_loo)
        sd = np.sqrt(s2)
        out = {'controls': np.where(np.isfinite(z_controls) & (s2_loo > 0), z_controls, np.nan),
               'mean': beta[0], 'sd': np.where(sd > 0, sd, np.nan)}
        if patients is not None:
            yp = np.asarray(patients, dtype=np.float64)
            xp = design(yp.shape[0]) if x_patients is None else np.asarray(x_patients, float)
            out['patients'] = (yp - xp @ beta) / out['sd']
    return out
