"""matplotlib figures as inline PNG ``data:`` URIs (arrays in, strings out; no files, no nipype).

matplotlib is imported lazily (``bids-asl --help`` stays fast) with the Agg backend, and
``MPLCONFIGDIR`` is pointed at a temporary folder when unset, so nothing is written to $HOME
(read-only containers).
"""

from __future__ import annotations

import base64
import io
import os
import tempfile

import numpy as np

_PLT = None


def _pyplot():
    global _PLT  # noqa: PLW0603 - one lazy import per process
    if _PLT is None:
        if not os.environ.get('MPLCONFIGDIR'):
            os.environ['MPLCONFIGDIR'] = tempfile.mkdtemp(prefix='bids-asl-mpl-')
        import matplotlib  # noqa: PLC0415

        matplotlib.use('Agg', force=True)
        import matplotlib.pyplot as plt  # noqa: PLC0415

        plt.rcParams.update({'font.size': 8, 'figure.dpi': 80, 'savefig.dpi': 80,
                             'svg.hashsalt': 'bids-asl'})
        _PLT = plt
    return _PLT


def _to_uri(fig) -> str:
    plt = _pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format='png', bbox_inches='tight', metadata={'Software': None})
    plt.close(fig)
    return 'data:image/png;base64,' + base64.b64encode(buf.getvalue()).decode('ascii')


def pick_slices(volume: np.ndarray, n: int = 8, mask: np.ndarray | None = None) -> np.ndarray:
    """Up to ``n`` evenly spaced axial slice indices inside the extent of ``mask`` (or of
    nonzero, finite voxels; of the whole volume when there are none)."""
    keep = mask if mask is not None else (np.isfinite(volume) & (volume != 0))
    rows = np.flatnonzero(keep.reshape(-1, keep.shape[2]).any(axis=0))
    lo, hi = (rows[0], rows[-1]) if rows.size else (0, volume.shape[2] - 1)
    count = min(n, hi - lo + 1)
    # inner points of n + 2 evenly spaced ones: the first and last slices hold little brain
    picks = np.linspace(lo, hi, count + 2)[1:-1] if count > 2 else np.linspace(lo, hi, count)
    return np.unique(picks.round().astype(int))


def tile(volume: np.ndarray, slices, columns: int = 8) -> np.ndarray:
    """Axial slices side by side (rows of ``columns``), rotated for display (anterior up);
    padding is NaN (drawn as background)."""
    panels = [np.rot90(volume[:, :, k]) for k in slices]
    h, w = panels[0].shape
    n_rows = -(-len(panels) // columns)
    n_cols = min(columns, len(panels))
    out = np.full((n_rows * h, n_cols * w), np.nan)
    for i, panel in enumerate(panels):
        r, c = divmod(i, columns)
        out[r * h:(r + 1) * h, c * w:(c + 1) * w] = panel
    return out


def mosaic(volume: np.ndarray, *, vmin: float, vmax: float, cmap: str = 'viridis',
           label: str = '', slices=None, contour: np.ndarray | None = None,
           contour_level: float = 0.5, contour_color: str = 'r', columns: int = 8) -> str:
    """Axial mosaic with a colour bar; optional contour of a second image (mask, GM map)."""
    plt = _pyplot()
    vol = np.asarray(volume, dtype=float)
    if slices is None:
        slices = pick_slices(vol)
    tiled = tile(vol, slices, columns)
    width = 1.3 * min(columns, len(slices)) + 1.2
    fig, ax = plt.subplots(figsize=(width, 1.4 * tiled.shape[0] / max(tiled.shape[1], 1)
                                    * min(columns, len(slices)) + 0.4))
    im = ax.imshow(tiled, cmap=cmap, vmin=vmin, vmax=vmax, interpolation='nearest')
    if contour is not None:
        over = tile(np.asarray(contour, dtype=float), slices, columns)
        if np.nanmax(over, initial=0) > contour_level > np.nanmin(over, initial=0):
            ax.contour(np.nan_to_num(over), levels=[contour_level], colors=contour_color,
                       linewidths=0.6)
    ax.set_axis_off()
    bar = fig.colorbar(im, ax=ax, fraction=0.025, pad=0.01)
    bar.set_label(label)
    return _to_uri(fig)


def robust_range(values: np.ndarray, low: float = 2, high: float = 98) -> tuple[float, float]:
    """Percentile display range of the finite, nonzero values (0, 1 if there are none)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v != 0)]
    if v.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(v, [low, high])
    return (float(lo), float(hi)) if hi > lo else (float(lo), float(lo) + 1.0)


def lines(x, series: dict, *, xlabel: str, ylabel: str, hline: float | None = None,
          hline_label: str = '') -> str:
    """One line per entry of ``series`` (label → values) against ``x``."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 1.8))
    for name, values in series.items():
        ax.plot(x, values, lw=1, label=name)
    if hline is not None:
        ax.axhline(hline, color='r', ls='--', lw=0.8, label=hline_label or None)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if len(series) > 1 or hline_label:
        ax.legend(fontsize=6, ncol=7, loc='upper right', frameon=False)
    return _to_uri(fig)


def distribution(values, *, label: str, flagged=None, low: float | None = None,
                 high: float | None = None) -> str:
    """Histogram with each value as a tick below it; flagged values in red; threshold lines."""
    plt = _pyplot()
    x = np.asarray(values, dtype=float)
    finite = np.isfinite(x)
    fig, ax = plt.subplots(figsize=(3.4, 1.9))
    if finite.any():
        ax.hist(x[finite], bins=min(30, max(5, int(finite.sum() ** 0.5) + 1)),
                color='#8aa6c1')
        flag = np.zeros(x.shape, bool) if flagged is None else np.asarray(flagged, bool)
        ax.plot(x[finite & ~flag], np.zeros((finite & ~flag).sum()), '|', color='k', ms=8)
        ax.plot(x[finite & flag], np.zeros((finite & flag).sum()), '|', color='r', ms=12)
    for t in (low, high):
        if t is not None:
            ax.axvline(t, color='r', ls='--', lw=0.8)
    ax.set_xlabel(label)
    ax.set_ylabel('runs')
    return _to_uri(fig)
