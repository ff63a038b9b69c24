"""Seeds, devices, threads and atomic file writes shared by every entry point."""

from __future__ import annotations

import contextlib
import json
import os
import random
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

if TYPE_CHECKING:  # torch is imported where it is used: the command line starts without it
    import torch

import numpy as np

__all__ = [
    "seed_everything",
    "resolve_device",
    "limit_threads",
    "atomic_write",
    "write_json_atomic",
    "read_json",
    "torch_save_atomic",
    "load_torch_file",
]


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA); return a torch generator with that seed."""
    import torch

    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an integer, got {seed!r} ({type(seed).__name__})")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    return torch.Generator().manual_seed(seed)


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Return ``cuda`` when available for ``"auto"``/None, else the device asked for.

    Asking for ``cuda`` on a machine without one is an error rather than a silent fallback.
    """
    import torch

    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={str(device)!r} was requested but CUDA is not available on this machine; "
            "use --device cpu or --device auto"
        )
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device must be one of 'auto', 'cpu', 'cuda', 'cuda:N', 'mps'; got {str(device)!r}")
    return dev


@contextlib.contextmanager
def limit_threads(n: int | None) -> Iterator[int]:
    """Run the body with ``n`` torch intra-op threads and ``n`` BLAS / OpenMP threads, and
    restore the previous counts afterwards (None or 0 changes nothing).

    The models here are tiny, so one thread is usually fastest, and two threads on a busy
    2-core machine can be many times slower (oversubscription). Nothing outside the body is
    affected: the caller's own thread settings come back when it ends.
    """
    import torch

    if not n:
        yield torch.get_num_threads()
        return
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"threads must be a positive integer or None; got {n!r}")
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        with threadpool_limits(int(n)):
            yield int(n)
    finally:
        torch.set_num_threads(before)


def _file_mode() -> int:
    """The permissions ``open(path, "w")`` would give a new file (0o666 minus the umask)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # no portable read-only query elsewhere; restored at once
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp_path)`` then rename the temporary file onto ``path``.

    A crash mid-write leaves the previous file intact instead of a truncated one, no
    temporary file outlives a failed write, and the file gets the permissions a plain
    ``open()`` would give it (not the temporary file's owner-only mode).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.chmod(tmp_path, _file_mode())
        os.replace(tmp_path, path)
    except OSError as exc:  # name the file the user asked for, not the temporary one
        if exc.errno is not None and exc.filename != str(path):
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise
    finally:
        with contextlib.suppress(OSError):
            if tmp_path.exists():
                tmp_path.unlink()
    return path


def _to_jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if type(obj).__module__.startswith("torch") and hasattr(obj, "detach"):
        return obj.detach().cpu().tolist()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def read_json(path: str | Path, what: str = "JSON file") -> Any:
    """Parse a JSON file, naming the file and the place in any error."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not a valid {what} ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
                         "it may be truncated or edited by hand") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not a text {what} ({exc.reason})") from None


def write_json_atomic(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically (NumPy and torch values are converted)."""
    text = json.dumps(_to_jsonable(obj), indent=2, sort_keys=False) + "\n"
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def load_torch_file(path: str | Path, what: str, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with one error for every way a file can be
    unusable (corrupt, truncated, not a torch file, or holding objects other than tensors and
    numbers, which are never unpickled): a ``ValueError`` naming the file and ``what`` it
    should be. Torch's advice to load untrusted files with ``weights_only=False`` is not passed on."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {what} at {path}" + ("" if path.parent.exists() else
                                                            f" ({path.parent} does not exist)"))
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the file cannot be used
        raise ValueError(f"{path} is not a readable {what} ({type(exc).__name__}): the file is corrupt or truncated, "
                         "or holds objects other than tensors and numbers, which nsprog never unpickles") from None


def torch_save_atomic(obj: Any, path: str | Path) -> Path:
    """``torch.save`` through a temporary file and a rename."""
    import torch

    return atomic_write(path, lambda p: torch.save(obj, p))
