"""General kinetic model (Buxton et al. 1998) and a vectorised multi-delay fit of CBF and ATT.

Signals are normalised: the functions return ΔM / M0 (M0 of tissue), with ``M0b = M0 / λ``.
CBF ``f`` is in mL/100 g/min (converted to mL/g/s inside), times in s.  ``t`` is the time since
the start of labelling: ``τ + PLD`` for (P)CASL (:func:`labelling_time`), ``TI`` for PASL.  Do
not pass the PLD where ``t`` is expected (a known peer bug that underestimates GM CBF by ~70 %).

(P)CASL, label duration τ, arrival time δ, T1' the relaxation after arrival::

    t < δ:          0
    δ ≤ t < δ+τ:    2 α f T1' e^{−δ/T1b} (1 − e^{−(t−δ)/T1'}) / λ
    t ≥ δ+τ:        2 α f T1' e^{−δ/T1b} e^{−(t−τ−δ)/T1'} (1 − e^{−τ/T1'}) / λ

PASL, bolus duration τ, with ``k = 1/T1b − 1/T1'``::

    δ ≤ t < δ+τ:    2 α f e^{−t/T1b} e^{kt} (e^{−kδ} − e^{−kt}) / (k λ)
    t ≥ δ+τ:        2 α f e^{−t/T1b} e^{kt} (e^{−kδ} − e^{−k(δ+τ)}) / (k λ)

Two variants: ``t1_tissue=None`` uses T1' = T1b throughout (the white-paper assumption; then
PASL reduces to ``2 α f (t−δ) e^{−t/T1b} / λ`` and ``2 α f τ e^{−t/T1b} / λ``); a value uses
``1/T1' = 1/T1_tissue + f/λ`` (Buxton 1998; the ASLDRO generator).  An optional macrovascular
component adds ``2 α aBV e^{−t/T1b}`` for PASL or ``2 α aBV e^{−δa/T1b}`` for (P)CASL while
``δa ≤ t < δa + τ`` (arterial blood volume fraction aBV, arterial arrival δa; Chappell et al.
2010).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from bids_asl.constants import PARTITION_COEFFICIENT, UNIT_SCALE


def labelling_time(pld, label_duration: float | None, asl_type: str):
    """Time since the start of labelling: τ + PLD for (P)CASL, TI (= PLD in BIDS) for PASL."""
    pld = np.asarray(pld, dtype=np.float64)
    return pld if asl_type == 'PASL' else pld + float(label_duration)


def _t1_prime(f, t1_blood, t1_tissue, lam):
    if t1_tissue is None:
        return np.asarray(t1_blood, dtype=np.float64)
    return 1.0 / (1.0 / np.asarray(t1_tissue) + np.asarray(f) / UNIT_SCALE / lam)


def tissue_signal(t, f, att, *, asl_type: str, tau: float, t1_blood: float, alpha: float,
                  t1_tissue=None, lam: float = PARTITION_COEFFICIENT):
    """Tissue ΔM/M0 at times ``t``; ``f``, ``att`` (and ``t1_tissue``) broadcast against ``t``."""
    t, f, att = (np.asarray(x, dtype=np.float64) for x in (t, f, att))
    fs = f / UNIT_SCALE
    t1p = _t1_prime(f, t1_blood, t1_tissue, lam)
    during = (t >= att) & (t < att + tau)
    after = t >= att + tau
    if asl_type == 'PASL':
        k = 1.0 / t1_blood - 1.0 / t1p
        k_safe = np.where(np.abs(k) < 1e-12, 1e-12, k)
        end = np.minimum(t, att + tau)  # t during the bolus, δ+τ after it
        with np.errstate(over='ignore', invalid='ignore'):
            q = np.exp(k_safe * t) * (np.exp(-k_safe * att) - np.exp(-k_safe * end)) / k_safe
        q = np.where(np.abs(k) < 1e-12, end - att, q)
        value = 2.0 * alpha * fs * np.exp(-t / t1_blood) * q / lam
        return np.where(during | after, value, 0.0)
    common = 2.0 * alpha * fs * t1p * np.exp(-att / t1_blood) / lam
    rise = -np.expm1(-(t - att) / t1p)
    decay = np.exp(-(t - tau - att) / t1p) * -np.expm1(-tau / t1p)
    return np.where(during, common * rise, np.where(after, common * decay, 0.0))


def arterial_signal(t, abv, aat, *, asl_type: str, tau: float, t1_blood: float, alpha: float):
    """Macrovascular ΔM/M0: labelled blood still in arteries (aBV a volume fraction)."""
    t, abv, aat = (np.asarray(x, dtype=np.float64) for x in (t, abv, aat))
    inside = (t >= aat) & (t < aat + tau)
    decay = np.exp(-t / t1_blood) if asl_type == 'PASL' else np.exp(-aat / t1_blood)
    return np.where(inside, 2.0 * alpha * abv * decay, 0.0)


def weighted_delay(signal, plds) -> np.ndarray:
    """Dai et al. 2012: WD = Σ w ΔM(w) / Σ ΔM(w) over the delays ``plds`` (last axis)."""
    signal = np.asarray(signal, dtype=np.float64)
    total = signal.sum(axis=-1)
    with np.errstate(invalid='ignore', divide='ignore'):
        return (signal * np.asarray(plds)).sum(axis=-1) / total


def att_from_weighted_delay(wd, plds, *, asl_type, tau, t1_blood, alpha=0.85, t1_tissue=None,
                            lam=PARTITION_COEFFICIENT, att_grid=None):
    """ATT from the weighted delay by inverting the model's WD(ATT) curve (monotonic part)."""
    grid = np.linspace(0.0, 3.0, 601) if att_grid is None else np.asarray(att_grid)
    t = labelling_time(plds, tau, asl_type)
    curve = np.array([weighted_delay(tissue_signal(t, 60.0, a, asl_type=asl_type, tau=tau,
                                                   t1_blood=t1_blood, alpha=alpha,
                                                   t1_tissue=t1_tissue, lam=lam), plds)
                      for a in grid])
    ok = np.isfinite(curve)
    grid, curve = grid[ok], np.maximum.accumulate(curve[ok])
    return np.interp(wd, curve, grid)


