"""TREBA training and embedding: a resumed run equals an uninterrupted one, two DDP processes
(gloo, CPU) stay in sync and match one process with the same global batch, embeddings do not
depend on the batch size, every frame of a recording is embedded, and bad input gets a clear
error before anything is written."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import yaml

from nsprog.data import Recording, save_dataset, synthetic_dataset
from nsprog.data.loaders import save_arrays
from nsprog.data.splits import split_by_time
from trebalink.augment import AugmentSettings
from trebalink.checkpoint import read_model
from trebalink.cli import main
from trebalink.distributed import Dist
from trebalink.embed import centred_index, embed_frames, embed_to_file, embed_windows
from trebalink.fitting import fit_treba, prepare
from trebalink.model import ModelSettings
from trebalink.run import TrebaRunConfig, _train
from trebalink.train import TrainSettings

TINY_MODEL = {"z_dim": 4, "rnn_dim": 8, "h_dim": 8, "approximator_rnn_dim": 4, "approximator_h_dim": 8}


def _weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["net"]


def _max_diff(a: dict, b: dict) -> float:
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


@pytest.fixture(scope="module")
def syn():
    return synthetic_dataset(256, 64, 64, seed=5)


def test_a_resumed_fit_equals_an_uninterrupted_one(syn, tmp_path):
    prepared = prepare(syn, "expert:synthetic", AugmentSettings(), seed=1)
    model, train = ModelSettings(**TINY_MODEL), TrainSettings(batch_size=64, lr=1e-3, stage1_epochs=2, stage2_epochs=3)
    whole, state = fit_treba(syn["train"], syn["val"], prepared, model, train, seed=1, progress=False,
                             folder=tmp_path / "whole")
    assert state["finished"] and len(state["history"]) == 5
    for stop in (1, 3):  # inside stage 1, then inside stage 2
        part = tmp_path / f"part{stop}"
        _, st = fit_treba(syn["train"], syn["val"], prepared, model, train, seed=1, progress=False, folder=part,
                          stop_after=stop)
        assert not st["finished"] and len(st["history"]) == stop
        resumed, st = fit_treba(syn["train"], syn["val"], prepared, model, train, seed=1, progress=False, folder=part,
                                resume=True)
        timeless = [[{k: v for k, v in h.items() if k != "seconds"} for h in hist] for hist in (st["history"],
                                                                                             state["history"])]
        assert st["finished"] and timeless[0] == timeless[1]
        assert _max_diff(_weights(part / "last.pt"), _weights(tmp_path / "whole" / "last.pt")) == 0.0
        assert _max_diff(_weights(part / "best.pt"), _weights(tmp_path / "whole" / "best.pt")) == 0.0
    np.testing.assert_array_equal(whole.embed_states(torch.from_numpy(syn["test"].states), torch.device("cpu")),
                                  resumed.embed_states(torch.from_numpy(syn["test"].states), torch.device("cpu")))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_ddp_processes_stay_in_sync_and_match_one_process(tmp_path):
    cfg = {"name": "ddp", "seed": 2, "device": "cpu", "threads": 1, "tasks": "expert:synthetic", "readout": False,
           "data": {"source": "synthetic", "n_train": 256, "n_val": 64, "n_test": 32},
           "model": TINY_MODEL, "train": {"batch_size": 64, "lr": 1e-3, "stage1_epochs": 1, "stage2_epochs": 2}}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "trebalink", "train", str(path), "--out", str(tmp_path / "two"),
           "--quiet"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert main(["train", str(path), "--out", str(tmp_path / "one"), "--quiet"]) == 0
    metrics = yaml.safe_load((tmp_path / "two" / "metrics.json").read_text())
    assert metrics["world_size"] == 2
    for stage, sums in metrics["rank_checksums"].items():
        assert sums[0] == sums[1], stage  # bit-identical weights on both ranks
    two, one = _weights(tmp_path / "two" / "last.pt"), _weights(tmp_path / "one" / "last.pt")
    assert _max_diff(two, one) < 1e-4
    h2 = yaml.safe_load((tmp_path / "two" / "history.json").read_text())
    h1 = yaml.safe_load((tmp_path / "one" / "history.json").read_text())
    assert [h["val_loss"] for h in h2] == pytest.approx([h["val_loss"] for h in h1], rel=1e-4)


def test_world_size_must_divide_the_batch_and_nothing_is_written(tmp_path):
    cfg = TrebaRunConfig(tasks="expert:synthetic", device="cpu")
    cfg.train.batch_size = 100
    with pytest.raises(ValueError, match=r"train.batch_size: 100 is not divisible by the world size 3"):
        _train(cfg, tmp_path / "out", False, None, False, None, Dist(rank=0, world=3), torch.device("cpu"))
    assert not (tmp_path / "out").exists()


def _trained_tiny(syn, tmp_path):
    prepared = prepare(syn, "expert:synthetic", AugmentSettings(), seed=0)
    fit_treba(syn["train"], syn["val"], prepared, ModelSettings(**TINY_MODEL),
              TrainSettings(batch_size=64, lr=1e-3, stage1_epochs=1, stage2_epochs=1), progress=False,
              folder=tmp_path / "run")
    return read_model(tmp_path / "run")


def test_embeddings_do_not_depend_on_the_batch_size_and_data_is_checked(syn, tmp_path):
    model = _trained_tiny(syn, tmp_path)
    a = embed_windows(model, syn["test"], batch_size=7)
    b = embed_windows(model, syn["test"], batch_size=64)
    c = embed_windows(model, syn["test"].subset(np.arange(5, 9)), batch_size=1)
    np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(a[5:9], c, atol=1e-5, rtol=1e-5)
    data = save_dataset(tmp_path / "syn.h5", syn)
    rep = embed_to_file(tmp_path / "run", data, tmp_path / "emb.h5", batch_size=50, device="cpu")
    assert rep.kind == "windows" and rep.items == {"train": 256, "val": 64, "test": 64}
    with h5py.File(tmp_path / "emb.h5") as f:
        np.testing.assert_allclose(f["splits/test/embeddings"][()], a, atol=1e-5)
        assert f.attrs["z_dim"] == 4 and (f["splits/test/factors/c_x"][()] == syn["test"].factors["c_x"]).all()
    with pytest.raises(FileExistsError, match="exists"):
        embed_to_file(tmp_path / "run", data, tmp_path / "emb.h5", device="cpu")
    wide = synthetic_dataset(10, 5, 5, length=30, seed=1)
    with pytest.raises(ValueError, match=r"syn.h5: windows have 30 frames \(field states\); the model was trained on windows of 25"):
        embed_windows(model, wide["test"], where=str(data))
    from nsprog.data import Trajectories

    three = Trajectories(states=np.zeros((3, 25, 3), np.float32))
    with pytest.raises(ValueError, match=r"windows have 3 state dims \(field states\)"):
        embed_windows(model, three)


def _mouse_recording(n=120, seed=0) -> Recording:
    rng = np.random.default_rng(seed)
    kps = ["nose", "ear_left", "ear_right", "neck", "hip_left", "hip_right", "tail_base"]
    shape = np.array([[10, 0], [5, 3], [5, -3], [0, 0], [-10, 3], [-10, -3], [-20, 0]], np.float32)
    centre = 300 + np.cumsum(rng.normal(0, 3, size=(n, 2, 1, 2)), axis=0)
    pos = (centre + shape[None, None] + rng.normal(0, 1.5, size=(n, 2, 7, 2))).astype(np.float32)
    pos[40:43, 1, 2] = np.nan  # a short gap, interpolated
    pos[80:88, 0, 5] = np.nan  # a long gap (> max_gap 5): windows over it are dropped from training, flagged here
    return Recording.from_arrays(pos, keypoint_names=kps, individual_names=["resident", "intruder"], fps=30.0,
                                 name="rec", labels=(np.arange(n) // 30) % 2, label_names=["a", "b"])


def test_every_frame_of_a_recording_is_embedded_with_edge_padding(tmp_path):
    rec = _mouse_recording()
    windows = rec.to_trajectories(21, stride=2)
    splits = split_by_time(windows, {"train": 0.7, "val": 0.3})
    prepared = prepare(splits, "expert:mouse", AugmentSettings(), force=True)
    fit_treba(splits["train"], splits["val"], prepared, ModelSettings(**TINY_MODEL),
              TrainSettings(batch_size=16, lr=1e-3, stage1_epochs=1, stage2_epochs=1), progress=False,
              folder=tmp_path / "run")
    model = read_model(tmp_path / "run")
    assert centred_index(5, 3).tolist() == [[0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 4]]
    frames = np.nan_to_num(rec.frames()[0])
    z = embed_frames(model, frames, batch_size=13)
    assert z.shape == (rec.n_frames, 4)
    padded = np.concatenate([np.repeat(frames[:1], 10, 0), frames[:11]])[None]  # frame 0 centred, edge-padded
    np.testing.assert_allclose(z[0], model.embed_states(torch.from_numpy(padded), torch.device("cpu"))[0], atol=1e-5)
    save_arrays(rec, tmp_path / "rec.npz")
    rep = embed_to_file(tmp_path / "run", tmp_path / "rec.npz", tmp_path / "frames.h5", device="cpu", batch_size=40)
    assert rep.kind == "frames" and rep.items == {"rec": rec.n_frames}
    with h5py.File(tmp_path / "frames.h5") as f:
        g = f["recordings/rec"]
        assert g["embeddings"].shape == (rec.n_frames, 4) and g["labels"].shape == (rec.n_frames,)
        complete = g["complete"][()]
        assert complete[:70].all() and not complete[70:98].any() and complete[98:].all()  # windows over the long gap
    # a recording without the model's keypoints
    other = Recording.from_arrays(np.zeros((50, 1, 2, 2), np.float32) + 1, keypoint_names=["a", "b"], name="x")
    save_arrays(other, tmp_path / "other.npz")
    with pytest.raises(ValueError, match="lacks what the model reads"):
        embed_to_file(tmp_path / "run", tmp_path / "other.npz", tmp_path / "o.h5", device="cpu")
    assert not (tmp_path / "o.h5").exists()


def test_command_line_tasks_export_train_embed(tmp_path, capsys):
    data = save_dataset(tmp_path / "syn.h5", synthetic_dataset(300, 60, 60, seed=8))
    assert main(["tasks", "expert:synthetic", "--data", str(data), "--out", str(tmp_path / "t.yaml")]) == 0
    out = capsys.readouterr().out
    assert "accuracy vs c_x" in out and "-> " in out
    assert main(["tasks", "random:2:2", "--out", str(tmp_path / "r.yaml"), "--quiet"]) == 0
    cfg = {"name": "cli", "device": "cpu", "tasks": str(tmp_path / "t.yaml"), "data": {"source": "file", "path": str(data)},
           "model": TINY_MODEL, "train": {"batch_size": 60, "stage1_epochs": 1, "stage2_epochs": 1}}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", str(tmp_path / "cfg.yaml"), "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "finished: results in" in out and "linear read-out of test 'c_x'" in out
    assert (tmp_path / "run" / "tasks_analysis.json").is_file()
    assert main(["embed", str(tmp_path / "run"), "--data", str(data), "--out", str(tmp_path / "e.h5"), "--split",
                 "test", "--device", "cpu"]) == 0
    assert "60 windows in 1 split(s) embedded" in capsys.readouterr().out
    # the run folder is never overwritten; a random set trains too
    assert main(["train", str(tmp_path / "cfg.yaml"), "--out", str(tmp_path / "run"), "--quiet"]) == 1
    assert "is not empty" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "cfg.yaml"), "--out", str(tmp_path / "rand"), "--tasks",
                 str(tmp_path / "r.yaml"), "--quiet"]) == 0
    assert main(["train", str(tmp_path / "cfg.yaml"), "--out", str(tmp_path / "bad"), "--precision", "bf16",
                 "--quiet"]) == 1
    assert "needs a CUDA device" in capsys.readouterr().err and not (tmp_path / "bad").exists()
