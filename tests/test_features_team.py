"""Team windows and team features: masked reducers, hand values, a 105 x 68 m pitch, SportVU."""

import logging
import math

import numpy as np
import pytest
import torch

from nsprog.data import split_by_time
from nsprog.data.loaders import load_recording
from nsprog.data.recording import Recording
from nsprog.data.teams import FIELD_PRESETS, get_field, team_windows
from nsprog.data.trajectories import Trajectories
from nsprog.features import get_domain
from nsprog.features.team import masked_mean, smooth_max, smooth_min


def _team_traj(xy, present, fps=2.0, field="basketball"):
    """Hand-made team windows: xy [N, T, S, 2], present [N, T, S]."""
    xy = np.asarray(xy, np.float32)
    present = np.asarray(present, bool)
    n, t, s, _ = xy.shape
    states = np.concatenate([np.where(present[..., None], xy, 0.0), present[..., None]], -1).reshape(n, t, s * 3)
    spec = FIELD_PRESETS[field]
    layout = {"kind": "team", "slots": s, "channels": ["x", "y", "present"], "field": spec.to_dict(), "fps": fps}
    return Trajectories(states=states, metadata={"layout": layout})


def test_reducers_mask_absent_players():
    v = torch.tensor([1.0, 2.0, 100.0])
    m = torch.tensor([True, True, False])
    assert masked_mean(v, m).item() == pytest.approx(1.5)  # not (1 + 2 + 0) / 3, not 34.3
    assert smooth_max(v, m, 100.0).item() == pytest.approx(2.0, abs=1e-6)
    assert smooth_min(v, m, 100.0).item() == pytest.approx(1.0, abs=1e-6)
    close = torch.tensor([1.0, 1.0, 1.0])
    assert smooth_max(close, torch.ones(3, dtype=torch.bool), 100.0).item() == pytest.approx(1 + math.log(3) / 100)
    assert smooth_max(v, torch.zeros(3, dtype=torch.bool), 100.0).item() == 0.0


def test_player_standing_on_the_target_and_speed():
    t, s = 3, 5
    xy = np.zeros((1, t, s, 2), np.float32)
    xy[0, :, 0] = [5.25, 25.0]  # on the basket
    xy[0, :, 1] = [[10.0, 25.0], [13.0, 29.0], [16.0, 33.0]]  # (3, 4) ft per frame
    xy[0, :, 2] = [20.25, 25.0]
    xy[0, :, 3] = [5.25, 45.0]
    present = np.ones((1, t, s), bool)
    present[0, :, 4] = False  # an absent player sits at (0, 0) in the states
    traj = _team_traj(xy, present, fps=2.0)
    d = get_domain("team", min_players=4)
    names = ["min_dist_target", "avg_dist_target", "max_speed", "avg_speed", "avg_x", "min_final_y"]
    f = d.compute(traj, names)[0]
    dist = [0.0, math.hypot(10 - 5.25, 0), 15.0, 20.0]
    assert f[0, 0].item() == pytest.approx(0.0, abs=1e-4)  # smooth min of 0 and far values
    assert f[0, 1].item() == pytest.approx(np.mean(dist), rel=1e-5)  # the absent player is not a fifth value
    assert f[1, 2].item() == pytest.approx(10.0, abs=0.02)  # 5 ft per frame at 2 fps
    assert f[1, 3].item() == pytest.approx(10.0 / 4, rel=1e-5)  # the others stand still
    assert f[0, 4].item() == pytest.approx((5.25 + 10 + 20.25 + 5.25) / 4)
    assert f[0, 5].item() == pytest.approx(25.0, abs=0.01)


def test_prepare_rejects_windows_with_too_few_players():
    xy = np.ones((2, 2, 5, 2), np.float32)
    present = np.ones((2, 2, 5), bool)
    present[1, 1, 2:] = False
    with pytest.raises(ValueError, match=r"window 1, frame 1: field 'players present' is 2; .* at least 5"):
        get_domain("team").compute(_team_traj(xy, present))
    with pytest.raises(ValueError, match="needs team windows"):
        get_domain("team").compute(Trajectories(states=np.ones((1, 2, 15)), metadata={}))