@dataclass(frozen=True)
class FitResult:
    """Per-voxel results of :func:`fit_multidelay` (1-D arrays over voxels)."""

    cbf: np.ndarray
    att: np.ndarray
    cbf_se: np.ndarray
    att_se: np.ndarray
    abv: np.ndarray | None
    abv_se: np.ndarray | None
    rss: np.ndarray
    r2: np.ndarray
    at_bound: np.ndarray
    iterations: int
    prior_weight: float = 0.0


#: CBF may go negative (noise: an unbiased estimate needs it, as BASIL allows); ATT in s.
DEFAULT_BOUNDS = {'cbf': (-200.0, 400.0), 'att': (0.05, 3.5), 'abv': (0.0, 0.05)}

#: BASIL's default ATT prior (mean, SD) in s: 1.3 for (P)CASL, 0.7 for PASL (oxford_asl).
ATT_PRIOR = {'PCASL': (1.3, 1.0), 'CASL': (1.3, 1.0), 'PASL': (0.7, 1.0)}


def _model(params, t, kw, fit_abv):
    f, att = params[:, :1], params[:, 1:2]
    out = tissue_signal(t, f, att, **kw)
    if fit_abv:
        # arterial arrival tied to tissue arrival minus a fixed transit (identifiable with
        # few delays): δa = max(δ − 0.3 s, 0)
        aat = np.maximum(att - 0.3, 0.0)
        out = out + arterial_signal(t, params[:, 2:3], aat, asl_type=kw['asl_type'],
                                    tau=kw['tau'], t1_blood=kw['t1_blood'], alpha=kw['alpha'])
    return out


