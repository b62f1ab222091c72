"""Per-slice delays for 2-D multi-slice readouts.

Each slice of a 2-D readout is acquired ``SliceTiming[k]`` seconds after the first, so its
effective post-labelling delay (or inversion time) is ``PLD + SliceTiming[k]``.  BIDS lists
``SliceTiming`` in the order of the slices along ``SliceEncodingDirection`` (``i``, ``j``,
``k``; a trailing ``-`` means the list runs from the last index of that axis to the first).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_AXES = {'i': 0, 'j': 1, 'k': 2}


def slice_axis(direction: str) -> tuple[int, bool]:
    """``(axis, reversed)`` for a BIDS ``SliceEncodingDirection``."""
    if direction not in ('i', 'j', 'k', 'i-', 'j-', 'k-'):
        raise ValueError(
            f'SliceEncodingDirection must be one of i, j, k, i-, j-, k-: {direction!r}')
    return _AXES[direction[0]], direction.endswith('-')


def slice_time_map(
    shape: Sequence[int], slice_timing: Sequence[float], direction: str = 'k'
) -> np.ndarray:
    """3-D map of each voxel's acquisition time offset (s) from ``SliceTiming``."""
    axis, reverse = slice_axis(direction)
    times = np.asarray(slice_timing, dtype=np.float64)
    if times.ndim != 1 or times.size != shape[axis]:
        raise ValueError(
            f'SliceTiming has {times.size} entries but the image has {shape[axis]} slices '
            f'along axis {direction!r}'
        )
    if reverse:
        times = times[::-1]
    view = [1, 1, 1]
    view[axis] = times.size
    return np.broadcast_to(times.reshape(view), tuple(shape[:3])).copy()
