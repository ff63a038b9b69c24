"""Recording construction, missing-data repair, windows and annotations."""

import logging

import numpy as np
import pytest

from nsprog.data import split_by_time
from nsprog.data.annotations import bouts_to_frames, load_annotations
from nsprog.data import repair_missing
from nsprog.data.missing import interpolate_gaps, mark_missing
from nsprog.data.recording import NoWindowsError, Recording, RecordingError, recordings_to_trajectories


def _rec(t=30, ind=2, kp=3, **kw):
    rng = np.random.default_rng(0)
    pos = rng.uniform(1, 100, size=(t, ind, kp, 2)).astype(np.float32)
    return Recording.from_arrays(pos, fps=kw.pop("fps", 30.0), **kw)


# ----------------------------------------------------------------------------- construction
def test_from_arrays_defaults_and_shapes():
    rec = _rec()
    assert rec.position.dtype == np.float32 and rec.position.shape == (30, 2, 3, 2)
    assert rec.confidence.shape == (30, 2, 3) and np.isnan(rec.confidence).all()
    assert rec.keypoint_names == ("keypoint_0", "keypoint_1", "keypoint_2")
    assert rec.individual_names == ("individual_0", "individual_1")
    assert rec.individual_groups == ("", "")
    assert rec.valid.all() and rec.n_frames == 30 and rec.duration == pytest.approx(1.0)


def test_from_arrays_reports_every_problem_at_once():
    pos = np.zeros((10, 2, 3, 2))
    with pytest.raises(RecordingError) as err:
        Recording.from_arrays(
            pos,
            confidence=np.zeros((10, 2)),
            keypoint_names=["a", "a", "b"],
            individual_names=["m0"],
            labels=np.arange(9),
            frame_data={"clock": np.zeros(4)},
            fps=30,
            source="x.csv",
        )
    msg = str(err.value)
    assert len(err.value.problems) == 5
    for part in ("confidence", "keypoint_names must be unique", "individual_names has 1 entries", "labels has shape",
                 "frame_data['clock']", "x.csv"):
        assert part in msg


def test_from_arrays_coercions(caplog):
    with caplog.at_level(logging.INFO, logger="nsprog"):
        rec = Recording.from_arrays(np.ones((5, 4, 2)), keypoint_names=None, individual_names="mouse", fps=-3)
    assert rec.position.shape == (5, 1, 4, 2)  # one individual added
    assert rec.individual_names == ("mouse",)  # a lone string became a list
    assert rec.fps is None  # fps <= 0 coerced with a warning
    assert "not a positive number" in caplog.text
    with caplog.at_level(logging.WARNING, logger="nsprog"):
        Recording.from_arrays(np.ones((5, 1, 4, 2)), source="a.h5")
    assert "a.h5: frame rate unknown" in caplog.text


def test_rejects_bad_position():
    with pytest.raises(RecordingError, match="3-D keypoints are not supported"):
        Recording.from_arrays(np.zeros((5, 1, 4, 3)), fps=1)
    with pytest.raises(RecordingError, match="zero keypoints"):
        Recording.from_arrays(np.zeros((5, 1, 0, 2)), fps=1)


def test_select_and_labels_from_flags():
    rec = _rec(keypoint_names=["nose", "neck", "tail"], individual_names=["a", "b"],
               frame_data={"attack": np.r_[np.ones(10), np.zeros(20)], "sniff": np.r_[np.ones(5), np.zeros(20), np.ones(5)]})
    sub = rec.select(individuals=["b"], keypoints=["tail", 0])
    assert sub.position.shape == (30, 1, 2, 2) and sub.keypoint_names == ("tail", "nose")
    np.testing.assert_array_equal(sub.position[:, 0, 0], rec.position[:, 1, 2])
    with pytest.raises(KeyError, match="available: nose, neck, tail"):
        rec.select(keypoints=["ear"])
    lab = rec.labels_from_flags(["attack", "sniff"])
    assert lab.label_names == ("none", "attack", "sniff")
    assert lab.labels[0] == 1 and lab.labels[12] == 0 and lab.labels[-1] == 2  # first listed flag wins


