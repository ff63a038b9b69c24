"""Typed program DSL: immutable ASTs, DSL definitions as data, semantics, printing, JSON."""

from nsprog.dsl.ast import (
    ITE,
    Add,
    Affine,
    Hole,
    Map,
    MapAverage,
    MapPrefixes,
    Multiply,
    Node,
    RunningAverage,
    depth,
    holes,
    is_complete,
)
from nsprog.dsl.definition import DSL, DSLError, load_dsl, shipped_dsls
from nsprog.dsl.grammar import expand, min_depths
from nsprog.dsl.printing import explain, pretty, pretty_binary
from nsprog.dsl.semantics import StackedProgram, shape_key
from nsprog.dsl.serialize import ProgramFormatError, program_from_json, program_to_json
from nsprog.dsl.types import ATOM, LIST, Sig, Type

__all__ = [
    "Node", "Hole", "Affine", "MapAverage", "Map", "MapPrefixes", "RunningAverage", "ITE", "Add", "Multiply",
    "holes", "is_complete", "depth", "DSL", "DSLError", "load_dsl", "shipped_dsls", "expand", "min_depths",
    "pretty", "pretty_binary", "explain", "StackedProgram", "shape_key", "ProgramFormatError",
    "program_to_json", "program_from_json", "Type", "Sig", "LIST", "ATOM",
]
