"""What every command line shares: the parser (command modules imported only when their
command runs, so ``--help`` is instant), the run options, the output levels and the one place
where errors become messages.

Output levels: by default progress (a bar on a terminal, a log line per epoch elsewhere),
INFO log lines, the results and the run folder; ``--quiet`` drops progress and INFO lines
but still prints the results and the run folder; ``--silent`` prints nothing but errors.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Callable, Mapping, Sequence

__all__ = ["CommandSpec", "build_command_parser", "run_cli", "add_run_options", "add_quiet", "cli_overrides",
           "add_executor_options", "executor_overrides", "command_line", "output_file", "UserError", "Interrupted"]

log = logging.getLogger("nsprog")

#: name -> (module with ``register(subparsers)``, one-line help)
CommandSpec = Mapping[str, tuple[str, str]]


class UserError(Exception):
    """A mistake in the input or the environment, reported as one line (no traceback)."""


class Interrupted(Exception):
    """The user interrupted a command; the message says what was kept and how to continue."""


def _requested(argv: Sequence[str], commands: CommandSpec) -> str | None:
    for token in argv:
        if not token.startswith("-"):
            return token if token in commands else None
    return None


def build_command_parser(prog: str, description: str, version: str, commands: CommandSpec,
                         argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser of a command line. Only the module of the command named in ``argv`` is
    imported (all of them when ``argv`` is None); the others appear in ``--help`` by their
    one-line help, so listing the commands imports nothing heavy."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--version", action="version", version=f"{prog} {version}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = None if argv is None else _requested(argv, commands)
    modules = dict.fromkeys(m for m, _ in commands.values()) if argv is None else (
        [commands[wanted][0]] if wanted else [])
    for module in modules:
        importlib.import_module(module).register(sub)
    for name, (_, help_text) in commands.items():
        if name not in sub.choices:  # listed in --help by its one-line help; imported only when run
            sub.add_parser(name, help=help_text)
    return parser


def add_run_options(p: argparse.ArgumentParser, config: bool = True, example_key: str = "vae.epochs=3") -> None:
    if config:
        p.add_argument("config", nargs="?", default=None, help="YAML config file (defaults are used when omitted)")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help=f"override a config value with a dotted key, e.g. --set {example_key} (repeatable)",
    )
    p.add_argument("--out", default=None, help="run folder (must be new or empty); default runs/<name>/<timestamp>")
    p.add_argument("--force", action="store_true",
                   help="allow --out to be a non-empty folder: its contents are replaced once the new run succeeds")
    p.add_argument("--seed", type=int, default=None, help="random seed (overrides the config's seed)")
    p.add_argument("--device", default=None, help="auto, cpu or cuda[:N] (overrides the config's device)")
    p.add_argument("--threads", type=int, default=None, help="torch and BLAS threads (overrides the config)")
    add_quiet(p)


def add_quiet(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quiet", action="store_true",
                   help="no progress or per-epoch logs; the results and the run folder are still printed")
    g.add_argument("--silent", action="store_true", help="print nothing but errors")
    p.add_argument("--traceback", action="store_true", help="show the full traceback of an error (for bug reports)")


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


def add_executor_options(p: argparse.ArgumentParser, jobs_help: str) -> None:
    """``--jobs N`` and ``--backend NAME`` of the commands whose jobs go through :mod:`nsprog.executors`."""
    from nsprog.executors import BACKENDS

    p.add_argument("--jobs", type=int, default=None, metavar="N", help=jobs_help)
    p.add_argument("--backend", choices=list(BACKENDS), default=None,
                   help="; ".join(f"{k}: {v}" for k, v in BACKENDS.items()))


def executor_overrides(args) -> list[str]:
    """Config overrides from --set plus --jobs / --backend (--jobs N > 1 alone means a process pool)."""
    over = list(args.overrides or [])
    if args.jobs is not None:
        if args.jobs < 1:
            raise ValueError(f"--jobs must be at least 1; got {args.jobs}")
        over.append(f"executor.workers={args.jobs}")
        if args.backend is None:
            over.append(f"executor.backend={'process' if args.jobs > 1 else 'inline'}")
    if args.backend is not None:
        over.append(f"executor.backend={args.backend}")
    return over


def command_line(words: Sequence[str], args, flags: Mapping[str, str]) -> str:
    """The command as given, for the command.txt of a results folder: ``words`` then each
    ``--flag`` of ``flags`` (flag -> attribute) that was set, the --set overrides and --force."""
    import shlex

    parts = list(words)
    for flag, attr in flags.items():
        value = getattr(args, attr, None)
        if value is not None:
            parts += [flag, str(value)]
    for o in args.overrides or []:
        parts += ["--set", o]
    if getattr(args, "force", False):
        parts.append("--force")
    return " ".join(shlex.quote(p) for p in parts)


def output_file(out: str | None, default, force: bool = False):
    """The file a command writes: ``--out`` (refused when it is a folder, or exists without
    ``--force``), else ``default`` made unique (``name-1.json``, ...) so nothing is replaced."""
    from pathlib import Path

    if out is None:
        path = Path(default)
        i = 1
        while path.exists():
            path = Path(default).with_name(f"{Path(default).stem}-{i}{Path(default).suffix}")
            i += 1
        return path
    path = Path(out)
    if path.is_dir():
        raise IsADirectoryError(21, "--out is a folder; give a file name such as "
                                    f"{path / ('scores' + (Path(default).suffix or '.json'))}", str(path))
    if path.exists() and not force:
        raise FileExistsError(17, "--out exists; choose another file, or pass --force to replace it", str(path))
    return path


class _OneLine(logging.Formatter):
    """Console log records on one line each (a multi-line message is joined with ' | ')."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\n", " | ")