# ----------------------------------------------------------------------------- missing data
def test_interpolate_gaps_hand_values():
    x = np.array([0.0, np.nan, np.nan, 3.0, np.nan, np.nan, np.nan, np.nan, 8.0, np.nan], dtype=np.float32)
    filled, mask = interpolate_gaps(x[:, None], max_gap=3)
    np.testing.assert_allclose(filled[:4, 0], [0, 1, 2, 3])
    assert np.isnan(filled[4:8, 0]).all()  # gap of 4 > 3 stays
    assert np.isnan(filled[9, 0])  # trailing gap has one anchor only
    assert mask[:, 0].tolist() == [False, True, True] + [False] * 7
    filled, _ = interpolate_gaps(x[:, None], max_gap=4)
    np.testing.assert_allclose(filled[3:9, 0], [3, 4, 5, 6, 7, 8])


def test_mark_missing_and_repair_counts(caplog):
    pos = np.tile(np.arange(1, 41, dtype=np.float32)[:, None, None, None], (1, 1, 2, 2))
    conf = np.ones((40, 1, 2), np.float32)
    conf[5, 0, 0] = 0.1  # low confidence: one frame
    pos[10, 0, 1] = 0.0  # (0, 0) padding: one frame
    pos[20:30, 0, 0] = np.nan  # a 10-frame gap: too long
    marked, n_low, n_zero = mark_missing(pos, conf, min_confidence=0.5)
    assert (n_low, n_zero) == (1, 1) and np.isnan(marked[5, 0, 0]).all()
    rec = Recording.from_arrays(pos, conf, fps=10, source="mem.csv")
    with caplog.at_level(logging.INFO, logger="nsprog"):
        fixed, report = repair_missing(rec, min_confidence=0.5, max_gap=3)
    assert report.low_confidence == 1 and report.zero == 1
    assert report.values_interpolated == 2 and report.frames_repaired == 2
    assert report.frames_invalid == 10 and not fixed.valid[20:30].any() and fixed.valid[:20].all()
    np.testing.assert_allclose(fixed.position[5, 0, 0], [6, 6])  # linear between frames 4 and 6
    np.testing.assert_allclose(fixed.position[10, 0, 1], [11, 11])
    assert "interpolated 2 keypoints in 2 frames" in caplog.text and "mem.csv" in caplog.text


def test_to_trajectories_layout_labels_and_dropped_windows(caplog):
    pos = np.arange(40 * 2 * 3 * 2, dtype=np.float32).reshape(40, 2, 3, 2) + 1
    pos[25, 1, 2] = np.nan  # short gap: repaired
    pos[30:38, 0, 0] = np.nan  # long gap: windows dropped
    labels = np.r_[np.zeros(20, int), np.ones(20, int)]
    rec = Recording.from_arrays(pos, keypoint_names=["nose", "neck", "tail"], individual_names=["res", "int"],
                                labels=labels, label_names=["other", "attack"], fps=30, source="s.json")
    with caplog.at_level(logging.INFO, logger="nsprog"):
        t = rec.to_trajectories(5, stride=1, reduce="centre", group=3, max_gap=2)
    assert t.state_dim == 12 and t.n_frames == 5
    assert t.feature_names[:3] == ("res/nose/x", "res/nose/y", "res/neck/x")
    assert t.metadata["layout"]["keypoints"] == ["nose", "neck", "tail"]
    assert np.isfinite(t.states).all()
    # 36 windows start at 0..35; frames 30..37 are invalid, so windows starting at 26..35 go (10)
    assert len(t) == 26 and t.metadata["windows_dropped"] == 10
    assert t.starts.max() == 25
    np.testing.assert_array_equal(t.labels, labels[t.starts + 2])
    np.testing.assert_array_equal(t.groups, 3)
    first = t.states[0, 0].reshape(2, 3, 2)
    np.testing.assert_array_equal(first, pos[0])
    assert "10 of 36 dropped" in caplog.text


