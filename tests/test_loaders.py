"""Format loaders: every shared real-data file, and small hand-made files for each corner case."""

import json
import logging
import os
import pickle

import h5py
import numpy as np
import pytest

from nsprog.data.loaders import FORMATS, FormatError, detect_format, list_formats, load_recording, load_recordings
from nsprog.data.loaders.arrays import save_arrays
from nsprog.data.loaders.dlc import safe_unpickle
from nsprog.data import repair_missing
from nsprog.data.recording import Recording

# ============================================================================ shared real data
MABE_COLUMNS_BODYPARTS = [
    "nose", "left ear", "right ear", "neck", "left forepaw", "right forepaw", "center back", "left hindpaw",
    "right hindpaw", "tail base", "tail middle", "tail tip",
]


def test_every_shared_file_loads(shared_data):
    """Each file in ../shared/data loads into a recording with the documented shape."""
    expected = {
        "sportvu/0021500400.csv": ("sportvu_csv", (1355, 18, 1, 2)),  # ball + 17 players over the period
        "crim13/Tvideo_8_trim.csv": ("simba_csv", (101, 2, 8, 2)),
        "crim13/Tvideo_25_trim.csv": ("simba_csv", (101, 2, 8, 2)),
        "crim13/Tvideo_80_trim.csv": ("simba_csv", (101, 2, 8, 2)),
        "mabe22/EGS8X2MN4SSUGFWAV976.h5": ("dlc_h5", (1800, 3, 12, 2)),
        "openfield/8_01_A_190507134142_DLC.csv": ("dlc_csv", (1998, 1, 18, 2)),
        "openfield/12_01_A_190507144429_DLC.csv": ("dlc_csv", (1998, 1, 18, 2)),
        "jabs/sample_pose_est_v3.h5": ("jabs_h5", (1800, 5, 12, 2)),
    }
    data_files = sorted(
        str(p.relative_to(shared_data)) for p in shared_data.rglob("*")
        if p.is_file() and p.suffix in (".csv", ".h5", ".json", ".npy", ".npz")
    )
    annotation_tables = [f for f in data_files if f.startswith("openfield/") and not f.endswith("_DLC.csv")]
    assert sorted(set(data_files) - set(annotation_tables)) == sorted(expected), "a new shared file needs a test"
    for rel, (fmt, shape) in expected.items():
        assert detect_format(shared_data / rel) == fmt, rel
        rec = load_recording(shared_data / rel)
        assert rec.format == fmt and rec.position.shape == shape, rel
        assert rec.confidence.shape == shape[:3]
        assert rec.position.dtype == np.float32
    for rel in annotation_tables:  # the bout tables attach to their DLC file
        dlc = shared_data / rel.replace(".csv", "_DLC.csv")
        rec = load_recording(dlc, annotations=shared_data / rel)
        assert rec.labels.shape == (1998,) and rec.label_names[0] == "none"
        assert {"Supported", "Unsupported"} <= set(rec.label_names)


def test_mabe22_h5_decodes_three_mice_twelve_keypoints(shared_data):
    rec = load_recording(shared_data / "mabe22/EGS8X2MN4SSUGFWAV976.h5", fps=30)
    assert rec.individual_names == ("mouse1", "mouse2", "mouse3")
    assert rec.keypoint_names == tuple(MABE_COLUMNS_BODYPARTS)  # column order as stored
    cols = rec.metadata["columns"]
    assert len(cols) == 72 and cols[:3] == ["mouse1/nose/x", "mouse1/nose/y", "mouse1/left ear/x"]
    with h5py.File(shared_data / "mabe22/EGS8X2MN4SSUGFWAV976.h5") as f:
        raw = f["df_with_missing/block0_values"][()]
    np.testing.assert_array_equal(rec.position[:, 0, 0, 0], raw[:, 0])  # mouse1 nose x
    np.testing.assert_array_equal(rec.position[:, 2, 11, 1], raw[:, 71])  # mouse3 tail tip y