def _pcasl_with_jacobian(params, t, kw):
    """(P)CASL tissue signal and its derivatives d/dCBF, d/dATT in one pass (analytic)."""
    f, att = params[:, :1], params[:, 1:2]
    tau, t1b, lam = kw['tau'], kw['t1_blood'], kw['lam']
    t1t = kw['t1_tissue']
    scale = 2.0 * kw['alpha'] / (UNIT_SCALE * lam)  # signal = scale * f * T1' * c * Q
    t1p = _t1_prime(f, t1b, t1t, lam) * np.ones_like(f)
    c = np.exp(-att / t1b)
    during = (t >= att) & (t < att + tau)
    after = t >= att + tau
    x1 = t - att
    x2 = x1 - tau
    # one exponential per element: E1 = exp(−(t−δ)/T1') during, E2 = exp(−(t−τ−δ)/T1') after
    e = np.exp(-np.where(during, x1, np.where(after, x2, 0.0)) / t1p)
    e3 = np.exp(-tau / t1p)
    q = np.where(during, 1.0 - e, np.where(after, e * (1.0 - e3), 0.0))
    amp = scale * t1p * c  # per unit CBF
    model = amp * f * q
    # d/dATT: during  scale f c (−T1'(1−E1)/T1b − E1); after  S (1/T1' − 1/T1b)
    d_att = np.where(during, scale * f * c * (-t1p * (1.0 - e) / t1b - e),
                     np.where(after, model * (1.0 / t1p - 1.0 / t1b), 0.0))
    d_f = amp * q
    if t1t is not None:  # T1' depends on f: dT1'/df = −T1'² / (6000 λ)
        dt1p = -(t1p ** 2) / (UNIT_SCALE * lam)
        # d/dT1' of T1'·Q
        dq = np.where(during, (1.0 - e) - e * x1 / t1p,
                      np.where(after, e * (1.0 - e3) * (1.0 + x2 / t1p) - e * e3 * tau / t1p,
                               0.0))
        d_f = d_f + scale * f * c * dq * dt1p
    return model, np.stack([d_f, d_att], axis=-1)


def _model_and_jacobian(params, t, kw, fit_abv, steps):
    if kw['asl_type'] != 'PASL' and not fit_abv:
        return _pcasl_with_jacobian(params, t, kw)
    base = _model(params, t, kw, fit_abv)
    return base, _jacobian(params, t, kw, fit_abv, base, steps)


def _grid_start(y, t, kw, bounds, n_grid, prior_w2=0.0, prior_mean=0.0, fit_abv=False):
    """Best (CBF, ATT[, aBV]) over an ATT grid, the amplitudes solved by linear least squares.

    CBF (and aBV) enter the model linearly once ATT is fixed (T1' evaluated at f = 60), so each
    grid point costs one matrix product; aBV is clipped to its bounds (then CBF re-solved).
    """
    grid = np.linspace(bounds['att'][0], bounds['att'][1], n_grid)
    if t.ndim == 1:  # one time row shared by every voxel (3-D readouts)
        t_rows, inverse = t[None], np.zeros(y.shape[0], dtype=np.intp)
    else:
        t_rows, inverse = np.unique(t, axis=0, return_inverse=True)
        inverse = inverse.ravel()
    best = np.zeros((y.shape[0], 3 if fit_abv else 2))
    yy = (y * y).sum(axis=1)
    penalty = prior_w2 * (grid - prior_mean) ** 2
    art = {key: kw[key] for key in ('asl_type', 'tau', 't1_blood', 'alpha')}
    chunks = []
    for row_index, t_row in enumerate(t_rows):
        sel_all = np.flatnonzero(inverse == row_index)
        # voxel chunks keep the (voxels x grid) temporaries small and in cache
        chunks += [(t_row, sel_all[i:i + 65536]) for i in range(0, sel_all.size, 65536)]
    curves = {}
    for t_row, sel in chunks:
        ys = y[sel]
        key = t_row.tobytes()
        if key not in curves:
            curves[key] = np.stack([tissue_signal(t_row, 60.0, a, **kw) / 60.0 for a in grid])
        g1 = curves[key]
        g1y, g11 = ys @ g1.T, (g1 * g1).sum(axis=1)
        with np.errstate(divide='ignore', invalid='ignore'):
            f = np.where(g11 > 0, g1y / g11, 0.0)
        if fit_abv:
            g2 = np.stack([arterial_signal(t_row, 1.0, max(a - 0.3, 0.0), **art)
                           for a in grid])
            g2y, g22, g12 = ys @ g2.T, (g2 * g2).sum(axis=1), (g1 * g2).sum(axis=1)
            det = g11 * g22 - g12 ** 2
            with np.errstate(divide='ignore', invalid='ignore'):
                abv = np.where(det > 0, (g11 * g2y - g12 * g1y) / det, 0.0)
            abv = np.clip(np.nan_to_num(abv), *bounds['abv'])
            with np.errstate(divide='ignore', invalid='ignore'):
                f = np.where(g11 > 0, (g1y - abv * g12) / g11, 0.0)
        else:
            abv, g2y, g22, g12 = 0.0, 0.0, 0.0, 0.0
        f = np.clip(f, *bounds['cbf'])
        sse = (yy[sel, None] - 2 * f * g1y - 2 * abv * g2y + f * f * g11
               + 2 * f * abv * g12 + abv * abv * g22 + penalty)
        k = np.argmin(sse, axis=1)
        rows = np.arange(sel.size)
        cols = [f[rows, k], grid[k]]
        if fit_abv:
            cols.append(abv[rows, k])
        best[sel] = np.column_stack(cols)
    return best


