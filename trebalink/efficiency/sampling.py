"""Nested samples of contiguous chunks of the training items (frames or windows).

The training items, in time order, are cut into ``n_chunks`` contiguous chunks of (nearly)
equal size. Sampling ``s`` draws one order of the chunks from a seeded stream; the sample at
``f`` percent is the first ``max(1, round(f / 100 * n_chunks))`` chunks of that order. So
every fraction is made of whole contiguous chunks (labels come in bouts, as an annotator
would give them), and each smaller fraction is a prefix of every larger one (nested).
Samples are indices into the training split only, which the time-block split keeps apart
from the validation and test windows.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from nsprog.seeds import SeedStreams

__all__ = ["FRACTIONS", "check_fractions", "chunk_edges", "chunk_order", "chunks_for", "nested_sample"]

#: the label fractions of the protocol, in percent of the training items
FRACTIONS = (1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0)


def check_fractions(fractions: Sequence[float], field: str = "fractions") -> list[float]:
    """Sorted, distinct fractions in ``(0, 100]`` percent; a ``ValueError`` naming the field and
    the bad values otherwise."""
    vals = list(fractions)
    if not vals:
        raise ValueError(f"{field}: expected at least one label fraction in percent, e.g. [1, 10, 100]")
    bad = [v for v in vals if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0 < float(v) <= 100)]
    if bad:
        raise ValueError(f"{field}: every fraction must be a percentage in (0, 100]; got {bad} "
                         f"(1 means 1% of the training items, 100 all of them)")
    out = sorted({float(v) for v in vals})
    if len(out) != len(vals):
        raise ValueError(f"{field}: fractions must be distinct; got {vals}")
    return out


def chunk_edges(n: int, n_chunks: int) -> np.ndarray:
    """``[k + 1]`` boundaries of ``k = min(n_chunks, n)`` contiguous chunks of ``n`` items."""
    if n < 1:
        raise ValueError(f"cannot sample from {n} training items")
    k = max(1, min(int(n_chunks), n))
    return np.round(np.linspace(0, n, k + 1)).astype(np.int64)


def chunk_order(n_chunks: int, sampling: int, seed: int) -> np.ndarray:
    """The order in which sampling ``sampling`` takes the chunks (a seeded permutation)."""
    gen = np.random.default_rng(SeedStreams(seed).seed_for("label-chunks", sampling))
    return gen.permutation(n_chunks)


def chunks_for(fraction: float, n_chunks: int) -> int:
    """How many chunks make ``fraction`` percent (at least one)."""
    return int(min(n_chunks, max(1, round(float(fraction) / 100.0 * n_chunks))))


def nested_sample(n: int, fraction: float, sampling: int, seed: int, n_chunks: int = 100) -> np.ndarray:
    """Sorted indices (into ``n`` training items) of the sample at ``fraction`` percent."""
    check_fractions([fraction], "fraction")
    edges = chunk_edges(n, n_chunks)
    k = len(edges) - 1
    take = np.sort(chunk_order(k, sampling, seed)[: chunks_for(fraction, k)])
    return np.concatenate([np.arange(edges[c], edges[c + 1]) for c in take])