def test_jabs_points_are_swapped_to_xy(shared_data):
    path = shared_data / "jabs/sample_pose_est_v3.h5"
    rec = load_recording(path)
    with h5py.File(path) as f:
        pts = f["poseest/points"][()]
        conf = f["poseest/confidence"][()]
    assert rec.fps == 30 and rec.keypoint_names[0] == "NOSE"
    ok = conf[0, 0, 0] > 0
    assert ok and rec.position[0, 0, 0, 0] == pts[0, 0, 0, 1] and rec.position[0, 0, 0, 1] == pts[0, 0, 0, 0]
    assert np.isnan(rec.position[conf == 0]).all()
    by_track = load_recording(path, identity="track", max_individuals=3)
    assert by_track.position.shape == (1800, 3, 12, 2)
    assert by_track.individual_names[0] == "track_39"  # the longest track (1741 frames)


def test_sportvu_csv_offense_and_bad_moment(shared_data, caplog):
    with caplog.at_level(logging.INFO, logger="nsprog"):
        rec = load_recording(shared_data / "sportvu/0021500400.csv")
    assert rec.individual_names[0] == "ball" and rec.group_names == ("ball", "1610612752", "1610612741")
    assert rec.fps == pytest.approx(1 / 0.52, rel=0.02)
    assert rec.valid.all()  # every moment has 10 players
    assert np.isnan(rec.position[:, 0]).all(axis=(1, 2)).sum() == 1  # one moment without the ball row
    off = rec.frame_data["offense"]
    assert set(np.unique(off)) == {1, 2}  # ball possession alternates between the teams
    assert (np.unique(rec.frame_data["offense_flag"]) == [1]).all()  # the file's flag never changes
    assert "looks like a team identity" in caplog.text
    flag = load_recording(shared_data / "sportvu/0021500400.csv", possession="flag")
    np.testing.assert_array_equal(flag.frame_data["offense"], 1)


# ============================================================================ format table
def test_format_table_and_errors(tmp_path):
    names = [f["name"] for f in list_formats()]
    for fmt in ("arrays", "calms21_json", "pickle_npy", "dlc_csv", "dlc_h5", "sleap_h5", "jabs_h5", "simba_csv",
                "sportvu_json", "sportvu_csv"):
        assert fmt in names and fmt in FORMATS
    p = tmp_path / "x.txt"
    p.write_text("hello")
    with pytest.raises(FormatError, match=r"unknown file suffix '.txt'.*formats: arrays, calms21_json"):
        detect_format(p)
    with pytest.raises(ValueError, match=r"unknown format 'deeplabcut'; available: auto, arrays"):
        load_recordings(p, format="deeplabcut")
    q = tmp_path / "w.csv"
    q.write_text("a,b\n1,2\n")
    with pytest.raises(FormatError, match="matches none of the formats"):
        load_recording(q)


# ============================================================================ arrays (.npz)
def test_arrays_round_trip_and_unknown_keys(tmp_path):
    rng = np.random.default_rng(1)
    rec = Recording.from_arrays(
        rng.normal(size=(12, 2, 3, 2)), rng.uniform(size=(12, 2, 3)), keypoint_names=["a", "b", "c"],
        individual_names=["p", "q"], individual_groups=["home", "away"], fps=25, labels=np.arange(12) % 2,
        label_names=["rest", "run"], frame_data={"offense": np.ones(12)}, source="mem",
    )
    path = save_arrays(rec, tmp_path / "r.npz")
    back = load_recording(path)  # auto-detected
    assert back.format == "arrays" and back.fps == 25
    np.testing.assert_array_equal(back.position, rec.position)
    np.testing.assert_array_equal(back.labels, rec.labels)
    assert back.individual_groups == ("home", "away") and back.label_names == ("rest", "run")
    np.testing.assert_array_equal(back.frame_data["offense"], 1)
    bad = tmp_path / "bad.npz"
    np.savez(bad, position=np.zeros((3, 1, 1, 2)), speed=np.zeros(3))
    with pytest.raises(FormatError, match=r"unknown key\(s\) \['speed'\]; documented keys: position"):
        load_recording(bad, format="arrays")