# ----------------------------------------------------------------------------- a 105 x 68 m pitch
def _match(n_frames=200, fps=10.0, n=11, seed=0):
    """Two teams on a 105 x 68 m pitch; red attacks the goal at x = 105, blue the goal at x = 0.

    Possession alternates every 50 frames. The team in possession advances towards the goal
    it attacks and its striker (first player) stands on that goal; the other team drops back.
    """
    rng = np.random.default_rng(seed)
    L, W = 105.0, 68.0
    pos = np.zeros((n_frames, 1 + 2 * n, 1, 2), np.float32)
    offense = np.zeros(n_frames, np.int64)
    for f in range(n_frames):
        red_has = (f // 50) % 2 == 0
        offense[f] = 1 if red_has else 2  # group index: ball, red, blue
        for team, base in (("red", 1), ("blue", 1 + n)):
            attack_x = L if team == "red" else 0.0
            has = red_has == (team == "red")
            frac = (f % 50) / 50.0
            for i in range(n):
                y = 4 + 60 * i / (n - 1)
                if has:
                    x = L / 2 + (attack_x - L / 2) * (0.3 + 0.5 * frac)
                else:
                    x = L / 2 + (L - attack_x - L / 2) * 0.4
                pos[f, base + i, 0] = [x + rng.normal(0, 0.3), y + rng.normal(0, 0.3)]
            if has:
                pos[f, base, 0] = [attack_x, W / 2]  # the striker stands on the goal
    pos[:, 0, 0] = pos[:, 1, 0]  # the ball with red's first player
    return Recording.from_arrays(
        pos, keypoint_names=["position"],
        individual_names=["ball"] + [f"r{i}" for i in range(n)] + [f"b{i}" for i in range(n)],
        individual_groups=["ball"] + ["red"] * n + ["blue"] * n,
        fps=fps, frame_data={"offense": offense, "period": np.ones(n_frames)}, source="pitch.npz",
    )


def test_pitch_105_by_68_runs_without_basketball_constants():
    rec = _match()
    pitch = get_field(None, name="pitch", length=105.0, width=68.0, target=(0.0, 34.0), players_per_team=11, units="m")
    traj = team_windows(rec, pitch, seconds=2.0, stride=5)
    assert traj.n_frames == 20 and traj.state_dim == 33
    assert len(traj) % 2 == 0 and traj.labels.tolist()[:4] == [1, 0, 1, 0]
    lay = traj.metadata["layout"]
    assert lay["field"]["length"] == 105.0 and lay["target"] == [0.0, 34.0] and lay["orientation"] == "period"
    # no window spans a possession change: 4 possessions x 7 windows (starts 0, 5, ..., 30)
    assert len(traj) == 2 * 28
    # red attacks right, so its possessions are rotated; blue already attacks the left goal
    red_off = (traj.labels == 1) & (traj.factors["team"] == 0)
    assert (traj.factors["flipped"][red_off] == 1).all()
    assert (traj.factors["flipped"][(traj.labels == 1) & (traj.factors["team"] == 1)] == 0).all()
    st = traj.states.reshape(len(traj), 20, 11, 3)
    # after orientation both groups play in the half of the target: the defense drops back to x = 52.5 * 0.6
    assert st[traj.labels == 1, :, :, 0].mean() < 52.5
    np.testing.assert_allclose(st[traj.labels == 0, :, :, 0].mean(), 52.5 * 0.6, atol=0.5)
    np.testing.assert_allclose(st[red_off][:, :, 0, :2], np.broadcast_to([0.0, 34.0], (red_off.sum(), 20, 2)), atol=1e-4)

    d = get_domain("team")  # the basketball preset default is overridden by the windows' layout
    ctx = d.prepare(traj)
    assert ctx.target == (0.0, 34.0) and ctx.fps == 10.0 and ctx.min_players == 11
    f = d.compute(traj)
    assert torch.isfinite(f).all()
    col = d.feature_names.index("min_dist_target")
    off = torch.from_numpy(traj.labels == 1)
    assert f[off, :, col].abs().max().item() < 1e-3  # the striker stands on the target
    assert f[~off, :, col].min().item() > 10.0  # the defense stays away from it
    parts = split_by_time(traj, {"train": 0.6, "test": 0.4})
    for p in parts.values():  # offense / defense pairs of one window stay together
        assert np.bincount(p.factors["possession"]).max() == 2 and len(p) % 2 == 0


def test_team_windows_skip_windows_with_missing_players(caplog):
    rec = _match(n_frames=60)
    pos = rec.position.copy()
    pos[10:14, 3] = np.nan  # red player 2 missing for 4 frames
    rec = Recording.from_arrays(pos, keypoint_names=["position"], individual_names=rec.individual_names,
                                individual_groups=rec.individual_groups, fps=10, frame_data=rec.frame_data,
                                source="pitch.npz")
    soccer = get_field("soccer")
    with caplog.at_level(logging.INFO, logger="nsprog"):
        traj = team_windows(rec, soccer, length=10)
    assert "pitch.npz: window at frame 4: field 'players of team red' has 10 tracked in every frame; expected 11" in caplog.text
    starts = traj.starts[::2]
    assert not np.any((starts > 0) & (starts <= 13) & (starts + 10 > 10))
    relaxed = team_windows(rec, soccer, length=10, min_players=10)
    st = relaxed.states.reshape(len(relaxed), 10, 11, 3)
    w = np.flatnonzero((relaxed.starts == 8) & (relaxed.factors["team"] == 0))[0]
    assert st[w, :, :, 2].sum(axis=1).tolist() == [10] * 10  # masked slot, not a zero-filled player
    assert (st[w, :, -1, :] == 0).all()


def test_team_windows_errors():
    rec = _match(n_frames=60)
    with pytest.raises(ValueError, match="exactly one of length"):
        team_windows(rec, get_field("soccer"))
    with pytest.raises(ValueError, match=r"need exactly two teams; got \['red'\]"):
        team_windows(rec, get_field("soccer"), length=10, teams=["red"])
    with pytest.raises(KeyError, match="unknown field preset 'hockey'; available: basketball, soccer"):
        get_field("hockey")


def test_sportvu_team_windows_and_features(shared_data):
    rec = load_recording(shared_data / "sportvu/0021500400.csv")
    traj = team_windows(rec, get_field("basketball"), length=15)
    assert traj.state_dim == 15 and len(traj) % 2 == 0 and len(traj) > 1000
    f = get_domain("team").compute(traj)
    assert torch.isfinite(f).all()
    dist = f[:, :, get_domain("team").feature_names.index("avg_dist_target")]
    off = torch.from_numpy(traj.labels == 1)
    # after orientation both groups play around the left basket; the offense spreads further out
    assert dist[off].mean() < 47 and dist[~off].mean() < 47
    st = traj.states.reshape(len(traj), 15, 5, 3)
    assert st[..., 0].mean() < 47  # oriented towards the left basket


def test_orientation_sources_agree_and_majority_possession():
    rec = _match()
    pitch = get_field("soccer")
    by_period = team_windows(rec, pitch, length=20, stride=5)
    by_window = team_windows(rec, pitch, length=20, stride=5, orientation="window")
    direction = np.where(rec.frame_data["offense"] == 1, 1, -1)  # red attacks x = 105, blue x = 0
    col = Recording.from_arrays(rec.position, keypoint_names=rec.keypoint_names, individual_names=rec.individual_names,
                                individual_groups=rec.individual_groups, fps=rec.fps,
                                frame_data={**rec.frame_data, "attack_direction": direction})
    by_column = team_windows(col, pitch, length=20, stride=5)
    assert by_column.metadata["layout"]["orientation"] == "column"
    for other in (by_window, by_column):
        np.testing.assert_array_equal(other.factors["flipped"], by_period.factors["flipped"])
        np.testing.assert_array_equal(other.states, by_period.states)
    majority = team_windows(rec, pitch, length=20, stride=5, mixed_possession="majority")
    assert len(majority) > len(by_period)  # windows across a possession change are kept
    w = np.flatnonzero(majority.starts == 35)[0]  # frames 35..54: red holds the ball for 15 of 20 frames
    assert majority.factors["team"][w] == 0 and majority.labels[w] == 1
