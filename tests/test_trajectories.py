import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nsprog.data import (
    DatasetFileError,
    Normalizer,
    Trajectories,
    cut_windows,
    export_npz,
    load_dataset,
    reduce_frame_labels,
    save_dataset,
    split_by_group,
    split_by_time,
    split_random,
    synthetic_dataset,
)


def make(n=6, t=5, d=2, **kw):
    return Trajectories(states=np.arange(n * t * d, dtype=np.float32).reshape(n, t, d), **kw)


def test_actions_are_differences():
    tr = make()
    assert tr.actions.shape == (6, 4, 2)
    np.testing.assert_array_equal(tr.actions, np.diff(tr.states, axis=1))


@pytest.mark.parametrize(
    "states,match",
    [
        (np.zeros((4, 5)), r"states has shape \(4, 5\) \(rank 2\); expected \(N, T\+1, D\)"),
        (np.zeros((0, 5, 2)), r"zero windows"),
        (np.zeros((3, 1, 2)), r"at least 2 frames"),
        (np.array([[[0.0], [np.nan]]]), r"contains NaN or inf \(first at window 0, frame 1, dim 0\)"),
        (np.array([[[0.0], [np.inf]]]), r"NaN or inf"),
    ],
)
def test_bad_states_raise_value_error_naming_shape(states, match):
    with pytest.raises(ValueError, match=match):
        Trajectories(states=states)


def test_mismatched_lengths_raise():
    with pytest.raises(ValueError, match=r"labels has shape \(5,\); expected \(6,\)"):
        make(labels=np.zeros(5, dtype=int))
    with pytest.raises(ValueError, match=r"factors\['c'\] has shape"):
        make(factors={"c": np.zeros(2, dtype=int)})
    with pytest.raises(ValueError, match="feature_names has 3 entries; expected 2"):
        make(feature_names=("a", "b", "c"))


def test_hdf5_round_trip(tmp_path):
    d = synthetic_dataset(50, 10, 10, seed=3)
    path = save_dataset(tmp_path / "s.h5", d)
    back = load_dataset(path)
    assert list(back) == ["train", "val", "test"]
    for k in d:
        np.testing.assert_array_equal(back[k].states, d[k].states)
        np.testing.assert_array_equal(back[k].labels, d[k].labels)
        np.testing.assert_array_equal(back[k].factors["c_x"], d[k].factors["c_x"])
        assert back[k].label_names == d[k].label_names
        assert back[k].metadata["seed"] == 3


def test_loading_a_foreign_or_newer_file_is_a_clear_error(tmp_path):
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(DatasetFileError, match=r"foreign\.h5 is an HDF5 file but not an nsprog dataset"):
        load_dataset(foreign)
    text = tmp_path / "text.h5"
    text.write_text("hello")
    with pytest.raises(DatasetFileError, match=r"text\.h5 is not an HDF5 file"):
        load_dataset(text)
    newer = save_dataset(tmp_path / "newer.h5", make())
    with h5py.File(newer, "a") as f:
        f.attrs["schema_version"] = 99
    with pytest.raises(DatasetFileError, match=r"newer\.h5 has schema version 99"):
        load_dataset(newer)


def test_npz_export(tmp_path):
    d = synthetic_dataset(20, 5, 5, seed=1)
    export_npz(tmp_path / "s.npz", d)
    z = np.load(tmp_path / "s.npz")
    np.testing.assert_array_equal(z["train/states"], d["train"].states)
    np.testing.assert_array_equal(z["test/factors/c_y"], d["test"].factors["c_y"])
    assert z["val/actions"].shape == (5, 24, 2)


def test_normalizer_fits_on_train_only_and_round_trips():
    d = synthetic_dataset(200, 50, 50, seed=0)
    norm = Normalizer.fit(d["train"])
    z = norm.transform(d["train"]).states.reshape(-1, 2)
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(z.std(0), 1, atol=1e-4)
    back = Normalizer.from_dict(norm.to_dict())
    np.testing.assert_allclose(back.inverse(back.transform(d["test"]).states), d["test"].states, atol=1e-4)


def test_synthetic_classes_balanced_and_separable_by_final_position():
    t = synthetic_dataset(10_000, 10, 10, seed=0)["train"]
    freq = np.bincount(t.labels, minlength=4) / len(t)
    assert np.all(np.abs(freq - 0.25) < 0.05)
    final = t.states[:, -1]
    pred = 2 * (final[:, 0] > 10) + (final[:, 1] > 10)
    assert (pred == t.labels).mean() >= 0.95
    assert (pred == t.labels).mean() < 1.0  # the appendix as written is not perfectly separable