# ============================================================================ DeepLabCut CSV
def _dlc_csv_text(index_column=False, individuals=False):
    lines = []
    scorer = "DLC_resnet50"
    if individuals:
        cols = [("m1", "nose"), ("m1", "tail"), ("m2", "nose"), ("m2", "tail"), ("single", "cornerA")]
    else:
        cols = [("", "nose"), ("", "tail")]
    head = {
        "scorer": [scorer] * (3 * len(cols)),
        "individuals": [i for i, _ in cols for _ in range(3)],
        "bodyparts": [b for _, b in cols for _ in range(3)],
        "coords": ["x", "y", "likelihood"] * len(cols),
    }
    order = ["scorer", "individuals", "bodyparts", "coords"] if individuals else ["scorer", "bodyparts", "coords"]
    for i, key in enumerate(order):
        first = ([""] if i == 0 else [str(i - 1)]) + [key] if index_column else [key]
        lines.append(",".join(first + head[key]))
    for f in range(4):
        vals = []
        for j, _ in enumerate(cols):
            vals += [f"{10 * f + j}.5", f"{100 + j}", "0.9" if f != 2 else "0.1"]
        if individuals and f == 1:
            vals[3:6] = ["", "", ""]  # a missing keypoint (empty cells)
        lead = [str(f + len(order) - 1), str(f)] if index_column else [str(f)]
        lines.append(",".join(lead + vals))
    return "\n".join(lines) + "\n"


def test_dlc_csv_three_header_rows(tmp_path):
    p = tmp_path / "v.csv"
    p.write_text(_dlc_csv_text())
    rec = load_recording(p)
    assert rec.format == "dlc_csv" and rec.position.shape == (4, 1, 2, 2)
    assert rec.keypoint_names == ("nose", "tail") and rec.individual_names == ("individual_0",)
    np.testing.assert_allclose(rec.position[3, 0, 1], [31.5, 101])
    np.testing.assert_allclose(rec.confidence[2, 0], [0.1, 0.1])


def test_dlc_csv_pandas_index_column(tmp_path):
    p = tmp_path / "v_DLC.csv"
    p.write_text(_dlc_csv_text(index_column=True))
    rec = load_recording(p)
    assert rec.position.shape == (4, 1, 2, 2)  # the index and frame columns are not keypoints
    np.testing.assert_allclose(rec.position[:, 0, 0, 0], [0.5, 10.5, 20.5, 30.5])


def test_dlc_csv_four_header_rows_with_single_bodyparts(tmp_path):
    p = tmp_path / "ma.csv"
    p.write_text(_dlc_csv_text(individuals=True))
    rec = load_recording(p)
    assert rec.individual_names == ("m1", "m2", "single")
    assert rec.keypoint_names == ("nose", "tail", "cornerA")
    assert rec.position.shape == (4, 3, 3, 2)
    assert np.isnan(rec.position[:, 0, 2]).all()  # m1 has no cornerA column
    assert np.isnan(rec.position[1, 0, 1]).all()  # empty cells -> NaN
    np.testing.assert_allclose(rec.position[0, 2, 2], [4.5, 104])


def test_dlc_csv_zero_keypoints_and_bad_cells(tmp_path):
    p = tmp_path / "empty.csv"
    p.write_text("scorer,\nbodyparts,\ncoords,\n0,\n")
    with pytest.raises(FormatError, match="zero keypoints"):
        load_recording(p, format="dlc_csv")
    q = tmp_path / "bad.csv"
    text = _dlc_csv_text().replace("20.5", "abc")
    q.write_text(text)
    with pytest.raises(FormatError, match=r"bad.csv: line 6, field 'nose/x': expected a number, got 'abc'"):
        load_recording(q)