def _solve(a, b):
    if a.shape[-1] == 2:
        det = a[:, 0, 0] * a[:, 1, 1] - a[:, 0, 1] * a[:, 1, 0]
        det = np.where(np.abs(det) < 1e-300, 1e-300, det)
        x0 = (a[:, 1, 1] * b[:, 0] - a[:, 0, 1] * b[:, 1]) / det
        x1 = (a[:, 0, 0] * b[:, 1] - a[:, 1, 0] * b[:, 0]) / det
        return np.column_stack([x0, x1])
    return np.linalg.solve(a, b[..., None])[..., 0]


def _jacobian(params, t, kw, fit_abv, base, steps):
    cols = []
    for j, h in enumerate(steps):
        shifted = params.copy()
        shifted[:, j] += h
        cols.append((_model(shifted, t, kw, fit_abv) - base) / h)
    return np.stack(cols, axis=-1)  # (n, n_t, k)


def _normal_equations(jac, resid):
    """JᵀJ (n, k, k) and Jᵀr (n, k) for stacks of small Jacobians (faster than einsum)."""
    k = jac.shape[-1]
    cols = [jac[..., i] for i in range(k)]
    jtj = np.empty((jac.shape[0], k, k))
    for i in range(k):
        for j in range(i, k):
            jtj[:, i, j] = jtj[:, j, i] = (cols[i] * cols[j]).sum(axis=1)
    jtr = np.column_stack([(c * resid).sum(axis=1) for c in cols])
    return jtj, jtr


def _inverse_diagonal(a):
    """Diagonal of the inverse of each (k, k) matrix; NaN where singular."""
    if a.shape[-1] == 2:
        det = a[:, 0, 0] * a[:, 1, 1] - a[:, 0, 1] * a[:, 1, 0]
        with np.errstate(divide='ignore', invalid='ignore'):
            out = np.column_stack([a[:, 1, 1], a[:, 0, 0]]) / det[:, None]
        out[np.abs(det) <= 1e-300] = np.nan
        return out
    out = np.full(a.shape[:2], np.nan)
    ok = np.abs(np.linalg.det(a)) > 1e-300
    out[ok] = np.diagonal(np.linalg.inv(a[ok]), axis1=1, axis2=2)
    return out


