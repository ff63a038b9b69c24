"""Progress on long work: a bar on a terminal, plain log lines everywhere else.

A tqdm bar redraws itself with carriage returns; written into a file (a cluster job,
``nohup``, ``2> log``) that becomes thousands of updates glued into very long lines. So a bar
is shown only when standard error is a terminal; elsewhere the caller logs one line per
epoch or round (:meth:`Progress.report`), and nothing at all when progress is off.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Iterable, Iterator

__all__ = ["Progress", "on_terminal", "fmt"]

log = logging.getLogger("nsprog")


def fmt(value: Any, digits: int = 4) -> str:
    """A number for people: ``digits`` significant digits, ``-`` for NaN (nothing measured)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and value != value:
        return "-"
    return f"{value:.{digits}g}"


def on_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class Progress:
    """Iterate over ``items`` with a bar (terminal) or per-item log lines (elsewhere).

    ``enabled=False`` (``--quiet``) shows neither; the caller's summary lines are unaffected.
    """

    def __init__(self, items: Iterable, desc: str, enabled: bool = True, total: int | None = None,
                 unit: str = "epoch", logger: logging.Logger = log, log_lines: bool = True):
        self.items = items
        self.desc = desc
        self.enabled = enabled
        self.log_lines = log_lines  # False: a bar on a terminal, nothing elsewhere (for many short loops)
        self.unit = unit
        self.log = logger
        self.total = total if total is not None else (len(items) if hasattr(items, "__len__") else None)
        self._bar = None
        if enabled and on_terminal():
            from tqdm.auto import tqdm

            self._bar = tqdm(items, desc=desc, total=self.total, leave=False, unit=unit, dynamic_ncols=True)

    def __iter__(self) -> Iterator:
        return iter(self._bar if self._bar is not None else self.items)

    def report(self, index: int, values: dict[str, Any]) -> None:
        """After item ``index`` (0-based): update the bar, or log one line."""
        text = {k: fmt(v) for k, v in values.items()}
        if self._bar is not None:
            self._bar.set_postfix(text, refresh=False)
        elif self.enabled and self.log_lines:
            total = f"/{self.total}" if self.total else ""
            self.log.info("%s: %s %d%s: %s", self.desc, self.unit, index + 1, total,
                          ", ".join(f"{k} {v}" for k, v in text.items()))
        else:
            self.log.debug("%s: %s %d: %s", self.desc, self.unit, index + 1, text)

    def advance(self, n: int = 1) -> None:
        """Move the bar on by ``n`` (for callers that do not iterate over it)."""
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
