"""Options, config fields and parser plumbing shared by the command-line tools."""

from __future__ import annotations

import argparse
import importlib

from nsprog.runs import RunBase  # noqa: F401 - re-exported for the command modules


def build_command_parser(prog: str, description: str, version: str, commands: dict[str, str]) -> argparse.ArgumentParser:
    """A parser whose sub-commands come from the modules in ``commands`` (name -> module with
    ``register(subparsers)``); a module that does not exist yet is skipped."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--version", action="version", version=f"{prog} {version}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in dict.fromkeys(commands.values()):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name == module:
                continue
            raise
        mod.register(sub)
    return parser


def add_run_options(p: argparse.ArgumentParser, config: bool = True) -> None:
    if config:
        p.add_argument("config", nargs="?", default=None, help="YAML config file (defaults are used when omitted)")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value with a dotted key, e.g. --set train.epochs=3 (repeatable)",
    )
    p.add_argument("--out", default=None, help="run folder (must be new or empty); default runs/<name>/<timestamp>")
    p.add_argument("--force", action="store_true", help="allow --out to be a non-empty folder (its contents are replaced)")
    p.add_argument("--seed", type=int, default=None, help="random seed (overrides the config's seed)")
    p.add_argument("--device", default=None, help="auto, cpu or cuda[:N] (overrides the config's device)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (overrides the config)")
    add_quiet(p)


def add_quiet(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch logs (for scripts)")
    p.add_argument("--traceback", action="store_true", help=argparse.SUPPRESS)


def cli_overrides(args) -> list[str]:
    """Config overrides from --set plus the --seed/--device/--threads shortcuts."""
    out = list(args.overrides or [])
    if getattr(args, "seed", None) is not None:
        out.append(f"seed={args.seed}")
    if getattr(args, "device", None) is not None:
        out.append(f"device={args.device}")
    if getattr(args, "threads", None) is not None:
        out.append(f"threads={args.threads}")
    return out
