"""End-to-end fits on tracking files: a synthetic 105 x 68 m match, SportVU basketball (with a
second game as the test file) and a CalMS21-format file, each with tiny settings."""

import csv
import json
import subprocess
import sys

import numpy as np

from nsprog.cli import main
from nsprog.data import Recording
from nsprog.data.loaders.arrays import save_arrays

TINY = [
    "--quiet", "--set", "vae.epochs=2", "--set", "search.neural_epochs=1", "--set", "search.symbolic_epochs=2",
    "--set", "search.max_depth=2", "--set", "eval.plots=false", "--set", "learner.min_distill_f1=0",
]


def _match(n_frames=600, fps=5.0, n=11, seed=0):
    """Two teams of 11 on a 105 x 68 m pitch, possession alternating every 60 frames."""
    rng = np.random.default_rng(seed)
    L = 105.0
    pos = np.zeros((n_frames, 1 + 2 * n, 1, 2), np.float32)
    offense = np.zeros(n_frames, np.int64)
    for f in range(n_frames):
        red_has = (f // 60) % 2 == 0
        offense[f] = 1 if red_has else 2
        frac = (f % 60) / 60.0
        for team, base in (("red", 1), ("blue", 1 + n)):
            attack_x = L if team == "red" else 0.0
            has = red_has == (team == "red")
            for i in range(n):
                y = 4 + 60 * i / (n - 1)
                x = L / 2 + (attack_x - L / 2) * (0.3 + 0.5 * frac) if has else L / 2 + (L / 2 - attack_x) * 0.4
                pos[f, base + i, 0] = [x + rng.normal(0, 0.5), y + rng.normal(0, 0.5)]
    pos[:, 0, 0] = pos[:, 1, 0]
    return Recording.from_arrays(
        pos, keypoint_names=["position"],
        individual_names=["ball"] + [f"r{i}" for i in range(n)] + [f"b{i}" for i in range(n)],
        individual_groups=["ball"] + ["red"] * n + ["blue"] * n,
        fps=fps, frame_data={"offense": offense, "period": np.ones(n_frames)}, source="pitch.npz",
    )


def test_a_105_by_68_pitch_fits_with_no_basketball_constants(tmp_path):
    path = save_arrays(_match(), tmp_path / "match.npz")
    out = tmp_path / "run"
    code = main([
        "fit", "experiments/configs/basketball_1prog.yaml", "--out", str(out), *TINY,
        "--set", f"data.path={path}", "--set", "data.format=arrays", "--set", "data.windows.window_seconds=4.0",
        "--set", "data.windows.stride=5", "--set", "data.windows.field=soccer",
        "--set", "data.windows.field_length=105", "--set", "data.windows.field_width=68",
        "--set", "data.windows.target=[0.0, 34.0]", "--set", "data.windows.players_per_team=11",
        "--set", "eval.factors=[offense]",
    ])
    assert code == 0
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["model"]) >= {"purity", "nmi", "ri", "ari"} and m["n_test"] > 0
    assert "team" in (out / "programs.txt").read_text() or "Affine" in (out / "programs.txt").read_text()


def _mirrored_copy(src, dst):
    """Another 'game' in the same CSV layout: every position rotated about the court centre."""
    with open(src, newline="") as fi, open(dst, "w", newline="") as fo:
        reader = csv.DictReader(fi)
        writer = csv.DictWriter(fo, fieldnames=reader.fieldnames)
        writer.writeheader()
        for row in reader:
            row["x_loc"] = str(94.0 - float(row["x_loc"]))
            row["y_loc"] = str(50.0 - float(row["y_loc"]))
            writer.writerow(row)


def test_basketball_config_trains_on_one_game_and_tests_on_another(shared_data, tmp_path):
    other = tmp_path / "other_game.csv"
    _mirrored_copy(shared_data / "sportvu" / "0021500400.csv", other)
    out = tmp_path / "bb"
    code = main(["fit", "experiments/configs/basketball_1prog.yaml", "--out", str(out), *TINY,
                 "--set", f"data.path={shared_data / 'sportvu' / '0021500400.csv'}", "--set", f"data.test_path={other}"])
    assert code == 0
    m = json.loads((out / "metrics.json").read_text())
    # the whole other game is the test set: far more windows than the 15% time block of one game
    assert m["n_test"] > 1000
    assert 0.5 <= m["model"]["purity"] <= 1.0
    assert (out / "programs.txt").read_text().startswith("[program_1] 1[>")
    # certify the basketball encoder's program on the other game: certified windows never flip
    h5 = tmp_path / "other.h5"
    assert main(["data", "convert", str(other), "--out", str(h5), "--window-seconds", "8", "--quiet"]) == 0
    assert main(["certify", str(out), "--data", str(h5), "--split", "all", "--eps", "1.0", "--check", "10000",
                 "--check-windows", "3", "--quiet", "--out", str(tmp_path / "cert.json")]) == 0
    cert = json.loads((tmp_path / "cert.json").read_text())
    assert cert["brute_force"]["flips"] == {"program_1": 0}
    assert 0.0 < cert["certified_fraction"]["program_1"] <= 1.0


