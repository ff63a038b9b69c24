"""`nsprog data convert` end to end, and the feature benchmark's smoke run."""

import importlib.util
from pathlib import Path

import numpy as np

from nsprog.cli import main
from nsprog.data import Recording, load_dataset
from nsprog.data.loaders import save_arrays


def _arrays_file(tmp_path, frames=120):
    rng = np.random.default_rng(0)
    pos = np.cumsum(rng.normal(size=(frames, 2, 7, 2)), axis=0).astype(np.float32) + 300
    labels = (np.arange(frames) // 30) % 2
    rec = Recording.from_arrays(pos, keypoint_names=["nose", "ear_left", "ear_right", "neck", "hip_left", "hip_right",
                                                     "tail_base"], fps=30, labels=labels, label_names=["other", "attack"])
    return save_arrays(rec, tmp_path / "tracks.npz")


def test_convert_arrays_with_time_split(tmp_path, capsys):
    src = _arrays_file(tmp_path)
    out = tmp_path / "w.h5"
    rc = main(["data", "convert", str(src), "--format", "arrays", "--out", str(out), "--window", "21", "--stride", "3",
               "--split-time", "0.6,0.2,0.2", "--quiet"])
    assert rc == 0
    d = load_dataset(out)
    assert set(d) == {"train", "val", "test"}
    tr, te = d["train"], d["test"]
    assert tr.states.shape[1:] == (21, 28) and tr.metadata["domain"] == "mouse"
    assert tr.label_names == ("other", "attack")
    assert tr.starts.max() + 21 <= d["val"].starts.min() and d["val"].starts.max() + 21 <= te.starts.min()
    assert main(["data", "convert", str(src), "--out", str(out), "--quiet"]) == 1  # exists without --force
    assert "exists" in capsys.readouterr().err


def test_convert_sportvu_csv(shared_data, tmp_path):
    out = tmp_path / "b.h5"
    rc = main(["data", "convert", str(shared_data / "sportvu/0021500400.csv"), "--out", str(out), "--window", "15",
               "--split-time", "0.7,0.15,0.15", "--quiet"])
    assert rc == 0
    d = load_dataset(out)
    for part in d.values():
        assert part.state_dim == 15 and part.metadata["layout"]["kind"] == "team"
        assert (part.labels == 1).sum() == (part.labels == 0).sum()


def test_convert_errors_name_the_problem(tmp_path, capsys):
    p = tmp_path / "seq.npy"
    np.save(p, np.array({"g": {"s": {"keypoints": np.ones((5, 2, 2, 7))}}}, dtype=object), allow_pickle=True)
    assert main(["data", "convert", str(p), "--out", str(tmp_path / "o.h5"), "--window", "3"]) == 1
    err = capsys.readouterr().err
    assert "seq.npy: is a pickle" in err and "--trusted" in err
    assert main(["data", "convert", str(p), "--out", str(tmp_path / "o.h5"), "--window", "3", "--trusted", "--quiet"]) == 0
    bad = tmp_path / "t.txt"
    bad.write_text("x")
    assert main(["data", "convert", str(bad), "--out", str(tmp_path / "o2.h5")]) == 1
    assert "readable suffixes" in capsys.readouterr().err


def test_benchmark_smoke(capsys):
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_features.py"
    spec = importlib.util.spec_from_file_location("bench_features", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--windows", "3000", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "windows/s" in out and "target:" in out and "65,000" in out
