"""Normative z-scores against a reference (control) group, voxel- or region-wise (numpy).

Model: for each voxel, the controls' values follow ``y = X b + e`` with ``X`` an intercept and
optional covariates (age, sex, …) and ``e ~ N(0, σ²)``. A participant's z is its residual from
the controls' fit divided by the controls' residual SD. Each control is scored leave-one-out
(fit without it), in closed form through the hat matrix: with ``e_i`` the ordinary residual and
``h_i`` the leverage, the prediction without control ``i`` is ``x_i b − h_i e_i / (1 − h_i)``
and the residual variance without it ``s²_(i) = ((n − p) s² − e_i² / (1 − h_i)) / (n − p − 1)``.
Without covariates this is exactly ``(y_i − mean of the others) / SD of the others``.

:class:`NormativeModel` accumulates the controls one image at a time (memory: a few arrays of
the image shape, whatever the number of controls) and allows missing (non-finite) values per
voxel: each voxel is fitted on the controls that have a value there. Accumulators filled from
disjoint subsets (e.g. in threads) combine exactly with :meth:`NormativeModel.merge`.
:class:`RunningMeanSD` is its intercept-only case: the streaming voxelwise mean and SD across
subjects of the group maps.
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


class NormativeModel:
    """Voxelwise least squares of the controls, accumulated one control at a time.

    ``add(y, x)`` takes a control's image (any shape, NaN = missing) and its design row ``x``
    (intercept first). The sums are kept about a shift (the first image), which leaves the
    residuals unchanged and keeps ``y'y − b'X'y`` free of cancellation. After :meth:`fit`,
    :meth:`z` scores any image; ``left_out=`` the control's own image scores it without it.
    """

    def __init__(self, shape, n_params: int):
        self.shape = (int(shape),) if np.isscalar(shape) else tuple(int(s) for s in shape)
        self.p = int(n_params)
        self.n = np.zeros(self.shape, dtype=np.int64)
        self.shift = None
        # X'X per voxel; with the intercept alone (every row [1]: the group maps) it is n, not
        # accumulated (one pass over the image fewer per subject)
        self._xtx = None if self.p == 1 else np.zeros((*self.shape, self.p, self.p))
        self._xty = np.zeros((*self.shape, self.p))
        self._yty = np.zeros(self.shape)
        self._fitted = False

    def add(self, y: np.ndarray, x) -> None:
        y = np.asarray(y)  # float32 stays float32 here: the subtraction promotes it
        x = np.asarray(x, dtype=np.float64).reshape(self.p)
        if y.shape != self.shape:
            raise ValueError(f'image shape {y.shape} differs from {self.shape}')
        ok = np.isfinite(y)
        if self.shift is None:
            self.shift = np.where(ok, y, 0.0).astype(np.float64)
        if x[0] != 1.0:
            raise ValueError('the first design column is the intercept: 1')
        d = np.subtract(y, self.shift, dtype=np.float64)
        all_ok = bool(ok.all())
        if all_ok:  # the common case, without masking
            self.n += 1
        else:
            self.n += ok
            d[~ok] = 0.0
        if self._xtx is not None:
            outer = np.outer(x, x)
            self._xtx += outer if all_ok else ok[..., None, None] * outer
        if self._xtx is None:  # intercept only: x = [1]
            self._xty[..., 0] += d
        else:
            self._xty += d[..., None] * x
        d *= d
        self._yty += d
        self._fitted = False

    @property
    def xtx(self) -> np.ndarray:
        """X'X per voxel (shape + (p, p))."""
        if self._xtx is None:
            return self.n[..., None, None].astype(np.float64)
        return self._xtx

    def merge(self, other: NormativeModel) -> None:
        """Add the images accumulated by ``other`` (same shape and design width, any shift).

        Its sums are re-centred on this shift: with ``δ = c_other − c`` and the intercept in
        the first design column, ``Σ x d' = Σ x d + δ Σ x`` and ``Σ d'² = Σ d² + 2 δ Σ d + n δ²``.
        """
        if other.shape != self.shape or other.p != self.p:
            raise ValueError('cannot merge models of different shapes or designs')
        if other.shift is None:
            return
        if self.shift is None:
            self.n, self.shift = other.n.copy(), other.shift.copy()
            self._xtx = None if other._xtx is None else other._xtx.copy()
            self._xty, self._yty = other._xty.copy(), other._yty.copy()
            self._fitted = False
            return
        delta = other.shift - self.shift
        sum_d = other._xty[..., 0]
        self._yty += other._yty + 2 * delta * sum_d + other.n * delta ** 2
        self._xty += other._xty + delta[..., None] * other.xtx[..., :, 0]
        if self._xtx is not None:
            self._xtx += other._xtx
        self.n += other.n
        self._fitted = False

    def fit(self) -> None:
        """Coefficients, residual variance and ``(X'X)⁻¹`` per voxel (NaN where fewer than
        ``p + 2`` controls have a value, or where the design is singular)."""
        n, p = self.n, self.p
        usable = n >= p + 2
        xtx = np.where(usable[..., None, None], self.xtx, np.eye(p))
        det = np.linalg.det(xtx)
        usable &= np.abs(det) > 1e-9 * np.abs(np.diagonal(xtx, axis1=-2, axis2=-1)).prod(-1)
        inv = np.linalg.inv(np.where(usable[..., None, None], xtx, np.eye(p)))
        beta = np.einsum('...ij,...j->...i', inv, self._xty)
        rss = np.maximum(self._yty - np.einsum('...i,...i->...', beta, self._xty), 0.0)
        dof = np.where(usable, n - p, 1)
        s2 = np.where(usable, rss / dof, np.nan)
        beta[..., 0] += self.shift if self.shift is not None else 0.0
        self.inv, self.beta, self.dof, self.s2 = inv, beta, dof, s2
        self.usable = usable & (s2 > 0)
        self._fitted = True

    @property
    def mean(self) -> np.ndarray:
        """The fitted value at the covariate centre (the intercept), NaN where unusable."""
        self._require_fit()
        return np.where(self.usable, self.beta[..., 0], np.nan)

    @property
    def sd(self) -> np.ndarray:
        """The controls' residual SD, NaN where unusable."""
        self._require_fit()
        return np.where(self.usable, np.sqrt(self.s2), np.nan)

    def predict(self, x) -> np.ndarray:
        self._require_fit()
        return np.einsum('...i,i->...', self.beta, np.asarray(x, dtype=np.float64))

    def score(self, y: np.ndarray, x, *, left_out: np.ndarray | None = None) -> dict:
        """``{'z', 'expected', 'sd'}`` of ``y`` (design row ``x``): the prediction and residual
        SD it is scored against. ``left_out``: that control's image as it entered the fit,
        removed in closed form (NaN where it was not in the fit)."""
        self._require_fit()
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        pred = self.predict(x)
        s2 = self.s2
        valid = self.usable
        if left_out is not None:
            resid = np.asarray(left_out, dtype=np.float64) - pred
            lev = np.einsum('i,...ij,j->...', x, self.inv, x)
            with np.errstate(divide='ignore', invalid='ignore'):
                pred = pred - lev * resid / (1 - lev)
                s2 = (self.dof * s2 - resid ** 2 / (1 - lev)) / (self.dof - 1)
            valid = valid & np.isfinite(resid) & (self.dof >= 2) & (lev < 1) & (s2 > 0)
        with np.errstate(divide='ignore', invalid='ignore'):
            sd = np.sqrt(np.where(valid, s2, np.nan))
            z = (y - pred) / sd
        return {'z': np.where(valid & np.isfinite(z), z, np.nan),
                'expected': np.where(valid, pred, np.nan), 'sd': sd}

    def z(self, y: np.ndarray, x, *, left_out: np.ndarray | None = None) -> np.ndarray:
        """z of ``y`` (see :meth:`score`)."""
        return self.score(y, x, left_out=left_out)['z']

    def _require_fit(self):
        if not self._fitted:
            self.fit()