def test_zero_keypoints_become_nan_when_cutting_windows():
    pos = np.ones((10, 1, 2, 2), np.float32)
    pos[4, 0, 0] = 0.0
    rec = Recording.from_arrays(pos, fps=10)
    with pytest.raises(ValueError, match="none of the 1 windows"):
        rec.to_trajectories(10, max_gap=0)  # (0, 0) is missing and not repaired -> no window
    kept = rec.to_trajectories(10, max_gap=0, zero_as_missing=False)
    assert kept.states[0, 4, 0] == 0.0
    repaired = rec.to_trajectories(10, max_gap=1)
    assert repaired.states[0, 4, 0] == 1.0  # interpolated between its neighbours


# ============================================================================ DeepLabCut H5
def _write_fixed_h5(path, values, individuals, bodyparts):
    """A pandas 'fixed' layout DataFrame as PyTables writes it (same structure as the MABe22 file)."""
    cols = [(i, b, c) for i in range(len(individuals)) for b in range(len(bodyparts)) for c in range(2)]
    with h5py.File(path, "w") as f:
        g = f.create_group("df_with_missing")
        g.attrs["pandas_type"] = np.bytes_(b"frame")
        g.attrs["axis0_nlevels"] = 4
        g.attrs["nblocks"] = 1
        for ax in ("axis0", "block0_items"):
            g.attrs[f"{ax}_nlevels"] = 4
            for lev, (name, vals) in enumerate(
                [("scorer", [b"dlc"]), ("individuals", [s.encode() for s in individuals]),
                 ("bodyparts", [s.encode() for s in bodyparts]), ("coords", [b"x", b"y"])]
            ):
                d = g.create_dataset(f"{ax}_level{lev}", data=np.array(vals))
                d.attrs["name"] = np.bytes_(name.encode())
            g.create_dataset(f"{ax}_label0", data=np.zeros(len(cols), np.int8))
            g.create_dataset(f"{ax}_label1", data=np.array([c[0] for c in cols], np.int8))
            g.create_dataset(f"{ax}_label2", data=np.array([c[1] for c in cols], np.int8))
            g.create_dataset(f"{ax}_label3", data=np.array([c[2] for c in cols], np.int8))
        g.create_dataset("axis1", data=np.arange(values.shape[0]))
        d = g.create_dataset("block0_values", data=values)
        d.attrs["transposed"] = 1


def test_dlc_h5_fixed_layout(tmp_path):
    vals = np.arange(5 * 8, dtype=np.int32).reshape(5, 8)
    vals[2, :2] = 0  # a keypoint at (0, 0)
    p = tmp_path / "fixed.h5"
    _write_fixed_h5(p, vals, ["a", "b"], ["nose", "tail"])
    rec = load_recording(p)
    assert rec.format == "dlc_h5" and rec.position.shape == (5, 2, 2, 2)
    np.testing.assert_array_equal(rec.position[1, 1, 0], vals[1, 4:6])
    fixed, report = repair_missing(rec, max_gap=2)
    assert report.zero == 1 and np.isfinite(fixed.position).all()


def _write_table_h5(path, columns, values, protocol=0, opaque=False, kind_attr=True):
    with h5py.File(path, "w") as f:
        g = f.create_group("df_with_missing")
        g.attrs["pandas_type"] = np.bytes_(b"frame_table")
        blob = pickle.dumps([(1, columns)], protocol)
        g.attrs["non_index_axes"] = np.void(blob) if opaque else np.bytes_(blob)
        dt = np.dtype([("index", "<i8"), ("values_block_0", "<f8", (len(columns),))])
        arr = np.zeros(values.shape[0], dt)
        arr["index"] = np.arange(values.shape[0])
        arr["values_block_0"] = values
        t = g.create_dataset("table", data=arr)
        if kind_attr:
            t.attrs["values_block_0_kind"] = np.bytes_(pickle.dumps(list(columns), 0))


