"""Optional native (C) kernels, built on first use with the system C compiler.

The recurrent loops of the GRU (:mod:`nsprog.gru_kernel`) are the one place where the small
models here spend their time in per-step interpreter and dispatch overhead; ``gru.c`` runs
them as plain C loops over float32 arrays. The library is compiled once per machine into a
cache folder (``$NSPROG_CACHE``, else ``~/.cache/nsprog``), written atomically, and loaded
with :mod:`ctypes`: no Python headers, no extra packages. Without a working compiler (or
with ``NSPROG_NATIVE=0``) :func:`load` returns None and callers use ``torch.nn.GRU``, which
computes the same numbers (the tests compare both).

The library is compiled without ``-ffast-math`` (or ``-Ofast``, or
``-funsafe-math-optimizations``): with those, GCC links a start-up routine that sets
flush-to-zero for the whole process when the library is loaded, which would change how
every other library in the user's Python process computes. The flags below let the
compiler vectorise the kernels' sums without touching the floating-point environment
(``tests/test_native_process_state.py`` checks that subnormals survive loading it).
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["load", "native_status"]

log = logging.getLogger("nsprog")
_SOURCE = Path(__file__).with_name("gru.c")
_FLAGS = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-fno-signed-zeros", "-fassociative-math",
          "-march=native", "-fPIC", "-shared", "-std=c99"]
_state: dict = {}


def _cache_dir() -> Path:
    return Path(os.environ.get("NSPROG_CACHE") or Path.home() / ".cache" / "nsprog")


def _cpu_tag() -> str:
    """What -march=native compiles for: the CPU's model and feature flags."""
    try:
        info = Path("/proc/cpuinfo").read_text().splitlines()
        keep = [ln for ln in info if ln.startswith(("model name", "flags", "Features", "CPU part"))][:3]
        return "|".join(keep)
    except OSError:
        return platform.processor()


def _compile(cc: str) -> Path:
    src = _SOURCE.read_bytes()
    key = hashlib.sha256(src + " ".join([cc, *_FLAGS, platform.machine(), _cpu_tag()]).encode()).hexdigest()[:16]
    out = _cache_dir() / f"nsprog_gru_{key}{'.dylib' if platform.system() == 'Darwin' else '.so'}"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".tmp")
    os.close(fd)
    try:
        subprocess.run([cc, *_FLAGS, str(_SOURCE), "-o", tmp, "-lm"], check=True, capture_output=True, timeout=120)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def load():
    """The compiled library (``gru_forward``, ``gru_backward`` and their batch-inner ``_bi``
    variants), or None when unavailable."""
    if "lib" in _state:
        return _state["lib"]
    lib = None
    if os.environ.get("NSPROG_NATIVE", "1") != "0":
        cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
        try:
            if cc is None:
                raise FileNotFoundError("no C compiler (cc, gcc or clang) on PATH")
            lib = ctypes.CDLL(str(_compile(cc)))
            p, i = ctypes.c_void_p, ctypes.c_int
            for name in ("gru_forward", "gru_forward_bi"):
                getattr(lib, name).argtypes = [i, i, i, i] + [p] * 9
                getattr(lib, name).restype = None
            for name in ("gru_backward", "gru_backward_bi"):
                getattr(lib, name).argtypes = [i, i, i, i] + [p] * 11
                getattr(lib, name).restype = None
            _state["why"] = f"built with {cc}"
        except (OSError, subprocess.SubprocessError) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            _state["why"] = f"unavailable ({exc}{': ' + detail.decode(errors='replace')[:300] if detail else ''})"
            log.info("native GRU kernel %s; using the NumPy fallback", _state["why"])
            lib = None
    else:
        _state["why"] = "disabled by NSPROG_NATIVE=0"
    _state["lib"] = lib
    return lib


def native_status() -> str:
    """One line saying whether the native kernels are in use, and why not."""
    load()
    return ("native GRU kernel: " + _state.get("why", "not loaded"))