class RunningMeanSD(NormativeModel):
    """Streaming voxelwise mean and SD (ddof = 1): the intercept-only normative model.

    Keeps n, Σ(x − c) and Σ(x − c)² per voxel about the shift c = the first image (its
    non-finite voxels 0), the textbook "shifted data" algorithm, free of cancellation when c is
    near the mean. :meth:`result` equals ``np.nanmean`` / ``np.nanstd(ddof=1)`` of the stacked
    images to rounding, and, unlike :meth:`NormativeModel.fit`, defines the mean from one image
    and the SD from two.
    """

    _INTERCEPT = np.ones(1)

    def __init__(self, shape):
        super().__init__(shape, 1)

    def add(self, image: np.ndarray) -> None:  # noqa: D102 - the model's add, intercept only
        super().add(image, self._INTERCEPT)

    def result(self, min_n: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean, SD with ddof=1, n): NaN mean where n < max(min_n, 1), NaN SD where n < 2."""
        n = self.n
        shift = self.shift if self.shift is not None else np.zeros(n.shape)
        s, ss = self._xty[..., 0], self._yty
        safe = np.maximum(n, 1)
        mean = np.where(n >= max(min_n, 1), shift + s / safe, np.nan)
        m2 = np.maximum(ss - s ** 2 / safe, 0.0)
        var = np.divide(m2, n - 1, out=np.full(n.shape, np.nan), where=n >= 2)
        sd = np.where(n >= max(min_n, 2), np.sqrt(var), np.nan)
        return mean, sd, n


def normative_z(controls: np.ndarray, patients: np.ndarray | None = None, *,
                x_controls: np.ndarray | None = None,
                x_patients: np.ndarray | None = None) -> dict:
    """z of every control (leave-one-out) and every patient, per column (voxel or region).

    ``controls`` (n × v) and ``patients`` (m × v) hold the values; ``x_*`` are the design
    matrices (default: intercept only). Returns ``{'controls', 'patients', 'mean', 'sd'}``:
    z arrays, and the controls' fitted intercept and residual SD per column. A column is
    fitted on the controls with a finite value there; fewer than ``p + 2`` of them give NaN.
    """
    y = np.asarray(controls, dtype=np.float64)
    n = y.shape[0]
    x = design(n) if x_controls is None else np.asarray(x_controls, dtype=np.float64)
    if n - x.shape[1] < 2:
        raise ValueError(f'{n} controls cannot estimate {x.shape[1]} parameters and a '
                         'leave-one-out SD')
    model = NormativeModel(y.shape[1:], x.shape[1])
    for row, xi in zip(y, x, strict=True):
        model.add(row, xi)
    model.fit()
    out = {'controls': np.stack([model.z(row, xi, left_out=row)
                                 for row, xi in zip(y, x, strict=True)]),
           'mean': model.mean, 'sd': model.sd}
    if patients is not None:
        yp = np.asarray(patients, dtype=np.float64)
        xp = design(yp.shape[0]) if x_patients is None else np.asarray(x_patients, float)
        out['patients'] = np.stack([model.z(row, xi) for row, xi in zip(yp, xp, strict=True)])
    return out
