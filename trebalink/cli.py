"""The ``trebalink`` command line. Command groups are listed in ``COMMANDS`` explicitly; only
the module of the command being run is imported."""

from __future__ import annotations

from nsprog._version import __version__

__all__ = ["main", "build_parser", "COMMANDS"]

#: command name -> (module providing ``register(subparsers)``, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "label": ("trebalink.commands", "label windows with the programs of an nsprog run (one task per program)"),
}

DESCRIPTION = "Turn nsprog programs into labelling tasks for trajectory data."


def build_parser(argv: list[str] | None = None):
    from nsprog.commands.common import build_command_parser

    return build_command_parser("trebalink", DESCRIPTION, __version__, COMMANDS, argv)


def main(argv: list[str] | None = None) -> int:
    from nsprog.commands.common import run_cli

    return run_cli("trebalink", DESCRIPTION, __version__, COMMANDS, argv)