def test_segments_are_never_spanned():
    seg = np.r_[np.zeros(10, int), np.ones(10, int)]
    rec = _rec(t=20, frame_data={"segment": seg})
    t = rec.to_trajectories(4)
    assert len(t) == 7 + 7  # 17 windows minus the 3 that cross frame 10
    assert all(seg[s] == seg[s + 3] for s in t.starts)


def test_no_windows_error_names_the_worst_keypoint():
    pos = np.ones((20, 1, 2, 2), np.float32)
    pos[:, 0, 1] = np.nan
    rec = Recording.from_arrays(pos, keypoint_names=["nose", "ear"], fps=1, source="f.csv")
    with pytest.raises(NoWindowsError, match=r"f.csv.*individual_0/ear missing in 100% of frames"):
        rec.to_trajectories(5)


def test_recordings_to_trajectories_groups_and_time_split():
    recs = [_rec(t=60, name=f"r{i}") for i in range(2)]
    t = recordings_to_trajectories(recs, 10, stride=2)
    assert set(t.groups.tolist()) == {0, 1}
    assert [r["name"] for r in t.metadata["recordings"]] == ["r0", "r1"]
    parts = split_by_time(t, {"train": 0.5, "test": 0.5})
    for g in (0, 1):
        tr = parts["train"].starts[parts["train"].groups == g]
        te = parts["test"].starts[parts["test"].groups == g]
        assert tr.max() + 10 <= te.min()  # no window straddles the boundary
    other = Recording.from_arrays(np.ones((60, 2, 2, 2)), fps=30, name="odd")
    with pytest.raises(ValueError, match="select common ones"):
        recordings_to_trajectories([recs[0], other], 10)


# ----------------------------------------------------------------------------- annotations
def test_bouts_to_frames_hand_values(caplog):
    with caplog.at_level(logging.INFO, logger="nsprog"):
        labels, names = bouts_to_frames([0.2, 0.5, 0.1, 3.0], [0.4, 0.7, 0.9, 3.5],
                                        ["groom", "rear", "StartEnd", "rear"], n_frames=10, fps=10)
    assert names == ["none", "groom", "rear"]
    # groom covers frames 2..4, rear 5..7; the StartEnd session row is skipped; the last bout is beyond the end
    assert labels.tolist() == [0, 0, 1, 1, 1, 2, 2, 2, 0, 0]
    assert "start after the last frame" in caplog.text


def test_load_annotations_bout_table_defaults_to_25_fps(tmp_path, caplog):
    p = tmp_path / "ann.csv"
    p.write_text(",Unnamed: 0,from,to,type\n0,7,0.0,0.08,Supported\n1,8,0.2,0.24,Grooming\n")
    with caplog.at_level(logging.WARNING, logger="nsprog"):
        labels, names = load_annotations(p, n_frames=8)
    assert "assuming 25 fps" in caplog.text
    assert names == ["none", "Grooming", "Supported"]
    assert labels.tolist() == [2, 2, 2, 0, 0, 1, 1, 0]


def test_load_annotations_per_frame(tmp_path):
    p = tmp_path / "lab.csv"
    p.write_text("label\nrest\nwalk\nwalk\nrest\n")
    labels, names = load_annotations(p, n_frames=4)
    assert names == ["rest", "walk"] and labels.tolist() == [0, 1, 1, 0]
    q = tmp_path / "lab.npy"
    np.save(q, np.array([0, 2, 1]))
    labels, names = load_annotations(q, n_frames=3)
    assert labels.tolist() == [0, 2, 1] and names == ["label_0", "label_1", "label_2"]
    with pytest.raises(ValueError, match="3 per-frame labels for a recording of 5 frames"):
        load_annotations(q, n_frames=5)
