"""Figures without pyplot: nothing here selects a plotting backend or touches pyplot's
global state, so importing or calling nsprog never changes how a user's own plots (in a
notebook, say) are drawn. A :class:`matplotlib.figure.Figure` renders to PNG by itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from nsprog.utils import atomic_write

__all__ = ["new_figure", "save_figure"]


def new_figure(nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] = (5.0, 4.0), **kw) -> tuple[Figure, np.ndarray]:
    """A figure and its axes as a 2-D array (``squeeze=False``)."""
    fig = Figure(figsize=figsize, layout=kw.pop("layout", "constrained"))
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def save_figure(fig: Figure, path: str | Path, dpi: int = 120) -> Path:
    """Write ``fig`` as a PNG atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda p: fig.savefig(p, dpi=dpi, format="png"))