def test_dlc_h5_table_layout_with_pickled_columns(tmp_path):
    columns = [("scorer", bp, c) for bp in ("nose", "ear") for c in ("x", "y", "likelihood")]
    vals = np.arange(4 * 6, dtype=float).reshape(4, 6)
    for proto, opaque in ((0, False), (2, True)):
        p = tmp_path / f"table{proto}.h5"
        _write_table_h5(p, columns, vals, proto, opaque)
        rec = load_recording(p)
        assert rec.keypoint_names == ("nose", "ear") and rec.position.shape == (4, 1, 2, 2)
        np.testing.assert_array_equal(rec.position[3, 0, 1], [21, 22])
        np.testing.assert_array_equal(rec.confidence[:, 0, 0], vals[:, 2])


class _Evil:
    def __reduce__(self):
        return (os.getcwd, ())


def test_dlc_h5_refuses_malicious_pickles(tmp_path):
    assert safe_unpickle(pickle.dumps([(1, [("a", "b")])], 2)) == [(1, [("a", "b")])]
    with pytest.raises(pickle.UnpicklingError, match="refused to load global"):
        safe_unpickle(pickle.dumps(_Evil()))
    p = tmp_path / "evil.h5"
    with h5py.File(p, "w") as f:
        g = f.create_group("df")
        g.attrs["pandas_type"] = np.bytes_(b"frame_table")
        g.attrs["non_index_axes"] = np.void(pickle.dumps(_Evil()))
        g.create_dataset("table", data=np.zeros(2, np.dtype([("index", "<i8"), ("values_block_0", "<f8", (2,))])))
    with pytest.raises(FormatError, match=r"evil.h5: /df: attribute 'non_index_axes' could not be decoded safely.*refused"):
        load_recording(p)


# ============================================================================ SLEAP / JABS
def test_sleap_analysis_h5(tmp_path):
    n_tracks, n_nodes, n_frames = 2, 3, 6
    tracks = np.arange(n_tracks * 2 * n_nodes * n_frames, dtype=np.float64).reshape(n_tracks, 2, n_nodes, n_frames)
    occ = np.ones((n_frames, n_tracks), np.uint8)
    occ[4, 1] = 0
    p = tmp_path / "pred.analysis.h5"
    with h5py.File(p, "w") as f:
        f["tracks"] = tracks
        f["node_names"] = np.array([b"head", b"thorax", b"abdomen"])
        f["track_names"] = np.array([b"fly0", b"fly1"])
        f["track_occupancy"] = occ
        f["point_scores"] = np.full((n_tracks, n_nodes, n_frames), 0.5)
    rec = load_recording(p)
    assert rec.format == "sleap_h5" and rec.position.shape == (6, 2, 3, 2)
    assert rec.individual_names == ("fly0", "fly1") and rec.keypoint_names == ("head", "thorax", "abdomen")
    assert rec.position[2, 1, 0, 0] == tracks[1, 0, 0, 2] and rec.position[2, 1, 0, 1] == tracks[1, 1, 0, 2]
    assert np.isnan(rec.position[4, 1]).all() and np.isfinite(rec.position[4, 0]).all()
    with h5py.File(tmp_path / "bad.h5", "w") as f:
        f["tracks"] = np.zeros((2, 3, 3, 6))
        f["node_names"] = np.array([b"a", b"b", b"c"])
    with pytest.raises(FormatError, match=r"field 'tracks' has shape \(2, 3, 3, 6\)"):
        load_recording(tmp_path / "bad.h5")


def test_jabs_handmade(tmp_path):
    pts = np.zeros((4, 2, 12, 2), np.uint16)
    pts[:, 0, :, 0] = 7  # y
    pts[:, 0, :, 1] = 3  # x
    conf = np.ones((4, 2, 12), np.float32)
    conf[1, 0, 5] = 0  # keypoint not found
    p = tmp_path / "v_pose_est_v3.h5"
    with h5py.File(p, "w") as f:
        f["poseest/points"] = pts
        f["poseest/confidence"] = conf
        f["poseest/instance_count"] = np.array([1, 1, 1, 1], np.uint8)
    rec = load_recording(p)
    np.testing.assert_array_equal(rec.position[0, 0, 0], [3, 7])  # (x, y)
    assert np.isnan(rec.position[1, 0, 5]).all()
    assert np.isnan(rec.position[:, 1]).all()  # slot beyond instance_count


