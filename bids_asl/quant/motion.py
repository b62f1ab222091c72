"""Rigid-body motion parameters and framewise displacement.

A rigid transform maps a point ``x`` of the reference image (world coordinates, mm) to the
corresponding point of a volume: ``x' = R (x − c) + c + t``, with ``c`` the centre of rotation.
We report it as three Euler angles (rad; ``R = Rz · Ry · Rx``) and the translation ``t`` (mm),
the convention of FSL/SPM-style motion parameters.  Framewise displacement follows Power et al.
2012: ``FD_i = Σ|Δt| + r Σ|Δθ|`` with the rotations converted to arc length on a sphere of
radius ``r`` = 50 mm.
"""

from __future__ import annotations

import numpy as np

HEAD_RADIUS_MM = 50.0


def rotation_matrix(angles) -> np.ndarray:
    """``R = Rz(γ) Ry(β) Rx(α)`` for ``angles = (α, β, γ)`` in radians."""
    a, b, g = (float(v) for v in angles)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(g), -np.sin(g), 0], [np.sin(g), np.cos(g), 0], [0, 0, 1]])
    return rz @ ry @ rx


def euler_angles(matrix) -> np.ndarray:
    """Inverse of :func:`rotation_matrix` (for |β| < 90°)."""
    r = np.asarray(matrix, dtype=np.float64)
    beta = -np.arcsin(np.clip(r[2, 0], -1.0, 1.0))
    alpha = np.arctan2(r[2, 1], r[2, 2])
    gamma = np.arctan2(r[1, 0], r[0, 0])
    return np.array([alpha, beta, gamma])


def rigid_matrix(params, centre=(0.0, 0.0, 0.0)) -> np.ndarray:
    """4×4 matrix of ``x' = R (x − c) + c + t`` from ``params = (α, β, γ, tx, ty, tz)``."""
    params = np.asarray(params, dtype=np.float64)
    r = rotation_matrix(params[:3])
    c = np.asarray(centre, dtype=np.float64)
    out = np.eye(4)
    out[:3, :3] = r
    out[:3, 3] = c + params[3:] - r @ c
    return out


def rigid_params(matrix, centre=(0.0, 0.0, 0.0)) -> np.ndarray:
    """``(α, β, γ, tx, ty, tz)`` of a 4×4 rigid matrix about ``centre`` (inverse of above)."""
    m = np.asarray(matrix, dtype=np.float64)
    c = np.asarray(centre, dtype=np.float64)
    return np.concatenate([euler_angles(m[:3, :3]), m[:3, 3] - c + m[:3, :3] @ c])


def framewise_displacement(params, radius: float = HEAD_RADIUS_MM) -> np.ndarray:
    """Power et al. 2012 FD for a (T, 6) array of (rotations rad, translations mm); FD_0 = 0."""
    params = np.asarray(params, dtype=np.float64)
    if params.ndim != 2 or params.shape[1] != 6:
        raise ValueError(f'expected (T, 6) motion parameters, got {params.shape}')
    diff = np.abs(np.diff(params, axis=0))
    fd = diff[:, 3:].sum(axis=1) + radius * diff[:, :3].sum(axis=1)
    return np.concatenate([[0.0], fd])
