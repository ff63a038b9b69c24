"""The verifier: provably safe share of the input box, plus empirical checks.

:func:`verify` splits the input box into ``N`` equal pieces per input dimension (``N**k``
pieces for ``k`` inputs), runs the join interpreter on every piece (in chunks, vectorised
over the pieces of a chunk) and counts a piece safe when every recorded interval lies
inside its spec (tolerance ``1e-6``). The memory it needs (one flag per piece plus the
working set of a chunk) is estimated *before* anything runs, and a count that would not
fit raises :class:`VerifierError` naming the component count.

:func:`empirical_unsafe` is the share of uniformly sampled inputs whose concrete run
leaves the spec; :func:`test_loss` the data loss on held-out trajectories.
"""

from __future__ import annotations

import copy
import logging
import os
import time
from dataclasses import dataclass

import torch

from nsprog.progress import Progress
from nsprog.safety.benchmarks import Benchmark
from nsprog.safety.box import count_pieces, grid_pieces
from nsprog.safety.interpret import run_program

log = logging.getLogger("nsprog")

__all__ = ["VerifyResult", "VerifierError", "verify", "estimate_verifier_memory", "available_memory",
           "empirical_unsafe", "as_dtype"]


class VerifierError(ValueError):
    """The verifier cannot run as asked (e.g. the component count would exceed memory)."""


@dataclass
class VerifyResult:
    """``provably_safe = safe / pieces``; ``flags`` (bool per piece) is kept only when asked."""

    pieces: int
    safe: int
    provably_safe: float
    per_dim: int
    seconds: float
    pieces_per_second: float
    flags: torch.Tensor | None = None

    def summary(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "flags"}


def available_memory() -> int:
    """Bytes of memory available to this process (MemAvailable, else physical memory)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def _widest(modules: dict) -> int:
    w = 1
    for m in modules.values():
        for p in m.parameters() if hasattr(m, "parameters") else []:
            if p.dim() == 2:
                w = max(w, *p.shape)
    return w


def estimate_verifier_memory(bench: Benchmark, modules: dict, per_dim: int, chunk: int, itemsize: int = 8) -> dict:
    """Estimated bytes: per-piece flags for all pieces plus the working set of one chunk."""
    k = bench.n_inputs
    pieces = count_pieces(k, per_dim)
    n_vars = len(bench.program.variables)
    n_rec = sum(bench.program.record_counts.values())
    width = _widest(modules)
    # env copies at nested branches (x3), records, and network activations (x6 live) in lo|hi form
    per_piece = itemsize * 2 * (3 * n_vars + n_rec + 6 * width) + 64
    working = min(chunk, pieces) * per_piece
    flags = pieces  # one byte per piece
    return {"pieces": pieces, "flags_bytes": flags, "working_bytes": working, "total_bytes": flags + working}


def as_dtype(modules: dict, dtype: torch.dtype) -> dict:
    """Copies of the modules in ``dtype`` (the originals are left alone)."""
    out = {}
    for k, m in modules.items():
        m2 = copy.deepcopy(m)
        out[k] = m2.to(dtype)
    return out


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB", "EB"):
        if n < 1024 or unit == "EB":
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} EB"


def check_verifier_size(bench: Benchmark, modules: dict, per_dim: int, chunk: int = 20_000,
                        max_memory: int | None = None, itemsize: int = 8) -> dict:
    """Raise :class:`VerifierError` when ``per_dim`` pieces per dimension would not fit in memory."""
    if not isinstance(per_dim, int) or isinstance(per_dim, bool) or per_dim < 1:
        raise VerifierError(f"verifier components must be an integer >= 1 per input dimension; got {per_dim!r}")
    k = bench.n_inputs
    est = estimate_verifier_memory(bench, modules, per_dim, chunk, itemsize)
    limit = available_memory() // 2 if max_memory is None else int(max_memory)
    if est["total_bytes"] > limit:
        room = max(limit - est["working_bytes"], 1)
        n_max = max(1, int(room ** (1.0 / k) * (1 - 1e-9)))
        raise VerifierError(
            f"verifier components = {per_dim} per input dimension gives {per_dim}^{k} = {est['pieces']:.3g} pieces "
            f"for the {k} input(s) {', '.join(bench.program.inputs)} of {bench.name!r}; that needs an estimated "
            f"{_fmt_bytes(est['total_bytes'])} of memory but the limit is {_fmt_bytes(limit)}; "
            f"use at most about {n_max} components per dimension"
        )
    return est


def verify(bench: Benchmark, modules: dict, per_dim: int, *, chunk: int = 20_000, dtype: torch.dtype = torch.float64,
           tol: float = 1e-6, max_memory: int | None = None, keep_flags: bool = False,
           progress: bool = False) -> VerifyResult:
    """Provably safe fraction of ``bench``'s input box with ``per_dim`` pieces per input dimension.

    A long verification says how long it will take after its first chunk (a log line) and,
    with ``progress``, shows a bar on a terminal."""
    check_verifier_size(bench, modules, per_dim, chunk, max_memory, torch.finfo(dtype).bits // 8)
    k = bench.n_inputs
    pieces = count_pieces(k, per_dim)
    mods = as_dtype(modules, dtype)
    lo = bench.input_lo.to(dtype)
    hi = bench.input_hi.to(dtype)
    flags = torch.zeros(pieces, dtype=torch.bool) if keep_flags else None
    safe = 0
    t0 = time.perf_counter()
    starts = range(0, pieces, chunk)
    bar = Progress(starts, f"verifying {bench.name}: {pieces:,} pieces", enabled=progress, unit="chunk",
                   log_lines=False)
    with torch.no_grad():
        for i, start in enumerate(bar):
            idx = torch.arange(start, min(start + chunk, pieces))
            boxes = grid_pieces(lo, hi, per_dim, idx)
            trace = run_program(bench.program, mods, boxes, "join")
            ok = bench.spec.satisfied(trace.records, tol)
            safe += int(ok.sum())
            if flags is not None:
                flags[start:start + len(idx)] = ok
            if i == 0 and len(starts) > 1:
                eta = (time.perf_counter() - t0) * len(starts)
                if eta > 30:
                    log.info("verifying %s: %s pieces in %d chunks; the first took %.1f s, so about %.0f minutes in "
                             "all (fewer pieces: --verifier-components)", bench.name, f"{pieces:,}", len(starts),
                             time.perf_counter() - t0, eta / 60)
    bar.close()
    dt = time.perf_counter() - t0
    return VerifyResult(pieces=pieces, safe=safe, provably_safe=safe / pieces, per_dim=per_dim, seconds=dt,
                        pieces_per_second=pieces / max(dt, 1e-9), flags=flags)


def empirical_unsafe(bench: Benchmark, modules: dict, n: int = 10_000, seed: int = 0,
                     dtype: torch.dtype = torch.float64, tol: float = 1e-6) -> float:
    """Share of ``n`` uniform inputs whose concrete run leaves the spec."""
    gen = torch.Generator().manual_seed(int(seed))
    x = bench.input_box.to(dtype).sample(n, generator=gen)
    mods = as_dtype(modules, dtype)
    with torch.no_grad():
        trace = run_program(bench.program, mods, x, "concrete")
        ok = bench.spec.satisfied(trace.records, tol)
    return 1.0 - float(ok.double().mean())