def _configure_logging(args) -> None:
    level = logging.INFO
    if getattr(args, "quiet", False):
        level = logging.WARNING
    if getattr(args, "silent", False):
        level = logging.ERROR
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLine("%(message)s"))
    handler.setLevel(level)
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_nsprog_console", False):
            root.removeHandler(h)
    handler._nsprog_console = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(min(level, logging.INFO))
    logging.getLogger("nsprog").setLevel(logging.INFO)  # run folders add their own file log at INFO


def _user_message(exc: BaseException) -> str | None:
    """One line for a user or environment error, None for anything else (a bug)."""
    training = sys.modules.get("nsprog.training")  # not imported: the error cannot be one of its
    if isinstance(exc, UserError) or (training is not None and isinstance(exc, training.TrainingError)):
        return str(exc)
    if isinstance(exc, KeyError):
        return str(exc.args[0]) if exc.args else repr(exc)
    if isinstance(exc, OSError):
        what = exc.strerror or str(exc)
        where = f": {exc.filename}" if exc.filename else ""
        hint = {28: " (free some space, or write the results elsewhere with --out)",
                13: " (choose a folder you can write to, e.g. with --out)",
                30: " (the file system is read-only; choose another folder with --out)"}.get(exc.errno or 0, "")
        text = f"{what}{where}{hint}" if exc.strerror else what
        return text
    if isinstance(exc, ValueError):  # ConfigError, CheckpointError and every input check raise these
        return str(exc)
    return None


def run_cli(prog: str, description: str, version: str, commands: CommandSpec,
            argv: Sequence[str] | None = None) -> int:
    """Parse, run the command, and turn errors into one-line messages with an exit code:
    0 success, 1 a user or environment error, 2 usage, 130 interrupted. Unexpected
    exceptions (bugs) keep their traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_command_parser(prog, description, version, commands, argv)
    args = parser.parse_args(argv)
    func: Callable | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    _configure_logging(args)
    try:
        return int(func(args) or 0)
    except (KeyboardInterrupt, Interrupted) as exc:
        msg = str(exc) if isinstance(exc, Interrupted) else "interrupted"
        print(f"{prog} {args.command}: {msg}", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place errors become messages
        if getattr(args, "traceback", False):
            raise
        msg = _user_message(exc)
        if msg is None:
            raise
        print(f"{prog} {args.command}: error: {msg}", file=sys.stderr)
        return 1
