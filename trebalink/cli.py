"""The ``trebalink`` command line. Command groups are listed in ``COMMANDS`` explicitly."""

from __future__ import annotations

import argparse
import logging
import sys

from nsprog._version import __version__

__all__ = ["main", "build_parser", "COMMANDS"]

#: command name -> module providing ``register(subparsers)``.
COMMANDS: dict[str, str] = {
    "label": "trebalink.commands.label",
    "tasks": "trebalink.commands.tasks",
    "export": "trebalink.commands.tasks",
    "train": "trebalink.commands.train",
    "embed": "trebalink.commands.embed",
}


def build_parser() -> argparse.ArgumentParser:
    from nsprog.commands.common import build_command_parser

    return build_command_parser("trebalink", "Turn nsprog programs into labelling tasks, and train and evaluate trajectory embeddings.", __version__, COMMANDS)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    level = logging.WARNING if getattr(args, "quiet", False) else logging.INFO
    logging.basicConfig(level=level, format="%(message)s")
    for handler in logging.getLogger().handlers:
        handler.setLevel(level)
    from nsprog.training import TrainingError
    from trebalink.distributed import DistributedError

    try:
        return int(args.func(args) or 0)
    except (ValueError, KeyError, FileNotFoundError, FileExistsError, IsADirectoryError, TrainingError,
            DistributedError) as exc:
        if getattr(args, "traceback", False):
            raise
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"trebalink {args.command}: error: {msg}", file=sys.stderr)
        return 1
