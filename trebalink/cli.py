"""The ``trebalink`` command line. Command groups are listed in ``COMMANDS`` explicitly; only
the module of the command being run is imported."""

from __future__ import annotations

from nsprog._version import __version__

__all__ = ["main", "build_parser", "COMMANDS"]

#: command name -> (module providing ``register(subparsers)``, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "tasks": ("trebalink.commands.tasks", "write a shipped task set (expert or random) as YAML, optionally analysed"),
    "export": ("trebalink.commands.tasks", "turn a fitted nsprog encoder's programs into a task set (YAML)"),
    "label": ("trebalink.commands.label", "label windows with a task set or the programs of an nsprog run"),
    "train": ("trebalink.commands.train", "train a TREBA embedding model with a task set (CPU, GPU or torchrun)"),
    "embed": ("trebalink.commands.embed", "embed every window or frame with a trained model"),
    "classify": ("trebalink.commands.classify", "behaviour classifiers with few labels on each condition's features "
                 "(data efficiency, paper Figure 5)"),
}

DESCRIPTION = ("Programs as supervision tasks: task sets, TREBA-style trajectory embeddings trained with them, "
               "and the embeddings of new data.")


def build_parser(argv: list[str] | None = None):
    from nsprog.commands.common import build_command_parser

    return build_command_parser("trebalink", DESCRIPTION, __version__, COMMANDS, argv)


def main(argv: list[str] | None = None) -> int:
    from nsprog.commands.common import run_cli

    return run_cli("trebalink", DESCRIPTION, __version__, COMMANDS, argv)
