"""The ``nsprog`` command line. Each command group lives in ``nsprog/commands/<group>.py``
and is listed in ``COMMANDS`` explicitly."""

from __future__ import annotations

import argparse
import logging
import sys

from nsprog._version import __version__

__all__ = ["main", "build_parser", "COMMANDS"]

#: command name -> module providing ``register(subparsers)``; each registered parser sets ``func``.
COMMANDS: dict[str, str] = {
    "data": "nsprog.commands.data",
    "search": "nsprog.commands.search",
    "fit": "nsprog.commands.fit",
    "show": "nsprog.commands.fit",
    "evaluate": "nsprog.commands.fit",
    "certify": "nsprog.commands.certify",
    "safety": "nsprog.commands.safety",
    "table": "nsprog.commands.table",
}


def build_parser() -> argparse.ArgumentParser:
    from nsprog.commands.common import build_command_parser

    return build_command_parser("nsprog", "Neurosymbolic encoders for trajectories: program synthesis, VAE training, evaluation.", __version__, COMMANDS)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    level = logging.WARNING if getattr(args, "quiet", False) else logging.INFO
    logging.basicConfig(level=level, format="%(message)s")
    for handler in logging.getLogger().handlers:  # the console; run folders add their own file log at INFO
        handler.setLevel(level)
    logging.getLogger("nsprog").setLevel(logging.INFO)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, KeyError, FileNotFoundError, FileExistsError, TypeError) as exc:
        if getattr(args, "traceback", False):
            raise
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"nsprog {args.command}: error: {msg}", file=sys.stderr)
        return 1