def test_synthetic_reject_ambiguous_makes_classes_separable():
    t = synthetic_dataset(2000, 10, 10, seed=1, reject_ambiguous=True)["train"]
    final = t.states[:, -1]
    pred = 2 * (final[:, 0] > 10) + (final[:, 1] > 10)
    assert (pred == t.labels).all()
    assert t.metadata["reject_ambiguous"] is True


def test_synthetic_is_seeded():
    a = synthetic_dataset(30, 5, 5, seed=7)
    b = synthetic_dataset(30, 5, 5, seed=7)
    c = synthetic_dataset(30, 5, 5, seed=8)
    np.testing.assert_array_equal(a["test"].states, b["test"].states)
    assert not np.array_equal(a["test"].states, c["test"].states)


def test_reduce_frame_labels_by_hand():
    labels = np.array([0, 1, 1, 2, 2, 2, 0, 0])
    starts = np.array([0, 3])
    assert reduce_frame_labels(labels, starts, 5, "centre").tolist() == [1, 2]
    assert reduce_frame_labels(labels, starts, 5, "last").tolist() == [2, 0]
    assert reduce_frame_labels(labels, starts, 5, "majority").tolist() == [1, 2]  # tie 1 vs 2 -> smaller id
    with pytest.raises(ValueError, match="reduce must be one of centre, majority, last"):
        reduce_frame_labels(labels, starts, 5, "middle")


@settings(max_examples=60, deadline=None)
@given(
    n_frames=st.integers(4, 80),
    length=st.integers(2, 10),
    stride=st.integers(1, 5),
    reduce=st.sampled_from(["centre", "majority", "last"]),
    seed=st.integers(0, 1000),
)
def test_windowing_property(n_frames, length, stride, reduce, seed):
    rng = np.random.default_rng(seed)
    frames = rng.normal(size=(n_frames, 3)).astype(np.float32)
    labels = rng.integers(0, 3, size=n_frames)
    if n_frames < length:
        with pytest.raises(ValueError, match="no complete window"):
            cut_windows(frames, length, stride, labels, reduce)
        return
    t = cut_windows(frames, length, stride, labels, reduce)
    assert t.states.shape[1:] == (length, 3)
    for i, s in enumerate(t.starts):
        np.testing.assert_array_equal(t.states[i], frames[s : s + length])
        window = labels[s : s + length]
        if reduce == "centre":
            expected = window[length // 2]
        elif reduce == "last":
            expected = window[-1]
        else:
            counts = np.bincount(window, minlength=3)
            expected = int(np.flatnonzero(counts == counts.max())[0])
        assert t.labels[i] == expected
    assert np.all(np.diff(t.starts) == stride)


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(12, 60), min_size=1, max_size=4),
    length=st.integers(2, 6),
    stride=st.integers(1, 3),
    f_train=st.floats(0.3, 0.7),
)
def test_time_split_never_straddles(lengths, length, stride, f_train):
    parts = [cut_windows(np.zeros((n, 1), np.float32), length, stride, group=g) for g, n in enumerate(lengths)]
    t = Trajectories.concatenate(parts)
    f_val = (1 - f_train) / 2
    try:
        splits = split_by_time(t, {"train": f_train, "val": f_val, "test": 1 - f_train - f_val})
    except ValueError as exc:
        assert "holds no complete window" in str(exc)
        return
    for g in range(len(lengths)):
        spans = []
        for name in ("train", "val", "test"):
            sel = splits[name].groups == g
            if sel.any():
                s = splits[name].starts[sel]
                spans.append((name, int(s.min()), int(s.max()) + length))
        # the frame ranges of the splits of one group are disjoint and in split order
        for (_, _, hi), (_, lo, _) in zip(spans, spans[1:]):
            assert hi <= lo


def test_group_split_keeps_groups_whole():
    parts = [cut_windows(np.zeros((30, 1), np.float32), 5, 2, group=g) for g in range(6)]
    t = Trajectories.concatenate(parts)
    splits = split_by_group(t, {"train": 0.6, "val": 0.2, "test": 0.2}, seed=0)
    seen = [set(np.unique(s.groups)) for s in splits.values()]
    assert all(seen)
    for a in range(3):
        for b in range(a + 1, 3):
            assert not (seen[a] & seen[b])
    assert sum(len(s) for s in splits.values()) == len(t)


def test_random_split_refuses_overlapping_windows():
    t = cut_windows(np.zeros((30, 1), np.float32), 5, 1)
    with pytest.raises(ValueError, match="overlapping windows"):
        split_random(t, {"train": 0.5, "test": 0.5})
    s = split_random(make(n=10), {"train": 0.8, "test": 0.2}, seed=0)
    assert len(s["train"]) == 8 and len(s["test"]) == 2
    with pytest.raises(ValueError, match="must sum to 1"):
        split_random(make(n=10), {"train": 0.8, "test": 0.3})
