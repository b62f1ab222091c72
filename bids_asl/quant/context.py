"""Volume types from ``aslcontext.tsv`` and the control/label subtraction.

Arrays are images with time last: ``(X, Y, Z, T)``.  ΔM = control − label (the label image has
the lower signal), defined here once for the whole package.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bids_asl.constants import VOLUME_TYPES


@dataclass(frozen=True)
class VolumeIndex:
    """0-based indices of each volume type in the series, in acquisition order."""

    control: tuple[int, ...]
    label: tuple[int, ...]
    m0scan: tuple[int, ...]
    deltam: tuple[int, ...]
    cbf: tuple[int, ...]
    norf: tuple[int, ...]

    @property
    def n_volumes(self) -> int:
        return sum(len(v) for v in vars(self).values())


def index_volume_types(volume_types: Sequence[str]) -> VolumeIndex:
    """Group volume indices by type; raise ``ValueError`` on a type BIDS does not define."""
    groups: dict[str, list[int]] = {t: [] for t in VOLUME_TYPES}
    for i, vtype in enumerate(volume_types):
        if vtype not in groups:
            raise ValueError(
                f'volume {i + 1} has type {vtype!r}; allowed: {", ".join(VOLUME_TYPES)}'
            )
        groups[vtype].append(i)
    return VolumeIndex(
        control=tuple(groups['control']),
        label=tuple(groups['label']),
        m0scan=tuple(groups['m0scan']),
        deltam=tuple(groups['deltam']),
        cbf=tuple(groups['cbf']),
        norf=tuple(groups['noRF']),
    )


def pair_control_label(index: VolumeIndex) -> list[tuple[int, int]]:
    """Pair the i-th control with the i-th label, whatever their order (CL, LC or blocked).

    Returns ``[(control_index, label_index), ...]``; raises ``ValueError`` when the numbers of
    control and label volumes differ.
    """
    if len(index.control) != len(index.label):
        raise ValueError(
            f'{len(index.control)} control and {len(index.label)} label volumes: '
            'cannot pair them'
        )
    return list(zip(index.control, index.label, strict=True))


def difference_sources(volume_types: Sequence[str]) -> list[tuple[int, ...]]:
    """The source volumes of each ΔM volume, in acquisition order.

    A control/label pair gives ``(control, label)``; a ``deltam`` volume gives ``(index,)``.
    """
    index = index_volume_types(volume_types)
    items: list[tuple[int, ...]] = list(pair_control_label(index))
    items += [(i,) for i in index.deltam]
    return sorted(items, key=min)


def difference_series(data: np.ndarray, volume_types: Sequence[str]) -> np.ndarray:
    """ΔM series ``(X, Y, Z, N)``: control − label for each pair, plus the ``deltam`` volumes.

    Raises ``ValueError`` when the series holds no ΔM information.
    """
    if data.ndim != 4 or data.shape[3] != len(volume_types):
        raise ValueError(
            f'data has shape {data.shape}; expected 4-D with {len(volume_types)} volumes'
        )
    sources = difference_sources(volume_types)
    if not sources:
        raise ValueError('no control/label pairs and no deltam volumes')
    out = np.empty(data.shape[:3] + (len(sources),), dtype=np.float64)
    for k, src in enumerate(sources):
        if len(src) == 2:
            out[..., k] = data[..., src[0]] - data[..., src[1]]
        else:
            out[..., k] = data[..., src[0]]
    return out


def mean_of_type(data: np.ndarray, volume_types: Sequence[str], vtype: str) -> np.ndarray:
    """Mean image of all volumes of one type; ``ValueError`` when there is none."""
    idx = [i for i, t in enumerate(volume_types) if t == vtype]
    if not idx:
        raise ValueError(f'no {vtype!r} volumes in the series')
    return data[..., idx].mean(axis=-1)
