"""``trebalink embed``: argument parsing and printing; the work is :func:`trebalink.embed.embed_to_file`."""

from __future__ import annotations

import argparse
import json

from nsprog.commands.common import add_quiet


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "embed",
        help="embed every window of a dataset file, or every frame of tracking recordings, with a trained model",
        description="RUN_DIR is a `trebalink train` folder (its best.pt). --data is an nsprog HDF5 dataset (one "
        "embedding per window of --split) or tracking file(s) (one per frame: the model's window centred on the "
        "frame, edge-padded at the ends; keypoints and gap repair as in training). The data is checked against the "
        "model (input dimension, window length, keypoints, task set). "
        "Example: trebalink embed runs/treba_syn --data synthetic.h5 --out emb.h5",
    )
    p.add_argument("run_dir")
    p.add_argument("--data", required=True, help="nsprog HDF5 dataset, or tracking file / folder / glob")
    p.add_argument("--out", required=True, help="HDF5 file for the embeddings")
    p.add_argument("--split", default="all", help="dataset split to embed (default: every split)")
    p.add_argument("--format", default="auto", help="tracking-file format (default: auto-detect)")
    p.add_argument("--loader", default=None, metavar="JSON",
                   help='tracking loader options as JSON, e.g. \'{"fps": 25}\'')
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    add_quiet(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from trebalink.embed import embed_to_file

    loader = None
    if args.loader:
        try:
            loader = json.loads(args.loader)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--loader must be a JSON object such as '{{\"fps\": 25}}'; got {args.loader!r} ({exc})") \
                from None
        if not isinstance(loader, dict):
            raise ValueError(f"--loader must be a JSON object; got {args.loader!r}")
    rep = embed_to_file(args.run_dir, args.data, args.out, args.batch_size, args.device, args.split, args.format,
                        args.force, loader)
    if not args.silent:  # results are printed even with --quiet
        rows = sum(rep.items.values())
        what = "windows" if rep.kind == "windows" else "frames"
        print(f"{rows} {what} in {len(rep.items)} {'split' if rep.kind == 'windows' else 'recording'}(s) embedded in "
              f"{rep.seconds:.1f} s ({rows / max(rep.seconds, 1e-9):.0f} {what}/s) -> {rep.out}")
    return 0
