"""``nsprog data``: write the synthetic dataset, convert tracking files, inspect dataset files."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from nsprog.commands.common import add_quiet, output_file


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="create, convert and inspect trajectory datasets")
    dsub = p.add_subparsers(dest="data_command", metavar="DATA_COMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    s = dsub.add_parser("synthetic", help="write the paper's synthetic 2-D trajectory dataset (appendix C)")
    s.add_argument("--out", required=True, help="output HDF5 file, e.g. synthetic.h5")
    s.add_argument("--n-train", type=int, default=10_000)
    s.add_argument("--n-val", type=int, default=2_000)
    s.add_argument("--n-test", type=int, default=2_000)
    s.add_argument("--length", type=int, default=25, help="positions per trajectory")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--reject-ambiguous", action="store_true",
        help="resample trajectories ending on the wrong side of 10 for their class (the reference's data)",
    )
    s.add_argument("--force", action="store_true", help="overwrite an existing file")
    add_quiet(s)
    s.set_defaults(func=_synthetic)

    _add_convert(dsub)

    i = dsub.add_parser("info", help="summarise an nsprog dataset file")
    i.add_argument("path")
    add_quiet(i)
    i.set_defaults(func=_info)


def _synthetic(args) -> int:
    from nsprog.data import save_dataset, synthetic_dataset

    out = output_file(args.out, args.out, args.force)
    splits = synthetic_dataset(args.n_train, args.n_val, args.n_test, args.length, args.seed, args.reject_ambiguous)
    save_dataset(out, splits, attrs={"source": "synthetic", "seed": args.seed})
    if not args.silent:
        sizes = ", ".join(f"{k} {len(v)}" for k, v in splits.items())
        print(f"wrote {out} ({sizes}; {args.length} positions; reject_ambiguous={args.reject_ambiguous})")
    return 0


def _info(args) -> int:
    import numpy as np

    from nsprog.data import load_dataset

    splits = load_dataset(args.path)
    print(f"{args.path}")
    for name, t in splits.items():
        print(f"  {name}: {t!r}")
        if t.labels is not None:
            counts = np.bincount(t.labels[t.labels >= 0])
            names = t.label_names or [str(i) for i in range(len(counts))]
            print("    labels: " + ", ".join(f"{names[i]}={c}" for i, c in enumerate(counts)))
        if t.metadata:
            keys = ", ".join(f"{k}={v}" for k, v in t.metadata.items() if not isinstance(v, (dict, list)))
            print(f"    metadata: {keys}")
    return 0


CONVERT_EPILOG = textwrap.dedent(
    """\
    formats (--format; auto detects the format from the suffix and the file's header):
    {formats}

    examples:
      nsprog data convert data/samples/mabe22/EGS8X2MN4SSUGFWAV976.h5 --out mabe.h5 --window 21 --stride 5 --fps 30
      nsprog data convert data/samples/openfield/8_01_A_190507134142_DLC.csv --out of.h5 --window 25 \\
          --annotations data/samples/openfield/8_01_A_190507134142.csv --reduce majority --min-confidence 0.5
      nsprog data convert data/samples/sportvu/0021500400.csv --out bball.h5 --window 15 \\
          --split-time 0.7,0.15,0.15
      nsprog data convert calms21_task1_train.json --out calms21.h5 --window 21 --split-group 0.8,0.2
      nsprog data convert tracks.npz --format arrays --out mine.h5 --window 30 --stride 10

    Windows containing frames that still miss a keypoint after interpolating gaps of at most
    --max-gap frames are dropped; counts are logged. Time-block splits cut every recording
    into contiguous train / val / test blocks so overlapping windows never straddle them.
    """
)


def _csv_list(text: str | None):
    if text is None:
        return None
    out = []
    for v in text.split(","):
        v = v.strip()
        if v:
            out.append(int(v) if v.lstrip("-").isdigit() else v)
    return out


def _add_convert(dsub) -> None:
    from nsprog.data.loaders import FORMATS

    fmt_lines = "\n".join(
        f"  {f.name:<13} {', '.join(f.suffixes):<11} {f.description}"
        + (f" [options: {', '.join(o for o in f.options if o != 'fps')}]" if [o for o in f.options if o != "fps"] else "")
        for f in FORMATS.values()
    )
    c = dsub.add_parser(
        "convert",
        help="convert tracking files (DeepLabCut, SLEAP, JABS, CalMS21, SportVU, .npz arrays, ...) into nsprog windows",
        description="Read pose or player-tracking files, repair missing keypoints, cut fixed-length windows "
        "and write them (optionally split by time or by recording) as an nsprog HDF5 dataset.",
        epilog=CONVERT_EPILOG.format(formats=fmt_lines),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument("input", help="input file, folder (every readable file in it) or quoted glob pattern")
    c.add_argument("--format", default="auto", choices=["auto", *FORMATS],
                   help="input format (default auto: detected from the suffix and the header)")
    c.add_argument("--out", required=True, help="output nsprog HDF5 file, e.g. windows.h5")
    c.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    g = c.add_argument_group("windows")
    g.add_argument("--window", type=int, default=None, help="window length in frames (default 21 unless --window-seconds)")
    g.add_argument("--window-seconds", type=float, default=None, help="window length in seconds (needs a frame rate)")
    g.add_argument("--stride", type=int, default=1, help="frames between window starts (default 1)")
    g.add_argument("--reduce", choices=["centre", "majority", "last"], default="centre",
                   help="how per-frame labels become one label per window (default centre, the CalMS21 protocol)")
    g.add_argument("--layout", choices=["auto", "pose", "team"], default="auto",
                   help="pose: flattened keypoints; team: offense/defense player groups; auto: team for SportVU")
    g.add_argument("--split-time", default=None, metavar="F,F[,F]",
                   help="time-block split fractions train,val,test (or train,test) per recording, e.g. 0.7,0.15,0.15")
    g.add_argument("--split-group", default=None, metavar="F,F[,F]",
                   help="split whole recordings (groups) into train,val,test with these fractions")
    g.add_argument("--seed", type=int, default=0, help="seed for --split-group (default 0)")
    ld = c.add_argument_group("loading")
    ld.add_argument("--fps", type=float, default=None, help="frame rate, overriding / filling in the file's")
    ld.add_argument("--annotations", default=None,
                    help="behaviour labels for the recording: bout table (from,to seconds; type) or per-frame file")
    ld.add_argument("--trusted", action="store_true",
                    help="allow unpickling .npy pickles (CalMS21 / MABe); only for files you trust")
    ld.add_argument("--option", dest="loader_options", action="append", default=[], metavar="KEY=VALUE",
                    help="extra loader option, e.g. --option identity=track (JABS), --option key=df_with_missing "
                    "(DLC H5); repeatable")
    pg = c.add_argument_group("pose windows (missing keypoints)")
    pg.add_argument("--individuals", default=None, help="comma-separated individuals to keep (names or indices)")
    pg.add_argument("--keypoints", default=None, help="comma-separated keypoints to keep (names or indices)")
    pg.add_argument("--min-confidence", type=float, default=None,
                    help="keypoints with confidence below this become missing (default: no threshold)")
    pg.add_argument("--keep-zero", action="store_true", help="do not treat keypoints at exactly (0, 0) as missing")
    pg.add_argument("--max-gap", type=int, default=5,
                    help="interpolate gaps of at most this many frames; longer gaps drop windows (default 5)")
    pg.add_argument("--labels-from-flags", default=None,
                    help="comma-separated per-frame flag columns (e.g. CRIM13 attack_prediction) turned into labels")
    tg = c.add_argument_group("team windows (player tracking)")
    tg.add_argument("--field", default="basketball", help="field preset: basketball (94 x 50 ft) or soccer (105 x 68 m)")
    tg.add_argument("--field-length", type=float, default=None, help="field length (x extent), overriding the preset")
    tg.add_argument("--field-width", type=float, default=None, help="field width (y extent), overriding the preset")
    tg.add_argument("--target", default=None, metavar="X,Y",
                    help="location the offense attacks after orientation (basketball preset: 5.25,25)")
    tg.add_argument("--players-per-team", type=int, default=None, help="players per team (preset: 5 / 11)")
    tg.add_argument("--slots", type=int, default=None, help="player slots per group (default: players per team)")
    tg.add_argument("--min-players", type=int, default=None,
                    help="skip windows where a team has fewer players tracked throughout (default: players per team)")
    tg.add_argument("--teams", default=None, help="the two team group names (default: every group except the ball)")
    tg.add_argument("--possession", choices=["ball", "flag"], default=None,
                    help="SportVU offense source: ball (nearest team to the ball per event, default) or the file's flag")
    tg.add_argument("--orientation", choices=["auto", "column", "period", "window", "none"], default="auto",
                    help="how the attacked side is found before flipping (default auto)")
    tg.add_argument("--flip", choices=["rotate", "mirror"], default="rotate",
                    help="rotate 180 degrees (default) or mirror x so the offense attacks the target")
    tg.add_argument("--mixed-possession", choices=["drop", "majority"], default="drop",
                    help="windows whose offense changes: drop them (default) or label by the majority")
    c.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    add_quiet(c)
    c.set_defaults(func=_convert)


def _convert(args) -> int:
    from nsprog.utils import limit_threads

    with limit_threads(args.threads):
        return _convert_body(args)


def _convert_body(args) -> int:
    import yaml

    from nsprog.data import save_dataset
    from nsprog.data.convert import WindowOptions, load_windows, split_windows

    out = output_file(args.out, args.out, args.force)
    loader_options = {}
    for item in args.loader_options:
        if "=" not in item:
            raise ValueError(f"--option {item!r}: expected KEY=VALUE, e.g. identity=track")
        k, v = item.split("=", 1)
        loader_options[k.strip()] = yaml.safe_load(v) if v.strip() else ""
    if args.fps is not None:
        loader_options["fps"] = args.fps
    if args.trusted:
        loader_options["trusted"] = True
    if args.possession is not None:
        loader_options["possession"] = args.possession
    target = None
    if args.target is not None:
        try:
            target = tuple(float(v) for v in args.target.split(","))
        except ValueError:
            raise ValueError(f"--target expects X,Y numbers; got {args.target!r}") from None
        if len(target) != 2:
            raise ValueError(f"--target expects two numbers X,Y; got {args.target!r}")
    window = args.window if (args.window is not None or args.window_seconds is not None) else 21
    opts = WindowOptions(
        window=window if args.window_seconds is None else None,
        window_seconds=args.window_seconds,
        stride=args.stride,
        reduce=args.reduce,
        layout=args.layout,
        individuals=_csv_list(args.individuals),
        keypoints=_csv_list(args.keypoints),
        min_confidence=args.min_confidence,
        zero_as_missing=not args.keep_zero,
        max_gap=args.max_gap,
        labels_from_flags=_csv_list(args.labels_from_flags),
        field=args.field,
        field_length=args.field_length,
        field_width=args.field_width,
        target=target,
        players_per_team=args.players_per_team,
        slots=args.slots,
        min_players=args.min_players,
        teams=_csv_list(args.teams),
        orientation=args.orientation,
        flip=args.flip,
        mixed_possession=args.mixed_possession,
    )
    if opts.teams is not None:
        opts.teams = [str(t) for t in opts.teams]
    traj = load_windows(args.input, opts, format=args.format, annotations=args.annotations, **loader_options)
    splits = split_windows(traj, args.split_time, args.split_group, seed=args.seed)
    attrs = {
        "source": str(args.input),
        "format": traj.metadata.get("format"),
        "domain": traj.metadata.get("domain"),
        "window_options": opts.to_dict(),
        "split_time": args.split_time,
        "split_group": args.split_group,
    }
    save_dataset(out, splits, attrs=attrs)
    if not args.silent:
        sizes = ", ".join(f"{k} {len(v)}" for k, v in splits.items())
        labels = f"; labels {list(traj.label_names)}" if traj.label_names else ""
        print(
            f"wrote {out} ({sizes} windows of {traj.n_frames} frames x {traj.state_dim} dims; "
            f"domain {traj.metadata.get('domain')}{labels})"
        )
    return 0
