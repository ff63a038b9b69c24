"""Named random streams: every random draw of a fit comes from a stream tied to its seed,
its purpose and its place in the algorithm (round, attempt, program), never from the
process's global random state. A fit resumed at any round boundary therefore draws exactly
what the uninterrupted fit drew, and fitting leaves the caller's random state untouched."""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterator

import numpy as np
import torch

__all__ = ["SeedStreams"]


class SeedStreams:
    """Independent streams derived from one seed, addressed by ``(name, *keys)``."""

    def __init__(self, seed: int):
        self.seed = int(seed)

    def seed_for(self, name: str, *keys: int) -> int:
        """A 63-bit seed for stream ``name`` at ``keys`` (e.g. the round and the attempt)."""
        entropy = [self.seed % 2**32, self.seed // 2**32 % 2**32, zlib.crc32(name.encode()), *(int(k) for k in keys)]
        return int(np.random.SeedSequence(entropy).generate_state(2, np.uint32).astype(np.uint64) @ [1, 2**31])

    def generator(self, name: str, *keys: int, device: str | torch.device = "cpu") -> torch.Generator:
        return torch.Generator(device=device).manual_seed(self.seed_for(name, *keys))

    @contextlib.contextmanager
    def torch_rng(self, name: str, *keys: int) -> Iterator[None]:
        """Seed torch's CPU random state for the body (module initialisation), and restore the
        caller's state afterwards."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed_for(name, *keys))
            yield