# ============================================================================ CalMS21 / pickles
def _calms21(n=6):
    rng = np.random.default_rng(0)
    seq = lambda a: {  # noqa: E731
        "keypoints": rng.uniform(0, 500, size=(n, 2, 2, 7)).round(2).tolist(),
        "scores": np.full((n, 2, 7), 0.9).tolist(),
        "annotations": a,
        "metadata": {"annotator-id": 0, "vocab": {"attack": 0, "investigation": 1, "mount": 2, "other": 3}},
    }
    return {"annotator-id_0": {"task1/train/mouse001": seq([3, 3, 1, 1, 0, 2][:n]), "task1/train/mouse002": seq([3] * n)}}


def test_calms21_json(tmp_path):
    data = _calms21()
    p = tmp_path / "calms21_task1_train.json"
    p.write_text(json.dumps(data))
    recs = load_recordings(p)
    assert len(recs) == 2 and recs[0].name == "annotator-id_0/task1/train/mouse001"
    r = recs[0]
    assert r.position.shape == (6, 2, 7, 2) and r.fps == 30
    assert r.individual_names == ("resident", "intruder") and r.keypoint_names[3] == "neck"
    assert r.label_names == ("attack", "investigation", "mount", "other") and r.labels.tolist() == [3, 3, 1, 1, 0, 2]
    kp = np.asarray(data["annotator-id_0"]["task1/train/mouse001"]["keypoints"], np.float32)
    np.testing.assert_array_equal(r.position[2, 1, 4], [kp[2, 1, 0, 4], kp[2, 1, 1, 4]])
    one = load_recording(p, sequence="annotator-id_0/task1/train/mouse002")
    assert one.labels.tolist() == [3] * 6
    with pytest.raises(ValueError, match="holds 2 recordings"):
        load_recording(p)
    data["annotator-id_0"]["task1/train/mouse001"]["keypoints"] = [[1, 2]] * 6
    p.write_text(json.dumps(data))
    with pytest.raises(FormatError, match=r"sequence annotator-id_0/task1/train/mouse001: field 'keypoints' has shape"):
        load_recordings(p)


def test_pickle_npy_needs_trusted(tmp_path):
    p = tmp_path / "calms21_task1_train.npy"
    np.save(p, np.array(_calms21(), dtype=object), allow_pickle=True)
    assert detect_format(p) == "pickle_npy"
    with pytest.raises(FormatError, match=r"calms21_task1_train.npy: is a pickle.*trusted=True"):
        load_recordings(p)
    recs = load_recordings(p, trusted=True)
    assert len(recs) == 2 and recs[0].format == "pickle_npy" and recs[0].labels is not None
    mabe = {"vocabulary": ["lights", "strain"],
            "sequences": {"abc": {"keypoints": np.zeros((5, 3, 12, 2)), "annotations": np.ones((2, 5))}}}
    q = tmp_path / "user_train.npy"
    np.save(q, np.array(mabe, dtype=object), allow_pickle=True)
    rec = load_recording(q, trusted=True)
    assert rec.position.shape == (5, 3, 12, 2) and sorted(rec.frame_data) == ["lights", "strain"]
    with pytest.raises(ValueError, match=r"format 'pickle_npy' has no option\(s\) \['possession'\]; its options are: trusted, fps"):
        load_recordings(q, trusted=True, possession="ball")


# ============================================================================ SportVU
def _moment(q, ms, clock, players, ball=True):
    ents = ([[-1, -1, 50.0, 25.0, 5.0]] if ball else []) + players
    return [q, ms, clock, 24.0, None, ents]


def _players(t_ms, n_home=5, n_away=5, home_x=20.0, away_x=30.0):
    out = [[1, 100 + i, home_x + i + t_ms / 1000.0, 10.0 + i, 0.0] for i in range(n_home)]
    out += [[2, 200 + i, away_x + i, 30.0 + i, 0.0] for i in range(n_away)]
    return out