def _fit_block(y, t, t1_tissue, *, kw, bnd, k, fit_abv, w2, prior_mean, n_grid, max_iter,
               tol, grid_t1):
    """The grid start and Levenberg–Marquardt on one block of voxels (arrays of the block)."""
    n, n_t = y.shape
    tt = t if t.ndim == 2 else t[None, :]
    t1t = None if t1_tissue is None else t1_tissue[:, None]
    kw = {**kw, 't1_tissue': t1t}
    grid_kw = {**kw, 't1_tissue': grid_t1}
    # the arterial rectangle is discontinuous in ATT, which gradient steps cannot cross: give
    # the aBV model a fine (10 ms) grid so that the start is already in the right piece
    n_grid = max(n_grid, 346) if fit_abv else n_grid
    params = _grid_start(y, t, grid_kw, bnd, n_grid, w2, prior_mean, fit_abv)
    lo = np.array([bnd['cbf'][0], bnd['att'][0], bnd['abv'][0]][:k])
    hi = np.array([bnd['cbf'][1], bnd['att'][1], bnd['abv'][1]][:k])
    steps = np.array([1e-3, 1e-4, 1e-6][:k])
    mu = np.full(n, 1e-3)
    model, jac = _model_and_jacobian(params, tt, kw, fit_abv, steps)
    resid = y - model
    rss = (resid ** 2).sum(axis=1)
    obj = rss + w2 * (params[:, 1] - prior_mean) ** 2
    active = np.ones(n, dtype=bool)
    iterations = 0
    eye = np.eye(k)
    for iterations in range(1, max_iter + 1):  # noqa: B007 - reported below
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        if idx.size == n:  # everything active: views, not copies
            idx = slice(None)
        p, ta = params[idx].copy(), tt if tt.shape[0] == 1 else tt[idx]  # params change below
        kwa = {**kw, 't1_tissue': None if t1t is None else t1t[idx]}
        jtj, jtr = _normal_equations(jac[idx], resid[idx])
        jtj[:, 1, 1] += w2
        jtr[:, 1] += w2 * (prior_mean - p[:, 1])
        # Marquardt scaling with a floor, so that a parameter the data do not determine (ATT
        # shorter than every PLD cancels out of the white-paper model) cannot stall the others
        diag = np.diagonal(jtj, axis1=1, axis2=2)
        floor = 1e-8 * diag.max(axis=1, keepdims=True) + 1e-300
        damped = jtj + mu[idx, None, None] * (np.maximum(diag, floor)[:, :, None] * eye)
        new = np.clip(p + _solve(damped, jtr), lo, hi)
        new_model, new_jac = _model_and_jacobian(new, ta, kwa, fit_abv, steps)
        new_resid = y[idx] - new_model
        new_rss = (new_resid ** 2).sum(axis=1)
        new_obj = new_rss + w2 * (new[:, 1] - prior_mean) ** 2
        better = new_obj < obj[idx]
        gain = np.where(better, obj[idx] - new_obj, 0.0)
        acc = np.flatnonzero(better) if isinstance(idx, slice) else idx[better]
        params[acc] = new[better]
        resid[acc] = new_resid[better]
        jac[acc] = new_jac[better]
        rss[acc] = new_rss[better]
        obj[acc] = new_obj[better]
        mu[idx] = np.where(better, mu[idx] / 3.0, mu[idx] * 4.0)
        small = np.abs(new - p).max(axis=1) < 1e-10
        done = (better & ((gain <= tol * np.maximum(obj[idx], 1e-30)) | small)) | (
            mu[idx] > 1e10)
        active[np.flatnonzero(done) if isinstance(idx, slice) else idx[done]] = False
    # standard errors at the solution (the Jacobian there is cached)
    jtj = _normal_equations(jac, resid)[0]
    jtj[:, 1, 1] += w2
    sigma2 = rss / (n_t - k)
    se = np.sqrt(np.clip(_inverse_diagonal(jtj) * sigma2[:, None], 0, None))
    return params, se, rss, iterations


