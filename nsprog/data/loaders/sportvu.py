"""NBA SportVU player tracking: the raw game JSON and the processed per-row CSV.

Both become one recording per file with one keypoint (``position``) per individual:
individual 0 is the ball (group ``ball``), then every player seen in the file, ordered by
team and first appearance, named by player id, with the team id as group. A player off
the court is NaN. Coordinates are feet on the 94 x 50 court, as stored.

Raw JSON
    ``{"events": [{"eventId", "home", "visitor", "moments": [[quarter, unix_ms, game_clock,
    shot_clock, null, [[team_id, player_id, x, y, z] x 11]], ...]}]}`` with the ball first.
    Consecutive events overlap (the same moment is stored in both): moments are
    de-duplicated by time (``unix_ms``), keeping the first event's copy, and ordered by time.
Processed CSV (``data/samples/sportvu/``)
    One row per entity per moment with ``x_loc``, ``y_loc``, ``team_id`` (-1 = ball),
    ``player_id``, ``game_clock``, and optionally ``event_id``, ``shot_clock``, ``PERIOD``,
    ``radius`` (ball height) and ``of_def_flag`` (``of`` / ``def``). A moment is a
    (period, game clock) pair; moments repeated by overlapping events are de-duplicated the
    same way.

Per-frame columns (``Recording.frame_data``): ``period``, ``game_clock``, ``shot_clock``,
``event`` (index of the event the moment was taken from), ``segment`` (a new segment
starts at a period change or a time gap above ``gap_factor`` times the median step, so
windows never jump over a pause), ``offense`` (index into ``Recording.group_names`` of
the team on offense, -1 unknown), ``offense_ball`` and, when the file has a flag,
``offense_flag``, plus ``ball_z``.

Offense (``possession=``)
    ``"ball"`` (default): the team of the player nearest to the ball, by majority over the
    event the moment belongs to (one play-by-play event is one possession or less).
    ``"flag"``: the team whose rows carry ``of_def_flag == "of"``. In the shared sample the
    flag names the home team as offense in every moment, even while the visitors shoot
    at the other basket, so it behaves like a team-identity column; the loader logs how
    often the two agree.

Bad moments: a moment with fewer than ``players_per_moment`` (10) player rows is kept
but marked invalid (``Recording.valid``) so no window contains it, and each such moment is
logged with the file, frame, game clock and field; a moment without the ball has a NaN
ball. ``fps`` defaults to the inverse of the median time step (25 Hz for raw JSON,
about 1.9 Hz for the processed sample, whose moments are about 0.52 s of game clock apart).
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from nsprog.data.loaders._common import FormatError, read_csv_rows, read_head
from nsprog.data.recording import Recording

__all__ = ["load_sportvu_json", "load_sportvu_csv", "detect_sportvu_json", "detect_sportvu_csv", "assemble_moments"]

log = logging.getLogger("nsprog")
POSSESSION = ("ball", "flag")
CSV_REQUIRED = ("x_loc", "y_loc", "team_id", "player_id", "game_clock")


def detect_sportvu_json(path: Path) -> bool:
    head = read_head(path, 8192)
    return '"moments"' in head or ('"events"' in head and '"gameid"' in head)


def detect_sportvu_csv(path: Path) -> bool:
    rows = read_csv_rows(path, limit=1)
    return bool(rows) and all(c in rows[0] for c in CSV_REQUIRED)


def _majority(keys: np.ndarray, values: np.ndarray, n_values: int) -> np.ndarray:
    """Per-row majority of ``values`` (>= 0; -1 ignored) among rows sharing ``keys``; -1 when none."""
    uk, inv = np.unique(keys, return_inverse=True)
    ok = values >= 0
    counts = np.zeros((len(uk), max(n_values, 1)), dtype=np.int64)
    np.add.at(counts, (inv[ok], values[ok]), 1)
    best = counts.argmax(axis=1)
    best[counts.max(axis=1) == 0] = -1
    return best[inv]


def assemble_moments(
    path: Path,
    *,
    time: np.ndarray,
    period: np.ndarray,
    clock: np.ndarray,
    shot: np.ndarray,
    event: np.ndarray,
    team: np.ndarray,
    player: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    flag_of: np.ndarray | None,
    fps: float | None,
    possession: str,
    players_per_moment: int,
    gap_factor: float,
    time_is_clock: bool,
    fmt: str,
    metadata: dict,
) -> Recording:
    """Turn one row per entity per moment into a recording (shared by the JSON and CSV loaders).

    ``time`` orders moments (larger = later; rows with equal ``time`` are one moment);
    ``event`` is the file-order index of the event a row came from.
    """
    if possession not in POSSESSION:
        raise ValueError(f"possession must be one of {', '.join(POSSESSION)}; got {possession!r}")
    if len(time) == 0:
        raise FormatError(path, "no moments found (zero rows)")
    # --- de-duplicate moments repeated by overlapping events: keep the first event's rows
    mkeys, first_row, mid = np.unique(time, return_index=True, return_inverse=True)
    keep = event == event[first_row][mid]
    dropped_rows = int((~keep).sum())
    n_dup_moments = len(np.unique(mid[~keep])) if dropped_rows else 0
    if dropped_rows:
        log.info("%s: %d moments stored again by later (overlapping) events were de-duplicated by time", path, n_dup_moments)
    sel = np.flatnonzero(keep)
    mid, team, player, x, y, z, event_r = mid[sel], team[sel], player[sel], x[sel], y[sel], z[sel], event[sel]
    flag_of = None if flag_of is None else flag_of[sel]
    n_m = len(mkeys)
    rep = first_row  # a representative row per moment (all rows of a moment share these)

    # --- individuals: ball, then players ordered by team then first appearance
    is_ball = team < 0
    pl_rows = np.flatnonzero(~is_ball)
    teams_order = list(dict.fromkeys(team[pl_rows].tolist()))
    pids, first = np.unique(player[pl_rows], return_index=True)
    first_team = team[pl_rows][first]
    order = sorted(range(len(pids)), key=lambda i: (teams_order.index(first_team[i]), first[i]))
    pids, first_team = pids[order], first_team[order]
    n_ind = len(pids) + 1
    ind = np.zeros(len(mid), dtype=np.int64)
    ind[~is_ball] = np.searchsorted(np.sort(pids), player[~is_ball])
    ind[~is_ball] = np.argsort(pids)[ind[~is_ball]] + 1
    switched = int((first_team[ind[~is_ball] - 1] != team[~is_ball]).sum())
    if switched:
        log.warning("%s: %d rows list a player under a second team id; the first team seen is kept", path, switched)

    pos = np.full((n_m, n_ind, 1, 2), np.nan, dtype=np.float32)
    flat = mid * n_ind + ind
    u, cnt = np.unique(flat, return_counts=True)
    if (cnt > 1).any():
        log.warning("%s: %d (moment, player) pairs appear more than once; the last row is kept", path, int((cnt > 1).sum()))
    pos[mid, ind, 0, 0] = x
    pos[mid, ind, 0, 1] = y
    ball_z = np.full(n_m, np.nan)
    ball_z[mid[is_ball]] = z[is_ball]
    moment_event = np.full(n_m, -1, dtype=np.int64)
    moment_event[mid] = event_r

    # --- moments with too few players: invalid, each logged with file / frame / field
    n_players = np.isfinite(pos[:, 1:, 0, 0]).sum(axis=1)
    valid = n_players >= players_per_moment
    bad = np.flatnonzero(~valid)
    for f in bad[:10]:
        log.warning(
            "%s: frame %d (period %d, game clock %.2f, event %d): field 'player rows' has %d players; expected %d. "
            "Frame marked invalid, windows containing it are dropped",
            path, f, int(period[rep[f]]), float(clock[rep[f]]), int(moment_event[f]), int(n_players[f]), players_per_moment,
        )
    if len(bad) > 10:
        log.warning("%s: %d more moments with fewer than %d players marked invalid", path, len(bad) - 10, players_per_moment)
    no_ball = int((~np.isfinite(pos[:, 0, 0, 0])).sum())
    if no_ball:
        log.info("%s: %d moments have no ball row (ball position NaN there)", path, no_ball)

    # --- time, segments and fps
    per = period[rep].astype(np.int64)
    step = np.diff(mkeys.astype(np.float64))
    if time_is_clock:
        step_s = step  # keys are period * 1e4 - clock: steps are seconds within a period
    else:
        step_s = step / 1000.0  # unix ms
    same_period = per[1:] == per[:-1]
    med = float(np.median(step_s[same_period])) if same_period.any() else float("nan")
    if fps is None and np.isfinite(med) and med > 0:
        fps = 1.0 / med
        log.info("%s: fps estimated as %.3g from the median time step of %.3g s", path, fps, med)
    brk = ~same_period
    if np.isfinite(med) and med > 0:
        brk |= step_s > gap_factor * med
    segment = np.concatenate([[0], np.cumsum(brk)]).astype(np.int64)
    if brk.any():
        log.info("%s: %d segment breaks (period changes or pauses > %g steps); windows never span them", path, int(brk.sum()), gap_factor)

    # --- groups and offense
    groups = ["ball"] + [str(int(t)) for t in first_team]
    group_names = list(dict.fromkeys(groups))
    team_gidx = {t: group_names.index(str(int(t))) for t in teams_order}
    # nearest player to the ball, per moment
    d = np.linalg.norm(pos[:, 1:, 0, :] - pos[:, :1, 0, :], axis=-1)
    d = np.where(np.isfinite(d), d, np.inf)
    near = d.argmin(axis=1)
    has = np.isfinite(d.min(axis=1))
    near_g = np.array([team_gidx[t] for t in first_team], dtype=np.int64)[near] if len(first_team) else np.zeros(n_m, np.int64)
    near_g = np.where(has, near_g, -1)
    offense_ball = _majority(moment_event, near_g, len(group_names))
    frame_data = {
        "period": per.astype(np.float64),
        "game_clock": clock[rep].astype(np.float64),
        "shot_clock": shot[rep].astype(np.float64),
        "event": moment_event.astype(np.float64),
        "segment": segment,
        "ball_z": ball_z,
        "offense_ball": offense_ball,
    }
    if flag_of is not None:
        of_g = np.full(n_m, -1, dtype=np.int64)
        rows_of = flag_of & ~is_ball
        gid = np.array([team_gidx.get(t, -1) for t in team[rows_of].tolist()], dtype=np.int64)
        of_g[mid[rows_of]] = gid
        # conflict: two teams flagged in one moment
        conflict = np.zeros(n_m, dtype=bool)
        if rows_of.any():
            pair = np.unique(np.stack([mid[rows_of], gid], 1), axis=0)
            c = np.bincount(pair[:, 0], minlength=n_m)
            conflict = c > 1
        of_g[conflict] = -1
        frame_data["offense_flag"] = of_g
        both = (of_g >= 0) & (offense_ball >= 0)
        agree = float((of_g[both] == offense_ball[both]).mean()) if both.any() else float("nan")
        flag_teams = sorted({group_names[g] for g in np.unique(of_g[of_g >= 0])})
        changes = int((np.diff(offense_ball[offense_ball >= 0]) != 0).sum())
        msg = (
            f"{path}: of_def_flag agrees with ball possession in {agree:.0%} of moments; the flag names "
            f"{len(flag_teams)} team(s) as offense ({', '.join(flag_teams)}), ball possession changes {changes} times"
        )
        if len(flag_teams) == 1 and changes > 0:
            log.warning(msg + "; the flag looks like a team identity, not possession (possession='ball' is the default)")
        else:
            log.info(msg)
    if possession == "flag":
        if flag_of is None:
            raise FormatError(path, "possession='flag' needs an 'of_def_flag' column; use possession='ball'")
        frame_data["offense"] = frame_data["offense_flag"]
    else:
        frame_data["offense"] = offense_ball
    meta = dict(metadata)
    meta.update({"possession": possession, "duplicate_moments": n_dup_moments, "invalid_moments": int(len(bad))})
    return Recording.from_arrays(
        pos,
        keypoint_names=["position"],
        individual_names=["ball"] + [str(int(p)) for p in pids],
        individual_groups=groups,
        fps=fps,
        frame_data=frame_data,
        valid=valid,
        source=str(path),
        format=fmt,
        metadata=meta,
    )


def load_sportvu_json(
    path: str | Path,
    fps: float | None = None,
    possession: str = "ball",
    players_per_moment: int = 10,
    gap_factor: float = 3.0,
) -> list[Recording]:
    """Read a raw SportVU game JSON (see the module docstring)."""
    path = Path(path)
    if possession == "flag":
        raise ValueError(f"{path}: raw SportVU JSON has no offense flag; use possession='ball'")
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except json.JSONDecodeError as exc:
        raise FormatError(path, f"not valid JSON ({exc})") from None
    events = data.get("events") if isinstance(data, dict) else None
    if not isinstance(events, list):
        raise FormatError(path, "field 'events' is missing or not a list; not a SportVU game file")
    rows = []
    teams, players = {}, {}
    for ei, ev in enumerate(events):
        if not isinstance(ev, dict):
            raise FormatError(path, f"event {ei}: expected an object with 'moments' (and 'home', 'visitor'); got "
                                    f"{type(ev).__name__} {str(ev)[:40]!r}")
        for side in ("home", "visitor"):
            t = ev.get(side) or {}
            if isinstance(t, dict) and "teamid" in t:
                teams[str(t["teamid"])] = t.get("abbreviation", str(t["teamid"]))
                for p in t.get("players", []) if isinstance(t.get("players"), list) else []:
                    if isinstance(p, dict):
                        players[str(p.get("playerid"))] = f"{p.get('firstname', '')} {p.get('lastname', '')}".strip()
        moments = ev.get("moments") or []
        if not isinstance(moments, list):
            raise FormatError(path, f"event {ei}: field 'moments' must be a list; got {type(moments).__name__}")
        for mi, m in enumerate(moments):
            if not isinstance(m, list) or len(m) < 6 or not isinstance(m[5], list):
                raise FormatError(
                    path, f"event {ei} moment {mi}: expected [quarter, unix_ms, game_clock, shot_clock, null, entities]"
                )
            q, unix, gc, sc = m[0], m[1], m[2], m[3]
            for k, ent in enumerate(m[5]):
                if not isinstance(ent, list) or len(ent) < 4:
                    raise FormatError(path, f"event {ei} moment {mi}: entity {k} is {ent!r}; expected "
                                            "[team_id, player_id, x, y, z]")
                rows.append((q, unix, gc, np.nan if sc is None else sc, ei, ent[0], ent[1], ent[2], ent[3],
                             ent[4] if len(ent) > 4 and ent[4] is not None else np.nan))
    if not rows:
        raise FormatError(path, "no moments in any event")
    try:
        a = np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError):
        _first_bad_number(path, events)
        raise
    meta = {"teams": teams, "players": players, "gameid": str(data.get("gameid", "")), "n_events": len(events)}
    rec = assemble_moments(
        path, time=a[:, 1], period=a[:, 0], clock=a[:, 2], shot=a[:, 3], event=a[:, 4].astype(np.int64),
        team=a[:, 5].astype(np.int64), player=a[:, 6].astype(np.int64), x=a[:, 7], y=a[:, 8], z=a[:, 9],
        flag_of=None, fps=fps, possession=possession, players_per_moment=players_per_moment,
        gap_factor=gap_factor, time_is_clock=False, fmt="sportvu_json", metadata=meta,
    )
    return [rec]


def _first_bad_number(path: Path, events: list) -> None:
    """Raise a :class:`FormatError` naming the first value of a moment that is not a number."""
    for ei, ev in enumerate(events):
        for mi, m in enumerate(ev.get("moments") or []):
            for name, v in zip(("quarter", "unix_ms", "game_clock", "shot_clock"), m[:4]):
                _number(path, v, f"event {ei} moment {mi}: field {name!r}", allow_none=name == "shot_clock")
            for k, ent in enumerate(m[5]):
                for name, v in zip(("team_id", "player_id", "x", "y", "z"), ent[:5]):
                    _number(path, v, f"event {ei} moment {mi} entity {k}: field {name!r}", allow_none=name == "z")


def _number(path: Path, value, where: str, allow_none: bool = False) -> float:
    """``value`` as a float, or a :class:`FormatError` naming the file, place and field."""
    if value is None and allow_none:
        return np.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise FormatError(path, f"{where}: expected a number; got {value!r}") from None
    return float(value)


def _col(header: Sequence[str], *names: str) -> int | None:
    for n in names:
        if n in header:
            return list(header).index(n)
    return None


def load_sportvu_csv(
    path: str | Path,
    fps: float | None = None,
    possession: str = "ball",
    players_per_moment: int = 10,
    gap_factor: float = 3.0,
) -> list[Recording]:
    """Read the processed SportVU CSV (see the module docstring)."""
    path = Path(path)
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        missing = [c for c in CSV_REQUIRED if c not in header]
        if missing:
            raise FormatError(path, f"missing column(s) {missing}; a processed SportVU CSV has {', '.join(CSV_REQUIRED)}")
        wanted = [
            j for j in (
                _col(header, *names) for names in (
                    ("x_loc",), ("y_loc",), ("team_id",), ("player_id",), ("game_clock",), ("shot_clock",),
                    ("quarter", "period", "PERIOD"), ("event_id", "EVENTNUM"), ("radius",), ("of_def_flag",),
                    ("home",), ("visitor",),
                )
            ) if j is not None
        ]
        pad = [""] * (max(wanted) + 1)
        # keep only the columns read below: the play-by-play text columns would inflate the array
        rows = [[(r + pad)[j] for j in wanted] for r in reader if r]
    if not rows:
        raise FormatError(path, "no data rows (zero moments)")
    arr = np.asarray(rows, dtype=str)
    slot = {j: i for i, j in enumerate(wanted)}

    def num(*names, default=np.nan):
        j = _col(header, *names)
        if j is None:
            return np.full(len(rows), default)
        col = np.char.strip(arr[:, slot[j]])
        col = np.where(col == "", "nan", col)
        try:
            return col.astype(np.float64)
        except ValueError:
            bad = next(i for i, v in enumerate(col) if not _isnum(v))
            raise FormatError(path, f"line {bad + 2}, field {header[j]!r}: expected a number, got {str(col[bad])!r}") from None

    x, y = num("x_loc"), num("y_loc")
    team, player, clock = num("team_id"), num("player_id"), num("game_clock")
    for name, v in (("team_id", team), ("player_id", player), ("game_clock", clock)):
        if not np.isfinite(v).all():
            i = int(np.flatnonzero(~np.isfinite(v))[0])
            raise FormatError(path, f"line {i + 2}, field {name!r} is empty")
    period = num("quarter", "period", "PERIOD", default=1.0)
    period = np.where(np.isfinite(period), period, 1.0)
    event_raw = num("event_id", "EVENTNUM", default=0.0)
    _, first_idx, event_inv = np.unique(event_raw, return_index=True, return_inverse=True)
    event = np.argsort(np.argsort(first_idx))[event_inv]  # events numbered in file order
    jf = _col(header, "of_def_flag")
    flag_of = None
    if jf is not None:
        flag_of = np.char.strip(arr[:, slot[jf]]) == "of"
    meta = {}
    jh, jv = _col(header, "home"), _col(header, "visitor")
    if jh is not None and jv is not None:
        meta = {"home": str(arr[0, slot[jh]]), "visitor": str(arr[0, slot[jv]])}
    # a moment is a (period, game clock) pair; later moments have larger keys
    time = period * 1e4 - clock
    return [
        assemble_moments(
            path, time=time, period=period, clock=clock, shot=num("shot_clock"), event=event,
            team=team.astype(np.int64), player=player.astype(np.int64), x=x, y=y, z=num("radius"),
            flag_of=flag_of, fps=fps, possession=possession, players_per_moment=players_per_moment,
            gap_factor=gap_factor, time_is_clock=True, fmt="sportvu_csv", metadata=meta,
        )
    ]


def _isnum(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False