def _calms21_json(path, n_seq=3, n_frames=120, seed=0):
    rng = np.random.default_rng(seed)
    data = {"annotator-id_0": {}}
    offsets = np.array([[0, 0], [-8, -6], [8, -6], [0, -15], [-10, -30], [10, -30], [0, -45]], float)
    for s in range(n_seq):
        centre = np.cumsum(rng.normal(0, 3, size=(n_frames, 2, 2)), axis=0) + [[300, 300], [700, 300]]
        kp = centre[:, :, None, :] + offsets[None, None] + rng.normal(0, 1, size=(n_frames, 2, 7, 2))
        kp = kp.transpose(0, 1, 3, 2)  # (T, mice, xy, keypoints)
        data["annotator-id_0"][f"task1/seq{s}"] = {
            "keypoints": kp.tolist(),
            "scores": np.ones((n_frames, 2, 7)).tolist(),
            "annotations": rng.integers(0, 4, n_frames).tolist(),
            "metadata": {"vocab": {"attack": 0, "investigation": 1, "mount": 2, "other": 3}},
        }
    path.write_text(json.dumps(data))
    return path


def test_calms21_config_runs_on_a_calms21_format_file(tmp_path):
    path = _calms21_json(tmp_path / "calms.json")
    out = tmp_path / "calms"
    code = main(["fit", "experiments/configs/calms21_dsl1_1prog.yaml", "--out", str(out), *TINY,
                 "--set", f"data.path={path}", "--set", "data.split.method=group",
                 "--set", "data.split.train=0.34", "--set", "data.split.val=0.33", "--set", "data.split.test=0.33",
                 "--set", "vae.h_dim=16", "--set", "vae.rnn_dim=16", "--set", "vae.batch_size=64",
                 "--set", "device=cpu"])
    assert code == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["model"]["n"] == m["n_test"] > 0


def test_calms21_config_without_a_path_says_what_to_set(tmp_path, capsys):
    assert main(["fit", "experiments/configs/calms21_dsl1_1prog.yaml", "--out", str(tmp_path / "x"), "--quiet"]) == 1
    assert "data.path is required" in capsys.readouterr().err


def test_fetch_calms21_script_unpacks_and_converts_a_local_archive(tmp_path):
    import subprocess
    import sys
    import zipfile

    train = _calms21_json(tmp_path / "calms21_task1_train.json", n_seq=4)
    test = _calms21_json(tmp_path / "calms21_task1_test.json", n_seq=2, seed=1)
    archive = tmp_path / "task1.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(train, "task1_classic_classification/calms21_task1_train.json")
        zf.write(test, "task1_classic_classification/calms21_task1_test.json")
    out = tmp_path / "calms21"
    res = subprocess.run([sys.executable, "data/fetch_calms21.py", "--out", str(out), "--url", archive.as_uri()],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    from nsprog.data.io import load_dataset

    for name, n_seq in (("train", 4), ("test", 2)):
        (windows,) = load_dataset(out / f"calms21_task1_{name}.h5").values()
        assert windows.state_dim == 28  # 2 mice x 7 keypoints x (x, y)
        assert len(windows) == n_seq * (120 - 21 + 1)  # 21-frame windows, stride 1
    bad = subprocess.run([sys.executable, "data/fetch_calms21.py", "--out", str(tmp_path / "x"), "--url",
                          (tmp_path / "missing.zip").as_uri()], capture_output=True, text=True)
    assert bad.returncode == 1 and "fetch the task-1 archive by hand" in bad.stderr


def test_fetch_samples_script_downloads_checks_and_links(tmp_path, shared_data):
    """The sample fetcher against a local mirror (file:// addresses laid out like GitHub's raw
    host) and against a local copy (--from); a changed file is reported, not hidden."""
    import importlib.util
    import shutil

    spec = importlib.util.spec_from_file_location("fetch_samples", "data/fetch_samples.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["fetch_samples"] = mod  # dataclasses need their module registered
    spec.loader.exec_module(mod)
    mirror = tmp_path / "mirror"
    for s in mod.SAMPLES:
        if s.group in ("sportvu", "jabs"):
            target = mirror / s.repo / s.commit / s.path
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shared_data / s.dest, target)
    template = mirror.as_uri() + "/{repo}/{commit}/{path}"
    res = subprocess.run([sys.executable, "data/fetch_samples.py", "--dest", str(tmp_path / "s"), "--only", "sportvu",
                          "jabs", "--base-url", template], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "s" / "sportvu" / "0021500400.csv").read_bytes() == (shared_data / "sportvu" /
                                                                             "0021500400.csv").read_bytes()
    sources = (tmp_path / "s" / "SOURCES.md").read_text()
    assert "samghelms/nba_movement_analysis" in sources and "MIT" in sources and "problem" not in res.stderr
    lic = mirror / "KumarLabJax/JABS-behavior-classifier/c7c3e4ee5030545ea86096ac8c8f1caa943028c3/LICENSE"
    lic.write_text("changed")
    res = subprocess.run([sys.executable, "data/fetch_samples.py", "--dest", str(tmp_path / "s"), "--only", "jabs",
                          "--base-url", template, "--force"], capture_output=True, text=True)
    assert "jabs/LICENSE: SHA-256" in res.stderr and "differs" in res.stderr
    res = subprocess.run([sys.executable, "data/fetch_samples.py", "--dest", str(tmp_path / "l"), "--from",
                          str(shared_data)], capture_output=True, text=True)
    assert res.returncode == 0 and "problem" not in res.stderr, res.stderr
    assert (tmp_path / "l" / "openfield" / "8_01_A_190507134142_DLC.csv").is_symlink()
    res = subprocess.run([sys.executable, "data/fetch_samples.py", "--dest", str(tmp_path / "m"), "--only", "jabs",
                          "--base-url", (tmp_path / "nowhere").as_uri() + "/{path}"], capture_output=True, text=True)
    assert res.returncode == 1 and "download from" in res.stderr