def fit_multidelay(y, t, *, asl_type: str, tau: float, t1_blood: float, alpha: float,
                   t1_tissue=None, lam: float = PARTITION_COEFFICIENT, fit_abv: bool = False,
                   bounds: dict | None = None, att_prior: tuple[float, float] | None = None,
                   noise_sd: float | None = None, n_grid: int = 36, max_iter: int = 50,
                   tol: float = 1e-10, n_threads: int = 1) -> FitResult:
    """Fit CBF and ATT (and aBV) to ΔM/M0 of all voxels at once.

    ``y``: (n_voxels, n_t) normalised ΔM; repeated delays are fitted jointly.  ``t``: (n_t,) or
    (n_voxels, n_t) times since labelling start (per-voxel for 2-D readouts).  ``t1_tissue``:
    ``None`` (T1b model), a scalar or an (n_voxels,) array.  Start: an ATT grid with CBF in
    closed form; then bounded Levenberg–Marquardt on every voxel simultaneously.  Standard errors
    from ``σ² (JᵀJ)⁻¹`` with ``σ² = RSS / (n_t − k)``.

    ``att_prior=(mean, sd)`` makes it a maximum-a-posteriori fit with a Gaussian prior on ATT
    (as BASIL does; Chappell et al. 2009): the objective gains ``(σn/sd)² (ATT − mean)²`` where
    σn is the noise SD of ``y``, given as ``noise_sd`` or estimated by :func:`pooled_noise_sd`.
    With noise-free data σn = 0 and the prior has no effect.  ``n_threads`` > 1 fits blocks of
    voxels in threads (the result does not depend on it).
    """
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 2:
        raise ValueError(f'y must be (n_voxels, n_t), got shape {y.shape}')
    t = np.asarray(t, dtype=np.float64)
    n, n_t = y.shape
    bnd = {**DEFAULT_BOUNDS, **(bounds or {})}
    k = 3 if fit_abv else 2
    if n_t <= k:
        raise ValueError(f'{n_t} observations cannot determine {k} parameters')
    t1t = None if t1_tissue is None else np.broadcast_to(
        np.asarray(t1_tissue, dtype=np.float64), (n,))[:, None]
    kw = {'asl_type': asl_type, 'tau': tau, 't1_blood': t1_blood, 'alpha': alpha, 'lam': lam}
    if not np.all(np.isfinite(y)):
        raise ValueError('y contains NaN or Inf')
    w2, prior_mean = 0.0, 0.0
    if att_prior is not None:
        prior_mean, prior_sd = (float(v) for v in att_prior)
        if not prior_sd > 0:
            raise ValueError('ATT prior SD must be > 0')
        sigma = pooled_noise_sd(y, t) if noise_sd is None else float(noise_sd)
        if sigma is None:  # no repeated delays: residual SD of an unpenalised fit
            # on an evenly spaced subsample of voxels (a pooled median needs no more)
            sub = np.linspace(0, n - 1, min(n, 20000)).astype(np.intp)
            t1_sub = None if t1_tissue is None else np.broadcast_to(
                np.asarray(t1_tissue, dtype=np.float64), (n,))[sub]
            free = fit_multidelay(y[sub], t if t.ndim == 1 else t[sub], asl_type=asl_type,
                                  tau=tau, t1_blood=t1_blood, alpha=alpha, t1_tissue=t1_sub,
                                  lam=lam, fit_abv=fit_abv, bounds=bounds, n_grid=n_grid,
                                  max_iter=max_iter, tol=tol)
            sigma = float(np.sqrt(np.median(free.rss / (n_t - k))))
        w2 = (sigma / prior_sd) ** 2
    t1_all = None if t1t is None else t1t[:, 0]
    blocks = np.array_split(np.arange(n), max(1, min(int(n_threads), n // 1000 or 1)))
    opts = {'kw': kw, 'bnd': bnd, 'k': k, 'fit_abv': fit_abv, 'w2': w2,
            'prior_mean': prior_mean, 'n_grid': n_grid, 'max_iter': max_iter, 'tol': tol,
            'grid_t1': None if t1t is None else float(np.median(t1t))}

    def run(block):
        return _fit_block(y[block], t if t.ndim == 1 else t[block],
                          None if t1_all is None else t1_all[block], **opts)

    if len(blocks) > 1:  # numpy releases the GIL in its loops: threads use several cores
        with ThreadPoolExecutor(max_workers=len(blocks)) as pool:
            parts = list(pool.map(run, blocks))
    else:
        parts = [run(blocks[0])]
    params = np.concatenate([part[0] for part in parts])
    se = np.concatenate([part[1] for part in parts])
    rss = np.concatenate([part[2] for part in parts])
    iterations = max(part[3] for part in parts)
    lo = np.array([bnd['cbf'][0], bnd['att'][0], bnd['abv'][0]][:k])
    hi = np.array([bnd['cbf'][1], bnd['att'][1], bnd['abv'][1]][:k])
    centred = y - y.mean(axis=1, keepdims=True)
    sst = (centred ** 2).sum(axis=1)
    with np.errstate(divide='ignore', invalid='ignore'):
        r2 = np.where(sst > 0, 1.0 - rss / sst, np.nan)
    at_bound = np.any(np.isclose(params, lo, rtol=0, atol=1e-9) |
                      np.isclose(params, hi, rtol=0, atol=1e-9), axis=1)
    return FitResult(cbf=params[:, 0], att=params[:, 1], cbf_se=se[:, 0], att_se=se[:, 1],
                     abv=params[:, 2] if fit_abv else None,
                     abv_se=se[:, 2] if fit_abv else None, rss=rss, r2=r2, at_bound=at_bound,
                     iterations=iterations, prior_weight=w2)


def pooled_noise_sd(y, t) -> float | None:
    """Noise SD of ``y`` pooled over voxels from repeated delays: the median over voxels of the
    within-delay SD; ``None`` when no delay is repeated."""
    y = np.asarray(y, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    t_row = t if t.ndim == 1 else t[0]
    groups = [np.flatnonzero(np.isclose(t_row, u)) for u in np.unique(t_row)]
    repeated = [g for g in groups if g.size > 1]
    if not repeated:
        return None
    ss = sum(((y[:, g] - y[:, g].mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
             for g in repeated)
    dof = sum(g.size - 1 for g in repeated)
    return float(np.sqrt(np.median(ss / dof)))
