"""The ``nsprog`` command line. Each command group lives in ``nsprog/commands/<group>.py``
and is listed in ``COMMANDS`` explicitly; only the module of the command being run is
imported."""

from __future__ import annotations

from nsprog._version import __version__

__all__ = ["main", "build_parser", "COMMANDS"]

#: command name -> (module providing ``register(subparsers)``, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "fit": ("nsprog.commands.fit", "learn a neurosymbolic encoder (k programs + a neural latent) on trajectories"),
    "show": ("nsprog.commands.fit", "print the programs and metrics of a fitted run folder or saved encoder"),
    "evaluate": ("nsprog.commands.fit", "score a fitted encoder on another dataset file"),
    "search": ("nsprog.commands.search", "supervised program synthesis: the DSL program that best predicts each label"),
    "data": ("nsprog.commands.data", "create, convert and inspect trajectory datasets"),
    "certify": ("nsprog.commands.certify", "certify that program outputs survive feature perturbations"),
    "safety": ("nsprog.commands.safety", "safe learning of programs with neural modules (DSE, DiffAI+)"),
    "table": ("nsprog.commands.table", "the cluster-metric tables: models x seeds on one dataset, resumable"),
}

DESCRIPTION = "Neurosymbolic encoders for trajectories: program synthesis, VAE training, evaluation."


def build_parser(argv: list[str] | None = None):
    """The full parser (every command module imported), or only what ``argv`` needs."""
    from nsprog.commands.common import build_command_parser

    return build_command_parser("nsprog", DESCRIPTION, __version__, COMMANDS, argv)


def main(argv: list[str] | None = None) -> int:
    from nsprog.commands.common import run_cli

    return run_cli("nsprog", DESCRIPTION, __version__, COMMANDS, argv)
