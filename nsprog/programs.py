"""A stored set of learned programs that can be evaluated on new raw windows.

``programs.json`` holds the DSL, the feature pipeline (domain, features and the training
standardisation) and each program with its parameters and class values, so
``ProgramSet.load(path).predict(windows)`` needs nothing else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from nsprog.data.trajectories import Trajectories
from nsprog.dsl.ast import Node
from nsprog.dsl.definition import DSL
from nsprog.dsl.printing import pretty, pretty_binary, rule
from nsprog.dsl.semantics import evaluate_program
from nsprog.dsl.serialize import ProgramFormatError, program_from_json, program_to_json
from nsprog.features.pipeline import FeaturePipeline
from nsprog.utils import write_json_atomic

__all__ = ["ProgramSet"]

FORMAT = "nsprog-programs"


@dataclass
class ProgramSet:
    dsl: DSL
    pipeline: FeaturePipeline
    programs: dict[str, Node]
    classes: dict[str, list] = field(default_factory=dict)
    info: dict[str, dict] = field(default_factory=dict)

    def features(self, traj: Trajectories):
        """Standardised features ``[N, T, F]`` of raw windows."""
        if not isinstance(traj, Trajectories):
            raise TypeError(
                f"ProgramSet takes nsprog Trajectories windows (nsprog.data.Trajectories, e.g. from load_split or "
                f"load_windows); got {type(traj).__name__}. For a precomputed standardised feature tensor "
                "[N, T, F] use decision_function_features")
        self.dsl.check_windows(traj)
        return self.pipeline.transform(traj)

    def decision_function(self, traj: Trajectories) -> dict[str, np.ndarray]:
        """Program outputs per program name: ``[N]`` logits for binary programs."""
        return self.decision_function_features(self.features(traj))

    def decision_function_features(self, x) -> dict[str, np.ndarray]:
        """Program outputs on already standardised features ``[N, T, F]``."""
        out = {}
        for name, prog in self.programs.items():
            v = evaluate_program(prog, self.dsl, x).cpu().numpy()
            out[name] = v[:, 0] if v.shape[-1] == 1 else v
        return out

    def predict(self, traj: Trajectories) -> dict[str, np.ndarray]:
        out = {}
        for name, v in self.decision_function(traj).items():
            idx = (v > 0).astype(int) if v.ndim == 1 else v.argmax(-1)
            classes = np.asarray(self.classes.get(name, [0, 1]))
            out[name] = classes[idx]
        return out

    def describe(self, name: str) -> dict:
        prog = self.programs[name]
        sc = getattr(self.pipeline, "scaler_", None)
        binary = prog.sig.out.dim == 1
        return {
            "text": pretty_binary(prog) if binary else pretty(prog),
            "rule": rule(prog, self.dsl.features, None if sc is None else sc.mean, None if sc is None else sc.std)
            if binary else None,
            "structure": prog.key(),
        }

    def to_text(self) -> str:
        lines = []
        for name in self.programs:
            d = self.describe(name)
            lines.append(f"[{name}] {d['text']}")
            if d["rule"]:
                lines.append(f"    = {d['rule']} (raw units)")
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "dsl": self.dsl.to_dict(),
            "pipeline": self.pipeline.to_dict(),
            "programs": {
                name: {
                    "program": program_to_json(p),
                    "classes": list(np.asarray(self.classes.get(name, [0, 1])).tolist()),
                    **self.describe(name),
                    **self.info.get(name, {}),
                }
                for name, p in self.programs.items()
            },
        }

    def save(self, path: str | Path) -> Path:
        return write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> "ProgramSet":
        path = Path(path)
        if path.is_dir():
            path = path / "programs.json"
        if not path.is_file():
            raise FileNotFoundError(f"programs file not found: {path}")
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ProgramFormatError(f"{path} is not valid JSON ({exc})") from exc
        return cls.from_dict(d, source=str(path))

    @classmethod
    def from_dict(cls, d: Mapping, source: str = "programs") -> "ProgramSet":
        """The set that :meth:`to_dict` wrote (``source`` names it in error messages)."""
        if not isinstance(d, Mapping) or d.get("format") != FORMAT:
            raise ProgramFormatError(f"{source} is not an nsprog programs file (expected \"format\": {FORMAT!r})")
        for key in ("dsl", "pipeline", "programs"):
            if key not in d:
                raise ProgramFormatError(f"{source}: field {key!r} is missing")
        dsl = DSL.from_dict(d["dsl"], source=source)
        pipe = FeaturePipeline.from_dict(d["pipeline"])
        if tuple(pipe.features) != tuple(dsl.features):
            raise ProgramFormatError(f"{source}: pipeline features {pipe.features} differ from the DSL's {dsl.features}")
        programs, classes = {}, {}
        for name, entry in d["programs"].items():
            programs[name] = program_from_json(entry.get("program"), dsl, require_params=True, where=f"{source}:{name}")
            classes[name] = entry.get("classes", [0, 1])
        return cls(dsl, pipe, programs, classes)