def test_sportvu_json_overlap_and_bad_moments(tmp_path, caplog):
    m = {ms: _moment(1, ms, 720 - ms / 1000, _players(ms)) for ms in range(0, 400, 40)}
    m[200] = _moment(1, 200, 719.8, _players(200, n_home=4))  # 9 players
    m[240] = _moment(1, 240, 719.76, _players(240), ball=False)
    ev1 = {"eventId": "1", "home": {"teamid": 1, "abbreviation": "HOM", "players": [{"playerid": 100, "firstname": "A", "lastname": "B"}]},
           "visitor": {"teamid": 2, "abbreviation": "AWY", "players": []},
           "moments": [m[k] for k in range(0, 280, 40)]}
    ev2 = {"eventId": "2", "home": ev1["home"], "visitor": ev1["visitor"],
           "moments": [m[k] for k in range(160, 400, 40)]}  # overlaps frames 160..240
    p = tmp_path / "0021500001.json"
    p.write_text(json.dumps({"gameid": "0021500001", "events": [ev1, ev2]}))
    with caplog.at_level(logging.INFO, logger="nsprog"):
        rec = load_recording(p)
    assert rec.format == "sportvu_json" and rec.n_frames == 10  # de-duplicated by time
    assert rec.fps == pytest.approx(25.0)
    assert rec.position.shape == (10, 11, 1, 2)
    assert rec.group_names == ("ball", "1", "2")
    assert "3 moments stored again by later (overlapping) events" in caplog.text
    assert not rec.valid[5] and rec.valid[[0, 1, 2, 3, 4, 6, 7, 8, 9]].all()
    assert "frame 5 (period 1, game clock 719.80, event 0): field 'player rows' has 9 players; expected 10" in caplog.text
    assert np.isnan(rec.position[6, 0]).all()  # no ball row
    assert rec.metadata["teams"] == {"1": "HOM", "2": "AWY"}
    np.testing.assert_allclose(rec.position[:, 1, 0, 0][[0, 9]], [20.0, 20.36])  # player 100 moves along x


def test_sportvu_csv_handmade(tmp_path):
    header = "event_id,game_clock,player_id,team_id,x_loc,y_loc,of_def_flag,PERIOD\n"
    rows = []
    for k, clock in enumerate([700.0, 699.5, 699.0]):
        rows.append(f"1,{clock},-1,-1,{10 + k},20,def,1")
        for i in range(5):
            rows.append(f"1,{clock},{100 + i},7,{11 + k + i},20,of,1")
            rows.append(f"1,{clock},{200 + i},8,{40 + i},20,def,1")
    # event 2 repeats the last moment
    rows += [r.replace("1,699.0", "2,699.0", 1) for r in rows[-11:]]
    p = tmp_path / "g.csv"
    p.write_text(header + "\n".join(rows) + "\n")
    rec = load_recording(p, possession="flag")
    assert rec.n_frames == 3 and rec.position.shape == (3, 11, 1, 2)
    assert rec.group_names == ("ball", "7", "8") and rec.frame_data["offense"].tolist() == [1, 1, 1]
    assert rec.frame_data["offense_ball"].tolist() == [1, 1, 1]  # team 7 stands next to the ball
    assert rec.fps == pytest.approx(2.0)
    np.testing.assert_allclose(rec.frame_data["game_clock"], [700.0, 699.5, 699.0])


def test_folder_loading_names_and_duplicates(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "v.csv").write_text(_dlc_csv_text())
    (a / "w.csv").write_text(_dlc_csv_text())
    (a / "notes.csv").write_text("from,to,type\n0,1,x\n")  # a bout table: skipped in folders
    recs = load_recordings(a)
    assert [r.name for r in recs] == ["v", "w"]
    (b / "v.csv").write_text(_dlc_csv_text())
    with pytest.raises(ValueError, match=r"duplicate recording names \['v'\]"):
        load_recordings(str(tmp_path / "*" / "v.csv"))
