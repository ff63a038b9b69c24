"""Program types: ``(kind, dim)`` with kind ``list`` (a sequence over time) or ``atom`` (one vector)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LIST", "ATOM", "Type", "Sig"]

LIST = "list"
ATOM = "atom"


@dataclass(frozen=True)
class Type:
    kind: str
    dim: int

    def __post_init__(self) -> None:
        if self.kind not in (LIST, ATOM):
            raise ValueError(f"type kind must be {LIST!r} or {ATOM!r}; got {self.kind!r}")
        if not isinstance(self.dim, int) or self.dim < 1:
            raise ValueError(f"type dim must be a positive integer; got {self.dim!r}")

    def __str__(self) -> str:
        return f"{self.kind}({self.dim})"


@dataclass(frozen=True)
class Sig:
    """A function type ``inp -> out``."""

    inp: Type
    out: Type

    @property
    def kinds(self) -> str:
        """``"list->atom"``-style key used by DSL production tables."""
        return f"{self.inp.kind}->{self.out.kind}"

    def __str__(self) -> str:
        return f"{self.inp} -> {self.out}"
